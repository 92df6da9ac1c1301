//! The card worker: one thread that owns the PC/SC connection.
//!
//! PC/SC calls block, so they run here and never on the async threads. The worker reads the card
//! as soon as it is presented (identity and certificate, checked against the configured issuers:
//! a card that fails is reported at once, before any palm capture), keeps the connection, and runs
//! the secure verification when the gate has a probe (its templates at every pose cut). Events go
//! out on a tokio channel.
//!
//! The worker is generic over the [`CardReader`] (the PC/SC reader in production, the applet
//! in-process in tests): it only watches presence and opens [`Card`]s over the reader's transport.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palmgate_card::host::issuer::IssuerPublicKey;
use palmgate_card::host::pcsc::{CardEvent, MonitorEvent};
use palmgate_card::host::reader_health::ReaderHealth;
use palmgate_card::host::{Card, CardError, VerifiedCard, VerifyOutcome};
use palmgate_matcher::Profile;
use palmgate_matcher::template::Template;
use tokio::sync::mpsc;

use super::devices::{CardPresence, CardReader};
use super::meals::{MealStep, MealStepResult};
use crate::error_chain;

/// What the worker reports.
#[derive(Debug)]
pub enum CardReport {
    /// A genuine-looking card: its certificate verified against a configured issuer. Whether it
    /// is the genuine card is proven only by the secure session at verification.
    Presented {
        /// The certified card id.
        card_id: [u8; 16],
        /// Time to read and check the card.
        read: Duration,
    },
    /// A card that cannot be used: not a palmgate card, unknown issuer, malformed answers.
    Rejected {
        /// The card id it claims, when it could be read.
        card_id: Option<[u8; 16]>,
        /// Why, for the event (no secrets in it).
        reason: String,
    },
    /// The card left the reader.
    Removed,
    /// The card's decision on a probe.
    Verified {
        /// Card id of the card that decided.
        card_id: [u8; 16],
        /// Match (normal or duress), no match, or blocked.
        outcome: VerifyOutcome,
        /// Session + probe + decision.
        elapsed: Duration,
    },
    /// At a canteen gate: the palm matched and the card answered the meal in the same session.
    MealDecision {
        /// Card id of the card that decided.
        card_id: [u8; 16],
        /// A duress slot matched.
        duress: bool,
        /// The meal step's answers.
        result: MealStepResult,
        /// Session + probe + decision + meal.
        elapsed: Duration,
    },
    /// The verification could not complete (card pulled, authentication failed, …): deny.
    VerifyFailed {
        /// Card id, when a card was there.
        card_id: Option<[u8; 16]>,
        /// Why.
        reason: String,
    },
    /// The reader became available or unavailable (pcscd stopped or back, reader unplugged or
    /// plugged back: the PC/SC monitor reconnects by itself).
    ReaderHealth(ReaderHealth),
    /// The reader watch ended for good; the gate cannot read cards until restarted.
    MonitorStopped {
        /// Why.
        reason: String,
    },
}

/// Connection attempts after the first, and the pause between them.
const CONNECT_RETRIES: u32 = 3;
const CONNECT_RETRY_DELAY: Duration = Duration::from_millis(50);

enum Input {
    Presence(CardEvent),
    Health(ReaderHealth),
    /// The probe's templates at every pose cut (the pose found first).
    Verify(Vec<Template>, Option<MealStep>),
    MonitorEnded(String),
    Stop,
}

/// Handle to the card worker thread.
pub struct CardWorker {
    input: std_mpsc::Sender<Input>,
    thread: Option<JoinHandle<()>>,
    forwarder: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for CardWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardWorker").finish_non_exhaustive()
    }
}

/// Errors starting the worker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardWorkerError {
    /// pcscd cannot be reached or no reader matches.
    #[error("cannot watch card readers matching \"{pattern}\"")]
    Monitor {
        /// The configured reader pattern.
        pattern: String,
        /// The PC/SC error.
        #[source]
        source: palmgate_card::host::TransportError,
    },
    /// The reader is watched already (an in-process reader gives its presence events once).
    #[error("the card reader is watched already")]
    AlreadyWatched,
    /// The thread could not be started.
    #[error("cannot start the card worker thread")]
    Thread(#[source] std::io::Error),
}

impl CardWorker {
    /// Starts watching `reader` for cards; reports go to `reports`. Cards compare probes with the
    /// threshold of `profile` (`matcher.profile`).
    pub fn start<R: CardReader>(
        mut reader: R,
        issuers: Vec<IssuerPublicKey>,
        profile: Profile,
        reports: mpsc::Sender<CardReport>,
    ) -> Result<Self, CardWorkerError> {
        let CardPresence { events, ended } = reader.watch()?;
        let (input, inbox) = std_mpsc::channel();
        let presence_input = input.clone();
        let forwarder = std::thread::Builder::new()
            .name("card-presence".into())
            .spawn(move || {
                for event in events.iter() {
                    let input = match event {
                        MonitorEvent::Card(event) => Input::Presence(event),
                        MonitorEvent::Health(health) => Input::Health(health),
                        // Kinds added later are not the worker's business.
                        _ => continue,
                    };
                    if presence_input.send(input).is_err() {
                        break;
                    }
                }
                let _ = presence_input.send(Input::MonitorEnded(ended()));
            })
            .map_err(CardWorkerError::Thread)?;
        let thread = std::thread::Builder::new()
            .name("card-worker".into())
            .spawn(move || {
                Worker {
                    reader,
                    issuers,
                    profile,
                    reports,
                    card: None,
                }
                .run(&inbox)
            })
            .map_err(CardWorkerError::Thread)?;
        Ok(Self {
            input,
            thread: Some(thread),
            forwarder: Some(forwarder),
        })
    }

    /// Asks the card to compare the probe, its templates at every pose cut (`poses`, the pose
    /// found first), with its enrolled templates. The answer arrives as a
    /// [`CardReport::Verified`] or [`CardReport::VerifyFailed`].
    pub fn verify(&self, poses: Vec<Template>) {
        let _ = self.input.send(Input::Verify(poses, None));
    }

    /// As [`CardWorker::verify`], then on a match the meal step in the same session. The answer
    /// arrives as a [`CardReport::MealDecision`] (after a match), a [`CardReport::Verified`]
    /// (no match, blocked) or a [`CardReport::VerifyFailed`].
    pub fn verify_for_meal(&self, poses: Vec<Template>, step: MealStep) {
        let _ = self.input.send(Input::Verify(poses, Some(step)));
    }

    /// Stops the worker (the presence watch ends with the process; its thread is detached).
    pub fn stop(mut self) {
        let _ = self.input.send(Input::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        // The presence forwarder blocks in SCardGetStatusChange until the monitor is stopped,
        // which happens when it notices the worker is gone; do not wait for it here.
        drop(self.forwarder.take());
    }
}

struct Worker<R: CardReader> {
    reader: R,
    issuers: Vec<IssuerPublicKey>,
    profile: Profile,
    reports: mpsc::Sender<CardReport>,
    card: Option<(Card<R::Transport>, VerifiedCard)>,
}

impl<R: CardReader> Worker<R> {
    fn run(mut self, inbox: &std_mpsc::Receiver<Input>) {
        for input in inbox.iter() {
            match input {
                Input::Presence(CardEvent::Inserted { .. }) => self.read_card(),
                Input::Presence(CardEvent::Removed { .. }) => {
                    self.card = None;
                    self.report(CardReport::Removed);
                }
                Input::Health(health) => {
                    if !health.is_available() {
                        // Its connection died with the reader (or pcscd).
                        self.card = None;
                    }
                    self.report(CardReport::ReaderHealth(health));
                }
                Input::Verify(poses, meal) => self.verify(&poses, meal.as_ref()),
                Input::MonitorEnded(reason) => self.report(CardReport::MonitorStopped { reason }),
                Input::Stop => return,
            }
        }
    }

    fn report(&self, report: CardReport) {
        let _ = self.reports.blocking_send(report);
    }

    fn read_card(&mut self) {
        let started = Instant::now();
        self.card = None;
        let mut card = match self.connect() {
            Ok(card) => card,
            Err(error) => {
                let reason = format!("not a palmgate card: {}", error_chain(&error));
                return self.report(CardReport::Rejected {
                    card_id: None,
                    reason,
                });
            }
        };
        let claimed = claimed_id(&card);
        match card.verify_certificate(&self.issuers) {
            Ok(verified) => {
                let card_id = verified.card_id;
                self.card = Some((card, verified));
                self.report(CardReport::Presented {
                    card_id,
                    read: started.elapsed(),
                });
            }
            Err(error) => {
                let reason = format!("card refused: {}", error_chain(&error));
                self.report(CardReport::Rejected {
                    card_id: claimed,
                    reason,
                });
            }
        }
    }

    /// Connects and SELECTs. Right after a card swap pcscd may still report the previous card
    /// (`NotTransacted`, `ResetCard`): the transport is retried a few times before giving up.
    fn connect(&mut self) -> Result<Card<R::Transport>, CardError> {
        let mut attempt = 0;
        loop {
            match self.reader.connect() {
                Ok(transport) => return Card::open(transport),
                Err(error) if attempt < CONNECT_RETRIES => {
                    tracing::debug!(error = %error_chain(&error), attempt, "card connection retried");
                    attempt += 1;
                    std::thread::sleep(CONNECT_RETRY_DELAY);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    fn verify(&mut self, poses: &[Template], meal: Option<&MealStep>) {
        let Some((mut card, verified)) = self.card.take() else {
            let reason = "no card in the reader".to_string();
            return self.report(CardReport::VerifyFailed {
                card_id: None,
                reason,
            });
        };
        let card_id = verified.card_id;
        let compared = card.probe_poses_compared(poses.len());
        if compared < poses.len() {
            let (major, minor) = card.identity().applet_version;
            tracing::info!(
                applet = %format!("{major}.{minor}"),
                poses = poses.len(),
                compared,
                "the card predates probe poses: it compares the pose found only"
            );
        }
        let started = Instant::now();
        let answered = card.open_session(&verified).and_then(|mut session| {
            let outcome = session.verify_palm_posed(self.profile, poses)?;
            Ok(match (outcome, meal) {
                // The meal step needs the match of this very session.
                (VerifyOutcome::Match { slot_kind, .. }, Some(step)) => {
                    let (result, healthy) = super::meals::redeem(&mut session, step);
                    Answered::Meal {
                        duress: slot_kind == palmgate_card::protocol::SlotKind::Duress,
                        result,
                        healthy,
                    }
                }
                (outcome, _) => Answered::Palm(outcome),
            })
        });
        let outcome = match answered {
            Ok(Answered::Meal {
                duress,
                result,
                healthy,
            }) => {
                if healthy {
                    self.card = Some((card, verified));
                }
                return self.report(CardReport::MealDecision {
                    card_id,
                    duress,
                    result,
                    elapsed: started.elapsed(),
                });
            }
            Ok(Answered::Palm(outcome)) => Ok(outcome),
            Err(error) => Err(error),
        };
        match outcome {
            Ok(outcome) => {
                let elapsed = started.elapsed();
                // The connection stays for another presentation of the same card.
                self.card = Some((card, verified));
                self.report(CardReport::Verified {
                    card_id,
                    outcome,
                    elapsed,
                });
            }
            Err(error) => {
                // Whatever failed (authentication, card pulled, garbage), the connection is not
                // trusted again: the card must be presented anew.
                let reason = error_chain(&error);
                self.report(CardReport::VerifyFailed {
                    card_id: Some(card_id),
                    reason,
                });
            }
        }
    }
}

/// What a verification session answered.
enum Answered {
    /// The palm decision (no meal step: not a canteen gate, or no match).
    Palm(VerifyOutcome),
    /// A match at a canteen gate, and the meal step; `healthy` when no card error occurred.
    Meal {
        duress: bool,
        result: MealStepResult,
        healthy: bool,
    },
}

fn claimed_id<T: palmgate_card::host::CardTransport>(card: &Card<T>) -> Option<[u8; 16]> {
    Some(card.identity().card_id)
}

#[cfg(test)]
mod tests;
