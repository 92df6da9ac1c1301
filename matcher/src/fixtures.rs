//! Image-free test templates (no_std): a deterministic orientation per cell for a test identity,
//! and later "captures" of it with some cells turned to the neighbouring orientation. For tests
//! and benchmarks where only the comparison matters (the card, the enrolment checks); tests of
//! the extraction use [`synth`](crate)'s synthetic palm images instead (`std`).

use crate::template::{CELLS, Template};

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Orientation (0–5) per cell of test identity `seed` (xorshift64 from a scrambled seed).
pub fn cells(seed: u64) -> [u8; CELLS] {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    // Below 6: the cast cannot truncate.
    core::array::from_fn(|_| (xorshift(&mut state) % 6) as u8)
}

/// The template of identity `seed`, every cell valid.
pub fn template(seed: u64) -> Template {
    template_of(&cells(seed))
}

/// Another capture of identity `seed`: every `step`-th cell from `offset` on has the
/// neighbouring orientation (`step` 0: none).
pub fn capture_every(seed: u64, step: usize, offset: usize) -> Template {
    let mut orientations = cells(seed);
    if step > 0 {
        for index in (offset..CELLS).step_by(step) {
            orientations[index] = (orientations[index] + 1) % 6;
        }
    }
    template_of(&orientations)
}

/// Another capture of identity `seed`: `changed` cells drawn at random (repeats possible, so at
/// most `changed` differ) have the neighbouring orientation.
pub fn capture_changed(seed: u64, changed: usize) -> Template {
    let mut orientations = cells(seed);
    let mut state = seed ^ 0xDEAD_BEEF;
    for _ in 0..changed {
        // Below CELLS: the cast cannot truncate.
        let index = (xorshift(&mut state) % CELLS as u64) as usize;
        orientations[index] = (orientations[index] + 1) % 6;
    }
    template_of(&orientations)
}

fn template_of(orientations: &[u8; CELLS]) -> Template {
    match Template::from_cells(orientations, &[true; CELLS]) {
        Ok(template) => template,
        // Orientations are below 6 by construction.
        Err(error) => panic!("test template: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{Threshold, compare};

    #[test]
    fn identities_are_deterministic_and_distinct() {
        assert_eq!(cells(1), cells(1));
        assert_ne!(cells(1), cells(2));
        assert!(cells(3).iter().all(|&orientation| orientation < 6));
    }

    #[test]
    fn a_capture_matches_its_identity_and_not_another() {
        for probe in [capture_every(1, 19, 0), capture_changed(1, 20)] {
            let genuine = compare(&probe, &template(1)).expect("compare");
            assert!(genuine.is_match(Threshold::DEFAULT));
        }
        let impostor = compare(&template(2), &template(1)).expect("compare");
        assert!(!impostor.is_match(Threshold::DEFAULT));
        assert_eq!(capture_every(1, 0, 0).encode(), template(1).encode());
    }
}
