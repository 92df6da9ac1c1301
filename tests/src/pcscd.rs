//! The pcscd of this test run, stopped and started again by the tests that show the gate and the
//! host surviving a pcscd restart (a crash or a package upgrade).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_pcscd_vpcd;

/// The pcscd this test run started (through `cargo xtask test`), stopped and started again by
/// PID. Refuses to touch a pcscd that is not a child of one of this process's ancestors (someone
/// else's, or the system's).
pub struct OwnedPcscd {
    pid: u32,
    /// Set once this test started the pcscd itself.
    child: Option<Child>,
}

const PCSCD_RUN_DIR: &str = "/run/pcscd";

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces, so split after the last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let after = &stat[stat.rfind(')')? + 1..];
            after.split_whitespace().next().map(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Where a test that restarted pcscd names it for the test binaries after it.
fn restart_marker() -> std::path::PathBuf {
    std::env::temp_dir().join("palmgate-test-pcscd.restarted")
}

/// `pid starttime`: a process's identity (a pid alone may be reused).
fn identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of stat is the start time; fields after `comm` start at 3.
    let start = stat[stat.rfind(')')? + 1..].split_whitespace().nth(19)?;
    Some(format!("{pid} {start}"))
}

impl OwnedPcscd {
    /// The one pcscd running, which must have been started by this test run (`cargo xtask test`).
    pub fn find() -> Self {
        require_pcscd_vpcd();
        let output = Command::new("pgrep")
            .args(["-x", "pcscd"])
            .output()
            .expect("pgrep (package procps)");
        let pids: Vec<u32> = String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .filter(|pid| running(*pid))
            .collect();
        let [pid] = pids[..] else {
            panic!("expected one running pcscd, found {pids:?}");
        };
        let mut ancestors = vec![std::process::id()];
        while let Some(parent) = ancestors.last().and_then(|pid| parent_of(*pid)) {
            if parent == 0 || ancestors.contains(&parent) {
                break;
            }
            ancestors.push(parent);
        }
        let owner = parent_of(pid).unwrap_or(0);
        // PID 1 is everyone's ancestor: it owns pcscd for this run only when it is the xtask
        // that started the services, i.e. in a private PID namespace (`isolated`).
        let pid_1_is_xtask = std::fs::read_link("/proc/1/exe")
            .is_ok_and(|exe| exe.file_name().is_some_and(|name| name == "xtask"));
        // A pcscd that an earlier test binary of this run restarted outlived that test (its
        // parent is gone): the marker that test left names it, down to its start time.
        let restarted_by_a_test = std::fs::read_to_string(restart_marker())
            .is_ok_and(|marker| Some(marker.trim().to_string()) == identity(pid));
        assert!(
            (owner != 0 && ancestors.contains(&owner) && (owner != 1 || pid_1_is_xtask))
                || restarted_by_a_test,
            "pcscd (pid {pid}) was not started by this test run (its parent {owner} is not one of \
             ours: {ancestors:?}); this test stops pcscd: run it through `cargo xtask test`, which \
             starts its own"
        );
        Self { pid, child: None }
    }

    /// Sends `signal` to pcscd and waits until it has exited; after SIGKILL removes the socket
    /// and pid file it leaves behind (a new pcscd refuses to start while they exist).
    pub fn stop(&mut self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {}", self.pid);
        if let Some(mut child) = self.child.take() {
            child.wait().expect("pcscd exit status");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while running(self.pid) {
            assert!(Instant::now() < deadline, "pcscd ignored {signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
        if signal == "-KILL" {
            for leftover in ["pcscd.comm", "pcscd.pid"] {
                let _ = std::fs::remove_file(Path::new(PCSCD_RUN_DIR).join(leftover));
            }
        }
    }

    /// Starts `pcscd --foreground` again (it stays running for the tests that follow).
    pub fn start(&mut self) {
        let log = std::fs::File::create(std::env::temp_dir().join("palmgate-test-pcscd.log"))
            .expect("pcscd log file");
        let child = Command::new("pcscd")
            .arg("--foreground")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("pcscd log file"))
            .stderr(log)
            .spawn()
            .expect("start pcscd");
        self.pid = child.id();
        self.child = Some(child);
        if let Some(identity) = identity(self.pid) {
            std::fs::write(restart_marker(), identity).expect("pcscd restart marker");
        }
        let comm = Path::new(PCSCD_RUN_DIR).join("pcscd.comm");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !comm.exists() {
            assert!(Instant::now() < deadline, "pcscd did not create {comm:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
