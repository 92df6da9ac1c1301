//! The real devices: the PC/SC reader, the palm sensor on its serial port, the MQTT link, and
//! [`Devices::production`], which builds them (and the configured doors) from the settings.

use std::sync::Arc;

use palmgate_card::host::TransportError;
use palmgate_card::host::pcsc::{CardMonitor, PcscTransport};
use palmgate_sensor::device::{self, DeviceCommand, DeviceConfig, SensorEvent};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{CardPresence, CardReader, Devices, EventLink, SensorLink, StopSignal};
use crate::config::{CaptureMode, Settings};
use crate::doors::Doors;
use crate::error_chain;
use crate::gate::GateError;
use crate::gate::card_worker::CardWorkerError;
use crate::mqtt::{Link, LinkError, LinkHandles, LinkOptions};
use crate::outbox::Outbox;

/// The PC/SC readers whose name contains a pattern.
#[derive(Debug, Clone)]
pub struct PcscReader {
    pattern: String,
}

impl PcscReader {
    /// Readers matching `pattern` (`card.reader`).
    pub fn new(pattern: &str) -> Self {
        Self {
            pattern: pattern.to_string(),
        }
    }
}

impl CardReader for PcscReader {
    type Transport = PcscTransport;

    fn watch(&mut self) -> Result<CardPresence, CardWorkerError> {
        let (monitor, events) = CardMonitor::start_watching(&self.pattern).map_err(|source| {
            CardWorkerError::Monitor {
                pattern: self.pattern.clone(),
                source,
            }
        })?;
        Ok(CardPresence {
            events,
            ended: Box::new(move || match monitor.stop() {
                Ok(()) => "reader watch ended".to_string(),
                Err(error) => format!("reader watch failed: {}", error_chain(&error)),
            }),
        })
    }

    fn connect(&mut self) -> Result<PcscTransport, TransportError> {
        PcscTransport::connect(&self.pattern)
    }
}

/// The sensor on a serial port (palmgate-sensor's device task).
#[derive(Debug, Clone)]
pub struct SerialSensor(pub DeviceConfig);

impl SerialSensor {
    /// The port and timings of `[sensor]`; captures from the start in `continuous` mode.
    pub fn from_settings(settings: &Settings) -> Self {
        let sensor = &settings.sensor;
        let mut config = DeviceConfig::new(&sensor.port);
        config.baud = sensor.baud;
        config.max_frame_bytes = usize::try_from(sensor.max_frame_bytes).unwrap_or(usize::MAX);
        config.request_timeout = sensor.request_timeout;
        config.reconnect_backoff.max = sensor.reconnect_max;
        config.capture = match sensor.capture {
            CaptureMode::Continuous => Some(crate::gate::CAPTURE),
            CaptureMode::OnCard => None,
        };
        Self(config)
    }
}

impl SensorLink for SerialSensor {
    fn spawn(
        self: Box<Self>,
        events: mpsc::Sender<SensorEvent>,
        commands: mpsc::Receiver<DeviceCommand>,
        stop: StopSignal,
    ) -> JoinHandle<()> {
        tokio::spawn(device::run(self.0, events, commands, stop.wait()))
    }
}

/// The MQTT link of `[mqtt]`.
#[derive(Debug)]
pub struct MqttLink(pub LinkOptions);

impl EventLink for MqttLink {
    fn start(
        self: Box<Self>,
        outbox: Arc<Outbox>,
        stop: StopSignal,
    ) -> Result<(LinkHandles, JoinHandle<Result<(), LinkError>>), LinkError> {
        let (link, handles) = Link::new(self.0, outbox)?;
        Ok((handles, tokio::spawn(link.run(stop.wait()))))
    }
}

impl Devices<PcscReader> {
    /// The real devices of `settings`: PC/SC reader, serial sensor, the configured GPIO backend,
    /// MQTT. Touches no pin and opens no port yet.
    ///
    /// # Errors
    /// The door configuration or the GPIO backend is unusable.
    pub fn production(settings: &Settings) -> Result<Self, GateError> {
        Ok(Self {
            card_reader: PcscReader::new(&settings.card.reader),
            sensor: Box::new(SerialSensor::from_settings(settings)),
            doors: Doors::build(settings)?,
            link: Box::new(MqttLink(LinkOptions::from_settings(settings))),
            safe_on_panic: true,
        })
    }
}
