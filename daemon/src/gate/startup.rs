//! Start-up, in a safe order: durable state read back, doors driven safe and lockdown restored
//! before anything can be granted, then the link, the flusher, the extractor, the sensor, the card
//! reader and the watchdog.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use palmgate_card::host::issuer::IssuerPublicKey;
use palmgate_matcher::extract::{Extractor, InputKind};
use tokio::sync::mpsc;

use super::GateError;
use super::card_worker::CardWorker;
use super::devices::{CardReader, Devices, StopSignal};
use super::door_view::DoorStates;
use super::liveness::Liveness;
use super::main_loop::{Capture, Inputs, Loop, Readiness};
use super::shutdown::Tasks;
use super::sim_control;
use super::state::lockdown::LockdownFile;
use super::state::revocation::RevocationList;
use super::state::unconfirmed_meals::UnconfirmedMealsFile;
use crate::access::{Access, AccessConfig, Input, PolicyRules, SitePolicy};
use crate::config::{CaptureMode, MatcherInput, Settings};
use crate::error_chain;
use crate::notify::Notifier;
use crate::outbox::{Outbox, OutboxOptions};

/// Loads the issuer public keys named by the configuration (hex, as written by
/// `palmgate issuer init`).
///
/// # Errors
/// A file cannot be read or holds no key.
pub fn load_issuer_keys(paths: &[PathBuf]) -> Result<Vec<IssuerPublicKey>, GateError> {
    paths
        .iter()
        .map(|path| {
            let text = crate::config::files::read_bounded_to_string(
                path,
                crate::config::files::MAX_KEY_FILE_BYTES,
            )
            .map_err(|error| GateError::IssuerKey {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            IssuerPublicKey::from_hex(text.trim()).map_err(|error| GateError::IssuerKey {
                path: path.clone(),
                reason: error.to_string(),
            })
        })
        .collect()
}

/// The lost meal answers kept before a restart. A damaged file does not stop the canteen: it is
/// set aside whole (for an operator to read) and reported, and the gate starts without it.
fn load_unconfirmed_meals(
    file: &UnconfirmedMealsFile,
) -> std::collections::BTreeMap<crate::event::CardId, crate::access::MealRequest> {
    match file.load() {
        Ok(meals) => {
            if !meals.is_empty() {
                tracing::info!(
                    cards = meals.len(),
                    "meal answers lost before the restart: their receipts are read back at the cards' next meal"
                );
            }
            meals
        }
        Err(error) => {
            match file.set_aside() {
                Ok(aside) => {
                    tracing::error!(error = %error_chain(&error), aside = %aside.display(), "the lost meal answers cannot be read: the file is set aside and their receipts will not be read back by themselves")
                }
                Err(rename) => {
                    tracing::error!(error = %error_chain(&error), rename = %error_chain(&rename), "the lost meal answers cannot be read, nor the file set aside")
                }
            }
            std::collections::BTreeMap::new()
        }
    }
}

/// A liveness counter the main loop bumps, and whether the card reader can serve a card; the
/// watchdog pings only while the counter moves and the reader serves (a gate that cannot read
/// cards is not healthy: systemd restarts it if the reader does not come back by itself).
#[derive(Debug, Clone)]
pub struct Heartbeat {
    beats: Arc<AtomicU64>,
    serving_cards: Arc<AtomicBool>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            beats: Arc::default(),
            serving_cards: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl Heartbeat {
    pub(super) fn beat(&self) {
        self.beats.fetch_add(1, Ordering::Relaxed);
    }

    /// Records whether the card reader can serve a card.
    pub fn set_serving_cards(&self, serving: bool) {
        self.serving_cards.store(serving, Ordering::Relaxed);
    }

    /// A check for [`crate::notify::run_watchdog`]: true when the loop beat since the last call
    /// and the card reader serves.
    pub fn checker(&self) -> impl FnMut() -> bool + Send + 'static {
        let counter = self.beats.clone();
        let serving = self.serving_cards.clone();
        let mut last = u64::MAX;
        move || {
            let now = counter.load(Ordering::Relaxed);
            let alive = now != last;
            last = now;
            alive && serving.load(Ordering::Relaxed)
        }
    }
}

/// A started gate: the loop's state, its inputs, and the tasks to stop at the end.
pub(super) struct Running {
    pub(super) gate: Loop,
    pub(super) inputs: Inputs,
    pub(super) heartbeat: Heartbeat,
    pub(super) tasks: Tasks,
}

/// Starts everything (see the module documentation for the order).
pub(super) async fn start<R: CardReader>(
    settings: Settings,
    devices: Devices<R>,
    notifier: Notifier,
) -> Result<Running, GateError> {
    let started = Instant::now();
    notifier.status("starting");
    let door_names: BTreeSet<String> = settings.door.keys().cloned().collect();
    let issuers = load_issuer_keys(&settings.card.issuer_keys)?;
    let rules = match &settings.card.policy_file {
        Some(path) => PolicyRules::load(path, &door_names)?,
        None => PolicyRules::allow_all(),
    };
    let meal_tally = super::meals::MealTally::new(
        rules.meals().groups().map(str::to_owned),
        super::meals::MealTally::load(&settings.storage.state_dir),
    );
    let revocation = match &settings.card.revocation_list {
        Some(path) => RevocationList::load(path)?,
        None => RevocationList::default(),
    };
    let lockdown_file = LockdownFile::in_state_dir(&settings.storage.state_dir);
    let locked_down = lockdown_file.load()?;
    let unconfirmed_meals_file = UnconfirmedMealsFile::in_state_dir(&settings.storage.state_dir);
    let unconfirmed_meals = load_unconfirmed_meals(&unconfirmed_meals_file);
    let outbox = Arc::new(Outbox::open(&OutboxOptions::from_settings(&settings))?);

    // Doors first: every output is driven safe before anything else runs.
    let Devices {
        card_reader,
        sensor,
        mut doors,
        link,
        safe_on_panic,
    } = devices;
    let (door_tx, door_rx) = mpsc::unbounded_channel();
    let door_handle = doors.spawn(move |event| {
        let _ = door_tx.send(event);
    })?;
    if safe_on_panic {
        door_handle.safe_stop().install_panic_hook();
    }
    // A lockdown outlives a restart: the doors take it back before anything can be granted.
    for door in &locked_down {
        if door_names.contains(door) {
            door_handle.set_lockdown(Some(door), true)?;
        } else {
            tracing::warn!(%door, file = %lockdown_file.path().display(), "a door in lockdown is no longer configured");
        }
    }

    let (stop_tx, stop) = StopSignal::new();
    let (link_handles, link_task) = link.start(outbox.clone(), stop.clone())?;
    let sim_control_task = match (&settings.gpio.simulated_control, doors.simulated()) {
        (Some(path), Some(gpio)) => {
            let (path, gpio, stop) = (path.clone(), gpio.clone(), stop.clone());
            tokio::spawn(async move {
                if let Err(error) = sim_control::serve(&path, gpio, stop.wait()).await {
                    tracing::error!(error = %error_chain(&error), path = %path.display(), "simulated GPIO control socket");
                }
            })
        }
        _ => tokio::spawn(async {}),
    };
    let flusher_outbox = outbox.clone();
    let flusher_stop = stop.clone();
    let flusher_task =
        tokio::spawn(async move { flusher_outbox.run_flusher(flusher_stop.wait()).await });
    let (panel, panel_task) =
        super::panel_stage::start(&settings, &issuers, &doors, outbox.clone(), stop.clone())?;

    let model = settings.matcher.model.clone();
    let extractor = tokio::task::spawn_blocking(move || match model {
        Some(path) => Extractor::from_model_file(&path),
        None => Extractor::builtin(),
    })
    .await
    .map_err(|error| GateError::Task(error.to_string()))?
    .map_err(GateError::Extractor)?;
    let input_kind = match settings.matcher.input {
        MatcherInput::Hand => InputKind::Hand,
        MatcherInput::Roi => InputKind::Roi,
    };

    let (sensor_tx, sensor_rx) = mpsc::channel(8);
    // The sensor link keeps the capture state it was last asked for and replays it after a
    // reconnection.
    let (sensor_cmd_tx, sensor_cmd_rx) = mpsc::channel(4);
    let sensor_task = sensor.spawn(sensor_tx, sensor_cmd_rx, stop.clone());

    let (card_tx, card_rx) = mpsc::channel(16);
    tracing::info!(profile = %settings.matcher.profile, "cards compare with this matcher profile");
    let card_worker = CardWorker::start(card_reader, issuers, settings.matcher.profile, card_tx)?;

    let heartbeat = Heartbeat::default();
    let watchdog_task = tokio::spawn(crate::notify::run_watchdog(
        notifier.clone(),
        heartbeat.checker(),
        stop.clone().wait(),
    ));

    let door_view = DoorStates::new(door_handle.status_watch());
    let mut access = Access::new(
        AccessConfig {
            door: settings.card.door.clone(),
            presentation_window: settings.card.presentation_window,
            verify_timeout: settings.card.verify_timeout,
        },
        SitePolicy::new(rules),
    );
    // Before any input: the loop writes the file whenever the machine's set differs from it.
    access.restore_unconfirmed_meals(unconfirmed_meals.clone());
    let mut gate = Loop {
        access,
        outbox: outbox.clone(),
        door_handle,
        card_worker,
        door_states: link_handles.door_states.clone(),
        door_view,
        held_probe: None,
        extracting: false,
        liveness: Liveness::new(settings.pad, settings.sensor.request_timeout),
        capture: Capture {
            mode: settings.sensor.capture,
            capturing: settings.sensor.capture == CaptureMode::Continuous,
            commands: sensor_cmd_tx,
        },
        readiness: Readiness {
            doors: false,
            sensor: false,
            sent: false,
            started,
        },
        revocation,
        revocation_path: settings.card.revocation_list.clone(),
        policy_path: settings.card.policy_file.clone(),
        door_names,
        lockdown_file,
        kept_unconfirmed_meals: unconfirmed_meals.clone(),
        unconfirmed_meals_file,
        meal_tally,
        state_dir: settings.storage.state_dir.clone(),
        meal_counts: link_handles.meal_counts.clone(),
        notifier,
        panel,
    };
    for door in locked_down {
        if gate.door_names.contains(&door) {
            gate.input(Input::Lockdown { door, on: true });
        }
    }
    gate.access.set_revoked(gate.revocation.cards().clone());
    for (door, status) in gate.door_view.all() {
        let _ = gate.door_states.try_send((door.clone(), status.clone()));
    }

    Ok(Running {
        gate,
        inputs: Inputs {
            cards: card_rx,
            sensor: sensor_rx,
            doors: door_rx,
            commands: link_handles.commands,
            extractor: Arc::new(extractor),
            input_kind,
        },
        heartbeat,
        tasks: Tasks {
            stop: stop_tx,
            outbox,
            link: link_task,
            sensor: sensor_task,
            watchdog: watchdog_task,
            flusher: flusher_task,
            sim_control: sim_control_task,
            panel: panel_task,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::Heartbeat;

    #[test]
    fn the_watchdog_check_fails_while_the_loop_is_stuck_or_no_card_can_be_read() {
        let heartbeat = Heartbeat::default();
        let mut check = heartbeat.checker();
        heartbeat.beat();
        assert!(check(), "a beating loop with a reader is healthy");
        assert!(!check(), "no beat since the last check");
        heartbeat.beat();
        heartbeat.set_serving_cards(false);
        assert!(
            !check(),
            "a loop that beats but cannot read cards is not healthy"
        );
        heartbeat.beat();
        heartbeat.set_serving_cards(true);
        assert!(check(), "the reader is back");
    }
}
