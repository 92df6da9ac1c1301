//! Commands (CP → PD), one module each.

pub use buz::BuzzerCommand;
pub use cap::Capabilities;
pub use chlng::Challenge;
pub use comset::ComSet;
pub use id::IdReport;
pub use istat::InputStatus;
pub use keyset::KeySet;
pub use led::{Color, LedCommand, LedPattern, Temporary};
pub use lstat::LocalStatus;
pub use poll::Poll;
pub use scrypt::ServerCryptogram;

/// Why a command cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The data has the wrong length for the command.
    #[error("command 0x{code:02X}: {len} data bytes is not a valid length")]
    Length {
        /// Command code.
        code: u8,
        /// Data bytes received.
        len: usize,
    },
    /// The command is understood but this variant is not supported.
    #[error("command 0x{code:02X}: unsupported ({what})")]
    Unsupported {
        /// Command code.
        code: u8,
        /// What is supported.
        what: &'static str,
    },
    /// This PD does not know the command.
    #[error("unknown command 0x{0:02X}")]
    Unknown(u8),
}

/// A command with no data: `$name` decodes from empty data only.
macro_rules! no_data_command {
    ($(#[$doc:meta])* $name:ident, $code:expr) => {
        /// Command code.
        pub const CODE: u8 = $code;

        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;

        impl $name {
            /// Decodes the data after the code (there must be none).
            pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
                super::expect_len(CODE, data, 0)?;
                Ok(Self)
            }

            /// The data after the code: none.
            pub fn encode(&self) -> Vec<u8> {
                Vec::new()
            }
        }
    };
}

/// A command whose one data byte is the requested reply type (0x00: standard).
macro_rules! reply_type_command {
    ($(#[$doc:meta])* $name:ident, $code:expr) => {
        /// Command code.
        pub const CODE: u8 = $code;

        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name {
            /// The requested reply type (0x00: standard).
            pub reply_type: u8,
        }

        impl $name {
            /// Decodes the data after the code.
            pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
                super::expect_len(CODE, data, 1)?;
                Ok(Self {
                    reply_type: data[0],
                })
            }

            /// The data after the code.
            pub fn encode(&self) -> Vec<u8> {
                vec![self.reply_type]
            }
        }
    };
}
use {no_data_command, reply_type_command};

pub mod buz;
pub mod cap;
pub mod chlng;
pub mod comset;
pub mod id;
pub mod istat;
pub mod keyset;
pub mod led;
pub mod lstat;
pub mod poll;
pub mod scrypt;

pub(crate) fn expect_len(code: u8, data: &[u8], len: usize) -> Result<(), CommandError> {
    if data.len() == len {
        Ok(())
    } else {
        Err(CommandError::Length {
            code,
            len: data.len(),
        })
    }
}

/// A decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `osdp_POLL`.
    Poll(Poll),
    /// `osdp_ID`.
    Id(IdReport),
    /// `osdp_CAP`.
    Cap(Capabilities),
    /// `osdp_LSTAT`.
    LocalStatus(LocalStatus),
    /// `osdp_ISTAT`.
    InputStatus(InputStatus),
    /// `osdp_LED`.
    Led(Vec<LedCommand>),
    /// `osdp_BUZ`.
    Buzzer(Vec<BuzzerCommand>),
    /// `osdp_COMSET`.
    ComSet(ComSet),
    /// `osdp_KEYSET`.
    KeySet(KeySet),
    /// `osdp_CHLNG`.
    Challenge(Challenge),
    /// `osdp_SCRYPT`.
    ServerCryptogram(ServerCryptogram),
}

impl Command {
    /// Decodes a command from its code and (plain) data.
    pub fn decode(code: u8, data: &[u8]) -> Result<Self, CommandError> {
        Ok(match code {
            poll::CODE => Self::Poll(Poll::decode(data)?),
            id::CODE => Self::Id(IdReport::decode(data)?),
            cap::CODE => Self::Cap(Capabilities::decode(data)?),
            lstat::CODE => Self::LocalStatus(LocalStatus::decode(data)?),
            istat::CODE => Self::InputStatus(InputStatus::decode(data)?),
            led::CODE => Self::Led(LedCommand::decode_all(data)?),
            buz::CODE => Self::Buzzer(BuzzerCommand::decode_all(data)?),
            comset::CODE => Self::ComSet(ComSet::decode(data)?),
            keyset::CODE => Self::KeySet(KeySet::decode(data)?),
            chlng::CODE => Self::Challenge(Challenge::decode(data)?),
            scrypt::CODE => Self::ServerCryptogram(ServerCryptogram::decode(data)?),
            other => return Err(CommandError::Unknown(other)),
        })
    }

    /// Its code and data (the CP side, for tests and tools).
    pub fn encode(&self) -> (u8, Vec<u8>) {
        match self {
            Self::Poll(c) => (poll::CODE, c.encode()),
            Self::Id(c) => (id::CODE, c.encode()),
            Self::Cap(c) => (cap::CODE, c.encode()),
            Self::LocalStatus(c) => (lstat::CODE, c.encode()),
            Self::InputStatus(c) => (istat::CODE, c.encode()),
            Self::Led(records) => (
                led::CODE,
                records.iter().flat_map(LedCommand::encode).collect(),
            ),
            Self::Buzzer(records) => (
                buz::CODE,
                records.iter().flat_map(BuzzerCommand::encode).collect(),
            ),
            Self::ComSet(c) => (comset::CODE, c.encode()),
            Self::KeySet(c) => (keyset::CODE, c.encode()),
            Self::Challenge(c) => (chlng::CODE, c.encode()),
            Self::ServerCryptogram(c) => (scrypt::CODE, c.encode()),
        }
    }
}
