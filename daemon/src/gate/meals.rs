//! The meal step at a canteen gate: after a palm match, in the same secure session, the card
//! counts a meal of the current period and signs its receipt (REDEEM MEAL); before that, the
//! receipt of an earlier meal whose answer was lost at this gate is read back (GET RECEIPT).
//! What to ask and what the answers mean is decided by the I/O-free access machine
//! ([`crate::access::Action::VerifyForMeal`], [`crate::access::Input::MealDecision`]); this
//! file only talks to the card and translates.

use palmgate_card::host::{CardTransport, MealOutcome, MealReceipt, SecureSession};

use super::card_worker::CardReport;
use super::main_loop::Loop;
use crate::access::{Input, MealAnswer, MealReceiptInfo, MealRequest};
use crate::error_chain;
use crate::event::CardId;

/// What the worker does after a match at a canteen gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MealStep {
    /// The meal to redeem.
    pub meal: MealRequest,
    /// An earlier meal of this card whose answer was lost here.
    pub recover: Option<MealRequest>,
}

/// What the meal step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MealStepResult {
    /// The receipt of the lost meal, when the card had counted it.
    pub recovered: Option<MealReceiptInfo>,
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
    let recovered = step.recover.and_then(|lost| {
        match session.recover_meal_receipt() {
            // The session checked the receipt against this card's certified key.
            Ok(Some(kept)) if kept.answers(&card_request(&lost)) => Some(receipt_info(&kept)),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "the receipt of a lost meal could not be read back");
                None
            }
        }
    });
    let (answer, healthy) = match session.redeem_meal(&card_request(&step.meal)) {
        Ok(MealOutcome::Served(receipt)) => (MealAnswer::Served(receipt_info(&receipt)), true),
        Ok(MealOutcome::AllowanceUsed { count, allowance }) => {
            (MealAnswer::AllowanceUsed { count, allowance }, true)
        }
        Ok(MealOutcome::Unsupported) => (MealAnswer::Unsupported, true),
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
    (MealStepResult { recovered, answer }, healthy)
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
