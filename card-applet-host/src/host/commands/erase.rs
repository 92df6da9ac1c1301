//! ERASE (secure, INS `0E`, needs authority): plaintext = gate timestamp (u64 BE Unix seconds);
//! answer = the signed deletion receipt (130 bytes).

use zeroize::Zeroizing;

use super::{SecureCommand, expect_success};
use crate::host::error::CardError;
use crate::protocol::receipt::DeletionReceipt;
use crate::protocol::{StatusWord, ins};

/// ERASE every template.
#[derive(Debug, Clone, Copy)]
pub struct Erase {
    /// Time of the erasure (Unix seconds), recorded in the receipt.
    pub timestamp: u64,
}

impl SecureCommand for Erase {
    const NAME: &'static str = "ERASE";
    const INS: u8 = ins::ERASE;
    type Output = DeletionReceipt;

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.timestamp.to_be_bytes().to_vec())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<DeletionReceipt, CardError> {
        expect_success(Self::NAME, status)?;
        DeletionReceipt::decode(plaintext).map_err(CardError::Certificate)
    }
}
