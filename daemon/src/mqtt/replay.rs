//! The persistent command replay cache: nonces of accepted commands, in a state table of the
//! outbox's database ([`crate::outbox::StateTable`]), committed to disk before a command is
//! carried out (so a crash cannot make the gate forget a nonce it acted on).
//!
//! Entries are kept for [`RETENTION_S`] (far longer than `mqtt.command_max_age_s`, after which a
//! replay is refused as stale anyway); older entries are pruned every few hundred inserts. The
//! long retention also lets the gate recognise retained copies of commands it already handled.
//! If the outbox database is found damaged and replaced, the remembered nonces go with it: the
//! age limit still refuses any command older than `mqtt.command_max_age_s`.

use super::command::ReplayCache;
use crate::outbox::StateTable;

/// How long a nonce is remembered (seconds).
pub const RETENTION_S: i64 = 7 * 24 * 3600;
const PRUNE_EVERY: u32 = 256;

/// Replay cache on a state table of the outbox's store.
#[derive(Debug)]
pub struct StoreReplayCache {
    table: StateTable,
    inserts: u32,
}

impl StoreReplayCache {
    /// Uses `table` (from [`crate::outbox::Outbox::state_tree`]).
    pub fn new(table: StateTable) -> Self {
        Self { table, inserts: 0 }
    }

    fn prune(&self, now: i64) -> Result<(), crate::outbox::StoreError> {
        let horizon = now.saturating_sub(RETENTION_S);
        self.table.prune(&|value| {
            <[u8; 8]>::try_from(value).map_or(i64::MIN, i64::from_be_bytes) < horizon
        })
    }
}

impl ReplayCache for StoreReplayCache {
    fn insert_new(&mut self, nonce: &[u8], timestamp: i64, now: i64) -> Result<bool, String> {
        if !self
            .table
            .insert_new(nonce, &timestamp.to_be_bytes())
            .map_err(|e| e.to_string())?
        {
            return Ok(false);
        }
        self.inserts += 1;
        if self.inserts.is_multiple_of(PRUNE_EVERY) {
            self.prune(now).map_err(|e| e.to_string())?;
        }
        Ok(true)
    }

    fn contains(&self, nonce: &[u8]) -> Result<bool, String> {
        self.table.contains(nonce).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Outbox, OutboxOptions};

    #[test]
    fn nonces_survive_reopening_and_old_ones_are_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let options = OutboxOptions {
            dir: dir.path().join("outbox"),
            device_key_file: dir.path().join("key"),
            gate: "g".into(),
            max_events: 10,
            alarm_percent: 90,
        };
        {
            let outbox = Outbox::open(&options).expect("open");
            let mut cache =
                StoreReplayCache::new(outbox.state_tree("command_nonces").expect("tree"));
            assert_eq!(cache.insert_new(b"n1", 100, 100), Ok(true));
            assert_eq!(cache.insert_new(b"n1", 100, 100), Ok(false));
        }
        let outbox = Outbox::open(&options).expect("reopen");
        let mut cache = StoreReplayCache::new(outbox.state_tree("command_nonces").expect("tree"));
        assert_eq!(cache.contains(b"n1"), Ok(true));
        assert_eq!(cache.insert_new(b"n1", 100, 200), Ok(false));
        cache.prune(100 + RETENTION_S + 1).expect("prune");
        assert_eq!(cache.contains(b"n1"), Ok(false));
        assert!(outbox.state_tree("Events/../x").is_err());
    }
}
