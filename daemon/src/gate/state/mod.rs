//! The gate's durable state: what must survive a restart, each file written through the one
//! atomic replacement in [`durable`].
//!
//! # Layout
//! - [`durable`]: `replace_file` (temporary file, fsync, rename, directory fsync).
//! - [`revocation`]: the versioned revocation list (read at start-up and on reload, replaced by a
//!   signed command or `palmgate revoke`).
//! - [`lockdown`]: the doors in lockdown (a restart must not lift a lockdown).
//! - [`unconfirmed_meals`]: the cards whose answer to a meal was lost here (a restart must not lose
//!   the meal's receipt).

pub mod durable;
pub mod lockdown;
pub mod revocation;
pub mod unconfirmed_meals;
