//! Evaluation over a folder of `<identity>/<sample>.<png|jpg|bmp>` images: every genuine and every
//! impostor comparison, error rates, and timings.
//!
//! Conventions: scores are distances (lower is more similar) in Q16; a comparison matches when its
//! distance is at most the threshold. Each unordered pair of images is compared once (the first
//! image as probe). Images whose extraction fails count in the failure-to-acquire rate (`fta`) and
//! take no part in the comparisons.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::compare::compare;
use crate::extract::{ExtractError, Extractor, InputKind};
use crate::template::Template;

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The data folder or one of its sub-folders could not be listed.
    #[error("cannot list {path}: {source}")]
    List {
        /// Folder.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Fewer than two identities, or no identity with two images: nothing to compare.
    #[error("{0}")]
    NotEnoughData(String),
}

/// One image of the data set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Identity (the sub-folder name).
    pub identity: String,
    /// Image file.
    pub path: PathBuf,
}

impl Sample {
    /// Capture session, when sample names carry one as a prefix (`1-03.png` → `1`, as in Tongji).
    pub fn session(&self) -> Option<&str> {
        let stem = self.path.file_stem()?.to_str()?;
        let (session, _) = stem.split_once('-')?;
        (!session.is_empty()).then_some(session)
    }
}

/// Lists `dir/<identity>/<sample>.<ext>`, sorted by identity and file name.
pub fn scan(dir: &Path) -> Result<Vec<Sample>, EvalError> {
    let list = |path: &Path| -> Result<Vec<PathBuf>, EvalError> {
        let entries = std::fs::read_dir(path).map_err(|source| EvalError::List {
            path: path.to_path_buf(),
            source,
        })?;
        let mut paths = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| EvalError::List {
                path: path.to_path_buf(),
                source,
            })?;
            paths.push(entry.path());
        }
        paths.sort();
        Ok(paths)
    };
    let mut samples = Vec::new();
    for identity_dir in list(dir)?.into_iter().filter(|p| p.is_dir()) {
        let Some(identity) = identity_dir
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_owned)
        else {
            continue;
        };
        for path in list(&identity_dir)? {
            let is_image = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
            if is_image && path.is_file() {
                samples.push(Sample {
                    identity: identity.clone(),
                    path,
                });
            }
        }
    }
    Ok(samples)
}

/// The figures of an evaluation (the JSON keys of `palmgate eval`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// Identities (folders with at least one image).
    pub identities: usize,
    /// Images.
    pub images: usize,
    /// Genuine comparisons made.
    pub genuine: usize,
    /// Impostor comparisons made.
    pub impostor: usize,
    /// Failure-to-acquire rate: share of images with no template.
    pub fta: f64,
    /// Equal error rate.
    pub eer: f64,
    /// False non-match rate at the largest threshold with FMR ≤ 1e-2.
    #[serde(rename = "fnmr_at_fmr_1e-2")]
    pub fnmr_at_fmr_1e_2: f64,
    /// False non-match rate at FMR ≤ 1e-3.
    #[serde(rename = "fnmr_at_fmr_1e-3")]
    pub fnmr_at_fmr_1e_3: f64,
    /// False non-match rate at FMR ≤ 1e-4.
    #[serde(rename = "fnmr_at_fmr_1e-4")]
    pub fnmr_at_fmr_1e_4: f64,
    /// Largest normalised distance threshold with FMR ≤ 1e-3.
    #[serde(rename = "threshold_at_fmr_1e-3")]
    pub threshold_at_fmr_1e_3: f64,
    /// Median time of one extraction (ROI, quality, filter bank, template), milliseconds.
    pub extract_ms_median: f64,
    /// Median time of one comparison, microseconds.
    pub compare_us_median: f64,
}

/// Genuine and impostor distances (Q16), for rates and plots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scores {
    /// Genuine distances, sorted.
    pub genuine: Vec<u32>,
    /// Impostor distances, sorted.
    pub impostor: Vec<u32>,
}

impl Scores {
    /// From unsorted distances.
    pub fn new(mut genuine: Vec<u32>, mut impostor: Vec<u32>) -> Scores {
        genuine.sort_unstable();
        impostor.sort_unstable();
        Scores { genuine, impostor }
    }

    /// False-match rate at a Q16 threshold (impostors with distance ≤ threshold).
    pub fn fmr(&self, threshold_q16: u32) -> f64 {
        rate(
            self.impostor.partition_point(|&d| d <= threshold_q16),
            self.impostor.len(),
        )
    }

    /// False non-match rate at a Q16 threshold (genuine pairs with distance > threshold).
    pub fn fnmr(&self, threshold_q16: u32) -> f64 {
        let accepted = self.genuine.partition_point(|&d| d <= threshold_q16);
        rate(self.genuine.len() - accepted, self.genuine.len())
    }

    /// The largest Q16 threshold whose FMR is at most `target` (`None` without impostors).
    pub fn threshold_at_fmr(&self, target: f64) -> Option<u32> {
        if self.impostor.is_empty() {
            return None;
        }
        // At most `allowed` impostors may be at or below the threshold.
        let allowed = (target * self.impostor.len() as f64).floor() as usize;
        Some(match self.impostor.get(allowed) {
            Some(&first_rejected) => first_rejected.saturating_sub(1),
            None => u32::MAX,
        })
    }

    /// FNMR at the threshold of [`Scores::threshold_at_fmr`] (1.0 without impostors).
    pub fn fnmr_at_fmr(&self, target: f64) -> f64 {
        self.threshold_at_fmr(target).map_or(1.0, |t| self.fnmr(t))
    }

    /// Equal error rate: at the threshold where FMR and FNMR cross, their mean.
    pub fn eer(&self) -> f64 {
        if self.genuine.is_empty() || self.impostor.is_empty() {
            return 1.0;
        }
        let mut best = (f64::INFINITY, 1.0);
        for &t in self.genuine.iter().chain(self.impostor.iter()) {
            for threshold in [t.saturating_sub(1), t] {
                let (fmr, fnmr) = (self.fmr(threshold), self.fnmr(threshold));
                let gap = (fmr - fnmr).abs();
                if gap < best.0 {
                    best = (gap, (fmr + fnmr) / 2.0);
                }
            }
        }
        best.1
    }

    /// DET curve points `(fmr, fnmr)` at every distinct score, by increasing threshold.
    pub fn det_curve(&self) -> Vec<(f64, f64)> {
        let mut thresholds: Vec<u32> = self
            .genuine
            .iter()
            .chain(self.impostor.iter())
            .copied()
            .collect();
        thresholds.sort_unstable();
        thresholds.dedup();
        thresholds
            .into_iter()
            .map(|t| (self.fmr(t), self.fnmr(t)))
            .collect()
    }
}

fn rate(count: usize, total: usize) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// An evaluation's outcome.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The figures.
    pub report: Report,
    /// All distances.
    pub scores: Scores,
    /// Distances of genuine pairs from different sessions only (empty when samples carry no
    /// session), with all impostors in `scores`.
    pub cross_session_genuine: Vec<u32>,
    /// Images that gave no template, with the reason.
    pub failures: Vec<(PathBuf, String)>,
}

/// Progress callbacks: `(done, total)` per extracted image, then per comparison batch.
pub trait Progress: Sync {
    /// Called as work completes.
    fn update(&self, stage: &str, done: usize, total: usize);
}

impl<F: Fn(&str, usize, usize) + Sync> Progress for F {
    fn update(&self, stage: &str, done: usize, total: usize) {
        self(stage, done, total)
    }
}

/// One image's outcome: its template or why there is none, and the extraction time in ms.
type Extracted = (Result<Template, String>, f64);

/// Extracts every sample (on `threads` threads) and makes every genuine and impostor comparison.
pub fn evaluate(
    samples: &[Sample],
    extractor: &Extractor,
    input: InputKind,
    threads: usize,
    progress: &dyn Progress,
) -> Result<Evaluation, EvalError> {
    let identities = samples
        .iter()
        .map(|s| s.identity.as_str())
        .collect::<std::collections::BTreeSet<_>>();
    if identities.len() < 2 {
        return Err(EvalError::NotEnoughData(format!(
            "need at least two identities, found {}",
            identities.len()
        )));
    }
    let total = samples.len();
    let results: Mutex<BTreeMap<usize, Extracted>> = Mutex::new(BTreeMap::new());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(sample) = samples.get(index) else {
                        break;
                    };
                    let outcome = match image::open(&sample.path) {
                        Ok(image) => {
                            let start = Instant::now();
                            let result = extractor.extract_image(&image, input);
                            let ms = start.elapsed().as_secs_f64() * 1e3;
                            (
                                result
                                    .map(|e| e.template)
                                    .map_err(|e: ExtractError| e.to_string()),
                                ms,
                            )
                        }
                        Err(e) => (Err(format!("cannot read image: {e}")), f64::NAN),
                    };
                    if let Ok(mut map) = results.lock() {
                        map.insert(index, outcome);
                    }
                    let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
                    progress.update("extract", finished, total);
                }
            });
        }
    });
    let results = results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());

    let mut templates: Vec<(usize, Template)> = Vec::new();
    let mut failures = Vec::new();
    let mut extract_ms = Vec::new();
    for (index, (outcome, ms)) in results {
        match outcome {
            Ok(template) => {
                extract_ms.push(ms);
                templates.push((index, template));
            }
            Err(reason) => failures.push((samples[index].path.clone(), reason)),
        }
    }

    let pairs = templates.len() * templates.len().saturating_sub(1) / 2;
    let mut genuine = Vec::new();
    let mut impostor = Vec::new();
    let mut cross_session = Vec::new();
    let mut compare_us = Vec::with_capacity(pairs);
    let mut compared = 0usize;
    for (i, (pi, probe)) in templates.iter().enumerate() {
        for (ri, reference) in &templates[i + 1..] {
            let start = Instant::now();
            let result = compare(probe, reference);
            compare_us.push(start.elapsed().as_secs_f64() * 1e6);
            let Ok(result) = result else { continue };
            let distance = result.distance_q16();
            let (p, r) = (&samples[*pi], &samples[*ri]);
            if p.identity == r.identity {
                genuine.push(distance);
                if let (Some(a), Some(b)) = (p.session(), r.session())
                    && a != b
                {
                    cross_session.push(distance);
                }
            } else {
                impostor.push(distance);
            }
        }
        compared += templates.len() - i - 1;
        progress.update("compare", compared, pairs);
    }
    if genuine.is_empty() {
        return Err(EvalError::NotEnoughData(
            "no identity has two usable images".into(),
        ));
    }
    let scores = Scores::new(genuine, impostor);
    let threshold = scores.threshold_at_fmr(1e-3).unwrap_or(0);
    let report = Report {
        identities: identities.len(),
        images: total,
        genuine: scores.genuine.len(),
        impostor: scores.impostor.len(),
        fta: rate(failures.len(), total),
        eer: scores.eer(),
        fnmr_at_fmr_1e_2: scores.fnmr_at_fmr(1e-2),
        fnmr_at_fmr_1e_3: scores.fnmr_at_fmr(1e-3),
        fnmr_at_fmr_1e_4: scores.fnmr_at_fmr(1e-4),
        threshold_at_fmr_1e_3: f64::from(threshold) / 65536.0,
        extract_ms_median: median(&mut extract_ms),
        compare_us_median: median(&mut compare_us),
    };
    cross_session.sort_unstable();
    Ok(Evaluation {
        report,
        scores,
        cross_session_genuine: cross_session,
        failures,
    })
}

/// Median (NaN for no values).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_on_known_scores() {
        // Genuine 100..=109 (10), impostor 105..=204 (100).
        let scores = Scores::new((100..110).collect(), (105..205).collect());
        assert_eq!(scores.fmr(104), 0.0);
        assert_eq!(scores.fmr(105), 0.01);
        assert_eq!(scores.fnmr(104), 0.5);
        assert_eq!(scores.fnmr(109), 0.0);
        // FMR ≤ 1e-2 allows one impostor: threshold 105, FNMR 4/10.
        assert_eq!(scores.threshold_at_fmr(1e-2), Some(105));
        assert!((scores.fnmr_at_fmr(1e-2) - 0.4).abs() < 1e-12);
        // FMR ≤ 1e-3 allows none: threshold 104.
        assert_eq!(scores.threshold_at_fmr(1e-3), Some(104));
        assert!((scores.fnmr_at_fmr(1e-3) - 0.5).abs() < 1e-12);
        // EER: at 106, FMR 0.02 and FNMR 0.3; the crossing is near 108/109 (FMR 0.04/0.05, FNMR
        // 0.1/0): the smallest gap is at 108 (|0.04 - 0.1| = 0.06) vs 109 (0.05): 109 wins.
        assert!((scores.eer() - 0.025).abs() < 1e-12, "{}", scores.eer());
    }

    #[test]
    fn separated_scores_have_zero_eer() {
        let scores = Scores::new(vec![10, 20, 30], vec![40, 50, 60, 70]);
        assert_eq!(scores.eer(), 0.0);
        assert_eq!(scores.fnmr_at_fmr(1e-4), 0.0);
        assert_eq!(scores.threshold_at_fmr(1e-4), Some(39));
        let det = scores.det_curve();
        assert_eq!(det.first(), Some(&(0.0, 2.0 / 3.0)));
        assert_eq!(det.last(), Some(&(1.0, 0.0)));
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn session_prefix() {
        let s = |p: &str| Sample {
            identity: "a".into(),
            path: PathBuf::from(p),
        };
        assert_eq!(s("x/1-03.png").session(), Some("1"));
        assert_eq!(s("x/03.png").session(), None);
    }
}
