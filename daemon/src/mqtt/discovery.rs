//! Home Assistant MQTT discovery payloads (pure).
//!
//! Per gate one HA device (`palmgate_<gate>`) with:
//! - a `lock` per door (state from the door's retained state topic; its command topic is the
//!   signed `unlock` command topic: Home Assistant's plain `UNLOCK` payload carries no signature
//!   and is refused and reported as `command.refused`, so remote unlocking needs a signing tool),
//! - a `sensor` (device class `enum`) per door for its `mode` (normal, lockdown, held_open,
//!   forced_open, fire_release),
//! - a `binary_sensor` (device class `door`) per door with a position switch,
//! - an `event` entity per access kind (`access.granted`, `access.denied`),
//! - diagnostics: a connectivity `binary_sensor` on the status topic and an outbox backlog `sensor`.
//!
//! Every entity uses the status topic as its availability topic.

use super::topics::Topics;

/// One discovery message: retained config payload on `topic`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryMessage {
    /// `<discovery_prefix>/<component>/<object id>/config`.
    pub topic: String,
    /// The JSON config.
    pub payload: serde_json::Value,
}

/// A door as discovery sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryDoor {
    /// Door name (config key).
    pub name: String,
    /// Whether a door position switch is wired.
    pub has_contact: bool,
}

/// The discovery messages of one gate.
pub fn discovery_messages(
    discovery_prefix: &str,
    topics: &Topics,
    gate_id: &str,
    gate_name: &str,
    doors: &[DiscoveryDoor],
) -> Vec<DiscoveryMessage> {
    let prefix = discovery_prefix.trim_end_matches('/');
    let object = |suffix: &str| {
        format!("{gate_id}_{suffix}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    let device = serde_json::json!({
        "identifiers": [format!("palmgate_{gate_id}")],
        "name": gate_name,
        "manufacturer": "palmgate",
        "model": "palmgate access gateway",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let base = |name: String, unique: &str| {
        serde_json::json!({
            "name": name,
            "unique_id": format!("palmgate_{}", object(unique)),
            "object_id": format!("palmgate_{}", object(unique)),
            "device": device,
            "availability_topic": topics.status(),
            "availability_template": "{{ value_json.state }}",
            "payload_available": "online",
            "payload_not_available": "offline",
        })
    };
    let merge = |mut a: serde_json::Value, b: serde_json::Value| {
        if let (Some(a), serde_json::Value::Object(b)) = (a.as_object_mut(), b) {
            a.extend(b);
        }
        a
    };
    // One entity of a door: `<component>/<gate>_<door>_<what>/config`, named "<door> <what>".
    let door_entity = |component: &str, door: &str, what: &str, fields: serde_json::Value| {
        let unique = format!("{door}_{what}");
        DiscoveryMessage {
            topic: format!("{prefix}/{component}/{}/config", object(&unique)),
            payload: merge(base(format!("{door} {what}"), &unique), fields),
        }
    };
    let mut out = Vec::new();
    for door in doors {
        let state = topics.door_state(&door.name);
        out.push(door_entity(
            "lock",
            &door.name,
            "lock",
            serde_json::json!({
                "state_topic": state,
                "value_template": "{{ value_json.lock }}",
                "state_locked": "locked",
                "state_unlocked": "unlocked",
                "command_topic": topics.command("unlock"),
            }),
        ));
        out.push(door_entity(
            "sensor",
            &door.name,
            "mode",
            serde_json::json!({
                "device_class": "enum",
                "options": DOOR_MODES,
                "state_topic": state,
                "value_template": "{{ value_json.mode }}",
            }),
        ));
        if door.has_contact {
            out.push(door_entity(
                "binary_sensor",
                &door.name,
                "contact",
                serde_json::json!({
                    "device_class": "door",
                    "state_topic": state,
                    "value_template": "{{ value_json.contact }}",
                    "payload_on": "open",
                    "payload_off": "closed",
                }),
            ));
        }
    }
    for kind in ["access.granted", "access.denied"] {
        let suffix = kind.replace('.', "_");
        out.push(DiscoveryMessage {
            topic: format!("{prefix}/event/{}/config", object(&suffix)),
            payload: merge(
                base(kind.replace('.', " "), &suffix),
                serde_json::json!({
                    "state_topic": format!("{}/event/{kind}", topics_base(topics)),
                    "event_types": [kind],
                    "value_template":
                        "{{ {'event_type': value_json.kind, 'event_id': value_json.id, \
                         'door': value_json.door, 'card_id': value_json.card_id, \
                         'reason': value_json.reason} | to_json }}",
                }),
            ),
        });
    }
    out.push(DiscoveryMessage {
        topic: format!("{prefix}/binary_sensor/{}/config", object("connectivity")),
        payload: merge(
            base("connectivity".into(), "connectivity"),
            serde_json::json!({
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "state_topic": topics.status(),
                "value_template": "{{ value_json.state }}",
                "payload_on": "online",
                "payload_off": "offline",
            }),
        ),
    });
    out.push(DiscoveryMessage {
        topic: format!("{prefix}/sensor/{}/config", object("outbox")),
        payload: merge(
            base("outbox backlog".into(), "outbox"),
            serde_json::json!({
                "entity_category": "diagnostic",
                "state_topic": topics.diagnostics(),
                "value_template": "{{ value_json.outbox_len }}",
                "unit_of_measurement": "events",
                "state_class": "measurement",
            }),
        ),
    });
    out
}

/// Every `mode` a door's retained state can show (docs/mqtt-api.md), for Home Assistant's enum
/// sensor.
pub const DOOR_MODES: [&str; 5] = [
    "normal",
    "lockdown",
    "held_open",
    "forced_open",
    "fire_release",
];

fn topics_base(topics: &Topics) -> String {
    topics.status().trim_end_matches("/status").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_door_contacts_events_and_diagnostics() {
        let topics = Topics::new("palmgate", "gate-1");
        let doors = [
            DiscoveryDoor {
                name: "main".into(),
                has_contact: true,
            },
            DiscoveryDoor {
                name: "side".into(),
                has_contact: false,
            },
        ];
        let messages = discovery_messages("homeassistant", &topics, "gate-1", "Gate 1", &doors);
        let topics_of: Vec<&str> = messages.iter().map(|m| m.topic.as_str()).collect();
        assert_eq!(
            topics_of,
            [
                "homeassistant/lock/gate-1_main_lock/config",
                "homeassistant/sensor/gate-1_main_mode/config",
                "homeassistant/binary_sensor/gate-1_main_contact/config",
                "homeassistant/lock/gate-1_side_lock/config",
                "homeassistant/sensor/gate-1_side_mode/config",
                "homeassistant/event/gate-1_access_granted/config",
                "homeassistant/event/gate-1_access_denied/config",
                "homeassistant/binary_sensor/gate-1_connectivity/config",
                "homeassistant/sensor/gate-1_outbox/config",
            ]
        );
        let lock = &messages[0].payload;
        assert_eq!(lock["state_topic"], "palmgate/gate-1/door/main/state");
        assert_eq!(lock["command_topic"], "palmgate/gate-1/cmd/unlock");
        assert_eq!(lock["availability_topic"], "palmgate/gate-1/status");
        assert_eq!(lock["device"]["identifiers"][0], "palmgate_gate-1");
        let mode = &messages[1].payload;
        assert_eq!(mode["state_topic"], "palmgate/gate-1/door/main/state");
        assert_eq!(mode["value_template"], "{{ value_json.mode }}");
        assert_eq!(mode["options"].as_array().map(Vec::len), Some(5));
        assert_eq!(
            messages[5].payload["state_topic"],
            "palmgate/gate-1/event/access.granted"
        );
        let unique: std::collections::BTreeSet<_> = messages
            .iter()
            .map(|m| m.payload["unique_id"].to_string())
            .collect();
        assert_eq!(unique.len(), messages.len(), "unique ids must be unique");
    }
}
