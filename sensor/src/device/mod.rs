//! The gate's side of the sensor: a task that owns the link to it.
//!
//! [`run`] opens the serial port ([`run_with`]: any link a [`Connector`] opens, e.g. an end of a
//! `tokio::io::duplex` through a [`StreamConnector`]), asks for the sensor's info (the handshake),
//! sets the illumination, starts capture, and turns what arrives into [`SensorEvent`]s: presence
//! reports, frames decoded to gray images with their arrival time, and problems. Every request has
//! a timeout; when the sensor stops answering, the link fails or disappears (USB unplug), the task
//! reports `Disconnected` and opens the link again with exponential back-off, then repeats the
//! handshake and restarts capture. It ends when the shutdown future completes or the event
//! receiver is dropped; it never panics on input.
//!
//! Protocol 1.1: after `Info` the task asks for the sensor's illumination bands (`GetBands`) and
//! reports them as [`SensorEvent::Bands`]; a 1.0 sensor answers with an error (or not at all) and
//! is reported with no bands, and everything else works as before. [`DeviceCommand::Burst`] asks
//! for a presentation burst, whose frames arrive as [`SensorEvent::BurstFrame`]s.

mod connector;
mod requests;
mod scripted;

use crate::error_chain;
use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::time::{Duration, SystemTime};

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;

pub use connector::{Connector, SerialConnector, StreamConnector, StreamPlug};
pub use requests::{Answer, InFlight, Requests};
pub use scripted::ScriptedSensor;

use crate::codec::{
    Band, BandFrame, DEFAULT_MAX_PAYLOAD, Envelope, FrameFormat, HostCodec, HostMessage,
    ProtocolError, SensorErrorCode, SensorInfo, SensorMessage,
};
use crate::image::{ImageBytes, ImageDecodeError, PalmImage, decode_image};

/// Exponential back-off between reconnection attempts. Keep `max` at or below 1 s for a replugged
/// sensor to be back within 2 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before attempt `failures + 1`, after `failures` consecutive failures (≥ 1).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(16);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        }
    }
}

/// Frames to ask for once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureRequest {
    /// Encoding the sensor should use.
    pub format: FrameFormat,
    /// Number of frames, 0 for "until stopped".
    pub frames: u16,
}

/// Settings of the device task (the daemon fills them from its configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceConfig {
    /// Serial device, e.g. `/dev/ttyACM0` or `/dev/serial/by-id/…`.
    pub path: PathBuf,
    /// Line speed (ignored by USB-CDC and pseudo-terminals, required by UARTs).
    pub baud: u32,
    /// Largest payload accepted from the sensor; longer frames are refused and skipped.
    pub max_frame_bytes: usize,
    /// How long the sensor has to answer each request.
    pub request_timeout: Duration,
    /// Delay between reconnection attempts.
    pub reconnect_backoff: Backoff,
    /// After this long without any message, the task pings the sensor.
    pub keepalive: Duration,
    /// Capture to start on every (re)connection; `None` leaves the sensor idle. If the sensor does
    /// not offer this format, the first format it offers is used.
    pub capture: Option<CaptureRequest>,
    /// Illumination level (percent) to set on every (re)connection.
    pub illumination: Option<u8>,
}

impl DeviceConfig {
    /// Defaults for a port: 921600 baud, 1 MiB frames, 1 s timeout, back-off 100 ms → 1 s, keepalive
    /// 5 s, continuous JPEG capture.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            baud: 921_600,
            max_frame_bytes: DEFAULT_MAX_PAYLOAD,
            request_timeout: Duration::from_secs(1),
            reconnect_backoff: Backoff::default(),
            keepalive: Duration::from_secs(5),
            capture: Some(CaptureRequest {
                format: FrameFormat::Jpeg,
                frames: 0,
            }),
            illumination: None,
        }
    }
}

/// Changes requested while the task runs; they are also replayed after a reconnection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeviceCommand {
    /// Start (or restart with other settings) capture.
    StartCapture(CaptureRequest),
    /// Stop capture.
    StopCapture,
    /// Set the illumination level (percent).
    SetIllumination(u8),
    /// Take one presentation burst (protocol 1.1; not replayed after a reconnection, since it is
    /// about the hand in front of the sensor now).
    Burst(BurstRequest),
}

/// A presentation burst to ask for: `rounds` times one frame per band, bands in code order
/// (ambient, NIR 850, NIR 940, visible), so that each band is seen at several moments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstRequest {
    /// Encoding the sensor should use.
    pub format: FrameFormat,
    /// The bands, as a `Bands` bitmask ([`Band::mask`]).
    pub band_mask: u8,
    /// How many times the bands are cycled through.
    pub rounds: u8,
}

impl BurstRequest {
    /// `rounds` rounds of `bands`.
    pub fn new(format: FrameFormat, bands: &[Band], rounds: u8) -> Self {
        Self {
            format,
            band_mask: Band::mask(bands),
            rounds,
        }
    }

    /// The band of each frame, in order, cut to the protocol's 32 frames.
    pub fn sequence(&self) -> Vec<Band> {
        let bands = Band::from_mask(self.band_mask);
        let mut sequence: Vec<Band> = (0..self.rounds).flat_map(|_| bands.clone()).collect();
        sequence.truncate(crate::codec::host::MAX_BURST_FRAMES);
        sequence
    }
}

/// One decoded frame of a burst.
#[derive(Debug)]
pub struct BurstFrame {
    /// The light it was taken under.
    pub band: Band,
    /// Its position in the burst, from 0.
    pub index: u8,
    /// Exposure time after the burst started, on the sensor's clock.
    pub exposed_after: Duration,
    /// The frame itself.
    pub frame: CapturedFrame,
}

/// When something was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedAt {
    /// Monotonic time, for latencies.
    pub instant: std::time::Instant,
    /// Wall-clock time, for logs and records.
    pub system: SystemTime,
}

impl ReceivedAt {
    /// Now.
    pub fn now() -> Self {
        Self {
            instant: std::time::Instant::now(),
            system: SystemTime::now(),
        }
    }
}

/// One decoded frame.
#[derive(Debug)]
pub struct CapturedFrame {
    /// The image, 8-bit gray (wiped when dropped).
    pub image: PalmImage,
    /// How it travelled.
    pub format: FrameFormat,
    /// The sensor's frame counter.
    pub frame_number: u32,
    /// Size of the encoded image on the line.
    pub encoded_bytes: usize,
    /// When its last byte was decoded from the line.
    pub received: ReceivedAt,
    /// When the image was decoded.
    pub decoded_at: std::time::Instant,
}

/// What the device task reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum SensorEvent {
    /// Handshake done (after every (re)connection).
    Connected(SensorInfo),
    /// A hand appeared or left.
    Presence {
        /// Whether a hand is in front of the sensor.
        present: bool,
        /// Distance in millimetres, when known.
        distance_mm: Option<u16>,
        /// When the report arrived.
        received: ReceivedAt,
    },
    /// A decoded frame.
    Frame(CapturedFrame),
    /// The sensor's illumination bands, after every handshake (protocol 1.1). Empty: a protocol
    /// 1.0 sensor, which has one unnamed light and no bursts.
    Bands(Vec<Band>),
    /// A decoded frame of a presentation burst.
    BurstFrame(BurstFrame),
    /// Something went wrong but the connection stays up (bad frame, sensor error, …).
    Problem(DeviceError),
    /// The connection is down (or could not be opened); the next attempt is in `retry_in`.
    Disconnected {
        /// Why.
        error: DeviceError,
        /// Delay before the next attempt.
        retry_in: Duration,
    },
}

/// What can go wrong with the sensor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The port could not be opened (absent, busy, not a tty, …).
    #[error("cannot open sensor port {path}")]
    Open {
        /// The port.
        path: PathBuf,
        /// Why.
        #[source]
        source: tokio_serial::Error,
    },
    /// Reading or writing the port failed (typically: the device went away).
    #[error("sensor port I/O failed")]
    Io(#[source] std::io::Error),
    /// The port reached end of file.
    #[error("sensor port closed")]
    Closed,
    /// Bad bytes from the sensor (skipped).
    #[error("bad data from the sensor")]
    Protocol(#[from] ProtocolError),
    /// A request got no answer in time.
    #[error("sensor did not answer {request} within {after:?}")]
    Timeout {
        /// The request.
        request: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The sensor reported an error (`request` is `None` for unsolicited errors).
    #[error("sensor error {code:?} (request: {}): {message}", request.unwrap_or("none"))]
    Sensor {
        /// The request it answers, if any.
        request: Option<&'static str>,
        /// The sensor's code.
        code: SensorErrorCode,
        /// The sensor's message.
        message: String,
    },
    /// A message that answers no request in flight.
    #[error("unexpected message type {kind:#04x} with sequence {seq}")]
    Unexpected {
        /// Its type.
        kind: u8,
        /// Its sequence number.
        seq: u16,
    },
    /// A frame whose image does not decode.
    #[error("frame {frame_number} does not decode")]
    Image {
        /// The sensor's frame counter.
        frame_number: u32,
        /// Why.
        #[source]
        source: ImageDecodeError,
    },
    /// The image decoder crashed on a frame (a bug in a decoder; the frame is dropped).
    #[error("image decoder failed on frame {frame_number}")]
    DecoderCrashed {
        /// The sensor's frame counter.
        frame_number: u32,
    },
}

/// Frames larger than this are decoded on the blocking pool even when they are GRAY8.
const INLINE_DECODE_LIMIT: usize = 64 * 1024;

/// Runs the device task on the serial port of `config` until `shutdown` completes or `events` is
/// closed.
///
/// `commands` may be closed at any time (the task then keeps its current settings).
pub async fn run(
    config: DeviceConfig,
    events: mpsc::Sender<SensorEvent>,
    commands: mpsc::Receiver<DeviceCommand>,
    shutdown: impl Future<Output = ()>,
) {
    let connector = SerialConnector {
        path: config.path.clone(),
        baud: config.baud,
    };
    run_with(connector, config, events, commands, shutdown).await;
}

/// [`run`] over the links `connector` opens (`config.path` and `config.baud` are then unused).
pub async fn run_with(
    mut connector: impl Connector,
    config: DeviceConfig,
    events: mpsc::Sender<SensorEvent>,
    mut commands: mpsc::Receiver<DeviceCommand>,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = pin!(shutdown);
    let mut desired = Desired {
        capture: config.capture,
        illumination: config.illumination,
        commands_open: true,
    };
    let mut failures: u32 = 0;
    loop {
        let mut connected = false;
        let end = session(
            &mut connector,
            &config,
            &mut desired,
            &events,
            &mut commands,
            &mut connected,
            &mut shutdown,
        )
        .await;
        let error = match end {
            SessionEnd::Stop => return,
            SessionEnd::Lost(error) => error,
        };
        failures = if connected {
            1
        } else {
            failures.saturating_add(1)
        };
        let retry_in = config.reconnect_backoff.delay(failures);
        tracing::debug!(error = %error_chain(&error), ?retry_in, "sensor disconnected");
        tokio::select! {
            () = &mut shutdown => return,
            sent = events.send(SensorEvent::Disconnected { error, retry_in }) => if sent.is_err() {
                return;
            },
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(retry_in) => {}
        }
    }
}

/// Settings to (re)apply on every connection.
struct Desired {
    capture: Option<CaptureRequest>,
    illumination: Option<u8>,
    commands_open: bool,
}

enum SessionEnd {
    /// Shutdown requested or nobody listens any more.
    Stop,
    /// The connection is lost.
    Lost(DeviceError),
}

impl From<DeviceError> for SessionEnd {
    fn from(error: DeviceError) -> Self {
        Self::Lost(error)
    }
}

/// One connection, from opening the link to losing it.
async fn session(
    connector: &mut impl Connector,
    config: &DeviceConfig,
    desired: &mut Desired,
    events: &mpsc::Sender<SensorEvent>,
    commands: &mut mpsc::Receiver<DeviceCommand>,
    connected: &mut bool,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> SessionEnd {
    let link = tokio::select! {
        () = shutdown.as_mut() => return SessionEnd::Stop,
        link = connector.connect() => match link {
            Ok(link) => link,
            Err(error) => return error.into(),
        },
    };
    let mut framed = Framed::new(link, HostCodec::new(config.max_frame_bytes));
    let mut requests = Requests::new(config.request_timeout);
    requests.push(HostMessage::GetInfo);
    let mut last_heard = Instant::now();
    let mut ping_token: u32 = 0;

    loop {
        if let Some(envelope) = requests.next_to_send(Instant::now()) {
            tracing::trace!(
                request = envelope.message.name(),
                seq = envelope.seq,
                "sensor request"
            );
            let request = envelope.message.name();
            match tokio::time::timeout(config.request_timeout, framed.send(envelope)).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return DeviceError::Io(error).into(),
                Err(_) => {
                    return DeviceError::Timeout {
                        request,
                        after: config.request_timeout,
                    }
                    .into();
                }
            }
        }
        let wake_at = requests.deadline().unwrap_or(last_heard + config.keepalive);

        let event = tokio::select! {
            () = shutdown.as_mut() => {
                // Best effort: leave the sensor idle (the answer is not awaited).
                let mut last = Requests::new(config.request_timeout);
                last.push(HostMessage::StopCapture);
                if let Some(stop) = last.next_to_send(Instant::now()) {
                    let _ = tokio::time::timeout(config.request_timeout, framed.send(stop)).await;
                }
                return SessionEnd::Stop;
            }
            item = framed.next() => {
                let received = ReceivedAt::now();
                match item {
                    None => return DeviceError::Closed.into(),
                    Some(Err(error)) => return DeviceError::Io(error).into(),
                    Some(Ok(Err(protocol))) => Some(SensorEvent::Problem(protocol.into())),
                    Some(Ok(Ok(envelope))) => {
                        last_heard = Instant::now();
                        match on_message(envelope, received, &mut requests, desired, connected).await {
                            Ok(event) => event,
                            Err(error) => return error.into(),
                        }
                    }
                }
            }
            command = commands.recv(), if desired.commands_open => {
                match command {
                    None => desired.commands_open = false,
                    Some(command) => {
                        match desired.apply(command) {
                            Some(request) if *connected => requests.push(request),
                            Some(_) => {}
                            None => tracing::warn!("ignoring a burst request without frames"),
                        }
                    }
                }
                None
            }
            () = tokio::time::sleep_until(wake_at) => {
                if requests
                    .expired(Instant::now())
                    .is_some_and(|in_flight| in_flight.request == HostMessage::GetBands)
                {
                    // A 1.0 sensor may ignore a request type it does not know.
                    requests.give_up();
                    Some(SensorEvent::Bands(Vec::new()))
                } else if let Some(in_flight) = requests.expired(Instant::now()) {
                    return DeviceError::Timeout {
                        request: in_flight.request.name(),
                        after: config.request_timeout,
                    }
                    .into();
                } else {
                    if !requests.busy() {
                        ping_token = ping_token.wrapping_add(1);
                        requests.push(HostMessage::Ping { token: ping_token });
                    }
                    None
                }
            }
        };
        if let Some(event) = event {
            // A consumer that stops reading must not keep the task from shutting down.
            tokio::select! {
                () = shutdown.as_mut() => return SessionEnd::Stop,
                sent = events.send(event) => if sent.is_err() {
                    return SessionEnd::Stop;
                },
            }
        }
    }
}

impl Desired {
    /// Records a command and returns the request that carries it out (`None`: a burst without
    /// frames, which cannot be encoded).
    fn apply(&mut self, command: DeviceCommand) -> Option<HostMessage> {
        Some(match command {
            DeviceCommand::StartCapture(capture) => {
                self.capture = Some(capture);
                HostMessage::StartCapture {
                    format: capture.format,
                    frames: capture.frames,
                }
            }
            DeviceCommand::StopCapture => {
                self.capture = None;
                HostMessage::StopCapture
            }
            DeviceCommand::SetIllumination(level) => {
                self.illumination = Some(level);
                HostMessage::SetIllumination { level }
            }
            DeviceCommand::Burst(burst) => {
                let bands = burst.sequence();
                if bands.is_empty() {
                    return None;
                }
                HostMessage::StartBurst {
                    format: burst.format,
                    bands,
                }
            }
        })
    }

    /// The requests that bring a freshly connected sensor to the desired state. A capture format
    /// the sensor does not offer is replaced by the first one it does.
    fn replay(&self, offered: &[FrameFormat]) -> Vec<HostMessage> {
        let mut requests = Vec::new();
        if let Some(level) = self.illumination {
            requests.push(HostMessage::SetIllumination { level });
        }
        requests.push(match self.capture {
            Some(capture) => {
                let format = match offered.first() {
                    Some(&first) if !offered.contains(&capture.format) => {
                        tracing::info!(wanted = %capture.format, used = %first, "sensor does not offer the configured frame format");
                        first
                    }
                    _ => capture.format,
                };
                HostMessage::StartCapture { format, frames: capture.frames }
            }
            None => HostMessage::StopCapture,
        });
        requests
    }
}

/// Handles one message; returns the event to report, or the error that ends the connection.
async fn on_message(
    envelope: Envelope<SensorMessage>,
    received: ReceivedAt,
    requests: &mut Requests,
    desired: &Desired,
    connected: &mut bool,
) -> Result<Option<SensorEvent>, DeviceError> {
    let Envelope { seq, message } = envelope;
    match requests.on_message(seq, &message) {
        Answer::Stray => {
            // A late answer (after a timeout, or to a previous user of the port): harmless.
            tracing::debug!(kind = message.kind(), seq, "ignoring a stray sensor answer");
            Ok(None)
        }
        Answer::Response(request) => match message {
            SensorMessage::Info(info) => {
                *connected = true;
                requests.push(HostMessage::GetBands);
                for request in desired.replay(&info.formats) {
                    requests.push(request);
                }
                Ok(Some(SensorEvent::Connected(info)))
            }
            SensorMessage::Bands(bands) => Ok(Some(SensorEvent::Bands(bands))),
            SensorMessage::Error { .. } if request == HostMessage::GetBands => {
                // A protocol 1.0 sensor: one light, no bursts.
                Ok(Some(SensorEvent::Bands(Vec::new())))
            }
            SensorMessage::Error { code, message } => {
                let error = DeviceError::Sensor {
                    request: Some(request.name()),
                    code,
                    message,
                };
                if request == HostMessage::GetInfo {
                    // No handshake, no session.
                    Err(error)
                } else {
                    Ok(Some(SensorEvent::Problem(error)))
                }
            }
            _ => Ok(None),
        },
        Answer::Unsolicited => match message {
            SensorMessage::Presence {
                present,
                distance_mm,
            } => Ok(Some(SensorEvent::Presence {
                present,
                distance_mm,
                received,
            })),
            SensorMessage::Frame {
                format,
                width,
                height,
                frame_number,
                data,
            } => {
                if !*connected {
                    // Left over from a capture before this connection's handshake.
                    return Ok(None);
                }
                Ok(Some(
                    decode_frame(format, width, height, frame_number, data, received).await,
                ))
            }
            SensorMessage::BandFrame(BandFrame {
                band,
                index,
                time_us,
                format,
                width,
                height,
                frame_number,
                data,
            }) => {
                if !*connected {
                    return Ok(None);
                }
                let decoded =
                    decode_frame(format, width, height, frame_number, data, received).await;
                Ok(Some(match decoded {
                    SensorEvent::Frame(frame) => SensorEvent::BurstFrame(BurstFrame {
                        band,
                        index,
                        exposed_after: Duration::from_micros(u64::from(time_us)),
                        frame,
                    }),
                    problem => problem,
                }))
            }
            SensorMessage::Error { code, message } => {
                Ok(Some(SensorEvent::Problem(DeviceError::Sensor {
                    request: None,
                    code,
                    message,
                })))
            }
            // Answers sent without a sequence number.
            SensorMessage::Ack | SensorMessage::Pong { .. } => Ok(None),
            other => Ok(Some(SensorEvent::Problem(DeviceError::Unexpected {
                kind: other.kind(),
                seq,
            }))),
        },
    }
}

/// Decodes a frame, on the blocking pool unless it is a small GRAY8 copy.
async fn decode_frame(
    format: FrameFormat,
    width: u16,
    height: u16,
    frame_number: u32,
    data: ImageBytes,
    received: ReceivedAt,
) -> SensorEvent {
    let encoded_bytes = data.len();
    let decode = move || decode_image(format, width.into(), height.into(), &data);
    let decoded = if format == FrameFormat::Gray8 && encoded_bytes <= INLINE_DECODE_LIMIT {
        decode()
    } else {
        match tokio::task::spawn_blocking(decode).await {
            Ok(decoded) => decoded,
            Err(_) => return SensorEvent::Problem(DeviceError::DecoderCrashed { frame_number }),
        }
    };
    match decoded {
        Ok(image) => SensorEvent::Frame(CapturedFrame {
            image,
            format,
            frame_number,
            encoded_bytes,
            received,
            decoded_at: std::time::Instant::now(),
        }),
        Err(source) => SensorEvent::Problem(DeviceError::Image {
            frame_number,
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max() {
        let backoff = Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
        };
        let delays: Vec<_> = (1..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, vec![50, 100, 200, 300, 300, 300]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_millis(300));
    }

    #[test]
    fn bursts_cycle_the_bands_in_code_order() {
        let burst = BurstRequest::new(FrameFormat::Gray8, &[Band::Visible, Band::Ambient], 3);
        assert_eq!(
            burst.sequence(),
            [Band::Ambient, Band::Visible].repeat(3),
            "rounds of the bands, in code order"
        );
        assert_eq!(
            BurstRequest::new(FrameFormat::Gray8, &Band::ALL, 20)
                .sequence()
                .len(),
            32
        );
        assert!(
            BurstRequest::new(FrameFormat::Gray8, &[], 2)
                .sequence()
                .is_empty()
        );
    }

    #[test]
    fn replay_restores_settings() {
        let mut desired = Desired {
            capture: None,
            illumination: None,
            commands_open: true,
        };
        assert_eq!(
            desired.replay(&FrameFormat::ALL),
            vec![HostMessage::StopCapture]
        );
        desired.apply(DeviceCommand::SetIllumination(40));
        let capture = CaptureRequest {
            format: FrameFormat::Png,
            frames: 3,
        };
        assert_eq!(
            desired.apply(DeviceCommand::StartCapture(capture)),
            Some(HostMessage::StartCapture {
                format: FrameFormat::Png,
                frames: 3
            })
        );
        let empty = BurstRequest::new(FrameFormat::Png, &[], 1);
        assert_eq!(desired.apply(DeviceCommand::Burst(empty)), None);
        assert_eq!(
            desired.replay(&FrameFormat::ALL),
            vec![
                HostMessage::SetIllumination { level: 40 },
                HostMessage::StartCapture {
                    format: FrameFormat::Png,
                    frames: 3
                },
            ]
        );
        // Not offered: the sensor's first format instead.
        assert_eq!(
            desired.replay(&[FrameFormat::Jpeg])[1],
            HostMessage::StartCapture {
                format: FrameFormat::Jpeg,
                frames: 3
            }
        );
        assert_eq!(
            desired.replay(&[])[1],
            HostMessage::StartCapture {
                format: FrameFormat::Png,
                frames: 3
            }
        );
    }
}
