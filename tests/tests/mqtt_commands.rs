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
        (
            "unsigned:unlock",
            serde_json::to_vec(&unsigned).expect("json"),
        ),
        (
            "bad_signature:unlock",
            impostor.sign("gate-1", &unlock, now(), &[3; 16]),
        ),
        (
            "stale:unlock",
            operator.sign("gate-1", &unlock, now() - 3600, &[4; 16]),
        ),
        ("replayed:unlock", signed),
        ("malformed:unlock", b"UNLOCK".to_vec()),
    ];
    for (reason, payload) in cases {
        send(payload).await;
        let refused = sub.next_on("/event/command.refused", WAIT).await.json();
        assert_eq!(refused["reason"], reason);
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
    // Published in this order: locks, contacts, event entities, diagnostics.
    let granted = sub
        .next_on("/event/gate-1_access_granted/config", WAIT)
        .await;
    assert_eq!(
        granted.json()["state_topic"],
        format!("{prefix}/gate-1/event/access.granted")
    );
    let connectivity = sub
        .next_on("/binary_sensor/gate-1_connectivity/config", WAIT)
        .await;
    assert_eq!(
        connectivity.json()["state_topic"],
        format!("{prefix}/gate-1/status")
    );
    let late = retained(
        &addr,
        &format!("{prefix}-ha/binary_sensor/gate-1_connectivity/config"),
    )
    .await;
    assert_eq!(late["device_class"], "connectivity");

    let online = sub.next_on("/gate-1/status", WAIT).await;
    assert_eq!(online.json()["state"], "online");

    // Cut the gate off without a goodbye (as a crash would): the broker publishes the last will.
    gate.abort();
    let will = sub.next_on("/gate-1/status", Duration::from_secs(20)).await;
    assert_eq!(
        will.json(),
        serde_json::json!({"state": "offline", "gate": "gate-1"})
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

/// A 16 MiB command published retained (anyone who may publish on `cmd/#` can, no signature
/// needed) used to make the client drop the connection on every reconnect: a reconnect storm in
/// which signed commands never ran. Now the real `palmgate run` stays connected, refuses and
/// reports it as `too_large` (as a 2 MiB non-retained one), and still carries out signed commands.
#[test]
fn a_16_mib_retained_command_leaves_the_gate_connected_and_serving() {
    use palmgate_system_tests::gate::{
        NotifySocket, Palms, Subscriber as LineSubscriber, clear_retained, field, gate_config,
        now_unix, palmgate, publish, sensor_simulator, start_daemon,
    };
    use palmgate_system_tests::{reader_lock, require_mqtt, require_pcscd_vpcd};

    const PATIENCE: Duration = Duration::from_secs(30);
    require_pcscd_vpcd();
    let broker = require_mqtt();
    let _reader = reader_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let issuer = root.join("issuer");
    palmgate(&["issuer", "init", "--out", issuer.to_str().expect("utf-8")]);
    let operator = OperatorSigner::generate().expect("operator key");
    let operator_pub = root.join("operator.pub");
    std::fs::write(&operator_pub, operator.public_key_pem()).expect("operator key file");
    let palms = Palms::new(root);
    let sensor_link = root.join("sensor");
    let _sensor = sensor_simulator(&sensor_link, &palms.captures(0, 1), 1);
    let gate = "e2e-oversize";
    let config = gate_config(
        root,
        gate,
        &issuer.join("issuer.pub"),
        &sensor_link,
        &operator_pub,
    );
    let mut events = LineSubscriber::start(&format!("palmgate/{gate}/event/#"));
    let mut status = LineSubscriber::start(&format!("palmgate/{gate}/status"));
    let notify = NotifySocket::bind(root);
    let log = root.join("daemon.log");
    let mut daemon = start_daemon(&config, &notify, &log);
    assert!(notify.wait_for("READY=1", PATIENCE).is_some(), "no READY=1");
    status.wait_for_matching("/status", |p| p.contains("\"online\""), PATIENCE);

    let topics = palmgate::mqtt::Topics::new("palmgate", gate);
    let lockdown_topic = topics.command("lockdown");
    // 16 MiB of JSON-looking text, retained: every (re)connection receives it.
    let oversized = root.join("oversized.json");
    let mut payload = b"{\"pad\": \"".to_vec();
    payload.resize(16 * 1024 * 1024 - 2, b'x');
    payload.extend_from_slice(b"\"}");
    std::fs::write(&oversized, &payload).expect("payload file");
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let published = std::process::Command::new("mosquitto_pub")
        .args([
            "-h",
            host,
            "-p",
            port,
            "-q",
            "1",
            "-r",
            "-t",
            &lockdown_topic,
            "-f",
        ])
        .arg(&oversized)
        .status()
        .expect("mosquitto_pub");
    assert!(published.success(), "mosquitto_pub of 16 MiB failed");
    let refused = events.wait_for_matching(
        "/event/command.refused",
        |p| p.contains("too_large:lockdown"),
        PATIENCE,
    );
    assert_eq!(field(&refused, "result").as_deref(), Some("refused"));

    // Not retained, 2 MiB: refused as documented, once, the connection kept.
    let unlock_topic = topics.command("unlock");
    payload.truncate(2 * 1024 * 1024);
    payload.extend_from_slice(b"\"}");
    std::fs::write(&oversized, &payload).expect("payload file");
    let published = std::process::Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-q", "1", "-t", &unlock_topic, "-f"])
        .arg(&oversized)
        .status()
        .expect("mosquitto_pub");
    assert!(published.success(), "mosquitto_pub of 2 MiB failed");
    events.wait_for_matching(
        "/event/command.refused",
        |p| p.contains("too_large:unlock"),
        PATIENCE,
    );

    // A signed command still runs.
    let unlock = Command::Unlock {
        door: "main".into(),
        duration_s: Some(1),
    };
    publish(
        &broker,
        &unlock_topic,
        &operator.sign(gate, &unlock, now_unix(), b"after-16-mib-0001"),
    );
    let granted = events.wait_for("/event/access.remote_unlock", PATIENCE);
    assert_eq!(field(&granted, "result").as_deref(), Some("granted"));

    // One connection all along: never offline, one oversized refusal of each, no reconnection.
    let lines = status.all().to_vec();
    assert!(
        lines.iter().all(|line| !line.contains("\"offline\"")),
        "the gate went offline:\n{}",
        lines.join("\n")
    );
    let too_large = events
        .all()
        .iter()
        .filter(|line| line.contains("too_large:"))
        .count();
    assert_eq!(too_large, 2, "each oversized command reported once");
    let daemon_log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !daemon_log.contains("MQTT connection lost"),
        "the connection was lost:\n{daemon_log}"
    );

    clear_retained(&broker, &lockdown_topic);
    let exit = daemon.terminate(PATIENCE);
    assert!(exit.success(), "daemon exit status {exit}");
}
