//! Security profiles: a stated target false-match rate and the threshold calibrated for it.
//!
//! `no_std`, no allocator: the card maps the profile the gate names in VERIFY PALM (P1,
//! [`Profile::id`]) into its threshold with exactly this table. The thresholds depend on how many templates the probe is compared with (the minimum
//! distance over several references lowers impostor distances too), so there is one per
//! enrolment size; see `docs/matcher.md` ("Security profiles") for the calibration behind every
//! number and the measured rates on the validation folds.

use core::fmt;
use core::str::FromStr;

use crate::compare::Threshold;

/// Most templates one hand keeps on the card (enrolment captures three).
pub const MAX_ENROLLED_TEMPLATES: usize = 3;

/// Captures the enrolment station asks for beyond the enrolled ones, by default, when a hand's
/// captures do not all match each other (`palmgate enrol --extra-captures`).
pub const STATION_EXTRA_CAPTURES: usize = 2;

/// How strict the palm decision is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Profile {
    /// Target FMR 1e-2: fewest second presentations, for low-risk doors.
    Convenience,
    /// Target FMR 1e-3 (the default).
    #[default]
    Balanced,
    /// Target FMR 1e-4: for doors where a false accept costs more than a retry.
    Security,
}

/// Thresholds (Q16) per profile, for one probe pose or several (a whole hand is sent at three,
/// a sensor's own ROI at five, [`crate::compare::MAX_PROBE_POSES`]), for 1, 2 and 3 enrolled
/// templates (the probe's distance is the minimum over every pose and template). Calibrated by
/// `palmgate eval` over the development sets and 100 synthetic hands (`docs/matcher.md`,
/// "Security profiles"), rounded down to a multiple of 100. A minimum over more pairs only
/// lowers impostor distances, so a threshold is never above the one for fewer pairs (where a
/// calibration over fewer impostor trials came out higher, the lower value is used). Two
/// templates use the three-template value (stricter than needed, never looser). Every capture
/// of another hand is an impostor probe (since applet 1.6), and the comparisons of a hand filed
/// under two names in a data set are not (since applet 1.7). Calibrated for the elastic
/// comparison (applet 1.9, [`crate::compare`]): it brings every pair closer, impostors too, so
/// the whole table is about 0.02–0.03 lower than 1.8's.
const THRESHOLDS_Q16: [[[u32; MAX_ENROLLED_TEMPLATES]; 2]; 3] = [
    // Convenience. One pose: calibrated 24 434 (1 template), 24 037 (3). Several: the whole hands
    // at three poses and the ROIs at five 24 181, 23 822.
    [[24_400, 24_000, 24_000], [24_100, 23_800, 23_800]],
    // Balanced. One pose: 23 580, 23 176. Several: 23 404, 23 044.
    [[23_500, 23_100, 23_100], [23_400, 23_000, 23_000]],
    // Security. One pose: 22 795, 22 502. Several: 22 119, 22 068.
    [[22_700, 22_500, 22_500], [22_100, 22_000, 22_000]],
];

impl Profile {
    /// Every profile, from the most permissive to the strictest.
    pub const ALL: [Profile; 3] = [Profile::Convenience, Profile::Balanced, Profile::Security];

    /// The configuration name (`convenience`, `balanced`, `security`).
    pub const fn name(self) -> &'static str {
        match self {
            Profile::Convenience => "convenience",
            Profile::Balanced => "balanced",
            Profile::Security => "security",
        }
    }

    /// The false-match rate the profile's thresholds are calibrated for.
    pub const fn target_fmr(self) -> f64 {
        match self {
            Profile::Convenience => 1e-2,
            Profile::Balanced => 1e-3,
            Profile::Security => 1e-4,
        }
    }

    /// One byte for the card (`1`, `2`, `3`): how the gate or the enrolment names the profile.
    pub const fn id(self) -> u8 {
        match self {
            Profile::Convenience => 1,
            Profile::Balanced => 2,
            Profile::Security => 3,
        }
    }

    /// The profile of [`Profile::id`]'s byte.
    pub const fn from_id(id: u8) -> Option<Profile> {
        match id {
            1 => Some(Profile::Convenience),
            2 => Some(Profile::Balanced),
            3 => Some(Profile::Security),
            _ => None,
        }
    }

    /// The stricter of two profiles: what a card with a profile floor set at enrolment applies
    /// when a gate asks for another (`requested.stricter(floor)`, applet 1.5): a gate can tighten
    /// the floor, never loosen it (`docs/threat-model.md`, "The profile floor set at enrolment").
    pub const fn stricter(self, other: Profile) -> Profile {
        if self.id() >= other.id() { self } else { other }
    }

    /// The threshold when `poses` cuts of the probe are compared with `enrolled` templates
    /// (taking the minimum distance). `enrolled` is clamped to `1..=MAX_ENROLLED_TEMPLATES`,
    /// `poses` to `1..=MAX_PROBE_POSES` (the card refuses more).
    pub const fn threshold(self, enrolled: usize, poses: usize) -> Threshold {
        let column = if enrolled <= 1 {
            0
        } else {
            MAX_ENROLLED_TEMPLATES - 1
        };
        let pose_row = if poses <= 1 { 0 } else { 1 };
        let row = match self {
            Profile::Convenience => 0,
            Profile::Balanced => 1,
            Profile::Security => 2,
        };
        Threshold::from_q16(THRESHOLDS_Q16[row][pose_row][column])
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A profile name that is not one of `convenience`, `balanced`, `security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownProfile;

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown matcher profile (expected convenience, balanced or security)")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UnknownProfile {}

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(UnknownProfile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::MAX_PROBE_POSES;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for profile in Profile::ALL {
            assert_eq!(profile.name().parse::<Profile>(), Ok(profile));
            assert_eq!(std::format!("{profile}"), profile.name());
            assert_eq!(Profile::from_id(profile.id()), Some(profile));
        }
        assert_eq!("Balanced".parse::<Profile>(), Err(UnknownProfile));
        assert_eq!("".parse::<Profile>(), Err(UnknownProfile));
        assert_eq!(Profile::from_id(0), None);
        assert_eq!(Profile::from_id(4), None);
        assert_eq!(Profile::default(), Profile::Balanced);
    }

    #[test]
    fn a_request_never_loosens_the_floor() {
        use Profile::*;
        assert_eq!(Balanced.stricter(Convenience), Balanced);
        assert_eq!(Convenience.stricter(Balanced), Balanced);
        assert_eq!(Balanced.stricter(Security), Security);
        assert_eq!(Security.stricter(Convenience), Security);
        assert_eq!(Convenience.stricter(Convenience), Convenience);
    }

    #[test]
    fn stricter_profiles_have_lower_thresholds_and_more_pairs_lower_ones_too() {
        for poses in [1, 3, MAX_PROBE_POSES] {
            for enrolled in 1..=MAX_ENROLLED_TEMPLATES {
                let t: std::vec::Vec<u32> = Profile::ALL
                    .iter()
                    .map(|p| p.threshold(enrolled, poses).q16())
                    .collect();
                assert!(t[0] > t[1] && t[1] > t[2], "{enrolled} templates: {t:?}");
            }
        }
        for profile in Profile::ALL {
            for poses in [1, 3, MAX_PROBE_POSES] {
                assert!(profile.threshold(3, poses).q16() <= profile.threshold(1, poses).q16());
                assert!(profile.threshold(1, poses).q16() <= profile.threshold(1, 1).q16());
                assert_eq!(profile.threshold(0, poses), profile.threshold(1, poses));
                assert_eq!(profile.threshold(9, poses), profile.threshold(3, poses));
                assert_eq!(profile.threshold(2, poses), profile.threshold(3, poses));
            }
            let distance = f64::from(profile.threshold(1, 1).q16()) / 65536.0;
            assert!((0.25..0.45).contains(&distance), "{profile}: {distance}");
            assert_eq!(profile.threshold(1, 0), profile.threshold(1, 1));
            assert_eq!(profile.threshold(1, 2), profile.threshold(1, 3));
            assert_eq!(profile.threshold(1, 4), profile.threshold(1, 5));
            assert_eq!(
                profile.threshold(1, 7),
                profile.threshold(1, MAX_PROBE_POSES)
            );
            for enrolled in 1..=MAX_ENROLLED_TEMPLATES {
                let by_poses = [1, 3, 5].map(|k| profile.threshold(enrolled, k).q16());
                assert!(by_poses[0] >= by_poses[1] && by_poses[1] >= by_poses[2]);
            }
        }
    }
}
