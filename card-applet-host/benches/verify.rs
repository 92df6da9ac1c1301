//! In-process cost of one secure verification (OPEN SECURE SESSION + VERIFY PALM, both sides'
//! cryptography and the on-card comparison), and of one canteen pass (the same plus REDEEM MEAL:
//! the card's receipt signature, the host's check of it, one more state write), without any
//! transport.
//! `cargo bench -p palmgate-card --bench verify`; the PC/SC figure comes from `palmgate card bench`.

use criterion::{Criterion, criterion_group, criterion_main};
use palmgate_card::applet::Applet;
use palmgate_card::host::issuer::IssuerKey;
use palmgate_card::host::platform::{MemoryStorage, SystemClock, system_rng};
use palmgate_card::host::{Card, InProcessTransport, MealOutcome, MealRequest, VerifyOutcome};
use palmgate_card::protocol::{SlotKind, permission};
use palmgate_matcher::template::{CELLS, Template};

fn template() -> Template {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let cells: [u8; CELLS] = core::array::from_fn(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 6) as u8
    });
    Template::from_cells(&cells, &[true; CELLS]).expect("valid")
}

fn verify(c: &mut Criterion) {
    let issuer = IssuerKey::generate();
    let authority = issuer.create_authority(permission::ALL);
    let transport = InProcessTransport::new(Applet::factory(
        MemoryStorage::default(),
        system_rng(),
        SystemClock::default(),
    ));
    let mut card = Card::open(transport).expect("select");
    card.personalise(&issuer).expect("personalise");
    let verified = card
        .verify_certificate(&[issuer.public_key()])
        .expect("certificate");
    let probe = template();
    {
        let session = card.open_session(&verified).expect("session");
        session
            .prove_authority(&authority)
            .expect("authority")
            .enrol(0, SlotKind::Normal, &probe)
            .expect("enrol");
    }
    c.bench_function("secure_verify_in_process", |b| {
        b.iter(|| {
            let mut session = card.open_session(&verified).expect("session");
            let outcome = session.verify_palm(&probe).expect("verify");
            assert!(matches!(outcome, VerifyOutcome::Match { .. }));
        })
    });
    // A new period every pass, so that every meal is served.
    let mut period = 0u32;
    c.bench_function("secure_verify_and_meal_in_process", |b| {
        b.iter(|| {
            period += 1;
            let mut session = card.open_session(&verified).expect("session");
            let outcome = session.verify_palm(&probe).expect("verify");
            assert!(matches!(outcome, VerifyOutcome::Match { .. }));
            let meal = session
                .redeem_meal(&MealRequest {
                    period,
                    allowance: 1,
                    gate_time: 1_764_000_000,
                })
                .expect("meal");
            assert!(matches!(meal, MealOutcome::Served(_)));
        })
    });
}

criterion_group!(benches, verify);
criterion_main!(benches);
