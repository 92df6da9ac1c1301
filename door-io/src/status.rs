//! The gate's status as the driver thread last published it, for readers on other threads
//! (the daemon's retained door states): published after every step that reported events and after
//! every command, before that step's events are delivered, so a reader that hears of an event
//! finds a status at least as new as it.

use std::sync::{Arc, PoisonError, RwLock};

use crate::machine::GateStatus;

/// A reader of the latest published [`GateStatus`] (cheap to clone).
#[derive(Debug, Clone)]
pub struct StatusWatch(Arc<RwLock<GateStatus>>);

impl StatusWatch {
    /// A watch holding `status`.
    pub fn new(status: GateStatus) -> Self {
        Self(Arc::new(RwLock::new(status)))
    }

    /// Replaces the published status.
    pub fn publish(&self, status: GateStatus) {
        // A reader never panics while holding the lock; a poisoned lock still holds a status.
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = status;
    }

    /// The latest published status.
    pub fn latest(&self) -> GateStatus {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_clone_sees_the_latest_publication() {
        let empty = GateStatus {
            started: false,
            fire: false,
            doors: Vec::new(),
        };
        let watch = StatusWatch::new(empty.clone());
        let reader = watch.clone();
        assert_eq!(reader.latest(), empty);
        let fire = GateStatus {
            started: true,
            fire: true,
            doors: Vec::new(),
        };
        watch.publish(fire.clone());
        assert_eq!(reader.latest(), fire);
    }
}
