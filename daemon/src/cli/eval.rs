//! `palmgate eval`.

use std::process::ExitCode;

/// Arguments of `palmgate eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {}

/// Runs `palmgate eval`.
pub fn run(_args: EvalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("palmgate eval is not implemented yet")
}
