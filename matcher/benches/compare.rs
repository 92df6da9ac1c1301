//! One template comparison (elastic: 25 common shifts, each quarter of the probe ±1 cell more),
//! the operation the card runs, and a whole presentation (every probe pose against every enrolled
//! template).
//!
//! `cargo bench -p palmgate-matcher --bench compare`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use palmgate_matcher::{Threshold, compare, compare_posed};

mod support;
use support::pseudo_random_template;

fn bench_compare(c: &mut Criterion) {
    let probe = pseudo_random_template(1);
    let reference = pseudo_random_template(2);
    c.bench_function("compare (elastic)", |b| {
        b.iter(|| {
            let result = compare(black_box(&probe), black_box(&reference)).expect("same algorithm");
            black_box(result.is_match(Threshold::DEFAULT))
        })
    });
    // A presentation on the card: the probe's poses (3 for a whole hand, 5 for a sensor's own
    // ROI) against three enrolled templates.
    let poses = [1, 3, 5, 7, 9].map(pseudo_random_template);
    let enrolled = [2, 4, 6].map(pseudo_random_template);
    for count in [3, 5] {
        c.bench_function(
            &format!("compare_posed ({count} poses x 3 templates)"),
            |b| {
                b.iter(|| {
                    let result = compare_posed(black_box(&poses[..count]), black_box(&enrolled))
                        .expect("same algorithm");
                    black_box(result.is_match(Threshold::DEFAULT))
                })
            },
        );
    }
    // A card with a duress hand (applet 1.8): the normal hand's three templates and the duress
    // hand's three, each compared with every pose of a sensor ROI's probe.
    let both_hands = [2, 4, 6, 8, 10, 12].map(pseudo_random_template);
    c.bench_function("compare_posed (5 poses x 6 templates)", |b| {
        b.iter(|| {
            let result =
                compare_posed(black_box(&poses), black_box(&both_hands)).expect("same algorithm");
            black_box(result.is_match(Threshold::DEFAULT))
        })
    });
}

criterion_group!(benches, bench_compare);
criterion_main!(benches);
