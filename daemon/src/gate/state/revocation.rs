//! The revocation list: card ids that must be denied, versioned, persisted as JSON.
//!
//! Updates arrive as signed MQTT commands; a list is applied only when its version is newer than
//! the one in force (an old, replayed list cannot un-revoke a card), and is written atomically
//! (temporary file, fsync, rename) before it takes effect.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::event::CardId;

/// Revocation list errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// The file could not be read or written.
    #[error("revocation list {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a revocation list.
    #[error("revocation list {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The update is not newer than the list in force.
    #[error("version {offered} is not newer than version {current} in force")]
    NotNewer {
        /// The update's version.
        offered: u64,
        /// The version in force.
        current: u64,
    },
}

/// The list in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationList {
    version: u64,
    cards: BTreeSet<CardId>,
}

impl RevocationList {
    /// Reads `path`; a missing file is an empty list at version 0.
    pub fn load(path: &Path) -> Result<Self, RevocationError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| RevocationError::Invalid {
                path: path.into(),
                reason: error.to_string(),
            }),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(RevocationError::Io {
                path: path.into(),
                source,
            }),
        }
    }

    /// The revoked cards.
    pub fn cards(&self) -> &BTreeSet<CardId> {
        &self.cards
    }

    /// The version in force.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Applies a newer list, writing it to `path` first when given.
    pub fn replace(
        &mut self,
        version: u64,
        cards: BTreeSet<CardId>,
        path: Option<&Path>,
    ) -> Result<(), RevocationError> {
        if version <= self.version {
            return Err(RevocationError::NotNewer {
                offered: version,
                current: self.version,
            });
        }
        let next = Self { version, cards };
        if let Some(path) = path {
            next.save(path)?;
        }
        *self = next;
        Ok(())
    }

    fn save(&self, path: &Path) -> Result<(), RevocationError> {
        let io = |source| RevocationError::Io {
            path: path.into(),
            source,
        };
        let json = serde_json::to_vec_pretty(self).map_err(|error| RevocationError::Invalid {
            path: path.into(),
            reason: error.to_string(),
        })?;
        super::durable::replace_file(path, &json).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(byte: u8) -> CardId {
        CardId::new(&[byte; 16]).expect("card id")
    }

    #[test]
    fn newer_lists_replace_and_persist_older_ones_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("revoked.json");
        let mut list = RevocationList::load(&path).expect("missing file is empty");
        assert_eq!(list.version(), 0);
        list.replace(3, BTreeSet::from([card(1), card(2)]), Some(&path))
            .expect("newer");
        assert_eq!(RevocationList::load(&path).expect("reload"), list);
        let error = list
            .replace(3, BTreeSet::new(), Some(&path))
            .expect_err("same version");
        assert_eq!(
            error.to_string(),
            "version 3 is not newer than version 3 in force"
        );
        assert!(
            list.cards().contains(&card(1)),
            "a refused update changes nothing"
        );
        assert_eq!(
            RevocationList::load(&path).expect("reload").cards().len(),
            2
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("revoked.json");
        std::fs::write(&path, b"{\"version\": 1, \"cards\": [\"zz\"]}").expect("write");
        assert!(matches!(
            RevocationList::load(&path),
            Err(RevocationError::Invalid { .. })
        ));
    }
}
