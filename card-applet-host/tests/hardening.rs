//! Card hardening (issue 13): a torn ERASE keeps its receipt (GET RECEIPT), chained parts only for
//! instructions that take data, every answer to a secure command encrypted (over-long data too),
//! and state files of applets 1.0 to 1.7 still load.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Issuer, Tamper, capture, enrolled_card, factory_transport, template};
use palmgate_card::applet::{
    STATE_LEN, STATE_V1_LEN, STATE_V2_LEN, STATE_V3_LEN, STATE_V4_LEN, StateError,
};
use palmgate_card::host::apdu::LengthMode;
use palmgate_card::host::commands::SecureCommand;
use palmgate_card::host::issuer::IssuerPublicKey;
use palmgate_card::host::platform::{applet_of_state, identity_of_state};
use palmgate_card::host::{
    Card, CardError, CardTransport, InProcessTransport, ReceiptBundle, VerifyOutcome,
};
use palmgate_card::protocol::{AID, SlotKind, StatusWord, TAG_LEN, ins};
use zeroize::Zeroizing;

const TIMESTAMP: u64 = 1_764_000_000;
/// The profile floor's byte: the last of layout 4's body, where layout 5 keeps it.
const FLOOR: usize = STATE_V4_LEN - 33;

/// A state file written by applet 1.0 (`STATE_V1_LEN` bytes, layout version 1): a personalised
/// card with `template(11)` in a normal slot, `template(12)` in a duress slot, max tries 4.
const STATE_V1: &[u8] = include_bytes!("fixtures/state-v1.bin");

fn selected(transport: &mut impl CardTransport) {
    let select = [
        &[0x00, 0xA4, 0x04, 0x00, AID.len() as u8][..],
        &AID,
        &[0x00],
    ]
    .concat();
    let answer = transport.transmit(&select).unwrap();
    assert_eq!(answer[answer.len() - 2..], [0x90, 0x00]);
}

#[test]
fn a_state_file_of_applet_1_0_still_loads_and_is_rewritten_in_the_current_layout() {
    assert_eq!(STATE_V1.len(), STATE_V1_LEN);
    assert_eq!(STATE_V1[4], 1, "fixture is a version 1 state");
    let identity = identity_of_state(STATE_V1).unwrap();
    // The hand's template counted, not the duress one (applet 1.8).
    assert_eq!((identity.slots_used, identity.max_tries), (1, 4));

    // Its card still works (same key, certificate, templates), and its next change writes the
    // current layout: a verification spends and restores a try, two writes.
    let applet = applet_of_state(STATE_V1).unwrap();
    // The issuer public key the 1.0 card stored (after magic, version, life-cycle, card id and
    // card key).
    let issuer = IssuerPublicKey::from_bytes(&STATE_V1[54..54 + 65]).unwrap();
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    let verified = card.verify_certificate(&[issuer]).unwrap();
    assert!(matches!(
        card.open_session(&verified)
            .unwrap()
            .verify_palm(&capture(11, 10))
            .unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            tries_left: 4
        }
    ));
    let transport = card.into_transport();
    let stored = transport.applet().storage().stored().unwrap();
    assert_eq!((stored.len(), stored[4]), (STATE_LEN, 5));
    assert_eq!(identity_of_state(stored).unwrap(), identity);

    // A damaged version 1 file is still refused.
    let mut damaged = STATE_V1.to_vec();
    damaged[100] ^= 1;
    assert!(identity_of_state(&damaged).is_err());
}

/// State files written by applet 1.1 (layout version 2): a personalised card with `template(11)`
/// in a normal slot and `template(12)` in a duress slot, max tries 4; and the same card after an
/// ERASE at 1764000000, keeping its deletion receipt.
const STATE_V2: &[u8] = include_bytes!("fixtures/state-v2.bin");
const STATE_V2_ERASED: &[u8] = include_bytes!("fixtures/state-v2-erased.bin");

#[test]
fn state_files_of_applet_1_1_still_load_without_an_entitlement_record() {
    use palmgate_card::host::platform::meal_entitlement_of_state;
    use palmgate_card::host::{MealOutcome, MealRequest};
    for fixture in [STATE_V2, STATE_V2_ERASED] {
        assert_eq!((fixture.len(), fixture[4]), (STATE_V2_LEN, 2));
        assert_eq!(meal_entitlement_of_state(fixture).unwrap(), None);
    }
    let issuer = IssuerPublicKey::from_bytes(&STATE_V2[54..54 + 65]).unwrap();

    // The erased card still keeps its deletion receipt for GET RECEIPT, and no meal receipt.
    let applet = applet_of_state(STATE_V2_ERASED).unwrap();
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    assert_eq!(card.identity().slots_used, 0);
    let verified = card.verify_certificate(&[issuer]).unwrap();
    let kept = {
        let mut session = card.open_session(&verified).unwrap();
        assert_eq!(session.recover_meal_receipt().unwrap(), None);
        drop(session);
        // Reading it needs the erase permission, which the test does not hold: the record is
        // there (6982, not 6A88).
        let mut session = card.open_session(&verified).unwrap();
        session.execute(&palmgate_card::host::commands::GetReceipt)
    };
    assert!(matches!(
        kept,
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));

    // The enrolled card verifies and serves its first meal, which creates the record; its
    // state is then written in the current layout.
    let applet = applet_of_state(STATE_V2).unwrap();
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    let verified = card.verify_certificate(&[issuer]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(12, 10)).unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Duress,
            tries_left: 4
        }
    ));
    let request = MealRequest {
        period: 7,
        allowance: 1,
        gate_time: TIMESTAMP,
    };
    let MealOutcome::Served(receipt) = session.redeem_meal(&request).unwrap() else {
        panic!("first meal not served");
    };
    let fields = *receipt.verify(&[issuer]).unwrap().fields();
    assert_eq!((fields.count, fields.receipt_counter), (1, 1));
    drop(session);
    let stored = card
        .into_transport()
        .applet()
        .storage()
        .stored()
        .copied()
        .unwrap();
    assert_eq!((stored.len(), stored[4]), (STATE_LEN, 5));
    let record = meal_entitlement_of_state(&stored).unwrap().unwrap();
    assert_eq!(
        (record.period, record.count, record.receipt_counter),
        (7, 1, 1)
    );
    assert_eq!(
        identity_of_state(&stored).unwrap(),
        identity_of_state(STATE_V2).unwrap()
    );
}

/// A current state whose entitlement record is one the applet never writes is refused.
#[test]
fn an_inconsistent_entitlement_record_is_refused() {
    let applet = applet_of_state(STATE_V2).unwrap();
    let current = applet.state_bytes();
    // The record: 10 bytes before the profile floor (1), which ends layout 4's body (slots 4
    // and 5 follow it in layout 5).
    let record = STATE_V4_LEN - 32 - 1 - 10;
    let body = STATE_LEN - 32;
    let with_record = |present: u8, count: u8, counter: u32| {
        let mut state = *current;
        state[record] = present;
        state[record + 1..record + 5].copy_from_slice(&9u32.to_be_bytes());
        state[record + 5] = count;
        state[record + 6..record + 10].copy_from_slice(&counter.to_be_bytes());
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&state[..body]);
        state[body..].copy_from_slice(&digest);
        state
    };
    let load = |state: &[u8]| applet_of_state(state).map(|applet| applet.meal_entitlement());
    assert_eq!(
        load(&with_record(1, 2, 5))
            .unwrap()
            .map(|e| (e.period, e.count, e.receipt_counter)),
        Some((9, 2, 5))
    );
    for (present, count, counter) in [(0, 2, 5), (1, 0, 5), (1, 2, 0), (2, 2, 5)] {
        assert!(
            load(&with_record(present, count, counter)).is_err(),
            "{present} {count} {counter}"
        );
    }
}

/// A state file written by applet 1.4 (layout version 3): a personalised card with `template(11)`
/// in a normal slot and `template(12)` in a duress slot, max tries 4, one meal served in period 7
/// (gate time 1764000000).
const STATE_V3: &[u8] = include_bytes!("fixtures/state-v3.bin");

#[test]
fn a_state_file_of_applet_1_4_still_loads_with_no_profile_floor() {
    use palmgate_card::host::platform::meal_entitlement_of_state;
    use palmgate_matcher::Profile;
    assert_eq!((STATE_V3.len(), STATE_V3[4]), (STATE_V3_LEN, 3));
    let identity = identity_of_state(STATE_V3).unwrap();
    // The hand's template counted, not the duress one (applet 1.8).
    assert_eq!((identity.slots_used, identity.max_tries), (1, 4));
    let entitlement = meal_entitlement_of_state(STATE_V3).unwrap().unwrap();
    assert_eq!((entitlement.period, entitlement.count), (7, 1));

    let applet = applet_of_state(STATE_V3).unwrap();
    assert_eq!(applet.profile_floor(), None);
    // No floor: the card applies the profile asked for, as applet 1.4 did. A capture 10 cells
    // from the normal template passes under every profile; its next change writes layout 4.
    let issuer = IssuerPublicKey::from_bytes(&STATE_V3[54..54 + 65]).unwrap();
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    assert_eq!(card.profile_floor().unwrap(), None);
    let verified = card.verify_certificate(&[issuer]).unwrap();
    assert!(matches!(
        card.open_session(&verified)
            .unwrap()
            .verify_palm_under(Profile::Convenience, &capture(11, 10))
            .unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            tries_left: 4
        }
    ));
    let stored = *card.into_transport().applet().storage().stored().unwrap();
    assert_eq!((stored.len(), stored[4]), (STATE_LEN, 5));
    assert_eq!(stored[FLOOR], 0x00, "no floor written");
    assert_eq!(identity_of_state(&stored).unwrap(), identity);
    assert_eq!(
        meal_entitlement_of_state(&stored).unwrap(),
        Some(entitlement)
    );

    // Damaged input gets a clear error: a flipped bit, a version 3 file labelled 4, a floor byte
    // the applet never writes.
    let load = |state: &[u8]| applet_of_state(state).map(|applet| applet.profile_floor());
    let mut damaged = STATE_V3.to_vec();
    damaged[200] ^= 1;
    assert_eq!(load(&damaged), Err(StateError::Checksum));
    let mut relabelled = STATE_V3.to_vec();
    relabelled[4] = 4;
    assert_eq!(load(&relabelled), Err(StateError::Format));
    let body = STATE_LEN - 32;
    let with_floor = |byte: u8| {
        let mut state = stored;
        state[FLOOR] = byte;
        let digest = <sha2::Sha256 as sha2::Digest>::digest(&state[..body]);
        state[body..].copy_from_slice(&digest);
        state
    };
    assert_eq!(load(&with_floor(0x03)), Ok(Some(Profile::Security)));
    let error = load(&with_floor(0x04)).unwrap_err();
    assert_eq!(error, StateError::Inconsistent("profile floor"));
    assert_eq!(
        error.to_string(),
        "card state is inconsistent: profile floor"
    );
}

/// A state file written by applet 1.7 (layout version 4, four slots): a personalised card with
/// `template(11)`, `template(13)` and `template(14)` in normal slots 0–2, `template(12)` in the
/// duress slot 3, max tries 4 and a `balanced` profile floor.
const STATE_V4: &[u8] = include_bytes!("fixtures/state-v4.bin");

#[test]
fn a_state_file_of_applet_1_7_keeps_its_four_slots_and_gains_two_empty_ones() {
    use palmgate_matcher::Profile;
    assert_eq!((STATE_V4.len(), STATE_V4[4]), (STATE_V4_LEN, 4));
    let identity = identity_of_state(STATE_V4).unwrap();
    assert_eq!(
        (
            identity.slots_used,
            identity.slot_capacity,
            identity.max_tries
        ),
        (3, 6, 4),
        "the hand's three templates counted, not the duress one"
    );
    let applet = applet_of_state(STATE_V4).unwrap();
    assert_eq!(applet.profile_floor(), Some(Profile::Balanced));

    // Every template kept its slot kind; the first verification writes layout 5.
    let issuer = IssuerPublicKey::from_bytes(&STATE_V4[54..54 + 65]).unwrap();
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    let verified = card.verify_certificate(&[issuer]).unwrap();
    for (seed, kind) in [
        (11, SlotKind::Normal),
        (13, SlotKind::Normal),
        (14, SlotKind::Normal),
        (12, SlotKind::Duress),
    ] {
        let outcome = card
            .open_session(&verified)
            .unwrap()
            .verify_palm(&capture(seed, 10))
            .unwrap();
        assert!(
            matches!(outcome, VerifyOutcome::Match { slot_kind, tries_left: 4 } if slot_kind == kind),
            "template({seed}): {outcome:?}"
        );
    }
    let stored = *card.into_transport().applet().storage().stored().unwrap();
    assert_eq!((stored.len(), stored[4]), (STATE_LEN, 5));
    // Layout 4's fields keep their offsets and values (the floor and the four slots are where
    // 1.7 put them), and slots 4 and 5 follow them empty.
    assert!(stored[5..STATE_V4_LEN - 32] == STATE_V4[5..STATE_V4_LEN - 32]);
    assert!(
        stored[STATE_V4_LEN - 32..STATE_LEN - 32]
            .iter()
            .all(|&b| b == 0)
    );
    assert_eq!(identity_of_state(&stored).unwrap(), identity);

    // A layout 5 file whose later slot is damaged is refused with a clear error.
    let mut damaged = stored;
    damaged[STATE_V4_LEN - 32] = 2;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&damaged[..STATE_LEN - 32]);
    damaged[STATE_LEN - 32..].copy_from_slice(&digest);
    assert_eq!(
        identity_of_state(&damaged).unwrap_err().to_string(),
        "card state is inconsistent: slot used flag"
    );
}

/// A card whose only templates are duress ones (applet 1.8 never writes one; `palmgate card
/// enrol --duress-slot 0` could on an earlier applet) still reads as enrolled: its identity then
/// counts every used slot, not the hand's none.
#[test]
fn a_card_holding_only_duress_templates_never_reads_as_not_enrolled() {
    let issuer = Issuer::new();
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(15))],
        None,
    );
    let mut state = *card.into_transport().applet().state_bytes();
    // Slot 0's kind byte: after magic and version (5), life-cycle (1), card id (16), card key
    // (32), issuer key (65), certificate (158), tries (2), erase counter (4) and its used flag.
    let kind = 5 + 1 + 16 + 32 + 65 + 158 + 2 + 4 + 1;
    assert_eq!(state[kind - 1..=kind], [1, SlotKind::Normal.to_byte()]);
    state[kind] = SlotKind::Duress.to_byte();
    let body = STATE_LEN - 32;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&state[..body]);
    state[body..].copy_from_slice(&digest);
    assert_eq!(identity_of_state(&state).unwrap().slots_used, 1);
}

/// The card stores the erase (with its receipt) and is pulled before its answer arrives: the
/// gate reads the receipt again in a new session.
#[test]
fn a_torn_erase_keeps_its_receipt_for_get_receipt() {
    let issuer = Issuer::new();
    let issuers = [issuer.key.public_key()];
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[
            (SlotKind::Normal, &template(1)),
            (SlotKind::Duress, &template(2)),
        ],
        None,
    );
    let mut torn = Tamper::new(card.into_transport());
    // The answer to ERASE is lost on the way back.
    torn.on_response = Some(Box::new(|command: &[u8], response: &mut Vec<u8>| {
        if command.get(1) == Some(&ins::ERASE) {
            response.clear();
        }
    }));
    let mut card = Card::open(torn).unwrap();
    let verified = card.verify_certificate(&issuers).unwrap();
    {
        let mut enrolment = card
            .open_session(&verified)
            .unwrap()
            .prove_authority(&issuer.authority)
            .unwrap();
        assert!(enrolment.erase(TIMESTAMP).is_err(), "the answer was lost");
    }
    // Power loss: the card restarts from what it stored.
    let stored = card.into_transport().inner.applet().state_bytes();
    let applet = applet_of_state(&stored[..]).unwrap();
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    assert_eq!(card.identity().slots_used, 0, "the erase was stored");
    let verified = card.verify_certificate(&issuers).unwrap();

    // Without an authority holding the erase permission the receipt stays on the card.
    let eraser_less = issuer
        .key
        .create_authority(palmgate_card::protocol::permission::ENROL);
    {
        let mut enrolment = card
            .open_session(&verified)
            .unwrap()
            .prove_authority(&eraser_less)
            .unwrap();
        assert!(matches!(
            enrolment.last_receipt(),
            Err(CardError::Status {
                status: StatusWord::SecurityStatusNotSatisfied,
                ..
            })
        ));
    }
    let mut enrolment = card
        .open_session(&verified)
        .unwrap()
        .prove_authority(&issuer.authority)
        .unwrap();
    // Another erase's timestamp: not this erase's receipt.
    assert_eq!(
        enrolment.recover_erase_receipt(TIMESTAMP + 1).unwrap(),
        None
    );
    let receipt = enrolment
        .recover_erase_receipt(TIMESTAMP)
        .unwrap()
        .expect("the receipt of the torn erase");
    let fields = ReceiptBundle {
        receipt,
        certificate: verified.certificate,
    }
    .verify(&issuers)
    .unwrap();
    assert_eq!(
        (
            fields.slots_erased,
            fields.erase_counter,
            fields.gate_timestamp
        ),
        (2, 1, TIMESTAMP)
    );
    // Still kept: reading it does not consume it.
    assert_eq!(
        enrolment.last_receipt().unwrap().unwrap().receipt,
        receipt.as_bytes()
    );
}

#[test]
fn a_card_that_never_erased_keeps_no_receipt() {
    let issuer = Issuer::new();
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut enrolment = card
        .open_session(&verified)
        .unwrap()
        .prove_authority(&issuer.authority)
        .unwrap();
    assert_eq!(enrolment.last_receipt().unwrap(), None);
    assert_eq!(enrolment.recover_erase_receipt(TIMESTAMP).unwrap(), None);
    // The session goes on: the `6A88` was authenticated.
    enrolment.set_policy(5).unwrap();
}

#[test]
fn chained_parts_only_for_instructions_that_take_data() {
    let mut transport = factory_transport();
    // Not selected: refused at the first part.
    assert_eq!(
        transport
            .transmit(&[0x90, ins::PERSONALISE, 0x01, 0x00, 0x01, 0xAA])
            .unwrap(),
        [0x69, 0x85]
    );
    selected(&mut transport);
    // GET DATA takes no data: `6884`, command chaining not supported.
    assert_eq!(
        transport
            .transmit(&[0x90, ins::GET_DATA, 0x01, 0x01, 0x01, 0xAA])
            .unwrap(),
        [0x68, 0x84]
    );
    // Undocumented instructions: `6D00`, as without chaining.
    for instruction in [0x00, 0x42, 0xB0, 0xFE] {
        assert_eq!(
            transport
                .transmit(&[0x90, instruction, 0x00, 0x00, 0x01, 0xAA])
                .unwrap(),
            [0x6D, 0x00],
            "INS {instruction:02X}"
        );
    }
    // GET RESPONSE is not chained either (CLA 90 is not its class).
    assert_eq!(
        transport
            .transmit(&[0x90, ins::GET_RESPONSE, 0x00, 0x00, 0x01, 0xAA])
            .unwrap(),
        [0x68, 0x84]
    );
    // Instructions that take data accept parts (and the chain still completes).
    for instruction in [
        ins::PERSONALISE,
        ins::OPEN_SESSION,
        ins::ERASE,
        ins::GET_RECEIPT,
    ] {
        assert_eq!(
            transport
                .transmit(&[0x90, instruction, 0x00, 0x00, 0x01, 0xAA])
                .unwrap(),
            [0x90, 0x00],
            "INS {instruction:02X}"
        );
        // End the chain (the last part answers whatever the command answers).
        let last = transport
            .transmit(&[0x80, instruction, 0x00, 0x00, 0x01, 0xAA])
            .unwrap();
        assert_ne!(last[last.len() - 2..], [0x90, 0x00]);
    }
    // A GET DATA identity still works after the refused parts.
    let identity = transport.transmit(&[0x80, 0xCA, 0x01, 0x01, 0x00]).unwrap();
    assert_eq!(identity[identity.len() - 2..], [0x90, 0x00]);
}

/// Secure command with any plaintext (to send more than the card holds).
struct Oversized(usize);

impl SecureCommand for Oversized {
    const NAME: &'static str = "OVERSIZED";
    const INS: u8 = ins::ENROL;
    type Output = (StatusWord, usize);

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(vec![0x5A; self.0])
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<Self::Output, CardError> {
        Ok((status, plaintext.len()))
    }
}

/// Secure data over the 1476 bytes the card holds, as one extended APDU and as a chain of short
/// ones: the `6700` is encrypted and authenticated like every answer to a secure command, and the
/// session goes on.
#[test]
fn wrong_length_of_over_long_secure_data_is_encrypted() {
    for mode in [LengthMode::Extended, LengthMode::Short] {
        let issuer = Issuer::new();
        let card = enrolled_card(
            factory_transport(),
            &issuer,
            &[(SlotKind::Normal, &template(1))],
            None,
        );
        let mut tapped = Tamper::new(card.into_transport());
        let (sender, answers) = std::sync::mpsc::channel();
        tapped.on_response = Some(Box::new(move |command: &[u8], response: &mut Vec<u8>| {
            if command.get(1) == Some(&ins::ENROL) {
                sender.send(response.clone()).unwrap();
            }
        }));
        let mut card = Card::open_with_mode(tapped, mode).unwrap();
        let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
        let mut session = card.open_session(&verified).unwrap();
        for length in [MAX_PLUS_ONE, MAX_PLUS_ONE + 300, 2000] {
            assert_eq!(
                session.execute(&Oversized(length)).unwrap(),
                (StatusWord::WrongLength, 0),
                "{mode:?} {length}"
            );
        }
        let last = answers.try_iter().last().unwrap();
        assert_eq!(last.len(), TAG_LEN + 2, "{mode:?}: tag and SW only");
        assert_eq!(last[TAG_LEN..], [0x67, 0x00]);
        // Both sides still count alike: the next command authenticates.
        assert!(matches!(
            session.verify_palm(&capture(1, 10)).unwrap(),
            VerifyOutcome::Match { .. }
        ));
    }
}

/// Plaintext of 1461 bytes: with its tag, one byte over the 1476 the card holds.
const MAX_PLUS_ONE: usize = palmgate_card::protocol::MAX_COMMAND_DATA + 1 - TAG_LEN;
