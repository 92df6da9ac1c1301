//! `palmgate synth`: writes synthetic palm images (`DIR/<identity>/<sample>.png`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use palmgate_matcher::synth;

/// What kind of image to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SynthKind {
    /// Whole hand with fingers on a dark background (640×480).
    Hand,
    /// Aligned 128×128 palm ROI.
    Roi,
}

/// Arguments of `palmgate synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Number of identities (palms).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub identities: u64,
    /// Captures per identity.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub samples: u64,
    /// Seed of the first identity; use another range to get palms never seen before.
    #[arg(long, default_value_t = 0)]
    pub first_identity: u64,
    /// Output folder (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Whole-hand images or aligned ROIs.
    #[arg(long, value_enum, default_value_t = SynthKind::Hand)]
    pub kind: SynthKind,
}

/// Runs `palmgate synth`.
pub fn run(args: SynthArgs) -> anyhow::Result<ExitCode> {
    let last = args
        .first_identity
        .checked_add(args.identities)
        .context("--first-identity + --identities overflows")?;
    let jobs: Vec<(u64, u64)> = (args.first_identity..last)
        .flat_map(|identity| (0..args.samples).map(move |sample| (identity, sample)))
        .collect();
    for identity in args.first_identity..last {
        let dir = identity_dir(&args.out, identity);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let next = AtomicU64::new(0);
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let Ok(i) = usize::try_from(next.fetch_add(1, Ordering::Relaxed)) else {
                            return Ok(());
                        };
                        let Some(&(identity, sample)) = jobs.get(i) else {
                            return Ok(());
                        };
                        let image = match args.kind {
                            SynthKind::Hand => synth::hand_image(identity, sample),
                            SynthKind::Roi => synth::roi_image(identity, sample),
                        };
                        let path =
                            identity_dir(&args.out, identity).join(format!("{sample:02}.png"));
                        image
                            .save(&path)
                            .with_context(|| format!("cannot write {}", path.display()))?;
                    }
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .map_err(|_| anyhow::anyhow!("a synth worker panicked"))??;
        }
        Ok(())
    })?;
    println!(
        "wrote {} images ({} identities × {} samples) to {}",
        jobs.len(),
        args.identities,
        args.samples,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn identity_dir(out: &Path, identity: u64) -> PathBuf {
    out.join(format!("{identity:05}"))
}
