//! The PAD stage seen from the gate: the frames of one presentation handed to
//! [`palmgate_matcher::pad::analyse`], and the words of an attack's events.

use std::time::Duration;

use palmgate_matcher::pad::{self, PadFrame, PadReport, PadSettings};
use palmgate_sensor::codec::Band;

use super::Frames;

/// Runs the PAD stage on the frames of one presentation.
pub(super) fn analyse(frames: &Frames, profile: pad::PadProfile) -> PadReport {
    let frames: Vec<PadFrame<'_>> = match frames {
        Frames::Single(image) => vec![PadFrame {
            band: None,
            exposed_after: Duration::ZERO,
            image: image.as_gray(),
        }],
        Frames::Burst { received, .. } => received
            .iter()
            .map(|frame| PadFrame {
                band: Some(pad_band(frame.band)),
                exposed_after: frame.exposed_after,
                image: frame.frame.image.as_gray(),
            })
            .collect(),
    };
    pad::analyse(&frames, profile)
}

/// The PAD stage's name for a sensor band.
pub(super) fn pad_band(band: Band) -> pad::Band {
    match band {
        Band::Ambient => pad::Band::Ambient,
        Band::Nir850 => pad::Band::Nir850,
        Band::Nir940 => pad::Band::Nir940,
        Band::Visible => pad::Band::Visible,
    }
}

/// The words of an attack's events: the score against the profile's threshold, the cues that
/// objected with their values, and what could not be checked.
pub(super) fn describe(report: &PadReport, settings: PadSettings) -> String {
    let threshold = settings.profile.threshold();
    let mut objections: Vec<_> = report
        .cues
        .iter()
        .filter(|reading| reading.evidence < threshold)
        .collect();
    objections.sort_by(|a, b| a.evidence.total_cmp(&b.evidence));
    let against: Vec<String> = objections
        .iter()
        .map(|reading| format!("{} = {:.3}", reading.cue.name(), reading.value))
        .collect();
    let mut detail = format!(
        "liveness {:.2}, needs {threshold:.2} ({} profile); against: {}",
        report.score.unwrap_or(0.0),
        settings.profile.name(),
        against.join(", ")
    );
    if !report.skipped.is_empty() {
        let skipped: Vec<&str> = report.skipped.iter().map(|cue| cue.name()).collect();
        detail.push_str(&format!("; not checked: {}", skipped.join(", ")));
    }
    detail
}
