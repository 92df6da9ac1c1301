//! `palmgate sensor capture` and `palmgate sensor info` against `palmgate sensor simulate`: two
//! processes talking over a real pseudo-terminal, the capture written as a PNG that opens.
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use palmgate_sensor::codec::FrameFormat;
use palmgate_sensor::image::decode_image;
use palmgate_sensor::{GrayImage, Luma};
use palmgate_system_tests::workspace_binary;

/// Kills the simulator if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn palmgate(args: &[&str]) -> Output {
    let output = Command::new(workspace_binary("palmgate"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run palmgate");
    assert!(
        output.status.success(),
        "palmgate {} failed: {}\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn start_simulator(link: &Path, extra: &[&str]) -> Running {
    let child = Command::new(workspace_binary("palmgate"))
        .args(["sensor", "simulate", "--link"])
        .arg(link)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the simulator");
    let running = Running(child);
    wait_until("the simulator's link", Duration::from_secs(20), || {
        link.exists()
    });
    running
}

#[test]
fn capture_from_the_simulator_writes_a_png_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("palm-sensor");
    let mut simulator = start_simulator(
        &link,
        &["--synthetic", "2", "--format", "jpeg", "--fps", "20"],
    );
    let link_arg = link.to_str().unwrap();

    let info = palmgate(&["sensor", "info", "--port", link_arg]);
    let info = String::from_utf8(info.stdout).unwrap();
    assert!(info.contains("model:      palmgate-sim"), "{info}");
    assert!(info.contains("resolution: 640x480"), "{info}");
    assert!(info.contains("formats:    jpeg\n"), "{info}");

    let out = dir.path().join("palm.png");
    let capture = palmgate(&[
        "sensor",
        "capture",
        "--port",
        link_arg,
        "--out",
        out.to_str().unwrap(),
        "--frames",
        "2",
    ]);
    let stdout = String::from_utf8(capture.stdout).unwrap();
    assert_eq!(stdout.matches("640x480 jpeg").count(), 2, "{stdout}");

    // The PNG opens as a 640×480 gray image with a hand in it (not a blank frame).
    let png = std::fs::read(&out).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let image = decode_image(FrameFormat::Png, 640, 480, &png).expect("the PNG decodes");
    let (min, max) = image
        .as_gray()
        .pixels()
        .fold((u8::MAX, u8::MIN), |(min, max), pixel| {
            (min.min(pixel.0[0]), max.max(pixel.0[0]))
        });
    assert!(max - min > 64, "flat image: {min}..{max}");

    // SIGTERM stops the simulator cleanly: it exits 0 and removes its link.
    let pid = simulator.0.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let mut exit = None;
    wait_until("the simulator to exit", Duration::from_secs(10), || {
        exit = simulator.0.try_wait().unwrap();
        exit.is_some()
    });
    assert!(exit.unwrap().success(), "simulator exit: {exit:?}");
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "link left behind"
    );
}

#[test]
fn capture_from_an_absent_sensor_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let port = dir.path().join("nothing-here");
    let output = Command::new(workspace_binary("palmgate"))
        .args(["sensor", "capture", "--wait", "0.5", "--out"])
        .arg(dir.path().join("x.png"))
        .arg("--port")
        .arg(&port)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot open sensor port"), "{stderr}");
    assert!(!dir.path().join("x.png").exists());
}

#[test]
fn simulate_serves_a_folder_of_images() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    // One 320×240 PNG, encoded with the sensor crate's own encoder.
    let gradient = image_of(320, 240);
    let (_, _, png) = palmgate_sensor::image::encode_image(&gradient, FrameFormat::Png).unwrap();
    std::fs::write(images.join("a.png"), &*png).unwrap();
    let link = dir.path().join("palm-sensor");
    let _simulator = start_simulator(
        &link,
        &[
            "--images",
            images.to_str().unwrap(),
            "--format",
            "gray8",
            "--fps",
            "30",
        ],
    );
    let out = dir.path().join("frame.png");
    let capture = palmgate(&[
        "sensor",
        "capture",
        "--port",
        link.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&capture.stdout).contains("320x240 gray8"));
    let written = decode_image(FrameFormat::Png, 320, 240, &std::fs::read(&out).unwrap()).unwrap();
    assert!(
        written.as_gray() == &gradient,
        "GRAY8 capture is not the served image"
    );
}

fn image_of(width: u32, height: u32) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| Luma([((x + 2 * y) % 256) as u8]))
}
