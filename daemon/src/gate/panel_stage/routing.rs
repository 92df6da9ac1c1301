//! Which of the access machine's actions go to the panel (I/O-free).
//!
//! In reader mode the gate verifies and the panel decides: a presentation's outcome (the
//! `access.granted` or `access.denied` event the machine publishes) becomes a verdict for the
//! panel, and the gate's own door actions of that presentation (unlock, denial feedback) are
//! dropped unless `drive_door` is set. Everything else — remote unlocks, alarms, other events —
//! is carried out as usual.

use palmgate_panel::output::Verdict;

use crate::access::Action;
use crate::event::{CardId, EventKind, NewEvent};

/// A presentation's outcome, taken out of the actions for the panel.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Presentation {
    /// What the panel gets.
    pub(crate) verdict: Verdict,
    /// The card presented, when it was read.
    pub(crate) card: Option<CardId>,
    /// The `access.granted` / `access.denied` event, published once the panel has it.
    pub(crate) event: NewEvent,
}

/// Splits `actions` into those the gate carries out and the presentation outcome for the panel.
/// The machine decides at most one presentation per input, so one batch holds at most one.
pub(crate) fn route(actions: Vec<Action>, drive_door: bool) -> (Vec<Action>, Option<Presentation>) {
    let outcome = actions.iter().position(|action| {
        matches!(action, Action::Publish(event)
            if matches!(event.kind, EventKind::AccessGranted | EventKind::AccessDenied))
    });
    let Some(index) = outcome else {
        return (actions, None);
    };
    let duress = actions.iter().any(
        |action| matches!(action, Action::Publish(event) if event.kind == EventKind::AlarmDuress),
    );
    let mut keep = Vec::with_capacity(actions.len());
    let mut presentation = None;
    for (position, action) in actions.into_iter().enumerate() {
        match action {
            Action::Publish(event) if position == index => {
                let verdict = match (event.kind, duress) {
                    (EventKind::AccessGranted, true) => Verdict::Duress,
                    (EventKind::AccessGranted, false) => Verdict::Granted,
                    _ => Verdict::Denied,
                };
                presentation = Some(Presentation {
                    verdict,
                    card: event.card_id.clone(),
                    event,
                });
            }
            Action::Unlock { .. } | Action::Deny { .. } if !drive_door => {}
            other => keep.push(other),
        }
    }
    (keep, presentation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Outcome, Reason, Timestamp};

    fn card() -> CardId {
        CardId::new(&[7; 16]).expect("card id")
    }

    fn granted() -> NewEvent {
        NewEvent::new(EventKind::AccessGranted, Timestamp::from_unix_ms(0))
            .door("main".to_string())
            .card(card())
            .result(Outcome::Granted)
    }

    fn unlock() -> Action {
        Action::Unlock {
            door: "main".to_string(),
            unlock: None,
        }
    }

    #[test]
    fn a_grant_goes_to_the_panel_and_the_gates_relay_stays_off() {
        let (keep, presentation) = route(vec![unlock(), Action::Publish(granted())], false);
        assert!(keep.is_empty(), "{keep:?}");
        let presentation = presentation.expect("outcome");
        assert_eq!(presentation.verdict, Verdict::Granted);
        assert_eq!(presentation.card, Some(card()));
        assert_eq!(presentation.event, granted());

        let (keep, _) = route(vec![unlock(), Action::Publish(granted())], true);
        assert_eq!(keep, vec![unlock()], "drive_door: the relay as well");
    }

    #[test]
    fn duress_sends_the_duress_verdict_and_the_alarm_is_published_at_once() {
        let alarm = NewEvent::new(EventKind::AlarmDuress, Timestamp::from_unix_ms(0))
            .card(card())
            .reason(Reason::DURESS_PALM);
        let (keep, presentation) = route(
            vec![
                unlock(),
                Action::Publish(granted()),
                Action::Publish(alarm.clone()),
            ],
            false,
        );
        assert_eq!(keep, vec![Action::Publish(alarm)]);
        assert_eq!(presentation.expect("outcome").verdict, Verdict::Duress);
    }

    #[test]
    fn a_denial_is_a_denied_verdict_even_without_a_card() {
        let denied = NewEvent::new(EventKind::AccessDenied, Timestamp::from_unix_ms(0))
            .reason(Reason::NO_PALM);
        let deny = Action::Deny {
            door: "main".to_string(),
        };
        let (keep, presentation) =
            route(vec![deny.clone(), Action::Publish(denied.clone())], false);
        assert!(keep.is_empty(), "the panel owns the reader's feedback");
        let presentation = presentation.expect("outcome");
        assert_eq!(
            (presentation.verdict, presentation.card),
            (Verdict::Denied, None)
        );
        let (keep, _) = route(vec![deny.clone(), Action::Publish(denied)], true);
        assert_eq!(keep, vec![deny]);
    }

    #[test]
    fn a_remote_unlock_and_other_actions_are_left_alone() {
        let remote = NewEvent::new(EventKind::AccessRemoteUnlock, Timestamp::from_unix_ms(0))
            .door("main".to_string())
            .result(Outcome::Granted);
        let actions = vec![unlock(), Action::Publish(remote), Action::Verify];
        let (keep, presentation) = route(actions.clone(), false);
        assert_eq!(keep, actions);
        assert!(presentation.is_none());
    }
}
