//! Topic names and the small JSON payloads of status and door state (pure functions).
//!
//! | topic | retained | payload |
//! | --- | --- | --- |
//! | `<prefix>/<gate>/status` | yes | [`status_payload`] (`online`; last will `offline`) |
//! | `<prefix>/<gate>/door/<door>/state` | yes | [`RetainedDoorState`] |
//! | `<prefix>/<gate>/diagnostics` | yes | [`Diagnostics`] |
//! | `<prefix>/<gate>/event/<kind>` | no | [`crate::event::Event`] |
//! | `<prefix>/<gate>/cmd/<name>` | (operator's choice) | signed command ([`super::command`]) |

use serde::{Deserialize, Serialize};

use crate::event::{EventKind, Timestamp};

/// Builds this gate's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
}

impl Topics {
    /// Topics under `<prefix>/<gate>/`. A trailing `/` on the prefix is ignored.
    pub fn new(prefix: &str, gate: &str) -> Self {
        Self {
            base: format!("{}/{gate}", prefix.trim_end_matches('/')),
        }
    }

    /// `<prefix>/<gate>/status`.
    pub fn status(&self) -> String {
        format!("{}/status", self.base)
    }

    /// `<prefix>/<gate>/diagnostics`.
    pub fn diagnostics(&self) -> String {
        format!("{}/diagnostics", self.base)
    }

    /// `<prefix>/<gate>/meals`: meals served at this canteen gate in its latest period.
    pub fn meals(&self) -> String {
        format!("{}/meals", self.base)
    }

    /// `<prefix>/<gate>/door/<door>/state`.
    pub fn door_state(&self, door: &str) -> String {
        format!("{}/door/{}/state", self.base, level(door))
    }

    /// `<prefix>/<gate>/event/<kind>`.
    pub fn event(&self, kind: &EventKind) -> String {
        format!("{}/event/{}", self.base, kind.as_str())
    }

    /// `<prefix>/<gate>/event/#`: every event.
    pub fn event_filter(&self) -> String {
        format!("{}/event/#", self.base)
    }

    /// `<prefix>/<gate>/cmd/<name>`.
    pub fn command(&self, name: &str) -> String {
        format!("{}/cmd/{}", self.base, level(name))
    }

    /// `<prefix>/<gate>/cmd/+`: the subscription for commands.
    pub fn command_filter(&self) -> String {
        format!("{}/cmd/+", self.base)
    }

    /// The command name of a topic under [`command_filter`](Self::command_filter).
    pub fn command_name<'t>(&self, topic: &'t str) -> Option<&'t str> {
        topic
            .strip_prefix(self.base.as_str())?
            .strip_prefix("/cmd/")
            .filter(|name| !name.contains('/'))
    }
}

/// One topic level: MQTT wildcards and separators cannot appear inside a level.
fn level(name: &str) -> String {
    name.chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// Whether the gate is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Availability {
    /// Connected and running.
    Online,
    /// Stopped, or connection lost (last will).
    Offline,
}

/// The version of the MQTT API (topics and payloads, `schemas/`): raised on every change a
/// consumer has to follow (docs/mqtt-api.md, "Versions and migration"). Version 1 was the API
/// before the typed event model and had no version field.
pub const API_VERSION: u32 = 2;

/// The retained status payload:
/// `{"state":"online","gate":"…","version":"…","api_version":2,"time":"…"}`.
pub fn status_payload(gate: &str, state: Availability, time: Timestamp) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "state": state,
        "gate": gate,
        "version": env!("CARGO_PKG_VERSION"),
        "api_version": API_VERSION,
        "time": time,
    }))
    .unwrap_or_default()
}

/// The last will: `{"state":"offline","gate":"…","api_version":2}` (no time: it is written at
/// connect time).
pub fn last_will_payload(gate: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "state": Availability::Offline,
        "gate": gate,
        "api_version": API_VERSION,
    }))
    .unwrap_or_default()
}

/// The lock as the retained door state shows it (door-io's own `LockState` is the relay's
/// `Secured` / `Released`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetainedLock {
    /// Locked.
    Locked,
    /// Unlocked (grant, remote unlock, fire release).
    Unlocked,
}

/// Door position switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Contact {
    /// Door open.
    Open,
    /// Door closed.
    Closed,
    /// No contact wired.
    Unknown,
}

/// The retained door state payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetainedDoorState {
    /// Lock output.
    pub lock: RetainedLock,
    /// Door position.
    pub contact: Contact,
    /// The most urgent condition (docs/mqtt-api.md).
    pub mode: DoorCondition,
}

/// A door's most urgent condition, its retained state's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorCondition {
    /// Nothing below holds.
    Normal,
    /// The door is in lockdown.
    Lockdown,
    /// Held open past its alarm time, until it closes.
    HeldOpen,
    /// Opened without a grant, until it closes.
    ForcedOpen,
    /// Released by the fire input.
    FireRelease,
}

impl DoorCondition {
    /// Every condition (Home Assistant's enum sensor lists them).
    pub const ALL: [Self; 5] = [
        Self::Normal,
        Self::Lockdown,
        Self::HeldOpen,
        Self::ForcedOpen,
        Self::FireRelease,
    ];

    /// The name in payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Lockdown => "lockdown",
            Self::HeldOpen => "held_open",
            Self::ForcedOpen => "forced_open",
            Self::FireRelease => "fire_release",
        }
    }
}

/// The retained diagnostics payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Events waiting in the outbox.
    pub outbox_len: u64,
    /// The outbox bound.
    pub outbox_capacity: u64,
    /// Id the next event will get.
    pub next_event_id: u64,
    /// When this was written.
    pub time: Timestamp,
}

/// The retained meal counts of a canteen gate: the meals it served (turnstile opened) in the
/// latest period it served one in, in total and per group. Every group with an allowance is
/// listed, at 0 when it had none, so that a consumer (Home Assistant) always finds its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MealCounts {
    /// The period number (local days since 1970-01-01 × 16 + index in the day).
    pub period: u32,
    /// The period's name in the policy.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub period_name: Option<String>,
    /// Meals served in the period at this gate.
    pub served: u32,
    /// Meals served per group.
    pub groups: std::collections::BTreeMap<String, u32>,
    /// When the count last changed.
    pub time: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_documented_layout() {
        let topics = Topics::new("site/palmgate/", "gate-1");
        assert_eq!(topics.status(), "site/palmgate/gate-1/status");
        assert_eq!(
            topics.door_state("main"),
            "site/palmgate/gate-1/door/main/state"
        );
        assert_eq!(
            topics.door_state("a/b#"),
            "site/palmgate/gate-1/door/a_b_/state"
        );
        assert_eq!(
            topics.event(&EventKind::AlarmDuress),
            "site/palmgate/gate-1/event/alarm.duress"
        );
        assert_eq!(topics.command_filter(), "site/palmgate/gate-1/cmd/+");
        assert_eq!(
            topics.command_name("site/palmgate/gate-1/cmd/unlock"),
            Some("unlock")
        );
        assert_eq!(topics.command_name("site/palmgate/gate-2/cmd/unlock"), None);
        assert_eq!(topics.command_name("site/palmgate/gate-1/cmd/a/b"), None);
    }

    #[test]
    fn status_and_door_payloads() {
        let online = status_payload("g", Availability::Online, Timestamp::from_unix_ms(0));
        let json: serde_json::Value = serde_json::from_slice(&online).expect("json");
        assert_eq!(json["state"], "online");
        assert_eq!(json["time"], "1970-01-01T00:00:00.000Z");
        let will: serde_json::Value =
            serde_json::from_slice(&last_will_payload("g")).expect("json");
        assert_eq!(
            will,
            serde_json::json!({"state": "offline", "gate": "g", "api_version": API_VERSION})
        );
        assert_eq!(json["api_version"], API_VERSION);
        let door = RetainedDoorState {
            lock: RetainedLock::Locked,
            contact: Contact::Closed,
            mode: DoorCondition::Normal,
        };
        assert_eq!(
            serde_json::to_value(&door).expect("json"),
            serde_json::json!({"lock": "locked", "contact": "closed", "mode": "normal"})
        );
    }
}
