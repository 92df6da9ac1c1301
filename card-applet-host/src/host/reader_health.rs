//! Reader health: whether the gate can read a card at all, and the decisions of the reader watch
//! that keeps it so (I/O-free: the PC/SC calls are in [`super::pcsc`], time is injected).
//!
//! The watch loses its PC/SC context when pcscd stops (crash, upgrade, `systemctl restart`) and
//! its reader when the reader is unplugged. [`HealthTracker`] turns what the watch observes into
//! [`ReaderHealth`] changes (reported once per change), and [`ReconnectBackoff`] says how long to
//! wait before the next attempt to establish a context.

use std::time::Duration;

/// Whether a card presented now could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReaderHealth {
    /// pcscd answers and a reader matching the pattern is there.
    Available {
        /// The matching reader(s), comma separated.
        readers: String,
    },
    /// No card can be read.
    Unavailable {
        /// Why.
        reason: UnavailableReason,
    },
}

impl ReaderHealth {
    /// `true` for [`ReaderHealth::Available`].
    pub fn is_available(&self) -> bool {
        matches!(self, Self::Available { .. })
    }
}

impl std::fmt::Display for ReaderHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Available { readers } => write!(f, "card reader available ({readers})"),
            Self::Unavailable { reason } => write!(f, "card reader unavailable: {reason}"),
        }
    }
}

/// Why no card can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnavailableReason {
    /// The PC/SC service (pcscd) cannot be reached or stopped answering.
    ServiceUnavailable {
        /// The PC/SC error, as text.
        error: String,
    },
    /// pcscd answers but no reader name contains the pattern (reader unplugged).
    NoMatchingReader {
        /// The configured pattern.
        pattern: String,
    },
}

impl std::fmt::Display for UnavailableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceUnavailable { error } => {
                write!(f, "the PC/SC service (pcscd) is unavailable ({error})")
            }
            Self::NoMatchingReader { pattern } => {
                write!(f, "no reader matches {pattern:?}")
            }
        }
    }
}

/// Reports each change of health once.
#[derive(Debug, Default)]
pub struct HealthTracker {
    current: Option<ReaderHealth>,
}

impl HealthTracker {
    /// A tracker that has reported nothing yet (the first observation is always reported).
    pub fn new() -> Self {
        Self::default()
    }

    /// The last health reported.
    pub fn current(&self) -> Option<&ReaderHealth> {
        self.current.as_ref()
    }

    /// Records the health observed now; returns it when it differs from the last report.
    pub fn observe(&mut self, health: ReaderHealth) -> Option<ReaderHealth> {
        if self.current.as_ref() == Some(&health) {
            return None;
        }
        self.current = Some(health.clone());
        Some(health)
    }

    /// Health from the matching readers pcscd lists.
    pub fn readers_listed(&mut self, pattern: &str, readers: &[String]) -> Option<ReaderHealth> {
        let health = if readers.is_empty() {
            ReaderHealth::Unavailable {
                reason: UnavailableReason::NoMatchingReader {
                    pattern: pattern.to_owned(),
                },
            }
        } else {
            ReaderHealth::Available {
                readers: readers.join(", "),
            }
        };
        self.observe(health)
    }

    /// The PC/SC context could not be established or was lost.
    pub fn service_lost(&mut self, error: impl std::fmt::Display) -> Option<ReaderHealth> {
        self.observe(ReaderHealth::Unavailable {
            reason: UnavailableReason::ServiceUnavailable {
                error: error.to_string(),
            },
        })
    }
}

/// Delays between attempts to reach pcscd: short at first (a restart takes well under a
/// second), doubling up to [`ReconnectBackoff::MAX`] so that a gate without pcscd does not spin.
#[derive(Debug, Default)]
pub struct ReconnectBackoff {
    failures: u32,
}

impl ReconnectBackoff {
    /// First delay.
    pub const FIRST: Duration = Duration::from_millis(100);
    /// Longest delay: a restarted pcscd is noticed within this.
    pub const MAX: Duration = Duration::from_secs(1);

    /// A fresh schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a failed attempt; returns how long to wait before the next.
    pub fn failed(&mut self) -> Duration {
        let delay = Self::FIRST.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        delay.min(Self::MAX)
    }

    /// Records a success: the next failure starts over at [`ReconnectBackoff::FIRST`].
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_reported_once() {
        let mut tracker = HealthTracker::new();
        let readers = ["Virtual PCD 00 00".to_owned()];
        assert_eq!(
            tracker.readers_listed("Virtual", &readers),
            Some(ReaderHealth::Available {
                readers: "Virtual PCD 00 00".into()
            })
        );
        assert_eq!(tracker.readers_listed("Virtual", &readers), None);
        let lost = tracker.service_lost("Service not available");
        assert!(matches!(
            lost,
            Some(ReaderHealth::Unavailable {
                reason: UnavailableReason::ServiceUnavailable { .. }
            })
        ));
        assert_eq!(tracker.service_lost("Service not available"), None);
        assert!(tracker.readers_listed("Virtual", &readers).is_some());
        assert!(tracker.current().is_some_and(ReaderHealth::is_available));
    }

    #[test]
    fn an_unplugged_reader_is_unavailable_until_it_returns() {
        let mut tracker = HealthTracker::new();
        let reader = ["ACS ACR39U 00 00".to_owned()];
        tracker.readers_listed("ACR39", &reader);
        assert_eq!(
            tracker.readers_listed("ACR39", &[]),
            Some(ReaderHealth::Unavailable {
                reason: UnavailableReason::NoMatchingReader {
                    pattern: "ACR39".into()
                }
            })
        );
        assert_eq!(
            tracker
                .readers_listed("ACR39", &reader)
                .map(|health| health.to_string()),
            Some("card reader available (ACS ACR39U 00 00)".into())
        );
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_starts_over_after_a_success() {
        let mut backoff = ReconnectBackoff::new();
        let delays: Vec<_> = (0..7).map(|_| backoff.failed().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        backoff.succeeded();
        assert_eq!(backoff.failed(), ReconnectBackoff::FIRST);
        // Many failures never overflow.
        for _ in 0..100 {
            assert!(backoff.failed() <= ReconnectBackoff::MAX);
        }
    }
}
