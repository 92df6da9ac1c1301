//! Input debouncing with injected time.
//!
//! A sampled value counts once it has been the same for the whole debounce time. Between samples
//! the last sample is taken to hold, so the same debouncer works with polled inputs (a sample every
//! few milliseconds) and with edge-driven ones (a sample per change, `tick` in between).

use std::time::{Duration, Instant};

/// A debounced change of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The new stable value (`true` = active).
    pub active: bool,
    /// Whether this is the first stable value (there was no previous one to change from).
    pub first: bool,
}

/// One debounced input.
#[derive(Debug, Clone)]
pub struct Debouncer {
    debounce: Duration,
    stable: Option<bool>,
    candidate: Option<(bool, Instant)>,
}

impl Debouncer {
    /// A debouncer that knows nothing yet.
    pub fn new(debounce: Duration) -> Self {
        Self {
            debounce,
            stable: None,
            candidate: None,
        }
    }

    /// The stable value, once there is one.
    pub fn value(&self) -> Option<bool> {
        self.stable
    }

    /// Feeds one sample taken at `now`.
    pub fn sample(&mut self, active: bool, now: Instant) -> Option<Change> {
        if self.stable == Some(active) {
            self.candidate = None;
            return None;
        }
        match self.candidate {
            Some((value, _)) if value == active => {}
            _ => self.candidate = Some((active, now)),
        }
        self.tick(now)
    }

    /// Commits the candidate value once it has held for the debounce time.
    pub fn tick(&mut self, now: Instant) -> Option<Change> {
        let (value, since) = self.candidate?;
        if now.saturating_duration_since(since) < self.debounce {
            return None;
        }
        let first = self.stable.is_none();
        self.stable = Some(value);
        self.candidate = None;
        Some(Change {
            active: value,
            first,
        })
    }

    /// When the pending candidate would become stable, if it keeps its value.
    pub fn deadline(&self) -> Option<Instant> {
        self.candidate.map(|(_, since)| since + self.debounce)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(30);

    /// (ms, sample or None for a tick, expected change)
    type Step = (u64, Option<bool>, Option<Change>);

    fn run(steps: &[Step]) {
        let t0 = Instant::now();
        let mut input = Debouncer::new(DEBOUNCE);
        for &(ms, sample, expected) in steps {
            let now = t0 + Duration::from_millis(ms);
            let change = match sample {
                Some(active) => input.sample(active, now),
                None => input.tick(now),
            };
            assert_eq!(change, expected, "at {ms} ms");
        }
    }

    const fn change(active: bool, first: bool) -> Option<Change> {
        Some(Change { active, first })
    }

    #[test]
    fn first_value_needs_the_full_debounce() {
        run(&[
            (0, Some(false), None),
            (29, Some(false), None),
            (30, Some(false), change(false, true)),
        ]);
    }

    #[test]
    fn bounces_shorter_than_the_debounce_are_ignored() {
        run(&[
            (0, Some(false), None),
            (30, None, change(false, true)),
            (100, Some(true), None),
            (105, Some(false), None),
            (110, Some(true), None),
            (120, Some(false), None),
            (200, Some(false), None),
            (300, None, None),
        ]);
    }

    #[test]
    fn a_bouncing_edge_counts_once_it_settles() {
        run(&[
            (0, Some(false), None),
            (30, None, change(false, true)),
            (100, Some(true), None),
            (102, Some(false), None),
            (104, Some(true), None),
            (133, None, None),
            (134, None, change(true, false)),
            (200, Some(true), None),
        ]);
    }

    #[test]
    fn deadline_is_when_the_candidate_would_settle() {
        let t0 = Instant::now();
        let mut input = Debouncer::new(DEBOUNCE);
        assert_eq!(input.deadline(), None);
        input.sample(true, t0);
        assert_eq!(input.deadline(), Some(t0 + DEBOUNCE));
        assert_eq!(input.tick(t0 + DEBOUNCE), change(true, true));
        assert_eq!(input.deadline(), None);
        assert_eq!(input.value(), Some(true));
    }
}
