//! `palmgate issuer …` and `palmgate card …` against `palmgate-vcard` behind pcscd + vpcd.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use palmgate_card::host::pcsc::wait_for_card;
use palmgate_system_tests::{reader_lock, require_pcscd_vpcd, templates, workspace_binary};

const READER: &str = "Virtual PCD 00 00";

struct VirtualCard(Child);

impl VirtualCard {
    fn start(state: &Path) -> Self {
        Self::start_with(state, &[])
    }

    /// With more `palmgate-vcard` options (`--applet-version 1.4`).
    fn start_with(state: &Path, options: &[&str]) -> Self {
        let vpcd = require_pcscd_vpcd();
        let child = Command::new(workspace_binary("palmgate-vcard"))
            .args(["--vpcd", &vpcd, "--state"])
            .arg(state)
            .args(options)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn palmgate-vcard");
        let card = Self(child);
        assert!(
            wait_for_card(READER, Duration::from_secs(10)).unwrap(),
            "virtual card did not appear"
        );
        card
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let deadline = Instant::now() + Duration::from_secs(10);
        while wait_for_card(READER, Duration::ZERO).unwrap_or(false) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn palmgate(args: &[&str]) -> Output {
    let output = Command::new(workspace_binary("palmgate"))
        .args(args)
        .output()
        .expect("run palmgate");
    eprintln!(
        "palmgate {}: {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn personalise(issuer: &str) -> Output {
    palmgate(&[
        "card",
        "personalise",
        "--reader",
        READER,
        "--issuer",
        issuer,
    ])
}

fn verify(issuer: &str, template: &str) -> Output {
    palmgate(&[
        "card",
        "verify",
        "--reader",
        READER,
        "--issuer",
        issuer,
        "--template",
        template,
    ])
}

/// `palmgate card enrol` with the issuer, then `arguments` (templates and options).
fn enrol(issuer: &str, arguments: &[&str]) -> Output {
    let mut args = vec!["card", "enrol", "--reader", READER, "--issuer", issuer];
    args.extend_from_slice(arguments);
    palmgate(&args)
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn write_template(path: &Path, seed: u64, changed: bool) {
    let template = if changed {
        templates::capture(seed, 19)
    } else {
        templates::template(seed)
    };
    std::fs::write(path, template.encode()).unwrap();
}

#[test]
fn card_commands_end_to_end() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let issuer = p("issuer");

    let init = palmgate(&["issuer", "init", "--out", &issuer]);
    assert!(init.status.success());
    assert!(stdout(&init).starts_with("issuer key id "));
    for file in [
        "issuer.key",
        "issuer.pub",
        "authority.key",
        "authority.cert",
    ] {
        assert!(dir.path().join("issuer").join(file).exists(), "{file}");
    }
    assert!(
        !palmgate(&["issuer", "init", "--out", &issuer])
            .status
            .success(),
        "must not overwrite an issuer"
    );

    write_template(Path::new(&p("right.tpl")), 1, false);
    write_template(Path::new(&p("left.tpl")), 2, false);
    write_template(Path::new(&p("right-probe.tpl")), 1, true);
    write_template(Path::new(&p("left-probe.tpl")), 2, true);
    write_template(Path::new(&p("left-other.tpl")), 4, false);
    write_template(Path::new(&p("left-other-probe.tpl")), 4, true);
    write_template(Path::new(&p("stranger.tpl")), 3, false);

    let _vcard = VirtualCard::start(&dir.path().join("card.state"));
    let info = palmgate(&["card", "info", "--reader", READER]);
    assert!(info.status.success());
    assert!(stdout(&info).contains("state: factory"));

    let personalised = personalise(&issuer);
    assert!(personalised.status.success());
    assert!(stdout(&personalised).starts_with("personalised card "));
    assert!(!personalise(&issuer).status.success());

    let enrolled = enrol(
        &issuer,
        &[
            "--template",
            &p("left.tpl"),
            &p("right.tpl"),
            &p("left-other.tpl"),
            "--duress-slot",
            "0",
            "--duress-slot",
            "2",
            "--tries",
            "3",
        ],
    );
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    // The hand's template goes first although it is slot 1: the card keeps a duress hand only
    // beside the hand's.
    assert!(
        stdout(&enrolled).starts_with("slot 1: enrolled (normal)\nslot 0: enrolled (duress)\n"),
        "{}",
        stdout(&enrolled)
    );
    let info = stdout(&palmgate(&["card", "info", "--reader", READER]));
    assert!(
        info.contains("state: personalised")
            && info.contains("threshold table: this release's")
            && info.contains("slots: 1 of 6 used")
            && info.contains("the slots counted are the hand's")
            && info.contains("tries left: 3 of 3"),
        "{info}"
    );

    let verify = |template: &str| verify(&issuer, &p(template));
    let matched = verify("right-probe.tpl");
    assert_eq!(
        (matched.status.code(), stdout(&matched).trim()),
        (Some(0), "match")
    );
    // Both duress slots are duress slots (`--duress-slot` repeated).
    for probe in ["left-probe.tpl", "left-other-probe.tpl"] {
        let duress = verify(probe);
        assert_eq!(
            (duress.status.code(), stdout(&duress).trim()),
            (Some(0), "match (duress)"),
            "{probe}"
        );
    }
    for left in [2, 1, 0] {
        let miss = verify("stranger.tpl");
        assert_eq!(
            (miss.status.code(), stdout(&miss).trim().to_owned()),
            (Some(1), format!("no match, {left} tries left"))
        );
    }
    let blocked = verify("right-probe.tpl");
    assert_eq!(
        (blocked.status.code(), stdout(&blocked).trim()),
        (Some(3), "blocked")
    );

    // A gate configured with another issuer refuses the card before any palm is sent.
    let other = p("other-issuer");
    assert!(
        palmgate(&["issuer", "init", "--out", &other])
            .status
            .success()
    );
    let refused = palmgate(&[
        "card",
        "verify",
        "--reader",
        READER,
        "--issuer",
        &other,
        "--template",
        &p("right-probe.tpl"),
    ]);
    assert_eq!(refused.status.code(), Some(2));

    let erase = palmgate(&[
        "card",
        "erase",
        "--reader",
        READER,
        "--issuer",
        &issuer,
        "--receipt",
        &p("receipt.bin"),
    ]);
    assert!(erase.status.success());
    assert!(stdout(&erase).starts_with("erased 3 slot(s)"));
    let receipt = palmgate(&[
        "card",
        "verify-receipt",
        "--issuer",
        &issuer,
        "--receipt",
        &p("receipt.bin"),
    ]);
    assert!(receipt.status.success());
    assert!(
        stdout(&receipt).contains("receipt valid") && stdout(&receipt).contains("slots erased: 3")
    );
    assert!(
        !palmgate(&[
            "card",
            "verify-receipt",
            "--issuer",
            &other,
            "--receipt",
            &p("receipt.bin")
        ])
        .status
        .success()
    );
    let mut forged = std::fs::read(p("receipt.bin")).unwrap();
    forged[40] ^= 0x01;
    std::fs::write(p("forged.bin"), forged).unwrap();
    assert!(
        !palmgate(&[
            "card",
            "verify-receipt",
            "--issuer",
            &issuer,
            "--receipt",
            &p("forged.bin")
        ])
        .status
        .success()
    );
    let info = stdout(&palmgate(&["card", "info", "--reader", READER]));
    assert!(info.contains("slots: 0 of 6 used"), "{info}");
}

/// The `verify name=value …` line of `palmgate card bench`, as (name, value) pairs.
fn bench_fields(bench: &Output) -> Vec<(String, u64)> {
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    stdout(bench)
        .trim()
        .strip_prefix("verify ")
        .expect("verify line")
        .split(' ')
        .map(|field| {
            let (name, value) = field.split_once('=').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// A card issued before the profile floor (applet 1.4) through pcscd + vpcd: `card info` says it
/// keeps none, `card enrol --profile-floor` is refused before anything is written (no slot used),
/// so are more templates than its four slots (and more than three of one hand, or a duress hand
/// alone), and without a floor it enrols and verifies as before.
#[test]
fn a_card_before_applet_1_5_is_refused_a_floor_and_nothing_is_written() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let issuer = p("issuer");
    assert!(
        palmgate(&["issuer", "init", "--out", &issuer])
            .status
            .success()
    );
    write_template(Path::new(&p("right.tpl")), 1, false);
    write_template(Path::new(&p("right-probe.tpl")), 1, true);

    let _vcard =
        VirtualCard::start_with(&dir.path().join("card.state"), &["--applet-version", "1.4"]);
    let personalise = personalise(&issuer);
    assert!(personalise.status.success());
    let info = stdout(&palmgate(&["card", "info", "--reader", READER]));
    assert!(info.contains("applet version: 1.4"), "{info}");
    assert!(
        info.contains("this applet counts a duress slot among the slots used"),
        "{info}"
    );
    assert!(
        info.contains("threshold table: an earlier release's (applet 1.4: one common shift"),
        "{info}"
    );
    assert!(
        info.contains("profile floor: none (applet 1.4 keeps no floor)"),
        "{info}"
    );

    let template = p("right.tpl");
    let enrol_with = |floor: &[&str]| {
        let mut args = vec!["--template", template.as_str()];
        args.extend_from_slice(floor);
        enrol(&issuer, &args)
    };
    let refused = enrol_with(&["--profile-floor", "security"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("no template was written")
            && stderr.contains("needs applet 1.5")
            && stderr.contains("runs applet 1.4"),
        "{stderr}"
    );
    let info = stdout(&palmgate(&["card", "info", "--reader", READER]));
    assert!(info.contains("slots: 0 of 4 used"), "{info}");
    // It has the four slots of applets before 1.8: five templates (three of the hand, two of
    // the duress hand) are refused before any is written; so are four of one hand, on any card.
    let t = template.as_str();
    let refused = enrol_with(&[t, t, t, t, "--duress-slot", "3", "--duress-slot", "4"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("the card has 4 slots; 5 templates given (nothing was written)"),
        "{stderr}"
    );
    let refused = enrol_with(&[t, t, t]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(
        stderr.contains("a hand holds at most 3 templates")
            && stderr.contains("4 normal and 0 duress given"),
        "{stderr}"
    );
    // A duress hand alone is refused too: it is enrolled beside the hand.
    let refused = enrol_with(&["--duress-slot", "0"]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("every template is a duress slot"),
        "{stderr}"
    );
    let info = stdout(&palmgate(&["card", "info", "--reader", READER]));
    assert!(info.contains("slots: 0 of 4 used"), "{info}");

    // Without a floor the old card enrols and matches as it always did.
    assert!(enrol_with(&[]).status.success());
    let matched = verify(&issuer, &p("right-probe.tpl"));
    assert_eq!(
        (matched.status.code(), stdout(&matched).trim()),
        (Some(0), "match")
    );
}

#[test]
fn card_bench_reports_median_p99_and_apdus() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let _vcard = VirtualCard::start(&dir.path().join("card.state"));
    let fields = bench_fields(&palmgate(&[
        "card", "bench", "--reader", READER, "--n", "20",
    ]));
    assert_eq!(
        fields.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["median_us", "p99_us", "apdus", "poses", "templates"]
    );
    assert!(fields[0].1 > 0 && fields[1].1 >= fields[0].1);
    assert_eq!(
        fields[2].1, 2,
        "session + verify must take 2 APDUs after SELECT"
    );
    assert_eq!(
        (fields[3].1, fields[4].1),
        (1, 1),
        "one pose, one template by default"
    );
    // A second run refuses: the card is no longer in the factory state.
    assert!(
        !palmgate(&["card", "bench", "--reader", READER, "--n", "1"])
            .status
            .success()
    );
}

/// What a gate's presentation costs: a sensor ROI's five poses against a hand's three templates
/// still travel in one extended VERIFY PALM, and the card matches them.
#[test]
fn card_bench_sends_a_gates_poses_against_several_templates() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let _vcard = VirtualCard::start(&dir.path().join("card.state"));
    let fields = bench_fields(&palmgate(&[
        "card",
        "bench",
        "--reader",
        READER,
        "--n",
        "5",
        "--poses",
        "5",
        "--templates",
        "3",
    ]));
    let value = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(value("poses"), Some(5));
    assert_eq!(value("templates"), Some(3));
    assert_eq!(
        value("apdus"),
        Some(2),
        "1476 bytes still go as one extended APDU"
    );
    let info = stdout(&palmgate(&["card", "info", "--reader", READER]));
    assert!(info.contains("slots: 3 of 6 used"), "{info}");
    // Out of range: refused by the command line, nothing sent.
    for (flag, value) in [("--poses", "6"), ("--poses", "0"), ("--templates", "7")] {
        let refused = palmgate(&["card", "bench", "--reader", READER, flag, value]);
        assert_eq!(refused.status.code(), Some(2), "{flag} {value}");
    }
}
