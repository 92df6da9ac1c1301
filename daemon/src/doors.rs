//! The gate's doors, built from the validated settings.
//!
//! door-io knows no configuration files: this module maps [`DoorSettings`] and [`FireSettings`]
//! onto its plain types, opens the configured GPIO backend, and hands the daemon a [`Doors`] to
//! start. Use:
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let settings: palmgate::config::Settings = unimplemented!();
//! let mut doors = palmgate::doors::Doors::build(&settings)?; // outputs untouched so far
//! let handle = doors.spawn(|event| println!("{event}"))?;     // outputs safe, then running
//! handle.safe_stop().install_panic_hook();                    // a panic anywhere: doors safe
//! handle.grant("main")?;                                      // door.unlocked or grant.refused
//! handle.shutdown()?;                                         // SIGTERM path: doors safe
//! # Ok(()) }
//! ```

use std::time::Instant;

use palmgate_door::{
    Backend, DoorConfig, DriverError, Event, FeedbackConfig, FireConfig, GateConfig, GateDriver,
    GateHandle, GpioError, InputConfig, LockConfig, SimulatedGpio,
};

use crate::config::{DoorMode, DoorSettings, FailMode, FireSettings, GpioBackend, Level, Settings};

/// Why the doors cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoorsError {
    /// The settings map onto a door configuration door-io refuses (a bug in validation if seen).
    #[error("door configuration refused by door-io")]
    Config(#[from] palmgate_door::ConfigError),
    /// The GPIO backend cannot be opened.
    #[error("cannot open the GPIO backend")]
    Gpio(#[from] GpioError),
}

fn level(level: Level) -> palmgate_door::Level {
    match level {
        Level::Low => palmgate_door::Level::Low,
        Level::High => palmgate_door::Level::High,
    }
}

/// One door's configuration for door-io.
pub fn door_config(name: &str, door: &DoorSettings) -> DoorConfig {
    let input = |pin: Option<crate::config::InputPin>| {
        pin.map(|pin| InputConfig {
            pin: pin.pin,
            active: level(pin.active),
        })
    };
    DoorConfig {
        name: name.to_string(),
        mode: match door.mode {
            DoorMode::Door => palmgate_door::DoorMode::Door,
            DoorMode::Turnstile => palmgate_door::DoorMode::Turnstile,
        },
        lock: LockConfig {
            pin: door.lock_pin,
            active: level(door.lock_active),
            fail_mode: match door.fail_mode {
                FailMode::Secure => palmgate_door::FailMode::Secure,
                FailMode::Safe => palmgate_door::FailMode::Safe,
            },
        },
        feedback: FeedbackConfig {
            green_led: door.green_led_pin,
            red_led: door.red_led_pin,
            buzzer: door.buzzer_pin,
            active: level(door.feedback_active),
        },
        unlock: door.unlock,
        relock_delay: door.relock_delay,
        held_open_prealarm: door.held_open_prealarm,
        held_open_alarm: door.held_open_alarm,
        debounce: door.debounce,
        contact: input(door.contact()),
        rex: input(door.rex()),
        tamper: input(door.tamper()),
        passage: input(door.passage()),
        grant_window: door.grant_window,
        interlock_with: door.interlock_with.clone(),
        lockdown_blocks_rex: door.lockdown_blocks_rex,
    }
}

/// The fire input for door-io.
pub fn fire_config(fire: &FireSettings) -> FireConfig {
    FireConfig {
        input: InputConfig {
            pin: fire.pin,
            active: level(fire.active),
        },
        debounce: fire.debounce,
    }
}

/// Every door of the gate, in name order, and the fire input.
pub fn gate_config(settings: &Settings) -> GateConfig {
    GateConfig {
        doors: settings
            .door
            .iter()
            .map(|(name, door)| door_config(name, door))
            .collect(),
        fire: settings.fire.as_ref().map(fire_config),
    }
}

/// Opens a GPIO backend. The simulated one comes with its handle (to set inputs, read outputs).
pub fn open_backend(
    backend: GpioBackend,
) -> Result<(Box<dyn Backend>, Option<SimulatedGpio>), GpioError> {
    match backend {
        GpioBackend::Simulated => {
            let gpio = SimulatedGpio::new();
            Ok((Box::new(gpio.clone()), Some(gpio)))
        }
        #[cfg(feature = "rpi")]
        GpioBackend::Rpi => Ok((Box::new(palmgate_door::rpi::RpiGpio::new()?), None)),
        #[cfg(not(feature = "rpi"))]
        GpioBackend::Rpi => Err(GpioError::NotBuiltIn),
    }
}

/// Sets every simulated input to its inactive level: doors closed, buttons released, no fire.
pub fn rest_inputs(gpio: &SimulatedGpio, config: &GateConfig) {
    let inputs = config.fire.iter().map(|fire| fire.input).chain(
        config
            .doors
            .iter()
            .flat_map(|door| door.inputs().map(|(_, input)| input)),
    );
    for input in inputs {
        gpio.set_input(input.pin, !input.active);
    }
}

/// The doors of a gate with their backend, ready to start.
pub struct Doors {
    config: GateConfig,
    backend: Box<dyn Backend>,
    simulated: Option<SimulatedGpio>,
}

impl std::fmt::Debug for Doors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doors")
            .field("config", &self.config)
            .field("simulated", &self.simulated.is_some())
            .finish_non_exhaustive()
    }
}

impl Doors {
    /// The doors of `settings` on the backend `[gpio] backend` names. Touches no pin yet.
    pub fn build(settings: &Settings) -> Result<Self, DoorsError> {
        Self::with_backend(gate_config(settings), settings.gpio.backend)
    }

    /// The doors of `config` on `backend`; simulated inputs start at rest.
    pub fn with_backend(config: GateConfig, backend: GpioBackend) -> Result<Self, DoorsError> {
        config.validate()?;
        let (backend, simulated) = open_backend(backend)?;
        if let Some(gpio) = &simulated {
            rest_inputs(gpio, &config);
        }
        Ok(Self {
            config,
            backend,
            simulated,
        })
    }

    /// The door-io configuration.
    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// The simulated GPIO, when that is the backend (demo and tests drive inputs through it).
    pub fn simulated(&self) -> Option<&SimulatedGpio> {
        self.simulated.as_ref()
    }

    /// Starts the driver in its own thread: every output safe first, then inputs, then running.
    /// Events arrive at `on_event` from that thread (forward them to a channel).
    pub fn spawn(
        &mut self,
        on_event: impl FnMut(Event) + Send + 'static,
    ) -> Result<GateHandle, DriverError> {
        palmgate_door::spawn(&self.config, self.backend.as_mut(), on_event)
    }

    /// Starts a synchronous driver (the caller steps it with its own clock).
    pub fn start(&mut self, now: Instant) -> Result<GateDriver, DriverError> {
        GateDriver::start(&self.config, self.backend.as_mut(), now)
    }

    /// Drives every output to its safe level and releases the pins (`palmgate door safe`).
    pub fn drive_safe(&mut self) -> Result<(), DriverError> {
        palmgate_door::drive_outputs_safe(&self.config, self.backend.as_mut())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use palmgate_door::EventKind;

    use super::*;
    use palmgate_door::DEFAULT_FIRE_DEBOUNCE;

    /// Every door option, and the shared sections.
    const CONFIG: &str = concat!(
        r#"
[gpio]
backend = "simulated"

[fire]
pin = 4
active = "high"

[door.main]
lock_pin = 17
lock_active = "low"
fail_mode = "safe"
unlock_s = 3.5
relock_delay_ms = 250
held_open_prealarm_s = 15
held_open_alarm_s = 45
debounce_ms = 40
contact_pin = 27
contact_active = "low"
rex_pin = 22
tamper_pin = 23
green_led_pin = 5
red_led_pin = 6
buzzer_pin = 13
feedback_active = "low"
interlock_with = "inner"
lockdown_blocks_rex = false

[door.inner]
lock_pin = 18
contact_pin = 24

[door.turn]
mode = "turnstile"
lock_pin = 19
passage_pin = 20
grant_window_s = 7

"#,
        include_str!("../tests/fixtures/gate-base.toml")
    );

    fn settings() -> Settings {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("issuer.pub"), "issuer public key").expect("key");
        let main = dir.path().join("palmgate.toml");
        std::fs::write(&main, CONFIG).expect("config");
        crate::config::load_with_env(&main, std::iter::empty()).expect("valid configuration")
    }

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn settings_map_field_by_field() {
        let config = gate_config(&settings());
        use palmgate_door::Level::{High, Low};
        let input = |pin, active| Some(InputConfig { pin, active });
        let main = DoorConfig {
            name: "main".into(),
            mode: palmgate_door::DoorMode::Door,
            lock: LockConfig {
                pin: 17,
                active: Low,
                fail_mode: palmgate_door::FailMode::Safe,
            },
            feedback: FeedbackConfig {
                green_led: Some(5),
                red_led: Some(6),
                buzzer: Some(13),
                active: Low,
            },
            unlock: ms(3500),
            relock_delay: ms(250),
            held_open_prealarm: ms(15_000),
            held_open_alarm: ms(45_000),
            debounce: ms(40),
            contact: input(27, Low),
            rex: input(22, Low),
            tamper: input(23, High),
            passage: None,
            grant_window: ms(10_000),
            interlock_with: Some("inner".into()),
            lockdown_blocks_rex: false,
        };
        let inner = DoorConfig {
            name: "inner".into(),
            mode: palmgate_door::DoorMode::Door,
            lock: LockConfig {
                pin: 18,
                active: High,
                fail_mode: palmgate_door::FailMode::Secure,
            },
            feedback: FeedbackConfig {
                green_led: None,
                red_led: None,
                buzzer: None,
                active: High,
            },
            unlock: ms(5000),
            relock_delay: ms(0),
            held_open_prealarm: ms(20_000),
            held_open_alarm: ms(30_000),
            debounce: ms(30),
            contact: input(24, High),
            rex: None,
            tamper: None,
            passage: None,
            grant_window: ms(10_000),
            interlock_with: None,
            lockdown_blocks_rex: true,
        };
        let turn = DoorConfig {
            name: "turn".into(),
            mode: palmgate_door::DoorMode::Turnstile,
            lock: LockConfig {
                pin: 19,
                active: High,
                fail_mode: palmgate_door::FailMode::Secure,
            },
            contact: None,
            passage: input(20, Low),
            grant_window: ms(7000),
            ..inner.clone()
        };
        // BTreeMap order: inner, main, turn.
        assert_eq!(config.doors, [inner, main, turn]);
        assert_eq!(
            config.fire,
            Some(FireConfig {
                input: InputConfig {
                    pin: 4,
                    active: High
                },
                debounce: DEFAULT_FIRE_DEBOUNCE
            })
        );
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn simulated_doors_start_at_rest_and_pulse() {
        let mut doors = Doors::build(&settings()).expect("doors");
        let gpio = doors.simulated().cloned().expect("simulated backend");
        let t0 = Instant::now();
        let mut driver = doors.start(t0).expect("start");
        // Every input is at its inactive level: door contacts closed, buttons released, no fire.
        let readings = driver.read_inputs().expect("read");
        assert_eq!(
            readings.len(),
            6,
            "fire + inner contact + main contact, rex, tamper + turn passage"
        );
        assert!(
            readings.iter().all(|reading| !reading.active),
            "{readings:?}"
        );
        // Fail-safe maglock on an active-low relay: de-energised (high) while starting.
        assert_eq!(gpio.output_level(17), Some(palmgate_door::Level::High));
        driver.step(t0).expect("step");
        driver.step(t0 + ms(100)).expect("step");
        let kinds: Vec<EventKind> = driver
            .take_events()
            .into_iter()
            .map(|event| event.kind)
            .collect();
        assert_eq!(kinds[0], EventKind::Ready);
        assert!(
            !kinds
                .iter()
                .any(|kind| matches!(kind, EventKind::Opened { .. } | EventKind::FireActive)),
            "inputs at rest: no door open, no fire: {kinds:?}"
        );
        assert_eq!(
            gpio.output_level(17),
            Some(palmgate_door::Level::Low),
            "maglock energised: locked"
        );
        driver.grant("main", t0 + ms(200)).expect("grant");
        assert_eq!(
            gpio.output_level(17),
            Some(palmgate_door::Level::High),
            "maglock released"
        );
        let main = driver.gate().door_id("main").expect("main");
        assert_eq!(
            driver.gate().status(main).map(|status| status.open),
            Some(Some(false))
        );
        driver.shutdown().expect("shutdown");
        assert_eq!(
            gpio.output_level(17),
            Some(palmgate_door::Level::High),
            "safe: de-energised"
        );
    }

    #[cfg(not(feature = "rpi"))]
    #[test]
    fn rpi_backend_without_the_feature_says_so() {
        let error = open_backend(GpioBackend::Rpi)
            .err()
            .expect("no rpi support in this build");
        assert!(matches!(error, GpioError::NotBuiltIn));
    }
}
