//! The security profile on the real stack: the card (`palmgate-vcard` behind pcscd + vpcd)
//! compares with the threshold of the profile it is told, and the gate tells it the one of its
//! configuration (`matcher.profile`). The probe is crafted to lie between the `security` and the
//! `convenience` thresholds: accepted under one, refused under the other. A `security` floor set
//! at enrolment (`palmgate card enrol --profile-floor`) makes the card refuse it whatever it is
//! told.

use std::path::Path;
use std::process::Command;

use palmgate_matcher::Profile;
use palmgate_matcher::compare::{compare, compare_posed};
use palmgate_matcher::extract::{Extractor, InputKind};
use palmgate_matcher::template::Template;
use palmgate_system_tests::gate::{
    READER, Subscriber, VirtualCard, field, palmgate, personalised_card,
    personalised_card_with_floor, presentation_ms, sensor_simulator_with,
};
use palmgate_system_tests::site::{PATIENCE, Site, stop};
use palmgate_system_tests::templates::{template, with_bits_changed};
use palmgate_system_tests::{reader_lock, require_mqtt, require_pcscd_vpcd, workspace_binary};

/// Mismatched bits, out of `compared`, halfway between the `security` and the `convenience`
/// thresholds for one template and a probe of `poses` poses (about 0.35 of the bits).
fn bits_between_security_and_convenience(compared: u32, poses: usize) -> u32 {
    let halfway = (Profile::Security.threshold(1, poses).q16()
        + Profile::Convenience.threshold(1, poses).q16())
        / 2;
    u32::try_from(u64::from(halfway) * u64::from(compared) / 65536).expect("fits")
}

/// A reference `bits` away from the found pose of a probe (`poses`, as the gate sends them),
/// checked with the comparison the card runs: the closest pair is the found pose at the aligned
/// shift (the turned poses are further), and its distance lies strictly between the two
/// thresholds for that many poses.
fn reference_between_the_thresholds(poses: &[Template]) -> Template {
    let found = &poses[0];
    let compared = 3 * u32::from(found.valid_cells());
    let bits = bits_between_security_and_convenience(compared, poses.len());
    let reference = with_bits_changed(found, bits);
    let comparison =
        compare_posed(poses, std::slice::from_ref(&reference)).expect("same algorithm");
    assert_eq!(
        (comparison.mismatched_bits(), comparison.compared_bits()),
        (bits, compared)
    );
    assert!(comparison.is_match(Profile::Convenience.threshold(1, poses.len())));
    assert!(!comparison.is_match(Profile::Security.threshold(1, poses.len())));
    reference
}

/// `palmgate card verify --template PROBE --profile PROFILE`: exit status and standard output.
fn card_verify(issuer: &Path, probe: &Path, profile: Profile) -> (Option<i32>, String) {
    card_verify_from(issuer, "--template", probe, profile)
}

/// `palmgate card verify SOURCE PROBE --profile PROFILE` (`SOURCE`: `--template` or `--image`):
/// exit status, standard output then standard error.
fn card_verify_from(
    issuer: &Path,
    source: &str,
    probe: &Path,
    profile: Profile,
) -> (Option<i32>, String) {
    let output = Command::new(workspace_binary("palmgate"))
        .args(["card", "verify", "--reader", READER, "--issuer"])
        .arg(issuer)
        .arg(source)
        .arg(probe)
        .args(["--profile", profile.name()])
        .output()
        .expect("run palmgate card verify");
    (
        output.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// Through pcscd and vpcd with `palmgate card verify`: the same probe, the same card, refused
/// under `security` (one try spent), accepted under `convenience` (the counter restored).
#[test]
fn a_probe_between_the_thresholds_passes_under_convenience_only() {
    require_pcscd_vpcd();
    let _reader = reader_lock();
    let site = Site::new();
    let enrolled = template(61);
    let probe = with_bits_changed(
        &enrolled,
        bits_between_security_and_convenience(3 * 24 * 24, 1),
    );
    // The same check as for the gate below, from the probe's side.
    assert_eq!(
        compare(&probe, &enrolled)
            .expect("compare")
            .mismatched_bits(),
        bits_between_security_and_convenience(3 * 24 * 24, 1)
    );
    let enrolled_file = site.root.join("enrolled.tpl");
    let probe_file = site.root.join("probe.tpl");
    std::fs::write(&enrolled_file, enrolled.encode()).expect("write");
    std::fs::write(&probe_file, probe.encode()).expect("write");
    let state = site.root.join("card.state");
    personalised_card(&state, &site.issuer, &[enrolled_file], None);

    let card = VirtualCard::insert(&state);
    let (status, text) = card_verify(&site.issuer, &probe_file, Profile::Security);
    assert_eq!(status, Some(1), "security: {text}");
    assert!(
        text.contains("no match") && text.contains("4 tries left"),
        "{text}"
    );
    let (status, text) = card_verify(&site.issuer, &probe_file, Profile::Convenience);
    assert_eq!(status, Some(0), "convenience: {text}");
    assert!(text.contains("match"), "{text}");
    let (status, text) = card_verify(&site.issuer, &probe_file, Profile::Security);
    assert_eq!(status, Some(1), "security again: {text}");
    assert!(
        text.contains("4 tries left"),
        "the match restored the counter: {text}"
    );
    card.remove();
}

/// `palmgate card info`'s `profile floor:` line.
fn profile_floor_line() -> String {
    palmgate(&["card", "info", "--reader", READER])
        .lines()
        .find(|line| line.starts_with("profile floor:"))
        .expect("`palmgate card info` prints the profile floor")
        .to_owned()
}

/// Through pcscd and vpcd: the halfway probe that `convenience` accepts on a card enrolled
/// without a floor is refused under `convenience` on a card enrolled with `--profile-floor
/// security` (the card applies `security`'s threshold), and `palmgate card info` shows the
/// floor; ERASE clears it with the templates.
#[test]
fn a_security_floor_set_at_enrolment_refuses_the_probe_convenience_accepts() {
    require_pcscd_vpcd();
    let _reader = reader_lock();
    let site = Site::new();
    let enrolled = template(62);
    let probe = with_bits_changed(
        &enrolled,
        bits_between_security_and_convenience(3 * 24 * 24, 1),
    );
    let enrolled_file = site.root.join("enrolled.tpl");
    let probe_file = site.root.join("probe.tpl");
    std::fs::write(&enrolled_file, enrolled.encode()).expect("write");
    std::fs::write(&probe_file, probe.encode()).expect("write");
    let issuer = site.issuer.to_str().expect("utf-8 path");
    let enrol = |state: &Path, floor: Option<Profile>| {
        personalised_card_with_floor(
            state,
            &site.issuer,
            std::slice::from_ref(&enrolled_file),
            None,
            floor,
        )
        .1
    };

    // Without a floor: accepted under `convenience`.
    let plain = site.root.join("plain.state");
    enrol(&plain, None);
    let card = VirtualCard::insert(&plain);
    assert_eq!(
        profile_floor_line(),
        "profile floor: none (the card applies the profile a gate asks for)"
    );
    let (status, text) = card_verify(&site.issuer, &probe_file, Profile::Convenience);
    assert_eq!(status, Some(0), "no floor, convenience: {text}");
    card.remove();

    // With a `security` floor: the same request is refused, a try spent.
    let floored = site.root.join("floored.state");
    let output = enrol(&floored, Some(Profile::Security));
    assert!(output.contains("profile floor: security"), "{output}");
    let card = VirtualCard::insert(&floored);
    assert!(
        profile_floor_line().starts_with("profile floor: security"),
        "{}",
        profile_floor_line()
    );
    let (status, text) = card_verify(&site.issuer, &probe_file, Profile::Convenience);
    assert_eq!(status, Some(1), "security floor, convenience: {text}");
    assert!(
        text.contains("no match") && text.contains("4 tries left"),
        "{text}"
    );
    // The enrolled hand itself still passes (the floor is `security`'s threshold, not a refusal).
    let genuine_file = site.root.join("genuine.tpl");
    std::fs::write(&genuine_file, enrolled.encode()).expect("write");
    let (status, text) = card_verify(&site.issuer, &genuine_file, Profile::Convenience);
    assert_eq!(status, Some(0), "the enrolled hand under the floor: {text}");

    // ERASE clears the floor with the templates.
    let receipt = site.root.join("receipt.bin");
    palmgate(&[
        "card",
        "erase",
        "--reader",
        READER,
        "--issuer",
        issuer,
        "--receipt",
        receipt.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        profile_floor_line(),
        "profile floor: none (the card applies the profile a gate asks for)"
    );
    card.remove();
}

/// The whole gate: the sensor shows one palm (PNG, lossless, so the test extracts exactly the
/// gate's probe); the card holds a reference between the thresholds. A gate configured with
/// `matcher.profile = "security"` denies (no match); the same gate restarted with `convenience`
/// grants.
#[test]
fn the_gate_tells_the_card_its_configured_profile() {
    require_pcscd_vpcd();
    let broker = require_mqtt();
    let _reader = reader_lock();
    let site = Site::new();
    let gate = "e2e-profile";
    let images = site.palms.captures(5, 1);
    let shown = image::open(images.join("01.png"))
        .expect("capture")
        .into_luma8();
    // The gate sends the card every pose of the probe (applet 1.4).
    let probe = Extractor::builtin()
        .expect("built-in model")
        .extract_probe(&shown, InputKind::Hand)
        .expect("the synthetic palm extracts");
    assert_eq!(
        probe.poses.len(),
        palmgate_matcher::extract::probe_poses(InputKind::Hand).len(),
        "every pose of a whole hand cut"
    );
    let reference = reference_between_the_thresholds(&probe.poses);
    let reference_file = site.root.join("reference.tpl");
    std::fs::write(&reference_file, reference.encode()).expect("write");
    let card = site.root.join("card.state");
    personalised_card(&card, &site.issuer, &[reference_file], None);

    let mut mqtt = Subscriber::start(&format!("palmgate/{gate}/event/#"));
    let mut decisions = Vec::new();
    for profile in [Profile::Security, Profile::Convenience] {
        let (held, away) = presentation_ms(5);
        let sensor = sensor_simulator_with(
            &site.sensor_link(),
            &[
                "--format",
                "png",
                "--fps",
                "5",
                "--images",
                images.to_str().expect("utf-8 path"),
                "--hand-held-ms",
                &held.to_string(),
                "--hand-away-ms",
                &away.to_string(),
            ],
        );
        let running = site.start_gate(&broker, gate, sensor, |text| {
            text.replacen(
                "[matcher]\n",
                &format!("[matcher]\nprofile = \"{profile}\"\n"),
                1,
            )
        });
        let inserted = VirtualCard::insert(&card);
        let decision = mqtt.wait_for_matching(
            "",
            |payload| {
                matches!(
                    field(payload, "kind").as_deref(),
                    Some("access.granted" | "access.denied")
                )
            },
            PATIENCE,
        );
        inserted.remove();
        stop(running.daemon, &running.log);
        let log = std::fs::read_to_string(&running.log).unwrap_or_default();
        assert!(
            log.contains(&format!("profile={profile}")),
            "the daemon did not log its profile {profile}:\n{log}"
        );
        drop(running.sensor);
        // The next gate gets its own log, notification socket and sensor link.
        for leftover in [
            running.log.clone(),
            site.root.join("notify.sock"),
            site.sensor_link(),
        ] {
            std::fs::remove_file(leftover).ok();
        }
        decisions.push((profile, decision));
    }
    let (_, under_security) = &decisions[0];
    assert_eq!(
        field(under_security, "kind").as_deref(),
        Some("access.denied"),
        "security: {under_security}"
    );
    assert_eq!(
        field(under_security, "reason").as_deref(),
        Some("no_match"),
        "{under_security}"
    );
    let (_, under_convenience) = &decisions[1];
    assert_eq!(
        field(under_convenience, "kind").as_deref(),
        Some("access.granted"),
        "convenience: {under_convenience}"
    );

    // `palmgate card verify --image` cuts the probe as the gate does and sends every pose.
    let inserted = VirtualCard::insert(&card);
    let shown_file = images.join("01.png");
    let (status, text) = card_verify_from(&site.issuer, "--image", &shown_file, Profile::Security);
    assert_eq!(status, Some(1), "security: {text}");
    assert!(
        text.contains("no match") && text.contains("probe: 3 of 3 poses cut"),
        "{text}"
    );
    let (status, text) =
        card_verify_from(&site.issuer, "--image", &shown_file, Profile::Convenience);
    assert_eq!(status, Some(0), "convenience: {text}");
    assert!(text.contains("compares 3"), "{text}");
    inserted.remove();
}
