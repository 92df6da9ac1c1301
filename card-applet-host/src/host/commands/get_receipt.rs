//! GET RECEIPT (secure, INS `0A`): empty plaintext; answer = `instruction (1) || receipt`, the
//! receipt of the last receipt-bearing command (ERASE, REDEEM MEAL), which the card keeps until
//! the next such command replaces it. `6A88` when the card keeps none.

use zeroize::Zeroizing;

use super::{SecureCommand, expect_success};
use crate::host::error::CardError;
use crate::protocol::{StatusWord, ins};

/// Reads the receipt the card keeps.
#[derive(Debug, Clone, Copy)]
pub struct GetReceipt;

/// A receipt kept by the card, with the instruction that produced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptReceipt {
    /// The instruction whose answer it was (`ins::ERASE` for a deletion receipt,
    /// `ins::REDEEM_MEAL` for a meal receipt).
    pub instruction: u8,
    /// The receipt as that instruction answered it.
    pub receipt: Vec<u8>,
}

impl SecureCommand for GetReceipt {
    const NAME: &'static str = "GET RECEIPT";
    const INS: u8 = ins::GET_RECEIPT;
    type Output = Option<KeptReceipt>;

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Vec::new())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<Self::Output, CardError> {
        if status == StatusWord::ReferencedDataNotFound {
            return Ok(None);
        }
        expect_success(Self::NAME, status)?;
        let Some((&instruction, receipt)) = plaintext.split_first() else {
            return Err(CardError::MalformedResponse {
                command: Self::NAME,
                reason: "empty answer",
            });
        };
        Ok(Some(KeptReceipt {
            instruction,
            receipt: receipt.to_vec(),
        }))
    }
}
