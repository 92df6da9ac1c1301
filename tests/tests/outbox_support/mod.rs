//! Shared set-up of the outbox system tests that run the real `palmgate run`
//! (`fault_matrix`, `outbox_full_disk`): a site (issuer, operator key, sensor simulator), the
//! door played through the simulated GPIO, and what a subscriber makes of the events.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use palmgate::mqtt::OperatorSigner;
use palmgate::outbox::LossReport;
use palmgate_system_tests::gate::{ChildGuard, Palms, palmgate, sensor_simulator, simulated_gpio};

/// The files a gate configuration names, and the running sensor simulator.
pub struct Site {
    pub issuer_pub: PathBuf,
    pub operator_pub: PathBuf,
    pub sensor_link: PathBuf,
    pub sensor: ChildGuard,
}

impl Site {
    /// Makes an issuer and an operator key in `root` and starts the sensor simulator.
    pub fn new(root: &Path) -> Self {
        let issuer = root.join("issuer");
        palmgate(&["issuer", "init", "--out", issuer.to_str().expect("utf-8")]);
        let operator = OperatorSigner::generate().expect("operator key");
        let operator_pub = root.join("operator.pub");
        std::fs::write(&operator_pub, operator.public_key_pem()).expect("operator key");
        let sensor_link = root.join("sensor");
        let sensor = sensor_simulator(&sensor_link, &Palms::new(root).captures(0, 1), 1);
        Self {
            issuer_pub: issuer.join("issuer.pub"),
            operator_pub,
            sensor_link,
            sensor,
        }
    }
}

/// Opens and closes the door (contact pin 27) `times` times through the control socket `gpio`:
/// each records `door.forced` and `door.closed`.
pub fn play_door(gpio: &Path, times: usize) {
    for _ in 0..times {
        for level in ["high", "low"] {
            assert_eq!(simulated_gpio(gpio, &format!("input 27 {level}")), "ok");
            // Longer than the contact's debounce, so each change counts.
            std::thread::sleep(Duration::from_millis(60));
        }
    }
}

/// The events in `mosquitto_sub -v` lines, by id, and the loss reports among them.
#[derive(Debug, Default)]
pub struct Delivered {
    pub events: BTreeMap<u64, serde_json::Value>,
    pub reports: Vec<LossReport>,
}

impl Delivered {
    /// Reads `lines`; panics when one id names two different events.
    pub fn from_lines(lines: &[String]) -> Self {
        let mut delivered = Self::default();
        for line in lines {
            let Some((_, payload)) = line.split_once(' ') else {
                continue;
            };
            let Ok(event) = serde_json::from_str::<serde_json::Value>(payload) else {
                continue;
            };
            let Some(id) = event.get("id").and_then(serde_json::Value::as_u64) else {
                continue;
            };
            if let Some(earlier) = delivered.events.get(&id) {
                assert_eq!(earlier, &event, "id {id} delivered for two events");
                continue;
            }
            if event["kind"] == "alarm.events_lost"
                && let Some(report) = event["detail"].as_str().and_then(LossReport::parse)
            {
                delivered.reports.push(report);
            }
            delivered.events.insert(id, event);
        }
        delivered
    }

    /// Whether `id` was delivered or named in a loss report.
    pub fn accounts_for(&self, id: u64) -> bool {
        self.events.contains_key(&id) || self.reports.iter().any(|report| report.covers(id))
    }

    /// The reported ranges.
    pub fn lost_ranges(&self) -> Vec<(u64, u64)> {
        self.reports
            .iter()
            .filter_map(|report| report.ids)
            .collect()
    }
}
