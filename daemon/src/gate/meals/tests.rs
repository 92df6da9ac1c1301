use palmgate_card::applet::Applet;
use palmgate_card::host::issuer::IssuerKey;
use palmgate_card::host::platform::{MemoryStorage, SystemClock, system_rng};
use palmgate_card::host::{Card, InProcessTransport, TransportError, VerifyOutcome};
use palmgate_card::protocol::{SlotKind, ins, permission};
use palmgate_matcher::template::{CELLS, Template};

use super::*;
use crate::event::{MealRecord, Reason, Timestamp};

/// The applet in this process; the answer to REDEEM MEAL is lost once when asked (the card
/// stored the meal, then was pulled).
struct Pullable<T> {
    inner: T,
    lose_meal_answer: bool,
    /// GET RECEIPT commands sent (the instruction byte travels in clear under secure messaging).
    receipts_read: usize,
}

impl<T: CardTransport> CardTransport for Pullable<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if command.get(1) == Some(&ins::GET_RECEIPT) {
            self.receipts_read += 1;
        }
        let answer = self.inner.transmit(command)?;
        if self.lose_meal_answer && command.get(1) == Some(&ins::REDEEM_MEAL) {
            self.lose_meal_answer = false;
            return Err(TransportError::CardRemoved);
        }
        Ok(answer)
    }
}

fn palm() -> Template {
    let orientations: [u8; CELLS] = std::array::from_fn(|i| (i * 7 % 6) as u8);
    Template::from_cells(&orientations, &[true; CELLS]).expect("template")
}

/// A card enrolled with [`palm`].
fn enrolled(issuer: &IssuerKey) -> Pullable<impl CardTransport> {
    let mut transport = Pullable {
        inner: InProcessTransport::new(Applet::factory(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
        )),
        lose_meal_answer: false,
        receipts_read: 0,
    };
    let mut card = Card::open(&mut transport).expect("select");
    card.personalise(issuer).expect("personalise");
    let verified = card
        .verify_certificate(&[issuer.public_key()])
        .expect("certificate");
    let session = card.open_session(&verified).expect("session");
    let mut enrolment = session
        .prove_authority(&issuer.create_authority(permission::ALL))
        .expect("authority");
    enrolment
        .enrol(0, SlotKind::Normal, &palm())
        .expect("enrol");
    drop(enrolment);
    transport
}

/// One presentation: a session, the palm, and on a match the meal step.
fn present(
    transport: &mut Pullable<impl CardTransport>,
    issuer: &IssuerKey,
    step: &MealStep,
) -> (MealStepResult, bool) {
    let mut card = Card::open(transport).expect("select");
    let verified = card
        .verify_certificate(&[issuer.public_key()])
        .expect("certificate");
    let mut session = card.open_session(&verified).expect("session");
    let outcome = session.verify_palm(&palm()).expect("verify");
    assert!(
        matches!(outcome, VerifyOutcome::Match { .. }),
        "{outcome:?}"
    );
    redeem(&mut session, step)
}

/// A meal of `period`, one allowed, at `gate_time`.
fn meal(period: u32, gate_time: u64) -> MealRequest {
    MealRequest {
        period,
        allowance: 1,
        gate_time,
    }
}

/// A lunch of one period at `gate_time`.
fn lunch(gate_time: u64) -> MealRequest {
    meal(332_704, gate_time)
}

fn step(meal: MealRequest, recover: Option<MealRequest>) -> MealStep {
    MealStep { meal, recover }
}

#[test]
fn the_meal_step_on_an_in_process_card_serves_refuses_and_recovers_a_lost_answer() {
    let issuer = IssuerKey::generate();
    let mut card = enrolled(&issuer);

    // The answer is lost after the card counted the meal: not confirmed, connection dropped.
    card.lose_meal_answer = true;
    let (lost, healthy) = present(&mut card, &issuer, &step(lunch(100), None));
    assert!(!healthy);
    assert!(
        matches!(&lost.answer, MealAnswer::NotConfirmed { reason } if reason.contains("lost")),
        "{lost:?}"
    );

    // Next presentation: the kept receipt is that meal's, and the period is used up.
    let (next, healthy) = present(&mut card, &issuer, &step(lunch(200), Some(lunch(100))));
    assert!(healthy);
    assert_eq!(next.lost_meal, Some(LostMeal::Counted));
    let recovered = next.recovered.expect("the lost meal's receipt");
    assert_eq!(
        (recovered.period, recovered.count, recovered.gate_time),
        (332_704, 1, 100)
    );
    assert_eq!(recovered.receipt_counter, 1);
    let receipt = MealReceipt::from_bytes(&hex::decode(&recovered.receipt_hex).expect("hex"))
        .expect("receipt");
    receipt.verify(&[issuer.public_key()]).expect("card-signed");
    assert_eq!(
        next.answer,
        MealAnswer::AllowanceUsed {
            count: 1,
            allowance: 1
        }
    );

    // Another try in the period, at a gate that lost nothing: refused, and the receipt the
    // card keeps (this period's) is read back so that it is in the records whatever
    // happened to its answer.
    let (again, _) = present(&mut card, &issuer, &step(lunch(250), None));
    assert_eq!(again.lost_meal, None, "no meal was lost at this gate");
    assert!(matches!(again.answer, MealAnswer::AllowanceUsed { .. }));
    assert_eq!(again.recovered.map(|kept| kept.receipt_counter), Some(1));

    // A gate whose clock is behind: the card refuses and changes nothing.
    let earlier = meal(332_703, 50);
    let (behind, healthy) = present(&mut card, &issuer, &step(earlier, None));
    assert!(healthy);
    assert!(
        matches!(&behind.answer, MealAnswer::Refused { reason } if reason.contains("332704")),
        "{behind:?}"
    );

    // A receipt that is not the lost meal's is not taken for it; the next period serves.
    let dinner = meal(332_705, 300);
    let (served, _) = present(&mut card, &issuer, &step(dinner, Some(lunch(999))));
    assert_eq!(served.recovered, None);
    assert_eq!(
        served.lost_meal,
        Some(LostMeal::NotCounted),
        "the kept receipt (lunch at 100) is older than the lost one (999)"
    );
    let MealAnswer::Served(receipt) = served.answer else {
        panic!("{served:?}");
    };
    assert_eq!(
        (receipt.period, receipt.count, receipt.receipt_counter),
        (332_705, 1, 2)
    );

    // A lunch lost here, then the dinner served (at another gate): the card keeps the dinner's
    // receipt, so the lunch's cannot be read back any more; said, not taken for it.
    let breakfast = meal(332_706, 400);
    let (replaced, _) = present(&mut card, &issuer, &step(breakfast, Some(lunch(100))));
    assert_eq!(replaced.recovered, None);
    assert_eq!(
        replaced.lost_meal,
        Some(LostMeal::Replaced { kept_counter: 2 })
    );
}

#[test]
fn a_receipt_read_back_for_a_lost_meal_is_not_read_again_when_the_allowance_is_used() {
    let issuer = IssuerKey::generate();
    let mut card = enrolled(&issuer);
    let (first, _) = present(&mut card, &issuer, &step(lunch(100), None));
    assert!(matches!(first.answer, MealAnswer::Served(_)), "{first:?}");

    // This gate believes a later lunch's answer was lost; the card keeps the one at 100: the
    // lost one was never counted, the allowance is used, and the kept receipt (this period's)
    // is published — from the one read, not from a second GET RECEIPT.
    card.receipts_read = 0;
    let (next, healthy) = present(&mut card, &issuer, &step(lunch(1000), Some(lunch(999))));
    assert!(healthy);
    assert_eq!(next.lost_meal, Some(LostMeal::NotCounted));
    assert!(
        matches!(next.answer, MealAnswer::AllowanceUsed { .. }),
        "{next:?}"
    );
    let kept = next.recovered.expect("this period's kept receipt");
    assert_eq!((kept.gate_time, kept.receipt_counter), (100, 1));
    assert_eq!(card.receipts_read, 1, "the kept receipt is read once");
}

fn served(period: u32, group: &str, result: Outcome) -> NewEvent {
    NewEvent::new(EventKind::MealServed, Timestamp::from_unix_ms(1000))
        .result(result)
        .meal(MealRecord {
            period,
            period_name: Some("lunch".into()),
            group: Some(group.into()),
            count: 1,
            allowance: 1,
            receipt: Some("ab".into()),
            receipt_counter: Some(1),
            gate_time: Some(1),
        })
}

#[test]
fn counts_per_period_and_group_restart_with_a_new_period() {
    let mut tally = MealTally::new(["guests".into(), "kitchen".into(), "staff".into()], None);
    assert_eq!(tally.counts(), None);
    let cases = [
        // (event, counted, served, staff, kitchen)
        (served(32, "staff", Outcome::Granted), true, 1, 1, 0),
        (served(32, "kitchen", Outcome::Granted), true, 2, 1, 1),
        (served(32, "staff", Outcome::Granted), true, 3, 2, 1),
        // Not served through this gate: recovered, too late.
        (
            served(32, "staff", Outcome::Info).reason(Reason::RECOVERED),
            false,
            3,
            2,
            1,
        ),
        // An earlier period (a clock set back) is not counted.
        (served(31, "staff", Outcome::Granted), false, 3, 2, 1),
        // The next period starts again.
        (served(33, "kitchen", Outcome::Granted), true, 1, 0, 1),
        (
            NewEvent::new(EventKind::AccessGranted, Timestamp::from_unix_ms(0)),
            false,
            1,
            0,
            1,
        ),
    ];
    for (event, counted, total, staff, kitchen) in cases {
        assert_eq!(tally.record(&event).is_some(), counted, "{event:?}");
        let counts = tally.counts().expect("counts");
        assert_eq!(
            (
                counts.served,
                counts.groups["staff"],
                counts.groups["kitchen"]
            ),
            (total, staff, kitchen),
            "{event:?}"
        );
        assert_eq!(counts.groups["guests"], 0, "every group is listed");
    }
}

#[test]
fn counts_survive_a_restart_and_a_damaged_file_counts_from_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut tally = MealTally::new(["staff".into()], None);
    tally.record(&served(32, "staff", Outcome::Granted));
    tally.save(dir.path()).expect("save");
    let mut again = MealTally::new(["staff".into(), "new".into()], MealTally::load(dir.path()));
    assert_eq!(again.counts().map(|c| c.served), Some(1));
    assert_eq!(again.counts().map(|c| c.groups["new"]), Some(0));
    again.record(&served(32, "staff", Outcome::Granted));
    assert_eq!(again.counts().map(|c| c.groups["staff"]), Some(2));
    std::fs::write(dir.path().join(TALLY_FILE), b"{not json").expect("write");
    assert_eq!(MealTally::load(dir.path()), None);
    assert_eq!(MealTally::load(&dir.path().join("absent")), None);
}
