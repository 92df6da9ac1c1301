//! Presentation attack detection on the real stack: pcscd + vpcd with a `palmgate-vcard` card, the
//! sensor simulator on a pseudo-terminal presenting a modelled attack species (protocol 1.1
//! bursts), mosquitto, and `palmgate run` with simulated doors. Also: an old single-band
//! (protocol 1.0) sensor and this gate still grant.

use std::path::Path;

use palmgate_system_tests::gate::{READER, VirtualCard, field, palmgate, simulated_gpio};
use palmgate_system_tests::site::{PATIENCE, Site};
use palmgate_system_tests::{reader_lock, require_pcscd_vpcd};

/// `(tries left, tries allowed)` as `palmgate card info` reads them from the card through pcscd
/// (the card is inserted for the reading and taken out again; no gate may be running).
fn tries_on_the_card(state: &Path) -> (u8, u8) {
    let card = VirtualCard::insert(state);
    let info = palmgate(&["card", "info", "--reader", READER]);
    card.remove();
    let line = info
        .lines()
        .find_map(|line| line.trim().strip_prefix("tries left: "))
        .unwrap_or_else(|| panic!("no tries in `palmgate card info`:\n{info}"));
    let mut numbers = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse::<u8>().expect("a number of tries"));
    let left = numbers.next().expect("tries left");
    let allowed = numbers.next().expect("tries allowed");
    (left, allowed)
}

/// Alice's card is presented while a toner print of a near-infrared capture of a palm is held over
/// a multi-band sensor: the gate refuses the presentation before asking the card. The door stays
/// locked, `access.denied` (reason `presentation_attack`, with her card and the cues) and
/// `alarm.presentation_attack` are published, and her card's tries left are unchanged.
#[test]
fn a_printed_palm_is_refused_before_the_card_and_the_door_stays_locked() {
    require_pcscd_vpcd();
    let _reader = reader_lock();
    let site = Site::new();
    let gate_id = "e2e-pad-attack";
    let sensor_args = [
        "--synthetic",
        "1",
        "--species",
        "print-nir",
        "--fps",
        "10",
        "--hand-held-ms",
        "3000",
        "--hand-away-ms",
        "500",
    ];
    // Capture on card: the print is checked for her card (in continuous capture it would be
    // refused before, with no card). A debug simulator on a loaded machine takes seconds to render
    // a presentation and its burst: the sensor and the presentation get time.
    let mut gate = site.alice_at_the_gate_with_sensor(gate_id, &sensor_args, |config| {
        config
            .replacen(
                "[sensor]\n",
                "[sensor]\ncapture = \"on_card\"\nrequest_timeout_ms = 10000\n",
                1,
            )
            .replacen(
                "presentation_window_ms = 10000",
                "presentation_window_ms = 60000",
                1,
            )
    });
    let log = gate.running.log.clone();
    let log = move || std::fs::read_to_string(&log).unwrap_or_default();
    let card_state = gate.card.clone();
    let (tries_before, allowed) = tries_on_the_card(&card_state);
    assert_eq!(tries_before, allowed, "a fresh card");
    let gpio = site.root.join("gpio.sock");
    let lock_before = simulated_gpio(&gpio, "output 17");

    let card = VirtualCard::insert(&card_state);
    let denied = gate.mqtt.wait_for("/event/access.denied", 3 * PATIENCE);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("presentation_attack"),
        "{denied}\ndaemon log:\n{}",
        log()
    );
    assert_eq!(field(&denied, "card_id"), Some(gate.card_id.to_string()));
    let detail = field(&denied, "detail").unwrap_or_default();
    assert!(
        detail.contains("(balanced profile); against: "),
        "the cues are in the detail: {denied}"
    );
    let alarm = gate
        .mqtt
        .wait_for("/event/alarm.presentation_attack", PATIENCE);
    assert_eq!(
        field(&alarm, "severity").as_deref(),
        Some("alarm"),
        "{alarm}"
    );
    assert_eq!(field(&alarm, "door").as_deref(), Some("main"), "{alarm}");
    assert_eq!(field(&alarm, "card_id"), Some(gate.card_id.to_string()));
    assert_eq!(field(&alarm, "detail"), Some(detail));
    assert_eq!(
        simulated_gpio(&gpio, "output 17"),
        lock_before,
        "the lock moved"
    );
    card.remove();
    let seen = gate.mqtt.all().to_vec();
    for refused in ["/event/access.granted", "/event/door.unlocked"] {
        assert!(
            !seen.iter().any(|line| line.contains(refused)),
            "{refused} after an attack: {seen:#?}"
        );
    }
    let log = gate.stop();
    assert!(
        log.contains("presentation attack refused"),
        "the daemon's log says why:\n{log}"
    );
    assert_eq!(
        tries_on_the_card(&card_state),
        (tries_before, allowed),
        "a card try was spent on an attack"
    );
}

/// A protocol 1.0 sensor (one light, no bursts) in front of this gate: the gate finds no bands,
/// checks each frame alone by the single-frame cues, and Alice's live palm is granted.
#[test]
fn an_old_single_band_sensor_and_the_new_gate_still_grant() {
    require_pcscd_vpcd();
    let _reader = reader_lock();
    let site = Site::new();
    let images = site.palms.captures(0, 2);
    let sensor_args = [
        "--single-band",
        "--format",
        "jpeg",
        "--fps",
        "5",
        "--images",
        images.to_str().expect("utf-8 path"),
        "--hand-held-ms",
        "1000",
        "--hand-away-ms",
        "200",
    ];
    let mut gate = site.alice_at_the_gate_with_sensor("e2e-pad-1-0", &sensor_args, |config| config);
    let granted = gate.present("access.granted");
    assert_eq!(field(&granted, "card_id"), Some(gate.card_id.to_string()));
    let log = gate.stop();
    assert!(
        log.contains("palm sensor has one light (protocol 1.0)"),
        "the gate did not see a 1.0 sensor:\n{log}"
    );
}
