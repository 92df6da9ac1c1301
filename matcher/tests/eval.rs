//! Evaluation over a folder of synthetic palms: counts, rates and the JSON keys of `palmgate eval`.

use std::path::PathBuf;

use palmgate_matcher::eval::{self, EvalError, Report, SessionRule};
use palmgate_matcher::extract::{Extractor, InputKind, probe_poses};
use palmgate_matcher::synth;

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn synthetic_set(name: &str, identities: u64, samples: u64) -> TempDir {
    let dir = std::env::temp_dir().join(format!("palmgate-eval-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    for identity in 0..identities {
        let folder = dir.join(format!("id{identity:02}"));
        std::fs::create_dir_all(&folder).expect("create folder");
        for sample in 0..samples {
            synth::roi_image(100 + identity, sample)
                .save(folder.join(format!("{sample}.png")))
                .expect("write image");
        }
    }
    // Not an image, and a blank image that cannot give a template: ignored and counted in FTA.
    std::fs::write(dir.join("id00").join("notes.txt"), b"not an image").expect("write");
    image::GrayImage::new(128, 128)
        .save(dir.join("id00").join("blank.png"))
        .expect("write");
    TempDir(dir)
}

#[test]
fn evaluation_counts_every_pair_and_reports_the_documented_keys() {
    let set = synthetic_set("pairs", 3, 2);
    let samples = eval::scan(&set.0).expect("scan");
    assert_eq!(
        samples.len(),
        7,
        "6 palms + 1 blank image; the text file is skipped"
    );
    let extractor = Extractor::builtin().expect("model");
    let evaluation = eval::evaluate(
        &samples,
        &extractor,
        InputKind::Roi,
        probe_poses(InputKind::Roi),
        2,
        &|_: &str, _: usize, _: usize| {},
    )
    .expect("evaluate");
    let report = &evaluation.report;
    assert_eq!((report.identities, report.images), (3, 7));
    assert_eq!((report.genuine, report.impostor), (3, 12));
    assert_eq!(report.impostor_left_out, 0);
    assert!((report.fta - 1.0 / 7.0).abs() < 1e-12, "fta {}", report.fta);
    assert_eq!(evaluation.failures.len(), 1);
    assert!(report.eer >= 0.0 && report.eer <= 1.0);
    assert!(report.extract_ms_median > 0.0 && report.compare_us_median > 0.0);
    assert!(report.threshold_at_fmr_1e_3 > 0.2 && report.threshold_at_fmr_1e_3 < 0.6);

    let json = serde_json::to_value(report).expect("json");
    let mut keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let mut expected = vec![
        "identities",
        "images",
        "genuine",
        "impostor",
        "impostor_left_out",
        "fta",
        "eer",
        "fnmr_at_fmr_1e-2",
        "fnmr_at_fmr_1e-3",
        "fnmr_at_fmr_1e-4",
        "threshold_at_fmr_1e-3",
        "extract_ms_median",
        "compare_us_median",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let back: Report = serde_json::from_value(json).expect("round trip");
    assert_eq!(&back, report);
}

#[test]
fn a_single_identity_is_not_enough() {
    let set = synthetic_set("single", 1, 2);
    let samples = eval::scan(&set.0).expect("scan");
    let extractor = Extractor::builtin().expect("model");
    let result = eval::evaluate(
        &samples,
        &extractor,
        InputKind::Roi,
        &probe_poses(InputKind::Roi)[..1],
        1,
        &|_: &str, _: usize, _: usize| {},
    );
    assert!(result.is_err());
}

#[test]
fn a_hand_filed_under_two_names_is_left_out_of_the_impostors() {
    // id01 and id02 are captures of one synthetic palm filed under two names; id00 another palm.
    let dir = std::env::temp_dir().join(format!("palmgate-eval-same-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let set = TempDir(dir.clone());
    for (name, palm, captures) in [
        ("id00", 100, [0, 1]),
        ("id01", 101, [0, 1]),
        ("id02", 101, [2, 3]),
    ] {
        let folder = set.0.join(name);
        std::fs::create_dir_all(&folder).expect("create folder");
        for capture in captures {
            synth::roi_image(palm, capture)
                .save(folder.join(format!("{capture}.png")))
                .expect("write image");
        }
    }
    let samples = eval::scan(&set.0).expect("scan");
    let extractor = Extractor::builtin().expect("model");
    let evaluate = |same_hands: &[[String; 2]]| {
        eval::evaluate_set(
            &samples,
            &eval::load_file,
            SessionRule::Prefix,
            eval::Cutting {
                extractor: &extractor,
                input: InputKind::Roi,
                poses: &probe_poses(InputKind::Roi)[..1],
            },
            same_hands,
            2,
            &|_: &str, _: usize, _: usize| {},
        )
    };
    let names = |a: &str, b: &str| [a.to_owned(), b.to_owned()];
    let filed_apart = evaluate(&[]).expect("evaluate");
    let one_hand = evaluate(&[names("id02", "id01")]).expect("evaluate");
    let (before, after) = (&filed_apart.evaluation, &one_hand.evaluation);
    // 6 captures: 3 genuine pairs, 12 impostor pairs, 4 of them between id01 and id02.
    assert_eq!(
        (before.report.impostor, before.report.impostor_left_out),
        (12, 0)
    );
    assert_eq!(
        (after.report.impostor, after.report.impostor_left_out),
        (8, 4)
    );
    assert_eq!(after.report.genuine, 3);
    assert_eq!(one_hand.all_pairs.impostor.len(), 8);
    // The pairs left out are the ones that compared like one hand: the closest "impostors".
    let closest_before = before.scores.impostor[0];
    let closest_after = after.scores.impostor[0];
    assert!(
        closest_before < closest_after,
        "{closest_before} < {closest_after}"
    );
    assert!(
        one_hand
            .all_pairs
            .impostor
            .iter()
            .all(|t| ![(1, 2), (2, 1)].contains(&(t.probe, t.reference)))
    );
    match evaluate(&[names("id01", "id07")]) {
        Err(EvalError::UnknownIdentity {
            set: None,
            identity,
        }) => assert_eq!(identity, "id07"),
        other => panic!("expected an unknown identity, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_suite_refuses_a_mistyped_same_hand_pair_before_it_reads_any_image() {
    // The first set is fine; the last names an identity it does not have. Every set is listed and
    // checked first: no image is read, no set finishes, and the error names the set.
    let set = synthetic_set("suite-typo", 2, 2);
    let specs = [
        eval::SetSpec {
            name: "folder".to_owned(),
            input: InputKind::Roi,
            sessions: SessionRule::Prefix,
            source: eval::SetSource::Folder(set.0.clone()),
            same_hands: vec![["id00".to_owned(), "id01".to_owned()]],
        },
        eval::SetSpec {
            name: "made".to_owned(),
            input: InputKind::Roi,
            sessions: SessionRule::Prefix,
            source: eval::SetSource::Synthetic {
                first: 0,
                identities: 3,
                samples: 2,
            },
            same_hands: vec![["00001".to_owned(), "00009".to_owned()]],
        },
    ];
    let extractor = Extractor::builtin().expect("model");
    let images_read = std::sync::atomic::AtomicUsize::new(0);
    let sets_done = std::sync::atomic::AtomicUsize::new(0);
    let result = eval::evaluate_suite(
        &specs,
        &extractor,
        1,
        1,
        &|_: &str, _: usize, _: usize| {
            images_read.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
        &|_, _| {
            sets_done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        },
    );
    let error = result.map(|_| ()).expect_err("00009 is not in the set");
    assert_eq!(
        error.to_string(),
        "same hand: set made has no identity \"00009\""
    );
    assert!(matches!(
        error,
        EvalError::UnknownIdentity { set: Some(ref name), ref identity }
            if name == "made" && identity == "00009"
    ));
    assert_eq!(images_read.load(std::sync::atomic::Ordering::Relaxed), 0);
    assert_eq!(sets_done.load(std::sync::atomic::Ordering::Relaxed), 0);
}

#[test]
fn a_calibrated_threshold_names_the_set_whose_impostors_bound_it() {
    // 6 palms × 4 captures: 240 impostor pairs, enough for 1e-2 and not for 1e-3; 2 × 2: 4 pairs,
    // too few for any target, so never the binding set.
    let synthetic = |name: &str, identities: u64, samples: u64| eval::SetSpec {
        name: name.to_owned(),
        input: InputKind::Roi,
        sessions: SessionRule::Prefix,
        source: eval::SetSource::Synthetic {
            first: 0,
            identities,
            samples,
        },
        same_hands: Vec::new(),
    };
    let specs = [synthetic("few", 2, 2), synthetic("wide", 6, 4)];
    let extractor = Extractor::builtin().expect("model");
    let (suite, evaluations) = eval::evaluate_suite(
        &specs,
        &extractor,
        1,
        2,
        &|_: &str, _: usize, _: usize| {},
        &|_, _| {},
    )
    .expect("evaluate");
    let wide = &suite.sets[1];
    assert_eq!(wide.report.impostor, 240);
    let one_template = |profile: &str| {
        suite
            .calibrated
            .iter()
            .find(|c| c.profile == profile && c.enrolled == 1)
            .expect("every profile is calibrated")
    };
    let convenience = one_template("convenience");
    assert!(convenience.q16.is_some());
    assert_eq!(convenience.bound_by.as_deref(), Some("wide"));
    assert_eq!(convenience.bound_by_impostors, Some(240));
    for strict in ["balanced", "security"] {
        let c = one_template(strict);
        assert_eq!(
            (c.q16, c.bound_by.as_deref(), c.bound_by_impostors),
            (None, None, None),
            "{strict}: 240 trials cannot measure it"
        );
    }
    let json = serde_json::to_value(convenience).expect("serialise");
    assert_eq!(json["bound_by"], "wide");
    assert_eq!(json["bound_by_impostors"], 240);

    // The enrolment station's check: every hand of "wide" has three captures, none of "few".
    let station = &wide.enrolment_station;
    let names: Vec<&str> = station.iter().map(|o| o.profile.as_str()).collect();
    assert_eq!(names, ["convenience", "balanced", "security"]);
    assert!(station.iter().all(|o| o.hands == 6 && o.refused <= 6));
    assert!(
        station.windows(2).all(|w| w[0].refused <= w[1].refused),
        "a stricter profile never refuses fewer hands: {station:?}"
    );
    assert!(suite.sets[0].enrolment_station.iter().all(|o| o.hands == 0));
    assert!(
        station
            .iter()
            .all(|o| o.extra_captures == 2 && o.refused_after_extra_captures <= o.refused),
        "extra captures never refuse more hands: {station:?}"
    );
    assert!(
        station
            .iter()
            .all(|o| o.refused_short_of_captures == o.refused_after_extra_captures),
        "four captures a hand: every hand still refused had fewer than a station asks for"
    );
    // Enrolment as the station chooses it: the same profiles, and never more probes than the
    // first three captures leave (a hand enrolled from its fourth has none left).
    let chosen: Vec<&str> = wide
        .profiles_3_station
        .iter()
        .map(|o| o.profile.as_str())
        .collect();
    assert_eq!(chosen, ["convenience", "balanced", "security"]);
    for (station, first) in wide.profiles_3_station.iter().zip(&wide.profiles_3) {
        assert_eq!(station.calibrated_folds, first.calibrated_folds);
        assert!(station.genuine <= first.genuine, "{station:?} {first:?}");
    }
    // Its threshold-free figures: the trials of `balanced`'s choice, every probe it leaves and
    // every impostor trial of its references.
    let figures = wide
        .enrolment_3_station
        .as_ref()
        .expect("wide has genuine and impostor trials as the station enrols");
    let balanced = &evaluations[1].station_enrolment[1].trials;
    assert_eq!(
        (figures.genuine, figures.impostor),
        (balanced.genuine.len(), balanced.impostor.len())
    );
    assert!(figures.genuine > 0 && figures.impostor > 0);
    assert_eq!(figures.figures, balanced.histogram().figures());
    assert!(suite.sets[0].enrolment_3_station.is_none(), "few: no hand");
    let json = serde_json::to_value(wide).expect("serialise");
    assert!(json["enrolment_3_station"]["figures"]["eer"].is_number());
    assert_eq!(json["enrolment_station"][1]["hands"], 6);
    assert_eq!(json["enrolment_station"][1]["extra_captures"], 2);
    assert!(json["enrolment_station"][1]["refused_after_extra_captures"].is_u64());
    assert_eq!(json["profiles_3_station"][1]["profile"], "balanced");
}
