//! The station's order of work in this process: the card is the applet behind
//! `InProcessTransport`, the sensor is the gate's `ChannelSensor` played by a [`Person`] who
//! presents the next hand of a script whenever the station asks for one, the audit log is a
//! temporary file.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use palmgate_card::applet::Applet;
use palmgate_card::host::issuer::{init_issuer_dir, load_issuer_public_key};
use palmgate_card::host::platform::{MemoryStorage, SystemClock, SystemRng, system_rng};
use palmgate_card::host::{Card, InProcessTransport};
use palmgate_card::protocol::Lifecycle;
use palmgate_matcher::extract::InputKind;
use palmgate_sensor::codec::{FrameFormat, SensorInfo};
use palmgate_sensor::device::{CapturedFrame, DeviceCommand, ReceivedAt, SensorEvent};
use palmgate_sensor::image::PalmImage;
use tokio::sync::mpsc;

use super::*;
use crate::enrol::{ConsentMethod, DEFAULT_CONSENT_TEXT, Disagreement};
use crate::event::EventKind;
use crate::gate::devices::ChannelSensor;

type Applet_ = InProcessTransport<MemoryStorage, SystemRng, SystemClock>;

fn extractor() -> Arc<Extractor> {
    static EXTRACTOR: OnceLock<Arc<Extractor>> = OnceLock::new();
    EXTRACTOR
        .get_or_init(|| Arc::new(Extractor::builtin().unwrap()))
        .clone()
}

fn factory_card() -> Applet_ {
    InProcessTransport::new(Applet::factory(
        MemoryStorage::default(),
        system_rng(),
        SystemClock::default(),
    ))
}

/// A presentation: `Some((identity, capture))` a synthetic hand, `None` an empty frame.
type Shown = Option<(u64, u64)>;

/// The person at the station: consents (or not) and presents the next hand of the script each
/// time the station asks for one; keeps every notice's gist.
struct Person {
    consents: bool,
    /// Presents the next hand as soon as the station has taken a capture, without waiting to be
    /// asked: as the simulator's hand does, which comes and goes on its own clock.
    eager: bool,
    sensor: mpsc::Sender<SensorEvent>,
    /// What the station asked of the sensor.
    sensor_commands: mpsc::Receiver<DeviceCommand>,
    script: VecDeque<Shown>,
    heard: Vec<String>,
    frame_number: u32,
}

impl Person {
    /// Lifts the hand and presents the next one of the script (nothing when it has run out).
    fn present_next(&mut self) {
        let Some(shown) = self.script.pop_front() else {
            return;
        };
        let image = match shown {
            Some((identity, capture)) => palmgate_matcher::synth::hand_image(identity, capture),
            None => image::GrayImage::new(640, 480),
        };
        self.frame_number += 1;
        for event in [
            presence(false),
            presence(true),
            SensorEvent::Frame(CapturedFrame {
                image: PalmImage::new(image),
                format: FrameFormat::Gray8,
                frame_number: self.frame_number,
                encoded_bytes: 0,
                received: ReceivedAt::now(),
                decoded_at: std::time::Instant::now(),
            }),
        ] {
            self.sensor.blocking_send(event).unwrap();
        }
    }
}

fn presence(present: bool) -> SensorEvent {
    SensorEvent::Presence {
        present,
        distance_mm: None,
        received: ReceivedAt::now(),
    }
}

impl Operator for Person {
    fn consent(&mut self, _text: &str, sha256: &str) -> Result<ConsentMethod, EnrolError> {
        self.heard.push(format!("consent {sha256}"));
        if self.consents {
            Ok(ConsentMethod::Flag)
        } else {
            Err(Refusal::ConsentNotGiven.into())
        }
    }

    fn notice(&mut self, notice: Notice<'_>) {
        let asks_for_a_hand = if self.eager {
            matches!(
                &notice,
                Notice::SeriesStarted {
                    hand: Hand::Normal,
                    ..
                } | Notice::Capture { .. }
                    | Notice::VerifyCaptureRefused { .. }
                    | Notice::Verified { .. }
            )
        } else {
            asks_for_a_hand(&notice)
        };
        if self.eager && matches!(notice, Notice::Enrolled { slot: 0, .. }) {
            self.note_sensor_commands_until_paused();
        }
        self.heard.push(match &notice {
            Notice::Capture { hand, step } => format!("{hand}: {step:?}"),
            Notice::Enrolled { slot, kind } => format!("enrolled {slot} {}", kind_name(*kind)),
            Notice::Verified { hand, verification } => format!("verified {hand} {verification:?}"),
            Notice::SeriesAgree { hand, report } => format!(
                "{hand} agrees: {:?} {report}",
                report
                    .pairs
                    .iter()
                    .map(|p| (p.first, p.second))
                    .collect::<Vec<_>>()
            ),
            Notice::SeriesDisagrees {
                hand,
                disagreement,
                extra,
                allowed,
            } => format!("{hand} disagrees ({extra} of {allowed}): {disagreement}"),
            other => format!("{other:?}").chars().take(40).collect(),
        });
        if asks_for_a_hand {
            self.present_next();
        }
    }
}

impl Person {
    /// Notes (in `heard`) the commands the station sent to the sensor, waiting (up to 5 s) for the
    /// capture to be stopped: the watch task that stops it runs beside the station's card writes.
    fn note_sensor_commands_until_paused(&mut self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            match self.sensor_commands.try_recv() {
                Ok(DeviceCommand::StopCapture) => {
                    self.heard.push("sensor: stop".to_string());
                    return;
                }
                Ok(command) => self.heard.push(format!("sensor: {command:?}")),
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(mpsc::error::TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// Whether `notice` asks the person for (another) hand.
fn asks_for_a_hand(notice: &Notice<'_>) -> bool {
    match notice {
        Notice::SeriesStarted { .. }
        | Notice::VerifyPresent { .. }
        | Notice::VerifyCaptureRefused { .. }
        | Notice::Capture {
            step: CaptureStep::Refused { .. },
            ..
        } => true,
        Notice::Capture {
            step: CaptureStep::Accepted { number, wanted, .. },
            ..
        } => number < wanted,
        _ => false,
    }
}

/// One station: an issuer, its audit log, and the options of a single-hand enrolment.
struct Desk {
    dir: tempfile::TempDir,
    issuer: Issuer,
    options: StationOptions,
    /// How long the station waits for each capture.
    wait: Duration,
}

impl Desk {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let issuer_dir = dir.path().join("issuer");
        let (key, authority) = init_issuer_dir(&issuer_dir).unwrap();
        let issuer = Issuer {
            key,
            public: load_issuer_public_key(&issuer_dir).unwrap(),
            authority,
            source: issuer_dir,
        };
        Self {
            dir,
            issuer,
            options: StationOptions {
                samples: 3,
                duress_hand: false,
                re_enrol: false,
                max_refused: 3,
                extra_captures: 2,
                consent_text: DEFAULT_CONSENT_TEXT.to_string(),
                profile: palmgate_matcher::Profile::Balanced,
                profile_floor: None,
            },
            wait: Duration::from_secs(5),
        }
    }

    fn audit_path(&self) -> std::path::PathBuf {
        self.dir.path().join("enrolment").join("audit.jsonl")
    }

    /// The `enrol.completed` event (the second, after the consent) and the audit log's last record
    /// name the profile floor `floor`.
    fn assert_completed_with_floor(&self, events: &[NewEvent], floor: &str) {
        let detail = events[1].detail.as_deref().unwrap();
        assert!(
            detail.ends_with(&format!(" profile_floor={floor}")),
            "{detail}"
        );
        let audit = std::fs::read_to_string(self.audit_path()).unwrap();
        let completed = audit.lines().last().unwrap();
        assert!(
            completed.contains(&format!(r#""profile_floor":"{floor}""#)),
            "{completed}"
        );
    }

    fn audit_kinds(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        text.lines()
            .map(|line| {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                value["kind"].as_str().unwrap().to_string()
            })
            .collect()
    }

    /// Enrols `card` with a person who presents `script` when asked (and consents when
    /// `consents`).
    fn enrol(&self, card: &mut Applet_, consents: bool, script: &[Shown]) -> (Enrolment, Person) {
        self.enrol_with(card, consents, false, script)
    }

    /// [`Self::enrol`], with a person who presents each hand of `script` without waiting to be
    /// asked when `eager`.
    fn enrol_with(
        &self,
        card: &mut Applet_,
        consents: bool,
        eager: bool,
        script: &[Shown],
    ) -> (Enrolment, Person) {
        let (link, ends) = ChannelSensor::new();
        let sensor = ends.events;
        sensor.blocking_send(connected()).unwrap();
        let mut person = Person {
            consents,
            eager,
            sensor,
            sensor_commands: ends.commands,
            script: script.iter().copied().collect(),
            heard: Vec::new(),
            frame_number: 0,
        };
        let setup = SensorSetup {
            link: Box::new(link),
            extractor: extractor(),
            options: SensorOptions {
                name: "in-process sensor".to_string(),
                wait: self.wait,
                input: InputKind::Hand,
            },
        };
        let mut audit = AuditLog::open(&self.audit_path()).unwrap();
        let enrolment = enrol(
            card,
            &self.issuer,
            &self.options,
            setup,
            &mut audit,
            &mut person,
        );
        (enrolment, person)
    }
}

fn connected() -> SensorEvent {
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

fn event_kinds(events: &[NewEvent]) -> Vec<EventKind> {
    events.iter().map(|event| event.kind).collect()
}

fn slots_used(card: &mut Applet_) -> (Lifecycle, u8) {
    let card = Card::open(card).unwrap();
    (card.identity().lifecycle, card.identity().slots_used)
}

#[test]
fn a_factory_card_is_personalised_enrolled_and_verified_in_order() {
    let desk = Desk::new();
    let mut card = factory_card();
    let (enrolment, person) = desk.enrol(
        &mut card,
        true,
        &[Some((1, 0)), Some((1, 1)), Some((1, 2)), Some((1, 3))],
    );
    let card_id = enrolment.result.unwrap();
    assert_eq!(
        event_kinds(&enrolment.events),
        [EventKind::EnrolConsent, EventKind::EnrolCompleted]
    );
    assert_eq!(desk.audit_kinds(), ["enrol.consent", "enrol.completed"]);
    // Every accepted capture of the hand is enrolled (the card keeps the closest to a probe).
    assert_eq!(slots_used(&mut card), (Lifecycle::Personalised, 3));
    let position = |prefix: &str| {
        person
            .heard
            .iter()
            .position(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {:#?}", person.heard))
    };
    // Consent before any capture; every capture before the write; the write before the
    // verification.
    assert!(position("consent") < position("SeriesStarted"));
    assert!(position("hand: Accepted { number: 3") < position("Personalised"));
    assert!(position("Personalised") < position("enrolled 0 normal"));
    assert!(position("enrolled 0 normal") < position("enrolled 2 normal"));
    assert!(position("enrolled 2 normal") < position("verified hand Match"));
    assert_eq!(
        person
            .heard
            .iter()
            .filter(|line| line.starts_with("verified"))
            .count(),
        1,
        "one verification for the hand, however many templates: {:#?}",
        person.heard
    );
    assert!(
        enrolment.events[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("slots=normal,normal,normal verified=true personalised=true")
    );
    assert!(!card_id.to_string().is_empty());
}

#[test]
fn a_profile_floor_is_written_with_the_templates_and_on_record() {
    let mut desk = Desk::new();
    desk.options.profile_floor = Some(palmgate_matcher::Profile::Security);
    let mut card = factory_card();
    let (enrolment, _) = desk.enrol(
        &mut card,
        true,
        &[Some((1, 0)), Some((1, 1)), Some((1, 2)), Some((1, 3))],
    );
    enrolment.result.unwrap();
    assert_eq!(
        card.applet().profile_floor(),
        Some(palmgate_matcher::Profile::Security)
    );
    desk.assert_completed_with_floor(&enrolment.events, "security");
}

/// A floor set before on a card with no templates (`palmgate card enrol --profile-floor` whose
/// templates were never written) is not erased by the station, so it stays in force: the record
/// says so, although no floor was asked for this time.
#[test]
fn a_floor_the_card_already_keeps_is_on_record_though_none_was_asked_for() {
    let desk = Desk::new();
    let mut card = factory_card();
    {
        let mut host = Card::open(&mut card).unwrap();
        host.personalise(&desk.issuer.key).unwrap();
        let verified = host.verify_certificate(&[desk.issuer.public]).unwrap();
        let session = host.open_session(&verified).unwrap();
        let mut enrolment = session.prove_authority(&desk.issuer.authority).unwrap();
        enrolment
            .set_profile_floor(Some(palmgate_matcher::Profile::Convenience))
            .unwrap();
    }
    assert_eq!(slots_used(&mut card), (Lifecycle::Personalised, 0));
    let (enrolment, _) = desk.enrol(
        &mut card,
        true,
        &[Some((1, 0)), Some((1, 1)), Some((1, 2)), Some((1, 3))],
    );
    enrolment.result.unwrap();
    desk.assert_completed_with_floor(&enrolment.events, "convenience");
}

#[test]
fn without_consent_nothing_is_captured_or_written() {
    let desk = Desk::new();
    let mut card = factory_card();
    let (enrolment, person) = desk.enrol(&mut card, false, &[Some((1, 0))]);
    assert!(
        matches!(
            enrolment.result,
            Err(EnrolError::Refused(Refusal::ConsentNotGiven))
        ),
        "{:?}",
        enrolment.result
    );
    assert!(enrolment.events.is_empty());
    assert!(desk.audit_kinds().is_empty());
    assert_eq!(slots_used(&mut card), (Lifecycle::Factory, 0));
    // The script was never asked for.
    assert_eq!(person.script.len(), 1);
}

#[test]
fn captures_of_two_people_are_refused_before_anything_is_written() {
    let mut desk = Desk::new();
    desk.options.extra_captures = 0;
    let mut card = factory_card();
    let (enrolment, _) = desk.enrol(&mut card, true, &[Some((1, 0)), Some((2, 0)), Some((1, 1))]);
    assert!(
        matches!(
            enrolment.result,
            Err(EnrolError::Refused(Refusal::Disagreement(_)))
        ),
        "{:?}",
        enrolment.result
    );
    assert!(enrolment.events.is_empty());
    assert!(desk.audit_kinds().is_empty());
    assert_eq!(slots_used(&mut card), (Lifecycle::Factory, 0));
}

#[test]
fn a_capture_that_disagrees_is_replaced_by_an_extra_one_and_the_agreeing_three_are_enrolled() {
    // Capture 2 is another hand: the station asks for one more, and enrols 1, 3 and 4.
    let desk = Desk::new();
    let mut card = factory_card();
    let (enrolment, person) = desk.enrol(
        &mut card,
        true,
        &[
            Some((1, 0)),
            Some((2, 0)),
            Some((1, 1)),
            Some((1, 2)),
            Some((1, 3)),
        ],
    );
    enrolment.result.unwrap();
    assert_eq!(slots_used(&mut card), (Lifecycle::Personalised, 3));
    let heard = |prefix: &str| {
        person
            .heard
            .iter()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {:#?}", person.heard))
            .clone()
    };
    let disagrees = heard("hand disagrees (1 of 2)");
    assert!(
        disagrees.contains("capture 1 and capture 2")
            && disagrees.contains("capture 2 and capture 3"),
        "{disagrees}"
    );
    assert!(
        !disagrees.contains("capture 1 and capture 3"),
        "{disagrees}"
    );
    // The pairs of what is enrolled are named by their numbers in the series.
    let agrees = heard("hand agrees");
    assert!(
        agrees.starts_with("hand agrees: [(1, 3), (1, 4), (3, 4)] 3 pairs match"),
        "{agrees}"
    );
    let extra_asks = person
        .heard
        .iter()
        .filter(|line| line.starts_with("hand disagrees"))
        .count();
    assert_eq!(extra_asks, 1, "one extra capture was enough");
    // The extra capture goes on with the series' numbers: it is capture 4, as the agreement
    // names it, not "capture 1 of 1".
    let accepted: Vec<&str> = person
        .heard
        .iter()
        .filter(|line| line.starts_with("hand: Accepted"))
        .map(|line| {
            let numbers = line.split(", valid_cells").next().unwrap_or(line);
            numbers.trim_start_matches("hand: Accepted { ")
        })
        .collect();
    assert_eq!(
        accepted,
        [
            "number: 1, wanted: 3",
            "number: 2, wanted: 3",
            "number: 3, wanted: 3",
            "number: 4, wanted: 4"
        ],
        "{:#?}",
        person.heard
    );
    assert!(
        enrolment.events[1]
            .detail
            .as_deref()
            .unwrap()
            .contains("verified=true"),
        "{:?}",
        enrolment.events
    );
}

#[test]
fn a_series_still_disagreeing_after_the_extra_captures_is_refused_before_anything_is_written() {
    let desk = Desk::new();
    let mut card = factory_card();
    let (enrolment, person) = desk.enrol(
        &mut card,
        true,
        &[
            Some((1, 0)),
            Some((2, 0)),
            Some((1, 1)),
            Some((3, 0)),
            Some((4, 0)),
            Some((1, 2)),
        ],
    );
    let Err(EnrolError::Refused(Refusal::Disagreement(Disagreement::NotMutual { pairs, .. }))) =
        &enrolment.result
    else {
        panic!("{:?}", enrolment.result);
    };
    // Every pair of the five captures that does not match is named: 1 and 3 match.
    let named: Vec<(usize, usize)> = pairs.iter().map(|p| (p.first, p.second)).collect();
    assert!(
        named.contains(&(4, 5)) && named.contains(&(1, 2)),
        "{named:?}"
    );
    assert!(!named.contains(&(1, 3)), "{named:?}");
    assert_eq!(
        person
            .heard
            .iter()
            .filter(|line| line.starts_with("hand disagrees"))
            .count(),
        2
    );
    // The sixth hand was never asked for.
    assert_eq!(person.script.len(), 1);
    assert!(enrolment.events.is_empty());
    assert!(desk.audit_kinds().is_empty());
    assert_eq!(slots_used(&mut card), (Lifecycle::Factory, 0));
}

#[test]
fn the_refused_captures_allowed_are_per_hand_and_extra_captures_draw_on_them() {
    // Two empty frames in the first series and two at the extra capture: four refusals, one
    // more than the desk's three, although neither part alone exceeds it.
    let desk = Desk::new();
    let mut card = factory_card();
    let (enrolment, person) = desk.enrol(
        &mut card,
        true,
        &[
            Some((1, 0)),
            None,
            None,
            Some((2, 0)),
            Some((1, 1)),
            None,
            None,
            Some((1, 2)),
            Some((1, 3)),
        ],
    );
    assert!(
        matches!(
            enrolment.result,
            Err(EnrolError::Refused(Refusal::CapturesRefused {
                refused: 4,
                ..
            }))
        ),
        "{:?}\n{:#?}",
        enrolment.result,
        person.heard
    );
    assert!(
        person
            .heard
            .iter()
            .any(|line| line.starts_with("hand: Refused") && line.contains("refused: 3")),
        "the extra capture's first refusal is the hand's third: {:#?}",
        person.heard
    );
    assert_eq!(slots_used(&mut card), (Lifecycle::Factory, 0));
}

#[test]
fn an_enrolled_card_is_refused_unless_re_enrolment_erases_it_with_a_kept_receipt() {
    let mut desk = Desk::new();
    let mut card = factory_card();
    let first = [Some((1, 0)), Some((1, 1)), Some((1, 2)), Some((1, 3))];
    desk.enrol(&mut card, true, &first).0.result.unwrap();

    let (again, person) = desk.enrol(&mut card, true, &first);
    assert!(
        matches!(
            again.result,
            Err(EnrolError::Refused(Refusal::AlreadyEnrolled {
                slots_used: 3,
                ..
            }))
        ),
        "{:?}",
        again.result
    );
    assert!(!person.heard.iter().any(|line| line.starts_with("consent")));
    assert_eq!(desk.audit_kinds().len(), 2);

    desk.options.re_enrol = true;
    let (re, _) = desk.enrol(
        &mut card,
        true,
        &[Some((5, 0)), Some((5, 1)), Some((5, 2)), Some((5, 3))],
    );
    re.result.unwrap();
    assert_eq!(
        event_kinds(&re.events),
        [
            EventKind::EnrolConsent,
            EventKind::CardErased,
            EventKind::EnrolCompleted
        ]
    );
    assert_eq!(
        desk.audit_kinds()[2..],
        ["enrol.consent", "card.erased", "enrol.completed"]
    );
    let receipts = std::fs::read_dir(desk.audit_path().parent().unwrap())
        .unwrap()
        .filter(|entry| {
            let name = entry.as_ref().unwrap().file_name();
            name.to_string_lossy().starts_with("receipt-")
        })
        .count();
    assert_eq!(receipts, 1);
    assert_eq!(slots_used(&mut card), (Lifecycle::Personalised, 3));
}

#[test]
fn a_duress_hand_goes_to_the_last_three_slots_after_a_refused_capture_gets_advice() {
    let mut desk = Desk::new();
    desk.options.duress_hand = true;
    let mut card = factory_card();
    let (enrolment, person) = desk.enrol(
        &mut card,
        true,
        &[
            Some((3, 0)),
            None,
            Some((3, 1)),
            Some((3, 2)),
            Some((4, 0)),
            Some((4, 1)),
            Some((4, 2)),
            Some((3, 3)),
            Some((4, 3)),
        ],
    );
    enrolment.result.unwrap();
    assert!(
        person
            .heard
            .iter()
            .any(|line| line.starts_with("hand: Refused") && line.contains("no hand")),
        "{:#?}",
        person.heard
    );
    // Three captures of each hand: the duress hand's in the card's last three slots.
    for expected in [
        "enrolled 0 normal",
        "enrolled 1 normal",
        "enrolled 2 normal",
        "enrolled 3 duress",
        "enrolled 4 duress",
        "enrolled 5 duress",
        "verified hand Match",
        "verified duress hand Match",
    ] {
        assert!(
            person.heard.iter().any(|line| line == expected),
            "{expected}"
        );
    }
    // The identity counts the hand's templates, not the duress hand's.
    assert_eq!(slots_used(&mut card), (Lifecycle::Personalised, 3));
}

#[test]
fn a_hand_presented_again_before_the_card_is_written_is_not_lost_to_the_write() {
    let mut desk = Desk::new();
    desk.options.duress_hand = true;
    // Without the fix the station waits for a hand that never comes: no need to wait long.
    desk.wait = Duration::from_secs(2);
    let mut card = factory_card();
    // The person presents the next hand as soon as a capture is taken, as the simulator's hand
    // does: the first verification hand (3, 3) is lifted and presented again while the station
    // is still busy with the duress series, before the card is written, and never again.
    let (enrolment, person) = desk.enrol_with(
        &mut card,
        true,
        true,
        &[
            Some((3, 0)),
            Some((3, 1)),
            Some((3, 2)),
            Some((4, 0)),
            Some((4, 1)),
            Some((4, 2)),
            Some((3, 3)),
            Some((4, 3)),
        ],
    );
    enrolment.result.unwrap();
    for expected in ["verified hand Match", "verified duress hand Match"] {
        assert!(
            person.heard.iter().any(|line| line == expected),
            "{expected} in {:#?}",
            person.heard
        );
    }
    assert!(person.script.is_empty(), "{:?}", person.script);
}

#[test]
fn the_capture_is_paused_while_the_card_is_written() {
    let desk = Desk::new();
    let mut card = factory_card();
    // The hand keeps coming: it is lifted (and the verification hand presented) right after the
    // last capture, so the station sees the lift while it writes the card.
    let (enrolment, mut person) = desk.enrol_with(
        &mut card,
        true,
        true,
        &[Some((1, 0)), Some((1, 1)), Some((1, 2)), Some((1, 3))],
    );
    enrolment.result.unwrap();
    while let Ok(command) = person.sensor_commands.try_recv() {
        person.heard.push(format!("sensor: {command:?}"));
    }
    let sensor: Vec<&str> = person
        .heard
        .iter()
        .filter_map(|line| line.strip_prefix("sensor: "))
        .map(|command| command.split('(').next().unwrap_or(command))
        .collect();
    // Started for the first capture, stopped once the last capture's hand was lifted, started
    // again for the verification.
    assert_eq!(
        sensor,
        ["StartCapture", "stop", "StartCapture"],
        "{:#?}",
        person.heard
    );
    let position = |line: &str| person.heard.iter().position(|heard| heard == line);
    assert!(
        position("sensor: stop") < position("enrolled 0 normal"),
        "{:#?}",
        person.heard
    );
    assert!(
        person
            .heard
            .iter()
            .any(|line| line == "verified hand Match"),
        "{:#?}",
        person.heard
    );
}

#[test]
fn the_wrong_hand_at_verification_leaves_an_enrolled_unverified_card_on_record() {
    let mut desk = Desk::new();
    desk.options.duress_hand = true;
    let mut card = factory_card();
    // The duress hand is presented first at the verification.
    let (enrolment, _) = desk.enrol(
        &mut card,
        true,
        &[
            Some((3, 0)),
            Some((3, 1)),
            Some((3, 2)),
            Some((4, 0)),
            Some((4, 1)),
            Some((4, 2)),
            Some((4, 3)),
            Some((3, 3)),
        ],
    );
    assert!(
        matches!(
            enrolment.result,
            Err(EnrolError::Refused(Refusal::NotVerified { .. }))
        ),
        "{:?}",
        enrolment.result
    );
    assert_eq!(desk.audit_kinds(), ["enrol.consent", "enrol.completed"]);
    let completed = enrolment.events.last().unwrap();
    assert!(
        completed
            .detail
            .as_deref()
            .unwrap()
            .contains("slots=normal,normal,normal,duress,duress,duress verified=false"),
        "{completed:?}"
    );
}

#[test]
fn a_sensor_that_never_answers_is_an_error_after_consent_and_before_any_write() {
    let mut desk = Desk::new();
    desk.options.samples = 2;
    let mut card = factory_card();
    let (link, _ends) = ChannelSensor::new();
    let mut person = Person {
        consents: true,
        eager: false,
        sensor: mpsc::channel(1).0,
        sensor_commands: mpsc::channel(1).1,
        script: VecDeque::new(),
        heard: Vec::new(),
        frame_number: 0,
    };
    let setup = SensorSetup {
        link: Box::new(link),
        extractor: extractor(),
        options: SensorOptions {
            name: "in-process sensor".to_string(),
            wait: Duration::from_millis(200),
            input: InputKind::Hand,
        },
    };
    let mut audit = AuditLog::open(&desk.audit_path()).unwrap();
    let enrolment = enrol(
        &mut card,
        &desk.issuer,
        &desk.options,
        setup,
        &mut audit,
        &mut person,
    );
    let error = enrolment.result.unwrap_err();
    assert!(
        matches!(error, EnrolError::Sensor(SensorError::NotConnected { .. })),
        "{error:?}"
    );
    assert!(crate::error_chain(&error).contains("no sensor on in-process sensor within 0 s"));
    assert!(desk.audit_kinds().is_empty());
    assert_eq!(slots_used(&mut card), (Lifecycle::Factory, 0));
}

#[test]
fn each_hand_gets_up_to_three_slots_and_the_duress_hand_at_least_one() {
    // (card slots, normal captures, duress captures) → (normal slots, duress slots): six slots
    // since applet 1.8, four before.
    for (capacity, normal, duress, expected) in [
        (6, 3, Some(3), (3, 3)),
        (6, 5, Some(5), (3, 3)),
        (6, 3, None, (3, 0)),
        (6, 2, Some(3), (2, 3)),
        (4, 3, None, (3, 0)),
        (4, 5, None, (3, 0)),
        (4, 2, None, (2, 0)),
        (4, 3, Some(3), (3, 1)),
        (4, 2, Some(3), (2, 2)),
        (4, 2, Some(2), (2, 2)),
        (2, 3, Some(3), (1, 1)),
        (1, 3, None, (1, 0)),
    ] {
        assert_eq!(
            super::slot_counts(capacity, normal, duress),
            expected,
            "{capacity} slots, {normal} normal and {duress:?} duress captures"
        );
    }
}
