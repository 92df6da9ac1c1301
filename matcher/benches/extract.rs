//! Template extraction: from a 128×128 ROI, and from an 800×600 whole-hand image (ROI + extraction),
//! once and at the gate's probe poses (5 for an ROI, 3 for a whole hand).
//!
//! `cargo bench -p palmgate-matcher --bench extract`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use palmgate_matcher::extract::{Extractor, InputKind};
use palmgate_matcher::synth;

fn bench_extract(c: &mut Criterion) {
    let extractor = Extractor::builtin().expect("built-in model loads");
    let roi = synth::roi_image(7, 1);
    c.bench_function("extract 128x128 ROI", |b| {
        b.iter(|| {
            extractor
                .extract(black_box(&roi), InputKind::Roi)
                .expect("synthetic ROI is usable")
        })
    });
    let hand = image::imageops::resize(
        &synth::hand_image(7, 1),
        800,
        600,
        image::imageops::FilterType::Triangle,
    );
    c.bench_function("extract 800x600 whole hand", |b| {
        b.iter(|| {
            extractor
                .extract(black_box(&hand), InputKind::Hand)
                .expect("synthetic hand is usable")
        })
    });
    // What the gate runs per presentation: the probe at its kind's `probe_poses` (5 for an ROI
    // the sensor cut, 3 for a whole hand).
    c.bench_function("probe 128x128 ROI (5 poses)", |b| {
        b.iter(|| {
            extractor
                .extract_probe(black_box(&roi), InputKind::Roi)
                .expect("synthetic ROI is usable")
        })
    });
    c.bench_function("probe 800x600 whole hand (3 poses)", |b| {
        b.iter(|| {
            extractor
                .extract_probe(black_box(&hand), InputKind::Hand)
                .expect("synthetic hand is usable")
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_extract
}
criterion_main!(benches);
