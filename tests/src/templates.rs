//! Test templates without images (palmgate-matcher's `fixtures`): a deterministic orientation per
//! cell for a test identity, and later "captures" of it with a few cells changed. For the card
//! tests, where only the comparison on the card matters (the gate tests use synthetic palm images
//! instead).

use palmgate_matcher::template::{CELLS, GRID, Template};

pub use palmgate_matcher::fixtures::{cells, template};

/// Another capture of identity `seed`: every `step`-th cell has the neighbouring orientation.
pub fn capture(seed: u64, step: usize) -> Template {
    palmgate_matcher::fixtures::capture_every(seed, step, 0)
}

/// `template` with exactly `bits` code bits changed over its valid cells, spread over the grid
/// (a stride through the cells): `bits / 3` cells turned to the opposite orientation (3 bits
/// each) and one more cell turned `bits % 3` steps. Compared at the aligned shift with `template`
/// it mismatches exactly `bits` bits; a caller that needs the best shift to be the aligned one
/// checks it with `compare`.
pub fn with_bits_changed(template: &Template, bits: u32) -> Template {
    // 24 × 24 cells; a stride coprime with 576 visits every cell once, spread over the grid.
    const STRIDE: usize = 97;
    let mut orientations = [0u8; CELLS];
    let mut valid = [false; CELLS];
    for (index, (orientation, valid)) in orientations.iter_mut().zip(&mut valid).enumerate() {
        if let Some(code) = template.orientation(index % GRID, index / GRID) {
            *orientation = code;
            *valid = true;
        }
    }
    let mut opposite = bits / 3;
    let mut rest = bits % 3;
    for step in 0..CELLS {
        let index = step * STRIDE % CELLS;
        if !valid[index] {
            continue;
        }
        let turn = if opposite > 0 {
            opposite -= 1;
            3
        } else if rest > 0 {
            std::mem::take(&mut rest)
        } else {
            break;
        };
        // Below 6: the orientation and the turn are both below 6.
        orientations[index] = (orientations[index] + turn as u8) % 6;
    }
    assert!(
        opposite == 0 && rest == 0,
        "{bits} bits do not fit in {} valid cells",
        template.valid_cells()
    );
    match Template::from_cells(&orientations, &valid) {
        Ok(changed) => changed,
        Err(error) => panic!("changed template: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use palmgate_matcher::compare::{Threshold, compare};

    use super::*;

    #[test]
    fn a_capture_matches_its_identity_and_not_another() {
        let genuine = compare(&capture(1, 19), &template(1)).expect("compare");
        let impostor = compare(&template(2), &template(1)).expect("compare");
        assert!(genuine.is_match(Threshold::DEFAULT));
        assert!(!impostor.is_match(Threshold::DEFAULT));
        assert_ne!(cells(1), cells(2));
    }

    #[test]
    fn bits_changed_are_exactly_the_mismatch_at_the_best_shift() {
        for bits in [0, 1, 2, 3, 100, 610, 611, 700] {
            let changed = with_bits_changed(&template(3), bits);
            let comparison = compare(&changed, &template(3)).expect("compare");
            assert_eq!(comparison.mismatched_bits(), bits, "{bits} bits");
            assert_eq!(comparison.compared_bits(), 3 * CELLS as u32);
        }
    }
}
