//! ENROL (secure, INS `E2`, needs authority): plaintext = slot | kind | template(292); empty answer.
//! The two refusals applet 1.8 added are typed: `6A84` a fourth template of a hand, `6985` a
//! duress template without the hand's.

use zeroize::Zeroizing;

use super::{SecureCommand, expect_empty};
use crate::host::error::CardError;
use crate::protocol::{SlotKind, StatusWord, TEMPLATE_LEN, ins};

/// ENROL a template into a slot.
pub struct Enrol {
    /// Slot index (`0..SLOT_COUNT`).
    pub slot: u8,
    /// Normal or duress.
    pub kind: SlotKind,
    /// Encoded template (biometric: zeroized, never printed).
    pub template: Zeroizing<[u8; TEMPLATE_LEN]>,
}

impl std::fmt::Debug for Enrol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrol")
            .field("slot", &self.slot)
            .field("kind", &self.kind)
            .field("template", &"REDACTED")
            .finish()
    }
}

impl SecureCommand for Enrol {
    const NAME: &'static str = "ENROL";
    const INS: u8 = ins::ENROL;
    type Output = ();

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(2 + TEMPLATE_LEN));
        out.push(self.slot);
        out.push(self.kind.to_byte());
        out.extend_from_slice(self.template.as_ref());
        out
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<(), CardError> {
        match status {
            StatusWord::NotEnoughMemory => Err(CardError::TooManyTemplates),
            StatusWord::ConditionsNotSatisfied => Err(CardError::DuressWithoutHand),
            status => expect_empty(Self::NAME, status, plaintext),
        }
    }
}
