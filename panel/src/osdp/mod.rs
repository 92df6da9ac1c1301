//! OSDP (SIA OSDP 2.2 / IEC 60839-11-5) peripheral device: the gate as a reader on a panel's
//! RS-485 bus.
//!
//! Our own codec rather than the `libosdp` bindings or the pure-Rust `osdp` crate: the bindings
//! would bring the same C library that the system tests use as the independent counterpart (the
//! test would then check libosdp against itself) and `unsafe` FFI into a crate that forbids it;
//! the `osdp` crate is young and covers neither the PD role we need nor install mode. The subset a
//! reader needs is small, and every byte of it is here with vectors.
//!
//! # Layout
//! - [`packet`]: framing (mark, SOM, address, length, control, security block, CRC-16 or
//!   checksum, MAC slot) and the byte-stream [`packet::Deframer`].
//! - [`command`]: one module per command the PD understands; [`command::Command`] decodes them.
//! - [`reply`]: one module per reply the PD sends; [`reply::Reply`] encodes them.
//! - [`secure`]: the secure channel: SCBK / SCBK-D, session keys, cryptograms, MAC chain, data
//!   encryption.
//! - [`pd`]: the I/O-free PD machine: packets in, reply bytes and [`pd::PdEvent`]s out.
//! - [`serial`]: the async task that runs a [`pd::Pd`] over a serial port (tokio-serial) or any
//!   byte stream.

pub mod command;
pub mod packet;
pub mod pd;
pub mod reply;
pub mod secure;
pub mod serial;

/// NAK reasons (osdp_NAK error codes).
pub mod nak {
    /// Message check character(s) error (bad CRC or checksum).
    pub const MESSAGE_CHECK: u8 = 0x01;
    /// Command length error.
    pub const COMMAND_LENGTH: u8 = 0x02;
    /// Unknown command code.
    pub const UNKNOWN_COMMAND: u8 = 0x03;
    /// Sequence number error.
    pub const SEQUENCE: u8 = 0x04;
    /// Security block type not supported.
    pub const SECURITY_UNSUPPORTED: u8 = 0x05;
    /// Encrypted communication required / security conditions not met.
    pub const SECURITY_CONDITIONS: u8 = 0x06;
    /// Unable to process the command record.
    pub const RECORD: u8 = 0x09;
}
