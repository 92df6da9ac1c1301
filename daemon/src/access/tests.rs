//! The access machine with injected time: table-like scenario tests and a property test of its
//! invariant (no unlock without a genuine match or an authorised remote unlock).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::event::{CardId, NewEvent, Reason, Timestamp};

const WINDOW: Duration = Duration::from_secs(10);
const VERIFY_TIMEOUT: Duration = Duration::from_millis(1500);

fn config() -> AccessConfig {
    AccessConfig {
        door: "main".to_string(),
        presentation_window: WINDOW,
        verify_timeout: VERIFY_TIMEOUT,
    }
}

fn card(byte: u8) -> CardId {
    CardId::new(&[byte; 16]).expect("card id")
}

fn time() -> Timestamp {
    Timestamp::now()
}

struct Run {
    access: Access<AllowAll>,
    start: Instant,
}

impl Run {
    fn new() -> Self {
        Self {
            access: Access::new(config(), AllowAll),
            start: Instant::now(),
        }
    }

    fn at(&mut self, ms: u64, input: Input) -> Vec<Action> {
        self.access
            .handle(self.start + Duration::from_millis(ms), time(), input)
    }

    fn tick(&mut self, ms: u64) -> Vec<Action> {
        self.access
            .tick(self.start + Duration::from_millis(ms), time())
    }
}

fn presented(byte: u8) -> Input {
    Input::CardPresented {
        card: card(byte),
        read: Duration::from_millis(5),
    }
}

fn palm(run: &Run, ms: u64) -> Input {
    Input::PalmReady {
        received: run.start + Duration::from_millis(ms),
        extract: Duration::from_millis(12),
    }
}

fn decision(decision: Decision) -> Input {
    Input::CardDecision {
        decision,
        elapsed: Duration::from_millis(3),
    }
}

fn events(actions: &[Action]) -> Vec<&NewEvent> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Publish(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn kinds(actions: &[Action]) -> Vec<String> {
    events(actions)
        .iter()
        .map(|event| event.kind.as_str().to_string())
        .collect()
}

fn unlocks(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|action| matches!(action, Action::Unlock { .. }))
        .count()
}

fn lockdown(door: &str, on: bool) -> Input {
    Input::Lockdown {
        door: door.to_string(),
        on,
    }
}

fn remote_unlock(door: &str) -> Input {
    Input::RemoteUnlock {
        door: door.to_string(),
        unlock: None,
    }
}

/// `code` or `code: detail` of the first event with a reason.
fn reason(actions: &[Action]) -> Option<String> {
    events(actions).iter().find_map(|event| {
        let code = event.reason.as_ref()?;
        Some(match &event.detail {
            Some(detail) => format!("{code}: {detail}"),
            None => code.to_string(),
        })
    })
}

#[test]
fn card_then_palm_then_match_grants_once() {
    let mut run = Run::new();
    assert!(
        run.at(0, presented(1)).is_empty(),
        "a certified card waits for a palm"
    );
    assert!(matches!(run.access.state(), State::CardWaitingPalm { .. }));
    let actions = run.at(800, palm(&run, 790));
    assert_eq!(actions, [Action::Verify]);
    let actions = run.at(820, decision(Decision::Match { duress: false }));
    assert_eq!(unlocks(&actions), 1);
    assert_eq!(kinds(&actions), ["access.granted"]);
    let granted = events(&actions)[0];
    assert_eq!(granted.card_id, Some(card(1)));
    let latencies = granted.latencies;
    assert_eq!(latencies.match_ms, Some(3.0));
    assert_eq!(latencies.extract_ms, Some(12.0));
    assert_eq!(latencies.capture_ms, Some(790.0));
    assert_eq!(
        latencies.decision_ms,
        Some(30.0),
        "from the frame to the unlock"
    );
    assert_eq!(*run.access.state(), State::AwaitRemoval);
    // The same card staying on the reader does not open again.
    assert!(run.at(900, palm(&run, 900)).contains(&Action::DiscardProbe));
    assert_eq!(run.at(1000, Input::CardRemoved), []);
    assert_eq!(*run.access.state(), State::Idle);
}

#[test]
fn palm_then_card_verifies_at_once() {
    let mut run = Run::new();
    assert!(run.at(0, palm(&run, 0)).is_empty());
    assert!(matches!(run.access.state(), State::PalmWaitingCard { .. }));
    assert_eq!(run.at(2000, presented(1)), [Action::Verify]);
    let actions = run.at(2010, decision(Decision::Match { duress: false }));
    assert_eq!(unlocks(&actions), 1);
    assert_eq!(
        events(&actions)[0].latencies.decision_ms,
        Some(10.0),
        "from the card to the unlock"
    );
}

#[test]
fn palm_waits_only_for_the_window() {
    let mut run = Run::new();
    run.at(0, palm(&run, 0));
    assert_eq!(run.access.next_deadline(), Some(run.start + WINDOW));
    assert_eq!(run.tick(9_999), []);
    assert_eq!(run.tick(10_000), [Action::DiscardProbe]);
    assert_eq!(*run.access.state(), State::Idle);
    // A card after the window waits for a new palm.
    assert!(run.at(10_500, presented(1)).is_empty());
    assert!(matches!(run.access.state(), State::CardWaitingPalm { .. }));
}

#[test]
fn no_palm_in_the_window_denies_with_the_last_refusal() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(
        100,
        Input::PalmRefused {
            reason: "out of focus".to_string(),
        },
    );
    let actions = run.tick(10_000);
    assert_eq!(unlocks(&actions), 0);
    assert!(actions.contains(&Action::Deny {
        door: "main".to_string()
    }));
    assert_eq!(kinds(&actions), ["access.denied"]);
    assert_eq!(
        reason(&actions).as_deref(),
        Some("no_palm: no usable palm within the presentation window (last capture: out of focus)")
    );
}

#[test]
fn denials_before_capture() {
    // Revoked card: denied without a verification, and a held probe is wiped.
    let mut run = Run::new();
    run.access.set_revoked(BTreeSet::from([card(7)]));
    run.at(0, palm(&run, 0));
    let actions = run.at(100, presented(7));
    assert!(actions.contains(&Action::DiscardProbe));
    assert!(!actions.contains(&Action::Verify));
    assert_eq!(reason(&actions).as_deref(), Some("card_revoked"));
    assert_eq!(*run.access.state(), State::AwaitRemoval);

    // Unknown issuer / not a palmgate card: reported by the card worker as a rejection.
    let mut run = Run::new();
    let actions = run.at(
        0,
        Input::CardRejected {
            card: Some(card(3)),
            reason: "unknown issuer".to_string(),
        },
    );
    assert_eq!(kinds(&actions), ["access.denied"]);
    assert_eq!(events(&actions)[0].card_id, Some(card(3)));
    assert_eq!(unlocks(&actions), 0);

    // Lockdown of the reader's door (the door controller reports lockdown.on, not the machine).
    let mut run = Run::new();
    assert_eq!(run.at(0, lockdown("main", true)), []);
    let actions = run.at(10, presented(1));
    assert_eq!(reason(&actions).as_deref(), Some("lockdown"));
    assert_eq!(events(&actions)[0].door.as_deref(), Some("main"));
    assert!(!actions.contains(&Action::Verify));
}

#[test]
fn lockdown_of_another_door_leaves_this_reader_working_and_refuses_that_doors_remote_unlock() {
    let mut run = Run::new();
    assert_eq!(run.at(0, lockdown("back", true)), []);
    assert!(!run.access.in_lockdown("main"));
    assert!(run.access.in_lockdown("back"));
    // Alice at this reader (door main): granted.
    assert!(run.at(10, presented(1)).is_empty());
    assert_eq!(run.at(100, palm(&run, 100)), [Action::Verify]);
    let actions = run.at(110, decision(Decision::Match { duress: false }));
    assert_eq!(kinds(&actions), ["access.granted"]);
    assert!(actions.contains(&Action::Unlock {
        door: "main".to_string(),
        unlock: None,
    }));
    run.at(200, Input::CardRemoved);
    // A remote unlock of the door in lockdown is refused; of this reader's door granted.
    let actions = run.at(300, remote_unlock("back"));
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(kinds(&actions), ["access.remote_unlock"]);
    assert_eq!(events(&actions)[0].door.as_deref(), Some("back"));
    assert_eq!(reason(&actions).as_deref(), Some("lockdown"));
    let actions = run.at(310, remote_unlock("main"));
    assert_eq!(
        actions
            .iter()
            .filter(|action| matches!(action, Action::Unlock { door, .. } if door == "main"))
            .count(),
        1
    );

    // Lockdown of main too; releasing back lifts back only.
    run.at(400, lockdown("main", true));
    run.at(410, lockdown("back", false));
    assert_eq!(unlocks(&run.at(420, remote_unlock("back"))), 1);
    assert_eq!(unlocks(&run.at(430, remote_unlock("main"))), 0);
    let actions = run.at(440, presented(1));
    assert_eq!(reason(&actions).as_deref(), Some("lockdown"));
    run.at(450, Input::CardRemoved);
    // Release of main: this reader works again.
    run.at(500, lockdown("main", false));
    assert!(run.at(510, presented(1)).is_empty());
    assert!(matches!(run.access.state(), State::CardWaitingPalm { .. }));
}

struct NightOnly;

impl Policy for NightOnly {
    fn check(&self, _card: &CardId, door: &str, _time: Timestamp) -> Result<(), PolicyRefusal> {
        Err(PolicyRefusal(format!("outside schedule for {door}")))
    }
}

#[test]
fn policy_refusal_denies_before_capture() {
    let mut access = Access::new(config(), NightOnly);
    let actions = access.handle(Instant::now(), time(), presented(1));
    assert_eq!(
        reason(&actions).as_deref(),
        Some("not_permitted: outside schedule for main")
    );
    assert_eq!(*access.state(), State::AwaitRemoval);
}

#[test]
fn duress_opens_and_raises_a_silent_alarm() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    let actions = run.at(110, decision(Decision::Match { duress: true }));
    assert_eq!(unlocks(&actions), 1);
    assert_eq!(kinds(&actions), ["access.granted", "alarm.duress"]);
    // The grant itself is indistinguishable from a normal one.
    let mut normal = Run::new();
    normal.at(0, presented(1));
    normal.at(100, palm(&normal, 100));
    let normal_actions = normal.at(110, decision(Decision::Match { duress: false }));
    let strip = |event: &NewEvent| {
        (
            event.kind,
            event.result,
            event.reason.clone(),
            event.card_id.clone(),
        )
    };
    assert_eq!(
        strip(events(&actions)[0]),
        strip(events(&normal_actions)[0])
    );
}

#[test]
fn no_match_and_blocked_deny() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    let actions = run.at(110, decision(Decision::NoMatch { tries_left: 3 }));
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(
        reason(&actions).as_deref(),
        Some("no_match: palm does not match the card (3 tries left)")
    );

    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    let actions = run.at(110, decision(Decision::Blocked));
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(kinds(&actions), ["access.denied", "alarm.card_blocked"]);
}

#[test]
fn card_pulled_during_verification_denies_and_ignores_a_late_match() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    let actions = run.at(105, Input::CardRemoved);
    assert_eq!(reason(&actions).as_deref(), Some("card_removed"));
    let late = run.at(110, decision(Decision::Match { duress: false }));
    assert_eq!(unlocks(&late), 0, "a decision after removal never opens");
}

#[test]
fn verification_timeout_denies_and_ignores_a_late_match() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    let actions = run.tick(1600);
    assert_eq!(reason(&actions).as_deref(), Some("card_timeout"));
    let late = run.at(1700, decision(Decision::Match { duress: false }));
    assert_eq!(unlocks(&late), 0);
}

#[test]
fn verify_failure_denies() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    let actions = run.at(
        110,
        Input::VerifyFailed {
            reason: "secure session authentication failed".to_string(),
        },
    );
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(
        reason(&actions).as_deref(),
        Some("verification_failed: secure session authentication failed")
    );
}

#[test]
fn lockdown_during_verification_refuses_the_match_and_remote_unlock() {
    let mut run = Run::new();
    run.at(0, presented(1));
    run.at(100, palm(&run, 100));
    run.at(105, lockdown("main", true));
    let actions = run.at(110, decision(Decision::Match { duress: false }));
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(reason(&actions).as_deref(), Some("lockdown"));
    let actions = run.at(200, remote_unlock("main"));
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(run.at(300, lockdown("main", false)), []);
    let actions = run.at(400, remote_unlock("main"));
    assert_eq!(unlocks(&actions), 1);
    assert_eq!(kinds(&actions), ["access.remote_unlock"]);
}

fn any_input() -> impl Strategy<Value = (u64, u8)> {
    (0u64..3000, 0u8..15)
}

proptest! {
    /// Invariant: every unlock follows, in the same presentation, a card that passed the checks, a
    /// palm, and the card's authenticated match — or is an authorised remote unlock. No door is
    /// unlocked while it is in lockdown (this reader's door `main`, another door `back`). Nothing
    /// unlocks twice for one decision.
    #[test]
    fn never_unlocks_without_a_genuine_match(steps in proptest::collection::vec(any_input(), 0..40)) {
        let mut run = Run::new();
        run.access.set_revoked(BTreeSet::from([card(9)]));
        let mut now = 0u64;
        // Lockdown of main and back, as the test commanded it.
        let mut locked = [false, false];
        let mut verify_pending = false;
        for (delay, choice) in steps {
            now += delay;
            let input = match choice {
                0 => presented(1),
                1 => presented(9),
                2 => Input::CardRejected { card: None, reason: "garbage".to_string() },
                3 => Input::CardRemoved,
                4 => palm(&run, now),
                5 => Input::PalmRefused { reason: "blur".to_string() },
                6 => decision(Decision::Match { duress: false }),
                7 => decision(Decision::Match { duress: true }),
                8 => decision(Decision::NoMatch { tries_left: 2 }),
                9 => Input::VerifyFailed { reason: "pulled".to_string() },
                10 => {
                    locked[0] = !locked[0];
                    lockdown("main", locked[0])
                }
                11 => {
                    locked[1] = !locked[1];
                    lockdown("back", locked[1])
                }
                12 => remote_unlock("main"),
                13 => attack(),
                _ => remote_unlock("back"),
            };
            let was_locked = locked;
            let is_match = matches!(input, Input::CardDecision { decision: Decision::Match { .. }, .. });
            let is_remote = matches!(input, Input::RemoteUnlock { .. });
            let was_verifying = matches!(run.access.state(), State::Verifying { .. });
            let actions = run.at(now, input);
            if actions.contains(&Action::Verify) {
                verify_pending = true;
            }
            let opened = unlocks(&actions);
            prop_assert!(opened <= 1);
            for action in &actions {
                if let Action::Unlock { door, .. } = action {
                    let index = usize::from(door == "back");
                    prop_assert!(!was_locked[index], "{} opened in lockdown", door);
                }
            }
            if opened == 1 {
                prop_assert!(is_remote || (is_match && was_verifying && verify_pending),
                    "an unlock needs a match answering a verification, or a remote unlock");
            }
            if is_match && was_verifying {
                verify_pending = false;
            }
            if !matches!(run.access.state(), State::Verifying { .. }) {
                verify_pending = false;
            }
        }
    }
}

fn hand(present: bool) -> Input {
    Input::HandPresence { present }
}

#[test]
fn a_palm_left_on_the_sensor_serves_one_decision_only() {
    let mut run = Run::new();
    run.at(0, hand(true));
    assert!(run.access.wants_palm(true));
    // Card first, then the palm: verified, granted, card taken away.
    run.at(10, presented(1));
    assert_eq!(run.at(40, palm(&run, 40)), [Action::Verify]);
    assert!(run.access.palm_spent());
    run.at(50, decision(Decision::Match { duress: false }));
    run.at(60, Input::CardRemoved);
    // The same hand is still there: the next person's card does not get it.
    assert!(!run.access.wants_palm(true));
    run.at(100, presented(2));
    assert!(matches!(run.access.state(), State::CardWaitingPalm { .. }));
    assert!(!run.access.wants_palm(true));
    // The hand leaves and a hand arrives: that presentation is taken.
    run.at(300, hand(false));
    assert!(run.access.wants_palm(true));
    run.at(400, hand(true));
    assert_eq!(run.at(450, palm(&run, 450)), [Action::Verify]);
}

#[test]
fn a_palm_that_left_before_its_card_came_leaves_the_next_presentation_free() {
    let mut run = Run::new();
    // Palm first; the hand is lifted before the card is tapped.
    run.at(0, hand(true));
    run.at(20, palm(&run, 20));
    run.at(30, hand(false));
    assert_eq!(run.at(500, presented(1)), [Action::Verify]);
    assert!(!run.access.palm_spent());
    run.at(520, decision(Decision::Match { duress: false }));
    run.at(600, Input::CardRemoved);
    assert!(run.access.wants_palm(true));
    // Without presence reports at all (a sensor that sends none), nothing is ever held back.
    let mut silent = Run::new();
    silent.at(0, presented(1));
    assert_eq!(silent.at(10, palm(&silent, 10)), [Action::Verify]);
    assert!(!silent.access.palm_spent());
}

#[test]
fn a_remote_unlock_carries_its_own_release_time_and_a_grant_the_doors() {
    let mut run = Run::new();
    let actions = run.at(
        0,
        Input::RemoteUnlock {
            door: "main".to_string(),
            unlock: Some(Duration::from_secs(60)),
        },
    );
    assert!(actions.contains(&Action::Unlock {
        door: "main".to_string(),
        unlock: Some(Duration::from_secs(60)),
    }));
    run.at(10, presented(1));
    run.at(20, palm(&run, 20));
    let actions = run.at(30, decision(Decision::Match { duress: false }));
    assert!(actions.contains(&Action::Unlock {
        door: "main".to_string(),
        unlock: None,
    }));
}

fn attack() -> Input {
    Input::PresentationAttack {
        detail: "liveness 0.02 (needs 0.50): water_absorption_940_850 = 1.00".to_string(),
    }
}

/// One row of the presentation attack table: where the machine stands when PAD refuses.
struct AttackRow {
    name: &'static str,
    setup: fn(&mut Run),
    /// The card the denial and the alarm name.
    card: Option<CardId>,
    /// Whether a probe held for a card is wiped.
    discards: bool,
    /// The state after.
    after: fn(&State) -> bool,
    /// Whether the object in front of the sensor must leave before the next presentation.
    spent: bool,
}

#[test]
fn a_presentation_attack_is_denied_and_alarmed_without_asking_the_card() {
    let rows = [
        AttackRow {
            name: "a card waits, the hand is reported present",
            setup: |run| {
                run.at(0, hand(true));
                run.at(10, presented(1));
            },
            card: Some(card(1)),
            discards: false,
            after: |state| matches!(state, State::CardWaitingPalm { .. }),
            spent: true,
        },
        AttackRow {
            name: "a card waits, the sensor reports no presence",
            setup: |run| {
                run.at(10, presented(1));
            },
            card: Some(card(1)),
            discards: false,
            after: |state| matches!(state, State::CardWaitingPalm { .. }),
            spent: false,
        },
        AttackRow {
            name: "palm first, nothing presented yet",
            setup: |run| {
                run.at(0, hand(true));
            },
            card: None,
            discards: false,
            after: |state| matches!(state, State::Idle),
            spent: true,
        },
        AttackRow {
            name: "a live palm waits for its card",
            setup: |run| {
                let palm = palm(run, 5);
                run.at(5, palm);
            },
            card: None,
            discards: true,
            after: |state| matches!(state, State::Idle),
            spent: false,
        },
        AttackRow {
            name: "a card is verifying another palm",
            setup: |run| {
                run.at(10, presented(1));
                let palm = palm(run, 20);
                run.at(20, palm);
            },
            card: None,
            discards: false,
            after: |state| matches!(state, State::Verifying { .. }),
            spent: false,
        },
        AttackRow {
            name: "decided, the card still on the reader",
            setup: |run| {
                run.at(10, presented(1));
                let palm = palm(run, 20);
                run.at(20, palm);
                run.at(30, decision(Decision::NoMatch { tries_left: 4 }));
            },
            card: None,
            discards: false,
            after: |state| matches!(state, State::AwaitRemoval),
            spent: false,
        },
    ];
    for row in rows {
        let mut run = Run::new();
        (row.setup)(&mut run);
        let actions = run.at(100, attack());
        let name = row.name;
        assert!(
            !actions.contains(&Action::Verify),
            "{name}: the card was asked"
        );
        assert_eq!(unlocks(&actions), 0, "{name}");
        assert!(
            actions.contains(&Action::Deny {
                door: "main".to_string()
            }),
            "{name}: no denial shown at the door: {actions:?}"
        );
        assert_eq!(
            actions.contains(&Action::DiscardProbe),
            row.discards,
            "{name}: {actions:?}"
        );
        assert_eq!(
            kinds(&actions),
            ["access.denied", "alarm.presentation_attack"],
            "{name}"
        );
        for event in events(&actions) {
            assert_eq!(event.reason, Some(Reason::PRESENTATION_ATTACK), "{name}");
            assert_eq!(event.card_id, row.card, "{name}");
            assert_eq!(event.door.as_deref(), Some("main"), "{name}");
            assert!(
                event
                    .detail
                    .as_deref()
                    .unwrap_or("")
                    .contains("water_absorption"),
                "{name}: the cues are in the detail: {event:?}"
            );
        }
        assert!(
            (row.after)(run.access.state()),
            "{name}: {:?}",
            run.access.state()
        );
        assert_eq!(run.access.palm_spent(), row.spent, "{name}");
    }
}

#[test]
fn after_a_refused_presentation_a_live_hand_can_still_be_presented_within_the_window() {
    let mut run = Run::new();
    run.at(0, hand(true));
    run.at(10, presented(1));
    run.at(100, attack());
    // The refused object is still in front of the sensor: nothing is taken.
    assert!(!run.access.wants_palm(false));
    run.at(300, hand(false));
    assert!(run.access.wants_palm(false));
    run.at(400, hand(true));
    assert_eq!(run.at(500, palm(&run, 500)), [Action::Verify]);
    let actions = run.at(510, decision(Decision::Match { duress: false }));
    assert_eq!(kinds(&actions), ["access.granted"]);

    // Without a live hand, the window ends as for any missing palm, and says what was refused.
    let mut run = Run::new();
    run.at(10, presented(1));
    run.at(100, attack());
    let actions = run.tick(10 + WINDOW.as_millis() as u64);
    assert_eq!(kinds(&actions), ["access.denied"]);
    assert_eq!(
        reason(&actions).as_deref(),
        Some(
            "no_palm: no usable palm within the presentation window \
             (last capture: presentation attack refused)"
        )
    );
}
