//! systemd service notifications: readiness, watchdog and stopping.
//!
//! Outside systemd (no `NOTIFY_SOCKET`) every call does nothing, so the daemon runs the same way on
//! a terminal. A failure to notify is logged, never fatal: the service manager will notice on its
//! own (start timeout, watchdog) if it matters.
//!
//! Notifications are sent on a non-blocking socket. They are sent from the async runtime's
//! threads, and a blocking send to a service manager that does not read its socket (its queue
//! holds only `net.unix.max_dgram_qlen` datagrams, 10 by default) would stall every task on that
//! worker thread, the MQTT link's reconnection timers included. A notification that does not fit
//! is dropped and logged instead.

use crate::error_chain;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use sd_notify::NotifyState;

/// Talks to the service manager.
#[derive(Debug, Clone)]
pub struct Notifier {
    socket: Option<OsString>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment.
    pub fn from_env() -> Self {
        Self {
            socket: std::env::var_os("NOTIFY_SOCKET").filter(|path| !path.is_empty()),
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// Notifications to the datagram socket at `socket` (a path, or `@name` in the abstract
    /// namespace), with a watchdog of `watchdog` — what [`Notifier::from_env`] reads from systemd's
    /// variables, for a caller that runs the gate under another supervisor (or a test).
    pub fn new(socket: Option<OsString>, watchdog: Option<Duration>) -> Self {
        Self { socket, watchdog }
    }

    /// How often to ping the watchdog: half its timeout, so one late ping is not fatal.
    /// `None` when systemd runs no watchdog for this process.
    pub fn watchdog_ping_interval(&self) -> Option<Duration> {
        self.watchdog.map(|timeout| timeout / 2)
    }

    /// `READY=1` with a status line: call only once every device the gate needs is up.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A status line shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&[NotifyState::Status(status)]);
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog_ping(&self) {
        self.send(&[NotifyState::Watchdog]);
    }

    /// `RELOADING=1` while policy files are re-read (SIGHUP); follow with [`Notifier::ready`].
    pub fn reloading(&self) {
        // systemd 253+ wants the monotonic time with RELOADING=1; older ones ignore it.
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send(&[NotifyState::Reloading, now]),
            Err(_) => self.send(&[NotifyState::Reloading]),
        }
    }

    /// `STOPPING=1`: shutdown has begun.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        match self.try_send(states) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                tracing::warn!("the service manager is not reading notifications: one dropped");
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not notify the service manager")
            }
        }
    }

    /// Sends one datagram without blocking; `WouldBlock` when the socket's queue is full.
    fn try_send(&self, states: &[NotifyState<'_>]) -> io::Result<()> {
        let Some(path) = &self.socket else {
            return Ok(());
        };
        let mut message = String::new();
        for state in states {
            let _ = writeln!(message, "{state}");
        }
        let socket = UnixDatagram::unbound()?;
        socket.set_nonblocking(true)?;
        socket.connect_addr(&notify_address(path)?)?;
        let sent = socket.send(message.as_bytes())?;
        if sent == message.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "notification cut short",
            ))
        }
    }
}

/// `NOTIFY_SOCKET` is a path, or `@name` for a socket in the abstract namespace.
fn notify_address(path: &std::ffi::OsStr) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt as _;
    use std::os::unix::ffi::OsStrExt as _;
    match path.as_bytes().split_first() {
        Some((b'@', name)) => SocketAddr::from_abstract_name(name),
        _ => SocketAddr::from_pathname(path),
    }
}

/// Pings the watchdog at half its timeout for as long as `alive` says the gate's loops are
/// turning, until `shutdown` completes. When a loop hangs the pings stop, and systemd restarts the
/// service (which drives the doors safe at start-up). Returns at once without a watchdog.
pub async fn run_watchdog(
    notifier: Notifier,
    mut alive: impl FnMut() -> bool,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let Some(period) = notifier.watchdog_ping_interval() else {
        return;
    };
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            _ = ticker.tick() => {
                if alive() {
                    notifier.watchdog_ping();
                } else {
                    tracing::error!("a gate loop stopped responding: withholding the watchdog ping");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The notifications are checked against a fake notify socket. `sd_notify` reads
    //! `NOTIFY_SOCKET` from the environment, which a test must not change in its own process, so
    //! the test runs itself again as a child with the variables set.

    use std::os::unix::net::UnixDatagram;
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    const CHILD: &str = "PALMGATE_NOTIFY_TEST_CHILD";

    /// The child half: runs only when started by `notifications_reach_the_socket`.
    #[test]
    fn child_sends_notifications() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let notifier = Notifier::from_env();
        assert_eq!(
            notifier.watchdog_ping_interval(),
            Some(Duration::from_millis(100))
        );
        notifier.ready("gate up");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let shutdown = tokio::time::sleep(Duration::from_millis(250));
            run_watchdog(notifier.clone(), || true, shutdown).await;
        });
        notifier.stopping();
    }

    #[test]
    fn notifications_reach_the_socket() {
        if std::env::var_os(CHILD).is_some() {
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let socket_path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).expect("bind fake notify socket");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let status = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "notify::tests::child_sends_notifications",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("NOTIFY_SOCKET", &socket_path)
            .env("WATCHDOG_USEC", "200000")
            .env_remove("WATCHDOG_PID")
            .status()
            .expect("run child");
        assert!(status.success(), "child test failed");

        let mut messages = Vec::new();
        socket.set_nonblocking(true).expect("nonblocking");
        let mut buffer = [0u8; 512];
        while let Ok(length) = socket.recv(&mut buffer) {
            messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
        }
        assert_eq!(
            messages.first().map(String::as_str),
            Some("READY=1\nSTATUS=gate up\n"),
            "{messages:?}"
        );
        assert_eq!(
            messages.last().map(String::as_str),
            Some("STOPPING=1\n"),
            "{messages:?}"
        );
        let pings = messages
            .iter()
            .filter(|message| *message == "WATCHDOG=1\n")
            .count();
        // 250 ms at one ping per 100 ms (the first tick is immediate): 3 pings, give or take
        // scheduling on a loaded machine.
        assert!((2..=4).contains(&pings), "{pings} pings: {messages:?}");
    }

    #[test]
    fn a_service_manager_that_does_not_read_never_blocks_the_sender() {
        let dir = tempfile::tempdir().expect("tempdir");
        let socket_path = dir.path().join("notify.sock");
        let _unread = UnixDatagram::bind(&socket_path).expect("bind fake notify socket");
        let notifier = Notifier {
            socket: Some(socket_path.into_os_string()),
            watchdog: Some(Duration::from_secs(1)),
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let results: Vec<_> = (0..2000)
                .map(|_| notifier.try_send(&[NotifyState::Watchdog]))
                .collect();
            let _ = done_tx.send(results);
        });
        let results = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a send blocked on a full notify socket");
        assert!(results[0].is_ok(), "{:?}", results[0]);
        assert!(
            results.iter().any(|result| result
                .as_ref()
                .is_err_and(|error| error.kind() == io::ErrorKind::WouldBlock)),
            "the queue never filled: the test proves nothing"
        );
    }

    #[test]
    fn abstract_socket_names_are_understood() {
        use std::os::linux::net::SocketAddrExt as _;
        let address = notify_address(std::ffi::OsStr::new("@/org/freedesktop/systemd1/notify"))
            .expect("abstract");
        assert_eq!(
            address.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify"[..])
        );
        let address = notify_address(std::ffi::OsStr::new("/run/systemd/notify")).expect("path");
        assert_eq!(
            address.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
    }

    #[test]
    fn no_watchdog_without_systemd() {
        let notifier = Notifier {
            socket: None,
            watchdog: None,
        };
        assert_eq!(notifier.watchdog_ping_interval(), None);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        // Returns at once instead of waiting for a shutdown that never comes.
        runtime.block_on(run_watchdog(notifier, || true, std::future::pending()));
    }
}
