//! The station's writes to the card (erase with a kept receipt, enrol, reset the retry counter),
//! the verification of an enrolled slot, and the audit records and events they leave.

use palmgate_card::host::issuer::EnrolmentAuthority;
use palmgate_card::host::{Card, CardTransport, ReceiptBundle, VerifiedCard, VerifyOutcome};
use palmgate_card::protocol::SlotKind;
use palmgate_matcher::Profile;
use palmgate_matcher::template::Template;
use sha2::Digest as _;

use super::{EnrolError, Notice, Operator};
use crate::enrol::audit::SlotRecord;
use crate::enrol::journal::AuditLog;
use crate::enrol::{AuditRecord, ConsentMethod};
use crate::event::{CardId, EventKind, NewEvent, Outcome, Timestamp};

/// What the card answered to the verification of one enrolled slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// The capture matched its own slot.
    Match,
    /// The capture matched the slot of the other kind.
    OtherSlot(SlotKind),
    /// No slot matched.
    NoMatch {
        /// Tries left on the card.
        tries_left: u8,
    },
    /// The card's verification is blocked.
    Blocked,
}

/// The audit name of a slot kind.
pub fn kind_name(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Duress => "duress",
        _ => "normal",
    }
}

/// A verified card the station writes to, in enrolment sessions.
pub(super) struct Writer<'a, T> {
    pub(super) card: &'a mut Card<T>,
    pub(super) verified: &'a VerifiedCard,
    pub(super) authority: &'a EnrolmentAuthority,
    pub(super) card_id: &'a CardId,
}

impl<T: CardTransport> Writer<'_, T> {
    /// The card's templates, read again just before writing.
    pub(super) fn slots_used(&mut self) -> Result<u8, EnrolError> {
        Ok(self
            .card
            .refresh_identity()
            .map_err(EnrolError::card("reading the card"))?
            .slots_used)
    }

    /// Erases every template; the signed receipt (with the card certificate, so that it
    /// verifies on its own) is kept next to the audit log and recorded before anything new is
    /// written. Returns the `card.erased` event.
    pub(super) fn erase(
        &mut self,
        audit: &mut AuditLog,
        operator: &mut dyn Operator,
    ) -> Result<NewEvent, EnrolError> {
        let session = self
            .card
            .open_session(self.verified)
            .map_err(EnrolError::card("opening a secure session"))?;
        let unix_s = u64::try_from(Timestamp::now().unix_ms() / 1000).unwrap_or(0);
        let receipt = session
            .prove_authority(self.authority)
            .map_err(EnrolError::card("proving the enrolment authority"))?
            .erase(unix_s)
            .map_err(EnrolError::card("erasing"))?;
        let bundle = ReceiptBundle {
            receipt,
            certificate: self.verified.certificate,
        };
        let fields = bundle.receipt.fields();
        let bytes = bundle.encode();
        let path = audit.keep_receipt(self.card_id, fields.erase_counter, &bytes)?;
        operator.notice(Notice::Erased {
            slots: fields.slots_erased,
            receipt: &path,
        });
        let now = Timestamp::now();
        audit.append(&AuditRecord::CardErased {
            time: now,
            card_id: self.card_id.clone(),
            erase_counter: fields.erase_counter,
            slots_erased: fields.slots_erased,
            receipt_file: path.display().to_string(),
            receipt_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        })?;
        crate::station::erased_new_event(&bundle, now).map_err(EnrolError::Event)
    }

    /// Sets the profile floor (when one is asked for), enrols the slots in order (0, 1, …) and
    /// restores the retry counter, in one enrolment session. The floor goes first: a card that
    /// refuses it has nothing new written. Returns the floor the card keeps afterwards, read back:
    /// one set before (on a card with no templates, which is not erased) stays in force even when
    /// none is asked for now, and belongs on the record.
    pub(super) fn enrol(
        &mut self,
        slots: &[(SlotKind, &Template)],
        profile_floor: Option<Profile>,
    ) -> Result<Option<Profile>, EnrolError> {
        let session = self
            .card
            .open_session(self.verified)
            .map_err(EnrolError::card("opening a secure session"))?;
        let mut enrolment = session
            .prove_authority(self.authority)
            .map_err(EnrolError::card("proving the enrolment authority"))?;
        if let Some(floor) = profile_floor {
            enrolment
                .set_profile_floor(Some(floor))
                .map_err(EnrolError::card("setting the profile floor"))?;
        }
        for (slot, (kind, template)) in (0u8..).zip(slots) {
            enrolment
                .enrol(slot, *kind, template)
                .map_err(EnrolError::card("enrolling a slot"))?;
        }
        enrolment
            .reset_retry_counter()
            .map_err(EnrolError::card("restoring the retry counter"))?;
        drop(enrolment);
        self.card
            .profile_floor()
            .map_err(EnrolError::card("reading the profile floor"))
    }

    /// Verifies `probe` on the card under `profile`; `expected` is the kind of the slot it was
    /// enrolled into.
    pub(super) fn verify(
        &mut self,
        probe: &Template,
        expected: SlotKind,
        profile: Profile,
    ) -> Result<Verification, EnrolError> {
        let mut session = self
            .card
            .open_session(self.verified)
            .map_err(EnrolError::card("opening a secure session"))?;
        let outcome = session
            .verify_palm_under(profile, probe)
            .map_err(EnrolError::card("verifying"))?;
        Ok(match outcome {
            VerifyOutcome::Match { slot_kind, .. } if slot_kind == expected => Verification::Match,
            VerifyOutcome::Match { slot_kind, .. } => Verification::OtherSlot(slot_kind),
            VerifyOutcome::NoMatch { tries_left } => Verification::NoMatch { tries_left },
            VerifyOutcome::Blocked => Verification::Blocked,
        })
    }
}

/// The `enrol.consent` event of a consent given (the audit record's fields).
pub(super) fn consent_event(
    time: Timestamp,
    card_id: &CardId,
    consent_text_sha256: &str,
    method: ConsentMethod,
) -> NewEvent {
    let method = match method {
        ConsentMethod::Prompt => "prompt",
        ConsentMethod::Flag => "flag",
    };
    NewEvent::new(EventKind::EnrolConsent, time)
        .card(card_id.clone())
        .result(Outcome::Info)
        .detail(format!(
            "consent_text_sha256={consent_text_sha256} method={method}"
        ))
}

/// The `enrol.completed` record and event of an enrolment that wrote `kinds` (slot 0 first), on a
/// card that keeps `profile_floor` (set now or before).
pub(super) fn completed(
    card_id: &CardId,
    personalised: bool,
    kinds: &[SlotKind],
    profile_floor: Option<Profile>,
    verified: bool,
) -> (AuditRecord, NewEvent) {
    let now = Timestamp::now();
    let record = AuditRecord::Completed {
        time: now,
        card_id: card_id.clone(),
        personalised,
        slots: (0u8..)
            .zip(kinds)
            .map(|(slot, kind)| SlotRecord {
                slot,
                kind: kind_name(*kind),
            })
            .collect(),
        profile_floor: profile_floor.map(Profile::name),
        verified,
    };
    let names: Vec<&str> = kinds.iter().map(|kind| kind_name(*kind)).collect();
    let floor = profile_floor.map_or(String::new(), |floor| format!(" profile_floor={floor}"));
    let event = NewEvent::new(EventKind::EnrolCompleted, now)
        .card(card_id.clone())
        .result(Outcome::Info)
        .detail(format!(
            "slots={} verified={verified} personalised={personalised}{floor}",
            names.join(",")
        ));
    (record, event)
}
