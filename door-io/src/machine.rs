//! The gate state machine: every door and turnstile of a gate, the fire input and lockdown.
//!
//! It does no I/O and reads no clock: each call takes `now`, changes the state and queues
//! [`Action`]s (drive a lock, switch a feedback output, report an event) that the caller takes with
//! [`Gate::take_actions`]. [`Gate::next_deadline`] says when the next timer falls due, so a driver
//! knows when to call [`Gate::tick`]. Times that go backwards are treated as "no time passed".
//!
//! The lock rule, the invariant the tests check: a door's lock is released only
//! - before start-up is complete, when the lock's unpowered state is released (fail-safe maglock);
//! - while the fire input is active;
//! - for `unlock` after an accepted grant or request-to-exit (cut short when the door closes and
//!   `relock_delay` has passed, or when that door's lockdown starts);
//! - on a turnstile, for one `unlock` pulse per accepted grant or request-to-exit, within its window.
//!
//! A grant is accepted only after start-up, outside its door's lockdown, and (outside fire) when no
//! interlocked door is open or released; a request-to-exit likewise, except that lockdown refuses
//! it only when `lockdown_blocks_rex` is set.
//!
//! Lockdown is a state of each door ([`Gate::set_lockdown`]): a gate-wide command sets or clears it
//! on every door, a door's command on that door only. So releasing one door during a gate-wide
//! lockdown opens that door to grants again and leaves the others locked down; a gate-wide
//! release then clears the rest. Each door that changes reports `lockdown.on` / `lockdown.off`
//! with its name; a command that changes nothing reports nothing.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{
    ConfigError, DoorConfig, DoorInput, DoorMode, DoorOutput, GateConfig, LockState,
};
use crate::debounce::{Change, Debouncer};
use crate::event::{Event, EventKind, HeldOpenStage, Opening, Refusal, ReleaseCause};

/// Buzzer beep that acknowledges an accepted grant or request-to-exit.
pub const GRANT_BEEP: Duration = Duration::from_millis(150);
/// Red LED after a refused grant or [`Gate::deny`].
pub const DENY_RED: Duration = Duration::from_secs(1);
/// Buzzer after a refused grant or [`Gate::deny`].
pub const DENY_BEEP: Duration = Duration::from_millis(500);
/// Pause between two turnstile pulses, so that the turnstile counts them as two.
pub const PULSE_GAP: Duration = Duration::from_millis(250);

/// A door of the gate (its index in [`GateConfig::doors`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DoorId(usize);

impl DoorId {
    /// The door's index in [`GateConfig::doors`].
    pub fn index(self) -> usize {
        self.0
    }
}

/// Which doors a lockdown command ([`Gate::set_lockdown`]) covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockdownScope {
    /// Every door and turnstile of the gate.
    Gate,
    /// One door.
    Door(DoorId),
}

/// An input of the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputId {
    /// The fire-alarm input.
    Fire,
    /// An input of a door.
    Door(DoorId, DoorInput),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Drive a door's lock.
    Lock {
        /// The door.
        door: DoorId,
        /// The new state.
        state: LockState,
    },
    /// Switch a feedback output (never [`DoorOutput::Lock`]).
    Feedback {
        /// The door.
        door: DoorId,
        /// LED or buzzer.
        output: DoorOutput,
        /// On or off.
        on: bool,
    },
    /// Report an event.
    Event(Event),
}

/// A door's state as dashboards show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorStatus {
    /// The lock as commanded.
    pub lock: LockState,
    /// Open, closed, or unknown (no contact input or not read yet).
    pub open: Option<bool>,
    /// Forced open and not closed since.
    pub forced: bool,
    /// Held-open stage reached, while the door stays open.
    pub held_open: Option<HeldOpenStage>,
    /// Tamper input active.
    pub tampered: bool,
    /// Turnstile passages since start.
    pub passages: u64,
    /// Turnstile grants waiting for their passage.
    pub pending_grants: usize,
    /// In lockdown: grants refused (request-to-exit too when `lockdown_blocks_rex`).
    pub lockdown: bool,
}

/// The whole gate's state (for retained MQTT status on connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateStatus {
    /// Start-up reading complete.
    pub started: bool,
    /// Fire input active.
    pub fire: bool,
    /// Every door by name, in configuration order.
    pub doors: Vec<(String, DoorStatus)>,
}

#[derive(Debug, Clone, Copy)]
struct Release {
    cause: ReleaseCause,
    until: Instant,
    /// The door was open at some time during the release: closing it relocks.
    opened: bool,
}

#[derive(Debug, Clone, Copy)]
struct PendingGrant {
    cause: ReleaseCause,
    expires: Instant,
    pulsed: bool,
}

#[derive(Debug, Clone)]
struct Door {
    config: DoorConfig,
    /// Interlocked doors (both directions of every `interlock_with`).
    partners: Vec<usize>,
    contact: Option<Debouncer>,
    rex: Option<Debouncer>,
    tamper: Option<Debouncer>,
    passage: Option<Debouncer>,
    open: Option<bool>,
    tampered: bool,
    /// In lockdown (see [`Gate::set_lockdown`]).
    lockdown: bool,
    // Door mode.
    release: Option<Release>,
    relock_at: Option<Instant>,
    /// Start of the held-open timing (`None` while closed, unknown, or during fire).
    open_since: Option<Instant>,
    held: Option<HeldOpenStage>,
    forced: bool,
    // Turnstile mode.
    pending: VecDeque<PendingGrant>,
    pulse: Option<(Instant, ReleaseCause)>,
    pulse_gap_until: Option<Instant>,
    passages: u64,
    // Feedback timers.
    deny_until: Option<Instant>,
    beep_until: Option<Instant>,
    // Outputs as commanded.
    lock: LockState,
    green: bool,
    red: bool,
    buzzer: bool,
}

impl Door {
    fn new(config: DoorConfig) -> Self {
        let debouncer = |input: Option<_>| input.map(|_| Debouncer::new(config.debounce));
        Self {
            partners: Vec::new(),
            contact: debouncer(config.contact),
            rex: debouncer(config.rex),
            tamper: debouncer(config.tamper),
            passage: debouncer(config.passage),
            open: None,
            tampered: false,
            lockdown: false,
            release: None,
            relock_at: None,
            open_since: None,
            held: None,
            forced: false,
            pending: VecDeque::new(),
            pulse: None,
            pulse_gap_until: None,
            passages: 0,
            deny_until: None,
            beep_until: None,
            lock: config.lock.unpowered_state(),
            green: false,
            red: false,
            buzzer: false,
            config,
        }
    }

    fn input_mut(&mut self, role: DoorInput) -> Option<&mut Debouncer> {
        match role {
            DoorInput::Contact => self.contact.as_mut(),
            DoorInput::Rex => self.rex.as_mut(),
            DoorInput::Tamper => self.tamper.as_mut(),
            DoorInput::Passage => self.passage.as_mut(),
        }
    }

    fn debouncers(&self) -> impl Iterator<Item = &Debouncer> {
        [&self.contact, &self.rex, &self.tamper, &self.passage]
            .into_iter()
            .flatten()
    }

    fn is_turnstile(&self) -> bool {
        self.config.mode == DoorMode::Turnstile
    }

    fn held_open_deadline(&self) -> Option<Instant> {
        let since = self.open_since?;
        match self.held {
            None => Some(since + self.config.held_open_prealarm),
            Some(HeldOpenStage::PreAlarm) => Some(since + self.config.held_open_alarm),
            Some(HeldOpenStage::Alarm) => None,
        }
    }
}

/// The state machine of one gate.
#[derive(Debug, Clone)]
pub struct Gate {
    doors: Vec<Door>,
    fire: Option<Debouncer>,
    fire_active: bool,
    started: bool,
    now: Instant,
    actions: Vec<Action>,
}

impl Gate {
    /// A gate whose outputs are in their safe state (locks unpowered, feedback off), waiting for
    /// its first input samples. It starts (`doors.ready`) once the fire input is known.
    pub fn new(config: &GateConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut doors: Vec<Door> = config.doors.iter().cloned().map(Door::new).collect();
        for (index, door) in config.doors.iter().enumerate() {
            let partner = door
                .interlock_with
                .as_ref()
                .and_then(|partner| config.doors.iter().position(|other| &other.name == partner));
            if let Some(other) = partner {
                for (a, b) in [(index, other), (other, index)] {
                    if !doors[a].partners.contains(&b) {
                        doors[a].partners.push(b);
                    }
                }
            }
        }
        let fire = config.fire.map(|fire| Debouncer::new(fire.debounce));
        Ok(Self {
            doors,
            fire,
            fire_active: false,
            started: false,
            now,
            actions: Vec::new(),
        })
    }

    /// The door with this name.
    pub fn door_id(&self, name: &str) -> Option<DoorId> {
        self.doors
            .iter()
            .position(|door| door.config.name == name)
            .map(DoorId)
    }

    /// A door's configuration.
    pub fn door_config(&self, door: DoorId) -> Option<&DoorConfig> {
        self.doors.get(door.0).map(|door| &door.config)
    }

    /// Whether the start-up reading of the inputs is complete.
    pub fn is_started(&self) -> bool {
        self.started
    }

    /// Whether the (debounced) fire input is active.
    pub fn is_fire_active(&self) -> bool {
        self.fire_active
    }

    /// Whether a door is in lockdown.
    pub fn is_lockdown(&self, door: DoorId) -> Option<bool> {
        self.doors.get(door.0).map(|door| door.lockdown)
    }

    /// A door's lock as commanded.
    pub fn lock_state(&self, door: DoorId) -> Option<LockState> {
        self.doors.get(door.0).map(|door| door.lock)
    }

    /// A feedback output as commanded (`true` = on).
    pub fn feedback_state(&self, door: DoorId, output: DoorOutput) -> Option<bool> {
        let door = self.doors.get(door.0)?;
        match output {
            DoorOutput::Lock => None,
            DoorOutput::GreenLed => Some(door.green),
            DoorOutput::RedLed => Some(door.red),
            DoorOutput::Buzzer => Some(door.buzzer),
        }
    }

    /// A door's state.
    pub fn status(&self, door: DoorId) -> Option<DoorStatus> {
        let door = self.doors.get(door.0)?;
        Some(DoorStatus {
            lock: door.lock,
            open: door.open,
            forced: door.forced,
            held_open: door.held,
            tampered: door.tampered,
            passages: door.passages,
            pending_grants: door.pending.len(),
            lockdown: door.lockdown,
        })
    }

    /// The whole gate's state.
    pub fn gate_status(&self) -> GateStatus {
        GateStatus {
            started: self.started,
            fire: self.fire_active,
            doors: (0..self.doors.len())
                .filter_map(|index| {
                    let status = self.status(DoorId(index))?;
                    Some((self.doors[index].config.name.clone(), status))
                })
                .collect(),
        }
    }

    /// The actions queued since the last call, oldest first.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Feeds one raw sample of an input (`active`: the pin is at its active level).
    pub fn sample(&mut self, input: InputId, active: bool, now: Instant) {
        let now = self.clock(now);
        match input {
            InputId::Fire => {
                if let Some(change) = self.fire.as_mut().and_then(|fire| fire.sample(active, now)) {
                    self.on_fire(change);
                }
            }
            InputId::Door(door, role) => {
                let change = self
                    .doors
                    .get_mut(door.0)
                    .and_then(|d| d.input_mut(role))
                    .and_then(|input| input.sample(active, now));
                if let Some(change) = change {
                    self.on_door_input(door.0, role, change);
                }
            }
        }
        self.settle();
    }

    /// Lets time pass: debounced inputs settle and timers fall due.
    pub fn tick(&mut self, now: Instant) {
        let now = self.clock(now);
        if let Some(change) = self.fire.as_mut().and_then(|fire| fire.tick(now)) {
            self.on_fire(change);
        }
        for index in 0..self.doors.len() {
            for role in [
                DoorInput::Contact,
                DoorInput::Rex,
                DoorInput::Tamper,
                DoorInput::Passage,
            ] {
                if let Some(change) = self.doors[index]
                    .input_mut(role)
                    .and_then(|input| input.tick(now))
                {
                    self.on_door_input(index, role, change);
                }
            }
        }
        self.settle();
    }

    /// An access grant (or remote unlock) for a door, released for the door's `unlock` time.
    pub fn grant(&mut self, door: DoorId, now: Instant) -> Result<(), Refusal> {
        self.grant_for(door, None, now)
    }

    /// [`Gate::grant`], with the door released for `unlock` instead of its configured time (a
    /// remote unlock that asks for longer or shorter). A turnstile still admits one passage.
    pub fn grant_for(
        &mut self,
        door: DoorId,
        unlock: Option<Duration>,
        now: Instant,
    ) -> Result<(), Refusal> {
        let now = self.clock(now);
        if door.0 >= self.doors.len() {
            return Err(Refusal::UnknownDoor);
        }
        self.settle();
        let refusal = if !self.started {
            Some(Refusal::Starting)
        } else if self.doors[door.0].lockdown {
            Some(Refusal::Lockdown)
        } else if !self.fire_active && self.interlock_blocked(door.0) {
            Some(Refusal::Interlock)
        } else {
            None
        };
        let result = match refusal {
            Some(reason) => {
                self.emit(Some(door.0), EventKind::GrantRefused { reason });
                self.deny_feedback(door.0, now);
                Err(reason)
            }
            // During fire every door is released already; a release stored now would outlive the
            // fire and could bypass lockdown or the interlock once it clears.
            None if self.fire_active => Ok(()),
            None => {
                self.release_door(door.0, ReleaseCause::Grant, unlock);
                Ok(())
            }
        };
        self.settle();
        result
    }

    /// Deny feedback (red LED, buzzer) for an access that the access logic refused.
    pub fn deny(&mut self, door: DoorId, now: Instant) {
        let now = self.clock(now);
        if door.0 < self.doors.len() {
            self.deny_feedback(door.0, now);
        }
        self.settle();
    }

    /// Starts (`on`) or ends lockdown of one door or of every door. Starting it on a door cuts its
    /// grant or request-to-exit release short and cancels its pending turnstile grants; it never
    /// overrides fire. A door already in the requested state is left as it is (no event), so
    /// ending one door's lockdown during a gate-wide lockdown leaves the other doors locked down.
    pub fn set_lockdown(
        &mut self,
        scope: LockdownScope,
        on: bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        self.clock(now);
        let doors = match scope {
            LockdownScope::Gate => 0..self.doors.len(),
            LockdownScope::Door(door) if door.0 < self.doors.len() => door.0..door.0 + 1,
            LockdownScope::Door(_) => return Err(Refusal::UnknownDoor),
        };
        for index in doors {
            if self.doors[index].lockdown == on {
                continue;
            }
            self.doors[index].lockdown = on;
            if !on {
                self.emit(Some(index), EventKind::LockdownOff);
                continue;
            }
            self.emit(Some(index), EventKind::LockdownOn);
            let door = &mut self.doors[index];
            door.release = None;
            door.relock_at = None;
            door.pulse = None;
            let cancelled = door.pending.len();
            door.pending.clear();
            for _ in 0..cancelled {
                self.emit(Some(index), EventKind::GrantCancelled);
            }
        }
        self.settle();
        Ok(())
    }

    /// When the next timer or debounce falls due; `None` when nothing is pending.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut deadlines: Vec<Option<Instant>> =
            vec![self.fire.as_ref().and_then(Debouncer::deadline)];
        for door in &self.doors {
            deadlines.extend(door.debouncers().map(Debouncer::deadline));
            deadlines.extend([
                door.release.map(|release| release.until),
                door.relock_at,
                door.deny_until,
                door.beep_until,
                door.pulse.map(|(until, _)| until),
                door.pending.front().map(|grant| grant.expires),
            ]);
            if self.started && !self.fire_active && !door.is_turnstile() {
                deadlines.push(door.held_open_deadline());
            }
            if door.pulse.is_none() && door.pending.iter().any(|grant| !grant.pulsed) {
                deadlines.push(door.pulse_gap_until);
            }
        }
        deadlines.into_iter().flatten().min()
    }

    fn clock(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn emit(&mut self, door: Option<usize>, kind: EventKind) {
        let door = door.map(|index| self.doors[index].config.name.clone());
        self.actions.push(Action::Event(Event {
            at: self.now,
            door,
            kind,
        }));
    }

    fn deny_feedback(&mut self, index: usize, now: Instant) {
        let door = &mut self.doors[index];
        door.deny_until = Some(now + DENY_RED);
        door.beep_until = Some(now + DENY_BEEP);
    }

    /// Whether an interlocked door is open (or not known closed) or released.
    fn interlock_blocked(&self, index: usize) -> bool {
        self.doors[index].partners.iter().any(|&partner| {
            let partner = &self.doors[partner];
            partner.lock == LockState::Released
                || partner.release.is_some()
                || (partner.config.contact.is_some() && partner.open != Some(false))
        })
    }

    fn release_door(&mut self, index: usize, cause: ReleaseCause, unlock: Option<Duration>) {
        let now = self.now;
        let door = &mut self.doors[index];
        door.beep_until = Some(
            door.beep_until
                .map_or(now + GRANT_BEEP, |until| until.max(now + GRANT_BEEP)),
        );
        if door.is_turnstile() {
            door.pending.push_back(PendingGrant {
                cause,
                expires: now + door.config.grant_window,
                pulsed: false,
            });
            return;
        }
        let until = now + unlock.unwrap_or(door.config.unlock);
        let previous = door.release.take();
        door.release = Some(Release {
            cause: previous.map_or(cause, |previous| previous.cause),
            until: previous.map_or(until, |previous| previous.until.max(until)),
            opened: door.open == Some(true) || previous.is_some_and(|previous| previous.opened),
        });
        door.relock_at = None;
    }

    fn on_fire(&mut self, change: Change) {
        if !self.started || change.active == self.fire_active {
            return;
        }
        self.fire_active = change.active;
        let now = self.now;
        if change.active {
            self.emit(None, EventKind::FireActive);
            for door in &mut self.doors {
                door.open_since = None;
                door.held = None;
                door.forced = false;
            }
        } else {
            self.emit(None, EventKind::FireCleared);
            for door in &mut self.doors {
                if door.open == Some(true) && !door.is_turnstile() {
                    door.open_since = Some(now);
                }
            }
        }
    }

    fn on_door_input(&mut self, index: usize, role: DoorInput, change: Change) {
        let now = self.now;
        match role {
            DoorInput::Contact => {
                self.doors[index].open = Some(change.active);
                if !self.started || self.doors[index].is_turnstile() {
                    return;
                }
                if change.first {
                    if change.active {
                        self.opened_at_startup(index);
                    }
                    return;
                }
                let fire = self.fire_active;
                let door = &mut self.doors[index];
                if change.active {
                    door.open_since = (!fire).then_some(now);
                    door.held = None;
                    let how = if fire || door.lock == LockState::Released {
                        if let Some(release) = &mut door.release {
                            release.opened = true;
                        }
                        door.relock_at = None;
                        Opening::Released
                    } else {
                        door.forced = true;
                        Opening::Forced
                    };
                    self.emit(Some(index), EventKind::Opened { how });
                    if how == Opening::Forced {
                        self.emit(Some(index), EventKind::Forced);
                    }
                } else {
                    door.open_since = None;
                    door.held = None;
                    door.forced = false;
                    if door.release.is_some_and(|release| release.opened) {
                        door.relock_at = Some(now + door.config.relock_delay);
                    }
                    self.emit(Some(index), EventKind::Closed);
                }
            }
            DoorInput::Rex => {
                if self.started && change.active && !change.first {
                    self.request_exit(index);
                }
            }
            DoorInput::Tamper => {
                self.doors[index].tampered = change.active;
                if self.started && (change.active || !change.first) {
                    let kind = if change.active {
                        EventKind::Tamper
                    } else {
                        EventKind::TamperCleared
                    };
                    self.emit(Some(index), kind);
                }
            }
            DoorInput::Passage => {
                if self.started
                    && change.active
                    && !change.first
                    && self.doors[index].is_turnstile()
                {
                    self.passage(index);
                }
            }
        }
    }

    fn opened_at_startup(&mut self, index: usize) {
        if !self.fire_active {
            self.doors[index].open_since = Some(self.now);
        }
        self.emit(
            Some(index),
            EventKind::Opened {
                how: Opening::AtStartup,
            },
        );
    }

    fn request_exit(&mut self, index: usize) {
        let refused = if self.fire_active {
            None
        } else if self.doors[index].lockdown && self.doors[index].config.lockdown_blocks_rex {
            Some(Refusal::Lockdown)
        } else if self.interlock_blocked(index) {
            Some(Refusal::Interlock)
        } else {
            None
        };
        self.emit(Some(index), EventKind::Rex { refused });
        match refused {
            Some(_) => self.deny_feedback(index, self.now),
            None if self.fire_active => {}
            None => self.release_door(index, ReleaseCause::Rex, None),
        }
    }

    fn passage(&mut self, index: usize) {
        let fire = self.fire_active;
        let door = &mut self.doors[index];
        let used = door.pending.iter().position(|grant| grant.pulsed);
        if let Some(position) = used {
            door.pending.remove(position);
        }
        door.passages += 1;
        let authorised = used.is_some() || fire;
        let count = door.passages;
        if !authorised {
            door.deny_until = Some(self.now + DENY_RED);
        }
        self.emit(Some(index), EventKind::Passage { authorised, count });
    }

    fn start(&mut self) {
        self.started = true;
        self.fire_active = self
            .fire
            .as_ref()
            .and_then(Debouncer::value)
            .unwrap_or(false);
        self.emit(None, EventKind::Ready);
        if self.fire_active {
            self.emit(None, EventKind::FireActive);
        }
        for index in 0..self.doors.len() {
            let door = &self.doors[index];
            let (open, tampered, turnstile) = (door.open, door.tampered, door.is_turnstile());
            if open == Some(true) && !turnstile {
                self.opened_at_startup(index);
            }
            if tampered {
                self.emit(Some(index), EventKind::Tamper);
            }
        }
    }

    /// Runs the timers that fell due, then brings the commanded outputs in line with the state.
    fn settle(&mut self) {
        if !self.started && self.fire.as_ref().is_none_or(|fire| fire.value().is_some()) {
            self.start();
        }
        let now = self.now;
        for index in 0..self.doors.len() {
            self.run_timers(index, now);
            self.drive_outputs(index);
        }
    }

    fn run_timers(&mut self, index: usize, now: Instant) {
        let (started, fire) = (self.started, self.fire_active);
        let mut events = Vec::new();
        let door = &mut self.doors[index];
        if let Some(release) = door.release
            && (now >= release.until || door.relock_at.is_some_and(|at| now >= at))
        {
            door.release = None;
            door.relock_at = None;
        }
        if started && !fire && !door.is_turnstile() {
            while let Some(deadline) = door.held_open_deadline()
                && now >= deadline
            {
                let stage = if door.held.is_none() {
                    HeldOpenStage::PreAlarm
                } else {
                    HeldOpenStage::Alarm
                };
                door.held = Some(stage);
                events.push(EventKind::HeldOpen { stage });
            }
        }
        if let Some((until, _)) = door.pulse
            && now >= until
        {
            door.pulse = None;
            door.pulse_gap_until = Some(until + PULSE_GAP);
        }
        while door
            .pending
            .front()
            .is_some_and(|grant| now >= grant.expires)
        {
            door.pending.pop_front();
            events.push(EventKind::GrantExpired);
        }
        // Lockdown cleared the door's queue when it started; what is queued since was accepted.
        if door.pulse.is_none()
            && door.pulse_gap_until.is_none_or(|until| now >= until)
            && let Some(grant) = door.pending.iter_mut().find(|grant| !grant.pulsed)
        {
            grant.pulsed = true;
            door.pulse = Some((now + door.config.unlock, grant.cause));
        }
        if door.deny_until.is_some_and(|until| now >= until) {
            door.deny_until = None;
        }
        if door.beep_until.is_some_and(|until| now >= until) {
            door.beep_until = None;
        }
        for kind in events {
            self.emit(Some(index), kind);
        }
    }

    fn drive_outputs(&mut self, index: usize) {
        let (started, fire) = (self.started, self.fire_active);
        let door = &self.doors[index];
        let (lock, cause) = if !started {
            (door.config.lock.unpowered_state(), ReleaseCause::Unpowered)
        } else if fire {
            (LockState::Released, ReleaseCause::Fire)
        } else if let Some(release) = door.release {
            (LockState::Released, release.cause)
        } else if let Some((_, cause)) = door.pulse {
            (LockState::Released, cause)
        } else {
            (LockState::Secured, ReleaseCause::Grant)
        };
        let green = started && lock == LockState::Released;
        let red = started
            && (door.lockdown
                || door.forced
                || door.held == Some(HeldOpenStage::Alarm)
                || door.tampered
                || door.deny_until.is_some());
        let buzzer =
            started && !fire && (door.beep_until.is_some() || door.forced || door.held.is_some());
        let feedback = door.config.feedback;
        let door_id = DoorId(index);
        if lock != door.lock {
            self.doors[index].lock = lock;
            self.actions.push(Action::Lock {
                door: door_id,
                state: lock,
            });
            let kind = match lock {
                LockState::Released => EventKind::Unlocked { cause },
                LockState::Secured => EventKind::Locked,
            };
            self.emit(Some(index), kind);
        }
        let door = &mut self.doors[index];
        for (output, wired, state, wanted) in [
            (
                DoorOutput::GreenLed,
                feedback.green_led.is_some(),
                &mut door.green,
                green,
            ),
            (
                DoorOutput::RedLed,
                feedback.red_led.is_some(),
                &mut door.red,
                red,
            ),
            (
                DoorOutput::Buzzer,
                feedback.buzzer.is_some(),
                &mut door.buzzer,
                buzzer,
            ),
        ] {
            if *state != wanted {
                *state = wanted;
                if wired {
                    self.actions.push(Action::Feedback {
                        door: door_id,
                        output,
                        on: wanted,
                    });
                }
            }
        }
    }
}
