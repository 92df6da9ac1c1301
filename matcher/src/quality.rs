//! Capture quality: whether a capture is good enough to make a template, and if not, why.
//!
//! "Hand found" and "ROI inside the frame" are decided by the ROI step itself (a [`RoiError`]);
//! this module adds the checks on the cut ROI: exposure (mean level, clipped shares), focus, and the
//! share of the ROI that lies on the hand. The sensor loop refuses a capture below the bar with the
//! reason and tries the next frame.

use image::GrayImage;

use crate::roi::{self, RawStats, Roi, RoiError};

/// The bar a capture must clear.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityBar {
    /// Lowest acceptable mean grey level of the palm (before contrast normalisation).
    pub min_mean: f32,
    /// Highest acceptable mean grey level.
    pub max_mean: f32,
    /// Highest acceptable share of saturated (≥ 250) palm pixels.
    pub max_saturated: f32,
    /// Highest acceptable share of black (≤ 5) palm pixels.
    pub max_dark: f32,
    /// Lowest acceptable sharpness ([`RawStats::focus`]).
    pub min_focus: f32,
    /// Lowest acceptable share of ROI pixels on the hand.
    pub min_valid: f32,
}

impl Default for QualityBar {
    /// A bar that the project's synthetic captures and the evaluation sets clear with a margin,
    /// and that blank, black, burnt-out or badly blurred captures do not.
    fn default() -> Self {
        Self {
            min_mean: 35.0,
            max_mean: 235.0,
            max_saturated: 0.10,
            max_dark: 0.10,
            min_focus: 8.0,
            min_valid: 0.80,
        }
    }
}

/// Why a capture was refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QualityError {
    /// No hand, no valleys, ROI outside the frame, ...
    #[error(transparent)]
    Roi(#[from] RoiError),
    /// The palm is too dark.
    #[error("underexposed: palm mean level {mean:.0} < {min:.0}")]
    Underexposed {
        /// Measured mean level.
        mean: f32,
        /// Required minimum.
        min: f32,
    },
    /// The palm is too bright.
    #[error("overexposed: palm mean level {mean:.0} > {max:.0}")]
    Overexposed {
        /// Measured mean level.
        mean: f32,
        /// Allowed maximum.
        max: f32,
    },
    /// Too many clipped pixels (white or black).
    #[error("clipped: {percent:.1} % of the palm is saturated or black")]
    Clipped {
        /// Share of clipped palm pixels, percent.
        percent: f32,
    },
    /// Blurred (motion or out of focus).
    #[error("out of focus: sharpness {focus:.1} < {min:.1}")]
    OutOfFocus {
        /// Measured sharpness.
        focus: f32,
        /// Required minimum.
        min: f32,
    },
    /// Too little of the ROI lies on the hand.
    #[error("ROI only {percent:.0} % on the hand (need {min_percent:.0} %)")]
    LowCoverage {
        /// Share of valid ROI pixels, percent.
        percent: f32,
        /// Required share, percent.
        min_percent: f32,
    },
}

/// What was measured on an accepted capture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityReport {
    /// Exposure and focus of the raw ROI.
    pub raw: RawStats,
    /// Share of ROI pixels on the hand (0–1).
    pub valid: f32,
}

/// Measures an ROI without judging it.
#[must_use]
pub fn measure(roi: &Roi) -> QualityReport {
    QualityReport {
        raw: roi.raw,
        valid: valid_share(&roi.valid),
    }
}

/// Checks an ROI against the bar.
///
/// # Errors
/// The first failed check, with the measured value.
pub fn check(roi: &Roi, bar: &QualityBar) -> Result<QualityReport, QualityError> {
    let report = measure(roi);
    let raw = report.raw;
    if report.valid < bar.min_valid {
        return Err(QualityError::LowCoverage {
            percent: 100.0 * report.valid,
            min_percent: 100.0 * bar.min_valid,
        });
    }
    if raw.mean < bar.min_mean {
        return Err(QualityError::Underexposed {
            mean: raw.mean,
            min: bar.min_mean,
        });
    }
    if raw.mean > bar.max_mean {
        return Err(QualityError::Overexposed {
            mean: raw.mean,
            max: bar.max_mean,
        });
    }
    if raw.saturated > bar.max_saturated || raw.dark > bar.max_dark {
        return Err(QualityError::Clipped {
            percent: 100.0 * (raw.saturated + raw.dark),
        });
    }
    if raw.focus < bar.min_focus {
        return Err(QualityError::OutOfFocus {
            focus: raw.focus,
            min: bar.min_focus,
        });
    }
    Ok(report)
}

/// Cuts the ROI from a whole-hand image and checks it: the whole gate-side acceptance test.
///
/// # Errors
/// Why the capture was refused: the ROI step's reason or a failed quality check.
pub fn accept_hand(
    hand: &GrayImage,
    bar: &QualityBar,
) -> Result<(Roi, QualityReport), QualityError> {
    let roi = roi::extract_roi(hand)?;
    let report = check(&roi, bar)?;
    Ok((roi, report))
}

fn valid_share(valid: &GrayImage) -> f32 {
    let total = valid.pixels().len().max(1);
    valid.pixels().filter(|p| p.0[0] >= 128).count() as f32 / total as f32
}
