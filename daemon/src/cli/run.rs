//! `palmgate run`.

use std::process::ExitCode;

use super::ConfigArg;

/// Arguments of `palmgate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Runs the gate daemon.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let settings = palmgate::config::load(&args.config.config)?;
    anyhow::bail!("palmgate run is not implemented yet (gate {})", settings.gate.id)
}
