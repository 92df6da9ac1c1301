//! Logging with `tracing`: human-readable lines on a terminal, structured records to the journal
//! under systemd.
//!
//! Nothing secret or biometric is ever logged: secrets and templates are newtypes whose `Debug`
//! prints `REDACTED`, and events carry card ids and results only.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogLevel, LoggingSettings};

/// Errors setting up logging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoggingError {
    /// The journal was asked for but cannot be reached.
    #[error("cannot connect to the systemd journal")]
    Journald(#[source] std::io::Error),
    /// A global subscriber was already installed.
    #[error("logging is already initialised")]
    AlreadyInitialised(#[source] tracing_subscriber::util::TryInitError),
}

/// Where log records go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Human-readable lines on standard error.
    Human,
    /// The systemd journal.
    Journald,
}

/// Chooses the output: `auto` means the journal when systemd started us with its journal on our
/// standard error (`JOURNAL_STREAM` set), human-readable lines otherwise.
pub fn choose_output(format: LogFormat, journal_stream: Option<&str>) -> Output {
    match format {
        LogFormat::Human => Output::Human,
        LogFormat::Journald => Output::Journald,
        LogFormat::Auto if journal_stream.is_some_and(|value| !value.is_empty()) => {
            Output::Journald
        }
        LogFormat::Auto => Output::Human,
    }
}

/// The filter: `RUST_LOG` when set, the configured level otherwise.
pub fn filter(level: LogLevel) -> EnvFilter {
    let level = match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level))
}

/// Installs the global subscriber.
pub fn init(settings: &LoggingSettings) -> Result<Output, LoggingError> {
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let output = choose_output(settings.format, journal_stream.as_deref());
    let registry = tracing_subscriber::registry().with(filter(settings.level));
    match output {
        Output::Journald => {
            let journald = tracing_journald::layer().map_err(LoggingError::Journald)?;
            registry
                .with(journald)
                .try_init()
                .map_err(LoggingError::AlreadyInitialised)?;
        }
        Output::Human => {
            let fmt = tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
            registry
                .with(fmt)
                .try_init()
                .map_err(LoggingError::AlreadyInitialised)?;
        }
    }
    Ok(output)
}

/// For commands other than `run`: human-readable warnings and errors (or `RUST_LOG`).
pub fn init_for_cli() {
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Ignoring the error is right here: a second initialisation keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter(LogLevel::Warn))
        .with(fmt)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_journal_stream() {
        assert_eq!(
            choose_output(LogFormat::Auto, Some("8:1234")),
            Output::Journald
        );
        assert_eq!(choose_output(LogFormat::Auto, Some("")), Output::Human);
        assert_eq!(choose_output(LogFormat::Auto, None), Output::Human);
        assert_eq!(
            choose_output(LogFormat::Human, Some("8:1234")),
            Output::Human
        );
        assert_eq!(choose_output(LogFormat::Journald, None), Output::Journald);
    }
}
