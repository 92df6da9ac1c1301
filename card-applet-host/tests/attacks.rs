//! Attacks on the card protocol, each of which must be refused.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use common::{Issuer, Tamper, capture, enrolled_card, factory_transport, template};
use palmgate_card::host::commands::{Enrol, ResetRetryCounter, SecureCommand, SetPolicy};
use palmgate_card::host::{Card, CardError, VerifyOutcome};
use palmgate_card::protocol::cert::{AuthorityCertificate, CertError};
use palmgate_card::protocol::{
    SlotKind, StatusWord, TEMPLATE_LEN, ins, permission, verify_profile,
};
use zeroize::Zeroizing;

#[test]
fn certificate_from_an_unknown_issuer_is_refused() {
    let (issuer, other) = (Issuer::new(), Issuer::new());
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let result = card.verify_certificate(&[other.key.public_key()]);
    assert!(
        matches!(
            result,
            Err(CardError::Certificate(CertError::UnknownIssuer))
        ),
        "{result:?}"
    );
}

#[test]
fn certificate_claiming_a_configured_issuer_but_signed_by_another_is_refused() {
    let (issuer, forger) = (Issuer::new(), Issuer::new());
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let genuine = card.certificate().unwrap();
    // The forger re-signs the card's certificate and patches in the real issuer's key id.
    let forged = forger
        .key
        .certify_card(&genuine.card_id(), &genuine.card_public_key());
    let mut forged_bytes = forged.as_bytes().to_vec();
    forged_bytes[86..94].copy_from_slice(&issuer.key.public_key().key_id());
    let mut tamper = Tamper::new(card.into_transport());
    tamper.on_response = Some(Box::new(move |command, response| {
        if command[1] == ins::GET_DATA {
            response[..forged_bytes.len()].copy_from_slice(&forged_bytes);
        }
    }));
    let mut card = Card::open(tamper).unwrap();
    let result = card.verify_certificate(&[issuer.key.public_key()]);
    assert!(
        matches!(result, Err(CardError::Certificate(CertError::BadSignature))),
        "{result:?}"
    );
}

/// Card B presents card A's (valid) certificate and identity: it cannot derive the session keys.
#[test]
fn cloned_certificate_without_the_private_key_is_refused() {
    let issuer = Issuer::new();
    let mut card_a = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let certificate_a = card_a.certificate().unwrap();
    let identity_a = *card_a.identity();
    let card_b = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );

    let mut clone = Tamper::new(card_b.into_transport());
    clone.on_response = Some(Box::new(move |command, response| match command[1] {
        ins::SELECT => response[..16].copy_from_slice(&identity_a.card_id),
        ins::GET_DATA if command[3] == 0x02 => {
            response[..158].copy_from_slice(certificate_a.as_bytes())
        }
        _ => {}
    }));
    let mut card = Card::open(clone).unwrap();
    let verified = card
        .verify_certificate(&[issuer.key.public_key()])
        .expect("the cloned certificate itself is valid");
    let result = card.open_session(&verified);
    assert!(
        matches!(result, Err(CardError::Authentication)),
        "{result:?}"
    );
}

/// A recorded "match" answer from an earlier session is replayed in a later one.
#[test]
fn replayed_response_from_an_earlier_session_is_refused() {
    let issuer = Issuer::new();
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let recorded: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let replay = Rc::new(RefCell::new(false));
    let mut tamper = Tamper::new(card.into_transport());
    let (recorded_hook, replay_hook) = (recorded.clone(), replay.clone());
    tamper.on_response = Some(Box::new(move |command, response| {
        if command[1] == ins::VERIFY_PALM {
            if *replay_hook.borrow() {
                if let Some(old) = recorded_hook.borrow().as_ref() {
                    *response = old.clone();
                }
            } else {
                *recorded_hook.borrow_mut() = Some(response.clone());
            }
        }
    }));
    let mut card = Card::open(tamper).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    {
        let mut session = card.open_session(&verified).unwrap();
        assert!(matches!(
            session.verify_palm(&capture(1, 5)).unwrap(),
            VerifyOutcome::Match { .. }
        ));
    }
    *replay.borrow_mut() = true;
    let mut session = card.open_session(&verified).unwrap();
    let result = session.verify_palm(&template(99));
    assert!(
        matches!(result, Err(CardError::Authentication)),
        "{result:?}"
    );
    // The session is closed after the failure.
    assert!(matches!(
        session.verify_palm(&capture(1, 5)),
        Err(CardError::SessionClosed)
    ));
}

/// A replayed command in the same session (the counter has moved on) is refused by the card and
/// closes its session.
#[test]
fn replayed_command_is_refused_by_the_card() {
    let issuer = Issuer::new();
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        Some(5),
    );
    let last: Rc<RefCell<Option<Vec<u8>>>> = Rc::default();
    let last_hook = last.clone();
    let mut tamper = Tamper::new(card.into_transport());
    tamper.on_command = Some(Box::new(move |command| {
        if command[1] == ins::VERIFY_PALM {
            let mut last = last_hook.borrow_mut();
            match last.as_ref() {
                Some(first) => *command = first.clone(),
                None => *last = Some(command.clone()),
            }
        }
    }));
    let mut card = Card::open(tamper).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&template(50)).unwrap(),
        VerifyOutcome::NoMatch { tries_left: 4 }
    ));
    let result = session.verify_palm(&template(51));
    assert!(
        matches!(result, Err(CardError::Authentication)),
        "{result:?}"
    );
    drop(session);
    assert!(!card.transport_mut().inner.applet().session_open());
    // The replay did not cost a try.
    assert_eq!(card.refresh_identity().unwrap().tries_left, 4);
}

fn flip_test(flip_command: bool) {
    let issuer = Issuer::new();
    let mut baseline = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let verified = baseline
        .verify_certificate(&[issuer.key.public_key()])
        .unwrap();
    // Every byte of the VERIFY PALM command (header, length, ciphertext, tag; not Le, which only
    // bounds the answer length) or of its response (ciphertext, tag, status word).
    let positions = if flip_command {
        4 + 3 + TEMPLATE_LEN + 16
    } else {
        3 + 16 + 2
    };
    let mut transport = baseline.into_transport();
    for position in 0..positions {
        for bit in [0x01u8, 0x80] {
            let mut tamper = Tamper::new(&mut transport);
            if flip_command {
                tamper.on_command = Some(Box::new(move |command| {
                    if command[1] == ins::VERIFY_PALM {
                        command[position] ^= bit;
                    }
                }));
            } else {
                tamper.on_response = Some(Box::new(move |command, response| {
                    if command[1] == ins::VERIFY_PALM {
                        response[position] ^= bit;
                    }
                }));
            }
            let mut card = Card::open(tamper).unwrap();
            let mut session = card.open_session(&verified).unwrap();
            let result = session.verify_palm(&capture(1, 5));
            assert!(
                result.is_err(),
                "flipped bit {bit:#04x} at byte {position} was accepted: {result:?}"
            );
        }
        // Reset the counter between rounds so that tampered tries never block the card.
        let mut card = Card::open(&mut transport).unwrap();
        let session = card.open_session(&verified).unwrap();
        session
            .prove_authority(&issuer.authority)
            .unwrap()
            .reset_retry_counter()
            .unwrap();
    }
}

/// Every bit position (two bits per byte) of an encrypted VERIFY PALM command.
#[test]
fn flipped_bit_in_an_encrypted_command_is_refused() {
    flip_test(true);
}

/// Every byte (two bits each) of the encrypted VERIFY PALM response, status word included.
#[test]
fn flipped_bit_in_an_encrypted_response_is_refused() {
    flip_test(false);
}

#[test]
fn enrolment_without_the_issuer_authority_is_refused() {
    let (issuer, other) = (Issuer::new(), Issuer::new());
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();

    // Plain session, no authority: the raw commands are refused by the card.
    let mut session = card.open_session(&verified).unwrap();
    let enrol = Enrol {
        slot: 1,
        kind: SlotKind::Normal,
        template: Zeroizing::new(template(66).encode()),
    };
    assert!(matches!(
        session.execute(&enrol),
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));
    assert!(matches!(
        session.execute(&ResetRetryCounter),
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));
    assert!(matches!(
        session.execute(&SetPolicy { max_tries: 10 }),
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));
    drop(session);

    // An authority certified by another issuer.
    let session = card.open_session(&verified).unwrap();
    let result = session.prove_authority(&other.authority);
    assert!(matches!(
        result,
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));

    // Our issuer's certificate, but the attacker holds another key (signature does not verify).
    let session = card.open_session(&verified).unwrap();
    let stolen_certificate = *issuer.authority.certificate();
    let result = session.prove_authority(&other.authority.with_certificate(stolen_certificate));
    assert!(matches!(
        result,
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));

    // A proof from an earlier session cannot be replayed: its transcript differs.
    let session = card.open_session(&verified).unwrap();
    let old_proof = issuer.authority.prove(session.transcript());
    drop(session);
    let mut session = card.open_session(&verified).unwrap();
    let replayed = palmgate_card::host::commands::ProveAuthority {
        certificate: stolen_certificate,
        signature: old_proof,
    };
    assert!(matches!(
        session.execute(&replayed),
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));
    assert!(matches!(
        session.execute(&enrol),
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));
    drop(session);

    // An authority without the ENROL permission.
    let limited = issuer.key.create_authority(permission::RESET_RETRY_COUNTER);
    let session = card.open_session(&verified).unwrap();
    let mut enrolment = session.prove_authority(&limited).unwrap();
    assert!(matches!(
        enrolment.enrol(1, SlotKind::Normal, &template(66)),
        Err(CardError::Status {
            status: StatusWord::SecurityStatusNotSatisfied,
            ..
        })
    ));
    enrolment.reset_retry_counter().unwrap();
    drop(enrolment);
    assert_eq!(card.refresh_identity().unwrap().slots_used, 1);
    let _ = AuthorityCertificate::decode(stolen_certificate.as_bytes()).unwrap();
}

#[test]
fn probe_of_another_algorithm_is_refused_without_spending_a_try() {
    let issuer = Issuer::new();
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(1))],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut probe = capture(1, 0).encode();
    probe[1] = 0x02;
    let mut session = card.open_session(&verified).unwrap();
    let result = session.verify_palm_encoded(&probe);
    assert!(
        matches!(
            result,
            Err(CardError::Status {
                status: StatusWord::FunctionNotSupported,
                ..
            })
        ),
        "{result:?}"
    );
    // Malformed payload with the right algorithm: refused as wrong data.
    // Code bits 010 in every cell: not an orientation.
    let mut garbage = [0u8; TEMPLATE_LEN];
    garbage[..4].copy_from_slice(&[1, 1, 0, 0]);
    garbage[4 + 72..4 + 144].fill(0xFF);
    garbage[4 + 216..].fill(0xFF);
    let result = session.verify_palm_encoded(&garbage);
    assert!(
        matches!(
            result,
            Err(CardError::Status {
                status: StatusWord::WrongData,
                ..
            })
        ),
        "{result:?}"
    );
    drop(session);
    assert_eq!(card.refresh_identity().unwrap().tries_left, 5);
}

/// A secure command with any P1 and P2, whose decrypted answer we inspect.
struct Raw<const INS: u8> {
    p1: u8,
    p2: u8,
    plaintext: Vec<u8>,
}

impl<const I: u8> SecureCommand for Raw<I> {
    const NAME: &'static str = "RAW";
    const INS: u8 = I;
    type Output = (StatusWord, Vec<u8>);

    fn p1_p2(&self) -> (u8, u8) {
        (self.p1, self.p2)
    }

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.plaintext.clone())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<Self::Output, CardError> {
        Ok((status, plaintext.to_vec()))
    }
}

/// Every 8-byte run of the enrolled templates' payloads.
fn template_windows(templates: &[[u8; TEMPLATE_LEN]]) -> HashSet<[u8; 8]> {
    templates
        .iter()
        .flat_map(|template| {
            template[4..]
                .windows(8)
                .map(|w| <[u8; 8]>::try_from(w).unwrap())
        })
        .collect()
}

fn reveals(answer: &[u8], windows: &HashSet<[u8; 8]>) -> bool {
    answer
        .windows(8)
        .any(|w| windows.contains(<&[u8; 8]>::try_from(w).unwrap()))
}

const SELECT_APDU: [u8; 15] = [
    0x00, 0xA4, 0x04, 0x00, 10, 0xF0, b'p', b'a', b'l', b'm', b'g', b'a', b't', b'e', 1,
];

/// Both classes × every INS × (every P1 with P2 00/01/02, and every P2 with P1 00/01/04), without
/// and with data, in the clear; then every secure instruction × P1/P2 inside an authorised
/// session, decrypted. No answer ever contains 8 consecutive bytes of an enrolled template.
#[test]
fn instruction_scan_never_reveals_template_bytes() {
    let issuer = Issuer::new();
    let enrolled = [template(70), template(71)];
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[
            (SlotKind::Normal, &enrolled[0]),
            (SlotKind::Duress, &enrolled[1]),
        ],
        None,
    );
    let encoded: Vec<[u8; TEMPLATE_LEN]> = enrolled.iter().map(|t| t.encode()).collect();
    let windows = template_windows(&encoded);
    assert!(
        reveals(&encoded[1][100..120], &windows),
        "the detector must detect"
    );
    let mut transport = card.into_transport();
    let pairs: Vec<(u8, u8)> = (0..=255u8)
        .flat_map(|a| [(a, 0), (a, 1), (a, 2), (0, a), (1, a), (4, a)])
        .collect();
    let mut checked = 0usize;
    use palmgate_card::host::CardTransport;
    transport.transmit(&SELECT_APDU).unwrap();
    for class in [0x00u8, 0x80] {
        for instruction in 0..=255u8 {
            for &(p1, p2) in &pairs {
                for apdu in [
                    vec![class, instruction, p1, p2, 0x00],
                    vec![class, instruction, p1, p2, 2, 0, 0, 0],
                ] {
                    let response = transport.transmit(&apdu).unwrap();
                    assert!(!reveals(&response, &windows), "{apdu:02X?}");
                    checked += 1;
                    if instruction == ins::SELECT {
                        transport.transmit(&SELECT_APDU).unwrap();
                    }
                }
            }
        }
    }
    assert!(checked > 700_000, "{checked}");
    // Still enrolled (the identity counts the hand's template; the duress one is not shown).
    assert_eq!(transport.applet().identity().slots_used, 1);

    let mut card = Card::open(&mut transport).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let plaintexts = [
        Vec::new(),
        vec![0],
        encoded[0].to_vec(),
        encoded[1].to_vec(),
    ];
    macro_rules! scan {
        ($ins:expr) => {{
            let session = card.open_session(&verified).unwrap();
            let mut enrolment = session.prove_authority(&issuer.authority).unwrap();
            for &(p1, p2) in &pairs {
                for plaintext in &plaintexts {
                    let raw = Raw::<{ $ins }> {
                        p1,
                        p2,
                        plaintext: plaintext.clone(),
                    };
                    let (status, answer) = enrolment.session().execute(&raw).unwrap();
                    assert!(
                        !reveals(&answer, &windows),
                        "INS {:02X} {p1:02X}{p2:02X}",
                        $ins
                    );
                    // VERIFY PALM takes a profile code in P1 (P2 must be 00).
                    let names_profile =
                        $ins == ins::VERIFY_PALM && p2 == 0 && verify_profile::decode(p1).is_some();
                    if (p1, p2) != (0, 0) && !names_profile {
                        assert_eq!(status, StatusWord::IncorrectP1P2);
                    }
                }
            }
        }};
    }
    scan!(ins::VERIFY_PALM);
    scan!(ins::PROVE_AUTHORITY);
    scan!(ins::ENROL);
    scan!(ins::SET_POLICY);
    scan!(ins::RESET_RETRY_COUNTER);
    scan!(ins::ERASE);
    // The plaintexts above have the wrong lengths for ENROL / SET POLICY / ERASE: nothing changed.
    // Still enrolled (the identity counts the hand's template; the duress one is not shown).
    assert_eq!(transport.applet().identity().slots_used, 1);
}
