//! Canteen rules of the access policy: named meal periods by weekday and time of day, allowances
//! per group and period, which doors are canteen gates; and the I/O-free period computation.
//!
//! The period number is what the card compares (docs/applet-protocol.md, REDEEM MEAL):
//! `days since 1970-01-01 in the site's local time × 16 + index of the period in that day`, where
//! the index is the rank of the period among that day's periods by start time. It grows with
//! time, so a card's count starts again at the next period, and a gate whose clock is behind can
//! never reset a card (the card refuses a period older than the one it stored).
//!
//! Format and semantics: docs/access-policy.md, "Canteen".

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::policy::{LocalTime, Range, parse_range};

/// At most this many meal periods in one day: the index takes 4 bits of the period number.
pub const MAX_PERIODS_PER_DAY: usize = 16;

/// `[canteen]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCanteen {
    #[serde(default)]
    pub(super) doors: Vec<String>,
    #[serde(default)]
    period: BTreeMap<String, RawMealPeriod>,
    #[serde(default)]
    allowance: BTreeMap<String, BTreeMap<String, u8>>,
}

/// `[canteen.period.<name>]`: one range per day at most (a meal is one stretch of time).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMealPeriod {
    mon: Option<String>,
    tue: Option<String>,
    wed: Option<String>,
    thu: Option<String>,
    fri: Option<String>,
    sat: Option<String>,
    sun: Option<String>,
    holiday: Option<String>,
}

/// Day labels in the order of [`MealRules::days`]: Monday = 0 … Sunday = 6, then holidays.
const DAY_LABELS: [&str; 8] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"];

/// A validation problem: the key (below `canteen`) and the reason.
pub(super) type Problem = (String, String);

/// The validated canteen rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MealRules {
    /// Doors that are canteen gates.
    doors: BTreeSet<String>,
    /// Per day kind (weekdays, then holidays): the periods of that day sorted by start time; a
    /// period's index in the day is its position here.
    days: [Vec<(Range, String)>; 8],
    /// Group → period → meals allowed in one period.
    allowances: BTreeMap<String, BTreeMap<String, u8>>,
}

/// The meal period a local time falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MealPeriodAt<'a> {
    /// The number the card compares (days × 16 + index).
    pub number: u32,
    /// The period's name (`lunch`).
    pub name: &'a str,
}

/// What a card may have at a canteen gate now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealEntitlement {
    /// The period number the card compares.
    pub period: u32,
    /// The period's name.
    pub period_name: String,
    /// Meals allowed in this period (the largest allowance among the card's groups).
    pub allowance: u8,
    /// The group that gives the allowance (the one the meal is counted for).
    pub group: String,
}

/// Why a card gets no meal now (checked before any palm capture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MealDenial {
    /// No meal period is open at this time.
    OutsidePeriods,
    /// A period is open, but none of the card's groups has an allowance for it.
    NotEntitled {
        /// The open period.
        period_name: String,
    },
    /// The card's groups that have an allowance are valid on other days only (guests).
    NotValidToday {
        /// The open period.
        period_name: String,
    },
}

impl MealDenial {
    /// Words for people (the event's `detail`, the feedback).
    pub fn detail(&self) -> String {
        match self {
            Self::OutsidePeriods => "no meal is served at this time".to_string(),
            Self::NotEntitled { period_name } => {
                format!("no {period_name} allowance for this card")
            }
            Self::NotValidToday { period_name } => {
                format!("this card is not valid today ({period_name})")
            }
        }
    }
}

impl MealRules {
    /// Validates `[canteen]`. `is_door` says whether a door is configured, `is_group` whether a
    /// group is defined. Every problem is returned (key below the file's root, reason).
    pub(super) fn parse(
        raw: RawCanteen,
        is_door: impl Fn(&str) -> bool,
        is_group: impl Fn(&str) -> bool,
    ) -> Result<Self, Problem> {
        let mut doors = BTreeSet::new();
        for (i, door) in raw.doors.iter().enumerate() {
            if !is_door(door) {
                return Err((
                    format!("canteen.doors[{i}]"),
                    format!("door {door:?} is not configured ([door.{door}])"),
                ));
            }
            doors.insert(door.clone());
        }
        let mut days: [Vec<(Range, String)>; 8] = Default::default();
        for (name, period) in &raw.period {
            let texts = [
                &period.mon,
                &period.tue,
                &period.wed,
                &period.thu,
                &period.fri,
                &period.sat,
                &period.sun,
                &period.holiday,
            ];
            for ((day, text), label) in days.iter_mut().zip(texts).zip(DAY_LABELS) {
                let Some(text) = text else { continue };
                let range = parse_range(text).ok_or_else(|| {
                    (
                        format!("canteen.period.{name}.{label}"),
                        format!(
                            "{text:?} is not HH:MM-HH:MM with start before end (end up to 24:00)"
                        ),
                    )
                })?;
                day.push((range, name.clone()));
            }
        }
        for (day, label) in days.iter_mut().zip(DAY_LABELS) {
            day.sort_by_key(|(range, _)| range.start);
            if day.len() > MAX_PERIODS_PER_DAY {
                return Err((
                    "canteen.period".to_string(),
                    format!(
                        "{} meal periods on {label}: at most {MAX_PERIODS_PER_DAY} a day",
                        day.len()
                    ),
                ));
            }
            for pair in day.windows(2) {
                let [(first, first_name), (second, second_name)] = pair else {
                    continue;
                };
                if second.start < first.end {
                    return Err((
                        format!("canteen.period.{second_name}.{label}"),
                        format!(
                            "{second} overlaps period {first_name:?} ({first}) on {label}: a \
                             time belongs to one meal period at most"
                        ),
                    ));
                }
            }
        }
        for (group, periods) in &raw.allowance {
            if !is_group(group) {
                return Err((
                    format!("canteen.allowance.{group}"),
                    format!("group {group:?} is not defined"),
                ));
            }
            for (period, allowance) in periods {
                let key = format!("canteen.allowance.{group}.{period}");
                if !raw.period.contains_key(period) {
                    return Err((key, format!("meal period {period:?} is not defined")));
                }
                if *allowance == 0 {
                    return Err((
                        key,
                        "an allowance of 0 serves nothing: leave the period out instead".into(),
                    ));
                }
            }
        }
        Ok(Self {
            doors,
            days,
            allowances: raw.allowance,
        })
    }

    /// Whether `door` is a canteen gate.
    pub fn is_canteen(&self, door: &str) -> bool {
        self.doors.contains(door)
    }

    /// The canteen gates.
    pub fn doors(&self) -> &BTreeSet<String> {
        &self.doors
    }

    /// The groups that have an allowance for some period (in name order).
    pub fn groups(&self) -> impl Iterator<Item = &str> {
        self.allowances.keys().map(String::as_str)
    }

    /// The meal period open at a local time, if any.
    pub(super) fn period_at(&self, local: &LocalTime) -> Option<MealPeriodAt<'_>> {
        let day = u32::try_from(local.day).ok()?;
        let periods = &self.days[local.day_kind()];
        let (index, (_, name)) = periods
            .iter()
            .enumerate()
            .find(|(_, (range, _))| range.contains(local.minute))?;
        let index = u32::try_from(index).ok()?;
        let number = day
            .checked_mul(MAX_PERIODS_PER_DAY as u32)?
            .checked_add(index)?;
        Some(MealPeriodAt { number, name })
    }

    /// The name of period `number` under these rules (`holiday` says whether its day was one).
    pub(super) fn period_name(&self, number: u32, day_kind: usize) -> Option<&str> {
        let index = usize::try_from(number % MAX_PERIODS_PER_DAY as u32).ok()?;
        self.days
            .get(day_kind)?
            .get(index)
            .map(|(_, name)| name.as_str())
    }

    /// What a card with `groups` (those valid today) may have at `local`; `all_groups` are the
    /// card's groups whatever the day, to tell a guest on the wrong day from a card that has no
    /// allowance at all.
    pub(super) fn entitlement<'g>(
        &self,
        local: &LocalTime,
        valid_groups: impl Iterator<Item = &'g str>,
        all_groups: impl Iterator<Item = &'g str>,
    ) -> Result<MealEntitlement, MealDenial> {
        let period = self.period_at(local).ok_or(MealDenial::OutsidePeriods)?;
        let allowance_of = |group: &str| {
            self.allowances
                .get(group)
                .and_then(|periods| periods.get(period.name))
                .copied()
        };
        // The largest allowance wins; on a tie the first group in the card's order.
        let mut best: Option<(u8, &str)> = None;
        for group in valid_groups {
            if let Some(allowance) = allowance_of(group)
                && best.is_none_or(|(most, _)| allowance > most)
            {
                best = Some((allowance, group));
            }
        }
        match best {
            Some((allowance, group)) => Ok(MealEntitlement {
                period: period.number,
                period_name: period.name.to_string(),
                allowance,
                group: group.to_string(),
            }),
            None => {
                let period_name = period.name.to_string();
                let mut all_groups = all_groups;
                if all_groups.any(|group| allowance_of(group).is_some()) {
                    Err(MealDenial::NotValidToday { period_name })
                } else {
                    Err(MealDenial::NotEntitled { period_name })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::access::{PolicyDenial, PolicyRules};
    use crate::event::{CardId, Timestamp, days_from_civil};

    /// A site at UTC+1 with two canteen gates, lunch and dinner on weekdays, brunch on holidays
    /// and a late snack up to midnight on Fridays.
    const POLICY: &str = r#"
version = 1
utc_offset_minutes = 60
holidays = ["2026-12-25"]
default_groups = ["staff"]

[schedule.office]
mon = ["07:00-19:00"]

[group.staff]
doors = ["*"]
schedule = "office"

[group.kitchen]

[group.guests]
valid_on = ["2026-12-08"]

[card.00112233445566778899aabbccddeeff]
groups = ["staff", "kitchen"]

[card.aa]
groups = ["guests"]

[card.bb]
groups = ["nothing"]

[group.nothing]

[canteen]
doors = ["canteen-east", "canteen-west"]

[canteen.period.lunch]
mon = "11:30-14:00"
tue = "11:30-14:00"
fri = "11:30-14:00"

[canteen.period.dinner]
mon = "18:00-20:30"
tue = "18:00-20:30"

[canteen.period.brunch]
holiday = "10:00-13:00"

[canteen.period.snack]
fri = "23:00-24:00"

[canteen.period.early]
sat = "00:00-01:00"

[canteen.allowance.staff]
lunch = 1
dinner = 1
brunch = 1
snack = 1
early = 1

[canteen.allowance.kitchen]
lunch = 2
dinner = 2

[canteen.allowance.guests]
lunch = 1
"#;

    fn doors() -> BTreeSet<String> {
        ["main", "canteen-east", "canteen-west"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn rules() -> PolicyRules {
        PolicyRules::parse(POLICY, Path::new("policy.toml"), &doors()).expect("valid policy")
    }

    fn day(y: i64, m: i64, d: i64) -> i64 {
        days_from_civil(y, m, d)
    }

    /// Local time (UTC+1) → timestamp.
    fn local(y: i64, m: i64, d: i64, hh: i64, mm: i64) -> Timestamp {
        Timestamp::from_unix_ms(day(y, m, d) * 86_400_000 + ((hh - 1) * 60 + mm) * 60_000)
    }

    fn number(y: i64, m: i64, d: i64, index: u32) -> u32 {
        u32::try_from(day(y, m, d)).expect("after 1970") * 16 + index
    }

    #[test]
    fn period_numbers_follow_local_days_and_the_order_of_the_day() {
        let rules = rules();
        // 2026-12-07 is a Monday, 2026-12-11 a Friday, 2026-12-12 a Saturday, 2026-12-25 a
        // holiday (a Friday).
        let cases = [
            (local(2026, 12, 7, 11, 29), None),
            (
                local(2026, 12, 7, 11, 30),
                Some((number(2026, 12, 7, 0), "lunch")),
            ),
            (
                local(2026, 12, 7, 13, 59),
                Some((number(2026, 12, 7, 0), "lunch")),
            ),
            (local(2026, 12, 7, 14, 0), None),
            (
                local(2026, 12, 7, 18, 0),
                Some((number(2026, 12, 7, 1), "dinner")),
            ),
            (
                local(2026, 12, 8, 12, 0),
                Some((number(2026, 12, 8, 0), "lunch")),
            ),
            // Wednesday: no period at all.
            (local(2026, 12, 9, 12, 0), None),
            // Friday: lunch is the first period, the snack the second, up to midnight.
            (
                local(2026, 12, 11, 12, 0),
                Some((number(2026, 12, 11, 0), "lunch")),
            ),
            (
                local(2026, 12, 11, 23, 59),
                Some((number(2026, 12, 11, 1), "snack")),
            ),
            // Midnight starts a new day: Saturday's first period.
            (
                local(2026, 12, 12, 0, 0),
                Some((number(2026, 12, 12, 0), "early")),
            ),
            // A holiday on a Friday: the holiday's periods, not Friday's.
            (
                local(2026, 12, 25, 12, 0),
                Some((number(2026, 12, 25, 0), "brunch")),
            ),
            (local(2026, 12, 25, 23, 30), None),
        ];
        for (time, expected) in cases {
            assert_eq!(rules.meal_period_at(time), expected, "{time}");
        }
        // Period numbers grow with time, and name their period back.
        let lunch = number(2026, 12, 7, 0);
        assert!(number(2026, 12, 7, 1) > lunch && number(2026, 12, 8, 0) > number(2026, 12, 7, 1));
        assert_eq!(rules.meal_period_name(lunch), Some("lunch"));
        assert_eq!(
            rules.meal_period_name(number(2026, 12, 25, 0)),
            Some("brunch")
        );
        assert_eq!(rules.meal_period_name(number(2026, 12, 9, 0)), None);
    }

    #[test]
    fn the_local_day_comes_from_the_offset_not_from_utc() {
        // 23:30 UTC on Friday 11 December is 00:30 on Saturday at UTC+1: Saturday's period.
        let utc = |d: i64, hh: i64, mm: i64| {
            Timestamp::from_unix_ms(day(2026, 12, d) * 86_400_000 + (hh * 60 + mm) * 60_000)
        };
        let rules = rules();
        assert_eq!(
            rules.meal_period_at(utc(11, 23, 30)),
            Some((number(2026, 12, 12, 0), "early"))
        );
        // The same policy at UTC−10: 23:30 UTC is 13:30 on Friday, lunch.
        let west = POLICY.replace("utc_offset_minutes = 60", "utc_offset_minutes = -600");
        let west = PolicyRules::parse(&west, Path::new("p.toml"), &doors()).expect("valid");
        assert_eq!(
            west.meal_period_at(utc(11, 23, 30)),
            Some((number(2026, 12, 11, 0), "lunch"))
        );
        // Before 1970 there is no period number.
        assert_eq!(
            rules.meal_period_at(Timestamp::from_unix_ms(-86_400_000)),
            None
        );
    }

    fn card(hex: &str) -> CardId {
        CardId::from_hex(hex).expect("card")
    }

    const BOTH: &str = "00112233445566778899aabbccddeeff";
    const UNLISTED: &str = "0102";

    fn entitled(period: u32, name: &str, allowance: u8, group: &str) -> MealEntitlement {
        MealEntitlement {
            period,
            period_name: name.into(),
            allowance,
            group: group.into(),
        }
    }

    #[test]
    fn allowances_by_group_period_and_guest_day() {
        let rules = rules();
        let lunch_7 = number(2026, 12, 7, 0);
        let lunch_8 = number(2026, 12, 8, 0);
        let cases = [
            // Staff and kitchen: the larger allowance, counted for the kitchen.
            (
                BOTH,
                "canteen-east",
                local(2026, 12, 7, 12, 0),
                Some(Ok(entitled(lunch_7, "lunch", 2, "kitchen"))),
            ),
            (
                UNLISTED,
                "canteen-west",
                local(2026, 12, 7, 12, 0),
                Some(Ok(entitled(lunch_7, "lunch", 1, "staff"))),
            ),
            (
                UNLISTED,
                "canteen-west",
                local(2026, 12, 25, 12, 0),
                Some(Ok(entitled(number(2026, 12, 25, 0), "brunch", 1, "staff"))),
            ),
            (
                BOTH,
                "canteen-east",
                local(2026, 12, 25, 12, 0),
                Some(Ok(entitled(number(2026, 12, 25, 0), "brunch", 1, "staff"))),
            ),
            (
                UNLISTED,
                "canteen-east",
                local(2026, 12, 7, 15, 0),
                Some(Err(MealDenial::OutsidePeriods)),
            ),
            // A guest on the day the card is valid, and on another.
            (
                "aa",
                "canteen-east",
                local(2026, 12, 8, 12, 0),
                Some(Ok(entitled(lunch_8, "lunch", 1, "guests"))),
            ),
            (
                "aa",
                "canteen-east",
                local(2026, 12, 7, 12, 0),
                Some(Err(MealDenial::NotValidToday {
                    period_name: "lunch".into(),
                })),
            ),
            // A guest has no dinner; a card whose groups have no allowance has no meal.
            (
                "aa",
                "canteen-east",
                local(2026, 12, 8, 19, 0),
                Some(Err(MealDenial::NotEntitled {
                    period_name: "dinner".into(),
                })),
            ),
            (
                "bb",
                "canteen-east",
                local(2026, 12, 7, 12, 0),
                Some(Err(MealDenial::NotEntitled {
                    period_name: "lunch".into(),
                })),
            ),
            // Not a canteen gate: not a meal question.
            (BOTH, "main", local(2026, 12, 7, 12, 0), None),
        ];
        for (hex, door, time, expected) in cases {
            assert_eq!(
                rules.meal(&card(hex), door, time),
                expected,
                "{hex} {door} {time}"
            );
        }
    }

    #[test]
    fn canteen_gates_skip_door_rules_and_guest_days_bind_doors_too() {
        let rules = rules();
        // Nobody lists the canteen gates, and "*" does not include them, yet the door check
        // lets the meal rules decide there.
        assert_eq!(
            rules.check(&card("bb"), "canteen-east", local(2026, 12, 9, 3, 0)),
            Ok(())
        );
        assert_eq!(
            rules.check(&card(UNLISTED), "main", local(2026, 12, 7, 8, 0)),
            Ok(())
        );
        let guest_doors = POLICY.replace(
            "[group.guests]\n",
            "[group.guests]\ndoors = [\"main\"]\nschedule = \"office\"\n",
        );
        let parse = |text: &str| PolicyRules::parse(text, Path::new("p.toml"), &doors());
        // The guest's day is Tuesday 8 December; on Monday 7th the group does not apply.
        let rules = parse(&guest_doors).expect("valid");
        assert_eq!(
            rules.check(&card("aa"), "main", local(2026, 12, 7, 8, 0)),
            Err(PolicyDenial::NotAuthorised)
        );
        let monday = parse(&guest_doors.replace("2026-12-08", "2026-12-07")).expect("valid");
        assert_eq!(
            monday.check(&card("aa"), "main", local(2026, 12, 7, 8, 0)),
            Ok(())
        );
    }

    #[test]
    fn invalid_canteen_rules_name_the_key_and_reason() {
        let base = "version = 1\n[group.staff]\n[canteen]\ndoors = [\"canteen-east\"]\n";
        let many: String = (0..17)
            .map(|i| format!("[canteen.period.p{i:02}]\nmon = \"{i:02}:00-{i:02}:30\"\n"))
            .collect();
        let cases = [
            (
                format!(
                    "{base}[canteen.period.lunch]\nmon = \"11:30-14:00\"\n[canteen.period.late]\nmon = \"13:30-15:00\"\n"
                ),
                "canteen.period.late.mon",
                "overlaps period \"lunch\" (11:30-14:00) on mon",
            ),
            (
                format!(
                    "{base}[canteen.period.lunch]\nmon = \"11:30-14:00\"\n[canteen.allowance.chefs]\nlunch = 1\n"
                ),
                "canteen.allowance.chefs",
                "group \"chefs\" is not defined",
            ),
            (
                format!(
                    "{base}[canteen.period.lunch]\nmon = \"11:30-14:00\"\n[canteen.allowance.staff]\nlunch = 0\n"
                ),
                "canteen.allowance.staff.lunch",
                "allowance of 0",
            ),
            (
                format!("{base}[canteen.allowance.staff]\nsupper = 1\n"),
                "canteen.allowance.staff.supper",
                "meal period \"supper\" is not defined",
            ),
            (
                format!("{base}[canteen.allowance.staff]\nlunch = 256\n"),
                "canteen.allowance.staff.lunch",
                "invalid value",
            ),
            (
                format!("{base}{many}"),
                "canteen.period",
                "17 meal periods on mon: at most 16",
            ),
            (
                format!("{base}[canteen.period.lunch]\nmon = \"14:00-11:30\"\n"),
                "canteen.period.lunch.mon",
                "HH:MM-HH:MM",
            ),
            (
                format!("{base}[canteen.period.lunch]\nmon = [\"11:30-14:00\"]\n"),
                "canteen.period.lunch.mon",
                "invalid type",
            ),
            (
                "version = 1\n[canteen]\ndoors = [\"kitchen\"]\n".to_string(),
                "canteen.doors[0]",
                "not configured",
            ),
            (
                format!(
                    "{base}[schedule.s]\n[group.all]\ndoors = [\"canteen-east\"]\nschedule = \"s\"\n"
                ),
                "group.all.doors[0]",
                "canteen gate",
            ),
            (
                format!("{base}[group.guests]\nvalid_on = [\"2026-13-01\"]\n"),
                "group.guests.valid_on[0]",
                "not YYYY-MM-DD",
            ),
        ];
        for (text, key, reason) in cases {
            let error = PolicyRules::parse(&text, Path::new("/etc/palmgate/policy.toml"), &doors())
                .expect_err(&text);
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("access policy /etc/palmgate/policy.toml: {key}: ")),
                "{text}\n{message} lacks key {key}"
            );
            assert!(
                message.contains(reason),
                "{text}\n{message} lacks reason {reason}"
            );
        }
        // Sixteen periods a day, back to back, are fine.
        let sixteen: String = (0..16)
            .map(|i| {
                format!(
                    "[canteen.period.p{i:02}]\nmon = \"{i:02}:00-{:02}:00\"\n",
                    i + 1
                )
            })
            .collect();
        let rules = PolicyRules::parse(&format!("{base}{sixteen}"), Path::new("p.toml"), &doors())
            .expect("16 periods");
        // 1970-01-05 was a Monday (day 4): its last period is index 15.
        let monday_15h30 = Timestamp::from_unix_ms((4 * 24 + 15) * 3_600_000 + 30 * 60_000);
        assert_eq!(
            rules.meal_period_at(monday_15h30),
            Some((4 * 16 + 15, "p15"))
        );
    }
}
