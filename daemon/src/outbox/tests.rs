use super::*;

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
}

#[test]
fn a_corrupt_record_is_replaced_by_an_alarm_and_the_queue_flows_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outbox = Outbox::open(&options(dir.path(), 100)).expect("open");
    for n in 0..3 {
        outbox.append(event(n)).expect("append");
    }
    let mut record = outbox
        .events
        .get(2u64.to_be_bytes())
        .expect("get")
        .expect("record")
        .to_vec();
    record[8] ^= 0xff;
    outbox
        .events
        .insert(2u64.to_be_bytes(), record)
        .expect("tamper");
    outbox.flush().expect("flush");
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
    assert_eq!(alarm[0].kind.as_str(), "alarm.outbox_corrupt");
    assert!(
        alarm[0]
            .detail
            .as_deref()
            .is_some_and(|r| r.contains("record 2"))
    );
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
    let read_epoch = |outbox: &Outbox| {
        outbox
            .meta
            .get(META_EPOCH)
            .expect("get")
            .expect("epoch")
            .to_vec()
    };
    let first = read_epoch(&Outbox::open(&options(dir.path(), 100)).expect("open"));
    let second = read_epoch(&Outbox::open(&options(dir.path(), 100)).expect("open"));
    assert_eq!(first, 1u32.to_be_bytes());
    assert_eq!(second, 2u32.to_be_bytes());
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
