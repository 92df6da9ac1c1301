//! The presentation state machine.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::meals::{MealDenial, MealEntitlement};
use super::policy::Policy;
use crate::event::{
    CardId, EventKind, Latencies, MealRecord, NewEvent, Outcome, Reason, Timestamp, millis,
};

/// How one reader's presentations are decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// The door this reader opens.
    pub door: String,
    /// Card and palm this far apart (either order) form one presentation.
    pub presentation_window: Duration,
    /// Time the card has for its decision.
    pub verify_timeout: Duration,
}

/// The card's authenticated answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A slot matched; `duress` when it was a duress slot.
    Match {
        /// A duress slot matched: open, and raise a silent alarm.
        duress: bool,
    },
    /// No slot matched.
    NoMatch {
        /// Verification tries left on the card.
        tries_left: u8,
    },
    /// The card's retry counter is exhausted: nothing was compared.
    Blocked,
}

/// What the gate asks the card to redeem at a canteen gate (REDEEM MEAL's data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MealRequest {
    /// The period number (see [`super::MealRules`]).
    pub period: u32,
    /// Meals allowed in the period.
    pub allowance: u8,
    /// The gate's time, Unix seconds (written into the receipt).
    pub gate_time: u64,
}

/// A meal receipt from the card, with the fields it signs that the events repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealReceiptInfo {
    /// The period number it was served in.
    pub period: u32,
    /// The card's count in that period after this meal.
    pub count: u8,
    /// The allowance the gate gave.
    pub allowance: u8,
    /// The gate time in the receipt (Unix seconds).
    pub gate_time: u64,
    /// The card's receipt counter.
    pub receipt_counter: u32,
    /// The receipt, hex.
    pub receipt_hex: String,
}

/// The card's answer to a meal, after a palm match in the same session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MealAnswer {
    /// Counted and signed: open once.
    Served(MealReceiptInfo),
    /// The period's meals are used up; nothing was consumed.
    AllowanceUsed {
        /// Meals the card counted in the period.
        count: u8,
        /// Meals allowed.
        allowance: u8,
    },
    /// An old card without meal entitlements.
    Unsupported,
    /// The card refused the meal and changed nothing (e.g. it served a later period: the gate's
    /// clock is behind).
    Refused {
        /// The card's refusal, in words.
        reason: String,
    },
    /// The answer to the meal was lost (card pulled, error): the card may have counted it and
    /// keeps its receipt for the next presentation.
    NotConfirmed {
        /// Why.
        reason: String,
    },
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A card whose certificate verified against a configured issuer.
    CardPresented {
        /// Certified card id.
        card: CardId,
        /// Time spent reading and checking it.
        read: Duration,
    },
    /// A card that cannot be used (not palmgate, unknown issuer, malformed).
    CardRejected {
        /// The id it claims, when readable.
        card: Option<CardId>,
        /// Why.
        reason: String,
    },
    /// The card left the reader.
    CardRemoved,
    /// The pipeline holds a fresh probe template (kept there, never here).
    PalmReady {
        /// When the frame's last byte arrived.
        received: Instant,
        /// Extraction time.
        extract: Duration,
    },
    /// A captured frame was refused (quality); capture goes on.
    PalmRefused {
        /// Why (for the event if no palm comes in time).
        reason: String,
    },
    /// Presentation attack detection refused what was presented as a palm (a print, a screen, a
    /// mould, …). The pipeline has already wiped its probe: nothing reaches a card.
    PresentationAttack {
        /// The liveness score and the cues that objected, for the events (never an image).
        detail: String,
    },
    /// The card's authenticated decision.
    CardDecision {
        /// What the card decided.
        decision: Decision,
        /// Session + probe + decision time.
        elapsed: Duration,
    },
    /// The verification did not complete (card pulled, authentication failed, …).
    VerifyFailed {
        /// Why.
        reason: String,
    },
    /// One door's lockdown on or off (signed remote command; a gate-wide one is one input per
    /// door). The door controller reports `lockdown.on` / `lockdown.off`; the machine only keeps
    /// the state: presentations at this reader are denied while its own door is in lockdown,
    /// remote unlocks while the door they name is.
    Lockdown {
        /// The door.
        door: String,
        /// On (lockdown) or off (release).
        on: bool,
    },
    /// Unlock a door (signed remote command).
    RemoteUnlock {
        /// The door.
        door: String,
        /// How long to release it (`None`: the door's own `unlock_s`).
        unlock: Option<Duration>,
    },
    /// The sensor reported a hand arriving (`true`) or leaving (`false`).
    HandPresence {
        /// Whether a hand is in front of the sensor.
        present: bool,
    },
    /// At a canteen gate: the palm matched and the card answered the meal (see
    /// [`Action::VerifyForMeal`]).
    MealDecision {
        /// A duress slot matched.
        duress: bool,
        /// The card's answer to the meal.
        answer: MealAnswer,
        /// Session + probe + decision + meal time.
        elapsed: Duration,
    },
    /// The receipt of a meal whose answer was lost, read back from the card.
    MealRecovered {
        /// The card.
        card: CardId,
        /// The receipt.
        receipt: MealReceiptInfo,
    },
}

/// What to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send the probe the pipeline holds to the card, inside a secure session.
    Verify,
    /// At a canteen gate: as [`Action::Verify`], then on a match redeem `meal` in the same
    /// session (answer: [`Input::MealDecision`]); first, when `recover` is set, read back the
    /// receipt of that earlier meal whose answer was lost ([`Input::MealRecovered`]).
    VerifyForMeal {
        /// The meal to redeem.
        meal: MealRequest,
        /// An earlier meal of this card whose answer was lost at this gate.
        recover: Option<MealRequest>,
    },
    /// Wipe the probe the pipeline holds.
    DiscardProbe,
    /// Unlock (pulse) the door.
    Unlock {
        /// The door.
        door: String,
        /// How long (`None`: the door's own `unlock_s`; a remote unlock may ask for another).
        unlock: Option<Duration>,
    },
    /// Show the denial (red light, buzzer).
    Deny {
        /// The door.
        door: String,
    },
    /// Record and publish an event.
    Publish(NewEvent),
}

/// Where the current presentation stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Nothing presented.
    Idle,
    /// A certified card passed the checks; waiting for a palm until `deadline`.
    CardWaitingPalm {
        /// The card.
        card: CardId,
        /// When the card arrived (after its read).
        arrived: Instant,
        /// Read time.
        read: Duration,
        /// End of the presentation window.
        deadline: Instant,
        /// The last refusal of a frame, if any.
        last_refusal: Option<String>,
    },
    /// A probe is held; waiting for a card until `deadline`.
    PalmWaitingCard {
        /// When its frame arrived.
        received: Instant,
        /// Extraction time.
        extract: Duration,
        /// End of the presentation window.
        deadline: Instant,
    },
    /// The card is deciding.
    Verifying {
        /// The card.
        card: CardId,
        /// Stage times so far.
        latencies: Latencies,
        /// The later of the card's arrival and the palm's frame.
        last_input: Instant,
        /// Give up then.
        deadline: Instant,
    },
    /// Decided: the card must leave the reader before it can be presented again.
    AwaitRemoval,
}

/// The access machine of one reader.
#[derive(Debug)]
pub struct Access<P> {
    config: AccessConfig,
    policy: P,
    revoked: BTreeSet<CardId>,
    /// Doors in lockdown.
    lockdown: BTreeSet<String>,
    state: State,
    /// Whether the sensor last reported a hand in front of it.
    hand_present: bool,
    /// The hand in front of the sensor has already been sent to a card: its frames are not taken
    /// again until the sensor reports it gone. One presentation of a palm serves one decision;
    /// otherwise a hand left on the sensor would be checked against the next person's card (a
    /// denial for them, and one of their card's tries spent).
    palm_spent: bool,
    /// At a canteen gate, the meal of the presentation in progress.
    meal: Option<(MealEntitlement, MealRequest)>,
    /// The card that meal was asked for.
    meal_card: Option<CardId>,
    /// Cards whose answer to a meal was lost here: their receipt is read back at their next
    /// meal. The gate keeps them in its state directory ([`Access::unconfirmed_meals`],
    /// [`Access::restore_unconfirmed_meals`]): a restart must not lose a meal's evidence.
    unconfirmed_meals: BTreeMap<CardId, MealRequest>,
}

impl<P: Policy> Access<P> {
    /// A machine in the idle state.
    pub fn new(config: AccessConfig, policy: P) -> Self {
        Self {
            config,
            policy,
            revoked: BTreeSet::new(),
            lockdown: BTreeSet::new(),
            state: State::Idle,
            hand_present: false,
            palm_spent: false,
            meal: None,
            meal_card: None,
            unconfirmed_meals: BTreeMap::new(),
        }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether a new palm frame is wanted now: a card waits for one, or (with `continuous`
    /// capture) nothing is presented yet; and the hand in front of the sensor has not already
    /// served a decision.
    pub fn wants_palm(&self, continuous: bool) -> bool {
        let wanted = match self.state {
            State::CardWaitingPalm { .. } => true,
            State::Idle => continuous,
            State::PalmWaitingCard { .. } | State::Verifying { .. } | State::AwaitRemoval => false,
        };
        wanted && !self.palm_spent
    }

    /// Whether the hand in front of the sensor has served a decision and must leave first.
    pub fn palm_spent(&self) -> bool {
        self.palm_spent
    }

    /// Whether a door is in lockdown.
    pub fn in_lockdown(&self, door: &str) -> bool {
        self.lockdown.contains(door)
    }

    /// The doors in lockdown.
    pub fn doors_in_lockdown(&self) -> &BTreeSet<String> {
        &self.lockdown
    }

    /// Whether this reader's door is in lockdown.
    fn reader_door_in_lockdown(&self) -> bool {
        self.in_lockdown(&self.config.door)
    }

    /// The cards whose answer to a meal was lost at this gate, and the meal asked for: what the
    /// gate keeps across a restart.
    pub fn unconfirmed_meals(&self) -> &BTreeMap<CardId, MealRequest> {
        &self.unconfirmed_meals
    }

    /// Takes back the lost answers kept before a restart (their receipts are read back at the
    /// card's next meal here).
    pub fn restore_unconfirmed_meals(&mut self, meals: BTreeMap<CardId, MealRequest>) {
        self.unconfirmed_meals = meals;
    }

    /// Replaces the revocation list (applies to the next card presented).
    pub fn set_revoked(&mut self, revoked: BTreeSet<CardId>) {
        self.revoked = revoked;
    }

    /// The policy in force.
    pub fn policy(&self) -> &P {
        &self.policy
    }

    /// Replaces the policy (SIGHUP).
    pub fn set_policy(&mut self, policy: P) {
        self.policy = policy;
    }

    /// When [`Access::tick`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::CardWaitingPalm { deadline, .. }
            | State::PalmWaitingCard { deadline, .. }
            | State::Verifying { deadline, .. } => Some(*deadline),
            State::Idle | State::AwaitRemoval => None,
        }
    }

    /// Handles the expiry of the current deadline, if it has passed.
    pub fn tick(&mut self, now: Instant, time: Timestamp) -> Vec<Action> {
        let mut actions = Vec::new();
        match self.state.clone() {
            State::CardWaitingPalm {
                card,
                deadline,
                last_refusal,
                read,
                ..
            } if now >= deadline => {
                let detail = match last_refusal {
                    Some(refusal) => format!(
                        "no usable palm within the presentation window (last capture: {refusal})"
                    ),
                    None => "no palm within the presentation window".to_string(),
                };
                let latencies = Latencies {
                    card_ms: Some(millis(read)),
                    ..Latencies::default()
                };
                self.deny(
                    &mut actions,
                    time,
                    Some(card),
                    (Reason::NO_PALM, Some(detail)),
                    latencies,
                );
                self.state = State::AwaitRemoval;
            }
            State::PalmWaitingCard { deadline, .. } if now >= deadline => {
                actions.push(Action::DiscardProbe);
                self.state = State::Idle;
            }
            State::Verifying {
                card,
                latencies,
                deadline,
                ..
            } if now >= deadline => {
                self.deny(
                    &mut actions,
                    time,
                    Some(card),
                    (Reason::CARD_TIMEOUT, None),
                    latencies,
                );
                self.state = State::AwaitRemoval;
            }
            _ => {}
        }
        actions
    }

    /// Handles one input.
    pub fn handle(&mut self, now: Instant, time: Timestamp, input: Input) -> Vec<Action> {
        let mut actions = self.tick(now, time);
        match input {
            Input::CardPresented { card, read } => {
                self.card_presented(&mut actions, now, time, card, read)
            }
            Input::CardRejected { card, reason } => {
                if matches!(self.state, State::PalmWaitingCard { .. }) {
                    actions.push(Action::DiscardProbe);
                }
                self.deny(
                    &mut actions,
                    time,
                    card,
                    (Reason::CARD_REJECTED, Some(reason)),
                    Latencies::default(),
                );
                self.state = State::AwaitRemoval;
            }
            Input::CardRemoved => match self.state.clone() {
                State::Verifying {
                    card, latencies, ..
                } => {
                    // A decision that still arrives is ignored: only Verifying accepts one.
                    self.deny(
                        &mut actions,
                        time,
                        Some(card),
                        (Reason::CARD_REMOVED, None),
                        latencies,
                    );
                    self.state = State::Idle;
                }
                State::CardWaitingPalm { .. } | State::AwaitRemoval => self.state = State::Idle,
                State::Idle | State::PalmWaitingCard { .. } => {}
            },
            Input::PalmReady { received, extract } => match self.state.clone() {
                State::CardWaitingPalm {
                    card,
                    arrived,
                    read,
                    ..
                } => {
                    let latencies = Latencies {
                        card_ms: Some(millis(read)),
                        capture_ms: Some(millis(received.saturating_duration_since(arrived))),
                        extract_ms: Some(millis(extract)),
                        ..Latencies::default()
                    };
                    actions.push(self.verify_action(&card));
                    self.palm_spent = self.hand_present;
                    self.state = State::Verifying {
                        card,
                        latencies,
                        last_input: received.max(arrived),
                        deadline: now + self.config.verify_timeout,
                    };
                }
                State::Idle | State::PalmWaitingCard { .. } => {
                    // The pipeline keeps only its newest probe; the window restarts with it.
                    let deadline = now + self.config.presentation_window;
                    self.state = State::PalmWaitingCard {
                        received,
                        extract,
                        deadline,
                    };
                }
                State::Verifying { .. } | State::AwaitRemoval => actions.push(Action::DiscardProbe),
            },
            Input::PalmRefused { reason } => {
                if let State::CardWaitingPalm { last_refusal, .. } = &mut self.state {
                    *last_refusal = Some(reason);
                }
            }
            Input::PresentationAttack { detail } => {
                self.presentation_attack(&mut actions, time, detail);
            }
            Input::CardDecision { decision, elapsed } => {
                if let State::Verifying {
                    card,
                    mut latencies,
                    last_input,
                    ..
                } = self.state.clone()
                {
                    latencies.match_ms = Some(millis(elapsed));
                    self.decided(
                        &mut actions,
                        now,
                        time,
                        card,
                        latencies,
                        last_input,
                        decision,
                    );
                    self.state = State::AwaitRemoval;
                }
            }
            Input::VerifyFailed { reason } => {
                if let State::Verifying {
                    card, latencies, ..
                } = self.state.clone()
                {
                    self.deny(
                        &mut actions,
                        time,
                        Some(card),
                        (Reason::VERIFICATION_FAILED, Some(reason)),
                        latencies,
                    );
                    self.state = State::AwaitRemoval;
                }
            }
            Input::MealDecision {
                duress,
                answer,
                elapsed,
            } => {
                if let State::Verifying {
                    card,
                    mut latencies,
                    last_input,
                    ..
                } = self.state.clone()
                {
                    latencies.match_ms = Some(millis(elapsed));
                    latencies.decision_ms = Some(millis(now.saturating_duration_since(last_input)));
                    self.meal_decided(&mut actions, time, card, latencies, duress, answer);
                    self.state = State::AwaitRemoval;
                } else {
                    self.meal_answered_late(&mut actions, time, answer);
                }
            }
            Input::MealRecovered { card, receipt } => {
                self.unconfirmed_meals.remove(&card);
                let period_name = self.policy.meal_period_name(receipt.period);

                let event = NewEvent::new(EventKind::MealServed, time)
                    .door(self.config.door.clone())
                    .card(card)
                    .result(Outcome::Info)
                    .reason(Reason::RECOVERED)
                    .detail(
                        "a meal receipt the card kept, read back (the one of a lost answer, or \
                         of this period's meal: a duplicate has the same card_id and \
                         receipt_counter)",
                    )
                    .meal(meal_record(&receipt, period_name, None));
                actions.push(Action::Publish(event));
            }
            Input::HandPresence { present } => {
                self.hand_present = present;
                if !present {
                    self.palm_spent = false;
                }
            }
            Input::Lockdown { door, on } => {
                if on {
                    self.lockdown.insert(door);
                } else {
                    self.lockdown.remove(&door);
                }
            }
            Input::RemoteUnlock { door, unlock } => {
                if self.in_lockdown(&door) {
                    let event = NewEvent::new(EventKind::AccessRemoteUnlock, time)
                        .door(door.clone())
                        .result(Outcome::Refused)
                        .reason(Reason::LOCKDOWN);
                    actions.push(Action::Publish(event));
                } else {
                    let event = NewEvent::new(EventKind::AccessRemoteUnlock, time)
                        .door(door.clone())
                        .result(Outcome::Granted);
                    actions.push(Action::Unlock { door, unlock });
                    actions.push(Action::Publish(event));
                }
            }
        }
        actions
    }

    fn card_presented(
        &mut self,
        actions: &mut Vec<Action>,
        now: Instant,
        time: Timestamp,
        card: CardId,
        read: Duration,
    ) {
        let latencies = Latencies {
            card_ms: Some(millis(read)),
            ..Latencies::default()
        };
        let palm = match self.state.clone() {
            State::Idle => None,
            State::PalmWaitingCard {
                received, extract, ..
            } => Some((received, extract)),
            // A second card while one is being handled: the reader reports one card at a time,
            // so this is a new presentation after a missed removal.
            State::CardWaitingPalm { .. } | State::Verifying { .. } | State::AwaitRemoval => None,
        };
        self.meal = None;
        self.meal_card = None;
        let refusal = match self.refusal_before_capture(&card, time) {
            Some(reason) => Some(reason),
            None => self.meal_before_capture(&card, time),
        };
        if let Some(reason) = refusal {
            if palm.is_some() {
                actions.push(Action::DiscardProbe);
            }
            self.deny(actions, time, Some(card), reason, latencies);
            self.state = State::AwaitRemoval;
            return;
        }
        match palm {
            Some((received, extract)) => {
                let latencies = Latencies {
                    extract_ms: Some(millis(extract)),
                    capture_ms: Some(0.0),
                    ..latencies
                };
                actions.push(self.verify_action(&card));
                // In palm-first order the hand may have left while its probe waited for the card:
                // then the next presentation is already a new one.
                self.palm_spent = self.hand_present;
                self.state = State::Verifying {
                    card,
                    latencies,
                    last_input: now.max(received),
                    deadline: now + self.config.verify_timeout,
                };
            }
            None => {
                self.state = State::CardWaitingPalm {
                    card,
                    arrived: now,
                    read,
                    deadline: now + self.config.presentation_window,
                    last_refusal: None,
                };
            }
        }
    }

    /// Opens the reader's door once for `card` and publishes `event` (the grant, or the meal
    /// served). A duress match looks like any other grant; its alarm is a separate event that only
    /// the security desk subscribes to.
    fn open_once(
        &mut self,
        actions: &mut Vec<Action>,
        time: Timestamp,
        card: CardId,
        event: NewEvent,
        duress: bool,
    ) {
        let door = self.config.door.clone();
        actions.push(Action::Unlock {
            door: door.clone(),
            unlock: None,
        });
        actions.push(Action::Publish(event));
        if duress {
            let alarm = NewEvent::new(EventKind::AlarmDuress, time)
                .door(door.clone())
                .card(card.clone())
                .result(Outcome::Alarm)
                .reason(Reason::DURESS_PALM);
            actions.push(Action::Publish(alarm));
        }
        self.policy.granted(&card, &door, time);
    }

    /// At a canteen gate, the meal the card may have now (kept for the verification), or why it
    /// may have none.
    fn meal_before_capture(
        &mut self,
        card: &CardId,
        time: Timestamp,
    ) -> Option<(Reason, Option<String>)> {
        match self.policy.meal(card, &self.config.door, time)? {
            Ok(entitlement) => {
                let request = MealRequest {
                    period: entitlement.period,
                    allowance: entitlement.allowance,
                    gate_time: u64::try_from(time.unix_ms().div_euclid(1000)).unwrap_or(0),
                };
                self.meal = Some((entitlement, request));
                self.meal_card = Some(card.clone());
                None
            }
            Err(denial) => {
                let reason = match denial {
                    MealDenial::OutsidePeriods => Reason::OUTSIDE_MEAL_PERIOD,
                    MealDenial::NotEntitled { .. } | MealDenial::NotValidToday { .. } => {
                        Reason::NOT_PERMITTED
                    }
                };
                Some((reason, Some(denial.detail())))
            }
        }
    }

    /// What to ask the card once a palm is there: at a canteen gate, the meal too.
    fn verify_action(&self, card: &CardId) -> Action {
        match &self.meal {
            Some((_, meal)) => Action::VerifyForMeal {
                meal: *meal,
                recover: self.unconfirmed_meals.get(card).copied(),
            },
            None => Action::Verify,
        }
    }

    /// A presentation refused by presentation attack detection: denied and alarmed, and no card
    /// try is spent (the card never sees it). A card waiting for a palm keeps waiting, within the
    /// same window, so that a live hand refused by mistake can be presented again; the window
    /// bounds how many attempts one card presentation allows, and each raises the alarm. The
    /// refused object must leave the sensor before another presentation is taken.
    fn presentation_attack(&mut self, actions: &mut Vec<Action>, time: Timestamp, detail: String) {
        let (card, latencies) = match &mut self.state {
            State::CardWaitingPalm {
                card,
                read,
                last_refusal,
                ..
            } => {
                *last_refusal = Some("presentation attack refused".to_string());
                let latencies = Latencies {
                    card_ms: Some(millis(*read)),
                    ..Latencies::default()
                };
                (Some(card.clone()), latencies)
            }
            State::PalmWaitingCard { .. } => {
                // Whoever is at the sensor is presenting an attack: the earlier palm is not kept
                // for a card that may come.
                actions.push(Action::DiscardProbe);
                self.state = State::Idle;
                (None, Latencies::default())
            }
            State::Idle | State::Verifying { .. } | State::AwaitRemoval => {
                (None, Latencies::default())
            }
        };
        self.palm_spent = self.hand_present;
        self.deny(
            actions,
            time,
            card.clone(),
            (Reason::PRESENTATION_ATTACK, Some(detail.clone())),
            latencies,
        );
        let mut alarm = NewEvent::new(EventKind::AlarmPresentationAttack, time)
            .door(self.config.door.clone())
            .result(Outcome::Alarm)
            .reason(Reason::PRESENTATION_ATTACK)
            .detail(detail);
        if let Some(card) = card {
            alarm = alarm.card(card);
        }
        actions.push(Action::Publish(alarm));
    }

    /// The checks that need no palm: revocation, lockdown of this reader's door, the site policy.
    fn refusal_before_capture(
        &self,
        card: &CardId,
        time: Timestamp,
    ) -> Option<(Reason, Option<String>)> {
        if self.revoked.contains(card) {
            return Some((Reason::CARD_REVOKED, None));
        }
        if self.reader_door_in_lockdown() {
            return Some((Reason::LOCKDOWN, None));
        }
        self.policy
            .check(card, &self.config.door, time)
            .err()
            .map(|refusal| (Reason::NOT_PERMITTED, Some(refusal.0)))
    }

    #[allow(clippy::too_many_arguments)]
    fn decided(
        &mut self,
        actions: &mut Vec<Action>,
        now: Instant,
        time: Timestamp,
        card: CardId,
        mut latencies: Latencies,
        last_input: Instant,
        decision: Decision,
    ) {
        match decision {
            Decision::Match { .. } if self.meal.is_some() => {
                // A canteen gate opens only on the card's receipt.
                self.deny(
                    actions,
                    time,
                    Some(card),
                    (
                        Reason::MEAL_NOT_CONFIRMED,
                        Some("the card did not answer the meal".to_string()),
                    ),
                    latencies,
                );
            }
            Decision::Match { duress } => {
                if self.reader_door_in_lockdown() {
                    return self.deny(
                        actions,
                        time,
                        Some(card),
                        (Reason::LOCKDOWN, None),
                        latencies,
                    );
                }
                latencies.decision_ms = Some(millis(now.saturating_duration_since(last_input)));
                let granted = NewEvent::new(EventKind::AccessGranted, time)
                    .door(self.config.door.clone())
                    .card(card.clone())
                    .result(Outcome::Granted)
                    .latencies(latencies);
                self.open_once(actions, time, card, granted, duress);
            }
            Decision::NoMatch { tries_left } => {
                let detail = format!("palm does not match the card ({tries_left} tries left)");
                self.deny(
                    actions,
                    time,
                    Some(card),
                    (Reason::NO_MATCH, Some(detail)),
                    latencies,
                );
            }
            Decision::Blocked => {
                self.deny(
                    actions,
                    time,
                    Some(card.clone()),
                    (
                        Reason::CARD_BLOCKED,
                        Some("card blocked: too many failed palms".to_string()),
                    ),
                    latencies,
                );
                let alarm = NewEvent::new(EventKind::AlarmCardBlocked, time)
                    .door(self.config.door.clone())
                    .card(card)
                    .result(Outcome::Alarm)
                    .reason(Reason::CARD_BLOCKED);
                actions.push(Action::Publish(alarm));
            }
        }
    }

    /// The card answered the meal after the presentation ended (timeout, card removed): nothing
    /// opens, but what the card counted is never lost.
    fn meal_answered_late(
        &mut self,
        actions: &mut Vec<Action>,
        time: Timestamp,
        answer: MealAnswer,
    ) {
        let Some((entitlement, request)) = self.meal.take() else {
            return;
        };
        let Some(card) = self.meal_card.take() else {
            return;
        };
        match answer {
            MealAnswer::Served(receipt) => {
                let event = NewEvent::new(EventKind::MealServed, time)
                    .door(self.config.door.clone())
                    .card(card)
                    .result(Outcome::Info)
                    .reason(Reason::TOO_LATE)
                    .detail("counted by the card after the gate gave up: nothing opened")
                    .meal(meal_record(
                        &receipt,
                        Some(entitlement.period_name),
                        Some(entitlement.group),
                    ));
                actions.push(Action::Publish(event));
            }
            MealAnswer::NotConfirmed { .. } => {
                self.unconfirmed_meals.insert(card, request);
            }
            MealAnswer::AllowanceUsed { .. }
            | MealAnswer::Unsupported
            | MealAnswer::Refused { .. } => {}
        }
    }

    fn meal_decided(
        &mut self,
        actions: &mut Vec<Action>,
        time: Timestamp,
        card: CardId,
        latencies: Latencies,
        duress: bool,
        answer: MealAnswer,
    ) {
        self.meal_card = None;
        let Some((entitlement, request)) = self.meal.take() else {
            // A meal answer without a meal asked: never opens.
            return self.deny(
                actions,
                time,
                Some(card),
                (
                    Reason::VERIFICATION_FAILED,
                    Some("a meal answer no meal was asked for".to_string()),
                ),
                latencies,
            );
        };
        // Whatever the answer, the session ran: an earlier lost meal was read back before it.
        self.unconfirmed_meals.remove(&card);
        let period_name = Some(entitlement.period_name.clone());
        let group = Some(entitlement.group.clone());
        match answer {
            MealAnswer::Served(receipt) => {
                if self.reader_door_in_lockdown() {
                    // Counted on the card, but the door stays shut: the receipt is still published
                    // (the card counted it) with the lockdown as the reason nothing opened.
                    let event = NewEvent::new(EventKind::MealServed, time)
                        .door(self.config.door.clone())
                        .card(card.clone())
                        .result(Outcome::Info)
                        .reason(Reason::LOCKDOWN)
                        .detail("counted by the card, but the door is in lockdown")
                        .meal(meal_record(&receipt, period_name, group));
                    actions.push(Action::Publish(event));
                    return self.deny(
                        actions,
                        time,
                        Some(card),
                        (Reason::LOCKDOWN, None),
                        latencies,
                    );
                }
                let served = NewEvent::new(EventKind::MealServed, time)
                    .door(self.config.door.clone())
                    .card(card.clone())
                    .result(Outcome::Granted)
                    .latencies(latencies)
                    .meal(meal_record(&receipt, period_name, group));
                self.open_once(actions, time, card, served, duress);
            }
            MealAnswer::AllowanceUsed { count, allowance } => {
                let name = &entitlement.period_name;
                let detail = format!("{name}: {count} of {allowance} meal(s) already served");
                let meal = MealRecord {
                    period: request.period,
                    period_name,
                    group,
                    count,
                    allowance,
                    receipt: None,
                    receipt_counter: None,
                    gate_time: None,
                };
                self.deny_with_meal(
                    actions,
                    time,
                    Some(card),
                    (Reason::MEAL_ALLOWANCE_USED, Some(detail)),
                    latencies,
                    Some(meal),
                );
            }
            MealAnswer::Unsupported => self.deny(
                actions,
                time,
                Some(card),
                (
                    Reason::MEAL_UNSUPPORTED,
                    Some("this card cannot count meals (issued before canteen gates)".into()),
                ),
                latencies,
            ),
            MealAnswer::Refused { reason } => self.deny(
                actions,
                time,
                Some(card),
                (Reason::MEAL_REFUSED, Some(reason)),
                latencies,
            ),
            MealAnswer::NotConfirmed { reason } => {
                self.unconfirmed_meals.insert(card.clone(), request);
                self.deny(
                    actions,
                    time,
                    Some(card),
                    (Reason::MEAL_NOT_CONFIRMED, Some(reason)),
                    latencies,
                );
            }
        }
    }

    fn deny(
        &self,
        actions: &mut Vec<Action>,
        time: Timestamp,
        card: Option<CardId>,
        reason: (Reason, Option<String>),
        latencies: Latencies,
    ) {
        self.deny_with_meal(actions, time, card, reason, latencies, None);
    }

    fn deny_with_meal(
        &self,
        actions: &mut Vec<Action>,
        time: Timestamp,
        card: Option<CardId>,
        (reason, detail): (Reason, Option<String>),
        latencies: Latencies,
        meal: Option<MealRecord>,
    ) {
        let door = self.config.door.clone();
        let mut event = NewEvent::new(EventKind::AccessDenied, time)
            .door(door.clone())
            .result(Outcome::Denied)
            .reason(reason)
            .latencies(latencies);
        event.detail = detail;
        event.meal = meal.map(Box::new);
        if let Some(card) = card {
            event = event.card(card);
        }
        actions.push(Action::Deny { door });
        actions.push(Action::Publish(event));
    }
}

/// The `meal` of an event from a card's receipt.
fn meal_record(
    receipt: &MealReceiptInfo,
    period_name: Option<String>,
    group: Option<String>,
) -> MealRecord {
    MealRecord {
        period: receipt.period,
        period_name,
        group,
        count: receipt.count,
        allowance: receipt.allowance,
        receipt: Some(receipt.receipt_hex.clone()),
        receipt_counter: Some(receipt.receipt_counter),
        gate_time: Some(receipt.gate_time),
    }
}
