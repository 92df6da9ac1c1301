//! What the door state machine reports: one event per transition.

use std::fmt;
use std::time::Instant;

/// Why a lock was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseCause {
    /// An access grant (or a remote unlock) from the access logic.
    Grant,
    /// The request-to-exit button.
    Rex,
    /// The fire alarm.
    Fire,
    /// The lock is unpowered (fail-safe lock before start-up).
    Unpowered,
}

/// How a door came to be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// Opened while released (grant, REX or fire).
    Released,
    /// Opened while secured: also reported as `door.forced`.
    Forced,
    /// Found open at start-up (or at the contact's first stable reading): not an alarm by itself.
    AtStartup,
}

/// Held-open stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum HeldOpenStage {
    /// `held_open_prealarm` reached: local warning.
    PreAlarm,
    /// `held_open_alarm` reached.
    Alarm,
}

/// Why a grant, a request-to-exit or a lockdown command was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The door is in lockdown.
    #[error("lockdown")]
    Lockdown,
    /// The interlocked door is open or released.
    #[error("interlocked door is open or released")]
    Interlock,
    /// The inputs have not been read yet.
    #[error("door inputs not read yet (starting)")]
    Starting,
    /// No such door in this gate.
    #[error("no such door")]
    UnknownDoor,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventKind {
    /// `doors.ready`: the start-up reading of the inputs is complete; doors run normally.
    Ready,
    /// `door.unlocked`.
    Unlocked {
        /// Why.
        cause: ReleaseCause,
    },
    /// `door.locked`.
    Locked,
    /// `door.opened`.
    Opened {
        /// How.
        how: Opening,
    },
    /// `door.closed`.
    Closed,
    /// `door.forced`: opened while secured.
    Forced,
    /// `door.held_open`.
    HeldOpen {
        /// Pre-alarm or alarm.
        stage: HeldOpenStage,
    },
    /// `door.rex`: the request-to-exit button was pressed.
    Rex {
        /// `None` when it released the door.
        refused: Option<Refusal>,
    },
    /// `door.tamper`.
    Tamper,
    /// `door.tamper_cleared`.
    TamperCleared,
    /// `grant.refused`.
    GrantRefused {
        /// Why.
        reason: Refusal,
    },
    /// `grant.expired`: a turnstile grant not used within its window.
    GrantExpired,
    /// `grant.cancelled`: a pending turnstile grant dropped by its door's lockdown.
    GrantCancelled,
    /// `turnstile.passage`.
    Passage {
        /// Whether a grant (or fire) allowed it.
        authorised: bool,
        /// Passages counted on this turnstile since start.
        count: u64,
    },
    /// `fire.active`.
    FireActive,
    /// `fire.cleared`.
    FireCleared,
    /// `lockdown.on`: the door entered lockdown (one event per door, gate-wide lockdown too).
    LockdownOn,
    /// `lockdown.off`: the door left lockdown (one event per door, gate-wide release too).
    LockdownOff,
}

impl EventKind {
    /// The event's name as reported (`door.unlocked`, `fire.active`, …).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Ready => "doors.ready",
            EventKind::Unlocked { .. } => "door.unlocked",
            EventKind::Locked => "door.locked",
            EventKind::Opened { .. } => "door.opened",
            EventKind::Closed => "door.closed",
            EventKind::Forced => "door.forced",
            EventKind::HeldOpen { .. } => "door.held_open",
            EventKind::Rex { .. } => "door.rex",
            EventKind::Tamper => "door.tamper",
            EventKind::TamperCleared => "door.tamper_cleared",
            EventKind::GrantRefused { .. } => "grant.refused",
            EventKind::GrantExpired => "grant.expired",
            EventKind::GrantCancelled => "grant.cancelled",
            EventKind::Passage { .. } => "turnstile.passage",
            EventKind::FireActive => "fire.active",
            EventKind::FireCleared => "fire.cleared",
            EventKind::LockdownOn => "lockdown.on",
            EventKind::LockdownOff => "lockdown.off",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When it happened (the `now` of the call that produced it).
    pub at: Instant,
    /// The door, for door events (lockdown included); `None` for gate events (fire, ready).
    pub door: Option<String>,
    /// What happened.
    pub kind: EventKind,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind.name())?;
        if let Some(door) = &self.door {
            write!(f, " door={door}")?;
        }
        match &self.kind {
            EventKind::Unlocked { cause } => write!(f, " cause={cause:?}"),
            EventKind::Opened { how } => write!(f, " how={how:?}"),
            EventKind::HeldOpen { stage } => write!(f, " stage={stage:?}"),
            EventKind::Rex {
                refused: Some(reason),
            } => write!(f, " refused=\"{reason}\""),
            EventKind::GrantRefused { reason } => write!(f, " reason=\"{reason}\""),
            EventKind::Passage { authorised, count } => {
                write!(f, " authorised={authorised} count={count}")
            }
            _ => Ok(()),
        }
    }
}
