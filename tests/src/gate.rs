//! A whole gate on this machine for end-to-end tests: an issuer, virtual cards behind the real
//! pcscd, the sensor simulator on a pseudo-terminal, the daemon with simulated doors, and an MQTT
//! subscriber on the test broker.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use palmgate::event::CardId;
use palmgate_card::host::pcsc::wait_for_card;
use palmgate_matcher::extract::{Extractor, InputKind};

use crate::{require_mqtt, require_pcscd_vpcd, workspace_binary};

/// vpcd's first slot (port 35963) as pcscd names it.
pub const READER: &str = "Virtual PCD 00 00";

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct ChildGuard {
    name: String,
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `command`, naming it for messages.
    pub fn spawn(name: &str, command: &mut Command) -> Self {
        let child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Self {
            name: name.to_string(),
            child: Some(child),
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (`-TERM`, `-KILL`, `-HUP`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {} failed", self.name);
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        self.signal("-TERM");
        self.wait(timeout)
    }

    /// Sends SIGTERM and waits up to `timeout`; `None` if it is still running.
    pub fn try_terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.signal("-TERM");
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, as a card pulled out or a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `palmgate ARGS` to completion and returns its standard output; panics with its output
/// when it fails.
pub fn palmgate(args: &[&str]) -> String {
    let output = Command::new(workspace_binary("palmgate"))
        .args(args)
        .output()
        .expect("run palmgate");
    assert!(
        output.status.success(),
        "palmgate {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A palmgate virtual card behind pcscd (vpcd's first slot).
pub struct VirtualCard {
    guard: ChildGuard,
}

impl VirtualCard {
    /// Inserts the card whose state is kept in `state` (created in the factory state if missing).
    pub fn insert(state: &Path) -> Self {
        Self::insert_with(state, &[])
    }

    /// [`VirtualCard::insert`] with extra `palmgate-vcard` arguments (e.g. `--store-delay-ms`).
    pub fn insert_with(state: &Path, extra: &[&str]) -> Self {
        let vpcd = require_pcscd_vpcd();
        let guard = ChildGuard::spawn(
            "palmgate-vcard",
            Command::new(workspace_binary("palmgate-vcard"))
                .args(["--vpcd", &vpcd, "--state"])
                .arg(state)
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit()),
        );
        assert!(
            wait_for_card(READER, Duration::from_secs(10)).expect("pcscd reachable"),
            "the virtual card did not appear in {READER}"
        );
        Self { guard }
    }

    /// Takes the card out of the reader (the card process ends; its state file stays).
    pub fn remove(mut self) {
        let _ = self.guard.terminate(Duration::from_secs(5));
        wait_for_empty_reader();
    }

    /// Pulls the card abruptly (SIGKILL), e.g. in the middle of a command.
    pub fn pull(mut self) {
        self.guard.kill();
        wait_for_empty_reader();
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        self.guard.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        while wait_for_card(READER, Duration::ZERO).unwrap_or(false) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_for_empty_reader() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while wait_for_card(READER, Duration::ZERO).expect("pcscd reachable") {
        assert!(Instant::now() < deadline, "the reader did not become empty");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Synthetic palm data for a test: templates for enrolment and capture folders for the sensor.
pub struct Palms {
    extractor: Extractor,
    dir: PathBuf,
}

impl Palms {
    /// Palm files under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            extractor: Extractor::builtin().expect("built-in model"),
            dir: dir.to_path_buf(),
        }
    }

    /// Writes the enrolment template of `identity` (from capture 0) and returns its path and bytes.
    pub fn template(&self, identity: u64) -> (PathBuf, Vec<u8>) {
        let image = palmgate_matcher::synth::hand_image(identity, 0);
        let template = self
            .extractor
            .extract(&image, InputKind::Hand)
            .expect("synthetic hand extracts");
        let bytes = template.encode().to_vec();
        let path = self.dir.join(format!("enrol-{identity}.tpl"));
        std::fs::write(&path, &bytes).expect("write template");
        (path, bytes)
    }

    /// A folder of later captures (1..=count) of `identity`, for the sensor simulator.
    pub fn captures(&self, identity: u64, count: u64) -> PathBuf {
        let folder = self.dir.join(format!("captures-{identity}"));
        std::fs::create_dir_all(&folder).expect("captures folder");
        for capture in 1..=count {
            let image = palmgate_matcher::synth::hand_image(identity, capture);
            image
                .save(folder.join(format!("{capture:02}.png")))
                .expect("write capture");
        }
        folder
    }
}

/// The sensor simulator on a pseudo-terminal linked at `link`, serving `images`, one per
/// presentation of a hand that comes and goes ([`presentation_ms`]).
pub fn sensor_simulator(link: &Path, images: &Path, fps: u32) -> ChildGuard {
    let images = images.to_str().expect("utf-8 path");
    let (held, away) = presentation_ms(fps);
    sensor_simulator_with(
        link,
        &[
            "--format",
            "jpeg",
            "--fps",
            &fps.to_string(),
            "--images",
            images,
            "--hand-held-ms",
            &held.to_string(),
            "--hand-away-ms",
            &away.to_string(),
        ],
    )
}

/// How long the simulated hand stays in front of the sensor and how long it is away, in ms, at
/// `fps`: a few frames per presentation. The gate takes one decision per presentation, so the
/// hand must come and go for the same person to pass again.
pub fn presentation_ms(fps: u32) -> (u64, u64) {
    let period = 1000 / u64::from(fps.max(1));
    ((4 * period).max(800), period.max(200))
}

/// `palmgate sensor simulate --link LINK ARGS…` (ARGS: format, rate, image source); waits until
/// the link exists.
pub fn sensor_simulator_with(link: &Path, args: &[&str]) -> ChildGuard {
    let guard = ChildGuard::spawn(
        "palmgate sensor simulate",
        Command::new(workspace_binary("palmgate"))
            .args(["sensor", "simulate", "--link"])
            .arg(link)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !link.exists() {
        assert!(
            Instant::now() < deadline,
            "the simulator did not create {}",
            link.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    guard
}

/// Lines `topic payload` seen by `mosquitto_sub` on the test broker.
pub struct Subscriber {
    _guard: ChildGuard,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Subscriber {
    /// Subscribes to `filter` (e.g. `palmgate/#`) on the test broker, retained messages included.
    pub fn start(filter: &str) -> Self {
        Self::start_on(&require_mqtt(), filter, None)
    }

    /// Subscribes on `broker` (`host:port`); with `session`, as a persistent session of that client
    /// id, so that QoS 1 messages published while it is away are delivered when it is back.
    ///
    /// Returns once the broker has acknowledged the subscription (`mosquitto_sub -d` prints its
    /// SUBACK), not after a guessed pause: a message published from then on is delivered.
    pub fn start_on(broker: &str, filter: &str, session: Option<&str>) -> Self {
        let (host, port) = broker.rsplit_once(':').expect("host:port");
        // Line-buffered: into a pipe, mosquitto_sub's C library would hold the SUBACK's line
        // back until its buffer filled (stdbuf execs it: the child is mosquitto_sub itself).
        let mut command = Command::new("stdbuf");
        command.args(["-oL", "mosquitto_sub"]);
        command.args(["-h", host, "-p", port, "-d", "-v", "-q", "1", "-t", filter]);
        if let Some(client_id) = session {
            command.args(["-c", "-i", client_id]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut guard = ChildGuard::spawn("mosquitto_sub", &mut command);
        let stdout = guard
            .child
            .as_mut()
            .and_then(|child| child.stdout.take())
            .expect("stdout");
        let (sender, lines) = mpsc::channel();
        let (subscribed_sender, subscribed) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match SubscriberOutput::of(&line) {
                    SubscriberOutput::Subscribed => {
                        let _ = subscribed_sender.send(());
                    }
                    SubscriberOutput::Debug => {}
                    SubscriberOutput::Message => {
                        if sender.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let timeout = Duration::from_secs(30);
        assert!(
            subscribed.recv_timeout(timeout).is_ok(),
            "mosquitto_sub on {broker} did not subscribe to {filter} within {timeout:?}"
        );
        Self {
            _guard: guard,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line whose topic ends with `topic_suffix`; returns its payload.
    pub fn wait_for(&mut self, topic_suffix: &str, timeout: Duration) -> String {
        self.wait_for_matching(topic_suffix, |_| true, timeout)
    }

    /// Waits for a line whose topic ends with `topic_suffix` and whose payload satisfies `wanted`.
    pub fn wait_for_matching(
        &mut self,
        topic_suffix: &str,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let Some(line) = self.receive(deadline) else {
                panic!(
                    "no message on …{topic_suffix} within {timeout:?}; seen:\n{}",
                    self.seen.join("\n")
                )
            };
            if let Some(payload) = payload_on(line, topic_suffix)
                && wanted(payload)
            {
                return payload.to_string();
            }
        }
    }

    /// Waits until a line whose topic ends with each of `topic_suffixes` has been received, in any
    /// order, counting what earlier waits already took: events from independent tasks (the reader
    /// and the doors at start-up) arrive in whichever order those tasks ran.
    pub fn wait_for_each(&mut self, topic_suffixes: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let missing: Vec<&str> = topic_suffixes
                .iter()
                .copied()
                .filter(|suffix| {
                    !self
                        .seen
                        .iter()
                        .any(|line| payload_on(line, suffix).is_some())
                })
                .collect();
            if missing.is_empty() {
                return;
            }
            if self.receive(deadline).is_none() {
                panic!(
                    "no message on {missing:?} within {timeout:?}; seen:\n{}",
                    self.seen.join("\n")
                );
            }
        }
    }

    /// The next line received before `deadline`, checked against the schema and kept in `seen`.
    fn receive(&mut self, deadline: Instant) -> Option<&str> {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = self.lines.recv_timeout(left).ok()?;
        crate::schema::assert_valid_line(&line);
        self.seen.push(line);
        self.seen.last().map(String::as_str)
    }

    /// Every line received so far (after draining what is waiting).
    pub fn all(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            crate::schema::assert_valid_line(&line);
            self.seen.push(line);
        }
        &self.seen
    }
}

/// The payload of a `topic payload` line whose topic ends with `topic_suffix`.
fn payload_on<'a>(line: &'a str, topic_suffix: &str) -> Option<&'a str> {
    line.split_once(' ')
        .filter(|(topic, _)| topic.ends_with(topic_suffix))
        .map(|(_, payload)| payload)
}

/// What a line of `mosquitto_sub -d -v` is: its debug lines (`Client … sending CONNECT`,
/// `Subscribed (mid: 1): 1`) interleave with the `topic payload` lines of the messages.
#[derive(Debug, PartialEq, Eq)]
enum SubscriberOutput {
    /// The broker acknowledged the subscription.
    Subscribed,
    /// Another line of the client's own protocol trace.
    Debug,
    /// A message received.
    Message,
}

impl SubscriberOutput {
    fn of(line: &str) -> Self {
        if line.starts_with("Subscribed (mid: ") {
            Self::Subscribed
        } else if line.starts_with("Client ") {
            Self::Debug
        } else {
            Self::Message
        }
    }
}

/// A fake systemd notify socket.
pub struct NotifySocket {
    /// Its path (for `NOTIFY_SOCKET`).
    pub path: PathBuf,
    received: Arc<(Mutex<Vec<String>>, Condvar)>,
    seen: Mutex<usize>,
}

/// The socket's name goes with it: the same directory can hold the next one (a gate restarted).
impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl NotifySocket {
    /// Binds a socket in `dir` and reads it from a thread of its own, as systemd does: a gate
    /// must never find its notifications unread (the queue holds 10 datagrams by default).
    pub fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        let received = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1024];
            while let Ok(length) = socket.recv(&mut buffer) {
                let (messages, arrived) = &*sink;
                let mut messages = messages.lock().unwrap_or_else(PoisonError::into_inner);
                messages.push(String::from_utf8_lossy(&buffer[..length]).into_owned());
                arrived.notify_all();
            }
        });
        Self {
            path,
            received,
            seen: Mutex::new(0),
        }
    }

    /// Waits for a message containing `needle` (`READY=1`, `STOPPING=1`) after the last one
    /// found; `None` on time-out.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let (messages, arrived) = &*self.received;
        let mut messages = messages.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(offset) = messages[*seen..].iter().position(|m| m.contains(needle)) {
                *seen += offset + 1;
                return Some(messages[*seen - 1].clone());
            }
            *seen = messages.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            messages = arrived
                .wait_timeout(messages, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// How many messages received so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        let (messages, _) = &*self.received;
        let messages = messages.lock().unwrap_or_else(PoisonError::into_inner);
        messages.iter().filter(|m| m.contains(needle)).count()
    }
}

/// Writes a gate configuration for this machine's services into `dir` and returns its path.
pub fn gate_config(
    dir: &Path,
    gate_id: &str,
    issuer_pub: &Path,
    sensor_link: &Path,
    operator_pub: &Path,
) -> PathBuf {
    gate_config_on(
        &require_mqtt(),
        dir,
        gate_id,
        issuer_pub,
        sensor_link,
        operator_pub,
    )
}

/// [`gate_config`] for the broker at `broker` (`host:port`).
pub fn gate_config_on(
    broker: &str,
    dir: &Path,
    gate_id: &str,
    issuer_pub: &Path,
    sensor_link: &Path,
    operator_pub: &Path,
) -> PathBuf {
    let config = format!(
        r#"[gate]
id = "{gate_id}"

[card]
reader = "{READER}"
issuer_keys = ["{issuer}"]
revocation_list = "{dir}/revoked.json"
presentation_window_ms = 10000
verify_timeout_ms = 5000

[sensor]
port = "{sensor}"
reconnect_max_ms = 500

[matcher]
input = "hand"

[gpio]
backend = "simulated"
simulated_control = "{dir}/gpio.sock"

[door.main]
lock_pin = 17
contact_pin = 27
rex_pin = 22
unlock_s = 1
held_open_prealarm_s = 2
held_open_alarm_s = 3

[mqtt]
url = "mqtt://{broker}"
operator_keys = ["{operator}"]

[storage]
state_dir = "{dir}/state"

[logging]
level = "debug"
format = "human"
"#,
        issuer = issuer_pub.display(),
        dir = dir.display(),
        sensor = sensor_link.display(),
        operator = operator_pub.display(),
    );
    let path = dir.join("palmgate.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

/// Starts `palmgate run --config CONFIG` with a fake notify socket; its log goes to `log`.
pub fn start_daemon(config: &Path, notify: &NotifySocket, log: &Path) -> ChildGuard {
    let log_file = std::fs::File::create(log).expect("daemon log");
    ChildGuard::spawn(
        "palmgate run",
        Command::new(workspace_binary("palmgate"))
            .args(["run", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", "4000000")
            .env_remove("WATCHDOG_PID")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file),
    )
}

/// A mosquitto of our own on loopback (for tests and the demo that stop and restart it), with
/// persistence so that queued QoS 1 messages survive its restart.
pub struct Broker {
    dir: PathBuf,
    port: u16,
    guard: Option<ChildGuard>,
}

impl Broker {
    /// Starts a broker on a free loopback port with its files in `dir`.
    pub fn start(dir: &Path) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("free port");
        Self::start_on_port(dir, port)
    }

    /// Starts a broker on `port` (the demo under `cargo xtask ha-check`, whose Home Assistant
    /// was set up for that port).
    pub fn start_on_port(dir: &Path, port: u16) -> Self {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("broker dir");
        // mosquitto started as root drops to the `mosquitto` user, which must read and write here.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
            .expect("broker dir mode");
        let config = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\n\
             autosave_interval 1\nlog_dest stderr\nlog_type error\nlog_type warning\n",
            dir.display()
        );
        let path = dir.join("mosquitto.conf");
        std::fs::write(&path, config).expect("broker config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .expect("config mode");
        let mut broker = Self {
            dir: dir.to_path_buf(),
            port,
            guard: None,
        };
        broker.resume();
        broker
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker (SIGTERM: it saves its persistent sessions).
    pub fn stop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            let _ = guard.terminate(Duration::from_secs(10));
        }
    }

    /// Starts it again on the same port.
    pub fn resume(&mut self) {
        let binary = std::env::var("PALMGATE_TEST_MOSQUITTO_BIN")
            .unwrap_or_else(|_| "/usr/sbin/mosquitto".to_string());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .expect("broker log");
        self.guard = Some(ChildGuard::spawn(
            "mosquitto",
            Command::new(binary)
                .arg("-c")
                .arg(self.dir.join("mosquitto.conf"))
                .stdin(Stdio::null())
                .stderr(log),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(self.address()).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start on {}",
                self.address()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A hostile card behind vpcd: it answers the reader's power and ATR requests like a card, then
/// every APDU with garbage (random bytes, truncated status words, lying lengths).
pub struct GarbageCard {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GarbageCard {
    /// Connects to vpcd and waits until the reader shows the card.
    pub fn insert() -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicBool, Ordering};
        let vpcd = require_pcscd_vpcd();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let mut stream = std::net::TcpStream::connect(&vpcd).expect("connect to vpcd");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let thread = std::thread::spawn(move || {
            let mut answers: u64 = 0x9E37_79B9_7F4A_7C15;
            while !stopping.load(Ordering::Relaxed) {
                let mut length = [0u8; 2];
                match stream.read_exact(&mut length) {
                    Ok(()) => {}
                    Err(error)
                        if matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        continue;
                    }
                    Err(_) => return,
                }
                let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
                stream.set_read_timeout(None).ok();
                if stream.read_exact(&mut body).is_err() {
                    return;
                }
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .ok();
                let reply: Vec<u8> = match body.as_slice() {
                    [palmgate_card::host::vpcd::CONTROL_ATR] => {
                        palmgate_card::host::vpcd::ATR.to_vec()
                    }
                    [_] => continue, // power on / off / reset: no answer
                    _ => {
                        // xorshift: a different kind of garbage for every APDU.
                        answers ^= answers << 13;
                        answers ^= answers >> 7;
                        answers ^= answers << 17;
                        match answers % 4 {
                            0 => vec![0x90],       // truncated status word
                            1 => vec![0x61, 0xFF], // "more data" forever
                            2 => answers
                                .to_be_bytes()
                                .iter()
                                .chain(&[0x90, 0x00])
                                .copied()
                                .collect(), // noise + OK
                            _ => vec![0x6F, 0x00], // no precise diagnosis
                        }
                    }
                };
                let mut message = u16::try_from(reply.len())
                    .expect("short")
                    .to_be_bytes()
                    .to_vec();
                message.extend_from_slice(&reply);
                if stream.write_all(&message).is_err() {
                    return;
                }
            }
        });
        assert!(
            wait_for_card(READER, Duration::from_secs(10)).expect("pcscd reachable"),
            "the garbage card did not appear in {READER}"
        );
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Takes the card out of the reader.
    pub fn remove(mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        wait_for_empty_reader();
    }
}

impl Drop for GarbageCard {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A card in `state`, personalised by the issuer in `issuer` and enrolled with `templates`
/// (slots 0, 1, … in order; `duress` marks one slot as duress), through the real PC/SC stack and
/// the `palmgate card` commands. Returns its certified id.
pub fn personalised_card(
    state: &Path,
    issuer: &Path,
    templates: &[PathBuf],
    duress: Option<u8>,
) -> CardId {
    personalised_card_with_floor(state, issuer, templates, duress, None).0
}

/// [`personalised_card`], with `palmgate card enrol --profile-floor` when `floor` is given; also
/// returns what `palmgate card enrol` printed.
pub fn personalised_card_with_floor(
    state: &Path,
    issuer: &Path,
    templates: &[PathBuf],
    duress: Option<u8>,
    floor: Option<palmgate_matcher::Profile>,
) -> (CardId, String) {
    let card = VirtualCard::insert(state);
    let issuer = issuer.to_str().expect("utf-8 path");
    palmgate(&[
        "card",
        "personalise",
        "--issuer",
        issuer,
        "--reader",
        READER,
    ]);
    let mut args: Vec<String> = ["card", "enrol", "--issuer", issuer, "--reader", READER]
        .map(String::from)
        .to_vec();
    for template in templates {
        args.push("--template".to_string());
        args.push(template.display().to_string());
    }
    if let Some(slot) = duress {
        args.push("--duress-slot".to_string());
        args.push(slot.to_string());
    }
    if let Some(floor) = floor {
        args.push("--profile-floor".to_string());
        args.push(floor.name().to_string());
    }
    let enrolled = palmgate(&args.iter().map(String::as_str).collect::<Vec<_>>());
    card.remove();
    let bytes = std::fs::read(state).expect("card state");
    let identity =
        palmgate_card::host::platform::identity_of_state(&bytes).expect("card state loads");
    (
        CardId::new(&identity.card_id).expect("a personalised card has an id"),
        enrolled,
    )
}

/// Publishes `payload` on `topic` at QoS 1 with `mosquitto_pub` on `broker` (`host:port`).
pub fn publish(broker: &str, topic: &str, payload: &[u8]) {
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let status = Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-q", "1", "-t", topic, "-m"])
        .arg(String::from_utf8_lossy(payload).as_ref())
        .status()
        .expect("mosquitto_pub");
    assert!(status.success(), "mosquitto_pub failed");
}

/// Publishes every line of `lines` as one QoS 1 message on `topic` (one `mosquitto_pub -l`: a
/// burst, as fast as the broker takes them).
pub fn publish_lines(broker: &str, topic: &str, lines: &str) {
    use std::io::Write;
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let mut publisher = Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-q", "1", "-t", topic, "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub");
    publisher
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write");
    assert!(
        publisher.wait().expect("mosquitto_pub").success(),
        "mosquitto_pub failed"
    );
}

/// Removes the retained message on `topic` from `broker` (`host:port`): an empty retained
/// message, as MQTT defines it. Tests clean up the retained commands they published.
pub fn clear_retained(broker: &str, topic: &str) {
    let (host, port) = broker.rsplit_once(':').expect("host:port");
    let status = Command::new("mosquitto_pub")
        .args(["-h", host, "-p", port, "-q", "1", "-r", "-n", "-t", topic])
        .status()
        .expect("mosquitto_pub");
    assert!(status.success(), "mosquitto_pub -r -n failed");
}

/// Runs `palmgate ARGS` to completion and returns its output whatever its exit status.
pub fn palmgate_output(args: &[&str]) -> std::process::Output {
    Command::new(workspace_binary("palmgate"))
        .args(args)
        .output()
        .expect("run palmgate")
}

/// Sends one request to a simulated gate's GPIO control socket (`gpio.simulated_control`), e.g.
/// `input 27 high` (door contact open), and returns the answer line.
pub fn simulated_gpio(socket: &Path, request: &str) -> String {
    use std::io::Write as _;
    let deadline = Instant::now() + Duration::from_secs(10);
    let stream = loop {
        match std::os::unix::net::UnixStream::connect(socket) {
            Ok(stream) => break stream,
            Err(error) if Instant::now() > deadline => {
                panic!("GPIO control socket {}: {error}", socket.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    (&stream)
        .write_all(format!("{request}\n").as_bytes())
        .expect("write GPIO request");
    let mut answer = String::new();
    BufReader::new(&stream)
        .read_line(&mut answer)
        .expect("read GPIO answer");
    answer.trim_end().to_string()
}

/// Seconds since the Unix epoch (a signed command's timestamp).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// The longest a test can move a site's clock on by raising its UTC offset, from any time of day:
/// a policy accepts offsets within ±14 h, which leaves 4 h beyond a whole day.
pub const LATEST_CLOCK_MOVE_MINUTES: i64 = 4 * 60;

/// The site UTC offset (minutes, for a policy's `utc_offset_minutes`) that makes the local time
/// `local_minute_of_day` at `unix_seconds` (to the minute), chosen so that the offset raised by
/// `later_minutes` is still one a policy accepts (within ±14 h): how a test puts a canteen in a
/// meal period whenever it runs, and later moves the site's clock on to the next period of the
/// same local day (raising the offset: lowering it by a day instead would go back a day).
///
/// # Panics
/// `later_minutes` is outside `0..=LATEST_CLOCK_MOVE_MINUTES` (no offset fits at every time of
/// day).
pub fn utc_offset_for_local_time(
    unix_seconds: i64,
    local_minute_of_day: i64,
    later_minutes: i64,
) -> i64 {
    const DAY: i64 = 24 * 60;
    const MOST: i64 = 14 * 60;
    assert!(
        (0..=LATEST_CLOCK_MOVE_MINUTES).contains(&later_minutes),
        "a site's clock moves on by at most {LATEST_CLOCK_MOVE_MINUTES} minutes, not {later_minutes}"
    );
    let minute_of_day = (unix_seconds / 60).rem_euclid(DAY);
    let offset = (local_minute_of_day - minute_of_day).rem_euclid(DAY);
    // Of the two offsets a day apart within ±14 h, the one that leaves room to move on.
    if offset + later_minutes <= MOST {
        offset
    } else {
        offset - DAY
    }
}

/// Field `name` of an event's JSON `payload`, as text (a string as is, anything else as JSON);
/// panics when the payload is not JSON.
pub fn field(payload: &str, name: &str) -> Option<String> {
    let json: serde_json::Value =
        serde_json::from_str(payload).unwrap_or_else(|_| panic!("not JSON: {payload}"));
    json.get(name).map(|value| {
        value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::{ChildGuard, Subscriber, SubscriberOutput};
    use std::sync::mpsc;
    use std::time::Duration;

    /// The start-up's two events as CI's failing run received them: the reader's first.
    const START_UP: [&str; 2] = [
        r#"palmgate/e2e-outage/event/reader.available {"id":1,"gate":"e2e-outage","time":"2026-12-07T12:14:33.177Z","kind":"reader.available","severity":"info","result":"info","detail":"Virtual PCD 00 00"}"#,
        r#"palmgate/e2e-outage/event/doors.ready {"id":2,"gate":"e2e-outage","time":"2026-12-07T12:14:33.178Z","kind":"doors.ready","severity":"info","result":"info"}"#,
    ];

    fn subscriber_receiving(lines: &[&str]) -> Subscriber {
        let (sender, receiver) = mpsc::channel();
        for line in lines {
            sender.send((*line).to_owned()).expect("queued");
        }
        Subscriber {
            _guard: ChildGuard {
                name: "none".to_owned(),
                child: None,
            },
            lines: receiver,
            seen: Vec::new(),
        }
    }

    #[test]
    fn events_waited_for_together_may_come_in_either_order() {
        let mut mqtt = subscriber_receiving(&START_UP);
        mqtt.wait_for("/event/doors.ready", Duration::from_millis(100));
        // `reader.available` was taken by the first wait; waiting for it alone would time out.
        mqtt.wait_for_each(
            &["/event/doors.ready", "/event/reader.available"],
            Duration::from_millis(100),
        );
    }

    #[test]
    #[should_panic(expected = "no message on [\"/event/door.forced\"]")]
    fn an_event_never_received_is_named_when_waiting_for_several() {
        let mut mqtt = subscriber_receiving(&START_UP);
        mqtt.wait_for_each(
            &["/event/reader.available", "/event/door.forced"],
            Duration::from_millis(100),
        );
    }

    #[test]
    fn the_subscribers_trace_is_told_from_its_messages() {
        let cases = [
            ("Client null sending CONNECT", SubscriberOutput::Debug),
            ("Client tst received SUBACK", SubscriberOutput::Debug),
            ("Subscribed (mid: 1): 1", SubscriberOutput::Subscribed),
            (
                "Client tst received PUBLISH (d0, q1, r0, m1, 'a/b', ... (7 bytes))",
                SubscriberOutput::Debug,
            ),
            (
                r#"palmgate/g/event/doors.ready {"id":2}"#,
                SubscriberOutput::Message,
            ),
            ("palmgate/g/status ", SubscriberOutput::Message),
        ];
        for (line, kind) in cases {
            assert_eq!(SubscriberOutput::of(line), kind, "{line}");
        }
    }
}
