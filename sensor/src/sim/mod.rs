//! A palm sensor on a pseudo-terminal: the other end of the real serial path, for tests and demos.
//!
//! [`Simulator::run`] opens a pty in raw mode, points a symlink (`--link PATH`) at its device side,
//! and answers the protocol as a sensor would: `Info`, `Ack`, `Pong`; after `StartCapture`, a
//! presence report and then frames at the configured rate, from any [`ImageSource`] (a folder, the
//! synthetic palm generator, any iterator of gray images), encoded as GRAY8, PNG or JPEG.
//!
//! By default the hand is in front of the sensor for as long as a capture runs, and every frame is
//! a new image. With a [`Presentation`] cycle the hand comes and goes on its own clock: presence
//! is reported as it arrives and leaves, frames are sent only while it is there, and all frames of
//! one presentation repeat the one image taken from the source when the hand arrived. A
//! presentation that ends (or whose capture stops) before its first frame passes its image on to
//! the next one: the host sees the source's images in order, however slow the machine.
//!
//! With [`SimulatorConfig::bands`] the sensor speaks protocol 1.1: it announces its illumination
//! bands and serves presentation bursts (one frame per requested band, from
//! [`ImageSource::next_burst`], rendered while the sensor goes on answering requests); without,
//! it is a 1.0 sensor and answers the 1.1 requests with `Error` *unknown request*, as a 1.0
//! sensor does.
//!
//! Faults are injected on request through a [`FaultInjector`]: garbage on the line, a frame with a
//! bad CRC, a truncated frame, or a disconnect (the pty is closed and the link removed, then both
//! come back after a delay, as a USB sensor unplugged and plugged in again).

mod hand;
pub mod pty;
pub mod source;

use crate::error_chain;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::{Pin, pin};
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::codec::FramedRead;

pub use hand::Presentation;
pub use pty::{Link, Pty};
pub use source::{FolderError, FolderSource, ImageSource};

use crate::codec::{
    Band, BandFrame, Envelope, FrameFormat, HostMessage, SensorCodec, SensorErrorCode, SensorInfo,
    SensorMessage, encode_sensor_message, sensor::PROTOCOL_VERSION,
};
use crate::image::{ImageBytes, ImageEncodeError, PalmImage, encode_image};
use hand::{HandClock, HandReports};

/// Settings of the simulated sensor.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    /// Symlink to create to the pty's device side.
    pub link: PathBuf,
    /// Formats offered in `Info` and accepted in `StartCapture`.
    pub formats: Vec<FrameFormat>,
    /// Frames per second while capturing.
    pub fps: f64,
    /// Resolution reported in `Info`.
    pub width: u16,
    /// Resolution reported in `Info`.
    pub height: u16,
    /// Model reported in `Info`.
    pub model: String,
    /// Firmware reported in `Info`.
    pub firmware: String,
    /// Distance reported with presence, in millimetres.
    pub distance_mm: u16,
    /// A hand that is presented and lifted in a cycle; `None`: the hand is there whenever a
    /// capture runs, and every frame is a new image.
    pub presentation: Option<Presentation>,
    /// Illumination bands announced to `GetBands` (protocol 1.1); `None`: a protocol 1.0 sensor.
    pub bands: Option<Vec<Band>>,
}

impl SimulatorConfig {
    /// A 640×480 sensor offering every format at 10 frames per second.
    pub fn new(link: impl Into<PathBuf>) -> Self {
        Self {
            link: link.into(),
            formats: FrameFormat::ALL.to_vec(),
            fps: 10.0,
            width: 640,
            height: 480,
            model: "palmgate-sim".to_owned(),
            firmware: env!("CARGO_PKG_VERSION").to_owned(),
            distance_mm: 85,
            presentation: None,
            bands: Some(Band::ALL.to_vec()),
        }
    }

    fn info(&self) -> SensorInfo {
        SensorInfo {
            protocol_version: PROTOCOL_VERSION,
            width: self.width,
            height: self.height,
            formats: self.formats.clone(),
            max_fps: self.fps.ceil().clamp(1.0, 255.0) as u8,
            model: self.model.clone(),
            firmware: self.firmware.clone(),
        }
    }
}

/// A fault to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Writes this many bytes of noise at once (never containing a start marker byte).
    Garbage {
        /// How many.
        bytes: usize,
    },
    /// The next frame goes out with a wrong CRC-32.
    BadCrc,
    /// Only the first half of the next frame goes out.
    TruncatedFrame,
    /// Closes the pty and removes the link at once; both come back after `down_for`.
    Disconnect {
        /// How long the sensor stays "unplugged".
        down_for: Duration,
    },
}

/// Sends faults to a running simulator.
#[derive(Debug, Clone)]
pub struct FaultInjector(mpsc::UnboundedSender<Fault>);

impl FaultInjector {
    /// Queues a fault; returns `false` when the simulator has stopped.
    pub fn inject(&self, fault: Fault) -> bool {
        self.0.send(fault).is_ok()
    }
}

/// What the simulator has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulatorStatus {
    /// The device side of the current pty, while the sensor is "plugged in".
    pub device: Option<PathBuf>,
    /// Ptys opened so far (1 + disconnects).
    pub plugged: u64,
    /// Frames written (including faulty ones).
    pub frames_sent: u64,
    /// Faults carried out.
    pub faults_applied: u64,
    /// Presentation bursts served (protocol 1.1).
    pub bursts: u64,
    /// Hand arrivals reported while capturing that took a new image from the source (only with a
    /// [`Presentation`] cycle; a presentation reported again by a later capture takes none, nor
    /// does one that takes over the image of a presentation no frame showed).
    pub presentations: u64,
}

/// Why the simulator stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimulatorError {
    /// The pseudo-terminal could not be opened.
    #[error("cannot open a pseudo-terminal")]
    Pty(#[source] io::Error),
    /// The link could not be created.
    #[error("cannot link {path} to the pseudo-terminal")]
    Link {
        /// The link.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading or writing the pty failed.
    #[error("pseudo-terminal I/O failed")]
    Io(#[from] io::Error),
    /// The image source panicked.
    #[error("the image source crashed")]
    SourceCrashed,
}

/// The simulated sensor.
pub struct Simulator {
    config: SimulatorConfig,
    source: Option<Box<dyn ImageSource>>,
    faults: mpsc::UnboundedReceiver<Fault>,
    status: watch::Sender<SimulatorStatus>,
    frame_number: u32,
    /// The hand's cycle, when it comes and goes (kept across captures and reconnections).
    hand: Option<HandClock>,
    /// The image of the hand's current (or last) presentation.
    presented: Option<PresentedImage>,
    /// The burst being rendered, if any (kept across reconnections: it holds the source).
    rendering: Option<Rendering>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// How a connection ended.
enum Served {
    Shutdown,
    Unplugged(Duration),
}

/// What follows the answer to a request.
enum Then {
    Nothing,
    /// A capture started: report the hand's state now.
    ReportHand,
    /// A burst was acknowledged: render it, then serve its frames.
    Burst {
        format: FrameFormat,
        bands: Vec<Band>,
    },
}

/// A capture in progress.
#[derive(Debug, Clone, Copy)]
struct Capture {
    format: FrameFormat,
    /// Frames still to send; `None` for "until stopped".
    remaining: Option<u16>,
    /// What this capture has reported about a hand that comes and goes.
    hand: HandReports,
}

/// A burst's images, encoded: `None` when the source has no presentation to burst.
type RenderedBurst = Option<Vec<Result<(u16, u16, ImageBytes), ImageEncodeError>>>;

/// A burst rendered on the blocking pool while the sensor goes on answering requests (the source
/// is lent to it meanwhile).
struct Rendering {
    /// The connection the burst was acknowledged on: a host that has reconnected since asked for
    /// no burst (a burst is about the hand in front of the sensor at the time).
    plugged: u64,
    format: FrameFormat,
    bands: Vec<Band>,
    task: tokio::task::JoinHandle<(Box<dyn ImageSource>, RenderedBurst)>,
}

/// The one image of a presentation, served for each of its frames.
struct PresentedImage {
    presentation: u64,
    image: PalmImage,
    /// The last encoding, reused while the format stays the same.
    encoded: Option<EncodedImage>,
    /// Whether a frame has shown it (an image no frame showed passes to the next presentation).
    framed: bool,
}

struct EncodedImage {
    format: FrameFormat,
    width: u16,
    height: u16,
    data: ImageBytes,
}

/// A frame's image as encoded: `None` when there is no image (the capture ends).
type Encoded = Option<Result<(u16, u16, ImageBytes), ImageEncodeError>>;

/// A fault waiting for the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameFault {
    BadCrc,
    Truncated,
}

type Shutdown<'a, F> = Pin<&'a mut F>;

impl Simulator {
    /// A simulator serving images from `source`, and the handle to inject faults into it.
    pub fn new(
        config: SimulatorConfig,
        source: impl ImageSource + 'static,
    ) -> (Self, FaultInjector) {
        let (fault_sender, faults) = mpsc::unbounded_channel();
        let simulator = Self {
            hand: config.presentation.map(HandClock::new),
            config,
            source: Some(Box::new(source)),
            faults,
            status: watch::Sender::new(SimulatorStatus::default()),
            frame_number: 0,
            presented: None,
            rendering: None,
        };
        (simulator, FaultInjector(fault_sender))
    }

    /// Follows what the simulator does (for tests and the CLI).
    pub fn status(&self) -> watch::Receiver<SimulatorStatus> {
        self.status.subscribe()
    }

    /// Serves until `shutdown` completes. The link is removed on return.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), SimulatorError> {
        let mut shutdown = pin!(shutdown);
        loop {
            let pty = Pty::open().map_err(SimulatorError::Pty)?;
            let link = Link::create(&self.config.link, pty.slave_path()).map_err(|source| {
                SimulatorError::Link {
                    path: self.config.link.clone(),
                    source,
                }
            })?;
            let device = pty.slave_path().to_path_buf();
            tracing::info!(link = %link.path().display(), device = %device.display(), "sensor simulator plugged in");
            self.status.send_modify(|status| {
                status.device = Some(device);
                status.plugged += 1;
            });
            let served = self.serve(pty, shutdown.as_mut()).await;
            drop(link);
            self.status.send_modify(|status| status.device = None);
            match served? {
                Served::Shutdown => return Ok(()),
                Served::Unplugged(down_for) => {
                    tracing::info!(?down_for, "sensor simulator unplugged");
                    tokio::select! {
                        () = shutdown.as_mut() => return Ok(()),
                        () = tokio::time::sleep(down_for) => {}
                    }
                }
            }
        }
    }

    /// Speaks the protocol on one pty until shutdown or an injected disconnect.
    async fn serve<F: Future<Output = ()>>(
        &mut self,
        pty: Pty,
        mut shutdown: Shutdown<'_, F>,
    ) -> Result<Served, SimulatorError> {
        let (reader, mut writer) = tokio::io::split(pty);
        let mut requests = FramedRead::new(reader, SensorCodec::default());
        let mut capture: Option<Capture> = None;
        let mut armed: Option<FrameFault> = None;
        // Off once every `FaultInjector` is gone (awaiting here must not stall the sensor).
        let mut faults_open = true;
        let period = Duration::from_secs_f64(1.0 / self.config.fps.clamp(0.01, 1000.0));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            let mut out = BytesMut::new();
            // While a burst is rendered the source is lent to it: the hand and the frames wait
            // (a sensor taking a burst streams nothing else), the requests do not.
            let streaming = self.rendering.is_none();
            let hand_change = match (&capture, &self.hand) {
                (Some(_), Some(hand)) if streaming => hand.next_change(Instant::now()),
                _ => None,
            };
            tokio::select! {
                () = shutdown.as_mut() => return Ok(Served::Shutdown),
                fault = self.faults.recv(), if faults_open => match fault {
                    // Nobody can inject any more: carry on without faults.
                    None => faults_open = false,
                    Some(Fault::Disconnect { down_for }) => {
                        self.status.send_modify(|status| status.faults_applied += 1);
                        return Ok(Served::Unplugged(down_for));
                    }
                    Some(Fault::Garbage { bytes }) => {
                        out.extend_from_slice(&noise(bytes));
                        self.status.send_modify(|status| status.faults_applied += 1);
                    }
                    Some(Fault::BadCrc) => armed = Some(FrameFault::BadCrc),
                    Some(Fault::TruncatedFrame) => armed = Some(FrameFault::Truncated),
                },
                item = requests.next() => match item {
                    // The master only reads end of file if the pty is gone: start a new one.
                    None => return Ok(Served::Unplugged(Duration::ZERO)),
                    Some(Err(error)) => return Err(error.into()),
                    Some(Ok(Err(error))) => {
                        let why = error_chain(&error);
                        tracing::warn!(error = %why, "simulator: bad request");
                        let reply = SensorMessage::Error {
                            code: SensorErrorCode::BadRequest,
                            message: short(&why),
                        };
                        self.encode(Envelope::new(0, reply), &mut out);
                    }
                    Some(Ok(Ok(Envelope { seq, message }))) => {
                        match self.answer(seq, message, &mut capture, &mut ticker, &mut out) {
                            Then::Nothing => {}
                            Then::ReportHand => {
                                if let Some(active) = capture.filter(|_| streaming) {
                                    capture =
                                        self.follow_hand(active, &mut ticker, &mut out).await?.0;
                                }
                            }
                            Then::Burst { format, bands } => self.start_burst(format, bands)?,
                        }
                    }
                },
                rendered = rendered_burst(&mut self.rendering), if !streaming => {
                    self.finish_burst(rendered, period, &mut out)?;
                }
                () = sleep_until_some(hand_change) => {
                    if let Some(active) = capture {
                        capture = self.follow_hand(active, &mut ticker, &mut out).await?.0;
                    }
                }
                _ = ticker.tick(), if capture.is_some() && streaming => {
                    if let Some(active) = capture {
                        capture = if self.hand.is_some() {
                            self.next_presented_frame(active, &mut armed, &mut ticker, &mut out)
                                .await?
                        } else {
                            self.next_frame(active, &mut armed, &mut out).await?
                        };
                    }
                }
            }
            if !out.is_empty() {
                tokio::select! {
                    () = shutdown.as_mut() => return Ok(Served::Shutdown),
                    written = write_wiping(&mut writer, out) => written?,
                }
            }
        }
    }

    /// Answers one request. Returns what must follow the answer: the hand's state reported at
    /// once when a capture started (with a presentation cycle: see [`Self::follow_hand`]), or a
    /// burst's frames.
    fn answer(
        &mut self,
        seq: u16,
        message: HostMessage,
        capture: &mut Option<Capture>,
        ticker: &mut tokio::time::Interval,
        out: &mut BytesMut,
    ) -> Then {
        let reply = match message {
            HostMessage::GetBands | HostMessage::StartBurst { .. }
                if self.config.bands.is_none() =>
            {
                SensorMessage::Error {
                    code: SensorErrorCode::UnknownRequest,
                    message: "protocol 1.0 sensor".to_owned(),
                }
            }
            HostMessage::GetBands => {
                SensorMessage::Bands(self.config.bands.clone().unwrap_or_default())
            }
            HostMessage::StartBurst { format, .. } if !self.config.formats.contains(&format) => {
                SensorMessage::Error {
                    code: SensorErrorCode::UnsupportedFormat,
                    message: format!("{format} is not offered"),
                }
            }
            HostMessage::StartBurst { .. } if self.rendering.is_some() => SensorMessage::Error {
                code: SensorErrorCode::Busy,
                message: "still taking the previous burst".to_owned(),
            },
            HostMessage::StartBurst { format, bands } => {
                let offered = self.config.bands.as_deref().unwrap_or_default();
                if let Some(missing) = bands.iter().find(|band| !offered.contains(band)) {
                    SensorMessage::Error {
                        code: SensorErrorCode::BadRequest,
                        message: format!("no {missing} illumination"),
                    }
                } else {
                    self.encode(Envelope::new(seq, SensorMessage::Ack), out);
                    return Then::Burst { format, bands };
                }
            }
            HostMessage::GetInfo => SensorMessage::Info(self.config.info()),
            HostMessage::Ping { token } => SensorMessage::Pong { token },
            HostMessage::SetIllumination { .. } => SensorMessage::Ack,
            HostMessage::StartCapture { format, .. } if !self.config.formats.contains(&format) => {
                SensorMessage::Error {
                    code: SensorErrorCode::UnsupportedFormat,
                    message: format!("{format} is not offered"),
                }
            }
            HostMessage::StartCapture { format, frames } => {
                self.encode(Envelope::new(seq, SensorMessage::Ack), out);
                *capture = Some(Capture {
                    format,
                    remaining: (frames != 0).then_some(frames),
                    hand: HandReports::default(),
                });
                ticker.reset();
                if self.hand.is_some() {
                    return Then::ReportHand;
                }
                self.presence(true, out);
                return Then::Nothing;
            }
            HostMessage::StopCapture => {
                self.encode(Envelope::new(seq, SensorMessage::Ack), out);
                if let Some(stopped) = capture.take()
                    && self.shows_present(&stopped)
                {
                    self.presence(false, out);
                }
                return Then::Nothing;
            }
        };
        self.encode(Envelope::new(seq, reply), out);
        Then::Nothing
    }

    /// Starts rendering one presentation burst (the frames of `bands`, from the source's burst
    /// model, encoded) on the blocking pool; [`Self::finish_burst`] serves it. Rendering takes
    /// seconds on a loaded machine: on the request path it would leave a `Ping` or `GetInfo`
    /// unanswered past the host's timeout, and the host would give the sensor up mid-burst.
    fn start_burst(&mut self, format: FrameFormat, bands: Vec<Band>) -> Result<(), SimulatorError> {
        let mut source = self.source.take().ok_or(SimulatorError::SourceCrashed)?;
        let wanted = bands.clone();
        let task = tokio::task::spawn_blocking(move || {
            let encoded = source.next_burst(&wanted).map(|images| {
                images
                    .iter()
                    .map(|image| encode_image(image, format))
                    .collect::<Vec<_>>()
            });
            (source, encoded)
        });
        self.rendering = Some(Rendering {
            plugged: self.status.borrow().plugged,
            format,
            bands,
            task,
        });
        Ok(())
    }

    /// Serves the burst that [`Self::start_burst`] rendered: its frames, each tagged with its band
    /// and its exposure time one frame period after the previous one. The frames are written at
    /// once (the sensor buffers a burst); a source without a burst ends with an `Error` hardware
    /// report, since a sensor that acknowledged a burst owes an answer. A burst acknowledged on an
    /// earlier connection is dropped.
    fn finish_burst(
        &mut self,
        rendered: Result<(Box<dyn ImageSource>, RenderedBurst), tokio::task::JoinError>,
        period: Duration,
        out: &mut BytesMut,
    ) -> Result<(), SimulatorError> {
        let Some(Rendering {
            plugged,
            format,
            bands,
            ..
        }) = self.rendering.take()
        else {
            return Ok(());
        };
        let (source, encoded) = rendered.map_err(|_| SimulatorError::SourceCrashed)?;
        self.source = Some(source);
        if plugged != self.status.borrow().plugged {
            return Ok(());
        }
        let Some(encoded) = encoded.filter(|frames| frames.len() == bands.len()) else {
            let report = SensorMessage::Error {
                code: SensorErrorCode::Hardware,
                message: "no presentation to burst".to_owned(),
            };
            self.encode(Envelope::new(0, report), out);
            return Ok(());
        };
        let period_us = u32::try_from(period.as_micros()).unwrap_or(u32::MAX);
        for (index, (band, frame)) in bands.into_iter().zip(encoded).enumerate() {
            let (width, height, data) = match frame {
                Ok(frame) => frame,
                Err(error) => {
                    self.encode_error(&error, out);
                    continue;
                }
            };
            self.frame_number = self.frame_number.wrapping_add(1);
            // At most 32 frames: the index fits a u8.
            let index = u8::try_from(index).unwrap_or(u8::MAX);
            let frame = BandFrame {
                band,
                index,
                time_us: period_us.saturating_mul(u32::from(index)),
                format,
                width,
                height,
                frame_number: self.frame_number,
                data,
            };
            self.encode(Envelope::new(0, SensorMessage::BandFrame(frame)), out);
            self.status.send_modify(|status| status.frames_sent += 1);
        }
        self.status.send_modify(|status| status.bursts += 1);
        Ok(())
    }

    /// Whether the host was last told that a hand is present (always, without a cycle).
    fn shows_present(&self, capture: &Capture) -> bool {
        self.hand.is_none() || capture.hand.shows_present()
    }

    /// Reports the hand's arrivals and lifts up to now (its state as it is, on the first call of
    /// a capture). An arrival of a new presentation takes the next image from the source (unless
    /// no frame showed the previous one's: see [`Self::take_image_for`]); when the source has run
    /// out the capture ends instead. Returns the capture as it continues, and
    /// whether anything was reported.
    async fn follow_hand(
        &mut self,
        mut capture: Capture,
        ticker: &mut tokio::time::Interval,
        out: &mut BytesMut,
    ) -> Result<(Option<Capture>, bool), SimulatorError> {
        let Some(hand) = self.hand.as_mut() else {
            return Ok((Some(capture), false));
        };
        let state = hand.state(Instant::now());
        let first_report = !capture.hand.has_reported();
        let reports = capture.hand.follow(state);
        for &present in reports {
            if present {
                let looking = Instant::now();
                if !self.take_image_for(state.presentation).await? {
                    // No hand to show: a capture that has said nothing yet says "absent".
                    if first_report {
                        self.presence(false, out);
                    }
                    return Ok((None, true));
                }
                // The hand is held for its full time once its image is ready.
                if let Some(hand) = self.hand.as_mut() {
                    hand.hold_back(looking.elapsed());
                }
                // The first frame of a presentation comes one period after the hand arrives.
                ticker.reset();
            }
            self.presence(present, out);
        }
        Ok((Some(capture), !reports.is_empty()))
    }

    /// Makes sure the image of `presentation` is at hand, taking a new one from the source for a
    /// new presentation (the previous one's if no frame showed it); `false` when the source has
    /// run out.
    async fn take_image_for(&mut self, presentation: u64) -> Result<bool, SimulatorError> {
        if let Some(presented) = self.presented.as_mut() {
            if presented.presentation == presentation {
                return Ok(true);
            }
            if !presented.framed {
                // No frame showed the last presentation (it ended, or its capture was stopped,
                // before its first frame: a slow or loaded machine): no host saw its image, so it
                // is this presentation's. Taking a new one would skip a source image unseen, and
                // a host that counts on the source's order would get the wrong hand.
                presented.presentation = presentation;
                return Ok(true);
            }
        }
        // The previous hand's image is wiped now, not kept until the next one is ready.
        self.presented = None;
        let mut source = self.source.take().ok_or(SimulatorError::SourceCrashed)?;
        let (source, image) = tokio::task::spawn_blocking(move || {
            let image = source.next_image();
            (source, image)
        })
        .await
        .map_err(|_| SimulatorError::SourceCrashed)?;
        self.source = Some(source);
        let Some(image) = image else {
            return Ok(false);
        };
        self.presented = Some(PresentedImage {
            presentation,
            image: PalmImage::new(image),
            encoded: None,
            framed: false,
        });
        self.status.send_modify(|status| status.presentations += 1);
        Ok(true)
    }

    fn presence(&self, present: bool, out: &mut BytesMut) {
        let distance_mm = present.then_some(self.config.distance_mm);
        self.encode(
            Envelope::new(
                0,
                SensorMessage::Presence {
                    present,
                    distance_mm,
                },
            ),
            out,
        );
    }

    fn encode(&self, envelope: Envelope<SensorMessage>, out: &mut BytesMut) {
        if let Err(error) = encode_sensor_message(&envelope, out) {
            // Only an over-long string or a frame over 4 GiB can get here.
            tracing::error!(error = %error_chain(&error), "simulator: cannot encode a message");
        }
    }

    /// Produces the next frame of a capture, a new image from the source; returns the capture as
    /// it continues.
    async fn next_frame(
        &mut self,
        capture: Capture,
        armed: &mut Option<FrameFault>,
        out: &mut BytesMut,
    ) -> Result<Option<Capture>, SimulatorError> {
        let mut source = self.source.take().ok_or(SimulatorError::SourceCrashed)?;
        let format = capture.format;
        let (source, encoded) = tokio::task::spawn_blocking(move || {
            let encoded = source
                .next_image()
                .map(|image| encode_image(&image, format));
            (source, encoded)
        })
        .await
        .map_err(|_| SimulatorError::SourceCrashed)?;
        self.source = Some(source);
        Ok(self.send_frame(capture, encoded, armed, out))
    }

    /// With a hand that comes and goes: reports its arrival or lift if it just happened, or else
    /// sends a frame of the current presentation's image while the hand is there.
    async fn next_presented_frame(
        &mut self,
        capture: Capture,
        armed: &mut Option<FrameFault>,
        ticker: &mut tokio::time::Interval,
        out: &mut BytesMut,
    ) -> Result<Option<Capture>, SimulatorError> {
        let (capture, reported) = self.follow_hand(capture, ticker, out).await?;
        let Some(capture) = capture else {
            return Ok(None);
        };
        if reported || !capture.hand.shows_present() {
            return Ok(Some(capture));
        }
        let encoded = self.encode_presented(capture.format).await?;
        if matches!(encoded, Some(Ok(_)))
            && let Some(presented) = self.presented.as_mut()
        {
            presented.framed = true;
        }
        Ok(self.send_frame(capture, encoded, armed, out))
    }

    /// The current presentation's image in `format` (encoded once per presentation and format).
    async fn encode_presented(&mut self, format: FrameFormat) -> Result<Encoded, SimulatorError> {
        let Some(presented) = self.presented.take() else {
            return Ok(None);
        };
        if let Some(cached) = presented
            .encoded
            .as_ref()
            .filter(|cached| cached.format == format)
        {
            let encoded = (cached.width, cached.height, cached.data.clone());
            self.presented = Some(presented);
            return Ok(Some(Ok(encoded)));
        }
        let (mut presented, encoded) = tokio::task::spawn_blocking(move || {
            let encoded = encode_image(presented.image.as_gray(), format);
            (presented, encoded)
        })
        .await
        .map_err(|_| SimulatorError::SourceCrashed)?;
        if let Ok((width, height, data)) = &encoded {
            presented.encoded = Some(EncodedImage {
                format,
                width: *width,
                height: *height,
                data: data.clone(),
            });
        }
        self.presented = Some(presented);
        Ok(Some(encoded))
    }

    /// Sends one frame (with an armed fault, if any) and counts it; returns the capture as it
    /// continues (it ends without an image, or after its last counted frame).
    fn send_frame(
        &mut self,
        mut capture: Capture,
        encoded: Encoded,
        armed: &mut Option<FrameFault>,
        out: &mut BytesMut,
    ) -> Option<Capture> {
        let format = capture.format;
        let (width, height, data) = match encoded {
            None => {
                if self.shows_present(&capture) {
                    self.presence(false, out);
                }
                return None;
            }
            Some(Err(error)) => {
                self.encode_error(&error, out);
                return Some(capture);
            }
            Some(Ok(encoded)) => encoded,
        };
        self.frame_number = self.frame_number.wrapping_add(1);
        let frame = SensorMessage::Frame {
            format,
            width,
            height,
            frame_number: self.frame_number,
            data,
        };
        let start = out.len();
        self.encode(Envelope::new(0, frame), out);
        let fault = armed.take();
        match fault {
            Some(FrameFault::BadCrc) => {
                if let Some(last) = out.last_mut() {
                    *last ^= 0xFF;
                }
            }
            Some(FrameFault::Truncated) => out.truncate(start + (out.len() - start) / 2),
            None => {}
        }
        self.status.send_modify(|status| {
            status.frames_sent += 1;
            status.faults_applied += u64::from(fault.is_some());
        });
        match capture.remaining {
            Some(1) => {
                self.presence(false, out);
                None
            }
            Some(remaining) => {
                capture.remaining = Some(remaining - 1);
                Some(capture)
            }
            None => Some(capture),
        }
    }

    fn encode_error(&self, error: &ImageEncodeError, out: &mut BytesMut) {
        let why = error_chain(error);
        tracing::warn!(error = %why, "simulator: cannot encode an image");
        let message = short(&why);
        let report = SensorMessage::Error {
            code: SensorErrorCode::Hardware,
            message,
        };
        self.encode(Envelope::new(0, report), out);
    }
}

/// The burst being rendered once it is done; pending forever without one.
async fn rendered_burst(
    rendering: &mut Option<Rendering>,
) -> Result<(Box<dyn ImageSource>, RenderedBurst), tokio::task::JoinError> {
    match rendering {
        Some(rendering) => (&mut rendering.task).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Writes `bytes` and wipes them (they may hold an image).
async fn write_wiping(writer: &mut WriteHalf<Pty>, mut bytes: BytesMut) -> io::Result<()> {
    let result = writer.write_all(&bytes).await;
    zeroize::Zeroize::zeroize(bytes.as_mut());
    result
}

/// `text` cut to the 255 bytes an error message can carry, on a character boundary.
fn short(text: &str) -> String {
    let mut end = text.len().min(255);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Deterministic noise without the start marker's first byte.
fn noise(count: usize) -> Vec<u8> {
    let mut state: u32 = 0x2545_F491;
    (0..count)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            match state.to_le_bytes()[0] {
                0xA5 => 0x00,
                byte => byte,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use image::{GrayImage, Luma};

    use super::*;

    fn shade(n: u8) -> GrayImage {
        GrayImage::from_pixel(4, 4, Luma([n]))
    }

    /// The shade of the image the hand presents now.
    fn presented_shade(simulator: &Simulator) -> Option<u8> {
        let presented = simulator.presented.as_ref()?;
        Some(presented.image.as_gray().get_pixel(0, 0).0[0])
    }

    /// On tokio's paused clock: the hand's cycle and the frame ticks move only when the test
    /// advances the time, so a presentation can end before its first frame on purpose.
    #[tokio::test(start_paused = true)]
    async fn a_presentation_that_ends_before_its_first_frame_passes_its_image_on() {
        let ms = Duration::from_millis;
        let mut config = SimulatorConfig::new("unused-link");
        config.fps = 50.0;
        config.presentation = Some(Presentation {
            held: ms(120),
            away: ms(80),
        });
        let (mut simulator, _faults) = Simulator::new(config, (0_u8..).map(shade));
        let mut ticker = tokio::time::interval(ms(20));
        let mut out = BytesMut::new();
        let mut armed = None;
        let capture = Capture {
            format: FrameFormat::Gray8,
            remaining: None,
            hand: HandReports::default(),
        };

        // The hand arrives (presentation 1 takes image 0) and is lifted before its first frame.
        let (capture, reported) = simulator
            .follow_hand(capture, &mut ticker, &mut out)
            .await
            .expect("arrival");
        assert!(reported);
        assert_eq!(presented_shade(&simulator), Some(0));
        tokio::time::advance(ms(150)).await;
        let (capture, reported) = simulator
            .follow_hand(capture.expect("capture"), &mut ticker, &mut out)
            .await
            .expect("lift");
        assert!(reported);
        assert_eq!(simulator.status.borrow().frames_sent, 0);

        // Presentation 2 shows image 0: no frame showed it, so no host has seen it yet.
        tokio::time::advance(ms(60)).await;
        let mut capture = capture.expect("capture");
        for _ in 0..2 {
            capture = simulator
                .next_presented_frame(capture, &mut armed, &mut ticker, &mut out)
                .await
                .expect("arrival, then a frame")
                .expect("capture");
        }
        assert_eq!(simulator.status.borrow().frames_sent, 1);
        assert_eq!(presented_shade(&simulator), Some(0));
        assert_eq!(simulator.status.borrow().presentations, 1);

        // A frame showed it: presentation 3 takes the source's next image.
        tokio::time::advance(ms(200)).await;
        simulator
            .next_presented_frame(capture, &mut armed, &mut ticker, &mut out)
            .await
            .expect("lift and arrival")
            .expect("capture");
        assert_eq!(presented_shade(&simulator), Some(1));
        assert_eq!(simulator.status.borrow().presentations, 2);
    }
}
