//! `palmgate sensor …`.

use std::process::ExitCode;

/// `palmgate sensor` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SensorCommand {}

/// Runs a `palmgate sensor` subcommand.
pub fn run(command: SensorCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
