//! Validated settings: what the daemon runs with.
//!
//! Field names mirror the configuration keys, so that the effective configuration printed by
//! `palmgate config check` can be read back as a configuration file. Durations are printed in the
//! unit their key names (`_ms`, `_s`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use palmgate_matcher::Profile;
use serde::{Serialize, Serializer};

/// The whole validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// This gate's identity.
    pub gate: GateSettings,
    /// Card reader and card trust.
    pub card: CardSettings,
    /// Palm sensor serial line.
    pub sensor: SensorSettings,
    /// Template extraction.
    pub matcher: MatcherSettings,
    /// GPIO backend.
    pub gpio: GpioSettings,
    /// Gate-wide fire-alarm input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fire: Option<FireSettings>,
    /// Doors by name.
    pub door: BTreeMap<String, DoorSettings>,
    /// MQTT link to the facility.
    pub mqtt: MqttSettings,
    /// Persistent state.
    pub storage: StorageSettings,
    /// Logging.
    pub logging: LoggingSettings,
    /// Reader mode in front of an access panel (`[panel]`, issue 17).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panel: Option<palmgate_panel::config::PanelSettings>,
    /// Presentation attack detection (`[pad]`, docs/pad.md).
    pub pad: palmgate_matcher::pad::PadSettings,
}

/// `[gate]`.
#[derive(Debug, Clone, Serialize)]
pub struct GateSettings {
    /// Identifier used in MQTT topics and events: `[a-z0-9_-]`, 1 to 64 characters.
    pub id: String,
    /// Human-readable name (defaults to the id).
    pub name: String,
    /// Site the gate belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// `[card]`.
#[derive(Debug, Clone, Serialize)]
pub struct CardSettings {
    /// Substring of the PC/SC reader name to use; empty means the first reader.
    pub reader: String,
    /// Issuer public key files that certify cards.
    pub issuer_keys: Vec<PathBuf>,
    /// The door this reader opens.
    pub door: String,
    /// Access policy file (groups, schedules, holidays, anti-passback); every certified,
    /// unrevoked card may pass when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_file: Option<PathBuf>,
    /// Revocation list file (created and updated by signed MQTT commands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_list: Option<PathBuf>,
    /// How long a card and a palm may be apart and still form one presentation.
    #[serde(rename = "presentation_window_ms", serialize_with = "as_millis")]
    pub presentation_window: Duration,
    /// Time allowed for the whole card exchange of one verification.
    #[serde(rename = "verify_timeout_ms", serialize_with = "as_millis")]
    pub verify_timeout: Duration,
}

/// `[sensor]`.
#[derive(Debug, Clone, Serialize)]
pub struct SensorSettings {
    /// Serial device of the palm sensor.
    pub port: PathBuf,
    /// Line speed.
    pub baud: u32,
    /// Largest frame accepted from the sensor, in bytes.
    pub max_frame_bytes: u32,
    /// Time allowed for each request to the sensor.
    #[serde(rename = "request_timeout_ms", serialize_with = "as_millis")]
    pub request_timeout: Duration,
    /// Longest wait between reconnection attempts.
    #[serde(rename = "reconnect_max_ms", serialize_with = "as_millis")]
    pub reconnect_max: Duration,
    /// When the sensor captures.
    pub capture: CaptureMode,
}

/// When the palm sensor captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// All the time: card and palm may come in either order.
    Continuous,
    /// Only while a card that passed the checks waits for a palm: card first, and no extraction
    /// work (nor illumination) while nobody is at the gate.
    OnCard,
}

/// What the sensor delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatcherInput {
    /// Whole-hand images: the gate cuts the palm region itself.
    Hand,
    /// Palm regions already cut by the sensor.
    Roi,
}

/// `[matcher]`.
#[derive(Debug, Clone, Serialize)]
pub struct MatcherSettings {
    /// Replacement ONNX model (same inputs and outputs as the built-in one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// What the sensor delivers.
    pub input: MatcherInput,
    /// The security profile: the card compares the probe with this profile's calibrated
    /// threshold (named in VERIFY PALM), and enrolment checks its captures with it.
    #[serde(serialize_with = "as_display")]
    pub profile: Profile,
}

/// GPIO implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GpioBackend {
    /// Raspberry Pi GPIO through rppal.
    Rpi,
    /// Simulated pins (demo and tests).
    Simulated,
}

/// `[gpio]`.
#[derive(Debug, Clone, Serialize)]
pub struct GpioSettings {
    /// Which GPIO implementation drives the pins.
    pub backend: GpioBackend,
    /// Simulated backend only: a Unix socket on which the demo and tests set input levels
    /// (door contacts, buttons, fire) and read outputs. See `gate::sim_control`.
    pub simulated_control: Option<PathBuf>,
}

/// Electrical level at which a pin is "active".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Active when the pin is high.
    High,
    /// Active when the pin is low.
    Low,
}

/// `[fire]`.
#[derive(Debug, Clone, Serialize)]
pub struct FireSettings {
    /// BCM pin of the fire-alarm input.
    pub pin: u8,
    /// Level that means "fire" (default high: with the pull-up, a normally-closed loop that is
    /// opened by the alarm, or cut, reads as fire).
    pub active: Level,
    /// Input debounce time.
    #[serde(rename = "debounce_ms", serialize_with = "as_millis")]
    pub debounce: Duration,
}

/// Door or turnstile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DoorMode {
    /// A door with a strike or maglock held open for `unlock_s`.
    Door,
    /// A turnstile: one pulse per grant, passages counted.
    Turnstile,
}

/// What the lock does without power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Fail-secure strike: energise to unlock; stays locked without power.
    Secure,
    /// Fail-safe maglock: energise to lock; releases without power.
    Safe,
}

/// `[door.<name>]`.
#[derive(Debug, Clone, Serialize)]
pub struct DoorSettings {
    /// Door or turnstile.
    pub mode: DoorMode,
    /// BCM pin of the lock relay.
    pub lock_pin: u8,
    /// Level that energises the lock relay.
    pub lock_active: Level,
    /// Fail-secure strike or fail-safe maglock.
    pub fail_mode: FailMode,
    /// How long a grant keeps the door unlocked (turnstile: the pulse length).
    #[serde(rename = "unlock_s", serialize_with = "as_secs")]
    pub unlock: Duration,
    /// Delay between the door closing and relocking.
    #[serde(rename = "relock_delay_ms", serialize_with = "as_millis")]
    pub relock_delay: Duration,
    /// Door held open this long: pre-alarm.
    #[serde(rename = "held_open_prealarm_s", serialize_with = "as_secs")]
    pub held_open_prealarm: Duration,
    /// Door held open this long: alarm.
    #[serde(rename = "held_open_alarm_s", serialize_with = "as_secs")]
    pub held_open_alarm: Duration,
    /// Input debounce time.
    #[serde(rename = "debounce_ms", serialize_with = "as_millis")]
    pub debounce: Duration,
    /// Door position switch input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_pin: Option<u8>,
    /// Level that means "door open".
    pub contact_active: Level,
    /// Request-to-exit button input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rex_pin: Option<u8>,
    /// Level that means "button pressed".
    pub rex_active: Level,
    /// Tamper switch input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tamper_pin: Option<u8>,
    /// Level that means "tampered".
    pub tamper_active: Level,
    /// Turnstile passage sensor input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passage_pin: Option<u8>,
    /// Level that means "someone passed".
    pub passage_active: Level,
    /// Green LED output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub green_led_pin: Option<u8>,
    /// Red LED output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub red_led_pin: Option<u8>,
    /// Buzzer output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buzzer_pin: Option<u8>,
    /// Level that switches a feedback output (LED, buzzer) on.
    pub feedback_active: Level,
    /// Turnstile: a grant not used within this window expires.
    #[serde(rename = "grant_window_s", serialize_with = "as_secs")]
    pub grant_window: Duration,
    /// Interlock: this door opens only while the named door is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interlock_with: Option<String>,
    /// Whether lockdown also refuses request-to-exit.
    pub lockdown_blocks_rex: bool,
}

/// A debounced input pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputPin {
    /// BCM pin number.
    pub pin: u8,
    /// Level that means "active" (door open, button pressed, tamper, passage).
    pub active: Level,
}

impl DoorSettings {
    /// Door position switch, when wired.
    pub fn contact(&self) -> Option<InputPin> {
        self.contact_pin.map(|pin| InputPin {
            pin,
            active: self.contact_active,
        })
    }

    /// Request-to-exit button, when wired.
    pub fn rex(&self) -> Option<InputPin> {
        self.rex_pin.map(|pin| InputPin {
            pin,
            active: self.rex_active,
        })
    }

    /// Tamper switch, when wired.
    pub fn tamper(&self) -> Option<InputPin> {
        self.tamper_pin.map(|pin| InputPin {
            pin,
            active: self.tamper_active,
        })
    }

    /// Turnstile passage sensor, when wired.
    pub fn passage(&self) -> Option<InputPin> {
        self.passage_pin.map(|pin| InputPin {
            pin,
            active: self.passage_active,
        })
    }
}

/// The scheme of the MQTT URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MqttScheme {
    /// Plain TCP (loopback and tests only).
    Mqtt,
    /// TLS.
    Mqtts,
}

/// `[mqtt]`.
#[derive(Debug, Clone, Serialize)]
pub struct MqttSettings {
    /// The broker URL as given.
    pub url: String,
    /// Parsed scheme.
    #[serde(skip)]
    pub scheme: MqttScheme,
    /// Parsed host.
    #[serde(skip)]
    pub host: String,
    /// Parsed port (1883 / 8883 by default).
    #[serde(skip)]
    pub port: u16,
    /// MQTT client id (defaults to `palmgate-<gate id>`).
    pub client_id: String,
    /// CA certificate(s) that sign the broker's certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Client private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// User name, when the broker wants one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password, when the broker wants one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// First topic level(s): `<prefix>/<gate>/…`.
    pub topic_prefix: String,
    /// MQTT keep-alive.
    #[serde(rename = "keep_alive_s", serialize_with = "as_secs")]
    pub keep_alive: Duration,
    /// Operator public keys whose signatures make a command valid.
    pub operator_keys: Vec<PathBuf>,
    /// Oldest command timestamp accepted.
    #[serde(rename = "command_max_age_s", serialize_with = "as_secs")]
    pub command_max_age: Duration,
    /// Publish Home Assistant discovery.
    pub discovery: bool,
    /// Home Assistant discovery prefix.
    pub discovery_prefix: String,
}

/// `[storage]`.
#[derive(Debug, Clone, Serialize)]
pub struct StorageSettings {
    /// Directory of the outbox and other state (systemd `StateDirectory`).
    pub state_dir: PathBuf,
    /// Device key (AES-256) file, created with mode 0600 on first start.
    pub device_key_file: PathBuf,
    /// Most events the outbox holds before it refuses new ones.
    pub outbox_max_events: u64,
    /// Fill level (percent) at which an `outbox.filling` alarm is raised.
    pub outbox_alarm_percent: u8,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Diagnostics.
    Debug,
    /// Normal operation.
    Info,
    /// Problems that were handled.
    Warn,
    /// Failures.
    Error,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// journald when started by systemd, human-readable otherwise.
    Auto,
    /// Human-readable lines on standard error.
    Human,
    /// Structured records straight to the journal.
    Journald,
}

/// `[logging]`.
#[derive(Debug, Clone, Serialize)]
pub struct LoggingSettings {
    /// Verbosity (overridden by `RUST_LOG` when set).
    pub level: LogLevel,
    /// Output format.
    pub format: LogFormat,
}

/// A configured secret: never printed, zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(zeroize::Zeroizing<String>);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(zeroize::Zeroizing::new(value))
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("REDACTED")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("REDACTED")
    }
}

fn as_display<T: fmt::Display, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

fn as_millis<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
}

fn as_secs<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        serializer.serialize_u64(duration.as_secs())
    } else {
        serializer.serialize_f64(secs)
    }
}
