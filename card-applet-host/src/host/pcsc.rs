//! PC/SC transport (blocking) and card presence events.
//!
//! Every call here blocks: an async caller runs them with `spawn_blocking` (or keeps a dedicated
//! thread). [`CardMonitor`] runs `SCardGetStatusChange` in its own thread and sends
//! [`CardEvent`]s (and, with [`CardMonitor::start_watching`], [`ReaderHealth`]) over a std
//! channel; it re-establishes its PC/SC context by itself after pcscd restarts. Each
//! [`PcscTransport::connect`] establishes a fresh context, so connections after a restart work.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::host::card::{Card, VerifiedCard};
use crate::host::error::{CardError, TransportError};
use crate::host::issuer::EnrolmentAuthority;
use crate::host::meal::MealReceipt;
use crate::host::reader_health::{HealthTracker, ReaderHealth, ReconnectBackoff};
use crate::host::transport::CardTransport;
use crate::protocol::meal::MealRequest;
use crate::protocol::receipt::DeletionReceipt;

/// A connection to a card in a PC/SC reader.
pub struct PcscTransport {
    /// Always `Some` until dropped.
    card: Option<pcsc::Card>,
    reader: String,
    buffer: Vec<u8>,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

fn map_error(error: pcsc::Error) -> TransportError {
    match error {
        pcsc::Error::RemovedCard | pcsc::Error::ResetCard | pcsc::Error::NoSmartcard => {
            TransportError::CardRemoved
        }
        other => TransportError::Pcsc(other),
    }
}

/// Readers whose name contains `pattern` (case-insensitive; empty matches all).
pub fn matching_readers(
    context: &pcsc::Context,
    pattern: &str,
) -> Result<Vec<CString>, TransportError> {
    let readers = match context.list_readers_owned() {
        Ok(readers) => readers,
        Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
        Err(error) => return Err(TransportError::Pcsc(error)),
    };
    let pattern_lower = pattern.to_lowercase();
    let (matching, _): (Vec<_>, Vec<_>) = readers.into_iter().partition(|name| {
        name.to_string_lossy()
            .to_lowercase()
            .contains(&pattern_lower)
    });
    Ok(matching)
}

fn find_reader(context: &pcsc::Context, pattern: &str) -> Result<CString, TransportError> {
    if let Some(reader) = matching_readers(context, pattern)?.into_iter().next() {
        return Ok(reader);
    }
    let available = matching_readers(context, "")?
        .iter()
        .map(|name| name.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    Err(TransportError::NoReader {
        pattern: pattern.to_owned(),
        available,
    })
}

impl PcscTransport {
    /// Connects to the card in the first reader whose name contains `reader_pattern`.
    pub fn connect(reader_pattern: &str) -> Result<Self, TransportError> {
        let context = pcsc::Context::establish(pcsc::Scope::User)?;
        let reader = find_reader(&context, reader_pattern)?;
        let reader_name = reader.to_string_lossy().into_owned();
        let card = context
            .connect(&reader, pcsc::ShareMode::Shared, pcsc::Protocols::ANY)
            .map_err(|error| match error {
                pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => TransportError::NoCard {
                    reader: reader_name.clone(),
                },
                other => TransportError::Pcsc(other),
            })?;
        Ok(Self {
            card: Some(card),
            reader: reader_name,
            buffer: vec![0; pcsc::MAX_BUFFER_SIZE_EXTENDED],
        })
    }

    /// The reader's name.
    pub fn reader(&self) -> &str {
        &self.reader
    }
}

impl CardTransport for PcscTransport {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let card = self.card.as_ref().ok_or(TransportError::CardRemoved)?;
        let response = card
            .transmit(command, &mut self.buffer)
            .map_err(map_error)?;
        Ok(response.to_vec())
    }
}

impl Drop for PcscTransport {
    /// Disconnects without resetting the card: a reset of a card that was just pulled can stall
    /// the reader driver for seconds, and the next user SELECTs (which ends any session) anyway.
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            let _ = card.disconnect(pcsc::Disposition::LeaveCard);
        }
        self.buffer.fill(0);
    }
}

impl Card<PcscTransport> {
    /// Connects to the card in the first reader matching `reader_pattern` and SELECTs the applet.
    pub fn connect(reader_pattern: &str) -> Result<Self, CardError> {
        Card::open(PcscTransport::connect(reader_pattern)?)
    }
}

/// A change of card presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardEvent {
    /// A card is present (also sent at start for a card already there).
    Inserted {
        /// Reader name.
        reader: String,
        /// Answer to reset.
        atr: Vec<u8>,
    },
    /// The card left the reader.
    Removed {
        /// Reader name.
        reader: String,
    },
}

/// ERASE on a card in a PC/SC reader, keeping its receipt even when the answer is lost.
///
/// Runs ERASE in a new session under `authority`. If the exchange fails in transport (the card
/// was pulled or the reader went away between the card storing the erase and answering), it
/// waits up to `wait` for the same card to be presented again in the same reader, and reads the
/// receipt with GET RECEIPT (`recover_erase_receipt`); `card` is then the new connection. Returns
/// the first error when the card refused the erase, when it does not come back in time, or when
/// it kept no receipt for `timestamp` (then the erase was not stored and may be sent again).
pub fn erase_recovering_receipt(
    card: &mut Card<PcscTransport>,
    verified: &VerifiedCard,
    authority: &EnrolmentAuthority,
    timestamp: u64,
    wait: Duration,
) -> Result<DeletionReceipt, CardError> {
    let first = card
        .open_session(verified)
        .and_then(|session| session.prove_authority(authority))
        .and_then(|mut enrolment| enrolment.erase(timestamp));
    let error = match first {
        Ok(receipt) => return Ok(receipt),
        Err(error @ CardError::Transport(_)) => error,
        Err(error) => return Err(error),
    };
    let reader = card.transport_mut().reader().to_owned();
    let deadline = std::time::Instant::now() + wait;
    while std::time::Instant::now() < deadline {
        // Right after a pull pcscd may still list the old card: retry until the card answers.
        let recovered = Card::connect(&reader).and_then(|mut again| {
            if again.identity().card_id != verified.card_id {
                return Ok(None);
            }
            let receipt = again
                .open_session(verified)?
                .prove_authority(authority)?
                .recover_erase_receipt(timestamp)?;
            *card = again;
            Ok(Some(receipt))
        });
        match recovered {
            Ok(Some(Some(receipt))) => return Ok(receipt),
            // The card is back and kept no receipt for this erase: it was not done.
            Ok(Some(None)) => return Err(error),
            // Another card, or no card yet.
            Ok(None) | Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    Err(error)
}

/// After a REDEEM MEAL whose answer was lost (the card was pulled): waits up to `wait` for the
/// same card to be presented in `reader` again, opens a session (no palm needed) and reads the
/// meal receipt it keeps. `Ok(Some(receipt))`: the meal of `request` was counted, serve it with
/// this receipt; `Ok(None)`: the card is back and that meal was not counted (the card stores the
/// count and the receipt in one write). An error if the card did not come back in time: the
/// meal may be counted, its receipt stays on the card for the next gate that asks.
pub fn recover_meal_receipt(
    reader: &str,
    verified: &VerifiedCard,
    request: &MealRequest,
    wait: Duration,
) -> Result<Option<MealReceipt>, CardError> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        // Right after a pull pcscd may still list the old card: retry until the card answers.
        let recovered = Card::connect(reader).and_then(|mut again| {
            if again.identity().card_id != verified.card_id {
                return Ok(None);
            }
            let kept = again.open_session(verified)?.recover_meal_receipt()?;
            Ok(Some(kept.filter(|receipt| receipt.answers(request))))
        });
        match recovered {
            Ok(Some(receipt)) => return Ok(receipt),
            Err(error) if std::time::Instant::now() >= deadline => return Err(error),
            // Another card, or no card yet.
            Ok(None) | Err(_) => {
                if std::time::Instant::now() >= deadline {
                    return Err(CardError::Transport(TransportError::NoCard {
                        reader: reader.to_owned(),
                    }));
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// What a [`CardMonitor`] started with [`CardMonitor::start_watching`] reports, in the order it
/// happens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MonitorEvent {
    /// A card came or went.
    Card(CardEvent),
    /// The reader became available or unavailable (reported once per change; the first event
    /// is always a health event).
    Health(ReaderHealth),
}

/// Watches readers matching a pattern and reports card insertion and removal — and keeps doing
/// so across pcscd restarts and reader replugs: when its PC/SC context is lost it reports every
/// present card removed, establishes a new context by itself (100 ms, doubling to 1 s between
/// attempts) and reports the cards present again as inserted.
pub struct CardMonitor {
    /// The context the watch uses now (cancelled by [`CardMonitor::stop`]).
    context: Arc<Mutex<Option<pcsc::Context>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Longest a monitor waits in one `SCardGetStatusChange` call; bounds how late a stop request
/// that arrives between two calls is noticed.
const MONITOR_POLL: Duration = Duration::from_millis(500);

impl std::fmt::Debug for CardMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardMonitor")
            .field("running", &self.thread.is_some())
            .finish_non_exhaustive()
    }
}

impl CardMonitor {
    /// Starts watching readers whose name contains `reader_pattern` (readers plugged in later are
    /// picked up). Card events arrive on the returned receiver; reader health is not reported
    /// (use [`CardMonitor::start_watching`] for it). Fails when pcscd cannot be reached now;
    /// once started, the monitor survives pcscd restarts by itself.
    pub fn start(
        reader_pattern: &str,
    ) -> Result<(Self, mpsc::Receiver<CardEvent>), TransportError> {
        let context = pcsc::Context::establish(pcsc::Scope::User)?;
        let (sender, receiver) = mpsc::channel();
        let monitor = Self::spawn(reader_pattern, Some(context), move |event| match event {
            MonitorEvent::Card(card) => sender.send(card).is_ok(),
            MonitorEvent::Health(_) => true,
        })?;
        Ok((monitor, receiver))
    }

    /// Starts watching readers whose name contains `reader_pattern`, reporting card events and
    /// reader health on one receiver. Starts even when pcscd is down (the first event then says
    /// the reader is unavailable) and keeps trying until it comes.
    pub fn start_watching(
        reader_pattern: &str,
    ) -> Result<(Self, mpsc::Receiver<MonitorEvent>), TransportError> {
        let (sender, receiver) = mpsc::channel();
        let monitor = Self::spawn(reader_pattern, None, move |event| {
            sender.send(event).is_ok()
        })?;
        Ok((monitor, receiver))
    }

    fn spawn(
        reader_pattern: &str,
        first_context: Option<pcsc::Context>,
        emit: impl FnMut(MonitorEvent) -> bool + Send + 'static,
    ) -> Result<Self, TransportError> {
        let context = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let watch = Watch {
            pattern: reader_pattern.to_owned(),
            shared_context: context.clone(),
            stop: stop.clone(),
            emit: Box::new(emit),
            tracker: HealthTracker::new(),
            backoff: ReconnectBackoff::new(),
        };
        let thread = std::thread::Builder::new()
            .name("pcsc-monitor".into())
            .spawn(move || watch.run(first_context))
            .map_err(TransportError::Io)?;
        Ok(Self {
            context,
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the thread.
    pub fn stop(mut self) -> Result<(), TransportError> {
        self.stop_thread();
        Ok(())
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.context.lock()
            && let Some(context) = guard.as_ref()
        {
            let _ = context.cancel();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for CardMonitor {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// Why one context's watch ended.
enum WatchEnd {
    /// Stop requested, or nobody listens any more.
    Stopped,
    /// pcscd went away (or the context broke): establish a new one.
    ContextLost(pcsc::Error),
}

/// The monitor thread.
struct Watch {
    pattern: String,
    shared_context: Arc<Mutex<Option<pcsc::Context>>>,
    stop: Arc<AtomicBool>,
    /// Returns `false` when the receiver is gone.
    emit: Box<dyn FnMut(MonitorEvent) -> bool + Send>,
    tracker: HealthTracker,
    backoff: ReconnectBackoff,
}

impl Watch {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn health(&mut self, change: Option<ReaderHealth>) -> bool {
        match change {
            Some(health) => (self.emit)(MonitorEvent::Health(health)),
            None => true,
        }
    }

    fn set_shared(&self, context: Option<&pcsc::Context>) {
        if let Ok(mut guard) = self.shared_context.lock() {
            *guard = context.cloned();
        }
    }

    /// Sleeps up to `delay`, waking early when stop is requested.
    fn pause(&self, delay: Duration) {
        let deadline = std::time::Instant::now() + delay;
        while !self.stopping() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    fn run(mut self, mut first_context: Option<pcsc::Context>) {
        while !self.stopping() {
            let context = match first_context
                .take()
                .map_or_else(|| pcsc::Context::establish(pcsc::Scope::User), Ok)
            {
                Ok(context) => context,
                Err(error) => {
                    let change = self.tracker.service_lost(error);
                    if !self.health(change) {
                        return;
                    }
                    let delay = self.backoff.failed();
                    self.pause(delay);
                    continue;
                }
            };
            self.set_shared(Some(&context));
            // A stop requested while the context was being established must not be missed.
            if self.stopping() {
                break;
            }
            let end = self.watch_context(&context);
            self.set_shared(None);
            match end {
                WatchEnd::Stopped => return,
                WatchEnd::ContextLost(error) => {
                    let change = self.tracker.service_lost(error);
                    if !self.health(change) {
                        return;
                    }
                    let delay = self.backoff.failed();
                    self.pause(delay);
                }
            }
        }
    }

    /// Reports removal of every card present (the context that saw them is gone).
    fn all_removed(&mut self, states: &[pcsc::ReaderState]) -> bool {
        for state in states.iter().skip(1) {
            if state.current_state().contains(pcsc::State::PRESENT) {
                let reader = state.name().to_string_lossy().into_owned();
                if !(self.emit)(MonitorEvent::Card(CardEvent::Removed { reader })) {
                    return false;
                }
            }
        }
        true
    }

    fn watch_context(&mut self, context: &pcsc::Context) -> WatchEnd {
        let mut states = vec![pcsc::ReaderState::new(
            pcsc::PNP_NOTIFICATION(),
            pcsc::State::UNAWARE,
        )];
        while !self.stopping() {
            // Keep the notification entry, drop readers that vanished, add new matching readers.
            states.retain(|state| {
                !state
                    .event_state()
                    .intersects(pcsc::State::UNKNOWN | pcsc::State::IGNORE)
                    || state.name() == pcsc::PNP_NOTIFICATION()
            });
            let readers = match matching_readers(context, &self.pattern) {
                Ok(readers) => readers,
                Err(TransportError::Pcsc(error)) => {
                    return self.lost(&states, error);
                }
                Err(_) => return self.lost(&states, pcsc::Error::UnknownError),
            };
            let names: Vec<String> = readers
                .iter()
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
            let change = self.tracker.readers_listed(&self.pattern, &names);
            if change.as_ref().is_some_and(ReaderHealth::is_available) {
                self.backoff.succeeded();
            }
            if !self.health(change) {
                return WatchEnd::Stopped;
            }
            for name in readers {
                if !states.iter().any(|state| state.name() == name.as_c_str()) {
                    states.push(pcsc::ReaderState::new(name, pcsc::State::UNAWARE));
                }
            }
            match context.get_status_change(MONITOR_POLL, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => continue,
                Err(pcsc::Error::Cancelled) if self.stopping() => return WatchEnd::Stopped,
                Err(pcsc::Error::UnknownReader) => {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
                // pcscd stopped (NoService, ServiceStopped, CommError, InvalidHandle, …).
                Err(error) => return self.lost(&states, error),
            }
            for state in states.iter_mut().skip(1) {
                let before = state.current_state();
                let after = state.event_state();
                let reader = state.name().to_string_lossy().into_owned();
                let was_present = before.contains(pcsc::State::PRESENT);
                let is_present = after.contains(pcsc::State::PRESENT);
                // A removal and reinsertion between two calls shows as a changed event count.
                let count_changed = before.bits() >> 16 != after.bits() >> 16;
                let events = match (was_present, is_present) {
                    (false, true) => vec![CardEvent::Inserted {
                        reader,
                        atr: state.atr().to_vec(),
                    }],
                    (true, false) => vec![CardEvent::Removed { reader }],
                    (true, true) if count_changed && after.contains(pcsc::State::CHANGED) => {
                        vec![
                            CardEvent::Removed {
                                reader: reader.clone(),
                            },
                            CardEvent::Inserted {
                                reader,
                                atr: state.atr().to_vec(),
                            },
                        ]
                    }
                    _ => Vec::new(),
                };
                state.sync_current_state();
                for event in events {
                    if !(self.emit)(MonitorEvent::Card(event)) {
                        return WatchEnd::Stopped;
                    }
                }
            }
            if let Some(notification) = states.first_mut() {
                notification.sync_current_state();
            }
        }
        WatchEnd::Stopped
    }

    fn lost(&mut self, states: &[pcsc::ReaderState], error: pcsc::Error) -> WatchEnd {
        if self.stopping() || !self.all_removed(states) {
            return WatchEnd::Stopped;
        }
        WatchEnd::ContextLost(error)
    }
}

/// Waits until a card is present in a reader matching `reader_pattern`, up to `timeout`.
/// Returns `false` on time-out.
pub fn wait_for_card(reader_pattern: &str, timeout: Duration) -> Result<bool, TransportError> {
    let context = pcsc::Context::establish(pcsc::Scope::User)?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        for name in matching_readers(&context, reader_pattern)? {
            let mut states = [pcsc::ReaderState::new(name, pcsc::State::UNAWARE)];
            if context
                .get_status_change(Duration::ZERO, &mut states)
                .is_ok()
                && states[0].event_state().contains(pcsc::State::PRESENT)
                && !states[0].event_state().contains(pcsc::State::MUTE)
                && !states[0].atr().is_empty()
            {
                return Ok(true);
            }
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
