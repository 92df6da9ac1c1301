//! [`Store`] on sled 0.34, kept for the engine comparison of the fault matrix (tests only: the
//! gate runs on redb, see docs/design-notes.md).

use std::path::Path;

use super::store::{Batch, Store, StoreError};
use crate::event::EventId;

/// The outbox store in a sled database, as the gate kept it before redb.
pub struct SledStore {
    db: sled::Db,
    events: sled::Tree,
    meta: sled::Tree,
}

fn convert(error: sled::Error) -> StoreError {
    match error {
        sled::Error::Io(error) => StoreError::Io(error),
        sled::Error::Corruption { .. } => StoreError::Damaged(error.to_string()),
        other => StoreError::Engine(other.to_string()),
    }
}

impl SledStore {
    /// Opens (or creates) the database directory, with the gate's former settings.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(8 * 1024 * 1024)
            .flush_every_ms(Some(200))
            .open()
            .map_err(convert)?;
        let events = db.open_tree("events").map_err(convert)?;
        let meta = db.open_tree("meta").map_err(convert)?;
        Ok(Self { db, events, meta })
    }
}

impl Store for SledStore {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        for (id, record) in &batch.insert {
            self.events
                .insert(id.to_be_bytes(), record.as_slice())
                .map_err(convert)?;
        }
        for id in &batch.remove {
            self.events.remove(id.to_be_bytes()).map_err(convert)?;
        }
        for (key, value) in &batch.meta {
            self.meta
                .insert(key.as_bytes(), value.as_slice())
                .map_err(convert)?;
        }
        self.db.flush().map_err(convert)?;
        Ok(())
    }

    fn records_from(
        &self,
        start: EventId,
        limit: usize,
    ) -> Result<Vec<(EventId, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        for item in self.events.range(start.to_be_bytes()..).take(limit) {
            let (key, value) = item.map_err(convert)?;
            let id = <[u8; 8]>::try_from(key.as_ref()).map_or(0, u64::from_be_bytes);
            out.push((id, value.to_vec()));
        }
        Ok(out)
    }

    fn ids(&self) -> Result<Vec<EventId>, StoreError> {
        let mut out = Vec::new();
        for key in self.events.iter().keys() {
            let key = key.map_err(convert)?;
            out.push(<[u8; 8]>::try_from(key.as_ref()).map_or(0, u64::from_be_bytes));
        }
        Ok(out)
    }

    fn contains(&self, id: EventId) -> Result<bool, StoreError> {
        self.events.contains_key(id.to_be_bytes()).map_err(convert)
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .meta
            .get(key.as_bytes())
            .map_err(convert)?
            .map(|value| value.to_vec()))
    }

    fn state_insert_new(&self, table: &str, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        let tree = self.db.open_tree(table).map_err(convert)?;
        let new = tree
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(convert)?
            .is_ok();
        self.db.flush().map_err(convert)?;
        Ok(new)
    }

    fn state_contains(&self, table: &str, key: &[u8]) -> Result<bool, StoreError> {
        let tree = self.db.open_tree(table).map_err(convert)?;
        tree.contains_key(key).map_err(convert)
    }

    fn state_prune(&self, table: &str, expired: &dyn Fn(&[u8]) -> bool) -> Result<(), StoreError> {
        let tree = self.db.open_tree(table).map_err(convert)?;
        for item in tree.iter() {
            let (key, value) = item.map_err(convert)?;
            if expired(&value) {
                tree.remove(key).map_err(convert)?;
            }
        }
        Ok(())
    }
}
