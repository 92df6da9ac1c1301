//! `alarm.panel_link`: what goes wrong on the panel's side is published, not only logged
//! (I/O-free; the time is passed in). When the serial link fails is [`super::link`]'s decision.
//!
//! A refused secure channel means that something on the RS-485 bus is not the commissioned panel,
//! or that the panel lost its key: a facility manager must hear of it. A device on the bus can
//! provoke a refusal at every poll (several a second), so refusals are reported at most once per
//! [`REFUSAL_REPORT_INTERVAL`], the next report saying how many came in between; none is dropped
//! from the count.

use std::time::{Duration, Instant};

use palmgate_panel::osdp::pd::{CARD_READ_TTL, PdEvent};

use crate::event::{EventKind, NewEvent, Outcome, Reason, Timestamp};

/// At most one `secure_channel_refused` report in this interval.
pub(crate) const REFUSAL_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// The panel link's alarms, with the secure channel's refusals rate-limited.
#[derive(Debug, Default)]
pub(crate) struct PanelAlarms {
    /// When the last refusal was reported.
    last_reported: Option<Instant>,
    /// Refusals since then that were not reported one by one.
    unreported: u32,
}

impl PanelAlarms {
    /// The alarm a PD report raises now, if any.
    pub(crate) fn pd_event(
        &mut self,
        event: &PdEvent,
        now: Instant,
        time: Timestamp,
    ) -> Option<NewEvent> {
        match event {
            PdEvent::Refused(refusal) => {
                let due = self
                    .last_reported
                    .is_none_or(|last| now.duration_since(last) >= REFUSAL_REPORT_INTERVAL);
                if !due {
                    self.unreported = self.unreported.saturating_add(1);
                    return None;
                }
                let mut detail = format!("OSDP secure channel refused: {refusal}");
                if self.unreported > 0 {
                    detail.push_str(&format!(
                        "; {} more refusals since the last report",
                        self.unreported
                    ));
                }
                self.last_reported = Some(now);
                self.unreported = 0;
                Some(alarm(Reason::SECURE_CHANNEL_REFUSED, detail, time))
            }
            PdEvent::ComSetNotStored(reason) => Some(alarm(
                Reason::COMSET_NOT_STORED,
                format!("the panel's new communication settings were refused: {reason}"),
                time,
            )),
            _ => None,
        }
    }

    /// The OSDP link failed: the panel gets no card data until it is back; the gate opens the
    /// port again in `retry_in`, then at most every `max`. `flapping`: it failed `served` after
    /// its restoration, and its next restoration is published once it has served for `hold`.
    pub(crate) fn link_lost(
        why: &str,
        retry_in: Duration,
        max: Duration,
        flapping: Option<(Duration, Duration)>,
        time: Timestamp,
    ) -> NewEvent {
        let mut detail = format!(
            "OSDP link lost: {why}; the gate opens the port again in {} s, then at most every {} \
             s; card data for the panel waits at most {} s",
            retry_in.as_secs_f64(),
            max.as_secs_f64(),
            CARD_READ_TTL.as_secs()
        );
        if let Some((served, hold)) = flapping {
            detail.push_str(&format!(
                "; lost again {:.1} s after it came back: the link flaps, and is reported back \
                 once it has served the panel for {} s",
                served.as_secs_f64(),
                hold.as_secs()
            ));
        }
        alarm(Reason::LINK_FAILED, detail, time)
    }

    /// The OSDP serial task itself ended (a bug): nothing opens the port again.
    pub(crate) fn link_stopped(why: &str, time: Timestamp) -> NewEvent {
        alarm(
            Reason::LINK_FAILED,
            format!(
                "OSDP link task stopped: {why}; the panel gets no card data until the gate restarts"
            ),
            time,
        )
    }
}

fn alarm(reason: Reason, detail: String, time: Timestamp) -> NewEvent {
    NewEvent::new(EventKind::AlarmPanelLink, time)
        .result(Outcome::Alarm)
        .reason(reason)
        .detail(detail)
}

#[cfg(test)]
mod tests {
    use palmgate_panel::osdp::pd::SecureRefusal;

    use super::*;

    fn refused() -> PdEvent {
        PdEvent::Refused(SecureRefusal::BadCryptogram)
    }

    #[test]
    fn refusals_are_reported_at_most_once_a_minute_and_the_rest_counted() {
        let start = Instant::now();
        let time = Timestamp::from_unix_ms(0);
        let mut alarms = PanelAlarms::default();
        // (seconds after start, the detail reported then, or none)
        let table: [(u64, Option<&str>); 5] = [
            (
                0,
                Some("OSDP secure channel refused: wrong key: the CP's cryptogram does not verify"),
            ),
            (1, None),
            (59, None),
            (
                60,
                Some(
                    "OSDP secure channel refused: wrong key: the CP's cryptogram does not verify; \
                     2 more refusals since the last report",
                ),
            ),
            (
                200,
                Some("OSDP secure channel refused: wrong key: the CP's cryptogram does not verify"),
            ),
        ];
        for (seconds, expected) in table {
            let event = alarms.pd_event(&refused(), start + Duration::from_secs(seconds), time);
            assert_eq!(
                event.as_ref().and_then(|event| event.detail.as_deref()),
                expected,
                "at {seconds} s"
            );
            if let Some(event) = event {
                assert_eq!(event.kind, EventKind::AlarmPanelLink);
                assert_eq!(event.reason, Some(Reason::SECURE_CHANNEL_REFUSED));
            }
        }
    }

    #[test]
    fn comset_not_stored_is_an_alarm_and_other_reports_are_not() {
        let mut alarms = PanelAlarms::default();
        let time = Timestamp::from_unix_ms(0);
        let event = alarms
            .pd_event(
                &PdEvent::ComSetNotStored("disk full".into()),
                Instant::now(),
                time,
            )
            .expect("an alarm");
        assert_eq!(event.reason, Some(Reason::COMSET_NOT_STORED));
        assert!(
            alarms
                .pd_event(&PdEvent::KeyInstalled, Instant::now(), time)
                .is_none()
        );
        let stopped = PanelAlarms::link_stopped("panicked", time);
        assert_eq!(stopped.reason, Some(Reason::LINK_FAILED));
    }
}
