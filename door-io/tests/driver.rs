//! The driver on the simulated backend: safe outputs first and last, levels on the pins, timings
//! of the recorded output changes, the threaded runner.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use palmgate_door::{
    Backend, ConfigError, DoorConfig, DriverError, EventKind, FailMode, FeedbackConfig, FireConfig,
    GateConfig, GateDriver, GpioError, InputConfig, Level, LockConfig, OutputChange, Refusal,
    SimulatedGpio, drive_outputs_safe, spawn,
};

const LOCK: u8 = 17;
const CONTACT: u8 = 27;
const REX: u8 = 22;
const GREEN: u8 = 5;
const RED: u8 = 6;
const BUZZER: u8 = 13;
const FIRE: u8 = 4;
/// The lock of the second door, `back`, of [`two_doors`].
const BACK_LOCK: u8 = 16;

fn config(fail_mode: FailMode, lock_active: Level) -> GateConfig {
    let mut door = DoorConfig::new(
        "main",
        LockConfig {
            pin: LOCK,
            active: lock_active,
            fail_mode,
        },
    );
    door.contact = Some(InputConfig {
        pin: CONTACT,
        active: Level::High,
    });
    door.rex = Some(InputConfig {
        pin: REX,
        active: Level::Low,
    });
    door.feedback = FeedbackConfig {
        green_led: Some(GREEN),
        red_led: Some(RED),
        buzzer: Some(BUZZER),
        active: Level::Low,
    };
    door.unlock = Duration::from_secs(2);
    let fire = FireConfig {
        input: InputConfig {
            pin: FIRE,
            active: Level::Low,
        },
        debounce: Duration::from_millis(50),
    };
    GateConfig {
        doors: vec![door],
        fire: Some(fire),
    }
}

/// [`config`] plus a door `back` with a fail-secure strike and no inputs.
fn two_doors() -> GateConfig {
    let mut config = config(FailMode::Secure, Level::High);
    config.doors.push(DoorConfig::new(
        "back",
        LockConfig {
            pin: BACK_LOCK,
            active: Level::High,
            fail_mode: FailMode::Secure,
        },
    ));
    config
}

/// Inputs at rest: door closed (contact low), REX released (high), no fire (high).
fn at_rest(gpio: &SimulatedGpio) {
    gpio.set_input(CONTACT, Level::Low);
    gpio.set_input(REX, Level::High);
    gpio.set_input(FIRE, Level::High);
}

fn lock_changes(gpio: &SimulatedGpio, t0: Instant) -> Vec<(u64, Level)> {
    gpio.changes()
        .iter()
        .filter(|change| change.pin == LOCK)
        .map(|change: &OutputChange| {
            (
                change.at.duration_since(t0).as_millis() as u64,
                change.level,
            )
        })
        .collect()
}

fn step(driver: &mut GateDriver, gpio: &SimulatedGpio, now: Instant) {
    gpio.set_now(now);
    driver.step(now).expect("step");
}

#[test]
fn every_output_is_safe_before_any_input_is_claimed() {
    for (fail_mode, active) in [
        (FailMode::Secure, Level::High),
        (FailMode::Secure, Level::Low),
        (FailMode::Safe, Level::High),
    ] {
        let mut gpio = SimulatedGpio::new();
        let config = config(fail_mode, active);
        let driver = GateDriver::start(&config, &mut gpio, Instant::now()).expect("start");
        let first_input = gpio
            .input_claims()
            .first()
            .map(|(seq, _)| *seq)
            .expect("inputs claimed");
        let changes = gpio.changes();
        for (pin, safe) in [
            (LOCK, !active),
            (GREEN, Level::High),
            (RED, Level::High),
            (BUZZER, Level::High),
        ] {
            let first = changes
                .iter()
                .find(|change| change.pin == pin)
                .expect("output driven");
            assert_eq!(
                first.level, safe,
                "{fail_mode:?} {active:?}: GPIO {pin} starts safe"
            );
            assert!(
                first.seq < first_input,
                "GPIO {pin} driven before any input was claimed"
            );
        }
        assert_eq!(
            changes.len(),
            4,
            "nothing else driven during start-up: {changes:?}"
        );
        drop(driver);
    }
}

#[test]
fn grant_drives_the_strike_for_the_unlock_time_with_recorded_times() {
    let mut gpio = SimulatedGpio::new();
    at_rest(&gpio);
    let t0 = Instant::now();
    gpio.set_now(t0);
    let mut driver =
        GateDriver::start(&config(FailMode::Secure, Level::High), &mut gpio, t0).expect("start");
    for ms in (0..=100).step_by(10) {
        step(&mut driver, &gpio, t0 + Duration::from_millis(ms));
    }
    let ready: Vec<_> = driver
        .take_events()
        .into_iter()
        .map(|event| event.kind)
        .collect();
    assert_eq!(ready, [EventKind::Ready]);
    let grant_at = t0 + Duration::from_millis(500);
    gpio.set_now(grant_at);
    driver.grant("main", grant_at).expect("grant");
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::High),
        "strike energised at once"
    );
    assert_eq!(
        gpio.output_level(GREEN),
        Some(Level::Low),
        "green on (active low)"
    );
    step(&mut driver, &gpio, t0 + Duration::from_millis(2499));
    step(&mut driver, &gpio, t0 + Duration::from_millis(2500));
    assert_eq!(
        lock_changes(&gpio, t0),
        [(0, Level::Low), (500, Level::High), (2500, Level::Low)]
    );
    assert!(
        matches!(driver.grant("nope", grant_at), Err(DriverError::UnknownDoor(name)) if name == "nope")
    );
    driver.shutdown().expect("shutdown");
    assert_eq!(gpio.output_level(LOCK), Some(Level::Low));
}

#[test]
fn lockdown_by_door_name_drives_only_that_door_and_unknown_names_change_nothing() {
    let mut gpio = SimulatedGpio::new();
    at_rest(&gpio);
    let t0 = Instant::now();
    let mut driver = GateDriver::start(&two_doors(), &mut gpio, t0).expect("start");
    for ms in (0..=100).step_by(10) {
        step(&mut driver, &gpio, t0 + Duration::from_millis(ms));
    }
    driver.take_events();
    let at = |ms| t0 + Duration::from_millis(ms);
    let events = |driver: &mut GateDriver| -> Vec<String> {
        driver
            .take_events()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    driver.grant("main", at(200)).expect("grant main");
    driver.grant("back", at(200)).expect("grant back");
    events(&mut driver);

    driver
        .set_lockdown(Some("back"), true, at(300))
        .expect("lockdown back");
    assert_eq!(
        events(&mut driver),
        ["lockdown.on door=back", "door.locked door=back"]
    );
    assert_eq!(
        gpio.output_level(BACK_LOCK),
        Some(Level::Low),
        "back relocked"
    );
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::High),
        "main still released"
    );
    let status = driver.gate().gate_status();
    let lockdown: Vec<(&str, bool)> = status
        .doors
        .iter()
        .map(|(name, door)| (name.as_str(), door.lockdown))
        .collect();
    assert_eq!(lockdown, [("main", false), ("back", true)]);
    assert!(matches!(
        driver.grant("back", at(400)),
        Err(DriverError::Refused(Refusal::Lockdown))
    ));
    events(&mut driver);

    for on in [true, false] {
        assert!(matches!(
            driver.set_lockdown(Some("side"), on, at(500)),
            Err(DriverError::UnknownDoor(name)) if name == "side"
        ));
        assert_eq!(events(&mut driver), Vec::<String>::new());
    }
    assert_eq!(gpio.output_level(LOCK), Some(Level::High));

    driver
        .set_lockdown(None, true, at(600))
        .expect("gate-wide lockdown");
    assert_eq!(
        events(&mut driver),
        ["lockdown.on door=main", "door.locked door=main"]
    );
    assert_eq!(gpio.output_level(LOCK), Some(Level::Low));
    driver
        .set_lockdown(None, false, at(700))
        .expect("gate-wide release");
    assert_eq!(
        events(&mut driver),
        ["lockdown.off door=main", "lockdown.off door=back"]
    );
    driver.grant("back", at(800)).expect("back works again");
    assert_eq!(gpio.output_level(BACK_LOCK), Some(Level::High));
    driver.shutdown().expect("shutdown");
}

#[test]
fn fail_safe_maglock_is_energised_only_once_the_inputs_are_read() {
    let mut gpio = SimulatedGpio::new();
    at_rest(&gpio);
    let t0 = Instant::now();
    gpio.set_now(t0);
    let mut driver =
        GateDriver::start(&config(FailMode::Safe, Level::High), &mut gpio, t0).expect("start");
    step(&mut driver, &gpio, t0);
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::Low),
        "released (unpowered) while starting"
    );
    step(&mut driver, &gpio, t0 + Duration::from_millis(50));
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::High),
        "locked after start-up"
    );
    drop(driver);
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::Low),
        "dropping the driver de-energises the maglock"
    );
}

#[test]
fn shutdown_drop_and_safe_stop_leave_every_output_safe() {
    let ways: [fn(GateDriver, &SimulatedGpio); 3] = [
        |driver, _| driver.shutdown().expect("shutdown"),
        |driver, _| drop(driver),
        |mut driver, _| {
            driver.safe_stop().drive_safe_and_halt().expect("safe");
            assert!(matches!(
                driver.step(Instant::now()),
                Err(DriverError::Halted)
            ));
            assert!(matches!(
                driver.grant("main", Instant::now()),
                Err(DriverError::Halted)
            ));
        },
    ];
    for way in ways {
        let mut gpio = SimulatedGpio::new();
        at_rest(&gpio);
        let t0 = Instant::now();
        let mut driver = GateDriver::start(&config(FailMode::Secure, Level::High), &mut gpio, t0)
            .expect("start");
        step(&mut driver, &gpio, t0);
        step(&mut driver, &gpio, t0 + Duration::from_millis(60));
        driver
            .grant("main", t0 + Duration::from_millis(100))
            .expect("grant");
        driver
            .deny("main", t0 + Duration::from_millis(100))
            .expect("deny");
        assert_eq!(gpio.output_level(LOCK), Some(Level::High));
        assert_eq!(gpio.output_level(RED), Some(Level::Low));
        way(driver, &gpio);
        for pin in [LOCK, GREEN, RED, BUZZER] {
            let safe = if pin == LOCK { Level::Low } else { Level::High };
            assert_eq!(gpio.output_level(pin), Some(safe), "GPIO {pin}");
        }
    }
}

#[test]
fn a_panic_in_the_driver_thread_leaves_the_outputs_safe() {
    let mut gpio = SimulatedGpio::new();
    at_rest(&gpio);
    let config = config(FailMode::Secure, Level::High);
    let thread_gpio = gpio.clone();
    let result = std::thread::spawn(move || {
        let mut gpio = thread_gpio;
        let t0 = Instant::now();
        let mut driver = GateDriver::start(&config, &mut gpio, t0).expect("start");
        driver.step(t0).expect("step");
        driver.step(t0 + Duration::from_millis(60)).expect("step");
        driver
            .grant("main", t0 + Duration::from_millis(60))
            .expect("grant");
        assert_eq!(gpio.output_level(LOCK), Some(Level::High));
        panic!("simulated bug while the door is released");
    })
    .join();
    assert!(result.is_err(), "the thread panicked");
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::Low),
        "strike de-energised while unwinding"
    );
    // The driver is gone and its pins with it: they can be claimed again.
    assert!(gpio.output(LOCK, Level::Low).is_ok());
}

#[test]
fn a_pin_that_cannot_be_claimed_is_reported_and_outputs_stay_safe() {
    let mut gpio = SimulatedGpio::new();
    let _taken = gpio.input(REX).expect("someone else holds the REX pin");
    let error = GateDriver::start(
        &config(FailMode::Secure, Level::High),
        &mut gpio,
        Instant::now(),
    )
    .expect_err("REX pin in use");
    assert_eq!(
        error.to_string(),
        "cannot claim door main rex input (GPIO 22)"
    );
    assert!(matches!(
        error,
        DriverError::Pin {
            source: GpioError::PinUsed(REX),
            ..
        }
    ));
    assert_eq!(gpio.output_level(LOCK), Some(Level::Low));
}

#[test]
fn drive_outputs_safe_sets_every_output_and_nothing_else() {
    let mut gpio = SimulatedGpio::new();
    drive_outputs_safe(&config(FailMode::Safe, Level::Low), &mut gpio).expect("safe");
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::High),
        "active-low maglock relay off"
    );
    assert_eq!(gpio.output_level(GREEN), Some(Level::High));
    assert!(gpio.input_claims().is_empty());
}

#[test]
fn spawned_driver_runs_in_real_time_and_shuts_down_safe() {
    let mut gpio = SimulatedGpio::new();
    at_rest(&gpio);
    let mut config = config(FailMode::Secure, Level::High);
    config.doors[0].unlock = Duration::from_millis(200);
    let (sender, events) = mpsc::channel();
    let handle = spawn(&config, &mut gpio, move |event| {
        let _ = sender.send(event);
    })
    .expect("spawn");
    let wait = |name: &str| loop {
        let event = events
            .recv_timeout(Duration::from_secs(5))
            .expect("event in time");
        if event.kind.name() == name {
            return event;
        }
    };
    wait("doors.ready");
    let readings = handle.read_inputs().expect("inputs");
    let summary: Vec<(Option<&str>, &str, u8, bool)> = readings
        .iter()
        .map(|r| (r.door.as_deref(), r.role, r.pin, r.active))
        .collect();
    assert_eq!(
        summary,
        [
            (None, "fire", FIRE, false),
            (Some("main"), "contact", CONTACT, false),
            (Some("main"), "rex", REX, false)
        ]
    );
    assert!(matches!(
        handle.grant("back"),
        Err(DriverError::UnknownDoor(_))
    ));
    handle.grant("main").expect("grant");
    let unlocked = wait("door.unlocked");
    assert_eq!(gpio.output_level(LOCK), Some(Level::High));
    // The contact opens and closes: relock on close.
    gpio.set_input(CONTACT, Level::High);
    wait("door.opened");
    gpio.set_input(CONTACT, Level::Low);
    wait("door.closed");
    let locked = wait("door.locked");
    assert!(
        locked.at.duration_since(unlocked.at) < Duration::from_millis(200),
        "relocked on close"
    );
    assert_eq!(gpio.output_level(LOCK), Some(Level::Low));
    // Lockdown and a grant refused; an unknown door is refused before anything is sent.
    assert!(matches!(
        handle.set_lockdown(Some("back"), true),
        Err(DriverError::UnknownDoor(_))
    ));
    handle.set_lockdown(Some("main"), true).expect("lockdown");
    assert_eq!(wait("lockdown.on").door.as_deref(), Some("main"));
    handle.grant("main").expect("sent");
    assert_eq!(wait("grant.refused").door.as_deref(), Some("main"));
    let status = handle.status().expect("status");
    assert!(status.started && !status.fire);
    assert_eq!(status.doors[0].0, "main");
    assert!(status.doors[0].1.lockdown);
    assert_eq!(status.doors[0].1.lock, palmgate_door::LockState::Secured);
    assert_eq!(status.doors[0].1.open, Some(false));
    handle.set_lockdown(None, false).expect("lockdown off");
    assert_eq!(wait("lockdown.off").door.as_deref(), Some("main"));
    handle.grant("main").expect("grant");
    wait("door.unlocked");
    assert!(handle.is_running());
    handle.shutdown().expect("clean shutdown");
    assert_eq!(
        gpio.output_level(LOCK),
        Some(Level::Low),
        "shutdown while released relocks"
    );
}

#[test]
fn the_status_watch_is_at_least_as_new_as_each_delivered_event() {
    use palmgate_door::{HeldOpenStage, LockState, StatusWatch};

    let mut gpio = SimulatedGpio::new();
    at_rest(&gpio);
    let mut config = config(FailMode::Secure, Level::High);
    config.doors[0].held_open_prealarm = Duration::from_millis(100);
    config.doors[0].held_open_alarm = Duration::from_millis(200);
    // Each event comes with the status the reader saw when it arrived.
    let (sender, events) = mpsc::channel();
    let watch: std::sync::Arc<std::sync::OnceLock<StatusWatch>> = Default::default();
    let reader = watch.clone();
    let handle = spawn(&config, &mut gpio, move |event| {
        let status = reader.get().map(StatusWatch::latest);
        let _ = sender.send((event, status));
    })
    .expect("spawn");
    watch.set(handle.status_watch()).expect("set once");
    let wait = |name: &str| loop {
        let (event, status) = events
            .recv_timeout(Duration::from_secs(5))
            .expect("event in time");
        if event.kind.name() == name {
            return status.expect("the watch is set before any grant");
        }
    };
    wait("doors.ready");
    assert!(handle.status_watch().latest().started);

    handle.grant("main").expect("grant");
    let main = |status: palmgate_door::GateStatus| status.doors[0].1.clone();
    assert_eq!(main(wait("door.unlocked")).lock, LockState::Released);
    gpio.set_input(CONTACT, Level::High);
    assert_eq!(main(wait("door.opened")).open, Some(true));
    gpio.set_input(CONTACT, Level::Low);
    assert_eq!(main(wait("door.locked")).lock, LockState::Secured);

    // Opened without a grant: forced until it closes; held open past the alarm time.
    gpio.set_input(CONTACT, Level::High);
    assert!(main(wait("door.forced")).forced);
    let prealarm = main(wait("door.held_open"));
    assert_eq!(prealarm.held_open, Some(HeldOpenStage::PreAlarm));
    let alarm = main(wait("door.held_open"));
    assert_eq!(alarm.held_open, Some(HeldOpenStage::Alarm));
    gpio.set_input(CONTACT, Level::Low);
    let closed = main(wait("door.closed"));
    assert!(!closed.forced && closed.held_open.is_none(), "{closed:?}");

    handle.set_lockdown(Some("main"), true).expect("lockdown");
    assert!(main(wait("lockdown.on")).lockdown);
    handle.shutdown().expect("clean shutdown");
}

#[test]
fn a_refusal_or_a_bad_configuration_is_said_once() {
    // In the text, not also the source: a printed chain (`error: cause: …`) says it once.
    let error = DriverError::from(Refusal::Lockdown);
    assert_eq!(error.to_string(), "grant refused: lockdown");
    assert!(std::error::Error::source(&error).is_none());
    let error = DriverError::from(ConfigError::NoDoors);
    assert!(
        error
            .to_string()
            .starts_with("invalid door configuration: "),
        "{error}"
    );
    assert!(std::error::Error::source(&error).is_none());
}
