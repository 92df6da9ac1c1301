//! The meal step at a canteen gate: after a palm match, in the same secure session, the card
//! counts a meal of the current period and signs its receipt (REDEEM MEAL); before that, the
//! receipt of an earlier meal whose answer was lost at this gate is read back (GET RECEIPT).
//! What to ask and what the answers mean is decided by the I/O-free access machine
//! ([`crate::access::Action::VerifyForMeal`], [`crate::access::Input::MealDecision`]); this
//! file only talks to the card and translates.

use std::path::Path;

use palmgate_card::host::{CardTransport, MealOutcome, MealReceipt, SecureSession};

use super::card_worker::CardReport;
use super::main_loop::Loop;
use crate::access::{Input, MealAnswer, MealReceiptInfo, MealRequest};
use crate::error_chain;
use crate::event::{CardId, EventKind, NewEvent, Outcome};
use crate::mqtt::MealCounts;

/// What the worker does after a match at a canteen gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MealStep {
    /// The meal to redeem.
    pub meal: MealRequest,
    /// An earlier meal of this card whose answer was lost here.
    pub recover: Option<MealRequest>,
}

/// What the card's kept receipt says about a meal whose answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostMeal {
    /// The card counted it: the kept receipt is its own (published as recovered).
    Counted,
    /// The card keeps a later meal's receipt (a meal served since, at another gate): whether it
    /// counted the lost one can no longer be read back; the receipt counters in the events tell
    /// (`palmgate meals report` names the gap).
    Replaced {
        /// The kept receipt's counter.
        kept_counter: u32,
    },
    /// The card keeps no receipt, or an earlier meal's: it never counted the lost one.
    NotCounted,
}

impl LostMeal {
    /// What `kept` (the card's kept receipt, if any) says about the `lost` meal. "Later" is by
    /// period, then by gate time (the gates' clocks).
    pub fn from_kept(lost: &MealRequest, kept: Option<&MealReceipt>) -> LostMeal {
        let Some(kept) = kept else {
            return LostMeal::NotCounted;
        };
        let fields = kept.unverified_fields();
        if kept.answers(&card_request(lost)) {
            LostMeal::Counted
        } else if (fields.period, fields.gate_time) > (lost.period, lost.gate_time) {
            LostMeal::Replaced {
                kept_counter: fields.receipt_counter,
            }
        } else {
            LostMeal::NotCounted
        }
    }
}

/// What the meal step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealStepResult {
    /// The receipt of the lost meal, when the card had counted it.
    pub recovered: Option<MealReceiptInfo>,
    /// What reading back the lost meal's receipt found (`None`: no meal was lost here, or the
    /// card could not be read).
    pub lost_meal: Option<LostMeal>,
    /// The card's answer to this meal.
    pub answer: MealAnswer,
}

fn card_request(request: &MealRequest) -> palmgate_card::host::MealRequest {
    palmgate_card::host::MealRequest {
        period: request.period,
        allowance: request.allowance,
        gate_time: request.gate_time,
    }
}

/// The fields of a receipt the events repeat, and the receipt in hex.
pub fn receipt_info(receipt: &MealReceipt) -> MealReceiptInfo {
    let fields = receipt.unverified_fields();
    MealReceiptInfo {
        period: fields.period,
        count: fields.count,
        allowance: fields.allowance,
        gate_time: fields.gate_time,
        receipt_counter: fields.receipt_counter,
        receipt_hex: hex::encode(receipt.to_bytes()),
    }
}

/// Runs the meal step in `session`, whose palm just matched. Returns whether the connection can
/// still be trusted (no error on the card).
pub(super) fn redeem<T: CardTransport>(
    session: &mut SecureSession<'_, T>,
    step: &MealStep,
) -> (MealStepResult, bool) {
    // First the lost meal: REDEEM MEAL replaces the receipt the card keeps.
    let mut lost_meal = None;
    let mut recovered = None;
    // The receipt read back for the lost meal, kept for the allowance check below: the card
    // changes nothing when it answers that the allowance is used, so it need not be read twice.
    let mut kept_read = None;
    if let Some(lost) = step.recover {
        match session.recover_meal_receipt() {
            // The session checked the receipt against this card's certified key.
            Ok(kept) => {
                let found = LostMeal::from_kept(&lost, kept.as_ref());
                match found {
                    LostMeal::Counted => recovered = kept.as_ref().map(receipt_info),
                    LostMeal::Replaced { kept_counter } => tracing::warn!(
                        lost_period = lost.period,
                        lost_gate_time = lost.gate_time,
                        kept_counter,
                        "the receipt of the meal whose answer was lost here cannot be read back: \
                         the card has counted a later meal since (the receipt counters in the \
                         events show whether it counted the lost one; palmgate meals report names \
                         the gap)"
                    ),
                    LostMeal::NotCounted => tracing::info!(
                        lost_period = lost.period,
                        lost_gate_time = lost.gate_time,
                        "the meal whose answer was lost here was not counted by the card"
                    ),
                }
                lost_meal = Some(found);
                kept_read = Some(kept);
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "the receipt of a lost meal could not be read back");
            }
        }
    }
    let (answer, healthy) = match session.redeem_meal(&card_request(&step.meal)) {
        Ok(MealOutcome::Served(receipt)) => (MealAnswer::Served(receipt_info(&receipt)), true),
        Ok(MealOutcome::AllowanceUsed { count, allowance }) => {
            // The receipt the card keeps is of a meal of this period, perhaps one whose answer
            // another gate lost: published too, so that no counted meal's receipt is missing
            // from the records (a duplicate is told by card id and receipt counter).
            if recovered.is_none() {
                let kept = kept_read.map_or_else(|| session.recover_meal_receipt(), Ok);
                recovered = match kept {
                    Ok(Some(kept)) if kept.unverified_fields().period == step.meal.period => {
                        Some(receipt_info(&kept))
                    }
                    Ok(_) => None,
                    Err(error) => {
                        tracing::warn!(error = %error_chain(&error), "the receipt the card keeps could not be read");
                        None
                    }
                };
            }
            (MealAnswer::AllowanceUsed { count, allowance }, true)
        }
        Ok(MealOutcome::Unsupported) => (MealAnswer::Unsupported, true),
        // The card refused and changed nothing (its period is later: a clock behind, …).
        Err(palmgate_card::host::CardError::MealRefused(refusal)) => (
            MealAnswer::Refused {
                reason: refusal.to_string(),
            },
            true,
        ),
        // Card pulled, garbage, a refusal: the card may have counted it (it counts and signs
        // before it answers), so nothing opens and the receipt is asked for next time.
        Err(error) => (
            MealAnswer::NotConfirmed {
                reason: format!(
                    "the card's answer to the meal was lost: {}",
                    error_chain(&error)
                ),
            },
            false,
        ),
    };
    (
        MealStepResult {
            recovered,
            lost_meal,
            answer,
        },
        healthy,
    )
}

impl Loop {
    /// The card's match and meal answers at a canteen gate, into the access machine.
    pub(super) fn meal_decision(&mut self, report: CardReport) {
        let CardReport::MealDecision {
            card_id,
            duress,
            result,
            elapsed,
        } = report
        else {
            return;
        };
        if let (Some(receipt), Some(card)) = (result.recovered, CardId::new(&card_id)) {
            self.input(Input::MealRecovered { card, receipt });
        }
        self.input(Input::MealDecision {
            duress,
            answer: result.answer,
            elapsed,
        });
    }
}

/// The meals this gate served per period and group: a projection of its `meal.served` events
/// (those that opened the turnstile), kept in `<state_dir>/meals.json` so that a restart in the
/// middle of lunch does not start the count again, and published retained on
/// `<prefix>/<gate>/meals`. I/O-free but for [`MealTally::load`] and [`MealTally::save`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealTally {
    groups: Vec<String>,
    counts: Option<MealCounts>,
}

/// File name in the state directory.
pub const TALLY_FILE: &str = "meals.json";

impl MealTally {
    /// A tally listing `groups` (those with an allowance), starting from `counts` (read back).
    pub fn new(groups: impl IntoIterator<Item = String>, counts: Option<MealCounts>) -> Self {
        let groups: Vec<String> = groups.into_iter().collect();
        let counts = counts.map(|mut counts| {
            for group in &groups {
                counts.groups.entry(group.clone()).or_insert(0);
            }
            counts
        });
        Self { groups, counts }
    }

    /// The counts now, if a meal was ever served here.
    pub fn counts(&self) -> Option<&MealCounts> {
        self.counts.as_ref()
    }

    /// Counts `event` if it is a meal this gate served (`meal.served`, `granted`); returns the
    /// new counts then. A meal of a later period starts the counts again; one of an earlier
    /// period (a clock set back) is not counted here, and stays in the events.
    pub fn record(&mut self, event: &NewEvent) -> Option<&MealCounts> {
        if event.kind != EventKind::MealServed || event.result != Some(Outcome::Granted) {
            return None;
        }
        let meal = event.meal.as_ref()?;
        let current = self.counts.as_ref().map(|counts| counts.period);
        if current.is_some_and(|period| meal.period < period) {
            return None;
        }
        if current != Some(meal.period) {
            self.counts = Some(MealCounts {
                period: meal.period,
                period_name: meal.period_name.clone(),
                served: 0,
                groups: self.groups.iter().map(|group| (group.clone(), 0)).collect(),
                time: event.time,
            });
        }
        let counts = self.counts.as_mut()?;
        counts.served = counts.served.saturating_add(1);
        if let Some(group) = &meal.group {
            let count = counts.groups.entry(group.clone()).or_insert(0);
            *count = count.saturating_add(1);
        }
        counts.time = event.time;
        Some(counts)
    }

    /// Reads the counts kept in `state_dir` (none when there is no file). A damaged file is
    /// reported and counted as none: the counts are a convenience, the events the record.
    pub fn load(state_dir: &Path) -> Option<MealCounts> {
        let path = state_dir.join(TALLY_FILE);
        let text = match crate::config::files::read_bounded_to_string(&path, 64 * 1024) {
            Ok(text) => text,
            Err(error) => {
                if path.exists() {
                    tracing::warn!(path = %path.display(), error = %error_chain(&error), "meal counts unreadable: counting again from 0");
                }
                return None;
            }
        };
        match serde_json::from_str(&text) {
            Ok(counts) => Some(counts),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %error_chain(&error), "meal counts damaged: counting again from 0");
                None
            }
        }
    }

    /// Writes the counts to `state_dir` atomically.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let Some(counts) = &self.counts else {
            return Ok(());
        };
        let bytes = serde_json::to_vec(counts).map_err(std::io::Error::other)?;
        super::state::durable::replace_file(&state_dir.join(TALLY_FILE), &bytes)
    }
}

impl Loop {
    /// Counts a meal this gate served, keeps the counts and hands them to the link (retained).
    pub(super) fn count_meal(&mut self, event: &NewEvent) {
        let Some(counts) = self.meal_tally.record(event).cloned() else {
            return;
        };
        if let Err(error) = self.meal_tally.save(&self.state_dir) {
            tracing::warn!(error = %error_chain(&error), "meal counts not kept");
        }
        if self.meal_counts.try_send(counts).is_err() {
            tracing::warn!("meal counts not published (link busy); the next meal publishes them");
        }
    }
}

#[cfg(test)]
mod tests;
