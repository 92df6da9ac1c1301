use super::*;
use std::time::Duration;

fn options(dir: &std::path::Path, max_events: u64) -> OutboxOptions {
    OutboxOptions {
        dir: dir.join("outbox"),
        device_key_file: dir.join("device.key"),
        gate: "gate-1".into(),
        max_events,
        alarm_percent: 50,
    }
}

fn event(n: i64) -> NewEvent {
    NewEvent::new(EventKind::AccessDenied, Timestamp::from_unix_ms(n)).reason(Reason::NO_MATCH)
}

#[test]
fn events_are_numbered_and_published_only_when_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&options(dir.path(), 100)).expect("open");
    let first = outbox.append(event(1)).expect("append");
    let second = outbox.append(event(2)).expect("append");
    assert_eq!((first.id, second.id), (1, 2));
    assert_eq!(first.gate, "gate-1");
    assert!(
        outbox.pending(None, 10).expect("pending").is_empty(),
        "not flushed yet"
    );
    assert_eq!(outbox.flush().expect("flush"), 2);
    let pending = outbox.pending(None, 10).expect("pending");
    assert_eq!(pending, vec![first.clone(), second.clone()]);
    assert_eq!(outbox.pending(Some(1), 10).expect("pending"), vec![second]);
    assert!(outbox.ack(1).expect("ack"));
    assert!(!outbox.ack(1).expect("ack twice"));
    assert_eq!(outbox.len(), 1);
}

#[test]
fn ids_stay_monotonic_across_reopening_even_when_empty() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(&options(dir.path(), 100)).expect("open");
        for n in 0..5 {
            outbox.append(event(n)).expect("append");
        }
        outbox.flush().expect("flush");
        for id in 1..=5 {
            assert!(outbox.ack(id).expect("ack"));
        }
        outbox.flush().expect("flush");
        assert!(outbox.is_empty());
    }
    let outbox = Outbox::open(&options(dir.path(), 100)).expect("reopen");
    assert_eq!(outbox.append(event(6)).expect("append").id, 6);
}

#[test]
fn nothing_readable_in_the_database_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&options(dir.path(), 100)).expect("open");
    outbox
        .append(
            event(1)
                .detail("very_distinctive_reason_text")
                .door("front_door_marker"),
        )
        .expect("append");
    outbox.flush().expect("flush");
    drop(outbox);
    let mut found = Vec::new();
    for entry in walk(&dir.path().join("outbox")) {
        let bytes = std::fs::read(&entry).expect("read");
        for needle in [
            &b"very_distinctive_reason_text"[..],
            b"front_door_marker",
            b"access.denied",
        ] {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(entry.display().to_string());
            }
        }
    }
    assert!(found.is_empty(), "plaintext in {found:?}");
}

fn walk(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}

#[test]
fn bounded_with_one_filling_alarm_that_rearms_after_draining() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&options(dir.path(), 10)).expect("open");
    let mut kinds = Vec::new();
    let mut refused = 0;
    for n in 0..12 {
        match outbox.append(event(n)) {
            Ok(_) => {}
            Err(OutboxError::Full { max: 10 }) => refused += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    outbox.flush().expect("flush");
    for stored in outbox.pending(None, 100).expect("pending") {
        kinds.push(stored.kind.as_str().to_owned());
    }
    // 5 events reach 50 %: the alarm is the 6th record; 4 more fit, 3 are refused.
    assert_eq!(kinds.len(), 10);
    assert_eq!(kinds.iter().filter(|k| *k == "outbox.filling").count(), 1);
    assert_eq!(kinds[5], "outbox.filling");
    assert_eq!(refused, 3);
    // Drain to half the alarm level (2 of 10), then fill again: a second alarm.
    for id in 1..=8 {
        outbox.ack(id).expect("ack");
    }
    for n in 0..4 {
        outbox.append(event(n)).expect("append");
    }
    outbox.flush().expect("flush");
    let alarms = outbox
        .pending(None, 100)
        .expect("pending")
        .iter()
        .filter(|e| e.kind == EventKind::OutboxFilling)
        .map(|e| e.id)
        .collect::<Vec<_>>();
    // Records 9, 10 and four new ones (11–14): the sixth record is the re-armed alarm.
    assert_eq!(alarms, vec![14]);
    // The three refused events are reported once there was room again.
    outbox.flush().expect("flush");
    let reports: Vec<_> = outbox
        .pending(None, 100)
        .expect("pending")
        .into_iter()
        .filter(|e| e.kind == EventKind::AlarmEventsLost)
        .map(|e| e.detail.clone().unwrap_or_default())
        .collect();
    assert_eq!(reports, vec!["count=3 cause=outbox_full".to_string()]);
}

#[test]
fn a_corrupt_record_is_replaced_by_a_loss_report_and_the_queue_flows_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&options(dir.path(), 100)).expect("open");
    for n in 0..3 {
        outbox.append(event(n)).expect("append");
    }
    outbox.flush().expect("flush");
    let (_, mut record) = outbox
        .store
        .records_from(2, 1)
        .expect("read")
        .pop()
        .expect("record");
    record[8] ^= 0xff;
    outbox
        .store
        .commit(&Batch {
            insert: vec![(2, record)],
            ..Batch::default()
        })
        .expect("tamper");
    let ids: Vec<_> = outbox
        .pending(None, 10)
        .expect("pending")
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(ids, vec![1, 3]);
    outbox.flush().expect("flush");
    let alarm = outbox.pending(Some(3), 10).expect("pending");
    assert_eq!(alarm.len(), 1);
    assert_eq!(alarm[0].kind, EventKind::AlarmEventsLost);
    assert_eq!(
        alarm[0].detail.as_deref(),
        Some("first_id=2 last_id=2 count=1 cause=record_unreadable")
    );
    // Reported once: not again after a restart.
    drop(outbox);
    let outbox = Outbox::open(&options(dir.path(), 100)).expect("reopen");
    outbox.flush().expect("flush");
    let kinds: Vec<_> = outbox
        .pending(Some(4), 10)
        .expect("pending")
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(kinds.is_empty(), "reported again: {kinds:?}");
}

#[test]
fn another_gate_id_or_key_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    drop(Outbox::open(&options(dir.path(), 100)).expect("open"));
    let mut other = options(dir.path(), 100);
    other.gate = "gate-2".into();
    let error = Outbox::open(&other).expect_err("other gate");
    assert!(matches!(error, OutboxError::GateChanged { .. }), "{error}");
}

#[test]
fn epochs_advance_on_every_opening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let read_epoch = |outbox: &Outbox| outbox.store.meta(meta::EPOCH).expect("get").expect("epoch");
    let first = read_epoch(&Outbox::open(&options(dir.path(), 100)).expect("open"));
    let second = read_epoch(&Outbox::open(&options(dir.path(), 100)).expect("open"));
    assert_eq!(first, 1u32.to_be_bytes().to_vec());
    assert_eq!(second, 2u32.to_be_bytes().to_vec());
}

#[tokio::test]
async fn the_flusher_makes_appends_durable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = std::sync::Arc::new(Outbox::open(&options(dir.path(), 100)).expect("open"));
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let flusher = tokio::spawn({
        let outbox = outbox.clone();
        async move {
            outbox
                .run_flusher(async { stop_rx.await.unwrap_or(()) })
                .await
        }
    });
    let mut durable = outbox.durable();
    outbox.append(event(1)).expect("append");
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        durable.wait_for(|id| *id >= 1),
    )
    .await
    .expect("flushed in time")
    .expect("watch open");
    assert_eq!(outbox.pending(None, 10).expect("pending").len(), 1);
    stop_tx.send(()).expect("stop");
    flusher.await.expect("flusher");
}

// ---- Damage, loss accounting and full disk ----

/// What a consumer sees after damage: the events delivered and the id ranges reported lost.
struct Seen {
    delivered: Vec<Event>,
    lost: Vec<(EventId, EventId)>,
}

fn drain(outbox: &Outbox) -> Seen {
    // Twice: loss reports raised by the first commit are committed by the second.
    outbox.flush().expect("flush");
    outbox.flush().expect("flush");
    let mut delivered = Vec::new();
    let mut lost = Vec::new();
    for event in outbox.pending(None, usize::MAX).expect("pending") {
        if event.kind == EventKind::AlarmEventsLost
            && let Some(ids) = event
                .detail
                .as_deref()
                .and_then(LossReport::parse)
                .and_then(|report| report.ids)
        {
            lost.push(ids);
        }
        delivered.push(event);
    }
    Seen { delivered, lost }
}

/// Appends `count` events, delivers (acknowledges) the first `delivered`, shuts down cleanly.
/// Returns the events still held.
fn hold_events(dir: &std::path::Path, count: i64, delivered: u64) -> Vec<Event> {
    let outbox = Outbox::open(&options(dir, 10_000)).expect("open");
    let mut held = Vec::new();
    for n in 0..count {
        held.push(outbox.append(event(n)).expect("append"));
    }
    outbox.flush().expect("flush");
    for id in 1..=delivered {
        assert!(outbox.ack(id).expect("ack"));
    }
    outbox.flush().expect("flush");
    held.retain(|e| e.id > delivered);
    held
}

/// Every held event is delivered unchanged or inside a reported range; new ids are above
/// every id used before.
fn assert_nothing_lost_in_silence(dir: &std::path::Path, held: &[Event], what: &str) {
    let outbox = Outbox::open(&options(dir, 10_000)).expect("reopen after damage");
    let outcome = drain(&outbox);
    for event in held {
        let delivered = outcome.delivered.iter().any(|d| d == event);
        let reported = outcome
            .lost
            .iter()
            .any(|(first, last)| (*first..=*last).contains(&event.id));
        assert!(
            delivered || reported,
            "{what}: event {} neither delivered nor reported lost (reports {:?})",
            event.id,
            outcome.lost
        );
    }
    let highest = held.iter().map(|e| e.id).max().unwrap_or(0);
    for event in &outcome.delivered {
        if event.id <= highest {
            assert!(
                held.contains(event),
                "{what}: id {} reused for another event",
                event.id
            );
        }
    }
    let next = outbox.append(event(9_999)).expect("append").id;
    assert!(next > highest, "{what}: next id {next} not above {highest}");
}

fn db_file(dir: &std::path::Path) -> PathBuf {
    dir.join("outbox").join(DB_FILE)
}

/// A small deterministic generator for damage positions.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    TruncateHalf,
    Overwrite512x3,
    Flip40Bytes,
    TruncateToZero,
}

const DAMAGES: [Damage; 4] = [
    Damage::TruncateHalf,
    Damage::Overwrite512x3,
    Damage::Flip40Bytes,
    Damage::TruncateToZero,
];

fn damage(file: &std::path::Path, damage: Damage, seed: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let len = std::fs::metadata(file).expect("file").len();
    let mut rng = Xorshift(seed | 1);
    let mut handle = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open for damage");
    match damage {
        Damage::TruncateHalf => handle.set_len(len / 2).expect("truncate"),
        Damage::TruncateToZero => handle.set_len(0).expect("truncate"),
        Damage::Overwrite512x3 => {
            for _ in 0..3 {
                let at = rng.next() % len.saturating_sub(512).max(1);
                let garbage: Vec<u8> = (0..512).map(|_| rng.next() as u8).collect();
                handle.seek(SeekFrom::Start(at)).expect("seek");
                handle.write_all(&garbage).expect("overwrite");
            }
        }
        Damage::Flip40Bytes => {
            let mut bytes = std::fs::read(file).expect("read");
            for _ in 0..40 {
                let at = (rng.next() % len) as usize;
                bytes[at] ^= 0xff;
            }
            std::fs::write(file, bytes).expect("write");
        }
    }
    handle.sync_all().expect("sync");
}

#[test]
fn every_kind_of_damage_is_delivered_or_reported_and_ids_never_repeat() {
    for (round, kind) in DAMAGES.into_iter().enumerate() {
        for seed in 1..=3u64 {
            let dir = tempfile::tempdir().expect("tempdir");
            let held = hold_events(dir.path(), 121, 10);
            damage(&db_file(dir.path()), kind, seed * 7919 + round as u64);
            assert_nothing_lost_in_silence(dir.path(), &held, &format!("{kind:?} seed {seed}"));
        }
    }
}

#[test]
fn a_deleted_outbox_directory_is_reported_with_the_exact_range() {
    let dir = tempfile::tempdir().expect("tempdir");
    let held = hold_events(dir.path(), 121, 10);
    std::fs::remove_dir_all(dir.path().join("outbox")).expect("delete");
    let outbox = Outbox::open(&options(dir.path(), 10_000)).expect("reopen");
    let outcome = drain(&outbox);
    // The clean stop wrote the exact mark: ids 11–121 were held, nothing more.
    assert_eq!(outcome.lost, vec![(11, 121)]);
    assert_eq!(
        outcome.delivered[0].detail.as_deref(),
        Some("first_id=11 last_id=121 count=111 cause=outbox_missing")
    );
    assert_eq!(outcome.delivered[0].id, 122);
    drop(outbox);
    assert_nothing_lost_in_silence(dir.path(), &held, "outbox deleted");
}

#[test]
fn a_damaged_database_is_set_aside_for_inspection() {
    let dir = tempfile::tempdir().expect("tempdir");
    hold_events(dir.path(), 50, 0);
    damage(&db_file(dir.path()), Damage::TruncateHalf, 5);
    let outbox = Outbox::open(&options(dir.path(), 10_000)).expect("reopen");
    let outcome = drain(&outbox);
    assert_eq!(outcome.lost, vec![(1, 50)]);
    assert!(
        outcome.delivered[0]
            .detail
            .as_deref()
            .is_some_and(|r| r.ends_with("cause=outbox_damaged")),
        "{:?}",
        outcome.delivered[0].detail
    );
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".damaged-"))
        .collect();
    assert_eq!(aside.len(), 1, "one damaged copy kept");
}

#[test]
fn a_crash_after_the_mark_was_written_ahead_never_reuses_a_published_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let outbox = Outbox::open(&options(dir.path(), 10_000)).expect("open");
        for n in 0..5 {
            outbox.append(event(n)).expect("append");
        }
        // A commit without the shutdown's exact mark: as if the process were killed now.
        outbox.commit_pending().expect("commit");
    }
    std::fs::remove_dir_all(dir.path().join("outbox")).expect("delete");
    let outbox = Outbox::open(&options(dir.path(), 10_000)).expect("reopen");
    let outcome = drain(&outbox);
    // Ids 1–5 may have been published; the mark was a block ahead, so all of it is reported.
    assert_eq!(outcome.lost, vec![(1, 5 + mark::BLOCK)]);
    assert_eq!(outcome.delivered[0].id, 5 + mark::BLOCK + 1);
}

/// A store whose writes fail with "no space" while `full` is set.
struct FullDisk {
    inner: RedbStore,
    full: std::sync::atomic::AtomicBool,
}

impl FullDisk {
    fn refuse(&self) -> Result<(), StoreError> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StoreError::Io(std::io::Error::from(
                std::io::ErrorKind::StorageFull,
            )))
        } else {
            Ok(())
        }
    }
}

impl Store for FullDisk {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        self.refuse()?;
        self.inner.commit(batch)
    }
    fn records_from(
        &self,
        start: EventId,
        limit: usize,
    ) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        self.inner.records_from(start, limit)
    }
    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        self.inner.ids()
    }
    fn contains(&self, id: EventId) -> Result<bool, StoreError> {
        self.inner.contains(id)
    }
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.meta(key)
    }
    fn state_insert_new(&self, table: &str, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        self.refuse()?;
        self.inner.state_insert_new(table, key, value)
    }
    fn state_contains(&self, table: &str, key: &[u8]) -> Result<bool, StoreError> {
        self.inner.state_contains(table, key)
    }
    fn state_prune(&self, table: &str, expired: &dyn Fn(&[u8]) -> bool) -> Result<(), StoreError> {
        self.inner.state_prune(table, expired)
    }
}

#[test]
fn a_full_disk_holds_events_in_memory_counts_the_overflow_and_recovers_by_itself() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options(dir.path(), 10_000);
    std::fs::create_dir_all(&options.dir).expect("dir");
    let store = Arc::new(FullDisk {
        inner: RedbStore::open(&options.dir.join(DB_FILE)).expect("store"),
        full: false.into(),
    });
    let key = DeviceKey::from_bytes([3; 32]);
    let mut outbox = Outbox::open_with_store(&options, &key, store.clone(), None).expect("open");
    outbox.set_unwritten_max(5);
    outbox.append(event(0)).expect("append");
    outbox.flush().expect("flush");

    store.full.store(true, Ordering::SeqCst);
    outbox.append(event(1)).expect("append");
    assert!(outbox.commit_pending().is_err(), "the disk is full");
    let mut refused = 0;
    for n in 2..=8 {
        match outbox.append(event(n)) {
            Ok(_) => {}
            Err(OutboxError::NotStored { held: 5, .. }) => refused += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(refused, 3, "5 wait in memory, 3 are refused");
    assert!(outbox.commit_pending().is_err(), "still full");
    assert_eq!(outbox.pending(None, 100).expect("pending").len(), 1);

    // Space comes back: the next commit writes the held events and reports the refused ones.
    store.full.store(false, Ordering::SeqCst);
    let outcome = drain(&outbox);
    let kinds: Vec<_> = outcome.delivered.iter().map(|e| (e.id, e.kind)).collect();
    assert_eq!(outcome.delivered.len(), 7, "{kinds:?}");
    assert_eq!(
        outcome.delivered[..6]
            .iter()
            .map(|e| e.id)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    let report = &outcome.delivered[6];
    assert_eq!(report.kind, EventKind::AlarmEventsLost);
    assert_eq!(report.detail.as_deref(), Some("count=3 cause=not_stored"));
    // And recording goes on.
    assert_eq!(outbox.append(event(9)).expect("append").id, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flusher_retries_until_the_disk_takes_writes_again() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().expect("tempdir");
    let options = options(dir.path(), 10_000);
    std::fs::create_dir_all(&options.dir).expect("dir");
    let store = Arc::new(FullDisk {
        inner: RedbStore::open(&options.dir.join(DB_FILE)).expect("store"),
        full: true.into(),
    });
    let key = DeviceKey::from_bytes([3; 32]);
    // Opening needs one write (the epoch); let it through, then fill the disk.
    store.full.store(false, Ordering::SeqCst);
    let outbox =
        Arc::new(Outbox::open_with_store(&options, &key, store.clone(), None).expect("open"));
    store.full.store(true, Ordering::SeqCst);
    let flusher = tokio::spawn({
        let outbox = outbox.clone();
        async move { outbox.run_flusher(std::future::pending()).await }
    });
    outbox.append(event(1)).expect("append");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        *outbox.durable().borrow(),
        0,
        "nothing durable on a full disk"
    );
    // No new append, no restart: the flusher's own retry finds the space.
    store.full.store(false, Ordering::SeqCst);
    let mut durable = outbox.durable();
    tokio::time::timeout(Duration::from_secs(5), durable.wait_for(|id| *id >= 1))
        .await
        .expect("recovered by itself")
        .expect("watch");
    flusher.abort();
}

#[test]
fn gaps_are_the_missing_runs_and_are_bounded() {
    assert_eq!(gaps(&[1, 2, 3], 1, 3, 16), vec![]);
    assert_eq!(
        gaps(&[2, 5], 1, 6, 16),
        vec![
            LostRange {
                first: 1,
                last: 1,
                count: 1
            },
            LostRange {
                first: 3,
                last: 4,
                count: 2
            },
            LostRange {
                first: 6,
                last: 6,
                count: 1
            },
        ]
    );
    assert_eq!(
        gaps(&[2, 4], 1, 5, 2),
        vec![
            LostRange {
                first: 1,
                last: 1,
                count: 1
            },
            LostRange {
                first: 3,
                last: 5,
                count: 2
            },
        ]
    );
    assert_eq!(gaps(&[], 5, 4, 16), vec![]);
}

// ---- The engine comparison (sled 0.34 against redb) on the same damage ----

/// What an engine makes of a damaged file.
#[derive(Debug, PartialEq, Eq)]
enum EngineOutcome {
    /// It refused to open: the damage is detected.
    Detected,
    /// It opened and every record is there and intact.
    Intact,
    /// It opened and records are missing or altered, with no error.
    Silent { missing: usize, altered: usize },
    /// Another error.
    Failed(String),
    /// The engine panicked.
    Panicked,
}

fn engine_outcome(
    open: &dyn Fn() -> Result<Box<dyn Store>, StoreError>,
    expected: &[(EventId, Vec<u8>)],
) -> EngineOutcome {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let store = match open() {
            Ok(store) => store,
            Err(StoreError::Damaged(_)) => return EngineOutcome::Detected,
            Err(other) => return EngineOutcome::Failed(other.to_string()),
        };
        let found = match store.records_from(0, usize::MAX) {
            Ok(found) => found,
            Err(StoreError::Damaged(_)) => return EngineOutcome::Detected,
            Err(other) => return EngineOutcome::Failed(other.to_string()),
        };
        let mut missing = 0;
        let mut altered = 0;
        for (id, record) in expected {
            match found.iter().find(|(f, _)| f == id) {
                None => missing += 1,
                Some((_, r)) if r != record => altered += 1,
                Some(_) => {}
            }
        }
        if missing + altered == 0 {
            EngineOutcome::Intact
        } else {
            EngineOutcome::Silent { missing, altered }
        }
    }));
    result.unwrap_or(EngineOutcome::Panicked)
}

#[test]
fn engine_fault_matrix_redb_never_loses_silently() {
    // Silence sled's and redb's panic messages: they are outcomes here.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let records: Vec<(EventId, Vec<u8>)> = (1..=300u64)
        .map(|id| {
            (
                id,
                (0..200)
                    .map(|b| (id as u8).wrapping_mul(31) ^ b as u8)
                    .collect(),
            )
        })
        .collect();
    let mut table = Vec::new();
    let mut redb_silent = Vec::new();
    for kind in DAMAGES {
        for seed in 1..=5u64 {
            let dir = tempfile::tempdir().expect("tempdir");
            let sled_dir = dir.path().join("sled");
            let redb_path = dir.path().join("events.redb");
            {
                let sled = sled_store::SledStore::open(&sled_dir).expect("sled");
                let redb = RedbStore::open(&redb_path).expect("redb");
                for chunk in records.chunks(30) {
                    let batch = Batch {
                        insert: chunk.to_vec(),
                        ..Batch::default()
                    };
                    sled.commit(&batch).expect("sled commit");
                    redb.commit(&batch).expect("redb commit");
                }
            }
            // sled's records live in its `db` file.
            damage(&sled_dir.join("db"), kind, seed * 104_729);
            damage(&redb_path, kind, seed * 104_729);
            let sled = engine_outcome(
                &|| sled_store::SledStore::open(&sled_dir).map(|s| Box::new(s) as Box<dyn Store>),
                &records,
            );
            let redb = engine_outcome(
                &|| RedbStore::open(&redb_path).map(|s| Box::new(s) as Box<dyn Store>),
                &records,
            );
            if matches!(redb, EngineOutcome::Silent { .. } | EngineOutcome::Panicked) {
                redb_silent.push(format!("{kind:?} seed {seed}: {redb:?}"));
            }
            table.push(format!("| {kind:?} | {seed} | {sled:?} | {redb:?} |"));
        }
    }
    std::panic::set_hook(hook);
    eprintln!(
        "| damage | seed | sled 0.34 | redb 5 |\n|---|---|---|---|\n{}",
        table.join("\n")
    );
    assert!(
        redb_silent.is_empty(),
        "redb lost records silently: {redb_silent:?}"
    );
}
