//! ISO/IEC 30107-3 figures from liveness scores.
//!
//! - **APCER** (per attack species): share of a species' attack presentations accepted as live.
//! - **BPCER**: share of bona fide presentations refused as attacks. A bona fide presentation
//!   that got no answer counts as refused (the person is asked again either way).
//! - **APNRR**: share of attack presentations that got no answer (no cue could run); they are
//!   left out of APCER, as the standard does, and reported here instead.
//! - Operating points: BPCER at the threshold where the worst species' APCER is at most 1 % (or
//!   5 %), and the worst APCER where BPCER is at most 1 %.

use std::collections::BTreeMap;

/// Scores of one evaluation: `None` for a presentation without an answer.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// Bona fide presentations.
    pub bona_fide: Vec<Option<f32>>,
    /// Attack presentations by species name.
    pub attacks: BTreeMap<String, Vec<Option<f32>>>,
}

/// One point of a DET curve.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct DetPoint {
    /// The liveness threshold.
    pub threshold: f32,
    /// APCER of the species at that threshold.
    pub apcer: f64,
    /// BPCER at that threshold.
    pub bpcer: f64,
}

/// The figures at one threshold and the operating points.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// Bona fide presentations evaluated.
    pub bona_fide_count: usize,
    /// Attack presentations per species.
    pub attack_count: BTreeMap<String, usize>,
    /// The threshold of the profile evaluated.
    pub threshold: f32,
    /// BPCER at `threshold`.
    pub bpcer: Option<f64>,
    /// APCER per species at `threshold` (`None` without attacks).
    pub apcer: Option<BTreeMap<String, f64>>,
    /// The worst species' APCER.
    pub apcer_worst: Option<f64>,
    /// BPCER where the worst APCER ≤ 1 %.
    #[serde(rename = "bpcer_at_apcer_1e-2")]
    pub bpcer_at_apcer_1e_2: Option<f64>,
    /// BPCER where the worst APCER ≤ 5 %.
    #[serde(rename = "bpcer_at_apcer_5e-2")]
    pub bpcer_at_apcer_5e_2: Option<f64>,
    /// The worst APCER where BPCER ≤ 1 %.
    #[serde(rename = "apcer_at_bpcer_1e-2")]
    pub apcer_at_bpcer_1e_2: Option<f64>,
    /// Attack presentations without an answer, over all attack presentations.
    pub apnrr: Option<f64>,
    /// Bona fide presentations without an answer (included in BPCER).
    pub bpnrr: Option<f64>,
}

impl Scores {
    /// The figures at `threshold`.
    pub fn report(&self, threshold: f32) -> Report {
        let has_attacks = self.attacks.values().any(|scores| !scores.is_empty());
        let apcer = has_attacks.then(|| {
            self.attacks
                .iter()
                .map(|(species, scores)| (species.clone(), apcer(scores, threshold)))
                .collect::<BTreeMap<_, _>>()
        });
        let apcer_worst = apcer
            .as_ref()
            .map(|by_species| by_species.values().copied().fold(0.0, f64::max));
        let attack_total: usize = self.attacks.values().map(Vec::len).sum();
        let unanswered = self
            .attacks
            .values()
            .flatten()
            .filter(|score| score.is_none())
            .count();
        let has_bona_fide = !self.bona_fide.is_empty();
        Report {
            bona_fide_count: self.bona_fide.len(),
            attack_count: self
                .attacks
                .iter()
                .map(|(species, scores)| (species.clone(), scores.len()))
                .collect(),
            threshold,
            bpcer: has_bona_fide.then(|| bpcer(&self.bona_fide, threshold)),
            apcer,
            apcer_worst,
            bpcer_at_apcer_1e_2: (has_attacks && has_bona_fide)
                .then(|| self.bpcer_where_apcer_at_most(0.01)),
            bpcer_at_apcer_5e_2: (has_attacks && has_bona_fide)
                .then(|| self.bpcer_where_apcer_at_most(0.05)),
            apcer_at_bpcer_1e_2: (has_attacks && has_bona_fide)
                .then(|| self.apcer_where_bpcer_at_most(0.01)),
            apnrr: has_attacks.then(|| unanswered as f64 / attack_total as f64),
            bpnrr: has_bona_fide.then(|| {
                self.bona_fide
                    .iter()
                    .filter(|score| score.is_none())
                    .count() as f64
                    / self.bona_fide.len() as f64
            }),
        }
    }

    /// Every threshold worth looking at: each observed score, just above it, and the ends.
    fn thresholds(&self) -> Vec<f32> {
        let mut thresholds: Vec<f32> = self
            .bona_fide
            .iter()
            .chain(self.attacks.values().flatten())
            .flatten()
            .flat_map(|&score| [score, next_up(score)])
            .chain([0.0, next_up(1.0)])
            .collect();
        thresholds.sort_by(f32::total_cmp);
        thresholds.dedup();
        thresholds
    }

    fn worst_apcer(&self, threshold: f32) -> f64 {
        self.attacks
            .values()
            .map(|scores| apcer(scores, threshold))
            .fold(0.0, f64::max)
    }

    /// The lowest BPCER over thresholds whose worst APCER is at most `target`.
    fn bpcer_where_apcer_at_most(&self, target: f64) -> f64 {
        self.thresholds()
            .into_iter()
            .filter(|&threshold| self.worst_apcer(threshold) <= target)
            .map(|threshold| bpcer(&self.bona_fide, threshold))
            .fold(1.0, f64::min)
    }

    /// The lowest worst APCER over thresholds whose BPCER is at most `target`.
    fn apcer_where_bpcer_at_most(&self, target: f64) -> f64 {
        self.thresholds()
            .into_iter()
            .filter(|&threshold| bpcer(&self.bona_fide, threshold) <= target)
            .map(|threshold| self.worst_apcer(threshold))
            .fold(1.0, f64::min)
    }

    /// The DET curve of one species: (APCER, BPCER) at every threshold.
    pub fn det(&self, species: &str) -> Vec<DetPoint> {
        let Some(scores) = self.attacks.get(species) else {
            return Vec::new();
        };
        self.thresholds()
            .into_iter()
            .map(|threshold| DetPoint {
                threshold,
                apcer: apcer(scores, threshold),
                bpcer: bpcer(&self.bona_fide, threshold),
            })
            .collect()
    }
}

/// Attacks (answered) accepted as live at `threshold`, over the answered ones.
fn apcer(scores: &[Option<f32>], threshold: f32) -> f64 {
    let answered: Vec<f32> = scores.iter().flatten().copied().collect();
    if answered.is_empty() {
        return 0.0;
    }
    answered.iter().filter(|&&score| score >= threshold).count() as f64 / answered.len() as f64
}

/// Bona fide presentations refused (or unanswered) at `threshold`.
fn bpcer(scores: &[Option<f32>], threshold: f32) -> f64 {
    if scores.is_empty() {
        return 0.0;
    }
    scores
        .iter()
        .filter(|score| score.is_none_or(|score| score < threshold))
        .count() as f64
        / scores.len() as f64
}

/// The next representable value above `value` (a threshold that refuses exactly `value`).
fn next_up(value: f32) -> f32 {
    f32::from_bits(value.to_bits() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(bona_fide: &[f32], attacks: &[(&str, &[Option<f32>])]) -> Scores {
        Scores {
            bona_fide: bona_fide.iter().map(|&score| Some(score)).collect(),
            attacks: attacks
                .iter()
                .map(|(species, scores)| ((*species).to_owned(), scores.to_vec()))
                .collect(),
        }
    }

    #[test]
    fn error_rates_count_the_right_side_of_the_threshold() {
        let scores = scores(
            &[0.9, 0.8, 0.6, 0.4],
            &[
                ("print", &[Some(0.1), Some(0.55), None, Some(0.2)]),
                ("screen", &[Some(0.0), Some(0.1)]),
            ],
        );
        let report = scores.report(0.5);
        assert_eq!(report.bpcer, Some(0.25));
        let apcer = report.apcer.unwrap();
        assert!(
            (apcer["print"] - 1.0 / 3.0).abs() < 1e-9,
            "unanswered left out"
        );
        assert_eq!(apcer["screen"], 0.0);
        assert!((report.apcer_worst.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((report.apnrr.unwrap() - 1.0 / 6.0).abs() < 1e-9);
        // Above 0.55 no attack passes; the lowest BPCER there refuses 0.4 only.
        assert_eq!(report.bpcer_at_apcer_1e_2, Some(0.25));
        // With BPCER 0 (threshold ≤ 0.4) the print at 0.55 passes: 1 of 3.
        assert!((report.apcer_at_bpcer_1e_2.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn bona_fide_alone_reports_bpcer_only() {
        let report = scores(&[0.9, 0.1], &[]).report(0.5);
        assert_eq!(report.bpcer, Some(0.5));
        assert_eq!(report.apcer, None);
        assert_eq!(report.apcer_worst, None);
        assert_eq!(report.bpcer_at_apcer_1e_2, None);
        assert_eq!(report.apnrr, None);
        let json = serde_json::to_value(&report).unwrap();
        for key in [
            "bpcer_at_apcer_1e-2",
            "bpcer_at_apcer_5e-2",
            "apcer_at_bpcer_1e-2",
        ] {
            assert!(json[key].is_null(), "{key}");
        }
    }

    #[test]
    fn det_points_trade_one_error_for_the_other() {
        let scores = scores(&[0.9, 0.7], &[("mould", &[Some(0.2), Some(0.8)])]);
        let det = scores.det("mould");
        assert_eq!(det.first().map(|p| (p.apcer, p.bpcer)), Some((1.0, 0.0)));
        assert_eq!(det.last().map(|p| (p.apcer, p.bpcer)), Some((0.0, 1.0)));
        assert!(
            det.windows(2)
                .all(|w| w[0].apcer >= w[1].apcer && w[0].bpcer <= w[1].bpcer)
        );
    }
}
