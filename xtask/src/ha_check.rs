//! `cargo xtask ha-check`: the demo scenario against a real Home Assistant (opt-in, not in CI).
//!
//! 1. Installs Home Assistant into a venv under `<target>/ha-check/venv` when it is not there
//!    (`--install` only installs; needs the network). 2024.3.x is the last release for Python
//!    3.11; it needs `josepy<2`, and the requirements of the integrations it loads are installed
//!    here (pinned, then by one first start with the network) because the check runs it with
//!    `--skip-pip` (no network where the check runs).
//! 2. Starts mosquitto on a free loopback port, then Home Assistant (`http`, `api`, `config`,
//!    `onboarding`), and drives onboarding and the MQTT config flow through its REST API
//!    (`xtask/ha-check/driver.py setup`).
//! 3. Stops that broker and runs the demo (`palmgate-demo`) with its broker on the same port
//!    (`PALMGATE_DEMO_BROKER_PORT`), while `driver.py watch` records every state Home Assistant
//!    shows for the gate's entities.
//! 4. `driver.py check` asserts the entities and the states they went through, and that Home
//!    Assistant logged no MQTT or template error; the report goes to `<target>/ha-check/result.txt`.
//!
//! Home Assistant 2024.3 predates device-based discovery (2024.11): the watcher republishes each
//! component of the gate's device message on its per-entity topic, as newer releases do inside.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services;
use crate::tasks::{cargo, run, workspace_root};

/// What is installed into the venv, pinned: Home Assistant and the requirements of the
/// integrations the check loads (`--skip-pip` installs nothing at run time).
const PACKAGES: &[&str] = &[
    "homeassistant==2024.3.3",
    "josepy<2",
    "pyotp==2.8.0",
    "PyQRCode==1.2.1",
    "SQLAlchemy==2.0.27",
    "fnv-hash-fast==0.5.0",
    "paho-mqtt==1.6.1",
    "Pillow==10.2.0",
    "janus==1.0.0",
    "psutil-home-assistant==0.0.1",
    "securetar==2024.2.1",
];

/// The interpreter: 2024.3 is the last Home Assistant release for Python 3.11.
const PYTHON: &str = "python3.11";

pub fn ha_check(args: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let dir = crate::demo::target_dir(&root, std::env::var_os("CARGO_TARGET_DIR").as_deref())
        .join("ha-check");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let venv = dir.join("venv");
    let install_only = args.iter().any(|arg| arg == "--install");
    if install_only || !venv.join("bin").join("hass").exists() {
        install(&venv)?;
    }
    if install_only {
        return Ok(());
    }
    run(cargo().args(["build", "--workspace", "--bins", "--locked"]))?;
    let config = dir.join("config");
    let http_port = fresh_config(&config)?;
    let broker_port = services::free_port()?;
    let broker_dir = dir.join("broker");
    let broker = services::start_mosquitto(
        &services::mosquitto_config(&broker_dir, broker_port)?,
        broker_port,
        &broker_dir,
    )?;

    let ha_log = dir.join("home-assistant.log");
    let mut hass = Running::spawn(
        "Home Assistant",
        Command::new(venv.join("bin").join("hass"))
            .arg("--config")
            .arg(&config)
            .arg("--skip-pip")
            .arg("--log-file")
            .arg(&ha_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let url = format!("http://127.0.0.1:{http_port}");
    wait_for(&format!("127.0.0.1:{http_port}"), Duration::from_secs(180))?;
    let driver = root.join("xtask").join("ha-check").join("driver.py");
    let python = venv.join("bin").join("python");
    let token = dir.join("token");
    run(Command::new(&python)
        .arg(&driver)
        .args(["setup", &url, &broker_port.to_string()])
        .arg(&token))?;
    // The demo brings its own broker (it restarts it mid-scenario) on the same port; Home
    // Assistant reconnects to it.
    drop(broker);

    let states = dir.join("states.json");
    let mut watch = Running::spawn(
        "driver.py watch",
        Command::new(&python)
            .arg(&driver)
            .args(["watch", &url])
            .arg(&token)
            .arg(broker_port.to_string())
            .arg(&states)
            .stdin(Stdio::piped()),
    )?;
    let demo = crate::demo::run_with(
        &root,
        &[("PALMGATE_DEMO_BROKER_PORT", broker_port.to_string())],
    );
    // Let Home Assistant take the last state (the gate's clean `offline`) before stopping.
    std::thread::sleep(Duration::from_secs(5));
    watch.close_stdin_and_wait(Duration::from_secs(30))?;
    hass.terminate(Duration::from_secs(30));
    demo?;

    let output = Command::new(&python)
        .arg(&driver)
        .arg("check")
        .arg(&states)
        .arg(&ha_log)
        .output()
        .map_err(|e| format!("driver.py check: {e}"))?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    print!("{report}");
    let result = dir.join("result.txt");
    std::fs::write(&result, &report).map_err(|e| format!("{}: {e}", result.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "Home Assistant check failed; see {}, {} and {}",
            result.display(),
            states.display(),
            ha_log.display()
        ))
    }
}

fn install(venv: &Path) -> Result<(), String> {
    println!("xtask: installing Home Assistant into {}", venv.display());
    run(Command::new(PYTHON).args(["-m", "venv"]).arg(venv))?;
    run(Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet"])
        .args(PACKAGES))?;
    // Home Assistant always sets up `frontend` and its other default integrations (recovery
    // mode without them) and installs their requirements on first start: start it once here,
    // with the network, so that the check can run with `--skip-pip` where there is none.
    let warm = venv.with_file_name("warm-up");
    let port = fresh_config(&warm)?;
    let mut hass = Running::spawn(
        "Home Assistant (first start: installs requirements)",
        Command::new(venv.join("bin").join("hass"))
            .arg("--config")
            .arg(&warm)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )?;
    let ready = wait_for(&format!("127.0.0.1:{port}"), Duration::from_secs(900));
    hass.terminate(Duration::from_secs(30));
    ready
}

/// An empty Home Assistant configuration directory with [`configuration`] on a free HTTP port
/// (returned).
fn fresh_config(dir: &Path) -> Result<u16, String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let port = services::free_port()?;
    std::fs::write(dir.join("configuration.yaml"), configuration(port))
        .map_err(|e| format!("configuration.yaml: {e}"))?;
    Ok(port)
}

/// Home Assistant's configuration: the integrations the check needs and nothing else (no
/// `default_config`, whose requirements would all have to be installed).
fn configuration(http_port: u16) -> String {
    format!(
        "homeassistant:\n  name: ha-check\n  time_zone: UTC\n  unit_system: metric\n  \
         latitude: 0\n  longitude: 0\n  elevation: 0\n\
         http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n\
         api:\nconfig:\nonboarding:\n\
         logger:\n  default: warning\n"
    )
}

fn wait_for(addr: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if services::listening(addr) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!("nothing listening on {addr} after {timeout:?}"))
}

/// A child process stopped (SIGTERM, then SIGKILL) when dropped.
struct Running {
    name: &'static str,
    child: Child,
}

impl Running {
    fn spawn(name: &'static str, command: &mut Command) -> Result<Self, String> {
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        println!("xtask: {name} started (pid {})", child.id());
        Ok(Self { name, child })
    }

    fn close_stdin_and_wait(&mut self, timeout: Duration) -> Result<(), String> {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.flush();
        }
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("{} failed ({status})", self.name)),
                _ => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        Err(format!("{} did not stop", self.name))
    }

    fn terminate(&mut self, timeout: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate(Duration::from_secs(10));
        }
    }
}
