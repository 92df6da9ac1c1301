//! The persistent command replay cache: nonces of accepted commands, in a sled tree of the outbox
//! database, flushed to disk before a command is carried out (so a crash cannot make the gate
//! forget a nonce it acted on).
//!
//! Entries are kept for [`RETENTION_S`] (far longer than `mqtt.command_max_age_s`, after which a
//! replay is refused as stale anyway); older entries are pruned every few hundred inserts. The
//! long retention also lets the gate recognise retained copies of commands it already handled.

use super::command::ReplayCache;

/// How long a nonce is remembered (seconds).
pub const RETENTION_S: i64 = 7 * 24 * 3600;
const PRUNE_EVERY: u32 = 256;

/// Replay cache on a sled tree.
#[derive(Debug)]
pub struct SledReplayCache {
    tree: sled::Tree,
    inserts: u32,
}

impl SledReplayCache {
    /// Uses `tree` (from [`crate::outbox::Outbox::state_tree`]).
    pub fn new(tree: sled::Tree) -> Self {
        Self { tree, inserts: 0 }
    }

    fn prune(&self, now: i64) -> Result<(), sled::Error> {
        let horizon = now.saturating_sub(RETENTION_S);
        for item in self.tree.iter() {
            let (key, value) = item?;
            let ts = <[u8; 8]>::try_from(value.as_ref()).map_or(i64::MIN, i64::from_be_bytes);
            if ts < horizon {
                self.tree.remove(key)?;
            }
        }
        Ok(())
    }
}

impl ReplayCache for SledReplayCache {
    fn insert_new(&mut self, nonce: &[u8], timestamp: i64, now: i64) -> Result<bool, String> {
        let previous = self
            .tree
            .compare_and_swap(
                nonce,
                None as Option<&[u8]>,
                Some(&timestamp.to_be_bytes()[..]),
            )
            .map_err(|e| e.to_string())?;
        if previous.is_err() {
            return Ok(false);
        }
        self.tree.flush().map_err(|e| e.to_string())?;
        self.inserts += 1;
        if self.inserts.is_multiple_of(PRUNE_EVERY) {
            self.prune(now).map_err(|e| e.to_string())?;
        }
        Ok(true)
    }

    fn contains(&self, nonce: &[u8]) -> Result<bool, String> {
        self.tree.contains_key(nonce).map_err(|e| e.to_string())
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
                SledReplayCache::new(outbox.state_tree("command_nonces").expect("tree"));
            assert_eq!(cache.insert_new(b"n1", 100, 100), Ok(true));
            assert_eq!(cache.insert_new(b"n1", 100, 100), Ok(false));
        }
        let outbox = Outbox::open(&options).expect("reopen");
        let mut cache = SledReplayCache::new(outbox.state_tree("command_nonces").expect("tree"));
        assert_eq!(cache.contains(b"n1"), Ok(true));
        assert_eq!(cache.insert_new(b"n1", 100, 200), Ok(false));
        cache.prune(100 + RETENTION_S + 1).expect("prune");
        assert_eq!(cache.contains(b"n1"), Ok(false));
        assert!(outbox.state_tree("events").is_err());
    }
}
