//! `palmgate run`: the gate daemon.

use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::ConfigArg;

/// Arguments of `palmgate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Exit status for an invalid configuration (as `config check`).
const INVALID_CONFIG: u8 = 2;

/// Runs the gate daemon until SIGTERM or SIGINT; SIGHUP reloads the policy and revocation list.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let settings = match palmgate::config::load(&args.config.config) {
        Ok(settings) => settings,
        Err(error) => {
            for problem in &error.problems {
                eprintln!("{problem}");
            }
            return Ok(ExitCode::from(INVALID_CONFIG));
        }
    };
    palmgate::logging::init(&settings.logging)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut hangup = signal(SignalKind::hangup())?;
        let (reload_tx, reload_rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                let _ = reload_tx.try_send(());
            }
        });
        let shutdown = async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("SIGTERM"),
                _ = interrupt.recv() => tracing::info!("SIGINT"),
            }
        };
        let notifier = palmgate::notify::Notifier::from_env();
        // The real devices, built in this one place; a door configuration the backend refuses
        // stops the gate like any other start-up failure.
        let ran = match palmgate::gate::Devices::production(&settings) {
            Ok(devices) => {
                palmgate::gate::run(settings, devices, notifier, shutdown, reload_rx).await
            }
            Err(error) => Err(error),
        };
        match ran {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(error) => {
                tracing::error!(error = %palmgate::error_chain(&error), "gate stopped");
                Err(anyhow::Error::new(error).context("the gate stopped"))
            }
        }
    });
    // A blocking call that never returns (a wedged PC/SC call) must not keep the process alive:
    // the doors are already safe by now.
    runtime.shutdown_timeout(std::time::Duration::from_secs(3));
    result
}
