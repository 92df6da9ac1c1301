//! Presentation attack detection in the gate: after a frame passed quality (its template was
//! extracted) and before the card is asked, is what the sensor sees a live hand?
//!
//! Once the probe is extracted, a protocol 1.1 sensor is asked for a presentation burst
//! (`pad.burst_rounds` rounds of every band it announced); a 1.0 sensor (no bands) has no bursts,
//! and the frame the probe came from is checked alone, by the cues one frame allows
//! (docs/pad.md). When the frames are in, [`palmgate_matcher::pad::analyse`] runs on the blocking
//! pool, and its verdict is what the access machine hears:
//! - live: `PalmReady` (the probe is handed to the loop, for the card);
//! - attack: `PresentationAttack` (the probe is wiped; the machine denies and raises the alarm
//!   without asking the card);
//! - no answer, or no complete burst in time: `PalmRefused` (the probe is wiped and capture goes
//!   on, as for a frame of poor quality).
//!
//! The frames are kept only until the analysis and are wiped when dropped; the report holds no
//! image, and only the cues reach an event's detail. One presentation is checked at a time.

use std::time::{Duration, Instant};

use palmgate_matcher::Template;
use palmgate_matcher::pad::{PadDecision, PadReport, PadSettings};
use palmgate_sensor::codec::{Band, FrameFormat, SensorInfo};
use palmgate_sensor::device::{BurstFrame, BurstRequest, CapturedFrame, DeviceCommand};
use palmgate_sensor::image::PalmImage;
use tokio::sync::mpsc;

mod analysis;

use analysis::{analyse, describe, pad_band};

use super::main_loop::Loop;
use crate::access::Input;

/// The presentation check of the gate.
pub(super) struct Liveness {
    settings: PadSettings,
    /// How long the sensor has to start answering a request.
    request_timeout: Duration,
    /// The bands of the sensor's last handshake: `None` until it reported them, empty for a
    /// protocol 1.0 sensor. Either way without bands the frame is checked alone.
    bands: Option<Vec<Band>>,
    /// What the sensor offers (its `Info`).
    formats: Vec<FrameFormat>,
    /// One frame period of the sensor (a burst exposes its frames this far apart).
    frame_period: Duration,
    /// A copy of the frame being extracted, when it will be checked alone (no bands).
    taken: Option<PalmImage>,
    check: Option<Check>,
    /// Numbers checks, so that a late analysis is never taken for the current one.
    checks_begun: u64,
    results: mpsc::Sender<Checked>,
    finished: mpsc::Receiver<Checked>,
}

/// One presentation being checked.
struct Check {
    id: u64,
    probe: Probe,
    frames: Frames,
    /// When the frames must be in (while they are awaited).
    deadline: Instant,
    analysing: bool,
}

/// The probe that waits for the verdict (its templates at every pose cut, the pose found
/// first), and its stage times.
struct Probe {
    poses: Vec<Template>,
    received: Instant,
    extract: Duration,
}

/// What the analysis looks at.
enum Frames {
    /// The frame the probe came from (a sensor without bands).
    Single(PalmImage),
    /// A burst being received: the band of each frame asked for, and the frames so far.
    Burst {
        expected: Vec<Band>,
        received: Vec<BurstFrame>,
    },
}

/// An analysis that finished on the blocking pool.
pub(super) struct Checked {
    id: u64,
    report: PadReport,
    /// When the presentation's last frame arrived.
    last_frame: Instant,
    /// Time of `analyse` alone.
    elapsed: Duration,
}

/// What the check concluded, for the access machine.
enum Verdict {
    /// A live hand: its probe goes to the card.
    Live(Box<Probe>, Instant),
    /// An attack: the event detail (cues, never an image).
    Attack(String),
    /// No conclusion: why.
    Refused(String),
}

impl Liveness {
    /// A check at `settings`' profile; the sensor has `request_timeout` to start a burst.
    pub(super) fn new(settings: PadSettings, request_timeout: Duration) -> Self {
        let (results, finished) = mpsc::channel(2);
        Self {
            settings,
            request_timeout,
            bands: None,
            formats: Vec::new(),
            frame_period: Duration::from_millis(100),
            taken: None,
            check: None,
            checks_begun: 0,
            results,
            finished,
        }
    }

    /// Whether a presentation is being checked (no other frame is taken meanwhile).
    pub(super) fn busy(&self) -> bool {
        self.check.is_some()
    }

    /// A (re)connected sensor: its bands are asked anew, and a check in progress cannot finish.
    fn connected(&mut self, info: &SensorInfo) -> Option<String> {
        self.bands = None;
        self.formats.clone_from(&info.formats);
        self.frame_period = Duration::from_secs_f64(1.0 / f64::from(info.max_fps.max(1)));
        self.abandon("the sensor reconnected during the presentation check")
    }

    /// The bands the sensor announced (empty: protocol 1.0).
    fn set_bands(&mut self, bands: Vec<Band>) {
        if bands.is_empty() {
            tracing::info!(
                "palm sensor has one light (protocol 1.0): presentations are checked by the single-frame cues only"
            );
        } else {
            let names: Vec<&str> = bands.iter().map(|band| pad_band(*band).name()).collect();
            tracing::info!(bands = %names.join(","), "palm sensor bands for presentation checks");
        }
        self.bands = Some(bands);
    }

    fn has_bands(&self) -> bool {
        self.bands.as_ref().is_some_and(|bands| !bands.is_empty())
    }

    /// A frame is taken for extraction: without bands it is the one that will be checked.
    pub(super) fn frame_taken(&mut self, frame: &CapturedFrame) {
        self.taken = (!self.has_bands()).then(|| PalmImage::new(frame.image.as_gray().clone()));
    }

    /// The frame did not give a probe: nothing to check.
    fn extraction_failed(&mut self) {
        self.taken = None;
    }

    /// The probe is extracted: the check begins. Returns the burst to ask the sensor for.
    fn begin(&mut self, probe: Probe, now: Instant) -> Option<DeviceCommand> {
        self.checks_begun += 1;
        let id = self.checks_begun;
        let (frames, command, exposure) = match (&self.bands, self.taken.take()) {
            (Some(bands), _) if !bands.is_empty() => {
                let request =
                    BurstRequest::new(self.burst_format(), bands, self.settings.burst_rounds);
                let expected = request.sequence();
                let exposure = self
                    .frame_period
                    .saturating_mul(u32::try_from(expected.len()).unwrap_or(u32::MAX));
                let frames = Frames::Burst {
                    expected,
                    received: Vec::new(),
                };
                (frames, Some(DeviceCommand::Burst(request)), exposure)
            }
            (_, Some(image)) => (Frames::Single(image), None, Duration::ZERO),
            // Bands arrived between the frame and its extraction: that frame is checked alone
            // next time; this one is not checked at all, so it is refused.
            (_, None) => (
                Frames::Burst {
                    expected: Vec::new(),
                    received: Vec::new(),
                },
                None,
                Duration::ZERO,
            ),
        };
        self.check = Some(Check {
            id,
            probe,
            frames,
            deadline: now + self.request_timeout + exposure,
            analysing: false,
        });
        command
    }

    /// The frame format for bursts: lossless when the sensor offers it, since print and screen
    /// textures are a few pixels wide and JPEG blurs them.
    fn burst_format(&self) -> FrameFormat {
        [FrameFormat::Gray8, FrameFormat::Png, FrameFormat::Jpeg]
            .into_iter()
            .find(|format| self.formats.contains(format))
            .unwrap_or(FrameFormat::Png)
    }

    /// A frame of a burst: kept when it is the next one the check waits for.
    fn burst_frame(&mut self, frame: BurstFrame) {
        let Some(Check {
            frames: Frames::Burst { expected, received },
            analysing: false,
            ..
        }) = &mut self.check
        else {
            tracing::debug!(
                index = frame.index,
                "burst frame outside a presentation check"
            );
            return;
        };
        let position = received.len();
        if usize::from(frame.index) != position || expected.get(position) != Some(&frame.band) {
            tracing::warn!(
                index = frame.index,
                band = pad_band(frame.band).name(),
                expected = position,
                "burst frame out of order: ignored"
            );
            return;
        }
        received.push(frame);
    }

    /// Starts the analysis once every frame is in.
    fn analyse_when_complete(&mut self) {
        let Some(check) = &mut self.check else {
            return;
        };
        let complete = match &check.frames {
            Frames::Single(_) => true,
            Frames::Burst { expected, received } => {
                !expected.is_empty() && received.len() == expected.len()
            }
        };
        if !complete || check.analysing {
            return;
        }
        check.analysing = true;
        let frames = std::mem::replace(
            &mut check.frames,
            Frames::Burst {
                expected: Vec::new(),
                received: Vec::new(),
            },
        );
        let (id, profile, results) = (check.id, self.settings.profile, self.results.clone());
        let last_frame = match &frames {
            Frames::Single(_) => check.probe.received,
            Frames::Burst { received, .. } => received
                .iter()
                .map(|frame| frame.frame.received.instant)
                .max()
                .unwrap_or(check.probe.received),
        };
        tokio::task::spawn_blocking(move || {
            let begun = Instant::now();
            let report = analyse(&frames, profile);
            let elapsed = begun.elapsed();
            // The frames are wiped here, once analysed.
            drop(frames);
            let _ = results.blocking_send(Checked {
                id,
                report,
                last_frame,
                elapsed,
            });
        });
    }

    /// Waits for the next finished analysis.
    pub(super) async fn finished(&mut self) -> Option<Checked> {
        self.finished.recv().await
    }

    /// The verdict of a finished analysis (`None`: not the current check's).
    fn verdict(&mut self, checked: Checked) -> Option<Verdict> {
        if self
            .check
            .as_ref()
            .is_none_or(|check| check.id != checked.id)
        {
            return None;
        }
        let check = self.check.take()?;
        let report = &checked.report;
        let score = report.score.unwrap_or(f32::NAN);
        let pad_ms = checked.elapsed.as_secs_f64() * 1000.0;
        Some(match report.decision {
            PadDecision::Live => {
                tracing::debug!(score, pad_ms, "presentation check: live");
                let last_frame = checked.last_frame.max(check.probe.received);
                Verdict::Live(Box::new(check.probe), last_frame)
            }
            PadDecision::Attack => {
                let detail = describe(report, self.settings);
                tracing::warn!(score, pad_ms, %detail, "presentation attack refused");
                Verdict::Attack(detail)
            }
            PadDecision::NoAnswer => Verdict::Refused(format!(
                "the presentation check had no answer ({} cues could not run)",
                report.skipped.len()
            )),
        })
    }

    /// When the frames of the current check are due.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.check
            .as_ref()
            .filter(|check| !check.analysing)
            .map(|check| check.deadline)
    }

    /// Gives up the current check if its frames did not come in time.
    fn expired(&mut self, now: Instant) -> Option<String> {
        if self.next_deadline().is_some_and(|deadline| now >= deadline) {
            return self.abandon("the sensor did not deliver the presentation burst in time");
        }
        None
    }

    /// Drops the current check (its probe is wiped); returns why, when there was one.
    fn abandon(&mut self, why: &str) -> Option<String> {
        self.taken = None;
        let check = self.check.take()?;
        tracing::warn!(
            reason = why,
            analysing = check.analysing,
            "presentation check abandoned"
        );
        Some(why.to_string())
    }
}

impl Loop {
    /// The sensor's handshake: a check in flight cannot finish on the new connection.
    pub(super) fn liveness_connected(&mut self, info: &SensorInfo) {
        if let Some(reason) = self.liveness.connected(info) {
            self.input(Input::PalmRefused { reason });
        }
    }

    /// The sensor's bands (protocol 1.1; empty for 1.0).
    pub(super) fn liveness_bands(&mut self, bands: Vec<Band>) {
        self.liveness.set_bands(bands);
    }

    /// The probe of a frame that passed quality: the presentation is checked before the access
    /// machine hears of it.
    pub(super) fn liveness_extracted(
        &mut self,
        poses: Vec<Template>,
        received: Instant,
        extract: Duration,
    ) {
        let probe = Probe {
            poses,
            received,
            extract,
        };
        if let Some(command) = self.liveness.begin(probe, Instant::now())
            && self.capture.commands.try_send(command).is_err()
        {
            // The check then runs out of time and the presentation is refused.
            tracing::warn!("cannot ask the sensor for a presentation burst: its queue is full");
        }
        self.liveness.analyse_when_complete();
    }

    /// The frame did not give a probe.
    pub(super) fn liveness_extraction_failed(&mut self) {
        self.liveness.extraction_failed();
    }

    /// A frame of the presentation burst.
    pub(super) fn liveness_burst_frame(&mut self, frame: BurstFrame) {
        self.liveness.burst_frame(frame);
        self.liveness.analyse_when_complete();
    }

    /// An analysis finished: the access machine hears the verdict.
    pub(super) fn liveness_checked(&mut self, checked: Checked) {
        match self.liveness.verdict(checked) {
            Some(Verdict::Live(probe, last_frame)) => {
                let Probe { poses, extract, .. } = *probe;
                self.held_probe = Some(poses);
                self.input(Input::PalmReady {
                    received: last_frame,
                    extract,
                });
            }
            Some(Verdict::Attack(detail)) => self.input(Input::PresentationAttack { detail }),
            Some(Verdict::Refused(reason)) => self.input(Input::PalmRefused { reason }),
            None => {}
        }
    }

    /// A check whose burst did not come in time is refused.
    pub(super) fn liveness_tick(&mut self, now: Instant) {
        if let Some(reason) = self.liveness.expired(now) {
            self.input(Input::PalmRefused { reason });
        }
    }
}

#[cfg(test)]
mod tests;
