//! Attacks on meal entitlements (issue 18): no count without a palm match or without a session,
//! no replayed REDEEM MEAL, counters that never go back (older periods, failed and torn writes),
//! forged, altered, cross-kind and replayed receipts refused.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{Issuer, Tamper, TestTransport, capture, enrolled_card, factory_transport, template};
use palmgate_card::applet::{Applet, MealEntitlement};
use palmgate_card::host::issuer::IssuerKey;
use palmgate_card::host::platform::{MemoryStorage, SystemClock, system_rng};
use palmgate_card::host::{
    Card, CardError, CardTransport, InProcessTransport, MealOutcome, MealReceipt, MealReceiptError,
    MealReceiptLedger, MealRefusal, MealRequest, ReceiptBundle, ReplayError, SecureSession,
    VerifyOutcome,
};
use palmgate_card::protocol::cert::{CertError, encode_public_key};
use palmgate_card::protocol::meal::{
    MEAL_RECEIPT_SIGNED_LEN, MealReceiptFields, SignedMealReceipt,
};
use palmgate_card::protocol::receipt::{DeletionReceipt, ReceiptFields};
use palmgate_card::protocol::{SlotKind, StatusWord, ins};

const PERIOD: u32 = 20_428 * 16 + 1;
const NOON: u64 = 1_765_022_400;

fn lunch(allowance: u8) -> MealRequest {
    MealRequest {
        period: PERIOD,
        allowance,
        gate_time: NOON,
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

fn entitlement<T>(
    card: &mut Card<InProcessTransport<MemoryStorage, T, SystemClock>>,
) -> Option<MealEntitlement>
where
    T: rand_core::CryptoRng,
{
    card.transport_mut().applet().meal_entitlement()
}

/// The session's VERIFY PALM with a fresh capture of hand `seed` is a match.
fn assert_palm_matches<T: CardTransport>(session: &mut SecureSession<'_, T>, seed: u64) {
    assert!(matches!(
        session.verify_palm(&capture(seed, 10)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
}

fn is_no_match_refusal(result: &Result<MealOutcome, CardError>) -> bool {
    matches!(
        result,
        Err(CardError::MealRefused(MealRefusal::NoPalmMatch))
    )
}

#[test]
fn no_meal_without_a_palm_match_in_the_session() {
    let (issuer, mut card) = card_of(1);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    {
        // No VERIFY PALM at all.
        let mut session = card.open_session(&verified).unwrap();
        assert!(is_no_match_refusal(&session.redeem_meal(&lunch(1))));
        // The refusal was authenticated: the session goes on.
        // A palm that does not match.
        assert!(matches!(
            session.verify_palm(&template(2)).unwrap(),
            VerifyOutcome::NoMatch { .. }
        ));
        assert!(is_no_match_refusal(&session.redeem_meal(&lunch(1))));
        // A match followed by a non-match: only the last decision counts.
        assert_palm_matches(&mut session, 1);
        assert!(matches!(
            session.verify_palm(&template(3)).unwrap(),
            VerifyOutcome::NoMatch { .. }
        ));
        assert!(is_no_match_refusal(&session.redeem_meal(&lunch(1))));
    }
    {
        // A match in an earlier session does not carry over.
        let mut session = card.open_session(&verified).unwrap();
        assert_palm_matches(&mut session, 1);
    }
    let mut session = card.open_session(&verified).unwrap();
    assert!(is_no_match_refusal(&session.redeem_meal(&lunch(1))));
    drop(session);
    assert_eq!(entitlement(&mut card), None, "nothing was counted");
}

#[test]
fn one_palm_match_serves_at_most_one_meal() {
    let (issuer, mut card) = card_of(4);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 4);
    assert!(matches!(
        session.redeem_meal(&lunch(3)).unwrap(),
        MealOutcome::Served(_)
    ));
    assert!(is_no_match_refusal(&session.redeem_meal(&lunch(3))));
    // A refusal does not consume the match: allowance used, then a newer period served.
    assert_palm_matches(&mut session, 4);
    assert_eq!(
        session.redeem_meal(&lunch(1)).unwrap(),
        MealOutcome::AllowanceUsed {
            count: 1,
            allowance: 1
        }
    );
    let next = MealRequest {
        period: PERIOD + 1,
        ..lunch(1)
    };
    assert!(matches!(
        session.redeem_meal(&next).unwrap(),
        MealOutcome::Served(_)
    ));
    drop(session);
    assert_eq!(
        entitlement(&mut card),
        Some(MealEntitlement {
            period: PERIOD + 1,
            count: 1,
            receipt_counter: 2
        })
    );
}

/// REDEEM MEAL in the clear, without a session, or with a session that ended: `6982`, in the
/// clear, nothing counted.
#[test]
fn no_meal_without_a_session() {
    let (issuer, card) = card_of(5);
    let mut transport = card.into_transport();
    let select = [
        &[0x00, 0xA4, 0x04, 0x00, 10][..],
        &palmgate_card::protocol::AID,
        &[0x00],
    ]
    .concat();
    transport.transmit(&select).unwrap();
    // Request + a made-up tag, as if a session were open.
    let mut apdu = vec![0x80, ins::REDEEM_MEAL, 0, 0, 13 + 16];
    apdu.extend_from_slice(&lunch(1).encode());
    apdu.extend_from_slice(&[0u8; 16]);
    apdu.push(0);
    assert_eq!(transport.transmit(&apdu).unwrap(), [0x69, 0x82]);
    // Chained, too.
    let mut first = apdu[..5 + 10].to_vec();
    first[0] = 0x90;
    first[4] = 10;
    assert_eq!(transport.transmit(&first).unwrap(), [0x90, 0x00]);
    let mut last = vec![0x80, ins::REDEEM_MEAL, 0, 0, 19];
    last.extend_from_slice(&apdu[15..15 + 19]);
    assert_eq!(transport.transmit(&last).unwrap(), [0x69, 0x82]);

    // A session that SELECT ended, after a match.
    let mut card = Card::open(transport).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 5);
    session.card().transport_mut().transmit(&select).unwrap();
    assert!(matches!(
        session.redeem_meal(&lunch(1)),
        Err(CardError::Authentication)
    ));
    drop(session);
    assert_eq!(entitlement(&mut card), None);
}

/// A recorded REDEEM MEAL command sent again, in its session or in a later one after a new match,
/// does not authenticate: `6988`, the session is closed, nothing counted.
#[test]
fn a_recorded_redeem_meal_cannot_be_replayed() {
    let (issuer, card) = card_of(6);
    let recorded: Rc<RefCell<Vec<u8>>> = Rc::default();
    let mut tamper = Tamper::new(card.into_transport());
    let hook = recorded.clone();
    tamper.on_command = Some(Box::new(move |command: &mut Vec<u8>| {
        if command.get(1) == Some(&ins::REDEEM_MEAL) {
            *hook.borrow_mut() = command.clone();
        }
    }));
    let mut card = Card::open(tamper).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let allowance_two = lunch(2);
    for later_session in [false, true] {
        let mut session = card.open_session(&verified).unwrap();
        assert_palm_matches(&mut session, 6);
        if !later_session {
            assert!(matches!(
                session.redeem_meal(&allowance_two).unwrap(),
                MealOutcome::Served(_)
            ));
            assert_palm_matches(&mut session, 6);
        }
        let replay = recorded.borrow().clone();
        let answer = session.card().transport_mut().transmit(&replay).unwrap();
        assert_eq!(answer, [0x69, 0x88], "later session: {later_session}");
    }
    let count = card.transport_mut().inner.applet().meal_entitlement();
    assert_eq!(count.map(|e| (e.count, e.receipt_counter)), Some((1, 1)));
}

/// A duress match serves the meal like any match, and its receipt cannot be told apart.
#[test]
fn a_duress_match_serves_the_meal_and_the_receipt_does_not_tell() {
    let issuer = Issuer::new();
    let issuers = [issuer.key.public_key()];
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[
            (SlotKind::Normal, &template(7)),
            (SlotKind::Duress, &template(8)),
        ],
        None,
    );
    let verified = card.verify_certificate(&issuers).unwrap();
    let mut receipts = Vec::new();
    for (seed, kind, period) in [
        (8, SlotKind::Duress, PERIOD),
        (7, SlotKind::Normal, PERIOD + 1),
    ] {
        let mut session = card.open_session(&verified).unwrap();
        assert!(matches!(
            session.verify_palm(&capture(seed, 10)).unwrap(),
            VerifyOutcome::Match { slot_kind, .. } if slot_kind == kind
        ));
        let MealOutcome::Served(receipt) = session
            .redeem_meal(&MealRequest { period, ..lunch(1) })
            .unwrap()
        else {
            panic!("{kind:?} match not served");
        };
        receipts.push(*receipt.verify(&issuers).unwrap().fields());
    }
    // Same fields but the period and the counter: nothing says which slot matched.
    let [duress, normal] = [receipts[0], receipts[1]];
    assert_eq!(
        MealReceiptFields {
            period: normal.period,
            receipt_counter: normal.receipt_counter,
            ..duress
        },
        normal
    );
}

#[test]
fn an_older_period_never_resets_the_count() {
    let (issuer, mut card) = card_of(9);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 9);
    assert!(matches!(
        session.redeem_meal(&lunch(1)).unwrap(),
        MealOutcome::Served(_)
    ));
    for period in [PERIOD - 1, 0] {
        assert_palm_matches(&mut session, 9);
        assert_eq!(
            session
                .redeem_meal(&MealRequest { period, ..lunch(1) })
                .unwrap_err()
                .to_string(),
            "meal refused by the card"
        );
    }
    drop(session);
    assert_eq!(
        entitlement(&mut card),
        Some(MealEntitlement {
            period: PERIOD,
            count: 1,
            receipt_counter: 1
        })
    );
}

/// A write that fails answers `6581` and changes nothing, in storage or in RAM; the next meal
/// gets the next counter. A card that loses power after its write (answer lost) has counted the
/// meal and keeps the receipt; one that loses it before has counted nothing. Either way the
/// counter goes on from what was stored: it never goes back, never repeats.
#[test]
fn counters_never_go_back_across_failed_writes_and_power_loss() {
    let (issuer, mut card) = card_of(10);
    let issuers = [issuer.key.public_key()];
    let verified = card.verify_certificate(&issuers).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 10);
    let first = session.redeem_meal(&lunch(3)).unwrap();
    assert!(matches!(first, MealOutcome::Served(_)));
    assert_palm_matches(&mut session, 10);
    let stored_before = *session
        .card()
        .transport_mut()
        .applet()
        .storage()
        .stored()
        .unwrap();
    session
        .card()
        .transport_mut()
        .applet_mut()
        .storage_mut()
        .fail = true;
    assert!(matches!(
        session.redeem_meal(&lunch(3)),
        Err(CardError::Status {
            status: StatusWord::MemoryFailure,
            ..
        })
    ));
    let applet = session.card().transport_mut().applet_mut();
    assert_eq!(*applet.state_bytes(), stored_before, "RAM unchanged");
    assert_eq!(*applet.storage().stored().unwrap(), stored_before);
    applet.storage_mut().fail = false;
    // The match was not consumed by the failed write: the same palm gets its meal now.
    let MealOutcome::Served(second) = session.redeem_meal(&lunch(3)).unwrap() else {
        panic!("not served");
    };
    assert_eq!(
        (
            second.verify(&issuers).unwrap().fields().receipt_counter,
            second.unverified_fields().count
        ),
        (2, 2)
    );
    drop(session);

    // Power loss after the write, before the answer: the card restarts from its storage.
    let stored = *card.transport_mut().applet().storage().stored().unwrap();
    let mut torn = Tamper::new(InProcessTransport::new(
        Applet::load(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
            &stored,
        )
        .unwrap(),
    ));
    torn.on_response = Some(Box::new(|command: &[u8], response: &mut Vec<u8>| {
        if command.get(1) == Some(&ins::REDEEM_MEAL) {
            response.clear();
        }
    }));
    let mut card = Card::open(torn).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 10);
    assert!(
        session.redeem_meal(&lunch(3)).is_err(),
        "the answer was lost"
    );
    drop(session);
    let stored = card.into_transport().inner.applet().state_bytes();
    let mut card = Card::open(InProcessTransport::new(
        Applet::load(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
            &stored[..],
        )
        .unwrap(),
    ))
    .unwrap();
    assert_eq!(
        entitlement(&mut card),
        Some(MealEntitlement {
            period: PERIOD,
            count: 3,
            receipt_counter: 3
        }),
        "counted before the answer"
    );
    let mut session = card.open_session(&verified).unwrap();
    let kept = session
        .recover_meal_receipt()
        .unwrap()
        .expect("kept receipt");
    assert!(kept.answers(&lunch(3)));
    assert_eq!(kept.verify(&issuers).unwrap().fields().receipt_counter, 3);
    drop(session);

    // Power loss before the write: the next meal's counter follows the stored one.
    let stored = card.transport_mut().applet().state_bytes();
    let mut storage = MemoryStorage::default();
    storage.fail = true;
    let mut card = Card::open(InProcessTransport::new(
        Applet::load(storage, system_rng(), SystemClock::default(), &stored[..]).unwrap(),
    ))
    .unwrap();
    let next = MealRequest {
        period: PERIOD + 1,
        ..lunch(1)
    };
    let mut session = card.open_session(&verified).unwrap();
    // Verification itself needs a write: the card refuses before anything is compared.
    assert!(session.verify_palm(&capture(10, 10)).is_err());
    drop(session);
    let stored = card.transport_mut().applet().state_bytes();
    let mut card = Card::open(InProcessTransport::new(
        Applet::load(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
            &stored[..],
        )
        .unwrap(),
    ))
    .unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 10);
    let MealOutcome::Served(fourth) = session.redeem_meal(&next).unwrap() else {
        panic!("not served");
    };
    assert_eq!(fourth.verify(&issuers).unwrap().fields().receipt_counter, 4);
}

fn bundle_of(
    issuer: &IssuerKey,
    card_key: &p256::ecdsa::SigningKey,
    fields: MealReceiptFields,
) -> MealReceipt {
    let certificate = issuer.certify_card(
        &fields.card_id,
        &encode_public_key(card_key.verifying_key()),
    );
    MealReceipt::new(SignedMealReceipt::sign(&fields, card_key), certificate)
}

fn fields(card_id: [u8; 16], counter: u32) -> MealReceiptFields {
    MealReceiptFields {
        card_id,
        period: PERIOD,
        count: 1,
        allowance: 1,
        gate_time: NOON,
        receipt_counter: counter,
    }
}

#[test]
fn forged_and_altered_receipts_are_refused() {
    let issuer = IssuerKey::generate();
    let issuers = [issuer.public_key()];
    let card_key = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
    let genuine = bundle_of(&issuer, &card_key, fields([0x11; 16], 7));
    let bytes = genuine.to_bytes();
    assert_eq!(
        *MealReceipt::from_bytes(&bytes)
            .unwrap()
            .verify(&issuers)
            .unwrap()
            .fields(),
        fields([0x11; 16], 7)
    );
    // Every single bit of the receipt part flipped: never a valid receipt.
    for bit in 0..(bytes.len() - 158) * 8 {
        let mut altered = bytes.clone();
        altered[bit / 8] ^= 1 << (bit % 8);
        let verdict = MealReceipt::from_bytes(&altered).and_then(|r| r.verify(&issuers));
        assert!(verdict.is_err(), "bit {bit}");
    }
    // A card of another issuer.
    let foreign = bundle_of(&IssuerKey::generate(), &card_key, fields([0x11; 16], 7));
    assert!(matches!(
        foreign.verify(&issuers),
        Err(MealReceiptError::Certificate(CertError::UnknownIssuer))
    ));
    // The receipt of one card with the certificate of another.
    let other_key = p256::ecdsa::SigningKey::from_slice(&[6u8; 32]).unwrap();
    let other = bundle_of(&issuer, &other_key, fields([0x22; 16], 7));
    let swapped = MealReceipt::new(*genuine.signed(), *other.certificate());
    assert!(matches!(
        swapped.verify(&issuers),
        Err(MealReceiptError::Signature(_))
    ));
    // The same fields signed by another key, with the genuine certificate.
    let resigned = MealReceipt::new(
        SignedMealReceipt::sign(&genuine.unverified_fields(), &other_key),
        *genuine.certificate(),
    );
    assert!(matches!(
        resigned.verify(&issuers),
        Err(MealReceiptError::Signature(CertError::BadSignature))
    ));
    // A receipt signed by the right key that names another card than the certificate.
    let lying = MealReceipt::new(
        SignedMealReceipt::sign(&fields([0x33; 16], 7), &card_key),
        *genuine.certificate(),
    );
    assert_eq!(
        lying.verify(&issuers),
        Err(MealReceiptError::CardIdMismatch)
    );
    // Truncated, padded, garbage: clear errors.
    for bad in [
        &bytes[..bytes.len() - 1],
        &[&bytes[..], &[0]].concat()[..],
        &[0u8; 261][..],
    ] {
        assert!(matches!(
            MealReceipt::from_bytes(bad),
            Err(MealReceiptError::Malformed(_))
        ));
    }
}

/// The two receipt kinds are signed under different domain tags: the card key's deletion receipt
/// never reads or verifies as a meal receipt, and the other way round.
#[test]
fn a_deletion_receipt_is_never_a_meal_receipt() {
    let issuer = IssuerKey::generate();
    let issuers = [issuer.public_key()];
    let card_key = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
    let card_id = [0x44; 16];
    let certificate = issuer.certify_card(&card_id, &encode_public_key(card_key.verifying_key()));
    let deletion = DeletionReceipt::sign(
        &ReceiptFields {
            card_id,
            erase_counter: 1,
            gate_timestamp: NOON,
            slots_erased: 1,
            commitment: [0xC0; 32],
        },
        &card_key,
    );
    let deletion_bundle = ReceiptBundle {
        receipt: deletion,
        certificate,
    }
    .encode();
    assert!(MealReceipt::from_bytes(&deletion_bundle).is_err());
    let meal = bundle_of(&issuer, &card_key, fields(card_id, 1));
    assert!(ReceiptBundle::decode(&meal.to_bytes()).is_err());
    // Re-labelled: the meal fields under the deletion receipt's signature, and the meal
    // signature moved into a deletion receipt.
    let mut relabelled = *meal.signed().as_bytes();
    relabelled[MEAL_RECEIPT_SIGNED_LEN..].copy_from_slice(&deletion.as_bytes()[66..]);
    let relabelled = MealReceipt::new(SignedMealReceipt::decode(&relabelled).unwrap(), certificate);
    assert!(matches!(
        relabelled.verify(&issuers),
        Err(MealReceiptError::Signature(_))
    ));
    let mut moved = *deletion.as_bytes();
    moved[66..].copy_from_slice(&meal.signed().as_bytes()[MEAL_RECEIPT_SIGNED_LEN..]);
    let moved = ReceiptBundle {
        receipt: DeletionReceipt::decode(&moved).unwrap(),
        certificate,
    };
    assert!(moved.verify(&issuers).is_err());
}

/// The ledger accepts each receipt once, whatever its signature encoding, accepts late receipts
/// out of counter order, and flags a counter signed twice with different content.
#[test]
fn replayed_receipts_are_refused_by_the_ledger() {
    let issuer = IssuerKey::generate();
    let issuers = [issuer.public_key()];
    let card_key = p256::ecdsa::SigningKey::from_slice(&[5u8; 32]).unwrap();
    let card_id = [0x55; 16];
    let verified = |receipt: &MealReceipt| receipt.verify(&issuers).unwrap();
    let mut ledger = MealReceiptLedger::new();
    let second = bundle_of(&issuer, &card_key, fields(card_id, 2));
    ledger.accept(&verified(&second)).unwrap();
    // A gate that was offline delivers counter 1 late: genuine, accepted.
    ledger
        .accept(&verified(&bundle_of(
            &issuer,
            &card_key,
            fields(card_id, 1),
        )))
        .unwrap();
    assert_eq!((ledger.len(), ledger.last_counter(&card_id)), (2, Some(2)));
    assert_eq!(
        ledger.accept(&verified(&second)),
        Err(ReplayError::Replayed {
            card_id,
            receipt_counter: 2
        })
    );
    // The same receipt with its signature re-encoded (s → n − s), which still verifies.
    let mut bytes = second.to_bytes();
    let signature = p256::ecdsa::Signature::from_slice(&bytes[39..103]).unwrap();
    let (r, s) = signature.split_scalars();
    let flipped = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
    assert_ne!(flipped, signature);
    bytes[39..103].copy_from_slice(&flipped.to_bytes());
    // p256 accepts both encodings, so the ledger must not tell receipts apart by signature.
    let malleated = verified(&MealReceipt::from_bytes(&bytes).unwrap());
    assert!(matches!(
        ledger.accept(&malleated),
        Err(ReplayError::Replayed { .. })
    ));
    // Another meal under a counter already seen: the card's key is in other hands.
    let clone = bundle_of(
        &issuer,
        &card_key,
        MealReceiptFields {
            period: PERIOD + 5,
            ..fields(card_id, 2)
        },
    );
    assert_eq!(
        ledger.accept(&verified(&clone)),
        Err(ReplayError::CounterReused {
            card_id,
            receipt_counter: 2
        })
    );
    // Another card's counter 2 is its own.
    ledger
        .accept(&verified(&bundle_of(
            &issuer,
            &card_key,
            fields([0x66; 16], 2),
        )))
        .unwrap();
}

/// A card whose applet predates meals: the identity says so and nothing is sent; a card that
/// claims 1.3 but answers `6D00` is also `Unsupported`. Verification still works.
#[test]
fn an_old_applet_is_unsupported_and_still_verifies() {
    for claim_new_version in [false, true] {
        let (issuer, card) = card_of(12);
        let mut old = Tamper::new(card.into_transport());
        old.on_response = Some(Box::new(move |command: &[u8], response: &mut Vec<u8>| {
            if command.get(1) == Some(&ins::SELECT) && !claim_new_version {
                response[17] = 2; // applet 1.2: profiles, no meals
            }
            if command.get(1) == Some(&ins::REDEEM_MEAL) {
                *response = vec![0x6D, 0x00];
            }
        }));
        let mut card = Card::open(old).unwrap();
        let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
        let mut session = card.open_session(&verified).unwrap();
        assert_palm_matches(&mut session, 12);
        let before = session.card().apdu_count();
        assert_eq!(
            session.redeem_meal(&lunch(1)).unwrap(),
            MealOutcome::Unsupported
        );
        let sent = session.card().apdu_count() - before;
        assert_eq!(sent, u64::from(claim_new_version));
        if !claim_new_version {
            assert_eq!(session.recover_meal_receipt().unwrap(), None);
            assert_palm_matches(&mut session, 12);
        }
    }
}

/// REDEEM MEAL with arbitrary bytes and P1 P2, as an authenticated gate could send them.
struct RawRedeem {
    p1_p2: (u8, u8),
    data: Vec<u8>,
}

impl palmgate_card::host::commands::SecureCommand for RawRedeem {
    const NAME: &'static str = "RAW REDEEM MEAL";
    const INS: u8 = ins::REDEEM_MEAL;
    type Output = (StatusWord, Vec<u8>);

    fn p1_p2(&self) -> (u8, u8) {
        self.p1_p2
    }

    fn plaintext(&self) -> zeroize::Zeroizing<Vec<u8>> {
        zeroize::Zeroizing::new(self.data.clone())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<Self::Output, CardError> {
        Ok((status, plaintext.to_vec()))
    }
}

/// Malformed requests are refused (encrypted, the session goes on), count nothing and leave the
/// palm match for a well-formed request.
#[test]
fn malformed_meal_requests_count_nothing() {
    let (issuer, mut card) = card_of(13);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 13);
    let good = lunch(1).encode().to_vec();
    let mut zero_allowance = good.clone();
    zero_allowance[4] = 0;
    let cases = [
        ((0, 0), good[..12].to_vec(), StatusWord::WrongLength),
        ((0, 0), [&good[..], &[0]].concat(), StatusWord::WrongLength),
        ((0, 0), Vec::new(), StatusWord::WrongLength),
        ((0, 0), zero_allowance, StatusWord::WrongData),
        ((1, 0), good.clone(), StatusWord::IncorrectP1P2),
        ((0, 2), good.clone(), StatusWord::IncorrectP1P2),
    ];
    for (p1_p2, data, expected) in cases {
        let (status, answer) = session.execute(&RawRedeem { p1_p2, data }).unwrap();
        assert_eq!((status, answer.len()), (expected, 0), "{p1_p2:?}");
    }
    // The host refuses an allowance of 0 before sending anything.
    assert!(matches!(
        session.redeem_meal(&lunch(0)),
        Err(CardError::InvalidArgument(_))
    ));
    assert!(matches!(
        session.redeem_meal(&lunch(1)).unwrap(),
        MealOutcome::Served(_)
    ));
    drop(session);
    assert_eq!(entitlement(&mut card).map(|e| e.receipt_counter), Some(1));
}

/// A card whose receipt counter is at its end refuses every meal (`6A84`) rather than wrap to a
/// counter it already used.
#[test]
fn an_exhausted_receipt_counter_never_wraps() {
    let (issuer, mut card) = card_of(14);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 14);
    assert!(matches!(
        session.redeem_meal(&lunch(1)).unwrap(),
        MealOutcome::Served(_)
    ));
    drop(session);
    // The stored state with the counter set to its maximum (and the checksum fixed).
    let mut state = *card.transport_mut().applet().state_bytes();
    let body = state.len() - 32;
    // The counter ends the entitlement record, before the profile floor (1 byte) that ends
    // layout 4's body (slots 4 and 5 follow it in layout 5).
    let counter = palmgate_card::applet::STATE_V4_LEN - 32 - 1 - 4;
    assert_eq!(state[counter..counter + 4], 1u32.to_be_bytes());
    state[counter..counter + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&state[..body]);
    state[body..].copy_from_slice(&digest);
    let mut card = Card::open(InProcessTransport::new(
        Applet::load(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
            &state,
        )
        .unwrap(),
    ))
    .unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_palm_matches(&mut session, 14);
    let next = MealRequest {
        period: PERIOD + 1,
        ..lunch(1)
    };
    assert!(matches!(
        session.redeem_meal(&next),
        Err(CardError::MealRefused(MealRefusal::ReceiptCounterExhausted))
    ));
    drop(session);
    assert_eq!(*card.transport_mut().applet().state_bytes(), state);
}
