//! Home Assistant MQTT discovery (pure: payloads and the plan of what to publish or clear).
//!
//! One **device-based** discovery message per gate (Home Assistant 2024.11+): retained on
//! `<discovery_prefix>/device/palmgate_<gate>/config`, with the device, an `origin` block and
//! every entity under `cmps`, keyed by its `unique_id`:
//! - per door: a read-only lock state (`binary_sensor`, device class `lock`: the gate accepts
//!   only signed commands, which Home Assistant cannot sign; docs/threat-model.md), its `mode`
//!   (`sensor`, device class `enum`) and, with a position switch, its contact (`binary_sensor`,
//!   device class `door`);
//! - per event kind a facility manager automates on ([`EVENT_ENTITIES`]: grants, denials, remote
//!   unlocks, duress, blocked cards, presentation attacks, forced and held-open doors, tamper,
//!   fire, lockdown, refused commands, outbox alarms, rejected policies): an `event` entity on
//!   that kind's topic;
//! - diagnostics: connectivity (`binary_sensor` on the status topic, which shows `off` when the
//!   gate is offline: it is the one entity without the status topic as availability) and the
//!   outbox backlog.
//!
//! Every value template reads only fields that every payload it receives carries; the tests
//! render each one with a Jinja engine against every kind of payload the gate publishes.
//!
//! What was published before is cleared with empty retained payloads: [`DiscoveryPlan`] compares
//! the [`DiscoveryRecord`] of the previous start (kept by the caller in the state directory) with
//! what is configured now. A removed door's entities are removed through the device message
//! (a component reduced to its `platform`), `discovery = false` clears the device message, and
//! the per-entity topics of API version 1 (`<prefix>/<component>/<gate>_<what>/config`) are
//! cleared on the first start of this version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::topics::{DoorCondition, Topics};
use crate::event::EventKind;

/// One retained discovery publication: a config, or an empty payload that clears one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryMessage {
    /// The config topic.
    pub topic: String,
    /// The JSON config; empty to clear what the topic held.
    pub payload: Vec<u8>,
}

impl DiscoveryMessage {
    fn config(topic: String, payload: &serde_json::Value) -> Self {
        Self {
            topic,
            // Serialising a `Value` cannot fail.
            payload: serde_json::to_vec(payload).unwrap_or_default(),
        }
    }

    fn clear(topic: String) -> Self {
        Self {
            topic,
            payload: Vec::new(),
        }
    }

    /// Whether this clears the topic (empty retained payload).
    pub fn is_clear(&self) -> bool {
        self.payload.is_empty()
    }
}

/// A door as discovery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryDoor {
    /// Door name (config key).
    pub name: String,
    /// Whether a door position switch is wired.
    pub has_contact: bool,
}

/// The event kinds that get an `event` entity, with the entity's name: every kind a facility
/// manager automates on (alarms, denials, door conditions, lockdown, refused commands).
pub const EVENT_ENTITIES: [(EventKind, &str); 22] = [
    (EventKind::AccessGranted, "access granted"),
    (EventKind::AccessDenied, "access denied"),
    (EventKind::AccessRemoteUnlock, "remote unlock"),
    (EventKind::AlarmDuress, "duress alarm"),
    (EventKind::AlarmCardBlocked, "card blocked"),
    (EventKind::AlarmPresentationAttack, "presentation attack"),
    (EventKind::AlarmPanelLink, "panel link"),
    (EventKind::PanelLinkRestored, "panel link restored"),
    (EventKind::DoorForced, "door forced"),
    (EventKind::DoorHeldOpenPrealarm, "door held open pre-alarm"),
    (EventKind::DoorHeldOpen, "door held open"),
    (EventKind::DoorTamper, "tamper"),
    (EventKind::FireActive, "fire alarm"),
    (EventKind::LockdownOn, "lockdown on"),
    (EventKind::LockdownOff, "lockdown off"),
    (EventKind::CommandRefused, "command refused"),
    (EventKind::OutboxFilling, "outbox filling"),
    (EventKind::AlarmEventsLost, "events lost"),
    (EventKind::PolicyRejected, "policy rejected"),
    (EventKind::ReaderUnavailable, "card reader unavailable"),
    (EventKind::ReaderAvailable, "card reader available"),
    (EventKind::MealServed, "meal served"),
];

/// The event entities' template: every field of the event as an attribute, plus `event_type`
/// (its `kind`). It names no optional field, so it renders for every event (API version 1's
/// template read `value_json.reason`, which a grant does not carry, and Home Assistant's
/// `to_json` failed on every grant).
pub const EVENT_TEMPLATE: &str = "{{ dict(value_json, event_type=value_json.kind) | to_json }}";

/// The contact's template: `open`/`closed`, and Home Assistant's `None` (state unknown) for
/// `unknown`.
pub const CONTACT_TEMPLATE: &str =
    "{{ value_json.contact if value_json.contact != 'unknown' else 'None' }}";

/// What this gate publishes for Home Assistant.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceDiscovery {
    /// `<discovery_prefix>/device/palmgate_<gate>/config`.
    pub topic: String,
    /// The device config (with `cmps`).
    pub config: serde_json::Value,
}

impl DeviceDiscovery {
    /// The device config of one gate.
    pub fn new(
        discovery_prefix: &str,
        topics: &Topics,
        gate_id: &str,
        gate_name: &str,
        doors: &[DiscoveryDoor],
    ) -> Self {
        let node = node_id(gate_id);
        let mut components = serde_json::Map::new();
        let mut add = |what: &str, platform: &str, name: String, fields: serde_json::Value| {
            let unique_id = format!("{node}_{}", id_part(what));
            let mut component = serde_json::json!({
                "platform": platform,
                "name": name,
                "unique_id": unique_id,
                // Honoured from Home Assistant 2025.10 (it replaces `object_id`); older releases
                // drop unknown keys and derive the entity id from the device and entity names.
                "default_entity_id": format!("{platform}.{}", entity_part(&unique_id)),
            });
            if let (Some(component), serde_json::Value::Object(fields)) =
                (component.as_object_mut(), fields)
            {
                component.extend(fields);
                // Every entity but connectivity is unavailable while the gate is offline.
                if what != "connectivity"
                    && let serde_json::Value::Object(available) = availability(topics)
                {
                    component.extend(available);
                }
            }
            components.insert(unique_id, component);
        };
        for door in doors {
            let state = topics.door_state(&door.name);
            add(
                &format!("{}_lock", door.name),
                "binary_sensor",
                format!("{} lock", door.name),
                serde_json::json!({
                    "device_class": "lock",
                    "state_topic": state,
                    "value_template": "{{ value_json.lock }}",
                    // Device class `lock`: on means unlocked.
                    "payload_on": "unlocked",
                    "payload_off": "locked",
                }),
            );
            add(
                &format!("{}_mode", door.name),
                "sensor",
                format!("{} mode", door.name),
                serde_json::json!({
                    "device_class": "enum",
                    "options": DoorCondition::ALL.map(DoorCondition::as_str),
                    "state_topic": state,
                    "value_template": "{{ value_json.mode }}",
                }),
            );
            if door.has_contact {
                add(
                    &format!("{}_contact", door.name),
                    "binary_sensor",
                    format!("{} contact", door.name),
                    serde_json::json!({
                    "device_class": "door",
                    "state_topic": state,
                    // `None` is Home Assistant's "unknown" (a contact not read yet).
                    "value_template": CONTACT_TEMPLATE,
                    "payload_on": "open",
                    "payload_off": "closed",
                    }),
                );
            }
        }
        for (kind, name) in EVENT_ENTITIES {
            add(
                kind.as_str(),
                "event",
                name.to_owned(),
                serde_json::json!({
                    "state_topic": topics.event(&kind),
                    "event_types": [kind.as_str()],
                    "value_template": EVENT_TEMPLATE,
                }),
            );
        }
        add(
            "connectivity",
            "binary_sensor",
            "connectivity".into(),
            // No availability: it must show `off` when the gate is offline, not "unavailable".
            serde_json::json!({
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "state_topic": topics.status(),
                "value_template": "{{ value_json.state }}",
                "payload_on": "online",
                "payload_off": "offline",
            }),
        );
        add(
            "outbox",
            "sensor",
            "outbox backlog".into(),
            serde_json::json!({
                "entity_category": "diagnostic",
                "state_topic": topics.diagnostics(),
                "value_template": "{{ value_json.outbox_len }}",
                "unit_of_measurement": "events",
                "state_class": "measurement",
            }),
        );
        let config = serde_json::json!({
            "device": {
                "identifiers": [node],
                "name": gate_name,
                "manufacturer": "palmgate",
                "model": "palmgate access gateway",
                "sw_version": env!("CARGO_PKG_VERSION"),
            },
            "origin": {
                "name": "palmgate",
                "sw_version": env!("CARGO_PKG_VERSION"),
            },
            "qos": 1,
            "cmps": components,
        });
        Self {
            topic: device_topic(discovery_prefix, gate_id),
            config,
        }
    }

    /// At a canteen gate: sensors for the meals served in the latest period (`meals` topic), in
    /// total and for each of `groups` (the groups with an allowance).
    pub fn with_meals(mut self, topics: &Topics, groups: &[String]) -> Self {
        let node = self.config["device"]["identifiers"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut sensors = vec![(
            "meals_served".to_owned(),
            "meals served this period".to_owned(),
            "{{ value_json.served }}".to_owned(),
        )];
        for group in groups {
            // The group's name as a JSON string is a Jinja string literal, whatever it holds.
            let key = serde_json::Value::from(group.as_str()).to_string();
            sensors.push((
                format!("meals_{group}"),
                format!("meals served this period, {group}"),
                format!("{{{{ value_json.groups[{key}] | default(0) }}}}"),
            ));
        }
        if let Some(components) = self.config["cmps"].as_object_mut() {
            for (what, name, template) in sensors {
                let unique_id = format!("{node}_{}", id_part(&what));
                let mut component = serde_json::json!({
                    "platform": "sensor",
                    "name": name,
                    "unique_id": unique_id,
                    "default_entity_id": format!("sensor.{}", entity_part(&unique_id)),
                    "state_topic": topics.meals(),
                    "value_template": template,
                    "unit_of_measurement": "meals",
                    "state_class": "measurement",
                });
                if let (Some(component), serde_json::Value::Object(available)) =
                    (component.as_object_mut(), availability(topics))
                {
                    component.extend(available);
                }
                components.insert(unique_id, component);
            }
        }
        self
    }

    /// `unique_id` → `platform` of every component.
    fn components(&self) -> BTreeMap<String, String> {
        self.config["cmps"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(id, component)| {
                let platform = component["platform"].as_str().unwrap_or_default();
                (id.clone(), platform.to_owned())
            })
            .collect()
    }
}

/// What the gate published for Home Assistant at its last start: kept by the caller (in the
/// state directory) so that the next start can clear what is no longer configured.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryRecord {
    /// The device config topic.
    pub topic: String,
    /// `unique_id` → `platform` of every component it held.
    pub components: BTreeMap<String, String>,
}

/// What to publish (retained) on connect, and the record to keep once it is published.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryPlan {
    /// Configs and clears, in order.
    pub messages: Vec<DiscoveryMessage>,
    /// The record to store (`None`: remove the stored one; nothing is published any more).
    pub record: Option<DiscoveryRecord>,
}

impl DiscoveryPlan {
    /// From the previous start's record (`None` on a first start, including the first start
    /// after API version 1, which kept none) and the current configuration (`None` when
    /// `discovery = false`).
    pub fn new(
        previous: Option<&DiscoveryRecord>,
        current: Option<&DeviceDiscovery>,
        legacy: &LegacyTopics,
    ) -> Self {
        let mut messages = Vec::new();
        if previous.is_none() {
            // API version 1 published one retained config per entity; clear them (empty
            // payloads on a topic that never held one are harmless).
            messages.extend(legacy.topics().into_iter().map(DiscoveryMessage::clear));
        }
        let Some(current) = current else {
            if let Some(previous) = previous {
                messages.push(DiscoveryMessage::clear(previous.topic.clone()));
            }
            return Self {
                messages,
                record: None,
            };
        };
        let components = current.components();
        let mut config = current.config.clone();
        if let Some(previous) = previous {
            if previous.topic == current.topic {
                // A component reduced to its platform is removed by Home Assistant.
                for (id, platform) in &previous.components {
                    if !components.contains_key(id)
                        && let Some(cmps) = config["cmps"].as_object_mut()
                    {
                        cmps.insert(id.clone(), serde_json::json!({ "platform": platform }));
                    }
                }
            } else {
                messages.push(DiscoveryMessage::clear(previous.topic.clone()));
            }
        }
        messages.push(DiscoveryMessage::config(current.topic.clone(), &config));
        Self {
            messages,
            record: Some(DiscoveryRecord {
                topic: current.topic.clone(),
                components,
            }),
        }
    }
}

/// The per-entity discovery topics API version 1 published for the configured doors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTopics {
    prefix: String,
    gate_id: String,
    doors: Vec<String>,
}

impl LegacyTopics {
    /// For the doors configured now (a door removed while version 1 ran is not known any more:
    /// docs/mqtt-api.md says how to clear it by hand).
    pub fn new(discovery_prefix: &str, gate_id: &str, doors: &[DiscoveryDoor]) -> Self {
        Self {
            prefix: discovery_prefix.trim_end_matches('/').to_owned(),
            gate_id: gate_id.to_owned(),
            doors: doors.iter().map(|door| door.name.clone()).collect(),
        }
    }

    fn topics(&self) -> Vec<String> {
        let object = |suffix: &str| id_part(&format!("{}_{suffix}", self.gate_id));
        let mut out = Vec::new();
        for door in &self.doors {
            for (component, what) in [
                ("lock", "lock"),
                ("sensor", "mode"),
                ("binary_sensor", "contact"),
            ] {
                out.push(format!(
                    "{}/{component}/{}/config",
                    self.prefix,
                    object(&format!("{door}_{what}"))
                ));
            }
        }
        for (component, what) in [
            ("event", "access_granted"),
            ("event", "access_denied"),
            ("binary_sensor", "connectivity"),
            ("sensor", "outbox"),
        ] {
            out.push(format!(
                "{}/{component}/{}/config",
                self.prefix,
                object(what)
            ));
        }
        out
    }
}

/// The discovery messages of a gate with discovery on, for a caller that keeps no record: the
/// device config, after clearing API version 1's per-entity topics. With a record (removed
/// doors, `discovery = false`), use [`DiscoveryPlan`].
pub fn discovery_messages(
    discovery_prefix: &str,
    topics: &Topics,
    gate_id: &str,
    gate_name: &str,
    doors: &[DiscoveryDoor],
) -> Vec<DiscoveryMessage> {
    let current = DeviceDiscovery::new(discovery_prefix, topics, gate_id, gate_name, doors);
    let legacy = LegacyTopics::new(discovery_prefix, gate_id, doors);
    DiscoveryPlan::new(None, Some(&current), &legacy).messages
}

/// `<discovery_prefix>/device/palmgate_<gate>/config`.
pub fn device_topic(discovery_prefix: &str, gate_id: &str) -> String {
    format!(
        "{}/device/{}/config",
        discovery_prefix.trim_end_matches('/'),
        node_id(gate_id)
    )
}

/// The device id: `palmgate_<gate>`, in the characters a discovery topic level allows.
fn node_id(gate_id: &str) -> String {
    format!("palmgate_{}", id_part(gate_id))
}

/// `[A-Za-z0-9_-]` (discovery topic levels and unique ids); anything else becomes `_`.
fn id_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `[a-z0-9_]` (entity ids).
fn entity_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The gate's status topic as the entities' availability (Home Assistant's default payloads are
/// `online` / `offline`, the status payload's `state`).
fn availability(topics: &Topics) -> serde_json::Value {
    serde_json::json!({
        "availability_topic": topics.status(),
        "availability_template": "{{ value_json.state }}",
    })
}

#[cfg(test)]
mod tests;
