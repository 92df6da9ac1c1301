//! The encrypted, persistent, ordered event outbox.
//!
//! Every event is numbered, encrypted ([`seal`](self) module docs: AES-256-GCM under a key derived
//! from the device key) and written to sled *before* anything else happens with it. The MQTT link
//! publishes events in id order with QoS 1 and calls [`Outbox::ack`] on each PUBACK, which deletes
//! the record. Nothing is deleted without an acknowledgement, so events survive broker outages and
//! daemon restarts; after a reconnect the link starts again from the oldest unacknowledged event.
//!
//! # Flush policy (group commit)
//! [`Outbox::append`] writes into sled's in-memory log and returns at once (microseconds: the access
//! decision never waits for a disk). A flusher task ([`Outbox::run_flusher`]) wakes on every
//! append and calls `fsync` through sled's `flush_async`; everything appended while one flush runs
//! is covered by the next, so under load one fsync serves hundreds of events. The highest id that
//! is on disk is published on a watch channel ([`Outbox::durable`]), and [`Outbox::pending`] hands
//! out only events up to it: **an event is never published before it is durable**. Hence a crash
//! or power cut can only lose events appended in the last few milliseconds that nobody outside the
//! gate has seen, and ids seen by the facility are never reused. Per-event fsync would make every
//! event pay a full disk sync (≈ 1–10 ms on SD cards), far below the 5,000 events/s target.
//!
//! # Bound and alarm
//! The outbox holds at most `outbox_max_events` records; beyond that [`Outbox::append`] refuses
//! with [`OutboxError::Full`]. When the fill level reaches `outbox_alarm_percent`, an
//! `outbox.filling` event (result `alarm`) is appended once; the alarm re-arms when the outbox has
//! drained to half that level.
//!
//! # Ids
//! The next id is one more than the larger of the newest stored record and the newest acknowledged
//! id (kept in the `meta` tree, written before the record is removed), so ids stay monotonic across
//! restarts without a separate counter write per event.

mod key;
mod seal;

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::{Notify, watch};

pub use self::key::{DEVICE_KEY_LEN, DeviceKey, KeyError};
use self::seal::Sealer;
use crate::config::Settings;
use crate::event::{Event, EventId, EventKind, NewEvent, Outcome, Reason, Timestamp};

const META_SALT: &[u8] = b"salt";
const META_EPOCH: &[u8] = b"epoch";
const META_GATE: &[u8] = b"gate";
const META_LAST_ACKED: &[u8] = b"last_acked";

/// Where and how big the outbox is.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// Directory of the sled database (`<state_dir>/outbox`).
    pub dir: PathBuf,
    /// Device key file.
    pub device_key_file: PathBuf,
    /// The gate id (part of every event and of each record's associated data).
    pub gate: String,
    /// Most records held.
    pub max_events: u64,
    /// Fill level (percent, 1–100) that raises `outbox.filling`.
    pub alarm_percent: u8,
}

impl OutboxOptions {
    /// From the daemon's settings (`[storage]`, `[gate]`).
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            dir: settings.storage.state_dir.join("outbox"),
            device_key_file: settings.storage.device_key_file.clone(),
            gate: settings.gate.id.clone(),
            max_events: settings.storage.outbox_max_events,
            alarm_percent: settings.storage.outbox_alarm_percent,
        }
    }
}

/// Outbox failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// The device key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The sled database failed.
    #[error("outbox database {dir}: {source}")]
    Database {
        /// The database directory.
        dir: PathBuf,
        /// The underlying error.
        source: sled::Error,
    },
    /// The outbox is full: the event was not stored.
    #[error("outbox full ({max} events): event not stored; is the broker reachable?")]
    Full {
        /// The configured bound.
        max: u64,
    },
    /// The database belongs to another gate id.
    #[error(
        "outbox database {dir} belongs to gate {stored:?}, not {configured:?}: deliver or move it \
         before changing gate.id"
    )]
    GateChanged {
        /// The database directory.
        dir: PathBuf,
        /// Gate id stored in the database.
        stored: String,
        /// Gate id configured now.
        configured: String,
    },
    /// Invalid options.
    #[error("outbox options: {0}")]
    Options(&'static str),
}

struct Counters {
    /// Id the next event gets.
    next_id: EventId,
    /// Records held.
    len: u64,
    /// Whether crossing the alarm level raises `outbox.filling`.
    alarm_armed: bool,
}

/// The outbox. Share it as `Arc<Outbox>`: appends, acknowledgements and the flusher run
/// concurrently.
pub struct Outbox {
    dir: PathBuf,
    db: sled::Db,
    events: sled::Tree,
    meta: sled::Tree,
    sealer: Sealer,
    gate: String,
    max_events: u64,
    alarm_level: u64,
    counters: Mutex<Counters>,
    appended: Notify,
    durable: watch::Sender<EventId>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox")
            .field("dir", &self.dir)
            .field("gate", &self.gate)
            .finish()
    }
}

impl Outbox {
    /// Opens (or creates) the outbox and its device key.
    pub fn open(options: &OutboxOptions) -> Result<Self, OutboxError> {
        let key = DeviceKey::load_or_create(&options.device_key_file)?;
        Self::open_with_key(options, &key)
    }

    /// Opens (or creates) the outbox with a given device key.
    pub fn open_with_key(options: &OutboxOptions, key: &DeviceKey) -> Result<Self, OutboxError> {
        if options.max_events == 0 {
            return Err(OutboxError::Options("max_events must be at least 1"));
        }
        if !(1..=100).contains(&options.alarm_percent) {
            return Err(OutboxError::Options("alarm_percent must be 1 to 100"));
        }
        let dir = options.dir.clone();
        let db_error = |source| OutboxError::Database {
            dir: dir.clone(),
            source,
        };
        let config = sled::Config::new()
            .path(&dir)
            // The outbox is written once and read once per event: a small cache keeps the
            // daemon's memory low.
            .cache_capacity(8 * 1024 * 1024)
            .flush_every_ms(Some(200));
        // sled releases its file lock from background threads shortly after the previous handle
        // in this process is dropped (a reopen, as in tests and restarts of the link): retry
        // briefly instead of failing. Another live process keeps the lock and gets the error.
        let mut attempts = 0;
        let db = loop {
            match config.open() {
                Err(sled::Error::Io(error))
                    if attempts < 40 && error.to_string().contains("could not acquire lock") =>
                {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                other => break other.map_err(db_error)?,
            }
        };
        let events = db.open_tree("events").map_err(db_error)?;
        let meta = db.open_tree("meta").map_err(db_error)?;

        match meta.get(META_GATE).map_err(db_error)? {
            Some(stored) if stored.as_ref() != options.gate.as_bytes() => {
                return Err(OutboxError::GateChanged {
                    dir,
                    stored: String::from_utf8_lossy(&stored).into_owned(),
                    configured: options.gate.clone(),
                });
            }
            Some(_) => {}
            None => {
                meta.insert(META_GATE, options.gate.as_bytes())
                    .map_err(db_error)?;
            }
        }
        let salt = match meta.get(META_SALT).map_err(db_error)? {
            Some(salt) => salt.to_vec(),
            None => {
                let mut salt = [0u8; 32];
                getrandom::fill(&mut salt).map_err(KeyError::Random)?;
                meta.insert(META_SALT, &salt[..]).map_err(db_error)?;
                salt.to_vec()
            }
        };
        let epoch = meta
            .get(META_EPOCH)
            .map_err(db_error)?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_ref()).ok())
            .map_or(0, u32::from_be_bytes)
            .wrapping_add(1);
        meta.insert(META_EPOCH, &epoch.to_be_bytes())
            .map_err(db_error)?;
        // The epoch must be on disk before the first record is sealed under it.
        db.flush().map_err(db_error)?;

        let last_stored = events
            .last()
            .map_err(db_error)?
            .map(|(key, _)| decode_id(&key));
        let last_acked = meta
            .get(META_LAST_ACKED)
            .map_err(db_error)?
            .map(|v| decode_id(&v));
        let last_id = last_stored.unwrap_or(0).max(last_acked.unwrap_or(0));
        let len = events.len() as u64;
        let alarm_level = (options
            .max_events
            .saturating_mul(u64::from(options.alarm_percent))
            / 100)
            .max(1);
        let (durable, _) = watch::channel(last_id);
        Ok(Self {
            dir,
            sealer: Sealer::new(key, &salt, epoch, &options.gate),
            db,
            events,
            meta,
            gate: options.gate.clone(),
            max_events: options.max_events,
            alarm_level,
            counters: Mutex::new(Counters {
                next_id: last_id + 1,
                len,
                alarm_armed: true,
            }),
            appended: Notify::new(),
            durable,
        })
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn db_error(&self, source: sled::Error) -> OutboxError {
        OutboxError::Database {
            dir: self.dir.clone(),
            source,
        }
    }

    /// The gate these events belong to.
    pub fn gate(&self) -> &str {
        &self.gate
    }

    /// Numbers, encrypts and stores an event. Returns the stored event. The event becomes
    /// durable (and publishable) with the next flush.
    pub fn append(&self, event: NewEvent) -> Result<Event, OutboxError> {
        let mut counters = self.counters();
        let stored = self.insert(&mut counters, event)?;
        if counters.alarm_armed
            && counters.len >= self.alarm_level
            && counters.len < self.max_events
        {
            counters.alarm_armed = false;
            let alarm = NewEvent::new(EventKind::OutboxFilling, stored.time)
                .result(Outcome::Alarm)
                .reason(Reason::FILL_LEVEL)
                .detail(format!(
                    "{} of {} events held",
                    counters.len, self.max_events
                ));
            self.insert(&mut counters, alarm)?;
        }
        drop(counters);
        self.appended.notify_one();
        Ok(stored)
    }

    fn insert(&self, counters: &mut Counters, event: NewEvent) -> Result<Event, OutboxError> {
        if counters.len >= self.max_events {
            return Err(OutboxError::Full {
                max: self.max_events,
            });
        }
        let event = event.into_event(counters.next_id, &self.gate);
        let record = self.sealer.seal(event.id, &event.to_json());
        self.events
            .insert(event.id.to_be_bytes(), record)
            .map_err(|e| self.db_error(e))?;
        counters.next_id += 1;
        counters.len += 1;
        Ok(event)
    }

    /// Writes everything appended so far to disk. Returns the highest durable id.
    pub fn flush(&self) -> Result<EventId, OutboxError> {
        let upto = self.counters().next_id - 1;
        self.db.flush().map_err(|e| self.db_error(e))?;
        self.mark_durable(upto);
        Ok(upto)
    }

    /// [`flush`](Self::flush) without blocking the async worker.
    pub async fn flush_async(&self) -> Result<EventId, OutboxError> {
        let upto = self.counters().next_id - 1;
        self.db.flush_async().await.map_err(|e| self.db_error(e))?;
        self.mark_durable(upto);
        Ok(upto)
    }

    fn mark_durable(&self, upto: EventId) {
        self.durable.send_if_modified(|durable| {
            let newer = upto > *durable;
            *durable = (*durable).max(upto);
            newer
        });
    }

    /// The highest id known to be on disk; changes after each flush.
    pub fn durable(&self) -> watch::Receiver<EventId> {
        self.durable.subscribe()
    }

    /// Flushes after every append until `shutdown` completes, then flushes once more.
    pub async fn run_flusher(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                () = self.appended.notified() => {}
            }
            if let Err(error) = self.flush_async().await {
                tracing::error!(%error, "outbox flush failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                self.appended.notify_one();
            }
        }
        if let Err(error) = self.flush_async().await {
            tracing::error!(%error, "final outbox flush failed");
        }
    }

    /// Up to `limit` durable events with ids above `after`, oldest first.
    ///
    /// A record that fails authentication (disk corruption or tampering) cannot be delivered:
    /// it is removed and an `alarm.outbox_corrupt` event naming its id takes its place at the
    /// end of the outbox, so the rest of the queue keeps flowing and the loss is reported.
    pub fn pending(&self, after: Option<EventId>, limit: usize) -> Result<Vec<Event>, OutboxError> {
        let durable = *self.durable.borrow();
        let start = after.map_or(0, |id| id.saturating_add(1));
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut corrupt = Vec::new();
        for item in self.events.range(start.to_be_bytes()..) {
            let (key, record) = item.map_err(|e| self.db_error(e))?;
            let id = decode_id(&key);
            if id > durable || out.len() >= limit {
                break;
            }
            match self
                .sealer
                .open(id, &record)
                .ok()
                .and_then(|json| Event::from_json(&json).ok())
            {
                Some(event) if event.id == id => out.push(event),
                _ => corrupt.push(id),
            }
        }
        for id in corrupt {
            tracing::error!(id, "outbox record failed authentication; discarded");
            if self.remove(id)? {
                let alarm = NewEvent::new(EventKind::AlarmOutboxCorrupt, Timestamp::now())
                    .result(Outcome::Alarm)
                    .reason(Reason::AUTHENTICATION_FAILED)
                    .detail(format!(
                        "record {id} failed authentication and was discarded"
                    ));
                self.append(alarm)?;
            }
        }
        Ok(out)
    }

    /// Deletes an event after its PUBACK. Returns whether it was still held.
    pub fn ack(&self, id: EventId) -> Result<bool, OutboxError> {
        self.remove(id)
    }

    fn remove(&self, id: EventId) -> Result<bool, OutboxError> {
        // The acknowledged id is recorded before the record goes, so that the next id can never
        // fall back below it (sled recovers a prefix of its operation log).
        let mut counters = self.counters();
        let previous = self
            .meta
            .get(META_LAST_ACKED)
            .map_err(|e| self.db_error(e))?;
        if previous
            .as_deref()
            .map(decode_id)
            .is_none_or(|last| last < id)
        {
            self.meta
                .insert(META_LAST_ACKED, &id.to_be_bytes())
                .map_err(|e| self.db_error(e))?;
        }
        let removed = self
            .events
            .remove(id.to_be_bytes())
            .map_err(|e| self.db_error(e))?
            .is_some();
        if removed {
            counters.len -= 1;
            if counters.len <= self.alarm_level / 2 {
                counters.alarm_armed = true;
            }
        }
        Ok(removed)
    }

    /// Records held (delivered ones are gone).
    pub fn len(&self) -> u64 {
        self.counters().len
    }

    /// Whether every event has been delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    pub fn capacity(&self) -> u64 {
        self.max_events
    }

    /// Another tree in the outbox's database, for small state that must survive restarts with
    /// the same durability (the command replay cache). Names starting with `outbox` are reserved.
    pub fn state_tree(&self, name: &str) -> Result<sled::Tree, OutboxError> {
        if matches!(name, "events" | "meta") || name.starts_with("outbox") {
            return Err(OutboxError::Options("reserved tree name"));
        }
        self.db.open_tree(name).map_err(|e| self.db_error(e))
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> EventId {
        self.counters().next_id
    }
}

fn decode_id(bytes: &[u8]) -> EventId {
    <[u8; 8]>::try_from(bytes).map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests;
