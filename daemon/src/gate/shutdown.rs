//! Shutdown: the doors are driven safe first (whatever else hangs), then every task is told to
//! stop and given [`SHUTDOWN_GRACE`], and the outbox is flushed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::GateError;
use super::startup::Running;
use crate::error_chain;
use crate::mqtt::LinkError;
use crate::outbox::Outbox;

/// How long each task gets to stop on shutdown (systemd's `TimeoutStopSec=` is 10 s).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The tasks a running gate started, and what stops them.
pub(super) struct Tasks {
    pub(super) stop: watch::Sender<bool>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) link: JoinHandle<Result<(), LinkError>>,
    pub(super) sensor: JoinHandle<()>,
    pub(super) watchdog: JoinHandle<()>,
    pub(super) flusher: JoinHandle<()>,
    pub(super) sim_control: JoinHandle<()>,
    pub(super) panel: JoinHandle<()>,
}

/// Stops a gate whose main loop has ended.
pub(super) async fn stop(running: Running) -> Result<(), GateError> {
    let Running {
        mut gate, tasks, ..
    } = running;
    tracing::info!("stopping");
    gate.notifier.stopping();
    gate.held_probe = None;
    // Doors first: whatever else hangs, the outputs are in their safe state.
    let door_result = gate.door_handle.shutdown();
    let _ = tasks.stop.send(true);
    let card_worker = gate.card_worker;
    let card_stop = tokio::task::spawn_blocking(move || card_worker.stop());
    let waited: [(&str, JoinHandle<()>); 6] = [
        ("card worker", card_stop),
        ("sensor", tasks.sensor),
        ("watchdog", tasks.watchdog),
        ("outbox flusher", tasks.flusher),
        ("simulated GPIO control", tasks.sim_control),
        ("panel", tasks.panel),
    ];
    for (name, task) in waited {
        if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
            tracing::warn!(task = name, "did not stop in time; abandoned");
        }
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, tasks.link).await {
        Ok(Ok(Err(error))) => {
            tracing::warn!(error = %error_chain(&error), "MQTT link ended with an error")
        }
        Ok(_) => {}
        Err(_) => tracing::warn!(task = "mqtt link", "did not stop in time; abandoned"),
    }
    if let Err(error) = tasks.outbox.flush() {
        tracing::warn!(error = %error_chain(&error), "final outbox flush failed");
    }
    tracing::info!("stopped");
    door_result?;
    Ok(())
}
