//! palmgate as an OSDP reader against libosdp's control panel (PyPI `libosdp`, a C library
//! nobody on this team wrote), over a real pseudo-terminal; `panel_osdp/cp_driver.py` steers the
//! CP.
//! - [`gate`]: `palmgate run` in reader mode on the real stack (pcscd + vpcd cards, the sensor
//!   simulator, mosquitto): a palm match gives the card data at the CP, a denial none; plain and
//!   secure channel (install mode, KEYSET, SCBK-D refused afterwards), the key and COMSET kept
//!   across restarts, the panel's LED/buzzer on the simulated feedback pins.
//! - the tests below: `palmgate-panel serve` (the panel side alone, verdicts on stdin) for what a
//!   palm cannot easily produce: duress and denial codes, LSTAT/ISTAT, a bad MAC refused and
//!   reported, a CP with another key.
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

#[path = "panel_osdp/gate.rs"]
mod gate;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use palmgate_card::host::issuer::IssuerKey;
use palmgate_panel::credential_map;
use palmgate_system_tests::osdp::{ControlPanel, JsonLines};
use palmgate_system_tests::workspace_binary;
use serde_json::Value;

const CARD: &str = "0102030405060708090a0b0c0d0e0f10";
const UNMAPPED_CARD: &str = "ffffffffffffffffffffffffffffffff";
/// H10301, facility 12, card 3456: 0 00001100 0000110110000000 1, left-justified.
const CARD_DATA: &str = "0606c040";
const KEY: &str = "00112233445566778899aabbccddeeff";
const WRONG_KEY: &str = "ffeeddccbbaa99887766554433221100";
const GREEN_PIN: u64 = 20;
const RED_PIN: u64 = 21;
const BUZZER_PIN: u64 = 26;

/// The PD: `palmgate-panel serve` on the slave side.
struct Reader {
    process: JsonLines,
}

impl Reader {
    fn spawn(dir: &Path, pty: &Path, osdp: &str) -> Self {
        let config = dir.join(format!("panel-{}.toml", std::process::id()));
        std::fs::write(
            &config,
            format!(
                r#"[panel]
protocol = "osdp"
credential_map = "{map}"
denied = {{ format = "h10301", facility = 12, number = 0 }}
[panel.osdp]
device = "{pty}"
baud = 9600
address = 1
scbk_file = "{key}"
vendor = "5a4701"
serial = 305419896
{osdp}
[panel.feedback]
green_led_pin = {GREEN_PIN}
red_led_pin = {RED_PIN}
buzzer_pin = {BUZZER_PIN}
active = "high"
"#,
                map = dir.join("credentials.toml").display(),
                pty = pty.display(),
                key = dir.join("osdp-scbk").display(),
            ),
        )
        .unwrap();
        let mut process = JsonLines::spawn(
            "palmgate-panel",
            Command::new(workspace_binary("palmgate-panel"))
                .arg("serve")
                .arg("--config")
                .arg(&config)
                .arg("--issuer")
                .arg(dir.join("issuer.pub"))
                .arg("--simulate-gpio"),
        );
        process.wait_for("", "ready", Duration::from_secs(20), |v| {
            v["event"] == "ready"
        });
        Self { process }
    }

    fn event(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        self.process
            .wait_for("", what, Duration::from_secs(20), wanted)
    }

    fn pin(&mut self, pin: u64, level: &str) {
        self.event(&format!("GPIO {pin} {level}"), |v| {
            v["event"] == "gpio" && v["pin"] == pin && v["level"] == level
        });
    }
}

/// Issuer key, signed credential map.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let issuer = IssuerKey::generate();
    std::fs::write(
        dir.path().join("issuer.pub"),
        hex::encode(issuer.public_key().to_bytes()),
    )
    .unwrap();
    let map = format!(
        "version = 1\n[[card]]\ncard_id = \"{CARD}\"\nformat = \"h10301\"\nfacility = 12\nnumber = 3456\nduress_number = 3457\n"
    );
    let path = dir.path().join("credentials.toml");
    std::fs::write(&path, &map).unwrap();
    std::fs::write(
        credential_map::signature_path(&path),
        credential_map::sign(map.as_bytes(), &issuer).unwrap(),
    )
    .unwrap();
    dir
}

#[test]
fn plain_channel_grant_denial_duress_and_feedback() {
    let dir = site();
    let mut cp = ControlPanel::spawn();
    let mut reader = Reader::spawn(dir.path(), &cp.pty, "require_secure = false");
    cp.ask("start 1 none");
    let status = cp.ask("wait_online 15");
    assert_eq!(status["online"], true, "{status}");
    assert_eq!(status["sc"], false, "no key: plain channel");

    reader.process.send(&format!("grant {CARD}"));
    reader.event("sent", |v| v["event"] == "sent" && v["number"] == 3456);
    let card = cp.ask("wait_card 10");
    assert_eq!(card["card"]["data"], CARD_DATA, "{card}");
    assert_eq!(card["card"]["length"], 26);
    assert_eq!(card["card"]["wiegand"], true);

    reader.process.send(&format!("duress {CARD}"));
    let card = cp.ask("wait_card 10");
    // 3457 = 0000110110000001: last 12 data bits 110110000001 (5 ones) → odd parity 0.
    assert_eq!(card["card"]["data"], "0606c080", "{card}");

    reader.process.send(&format!("deny {CARD}"));
    let card = cp.ask("wait_card 10");
    // The configured denial code: facility 12, card 0 → 0 00001100 0…0 1.
    assert_eq!(card["card"]["data"], "06000040", "{card}");

    reader.process.send(&format!("grant {UNMAPPED_CARD}"));
    let refused = reader.event("refusal", |v| v["event"] == "refused");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("no credential number"),
        "{refused}"
    );
    let card = cp.ask("wait_card 2");
    assert_eq!(
        card["card"],
        Value::Null,
        "nothing reaches the panel for an unmapped card"
    );

    // LSTAT (tamper, power) and ISTAT (one input) as the gate reports them.
    reader.process.send("tamper on");
    let report = cp.ask("status_report local");
    assert_eq!(
        report["report"]["report"], "0100",
        "tamper on, power normal: {report}"
    );
    reader.process.send("tamper off");
    let report = cp.ask("status_report local");
    assert_eq!(report["report"]["report"], "0000", "{report}");
    let report = cp.ask("status_report input");
    assert_eq!(
        report["report"]["report"], "00",
        "one input, inactive: {report}"
    );

    assert_eq!(cp.ask("led green")["submitted"], true);
    reader.event("LED command", |v| {
        v["event"] == "led" && v["permanent"] == "green"
    });
    reader.pin(GREEN_PIN, "high");
    assert_eq!(cp.ask("led red")["submitted"], true);
    reader.pin(RED_PIN, "high");
    assert_eq!(cp.ask("buzzer")["submitted"], true);
    reader.event("buzzer command", |v| {
        v["event"] == "buzzer" && v["count"] == 2
    });
    reader.pin(BUZZER_PIN, "high");
    reader.pin(BUZZER_PIN, "low");
    cp.ask("quit");
}

#[test]
fn secure_channel_install_keyset_bad_mac_and_wrong_key() {
    let dir = site();
    let mut cp = ControlPanel::spawn();
    let mut reader = Reader::spawn(
        dir.path(),
        &cp.pty,
        "install_mode = true\nrequire_secure = true",
    );

    // Install: the CP's SCBK is refused (none installed), its SCBK-D retry is accepted, it
    // installs its key with KEYSET and reconnects with it.
    cp.ask(&format!("start 1 {KEY}"));
    reader.event("SCBK-D session", |v| {
        v["event"] == "secure_channel" && v["default_key"] == true
    });
    reader.event("KEYSET", |v| v["event"] == "key_installed");
    reader.event("SCBK session", |v| {
        v["event"] == "secure_channel" && v["default_key"] == false
    });
    let status = cp.ask("wait_sc 15");
    assert_eq!(status["sc"], true, "{status}");
    let stored = std::fs::read_to_string(dir.path().join("osdp-scbk")).unwrap();
    assert_eq!(
        stored.trim(),
        KEY,
        "the installed key is kept for the next start"
    );

    reader.process.send(&format!("grant {CARD}"));
    let card = cp.ask("wait_card 10");
    assert_eq!(
        card["card"]["data"], CARD_DATA,
        "card data over the secure channel: {card}"
    );
    assert_eq!(cp.ask("led amber")["submitted"], true);
    reader.pin(GREEN_PIN, "high");
    reader.pin(RED_PIN, "high");

    // A command with a bad MAC: refused with NAK 6, reported, the session dropped (libosdp's CP
    // then takes the PD offline for minutes); a restarted CP with the key gets a new session.
    assert_eq!(cp.ask("corrupt_mac")["corrupted"], 1);
    let refused = reader.event("bad MAC", |v| v["event"] == "secure_refused");
    assert!(
        refused["reason"].as_str().unwrap().contains("bad MAC"),
        "{refused}"
    );
    let status = cp.ask("wait_sc_lost 5");
    assert_eq!(status["sc"], false, "the CP saw the session end: {status}");
    cp.ask("stop");
    cp.ask(&format!("start 1 {KEY}"));
    reader.event("new session", |v| {
        v["event"] == "secure_channel" && v["default_key"] == false
    });
    assert_eq!(cp.ask("wait_sc 15")["sc"], true);

    // COMSET: the PD answers with the new settings (same address and speed on a pty).
    assert_eq!(cp.ask("comset 1 9600")["submitted"], true);
    reader.event("COMSET", |v| {
        v["event"] == "comset" && v["address"] == 1 && v["baud"] == 9600
    });

    // A CP with another key: its SCBK fails, its SCBK-D retry is refused (install mode is
    // over), and card data is not sent in clear.
    cp.ask("stop");
    cp.ask(&format!("start 1 {WRONG_KEY}"));
    let refused = reader.event("SCBK-D refused", |v| v["event"] == "secure_refused");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("SCBK-D refused"),
        "{refused}"
    );
    let status = cp.ask("wait_sc 5");
    assert_eq!(status["sc"], false, "{status}");
    reader.process.send(&format!("grant {CARD}"));
    let card = cp.ask("wait_card 3");
    assert_eq!(
        card["card"],
        Value::Null,
        "no card data without the secure channel"
    );
    cp.ask("quit");
}
