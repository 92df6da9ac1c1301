//! Reader mode (`[panel]`): the gate in front of an existing access panel
//! (docs/panel-integration.md).
//!
//! The gate verifies the person (card, palm on the card) and the panel decides: after a grant the
//! person's credential number goes to the panel, after a duress match the duress number, after a
//! denial the configured denial code or nothing ([`PanelStage::route`]). The gate's own door
//! actions of a presentation are dropped unless `drive_door` is set. A card without a credential
//! number in the signed map is refused as it is presented ([`PanelStage::refusal`]).
//!
//! The panel's side runs in its own task ([`run`]): the OSDP PD's reports, the reader LED and
//! buzzer the panel commands (on the `[panel.feedback]` pins), and the presentation events held
//! until the panel has answered ([`answers`]), then published.
//!
//! # Layout
//! - [`routing`]: which actions go to the panel (I/O-free).
//! - [`answers`]: the panel's answer attached to the event (I/O-free).
//! - [`alarms`]: `alarm.panel_link` for a refused secure channel or a failed link (I/O-free).
//! - [`link`]: the OSDP serial link lost and back: when to open the port again, one alarm per
//!   outage and `panel.link_restored` (I/O-free).
//! - `pd_log`: the PD's reports in the log.
//! - this module: start-up, the stage the main loop calls, the panel task.

pub(crate) mod alarms;
pub(crate) mod answers;
pub(crate) mod link;
mod pd_log;
pub(crate) mod routing;

use std::sync::Arc;
use std::time::Instant;

use palmgate_card::host::issuer::IssuerPublicKey;
use palmgate_door::{Backend, GpioError};
use palmgate_panel::config::{PanelProtocol, PanelSettings};
use palmgate_panel::feedback::{FeedbackPins, ReaderFeedback};
use palmgate_panel::osdp::pd::PdEvent;
use palmgate_panel::osdp::serial::{LinkEvent, PdRequest};
use palmgate_panel::output::{PanelOutput, Transport, Verdict, start_osdp};
use palmgate_panel::wiegand::{WiegandEmitter, WiegandError};
use palmgate_panel::{Credential, CredentialMap, MapError, PanelError};
use palmgate_sensor::device::Backoff;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::alarms::PanelAlarms;
use self::answers::Answers;
use self::link::{LinkAction, LinkInput, PanelLink, RECONNECT_BACKOFF};
use super::devices::StopSignal;
use crate::access::Action;
use crate::config::Settings;
use crate::doors::Doors;
use crate::error_chain;
use crate::event::{CardId, NewEvent, Reason, Timestamp};
use crate::outbox::Outbox;

/// Why reader mode could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PanelStartError {
    /// The credential map is missing, unsigned or invalid.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The OSDP port or its state files cannot be used.
    #[error(transparent)]
    Output(#[from] PanelError),
    /// A Wiegand or feedback pin cannot be claimed.
    #[error("panel GPIO")]
    Gpio(#[from] GpioError),
    /// The Wiegand emitter cannot start.
    #[error(transparent)]
    Wiegand(#[from] WiegandError),
}

/// An event held for the panel's answer.
#[derive(Debug)]
struct Held {
    event: NewEvent,
    credential: Credential,
    queued: Instant,
}

/// What the main loop calls in reader mode.
pub(crate) struct PanelStage {
    output: PanelOutput,
    drive_door: bool,
    reader_door: String,
    /// To the PD task (OSDP only): the reader's tamper state.
    requests: Option<mpsc::Sender<PdRequest>>,
    /// To the panel task: events waiting for the panel's answer (OSDP only).
    held: mpsc::UnboundedSender<Held>,
}

impl std::fmt::Debug for PanelStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanelStage")
            .field("drive_door", &self.drive_door)
            .finish_non_exhaustive()
    }
}

/// Starts reader mode when `[panel]` is configured: loads the signed credential map, claims the
/// panel's pins on the doors' GPIO backend, opens the OSDP port (or starts the Wiegand emitter)
/// and spawns the panel task. Without `[panel]`: no stage, and a task that ends at once.
///
/// # Errors
/// The map, the port, a pin or the emitter cannot be used.
pub(crate) fn start(
    settings: &Settings,
    issuers: &[IssuerPublicKey],
    doors: &Doors,
    outbox: Arc<Outbox>,
    stop: StopSignal,
) -> Result<(Option<PanelStage>, JoinHandle<()>), PanelStartError> {
    let Some(panel) = &settings.panel else {
        return Ok((None, tokio::spawn(async {})));
    };
    let map = CredentialMap::load(&panel.credential_map, issuers)?;
    // The doors' backend: on the simulated one the panel's pins show on the same control socket.
    let mut gpio: Box<dyn Backend> = match doors.simulated() {
        Some(simulated) => Box::new(simulated.clone()),
        None => crate::doors::open_backend(settings.gpio.backend)?.0,
    };
    let pins = feedback_pins(panel, gpio.as_mut())?;
    let (transport, link, requests) = match &panel.protocol {
        PanelProtocol::Osdp(osdp) => {
            let link = start_osdp(osdp)?;
            tracing::info!(
                device = %osdp.device,
                address = link.in_force.address,
                baud = link.in_force.baud,
                set_by_panel = link.set_by_panel,
                secure_required = osdp.require_secure,
                "reader mode: OSDP peripheral device started"
            );
            let requests = link.requests.clone();
            (
                Transport::Osdp(requests.clone()),
                Some(link),
                Some(requests),
            )
        }
        PanelProtocol::Wiegand(wiegand) => {
            let idle = !wiegand.active;
            let emitter = WiegandEmitter::spawn(
                gpio.output(wiegand.d0_pin, idle)?,
                gpio.output(wiegand.d1_pin, idle)?,
                wiegand.active,
                wiegand.timing(),
            )?;
            tracing::info!(
                d0 = wiegand.d0_pin,
                d1 = wiegand.d1_pin,
                "reader mode: Wiegand output started"
            );
            (Transport::Wiegand(emitter), None, None)
        }
    };
    let (held, held_rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(
        link.map(|link| OsdpParts {
            events: link.events,
            task: link.task,
            requests: link.requests,
        }),
        held_rx,
        pins,
        outbox,
        RECONNECT_BACKOFF,
        stop,
    ));
    let stage = PanelStage {
        output: PanelOutput::new(panel, map, transport),
        drive_door: panel.drive_door,
        reader_door: settings.card.door.clone(),
        requests,
        held,
    };
    Ok((Some(stage), task))
}

fn feedback_pins(
    panel: &PanelSettings,
    gpio: &mut dyn Backend,
) -> Result<Option<FeedbackPins>, GpioError> {
    let Some(feedback) = &panel.feedback else {
        return Ok(None);
    };
    let off = !feedback.active;
    FeedbackPins::new(
        gpio.output(feedback.green_led_pin, off)?,
        gpio.output(feedback.red_led_pin, off)?,
        gpio.output(feedback.buzzer_pin, off)?,
        feedback.active,
    )
    .map(Some)
}

fn card_number(card: &CardId) -> Option<palmgate_panel::credential_map::CardId> {
    card.as_bytes().try_into().ok()
}

impl PanelStage {
    /// Why a presented card cannot be used in reader mode (no credential number), if it cannot.
    pub(crate) fn refusal(&self, card: &CardId) -> Option<String> {
        let number = card_number(card);
        self.output
            .resolve(Verdict::Granted, number.as_ref())
            .err()
            .map(|error| error_chain(&error))
    }

    /// Sends a presentation's outcome to the panel and returns the actions the gate still
    /// carries out (see [`routing::route`]). The outcome's event is published with what happened
    /// at the panel: over OSDP once the panel answered ([`answers`]), over Wiegand at once.
    pub(crate) fn route(&mut self, actions: Vec<Action>) -> Vec<Action> {
        let (mut keep, presentation) = routing::route(actions, self.drive_door);
        let Some(routing::Presentation {
            verdict,
            card,
            mut event,
        }) = presentation
        else {
            return keep;
        };
        let number = card.as_ref().and_then(card_number);
        match self.output.send(verdict, number.as_ref()) {
            Ok(None) => {}
            Ok(Some(sent)) => match sent.wiegand {
                Some(frame) => {
                    add_detail(
                        &mut event,
                        format!("panel: {} sent over Wiegand", sent.credential),
                    );
                    let credential = sent.credential;
                    tokio::task::spawn_blocking(move || {
                        if let Err(error) = frame.wait() {
                            tracing::error!(%credential, error = %error_chain(&error), "Wiegand frame not sent");
                        }
                    });
                }
                None => {
                    let held = Held {
                        event,
                        credential: sent.credential,
                        queued: Instant::now(),
                    };
                    match self.held.send(held) {
                        Ok(()) => return keep,
                        Err(mpsc::error::SendError(held)) => {
                            event = held.event;
                            add_detail(
                                &mut event,
                                format!(
                                    "panel: {} queued; its answer is not awaited (the panel task stopped)",
                                    held.credential
                                ),
                            );
                        }
                    }
                }
            },
            Err(error) => {
                tracing::error!(?verdict, error = %error_chain(&error), "nothing sent to the panel");
                add_detail(
                    &mut event,
                    format!("panel: nothing sent: {}", error_chain(&error)),
                );
            }
        }
        keep.push(Action::Publish(event));
        keep
    }

    /// The reader door's tamper input is the reader's tamper state the panel reads (`osdp_LSTAT`).
    pub(crate) fn door_event(&self, event: &palmgate_door::Event) {
        use palmgate_door::EventKind;
        let tamper = match event.kind {
            EventKind::Tamper => true,
            EventKind::TamperCleared => false,
            _ => return,
        };
        if event.door.as_deref() != Some(self.reader_door.as_str()) {
            return;
        }
        if let Some(requests) = &self.requests
            && requests.try_send(PdRequest::Tamper(tamper)).is_err()
        {
            tracing::warn!(
                tamper,
                "the OSDP task did not take the reader's tamper state"
            );
        }
    }
}

fn add_detail(event: &mut NewEvent, text: String) {
    event.detail = Some(match event.detail.take() {
        Some(detail) => format!("{detail}; {text}"),
        None => text,
    });
}

fn publish(outbox: &Outbox, event: NewEvent) {
    match outbox.append(event) {
        Ok(event) => tracing::info!(
            id = event.id,
            kind = %event.kind,
            door = event.door.as_deref().unwrap_or("-"),
            reason = event.reason.as_ref().map_or("-", Reason::as_str),
            detail = event.detail.as_deref().unwrap_or("-"),
            "event"
        ),
        Err(error) => tracing::error!(error = %error_chain(&error), "event not recorded"),
    }
}

/// The OSDP task as the panel task sees it.
struct OsdpParts {
    events: mpsc::UnboundedReceiver<LinkEvent>,
    task: JoinHandle<()>,
    /// For [`PdRequest::Reopen`].
    requests: mpsc::Sender<PdRequest>,
}

/// The panel task: the PD's reports, the reader feedback the panel drives, the held events, the
/// serial link lost and opened again ([`link`]).
async fn run(
    mut osdp: Option<OsdpParts>,
    mut held: mpsc::UnboundedReceiver<Held>,
    mut pins: Option<FeedbackPins>,
    outbox: Arc<Outbox>,
    reconnect: Backoff,
    stop: StopSignal,
) {
    let mut answers = Answers::default();
    let mut alarms = PanelAlarms::default();
    let mut feedback = ReaderFeedback::new(Instant::now());
    let mut panel_link = PanelLink::new(reconnect, Instant::now());
    let stop = stop.wait();
    tokio::pin!(stop);
    loop {
        let now = Instant::now();
        let wake = [
            answers.next_deadline(),
            feedback.next_change(now),
            panel_link.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut link_input = None;
        tokio::select! {
            () = &mut stop => break,
            Some(held) = held.recv() => answers.hold(held.event, held.credential, held.queued),
            event = async {
                match osdp.as_mut() {
                    Some(parts) => parts.events.recv().await,
                    None => std::future::pending().await,
                }
            } => match event {
                Some(LinkEvent::Pd(event)) => {
                    let now = Instant::now();
                    pd_log::report(&event);
                    if let Some(alarm) = alarms.pd_event(&event, now, Timestamp::now()) {
                        publish(&outbox, alarm);
                    }
                    match &event {
                        PdEvent::Led(led) => feedback.led(led, now),
                        PdEvent::Buzzer(buzzer) => feedback.buzzer(buzzer, now),
                        _ => {}
                    }
                    answers.pd_event(&event, now);
                }
                Some(LinkEvent::Lost(error)) => {
                    let why = error_chain(&error);
                    tracing::warn!(error = %why, "OSDP link lost: opening the port again");
                    link_input = Some(LinkInput::Lost(why));
                }
                Some(LinkEvent::OpenFailed(error)) => {
                    let why = error_chain(&error);
                    // Every attempt of an outage fails the same way; the alarm already said why.
                    tracing::debug!(error = %why, "OSDP port not opened");
                    link_input = Some(LinkInput::OpenFailed(why));
                }
                Some(LinkEvent::Opened) => {
                    tracing::info!("OSDP port opened again; waiting for the panel's poll");
                    link_input = Some(LinkInput::Opened);
                }
                Some(LinkEvent::PanelHeard) => link_input = Some(LinkInput::PanelHeard),
                Some(other) => tracing::debug!(?other, "OSDP link report not handled"),
                None => {
                    if let Some(parts) = osdp.take() {
                        let why = match parts.task.await {
                            Ok(()) => "the gate's side closed".to_string(),
                            Err(error) => error.to_string(),
                        };
                        tracing::error!(error = %why, "OSDP link task stopped: the panel gets no card data until the gate restarts");
                        link_input = Some(LinkInput::TaskEnded(why));
                    }
                }
            },
            () = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
        let now = Instant::now();
        for input in link_input.into_iter().chain([LinkInput::Tick]) {
            let actions = panel_link.input(input, now, Timestamp::now());
            carry_out(actions, &mut panel_link, osdp.as_ref(), &outbox, now);
        }
        answers.set_link_down(panel_link.is_down());
        for event in answers.due(now) {
            publish(&outbox, event);
        }
        if let Some(pins) = &mut pins
            && let Err(error) = pins.show(feedback.shown(now))
        {
            tracing::warn!(error = %error_chain(&error), "reader feedback pins");
        }
    }
    // The main loop has stopped: nothing more is held after this.
    while let Ok(late) = held.try_recv() {
        answers.hold(late.event, late.credential, late.queued);
    }
    for event in answers.drain() {
        publish(&outbox, event);
    }
    if let Some(parts) = osdp {
        parts.task.abort();
    }
}

/// Does what the link's state machine decided.
fn carry_out(
    actions: Vec<LinkAction>,
    panel_link: &mut PanelLink,
    osdp: Option<&OsdpParts>,
    outbox: &Outbox,
    now: Instant,
) {
    for action in actions {
        match action {
            LinkAction::Publish(event) => publish(outbox, *event),
            LinkAction::Reopen => {
                let Some(parts) = osdp else { continue };
                if let Err(error) = parts.requests.try_send(PdRequest::Reopen) {
                    // Not even asked: a failed attempt, so the back-off goes on (the serial task
                    // drains its queue while the port is closed, so this is not expected).
                    let why = format!("the OSDP task did not take the reopen request: {error}");
                    for action in
                        panel_link.input(LinkInput::OpenFailed(why), now, Timestamp::now())
                    {
                        if let LinkAction::Publish(event) = action {
                            publish(outbox, *event);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
