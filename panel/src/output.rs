//! [`PanelOutput`]: what the gate calls after its decision, and the start of the OSDP side.
//!
//! The gate decides (card certificate, palm match on the card, policy); the panel gets the
//! person's credential number for a grant, the configured denial code (or nothing) for a denial,
//! and the duress number for a duress match. Which number a card has comes from the signed
//! [`CredentialMap`]; a card without one is refused with [`PanelError::NoCredential`] and nothing
//! is sent.

use std::path::{Path, PathBuf};

use palmgate_card::host::file::{Durability, replace_file};
use tokio::sync::mpsc;

use crate::config::{OsdpSettings, PanelSettings};
use crate::credential::{Credential, WiegandBits};
use crate::credential_map::{CardId, CredentialMap};
use crate::osdp::command::ComSet;
use crate::osdp::pd::{Pd, PdConfig, PdStore, system_random};
use crate::osdp::reply::Identity;
use crate::osdp::secure::Key;
use crate::osdp::serial::{self, LinkEvent, Opener, PdRequest, SerialError, SerialPort};
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
    /// The key file or the COMSET file cannot be read, or holds nonsense.
    #[error("{path}: OSDP state file")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The serial port cannot be opened at start-up.
    #[error(transparent)]
    Serial(SerialError),
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

    /// Sends what `verdict` on `card` gives the panel (nothing for a denial without a denial
    /// code). Never blocks.
    pub fn send(
        &self,
        verdict: Verdict,
        card: Option<&CardId>,
    ) -> Result<Option<Sent>, PanelError> {
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

/// What the panel set, in files: the SCBK (`scbk_file`: 32 hex digits, mode 0600) and the
/// communication settings of the last `osdp_COMSET` ([`FileStore::comset_path`]: `address` and
/// `baud`, which take precedence over the configuration's at the next start). Both are replaced
/// atomically (temporary file, fsync, rename, fsync of the directory).
#[derive(Debug, Clone)]
pub struct FileStore {
    key: PathBuf,
    comset: PathBuf,
}

/// The communication settings file as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ComSetFile {
    address: u8,
    baud: u32,
}

impl FileStore {
    /// The store of the key file `scbk_file` (the COMSET file sits beside it).
    pub fn new(scbk_file: &Path) -> Self {
        Self {
            key: scbk_file.to_path_buf(),
            comset: Self::comset_path(scbk_file),
        }
    }

    /// Where the panel's `osdp_COMSET` settings are kept: `osdp-comset.toml` in the directory of
    /// the key file (which the gate can write: `osdp_KEYSET` writes there too).
    pub fn comset_path(scbk_file: &Path) -> PathBuf {
        scbk_file.with_file_name("osdp-comset.toml")
    }

    /// The stored key; `None` when there is no file yet (install mode can set one up).
    pub fn load_key(&self) -> Result<Option<Key>, PanelError> {
        let Some(text) = self.read(&self.key)? else {
            return Ok(None);
        };
        Key::from_hex(&text)
            .map(Some)
            .ok_or_else(|| self.invalid(&self.key, "not 32 hex digits".to_string()))
    }

    /// The settings of the last `osdp_COMSET`; `None` when the panel never sent one.
    pub fn load_comset(&self) -> Result<Option<ComSet>, PanelError> {
        let Some(text) = self.read(&self.comset)? else {
            return Ok(None);
        };
        let file: ComSetFile = toml::from_str(&text)
            .map_err(|error| self.invalid(&self.comset, error.message().to_string()))?;
        let settings = ComSet {
            address: file.address,
            baud: file.baud,
        };
        if !settings.is_acceptable() {
            return Err(self.invalid(
                &self.comset,
                format!(
                    "address {} / baud {} is not usable (address 0 to 126, baud one of {:?})",
                    settings.address,
                    settings.baud,
                    crate::osdp::command::comset::BAUD_RATES
                ),
            ));
        }
        Ok(Some(settings))
    }

    fn read(&self, path: &Path) -> Result<Option<zeroize::Zeroizing<String>>, PanelError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(zeroize::Zeroizing::new(text))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PanelError::StateFile {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn invalid(&self, path: &Path, reason: String) -> PanelError {
        PanelError::StateFile {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        }
    }
}

impl PdStore for FileStore {
    fn store_key(&mut self, key: &Key) -> std::io::Result<()> {
        let text = zeroize::Zeroizing::new(format!("{}\n", key.to_hex().as_str()));
        replace_file(&self.key, text.as_bytes(), Durability::PowerLoss)
    }

    fn store_comset(&mut self, settings: &ComSet) -> std::io::Result<()> {
        let text = format!(
            "# Set by the access panel (osdp_COMSET); takes precedence over [panel.osdp].\naddress = {}\nbaud = {}\n",
            settings.address, settings.baud
        );
        replace_file(&self.comset, text.as_bytes(), Durability::PowerLoss)
    }
}

/// The running OSDP side: the gate keeps `requests` (in its [`PanelOutput`]) and reads `events`
/// (LED, buzzer, secure channel refusals…, and the port lost or opened again: the gate asks for
/// a reopen with [`PdRequest::Reopen`], see [`serial::run`]); `task` ends when `requests` closes.
#[derive(Debug)]
pub struct OsdpLink {
    /// Requests to the PD task (card data, tamper, inputs, reopen).
    pub requests: mpsc::Sender<PdRequest>,
    /// What the PD and the port report.
    pub events: mpsc::UnboundedReceiver<LinkEvent>,
    /// The task.
    pub task: tokio::task::JoinHandle<()>,
    /// The address and speed in force.
    pub in_force: ComSet,
    /// Whether they come from the panel's last `osdp_COMSET` rather than the configuration.
    pub set_by_panel: bool,
}

/// Card reads the PD task holds for the panel before [`PanelError::OsdpBusy`].
pub const OSDP_QUEUE: usize = 8;

/// Opens the serial port, loads the key and the panel's last COMSET, and starts the PD task
/// (inside a tokio runtime). SCBK-D is accepted only while `install_mode` is set **and** no key
/// has been installed: a gate restarted after `osdp_KEYSET` refuses the default key whatever
/// its configuration says.
pub fn start_osdp(settings: &OsdpSettings) -> Result<OsdpLink, PanelError> {
    let store = FileStore::new(&settings.scbk_file);
    let key = store.load_key()?;
    let comset = store.load_comset()?;
    let in_force = comset.unwrap_or(ComSet {
        address: settings.address,
        baud: settings.baud,
    });
    // At start-up a port that cannot be opened is a configuration error, reported at once;
    // once running, the gate opens it again after a failure.
    let mut port = SerialPort::new(settings.device.clone());
    let line = port.open(in_force.baud).map_err(PanelError::Serial)?;
    let pd = Pd::new(
        pd_config(settings, in_force, key.is_some()),
        key,
        Box::new(store),
        system_random(),
    );
    let (requests, receiver) = mpsc::channel(OSDP_QUEUE);
    let (events_sender, events) = mpsc::unbounded_channel();
    let task = tokio::spawn(serial::run(port, line, pd, receiver, events_sender));
    Ok(OsdpLink {
        requests,
        events,
        task,
        in_force,
        set_by_panel: comset.is_some(),
    })
}

/// The PD's settings: the address and speed in force, and install mode only while no key is
/// installed.
fn pd_config(settings: &OsdpSettings, in_force: ComSet, key_installed: bool) -> PdConfig {
    PdConfig {
        address: in_force.address,
        baud: in_force.baud,
        identity: Identity {
            vendor: settings.vendor,
            model: 1,
            version: 1,
            serial: settings.serial,
            firmware: firmware_version(),
        },
        inputs: 1,
        require_secure: settings.require_secure,
        install_mode: settings.install_mode && !key_installed,
    }
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
    fn install_mode_ends_for_good_once_a_key_is_installed() {
        let settings = settings();
        let crate::config::PanelProtocol::Osdp(mut osdp) = settings.protocol else {
            panic!("osdp");
        };
        osdp.install_mode = true;
        let in_force = ComSet {
            address: 3,
            baud: 19200,
        };
        let config = pd_config(&osdp, in_force, false);
        assert!(config.install_mode, "commissioning: SCBK-D accepted");
        assert_eq!((config.address, config.baud), (3, 19200));
        assert!(
            !pd_config(&osdp, in_force, true).install_mode,
            "restarted after KEYSET: SCBK-D refused although the file still says install_mode"
        );
    }

    #[test]
    fn the_key_file_round_trips_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("scbk");
        let mut store = FileStore::new(&path);
        assert!(store.load_key().expect("absent is fine").is_none());
        store.store_key(&Key::new([0xAB; 16])).expect("stored");
        assert_eq!(store.load_key().expect("read"), Some(Key::new([0xAB; 16])));
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            !dir.path().join("scbk.new").exists(),
            "no temporary file left"
        );
        std::fs::write(&path, "nope").expect("garble");
        assert!(matches!(
            store.load_key(),
            Err(PanelError::StateFile { .. })
        ));
    }

    #[test]
    fn the_panels_comset_is_kept_beside_the_key_and_checked_when_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("osdp-scbk");
        let mut store = FileStore::new(&key);
        assert!(store.load_comset().expect("absent is fine").is_none());
        let settings = ComSet {
            address: 5,
            baud: 38400,
        };
        store.store_comset(&settings).expect("stored");
        assert_eq!(
            FileStore::new(&key).load_comset().expect("read"),
            Some(settings)
        );
        let path = FileStore::comset_path(&key);
        assert_eq!(path, dir.path().join("osdp-comset.toml"));
        std::fs::write(&path, "address = 127\nbaud = 9600\n").expect("edit");
        let error = store.load_comset().expect_err("broadcast address");
        assert!(
            error_chain(&error).contains("address 127 / baud 9600 is not usable"),
            "{}",
            error_chain(&error)
        );
        std::fs::write(&path, "address = 1\n").expect("edit");
        let error = store.load_comset().expect_err("no baud");
        assert!(
            error_chain(&error).contains("missing field `baud`"),
            "{}",
            error_chain(&error)
        );
    }

    fn error_chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}
