//! VERIFY PALM (secure, INS `20`, P1 = the profile code of [`crate::protocol::verify_profile`]):
//! plaintext = the probe template (292 bytes); answer plaintext =
//! `decision | slot kind | tries left` with status `9000` (match), `63Cx` (no match) or `6983`
//! (blocked).

use zeroize::Zeroizing;

use super::SecureCommand;
use crate::host::error::CardError;
#[cfg(doc)]
use crate::protocol::verify_profile;
use crate::protocol::{SlotKind, StatusWord, TEMPLATE_LEN, decision, ins};

/// VERIFY PALM with an encoded probe.
pub struct VerifyPalm {
    /// Encoded probe template (biometric: zeroized, never printed).
    pub probe: Zeroizing<[u8; TEMPLATE_LEN]>,
    /// P1: the security profile the card applies, [`verify_profile::encode`] or
    /// [`verify_profile::DEFAULT`] (the card's default, `balanced`).
    pub profile_code: u8,
}

impl std::fmt::Debug for VerifyPalm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyPalm(profile {:02X}, REDACTED)", self.profile_code)
    }
}

/// The card's authenticated decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// A slot matched; the retry counter is back at its maximum.
    Match {
        /// Kind of the matching slot (duress when any duress slot matched).
        slot_kind: SlotKind,
        /// Tries left (the maximum).
        tries_left: u8,
    },
    /// No slot matched; one try was spent.
    NoMatch {
        /// Tries left.
        tries_left: u8,
    },
    /// Verification is blocked: nothing was compared.
    Blocked,
}

impl SecureCommand for VerifyPalm {
    const NAME: &'static str = "VERIFY PALM";
    const INS: u8 = ins::VERIFY_PALM;
    type Output = VerifyOutcome;

    fn p1_p2(&self) -> (u8, u8) {
        (self.profile_code, 0)
    }

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.probe.to_vec())
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<VerifyOutcome, CardError> {
        let malformed = |reason| CardError::MalformedResponse {
            command: Self::NAME,
            reason,
        };
        let decision_bytes = match status {
            StatusWord::Success
            | StatusWord::VerifyFailed { .. }
            | StatusWord::AuthenticationBlocked => <[u8; decision::LEN]>::try_from(plaintext)
                .map_err(|_| malformed("decision length"))?,
            status => {
                return Err(CardError::Status {
                    command: Self::NAME,
                    status,
                });
            }
        };
        match (status, decision_bytes) {
            (StatusWord::Success, [decision::MATCH, kind, tries_left]) => {
                Ok(VerifyOutcome::Match {
                    slot_kind: SlotKind::from_byte(kind).ok_or(malformed("slot kind"))?,
                    tries_left,
                })
            }
            (
                StatusWord::VerifyFailed { tries_left },
                [decision::NO_MATCH, decision::NO_SLOT, tries],
            ) if tries == tries_left => Ok(VerifyOutcome::NoMatch { tries_left }),
            (StatusWord::AuthenticationBlocked, [decision::BLOCKED, decision::NO_SLOT, 0]) => {
                Ok(VerifyOutcome::Blocked)
            }
            _ => Err(malformed("decision does not agree with the status word")),
        }
    }
}
