//! How many `command.refused` events a flood of bad commands may cost.
//!
//! Anyone who may publish on `<prefix>/<gate>/cmd/#` can send refused commands as fast as the
//! broker takes them, and every reported refusal is an event in the same outbox as the door
//! alarms and access events, delivered in id order: 100,000 malformed commands held real alarms
//! back by about 10 s (issue 13). So in each window of [`RefusalLimiter::window`] only the first
//! `per_window` refusals are reported one by one; the rest are counted by reason and reported as
//! one summary when the window ends. Nothing is lost in silence: every refusal is either its own
//! event or counted in a summary.
//!
//! Pure: time comes in as a parameter; the link publishes and schedules the summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Refusals reported one by one per window (a burst of mistakes stays readable event by event).
pub const REFUSALS_PER_WINDOW: u32 = 256;
/// The window over which refusals are counted.
pub const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// Counts refusals per window and decides which are reported one by one.
#[derive(Debug, Clone)]
pub struct RefusalLimiter {
    per_window: u32,
    window: Duration,
    window_start: Option<Instant>,
    reported: u32,
    suppressed: BTreeMap<String, u64>,
}

/// The refusals of one window that were not reported one by one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusalSummary {
    /// How many, in all.
    pub suppressed: u64,
    /// How many per refusal reason (`malformed:unlock`, …).
    pub by_reason: BTreeMap<String, u64>,
    /// The window's length.
    pub window: Duration,
}

impl RefusalSummary {
    /// The `reason` of the summary's `command.refused` event:
    /// `suppressed: 99744 more refused commands in 60 s (malformed:unlock 99700, too_large:lockdown 44)`.
    pub fn reason(&self) -> String {
        let mut text = format!(
            "suppressed: {} more refused commands in {} s (",
            self.suppressed,
            self.window.as_secs()
        );
        for (index, (reason, count)) in self.by_reason.iter().enumerate() {
            if index > 0 {
                text.push_str(", ");
            }
            let _ = write!(text, "{reason} {count}");
        }
        text.push(')');
        text
    }
}

impl Default for RefusalLimiter {
    fn default() -> Self {
        Self::new(REFUSALS_PER_WINDOW, REFUSAL_WINDOW)
    }
}

impl RefusalLimiter {
    /// Reports the first `per_window` refusals of every `window` one by one.
    pub fn new(per_window: u32, window: Duration) -> Self {
        Self {
            per_window,
            window,
            window_start: None,
            reported: 0,
            suppressed: BTreeMap::new(),
        }
    }

    /// The window's length.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// A command was refused for `reason` at `now`. Returns whether to report it on its own
    /// (`false`: it is counted in the window's summary), and the summary of the window that
    /// ended before `now`, if one is due (publish that first).
    pub fn refused(&mut self, now: Instant, reason: &str) -> (bool, Option<RefusalSummary>) {
        let ended = self.close_ended(now);
        let start = *self.window_start.get_or_insert(now);
        debug_assert!(now >= start);
        if self.reported < self.per_window {
            self.reported += 1;
            return (true, ended);
        }
        match self.suppressed.get_mut(reason) {
            Some(count) => *count += 1,
            None => {
                self.suppressed.insert(reason.to_owned(), 1);
            }
        }
        (false, ended)
    }

    /// When the current window's summary is due (`None`: nothing is waiting to be reported).
    pub fn summary_due(&self) -> Option<Instant> {
        if self.suppressed.is_empty() {
            return None;
        }
        self.window_start.map(|start| start + self.window)
    }

    /// The summary of the window that ended by `now`, if it suppressed anything.
    pub fn tick(&mut self, now: Instant) -> Option<RefusalSummary> {
        self.close_ended(now)
    }

    /// The current window's summary now, whether or not the window ended (the link stops:
    /// what was counted is reported, not lost).
    pub fn finish(&mut self) -> Option<RefusalSummary> {
        let start = self.window_start?;
        self.close_ended(start + self.window)
    }

    fn close_ended(&mut self, now: Instant) -> Option<RefusalSummary> {
        let start = self.window_start?;
        if now.saturating_duration_since(start) < self.window {
            return None;
        }
        self.window_start = None;
        self.reported = 0;
        let by_reason = std::mem::take(&mut self.suppressed);
        if by_reason.is_empty() {
            return None;
        }
        Some(RefusalSummary {
            suppressed: by_reason.values().sum(),
            by_reason,
            window: self.window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    #[test]
    fn the_first_refusals_of_a_window_are_reported_one_by_one() {
        let mut limiter = RefusalLimiter::new(3, WINDOW);
        let t0 = Instant::now();
        for n in 0..3 {
            assert_eq!(
                limiter.refused(t0 + Duration::from_secs(n), "malformed:unlock"),
                (true, None)
            );
        }
        assert_eq!(limiter.summary_due(), None, "nothing suppressed yet");
        assert_eq!(limiter.refused(t0, "malformed:unlock"), (false, None));
        assert_eq!(limiter.summary_due(), Some(t0 + WINDOW));
    }

    #[test]
    fn a_flood_costs_a_bounded_number_of_events_and_every_refusal_is_counted() {
        let mut limiter = RefusalLimiter::new(256, WINDOW);
        let t0 = Instant::now();
        let mut individual = 0u64;
        let mut summaries = Vec::new();
        // 100,000 malformed commands (and a few oversized ones) over 10 s.
        for n in 0..100_000u64 {
            let now = t0 + Duration::from_micros(n * 100);
            let reason = if n % 1000 == 0 {
                "too_large:lockdown"
            } else {
                "malformed:unlock"
            };
            let (report, summary) = limiter.refused(now, reason);
            individual += u64::from(report);
            summaries.extend(summary);
        }
        assert_eq!(individual, 256);
        assert!(summaries.is_empty(), "the window has not ended yet");
        assert_eq!(limiter.tick(t0 + WINDOW - Duration::from_millis(1)), None);
        let summary = limiter
            .tick(t0 + WINDOW)
            .expect("summary at the window's end");
        assert_eq!(summary.suppressed + individual, 100_000);
        assert_eq!(summary.by_reason.values().sum::<u64>(), summary.suppressed);
        // Refusals 0, 1000, …: the first one was among the 256 reported one by one.
        assert_eq!(summary.by_reason["too_large:lockdown"], 99);
        assert_eq!(summary.by_reason["malformed:unlock"], 100_000 - 256 - 99);
        assert_eq!(
            summary.reason(),
            "suppressed: 99744 more refused commands in 60 s \
             (malformed:unlock 99645, too_large:lockdown 99)"
        );
        // Reported once: the next tick has nothing.
        assert_eq!(limiter.tick(t0 + WINDOW * 2), None);
        assert_eq!(limiter.summary_due(), None);
    }

    #[test]
    fn a_new_window_reports_again_and_hands_over_the_old_summary() {
        let mut limiter = RefusalLimiter::new(1, WINDOW);
        let t0 = Instant::now();
        assert_eq!(limiter.refused(t0, "stale:unlock"), (true, None));
        assert_eq!(limiter.refused(t0, "stale:unlock"), (false, None));
        assert_eq!(limiter.refused(t0, "replayed:unlock"), (false, None));
        // The next refusal after the window: the old window's summary, and this one reported.
        let (report, summary) = limiter.refused(t0 + WINDOW, "bad_signature:unlock");
        assert!(report);
        let summary = summary.expect("summary of the first window");
        assert_eq!(summary.suppressed, 2);
        assert_eq!(
            summary.by_reason,
            BTreeMap::from([("replayed:unlock".into(), 1), ("stale:unlock".into(), 1)])
        );
        assert_eq!(
            limiter.summary_due(),
            None,
            "the new window suppressed nothing"
        );
    }

    #[test]
    fn stopping_reports_what_the_current_window_counted() {
        let mut limiter = RefusalLimiter::new(1, WINDOW);
        let t0 = Instant::now();
        assert_eq!(limiter.finish(), None, "nothing refused");
        limiter.refused(t0, "malformed:unlock");
        assert_eq!(limiter.finish(), None, "everything was reported one by one");
        let mut limiter = RefusalLimiter::new(1, WINDOW);
        for _ in 0..3 {
            limiter.refused(t0, "malformed:unlock");
        }
        let summary = limiter.finish().expect("summary before the window ends");
        assert_eq!(summary.suppressed, 2);
        assert_eq!(limiter.finish(), None, "reported once");
    }

    #[test]
    fn a_quiet_window_needs_no_summary() {
        let mut limiter = RefusalLimiter::new(5, WINDOW);
        let t0 = Instant::now();
        assert_eq!(limiter.refused(t0, "malformed:unlock"), (true, None));
        assert_eq!(limiter.tick(t0 + WINDOW * 3), None);
        assert_eq!(
            limiter.refused(t0 + WINDOW * 3, "malformed:unlock"),
            (true, None)
        );
    }
}
