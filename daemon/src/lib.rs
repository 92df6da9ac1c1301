//! palmgate: the access-control gateway daemon (library part).
//!
//! # Layout
//! - [`config`]: layered configuration (built-in defaults, `/etc/palmgate/palmgate.toml`,
//!   `conf.d/*.toml`, `PALMGATE__…` environment) validated into [`config::Settings`].
//! - [`logging`]: `tracing` set-up, human-readable on a terminal, journald under systemd.
//! - [`notify`]: systemd readiness, watchdog and stopping notifications.
//! - [`doors`]: builds the door controllers (door-io) from the door settings.
//! - [`event`]: the events a gate reports (never biometric data).
//! - [`access`]: the I/O-free access decision state machine (events in, actions out).
//! - [`outbox`]: the encrypted, persistent, ordered event outbox (redb + AES-256-GCM).
//! - [`mqtt`]: the MQTT link: status, door state, events, discovery, signed commands.
//! - [`gate`]: wires reader, sensor, extraction, access machine, doors, outbox and MQTT.
//! - [`station`]: a station's events (enrolment station, card tools), published without an
//!   outbox.
//! - [`enrol`]: the enrolment station's I/O-free decisions (capture acceptance, mutual match,
//!   template choice, consent and audit records).
//!
//! The binary (`src/main.rs`, `src/cli/`) parses the command line and wires these together.
#![forbid(unsafe_code)]

pub mod access;
pub mod config;
pub mod doors;
pub mod enrol;
pub mod event;
pub mod gate;
pub mod logging;
pub mod mqtt;
pub mod notify;
pub mod outbox;
pub mod station;

#[cfg(test)]
mod error_chain_tests;

/// An error and its sources, `error: cause: cause`, on one line: how every log line, event
/// reason and message prints an error (docs/architecture.md, "Errors").
pub fn error_chain(error: &dyn std::error::Error) -> String {
    std::iter::successors(Some(error), |error| error.source())
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
