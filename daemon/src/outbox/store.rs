//! The storage engine behind the outbox and the command replay cache.
//!
//! The outbox decides *what* is durable and when (group commit, ids, damage reports); a [`Store`]
//! only keeps sealed records, a few metadata values and small state tables, and commits a
//! [`Batch`] atomically and durably. The engine in use is redb ([`super::redb_store`]); the
//! reasons, and the fault matrix that chose it over sled, are in docs/design-notes.md and
//! docs/reliability.md.

use std::io;

use crate::event::EventId;

/// Metadata keys of the outbox in its store.
pub mod meta {
    /// The gate id the database belongs to.
    pub const GATE: &str = "gate";
    /// 32 random bytes: the record key's salt.
    pub const SALT: &str = "salt";
    /// Openings so far (u32, big-endian): part of every record's nonce.
    pub const EPOCH: &str = "epoch";
    /// The highest id ever written to the store (u64, big-endian).
    pub const ISSUED_THROUGH: &str = "issued_through";
    /// Every id up to this was delivered or reported lost (u64, big-endian).
    pub const ACCOUNTED_THROUGH: &str = "accounted_through";
}

/// One atomic, durable write: all of it is on disk when [`Store::commit`] returns, or none.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Sealed records to store, by id.
    pub insert: Vec<(EventId, Vec<u8>)>,
    /// Ids to delete (delivered, or reported lost).
    pub remove: Vec<EventId>,
    /// Metadata values to set.
    pub meta: Vec<(&'static str, Vec<u8>)>,
}

impl Batch {
    /// Whether the batch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.insert.is_empty() && self.remove.is_empty() && self.meta.is_empty()
    }
}

/// Storage failures, sorted by what the outbox does about them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine found its files damaged (checksum, structure). The outbox sets them aside.
    #[error("database damaged: {0}")]
    Damaged(String),
    /// Reading or writing failed (a full disk, an I/O error). The outbox keeps what it could not
    /// write in memory and retries. (The I/O error is said in the text, so it is not also a
    /// `source()`: a printed chain says it once.)
    #[error("storage I/O: {0}")]
    Io(io::Error),
    /// Another process holds the database.
    #[error("database is in use by another process")]
    Locked,
    /// Any other engine failure.
    #[error("database: {0}")]
    Engine(String),
}

impl StoreError {
    /// Whether the failure is a full disk.
    pub fn is_no_space(&self) -> bool {
        matches!(self, Self::Io(error) if error.kind() == io::ErrorKind::StorageFull)
    }
}

/// A storage engine for the outbox.
pub trait Store: Send + Sync {
    /// Commits `batch` atomically and durably (fsync).
    fn commit(&self, batch: &Batch) -> Result<(), StoreError>;
    /// Up to `limit` records with ids from `start` on, in id order.
    fn records_from(
        &self,
        start: EventId,
        limit: usize,
    ) -> Result<Vec<(EventId, Vec<u8>)>, StoreError>;
    /// Every stored id, in order (start-up accounting).
    fn ids(&self) -> Result<Vec<EventId>, StoreError>;
    /// Whether a record is stored.
    fn contains(&self, id: EventId) -> Result<bool, StoreError>;
    /// A metadata value.
    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Inserts `key` into state table `table` unless present, durably. Returns whether it was new.
    fn state_insert_new(&self, table: &str, key: &[u8], value: &[u8]) -> Result<bool, StoreError>;
    /// Whether state table `table` holds `key`.
    fn state_contains(&self, table: &str, key: &[u8]) -> Result<bool, StoreError>;
    /// Deletes the entries of `table` whose value `expired` says so.
    fn state_prune(&self, table: &str, expired: &dyn Fn(&[u8]) -> bool) -> Result<(), StoreError>;
}

/// A u64 metadata value.
pub fn decode_u64(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_be_bytes)
}
