//! libosdp's control panel (PyPI `libosdp`, a C library nobody on this team wrote) on the master
//! side of a fresh pseudo-terminal, steered line by line through
//! `tests/tests/panel_osdp/cp_driver.py` (its commands are listed there): the panel palmgate
//! talks to in reader mode, for the system tests and the demo.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process fed lines on its stdin, whose stdout lines are read on a thread; it is killed
/// when dropped.
pub struct JsonLines {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    /// The JSON lines passed over while waiting for others.
    pub seen: Vec<Value>,
}

impl Drop for JsonLines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl JsonLines {
    /// Starts `command` (named `name` in messages) with piped stdin and stdout.
    pub fn spawn(name: &'static str, command: &mut Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            name,
            child,
            stdin,
            lines,
            seen: Vec::new(),
        }
    }

    /// Writes one line to its stdin.
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to the child");
        self.stdin.flush().expect("flush to the child");
    }

    /// The next stdout line, if one comes within `timeout`.
    pub fn line(&mut self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next JSON line (after `prefix`) that satisfies `wanted`; earlier ones are kept in
    /// `seen`, lines without the prefix (library logs) skipped. Panics after `timeout`.
    pub fn wait_for(
        &mut self,
        prefix: &str,
        what: &str,
        timeout: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let Some(line) = self.line(left) else {
                panic!(
                    "{}: timed out waiting for {what}; seen so far:\n{:#?}",
                    self.name, self.seen
                );
            };
            let Some(json) = line.strip_prefix(prefix) else {
                continue;
            };
            let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{line}: {e}"));
            if wanted(&value) {
                return value;
            }
            self.seen.push(value);
        }
    }
}

/// The CP: libosdp on the master side of a fresh pty.
pub struct ControlPanel {
    process: JsonLines,
    /// The slave side, for the PD's `device`.
    pub pty: PathBuf,
}

impl ControlPanel {
    /// Starts the driver; panics with the fix when python3 has no `osdp` module.
    pub fn spawn() -> Self {
        let check = Command::new("python3").args(["-c", "import osdp"]).output();
        assert!(
            check.as_ref().is_ok_and(|o| o.status.success()),
            "python3 with the `libosdp` package is needed (run `cargo xtask deps`, or `python3 -m pip install libosdp`): {check:?}"
        );
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/panel_osdp/cp_driver.py");
        let mut process =
            JsonLines::spawn("libosdp CP", Command::new("python3").arg("-u").arg(script));
        let pty = loop {
            let line = process
                .line(Duration::from_secs(20))
                .expect("the CP prints its pty");
            if let Some(path) = line.strip_prefix("PTY ") {
                break PathBuf::from(path);
            }
        };
        Self { process, pty }
    }

    /// Sends a driver command and returns its answer.
    pub fn ask(&mut self, command: &str) -> Value {
        self.process.send(command);
        self.process
            .wait_for("CP ", command, Duration::from_secs(30), |_| true)
    }
}
