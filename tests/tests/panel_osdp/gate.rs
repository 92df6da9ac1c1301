//! `palmgate run` in reader mode, driven by libosdp's control panel over a pty, on the real
//! stack: pcscd + vpcd with `palmgate-vcard` cards, the sensor simulator, mosquitto.
//!
//! One scenario (the reader and the CP are shared), in order:
//! - plain channel: Alice's card and palm give her credential number at the CP, the panel's LED
//!   and buzzer answer reach the simulated feedback pins and the published event; Bob's palm
//!   does not match his card (a denial: nothing at the CP); Carol's card has no credential number
//!   (refused as presented, nothing at the CP); the gate's own lock is never released;
//! - restarted in install mode with the secure channel required: the CP's key is refused (none
//!   installed), its SCBK-D retry is accepted, it installs its key with KEYSET and comes back
//!   with it; Alice's card data crosses the secure channel; the panel moves the reader to
//!   address 2 with COMSET;
//! - restarted again (same configuration, still `install_mode = true`): the key and the new
//!   address were kept — the CP with the key at address 2 gets a secure channel and Alice's
//!   card data; a CP with another key is refused, its SCBK-D retry too (a key is installed),
//!   and gets no card data: the held event says it was not collected, and `alarm.panel_link`
//!   (`secure_channel_refused`) is published.

use std::path::Path;
use std::time::{Duration, Instant};

use palmgate_system_tests::gate::{
    VirtualCard, field, gate_config_on, palmgate, palmgate_output, personalised_card,
    simulated_gpio,
};
use palmgate_system_tests::site::{AliceAtTheGate, PATIENCE, Site};
use palmgate_system_tests::{reader_lock, require_mqtt, require_pcscd_vpcd, workspace_binary};
use serde_json::Value;

use super::{BUZZER_PIN, ControlPanel, GREEN_PIN, KEY, RED_PIN, WRONG_KEY};

const GATE: &str = "panel-gate";
/// The gate whose serial link breaks and comes back.
const RELINK_GATE: &str = "panel-relink";
/// Alice: H10301 facility 12 card 3456 = `0606c040` (docs/panel-integration.md's worked example).
const ALICE_DATA: &str = "0606c040";

/// [`write_credential_map`] in `root/credentials.toml` for Alice's card (`root/alice.card`,
/// which exists once the site has made her card, before the gate starts) and `bob`.
fn write_credential_map_for_alice(issuer: &Path, root: &Path, bob: &str) {
    let state = std::fs::read(root.join("alice.card")).expect("alice's card");
    let identity = palmgate_card::host::platform::identity_of_state(&state).expect("card state");
    write_credential_map(
        issuer,
        &root.join("credentials.toml"),
        &hex::encode(identity.card_id),
        bob,
    );
}

/// The credential map signed by the issuer in `issuer`: Alice and Bob have numbers, Carol has
/// none.
fn write_credential_map(issuer: &Path, map: &Path, alice: &str, bob: &str) {
    std::fs::write(
        map,
        format!(
            "version = 1\n\
             [[card]]\ncard_id = \"{alice}\"\nformat = \"h10301\"\nfacility = 12\nnumber = 3456\n\
             [[card]]\ncard_id = \"{bob}\"\nformat = \"h10301\"\nfacility = 12\nnumber = 4000\n"
        ),
    )
    .expect("write map");
    let signed = std::process::Command::new(workspace_binary("palmgate"))
        .args(["issuer", "sign-credential-map"])
        .arg("--issuer-key")
        .arg(issuer.join("issuer.key"))
        .arg(map)
        .output()
        .expect("run palmgate issuer sign-credential-map");
    assert!(signed.status.success(), "sign-map: {signed:?}");
}

/// The `[panel]` section: OSDP on the CP's pty at address 1, the reader feedback on pins 20, 21
/// and 26; `osdp` holds the secure channel keys.
fn panel_section(root: &Path, pty: &Path, osdp: &str) -> String {
    format!(
        r#"
[panel]
protocol = "osdp"
credential_map = "{root}/credentials.toml"

[panel.osdp]
device = "{pty}"
address = 1
scbk_file = "{root}/osdp-scbk"
{osdp}

[panel.feedback]
green_led_pin = {GREEN_PIN}
red_led_pin = {RED_PIN}
buzzer_pin = {BUZZER_PIN}
active = "high"
"#,
        root = root.display(),
        pty = pty.display(),
    )
}

/// Replaces the `[panel.osdp]` security keys of the gate's configuration (read at its next start).
fn set_osdp_security(config: &Path, osdp: &str) {
    let text = std::fs::read_to_string(config).expect("config");
    let (before, after) = text.split_once("scbk_file").expect("[panel.osdp]");
    let (key_line, rest) = after.split_once('\n').expect("line");
    let (_, feedback) = rest.split_once("\n[panel.feedback]").expect("feedback");
    std::fs::write(
        config,
        format!("{before}scbk_file{key_line}\n{osdp}\n\n[panel.feedback]{feedback}"),
    )
    .expect("config");
}

/// Waits until a simulated output shows `level`.
fn wait_for_pin(socket: &Path, pin: u64, level: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let answer = simulated_gpio(socket, &format!("output {pin}"));
        if answer == level {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GPIO {pin} is {answer}, never {level}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The card data the CP reads within `seconds` (`Value::Null`: none).
fn card_at_the_cp(cp: &mut ControlPanel, seconds: u64) -> Value {
    cp.ask(&format!("wait_card {seconds}"))["card"].clone()
}

/// Alice presents her card; the CP reads her card data and answers at once with LED green and
/// two beeps; returns the published `access.granted` event.
fn alice_is_granted(alice: &mut AliceAtTheGate, cp: &mut ControlPanel) -> String {
    cp.ask("answer green");
    let card = VirtualCard::insert(&alice.card);
    let read = cp.ask(&format!("wait_card {}", PATIENCE.as_secs()));
    let data = &read["card"];
    assert_eq!(data["data"], ALICE_DATA, "{read}");
    assert_eq!(
        (data["length"].as_u64(), data["wiegand"].as_bool()),
        (Some(26), Some(true))
    );
    assert_eq!(read["answered"], true, "{read}");
    let granted = alice.mqtt.wait_for("/event/access.granted", PATIENCE);
    card.remove();
    assert_eq!(field(&granted, "card_id"), Some(alice.card_id.to_string()));
    granted
}

#[test]
fn the_gate_as_an_osdp_reader_of_libosdps_control_panel() {
    require_pcscd_vpcd();
    require_mqtt();
    let _reader = reader_lock();
    let site = Site::new();
    let root = site.root.clone();
    let gpio = root.join("gpio.sock");
    let (bob_template, _) = site.palms.template(1);
    let (alice_template, _) = site.palms.template(0);
    let bob_card = root.join("bob.card");
    let carol_card = root.join("carol.card");
    let bob = personalised_card(&bob_card, &site.issuer, &[bob_template], None);
    personalised_card(&carol_card, &site.issuer, &[alice_template], None);

    let mut cp = ControlPanel::spawn();
    let pty = cp.pty.clone();
    let plain = "require_secure = false";
    let mut alice = site.alice_at_the_gate(GATE, 5, |text| {
        // Alice's card exists by now: her number goes into the map before the gate starts.
        write_credential_map_for_alice(&site.issuer, &root, &bob.to_string());
        format!("{text}{}", panel_section(&root, &pty, plain))
    });

    // Plain channel.
    cp.ask("start 1 none");
    let status = cp.ask("wait_online 20");
    assert_eq!(
        (&status["online"], &status["sc"]),
        (&Value::Bool(true), &Value::Bool(false)),
        "{status}"
    );
    let granted = alice_is_granted(&mut alice, &mut cp);
    assert_eq!(
        field(&granted, "detail").as_deref(),
        Some(
            "panel: h10301 facility 12 card 3456 delivered over OSDP; panel answered LED green, buzzer 2x"
        ),
        "{granted}"
    );
    wait_for_pin(&gpio, GREEN_PIN, "high");
    wait_for_pin(&gpio, RED_PIN, "low");
    assert_eq!(cp.ask("led red")["submitted"], true);
    wait_for_pin(&gpio, RED_PIN, "high");
    wait_for_pin(&gpio, GREEN_PIN, "low");

    let card = VirtualCard::insert(&bob_card);
    let denied = alice.mqtt.wait_for("/event/access.denied", PATIENCE);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("no_match"),
        "{denied}"
    );
    assert_eq!(
        card_at_the_cp(&mut cp, 3),
        Value::Null,
        "a denial sends nothing"
    );
    card.remove();

    let card = VirtualCard::insert(&carol_card);
    let denied = alice.mqtt.wait_for("/event/access.denied", PATIENCE);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("card_rejected"),
        "{denied}"
    );
    assert!(
        field(&denied, "detail")
            .unwrap_or_default()
            .contains("has no credential number in the credential map"),
        "{denied}"
    );
    assert_eq!(
        card_at_the_cp(&mut cp, 2),
        Value::Null,
        "nothing for a card without a number"
    );
    card.remove();

    // Install mode, secure channel required: SCBK-D, KEYSET, then the panel's own key.
    cp.ask("stop");
    set_osdp_security(
        &alice.running.config,
        "install_mode = true\nrequire_secure = true",
    );
    alice.restart(false);
    cp.ask(&format!("start 1 {KEY}"));
    let status = cp.ask("wait_sc 30");
    assert_eq!(status["sc"], true, "{status}");
    let stored = std::fs::read_to_string(root.join("osdp-scbk")).expect("key file");
    assert_eq!(stored.trim(), KEY, "KEYSET kept the panel's key");
    alice_is_granted(&mut alice, &mut cp);
    assert_eq!(cp.ask("comset 2 19200")["submitted"], true);
    let comset = root.join("osdp-comset.toml");
    let deadline = Instant::now() + PATIENCE;
    while !std::fs::read_to_string(&comset).is_ok_and(|t| t.contains("address = 2")) {
        assert!(Instant::now() < deadline, "COMSET not stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        std::fs::read_to_string(&comset)
            .expect("comset")
            .contains("baud = 19200")
    );

    // Restarted: the key and the panel's address are kept; SCBK-D stays refused although the
    // configuration still says install_mode.
    cp.ask("stop");
    alice.restart(false);
    cp.ask(&format!("start 2 {KEY}"));
    let status = cp.ask("wait_sc 30");
    assert_eq!(
        status["sc"], true,
        "the kept key at the kept address: {status}"
    );
    alice_is_granted(&mut alice, &mut cp);

    cp.ask("stop");
    cp.ask(&format!("start 2 {WRONG_KEY}"));
    let status = cp.ask("wait_sc 5");
    assert_eq!(status["sc"], false, "{status}");
    // The refusal is an alarm for the facility manager, not only a line in the log.
    let alarm = alice.mqtt.wait_for("/event/alarm.panel_link", PATIENCE);
    assert_eq!(
        field(&alarm, "reason").as_deref(),
        Some("secure_channel_refused"),
        "{alarm}"
    );
    let card = VirtualCard::insert(&alice.card);
    let granted = alice.mqtt.wait_for("/event/access.granted", PATIENCE);
    assert_eq!(
        card_at_the_cp(&mut cp, 2),
        Value::Null,
        "no card data without the secure channel"
    );
    card.remove();
    let detail = field(&granted, "detail").unwrap_or_default();
    assert!(
        detail.starts_with("panel: h10301 facility 12 card 3456 not collected by the panel"),
        "{granted}"
    );
    cp.ask("quit");

    // The gate never released its own lock: the panel drives the door in reader mode.
    let events = alice.mqtt.all().to_vec();
    assert!(
        !events.iter().any(|line| line.contains("door.unlocked")),
        "{events:#?}"
    );
    let log = alice.stop();
    assert!(
        log.contains("default key SCBK-D refused: not in install mode"),
        "the refused SCBK-D is reported; log:\n{log}"
    );
}

/// The serial link breaks and comes back at the same path, as a USB-RS485 adapter pulled and
/// plugged in again behind its `/dev/serial/by-id/…` link: the gate's `device` is a link to the
/// CP's pty; the CP closes that pty (the gate's port fails) and the link is removed for several
/// reopen attempts, then the CP opens a new pty, the link points at it and the CP starts
/// polling again. The gate, never
/// restarted, serves the panel again: Alice's card data reaches the CP, and MQTT shows one
/// `alarm.panel_link` (`link_failed`) for the whole outage and one `panel.link_restored`. Her
/// presentation during the outage is published saying the panel never got it, and is not
/// delivered late.
#[test]
fn the_gate_serves_the_panel_again_after_the_serial_link_breaks() {
    require_pcscd_vpcd();
    require_mqtt();
    let _reader = reader_lock();
    let site = Site::new();
    let root = site.root.clone();
    let mut cp = ControlPanel::spawn();
    let device = root.join("osdp-tty");
    std::os::unix::fs::symlink(&cp.pty, &device).expect("device link");
    let mut alice = site.alice_at_the_gate(RELINK_GATE, 5, |text| {
        write_credential_map_for_alice(&site.issuer, &root, "ffffffffffffffffffffffffffffffff");
        format!(
            "{text}{}",
            panel_section(&root, &device, "require_secure = false")
        )
    });
    cp.ask("start 1 none");
    assert_eq!(cp.ask("wait_online 20")["online"], true);
    alice_is_granted(&mut alice, &mut cp);

    assert_eq!(cp.ask("unplug")["unplugged"], true);
    std::fs::remove_file(&device).expect("device link removed");
    let alarm = alice.mqtt.wait_for("/event/alarm.panel_link", PATIENCE);
    assert_eq!(field(&alarm, "reason").as_deref(), Some("link_failed"));
    assert!(
        field(&alarm, "detail")
            .unwrap_or_default()
            .starts_with("OSDP link lost: "),
        "{alarm}"
    );
    // Alice while the link is down (several attempts to open the port fail meanwhile): the
    // gate grants, the read waits for the panel, and after the 5 s limit her event says why the
    // panel never got it.
    let card = VirtualCard::insert(&alice.card);
    let granted = alice.mqtt.wait_for("/event/access.granted", PATIENCE);
    card.remove();
    assert_eq!(
        field(&granted, "detail").as_deref(),
        Some(
            "panel: h10301 facility 12 card 3456 not collected by the panel within 6 s: the OSDP link is down"
        ),
        "{granted}"
    );

    let plugged = cp.ask("plug");
    let pty = plugged["pty"].as_str().expect("the new pty");
    std::os::unix::fs::symlink(pty, &device).expect("device link again");
    // libosdp's CP took the silent PD offline for 300 s (a real panel retries at its own pace):
    // a new CP polls at once.
    cp.ask("stop");
    cp.ask("start 1 none");
    let restored = alice.mqtt.wait_for("/event/panel.link_restored", PATIENCE);
    let detail = field(&restored, "detail").unwrap_or_default();
    assert!(
        detail.starts_with("OSDP link back after ")
            && detail.ends_with("the panel polls the gate again"),
        "{restored}"
    );
    assert_eq!(cp.ask("wait_online 20")["online"], true);
    assert_eq!(
        card_at_the_cp(&mut cp, 2),
        Value::Null,
        "the read of the outage is never delivered late"
    );
    alice_is_granted(&mut alice, &mut cp);
    cp.ask("quit");

    let events = alice.mqtt.all().to_vec();
    let count = |kind: &str| {
        events
            .iter()
            .filter(|line| {
                line.split_once(' ')
                    .is_some_and(|(topic, _)| topic.ends_with(kind))
            })
            .count()
    };
    assert_eq!(
        (
            count("/event/alarm.panel_link"),
            count("/event/panel.link_restored")
        ),
        (1, 1),
        "one alarm for the outage, one restoration: {events:#?}"
    );
    let log = alice.stop();
    assert!(
        log.matches("OSDP port not opened").count() >= 2,
        "several attempts failed while unplugged; log:\n{log}"
    );
}

/// `palmgate config check` opens reader mode's files: a map signed by another issuer and a
/// COMSET file with a broadcast address are reported with their key, file and reason.
#[test]
fn config_check_reports_the_panel_files() {
    let site = Site::new();
    let root = &site.root;
    let foreign = root.join("foreign-issuer");
    palmgate(&["issuer", "init", "--out", foreign.to_str().expect("utf-8")]);
    let map = root.join("credentials.toml");
    let card = "0102030405060708090a0b0c0d0e0f10";
    write_credential_map(&foreign, &map, card, "ffffffffffffffffffffffffffffffff");
    let comset = root.join("osdp-comset.toml");
    std::fs::write(&comset, "address = 127\nbaud = 9600\n").expect("comset");
    let config = gate_config_on(
        "127.0.0.1:1883",
        root,
        GATE,
        &site.issuer.join("issuer.pub"),
        &site.sensor_link(),
        &site.operator_pub,
    );
    let text = std::fs::read_to_string(&config).expect("config");
    let panel = panel_section(root, Path::new("/dev/ttyUSB0"), "");
    std::fs::write(&config, format!("{text}{panel}")).expect("config");
    let output = palmgate_output(&[
        "config",
        "check",
        "--config",
        config.to_str().expect("utf-8"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "panel.credential_map: {}: the signature does not verify with any configured issuer key",
            map.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "panel.osdp.scbk_file: {}: OSDP state file: address 127 / baud 9600 is not usable",
            comset.display()
        )),
        "{stderr}"
    );
}
