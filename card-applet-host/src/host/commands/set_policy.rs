//! SET POLICY (secure, INS `24`, needs authority): plaintext = max tries (1..=10); the counter is
//! set to it. Empty answer.

use zeroize::Zeroizing;

use super::{SecureCommand, expect_empty};
use crate::host::error::CardError;
use crate::protocol::{StatusWord, ins};

/// SET POLICY.
#[derive(Debug, Clone, Copy)]
pub struct SetPolicy {
    /// Retry counter limit.
    pub max_tries: u8,
}

impl SecureCommand for SetPolicy {
    const NAME: &'static str = "SET POLICY";
    const INS: u8 = ins::SET_POLICY;
    type Output = ();

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(vec![self.max_tries])
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<(), CardError> {
        expect_empty(Self::NAME, status, plaintext)
    }
}
