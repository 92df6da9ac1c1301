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
        Err(EvalError::UnknownIdentity(name)) => assert_eq!(name, "id07"),
        other => panic!("expected an unknown identity, got {:?}", other.map(|_| ())),
    }
}
