//! A full disk under the real `palmgate run`: its state directory on a 2 MB tmpfs, filled up while
//! the gate records events, then freed. The door keeps working throughout, and once space is back
//! the running gate (no restart) records and delivers again: every id it used is delivered or
//! named in an `alarm.events_lost` report, and a new event after the recovery arrives.
//!
//! Mounting needs the private namespace `isolated` gives:
//! `/work/bin/isolated cargo xtask test -p palmgate-system-tests --test outbox_full_disk`.

mod outbox_support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use outbox_support::{Delivered, Site, play_door};
use palmgate_system_tests::gate::{
    NotifySocket, Subscriber, gate_config, simulated_gpio, start_daemon,
};
use palmgate_system_tests::{require_mqtt, require_pcscd_vpcd};

const PATIENCE: Duration = Duration::from_secs(30);

/// A tmpfs of `size` on `dir`, unmounted when dropped.
struct SmallDisk<'a>(&'a Path);

impl<'a> SmallDisk<'a> {
    fn mount(dir: &'a Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            output.status.success(),
            "cannot mount a tmpfs on {} ({}): this test needs a private mount namespace; run it \
             with `/work/bin/isolated cargo xtask test -p palmgate-system-tests --test \
             outbox_full_disk`",
            dir.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self(dir)
    }
}

impl Drop for SmallDisk<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

/// Writes `path` until the filesystem refuses (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![0x5Au8; 4096];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
            Err(error) => panic!("filling {}: {error}", path.display()),
        }
    }
    let _ = file.sync_all();
    written
}

#[test]
fn a_full_disk_recovers_without_a_restart_and_loses_nothing_in_silence() {
    require_pcscd_vpcd();
    let broker = require_mqtt();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let site = Site::new(root);
    let gate = format!("fulldisk-{}", std::process::id());
    let config = gate_config(
        root,
        &gate,
        &site.issuer_pub,
        &site.sensor_link,
        &site.operator_pub,
    );
    let state = root.join("state");
    let _disk = SmallDisk::mount(&state, "2m");

    let mut mqtt = Subscriber::start_on(&broker, &format!("palmgate/{gate}/event/#"), None);
    let notify = NotifySocket::bind(root);
    let log = root.join("daemon.log");
    let daemon = start_daemon(&config, &notify, &log);
    assert!(
        notify.wait_for("READY=1", PATIENCE).is_some(),
        "no READY=1; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let gpio = root.join("gpio.sock");
    let door = |times: usize| play_door(&gpio, times);
    door(2);
    mqtt.wait_for("/event/door.closed", PATIENCE);

    // The disk fills up; the door goes on being used.
    let filler = state.join("filler");
    let filled = fill(&filler);
    assert!(filled > 0, "nothing could be written to the small disk");
    door(10);
    // Give the gate time to meet the full disk (and, before the fix, to give up on it).
    std::thread::sleep(Duration::from_secs(2));
    // The door still answers while the disk is full.
    assert_eq!(simulated_gpio(&gpio, "input 27 high"), "ok");
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(simulated_gpio(&gpio, "input 27 low"), "ok");

    // Space comes back; the same process must record and deliver again.
    std::fs::remove_file(&filler).expect("free the space");
    std::thread::sleep(Duration::from_millis(300));
    door(3);
    let pid = daemon.pid();

    let deadline = Instant::now() + PATIENCE;
    let delivered = loop {
        let delivered = Delivered::from_lines(mqtt.all());
        let highest = delivered.events.keys().max().copied().unwrap_or(0);
        let gaps: Vec<u64> = (1..=highest)
            .filter(|id| !delivered.accounts_for(*id))
            .collect();
        // 2 + 10 + 1 + 3 door cycles, one `door.closed` each; refused events are counted in
        // reports.
        let closings = delivered
            .events
            .values()
            .filter(|event| event["kind"] == "door.closed")
            .count() as u64;
        let counted: u64 = delivered.reports.iter().map(|report| report.count).sum();
        if gaps.is_empty() && closings + counted >= 16 {
            break delivered;
        }
        assert!(
            Instant::now() < deadline,
            "after the disk was freed: ids {gaps:?} neither delivered nor reported, {closings} \
             door closings delivered and {counted} events reported lost of 16; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(daemon.pid(), pid, "the gate was not restarted");
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        log_text.contains("outbox cannot write") || log_text.contains("flush failed"),
        "the gate never met the full disk; log:\n{log_text}"
    );
    let failures = log_text.matches("outbox cannot write").count()
        + log_text.matches("outbox still cannot write").count();
    assert!(
        failures <= 3,
        "a full disk floods the log: {failures} write failures logged"
    );
    eprintln!(
        "full disk: {} events delivered, reports {:?}, {failures} failure lines logged",
        delivered.events.len(),
        delivered.reports
    );
    drop(daemon);
}
