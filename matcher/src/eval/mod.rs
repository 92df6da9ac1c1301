//! Evaluation over a folder of `<identity>/<sample>.<png|jpg|bmp>` images: every genuine and every
//! impostor comparison, error rates, and timings.
//!
//! Conventions: scores are distances (lower is more similar) in Q16; a comparison matches when its
//! distance is at most the threshold. Each unordered pair of images is compared once: the later
//! image is the probe, cut at every pose asked for (the gate's [`crate::extract::PROBE_POSES`]),
//! the earlier the reference, cut at the pose found (as enrolment cuts it). Images whose extraction fails count in the failure-to-acquire rate (`fta`) and
//! take no part in the comparisons.
//!
//! # Layout
//! - this module: listing a folder ([`scan`]), extracting every image, every pairwise distance
//!   ([`evaluate`], the figures of `palmgate eval --data`), and the suite of sets
//!   ([`evaluate_suite`]: held-out-fold figures with confidence intervals, enrolment with several
//!   templates, calibrated profiles).
//! - [`protocol`]: identity folds, trials, bootstrap intervals, calibration and its validation.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::compare::compare_posed;
use crate::extract::{ExtractError, Extractor, InputKind, probe_poses};
use crate::profile::{MAX_ENROLLED_TEMPLATES, Profile, STATION_EXTRA_CAPTURES};
use crate::roi::Pose;
use crate::template::Template;

pub mod protocol;

use protocol::{FiguresCi, ProfileOutcome, SampleKey, SessionPair, Trials};

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "bmp"];

/// Why an evaluation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The data folder or one of its sub-folders could not be listed.
    #[error("cannot list {path}")]
    List {
        /// Folder.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// Fewer than two identities, or no identity with two images: nothing to compare.
    #[error("{0}")]
    NotEnoughData(String),
    /// A pair of identities said to be one hand names an identity the set does not have.
    #[error("same hand: {} has no identity {identity:?}", set.as_deref().map_or_else(|| "the set".to_owned(), |name| format!("set {name}")))]
    UnknownIdentity {
        /// The set's name, where the caller knows it ([`evaluate_suite`] does).
        set: Option<String>,
        /// The identity named.
        identity: String,
    },
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
    /// Impostor comparisons left out because their two identities are one hand filed under two
    /// names ([`SetSpec::same_hands`]).
    #[serde(default)]
    pub impostor_left_out: usize,
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
/// The templates of one sample, the pose found first, and the extraction time.
type Extracted = (Result<Vec<Template>, String>, f64);

/// Reads a sample's image.
pub type Loader = dyn Fn(&Sample) -> Result<image::DynamicImage, String> + Sync;

/// Reads the sample's file.
pub fn load_file(sample: &Sample) -> Result<image::DynamicImage, String> {
    image::open(&sample.path).map_err(|e| format!("cannot read image: {e}"))
}

/// Extracts every sample on `threads` threads.
fn extract_all(
    samples: &[Sample],
    load: &Loader,
    extractor: &Extractor,
    input: InputKind,
    poses: &[Pose],
    threads: usize,
    progress: &dyn Progress,
) -> BTreeMap<usize, Extracted> {
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
                    let outcome = match load(sample) {
                        Ok(image) => {
                            let start = Instant::now();
                            let result = extractor.extract_image_probe(&image, input, poses);
                            let ms = start.elapsed().as_secs_f64() * 1e3;
                            (
                                result
                                    .map(|probe| probe.poses)
                                    .map_err(|e: ExtractError| e.to_string()),
                                ms,
                            )
                        }
                        Err(e) => (Err(e), f64::NAN),
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
    results
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Every pairwise distance of the usable templates (upper triangle, row by row), with the time
/// of every comparison in µs. Rows are spread over `threads`.
struct Distances {
    rows: Vec<Vec<u32>>,
    compare_us: Vec<f64>,
}

/// One row of [`Distances`]: distances to the later templates and the time of each comparison.
type Row = (Vec<u32>, Vec<f64>);

/// The enrolment protocol's distances that the matrix of [`Distances`] holds the other way round:
/// for every enrolled capture (one of the first [`MAX_ENROLLED_TEMPLATES`] of its identity) and
/// every capture of another identity taken before it (an impostor probe), the probe at every
/// pose against the enrolled capture as found. (A genuine probe always comes after its hand's
/// references.) Keyed `(reference, probe)`.
fn late_references(
    samples: &[&[Template]],
    references: &[usize],
    keys: &[SampleKey],
    threads: usize,
) -> HashMap<(usize, usize), u32> {
    let probes: Vec<usize> = (0..keys.len().min(samples.len())).collect();
    let late = Mutex::new(HashMap::new());
    let chunk = probes.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|scope| {
        for part in probes.chunks(chunk) {
            let (references, late) = (&references, &late);
            scope.spawn(move || {
                let mut found = Vec::new();
                for &probe in part {
                    let identity = keys.get(probe).map(|k| k.identity);
                    let others = references
                        .iter()
                        .filter(|&&r| r > probe && keys.get(r).map(|k| k.identity) != identity);
                    for &reference in others {
                        found.push(((reference, probe), as_on_a_card(samples, reference, probe)));
                    }
                }
                if let Ok(mut map) = late.lock() {
                    map.extend(found);
                }
            });
        }
    });
    late.into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sample `probe` at every pose against sample `reference` as found, as a card compares them
/// (`1 << 16` when they cannot be compared).
fn as_on_a_card(samples: &[&[Template]], reference: usize, probe: usize) -> u32 {
    let as_found = samples.get(reference).and_then(|poses| poses.first());
    as_found
        .zip(samples.get(probe))
        .and_then(|(reference, poses)| compare_posed(poses, std::slice::from_ref(reference)).ok())
        .map_or(1 << 16, |c| c.distance_q16())
}

impl Distances {
    /// `samples[i]` holds sample `i`'s templates, the pose found first. For `i < j`, sample `j`
    /// is the probe (every pose) and sample `i` the reference (the pose found), as on a card.
    fn compute(samples: &[&[Template]], threads: usize, progress: &dyn Progress) -> Distances {
        let n = samples.len();
        let pairs = n * n.saturating_sub(1) / 2;
        let rows: Mutex<BTreeMap<usize, Row>> = Mutex::new(BTreeMap::new());
        let next = AtomicUsize::new(0);
        let compared = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(reference) = samples.get(i).and_then(|poses| poses.first()) else {
                            break;
                        };
                        let mut row = Vec::with_capacity(n - i - 1);
                        let mut times = Vec::with_capacity(n - i - 1);
                        for probe in &samples[i + 1..] {
                            let start = Instant::now();
                            let result = compare_posed(probe, std::slice::from_ref(reference));
                            // Per comparison (the speed target is one comparison's).
                            times.push(
                                start.elapsed().as_secs_f64() * 1e6 / probe.len().max(1) as f64,
                            );
                            // Templates of one extractor share the algorithm; a refusal would be a
                            // stranger.
                            row.push(result.map_or(1 << 16, |c| c.distance_q16()));
                        }
                        if let Ok(mut map) = rows.lock() {
                            map.insert(i, (row, times));
                        }
                        let done = compared.fetch_add(n - i - 1, Ordering::Relaxed) + n - i - 1;
                        progress.update("compare", done, pairs);
                    }
                });
            }
        });
        let rows = rows
            .into_inner()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut out = Distances {
            rows: Vec::with_capacity(n),
            compare_us: Vec::with_capacity(pairs),
        };
        for (_, (row, times)) in rows {
            out.rows.push(row);
            out.compare_us.extend(times);
        }
        out
    }

    /// Distance of usable templates `i < j`.
    fn get(&self, i: usize, j: usize) -> u32 {
        self.rows
            .get(i)
            .and_then(|row| row.get(j.wrapping_sub(i + 1)))
            .copied()
            .unwrap_or(1 << 16)
    }
}

/// How a set's sample names tell their capture session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionRule {
    /// A prefix before `-` (`1-03.png` → session `1`, as in Tongji); none without it.
    #[default]
    Prefix,
    /// Numbered samples: `1..=n` are the first session, the others the second (CASIA: `01`–`03`,
    /// `04`–`06`).
    SplitAfter(u32),
}

impl SessionRule {
    /// The session of a sample.
    pub fn session(self, sample: &Sample) -> Option<String> {
        match self {
            SessionRule::Prefix => sample.session().map(str::to_owned),
            SessionRule::SplitAfter(n) => {
                let number: u32 = sample.path.file_stem()?.to_str()?.parse().ok()?;
                Some(if number <= n { "1" } else { "2" }.to_owned())
            }
        }
    }
}

/// Everything one set's evaluation keeps for the suite: the pairwise figures and the trials of
/// both protocols.
#[derive(Debug, Clone)]
pub struct SetEvaluation {
    /// The all-pairs evaluation (the figures of `palmgate eval --data`).
    pub evaluation: Evaluation,
    /// Every unordered pair of usable samples.
    pub all_pairs: Trials,
    /// Enrolment with one template and with [`MAX_ENROLLED_TEMPLATES`], on the same probes.
    pub enrolment: [Trials; 2],
    /// Per profile ([`Profile::ALL`] order), enrolment with [`MAX_ENROLLED_TEMPLATES`] templates
    /// as the enrolment station chooses them (`station_roles`).
    pub station_enrolment: [StationEnrolment; 3],
    /// The poses the station compared each later capture at (the set's cut: its kind's poses).
    pub station_poses: usize,
}

/// Enrolment as the station chooses it under one profile.
#[derive(Debug, Clone)]
pub struct StationEnrolment {
    /// Hands with at least [`MAX_ENROLLED_TEMPLATES`] captures (the others are not enrolled).
    pub hands: usize,
    /// Hands whose first [`MAX_ENROLLED_TEMPLATES`] captures do not all match each other (a
    /// capture with no template matches none): the station asks them for extra captures.
    pub refused_first_series: usize,
    /// Hands it refused: no [`MAX_ENROLLED_TEMPLATES`] captures that all match each other among
    /// the first ones and the extra captures the set holds.
    pub refused: usize,
    /// Of those, hands with fewer captures in the set than the station would have asked for
    /// (a station would have asked for another capture).
    pub refused_short_of_captures: usize,
    /// The trials: its enrolled captures are the references, the captures after the last one
    /// it took the genuine probes, every capture an impostor probe.
    pub trials: Trials,
}

/// Extracts every sample (on `threads` threads) and makes every genuine and impostor comparison.
pub fn evaluate(
    samples: &[Sample],
    extractor: &Extractor,
    input: InputKind,
    poses: &[Pose],
    threads: usize,
    progress: &dyn Progress,
) -> Result<Evaluation, EvalError> {
    evaluate_set(
        samples,
        &load_file,
        SessionRule::Prefix,
        Cutting {
            extractor,
            input,
            poses,
        },
        &[],
        threads,
        progress,
    )
    .map(|set| set.evaluation)
}

/// How a set's images become templates.
#[derive(Debug, Clone, Copy)]
pub struct Cutting<'a> {
    /// The extractor.
    pub extractor: &'a Extractor,
    /// What the images show.
    pub input: InputKind,
    /// The poses a probe is cut at (the first is the reference's).
    pub poses: &'a [Pose],
}

/// The identities of `samples`, sorted: an identity's index in the trials is its place here.
fn identity_names(samples: &[Sample]) -> Vec<&str> {
    samples
        .iter()
        .map(|s| s.identity.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The indices (in `identities`) of each pair of `same_hands`; a name the set does not have is an
/// error, so that a mistyped pair never silently applies to nothing.
fn same_hand_indices(
    identities: &[&str],
    same_hands: &[[String; 2]],
) -> Result<Vec<[u32; 2]>, EvalError> {
    let index_of = |name: &String| {
        identities
            .binary_search(&name.as_str())
            .map(|i| i as u32)
            .map_err(|_| EvalError::UnknownIdentity {
                set: None,
                identity: name.clone(),
            })
    };
    same_hands
        .iter()
        .map(|[a, b]| Ok([index_of(a)?, index_of(b)?]))
        .collect()
}

/// [`evaluate`] with any image source and session rule, keeping the trials of both protocols;
/// the impostor trials between the two identities of each pair of `same_hands` are left out
/// ([`SetSpec::same_hands`]).
pub fn evaluate_set(
    samples: &[Sample],
    load: &Loader,
    sessions: SessionRule,
    cutting: Cutting<'_>,
    same_hands: &[[String; 2]],
    threads: usize,
    progress: &dyn Progress,
) -> Result<SetEvaluation, EvalError> {
    let Cutting {
        extractor,
        input,
        poses,
    } = cutting;
    let identities = identity_names(samples);
    if identities.len() < 2 {
        return Err(EvalError::NotEnoughData(format!(
            "need at least two identities, found {}",
            identities.len()
        )));
    }
    let same_hands = same_hand_indices(&identities, same_hands)?;
    let total = samples.len();
    let results = extract_all(samples, load, extractor, input, poses, threads, progress);

    let mut templates: Vec<Vec<Template>> = Vec::new();
    let mut keys: Vec<SampleKey> = Vec::new();
    let mut failures = Vec::new();
    let mut extract_ms = Vec::new();
    for (index, (outcome, ms)) in results {
        let sample = &samples[index];
        match outcome {
            Ok(template) => {
                extract_ms.push(ms);
                templates.push(template);
                keys.push(SampleKey {
                    identity: identities
                        .binary_search(&sample.identity.as_str())
                        .unwrap_or(0) as u32,
                    session: sessions.session(sample),
                });
            }
            Err(reason) => failures.push((sample.path.clone(), reason)),
        }
    }
    let refs: Vec<&[Template]> = templates.iter().map(Vec::as_slice).collect();
    let mut distances = Distances::compute(&refs, threads, progress);
    let d = |i: usize, j: usize| distances.get(i, j);
    let mut all_pairs = protocol::all_pairs(identities.len(), &keys, d);
    let impostor_left_out = all_pairs.leave_out_same_hands(&same_hands);
    // The probe at every pose against the reference as found, as the card compares them: the
    // matrix holds that for a reference captured before the probe, `late` the other order (an
    // impostor's references may come after the probe).
    let first = protocol::EnrolmentRoles::new(
        identities.len(),
        &keys,
        MAX_ENROLLED_TEMPLATES,
        MAX_ENROLLED_TEMPLATES,
    );
    let station_poses = poses.len().max(1);
    let station_roles = station_roles(identities.len(), &keys, &templates, station_poses);
    let mut references: Vec<usize> = first
        .references
        .iter()
        .chain(
            station_roles
                .iter()
                .flat_map(|(_, roles)| &roles.references),
        )
        .flatten()
        .copied()
        .collect();
    references.sort_unstable();
    references.dedup();
    let late = late_references(&refs, &references, &keys, threads);
    let enrolled_distance = |reference: usize, probe: usize| {
        if reference < probe {
            distances.get(reference, probe)
        } else {
            // Computed ahead for every reference either protocol enrols; any other is compared
            // here, so a reference missing from `late` costs time, never a wrong distance.
            late.get(&(reference, probe))
                .copied()
                .unwrap_or_else(|| as_on_a_card(&refs, reference, probe))
        }
    };
    let enrolment = [1, MAX_ENROLLED_TEMPLATES].map(|enrolled| {
        let mut trials = protocol::enrolment(
            identities.len(),
            &keys,
            enrolled,
            MAX_ENROLLED_TEMPLATES,
            enrolled_distance,
        );
        trials.leave_out_same_hands(&same_hands);
        trials
    });
    let captures: Vec<usize> = protocol::per_identity(identities.len(), &keys)
        .iter()
        .map(Vec::len)
        .collect();
    let station_enrolment = station_roles.map(|(first_series, roles)| {
        let mut trials =
            protocol::enrolment_with_roles(identities.len(), &keys, &roles, enrolled_distance);
        trials.leave_out_same_hands(&same_hands);
        StationEnrolment::new(&captures, &first_series, &roles, trials)
    });
    if all_pairs.genuine.is_empty() {
        return Err(EvalError::NotEnoughData(
            "no identity has two usable images".into(),
        ));
    }
    let scores = Scores::new(
        all_pairs.genuine.iter().map(|t| t.distance).collect(),
        all_pairs.impostor.iter().map(|t| t.distance).collect(),
    );
    let mut cross_session: Vec<u32> = all_pairs
        .genuine
        .iter()
        .filter(|t| t.sessions == SessionPair::Cross)
        .map(|t| t.distance)
        .collect();
    cross_session.sort_unstable();
    let threshold = scores.threshold_at_fmr(1e-3).unwrap_or(0);
    let report = Report {
        identities: identities.len(),
        images: total,
        genuine: scores.genuine.len(),
        impostor: scores.impostor.len(),
        impostor_left_out,
        fta: rate(failures.len(), total),
        eer: scores.eer(),
        fnmr_at_fmr_1e_2: scores.fnmr_at_fmr(1e-2),
        fnmr_at_fmr_1e_3: scores.fnmr_at_fmr(1e-3),
        fnmr_at_fmr_1e_4: scores.fnmr_at_fmr(1e-4),
        threshold_at_fmr_1e_3: f64::from(threshold) / 65536.0,
        extract_ms_median: median(&mut extract_ms),
        compare_us_median: median(&mut distances.compare_us),
    };
    Ok(SetEvaluation {
        evaluation: Evaluation {
            report,
            scores,
            cross_session_genuine: cross_session,
            failures,
        },
        all_pairs,
        enrolment,
        station_enrolment,
        station_poses,
    })
}

impl StationEnrolment {
    /// The station's choice under one profile, at the first series and after the extra
    /// captures, over identities with `captures[identity]` captures each; `trials` its enrolment.
    fn new(
        captures: &[usize],
        first_series: &protocol::EnrolmentRoles,
        after_extra: &protocol::EnrolmentRoles,
        trials: Trials,
    ) -> StationEnrolment {
        let short = |identity: &&usize| {
            captures.get(**identity).copied().unwrap_or(0)
                < MAX_ENROLLED_TEMPLATES + STATION_EXTRA_CAPTURES
        };
        StationEnrolment {
            hands: captures
                .iter()
                .filter(|&&n| n >= MAX_ENROLLED_TEMPLATES)
                .count(),
            refused_first_series: first_series.refused.len(),
            refused: after_extra.refused.len(),
            refused_short_of_captures: after_extra.refused.iter().filter(short).count(),
            trials,
        }
    }
}

/// Per profile ([`Profile::ALL`] order), whom the enrolment station enrols from which captures,
/// at the first series and after up to [`STATION_EXTRA_CAPTURES`] extra captures: it compares
/// captures as a card compares a probe — the later capture at its poses (`templates[j]`) against
/// the earlier as found (`templates[i][0]`; a capture with no template matches none) — with the
/// profile's one-template threshold for `poses` poses, the set's kind's (what `palmgate enrol --profile`
/// compares with), enrols the earliest [`MAX_ENROLLED_TEMPLATES`] that all match each other, and
/// refuses a hand with none; a hand's genuine probes are its captures after the last one the
/// station took.
fn station_roles(
    identities: usize,
    keys: &[SampleKey],
    templates: &[Vec<Template>],
    poses: usize,
) -> [(protocol::EnrolmentRoles, protocol::EnrolmentRoles); 3] {
    // Each pair among a hand's first captures, the later at its poses (`None`: not comparable).
    let mut posed_distances: HashMap<(usize, usize), Option<u32>> = HashMap::new();
    for list in &protocol::per_identity(identities, keys) {
        let taken = &list[..list
            .len()
            .min(MAX_ENROLLED_TEMPLATES + STATION_EXTRA_CAPTURES)];
        for (i, &a) in taken.iter().enumerate() {
            for &b in &taken[i + 1..] {
                let found = templates.get(a).and_then(|t| t.first());
                let poses = templates.get(b).filter(|t| !t.is_empty());
                let distance = found
                    .zip(poses)
                    .and_then(|(a, b)| compare_posed(b, core::slice::from_ref(a)).ok())
                    .map(|c| c.distance_q16());
                posed_distances.insert((a, b), distance);
            }
        }
    }
    Profile::ALL.map(|profile| {
        let threshold = profile.threshold(1, poses).q16();
        let roles = |extra: usize| {
            protocol::EnrolmentRoles::station(
                identities,
                keys,
                MAX_ENROLLED_TEMPLATES,
                extra,
                protocol::StationRule::EveryPair,
                protocol::StationProbes::AfterTaken,
                |a, b| {
                    posed_distances
                        .get(&(a, b))
                        .copied()
                        .flatten()
                        .is_some_and(|d| d <= threshold)
                },
            )
        };
        (roles(0), roles(STATION_EXTRA_CAPTURES))
    })
}

/// The enrolment station's refusals under each profile ([`StationEnrolment`] per profile).
fn station_outcomes(enrolment: &[StationEnrolment; 3], poses: usize) -> Vec<StationOutcome> {
    Profile::ALL
        .iter()
        .zip(enrolment)
        .map(|(profile, enrolment)| StationOutcome {
            profile: profile.name().to_owned(),
            threshold_q16: profile.threshold(1, poses).q16(),
            hands: enrolment.hands,
            refused: enrolment.refused_first_series,
            rate: rate(enrolment.refused_first_series, enrolment.hands),
            extra_captures: STATION_EXTRA_CAPTURES,
            refused_after_extra_captures: enrolment.refused,
            refused_short_of_captures: enrolment.refused_short_of_captures,
        })
        .collect()
}

/// Where a set's images come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSource {
    /// `DIR/<identity>/<sample>.<ext>`.
    Folder(PathBuf),
    /// The project's synthetic palms (`synth`), made in memory: identities `first..first + n`,
    /// `samples` captures each, of the set's input kind.
    Synthetic {
        /// First identity.
        first: u64,
        /// Identities.
        identities: u64,
        /// Captures per identity.
        samples: u64,
    },
}

/// One set of the suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetSpec {
    /// Name in the tables.
    pub name: String,
    /// What the images show.
    pub input: InputKind,
    /// How sample names tell sessions.
    pub sessions: SessionRule,
    /// Where the images come from.
    pub source: SetSource,
    /// Pairs of identity names that are one hand filed under two names (a data set's labelling
    /// error, found and checked as docs/matcher.md says): their comparisons are left out of the
    /// impostor trials, since they are not impostors, and counted in
    /// [`Report::impostor_left_out`].
    pub same_hands: Vec<[String; 2]>,
}

/// The profile ([`Profile::ALL`] index) whose station enrolment the threshold-free figures
/// [`SetReport::enrolment_3_station`] report: `balanced`, the default.
const STATION_REPORTED: usize = 1;

/// Folds of the identity-disjoint validation.
pub const FOLDS: usize = 5;
/// Seed of the fold assignment and of the bootstrap (fixed: the tables are reproducible).
pub const SEED: u64 = 0x5EED_0F01D;

/// One set's figures in the suite (JSON of `palmgate eval`: the keys of [`Report`] at the top).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SetReport {
    /// Set name.
    pub name: String,
    /// What the images show.
    pub input: InputKind,
    /// All pairs, all identities (the figures `palmgate eval` always printed).
    #[serde(flatten)]
    pub report: Report,
    /// Identity folds of the profile validation.
    pub folds: usize,
    /// All pairs with 95 % intervals (bootstrap over identities). Threshold-free: nothing of the
    /// matcher is tuned on these trials, so all identities count.
    pub all_pairs: FiguresCi,
    /// The same with cross-session genuine pairs only (sets with sessions).
    pub all_pairs_cross_session: Option<FiguresCi>,
    /// The same with same-session genuine pairs only (sets with sessions).
    pub all_pairs_same_session: Option<FiguresCi>,
    /// Enrolment with one template.
    pub enrolment_1: FiguresCi,
    /// Enrolment with [`MAX_ENROLLED_TEMPLATES`] templates (the minimum distance), same probes.
    pub enrolment_3: FiguresCi,
    /// Enrolment with three templates, cross-session probes only (sets with sessions).
    pub enrolment_3_cross_session: Option<FiguresCi>,
    /// The profiles with one enrolled template: thresholds tuned on the other folds.
    pub profiles_1: Vec<ProfileOutcome>,
    /// The profiles with three enrolled templates.
    pub profiles_3: Vec<ProfileOutcome>,
    /// The same thresholds (calibrated on the tuning folds of `profiles_3`'s trials) on the
    /// held-out folds of enrolment as the station chooses it under each profile: the earliest
    /// three captures that all match among the first three and up to
    /// [`STATION_EXTRA_CAPTURES`] more, the captures after the last one taken as probes
    /// ([`SetEvaluation::station_enrolment`]).
    #[serde(default)]
    pub profiles_3_station: Vec<ProfileOutcome>,
    /// Threshold-free figures of three templates enrolled as the station chooses them under
    /// `balanced` (the default profile; the other profiles choose alike or refuse a few more
    /// hands), with 95 % intervals: [`SetReport::enrolment_3`] is the first three captures.
    /// `None` when the set has no genuine or no impostor trial that way.
    #[serde(default)]
    pub enrolment_3_station: Option<FiguresCi>,
    /// The shipped [`Profile`] thresholds applied to every trial of the set (all pairs with one
    /// template, enrolment with three).
    pub shipped_profiles: Vec<ProfileOutcome>,
    /// The enrolment station's check on the hands the enrolment protocol enrols: how many it
    /// would refuse under each profile ([`SetEvaluation::station`]).
    #[serde(default)]
    pub enrolment_station: Vec<StationOutcome>,
}

/// The enrolment station's refusals under one profile: hands whose first captures do not all
/// match each other (a failure to enrol at the first series of captures).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StationOutcome {
    /// Profile name (`palmgate enrol --profile`).
    pub profile: String,
    /// The threshold the station compares with: the profile's one-template, one-pose value.
    pub threshold_q16: u32,
    /// Hands checked (identities with at least [`MAX_ENROLLED_TEMPLATES`] usable captures).
    pub hands: usize,
    /// Hands refused.
    pub refused: usize,
    /// `refused / hands`.
    pub rate: f64,
    /// Extra captures the station asks for before it refuses ([`STATION_EXTRA_CAPTURES`]).
    #[serde(default)]
    pub extra_captures: usize,
    /// Hands refused after them: no three captures that all match each other among the first
    /// three and the extra ones (as many as the set holds).
    #[serde(default)]
    pub refused_after_extra_captures: usize,
    /// Of those, hands the set holds fewer captures of than the station asks for: a station
    /// would have asked for another, so they are refused for want of data, not by the station.
    #[serde(default)]
    pub refused_short_of_captures: usize,
}

/// A threshold calibrated on every set of the suite.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibratedThreshold {
    /// Profile name.
    pub profile: String,
    /// Enrolled templates.
    pub enrolled: usize,
    /// Target FMR.
    pub target_fmr: f64,
    /// Calibrated threshold, Q16 (`None`: no set large enough for the target).
    pub q16: Option<u32>,
    /// The set whose impostor tail decided the threshold ([`protocol::calibrate_bound`]).
    #[serde(default)]
    pub bound_by: Option<String>,
    /// That set's impostor trials: at most `target_fmr` of them compare at or below the threshold.
    #[serde(default)]
    pub bound_by_impostors: Option<u64>,
}

/// The suite's outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SuiteReport {
    /// Per set.
    pub sets: Vec<SetReport>,
    /// Thresholds calibrated on all folds of all sets (what [`Profile`] should ship).
    pub calibrated: Vec<CalibratedThreshold>,
}

/// Lists a synthetic set's samples (paths name identity and capture; nothing is written).
fn synthetic_samples(first: u64, identities: u64, samples: u64) -> Vec<Sample> {
    (first..first + identities)
        .flat_map(|identity| {
            (0..samples).map(move |capture| Sample {
                identity: format!("{identity:05}"),
                path: PathBuf::from(format!("synthetic/{identity:05}/{capture:02}")),
            })
        })
        .collect()
}

fn synthetic_loader(input: InputKind) -> impl Fn(&Sample) -> Result<image::DynamicImage, String> {
    move |sample: &Sample| {
        let number = |s: Option<&std::ffi::OsStr>| {
            s.and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| format!("not a synthetic sample: {}", sample.path.display()))
        };
        let capture = number(sample.path.file_name())?;
        let identity = number(sample.path.parent().and_then(Path::file_name))?;
        Ok(image::DynamicImage::ImageLuma8(match input {
            InputKind::Hand => crate::synth::hand_image(identity, capture),
            InputKind::Roi => crate::synth::roi_image(identity, capture),
        }))
    }
}

/// `error` with the name of the set it is about.
fn named(spec: &SetSpec, error: EvalError) -> EvalError {
    match error {
        EvalError::NotEnoughData(why) => {
            EvalError::NotEnoughData(format!("set {}: {why}", spec.name))
        }
        EvalError::UnknownIdentity {
            set: None,
            identity,
        } => EvalError::UnknownIdentity {
            set: Some(spec.name.clone()),
            identity,
        },
        other => other,
    }
}

/// Evaluates every set; calibrates the profiles on the pooled sets with identity-disjoint folds.
/// `on_set` is called as each set finishes (for progress output).
pub fn evaluate_suite(
    specs: &[SetSpec],
    extractor: &Extractor,
    pose_limit: usize,
    threads: usize,
    progress: &dyn Progress,
    on_set: &dyn Fn(&SetSpec, &SetEvaluation),
) -> Result<(SuiteReport, Vec<SetEvaluation>), EvalError> {
    let mut evaluations = Vec::with_capacity(specs.len());
    // Each set's probes are cut as the gate cuts its kind of input (at most `pose_limit` poses).
    let poses_of = |spec: &SetSpec| {
        let poses = probe_poses(spec.input);
        &poses[..pose_limit.clamp(1, poses.len())]
    };
    // Every set is listed and its same-hand pairs checked before any image is read: a mistyped
    // pair of the last set must not fail after the first sets' extraction (minutes each).
    let mut listed = Vec::with_capacity(specs.len());
    for spec in specs {
        let samples = match &spec.source {
            SetSource::Folder(dir) => scan(dir)?,
            SetSource::Synthetic {
                first,
                identities,
                samples,
            } => synthetic_samples(*first, *identities, *samples),
        };
        same_hand_indices(&identity_names(&samples), &spec.same_hands)
            .map_err(|e| named(spec, e))?;
        listed.push(samples);
    }
    for (spec, samples) in specs.iter().zip(&listed) {
        let poses = poses_of(spec);
        let evaluation = match &spec.source {
            SetSource::Folder(_) => evaluate_set(
                samples,
                &load_file,
                spec.sessions,
                Cutting {
                    extractor,
                    input: spec.input,
                    poses,
                },
                &spec.same_hands,
                threads,
                progress,
            ),
            SetSource::Synthetic { .. } => evaluate_set(
                samples,
                &synthetic_loader(spec.input),
                spec.sessions,
                Cutting {
                    extractor,
                    input: spec.input,
                    poses,
                },
                &spec.same_hands,
                threads,
                progress,
            ),
        }
        .map_err(|e| named(spec, e))?;
        on_set(spec, &evaluation);
        evaluations.push(evaluation);
    }
    let folds: Vec<Vec<usize>> = evaluations
        .iter()
        .map(|e| protocol::folds(e.all_pairs.identities, FOLDS, SEED))
        .collect();
    let targets: Vec<(&str, f64)> = Profile::ALL
        .iter()
        .map(|p| (p.name(), p.target_fmr()))
        .collect();
    let validated = |pick: &dyn Fn(&SetEvaluation) -> &Trials| {
        let sets: Vec<(&Trials, &[usize])> = evaluations
            .iter()
            .zip(&folds)
            .map(|(e, f)| (pick(e), f.as_slice()))
            .collect();
        protocol::validate_calibration(&sets, FOLDS, &targets)
    };
    let profiles_1 = validated(&|e| &e.all_pairs);
    let profiles_3 = validated(&|e| &e.enrolment[1]);
    // The same thresholds at a gate whose hands were enrolled as the station chooses them.
    let profiles_3_station = {
        let sets: Vec<(&Trials, &[usize])> = evaluations
            .iter()
            .zip(&folds)
            .map(|(e, f)| (&e.enrolment[1], f.as_slice()))
            .collect();
        let measured: Vec<Vec<&Trials>> = evaluations
            .iter()
            .map(|e| e.station_enrolment.iter().map(|s| &s.trials).collect())
            .collect();
        protocol::validate_calibration_on(&sets, &measured, FOLDS, &targets)
    };

    let mut calibrated = Vec::new();
    for enrolled in [1usize, MAX_ENROLLED_TEMPLATES] {
        let pick = |e: &SetEvaluation| -> protocol::Histogram {
            if enrolled == 1 {
                e.all_pairs.histogram()
            } else {
                e.enrolment[1].histogram()
            }
        };
        let histograms: Vec<protocol::Histogram> = evaluations.iter().map(pick).collect();
        for profile in Profile::ALL {
            let bound = protocol::calibrate_bound(&histograms, profile.target_fmr());
            calibrated.push(CalibratedThreshold {
                profile: profile.name().to_owned(),
                enrolled,
                target_fmr: profile.target_fmr(),
                q16: bound.map(|(_, threshold)| threshold),
                bound_by: bound.map(|(set, _)| specs[set].name.clone()),
                bound_by_impostors: bound.map(|(set, _)| histograms[set].impostors()),
            });
        }
    }

    let mut sets = Vec::with_capacity(specs.len());
    for (s, (spec, e)) in specs.iter().zip(&evaluations).enumerate() {
        let ci = |trials: &Trials| {
            protocol::with_confidence(trials, protocol::BOOTSTRAP_REPLICATES, SEED, threads)
        };
        let all = &e.all_pairs;
        let has_sessions = all.genuine.iter().any(|t| t.sessions == SessionPair::Cross);
        let enrolment_3 = &e.enrolment[1];
        let shipped = |trials: &Trials, enrolled: usize| -> Vec<ProfileOutcome> {
            let h = trials.histogram();
            Profile::ALL
                .iter()
                .map(|p| {
                    let t = p.threshold(enrolled, poses_of(spec).len()).q16();
                    let (fm, imp) = h.false_matches(t);
                    let (fnm, genuine_trials) = h.false_non_matches(t);
                    ProfileOutcome {
                        profile: format!("{} ({enrolled} template(s))", p.name()),
                        target_fmr: p.target_fmr(),
                        calibrated_folds: 0,
                        false_matches: fm,
                        impostors: imp,
                        false_non_matches: fnm,
                        genuine: genuine_trials,
                        fmr: rate(fm as usize, imp as usize),
                        fnmr: rate(fnm as usize, genuine_trials as usize),
                    }
                })
                .collect()
        };
        let mut shipped_profiles = shipped(&e.all_pairs, 1);
        shipped_profiles.extend(shipped(&e.enrolment[1], MAX_ENROLLED_TEMPLATES));
        sets.push(SetReport {
            name: spec.name.clone(),
            input: spec.input,
            report: e.evaluation.report.clone(),
            folds: FOLDS,
            all_pairs_cross_session: has_sessions
                .then(|| ci(&all.with_genuine_sessions(SessionPair::Cross))),
            all_pairs_same_session: has_sessions
                .then(|| ci(&all.with_genuine_sessions(SessionPair::Same))),
            all_pairs: ci(all),
            enrolment_1: ci(&e.enrolment[0]),
            enrolment_3_cross_session: has_sessions
                .then(|| ci(&enrolment_3.with_genuine_sessions(SessionPair::Cross))),
            enrolment_3: ci(enrolment_3),
            profiles_1: profiles_1[s].clone(),
            profiles_3: profiles_3[s].clone(),
            profiles_3_station: profiles_3_station[s].clone(),
            enrolment_3_station: Some(&e.station_enrolment[STATION_REPORTED].trials)
                .filter(|t| !t.genuine.is_empty() && !t.impostor.is_empty())
                .map(ci),
            shipped_profiles,
            enrolment_station: station_outcomes(&e.station_enrolment, e.station_poses),
        });
    }
    Ok((SuiteReport { sets, calibrated }, evaluations))
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
    use crate::compare::compare;
    use crate::template::CELLS;

    #[test]
    fn a_missing_folder_says_why_once() {
        let path = std::env::temp_dir().join("palmgate-no-such-palm-folder");
        let error = scan(&path).expect_err("no such folder");
        let text = crate::error_chain(&error);
        // As the binary prints the chain: the io error once, as the source (it was repeated).
        assert!(text.starts_with("cannot list "), "{text}");
        assert_eq!(text.matches("os error 2").count(), 1, "{text}");
    }

    /// A stranger: orientations from a pseudo-random sequence (far from any [`template`]).
    fn stranger() -> Template {
        let mut state = 0x2545_f491_u32;
        let orientations: [u8; CELLS] = std::array::from_fn(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((state >> 24) % 6) as u8
        });
        Template::from_cells(&orientations, &[true; CELLS]).expect("template")
    }

    /// A template whose cells follow `seed` (different seeds compare like strangers).
    fn template(seed: usize) -> Template {
        let orientations: [u8; CELLS] =
            std::array::from_fn(|i| ((i * 7 + seed * 13 + (i * i * seed) % 11) % 6) as u8);
        Template::from_cells(&orientations, &[true; CELLS]).expect("template")
    }

    #[test]
    fn references_captured_after_a_probe_are_compared_as_references() {
        // Identity 0: captures 0, 1, 2 enrolled, 3 a probe; identity 1: 4, 5, 6 enrolled, 7 a
        // probe. Each capture has two poses, the found one first.
        let mut templates: Vec<Vec<Template>> = (0..8)
            .map(|i| vec![template(2 * i + 1), template(2 * i + 2)])
            .collect();
        // The probe's second pose is identity 1's first capture as found: distance 0 as the
        // card compares them, not the other way round.
        templates[3][1] = template(2 * 4 + 1);
        let samples: Vec<&[Template]> = templates.iter().map(Vec::as_slice).collect();
        let keys: Vec<SampleKey> = (0..8)
            .map(|i| SampleKey {
                identity: u32::from(i >= 4),
                session: None,
            })
            .collect();
        let late = late_references(&samples, &[0, 1, 2, 4, 5, 6], &keys, 2);
        let mut pairs: Vec<_> = late.keys().copied().collect();
        pairs.sort_unstable();
        // Every capture of identity 0 is an impostor probe for identity 1's references, which
        // were all captured after it; identity 1's captures come after identity 0's references.
        let expected: Vec<(usize, usize)> = (4..7)
            .flat_map(|reference| (0..4).map(move |probe| (reference, probe)))
            .collect();
        assert_eq!(pairs, expected);
        for (&(reference, probe), &distance) in &late {
            let as_on_a_card =
                compare_posed(samples[probe], std::slice::from_ref(&samples[reference][0]))
                    .expect("same algorithm");
            assert_eq!(distance, as_on_a_card.distance_q16());
        }
        // The other way round (the reference's poses against the probe as found) is another
        // comparison: what the matrix alone would have given.
        let swapped = compare_posed(samples[4], std::slice::from_ref(&samples[3][0]))
            .expect("same algorithm")
            .distance_q16();
        assert_eq!(late[&(4, 3)], 0);
        assert!(swapped > 0, "{swapped}");
    }

    #[test]
    fn the_station_compares_the_later_capture_at_its_poses_as_a_card_does() {
        // Identity 0: capture 2 as found is a stranger's template and its second pose the hand's
        // own; capture 3 as found is the hand's own and its second pose the stranger's. Each
        // later capture at its poses matches every earlier one as found, so the station enrols
        // the first three; compared as found only, captures 1 and 2 do not match.
        let stranger = stranger();
        let templates: Vec<Vec<Template>> = vec![
            vec![template(1)],
            vec![stranger.clone(), template(1)],
            vec![template(1), stranger.clone()],
            vec![template(5)],
            vec![template(5)],
            vec![template(5)],
        ];
        let keys: Vec<SampleKey> = [0, 0, 0, 1, 1, 1]
            .iter()
            .map(|&identity| SampleKey {
                identity,
                session: None,
            })
            .collect();
        let far = compare(&templates[1][0], &templates[0][0]).expect("comparable");
        assert!(
            !far.is_match(Profile::Convenience.threshold(1, 1)),
            "{far:?}"
        );
        for (first_series, _) in &station_roles(2, &keys, &templates, 2) {
            assert!(
                first_series.refused.is_empty(),
                "{:?}",
                first_series.refused
            );
            assert_eq!(first_series.references[0], [0, 1, 2]);
            assert_eq!(first_series.references[1], [3, 4, 5]);
        }
        // The same captures cut at one pose (as found only): captures 1 and 2 do not match, and
        // the hand is refused.
        let found_only: Vec<Vec<Template>> =
            templates.iter().map(|poses| poses[..1].to_vec()).collect();
        for (first_series, _) in &station_roles(2, &keys, &found_only, 1) {
            assert_eq!(first_series.refused, [0]);
            assert_eq!(first_series.references[1], [3, 4, 5]);
        }
    }

    #[test]
    fn the_station_refuses_a_hand_whose_first_captures_disagree_and_checks_only_full_hands() {
        // Identity 0: three captures of one hand (and a fourth, a stranger's, never checked);
        // identity 1: its third capture a stranger's, its fourth its own again (last in the
        // list); identity 2: two captures, not checked; identity 3: a capture that gave no
        // template at the pose found.
        let stranger = stranger();
        let same = || vec![template(1)];
        let templates: Vec<Vec<Template>> = vec![
            same(),
            same(),
            same(),
            vec![template(7)],
            vec![template(3)],
            vec![template(3)],
            vec![stranger],
            same(),
            same(),
            vec![template(5)],
            vec![template(5)],
            Vec::new(),
            vec![template(3)],
        ];
        let identity_of = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 1];
        let keys: Vec<SampleKey> = identity_of
            .iter()
            .map(|&identity| SampleKey {
                identity,
                session: None,
            })
            .collect();
        // The stranger's capture is far from identity 1's, under every profile.
        let far = compare(&templates[4][0], &templates[6][0]).expect("comparable");
        assert!(
            !far.is_match(Profile::Convenience.threshold(1, 1)),
            "{far:?}"
        );
        let roles = station_roles(4, &keys, &templates, 1);
        for (first_series, after_extra) in &roles {
            // First series: identity 0 enrolled from its first three, identity 1 (a stranger's
            // capture) and identity 3 (a capture with no template: not a pass) refused,
            // identity 2 (two captures) not a hand.
            assert_eq!(first_series.refused, [1, 3]);
            assert_eq!(first_series.references[0], [0, 1, 2]);
            // With an extra capture the station enrols identity 1 from captures 4, 5 and 12 (no
            // probe left); identity 3 has no fourth capture and stays refused.
            assert_eq!(after_extra.refused, [3]);
            assert_eq!(after_extra.references[0], [0, 1, 2]);
            assert_eq!(after_extra.probes[0], [3]);
            assert_eq!(after_extra.references[1], [4, 5, 12]);
            assert!(after_extra.probes[1].is_empty());
            assert!(after_extra.references[2].is_empty() && after_extra.references[3].is_empty());
        }
        let captures = [4, 4, 2, 3];
        let enrolment = roles.map(|(first_series, after_extra)| {
            StationEnrolment::new(&captures, &first_series, &after_extra, Trials::default())
        });
        let outcomes = station_outcomes(&enrolment, 1);
        assert_eq!(outcomes.len(), Profile::ALL.len());
        for (outcome, profile) in outcomes.iter().zip(Profile::ALL) {
            assert_eq!(outcome.profile, profile.name());
            assert_eq!(outcome.threshold_q16, profile.threshold(1, 1).q16());
            // Identity 1 (a stranger's capture) and identity 3 (not comparable); identity 0 passes.
            assert_eq!(
                (outcome.refused, outcome.hands),
                (2, 3),
                "{}",
                outcome.profile
            );
            assert!((outcome.rate - 2.0 / 3.0).abs() < 1e-12);
            assert_eq!(
                (
                    outcome.extra_captures,
                    outcome.refused_after_extra_captures,
                    outcome.refused_short_of_captures
                ),
                (STATION_EXTRA_CAPTURES, 1, 1)
            );
        }
    }

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
        let casia = SessionRule::SplitAfter(3);
        assert_eq!(casia.session(&s("x/03.jpg")).as_deref(), Some("1"));
        assert_eq!(casia.session(&s("x/04.jpg")).as_deref(), Some("2"));
        assert_eq!(casia.session(&s("x/a.jpg")), None);
        assert_eq!(
            SessionRule::Prefix.session(&s("x/2-01.png")).as_deref(),
            Some("2")
        );
    }
}
