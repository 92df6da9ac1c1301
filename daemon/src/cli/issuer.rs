//! `palmgate issuer …`.

use std::process::ExitCode;

/// `palmgate issuer` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum IssuerCommand {}

/// Runs a `palmgate issuer` subcommand.
pub fn run(command: IssuerCommand) -> anyhow::Result<ExitCode> {
    match command {}
}
