//! `palmgate template …`.

use std::process::ExitCode;

/// `palmgate template` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TemplateCommand {}

/// Runs a `palmgate template` subcommand.
pub fn run(command: TemplateCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
