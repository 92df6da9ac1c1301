//! The fault matrix of docs/reliability.md, on the real `palmgate run` with mosquitto: the gate
//! records events while the broker is away (door contact played through the simulated GPIO), is
//! stopped, its state directory is damaged in one way per test, and it is started again with the
//! broker back. Every event it held must then be delivered unchanged or named in an
//! `alarm.events_lost` report, and no id it used before may come back for another event.
//!
//! Run: `cargo xtask isolated test -p palmgate-system-tests --test fault_matrix`.

mod outbox_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use outbox_support::{Delivered, Site, play_door};
use palmgate::event::Event;
use palmgate::outbox::{Outbox, OutboxOptions};
use palmgate_system_tests::gate::{
    Broker, ChildGuard, NotifySocket, Subscriber, gate_config_on, simulated_gpio, start_daemon,
};
use palmgate_system_tests::require_pcscd_vpcd;

const PATIENCE: Duration = Duration::from_secs(30);

/// How the state directory is damaged between the two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// Nothing (control).
    None,
    /// The database's used part (up to its last block holding data) cut to half.
    TruncateHalf,
    /// Three 512-byte blocks of the database's used part overwritten.
    Overwrite512x3,
    /// 40 bytes of the database's used part inverted.
    Flip40Bytes,
    /// The database cut to nothing.
    TruncateToZero,
    /// The whole outbox directory deleted (the device key kept).
    DeleteOutboxDir,
    /// No damage, but the gate is killed (SIGKILL) while it records events.
    KillWhileWriting,
}

/// A gate on a broker of its own, with the state it recorded.
struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    gate: String,
    config: PathBuf,
    broker: Broker,
    _site: Site,
}

impl Bench {
    fn new(gate: &str) -> Self {
        require_pcscd_vpcd();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let site = Site::new(&root);
        let mut broker = Broker::start(&root.join("broker"));
        // Away from the start: the gate holds every event it records.
        broker.stop();
        let config = gate_config_on(
            &broker.address(),
            &root,
            gate,
            &site.issuer_pub,
            &site.sensor_link,
            &site.operator_pub,
        );
        Self {
            _dir: dir,
            root,
            gate: gate.to_string(),
            config,
            broker,
            _site: site,
        }
    }

    fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// Starts the gate and waits for READY=1.
    fn start(&self, run: &str) -> ChildGuard {
        let notify_dir = self.root.join(format!("notify-{run}"));
        std::fs::create_dir_all(&notify_dir).expect("notify dir");
        let notify = NotifySocket::bind(&notify_dir);
        let daemon = start_daemon(
            &self.config,
            &notify,
            &self.root.join(format!("daemon-{run}.log")),
        );
        assert!(
            notify.wait_for("READY=1", PATIENCE).is_some(),
            "no READY=1 ({run}); log:\n{}",
            self.log(run)
        );
        daemon
    }

    fn log(&self, run: &str) -> String {
        std::fs::read_to_string(self.root.join(format!("daemon-{run}.log"))).unwrap_or_default()
    }

    fn play_door(&self, times: usize) {
        play_door(&self.root.join("gpio.sock"), times);
    }

    /// The events the stopped gate holds, read with the library from its state directory.
    fn held(&self) -> Vec<Event> {
        let state = self.state();
        let outbox = Outbox::open(&OutboxOptions {
            dir: state.join("outbox"),
            device_key_file: state.join("device.key"),
            gate: self.gate.clone(),
            max_events: 1_000_000,
            alarm_percent: 90,
        })
        .expect("open the stopped gate's outbox");
        outbox.pending(None, usize::MAX).expect("held events")
    }
}

/// Changes bytes of `file`: `(offset, bytes)` pairs.
fn scribble(file: &Path, patches: &[(u64, Vec<u8>)]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open the database");
    for (offset, bytes) in patches {
        handle.seek(SeekFrom::Start(*offset)).expect("seek");
        handle.write_all(bytes).expect("write");
    }
    handle.sync_all().expect("sync");
}

/// The database file: the largest file in the outbox directory (whatever the engine names it).
fn database_file(state: &Path) -> PathBuf {
    std::fs::read_dir(state.join("outbox"))
        .expect("outbox directory")
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .max_by_key(|entry| entry.metadata().map_or(0, |m| m.len()))
        .map(|entry| entry.path())
        .expect("a database file in the outbox directory")
}

/// Offsets of the 512-byte blocks of `content` that hold data (not all zero): "the used part",
/// whatever the engine's layout (redb preallocates, sled appends).
fn used_blocks(content: &[u8]) -> Vec<u64> {
    content
        .chunks(512)
        .enumerate()
        .filter(|(_, block)| block.iter().any(|b| *b != 0))
        .map(|(index, _)| index as u64 * 512)
        .collect()
}

/// `n` picks spread evenly over `items`.
fn spread(items: &[u64], n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| items[(items.len() * (2 * i + 1)) / (2 * n)])
        .collect()
}

fn apply(damage: Damage, state: &Path) {
    let db = database_file(state);
    let content = std::fs::read(&db).unwrap_or_default();
    let used = used_blocks(&content);
    let used_end = used
        .last()
        .map_or(0, |last| last + 512)
        .min(content.len() as u64);
    let truncate = |len: u64| {
        std::fs::File::options()
            .write(true)
            .open(&db)
            .and_then(|f| f.set_len(len))
            .expect("truncate")
    };
    match damage {
        Damage::None | Damage::KillWhileWriting => {}
        Damage::TruncateHalf => truncate(used_end / 2),
        Damage::TruncateToZero => truncate(0),
        Damage::Overwrite512x3 => scribble(
            &db,
            &spread(&used, 3)
                .into_iter()
                .map(|at| (at, vec![0xA5; 512]))
                .collect::<Vec<_>>(),
        ),
        Damage::Flip40Bytes => scribble(
            &db,
            &spread(&used, 40)
                .into_iter()
                .map(|block| {
                    let at = (block + 256).min(content.len() as u64 - 1);
                    (at, vec![!content[at as usize]])
                })
                .collect::<Vec<_>>(),
        ),
        Damage::DeleteOutboxDir => {
            std::fs::remove_dir_all(state.join("outbox")).expect("delete the outbox")
        }
    }
}

fn run_matrix_row(damage: Damage, gate: &str) {
    let mut bench = Bench::new(gate);

    // First run: the broker is away; the gate records events.
    let mut daemon = bench.start("first");
    bench.play_door(15);
    if damage == Damage::KillWhileWriting {
        // Kill it while it is still recording: contact changes go on around the kill.
        let gpio = bench.root.join("gpio.sock");
        for n in 0..14 {
            let level = if n % 2 == 0 { "high" } else { "low" };
            assert_eq!(simulated_gpio(&gpio, &format!("input 27 {level}")), "ok");
            std::thread::sleep(Duration::from_millis(35));
        }
        daemon.kill();
    } else {
        let status = daemon.terminate(PATIENCE);
        assert!(
            status.success(),
            "first run exit {status}:\n{}",
            bench.log("first")
        );
    }
    let held = bench.held();
    assert!(held.len() >= 20, "only {} events held", held.len());
    let highest_used = held.iter().map(|e| e.id).max().unwrap_or(0);
    let held: BTreeMap<u64, serde_json::Value> = held
        .iter()
        .map(|e| {
            let json: serde_json::Value = serde_json::from_slice(&e.to_json()).expect("event JSON");
            (e.id, json)
        })
        .collect();

    apply(damage, &bench.state());

    // Second run: the broker is back.
    bench.broker.resume();
    let mut mqtt = Subscriber::start_on(
        &bench.broker.address(),
        &format!("palmgate/{gate}/event/#"),
        None,
    );
    let daemon = bench.start("second");
    // One event after the restart: it must get a new id.
    bench.play_door(1);

    let deadline = Instant::now() + PATIENCE;
    let delivered = loop {
        let delivered = Delivered::from_lines(mqtt.all());
        let unaccounted: Vec<u64> = held
            .keys()
            .copied()
            .filter(|id| !delivered.accounts_for(*id))
            .collect();
        let fresh = delivered.events.keys().any(|id| *id > highest_used);
        if unaccounted.is_empty() && fresh {
            break delivered;
        }
        assert!(
            Instant::now() < deadline,
            "{damage:?}: held events neither delivered nor reported lost: {unaccounted:?} \
             (reports {:?}, new event after restart: {fresh}); log:\n{}",
            delivered.reports,
            bench.log("second")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Ids the gate used before the damage never name another event.
    for (id, event) in &delivered.events {
        if let Some(original) = held.get(id) {
            assert_eq!(
                event, original,
                "{damage:?}: id {id} reused for another event"
            );
        } else {
            assert!(
                *id > highest_used,
                "{damage:?}: id {id} (at or below {highest_used}, the highest used before) \
                 names an event the gate did not hold"
            );
        }
    }
    let lost = delivered.lost_ranges();
    if damage == Damage::None {
        assert!(lost.is_empty(), "control: nothing to report, got {lost:?}");
    }
    if matches!(damage, Damage::DeleteOutboxDir | Damage::TruncateHalf) {
        assert!(!lost.is_empty(), "{damage:?}: the loss must be reported");
    }
    eprintln!(
        "{damage:?}: {} held, {} delivered, lost ranges {lost:?}",
        held.len(),
        held.keys()
            .filter(|id| delivered.events.contains_key(id))
            .count()
    );
    drop(daemon);
}

#[test]
fn control_without_damage_delivers_everything() {
    run_matrix_row(Damage::None, "fm-control");
}

#[test]
fn a_database_truncated_to_half_is_delivered_or_reported() {
    run_matrix_row(Damage::TruncateHalf, "fm-truncate");
}

#[test]
fn three_overwritten_blocks_are_delivered_or_reported() {
    run_matrix_row(Damage::Overwrite512x3, "fm-overwrite");
}

#[test]
fn forty_flipped_bytes_are_delivered_or_reported() {
    run_matrix_row(Damage::Flip40Bytes, "fm-flip");
}

#[test]
fn a_database_truncated_to_nothing_is_reported() {
    run_matrix_row(Damage::TruncateToZero, "fm-empty");
}

#[test]
fn a_deleted_outbox_directory_is_reported_and_ids_go_on() {
    run_matrix_row(Damage::DeleteOutboxDir, "fm-deleted");
}

#[test]
fn a_gate_killed_while_recording_delivers_what_it_held() {
    run_matrix_row(Damage::KillWhileWriting, "fm-killed");
}
