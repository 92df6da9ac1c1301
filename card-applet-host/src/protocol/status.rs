//! ISO 7816-4 status words used by the palmgate applet.

/// A status word (SW1 SW2) as the applet sends it and the host interprets it.
///
/// Every status word the applet emits has its own variant; anything else maps to [`StatusWord::Other`]
/// so that decoding never fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// `9000`: success.
    Success,
    /// `61xx`: more response bytes are available with GET RESPONSE (`xx` = 0 means 256 or more).
    BytesRemaining(u8),
    /// `63Cx`: palm verification failed, `x` tries left.
    VerifyFailed {
        /// Tries left before the card blocks verification.
        tries_left: u8,
    },
    /// `6581`: the card could not write its persistent memory; nothing was changed.
    MemoryFailure,
    /// `6700`: wrong length (malformed APDU or data of the wrong size).
    WrongLength,
    /// `6883`: the last command of a chain was expected.
    LastCommandOfChainExpected,
    /// `6884`: command chaining not supported for this instruction (it takes no data).
    ChainingNotSupported,
    /// `6982`: security status not satisfied (no secure session, or no enrolment authority).
    SecurityStatusNotSatisfied,
    /// `6983`: verification is blocked (retry counter at zero).
    AuthenticationBlocked,
    /// `6984`: reference data not usable (REDEEM MEAL: the period's allowance is used up).
    ReferenceDataNotUsable,
    /// `6985`: conditions of use not satisfied (wrong life-cycle state, applet not selected).
    ConditionsNotSatisfied,
    /// `6988`: secure messaging data incorrect: the session has been closed.
    SecureMessagingIncorrect,
    /// `6A80`: incorrect data (malformed certificate, template or field).
    WrongData,
    /// `6A81`: function not supported (template of another algorithm).
    FunctionNotSupported,
    /// `6A82`: application not found (SELECT with another AID).
    ApplicationNotFound,
    /// `6A84`: not enough memory space (REDEEM MEAL: the receipt counter is exhausted; ENROL: the
    /// hand already holds three templates, applet 1.8).
    NotEnoughMemory,
    /// `6A86`: incorrect P1/P2.
    IncorrectP1P2,
    /// `6A88`: referenced data not found (nothing enrolled).
    ReferencedDataNotFound,
    /// `6Cxx`: wrong Le; `xx` is the exact length available.
    WrongLe(u8),
    /// `6D00`: instruction not supported.
    InsNotSupported,
    /// `6E00`: class not supported.
    ClaNotSupported,
    /// Any other status word.
    Other(u16),
}

impl StatusWord {
    /// Decodes `SW1 SW2`.
    pub const fn from_u16(sw: u16) -> Self {
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => Self::Success,
            (0x61, n) => Self::BytesRemaining(n),
            (0x63, n) if n & 0xF0 == 0xC0 => Self::VerifyFailed {
                tries_left: n & 0x0F,
            },
            (0x65, 0x81) => Self::MemoryFailure,
            (0x67, 0x00) => Self::WrongLength,
            (0x68, 0x83) => Self::LastCommandOfChainExpected,
            (0x68, 0x84) => Self::ChainingNotSupported,
            (0x69, 0x82) => Self::SecurityStatusNotSatisfied,
            (0x69, 0x83) => Self::AuthenticationBlocked,
            (0x69, 0x84) => Self::ReferenceDataNotUsable,
            (0x69, 0x85) => Self::ConditionsNotSatisfied,
            (0x69, 0x88) => Self::SecureMessagingIncorrect,
            (0x6A, 0x80) => Self::WrongData,
            (0x6A, 0x81) => Self::FunctionNotSupported,
            (0x6A, 0x82) => Self::ApplicationNotFound,
            (0x6A, 0x84) => Self::NotEnoughMemory,
            (0x6A, 0x86) => Self::IncorrectP1P2,
            (0x6A, 0x88) => Self::ReferencedDataNotFound,
            (0x6C, n) => Self::WrongLe(n),
            (0x6D, 0x00) => Self::InsNotSupported,
            (0x6E, 0x00) => Self::ClaNotSupported,
            _ => Self::Other(sw),
        }
    }

    /// Encodes as `SW1 SW2`.
    pub const fn to_u16(self) -> u16 {
        match self {
            Self::Success => 0x9000,
            Self::BytesRemaining(n) => 0x6100 | n as u16,
            Self::VerifyFailed { tries_left } => 0x63C0 | (tries_left & 0x0F) as u16,
            Self::MemoryFailure => 0x6581,
            Self::WrongLength => 0x6700,
            Self::LastCommandOfChainExpected => 0x6883,
            Self::ChainingNotSupported => 0x6884,
            Self::SecurityStatusNotSatisfied => 0x6982,
            Self::AuthenticationBlocked => 0x6983,
            Self::ReferenceDataNotUsable => 0x6984,
            Self::ConditionsNotSatisfied => 0x6985,
            Self::SecureMessagingIncorrect => 0x6988,
            Self::WrongData => 0x6A80,
            Self::FunctionNotSupported => 0x6A81,
            Self::ApplicationNotFound => 0x6A82,
            Self::NotEnoughMemory => 0x6A84,
            Self::IncorrectP1P2 => 0x6A86,
            Self::ReferencedDataNotFound => 0x6A88,
            Self::WrongLe(n) => 0x6C00 | n as u16,
            Self::InsNotSupported => 0x6D00,
            Self::ClaNotSupported => 0x6E00,
            Self::Other(sw) => sw,
        }
    }

    /// `[SW1, SW2]`.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.to_u16().to_be_bytes()
    }

    /// Decodes the last two bytes of a response, if there are two.
    pub fn from_response(response: &[u8]) -> Option<(Self, &[u8])> {
        let split = response.len().checked_sub(2)?;
        let (data, sw) = response.split_at(split);
        Some((Self::from_u16(u16::from_be_bytes([sw[0], sw[1]])), data))
    }

    /// `true` for `9000`.
    pub const fn is_success(self) -> bool {
        matches!(self, Self::Success)
    }
}

impl core::fmt::Display for StatusWord {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:04X}", self.to_u16())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_word_round_trips() {
        for sw in 0..=u16::MAX {
            assert_eq!(StatusWord::from_u16(sw).to_u16(), sw, "{sw:04X}");
        }
    }

    #[test]
    fn named_variants_decode_to_themselves() {
        let named = [
            StatusWord::Success,
            StatusWord::BytesRemaining(0x10),
            StatusWord::VerifyFailed { tries_left: 3 },
            StatusWord::MemoryFailure,
            StatusWord::WrongLength,
            StatusWord::LastCommandOfChainExpected,
            StatusWord::ChainingNotSupported,
            StatusWord::SecurityStatusNotSatisfied,
            StatusWord::AuthenticationBlocked,
            StatusWord::ReferenceDataNotUsable,
            StatusWord::ConditionsNotSatisfied,
            StatusWord::SecureMessagingIncorrect,
            StatusWord::WrongData,
            StatusWord::FunctionNotSupported,
            StatusWord::ApplicationNotFound,
            StatusWord::NotEnoughMemory,
            StatusWord::IncorrectP1P2,
            StatusWord::ReferencedDataNotFound,
            StatusWord::WrongLe(0x20),
            StatusWord::InsNotSupported,
            StatusWord::ClaNotSupported,
        ];
        for sw in named {
            assert_eq!(StatusWord::from_u16(sw.to_u16()), sw);
            assert!(!matches!(sw, StatusWord::Other(_)));
        }
        assert_eq!(StatusWord::from_u16(0x6B00), StatusWord::Other(0x6B00));
        assert_eq!(
            StatusWord::VerifyFailed { tries_left: 4 }.to_bytes(),
            [0x63, 0xC4]
        );
    }
}
