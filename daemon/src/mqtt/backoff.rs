//! Reconnect back-off: when to try the broker again after a connection failed or was lost.
//!
//! The delay doubles from `start` up to `max` on every failure. It starts again from `start`
//! only when the connection that was lost had stayed up for at least `stable_after`: a broker
//! that accepts the connection and then drops it at once (an oversized retained message, an ACL
//! that kicks the client, a duplicate client id) must not make the gate reconnect in a tight
//! loop, which a reset on every CONNACK did (126 reconnects in 30 s, see issue 13).
//!
//! Pure: time comes in as a parameter; the link adds the jitter and sleeps.

use std::time::{Duration, Instant};

/// Exponential reconnect back-off that resets only after a stable connection.
#[derive(Debug, Clone)]
pub struct Backoff {
    start: Duration,
    max: Duration,
    stable_after: Duration,
    next: Duration,
    connected_at: Option<Instant>,
}

impl Backoff {
    /// Delays from `start`, doubling to at most `max`; a connection that lasted `stable_after`
    /// resets the delay to `start`.
    pub fn new(start: Duration, max: Duration, stable_after: Duration) -> Self {
        Self {
            start,
            max: max.max(start),
            stable_after,
            next: start,
            connected_at: None,
        }
    }

    /// The broker accepted the connection (CONNACK) at `now`.
    pub fn connected(&mut self, now: Instant) {
        self.connected_at = Some(now);
    }

    /// The connection attempt failed, or the connection was lost, at `now`: how long to wait
    /// before the next attempt.
    pub fn lost(&mut self, now: Instant) -> Duration {
        if let Some(since) = self.connected_at.take()
            && now.saturating_duration_since(since) >= self.stable_after
        {
            self.next = self.start;
        }
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(30);
    const STABLE: Duration = Duration::from_secs(30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn failed_attempts_double_the_delay_up_to_the_maximum() {
        let mut backoff = Backoff::new(START, MAX, STABLE);
        let t0 = Instant::now();
        let delays: Vec<Duration> = (0..10).map(|_| backoff.lost(t0)).collect();
        assert_eq!(
            delays,
            [
                ms(250),
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(16000),
                MAX,
                MAX,
                MAX
            ]
        );
    }

    #[test]
    fn a_connection_dropped_at_once_does_not_reset_the_delay() {
        // What an oversized retained command did: CONNACK, then the connection dies within a
        // fraction of a second, every time.
        let mut backoff = Backoff::new(START, MAX, STABLE);
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..8 {
            backoff.connected(now);
            now += ms(50);
            let delay = backoff.lost(now);
            delays.push(delay);
            now += delay;
        }
        assert_eq!(
            delays,
            [
                ms(250),
                ms(500),
                ms(1000),
                ms(2000),
                ms(4000),
                ms(8000),
                ms(16000),
                MAX
            ]
        );
        // 30 s of this costs a handful of connections, not 126.
        let mut backoff = Backoff::new(START, MAX, STABLE);
        let begin = Instant::now();
        let mut now = begin;
        let mut connections = 0;
        while now.duration_since(begin) < Duration::from_secs(30) {
            backoff.connected(now);
            connections += 1;
            now += ms(400);
            now += backoff.lost(now);
        }
        assert!(connections <= 8, "{connections} connections in 30 s");
    }

    #[test]
    fn a_connection_that_stayed_up_resets_the_delay() {
        let mut backoff = Backoff::new(START, MAX, STABLE);
        let mut now = Instant::now();
        for _ in 0..5 {
            now += backoff.lost(now);
        }
        backoff.connected(now);
        now += STABLE;
        assert_eq!(backoff.lost(now), START);
        assert_eq!(backoff.lost(now), START * 2);
    }

    #[test]
    fn a_connection_just_short_of_stable_keeps_doubling() {
        let mut backoff = Backoff::new(START, MAX, STABLE);
        let now = Instant::now();
        assert_eq!(backoff.lost(now), START);
        backoff.connected(now);
        assert_eq!(backoff.lost(now + STABLE - ms(1)), START * 2);
        // A failed attempt after that (no CONNACK) never counts as stable.
        assert_eq!(backoff.lost(now + STABLE * 10), START * 4);
    }
}
