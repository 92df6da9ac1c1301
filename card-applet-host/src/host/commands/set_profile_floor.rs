//! SET PROFILE FLOOR (secure, INS `DA`, needs an authority with the enrol bit; applet 1.5):
//! plaintext = floor (1: `00` none, `01` convenience, `02` balanced, `03` security). Empty answer.

use palmgate_matcher::Profile;
use zeroize::Zeroizing;

use super::{SecureCommand, expect_empty};
use crate::host::error::CardError;
use crate::protocol::{StatusWord, ins, profile_floor};

/// SET PROFILE FLOOR.
#[derive(Debug, Clone, Copy)]
pub struct SetProfileFloor {
    /// The weakest profile the card's VERIFY PALM may apply; `None` removes the floor.
    pub floor: Option<Profile>,
}

impl SecureCommand for SetProfileFloor {
    const NAME: &'static str = "SET PROFILE FLOOR";
    const INS: u8 = ins::SET_PROFILE_FLOOR;
    type Output = ();

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(vec![profile_floor::encode(self.floor)])
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<(), CardError> {
        expect_empty(Self::NAME, status, plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plaintext_is_the_floor_byte() {
        for (floor, byte) in [
            (None, 0x00),
            (Some(Profile::Convenience), 0x01),
            (Some(Profile::Balanced), 0x02),
            (Some(Profile::Security), 0x03),
        ] {
            assert_eq!(SetProfileFloor { floor }.plaintext().as_slice(), [byte]);
        }
    }
}
