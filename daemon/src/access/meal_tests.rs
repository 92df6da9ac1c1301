//! The access machine at a canteen gate, with a real site policy and injected time: the meal
//! step's decisions, table-driven.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::event::{CardId, EventKind, NewEvent, Outcome, Reason, Timestamp, days_from_civil};

const POLICY: &str = r#"
version = 1
default_groups = ["staff"]

[schedule.always]
mon = ["00:00-24:00"]

[group.staff]
doors = ["main"]
schedule = "always"

[group.kitchen]
[group.visitors]

[card.02020202020202020202020202020202]
groups = ["kitchen"]

[card.03030303030303030303030303030303]
groups = ["visitors"]

[canteen]
doors = ["line-1"]

[canteen.period.lunch]
mon = "11:30-14:00"

[canteen.allowance.staff]
lunch = 1

[canteen.allowance.kitchen]
lunch = 2
"#;

/// Monday 7 December 2026 (UTC, the policy's offset is 0) at hh:mm.
fn monday(hh: i64, mm: i64) -> Timestamp {
    Timestamp::from_unix_ms(days_from_civil(2026, 12, 7) * 86_400_000 + (hh * 60 + mm) * 60_000)
}

fn lunch_period() -> u32 {
    u32::try_from(days_from_civil(2026, 12, 7)).expect("after 1970") * 16
}

fn card(byte: u8) -> CardId {
    CardId::new(&[byte; 16]).expect("card id")
}

struct Canteen {
    access: Access<SitePolicy>,
    start: Instant,
}

impl Canteen {
    fn at_door(door: &str) -> Self {
        let doors: BTreeSet<String> = ["line-1", "main"].into_iter().map(String::from).collect();
        let rules = PolicyRules::parse(POLICY, Path::new("policy.toml"), &doors).expect("policy");
        let config = AccessConfig {
            door: door.to_string(),
            presentation_window: Duration::from_secs(10),
            verify_timeout: Duration::from_millis(1500),
        };
        Self {
            access: Access::new(config, SitePolicy::new(rules)),
            start: Instant::now(),
        }
    }

    fn new() -> Self {
        Self::at_door("line-1")
    }

    fn at(&mut self, ms: u64, time: Timestamp, input: Input) -> Vec<Action> {
        self.access
            .handle(self.start + Duration::from_millis(ms), time, input)
    }

    /// Card, then palm, at `time`: the actions of the palm (the verification asked).
    fn present(&mut self, byte: u8, time: Timestamp) -> Vec<Action> {
        let read = Duration::from_millis(5);
        let card = card(byte);
        let first = self.at(0, time, Input::CardPresented { card, read });
        if !first.is_empty() {
            return first;
        }
        let received = self.start + Duration::from_millis(50);
        let extract = Duration::from_millis(10);
        self.at(50, time, Input::PalmReady { received, extract })
    }

    fn answer(&mut self, time: Timestamp, answer: MealAnswer) -> Vec<Action> {
        let elapsed = Duration::from_millis(30);
        let duress = false;
        self.at(
            100,
            time,
            Input::MealDecision {
                duress,
                answer,
                elapsed,
            },
        )
    }

    fn remove(&mut self, time: Timestamp) {
        self.at(200, time, Input::CardRemoved);
    }
}

fn request(allowance: u8, time: Timestamp) -> MealRequest {
    MealRequest {
        period: lunch_period(),
        allowance,
        gate_time: u64::try_from(time.unix_ms() / 1000).expect("after 1970"),
    }
}

fn receipt(count: u8, allowance: u8, gate_time: u64) -> MealReceiptInfo {
    MealReceiptInfo {
        period: lunch_period(),
        count,
        allowance,
        gate_time,
        receipt_counter: 7,
        receipt_hex: "abcd".into(),
    }
}

fn published(actions: &[Action]) -> Vec<&NewEvent> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Publish(event) => Some(event),
            _ => None,
        })
        .collect()
}

fn unlocks(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|action| matches!(action, Action::Unlock { .. }))
        .count()
}

#[test]
fn a_canteen_gate_asks_the_card_for_the_meal_of_the_period_with_the_groups_allowance() {
    let noon = monday(12, 0);
    for (byte, allowance) in [(1, 1), (2, 2)] {
        let mut canteen = Canteen::new();
        assert_eq!(
            canteen.present(byte, noon),
            [Action::VerifyForMeal {
                meal: request(allowance, noon),
                recover: None
            }],
            "card {byte}"
        );
    }
    // Any other door verifies as before.
    let mut door = Canteen::at_door("main");
    assert_eq!(door.present(1, noon), [Action::Verify]);
}

#[test]
fn meal_answers_table() {
    let noon = monday(12, 0);
    let gate_time = request(1, noon).gate_time;
    // (answer, unlocks, event kind, result, reason, detail contains, meal count/allowance)
    let cases = [
        (
            MealAnswer::Served(receipt(1, 1, gate_time)),
            1,
            EventKind::MealServed,
            Outcome::Granted,
            None,
            "",
            Some((1, 1)),
        ),
        (
            MealAnswer::AllowanceUsed {
                count: 1,
                allowance: 1,
            },
            0,
            EventKind::AccessDenied,
            Outcome::Denied,
            Some(Reason::MEAL_ALLOWANCE_USED),
            "lunch: 1 of 1 meal(s) already served",
            Some((1, 1)),
        ),
        (
            MealAnswer::Unsupported,
            0,
            EventKind::AccessDenied,
            Outcome::Denied,
            Some(Reason::MEAL_UNSUPPORTED),
            "cannot count meals",
            None,
        ),
        (
            MealAnswer::Refused {
                reason: "the card already served period 9, later than the one asked for".into(),
            },
            0,
            EventKind::AccessDenied,
            Outcome::Denied,
            Some(Reason::MEAL_REFUSED),
            "later than the one asked for",
            None,
        ),
        (
            MealAnswer::NotConfirmed {
                reason: "card pulled".into(),
            },
            0,
            EventKind::AccessDenied,
            Outcome::Denied,
            Some(Reason::MEAL_NOT_CONFIRMED),
            "card pulled",
            None,
        ),
    ];
    for (answer, opened, kind, result, reason, detail, counts) in cases {
        let mut canteen = Canteen::new();
        canteen.present(1, noon);
        let actions = canteen.answer(noon, answer.clone());
        assert_eq!(unlocks(&actions), opened, "{answer:?}");
        let denied = actions
            .iter()
            .any(|action| matches!(action, Action::Deny { .. }));
        assert_eq!(denied, opened == 0, "{answer:?}: feedback");
        let events = published(&actions);
        assert_eq!(events.len(), 1, "{answer:?}: {events:?}");
        let event = events[0];
        assert_eq!(event.kind, kind, "{answer:?}");
        assert_eq!(event.result, Some(result), "{answer:?}");
        assert_eq!(event.reason, reason, "{answer:?}");
        assert!(
            event.detail.as_deref().unwrap_or("").contains(detail),
            "{answer:?}: {:?}",
            event.detail
        );
        assert_eq!(event.card_id, Some(card(1)));
        assert_eq!(
            event.meal.as_ref().map(|meal| (meal.count, meal.allowance)),
            counts,
            "{answer:?}"
        );
        if let Some(meal) = &event.meal {
            assert_eq!(meal.period, lunch_period());
            assert_eq!(meal.period_name.as_deref(), Some("lunch"));
            assert_eq!(meal.group.as_deref(), Some("staff"));
        }
        assert_eq!(*canteen.access.state(), State::AwaitRemoval);
    }
}

#[test]
fn a_served_meal_carries_its_receipt() {
    let noon = monday(12, 0);
    let mut canteen = Canteen::new();
    canteen.present(1, noon);
    let gate_time = request(1, noon).gate_time;
    let actions = canteen.answer(noon, MealAnswer::Served(receipt(1, 1, gate_time)));
    let meal = published(&actions)[0].meal.clone().expect("meal");
    assert_eq!(meal.receipt.as_deref(), Some("abcd"));
    assert_eq!(meal.receipt_counter, Some(7));
    assert_eq!(meal.gate_time, Some(gate_time));
    assert!(!published(&actions)[0].latencies.is_empty());
}

#[test]
fn refusals_before_capture_at_a_canteen_gate() {
    let cases = [
        (
            1,
            monday(15, 0),
            "outside_meal_period: no meal is served at this time",
        ),
        (
            3,
            monday(12, 0),
            "not_permitted: no lunch allowance for this card",
        ),
    ];
    for (byte, time, expected) in cases {
        let mut canteen = Canteen::new();
        let actions = canteen.present(byte, time);
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::Verify | Action::VerifyForMeal { .. })),
            "{actions:?}"
        );
        let event = published(&actions)[0];
        let got = format!(
            "{}: {}",
            event.reason.as_ref().map_or("-", Reason::as_str),
            event.detail.as_deref().unwrap_or("-")
        );
        assert_eq!(got, expected);
    }
}

#[test]
fn a_match_without_the_cards_meal_answer_never_opens_a_canteen_gate() {
    let noon = monday(12, 0);
    let mut canteen = Canteen::new();
    canteen.present(1, noon);
    let decision = Decision::Match { duress: false };
    let elapsed = Duration::from_millis(3);
    let actions = canteen.at(100, noon, Input::CardDecision { decision, elapsed });
    assert_eq!(unlocks(&actions), 0);
    assert_eq!(
        published(&actions)[0].reason,
        Some(Reason::MEAL_NOT_CONFIRMED)
    );
    // A no-match is a no-match, as at any door.
    let mut canteen = Canteen::new();
    canteen.present(1, noon);
    let decision = Decision::NoMatch { tries_left: 2 };
    let actions = canteen.at(100, noon, Input::CardDecision { decision, elapsed });
    assert_eq!(published(&actions)[0].reason, Some(Reason::NO_MATCH));
}

#[test]
fn the_receipt_of_a_meal_whose_answer_was_lost_is_read_back_at_the_next_presentation() {
    let noon = monday(12, 0);
    let mut canteen = Canteen::new();
    canteen.present(1, noon);
    let lost = MealAnswer::NotConfirmed {
        reason: "card pulled".into(),
    };
    canteen.answer(noon, lost);
    canteen.remove(noon);
    // Another card is not concerned.
    let later = monday(12, 1);
    assert_eq!(
        canteen.present(2, later),
        [Action::VerifyForMeal {
            meal: request(2, later),
            recover: None
        }]
    );
    canteen.remove(later);
    // The card comes back: the gate asks for the lost meal's receipt in the same session.
    assert_eq!(
        canteen.present(1, later),
        [Action::VerifyForMeal {
            meal: request(1, later),
            recover: Some(request(1, noon)),
        }]
    );
    let kept = receipt(1, 1, request(1, noon).gate_time);
    let actions = canteen.at(
        80,
        later,
        Input::MealRecovered {
            card: card(1),
            receipt: kept,
        },
    );
    assert_eq!(unlocks(&actions), 0, "a recovered receipt opens nothing");
    let event = published(&actions)[0];
    assert_eq!(event.kind, EventKind::MealServed);
    assert_eq!(event.result, Some(Outcome::Info));
    assert_eq!(event.reason, Some(Reason::RECOVERED));
    let meal = event.meal.as_ref().expect("meal");
    assert_eq!(meal.period_name.as_deref(), Some("lunch"));
    assert_eq!(meal.receipt.as_deref(), Some("abcd"));
    // The card counted the lost meal: this one is over the allowance.
    let used = MealAnswer::AllowanceUsed {
        count: 1,
        allowance: 1,
    };
    let actions = canteen.answer(later, used);
    assert_eq!(
        published(&actions)[0].reason,
        Some(Reason::MEAL_ALLOWANCE_USED)
    );
    canteen.remove(later);
    // Asked once: the next presentation asks for nothing more.
    assert_eq!(
        canteen.present(1, later),
        [Action::VerifyForMeal {
            meal: request(1, later),
            recover: None
        }]
    );
}

#[test]
fn a_meal_the_card_counted_after_the_gate_gave_up_is_still_published() {
    let noon = monday(12, 0);
    let mut canteen = Canteen::new();
    canteen.present(1, noon);
    // The verification times out (the machine's deadline), then the card answers.
    let timed_out = canteen
        .access
        .tick(canteen.start + Duration::from_secs(5), noon);
    assert_eq!(published(&timed_out)[0].reason, Some(Reason::CARD_TIMEOUT));
    let gate_time = request(1, noon).gate_time;
    let actions = canteen.answer(noon, MealAnswer::Served(receipt(1, 1, gate_time)));
    assert_eq!(unlocks(&actions), 0);
    let event = published(&actions)[0];
    assert_eq!(event.kind, EventKind::MealServed);
    assert_eq!(event.reason, Some(Reason::TOO_LATE));
    assert_eq!(event.card_id, Some(card(1)));
    assert_eq!(
        event.meal.as_ref().and_then(|meal| meal.receipt.as_deref()),
        Some("abcd")
    );
    // A lost answer after a timeout is read back at the next presentation.
    let mut canteen = Canteen::new();
    canteen.present(1, noon);
    canteen.at(6000, noon, Input::CardRemoved);
    let lost = MealAnswer::NotConfirmed {
        reason: "card pulled".into(),
    };
    assert!(canteen.answer(noon, lost).is_empty());
    let later = monday(12, 5);
    assert_eq!(
        canteen.present(1, later),
        [Action::VerifyForMeal {
            meal: request(1, later),
            recover: Some(request(1, noon)),
        }]
    );
}
