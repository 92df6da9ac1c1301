//! The I/O shell around rumqttc: connects (with back-off), publishes status, discovery, door
//! state and the outbox's events, and hands verified commands to the daemon.
//!
//! # Sessions
//! Each connection attempt gets a fresh rumqttc client and event loop, driven by a connection
//! task that is never cancelled mid-poll and forwards what happens over a channel. The link task
//! keeps one `Session` per connection: requests made on an old session's client can never leak
//! into a new one, so the order of `Outgoing::Publish` notifications matches the order of the
//! link's own publish calls and each PUBACK maps back to the event it acknowledges.
//!
//! # Delivery
//! Events are published with QoS 1, in id order, at most [`EVENT_WINDOW`] in flight, and only
//! once durable (see the outbox's flush policy). A PUBACK deletes the event from the outbox. When
//! a connection drops, unacknowledged events stay in the outbox and the next session starts again
//! from the oldest one: subscribers may see an event twice (QoS 1 is at least once; the event id
//! identifies duplicates) but never miss one, and never see them out of order within a session.
//!
//! # What the broker cannot do to the link
//! rumqttc drops the connection on any incoming packet above its size limit, before reading it;
//! a retained oversized command then came back on every reconnect (a reconnect storm). The
//! transport limit is therefore MQTT's own maximum ([`MQTT_MAX_PACKET`]): a conforming broker
//! cannot send anything the client refuses, and the verifier refuses commands over
//! [`super::command::MAX_COMMAND_BYTES`] as `too_large`. Reconnect back-off ([`Backoff`]) only
//! resets after a connection that stayed up, and refusals are rate-limited ([`RefusalLimiter`]).

use crate::error_chain;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event as MqttEvent, Incoming, LastWill, MqttOptions, Outgoing, QoS, Transport,
};
use tokio::sync::{mpsc, watch};

use super::backoff::Backoff;
use super::command::{
    CommandVerifier, OperatorKey, OperatorKeyError, ReplayCache, Verdict, VerifiedCommand,
};
use super::discovery::{
    DeviceDiscovery, DiscoveryDoor, DiscoveryPlan, DiscoveryRecord, LegacyTopics,
};
use super::refusals::{RefusalLimiter, RefusalSummary};
use super::replay::StoreReplayCache;
use super::tls::{TlsBridge, TlsError, client_config};
use super::topics::{
    Availability, Diagnostics, MealCounts, RetainedDoorState, Topics, last_will_payload,
    status_payload,
};
use crate::config::{MqttScheme, MqttSettings, Settings};
use crate::event::{EventId, EventKind, NewEvent, Outcome, Reason, Timestamp};
use crate::outbox::{Outbox, OutboxError};

/// Most events published and not yet acknowledged.
pub const EVENT_WINDOW: usize = 64;
/// rumqttc's in-flight limit: above the window, so packet ids never collide.
const MQTT_INFLIGHT: u16 = 128;
const REQUEST_CAPACITY: usize = 512;
const BACKOFF_START: Duration = Duration::from_millis(250);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long resets the back-off (see [`Backoff`]).
const BACKOFF_STABLE_AFTER: Duration = Duration::from_secs(30);
/// The largest packet MQTT 3.1.1 can frame (§2.2.3: the remaining length is at most
/// 268,435,455 bytes). The client takes any packet a broker can send; commands above
/// [`super::command::MAX_COMMAND_BYTES`] are refused by the verifier, not by the transport.
pub const MQTT_MAX_PACKET: usize = 268_435_455;
/// Largest packet the gate sends (events, discovery): far below any broker's limit.
const MAX_OUTGOING_PACKET: usize = 256 * 1024;
const DIAGNOSTICS_EVERY: Duration = Duration::from_secs(30);

/// What the link needs from the configuration.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Gate id.
    pub gate: String,
    /// Gate display name (Home Assistant device name).
    pub gate_name: String,
    /// `[mqtt]`.
    pub mqtt: MqttSettings,
    /// Doors (for discovery).
    pub doors: Vec<DiscoveryDoor>,
    /// At a canteen gate, the groups with a meal allowance (for the meal count sensors).
    pub meal_groups: Option<Vec<String>>,
    /// Private directory for the TLS bridge socket (`<state_dir>/run`).
    pub runtime_dir: PathBuf,
    /// What was last published for Home Assistant (`<state_dir>/discovery.json`), so that a door
    /// removed from the configuration, or `discovery = false`, clears what was published before.
    pub discovery_record: PathBuf,
}

impl LinkOptions {
    /// From the daemon's settings.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            gate: settings.gate.id.clone(),
            gate_name: settings.gate.name.clone(),
            mqtt: settings.mqtt.clone(),
            doors: settings
                .door
                .iter()
                .map(|(name, door)| DiscoveryDoor {
                    name: name.clone(),
                    has_contact: door.contact_pin.is_some(),
                })
                .collect(),
            meal_groups: canteen_groups(settings),
            runtime_dir: settings.storage.state_dir.join("run"),
            discovery_record: settings.storage.state_dir.join("discovery.json"),
        }
    }
}

/// The meal groups when this gate's reader (`card.door`) is a canteen gate of the policy. The
/// gate loads the policy again at start and refuses to start on an invalid one, so an error here
/// only means no meal sensors.
fn canteen_groups(settings: &Settings) -> Option<Vec<String>> {
    let path = settings.card.policy_file.as_ref()?;
    let doors = settings.door.keys().cloned().collect();
    let rules = crate::access::PolicyRules::load(path, &doors).ok()?;
    rules
        .meals()
        .is_canteen(&settings.card.door)
        .then(|| rules.meals().groups().map(str::to_owned).collect())
}

/// Link set-up failures (connection problems are retried, not returned).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// TLS configuration.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// An operator key file.
    #[error(transparent)]
    OperatorKey(#[from] OperatorKeyError),
    /// The outbox (replay cache tree).
    #[error(transparent)]
    Outbox(#[from] OutboxError),
}

/// The daemon's side of the link.
#[derive(Debug)]
pub struct LinkHandles {
    /// Send door state changes here (published retained on `door/<door>/state`).
    pub door_states: mpsc::Sender<(String, RetainedDoorState)>,
    /// Send a canteen gate's meal counts here (published retained on `meals`).
    pub meal_counts: mpsc::Sender<MealCounts>,
    /// Verified commands to carry out.
    pub commands: mpsc::Receiver<VerifiedCommand>,
    /// Whether the link is connected to the broker.
    pub connected: watch::Receiver<bool>,
}

/// The MQTT link.
pub struct Link {
    options: LinkOptions,
    topics: Topics,
    outbox: Arc<Outbox>,
    verifier: CommandVerifier,
    replay: Box<dyn ReplayCache + Send>,
    commands: mpsc::Sender<VerifiedCommand>,
    door_rx: mpsc::Receiver<(String, RetainedDoorState)>,
    meal_rx: mpsc::Receiver<MealCounts>,
    /// The meal counts last handed over (published again after a reconnect).
    meal_counts: Option<MealCounts>,
    connected: watch::Sender<bool>,
    refusals: RefusalLimiter,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("gate", &self.options.gate)
            .finish()
    }
}

enum Tag {
    Event(EventId),
    Other,
}

struct Session {
    client: AsyncClient,
    /// Tags of our publish calls whose `Outgoing::Publish` has not been seen yet, in call order.
    unsent: VecDeque<Tag>,
    /// Tags by packet id, awaiting PUBACK.
    by_pkid: HashMap<u16, Tag>,
    events_in_flight: usize,
    last_event: Option<EventId>,
}

enum FromBroker {
    Connected(AsyncClient),
    Mqtt(MqttEvent),
    Lost(String),
}

impl Link {
    /// Builds the link: loads the operator keys and opens the replay cache in the outbox database.
    pub fn new(
        options: LinkOptions,
        outbox: Arc<Outbox>,
    ) -> Result<(Self, LinkHandles), LinkError> {
        let keys = OperatorKey::load_all(&options.mqtt.operator_keys)?;
        if keys.is_empty() {
            tracing::warn!("mqtt.operator_keys is empty: every remote command will be refused");
        }
        let verifier = CommandVerifier::new(&options.gate, keys, options.mqtt.command_max_age);
        let replay = Box::new(StoreReplayCache::new(outbox.state_tree("command_nonces")?));
        let (door_tx, door_rx) = mpsc::channel(64);
        let (meal_tx, meal_rx) = mpsc::channel(16);
        let (command_tx, command_rx) = mpsc::channel(16);
        let (connected_tx, connected_rx) = watch::channel(false);
        let topics = Topics::new(&options.mqtt.topic_prefix, &options.gate);
        let link = Self {
            options,
            topics,
            outbox,
            verifier,
            replay,
            commands: command_tx,
            door_rx,
            meal_rx,
            meal_counts: None,
            connected: connected_tx,
            refusals: RefusalLimiter::default(),
        };
        Ok((
            link,
            LinkHandles {
                door_states: door_tx,
                meal_counts: meal_tx,
                commands: command_rx,
                connected: connected_rx,
            },
        ))
    }

    fn mqtt_options(&self, bridge: Option<&TlsBridge>) -> MqttOptions {
        let settings = &self.options.mqtt;
        let mut options = match bridge {
            Some(bridge) => {
                let mut options = MqttOptions::new(
                    &settings.client_id,
                    bridge.socket_path().to_string_lossy(),
                    0,
                );
                options.set_transport(Transport::Unix);
                options
            }
            None => MqttOptions::new(&settings.client_id, &settings.host, settings.port),
        };
        options
            .set_keep_alive(settings.keep_alive.max(Duration::from_secs(5)))
            .set_clean_session(true)
            .set_inflight(MQTT_INFLIGHT)
            .set_request_channel_capacity(REQUEST_CAPACITY)
            .set_max_packet_size(MQTT_MAX_PACKET, MAX_OUTGOING_PACKET)
            .set_last_will(LastWill::new(
                self.topics.status(),
                last_will_payload(&self.options.gate),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(user) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            options.set_credentials(user, password);
        }
        options
    }

    /// Runs until `shutdown` completes: then publishes `offline` (retained) and disconnects.
    /// Unacknowledged events stay in the outbox for the next start.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), LinkError> {
        let bridge = match self.options.mqtt.scheme {
            MqttScheme::Mqtts => {
                let config = client_config(&self.options.mqtt)?;
                Some(TlsBridge::start(
                    &self.options.runtime_dir,
                    &self.options.mqtt.host,
                    self.options.mqtt.port,
                    config,
                )?)
            }
            MqttScheme::Mqtt => None,
        };
        let (broker_tx, mut broker_rx) = mpsc::channel(1024);
        let connection = AbortOnDrop(tokio::spawn(connection_task(
            self.mqtt_options(bridge.as_ref()),
            broker_tx,
        )));
        let mut durable = self.outbox.durable();
        let mut session: Option<Session> = None;
        let mut doors: BTreeMap<String, RetainedDoorState> = BTreeMap::new();
        let mut diagnostics = tokio::time::interval(DIAGNOSTICS_EVERY);
        diagnostics.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            let summary_due = self.refusals.summary_due();
            tokio::select! {
                () = &mut shutdown => break,
                () = sleep_until_some(summary_due) => {
                    if let Some(summary) = self.refusals.tick(std::time::Instant::now()) {
                        self.record_refusal_summary(&summary);
                    }
                }
                message = broker_rx.recv() => match message {
                    Some(FromBroker::Connected(client)) => {
                        tracing::info!(broker = %self.options.mqtt.url, "MQTT connected");
                        let mut new = Session {
                            client,
                            unsent: VecDeque::new(),
                            by_pkid: HashMap::new(),
                            events_in_flight: 0,
                            last_event: None,
                        };
                        self.on_connect(&mut new, &doors);
                        session = Some(new);
                        self.connected.send_replace(true);
                    }
                    Some(FromBroker::Mqtt(event)) => {
                        if let Some(current) = session.as_mut() {
                            self.on_mqtt_event(current, event).await;
                        }
                    }
                    Some(FromBroker::Lost(error)) => {
                        if session.take().is_some() {
                            tracing::warn!(%error, "MQTT connection lost; reconnecting");
                        } else {
                            tracing::debug!(%error, "MQTT connection attempt failed");
                        }
                        self.connected.send_replace(false);
                    }
                    None => break,
                },
                changed = durable.changed() => {
                    if changed.is_err() {
                        break;
                    }
                }
                Some((door, status)) = self.door_rx.recv() => {
                    if let Some(current) = session.as_mut() {
                        publish_other(current, self.topics.door_state(&door), json(&status), true);
                    }
                    doors.insert(door, status);
                }
                Some(counts) = self.meal_rx.recv() => {
                    if let Some(current) = session.as_mut() {
                        publish_other(current, self.topics.meals(), json(&counts), true);
                    }
                    self.meal_counts = Some(counts);
                }
                _ = diagnostics.tick() => {
                    if let Some(current) = session.as_mut() {
                        self.publish_diagnostics(current);
                    }
                }
            }
            if let Some(current) = session.as_mut() {
                self.fill(current);
            }
        }
        // What the refusal limiter counted is recorded (delivered now or after the restart).
        if let Some(summary) = self.refusals.finish() {
            self.record_refusal_summary(&summary);
        }
        if let Some(current) = session.as_mut() {
            let offline =
                status_payload(&self.options.gate, Availability::Offline, Timestamp::now());
            publish_other(current, self.topics.status(), offline, true);
            // Give the offline status a moment to reach the broker before disconnecting.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
            while !current.unsent.is_empty() || !current.by_pkid.is_empty() {
                match tokio::time::timeout_at(deadline, broker_rx.recv()).await {
                    Ok(Some(FromBroker::Mqtt(event))) => self.on_mqtt_event(current, event).await,
                    _ => break,
                }
            }
            let _ = current.client.try_disconnect();
            let _ = tokio::time::timeout(Duration::from_millis(500), broker_rx.recv()).await;
        }
        drop(connection);
        self.connected.send_replace(false);
        drop(bridge);
        Ok(())
    }

    fn on_connect(&self, session: &mut Session, doors: &BTreeMap<String, RetainedDoorState>) {
        if let Err(error) = session
            .client
            .try_subscribe(self.topics.command_filter(), QoS::AtLeastOnce)
        {
            tracing::warn!(error = %error_chain(&error), "cannot subscribe to commands");
        }
        let online = status_payload(&self.options.gate, Availability::Online, Timestamp::now());
        publish_other(session, self.topics.status(), online, true);
        self.publish_discovery(session);
        for (door, status) in doors {
            publish_other(session, self.topics.door_state(door), json(status), true);
        }
        if let Some(counts) = &self.meal_counts {
            publish_other(session, self.topics.meals(), json(counts), true);
        }
        self.publish_diagnostics(session);
    }

    /// Home Assistant discovery: the device config (or nothing, with `discovery = false`), and
    /// empty retained configs for what the last start published and is no longer configured.
    fn publish_discovery(&self, session: &mut Session) {
        let prefix = &self.options.mqtt.discovery_prefix;
        let path = &self.options.discovery_record;
        let previous = read_discovery_record(path);
        let current = self.options.mqtt.discovery.then(|| {
            let device = DeviceDiscovery::new(
                prefix,
                &self.topics,
                &self.options.gate,
                &self.options.gate_name,
                &self.options.doors,
            );
            match &self.options.meal_groups {
                Some(groups) => device.with_meals(&self.topics, groups),
                None => device,
            }
        });
        let legacy = LegacyTopics::new(prefix, &self.options.gate, &self.options.doors);
        let plan = DiscoveryPlan::new(previous.as_ref(), current.as_ref(), &legacy);
        for message in plan.messages {
            publish_other(session, message.topic, message.payload, true);
        }
        let stored = match &plan.record {
            Some(record) => serde_json::to_vec(record)
                .map_err(std::io::Error::other)
                .and_then(|bytes| crate::gate::state::durable::replace_file(path, &bytes)),
            None => match std::fs::remove_file(path) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
                _ => Ok(()),
            },
        };
        if let Err(error) = stored {
            // Only the clean-up at the next start depends on it; say what would be left behind.
            tracing::warn!(error = %error_chain(&error), path = %path.display(), "cannot record what was published for Home Assistant: a door removed later may stay in Home Assistant");
        }
    }

    fn publish_diagnostics(&self, session: &mut Session) {
        let diagnostics = Diagnostics {
            outbox_len: self.outbox.len(),
            outbox_capacity: self.outbox.capacity(),
            next_event_id: self.outbox.next_id(),
            time: Timestamp::now(),
        };
        publish_other(session, self.topics.diagnostics(), json(&diagnostics), true);
    }

    /// Publishes durable events until the window is full.
    fn fill(&self, session: &mut Session) {
        while session.events_in_flight < EVENT_WINDOW {
            let room = EVENT_WINDOW - session.events_in_flight;
            let events = match self.outbox.pending(session.last_event, room) {
                Ok(events) => events,
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "cannot read the outbox");
                    return;
                }
            };
            if events.is_empty() {
                return;
            }
            for event in events {
                let topic = self.topics.event(&event.kind);
                match session
                    .client
                    .try_publish(topic, QoS::AtLeastOnce, false, event.to_json())
                {
                    Ok(()) => {
                        session.unsent.push_back(Tag::Event(event.id));
                        session.events_in_flight += 1;
                        session.last_event = Some(event.id);
                    }
                    // Request channel full: the next wake-up continues from `last_event`.
                    Err(_) => return,
                }
            }
        }
    }

    async fn on_mqtt_event(&mut self, session: &mut Session, event: MqttEvent) {
        match event {
            MqttEvent::Outgoing(Outgoing::Publish(pkid)) => {
                let tag = session.unsent.pop_front().unwrap_or(Tag::Other);
                if pkid != 0 {
                    session.by_pkid.insert(pkid, tag);
                } else if let Tag::Event(_) = tag {
                    session.events_in_flight = session.events_in_flight.saturating_sub(1);
                }
            }
            MqttEvent::Incoming(Incoming::PubAck(ack)) => match session.by_pkid.remove(&ack.pkid) {
                Some(Tag::Event(id)) => {
                    session.events_in_flight = session.events_in_flight.saturating_sub(1);
                    if let Err(error) = self.outbox.ack(id) {
                        tracing::error!(error = %error_chain(&error), id, "cannot delete an acknowledged event");
                    }
                }
                Some(Tag::Other) => {}
                None => tracing::warn!(pkid = ack.pkid, "PUBACK for an unknown packet id"),
            },
            MqttEvent::Incoming(Incoming::Publish(publish)) => {
                if let Some(name) = self.topics.command_name(&publish.topic) {
                    let name = name.to_owned();
                    self.on_command(&name, &publish.payload, publish.retain)
                        .await;
                }
            }
            _ => {}
        }
    }

    async fn on_command(&mut self, name: &str, payload: &[u8], retained: bool) {
        let now = Timestamp::now();
        let verdict = self.verifier.verify(
            name,
            payload,
            retained,
            now.unix_ms().div_euclid(1000),
            self.replay.as_mut(),
        );
        let event = match verdict {
            Verdict::Accept(verified) => {
                let door = match &verified.command {
                    super::command::Command::Unlock { door, .. } => Some(door.clone()),
                    super::command::Command::Lockdown { door }
                    | super::command::Command::Release { door } => door.clone(),
                    _ => None,
                };
                tracing::info!(command = verified.command.name(), operator = %verified.operator, "command accepted");
                let mut event = NewEvent::new(EventKind::CommandAccepted, now)
                    .result(Outcome::Accepted)
                    .reason(Reason::command(verified.command.name()))
                    .detail(format!("signed by operator key {}", verified.operator));
                event.door = door;
                if self.commands.send(verified).await.is_err() {
                    tracing::error!("command receiver closed");
                }
                event
            }
            Verdict::Refuse(refusal) => {
                let reason = format!(
                    "{}:{}",
                    refusal.reason,
                    refusal.command.unwrap_or("unknown")
                );
                let (report, ended) = self.refusals.refused(std::time::Instant::now(), &reason);
                if let Some(summary) = ended {
                    self.record_refusal_summary(&summary);
                }
                if !report {
                    // Counted in the window's summary; a flood must not flood the log either.
                    tracing::debug!(%reason, "command refused (reported in the next summary)");
                    return;
                }
                tracing::warn!(reason = %refusal.reason, command = name, "command refused");
                NewEvent::new(EventKind::CommandRefused, now)
                    .result(Outcome::Refused)
                    .reason(Reason::from(refusal.reason))
                    .detail(refusal.command.unwrap_or("unknown command"))
            }
            Verdict::AlreadyHandled => return,
        };
        if let Err(error) = self.outbox.append(event) {
            tracing::error!(error = %error_chain(&error), "cannot record a command event");
        }
    }
}

impl Link {
    /// Records the refusals a window did not report one by one, as one `command.refused` event.
    fn record_refusal_summary(&self, summary: &RefusalSummary) {
        tracing::warn!(
            suppressed = summary.suppressed,
            "a flood of refused commands: {}",
            summary.reason()
        );
        let event = NewEvent::new(EventKind::CommandRefused, Timestamp::now())
            .result(Outcome::Refused)
            .reason(Reason::REFUSALS_SUPPRESSED)
            .detail(summary.reason());
        if let Err(error) = self.outbox.append(event) {
            tracing::error!(error = %error_chain(&error), "cannot record the summary of refused commands");
        }
    }
}

/// Completes at `deadline`, never without one.
async fn sleep_until_some(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Aborts the connection task when the link's future is dropped (so a cancelled link closes
/// its connection instead of leaving it to run on).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn json(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn publish_other(session: &mut Session, topic: String, payload: Vec<u8>, retain: bool) {
    match session
        .client
        .try_publish(topic, QoS::AtLeastOnce, retain, payload)
    {
        Ok(()) => session.unsent.push_back(Tag::Other),
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "MQTT request queue full; message dropped")
        }
    }
}

/// Drives one rumqttc event loop per connection attempt, with exponential back-off between
/// attempts, and reports everything in order over `tx`. Ends when the link drops `tx`.
async fn connection_task(options: MqttOptions, tx: mpsc::Sender<FromBroker>) {
    let mut backoff = Backoff::new(BACKOFF_START, BACKOFF_MAX, BACKOFF_STABLE_AFTER);
    loop {
        let (client, mut eventloop) = AsyncClient::new(options.clone(), REQUEST_CAPACITY);
        loop {
            let message = match eventloop.poll().await {
                Ok(MqttEvent::Incoming(Incoming::ConnAck(_))) => {
                    backoff.connected(std::time::Instant::now());
                    FromBroker::Connected(client.clone())
                }
                Ok(event) => FromBroker::Mqtt(event),
                Err(error) => {
                    if tx.send(FromBroker::Lost(error.to_string())).await.is_err() {
                        return;
                    }
                    break;
                }
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
        drop(client);
        // Jitter spreads the reconnects of many gates after a broker restart.
        let jitter = Duration::from_millis(u64::from(getrandom::u32().unwrap_or(0) % 250));
        let delay = backoff.lost(std::time::Instant::now());
        tokio::time::sleep(delay + jitter).await;
    }
}

/// The record of the last discovery publication; `None` when there is none or it is unreadable
/// (then only this configuration's entities are published, and the log says so).
fn read_discovery_record(path: &std::path::Path) -> Option<DiscoveryRecord> {
    use crate::config::files::{MAX_CONFIG_FILE_BYTES, read_bounded};
    match read_bounded(path, MAX_CONFIG_FILE_BYTES) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|error| {
                tracing::warn!(error = %error_chain(&error), path = %path.display(), "discovery record unreadable: entities of doors removed since the last start are not cleared");
            })
            .ok(),
        Err(error) if error.is_not_found() => None,
        Err(error) => {
            tracing::warn!(error = %error_chain(&error), "discovery record unreadable: entities of doors removed since the last start are not cleared");
            None
        }
    }
}
