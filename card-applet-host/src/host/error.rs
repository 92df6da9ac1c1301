//! Host-side errors.

use crate::protocol::StatusWord;
use crate::protocol::cert::CertError;

/// A transport could not exchange an APDU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The PC/SC layer failed.
    #[error("PC/SC error")]
    Pcsc(#[from] pcsc::Error),
    /// The card was removed (or reset) during the exchange.
    #[error("the card was removed or reset")]
    CardRemoved,
    /// No reader name contains the pattern.
    #[error("no PC/SC reader matches {pattern:?} (readers: {available})")]
    NoReader {
        /// The pattern asked for.
        pattern: String,
        /// The readers that exist, comma separated.
        available: String,
    },
    /// The reader has no card.
    #[error("no card in reader {reader:?}")]
    NoCard {
        /// Reader name.
        reader: String,
    },
    /// The card answered fewer than two bytes.
    #[error("card response shorter than a status word")]
    ShortResponse,
    /// I/O error of a socket or file transport.
    #[error("transport I/O error")]
    Io(#[from] std::io::Error),
}

/// An operation with the card failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    /// The transport failed.
    #[error("card transport failed")]
    Transport(#[from] TransportError),
    /// The card refused a command.
    #[error("{command} refused by the card with status {status}")]
    Status {
        /// Command name.
        command: &'static str,
        /// Status word received.
        status: StatusWord,
    },
    /// The card's answer does not have the expected form.
    #[error("{command}: malformed response from the card ({reason})")]
    MalformedResponse {
        /// Command name.
        command: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The card's certificate was refused.
    #[error("card certificate refused")]
    Certificate(#[source] CertError),
    /// A secure-session message did not authenticate: the card does not hold the certified key,
    /// or a message was tampered with, replayed or reordered. The session is closed.
    #[error(
        "secure session authentication failed (not the certified card, or a tampered/replayed message); session closed"
    )]
    Authentication,
    /// The session was closed earlier (after an authentication failure or a card error).
    #[error("secure session is closed")]
    SessionClosed,
    /// The card is not in the life-cycle state the operation needs.
    #[error("card is in the {actual:?} state; {operation} needs {expected:?}")]
    Lifecycle {
        /// Operation attempted.
        operation: &'static str,
        /// State needed.
        expected: crate::protocol::Lifecycle,
        /// State of the card.
        actual: crate::protocol::Lifecycle,
    },
    /// The certificate names another card than the one answering.
    #[error("certificate card id does not match the card's identity")]
    CardIdMismatch,
    /// A template could not be used.
    #[error("template refused: {0}")]
    Template(palmgate_matcher::template::TemplateError),
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}
