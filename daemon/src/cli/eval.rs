//! `palmgate eval`: accuracy and speed of the matcher over folders of `<identity>/<sample>` images.
//!
//! One set (`--data DIR --input KIND`) or a suite (`--set KIND:DIR` repeated, `--synthetic N`):
//! every set's all-pairs figures, its held-out-fold figures with 95 % bootstrap intervals, the
//! enrolment protocol with one and three templates, and the profiles calibrated on the pooled
//! sets (see `docs/matcher.md`).

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;
use palmgate_matcher::Profile;
use palmgate_matcher::eval::protocol::{FiguresCi, ProfileOutcome};
use palmgate_matcher::eval::{
    self, Evaluation, Scores, SessionRule, SetEvaluation, SetSource, SetSpec, SuiteReport,
};
use palmgate_matcher::extract::{InputKind, PROBE_POSES, probe_poses};

use super::template::{InputArg, load_extractor};

/// Arguments of `palmgate eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Data folder: `DIR/<identity>/<sample>.<png|jpg|bmp>` (one set; or use `--set`).
    #[arg(long, value_name = "DIR", required_unless_present = "set")]
    pub data: Option<PathBuf>,
    /// What the images of `--data` show.
    #[arg(long, value_enum, default_value_t = InputArg::Hand)]
    pub input: InputArg,
    /// A set of the suite: `KIND:DIR` or `KIND,sessions=N:DIR` (KIND `hand` or `roi`; samples
    /// numbered `1..=N` are the first session, the others the second). Repeat for every set.
    #[arg(long, value_name = "KIND[,sessions=N]:DIR", conflicts_with = "data")]
    pub set: Vec<SetArg>,
    /// Add N synthetic whole-hand identities (4 captures each, made in memory) to the suite and
    /// to the calibration pool.
    #[arg(long, value_name = "N")]
    pub synthetic: Option<u64>,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the genuine/impostor distance distributions and the DET curve with every profile's
    /// threshold (with several sets: one file per set, `FILE-<set>.png`).
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// A replacement ONNX feature model (same input and output as the built-in one).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Extraction threads (default: the available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Cut each probe at no more than this many of the gate's poses for its kind of input (a
    /// whole hand: the ROI as found, then turned ∓5°; a sensor's ROI: also slid left and right;
    /// 1 is the matcher before probe poses). The profile rows use the thresholds for the poses cut.
    #[arg(long, value_name = "N", default_value_t = PROBE_POSES.len(),
          value_parser = parse_probe_poses)]
    pub probe_poses: usize,
    /// Two identities of a set that are one hand filed under two names (a labelling error of
    /// the data): `SET:ID=ID`, SET the set's folder name. Their comparisons are left out of the
    /// impostor trials and counted. Repeat for every pair (`cargo xtask eval` passes the pairs
    /// docs/matcher.md lists, with the evidence).
    #[arg(long, value_name = "SET:ID=ID")]
    pub same_hand: Vec<SameHandArg>,
    /// List the images that gave no template, with the reason.
    #[arg(long)]
    pub verbose: bool,
}

/// One `--same-hand SET:ID=ID` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameHandArg {
    set: String,
    identities: [String; 2],
}

impl std::str::FromStr for SameHandArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts = s.split_once(':').and_then(|(set, pair)| {
            let (a, b) = pair.split_once('=')?;
            Some((set, a, b))
        });
        match parts {
            Some((set, a, b)) if !set.is_empty() && !a.is_empty() && !b.is_empty() && a != b => {
                Ok(SameHandArg {
                    set: set.to_owned(),
                    identities: [a.to_owned(), b.to_owned()],
                })
            }
            _ => Err(format!(
                "`{s}`: expected SET:ID=ID (a set's folder name and two of its identities)"
            )),
        }
    }
}

/// Gives each `--same-hand` pair to the set it names; a name no set has is an error (a pair that
/// silently applied to nothing would leave its trials among the impostors).
fn attach_same_hands(specs: &mut [SetSpec], pairs: &[SameHandArg]) -> anyhow::Result<()> {
    for pair in pairs {
        let spec = specs
            .iter_mut()
            .find(|spec| spec.name == pair.set)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--same-hand {}:{}={}: no set is named {:?}",
                    pair.set,
                    pair.identities[0],
                    pair.identities[1],
                    pair.set
                )
            })?;
        spec.same_hands.push(pair.identities.clone());
    }
    Ok(())
}

/// `--probe-poses`: 1 to the number of the gate's poses.
fn parse_probe_poses(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=PROBE_POSES.len()).contains(&n) => Ok(n),
        _ => Err(format!("expected 1 to {}", PROBE_POSES.len())),
    }
}

/// One `--set` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetArg(SetSpec);

impl std::str::FromStr for SetArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (head, dir) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}`: expected KIND:DIR or KIND,sessions=N:DIR"))?;
        let mut parts = head.split(',');
        let input = match parts.next() {
            Some("hand") => InputKind::Hand,
            Some("roi") => InputKind::Roi,
            other => return Err(format!("`{s}`: unknown kind {other:?} (hand or roi)")),
        };
        let mut sessions = SessionRule::Prefix;
        for option in parts {
            let n = option
                .strip_prefix("sessions=")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("`{s}`: unknown option `{option}` (sessions=N)"))?;
            sessions = SessionRule::SplitAfter(n);
        }
        if dir.is_empty() {
            return Err(format!("`{s}`: no folder"));
        }
        let dir = PathBuf::from(dir);
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("set")
            .to_owned();
        Ok(SetArg(SetSpec {
            name,
            input,
            sessions,
            source: SetSource::Folder(dir),
            same_hands: Vec::new(),
        }))
    }
}

/// Runs `palmgate eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let extractor = load_extractor(args.model.as_deref())?;
    let mut specs: Vec<SetSpec> = args.set.iter().map(|s| s.0.clone()).collect();
    if let Some(dir) = &args.data {
        specs.push(SetSpec {
            name: dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("data")
                .to_owned(),
            input: args.input.into(),
            sessions: SessionRule::Prefix,
            source: SetSource::Folder(dir.clone()),
            same_hands: Vec::new(),
        });
    }
    if let Some(identities) = args.synthetic {
        specs.push(SetSpec {
            name: "synthetic-hand".into(),
            input: InputKind::Hand,
            sessions: SessionRule::Prefix,
            source: SetSource::Synthetic {
                // Identities the unit tests do not use.
                first: 10_000,
                identities,
                // Three to enrol, one probe.
                samples: 4,
            },
            same_hands: Vec::new(),
        });
    }
    attach_same_hands(&mut specs, &args.same_hand)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = Mutex::new(None::<(String, indicatif::ProgressBar)>);
    let show = std::io::stderr().is_terminal();
    let progress = |stage: &str, done: usize, total: usize| {
        if !show {
            return;
        }
        let Ok(mut slot) = bar.lock() else { return };
        if slot.as_ref().is_none_or(|(current, _)| current != stage) {
            if let Some((_, old)) = slot.take() {
                old.finish();
            }
            let new = indicatif::ProgressBar::new(total as u64);
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{msg:>8} [{bar:40}] {pos}/{len} ({eta})")
            {
                new.set_style(style);
            }
            new.set_message(stage.to_owned());
            *slot = Some((stage.to_owned(), new));
        }
        if let Some((_, current)) = slot.as_ref() {
            current.set_position(done as u64);
        }
    };
    let finish_bar = || {
        if let Ok(mut slot) = bar.lock()
            && let Some((_, old)) = slot.take()
        {
            old.finish_and_clear();
        }
    };
    let on_set = |spec: &SetSpec, set: &SetEvaluation| {
        finish_bar();
        let report = &set.evaluation.report;
        eprintln!(
            "{}: {} images, {} genuine / {} impostor pairs",
            spec.name, report.images, report.genuine, report.impostor
        );
        if report.impostor_left_out > 0 {
            eprintln!(
                "{}: {} impostor pairs left out (one hand filed under two names, {} pairs of names)",
                spec.name,
                report.impostor_left_out,
                spec.same_hands.len()
            );
        }
    };
    let (suite, evaluations) = eval::evaluate_suite(
        &specs,
        &extractor,
        args.probe_poses,
        threads,
        &progress,
        &on_set,
    )?;
    finish_bar();

    let single = specs.len() == 1;
    if single && let (Some(set), Some(evaluation)) = (suite.sets.first(), evaluations.first()) {
        print_report(&evaluation.evaluation, args.verbose)?;
        print_set_details(set);
    }
    print_tables(&suite);
    if !single {
        for (spec, evaluation) in specs.iter().zip(&evaluations) {
            print_failures(&spec.name, &evaluation.evaluation, args.verbose);
        }
    }
    if let Some(path) = &args.json {
        let json = match suite.sets.first() {
            Some(set) if single => serde_json::to_string_pretty(set)?,
            _ => serde_json::to_string_pretty(&suite)?,
        };
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        for (spec, evaluation) in specs.iter().zip(&evaluations) {
            let file = if single {
                path.clone()
            } else {
                let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("eval");
                path.with_file_name(format!("{stem}-{}.png", spec.name))
            };
            plot(
                &spec.name,
                &evaluation.evaluation,
                args.probe_poses.min(probe_poses(spec.input).len()),
                &file,
            )
            .with_context(|| format!("drawing {}", file.display()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(v: f64) -> String {
    format!("{:.3}", v * 100.0)
}

fn with_ci(value: f64, ci: [f64; 2]) -> String {
    format!("{} [{}, {}]", pct(value), pct(ci[0]), pct(ci[1]))
}

fn eer_cell(f: &FiguresCi) -> String {
    with_ci(f.figures.eer, f.eer_ci95)
}

fn fnmr3_cell(f: &FiguresCi) -> String {
    with_ci(f.figures.fnmr_at_fmr[1], f.fnmr_at_fmr_ci95[1])
}

/// The suite's tables (percentages; 95 % intervals in brackets).
fn print_tables(suite: &SuiteReport) {
    println!();
    println!(
        "All identities (threshold-free figures), all pairs and enrolment; rates in %, 95 % bootstrap intervals over identities"
    );
    println!(
        "| set | input | ids × images | FTA | genuine / impostor | EER | FNMR @ FMR 1e-3 | EER cross-session | EER, 1 template enrolled | EER, 3 templates enrolled | FNMR @ 1e-3, 3 templates | EER 3 templates, cross-session | extract ms (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for set in &suite.sets {
        let r = &set.report;
        println!(
            "| {} | {} | {} × {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {:.2} |",
            set.name,
            match set.input {
                InputKind::Hand => "hand",
                _ => "roi",
            },
            r.identities,
            r.images,
            pct(r.fta),
            set.all_pairs.genuine,
            set.all_pairs.impostor,
            eer_cell(&set.all_pairs),
            fnmr3_cell(&set.all_pairs),
            set.all_pairs_cross_session
                .as_ref()
                .map_or_else(|| "–".to_owned(), eer_cell),
            eer_cell(&set.enrolment_1),
            eer_cell(&set.enrolment_3),
            fnmr3_cell(&set.enrolment_3),
            set.enrolment_3_cross_session
                .as_ref()
                .map_or_else(|| "–".to_owned(), eer_cell),
            r.extract_ms_median,
        );
    }
    println!();
    println!(
        "Profiles: thresholds calibrated on the other {} identity folds of every set (pooled), rates on the held-out fold (FMR / FNMR in %)",
        eval::FOLDS - 1
    );
    let header: Vec<String> = Profile::ALL
        .iter()
        .flat_map(|p| [1, 3].map(|n| format!("{} ({:.0e}), {n} tpl", p.name(), p.target_fmr())))
        .collect();
    println!("| set | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    // "–": no tuning fold had enough impostors to calibrate the target.
    let cell = |o: &ProfileOutcome| {
        if o.impostors == 0 {
            "–".to_owned()
        } else {
            format!("{} / {}", pct(o.fmr), pct(o.fnmr))
        }
    };
    for set in &suite.sets {
        let cells: Vec<String> = set
            .profiles_1
            .iter()
            .zip(&set.profiles_3)
            .flat_map(|(one, three)| [cell(one), cell(three)])
            .collect();
        println!("| {} | {} |", set.name, cells.join(" | "));
    }
    println!();
    println!("Thresholds calibrated on all folds of all sets (what `Profile` should ship):");
    for c in &suite.calibrated {
        println!(
            "  {:<12} {} template(s): {}",
            c.profile,
            c.enrolled,
            c.q16.map_or_else(
                || "no set large enough".to_owned(),
                |q| format!("{q} (Q16) = {:.4}", f64::from(q) / 65536.0)
            ) + &binding(c)
        );
    }
    println!();
    println!("Shipped `Profile` thresholds on every trial of each set (FMR / FNMR in %):");
    for set in &suite.sets {
        let cells: Vec<String> = set
            .shipped_profiles
            .iter()
            .map(|o| format!("{}: {}", o.profile, cell(o)))
            .collect();
        println!("  {}: {}", set.name, cells.join("; "));
    }
    println!();
    println!(
        "Enrolment station: hands whose first three captures do not all match each other (each later capture at its kind's poses against the earlier as found, one-template threshold for that many poses), and hands with no three that do among the extra captures `palmgate enrol --profile P` asks for (as many as the set holds):"
    );
    for set in &suite.sets {
        println!("  {}: {}", set.name, station_cells(&set.enrolment_station));
    }
    println!();
    println!(
        "Profiles with 3 templates enrolled as the station chooses them (the same held-out thresholds; probes: the captures after the last one the station took; FMR / FNMR in %, refused probes):"
    );
    for set in &suite.sets {
        let cells: Vec<String> = set
            .profiles_3_station
            .iter()
            .map(|o| {
                format!(
                    "{}: {} ({} of {})",
                    o.profile,
                    cell(o),
                    o.false_non_matches,
                    o.genuine
                )
            })
            .collect();
        println!("  {}: {}", set.name, cells.join("; "));
    }
    println!();
    println!(
        "Threshold-free figures with 3 templates enrolled as the station chooses them under `balanced` (beside the first three captures'; rates in %, 95 % bootstrap intervals):"
    );
    for set in &suite.sets {
        println!(
            "  {}: {}",
            set.name,
            station_figures(&set.enrolment_3, set.enrolment_3_station.as_ref())
        );
    }
}

/// `EER 1.526 [0.621, 2.411], FNMR @ 1e-3 … on 328 genuine / … impostor trials (first three:
/// EER …, FNMR @ 1e-3 …)`, or a dash when the station's enrolment left no trials.
fn station_figures(first_three: &FiguresCi, station: Option<&FiguresCi>) -> String {
    let first = format!(
        "first three: EER {}, FNMR @ 1e-3 {}",
        eer_cell(first_three),
        fnmr3_cell(first_three)
    );
    match station {
        None => format!("– (no genuine or no impostor trial; {first})"),
        Some(f) => format!(
            "EER {}, FNMR @ 1e-3 {} on {} genuine / {} impostor trials ({first})",
            eer_cell(f),
            fnmr3_cell(f),
            f.genuine,
            f.impostor
        ),
    }
}

/// `convenience (0.4028) 1 of 130 (0.769 %), 0 after 2 extra captures; …`, or a dash when no hand has three captures.
fn station_cells(outcomes: &[eval::StationOutcome]) -> String {
    if outcomes.iter().all(|o| o.hands == 0) {
        return "– (no hand with three usable captures)".to_owned();
    }
    outcomes
        .iter()
        .map(|o| {
            let short = if o.refused_short_of_captures > 0 {
                format!(
                    " ({} short of captures in the set)",
                    o.refused_short_of_captures
                )
            } else {
                String::new()
            };
            format!(
                "{} ({:.4}) {} of {} ({:.3} %), {} after {} extra captures{short}",
                o.profile,
                f64::from(o.threshold_q16) / 65536.0,
                o.refused,
                o.hands,
                o.rate * 100.0,
                o.refused_after_extra_captures,
                o.extra_captures
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `, bound by SET (N impostor trials, at most M allowed at or below)`: which set's tail decided a
/// calibrated threshold, and on how few trials.
fn binding(c: &eval::CalibratedThreshold) -> String {
    match (&c.bound_by, c.bound_by_impostors) {
        (Some(set), Some(impostors)) => format!(
            ", bound by {set} ({impostors} impostor trials, at most {} allowed at or below)",
            (c.target_fmr * impostors as f64).floor()
        ),
        _ => String::new(),
    }
}

fn print_set_details(set: &eval::SetReport) {
    println!(
        "all pairs with 95 % intervals: eer {} %, fnmr_at_fmr_1e-3 {} %",
        eer_cell(&set.all_pairs),
        fnmr3_cell(&set.all_pairs)
    );
    if let Some(same) = &set.all_pairs_same_session {
        println!("  same-session genuine only: eer {} %", eer_cell(same));
    }
}

fn print_failures(name: &str, evaluation: &Evaluation, verbose: bool) {
    if evaluation.failures.is_empty() {
        return;
    }
    println!(
        "{name}: {} image(s) gave no template",
        evaluation.failures.len()
    );
    if verbose {
        for (path, reason) in &evaluation.failures {
            println!("  {}: {reason}", path.display());
        }
    }
}

fn print_report(evaluation: &Evaluation, verbose: bool) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&evaluation.report)?);
    let scores = &evaluation.scores;
    let summary = |name: &str, values: &[u32]| {
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| f64::from(v) / 65536.0).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) / 65536.0 - mean).powi(2))
            .sum::<f64>()
            / n;
        println!("{name:>9} distance: mean {mean:.4}, sd {:.4}", var.sqrt());
    };
    summary("genuine", &scores.genuine);
    summary("impostor", &scores.impostor);
    if !evaluation.cross_session_genuine.is_empty() {
        let cross = Scores {
            genuine: evaluation.cross_session_genuine.clone(),
            impostor: scores.impostor.clone(),
        };
        println!(
            "cross-session genuine pairs only ({}): eer {:.5}, fnmr_at_fmr_1e-3 {:.5}",
            cross.genuine.len(),
            cross.eer(),
            cross.fnmr_at_fmr(1e-3)
        );
        let same: Vec<u32> = {
            let mut rest = scores.genuine.clone();
            for d in &evaluation.cross_session_genuine {
                if let Some(at) = rest.iter().position(|x| x == d) {
                    rest.remove(at);
                }
            }
            rest
        };
        let same = Scores {
            genuine: same,
            impostor: scores.impostor.clone(),
        };
        println!(
            " same-session genuine pairs only ({}): eer {:.5}, fnmr_at_fmr_1e-3 {:.5}",
            same.genuine.len(),
            same.eer(),
            same.fnmr_at_fmr(1e-3)
        );
    }
    let default = palmgate_matcher::Threshold::DEFAULT.q16();
    println!(
        "at the default threshold {:.4}: FMR {:.5}, FNMR {:.5}",
        f64::from(default) / 65536.0,
        scores.fmr(default),
        scores.fnmr(default)
    );
    if !evaluation.failures.is_empty() {
        println!("{} image(s) gave no template", evaluation.failures.len());
        if verbose {
            for (path, reason) in &evaluation.failures {
                println!("  {}: {reason}", path.display());
            }
        }
    }
    Ok(())
}

/// Where the plot labels' font is looked for (`PALMGATE_PLOT_FONT` first): plotters renders text
/// with `ab_glyph` from a TrueType file; the workspace ships none (DejaVu Sans is in Debian's
/// `fonts-dejavu-core`).
const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers the label font with plotters once (its registry keeps `'static` bytes).
fn register_font() -> anyhow::Result<()> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let candidates: Vec<PathBuf> = std::env::var_os("PALMGATE_PLOT_FONT")
                .map(PathBuf::from)
                .into_iter()
                .chain(FONT_PATHS.iter().map(PathBuf::from))
                .collect();
            let (path, bytes) = candidates
                .iter()
                .find_map(|p| std::fs::read(p).ok().map(|b| (p, b)))
                .ok_or_else(|| {
                    format!(
                        "no TrueType font for the plot labels: install fonts-dejavu-core or set PALMGATE_PLOT_FONT (looked at {})",
                        FONT_PATHS.join(", ")
                    )
                })?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
                .map_err(|_| format!("{} is not a usable TrueType font", path.display()))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Draws the genuine/impostor distance distributions (left) and the DET curve (right), with the
/// threshold at FMR 1e-3 of this set and every profile's (one enrolled template) threshold.
fn plot(
    name: &str,
    evaluation: &Evaluation,
    probe_poses: usize,
    path: &Path,
) -> anyhow::Result<()> {
    use plotters::prelude::*;

    register_font()?;
    const GREEN: RGBColor = RGBColor(0, 140, 60);
    const RED: RGBColor = RGBColor(200, 30, 30);
    const PROFILE_COLOURS: [RGBColor; 3] = [
        RGBColor(230, 150, 0),
        RGBColor(120, 40, 160),
        RGBColor(0, 0, 0),
    ];
    let scores = &evaluation.scores;
    let report = &evaluation.report;
    let root = BitMapBackend::new(path, (1300, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(650);

    // Distributions: share of comparisons per 0.005 bin of normalised distance.
    let bins = 120usize;
    let histogram = |values: &[u32]| -> Vec<(f64, f64)> {
        let mut counts = vec![0usize; bins];
        for &v in values {
            let d = f64::from(v) / 65536.0;
            let bin = ((d / 0.6) * bins as f64) as usize;
            counts[bin.min(bins - 1)] += 1;
        }
        let n = values.len().max(1) as f64;
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| ((i as f64 + 0.5) * 0.6 / bins as f64, c as f64 / n))
            .collect()
    };
    let genuine = histogram(&scores.genuine);
    let impostor = histogram(&scores.impostor);
    let top = genuine
        .iter()
        .chain(impostor.iter())
        .map(|p| p.1)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!(
                "{name}: distances ({} genuine, {} impostor)",
                report.genuine, report.impostor
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..0.6, 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("normalised distance")
        .y_desc("share of comparisons per 0.005")
        .label_style(("sans-serif", 13))
        .draw()?;
    chart
        .draw_series(LineSeries::new(genuine, GREEN.stroke_width(2)))?
        .label("genuine")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], GREEN.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(impostor, RED.stroke_width(2)))?
        .label("impostor")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED.stroke_width(2)));
    let threshold = report.threshold_at_fmr_1e_3;
    chart
        .draw_series(LineSeries::new(
            [(threshold, 0.0), (threshold, top)],
            BLUE.stroke_width(1),
        ))?
        .label(format!("this set at FMR 1e-3: {threshold:.4}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(1)));
    for (profile, colour) in Profile::ALL.into_iter().zip(PROFILE_COLOURS) {
        let t = f64::from(profile.threshold(1, probe_poses).q16()) / 65536.0;
        chart
            .draw_series(LineSeries::new(
                [(t, 0.0), (t, top)],
                colour.stroke_width(2),
            ))?
            .label(format!("{profile} {t:.4}"))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;

    // DET: log10 FNMR against log10 FMR; zero rates sit on the lower edges.
    let (lo_x, lo_y) = (-5.0f64, -4.0f64);
    let mut det = ChartBuilder::on(&right)
        .caption(
            format!(
                "DET: EER {:.3} %, FNMR {:.3} % at FMR 1e-3, FTA {:.2} %",
                report.eer * 100.0,
                report.fnmr_at_fmr_1e_3 * 100.0,
                report.fta * 100.0
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(lo_x..0f64, lo_y..0f64)?;
    det.configure_mesh()
        .x_desc("FMR")
        .y_desc("FNMR")
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&|v| format!("1e{v:.0}"))
        .y_label_formatter(&|v| format!("1e{v:.0}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    let log = |v: f64, floor: f64| if v > 0.0 { v.log10().max(floor) } else { floor };
    let curve: Vec<(f64, f64)> = scores
        .det_curve()
        .into_iter()
        .map(|(fmr, fnmr)| (log(fmr, lo_x), log(fnmr, lo_y)))
        .collect();
    det.draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))?
        .label("all pairs")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    for (profile, colour) in Profile::ALL.into_iter().zip(PROFILE_COLOURS) {
        let t = profile.threshold(1, probe_poses).q16();
        let point = (log(scores.fmr(t), lo_x), log(scores.fnmr(t), lo_y));
        det.draw_series([Circle::new(point, 6, colour.filled())])?
            .label(format!(
                "{profile}: FMR {:.4} %, FNMR {:.3} %",
                scores.fmr(t) * 100.0,
                scores.fnmr(t) * 100.0
            ))
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, colour.filled()));
        let target = profile.target_fmr().log10();
        det.draw_series(DashedLineSeries::new(
            [(target, lo_y), (target, 0.0)],
            4,
            4,
            colour.stroke_width(1),
        ))?;
    }
    det.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_arguments_parse_kind_sessions_and_folder() {
        let SetArg(spec) = "hand,sessions=3:/d/casia940-dev".parse().expect("valid");
        assert_eq!(spec.name, "casia940-dev");
        assert_eq!(spec.input, InputKind::Hand);
        assert_eq!(spec.sessions, SessionRule::SplitAfter(3));
        assert_eq!(
            spec.source,
            SetSource::Folder(PathBuf::from("/d/casia940-dev"))
        );
        let SetArg(spec) = "roi:/d/tongji-roi".parse().expect("valid");
        assert_eq!(
            (spec.input, spec.sessions),
            (InputKind::Roi, SessionRule::Prefix)
        );
        for bad in [
            "/d/x",
            "face:/d/x",
            "roi,sessions=x:/d/x",
            "roi:",
            "roi,foo=1:/d",
        ] {
            assert!(bad.parse::<SetArg>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_calibrated_threshold_says_which_set_bound_it_and_on_how_many_trials() {
        let calibrated =
            |bound_by: Option<&str>, impostors: Option<u64>| eval::CalibratedThreshold {
                profile: "balanced".to_owned(),
                enrolled: 3,
                target_fmr: 1e-3,
                q16: Some(24_733),
                bound_by: bound_by.map(str::to_owned),
                bound_by_impostors: impostors,
            };
        assert_eq!(
            binding(&calibrated(Some("coep-dev"), Some(23_680))),
            ", bound by coep-dev (23680 impostor trials, at most 23 allowed at or below)"
        );
        assert_eq!(binding(&calibrated(None, None)), "");
    }

    #[test]
    fn the_station_line_gives_each_profile_threshold_and_refusals_or_a_dash() {
        let outcome = |profile: &str, threshold_q16: u32, hands: usize, refused: usize| {
            eval::StationOutcome {
                profile: profile.to_owned(),
                threshold_q16,
                hands,
                refused,
                rate: if hands == 0 {
                    0.0
                } else {
                    refused as f64 / hands as f64
                },
                extra_captures: 2,
                refused_after_extra_captures: refused / 10,
                refused_short_of_captures: refused / 20,
            }
        };
        assert_eq!(
            station_cells(&[
                outcome("convenience", 26_400, 130, 1),
                outcome("balanced", 25_400, 130, 24)
            ]),
            "convenience (0.4028) 1 of 130 (0.769 %), 0 after 2 extra captures; \
             balanced (0.3876) 24 of 130 (18.462 %), 2 after 2 extra captures \
             (1 short of captures in the set)"
        );
        assert_eq!(
            station_cells(&[outcome("balanced", 25_400, 0, 0)]),
            "– (no hand with three usable captures)"
        );
    }

    #[test]
    fn the_station_figures_stand_beside_the_first_three_or_a_dash() {
        let figures = |eer: f64, genuine: usize| FiguresCi {
            genuine,
            impostor: 96_000,
            figures: eval::protocol::Figures {
                eer,
                fnmr_at_fmr: [0.01, 0.03, 0.05],
            },
            eer_ci95: [eer / 2.0, eer * 2.0],
            fnmr_at_fmr_ci95: [[0.0, 0.02], [0.015, 0.05], [0.02, 0.08]],
        };
        let first = figures(0.0112, 358);
        assert_eq!(
            station_figures(&first, Some(&figures(0.01526, 328))),
            "EER 1.526 [0.763, 3.052], FNMR @ 1e-3 3.000 [1.500, 5.000] on 328 genuine / 96000 \
             impostor trials (first three: EER 1.120 [0.560, 2.240], FNMR @ 1e-3 3.000 [1.500, 5.000])"
        );
        assert_eq!(
            station_figures(&first, None),
            "– (no genuine or no impostor trial; first three: EER 1.120 [0.560, 2.240], \
             FNMR @ 1e-3 3.000 [1.500, 5.000])"
        );
    }

    #[test]
    fn same_hand_pairs_go_to_the_set_they_name_and_an_unknown_set_is_an_error() {
        let mut specs = vec![
            "roi:/d/iitd-roi-dev".parse::<SetArg>().expect("valid").0,
            "hand:/d/coep-dev".parse::<SetArg>().expect("valid").0,
        ];
        let pairs: Vec<SameHandArg> = ["coep-dev:xhand1=xhand2", "coep-dev:a=b"]
            .iter()
            .map(|s| s.parse().expect("valid"))
            .collect();
        attach_same_hands(&mut specs, &pairs).expect("both sets exist");
        assert!(specs[0].same_hands.is_empty());
        assert_eq!(
            specs[1].same_hands,
            [["xhand1", "xhand2"], ["a", "b"]].map(|p| p.map(str::to_owned))
        );
        let unknown: SameHandArg = "tongji:a=b".parse().expect("valid");
        let error = attach_same_hands(&mut specs, &[unknown]).expect_err("no such set");
        assert!(
            error.to_string().contains("no set is named \"tongji\""),
            "{error}"
        );
        for bad in [
            "coep-dev",
            "coep-dev:a",
            ":a=b",
            "coep-dev:=b",
            "coep-dev:a=",
            "s:a=a",
        ] {
            assert!(bad.parse::<SameHandArg>().is_err(), "{bad}");
        }
    }
}
