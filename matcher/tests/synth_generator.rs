//! The synthetic palm generator: determinism, sizes, geometry, and that genuine captures look more
//! alike than impostor ones.

use image::GrayImage;
use palmgate_matcher::roi::ROI_SIZE;
use palmgate_matcher::synth::{self, HAND_HEIGHT, HAND_WIDTH};

#[test]
fn images_are_deterministic_per_identity_and_capture() {
    assert_eq!(synth::roi_image(7, 3), synth::roi_image(7, 3));
    assert_ne!(synth::roi_image(7, 3), synth::roi_image(7, 4));
    assert_ne!(synth::roi_image(7, 3), synth::roi_image(8, 3));
    let a = synth::hand_capture(11, 2);
    let b = synth::hand_capture(11, 2);
    assert_eq!(a.image, b.image);
    assert_eq!(a.pose, b.pose);
    assert_ne!(a.image, synth::hand_image(11, 5));
}

#[test]
fn images_have_the_documented_sizes() {
    assert_eq!(
        synth::hand_image(1, 1).dimensions(),
        (HAND_WIDTH, HAND_HEIGHT)
    );
    assert_eq!(synth::roi_image(1, 1).dimensions(), (ROI_SIZE, ROI_SIZE));
}

/// The hand is bright on a dark background, and the ground-truth ROI lies on the hand, inside the
/// frame, under the valley line.
#[test]
fn hand_geometry_matches_the_image() {
    for capture in 0..4 {
        let hand = synth::hand_capture(3, capture);
        let [cx, cy] = hand.roi_centre;
        let half = hand.roi_side / 2.0;
        assert!(
            cx - half > 0.0 && cx + half < HAND_WIDTH as f32,
            "{:?}",
            hand.roi_centre
        );
        assert!(
            cy - half > 0.0 && cy + half < HAND_HEIGHT as f32,
            "{:?}",
            hand.roi_centre
        );
        let palm = mean(&hand.image, cx, cy, half / 2.0);
        let corner = mean(&hand.image, 20.0, 20.0, 15.0);
        assert!(palm > corner + 60.0, "palm {palm} vs background {corner}");
        // The valleys are above the ROI centre in the hand's own frame.
        let up = [hand.pose.angle.sin(), -hand.pose.angle.cos()];
        for v in hand.valleys {
            let along = (v[0] - cx) * up[0] + (v[1] - cy) * up[1];
            assert!(along > half, "valley {v:?} not above the ROI");
        }
    }
}

#[test]
fn genuine_rois_correlate_more_than_impostor_rois() {
    let rois: Vec<Vec<GrayImage>> = (0..4)
        .map(|identity| (0..3).map(|c| synth::roi_image(identity, c)).collect())
        .collect();
    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    for (i, a) in rois.iter().enumerate() {
        for (j, b) in rois.iter().enumerate() {
            for (ca, ia) in a.iter().enumerate() {
                for (cb, ib) in b.iter().enumerate() {
                    if (i, ca) < (j, cb) {
                        let score = high_pass_correlation(ia, ib);
                        if i == j {
                            genuine.push(score)
                        } else {
                            impostor.push(score)
                        }
                    }
                }
            }
        }
    }
    let worst_genuine = genuine.iter().copied().fold(f32::INFINITY, f32::min);
    let best_impostor = impostor.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    assert!(
        worst_genuine > best_impostor,
        "genuine {genuine:?} impostor {impostor:?}"
    );
}

fn mean(image: &GrayImage, cx: f32, cy: f32, r: f32) -> f32 {
    let mut sum = 0.0;
    let mut n = 0.0;
    for y in (cy - r) as u32..(cy + r) as u32 {
        for x in (cx - r) as u32..(cx + r) as u32 {
            sum += f32::from(image.get_pixel(x, y).0[0]);
            n += 1.0;
        }
    }
    sum / n
}

/// Best correlation over small shifts of the band-passed images (the crease pattern without
/// illumination, tolerant of the residual misalignment of an ROI).
fn high_pass_correlation(a: &GrayImage, b: &GrayImage) -> f32 {
    let (ha, n) = band_pass_half(a);
    let (hb, _) = band_pass_half(b);
    let mut best = f32::NEG_INFINITY;
    let border = 6i32;
    for dy in -4i32..=4 {
        for dx in -4i32..=4 {
            let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
            for y in border..n as i32 - border {
                for x in border..n as i32 - border {
                    let va = ha[(y * n as i32 + x) as usize];
                    let vb = hb[((y + dy) * n as i32 + x + dx) as usize];
                    dot += va * vb;
                    na += va * va;
                    nb += vb * vb;
                }
            }
            best = best.max(dot / (na * nb).sqrt());
        }
    }
    best
}

/// Difference of Gaussians, then halved resolution.
fn band_pass_half(image: &GrayImage) -> (Vec<f32>, u32) {
    let fine = image::imageops::blur(image, 1.5);
    let coarse = image::imageops::blur(image, 6.0);
    let n = image.width() / 2;
    let mut out = Vec::new();
    for y in 0..n {
        for x in 0..n {
            let (sx, sy) = (2 * x, 2 * y);
            out.push(
                f32::from(fine.get_pixel(sx, sy).0[0]) - f32::from(coarse.get_pixel(sx, sy).0[0]),
            );
        }
    }
    (out, n)
}
