//! The real services the system tests run against: pcscd with vsmartcard's vpcd, and mosquitto on
//! loopback. Each is started in the foreground as our child and stopped by its PID when the guard
//! is dropped, whatever happened in between.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where vpcd (inside pcscd) waits for a virtual card: Debian's `/etc/reader.conf.d/vpcd`.
pub const VPCD_ADDR: &str = "127.0.0.1:35963";
const PCSCD_RUN_DIR: &str = "/run/pcscd";

/// A service process we started; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Service {
    name: &'static str,
    child: Child,
    /// Files to remove after the process is gone.
    leftovers: Vec<PathBuf>,
}

impl Service {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "xtask: {} (pid {pid}) ignored SIGTERM; killing it",
            self.name
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
        if self.name == "pcscd" {
            // Before its socket and pid file are removed: they may be the restarted one's.
            stop_pcscd_restarted_by_tests();
        }
        for path in &self.leftovers {
            let _ = fs::remove_file(path);
        }
    }
}

/// Whether something accepts TCP connections at `addr`.
pub fn listening(addr: &str) -> bool {
    addr.parse::<SocketAddr>()
        .is_ok_and(|addr| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok())
}

fn wait_until(
    what: &str,
    timeout: Duration,
    mut ready: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!(
        "{what} did not come up within {} s",
        timeout.as_secs()
    ))
}

fn pcscd_running() -> Option<String> {
    let output = Command::new("pgrep").args(["-x", "pcscd"]).output().ok()?;
    // A pcscd that has exited but not been reaped yet (a zombie) is not running.
    let alive = |pid: &&str| {
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                stat.rsplit_once(") ")
                    .map(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let pids: Vec<&str> = stdout.split_whitespace().filter(alive).collect();
    (!pids.is_empty()).then(|| pids.join(" "))
}

/// Where a system test that restarted pcscd (a crash or an upgrade under a running gate) names
/// the pcscd it started, as `pid starttime` (tests/src/pcscd.rs writes it).
fn restarted_pcscd_marker() -> PathBuf {
    std::env::temp_dir().join("palmgate-test-pcscd.restarted")
}

/// `pid starttime` of a running process (a pid alone may be reused).
fn process_identity(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    if fields.next()? == "Z" {
        return None;
    }
    // Field 22 of stat (the start time); `fields` began at field 3.
    let start = fields.nth(18)?;
    Some(format!("{pid} {start}"))
}

/// Stops the pcscd that a test restarted during this run: it outlived the test (its parent), and
/// the pcscd this guard started is gone, so nothing else would stop it — and the next start
/// would find a pcscd whose socket this guard is about to remove.
fn stop_pcscd_restarted_by_tests() {
    let marker = restarted_pcscd_marker();
    let Ok(text) = fs::read_to_string(&marker) else {
        return;
    };
    let _ = fs::remove_file(&marker);
    let Some(pid) = text
        .split_whitespace()
        .next()
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return;
    };
    if process_identity(pid).as_deref() != Some(text.trim()) {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_identity(pid).is_some() {
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    println!("xtask: stopped pcscd {pid}, restarted by a test");
}

/// Starts `pcscd -f` with the vpcd driver, or returns `None` when a pcscd with vpcd is already
/// running (a developer's); fails when a pcscd runs without vpcd listening.
pub fn start_pcscd(log_dir: &Path) -> Result<Option<Service>, String> {
    if let Some(pids) = pcscd_running() {
        if listening(VPCD_ADDR) {
            println!("xtask: using the pcscd already running (pid {pids}), vpcd on {VPCD_ADDR}");
            return Ok(None);
        }
        return Err(format!(
            "a pcscd is running (pid {pids}) but vpcd is not listening on {VPCD_ADDR}: stop it \
             (kill {pids}) so that the tests can start their own"
        ));
    }
    // A pcscd that was SIGKILLed leaves its socket and pid file behind, and a new one refuses to
    // start while they exist.
    for leftover in ["pcscd.comm", "pcscd.pid"] {
        let _ = fs::remove_file(Path::new(PCSCD_RUN_DIR).join(leftover));
    }
    let log = fs::File::create(log_dir.join("pcscd.log")).map_err(|e| format!("pcscd log: {e}"))?;
    let log_err = log.try_clone().map_err(|e| format!("pcscd log: {e}"))?;
    let child = Command::new("pcscd")
        .args(["--foreground", "--debug"])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start pcscd (is the pcscd package installed?): {e}"))?;
    let mut service = Service {
        name: "pcscd",
        child,
        leftovers: vec![
            Path::new(PCSCD_RUN_DIR).join("pcscd.comm"),
            Path::new(PCSCD_RUN_DIR).join("pcscd.pid"),
        ],
    };
    let comm = Path::new(PCSCD_RUN_DIR).join("pcscd.comm");
    let started = wait_until("pcscd with vpcd", Duration::from_secs(15), || {
        comm.exists() && listening(VPCD_ADDR)
    });
    if let Err(error) = started {
        if let Ok(Some(status)) = service.child.try_wait() {
            return Err(format!(
                "pcscd exited at start ({status}); see {}",
                log_dir.join("pcscd.log").display()
            ));
        }
        return Err(format!(
            "{error}: is vsmartcard-vpcd installed (/etc/reader.conf.d/vpcd)? see {}",
            log_dir.join("pcscd.log").display()
        ));
    }
    println!(
        "xtask: pcscd started (pid {}), vpcd on {VPCD_ADDR}",
        service.pid()
    );
    Ok(Some(service))
}

/// A free loopback TCP port (bound and released: good enough for a test broker).
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Writes a loopback-only, anonymous mosquitto configuration readable by the `mosquitto` user
/// (mosquitto started as root drops to it before reading some files).
pub fn mosquitto_config(dir: &Path, port: u16) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("mosquitto.conf");
    let text = format!(
        "# palmgate test broker: loopback only\n\
         listener {port} 127.0.0.1\n\
         allow_anonymous true\n\
         persistence false\n\
         max_queued_messages 200000\n\
         log_type error\nlog_type warning\n\
         log_dest stderr\n"
    );
    fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Starts mosquitto on `127.0.0.1:port` with the configuration written by [`mosquitto_config`].
pub fn start_mosquitto(config: &Path, port: u16, log_dir: &Path) -> Result<Service, String> {
    let log = fs::File::create(log_dir.join("mosquitto.log"))
        .map_err(|e| format!("mosquitto log: {e}"))?;
    let log_err = log.try_clone().map_err(|e| format!("mosquitto log: {e}"))?;
    let child = Command::new(mosquitto_binary())
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| {
            format!("cannot start mosquitto (is the mosquitto package installed?): {e}")
        })?;
    let mut service = Service {
        name: "mosquitto",
        child,
        leftovers: Vec::new(),
    };
    let addr = format!("127.0.0.1:{port}");
    if let Err(error) = wait_until("mosquitto", Duration::from_secs(10), || listening(&addr)) {
        if let Ok(Some(status)) = service.child.try_wait() {
            return Err(format!(
                "mosquitto exited at start ({status}); see {}",
                log_dir.join("mosquitto.log").display()
            ));
        }
        return Err(error);
    }
    println!("xtask: mosquitto started (pid {}) on {addr}", service.pid());
    Ok(service)
}

/// Debian installs the broker in /usr/sbin, which is not on every user's PATH.
pub fn mosquitto_binary() -> PathBuf {
    let sbin = Path::new("/usr/sbin/mosquitto");
    if sbin.exists() {
        sbin.to_path_buf()
    } else {
        PathBuf::from("mosquitto")
    }
}
