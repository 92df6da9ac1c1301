//! The main loop: waits on every input (card reports, sensor events, finished extractions, door
//! events, remote commands, reload requests, the access machine's deadlines) and turns each into
//! an input of the I/O-free access machine, whose actions it carries out: verify the held probe on
//! the card, unlock or deny a door, publish an event. It holds the probe (its templates at every
//! pose cut) between extraction and verification; a probe reaches the machine only once
//! presentation attack detection ([`super::liveness`]) found a live hand.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palmgate_card::host::VerifyOutcome;
use palmgate_card::host::reader_health::ReaderHealth;
use palmgate_card::protocol::SlotKind;
use palmgate_matcher::Template;
use palmgate_matcher::extract::{Extractor, InputKind, Probe};
use palmgate_sensor::device::{self, DeviceCommand, SensorEvent};
use tokio::sync::mpsc;

use super::card_worker::{CardReport, CardWorker};
use super::door_view::DoorStates;
use super::liveness::Liveness;
use super::panel_stage::PanelStage;
use super::startup::Running;
use super::state::lockdown::LockdownFile;
use super::state::revocation::RevocationList;
use super::state::unconfirmed_meals::UnconfirmedMealsFile;
use super::{CAPTURE, LOOP_TICK};
use crate::access::{Access, Action, Decision, Input, MealRequest, SitePolicy, State};
use crate::config::CaptureMode;
use crate::error_chain;
use crate::event::{CardId, EventKind, NewEvent, Outcome, Reason, Timestamp};
use crate::mqtt::{RetainedDoorState, VerifiedCommand};
use crate::notify::Notifier;
use crate::outbox::Outbox;

/// What the loop waits on besides its own state.
pub(super) struct Inputs {
    pub(super) cards: mpsc::Receiver<CardReport>,
    pub(super) sensor: mpsc::Receiver<SensorEvent>,
    pub(super) doors: mpsc::UnboundedReceiver<palmgate_door::Event>,
    pub(super) commands: mpsc::Receiver<VerifiedCommand>,
    pub(super) extractor: Arc<Extractor>,
    pub(super) input_kind: InputKind,
}

/// When the sensor captures.
pub(super) struct Capture {
    pub(super) mode: CaptureMode,
    /// Whether the sensor was last asked to capture.
    pub(super) capturing: bool,
    pub(super) commands: mpsc::Sender<DeviceCommand>,
}

/// What `READY=1` waits for.
pub(super) struct Readiness {
    pub(super) doors: bool,
    pub(super) sensor: bool,
    pub(super) sent: bool,
    pub(super) started: Instant,
}

/// The main loop's state.
pub(super) struct Loop {
    pub(super) access: Access<SitePolicy>,
    pub(super) outbox: Arc<Outbox>,
    pub(super) door_handle: palmgate_door::GateHandle,
    pub(super) card_worker: CardWorker,
    pub(super) door_states: mpsc::Sender<(String, RetainedDoorState)>,
    pub(super) door_view: DoorStates,
    /// The probe between its presentation check and the card: its templates at every pose cut
    /// (`Probe::poses`, the pose found first). Zeroized on drop.
    pub(super) held_probe: Option<Vec<Template>>,
    pub(super) extracting: bool,
    /// Presentation attack detection between extraction and the access machine.
    pub(super) liveness: Liveness,
    pub(super) capture: Capture,
    pub(super) readiness: Readiness,
    /// The revocation list in force, and where it is kept.
    pub(super) revocation: RevocationList,
    pub(super) revocation_path: Option<PathBuf>,
    pub(super) policy_path: Option<PathBuf>,
    pub(super) door_names: BTreeSet<String>,
    /// Where the doors in lockdown are kept across restarts.
    pub(super) lockdown_file: LockdownFile,
    /// Where the lost meal answers are kept across restarts, and what was last written there.
    pub(super) unconfirmed_meals_file: UnconfirmedMealsFile,
    pub(super) kept_unconfirmed_meals: BTreeMap<CardId, MealRequest>,
    /// A canteen gate's meal counts, where they are kept, and the link's channel for them.
    pub(super) meal_tally: super::meals::MealTally,
    pub(super) state_dir: PathBuf,
    pub(super) meal_counts: mpsc::Sender<crate::mqtt::MealCounts>,
    pub(super) notifier: Notifier,
    /// Reader mode: the access panel gets the verdicts.
    pub(super) panel: Option<PanelStage>,
}

/// Runs the loop until `shutdown` completes.
pub(super) async fn run(
    mut running: Running,
    shutdown: impl Future<Output = ()>,
    mut reload: mpsc::Receiver<()>,
) -> Running {
    let Running {
        gate,
        inputs,
        heartbeat,
        ..
    } = &mut running;
    let (extract_tx, mut extract_rx) = mpsc::channel(2);
    tokio::pin!(shutdown);
    loop {
        heartbeat.beat();
        let deadline = gate
            .access
            .next_deadline()
            .into_iter()
            .chain(gate.liveness.next_deadline())
            .min();
        // At least every tick, even when a deadline is further away: the watchdog counts beats.
        let tick = tokio::time::Instant::now() + LOOP_TICK;
        let sleep = tokio::time::sleep_until(deadline.map_or(tick, |deadline| {
            tokio::time::Instant::from_std(deadline).min(tick)
        }));
        tokio::select! {
            () = &mut shutdown => break,
            () = sleep => {
                let actions = gate.access.tick(Instant::now(), Timestamp::now());
                gate.execute(actions);
                gate.liveness_tick(Instant::now());
            }
            Some(report) = inputs.cards.recv() => {
                if let CardReport::ReaderHealth(health) = &report {
                    heartbeat.set_serving_cards(health.is_available());
                }
                gate.card_report(report);
            }
            Some(event) = inputs.sensor.recv() => {
                if let Some(frame) = gate.sensor_event(event) {
                    gate.extracting = true;
                    let extractor = inputs.extractor.clone();
                    let input_kind = inputs.input_kind;
                    let extract_tx = extract_tx.clone();
                    tokio::task::spawn_blocking(move || {
                        let begun = Instant::now();
                        let result = extractor.extract_probe(frame.image.as_gray(), input_kind);
                        let _ = extract_tx.blocking_send((result, frame.received.instant, begun.elapsed()));
                    });
                }
            }
            Some((result, received, extract)) = extract_rx.recv() => gate.extracted(result, received, extract),
            Some(checked) = gate.liveness.finished() => gate.liveness_checked(checked),
            Some(event) = inputs.doors.recv() => gate.door_event(event),
            Some(command) = inputs.commands.recv() => gate.command(command),
            Some(()) = reload.recv() => gate.reload(),
        }
        gate.steer_capture();
    }
    running
}

impl Loop {
    /// In `on_card` mode, captures while a card waits for a palm, and after a decision until the
    /// hand that served it has left.
    fn steer_capture(&mut self) {
        if self.capture.mode != CaptureMode::OnCard {
            return;
        }
        // After a decision the sensor keeps watching until the hand that served it is gone: a
        // sensor that is off cannot report the lift, and the next card would get that hand.
        let wanted = matches!(self.access.state(), State::CardWaitingPalm { .. })
            || self.access.palm_spent();
        if wanted == self.capture.capturing {
            return;
        }
        let command = if wanted {
            DeviceCommand::StartCapture(CAPTURE)
        } else {
            DeviceCommand::StopCapture
        };
        // When the queue is full the next turn of the loop tries again.
        if self.capture.commands.try_send(command).is_ok() {
            self.capture.capturing = wanted;
            if wanted {
                tracing::debug!("palm capture started for the card presented");
            } else {
                tracing::debug!("palm capture stopped");
            }
        }
    }

    pub(super) fn input(&mut self, input: Input) {
        let actions = self.access.handle(Instant::now(), Timestamp::now(), input);
        self.execute(actions);
        self.keep_unconfirmed_meals();
    }

    /// Writes the lost meal answers to the state directory when they changed.
    fn keep_unconfirmed_meals(&mut self) {
        if self.access.unconfirmed_meals() == &self.kept_unconfirmed_meals {
            return;
        }
        let meals = self.access.unconfirmed_meals().clone();
        match self.unconfirmed_meals_file.save(&meals) {
            Ok(()) => self.kept_unconfirmed_meals = meals,
            // Still in memory: the receipt is read back at the card's next meal unless the gate
            // restarts first. Tried again at the next change.
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "cannot record the lost meal answers: a restart would forget them")
            }
        }
    }

    fn execute(&mut self, actions: Vec<Action>) {
        let actions = match &mut self.panel {
            Some(panel) => panel.route(actions),
            None => actions,
        };
        for action in actions {
            match action {
                Action::Verify => match self.held_probe.take() {
                    Some(probe) => self.card_worker.verify(probe),
                    None => self.input(Input::VerifyFailed {
                        reason: "no probe template held".to_string(),
                    }),
                },
                Action::VerifyForMeal { meal, recover } => match self.held_probe.take() {
                    Some(probe) => {
                        let step = super::meals::MealStep { meal, recover };
                        self.card_worker.verify_for_meal(probe, step);
                    }
                    None => self.input(Input::VerifyFailed {
                        reason: "no probe template held".to_string(),
                    }),
                },
                Action::DiscardProbe => self.held_probe = None,
                Action::Unlock { door, unlock } => {
                    if let Err(error) = self.door_handle.grant_for(&door, unlock) {
                        tracing::error!(%door, error = %error_chain(&error), "cannot unlock");
                    }
                }
                Action::Deny { door } => {
                    if let Err(error) = self.door_handle.deny(&door) {
                        tracing::warn!(%door, error = %error_chain(&error), "cannot show the denial");
                    }
                }
                Action::Publish(event) => {
                    self.count_meal(&event);
                    self.publish(event);
                }
            }
        }
    }

    pub(super) fn publish(&self, event: NewEvent) {
        match self.outbox.append(event) {
            Ok(event) => tracing::info!(
                id = event.id,
                kind = %event.kind,
                door = event.door.as_deref().unwrap_or("-"),
                reason = event.reason.as_ref().map_or("-", Reason::as_str),
                "event"
            ),
            Err(error) => tracing::error!(error = %error_chain(&error), "event not recorded"),
        }
    }

    /// The reader came or went: the facility manager sees it (an event), and so does systemd's
    /// status line; the watchdog follows it (see [`super::Heartbeat`]).
    fn reader_health(&mut self, health: &ReaderHealth) {
        use palmgate_card::host::reader_health::UnavailableReason;
        let event = match health {
            ReaderHealth::Available { readers } => {
                tracing::info!(%readers, "card reader available");
                self.notifier.status("card reader available");
                NewEvent::new(EventKind::ReaderAvailable, Timestamp::now())
                    .result(Outcome::Info)
                    .detail(readers.clone())
            }
            ReaderHealth::Unavailable { reason } => {
                tracing::error!(%reason, "card reader unavailable");
                self.notifier
                    .status(&format!("card reader unavailable: {reason}"));
                let code = match reason {
                    UnavailableReason::NoMatchingReader { .. } => Reason::NO_MATCHING_READER,
                    _ => Reason::SERVICE_UNAVAILABLE,
                };
                NewEvent::new(EventKind::ReaderUnavailable, Timestamp::now())
                    .result(Outcome::Alarm)
                    .reason(code)
                    .detail(reason.to_string())
            }
            _ => return,
        };
        self.publish(event);
    }

    fn card_report(&mut self, report: CardReport) {
        let card_id = |bytes: [u8; 16]| CardId::new(&bytes);
        match report {
            CardReport::Presented { card_id: id, read } => match card_id(id) {
                Some(card) => match self.panel.as_ref().and_then(|p| p.refusal(&card)) {
                    Some(reason) => self.input(Input::CardRejected {
                        card: Some(card),
                        reason,
                    }),
                    None => self.input(Input::CardPresented { card, read }),
                },
                None => self.input(Input::CardRejected {
                    card: None,
                    reason: "empty card id".to_string(),
                }),
            },
            CardReport::Rejected {
                card_id: id,
                reason,
            } => {
                self.input(Input::CardRejected {
                    card: id.and_then(card_id),
                    reason,
                });
            }
            CardReport::Removed => self.input(Input::CardRemoved),
            CardReport::Verified {
                outcome, elapsed, ..
            } => {
                let decision = match outcome {
                    VerifyOutcome::Match { slot_kind, .. } => Decision::Match {
                        duress: slot_kind == SlotKind::Duress,
                    },
                    VerifyOutcome::NoMatch { tries_left } => Decision::NoMatch { tries_left },
                    VerifyOutcome::Blocked => Decision::Blocked,
                };
                self.input(Input::CardDecision { decision, elapsed });
            }
            report @ CardReport::MealDecision { .. } => self.meal_decision(report),
            CardReport::VerifyFailed { reason, .. } => self.input(Input::VerifyFailed { reason }),
            CardReport::ReaderHealth(health) => self.reader_health(&health),
            CardReport::MonitorStopped { reason } => {
                tracing::error!(%reason, "card reader watch stopped");
                self.notifier.status("card reader unavailable");
            }
        }
    }

    /// Returns a frame to extract, when the presentation wants one and none is being extracted.
    fn sensor_event(&mut self, event: SensorEvent) -> Option<device::CapturedFrame> {
        match event {
            SensorEvent::Connected(info) => {
                tracing::info!(?info, "palm sensor connected");
                self.liveness_connected(&info);
                self.readiness.sensor = true;
                self.maybe_ready();
                None
            }
            SensorEvent::Frame(frame) => {
                // In on_card mode a frame still in flight after the capture stopped is dropped:
                // a palm is taken only for the card that asked for it. A hand that already served
                // a decision is not taken again until it has left the sensor.
                let wants_palm = self
                    .access
                    .wants_palm(self.capture.mode == CaptureMode::Continuous);
                let take = wants_palm && !self.extracting && !self.liveness.busy();
                if take {
                    self.liveness.frame_taken(&frame);
                }
                take.then_some(frame)
            }
            SensorEvent::Bands(bands) => {
                self.liveness_bands(bands);
                None
            }
            SensorEvent::BurstFrame(frame) => {
                self.liveness_burst_frame(frame);
                None
            }
            SensorEvent::Presence { present, .. } => {
                self.input(Input::HandPresence { present });
                None
            }
            SensorEvent::Disconnected { error, retry_in } => {
                tracing::warn!(error = %error_chain(&error), ?retry_in, "palm sensor disconnected");
                self.notifier.status("palm sensor disconnected");
                None
            }
            SensorEvent::Problem(error) => {
                tracing::warn!(error = %error_chain(&error), "palm sensor problem");
                None
            }
            _ => None,
        }
    }

    fn extracted(
        &mut self,
        result: Result<Probe, palmgate_matcher::extract::ExtractError>,
        received: Instant,
        extract: Duration,
    ) {
        self.extracting = false;
        match result {
            // Quality passed: presentation attack detection comes before the access machine. The
            // card gets every pose; the found pose's extraction (a copy of the first) is wiped.
            Ok(probe) => self.liveness_extracted(probe.poses, received, extract),
            Err(error) => {
                self.liveness_extraction_failed();
                self.input(Input::PalmRefused {
                    reason: error_chain(&error),
                });
            }
        }
    }

    fn door_event(&mut self, event: palmgate_door::Event) {
        use palmgate_door::EventKind as DoorKind;
        if matches!(event.kind, DoorKind::Ready) {
            self.readiness.doors = true;
            self.maybe_ready();
        }
        if let Some(panel) = &self.panel {
            panel.door_event(&event);
        }
        for state in self.door_view.apply(&event) {
            let _ = self.door_states.try_send(state);
        }
        match NewEvent::from_door_event(&event, Timestamp::now()) {
            Some(record) => self.publish(record),
            None => tracing::warn!(kind = event.kind.name(), "door event not recorded"),
        }
    }

    fn maybe_ready(&mut self) {
        if self.readiness.sent || !(self.readiness.doors && self.readiness.sensor) {
            return;
        }
        self.readiness.sent = true;
        let elapsed = self.readiness.started.elapsed();
        tracing::info!(start_ms = elapsed.as_millis(), "gate ready");
        self.notifier.ready("gate ready");
    }
}
