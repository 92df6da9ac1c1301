//! A full disk under the real `palmgate run`: its state directory on a 2 MB tmpfs, filled up while
//! the gate records events, then freed. The door keeps working throughout, and once space is back
//! the running gate (no restart) records and delivers again: every id it used is delivered or
//! named in an `alarm.events_lost` report, and a new event after the recovery arrives.
//!
//! Mounting needs the private namespace `isolated` gives:
//! `cargo xtask isolated test -p palmgate-system-tests --test outbox_full_disk`.

mod outbox_support;

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use outbox_support::{Delivered, Site, play_door};
use palmgate::event::Timestamp;
use palmgate_system_tests::gate::{Broker, NotifySocket, Subscriber, gate_config_on, start_daemon};
use palmgate_system_tests::require_pcscd_vpcd;

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
             with `cargo xtask isolated test -p palmgate-system-tests --test \
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

fn now_ms() -> i64 {
    Timestamp::now().unix_ms()
}

/// What the gate logs when its outbox cannot write (this code, and `main` before the fix).
fn met_the_full_disk(log: &str) -> bool {
    log.contains("outbox cannot write") || log.contains("flush failed")
}

#[test]
fn a_full_disk_recovers_without_a_restart_and_loses_nothing_in_silence() {
    require_pcscd_vpcd();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let site = Site::new(root);
    let gate = format!("fulldisk-{}", std::process::id());
    let filter = format!("palmgate/{gate}/event/#");
    let session = format!("{gate}-subscriber");
    // A broker of our own, away while the disk is full, so that the outbox keeps what it records
    // (nothing is deleted) and its file must grow into the full disk. A persistent subscriber
    // session collects everything published once it is back.
    let mut broker = Broker::start(&root.join("broker"));
    drop(Subscriber::start_on(
        &broker.address(),
        &filter,
        Some(&session),
    ));
    broker.stop();
    let config = gate_config_on(
        &broker.address(),
        root,
        &gate,
        &site.issuer_pub,
        &site.sensor_link,
        &site.operator_pub,
    );
    let state = root.join("state");
    let _disk = SmallDisk::mount(&state, "2m");

    let notify = NotifySocket::bind(root);
    let log = root.join("daemon.log");
    let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let daemon = start_daemon(&config, &notify, &log);
    assert!(
        notify.wait_for("READY=1", PATIENCE).is_some(),
        "no READY=1; log:\n{}",
        read_log()
    );
    let pid = daemon.pid();
    let gpio = root.join("gpio.sock");
    // Let the door controller take the contact's first stable reading (closed) first: an opening
    // before that is "found open at start-up", not a forced door followed by a closing.
    std::thread::sleep(Duration::from_secs(1));
    play_door(&gpio, 2);

    // The disk fills up; the door goes on being used (each cycle answers on the control socket)
    // until the outbox has met the full disk.
    let filler = state.join("filler");
    assert!(
        fill(&filler) > 0,
        "nothing could be written to the small disk"
    );
    let full_since = now_ms();
    let mut cycles = 0;
    while !met_the_full_disk(&read_log()) {
        assert!(cycles < 400, "the outbox never met the full disk");
        play_door(&gpio, 1);
        cycles += 1;
    }
    // A little more use of the door while the disk is still full.
    play_door(&gpio, 3);
    std::thread::sleep(Duration::from_secs(1));

    // Space comes back: the same process must record and deliver again.
    std::fs::remove_file(&filler).expect("free the space");
    let freed_at = now_ms();
    std::thread::sleep(Duration::from_millis(300));
    play_door(&gpio, 3);
    broker.resume();
    let mut mqtt = Subscriber::start_on(&broker.address(), &filter, Some(&session));

    // Every id is delivered or reported; door events of the full period and of after it arrive.
    // (Door cycles are not counted one by one: the contact's debounce may merge a quick one.)
    let deadline = Instant::now() + PATIENCE;
    let delivered = loop {
        let delivered = Delivered::from_lines(mqtt.all());
        let highest = delivered.events.keys().max().copied().unwrap_or(0);
        let gaps: Vec<u64> = (1..=highest)
            .filter(|id| !delivered.accounts_for(*id))
            .collect();
        let closed_at: Vec<i64> = delivered
            .events
            .values()
            .filter(|event| event["kind"] == "door.closed")
            .filter_map(|event| event["time"].as_str().and_then(Timestamp::parse_rfc3339))
            .map(Timestamp::unix_ms)
            .collect();
        let while_full = closed_at
            .iter()
            .filter(|at| (full_since..freed_at).contains(*at))
            .count();
        let after = closed_at.iter().filter(|at| **at >= freed_at).count();
        if gaps.is_empty() && while_full >= 2 && after >= 2 {
            break delivered;
        }
        assert!(
            Instant::now() < deadline,
            "after the disk was freed: ids {gaps:?} neither delivered nor reported; door closings \
             delivered: {while_full} of the full period, {after} after it; reports {:?}; log:\n{}",
            delivered.reports,
            read_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(daemon.pid(), pid, "the gate was not restarted");
    let log_text = read_log();
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
