//! One-shot MQTT publishing for operator tools (`palmgate revoke`, `palmgate card erase
//! --broker`, an enrolment station): connect (plain or TLS, the same rustls set-up as the gate),
//! publish a batch of messages with QoS 1, wait until the broker acknowledged **every** one
//! (PUBACK), disconnect. Anything short of that is an error that says how far it got: a tool must
//! never report "published" for a message the broker did not take.
//!
//! No retries: the operator sees the error and runs the command again (every message these tools
//! publish is idempotent for its receivers: a revocation list is applied by version, an event is
//! identified by its id).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;

use rumqttc::{AsyncClient, Event as MqttEvent, Incoming, MqttOptions, Outgoing, QoS, Transport};

use super::command::MAX_COMMAND_BYTES;
use super::tls::{TlsBridge, TlsError, client_config_from_files};
use crate::config::{MqttSettings, Secret};

/// How long a one-shot publication may take by default (connect, publish, every PUBACK).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// One-shot publishing failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OneShotError {
    /// The broker URL is not `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]`.
    #[error("broker URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// TLS set-up (CA, client certificate and key).
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The private directory for the TLS bridge socket (the I/O error is said in the text, so
    /// it is not also a `source()`: a printed chain says it once).
    #[error("cannot create a private directory for the TLS bridge: {0}")]
    BridgeDir(std::io::Error),
    /// The broker could not be reached or refused the connection.
    #[error("cannot connect to {broker}: {reason}")]
    Connect {
        /// `scheme://host:port`.
        broker: String,
        /// rumqttc's description (I/O error, CONNACK return code…).
        reason: String,
    },
    /// The connection broke before every message was acknowledged.
    #[error(
        "connection to {broker} lost after {acknowledged} of {total} message(s) were acknowledged: {reason}"
    )]
    Lost {
        /// `scheme://host:port`.
        broker: String,
        /// Messages the broker acknowledged.
        acknowledged: usize,
        /// Messages to publish.
        total: usize,
        /// What happened.
        reason: String,
    },
    /// Not everything was acknowledged in time.
    #[error(
        "{broker}: only {acknowledged} of {total} message(s) acknowledged within {timeout:?} ({stage})"
    )]
    Timeout {
        /// `scheme://host:port`.
        broker: String,
        /// Messages the broker acknowledged.
        acknowledged: usize,
        /// Messages to publish.
        total: usize,
        /// The time limit.
        timeout: Duration,
        /// `connecting` or `waiting for PUBACKs`.
        stage: &'static str,
    },
    /// rumqttc refused a message (e.g. a topic with wildcards).
    #[error("cannot publish on {topic:?}: {reason}")]
    Publish {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

/// `mqtt://` or `mqtts://`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain TCP (loopback only).
    Plain,
    /// TLS (rustls, CA pinning, optional client certificate).
    Tls,
}

/// A parsed broker URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    /// Plain or TLS.
    pub scheme: Scheme,
    /// Host name or IP address.
    pub host: String,
    /// Port (1883 / 8883 by default).
    pub port: u16,
}

impl BrokerUrl {
    /// Parses `mqtt://HOST[:PORT]` or `mqtts://HOST[:PORT]` (IPv6 in brackets), as `mqtt.url`.
    pub fn parse(url: &str) -> Result<Self, OneShotError> {
        let error = |reason: &str| OneShotError::Url {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| error("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"))?;
        let (scheme, default_port) = match scheme {
            "mqtt" => (Scheme::Plain, 1883),
            "mqtts" => (Scheme::Tls, 8883),
            _ => return Err(error("unsupported scheme (use mqtt or mqtts)")),
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains(['/', '?', '#', '@']) {
            return Err(error("only a host and a port may follow the scheme"));
        }
        let (host, port) = match authority.strip_prefix('[') {
            Some(bracketed) => {
                let (host, after) = bracketed
                    .split_once(']')
                    .ok_or_else(|| error("unclosed [ in IPv6 address"))?;
                (host, after.strip_prefix(':'))
            }
            None => match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            },
        };
        if host.is_empty() {
            return Err(error("missing host"));
        }
        let port = match port {
            None => default_port,
            Some(port) => match port.parse::<u16>() {
                Ok(port) if port != 0 => port,
                _ => return Err(error("invalid port")),
            },
        };
        Ok(Self {
            scheme,
            host: host.to_owned(),
            port,
        })
    }
}

impl std::fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            Scheme::Plain => "mqtt",
            Scheme::Tls => "mqtts",
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct OneShotOptions {
    /// The broker.
    pub broker: BrokerUrl,
    /// MQTT client id (must differ from every gate's: the broker drops an older client with
    /// the same id).
    pub client_id: String,
    /// CA certificate(s) that sign the broker's certificate (required for `mqtts://`).
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    pub cert_file: Option<PathBuf>,
    /// Client private key.
    pub key_file: Option<PathBuf>,
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Secret>,
    /// Time limit for the whole publication.
    pub timeout: Duration,
}

impl OneShotOptions {
    /// For `url`, with a client id `<tool>-<pid>-<random>` (unique per run).
    pub fn new(url: &str, tool: &str) -> Result<Self, OneShotError> {
        Ok(Self {
            broker: BrokerUrl::parse(url)?,
            client_id: unique_client_id(tool),
            ca_file: None,
            cert_file: None,
            key_file: None,
            username: None,
            password: None,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// From a palmgate configuration's `[mqtt]` (broker, TLS files, credentials), with a client
    /// id of its own.
    pub fn from_settings(settings: &MqttSettings, tool: &str) -> Self {
        Self {
            broker: BrokerUrl {
                scheme: match settings.scheme {
                    crate::config::MqttScheme::Mqtt => Scheme::Plain,
                    crate::config::MqttScheme::Mqtts => Scheme::Tls,
                },
                host: settings.host.clone(),
                port: settings.port,
            },
            client_id: unique_client_id(tool),
            ca_file: settings.ca_file.clone(),
            cert_file: settings.cert_file.clone(),
            key_file: settings.key_file.clone(),
            username: settings.username.clone(),
            password: settings.password.clone(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

fn unique_client_id(tool: &str) -> String {
    let random = getrandom::u32().unwrap_or(0);
    format!("{tool}-{}-{random:08x}", std::process::id())
}

/// One message to publish (always QoS 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// Ask the broker to keep it for later subscribers.
    pub retain: bool,
}

/// Publishes `messages` with QoS 1 and returns once the broker acknowledged every one of them,
/// then disconnects cleanly.
pub async fn publish(options: &OneShotOptions, messages: &[Message]) -> Result<(), OneShotError> {
    let broker = options.broker.to_string();
    let mut bridge_dir = None;
    let bridge = match options.broker.scheme {
        Scheme::Plain => None,
        Scheme::Tls => {
            let config = client_config_from_files(
                options.ca_file.as_deref(),
                options.cert_file.as_deref(),
                options.key_file.as_deref(),
            )?;
            let dir = PrivateDir::create()?;
            let bridge =
                TlsBridge::start(&dir.path, &options.broker.host, options.broker.port, config)?;
            bridge_dir = Some(dir);
            Some(bridge)
        }
    };
    let mut mqtt = match &bridge {
        Some(bridge) => {
            let mut mqtt = MqttOptions::new(
                &options.client_id,
                bridge.socket_path().to_string_lossy(),
                0,
            );
            mqtt.set_transport(Transport::Unix);
            mqtt
        }
        None => MqttOptions::new(
            &options.client_id,
            &options.broker.host,
            options.broker.port,
        ),
    };
    mqtt.set_keep_alive(Duration::from_secs(30))
        .set_clean_session(true)
        .set_max_packet_size(MAX_COMMAND_BYTES + 4096, MAX_COMMAND_BYTES + 4096);
    if let Some(user) = &options.username {
        let password = options
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        mqtt.set_credentials(user, password);
    }
    let mut progress = Progress::default();
    let result =
        tokio::time::timeout(options.timeout, run(mqtt, messages, &broker, &mut progress)).await;
    drop(bridge);
    drop(bridge_dir);
    match result {
        Ok(result) => result,
        Err(_) => Err(OneShotError::Timeout {
            broker,
            acknowledged: progress.acknowledged,
            total: messages.len(),
            timeout: options.timeout,
            stage: if progress.connected {
                "waiting for PUBACKs"
            } else {
                "connecting"
            },
        }),
    }
}

/// [`publish`] for synchronous callers (command-line tools): runs its own small runtime.
pub fn publish_blocking(
    options: &OneShotOptions,
    messages: &[Message],
) -> Result<(), OneShotError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| OneShotError::Connect {
            broker: options.broker.to_string(),
            reason: format!("cannot start the I/O runtime: {error}"),
        })?;
    runtime.block_on(publish(options, messages))
}

#[derive(Debug, Default)]
struct Progress {
    connected: bool,
    acknowledged: usize,
}

async fn run(
    mqtt: MqttOptions,
    messages: &[Message],
    broker: &str,
    progress: &mut Progress,
) -> Result<(), OneShotError> {
    let (client, mut eventloop) = AsyncClient::new(mqtt, messages.len() + 8);
    loop {
        match eventloop.poll().await {
            Ok(MqttEvent::Incoming(Incoming::ConnAck(_))) => break,
            Ok(_) => {}
            Err(error) => {
                return Err(OneShotError::Connect {
                    broker: broker.to_owned(),
                    reason: error.to_string(),
                });
            }
        }
    }
    progress.connected = true;
    for message in messages {
        client
            .try_publish(
                &message.topic,
                QoS::AtLeastOnce,
                message.retain,
                message.payload.clone(),
            )
            .map_err(|error| OneShotError::Publish {
                topic: message.topic.clone(),
                reason: error.to_string(),
            })?;
    }
    let mut awaiting: HashSet<u16> = HashSet::new();
    while progress.acknowledged < messages.len() {
        match eventloop.poll().await {
            Ok(MqttEvent::Outgoing(Outgoing::Publish(pkid))) => {
                awaiting.insert(pkid);
            }
            Ok(MqttEvent::Incoming(Incoming::PubAck(ack))) => {
                if awaiting.remove(&ack.pkid) {
                    progress.acknowledged += 1;
                }
            }
            Ok(_) => {}
            Err(error) => {
                return Err(OneShotError::Lost {
                    broker: broker.to_owned(),
                    acknowledged: progress.acknowledged,
                    total: messages.len(),
                    reason: error.to_string(),
                });
            }
        }
    }
    // Everything is acknowledged: a clean DISCONNECT is courtesy, its failure changes nothing.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            loop {
                match eventloop.poll().await {
                    Ok(MqttEvent::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
    Ok(())
}

/// A mode-0700 directory for the TLS bridge socket, removed on drop.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    fn create() -> Result<Self, OneShotError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        // A fresh random name, created (not reused) with mode 0700: nobody else can have placed
        // a socket or a link there.
        let path = base.join(format!(
            "palmgate-mqtt-{}-{:08x}",
            std::process::id(),
            getrandom::u32().map_err(|e| OneShotError::BridgeDir(std::io::Error::other(e)))?
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(OneShotError::BridgeDir)?;
        Ok(Self { path })
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_like_the_gate_configuration() {
        let url = BrokerUrl::parse("mqtts://broker.site:8884").expect("url");
        assert_eq!(
            (url.scheme, url.host.as_str(), url.port),
            (Scheme::Tls, "broker.site", 8884)
        );
        assert_eq!(
            BrokerUrl::parse("mqtt://127.0.0.1").expect("url").port,
            1883
        );
        assert_eq!(BrokerUrl::parse("mqtts://h/").expect("url").port, 8883);
        let v6 = BrokerUrl::parse("mqtt://[::1]:1884").expect("url");
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1884));
        assert_eq!(v6.to_string(), "mqtt://[::1]:1884");
        for bad in [
            "broker:1883",
            "http://broker",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:x",
            "mqtt://user@h",
            "mqtt://h/topic",
            "mqtt://[::1",
        ] {
            let error = BrokerUrl::parse(bad).expect_err(bad);
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_broker_is_a_clear_error() {
        // A port nobody listens on: bind, read the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let options =
            OneShotOptions::new(&format!("mqtt://127.0.0.1:{port}"), "test").expect("options");
        let message = Message {
            topic: "t".into(),
            payload: b"x".to_vec(),
            retain: false,
        };
        let error = publish(&options, &[message])
            .await
            .expect_err("nobody listens");
        assert!(matches!(error, OneShotError::Connect { .. }), "{error:?}");
        assert!(
            error.to_string().contains(&format!("127.0.0.1:{port}")),
            "{error}"
        );
    }

    #[tokio::test]
    async fn tls_without_a_ca_is_refused_before_connecting() {
        let options = OneShotOptions::new("mqtts://127.0.0.1:1", "test").expect("options");
        let error = publish(&options, &[]).await.expect_err("no CA");
        assert!(
            matches!(error, OneShotError::Tls(TlsError::NoCa)),
            "{error:?}"
        );
    }
}
