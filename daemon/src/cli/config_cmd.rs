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
    if let Some(panel) = &settings.panel {
        problems.extend(panel_file_problems(settings, panel));
    }
    // The gate's own record of the doors in lockdown (in the state directory, when it exists).
    let lockdown =
        palmgate::gate::state::lockdown::LockdownFile::in_state_dir(&settings.storage.state_dir);
    if let Some(error) = lockdown.load().err().and_then(readable_state_error) {
        problems.push(format!(
            "storage.state_dir: {}",
            palmgate::error_chain(&error)
        ));
    }
    for warning in unconfirmed_meal_warnings(&settings.storage.state_dir) {
        eprintln!("warning: storage.state_dir: {warning}");
    }
    problems
}

/// The canteen's record of meal answers that were lost. A damaged one does not stop the gate (it is
/// set aside at start and the canteen keeps serving), so it is a warning, not a problem; one set
/// aside earlier is still evidence nobody has looked at.
fn unconfirmed_meal_warnings(state_dir: &std::path::Path) -> Vec<String> {
    use palmgate::gate::state::unconfirmed_meals::UnconfirmedMealsFile;
    let file = UnconfirmedMealsFile::in_state_dir(state_dir);
    let mut warnings = Vec::new();
    if let Some(error) = file.load().err().and_then(readable_state_error) {
        warnings.push(format!(
            "{}; at start the gate moves it to {} and starts without it: the receipts of the \
             meals it lists are then not read back from the cards",
            palmgate::error_chain(&error),
            file.set_aside_path().display()
        ));
    }
    match file.set_aside_files() {
        Ok(set_aside) => warnings.extend(set_aside.iter().map(|aside| {
            format!(
                "{} is a damaged record of lost meal answers set aside at an earlier start: read \
                 it, settle the meals it names by hand (palmgate card verify-receipt checks a \
                 receipt read from a card), then remove it",
                aside.display()
            )
        })),
        Err(error) => warnings.extend(readable_state_error(error).map(|error| {
            format!(
                "records of lost meal answers set aside earlier cannot be looked for: {}",
                palmgate::error_chain(&error)
            )
        })),
    }
    warnings
}

/// A state file's error, unless the file may not be read: a user who may not read the state
/// directory cannot check it (said on stderr, not counted).
fn readable_state_error(
    error: palmgate::gate::state::durable::StateFileError,
) -> Option<palmgate::gate::state::durable::StateFileError> {
    match error {
        palmgate::gate::state::durable::StateFileError::Io { path, source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            eprintln!(
                "note: {} not checked (permission denied): run as the palmgate user",
                path.display()
            );
            None
        }
        error => Some(error),
    }
}

/// Reader mode's files: the credential map (signature by a configured issuer, every entry) and
/// the OSDP state the panel set (installed key, COMSET).
fn panel_file_problems(
    settings: &palmgate::config::Settings,
    panel: &palmgate_panel::config::PanelSettings,
) -> Vec<String> {
    let mut problems = Vec::new();
    match palmgate::gate::load_issuer_keys(&settings.card.issuer_keys) {
        Ok(issuers) => {
            if let Err(error) = palmgate_panel::CredentialMap::load(&panel.credential_map, &issuers)
            {
                problems.push(format!(
                    "panel.credential_map: {}",
                    palmgate::error_chain(&error)
                ));
            }
        }
        Err(error) => problems.push(format!(
            "card.issuer_keys: {}",
            palmgate::error_chain(&error)
        )),
    }
    if let palmgate_panel::config::PanelProtocol::Osdp(osdp) = &panel.protocol {
        let store = palmgate_panel::output::FileStore::new(&osdp.scbk_file);
        let state = store
            .load_key()
            .map(drop)
            .and_then(|()| store.load_comset().map(drop));
        match state {
            Ok(()) => {}
            Err(palmgate_panel::PanelError::StateFile { path, source })
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                eprintln!(
                    "note: {} not checked (permission denied): run as the palmgate user",
                    path.display()
                );
            }
            Err(error) => problems.push(format!(
                "panel.osdp.scbk_file: {}",
                palmgate::error_chain(&error)
            )),
        }
    }
    problems
}
