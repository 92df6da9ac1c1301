//! The outbox delivers every event to a real mosquitto once, in order, and empties itself.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::{Gate, PrivateBroker, Subscriber, unique_prefix};
use palmgate::event::{EventKind, NewEvent, Outcome, Reason, Timestamp};

fn denied(n: i64) -> NewEvent {
    NewEvent::new(EventKind::AccessDenied, Timestamp::from_unix_ms(n))
        .door("main")
        .result(Outcome::Denied)
        .reason(Reason::NO_MATCH)
}

/// Collects event ids until `count` distinct ids arrived; returns them in arrival order.
async fn collect_ids(subscriber: &mut Subscriber, count: usize, timeout: Duration) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut distinct = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while distinct.len() < count {
        let message = tokio::time::timeout_at(deadline, subscriber.messages.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} events arrived", distinct.len()))
            .expect("subscriber alive");
        let id = message.json()["id"].as_u64().expect("event id");
        assert!(message.topic.ends_with(&format!(
            "/event/{}",
            message.json()["kind"].as_str().expect("kind")
        )));
        ids.push(id);
        distinct.insert(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_events_are_delivered_once_in_order_and_deleted() {
    let addr = palmgate_system_tests::require_mqtt();
    let prefix = unique_prefix("delivery");
    let mut subscriber = Subscriber::connect(
        &addr,
        &format!("{prefix}-sub"),
        &[format!("{prefix}/gate-1/event/#")],
        false,
    )
    .await;
    let mut gate = Gate::start(&addr, &prefix, "gate-1", vec![]).await;
    gate.wait_connected().await;

    for n in 0..500 {
        gate.outbox.append(denied(n)).expect("append");
    }
    let ids = collect_ids(&mut subscriber, 500, Duration::from_secs(30)).await;
    assert_eq!(ids, (1..=500).collect::<Vec<u64>>(), "once each, in order");
    // Every PUBACK deleted its event.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !gate.outbox.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox still holds {}",
            gate.outbox.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Nothing more arrives (no duplicates).
    let extra = tokio::time::timeout(Duration::from_millis(500), subscriber.messages.recv()).await;
    assert!(extra.is_err(), "unexpected extra message {extra:?}");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flowing_across_a_broker_restart_all_arrive_in_order() {
    // The shared test broker must not be restarted: this test runs its own mosquitto (which
    // `cargo xtask test` installs) and still requires the test environment.
    let _ = palmgate_system_tests::require_mqtt();
    let mut broker = PrivateBroker::start();
    let addr = broker.addr();
    let prefix = unique_prefix("restart");
    let filter = format!("{prefix}/gate-1/event/#");
    let mut subscriber = Subscriber::connect(
        &addr,
        &format!("{prefix}-sub"),
        std::slice::from_ref(&filter),
        true,
    )
    .await;
    let mut gate = Gate::start(&addr, &prefix, "gate-1", vec![]).await;
    gate.wait_connected().await;

    let total: i64 = 1500;
    let producer = {
        let outbox = gate.outbox.clone();
        tokio::spawn(async move {
            for n in 0..total {
                outbox.append(denied(n)).expect("append");
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    broker.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = gate.outbox.len();
    broker.resume();
    producer.await.expect("producer");

    let ids = collect_ids(&mut subscriber, total as usize, Duration::from_secs(60)).await;
    // First occurrences come in id order; every id 1..=total arrived.
    let mut seen = std::collections::BTreeSet::new();
    let firsts: Vec<u64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    assert_eq!(firsts, (1..=total as u64).collect::<Vec<u64>>());
    assert!(held > 0, "the outage should have held events back");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !gate.outbox.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox still holds {}",
            gate.outbox.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "restart: {} deliveries for {total} events ({} redelivered after the outage), {held} held",
        ids.len(),
        ids.len() - total as usize
    );
    gate.stop().await;
}
