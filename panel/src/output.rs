//! [`PanelOutput`]: what the gate calls after its decision, and the start of the OSDP side.
//!
//! The gate decides (card certificate, palm match on the card, policy); the panel gets the
//! person's credential number for a grant, the configured denial code (or nothing) for a denial,
//! and the duress number for a duress match. Which number a card has comes from the signed
//! [`CredentialMap`]; a card without one is refused with [`PanelError::NoCredential`] and nothing
//! is sent.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use crate::config::{OsdpSettings, PanelSettings};
use crate::credential::{Credential, WiegandBits};
use crate::credential_map::{CardId, CredentialMap};
use crate::osdp::pd::{KeyStore, Pd, PdConfig, PdEvent, system_random};
use crate::osdp::reply::Identity;
use crate::osdp::secure::Key;
use crate::osdp::serial::{self, PdRequest, SerialError};
use crate::wiegand::{Sending, WiegandEmitter, WiegandError};

/// What the gate decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Card and palm verified: the person's own number.
    Granted,
    /// Duress palm verified: the duress number.
    Duress,
    /// Refused: the denial code, when configured.
    Denied,
}

/// Why nothing (or not everything) reached the panel.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PanelError {
    /// The card has no credential number: refused, nothing sent.
    #[error("card {card} has no credential number in the credential map: refused")]
    NoCredential {
        /// The card id (hex).
        card: String,
    },
    /// Duress, but neither the card's entry nor `[panel] duress` gives a duress number.
    #[error("card {card}: duress, but no duress number is assigned (card entry or [panel] duress)")]
    NoDuressCredential {
        /// The card id (hex).
        card: String,
    },
    /// The OSDP task has stopped.
    #[error("the OSDP link task has stopped")]
    OsdpStopped,
    /// The OSDP task's queue is full (the panel is not polling).
    #[error("the OSDP queue is full: the panel has not polled for the previous card reads")]
    OsdpBusy,
    /// The Wiegand emitter failed.
    #[error("Wiegand output")]
    Wiegand(#[from] WiegandError),
    /// The key file cannot be read or written.
    #[error("{path}: OSDP key file")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The serial port cannot be opened.
    #[error("{device}: cannot open the OSDP serial port")]
    Serial {
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: tokio_serial::Error,
    },
}

/// The wire.
#[derive(Debug)]
pub enum Transport {
    /// Card data goes to the PD task, which sends it at the next poll.
    Osdp(mpsc::Sender<PdRequest>),
    /// Card data is pulsed out on D0/D1.
    Wiegand(WiegandEmitter),
}

/// What was handed to the wire.
#[derive(Debug)]
pub struct Sent {
    /// The number the panel gets.
    pub credential: Credential,
    /// For Wiegand: wait on it (off the runtime) to know the frame is out.
    pub wiegand: Option<Sending>,
}

/// The gate's side of the panel.
#[derive(Debug)]
pub struct PanelOutput {
    map: CredentialMap,
    denied: Option<Credential>,
    duress: Option<Credential>,
    transport: Transport,
}

impl PanelOutput {
    /// From the settings, the verified map and the started transport.
    pub fn new(settings: &PanelSettings, map: CredentialMap, transport: Transport) -> Self {
        Self {
            map,
            denied: settings.denied,
            duress: settings.duress,
            transport,
        }
    }

    /// The number the panel gets for `verdict` on `card` (`None`: nothing is sent). I/O-free.
    pub fn resolve(
        &self,
        verdict: Verdict,
        card: Option<&CardId>,
    ) -> Result<Option<Credential>, PanelError> {
        let card_text = || {
            card.map(hex::encode)
                .unwrap_or_else(|| "(unread)".to_string())
        };
        match verdict {
            Verdict::Denied => Ok(self.denied),
            Verdict::Granted => card
                .and_then(|card| self.map.get(card))
                .map(|entry| Some(entry.credential))
                .ok_or_else(|| PanelError::NoCredential { card: card_text() }),
            Verdict::Duress => {
                let entry = card
                    .and_then(|card| self.map.get(card))
                    .ok_or_else(|| PanelError::NoCredential { card: card_text() })?;
                entry
                    .duress
                    .or(self.duress)
                    .map(Some)
                    .ok_or_else(|| PanelError::NoDuressCredential { card: card_text() })
            }
        }
    }

    /// A verified person: sends their credential number. Never blocks.
    pub fn credential_verified(&self, card: &CardId) -> Result<Option<Sent>, PanelError> {
        self.send(Verdict::Granted, Some(card))
    }

    /// A duress match: sends the duress number. Never blocks.
    pub fn duress(&self, card: &CardId) -> Result<Option<Sent>, PanelError> {
        self.send(Verdict::Duress, Some(card))
    }

    /// A denial: sends the denial code when one is configured. Never blocks.
    pub fn denied(&self, card: Option<&CardId>) -> Result<Option<Sent>, PanelError> {
        self.send(Verdict::Denied, card)
    }

    fn send(&self, verdict: Verdict, card: Option<&CardId>) -> Result<Option<Sent>, PanelError> {
        let Some(credential) = self.resolve(verdict, card)? else {
            return Ok(None);
        };
        let wiegand = self.deliver(credential.bits())?;
        Ok(Some(Sent {
            credential,
            wiegand,
        }))
    }

    fn deliver(&self, bits: WiegandBits) -> Result<Option<Sending>, PanelError> {
        match &self.transport {
            Transport::Osdp(requests) => {
                requests
                    .try_send(PdRequest::Present(bits))
                    .map_err(|error| match error {
                        mpsc::error::TrySendError::Full(_) => PanelError::OsdpBusy,
                        mpsc::error::TrySendError::Closed(_) => PanelError::OsdpStopped,
                    })?;
                Ok(None)
            }
            Transport::Wiegand(emitter) => Ok(Some(emitter.send(bits)?)),
        }
    }
}

/// The SCBK in a file: 32 hex digits, mode 0600, replaced atomically.
#[derive(Debug, Clone)]
pub struct FileKeyStore {
    path: PathBuf,
}

impl FileKeyStore {
    /// The store at `path`.
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
        }
    }

    /// The stored key; `None` when there is no file yet (install mode can set one up).
    pub fn load(&self) -> Result<Option<Key>, PanelError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let text = zeroize::Zeroizing::new(text);
                Key::from_hex(&text)
                    .map(Some)
                    .ok_or_else(|| PanelError::KeyFile {
                        path: self.path.clone(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "not 32 hex digits",
                        ),
                    })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PanelError::KeyFile {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl KeyStore for FileKeyStore {
    fn store(&mut self, key: &Key) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut temporary = self.path.as_os_str().to_os_string();
        temporary.push(".new");
        let temporary = PathBuf::from(temporary);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(format!("{}\n", key.to_hex().as_str()).as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &self.path)
    }
}

/// The running OSDP side: the gate keeps `output` and reads `events` (LED, buzzer, secure
/// channel refusals…); `task` ends when the line fails.
#[derive(Debug)]
pub struct OsdpLink {
    /// Requests to the PD task (card data, tamper, inputs).
    pub requests: mpsc::Sender<PdRequest>,
    /// What the PD reports.
    pub events: mpsc::UnboundedReceiver<PdEvent>,
    /// The task.
    pub task: tokio::task::JoinHandle<Result<(), SerialError>>,
}

/// Card reads the PD task holds for the panel before [`PanelError::OsdpBusy`].
pub const OSDP_QUEUE: usize = 8;

/// Opens the serial port, loads the key and starts the PD task (inside a tokio runtime).
pub fn start_osdp(settings: &OsdpSettings) -> Result<OsdpLink, PanelError> {
    let store = FileKeyStore::new(&settings.scbk_file);
    let key = store.load()?;
    let line =
        serial::open(&settings.device, settings.baud).map_err(|source| PanelError::Serial {
            device: settings.device.clone(),
            source,
        })?;
    let pd = Pd::new(
        PdConfig {
            address: settings.address,
            baud: settings.baud,
            identity: Identity {
                vendor: settings.vendor,
                model: 1,
                version: 1,
                serial: settings.serial,
                firmware: firmware_version(),
            },
            inputs: 1,
            require_secure: settings.require_secure,
            install_mode: settings.install_mode,
        },
        key,
        Box::new(store),
        system_random(),
    );
    let (requests, receiver) = mpsc::channel(OSDP_QUEUE);
    let (events_sender, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(serial::serve(line, pd, receiver, events_sender));
    Ok(OsdpLink {
        requests,
        events,
        task,
    })
}

fn firmware_version() -> [u8; 3] {
    let part = |text: &str| text.parse::<u8>().unwrap_or(0);
    [
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::WiegandFormat;

    fn settings() -> PanelSettings {
        crate::config::validate(&crate::config::RawPanel {
            protocol: Some("osdp".into()),
            credential_map: Some("m".into()),
            duress: None,
            denied: None,
            osdp: Some(crate::config::RawOsdp {
                device: Some("/dev/null".into()),
                scbk_file: Some("k".into()),
                ..Default::default()
            }),
            ..Default::default()
        })
        .expect("valid")
    }

    const MAP: &str = "version = 1\n[[card]]\ncard_id = \"0102030405060708090a0b0c0d0e0f10\"\nformat = \"h10301\"\nfacility = 12\nnumber = 3456\n";
    const CARD: CardId = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];

    fn panel(settings: &PanelSettings) -> (PanelOutput, mpsc::Receiver<PdRequest>) {
        let map = CredentialMap::parse(Path::new("m"), MAP).expect("map");
        let (sender, receiver) = mpsc::channel(1);
        (
            PanelOutput::new(settings, map, Transport::Osdp(sender)),
            receiver,
        )
    }

    #[test]
    fn a_grant_sends_the_mapped_number_and_an_unmapped_card_is_refused() {
        let (output, mut receiver) = panel(&settings());
        let sent = output
            .credential_verified(&CARD)
            .expect("sent")
            .expect("something");
        assert_eq!(sent.credential.number(), 3456);
        let Ok(PdRequest::Present(bits)) = receiver.try_recv() else {
            panic!("card data queued");
        };
        assert_eq!(bits, sent.credential.bits());
        let error = output.credential_verified(&[0; 16]).expect_err("unmapped");
        assert_eq!(
            error.to_string(),
            "card 00000000000000000000000000000000 has no credential number in the credential map: refused"
        );
        assert!(receiver.try_recv().is_err(), "nothing sent for it");
    }

    #[test]
    fn denial_sends_nothing_unless_configured_and_duress_needs_a_number() {
        let mut settings = settings();
        let (output, mut receiver) = panel(&settings);
        assert!(output.denied(Some(&CARD)).expect("ok").is_none());
        assert!(receiver.try_recv().is_err());
        assert!(matches!(
            output.duress(&CARD),
            Err(PanelError::NoDuressCredential { .. })
        ));
        settings.denied = Some(Credential::new(WiegandFormat::H10301, 12, 0).expect("fits"));
        settings.duress = Some(Credential::new(WiegandFormat::H10301, 12, 9999).expect("fits"));
        let (output, _receiver) = panel(&settings);
        assert_eq!(
            output
                .resolve(Verdict::Denied, None)
                .expect("ok")
                .map(|c| c.number()),
            Some(0)
        );
        assert_eq!(
            output
                .resolve(Verdict::Duress, Some(&CARD))
                .expect("ok")
                .map(|c| c.number()),
            Some(9999)
        );
    }

    #[test]
    fn the_key_file_round_trips_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scbk");
        let mut store = FileKeyStore::new(&path);
        assert!(store.load().expect("absent is fine").is_none());
        store.store(&Key::new([0xAB; 16])).expect("stored");
        assert_eq!(store.load().expect("read"), Some(Key::new([0xAB; 16])));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, "nope").expect("garble");
        assert!(matches!(store.load(), Err(PanelError::KeyFile { .. })));
    }
}
