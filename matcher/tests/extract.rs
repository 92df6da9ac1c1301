//! Extraction pipeline on the project's own synthetic palms (no research data needed).

use palmgate_matcher::extract::{ExtractError, Extractor, InputKind};
use palmgate_matcher::synth;
use palmgate_matcher::template::{ENCODED_LEN, Template};
use palmgate_matcher::{Threshold, compare};

fn distance(a: &Template, b: &Template) -> f64 {
    f64::from(compare(a, b).expect("same algorithm").distance_q16()) / 65536.0
}

#[test]
fn roi_templates_separate_genuine_from_impostor() {
    let extractor = Extractor::builtin().expect("built-in model");
    let templates: Vec<Vec<Template>> = (0..3u64)
        .map(|identity| {
            (0..2u64)
                .map(|capture| {
                    extractor
                        .extract(&synth::roi_image(identity, capture), InputKind::Roi)
                        .expect("synthetic ROI gives a template")
                })
                .collect()
        })
        .collect();
    let mut worst_genuine = 0.0f64;
    let mut best_impostor = 1.0f64;
    for (i, a) in templates.iter().enumerate() {
        worst_genuine = worst_genuine.max(distance(&a[0], &a[1]));
        for b in &templates[i + 1..] {
            for x in a {
                for y in b {
                    best_impostor = best_impostor.min(distance(x, y));
                }
            }
        }
    }
    assert!(
        worst_genuine < best_impostor,
        "genuine {worst_genuine} vs impostor {best_impostor}"
    );
    // Impostor distances sit near the middle of the scale: the code is not degenerate.
    assert!(best_impostor > 0.35, "impostor {best_impostor}");
    let genuine = compare(&templates[0][0], &templates[0][1]).expect("same algorithm");
    assert!(
        genuine.is_match(Threshold::DEFAULT),
        "genuine distance {worst_genuine}"
    );
}

#[test]
fn extraction_is_deterministic_and_round_trips() {
    let extractor = Extractor::builtin().expect("built-in model");
    let roi = synth::roi_image(11, 0);
    let a = extractor.extract(&roi, InputKind::Roi).expect("template");
    let b = extractor.extract(&roi, InputKind::Roi).expect("template");
    let bytes = a.encode();
    assert_eq!(bytes, b.encode());
    assert_eq!(bytes.len(), ENCODED_LEN);
    assert_eq!(Template::decode(&bytes).expect("decodes").encode(), bytes);
    assert_eq!(a.valid_cells(), 576, "a given ROI is valid everywhere");
}

#[test]
fn whole_hand_matches_its_own_roi_capture() {
    let extractor = Extractor::builtin().expect("built-in model");
    let from_hand = extractor
        .extract_detailed(&synth::hand_image(5, 0), InputKind::Hand)
        .expect("synthetic hand gives a template");
    assert!(from_hand.valid_cells >= palmgate_matcher::extract::MIN_VALID_CELLS);
    let same = extractor
        .extract(&synth::hand_image(5, 1), InputKind::Hand)
        .expect("template");
    let other = extractor
        .extract(&synth::hand_image(6, 0), InputKind::Hand)
        .expect("template");
    let genuine = distance(&from_hand.template, &same);
    let impostor = distance(&from_hand.template, &other);
    assert!(
        genuine < impostor,
        "genuine {genuine} vs impostor {impostor}"
    );
}

#[test]
fn blank_images_are_refused_with_a_reason() {
    let extractor = Extractor::builtin().expect("built-in model");
    let blank = image::GrayImage::from_pixel(640, 480, image::Luma([20]));
    let error = extractor
        .extract(&blank, InputKind::Hand)
        .expect_err("no hand in a blank image");
    assert!(matches!(error, ExtractError::Roi(_)), "{error}");
    // The reason is in the text and not also the source: a printed chain says it once.
    assert!(
        error.to_string().starts_with("no palm ROI: no hand"),
        "{error}"
    );
    assert!(std::error::Error::source(&error).is_none(), "{error}");
    let tiny = image::GrayImage::new(8, 8);
    assert!(extractor.extract(&tiny, InputKind::Roi).is_err());
}

#[test]
fn extractor_can_be_shared_with_blocking_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>(_: &T) {}
    let extractor = Extractor::builtin().expect("built-in model");
    assert_send_sync(&extractor);
    let roi = synth::roi_image(2, 0);
    let shared = std::sync::Arc::new(extractor);
    let worker = {
        let shared = std::sync::Arc::clone(&shared);
        let roi = roi.clone();
        std::thread::spawn(move || {
            shared
                .extract(&roi, InputKind::Roi)
                .expect("template")
                .encode()
        })
    };
    let here = shared
        .extract(&roi, InputKind::Roi)
        .expect("template")
        .encode();
    assert_eq!(worker.join().expect("worker"), here);
}

#[test]
fn underexposed_roi_is_refused_with_the_quality_reason() {
    let extractor = Extractor::builtin().expect("built-in model");
    let mut dark = synth::roi_image(3, 0);
    for pixel in dark.pixels_mut() {
        pixel.0[0] /= 12;
    }
    let error = extractor
        .extract(&dark, InputKind::Roi)
        .expect_err("too dark");
    assert!(matches!(error, ExtractError::Quality(_)), "{error}");
    assert!(error.to_string().contains("underexposed"), "{error}");
}

#[test]
fn a_probe_is_cut_at_the_found_pose_and_at_the_turned_and_slid_ones() {
    use palmgate_matcher::compare_posed;
    use palmgate_matcher::extract::{PROBE_POSES, probe_poses};
    let extractor = Extractor::builtin().expect("built-in model");
    let image = synth::roi_image(4, 0);
    let probe = extractor
        .extract_probe(&image, InputKind::Roi)
        .expect("synthetic ROI gives a probe");
    assert_eq!(probe.poses.len(), probe_poses(InputKind::Roi).len());
    assert_eq!(probe_poses(InputKind::Roi).len(), 5);
    assert_eq!(probe_poses(InputKind::Hand), &PROBE_POSES[..3]);
    let plain = extractor.extract(&image, InputKind::Roi).expect("template");
    assert_eq!(distance(&probe.poses[0], &plain), 0.0);
    assert_eq!(distance(&probe.extraction.template, &plain), 0.0);
    // A reference enrolled from a hand turned by +5° is the probe's third pose exactly; the pose
    // found alone is far from it (rotation is not a shift), every pose together finds it.
    let dynamic = image::DynamicImage::ImageLuma8(image.clone());
    let turned = extractor
        .extract_image_probe(&dynamic, InputKind::Roi, &PROBE_POSES[2..])
        .expect("turned reference")
        .poses
        .remove(0);
    let found_only = distance(&probe.poses[0], &turned);
    let posed = compare_posed(&probe.poses, std::slice::from_ref(&turned))
        .expect("same algorithm")
        .distance_q16();
    assert_eq!(posed, 0, "found-only distance {found_only}");
    assert!(found_only > 0.1, "{found_only}");
}
