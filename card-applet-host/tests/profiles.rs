//! VERIFY PALM under the security profiles: the card compares with the threshold of the profile the
//! gate names in P1 (`docs/applet-protocol.md`, "VERIFY PALM profile"), for the number of templates
//! of the hand; an unknown profile code is refused before a try is spent; P1 cannot be changed on
//! the way. A profile floor set at enrolment (applet 1.5, SET PROFILE FLOOR) raises a weaker
//! request to the floor: the card applies `requested.stricter(floor)`.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Issuer, Tamper, TestTransport, cells, enrolled_card, factory_transport, template};
use palmgate_card::host::commands::{SecureCommand, SetProfileFloor, VerifyPalm};
use palmgate_card::host::platform::applet_of_state;
use palmgate_card::host::{
    Card, CardError, CardTransport, InProcessTransport, VerifiedCard, VerifyOutcome,
};
use palmgate_card::protocol::{
    APPLET_VERSION, MAX_PROBE_POSES, PROFILE_FLOOR_APPLET_VERSION, SlotKind, StatusWord, ins,
    permission, verify_profile,
};
use palmgate_matcher::compare::compare;
use palmgate_matcher::template::{CELLS, GRID, Template};
use palmgate_matcher::{MIN_OVERLAP_CELLS, Profile};
use zeroize::Zeroizing;

/// Code bits compared when every cell of both templates is valid (3 per cell).
const ALL_BITS: u64 = 3 * CELLS as u64;

/// A probe of identity `seed` whose aligned comparison with `template(seed)` mismatches exactly
/// `bits` code bits: `bits / 3` cells at the opposite orientation (3 bits each), one more cell
/// `bits % 3` orientations away. The cells are dealt to the four quarters of the grid in turn
/// (every 7th cell of a quarter; 7 is prime to its 144), so that every quarter gets the same
/// share: the comparison lets a quarter move on its own (applet 1.9), and a quarter with more
/// than its share would move to a neighbouring shift, where a random template's cells mismatch
/// half their bits.
fn probe_at(seed: u64, bits: u32) -> Template {
    let mut orientations = cells(seed);
    let (opposite, rest) = ((bits / 3) as usize, (bits % 3) as u8);
    assert!(opposite < CELLS, "{bits} bits cannot be placed");
    for k in 0..opposite {
        let cell = dealt_cell(k);
        orientations[cell] = (orientations[cell] + 3) % 6;
    }
    let last = dealt_cell(opposite);
    orientations[last] = (orientations[last] + rest) % 6;
    let probe = Template::from_cells(&orientations, &[true; CELLS]).unwrap();
    // The premise of every test here: the host-side comparison (the same code as the card's) finds
    // exactly these bits at the aligned shift, and no other shift comes closer.
    let comparison = compare(&probe, &template(seed)).unwrap();
    assert_eq!(comparison.mismatched_bits(), bits);
    assert_eq!(u64::from(comparison.compared_bits()), ALL_BITS);
    assert!(comparison.overlap_cells() >= MIN_OVERLAP_CELLS);
    probe
}

/// The `k`-th cell dealt by [`probe_at`]: quarter `k % 4`, its `(k / 4) · 7 mod 144`-th cell.
fn dealt_cell(k: usize) -> usize {
    const SIDE: usize = GRID / 2;
    let (quarter, within) = (k % 4, (k / 4) * 7 % (SIDE * SIDE));
    let (row, column) = (
        (quarter / 2) * SIDE + within / SIDE,
        (quarter % 2) * SIDE + within % SIDE,
    );
    row * GRID + column
}

/// The most mismatched bits `profile` accepts for a hand of `enrolled` templates and a probe of
/// one pose, all cells valid: `bits · 65536 ≤ threshold_q16 · compared`.
fn most_accepted_bits(profile: Profile, enrolled: usize) -> u32 {
    most_accepted_bits_posed(profile, enrolled, 1)
}

/// As [`most_accepted_bits`] for a probe of `poses` poses.
fn most_accepted_bits_posed(profile: Profile, enrolled: usize, poses: usize) -> u32 {
    u32::try_from(u64::from(profile.threshold(enrolled, poses).q16()) * ALL_BITS / 65536).unwrap()
}

fn card_with(
    issuer: &Issuer,
    slots: &[(SlotKind, &Template)],
) -> (Card<TestTransport>, VerifiedCard) {
    let mut card = enrolled_card(factory_transport(), issuer, slots, Some(10));
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    (card, verified)
}

fn tries_left<T: CardTransport>(card: &mut Card<T>) -> u8 {
    card.refresh_identity().unwrap().tries_left
}

#[test]
fn each_profile_accepts_up_to_its_threshold_and_refuses_one_bit_beyond() {
    let issuer = Issuer::new();
    let reference = template(40);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    let mut session = card.open_session(&verified).unwrap();
    for profile in Profile::ALL {
        let limit = most_accepted_bits(profile, 1);
        assert_eq!(
            session
                .verify_palm_under(profile, &probe_at(40, limit))
                .unwrap(),
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 10
            },
            "{profile}: {limit} bits"
        );
        assert_eq!(
            session
                .verify_palm_under(profile, &probe_at(40, limit + 1))
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 9 },
            "{profile}: {} bits",
            limit + 1
        );
    }
    // The limits are those of three different thresholds, strictest last.
    let limits = Profile::ALL.map(|profile| most_accepted_bits(profile, 1));
    assert!(limits[0] > limits[1] && limits[1] > limits[2], "{limits:?}");
}

#[test]
fn a_probe_between_the_thresholds_passes_under_convenience_and_not_under_security() {
    let issuer = Issuer::new();
    let reference = template(41);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    let between = (most_accepted_bits(Profile::Security, 1)
        + most_accepted_bits(Profile::Convenience, 1))
        / 2;
    let probe = probe_at(41, between);
    let mut session = card.open_session(&verified).unwrap();
    assert_eq!(
        session
            .verify_palm_under(Profile::Security, &probe)
            .unwrap(),
        VerifyOutcome::NoMatch { tries_left: 9 }
    );
    assert!(matches!(
        session
            .verify_palm_under(Profile::Convenience, &probe)
            .unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            tries_left: 10
        }
    ));
}

#[test]
fn no_profile_named_is_balanced() {
    let issuer = Issuer::new();
    let reference = template(42);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    let limit = most_accepted_bits(Profile::Balanced, 1);
    let mut session = card.open_session(&verified).unwrap();
    // `verify_palm` sends P1 = 00.
    assert!(matches!(
        session.verify_palm(&probe_at(42, limit)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
    assert_eq!(
        session.verify_palm(&probe_at(42, limit + 1)).unwrap(),
        VerifyOutcome::NoMatch { tries_left: 9 }
    );
}

#[test]
fn three_templates_of_a_hand_use_the_three_template_thresholds() {
    let issuer = Issuer::new();
    // The probe is close to the first; the two others are other captures far from it (their
    // distance is an impostor's), so the minimum over the three is the first's.
    let references = [template(43), template(143), template(243)];
    let (mut card, verified) = card_with(
        &issuer,
        &[
            (SlotKind::Normal, &references[0]),
            (SlotKind::Normal, &references[1]),
            (SlotKind::Normal, &references[2]),
        ],
    );
    let mut session = card.open_session(&verified).unwrap();
    for profile in Profile::ALL {
        let limit = most_accepted_bits(profile, 3);
        assert!(matches!(
            session
                .verify_palm_under(profile, &probe_at(43, limit))
                .unwrap(),
            VerifyOutcome::Match { .. }
        ));
        assert_eq!(
            session
                .verify_palm_under(profile, &probe_at(43, limit + 1))
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 9 },
            "{profile} with three templates: {} bits",
            limit + 1
        );
    }
    // Balanced with three templates is stricter than with one: the card counted the templates.
    assert!(most_accepted_bits(Profile::Balanced, 3) < most_accepted_bits(Profile::Balanced, 1));
}

/// A probe of `poses` poses whose pose `close` lies `bits` from `template(seed)` and whose other
/// poses are other identities, far from every template of these tests.
fn posed_probe_at(seed: u64, bits: u32, poses: usize, close: usize) -> Vec<Template> {
    (0..poses)
        .map(|pose| {
            if pose == close {
                probe_at(seed, bits)
            } else {
                template(seed + 1000 * (pose as u64 + 1))
            }
        })
        .collect()
}

/// With 2 or 3 poses the card applies `threshold(n, k)` for `n` templates and `k` poses: every
/// profile accepts its limit and refuses one bit beyond, whichever pose is the close one, for a
/// hand of one template and of three.
#[test]
fn each_profile_applies_its_threshold_for_the_number_of_poses_compared() {
    let issuer = Issuer::new();
    let one = [template(49)];
    let three = [template(49), template(149), template(249)];
    for references in [&one[..], &three[..]] {
        let slots: Vec<_> = references
            .iter()
            .map(|reference| (SlotKind::Normal, reference))
            .collect();
        let (mut card, verified) = card_with(&issuer, &slots);
        let mut session = card.open_session(&verified).unwrap();
        let enrolled = references.len();
        for profile in Profile::ALL {
            for poses in 2..=MAX_PROBE_POSES {
                let limit = most_accepted_bits_posed(profile, enrolled, poses);
                let close = poses - 1;
                assert_eq!(
                    session
                        .verify_palm_posed(profile, &posed_probe_at(49, limit, poses, close))
                        .unwrap(),
                    VerifyOutcome::Match {
                        slot_kind: SlotKind::Normal,
                        tries_left: 10
                    },
                    "{profile}, {enrolled} templates, {poses} poses: {limit} bits"
                );
                assert_eq!(
                    session
                        .verify_palm_posed(profile, &posed_probe_at(49, limit + 1, poses, close))
                        .unwrap(),
                    VerifyOutcome::NoMatch { tries_left: 9 },
                    "{profile}, {enrolled} templates, {poses} poses: {} bits",
                    limit + 1
                );
            }
        }
    }
    // Where the calibration gives several poses a stricter threshold, one bit beyond it passes
    // with the found pose alone and not among three poses: the card counted the poses.
    let posed_limit = most_accepted_bits_posed(Profile::Balanced, 1, MAX_PROBE_POSES);
    assert!(posed_limit < most_accepted_bits(Profile::Balanced, 1));
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &one[0])]);
    let mut session = card.open_session(&verified).unwrap();
    let probe = posed_probe_at(49, posed_limit + 1, MAX_PROBE_POSES, 0);
    assert_eq!(
        session
            .verify_palm_posed(Profile::Balanced, &probe)
            .unwrap(),
        VerifyOutcome::NoMatch { tries_left: 9 }
    );
    assert!(matches!(
        session
            .verify_palm_under(Profile::Balanced, &probe[0])
            .unwrap(),
        VerifyOutcome::Match { .. }
    ));
}

#[test]
fn a_duress_slot_is_a_hand_of_its_own() {
    let issuer = Issuer::new();
    let (normal, duress) = (template(44), template(45));
    let (mut card, verified) = card_with(
        &issuer,
        &[(SlotKind::Normal, &normal), (SlotKind::Duress, &duress)],
    );
    // One template each: the one-template threshold, not the two-template one.
    let limit = most_accepted_bits(Profile::Balanced, 1);
    assert!(limit > most_accepted_bits(Profile::Balanced, 2));
    let mut session = card.open_session(&verified).unwrap();
    assert_eq!(
        session
            .verify_palm_under(Profile::Balanced, &probe_at(44, limit))
            .unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            tries_left: 10
        }
    );
    assert_eq!(
        session
            .verify_palm_under(Profile::Balanced, &probe_at(45, limit))
            .unwrap(),
        VerifyOutcome::Match {
            slot_kind: SlotKind::Duress,
            tries_left: 10
        }
    );
}

#[test]
fn a_duress_hand_of_three_templates_uses_the_three_template_thresholds() {
    let issuer = Issuer::new();
    // Six slots (applet 1.8): three captures of each hand, the duress hand in slots 3 to 5.
    let normal = [template(46), template(146), template(246)];
    let duress = [template(47), template(147), template(247)];
    let slots: Vec<(SlotKind, &Template)> = normal
        .iter()
        .map(|t| (SlotKind::Normal, t))
        .chain(duress.iter().map(|t| (SlotKind::Duress, t)))
        .collect();
    let (mut card, verified) = card_with(&issuer, &slots);
    assert_eq!(
        usize::from(card.identity().slot_capacity),
        palmgate_card::protocol::SLOT_COUNT
    );
    let limit = most_accepted_bits(Profile::Balanced, 3);
    assert!(limit < most_accepted_bits(Profile::Balanced, 1));
    let mut session = card.open_session(&verified).unwrap();
    for (seed, kind) in [(46, SlotKind::Normal), (47, SlotKind::Duress)] {
        assert_eq!(
            session
                .verify_palm_under(Profile::Balanced, &probe_at(seed, limit))
                .unwrap(),
            VerifyOutcome::Match {
                slot_kind: kind,
                tries_left: 10
            },
            "{kind:?}"
        );
        // One bit beyond: refused, as the one-template threshold would not.
        assert_eq!(
            session
                .verify_palm_under(Profile::Balanced, &probe_at(seed, limit + 1))
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 9 },
            "{kind:?}"
        );
        drop(session);
        session = card.open_session(&verified).unwrap();
        assert!(matches!(
            session
                .verify_palm_under(Profile::Balanced, &probe_at(seed, 0))
                .unwrap(),
            VerifyOutcome::Match { .. }
        ));
    }
}

#[test]
fn an_unknown_profile_code_is_refused_without_spending_a_try() {
    let issuer = Issuer::new();
    let reference = template(46);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    let genuine = probe_at(46, 10);
    {
        let mut session = card.open_session(&verified).unwrap();
        for profile_code in [0x04, 0x05, 0x80, 0xFF] {
            let result = session
                .execute(&VerifyPalm::new(profile_code, core::slice::from_ref(&genuine)).unwrap());
            assert!(
                matches!(
                    result,
                    Err(CardError::Status {
                        status: StatusWord::IncorrectP1P2,
                        ..
                    })
                ),
                "P1 {profile_code:02X}: {result:?}"
            );
        }
        // The refusal was an authenticated answer: the session goes on.
        assert!(matches!(
            session
                .verify_palm_under(Profile::Security, &probe_at(46, 10))
                .unwrap(),
            VerifyOutcome::Match { .. }
        ));
    }
    assert_eq!(tries_left(&mut card), 10);

    // Nor after a failed try: the counter stays where it was.
    {
        let mut session = card.open_session(&verified).unwrap();
        assert_eq!(
            session
                .verify_palm_under(Profile::Security, &template(47))
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 9 }
        );
        let result = session.execute(&VerifyPalm::new(0x04, &[template(47)]).unwrap());
        assert!(matches!(
            result,
            Err(CardError::Status {
                status: StatusWord::IncorrectP1P2,
                ..
            })
        ));
    }
    assert_eq!(tries_left(&mut card), 9);
}

/// Someone between the gate and the card rewrites P1 `03` (security) to `01` (convenience): P1 is
/// authenticated, so the card refuses the command (`6988`, session closed), compares nothing and
/// keeps the try.
#[test]
fn a_profile_changed_on_the_way_fails_authentication() {
    let issuer = Issuer::new();
    let reference = template(48);
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &reference)],
        Some(10),
    );
    let mut tamper = Tamper::new(card.into_transport());
    tamper.on_command = Some(Box::new(|command| {
        if command[1] == ins::VERIFY_PALM && command[2] == verify_profile::encode(Profile::Security)
        {
            command[2] = verify_profile::encode(Profile::Convenience);
        }
    }));
    let mut card = Card::open(tamper).unwrap();
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let between = (most_accepted_bits(Profile::Security, 1)
        + most_accepted_bits(Profile::Convenience, 1))
        / 2;
    {
        let mut session = card.open_session(&verified).unwrap();
        let result = session.verify_palm_under(Profile::Security, &probe_at(48, between));
        assert!(
            matches!(result, Err(CardError::Authentication)),
            "{result:?}"
        );
        assert!(matches!(
            session.verify_palm_under(Profile::Security, &probe_at(48, 0)),
            Err(CardError::SessionClosed)
        ));
    }
    assert_eq!(tries_left(&mut card), 10);
}

/// The mismatched bits halfway between the `security` and the `convenience` limits (one
/// template, one pose).
fn halfway_bits() -> u32 {
    (most_accepted_bits(Profile::Security, 1) + most_accepted_bits(Profile::Convenience, 1)) / 2
}

/// Proves the issuer's authority in a new session and sets `floor`.
fn set_floor<T: CardTransport>(
    card: &mut Card<T>,
    verified: &VerifiedCard,
    issuer: &Issuer,
    floor: Option<Profile>,
) -> Result<(), CardError> {
    card.open_session(verified)
        .unwrap()
        .prove_authority(&issuer.authority)
        .unwrap()
        .set_profile_floor(floor)
}

/// The case: the halfway probe passes under `convenience` on a card without a floor;
/// once the enrolment set a `security` floor, the same request is answered under `security`'s
/// threshold (no match, a try spent), exactly: `security`'s limit still passes, one bit more not.
#[test]
fn a_security_floor_refuses_under_convenience_the_probe_convenience_accepts_without_it() {
    let issuer = Issuer::new();
    let reference = template(50);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    let halfway = probe_at(50, halfway_bits());
    assert_eq!(card.profile_floor().unwrap(), None);
    assert!(matches!(
        card.open_session(&verified)
            .unwrap()
            .verify_palm_under(Profile::Convenience, &halfway)
            .unwrap(),
        VerifyOutcome::Match { .. }
    ));

    set_floor(&mut card, &verified, &issuer, Some(Profile::Security)).unwrap();
    assert_eq!(card.profile_floor().unwrap(), Some(Profile::Security));
    let mut session = card.open_session(&verified).unwrap();
    assert_eq!(
        session
            .verify_palm_under(Profile::Convenience, &halfway)
            .unwrap(),
        VerifyOutcome::NoMatch { tries_left: 9 }
    );
    // P1 00 (no profile named, `balanced`) is raised to the floor as well.
    assert_eq!(
        session.verify_palm(&halfway).unwrap(),
        VerifyOutcome::NoMatch { tries_left: 8 }
    );
    let limit = most_accepted_bits(Profile::Security, 1);
    for requested in Profile::ALL {
        assert!(
            matches!(
                session
                    .verify_palm_under(requested, &probe_at(50, limit))
                    .unwrap(),
                VerifyOutcome::Match { .. }
            ),
            "{requested}: security's limit"
        );
        assert_eq!(
            session
                .verify_palm_under(requested, &probe_at(50, limit + 1))
                .unwrap(),
            VerifyOutcome::NoMatch { tries_left: 9 },
            "{requested}: one bit beyond security's limit"
        );
    }
}

/// A floor below the request changes nothing: a gate asking for more than the floor gets it.
#[test]
fn a_floor_never_loosens_a_stricter_request() {
    let issuer = Issuer::new();
    let reference = template(51);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    set_floor(&mut card, &verified, &issuer, Some(Profile::Convenience)).unwrap();
    let halfway = probe_at(51, halfway_bits());
    let mut session = card.open_session(&verified).unwrap();
    assert_eq!(
        session
            .verify_palm_under(Profile::Security, &halfway)
            .unwrap(),
        VerifyOutcome::NoMatch { tries_left: 9 }
    );
    assert!(matches!(
        session
            .verify_palm_under(Profile::Convenience, &halfway)
            .unwrap(),
        VerifyOutcome::Match { .. }
    ));
    // The `balanced` floor with a `convenience` request: `balanced`'s limit, one bit beyond
    // refused.
    drop(session);
    set_floor(&mut card, &verified, &issuer, Some(Profile::Balanced)).unwrap();
    let limit = most_accepted_bits(Profile::Balanced, 1);
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session
            .verify_palm_under(Profile::Convenience, &probe_at(51, limit))
            .unwrap(),
        VerifyOutcome::Match { .. }
    ));
    assert_eq!(
        session
            .verify_palm_under(Profile::Convenience, &probe_at(51, limit + 1))
            .unwrap(),
        VerifyOutcome::NoMatch { tries_left: 9 }
    );
}

/// The floor is removed by `None` (an authority could re-enrol anyway) and by ERASE, and it
/// survives a power cycle.
#[test]
fn the_floor_is_kept_until_removed_or_erased() {
    let issuer = Issuer::new();
    let reference = template(52);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    set_floor(&mut card, &verified, &issuer, Some(Profile::Security)).unwrap();
    set_floor(&mut card, &verified, &issuer, None).unwrap();
    assert_eq!(card.profile_floor().unwrap(), None);
    assert!(matches!(
        card.open_session(&verified)
            .unwrap()
            .verify_palm_under(Profile::Convenience, &probe_at(52, halfway_bits()))
            .unwrap(),
        VerifyOutcome::Match { .. }
    ));

    set_floor(&mut card, &verified, &issuer, Some(Profile::Balanced)).unwrap();
    // Power loss: the card restarts from what it stored.
    let stored = card.into_transport().applet().state_bytes();
    let applet = applet_of_state(&stored[..]).unwrap();
    assert_eq!(applet.profile_floor(), Some(Profile::Balanced));
    let mut card = Card::open(InProcessTransport::new(applet)).unwrap();
    assert_eq!(card.profile_floor().unwrap(), Some(Profile::Balanced));

    card.open_session(&verified)
        .unwrap()
        .prove_authority(&issuer.authority)
        .unwrap()
        .erase(1_764_000_000)
        .unwrap();
    assert_eq!(card.profile_floor().unwrap(), None);
    assert_eq!(card.into_transport().applet().profile_floor(), None);
}

/// SET PROFILE FLOOR with arbitrary plaintext (the typed command only sends valid bytes).
struct RawSetProfileFloor(Vec<u8>);

impl SecureCommand for RawSetProfileFloor {
    const NAME: &'static str = "SET PROFILE FLOOR (raw)";
    const INS: u8 = ins::SET_PROFILE_FLOOR;
    type Output = ();

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.clone())
    }

    fn decode(status: StatusWord, _plaintext: &[u8]) -> Result<(), CardError> {
        if status.is_success() {
            Ok(())
        } else {
            Err(CardError::Status {
                command: Self::NAME,
                status,
            })
        }
    }
}

fn refused_with(result: Result<(), CardError>, expected: StatusWord) {
    assert!(
        matches!(result, Err(CardError::Status { status, .. }) if status == expected),
        "expected {expected}: {result:?}"
    );
}

/// Only an authority with the enrol bit sets the floor: a gate's session (or a thief's) and an
/// authority with other permissions get `6982`; a byte naming no profile `6A80`, another length
/// `6700`. Nothing changes, and every refusal is an encrypted answer (the session goes on).
#[test]
fn only_an_enrolment_authority_sets_the_floor_and_only_a_valid_one() {
    let issuer = Issuer::new();
    let reference = template(53);
    let (mut card, verified) = card_with(&issuer, &[(SlotKind::Normal, &reference)]);
    {
        let mut session = card.open_session(&verified).unwrap();
        refused_with(
            session.execute(&SetProfileFloor {
                floor: Some(Profile::Convenience),
            }),
            StatusWord::SecurityStatusNotSatisfied,
        );
        let no_enrol_bit = issuer
            .key
            .create_authority(permission::ALL & !permission::ENROL);
        let mut enrolment = session.prove_authority(&no_enrol_bit).unwrap();
        refused_with(
            enrolment.set_profile_floor(Some(Profile::Security)),
            StatusWord::SecurityStatusNotSatisfied,
        );
    }
    assert_eq!(card.profile_floor().unwrap(), None);
    {
        let mut enrolment = card
            .open_session(&verified)
            .unwrap()
            .prove_authority(&issuer.authority)
            .unwrap();
        let session = enrolment.session();
        for byte in [0x04, 0x80, 0xFF] {
            refused_with(
                session.execute(&RawSetProfileFloor(vec![byte])),
                StatusWord::WrongData,
            );
        }
        for data in [vec![], vec![0x03, 0x00]] {
            refused_with(
                session.execute(&RawSetProfileFloor(data)),
                StatusWord::WrongLength,
            );
        }
        session.execute(&RawSetProfileFloor(vec![0x03])).unwrap();
    }
    assert_eq!(card.profile_floor().unwrap(), Some(Profile::Security));
}

/// A card whose identity says applet 1.4 (here the SELECT and GET DATA answers rewritten on the
/// way) is refused a floor before anything is sent, and reports no floor without being asked.
#[test]
fn a_card_before_applet_1_5_is_refused_a_floor_before_anything_is_sent() {
    assert!(APPLET_VERSION >= PROFILE_FLOOR_APPLET_VERSION);
    let issuer = Issuer::new();
    let reference = template(54);
    let card = enrolled_card(
        factory_transport(),
        &issuer,
        &[(SlotKind::Normal, &reference)],
        None,
    );
    let mut old = Tamper::new(card.into_transport());
    old.on_response = Some(Box::new(|command: &[u8], response: &mut Vec<u8>| {
        let identity = command[1] == ins::SELECT || command[1..4] == [ins::GET_DATA, 1, 1];
        if identity && response.len() == 26 {
            response[17] = 4;
        }
    }));
    let mut card = Card::open(old).unwrap();
    assert_eq!(card.identity().applet_version, (1, 4));
    assert!(!card.keeps_profile_floor());
    let verified = card.verify_certificate(&[issuer.key.public_key()]).unwrap();
    let before = card.apdu_count();
    assert_eq!(card.profile_floor().unwrap(), None);
    assert_eq!(card.apdu_count(), before, "GET DATA sent to an old card");
    {
        let mut enrolment = card
            .open_session(&verified)
            .unwrap()
            .prove_authority(&issuer.authority)
            .unwrap();
        let before = enrolment.session().card().apdu_count();
        for floor in [Some(Profile::Security), None] {
            let result = enrolment.set_profile_floor(floor);
            assert!(
                matches!(
                    result,
                    Err(CardError::AppletTooOld {
                        required: (1, 5),
                        actual: (1, 4),
                        ..
                    })
                ),
                "{result:?}"
            );
        }
        assert_eq!(enrolment.session().card().apdu_count(), before);
        let message = enrolment
            .set_profile_floor(Some(Profile::Security))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("needs applet 1.5") && message.contains("runs applet 1.4"),
            "{message}"
        );
    }
    assert_eq!(card.into_transport().inner.applet().profile_floor(), None);
}
