//! The enrolment station's safety ordering, over injected devices: a card behind any
//! [`CardTransport`] (PC/SC in the CLI, an in-process applet in tests), the sensor behind the
//! gate's [`SensorLink`] seam, the person at the station behind [`Operator`].
//!
//! Order of work, chosen so that a refusal at any step leaves the card as it was:
//! 1. read the card (refuse an enrolled card without `re_enrol`, or one of another issuer);
//! 2. get the person's consent ([`Operator::consent`]) before any capture;
//! 3. capture the hand(s) with live feedback, each capture at its kind's poses; check the
//!    captures match each other as a card compares a probe (and that a duress hand differs from
//!    the normal one);
//! 4. only then write: personalise a factory card, record consent, erase (with `re_enrol`,
//!    keeping the signed receipt), enrol, reset the retry counter;
//! 5. verify each enrolled hand on the card with a fresh capture.
//!
//! Each capture comes from its own presentation of the hand ([`crate::enrol::presentation`]).
//! While the card is written the capture is paused once the last capture's hand is lifted; no
//! presentation the sensor served is dropped, so none is lost to the write.
//! The audit log is the durable record; the same records come back as events, to publish
//! however the enrolment ends ([`Enrolment::events`]).

mod card_steps;
mod error;
mod notice;
mod sensor;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use palmgate_card::host::issuer::{EnrolmentAuthority, IssuerKey, IssuerPublicKey};
use palmgate_card::host::{Card, CardError, CardTransport};
use palmgate_card::protocol::{Lifecycle, SlotKind};
use palmgate_matcher::Profile;
use palmgate_matcher::compare::Threshold;
use palmgate_matcher::extract::{Extractor, probe_poses};
use palmgate_matcher::profile::MAX_ENROLLED_TEMPLATES;
use palmgate_matcher::template::Template;

pub use self::card_steps::{Verification, kind_name};
pub use self::error::{EnrolError, Refusal};
pub use self::notice::{Notice, Operator};
pub use self::sensor::{SensorError, SensorOptions};
use self::sensor::{SensorNews, StationSensor};
use super::journal::AuditLog;
use super::{
    AuditRecord, CaptureLoop, CaptureStep, Hand, MutualReport, agreeing, check_distinct,
    check_mutual_numbered, consent_hash, disagreeing,
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
    /// Captures the station may ask for beyond `samples` when a hand's captures do not all match
    /// each other; it then enrols `samples` of them that do (0: refuse at once).
    pub extra_captures: usize,
    /// The consent text shown (its SHA-256 is recorded).
    pub consent_text: String,
    /// The gates' security profile: the captures of a hand must match each other under its
    /// one-template threshold, and the verification after writing uses it.
    pub profile: Profile,
    /// The weakest profile the card will apply whatever a gate asks (written with the templates,
    /// cleared by an erase); `None` writes none, and the card applies each gate's profile.
    pub profile_floor: Option<Profile>,
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

    // A floor the card cannot keep is refused before anything is captured, erased or written.
    if options.profile_floor.is_some() && !card.keeps_profile_floor() {
        let (major, minor) = identity.applet_version;
        return Err(Refusal::NoProfileFloor { major, minor }.into());
    }

    // 2. Consent, before any capture.
    let consent_sha256 = consent_hash(&options.consent_text);
    let method = operator.consent(&options.consent_text, &consent_sha256)?;
    let consent_time = Timestamp::now();

    // 3. Captures, compared as a card compares a probe (the later capture at its kind's poses
    // against the earlier as found): the profile's one-template threshold for that many poses.
    let threshold = options
        .profile
        .threshold(1, probe_poses(sensor.options.input).len());
    let mut station = Capturing::start(sensor, options, operator)?;
    let (normal, normal_report) = station.agreeing_series(Hand::Normal, threshold)?;
    station.operator.notice(Notice::SeriesAgree {
        hand: Hand::Normal,
        report: &normal_report,
    });
    let duress = if options.duress_hand {
        let (duress, report) = station.agreeing_series(Hand::Duress, threshold)?;
        check_distinct(&normal, &duress, threshold).map_err(Refusal::from)?;
        station.operator.notice(Notice::SeriesAgree {
            hand: Hand::Duress,
            report: &report,
        });
        Some((duress, report.reference))
    } else {
        None
    };
    // Several captures of a hand go on the card (the card keeps the closest of them to a probe,
    // with the thresholds calibrated for that many): the duress hand keeps at least one slot.
    let (normal_slots, duress_slots) = slot_counts(
        usize::from(identity.slot_capacity),
        normal.len(),
        duress.as_ref().map(|(d, _)| d.len()),
    );
    let mut slots: Vec<(SlotKind, &Template)> =
        enrolled_captures(&normal, normal_report.reference, normal_slots)
            .map(|template| (SlotKind::Normal, template))
            .collect();
    if let Some((duress, reference)) = &duress {
        slots.extend(
            enrolled_captures(duress, *reference, duress_slots)
                .map(|template| (SlotKind::Duress, template)),
        );
    }
    // The hands to verify after writing, one capture each.
    let hands: Vec<SlotKind> = std::iter::once(SlotKind::Normal)
        .chain(duress.is_some().then_some(SlotKind::Duress))
        .collect();

    // 4. Write to the card. Meanwhile the sensor is read until the last capture's hand is lifted,
    // then paused, so that presentations made during the write are neither served nor lost.
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
    let floor_in_force = writer.enrol(&slots, options.profile_floor)?;
    for (slot, (kind, _)) in slots.iter().enumerate() {
        station
            .operator
            .notice(Notice::Enrolled { slot, kind: *kind });
    }

    // 5. Verify with fresh captures. The card now holds templates: its completion is recorded
    // (verified or not) before any verification error is passed on.
    let kinds: Vec<SlotKind> = slots.iter().map(|(kind, _)| *kind).collect();
    let verification = station.verify(&mut writer, &hands);
    let all_matched = matches!(verification, Ok(true));
    station.sensor.stop();
    let (completed, completed_event) =
        card_steps::completed(&card_id, personalised, &kinds, floor_in_force, all_matched);
    audit.append(&completed)?;
    events.push(completed_event);
    if !verification? {
        return Err(Refusal::NotVerified { card_id }.into());
    }
    Ok(card_id)
}

/// Slots for the normal hand's and the duress hand's captures on a card of `capacity` slots
/// (at least one per hand, checked before consent): each hand up to [`MAX_ENROLLED_TEMPLATES`]
/// of its captures, the duress hand (when enrolled) at least one.
fn slot_counts(capacity: usize, normal: usize, duress: Option<usize>) -> (usize, usize) {
    let reserved = usize::from(duress.is_some());
    let normal = normal
        .min(MAX_ENROLLED_TEMPLATES)
        .min(capacity.saturating_sub(reserved));
    let duress = duress.map_or(0, |duress| {
        duress
            .min(MAX_ENROLLED_TEMPLATES)
            .min(capacity.saturating_sub(normal))
    });
    (normal, duress)
}

/// The `count` captures of a hand to enrol: the medoid (`reference`) first, then the others in the
/// order they were taken.
fn enrolled_captures(
    captures: &[Vec<Template>],
    reference: usize,
    count: usize,
) -> impl Iterator<Item = &Template> {
    captures
        .get(reference)
        .into_iter()
        .chain(
            captures
                .iter()
                .enumerate()
                .filter(move |(index, _)| *index != reference)
                .map(|(_, capture)| capture),
        )
        .filter_map(|capture| capture.first())
        .take(count)
}

/// The capture steps: the started sensor and the person hearing about each capture.
struct Capturing<'o> {
    sensor: StationSensor,
    operator: &'o mut dyn Operator,
    samples: usize,
    max_refused: usize,
    extra_captures: usize,
    profile: Profile,
}

/// What a hand's series holds before an extra capture is asked for.
#[derive(Debug, Clone, Copy, Default)]
struct SeriesSoFar {
    /// Captures accepted.
    accepted: usize,
    /// Captures refused (against `--max-refused`, an allowance per hand).
    refused: usize,
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
            extra_captures: options.extra_captures,
            profile: options.profile,
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

    /// A series of `hand` whose captures all match each other under `threshold`: the first
    /// `samples` captures, or — when they do not agree — `samples` that do among up to
    /// `extra_captures` more, asked for one at a time. Refused with every pair that does not
    /// match when even the extra captures hold no such set.
    fn agreeing_series(
        &mut self,
        hand: Hand,
        threshold: Threshold,
    ) -> Result<(Vec<Vec<Template>>, MutualReport), EnrolError> {
        let (mut captures, mut refused) =
            self.series(hand, self.samples, SeriesSoFar::default())?;
        let mut extra = 0;
        loop {
            if let Some(chosen) = agreeing(&captures, self.samples, threshold) {
                let numbers: Vec<usize> = chosen.iter().map(|&i| i + 1).collect();
                let chosen: Vec<Vec<Template>> =
                    chosen.iter().map(|&i| captures[i].clone()).collect();
                let report =
                    check_mutual_numbered(&chosen, &numbers, threshold).map_err(Refusal::from)?;
                return Ok((chosen, report));
            }
            // No `samples` of them agree: name every pair that does not match.
            let disagreement = disagreeing(&captures, threshold);
            if extra == self.extra_captures {
                return Err(Refusal::from(disagreement).into());
            }
            extra += 1;
            self.operator.notice(Notice::SeriesDisagrees {
                hand,
                disagreement: &disagreement,
                extra,
                allowed: self.extra_captures,
            });
            let so_far = SeriesSoFar {
                accepted: captures.len(),
                refused,
            };
            let (more, refused_now) = self.series(hand, 1, so_far)?;
            captures.extend(more);
            refused = refused_now;
        }
    }

    /// `wanted` accepted captures of `hand`, going on with the series `so_far` (an extra
    /// capture is numbered after its accepted captures, and the refusals allowed are the hand's,
    /// not the capture's); the templates and the hand's refusals so far.
    fn series(
        &mut self,
        hand: Hand,
        wanted: usize,
        so_far: SeriesSoFar,
    ) -> Result<(Vec<Vec<Template>>, usize), EnrolError> {
        let mut captures =
            CaptureLoop::new(wanted, self.max_refused).continuing(so_far.accepted, so_far.refused);
        self.operator.notice(Notice::SeriesStarted {
            hand,
            wanted,
            already: so_far.accepted,
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
        let refused = captures.refused();
        ended.map(|()| (captures.into_captures(), refused))
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
        // The pose found: the verification sends one template (`card_steps::Writer::verify`).
        captures
            .into_captures()
            .pop()
            .and_then(|poses| poses.into_iter().next())
            .ok_or(EnrolError::Sensor(SensorError::TaskStopped))
    }

    /// Verifies each enrolled slot (slot 0 the normal hand, slot 1 the duress hand) with a fresh
    /// capture; whether every one matched its own slot.
    fn verify<T: CardTransport>(
        &mut self,
        writer: &mut card_steps::Writer<'_, T>,
        kinds: &[SlotKind],
    ) -> Result<bool, EnrolError> {
        // The watch ends before the person is asked: from here on, frames are the verification's
        // (the first may be of a presentation that began before the capture was paused).
        let operator = &mut *self.operator;
        self.sensor
            .end_watch(&mut |news| tell(&mut *operator, news))?;
        let mut all_matched = true;
        for (&kind, hand) in kinds.iter().zip([Hand::Normal, Hand::Duress]) {
            self.operator.notice(Notice::VerifyPresent { hand });
            let probe = self.one(hand)?;
            let verification = writer.verify(&probe, kind, self.profile)?;
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
