//! One template comparison (25 shifts), the operation the card runs.
//!
//! `cargo bench -p palmgate-matcher --bench compare`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use palmgate_matcher::template::{CELLS, Template};
use palmgate_matcher::{Threshold, compare};

fn pseudo_random_template(seed: u64) -> Template {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut orientations = [0u8; CELLS];
    let mut valid = [false; CELLS];
    for (o, v) in orientations.iter_mut().zip(valid.iter_mut()) {
        *o = (next() % 6) as u8;
        *v = next() % 16 != 0;
    }
    Template::from_cells(&orientations, &valid).expect("orientations are in range")
}

fn bench_compare(c: &mut Criterion) {
    let probe = pseudo_random_template(1);
    let reference = pseudo_random_template(2);
    c.bench_function("compare (25 shifts)", |b| {
        b.iter(|| {
            let result = compare(black_box(&probe), black_box(&reference)).expect("same algorithm");
            black_box(result.is_match(Threshold::DEFAULT))
        })
    });
}

criterion_group!(benches, bench_compare);
criterion_main!(benches);
