//! The access policy: the [`Policy`] trait the access machine asks, [`AllowAll`], and the site
//! policy file (TOML: schedules, holidays, access groups, card assignments, anti-passback) as
//! [`PolicyRules`] + [`SitePolicy`]. Format and semantics: `docs/access-policy.md`.
//!
//! Loading is strict: unknown keys, unknown references (a group naming a missing schedule, a card
//! naming a missing group, a door that is not configured), malformed times and dates are errors
//! that name the file, the key and the reason. A policy that fails to load never replaces the one
//! in force (the daemon keeps the old one on SIGHUP and reports the error).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use super::meals::{MealDenial, MealEntitlement, MealRules, RawCanteen};
use crate::event::{CardId, Timestamp, days_from_civil};

/// Why the policy refuses a card (the `reason` of the `access.denied` event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRefusal(pub String);

/// What the access machine asks the site policy.
pub trait Policy {
    /// Whether `card` may pass `door` at `time` (checked before any palm capture).
    fn check(&self, card: &CardId, door: &str, time: Timestamp) -> Result<(), PolicyRefusal>;

    /// `card` was granted at `door` (anti-passback bookkeeping).
    fn granted(&mut self, card: &CardId, door: &str, time: Timestamp) {
        let _ = (card, door, time);
    }

    /// At a canteen gate, what `card` may have at `time` (`None`: `door` is not a canteen gate).
    /// Asked after [`Policy::check`] passed, before any palm capture.
    fn meal(
        &self,
        card: &CardId,
        door: &str,
        time: Timestamp,
    ) -> Option<Result<MealEntitlement, MealDenial>> {
        let _ = (card, door, time);
        None
    }

    /// The name of meal period `number` in the policy in force, if it has one.
    fn meal_period_name(&self, number: u32) -> Option<String> {
        let _ = number;
        None
    }
}

/// Every certified card, every door, any time (no policy file configured).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AllowAll;

impl Policy for AllowAll {
    fn check(&self, _card: &CardId, _door: &str, _time: Timestamp) -> Result<(), PolicyRefusal> {
        Ok(())
    }
}

/// The policy file in force plus the anti-passback memory, shared by the access machines of all
/// readers of the gate (clones share the memory, so an entry at one door counts at the others).
#[derive(Debug, Clone)]
pub struct SitePolicy {
    rules: Arc<PolicyRules>,
    passback: Arc<Mutex<BTreeMap<CardId, (Direction, Timestamp)>>>,
}

/// Which way a card last passed an anti-passback door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Through an entry door.
    In,
    /// Through an exit door.
    Out,
}

impl SitePolicy {
    /// A site policy with empty anti-passback memory.
    pub fn new(rules: PolicyRules) -> Self {
        Self {
            rules: Arc::new(rules),
            passback: Arc::default(),
        }
    }

    /// The same anti-passback memory under new rules (SIGHUP reload).
    pub fn with_rules(&self, rules: PolicyRules) -> Self {
        Self {
            rules: Arc::new(rules),
            passback: self.passback.clone(),
        }
    }

    /// The rules in force.
    pub fn rules(&self) -> &PolicyRules {
        &self.rules
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, BTreeMap<CardId, (Direction, Timestamp)>> {
        self.passback
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Policy for SitePolicy {
    fn check(&self, card: &CardId, door: &str, time: Timestamp) -> Result<(), PolicyRefusal> {
        match self.rules.check(card, door, time) {
            Ok(()) => {}
            Err(PolicyDenial::NotAuthorised) => {
                return Err(PolicyRefusal("not authorised for this door".into()));
            }
            Err(PolicyDenial::OutsideSchedule) => {
                return Err(PolicyRefusal("outside schedule".into()));
            }
        }
        if let Some(apb) = &self.rules.anti_passback
            && apb.entry_doors.contains(door)
            && let Some((Direction::In, at)) = self.memory().get(card).copied()
        {
            let age_ms = time.unix_ms().saturating_sub(at.unix_ms());
            if age_ms < i64::try_from(apb.reset_after_s.saturating_mul(1000)).unwrap_or(i64::MAX) {
                return Err(PolicyRefusal("anti-passback: card already inside".into()));
            }
        }
        Ok(())
    }

    fn granted(&mut self, card: &CardId, door: &str, time: Timestamp) {
        let Some(apb) = &self.rules.anti_passback else {
            return;
        };
        let direction = if apb.entry_doors.contains(door) {
            Direction::In
        } else if apb.exit_doors.contains(door) {
            Direction::Out
        } else {
            return;
        };
        self.memory().insert(card.clone(), (direction, time));
    }

    fn meal(
        &self,
        card: &CardId,
        door: &str,
        time: Timestamp,
    ) -> Option<Result<MealEntitlement, MealDenial>> {
        self.rules.meal(card, door, time)
    }

    fn meal_period_name(&self, number: u32) -> Option<String> {
        self.rules.meal_period_name(number).map(str::to_owned)
    }
}

/// A policy that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The file could not be read.
    #[error("access policy {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: std::io::Error,
    },
    /// TOML syntax or an unknown / mistyped key.
    #[error("access policy {path}: {key}: {reason}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Key path of the problem (`.` when unknown).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A value that parses but makes no sense.
    #[error("access policy {path}: {key}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Key path of the problem.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: u32,
    #[serde(default)]
    utc_offset_minutes: i32,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    default_groups: Vec<String>,
    #[serde(default)]
    schedule: BTreeMap<String, RawSchedule>,
    #[serde(default)]
    group: BTreeMap<String, RawGroup>,
    #[serde(default)]
    card: BTreeMap<String, RawCard>,
    #[serde(default)]
    anti_passback: Option<RawAntiPassback>,
    #[serde(default)]
    canteen: RawCanteen,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    #[serde(default)]
    mon: Vec<String>,
    #[serde(default)]
    tue: Vec<String>,
    #[serde(default)]
    wed: Vec<String>,
    #[serde(default)]
    thu: Vec<String>,
    #[serde(default)]
    fri: Vec<String>,
    #[serde(default)]
    sat: Vec<String>,
    #[serde(default)]
    sun: Vec<String>,
    #[serde(default)]
    holiday: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    #[serde(default)]
    doors: Vec<String>,
    #[serde(default)]
    schedule: Option<String>,
    #[serde(default)]
    valid_on: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCard {
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAntiPassback {
    #[serde(default)]
    entry_doors: Vec<String>,
    #[serde(default)]
    exit_doors: Vec<String>,
    #[serde(default = "default_passback_reset")]
    reset_after_s: u64,
}

fn default_passback_reset() -> u64 {
    12 * 3600
}

/// A time range within a day, in minutes since local midnight: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub(super) start: u16,
    pub(super) end: u16,
}

impl Range {
    /// Whether `minute` (since local midnight) is in the range.
    pub(super) fn contains(self, minute: u16) -> bool {
        self.start <= minute && minute < self.end
    }
}

impl std::fmt::Display for Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hhmm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hhmm(self.start), hhmm(self.end))
    }
}

/// A moment in the site's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LocalTime {
    /// Local days since 1970-01-01.
    pub(super) day: i64,
    /// Minutes since local midnight.
    pub(super) minute: u16,
    /// Monday = 0 … Sunday = 6.
    pub(super) weekday: usize,
    /// Whether the local date is one of the policy's holidays.
    pub(super) holiday: bool,
}

impl LocalTime {
    /// Which rules apply: the weekday's (0–6), or the holidays' (7).
    pub(super) fn day_kind(&self) -> usize {
        if self.holiday { 7 } else { self.weekday }
    }
}

/// Weekly opening ranges plus the ranges that apply on holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Monday = 0 … Sunday = 6.
    week: [Vec<Range>; 7],
    holiday: Vec<Range>,
}

/// An access group: which doors, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Doors (`None` = every door but the canteen gates).
    doors: Option<BTreeSet<String>>,
    /// When its doors open (`None` only for a group without doors).
    schedule: Option<String>,
    /// Local days on which the group applies at all (`None`: every day), e.g. guests.
    valid_on: Option<BTreeSet<i64>>,
}

/// Anti-passback: a card that entered must leave before it enters again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AntiPassback {
    /// Doors that lead in.
    pub entry_doors: BTreeSet<String>,
    /// Doors that lead out.
    pub exit_doors: BTreeSet<String>,
    /// After this long without a passage, a card's direction is forgotten (seconds).
    pub reset_after_s: u64,
}

/// A validated access policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRules {
    utc_offset_minutes: i32,
    holidays: BTreeSet<i64>,
    default_groups: Vec<String>,
    schedules: BTreeMap<String, Schedule>,
    groups: BTreeMap<String, Group>,
    cards: BTreeMap<CardId, Vec<String>>,
    /// Anti-passback, when configured.
    pub anti_passback: Option<AntiPassback>,
    meals: MealRules,
}

/// Why the policy refuses a card at a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDenial {
    /// No group of the card includes the door.
    NotAuthorised,
    /// A group includes the door, but none is open now.
    OutsideSchedule,
}

impl PolicyRules {
    /// Rules that let every certified card through every door at any time (the daemon's
    /// fallback when no policy file is configured).
    pub fn allow_all() -> Self {
        let always = vec![Range {
            start: 0,
            end: 24 * 60,
        }];
        let schedule = Schedule {
            week: std::array::from_fn(|_| always.clone()),
            holiday: always.clone(),
        };
        Self {
            utc_offset_minutes: 0,
            holidays: BTreeSet::new(),
            default_groups: vec!["everyone".into()],
            schedules: BTreeMap::from([("always".into(), schedule)]),
            groups: BTreeMap::from([(
                "everyone".into(),
                Group {
                    doors: None,
                    schedule: Some("always".into()),
                    valid_on: None,
                },
            )]),
            cards: BTreeMap::new(),
            anti_passback: None,
            meals: MealRules::default(),
        }
    }

    /// Loads and validates a policy file against the configured door names.
    /// Only a regular file of bounded size is read (a reload must not hang on a FIFO).
    pub fn load(path: &Path, doors: &BTreeSet<String>) -> Result<Self, PolicyError> {
        use crate::config::files::{MAX_POLICY_FILE_BYTES, read_bounded_to_string};
        let text = read_bounded_to_string(path, MAX_POLICY_FILE_BYTES).map_err(|error| {
            PolicyError::Io {
                path: path.to_owned(),
                error: std::io::Error::other(error),
            }
        })?;
        Self::parse(&text, path, doors)
    }

    /// Parses and validates policy text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path, doors: &BTreeSet<String>) -> Result<Self, PolicyError> {
        let deserializer = toml::Deserializer::parse(text).map_err(|e| PolicyError::Syntax {
            path: path.to_owned(),
            key: ".".into(),
            reason: e.to_string(),
        })?;
        let raw: RawPolicy =
            serde_path_to_error::deserialize(deserializer).map_err(|e| PolicyError::Syntax {
                path: path.to_owned(),
                key: e.path().to_string(),
                reason: e.inner().to_string(),
            })?;
        let invalid = |key: String, reason: String| PolicyError::Invalid {
            path: path.to_owned(),
            key,
            reason,
        };
        if raw.version != 1 {
            return Err(invalid(
                "version".into(),
                format!("unsupported version {}", raw.version),
            ));
        }
        if !(-14 * 60..=14 * 60).contains(&raw.utc_offset_minutes) {
            return Err(invalid(
                "utc_offset_minutes".into(),
                "must be within ±14 h".into(),
            ));
        }
        let mut holidays = BTreeSet::new();
        for (i, date) in raw.holidays.iter().enumerate() {
            let day = parse_date(date).ok_or_else(|| {
                invalid(
                    format!("holidays[{i}]"),
                    format!("{date:?} is not YYYY-MM-DD"),
                )
            })?;
            holidays.insert(day);
        }
        let mut schedules = BTreeMap::new();
        for (name, s) in &raw.schedule {
            let days = [
                &s.mon, &s.tue, &s.wed, &s.thu, &s.fri, &s.sat, &s.sun, &s.holiday,
            ];
            let labels = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"];
            let mut parsed: Vec<Vec<Range>> = Vec::new();
            for (ranges, label) in days.iter().zip(labels) {
                let mut out = Vec::new();
                for (i, text) in ranges.iter().enumerate() {
                    out.push(parse_range(text).ok_or_else(|| {
                        invalid(
                            format!("schedule.{name}.{label}[{i}]"),
                            format!("{text:?} is not HH:MM-HH:MM with start before end (end up to 24:00)"),
                        )
                    })?);
                }
                parsed.push(out);
            }
            let holiday = parsed.pop().unwrap_or_default();
            let week: [Vec<Range>; 7] = std::array::from_fn(|d| parsed[d].clone());
            schedules.insert(name.clone(), Schedule { week, holiday });
        }
        let check_door = |key: String, door: &str| {
            if door == "*" || doors.contains(door) {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("door {door:?} is not configured ([door.{door}])"),
                ))
            }
        };
        let canteen_doors: BTreeSet<&str> = raw.canteen_doors().collect();
        let mut groups = BTreeMap::new();
        for (name, g) in &raw.group {
            match &g.schedule {
                Some(schedule) if !schedules.contains_key(schedule) => {
                    return Err(invalid(
                        format!("group.{name}.schedule"),
                        format!("schedule {schedule:?} is not defined"),
                    ));
                }
                None if !g.doors.is_empty() => {
                    return Err(invalid(
                        format!("group.{name}.schedule"),
                        "a group with doors needs a schedule".into(),
                    ));
                }
                _ => {}
            }
            for (i, door) in g.doors.iter().enumerate() {
                let key = format!("group.{name}.doors[{i}]");
                check_door(key.clone(), door)?;
                if canteen_doors.contains(door.as_str()) {
                    return Err(invalid(
                        key,
                        format!(
                            "door {door:?} is a canteen gate: who passes it is decided by \
                             [canteen.allowance]"
                        ),
                    ));
                }
            }
            let doors = if g.doors.iter().any(|d| d == "*") {
                None
            } else {
                Some(g.doors.iter().cloned().collect())
            };
            let valid_on = if g.valid_on.is_empty() {
                None
            } else {
                let mut days = BTreeSet::new();
                for (i, date) in g.valid_on.iter().enumerate() {
                    days.insert(parse_date(date).ok_or_else(|| {
                        invalid(
                            format!("group.{name}.valid_on[{i}]"),
                            format!("{date:?} is not YYYY-MM-DD"),
                        )
                    })?);
                }
                Some(days)
            };
            groups.insert(
                name.clone(),
                Group {
                    doors,
                    schedule: g.schedule.clone(),
                    valid_on,
                },
            );
        }
        let check_groups = |key: &str, names: &[String]| {
            for (i, group) in names.iter().enumerate() {
                if !groups.contains_key(group) {
                    return Err(invalid(
                        format!("{key}[{i}]"),
                        format!("group {group:?} is not defined"),
                    ));
                }
            }
            Ok(())
        };
        check_groups("default_groups", &raw.default_groups)?;
        let mut cards = BTreeMap::new();
        for (id, card) in &raw.card {
            let card_id = CardId::from_hex(id).ok_or_else(|| {
                invalid(
                    format!("card.{id}"),
                    "card ids are 1 to 32 bytes of hex".into(),
                )
            })?;
            check_groups(&format!("card.{id}.groups"), &card.groups)?;
            if cards.insert(card_id, card.groups.clone()).is_some() {
                return Err(invalid(
                    format!("card.{id}"),
                    "card listed twice (hex case differs)".into(),
                ));
            }
        }
        let anti_passback = match raw.anti_passback {
            None => None,
            Some(apb) => {
                for (i, door) in apb.entry_doors.iter().enumerate() {
                    check_door(format!("anti_passback.entry_doors[{i}]"), door)?;
                }
                for (i, door) in apb.exit_doors.iter().enumerate() {
                    check_door(format!("anti_passback.exit_doors[{i}]"), door)?;
                }
                let entry: BTreeSet<String> = apb.entry_doors.into_iter().collect();
                let exit: BTreeSet<String> = apb.exit_doors.into_iter().collect();
                if let Some(both) = entry.intersection(&exit).next() {
                    return Err(invalid(
                        "anti_passback".into(),
                        format!("door {both:?} is both an entry and an exit door"),
                    ));
                }
                Some(AntiPassback {
                    entry_doors: entry,
                    exit_doors: exit,
                    reset_after_s: apb.reset_after_s,
                })
            }
        };
        let meals = MealRules::parse(
            raw.canteen,
            |door| doors.contains(door),
            |group| groups.contains_key(group),
        )
        .map_err(|(key, reason)| invalid(key, reason))?;
        Ok(Self {
            utc_offset_minutes: raw.utc_offset_minutes,
            holidays,
            default_groups: raw.default_groups,
            schedules,
            groups,
            cards,
            anti_passback,
            meals,
        })
    }

    /// The canteen rules.
    pub fn meals(&self) -> &MealRules {
        &self.meals
    }

    /// `time` in the site's local time.
    pub(super) fn local(&self, time: Timestamp) -> LocalTime {
        let local_ms = time.unix_ms() + i64::from(self.utc_offset_minutes) * 60_000;
        let day = local_ms.div_euclid(86_400_000);
        LocalTime {
            day,
            minute: u16::try_from(local_ms.rem_euclid(86_400_000) / 60_000).unwrap_or(0),
            weekday: weekday(day),
            holiday: self.holidays.contains(&day),
        }
    }

    /// The meal period open at `time` (its number, as the card compares it, and its name), if
    /// any. I/O-free: the time is given.
    pub fn meal_period_at(&self, time: Timestamp) -> Option<(u32, &str)> {
        self.meals
            .period_at(&self.local(time))
            .map(|period| (period.number, period.name))
    }

    /// The name of meal period `number` under these rules (for a receipt read back from a card).
    pub fn meal_period_name(&self, number: u32) -> Option<&str> {
        let day = i64::from(number / super::meals::MAX_PERIODS_PER_DAY as u32);
        let kind = if self.holidays.contains(&day) {
            7
        } else {
            weekday(day)
        };
        self.meals.period_name(number, kind)
    }

    /// The card's groups (its own, or the default ones).
    fn groups_of(&self, card: &CardId) -> &[String] {
        self.cards.get(card).unwrap_or(&self.default_groups)
    }

    /// Whether group `name` applies on local day `day` (a guest group only on its days).
    fn group_valid_on(&self, name: &str, day: i64) -> bool {
        self.groups.get(name).is_some_and(|group| {
            group
                .valid_on
                .as_ref()
                .is_none_or(|days| days.contains(&day))
        })
    }

    /// At a canteen gate, what `card` may have at `time`; `None` when `door` is not a canteen
    /// gate.
    pub fn meal(
        &self,
        card: &CardId,
        door: &str,
        time: Timestamp,
    ) -> Option<Result<MealEntitlement, MealDenial>> {
        if !self.meals.is_canteen(door) {
            return None;
        }
        let local = self.local(time);
        let groups = self.groups_of(card);
        let valid = groups
            .iter()
            .map(String::as_str)
            .filter(|group| self.group_valid_on(group, local.day));
        Some(
            self.meals
                .entitlement(&local, valid, groups.iter().map(String::as_str)),
        )
    }

    /// Whether `card` may pass `door` at `time`.
    /// At a canteen gate this always passes: [`PolicyRules::meal`] decides there.
    pub fn check(&self, card: &CardId, door: &str, time: Timestamp) -> Result<(), PolicyDenial> {
        if self.meals.is_canteen(door) {
            return Ok(());
        }
        let LocalTime {
            day,
            minute,
            weekday,
            holiday,
        } = self.local(time);
        let mut door_allowed = false;
        for group in self
            .groups_of(card)
            .iter()
            .filter(|name| self.group_valid_on(name, day))
            .filter_map(|name| self.groups.get(name))
        {
            if group
                .doors
                .as_ref()
                .is_some_and(|doors| !doors.contains(door))
            {
                continue;
            }
            door_allowed = true;
            let Some(schedule) = group.schedule.as_ref().and_then(|s| self.schedules.get(s)) else {
                continue;
            };
            let ranges = if holiday {
                &schedule.holiday
            } else {
                &schedule.week[weekday]
            };
            if ranges.iter().any(|r| r.contains(minute)) {
                return Ok(());
            }
        }
        Err(if door_allowed {
            PolicyDenial::OutsideSchedule
        } else {
            PolicyDenial::NotAuthorised
        })
    }
}

fn parse_hhmm(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && (h < 24 || m == 0)).then_some(h * 60 + m)
}

/// Monday = 0 … Sunday = 6 of a day since 1970-01-01 (a Thursday).
fn weekday(day: i64) -> usize {
    usize::try_from((day + 3).rem_euclid(7)).unwrap_or(0)
}

impl RawPolicy {
    fn canteen_doors(&self) -> impl Iterator<Item = &str> {
        self.canteen.doors.iter().map(String::as_str)
    }
}

pub(super) fn parse_range(text: &str) -> Option<Range> {
    let (start, end) = text.split_once('-')?;
    let (start, end) = (parse_hhmm(start.trim())?, parse_hhmm(end.trim())?);
    (start < end).then_some(Range { start, end })
}

fn parse_date(text: &str) -> Option<i64> {
    let ts = Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))?;
    let day = ts.unix_ms().div_euclid(86_400_000);
    // Reject forms such as "2026-1-05" that the timestamp parser would not produce back.
    (text.len() == 10 && days_from_civil_checked(text) == Some(day)).then_some(day)
}

fn days_from_civil_checked(text: &str) -> Option<i64> {
    let y: i64 = text.get(0..4)?.parse().ok()?;
    let m: i64 = text.get(5..7)?.parse().ok()?;
    let d: i64 = text.get(8..10)?.parse().ok()?;
    Some(days_from_civil(y, m, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_in_place_of_the_policy_file_is_refused_not_read_forever() {
        let error =
            PolicyRules::load(Path::new("/dev/zero"), &BTreeSet::new()).expect_err("a device");
        assert!(matches!(error, PolicyError::Io { .. }), "{error:?}");
    }

    const POLICY: &str = r#"
version = 1
utc_offset_minutes = 60
holidays = ["2026-12-25"]
default_groups = ["visitors"]

[schedule.office]
mon = ["07:00-12:00", "13:00-19:00"]
tue = ["07:00-19:00"]
wed = ["07:00-19:00"]
thu = ["07:00-19:00"]
fri = ["07:00-17:00"]

[schedule.always]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]
holiday = ["00:00-24:00"]

[group.staff]
doors = ["main", "side"]
schedule = "office"

[group.security]
doors = ["*"]
schedule = "always"

[group.visitors]
doors = ["main"]
schedule = "office"

[card.00112233445566778899aabbccddeeff]
groups = ["staff"]

[card.ffeeddccbbaa99887766554433221100]
groups = ["security"]

[anti_passback]
entry_doors = ["main"]
exit_doors = ["exit"]
reset_after_s = 3600
"#;

    fn doors() -> BTreeSet<String> {
        ["main", "side", "exit"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn rules() -> PolicyRules {
        PolicyRules::parse(POLICY, Path::new("policy.toml"), &doors()).expect("valid policy")
    }

    fn card(hex: &str) -> CardId {
        CardId::from_hex(hex).expect("card")
    }

    /// Local time (UTC+1) on a given date → timestamp.
    fn local(date: &str, hh: i64, mm: i64) -> Timestamp {
        let day = parse_date(date).expect("date");
        Timestamp::from_unix_ms(day * 86_400_000 + ((hh - 1) * 60 + mm) * 60_000)
    }

    const STAFF: &str = "00112233445566778899aabbccddeeff";
    const GUARD: &str = "ffeeddccbbaa99887766554433221100";
    const VISITOR: &str = "0102";

    #[test]
    fn schedule_table() {
        let rules = rules();
        // 2026-11-23 is a Monday, 2026-11-28 a Saturday, 2026-12-25 a holiday (Friday).
        let cases = [
            (STAFF, "main", local("2026-11-23", 8, 0), Ok(())),
            (
                STAFF,
                "main",
                local("2026-11-23", 12, 30),
                Err(PolicyDenial::OutsideSchedule),
            ),
            (
                STAFF,
                "main",
                local("2026-11-23", 6, 59),
                Err(PolicyDenial::OutsideSchedule),
            ),
            (STAFF, "main", local("2026-11-23", 7, 0), Ok(())),
            (STAFF, "main", local("2026-11-23", 18, 59), Ok(())),
            (
                STAFF,
                "main",
                local("2026-11-23", 19, 0),
                Err(PolicyDenial::OutsideSchedule),
            ),
            (STAFF, "side", local("2026-11-24", 9, 0), Ok(())),
            (
                STAFF,
                "exit",
                local("2026-11-24", 9, 0),
                Err(PolicyDenial::NotAuthorised),
            ),
            (
                STAFF,
                "main",
                local("2026-11-28", 9, 0),
                Err(PolicyDenial::OutsideSchedule),
            ),
            (
                STAFF,
                "main",
                local("2026-12-25", 9, 0),
                Err(PolicyDenial::OutsideSchedule),
            ),
            (GUARD, "exit", local("2026-12-25", 3, 0), Ok(())),
            (GUARD, "main", local("2026-11-28", 23, 59), Ok(())),
            (VISITOR, "main", local("2026-11-26", 10, 0), Ok(())),
            (
                VISITOR,
                "side",
                local("2026-11-26", 10, 0),
                Err(PolicyDenial::NotAuthorised),
            ),
        ];
        for (card_hex, door, time, expected) in cases {
            assert_eq!(
                rules.check(&card(card_hex), door, time),
                expected,
                "{card_hex} {door} {time}"
            );
        }
    }

    #[test]
    fn anti_passback_refuses_a_second_entry_until_an_exit() {
        let mut policy = SitePolicy::new(rules());
        let guard = card(GUARD);
        let t = local("2026-11-24", 9, 0);
        assert_eq!(policy.check(&guard, "main", t), Ok(()));
        policy.granted(&guard, "main", t);
        let refused = policy.check(&guard, "main", local("2026-11-24", 9, 5));
        assert_eq!(
            refused,
            Err(PolicyRefusal("anti-passback: card already inside".into()))
        );
        // Clones (other readers) share the memory; reloading keeps it.
        let reloaded = policy.with_rules(rules());
        assert!(
            reloaded
                .check(&guard, "main", local("2026-11-24", 9, 5))
                .is_err()
        );
        policy.granted(&guard, "exit", local("2026-11-24", 9, 10));
        assert_eq!(
            reloaded.check(&guard, "main", local("2026-11-24", 9, 11)),
            Ok(())
        );
        // The memory expires.
        policy.granted(&guard, "main", t);
        assert_eq!(
            policy.check(&guard, "main", local("2026-11-24", 10, 1)),
            Ok(())
        );
    }

    #[test]
    fn invalid_policies_name_the_key_and_reason() {
        let cases = [
            ("version = 2", "version", "unsupported version"),
            ("version = 1\ncolour = 1", ".", "unknown field `colour`"),
            (
                "version = 1\nholidays = [\"2026-02-30\"]",
                "holidays[0]",
                "not YYYY-MM-DD",
            ),
            (
                "version = 1\n[schedule.s]\nmon = [\"19:00-07:00\"]",
                "schedule.s.mon[0]",
                "HH:MM-HH:MM",
            ),
            (
                "version = 1\n[group.g]\ndoors = [\"main\"]\nschedule = \"nope\"",
                "group.g.schedule",
                "not defined",
            ),
            (
                "version = 1\n[schedule.s]\n[group.g]\ndoors = [\"cellar\"]\nschedule = \"s\"",
                "group.g.doors[0]",
                "not configured",
            ),
            ("version = 1\n[card.zz]\ngroups = []", "card.zz", "hex"),
            (
                "version = 1\n[card.01]\ngroups = [\"ghost\"]",
                "card.01.groups[0]",
                "not defined",
            ),
            (
                "version = 1\ndefault_groups = [\"ghost\"]",
                "default_groups[0]",
                "not defined",
            ),
            (
                "version = 1\n[group.g]\ndoors = [\"main\"]",
                "group.g.schedule",
                "needs a schedule",
            ),
            (
                "version = 1\n[anti_passback]\nentry_doors = [\"main\"]\nexit_doors = [\"main\"]",
                "anti_passback",
                "both",
            ),
        ];
        for (text, key, reason) in cases {
            let error = PolicyRules::parse(text, Path::new("/etc/palmgate/policy.toml"), &doors())
                .expect_err(text);
            let message = error.to_string();
            assert!(
                message.starts_with("access policy /etc/palmgate/policy.toml: "),
                "{message}"
            );
            assert!(message.contains(key), "{text}: {message} lacks key {key}");
            assert!(
                message.contains(reason),
                "{text}: {message} lacks reason {reason}"
            );
        }
    }

    #[test]
    fn loads_from_a_file_and_allow_all_opens_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.toml");
        std::fs::write(&path, POLICY).expect("write");
        assert_eq!(PolicyRules::load(&path, &doors()).expect("load"), rules());
        let missing =
            PolicyRules::load(&dir.path().join("nope.toml"), &doors()).expect_err("missing");
        assert!(matches!(missing, PolicyError::Io { .. }));
        let open = PolicyRules::allow_all();
        assert_eq!(
            open.check(&card(STAFF), "anything", local("2026-12-25", 3, 0)),
            Ok(())
        );
        assert_eq!(
            AllowAll.check(&card(STAFF), "main", Timestamp::from_unix_ms(0)),
            Ok(())
        );
    }

    proptest::proptest! {
        #[test]
        fn policy_text_never_panics(text in "\\PC{0,300}") {
            let _ = PolicyRules::parse(&text, Path::new("p.toml"), &doors());
        }

        #[test]
        fn schedules_never_open_outside_their_ranges(minute in 0i64..(7 * 24 * 60)) {
            let rules = rules();
            // Week of Monday 2026-11-23, local time.
            let t = local("2026-11-23", 0, 0);
            let t = Timestamp::from_unix_ms(t.unix_ms() + minute * 60_000);
            let day = minute / (24 * 60);
            let m = minute % (24 * 60);
            let open = match day {
                0 => (420..720).contains(&m) || (780..1140).contains(&m),
                1..=3 => (420..1140).contains(&m),
                4 => (420..1020).contains(&m),
                _ => false,
            };
            proptest::prop_assert_eq!(rules.check(&card(STAFF), "main", t).is_ok(), open);
        }
    }
}
