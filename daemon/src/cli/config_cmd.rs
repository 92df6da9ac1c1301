//! `palmgate config check`.

use std::process::ExitCode;

use super::ConfigArg;

/// `palmgate config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective result (secrets redacted).
    ///
    /// Exit status 0 when valid; 2 with one `FILE: KEY: reason` line per problem otherwise.
    Check(ConfigArg),
}

/// Exit status of `config check` for an invalid configuration.
const INVALID: u8 = 2;

/// Runs a `palmgate config` subcommand.
pub fn run(command: ConfigCommand) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Check(arg) => match palmgate::config::load(&arg.config) {
            Ok(settings) => {
                let effective = toml::to_string_pretty(&settings)?;
                println!(
                    "# effective configuration of {} (secrets redacted)",
                    arg.config.display()
                );
                print!("{effective}");
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                for problem in &error.problems {
                    eprintln!("{problem}");
                }
                Ok(ExitCode::from(INVALID))
            }
        },
    }
}
