//! Signed MQTT commands against a real mosquitto: a signed fresh command is accepted and handed
//! to the daemon; unsigned, wrongly signed, stale and replayed commands are refused and each
//! refusal is published as a `command.refused` event. Also: retained status, discovery.

mod mqtt_support;

use std::time::Duration;

use mqtt_support::{Gate, Subscriber, unique_prefix};
use palmgate::mqtt::{Command, OperatorSigner, Topics};
use palmgate_system_tests::gate::{
    ChildGuard, NotifySocket, Palms, Subscriber as LineSubscriber, clear_retained, field,
    gate_config, now_unix, palmgate, publish, publish_lines, sensor_simulator, simulated_gpio,
    start_daemon,
};
use palmgate_system_tests::{ReaderLock, reader_lock, require_mqtt, require_pcscd_vpcd};
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

const PATIENCE: Duration = Duration::from_secs(30);

/// The real `palmgate run` (simulated doors, sensor simulator, real pcscd and mosquitto) as
/// gate `gate`, with a subscriber on its events; READY and online when this returns.
struct RunningGate {
    gate: String,
    broker: String,
    root: tempfile::TempDir,
    operator: OperatorSigner,
    events: LineSubscriber,
    status: LineSubscriber,
    log: std::path::PathBuf,
    daemon: ChildGuard,
    _sensor: ChildGuard,
    _notify: NotifySocket,
    _reader: ReaderLock,
}

impl RunningGate {
    fn start(gate: &str) -> Self {
        require_pcscd_vpcd();
        let broker = require_mqtt();
        let reader = reader_lock();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let issuer = root.join("issuer");
        palmgate(&["issuer", "init", "--out", issuer.to_str().expect("utf-8")]);
        let operator = OperatorSigner::generate().expect("operator key");
        let operator_pub = root.join("operator.pub");
        std::fs::write(&operator_pub, operator.public_key_pem()).expect("operator key file");
        let palms = Palms::new(root);
        let sensor_link = root.join("sensor");
        let sensor = sensor_simulator(&sensor_link, &palms.captures(0, 1), 1);
        let config = gate_config(
            root,
            gate,
            &issuer.join("issuer.pub"),
            &sensor_link,
            &operator_pub,
        );
        let events = LineSubscriber::start(&format!("palmgate/{gate}/event/#"));
        let mut status = LineSubscriber::start(&format!("palmgate/{gate}/status"));
        let notify = NotifySocket::bind(root);
        let log = root.join("daemon.log");
        let daemon = start_daemon(&config, &notify, &log);
        assert!(notify.wait_for("READY=1", PATIENCE).is_some(), "no READY=1");
        status.wait_for_matching("/status", |p| p.contains("\"online\""), PATIENCE);
        Self {
            gate: gate.to_owned(),
            broker,
            root: dir,
            operator,
            events,
            status,
            log,
            daemon,
            _sensor: sensor,
            _notify: notify,
            _reader: reader,
        }
    }

    fn topics(&self) -> Topics {
        Topics::new("palmgate", &self.gate)
    }

    /// Publishes the file `payload` on `topic` at QoS 1 (`mosquitto_pub -f`: no argument limit).
    fn publish_file(&self, topic: &str, payload: &[u8], retain: bool) {
        let file = self.root.path().join("payload");
        std::fs::write(&file, payload).expect("payload file");
        let (host, port) = self.broker.rsplit_once(':').expect("host:port");
        let mut command = std::process::Command::new("mosquitto_pub");
        command.args(["-h", host, "-p", port, "-q", "1", "-t", topic, "-f"]);
        command.arg(&file);
        if retain {
            command.arg("-r");
        }
        let published = command.status().expect("mosquitto_pub");
        assert!(
            published.success(),
            "mosquitto_pub of {} bytes failed",
            payload.len()
        );
    }

    /// Sends a signed unlock of door `main` and waits for the gate to carry it out.
    fn unlock_main(&mut self, nonce: &[u8]) {
        let unlock = Command::Unlock {
            door: "main".into(),
            duration_s: Some(1),
        };
        let signed = self.operator.sign(&self.gate, &unlock, now_unix(), nonce);
        publish(&self.broker, &self.topics().command("unlock"), &signed);
        let granted = self
            .events
            .wait_for("/event/access.remote_unlock", PATIENCE);
        assert_eq!(field(&granted, "result").as_deref(), Some("granted"));
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM; the daemon exits 0. Returns its log.
    fn stop(mut self) -> String {
        let exit = self.daemon.terminate(PATIENCE);
        assert!(exit.success(), "daemon exit status {exit}:\n{}", self.log());
        self.log()
    }
}

/// JSON-looking text of exactly `len` bytes.
fn padded_json(len: usize) -> Vec<u8> {
    let mut payload = b"{\"pad\": \"".to_vec();
    payload.resize(len - 2, b'x');
    payload.extend_from_slice(b"\"}");
    payload
}

/// A 16 MiB command published retained (anyone who may publish on `cmd/#` can, no signature
/// needed) used to make the client drop the connection on every reconnect: a reconnect storm in
/// which signed commands never ran. Now the real `palmgate run` stays connected, refuses and
/// reports it as `too_large` (as a 2 MiB non-retained one), and still carries out signed commands.
#[test]
fn a_16_mib_retained_command_leaves_the_gate_connected_and_serving() {
    let mut gate = RunningGate::start("e2e-oversize");
    let lockdown_topic = gate.topics().command("lockdown");
    gate.publish_file(&lockdown_topic, &padded_json(16 * 1024 * 1024), true);
    let refused = gate.events.wait_for_matching(
        "/event/command.refused",
        |p| {
            field(p, "reason").as_deref() == Some("too_large")
                && field(p, "detail").as_deref() == Some("lockdown")
        },
        PATIENCE,
    );
    assert_eq!(field(&refused, "result").as_deref(), Some("refused"));

    // Not retained, 2 MiB: refused as documented, once, the connection kept.
    gate.publish_file(
        &gate.topics().command("unlock"),
        &padded_json(2 * 1024 * 1024),
        false,
    );
    gate.events.wait_for_matching(
        "/event/command.refused",
        |p| {
            field(p, "reason").as_deref() == Some("too_large")
                && field(p, "detail").as_deref() == Some("unlock")
        },
        PATIENCE,
    );

    // A signed command still runs.
    gate.unlock_main(b"after-16-mib-0001");

    // One connection all along: never offline, each oversized command reported once.
    let lines = gate.status.all().to_vec();
    assert!(
        lines.iter().all(|line| !line.contains("\"offline\"")),
        "the gate went offline:\n{}",
        lines.join("\n")
    );
    let too_large = gate
        .events
        .all()
        .iter()
        .filter(|line| line.contains("\"reason\":\"too_large\""))
        .count();
    assert_eq!(too_large, 2, "each oversized command reported once");
    let log = gate.log();
    assert!(
        !log.contains("MQTT connection lost"),
        "the connection was lost:\n{log}"
    );
    clear_retained(&gate.broker.clone(), &lockdown_topic);
    gate.stop();
}

/// A flood of malformed commands no longer holds a door alarm back: once the gate has taken in
/// 2,000 of them, a forced door is published after at most 256 `command.refused` events (the
/// rest are counted and reported in one summary), where it used to wait behind all 2,000.
#[test]
fn a_door_alarm_is_not_queued_behind_a_flood_of_refusals() {
    const FLOOD: usize = 2000;
    let mut gate = RunningGate::start("e2e-refusal-flood");
    let lines: String = (0..FLOOD)
        .map(|n| format!("{{\"not\": \"a command {n}\"}}\n"))
        .collect();
    publish_lines(&gate.broker, &gate.topics().command("unlock"), &lines);
    // Wait until the gate has judged every one (each refusal is logged, reported or not).
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let judged = gate.log().matches("command refused").count();
        if judged >= FLOOD {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gate judged {judged} of {FLOOD} commands in {PATIENCE:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The door is forced open (contact_pin 27, active high) once the controller has read it.
    let gpio = gate.root.path().join("gpio.sock");
    assert_eq!(simulated_gpio(&gpio, "input 27 high"), "ok");
    gate.events.wait_for("/event/door.forced", PATIENCE);
    let before_alarm = gate
        .events
        .all()
        .iter()
        .take_while(|line| !line.contains("/event/door.forced"))
        .filter(|line| line.contains("/event/command.refused"))
        .count();
    assert!(
        before_alarm <= 256,
        "{before_alarm} refusal reports were published before the alarm"
    );
    assert_eq!(simulated_gpio(&gpio, "input 27 low"), "ok");
    // Nothing lost in silence: the refusals not reported one by one are counted in the summary
    // recorded when the link stops.
    let log = gate.stop();
    let reported = log
        .lines()
        .filter(|line| line.contains("command refused") && !line.contains("next summary"))
        .count();
    let summary = format!("suppressed: {} more refused commands", FLOOD - reported);
    assert!(
        log.contains(&summary),
        "no `{summary}` in the daemon's log ({reported} reported one by one)"
    );
}
