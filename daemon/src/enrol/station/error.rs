//! Why an enrolment stopped: a [`Refusal`] for the operator (nothing written, or written but not
//! verified) or an [`EnrolError`].

use std::path::PathBuf;

use palmgate_card::host::CardError;
use palmgate_matcher::extract::ExtractError;

use super::SensorError;
use crate::enrol::journal::JournalError;
use crate::enrol::{Disagreement, Hand};
use crate::event::CardId;

/// Why the station stopped without writing, or wrote but could not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The card's certificate is not of this issuer.
    #[error(
        "the card's certificate does not verify against the issuer in {}: a card of another \
         site, or a forged one",
        .issuer.display()
    )]
    ForeignCard {
        /// The issuer's directory.
        issuer: PathBuf,
        /// Why the certificate was refused (the `source()`; a printed chain says it).
        #[source]
        source: CardError,
    },
    /// The card holds templates and re-enrolment was not asked for.
    #[error(
        "card {card_id} already has {slots_used} enrolled template(s); pass --re-enrol to erase \
         them (with a signed deletion receipt) and enrol again"
    )]
    AlreadyEnrolled {
        /// The card (hex).
        card_id: String,
        /// Its templates.
        slots_used: u8,
    },
    /// A profile floor was asked for and the card's applet keeps none.
    #[error(
        "the card's applet {major}.{minor} keeps no profile floor (applet 1.5 and later do): \
         enrol without --profile-floor, or use a newer card; nothing was captured or written"
    )]
    NoProfileFloor {
        /// Applet major version.
        major: u8,
        /// Applet minor version.
        minor: u8,
    },
    /// The card has fewer slots than hands to enrol.
    #[error("the card has {capacity} slot(s); {needed} are needed")]
    TooFewSlots {
        /// Slots on the card.
        capacity: u8,
        /// Hands to enrol.
        needed: usize,
    },
    /// No terminal to ask for consent on, and no confirmation given.
    #[error(
        "consent not confirmed: no terminal to ask on; once the person has read the consent text \
         and agreed, pass --consent-confirmed"
    )]
    ConsentNotConfirmed,
    /// The person did not consent.
    #[error("consent not given: nothing was captured or written")]
    ConsentNotGiven,
    /// The captures do not agree (or the duress hand matches the normal one).
    #[error(transparent)]
    Disagreement(#[from] Disagreement),
    /// Too many captures of a series were refused.
    #[error(
        "{refused} {hand} captures refused (last: {last_reason}); nothing was written to the card"
    )]
    CapturesRefused {
        /// The hand.
        hand: Hand,
        /// Refused captures.
        refused: usize,
        /// The last reason.
        last_reason: String,
    },
    /// Templates appeared on the card between reading it and writing it.
    #[error("card {card_id} gained templates during enrolment; nothing was written")]
    GainedTemplates {
        /// The card.
        card_id: CardId,
    },
    /// Too many verification captures were refused.
    #[error(
        "{refused} verification captures refused; the card is enrolled but not verified: check it \
         with `palmgate card verify`"
    )]
    VerificationCapturesRefused {
        /// Refused captures.
        refused: usize,
    },
    /// The card is enrolled but a verification did not match its own slot.
    #[error(
        "card {card_id} is enrolled but the verification capture did not match: check with \
         `palmgate card verify`, or enrol again with --re-enrol"
    )]
    NotVerified {
        /// The card.
        card_id: CardId,
    },
}

/// Why an enrolment ended without an enrolled, verified card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrolError {
    /// A refusal: the reason is for the operator.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A card operation failed.
    #[error("{doing}")]
    Card {
        /// What the station was doing.
        doing: &'static str,
        /// Why.
        #[source]
        source: CardError,
    },
    /// The card's id is not a valid card id.
    #[error("the card's id is not valid")]
    CardId,
    /// The sensor failed.
    #[error(transparent)]
    Sensor(#[from] SensorError),
    /// The feature model failed (not the capture's fault).
    #[error("template extraction")]
    Extraction(#[source] ExtractError),
    /// The audit log or a receipt was not written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The `card.erased` event could not be made.
    #[error("the card.erased event")]
    Event(#[source] crate::station::StationError),
    /// The operator's terminal failed.
    #[error("{doing}")]
    Operator {
        /// What the station was doing.
        doing: &'static str,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl EnrolError {
    pub(super) fn card(doing: &'static str) -> impl FnOnce(CardError) -> Self {
        move |source| Self::Card { doing, source }
    }
}
