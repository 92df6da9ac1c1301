//! The enrolment station: its decisions without I/O (which captures are accepted and what to tell
//! the person when one is not, whether the captures of one hand agree with each other, which
//! capture becomes the enrolled template, the audit records), and the station's order of work
//! over injected devices.
//!
//! # Layout
//! - [`capture`]: the capture loop as a state machine: extraction results in, "accepted k of N" /
//!   "refused: reason, advice" / "gave up" out.
//! - [`presentation`]: one capture per presentation of the hand (the next capture waits for the
//!   hand to be lifted), and a short pause after a refused capture.
//! - [`consistency`]: every pair of captures of one hand must match under the card's threshold;
//!   the enrolled template is the medoid capture; a duress hand must not match the normal hand.
//! - [`audit`]: the consent text and its hash, the consent answer, and the JSON audit lines
//!   (`enrol.consent`, `card.erased`, `enrol.completed`): never biometric data.
//! - [`journal`]: the audit log file (0600, each line synced) and the kept deletion receipts.
//! - [`station`]: [`station::enrol`], the safety ordering (card read, consent, captures,
//!   writes, verification) over a `CardTransport`, the gate's `SensorLink` and an [`Operator`].
//!
//! The `palmgate enrol` command (`src/cli/enrol.rs`) only builds the real devices (PC/SC, the
//! serial sensor) and renders the station's notices on the terminal.

pub mod audit;
pub mod capture;
pub mod consistency;
pub mod journal;
pub mod presentation;
pub mod station;

pub use audit::{AuditRecord, ConsentMethod, DEFAULT_CONSENT_TEXT, consent_answer, consent_hash};
pub use capture::{CaptureLoop, CaptureStep, Hand};
pub use consistency::{
    Disagreement, MutualReport, PairDistance, agreeing, check_distinct, check_mutual,
    check_mutual_numbered, disagreeing,
};
pub use journal::{AuditLog, JournalError};
pub use presentation::{PresentationFilter, Skip};
pub use station::{
    EnrolError, Enrolment, Issuer, Notice, Operator, Refusal, SensorSetup, StationOptions,
    Verification, enrol,
};
