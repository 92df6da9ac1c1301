//! Meal entitlements (issue 18), in process through the host client: REDEEM MEAL after a palm
//! match, allowances per period, receipts checked against the issuer, GET RECEIPT after a lost
//! answer, old cards.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Issuer, TestTransport, capture, enrolled_card, factory_transport, template};
use palmgate_card::host::{
    Card, CardError, MealOutcome, MealReceipt, MealRefusal, MealRequest, VerifyOutcome,
};
use palmgate_card::protocol::SlotKind;

const LUNCH: u32 = 20_428 * 16 + 1;
const DINNER: u32 = LUNCH + 1;
const NOON: u64 = 1_765_022_400;

fn request(period: u32, allowance: u8, gate_time: u64) -> MealRequest {
    MealRequest {
        period,
        allowance,
        gate_time,
    }
}

fn card_of(seed: u64) -> (Issuer, Card<TestTransport>) {
    let issuer = Issuer::new();
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(seed))],
        None,
    );
    (issuer, card)
}

/// Verifies the palm of `seed` in a new session and asks for a meal.
fn meal(
    card: &mut Card<TestTransport>,
    issuer: &Issuer,
    seed: u64,
    request: &MealRequest,
) -> Result<MealOutcome, CardError> {
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(seed, 20)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
    session.redeem_meal(request)
}

fn served(outcome: MealOutcome) -> MealReceipt {
    match outcome {
        MealOutcome::Served(receipt) => receipt,
        other => panic!("expected a meal, got {other:?}"),
    }
}

#[test]
fn one_lunch_a_second_refused_the_next_period_served() {
    let (issuer, mut card) = card_of(1);
    let issuers = [issuer.key.public_key()];
    let first = served(meal(&mut card, &issuer, 1, &request(LUNCH, 1, NOON)).unwrap());
    let fields = *first.verify(&issuers).unwrap().fields();
    assert_eq!(
        (
            fields.card_id,
            fields.period,
            fields.count,
            fields.allowance,
            fields.gate_time,
            fields.receipt_counter
        ),
        (card.identity().card_id, LUNCH, 1, 1, NOON, 1)
    );
    assert_eq!(
        meal(&mut card, &issuer, 1, &request(LUNCH, 1, NOON + 60)).unwrap(),
        MealOutcome::AllowanceUsed {
            count: 1,
            allowance: 1
        }
    );
    let dinner = served(meal(&mut card, &issuer, 1, &request(DINNER, 1, NOON + 6 * 3600)).unwrap());
    let fields = *dinner.verify(&issuers).unwrap().fields();
    assert_eq!(
        (fields.period, fields.count, fields.receipt_counter),
        (DINNER, 1, 2)
    );
}

#[test]
fn an_allowance_of_two_serves_two_then_refuses() {
    let (issuer, mut card) = card_of(2);
    let issuers = [issuer.key.public_key()];
    for (count, counter) in [(1, 1), (2, 2)] {
        let receipt = served(meal(&mut card, &issuer, 2, &request(LUNCH, 2, NOON)).unwrap());
        let fields = *receipt.verify(&issuers).unwrap().fields();
        assert_eq!((fields.count, fields.receipt_counter), (count, counter));
    }
    assert_eq!(
        meal(&mut card, &issuer, 2, &request(LUNCH, 2, NOON)).unwrap(),
        MealOutcome::AllowanceUsed {
            count: 2,
            allowance: 2
        }
    );
    let entitlement = card.into_transport().applet().meal_entitlement().unwrap();
    assert_eq!(
        (
            entitlement.period,
            entitlement.count,
            entitlement.receipt_counter
        ),
        (LUNCH, 2, 2)
    );
}

#[test]
fn an_older_period_is_refused_and_changes_nothing() {
    let (issuer, mut card) = card_of(3);
    served(meal(&mut card, &issuer, 3, &request(DINNER, 1, NOON)).unwrap());
    let before = card.transport_mut().applet().state_bytes();
    assert!(matches!(
        meal(&mut card, &issuer, 3, &request(LUNCH, 1, NOON)),
        Err(CardError::MealRefused(MealRefusal::PeriodBehindCard {
            card_period: DINNER
        }))
    ));
    assert_eq!(*card.transport_mut().applet().state_bytes(), *before);
}
