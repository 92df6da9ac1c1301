//! The simulated hand: presented, held still, lifted, presented again. Timing only, no I/O: the
//! time is passed in, so the rules are tested without waiting.

use std::time::Duration;

use tokio::time::Instant;

/// A hand that comes and goes in a fixed cycle: in front of the sensor for `held`, then lifted
/// for `away`, then presented again, and so on. The cycle starts when the first capture starts
/// and keeps running between captures, as a person's hand does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    /// How long the hand stays in front of the sensor each time (frames are sent only then).
    pub held: Duration,
    /// How long the hand stays lifted between two presentations.
    pub away: Duration,
}

impl Presentation {
    /// Where the hand is `elapsed` after its first arrival. A cycle of zero length (both
    /// durations zero) is a hand that never leaves.
    pub(crate) fn state_at(&self, elapsed: Duration) -> HandState {
        let held = self.held.as_nanos();
        let period = held + self.away.as_nanos();
        if period == 0 {
            return HandState {
                presentation: 1,
                present: true,
                changes_at: Duration::MAX,
            };
        }
        let elapsed = elapsed.as_nanos();
        let cycles = elapsed / period;
        let present = elapsed % period < held;
        let cycle_start = cycles * period;
        let changes_at = cycle_start + if present { held } else { period };
        HandState {
            presentation: u64::try_from(cycles + 1).unwrap_or(u64::MAX),
            present,
            changes_at: duration_from_nanos(changes_at),
        }
    }
}

fn duration_from_nanos(nanos: u128) -> Duration {
    const PER_SECOND: u128 = 1_000_000_000;
    match u64::try_from(nanos / PER_SECOND) {
        // The remainder is below 10⁹, so it fits a u32.
        Ok(seconds) => Duration::new(seconds, (nanos % PER_SECOND) as u32),
        Err(_) => Duration::MAX,
    }
}

/// Where the simulated hand is at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HandState {
    /// Presentations begun so far: the current one while the hand is present, the last one while
    /// it is lifted (1 from the first arrival on).
    pub presentation: u64,
    /// Whether the hand is in front of the sensor.
    pub present: bool,
    /// When the hand next arrives or leaves, counted from its first arrival.
    pub changes_at: Duration,
}

/// The hand's cycle on the simulator's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandClock {
    cycle: Presentation,
    first_arrival: Option<Instant>,
}

impl HandClock {
    pub(crate) fn new(cycle: Presentation) -> Self {
        Self {
            cycle,
            first_arrival: None,
        }
    }

    /// Where the hand is at `now`; the first call is the hand's first arrival.
    pub(crate) fn state(&mut self, now: Instant) -> HandState {
        let first = *self.first_arrival.get_or_insert(now);
        self.cycle.state_at(now.saturating_duration_since(first))
    }

    /// Shifts the hand's whole timeline `by` later: the simulator spent that long producing the
    /// image of a presentation, and a real hand is held for the full `held` in front of a sensor
    /// that can see it (without this, a slow image source could see every presentation end
    /// before its first frame).
    pub(crate) fn hold_back(&mut self, by: Duration) {
        if let Some(first) = self.first_arrival.as_mut() {
            *first = first.checked_add(by).unwrap_or(*first);
        }
    }

    /// When the hand next arrives or leaves after `now` (`None`: before its first arrival, or
    /// never again).
    pub(crate) fn next_change(&self, now: Instant) -> Option<Instant> {
        let first = self.first_arrival?;
        let state = self.cycle.state_at(now.saturating_duration_since(first));
        first.checked_add(state.changes_at)
    }
}

/// What one capture has told the host about the hand so far, and what it must tell it next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct HandReports {
    last: Option<HandState>,
}

impl HandReports {
    /// The presence reports (`true`: present) that bring the host up to date with `now`, in
    /// order; they are recorded as sent. The first call reports the state as it is; a new
    /// presentation that began while the previous one was still shown reports the lift first, so
    /// that the host sees every arrival as one.
    pub(crate) fn follow(&mut self, now: HandState) -> &'static [bool] {
        let reports: &'static [bool] = match self.last {
            None if now.present => &[true],
            None => &[false],
            Some(shown) if shown.present && now.present => {
                if shown.presentation == now.presentation {
                    &[]
                } else {
                    &[false, true]
                }
            }
            Some(shown) if shown.present => &[false],
            Some(_) if now.present => &[true],
            Some(_) => &[],
        };
        self.last = Some(now);
        reports
    }

    /// Whether anything has been reported yet.
    pub(crate) fn has_reported(&self) -> bool {
        self.last.is_some()
    }

    /// Whether the last report was "present".
    pub(crate) fn shows_present(&self) -> bool {
        self.last.is_some_and(|shown| shown.present)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    const CYCLE: Presentation = Presentation {
        held: ms(300),
        away: ms(200),
    };

    fn state(presentation: u64, present: bool, changes_at: u64) -> HandState {
        HandState {
            presentation,
            present,
            changes_at: ms(changes_at),
        }
    }

    #[test]
    fn the_hand_is_held_then_away_in_turn() {
        let expected = [
            (0, state(1, true, 300)),
            (299, state(1, true, 300)),
            (300, state(1, false, 500)),
            (499, state(1, false, 500)),
            (500, state(2, true, 800)),
            (800, state(2, false, 1000)),
            (1000, state(3, true, 1300)),
            (10_250, state(21, true, 10_300)),
            (10_300, state(21, false, 10_500)),
        ];
        for (at, want) in expected {
            assert_eq!(CYCLE.state_at(ms(at)), want, "at {at} ms");
        }
    }

    #[test]
    fn degenerate_cycles_do_not_divide_by_zero() {
        let never_leaves = Presentation {
            held: Duration::ZERO,
            away: Duration::ZERO,
        };
        let forever = never_leaves.state_at(ms(5_000));
        assert_eq!((forever.presentation, forever.present), (1, true));
        assert_eq!(forever.changes_at, Duration::MAX);
        let never_stays = Presentation {
            held: Duration::ZERO,
            away: ms(100),
        };
        assert_eq!(never_stays.state_at(ms(250)), state(3, false, 300));
        let huge = Presentation {
            held: Duration::MAX,
            away: Duration::MAX,
        };
        assert_eq!(
            huge.state_at(Duration::MAX),
            HandState {
                presentation: 1,
                present: false,
                changes_at: Duration::MAX,
            }
        );
    }

    #[test]
    fn the_clock_starts_at_the_first_look_and_keeps_running() {
        let start = Instant::now();
        let mut clock = HandClock::new(CYCLE);
        assert_eq!(clock.next_change(start), None, "no arrival yet");
        assert_eq!(clock.state(start + ms(40)), state(1, true, 300));
        assert_eq!(clock.next_change(start + ms(40)), Some(start + ms(340)));
        // Nobody looked between 40 and 1 000 ms: the hand went on regardless.
        assert_eq!(clock.state(start + ms(1_000)), state(2, false, 1_000));
        assert_eq!(
            clock.next_change(start + ms(1_000)),
            Some(start + ms(1_040))
        );
        assert_eq!(clock.state(start + ms(1_040)).presentation, 3);
    }

    #[test]
    fn holding_back_keeps_the_hand_for_its_full_time_after_a_slow_image() {
        let start = Instant::now();
        let mut clock = HandClock::new(CYCLE);
        assert_eq!(clock.state(start).presentation, 1);
        // The image took 250 ms of the 300 ms the hand is held: the hand stays 300 ms from now.
        clock.hold_back(ms(250));
        assert_eq!(clock.state(start + ms(250)), state(1, true, 300));
        assert_eq!(clock.next_change(start + ms(250)), Some(start + ms(550)));
        assert!(clock.state(start + ms(540)).present);
        assert!(!clock.state(start + ms(560)).present);
    }

    #[test]
    fn reports_start_with_the_state_and_then_follow_changes() {
        let mut reports = HandReports::default();
        assert!(!reports.shows_present());
        assert!(!reports.has_reported());
        assert_eq!(reports.follow(state(1, true, 300)), &[true]);
        assert!(reports.shows_present());
        assert_eq!(reports.follow(state(1, true, 300)), &[] as &[bool]);
        assert_eq!(reports.follow(state(1, false, 500)), &[false]);
        assert!(!reports.shows_present());
        assert_eq!(reports.follow(state(1, false, 500)), &[] as &[bool]);
        assert_eq!(reports.follow(state(2, true, 800)), &[true]);
        // The lift between two presentations was missed: it is reported before the arrival.
        assert_eq!(reports.follow(state(3, true, 1_300)), &[false, true]);
        // A whole presentation missed while away: nothing to say.
        assert_eq!(reports.follow(state(3, false, 1_500)), &[false]);
        assert_eq!(reports.follow(state(4, false, 2_000)), &[] as &[bool]);

        let mut away_at_start = HandReports::default();
        assert_eq!(away_at_start.follow(state(4, false, 2_000)), &[false]);
        assert!(!away_at_start.shows_present());
        assert!(away_at_start.has_reported());
    }
}
