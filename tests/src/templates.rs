//! Test templates without images: a deterministic orientation per cell for a test identity, and
//! later "captures" of it with a few cells changed. For the card tests, where only the
//! comparison on the card matters (the gate tests use synthetic palm images instead).

use palmgate_matcher::template::{CELLS, Template};

/// Orientation (0–5) per cell of test identity `seed` (xorshift64 from a scrambled seed).
pub fn cells(seed: u64) -> [u8; CELLS] {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    core::array::from_fn(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Below 6: the cast cannot truncate.
        (state % 6) as u8
    })
}

/// The template of identity `seed`, every cell valid.
pub fn template(seed: u64) -> Template {
    template_of(cells(seed))
}

/// Another capture of identity `seed`: every `step`-th cell has the neighbouring orientation.
pub fn capture(seed: u64, step: usize) -> Template {
    let mut orientations = cells(seed);
    for index in (0..CELLS).step_by(step.max(1)) {
        orientations[index] = (orientations[index] + 1) % 6;
    }
    template_of(orientations)
}

fn template_of(orientations: [u8; CELLS]) -> Template {
    match Template::from_cells(&orientations, &[true; CELLS]) {
        Ok(template) => template,
        // Orientations are below 6 by construction.
        Err(error) => panic!("test template: {error}"),
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
}
