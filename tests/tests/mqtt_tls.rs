//! TLS with a client certificate against a real mosquitto (`require_certificate true`): the gate's
//! own rustls 0.23 client (through its Unix-socket bridge) connects and delivers events; a gate
//! whose client certificate, or whose trusted CA, is wrong never connects.

mod mqtt_support;

use std::path::PathBuf;
use std::time::Duration;

use mqtt_support::{Gate, Subscriber, TlsBroker, mqtt_settings, unique_prefix};
use palmgate::config::MqttScheme;
use palmgate::event::{EventKind, NewEvent, Outcome, Timestamp};

fn tls_broker() -> TlsBroker {
    TlsBroker::start(&[("ca", &["server", "gate"]), ("rogue-ca", &["rogue"])])
}

fn tls_gate(tls: &TlsBroker, prefix: &str, ca: &str, client: &str) -> Gate {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut mqtt = mqtt_settings(
        &format!("127.0.0.1:{}", tls.tls_port),
        prefix,
        "gate-1",
        vec![],
    );
    let file = |name: &str| -> PathBuf { tls.broker.dir().join(name) };
    mqtt.url = format!("mqtts://127.0.0.1:{}", tls.tls_port);
    mqtt.scheme = MqttScheme::Mqtts;
    mqtt.ca_file = Some(file(&format!("{ca}.crt")));
    mqtt.cert_file = Some(file(&format!("{client}.crt")));
    mqtt.key_file = Some(file(&format!("{client}.key")));
    Gate::launch(dir, "gate-1", mqtt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate_delivers_and_wrong_identities_are_kept_out() {
    let _ = palmgate_system_tests::require_mqtt();
    let tls = tls_broker();
    let prefix = unique_prefix("tls");
    let mut sub = Subscriber::connect(
        &tls.broker.addr(),
        &format!("{prefix}-sub"),
        &[format!("{prefix}/gate-1/event/#")],
        false,
    )
    .await;

    let mut gate = tls_gate(&tls, &prefix, "ca", "gate");
    gate.wait_connected().await;
    // A grant as the access machine writes it (the subscriber checks it against the schema).
    let event = NewEvent::new(EventKind::AccessGranted, Timestamp::now())
        .door("main")
        .card(palmgate::event::CardId::new(&[1; 16]).expect("card id"))
        .result(Outcome::Granted)
        .latencies(palmgate::event::Latencies {
            decision_ms: Some(1.0),
            ..Default::default()
        });
    gate.outbox.append(event).expect("append");
    let received = sub
        .next_on("/event/access.granted", Duration::from_secs(15))
        .await;
    assert_eq!(received.json()["id"], 1);
    gate.stop().await;

    // A client certificate from another CA: the broker refuses the handshake.
    let mut rogue = tls_gate(&tls, &format!("{prefix}-rogue"), "ca", "rogue");
    // A gate that does not trust the broker's CA refuses the server.
    let mut distrustful = tls_gate(&tls, &format!("{prefix}-distrust"), "rogue-ca", "gate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !*rogue.handles.connected.borrow_and_update(),
        "rogue client certificate accepted"
    );
    assert!(
        !*distrustful.handles.connected.borrow_and_update(),
        "untrusted server accepted"
    );
    rogue.stop().await;
    distrustful.stop().await;
}
