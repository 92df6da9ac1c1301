//! Presentation attack detection (PAD): is what the sensor sees a live hand?
//!
//! I/O-free and deterministic: a presentation burst (frames, each with its illumination band and
//! exposure time) goes in; a liveness score in [0, 1], the decision at a profile's threshold and
//! the cues behind it come out. Nothing that comes out is an image. Written up, with the attack
//! models and the evaluation, in `docs/pad.md`.
//!
//! # Layout
//! - this module: the burst ([`PadFrame`]), [`PadProfile`] / [`PadSettings`], [`analyse`] and its
//!   [`PadReport`].
//! - `view`: the working view of a frame (central crop, block-averaged), shared by the cues.
//! - [`cues`]: each cue on its own (spectral ratios, ambient light, vein contrast under NIR vs
//!   visible, non-rigid motion, periodic print/screen texture, specular glare), with the boundary
//!   between live and attack, and how a cue value becomes liveness evidence.
//! - [`model`]: the physical model that renders live synthetic hands per band and the attack
//!   species (paper prints, screen replay, mould), for the sensor simulator and the evaluation.
//! - [`metrics`]: ISO/IEC 30107-3 figures (APCER per species, BPCER, APNRR, operating points, DET
//!   curves) from scores.

pub mod cues;
pub mod metrics;
pub mod model;
mod view;

use std::time::Duration;

use image::GrayImage;

pub use cues::{Cue, CueReading};

/// The light a frame was taken under (the sensor protocol's bands, protocol 1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Band {
    /// Every LED off: only the room's light.
    Ambient,
    /// Near-infrared LEDs, 850 nm.
    Nir850,
    /// Near-infrared LEDs, 940 nm.
    Nir940,
    /// Visible (white) LEDs.
    Visible,
}

impl Band {
    /// Every band, in the protocol's code order.
    pub const ALL: [Band; 4] = [Band::Ambient, Band::Nir850, Band::Nir940, Band::Visible];

    /// The band's name (as in the sensor protocol and in file names).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ambient => "ambient",
            Self::Nir850 => "nir850",
            Self::Nir940 => "nir940",
            Self::Visible => "visible",
        }
    }

    /// Whether the sensor's own light is on.
    pub fn is_lit(self) -> bool {
        self != Self::Ambient
    }
}

/// One frame of a presentation burst.
#[derive(Debug, Clone, Copy)]
pub struct PadFrame<'a> {
    /// Its light; `None` for a single-band (protocol 1.0) sensor or an image of unknown light.
    pub band: Option<Band>,
    /// Exposure time after the first frame of the burst.
    pub exposed_after: Duration,
    /// The 8-bit gray image.
    pub image: &'a GrayImage,
}

/// Operating points, as for the matcher: how much liveness evidence a presentation needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PadProfile {
    /// Fewer live hands refused, more attacks let through.
    Convenience,
    /// The default: the evaluated targets (docs/pad.md) hold here.
    #[default]
    Balanced,
    /// Fewer attacks let through, more live hands asked to present again.
    Security,
}

impl PadProfile {
    /// Every profile.
    pub const ALL: [PadProfile; 3] = [Self::Convenience, Self::Balanced, Self::Security];

    /// The liveness score a presentation needs to be accepted.
    pub fn threshold(self) -> f32 {
        match self {
            Self::Convenience => 0.25,
            Self::Balanced => 0.5,
            Self::Security => 0.75,
        }
    }

    /// The profile's name in the configuration (`pad.profile`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Convenience => "convenience",
            Self::Balanced => "balanced",
            Self::Security => "security",
        }
    }
}

impl std::str::FromStr for PadProfile {
    type Err = PadSettingsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|profile| profile.name() == text)
            .ok_or_else(|| PadSettingsError::UnknownProfile(text.to_owned()))
    }
}

/// Why PAD settings are refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PadSettingsError {
    /// `pad.profile` is not one of the three.
    #[error("unknown PAD profile {0:?} (expected convenience, balanced or security)")]
    UnknownProfile(String),
    /// `pad.burst_rounds` is out of range.
    #[error("pad.burst_rounds = {0}: expected 1 to 8 (a burst has at most 32 frames)")]
    BurstRounds(u8),
}

/// The `[pad]` section of the gate's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PadSettings {
    /// `pad.profile`: the operating point.
    pub profile: PadProfile,
    /// `pad.burst_rounds`: how many times a burst cycles through the sensor's bands (motion needs
    /// at least 2).
    pub burst_rounds: u8,
}

impl Default for PadSettings {
    fn default() -> Self {
        Self {
            profile: PadProfile::Balanced,
            burst_rounds: 2,
        }
    }
}

impl PadSettings {
    /// The values `burst_rounds` may take: a burst has at most 32 frames, 4 bands × 8 rounds.
    pub const BURST_ROUNDS: std::ops::RangeInclusive<u8> = 1..=8;

    /// Checks the values a deserialiser cannot.
    pub fn validate(&self) -> Result<(), PadSettingsError> {
        if !Self::BURST_ROUNDS.contains(&self.burst_rounds) {
            return Err(PadSettingsError::BurstRounds(self.burst_rounds));
        }
        Ok(())
    }
}

/// What PAD concluded about one presentation.
#[derive(Debug, Clone, PartialEq, Eq, Copy)]
pub enum PadDecision {
    /// Enough evidence of a live hand.
    Live,
    /// A presentation attack (or a live hand the cues could not tell from one).
    Attack,
    /// No cue could run (nothing in view, or frames too dark): no answer; ask again.
    NoAnswer,
}

/// PAD's answer: score, decision and the cues behind them (never an image).
#[derive(Debug, Clone, PartialEq)]
pub struct PadReport {
    /// Liveness in [0, 1] (the weakest cue's evidence); `None` when no cue could run.
    pub score: Option<f32>,
    /// The decision at the profile's threshold.
    pub decision: PadDecision,
    /// Every cue that ran, with its value and evidence.
    pub cues: Vec<CueReading>,
    /// The cues that could not run on this burst (for example, every multi-band cue with a
    /// single-band sensor), so that a report says what it did not check.
    pub skipped: Vec<Cue>,
}

impl PadReport {
    /// The cue that weighed most against liveness (the one that set the score).
    pub fn weakest(&self) -> Option<&CueReading> {
        self.cues
            .iter()
            .min_by(|a, b| a.evidence.total_cmp(&b.evidence))
    }
}

/// Runs every cue the burst allows and decides at `profile`.
pub fn analyse(frames: &[PadFrame<'_>], profile: PadProfile) -> PadReport {
    let burst = view::BurstViews::new(frames);
    let mut cues = Vec::new();
    let mut skipped = Vec::new();
    for cue in Cue::ALL {
        match burst.as_ref().and_then(|burst| cue.measure(burst)) {
            Some(value) => cues.push(CueReading {
                cue,
                value,
                evidence: cue.evidence(value),
            }),
            None => skipped.push(cue),
        }
    }
    let score = cues
        .iter()
        .map(|reading| reading.evidence)
        .min_by(f32::total_cmp);
    let decision = match score {
        None => PadDecision::NoAnswer,
        Some(score) if score >= profile.threshold() => PadDecision::Live,
        Some(_) => PadDecision::Attack,
    };
    PadReport {
        score,
        decision,
        cues,
        skipped,
    }
}

#[cfg(test)]
mod tests;
