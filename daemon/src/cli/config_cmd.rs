//! `palmgate config check`.

use std::process::ExitCode;

use super::ConfigArg;

/// `palmgate config` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (and the access policy and revocation list files it names)
    /// and print the effective result (secrets redacted).
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
                let problems = referenced_file_problems(&settings);
                if !problems.is_empty() {
                    for problem in problems {
                        eprintln!("{problem}");
                    }
                    return Ok(ExitCode::from(INVALID));
                }
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

/// The files the daemon loads at start and on SIGHUP besides the configuration itself (the policy,
/// the revocation list, the doors in lockdown).
fn referenced_file_problems(settings: &palmgate::config::Settings) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(path) = &settings.card.policy_file {
        let doors = settings.door.keys().cloned().collect();
        if let Err(error) = palmgate::access::PolicyRules::load(path, &doors) {
            problems.push(format!(
                "card.policy_file: {}",
                palmgate::error_chain(&error)
            ));
        }
    }
    if let Some(path) = &settings.card.revocation_list
        && let Err(error) = palmgate::gate::state::revocation::RevocationList::load(path)
    {
        problems.push(format!(
            "card.revocation_list: {}",
            palmgate::error_chain(&error)
        ));
    }
    // The gate's own record of the doors in lockdown (in the state directory, when it exists).
    // A user who may not read the state directory cannot check it: said, not counted.
    let lockdown =
        palmgate::gate::state::lockdown::LockdownFile::in_state_dir(&settings.storage.state_dir);
    match lockdown.load() {
        Ok(_) => {}
        Err(palmgate::gate::state::lockdown::LockdownFileError::Io { path, source })
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            eprintln!(
                "note: {} not checked (permission denied): run as the palmgate user",
                path.display()
            );
        }
        Err(error) => problems.push(format!(
            "storage.state_dir: {}",
            palmgate::error_chain(&error)
        )),
    }
    problems
}
