//! `palmgate door …`.

use std::process::ExitCode;

/// `palmgate door` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DoorCommand {}

/// Runs a `palmgate door` subcommand.
pub fn run(command: DoorCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
