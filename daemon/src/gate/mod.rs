//! The gate: wires the card reader, the palm sensor, template extraction, the access machine, the
//! doors, the outbox and the MQTT link, and runs them until shutdown.
//!
//! Blocking work stays off the async threads: PC/SC in the card worker thread, the door driver in
//! its own thread, template extraction on the blocking pool. The main loop only moves messages
//! between them and the I/O-free access machine. The probe template lives in this loop (never in
//! the machine, an event or a log) and is wiped when used or discarded.
//!
//! # Layout
//! - [`card_worker`]: the PC/SC thread (reader events, certificate checks, secure sessions).
//! - [`revocation`]: the versioned revocation list, persisted; [`lockdown_file`]: the doors in
//!   lockdown, persisted (a restart must not lift a lockdown); both written through [`durable`].
//! - [`sim_control`]: the simulated GPIO backend's control socket (demo and tests).
//! - this module: `run` (start-up in a safe order, the main loop, shutdown), the retained door
//!   states, and the handling of signed commands.

pub mod card_worker;
pub mod durable;
pub mod lockdown_file;
pub mod revocation;
pub mod sim_control;

use lockdown_file::LockdownFile;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use palmgate_card::host::VerifyOutcome;
use palmgate_card::host::issuer::IssuerPublicKey;
use palmgate_card::protocol::SlotKind;
use palmgate_matcher::Template;
use palmgate_matcher::extract::{Extractor, InputKind};
use palmgate_sensor::device::{self, CaptureRequest, DeviceCommand, DeviceConfig, SensorEvent};
use tokio::sync::{mpsc, watch};

use self::card_worker::{CardReport, CardWorker, error_chain};
use self::revocation::{RevocationError, RevocationList};
use crate::access::{
    Access, AccessConfig, Action, Decision, Input, PolicyRules, SitePolicy, State,
};
use crate::config::{CaptureMode, MatcherInput, Settings};
use crate::doors::Doors;
use crate::event::{CardId, EventKind, NewEvent, Outcome, Reason, Timestamp};
use crate::mqtt::{
    Command, Contact, DoorCondition, DoorStatus, Link, LinkOptions, LockState, VerifiedCommand,
};
use crate::notify::Notifier;
use crate::outbox::{Outbox, OutboxOptions};

/// Why the gate could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GateError {
    /// An issuer key file could not be used.
    #[error("issuer key {path}: {reason}")]
    IssuerKey {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The access policy file could not be loaded.
    #[error(transparent)]
    Policy(#[from] crate::access::PolicyError),
    /// The revocation list could not be read.
    #[error(transparent)]
    Revocation(#[from] revocation::RevocationError),
    /// The doors in lockdown could not be read back.
    #[error(transparent)]
    Lockdown(#[from] lockdown_file::LockdownFileError),
    /// The doors could not be set up.
    #[error(transparent)]
    Doors(#[from] crate::doors::DoorsError),
    /// The door driver failed.
    #[error("door driver")]
    DoorDriver(#[from] palmgate_door::DriverError),
    /// The outbox could not be opened.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    /// The MQTT link could not be set up.
    #[error(transparent)]
    Link(#[from] crate::mqtt::LinkError),
    /// The template extractor could not be loaded.
    #[error("template extractor")]
    Extractor(#[source] palmgate_matcher::extract::ExtractError),
    /// The card reader could not be watched (pcscd not running?).
    #[error(transparent)]
    CardWorker(#[from] card_worker::CardWorkerError),
    /// A blocking task panicked.
    #[error("internal task failed: {0}")]
    Task(String),
}

/// Loads the issuer public keys named by the configuration (hex, as written by
/// `palmgate issuer init`).
pub fn load_issuer_keys(paths: &[PathBuf]) -> Result<Vec<IssuerPublicKey>, GateError> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|error| GateError::IssuerKey {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            IssuerPublicKey::from_hex(text.trim()).map_err(|error| GateError::IssuerKey {
                path: path.clone(),
                reason: error.to_string(),
            })
        })
        .collect()
}

/// A liveness counter the main loop bumps; the watchdog pings only while it moves.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A check for [`crate::notify::run_watchdog`]: true when the loop beat since the last call.
    pub fn checker(&self) -> impl FnMut() -> bool + Send + 'static {
        let counter = self.0.clone();
        let mut last = u64::MAX;
        move || {
            let now = counter.load(Ordering::Relaxed);
            let alive = now != last;
            last = now;
            alive
        }
    }
}

/// What the gate asks the sensor for: JPEG frames until told to stop.
const CAPTURE: CaptureRequest = CaptureRequest {
    format: palmgate_sensor::codec::FrameFormat::Jpeg,
    frames: 0,
};

/// How often the main loop wakes up even when nothing happens (heartbeat, deadlines).
const LOOP_TICK: Duration = Duration::from_millis(500);

/// Runs the gate until `shutdown` completes. `reload` receives SIGHUP requests (policy and
/// revocation list are re-read). Doors are driven to their safe state before this returns.
pub async fn run(
    settings: Settings,
    notifier: Notifier,
    shutdown: impl Future<Output = ()>,
    mut reload: mpsc::Receiver<()>,
) -> Result<(), GateError> {
    let started = Instant::now();
    notifier.status("starting");
    let door_names: BTreeSet<String> = settings.door.keys().cloned().collect();
    let issuers = load_issuer_keys(&settings.card.issuer_keys)?;
    let rules = match &settings.card.policy_file {
        Some(path) => PolicyRules::load(path, &door_names)?,
        None => PolicyRules::allow_all(),
    };
    let mut revocation = match &settings.card.revocation_list {
        Some(path) => RevocationList::load(path)?,
        None => RevocationList::default(),
    };
    let lockdown_file = LockdownFile::in_state_dir(&settings.storage.state_dir);
    let locked_down = lockdown_file.load()?;
    let outbox = Arc::new(Outbox::open(&OutboxOptions::from_settings(&settings))?);

    // Doors first: every output is driven safe before anything else runs.
    let mut doors = Doors::build(&settings)?;
    let (door_tx, mut door_rx) = mpsc::unbounded_channel();
    let door_handle = doors.spawn(move |event| {
        let _ = door_tx.send(event);
    })?;
    door_handle.safe_stop().install_panic_hook();
    // A lockdown outlives a restart: the doors take it back before anything can be granted.
    for door in &locked_down {
        if door_names.contains(door) {
            door_handle.set_lockdown(Some(door), true)?;
        } else {
            tracing::warn!(%door, file = %lockdown_file.path().display(), "a door in lockdown is no longer configured");
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut stop_rx = stop_rx.clone();
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        }
    };

    let (link, mut link_handles) =
        Link::new(LinkOptions::from_settings(&settings), outbox.clone())?;
    let link_task = tokio::spawn(link.run(stopped()));
    let sim_control_task = match (&settings.gpio.simulated_control, doors.simulated()) {
        (Some(path), Some(gpio)) => {
            let (path, gpio, stop) = (path.clone(), gpio.clone(), stopped());
            tokio::spawn(async move {
                if let Err(error) = sim_control::serve(&path, gpio, stop).await {
                    tracing::error!(%error, path = %path.display(), "simulated GPIO control socket");
                }
            })
        }
        _ => tokio::spawn(async {}),
    };
    let flusher_outbox = outbox.clone();
    let flusher_stop = stopped();
    let flusher_task = tokio::spawn(async move { flusher_outbox.run_flusher(flusher_stop).await });

    let model = settings.matcher.model.clone();
    let extractor = tokio::task::spawn_blocking(move || match model {
        Some(path) => Extractor::from_model_file(&path),
        None => Extractor::builtin(),
    })
    .await
    .map_err(|error| GateError::Task(error.to_string()))?
    .map_err(GateError::Extractor)?;
    let extractor = Arc::new(extractor);
    let input_kind = match settings.matcher.input {
        MatcherInput::Hand => InputKind::Hand,
        MatcherInput::Roi => InputKind::Roi,
    };

    let (sensor_tx, mut sensor_rx) = mpsc::channel(8);
    // The device task keeps the capture state it was last asked for and replays it after a
    // reconnection.
    let (sensor_cmd_tx, sensor_cmd_rx) = mpsc::channel(4);
    let mut sensor_config = DeviceConfig::new(&settings.sensor.port);
    sensor_config.baud = settings.sensor.baud;
    sensor_config.max_frame_bytes =
        usize::try_from(settings.sensor.max_frame_bytes).unwrap_or(usize::MAX);
    sensor_config.request_timeout = settings.sensor.request_timeout;
    sensor_config.reconnect_backoff.max = settings.sensor.reconnect_max;
    sensor_config.capture = match settings.sensor.capture {
        CaptureMode::Continuous => Some(CAPTURE),
        CaptureMode::OnCard => None,
    };
    let sensor_task = tokio::spawn(device::run(
        sensor_config,
        sensor_tx,
        sensor_cmd_rx,
        stopped(),
    ));

    let (card_tx, mut card_rx) = mpsc::channel(16);
    let card_worker = CardWorker::start(&settings.card.reader, issuers, card_tx)?;

    let heartbeat = Heartbeat::default();
    let watchdog_task = tokio::spawn(crate::notify::run_watchdog(
        notifier.clone(),
        heartbeat.checker(),
        stopped(),
    ));

    let mut gate = Loop {
        access: Access::new(
            AccessConfig {
                door: settings.card.door.clone(),
                presentation_window: settings.card.presentation_window,
                verify_timeout: settings.card.verify_timeout,
            },
            SitePolicy::new(rules),
        ),
        outbox: outbox.clone(),
        door_handle,
        card_worker,
        door_states: link_handles.door_states.clone(),
        door_view: DoorStates::new(
            settings
                .door
                .iter()
                .map(|(name, door)| (name.clone(), door.contact_pin.is_some())),
        ),
        held_probe: None,
        extracting: false,
        capture_mode: settings.sensor.capture,
        capturing: settings.sensor.capture == CaptureMode::Continuous,
        sensor_commands: sensor_cmd_tx,
        doors_ready: false,
        sensor_ready: false,
        ready_sent: false,
        revocation_path: settings.card.revocation_list.clone(),
        policy_path: settings.card.policy_file.clone(),
        door_names,
        lockdown_file,
        notifier: notifier.clone(),
        started,
    };
    for door in locked_down {
        if gate.door_names.contains(&door) {
            gate.input(Input::Lockdown { door, on: true });
        }
    }
    gate.access.set_revoked(revocation.cards().clone());
    for (door, status) in gate.door_view.all() {
        let _ = gate.door_states.try_send((door.clone(), status.clone()));
    }

    let (extract_tx, mut extract_rx) = mpsc::channel(2);
    tokio::pin!(shutdown);
    loop {
        heartbeat.beat();
        let deadline = gate.access.next_deadline();
        let sleep = tokio::time::sleep_until(deadline.map_or_else(
            || tokio::time::Instant::now() + LOOP_TICK,
            tokio::time::Instant::from_std,
        ));
        tokio::select! {
            () = &mut shutdown => break,
            () = sleep => {
                let actions = gate.access.tick(Instant::now(), Timestamp::now());
                gate.execute(actions);
            }
            Some(report) = card_rx.recv() => gate.card_report(report),
            Some(event) = sensor_rx.recv() => {
                if let Some(frame) = gate.sensor_event(event) {
                    gate.extracting = true;
                    let extractor = extractor.clone();
                    let extract_tx = extract_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let begun = Instant::now();
                        let result = extractor.extract(frame.image.as_gray(), input_kind);
                        let _ = extract_tx.blocking_send((result, frame.received.instant, begun.elapsed()));
                    });
                }
            }
            Some((result, received, extract)) = extract_rx.recv() => gate.extracted(result, received, extract),
            Some(event) = door_rx.recv() => gate.door_event(event),
            Some(command) = link_handles.commands.recv() => gate.command(command, &mut revocation),
            Some(()) = reload.recv() => gate.reload(&mut revocation),
        }
        gate.steer_capture();
    }

    tracing::info!("stopping");
    notifier.stopping();
    gate.held_probe = None;
    // Doors first: whatever else hangs, the outputs are in their safe state.
    let door_result = gate.door_handle.shutdown();
    let _ = stop_tx.send(true);
    let card_worker = gate.card_worker;
    let card_stop = tokio::task::spawn_blocking(move || card_worker.stop());
    let tasks: [(&str, tokio::task::JoinHandle<()>); 5] = [
        ("card worker", card_stop),
        ("sensor", sensor_task),
        ("watchdog", watchdog_task),
        ("outbox flusher", flusher_task),
        ("simulated GPIO control", sim_control_task),
    ];
    for (name, task) in tasks {
        if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
            tracing::warn!(task = name, "did not stop in time; abandoned");
        }
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, link_task).await {
        Ok(Ok(Err(error))) => {
            tracing::warn!(error = %error_chain(&error), "MQTT link ended with an error")
        }
        Ok(_) => {}
        Err(_) => tracing::warn!(task = "mqtt link", "did not stop in time; abandoned"),
    }
    if let Err(error) = outbox.flush() {
        tracing::warn!(error = %error_chain(&error), "final outbox flush failed");
    }
    tracing::info!("stopped");
    door_result?;
    Ok(())
}

/// How long each task gets to stop on shutdown (systemd's `TimeoutStopSec=` is 10 s).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Every door's retained state (`door/<door>/state`), kept from the door controller's events.
#[derive(Debug)]
struct DoorStates {
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
    fn new(doors: impl IntoIterator<Item = (String, bool)>) -> Self {
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
                    mode: DoorMode::default().name(),
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

    fn all(&self) -> impl Iterator<Item = (&String, &DoorStatus)> {
        self.statuses.iter()
    }

    /// Applies a door controller event; returns the states that changed, to publish. A door event
    /// changes that door's state; a gate event (fire) may change every door's mode.
    fn apply(&mut self, event: &palmgate_door::Event) -> Vec<(String, DoorStatus)> {
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
            let mode = DoorMode {
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
struct DoorMode {
    fire: bool,
    forced: bool,
    held_open: bool,
    lockdown: bool,
}

impl DoorMode {
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

/// The main loop's state.
struct Loop {
    access: Access<SitePolicy>,
    outbox: Arc<Outbox>,
    door_handle: palmgate_door::GateHandle,
    card_worker: CardWorker,
    door_states: mpsc::Sender<(String, DoorStatus)>,
    door_view: DoorStates,
    held_probe: Option<Template>,
    extracting: bool,
    capture_mode: CaptureMode,
    /// Whether the sensor was last asked to capture.
    capturing: bool,
    sensor_commands: mpsc::Sender<DeviceCommand>,
    doors_ready: bool,
    sensor_ready: bool,
    ready_sent: bool,
    revocation_path: Option<PathBuf>,
    policy_path: Option<PathBuf>,
    door_names: BTreeSet<String>,
    /// Where the doors in lockdown are kept across restarts.
    lockdown_file: LockdownFile,
    notifier: Notifier,
    started: Instant,
}

impl Loop {
    /// In `on_card` mode, captures while a card waits for a palm, and after a decision until the
    /// hand that served it has left.
    fn steer_capture(&mut self) {
        if self.capture_mode != CaptureMode::OnCard {
            return;
        }
        // After a decision the sensor keeps watching until the hand that served it is gone: a
        // sensor that is off cannot report the lift, and the next card would get that hand.
        let wanted = matches!(self.access.state(), State::CardWaitingPalm { .. })
            || self.access.palm_spent();
        if wanted == self.capturing {
            return;
        }
        let command = if wanted {
            DeviceCommand::StartCapture(CAPTURE)
        } else {
            DeviceCommand::StopCapture
        };
        // When the queue is full the next turn of the loop tries again.
        if self.sensor_commands.try_send(command).is_ok() {
            self.capturing = wanted;
            if wanted {
                tracing::debug!("palm capture started for the card presented");
            } else {
                tracing::debug!("palm capture stopped");
            }
        }
    }

    fn input(&mut self, input: Input) {
        let actions = self.access.handle(Instant::now(), Timestamp::now(), input);
        self.execute(actions);
    }

    fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Verify => match self.held_probe.take() {
                    Some(probe) => self.card_worker.verify(probe),
                    None => self.input(Input::VerifyFailed {
                        reason: "no probe template held".to_string(),
                    }),
                },
                Action::DiscardProbe => self.held_probe = None,
                Action::Unlock { door, unlock } => {
                    if let Err(error) = self.door_handle.grant_for(&door, unlock) {
                        tracing::error!(%door, error = %error_chain(&error), "cannot unlock");
                    }
                }
                Action::Deny { door } => {
                    if let Err(error) = self.door_handle.deny(&door) {
                        tracing::warn!(%door, error = %error_chain(&error), "cannot show the denial");
                    }
                }
                Action::Publish(event) => self.publish(event),
            }
        }
    }

    fn publish(&self, event: NewEvent) {
        match self.outbox.append(event) {
            Ok(event) => tracing::info!(
                id = event.id,
                kind = %event.kind,
                door = event.door.as_deref().unwrap_or("-"),
                reason = event.reason.as_ref().map_or("-", Reason::as_str),
                "event"
            ),
            Err(error) => tracing::error!(error = %error_chain(&error), "event not recorded"),
        }
    }

    fn card_report(&mut self, report: CardReport) {
        let card_id = |bytes: [u8; 16]| CardId::new(&bytes);
        match report {
            CardReport::Presented { card_id: id, read } => match card_id(id) {
                Some(card) => self.input(Input::CardPresented { card, read }),
                None => self.input(Input::CardRejected {
                    card: None,
                    reason: "empty card id".to_string(),
                }),
            },
            CardReport::Rejected {
                card_id: id,
                reason,
            } => {
                self.input(Input::CardRejected {
                    card: id.and_then(card_id),
                    reason,
                });
            }
            CardReport::Removed => self.input(Input::CardRemoved),
            CardReport::Decision {
                outcome, elapsed, ..
            } => {
                let decision = match outcome {
                    VerifyOutcome::Match { slot_kind, .. } => Decision::Match {
                        duress: slot_kind == SlotKind::Duress,
                    },
                    VerifyOutcome::NoMatch { tries_left } => Decision::NoMatch { tries_left },
                    VerifyOutcome::Blocked => Decision::Blocked,
                };
                self.input(Input::CardDecision { decision, elapsed });
            }
            CardReport::VerifyFailed { reason, .. } => self.input(Input::VerifyFailed { reason }),
            CardReport::MonitorStopped { reason } => {
                tracing::error!(%reason, "card reader watch stopped");
                self.notifier.status("card reader unavailable");
            }
        }
    }

    /// Returns a frame to extract, when the presentation wants one and none is being extracted.
    fn sensor_event(&mut self, event: SensorEvent) -> Option<device::CapturedFrame> {
        match event {
            SensorEvent::Connected(info) => {
                tracing::info!(?info, "palm sensor connected");
                self.sensor_ready = true;
                self.maybe_ready();
                None
            }
            SensorEvent::Frame(frame) => {
                // In on_card mode a frame still in flight after the capture stopped is dropped:
                // a palm is taken only for the card that asked for it. A hand that already served
                // a decision is not taken again until it has left the sensor.
                let wants_palm = self
                    .access
                    .wants_palm(self.capture_mode == CaptureMode::Continuous);
                (wants_palm && !self.extracting).then_some(frame)
            }
            SensorEvent::Presence { present, .. } => {
                self.input(Input::HandPresence { present });
                None
            }
            SensorEvent::Disconnected { error, retry_in } => {
                tracing::warn!(error = %error_chain(&error), ?retry_in, "palm sensor disconnected");
                self.notifier.status("palm sensor disconnected");
                None
            }
            SensorEvent::Problem(error) => {
                tracing::warn!(error = %error_chain(&error), "palm sensor problem");
                None
            }
            _ => None,
        }
    }

    fn extracted(
        &mut self,
        result: Result<Template, palmgate_matcher::extract::ExtractError>,
        received: Instant,
        extract: Duration,
    ) {
        self.extracting = false;
        match result {
            Ok(template) => {
                self.held_probe = Some(template);
                self.input(Input::PalmReady { received, extract });
            }
            Err(error) => self.input(Input::PalmRefused {
                reason: error_chain(&error),
            }),
        }
    }

    fn door_event(&mut self, event: palmgate_door::Event) {
        use palmgate_door::EventKind as DoorKind;
        if matches!(event.kind, DoorKind::Ready) {
            self.doors_ready = true;
            self.maybe_ready();
        }
        for state in self.door_view.apply(&event) {
            let _ = self.door_states.try_send(state);
        }
        match NewEvent::from_door_event(&event, Timestamp::now()) {
            Some(record) => self.publish(record),
            None => tracing::warn!(kind = event.kind.name(), "door event not recorded"),
        }
    }

    fn maybe_ready(&mut self) {
        if self.ready_sent || !(self.doors_ready && self.sensor_ready) {
            return;
        }
        self.ready_sent = true;
        let elapsed = self.started.elapsed();
        tracing::info!(start_ms = elapsed.as_millis(), "gate ready");
        self.notifier.ready("gate ready");
    }

    fn command(&mut self, verified: VerifiedCommand, revocation: &mut RevocationList) {
        tracing::info!(command = verified.command.name(), operator = %verified.operator, "remote command");
        let retained_state = verified.retained_state;
        match verified.command {
            Command::Unlock { door, duration_s } => {
                if self.door_names.contains(&door) {
                    self.input(Input::RemoteUnlock {
                        door,
                        unlock: duration_s.map(|seconds| Duration::from_secs(u64::from(seconds))),
                    });
                } else {
                    self.publish(refused_command(
                        "unlock",
                        Reason::UNKNOWN_DOOR,
                        &format!("no door named \"{door}\""),
                    ));
                }
            }
            Command::Lockdown { door } => self.lockdown(door, true),
            Command::Release { door } => self.lockdown(door, false),
            Command::RevocationList { version, cards } => {
                match revocation.replace(
                    version,
                    cards.into_iter().collect(),
                    self.revocation_path.as_deref(),
                ) {
                    Ok(()) => {
                        self.access.set_revoked(revocation.cards().clone());
                        let event = NewEvent::new(EventKind::RevocationUpdated, Timestamp::now())
                            .result(Outcome::Accepted)
                            .detail(format!(
                                "version {version}, {} cards revoked",
                                revocation.cards().len()
                            ));
                        self.publish(event);
                    }
                    // The broker's retained copy of a list this gate already has (or of an older
                    // one, which cannot un-revoke a card): nothing happened, nothing to report.
                    Err(error @ RevocationError::NotNewer { .. }) if retained_state => {
                        tracing::debug!(%error, "retained revocation list already applied");
                    }
                    Err(error) => self.publish(refused_command(
                        "revocation_list",
                        if matches!(error, RevocationError::NotNewer { .. }) {
                            Reason::NOT_NEWER
                        } else {
                            Reason::NOT_STORED
                        },
                        &error.to_string(),
                    )),
                }
            }
        }
    }

    /// `lockdown` (`on`) or `release` of one door, or of every door when `door` is `None`. Lockdown
    /// is a state of each door: a gate-wide command sets or clears it on every door, a door's
    /// command on that door only (so `release door=X` during a gate-wide lockdown reopens X and
    /// nothing else). The door controller reports each door that changes.
    fn lockdown(&mut self, door: Option<String>, on: bool) {
        let command = if on { "lockdown" } else { "release" };
        let doors: Vec<String> = match &door {
            Some(name) if self.door_names.contains(name) => vec![name.clone()],
            Some(name) => {
                return self.publish(refused_command(
                    command,
                    Reason::UNKNOWN_DOOR,
                    &format!("no door named \"{name}\""),
                ));
            }
            None => self.door_names.iter().cloned().collect(),
        };
        if let Err(error) = self.door_handle.set_lockdown(door.as_deref(), on) {
            tracing::error!(error = %error_chain(&error), door = door.as_deref().unwrap_or("*"), "cannot {command}");
        }
        for door in doors {
            self.input(Input::Lockdown { door, on });
        }
        // In force already; a failure to record it only matters at the next start.
        if let Err(error) = self.lockdown_file.save(self.access.doors_in_lockdown()) {
            tracing::error!(error = %error_chain(&error), "cannot record the doors in lockdown: a restart would lift the lockdown");
        }
    }

    fn reload(&mut self, revocation: &mut RevocationList) {
        self.notifier.reloading();
        if let Some(path) = &self.policy_path {
            match PolicyRules::load(path, &self.door_names) {
                Ok(rules) => {
                    // The site policy keeps its anti-passback memory across a reload.
                    let policy = self.access_policy().with_rules(rules);
                    self.access.set_policy(policy);
                    self.publish(
                        NewEvent::new(EventKind::PolicyLoaded, Timestamp::now())
                            .result(Outcome::Info),
                    );
                }
                Err(error) => {
                    let reason = error_chain(&error);
                    tracing::error!(error = %reason, "policy not reloaded; the previous one stays in force");
                    self.publish(
                        NewEvent::new(EventKind::PolicyRejected, Timestamp::now())
                            .result(Outcome::Alarm)
                            .reason(Reason::INVALID_FILE)
                            .detail(reason),
                    );
                }
            }
        }
        if let Some(path) = &self.revocation_path {
            match RevocationList::load(path) {
                Ok(list) => {
                    *revocation = list;
                    self.access.set_revoked(revocation.cards().clone());
                }
                Err(error) => {
                    let reason = error_chain(&error);
                    tracing::error!(error = %reason, "revocation list not reloaded; the previous one stays in force");
                    self.publish(
                        NewEvent::new(EventKind::PolicyRejected, Timestamp::now())
                            .result(Outcome::Alarm)
                            .reason(Reason::INVALID_FILE)
                            .detail(reason),
                    );
                }
            }
        }
        self.notifier.ready("gate ready (reloaded)");
    }

    fn access_policy(&self) -> SitePolicy {
        self.access.policy().clone()
    }
}

fn refused_command(name: &str, reason: Reason, detail: &str) -> NewEvent {
    NewEvent::new(EventKind::CommandRefused, Timestamp::now())
        .result(Outcome::Refused)
        .reason(reason)
        .detail(format!("{name}: {detail}"))
}

#[cfg(test)]
mod tests {
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
}
