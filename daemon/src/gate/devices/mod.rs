//! The gate's devices behind their seams: the card reader, the palm sensor link, the doors and the
//! event link. The gate's code sees only these traits.
//!
//! # Layout
//! - this module: the seams ([`CardReader`], [`SensorLink`], [`EventLink`]), [`Devices`] and the
//!   [`StopSignal`] every task gets.
//! - [`production`]: the real devices (PC/SC, the serial sensor, MQTT) and
//!   [`Devices::production`], the one place that builds them from the settings.
//! - [`in_process`]: devices played by a test in the same process (an applet behind
//!   `InProcessTransport`, a sensor over a channel or the real device task over
//!   `tokio::io::duplex`, a link over channels); with the simulated GPIO backend they run the
//!   whole gate without a service.

pub mod in_process;
pub mod production;

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use palmgate_card::host::pcsc::MonitorEvent;
use palmgate_card::host::{CardTransport, TransportError};
use palmgate_sensor::device::{DeviceCommand, SensorEvent};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use self::in_process::{
    ChannelLink, ChannelLinkEnds, ChannelSensor, ChannelSensorEnds, DuplexSensor,
    InProcessCardSlot, InProcessReader,
};
pub use self::production::{MqttLink, PcscReader, SerialSensor};
use super::card_worker::CardWorkerError;
use crate::doors::Doors;
use crate::mqtt::{LinkError, LinkHandles};
use crate::outbox::Outbox;

/// Completes once the gate stops; every task the gate starts gets one.
#[derive(Debug, Clone)]
pub struct StopSignal(watch::Receiver<bool>);

impl StopSignal {
    /// A signal, and the sender that raises it.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (sender, receiver) = watch::channel(false);
        (sender, Self(receiver))
    }

    /// Waits until the stop is raised (or its sender is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Card presence changes, and why they ended when they do.
pub struct CardPresence {
    /// Inserted / removed as the reader sees them, and the reader's health as it changes.
    pub events: std_mpsc::Receiver<MonitorEvent>,
    /// Called (on the presence thread) once `events` has ended; says why.
    pub ended: Box<dyn FnOnce() -> String + Send>,
}

impl std::fmt::Debug for CardPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardPresence").finish_non_exhaustive()
    }
}

/// Where the card worker finds cards. Both calls may block (they run on the worker's threads).
pub trait CardReader: Send + 'static {
    /// The channel to a card once connected.
    type Transport: CardTransport;
    /// Starts watching for cards.
    ///
    /// # Errors
    /// The reader cannot be watched (pcscd not running).
    fn watch(&mut self) -> Result<CardPresence, CardWorkerError>;
    /// Connects to the card present.
    ///
    /// # Errors
    /// No card, or the reader refuses the connection.
    fn connect(&mut self) -> Result<Self::Transport, TransportError>;
}

/// The palm sensor's link: a task that turns the device into [`SensorEvent`]s and carries out
/// [`DeviceCommand`]s, reconnecting on its own, until the stop signal.
pub trait SensorLink: Send + 'static {
    /// Starts the task.
    fn spawn(
        self: Box<Self>,
        events: mpsc::Sender<SensorEvent>,
        commands: mpsc::Receiver<DeviceCommand>,
        stop: StopSignal,
    ) -> JoinHandle<()>;
}

/// The link that carries the outbox's events out and verified commands in (MQTT in production).
pub trait EventLink: Send + 'static {
    /// Starts the link over `outbox`; it runs until the stop signal.
    ///
    /// # Errors
    /// The link cannot be set up (operator keys, replay cache).
    fn start(
        self: Box<Self>,
        outbox: Arc<Outbox>,
        stop: StopSignal,
    ) -> Result<(LinkHandles, JoinHandle<Result<(), LinkError>>), LinkError>;
}

/// Everything the gate drives, behind its seam.
pub struct Devices<R: CardReader> {
    /// The card reader.
    pub card_reader: R,
    /// The palm sensor.
    pub sensor: Box<dyn SensorLink>,
    /// The doors (their GPIO backend is inside).
    pub doors: Doors,
    /// The event and command link.
    pub link: Box<dyn EventLink>,
    /// Whether a panic anywhere in the process drives the doors safe (the daemon: yes; a test
    /// running several gates in one process: no, one test's failure must not halt the others).
    pub safe_on_panic: bool,
}

impl<R: CardReader> std::fmt::Debug for Devices<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices")
            .field("doors", &self.doors)
            .finish_non_exhaustive()
    }
}
