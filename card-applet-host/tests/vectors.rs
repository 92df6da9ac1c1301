//! Protocol test vectors. The values live in `docs/applet-protocol.md` (between the
//! `vectors:begin` / `vectors:end` markers); this test recomputes every one of them from the
//! fixed inputs with the crate's own code and compares.
//! `PALMGATE_PRINT_VECTORS=1 cargo test -p palmgate-card --test vectors -- --nocapture` prints them.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use p256::ecdsa::SigningKey;
use palmgate_card::applet::{Applet, Clock, ResponseBuffer, STATE_LEN, Storage, StorageFailed};
use palmgate_card::host::apdu::{Command, Data};
use palmgate_card::host::apdu::{LengthMode, encode};
use palmgate_card::host::commands::{
    GetProfileFloor, OpenSession, PlainCommand, SecureCommand, Select, SetProfileFloor,
};
use palmgate_card::host::vpcd::ATR;
use palmgate_card::protocol::cert::{
    AuthorityCertificate, CardCertificate, encode_public_key, sign,
};
use palmgate_card::protocol::identity::CardIdentity;
use palmgate_card::protocol::meal::{
    MealReceiptFields, MealRequest, SignedMealReceipt, encode_allowance_used,
};
use palmgate_card::protocol::receipt::{DeletionReceipt, ReceiptFields};
use palmgate_card::protocol::session::{
    DIRECTION_COMMAND, DIRECTION_RESPONSE, SecureChannel, SessionKeys, authority_message, ecdh,
    nonce_bytes, transcript_hash,
};
use palmgate_card::protocol::{Lifecycle, StatusWord, decision, ins, permission, verify_profile};
use palmgate_matcher::Profile;
use palmgate_matcher::template::{CELLS, Template};

/// The meal period of the vectors: day 20428 (2025-12-06) × 16 + period 1.
const MEAL_PERIOD: u32 = 20_428 * 16 + 1;

fn bytes<const N: usize>(start: u8) -> [u8; N] {
    core::array::from_fn(|i| start.wrapping_add(i as u8))
}

fn key(start: u8) -> SigningKey {
    SigningKey::from_slice(&bytes::<32>(start)).unwrap()
}

fn compute() -> BTreeMap<&'static str, String> {
    let mut v = BTreeMap::new();
    let card_id: [u8; 16] = bytes(0x00);
    let card_key = key(0x01);
    let gate_key = key(0x21);
    let issuer_key = key(0x41);
    let authority_key = key(0x61);
    let gate_nonce: [u8; 16] = bytes(0xA0);
    let card_nonce: [u8; 16] = bytes(0xB0);
    let card_public = encode_public_key(card_key.verifying_key());
    let gate_public = encode_public_key(gate_key.verifying_key());
    let issuer_public = encode_public_key(issuer_key.verifying_key());

    v.insert(
        "select_apdu",
        hex::encode(&*encode(&Select.command(), LengthMode::Extended).unwrap()[0]),
    );
    let identity = CardIdentity {
        card_id,
        applet_version: palmgate_card::protocol::APPLET_VERSION,
        lifecycle: Lifecycle::Personalised,
        algorithm: 1,
        slots_used: 1,
        slot_capacity: palmgate_card::protocol::SLOT_COUNT as u8,
        tries_left: 5,
        max_tries: 5,
    };
    v.insert("identity", hex::encode(identity.encode()));
    v.insert("card_public_key", hex::encode(card_public));
    v.insert("gate_public_key", hex::encode(gate_public));
    v.insert("issuer_public_key", hex::encode(issuer_public));
    let certificate = CardCertificate::issue(&card_id, &card_public, &issuer_key);
    v.insert("card_certificate", hex::encode(certificate.as_bytes()));
    let authority = AuthorityCertificate::issue(
        &encode_public_key(authority_key.verifying_key()),
        permission::ALL,
        &issuer_key,
    );
    v.insert("authority_certificate", hex::encode(authority.as_bytes()));

    let open = OpenSession {
        gate_public_key: gate_public,
        gate_nonce,
    };
    v.insert(
        "open_session_apdu",
        hex::encode(&*encode(&open.command(), LengthMode::Extended).unwrap()[0]),
    );
    let transcript = transcript_hash(
        &card_id,
        &card_public,
        &gate_public,
        &gate_nonce,
        &card_nonce,
    );
    v.insert("transcript", hex::encode(transcript));
    let shared = ecdh(
        card_key.as_nonzero_scalar(),
        &p256::PublicKey::from(gate_key.verifying_key()),
    );
    let shared_gate = ecdh(
        gate_key.as_nonzero_scalar(),
        &p256::PublicKey::from(card_key.verifying_key()),
    );
    assert_eq!(*shared, *shared_gate);
    v.insert("ecdh_x", hex::encode(*shared));
    let keys = SessionKeys::derive(&shared, &transcript);
    v.insert("command_key", hex::encode(keys.command));
    v.insert("response_key", hex::encode(keys.response));
    let mut card_side = SecureChannel::new(&keys);
    let mut gate_side = SecureChannel::new(&keys);
    let confirmation = card_side.confirmation(&transcript);
    gate_side
        .check_confirmation(&transcript, &confirmation)
        .unwrap();
    v.insert(
        "open_session_response",
        hex::encode([&card_nonce[..], &confirmation, &[0x90, 0x00]].concat()),
    );

    let probe = Template::from_cells(&[0; CELLS], &[true; CELLS])
        .unwrap()
        .encode();
    let mut body = probe.to_vec();
    let header = [ins::VERIFY_PALM, 0, 0];
    let tag = gate_side.seal_command(header, &mut body);
    body.extend_from_slice(&tag);
    let mut apdu = vec![0x80, ins::VERIFY_PALM, 0, 0, 0];
    apdu.extend_from_slice(&(body.len() as u16).to_be_bytes());
    apdu.extend_from_slice(&body);
    apdu.extend_from_slice(&[0x01, 0x00]);
    v.insert("verify_palm_apdu", hex::encode(&apdu));
    let mut decision_bytes = [decision::MATCH, 0x00, 5];
    let tag = card_side.seal_response(header, StatusWord::Success.to_bytes(), &mut decision_bytes);
    v.insert(
        "verify_palm_response",
        hex::encode([&decision_bytes[..], &tag, &[0x90, 0x00]].concat()),
    );

    let proof = sign(&authority_key, &authority_message(&transcript));
    v.insert("authority_proof", hex::encode(proof));
    let receipt = DeletionReceipt::sign(
        &ReceiptFields {
            card_id,
            erase_counter: 1,
            gate_timestamp: 1_764_000_000,
            slots_erased: 1,
            commitment: bytes(0xC0),
        },
        &card_key,
    );
    v.insert("deletion_receipt", hex::encode(receipt.as_bytes()));

    // The counters: the key confirmation is response 0, so the first secure command is command 0
    // and its answer response 1 (the VERIFY PALM exchange above).
    v.insert(
        "first_command_nonce",
        hex::encode(nonce_bytes(DIRECTION_COMMAND, 0)),
    );
    v.insert(
        "first_response_nonce",
        hex::encode(nonce_bytes(DIRECTION_RESPONSE, 1)),
    );
    // GET RECEIPT as the session's second command (command 1, response 2), as the host sends it
    // (Le 256, short `00`); the card answers `0E || receipt` encrypted.
    let header = [ins::GET_RECEIPT, 0, 0];
    let tag = gate_side.seal_command(header, &mut []);
    let get_receipt = Command {
        cla: 0x80,
        ins: ins::GET_RECEIPT,
        p1: 0,
        p2: 0,
        data: Data::Plain(tag.to_vec()),
        le: Some(256),
    };
    v.insert(
        "get_receipt_apdu",
        hex::encode(&*encode(&get_receipt, LengthMode::Extended).unwrap()[0]),
    );
    let mut kept = [&[ins::ERASE][..], receipt.as_bytes()].concat();
    let tag = card_side.seal_response(header, StatusWord::Success.to_bytes(), &mut kept);
    v.insert(
        "get_receipt_response",
        hex::encode([&kept[..], &tag, &[0x90, 0x00]].concat()),
    );
    // Secure data over 1476 bytes (an ENROL as the third command): counted as command 2, answered
    // with `6700` encrypted as response 3 (tag only).
    let header = [ins::ENROL, 0, 0];
    let tag = card_side.seal_response(header, StatusWord::WrongLength.to_bytes(), &mut []);
    v.insert(
        "oversized_enrol_response",
        hex::encode([&tag[..], &[0x67, 0x00]].concat()),
    );
    // VERIFY PALM naming the security profile (P1 = 03) as command 3 (the over-long ENROL was
    // command 2 on the gate's side too), the same probe; answered "no match, 4 tries left"
    // (`00 FF 04`, `63C4`) as response 4.
    gate_side.seal_command([ins::ENROL, 0, 0], &mut []);
    let security = verify_profile::encode(Profile::Security);
    assert_eq!(security, 0x03);
    let header = [ins::VERIFY_PALM, security, 0];
    let mut body = probe.to_vec();
    let tag = gate_side.seal_command(header, &mut body);
    body.extend_from_slice(&tag);
    let verify_security = Command {
        cla: 0x80,
        ins: ins::VERIFY_PALM,
        p1: security,
        p2: 0,
        data: Data::Plain(body),
        le: Some(256),
    };
    v.insert(
        "verify_palm_security_apdu",
        hex::encode(&*encode(&verify_security, LengthMode::Extended).unwrap()[0]),
    );
    let no_match = StatusWord::VerifyFailed { tries_left: 4 };
    assert_eq!(no_match.to_bytes(), [0x63, 0xC4]);
    let mut decision_bytes = [decision::NO_MATCH, decision::NO_SLOT, 4];
    let tag = card_side.seal_response(header, no_match.to_bytes(), &mut decision_bytes);
    v.insert(
        "verify_palm_security_response",
        hex::encode([&decision_bytes[..], &tag, &no_match.to_bytes()].concat()),
    );
    // Command 4: P1 = 04 names no profile; `6A86` encrypted (tag only) as response 5.
    assert_eq!(verify_profile::decode(0x04), None);
    let header = [ins::VERIFY_PALM, 0x04, 0];
    let tag = card_side.seal_response(header, StatusWord::IncorrectP1P2.to_bytes(), &mut []);
    v.insert(
        "verify_palm_unknown_profile_response",
        hex::encode([&tag[..], &[0x6A, 0x86]].concat()),
    );
    // Command 5: REDEEM MEAL as the host sends it (Le 256), the gate having sealed command 4
    // (the unknown profile); the card answers the signed meal receipt, encrypted, as response 6.
    let meal_request = MealRequest {
        period: MEAL_PERIOD,
        allowance: 1,
        gate_time: 1_764_000_000,
    };
    v.insert("meal_request", hex::encode(meal_request.encode()));
    let meal_receipt = SignedMealReceipt::sign(
        &MealReceiptFields {
            card_id,
            period: MEAL_PERIOD,
            count: 1,
            allowance: 1,
            gate_time: 1_764_000_000,
            receipt_counter: 1,
        },
        &card_key,
    );
    v.insert("meal_receipt", hex::encode(meal_receipt.as_bytes()));
    gate_side.seal_command([ins::VERIFY_PALM, 0x04, 0], &mut probe.to_vec());
    let header = [ins::REDEEM_MEAL, 0, 0];
    let mut body = meal_request.encode().to_vec();
    let tag = gate_side.seal_command(header, &mut body);
    body.extend_from_slice(&tag);
    let redeem = Command {
        cla: 0x80,
        ins: ins::REDEEM_MEAL,
        p1: 0,
        p2: 0,
        data: Data::Plain(body),
        le: Some(256),
    };
    v.insert(
        "redeem_meal_apdu",
        hex::encode(&*encode(&redeem, LengthMode::Extended).unwrap()[0]),
    );
    let mut answer = meal_receipt.as_bytes().to_vec();
    let tag = card_side.seal_response(header, StatusWord::Success.to_bytes(), &mut answer);
    v.insert(
        "redeem_meal_response",
        hex::encode([&answer[..], &tag, &[0x90, 0x00]].concat()),
    );
    // The same request again (command 6, response 7): allowance used, `count 01 | allowance 01`
    // with `6984`, nothing counted.
    let mut answer = encode_allowance_used(1, 1).to_vec();
    let tag = card_side.seal_response(
        header,
        StatusWord::ReferenceDataNotUsable.to_bytes(),
        &mut answer,
    );
    v.insert(
        "allowance_used_response",
        hex::encode([&answer[..], &tag, &[0x69, 0x84]].concat()),
    );
    // Command 7 (the gate having sealed command 6, the repeated REDEEM MEAL): VERIFY PALM of the
    // probe cut at three poses (applet 1.4) under P1 02 (`balanced`): the probe, then every cell
    // at orientation 1, then at 2, concatenated (876 bytes, 892 with the tag: one extended APDU,
    // or four chained short ones); answered "match, normal slot, 5 tries left" as response 8.
    gate_side.seal_command([ins::REDEEM_MEAL, 0, 0], &mut meal_request.encode());
    let balanced = verify_profile::encode(Profile::Balanced);
    let header = [ins::VERIFY_PALM, balanced, 0];
    let mut body: Vec<u8> = [0u8, 1, 2]
        .iter()
        .flat_map(|&orientation| {
            Template::from_cells(&[orientation; CELLS], &[true; CELLS])
                .unwrap()
                .encode()
        })
        .collect();
    assert_eq!(&body[..probe.len()], &probe[..]);
    assert_eq!(body.len(), 3 * probe.len());
    let tag = gate_side.seal_command(header, &mut body);
    body.extend_from_slice(&tag);
    let verify_posed = Command {
        cla: 0x80,
        ins: ins::VERIFY_PALM,
        p1: balanced,
        p2: 0,
        data: Data::Plain(body),
        le: Some(256),
    };
    let apdus = encode(&verify_posed, LengthMode::Extended).unwrap();
    assert_eq!(apdus.len(), 1);
    v.insert("verify_palm_posed_apdu", hex::encode(&*apdus[0]));
    let mut decision_bytes = [decision::MATCH, 0x00, 5];
    let tag = card_side.seal_response(header, StatusWord::Success.to_bytes(), &mut decision_bytes);
    v.insert(
        "verify_palm_posed_response",
        hex::encode([&decision_bytes[..], &tag, &[0x90, 0x00]].concat()),
    );
    // Command 8: PROVE AUTHORITY (the authority certificate and its proof above), answered
    // `9000` (tag only) as response 9; then command 9: SET PROFILE FLOOR `03` (`security`, applet
    // 1.5), answered `9000` (tag only) as response 10.
    let header = [ins::PROVE_AUTHORITY, 0, 0];
    gate_side.seal_command(header, &mut [authority.as_bytes(), &proof[..]].concat());
    card_side.seal_response(header, StatusWord::Success.to_bytes(), &mut []);
    let set_floor = SetProfileFloor {
        floor: Some(Profile::Security),
    };
    let header = [ins::SET_PROFILE_FLOOR, 0, 0];
    let mut body = set_floor.plaintext().to_vec();
    assert_eq!(body, [0x03]);
    let tag = gate_side.seal_command(header, &mut body);
    body.extend_from_slice(&tag);
    let set_floor_apdu = Command {
        cla: 0x80,
        ins: SetProfileFloor::INS,
        p1: 0,
        p2: 0,
        data: Data::Plain(body),
        le: Some(256),
    };
    v.insert(
        "set_profile_floor_apdu",
        hex::encode(&*encode(&set_floor_apdu, LengthMode::Extended).unwrap()[0]),
    );
    let tag = card_side.seal_response(header, StatusWord::Success.to_bytes(), &mut []);
    v.insert(
        "set_profile_floor_response",
        hex::encode([&tag[..], &[0x90, 0x00]].concat()),
    );
    // GET DATA profile floor (plain), answered `03 9000` by that card.
    v.insert(
        "get_profile_floor_apdu",
        hex::encode(&*encode(&GetProfileFloor.command(), LengthMode::Extended).unwrap()[0]),
    );
    v.insert("atr", hex::encode(ATR));
    v
}

fn documented() -> BTreeMap<String, String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/applet-protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/applet-protocol.md");
    const BEGIN: &str = "<!-- vectors:begin -->";
    let start = doc.find(BEGIN).expect("vectors:begin marker") + BEGIN.len();
    let end = doc
        .find("<!-- vectors:end -->")
        .expect("vectors:end marker");
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in doc[start..end].lines() {
        let line = line.trim();
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_owned();
            out.insert(name.clone(), value.trim().to_owned());
            current = Some(name);
        } else if !line.is_empty() && line.chars().all(|c| c.is_ascii_hexdigit()) {
            // Continuation line of a long value.
            if let Some(name) = &current {
                out.entry(name.clone()).or_default().push_str(line);
            }
        } else {
            current = None;
        }
    }
    out
}

#[test]
fn documented_vectors_match_the_implementation() {
    let computed = compute();
    if std::env::var_os("PALMGATE_PRINT_VECTORS").is_some() {
        for (name, value) in &computed {
            println!("{name}:");
            for chunk in value.as_bytes().chunks(64) {
                println!("  {}", std::str::from_utf8(chunk).unwrap());
            }
        }
    }
    let documented = documented();
    for (name, value) in &computed {
        assert_eq!(
            documented.get(*name),
            Some(value),
            "vector {name} differs from docs/applet-protocol.md"
        );
    }
    assert_eq!(
        documented.len(),
        computed.len(),
        "the doc has vectors the test does not check"
    );
}

/// The applet itself answers the documented OPEN SECURE SESSION and VERIFY PALM exchange
/// byte for byte when its key and randomness are the vectors' ones.
#[test]
fn applet_reproduces_the_documented_session() {
    struct Fixed(Vec<u8>);
    impl rand_core::TryRng for Fixed {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            unreachable!()
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            let n = dst.len();
            dst.copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for Fixed {}
    struct NoStore;
    impl Storage for NoStore {
        fn store(&mut self, _: &[u8; STATE_LEN]) -> Result<(), StorageFailed> {
            Ok(())
        }
    }
    struct Zero;
    impl Clock for Zero {
        fn now_ms(&mut self) -> u64 {
            0
        }
    }
    let computed = compute();
    let hex_of = |name: &str| hex::decode(&computed[name]).unwrap();
    // Randomness: the card key scalar at GENERATE KEY, then the card nonce at OPEN SESSION.
    let mut random = bytes::<32>(0x01).to_vec();
    random.extend_from_slice(&bytes::<16>(0xB0));
    let mut applet = Applet::factory(NoStore, Fixed(random), Zero);
    let mut response = ResponseBuffer::new();
    let mut send = |applet: &mut Applet<NoStore, Fixed, Zero>, apdu: &[u8]| {
        let status = applet.process(apdu, &mut response);
        [response.as_slice(), &status.to_bytes()].concat()
    };
    send(&mut applet, &hex_of("select_apdu"));
    let generated = send(
        &mut applet,
        &[&[0x80, 0x50, 0x01, 0x00, 0x10][..], &bytes::<16>(0), &[0]].concat(),
    );
    assert_eq!(hex::encode(&generated[..65]), computed["card_public_key"]);
    let install = [
        &[0x80, 0x50, 0x02, 0x00, 0xDF][..],
        &hex_of("issuer_public_key"),
        &hex_of("card_certificate"),
    ]
    .concat();
    assert_eq!(send(&mut applet, &install), [0x90, 0x00]);
    assert_eq!(
        hex::encode(send(&mut applet, &hex_of("open_session_apdu"))),
        computed["open_session_response"]
    );
}

/// The applet itself signs the documented meal receipt when its card key and card id are the
/// vectors' ones (RFC 6979 signatures are deterministic), served through the host client after
/// a palm match.
#[test]
fn applet_signs_the_documented_meal_receipt() {
    use palmgate_card::host::issuer::IssuerKey;
    use palmgate_card::host::platform::{MemoryStorage, SystemClock};
    use palmgate_card::host::{Card, InProcessTransport, MealOutcome, VerifyOutcome};
    use palmgate_card::protocol::SlotKind;

    /// The card key scalar at GENERATE KEY, then fresh nonces.
    struct KeyThenCounter(Vec<u8>, u8);
    impl rand_core::TryRng for KeyThenCounter {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            unreachable!()
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            unreachable!()
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            for byte in dst {
                *byte = if self.0.is_empty() {
                    self.1 = self.1.wrapping_add(1);
                    self.1
                } else {
                    self.0.remove(0)
                };
            }
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for KeyThenCounter {}

    let computed = compute();
    let issuer = IssuerKey::from_bytes(&bytes::<32>(0x41)).unwrap();
    let authority = issuer.create_authority(permission::ALL);
    let applet = Applet::factory(
        MemoryStorage::default(),
        KeyThenCounter(bytes::<32>(0x01).to_vec(), 0),
        SystemClock::default(),
    );
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    card.personalise_with_id(&issuer, bytes(0x00)).unwrap();
    let verified = card.verify_certificate(&[issuer.public_key()]).unwrap();
    let probe = Template::from_cells(&[0; CELLS], &[true; CELLS]).unwrap();
    card.open_session(&verified)
        .unwrap()
        .prove_authority(&authority)
        .unwrap()
        .enrol(0, SlotKind::Normal, &probe)
        .unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&probe).unwrap(),
        VerifyOutcome::Match { .. }
    ));
    let request = MealRequest::decode(&hex::decode(&computed["meal_request"]).unwrap()).unwrap();
    let MealOutcome::Served(receipt) = session.redeem_meal(&request).unwrap() else {
        panic!("not served");
    };
    assert_eq!(
        hex::encode(receipt.signed().as_bytes()),
        computed["meal_receipt"]
    );
}
