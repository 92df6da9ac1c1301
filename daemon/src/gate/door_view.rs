//! The door-state projection, I/O-free.
//!
//! [`DoorStates`] keeps every door's retained state (`door/<door>/state`: lock, contact, mode),
//! projected from door-io's own status ([`palmgate_door::GateStatus`], read from the driver's
//! [`StatusWatch`] when a door controller event says something changed), and says which states
//! changed, to publish. The event the gate records for a door controller event, and its severity,
//! come from [`NewEvent::from_door_event`](crate::event::NewEvent::from_door_event).

use std::collections::BTreeMap;

use palmgate_door::{GateStatus, HeldOpenStage, StatusWatch};

use crate::mqtt::{Contact, DoorCondition, RetainedDoorState, RetainedLock};

/// Every door's retained state (`door/<door>/state`), projected from door-io's status.
#[derive(Debug)]
pub struct DoorStates {
    source: StatusWatch,
    statuses: BTreeMap<String, RetainedDoorState>,
}

impl DoorStates {
    /// The states of the doors as `source` shows them now.
    pub fn new(source: StatusWatch) -> Self {
        let mut states = Self {
            statuses: BTreeMap::new(),
            source,
        };
        let status = states.source.latest();
        states.project(&status);
        states
    }

    /// Every door's state, in name order.
    pub fn all(&self) -> impl Iterator<Item = (&String, &RetainedDoorState)> {
        self.statuses.iter()
    }

    /// A door controller event arrived: door-io's status (published before the event was
    /// delivered) is projected again; returns the states that changed, to publish.
    pub fn apply(&mut self, _event: &palmgate_door::Event) -> Vec<(String, RetainedDoorState)> {
        let status = self.source.latest();
        self.project(&status)
    }

    /// Projects `status`; returns the doors whose retained state changed (all of them the first
    /// time), in name order.
    pub fn project(&mut self, status: &GateStatus) -> Vec<(String, RetainedDoorState)> {
        let mut changed = Vec::new();
        for (door, door_status) in &status.doors {
            let projected = retained_state(status.fire, door_status);
            if self.statuses.get(door) != Some(&projected) {
                self.statuses.insert(door.clone(), projected.clone());
                changed.push((door.clone(), projected));
            }
        }
        changed.sort_by(|(a, _), (b, _)| a.cmp(b));
        changed
    }
}

/// One door's retained state from door-io's status of it (and whether fire is active).
pub fn retained_state(fire: bool, door: &palmgate_door::DoorStatus) -> RetainedDoorState {
    RetainedDoorState {
        lock: match door.lock {
            palmgate_door::LockState::Released => RetainedLock::Unlocked,
            palmgate_door::LockState::Secured => RetainedLock::Locked,
        },
        contact: match door.open {
            Some(true) => Contact::Open,
            Some(false) => Contact::Closed,
            None => Contact::Unknown,
        },
        mode: ModeConditions {
            fire,
            forced: door.forced,
            // The pre-alarm is a local warning; the alarm shows.
            held_open: door.held_open == Some(HeldOpenStage::Alarm),
            lockdown: door.lockdown,
        }
        .name(),
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

    /// A closed, secured door in normal operation (`open`: `None` without a contact).
    fn at_rest(open: Option<bool>) -> palmgate_door::DoorStatus {
        palmgate_door::DoorStatus {
            lock: palmgate_door::LockState::Secured,
            open,
            forced: false,
            held_open: None,
            tampered: false,
            passages: 0,
            pending_grants: 0,
            lockdown: false,
        }
    }

    /// Door-io's status of doors `back` (no contact) and `main`, as its driver publishes it.
    struct Driver {
        watch: StatusWatch,
        status: GateStatus,
    }

    impl Driver {
        fn new() -> Self {
            let status = GateStatus {
                started: true,
                fire: false,
                doors: vec![
                    ("main".to_string(), at_rest(Some(false))),
                    ("back".to_string(), at_rest(None)),
                ],
            };
            Self {
                watch: StatusWatch::new(status.clone()),
                status,
            }
        }

        /// Changes door `name`'s status and publishes it, as the driver does before delivering
        /// the event.
        fn door(&mut self, name: &str, change: impl FnOnce(&mut palmgate_door::DoorStatus)) {
            if let Some((_, door)) = self.status.doors.iter_mut().find(|(door, _)| door == name) {
                change(door);
            }
            self.watch.publish(self.status.clone());
        }

        fn fire(&mut self, active: bool) {
            self.status.fire = active;
            self.watch.publish(self.status.clone());
        }
    }

    /// (door, mode) of each changed state.
    fn modes(changed: &[(String, RetainedDoorState)]) -> Vec<(&str, &str)> {
        changed
            .iter()
            .map(|(door, status)| (door.as_str(), status.mode.as_str()))
            .collect()
    }

    #[test]
    fn the_first_projection_shows_every_door_at_rest() {
        let driver = Driver::new();
        let view = DoorStates::new(driver.watch.clone());
        let all: Vec<(&String, &RetainedDoorState)> = view.all().collect();
        assert_eq!(
            all,
            [
                (
                    &"back".to_string(),
                    &RetainedDoorState {
                        lock: RetainedLock::Locked,
                        contact: Contact::Unknown,
                        mode: DoorCondition::Normal,
                    }
                ),
                (
                    &"main".to_string(),
                    &RetainedDoorState {
                        lock: RetainedLock::Locked,
                        contact: Contact::Closed,
                        mode: DoorCondition::Normal,
                    }
                ),
            ]
        );
    }

    #[test]
    fn door_state_mode_shows_a_forced_or_held_open_door_until_it_closes() {
        let mut driver = Driver::new();
        let mut view = DoorStates::new(driver.watch.clone());
        driver.door("main", |door| {
            door.open = Some(true);
            door.forced = true;
        });
        let forced = view.apply(&event(Some("main"), DoorKind::Forced));
        assert_eq!(modes(&forced), [("main", "forced_open")]);
        assert_eq!(forced[0].1.contact, Contact::Open);
        driver.door("main", |door| {
            door.open = Some(false);
            door.forced = false;
        });
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::Closed))),
            [("main", "normal")]
        );
        // The pre-alarm is a local warning; the alarm shows.
        driver.door("main", |door| {
            door.open = Some(true);
            door.lock = palmgate_door::LockState::Released;
        });
        view.apply(&event(
            Some("main"),
            DoorKind::Opened {
                how: palmgate_door::Opening::Released,
            },
        ));
        driver.door("main", |door| {
            door.held_open = Some(HeldOpenStage::PreAlarm)
        });
        assert_eq!(
            modes(&view.apply(&event(
                Some("main"),
                DoorKind::HeldOpen {
                    stage: HeldOpenStage::PreAlarm
                }
            ))),
            []
        );
        driver.door("main", |door| door.held_open = Some(HeldOpenStage::Alarm));
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
        driver.door("main", |door| door.lockdown = true);
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::LockdownOn))),
            []
        );
        driver.door("main", |door| {
            door.open = Some(false);
            door.held_open = None;
        });
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::Closed))),
            [("main", "lockdown")]
        );
    }

    #[test]
    fn door_state_mode_follows_each_doors_lockdown_and_fire() {
        let mut driver = Driver::new();
        let mut view = DoorStates::new(driver.watch.clone());
        driver.door("back", |door| door.lockdown = true);
        assert_eq!(
            view.apply(&event(Some("back"), DoorKind::LockdownOn)),
            [(
                "back".to_string(),
                RetainedDoorState {
                    lock: RetainedLock::Locked,
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
        // An event that changed nothing publishes nothing.
        assert_eq!(
            modes(&view.apply(&event(Some("back"), DoorKind::Locked))),
            []
        );
        // Fire overrides lockdown on every door, and lockdown shows again when it clears.
        driver.fire(true);
        assert_eq!(
            modes(&view.apply(&event(None, DoorKind::FireActive))),
            [("back", "fire_release"), ("main", "fire_release")]
        );
        driver.fire(false);
        assert_eq!(
            modes(&view.apply(&event(None, DoorKind::FireCleared))),
            [("back", "lockdown"), ("main", "normal")]
        );
        driver.door("main", |door| door.lockdown = true);
        assert_eq!(
            modes(&view.apply(&event(Some("main"), DoorKind::LockdownOn))),
            [("main", "lockdown")]
        );
        driver.door("back", |door| door.lockdown = false);
        assert_eq!(
            modes(&view.apply(&event(Some("back"), DoorKind::LockdownOff))),
            [("back", "normal")]
        );
        driver.door("main", |door| {
            door.lock = palmgate_door::LockState::Released
        });
        let unlocked = view.apply(&event(
            Some("main"),
            DoorKind::Unlocked {
                cause: palmgate_door::ReleaseCause::Grant,
            },
        ));
        assert_eq!(unlocked.len(), 1);
        assert_eq!(unlocked[0].1.lock, RetainedLock::Unlocked);
        assert_eq!(unlocked[0].1.mode, DoorCondition::Lockdown);
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
