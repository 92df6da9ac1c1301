//! The door-state projection, I/O-free.
//!
//! [`DoorStates`] keeps every door's retained state (`door/<door>/state`: lock, contact, mode)
//! from the door controller's events and says which states changed, to publish. The event the
//! gate records for a door controller event, and its severity, come from
//! [`NewEvent::from_door_event`] (crate::event).

use std::collections::{BTreeMap, BTreeSet};

use crate::mqtt::{Contact, DoorCondition, DoorStatus, LockState};

/// Every door's retained state (`door/<door>/state`), kept from the door controller's events.
#[derive(Debug)]
pub struct DoorStates {
    statuses: BTreeMap<String, DoorStatus>,
    /// Doors in lockdown.
    locked_down: BTreeSet<String>,
    /// Doors opened without a grant, until they close.
    forced: BTreeSet<String>,
    /// Doors held open past `held_open_alarm_s`, until they close.
    held_open: BTreeSet<String>,
    fire: bool,
}

impl DoorStates {
    /// Every door locked and closed (unknown without a contact), in normal mode.
    pub fn new(doors: impl IntoIterator<Item = (String, bool)>) -> Self {
        let statuses = doors
            .into_iter()
            .map(|(name, has_contact)| {
                let status = DoorStatus {
                    lock: LockState::Locked,
                    contact: if has_contact {
                        Contact::Closed
                    } else {
                        Contact::Unknown
                    },
                    mode: ModeConditions::default().name(),
                };
                (name, status)
            })
            .collect();
        Self {
            statuses,
            locked_down: BTreeSet::new(),
            forced: BTreeSet::new(),
            held_open: BTreeSet::new(),
            fire: false,
        }
    }

    /// Every door's state, in name order.
    pub fn all(&self) -> impl Iterator<Item = (&String, &DoorStatus)> {
        self.statuses.iter()
    }

    /// Applies a door controller event; returns the states that changed, to publish. A door event
    /// changes that door's state; a gate event (fire) may change every door's mode.
    pub fn apply(&mut self, event: &palmgate_door::Event) -> Vec<(String, DoorStatus)> {
        use palmgate_door::EventKind as DoorKind;
        match (&event.kind, &event.door) {
            (DoorKind::FireActive, _) => self.fire = true,
            (DoorKind::FireCleared, _) => self.fire = false,
            (DoorKind::LockdownOn, Some(door)) => {
                self.locked_down.insert(door.clone());
            }
            (DoorKind::LockdownOff, Some(door)) => {
                self.locked_down.remove(door);
            }
            (DoorKind::Forced, Some(door)) => {
                self.forced.insert(door.clone());
            }
            (
                DoorKind::HeldOpen {
                    stage: palmgate_door::HeldOpenStage::Alarm,
                },
                Some(door),
            ) => {
                self.held_open.insert(door.clone());
            }
            (DoorKind::Closed, Some(door)) => {
                self.forced.remove(door);
                self.held_open.remove(door);
            }
            _ => {}
        }
        let doors: Vec<String> = match &event.door {
            Some(door) => vec![door.clone()],
            None => self.statuses.keys().cloned().collect(),
        };
        let mut changed = Vec::new();
        for door in doors {
            let mode = ModeConditions {
                fire: self.fire,
                forced: self.forced.contains(&door),
                held_open: self.held_open.contains(&door),
                lockdown: self.locked_down.contains(&door),
            }
            .name();
            let Some(status) = self.statuses.get_mut(&door) else {
                continue;
            };
            let before = status.clone();
            if event.door.is_some() {
                match &event.kind {
                    DoorKind::Unlocked { .. } => status.lock = LockState::Unlocked,
                    DoorKind::Locked => status.lock = LockState::Locked,
                    DoorKind::Opened { .. } => status.contact = Contact::Open,
                    DoorKind::Closed => status.contact = Contact::Closed,
                    _ => {}
                }
            }
            if status.mode != mode {
                status.mode = mode;
            }
            if *status != before {
                changed.push((door, status.clone()));
            }
        }
        changed
    }
}

/// What decides the `mode` of a door's retained state.
#[derive(Debug, Clone, Copy, Default)]
struct ModeConditions {
    fire: bool,
    forced: bool,
    held_open: bool,
    lockdown: bool,
}

impl ModeConditions {
    /// The most urgent condition first: fire releases every door (whatever else holds); a forced
    /// or held-open door is an alarm until it closes; lockdown is an operating mode.
    fn name(self) -> DoorCondition {
        if self.fire {
            DoorCondition::FireRelease
        } else if self.forced {
            DoorCondition::ForcedOpen
        } else if self.held_open {
            DoorCondition::HeldOpen
        } else if self.lockdown {
            DoorCondition::Lockdown
        } else {
            DoorCondition::Normal
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::event::{NewEvent, Outcome, Timestamp};
    use std::time::Instant;

    use palmgate_door::{Event, EventKind as DoorKind};

    use super::*;

    fn event(door: Option<&str>, kind: DoorKind) -> Event {
        Event {
            at: Instant::now(),
            door: door.map(str::to_string),
            kind,
        }
    }

    /// (door, mode) of each changed state.
    fn modes(changed: &[(String, DoorStatus)]) -> Vec<(&str, &str)> {
        changed
            .iter()
            .map(|(door, status)| (door.as_str(), status.mode.as_str()))
            .collect()
    }

    #[test]
    fn door_state_mode_shows_a_forced_or_held_open_door_until_it_closes() {
        use palmgate_door::HeldOpenStage;
        let mut view = DoorStates::new([("main".to_string(), true)]);
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::Forced))),
            [("main", "forced_open")]
        );
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::Closed))),
            [("main", "normal")]
        );
        // The pre-alarm is a local warning; the alarm shows.
        assert_eq!(
            modes(&view.apply(&event(
                Some("main"),
                DoorKind::HeldOpen {
                    stage: HeldOpenStage::PreAlarm
                }
            ))),
            []
        );
        assert_eq!(
            modes(&view.apply(&event(
                Some("main"),
                DoorKind::HeldOpen {
                    stage: HeldOpenStage::Alarm
                }
            ))),
            [("main", "held_open")]
        );
        // An alarm outranks lockdown; once the door closes lockdown shows again.
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::LockdownOn))),
            []
        );
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::Closed))),
            [("main", "lockdown")]
        );
    }

    #[test]
    fn door_state_mode_follows_each_doors_lockdown_and_fire() {
        let mut view = DoorStates::new([("back".to_string(), false), ("main".to_string(), true)]);
        assert_eq!(
            view.apply(&event(Some("back"), DoorKind::LockdownOn)),
            [(
                "back".to_string(),
                DoorStatus {
                    lock: LockState::Locked,
                    contact: Contact::Unknown,
                    mode: DoorCondition::Lockdown,
                }
            )]
        );
        let main = view
            .all()
            .find(|(door, _)| *door == "main")
            .map(|(_, s)| s.clone());
        assert_eq!(main.map(|status| status.mode), Some(DoorCondition::Normal));
        assert_eq!(
            modes(&view.apply(&event(Some("back"), DoorKind::Locked))),
            []
        );
        // Fire overrides lockdown on every door, and lockdown shows again when it clears.
        assert_eq!(
            modes(&view.apply(&event(None, DoorKind::FireActive))),
            [("back", "fire_release"), ("main", "fire_release")]
        );
        assert_eq!(
            modes(&view.apply(&event(None, DoorKind::FireCleared))),
            [("back", "lockdown"), ("main", "normal")]
        );
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::LockdownOn))),
            [("main", "lockdown")]
        );
        assert_eq!(
            modes(&view.apply(&event(Some("back"), DoorKind::LockdownOff))),
            [("back", "normal")]
        );
        let unlocked = view.apply(&event(
            Some("main"),
            DoorKind::Unlocked {
                cause: palmgate_door::ReleaseCause::Grant,
            },
        ));
        assert_eq!(unlocked.len(), 1);
        assert_eq!(unlocked[0].1.lock, LockState::Unlocked);
        assert_eq!(unlocked[0].1.mode, DoorCondition::Lockdown);
        // A door this gate does not have changes nothing.
        assert_eq!(
            modes(&view.apply(&event(Some("side"), DoorKind::LockdownOn))),
            []
        );
    }

    #[test]
    fn door_events_are_alarms_only_for_a_breach_or_a_fire() {
        use palmgate_door::HeldOpenStage;
        let outcome = |kind: DoorKind| {
            NewEvent::from_door_event(&event(Some("main"), kind), Timestamp::now())
                .map(|record| record.result)
                .expect("a recorded kind")
        };
        assert_eq!(outcome(DoorKind::Forced), Some(Outcome::Alarm));
        assert_eq!(
            outcome(DoorKind::HeldOpen {
                stage: HeldOpenStage::Alarm
            }),
            Some(Outcome::Alarm)
        );
        assert_eq!(outcome(DoorKind::FireActive), Some(Outcome::Alarm));
        assert_eq!(outcome(DoorKind::Closed), Some(Outcome::Info));
        assert_eq!(outcome(DoorKind::Locked), Some(Outcome::Info));
        assert_eq!(outcome(DoorKind::LockdownOn), Some(Outcome::Info));
    }
}
