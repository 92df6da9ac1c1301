//! PC/SC transport (blocking) and card presence events.
//!
//! Every call here blocks: an async caller runs them with `spawn_blocking` (or keeps a dedicated
//! thread). [`CardMonitor`] runs `SCardGetStatusChange` in its own thread and sends
//! [`CardEvent`]s over a std channel.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::host::card::Card;
use crate::host::error::{CardError, TransportError};
use crate::host::transport::CardTransport;

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

/// Watches readers matching a pattern and reports card insertion and removal.
pub struct CardMonitor {
    context: pcsc::Context,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), TransportError>>>,
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
    /// picked up). Events arrive on the returned receiver.
    pub fn start(
        reader_pattern: &str,
    ) -> Result<(Self, mpsc::Receiver<CardEvent>), TransportError> {
        let context = pcsc::Context::establish(pcsc::Scope::User)?;
        let (sender, receiver) = mpsc::channel();
        let thread_context = context.clone();
        let pattern = reader_pattern.to_owned();
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("pcsc-monitor".into())
            .spawn(move || watch(&thread_context, &pattern, &sender, &thread_stop))
            .map_err(TransportError::Io)?;
        Ok((
            Self {
                context,
                stop,
                thread: Some(thread),
            },
            receiver,
        ))
    }

    /// Stops the thread and returns how it ended.
    pub fn stop(mut self) -> Result<(), TransportError> {
        self.stop_thread()
    }

    fn stop_thread(&mut self) -> Result<(), TransportError> {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.context.cancel();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) | None => Ok(()),
        }
    }
}

impl Drop for CardMonitor {
    fn drop(&mut self) {
        let _ = self.stop_thread();
    }
}

fn watch(
    context: &pcsc::Context,
    pattern: &str,
    events: &mpsc::Sender<CardEvent>,
    stop: &AtomicBool,
) -> Result<(), TransportError> {
    let mut states = vec![pcsc::ReaderState::new(
        pcsc::PNP_NOTIFICATION(),
        pcsc::State::UNAWARE,
    )];
    while !stop.load(Ordering::SeqCst) {
        // Keep the notification entry, drop readers that vanished, add new matching readers.
        states.retain(|state| {
            !state
                .event_state()
                .intersects(pcsc::State::UNKNOWN | pcsc::State::IGNORE)
                || state.name() == pcsc::PNP_NOTIFICATION()
        });
        for name in matching_readers(context, pattern)? {
            if !states.iter().any(|state| state.name() == name.as_c_str()) {
                states.push(pcsc::ReaderState::new(name, pcsc::State::UNAWARE));
            }
        }
        match context.get_status_change(MONITOR_POLL, &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Cancelled) => return Ok(()),
            Err(pcsc::Error::Timeout) => continue,
            Err(pcsc::Error::UnknownReader) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(error) => return Err(TransportError::Pcsc(error)),
        }
        for state in states.iter_mut().skip(1) {
            let before = state.current_state();
            let after = state.event_state();
            let reader = state.name().to_string_lossy().into_owned();
            let was_present = before.contains(pcsc::State::PRESENT);
            let is_present = after.contains(pcsc::State::PRESENT);
            // A removal and reinsertion between two calls shows as a changed event count.
            let count_changed = before.bits() >> 16 != after.bits() >> 16;
            let event = match (was_present, is_present) {
                (false, true) => Some(CardEvent::Inserted {
                    reader,
                    atr: state.atr().to_vec(),
                }),
                (true, false) => Some(CardEvent::Removed { reader }),
                (true, true) if count_changed && after.contains(pcsc::State::CHANGED) => {
                    let _ = events.send(CardEvent::Removed {
                        reader: reader.clone(),
                    });
                    Some(CardEvent::Inserted {
                        reader,
                        atr: state.atr().to_vec(),
                    })
                }
                _ => None,
            };
            state.sync_current_state();
            if let Some(event) = event
                && events.send(event).is_err()
            {
                return Ok(());
            }
        }
        if let Some(notification) = states.first_mut() {
            notification.sync_current_state();
        }
    }
    Ok(())
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
