//! `palmgate template …`: palm templates from images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use palmgate_matcher::extract::{Extractor, InputKind};

/// What an input image shows (shared by `template extract` and `eval`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputArg {
    /// A whole hand on a background: the palm ROI is found and cut.
    Hand,
    /// An already cut palm ROI, used as it is.
    Roi,
}

impl From<InputArg> for InputKind {
    fn from(input: InputArg) -> Self {
        match input {
            InputArg::Hand => InputKind::Hand,
            InputArg::Roi => InputKind::Roi,
        }
    }
}

/// `palmgate template` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {
    /// Extract a template from a palm image and write its 292-byte encoding.
    Extract(ExtractArgs),
}

/// Arguments of `palmgate template extract`.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// Palm image (PNG, JPEG or BMP).
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// File to write the encoded template to.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// What the image shows.
    #[arg(long, value_enum, default_value_t = InputArg::Hand)]
    pub input: InputArg,
    /// A replacement ONNX feature model (same input and output as the built-in one).
    #[arg(long, value_name = "FILE.onnx")]
    pub model: Option<PathBuf>,
}

/// Runs a `palmgate template` subcommand.
pub fn run(command: TemplateCommand) -> anyhow::Result<ExitCode> {
    match command {
        TemplateCommand::Extract(args) => extract(args),
    }
}

/// Loads the built-in extractor or the one with a replacement model.
pub fn load_extractor(model: Option<&std::path::Path>) -> anyhow::Result<Extractor> {
    match model {
        Some(path) => Extractor::from_model_file(path)
            .with_context(|| format!("loading feature model {}", path.display())),
        None => Extractor::builtin().context("loading the built-in feature model"),
    }
}

fn extract(args: ExtractArgs) -> anyhow::Result<ExitCode> {
    let extractor = load_extractor(args.model.as_deref())?;
    let image = image::open(&args.image)
        .with_context(|| format!("reading image {}", args.image.display()))?;
    let extraction = match extractor.extract_image(&image, args.input.into()) {
        Ok(extraction) => extraction,
        Err(refusal) => {
            eprintln!("refused: {refusal}");
            return Ok(ExitCode::from(2));
        }
    };
    let encoded = extraction.template.encode();
    write_private(&args.out, &encoded)
        .with_context(|| format!("writing template {}", args.out.display()))?;
    let quality = &extraction.quality;
    println!(
        "template written to {} ({} bytes)",
        args.out.display(),
        encoded.len()
    );
    println!(
        "quality: ROI {:?}, {:.0} % of the ROI on the hand, {} of 576 cells valid, mean level {:.0}, \
         saturated {:.1} %, dark {:.1} %, focus {:.1}",
        extraction.roi_method,
        100.0 * quality.valid,
        extraction.valid_cells,
        quality.raw.mean,
        100.0 * quality.raw.saturated,
        100.0 * quality.raw.dark,
        quality.raw.focus,
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes biometric data readable by the owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
