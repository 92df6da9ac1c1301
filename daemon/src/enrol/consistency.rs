//! Do the captures of one hand agree, and which one is enrolled?
//!
//! Every pair of captures of a hand is compared as a card compares a probe with an enrolled
//! template — the later capture at its kind's poses against the earlier as found, with the
//! matcher's comparison (the one the card runs) — and must match under the card's threshold for
//! that many poses: a series that does not agree with itself (two people, a hand turned over, a
//! smudged sensor) is refused before anything is written to the card. (Until 2026-12-07 the
//! station compared both as found; a hand turned a little between two captures then sent the
//! series back although a gate would have let it in: `docs/matcher.md`, "The station compares as
//! a card does".)
//!
//! The enrolled template is the *medoid* capture (at its pose found): the one whose largest
//! distance to the other captures is smallest (ties: smallest sum, then the earlier capture).
//! Fusing the captures into one template would need registering them against each other first
//! (their best shifts differ); the medoid needs no new template logic and is, by construction, a
//! real capture that matched every other one.
//!
//! With a duress hand, no duress capture may match any normal capture: the card reports duress
//! whenever a duress slot matches, so the normal hand would raise silent alarms.

use std::fmt;

use palmgate_matcher::agreement::{StationRule, earliest_group};
use palmgate_matcher::compare::{MIN_OVERLAP_CELLS, Threshold, compare_posed};
use palmgate_matcher::template::Template;

/// The comparison of two captures (1-based capture numbers, as shown to the operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairDistance {
    /// First capture (1-based).
    pub first: usize,
    /// Second capture (1-based).
    pub second: usize,
    /// Normalised Hamming distance × 65536 at the best shift.
    pub distance_q16: u32,
    /// Cells valid in both at the best shift.
    pub overlap_cells: u16,
    /// Whether the pair matches under the threshold.
    pub matched: bool,
}

impl PairDistance {
    /// Capture `second` at its poses against capture `first` as found (`earlier[0]`), as a card
    /// compares a probe with an enrolled template.
    fn of(
        first: usize,
        second: usize,
        earlier: &[Template],
        later: &[Template],
        threshold: Threshold,
    ) -> Self {
        match compare_posed(later, &earlier[..earlier.len().min(1)]) {
            Ok(comparison) => Self {
                first,
                second,
                distance_q16: comparison.distance_q16(),
                overlap_cells: comparison.overlap_cells(),
                matched: comparison.is_match(threshold),
            },
            // Templates of different algorithms never match.
            Err(_) => Self {
                first,
                second,
                distance_q16: 1 << 16,
                overlap_cells: 0,
                matched: false,
            },
        }
    }

    /// The distance as a fraction (0–1).
    pub fn distance(&self) -> f64 {
        f64::from(self.distance_q16) / 65536.0
    }

    fn describe(&self, threshold: Threshold, first_name: &str, second_name: &str) -> String {
        let limit = f64::from(threshold.q16()) / 65536.0;
        let relation = if self.matched { "≤" } else { ">" };
        let mut text = format!(
            "{first_name} {} and {second_name} {}: distance {:.3} {relation} threshold {limit:.3}",
            self.first,
            self.second,
            self.distance()
        );
        if self.overlap_cells < MIN_OVERLAP_CELLS {
            text.push_str(&format!(
                " (only {} cells overlap, {MIN_OVERLAP_CELLS} needed)",
                self.overlap_cells
            ));
        }
        text
    }
}

/// Captures of one hand that agree with each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MutualReport {
    /// Every pair, in order (1,2), (1,3), …, (2,3), …, named by the captures' numbers.
    pub pairs: Vec<PairDistance>,
    /// The number in the series (1-based, as shown to the operator) of each capture compared.
    pub numbers: Vec<usize>,
    /// Index (0-based, into the captures compared) of the capture to enrol: the medoid.
    pub reference: usize,
    /// The largest pairwise distance (Q16).
    pub worst_q16: u32,
}

/// Why a series of captures is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Disagreement {
    /// Fewer than two captures: nothing to check them against.
    #[error("{got} capture(s): at least 2 are needed to check that they match each other")]
    TooFewCaptures {
        /// Captures given.
        got: usize,
    },
    /// Some pairs of captures do not match each other.
    #[error("{}", describe_pairs(.pairs, *.threshold, "the captures do not match each other", "capture", "capture"))]
    NotMutual {
        /// The pairs that do not match.
        pairs: Vec<PairDistance>,
        /// The threshold they were judged with.
        threshold: Threshold,
    },
    /// Duress captures match normal captures: the same hand was presented twice.
    #[error("{}", describe_pairs(.pairs, *.threshold, "the duress hand matches the normal hand (present the OTHER hand for the duress slot)", "hand capture", "duress capture"))]
    DuressMatchesNormal {
        /// The (normal, duress) pairs that match.
        pairs: Vec<PairDistance>,
        /// The threshold.
        threshold: Threshold,
    },
}

fn describe_pairs(
    pairs: &[PairDistance],
    threshold: Threshold,
    headline: &str,
    first_name: &str,
    second_name: &str,
) -> String {
    let details: Vec<String> = pairs
        .iter()
        .map(|pair| pair.describe(threshold, first_name, second_name))
        .collect();
    format!("{headline}: {}", details.join("; "))
}

/// Checks that every pair of `captures` (each at its poses, the pose found first) matches under
/// `threshold` and picks the medoid.
///
/// # Errors
/// [`Disagreement::TooFewCaptures`] below two captures; [`Disagreement::NotMutual`] naming every
/// pair that does not match, with its distance and the threshold.
pub fn check_mutual(
    captures: &[Vec<Template>],
    threshold: Threshold,
) -> Result<MutualReport, Disagreement> {
    let numbers: Vec<usize> = (1..=captures.len()).collect();
    check_mutual_numbered(captures, &numbers, threshold)
}

/// [`check_mutual`] for captures that carry their own numbers in the series (`numbers[i]` is
/// `captures[i]`'s), as when some captures of a longer series are checked.
///
/// # Errors
/// As [`check_mutual`]; the pairs are named by `numbers`.
pub fn check_mutual_numbered(
    captures: &[Vec<Template>],
    numbers: &[usize],
    threshold: Threshold,
) -> Result<MutualReport, Disagreement> {
    if captures.len() < 2 {
        return Err(Disagreement::TooFewCaptures {
            got: captures.len(),
        });
    }
    let count = captures.len();
    let number = |i: usize| numbers.get(i).copied().unwrap_or(i + 1);
    let pairs = every_pair(captures, numbers, threshold);
    let failing: Vec<PairDistance> = pairs.iter().filter(|p| !p.matched).copied().collect();
    if !failing.is_empty() {
        return Err(Disagreement::NotMutual {
            pairs: failing,
            threshold,
        });
    }
    let reference = (0..count)
        .min_by_key(|&index| {
            let distances = pairs
                .iter()
                .filter(|p| p.first == number(index) || p.second == number(index))
                .map(|p| u64::from(p.distance_q16));
            let (max, sum) = distances.fold((0u64, 0u64), |(max, sum), d| (max.max(d), sum + d));
            (max, sum, index)
        })
        .unwrap_or(0);
    let worst_q16 = pairs.iter().map(|p| p.distance_q16).max().unwrap_or(0);
    Ok(MutualReport {
        pairs,
        numbers: (0..count).map(number).collect(),
        reference,
        worst_q16,
    })
}

/// Every pair of `captures` compared (the later at its poses against the earlier as found), in
/// order (1,2), (1,3), …, (2,3), …, each named by `numbers` (`numbers[i]` is `captures[i]`'s;
/// 1-based positions where it is short).
fn every_pair(
    captures: &[Vec<Template>],
    numbers: &[usize],
    threshold: Threshold,
) -> Vec<PairDistance> {
    let number = |i: usize| numbers.get(i).copied().unwrap_or(i + 1);
    let count = captures.len();
    let mut pairs = Vec::with_capacity(count * count.saturating_sub(1) / 2);
    for i in 0..count {
        for j in i + 1..count {
            pairs.push(PairDistance::of(
                number(i),
                number(j),
                &captures[i],
                &captures[j],
                threshold,
            ));
        }
    }
    pairs
}

/// Every pair of `captures` (numbered 1..n) that does not match under `threshold`, as the
/// refusal names them.
pub fn disagreeing(captures: &[Vec<Template>], threshold: Threshold) -> Disagreement {
    let pairs = every_pair(captures, &[], threshold)
        .into_iter()
        .filter(|pair| !pair.matched)
        .collect();
    Disagreement::NotMutual { pairs, threshold }
}

/// The earliest `wanted` of `captures` that all match each other under `threshold` (indices,
/// ascending; the first such set in lexicographic order), or `None` when no such set exists.
/// What the station enrols when a series needed extra captures; the search is
/// `palmgate_matcher::agreement::earliest_group`, the one `palmgate eval` models the station with.
pub fn agreeing(
    captures: &[Vec<Template>],
    wanted: usize,
    threshold: Threshold,
) -> Option<Vec<usize>> {
    let count = captures.len();
    let mut matches = vec![vec![false; count]; count];
    for pair in every_pair(captures, &[], threshold) {
        matches[pair.first - 1][pair.second - 1] = pair.matched;
    }
    earliest_group(count, wanted, StationRule::EveryPair, |i, j| matches[i][j])
}

/// Checks that no duress capture matches a normal capture, either way round: a normal capture at
/// its poses against a duress capture as found (at a gate the normal hand would raise the silent
/// alarm), and a duress capture at its poses against a normal capture as found.
///
/// # Errors
/// [`Disagreement::DuressMatchesNormal`] with every (normal, duress) pair that matches (the
/// closer way round).
pub fn check_distinct(
    normal: &[Vec<Template>],
    duress: &[Vec<Template>],
    threshold: Threshold,
) -> Result<(), Disagreement> {
    let mut matching = Vec::new();
    for (i, a) in normal.iter().enumerate() {
        for (j, b) in duress.iter().enumerate() {
            let duress_as_probe = PairDistance::of(i + 1, j + 1, a, b, threshold);
            let normal_as_probe = PairDistance {
                first: i + 1,
                second: j + 1,
                ..PairDistance::of(j + 1, i + 1, b, a, threshold)
            };
            let pair = if normal_as_probe.distance_q16 < duress_as_probe.distance_q16 {
                normal_as_probe
            } else {
                duress_as_probe
            };
            if pair.matched {
                matching.push(pair);
            }
        }
    }
    if matching.is_empty() {
        Ok(())
    } else {
        Err(Disagreement::DuressMatchesNormal {
            pairs: matching,
            threshold,
        })
    }
}

impl fmt::Display for MutualReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} pairs match (largest distance {:.3}); capture {} is enrolled",
            self.pairs.len(),
            f64::from(self.worst_q16) / 65536.0,
            self.numbers
                .get(self.reference)
                .copied()
                .unwrap_or(self.reference + 1)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palmgate_matcher::template::CELLS;

    use palmgate_matcher::fixtures::{capture_every as noisy, cells as pattern};

    /// A capture at one pose (the pose found alone).
    fn one(template: Template) -> Vec<Template> {
        vec![template]
    }

    #[test]
    fn a_later_capture_is_compared_at_its_poses_against_the_earlier_as_found() {
        // Capture 2 as found is another palm; its second pose is capture 1's palm: the pair
        // matches through that pose, as a card compares a probe. The other way round (capture
        // 1's poses against capture 2 as found) it would not.
        let earlier = one(noisy(7, 0, 0));
        let later = vec![noisy(8, 0, 0), noisy(7, 5, 0)];
        let report = check_mutual(&[earlier.clone(), later.clone()], Threshold::DEFAULT)
            .expect("matches at the second pose");
        assert!(report.pairs[0].matched);
        let found_alone = check_mutual(
            &[earlier.clone(), one(later[0].clone())],
            Threshold::DEFAULT,
        );
        assert!(found_alone.is_err(), "{found_alone:?}");
        // A duress capture whose second pose is the normal hand is refused, and so is a normal
        // capture whose second pose is the duress hand's.
        let duress = vec![noisy(8, 0, 0), noisy(7, 9, 0)];
        assert!(
            check_distinct(
                std::slice::from_ref(&earlier),
                &[duress],
                Threshold::DEFAULT
            )
            .is_err()
        );
        let normal = vec![noisy(9, 0, 0), noisy(7, 9, 0)];
        assert!(check_distinct(&[normal], &[earlier], Threshold::DEFAULT).is_err());
    }

    #[test]
    fn captures_of_one_palm_agree_and_the_medoid_is_enrolled() {
        // Capture 2 is the clean one; 1 and 3 each differ from it in their own cells.
        let templates = [
            one(noisy(7, 5, 0)),
            one(noisy(7, 0, 0)),
            one(noisy(7, 5, 2)),
        ];
        let report = check_mutual(&templates, Threshold::DEFAULT).expect("mutual");
        assert_eq!(report.pairs.len(), 3);
        assert!(report.pairs.iter().all(|p| p.matched));
        assert_eq!(report.reference, 1, "{report:?}");
        assert_eq!(
            report.worst_q16,
            report
                .pairs
                .iter()
                .map(|p| p.distance_q16)
                .max()
                .unwrap_or(0)
        );
        assert!(report.to_string().contains("capture 2 is enrolled"));
    }

    #[test]
    fn a_foreign_capture_is_named_with_its_distances() {
        let templates = [
            one(noisy(7, 0, 0)),
            one(noisy(7, 9, 0)),
            one(noisy(8, 0, 0)),
        ];
        let error = check_mutual(&templates, Threshold::DEFAULT).expect_err("not mutual");
        let Disagreement::NotMutual { pairs, threshold } = &error else {
            panic!("unexpected {error:?}");
        };
        assert_eq!(*threshold, Threshold::DEFAULT);
        let named: Vec<(usize, usize)> = pairs.iter().map(|p| (p.first, p.second)).collect();
        assert_eq!(named, vec![(1, 3), (2, 3)]);
        let text = error.to_string();
        assert!(
            text.starts_with(
                "the captures do not match each other: capture 1 and capture 3: distance 0."
            ),
            "{text}"
        );
        assert!(text.contains("> threshold 0.385"), "{text}");
        assert!(text.contains("capture 2 and capture 3"), "{text}");
        assert!(!text.contains("capture 1 and capture 2"), "{text}");
    }

    #[test]
    fn the_earliest_captures_that_all_agree_are_found_past_a_foreign_one() {
        // Captures 2 and 4 are other palms; 1, 3 and 5 are one palm.
        let series = [
            one(noisy(7, 0, 0)),
            one(noisy(8, 0, 0)),
            one(noisy(7, 5, 0)),
            one(noisy(9, 0, 0)),
            one(noisy(7, 5, 2)),
        ];
        let threshold = Threshold::DEFAULT;
        assert_eq!(agreeing(&series, 3, threshold), Some(vec![0, 2, 4]));
        assert_eq!(agreeing(&series[..4], 3, threshold), None);
        assert_eq!(agreeing(&series, 2, threshold), Some(vec![0, 2]));
        assert_eq!(agreeing(&series, 6, threshold), None);
        assert_eq!(agreeing(&series, 0, threshold), None);
        // What a refusal names: every pair that does not match, numbered in the series.
        let Disagreement::NotMutual { pairs, .. } = disagreeing(&series[..4], threshold) else {
            panic!("not a NotMutual");
        };
        let named: Vec<(usize, usize)> = pairs.iter().map(|p| (p.first, p.second)).collect();
        assert_eq!(named, [(1, 2), (1, 4), (2, 3), (2, 4), (3, 4)]);
        // The captures enrolled keep their numbers in the series.
        let chosen = [series[0].clone(), series[2].clone(), series[4].clone()];
        let report = check_mutual_numbered(&chosen, &[1, 3, 5], threshold).expect("mutual");
        let numbered: Vec<(usize, usize)> =
            report.pairs.iter().map(|p| (p.first, p.second)).collect();
        assert_eq!(numbered, [(1, 3), (1, 5), (3, 5)]);
        assert_eq!(report.numbers, [1, 3, 5]);
        assert!(
            report.to_string().contains(&format!(
                "capture {} is enrolled",
                report.numbers[report.reference]
            )),
            "{report}"
        );
    }

    #[test]
    fn one_capture_is_not_enough() {
        assert_eq!(
            check_mutual(&[one(noisy(1, 0, 0))], Threshold::DEFAULT),
            Err(Disagreement::TooFewCaptures { got: 1 })
        );
    }

    #[test]
    fn too_little_overlap_is_explained() {
        let mut valid = [false; CELLS];
        valid[..100].fill(true);
        let sparse = Template::from_cells(&pattern(3), &valid).expect("template");
        let error = check_mutual(&[one(noisy(3, 0, 0)), one(sparse)], Threshold::DEFAULT)
            .expect_err("refused");
        assert!(error.to_string().contains("cells overlap"), "{error}");
    }

    #[test]
    fn a_duress_hand_must_differ_from_the_normal_hand() {
        let normal = [one(noisy(1, 0, 0)), one(noisy(1, 7, 0))];
        let other = [one(noisy(2, 0, 0)), one(noisy(2, 7, 0))];
        assert_eq!(check_distinct(&normal, &other, Threshold::DEFAULT), Ok(()));
        let same = [one(noisy(2, 0, 0)), one(noisy(1, 11, 0))];
        let error = check_distinct(&normal, &same, Threshold::DEFAULT).expect_err("same hand");
        let Disagreement::DuressMatchesNormal { pairs, .. } = &error else {
            panic!("unexpected {error:?}");
        };
        assert_eq!(
            pairs
                .iter()
                .map(|p| (p.first, p.second))
                .collect::<Vec<_>>(),
            vec![(1, 2), (2, 2)]
        );
        assert!(error.to_string().contains("OTHER hand"), "{error}");
    }
}
