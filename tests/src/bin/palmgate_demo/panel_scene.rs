//! The demo's reader-mode scene: `palmgate run` as the OSDP reader of an access panel (libosdp's
//! control panel on a pty), one presentation over the secure channel. Same harness as
//! `tests/tests/panel_osdp/gate.rs`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use palmgate::event::CardId;
use palmgate_system_tests::gate::{
    NotifySocket, Subscriber, VirtualCard, gate_config_on, start_daemon,
};
use palmgate_system_tests::osdp::ControlPanel;
use palmgate_system_tests::workspace_binary;

const PANEL_GATE: &str = "demo-panel-gate";
const PATIENCE: Duration = Duration::from_secs(30);
/// The panel's secure channel key, installed on the reader with KEYSET at commissioning.
const PANEL_KEY: &str = "00112233445566778899aabbccddeeff";

/// What the scene needs from the demo's site.
pub struct Site<'a> {
    /// The demo's working directory.
    pub root: &'a Path,
    /// The issuer's directory (its key signs the credential map).
    pub issuer: &'a Path,
    /// The operator's public key file.
    pub operator_pub: &'a Path,
    /// The broker (`host:port`).
    pub broker: &'a str,
    /// The sensor simulator's link (free: the demo's first gate has stopped).
    pub sensor_link: &'a Path,
    /// Alice's card state and id.
    pub alice: (&'a Path, &'a CardId),
}

/// Runs the scene; returns the expectations (what, held, detail) for the demo's report.
pub fn run(site: &Site<'_>) -> Vec<(String, bool, String)> {
    let mut results = Vec::new();
    println!(
        "  ..    reader mode: a second gate as the OSDP reader of an access panel (libosdp CP)"
    );
    let dir = site.root.join("panel-gate");
    if let Err(error) = std::fs::create_dir_all(&dir) {
        return vec![("reader mode set up".into(), false, error.to_string())];
    }
    let (alice_card, alice_id) = site.alice;
    let map = dir.join("credentials.toml");
    let written = std::fs::write(
        &map,
        format!(
            "version = 1\n[[card]]\ncard_id = \"{alice_id}\"\nformat = \"h10301\"\nfacility = 12\nnumber = 3456\n"
        ),
    );
    let signed = Command::new(workspace_binary("palmgate"))
        .args(["issuer", "sign-credential-map"])
        .arg("--issuer-key")
        .arg(site.issuer.join("issuer.key"))
        .arg(&map)
        .output();
    if written.is_err() || !signed.as_ref().is_ok_and(|o| o.status.success()) {
        return vec![(
            "credential map signed".into(),
            false,
            format!("{written:?} {signed:?}"),
        )];
    }
    let mut cp = ControlPanel::spawn();
    let config = gate_config_on(
        site.broker,
        &dir,
        PANEL_GATE,
        &site.issuer.join("issuer.pub"),
        site.sensor_link,
        site.operator_pub,
    );
    let panel = format!(
        "\n[panel]\nprotocol = \"osdp\"\ncredential_map = \"{map}\"\n\n[panel.osdp]\ndevice = \"{pty}\"\naddress = 1\nscbk_file = \"{key}\"\ninstall_mode = true\nrequire_secure = true\n\n[panel.feedback]\ngreen_led_pin = 20\nred_led_pin = 21\nbuzzer_pin = 26\nactive = \"high\"\n",
        map = map.display(),
        pty = cp.pty.display(),
        key = dir.join("osdp-scbk").display(),
    );
    let appended = std::fs::read_to_string(&config)
        .and_then(|text| std::fs::write(&config, format!("{text}{panel}")));
    if let Err(error) = appended {
        return vec![("reader mode configured".into(), false, error.to_string())];
    }
    let mut mqtt = Subscriber::start_on(
        site.broker,
        &format!("palmgate/{PANEL_GATE}/event/access.granted"),
        None,
    );
    let notify = NotifySocket::bind(&dir);
    let log = dir.join("palmgate.log");
    let mut daemon = start_daemon(&config, &notify, &log);
    if notify.wait_for("READY=1", PATIENCE).is_none() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return vec![("the reader-mode gate reports READY".into(), false, log)];
    }

    // Commissioning: the panel finds the reader in install mode, sets up the secure channel with
    // the default key, installs its own key (KEYSET) and comes back with it.
    cp.ask(&format!("start 1 {PANEL_KEY}"));
    let status = cp.ask("wait_sc 30");
    results.push((
        "the panel installs its key and talks to the reader over the secure channel".to_string(),
        status["sc"] == true,
        status.to_string(),
    ));

    // Alice: card and palm verified by the gate; the panel gets her number and answers.
    cp.ask("answer green");
    let card = VirtualCard::insert(alice_card);
    let read = cp.ask(&format!("wait_card {}", PATIENCE.as_secs()));
    let granted = mqtt.wait_for("/event/access.granted", PATIENCE);
    card.remove();
    let data = read["card"]["data"].as_str().unwrap_or("-").to_string();
    println!("  ..    the panel read 26-bit card data {data} (H10301 facility 12, card 3456)");
    results.push((
        "Alice's palm match reaches the panel as her 26-bit credential number".to_string(),
        data == "0606c040",
        read.to_string(),
    ));
    let detail = serde_json::from_str::<serde_json::Value>(&granted)
        .ok()
        .and_then(|event| event.get("detail")?.as_str().map(str::to_string))
        .unwrap_or_default();
    println!("  ..    access.granted detail: {detail}");
    results.push((
        "the grant event carries the panel's answer (green LED, beeps)".to_string(),
        detail.contains("panel answered LED green"),
        granted,
    ));
    cp.ask("quit");
    let stopped = daemon.terminate(PATIENCE);
    results.push((
        "the reader-mode gate stops cleanly".to_string(),
        stopped.success(),
        stopped.to_string(),
    ));
    results
}
