//! `palmgate sensor capture` (frames and PAD bursts), `palmgate sensor info` and `palmgate pad eval`
//! against `palmgate sensor simulate`: two processes talking over a real pseudo-terminal, the
//! captures written as PNG files that open.
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

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Bursts captured from simulators presenting a modelled live hand and a modelled attack
/// species, then `palmgate pad eval` on them: the live hands pass, the prints do not.
#[test]
fn burst_capture_and_pad_eval_tell_a_live_hand_from_a_print() {
    let dir = tempfile::tempdir().unwrap();
    let sets = dir.path().join("sets");
    for (species, label) in [("live", "bona-fide"), ("print-nir", "attack:print-nir")] {
        let link = dir.path().join(format!("sensor-{species}"));
        let _simulator = start_simulator(
            &link,
            &[
                "--synthetic",
                "3",
                "--species",
                species,
                "--format",
                "png",
                "--fps",
                "30",
            ],
        );
        let capture = palmgate(&[
            "sensor",
            "capture",
            "--port",
            link.to_str().unwrap(),
            "--wait",
            "120",
            "--burst",
            "--label",
            label,
            "--presentations",
            "2",
            "--rounds",
            "2",
            "--format",
            "png",
            "--out",
            sets.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8(capture.stdout).unwrap();
        assert!(
            stdout.contains("sensor bands: ambient, nir850, nir940, visible"),
            "{stdout}"
        );
        assert_eq!(stdout.matches("(8 frames)").count(), 2, "{stdout}");
    }
    let first = std::fs::read_dir(sets.join("attacks/print-nir"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut names: Vec<String> = std::fs::read_dir(&first)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names[0], "00-ambient-0us.png");
    assert_eq!(names[5], "05-nir850-166665us.png");

    let json = dir.path().join("pad.json");
    let plots = dir.path().join("plots");
    let eval = palmgate(&[
        "pad",
        "eval",
        "--bona-fide",
        sets.join("bona-fide").to_str().unwrap(),
        "--attacks",
        sets.join("attacks").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--plots",
        plots.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(eval.stdout).unwrap();
    assert!(stdout.contains("APCER print-nir"), "{stdout}");
    let report = read_json(&json);
    assert_eq!(report["bpcer"], 0.0, "{report:#}");
    assert_eq!(report["apcer"]["print-nir"], 0.0, "{report:#}");
    assert_eq!(report["apcer_worst"], 0.0);
    assert_eq!(report["apnrr"], 0.0);
    for key in [
        "bpcer_at_apcer_1e-2",
        "bpcer_at_apcer_5e-2",
        "apcer_at_bpcer_1e-2",
    ] {
        assert!(report[key].is_number(), "{key}: {report:#}");
    }
    assert!(report["pad_ms_median"].as_f64().unwrap() > 0.0);
    let plot = std::fs::read(plots.join("det-print-nir.png")).unwrap();
    assert!(plot.starts_with(b"\x89PNG\r\n\x1a\n"));
}

/// A protocol 1.0 simulator: `capture --burst` falls back to single frames, and `pad eval` with
/// bona fide presentations alone reports BPCER and leaves every attack figure null.
#[test]
fn a_single_band_sensor_gives_single_frame_presentations() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    let _simulator = start_simulator(
        &link,
        &[
            "--synthetic",
            "2",
            "--species",
            "live",
            "--single-band",
            "--format",
            "png",
        ],
    );
    let sets = dir.path().join("sets");
    let capture = palmgate(&[
        "sensor",
        "capture",
        "--port",
        link.to_str().unwrap(),
        "--wait",
        "60",
        "--burst",
        "--label",
        "bona-fide",
        "--format",
        "png",
        "--out",
        sets.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8(capture.stdout).unwrap();
    assert!(stdout.contains("protocol 1.0"), "{stdout}");
    let presentation = std::fs::read_dir(sets.join("bona-fide"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(presentation.join("00-single-0us.png").is_file());

    let json = dir.path().join("pad.json");
    palmgate(&[
        "pad",
        "eval",
        "--bona-fide",
        sets.join("bona-fide").to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let report = read_json(&json);
    assert!(report["bpcer"].is_number(), "{report:#}");
    for key in [
        "apcer",
        "apcer_worst",
        "bpcer_at_apcer_1e-2",
        "bpcer_at_apcer_5e-2",
        "apcer_at_bpcer_1e-2",
        "apnrr",
    ] {
        assert!(report[key].is_null(), "{key}: {report:#}");
    }
}
