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

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Event identifier: monotonic per gate, never reused, persisted across restarts.
pub type EventId = u64;

/// What happened, as a dotted name (`access.granted`, `door.forced_open`, …).
///
/// Kinds form the last level of the MQTT topic `…/event/<kind>`, so they are restricted to
/// `[a-z0-9_]` segments separated by dots. The door crate's events use the `door.` namespace and
/// alarms the `alarm.` namespace; the constants below are the kinds the daemon itself raises.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKind(Cow<'static, str>);

impl EventKind {
    /// A presentation was granted and the door unlocked.
    pub const ACCESS_GRANTED: Self = Self::from_static("access.granted");
    /// A presentation was denied (see `reason`).
    pub const ACCESS_DENIED: Self = Self::from_static("access.denied");
    /// A door was unlocked by a signed remote command.
    pub const ACCESS_REMOTE_UNLOCK: Self = Self::from_static("access.remote_unlock");
    /// A duress slot matched: the door opened and this silent alarm was raised.
    pub const ALARM_DURESS: Self = Self::from_static("alarm.duress");
    /// The card's verification retry counter is exhausted.
    pub const ALARM_CARD_BLOCKED: Self = Self::from_static("alarm.card_blocked");
    /// A card's templates were erased (with a signed deletion receipt).
    pub const CARD_ERASED: Self = Self::from_static("card.erased");
    /// The enrolment station recorded a person's consent (the consent text's hash, no biometric
    /// data).
    pub const ENROL_CONSENT: Self = Self::from_static("enrol.consent");
    /// The enrolment station finished writing a card.
    pub const ENROL_COMPLETED: Self = Self::from_static("enrol.completed");
    /// A signed command was accepted.
    pub const COMMAND_ACCEPTED: Self = Self::from_static("command.accepted");
    /// A command was refused (bad signature, stale, replayed, malformed…).
    pub const COMMAND_REFUSED: Self = Self::from_static("command.refused");
    /// The revocation list was replaced.
    pub const REVOCATION_UPDATED: Self = Self::from_static("revocation.updated");
    /// The access policy was (re)loaded.
    pub const POLICY_LOADED: Self = Self::from_static("policy.loaded");
    /// A reload found the policy or revocation list file invalid; the one in force stays.
    pub const POLICY_REJECTED: Self = Self::from_static("policy.rejected");
    /// The outbox passed its alarm fill level.
    pub const OUTBOX_FILLING: Self = Self::from_static("outbox.filling");
    /// Recorded events that will never be delivered (`reason`: first_id, last_id, count, cause).
    pub const ALARM_EVENTS_LOST: Self = Self::from_static("alarm.events_lost");

    const fn from_static(name: &'static str) -> Self {
        Self(Cow::Borrowed(name))
    }

    /// A kind from its dotted name, checked: 2 or more segments of `[a-z0-9_]`, at most 64 bytes.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidKind> {
        let name = name.into();
        if is_valid_kind(&name) {
            Ok(Self(Cow::Owned(name)))
        } else {
            Err(InvalidKind(name))
        }
    }

    /// The dotted name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this kind is an alarm (`alarm.*`).
    pub fn is_alarm(&self) -> bool {
        self.0.starts_with("alarm.")
    }
}

fn is_valid_kind(name: &str) -> bool {
    name.len() <= 64
        && name.split('.').count() >= 2
        && name.split('.').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Self::new(name).map_err(serde::de::Error::custom)
    }
}

/// An event kind name that is not a dotted `[a-z0-9_]` name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid event kind {0:?}: expected dotted [a-z0-9_] segments, at most 64 bytes")]
pub struct InvalidKind(pub String);

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

/// An event before the outbox numbered it.
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
    /// The card concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_id: Option<CardId>,
    /// The outcome.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<Outcome>,
    /// Why (machine-readable, `snake_case`: `revoked`, `no_match`, `bad_signature`, …).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Per-stage latencies.
    #[serde(skip_serializing_if = "Latencies::is_empty", default)]
    pub latencies: Latencies,
    /// The deletion receipt (`card.erased` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<Box<ErasureReceipt>>,
}

impl NewEvent {
    /// An event of `kind` at `time` with no other detail.
    pub fn new(kind: EventKind, time: Timestamp) -> Self {
        Self {
            time,
            door: None,
            kind,
            card_id: None,
            result: None,
            reason: None,
            latencies: Latencies::default(),
            receipt: None,
        }
    }

    /// Sets the deletion receipt.
    pub fn receipt(mut self, receipt: ErasureReceipt) -> Self {
        // Boxed: it is rare and large, and events travel through small action enums.
        self.receipt = Some(Box::new(receipt));
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

    /// Sets the reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
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
            time: self.time,
            gate: gate.to_owned(),
            door: self.door,
            kind: self.kind,
            card_id: self.card_id,
            result: self.result,
            reason: self.reason,
            latencies: self.latencies,
            receipt: self.receipt,
        }
    }
}

/// A numbered event, as stored in the outbox and published on `…/event/<kind>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Monotonic per gate.
    pub id: EventId,
    /// When it happened (UTC, RFC 3339).
    pub time: Timestamp,
    /// The gate's id.
    pub gate: String,
    /// The door concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub door: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// The card concerned, if any (hex).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub card_id: Option<CardId>,
    /// The outcome.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub result: Option<Outcome>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// Per-stage latencies in milliseconds.
    #[serde(skip_serializing_if = "Latencies::is_empty", default)]
    pub latencies: Latencies,
    /// The deletion receipt (`card.erased` only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub receipt: Option<Box<ErasureReceipt>>,
}

impl Event {
    /// The JSON published on MQTT and stored (encrypted) in the outbox.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising this plain struct cannot fail (string keys, finite-or-null numbers).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses an event's JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
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
    fn kinds_are_checked() {
        assert!(EventKind::new("door.forced_open").is_ok());
        assert!(EventKind::new("alarm.tamper").is_ok_and(|kind| kind.is_alarm()));
        for bad in [
            "door",
            "Door.open",
            "door..open",
            "door/open",
            "door.open#",
            "",
        ] {
            assert!(EventKind::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_json_has_the_documented_shape() {
        let event = NewEvent::new(EventKind::ACCESS_GRANTED, Timestamp::from_unix_ms(0))
            .door("main")
            .card(CardId::new(&[0xab, 0x01]).expect("card id"))
            .result(Outcome::Granted)
            .latencies(Latencies {
                match_ms: Some(12.5),
                ..Latencies::default()
            })
            .into_event(7, "gate-1");
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).expect("json");
        assert_eq!(
            json,
            serde_json::json!({
                "id": 7, "time": "1970-01-01T00:00:00.000Z", "gate": "gate-1", "door": "main",
                "kind": "access.granted", "card_id": "ab01", "result": "granted",
                "latencies": {"match_ms": 12.5}
            })
        );
        assert_eq!(Event::from_json(&event.to_json()).expect("parse"), event);
        // Unknown fields (a smuggled "template", say) are refused on input.
        let mut with_extra = json;
        with_extra["template"] = serde_json::json!("00");
        assert!(serde_json::from_value::<Event>(with_extra).is_err());
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
