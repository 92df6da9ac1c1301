//! RESET RETRY COUNTER (secure, INS `2C`, needs authority): empty plaintext, empty answer.

use zeroize::Zeroizing;

use super::{SecureCommand, expect_empty};
use crate::host::error::CardError;
use crate::protocol::{StatusWord, ins};

/// RESET RETRY COUNTER.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResetRetryCounter;

impl SecureCommand for ResetRetryCounter {
    const NAME: &'static str = "RESET RETRY COUNTER";
    const INS: u8 = ins::RESET_RETRY_COUNTER;
    type Output = ();

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(Vec::new())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<(), CardError> {
        expect_empty(Self::NAME, status, plaintext)
    }
}
