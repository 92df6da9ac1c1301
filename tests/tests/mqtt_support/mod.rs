//! Shared set-up of the outbox and MQTT system tests: a gate (outbox + flusher + MQTT link) in
//! this process, an independent rumqttc subscriber, and a private mosquitto for restart tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use palmgate::config::{MqttScheme, MqttSettings};
use palmgate::mqtt::{Link, LinkHandles, LinkOptions};
use palmgate::outbox::{Outbox, OutboxOptions};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// A topic prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("pgtest-{name}-{}-{nanos}", std::process::id())
}

pub fn split_addr(addr: &str) -> (String, u16) {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    (host.to_owned(), port.parse().expect("port"))
}

pub fn mqtt_settings(addr: &str, prefix: &str, gate: &str, keys: Vec<PathBuf>) -> MqttSettings {
    let (host, port) = split_addr(addr);
    MqttSettings {
        url: format!("mqtt://{addr}"),
        scheme: MqttScheme::Mqtt,
        host,
        port,
        client_id: format!("palmgate-{prefix}-{gate}"),
        ca_file: None,
        cert_file: None,
        key_file: None,
        username: None,
        password: None,
        topic_prefix: prefix.to_owned(),
        keep_alive: Duration::from_secs(5),
        operator_keys: keys,
        command_max_age: Duration::from_secs(60),
        discovery: true,
        discovery_prefix: format!("{prefix}-ha"),
    }
}

pub fn outbox_options(dir: &Path, gate: &str, max_events: u64) -> OutboxOptions {
    OutboxOptions {
        dir: dir.join("outbox"),
        device_key_file: dir.join("device.key"),
        gate: gate.to_owned(),
        max_events,
        alarm_percent: 90,
    }
}

/// A gate: outbox, flusher and MQTT link running in this process.
pub struct Gate {
    pub dir: tempfile::TempDir,
    pub outbox: Arc<Outbox>,
    pub handles: LinkHandles,
    stop: Option<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gate {
    pub async fn start(addr: &str, prefix: &str, gate: &str, keys: Vec<PathBuf>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, addr, prefix, gate, keys).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        addr: &str,
        prefix: &str,
        gate: &str,
        keys: Vec<PathBuf>,
    ) -> Self {
        Self::launch(dir, gate, mqtt_settings(addr, prefix, gate, keys))
    }

    /// Starts a gate with explicit MQTT settings (TLS tests).
    pub fn launch(dir: tempfile::TempDir, gate: &str, mqtt: MqttSettings) -> Self {
        let outbox =
            Arc::new(Outbox::open(&outbox_options(dir.path(), gate, 1_000_000)).expect("outbox"));
        let options = LinkOptions {
            gate: gate.to_owned(),
            gate_name: gate.to_owned(),
            mqtt,
            doors: vec![],
            meal_groups: None,
            runtime_dir: dir.path().join("run"),
            discovery_record: dir.path().join("discovery.json"),
        };
        let (link, handles) = Link::new(options, outbox.clone()).expect("link");
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let (flusher_stop_tx, flusher_stop_rx) = oneshot::channel::<()>();
        let flusher = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                outbox
                    .run_flusher(async { flusher_stop_rx.await.unwrap_or(()) })
                    .await
            }
        });
        let link_task = tokio::spawn(async move {
            link.run(async { stop_rx.await.unwrap_or(()) })
                .await
                .expect("link run");
            let _ = flusher_stop_tx.send(());
        });
        Self {
            dir,
            outbox,
            handles,
            stop: Some(stop_tx),
            tasks: vec![link_task, flusher],
        }
    }

    pub async fn wait_connected(&mut self) {
        tokio::time::timeout(
            Duration::from_secs(20),
            self.handles.connected.wait_for(|c| *c),
        )
        .await
        .expect("gate connected to the broker in time")
        .expect("link alive");
    }

    /// Drops the link without a DISCONNECT, as a crash would.
    pub fn abort(mut self) -> tempfile::TempDir {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.dir
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in self.tasks.drain(..) {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("gate stopped in time")
                .expect("gate task");
        }
        self.dir
    }
}

/// A received message.
#[derive(Debug, Clone)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }
}

/// An independent subscriber (its own rumqttc client), reconnecting on its own.
pub struct Subscriber {
    pub client: AsyncClient,
    pub messages: mpsc::UnboundedReceiver<Received>,
    skipped: std::collections::VecDeque<Received>,
    task: JoinHandle<()>,
}

impl Subscriber {
    /// Subscribes to `filters` (QoS 1). With `persistent`, the broker keeps the session (and
    /// queues messages) while the subscriber is disconnected.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        filters: &[String],
        persistent: bool,
    ) -> Self {
        let (host, port) = split_addr(addr);
        let mut options = MqttOptions::new(client_id, host, port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(!persistent)
            // The discovery device message is over rumqttc's default 10 KiB (docs/mqtt-api.md).
            .set_max_packet_size(256 * 1024, 256 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 1024);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed_rx) = oneshot::channel::<()>();
        let filters = filters.to_vec();
        let resubscribe = client.clone();
        let task = tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                        for filter in &filters {
                            let _ = resubscribe
                                .subscribe(filter.clone(), QoS::AtLeastOnce)
                                .await;
                        }
                    }
                    Ok(Event::Incoming(Incoming::SubAck(_))) => {
                        if let Some(done) = subscribed_tx.take() {
                            let _ = done.send(());
                        }
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => {
                        let _ = tx.send(Received {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed_rx)
            .await
            .expect("subscribed in time")
            .expect("subscriber task");
        Self {
            client,
            messages: rx,
            skipped: Default::default(),
            task,
        }
    }

    /// The next message, or panics after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Received {
        let message = tokio::time::timeout(timeout, self.messages.recv())
            .await
            .expect("message in time")
            .expect("subscriber alive");
        palmgate_system_tests::schema::assert_valid(&message.topic, &message.payload);
        message
    }

    /// The next message whose topic ends with `suffix` (others are kept for later calls).
    pub async fn next_on(&mut self, suffix: &str, timeout: Duration) -> Received {
        if let Some(index) = self.skipped.iter().position(|m| m.topic.ends_with(suffix)) {
            return self.skipped.remove(index).expect("index");
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.messages.recv())
                .await
                .unwrap_or_else(|_| panic!("no message on …{suffix} in time"))
                .expect("subscriber alive");
            palmgate_system_tests::schema::assert_valid(&message.topic, &message.payload);
            if message.topic.ends_with(suffix) {
                return message;
            }
            self.skipped.push_back(message);
        }
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A private mosquitto on a free loopback port, with persistence in its own directory (for tests
/// that stop and restart the broker; the shared test broker must not be restarted).
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl PrivateBroker {
    pub fn start() -> Self {
        Self::start_with(|dir, port| {
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nautosave_interval 1\nmax_queued_messages 100000\n",
                dir.display()
            )
        })
    }

    /// Starts with the configuration `config(dir, port)` writes (`port` is free).
    pub fn start_with(config: impl FnOnce(&Path, u16) -> String) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // mosquitto started as root drops to the `mosquitto` user: it must read and write here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .expect("chmod");
        let port = free_port();
        let path = dir.path().join("mosquitto.conf");
        std::fs::write(&path, config(dir.path(), port)).expect("config");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        let mut broker = Self {
            dir,
            port,
            child: None,
        };
        broker.resume();
        broker
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (again) and waits until it accepts connections.
    pub fn resume(&mut self) {
        let child = Process::new(mosquitto_binary())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts (the system tests need it installed: cargo xtask test)");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "private mosquitto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it gracefully (SIGTERM: it saves sessions and queued messages).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Process::new("kill").args(["-TERM", &pid]).status();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn mosquitto_binary() -> PathBuf {
    for candidate in [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "mosquitto".into()
}

/// Runs `openssl ARGS` in `dir`; fails the test when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Process::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs (package openssl)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA `ca` and certificates it signs for `names` (`NAME.crt`, `NAME.key`, SAN 127.0.0.1 and
/// localhost), in `dir`.
pub fn pki(dir: &Path, ca: &str, names: &[&str]) {
    let (ca_key, ca_crt) = (format!("{ca}.key"), format!("{ca}.crt"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &ca_key,
            "-out",
            &ca_crt,
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    for name in names {
        let (key, csr, crt, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        std::fs::write(
            dir.join(&ext),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("ext");
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &crt,
                "-days",
                "2",
                "-extfile",
                &ext,
            ],
        );
    }
}

/// A private mosquitto with a TLS listener that requires a client certificate (CA `ca.crt`,
/// server certificate `server.crt`) beside its plain one. `cas`: the CAs to make and the
/// certificates each signs (`("ca", &["server", …])` must be among them).
pub struct TlsBroker {
    /// The broker (its plain listener, its files in `dir()`).
    pub broker: PrivateBroker,
    /// The TLS listener's port on 127.0.0.1.
    pub tls_port: u16,
}

impl TlsBroker {
    /// Makes the PKI and starts the broker; returns once both listeners accept connections.
    pub fn start(cas: &[(&str, &[&str])]) -> Self {
        let tls_port = free_port();
        let broker = PrivateBroker::start_with(|dir, plain_port| {
            for (ca, names) in cas {
                pki(dir, ca, names);
            }
            for entry in std::fs::read_dir(dir).expect("dir").flatten() {
                use std::os::unix::fs::PermissionsExt;
                // mosquitto runs as its own user and must read its files.
                std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o644))
                    .expect("chmod");
            }
            let d = dir.display();
            format!(
                "per_listener_settings true\n\
                 listener {tls_port} 127.0.0.1\nallow_anonymous true\nrequire_certificate true\n\
                 cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n\
                 listener {plain_port} 127.0.0.1\nallow_anonymous true\n"
            )
        });
        // The plain listener is up (start_with waits for it); wait for the TLS one too.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "TLS listener did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { broker, tls_port }
    }

    /// A file of the broker's PKI (`ca.crt`, `gate.key`, …).
    pub fn file(&self, name: &str) -> PathBuf {
        self.broker.dir().join(name)
    }
}
