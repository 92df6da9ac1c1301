//! The panel's answer to a card read, attached to the presentation's event (I/O-free, injected
//! time).
//!
//! OSDP has no "granted" reply: the panel answers a card read like any reader's, with `osdp_LED`
//! and `osdp_BUZ` right after it collected the read with a poll. The event of a presentation whose
//! credential went to the panel is held until then: published [`ANSWER_WINDOW`] after the read
//! was delivered, with the LED colour and the beeps the panel commanded in its `detail`; or, when
//! no poll collected the read, once the PD dropped it (or [`COLLECT_DEADLINE`] after it was
//! queued; its detail says when the OSDP link was down then). At shutdown every held event is
//! published with what is known.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use palmgate_panel::Credential;
use palmgate_panel::osdp::command::{BuzzerCommand, Color, LedCommand, Temporary};
use palmgate_panel::osdp::pd::{CARD_READ_TTL, PdEvent};

use crate::event::NewEvent;

/// How long after delivering a read the panel's LED/buzzer commands count as its answer.
pub(crate) const ANSWER_WINDOW: Duration = Duration::from_millis(1500);

/// A read not delivered by then is reported as not collected (the PD drops it after
/// [`CARD_READ_TTL`]; the extra second lets its report arrive first).
pub(crate) const COLLECT_DEADLINE: Duration = CARD_READ_TTL.saturating_add(Duration::from_secs(1));

#[derive(Debug)]
struct Pending {
    event: NewEvent,
    credential: Credential,
    queued: Instant,
    delivered: Option<Instant>,
    dropped: bool,
    led: Option<Color>,
    buzzer: Option<u8>,
}

impl Pending {
    fn deadline(&self) -> Instant {
        match (self.dropped, self.delivered) {
            (true, _) => self.queued,
            (false, Some(delivered)) => delivered + ANSWER_WINDOW,
            (false, None) => self.queued + COLLECT_DEADLINE,
        }
    }

    fn awaiting_delivery(&self) -> bool {
        self.delivered.is_none() && !self.dropped
    }

    /// The event with what the panel did in its detail.
    fn finish(mut self, gate_stopping: bool, link_down: bool) -> NewEvent {
        let credential = self.credential;
        let outcome = match (self.delivered, self.dropped) {
            (Some(_), _) => {
                let mut answer = Vec::new();
                if let Some(color) = self.led {
                    answer.push(format!("LED {}", color_name(color)));
                }
                if let Some(count) = self.buzzer {
                    answer.push(match count {
                        0 => "buzzer on".to_string(),
                        count => format!("buzzer {count}x"),
                    });
                }
                if answer.is_empty() {
                    format!(
                        "{credential} delivered over OSDP; no LED or buzzer answer within {} ms",
                        ANSWER_WINDOW.as_millis()
                    )
                } else {
                    format!(
                        "{credential} delivered over OSDP; panel answered {}",
                        answer.join(", ")
                    )
                }
            }
            (None, true) => format!(
                "{credential} not collected by the panel within {} s: dropped",
                CARD_READ_TTL.as_secs()
            ),
            (None, false) if gate_stopping => {
                format!(
                    "{credential} queued for the panel; the gate stopped before it was collected"
                )
            }
            (None, false) if link_down => format!(
                "{credential} not collected by the panel within {} s: the OSDP link is down",
                COLLECT_DEADLINE.as_secs()
            ),
            (None, false) => format!(
                "{credential} not collected by the panel within {} s",
                COLLECT_DEADLINE.as_secs()
            ),
        };
        let detail = match self.event.detail.take() {
            Some(detail) => format!("{detail}; panel: {outcome}"),
            None => format!("panel: {outcome}"),
        };
        self.event.detail = Some(detail);
        self.event
    }
}

/// Human name of an LED colour.
pub(crate) fn color_name(color: Color) -> String {
    match color {
        Color::Off => "off".to_string(),
        Color::Red => "red".to_string(),
        Color::Green => "green".to_string(),
        Color::Amber => "amber".to_string(),
        Color::Blue => "blue".to_string(),
        other => format!("colour {}", other.code()),
    }
}

/// The colour an LED command shows first: its temporary state when it sets one (panels flash
/// grant/deny as a temporary state over an idle permanent one), else its new permanent state.
fn shown_color(command: &LedCommand) -> Option<Color> {
    match command.temporary {
        Temporary::Set { pattern, .. } => Some(pattern.on_color),
        _ => command.permanent.map(|pattern| pattern.on_color),
    }
}

fn beeps(command: &BuzzerCommand) -> Option<u8> {
    (!command.is_off()).then_some(command.count)
}

/// The events waiting for the panel's answer, oldest first (the PD delivers reads in order).
#[derive(Debug, Default)]
pub(crate) struct Answers {
    pending: VecDeque<Pending>,
    /// The OSDP link is down: a read not collected says why.
    link_down: bool,
    /// Reads reported as not collected that the PD still holds (it drops them at the next poll,
    /// or delivers one whose report came late): the PD's next reports are theirs, not those of
    /// the reads held after them.
    abandoned: usize,
}

impl Answers {
    /// Holds `event` until the panel answers `credential`, queued for it at `now`.
    pub(crate) fn hold(&mut self, event: NewEvent, credential: Credential, now: Instant) {
        self.pending.push_back(Pending {
            event,
            credential,
            queued: now,
            delivered: None,
            dropped: false,
            led: None,
            buzzer: None,
        });
    }

    /// Whether the OSDP link is down now (see [`super::link`]).
    pub(crate) fn set_link_down(&mut self, down: bool) {
        self.link_down = down;
    }

    /// Takes what the PD reported at `now`.
    pub(crate) fn pd_event(&mut self, event: &PdEvent, now: Instant) {
        match event {
            PdEvent::CardDelivered { .. } | PdEvent::CardExpired { .. } if self.abandoned > 0 => {
                self.abandoned -= 1;
            }
            PdEvent::CardDelivered { .. } => {
                if let Some(pending) = self.first_awaiting_delivery() {
                    pending.delivered = Some(now);
                }
            }
            PdEvent::CardExpired { .. } => {
                if let Some(pending) = self.first_awaiting_delivery() {
                    pending.dropped = true;
                }
            }
            PdEvent::Led(command) => {
                if let Some(pending) = self.answering(now)
                    && pending.led.is_none()
                {
                    pending.led = shown_color(command);
                }
            }
            PdEvent::Buzzer(command) => {
                if let Some(pending) = self.answering(now)
                    && pending.buzzer.is_none()
                {
                    pending.buzzer = beeps(command);
                }
            }
            _ => {}
        }
    }

    fn first_awaiting_delivery(&mut self) -> Option<&mut Pending> {
        self.pending.iter_mut().find(|p| p.awaiting_delivery())
    }

    /// The latest delivered read whose answer window is open at `now`.
    fn answering(&mut self, now: Instant) -> Option<&mut Pending> {
        self.pending
            .iter_mut()
            .rev()
            .find(|p| p.delivered.is_some_and(|at| now < at + ANSWER_WINDOW))
    }

    /// The events whose wait is over at `now`, in the order they were held.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<NewEvent> {
        let (due, waiting): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|p| p.deadline() <= now);
        self.pending = waiting;
        self.abandoned += due.iter().filter(|p| p.awaiting_delivery()).count();
        let link_down = self.link_down;
        due.into_iter()
            .map(|p| p.finish(false, link_down))
            .collect()
    }

    /// When the next held event is due.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.pending.iter().map(Pending::deadline).min()
    }

    /// Every held event, with what is known (the gate is stopping).
    pub(crate) fn drain(&mut self) -> Vec<NewEvent> {
        std::mem::take(&mut self.pending)
            .into_iter()
            .map(|p| p.finish(true, false))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use palmgate_panel::WiegandFormat;
    use palmgate_panel::osdp::command::LedPattern;

    use super::*;
    use crate::event::{EventKind, Outcome, Timestamp};

    fn credential(number: u32) -> Credential {
        Credential::new(WiegandFormat::H10301, 12, number).expect("fits")
    }

    fn granted() -> NewEvent {
        NewEvent::new(EventKind::AccessGranted, Timestamp::from_unix_ms(0)).result(Outcome::Granted)
    }

    fn led(temporary: Temporary, permanent: Color) -> PdEvent {
        PdEvent::Led(LedCommand {
            reader: 0,
            led: 0,
            temporary,
            permanent: Some(LedPattern {
                on: 1,
                off: 0,
                on_color: permanent,
                off_color: Color::Off,
            }),
        })
    }

    fn buzzer(count: u8) -> PdEvent {
        PdEvent::Buzzer(BuzzerCommand {
            reader: 0,
            tone: 2,
            on: 2,
            off: 2,
            count,
        })
    }

    #[test]
    fn the_panels_led_and_beeps_after_delivery_are_its_answer() {
        let t0 = Instant::now();
        let mut answers = Answers::default();
        answers.hold(granted(), credential(3456), t0);
        assert_eq!(answers.next_deadline(), Some(t0 + COLLECT_DEADLINE));
        answers.pd_event(&led(Temporary::NoChange, Color::Red), t0);
        let delivered = t0 + Duration::from_millis(40);
        answers.pd_event(&PdEvent::CardDelivered { bits: 26 }, delivered);
        let flash = Temporary::Set {
            pattern: LedPattern {
                on: 1,
                off: 0,
                on_color: Color::Green,
                off_color: Color::Off,
            },
            timer: 30,
        };
        answers.pd_event(&led(flash, Color::Red), delivered);
        answers.pd_event(&buzzer(1), delivered);
        answers.pd_event(&led(Temporary::Cancel, Color::Amber), delivered);
        assert!(
            answers
                .due(delivered + ANSWER_WINDOW - Duration::from_millis(1))
                .is_empty()
        );
        let events = answers.due(delivered + ANSWER_WINDOW);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].detail.as_deref(),
            Some(
                "panel: h10301 facility 12 card 3456 delivered over OSDP; panel answered LED green, buzzer 1x"
            ),
            "the first answer after delivery; the LED before it was not"
        );
        assert!(answers.next_deadline().is_none());
    }

    #[test]
    fn a_read_never_collected_is_reported_and_a_dropped_one_at_once() {
        let t0 = Instant::now();
        let mut answers = Answers::default();
        answers.hold(granted(), credential(1), t0);
        answers.hold(granted().detail("palm verified"), credential(2), t0);
        answers.pd_event(&PdEvent::CardExpired { bits: 26 }, t0 + CARD_READ_TTL);
        let events = answers.due(t0 + CARD_READ_TTL);
        assert_eq!(events.len(), 1, "the oldest read was dropped");
        assert_eq!(
            events[0].detail.as_deref(),
            Some("panel: h10301 facility 12 card 1 not collected by the panel within 5 s: dropped")
        );
        let events = answers.due(t0 + COLLECT_DEADLINE);
        assert_eq!(
            events[0].detail.as_deref(),
            Some(
                "palm verified; panel: h10301 facility 12 card 2 not collected by the panel within 6 s"
            )
        );
        answers.hold(granted(), credential(3), t0);
        answers.set_link_down(true);
        let events = answers.due(t0 + COLLECT_DEADLINE);
        assert_eq!(
            events[0].detail.as_deref(),
            Some(
                "panel: h10301 facility 12 card 3 not collected by the panel within 6 s: the OSDP link is down"
            )
        );
    }

    /// A read given up on while the link was down is still in the PD: when the link is back,
    /// the PD drops it at the first poll, and that report must not be taken for the read held
    /// after it, which is then delivered.
    #[test]
    fn a_read_given_up_on_is_not_confused_with_the_next_one() {
        let t0 = Instant::now();
        let mut answers = Answers::default();
        answers.set_link_down(true);
        answers.hold(granted(), credential(1), t0);
        assert_eq!(answers.due(t0 + COLLECT_DEADLINE).len(), 1);
        answers.set_link_down(false);
        let later = t0 + Duration::from_secs(10);
        answers.hold(granted(), credential(2), later);
        answers.pd_event(&PdEvent::CardExpired { bits: 26 }, later);
        answers.pd_event(&PdEvent::CardDelivered { bits: 26 }, later);
        let events = answers.due(later + ANSWER_WINDOW);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].detail.as_deref(),
            Some(
                "panel: h10301 facility 12 card 2 delivered over OSDP; no LED or buzzer answer within 1500 ms"
            )
        );
    }

    #[test]
    fn a_delivery_without_answer_and_a_shutdown_say_so() {
        let t0 = Instant::now();
        let mut answers = Answers::default();
        answers.hold(granted(), credential(1), t0);
        answers.hold(granted(), credential(2), t0);
        answers.pd_event(&PdEvent::CardDelivered { bits: 26 }, t0);
        let events = answers.due(t0 + ANSWER_WINDOW);
        assert!(
            events[0]
                .detail
                .as_deref()
                .is_some_and(|d| d.ends_with("no LED or buzzer answer within 1500 ms")),
            "{events:?}"
        );
        let events = answers.drain();
        assert_eq!(
            events[0].detail.as_deref(),
            Some(
                "panel: h10301 facility 12 card 2 queued for the panel; the gate stopped before it was collected"
            )
        );
    }
}
