//! `palmgate enrol` (the enrolment station) end to end: the real binary, the sensor simulator on a
//! pseudo-terminal, and `palmgate-vcard` behind the real pcscd + vpcd.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use palmgate_matcher::extract::{Extractor, InputKind};
use palmgate_system_tests::gate::{
    ChildGuard, READER, Subscriber, VirtualCard, palmgate, sensor_simulator_with,
};
use palmgate_system_tests::{reader_lock, require_mqtt, workspace_binary};

/// The simulator on a pty at `link`, with extra `palmgate sensor simulate` arguments. Frames are
/// served as GRAY8 so that the images the station extracts are exactly the generator's. The hand
/// is held 120 ms, then lifted for 80 ms: each presentation shows the source's next image, and the
/// station takes at most one capture per presentation.
fn simulator(link: &Path, source: &[&str]) -> ChildGuard {
    simulator_holding(link, 120, source)
}

/// [`simulator`] with the hand held `held_ms` per presentation.
fn simulator_holding(link: &Path, held_ms: u64, source: &[&str]) -> ChildGuard {
    let held_ms = held_ms.to_string();
    sensor_simulator_with(
        link,
        &[
            &[
                "--format",
                "gray8",
                "--fps",
                "50",
                "--hand-held-ms",
                held_ms.as_str(),
                "--hand-away-ms",
                "80",
            ],
            source,
        ]
        .concat(),
    )
}

struct Station {
    dir: PathBuf,
    issuer: String,
    audit: PathBuf,
}

impl Station {
    fn new(dir: &Path) -> Self {
        let issuer = dir.join("issuer").display().to_string();
        palmgate(&["issuer", "init", "--out", &issuer]);
        Self {
            dir: dir.to_path_buf(),
            issuer,
            audit: dir.join("enrolment").join("audit.jsonl"),
        }
    }

    /// Runs `palmgate enrol` (stdin is not a terminal) with the common arguments and `extra`.
    fn enrol(&self, sensor: &Path, extra: &[&str]) -> Output {
        let output = Command::new(workspace_binary("palmgate"))
            .args([
                "enrol",
                "--reader",
                READER,
                "--issuer",
                &self.issuer,
                "--sensor",
            ])
            .arg(sensor)
            .arg("--audit-log")
            .arg(&self.audit)
            .args(["--wait", "10"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        eprintln!(
            "palmgate enrol {extra:?}: {}\n--- stdout\n{}--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Runs `palmgate enrol` on a pseudo-terminal (util-linux `script`), typing `answer` at the
    /// consent prompt. Standard output and error both come back in `stdout`.
    fn enrol_on_terminal(&self, sensor: &Path, extra: &[&str], answer: &str) -> Output {
        use std::io::Write;
        let quote = |arg: &str| format!("'{arg}'");
        let mut words = vec![
            quote(workspace_binary("palmgate").to_str().unwrap()),
            "enrol".to_string(),
        ];
        for arg in [
            "--reader",
            READER,
            "--issuer",
            &self.issuer,
            "--sensor",
            sensor.to_str().unwrap(),
            "--audit-log",
            self.audit.to_str().unwrap(),
            "--wait",
            "10",
        ]
        .iter()
        .chain(extra)
        {
            words.push(quote(arg));
        }
        let mut child = Command::new("script")
            .args([
                "--quiet",
                "--return",
                "--command",
                &words.join(" "),
                "/dev/null",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("util-linux script");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        eprintln!(
            "palmgate enrol {extra:?} on a terminal, answering {answer:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
        output
    }

    fn audit_lines(&self) -> Vec<serde_json::Value> {
        match std::fs::read_to_string(&self.audit) {
            Ok(text) => text
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => panic!("audit log: {error}"),
        }
    }

    /// `palmgate card info` output.
    fn card_info(&self) -> String {
        palmgate(&["card", "info", "--reader", READER])
    }

    /// `palmgate card verify` with a template of capture `capture` of synthetic `identity`.
    fn card_verify(&self, identity: u64, capture: u64) -> Output {
        let template = synthetic_template(identity, capture);
        let path = self.dir.join(format!("probe-{identity}-{capture}.tpl"));
        std::fs::write(&path, template).unwrap();
        Command::new(workspace_binary("palmgate"))
            .args([
                "card",
                "verify",
                "--reader",
                READER,
                "--issuer",
                &self.issuer,
            ])
            .arg("--template")
            .arg(&path)
            .output()
            .unwrap()
    }
}

fn synthetic_template(identity: u64, capture: u64) -> Vec<u8> {
    let extractor = Extractor::builtin().unwrap();
    let image = palmgate_matcher::synth::hand_image(identity, capture);
    extractor
        .extract(&image, InputKind::Hand)
        .unwrap()
        .encode()
        .to_vec()
}

/// A folder of PNG images for the simulator's `--images`, in order: `Some((identity, capture))` a
/// synthetic hand, `None` an empty (black) frame.
fn image_folder(dir: &Path, sequence: &[Option<(u64, u64)>]) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for (index, item) in sequence.iter().enumerate() {
        let image = match item {
            Some((identity, capture)) => palmgate_matcher::synth::hand_image(*identity, *capture),
            None => image::GrayImage::new(640, 480),
        };
        image.save(images.join(format!("{index:02}.png"))).unwrap();
    }
    images
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

#[test]
fn factory_card_is_personalised_enrolled_verified_and_reenrolled_only_on_request() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let card_state = dir.path().join("card.state");
    let _card = VirtualCard::insert(&card_state);
    assert!(station.card_info().contains("state: factory"));

    // One person (synthetic identity 0): captures 0, 1, 2, … in turn.
    let link = dir.path().join("sensor");
    let sim = simulator(&link, &["--synthetic", "1"]);
    let first = station.enrol(&link, &["--consent-confirmed"]);
    assert_eq!(first.status.code(), Some(0), "enrolment must succeed");
    let out = text(&first.stdout);
    assert!(out.contains("card in the factory state"), "{out}");
    for number in 1..=3 {
        assert!(
            out.contains(&format!("hand capture {number} of 3: accepted")),
            "{out}"
        );
    }
    assert!(out.contains("3 pairs match"), "{out}");
    // Every accepted capture is enrolled; one verification for the hand.
    for slot in 0..3 {
        assert!(
            out.contains(&format!("slot {slot}: enrolled (normal)")),
            "{out}"
        );
    }
    assert!(out.contains("verification (hand): match"), "{out}");
    assert_eq!(out.matches("verification (hand)").count(), 1, "{out}");
    assert!(out.contains("enrolled and verified"), "{out}");
    let info = station.card_info();
    assert!(info.contains("state: personalised"), "{info}");
    assert!(info.contains("slots: 3 of 6 used"), "{info}");
    let card_id = info
        .lines()
        .find_map(|line| line.strip_prefix("card id: "))
        .unwrap()
        .to_string();

    // The audit log: consent (hash of the text shown, time, card) and completion; mode 0600.
    let lines = station.audit_lines();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["enrol.consent", "enrol.completed"]);
    let consent = &lines[0];
    let shown_hash = out
        .lines()
        .find_map(|line| line.strip_prefix("consent text sha256: "))
        .unwrap();
    assert_eq!(consent["consent_text_sha256"], shown_hash);
    assert_eq!(shown_hash.len(), 64);
    assert_eq!(consent["card_id"], card_id.as_str());
    assert_eq!(consent["method"], "flag");
    let time = consent["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    let mut keys: Vec<&String> = consent.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "card_id",
            "consent_text_sha256",
            "duress_hand",
            "kind",
            "method",
            "time"
        ]
    );
    assert_eq!(lines[1]["verified"], true);
    assert_eq!(lines[1]["personalised"], true);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&station.audit)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // No template bytes in the log, raw or hex (captures 0..=3 were extracted: 3 + verification).
    let log = std::fs::read(&station.audit).unwrap();
    for capture in 0..=3 {
        let template = synthetic_template(0, capture);
        let payload = &template[4..];
        assert!(
            !contains_bytes(&log, &payload[..32]),
            "raw template bytes in the log"
        );
        let hex_text = hex::encode(&payload[..32]);
        assert!(
            !contains_bytes(&log, hex_text.as_bytes()),
            "template hex in the log"
        );
    }

    // A fresh capture of the same person matches on the card; another person does not.
    let verify = station.card_verify(0, 20);
    assert_eq!(text(&verify.stdout).trim(), "match");
    let stranger = station.card_verify(5, 1);
    assert!(
        text(&stranger.stdout).starts_with("no match"),
        "{}",
        text(&stranger.stdout)
    );

    // Already enrolled: refused without --re-enrol, nothing changes.
    let again = station.enrol(&link, &["--consent-confirmed"]);
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(err.contains("already has 3 enrolled template(s)"), "{err}");
    assert!(err.contains("--re-enrol"), "{err}");
    assert_eq!(station.audit_lines().len(), 2);
    assert!(station.card_info().contains("slots: 3 of 6 used"));

    // With --re-enrol: erased first (receipt next to the audit log), then enrolled again, this
    // time with a profile floor (the gates' own profile: a stricter floor's effect on a probe is
    // shown by profile_e2e); the records are also published as events for the dashboards.
    assert!(
        station.card_info().contains("profile floor: none"),
        "no floor before"
    );
    let broker = format!("mqtt://{}", require_mqtt());
    let mut mqtt = Subscriber::start("palmgate/enrol-desk/event/#");
    let re = station.enrol(
        &link,
        &[
            "--consent-confirmed",
            "--re-enrol",
            "--broker",
            &broker,
            "--station",
            "enrol-desk",
            "--profile-floor",
            "balanced",
        ],
    );
    assert_eq!(re.status.code(), Some(0), "{}", text(&re.stderr));
    let consent = mqtt.wait_for("/event/enrol.consent", Duration::from_secs(30));
    let erased_event = mqtt.wait_for("/event/card.erased", Duration::from_secs(30));
    let completed = mqtt.wait_for("/event/enrol.completed", Duration::from_secs(30));
    for event in [&consent, &erased_event, &completed] {
        let event: serde_json::Value = serde_json::from_str(event).unwrap();
        assert_eq!(event["card_id"], card_id.as_str(), "{event}");
        assert_eq!(event["gate"], "enrol-desk", "{event}");
    }
    assert!(consent.contains("consent_text_sha256="), "{consent}");
    assert!(erased_event.contains("\"receipt\""), "{erased_event}");
    assert!(
        completed.contains(
            "slots=normal,normal,normal verified=true personalised=false profile_floor=balanced"
        ),
        "{completed}"
    );
    let out = text(&re.stdout);
    assert!(out.contains("erased 3 slot(s)"), "{out}");
    let lines = station.audit_lines();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "enrol.consent",
            "enrol.completed",
            "enrol.consent",
            "card.erased",
            "enrol.completed"
        ]
    );
    let erased = &lines[3];
    assert_eq!(erased["card_id"], card_id.as_str());
    assert_eq!(erased["slots_erased"], 3);
    let receipt = PathBuf::from(erased["receipt_file"].as_str().unwrap());
    assert_eq!(receipt.parent(), station.audit.parent());
    assert!(receipt.exists());
    let checked = palmgate(&[
        "card",
        "verify-receipt",
        "--issuer",
        &station.issuer,
        "--receipt",
        receipt.to_str().unwrap(),
    ]);
    assert!(checked.contains("receipt valid"), "{checked}");
    assert!(
        checked.contains(&format!("card id: {card_id}")),
        "{checked}"
    );
    assert_eq!(lines[4]["personalised"], false);
    assert_eq!(lines[4]["profile_floor"], "balanced");
    let info = station.card_info();
    assert!(info.contains("slots: 3 of 6 used"), "{info}");
    assert!(info.contains("profile floor: balanced"), "{info}");
    assert_eq!(text(&station.card_verify(0, 21).stdout).trim(), "match");
    drop(sim);
}

#[test]
fn captures_that_do_not_match_each_other_are_refused_and_nothing_is_written() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    // Two people in turn: identity 0, identity 1, identity 0, … With no extra captures the
    // first three are the series (with extra captures, identity 0's 1, 3 and 5 would agree).
    let link = dir.path().join("sensor");
    let _sim = simulator(&link, &["--synthetic", "2"]);
    let output = station.enrol(&link, &["--consent-confirmed", "--extra-captures", "0"]);
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(
        err.contains("the captures do not match each other: capture 1 and capture 2: distance 0."),
        "{err}"
    );
    // The station's default: `balanced`, one template, the later capture at a whole hand's poses
    // (`--input hand`, the default), as a card compares a probe.
    let poses = palmgate_matcher::extract::probe_poses(InputKind::Hand);
    let threshold = f64::from(
        palmgate_matcher::Profile::Balanced
            .threshold(1, poses.len())
            .q16(),
    ) / 65536.0;
    assert!(
        err.contains(&format!("> threshold {threshold:.3}")),
        "{err}"
    );
    assert!(err.contains("capture 2 and capture 3"), "{err}");
    // Captures 1 and 3 are the same person: not named.
    assert!(!err.contains("capture 1 and capture 3"), "{err}");
    let info = station.card_info();
    assert!(info.contains("state: factory"), "{info}");
    assert!(info.contains("slots: 0 of"), "{info}");
    assert!(station.audit_lines().is_empty());
}

#[test]
fn a_series_that_disagrees_asks_for_extra_captures_and_enrols_three_that_agree() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    // Two people in turn (0, 1, 0, 1, 0, …): captures 1–3 disagree, the first extra (identity 1)
    // does not help, the second (identity 0) completes 1, 3 and 5, which are enrolled (whether
    // the verification capture after them is identity 0's or 1's is the simulator's timing).
    let link = dir.path().join("sensor");
    let _sim = simulator(&link, &["--synthetic", "2"]);
    let output = station.enrol(&link, &["--consent-confirmed"]);
    let out = text(&output.stdout);
    let err = text(&output.stderr);
    assert!(
        out.contains("the captures do not match each other: capture 1 and capture 2"),
        "{out}\n{err}"
    );
    assert!(out.contains("(extra capture 1 of 2)"), "{out}");
    assert!(out.contains("(extra capture 2 of 2)"), "{out}");
    // The extra captures go on with the series' numbers, as the pairs name them.
    assert!(out.contains("hand capture 4 of 4: accepted"), "{out}");
    assert!(out.contains("hand capture 5 of 5: accepted"), "{out}");
    assert!(!out.contains("capture 1 of 1"), "{out}");
    assert!(out.contains("hand: 3 pairs match"), "{out}");
    let info = station.card_info();
    assert!(info.contains("slots: 3 of 6 used"), "{info}");
    let completed = station
        .audit_lines()
        .into_iter()
        .find(|line| line["kind"] == "enrol.completed")
        .unwrap_or_else(|| panic!("no enrol.completed: {err}"));
    assert_eq!(
        completed["slots"].as_array().map(Vec::len),
        Some(3),
        "{completed}"
    );
}

#[test]
fn without_consent_on_a_non_terminal_nothing_is_captured_or_written() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    // No sensor at all: consent is asked before the sensor is touched (a capture attempt would
    // end in a sensor error, exit status 2).
    let output = station.enrol(&dir.path().join("no-sensor"), &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(err.contains("consent not confirmed"), "{err}");
    assert!(err.contains("--consent-confirmed"), "{err}");
    assert!(text(&output.stdout).contains("consent text sha256: "));
    // On a terminal the station asks; Enter or anything but yes is a no.
    for answer in ["", "n", "ok"] {
        let output = station.enrol_on_terminal(&dir.path().join("no-sensor"), &[], answer);
        assert_eq!(output.status.code(), Some(1));
        let out = text(&output.stdout);
        assert!(out.contains("do they consent to enrolment? [y/N]"), "{out}");
        assert!(out.contains("consent not given"), "{out}");
    }
    let info = station.card_info();
    assert!(info.contains("state: factory"), "{info}");
    assert!(station.audit_lines().is_empty());
}

#[test]
fn duress_hand_goes_to_a_duress_slot_with_feedback_for_a_refused_capture() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    // The sensor's sequence: hand (identity 3) ×3 with an empty frame among them, the other hand
    // (identity 4) ×3, then one fresh capture of each for the verification.
    let images = image_folder(
        dir.path(),
        &[
            Some((3, 0)),
            None,
            Some((3, 1)),
            Some((3, 2)),
            Some((4, 0)),
            Some((4, 1)),
            Some((4, 2)),
            Some((3, 3)),
            Some((4, 3)),
        ],
    );
    let link = dir.path().join("sensor");
    let _sim = simulator(&link, &["--images", images.to_str().unwrap()]);
    // Consent given at the terminal prompt this time.
    let output = station.enrol_on_terminal(&link, &["--duress-hand"], "yes");
    assert_eq!(output.status.code(), Some(0));
    let out = text(&output.stdout);
    assert!(
        out.contains("hand capture refused (1 of 10 allowed): no hand"),
        "{out}"
    );
    assert!(out.contains("place the hand over the sensor"), "{out}");
    assert!(
        out.contains("duress hand capture 3 of 3: accepted"),
        "{out}"
    );
    // Three captures of each hand (six slots since applet 1.8): the duress hand's in the card's
    // last three slots.
    for (slot, kind) in [
        (0, "normal"),
        (1, "normal"),
        (2, "normal"),
        (3, "duress"),
        (4, "duress"),
        (5, "duress"),
    ] {
        assert!(
            out.contains(&format!("slot {slot}: enrolled ({kind})")),
            "{out}"
        );
    }
    assert!(out.contains("verification (hand): match"), "{out}");
    assert!(out.contains("verification (duress hand): match"), "{out}");
    // The identity counts the hand's templates, not the duress hand's.
    assert!(station.card_info().contains("slots: 3 of 6 used"));
    let verify = station.card_verify(4, 9);
    assert_eq!(text(&verify.stdout).trim(), "match (duress)");
    let verify = station.card_verify(3, 9);
    assert_eq!(text(&verify.stdout).trim(), "match");
    let lines = station.audit_lines();
    assert_eq!(lines[0]["duress_hand"], true);
    assert_eq!(lines[0]["method"], "prompt");
    let kinds: Vec<&str> = lines[1]["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|slot| slot["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(
        kinds,
        ["normal", "normal", "normal", "duress", "duress", "duress"]
    );
}

#[test]
fn each_capture_comes_from_its_own_presentation_of_the_hand() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    // The hand stays 1.5 s in front of the sensor (≈ 75 identical frames at 50 fps) before it is
    // lifted. Three captures from one presentation would be the same image (distance 0.000).
    let link = dir.path().join("sensor");
    let _sim = simulator_holding(&link, 1_500, &["--synthetic", "1"]);
    let output = station.enrol(&link, &["--consent-confirmed"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    assert!(out.contains("Lift the hand and present it again."), "{out}");
    let largest = out
        .lines()
        .find_map(|line| line.split("(largest distance ").nth(1))
        .and_then(|rest| rest.split(')').next())
        .and_then(|number| number.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no distance report in {out}"));
    assert!(
        largest > 0.0,
        "the captures are identical: taken from one presentation\n{out}"
    );
    assert!(out.contains("enrolled and verified"), "{out}");
}

#[test]
fn a_hand_that_is_never_lifted_gives_one_capture_and_a_clear_error() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    let link = dir.path().join("sensor");
    // Held for ten minutes: longer than the station waits (10 s).
    let _sim = simulator_holding(&link, 600_000, &["--synthetic", "1"]);
    let output = station.enrol(&link, &["--consent-confirmed"]);
    assert_eq!(output.status.code(), Some(2));
    let out = text(&output.stdout);
    assert!(out.contains("hand capture 1 of 3: accepted"), "{out}");
    assert!(!out.contains("hand capture 2 of 3"), "{out}");
    let err = text(&output.stderr);
    assert!(err.contains("still sees the hand after 10 s"), "{err}");
    assert!(err.contains("lifted and presented again"), "{err}");
    // Nothing was written to the card and no consent was recorded for it.
    assert!(station.card_info().contains("state: factory"));
    assert!(station.audit_lines().is_empty());
}

#[test]
fn an_enrolment_that_fails_after_writing_still_records_and_publishes_what_happened() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let station = Station::new(dir.path());
    let _card = VirtualCard::insert(&dir.path().join("card.state"));
    // Three good captures of identity 6, then only empty frames: the verification gives up.
    let sequence: Vec<Option<(u64, u64)>> = (0..6_u64).map(|n| (n < 3).then_some((6, n))).collect();
    let images = image_folder(dir.path(), &sequence);
    let link = dir.path().join("sensor");
    let _sim = simulator(&link, &["--images", images.to_str().unwrap()]);
    let broker = format!("mqtt://{}", require_mqtt());
    let mut mqtt = Subscriber::start("palmgate/desk-2/event/#");
    let output = station.enrol(
        &link,
        &[
            "--consent-confirmed",
            "--max-refused",
            "1",
            "--broker",
            &broker,
            "--station",
            "desk-2",
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let err = text(&output.stderr);
    assert!(
        err.contains("the card is enrolled but not verified"),
        "{err}"
    );
    // The card was written: the audit log and the dashboards both know it, unverified.
    assert!(station.card_info().contains("slots: 3 of 6 used"));
    let lines = station.audit_lines();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["enrol.consent", "enrol.completed"]);
    assert_eq!(lines[1]["verified"], false);
    let consent = mqtt.wait_for("/event/enrol.consent", Duration::from_secs(30));
    assert!(consent.contains("consent_text_sha256="), "{consent}");
    let completed = mqtt.wait_for("/event/enrol.completed", Duration::from_secs(30));
    assert!(completed.contains("verified=false"), "{completed}");
}
