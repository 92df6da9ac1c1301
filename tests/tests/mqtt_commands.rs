//! Signed MQTT commands against a real mosquitto: a signed fresh command is accepted and handed
//! to the daemon; unsigned, wrongly signed, stale and replayed commands are refused and each
//! refusal is published as a `command.refused` event. Also: retained status, discovery.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::{Gate, Subscriber, unique_prefix};
use palmgate::mqtt::{Command, OperatorSigner};
use rumqttc::QoS;

const WAIT: Duration = Duration::from_secs(15);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_commands_are_accepted_and_bad_ones_refused_and_reported() {
    let addr = palmgate_system_tests::require_mqtt();
    let prefix = unique_prefix("cmd");
    let operator = OperatorSigner::generate().expect("operator key");
    let impostor = OperatorSigner::generate().expect("other key");
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let key_file = keys_dir.path().join("operator.pem");
    std::fs::write(&key_file, operator.public_key_pem()).expect("write key");

    let mut gate = Gate::start(&addr, &prefix, "gate-1", vec![key_file]).await;
    gate.wait_connected().await;
    let mut sub = Subscriber::connect(
        &addr,
        &format!("{prefix}-sub"),
        &[format!("{prefix}/gate-1/#"), format!("{prefix}-ha/#")],
        false,
    )
    .await;

    let status = sub.next_on("/gate-1/status", WAIT).await;
    assert_eq!(status.json()["state"], "online");
    // Retained: a subscriber arriving later still gets it.
    let late = retained(&addr, &format!("{prefix}/gate-1/status")).await;
    assert_eq!(late["state"], "online");

    let unlock = Command::Unlock {
        door: "main".into(),
        duration_s: Some(3),
    };
    let cmd_topic = format!("{prefix}/gate-1/cmd/unlock");
    let publisher = sub.client.clone();
    let send = |payload: Vec<u8>| {
        let client = publisher.clone();
        let topic = cmd_topic.clone();
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .expect("publish")
        }
    };

    // 1. Signed and fresh: accepted, handed over, reported.
    let signed = operator.sign("gate-1", &unlock, now(), &[1; 16]);
    send(signed.clone()).await;
    let verified = tokio::time::timeout(WAIT, gate.handles.commands.recv())
        .await
        .expect("command in time")
        .expect("command channel");
    assert_eq!(verified.command, unlock);
    let accepted = sub.next_on("/event/command.accepted", WAIT).await.json();
    assert_eq!(accepted["result"], "accepted");
    assert_eq!(accepted["door"], "main");

    // 2. Refusals, each reported with its reason.
    let mut unsigned: serde_json::Value =
        serde_json::from_slice(&operator.sign("gate-1", &unlock, now(), &[2; 16])).expect("json");
    unsigned
        .as_object_mut()
        .expect("object")
        .remove("signature");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unsigned", serde_json::to_vec(&unsigned).expect("json")),
        (
            "bad_signature",
            impostor.sign("gate-1", &unlock, now(), &[3; 16]),
        ),
        (
            "stale",
            operator.sign("gate-1", &unlock, now() - 3600, &[4; 16]),
        ),
        ("replayed", signed),
        ("malformed", b"UNLOCK".to_vec()),
    ];
    for (reason, payload) in cases {
        send(payload).await;
        let refused = sub.next_on("/event/command.refused", WAIT).await.json();
        assert_eq!(refused["reason"], reason);
        assert_eq!(refused["detail"], "unlock");
        assert_eq!(refused["severity"], "warning");
        assert_eq!(refused["result"], "refused");
        assert_eq!(refused["gate"], "gate-1");
    }
    // None of the refused commands reached the daemon.
    assert!(gate.handles.commands.try_recv().is_err());

    gate.stop().await;
    let offline = sub.next_on("/gate-1/status", WAIT).await;
    assert_eq!(offline.json()["state"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_last_will() {
    let addr = palmgate_system_tests::require_mqtt();
    let prefix = unique_prefix("disc");
    let mut gate = Gate::start(&addr, &prefix, "gate-1", vec![]).await;
    gate.wait_connected().await;
    let mut sub = Subscriber::connect(
        &addr,
        &format!("{prefix}-sub"),
        &[format!("{prefix}-ha/#"), format!("{prefix}/gate-1/status")],
        false,
    )
    .await;
    // One device message holds every entity (device-based discovery).
    let device = sub
        .next_on("/device/palmgate_gate-1/config", WAIT)
        .await
        .json();
    let granted = &device["cmps"]["palmgate_gate-1_access_granted"];
    assert_eq!(
        granted["state_topic"],
        format!("{prefix}/gate-1/event/access.granted")
    );
    assert_eq!(
        device["cmps"]["palmgate_gate-1_alarm_duress"]["platform"],
        "event"
    );
    assert_eq!(
        device["cmps"]["palmgate_gate-1_connectivity"]["state_topic"],
        format!("{prefix}/gate-1/status")
    );
    let late = retained(&addr, &format!("{prefix}-ha/device/palmgate_gate-1/config")).await;
    assert_eq!(
        late["cmps"]["palmgate_gate-1_connectivity"]["device_class"],
        "connectivity"
    );
    assert_eq!(late["origin"]["name"], "palmgate");

    let online = sub.next_on("/gate-1/status", WAIT).await;
    assert_eq!(online.json()["state"], "online");

    // Cut the gate off without a goodbye (as a crash would): the broker publishes the last will.
    gate.abort();
    let will = sub.next_on("/gate-1/status", Duration::from_secs(20)).await;
    assert_eq!(
        will.json(),
        serde_json::json!({"state": "offline", "gate": "gate-1", "api_version": 2})
    );
}

/// The retained message on `topic`, as a newly connected subscriber receives it.
async fn retained(addr: &str, topic: &str) -> serde_json::Value {
    let id = format!("late-{}", unique_prefix("late"));
    let mut late = Subscriber::connect(addr, &id, &[topic.to_owned()], false).await;
    let message = late.next(WAIT).await;
    assert!(message.retain, "{topic} is not retained");
    message.json()
}
