//! Card lifecycle end to end, on the real services (pcscd + vpcd with `palmgate-vcard`, the
//! sensor simulator on a pseudo-terminal, mosquitto, `palmgate run` with simulated doors):
//!
//! - revocation with the operator tool `palmgate revoke`: a forged list (a key the gate does not
//!   trust) is refused and reported; a gate that was stopped while the operator revoked gets the
//!   retained list when it starts (after the command's freshness window) and denies the card; the
//!   list survives a restart with the broker's copy gone; live revoke / restore on a running gate;
//!   an older list published later does not un-revoke;
//! - erasure at an enrolment station: `palmgate card info` for the installer, then `palmgate card
//!   erase --broker … --station …` publishes `card.erased` with a receipt that verifies;
//! - the operator tool over TLS with a client certificate (mosquitto `require_certificate`), and
//!   refused by a broker it does not trust.

mod mqtt_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use palmgate::event::CardId;
use palmgate::gate::state::revocation::RevocationList;
use palmgate::mqtt::{Command as GateCommand, OperatorSigner, Topics};
use palmgate_system_tests::gate::{
    ChildGuard, NotifySocket, Palms, Subscriber, VirtualCard, clear_retained, field, gate_config,
    now_unix, palmgate, palmgate_output, personalised_card, publish, sensor_simulator,
    start_daemon,
};
use palmgate_system_tests::{reader_lock, require_mqtt, require_pcscd_vpcd};

const PATIENCE: Duration = Duration::from_secs(30);
/// `mqtt.command_max_age_s` of the test gate (the smallest allowed): a list published while the
/// gate is stopped is stale by the time it starts.
const MAX_AGE_S: u64 = 5;

fn utf8(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Writes an operator private key file (mode 0600, as `palmgate revoke` requires).
fn write_private_key(path: &Path, signer: &OperatorSigner) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, signer.to_pkcs8_pem().expect("pem").as_bytes()).expect("key file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// A running gate and how to stop and restart it.
struct Gate {
    config: PathBuf,
    notify: NotifySocket,
    log: PathBuf,
    daemon: Option<ChildGuard>,
}

impl Gate {
    fn start(config: PathBuf, root: &Path, mqtt: &mut Subscriber) -> Self {
        let mut gate = Self {
            config,
            notify: NotifySocket::bind(root),
            log: root.join("daemon.log"),
            daemon: None,
        };
        gate.resume(mqtt);
        gate
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Starts the daemon and waits until it is ready and online.
    fn resume(&mut self, mqtt: &mut Subscriber) {
        // Each run appends to the log (start_daemon truncates: keep the previous runs).
        let previous = self.log();
        self.daemon = Some(start_daemon(&self.config, &self.notify, &self.log));
        let ready = self.notify.wait_for("READY=1", PATIENCE);
        assert!(
            ready.is_some(),
            "no READY=1; log:\n{previous}{}",
            self.log()
        );
        mqtt.wait_for_matching(
            "/status",
            |payload| field(payload, "state").as_deref() == Some("online"),
            PATIENCE,
        );
    }

    /// SIGTERM; the daemon must exit 0 promptly.
    fn stop(&mut self) {
        let mut daemon = self.daemon.take().expect("running");
        let status = daemon
            .try_terminate(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("palmgate run did not stop; log:\n{}", self.log()));
        assert!(status.success(), "daemon exit status {status}");
    }
}

/// Presents `card_state` and returns the access event's payload (granted or denied).
fn present(card_state: &Path, mqtt: &mut Subscriber) -> String {
    let card = VirtualCard::insert(card_state);
    let event = mqtt.wait_for_matching(
        "",
        |payload| {
            payload.contains("\"kind\":\"access.granted\"")
                || payload.contains("\"kind\":\"access.denied\"")
        },
        PATIENCE,
    );
    card.remove();
    event
}

fn revoke(args: &[&str]) -> String {
    palmgate(&[&["revoke"], args].concat())
}

#[test]
fn revocation_from_the_operator_side_reaches_running_and_offline_gates() {
    require_pcscd_vpcd();
    let broker = require_mqtt();
    let _reader = reader_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    // A gate id of its own per run: retained messages of earlier runs cannot interfere.
    let gate_id = format!("rev-{}", std::process::id());
    let topics = Topics::new("palmgate", &gate_id);
    let list_topic = topics.command("revocation_list");

    let issuer = root.join("issuer");
    palmgate(&["issuer", "init", "--out", utf8(&issuer)]);
    let operator = OperatorSigner::generate().expect("operator key");
    let operator_key = root.join("operator.key");
    write_private_key(&operator_key, &operator);
    let operator_pub = root.join("operator.pub");
    std::fs::write(&operator_pub, operator.public_key_pem()).expect("operator.pub");
    let intruder_key = root.join("intruder.key");
    write_private_key(
        &intruder_key,
        &OperatorSigner::generate().expect("intruder key"),
    );

    let palms = Palms::new(root);
    let (alice_template, _) = palms.template(0);
    let alice_state = root.join("alice.card");
    let alice = personalised_card(&alice_state, &issuer, &[alice_template], None);

    let sensor_link = root.join("sensor");
    let config = gate_config(
        root,
        &gate_id,
        &issuer.join("issuer.pub"),
        &sensor_link,
        &operator_pub,
    );
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replacen(
            "[mqtt]\n",
            &format!("[mqtt]\ncommand_max_age_s = {MAX_AGE_S}\n"),
            1,
        ),
    )
    .expect("config");
    let gate_list = root.join("revoked.json");
    let site_list = root.join("site-revoked.json");
    let broker_url = format!("mqtt://{broker}");
    let alice_hex = alice.to_string();
    // `palmgate revoke` for this gate and broker, by the operator with `key` who keeps `list`.
    let revoke_as = |key: &Path, list: &Path, what: &[&str]| {
        let mut args = what.to_vec();
        args.extend([
            "--operator-key",
            utf8(key),
            "--list",
            utf8(list),
            "--gate",
            &gate_id,
            "--broker",
            &broker_url,
        ]);
        revoke(&args)
    };

    let mut mqtt = Subscriber::start(&format!("palmgate/{gate_id}/#"));
    let _sensor = sensor_simulator(&sensor_link, &palms.captures(0, 3), 5);
    let mut gate = Gate::start(config, root, &mut mqtt);

    let granted = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&granted, "kind").as_deref(),
        Some("access.granted"),
        "{granted}"
    );

    // A list signed by a key the gate does not trust: published (the broker takes anything),
    // refused by the gate and reported; nothing is applied.
    let intruder_list = root.join("intruder-list.json");
    let out = revoke_as(&intruder_key, &intruder_list, &[&alice_hex]);
    assert!(out.contains("revoked card"), "{out}");
    let refused = mqtt.wait_for("/event/command.refused", PATIENCE);
    assert_eq!(
        field(&refused, "reason").as_deref(),
        Some("bad_signature"),
        "{refused}"
    );
    assert!(!gate_list.exists(), "a forged list was written");

    // The operator revokes Alice's card while the gate is stopped.
    gate.stop();
    let out = revoke_as(&operator_key, &site_list, &[&alice_hex]);
    assert!(out.contains(&format!("revoked card {alice_hex}")), "{out}");
    assert!(out.contains("acknowledged"), "{out}");
    let site = RevocationList::load(&site_list).expect("operator's list");
    assert!(site.cards().contains(&alice));
    // Older than the gate's freshness window by the time the gate is back.
    std::thread::sleep(Duration::from_secs(MAX_AGE_S + 1));
    gate.resume(&mut mqtt);
    let updated = mqtt.wait_for("/event/revocation.updated", PATIENCE);
    assert!(
        updated.contains(&format!("version {}", site.version())),
        "{updated}"
    );
    let denied = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("card_revoked"),
        "{denied}"
    );
    assert_eq!(
        RevocationList::load(&gate_list).expect("gate's list"),
        site,
        "the gate persisted the operator's list"
    );

    // Restarted without the broker's copy: the gate's own file keeps the card revoked, and the
    // restart reports nothing.
    gate.stop();
    clear_retained(&broker, &list_topic);
    let seen_before = mqtt.all().len();
    gate.resume(&mut mqtt);
    let denied = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("card_revoked"),
        "{denied}"
    );
    // Once more with the retained list back on the broker: redelivered on connect, ignored
    // silently (not a refusal at every reconnect).
    let out = revoke_as(&operator_key, &site_list, &["--republish"]);
    assert!(out.contains("publishing the list again"), "{out}");
    mqtt.wait_for("/event/revocation.updated", PATIENCE);
    gate.stop();
    gate.resume(&mut mqtt);
    let denied = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("card_revoked"),
        "{denied}"
    );
    let refusals: Vec<String> = mqtt.all()[seen_before..]
        .iter()
        .filter(|line| line.contains("/event/command.refused"))
        .cloned()
        .collect();
    assert!(refusals.is_empty(), "refusals after restarts: {refusals:?}");

    // Live, on the running gate: restore, then revoke again.
    revoke_as(&operator_key, &site_list, &[&alice_hex, "--unrevoke"]);
    mqtt.wait_for("/event/revocation.updated", PATIENCE);
    let granted = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&granted, "kind").as_deref(),
        Some("access.granted"),
        "{granted}"
    );
    revoke_as(&operator_key, &site_list, &[&alice_hex]);
    mqtt.wait_for("/event/revocation.updated", PATIENCE);
    let denied = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("card_revoked"),
        "{denied}"
    );

    // An older list (validly signed, fresh) published later does not un-revoke.
    let in_force = RevocationList::load(&site_list).expect("list");
    let older = GateCommand::RevocationList {
        version: in_force.version() - 1,
        cards: vec![],
    };
    let payload = operator.sign(&gate_id, &older, now_unix(), b"an-older-list-0001");
    publish(&broker, &list_topic, &payload);
    let refused = mqtt.wait_for("/event/command.refused", PATIENCE);
    assert!(refused.contains("not newer"), "{refused}");
    let denied = present(&alice_state, &mut mqtt);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("card_revoked"),
        "{denied}"
    );
    assert_eq!(
        RevocationList::load(&gate_list).expect("gate list"),
        in_force
    );

    gate.stop();
    clear_retained(&broker, &list_topic);
}

#[test]
fn card_info_then_erase_publishes_a_receipt_that_verifies() {
    require_pcscd_vpcd();
    let broker = require_mqtt();
    let _reader = reader_lock();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let station = format!("desk-{}", std::process::id());
    let issuer = root.join("issuer");
    palmgate(&["issuer", "init", "--out", utf8(&issuer)]);
    let palms = Palms::new(root);
    let (template, _) = palms.template(3);
    let state = root.join("leaver.card");
    let card_id: CardId = personalised_card(&state, &issuer, &[template], None);
    let list = root.join("site-revoked.json");
    std::fs::write(
        &list,
        format!("{{\"version\": 4, \"cards\": [\"{}\"]}}", "ab".repeat(16)),
    )
    .expect("list");

    let card = VirtualCard::insert(&state);
    let info = palmgate(&[
        "card",
        "info",
        "--reader",
        "Virtual PCD",
        "--issuer",
        utf8(&issuer),
        "--revocation-list",
        utf8(&list),
    ]);
    for expected in [
        format!("card id: {card_id}"),
        "state: personalised".to_string(),
        "certificate check: valid".to_string(),
        "slots: 1 of 6 used (enrolled)".to_string(),
        "revoked: no (list".to_string(),
        "ready for use: yes".to_string(),
    ] {
        assert!(info.contains(&expected), "missing {expected:?} in:\n{info}");
    }
    // Against another issuer the check fails, and says so with exit status 1.
    let other = root.join("other-issuer");
    palmgate(&["issuer", "init", "--out", utf8(&other)]);
    let foreign = palmgate_output(&[
        "card",
        "info",
        "--reader",
        "Virtual PCD",
        "--issuer",
        utf8(&other),
    ]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&foreign.stdout).contains("certificate check: FAILED"));

    let mut mqtt = Subscriber::start(&format!("palmgate/{station}/event/#"));
    let receipt = root.join("receipt.bin");
    let out = palmgate(&[
        "card",
        "erase",
        "--reader",
        "Virtual PCD",
        "--issuer",
        utf8(&issuer),
        "--receipt",
        utf8(&receipt),
        "--broker",
        &format!("mqtt://{broker}"),
        "--station",
        &station,
    ]);
    assert!(out.starts_with("erased 1 slot(s)"), "{out}");
    assert!(out.contains("published card.erased"), "{out}");
    let event = mqtt.wait_for("/event/card.erased", PATIENCE);
    assert_eq!(
        field(&event, "card_id"),
        Some(card_id.to_string()),
        "{event}"
    );
    assert_eq!(field(&event, "gate"), Some(station.clone()), "{event}");
    let json: serde_json::Value = serde_json::from_str(&event).expect("json");
    assert_eq!(
        json["receipt"]["bundle"].as_str(),
        Some(hex::encode(std::fs::read(&receipt).expect("receipt file")).as_str()),
        "the event carries the stored receipt"
    );
    assert!(
        json["receipt"]["erase_counter"]
            .as_u64()
            .is_some_and(|n| n >= 1)
    );
    let event_file = root.join("card.erased.json");
    std::fs::write(&event_file, &event).expect("event file");
    let verified = palmgate(&[
        "card",
        "verify-receipt",
        "--issuer",
        utf8(&issuer),
        "--receipt",
        utf8(&event_file),
    ]);
    assert!(verified.contains("receipt valid"), "{verified}");
    assert!(
        verified.contains(&format!("card id: {card_id}")),
        "{verified}"
    );
    // Another issuer does not accept it.
    let refused = palmgate_output(&[
        "card",
        "verify-receipt",
        "--issuer",
        utf8(&other),
        "--receipt",
        utf8(&event_file),
    ]);
    assert!(!refused.status.success());

    let info = palmgate(&["card", "info", "--reader", "Virtual PCD"]);
    assert!(info.contains("slots: 0 of 6 used (not enrolled)"), "{info}");
    assert!(
        info.contains("ready for use: no (no template enrolled)"),
        "{info}"
    );
    card.remove();
}

#[test]
fn revoke_publishes_over_tls_with_a_client_certificate() {
    let _ = require_mqtt();
    let tls = mqtt_support::TlsBroker::start(&[("ca", &["server", "operator"]), ("rogue-ca", &[])]);
    let tls_port = tls.tls_port;
    let file = |name: &str| tls.file(name).display().to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let operator = OperatorSigner::generate().expect("operator key");
    let operator_key = dir.path().join("operator.key");
    write_private_key(&operator_key, &operator);
    let list = dir.path().join("list.json");
    let card = "00112233445566778899aabbccddeeff";
    let mut sub = Subscriber::start_on(&tls.broker.addr(), "palmgate/tls-gate/cmd/#", None);
    let url = format!("mqtts://127.0.0.1:{tls_port}");
    let args = |ca: &str| {
        vec![
            "revoke".to_string(),
            card.to_string(),
            "--operator-key".into(),
            operator_key.display().to_string(),
            "--list".into(),
            list.display().to_string(),
            "--gate".into(),
            "tls-gate".into(),
            "--broker".into(),
            url.clone(),
            "--ca".into(),
            file(ca),
            "--client-cert".into(),
            file("operator.crt"),
            "--client-key".into(),
            file("operator.key"),
        ]
    };
    let ok = args("ca.crt");
    let out = palmgate(&ok.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.contains("acknowledged by mqtts://127.0.0.1"), "{out}");
    let payload = sub.wait_for("/cmd/revocation_list", PATIENCE);
    let json: serde_json::Value = serde_json::from_str(&payload).expect("json");
    assert_eq!(json["gate"], "tls-gate");
    assert_eq!(json["args"]["cards"], serde_json::json!([card]));
    // The signed list verifies for that gate under the operator's public key.
    let verifier = palmgate::mqtt::CommandVerifier::new(
        "tls-gate",
        vec![operator.operator_key()],
        Duration::from_secs(60),
    );
    let verdict = verifier.verify(
        "revocation_list",
        payload.as_bytes(),
        false,
        now_unix(),
        &mut palmgate::mqtt::command::MemoryReplayCache::default(),
    );
    assert!(
        matches!(verdict, palmgate::mqtt::command::Verdict::Accept(_)),
        "{verdict:?}"
    );

    // A broker whose certificate the given CA did not sign: refused, with a clear error.
    let rogue = args("rogue-ca.crt");
    let refused = palmgate_output(&rogue.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot connect to mqtts://127.0.0.1"),
        "{stderr}"
    );
    // Without the client certificate the broker refuses the operator.
    let mut anonymous = args("ca.crt");
    anonymous.truncate(anonymous.len() - 4);
    let refused = palmgate_output(&anonymous.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(!refused.status.success());
}
