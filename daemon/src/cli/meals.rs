//! `palmgate meals report`: the CSV of meals per person and period from `meal.served` events.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use palmgate::gate::meal_report::{LineOutcome, MealReport};
use palmgate_card::host::issuer::load_issuer_public_key;

/// `palmgate meals` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum MealsCommand {
    /// Meals per person (card) and meal period, as CSV, from the `meal.served` events of the
    /// site: a JSON-lines file of them (one event per line, or `mosquitto_sub -v` lines), or `-`
    /// for standard input, e.g. `mosquitto_sub -v -t 'palmgate/+/event/meal.served' | palmgate
    /// meals report --events - …`. A meal received twice counts once (card + receipt counter).
    ///
    /// Exit status 0; 1 when some lines could not be counted (each is named on standard error;
    /// the CSV holds the others).
    Report(ReportArgs),
}

/// `palmgate meals report` arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// First local date of the report (`YYYY-MM-DD`, the site's dates as in the policy).
    #[arg(long, value_name = "DATE")]
    from: String,
    /// Last local date of the report, included.
    #[arg(long, value_name = "DATE")]
    to: String,
    /// The events: a file of JSON lines, or `-` for standard input.
    #[arg(long, value_name = "FILE")]
    events: PathBuf,
    /// Verify every receipt against this issuer's public key (`DIR/issuer.pub`); a receipt that
    /// fails is not counted.
    #[arg(long, value_name = "DIR")]
    issuer: Option<PathBuf>,
    /// Write the CSV here instead of standard output.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs a `palmgate meals` subcommand.
pub fn run(command: MealsCommand) -> anyhow::Result<ExitCode> {
    match command {
        MealsCommand::Report(args) => report(&args),
    }
}

fn date(text: &str, flag: &str) -> anyhow::Result<i64> {
    let time = palmgate::event::Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
        .filter(|_| text.len() == 10)
        .with_context(|| format!("{flag} {text:?}: expected YYYY-MM-DD"))?;
    Ok(time.unix_ms().div_euclid(86_400_000))
}

fn report(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    let (from, to) = (date(&args.from, "--from")?, date(&args.to, "--to")?);
    anyhow::ensure!(from <= to, "--from {} is after --to {}", args.from, args.to);
    let issuers = match &args.issuer {
        Some(dir) => Some(vec![load_issuer_public_key(dir)?]),
        None => None,
    };
    let input: Box<dyn BufRead> = if args.events.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.events)
            .with_context(|| format!("--events {}", args.events.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut report = MealReport::new(issuers.is_some());
    let (mut counted, mut duplicates, mut refused) = (0usize, 0usize, 0usize);
    for (index, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("reading line {}", index + 1))?;
        match report.add_line(index + 1, &line, issuers.as_deref()) {
            Ok(LineOutcome::Counted) => counted += 1,
            Ok(LineOutcome::Duplicate) => duplicates += 1,
            Ok(LineOutcome::Ignored) => {}
            Err(problem) => {
                refused += 1;
                eprintln!("{}: {problem}", args.events.display());
            }
        }
    }
    let csv = report.csv(from, to);
    match &args.out {
        Some(path) => palmgate::gate::state::durable::replace_file(path, csv.as_bytes())
            .with_context(|| format!("--out {}", path.display()))?,
        None => print!("{csv}"),
    }
    let missing = report.missing_receipts();
    for gap in &missing {
        eprintln!("{}: warning: {gap}", args.events.display());
    }
    let missing_count: u64 = missing
        .iter()
        .map(|gap| u64::from(gap.last - gap.first) + 1)
        .sum();
    eprintln!(
        "{counted} meal(s) counted, {duplicates} duplicate(s), {refused} line(s) refused, \
         {missing_count} receipt(s) missing"
    );
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
