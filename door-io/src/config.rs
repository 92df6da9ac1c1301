//! Plain configuration of a gate's doors: pins, levels, fail modes and timings.
//!
//! These types know nothing of the daemon's configuration files; the daemon maps its validated
//! settings onto them. [`GateConfig::validate`] checks what the state machine relies on, so that a
//! bad configuration is refused with a clear error instead of misbehaving.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Not;
use std::time::Duration;

/// Electrical level of a pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Level {
    /// 0 V.
    Low,
    /// 3.3 V.
    High,
}

impl Not for Level {
    type Output = Level;

    fn not(self) -> Level {
        match self {
            Level::Low => Level::High,
            Level::High => Level::Low,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Level::Low => "low",
            Level::High => "high",
        })
    }
}

/// What the lock does without power.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailMode {
    /// Fail-secure strike: energise to unlock; stays locked without power.
    Secure,
    /// Fail-safe maglock: energise to lock; releases without power.
    Safe,
}

/// Door or turnstile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorMode {
    /// A door held unlocked for `unlock` after a grant, relocked when it closes.
    Door,
    /// A turnstile: one release pulse per grant, passages counted.
    Turnstile,
}

/// The lock's logical state, independent of wiring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// The door cannot be opened from outside.
    Secured,
    /// The door (or turnstile) can be passed.
    Released,
}

/// A debounced input: BCM pin and the level that means "active".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputConfig {
    /// BCM pin number.
    pub pin: u8,
    /// Level that means active (door open, button pressed, tampered, passage, fire).
    pub active: Level,
}

impl InputConfig {
    /// Whether `level` means active.
    pub fn is_active(&self, level: Level) -> bool {
        level == self.active
    }
}

/// The lock relay output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockConfig {
    /// BCM pin of the relay.
    pub pin: u8,
    /// Level that energises the relay.
    pub active: Level,
    /// Strike (fail-secure) or maglock (fail-safe).
    pub fail_mode: FailMode,
}

impl LockConfig {
    /// Level that de-energises the relay: the safe state, the same as without power.
    pub fn safe_level(&self) -> Level {
        !self.active
    }

    /// What the lock does with the relay de-energised (power loss, shutdown, start-up).
    pub fn unpowered_state(&self) -> LockState {
        match self.fail_mode {
            FailMode::Secure => LockState::Secured,
            FailMode::Safe => LockState::Released,
        }
    }

    /// Pin level for a lock state: a strike is energised to release, a maglock to secure.
    pub fn level_for(&self, state: LockState) -> Level {
        let energised = match (self.fail_mode, state) {
            (FailMode::Secure, LockState::Released) | (FailMode::Safe, LockState::Secured) => true,
            (FailMode::Secure, LockState::Secured) | (FailMode::Safe, LockState::Released) => false,
        };
        if energised { self.active } else { !self.active }
    }
}

/// Optional feedback outputs of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackConfig {
    /// Green LED (released).
    pub green_led: Option<u8>,
    /// Red LED (denied, alarms, lockdown, tamper).
    pub red_led: Option<u8>,
    /// Buzzer (grant and deny beeps, held-open and forced alarms).
    pub buzzer: Option<u8>,
    /// Level that switches a feedback output on.
    pub active: Level,
}

impl FeedbackConfig {
    /// No feedback outputs.
    pub const NONE: FeedbackConfig = FeedbackConfig {
        green_led: None,
        red_led: None,
        buzzer: None,
        active: Level::High,
    };

    /// Pin level for on/off.
    pub fn level_for(&self, on: bool) -> Level {
        if on { self.active } else { !self.active }
    }
}

/// One door or turnstile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorConfig {
    /// Name, unique in the gate (used in events).
    pub name: String,
    /// Door or turnstile.
    pub mode: DoorMode,
    /// Lock relay.
    pub lock: LockConfig,
    /// LEDs and buzzer.
    pub feedback: FeedbackConfig,
    /// How long a grant keeps the door released (turnstile: the pulse length).
    pub unlock: Duration,
    /// Delay between the door closing and relocking.
    pub relock_delay: Duration,
    /// Door open this long: pre-alarm.
    pub held_open_prealarm: Duration,
    /// Door open this long: alarm.
    pub held_open_alarm: Duration,
    /// An input change counts once it has been stable this long.
    pub debounce: Duration,
    /// Door position switch (active = open).
    pub contact: Option<InputConfig>,
    /// Request-to-exit button (active = pressed).
    pub rex: Option<InputConfig>,
    /// Tamper switch (active = tampered).
    pub tamper: Option<InputConfig>,
    /// Turnstile passage sensor (active = someone passing).
    pub passage: Option<InputConfig>,
    /// Turnstile: a grant not used within this window expires.
    pub grant_window: Duration,
    /// Interlock partner: neither door is released while the other is open or released.
    pub interlock_with: Option<String>,
    /// Whether lockdown also refuses request-to-exit.
    pub lockdown_blocks_rex: bool,
}

impl DoorConfig {
    /// A door with the daemon's default timings and no inputs or feedback outputs.
    pub fn new(name: impl Into<String>, lock: LockConfig) -> Self {
        Self {
            name: name.into(),
            mode: DoorMode::Door,
            lock,
            feedback: FeedbackConfig::NONE,
            unlock: Duration::from_secs(5),
            relock_delay: Duration::ZERO,
            held_open_prealarm: Duration::from_secs(20),
            held_open_alarm: Duration::from_secs(30),
            debounce: Duration::from_millis(30),
            contact: None,
            rex: None,
            tamper: None,
            passage: None,
            grant_window: Duration::from_secs(10),
            interlock_with: None,
            lockdown_blocks_rex: true,
        }
    }

    /// Every input of the door with its role.
    pub fn inputs(&self) -> impl Iterator<Item = (DoorInput, InputConfig)> + '_ {
        [
            (DoorInput::Contact, self.contact),
            (DoorInput::Rex, self.rex),
            (DoorInput::Tamper, self.tamper),
            (DoorInput::Passage, self.passage),
        ]
        .into_iter()
        .filter_map(|(role, input)| input.map(|input| (role, input)))
    }

    /// Every output pin of the door with its role and safe (de-energised, off) level.
    pub fn outputs(&self) -> impl Iterator<Item = (DoorOutput, u8, Level)> + '_ {
        let off = !self.feedback.active;
        [
            (
                DoorOutput::Lock,
                Some(self.lock.pin),
                self.lock.safe_level(),
            ),
            (DoorOutput::GreenLed, self.feedback.green_led, off),
            (DoorOutput::RedLed, self.feedback.red_led, off),
            (DoorOutput::Buzzer, self.feedback.buzzer, off),
        ]
        .into_iter()
        .filter_map(|(role, pin, safe)| pin.map(|pin| (role, pin, safe)))
    }
}

/// The inputs of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DoorInput {
    /// Door position switch.
    Contact,
    /// Request-to-exit button.
    Rex,
    /// Tamper switch.
    Tamper,
    /// Turnstile passage sensor.
    Passage,
}

impl DoorInput {
    /// Short name for listings.
    pub fn label(self) -> &'static str {
        match self {
            DoorInput::Contact => "contact",
            DoorInput::Rex => "rex",
            DoorInput::Tamper => "tamper",
            DoorInput::Passage => "passage",
        }
    }
}

/// The outputs of a door.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DoorOutput {
    /// Lock relay.
    Lock,
    /// Green LED.
    GreenLed,
    /// Red LED.
    RedLed,
    /// Buzzer.
    Buzzer,
}

impl DoorOutput {
    /// Short name for listings.
    pub fn label(self) -> &'static str {
        match self {
            DoorOutput::Lock => "lock",
            DoorOutput::GreenLed => "green_led",
            DoorOutput::RedLed => "red_led",
            DoorOutput::Buzzer => "buzzer",
        }
    }
}

/// The gate-wide fire-alarm input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FireConfig {
    /// Pin and active level.
    pub input: InputConfig,
    /// Debounce time of the fire input.
    pub debounce: Duration,
}

/// Debounce of the fire input when the configuration gives none: long enough to ignore contact
/// bounce and induced spikes, short against the seconds a fire release may take by standard.
pub const DEFAULT_FIRE_DEBOUNCE: Duration = Duration::from_millis(100);

/// Every door of one gate, and its fire input.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GateConfig {
    /// The doors, in a stable order.
    pub doors: Vec<DoorConfig>,
    /// Fire-alarm input, when wired.
    pub fire: Option<FireConfig>,
}

/// A gate configuration the state machine cannot run with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No door at all.
    #[error("no door configured")]
    NoDoors,
    /// A door name is empty or used twice.
    #[error("door name {0:?} is empty or used twice")]
    BadName(String),
    /// A duration that must be positive is zero.
    #[error("door {door}: {field} must be longer than zero")]
    ZeroDuration {
        /// The door.
        door: String,
        /// The field.
        field: &'static str,
    },
    /// The held-open pre-alarm does not come before the alarm.
    #[error("door {0}: held_open_prealarm must be shorter than held_open_alarm")]
    PrealarmNotBeforeAlarm(String),
    /// A turnstile without a passage input.
    #[error("turnstile {0} needs a passage input")]
    TurnstileWithoutPassage(String),
    /// An interlock naming no door, itself, a turnstile, or a door without a contact.
    #[error("door {door}: cannot interlock with {partner:?}: {reason}")]
    BadInterlock {
        /// The door.
        door: String,
        /// The named partner.
        partner: String,
        /// Why not.
        reason: &'static str,
    },
    /// A pin used for two things.
    #[error("GPIO {pin} is used by both {first} and {second}")]
    PinUsedTwice {
        /// BCM pin.
        pin: u8,
        /// First user (`door.role`).
        first: String,
        /// Second user.
        second: String,
    },
}

impl GateConfig {
    /// Checks what the state machine and the driver rely on.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.doors.is_empty() {
            return Err(ConfigError::NoDoors);
        }
        let mut names = BTreeMap::new();
        for (index, door) in self.doors.iter().enumerate() {
            if door.name.is_empty() || names.insert(door.name.as_str(), index).is_some() {
                return Err(ConfigError::BadName(door.name.clone()));
            }
        }
        let mut pins: BTreeMap<u8, String> = BTreeMap::new();
        let mut claim = |pin: u8, user: String| match pins.get(&pin) {
            Some(first) => Err(ConfigError::PinUsedTwice {
                pin,
                first: first.clone(),
                second: user,
            }),
            None => {
                pins.insert(pin, user);
                Ok(())
            }
        };
        if let Some(fire) = &self.fire {
            claim(fire.input.pin, "fire".to_string())?;
            if fire.debounce.is_zero() {
                return Err(ConfigError::ZeroDuration {
                    door: "fire".to_string(),
                    field: "debounce",
                });
            }
        }
        for door in &self.doors {
            for (field, value) in [("unlock", door.unlock), ("debounce", door.debounce)] {
                if value.is_zero() {
                    return Err(ConfigError::ZeroDuration {
                        door: door.name.clone(),
                        field,
                    });
                }
            }
            if door.held_open_prealarm >= door.held_open_alarm {
                return Err(ConfigError::PrealarmNotBeforeAlarm(door.name.clone()));
            }
            if door.mode == DoorMode::Turnstile {
                if door.passage.is_none() {
                    return Err(ConfigError::TurnstileWithoutPassage(door.name.clone()));
                }
                if door.grant_window.is_zero() {
                    return Err(ConfigError::ZeroDuration {
                        door: door.name.clone(),
                        field: "grant_window",
                    });
                }
            }
            for (role, pin, _) in door.outputs() {
                claim(pin, format!("{}.{}", door.name, role.label()))?;
            }
            for (role, input) in door.inputs() {
                claim(input.pin, format!("{}.{}", door.name, role.label()))?;
            }
            if let Some(partner) = &door.interlock_with {
                let bad = |reason| ConfigError::BadInterlock {
                    door: door.name.clone(),
                    partner: partner.clone(),
                    reason,
                };
                let Some(&other) = names.get(partner.as_str()) else {
                    return Err(bad("no door of that name"));
                };
                if partner == &door.name {
                    return Err(bad("a door cannot interlock with itself"));
                }
                if door.mode == DoorMode::Turnstile || self.doors[other].mode == DoorMode::Turnstile
                {
                    return Err(bad("only doors (not turnstiles) interlock"));
                }
                if door.contact.is_none() {
                    return Err(bad("an interlocked door needs its contact input"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_levels_follow_fail_mode_and_active_level() {
        // (fail mode, active level, state) -> expected pin level
        let table = [
            (
                FailMode::Secure,
                Level::High,
                LockState::Released,
                Level::High,
            ),
            (
                FailMode::Secure,
                Level::High,
                LockState::Secured,
                Level::Low,
            ),
            (
                FailMode::Secure,
                Level::Low,
                LockState::Released,
                Level::Low,
            ),
            (
                FailMode::Secure,
                Level::Low,
                LockState::Secured,
                Level::High,
            ),
            (FailMode::Safe, Level::High, LockState::Released, Level::Low),
            (FailMode::Safe, Level::High, LockState::Secured, Level::High),
            (FailMode::Safe, Level::Low, LockState::Released, Level::High),
            (FailMode::Safe, Level::Low, LockState::Secured, Level::Low),
        ];
        for (fail_mode, active, state, expected) in table {
            let lock = LockConfig {
                pin: 17,
                active,
                fail_mode,
            };
            assert_eq!(
                lock.level_for(state),
                expected,
                "{fail_mode:?} {active:?} {state:?}"
            );
            // The safe level is always the de-energised one, which gives the unpowered state.
            assert_eq!(lock.level_for(lock.unpowered_state()), lock.safe_level());
        }
    }

    fn door(name: &str, pin: u8) -> DoorConfig {
        DoorConfig::new(
            name,
            LockConfig {
                pin,
                active: Level::High,
                fail_mode: FailMode::Secure,
            },
        )
    }

    #[test]
    fn validation_refuses_what_the_machine_cannot_run() {
        let contact = |pin| {
            Some(InputConfig {
                pin,
                active: Level::High,
            })
        };
        let mut twice = GateConfig {
            doors: vec![door("a", 1), door("b", 2)],
            fire: None,
        };
        twice.doors[1].contact = contact(1);
        let mut interlock_self = GateConfig {
            doors: vec![door("a", 1)],
            fire: None,
        };
        interlock_self.doors[0].interlock_with = Some("a".into());
        interlock_self.doors[0].contact = contact(2);
        let mut interlock_no_contact = GateConfig {
            doors: vec![door("a", 1), door("b", 2)],
            fire: None,
        };
        interlock_no_contact.doors[0].interlock_with = Some("b".into());
        let mut turnstile = GateConfig {
            doors: vec![door("t", 1)],
            fire: None,
        };
        turnstile.doors[0].mode = DoorMode::Turnstile;
        let mut alarm_order = GateConfig {
            doors: vec![door("a", 1)],
            fire: None,
        };
        alarm_order.doors[0].held_open_prealarm = alarm_order.doors[0].held_open_alarm;
        let cases = [
            (GateConfig::default(), ConfigError::NoDoors),
            (
                GateConfig {
                    doors: vec![door("a", 1), door("a", 2)],
                    fire: None,
                },
                ConfigError::BadName("a".into()),
            ),
            (
                twice,
                ConfigError::PinUsedTwice {
                    pin: 1,
                    first: "a.lock".into(),
                    second: "b.contact".into(),
                },
            ),
            (
                interlock_self,
                ConfigError::BadInterlock {
                    door: "a".into(),
                    partner: "a".into(),
                    reason: "a door cannot interlock with itself",
                },
            ),
            (
                interlock_no_contact,
                ConfigError::BadInterlock {
                    door: "a".into(),
                    partner: "b".into(),
                    reason: "an interlocked door needs its contact input",
                },
            ),
            (turnstile, ConfigError::TurnstileWithoutPassage("t".into())),
            (alarm_order, ConfigError::PrealarmNotBeforeAlarm("a".into())),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
        }
        assert_eq!(
            GateConfig {
                doors: vec![door("a", 1), door("b", 2)],
                fire: None
            }
            .validate(),
            Ok(())
        );
    }
}
