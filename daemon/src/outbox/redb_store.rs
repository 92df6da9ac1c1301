//! [`Store`] on redb: one file, copy-on-write B-trees, checksummed pages and commit slots.
//!
//! - Every [`Store::commit`] is one write transaction with immediate durability and two-phase
//!   commit (the commit slot in use is always valid, whatever a power cut interrupts).
//! - The file's integrity is checked when it is opened: damage (truncation, overwritten or
//!   flipped bytes) is reported as [`StoreError::Damaged`] instead of being trusted.
//! - redb latches an I/O failure (a full disk): every later call fails until the database is
//!   opened again. This store therefore drops its handle after an I/O failure and opens the file
//!   again on the next call, which is how the outbox recovers from a full disk without a restart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::store::{Batch, Store, StoreError};
use crate::event::EventId;

const EVENTS: TableDefinition<'static, u64, &'static [u8]> = TableDefinition::new("events");
const META: TableDefinition<'static, &'static str, &'static [u8]> = TableDefinition::new("meta");
/// The outbox reads a record once: a small cache keeps the daemon's memory low.
const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// The outbox store in one redb file.
pub struct RedbStore {
    path: PathBuf,
    /// `None` after an I/O failure, until the next call opens the file again. Calls clone the
    /// handle and release the lock, so reads never wait behind a commit's fsync.
    db: Mutex<Option<Arc<Database>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish()
    }
}

impl RedbStore {
    /// Opens (or creates) the database file, checking its integrity.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // redb would make a fresh database of an empty file: an existing file is never empty
        // (truncated to nothing), so that is damage, not a new start.
        if std::fs::metadata(path).is_ok_and(|meta| meta.len() == 0) {
            return Err(StoreError::Damaged(format!(
                "{} is empty (truncated)",
                path.display()
            )));
        }
        let db = open_database(path)?;
        Ok(Self {
            path: path.to_owned(),
            db: Mutex::new(Some(Arc::new(db))),
        })
    }

    fn handle(&self) -> MutexGuard<'_, Option<Arc<Database>>> {
        self.db
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `f` on the database, opening it again first if an I/O failure closed it.
    fn with_db<T>(
        &self,
        f: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let db = {
            let mut handle = self.handle();
            match handle.as_ref() {
                Some(db) => Arc::clone(db),
                None => {
                    let db = Arc::new(open_database(&self.path)?);
                    *handle = Some(Arc::clone(&db));
                    db
                }
            }
        };
        let result = f(&db).map_err(convert);
        if let Err(StoreError::Io(_)) = &result {
            // redb refuses everything after an I/O failure: start afresh on the next call.
            let mut handle = self.handle();
            if handle
                .as_ref()
                .is_some_and(|current| Arc::ptr_eq(current, &db))
            {
                *handle = None;
            }
        }
        result
    }
}

fn open_database(path: &Path) -> Result<Database, StoreError> {
    let opened = std::panic::catch_unwind(|| {
        let mut builder = Database::builder();
        builder
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true);
        let db = builder.create(path)?;
        // Both tables exist from the start, so readers never meet a missing table.
        let txn = db.begin_write()?;
        txn.open_table(EVENTS)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok::<_, redb::Error>(db)
    });
    match opened {
        Ok(result) => result.map_err(convert),
        // redb documents that a damaged file may make it panic; the integrity check should catch
        // that first, but a damaged file must never stop the gate.
        Err(_) => Err(StoreError::Damaged(format!(
            "{}: the database engine panicked while opening it",
            path.display()
        ))),
    }
}

fn convert(error: redb::Error) -> StoreError {
    match error {
        redb::Error::Corrupted(message) => StoreError::Damaged(message),
        redb::Error::Io(error) => StoreError::Io(error),
        redb::Error::PreviousIo => StoreError::Io(io::Error::other(
            "an earlier write failed; the database will be opened again",
        )),
        redb::Error::DatabaseAlreadyOpen | redb::Error::LockProtocolMismatch => StoreError::Locked,
        redb::Error::UpgradeRequired(version) => {
            StoreError::Damaged(format!("unknown file format version {version}"))
        }
        other => StoreError::Engine(other.to_string()),
    }
}

fn state_table(name: &str) -> String {
    format!("state.{name}")
}

impl Store for RedbStore {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.with_db(|db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.set_two_phase_commit(true);
            {
                let mut events = txn.open_table(EVENTS)?;
                for (id, record) in &batch.insert {
                    events.insert(*id, record.as_slice())?;
                }
                for id in &batch.remove {
                    events.remove(*id)?;
                }
                let mut meta = txn.open_table(META)?;
                for (key, value) in &batch.meta {
                    meta.insert(*key, value.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    fn records_from(
        &self,
        start: EventId,
        limit: usize,
    ) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            for item in events.range(start..)?.take(limit) {
                let (id, record) = item?;
                out.push((id.value(), record.value().to_vec()));
            }
            Ok(out)
        })
    }

    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            let mut out = Vec::new();
            for item in events.iter()? {
                out.push(item?.0.value());
            }
            Ok(out)
        })
    }

    fn contains(&self, id: EventId) -> Result<bool, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let events = txn.open_table(EVENTS)?;
            Ok(events.get(id)?.is_some())
        })
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.with_db(|db| {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            Ok(meta.get(key)?.map(|value| value.value().to_vec()))
        })
    }

    fn state_insert_new(&self, table: &str, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let name = state_table(table);
        let definition: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(&name);
        self.with_db(|db| {
            let mut txn = db.begin_write()?;
            txn.set_durability(Durability::Immediate)?;
            txn.set_two_phase_commit(true);
            let new = {
                let mut entries = txn.open_table(definition)?;
                let new = entries.get(key)?.is_none();
                if new {
                    entries.insert(key, value)?;
                }
                new
            };
            if new {
                txn.commit()?;
            } else {
                txn.abort()?;
            }
            Ok(new)
        })
    }

    fn state_contains(&self, table: &str, key: &[u8]) -> Result<bool, StoreError> {
        let name = state_table(table);
        let definition: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(&name);
        self.with_db(|db| {
            let txn = db.begin_read()?;
            match txn.open_table(definition) {
                Ok(entries) => Ok(entries.get(key)?.is_some()),
                Err(redb::TableError::TableDoesNotExist(_)) => Ok(false),
                Err(other) => Err(other.into()),
            }
        })
    }

    fn state_prune(&self, table: &str, expired: &dyn Fn(&[u8]) -> bool) -> Result<(), StoreError> {
        let name = state_table(table);
        let definition: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(&name);
        self.with_db(|db| {
            let txn = db.begin_write()?;
            txn.open_table(definition)?
                .retain(|_, value| !expired(value))?;
            txn.commit()?;
            Ok(())
        })
    }
}
