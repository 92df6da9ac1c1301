//! The OSDP serial link's state (I/O-free, injected time): when to open the port again after it
//! failed, and what a facility manager hears of it.
//!
//! A failed link (USB-RS485 adapter unplugged, device gone, line error) is published once as
//! `alarm.panel_link` (`link_failed`), however many attempts it takes to get it back; the port is
//! opened again after [`RECONNECT_BACKOFF`] delays (the sensor link's back-off). The link is back
//! when the panel polls the gate again, not when the port merely opens (an adapter without the
//! bus behind it opens fine): then `panel.link_restored` is published. A link that fails again
//! within [`STABLE_AFTER`] keeps its back-off growing, so a connector that makes and breaks
//! contact does not reopen the port in a tight loop.
//!
//! Such a link is also not published as a pair of events at every break: the alarm of a link that
//! fails again within [`STABLE_AFTER`] of its restoration says so, and its next restoration is
//! published only once it has served the panel for [`STABLE_AFTER`]; the breaks in between are
//! counted in that restoration's detail, not published one by one. A dashboard sees the alarm
//! stand while the link flaps, and its end when the link holds.

use std::time::{Duration, Instant};

use palmgate_sensor::device::Backoff;

use super::alarms::PanelAlarms;
use crate::event::{EventKind, NewEvent, Outcome, Timestamp};

/// Delays between attempts to open the port: 250 ms doubling to 2 s, so that an adapter plugged
/// back in serves the panel within about 2 s, and a missing one costs one `open` every 2 s.
pub(crate) const RECONNECT_BACKOFF: Backoff = Backoff {
    initial: Duration::from_millis(250),
    max: Duration::from_secs(2),
};

/// A link that served the panel at least this long starts its next back-off from the beginning;
/// a flapping link's restoration is published once it has served this long.
pub(crate) const STABLE_AFTER: Duration = Duration::from_secs(10);

/// What the serial task reported, or that time passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LinkInput {
    /// The line failed; the port is closed (why).
    Lost(String),
    /// An attempt to open the port failed (why).
    OpenFailed(String),
    /// An attempt opened the port.
    Opened,
    /// The panel sent the gate a packet since the port was opened.
    PanelHeard,
    /// The serial task itself ended (why): nothing reopens the port any more.
    TaskEnded(String),
    /// Time passed (a deadline of [`PanelLink::next_deadline`]).
    Tick,
}

/// What the panel task does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LinkAction {
    /// Publish this event (boxed: an event is large beside the other action).
    Publish(Box<NewEvent>),
    /// Ask the serial task to open the port ([`palmgate_panel::osdp::serial::PdRequest::Reopen`]).
    Reopen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The port is open; the panel is (as far as is known) served since `since`.
    Up { since: Instant },
    /// The port is closed since `lost`; opened again at `retry_at` (`None`: an attempt is under
    /// way).
    Down {
        lost: Instant,
        retry_at: Option<Instant>,
    },
    /// The port is open again, the panel has not polled yet.
    Reopened { lost: Instant },
    /// The serial task ended.
    Ended,
}

/// The link lost again soon after its restoration was published: its alarm stands until it has
/// served the panel for [`STABLE_AFTER`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flapping {
    /// When the alarm that stands was published.
    alarmed: Instant,
    /// Lines lost since then (the alarmed one included).
    losses: u32,
    /// Attempts to open the port since then.
    attempts: u32,
}

/// The link's state with its back-off.
#[derive(Debug)]
pub(crate) struct PanelLink {
    backoff: Backoff,
    state: State,
    /// Consecutive failures (lost lines and failed opens) since the link was last stable.
    failures: u32,
    /// Attempts to open the port since the link was lost.
    attempts: u32,
    /// Whether the link is up because it came back after an outage (not since start-up).
    reconnected: bool,
    /// Set while a flapping link's alarm stands.
    flapping: Option<Flapping>,
}

impl PanelLink {
    /// A link whose port was opened at `now` (start-up).
    pub(crate) fn new(backoff: Backoff, now: Instant) -> Self {
        Self {
            backoff,
            state: State::Up { since: now },
            failures: 0,
            attempts: 0,
            reconnected: false,
            flapping: None,
        }
    }

    /// Whether the panel cannot be reached now (lost and not back yet).
    pub(crate) fn is_down(&self) -> bool {
        !matches!(self.state, State::Up { .. })
    }

    /// When [`LinkInput::Tick`] is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Down { retry_at, .. } => retry_at,
            State::Up { since } if self.flapping.is_some() => Some(since + STABLE_AFTER),
            _ => None,
        }
    }

    /// Takes `input` at `now` (`time`: the same instant for events).
    pub(crate) fn input(
        &mut self,
        input: LinkInput,
        now: Instant,
        time: Timestamp,
    ) -> Vec<LinkAction> {
        match (&self.state, input) {
            (State::Ended, _) => Vec::new(),
            (_, LinkInput::TaskEnded(why)) => {
                self.state = State::Ended;
                vec![LinkAction::Publish(Box::new(PanelAlarms::link_stopped(
                    &why, time,
                )))]
            }
            (State::Up { since }, LinkInput::Lost(why)) => {
                let served = now.saturating_duration_since(*since);
                if served >= STABLE_AFTER {
                    self.failures = 0;
                }
                self.attempts = 0;
                let retry_in = self.failed(now, now);
                if let Some(flapping) = &mut self.flapping {
                    // The alarm already stands: counted for the restoration.
                    flapping.losses = flapping.losses.saturating_add(1);
                    return Vec::new();
                }
                let again_after = (self.reconnected && served < STABLE_AFTER).then_some(served);
                if again_after.is_some() {
                    self.flapping = Some(Flapping {
                        alarmed: now,
                        losses: 1,
                        attempts: 0,
                    });
                }
                vec![LinkAction::Publish(Box::new(PanelAlarms::link_lost(
                    &why,
                    retry_in,
                    self.backoff.max,
                    again_after.map(|served| (served, STABLE_AFTER)),
                    time,
                )))]
            }
            (State::Up { since }, LinkInput::Tick)
                if now.saturating_duration_since(*since) >= STABLE_AFTER =>
            {
                let Some(flapping) = self.flapping.take() else {
                    return Vec::new();
                };
                vec![LinkAction::Publish(Box::new(restored_after_flapping(
                    now.saturating_duration_since(flapping.alarmed),
                    flapping,
                    time,
                )))]
            }
            // Opened, then failed before the panel was heard: still the same outage.
            (State::Reopened { lost }, LinkInput::Lost(_)) => {
                let lost = *lost;
                self.failed(lost, now);
                Vec::new()
            }
            (State::Down { lost, .. }, LinkInput::OpenFailed(_)) => {
                let lost = *lost;
                self.failed(lost, now);
                Vec::new()
            }
            (State::Down { lost, .. }, LinkInput::Opened) => {
                self.state = State::Reopened { lost: *lost };
                Vec::new()
            }
            (State::Reopened { lost }, LinkInput::PanelHeard) => {
                let down_for = now.saturating_duration_since(*lost);
                self.state = State::Up { since: now };
                self.reconnected = true;
                if let Some(flapping) = &mut self.flapping {
                    // Published once it has served the panel for STABLE_AFTER (a Tick).
                    flapping.attempts = flapping.attempts.saturating_add(self.attempts);
                    return Vec::new();
                }
                vec![LinkAction::Publish(Box::new(restored(
                    down_for,
                    self.attempts,
                    time,
                )))]
            }
            (
                State::Down {
                    lost,
                    retry_at: Some(at),
                },
                LinkInput::Tick,
            ) if *at <= now => {
                self.state = State::Down {
                    lost: *lost,
                    retry_at: None,
                };
                self.attempts = self.attempts.saturating_add(1);
                vec![LinkAction::Reopen]
            }
            // Anything else changes nothing: a poll on a working link, a tick before its time,
            // a report that does not fit the state (the serial task reports in order, so none
            // is expected).
            _ => Vec::new(),
        }
    }

    /// One more failure at `now` of the outage that began at `lost`: the port is tried again
    /// after the back-off's delay, which is returned.
    fn failed(&mut self, lost: Instant, now: Instant) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let retry_in = self.backoff.delay(self.failures);
        self.state = State::Down {
            lost,
            retry_at: Some(now + retry_in),
        };
        retry_in
    }
}

/// A flapping link's restoration: `since_alarm` after its alarm, having served the panel for
/// [`STABLE_AFTER`].
fn restored_after_flapping(since_alarm: Duration, flapping: Flapping, time: Timestamp) -> NewEvent {
    NewEvent::new(EventKind::PanelLinkRestored, time)
        .result(Outcome::Info)
        .detail(format!(
            "OSDP link back and serving the panel for {} s, {:.1} s after the alarm; the line was \
             lost {} {} in between ({} {} to open the port): check the RS-485 adapter and its \
             cable",
            STABLE_AFTER.as_secs(),
            since_alarm.as_secs_f64(),
            flapping.losses,
            if flapping.losses == 1 {
                "time"
            } else {
                "times"
            },
            flapping.attempts,
            if flapping.attempts == 1 {
                "attempt"
            } else {
                "attempts"
            }
        ))
}

fn restored(down_for: Duration, attempts: u32, time: Timestamp) -> NewEvent {
    NewEvent::new(EventKind::PanelLinkRestored, time)
        .result(Outcome::Info)
        .detail(format!(
            "OSDP link back after {:.1} s ({attempts} {} to open the port): the panel polls the gate again",
            down_for.as_secs_f64(),
            if attempts == 1 { "attempt" } else { "attempts" }
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reason;

    /// What a step must produce.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Expect {
        Nothing,
        Reopen,
        Alarm,
        /// The alarm of a link lost again soon after its restoration.
        FlapAlarm,
        Restored,
        /// The restoration of a flapping link, once it has served for `STABLE_AFTER`.
        RestoredStable,
        Stopped,
    }

    fn kind_of(actions: &[LinkAction]) -> Expect {
        match actions {
            [] => Expect::Nothing,
            [LinkAction::Reopen] => Expect::Reopen,
            [LinkAction::Publish(event)] => match (event.kind, &event.reason) {
                (EventKind::AlarmPanelLink, Some(reason)) if *reason == Reason::LINK_FAILED => {
                    if event
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.contains("until the gate restarts"))
                    {
                        Expect::Stopped
                    } else if event.detail.as_deref().is_some_and(|d| d.contains("flaps")) {
                        Expect::FlapAlarm
                    } else {
                        Expect::Alarm
                    }
                }
                (EventKind::PanelLinkRestored, None) => {
                    if event
                        .detail
                        .as_deref()
                        .is_some_and(|d| d.contains("serving the panel for 10 s"))
                    {
                        Expect::RestoredStable
                    } else {
                        Expect::Restored
                    }
                }
                other => panic!("unexpected event {other:?}"),
            },
            other => panic!("unexpected actions {other:?}"),
        }
    }

    const BACKOFF: Backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(400),
    };

    fn lost() -> LinkInput {
        LinkInput::Lost("serial line I/O: EIO".into())
    }

    fn open_failed() -> LinkInput {
        LinkInput::OpenFailed("no such device".into())
    }

    /// Runs (milliseconds after start, input, expected action, deadline afterwards in ms) rows.
    fn run(table: &[(u64, LinkInput, Expect, Option<u64>)]) {
        let start = Instant::now();
        let time = Timestamp::from_unix_ms(0);
        let mut link = PanelLink::new(BACKOFF, start);
        for (row, (at, input, expect, deadline)) in table.iter().enumerate() {
            let now = start + Duration::from_millis(*at);
            let actions = link.input(input.clone(), now, time);
            assert_eq!(
                kind_of(&actions),
                *expect,
                "row {row}: {input:?} at {at} ms"
            );
            assert_eq!(
                link.next_deadline(),
                deadline.map(|ms| start + Duration::from_millis(ms)),
                "row {row}: deadline"
            );
        }
    }

    #[test]
    fn an_outage_gives_one_alarm_retries_with_back_off_and_one_restoration() {
        use Expect::*;
        use LinkInput::*;
        run(&[
            (0, PanelHeard, Nothing, None),
            (20_000, lost(), Alarm, Some(20_100)),
            (20_050, Tick, Nothing, Some(20_100)),
            (20_100, Tick, Reopen, None),
            (20_101, open_failed(), Nothing, Some(20_301)),
            (20_301, Tick, Reopen, None),
            (20_302, open_failed(), Nothing, Some(20_702)),
            (20_702, Tick, Reopen, None),
            (20_703, open_failed(), Nothing, Some(21_103)),
            (21_103, Tick, Reopen, None),
            // Opened, but failed before the panel polled: the same outage, no second alarm.
            (21_104, Opened, Nothing, None),
            (21_105, lost(), Nothing, Some(21_505)),
            (21_505, Tick, Reopen, None),
            (21_506, Opened, Nothing, None),
            (21_600, Tick, Nothing, None),
            (21_700, PanelHeard, Restored, None),
            (21_800, PanelHeard, Nothing, None),
        ]);
    }

    #[test]
    fn a_link_that_fails_again_soon_keeps_its_back_off_and_a_stable_one_starts_over() {
        use Expect::*;
        use LinkInput::*;
        run(&[
            (0, lost(), Alarm, Some(100)),
            (100, Tick, Reopen, None),
            (101, Opened, Nothing, None),
            (102, PanelHeard, Restored, None),
            // Lost 1 s after coming back: second failure in a row, 200 ms.
            (1_102, lost(), FlapAlarm, Some(1_302)),
            (1_302, Tick, Reopen, None),
            (1_303, Opened, Nothing, None),
            // Back, but reported only once it has served for 10 s.
            (1_304, PanelHeard, Nothing, Some(11_304)),
            (11_304, Tick, RestoredStable, None),
            // Served for 10 s: the back-off starts over at 100 ms.
            (21_304, lost(), Alarm, Some(21_404)),
        ]);
    }

    #[test]
    fn a_flapping_link_keeps_one_alarm_standing_until_it_holds() {
        use Expect::*;
        use LinkInput::*;
        run(&[
            (0, lost(), Alarm, Some(100)),
            (100, Tick, Reopen, None),
            (101, Opened, Nothing, None),
            (150, PanelHeard, Restored, None),
            // A loose connector: lost 0.5 s after coming back, then again and again.
            (650, lost(), FlapAlarm, Some(850)),
            (850, Tick, Reopen, None),
            (851, Opened, Nothing, None),
            (900, PanelHeard, Nothing, Some(10_900)),
            (1_400, lost(), Nothing, Some(1_800)),
            (1_800, Tick, Reopen, None),
            (1_801, open_failed(), Nothing, Some(2_201)),
            (2_201, Tick, Reopen, None),
            (2_202, Opened, Nothing, None),
            (2_300, PanelHeard, Nothing, Some(12_300)),
            // Served 9.9 s, lost: still the standing alarm (the back-off at its 400 ms), the
            // hold starts again.
            (12_200, lost(), Nothing, Some(12_600)),
            (12_600, Tick, Reopen, None),
            (12_601, Opened, Nothing, None),
            (12_700, PanelHeard, Nothing, Some(22_700)),
            (22_699, Tick, Nothing, Some(22_700)),
            (22_700, Tick, RestoredStable, None),
            (22_800, Tick, Nothing, None),
            // It held 10 s: a loss now is a new outage, its back-off from the start.
            (22_900, lost(), Alarm, Some(23_000)),
            (23_000, Tick, Reopen, None),
            (23_001, Opened, Nothing, None),
            (23_100, PanelHeard, Restored, None),
            // And a loss soon after that restoration flaps again.
            (24_100, lost(), FlapAlarm, Some(24_300)),
        ]);
    }

    #[test]
    fn a_flapping_links_events_say_what_happened() {
        let start = Instant::now();
        let time = Timestamp::from_unix_ms(0);
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut link = PanelLink::new(BACKOFF, start);
        let mut published = Vec::new();
        for (ms, input) in [
            (0, lost()),
            (100, LinkInput::Tick),
            (100, LinkInput::Opened),
            (200, LinkInput::PanelHeard),
            (1_200, lost()),
            (1_400, LinkInput::Tick),
            (1_400, LinkInput::Opened),
            (1_500, LinkInput::PanelHeard),
            (2_000, lost()),
            (2_400, LinkInput::Tick),
            (2_400, LinkInput::Opened),
            (2_500, LinkInput::PanelHeard),
            (12_500, LinkInput::Tick),
        ] {
            for action in link.input(input, at(ms), time) {
                if let LinkAction::Publish(event) = action {
                    published.push(event.detail.unwrap_or_default());
                }
            }
        }
        assert_eq!(
            published,
            [
                "OSDP link lost: serial line I/O: EIO; the gate opens the port again in 0.1 s, \
                 then at most every 0.4 s; card data for the panel waits at most 5 s",
                "OSDP link back after 0.2 s (1 attempt to open the port): the panel polls the \
                 gate again",
                "OSDP link lost: serial line I/O: EIO; the gate opens the port again in 0.2 s, \
                 then at most every 0.4 s; card data for the panel waits at most 5 s; lost again \
                 1.0 s after it came back: the link flaps, and is reported back once it has \
                 served the panel for 10 s",
                "OSDP link back and serving the panel for 10 s, 11.3 s after the alarm; the line \
                 was lost 2 times in between (2 attempts to open the port): check the RS-485 \
                 adapter and its cable",
            ]
        );
        assert!(!link.is_down(), "up while the restoration waits");
    }

    #[test]
    fn an_ended_task_is_reported_once_and_then_nothing_happens() {
        use Expect::*;
        use LinkInput::*;
        run(&[
            (0, lost(), Alarm, Some(100)),
            (50, TaskEnded("panicked".into()), Stopped, None),
            (100, Tick, Nothing, None),
            (200, Opened, Nothing, None),
            (300, PanelHeard, Nothing, None),
            (400, TaskEnded("again".into()), Nothing, None),
        ]);
    }

    #[test]
    fn the_events_say_what_happened() {
        let start = Instant::now();
        let time = Timestamp::from_unix_ms(0);
        let mut link = PanelLink::new(BACKOFF, start);
        assert!(!link.is_down());
        let actions = link.input(lost(), start, time);
        let [LinkAction::Publish(alarm)] = actions.as_slice() else {
            panic!("{actions:?}");
        };
        assert_eq!(alarm.result, Some(Outcome::Alarm));
        assert_eq!(
            alarm.detail.as_deref(),
            Some(
                "OSDP link lost: serial line I/O: EIO; the gate opens the port again in 0.1 s, \
                 then at most every 0.4 s; card data for the panel waits at most 5 s"
            )
        );
        assert!(link.is_down());
        let reopen = start + Duration::from_millis(100);
        assert_eq!(
            link.input(LinkInput::Tick, reopen, time),
            vec![LinkAction::Reopen]
        );
        link.input(LinkInput::Opened, reopen, time);
        assert!(link.is_down(), "down until the panel polls");
        let actions = link.input(
            LinkInput::PanelHeard,
            start + Duration::from_millis(1500),
            time,
        );
        let [LinkAction::Publish(restored)] = actions.as_slice() else {
            panic!("{actions:?}");
        };
        assert_eq!(restored.result, Some(Outcome::Info));
        assert_eq!(
            restored.detail.as_deref(),
            Some(
                "OSDP link back after 1.5 s (1 attempt to open the port): the panel polls the gate again"
            )
        );
        assert!(!link.is_down());
    }
}
