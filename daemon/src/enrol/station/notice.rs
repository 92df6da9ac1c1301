//! What the station tells the person at it ([`Notice`]), and the person behind the [`Operator`]
//! seam (the terminal in the CLI, a scripted person in tests).

use std::time::Duration;

use palmgate_card::protocol::SlotKind;
use palmgate_sensor::codec::SensorInfo;
use palmgate_sensor::device::DeviceError;

use super::{EnrolError, Verification};
use crate::enrol::{CaptureStep, ConsentMethod, Disagreement, Hand, MutualReport};
use crate::event::CardId;

/// What the station tells the person at it, in order.
#[derive(Debug)]
#[non_exhaustive]
pub enum Notice<'a> {
    /// A personalised card of this issuer was read.
    CardRead {
        /// Its id (hex).
        card_id: &'a str,
        /// Slots holding templates.
        slots_used: u8,
        /// Slots on the card.
        slot_capacity: u8,
    },
    /// A factory card was read: it will be personalised.
    FactoryCard,
    /// The sensor answered its handshake.
    SensorConnected(&'a SensorInfo),
    /// The sensor reported a problem; the station goes on.
    SensorProblem(&'a DeviceError),
    /// The sensor's connection is down; its link retries.
    SensorDisconnected {
        /// Why.
        error: &'a DeviceError,
        /// When the link tries again.
        retry_in: Duration,
    },
    /// A series of `wanted` captures of `hand` begins, or goes on with `wanted` more after
    /// `already` (an extra capture: its captures are numbered after those).
    SeriesStarted {
        /// The hand.
        hand: Hand,
        /// Captures wanted now.
        wanted: usize,
        /// Captures of this series accepted before (0 when it begins).
        already: usize,
    },
    /// A capture of a series was accepted or refused.
    Capture {
        /// The hand.
        hand: Hand,
        /// What became of it ([`CaptureStep::GaveUp`] ends the enrolment with a refusal).
        step: &'a CaptureStep,
    },
    /// The series of `hand` ended (complete or not).
    SeriesEnded {
        /// The hand.
        hand: Hand,
    },
    /// The captures of `hand` taken so far hold no `wanted` that all match each other: the
    /// station asks for one more (extra capture `extra` of `allowed`).
    SeriesDisagrees {
        /// The hand.
        hand: Hand,
        /// The pairs that do not match, with their distances.
        disagreement: &'a Disagreement,
        /// This extra capture's number (1-based).
        extra: usize,
        /// Extra captures allowed.
        allowed: usize,
    },
    /// The captures of `hand` match each other.
    SeriesAgree {
        /// The hand.
        hand: Hand,
        /// The pairwise distances and the reference capture.
        report: &'a MutualReport,
    },
    /// The factory card was personalised.
    Personalised {
        /// Its new id.
        card_id: &'a CardId,
    },
    /// The card's templates were erased; the receipt is kept.
    Erased {
        /// Slots erased.
        slots: u8,
        /// The receipt's file.
        receipt: &'a std::path::Path,
    },
    /// A slot was written.
    Enrolled {
        /// Its index.
        slot: usize,
        /// Its kind.
        kind: SlotKind,
    },
    /// The verification of `hand` begins: the person lifts the hand and presents it again.
    VerifyPresent {
        /// The hand.
        hand: Hand,
    },
    /// A verification capture was refused; another one is needed.
    VerifyCaptureRefused {
        /// The hand.
        hand: Hand,
        /// The matcher's reason.
        reason: &'a str,
        /// What the person should do.
        advice: &'static str,
    },
    /// What the card answered to the verification of `hand`.
    Verified {
        /// The hand.
        hand: Hand,
        /// The card's answer.
        verification: Verification,
    },
}

/// The person at the station: gives consent and hears the station's notices.
pub trait Operator {
    /// Shows the consent text (with its SHA-256) and returns how consent was given.
    ///
    /// # Errors
    /// [`Refusal::ConsentNotGiven`](super::Refusal::ConsentNotGiven) /
    /// [`Refusal::ConsentNotConfirmed`](super::Refusal::ConsentNotConfirmed), or the terminal
    /// failed.
    fn consent(&mut self, text: &str, sha256: &str) -> Result<ConsentMethod, EnrolError>;
    /// Shows one notice.
    fn notice(&mut self, notice: Notice<'_>);
}
