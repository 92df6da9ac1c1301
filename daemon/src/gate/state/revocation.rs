//! The revocation list: card ids that must be denied, versioned, persisted as JSON.
//!
//! Updates arrive as signed MQTT commands; a list is applied only when its version is newer than
//! the one in force (an old, replayed list cannot un-revoke a card), and is written atomically
//! ([`super::durable`]) before it takes effect.
//!
//! The operator's side (`palmgate revoke`) edits the same file shape with
//! [`RevocationList::apply`]: versions are `max(previous + 1, now in Unix milliseconds)`
//! ([`next_version`]), so that they grow across operator stations sharing no state (the clock
//! makes a later publication win) and on one station whose clock went back (`previous + 1`).

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
    /// An operator asked to take off a card that is not on the list.
    #[error("card {card} is not on the revocation list")]
    NotListed {
        /// The card.
        card: CardId,
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
    /// Reads `path`; a missing file is an empty list at version 0. Only a regular file of at most
    /// [`MAX_REVOCATION_LIST_BYTES`](crate::config::files::MAX_REVOCATION_LIST_BYTES) is read: a
    /// reload (SIGHUP) must not hang on a FIFO or read a device forever.
    pub fn load(path: &Path) -> Result<Self, RevocationError> {
        use crate::config::files::{MAX_REVOCATION_LIST_BYTES, read_bounded};
        match read_bounded(path, MAX_REVOCATION_LIST_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|error| RevocationError::Invalid {
                path: path.into(),
                reason: error.to_string(),
            }),
            Err(error) if error.is_not_found() => Ok(Self::default()),
            Err(error) => Err(RevocationError::Io {
                path: path.into(),
                source: std::io::Error::other(error),
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

    /// Writes the list to `path` durably, mode 0600 (see [`super::durable`]).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), RevocationError> {
        let io = |source| RevocationError::Io {
            path: path.into(),
            source,
        };
        let mut json =
            serde_json::to_vec_pretty(self).map_err(|error| RevocationError::Invalid {
                path: path.into(),
                reason: error.to_string(),
            })?;
        json.push(b'\n');
        super::durable::replace_file(path, &json).map_err(io)?;
        Ok(())
    }

    /// The list after an operator's `change`, with its version bumped ([`next_version`]), and
    /// whether the change did anything (revoking a revoked card only publishes again).
    ///
    /// # Errors
    /// [`RevocationError::NotListed`]: taking off a card that is not on the list.
    pub fn apply(&self, change: Change<'_>, now_ms: u64) -> Result<(Self, bool), RevocationError> {
        let mut cards = self.cards.clone();
        let changed = match change {
            Change::Revoke(card) => cards.insert(card.clone()),
            Change::Unrevoke(card) => {
                if !cards.remove(card) {
                    return Err(RevocationError::NotListed { card: card.clone() });
                }
                true
            }
            Change::Republish => false,
        };
        let next = Self {
            version: next_version(self.version, now_ms),
            cards,
        };
        Ok((next, changed))
    }
}

/// What an operator's revocation changes in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// Put the card on the list.
    Revoke(&'a CardId),
    /// Take it off.
    Unrevoke(&'a CardId),
    /// Nothing (publish again).
    Republish,
}

/// The next version: newer than `previous` and, normally, than anything another station
/// published before `now_ms`.
pub fn next_version(previous: u64, now_ms: u64) -> u64 {
    previous.saturating_add(1).max(now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(byte: u8) -> CardId {
        CardId::new(&[byte; 16]).expect("card id")
    }

    #[test]
    fn a_device_or_a_fifo_in_place_of_the_list_is_refused_not_read_forever() {
        // A reload re-reads the list: /dev/zero once made it read until memory ran out.
        let error = RevocationList::load(Path::new("/dev/zero")).expect_err("a device");
        assert!(matches!(error, RevocationError::Io { .. }), "{error:?}");
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("revoked.json");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo");
        assert!(status.success());
        // With no writer, a blocking open would never return.
        let error = RevocationList::load(&fifo).expect_err("a FIFO");
        assert!(matches!(error, RevocationError::Io { .. }), "{error:?}");
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

    #[test]
    fn versions_grow_on_one_station_and_across_stations() {
        // The clock wins when it is ahead…
        assert_eq!(next_version(0, 1_795_575_784_000), 1_795_575_784_000);
        // …and a station whose clock went back (or two changes in one millisecond) still grows.
        assert_eq!(
            next_version(1_795_575_784_000, 1_795_575_000_000),
            1_795_575_784_001
        );
        assert_eq!(next_version(u64::MAX, 0), u64::MAX);
        // Two stations without shared state: the later publication has the higher version.
        let station_a = next_version(5, 1_795_575_784_000);
        let station_b = next_version(0, 1_795_575_784_250);
        assert!(station_b > station_a);
    }

    #[test]
    fn revoke_unrevoke_and_republish_change_the_list_as_asked() {
        let empty = RevocationList::default();
        let (one, changed) = empty.apply(Change::Revoke(&card(1)), 1000).expect("revoke");
        assert!(changed);
        assert_eq!(one.version(), 1000);
        assert_eq!(one.cards(), &BTreeSet::from([card(1)]));
        let (again, changed) = one.apply(Change::Revoke(&card(1)), 1000).expect("again");
        assert!(!changed, "already revoked");
        assert_eq!(
            again.version(),
            1001,
            "still a new version, published again"
        );
        let (two, _) = again
            .apply(Change::Revoke(&card(2)), 900)
            .expect("second card");
        assert_eq!(two.version(), 1002);
        assert_eq!(two.cards().len(), 2);
        let (restored, _) = two
            .apply(Change::Unrevoke(&card(1)), 5000)
            .expect("unrevoke");
        assert_eq!(restored.cards(), &BTreeSet::from([card(2)]));
        assert_eq!(restored.version(), 5000);
        let error = restored
            .apply(Change::Unrevoke(&card(7)), 6000)
            .expect_err("not listed");
        assert!(
            error.to_string().contains("not on the revocation list"),
            "{error}"
        );
        let (same, changed) = restored.apply(Change::Republish, 6000).expect("republish");
        assert!(!changed);
        assert_eq!(same.cards(), restored.cards());
        assert_eq!(same.version(), 6000);
    }

    #[test]
    fn the_list_file_is_written_atomically_private_and_readable_by_the_gate() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("site-revoked.json");
        let missing = RevocationList::load(&path).expect("a missing file is an empty list");
        assert_eq!(missing.version(), 0);
        let (list, _) = missing.apply(Change::Revoke(&card(3)), 42).expect("revoke");
        list.save(&path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The gate's own loader reads the operator's file: same shape.
        assert_eq!(RevocationList::load(&path).expect("reload"), list);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("site-revoked.json")]);
        // A corrupt list is an error, never silently an empty list (which would un-revoke).
        std::fs::write(&path, b"{\"version\": 3}").expect("write");
        assert!(RevocationList::load(&path).is_err());
    }
}
