//! VERIFY PALM with the probe cut at several poses (applet 1.4, `docs/applet-protocol.md`,
//! "VERIFY PALM probe poses"): the card compares every pose with every enrolled template; a
//! plaintext that is not 1 to 5 whole templates, or holds a bad one, is refused before a try is
//! spent; a card before applet 1.4 is sent the found pose only.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Issuer, Tamper, TestTransport, capture, enrolled_card, factory_transport, template};
use palmgate_card::host::apdu::LengthMode;
use palmgate_card::host::commands::SecureCommand;
use palmgate_card::host::{Card, CardError, CardTransport, VerifiedCard, VerifyOutcome};
use palmgate_card::protocol::{
    MAX_PROBE_POSES, SlotKind, StatusWord, TAG_LEN, TEMPLATE_LEN, ins, verify_profile,
};
use palmgate_matcher::Profile;
use palmgate_matcher::compare::compare;
use palmgate_matcher::template::Template;
use zeroize::Zeroizing;

/// The enrolled hand of these tests.
const HAND: u64 = 30;

/// A capture of [`HAND`] that matches it under every profile, whatever the number of poses.
fn genuine() -> Template {
    let probe = capture(HAND, 10);
    let comparison = compare(&probe, &template(HAND)).unwrap();
    assert!(comparison.is_match(Profile::Security.threshold(1, MAX_PROBE_POSES)));
    probe
}

/// Another identity: far from [`HAND`] under every profile.
fn stranger(seed: u64) -> Template {
    let probe = template(900 + seed);
    let comparison = compare(&probe, &template(HAND)).unwrap();
    assert!(!comparison.is_match(Profile::Convenience.threshold(1, 1)));
    probe
}

fn card(max_tries: u8) -> (Card<TestTransport>, VerifiedCard) {
    let issuer = Issuer::new();
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &template(HAND))],
        Some(max_tries),
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    (card, verified)
}

fn tries_left<T: CardTransport>(card: &mut Card<T>) -> u8 {
    card.refresh_identity().unwrap().tries_left
}

/// VERIFY PALM with any plaintext, as an authenticated gate could send it.
struct RawVerify(Vec<u8>);

impl SecureCommand for RawVerify {
    const NAME: &'static str = "RAW VERIFY PALM";
    const INS: u8 = ins::VERIFY_PALM;
    type Output = (StatusWord, Vec<u8>);

    fn p1_p2(&self) -> (u8, u8) {
        (verify_profile::encode(Profile::Balanced), 0)
    }

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.clone())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<Self::Output, CardError> {
        Ok((status, plaintext.to_vec()))
    }
}

fn concatenated(poses: &[Template]) -> Vec<u8> {
    poses.iter().flat_map(Template::encode).collect()
}

#[test]
fn a_turned_pose_that_matches_is_a_match_the_found_pose_alone_is_not() {
    for matching in 1..MAX_PROBE_POSES {
        let (mut card, verified) = card(5);
        let mut poses: Vec<Template> = (1..=MAX_PROBE_POSES as u64).map(stranger).collect();
        poses[matching] = genuine();
        let mut session = card.open_session(&verified).unwrap();
        assert_eq!(
            session
                .verify_palm_under(Profile::Balanced, &poses[0])
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 4 },
            "the found pose alone"
        );
        assert_eq!(
            session
                .verify_palm_posed(Profile::Balanced, &poses)
                .unwrap(),
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 5
            },
            "pose {matching} matches"
        );
        // Two poses: the second is compared too.
        assert_eq!(
            session
                .verify_palm_posed(Profile::Balanced, &[stranger(1), genuine()])
                .unwrap(),
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 5
            }
        );
        // No pose close: one try spent, as for one pose.
        assert_eq!(
            session
                .verify_palm_posed(Profile::Balanced, &[stranger(1), stranger(2), stranger(3)])
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 4 }
        );
    }
}

#[test]
fn a_duress_pose_is_a_duress_match() {
    let issuer = Issuer::new();
    let mut card = enrolled_card(
        factory_transport(),
        &issuer,
        &[
            (SlotKind::Normal, &template(HAND)),
            (SlotKind::Duress, &template(HAND + 1)),
        ],
        None,
    );
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert_eq!(
        session
            .verify_palm_posed(
                Profile::Security,
                &[stranger(1), stranger(2), capture(HAND + 1, 10)]
            )
            .unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Duress,
            tries_left: 5
        }
    );
}

/// Three poses (a whole hand) are 892 bytes of data with the tag: one extended APDU, or four
/// chained short ones (255, 255, 255, 127); five (a sensor's ROI) are 1476 bytes: one extended
/// APDU, or six short ones (5 × 255, 201). The card puts the parts back together.
#[test]
fn the_poses_travel_as_one_extended_apdu_or_chained_short_ones() {
    let cases = [
        (3, LengthMode::Extended, vec![892]),
        (3, LengthMode::Short, vec![255, 255, 255, 127]),
        (5, LengthMode::Extended, vec![1476]),
        (5, LengthMode::Short, vec![255, 255, 255, 255, 255, 201]),
    ];
    for (poses, mode, parts_expected) in cases {
        let issuer = Issuer::new();
        let card = enrolled_card(
            factory_transport(),
            &issuer,
            &[(SlotKind::Normal, &template(HAND))],
            None,
        );
        let mut tapped = Tamper::new(card.into_transport());
        let (sender, sent) = std::sync::mpsc::channel();
        tapped.on_command = Some(Box::new(move |command: &mut Vec<u8>| {
            if command[1] == ins::VERIFY_PALM {
                sender.send(command.clone()).unwrap();
            }
        }));
        let mut card = Card::open_with_mode(tapped, mode).unwrap();
        let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
        let mut session = card.open_session(&verified).unwrap();
        let mut probe: Vec<Template> = (1..poses as u64).map(stranger).collect();
        probe.push(genuine());
        assert!(matches!(
            session
                .verify_palm_posed(Profile::Balanced, &probe)
                .unwrap(),
            VerifyOutcome::Match { .. }
        ));
        let parts: Vec<Vec<u8>> = sent.try_iter().collect();
        let lengths: Vec<usize> = match mode {
            LengthMode::Extended => parts
                .iter()
                .map(|part| usize::from(u16::from_be_bytes([part[5], part[6]])))
                .collect(),
            LengthMode::Short => {
                let classes: Vec<u8> = parts.iter().map(|part| part[0]).collect();
                let mut expected = vec![0x90; parts_expected.len() - 1];
                expected.push(0x80);
                assert_eq!(classes, expected, "{poses} poses");
                parts.iter().map(|part| usize::from(part[4])).collect()
            }
        };
        assert_eq!(lengths, parts_expected, "{poses} poses, {mode:?}");
        assert_eq!(
            lengths.iter().sum::<usize>(),
            poses * TEMPLATE_LEN + TAG_LEN
        );
    }
}

#[test]
fn a_plaintext_that_is_not_one_to_five_templates_is_wrong_length_and_costs_no_try() {
    let one = genuine().encode().to_vec();
    let cases = [
        Vec::new(),
        one[..TEMPLATE_LEN - 1].to_vec(),
        [&one[..], &[0]].concat(),
        [&one[..], &one[..TEMPLATE_LEN - 1]].concat(),
        concatenated(&[genuine(), genuine(), genuine()])[..3 * TEMPLATE_LEN - 1].to_vec(),
        [
            &concatenated(&[genuine(), genuine(), genuine(), genuine()])[..],
            &[0],
        ]
        .concat(),
        concatenated(&vec![genuine(); MAX_PROBE_POSES + 1]),
        concatenated(&vec![genuine(); MAX_PROBE_POSES + 3]),
    ];
    for mode in [LengthMode::Extended, LengthMode::Short] {
        let issuer = Issuer::new();
        let card = enrolled_card(
            factory_transport(),
            &issuer,
            &[(SlotKind::Normal, &template(HAND))],
            Some(5),
        );
        let mut card = Card::open_with_mode(card.into_transport(), mode).unwrap();
        let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
        // A try spent first, so that a refusal that reset the counter would show too.
        {
            let mut session = card.open_session(&verified).unwrap();
            assert_eq!(
                session.verify_palm(&stranger(1)).unwrap(),
                VerifyOutcome::NoMatch { tries_left: 4 }
            );
            for plaintext in &cases {
                let (status, answer) = session.execute(&RawVerify(plaintext.clone())).unwrap();
                assert_eq!(
                    (status, answer.len()),
                    (StatusWord::WrongLength, 0),
                    "{mode:?}: {} bytes",
                    plaintext.len()
                );
            }
            // The refusals were authenticated answers: the session goes on, and a palm match
            // still counts.
            assert!(matches!(
                session
                    .verify_palm_posed(Profile::Balanced, &[stranger(1), genuine()])
                    .unwrap(),
                VerifyOutcome::Match { tries_left: 5, .. }
            ));
            assert_eq!(
                session.verify_palm(&stranger(2)).unwrap(),
                VerifyOutcome::NoMatch { tries_left: 4 }
            );
        }
        assert_eq!(tries_left(&mut card), 4, "{mode:?}");
    }
}

#[test]
fn a_bad_template_among_the_poses_is_refused_and_costs_no_try() {
    let (mut card, verified) = card(5);
    let good = genuine().encode();
    let mut malformed = stranger(3).encode();
    malformed[2] = 0x01; // a reserved header byte
    assert!(Template::decode(&malformed).is_err());
    let mut other_algorithm = stranger(3).encode();
    other_algorithm[1] = 0x02;
    let mut session = card.open_session(&verified).unwrap();
    for (bad, expected) in [
        (malformed, StatusWord::WrongData),
        (other_algorithm, StatusWord::FunctionNotSupported),
    ] {
        // The last of three poses (a whole hand) or of five (a sensor's ROI); the poses before it
        // would match: nothing is compared.
        for poses in [3, MAX_PROBE_POSES] {
            let mut encoded = vec![good; poses - 1];
            encoded.push(bad);
            let plaintext = encoded.concat();
            let (status, answer) = session.execute(&RawVerify(plaintext)).unwrap();
            assert_eq!((status, answer.len()), (expected, 0), "{poses} poses");
            // The same through the host's command.
            let result = session.execute(
                &palmgate_card::host::commands::VerifyPalm::encoded(
                    verify_profile::DEFAULT,
                    &encoded,
                )
                .unwrap(),
            );
            assert!(
                matches!(result, Err(CardError::Status { status, .. }) if status == expected),
                "{poses} poses: {result:?}"
            );
        }
    }
    // Nothing matched and nothing was spent: the decision of a good probe is still a match.
    assert!(matches!(
        session.verify_palm(&genuine()).unwrap(),
        VerifyOutcome::Match { tries_left: 5, .. }
    ));
    drop(session);
    assert_eq!(tries_left(&mut card), 5);
}

#[test]
fn the_host_refuses_no_pose_or_more_than_five_before_sending() {
    let (mut card, verified) = card(5);
    let poses: Vec<Template> = (1..=MAX_PROBE_POSES as u64 + 2).map(stranger).collect();
    let mut session = card.open_session(&verified).unwrap();
    let before = session.card().apdu_count();
    for k in [0, MAX_PROBE_POSES + 1, MAX_PROBE_POSES + 2] {
        let result = session.verify_palm_posed(Profile::Balanced, &poses[..k]);
        assert!(
            matches!(result, Err(CardError::ProbePoses { given }) if given == k),
            "{k}: {result:?}"
        );
    }
    assert_eq!(session.card().apdu_count(), before, "nothing sent");
    // The session is intact.
    assert!(matches!(
        session.verify_palm(&genuine()).unwrap(),
        VerifyOutcome::Match { .. }
    ));
}

/// A card before applet 1.4 compares one template: the host sends it the found pose only (its
/// answer is that pose's decision); the same card claiming 1.4 is sent every pose.
#[test]
fn a_card_before_applet_1_4_is_sent_the_found_pose_only() {
    for (minor, all_compared) in [(3u8, 1usize), (4, MAX_PROBE_POSES)] {
        let issuer = Issuer::new();
        let card = enrolled_card(
            factory_transport(),
            &issuer,
            &[(SlotKind::Normal, &template(HAND))],
            Some(5),
        );
        let mut older = Tamper::new(card.into_transport());
        let (sender, sent) = std::sync::mpsc::channel();
        older.on_command = Some(Box::new(move |command: &mut Vec<u8>| {
            if command[1] == ins::VERIFY_PALM {
                sender.send(command.len()).unwrap();
            }
        }));
        older.on_response = Some(Box::new(move |command: &[u8], response: &mut Vec<u8>| {
            if command[1] == ins::SELECT {
                response[17] = minor;
            }
        }));
        let mut card = Card::open(older).unwrap();
        assert_eq!(card.identity().applet_version, (1, minor));
        assert_eq!(card.probe_poses_compared(MAX_PROBE_POSES), all_compared);
        // The gate's three poses of a whole hand.
        let compared = card.probe_poses_compared(3);
        let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
        let mut session = card.open_session(&verified).unwrap();
        let outcome = session
            .verify_palm_posed(Profile::Balanced, &[stranger(1), genuine(), genuine()])
            .unwrap();
        let expected = if compared == 1 {
            VerifyOutcome::NoMatch { tries_left: 4 }
        } else {
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 5,
            }
        };
        assert_eq!(outcome, expected, "applet 1.{minor}");
        // Header, extended Lc (3), data (poses and tag), extended Le (2).
        let lengths: Vec<usize> = sent.try_iter().collect();
        assert_eq!(
            lengths,
            [4 + 3 + compared * TEMPLATE_LEN + TAG_LEN + 2],
            "applet 1.{minor}"
        );
    }
}
