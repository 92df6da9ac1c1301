//! `palmgate card …`.

use std::process::ExitCode;

/// `palmgate card` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CardCommand {}

/// Runs a `palmgate card` subcommand.
pub fn run(command: CardCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
