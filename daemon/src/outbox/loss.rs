//! The facts of an `alarm.events_lost` event, carried in its `reason` so that a consumer can parse
//! them: `first_id=54 last_id=121 count=68 cause=outbox_damaged` for ids that will never be
//! delivered, or `count=12 cause=not_stored` for events refused before they got an id.

use std::fmt;

use crate::event::EventId;

/// What an `alarm.events_lost` event reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LossReport {
    /// The first and last id of the range, when the lost events had ids.
    pub ids: Option<(EventId, EventId)>,
    /// How many events: the ids in the range, or the events refused.
    pub count: u64,
    /// Why (`outbox_damaged`, `outbox_missing`, `records_missing`, `record_unreadable`, …).
    pub cause: String,
}

impl LossReport {
    /// Reads a report from an event's `reason`; `None` when it is not one.
    pub fn parse(reason: &str) -> Option<Self> {
        let field = |name: &str| {
            reason
                .split(' ')
                .find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
        };
        let number = |name: &str| field(name).and_then(|value| value.parse::<u64>().ok());
        let ids = match (number("first_id"), number("last_id")) {
            (Some(first), Some(last)) => Some((first, last)),
            _ => None,
        };
        Some(Self {
            ids,
            count: number("count")?,
            cause: field("cause")?.to_string(),
        })
    }

    /// Whether `id` is inside the reported range.
    pub fn covers(&self, id: EventId) -> bool {
        self.ids
            .is_some_and(|(first, last)| (first..=last).contains(&id))
    }
}

impl fmt::Display for LossReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((first, last)) = self.ids {
            write!(f, "first_id={first} last_id={last} ")?;
        }
        write!(f, "count={} cause={}", self.count, self.cause)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_read_back_what_they_say() {
        let ranged = LossReport {
            ids: Some((54, 121)),
            count: 68,
            cause: "outbox_damaged".into(),
        };
        assert_eq!(
            ranged.to_string(),
            "first_id=54 last_id=121 count=68 cause=outbox_damaged"
        );
        assert_eq!(LossReport::parse(&ranged.to_string()), Some(ranged.clone()));
        assert!(ranged.covers(54) && ranged.covers(121) && !ranged.covers(122));
        let counted = LossReport::parse("count=12 cause=not_stored").expect("report");
        assert_eq!((counted.ids, counted.count), (None, 12));
        assert!(!counted.covers(1));
        assert_eq!(LossReport::parse("no_match"), None);
    }
}
