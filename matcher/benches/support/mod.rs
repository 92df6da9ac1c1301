//! Templates for the comparison benchmark and `examples/compare_count.rs` (one file, so both
//! measure the same pair).

use palmgate_matcher::template::{CELLS, Template};

/// A pseudo-random template (xorshift from `seed`; about one cell in 16 invalid).
pub fn pseudo_random_template(seed: u64) -> Template {
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
