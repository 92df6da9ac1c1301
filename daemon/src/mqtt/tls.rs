//! TLS to the broker with rustls 0.23 (ring provider), CA pinning and a client certificate.
//!
//! rumqttc 0.25's own TLS features depend on rustls-webpki 0.102 (with open 2026 RustSec
//! advisories) even without their default crypto provider, so palmgate builds rumqttc without TLS
//! and brings TLS itself: the link tells rumqttc to connect to a Unix socket in a private
//! directory of the state directory, and this module's bridge accepts that connection (only from
//! this very process: the peer's pid is checked), opens TCP to the broker, performs the TLS
//! handshake with a [`rustls::ClientConfig`] built here (current rustls and rustls-webpki 0.103),
//! and copies bytes both ways. One bridge connection per MQTT connection; a failed handshake
//! closes the Unix side, which rumqttc sees as a connection error and retries with back-off.

use crate::config::files::{MAX_KEY_FILE_BYTES, read_bounded};
use crate::error_chain;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpStream, UnixListener};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};

use crate::config::MqttSettings;

/// TLS set-up failures (all at start-up, with the file and reason).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// `mqtts://` without `mqtt.ca_file`.
    #[error("mqtt.url is mqtts:// but mqtt.ca_file is not set: give the CA that signs the broker")]
    NoCa,
    /// Only one of `mqtt.cert_file` / `mqtt.key_file`.
    #[error("mqtt.cert_file and mqtt.key_file must be given together")]
    HalfClientIdentity,
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration (said in the text, so not also a `source()`: a printed
    /// chain says it once).
    #[error("TLS configuration: {0}")]
    Rustls(rustls::Error),
    /// The broker host is not a valid DNS name or IP address.
    #[error("mqtt.url host {0:?} is not a valid server name")]
    ServerName(String),
    /// The bridge socket could not be set up.
    #[error("MQTT TLS bridge socket {path}: {error}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: io::Error,
    },
}

impl From<rustls::Error> for TlsError {
    fn from(error: rustls::Error) -> Self {
        Self::Rustls(error)
    }
}

fn pem_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The rustls client configuration from `[mqtt]`: trust only `ca_file`; present
/// `cert_file`/`key_file` when given.
pub fn client_config(settings: &MqttSettings) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_from_files(
        settings.ca_file.as_deref(),
        settings.cert_file.as_deref(),
        settings.key_file.as_deref(),
    )
}

/// [`client_config`] from the files themselves (for tools that take them on the command line).
pub fn client_config_from_files(
    ca_file: Option<&Path>,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    use pki_types::pem::PemObject;
    let ca_file = ca_file.ok_or(TlsError::NoCa)?;
    let mut roots = rustls::RootCertStore::empty();
    // Bounded, non-blocking reads: a FIFO or a device named here cannot hang or flood the gate.
    let read = |path: &Path| read_bounded(path, MAX_KEY_FILE_BYTES).map_err(|e| pem_error(path, e));
    let ca_bytes = read(ca_file)?;
    let cas = pki_types::CertificateDer::pem_slice_iter(&ca_bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(ca_file, e))?;
    if cas.is_empty() {
        return Err(pem_error(ca_file, "no CERTIFICATE in the file"));
    }
    for ca in cas {
        roots.add(ca).map_err(|e| pem_error(ca_file, e))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match (cert_file, key_file) {
        (Some(cert_file), Some(key_file)) => {
            let cert_bytes = read(cert_file)?;
            let chain = pki_types::CertificateDer::pem_slice_iter(&cert_bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| pem_error(cert_file, e))?;
            if chain.is_empty() {
                return Err(pem_error(cert_file, "no CERTIFICATE in the file"));
            }
            let key_bytes = zeroize::Zeroizing::new(read(key_file)?);
            let key = pki_types::PrivateKeyDer::from_pem_slice(&key_bytes)
                .map_err(|e| pem_error(key_file, e))?;
            builder.with_client_auth_cert(chain, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::HalfClientIdentity),
    };
    Ok(Arc::new(config))
}

/// A running bridge: rumqttc connects to [`socket_path`](Self::socket_path).
#[derive(Debug)]
pub struct TlsBridge {
    socket_path: PathBuf,
    task: JoinHandle<()>,
}

impl TlsBridge {
    /// Listens on `<dir>/mqtt-tls.sock` (`dir` is created with mode 0700) and bridges each
    /// connection from this process to `host:port` over TLS.
    pub fn start(
        dir: &Path,
        host: &str,
        port: u16,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, TlsError> {
        let server_name = pki_types::ServerName::try_from(host.to_owned())
            .map_err(|_| TlsError::ServerName(host.to_owned()))?;
        let socket_path = dir.join("mqtt-tls.sock");
        let socket_error = |error| TlsError::Socket {
            path: socket_path.clone(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(socket_error)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(socket_error)?;
        match std::fs::remove_file(&socket_path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(socket_error(error)),
        }
        let listener = UnixListener::bind(&socket_path).map_err(socket_error)?;
        let connector = TlsConnector::from(config);
        let address = format!("{host}:{port}");
        let task = tokio::spawn(async move {
            loop {
                let Ok((unix, _)) = listener.accept().await else {
                    continue;
                };
                let own_pid = i32::try_from(std::process::id()).ok();
                let peer_pid = unix.peer_cred().ok().and_then(|cred| cred.pid());
                if peer_pid.is_none() || peer_pid != own_pid {
                    tracing::warn!(
                        ?peer_pid,
                        "MQTT TLS bridge: refused a connection from another process"
                    );
                    continue;
                }
                let connector = connector.clone();
                let server_name = server_name.clone();
                let address = address.clone();
                tokio::spawn(async move {
                    if let Err(error) = bridge(unix, &address, connector, server_name).await {
                        tracing::warn!(error = %error_chain(&error), broker = %address, "MQTT TLS connection failed");
                    }
                });
            }
        });
        Ok(Self { socket_path, task })
    }

    /// The Unix socket rumqttc connects to.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }
}

impl Drop for TlsBridge {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket_path);
    }
}

async fn bridge(
    mut unix: tokio::net::UnixStream,
    address: &str,
    connector: TlsConnector,
    server_name: pki_types::ServerName<'static>,
) -> io::Result<()> {
    let tcp = TcpStream::connect(address).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector.connect(server_name, tcp).await?;
    tokio::io::copy_bidirectional(&mut unix, &mut tls).await?;
    Ok(())
}
