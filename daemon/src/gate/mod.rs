//! The gate: runs the card reader, the palm sensor, template extraction, the access machine, the
//! doors, the outbox and the event link until shutdown.
//!
//! Blocking work stays off the async threads: the card reader in the card worker thread, the door
//! driver in its own thread, template extraction on the blocking pool. The main loop only moves
//! messages between them and the I/O-free access machine. The probe template lives in the loop
//! (never in the machine, an event or a log) and is wiped when used or discarded.
//!
//! The devices come in behind their seams ([`devices`]): [`run`] does not know whether the card
//! is on PC/SC or in-process, the sensor on a serial port or a channel, the doors on GPIO or
//! simulated, the events on MQTT or a channel. `palmgate run` passes
//! [`Devices::production`](devices::Devices::production).
//!
//! # Layout
//! One presentation's path, in order:
//! - [`devices`]: the seams (card reader, sensor link, event link) and their production and
//!   in-process implementations.
//! - [`startup`]: start-up in a safe order (doors first, lockdown restored, then the tasks).
//! - [`main_loop`]: the loop: card reports, sensor frames → extraction → the access machine's
//!   actions (verify on the card, unlock or deny a door, publish an event).
//! - [`liveness`]: presentation attack detection between extraction and the access machine (a
//!   burst from a 1.1 sensor, the frame alone from a 1.0 one).
//! - [`card_worker`]: the card reader thread (presence, certificate checks, secure sessions).
//! - [`meals`]: at a canteen gate, the meal step in the card's session (and the receipt of a
//!   meal whose answer was lost), and the meal counts; [`meal_report`]: `palmgate meals
//!   report`.
//! - [`door_view`]: the I/O-free door-state projection from door-io's status (events are
//!   classified in `event.rs`, `NewEvent::from_door_event`).
//! - [`panel_stage`]: reader mode (`[panel]`): the verdict goes to an access panel over OSDP or
//!   Wiegand, the panel's LED/buzzer commands reach the reader's feedback pins.
//! - [`commands`]: signed remote commands (unlock, lockdown, release, revocation list).
//! - [`reload`]: SIGHUP: policy and revocation list re-read.
//! - [`shutdown`]: doors safe first, then every task stopped, the outbox flushed.
//! - [`state`]: what survives a restart (revocation list, lockdown), written atomically.
//! - [`sim_control`]: the simulated GPIO backend's control socket (demo and tests).

pub mod card_worker;
pub mod commands;
pub mod devices;
pub mod door_view;
mod liveness;
mod main_loop;
pub mod meal_report;
pub mod meals;
pub mod panel_stage;
mod reload;
pub mod shutdown;
pub mod sim_control;
pub mod startup;
pub mod state;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use palmgate_sensor::device::CaptureRequest;
use tokio::sync::mpsc;

pub use self::devices::{CardReader, Devices};
pub use self::startup::{Heartbeat, load_issuer_keys};
use crate::config::Settings;
use crate::notify::Notifier;

/// Why the gate could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// An issuer key file could not be used.
    #[error("issuer key {path}: {reason}")]
    IssuerKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The access policy file could not be loaded.
    #[error(transparent)]
    Policy(#[from] crate::access::PolicyError),
    /// The revocation list could not be read.
    #[error(transparent)]
    Revocation(#[from] state::revocation::RevocationError),
    /// The doors in lockdown could not be read back.
    #[error(transparent)]
    Lockdown(#[from] state::durable::StateFileError),
    /// The doors could not be set up.
    #[error(transparent)]
    Doors(#[from] crate::doors::DoorsError),
    /// The door driver failed.
    #[error("door driver")]
    DoorDriver(#[from] palmgate_door::DriverError),
    /// The outbox could not be opened.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    /// The MQTT link could not be set up.
    #[error(transparent)]
    Link(#[from] crate::mqtt::LinkError),
    /// The template extractor could not be loaded.
    #[error("template extractor")]
    Extractor(#[source] palmgate_matcher::extract::ExtractError),
    /// The card reader could not be watched (pcscd not running?).
    #[error(transparent)]
    CardWorker(#[from] card_worker::CardWorkerError),
    /// Reader mode (`[panel]`) could not start.
    #[error("reader mode")]
    Panel(#[from] panel_stage::PanelStartError),
    /// A blocking task panicked.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// What the gate asks the sensor for: JPEG frames until told to stop.
pub(crate) const CAPTURE: CaptureRequest = CaptureRequest {
    format: palmgate_sensor::codec::FrameFormat::Jpeg,
    frames: 0,
};

/// How often the main loop wakes up even when nothing happens (heartbeat, deadlines).
const LOOP_TICK: Duration = Duration::from_millis(500);

/// Runs the gate on `devices` until `shutdown` completes. `reload` receives SIGHUP requests
/// (policy and revocation list are re-read). Doors are driven to their safe state before this
/// returns.
///
/// # Errors
/// A start-up step failed (nothing is left running), or the door driver failed.
pub async fn run<R: CardReader>(
    settings: Settings,
    devices: Devices<R>,
    notifier: Notifier,
    shutdown: impl Future<Output = ()>,
    reload: mpsc::Receiver<()>,
) -> Result<(), GateError> {
    let running = startup::start(settings, devices, notifier).await?;
    let running = main_loop::run(running, shutdown, reload).await;
    shutdown::stop(running).await
}
