//! Signed remote commands: parsing, canonical encoding, signature, freshness and replay checks.
//!
//! A command arrives as JSON on `<prefix>/<gate>/cmd/<name>`:
//!
//! ```json
//! {"gate": "gate-1", "command": "unlock", "args": {"door": "main"},
//!  "timestamp": 1795575784, "nonce": "5f0e…(32 hex)", "signature": "…(hex)"}
//! ```
//!
//! The signature is ECDSA P-256 / SHA-256 by one of the configured operator keys over the
//! canonical encoding of (gate, command, arguments, timestamp, nonce) built by
//! [`canonical_message`]: each field as a 4-byte big-endian length followed by its UTF-8 bytes,
//! in this order: `"palmgate-command-v1"`, gate, command, the command's argument fields (see
//! [`Command::canonical_args`]), timestamp (decimal Unix seconds), nonce (lowercase hex). The
//! signature is hex, either the fixed 64-byte `r || s` form or DER (as `openssl dgst -sign`
//! writes it).
//!
//! Everything here is pure: time comes in as a parameter and the replay cache is a trait. Parsing
//! never panics on any input (a property test feeds it arbitrary bytes).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use serde::Deserialize;

use crate::config::files::{MAX_KEY_FILE_BYTES, read_bounded_to_string};
use crate::event::CardId;

/// Largest command payload accepted (a revocation list of ~25,000 cards).
pub const MAX_COMMAND_BYTES: usize = 1 << 20;
/// How far in the future a command's timestamp may be (clock skew between operator and gate).
pub const MAX_FUTURE_SKEW: Duration = Duration::from_secs(30);
const DOMAIN: &str = "palmgate-command-v1";
/// Shortest nonce accepted: 128 random bits never repeat by chance.
pub const MIN_NONCE_BYTES: usize = 16;
/// Longest nonce accepted.
pub const MAX_NONCE_BYTES: usize = 64;

/// A command the gate carries out after it verified it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Unlock a door once (as a grant would), for `duration_s` or the door's `unlock_s`.
    Unlock {
        /// Door name.
        door: String,
        /// How long, in seconds (1–3600); the door's configured time when absent.
        duration_s: Option<u32>,
    },
    /// Enter lockdown: refuse every presentation (on one door, or the whole gate).
    Lockdown {
        /// Door name; the whole gate when absent.
        door: Option<String>,
    },
    /// Leave lockdown.
    Release {
        /// Door name; the whole gate when absent.
        door: Option<String>,
    },
    /// Replace the revocation list.
    RevocationList {
        /// Version of the list; a list not newer than the current one is refused.
        version: u64,
        /// Revoked card ids.
        cards: Vec<CardId>,
    },
}

impl Command {
    /// The command's name (last topic level).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unlock { .. } => "unlock",
            Self::Lockdown { .. } => "lockdown",
            Self::Release { .. } => "release",
            Self::RevocationList { .. } => "revocation_list",
        }
    }

    /// Every command name.
    pub const NAMES: [&'static str; 4] = ["unlock", "lockdown", "release", "revocation_list"];

    /// The argument fields of the canonical encoding, in order.
    ///
    /// - `unlock`: `door=<door>`, `duration_s=<n>` (empty after `=` when absent)
    /// - `lockdown`, `release`: `door=<door>` (`*` for the whole gate)
    /// - `revocation_list`: `version=<n>`, `cards=<hex>,<hex>,…` (in the order given)
    pub fn canonical_args(&self) -> Vec<String> {
        match self {
            Self::Unlock { door, duration_s } => vec![
                format!("door={door}"),
                format!(
                    "duration_s={}",
                    duration_s.map(|d| d.to_string()).unwrap_or_default()
                ),
            ],
            Self::Lockdown { door } | Self::Release { door } => {
                vec![format!("door={}", door.as_deref().unwrap_or("*"))]
            }
            Self::RevocationList { version, cards } => vec![
                format!("version={version}"),
                format!(
                    "cards={}",
                    cards
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            ],
        }
    }

    fn args_json(&self) -> serde_json::Value {
        match self {
            Self::Unlock { door, duration_s } => match duration_s {
                Some(d) => serde_json::json!({"door": door, "duration_s": d}),
                None => serde_json::json!({"door": door}),
            },
            Self::Lockdown { door } | Self::Release { door } => match door {
                Some(door) => serde_json::json!({"door": door}),
                None => serde_json::json!({}),
            },
            Self::RevocationList { version, cards } => serde_json::json!({
                "version": version,
                "cards": cards.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
        }
    }

    fn from_args(name: &str, args: serde_json::Value) -> Result<Self, RefusalReason> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct UnlockArgs {
            door: String,
            #[serde(default)]
            duration_s: Option<u32>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct DoorArgs {
            #[serde(default)]
            door: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RevocationArgs {
            version: u64,
            cards: Vec<CardId>,
        }
        let args = if args.is_null() {
            serde_json::json!({})
        } else {
            args
        };
        let bad = |_| RefusalReason::InvalidArguments;
        let valid_door = |door: &str| !door.is_empty() && door.len() <= 64 && door != "*";
        let command = match name {
            "unlock" => {
                let a: UnlockArgs = serde_json::from_value(args).map_err(bad)?;
                if !valid_door(&a.door) || a.duration_s.is_some_and(|d| !(1..=3600).contains(&d)) {
                    return Err(RefusalReason::InvalidArguments);
                }
                Self::Unlock {
                    door: a.door,
                    duration_s: a.duration_s,
                }
            }
            "lockdown" | "release" => {
                let a: DoorArgs = serde_json::from_value(args).map_err(bad)?;
                if a.door.as_deref().is_some_and(|d| !valid_door(d)) {
                    return Err(RefusalReason::InvalidArguments);
                }
                if name == "lockdown" {
                    Self::Lockdown { door: a.door }
                } else {
                    Self::Release { door: a.door }
                }
            }
            "revocation_list" => {
                let a: RevocationArgs = serde_json::from_value(args).map_err(bad)?;
                Self::RevocationList {
                    version: a.version,
                    cards: a.cards,
                }
            }
            _ => return Err(RefusalReason::UnknownCommand),
        };
        Ok(command)
    }
}

/// The canonical bytes an operator signs.
pub fn canonical_message(gate: &str, command: &Command, timestamp: i64, nonce: &[u8]) -> Vec<u8> {
    let mut fields: Vec<String> = vec![DOMAIN.into(), gate.into(), command.name().into()];
    fields.extend(command.canonical_args());
    fields.push(timestamp.to_string());
    fields.push(hex::encode(nonce));
    let mut out = Vec::new();
    for field in fields {
        // Fields are bounded by MAX_COMMAND_BYTES, far below u32::MAX.
        out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(field.as_bytes());
    }
    out
}

/// Why a command was refused (the `reason` of its `command.refused` event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Larger than [`MAX_COMMAND_BYTES`].
    TooLarge,
    /// Not a well-formed command envelope.
    Malformed,
    /// The nonce is not 16 to 64 bytes of hex.
    BadNonce,
    /// Not one of [`Command::NAMES`].
    UnknownCommand,
    /// The topic names another command than the payload.
    TopicMismatch,
    /// The command is for another gate.
    WrongGate,
    /// No signature field (or an empty one).
    Unsigned,
    /// The signature does not verify under any operator key.
    BadSignature,
    /// Older than `mqtt.command_max_age_s`.
    Stale,
    /// Timestamp too far in the future.
    FromFuture,
    /// The nonce was seen before.
    Replayed,
    /// The arguments do not fit the command.
    InvalidArguments,
    /// The replay cache could not be read or written (refused to stay safe).
    ReplayCacheUnavailable,
    /// No operator key is configured: every command is refused.
    NoOperatorKeys,
}

impl RefusalReason {
    /// The reason as written in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::BadNonce => "bad_nonce",
            Self::UnknownCommand => "unknown_command",
            Self::TopicMismatch => "topic_mismatch",
            Self::WrongGate => "wrong_gate",
            Self::Unsigned => "unsigned",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::FromFuture => "from_future",
            Self::Replayed => "replayed",
            Self::InvalidArguments => "invalid_arguments",
            Self::ReplayCacheUnavailable => "replay_cache_unavailable",
            Self::NoOperatorKeys => "no_operator_keys",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused command: the reason, and the command name when it could be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
    /// The command's name from the topic, when it is a known one.
    pub command: Option<&'static str>,
}

/// A command that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCommand {
    /// What to do.
    pub command: Command,
    /// Fingerprint of the operator key that signed it (first 8 bytes of SHA-256 of its SPKI DER,
    /// hex).
    pub operator: String,
    /// The command's timestamp (Unix seconds).
    pub timestamp: i64,
    /// The nonce.
    pub nonce: Vec<u8>,
    /// A retained revocation list (state kept by the broker rather than a fresh action).
    pub retained_state: bool,
}

/// Remembers nonces so that a command is carried out at most once.
pub trait ReplayCache {
    /// Records `nonce` (of a command timestamped `timestamp`) and returns `Ok(true)`, or returns
    /// `Ok(false)` when it was already recorded. Must be durable before it returns.
    fn insert_new(&mut self, nonce: &[u8], timestamp: i64, now: i64) -> Result<bool, String>;

    /// Whether `nonce` was recorded (used to ignore retained copies of handled commands).
    fn contains(&self, nonce: &[u8]) -> Result<bool, String>;
}

/// An in-memory replay cache (tests; the daemon uses the persistent one in the outbox database).
#[derive(Debug, Default)]
pub struct MemoryReplayCache(HashMap<Vec<u8>, i64>);

impl ReplayCache for MemoryReplayCache {
    fn insert_new(&mut self, nonce: &[u8], timestamp: i64, _now: i64) -> Result<bool, String> {
        Ok(self.0.insert(nonce.to_vec(), timestamp).is_none())
    }

    fn contains(&self, nonce: &[u8]) -> Result<bool, String> {
        Ok(self.0.contains_key(nonce))
    }
}

/// An operator public key.
#[derive(Clone)]
pub struct OperatorKey {
    key: VerifyingKey,
    fingerprint: String,
}

impl fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorKey({})", self.fingerprint)
    }
}

/// An operator key file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("operator key {path}: {reason}")]
pub struct OperatorKeyError {
    /// The key file.
    pub path: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl OperatorKey {
    /// From a PEM SPKI (`-----BEGIN PUBLIC KEY-----`) P-256 public key.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let key = VerifyingKey::from_public_key_pem(pem.trim())
            .map_err(|error| format!("not a PEM P-256 public key (SPKI): {error}"))?;
        Ok(Self::from_verifying_key(key))
    }

    /// Reads a PEM SPKI key file.
    pub fn load(path: &Path) -> Result<Self, OperatorKeyError> {
        let error = |reason: String| OperatorKeyError {
            path: path.to_owned(),
            reason,
        };
        let text =
            read_bounded_to_string(path, MAX_KEY_FILE_BYTES).map_err(|e| error(e.to_string()))?;
        Self::from_pem(&text).map_err(error)
    }

    /// Reads every configured key file (`mqtt.operator_keys`).
    pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Self>, OperatorKeyError> {
        paths.iter().map(|path| Self::load(path)).collect()
    }

    fn from_verifying_key(key: VerifyingKey) -> Self {
        use sha2::{Digest, Sha256};
        let der = key
            .to_public_key_der()
            .map(|der| der.as_bytes().to_vec())
            .unwrap_or_default();
        let fingerprint = hex::encode(&Sha256::digest(&der)[..8]);
        Self { key, fingerprint }
    }

    /// First 8 bytes of SHA-256 over the key's SPKI DER, hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Signs commands: the operator side (tools, tests, the demo). The private key zeroizes on drop.
pub struct OperatorSigner {
    key: SigningKey,
}

impl fmt::Debug for OperatorSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OperatorSigner(REDACTED)")
    }
}

impl OperatorSigner {
    /// A new random key.
    pub fn generate() -> Result<Self, getrandom::Error> {
        loop {
            let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut())?;
            // Fails only for the zero scalar or one ≥ n (probability ≈ 2⁻³²): draw again.
            if let Ok(key) = SigningKey::from_slice(bytes.as_ref()) {
                return Ok(Self { key });
            }
        }
    }

    /// From a PEM private key: SEC1 (`-----BEGIN EC PRIVATE KEY-----`, as `openssl ecparam
    /// -genkey` writes it) or PKCS#8 (`-----BEGIN PRIVATE KEY-----`), P-256.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use p256::pkcs8::DecodePrivateKey;
        let pem = pem.trim();
        let secret = if pem.starts_with("-----BEGIN EC PRIVATE KEY-----") {
            p256::SecretKey::from_sec1_pem(pem)
                .map_err(|_| "not a P-256 SEC1 private key".to_string())?
        } else if pem.starts_with("-----BEGIN PRIVATE KEY-----") {
            p256::SecretKey::from_pkcs8_pem(pem)
                .map_err(|_| "not a P-256 PKCS#8 private key".to_string())?
        } else {
            return Err(
                "expected a PEM P-256 private key (-----BEGIN EC PRIVATE KEY----- or \
                        -----BEGIN PRIVATE KEY-----)"
                    .to_string(),
            );
        };
        Ok(Self {
            key: SigningKey::from(&secret),
        })
    }

    /// Reads a private key file ([`from_pem`](Self::from_pem)). A file that group or others
    /// may read is refused, as ssh does: the key signs door openings.
    pub fn load(path: &Path) -> Result<Self, OperatorKeyError> {
        use std::os::unix::fs::PermissionsExt;
        let error = |reason: String| OperatorKeyError {
            path: path.to_owned(),
            reason,
        };
        let metadata = std::fs::metadata(path).map_err(|e| error(e.to_string()))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(error(format!(
                "private key readable by group or others (mode {mode:03o}); run chmod 600 on it"
            )));
        }
        let text = zeroize::Zeroizing::new(
            read_bounded_to_string(path, MAX_KEY_FILE_BYTES).map_err(|e| error(e.to_string()))?,
        );
        Self::from_pem(&text).map_err(error)
    }

    /// The private key as PKCS#8 PEM (to write a key file; tests and tools).
    pub fn to_pkcs8_pem(&self) -> Result<zeroize::Zeroizing<String>, String> {
        use p256::pkcs8::EncodePrivateKey;
        p256::SecretKey::from(&self.key)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|error| error.to_string())
    }

    /// The public key as PEM SPKI (what goes into `mqtt.operator_keys`).
    pub fn public_key_pem(&self) -> String {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The public key.
    pub fn operator_key(&self) -> OperatorKey {
        OperatorKey::from_verifying_key(*self.key.verifying_key())
    }

    /// The JSON payload of a signed command.
    pub fn sign(&self, gate: &str, command: &Command, timestamp: i64, nonce: &[u8]) -> Vec<u8> {
        let signature: Signature = self
            .key
            .sign(&canonical_message(gate, command, timestamp, nonce));
        serde_json::to_vec(&serde_json::json!({
            "gate": gate,
            "command": command.name(),
            "args": command.args_json(),
            "timestamp": timestamp,
            "nonce": hex::encode(nonce),
            "signature": hex::encode(signature.to_bytes()),
        }))
        .unwrap_or_default()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    gate: String,
    command: String,
    #[serde(default)]
    args: serde_json::Value,
    timestamp: i64,
    nonce: String,
    #[serde(default)]
    signature: Option<String>,
}

/// Checks commands for one gate.
#[derive(Debug, Clone)]
pub struct CommandVerifier {
    gate: String,
    keys: Vec<OperatorKey>,
    max_age: Duration,
}

/// What to do with a command message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Carry it out.
    Accept(VerifiedCommand),
    /// Refuse it and report the refusal.
    Refuse(Refusal),
    /// A retained copy of a command already handled: ignore silently.
    AlreadyHandled,
}

impl CommandVerifier {
    /// A verifier for `gate` trusting `keys`, refusing commands older than `max_age`.
    pub fn new(gate: &str, keys: Vec<OperatorKey>, max_age: Duration) -> Self {
        Self {
            gate: gate.to_owned(),
            keys,
            max_age,
        }
    }

    /// Checks one command message: `topic_command` is the last topic level, `retained` whether
    /// the broker delivered it from its retained store, `now` Unix seconds.
    pub fn verify(
        &self,
        topic_command: &str,
        payload: &[u8],
        retained: bool,
        now: i64,
        replay: &mut dyn ReplayCache,
    ) -> Verdict {
        let known = Command::NAMES
            .iter()
            .copied()
            .find(|name| *name == topic_command);
        let refuse = |reason| {
            Verdict::Refuse(Refusal {
                reason,
                command: known,
            })
        };
        if known.is_none() {
            return refuse(RefusalReason::UnknownCommand);
        }
        if payload.len() > MAX_COMMAND_BYTES {
            return refuse(RefusalReason::TooLarge);
        }
        let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
            return refuse(RefusalReason::Malformed);
        };
        if envelope.command != topic_command {
            return refuse(RefusalReason::TopicMismatch);
        }
        let nonce = match hex::decode(&envelope.nonce) {
            Ok(nonce) if (MIN_NONCE_BYTES..=MAX_NONCE_BYTES).contains(&nonce.len()) => nonce,
            _ => return refuse(RefusalReason::BadNonce),
        };
        let command = match Command::from_args(topic_command, envelope.args) {
            Ok(command) => command,
            Err(reason) => return refuse(reason),
        };
        if envelope.gate != self.gate {
            return refuse(RefusalReason::WrongGate);
        }
        let Some(signature_hex) = envelope.signature.filter(|s| !s.is_empty()) else {
            return refuse(RefusalReason::Unsigned);
        };
        if self.keys.is_empty() {
            return refuse(RefusalReason::NoOperatorKeys);
        }
        let signature = hex::decode(&signature_hex).ok().and_then(|bytes| {
            if bytes.len() == 64 {
                Signature::from_slice(&bytes).ok()
            } else {
                Signature::from_der(&bytes).ok()
            }
        });
        let Some(signature) = signature else {
            return refuse(RefusalReason::BadSignature);
        };
        let message = canonical_message(&self.gate, &command, envelope.timestamp, &nonce);
        let Some(operator) = self
            .keys
            .iter()
            .find(|k| k.key.verify(&message, &signature).is_ok())
        else {
            return refuse(RefusalReason::BadSignature);
        };
        // A retained copy of a command already carried out is the broker's memory, not an attack.
        if retained && replay.contains(&nonce).unwrap_or(false) {
            return Verdict::AlreadyHandled;
        }
        // A retained revocation list is state, not an action: it is how a gate that was offline
        // when the operator revoked gets the list. Its age does not matter because the gate
        // applies a list only if its version is newer than the one in force (no rollback), so it
        // is exempt from the staleness check. Actions (unlock, lockdown, release) never are.
        let retained_state = retained && matches!(command, Command::RevocationList { .. });
        let max_age = i64::try_from(self.max_age.as_secs()).unwrap_or(i64::MAX);
        let skew = i64::try_from(MAX_FUTURE_SKEW.as_secs()).unwrap_or(i64::MAX);
        if !retained_state && envelope.timestamp < now.saturating_sub(max_age) {
            return refuse(RefusalReason::Stale);
        }
        if envelope.timestamp > now.saturating_add(skew) {
            return refuse(RefusalReason::FromFuture);
        }
        // The nonce of an old retained list is remembered from now on (not from its timestamp),
        // so that the broker's redeliveries on later reconnects stay silent for the cache's
        // whole retention.
        let remembered_as = if retained_state {
            envelope.timestamp.max(now)
        } else {
            envelope.timestamp
        };
        match replay.insert_new(&nonce, remembered_as, now) {
            Ok(true) => {}
            Ok(false) => return refuse(RefusalReason::Replayed),
            Err(error) => {
                tracing::error!(%error, "command replay cache unavailable");
                return refuse(RefusalReason::ReplayCacheUnavailable);
            }
        }
        Verdict::Accept(VerifiedCommand {
            command,
            operator: operator.fingerprint.clone(),
            timestamp: envelope.timestamp,
            nonce,
            retained_state,
        })
    }
}

#[cfg(test)]
mod tests;
