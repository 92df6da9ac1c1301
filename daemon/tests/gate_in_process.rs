//! The whole gate in this process, on its device seams: cards are applets behind
//! `InProcessTransport`, the sensor is played over a channel with the project's synthetic palms,
//! the doors run on the simulated GPIO backend, and events come out of the real outbox through a
//! channel link. No service is needed; each scenario is one presentation (or a few) end to end
//! through `gate::run`. What needs the real stack (pcscd + vpcd, mosquitto, a pty) stays in
//! tests/tests/gate_e2e.rs.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use palmgate::config::{GpioBackend, Settings};
use palmgate::doors::{Doors, gate_config};
use palmgate::event::{CardId, Event, EventKind, Outcome, Reason};
use palmgate::gate::devices::{
    ChannelLink, ChannelLinkEnds, ChannelSensor, ChannelSensorEnds, InProcessCardSlot,
    InProcessReader, SensorLink,
};
use palmgate::gate::{Devices, GateError};
use palmgate::mqtt::{Command, VerifiedCommand};
use palmgate::notify::Notifier;
use palmgate_card::applet::Applet;
use palmgate_card::host::issuer::{EnrolmentAuthority, IssuerKey, files, init_issuer_dir};
use palmgate_card::host::platform::{MemoryStorage, SystemClock, SystemRng, system_rng};
use palmgate_card::host::reader_health::{ReaderHealth, UnavailableReason};
use palmgate_card::host::{Card, InProcessTransport};
use palmgate_card::protocol::SlotKind;
use palmgate_door::{InputConfig, SimulatedGpio};
use palmgate_matcher::Template;
use palmgate_matcher::extract::{Extractor, InputKind};
use palmgate_matcher::pad::model::{Presented, Species, render_burst};
use palmgate_sensor::codec::{Band, FrameFormat, SensorInfo};
use palmgate_sensor::device::{BurstFrame, CapturedFrame, DeviceCommand, ReceivedAt, SensorEvent};
use palmgate_sensor::image::PalmImage;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

type Applet_ = InProcessTransport<MemoryStorage, SystemRng, SystemClock>;
type SharedCard = Arc<Mutex<Applet_>>;

/// How long a test waits for one expected event (a decision takes milliseconds).
const WAIT: Duration = Duration::from_secs(5);

const CONFIG: &str = r#"
[gate]
id = "gate-in-process"

[card]
issuer_keys = ["{dir}/issuer/issuer.pub"]
door = "main"
presentation_window_ms = 3000
verify_timeout_ms = 2000

[sensor]
port = "/nonexistent/in-process-sensor"
capture = "continuous"

[matcher]
input = "hand"

[gpio]
backend = "simulated"

[door.main]
lock_pin = 17
contact_pin = 27
unlock_s = 1
held_open_prealarm_s = 1
held_open_alarm_s = 2

[door.back]
lock_pin = 18

[mqtt]
url = "mqtt://127.0.0.1:1"

[storage]
state_dir = "{dir}/state"
"#;

/// Enrolment templates and later captures of synthetic identities (extracted once per process).
fn extractor() -> &'static Extractor {
    static EXTRACTOR: OnceLock<Extractor> = OnceLock::new();
    EXTRACTOR.get_or_init(|| Extractor::builtin().unwrap())
}

fn enrolment_template(identity: u64) -> Template {
    let image = palmgate_matcher::synth::hand_image(identity, 0);
    extractor().extract(&image, InputKind::Hand).unwrap()
}

/// A frame of `identity`'s hand as the sensor link delivers it.
fn frame(identity: u64, capture: u64, number: u32) -> SensorEvent {
    let image = palmgate_matcher::synth::hand_image(identity, capture);
    SensorEvent::Frame(captured(image, number))
}

fn captured(image: image::GrayImage, number: u32) -> CapturedFrame {
    CapturedFrame {
        image: PalmImage::new(image),
        format: FrameFormat::Gray8,
        frame_number: number,
        encoded_bytes: 0,
        received: ReceivedAt::now(),
        decoded_at: std::time::Instant::now(),
    }
}

/// The burst a protocol 1.1 sensor with every band takes at the gate's default
/// `pad.burst_rounds` (2): the bands in code order, twice.
fn burst_sequence() -> Vec<Band> {
    [Band::ALL, Band::ALL].concat()
}

/// The frames of a presentation burst of `presented`, rendered by the PAD physical model at
/// 10 frames per second (before the gate asks for them: rendering is slow in a debug build).
async fn rendered_burst(presented: Presented) -> Vec<image::GrayImage> {
    tokio::task::spawn_blocking(move || {
        let bands: Vec<_> = burst_sequence()
            .into_iter()
            .map(|band| match band {
                Band::Ambient => palmgate_matcher::pad::Band::Ambient,
                Band::Nir850 => palmgate_matcher::pad::Band::Nir850,
                Band::Nir940 => palmgate_matcher::pad::Band::Nir940,
                Band::Visible => palmgate_matcher::pad::Band::Visible,
            })
            .collect();
        render_burst(30, 1, presented, &bands, Duration::from_millis(100))
    })
    .await
    .unwrap()
}

/// The sensor's handshake, as the sensor link reports it after every (re)connection.
fn sensor_connected() -> SensorEvent {
    SensorEvent::Connected(SensorInfo {
        protocol_version: 1,
        width: 640,
        height: 480,
        formats: vec![FrameFormat::Gray8],
        max_fps: 10,
        model: "in-process".to_string(),
        firmware: "0".to_string(),
    })
}

/// An issuer (its public key is what the gate trusts when it is `trusted`).
struct Issuer {
    key: IssuerKey,
    authority: EnrolmentAuthority,
}

impl Issuer {
    fn init(dir: &Path) -> Self {
        let (key, authority) = init_issuer_dir(dir).unwrap();
        Self { key, authority }
    }

    /// A card personalised by this issuer, enrolled with `slots`.
    fn card(&self, slots: &[(SlotKind, u64)]) -> (SharedCard, CardId) {
        let templates: Vec<_> = slots
            .iter()
            .map(|(kind, identity)| (*kind, enrolment_template(*identity)))
            .collect();
        self.card_of(&templates)
    }

    /// A card enrolled with `slots`' templates (slot i = slots[i]).
    fn card_of(&self, slots: &[(SlotKind, Template)]) -> (SharedCard, CardId) {
        let mut transport = InProcessTransport::new(Applet::factory(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
        ));
        let id = {
            let mut card = Card::open(&mut transport).unwrap();
            card.personalise(&self.key).unwrap();
            let verified = card.verify_certificate(&[self.key.public_key()]).unwrap();
            let session = card.open_session(&verified).unwrap();
            let mut enrolment = session.prove_authority(&self.authority).unwrap();
            for (slot, (kind, template)) in slots.iter().enumerate() {
                let slot = u8::try_from(slot).unwrap();
                enrolment.enrol(slot, *kind, template).unwrap();
            }
            CardId::new(&verified.card_id).unwrap()
        };
        (Arc::new(Mutex::new(transport)), id)
    }
}

/// A running gate and the test's ends of its devices.
struct Gate {
    _dir: tempfile::TempDir,
    issuer: Issuer,
    cards: InProcessCardSlot<Applet_>,
    sensor: ChannelSensorEnds,
    link: ChannelLinkEnds,
    gpio: SimulatedGpio,
    /// Door "main"'s contact input.
    main_contact: InputConfig,
    frame_number: u32,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), GateError>>,
}

impl Gate {
    /// Starts the gate; returns once the sensor has been connected.
    async fn start() -> Self {
        Self::start_with(|config| config).await
    }

    /// [`Gate::start`] with the configuration changed by `edit`.
    async fn start_with(edit: impl FnOnce(String) -> String) -> Self {
        Self::start_notifying(edit, Notifier::from_env()).await
    }

    /// [`Gate::start_with`], the gate telling its service manager through `notifier`.
    async fn start_notifying(edit: impl FnOnce(String) -> String, notifier: Notifier) -> Self {
        let (mut gate, ()) = Self::launch(edit, notifier, |_| {
            let (sensor, ends) = ChannelSensor::new();
            (Box::new(sensor), ends, ())
        })
        .await;
        gate.sensor_event(sensor_connected()).await;
        gate
    }

    /// Runs the gate on the configuration changed by `edit`, with the sensor `sensor` builds
    /// from the settings (its channel ends, and whatever else the test keeps of it).
    async fn launch<T>(
        edit: impl FnOnce(String) -> String,
        notifier: Notifier,
        sensor: impl FnOnce(&Settings) -> (Box<dyn SensorLink>, ChannelSensorEnds, T),
    ) -> (Self, T) {
        let dir = tempfile::tempdir().unwrap();
        let issuer = Issuer::init(&dir.path().join("issuer"));
        assert!(dir.path().join("issuer").join(files::ISSUER_PUB).exists());
        let config = edit(CONFIG.replace("{dir}", &dir.path().display().to_string()));
        let main = dir.path().join("palmgate.toml");
        std::fs::write(&main, config).unwrap();
        let settings: Settings =
            palmgate::config::load_with_env(&main, std::iter::empty()).unwrap();

        let (card_reader, cards) = InProcessReader::new();
        let (sensor, sensor_ends, kept) = sensor(&settings);
        let (link, link_ends) = ChannelLink::new();
        let door_config = gate_config(&settings);
        let main_contact = door_config
            .doors
            .iter()
            .find(|door| door.name == "main")
            .and_then(|door| door.contact)
            .unwrap();
        let doors = Doors::with_backend(door_config, GpioBackend::Simulated).unwrap();
        let gpio = doors.simulated().unwrap().clone();
        let devices = Devices {
            card_reader,
            sensor,
            doors,
            link: Box::new(link),
            safe_on_panic: false,
        };
        let (stop, stopped) = oneshot::channel();
        let (_reload_tx, reload) = mpsc::channel(1);
        let task = tokio::spawn(palmgate::gate::run(
            settings,
            devices,
            notifier,
            async move {
                let _ = stopped.await;
            },
            reload,
        ));
        let gate = Self {
            _dir: dir,
            issuer,
            cards,
            sensor: sensor_ends,
            link: link_ends,
            gpio,
            main_contact,
            frame_number: 0,
            stop: Some(stop),
            task,
        };
        (gate, kept)
    }

    async fn sensor_event(&mut self, event: SensorEvent) {
        self.sensor.events.send(event).await.unwrap();
    }

    /// A hand arrives and the sensor sends one frame of `identity` (a later capture than the
    /// enrolment's).
    async fn palm(&mut self, identity: u64) {
        self.hand(true).await;
        self.frame_number += 1;
        let number = self.frame_number;
        self.sensor_event(frame(identity, 1, number)).await;
    }

    async fn hand(&mut self, present: bool) {
        self.sensor_event(SensorEvent::Presence {
            present,
            distance_mm: Some(80),
            received: ReceivedAt::now(),
        })
        .await;
    }

    /// The next event of one of `kinds` (others are skipped).
    async fn event(&mut self, kinds: &[EventKind]) -> Event {
        tokio::time::timeout(WAIT, async {
            loop {
                let event = self.link.events.recv().await.expect("gate running");
                if kinds.contains(&event.kind) {
                    return event;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {kinds:?} event within {WAIT:?}"))
    }

    /// The next access decision.
    async fn decision(&mut self) -> Event {
        self.event(&[
            EventKind::AccessGranted,
            EventKind::AccessDenied,
            EventKind::AlarmDuress,
            EventKind::AlarmCardBlocked,
        ])
        .await
    }

    /// The next decision, which must be a denial whose reason contains `because`.
    async fn denial_because(&mut self, because: &str) -> Event {
        let decision = self.decision().await;
        assert_eq!(decision.kind, EventKind::AccessDenied, "{decision:?}");
        // The code and the words for people: a test names either.
        let said = format!(
            "{} {}",
            decision
                .reason
                .as_ref()
                .map_or("", |reason| reason.as_str()),
            decision.detail.as_deref().unwrap_or("")
        );
        assert!(
            said.contains(because),
            "not denied because {because:?}: {decision:?}"
        );
        decision
    }

    /// Waits for the gate to ask for a presentation burst (it must be the one
    /// [`burst_sequence`] names) and sends `images` as its frames.
    async fn answer_burst(&mut self, images: Vec<image::GrayImage>) {
        let command = tokio::time::timeout(WAIT, self.sensor.commands.recv())
            .await
            .expect("the gate asks for a burst")
            .expect("gate running");
        let DeviceCommand::Burst(request) = command else {
            panic!("expected a burst request, got {command:?}");
        };
        assert_eq!(request.sequence(), burst_sequence());
        assert_eq!(request.format, FrameFormat::Gray8, "lossless, as offered");
        for (index, (band, image)) in burst_sequence().into_iter().zip(images).enumerate() {
            self.frame_number += 1;
            let number = self.frame_number;
            let index = u8::try_from(index).unwrap();
            self.sensor_event(SensorEvent::BurstFrame(BurstFrame {
                band,
                index,
                exposed_after: Duration::from_millis(100) * u32::from(index),
                frame: captured(image, number),
            }))
            .await;
        }
    }

    /// No decision for `quiet`.
    async fn no_decision(&mut self, quiet: Duration) {
        let kinds = [EventKind::AccessGranted, EventKind::AccessDenied];
        let found = tokio::time::timeout(quiet, async {
            loop {
                let event = self.link.events.recv().await.expect("gate running");
                if kinds.contains(&event.kind) {
                    return event;
                }
            }
        })
        .await;
        if let Ok(event) = found {
            panic!("unexpected decision {event:?}");
        }
    }

    async fn command(&mut self, command: Command) {
        self.link
            .commands
            .send(VerifiedCommand {
                command,
                operator: "test".to_string(),
                timestamp: 0,
                nonce: vec![1],
                retained_state: false,
            })
            .await
            .unwrap();
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("the gate stops")
            .expect("no panic")
            .expect("a clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_and_its_palm_unlock_the_door() {
    let mut gate = Gate::start().await;
    let (card, id) = gate.issuer.card(&[(SlotKind::Normal, 1)]);
    gate.cards.present(card);
    gate.palm(1).await;
    let decision = gate.decision().await;
    assert_eq!(decision.kind, EventKind::AccessGranted);
    assert_eq!(decision.card_id, Some(id));
    assert_eq!(decision.door.as_deref(), Some("main"));
    let unlocked = gate.event(&[EventKind::DoorUnlocked]).await;
    assert_eq!(unlocked.door.as_deref(), Some("main"));
    gate.stop().await;
}

/// The gate sends the card every pose of the probe: a card whose template is the shown hand cut
/// turned by −10° (as an enrolment of a turned hand would be; beyond the gate's −5° pose, so that
/// no pose is the template itself) does not match the pose found under `security`, and matches
/// through the pose turned by −5°. (−7.5° until applet 1.9: the elastic comparison follows that
/// turn at the pose found.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_that_matches_only_at_a_turned_pose_is_granted() {
    let shown = palmgate_matcher::synth::hand_image(5, 1);
    let probe = extractor().extract_probe(&shown, InputKind::Hand).unwrap();
    let enrolled_pose = palmgate_matcher::roi::Pose {
        rotation: (-10f32).to_radians(),
        offset: [0.0, 0.0],
    };
    let turned_roi = palmgate_matcher::roi::extract_roi_posed(&shown, &[enrolled_pose])
        .unwrap()
        .remove(0)
        .unwrap();
    let turned = extractor().extract_from_roi(&turned_roi).unwrap().template;
    // The premise: the pose found alone is refused, under the one-pose threshold (the card's
    // for a probe of one pose) and under the one for the poses the gate sends.
    let found_alone = palmgate_matcher::compare(&probe.poses[0], &turned).unwrap();
    let security = palmgate_matcher::Profile::Security;
    assert!(!found_alone.is_match(security.threshold(1, 1)));
    assert!(!found_alone.is_match(security.threshold(1, probe.poses.len())));
    let mut gate = Gate::start_with(|config| {
        config.replacen("[matcher]\n", "[matcher]\nprofile = \"security\"\n", 1)
    })
    .await;
    let (card, id) = gate.issuer.card_of(&[(SlotKind::Normal, turned)]);
    gate.cards.present(card);
    gate.palm(5).await;
    let decision = gate.decision().await;
    assert_eq!(decision.kind, EventKind::AccessGranted, "{decision:?}");
    assert_eq!(decision.card_id, Some(id));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_goes_away_is_reported_and_the_next_card_after_its_return_is_verified() {
    let mut gate = Gate::start().await;
    gate.cards.health(ReaderHealth::Unavailable {
        reason: UnavailableReason::ServiceUnavailable {
            error: "pcscd stopped".to_string(),
        },
    });
    let gone = gate.event(&[EventKind::ReaderUnavailable]).await;
    assert_eq!(gone.result, Some(Outcome::Alarm));
    assert_eq!(gone.reason, Some(Reason::SERVICE_UNAVAILABLE));
    gate.cards.health(ReaderHealth::Available {
        readers: "in-process reader".to_string(),
    });
    let back = gate.event(&[EventKind::ReaderAvailable]).await;
    assert_eq!(back.detail.as_deref(), Some("in-process reader"));
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 1)]);
    gate.cards.present(card);
    gate.palm(1).await;
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_palm_first_then_the_card_is_one_presentation_too() {
    let mut gate = Gate::start().await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 2)]);
    gate.palm(2).await;
    // Let the palm be extracted before the card arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.cards.present(card);
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_persons_palm_is_denied() {
    let mut gate = Gate::start().await;
    let (card, id) = gate.issuer.card(&[(SlotKind::Normal, 3)]);
    gate.cards.present(card);
    gate.palm(4).await;
    let decision = gate.denial_because("does not match").await;
    assert_eq!(decision.card_id, Some(id));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_of_a_foreign_issuer_is_denied_without_a_palm() {
    let mut gate = Gate::start().await;
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = Issuer::init(foreign_dir.path());
    let (card, _) = foreign.card(&[(SlotKind::Normal, 5)]);
    gate.cards.present(card);
    gate.denial_because("card refused").await;
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_duress_palm_opens_and_raises_the_alarm() {
    let mut gate = Gate::start().await;
    let (card, id) = gate
        .issuer
        .card(&[(SlotKind::Normal, 6), (SlotKind::Duress, 7)]);
    gate.cards.present(card);
    gate.palm(7).await;
    let mut kinds = [gate.decision().await, gate.decision().await];
    kinds.sort_by(|a, b| a.kind.as_str().cmp(b.kind.as_str()));
    assert_eq!(kinds[0].kind, EventKind::AccessGranted);
    assert_eq!(kinds[1].kind, EventKind::AlarmDuress);
    assert_eq!(kinds[1].result, Some(Outcome::Alarm));
    assert_eq!(kinds[1].card_id, Some(id));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_card_is_denied_at_once() {
    let mut gate = Gate::start().await;
    let (card, id) = gate.issuer.card(&[(SlotKind::Normal, 8)]);
    gate.command(Command::RevocationList {
        version: 1,
        cards: vec![id.clone()],
    })
    .await;
    gate.event(&[EventKind::RevocationUpdated]).await;
    gate.cards.present(card);
    let decision = gate.denial_because("revoked").await;
    assert_eq!(decision.card_id, Some(id));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockdown_of_the_door_denies_and_release_restores() {
    let mut gate = Gate::start().await;
    // Lockdown of another door leaves this one open for business.
    gate.command(Command::Lockdown {
        door: Some("back".to_string()),
    })
    .await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 9)]);
    gate.cards.present(card.clone());
    gate.palm(9).await;
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    gate.cards.pull();
    gate.hand(false).await;

    gate.command(Command::Lockdown {
        door: Some("main".to_string()),
    })
    .await;
    gate.event(&[EventKind::LockdownOn]).await;
    gate.cards.present(card.clone());
    let decision = gate.decision().await;
    assert_eq!(decision.kind, EventKind::AccessDenied);
    assert_eq!(decision.reason, Some(Reason::LOCKDOWN));
    gate.cards.pull();

    gate.command(Command::Release { door: None }).await;
    gate.event(&[EventKind::LockdownOff]).await;
    gate.cards.present(card);
    gate.palm(9).await;
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_for_a_door_the_gate_does_not_have_is_refused() {
    let mut gate = Gate::start().await;
    gate.command(Command::Unlock {
        door: "side".to_string(),
        duration_s: None,
    })
    .await;
    let refused = gate.event(&[EventKind::CommandRefused]).await;
    assert_eq!(refused.result, Some(Outcome::Refused));
    assert_eq!(refused.reason, Some(Reason::UNKNOWN_DOOR));
    assert_eq!(
        refused.detail.as_deref(),
        Some("unlock: no door named \"side\"")
    );
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_door_held_open_raises_the_alarm() {
    let mut gate = Gate::start().await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 10)]);
    gate.cards.present(card);
    gate.palm(10).await;
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    gate.event(&[EventKind::DoorUnlocked]).await;
    // The contact at its active level: the door is open.
    gate.gpio
        .set_input(gate.main_contact.pin, gate.main_contact.active);
    let held = gate.event(&[EventKind::DoorHeldOpen]).await;
    let alarm = if held.result == Some(Outcome::Alarm) {
        held
    } else {
        gate.event(&[EventKind::DoorHeldOpen]).await
    };
    assert_eq!(alarm.result, Some(Outcome::Alarm));
    assert_eq!(alarm.door.as_deref(), Some("main"));
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_pulled_before_the_palm_decides_nothing() {
    let mut gate = Gate::start().await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 11)]);
    gate.cards.present(card);
    // Read (certificate checked) before it leaves, as a card on a real reader would be.
    tokio::time::sleep(Duration::from_millis(300)).await;
    gate.cards.pull();
    gate.palm(11).await;
    gate.no_decision(Duration::from_millis(800)).await;
    gate.stop().await;
}

/// The main loop wakes at least every 500 ms even when its next deadline is far away: a card
/// waiting for its palm (deadline: the presentation window, 20 s here) must not starve the
/// watchdog, whose check wants a beat of the loop between two pings (systemd would restart a gate
/// that merely waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_card_waiting_for_its_palm_keeps_the_watchdog_fed() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let manager = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    manager.set_nonblocking(true).unwrap();
    // A ping every second, each wanting a beat since the last.
    let notifier = Notifier::new(
        Some(socket_path.into_os_string()),
        Some(Duration::from_secs(2)),
    );
    let mut gate = Gate::start_notifying(
        |config| {
            config.replace(
                "presentation_window_ms = 3000",
                "presentation_window_ms = 20000",
            )
        },
        notifier,
    )
    .await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 11)]);
    gate.cards.present(card);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let drain = |manager: &std::os::unix::net::UnixDatagram| {
        let mut buffer = [0u8; 512];
        let mut pings = 0;
        while let Ok(length) = manager.recv(&mut buffer) {
            pings += String::from_utf8_lossy(&buffer[..length])
                .lines()
                .filter(|line| *line == "WATCHDOG=1")
                .count();
        }
        pings
    };
    drain(&manager);
    gate.no_decision(Duration::from_millis(4500)).await;
    let pings = drain(&manager);
    assert!(
        pings >= 3,
        "{pings} watchdog pings in 4.5 s while a card waited for its palm (one a second expected)"
    );
    gate.stop().await;
}

/// A gate restarted with a door in lockdown and a canteen meal whose answer was lost: the lost
/// answer stays on record through the start (taking the lockdown back must not rewrite it empty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_in_lockdown_keeps_the_lost_meal_answers_on_record() {
    let meals = r#"{"version":1,"meals":[{"card":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","period":7,"allowance":1,"gate_time":1765000000}]}"#;
    let state_dir = Arc::new(Mutex::new(None));
    let seen = state_dir.clone();
    let mut gate = Gate::start_with(move |config| {
        let dir = config
            .lines()
            .find_map(|line| line.strip_prefix("state_dir = "))
            .unwrap()
            .trim_matches('"')
            .to_string();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            Path::new(&dir).join("lockdown.json"),
            r#"{"version":1,"doors":["back"]}"#,
        )
        .unwrap();
        std::fs::write(Path::new(&dir).join("unconfirmed-meals.json"), meals).unwrap();
        *seen.lock().unwrap() = Some(dir);
        config
    })
    .await;
    // Started: the doors (the one in lockdown with them) are reported ready.
    gate.event(&[EventKind::DoorsReady]).await;
    let dir = state_dir.lock().unwrap().clone().unwrap();
    let kept = std::fs::read_to_string(Path::new(&dir).join("unconfirmed-meals.json")).unwrap();
    assert!(kept.contains("5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"), "{kept}");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_sensor_replug_presentations_still_decide() {
    let mut gate = Gate::start().await;
    gate.sensor_event(SensorEvent::Disconnected {
        error: palmgate_sensor::device::DeviceError::Closed,
        retry_in: Duration::from_millis(10),
    })
    .await;
    gate.sensor_event(sensor_connected()).await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 12)]);
    gate.cards.present(card);
    gate.palm(12).await;
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_presentation_gives_one_decision() {
    let mut gate = Gate::start().await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 13)]);
    gate.cards.present(card.clone());
    gate.palm(13).await;
    assert_eq!(gate.decision().await.kind, EventKind::AccessGranted);
    // The same card left on the reader and more frames of the same hand: no second decision.
    gate.frame_number += 1;
    let number = gate.frame_number;
    gate.sensor_event(frame(13, 2, number)).await;
    gate.no_decision(Duration::from_millis(800)).await;
    gate.stop().await;
}

/// [`Gate::start`] with palmgate-sensor's own device task (codec, handshake, reconnection) on
/// in-memory links instead of the channel sensor: the test plays the sensor on the far end of
/// each `tokio::io::duplex` it plugs in. Returns the gate (its channel sensor ends unused) and the
/// plug.
async fn start_on_duplex_sensor() -> (
    Gate,
    palmgate_sensor::device::StreamPlug<tokio::io::DuplexStream>,
) {
    use palmgate::gate::devices::{DuplexSensor, SerialSensor};

    Gate::launch(
        |config| config,
        Notifier::from_env(),
        |settings| {
            let (sensor, plug) = DuplexSensor::new(SerialSensor::from_settings(settings).0);
            let (_unused, ends) = ChannelSensor::new();
            (Box::new(sensor), ends, plug)
        },
    )
    .await
}

/// A sensor on the far end of a freshly plugged in-memory link, as `sensor_connected` describes it.
fn plug_in_sensor(
    plug: &palmgate_sensor::device::StreamPlug<tokio::io::DuplexStream>,
) -> palmgate_sensor::device::ScriptedSensor {
    let SensorEvent::Connected(info) = sensor_connected() else {
        unreachable!("sensor_connected is a handshake")
    };
    palmgate_sensor::device::ScriptedSensor::plug_in(plug, info)
}

/// Presents `identity`'s hand on `sensor` (a lift first, then the hand and a frame, again and
/// again: frames that arrive before the device task's handshake is done are dropped) until the
/// gate decides; returns the decision.
async fn decision_over(
    gate: &mut Gate,
    sensor: &mut palmgate_sensor::device::ScriptedSensor,
    identity: u64,
) -> Event {
    let image = palmgate_matcher::synth::hand_image(identity, 1);
    tokio::time::timeout(WAIT, async {
        loop {
            assert!(sensor.presence(false).await, "sensor link open");
            assert!(sensor.presence(true).await, "sensor link open");
            assert!(sensor.frame(&image).await, "sensor link open");
            if let Ok(event) =
                tokio::time::timeout(Duration::from_millis(300), gate.decision()).await
            {
                return event;
            }
        }
    })
    .await
    .expect("a decision over the in-memory sensor link")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_real_sensor_codec_a_replugged_sensor_still_decides() {
    let (mut gate, plug) = start_on_duplex_sensor().await;
    let mut first = plug_in_sensor(&plug);
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 14)]);
    gate.cards.present(card);
    let decision = decision_over(&mut gate, &mut first, 14).await;
    assert_eq!(decision.kind, EventKind::AccessGranted, "{decision:?}");
    gate.cards.pull();

    // Pulled out: the device task loses the link, and takes the next one plugged in (with a new
    // handshake); the next presentation decides again.
    first.unplug();
    let mut second = plug_in_sensor(&plug);
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 15)]);
    gate.cards.present(card);
    let decision = decision_over(&mut gate, &mut second, 15).await;
    assert_eq!(decision.kind, EventKind::AccessGranted, "{decision:?}");
    gate.stop().await;
}

/// Tries left on an in-process card (read while it is off the reader).
fn tries_left(card: &SharedCard) -> u8 {
    let mut transport = card.lock().unwrap();
    Card::open(&mut *transport).unwrap().identity().tries_left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presentation_attack_is_refused_before_the_card_and_spends_no_try() {
    let mut gate = Gate::start().await;
    gate.sensor_event(SensorEvent::Bands(Band::ALL.to_vec()))
        .await;
    let attack = rendered_burst(Presented::Attack(Species::PrintNir)).await;
    let (card, id) = gate.issuer.card(&[(SlotKind::Normal, 14)]);
    let tries_before = tries_left(&card);
    gate.cards.present(card.clone());
    // The frame passes quality (it is the enrolled hand); the burst shows a print of it.
    gate.palm(14).await;
    gate.answer_burst(attack).await;
    let denied = gate.denial_because("presentation_attack").await;
    assert_eq!(denied.card_id, Some(id.clone()));
    assert_eq!(denied.result, Some(Outcome::Denied));
    let detail = denied.detail.clone().unwrap_or_default();
    assert!(detail.contains("(balanced profile); against: "), "{detail}");
    let alarm = gate.event(&[EventKind::AlarmPresentationAttack]).await;
    assert_eq!(alarm.result, Some(Outcome::Alarm));
    assert_eq!(alarm.reason, Some(Reason::PRESENTATION_ATTACK));
    assert_eq!(alarm.card_id, Some(id));
    assert_eq!(alarm.door.as_deref(), Some("main"));
    assert_eq!(alarm.detail, denied.detail);
    gate.no_decision(Duration::from_millis(500)).await;
    gate.cards.pull();
    assert_eq!(tries_left(&card), tries_before, "a card try was spent");
    gate.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_hand_on_a_multi_band_sensor_passes_after_a_refused_attack() {
    // Two extractions and two burst analyses in a debug build, on a loaded machine, within one
    // presentation window: give it room.
    let mut gate = Gate::start_with(|config| {
        config.replace(
            "presentation_window_ms = 3000",
            "presentation_window_ms = 30000",
        )
    })
    .await;
    gate.sensor_event(SensorEvent::Bands(Band::ALL.to_vec()))
        .await;
    let attack = rendered_burst(Presented::Attack(Species::ScreenReplay)).await;
    let live = rendered_burst(Presented::Live).await;
    let (card, _) = gate.issuer.card(&[(SlotKind::Normal, 15)]);
    gate.cards.present(card);
    gate.palm(15).await;
    gate.answer_burst(attack).await;
    gate.denial_because("presentation_attack").await;
    // Asked to present again: the screen goes, the hand comes, with the card still waiting.
    gate.hand(false).await;
    gate.palm(15).await;
    gate.answer_burst(live).await;
    let decision = gate.decision().await;
    assert_eq!(decision.kind, EventKind::AccessGranted, "{decision:?}");
    gate.stop().await;
}
