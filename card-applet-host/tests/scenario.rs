//! In-process scenarios through the host client: the applet exercised exactly as the gate and
//! the enrolment station use it.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Issuer, capture, enrolled_card, factory_transport, template};
use palmgate_card::host::apdu::LengthMode;
use palmgate_card::host::{Card, CardError, ReceiptBundle, VerifyOutcome};
use palmgate_card::protocol::receipt::Commitment;
use palmgate_card::protocol::{DEFAULT_MAX_TRIES, Lifecycle, SlotKind, StatusWord};
use palmgate_matcher::compare::{Threshold, compare};

#[test]
fn test_templates_behave_as_genuine_and_impostor() {
    let genuine = compare(&capture(1, 40), &template(1)).unwrap();
    let impostor = compare(&template(2), &template(1)).unwrap();
    assert!(
        genuine.is_match(Threshold::DEFAULT),
        "genuine distance {}",
        genuine.distance_q16()
    );
    assert!(
        !impostor.is_match(Threshold::DEFAULT),
        "impostor distance {}",
        impostor.distance_q16()
    );
}

#[test]
fn factory_card_reports_its_state_and_refuses_sessions() {
    let mut card = Card::open(factory_transport()).unwrap();
    assert_eq!(card.identity().lifecycle, Lifecycle::Factory);
    assert_eq!(card.identity().tries_left, DEFAULT_MAX_TRIES);
    assert!(matches!(
        card.certificate(),
        Err(CardError::Status {
            status: StatusWord::ReferencedDataNotFound,
            ..
        })
    ));
}

#[test]
fn personalise_once_only() {
    let issuer = Issuer::new();
    let mut card = Card::open(factory_transport()).unwrap();
    let certificate = card.personalise(&issuer.key).unwrap();
    assert_eq!(card.identity().lifecycle, Lifecycle::Personalised);
    assert_eq!(certificate.card_id(), card.identity().card_id);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    assert_eq!(verified.card_id, card.identity().card_id);
    assert!(matches!(
        card.personalise(&issuer.key),
        Err(CardError::Lifecycle { .. })
    ));
    // The raw command is refused by the card too, whatever the host thinks.
    let again = card.execute(&palmgate_card::host::commands::GenerateCardKey { card_id: [7; 16] });
    assert!(matches!(
        again,
        Err(CardError::Status {
            status: StatusWord::ConditionsNotSatisfied,
            ..
        })
    ));
}

#[test]
fn verify_match_no_match_lockout_and_reset() {
    let issuer = Issuer::new();
    let enrolled = template(10);
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &enrolled)],
        Some(3),
    );
    assert_eq!(card.identity().slots_used, 1);
    assert_eq!(card.identity().max_tries, 3);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();

    let mut session = card.open_session(&verified).unwrap();
    assert_eq!(
        session.verify_palm(&capture(10, 30)).unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            tries_left: 3
        }
    );
    assert_eq!(
        session.verify_palm(&template(11)).unwrap(),
        VerifyOutcome::NoMatch { tries_left: 2 }
    );
    // A match restores the counter.
    assert!(matches!(
        session.verify_palm(&capture(10, 5)).unwrap(),
        VerifyOutcome::Match { tries_left: 3, .. }
    ));
    for left in (0..3).rev() {
        assert_eq!(
            session.verify_palm(&template(12)).unwrap(),
            VerifyOutcome::NoMatch { tries_left: left }
        );
    }
    // Blocked: even the genuine palm is not compared.
    assert_eq!(
        session.verify_palm(&capture(10, 0)).unwrap(),
        VerifyOutcome::Blocked
    );
    drop(session);
    assert_eq!(card.refresh_identity().unwrap().tries_left, 0);

    // Only an issuer-authorised reset restores it.
    let session = card.open_session(&verified).unwrap();
    let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
    enrolment.reset_retry_counter().unwrap();
    assert!(matches!(
        enrolment.verify_palm(&capture(10, 3)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
}

#[test]
fn duress_slot_is_reported() {
    let issuer = Issuer::new();
    let (right, left) = (template(20), template(21));
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &right), (SlotKind::Duress, &left)],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(20, 20)).unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            ..
        }
    ));
    assert!(matches!(
        session.verify_palm(&capture(21, 20)).unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Duress,
            ..
        }
    ));
}

#[test]
fn erase_returns_a_receipt_that_verifies() {
    let issuer = Issuer::new();
    let enrolled = template(30);
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &enrolled)],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let receipt = {
        let session = card.open_session(&verified).unwrap();
        let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
        enrolment.erase(1_764_000_000).unwrap()
    };
    let bundle = ReceiptBundle {
        receipt,
        certificate: verified.certificate,
    };
    let decoded = ReceiptBundle::decode(&bundle.encode()).unwrap();
    let fields = decoded.verify(&[issuer.key.public_key()]).unwrap();
    assert_eq!(fields.card_id, verified.card_id);
    assert_eq!(fields.gate_timestamp, 1_764_000_000);
    assert_eq!(fields.slots_erased, 1);
    assert_eq!(fields.erase_counter, 1);
    // The enrolment station can recompute the commitment from its record.
    let mut commitment = Commitment::new();
    commitment.add_slot(true, SlotKind::Normal.to_byte(), &enrolled.encode());
    for _ in 1..palmgate_card::protocol::SLOT_COUNT {
        commitment.add_slot(false, 0, &[0; palmgate_card::protocol::TEMPLATE_LEN]);
    }
    assert_eq!(fields.commitment, commitment.finish());
    // Another issuer cannot vouch for it; a changed byte breaks it.
    assert!(decoded.verify(&[Issuer::new().key.public_key()]).is_err());
    let mut forged = bundle.encode();
    forged[30] ^= 1;
    assert!(
        ReceiptBundle::decode(&forged)
            .unwrap()
            .verify(&[issuer.key.public_key()])
            .is_err()
    );

    assert_eq!(card.refresh_identity().unwrap().slots_used, 0);
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(30, 0)),
        Err(CardError::Status {
            status: StatusWord::ReferencedDataNotFound,
            ..
        })
    ));
}

#[test]
fn short_apdus_with_chaining_work_like_extended_ones() {
    let issuer = Issuer::new();
    let enrolled = template(40);
    let transport = factory_transport();
    let mut card = Card::open_with_mode(transport, LengthMode::Short).unwrap();
    card.personalise(&issuer.key).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let session = card.open_session(&verified).unwrap();
    let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
    enrolment.enrol(0, SlotKind::Normal, &enrolled).unwrap();
    let before = enrolment.session().card().apdu_count();
    assert!(matches!(
        enrolment.verify_palm(&capture(40, 10)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
    // 292 + 16 bytes of ciphertext: two chained APDUs.
    assert_eq!(enrolment.session().card().apdu_count() - before, 2);
}

#[test]
fn verification_takes_two_apdus_after_select_in_extended_mode() {
    let issuer = Issuer::new();
    let enrolled = template(41);
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &enrolled)],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let before = card.apdu_count();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(41, 10)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
    drop(session);
    assert_eq!(card.apdu_count() - before, 2);
}

#[test]
fn state_survives_a_restart_and_failed_writes_change_nothing() {
    use palmgate_card::applet::Applet;
    use palmgate_card::host::InProcessTransport;
    use palmgate_card::host::platform::{MemoryStorage, SystemClock, system_rng};

    let issuer = Issuer::new();
    let enrolled = template(50);
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &enrolled)],
        Some(4),
    );
    let stored = *card.transport_mut().applet().storage().stored().unwrap();
    assert_eq!(stored, *card.transport_mut().applet().state_bytes());

    let mut storage = MemoryStorage::default();
    storage.fail = true;
    let applet = Applet::load(storage, system_rng(), SystemClock::default(), &stored).unwrap();
    let mut restarted = Card::open(InProcessTransport::new(applet)).unwrap();
    assert_eq!(restarted.identity().card_id, card.identity().card_id);
    assert_eq!(restarted.identity().tries_left, 4);
    let verified = restarted
        .verify_certificate(&[issuer.key.public_key()])
        .unwrap();
    let mut session = restarted.open_session(&verified).unwrap();
    // The try cannot be recorded: the card refuses to compare.
    assert!(matches!(
        session.verify_palm(&capture(50, 0)),
        Err(CardError::Status {
            status: StatusWord::MemoryFailure,
            ..
        })
    ));
    drop(session);
    assert_eq!(restarted.refresh_identity().unwrap().tries_left, 4);

    let mut corrupted = stored;
    corrupted[100] ^= 0x01;
    assert!(
        Applet::load(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
            &corrupted
        )
        .is_err()
    );
}

#[test]
fn get_response_serves_long_answers_in_parts() {
    let issuer = Issuer::new();
    let mut transport = factory_transport();
    {
        let mut card = Card::open(&mut transport).unwrap();
        card.personalise(&issuer.key).unwrap();
    }
    use palmgate_card::host::CardTransport;
    transport
        .transmit(&[
            0x00, 0xA4, 0x04, 0x00, 10, 0xF0, b'p', b'a', b'l', b'm', b'g', b'a', b't', b'e', 1,
        ])
        .unwrap();
    // Ask the 158-byte certificate with Le = 100.
    let first = transport.transmit(&[0x80, 0xCA, 0x01, 0x02, 100]).unwrap();
    assert_eq!(first.len(), 102);
    assert_eq!(first[100..], [0x61, 58]);
    let second = transport.transmit(&[0x00, 0xC0, 0x00, 0x00, 58]).unwrap();
    assert_eq!(second.len(), 60);
    assert_eq!(second[58..], [0x90, 0x00]);
    let mut card = Card::open(&mut transport).unwrap();
    let mut whole = first[..100].to_vec();
    whole.extend_from_slice(&second[..58]);
    assert_eq!(card.certificate().unwrap().as_bytes()[..], whole[..]);
}

#[test]
fn templates_go_only_into_the_cards_six_slots() {
    use palmgate_card::protocol::SLOT_COUNT;
    let issuer = Issuer::new();
    let enrolled = template(50);
    let slots: Vec<(SlotKind, &_)> = (0..SLOT_COUNT)
        .map(|slot| {
            let kind = if slot < 3 {
                SlotKind::Normal
            } else {
                SlotKind::Duress
            };
            (kind, &enrolled)
        })
        .collect();
    let mut card = enrolled_card(factory_transport(), &issuer, &slots, None);
    assert_eq!(card.identity().slot_capacity, 6);
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    {
        let session = card.open_session(&verified).unwrap();
        let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
        // The host refuses a slot past the card's capacity before sending anything ...
        assert!(matches!(
            enrolment.enrol(6, SlotKind::Normal, &enrolled),
            Err(CardError::InvalidArgument(_))
        ));
        // ... and the card refuses it when sent anyway.
        assert!(matches!(
            enrolment.enrol_encoded(6, SlotKind::Normal, &enrolled.encode()),
            Err(CardError::Status {
                status: StatusWord::WrongData,
                ..
            })
        ));
    }
    // Nothing was written: the six templates are still there, and the duress one still matches.
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(50, 10)).unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Duress,
            ..
        }
    ));
}

/// Whoever reads a card's identity (SELECT, no session) learns how many templates the hand has,
/// not whether a duress hand is enrolled beside it; and a card never holds duress templates
/// without the hand's, which would then read as not enrolled.
#[test]
fn the_identity_does_not_tell_a_duress_hand() {
    let issuer = Issuer::new();
    let (hand, duress) = (template(53), template(54));
    let without = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &hand); 3],
        None,
    );
    let with = enrolled_card(
        factory_transport(),
        &issuer,
        &[
            (SlotKind::Normal, &hand),
            (SlotKind::Normal, &hand),
            (SlotKind::Normal, &hand),
            (SlotKind::Duress, &duress),
            (SlotKind::Duress, &duress),
            (SlotKind::Duress, &duress),
        ],
        None,
    );
    let shown = |card: &Card<_>| {
        let identity = card.identity();
        (identity.slots_used, identity.slot_capacity)
    };
    assert_eq!(shown(&without), (3, 6));
    assert_eq!(shown(&with), shown(&without));

    let mut card = Card::open(factory_transport()).unwrap();
    card.personalise(&issuer.key).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let session = card.open_session(&verified).unwrap();
    let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
    let refused = enrolment
        .enrol(3, SlotKind::Duress, &duress)
        .expect_err("a duress template alone");
    assert!(
        matches!(refused, CardError::DuressWithoutHand),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("needs the hand's templates"),
        "{refused}"
    );
    enrolment.enrol(0, SlotKind::Normal, &hand).unwrap();
    enrolment.enrol(3, SlotKind::Duress, &duress).unwrap();
    // Nor may the hand's last template give way to a duress one.
    assert!(matches!(
        enrolment.enrol(0, SlotKind::Duress, &duress),
        Err(CardError::DuressWithoutHand)
    ));
    drop(enrolment);
    assert_eq!(card.refresh_identity().unwrap().slots_used, 1);
}

#[test]
fn a_hand_holds_at_most_three_templates() {
    let issuer = Issuer::new();
    let enrolled = template(51);
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &enrolled); 3],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    {
        let session = card.open_session(&verified).unwrap();
        let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
        // A fourth normal template would be compared at the three-template threshold, looser
        // than four templates need: refused, nothing written.
        let refused = enrolment
            .enrol(3, SlotKind::Normal, &enrolled)
            .expect_err("a fourth template");
        assert!(
            matches!(refused, CardError::TooManyTemplates),
            "{refused:?}"
        );
        assert!(
            refused.to_string().contains("at most three templates"),
            "{refused}"
        );
    }
    assert_eq!(card.refresh_identity().unwrap().slots_used, 3);
    let session = card.open_session(&verified).unwrap();
    let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
    // Replacing one of the three, and a duress hand's three beside them, are accepted.
    enrolment.enrol(0, SlotKind::Normal, &template(52)).unwrap();
    for slot in 3..6 {
        enrolment.enrol(slot, SlotKind::Duress, &enrolled).unwrap();
    }
}
