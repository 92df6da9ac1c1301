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
//! - [`sim`]: a sensor on a pseudo-terminal, serving images from a folder or any iterator, with
//!   fault injection for tests (`palmgate sensor simulate`).
#![forbid(unsafe_code)]

pub mod codec;
pub mod image;
pub mod device;
pub mod sim;
