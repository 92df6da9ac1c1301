//! REDEEM MEAL (secure, INS `54`, after a palm match in the session): plaintext = the meal request
//! (13 bytes, [`MealRequest::encode`]); answer = the card-signed meal receipt (103 bytes) with
//! `9000`, `count | allowance` with `6984` (allowance used), the card's period with `6985`
//! (the request's period is older), an empty answer with `6982` (no palm match in this session)
//! or `6A84` (receipt counter exhausted).

use zeroize::Zeroizing;

use super::SecureCommand;
use crate::host::error::{CardError, MealRefusal};
use crate::protocol::meal::{
    MealRequest, SignedMealReceipt, decode_allowance_used, decode_period_behind,
};
use crate::protocol::{StatusWord, ins};

/// REDEEM MEAL.
#[derive(Debug, Clone, Copy)]
pub struct RedeemMeal {
    /// What the gate asks for.
    pub request: MealRequest,
}

/// The card's answer to REDEEM MEAL, before the host checks the receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MealAnswer {
    /// The meal is counted; the card's receipt (signature not yet checked).
    Served(SignedMealReceipt),
    /// The period's allowance is used: nothing was counted.
    AllowanceUsed {
        /// Meals served in the period.
        count: u8,
        /// The allowance the gate sent.
        allowance: u8,
    },
}

impl SecureCommand for RedeemMeal {
    const NAME: &'static str = "REDEEM MEAL";
    const INS: u8 = ins::REDEEM_MEAL;
    type Output = MealAnswer;

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.request.encode().to_vec())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<MealAnswer, CardError> {
        let malformed = |reason| CardError::MalformedResponse {
            command: Self::NAME,
            reason,
        };
        match status {
            StatusWord::Success => SignedMealReceipt::decode(plaintext)
                .map(MealAnswer::Served)
                .map_err(|_| malformed("not a meal receipt")),
            StatusWord::ReferenceDataNotUsable => decode_allowance_used(plaintext)
                .map(|(count, allowance)| MealAnswer::AllowanceUsed { count, allowance })
                .ok_or(malformed("allowance-used answer length")),
            StatusWord::ConditionsNotSatisfied => {
                let card_period =
                    decode_period_behind(plaintext).ok_or(malformed("card period length"))?;
                Err(MealRefusal::PeriodBehindCard { card_period }.into())
            }
            StatusWord::SecurityStatusNotSatisfied => Err(MealRefusal::NoPalmMatch.into()),
            StatusWord::NotEnoughMemory => Err(MealRefusal::ReceiptCounterExhausted.into()),
            status => Err(CardError::Status {
                command: Self::NAME,
                status,
            }),
        }
    }
}
