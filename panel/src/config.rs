//! The `[panel]` configuration section: its raw form (what an installer writes, every key
//! optional so each layer can be checked on its own, unknown keys refused) and its validation
//! into [`PanelSettings`], reporting every problem as dotted key + reason. The daemon's
//! configuration loader embeds [`RawPanel`] as `[panel]` and turns [`Problem`]s into its own
//! `SOURCE: KEY: reason` lines; `palmgate-panel` reads a file with only this section.
//!
//! ```toml
//! [panel]
//! protocol = "osdp"                           # or "wiegand"
//! credential_map = "/etc/palmgate/credentials.toml"
//! denied = { format = "h10301", facility = 12, number = 0 }   # optional: sent on a denial
//! duress = { format = "h10301", facility = 12, number = 9999 } # optional: duress without a personal duress number
//! drive_door = false                          # the gate's own relays stay off in panel mode
//! [panel.osdp]
//! device = "/dev/ttyUSB0"
//! baud = 9600
//! address = 0
//! scbk_file = "/var/lib/palmgate/osdp-scbk"
//! install_mode = false
//! require_secure = true
//! [panel.wiegand]
//! d0_pin = 23
//! d1_pin = 24
//! active = "low"
//! pulse_us = 50
//! interval_us = 2000
//! [panel.feedback]                            # reader LED/buzzer driven by the panel (OSDP)
//! green_led_pin = 20
//! red_led_pin = 21
//! buzzer_pin = 26
//! active = "high"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use palmgate_door::Level;
use serde::{Deserialize, Serialize};

use crate::credential::{Credential, WiegandFormat};
use crate::osdp::command::comset::BAUD_RATES;
use crate::wiegand::WiegandTiming;

/// Highest BCM GPIO number on a Raspberry Pi header.
const MAX_BCM_PIN: u8 = 27;

/// `[panel]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPanel {
    /// `osdp` or `wiegand`.
    pub protocol: Option<String>,
    /// The signed credential map.
    pub credential_map: Option<String>,
    /// Sent to the panel on a denial (absent: nothing is sent).
    pub denied: Option<RawCredential>,
    /// Sent on a duress match when the card's entry has no duress number.
    pub duress: Option<RawCredential>,
    /// Keep driving the gate's own door relays as well.
    pub drive_door: Option<bool>,
    /// `[panel.osdp]`.
    pub osdp: Option<RawOsdp>,
    /// `[panel.wiegand]`.
    pub wiegand: Option<RawWiegand>,
    /// `[panel.feedback]`.
    pub feedback: Option<RawFeedback>,
}

/// A credential number as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    /// `h10301`, `h10306` or `h10304`.
    pub format: Option<String>,
    /// Facility code.
    pub facility: Option<u32>,
    /// Card number.
    pub number: Option<u32>,
}

/// `[panel.osdp]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOsdp {
    /// Serial device of the RS-485 adapter.
    pub device: Option<String>,
    /// Baud rate.
    pub baud: Option<u32>,
    /// Bus address, 0–126.
    pub address: Option<u8>,
    /// Where the installed SCBK is kept.
    pub scbk_file: Option<String>,
    /// Accept SCBK-D until a key is installed.
    pub install_mode: Option<bool>,
    /// Refuse everything but identification outside a secure channel.
    pub require_secure: Option<bool>,
    /// Vendor code reported by `osdp_PDID` (6 hex digits).
    pub vendor: Option<String>,
    /// Serial number reported by `osdp_PDID`.
    pub serial: Option<u32>,
}

/// `[panel.wiegand]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWiegand {
    /// BCM pin of D0.
    pub d0_pin: Option<u8>,
    /// BCM pin of D1.
    pub d1_pin: Option<u8>,
    /// Level of a pulse at the GPIO.
    pub active: Option<String>,
    /// Pulse width, µs.
    pub pulse_us: Option<u64>,
    /// Bit interval (start to start), µs.
    pub interval_us: Option<u64>,
    /// Silence between frames, ms.
    pub frame_gap_ms: Option<u64>,
}

/// `[panel.feedback]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeedback {
    /// Green LED pin.
    pub green_led_pin: Option<u8>,
    /// Red LED pin.
    pub red_led_pin: Option<u8>,
    /// Buzzer pin.
    pub buzzer_pin: Option<u8>,
    /// Level that lights / sounds.
    pub active: Option<String>,
}

/// The validated `[panel]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PanelSettings {
    /// The wire to the panel.
    pub protocol: PanelProtocol,
    /// The signed credential map.
    pub credential_map: PathBuf,
    /// Sent on a denial.
    #[serde(serialize_with = "credential_text")]
    pub denied: Option<Credential>,
    /// Gate-wide duress credential.
    #[serde(serialize_with = "credential_text")]
    pub duress: Option<Credential>,
    /// Keep driving the gate's own relays.
    pub drive_door: bool,
    /// The reader's feedback outputs, when the panel drives them.
    pub feedback: Option<FeedbackSettings>,
}

fn credential_text<S: serde::Serializer>(
    credential: &Option<Credential>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match credential {
        Some(credential) => serializer.serialize_some(&credential.to_string()),
        None => serializer.serialize_none(),
    }
}

/// The wire to the panel.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "protocol", rename_all = "lowercase")]
pub enum PanelProtocol {
    /// OSDP over RS-485.
    Osdp(OsdpSettings),
    /// Wiegand D0/D1.
    Wiegand(WiegandSettings),
}

/// `[panel.osdp]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OsdpSettings {
    /// Serial device.
    pub device: String,
    /// Baud rate.
    pub baud: u32,
    /// Bus address.
    pub address: u8,
    /// Key file.
    pub scbk_file: PathBuf,
    /// Accept SCBK-D until a key is installed.
    pub install_mode: bool,
    /// Secure channel required for everything but identification.
    pub require_secure: bool,
    /// Vendor code.
    pub vendor: [u8; 3],
    /// Serial number.
    pub serial: u32,
}

/// `[panel.wiegand]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WiegandSettings {
    /// D0 pin.
    pub d0_pin: u8,
    /// D1 pin.
    pub d1_pin: u8,
    /// Pulse level.
    #[serde(serialize_with = "level_text")]
    pub active: Level,
    /// Pulse width.
    pub pulse: Duration,
    /// Bit interval.
    pub interval: Duration,
    /// Silence between frames.
    pub frame_gap: Duration,
}

impl WiegandSettings {
    /// The emitter's timing.
    pub fn timing(&self) -> WiegandTiming {
        WiegandTiming {
            pulse: self.pulse,
            interval: self.interval,
            frame_gap: self.frame_gap,
        }
    }
}

/// `[panel.feedback]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeedbackSettings {
    /// Green LED pin.
    pub green_led_pin: u8,
    /// Red LED pin.
    pub red_led_pin: u8,
    /// Buzzer pin.
    pub buzzer_pin: u8,
    /// Level that lights / sounds.
    #[serde(serialize_with = "level_text")]
    pub active: Level,
}

fn level_text<S: serde::Serializer>(level: &Level, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(match level {
        Level::Low => "low",
        Level::High => "high",
    })
}

/// One problem: dotted key (`panel.osdp.address`) and reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a panel configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PanelConfigError {
    /// The file cannot be read.
    #[error("{path}: cannot read")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Syntax, unknown keys, types or values: one line per problem.
    #[error("{}", .problems.iter().map(|p| format!("{}: {p}", .path.display())).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The problems.
        problems: Vec<Problem>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PanelFile {
    panel: Option<RawPanel>,
}

/// Reads a file whose only section is `[panel]` (the `palmgate-panel` tool's configuration).
pub fn load_file(path: &Path) -> Result<PanelSettings, PanelConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| PanelConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let invalid = |problems| PanelConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let file: PanelFile = toml::from_str(&text).map_err(|error| {
        invalid(vec![Problem {
            key: "panel".to_string(),
            reason: error.message().to_string(),
        }])
    })?;
    let raw = file.panel.ok_or_else(|| {
        invalid(vec![Problem {
            key: "panel".to_string(),
            reason: "missing: the file has no [panel] section".to_string(),
        }])
    })?;
    validate(&raw).map_err(invalid)
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn problem(&mut self, key: &str, reason: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            reason: reason.into(),
        });
    }

    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.problem(key, "missing: this key has no default and must be set");
        }
        value
    }

    fn pin(&mut self, key: &str, value: Option<u8>) -> Option<u8> {
        let pin = self.required(key, value)?;
        if pin > MAX_BCM_PIN {
            self.problem(
                key,
                format!("GPIO {pin} is not on the header (0 to {MAX_BCM_PIN})"),
            );
            return None;
        }
        Some(pin)
    }

    fn level(&mut self, key: &str, value: Option<&str>, default: Level) -> Option<Level> {
        match value.map(str::trim) {
            None => Some(default),
            Some("low") => Some(Level::Low),
            Some("high") => Some(Level::High),
            Some(other) => {
                self.problem(key, format!("{other:?} is not a level (low or high)"));
                None
            }
        }
    }

    fn range(&mut self, key: &str, value: u64, min: u64, max: u64, unit: &str) -> Option<u64> {
        if (min..=max).contains(&value) {
            Some(value)
        } else {
            self.problem(
                key,
                format!("{value} {unit} is out of range ({min} to {max} {unit})"),
            );
            None
        }
    }

    fn credential(&mut self, key: &str, raw: &RawCredential) -> Option<Credential> {
        let format_key = format!("{key}.format");
        let format_text = self.required(&format_key, raw.format.as_deref());
        let facility = self.required(&format!("{key}.facility"), raw.facility);
        let number = self.required(&format!("{key}.number"), raw.number);
        let format = match format_text.map(WiegandFormat::parse) {
            Some(Some(format)) => Some(format),
            Some(None) => {
                let text = format_text.unwrap_or_default();
                self.problem(
                    &format_key,
                    format!("unknown format {text:?} (one of h10301, h10306, h10304)"),
                );
                None
            }
            None => None,
        };
        let (format, facility, number) = (format?, facility?, number?);
        match Credential::new(format, facility, number) {
            Ok(credential) => Some(credential),
            Err(error) => {
                let field = match error {
                    crate::credential::CredentialError::FacilityTooLarge { .. } => "facility",
                    _ => "number",
                };
                self.problem(&format!("{key}.{field}"), error.to_string());
                None
            }
        }
    }

    fn osdp(&mut self, raw: Option<&RawOsdp>) -> Option<OsdpSettings> {
        let Some(raw) = raw else {
            self.problem(
                "panel.osdp",
                "missing: protocol \"osdp\" needs a [panel.osdp] section",
            );
            return None;
        };
        let device = self.required("panel.osdp.device", raw.device.clone());
        let baud = raw.baud.unwrap_or(9600);
        if !BAUD_RATES.contains(&baud) {
            self.problem(
                "panel.osdp.baud",
                format!("{baud} is not an OSDP baud rate ({BAUD_RATES:?})"),
            );
        }
        let address = raw.address.unwrap_or(0);
        if address > 126 {
            self.problem(
                "panel.osdp.address",
                format!("{address} is out of range (0 to 126; 127 is the broadcast address)"),
            );
        }
        let scbk_file = self.required("panel.osdp.scbk_file", raw.scbk_file.clone());
        let vendor_text = raw.vendor.clone().unwrap_or_else(|| "000000".to_string());
        let mut vendor = [0u8; 3];
        if hex::decode_to_slice(vendor_text.trim(), &mut vendor).is_err() {
            self.problem(
                "panel.osdp.vendor",
                format!("{vendor_text:?} is not 6 hex digits (an IEEE OUI)"),
            );
        }
        Some(OsdpSettings {
            device: device?,
            baud,
            address,
            scbk_file: PathBuf::from(scbk_file?),
            install_mode: raw.install_mode.unwrap_or(false),
            require_secure: raw.require_secure.unwrap_or(true),
            vendor,
            serial: raw.serial.unwrap_or(0),
        })
    }

    fn wiegand(&mut self, raw: Option<&RawWiegand>) -> Option<WiegandSettings> {
        let Some(raw) = raw else {
            self.problem(
                "panel.wiegand",
                "missing: protocol \"wiegand\" needs a [panel.wiegand] section",
            );
            return None;
        };
        let defaults = WiegandTiming::default();
        let d0 = self.pin("panel.wiegand.d0_pin", raw.d0_pin);
        let d1 = self.pin("panel.wiegand.d1_pin", raw.d1_pin);
        if d0.is_some() && d0 == d1 {
            self.problem("panel.wiegand.d1_pin", "is the same pin as d0_pin");
        }
        let active = self.level("panel.wiegand.active", raw.active.as_deref(), Level::Low);
        let pulse = raw.pulse_us.unwrap_or(defaults.pulse.as_micros() as u64);
        let pulse = self.range("panel.wiegand.pulse_us", pulse, 20, 500, "µs");
        let interval = raw
            .interval_us
            .unwrap_or(defaults.interval.as_micros() as u64);
        let interval = self.range("panel.wiegand.interval_us", interval, 200, 20_000, "µs");
        if let (Some(pulse), Some(interval)) = (pulse, interval)
            && interval < 2 * pulse
        {
            self.problem(
                    "panel.wiegand.interval_us",
                    format!("{interval} µs leaves no gap after a {pulse} µs pulse (at least twice the pulse)"),
                );
        }
        let gap = raw
            .frame_gap_ms
            .unwrap_or(defaults.frame_gap.as_millis() as u64);
        let gap = self.range("panel.wiegand.frame_gap_ms", gap, 20, 1000, "ms");
        Some(WiegandSettings {
            d0_pin: d0?,
            d1_pin: d1?,
            active: active?,
            pulse: Duration::from_micros(pulse?),
            interval: Duration::from_micros(interval?),
            frame_gap: Duration::from_millis(gap?),
        })
    }

    fn feedback(
        &mut self,
        raw: &RawFeedback,
        wiegand: Option<&RawWiegand>,
    ) -> Option<FeedbackSettings> {
        let green = self.pin("panel.feedback.green_led_pin", raw.green_led_pin);
        let red = self.pin("panel.feedback.red_led_pin", raw.red_led_pin);
        let buzzer = self.pin("panel.feedback.buzzer_pin", raw.buzzer_pin);
        let active = self.level("panel.feedback.active", raw.active.as_deref(), Level::High);
        let mut used: Vec<(u8, &str)> = Vec::new();
        if let Some(wiegand) = wiegand {
            used.extend(wiegand.d0_pin.map(|pin| (pin, "panel.wiegand.d0_pin")));
            used.extend(wiegand.d1_pin.map(|pin| (pin, "panel.wiegand.d1_pin")));
        }
        for (key, pin) in [
            ("panel.feedback.green_led_pin", green),
            ("panel.feedback.red_led_pin", red),
            ("panel.feedback.buzzer_pin", buzzer),
        ] {
            let Some(pin) = pin else { continue };
            if let Some((_, other)) = used.iter().find(|(used_pin, _)| *used_pin == pin) {
                self.problem(key, format!("GPIO {pin} is already used by {other}"));
            }
            used.push((pin, key));
        }
        Some(FeedbackSettings {
            green_led_pin: green?,
            red_led_pin: red?,
            buzzer_pin: buzzer?,
            active: active?,
        })
    }
}

/// Validates a merged `[panel]`; every problem is reported.
pub fn validate(raw: &RawPanel) -> Result<PanelSettings, Vec<Problem>> {
    let mut check = Checker {
        problems: Vec::new(),
    };
    let protocol_text = check.required("panel.protocol", raw.protocol.as_deref());
    let protocol = match protocol_text.map(str::trim) {
        Some("osdp") => check.osdp(raw.osdp.as_ref()).map(PanelProtocol::Osdp),
        Some("wiegand") => check
            .wiegand(raw.wiegand.as_ref())
            .map(PanelProtocol::Wiegand),
        Some(other) => {
            check.problem(
                "panel.protocol",
                format!("{other:?} is not a panel protocol (osdp or wiegand)"),
            );
            None
        }
        None => None,
    };
    let credential_map = check.required("panel.credential_map", raw.credential_map.clone());
    let denied = raw
        .denied
        .as_ref()
        .map(|denied| check.credential("panel.denied", denied));
    let duress = raw
        .duress
        .as_ref()
        .map(|duress| check.credential("panel.duress", duress));
    let wiegand = match protocol_text.map(str::trim) {
        Some("wiegand") => raw.wiegand.as_ref(),
        _ => None,
    };
    let feedback = raw
        .feedback
        .as_ref()
        .map(|feedback| check.feedback(feedback, wiegand));
    if let (Some(Some(denied)), Some(Some(duress))) = (&denied, &duress)
        && denied == duress
    {
        check.problem(
            "panel.duress",
            "equals panel.denied: the panel could not tell duress from a denial",
        );
    }
    match (protocol, credential_map) {
        (Some(protocol), Some(credential_map)) if check.problems.is_empty() => Ok(PanelSettings {
            protocol,
            credential_map: PathBuf::from(credential_map),
            denied: denied.flatten(),
            duress: duress.flatten(),
            drive_door: raw.drive_door.unwrap_or(false),
            feedback: feedback.flatten(),
        }),
        _ => Err(check.problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PanelSettings, Vec<String>> {
        let file: PanelFile = toml::from_str(text).map_err(|e| vec![e.message().to_string()])?;
        validate(&file.panel.unwrap_or_default())
            .map_err(|problems| problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn an_osdp_panel_with_defaults() {
        let settings = parse(
            r#"
[panel]
protocol = "osdp"
credential_map = "/etc/palmgate/credentials.toml"
duress = { format = "h10301", facility = 12, number = 9999 }
[panel.osdp]
device = "/dev/ttyUSB0"
scbk_file = "/var/lib/palmgate/osdp-scbk"
"#,
        )
        .expect("valid");
        let PanelProtocol::Osdp(osdp) = &settings.protocol else {
            panic!("osdp expected");
        };
        assert_eq!(
            (
                osdp.baud,
                osdp.address,
                osdp.require_secure,
                osdp.install_mode
            ),
            (9600, 0, true, false)
        );
        assert_eq!(settings.duress.map(|c| c.number()), Some(9999));
        assert!(settings.denied.is_none());
        assert!(!settings.drive_door);
    }

    #[test]
    fn wiegand_defaults_are_within_the_usual_ranges() {
        let settings = parse(
            "[panel]\nprotocol = \"wiegand\"\ncredential_map = \"m.toml\"\n[panel.wiegand]\nd0_pin = 23\nd1_pin = 24\n",
        )
        .expect("valid");
        let PanelProtocol::Wiegand(wiegand) = &settings.protocol else {
            panic!("wiegand expected");
        };
        assert!((20..=100).contains(&wiegand.pulse.as_micros()));
        assert!((200..=20_000).contains(&wiegand.interval.as_micros()));
        assert_eq!(wiegand.active, Level::Low);
    }

    #[test]
    fn every_problem_is_reported_with_its_key() {
        let problems = parse(
            r#"
[panel]
protocol = "wiegand"
denied = { format = "h10301", facility = 256, number = 1 }
duress = { format = "h26", facility = 1, number = 1 }
[panel.wiegand]
d0_pin = 23
d1_pin = 23
pulse_us = 5
interval_us = 30000
[panel.feedback]
green_led_pin = 24
red_led_pin = 23
buzzer_pin = 40
"#,
        )
        .expect_err("invalid");
        let expected = [
            "panel.wiegand.d1_pin: is the same pin as d0_pin",
            "panel.wiegand.pulse_us: 5 µs is out of range (20 to 500 µs)",
            "panel.wiegand.interval_us: 30000 µs is out of range (200 to 20000 µs)",
            "panel.credential_map: missing: this key has no default and must be set",
            "panel.denied.facility: facility code 256 does not fit h10301 (26 bits) (at most 255)",
            "panel.duress.format: unknown format \"h26\" (one of h10301, h10306, h10304)",
            "panel.feedback.buzzer_pin: GPIO 40 is not on the header (0 to 27)",
            "panel.feedback.red_led_pin: GPIO 23 is already used by panel.wiegand.d0_pin",
        ];
        for line in expected {
            assert!(
                problems.iter().any(|p| p == line),
                "missing {line:?} in {problems:#?}"
            );
        }
    }

    #[test]
    fn unknown_keys_and_protocols_are_refused() {
        assert!(parse("[panel]\nprotocl = \"osdp\"\n").is_err());
        let problems =
            parse("[panel]\nprotocol = \"rs232\"\ncredential_map = \"m\"\n").expect_err("bad");
        assert_eq!(
            problems,
            vec!["panel.protocol: \"rs232\" is not a panel protocol (osdp or wiegand)".to_string()]
        );
        let problems = parse("[panel]\nprotocol = \"osdp\"\ncredential_map = \"m\"\n[panel.osdp]\ndevice = \"/dev/x\"\nscbk_file = \"k\"\naddress = 127\nbaud = 1200\n").expect_err("bad");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn load_file_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("panel.toml");
        std::fs::write(
            &path,
            "[panel]\nprotocol = \"osdp\"\ncredential_map = \"m\"\n",
        )
        .expect("write");
        let error = load_file(&path).expect_err("no [panel.osdp]");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("{}: panel.osdp: missing", path.display())),
            "{text}"
        );
    }
}
