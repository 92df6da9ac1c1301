//! Raw configuration fragments, exactly as an installer writes them.
//!
//! Every field is optional so that each layer (built-in defaults, main file, `conf.d` drop-ins,
//! environment) can be checked on its own; unknown keys are errors at every level. Validation into
//! [`super::Settings`] happens once, on the merged result.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One configuration layer, or the merge of all of them.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub gate: Option<RawGate>,
    pub card: Option<RawCard>,
    pub sensor: Option<RawSensor>,
    pub matcher: Option<RawMatcher>,
    pub gpio: Option<RawGpio>,
    pub fire: Option<RawFire>,
    /// Doors by name: `[door.main]`.
    pub door: Option<BTreeMap<String, RawDoor>>,
    pub mqtt: Option<RawMqtt>,
    pub storage: Option<RawStorage>,
    pub logging: Option<RawLogging>,
    /// `[panel]`: reader mode in front of an access panel (validated by `palmgate-panel`).
    pub panel: Option<palmgate_panel::config::RawPanel>,
    pub pad: Option<RawPad>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    pub id: Option<String>,
    pub name: Option<String>,
    pub site: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCard {
    pub reader: Option<String>,
    pub issuer_keys: Option<Vec<String>>,
    pub revocation_list: Option<String>,
    pub door: Option<String>,
    pub policy_file: Option<String>,
    pub presentation_window_ms: Option<u64>,
    pub verify_timeout_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSensor {
    pub port: Option<String>,
    pub baud: Option<u32>,
    pub max_frame_bytes: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub reconnect_max_ms: Option<u64>,
    pub capture: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatcher {
    pub model: Option<String>,
    pub input: Option<String>,
    pub profile: Option<String>,
    /// Read only to refuse it with the reason (replaced by `profile`).
    pub threshold: Option<f64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGpio {
    pub backend: Option<String>,
    pub simulated_control: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFire {
    pub pin: Option<i64>,
    pub active: Option<String>,
    pub debounce_ms: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDoor {
    pub mode: Option<String>,
    pub lock_pin: Option<i64>,
    pub lock_active: Option<String>,
    pub fail_mode: Option<String>,
    pub unlock_s: Option<f64>,
    pub relock_delay_ms: Option<u64>,
    pub held_open_prealarm_s: Option<f64>,
    pub held_open_alarm_s: Option<f64>,
    pub debounce_ms: Option<u64>,
    pub contact_pin: Option<i64>,
    pub contact_active: Option<String>,
    pub rex_pin: Option<i64>,
    pub rex_active: Option<String>,
    pub tamper_pin: Option<i64>,
    pub tamper_active: Option<String>,
    pub passage_pin: Option<i64>,
    pub passage_active: Option<String>,
    pub green_led_pin: Option<i64>,
    pub red_led_pin: Option<i64>,
    pub buzzer_pin: Option<i64>,
    pub feedback_active: Option<String>,
    pub grant_window_s: Option<f64>,
    pub interlock_with: Option<String>,
    pub lockdown_blocks_rex: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    pub url: Option<String>,
    pub client_id: Option<String>,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topic_prefix: Option<String>,
    pub keep_alive_s: Option<u64>,
    pub operator_keys: Option<Vec<String>>,
    pub command_max_age_s: Option<u64>,
    pub discovery: Option<bool>,
    pub discovery_prefix: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub state_dir: Option<String>,
    pub device_key_file: Option<String>,
    pub outbox_max_events: Option<u64>,
    pub outbox_alarm_percent: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPad {
    pub profile: Option<String>,
    pub burst_rounds: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    pub level: Option<String>,
    pub format: Option<String>,
}
