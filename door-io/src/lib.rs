//! palmgate-door: the doors and turnstiles of a gate.
//!
//! # Layout
//! - [`config`]: plain configuration types (pins, active levels, fail modes, timings) and their
//!   validation. The daemon maps its settings onto them; this crate reads no files.
//! - [`debounce`]: input debouncing with injected time.
//! - [`machine`]: the I/O-free gate state machine (doors, turnstiles, fire, per-door lockdown,
//!   interlock): inputs, grants and `tick(now)` in; lock, feedback and event [`Action`]s out;
//!   next deadline.
//! - [`event`]: the events it reports (`door.unlocked`, `door.forced`, `fire.active`, …).
//! - [`gpio`]: the pin seam, one primitive per trait ([`OutputPin::set`], [`InputPin::read`]).
//! - [`sim`]: the simulated backend that records every output change with its time.
//! - `rpi` (feature `rpi`): the Raspberry Pi backend through rppal.
//! - [`driver`]: runs the state machine over a backend, outputs safe first and last: the
//!   synchronous [`GateDriver`] (injected time) and the threaded [`spawn`] / [`GateHandle`].
//! - [`status`]: [`StatusWatch`], the threaded driver's latest [`GateStatus`] for other threads.
//!
//! The safety rules, timings, events and the wiring table are in `docs/door-io.md`.
#![forbid(unsafe_code)]

pub mod config;
pub mod debounce;
pub mod driver;
pub mod event;
pub mod gpio;
pub mod machine;
#[cfg(feature = "rpi")]
pub mod rpi;
pub mod sim;
pub mod status;

pub use config::{
    ConfigError, DEFAULT_FIRE_DEBOUNCE, DoorConfig, DoorInput, DoorMode, DoorOutput, FailMode,
    FeedbackConfig, FireConfig, GateConfig, InputConfig, Level, LockConfig, LockState,
};
pub use driver::{
    DriverError, GateDriver, GateHandle, InputReading, SafeStop, drive_outputs_safe, spawn,
};
pub use event::{Event, EventKind, HeldOpenStage, Opening, Refusal, ReleaseCause};
pub use gpio::{Backend, GpioError, InputPin, OutputPin};
pub use machine::{Action, DoorId, DoorStatus, Gate, GateStatus, InputId, LockdownScope};
pub use sim::{OutputChange, SimulatedGpio};
pub use status::StatusWatch;
