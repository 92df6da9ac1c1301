//! The credential map: which credential number the panel knows each card by.
//!
//! The card id is 128 bits; panels take 26/34/37-bit numbers with a facility code, assigned by
//! whoever runs the panel. The map is a TOML file at the gate, signed by the site's issuer key
//! (the key that already certifies the cards), so that the gate trusts exactly the bindings the
//! issuer made, and a panel number can be given or changed without touching the card. Why the
//! gate and not the card: `docs/panel-integration.md`.
//!
//! ```toml
//! version = 1
//! [[card]]
//! card_id = "00112233445566778899aabbccddeeff"
//! format = "h10301"
//! facility = 12
//! number = 3456
//! duress_number = 3457   # optional: what the panel sees when the duress palm matched
//! ```
//!
//! The signature file beside it (`FILE.sig`) holds the hex ECDSA P-256 signature (`r || s`) over
//! [`SIGNATURE_CONTEXT`] followed by the file's bytes, exactly as stored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use palmgate_card::host::issuer::{IssuerKey, IssuerPublicKey};
use palmgate_card::protocol::cert;
use serde::Deserialize;

use crate::credential::{Credential, CredentialError, WiegandFormat};

/// Domain separation: a signature over a map can never be taken for one over anything else.
pub const SIGNATURE_CONTEXT: &[u8] = b"palmgate credential map v1\n";

/// The only version of the map format.
pub const MAP_VERSION: u32 = 1;

/// A card id (as certified by the issuer on the card).
pub type CardId = [u8; 16];

/// Why a map cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MapError {
    /// The map or its signature cannot be read.
    #[error("{path}: cannot read")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The signature file is not 64 bytes of hex.
    #[error("{path}: not a hex ECDSA P-256 signature (r || s, 64 bytes)")]
    BadSignatureFile {
        /// The signature file.
        path: PathBuf,
    },
    /// No configured issuer key verifies the signature.
    #[error("{path}: the signature does not verify with any configured issuer key")]
    NotSigned {
        /// The map.
        path: PathBuf,
    },
    /// The map is not valid TOML of the expected shape.
    #[error("{path}: {reason}")]
    Syntax {
        /// The map.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An entry is wrong.
    #[error("{path}: card[{index}] ({key}): {reason}")]
    Entry {
        /// The map.
        path: PathBuf,
        /// Position of the entry.
        index: usize,
        /// The key at fault.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMap {
    version: u32,
    #[serde(default)]
    card: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    card_id: String,
    format: String,
    facility: u32,
    number: u32,
    duress_number: Option<u32>,
}

/// One card's credential numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapEntry {
    /// What the panel sees for a grant.
    pub credential: Credential,
    /// What the panel sees for a duress match (same format and facility), when assigned.
    pub duress: Option<Credential>,
}

/// The verified map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialMap {
    entries: BTreeMap<CardId, MapEntry>,
}

impl CredentialMap {
    /// Reads `path` and `path.sig`, verifies the signature with any of `issuers`, parses it.
    pub fn load(path: &Path, issuers: &[IssuerPublicKey]) -> Result<Self, MapError> {
        let bytes = std::fs::read(path).map_err(|source| MapError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sig_path = signature_path(path);
        let sig_text = std::fs::read_to_string(&sig_path).map_err(|source| MapError::Io {
            path: sig_path.clone(),
            source,
        })?;
        let signature = hex::decode(sig_text.trim())
            .ok()
            .filter(|bytes| bytes.len() == 64)
            .ok_or(MapError::BadSignatureFile { path: sig_path })?;
        let message = signed_message(&bytes);
        if !issuers
            .iter()
            .any(|issuer| cert::verify(issuer.verifying_key(), &message, &signature).is_ok())
        {
            return Err(MapError::NotSigned {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| MapError::Syntax {
            path: path.to_path_buf(),
            reason: "not UTF-8 text".to_string(),
        })?;
        Self::parse(path, &text)
    }

    /// Parses a map's text (no signature check: [`CredentialMap::load`] does that first).
    pub fn parse(path: &Path, text: &str) -> Result<Self, MapError> {
        let raw: RawMap = toml::from_str(text).map_err(|error| MapError::Syntax {
            path: path.to_path_buf(),
            reason: error.message().to_string(),
        })?;
        if raw.version != MAP_VERSION {
            return Err(MapError::Syntax {
                path: path.to_path_buf(),
                reason: format!(
                    "version {} is not supported (only {MAP_VERSION})",
                    raw.version
                ),
            });
        }
        let mut entries = BTreeMap::new();
        for (index, entry) in raw.card.into_iter().enumerate() {
            let problem = |key: &'static str, reason: String| MapError::Entry {
                path: path.to_path_buf(),
                index,
                key,
                reason,
            };
            let card_id: CardId = hex::decode(entry.card_id.trim())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or_else(|| problem("card_id", "not 32 hex digits (16 bytes)".to_string()))?;
            let format = WiegandFormat::parse(&entry.format).ok_or_else(|| {
                problem(
                    "format",
                    format!(
                        "unknown format {:?} (one of h10301, h10306, h10304)",
                        entry.format
                    ),
                )
            })?;
            let field = |error: CredentialError| match error {
                CredentialError::FacilityTooLarge { .. } => problem("facility", error.to_string()),
                _ => problem("number", error.to_string()),
            };
            let credential =
                Credential::new(format, entry.facility, entry.number).map_err(field)?;
            let duress = entry
                .duress_number
                .map(|number| {
                    Credential::new(format, entry.facility, number)
                        .map_err(|error| problem("duress_number", error.to_string()))
                })
                .transpose()?;
            if duress == Some(credential) {
                return Err(problem(
                    "duress_number",
                    "equals the card's own number: the panel could not tell duress apart".into(),
                ));
            }
            if entries
                .insert(card_id, MapEntry { credential, duress })
                .is_some()
            {
                return Err(problem("card_id", "listed twice".to_string()));
            }
        }
        Ok(Self { entries })
    }

    /// The numbers of `card`, when the map has it.
    pub fn get(&self, card: &CardId) -> Option<&MapEntry> {
        self.entries.get(card)
    }

    /// Number of cards.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map lists no card.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Where the signature of `map` lives: `map` with `.sig` appended.
pub fn signature_path(map: &Path) -> PathBuf {
    let mut name = map.as_os_str().to_os_string();
    name.push(".sig");
    PathBuf::from(name)
}

fn signed_message(bytes: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + bytes.len());
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(bytes);
    message
}

/// Signs a map's bytes with the issuer key (run by the issuer); returns the signature file's text.
pub fn sign(map_bytes: &[u8], issuer: &IssuerKey) -> Result<String, MapError> {
    let key = SigningKey::from_slice(issuer.to_bytes().as_ref()).map_err(|_| MapError::Syntax {
        path: PathBuf::new(),
        reason: "the issuer key is not a P-256 scalar".to_string(),
    })?;
    Ok(format!(
        "{}\n",
        hex::encode(cert::sign(&key, &signed_message(map_bytes)))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = r#"
version = 1
[[card]]
card_id = "00112233445566778899aabbccddeeff"
format = "h10301"
facility = 12
number = 3456
duress_number = 3457
"#;

    fn write(dir: &Path, text: &str, issuer: &IssuerKey) -> PathBuf {
        let path = dir.join("credentials.toml");
        std::fs::write(&path, text).expect("write map");
        let signature = sign(text.as_bytes(), issuer).expect("sign");
        std::fs::write(signature_path(&path), signature).expect("write sig");
        path
    }

    #[test]
    fn a_signed_map_loads_and_maps_card_to_numbers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = IssuerKey::generate();
        let path = write(dir.path(), MAP, &issuer);
        let map = CredentialMap::load(&path, &[issuer.public_key()]).expect("loads");
        let card: CardId = hex::decode("00112233445566778899aabbccddeeff")
            .expect("hex")
            .try_into()
            .expect("16");
        let entry = map.get(&card).expect("listed");
        assert_eq!(entry.credential.number(), 3456);
        assert_eq!(entry.duress.map(|c| c.number()), Some(3457));
        assert!(map.get(&[0; 16]).is_none());
    }

    #[test]
    fn a_changed_map_or_another_issuer_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer = IssuerKey::generate();
        let path = write(dir.path(), MAP, &issuer);
        let other = IssuerKey::generate();
        assert!(matches!(
            CredentialMap::load(&path, &[other.public_key()]),
            Err(MapError::NotSigned { .. })
        ));
        std::fs::write(&path, MAP.replace("3456", "3458")).expect("tamper");
        assert!(matches!(
            CredentialMap::load(&path, &[issuer.public_key()]),
            Err(MapError::NotSigned { .. })
        ));
        std::fs::write(signature_path(&path), "zz").expect("garble");
        assert!(matches!(
            CredentialMap::load(&path, &[issuer.public_key()]),
            Err(MapError::BadSignatureFile { .. })
        ));
    }

    #[test]
    fn bad_entries_name_the_entry_and_key() {
        let path = Path::new("credentials.toml");
        let error = CredentialMap::parse(path, &MAP.replace("facility = 12", "facility = 300"))
            .expect_err("too large");
        assert_eq!(
            error.to_string(),
            "credentials.toml: card[0] (facility): facility code 300 does not fit h10301 (26 bits) (at most 255)"
        );
        let error = CredentialMap::parse(path, &MAP.replace("3457", "3456")).expect_err("same");
        assert!(error.to_string().contains("(duress_number)"), "{error}");
        let error = CredentialMap::parse(path, &MAP.replace("h10301", "h99")).expect_err("format");
        assert!(error.to_string().contains("card[0] (format)"), "{error}");
        let twice = format!("{MAP}{}", MAP.replace("version = 1", ""));
        let error = CredentialMap::parse(path, &twice).expect_err("twice");
        assert!(
            error
                .to_string()
                .contains("card[1] (card_id): listed twice"),
            "{error}"
        );
    }
}
