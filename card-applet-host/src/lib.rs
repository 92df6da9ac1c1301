//! palmgate-card: the match-on-card applet, its host client, transports and the virtual card.
//!
//! # Layout
//! - [`protocol`]: every byte on the wire (`no_std`): AID, instructions, status words, the APDU
//!   parser, certificate / receipt / identity formats, the secure-session key schedule.
//! - [`applet`]: the card program (`no_std`, no heap): `Applet::process(command, response) -> StatusWord`,
//!   with storage, randomness and clock behind traits.
//! - `host` (feature `host`): the client: `CardTransport` (one `transmit`), APDU exchange
//!   (chaining, GET RESPONSE, extended length), one typed struct per command, the high-level
//!   [`host::Card`] / [`host::SecureSession`] / [`host::EnrolmentSession`] API, issuer tooling,
//!   the PC/SC transport and card monitor, the vpcd loop of `palmgate-vcard`, and
//!   `host::file::replace_file` (a file replaced whole: the virtual card's state, and the
//!   gate's and the panel link's files, whose crates build on this one).
//!
//! See `docs/applet-protocol.md` for the protocol byte by byte.
#![cfg_attr(not(feature = "host"), no_std)]
#![forbid(unsafe_code)]

pub mod applet;
#[cfg(feature = "host")]
pub mod host;
pub mod protocol;
