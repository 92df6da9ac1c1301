//! systemd service notifications: readiness, watchdog and stopping.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing, so the daemon runs the same way on
//! a terminal. A failure to notify is logged, never fatal: the service manager will notice on its
//! own (start timeout, watchdog) if it matters.

use std::time::Duration;

use sd_notify::NotifyState;

/// Talks to the service manager.
#[derive(Debug, Clone)]
pub struct Notifier {
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Self {
        Self { watchdog: sd_notify::watchdog_enabled() }
    }

    /// How often to ping the watchdog: half its timeout, so one late ping is not fatal.
    /// `None` when systemd runs no watchdog for this process.
    pub fn watchdog_ping_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// `READY=1` with a status line: call only once every device the gate needs is up.
    pub fn ready(&self, status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A status line shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        send(&[NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog_ping(&self) {
        send(&[NotifyState::Watchdog]);
    }

    /// `RELOADING=1` while policy files are re-read (SIGHUP); follow with [`Notifier::ready`].
    pub fn reloading(&self) {
        // systemd 253+ wants the monotonic time with RELOADING=1; older ones ignore it.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => send(&[NotifyState::Reloading, now]),
            Err(_) => send(&[NotifyState::Reloading]),
        }
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        send(&[NotifyState::Stopping]);
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(states) {
        tracing::warn!(%error, "could not notify systemd");
    }
}
