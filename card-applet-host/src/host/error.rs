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
    /// The card's applet predates the operation: nothing was sent to it.
    #[error(
        "{operation} needs applet {}.{} or later; this card runs applet {}.{} (nothing was sent to it)",
        required.0, required.1, actual.0, actual.1
    )]
    AppletTooOld {
        /// Operation attempted.
        operation: &'static str,
        /// The first applet version that has it.
        required: (u8, u8),
        /// The card's applet version.
        actual: (u8, u8),
    },
    /// An argument is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A VERIFY PALM probe of no pose or more than the card compares: nothing was sent.
    #[error(
        "VERIFY PALM carries 1 to {max} probe poses; {given} given",
        max = crate::protocol::MAX_PROBE_POSES
    )]
    ProbePoses {
        /// The number of poses given.
        given: usize,
    },
    /// ENROL would give a hand (or the duress hand) a fourth template (`6A84`, applet 1.8): the
    /// thresholds are calibrated for one to three. Nothing was written.
    #[error(
        "ENROL refused by the card (6A84): a hand holds at most three templates, the most its \
         thresholds are calibrated for; nothing was written"
    )]
    TooManyTemplates,
    /// ENROL of a duress template on a card holding no template of the hand (`6985`, applet
    /// 1.8). Nothing was written.
    #[error(
        "ENROL refused by the card (6985): a duress template needs the hand's templates beside \
         it (or the card is not in a state that takes templates); nothing was written"
    )]
    DuressWithoutHand,
    /// The card refused REDEEM MEAL (an allowance used up is an outcome, not an error).
    #[error("meal refused by the card")]
    MealRefused(#[from] MealRefusal),
    /// The card answered REDEEM MEAL or GET RECEIPT with a meal receipt that does not check
    /// out (its card id or signature): no meal is served on it.
    #[error("{command}: the card's meal receipt does not check")]
    MealReceipt {
        /// Command name.
        command: &'static str,
        /// What is wrong.
        #[source]
        source: MealReceiptError,
    },
}

/// Why a card refused REDEEM MEAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MealRefusal {
    /// No palm matched in this session (or its match already served a meal): verify first.
    #[error("no palm match in this session (one match serves at most one meal)")]
    NoPalmMatch,
    /// The request's period is older than the last one the card served: counters never go
    /// back (is the gate's clock behind?).
    #[error(
        "the card already served period {card_period}, later than the one asked for (is the gate's clock behind?)"
    )]
    PeriodBehindCard {
        /// The card's last period.
        card_period: u32,
    },
    /// The card's receipt counter reached its end: it can issue no more meal receipts.
    #[error("the card's meal receipt counter is exhausted")]
    ReceiptCounterExhausted,
}

/// A meal receipt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MealReceiptError {
    /// Not a meal receipt (length, magic, version).
    #[error("not a meal receipt ({0})")]
    Malformed(&'static str),
    /// The card certificate is not from a configured issuer, or its signature fails.
    #[error("card certificate refused")]
    Certificate(#[source] CertError),
    /// The card signature does not verify: forged or altered.
    #[error("the card signature does not verify (forged or altered receipt)")]
    Signature(#[source] CertError),
    /// The receipt names another card than the certificate.
    #[error("the receipt names another card than its certificate")]
    CardIdMismatch,
}

/// A verified meal receipt was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The same receipt (card id, counter and signed content) was accepted before.
    #[error(
        "replayed: receipt {receipt_counter} of card {} was accepted before",
        hex::encode(card_id)
    )]
    Replayed {
        /// Card id.
        card_id: [u8; crate::protocol::CARD_ID_LEN],
        /// Its receipt counter.
        receipt_counter: u32,
    },
    /// Another receipt with the same card id and counter was accepted before: a card never
    /// repeats a counter, so its key is in other hands.
    #[error(
        "card {} signed two different receipts with counter {receipt_counter}: its key is compromised",
        hex::encode(card_id)
    )]
    CounterReused {
        /// Card id.
        card_id: [u8; crate::protocol::CARD_ID_LEN],
        /// The repeated counter.
        receipt_counter: u32,
    },
}
