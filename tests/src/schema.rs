//! The MQTT contract (`schemas/*.schema.json`, API version 2) checked on every message the system
//! tests receive: each subscriber calls [`assert_valid`] on what arrives, so a payload that drifts
//! from its published schema fails the test that saw it.
//!
//! Validation is by the `jsonschema` crate (JSON Schema 2020-12, formats checked), an
//! implementation nobody on this project wrote.

use std::sync::OnceLock;

/// Which contract a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `<prefix>/<gate>/event/<kind>`.
    Event,
    /// `<prefix>/<gate>/status` (and the last will).
    Status,
    /// `<prefix>/<gate>/door/<door>/state`.
    DoorState,
    /// `<prefix>/<gate>/diagnostics` (the outbox).
    Diagnostics,
    /// `<discovery_prefix>/device/<id>/config` (an empty payload clears it).
    Discovery,
    /// `<prefix>/<gate>/cmd/<command>`.
    Command,
    /// `<prefix>/<gate>/meals` (canteen gates).
    Meals,
}

impl Contract {
    /// Every contract with its schema file's text.
    pub const ALL: [(Self, &'static str); 7] = [
        (Self::Event, include_str!("../../schemas/event.schema.json")),
        (
            Self::Status,
            include_str!("../../schemas/status.schema.json"),
        ),
        (
            Self::DoorState,
            include_str!("../../schemas/door-state.schema.json"),
        ),
        (
            Self::Diagnostics,
            include_str!("../../schemas/diagnostics.schema.json"),
        ),
        (
            Self::Discovery,
            include_str!("../../schemas/discovery.schema.json"),
        ),
        (
            Self::Command,
            include_str!("../../schemas/command.schema.json"),
        ),
        (Self::Meals, include_str!("../../schemas/meals.schema.json")),
    ];

    /// The contract of a topic, from its last levels (the prefixes vary per test).
    pub fn of_topic(topic: &str) -> Option<Self> {
        let levels: Vec<&str> = topic.split('/').collect();
        match levels.as_slice() {
            [.., "event", _] => Some(Self::Event),
            [.., "status"] => Some(Self::Status),
            [.., "door", _, "state"] => Some(Self::DoorState),
            [.., "diagnostics"] => Some(Self::Diagnostics),
            [.., "cmd", _] => Some(Self::Command),
            [.., "config"] => Some(Self::Discovery),
            [.., "meals"] => Some(Self::Meals),
            _ => None,
        }
    }

    fn validator(self) -> &'static jsonschema::Validator {
        static VALIDATORS: OnceLock<Vec<(Contract, jsonschema::Validator)>> = OnceLock::new();
        let validators = VALIDATORS.get_or_init(|| {
            Self::ALL
                .iter()
                .map(|(contract, text)| {
                    let schema: serde_json::Value = serde_json::from_str(text)
                        .unwrap_or_else(|error| panic!("{contract:?} schema: {error}"));
                    let validator = jsonschema::options()
                        .should_validate_formats(true)
                        .build(&schema)
                        .unwrap_or_else(|error| panic!("{contract:?} schema: {error}"));
                    (*contract, validator)
                })
                .collect()
        });
        validators
            .iter()
            .find(|(contract, _)| *contract == self)
            .map(|(_, validator)| validator)
            .unwrap_or_else(|| panic!("no validator for {self:?}"))
    }
}

/// Checks one received message against the schema of its topic.
///
/// Commands are test input (some deliberately malformed), so a command topic is checked only by
/// [`validate`]'s callers that mean it; an empty payload on a discovery topic is a clear.
pub fn validate(topic: &str, payload: &[u8]) -> Result<(), String> {
    let contract =
        Contract::of_topic(topic).ok_or_else(|| format!("no schema for the topic {topic}"))?;
    if payload.is_empty() && contract == Contract::Discovery {
        return Ok(());
    }
    let instance: serde_json::Value = serde_json::from_slice(payload).map_err(|error| {
        format!(
            "{topic}: not JSON ({error}): {}",
            String::from_utf8_lossy(payload)
        )
    })?;
    let errors: Vec<String> = contract
        .validator()
        .iter_errors(&instance)
        .map(|error| format!("{} at {}", error, error.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{topic}: payload does not follow {contract:?} schema: {}\n  payload: {instance}",
            errors.join("; ")
        ))
    }
}

/// Panics, naming the schema violation, if a message a subscriber received breaks the contract.
/// Command topics are skipped: what arrives there is what the tests themselves sent.
pub fn assert_valid(topic: &str, payload: &[u8]) {
    if Contract::of_topic(topic) == Some(Contract::Command) {
        return;
    }
    if let Err(problem) = validate(topic, payload) {
        panic!("{problem}");
    }
}

/// [`assert_valid`] for a `mosquitto_sub -v` line (`topic payload`; an empty payload prints as
/// `topic` alone or `topic (null)`).
pub fn assert_valid_line(line: &str) {
    let (topic, payload) = line.split_once(' ').unwrap_or((line, ""));
    let payload = if payload == "(null)" { "" } else { payload };
    assert_valid(topic, payload.as_bytes());
}

#[cfg(test)]
mod tests {
    use palmgate::event::{CardId, EventKind, Latencies, NewEvent, Outcome, Reason, Timestamp};
    use palmgate::mqtt::discovery::{DeviceDiscovery, DiscoveryDoor, discovery_messages};
    use palmgate::mqtt::topics::{Availability, Diagnostics, last_will_payload, status_payload};
    use palmgate::mqtt::{Contact, DoorCondition, RetainedDoorState, RetainedLock, Topics};

    use super::*;

    const TIME: Timestamp = Timestamp::from_unix_ms(1_795_575_784_567);

    #[test]
    fn the_schemas_in_the_docs_are_the_files() {
        let docs = include_str!("../../docs/mqtt-api.md");
        for (contract, text) in Contract::ALL {
            assert!(
                docs.contains(text.trim_end()),
                "docs/mqtt-api.md does not show the {contract:?} schema as in schemas/"
            );
        }
    }

    #[test]
    fn gate_payloads_follow_their_schemas() {
        let topics = Topics::new("palmgate", "gate-1");
        for payload in [
            status_payload("gate-1", Availability::Online, TIME),
            status_payload("gate-1", Availability::Offline, TIME),
            last_will_payload("gate-1"),
        ] {
            validate(&topics.status(), &payload).expect("status");
        }
        let door = RetainedDoorState {
            lock: RetainedLock::Unlocked,
            contact: Contact::Open,
            mode: DoorCondition::FireRelease,
        };
        let door = serde_json::to_vec(&door).expect("json");
        validate(&topics.door_state("main"), &door).expect("door state");
        let diagnostics = Diagnostics {
            outbox_len: 0,
            outbox_capacity: 10,
            next_event_id: 1,
            time: TIME,
        };
        let diagnostics = serde_json::to_vec(&diagnostics).expect("json");
        validate(&topics.diagnostics(), &diagnostics).expect("diagnostics");
        let doors = [DiscoveryDoor {
            name: "main".into(),
            has_contact: true,
        }];
        for message in discovery_messages("homeassistant", &topics, "gate-1", "Gate", &doors) {
            validate(&message.topic, &message.payload).expect("discovery");
        }
        let device = DeviceDiscovery::new("homeassistant", &topics, "gate-1", "Gate", &doors);
        assert!(device.topic.ends_with("/device/palmgate_gate-1/config"));
        let canteen = device.with_meals(&topics, &["staff".to_string()]);
        validate(
            &canteen.topic,
            &serde_json::to_vec(&canteen.config).expect("json"),
        )
        .expect("canteen discovery");
        let counts = palmgate::mqtt::MealCounts {
            period: 332_704,
            period_name: Some("lunch".into()),
            served: 2,
            groups: [("staff".to_string(), 2)].into_iter().collect(),
            time: TIME,
        };
        let counts = serde_json::to_vec(&counts).expect("json");
        validate(&topics.meals(), &counts).expect("meal counts");
        assert!(validate(&topics.meals(), b"{\"period\":1,\"served\":-1}").is_err());
    }

    #[test]
    fn events_follow_the_schema_and_its_per_kind_rules() {
        let topics = Topics::new("palmgate", "gate-1");
        let card = CardId::new(&[0xab; 16]).expect("card");
        let granted = NewEvent::new(EventKind::AccessGranted, TIME)
            .door("main")
            .card(card.clone())
            .result(Outcome::Granted)
            .latencies(Latencies {
                match_ms: Some(3.5),
                ..Latencies::default()
            })
            .into_event(1, "gate-1");
        validate(&topics.event(&granted.kind), &granted.to_json()).expect("granted");
        let denied = NewEvent::new(EventKind::AccessDenied, TIME)
            .door("main")
            .card(card)
            .result(Outcome::Denied)
            .reason(Reason::NO_MATCH)
            .detail("palm does not match the card (2 tries left)")
            .into_event(2, "gate-1");
        validate(&topics.event(&denied.kind), &denied.to_json()).expect("denied");
        let refused = NewEvent::new(EventKind::CommandRefused, TIME)
            .result(Outcome::Refused)
            .reason(Reason::new("bad_signature").expect("code"))
            .detail("unlock")
            .into_event(3, "gate-1");
        validate(&topics.event(&refused.kind), &refused.to_json()).expect("refused");
        let meal = palmgate::event::MealRecord {
            period: 332_704,
            period_name: Some("lunch".into()),
            group: Some("staff".into()),
            count: 1,
            allowance: 1,
            receipt: Some("ab".repeat(261)),
            receipt_counter: Some(3),
            gate_time: Some(1_796_644_800),
        };
        let served = NewEvent::new(EventKind::MealServed, TIME)
            .door("main")
            .card(CardId::new(&[0xab; 16]).expect("card"))
            .result(Outcome::Granted)
            .meal(meal.clone())
            .into_event(4, "gate-1");
        validate(&topics.event(&served.kind), &served.to_json()).expect("meal served");
        let used = NewEvent::new(EventKind::AccessDenied, TIME)
            .door("main")
            .card(CardId::new(&[0xab; 16]).expect("card"))
            .result(Outcome::Denied)
            .reason(Reason::MEAL_ALLOWANCE_USED)
            .meal(palmgate::event::MealRecord {
                receipt: None,
                receipt_counter: None,
                gate_time: None,
                ..meal.clone()
            })
            .into_event(5, "gate-1");
        validate(&topics.event(&used.kind), &used.to_json()).expect("allowance used");
        // A served meal without its receipt, and a recovered one without its reason, break it.
        let mut no_receipt = served.clone();
        if let Some(meal) = no_receipt.event.meal.as_mut() {
            meal.receipt = None;
        }
        assert!(validate(&topics.event(&served.kind), &no_receipt.to_json()).is_err());
        let mut recovered = served.clone();
        recovered.event.result = Some(Outcome::Info);
        assert!(validate(&topics.event(&served.kind), &recovered.to_json()).is_err());
        recovered.event.reason = Some(Reason::RECOVERED);
        validate(&topics.event(&served.kind), &recovered.to_json()).expect("recovered");
        // The schema can fail: a grant without its door, and version 1's prose reason.
        let mut no_door = granted.clone();
        no_door.event.door = None;
        assert!(validate(&topics.event(&no_door.kind), &no_door.to_json()).is_err());
        let mut version_1: serde_json::Value =
            serde_json::from_slice(&denied.to_json()).expect("json");
        version_1["reason"] = serde_json::json!("palm does not match the card (2 tries left)");
        let text = version_1.to_string();
        assert!(validate(&topics.event(&denied.kind), text.as_bytes()).is_err());
    }

    #[test]
    fn signed_commands_follow_the_schema() {
        let signer = palmgate::mqtt::OperatorSigner::generate().expect("operator key");
        let command = palmgate::mqtt::Command::Unlock {
            door: "main".into(),
            duration_s: Some(5),
        };
        let payload = signer.sign("gate-1", &command, 1_795_575_784, &[7; 16]);
        validate("palmgate/gate-1/cmd/unlock", &payload).expect("command");
        assert!(validate("palmgate/gate-1/cmd/unlock", b"{\"command\":\"unlock\"}").is_err());
    }

    #[test]
    fn topics_map_to_their_contracts() {
        for (topic, contract) in [
            ("p/g/event/access.granted", Some(Contract::Event)),
            ("p/g/status", Some(Contract::Status)),
            ("p/g/door/main/state", Some(Contract::DoorState)),
            ("p/g/diagnostics", Some(Contract::Diagnostics)),
            ("p/g/cmd/unlock", Some(Contract::Command)),
            (
                "homeassistant/device/palmgate_g/config",
                Some(Contract::Discovery),
            ),
            ("p/g/other", None),
        ] {
            assert_eq!(Contract::of_topic(topic), contract, "{topic}");
        }
    }
}
