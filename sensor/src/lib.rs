//! Palm sensor: the serial frame protocol, the device task that reads a sensor, and a simulator.
//!
//! # Layout
//! - [`codec`]: the protocol's bytes (frames, CRCs, messages) as `tokio_util` codecs; nothing else in
//!   the crate knows a byte of the protocol. Documented in `docs/sensor-protocol.md`.
//! - [`image`]: frame images to and from 8-bit gray (`GRAY8`, PNG, JPEG), in buffers that wipe
//!   themselves.
//! - [`device`]: the gate's side. [`device::run`] opens the serial port, handshakes, starts capture
//!   and sends [`device::SensorEvent`]s (presence, decoded frames, problems) on a channel; it
//!   reconnects with back-off when the port goes away, and stops when its shutdown future completes.
//!   Request bookkeeping (sequence numbers, one request in flight, deadlines) is an I/O-free state
//!   machine in `device/requests.rs`.
//! - [`sim`]: a sensor on a pseudo-terminal, serving images from a folder or any iterator, with
//!   fault injection for tests (`palmgate sensor simulate`).
//!
//! # Use
//! ```no_run
//! use palmgate_sensor::device::{self, DeviceConfig, SensorEvent};
//! use tokio::sync::mpsc;
//!
//! # async fn demo() {
//! let config = DeviceConfig::new("/dev/ttyACM0");
//! let (events_tx, mut events) = mpsc::channel(16);
//! let (_commands, commands_rx) = mpsc::channel(4);
//! let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let shutdown = async { let _ = stopped.await; };
//! tokio::spawn(device::run(config, events_tx, commands_rx, shutdown));
//! while let Some(event) = events.recv().await {
//!     if let SensorEvent::Frame(frame) = event {
//!         let _gray: &palmgate_sensor::GrayImage = frame.image.as_gray();
//!     }
//! }
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod codec;
pub mod device;
pub mod image;
pub mod sim;

/// An error and its sources, `error: cause: cause`, on one line, for this crate's log lines and
/// messages (as the daemon's `palmgate::error_chain`; docs/architecture.md, "Errors").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |error| error.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// The image types of the public API (from the `image` crate), so that users need not depend on it.
pub use ::image::{GrayImage, Luma};
