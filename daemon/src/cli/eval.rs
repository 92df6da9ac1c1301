//! `palmgate eval`: accuracy and speed of the matcher over a folder of `<identity>/<sample>` images.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context as _;
use palmgate_matcher::eval::{self, Evaluation, Scores};

use super::template::{InputArg, load_extractor};

/// Arguments of `palmgate eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Data folder: `DIR/<identity>/<sample>.<png|jpg|bmp>`.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// What the images show.
    #[arg(long, value_enum, default_value_t = InputArg::Hand)]
    pub input: InputArg,
    /// Also write the figures as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Draw the genuine/impostor distance distributions and the DET curve.
    #[arg(long, value_name = "FILE.png")]
    pub plot: Option<PathBuf>,
    /// A replacement ONNX feature model (same input and output as the built-in one).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
    /// Extraction threads (default: the available cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// List the images that gave no template, with the reason.
    #[arg(long)]
    pub verbose: bool,
}

/// Runs `palmgate eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let extractor = load_extractor(args.model.as_deref())?;
    let samples = eval::scan(&args.data)?;
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
    let evaluation = eval::evaluate(&samples, &extractor, args.input.into(), threads, &progress)?;
    if let Ok(mut slot) = bar.lock()
        && let Some((_, old)) = slot.take()
    {
        old.finish_and_clear();
    }

    print_report(&evaluation, args.verbose)?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&evaluation.report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot(&evaluation, path).with_context(|| format!("drawing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
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

/// Draws the genuine/impostor distance distributions (left) and the DET curve (right).
fn plot(evaluation: &Evaluation, path: &Path) -> anyhow::Result<()> {
    use plotters::prelude::*;

    const GREEN: RGBColor = RGBColor(0, 140, 60);
    const RED: RGBColor = RGBColor(200, 30, 30);
    const GREY: RGBColor = RGBColor(200, 200, 200);
    let scores = &evaluation.scores;
    let root = BitMapBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);

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
        .margin_left(50)
        .margin_right(20)
        .margin_top(50)
        .margin_bottom(50)
        .build_cartesian_2d(0f64..0.6, 0f64..top)?;
    for i in 0..=6 {
        let x = f64::from(i) * 0.1;
        chart.draw_series(LineSeries::new([(x, 0.0), (x, top)], &GREY))?;
    }
    chart.draw_series(LineSeries::new(
        [(0.0, 0.0), (0.6, 0.0), (0.6, top), (0.0, top), (0.0, 0.0)],
        &BLACK,
    ))?;
    chart.draw_series(LineSeries::new(genuine, GREEN.stroke_width(2)))?;
    chart.draw_series(LineSeries::new(impostor, RED.stroke_width(2)))?;
    let threshold = evaluation.report.threshold_at_fmr_1e_3;
    chart.draw_series(LineSeries::new(
        [(threshold, 0.0), (threshold, top)],
        BLUE.stroke_width(2),
    ))?;
    for i in 0..=6 {
        let (x, y) = chart.backend_coord(&(f64::from(i) * 0.1, 0.0));
        draw_text(
            &root,
            x - 8,
            y + 8,
            &format!("{:.1}", f64::from(i) * 0.1),
            &BLACK,
        )?;
    }
    let (x0, y0) = chart.backend_coord(&(0.0, top));
    draw_text(&root, x0, y0 - 36, "GENUINE", &GREEN)?;
    draw_text(&root, x0 + 100, y0 - 36, "IMPOSTOR", &RED)?;
    draw_text(
        &root,
        x0 + 212,
        y0 - 36,
        &format!("THRESHOLD AT FMR 1E-3 {threshold:.4}"),
        &BLUE,
    )?;
    draw_text(
        &root,
        x0,
        y0 - 18,
        "SHARE OF COMPARISONS PER 0.005 OF DISTANCE",
        &BLACK,
    )?;
    let (xb, yb) = chart.backend_coord(&(0.3, 0.0));
    draw_text(&root, xb - 70, yb + 26, "NORMALISED DISTANCE", &BLACK)?;

    // DET: log10 FNMR against log10 FMR; zero rates sit on the lower edges.
    let (lo_x, lo_y) = (-5.0f64, -4.0f64);
    let mut det = ChartBuilder::on(&right)
        .margin_left(100)
        .margin_right(30)
        .margin_top(50)
        .margin_bottom(50)
        .build_cartesian_2d(lo_x..0f64, lo_y..0f64)?;
    for decade in -5..=0 {
        let x = f64::from(decade);
        det.draw_series(LineSeries::new([(x, lo_y), (x, 0.0)], &GREY))?;
        let (px, py) = det.backend_coord(&(x, lo_y));
        draw_text(&root, px - 12, py + 8, &format!("1E{decade}"), &BLACK)?;
    }
    for decade in -4..=0 {
        let y = f64::from(decade);
        det.draw_series(LineSeries::new([(lo_x, y), (0.0, y)], &GREY))?;
        let (px, py) = det.backend_coord(&(lo_x, y));
        draw_text(&root, px - 52, py - 7, &format!("1E{decade}"), &BLACK)?;
    }
    det.draw_series(LineSeries::new(
        [
            (lo_x, lo_y),
            (0.0, lo_y),
            (0.0, 0.0),
            (lo_x, 0.0),
            (lo_x, lo_y),
        ],
        &BLACK,
    ))?;
    let log = |v: f64, floor: f64| if v > 0.0 { v.log10().max(floor) } else { floor };
    let curve: Vec<(f64, f64)> = scores
        .det_curve()
        .into_iter()
        .map(|(fmr, fnmr)| (log(fmr, lo_x), log(fnmr, lo_y)))
        .collect();
    det.draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))?;
    det.draw_series(LineSeries::new([(-3.0, lo_y), (-3.0, 0.0)], &RED))?;
    let (x0, y0) = det.backend_coord(&(lo_x, 0.0));
    let report = &evaluation.report;
    draw_text(
        &root,
        x0,
        y0 - 36,
        &format!(
            "DET  EER {:.3}%  FNMR AT FMR 1E-3 {:.3}%",
            report.eer * 100.0,
            report.fnmr_at_fmr_1e_3 * 100.0
        ),
        &BLACK,
    )?;
    draw_text(
        &root,
        x0,
        y0 - 18,
        &format!(
            "{} GENUINE, {} IMPOSTOR, FTA {:.2}%",
            report.genuine,
            report.impostor,
            report.fta * 100.0
        ),
        &BLACK,
    )?;
    let (xb, yb) = det.backend_coord(&(-2.5, lo_y));
    draw_text(&root, xb - 20, yb + 26, "FMR", &BLACK)?;
    let (xl, yl) = det.backend_coord(&(lo_x, -2.0));
    draw_text(&root, xl - 100, yl - 30, "FNMR", &BLACK)?;
    root.present()?;
    Ok(())
}

/// Draws text with a built-in 5×7 pixel font at twice its size: plotters' own text needs a font
/// backend, which the workspace does not build.
fn draw_text<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    y: i32,
    text: &str,
    color: &plotters::style::RGBColor,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    const SCALE: i32 = 2;
    let mut pen = x;
    for ch in text.chars() {
        let glyph = FONT
            .iter()
            .find(|(c, _)| *c == ch.to_ascii_uppercase())
            .map(|(_, rows)| rows);
        if let Some(rows) = glyph {
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0b10000 >> col) != 0 {
                        for dy in 0..SCALE {
                            for dx in 0..SCALE {
                                let px = pen + col * SCALE + dx;
                                let py = y + row as i32 * SCALE + dy;
                                area.draw_pixel((px, py), color)
                                    .map_err(|e| anyhow::anyhow!("drawing text: {e}"))?;
                            }
                        }
                    }
                }
            }
        }
        pen += 6 * SCALE;
    }
    Ok(())
}

/// 5×7 glyphs, one row per byte, bit 4 leftmost.
const FONT: &[(char, [u8; 7])] = &[
    (
        '0',
        [
            0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110,
        ],
    ),
    (
        '1',
        [
            0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
    ),
    (
        '2',
        [
            0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111,
        ],
    ),
    (
        '3',
        [
            0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110,
        ],
    ),
    (
        '4',
        [
            0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010,
        ],
    ),
    (
        '5',
        [
            0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110,
        ],
    ),
    (
        '6',
        [
            0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110,
        ],
    ),
    (
        '7',
        [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000,
        ],
    ),
    (
        '8',
        [
            0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110,
        ],
    ),
    (
        '9',
        [
            0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100,
        ],
    ),
    (
        'A',
        [
            0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
    ),
    (
        'B',
        [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110,
        ],
    ),
    (
        'C',
        [
            0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110,
        ],
    ),
    (
        'D',
        [
            0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110,
        ],
    ),
    (
        'E',
        [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111,
        ],
    ),
    (
        'F',
        [
            0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
    ),
    (
        'G',
        [
            0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111,
        ],
    ),
    (
        'H',
        [
            0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001,
        ],
    ),
    (
        'I',
        [
            0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110,
        ],
    ),
    (
        'J',
        [
            0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100,
        ],
    ),
    (
        'K',
        [
            0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001,
        ],
    ),
    (
        'L',
        [
            0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111,
        ],
    ),
    (
        'M',
        [
            0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001,
        ],
    ),
    (
        'N',
        [
            0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001,
        ],
    ),
    (
        'O',
        [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
    ),
    (
        'P',
        [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000,
        ],
    ),
    (
        'Q',
        [
            0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101,
        ],
    ),
    (
        'R',
        [
            0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001,
        ],
    ),
    (
        'S',
        [
            0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110,
        ],
    ),
    (
        'T',
        [
            0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
    ),
    (
        'U',
        [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110,
        ],
    ),
    (
        'V',
        [
            0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100,
        ],
    ),
    (
        'W',
        [
            0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010,
        ],
    ),
    (
        'X',
        [
            0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001,
        ],
    ),
    (
        'Y',
        [
            0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100,
        ],
    ),
    (
        'Z',
        [
            0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111,
        ],
    ),
    (
        '.',
        [
            0b00000, 0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b01100,
        ],
    ),
    (
        '-',
        [
            0b00000, 0b00000, 0b00000, 0b11111, 0b00000, 0b00000, 0b00000,
        ],
    ),
    (
        '%',
        [
            0b11000, 0b11001, 0b00010, 0b00100, 0b01000, 0b10011, 0b00011,
        ],
    ),
    (
        '=',
        [
            0b00000, 0b00000, 0b11111, 0b00000, 0b11111, 0b00000, 0b00000,
        ],
    ),
    (
        '/',
        [
            0b00000, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b00000,
        ],
    ),
    (
        ':',
        [
            0b00000, 0b01100, 0b01100, 0b00000, 0b01100, 0b01100, 0b00000,
        ],
    ),
    (
        '(',
        [
            0b00010, 0b00100, 0b01000, 0b01000, 0b01000, 0b00100, 0b00010,
        ],
    ),
    (
        ')',
        [
            0b01000, 0b00100, 0b00010, 0b00010, 0b00010, 0b00100, 0b01000,
        ],
    ),
    (
        ',',
        [
            0b00000, 0b00000, 0b00000, 0b00000, 0b01100, 0b00100, 0b01000,
        ],
    ),
    (
        '<',
        [
            0b00010, 0b00100, 0b01000, 0b10000, 0b01000, 0b00100, 0b00010,
        ],
    ),
];
