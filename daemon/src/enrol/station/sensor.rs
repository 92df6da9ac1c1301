//! The station's sensor side: the sensor link's task (the gate's [`SensorLink`] seam: the serial
//! sensor in the CLI, a channel in tests), the extractor, and the presentation filter that lets
//! each presentation of the hand give at most one capture.
//!
//! The station is synchronous (card calls block); this side owns a small runtime and blocks on it
//! only while it waits for the sensor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use palmgate_matcher::extract::{ExtractError, Extractor, InputKind, Probe};
use palmgate_sensor::codec::{FrameFormat, SensorInfo};
use palmgate_sensor::device::{CaptureRequest, DeviceCommand, DeviceError, SensorEvent};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::enrol::PresentationFilter;
use crate::gate::devices::{SensorLink, StopSignal};

/// What went wrong on the sensor side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SensorError {
    /// The runtime for the sensor task could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// No handshake in time.
    #[error("no sensor on {sensor} within {} s", .wait.as_secs())]
    NotConnected {
        /// The sensor's name (its port).
        sensor: String,
        /// How long the station waited.
        wait: Duration,
        /// The last connection failure, if any.
        #[source]
        last_error: Option<DeviceError>,
    },
    /// The sensor link's task ended.
    #[error("the sensor task stopped")]
    TaskStopped,
    /// The handshake listed no frame format.
    #[error("the sensor offers no frame format")]
    NoFormat,
    /// Frames kept coming from one presentation.
    #[error(
        "the sensor on {sensor} still sees the hand after {} s: each capture needs the hand lifted \
         and presented again",
        .wait.as_secs()
    )]
    HandNotLifted {
        /// The sensor's name.
        sensor: String,
        /// How long the station waited.
        wait: Duration,
    },
    /// No frame in time.
    #[error("no frame from the sensor on {sensor} within {} s", .wait.as_secs())]
    NoFrame {
        /// The sensor's name.
        sensor: String,
        /// How long the station waited.
        wait: Duration,
    },
    /// The extraction task panicked.
    #[error("template extraction crashed")]
    ExtractionCrashed,
    /// The watch task panicked.
    #[error("the sensor watch crashed")]
    WatchCrashed,
}

/// How the station uses its sensor.
#[derive(Debug, Clone)]
pub struct SensorOptions {
    /// The sensor's name in messages (its port).
    pub name: String,
    /// How long to wait for the handshake, and for each capture.
    pub wait: Duration,
    /// What the sensor's images show.
    pub input: InputKind,
}

/// One frame the presentation filter admitted, extracted at its kind's poses (as a gate cuts a
/// probe); refusals are results, not errors.
#[derive(Debug)]
pub(super) struct Capture {
    pub(super) received: Instant,
    pub(super) extraction: Result<Probe, ExtractError>,
}

/// What the sensor told the station that the person at the station should hear.
#[derive(Debug)]
pub(super) enum SensorNews {
    Problem(DeviceError),
    Disconnected {
        error: DeviceError,
        retry_in: Duration,
    },
}

/// What the watch task hands back.
struct Watched {
    events: mpsc::Receiver<SensorEvent>,
    /// Whether the sensor reported the hand gone while the station was busy.
    lifted: bool,
    /// Whether the capture was stopped after the lift.
    paused: bool,
    news: Vec<SensorNews>,
}

/// The sensor link's task, its events, and the presentation filter.
pub(super) struct StationSensor {
    runtime: tokio::runtime::Runtime,
    /// The sensor's events; lent to the watch task while the station works on the card.
    events: Option<mpsc::Receiver<SensorEvent>>,
    /// Reads the sensor while the station works on the card (see [`Self::watch`]).
    watching: Option<(oneshot::Sender<()>, JoinHandle<Watched>)>,
    commands: mpsc::Sender<DeviceCommand>,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
    extractor: Arc<Extractor>,
    options: SensorOptions,
    /// Frame format to ask for: JPEG when the sensor offers it (the gate's default), else the
    /// sensor's first format.
    format: FrameFormat,
    /// Whether the sensor was asked to stream (from the first capture on, paused only while the
    /// card is written).
    capturing: bool,
    /// One capture per presentation of the hand, across every series and the verification.
    pub(super) presentations: PresentationFilter,
}

impl StationSensor {
    /// Starts the link's task and waits for the sensor's handshake; returns the sensor's info.
    pub(super) fn start(
        link: Box<dyn SensorLink>,
        extractor: Arc<Extractor>,
        options: SensorOptions,
        news: &mut dyn FnMut(SensorNews),
    ) -> Result<(Self, SensorInfo), SensorError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(SensorError::Runtime)?;
        let (events_sender, events) = mpsc::channel(16);
        let (commands, command_receiver) = mpsc::channel(4);
        let (stop, stop_signal) = StopSignal::new();
        let task = {
            let _context = runtime.enter();
            link.spawn(events_sender, command_receiver, stop_signal)
        };
        let mut sensor = Self {
            runtime,
            events: Some(events),
            watching: None,
            commands,
            stop: Some(stop),
            task: Some(task),
            extractor,
            options,
            format: FrameFormat::Jpeg,
            capturing: false,
            presentations: PresentationFilter::default(),
        };
        let info = sensor.wait_connected(news)?;
        Ok((sensor, info))
    }

    fn wait_connected(
        &mut self,
        news: &mut dyn FnMut(SensorNews),
    ) -> Result<SensorInfo, SensorError> {
        let wait = self.options.wait;
        let sensor = self.options.name.clone();
        let events = self.events.as_mut().ok_or(SensorError::TaskStopped)?;
        let info = self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            let mut last_error = None;
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(SensorEvent::Connected(info))) => return Ok(info),
                    Ok(Some(SensorEvent::Disconnected { error, .. })) => last_error = Some(error),
                    Ok(Some(SensorEvent::Problem(error))) => news(SensorNews::Problem(error)),
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(SensorError::TaskStopped),
                    Err(_) => {
                        return Err(SensorError::NotConnected {
                            sensor,
                            wait,
                            last_error,
                        });
                    }
                }
            }
        })?;
        if !info.formats.contains(&self.format) {
            self.format = *info.formats.first().ok_or(SensorError::NoFormat)?;
        }
        Ok(info)
    }

    /// Starts the sensor streaming presence reports and frames, unless it already is.
    fn start_capture(&mut self) -> Result<(), SensorError> {
        if self.capturing {
            return Ok(());
        }
        let request = DeviceCommand::StartCapture(CaptureRequest {
            format: self.format,
            frames: 0,
        });
        let commands = self.commands.clone();
        self.runtime
            .block_on(commands.send(request))
            .map_err(|_| SensorError::TaskStopped)?;
        self.capturing = true;
        Ok(())
    }

    /// While the station works on the card: reads the sensor until the hand that gave the last
    /// capture is lifted (a sensor that is off cannot report the lift, and without it a hand still
    /// there when the verification starts would give that same presentation again), dropping its
    /// frames, then pauses the capture and stops reading.
    ///
    /// Whatever the sensor sent after the lift stays queued for the verification, in order: it is
    /// a new presentation, and the sensor served it before the pause could reach it (the station
    /// lags behind the sensor while it extracts and checks the captures). Dropping it would lose
    /// that presentation: the person (or the simulator's hand) would have to present again, and a
    /// hand that keeps coming would have moved on to the next one.
    pub(super) fn watch(&mut self) {
        let Some(events) = self.events.take() else {
            return;
        };
        let waiting_for_lift = self.presentations.waiting_for_lift();
        let pause = self.capturing.then(|| self.commands.clone());
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = self.runtime.spawn(async move {
            let mut watched = Watched {
                events,
                lifted: false,
                paused: false,
                news: Vec::new(),
            };
            let mut ended = false;
            while waiting_for_lift && !watched.lifted && !ended {
                tokio::select! {
                    _ = &mut stopped => ended = true,
                    event = watched.events.recv() => match event {
                        Some(SensorEvent::Presence { present: false, .. }) => watched.lifted = true,
                        Some(SensorEvent::Problem(error)) => {
                            watched.news.push(SensorNews::Problem(error));
                        }
                        Some(SensorEvent::Disconnected { error, retry_in }) => {
                            watched.news.push(SensorNews::Disconnected { error, retry_in });
                        }
                        // Frames of the presentation that already gave its capture.
                        Some(_) => {}
                        None => ended = true,
                    },
                }
            }
            if !ended && let Some(commands) = pause {
                // A closed command channel means the link's task is gone: the next read says so.
                watched.paused = commands.send(DeviceCommand::StopCapture).await.is_ok();
            }
            watched
        });
        self.watching = Some((stop, task));
    }

    /// Ends [`Self::watch`]: the events come back, a lift seen meanwhile opens the next
    /// presentation, and a paused capture is started again by the next [`Self::next_capture`].
    pub(super) fn end_watch(
        &mut self,
        news: &mut dyn FnMut(SensorNews),
    ) -> Result<(), SensorError> {
        if let Some((stop, task)) = self.watching.take() {
            // The task may have ended on its own (lift seen, or sensor task gone): then the send
            // fails.
            let _ = stop.send(());
            let watched = self
                .runtime
                .block_on(task)
                .map_err(|_| SensorError::WatchCrashed)?;
            self.events = Some(watched.events);
            watched.news.into_iter().for_each(&mut *news);
            if watched.lifted {
                self.presentations.presence(false);
            }
            if watched.paused {
                self.capturing = false;
            }
        }
        Ok(())
    }

    /// The next frame the presentation filter admits, extracted, with the time it was received.
    pub(super) fn next_capture(
        &mut self,
        news: &mut dyn FnMut(SensorNews),
    ) -> Result<Capture, SensorError> {
        self.end_watch(news)?;
        self.start_capture()?;
        let wait = self.options.wait;
        let input = self.options.input;
        let extractor = self.extractor.clone();
        let events = self.events.as_mut().ok_or(SensorError::TaskStopped)?;
        let presentations = &mut self.presentations;
        let sensor = &self.options.name;
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(SensorEvent::Presence { present, .. })) => {
                        presentations.presence(present);
                    }
                    Ok(Some(SensorEvent::Frame(frame))) => {
                        let received = frame.received.instant;
                        if presentations.admits(received).is_err() {
                            continue;
                        }
                        let extraction = tokio::task::spawn_blocking(move || {
                            extractor.extract_probe(frame.image.as_gray(), input)
                        })
                        .await
                        .map_err(|_| SensorError::ExtractionCrashed)?;
                        return Ok(Capture {
                            received,
                            extraction,
                        });
                    }
                    Ok(Some(SensorEvent::Problem(error))) => news(SensorNews::Problem(error)),
                    Ok(Some(SensorEvent::Disconnected { error, retry_in })) => {
                        news(SensorNews::Disconnected { error, retry_in });
                    }
                    // Connected, and whatever a newer sensor crate reports.
                    Ok(Some(_)) => {}
                    Ok(None) => return Err(SensorError::TaskStopped),
                    Err(_) if presentations.waiting_for_lift() => {
                        return Err(SensorError::HandNotLifted {
                            sensor: sensor.clone(),
                            wait,
                        });
                    }
                    Err(_) => {
                        return Err(SensorError::NoFrame {
                            sensor: sensor.clone(),
                            wait,
                        });
                    }
                }
            }
        })
    }

    /// Stops the watch and the link's task (waiting for it a short while).
    pub(super) fn stop(&mut self) {
        if let Some((stop, _)) = self.watching.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), task).await });
        }
    }
}

impl Drop for StationSensor {
    fn drop(&mut self) {
        self.stop();
    }
}
