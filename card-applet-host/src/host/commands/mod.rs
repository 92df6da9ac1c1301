//! One typed struct per card command, each with one encoder and one decoder.
//!
//! Plain commands ([`PlainCommand`]) build a [`Command`]; secure commands ([`SecureCommand`])
//! provide the plaintext the session encrypts and decode the plaintext it decrypts.

mod enrol;
mod erase;
mod get_data;
mod get_receipt;
mod open_session;
mod personalise;
mod prove_authority;
mod redeem_meal;
mod reset_retry_counter;
mod select;
mod set_policy;
mod set_profile_floor;
mod verify_palm;

pub use enrol::Enrol;
pub use erase::Erase;
pub use get_data::{GetCertificate, GetIdentity, GetProfileFloor};
pub use get_receipt::{GetReceipt, KeptReceipt};
pub use open_session::{OpenSession, OpenSessionResponse};
pub use personalise::{GenerateCardKey, InstallCertificate};
pub use prove_authority::ProveAuthority;
pub use redeem_meal::{MealAnswer, RedeemMeal};
pub use reset_retry_counter::ResetRetryCounter;
pub use select::Select;
pub use set_policy::SetPolicy;
pub use set_profile_floor::SetProfileFloor;
pub use verify_palm::{VerifyOutcome, VerifyPalm};

use zeroize::Zeroizing;

use crate::host::apdu::{Command, Response};
use crate::host::error::CardError;
use crate::protocol::StatusWord;

/// A command sent in the clear.
pub trait PlainCommand {
    /// Name used in errors.
    const NAME: &'static str;
    /// Decoded answer.
    type Output;
    /// The APDU.
    fn command(&self) -> Command;
    /// Decodes the answer.
    fn decode(response: Response) -> Result<Self::Output, CardError>;
}

/// A command sent inside a secure session.
pub trait SecureCommand {
    /// Name used in errors.
    const NAME: &'static str;
    /// Instruction byte.
    const INS: u8;
    /// Decoded answer.
    type Output;
    /// P1 P2 (authenticated as associated data).
    fn p1_p2(&self) -> (u8, u8) {
        (0, 0)
    }
    /// The plaintext to encrypt.
    fn plaintext(&self) -> Zeroizing<Vec<u8>>;
    /// Decodes the authenticated status word and decrypted plaintext.
    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<Self::Output, CardError>;
}

/// `Ok(())` for `9000`, the status as an error otherwise.
pub(crate) fn expect_success(command: &'static str, status: StatusWord) -> Result<(), CardError> {
    if status.is_success() {
        Ok(())
    } else {
        Err(CardError::Status { command, status })
    }
}

/// Checks for `9000` and an empty answer.
pub(crate) fn expect_empty(
    command: &'static str,
    status: StatusWord,
    data: &[u8],
) -> Result<(), CardError> {
    expect_success(command, status)?;
    if data.is_empty() {
        Ok(())
    } else {
        Err(CardError::MalformedResponse {
            command,
            reason: "unexpected response data",
        })
    }
}
