//! The events a gate reports: what happened, where, when, to which card, and how long each stage
//! took.
//!
//! An event never carries biometric data: there is deliberately no field that could hold a palm
//! image, a template, a distance or a score. The card only ever answers match / no match, and that
//! decision is all an event records (as its `result` and `reason`).
//!
//! Events are created by the access logic, the door controllers, the MQTT command handler and the
//! outbox itself as [`NewEvent`]s; the outbox gives each one its [`EventId`] (monotonic per gate,
//! persisted) when it stores it, which makes it an [`Event`].
//!
//! The model is typed end to end: an [`EventKind`] is an enum (each with one dotted name and a
//! [`Severity`]); `reason` is a stable `snake_case` [`Reason`] code and `detail` the words for
//! people, so no Rust `Debug`/`Display` text becomes part of the MQTT API. The JSON contract is
//! `schemas/event.schema.json` (docs/mqtt-api.md).

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Event identifier: monotonic per gate, never reused, persisted across restarts.
pub type EventId = u64;

/// How urgent an event is, derived from its kind: `alarm` asks for someone to act now, `warning`
/// for attention, `info` is a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A record of normal operation.
    Info,
    /// Something to look at (a denial, a refused command, a door about to be held open).
    Warning,
    /// Someone should act now (duress, forced door, fire, tamper, …).
    Alarm,
}

/// What happened. Each kind has one dotted name (`access.granted`, …), which is also the last
/// level of its MQTT topic `…/event/<kind>`, and one [`Severity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// `access.granted`: A presentation was granted and the door unlocked (a duress grant too).
    AccessGranted,
    /// `access.denied`: A presentation was denied (see `reason`).
    AccessDenied,
    /// `access.remote_unlock`: A signed remote unlock was carried out or refused.
    AccessRemoteUnlock,
    /// `alarm.duress`: A duress slot matched: the door opened and this silent alarm was raised.
    AlarmDuress,
    /// `alarm.card_blocked`: The card's verification retry counter is exhausted.
    AlarmCardBlocked,
    /// `alarm.events_lost`: recorded events that will never be delivered, or events that could
    /// not be recorded (`reason`: the cause; `detail`: `first_id=… last_id=… count=… cause=…`).
    AlarmEventsLost,
    /// `alarm.presentation_attack`: presentation attack detection refused what was presented as a
    /// palm (a print, a screen, a mould, …) before the card was asked.
    AlarmPresentationAttack,
    /// `alarm.panel_link`: in reader mode, the link to the access panel is not what was
    /// commissioned (`reason`: `secure_channel_refused` — a wrong key or a bad MAC on the bus —,
    /// `link_failed`, `comset_not_stored`; `detail` says what and how often).
    AlarmPanelLink,
    /// `panel.link_restored`: in reader mode, the OSDP link that failed (`alarm.panel_link`,
    /// `link_failed`) is back: the port is open again and the panel polls the gate.
    PanelLinkRestored,
    /// `card.erased`: A card's templates were erased (with a signed deletion receipt).
    CardErased,
    /// `enrol.consent`: The enrolment station recorded a person's consent (the consent text's hash, no biometric data).
    EnrolConsent,
    /// `enrol.completed`: The enrolment station finished writing a card.
    EnrolCompleted,
    /// `command.accepted`: A signed command was accepted.
    CommandAccepted,
    /// `command.refused`: A command was refused (bad signature, stale, replayed, malformed…) or could not be carried out.
    CommandRefused,
    /// `revocation.updated`: The revocation list was replaced.
    RevocationUpdated,
    /// `policy.loaded`: The access policy was (re)loaded.
    PolicyLoaded,
    /// `policy.rejected`: A reload found the policy or revocation list file invalid; the one in force stays.
    PolicyRejected,
    /// `outbox.filling`: The outbox passed its alarm fill level.
    OutboxFilling,
    /// `doors.ready`: The door controller read its inputs at start-up; doors run normally.
    DoorsReady,
    /// `door.unlocked`: A lock was released (`reason`: grant, rex, fire, unpowered).
    DoorUnlocked,
    /// `door.locked`: A lock was secured.
    DoorLocked,
    /// `door.opened`: A door opened (`reason`: released, forced, at_startup).
    DoorOpened,
    /// `door.closed`: A door closed.
    DoorClosed,
    /// `door.forced`: A door was opened while secured.
    DoorForced,
    /// `door.held_open_prealarm`: A door is open past its held-open pre-alarm time (local warning).
    DoorHeldOpenPrealarm,
    /// `door.held_open`: A door is open past its held-open alarm time.
    DoorHeldOpen,
    /// `door.rex`: The request-to-exit button was pressed (`reason` when refused).
    DoorRex,
    /// `door.tamper`: A door's tamper input is active.
    DoorTamper,
    /// `door.tamper_cleared`: A door's tamper input cleared.
    DoorTamperCleared,
    /// `grant.refused`: The door controller did not release a door for a grant (`reason`).
    GrantRefused,
    /// `grant.expired`: A turnstile grant was not used within its window.
    GrantExpired,
    /// `grant.cancelled`: A pending turnstile grant was dropped by its door's lockdown.
    GrantCancelled,
    /// `turnstile.passage`: A turnstile counted a passage (`reason`: authorised, unauthorised).
    TurnstilePassage,
    /// `fire.active`: The fire input is active: every door is released.
    FireActive,
    /// `fire.cleared`: The fire input cleared.
    FireCleared,
    /// `lockdown.on`: A door entered lockdown.
    LockdownOn,
    /// `lockdown.off`: A door left lockdown.
    LockdownOff,
    /// `reader.available`: the card reader can read cards (at start-up, and when it is back).
    ReaderAvailable,
    /// `reader.unavailable`: no card can be read (pcscd gone, reader unplugged); the gate stops
    /// pinging the systemd watchdog until the reader is back.
    ReaderUnavailable,
    /// `meal.served`: a canteen gate served a meal (the card counted it and signed a receipt),
    /// or recovered the receipt of a meal whose answer was lost (`meal.recovered`).
    MealServed,
}

impl EventKind {
    /// Every kind, in documentation order.
    pub const ALL: [Self; 40] = [
        Self::AccessGranted,
        Self::AccessDenied,
        Self::AccessRemoteUnlock,
        Self::AlarmDuress,
        Self::AlarmCardBlocked,
        Self::AlarmEventsLost,
        Self::AlarmPresentationAttack,
        Self::AlarmPanelLink,
        Self::PanelLinkRestored,
        Self::CardErased,
        Self::EnrolConsent,
        Self::EnrolCompleted,
        Self::CommandAccepted,
        Self::CommandRefused,
        Self::RevocationUpdated,
        Self::PolicyLoaded,
        Self::PolicyRejected,
        Self::OutboxFilling,
        Self::DoorsReady,
        Self::DoorUnlocked,
        Self::DoorLocked,
        Self::DoorOpened,
        Self::DoorClosed,
        Self::DoorForced,
        Self::DoorHeldOpenPrealarm,
        Self::DoorHeldOpen,
        Self::DoorRex,
        Self::DoorTamper,
        Self::DoorTamperCleared,
        Self::GrantRefused,
        Self::GrantExpired,
        Self::GrantCancelled,
        Self::TurnstilePassage,
        Self::FireActive,
        Self::FireCleared,
        Self::LockdownOn,
        Self::LockdownOff,
        Self::ReaderAvailable,
        Self::ReaderUnavailable,
        Self::MealServed,
    ];

    /// The dotted name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AccessGranted => "access.granted",
            Self::AccessDenied => "access.denied",
            Self::AccessRemoteUnlock => "access.remote_unlock",
            Self::AlarmDuress => "alarm.duress",
            Self::AlarmCardBlocked => "alarm.card_blocked",
            Self::AlarmEventsLost => "alarm.events_lost",
            Self::AlarmPresentationAttack => "alarm.presentation_attack",
            Self::AlarmPanelLink => "alarm.panel_link",
            Self::PanelLinkRestored => "panel.link_restored",
            Self::CardErased => "card.erased",
            Self::EnrolConsent => "enrol.consent",
            Self::EnrolCompleted => "enrol.completed",
            Self::CommandAccepted => "command.accepted",
            Self::CommandRefused => "command.refused",
            Self::RevocationUpdated => "revocation.updated",
            Self::PolicyLoaded => "policy.loaded",
            Self::PolicyRejected => "policy.rejected",
            Self::OutboxFilling => "outbox.filling",
            Self::DoorsReady => "doors.ready",
            Self::DoorUnlocked => "door.unlocked",
            Self::DoorLocked => "door.locked",
            Self::DoorOpened => "door.opened",
            Self::DoorClosed => "door.closed",
            Self::DoorForced => "door.forced",
            Self::DoorHeldOpenPrealarm => "door.held_open_prealarm",
            Self::DoorHeldOpen => "door.held_open",
            Self::DoorRex => "door.rex",
            Self::DoorTamper => "door.tamper",
            Self::DoorTamperCleared => "door.tamper_cleared",
            Self::GrantRefused => "grant.refused",
            Self::GrantExpired => "grant.expired",
            Self::GrantCancelled => "grant.cancelled",
            Self::TurnstilePassage => "turnstile.passage",
            Self::FireActive => "fire.active",
            Self::FireCleared => "fire.cleared",
            Self::LockdownOn => "lockdown.on",
            Self::LockdownOff => "lockdown.off",
            Self::ReaderAvailable => "reader.available",
            Self::ReaderUnavailable => "reader.unavailable",
            Self::MealServed => "meal.served",
        }
    }

    /// How urgent an event of this kind is.
    pub const fn severity(self) -> Severity {
        match self {
            Self::AlarmDuress
            | Self::AlarmCardBlocked
            | Self::AlarmEventsLost
            | Self::AlarmPresentationAttack
            | Self::AlarmPanelLink
            | Self::PolicyRejected
            | Self::OutboxFilling
            | Self::DoorForced
            | Self::DoorHeldOpen
            | Self::DoorTamper
            | Self::FireActive
            | Self::ReaderUnavailable => Severity::Alarm,
            Self::AccessDenied
            | Self::CommandRefused
            | Self::DoorHeldOpenPrealarm
            | Self::GrantRefused => Severity::Warning,
            _ => Severity::Info,
        }
    }

    /// The kind of a dotted name.
    pub fn from_name(name: &str) -> Result<Self, UnknownKind> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownKind(name.to_owned()))
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::from_name(&name).map_err(serde::de::Error::custom)
    }
}

/// An event kind name that this version does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {0:?}")]
pub struct UnknownKind(pub String);

/// Why, as a stable machine-readable code (`snake_case`: `card_revoked`, `interlock`,
/// `bad_signature`, …). Consumers switch on it; the prose for people is the event's `detail`.
/// The codes each kind uses are listed in docs/mqtt-api.md and in `schemas/event.schema.json`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reason(Cow<'static, str>);

impl Reason {
    /// The card is on the revocation list.
    pub const CARD_REVOKED: Self = Self::from_static("card_revoked");
    /// The door is in lockdown.
    pub const LOCKDOWN: Self = Self::from_static("lockdown");
    /// The site policy refuses this card here or now (`detail` says which rule).
    pub const NOT_PERMITTED: Self = Self::from_static("not_permitted");
    /// The palm does not match the card (`detail`: tries left).
    pub const NO_MATCH: Self = Self::from_static("no_match");
    /// The card blocked its verification (too many failed palms).
    pub const CARD_BLOCKED: Self = Self::from_static("card_blocked");
    /// The card left the reader during verification.
    pub const CARD_REMOVED: Self = Self::from_static("card_removed");
    /// No usable palm within the presentation window.
    pub const NO_PALM: Self = Self::from_static("no_palm");
    /// Presentation attack detection refused what was presented (`access.denied`,
    /// `alarm.presentation_attack`; `detail`: the cues that objected).
    pub const PRESENTATION_ATTACK: Self = Self::from_static("presentation_attack");
    /// The OSDP secure channel refused the panel's side: a wrong key, a bad MAC, the default key
    /// outside install mode (`alarm.panel_link`).
    pub const SECURE_CHANNEL_REFUSED: Self = Self::from_static("secure_channel_refused");
    /// The OSDP serial link failed (`alarm.panel_link`): the panel gets no card data until it is
    /// back (`panel.link_restored`).
    pub const LINK_FAILED: Self = Self::from_static("link_failed");
    /// The panel's new communication settings (COMSET) could not be stored, so were refused
    /// (`alarm.panel_link`).
    pub const COMSET_NOT_STORED: Self = Self::from_static("comset_not_stored");
    /// The card did not answer in time.
    pub const CARD_TIMEOUT: Self = Self::from_static("card_timeout");
    /// The verification did not complete (`detail` says why).
    pub const VERIFICATION_FAILED: Self = Self::from_static("verification_failed");
    /// The card cannot be used here (not a palmgate card, unknown issuer, …; `detail`).
    pub const CARD_REJECTED: Self = Self::from_static("card_rejected");
    /// A duress palm was presented.
    pub const DURESS_PALM: Self = Self::from_static("duress_palm");
    /// A lock released for an access grant or a remote unlock.
    pub const GRANT: Self = Self::from_static("grant");
    /// A lock released, or a door refused, for the request-to-exit button.
    pub const REX: Self = Self::from_static("rex");
    /// A lock released by the fire input.
    pub const FIRE: Self = Self::from_static("fire");
    /// A fail-safe lock that is unpowered.
    pub const UNPOWERED: Self = Self::from_static("unpowered");
    /// A door opened while released.
    pub const RELEASED: Self = Self::from_static("released");
    /// A door opened while secured.
    pub const FORCED: Self = Self::from_static("forced");
    /// A door found open at start-up.
    pub const AT_STARTUP: Self = Self::from_static("at_startup");
    /// The interlocked door is open or released.
    pub const INTERLOCK: Self = Self::from_static("interlock");
    /// The door inputs have not been read yet.
    pub const STARTING: Self = Self::from_static("starting");
    /// The command or the controller named a door this gate does not have.
    pub const UNKNOWN_DOOR: Self = Self::from_static("unknown_door");
    /// A turnstile passage allowed by a grant (or fire).
    pub const AUTHORISED: Self = Self::from_static("authorised");
    /// A turnstile passage nothing allowed.
    pub const UNAUTHORISED: Self = Self::from_static("unauthorised");
    /// A revocation list not newer than the one in force.
    pub const NOT_NEWER: Self = Self::from_static("not_newer");
    /// The revocation list could not be stored.
    pub const NOT_STORED: Self = Self::from_static("not_stored");
    /// A policy or revocation list file failed validation.
    pub const INVALID_FILE: Self = Self::from_static("invalid_file");
    /// Events were lost for a cause that has no code of its own (`alarm.events_lost`).
    pub const EVENTS_LOST: Self = Self::from_static("events_lost");
    /// pcscd cannot be reached (`reader.unavailable`).
    pub const SERVICE_UNAVAILABLE: Self = Self::from_static("service_unavailable");
    /// No reader matches `card.reader` (`reader.unavailable`).
    pub const NO_MATCHING_READER: Self = Self::from_static("no_matching_reader");
    /// Refused commands beyond the reporting limit, summarised (`detail`: counts by reason).
    pub const REFUSALS_SUPPRESSED: Self = Self::from_static("refusals_suppressed");
    /// The outbox reached its alarm fill level.
    pub const FILL_LEVEL: Self = Self::from_static("fill_level");
    /// The card's meals for this period are used up (`meal`: count and allowance).
    pub const MEAL_ALLOWANCE_USED: Self = Self::from_static("meal_allowance_used");
    /// No meal period is open at a canteen gate now.
    pub const OUTSIDE_MEAL_PERIOD: Self = Self::from_static("outside_meal_period");
    /// The card's applet predates meal entitlements: it cannot count meals.
    pub const MEAL_UNSUPPORTED: Self = Self::from_static("meal_unsupported");
    /// The palm matched but the meal was not confirmed by the card (pulled, error): nothing
    /// opened; a receipt the card kept is recovered at its next presentation.
    pub const MEAL_NOT_CONFIRMED: Self = Self::from_static("meal_not_confirmed");
    /// The card refused the meal and changed nothing (`detail`: why, e.g. the gate's clock is
    /// behind the card's period).
    pub const MEAL_REFUSED: Self = Self::from_static("meal_refused");
    /// A `meal.served` whose card answer was lost, read back from the card later.
    pub const RECOVERED: Self = Self::from_static("recovered");
    /// A `meal.served` the card answered after the gate gave up waiting (nothing opened).
    pub const TOO_LATE: Self = Self::from_static("too_late");

    const fn from_static(code: &'static str) -> Self {
        Self(Cow::Borrowed(code))
    }

    /// The code of an accepted command: its name (`unlock`, `lockdown`, `release`,
    /// `revocation_list`), which is `snake_case` already.
    pub const fn command(name: &'static str) -> Self {
        Self::from_static(name)
    }

    /// A code from its text, checked: `[a-z][a-z0-9_]*`, at most 64 bytes.
    pub fn new(code: impl Into<Cow<'static, str>>) -> Result<Self, InvalidReason> {
        let code = code.into();
        let valid = !code.is_empty()
            && code.len() <= 64
            && code.starts_with(|c: char| c.is_ascii_lowercase())
            && code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(code))
        } else {
            Err(InvalidReason(code.into_owned()))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<crate::mqtt::command::RefusalReason> for Reason {
    fn from(refusal: crate::mqtt::command::RefusalReason) -> Self {
        // The verifier's refusal names are snake_case codes already (`bad_signature`, …).
        Self::from_static(refusal.as_str())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        Self::new(code).map_err(serde::de::Error::custom)
    }
}

/// A reason code that is not `snake_case`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reason code {0:?}: expected [a-z][a-z0-9_]*, at most 64 bytes")]
pub struct InvalidReason(pub String);

/// The outcome an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Access granted (door unlocked).
    Granted,
    /// Access denied.
    Denied,
    /// A command was accepted.
    Accepted,
    /// A command was refused.
    Refused,
    /// An alarm condition.
    Alarm,
    /// Informational.
    Info,
}

/// Time spent in each stage of one presentation, in milliseconds. Absent stages did not run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Latencies {
    /// Card presented → card identity and certificate checked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_ms: Option<f64>,
    /// Palm capture requested → usable frame received.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub capture_ms: Option<f64>,
    /// Frame received → probe template extracted.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub extract_ms: Option<f64>,
    /// Probe sent to the card → authenticated decision received.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub match_ms: Option<f64>,
    /// Last input (palm or card) → door command issued.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision_ms: Option<f64>,
}

impl Latencies {
    /// Whether no stage was recorded.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Milliseconds of a duration, with microsecond resolution.
pub fn millis(duration: Duration) -> f64 {
    (duration.as_micros() as f64) / 1000.0
}

/// A UTC instant with millisecond resolution, written as RFC 3339 (`2026-11-25T02:03:04.567Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

impl Timestamp {
    /// From milliseconds since the Unix epoch.
    pub const fn from_unix_ms(unix_ms: i64) -> Self {
        Self { unix_ms }
    }

    /// Milliseconds since the Unix epoch.
    pub const fn unix_ms(self) -> i64 {
        self.unix_ms
    }

    /// The current wall-clock time (the one place that reads the clock; decision logic gets time
    /// injected).
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// RFC 3339 text in UTC with milliseconds.
    pub fn to_rfc3339(self) -> String {
        let days = self.unix_ms.div_euclid(86_400_000);
        let ms_of_day = self.unix_ms.rem_euclid(86_400_000);
        let (year, month, day) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }

    /// Parses RFC 3339 UTC text: `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (offset `Z` or `+00:00`).
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() < 20 || !text.is_ascii() {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let part = text.get(range)?;
            if part.bytes().all(|b| b.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
        if bytes[4] != b'-'
            || bytes[7] != b'-'
            || !matches!(bytes[10], b'T' | b't')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return None;
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let mut rest = &text[19..];
        let mut millis = 0;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
            millis = padded.parse::<i64>().ok()?;
            rest = &fraction[digits..];
        }
        if !matches!(rest, "Z" | "z" | "+00:00") {
            return None;
        }
        let days = days_from_civil(year, month, day);
        Some(Self::from_unix_ms(
            days * 86_400_000 + (hour * 3600 + minute * 60 + second) * 1000 + millis,
        ))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(time: SystemTime) -> Self {
        let unix_ms = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        };
        Self { unix_ms }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse_rfc3339(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not an RFC 3339 UTC time: {text:?}")))
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A card identifier (16 bytes on a palmgate card), written as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardId(Vec<u8>);

impl CardId {
    /// Wraps card id bytes (1 to 32 bytes).
    pub fn new(bytes: &[u8]) -> Option<Self> {
        (!bytes.is_empty() && bytes.len() <= 32).then(|| Self(bytes.to_vec()))
    }

    /// From hex text.
    pub fn from_hex(text: &str) -> Option<Self> {
        hex::decode(text).ok().and_then(|bytes| Self::new(&bytes))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for CardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl Serialize for CardId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for CardId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("card id: 1 to 32 bytes of hex"))
    }
}

/// The signed deletion receipt a `card.erased` event carries: proof, verifiable by anyone with
/// the issuer public key, that the card erased its templates. It holds no biometric data (the
/// commitment inside is a hash of what was erased).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureReceipt {
    /// The card-signed receipt followed by the card certificate, hex (the bytes of the file
    /// `palmgate card erase --receipt` writes).
    pub bundle: String,
    /// The card's erase counter (this erasure included), from the receipt.
    pub erase_counter: u32,
    /// The erase time written into the receipt (Unix seconds; the card has no clock).
    pub timestamp: u64,
    /// Slots that held a template.
    pub slots_erased: u8,
}

/// The meal a `meal.served` event records, or the count an `access.denied` with reason
/// `meal_allowance_used` reports. The receipt is card-signed: anyone with the issuer public key
/// verifies it (`palmgate card verify-receipt`); the plain fields repeat what it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MealRecord {
    /// The period number the card compared (local days since 1970-01-01 × 16 + index).
    pub period: u32,
    /// The period's name in the policy (`lunch`); absent when the policy in force has none for
    /// that number (a receipt recovered after a policy change).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_name: Option<String>,
    /// The group the meal is counted for (absent for a recovered receipt).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group: Option<String>,
    /// Meals the card counted in this period (this one included when served).
    pub count: u8,
    /// Meals allowed in this period.
    pub allowance: u8,
    /// The card-signed meal receipt, hex (`meal.served` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<String>,
    /// The card's receipt counter (never repeats per card; with `card_id` it identifies a meal).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt_counter: Option<u32>,
    /// The gate time written into the receipt (Unix seconds; the card has no clock).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub gate_time: Option<u64>,
}

/// What happened, where, when and why: every field of an event except the two the outbox adds
/// ([`Event`] adds `id` and `gate`). This is the one declaration of the event's fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// When it happened (UTC).
    pub time: Timestamp,
    /// The door concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub door: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// How urgent (always `kind.severity()`; carried so that a consumer need not know every
    /// kind to sort alarms out).
    pub severity: Severity,
    /// The card concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_id: Option<CardId>,
    /// The outcome.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<Outcome>,
    /// Why, as a stable code.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<Reason>,
    /// Why, in words for people (not for parsing: its wording may change).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
    /// Per-stage latencies.
    #[serde(skip_serializing_if = "Latencies::is_empty", default)]
    pub latencies: Latencies,
    /// The deletion receipt (`card.erased` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<Box<ErasureReceipt>>,
    /// The meal (`meal.served`; `access.denied` with reason `meal_allowance_used`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub meal: Option<Box<MealRecord>>,
}

impl NewEvent {
    /// An event of `kind` at `time` with no other detail.
    pub fn new(kind: EventKind, time: Timestamp) -> Self {
        Self {
            time,
            door: None,
            kind,
            severity: kind.severity(),
            card_id: None,
            result: None,
            reason: None,
            detail: None,
            latencies: Latencies::default(),
            receipt: None,
            meal: None,
        }
    }

    /// The event recording what the door controller reported: its kind, door, outcome (`alarm`
    /// for alarm kinds, else `info`) and reason code. Nothing of the controller's `Debug` or
    /// `Display` text reaches the payload. `None` for a kind this version does not know (the
    /// caller logs it).
    pub fn from_door_event(event: &palmgate_door::Event, time: Timestamp) -> Option<Self> {
        use palmgate_door::{EventKind as Door, HeldOpenStage, Opening, ReleaseCause};
        let (kind, reason) = match &event.kind {
            Door::Ready => (EventKind::DoorsReady, None),
            Door::Unlocked { cause } => (
                EventKind::DoorUnlocked,
                Some(match cause {
                    ReleaseCause::Grant => Reason::GRANT,
                    ReleaseCause::Rex => Reason::REX,
                    ReleaseCause::Fire => Reason::FIRE,
                    ReleaseCause::Unpowered => Reason::UNPOWERED,
                }),
            ),
            Door::Locked => (EventKind::DoorLocked, None),
            Door::Opened { how } => (
                EventKind::DoorOpened,
                Some(match how {
                    Opening::Released => Reason::RELEASED,
                    Opening::Forced => Reason::FORCED,
                    Opening::AtStartup => Reason::AT_STARTUP,
                }),
            ),
            Door::Closed => (EventKind::DoorClosed, None),
            Door::Forced => (EventKind::DoorForced, None),
            Door::HeldOpen {
                stage: HeldOpenStage::PreAlarm,
            } => (EventKind::DoorHeldOpenPrealarm, None),
            Door::HeldOpen {
                stage: HeldOpenStage::Alarm,
            } => (EventKind::DoorHeldOpen, None),
            Door::Rex { refused } => (EventKind::DoorRex, refused.map(refusal_reason)),
            Door::Tamper => (EventKind::DoorTamper, None),
            Door::TamperCleared => (EventKind::DoorTamperCleared, None),
            Door::GrantRefused { reason } => {
                (EventKind::GrantRefused, Some(refusal_reason(*reason)))
            }
            Door::GrantExpired => (EventKind::GrantExpired, None),
            Door::GrantCancelled => (EventKind::GrantCancelled, None),
            Door::Passage { authorised, .. } => (
                EventKind::TurnstilePassage,
                Some(if *authorised {
                    Reason::AUTHORISED
                } else {
                    Reason::UNAUTHORISED
                }),
            ),
            Door::FireActive => (EventKind::FireActive, None),
            Door::FireCleared => (EventKind::FireCleared, None),
            Door::LockdownOn => (EventKind::LockdownOn, None),
            Door::LockdownOff => (EventKind::LockdownOff, None),
            _ => return None,
        };
        let outcome = if kind.severity() == Severity::Alarm {
            Outcome::Alarm
        } else {
            Outcome::Info
        };
        let mut record = Self::new(kind, time).result(outcome);
        record.reason = reason;
        if let Door::Passage { count, .. } = &event.kind {
            record.detail = Some(format!("passage {count} since start"));
        }
        if let Some(door) = &event.door {
            record = record.door(door.clone());
        }
        Some(record)
    }

    /// Sets the deletion receipt.
    pub fn receipt(mut self, receipt: ErasureReceipt) -> Self {
        // Boxed: it is rare and large, and events travel through small action enums.
        self.receipt = Some(Box::new(receipt));
        self
    }

    /// Sets the meal.
    pub fn meal(mut self, meal: MealRecord) -> Self {
        self.meal = Some(Box::new(meal));
        self
    }

    /// Sets the door.
    pub fn door(mut self, door: impl Into<String>) -> Self {
        self.door = Some(door.into());
        self
    }

    /// Sets the card.
    pub fn card(mut self, card_id: CardId) -> Self {
        self.card_id = Some(card_id);
        self
    }

    /// Sets the outcome.
    pub fn result(mut self, result: Outcome) -> Self {
        self.result = Some(result);
        self
    }

    /// Sets the reason code.
    pub fn reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Sets the words for people.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the latencies.
    pub fn latencies(mut self, latencies: Latencies) -> Self {
        self.latencies = latencies;
        self
    }

    /// Numbers the event for `gate`.
    pub fn into_event(self, id: EventId, gate: &str) -> Event {
        Event {
            id,
            gate: gate.to_owned(),
            event: self,
        }
    }
}

/// The reason code of a door controller refusal (docs/door-io.md names them).
fn refusal_reason(refusal: palmgate_door::Refusal) -> Reason {
    use palmgate_door::Refusal;
    match refusal {
        Refusal::Lockdown => Reason::LOCKDOWN,
        Refusal::Interlock => Reason::INTERLOCK,
        Refusal::Starting => Reason::STARTING,
        Refusal::UnknownDoor => Reason::UNKNOWN_DOOR,
        // A refusal added to the controller later: still a refusal, with a code saying so.
        _ => Reason::from_static("refused"),
    }
}

/// A numbered event, as stored in the outbox and published on `…/event/<kind>`: the outbox's
/// `id` and the `gate`, then the fields of the [`NewEvent`] it numbered (read through `Deref`:
/// `event.kind`, `event.door`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic per gate.
    pub id: EventId,
    /// The gate's id.
    pub gate: String,
    /// What happened.
    #[serde(flatten)]
    pub event: NewEvent,
}

impl std::ops::Deref for Event {
    type Target = NewEvent;

    fn deref(&self) -> &NewEvent {
        &self.event
    }
}

impl std::ops::DerefMut for Event {
    fn deref_mut(&mut self) -> &mut NewEvent {
        &mut self.event
    }
}

/// Why an event's JSON was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventParseError {
    /// Not an event object (bad JSON, a missing field, an unknown field or kind, …).
    #[error("not a palmgate event")]
    Json(#[from] serde_json::Error),
    /// The severity is not the one of its kind.
    #[error("severity {severity:?} does not match kind {kind} ({expected:?})")]
    Severity {
        /// The kind.
        kind: EventKind,
        /// What the JSON said.
        severity: Severity,
        /// What the kind has.
        expected: Severity,
    },
}

impl Event {
    /// The JSON published on MQTT and stored (encrypted) in the outbox.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising this plain struct cannot fail (string keys, finite-or-null numbers).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses an event's JSON; unknown fields, unknown kinds and a severity that is not the
    /// kind's are refused. An event of API version 1 (no `severity`, prose `reason`) is taken
    /// too, its `reason` becoming the `detail`: an outbox written before an upgrade still
    /// delivers what it holds.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventParseError> {
        let event: Self = match serde_json::from_slice(bytes) {
            Ok(event) => event,
            Err(error) => match serde_json::from_slice::<EventV1>(bytes) {
                Ok(v1) => v1.upgrade().ok_or(EventParseError::Json(error))?,
                Err(_) => return Err(EventParseError::Json(error)),
            },
        };
        let expected = event.kind.severity();
        if event.severity != expected {
            return Err(EventParseError::Severity {
                kind: event.kind,
                severity: event.severity,
                expected,
            });
        }
        Ok(event)
    }
}

/// An event as API version 1 wrote it (outbox records from before an upgrade).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventV1 {
    id: EventId,
    time: Timestamp,
    gate: String,
    #[serde(default)]
    door: Option<String>,
    kind: String,
    #[serde(default)]
    card_id: Option<CardId>,
    #[serde(default)]
    result: Option<Outcome>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    latencies: Latencies,
    #[serde(default)]
    receipt: Option<Box<ErasureReceipt>>,
}

impl EventV1 {
    /// The version 2 event; `None` for a kind version 2 does not have.
    fn upgrade(self) -> Option<Event> {
        let prealarm = self.kind == "door.held_open"
            && self
                .reason
                .as_deref()
                .is_some_and(|reason| reason.contains("stage=PreAlarm"));
        let kind = if prealarm {
            EventKind::DoorHeldOpenPrealarm
        } else {
            EventKind::from_name(&self.kind).ok()?
        };
        let mut event = NewEvent::new(kind, self.time).latencies(self.latencies);
        event.door = self.door;
        event.card_id = self.card_id;
        event.result = self.result;
        event.detail = self.reason;
        event.receipt = self.receipt;
        Some(event.into_event(self.id, &self.gate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_through_rfc3339() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400_123, "2000-02-29T00:00:00.123Z"),
            (1_795_575_784_567, "2026-11-25T03:03:04.567Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (ms, text) in cases {
            assert_eq!(Timestamp::from_unix_ms(ms).to_rfc3339(), text);
            assert_eq!(
                Timestamp::parse_rfc3339(text),
                Some(Timestamp::from_unix_ms(ms)),
                "{text}"
            );
        }
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-25T03:03:04+00:00"),
            Some(Timestamp::from_unix_ms(1_795_575_784_000))
        );
        for bad in [
            "2026-02-29T00:00:00Z",
            "2026-11-25 02:23:04Z",
            "2026-11-25T03:03:04",
            "x",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names_and_carry_a_severity() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::from_name(kind.as_str()), Ok(kind));
            let segments: Vec<&str> = kind.as_str().split('.').collect();
            assert_eq!(segments.len(), 2, "{kind}");
            assert!(Reason::new(segments[0].to_owned()).is_ok(), "{kind}");
            assert!(Reason::new(segments[1].to_owned()).is_ok(), "{kind}");
        }
        assert_eq!(EventKind::AlarmDuress.severity(), Severity::Alarm);
        assert_eq!(EventKind::DoorForced.severity(), Severity::Alarm);
        assert_eq!(
            EventKind::DoorHeldOpenPrealarm.severity(),
            Severity::Warning
        );
        assert_eq!(EventKind::AccessGranted.severity(), Severity::Info);
        assert!(EventKind::from_name("door.open#").is_err());
        for bad in ["", "Lockdown", "no match", "a-b", "_x", "cause=Grant"] {
            assert!(Reason::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn version_1_events_are_read_with_their_reason_as_detail() {
        let v1 = br#"{"id":3,"time":"2026-11-25T03:03:04.567Z","gate":"g","door":"main",
            "kind":"door.held_open","result":"alarm","reason":"door.held_open door=main stage=PreAlarm"}"#;
        let event = Event::from_json(v1).expect("version 1 event");
        assert_eq!(event.kind, EventKind::DoorHeldOpenPrealarm);
        assert_eq!(event.severity, Severity::Warning);
        assert_eq!(event.reason, None);
        assert_eq!(
            event.detail.as_deref(),
            Some("door.held_open door=main stage=PreAlarm")
        );
        assert_eq!(event.id, 3);
        let unknown = br#"{"id":3,"time":"2026-11-25T03:03:04.567Z","gate":"g","kind":"x.y"}"#;
        assert!(Event::from_json(unknown).is_err());
    }

    fn door_event(kind: palmgate_door::EventKind) -> palmgate_door::Event {
        palmgate_door::Event {
            at: std::time::Instant::now(),
            door: Some("main".into()),
            kind,
        }
    }

    /// Failure of issue 16: door-io's `Display` (`door.unlocked door=main cause=Grant`) was the
    /// event's reason, so Rust `Debug` names were part of the MQTT API, and docs/door-io.md's
    /// `interlock` was a sentence.
    #[test]
    fn door_controller_events_carry_codes_not_debug_text() {
        use palmgate_door::{EventKind as Door, HeldOpenStage, Refusal, ReleaseCause};
        let time = Timestamp::from_unix_ms(0);
        let record = |kind| NewEvent::from_door_event(&door_event(kind), time).expect("known");
        let unlocked = record(Door::Unlocked {
            cause: ReleaseCause::Grant,
        });
        assert_eq!(unlocked.kind, EventKind::DoorUnlocked);
        assert_eq!(unlocked.reason, Some(Reason::GRANT));
        assert_eq!(unlocked.door.as_deref(), Some("main"));
        let refused = record(Door::GrantRefused {
            reason: Refusal::Interlock,
        });
        assert_eq!(
            refused.reason.as_ref().map(Reason::as_str),
            Some("interlock")
        );
        assert_eq!(refused.severity, Severity::Warning);
        let rex = record(Door::Rex {
            refused: Some(Refusal::Lockdown),
        });
        assert_eq!(rex.reason, Some(Reason::LOCKDOWN));
        let prealarm = record(Door::HeldOpen {
            stage: HeldOpenStage::PreAlarm,
        });
        assert_eq!(prealarm.kind.as_str(), "door.held_open_prealarm");
        assert_eq!(prealarm.result, Some(Outcome::Info));
        let alarm = record(Door::HeldOpen {
            stage: HeldOpenStage::Alarm,
        });
        assert_eq!(alarm.kind.as_str(), "door.held_open");
        assert_eq!(alarm.result, Some(Outcome::Alarm));
        let json = String::from_utf8(unlocked.into_event(1, "g").to_json()).expect("utf-8");
        for debug_text in ["Grant", "cause=", "door="] {
            assert!(!json.contains(debug_text), "{json}");
        }
    }

    proptest::proptest! {
        #[test]
        fn days_round_trip(days in -1_000_000i64..1_000_000) {
            let (y, m, d) = civil_from_days(days);
            proptest::prop_assert_eq!(days_from_civil(y, m, d), days);
        }

        #[test]
        fn timestamp_text_round_trips(ms in -62_135_596_800_000i64..253_402_300_800_000) {
            let ts = Timestamp::from_unix_ms(ms);
            proptest::prop_assert_eq!(Timestamp::parse_rfc3339(&ts.to_rfc3339()), Some(ts));
        }
    }
}
