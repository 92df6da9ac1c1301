//! Test templates without images (palmgate-matcher's `fixtures`): a deterministic orientation per
//! cell for a test identity, and later "captures" of it with a few cells changed. For the card
//! tests, where only the comparison on the card matters (the gate tests use synthetic palm images
//! instead).

use palmgate_matcher::template::Template;

pub use palmgate_matcher::fixtures::{cells, template};

/// Another capture of identity `seed`: every `step`-th cell has the neighbouring orientation.
pub fn capture(seed: u64, step: usize) -> Template {
    palmgate_matcher::fixtures::capture_every(seed, step, 0)
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
