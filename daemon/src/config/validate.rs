//! Validation of the merged configuration into [`Settings`].

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use palmgate_matcher::Profile;
use palmgate_matcher::pad::{PadProfile, PadSettings};

use super::files::{
    BoundedFileError, MAX_KEY_FILE_BYTES, MAX_MODEL_FILE_BYTES, MAX_POLICY_FILE_BYTES,
    MAX_REVOCATION_LIST_BYTES, open_bounded,
};
use super::raw::{RawConfig, RawDoor};
use super::settings::*;
use super::{ConfigError, Origins, Problem};

/// Highest BCM GPIO number on a Raspberry Pi header.
const MAX_BCM_PIN: i64 = 27;
/// Longest path accepted (Linux's `PATH_MAX` less the terminating NUL).
const MAX_PATH_BYTES: usize = 4095;
/// Longest display name or site (`gate.name`, `gate.site`): a label, not a document.
const MAX_LABEL_CHARS: usize = 128;
/// Longest broker URL: a host name is at most 253 characters.
const MAX_URL_CHARS: usize = 512;
/// Longest PC/SC reader name, MQTT user name and topic prefix.
const MAX_NAME_CHARS: usize = 256;
/// Longest MQTT password (long enough for a token used as a password).
const MAX_PASSWORD_CHARS: usize = 4096;
/// Most key files in a list (`card.issuer_keys`, `mqtt.operator_keys`).
const MAX_KEY_FILES: usize = 64;
const BAUD_RATES: [u32; 12] = [
    9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 921600, 1000000, 2000000, 3000000,
];

pub(crate) fn validate(raw: RawConfig, origins: &Origins<'_>) -> Result<Settings, ConfigError> {
    let mut check = Checker {
        origins,
        problems: Vec::new(),
    };
    let settings = check.settings(raw);
    match settings {
        Some(settings) if check.problems.is_empty() => Ok(settings),
        _ => Err(ConfigError {
            problems: check.problems,
        }),
    }
}

struct Checker<'a, 'b> {
    origins: &'a Origins<'b>,
    problems: Vec<Problem>,
}

impl Checker<'_, '_> {
    fn problem(&mut self, key: &str, reason: impl Into<String>) {
        let source = self.origins.source_of(key);
        self.problems.push(Problem {
            source,
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            let source = self.origins.main.clone();
            let reason = "missing: this key has no default and must be set".to_string();
            self.problems.push(Problem {
                source,
                key: key.to_string(),
                reason,
            });
        }
        value
    }

    fn int_range(&mut self, key: &str, value: Option<u64>, min: u64, max: u64) -> Option<u64> {
        let value = self.required(key, value)?;
        if !(min..=max).contains(&value) {
            self.problem(key, format!("{value} is out of range ({min} to {max})"));
            return None;
        }
        Some(value)
    }

    fn millis(&mut self, key: &str, value: Option<u64>, min: u64, max: u64) -> Option<Duration> {
        self.int_range(key, value, min, max)
            .map(Duration::from_millis)
    }

    fn seconds(&mut self, key: &str, value: Option<f64>, min: f64, max: f64) -> Option<Duration> {
        let value = self.required(key, value)?;
        if !value.is_finite() || value < min || value > max {
            self.problem(key, format!("{value} s is out of range ({min} to {max} s)"));
            return None;
        }
        Some(Duration::from_secs_f64(value))
    }

    fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: Option<&str>,
        options: &[(&str, T)],
    ) -> Option<T> {
        let value = self.required(key, value)?;
        match options.iter().find(|(name, _)| *name == value) {
            Some((_, choice)) => Some(*choice),
            None => {
                let names: Vec<&str> = options.iter().map(|(name, _)| *name).collect();
                self.problem(
                    key,
                    format!("\"{value}\" is not one of: {}", names.join(", ")),
                );
                None
            }
        }
    }

    fn level(&mut self, key: &str, value: Option<&str>) -> Option<Level> {
        self.choice(key, value, &[("high", Level::High), ("low", Level::Low)])
    }

    fn pin(&mut self, key: &str, value: i64) -> Option<u8> {
        if !(0..=MAX_BCM_PIN).contains(&value) {
            self.problem(
                key,
                format!("GPIO {value} is not a BCM pin (0 to {MAX_BCM_PIN})"),
            );
            return None;
        }
        u8::try_from(value).ok()
    }

    /// A string of at most `max` characters (the reason never repeats a value that is too long).
    fn bounded_text(&mut self, key: &str, value: &str, max: usize) -> bool {
        let chars = value.chars().count();
        if chars > max {
            self.problem(
                key,
                format!("{chars} characters is too long (at most {max})"),
            );
            return false;
        }
        true
    }

    fn path(&mut self, key: &str, value: &str) -> Option<PathBuf> {
        if value.trim().is_empty() {
            self.problem(key, "empty path");
            return None;
        }
        if value.len() > MAX_PATH_BYTES {
            let reason = format!(
                "a path of {} bytes is too long (at most {MAX_PATH_BYTES})",
                value.len()
            );
            self.problem(key, reason);
            return None;
        }
        if value.contains('\0') {
            self.problem(key, "a path cannot contain NUL");
            return None;
        }
        let path = Path::new(value);
        Some(if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.origins.base_dir_of(key).join(path)
        })
    }

    /// A file that must exist when the daemon starts (keys, certificates, models): a regular
    /// file of at most `limit` bytes, opened without blocking (see [`super::files`]).
    fn existing_file(&mut self, key: &str, value: &str, limit: u64) -> Option<PathBuf> {
        let path = self.path(key, value)?;
        match open_bounded(&path, limit) {
            Ok(_) => Some(path),
            Err(error) => {
                self.problem(key, error.to_string());
                None
            }
        }
    }

    /// A file the gate may write later (the revocation list, the device key): when it exists,
    /// a regular file of at most `limit` bytes. A file this user may not open is checked by its
    /// metadata (the device key is private to the palmgate user).
    fn optional_file(&mut self, key: &str, path: PathBuf, limit: u64) -> Option<PathBuf> {
        let error = match open_bounded(&path, limit) {
            Ok(_) => return Some(path),
            Err(error) if error.is_not_found() => return Some(path),
            Err(error) => error,
        };
        let denied = matches!(&error, BoundedFileError::Open { error: cause, .. }
            if cause.kind() == std::io::ErrorKind::PermissionDenied);
        let error = match std::fs::metadata(&path) {
            Ok(meta) if denied && !meta.is_file() => BoundedFileError::NotRegular {
                path: path.clone(),
                kind: "not a regular file",
            },
            Ok(meta) if denied && meta.len() > limit => BoundedFileError::TooLarge {
                path: path.clone(),
                size: meta.len(),
                limit,
            },
            Ok(_) if denied => return Some(path),
            _ => error,
        };
        self.problem(key, error.to_string());
        None
    }

    /// A list of key files, each a regular file of at most [`MAX_KEY_FILE_BYTES`].
    fn key_files(&mut self, key: &str, values: &[String]) -> Option<Vec<PathBuf>> {
        if values.len() > MAX_KEY_FILES {
            let reason = format!(
                "{} files is too many (at most {MAX_KEY_FILES})",
                values.len()
            );
            self.problem(key, reason);
            return None;
        }
        let mut paths = Vec::new();
        for (index, value) in values.iter().enumerate() {
            paths.push(self.existing_file(&format!("{key}[{index}]"), value, MAX_KEY_FILE_BYTES));
        }
        paths.into_iter().collect()
    }

    fn settings(&mut self, raw: RawConfig) -> Option<Settings> {
        let gate = self.gate(raw.gate.unwrap_or_default());
        let door_names: Vec<String> = raw
            .door
            .as_ref()
            .map(|doors| doors.keys().cloned().collect())
            .unwrap_or_default();
        let card = self.card(raw.card.unwrap_or_default(), &door_names);
        let sensor = self.sensor(raw.sensor.unwrap_or_default());
        let matcher = self.matcher(raw.matcher.unwrap_or_default());
        let gpio = self.gpio(raw.gpio.unwrap_or_default());
        let fire = match raw.fire {
            Some(fire) => self.fire(fire),
            None => Some(None),
        };
        let door = self.doors(raw.door.unwrap_or_default());
        let gate_id = gate
            .as_ref()
            .map(|gate| gate.id.clone())
            .unwrap_or_default();
        let mqtt = self.mqtt(raw.mqtt.unwrap_or_default(), &gate_id);
        let storage = self.storage(raw.storage.unwrap_or_default());
        let logging = self.logging(raw.logging.unwrap_or_default());
        let panel = self.panel(raw.panel.as_ref());
        let pad = self.pad(raw.pad.unwrap_or_default());
        if let (Some(door), Some(fire)) = (&door, &fire) {
            let panel = panel.as_ref().and_then(Option::as_ref);
            self.pins_used_once(door, fire.as_ref(), panel);
        }
        Some(Settings {
            gate: gate?,
            card: card?,
            sensor: sensor?,
            matcher: matcher?,
            gpio: gpio?,
            fire: fire?,
            door: door?,
            mqtt: mqtt?,
            storage: storage?,
            logging: logging?,
            panel: panel?,
            pad: pad?,
        })
    }

    /// `[pad]`: the presentation attack detection's operating point and burst length.
    fn pad(&mut self, raw: super::raw::RawPad) -> Option<PadSettings> {
        let profiles = PadProfile::ALL.map(|profile| (profile.name(), profile));
        let profile = self.choice("pad.profile", raw.profile.as_deref(), &profiles);
        let rounds = PadSettings::BURST_ROUNDS;
        let burst_rounds = self
            .int_range(
                "pad.burst_rounds",
                raw.burst_rounds,
                u64::from(*rounds.start()),
                u64::from(*rounds.end()),
            )
            .and_then(|rounds| u8::try_from(rounds).ok());
        let settings = PadSettings {
            profile: profile?,
            burst_rounds: burst_rounds?,
        };
        // The matcher's own check, so that the two can never disagree.
        if let Err(error) = settings.validate() {
            self.problem("pad.burst_rounds", error.to_string());
            return None;
        }
        Some(settings)
    }

    /// `[panel]`: palmgate-panel validates it; its problems are reported like ours.
    fn panel(
        &mut self,
        raw: Option<&palmgate_panel::config::RawPanel>,
    ) -> Option<Option<palmgate_panel::config::PanelSettings>> {
        let Some(raw) = raw else {
            return Some(None);
        };
        match palmgate_panel::config::validate(raw) {
            Ok(mut settings) => {
                // Paths are relative to the file that set them, like every other path here.
                let map = settings.credential_map.display().to_string();
                let map = self.existing_file(
                    "panel.credential_map",
                    &map,
                    crate::config::files::MAX_POLICY_FILE_BYTES,
                )?;
                let signature = palmgate_panel::credential_map::signature_path(&map);
                if !signature.is_file() {
                    self.problem(
                        "panel.credential_map",
                        format!(
                            "{} is missing: the map must be signed (palmgate-panel sign-map)",
                            signature.display()
                        ),
                    );
                    return None;
                }
                settings.credential_map = map;
                if let palmgate_panel::config::PanelProtocol::Osdp(osdp) = &mut settings.protocol {
                    let key_file = osdp.scbk_file.display().to_string();
                    osdp.scbk_file = self.path("panel.osdp.scbk_file", &key_file)?;
                }
                Some(Some(settings))
            }
            Err(problems) => {
                for problem in problems {
                    self.problem(&problem.key, problem.reason);
                }
                None
            }
        }
    }

    fn gate(&mut self, raw: super::raw::RawGate) -> Option<GateSettings> {
        let id = self.required("gate.id", raw.id)?;
        if !self.bounded_text("gate.id", &id, 64) {
            return None;
        }
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            self.problem("gate.id", format!("\"{id}\" must be 1 to 64 characters of a-z, 0-9, '-' or '_' (it is used in MQTT topics)"));
            return None;
        }
        let name = raw.name.unwrap_or_else(|| id.clone());
        let name_ok = self.bounded_text("gate.name", &name, MAX_LABEL_CHARS);
        let site_ok = raw
            .site
            .as_deref()
            .is_none_or(|site| self.bounded_text("gate.site", site, MAX_LABEL_CHARS));
        if !(name_ok && site_ok) {
            return None;
        }
        Some(GateSettings {
            id,
            name,
            site: raw.site,
        })
    }

    fn card(&mut self, raw: super::raw::RawCard, doors: &[String]) -> Option<CardSettings> {
        let reader = raw.reader.unwrap_or_default();
        let reader_ok = self.bounded_text("card.reader", &reader, MAX_NAME_CHARS);
        let keys = self.required("card.issuer_keys", raw.issuer_keys);
        let issuer_keys = keys.and_then(|keys| {
            if keys.is_empty() {
                self.problem(
                    "card.issuer_keys",
                    "at least one issuer key is needed to trust any card",
                );
                return None;
            }
            self.key_files("card.issuer_keys", &keys)
        });
        let revocation_list = match raw.revocation_list {
            Some(path) => {
                let path = self.path("card.revocation_list", &path)?;
                Some(self.optional_file("card.revocation_list", path, MAX_REVOCATION_LIST_BYTES)?)
            }
            None => None,
        };
        let door = match (raw.door, doors) {
            (Some(door), _) if doors.contains(&door) => Some(door),
            (Some(door), _) => {
                self.problem("card.door", format!("no door named \"{door}\""));
                None
            }
            (None, [only]) => Some(only.clone()),
            (None, []) => None,
            (None, _) => {
                let source = self.origins.main.clone();
                let reason =
                    "missing: name the door this reader opens (there are several)".to_string();
                self.problems.push(Problem {
                    source,
                    key: "card.door".to_string(),
                    reason,
                });
                None
            }
        };
        let policy_file = match raw.policy_file {
            Some(path) => {
                Some(self.existing_file("card.policy_file", &path, MAX_POLICY_FILE_BYTES)?)
            }
            None => None,
        };
        let presentation_window = self.millis(
            "card.presentation_window_ms",
            raw.presentation_window_ms,
            1000,
            120_000,
        );
        let verify_timeout =
            self.millis("card.verify_timeout_ms", raw.verify_timeout_ms, 100, 10_000);
        if !reader_ok {
            return None;
        }
        Some(CardSettings {
            reader,
            issuer_keys: issuer_keys?,
            door: door?,
            policy_file,
            revocation_list,
            presentation_window: presentation_window?,
            verify_timeout: verify_timeout?,
        })
    }

    fn sensor(&mut self, raw: super::raw::RawSensor) -> Option<SensorSettings> {
        let port = self
            .required("sensor.port", raw.port)
            .and_then(|port| self.path("sensor.port", &port));
        let baud = self.required("sensor.baud", raw.baud).and_then(|baud| {
            if BAUD_RATES.contains(&baud) {
                Some(baud)
            } else {
                self.problem(
                    "sensor.baud",
                    format!("{baud} is not a supported line speed"),
                );
                None
            }
        });
        let max_frame_bytes = self
            .int_range(
                "sensor.max_frame_bytes",
                raw.max_frame_bytes,
                1024,
                16 * 1024 * 1024,
            )
            .and_then(|bytes| u32::try_from(bytes).ok());
        let request_timeout = self.millis(
            "sensor.request_timeout_ms",
            raw.request_timeout_ms,
            50,
            10_000,
        );
        let reconnect_max =
            self.millis("sensor.reconnect_max_ms", raw.reconnect_max_ms, 100, 60_000);
        let capture = self.choice(
            "sensor.capture",
            raw.capture.as_deref(),
            &[
                ("continuous", CaptureMode::Continuous),
                ("on_card", CaptureMode::OnCard),
            ],
        );
        Some(SensorSettings {
            port: port?,
            baud: baud?,
            max_frame_bytes: max_frame_bytes?,
            request_timeout: request_timeout?,
            reconnect_max: reconnect_max?,
            capture: capture?,
        })
    }

    fn matcher(&mut self, raw: super::raw::RawMatcher) -> Option<MatcherSettings> {
        let model = match raw.model {
            Some(model) => {
                Some(self.existing_file("matcher.model", &model, MAX_MODEL_FILE_BYTES)?)
            }
            None => None,
        };
        let input = self.choice(
            "matcher.input",
            raw.input.as_deref(),
            &[("hand", MatcherInput::Hand), ("roi", MatcherInput::Roi)],
        );
        let profile = self.choice(
            "matcher.profile",
            raw.profile.as_deref(),
            &Profile::ALL.map(|profile| (profile.name(), profile)),
        );
        if raw.threshold.is_some() {
            // A raw threshold is never sent to a card: say what replaced it rather than ignore it.
            self.problem(
                "matcher.threshold",
                "no longer used: the card compares with the calibrated threshold of \
                 matcher.profile (convenience, balanced or security)",
            );
            return None;
        }
        Some(MatcherSettings {
            model,
            input: input?,
            profile: profile?,
        })
    }

    fn gpio(&mut self, raw: super::raw::RawGpio) -> Option<GpioSettings> {
        let backend = self.choice(
            "gpio.backend",
            raw.backend.as_deref(),
            &[
                ("rpi", GpioBackend::Rpi),
                ("simulated", GpioBackend::Simulated),
            ],
        )?;
        let simulated_control = match raw.simulated_control.as_deref() {
            None => None,
            Some(_) if backend != GpioBackend::Simulated => {
                self.problem(
                    "gpio.simulated_control",
                    "only the simulated backend has inputs to set from outside",
                );
                return None;
            }
            Some(path) => Some(self.path("gpio.simulated_control", path)?),
        };
        Some(GpioSettings {
            backend,
            simulated_control,
        })
    }

    /// `Some(None)`: no fire input configured; `None`: invalid.
    fn fire(&mut self, raw: super::raw::RawFire) -> Option<Option<FireSettings>> {
        let pin = self
            .required("fire.pin", raw.pin)
            .and_then(|pin| self.pin("fire.pin", pin));
        let active = self.level("fire.active", raw.active.as_deref().or(Some("high")));
        let debounce = self.millis("fire.debounce_ms", raw.debounce_ms.or(Some(100)), 1, 5000);
        Some(Some(FireSettings {
            pin: pin?,
            active: active?,
            debounce: debounce?,
        }))
    }

    fn doors(&mut self, raw: BTreeMap<String, RawDoor>) -> Option<BTreeMap<String, DoorSettings>> {
        if raw.is_empty() {
            let source = self.origins.main.clone();
            let reason = "no door configured: add a [door.<name>] section".to_string();
            self.problems.push(Problem {
                source,
                key: "door".to_string(),
                reason,
            });
            return None;
        }
        let mut doors = BTreeMap::new();
        let mut ok = true;
        for (name, door) in &raw {
            match self.door(name, door.clone(), &raw) {
                Some(door) => {
                    doors.insert(name.clone(), door);
                }
                None => ok = false,
            }
        }
        ok.then_some(doors)
    }

    fn door(
        &mut self,
        name: &str,
        raw: RawDoor,
        all: &BTreeMap<String, RawDoor>,
    ) -> Option<DoorSettings> {
        let key = |field: &str| format!("door.{name}.{field}");
        if name.chars().count() > 32 {
            // The key would repeat the whole name: show its start only.
            let start: String = name.chars().take(32).collect();
            self.problem(
                &format!("door.{start}…"),
                "door names must be 1 to 32 characters of a-z, 0-9, '-' or '_' (they are used in MQTT topics)",
            );
            return None;
        }
        let name_ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            self.problem(&format!("door.{name}"), "door names must be 1 to 32 characters of a-z, 0-9, '-' or '_' (they are used in MQTT topics)");
            return None;
        }
        let mode = self.choice(
            &key("mode"),
            raw.mode.as_deref().or(Some("door")),
            &[("door", DoorMode::Door), ("turnstile", DoorMode::Turnstile)],
        );
        let lock_pin = self
            .required(&key("lock_pin"), raw.lock_pin)
            .and_then(|pin| self.pin(&key("lock_pin"), pin));
        let lock_active = self.level(
            &key("lock_active"),
            raw.lock_active.as_deref().or(Some("high")),
        );
        let fail_mode = self.choice(
            &key("fail_mode"),
            raw.fail_mode.as_deref().or(Some("secure")),
            &[("secure", FailMode::Secure), ("safe", FailMode::Safe)],
        );
        let unlock = self.seconds(&key("unlock_s"), raw.unlock_s.or(Some(5.0)), 0.2, 300.0);
        let relock_delay = self.millis(
            &key("relock_delay_ms"),
            raw.relock_delay_ms.or(Some(0)),
            0,
            10_000,
        );
        let prealarm = self.seconds(
            &key("held_open_prealarm_s"),
            raw.held_open_prealarm_s.or(Some(20.0)),
            1.0,
            3600.0,
        );
        let alarm = self.seconds(
            &key("held_open_alarm_s"),
            raw.held_open_alarm_s.or(Some(30.0)),
            1.0,
            3600.0,
        );
        if let (Some(prealarm), Some(alarm)) = (prealarm, alarm)
            && prealarm >= alarm
        {
            self.problem(
                &key("held_open_prealarm_s"),
                "must be shorter than held_open_alarm_s",
            );
        }
        let debounce = self.millis(&key("debounce_ms"), raw.debounce_ms.or(Some(30)), 1, 1000);
        let optional_pin =
            |checker: &mut Self, field: &str, value: Option<i64>| -> Option<Option<u8>> {
                match value {
                    Some(pin) => checker.pin(&key(field), pin).map(Some),
                    None => Some(None),
                }
            };
        let contact_pin = optional_pin(self, "contact_pin", raw.contact_pin);
        let rex_pin = optional_pin(self, "rex_pin", raw.rex_pin);
        let tamper_pin = optional_pin(self, "tamper_pin", raw.tamper_pin);
        let passage_pin = optional_pin(self, "passage_pin", raw.passage_pin);
        let green_led_pin = optional_pin(self, "green_led_pin", raw.green_led_pin);
        let red_led_pin = optional_pin(self, "red_led_pin", raw.red_led_pin);
        let buzzer_pin = optional_pin(self, "buzzer_pin", raw.buzzer_pin);
        let contact_active = self.level(
            &key("contact_active"),
            raw.contact_active.as_deref().or(Some("high")),
        );
        let rex_active = self.level(
            &key("rex_active"),
            raw.rex_active.as_deref().or(Some("low")),
        );
        let tamper_active = self.level(
            &key("tamper_active"),
            raw.tamper_active.as_deref().or(Some("high")),
        );
        let passage_active = self.level(
            &key("passage_active"),
            raw.passage_active.as_deref().or(Some("low")),
        );
        let feedback_active = self.level(
            &key("feedback_active"),
            raw.feedback_active.as_deref().or(Some("high")),
        );
        let grant_window = self.seconds(
            &key("grant_window_s"),
            raw.grant_window_s.or(Some(10.0)),
            1.0,
            300.0,
        );
        if mode == Some(DoorMode::Turnstile) && raw.passage_pin.is_none() {
            self.problem(
                &key("passage_pin"),
                "a turnstile needs a passage input to count passages",
            );
        }
        if let Some(other) = &raw.interlock_with {
            let partner = all.get(other);
            let is_turnstile = |door: &RawDoor| door.mode.as_deref() == Some("turnstile");
            if other == name {
                self.problem(
                    &key("interlock_with"),
                    "a door cannot be interlocked with itself",
                );
            } else if partner.is_none() {
                self.problem(&key("interlock_with"), format!("no door named \"{other}\""));
            } else if is_turnstile(&raw) || partner.is_some_and(is_turnstile) {
                self.problem(&key("interlock_with"), "turnstiles cannot be interlocked");
            } else if raw.contact_pin.is_none() {
                self.problem(
                    &key("interlock_with"),
                    "an interlock needs this door's contact_pin",
                );
            } else if partner.is_some_and(|door| door.contact_pin.is_none()) {
                let reason = format!("the door \"{other}\" needs a contact_pin for an interlock");
                self.problem(&key("interlock_with"), reason);
            }
        }
        Some(DoorSettings {
            mode: mode?,
            lock_pin: lock_pin?,
            lock_active: lock_active?,
            fail_mode: fail_mode?,
            unlock: unlock?,
            relock_delay: relock_delay?,
            held_open_prealarm: prealarm?,
            held_open_alarm: alarm?,
            debounce: debounce?,
            contact_pin: contact_pin?,
            contact_active: contact_active?,
            rex_pin: rex_pin?,
            rex_active: rex_active?,
            tamper_pin: tamper_pin?,
            tamper_active: tamper_active?,
            passage_pin: passage_pin?,
            passage_active: passage_active?,
            green_led_pin: green_led_pin?,
            red_led_pin: red_led_pin?,
            buzzer_pin: buzzer_pin?,
            feedback_active: feedback_active?,
            grant_window: grant_window?,
            interlock_with: raw.interlock_with,
            lockdown_blocks_rex: raw.lockdown_blocks_rex.unwrap_or(true),
        })
    }

    /// A GPIO pin drives or reads one thing only.
    fn pins_used_once(
        &mut self,
        doors: &BTreeMap<String, DoorSettings>,
        fire: Option<&FireSettings>,
        panel: Option<&palmgate_panel::config::PanelSettings>,
    ) {
        let mut users: Vec<(u8, String)> = Vec::new();
        if let Some(fire) = fire {
            users.push((fire.pin, "fire.pin".to_string()));
        }
        for (name, door) in doors {
            let pins = [
                ("lock_pin", Some(door.lock_pin)),
                ("contact_pin", door.contact_pin),
                ("rex_pin", door.rex_pin),
                ("tamper_pin", door.tamper_pin),
                ("passage_pin", door.passage_pin),
                ("green_led_pin", door.green_led_pin),
                ("red_led_pin", door.red_led_pin),
                ("buzzer_pin", door.buzzer_pin),
            ];
            for (field, pin) in pins {
                if let Some(pin) = pin {
                    users.push((pin, format!("door.{name}.{field}")));
                }
            }
        }
        // Reader mode's pins share the GPIO with the doors (within [panel], palmgate-panel has
        // checked them already).
        if let Some(panel) = panel {
            if let palmgate_panel::config::PanelProtocol::Wiegand(wiegand) = &panel.protocol {
                users.push((wiegand.d0_pin, "panel.wiegand.d0_pin".to_string()));
                users.push((wiegand.d1_pin, "panel.wiegand.d1_pin".to_string()));
            }
            if let Some(feedback) = &panel.feedback {
                users.push((
                    feedback.green_led_pin,
                    "panel.feedback.green_led_pin".to_string(),
                ));
                users.push((
                    feedback.red_led_pin,
                    "panel.feedback.red_led_pin".to_string(),
                ));
                users.push((feedback.buzzer_pin, "panel.feedback.buzzer_pin".to_string()));
            }
        }
        let mut first_user: HashMap<u8, String> = HashMap::new();
        for (pin, key) in users {
            match first_user.get(&pin) {
                Some(first) => {
                    let reason = format!("GPIO {pin} is already used by {first}");
                    self.problem(&key, reason);
                }
                None => {
                    first_user.insert(pin, key);
                }
            }
        }
    }

    fn mqtt(&mut self, raw: super::raw::RawMqtt, gate_id: &str) -> Option<MqttSettings> {
        let url = self.required("mqtt.url", raw.url)?;
        if !self.bounded_text("mqtt.url", &url, MAX_URL_CHARS) {
            return None;
        }
        let parsed = parse_mqtt_url(&url);
        let (scheme, host, port) = match parsed {
            Ok(parts) => parts,
            Err(reason) => {
                self.problem(
                    "mqtt.url",
                    format!("\"{url}\" is not a broker URL: {reason}"),
                );
                return None;
            }
        };
        let file =
            |checker: &mut Self, key: &str, value: Option<String>| -> Option<Option<PathBuf>> {
                match value {
                    Some(path) => checker
                        .existing_file(key, &path, MAX_KEY_FILE_BYTES)
                        .map(Some),
                    None => Some(None),
                }
            };
        let ca_file = file(self, "mqtt.ca_file", raw.ca_file);
        let cert_file = file(self, "mqtt.cert_file", raw.cert_file.clone());
        let key_file = file(self, "mqtt.key_file", raw.key_file.clone());
        if scheme == MqttScheme::Mqtts && ca_file == Some(None) {
            self.problem(
                "mqtt.ca_file",
                "mqtts:// needs the CA certificate that signs the broker's certificate",
            );
        }
        if raw.cert_file.is_some() != raw.key_file.is_some() {
            let missing = if raw.cert_file.is_some() {
                "mqtt.key_file"
            } else {
                "mqtt.cert_file"
            };
            self.problem(
                missing,
                "a client certificate needs both cert_file and key_file",
            );
        }
        if scheme == MqttScheme::Mqtt && raw.cert_file.is_some() {
            self.problem("mqtt.cert_file", "client certificates need an mqtts:// URL");
        }
        if raw.password.is_some() && raw.username.is_none() {
            self.problem("mqtt.username", "a password needs a username");
        }
        let mut texts_ok = true;
        if let Some(username) = &raw.username {
            texts_ok &= self.bounded_text("mqtt.username", username, MAX_NAME_CHARS);
        }
        if let Some(password) = &raw.password {
            texts_ok &= self.bounded_text("mqtt.password", password, MAX_PASSWORD_CHARS);
        }
        let topic_prefix = raw.topic_prefix.unwrap_or_default();
        if !self.bounded_text("mqtt.topic_prefix", &topic_prefix, MAX_NAME_CHARS) {
            texts_ok = false;
        } else if let Err(reason) = check_topic_prefix(&topic_prefix) {
            self.problem("mqtt.topic_prefix", format!("\"{topic_prefix}\" {reason}"));
        }
        let discovery_prefix = raw.discovery_prefix.unwrap_or_default();
        if !self.bounded_text("mqtt.discovery_prefix", &discovery_prefix, MAX_NAME_CHARS) {
            texts_ok = false;
        } else if let Err(reason) = check_topic_prefix(&discovery_prefix) {
            self.problem(
                "mqtt.discovery_prefix",
                format!("\"{discovery_prefix}\" {reason}"),
            );
        }
        let client_id = raw
            .client_id
            .unwrap_or_else(|| format!("palmgate-{gate_id}"));
        if client_id.is_empty() || client_id.chars().count() > 128 {
            self.problem("mqtt.client_id", "must be 1 to 128 characters");
        }
        let keep_alive = self
            .int_range("mqtt.keep_alive_s", raw.keep_alive_s, 5, 3600)
            .map(Duration::from_secs);
        let operator_keys =
            self.key_files("mqtt.operator_keys", &raw.operator_keys.unwrap_or_default());
        let command_max_age = self
            .int_range("mqtt.command_max_age_s", raw.command_max_age_s, 5, 3600)
            .map(Duration::from_secs);
        if !texts_ok {
            return None;
        }
        Some(MqttSettings {
            url,
            scheme,
            host,
            port,
            client_id,
            ca_file: ca_file?,
            cert_file: cert_file?,
            key_file: key_file?,
            username: raw.username,
            password: raw.password.map(Secret::new),
            topic_prefix,
            keep_alive: keep_alive?,
            operator_keys: operator_keys?,
            command_max_age: command_max_age?,
            discovery: raw.discovery.unwrap_or(true),
            discovery_prefix,
        })
    }

    fn storage(&mut self, raw: super::raw::RawStorage) -> Option<StorageSettings> {
        let state_dir = self
            .required("storage.state_dir", raw.state_dir)
            .and_then(|dir| self.path("storage.state_dir", &dir));
        let device_key_file = match (raw.device_key_file, &state_dir) {
            (Some(file), _) => self.path("storage.device_key_file", &file),
            (None, Some(dir)) => Some(dir.join("device.key")),
            (None, None) => None,
        }
        .and_then(|file| self.optional_file("storage.device_key_file", file, MAX_KEY_FILE_BYTES));
        let outbox_max_events = self.int_range(
            "storage.outbox_max_events",
            raw.outbox_max_events,
            100,
            100_000_000,
        );
        let outbox_alarm_percent = self
            .int_range(
                "storage.outbox_alarm_percent",
                raw.outbox_alarm_percent,
                50,
                99,
            )
            .and_then(|percent| u8::try_from(percent).ok());
        Some(StorageSettings {
            state_dir: state_dir?,
            device_key_file: device_key_file?,
            outbox_max_events: outbox_max_events?,
            outbox_alarm_percent: outbox_alarm_percent?,
        })
    }

    fn logging(&mut self, raw: super::raw::RawLogging) -> Option<LoggingSettings> {
        let level = self.choice(
            "logging.level",
            raw.level.as_deref(),
            &[
                ("trace", LogLevel::Trace),
                ("debug", LogLevel::Debug),
                ("info", LogLevel::Info),
                ("warn", LogLevel::Warn),
                ("error", LogLevel::Error),
            ],
        );
        let format = self.choice(
            "logging.format",
            raw.format.as_deref(),
            &[
                ("auto", LogFormat::Auto),
                ("human", LogFormat::Human),
                ("journald", LogFormat::Journald),
            ],
        );
        Some(LoggingSettings {
            level: level?,
            format: format?,
        })
    }
}

/// `mqtt://host[:port]` or `mqtts://host[:port]`, nothing else.
fn parse_mqtt_url(url: &str) -> Result<(MqttScheme, String, u16), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")?;
    let (scheme, default_port) = match scheme {
        "mqtt" => (MqttScheme::Mqtt, 1883),
        "mqtts" => (MqttScheme::Mqtts, 8883),
        other => {
            return Err(format!(
                "unsupported scheme \"{other}\" (use mqtt or mqtts)"
            ));
        }
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains(['/', '?', '#', '@']) {
        return Err("only a host and a port may follow the scheme".to_string());
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or("unclosed [ in IPv6 address")?;
        let port = after.strip_prefix(':').map(str::to_string);
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port.to_string())),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("missing host".to_string());
    }
    let port = match port {
        Some(port) => match port.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("invalid port \"{port}\"")),
        },
        None => default_port,
    };
    Ok((scheme, host, port))
}

fn check_topic_prefix(prefix: &str) -> Result<(), &'static str> {
    if prefix.is_empty() {
        return Err("is empty");
    }
    if prefix.contains(['+', '#', '\0']) {
        return Err("must not contain MQTT wildcards (+, #) or NUL");
    }
    if prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
        return Err("must not have empty topic levels (leading, trailing or doubled '/')");
    }
    Ok(())
}
