//! `palmgate door test|safe`.
//!
//! Exit status of both commands:
//! - 0: done (test: the door unlocked for its unlock time and relocked);
//! - 1: a failure while running (GPIO error, the driver stopped);
//! - 2: invalid configuration, or no door of that name;
//! - 3: GPIO not available: not a Raspberry Pi, built without the `rpi` feature, no permission, or
//!   a pin held by another process (the daemon?); `--simulate` runs on the simulated backend;
//! - 4: test only: the pulse did not complete (grant refused, or the door stayed released, e.g.
//!   because the fire input is active);
//! - 130 / 143: interrupted by SIGINT / SIGTERM (the outputs were driven safe first).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use palmgate::config::{GpioBackend, Settings};
use palmgate::doors::{self, Doors, DoorsError};
use palmgate_door::{
    DoorConfig, DoorOutput, DriverError, Event, EventKind, GateConfig, GateHandle, GpioError,
    InputReading, LockState, SimulatedGpio,
};

use super::ConfigArg;

/// `palmgate door` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum DoorCommand {
    /// Pulse a door (unlock for its unlock time, then relock) and print what its inputs read.
    ///
    /// Exit status: 0 pulsed and relocked; 1 failure; 2 bad configuration or door name; 3 no GPIO
    /// here (not a Raspberry Pi: try --simulate); 4 pulse incomplete (refused, or still released
    /// because the fire input is active); 130/143 interrupted (outputs driven safe first).
    Test(TestArgs),
    /// Drive every door output to its safe state and exit (for systemd `ExecStopPost=`, so that
    /// the doors are safe even after the daemon was killed).
    ///
    /// Exit status: 0 done; 1 failure; 2 bad configuration; 3 no GPIO here.
    Safe(SafeArgs),
}

/// Arguments of `palmgate door test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The door to pulse (a `[door.<name>]` of the configuration).
    #[arg(long, value_name = "NAME")]
    pub door: String,
    /// Run on the simulated GPIO backend (inputs at rest) and print the recorded output changes.
    #[arg(long)]
    pub simulate: bool,
}

/// Arguments of `palmgate door safe`.
#[derive(Debug, clap::Args)]
pub struct SafeArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Use the simulated GPIO backend.
    #[arg(long)]
    pub simulate: bool,
}

const FAILURE: u8 = 1;
const CONFIG_INVALID: u8 = 2;
const GPIO_UNAVAILABLE: u8 = 3;
const PULSE_INCOMPLETE: u8 = 4;
const INTERRUPTED_SIGINT: u8 = 130;
const INTERRUPTED_SIGTERM: u8 = 143;

/// Longest wait for the start-up reading of the inputs.
const READY_TIMEOUT: Duration = Duration::from_secs(3);
/// How long after the unlock time the relock may take before the test gives up.
const RELOCK_GRACE: Duration = Duration::from_secs(2);

/// Runs a `palmgate door` subcommand.
pub fn run(command: DoorCommand) -> anyhow::Result<ExitCode> {
    match command {
        DoorCommand::Test(args) => test(args),
        DoorCommand::Safe(args) => safe(args),
    }
}

fn load(config: &ConfigArg) -> Result<Settings, ExitCode> {
    palmgate::config::load(&config.config).map_err(|error| {
        for problem in &error.problems {
            eprintln!("{problem}");
        }
        ExitCode::from(CONFIG_INVALID)
    })
}

fn backend_for(settings: &Settings, simulate: bool) -> GpioBackend {
    if simulate {
        GpioBackend::Simulated
    } else {
        settings.gpio.backend
    }
}

/// On the Raspberry Pi backend, refuses early and clearly on a machine that is not a Pi.
fn check_raspberry_pi(suggestion: &str) -> Result<(), ExitCode> {
    if palmgate_door::gpio::is_raspberry_pi() {
        return Ok(());
    }
    let model = match palmgate_door::gpio::board_model() {
        Some(model) => format!("{} says {model:?}", palmgate_door::gpio::DEVICE_TREE_MODEL),
        None => format!("no {}", palmgate_door::gpio::DEVICE_TREE_MODEL),
    };
    eprintln!(
        "palmgate: this machine is not a Raspberry Pi ({model}): there is no GPIO to drive the doors."
    );
    eprintln!("Run `{suggestion} --simulate` to use the simulated GPIO backend instead.");
    Err(ExitCode::from(GPIO_UNAVAILABLE))
}

fn gpio_unavailable(error: &GpioError, suggestion: &str) -> ExitCode {
    print_lines(&gpio_unavailable_lines(
        &palmgate::error_chain(error),
        None,
        suggestion,
    ))
}

/// What `palmgate door` prints when it has no GPIO: the cause once, a hint if there is one, and
/// how to run on the simulated backend instead.
fn gpio_unavailable_lines(cause: &str, hint: Option<&str>, suggestion: &str) -> Vec<String> {
    let mut lines = vec![format!("palmgate: GPIO not available: {cause}")];
    lines.extend(hint.map(str::to_owned));
    lines.push(format!(
        "Run `{suggestion} --simulate` to use the simulated GPIO backend instead."
    ));
    lines
}

/// Prints `lines` to standard error; GPIO not available.
fn print_lines(lines: &[String]) -> ExitCode {
    for line in lines {
        eprintln!("{line}");
    }
    ExitCode::from(GPIO_UNAVAILABLE)
}

/// Opens the doors of `config` on `backend`, mapping the failures to exit codes.
fn open(
    config: GateConfig,
    backend: GpioBackend,
    suggestion: &str,
) -> anyhow::Result<Result<Doors, ExitCode>> {
    if backend == GpioBackend::Rpi
        && let Err(code) = check_raspberry_pi(suggestion)
    {
        return Ok(Err(code));
    }
    match Doors::with_backend(config, backend) {
        Ok(doors) => Ok(Ok(doors)),
        Err(DoorsError::Gpio(error)) => Ok(Err(gpio_unavailable(&error, suggestion))),
        Err(error) => Err(error.into()),
    }
}

/// A driver error at start-up: pins that cannot be claimed mean no GPIO for us.
fn start_failure(error: DriverError, suggestion: &str) -> anyhow::Result<ExitCode> {
    match start_failure_lines(&error, suggestion) {
        Some(lines) => Ok(print_lines(&lines)),
        None => Err(anyhow::Error::new(error).context("cannot start the door driver")),
    }
}

/// The lines for a pin that could not be claimed (the pin, its role and the GPIO cause, said
/// once), or `None` for any other failure.
fn start_failure_lines(error: &DriverError, suggestion: &str) -> Option<Vec<String>> {
    let DriverError::Pin { source, .. } = error else {
        return None;
    };
    let hint = matches!(source, GpioError::PinUsed(_))
        .then_some("Is the palmgate daemon running? Stop it first (systemctl stop palmgate).");
    Some(gpio_unavailable_lines(
        &palmgate::error_chain(error),
        hint,
        suggestion,
    ))
}

fn test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let settings = match load(&args.config) {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let Some(door_settings) = settings.door.get(&args.door) else {
        let names: Vec<&str> = settings.door.keys().map(String::as_str).collect();
        eprintln!(
            "palmgate: no door named {:?} in {}; configured doors: {}",
            args.door,
            args.config.config.display(),
            names.join(", ")
        );
        return Ok(ExitCode::from(CONFIG_INVALID));
    };
    let mut door = doors::door_config(&args.door, door_settings);
    // Only this door is driven: its interlock partner is not part of the test.
    door.interlock_with = None;
    let config = GateConfig {
        doors: vec![door.clone()],
        fire: settings.fire.as_ref().map(doors::fire_config),
    };
    let suggestion = format!(
        "palmgate door test --config {} --door {}",
        args.config.config.display(),
        args.door
    );
    let backend = backend_for(&settings, args.simulate);
    let mut doors = match open(config.clone(), backend, &suggestion)? {
        Ok(doors) => doors,
        Err(code) => return Ok(code),
    };
    let simulated = doors.simulated().cloned();

    println!(
        "door {}: {:?}, lock GPIO {} ({:?} relay, active {}), unlock {:.1} s, backend {}",
        door.name,
        door.mode,
        door.lock.pin,
        door.lock.fail_mode,
        door.lock.active,
        door.unlock.as_secs_f64(),
        if simulated.is_some() {
            "simulated (inputs held at rest)"
        } else {
            "Raspberry Pi GPIO"
        },
    );
    let (events_in, events) = mpsc::channel();
    let started = Instant::now();
    let handle = match doors.spawn(move |event| {
        let _ = events_in.send(event);
    }) {
        Ok(handle) => handle,
        Err(error) => return start_failure(error, &suggestion),
    };
    println!("outputs driven to their safe state");
    let safe = handle.safe_stop();
    let (done_in, done) = tokio::sync::oneshot::channel();
    let name = door.name.clone();
    let unlock = door.unlock;
    std::thread::Builder::new()
        .name("door-test".to_string())
        .spawn(move || {
            let _ = done_in.send(pulse(handle, &events, &name, unlock, started));
        })
        .context("cannot start the test thread")?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let finished = runtime.block_on(async {
        let mut sigterm =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        anyhow::Ok(tokio::select! {
            _ = tokio::signal::ctrl_c() => Err(INTERRUPTED_SIGINT),
            _ = sigterm.recv() => Err(INTERRUPTED_SIGTERM),
            outcome = done => Ok(outcome),
        })
    })?;
    let code = match finished {
        Err(signal_code) => {
            let result = safe.drive_safe_and_halt();
            eprintln!(
                "interrupted: outputs driven to their safe state ({})",
                if result.is_ok() { "done" } else { "FAILED" }
            );
            ExitCode::from(signal_code)
        }
        Ok(Err(_)) => anyhow::bail!("the door test thread stopped unexpectedly"),
        Ok(Ok(Err(error))) => {
            eprintln!("palmgate: door test failed: {error:#}");
            ExitCode::from(FAILURE)
        }
        Ok(Ok(Ok(Pulse::Completed))) => {
            println!("door {}: unlocked and relocked", door.name);
            ExitCode::SUCCESS
        }
        Ok(Ok(Ok(Pulse::Incomplete(reason)))) => {
            println!("door {}: pulse incomplete: {reason}", door.name);
            ExitCode::from(PULSE_INCOMPLETE)
        }
    };
    if let Some(gpio) = &simulated {
        print_changes(gpio, &config, started);
    }
    Ok(code)
}

enum Pulse {
    Completed,
    Incomplete(String),
}

fn print_event(event: &Event, started: Instant) {
    println!(
        "  {:>+8.3} s  {event}",
        event.at.saturating_duration_since(started).as_secs_f64()
    );
}

fn print_inputs(when: &str, readings: &[InputReading]) {
    println!("inputs {when}:");
    if readings.is_empty() {
        println!("  (none wired)");
    }
    for reading in readings {
        let meaning = match (reading.role, reading.active) {
            ("contact", true) => "door open",
            ("contact", false) => "door closed",
            ("rex", true) => "pressed",
            ("rex", false) => "released",
            ("tamper", true) => "TAMPERED",
            ("tamper", false) => "ok",
            ("passage", true) => "someone passing",
            ("passage", false) => "clear",
            ("fire", true) => "FIRE ALARM",
            ("fire", false) => "no fire",
            (_, true) => "active",
            (_, false) => "inactive",
        };
        let role = match &reading.door {
            Some(door) => format!("{door}.{}", reading.role),
            None => reading.role.to_string(),
        };
        println!(
            "  {role:<16} GPIO {:>2}  {:<4}  {meaning}",
            reading.pin, reading.level
        );
    }
}

/// The test itself, in its own thread: wait for start-up, print inputs, grant, wait for the
/// relock, print inputs, shut down.
fn pulse(
    handle: GateHandle,
    events: &mpsc::Receiver<Event>,
    door: &str,
    unlock: Duration,
    started: Instant,
) -> anyhow::Result<Pulse> {
    let wait_for = |until: Instant, stop: &dyn Fn(&Event) -> bool| -> Option<Event> {
        loop {
            let event = events
                .recv_timeout(until.saturating_duration_since(Instant::now()))
                .ok()?;
            print_event(&event, started);
            if stop(&event) {
                return Some(event);
            }
        }
    };
    if wait_for(Instant::now() + READY_TIMEOUT, &|event| {
        event.kind == EventKind::Ready
    })
    .is_none()
    {
        handle.shutdown()?;
        return Ok(Pulse::Incomplete(
            "the inputs did not settle (an input keeps changing?)".to_string(),
        ));
    }
    // The rest of the start-up batch (a fail-safe lock locking, a door found open).
    while let Ok(event) = events.recv_timeout(Duration::from_millis(20)) {
        print_event(&event, started);
    }
    print_inputs("at rest", &handle.read_inputs()?);

    println!("unlocking door {door} for {:.1} s", unlock.as_secs_f64());
    handle.grant(door)?;
    let answer = wait_for(Instant::now() + RELOCK_GRACE, &|event| {
        matches!(
            event.kind,
            EventKind::Unlocked { .. } | EventKind::GrantRefused { .. }
        )
    });
    match answer.map(|event| event.kind) {
        Some(EventKind::GrantRefused { reason }) => {
            handle.shutdown()?;
            return Ok(Pulse::Incomplete(format!("grant refused: {reason}")));
        }
        Some(EventKind::Unlocked { .. }) => {}
        _ => {
            // No unlock event: the door was released already (fire input active).
            print_inputs("now", &handle.read_inputs()?);
            handle.shutdown()?;
            return Ok(Pulse::Incomplete(
                "the door did not unlock: it is released already (fire input active?)".to_string(),
            ));
        }
    }
    print_inputs("while unlocked", &handle.read_inputs()?);
    let relocked = wait_for(Instant::now() + unlock + RELOCK_GRACE, &|event| {
        event.kind == EventKind::Locked
    });
    print_inputs("after the pulse", &handle.read_inputs()?);
    handle.shutdown()?;
    println!("outputs driven to their safe state");
    Ok(match relocked {
        Some(_) => Pulse::Completed,
        None => Pulse::Incomplete("the door did not relock (fire input active?)".to_string()),
    })
}

/// Prints the simulated backend's recorded output changes, with their roles and meaning.
fn print_changes(gpio: &SimulatedGpio, config: &GateConfig, started: Instant) {
    let mut roles: BTreeMap<u8, (&DoorConfig, DoorOutput)> = BTreeMap::new();
    for door in &config.doors {
        for (role, pin, _) in door.outputs() {
            roles.insert(pin, (door, role));
        }
    }
    println!("recorded output changes (simulated GPIO, times from start):");
    for change in gpio.changes() {
        let at = change.at.saturating_duration_since(started).as_secs_f64();
        let at = if change.at < started { 0.0 } else { at };
        let Some(&(door, role)) = roles.get(&change.pin) else {
            println!("  {at:>+8.3} s  GPIO {:>2}  {}", change.pin, change.level);
            continue;
        };
        let meaning = match role {
            DoorOutput::Lock => {
                let relay = if change.level == door.lock.safe_level() {
                    "relay off"
                } else {
                    "relay on"
                };
                let state = if change.level == door.lock.level_for(LockState::Released) {
                    "released"
                } else {
                    "locked"
                };
                format!("{relay}: {state}")
            }
            _ => (if change.level == door.feedback.level_for(true) {
                "on"
            } else {
                "off"
            })
            .to_string(),
        };
        println!(
            "  {at:>+8.3} s  GPIO {:>2}  {:<18} {:<4}  {meaning}",
            change.pin,
            format!("{}.{}", door.name, role.label()),
            change.level,
        );
    }
}

fn safe(args: SafeArgs) -> anyhow::Result<ExitCode> {
    let settings = match load(&args.config) {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let config = doors::gate_config(&settings);
    let suggestion = format!(
        "palmgate door safe --config {}",
        args.config.config.display()
    );
    let mut doors = match open(
        config.clone(),
        backend_for(&settings, args.simulate),
        &suggestion,
    )? {
        Ok(doors) => doors,
        Err(code) => return Ok(code),
    };
    match doors.drive_safe() {
        Ok(()) => {}
        Err(error) => return start_failure(error, &suggestion),
    }
    let outputs: usize = config.doors.iter().map(|door| door.outputs().count()).sum();
    println!(
        "{outputs} outputs of {} doors driven to their safe state",
        config.doors.len()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_in_use_is_said_once_with_its_role_and_what_to_do() {
        let error = DriverError::Pin {
            what: "door main lock".into(),
            pin: 17,
            source: GpioError::PinUsed(17),
        };
        let lines = start_failure_lines(&error, "palmgate door test main").expect("a pin failure");
        assert_eq!(
            lines,
            [
                "palmgate: GPIO not available: door main lock (GPIO 17): GPIO 17 is already in use",
                "Is the palmgate daemon running? Stop it first (systemctl stop palmgate).",
                "Run `palmgate door test main --simulate` to use the simulated GPIO backend instead.",
            ]
        );
        let text = lines.join("\n");
        assert_eq!(text.matches("already in use").count(), 1, "{text}");
    }

    #[test]
    fn other_pin_failures_have_no_daemon_hint_and_other_failures_no_gpio_text() {
        let denied = DriverError::Pin {
            what: "fire input".into(),
            pin: 4,
            source: GpioError::PermissionDenied("/dev/gpiomem".into()),
        };
        let lines = start_failure_lines(&denied, "palmgate door safe").expect("a pin failure");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0].contains("fire input (GPIO 4): permission denied"),
            "{lines:?}"
        );
        assert!(start_failure_lines(&DriverError::UnknownDoor("x".into()), "s").is_none());
    }
}
