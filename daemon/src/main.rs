//! The `palmgate` binary: parses the command line and runs the command.
#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("palmgate: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
