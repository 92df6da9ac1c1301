//! The enrolment station's safety ordering, over injected devices: a card behind any
//! [`CardTransport`] (PC/SC in the CLI, an in-process applet in tests), the sensor behind the
//! gate's [`SensorLink`] seam, the person at the station behind [`Operator`].
//!
//! Order of work, chosen so that a refusal at any step leaves the card as it was:
//! 1. read the card (refuse an enrolled card without `re_enrol`, or one of another issuer);
//! 2. get the person's consent ([`Operator::consent`]) before any capture;
//! 3. capture the hand(s) with live feedback; check the captures match each other (and that a
//!    duress hand differs from the normal one);
//! 4. only then write: personalise a factory card, record consent, erase (with `re_enrol`,
//!    keeping the signed receipt), enrol, reset the retry counter;
//! 5. verify each enrolled hand on the card with a fresh capture.
//!
//! Each capture comes from its own presentation of the hand ([`crate::enrol::presentation`]).
//! The audit log is the durable record; the same records come back as events, to publish
//! however the enrolment ends ([`Enrolment::events`]).

mod card_steps;
mod sensor;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use palmgate_card::host::issuer::{EnrolmentAuthority, IssuerKey, IssuerPublicKey};
use palmgate_card::host::{Card, CardError, CardTransport};
use palmgate_card::protocol::{Lifecycle, SlotKind};
use palmgate_matcher::compare::Threshold;
use palmgate_matcher::extract::{ExtractError, Extractor};
use palmgate_matcher::template::Template;
use palmgate_sensor::codec::SensorInfo;
use palmgate_sensor::device::DeviceError;

pub use self::card_steps::{Verification, kind_name};
pub use self::sensor::{SensorError, SensorOptions};
use self::sensor::{SensorNews, StationSensor};
use super::journal::{AuditLog, JournalError};
use super::{
    AuditRecord, CaptureLoop, CaptureStep, ConsentMethod, Disagreement, Hand, MutualReport,
    check_distinct, check_mutual, consent_hash,
};
use crate::event::{CardId, NewEvent, Timestamp};
use crate::gate::devices::SensorLink;

/// The issuer's keys the station needs: to personalise factory cards, check certificates and
/// prove the enrolment authority.
pub struct Issuer {
    /// Signs the certificate of a card being personalised.
    pub key: IssuerKey,
    /// Checks the card's certificate.
    pub public: IssuerPublicKey,
    /// Opens enrolment sessions.
    pub authority: EnrolmentAuthority,
    /// Where the issuer was read from (named in refusals).
    pub source: PathBuf,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What to enrol and how patiently.
#[derive(Debug, Clone)]
pub struct StationOptions {
    /// Accepted captures per hand; every pair must match.
    pub samples: usize,
    /// Also enrol the other hand into a duress slot.
    pub duress_hand: bool,
    /// Erase a card that already holds templates (keeping the signed receipt).
    pub re_enrol: bool,
    /// Refused captures allowed per hand before giving up.
    pub max_refused: usize,
    /// The consent text shown (its SHA-256 is recorded).
    pub consent_text: String,
    /// The card's match threshold, for the captures' mutual check.
    pub threshold: Threshold,
}

/// The sensor, not yet started: the station starts it once consent is given.
pub struct SensorSetup {
    /// The sensor's link (the serial sensor in the CLI).
    pub link: Box<dyn SensorLink>,
    /// Turns frames into templates.
    pub extractor: Arc<Extractor>,
    /// Name, patience and input kind.
    pub options: SensorOptions,
}

impl std::fmt::Debug for SensorSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SensorSetup")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

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
    /// A series of `wanted` captures of `hand` begins.
    SeriesStarted {
        /// The hand.
        hand: Hand,
        /// Captures wanted.
        wanted: usize,
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
    /// [`Refusal::ConsentNotGiven`] / [`Refusal::ConsentNotConfirmed`], or the terminal failed.
    fn consent(&mut self, text: &str, sha256: &str) -> Result<ConsentMethod, EnrolError>;
    /// Shows one notice.
    fn notice(&mut self, notice: Notice<'_>);
}

/// Why the station stopped without writing, or wrote but could not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The card's certificate is not of this issuer.
    #[error(
        "the card's certificate does not verify against the issuer in {} ({source}): a card of \
         another site, or a forged one",
        .issuer.display()
    )]
    ForeignCard {
        /// The issuer's directory.
        issuer: PathBuf,
        /// Why the certificate was refused.
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
    fn card(doing: &'static str) -> impl FnOnce(CardError) -> Self {
        move |source| Self::Card { doing, source }
    }
}

/// How an enrolment ended, and the events to publish however it ended.
#[derive(Debug)]
pub struct Enrolment {
    /// The card enrolled and verified, or why not.
    pub result: Result<CardId, EnrolError>,
    /// `enrol.consent`, `card.erased`, `enrol.completed` as far as they happened (the audit log
    /// holds the same records).
    pub events: Vec<NewEvent>,
}

/// Runs one enrolment on the card behind `transport` (see the module's order of work).
pub fn enrol<T: CardTransport>(
    transport: T,
    issuer: &Issuer,
    options: &StationOptions,
    sensor: SensorSetup,
    audit: &mut AuditLog,
    operator: &mut dyn Operator,
) -> Enrolment {
    let mut events = Vec::new();
    let result = run(
        transport,
        issuer,
        options,
        sensor,
        audit,
        operator,
        &mut events,
    );
    Enrolment { result, events }
}

fn run<T: CardTransport>(
    transport: T,
    issuer: &Issuer,
    options: &StationOptions,
    sensor: SensorSetup,
    audit: &mut AuditLog,
    operator: &mut dyn Operator,
    events: &mut Vec<NewEvent>,
) -> Result<CardId, EnrolError> {
    // 1. The card.
    let mut card =
        Card::open(transport).map_err(EnrolError::card("selecting the palmgate applet"))?;
    let identity = *card.identity();
    let mut verified = None;
    if identity.lifecycle == Lifecycle::Personalised {
        let checked = match card.verify_certificate(&[issuer.public]) {
            Ok(checked) => checked,
            Err(source @ (CardError::Certificate(_) | CardError::CardIdMismatch)) => {
                return Err(Refusal::ForeignCard {
                    issuer: issuer.source.clone(),
                    source,
                }
                .into());
            }
            Err(source) => return Err(EnrolError::card("reading the card")(source)),
        };
        let card_id = hex::encode(checked.card_id);
        operator.notice(Notice::CardRead {
            card_id: &card_id,
            slots_used: identity.slots_used,
            slot_capacity: identity.slot_capacity,
        });
        if identity.slots_used > 0 && !options.re_enrol {
            return Err(Refusal::AlreadyEnrolled {
                card_id,
                slots_used: identity.slots_used,
            }
            .into());
        }
        verified = Some(checked);
    } else {
        operator.notice(Notice::FactoryCard);
    }
    let hands_needed = if options.duress_hand { 2 } else { 1 };
    if usize::from(identity.slot_capacity) < hands_needed {
        return Err(Refusal::TooFewSlots {
            capacity: identity.slot_capacity,
            needed: hands_needed,
        }
        .into());
    }

    // 2. Consent, before any capture.
    let consent_sha256 = consent_hash(&options.consent_text);
    let method = operator.consent(&options.consent_text, &consent_sha256)?;
    let consent_time = Timestamp::now();

    // 3. Captures.
    let mut station = Capturing::start(sensor, options, operator)?;
    let normal = station.series(Hand::Normal)?;
    let normal_report = check_mutual(&normal, options.threshold).map_err(Refusal::from)?;
    station.operator.notice(Notice::SeriesAgree {
        hand: Hand::Normal,
        report: &normal_report,
    });
    let duress = if options.duress_hand {
        let duress = station.series(Hand::Duress)?;
        let report = check_mutual(&duress, options.threshold).map_err(Refusal::from)?;
        check_distinct(&normal, &duress, options.threshold).map_err(Refusal::from)?;
        station.operator.notice(Notice::SeriesAgree {
            hand: Hand::Duress,
            report: &report,
        });
        Some((duress, report.reference))
    } else {
        None
    };
    let mut slots = vec![(SlotKind::Normal, &normal[normal_report.reference])];
    if let Some((duress, reference)) = &duress {
        slots.push((SlotKind::Duress, &duress[*reference]));
    }

    // 4. Write to the card (the station keeps watching the hand meanwhile).
    station.sensor.watch();
    let personalised = verified.is_none();
    let verified = match verified {
        Some(verified) => verified,
        None => {
            card.personalise(&issuer.key)
                .map_err(EnrolError::card("personalising the card"))?;
            card.verify_certificate(&[issuer.public])
                .map_err(EnrolError::card("checking the new card certificate"))?
        }
    };
    let card_id = CardId::new(&verified.card_id).ok_or(EnrolError::CardId)?;
    if personalised {
        station
            .operator
            .notice(Notice::Personalised { card_id: &card_id });
    }
    audit.append(&AuditRecord::Consent {
        time: consent_time,
        card_id: card_id.clone(),
        consent_text_sha256: consent_sha256.clone(),
        method,
        duress_hand: options.duress_hand,
    })?;
    events.push(card_steps::consent_event(
        consent_time,
        &card_id,
        &consent_sha256,
        method,
    ));
    // From here on the events are the caller's to publish however the enrolment ends: a consent
    // given or a card erased is news for the facility even when enrolment fails later.
    let mut writer = card_steps::Writer {
        card: &mut card,
        verified: &verified,
        authority: &issuer.authority,
        card_id: &card_id,
    };
    if writer.slots_used()? > 0 {
        if !options.re_enrol {
            return Err(Refusal::GainedTemplates { card_id }.into());
        }
        events.push(writer.erase(audit, station.operator)?);
    }
    writer.enrol(&slots)?;
    for (slot, (kind, _)) in slots.iter().enumerate() {
        station
            .operator
            .notice(Notice::Enrolled { slot, kind: *kind });
    }

    // 5. Verify with fresh captures. The card now holds templates: its completion is recorded
    // (verified or not) before any verification error is passed on.
    let kinds: Vec<SlotKind> = slots.iter().map(|(kind, _)| *kind).collect();
    let verification = station.verify(&mut writer, &kinds);
    let all_matched = matches!(verification, Ok(true));
    station.sensor.stop();
    let (completed, completed_event) =
        card_steps::completed(&card_id, personalised, &kinds, all_matched);
    audit.append(&completed)?;
    events.push(completed_event);
    if !verification? {
        return Err(Refusal::NotVerified { card_id }.into());
    }
    Ok(card_id)
}

/// The capture steps: the started sensor and the person hearing about each capture.
struct Capturing<'o> {
    sensor: StationSensor,
    operator: &'o mut dyn Operator,
    samples: usize,
    max_refused: usize,
}

impl<'o> Capturing<'o> {
    fn start(
        setup: SensorSetup,
        options: &StationOptions,
        operator: &'o mut dyn Operator,
    ) -> Result<Self, EnrolError> {
        let (sensor, info) =
            StationSensor::start(setup.link, setup.extractor, setup.options, &mut |news| {
                tell(&mut *operator, news)
            })?;
        operator.notice(Notice::SensorConnected(&info));
        Ok(Self {
            sensor,
            operator,
            samples: options.samples,
            max_refused: options.max_refused,
        })
    }

    /// Offers the next admitted capture to `captures`, and tells the presentation filter what
    /// became of it.
    fn offer_next(&mut self, captures: &mut CaptureLoop) -> Result<CaptureStep, EnrolError> {
        let operator = &mut *self.operator;
        let capture = self
            .sensor
            .next_capture(&mut |news| tell(&mut *operator, news))?;
        let step = captures
            .offer(capture.extraction)
            .map_err(EnrolError::Extraction)?;
        match step {
            CaptureStep::Accepted { .. } => self.sensor.presentations.accepted(),
            CaptureStep::Refused { .. } | CaptureStep::GaveUp { .. } => {
                self.sensor.presentations.refused(capture.received);
            }
        }
        Ok(step)
    }

    /// The accepted captures of one series of `hand`.
    fn series(&mut self, hand: Hand) -> Result<Vec<Template>, EnrolError> {
        let mut captures = CaptureLoop::new(self.samples, self.max_refused);
        self.operator.notice(Notice::SeriesStarted {
            hand,
            wanted: self.samples,
        });
        let ended = loop {
            if captures.is_complete() {
                break Ok(());
            }
            let step = match self.offer_next(&mut captures) {
                Ok(step) => step,
                Err(error) => break Err(error),
            };
            self.operator.notice(Notice::Capture { hand, step: &step });
            if let CaptureStep::GaveUp {
                refused,
                last_reason,
            } = step
            {
                break Err(Refusal::CapturesRefused {
                    hand,
                    refused,
                    last_reason,
                }
                .into());
            }
        };
        self.operator.notice(Notice::SeriesEnded { hand });
        ended.map(|()| captures.into_templates())
    }

    /// One accepted capture of `hand` (for the final verification).
    fn one(&mut self, hand: Hand) -> Result<Template, EnrolError> {
        let mut captures = CaptureLoop::new(1, self.max_refused);
        while !captures.is_complete() {
            match self.offer_next(&mut captures)? {
                CaptureStep::Accepted { .. } => {}
                CaptureStep::Refused { reason, advice, .. } => {
                    self.operator.notice(Notice::VerifyCaptureRefused {
                        hand,
                        reason: &reason,
                        advice,
                    });
                }
                CaptureStep::GaveUp { refused, .. } => {
                    return Err(Refusal::VerificationCapturesRefused { refused }.into());
                }
            }
        }
        captures
            .into_templates()
            .pop()
            .ok_or(EnrolError::Sensor(SensorError::TaskStopped))
    }

    /// Verifies each enrolled slot (slot 0 the normal hand, slot 1 the duress hand) with a fresh
    /// capture; whether every one matched its own slot.
    fn verify<T: CardTransport>(
        &mut self,
        writer: &mut card_steps::Writer<'_, T>,
        kinds: &[SlotKind],
    ) -> Result<bool, EnrolError> {
        // Frames from here on are the verification's: the watch ends before the person is asked.
        let operator = &mut *self.operator;
        self.sensor
            .end_watch(&mut |news| tell(&mut *operator, news))?;
        let mut all_matched = true;
        for (&kind, hand) in kinds.iter().zip([Hand::Normal, Hand::Duress]) {
            self.operator.notice(Notice::VerifyPresent { hand });
            let probe = self.one(hand)?;
            let verification = writer.verify(&probe, kind)?;
            all_matched &= verification == Verification::Match;
            self.operator
                .notice(Notice::Verified { hand, verification });
        }
        Ok(all_matched)
    }
}

/// Passes what the sensor reported on to the person at the station.
fn tell(operator: &mut dyn Operator, news: SensorNews) {
    match news {
        SensorNews::Problem(error) => operator.notice(Notice::SensorProblem(&error)),
        SensorNews::Disconnected { error, retry_in } => {
            operator.notice(Notice::SensorDisconnected {
                error: &error,
                retry_in,
            });
        }
    }
}
