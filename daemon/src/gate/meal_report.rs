//! `palmgate meals report`: the `meal.served` events of a site (a JSON-lines file of them, or
//! received over MQTT) turned into a CSV with one row per person (card) and meal period. I/O-free:
//! lines in, rows out.
//!
//! Each meal is identified by its card and the card's receipt counter (which never repeats on a
//! card), so an event received twice (MQTT is at-least-once) or a receipt published both live and
//! recovered counts once. With the issuer keys, every receipt is verified (issuer → card
//! certificate → card signature) and its signed fields must equal the event's plain ones; a
//! receipt that fails is not counted and is reported, never dropped in silence.
//!
//! A card's receipt counter grows by one per meal it counts, so a gap between two counters of a
//! card in the events is a meal the card counted whose receipt is not among them (an answer lost
//! at a gate and overwritten by a later meal before any gate read it back, or events lost on the
//! way): [`MealReport::missing_receipts`] lists them.

use std::collections::{BTreeMap, BTreeSet};

use palmgate_card::host::MealReceipt;
use palmgate_card::host::issuer::IssuerPublicKey;

use crate::access::MAX_PERIODS_PER_DAY;
use crate::event::{CardId, Event, EventKind, Outcome, civil_from_days};

/// One person's meals in one period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Row {
    period_name: Option<String>,
    groups: BTreeSet<String>,
    meals: u32,
    not_opened: u32,
    allowance: u8,
    gates: BTreeSet<String>,
    counters: BTreeSet<u32>,
}

/// What one input line was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// A meal, counted.
    Counted,
    /// A meal already counted (same card and receipt counter).
    Duplicate,
    /// Not a `meal.served` event, or a blank line.
    Ignored,
}

/// A line that could not be counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct LineProblem {
    /// 1-based line number.
    pub line: usize,
    /// Why.
    pub reason: String,
}

/// The report being built.
#[derive(Debug, Default)]
pub struct MealReport {
    rows: BTreeMap<(u32, CardId), Row>,
    /// Every receipt counted: card and counter, with the receipt's period.
    seen: BTreeMap<(CardId, u32), u32>,
    verified: bool,
}

/// Receipts a card counted between two of its receipts in the events, but missing from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingReceipts {
    /// The card.
    pub card: CardId,
    /// The receipt counters missing (`first..=last`).
    pub first: u32,
    /// Last missing counter.
    pub last: u32,
    /// The period of the receipt before the gap.
    pub after_period: u32,
    /// The period of the receipt after it.
    pub before_period: u32,
}

impl std::fmt::Display for MissingReceipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.last - self.first + 1;
        write!(f, "card {}: ", self.card)?;
        if count == 1 {
            write!(f, "receipt counter {} is", self.first)?;
        } else {
            write!(
                f,
                "receipt counters {}-{} ({count}) are",
                self.first, self.last
            )?;
        }
        write!(
            f,
            " missing between periods {} ({}) and {} ({}): the card counted {} not in these \
             events (an answer lost and overwritten by a later meal, or events lost)",
            self.after_period,
            period_date(self.after_period),
            self.before_period,
            period_date(self.before_period),
            if count == 1 { "a meal" } else { "meals" }
        )
    }
}

/// A period's local date, `YYYY-MM-DD`.
fn period_date(period: u32) -> String {
    let (y, m, d) = civil_from_days(i64::from(period / MAX_PERIODS_PER_DAY as u32));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The first line of the CSV.
pub const CSV_HEADER: &str = "date,period,period_name,card_id,groups,meals,not_opened,allowance,gates,receipt_counters,verified";

impl MealReport {
    /// An empty report; `verified` when every receipt is checked against issuer keys.
    pub fn new(verified: bool) -> Self {
        Self {
            verified,
            ..Self::default()
        }
    }

    /// Takes one line (an event's JSON). `issuers`: verify the receipt against them.
    pub fn add_line(
        &mut self,
        line: usize,
        text: &str,
        issuers: Option<&[IssuerPublicKey]>,
    ) -> Result<LineOutcome, LineProblem> {
        let problem = |reason: String| LineProblem { line, reason };
        let text = text.trim();
        if text.is_empty() {
            return Ok(LineOutcome::Ignored);
        }
        // `mosquitto_sub -v` prints `topic payload`.
        let text = match text.split_once(' ') {
            Some((topic, payload)) if !text.starts_with('{') && topic.contains('/') => payload,
            _ => text,
        };
        let event = Event::from_json(text.as_bytes()).map_err(|error| {
            problem(format!(
                "not a palmgate event: {}",
                crate::error_chain(&error)
            ))
        })?;
        if event.kind != EventKind::MealServed {
            return Ok(LineOutcome::Ignored);
        }
        let card = event
            .card_id
            .clone()
            .ok_or_else(|| problem("meal.served without card_id".into()))?;
        let meal = event
            .meal
            .as_ref()
            .ok_or_else(|| problem("meal.served without meal".into()))?;
        let counter = meal
            .receipt_counter
            .ok_or_else(|| problem("meal.served without receipt_counter".into()))?;
        if let Some(issuers) = issuers {
            let hex_receipt = meal
                .receipt
                .as_deref()
                .ok_or_else(|| problem("meal.served without receipt".into()))?;
            let bytes = hex::decode(hex_receipt)
                .map_err(|error| problem(format!("receipt is not hex: {error}")))?;
            let receipt = MealReceipt::from_bytes(&bytes)
                .map_err(|error| problem(format!("receipt: {}", crate::error_chain(&error))))?;
            let verified = receipt.verify(issuers).map_err(|error| {
                problem(format!("receipt refused: {}", crate::error_chain(&error)))
            })?;
            let signed = verified.fields();
            let same = signed.card_id.as_slice() == card.as_bytes()
                && signed.period == meal.period
                && signed.count == meal.count
                && signed.allowance == meal.allowance
                && signed.receipt_counter == counter
                && meal.gate_time.is_none_or(|time| time == signed.gate_time);
            if !same {
                return Err(problem(
                    "the event's card_id or meal fields differ from the signed receipt".into(),
                ));
            }
        }
        if self
            .seen
            .insert((card.clone(), counter), meal.period)
            .is_some()
        {
            return Ok(LineOutcome::Duplicate);
        }
        let row = self.rows.entry((meal.period, card)).or_default();
        row.meals += 1;
        if event.result != Some(Outcome::Granted) {
            row.not_opened += 1;
        }
        if row.period_name.is_none() {
            row.period_name.clone_from(&meal.period_name);
        }
        row.groups.extend(meal.group.clone());
        row.allowance = row.allowance.max(meal.allowance);
        row.gates.insert(event.gate.clone());
        row.counters.insert(counter);
        Ok(LineOutcome::Counted)
    }

    /// The gaps in each card's receipt counters, over every event read (whatever the dates of
    /// the CSV): receipts the card signed that are not in the events.
    pub fn missing_receipts(&self) -> Vec<MissingReceipts> {
        let mut missing = Vec::new();
        let mut previous: Option<(&CardId, u32, u32)> = None;
        for ((card, counter), period) in &self.seen {
            if let Some((last_card, last_counter, last_period)) = previous
                && last_card == card
                && *counter > last_counter + 1
            {
                missing.push(MissingReceipts {
                    card: card.clone(),
                    first: last_counter + 1,
                    last: counter - 1,
                    after_period: last_period,
                    before_period: *period,
                });
            }
            previous = Some((card, *counter, *period));
        }
        missing
    }

    /// The CSV (header included) for the local dates `from..=to` (days since 1970-01-01).
    pub fn csv(&self, from: i64, to: i64) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        let per_day = MAX_PERIODS_PER_DAY as u32;
        for ((period, card), row) in &self.rows {
            let day = i64::from(period / per_day);
            if day < from || day > to {
                continue;
            }
            let (y, m, d) = civil_from_days(day);
            let join = |items: Vec<String>| items.join(" ");
            let fields = [
                format!("{y:04}-{m:02}-{d:02}"),
                period.to_string(),
                row.period_name.clone().unwrap_or_default(),
                card.to_string(),
                join(row.groups.iter().cloned().collect()),
                row.meals.to_string(),
                row.not_opened.to_string(),
                row.allowance.to_string(),
                join(row.gates.iter().cloned().collect()),
                join(row.counters.iter().map(u32::to_string).collect()),
                if self.verified { "yes" } else { "no" }.to_string(),
            ];
            let line: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{MealRecord, NewEvent, Reason, Timestamp, days_from_civil};

    fn period(y: i64, m: i64, d: i64, index: u32) -> u32 {
        u32::try_from(days_from_civil(y, m, d)).expect("after 1970") * 16 + index
    }

    fn line(id: u64, gate: &str, card: u8, period: u32, counter: u32, result: Outcome) -> String {
        let mut event = NewEvent::new(EventKind::MealServed, Timestamp::from_unix_ms(0))
            .door("line-1")
            .card(CardId::new(&[card; 16]).expect("card"))
            .result(result)
            .meal(MealRecord {
                period,
                period_name: Some("lunch, hot".into()),
                group: Some("staff".into()),
                count: 1,
                allowance: 2,
                receipt: Some("ab".into()),
                receipt_counter: Some(counter),
                gate_time: Some(1),
            });
        if result == Outcome::Info {
            event = event.reason(Reason::RECOVERED);
        }
        String::from_utf8(event.into_event(id, gate).to_json()).expect("utf-8")
    }

    #[test]
    fn rows_per_card_and_period_count_each_receipt_once() {
        let lunch = period(2026, 12, 7, 0);
        let next_day = period(2026, 12, 8, 0);
        let mut report = MealReport::new(false);
        let lines = [
            (line(1, "a", 1, lunch, 5, Outcome::Granted), Ok(LineOutcome::Counted)),
            // The same event again (QoS 1), and its receipt recovered at another gate.
            (line(1, "a", 1, lunch, 5, Outcome::Granted), Ok(LineOutcome::Duplicate)),
            (line(9, "b", 1, lunch, 5, Outcome::Info), Ok(LineOutcome::Duplicate)),
            (line(2, "b", 1, lunch, 6, Outcome::Info), Ok(LineOutcome::Counted)),
            (line(3, "a", 2, lunch, 5, Outcome::Granted), Ok(LineOutcome::Counted)),
            (line(4, "a", 1, next_day, 7, Outcome::Granted), Ok(LineOutcome::Counted)),
            (String::new(), Ok(LineOutcome::Ignored)),
            // As `mosquitto_sub -v` prints it.
            (
                format!("palmgate/a/event/meal.served {}", line(5, "a", 3, next_day, 1, Outcome::Granted)),
                Ok(LineOutcome::Counted),
            ),
            (
                r#"{"id":1,"time":"2026-12-07T11:00:00.000Z","gate":"a","kind":"doors.ready","severity":"info"}"#.to_string(),
                Ok(LineOutcome::Ignored),
            ),
        ];
        for (i, (text, expected)) in lines.iter().enumerate() {
            assert_eq!(&report.add_line(i + 1, text, None), expected, "{text}");
        }
        let problem = report.add_line(9, "{not json", None).expect_err("bad line");
        assert!(
            problem
                .to_string()
                .starts_with("line 9: not a palmgate event"),
            "{problem}"
        );
        let day = days_from_civil(2026, 12, 7);
        let csv = report.csv(day, day);
        let card1 = "01".repeat(16);
        let card2 = "02".repeat(16);
        assert_eq!(
            csv,
            format!(
                "{CSV_HEADER}\n\
                 2026-12-07,{lunch},\"lunch, hot\",{card1},staff,2,1,2,a b,5 6,no\n\
                 2026-12-07,{lunch},\"lunch, hot\",{card2},staff,1,0,2,a,5,no\n"
            )
        );
        // The next day: card 1 and the card of the `mosquitto_sub -v` line.
        assert_eq!(report.csv(day + 1, day + 1).lines().count(), 3);
        assert_eq!(report.csv(day + 2, day + 9).lines().count(), 1);
    }

    #[test]
    fn gaps_in_a_cards_receipt_counters_are_listed_once_filled_they_are_not() {
        let lunch = period(2026, 12, 7, 0);
        let dinner = period(2026, 12, 7, 1);
        let next_day = period(2026, 12, 8, 0);
        let mut report = MealReport::new(false);
        for (i, text) in [
            line(1, "a", 1, lunch, 4, Outcome::Granted),
            line(2, "a", 1, lunch, 4, Outcome::Granted),
            // Counter 5 (card 1's dinner) lost; 6 and 7 the next day; 8 and 9 lost after it.
            line(3, "b", 1, next_day, 6, Outcome::Granted),
            line(4, "a", 1, next_day, 7, Outcome::Granted),
            line(5, "a", 1, next_day, 10, Outcome::Granted),
            // Card 2: no gap (its first receipt in the events is not a gap).
            line(6, "a", 2, lunch, 1, Outcome::Granted),
            line(7, "a", 2, dinner, 2, Outcome::Granted),
        ]
        .iter()
        .enumerate()
        {
            report.add_line(i + 1, text, None).expect("counted");
        }
        let card1 = CardId::new(&[1; 16]).expect("card");
        assert_eq!(
            report.missing_receipts(),
            [
                MissingReceipts {
                    card: card1.clone(),
                    first: 5,
                    last: 5,
                    after_period: lunch,
                    before_period: next_day,
                },
                MissingReceipts {
                    card: card1.clone(),
                    first: 8,
                    last: 9,
                    after_period: next_day,
                    before_period: next_day,
                },
            ]
        );
        assert_eq!(
            report.missing_receipts()[1].to_string(),
            format!(
                "card {card1}: receipt counters 8-9 (2) are missing between periods {next_day} \
                 (2026-12-08) and {next_day} (2026-12-08): the card counted meals not in these \
                 events (an answer lost and overwritten by a later meal, or events lost)"
            )
        );
        // The lost dinner's receipt, recovered later (at the card's next visit to that gate).
        report
            .add_line(8, &line(8, "c", 1, dinner, 5, Outcome::Info), None)
            .expect("counted");
        assert_eq!(report.missing_receipts().len(), 1);
        assert_eq!(report.missing_receipts()[0].first, 8);
    }

    #[test]
    fn with_issuer_keys_a_receipt_that_does_not_verify_is_refused() {
        let issuer = palmgate_card::host::issuer::IssuerKey::generate();
        let mut report = MealReport::new(true);
        let text = line(1, "a", 1, period(2026, 12, 7, 0), 5, Outcome::Granted);
        let problem = report
            .add_line(1, &text, Some(&[issuer.public_key()][..]))
            .expect_err("forged receipt");
        assert!(problem.reason.starts_with("receipt"), "{problem}");
        assert_eq!(
            report.csv(0, i64::MAX).lines().count(),
            1,
            "nothing counted"
        );
    }
}
