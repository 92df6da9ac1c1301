//! palmgate-panel: palmgate as a reader in front of an existing access control panel.
//!
//! The gate verifies the person (card + palm, match-on-card); the panel, which holds the
//! cardholders, schedules and audit log, decides and drives the lock. This crate turns a verified
//! card into what a panel understands — a 26/34/37-bit credential number — and delivers it over
//! one of the two wires panels have: Wiegand (two GPIO lines) or OSDP (RS-485, optionally with
//! the AES-128 secure channel). See `docs/panel-integration.md`.
//!
//! # Layout
//! - [`credential`]: the credential number (format, facility code, card number) and the Wiegand
//!   bit formats H10301 (26), H10306 (34) and H10304 (37) with their parity.
//! - [`credential_map`]: the issuer-signed file that maps a card id (128 bits) to its credential
//!   number and duress number; a card without an entry is refused with a reason.
//! - [`wiegand`]: the Wiegand emitter: a dedicated thread pulsing D0/D1 through `palmgate-door`'s
//!   [`palmgate_door::OutputPin`] with steady timing.
//! - [`osdp`]: the OSDP peripheral device (PD): packet codec ([`osdp::packet`]), one module per
//!   command ([`osdp::command`]) and per reply ([`osdp::reply`]), the secure channel
//!   ([`osdp::secure`]), the I/O-free PD state machine ([`osdp::pd`]) and the serial task
//!   ([`osdp::serial`]).
//! - [`feedback`]: the reader's LED and buzzer as the panel commands them (OSDP `LED`/`BUZ`),
//!   as an I/O-free machine with injected time, and its rendering onto output pins.
//! - [`config`]: the `[panel]` configuration section: raw serde form, validation into
//!   [`config::PanelSettings`] with key/reason problems.
//! - [`output`]: [`output::PanelOutput`], what the gate calls after a decision.
#![forbid(unsafe_code)]

pub mod config;
pub mod credential;
pub mod credential_map;
pub mod feedback;
pub mod osdp;
pub mod output;
pub mod wiegand;

pub use credential::{Credential, CredentialError, WiegandBits, WiegandFormat};
pub use credential_map::{CredentialMap, MapEntry, MapError};
pub use output::{PanelError, PanelOutput};
