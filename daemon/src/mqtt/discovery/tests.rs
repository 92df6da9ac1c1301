//! Discovery tests: the shape of the device message, the plan of publications and clears, and
//! every value template rendered with a Jinja engine (minijinja, strict about undefined values:
//! Home Assistant fails on them in `to_json`) against every kind of payload the gate publishes.

use std::collections::BTreeSet;

use minijinja::{Environment, UndefinedBehavior, Value};

use super::*;
use crate::event::{CardId, Latencies, NewEvent, Outcome, Reason, Severity, Timestamp};
use crate::mqtt::topics::{
    Availability, Contact, Diagnostics, RetainedDoorState, RetainedLock, last_will_payload,
    status_payload,
};

fn doors() -> [DiscoveryDoor; 2] {
    [
        DiscoveryDoor {
            name: "main".into(),
            has_contact: true,
        },
        DiscoveryDoor {
            name: "side".into(),
            has_contact: false,
        },
    ]
}

fn device(doors: &[DiscoveryDoor]) -> DeviceDiscovery {
    let topics = Topics::new("palmgate", "gate-1");
    DeviceDiscovery::new("homeassistant", &topics, "gate-1", "Gate 1", doors)
}

/// The meal groups of a canteen gate (one name that needs quoting in a template).
fn meal_groups() -> Vec<String> {
    vec!["staff".into(), "kitchen".into(), "night 'shift\"".into()]
}

fn canteen(doors: &[DiscoveryDoor]) -> DeviceDiscovery {
    let topics = Topics::new("palmgate", "gate-1");
    device(doors).with_meals(&topics, &meal_groups())
}

fn components(device: &DeviceDiscovery) -> &serde_json::Map<String, serde_json::Value> {
    device.config["cmps"].as_object().expect("cmps")
}

/// Home Assistant's `to_json` fails on an undefined value (`TypeError: Type is not JSON
/// serializable: LoggingUndefined`); so does this one.
fn to_json(value: Value) -> Result<String, minijinja::Error> {
    fn check(value: &Value) -> Result<(), minijinja::Error> {
        if value.is_undefined() {
            return Err(minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                "undefined value is not JSON serializable",
            ));
        }
        use minijinja::value::ValueKind;
        match value.kind() {
            ValueKind::Seq => value.try_iter()?.try_for_each(|item| check(&item)),
            ValueKind::Map => value
                .try_iter()?
                .try_for_each(|key| check(&value.get_item(&key)?)),
            _ => Ok(()),
        }
    }
    check(&value)?;
    serde_json::to_string(&value).map_err(|error| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, error.to_string())
    })
}

/// Renders a value template as Home Assistant does: `value` (the payload text) and `value_json`.
fn render(template: &str, payload: &[u8]) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("to_json", to_json);
    let text = String::from_utf8_lossy(payload).into_owned();
    let json: serde_json::Value = serde_json::from_slice(payload).unwrap_or_default();
    env.render_str(
        template,
        minijinja::context! { value => text, value_json => Value::from_serialize(&json) },
    )
}

fn event(kind: EventKind, full: bool) -> Vec<u8> {
    let mut event = NewEvent::new(kind, Timestamp::from_unix_ms(1_795_575_784_567));
    if full {
        event = event
            .door("main")
            .card(CardId::new(&[0x5a; 16]).expect("card id"))
            .result(Outcome::Denied)
            .reason(Reason::NO_MATCH)
            .detail("palm does not match the card (2 tries left)")
            .latencies(Latencies {
                match_ms: Some(12.5),
                ..Latencies::default()
            });
    }
    event.into_event(42, "gate-1").to_json()
}

/// Every payload the gate publishes on `topic`, as the gate's own code writes it.
fn payloads_on(topic: &str) -> Vec<Vec<u8>> {
    let topics = Topics::new("palmgate", "gate-1");
    let time = Timestamp::from_unix_ms(1_795_575_784_567);
    if topic == topics.status() {
        return vec![
            status_payload("gate-1", Availability::Online, time),
            status_payload("gate-1", Availability::Offline, time),
            last_will_payload("gate-1"),
        ];
    }
    if topic == topics.diagnostics() {
        let diagnostics = Diagnostics {
            outbox_len: 3,
            outbox_capacity: 100_000,
            next_event_id: 17,
            time,
        };
        return vec![serde_json::to_vec(&diagnostics).expect("json")];
    }
    if topic == topics.meals() {
        let mut counts = crate::mqtt::MealCounts {
            period: 332_704,
            period_name: Some("lunch".into()),
            served: 3,
            groups: meal_groups().into_iter().zip([2, 1, 0]).collect(),
            time,
        };
        let full = serde_json::to_vec(&counts).expect("json");
        // A group added to the policy after the counts were written, and no period name.
        counts.groups.remove("kitchen");
        counts.period_name = None;
        return vec![full, serde_json::to_vec(&counts).expect("json")];
    }
    if topic.ends_with("/state") {
        let mut out = Vec::new();
        for lock in [RetainedLock::Locked, RetainedLock::Unlocked] {
            for contact in [Contact::Open, Contact::Closed, Contact::Unknown] {
                for mode in DoorCondition::ALL {
                    let status = RetainedDoorState {
                        lock,
                        contact,
                        mode,
                    };
                    out.push(serde_json::to_vec(&status).expect("json"));
                }
            }
        }
        return out;
    }
    let kind = EventKind::ALL
        .into_iter()
        .find(|kind| topics.event(kind) == topic)
        .unwrap_or_else(|| panic!("no payloads known for {topic}"));
    vec![event(kind, false), event(kind, true)]
}

/// Failure 1 of issue 16: the version 1 template read `value_json.reason`, which a grant does
/// not carry, and Home Assistant's `to_json` failed on every grant.
#[test]
fn the_version_1_event_template_fails_on_a_grant_and_the_new_one_does_not() {
    let version_1 = "{{ {'event_type': value_json.kind, 'event_id': value_json.id, \
                     'door': value_json.door, 'card_id': value_json.card_id, \
                     'reason': value_json.reason} | to_json }}";
    let grant = event(EventKind::AccessGranted, false);
    assert!(render(version_1, &grant).is_err());
    let rendered = render(EVENT_TEMPLATE, &grant).expect("renders");
    let attributes: serde_json::Value = serde_json::from_str(&rendered).expect("json");
    assert_eq!(attributes["event_type"], "access.granted");
    assert_eq!(attributes["id"], 42);
    assert_eq!(attributes["door"], serde_json::Value::Null);
}

#[test]
fn every_template_renders_against_every_payload_it_receives() {
    let device = canteen(&doors());
    let mut rendered = 0;
    for (id, component) in components(&device) {
        let template = component["value_template"].as_str().expect("template");
        let topic = component["state_topic"].as_str().expect("state topic");
        for payload in payloads_on(topic) {
            let text = String::from_utf8_lossy(&payload).into_owned();
            let value = render(template, &payload)
                .unwrap_or_else(|error| panic!("{id} on {text}: {error:#}"));
            match component["platform"].as_str() {
                // `None`: Home Assistant's unknown state.
                Some("binary_sensor") => assert!(
                    value == component["payload_on"]
                        || value == component["payload_off"]
                        || value == "None",
                    "{id} on {text}: {value}"
                ),
                Some("sensor") if component["device_class"] == "enum" => {
                    let options = component["options"].as_array().expect("options");
                    assert!(
                        options.iter().any(|option| *option == value),
                        "{id}: {value}"
                    );
                }
                Some("sensor") => assert!(value.parse::<u64>().is_ok(), "{id}: {value}"),
                Some("event") => {
                    let json: serde_json::Value = serde_json::from_str(&value).expect("event JSON");
                    let types = component["event_types"].as_array().expect("types");
                    assert!(types.contains(&json["event_type"]), "{id}: {value}");
                }
                other => panic!("{id}: unexpected platform {other:?}"),
            }
            rendered += 1;
        }
        if let Some(topic) = component["availability_topic"].as_str() {
            let template = component["availability_template"]
                .as_str()
                .expect("template");
            for payload in payloads_on(topic) {
                let value = render(template, &payload).expect("availability renders");
                // Home Assistant's default availability payloads.
                assert!(value == "online" || value == "offline", "{id}: {value}");
            }
        }
    }
    assert!(rendered > 100, "{rendered} renderings");
}

/// Failure 2 of issue 16: duress and alarms had no entity.
#[test]
fn duress_and_every_alarm_kind_have_an_event_entity() {
    let device = device(&doors());
    let event_types: BTreeSet<String> = components(&device)
        .values()
        .filter(|component| component["platform"] == "event")
        .flat_map(|component| {
            component["event_types"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|kind| kind.as_str().map(str::to_owned))
        .collect();
    for kind in EventKind::ALL {
        if kind.severity() == Severity::Alarm {
            assert!(event_types.contains(kind.as_str()), "{kind}");
        }
    }
    for kind in [
        "alarm.duress",
        "door.held_open_prealarm",
        "access.remote_unlock",
        "lockdown.on",
        "lockdown.off",
        "command.refused",
        "access.granted",
        "access.denied",
    ] {
        assert!(event_types.contains(kind), "{kind}");
    }
}

/// Failure 3 of issue 16: a removed door and `discovery = false` left their entities behind.
#[test]
fn removed_doors_and_discovery_off_clear_what_was_published() {
    let legacy = LegacyTopics::new("homeassistant", "gate-1", &doors());
    let first = DiscoveryPlan::new(None, Some(&device(&doors())), &legacy);
    // First start of this version: version 1's per-entity configs are cleared, then the device.
    let (last, clears) = first.messages.split_last().expect("messages");
    assert!(clears.iter().all(DiscoveryMessage::is_clear));
    assert!(
        clears
            .iter()
            .any(|m| m.topic == "homeassistant/lock/gate-1_main_lock/config")
    );
    assert!(
        clears
            .iter()
            .any(|m| m.topic == "homeassistant/event/gate-1_access_denied/config")
    );
    assert_eq!(last.topic, "homeassistant/device/palmgate_gate-1/config");
    let record = first.record.expect("record");
    assert!(record.components.contains_key("palmgate_gate-1_side_mode"));

    // `side` removed: its components are reduced to their platform, which removes them.
    let only_main = &doors()[..1];
    let second = DiscoveryPlan::new(Some(&record), Some(&device(only_main)), &legacy);
    assert_eq!(second.messages.len(), 1);
    let config: serde_json::Value =
        serde_json::from_slice(&second.messages[0].payload).expect("json");
    assert_eq!(
        config["cmps"]["palmgate_gate-1_side_mode"],
        serde_json::json!({"platform": "sensor"})
    );
    assert_eq!(
        config["cmps"]["palmgate_gate-1_side_lock"],
        serde_json::json!({"platform": "binary_sensor"})
    );
    assert_eq!(
        config["cmps"]["palmgate_gate-1_main_lock"]["name"],
        "main lock"
    );
    let record = second.record.expect("record");
    assert!(!record.components.contains_key("palmgate_gate-1_side_mode"));

    // Discovery turned off: the device config is cleared and nothing is recorded any more.
    let off = DiscoveryPlan::new(Some(&record), None, &legacy);
    assert_eq!(
        off.messages,
        [DiscoveryMessage::clear(
            "homeassistant/device/palmgate_gate-1/config".into()
        )]
    );
    assert_eq!(off.record, None);
    // The record survives a restart as JSON.
    let json = serde_json::to_string(&record).expect("json");
    assert_eq!(
        serde_json::from_str::<DiscoveryRecord>(&json).expect("parse"),
        record
    );
}

/// Failure 4 of issue 16: the connectivity sensor used the status topic for its availability
/// too, so it went "unavailable" instead of `off`.
#[test]
fn connectivity_shows_off_when_the_gate_is_offline() {
    let device = device(&doors());
    let connectivity = &components(&device)["palmgate_gate-1_connectivity"];
    assert!(connectivity.get("availability_topic").is_none());
    assert!(device.config.get("availability_topic").is_none());
    let lock = &components(&device)["palmgate_gate-1_main_lock"];
    assert_eq!(lock["availability_topic"], "palmgate/gate-1/status");
    let template = connectivity["value_template"].as_str().expect("template");
    assert_eq!(
        render(template, &last_will_payload("gate-1")).expect("renders"),
        connectivity["payload_off"].as_str().expect("off")
    );
}

/// Failure 5 of issue 16: a lock control that could not work (unsigned `UNLOCK`, and `LOCK` sent
/// to the unlock topic). The lock state is read-only.
#[test]
fn no_entity_offers_a_control() {
    let device = device(&doors());
    for (id, component) in components(&device) {
        assert!(component.get("command_topic").is_none(), "{id}");
        assert_ne!(component["platform"], "lock", "{id}");
    }
    let lock = &components(&device)["palmgate_gate-1_main_lock"];
    assert_eq!(lock["device_class"], "lock");
    assert_eq!(lock["payload_on"], "unlocked");
}

#[test]
fn one_device_message_with_origin_and_entity_ids() {
    let device = device(&doors());
    assert_eq!(device.topic, "homeassistant/device/palmgate_gate-1/config");
    assert_eq!(device.config["device"]["identifiers"][0], "palmgate_gate-1");
    assert_eq!(device.config["origin"]["name"], "palmgate");
    assert_eq!(device.config["qos"], 1);
    let cmps = components(&device);
    // 2 + 3 door entities, the event entities, connectivity and outbox.
    assert_eq!(cmps.len(), 5 + EVENT_ENTITIES.len() + 2);
    for (id, component) in cmps {
        assert_eq!(component["unique_id"], id.as_str());
        let platform = component["platform"].as_str().expect("platform");
        let entity_id = component["default_entity_id"].as_str().expect("entity id");
        let (domain, object) = entity_id.split_once('.').expect("domain.object");
        assert_eq!(domain, platform);
        assert!(
            object
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "{entity_id}"
        );
        assert!(component.get("object_id").is_none(), "{id}");
    }
    assert_eq!(
        cmps["palmgate_gate-1_alarm_duress"]["default_entity_id"],
        "event.palmgate_gate_1_alarm_duress"
    );
    assert_eq!(
        cmps["palmgate_gate-1_alarm_duress"]["state_topic"],
        "palmgate/gate-1/event/alarm.duress"
    );
    let messages = discovery_messages(
        "homeassistant",
        &Topics::new("palmgate", "gate-1"),
        "gate-1",
        "Gate 1",
        &doors(),
    );
    let device_messages: Vec<_> = messages.iter().filter(|m| !m.is_clear()).collect();
    assert_eq!(device_messages.len(), 1, "one retained config per device");
}

#[test]
fn a_canteen_gate_has_meal_count_sensors_per_group_that_read_their_count() {
    let meals = canteen(&doors());
    let topics = Topics::new("palmgate", "gate-1");
    let counts = &payloads_on(&topics.meals())[0];
    let expected = [
        ("palmgate_gate-1_meals_served", "3"),
        ("palmgate_gate-1_meals_staff", "2"),
        ("palmgate_gate-1_meals_kitchen", "1"),
    ];
    for (id, value) in expected {
        let component = &components(&meals)[id];
        assert_eq!(component["state_topic"], "palmgate/gate-1/meals");
        let template = component["value_template"].as_str().expect("template");
        assert_eq!(render(template, counts).expect("renders"), value, "{id}");
    }
    // A door gate has none; a gate that stops being a canteen gate removes them.
    let plain = device(&doors());
    assert!(!components(&plain).keys().any(|id| id.contains("meals")));
    let legacy = LegacyTopics::new("homeassistant", "gate-1", &doors());
    let record = DiscoveryPlan::new(None, Some(&meals), &legacy)
        .record
        .expect("record");
    let after = DiscoveryPlan::new(Some(&record), Some(&plain), &legacy);
    let last = after.messages.last().expect("device message");
    let config: serde_json::Value = serde_json::from_slice(&last.payload).expect("json");
    assert_eq!(
        config["cmps"]["palmgate_gate-1_meals_staff"],
        serde_json::json!({"platform": "sensor"})
    );
}
