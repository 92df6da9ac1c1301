//! `palmgate pad …`: presentation attack detection, evaluated as ISO/IEC 30107-3 reports it, and
//! modelled presentations to evaluate it on (docs/pad.md).
//!
//! Presentations on disk (written by `palmgate sensor capture --burst` and `palmgate pad synth`,
//! read by `palmgate pad eval`): a folder holding `NN-<band>-<time>us.png` files is one burst
//! (`<band>` is `ambient`, `nir850`, `nir940`, `visible`, or `single` for a one-light sensor);
//! any other PNG or JPEG file is a one-frame presentation of unknown light (a photo from a
//! palm database, say). Folders are searched recursively.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use image::GrayImage;
use palmgate_matcher::pad::metrics::{DetPoint, Report, Scores};
use palmgate_matcher::pad::model::{Presented, Species, render_burst};
use palmgate_matcher::pad::{self, Band, PadFrame, PadProfile};

/// `palmgate pad` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PadCommand {
    /// Evaluate PAD on bona fide and attack presentations (ISO/IEC 30107-3 figures).
    Eval(EvalArgs),
    /// Write modelled presentation bursts (live synthetic hands or an attack species).
    Synth(SynthArgs),
}

/// Arguments of `palmgate pad eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Bona fide presentations (bursts, or single images such as a palm database).
    #[arg(long, value_name = "DIR")]
    pub bona_fide: PathBuf,
    /// Attack presentations, one sub-folder per species named after it.
    #[arg(long, value_name = "DIR")]
    pub attacks: Option<PathBuf>,
    /// Operating point for BPCER and APCER.
    #[arg(long, default_value = "balanced", value_parser = parse_profile)]
    pub profile: PadProfile,
    /// JSON report to write.
    #[arg(long, value_name = "FILE", default_value = "pad-eval.json")]
    pub json: PathBuf,
    /// Folder for one DET plot per species (`det-<species>.png`).
    #[arg(long, value_name = "DIR")]
    pub plots: Option<PathBuf>,
}

/// Arguments of `palmgate pad synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Folder to write the bursts into (one sub-folder per presentation).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// `live` or an attack species (print-visible, print-nir, screen-replay, mould).
    #[arg(long, value_parser = parse_presented)]
    pub presented: Presented,
    /// Number of presentations (one identity each).
    #[arg(long, default_value_t = 50)]
    pub count: u64,
    /// First identity seed (keep tuning and reporting sets apart with disjoint ranges).
    #[arg(long, default_value_t = 0)]
    pub first_identity: u64,
    /// Times the burst cycles through the four bands.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub rounds: u8,
}

fn parse_profile(text: &str) -> Result<PadProfile, String> {
    text.parse()
        .map_err(|error: pad::PadSettingsError| error.to_string())
}

/// `live` or a species name.
pub fn parse_presented(text: &str) -> Result<Presented, String> {
    if text == "live" {
        return Ok(Presented::Live);
    }
    text.parse::<Species>().map(Presented::Attack)
}

/// Runs a `palmgate pad` subcommand.
pub fn run(command: PadCommand) -> anyhow::Result<ExitCode> {
    match command {
        PadCommand::Eval(args) => eval(&args),
        PadCommand::Synth(args) => synth(&args),
    }
}

/// The frame period of modelled bursts (a 30 fps sensor).
const SYNTH_PERIOD: Duration = Duration::from_micros(33_333);

fn synth(args: &SynthArgs) -> anyhow::Result<ExitCode> {
    let sequence: Vec<Band> = (0..args.rounds).flat_map(|_| Band::ALL).collect();
    let name = match args.presented {
        Presented::Live => "live".to_owned(),
        Presented::Attack(species) => species.name().to_owned(),
    };
    for identity in args.first_identity..args.first_identity + args.count {
        let images = render_burst(identity, 1, args.presented, &sequence, SYNTH_PERIOD);
        let dir = args.out.join(format!("{name}-{identity:06}"));
        let frames: Vec<(Option<Band>, Duration, &GrayImage)> = sequence
            .iter()
            .zip(&images)
            .enumerate()
            .map(|(index, (&band, image))| (Some(band), SYNTH_PERIOD * index as u32, image))
            .collect();
        write_burst(&dir, &frames)?;
    }
    println!(
        "wrote {} {name} presentations to {}",
        args.count,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes one burst as `NN-<band>-<time>us.png` files into `dir` (created).
pub fn write_burst(
    dir: &Path,
    frames: &[(Option<Band>, Duration, &GrayImage)],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (index, (band, time, image)) in frames.iter().enumerate() {
        let band = band.map_or("single", Band::name);
        let path = dir.join(format!("{index:02}-{band}-{}us.png", time.as_micros()));
        image
            .save_with_format(&path, image::ImageFormat::Png)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// One presentation found on disk.
#[derive(Debug)]
struct Found {
    path: PathBuf,
    /// Burst frames (band, time, file), or one file of unknown light.
    frames: Vec<(Option<Band>, Duration, PathBuf)>,
}

/// A burst frame's file name: `NN-<band>-<time>us.png`.
fn burst_frame_name(name: &str) -> Option<(usize, Option<Band>, Duration)> {
    let stem = name.strip_suffix("us.png")?;
    let mut parts = stem.splitn(3, '-');
    let index = parts.next()?.parse().ok()?;
    let band = match parts.next()? {
        "single" => None,
        other => Some(*Band::ALL.iter().find(|band| band.name() == other)?),
    };
    let micros = parts.next()?.parse().ok()?;
    Some((index, band, Duration::from_micros(micros)))
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| matches!(ext.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Every presentation under `dir`, in path order.
fn find_presentations(dir: &Path) -> anyhow::Result<Vec<Found>> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    entries.sort();
    let mut burst: Vec<(usize, Option<Band>, Duration, PathBuf)> = entries
        .iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?;
            burst_frame_name(name).map(|(index, band, time)| (index, band, time, path.clone()))
        })
        .collect();
    let mut found = Vec::new();
    if !burst.is_empty() {
        burst.sort_by_key(|frame| frame.0);
        found.push(Found {
            path: dir.to_path_buf(),
            frames: burst
                .into_iter()
                .map(|(_, band, time, path)| (band, time, path))
                .collect(),
        });
        return Ok(found);
    }
    for path in entries {
        if path.is_dir() {
            found.extend(find_presentations(&path)?);
        } else if is_image(&path) {
            found.push(Found {
                frames: vec![(None, Duration::ZERO, path.clone())],
                path,
            });
        }
    }
    Ok(found)
}

/// Runs of PAD per presentation for its time.
const TIMING_RUNS: usize = 5;

/// Scores of the presentations under `dir`, and PAD's time for each (decoding excluded; the
/// fastest of [`TIMING_RUNS`] runs).
fn score_all(
    dir: &Path,
    bona_fide: bool,
    times: &mut Vec<Duration>,
) -> anyhow::Result<Vec<Option<f32>>> {
    let found = find_presentations(dir)?;
    if found.is_empty() {
        bail!(
            "no presentation (image or burst folder) under {}",
            dir.display()
        );
    }
    let mut scores = Vec::with_capacity(found.len());
    for presentation in found {
        let mut images = Vec::with_capacity(presentation.frames.len());
        for (_, _, path) in &presentation.frames {
            let image = image::open(path)
                .with_context(|| format!("cannot read {}", path.display()))?
                .into_luma8();
            images.push(image);
        }
        let frames: Vec<PadFrame<'_>> = presentation
            .frames
            .iter()
            .zip(&images)
            .map(|((band, time, _), image)| PadFrame {
                band: *band,
                exposed_after: *time,
                image,
            })
            .collect();
        // PAD is deterministic: the fastest of a few runs is its time without the other
        // processes of a busy machine.
        let mut fastest = Duration::MAX;
        let mut report = None;
        for _ in 0..TIMING_RUNS {
            let started = Instant::now();
            report = Some(pad::analyse(&frames, PadProfile::Balanced));
            fastest = fastest.min(started.elapsed());
        }
        times.push(fastest);
        let report = report.context("no PAD run")?;
        match (report.score, report.weakest()) {
            (None, _) => eprintln!("palmgate: no answer for {}", presentation.path.display()),
            (Some(score), Some(weakest))
                if bona_fide && score < PadProfile::Balanced.threshold() =>
            {
                // Which cue refused it: what a tuner (or an integrator with a real set) needs.
                eprintln!(
                    "palmgate: {} refused at balanced: {} = {:.3}",
                    presentation.path.display(),
                    weakest.cue.name(),
                    weakest.value
                );
            }
            _ => {}
        }
        scores.push(report.score);
    }
    Ok(scores)
}

/// The JSON report: the metrics plus PAD's median time.
#[derive(Debug, serde::Serialize)]
struct EvalReport {
    profile: &'static str,
    #[serde(flatten)]
    metrics: Report,
    pad_ms_median: f64,
}

fn eval(args: &EvalArgs) -> anyhow::Result<ExitCode> {
    let mut times = Vec::new();
    let mut scores = Scores {
        bona_fide: score_all(&args.bona_fide, true, &mut times)
            .with_context(|| format!("--bona-fide {}", args.bona_fide.display()))?,
        attacks: BTreeMap::new(),
    };
    if let Some(attacks) = &args.attacks {
        let mut species_dirs: Vec<PathBuf> = std::fs::read_dir(attacks)
            .with_context(|| format!("cannot read --attacks {}", attacks.display()))?
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.is_dir())
            .collect();
        species_dirs.sort();
        if species_dirs.is_empty() {
            bail!(
                "--attacks {}: no species folder (one sub-folder per attack species)",
                attacks.display()
            );
        }
        for dir in species_dirs {
            let species = dir
                .file_name()
                .and_then(|name| name.to_str())
                .context("species folder name is not UTF-8")?
                .to_owned();
            let species_scores = score_all(&dir, false, &mut times)?;
            scores.attacks.insert(species, species_scores);
        }
    }
    times.sort();
    let median = times
        .get(times.len() / 2)
        .map_or(0.0, |time| time.as_secs_f64() * 1e3);
    let report = EvalReport {
        profile: args.profile.name(),
        metrics: scores.report(args.profile.threshold()),
        pad_ms_median: median,
    };
    print_report(&report);
    let json = serde_json::to_string_pretty(&report).context("cannot encode the report")?;
    std::fs::write(&args.json, json + "\n")
        .with_context(|| format!("cannot write {}", args.json.display()))?;
    println!("wrote {}", args.json.display());
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for species in scores.attacks.keys() {
            let path = dir.join(format!("det-{species}.png"));
            plot_det(&scores.det(species), &path)
                .with_context(|| format!("cannot draw {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(report: &EvalReport) {
    let percent =
        |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{:.2} %", v * 100.0));
    let metrics = &report.metrics;
    println!(
        "PAD evaluation (profile {}, threshold {:.2}): {} bona fide presentations",
        report.profile, metrics.threshold, metrics.bona_fide_count
    );
    println!("  BPCER                 {}", percent(metrics.bpcer));
    if let Some(apcer) = &metrics.apcer {
        for (species, value) in apcer {
            let count = metrics.attack_count.get(species).copied().unwrap_or(0);
            println!(
                "  APCER {species:<15} {} ({count} presentations)",
                percent(Some(*value))
            );
        }
    }
    println!("  APCER worst           {}", percent(metrics.apcer_worst));
    println!(
        "  BPCER @ APCER 1 %     {}",
        percent(metrics.bpcer_at_apcer_1e_2)
    );
    println!(
        "  BPCER @ APCER 5 %     {}",
        percent(metrics.bpcer_at_apcer_5e_2)
    );
    println!(
        "  APCER @ BPCER 1 %     {}",
        percent(metrics.apcer_at_bpcer_1e_2)
    );
    println!("  APNRR                 {}", percent(metrics.apnrr));
    println!("  PAD median            {:.3} ms", report.pad_ms_median);
}

/// A DET curve (APCER across, BPCER up) on log axes from 0.1 % to 100 %, with grid lines at
/// 0.1, 1, 10 and 100 % (the workspace builds plotters without a font backend, so the axes carry
/// no text; the values are in the JSON report). Rates of 0 are drawn at 0.1 %.
fn plot_det(points: &[DetPoint], path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;

    let log = |rate: f64| rate.clamp(1e-3, 1.0).log10();
    let root = BitMapBackend::new(path, (520, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .build_cartesian_2d(-3f64..0f64, -3f64..0f64)?;
    let grey = RGBColor(200, 200, 200);
    for at in [-3.0, -2.0, -1.0, 0.0] {
        chart.draw_series(LineSeries::new([(at, -3.0), (at, 0.0)], grey))?;
        chart.draw_series(LineSeries::new([(-3.0, at), (0.0, at)], grey))?;
    }
    chart.draw_series(LineSeries::new(
        points
            .iter()
            .map(|point| (log(point.apcer), log(point.bpcer))),
        RGBColor(200, 30, 30).stroke_width(2),
    ))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_frame_names_round_trip_and_others_are_single_images() {
        assert_eq!(
            burst_frame_name("03-nir940-99999us.png"),
            Some((3, Some(Band::Nir940), Duration::from_micros(99_999)))
        );
        assert_eq!(
            burst_frame_name("00-single-0us.png"),
            Some((0, None, Duration::ZERO))
        );
        for other in ["01.png", "1-02.png", "00-uv-3us.png", "00-nir850-xus.png"] {
            assert_eq!(burst_frame_name(other), None, "{other}");
        }
    }
}
