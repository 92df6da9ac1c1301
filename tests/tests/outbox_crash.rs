//! SIGKILL during a burst of events: nothing the outbox reported durable is lost, ids stay
//! contiguous and monotonic, and every record still decrypts.
//!
//! The child is this test binary itself, re-run with `--exact outbox_child_process --ignored`.

mod mqtt_support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mqtt_support::outbox_options;
use palmgate::event::{EventKind, NewEvent, Outcome, Timestamp};
use palmgate::outbox::Outbox;

const CHILD_DIR: &str = "PALMGATE_OUTBOX_CHILD_DIR";

#[test]
fn sigkill_during_a_burst_loses_no_durable_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "outbox_child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("stdout");
    let mut durable = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(id) = line.strip_prefix("durable ") {
            durable = id.trim().parse().expect("id");
            if durable >= 1000 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "child too slow: durable {durable}"
        );
    }
    // Kill it in the middle of the burst (it keeps appending past 1,000).
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(
        durable >= 1000,
        "child reported only {durable} durable events"
    );

    let outbox = Outbox::open(&outbox_options(dir.path(), "gate-1", 1_000_000)).expect("reopen");
    outbox.flush().expect("flush");
    let events = outbox.pending(None, usize::MAX).expect("read back");
    let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
    assert!(
        ids.len() as u64 >= durable,
        "lost events: {} < {durable}",
        ids.len()
    );
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "ids contiguous from 1"
    );
    assert!(
        events
            .iter()
            .all(|e| e.kind == EventKind::AccessGranted && e.gate == "gate-1")
    );
    // New events continue after the highest id, never reusing one.
    let next = outbox
        .append(NewEvent::new(EventKind::AccessGranted, Timestamp::now()))
        .expect("append");
    assert_eq!(next.id, ids.len() as u64 + 1);
}

/// The child process of the test above (not a test on its own: it never ends by itself).
#[test]
#[ignore = "child process of sigkill_during_a_burst_loses_no_durable_event"]
fn outbox_child_process() {
    let dir = std::env::var(CHILD_DIR).expect("run only as the child of the crash test");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let outbox = Arc::new(
            Outbox::open(&outbox_options(
                std::path::Path::new(&dir),
                "gate-1",
                1_000_000,
            ))
            .expect("open"),
        );
        let flusher = outbox.clone();
        tokio::spawn(async move { flusher.run_flusher(std::future::pending()).await });
        let mut durable = outbox.durable();
        tokio::spawn(async move {
            while durable.changed().await.is_ok() {
                let id = *durable.borrow_and_update();
                println!("durable {id}");
            }
        });
        let mut n = 0i64;
        loop {
            n += 1;
            let event = NewEvent::new(EventKind::AccessGranted, Timestamp::from_unix_ms(n))
                .result(Outcome::Granted);
            outbox.append(event).expect("append");
            if n % 20 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
}
