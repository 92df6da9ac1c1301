//! Property tests: arbitrary APDU sequences into a personalised, enrolled applet never panic,
//! never change what only an authenticated session may change, keep RAM and storage equal,
//! and leave the card fully usable.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::{Issuer, capture, enrolled_card, factory_transport, template};
use palmgate_card::applet::{Applet, ResponseBuffer};
use palmgate_card::host::platform::{MemoryStorage, SystemClock, system_rng};
use palmgate_card::host::{Card, InProcessTransport, VerifyOutcome};
use palmgate_card::protocol::{SlotKind, ins};
use proptest::prelude::*;

struct Fixture {
    issuer: Issuer,
    state: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let issuer = Issuer::new();
        let mut card = enrolled_card(
            factory_transport(),
            &issuer,
            &[(SlotKind::Normal, &template(5))],
            Some(4),
        );
        let state = card.transport_mut().applet().state_bytes().to_vec();
        Fixture { issuer, state }
    })
}

fn apdu() -> impl Strategy<Value = Vec<u8>> {
    let instructions = prop_oneof![
        Just(ins::SELECT),
        Just(ins::GET_RESPONSE),
        Just(ins::GET_DATA),
        Just(ins::PERSONALISE),
        Just(ins::OPEN_SESSION),
        Just(ins::VERIFY_PALM),
        Just(ins::PROVE_AUTHORITY),
        Just(ins::ENROL),
        Just(ins::SET_POLICY),
        Just(ins::RESET_RETRY_COUNTER),
        Just(ins::ERASE),
        Just(ins::GET_RECEIPT),
        Just(ins::REDEEM_MEAL),
        any::<u8>(),
    ];
    let class = prop_oneof![Just(0x00u8), Just(0x80), Just(0x90), any::<u8>()];
    let structured = (
        class,
        instructions,
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..400),
        prop::option::of(any::<u16>()),
    )
        .prop_map(|(cla, ins, p1, p2, data, le)| {
            let mut out = vec![cla, ins, p1, p2];
            let extended = data.len() > 255 || le.is_some_and(|le| le > 256);
            if !data.is_empty() {
                if extended {
                    out.push(0);
                    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                } else {
                    out.push(data.len() as u8);
                }
                out.extend_from_slice(&data);
            }
            if let Some(le) = le {
                if extended {
                    if data.is_empty() {
                        out.push(0);
                    }
                    out.extend_from_slice(&le.to_be_bytes());
                } else {
                    out.push(le as u8);
                }
            }
            out
        });
    let select = Just(vec![
        0x00, 0xA4, 0x04, 0x00, 10, 0xF0, b'p', b'a', b'l', b'm', b'g', b'a', b't', b'e', 1,
    ]);
    prop_oneof![3 => structured, 1 => prop::collection::vec(any::<u8>(), 0..600), 1 => select]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_apdus_leave_the_card_consistent(apdus in prop::collection::vec(apdu(), 1..24)) {
        let fixture = fixture();
        let applet = Applet::load(MemoryStorage::default(), system_rng(), SystemClock::default(), &fixture.state).unwrap();
        let before = applet.identity();
        let mut transport = InProcessTransport::new(applet);
        let mut response = ResponseBuffer::new();
        for apdu in &apdus {
            let _ = transport.applet_mut().process(apdu, &mut response);
            prop_assert!(response.as_slice().len() <= palmgate_card::applet::RESPONSE_CAPACITY);
        }
        let applet = transport.applet();
        // Nothing an attacker without keys sends can change the persistent state.
        prop_assert_eq!(applet.identity(), before);
        prop_assert_eq!(&applet.state_bytes()[..], &fixture.state[..]);
        prop_assert_eq!(applet.storage().writes, 0);

        // The card still works: a fresh session verifies the genuine palm and spends no try.
        transport.applet_mut().reset();
        let mut card = Card::open(&mut transport).unwrap();
        let verified = card.verify_certificate(&[fixture.issuer.key.public_key()]).unwrap();
        let mut session = card.open_session(&verified).unwrap();
        prop_assert_eq!(
            session.verify_palm(&capture(5, 10)).unwrap(),
            VerifyOutcome::Match { slot_kind: SlotKind::Normal, tries_left: 4 }
        );
    }

    #[test]
    fn arbitrary_bytes_inside_a_session_close_it_without_effect(junk in prop::collection::vec(any::<u8>(), 0..400), instruction in prop::sample::select(ins::SECURE.to_vec())) {
        let fixture = fixture();
        let applet = Applet::load(MemoryStorage::default(), system_rng(), SystemClock::default(), &fixture.state).unwrap();
        let mut transport = InProcessTransport::new(applet);
        {
            let mut card = Card::open(&mut transport).unwrap();
            let verified = card.verify_certificate(&[fixture.issuer.key.public_key()]).unwrap();
            let _session = card.open_session(&verified).unwrap();
        }
        prop_assert!(transport.applet().session_open());
        let mut apdu = vec![0x80, instruction, 0, 0, 0];
        apdu.extend_from_slice(&(junk.len() as u16).to_be_bytes());
        apdu.extend_from_slice(&junk);
        let mut response = ResponseBuffer::new();
        let status = transport.applet_mut().process(if junk.is_empty() { &apdu[..4] } else { &apdu }, &mut response);
        prop_assert!(!status.is_success());
        prop_assert!(!transport.applet().session_open());
        prop_assert_eq!(&transport.applet().state_bytes()[..], &fixture.state[..]);
    }
}
