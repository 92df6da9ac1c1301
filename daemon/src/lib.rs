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

/// An error and its sources, on one line (for logs and event reasons).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
