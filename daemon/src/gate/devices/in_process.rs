//! Devices played by a test in the same process: a card reader holding in-process applets
//! ([`InProcessReader`], cards put on and pulled off through [`InProcessCardSlot`]), a sensor
//! whose events the test sends ([`ChannelSensor`]) or palmgate-sensor's own device task over
//! in-memory links ([`DuplexSensor`]), and an event link whose events the test receives and whose
//! commands it sends ([`ChannelLink`]). Unit and component tests only: the
//! system tests run the real devices.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use palmgate_card::host::pcsc::{CardEvent, MonitorEvent};
use palmgate_card::host::reader_health::ReaderHealth;
use palmgate_card::host::{CardTransport, TransportError};
use palmgate_sensor::device::{
    self, DeviceCommand, DeviceConfig, SensorEvent, StreamConnector, StreamPlug,
};
use tokio::io::DuplexStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{CardPresence, CardReader, EventLink, SensorLink, StopSignal};
use crate::event::Event;
use crate::gate::card_worker::CardWorkerError;
use crate::mqtt::{LinkError, LinkHandles, RetainedDoorState, VerifiedCommand};
use crate::outbox::Outbox;

/// A card in this process (an applet behind [`palmgate_card::host::InProcessTransport`]), put on
/// and taken off the reader with [`InProcessCardSlot`].
pub struct InProcessReader<T> {
    slot: InProcessCardSlot<T>,
    events: Option<std_mpsc::Receiver<MonitorEvent>>,
}

impl<T> std::fmt::Debug for InProcessReader<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessReader").finish_non_exhaustive()
    }
}

/// The test's side of an [`InProcessReader`]: presents and pulls cards.
pub struct InProcessCardSlot<T> {
    card: Arc<Mutex<Option<Arc<Mutex<T>>>>>,
    events: std_mpsc::Sender<MonitorEvent>,
}

impl<T> Clone for InProcessCardSlot<T> {
    fn clone(&self) -> Self {
        Self {
            card: self.card.clone(),
            events: self.events.clone(),
        }
    }
}

impl<T> std::fmt::Debug for InProcessCardSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessCardSlot").finish_non_exhaustive()
    }
}

const IN_PROCESS_READER: &str = "in-process reader";

impl<T: CardTransport + Send + 'static> InProcessReader<T> {
    /// An empty reader and its slot.
    pub fn new() -> (Self, InProcessCardSlot<T>) {
        let (sender, events) = std_mpsc::channel();
        let slot = InProcessCardSlot {
            card: Arc::new(Mutex::new(None)),
            events: sender,
        };
        (
            Self {
                slot: slot.clone(),
                events: Some(events),
            },
            slot,
        )
    }
}

impl<T: CardTransport + Send + 'static> InProcessCardSlot<T> {
    /// Puts `card` on the reader (its state is kept: take it back with [`Self::pull`]).
    pub fn present(&self, card: Arc<Mutex<T>>) {
        *self.card.lock().unwrap_or_else(PoisonError::into_inner) = Some(card);
        let _ = self.events.send(MonitorEvent::Card(CardEvent::Inserted {
            reader: IN_PROCESS_READER.to_string(),
            atr: Vec::new(),
        }));
    }

    /// Takes the card off the reader: a session in progress fails from here on.
    pub fn pull(&self) {
        *self.card.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let _ = self.events.send(MonitorEvent::Card(CardEvent::Removed {
            reader: IN_PROCESS_READER.to_string(),
        }));
    }

    /// Reports the reader's health as a PC/SC monitor would (pcscd gone, back, reader replugged).
    pub fn health(&self, health: ReaderHealth) {
        let _ = self.events.send(MonitorEvent::Health(health));
    }

    fn current(&self) -> Option<Arc<Mutex<T>>> {
        self.card
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A connection to an in-process card; fails once the card has been pulled.
pub struct InProcessConnection<T> {
    slot: InProcessCardSlot<T>,
    card: Arc<Mutex<T>>,
}

impl<T: CardTransport + Send + 'static> CardTransport for InProcessConnection<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        match self.slot.current() {
            Some(card) if Arc::ptr_eq(&card, &self.card) => self
                .card
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .transmit(command),
            _ => Err(TransportError::CardRemoved),
        }
    }
}

impl<T: CardTransport + Send + 'static> CardReader for InProcessReader<T> {
    type Transport = InProcessConnection<T>;

    fn watch(&mut self) -> Result<CardPresence, CardWorkerError> {
        let events = self.events.take().ok_or(CardWorkerError::AlreadyWatched)?;
        Ok(CardPresence {
            events,
            ended: Box::new(|| "reader watch ended".to_string()),
        })
    }

    fn connect(&mut self) -> Result<Self::Transport, TransportError> {
        let card = self.slot.current().ok_or_else(|| TransportError::NoCard {
            reader: IN_PROCESS_READER.to_string(),
        })?;
        Ok(InProcessConnection {
            slot: self.slot.clone(),
            card,
        })
    }
}

/// A sensor played by the test: what it sends on [`ChannelSensorEnds::events`] reaches the gate,
/// what the gate asks arrives on [`ChannelSensorEnds::commands`].
#[derive(Debug)]
pub struct ChannelSensor {
    events: mpsc::Receiver<SensorEvent>,
    commands: mpsc::Sender<DeviceCommand>,
}

/// The test's ends of a [`ChannelSensor`].
#[derive(Debug)]
pub struct ChannelSensorEnds {
    /// Sensor events to deliver to the gate.
    pub events: mpsc::Sender<SensorEvent>,
    /// Commands the gate sent to the sensor.
    pub commands: mpsc::Receiver<DeviceCommand>,
}

impl ChannelSensor {
    /// The sensor and the test's ends.
    pub fn new() -> (Self, ChannelSensorEnds) {
        let (events_tx, events) = mpsc::channel(16);
        let (commands, commands_rx) = mpsc::channel(16);
        (
            Self { events, commands },
            ChannelSensorEnds {
                events: events_tx,
                commands: commands_rx,
            },
        )
    }
}

impl SensorLink for ChannelSensor {
    fn spawn(
        self: Box<Self>,
        events: mpsc::Sender<SensorEvent>,
        mut commands: mpsc::Receiver<DeviceCommand>,
        stop: StopSignal,
    ) -> JoinHandle<()> {
        let Self {
            events: mut from_test,
            commands: to_test,
        } = *self;
        tokio::spawn(async move {
            let stop = stop.wait();
            tokio::pin!(stop);
            loop {
                tokio::select! {
                    () = &mut stop => return,
                    Some(event) = from_test.recv() => if events.send(event).await.is_err() {
                        return;
                    },
                    Some(command) = commands.recv() => {
                        let _ = to_test.send(command).await;
                    }
                    else => return,
                }
            }
        })
    }
}

/// palmgate-sensor's device task (codec, requests, timeouts, reconnection) over in-memory links:
/// the test plugs in the near end of a `tokio::io::duplex` for each connection and plays the
/// sensor on the far end (`palmgate_sensor::device::ScriptedSensor`); dropping that end is an
/// unplug. `DeviceConfig::path` and `baud` are unused.
#[derive(Debug)]
pub struct DuplexSensor {
    connector: StreamConnector<DuplexStream>,
    config: DeviceConfig,
}

impl DuplexSensor {
    /// The sensor link with the device task's settings `config`, and the plug for its links.
    pub fn new(config: DeviceConfig) -> (Self, StreamPlug<DuplexStream>) {
        let (connector, plug) = StreamConnector::new();
        (Self { connector, config }, plug)
    }
}

impl SensorLink for DuplexSensor {
    fn spawn(
        self: Box<Self>,
        events: mpsc::Sender<SensorEvent>,
        commands: mpsc::Receiver<DeviceCommand>,
        stop: StopSignal,
    ) -> JoinHandle<()> {
        let Self { connector, config } = *self;
        tokio::spawn(device::run_with(
            connector,
            config,
            events,
            commands,
            stop.wait(),
        ))
    }
}

/// A link played by the test: each event appended to the outbox is delivered (and acknowledged)
/// on [`ChannelLinkEnds::events`], door states on [`ChannelLinkEnds::door_states`]; commands sent
/// on [`ChannelLinkEnds::commands`] reach the gate as if verified.
#[derive(Debug)]
pub struct ChannelLink {
    events: mpsc::UnboundedSender<Event>,
    door_states: mpsc::Sender<(String, RetainedDoorState)>,
    commands: mpsc::Receiver<VerifiedCommand>,
}

/// The test's ends of a [`ChannelLink`].
#[derive(Debug)]
pub struct ChannelLinkEnds {
    /// The gate's events, in order.
    pub events: mpsc::UnboundedReceiver<Event>,
    /// Door states the gate published.
    pub door_states: mpsc::Receiver<(String, RetainedDoorState)>,
    /// Commands to deliver to the gate.
    pub commands: mpsc::Sender<VerifiedCommand>,
}

impl ChannelLink {
    /// The link and the test's ends.
    pub fn new() -> (Self, ChannelLinkEnds) {
        let (events_tx, events) = mpsc::unbounded_channel();
        let (door_tx, door_states) = mpsc::channel(64);
        let (commands, commands_rx) = mpsc::channel(16);
        (
            Self {
                events: events_tx,
                door_states: door_tx,
                commands: commands_rx,
            },
            ChannelLinkEnds {
                events,
                door_states,
                commands,
            },
        )
    }
}

impl EventLink for ChannelLink {
    fn start(
        self: Box<Self>,
        outbox: Arc<Outbox>,
        stop: StopSignal,
    ) -> Result<(LinkHandles, JoinHandle<Result<(), LinkError>>), LinkError> {
        let (door_tx, mut door_rx) = mpsc::channel(64);
        // Meal counts are not forwarded in process; they are taken so that the gate can send.
        let (meal_tx, mut meal_rx) = mpsc::channel(8);
        let (_connected_tx, connected) = watch::channel(true);
        let Self {
            events,
            door_states,
            commands,
        } = *self;
        let task = tokio::spawn(async move {
            let stop = stop.wait();
            tokio::pin!(stop);
            let mut appended = outbox.durable();
            let mut last = None;
            loop {
                // Everything the outbox holds goes out before waiting again.
                for event in outbox.pending(last, 64)? {
                    last = Some(event.id);
                    outbox.ack(event.id)?;
                    let _ = events.send(event);
                }
                tokio::select! {
                    () = &mut stop => return Ok(()),
                    Some(state) = door_rx.recv() => { let _ = door_states.send(state).await; }
                    Some(_) = meal_rx.recv() => {}
                    changed = appended.changed() => if changed.is_err() {
                        return Ok(());
                    },
                }
            }
        });
        Ok((
            LinkHandles {
                door_states: door_tx,
                meal_counts: meal_tx,
                commands,
                connected,
            },
            task,
        ))
    }
}
