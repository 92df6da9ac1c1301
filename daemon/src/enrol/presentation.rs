//! One capture per presentation of the hand.
//!
//! A hand held still in front of the sensor gives near-identical frames. If two captures of one
//! series came from one presentation, the station's check that "every pair of captures matches"
//! would compare a capture with itself and prove nothing about how the person will present the
//! hand at the gate. So after a capture is accepted, the frames that follow are ignored until the
//! sensor reports that the hand has left; the next presentation may then give the next capture.
//!
//! After a refused capture the person needs a moment to read the advice and adjust the hand:
//! frames received within [`PresentationFilter::retry_pause`] of the refused one are ignored, so a
//! poor presentation does not use up the allowed refusals at the sensor's frame rate.
//!
//! Events in (presence reports, accepted/refused captures, each with the time the frame or report
//! was received), a decision out (`admits`); no I/O, no clock of its own.

use std::time::{Duration, Instant};

/// Pause after a refused capture during which frames are ignored.
pub const DEFAULT_RETRY_PAUSE: Duration = Duration::from_millis(600);

/// Decides which frames may be offered as captures.
#[derive(Debug, Clone)]
pub struct PresentationFilter {
    state: State,
    retry_pause: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Frames of the current presentation may become a capture.
    Open {
        /// Frames received before this instant are ignored (after a refusal).
        not_before: Option<Instant>,
    },
    /// This presentation gave its capture; waiting for the hand to leave.
    Taken,
}

/// Why a frame is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The frame belongs to a presentation that already gave its capture.
    SamePresentation,
    /// The frame came too soon after a refused capture.
    RetryPause,
}

impl Default for PresentationFilter {
    fn default() -> Self {
        Self::new(DEFAULT_RETRY_PAUSE)
    }
}

impl PresentationFilter {
    /// A filter for a hand that has not yet given a capture, pausing `retry_pause` after a refusal.
    pub fn new(retry_pause: Duration) -> Self {
        Self {
            state: State::Open { not_before: None },
            retry_pause,
        }
    }

    /// The pause after a refused capture.
    pub fn retry_pause(&self) -> Duration {
        self.retry_pause
    }

    /// The sensor reported that a hand is (`true`) or is no longer (`false`) in front of it.
    pub fn presence(&mut self, present: bool) {
        // A hand arriving changes nothing: only its leaving ends a presentation.
        if !present {
            self.state = State::Open { not_before: None };
        }
    }

    /// Whether a frame received at `received` may be offered as a capture.
    pub fn admits(&self, received: Instant) -> Result<(), Skip> {
        match self.state {
            State::Taken => Err(Skip::SamePresentation),
            State::Open {
                not_before: Some(not_before),
            } if received < not_before => Err(Skip::RetryPause),
            State::Open { .. } => Ok(()),
        }
    }

    /// The frame just offered was accepted as a capture.
    pub fn accepted(&mut self) {
        self.state = State::Taken;
    }

    /// The frame received at `received` was refused; the person adjusts the hand.
    pub fn refused(&mut self, received: Instant) {
        self.state = State::Open {
            not_before: Some(received + self.retry_pause),
        };
    }

    /// Whether the station is waiting for the hand to be lifted.
    pub fn waiting_for_lift(&self) -> bool {
        self.state == State::Taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAUSE: Duration = Duration::from_millis(500);

    #[test]
    fn the_first_frame_is_admitted() {
        let filter = PresentationFilter::new(PAUSE);
        assert_eq!(filter.admits(Instant::now()), Ok(()));
        assert!(!filter.waiting_for_lift());
    }

    #[test]
    fn after_an_accepted_capture_the_same_presentation_gives_no_second_one() {
        let mut filter = PresentationFilter::new(PAUSE);
        let start = Instant::now();
        filter.accepted();
        assert!(filter.waiting_for_lift());
        for later in [0, 100, 5_000, 60_000] {
            assert_eq!(
                filter.admits(start + Duration::from_millis(later)),
                Err(Skip::SamePresentation)
            );
        }
        // The hand being reported present again (a repeated report) is not a new presentation.
        filter.presence(true);
        assert_eq!(filter.admits(start), Err(Skip::SamePresentation));
    }

    #[test]
    fn lifting_the_hand_opens_the_next_presentation() {
        let mut filter = PresentationFilter::new(PAUSE);
        let start = Instant::now();
        filter.accepted();
        filter.presence(false);
        assert!(!filter.waiting_for_lift());
        filter.presence(true);
        assert_eq!(filter.admits(start), Ok(()));
    }

    #[test]
    fn after_a_refusal_frames_within_the_pause_are_skipped() {
        let mut filter = PresentationFilter::new(PAUSE);
        let refused_at = Instant::now();
        filter.refused(refused_at);
        assert_eq!(filter.admits(refused_at), Err(Skip::RetryPause));
        assert_eq!(
            filter.admits(refused_at + PAUSE - Duration::from_millis(1)),
            Err(Skip::RetryPause)
        );
        assert_eq!(filter.admits(refused_at + PAUSE), Ok(()));
        // A refusal does not need a lift: the person may adjust the hand where it is.
        assert!(!filter.waiting_for_lift());
    }

    #[test]
    fn a_new_presentation_ends_the_retry_pause() {
        let mut filter = PresentationFilter::new(PAUSE);
        let refused_at = Instant::now();
        filter.refused(refused_at);
        filter.presence(false);
        assert_eq!(filter.admits(refused_at), Ok(()));
    }
}
