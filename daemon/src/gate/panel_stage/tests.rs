use std::path::Path;

use palmgate_card::host::issuer::IssuerKey;
use palmgate_door::{Level, SimulatedGpio};
use palmgate_panel::credential_map;
use palmgate_panel::osdp::serial::SerialError;

use super::*;
use crate::event::{EventKind, Outcome, Reason, Timestamp};
use crate::outbox::OutboxOptions;

const CARD: [u8; 16] = [0xA5; 16];

/// A gate configuration in reader mode over Wiegand (D0 = 23, D1 = 24) with a map signed by
/// `issuer` that gives `CARD` H10301 facility 12, card 3456.
fn settings(dir: &Path, issuer: &IssuerKey) -> Settings {
    std::fs::write(
        dir.join("issuer.pub"),
        hex::encode(issuer.public_key().to_bytes()),
    )
    .expect("issuer key");
    let map = format!(
        "version = 1\n[[card]]\ncard_id = \"{}\"\nformat = \"h10301\"\nfacility = 12\nnumber = 3456\n",
        hex::encode(CARD)
    );
    std::fs::write(dir.join("credentials.toml"), &map).expect("map");
    std::fs::write(
        dir.join("credentials.toml.sig"),
        credential_map::sign(map.as_bytes(), issuer).expect("signed"),
    )
    .expect("signature");
    let config = format!(
        "[gate]\nid = \"panel-stage\"\n[card]\nissuer_keys = [\"issuer.pub\"]\ndoor = \"main\"\n\
         [sensor]\nport = \"/nonexistent\"\n[gpio]\nbackend = \"simulated\"\n\
         [door.main]\nlock_pin = 17\n[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\n\
         [storage]\nstate_dir = \"{}/state\"\n\
         [panel]\nprotocol = \"wiegand\"\ncredential_map = \"credentials.toml\"\n\
         [panel.wiegand]\nd0_pin = 23\nd1_pin = 24\nactive = \"low\"\n",
        dir.display()
    );
    let path = dir.join("palmgate.toml");
    std::fs::write(&path, config).expect("config");
    crate::config::load_with_env(&path, std::iter::empty()).expect("valid configuration")
}

/// The bits of the frames on D0/D1 (active low: a falling edge is a bit).
fn wiegand_bits(gpio: &SimulatedGpio) -> Vec<bool> {
    gpio.changes()
        .iter()
        .filter(|change| matches!(change.pin, 23 | 24) && change.level == Level::Low)
        .map(|change| change.pin == 24)
        .collect()
}

#[tokio::test]
async fn a_grant_leaves_as_a_wiegand_frame_on_the_doors_gpio_without_the_unlock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = IssuerKey::generate();
    let settings = settings(dir.path(), &issuer);
    let doors = Doors::build(&settings).expect("doors");
    let gpio = doors.simulated().expect("simulated").clone();
    let outbox = Arc::new(Outbox::open(&OutboxOptions::from_settings(&settings)).expect("outbox"));
    let (stop, stop_signal) = StopSignal::new();
    let (stage, task) = start(
        &settings,
        &[issuer.public_key()],
        &doors,
        outbox,
        stop_signal,
    )
    .expect("reader mode starts");
    let mut stage = stage.expect("[panel] configured");

    let card = CardId::new(&CARD).expect("card id");
    assert!(stage.refusal(&card).is_none());
    let unmapped = CardId::new(&[0x5A; 16]).expect("card id");
    assert_eq!(
        stage.refusal(&unmapped).as_deref(),
        Some(
            "card 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a has no credential number in the credential map: refused"
        )
    );

    let granted = NewEvent::new(EventKind::AccessGranted, Timestamp::now())
        .door("main".to_string())
        .card(card)
        .result(Outcome::Granted);
    let unlock = Action::Unlock {
        door: "main".to_string(),
        unlock: None,
    };
    let kept = stage.route(vec![unlock, Action::Publish(granted)]);
    let [Action::Publish(event)] = kept.as_slice() else {
        panic!("only the event is left: {kept:?}");
    };
    assert_eq!(
        event.detail.as_deref(),
        Some("panel: h10301 facility 12 card 3456 sent over Wiegand")
    );
    // docs/panel-integration.md's worked example: 00000110000001101100000001.
    let expected: Vec<bool> = "00000110000001101100000001"
        .chars()
        .map(|c| c == '1')
        .collect();
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    while wiegand_bits(&gpio).len() < expected.len() && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(wiegand_bits(&gpio), expected);
    let _ = stop.send(true);
    task.await.expect("the panel task ends");
}

/// The panel task over a scripted OSDP task: a lost link is published once however many
/// attempts fail, the port is asked to reopen after each, and `panel.link_restored` follows
/// once it opened and the panel polled; a stop while the link is down ends the task at once.
#[tokio::test]
async fn a_lost_link_is_reopened_with_one_alarm_and_a_stop_is_prompt() {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings(dir.path(), &IssuerKey::generate());
    let outbox = Arc::new(Outbox::open(&OutboxOptions::from_settings(&settings)).expect("outbox"));
    let (link_events, events) = mpsc::unbounded_channel();
    let (requests, mut reopens) = mpsc::channel(8);
    let (_held, held) = mpsc::unbounded_channel();
    let (stop, stop_signal) = StopSignal::new();
    let osdp = OsdpParts {
        events,
        task: tokio::spawn(std::future::pending()),
        requests,
    };
    let backoff = Backoff {
        initial: std::time::Duration::from_millis(10),
        max: std::time::Duration::from_millis(40),
    };
    let task = tokio::spawn(run(
        Some(osdp),
        held,
        None,
        outbox.clone(),
        backoff,
        stop_signal,
    ));
    let published = || {
        // Only durable events are listed: commit what was appended.
        outbox.flush().expect("flushed");
        outbox
            .pending(None, 100)
            .expect("events")
            .into_iter()
            .map(|event| (event.kind, event.reason.clone()))
            .collect::<Vec<_>>()
    };
    let mut reopen = async || {
        let request = tokio::time::timeout(PATIENCE, reopens.recv())
            .await
            .expect("a reopen in time")
            .expect("the panel task runs");
        assert!(matches!(request, PdRequest::Reopen), "{request:?}");
    };

    link_events
        .send(LinkEvent::Lost(SerialError::Closed))
        .expect("sent");
    for _ in 0..4 {
        reopen().await;
        link_events
            .send(LinkEvent::OpenFailed(SerialError::Closed))
            .expect("sent");
    }
    reopen().await;
    link_events.send(LinkEvent::Opened).expect("sent");
    link_events.send(LinkEvent::PanelHeard).expect("sent");
    let deadline = Instant::now() + PATIENCE;
    while published().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        published(),
        vec![
            (EventKind::AlarmPanelLink, Some(Reason::LINK_FAILED)),
            (EventKind::PanelLinkRestored, None),
        ]
    );

    link_events
        .send(LinkEvent::Lost(SerialError::Closed))
        .expect("sent");
    reopen().await;
    let _ = stop.send(true);
    tokio::time::timeout(std::time::Duration::from_secs(1), task)
        .await
        .expect("the stop is not held up by the link")
        .expect("the panel task ends");
    assert_eq!(published().len(), 3, "the second outage's alarm");
}
