//! The worker on an in-process card: every pose of the probe reaches the card.

use std::sync::{Arc, Mutex};

use palmgate_card::applet::Applet;
use palmgate_card::host::InProcessTransport;
use palmgate_card::host::issuer::IssuerKey;
use palmgate_card::host::platform::{MemoryStorage, SystemClock, SystemRng, system_rng};
use palmgate_card::protocol::{SlotKind, permission};
use palmgate_matcher::fixtures::{capture_changed, template};

use super::*;
use crate::gate::devices::InProcessReader;

type TestCard = InProcessTransport<MemoryStorage, SystemRng, SystemClock>;

/// A card enrolled with identity 7, and its issuer's public key.
fn enrolled_card() -> (TestCard, IssuerPublicKey) {
    let issuer = IssuerKey::generate();
    let mut transport = InProcessTransport::new(Applet::factory(
        MemoryStorage::default(),
        system_rng(),
        SystemClock::default(),
    ));
    let mut card = Card::open(&mut transport).expect("select");
    card.personalise(&issuer).expect("personalise");
    let verified = card
        .verify_certificate(&[issuer.public_key()])
        .expect("certificate");
    card.open_session(&verified)
        .expect("session")
        .prove_authority(&issuer.create_authority(permission::ALL))
        .expect("authority")
        .enrol(0, SlotKind::Normal, &template(7))
        .expect("enrol");
    (transport, issuer.public_key())
}

fn next(reports: &mut mpsc::Receiver<CardReport>) -> CardReport {
    reports
        .blocking_recv()
        .expect("the worker reports until stopped")
}

/// The found pose is another identity's, a turned pose is a capture of the enrolled one: the
/// card, sent every pose, matches; sent the found pose alone it does not.
#[test]
fn the_worker_sends_every_pose_of_the_probe() {
    let (card, issuer) = enrolled_card();
    let (reader, slot) = InProcessReader::new();
    let (report_tx, mut reports) = mpsc::channel(8);
    let worker =
        CardWorker::start(reader, vec![issuer], Profile::Balanced, report_tx).expect("worker");
    slot.present(Arc::new(Mutex::new(card)));
    assert!(matches!(next(&mut reports), CardReport::Presented { .. }));

    worker.verify(vec![template(8), capture_changed(7, 10), template(9)]);
    let CardReport::Verified { outcome, .. } = next(&mut reports) else {
        panic!("no decision");
    };
    assert_eq!(
        outcome,
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            tries_left: 5
        }
    );

    worker.verify(vec![template(8)]);
    let CardReport::Verified { outcome, .. } = next(&mut reports) else {
        panic!("no decision");
    };
    assert_eq!(outcome, VerifyOutcome::NoMatch { tries_left: 4 });
    worker.stop();
}
