//! The encrypted, persistent, ordered event outbox, which loses nothing in silence.
//!
//! # Layout
//! - `mod.rs`: the [`Outbox`]: ids, group commit, delivery bookkeeping, damage accounting.
//! - [`store`]: the [`Store`] trait the outbox (and the replay cache) keep their data behind.
//! - `redb_store`: the engine in use, [`RedbStore`] (checksummed, crash-safe, integrity-checked).
//! - `mark`: the event-id mark beside the device key ([`IdMark`]).
//! - `loss`: the machine-readable `reason` of `alarm.events_lost` ([`LossReport`]).
//! - `seal`: AES-256-GCM record sealing; `key`: the device key.
//!
//! # Recording and delivery
//! Every event is numbered, sealed (module `seal`: AES-256-GCM under a key derived from the
//! device key) and queued in memory by [`Outbox::append`], which returns at once (the access
//! decision never waits for a disk). A flusher task ([`Outbox::run_flusher`]) commits everything
//! queued in one durable transaction (group commit: one fsync serves hundreds of events) and
//! publishes the highest durable id on a watch channel ([`Outbox::durable`]). [`Outbox::pending`]
//! hands out only durable events, so **an event is never published before it is on disk**. The
//! MQTT link publishes in id order with QoS 1 and calls [`Outbox::ack`] on each PUBACK; the next
//! commit deletes the record.
//!
//! # Nothing lost in silence
//! Every id the outbox gave an event is delivered or named in an `alarm.events_lost` event
//! (`reason`: `first_id=… last_id=… count=… cause=…`); events refused before they got an id are
//! counted and reported the same way (`count=… cause=…`). docs/reliability.md states the promise
//! kind of damage by kind of damage:
//! - at start-up, the ids the outbox should hold (above the last delivered one, up to the last
//!   issued one) are compared with the records present: each gap is reported; a database that
//!   fails its integrity check is set aside (`events.redb.damaged-<time>`) and replaced;
//! - while running, a record that fails authentication is removed and reported;
//! - when the disk refuses writes (full), appended events wait in memory (up to
//!   [`UNWRITTEN_MAX`]) and the flusher retries with back-off; the database is opened again when
//!   writes work, so the outbox recovers without a restart; events refused meanwhile are counted
//!   and reported once storage works again.
//!
//! # Ids
//! Ids never go back or repeat, even when the outbox directory is damaged or deleted: the
//! event-id mark beside the device key (module `mark`) bounds every id ever published, written
//! ahead in blocks before an id above it can be published. After damage the next id starts above
//! the mark. A crash can lose only events appended in the last milliseconds, which nobody outside
//! the gate has seen; their ids are given again.
//!
//! # Bound and alarm
//! The outbox holds at most `outbox_max_events` records; beyond that [`Outbox::append`] refuses
//! with [`OutboxError::Full`] (counted and reported once there is room). When the fill level
//! reaches `outbox_alarm_percent`, an `outbox.filling` event (result `alarm`) is appended once;
//! the alarm re-arms when the outbox has drained to half that level.

mod key;
mod loss;
mod mark;
mod redb_store;
mod seal;
#[cfg(test)]
mod sled_store;
pub mod store;

use crate::error_chain;
use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

pub use self::key::{DEVICE_KEY_LEN, DeviceKey, KeyError};
pub use self::loss::LossReport;
pub use self::mark::{IdMark, MarkError};
pub use self::redb_store::RedbStore;
use self::seal::Sealer;
pub use self::store::{Batch, Store, StoreError};
use self::store::{decode_u64, meta};
use crate::config::Settings;
use crate::event::{Event, EventId, EventKind, NewEvent, Outcome, Reason, Timestamp};

/// The database file in the outbox directory.
pub const DB_FILE: &str = "events.redb";
/// Most events held in memory while the disk refuses writes; beyond, appends are refused (and
/// counted) until a commit succeeds.
pub const UNWRITTEN_MAX: usize = 10_000;
/// Most `alarm.events_lost` events one start-up raises (further gaps are summed into the last).
const MAX_LOST_REPORTS: usize = 16;
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How often a storage failure that goes on is logged again.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(30);

/// Where and how big the outbox is.
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// Directory of the database (`<state_dir>/outbox`).
    pub dir: PathBuf,
    /// Device key file (the event-id mark lives beside it).
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
    /// The event-id mark could not be read or written.
    #[error(transparent)]
    Mark(#[from] MarkError),
    /// The database failed.
    #[error("outbox database {dir}: {error}")]
    Database {
        /// The database directory.
        dir: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: StoreError,
    },
    /// The outbox is full: the event was not stored (it is counted and reported).
    #[error("outbox full ({max} events): event not stored; is the broker reachable?")]
    Full {
        /// The configured bound.
        max: u64,
    },
    /// The disk has refused writes for a while and the events waiting in memory reached
    /// [`UNWRITTEN_MAX`]: the event was not stored (it is counted and reported once the disk
    /// takes writes again).
    #[error(
        "event not recorded: the outbox cannot write to {dir} and holds {held} events in memory \
         already; it is counted and reported once storage works again"
    )]
    NotStored {
        /// The database directory.
        dir: PathBuf,
        /// Events waiting in memory.
        held: usize,
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
    /// The damaged database could not be set aside.
    #[error("outbox database {path} is damaged and could not be moved aside: {error}")]
    SetAside {
        /// The damaged file.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: std::io::Error,
    },
    /// Invalid options.
    #[error("outbox options: {0}")]
    Options(&'static str),
}

/// Events refused before they got an id, not yet reported.
#[derive(Debug, Clone, Copy)]
struct Refused {
    count: u64,
    cause: &'static str,
}

/// The storage failure in progress.
#[derive(Debug)]
struct Failing {
    since: Instant,
    attempts: u64,
    /// Whether this failure was logged (its recovery is logged then too).
    logged: bool,
}

struct State {
    /// Id the next event gets.
    next_id: EventId,
    /// Records held (stored or waiting in memory, not yet acknowledged).
    len: u64,
    /// Whether crossing the alarm level raises `outbox.filling`.
    alarm_armed: bool,
    /// Sealed records not yet committed, in id order.
    unwritten: VecDeque<(EventId, Vec<u8>)>,
    /// Delivered (or discarded and reported) records whose deletion is not yet committed.
    acked: BTreeSet<EventId>,
    /// Every id up to this was delivered or reported lost.
    accounted_through: EventId,
    accounted_dirty: bool,
    /// Events refused since the last report.
    refused: Option<Refused>,
    failing: Option<Failing>,
    /// When a storage failure was last logged: at most one line per [`FAILURE_LOG_EVERY`], even
    /// when a nearly full disk makes commits fail and succeed in turn.
    failure_logged: Option<Instant>,
}

/// The outbox. Share it as `Arc<Outbox>`: appends, acknowledgements and the flusher run
/// concurrently.
pub struct Outbox {
    dir: PathBuf,
    store: Arc<dyn Store>,
    mark: Mutex<IdMark>,
    sealer: Sealer,
    gate: String,
    max_events: u64,
    alarm_level: u64,
    unwritten_max: usize,
    state: Mutex<State>,
    /// One commit at a time (the flusher and a final synchronous flush).
    committing: Mutex<()>,
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

/// A run of ids that will never be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LostRange {
    first: EventId,
    last: EventId,
    count: u64,
}

impl LostRange {
    fn report(&self, cause: &str) -> LossReport {
        LossReport {
            ids: Some((self.first, self.last)),
            count: self.count,
            cause: cause.to_string(),
        }
    }
}

/// The gaps of `present` (sorted) within `first..=last`, at most `max` of them (further gaps
/// are summed into the last one).
fn gaps(present: &[EventId], first: EventId, last: EventId, max: usize) -> Vec<LostRange> {
    let mut ranges: Vec<LostRange> = Vec::new();
    let mut push = |from: EventId, to: EventId| {
        if from > to {
            return;
        }
        let count = to - from + 1;
        let full = ranges.len() >= max;
        match ranges.last_mut() {
            Some(tail) if full => {
                tail.last = to;
                tail.count += count;
            }
            _ => ranges.push(LostRange {
                first: from,
                last: to,
                count,
            }),
        }
    };
    let mut expected = first;
    for &id in present.iter().filter(|id| (first..=last).contains(*id)) {
        if id > expected {
            push(expected, id - 1);
        }
        expected = id + 1;
    }
    if expected <= last {
        push(expected, last);
    }
    ranges
}

impl Outbox {
    /// Opens (or creates) the outbox and its device key.
    pub fn open(options: &OutboxOptions) -> Result<Self, OutboxError> {
        let key = DeviceKey::load_or_create(&options.device_key_file)?;
        Self::open_with_key(options, &key)
    }

    /// Opens (or creates) the outbox with a given device key. A database that fails its
    /// integrity check is moved aside and replaced; its events are reported lost.
    pub fn open_with_key(options: &OutboxOptions, key: &DeviceKey) -> Result<Self, OutboxError> {
        let dir = options.dir.clone();
        let db_error = |error| OutboxError::Database {
            dir: dir.clone(),
            error,
        };
        create_private_dir(&dir).map_err(|e| db_error(StoreError::Io(e)))?;
        let path = dir.join(DB_FILE);
        let (store, damage) = match RedbStore::open(&path) {
            Ok(store) => (store, None),
            Err(StoreError::Damaged(detail)) => {
                let aside = set_aside(&path)?;
                tracing::error!(
                    %detail,
                    moved_to = %aside.display(),
                    "outbox database damaged: moved aside, starting a new one; its events are reported lost"
                );
                (RedbStore::open(&path).map_err(db_error)?, Some(detail))
            }
            Err(other) => return Err(db_error(other)),
        };
        Self::open_with_store(options, key, Arc::new(store), damage)
    }

    /// Opens the outbox on `store`. `damage`: why the previous database was replaced, if it was.
    pub(crate) fn open_with_store(
        options: &OutboxOptions,
        key: &DeviceKey,
        store: Arc<dyn Store>,
        damage: Option<String>,
    ) -> Result<Self, OutboxError> {
        if options.max_events == 0 {
            return Err(OutboxError::Options("max_events must be at least 1"));
        }
        if !(1..=100).contains(&options.alarm_percent) {
            return Err(OutboxError::Options("alarm_percent must be 1 to 100"));
        }
        let dir = options.dir.clone();
        let db_error = |error| OutboxError::Database {
            dir: dir.clone(),
            error,
        };
        let (mark, _) = IdMark::open(&IdMark::path_beside(&options.device_key_file))?;
        let marks = mark.values();

        let stored_gate = store.meta(meta::GATE).map_err(db_error)?;
        let fresh = stored_gate.is_none();
        if let Some(stored) = &stored_gate
            && stored.as_slice() != options.gate.as_bytes()
        {
            return Err(OutboxError::GateChanged {
                dir,
                stored: String::from_utf8_lossy(stored).into_owned(),
                configured: options.gate.clone(),
            });
        }
        let salt = match store.meta(meta::SALT).map_err(db_error)? {
            Some(salt) => salt,
            None => {
                let mut salt = [0u8; 32];
                getrandom::fill(&mut salt).map_err(KeyError::Random)?;
                salt.to_vec()
            }
        };
        let epoch = store
            .meta(meta::EPOCH)
            .map_err(db_error)?
            .and_then(|bytes| <[u8; 4]>::try_from(bytes.as_slice()).ok())
            .map_or(0, u32::from_be_bytes)
            .wrapping_add(1);
        let read_u64 = |key| -> Result<EventId, OutboxError> {
            Ok(store
                .meta(key)
                .map_err(db_error)?
                .as_deref()
                .and_then(decode_u64)
                .unwrap_or(0))
        };
        let issued_through = read_u64(meta::ISSUED_THROUGH)?;
        let accounted_meta = read_u64(meta::ACCOUNTED_THROUGH)?;
        let present = store.ids().map_err(db_error)?;
        let known_high = present
            .last()
            .copied()
            .unwrap_or(0)
            .max(issued_through)
            .max(accounted_meta);
        let accounted = accounted_meta.max(marks.accounted_through);

        // Which ids should be here and are not, and where numbering goes on.
        let (cause, lost_through, next_id) = if let Some(detail) = &damage {
            tracing::warn!(%detail, "reporting the events of the damaged outbox database");
            (
                "outbox_damaged",
                marks.reserved_end,
                marks.reserved_end.max(known_high) + 1,
            )
        } else if fresh && marks.reserved_end > 0 {
            (
                "outbox_missing",
                marks.reserved_end,
                marks.reserved_end.max(known_high) + 1,
            )
        } else {
            // An intact database knows every id it published (commits are atomic and only
            // committed events are published). The mark may be ahead of it after a crash in the
            // middle of a commit, whose events nobody outside the gate saw.
            ("records_missing", known_high, known_high + 1)
        };
        let lost = gaps(
            &present,
            accounted.saturating_add(1),
            lost_through,
            MAX_LOST_REPORTS,
        );

        // The epoch must be on disk before the first record is sealed under it.
        store
            .commit(&Batch {
                meta: vec![
                    (meta::GATE, options.gate.as_bytes().to_vec()),
                    (meta::SALT, salt.clone()),
                    (meta::EPOCH, epoch.to_be_bytes().to_vec()),
                ],
                ..Batch::default()
            })
            .map_err(db_error)?;

        let alarm_level = (options
            .max_events
            .saturating_mul(u64::from(options.alarm_percent))
            / 100)
            .max(1);
        let (durable, _) = watch::channel(next_id - 1);
        let outbox = Self {
            dir,
            store,
            mark: Mutex::new(mark),
            sealer: Sealer::new(key, &salt, epoch, &options.gate),
            gate: options.gate.clone(),
            max_events: options.max_events,
            alarm_level,
            unwritten_max: UNWRITTEN_MAX,
            state: Mutex::new(State {
                next_id,
                len: present.len() as u64,
                alarm_armed: true,
                unwritten: VecDeque::new(),
                acked: BTreeSet::new(),
                accounted_through: accounted.max(lost.last().map_or(0, |range| range.last)),
                accounted_dirty: !lost.is_empty(),
                refused: None,
                failing: None,
                failure_logged: None,
            }),
            committing: Mutex::new(()),
            appended: Notify::new(),
            durable,
        };
        for range in &lost {
            tracing::error!(
                first_id = range.first,
                last_id = range.last,
                count = range.count,
                cause,
                "outbox events lost; reported"
            );
            outbox.report_lost(range.report(cause));
        }
        Ok(outbox)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn db_error(&self, error: StoreError) -> OutboxError {
        OutboxError::Database {
            dir: self.dir.clone(),
            error,
        }
    }

    /// The gate these events belong to.
    pub fn gate(&self) -> &str {
        &self.gate
    }

    /// Numbers, encrypts and queues an event for the next commit. Returns the event. It becomes
    /// durable (and publishable) with the next flush.
    pub fn append(&self, event: NewEvent) -> Result<Event, OutboxError> {
        let mut state = self.state();
        let stored = match self.insert(&mut state, event) {
            Ok(stored) => stored,
            Err(error) => {
                let cause = match error {
                    OutboxError::Full { .. } => "outbox_full",
                    _ => "not_stored",
                };
                let refused = state.refused.get_or_insert(Refused { count: 0, cause });
                refused.count += 1;
                drop(state);
                // The flusher reports the count once events can be stored again.
                self.appended.notify_one();
                return Err(error);
            }
        };
        if state.alarm_armed && state.len >= self.alarm_level && state.len < self.max_events {
            state.alarm_armed = false;
            let alarm = NewEvent::new(EventKind::OutboxFilling, stored.time)
                .result(Outcome::Alarm)
                .reason(Reason::FILL_LEVEL)
                .detail(format!("{} of {} events held", state.len, self.max_events));
            self.insert(&mut state, alarm)?;
        }
        drop(state);
        self.appended.notify_one();
        Ok(stored)
    }

    fn insert(&self, state: &mut State, event: NewEvent) -> Result<Event, OutboxError> {
        if state.len >= self.max_events {
            return Err(OutboxError::Full {
                max: self.max_events,
            });
        }
        // Only while the disk refuses writes: otherwise the flusher keeps up and `max_events`
        // bounds what waits.
        if state.failing.is_some() && state.unwritten.len() >= self.unwritten_max {
            return Err(OutboxError::NotStored {
                dir: self.dir.clone(),
                held: state.unwritten.len(),
            });
        }
        let event = event.into_event(state.next_id, &self.gate);
        let record = self.sealer.seal(event.id, &event.to_json());
        state.unwritten.push_back((event.id, record));
        state.next_id += 1;
        state.len += 1;
        Ok(event)
    }

    /// Appends an `alarm.events_lost` event (bypassing the bound: a loss report is never
    /// refused for lack of room).
    fn report_lost(&self, report: LossReport) {
        // The cause is the reason code; the whole report, machine-readable, is the detail.
        let event = NewEvent::new(EventKind::AlarmEventsLost, Timestamp::now())
            .result(Outcome::Alarm)
            .reason(Reason::new(report.cause.clone()).unwrap_or(Reason::EVENTS_LOST))
            .detail(report.to_string());
        let mut state = self.state();
        let event = event.into_event(state.next_id, &self.gate);
        let record = self.sealer.seal(event.id, &event.to_json());
        state.unwritten.push_back((event.id, record));
        state.next_id += 1;
        state.len += 1;
        drop(state);
        self.appended.notify_one();
    }

    fn committing(&self) -> MutexGuard<'_, ()> {
        self.committing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Commits everything queued (records, deletions, bookkeeping) in one durable transaction.
    fn commit_pending(&self) -> Result<EventId, OutboxError> {
        let _one_at_a_time = self.committing();
        self.commit_locked()
    }

    /// [`Self::commit_pending`] under the `committing` lock.
    fn commit_locked(&self) -> Result<EventId, OutboxError> {
        let (batch, upto, accounted) = {
            let mut state = self.state();
            let mut batch = Batch {
                insert: state.unwritten.drain(..).collect(),
                remove: state.acked.iter().copied().collect(),
                meta: Vec::new(),
            };
            let upto = state.next_id - 1;
            if !batch.insert.is_empty() {
                batch
                    .meta
                    .push((meta::ISSUED_THROUGH, upto.to_be_bytes().to_vec()));
            }
            if state.accounted_dirty {
                batch.meta.push((
                    meta::ACCOUNTED_THROUGH,
                    state.accounted_through.to_be_bytes().to_vec(),
                ));
            }
            (batch, upto, state.accounted_through)
        };
        let newest = batch.insert.last().map(|(id, _)| *id);
        let result = match newest {
            Some(newest) => self.reserve(newest, accounted),
            None => Ok(()),
        }
        .and_then(|()| self.store.commit(&batch).map_err(|e| self.db_error(e)));
        let mut state = self.state();
        match result {
            Ok(()) => {
                for id in &batch.remove {
                    state.acked.remove(id);
                }
                state.accounted_dirty = state.accounted_through != accounted;
                if let Some(failing) = state.failing.take().filter(|failing| failing.logged) {
                    tracing::info!(
                        after_s = failing.since.elapsed().as_secs(),
                        attempts = failing.attempts,
                        "outbox storage works again; recording and delivery resume"
                    );
                }
                // A full outbox reports its refusals once there is room again.
                let refused = match state.refused {
                    Some(refused)
                        if refused.cause != "outbox_full" || state.len < self.max_events =>
                    {
                        state.refused.take()
                    }
                    _ => None,
                };
                drop(state);
                self.mark_durable(upto);
                if let Some(refused) = refused {
                    tracing::error!(
                        count = refused.count,
                        cause = refused.cause,
                        "events were refused by the outbox; reported"
                    );
                    self.report_lost(LossReport {
                        ids: None,
                        count: refused.count,
                        cause: refused.cause.to_string(),
                    });
                }
                Ok(upto)
            }
            Err(error) => {
                // Back in front of whatever was appended meanwhile, in id order.
                for record in batch.insert.into_iter().rev() {
                    state.unwritten.push_front(record);
                }
                let now = Instant::now();
                let log_now = state
                    .failure_logged
                    .is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY);
                if log_now {
                    state.failure_logged = Some(now);
                }
                let held = state.unwritten.len();
                let failing = state.failing.get_or_insert(Failing {
                    since: now,
                    attempts: 0,
                    logged: false,
                });
                failing.attempts += 1;
                if log_now {
                    let (attempts, failing_s) =
                        (failing.attempts, failing.since.elapsed().as_secs());
                    if failing.logged {
                        tracing::error!(error = %error_chain(&error), attempts, failing_s, held, "outbox still cannot write");
                    } else {
                        tracing::error!(error = %error_chain(&error), held, "outbox cannot write; events wait in memory, retrying");
                    }
                    failing.logged = true;
                }
                Err(error)
            }
        }
    }

    /// Raises the event-id mark above `newest` (a block ahead) before it can be published.
    fn reserve(&self, newest: EventId, accounted: EventId) -> Result<(), OutboxError> {
        let mut mark = self
            .mark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let values = mark.values();
        if newest <= values.reserved_end {
            return Ok(());
        }
        mark.write(mark::MarkValues {
            reserved_end: newest + mark::BLOCK,
            accounted_through: accounted.max(values.accounted_through),
        })?;
        Ok(())
    }

    /// Writes everything appended so far to disk and brings the event-id mark down to the exact
    /// last id (as at shutdown: a later loss report then names exactly the ids used). Returns the
    /// highest durable id.
    pub fn flush(&self) -> Result<EventId, OutboxError> {
        // Under the commit lock: no commit can publish an id above `upto` before the mark is
        // back up (each commit raises it first).
        let _one_at_a_time = self.committing();
        let upto = self.commit_locked()?;
        let accounted = self.state().accounted_through;
        let mut mark = self
            .mark
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let exact = mark::MarkValues {
            reserved_end: upto,
            accounted_through: accounted,
        };
        if mark.values() != exact {
            mark.write(exact)?;
        }
        Ok(upto)
    }

    /// Commits what is queued without blocking the async worker (the commit runs on a blocking
    /// thread).
    pub async fn flush_async(self: &Arc<Self>) -> Result<EventId, OutboxError> {
        let outbox = Arc::clone(self);
        match tokio::task::spawn_blocking(move || outbox.commit_pending()).await {
            Ok(result) => result,
            Err(join) => Err(self.db_error(StoreError::Engine(join.to_string()))),
        }
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

    /// Commits after every append or acknowledgement until `shutdown` completes, then once more.
    /// While the disk refuses writes it retries with back-off (events wait in memory), and
    /// resumes by itself when writes work again.
    pub async fn run_flusher(self: &Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut retry = None;
        loop {
            let wait = async {
                match retry {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = self.appended.notified() => {}
                () = wait => {}
            }
            retry = match self.flush_async().await {
                Ok(_) => None,
                Err(_) => {
                    Some(retry.map_or(RETRY_FIRST, |delay: Duration| (delay * 2).min(RETRY_MAX)))
                }
            };
        }
        if let Err(error) = self.flush_async().await {
            tracing::error!(error = %error_chain(&error), "final outbox flush failed");
        }
    }

    /// Up to `limit` durable events with ids above `after`, oldest first.
    ///
    /// A record that fails authentication (disk damage or tampering) cannot be delivered: it is
    /// removed and an `alarm.events_lost` event naming its id takes its place at the end of the
    /// outbox, so the rest of the queue keeps flowing and the loss is reported.
    pub fn pending(&self, after: Option<EventId>, limit: usize) -> Result<Vec<Event>, OutboxError> {
        let durable = *self.durable.borrow();
        let mut cursor = after.map_or(0, |id| id.saturating_add(1));
        let mut out = Vec::with_capacity(limit.min(1024));
        let mut unreadable = Vec::new();
        'chunks: while out.len() < limit {
            let chunk = self
                .store
                .records_from(cursor, (limit - out.len()).clamp(16, 1024))
                .map_err(|e| self.db_error(e))?;
            let Some(&(last, _)) = chunk.last() else {
                break;
            };
            let acked = self.state().acked.clone();
            for (id, record) in chunk {
                if id > durable || out.len() >= limit {
                    break 'chunks;
                }
                if acked.contains(&id) {
                    continue;
                }
                match self
                    .sealer
                    .open(id, &record)
                    .ok()
                    .and_then(|json| Event::from_json(&json).ok())
                {
                    Some(event) if event.id == id => out.push(event),
                    _ => unreadable.push(id),
                }
            }
            cursor = last.saturating_add(1);
        }
        if !unreadable.is_empty() {
            self.discard_unreadable(&unreadable)?;
        }
        Ok(out)
    }

    fn discard_unreadable(&self, ids: &[EventId]) -> Result<(), OutboxError> {
        let mut runs: Vec<LostRange> = Vec::new();
        {
            let mut state = self.state();
            for &id in ids {
                if state.acked.insert(id) {
                    state.len = state.len.saturating_sub(1);
                }
                state.accounted_through = state.accounted_through.max(id);
                state.accounted_dirty = true;
                let full = runs.len() >= MAX_LOST_REPORTS;
                match runs.last_mut() {
                    Some(run) if run.last + 1 == id || full => {
                        run.last = id;
                        run.count += 1;
                    }
                    _ => runs.push(LostRange {
                        first: id,
                        last: id,
                        count: 1,
                    }),
                }
            }
        }
        for run in runs {
            tracing::error!(
                first_id = run.first,
                last_id = run.last,
                count = run.count,
                "outbox records failed authentication; discarded and reported"
            );
            self.report_lost(run.report("record_unreadable"));
        }
        Ok(())
    }

    /// Deletes an event after its PUBACK (with the next commit). Returns whether it was still
    /// held.
    pub fn ack(&self, id: EventId) -> Result<bool, OutboxError> {
        // Read before taking the state lock: appends never wait for the disk.
        let stored = self.store.contains(id).map_err(|e| self.db_error(e))?;
        let mut state = self.state();
        if !stored || state.acked.contains(&id) {
            return Ok(false);
        }
        state.acked.insert(id);
        state.len = state.len.saturating_sub(1);
        if state.len <= self.alarm_level / 2 {
            state.alarm_armed = true;
        }
        if id > state.accounted_through {
            state.accounted_through = id;
            state.accounted_dirty = true;
        }
        drop(state);
        self.appended.notify_one();
        Ok(true)
    }

    /// Records held (delivered ones are gone).
    pub fn len(&self) -> u64 {
        self.state().len
    }

    /// Whether every event has been delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The configured bound.
    pub fn capacity(&self) -> u64 {
        self.max_events
    }

    /// A state table in the outbox's database, for small state that must survive restarts with
    /// the same durability (the command replay cache).
    pub fn state_tree(&self, name: &str) -> Result<StateTable, OutboxError> {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(OutboxError::Options(
                "state table names are lowercase letters and _",
            ));
        }
        Ok(StateTable {
            store: Arc::clone(&self.store),
            name: name.to_owned(),
        })
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> EventId {
        self.state().next_id
    }

    #[cfg(test)]
    fn set_unwritten_max(&mut self, max: usize) {
        self.unwritten_max = max;
    }
}

/// A named table of small durable state in the outbox's database (see [`Outbox::state_tree`]).
#[derive(Clone)]
pub struct StateTable {
    store: Arc<dyn Store>,
    name: String,
}

impl std::fmt::Debug for StateTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTable")
            .field("name", &self.name)
            .finish()
    }
}

impl StateTable {
    /// Inserts `key` unless present, durably. Returns whether it was new.
    pub fn insert_new(&self, key: &[u8], value: &[u8]) -> Result<bool, StoreError> {
        self.store.state_insert_new(&self.name, key, value)
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        self.store.state_contains(&self.name, key)
    }

    /// Deletes the entries whose value `expired` says so.
    pub fn prune(&self, expired: &dyn Fn(&[u8]) -> bool) -> Result<(), StoreError> {
        self.store.state_prune(&self.name, expired)
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Moves a damaged database file aside (`<file>.damaged-<unix seconds>`), keeping only the most
/// recent damaged copy so that repeated damage cannot fill the disk.
fn set_aside(path: &Path) -> Result<PathBuf, OutboxError> {
    let set_aside_error = |error| OutboxError::SetAside {
        path: path.to_owned(),
        error,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{name}.damaged-");
    if let Some(dir) = path.parent()
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let seconds = Timestamp::now().unix_ms().div_euclid(1000);
    let aside = path.with_file_name(format!("{prefix}{seconds}"));
    std::fs::rename(path, &aside).map_err(set_aside_error)?;
    Ok(aside)
}

#[cfg(test)]
mod tests;
