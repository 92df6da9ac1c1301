//! VERIFY PALM (secure, INS `20`, P1 = the profile code of [`crate::protocol::verify_profile`]):
//! plaintext = the probe cut at 1 to [`crate::protocol::MAX_PROBE_POSES`] poses, its templates
//! concatenated (`k × 292` bytes; applet 1.4, earlier applets take one); answer plaintext =
//! `decision | slot kind | tries left` with status `9000` (match), `63Cx` (no match) or `6983`
//! (blocked).

use palmgate_matcher::template::Template;
use zeroize::Zeroizing;

use super::SecureCommand;
use crate::host::error::CardError;
#[cfg(any(doc, test))]
use crate::protocol::MAX_PROBE_POSES;
#[cfg(doc)]
use crate::protocol::verify_profile;
use crate::protocol::{SlotKind, StatusWord, TEMPLATE_LEN, decision, ins, probe_poses};

/// VERIFY PALM with an encoded probe of 1 to [`MAX_PROBE_POSES`] poses.
pub struct VerifyPalm {
    /// The encoded pose templates, concatenated (biometric: zeroized, never printed).
    poses: Zeroizing<Vec<u8>>,
    profile_code: u8,
}

impl std::fmt::Debug for VerifyPalm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VerifyPalm(profile {:02X}, {} poses, REDACTED)",
            self.profile_code,
            self.poses()
        )
    }
}

impl VerifyPalm {
    /// The probe cut at `poses` (the pose found first), compared under P1 `profile_code`:
    /// [`verify_profile::encode`] or [`verify_profile::DEFAULT`] (the card's default,
    /// `balanced`).
    ///
    /// # Errors
    /// [`CardError::ProbePoses`] for none or more than [`MAX_PROBE_POSES`].
    pub fn new(profile_code: u8, poses: &[Template]) -> Result<Self, CardError> {
        Self::with_encoder(profile_code, poses, |pose| Zeroizing::new(pose.encode()))
    }

    /// As [`VerifyPalm::new`] with templates already encoded (sent as they are).
    ///
    /// # Errors
    /// [`CardError::ProbePoses`] for none or more than [`MAX_PROBE_POSES`].
    pub fn encoded(profile_code: u8, poses: &[[u8; TEMPLATE_LEN]]) -> Result<Self, CardError> {
        Self::with_encoder(profile_code, poses, |pose| Zeroizing::new(*pose))
    }

    fn with_encoder<P>(
        profile_code: u8,
        poses: &[P],
        encode: impl Fn(&P) -> Zeroizing<[u8; TEMPLATE_LEN]>,
    ) -> Result<Self, CardError> {
        let len = poses.len() * TEMPLATE_LEN;
        if probe_poses(len).is_none() {
            return Err(CardError::ProbePoses { given: poses.len() });
        }
        // Allocated once at its final size: no reallocation leaves a copy behind.
        let mut bytes = Zeroizing::new(Vec::with_capacity(len));
        for pose in poses {
            bytes.extend_from_slice(encode(pose).as_slice());
        }
        Ok(Self {
            poses: bytes,
            profile_code,
        })
    }

    /// How many poses the probe carries.
    pub fn poses(&self) -> usize {
        self.poses.len() / TEMPLATE_LEN
    }

    /// P1: the profile code.
    pub fn profile_code(&self) -> u8 {
        self.profile_code
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
        self.poses.clone()
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

#[cfg(test)]
mod tests {
    use palmgate_matcher::fixtures::template;

    use super::*;

    #[test]
    fn one_to_five_poses_are_concatenated_in_order_and_never_printed() {
        let poses: Vec<Template> = (1..=5).map(template).collect();
        assert_eq!(poses.len(), MAX_PROBE_POSES);
        for k in 1..=MAX_PROBE_POSES {
            let command = VerifyPalm::new(0x02, &poses[..k]).unwrap();
            assert_eq!(command.poses(), k);
            let plaintext = command.plaintext();
            assert_eq!(plaintext.len(), k * TEMPLATE_LEN);
            for (encoded, pose) in plaintext.chunks_exact(TEMPLATE_LEN).zip(&poses) {
                assert_eq!(encoded, pose.encode());
            }
            assert_eq!(command.p1_p2(), (0x02, 0));
            assert_eq!(
                format!("{command:?}"),
                format!("VerifyPalm(profile 02, {k} poses, REDACTED)")
            );
        }
    }

    #[test]
    fn no_pose_or_more_than_five_are_refused_before_sending() {
        let poses: Vec<Template> = (0..=MAX_PROBE_POSES as u64 + 1).map(template).collect();
        for k in [0, MAX_PROBE_POSES + 1, MAX_PROBE_POSES + 2] {
            assert!(
                matches!(
                    VerifyPalm::new(0x00, &poses[..k]),
                    Err(CardError::ProbePoses { given }) if given == k
                ),
                "{k} poses"
            );
        }
        assert!(matches!(
            VerifyPalm::encoded(0x00, &[]),
            Err(CardError::ProbePoses { given: 0 })
        ));
    }
}
