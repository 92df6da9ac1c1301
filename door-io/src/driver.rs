//! Runs the [`Gate`] state machine over a GPIO [`Backend`].
//!
//! Safety order: [`GateDriver::start`] claims and drives every output to its safe level (relay
//! de-energised, feedback off) before it claims a single input or runs any logic. On
//! [`GateDriver::shutdown`], on drop (including unwinding after a panic in the driver's thread), and
//! from a [`SafeStop`] handle (SIGTERM handlers, the panic hook of
//! [`SafeStop::install_panic_hook`]) the outputs go back to that safe level and stay there: once
//! halted, the driver refuses to drive them again.
//!
//! [`GateDriver`] is the synchronous, time-injected API (tests, custom loops); [`spawn`] runs one
//! in a thread of its own and returns a [`GateHandle`] to send it commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::{ConfigError, DoorOutput, GateConfig, InputConfig, Level};
use crate::event::{Event, Refusal};
use crate::gpio::{Backend, GpioError, InputPin, OutputPin};
use crate::machine::{Action, DoorId, Gate, GateStatus, InputId, LockdownScope};
use crate::status::StatusWatch;

/// A failure of the door driver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The configuration cannot run (said in the text, so not also a `source()`: a printed
    /// chain says it once).
    #[error("invalid door configuration: {0}")]
    Config(ConfigError),
    /// A pin could not be claimed, driven or read.
    #[error("{what} (GPIO {pin})")]
    Pin {
        /// Which pin, by role (`door main lock`, `fire input`).
        what: String,
        /// BCM pin.
        pin: u8,
        /// The GPIO error.
        #[source]
        source: GpioError,
    },
    /// No door of that name.
    #[error("no door named {0:?}")]
    UnknownDoor(String),
    /// The state machine refused the grant (also reported as a `grant.refused` event; the
    /// reason is said in the text, so it is not also a `source()`).
    #[error("grant refused: {0}")]
    Refused(Refusal),
    /// The outputs were halted in their safe state (panic hook or shutdown).
    #[error("the door outputs are halted in their safe state")]
    Halted,
    /// The driver thread could not be started.
    #[error("cannot start the door thread")]
    Thread(#[source] std::io::Error),
    /// The driver thread is no longer running.
    #[error("the door driver has stopped")]
    Stopped,
    /// The driver thread panicked (its outputs were driven safe while unwinding).
    #[error("the door driver thread panicked; outputs were driven to their safe state")]
    Panicked,
}

impl From<ConfigError> for DriverError {
    fn from(error: ConfigError) -> Self {
        Self::Config(error)
    }
}

impl From<Refusal> for DriverError {
    fn from(refusal: Refusal) -> Self {
        Self::Refused(refusal)
    }
}

struct OutputSlot {
    what: String,
    pin: u8,
    safe: Level,
    output: Box<dyn OutputPin>,
}

struct OutputBank {
    slots: Vec<OutputSlot>,
}

impl OutputBank {
    /// Drives every output safe, trying all of them even when one fails.
    fn drive_safe(&mut self) -> Result<(), DriverError> {
        let mut first_error = None;
        for slot in &mut self.slots {
            if let Err(source) = slot.output.set(slot.safe) {
                first_error.get_or_insert(DriverError::Pin {
                    what: slot.what.clone(),
                    pin: slot.pin,
                    source,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// A handle that drives a gate's outputs to their safe state and halts them, from any thread.
#[derive(Clone)]
pub struct SafeStop {
    bank: Arc<Mutex<OutputBank>>,
    halted: Arc<AtomicBool>,
}

impl std::fmt::Debug for SafeStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeStop")
            .field("halted", &self.is_halted())
            .finish_non_exhaustive()
    }
}

impl SafeStop {
    /// Whether the outputs have been halted.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Halts the driver and drives every output to its safe level.
    ///
    /// Safe to call from a panic hook or a signal-handling task: if the output bank is busy it
    /// retries for a few milliseconds; if the bank is held by the panicking thread itself, the
    /// driver's drop (run while unwinding) drives the outputs instead.
    pub fn drive_safe_and_halt(&self) -> Result<(), DriverError> {
        self.halted.store(true, Ordering::SeqCst);
        for _ in 0..50 {
            match self.bank.try_lock() {
                Ok(mut bank) => return bank.drive_safe(),
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner().drive_safe(),
                Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        Err(DriverError::Halted)
    }

    /// Adds a process-wide panic hook (before the current one) that drives these outputs safe:
    /// a panic anywhere in the daemon leaves the doors in their configured safe state.
    pub fn install_panic_hook(&self) {
        let safe = self.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = safe.drive_safe_and_halt();
            previous(info);
        }));
    }

    fn bank(&self) -> Result<MutexGuard<'_, OutputBank>, DriverError> {
        if self.is_halted() {
            return Err(DriverError::Halted);
        }
        Ok(self
            .bank
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// One input as read by [`GateDriver::read_inputs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputReading {
    /// Door name, or `None` for the fire input.
    pub door: Option<String>,
    /// Role (`contact`, `rex`, `tamper`, `passage`, `fire`).
    pub role: &'static str,
    /// BCM pin.
    pub pin: u8,
    /// Level read.
    pub level: Level,
    /// Whether that level is the active one.
    pub active: bool,
}

struct InputSlot {
    id: InputId,
    door: Option<String>,
    role: &'static str,
    config: InputConfig,
    input: Box<dyn InputPin>,
}

/// The synchronous driver: a [`Gate`] and its pins. Time is passed in.
pub struct GateDriver {
    gate: Gate,
    config: GateConfig,
    inputs: Vec<InputSlot>,
    /// Per door: slot of each output role.
    slots: Vec<Vec<(DoorOutput, usize)>>,
    safety: SafeStop,
    events: Vec<Event>,
    stopped: bool,
}

impl std::fmt::Debug for GateDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GateDriver")
            .field("gate", &self.gate)
            .finish_non_exhaustive()
    }
}

impl GateDriver {
    /// Claims every output at its safe level, then every input, then builds the state machine.
    /// Nothing is read before all outputs are safe.
    pub fn start(
        config: &GateConfig,
        backend: &mut dyn Backend,
        now: Instant,
    ) -> Result<Self, DriverError> {
        config.validate()?;
        let mut bank = OutputBank { slots: Vec::new() };
        let mut slots = Vec::new();
        for door in &config.doors {
            let mut door_slots = Vec::new();
            for (role, pin, safe) in door.outputs() {
                let what = format!("door {} {}", door.name, role.label());
                let output = backend
                    .output(pin, safe)
                    .map_err(|source| DriverError::Pin {
                        what: format!("cannot claim {what}"),
                        pin,
                        source,
                    })?;
                door_slots.push((role, bank.slots.len()));
                bank.slots.push(OutputSlot {
                    what,
                    pin,
                    safe,
                    output,
                });
            }
            slots.push(door_slots);
        }
        // Belt and braces: the claim set the level, this makes sure every output is written.
        bank.drive_safe()?;

        let mut inputs = Vec::new();
        let mut claim = |id, door: Option<String>, role: &'static str, config: InputConfig| {
            let what = match &door {
                Some(name) => format!("cannot claim door {name} {role} input"),
                None => format!("cannot claim {role} input"),
            };
            let input = backend
                .input(config.pin)
                .map_err(|source| DriverError::Pin {
                    what,
                    pin: config.pin,
                    source,
                })?;
            inputs.push(InputSlot {
                id,
                door,
                role,
                config,
                input,
            });
            Ok::<(), DriverError>(())
        };
        if let Some(fire) = &config.fire {
            claim(InputId::Fire, None, "fire", fire.input)?;
        }
        let gate = Gate::new(config, now)?;
        for door in &config.doors {
            let id = gate
                .door_id(&door.name)
                .ok_or_else(|| DriverError::UnknownDoor(door.name.clone()))?;
            for (role, input) in door.inputs() {
                claim(
                    InputId::Door(id, role),
                    Some(door.name.clone()),
                    role.label(),
                    input,
                )?;
            }
        }
        let safety = SafeStop {
            bank: Arc::new(Mutex::new(bank)),
            halted: Arc::new(AtomicBool::new(false)),
        };
        Ok(Self {
            gate,
            config: config.clone(),
            inputs,
            slots,
            safety,
            events: Vec::new(),
            stopped: false,
        })
    }

    /// The state machine (read-only: status, lock states, deadlines).
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The configuration it runs.
    pub fn config(&self) -> &GateConfig {
        &self.config
    }

    /// A handle that drives the outputs safe from elsewhere (signal handler, panic hook).
    pub fn safe_stop(&self) -> SafeStop {
        self.safety.clone()
    }

    /// How often a real-time loop should sample the inputs: a quarter of the shortest debounce,
    /// between 1 and 10 ms.
    pub fn poll_interval(&self) -> Duration {
        let shortest = self
            .config
            .doors
            .iter()
            .map(|door| door.debounce)
            .chain(self.config.fire.map(|fire| fire.debounce))
            .min()
            .unwrap_or(Duration::from_millis(40));
        (shortest / 4).clamp(Duration::from_millis(1), Duration::from_millis(10))
    }

    /// Reads every input once, without feeding the state machine.
    pub fn read_inputs(&mut self) -> Result<Vec<InputReading>, DriverError> {
        let mut readings = Vec::with_capacity(self.inputs.len());
        for slot in &mut self.inputs {
            let level = read(slot)?;
            readings.push(InputReading {
                door: slot.door.clone(),
                role: slot.role,
                pin: slot.config.pin,
                level,
                active: slot.config.is_active(level),
            });
        }
        Ok(readings)
    }

    /// Samples every input, lets time pass to `now`, and drives the outputs that changed.
    pub fn step(&mut self, now: Instant) -> Result<(), DriverError> {
        self.check_running()?;
        for slot in &mut self.inputs {
            let level = read(slot)?;
            self.gate.sample(slot.id, slot.config.is_active(level), now);
        }
        self.gate.tick(now);
        self.apply()
    }

    /// An access grant (or remote unlock) for the named door; the outputs change at once.
    pub fn grant(&mut self, door: &str, now: Instant) -> Result<(), DriverError> {
        self.grant_for(door, None, now)
    }

    /// [`Driver::grant`] with the door released for `unlock` instead of its configured time.
    pub fn grant_for(
        &mut self,
        door: &str,
        unlock: Option<Duration>,
        now: Instant,
    ) -> Result<(), DriverError> {
        self.check_running()?;
        let id = self.door(door)?;
        let result = self.gate.grant_for(id, unlock, now);
        self.apply()?;
        Ok(result?)
    }

    /// Deny feedback on the named door.
    pub fn deny(&mut self, door: &str, now: Instant) -> Result<(), DriverError> {
        self.check_running()?;
        let id = self.door(door)?;
        self.gate.deny(id, now);
        self.apply()
    }

    /// Starts (`on`) or ends lockdown of the named door, or of every door when `door` is `None`
    /// (see [`Gate::set_lockdown`]). An unknown door changes nothing: [`DriverError::UnknownDoor`].
    pub fn set_lockdown(
        &mut self,
        door: Option<&str>,
        on: bool,
        now: Instant,
    ) -> Result<(), DriverError> {
        self.check_running()?;
        let scope = match door {
            Some(name) => LockdownScope::Door(self.door(name)?),
            None => LockdownScope::Gate,
        };
        let result = self.gate.set_lockdown(scope, on, now);
        self.apply()?;
        Ok(result?)
    }

    /// The events since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// When the state machine next needs a [`GateDriver::step`] even if no input changes.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.gate.next_deadline()
    }

    /// Drives every output to its safe level and stops.
    pub fn shutdown(mut self) -> Result<(), DriverError> {
        self.stopped = true;
        self.safety.drive_safe_and_halt()
    }

    fn door(&self, name: &str) -> Result<DoorId, DriverError> {
        self.gate
            .door_id(name)
            .ok_or_else(|| DriverError::UnknownDoor(name.to_string()))
    }

    fn check_running(&self) -> Result<(), DriverError> {
        if self.stopped || self.safety.is_halted() {
            Err(DriverError::Halted)
        } else {
            Ok(())
        }
    }

    fn apply(&mut self) -> Result<(), DriverError> {
        for action in self.gate.take_actions() {
            let (door, role, level) = match action {
                Action::Event(event) => {
                    self.events.push(event);
                    continue;
                }
                Action::Lock { door, state } => (
                    door,
                    DoorOutput::Lock,
                    self.config.doors[door.index()].lock.level_for(state),
                ),
                Action::Feedback { door, output, on } => (
                    door,
                    output,
                    self.config.doors[door.index()].feedback.level_for(on),
                ),
            };
            let Some(&(_, slot)) = self.slots[door.index()].iter().find(|(r, _)| *r == role) else {
                continue;
            };
            let mut bank = self.safety.bank()?;
            let slot = &mut bank.slots[slot];
            slot.output.set(level).map_err(|source| DriverError::Pin {
                what: format!("cannot drive {}", slot.what),
                pin: slot.pin,
                source,
            })?;
        }
        Ok(())
    }
}

fn read(slot: &mut InputSlot) -> Result<Level, DriverError> {
    slot.input.read().map_err(|source| DriverError::Pin {
        what: match &slot.door {
            Some(name) => format!("cannot read door {name} {} input", slot.role),
            None => format!("cannot read {} input", slot.role),
        },
        pin: slot.config.pin,
        source,
    })
}

impl Drop for GateDriver {
    fn drop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self.safety.drive_safe_and_halt();
        }
    }
}

/// Drives every configured output to its safe level and releases the pins (which keep that
/// level): `palmgate door safe`, for systemd's `ExecStopPost=` after a crash or SIGKILL.
pub fn drive_outputs_safe(
    config: &GateConfig,
    backend: &mut dyn Backend,
) -> Result<(), DriverError> {
    config.validate()?;
    for door in &config.doors {
        for (role, pin, safe) in door.outputs() {
            let what = format!("door {} {}", door.name, role.label());
            let mut output = backend
                .output(pin, safe)
                .map_err(|source| DriverError::Pin {
                    what: format!("cannot claim {what}"),
                    pin,
                    source,
                })?;
            output.set(safe).map_err(|source| DriverError::Pin {
                what: format!("cannot drive {what}"),
                pin,
                source,
            })?;
        }
    }
    Ok(())
}

/// A command to a spawned driver.
#[derive(Debug)]
enum Command {
    Grant(String, Option<Duration>),
    Deny(String),
    Lockdown { door: Option<String>, on: bool },
    ReadInputs(mpsc::Sender<Result<Vec<InputReading>, DriverError>>),
    Status(mpsc::Sender<GateStatus>),
    Shutdown,
}

/// A driver running in its own thread (see [`spawn`]). Dropping the handle shuts it down.
#[derive(Debug)]
pub struct GateHandle {
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<Result<(), DriverError>>>,
    safety: SafeStop,
    doors: Vec<String>,
    status: StatusWatch,
}

/// Starts a driver (outputs safe first, errors returned here) and runs it in a thread named
/// `palmgate-doors`, sampling inputs every [`GateDriver::poll_interval`]. Events go to
/// `on_event`, in order, from that thread.
pub fn spawn(
    config: &GateConfig,
    backend: &mut dyn Backend,
    on_event: impl FnMut(Event) + Send + 'static,
) -> Result<GateHandle, DriverError> {
    let driver = GateDriver::start(config, backend, Instant::now())?;
    let safety = driver.safe_stop();
    let status = StatusWatch::new(driver.gate().gate_status());
    let (commands, receiver) = mpsc::channel();
    let published = status.clone();
    let thread = std::thread::Builder::new()
        .name("palmgate-doors".to_string())
        .spawn(move || run(driver, receiver, published, on_event))
        .map_err(DriverError::Thread)?;
    let doors = config.doors.iter().map(|door| door.name.clone()).collect();
    Ok(GateHandle {
        commands,
        thread: Some(thread),
        safety,
        doors,
        status,
    })
}

/// Delivers the events of the last step, after publishing the status they led to.
fn deliver(driver: &mut GateDriver, status: &StatusWatch, on_event: &mut impl FnMut(Event)) {
    let events = driver.take_events();
    if !events.is_empty() {
        status.publish(driver.gate().gate_status());
    }
    events.into_iter().for_each(on_event);
}

fn run(
    mut driver: GateDriver,
    commands: mpsc::Receiver<Command>,
    status: StatusWatch,
    mut on_event: impl FnMut(Event),
) -> Result<(), DriverError> {
    let poll = driver.poll_interval();
    loop {
        let now = Instant::now();
        driver.step(now)?;
        deliver(&mut driver, &status, &mut on_event);
        let wake = driver
            .next_deadline()
            .map_or(now + poll, |deadline| deadline.min(now + poll));
        let command = match commands.recv_timeout(wake.saturating_duration_since(Instant::now())) {
            Ok(command) => command,
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => Command::Shutdown,
        };
        let now = Instant::now();
        let result = match command {
            Command::Grant(door, unlock) => driver.grant_for(&door, unlock, now),
            Command::Deny(door) => driver.deny(&door, now),
            Command::Lockdown { door, on } => driver.set_lockdown(door.as_deref(), on, now),
            Command::ReadInputs(reply) => {
                let _ = reply.send(driver.read_inputs());
                Ok(())
            }
            Command::Status(reply) => {
                let _ = reply.send(driver.gate().gate_status());
                Ok(())
            }
            Command::Shutdown => break,
        };
        // A command may change the status without an event (a grant waiting for its passage).
        status.publish(driver.gate().gate_status());
        deliver(&mut driver, &status, &mut on_event);
        match result {
            Ok(()) | Err(DriverError::Refused(_) | DriverError::UnknownDoor(_)) => {}
            Err(error) => return Err(error),
        }
    }
    driver.shutdown()
}

impl GateHandle {
    /// Grants access through a door; the outcome arrives as `door.unlocked` or `grant.refused`.
    pub fn grant(&self, door: &str) -> Result<(), DriverError> {
        self.send(door, Command::Grant(door.to_string(), None))
    }

    /// [`GateHandle::grant`] with the door released for `unlock` (a remote unlock's own time)
    /// instead of its configured time; `None` is the configured time.
    pub fn grant_for(&self, door: &str, unlock: Option<Duration>) -> Result<(), DriverError> {
        self.send(door, Command::Grant(door.to_string(), unlock))
    }

    /// Deny feedback on a door.
    pub fn deny(&self, door: &str) -> Result<(), DriverError> {
        self.send(door, Command::Deny(door.to_string()))
    }

    /// Starts (`on`) or ends lockdown of the named door, or of every door when `door` is `None`;
    /// each door that changes reports `lockdown.on` / `lockdown.off`. An unknown door is refused
    /// here, before anything is sent.
    pub fn set_lockdown(&self, door: Option<&str>, on: bool) -> Result<(), DriverError> {
        let command = Command::Lockdown {
            door: door.map(str::to_string),
            on,
        };
        match door {
            Some(name) => self.send(name, command),
            None => self
                .commands
                .send(command)
                .map_err(|_| DriverError::Stopped),
        }
    }

    /// Reads every input once (for diagnostics: `palmgate door test`, status reports). Blocks
    /// until the driver thread answers.
    pub fn read_inputs(&self) -> Result<Vec<InputReading>, DriverError> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::ReadInputs(reply))
            .map_err(|_| DriverError::Stopped)?;
        answer.recv().map_err(|_| DriverError::Stopped)?
    }

    /// The state of the gate and every door. Blocks until the driver thread answers.
    pub fn status(&self) -> Result<GateStatus, DriverError> {
        let (reply, answer) = mpsc::channel();
        self.commands
            .send(Command::Status(reply))
            .map_err(|_| DriverError::Stopped)?;
        answer.recv().map_err(|_| DriverError::Stopped)
    }

    /// The status as the driver thread last published it (after every step that reported
    /// events, before delivering them, and after every command). Does not block.
    pub fn status_watch(&self) -> StatusWatch {
        self.status.clone()
    }

    /// A handle that drives the outputs safe from elsewhere (signal handler, panic hook).
    pub fn safe_stop(&self) -> SafeStop {
        self.safety.clone()
    }

    /// Whether the driver thread still runs.
    pub fn is_running(&self) -> bool {
        self.thread
            .as_ref()
            .is_some_and(|thread| !thread.is_finished())
    }

    /// Stops the driver: outputs safe, thread joined. Reports why it stopped if it had failed.
    pub fn shutdown(mut self) -> Result<(), DriverError> {
        self.stop()
    }

    fn send(&self, door: &str, command: Command) -> Result<(), DriverError> {
        if !self.doors.iter().any(|name| name == door) {
            return Err(DriverError::UnknownDoor(door.to_string()));
        }
        self.commands
            .send(command)
            .map_err(|_| DriverError::Stopped)
    }

    fn stop(&mut self) -> Result<(), DriverError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.commands.send(Command::Shutdown);
        let result = thread.join().unwrap_or(Err(DriverError::Panicked));
        // Whatever happened in the thread, the outputs end safe.
        let safe = self.safety.drive_safe_and_halt();
        result.and(safe)
    }
}

impl Drop for GateHandle {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
