//! The capture loop of one hand: extraction results in, what to show the person out.
//!
//! Every capture goes through the matcher's own acceptance test (ROI, exposure, focus, coverage);
//! a refused capture is reported with the matcher's reason and a short piece of advice for the
//! person, and the loop asks for another one, up to a limit of refused captures.

use std::fmt;

use palmgate_matcher::extract::{ExtractError, Probe};
use palmgate_matcher::quality::QualityError;
use palmgate_matcher::roi::RoiError;
use palmgate_matcher::template::Template;

/// Which hand a capture series is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hand {
    /// The hand the person normally presents.
    Normal,
    /// The other hand, enrolled into a duress slot (a match opens and raises a silent alarm).
    Duress,
}

impl fmt::Display for Hand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Hand::Normal => "hand",
            Hand::Duress => "duress hand",
        })
    }
}

/// What one offered capture did.
#[derive(Debug, Clone, PartialEq)]
pub enum CaptureStep {
    /// The capture was accepted: it is number `number` (1-based) of `wanted`.
    Accepted {
        /// 1-based number of this accepted capture.
        number: usize,
        /// Captures wanted in all.
        wanted: usize,
        /// Valid cells of its template (out of 576).
        valid_cells: u16,
    },
    /// The capture was refused; another one is needed.
    Refused {
        /// The matcher's reason (e.g. `out of focus: sharpness 3.1 < 8.0`).
        reason: String,
        /// What the person should do.
        advice: &'static str,
        /// Refused captures so far.
        refused: usize,
        /// Refused captures allowed before giving up.
        max_refused: usize,
    },
    /// Too many captures were refused: the series ends without templates.
    GaveUp {
        /// Refused captures.
        refused: usize,
        /// The last reason.
        last_reason: String,
    },
}

/// Collects `wanted` accepted captures of one hand, allowing up to `max_refused` refused ones.
#[derive(Debug)]
pub struct CaptureLoop {
    wanted: usize,
    /// Captures of the same series accepted before this loop (an extra capture continues the
    /// series' numbering).
    numbered_after: usize,
    max_refused: usize,
    refused: usize,
    last_reason: String,
    /// Each accepted capture at its kind's poses, the pose found first.
    accepted: Vec<Vec<Template>>,
}

impl CaptureLoop {
    /// A loop wanting `wanted` captures (at least one) and giving up after `max_refused` refusals.
    pub fn new(wanted: usize, max_refused: usize) -> Self {
        let wanted = wanted.max(1);
        Self {
            wanted,
            numbered_after: 0,
            max_refused,
            refused: 0,
            last_reason: String::new(),
            accepted: Vec::with_capacity(wanted),
        }
    }

    /// The same loop going on with a series that already has `accepted` captures and `refused`
    /// refusals (an extra capture): [`CaptureStep::Accepted`] counts the accepted ones in
    /// `number` and `wanted`, and the refusals count against the same `max_refused`, which is
    /// an allowance per hand.
    #[must_use]
    pub fn continuing(mut self, accepted: usize, refused: usize) -> Self {
        self.numbered_after = accepted;
        self.refused = refused;
        self
    }

    /// Refused captures so far (those of the series it continues included).
    pub fn refused(&self) -> usize {
        self.refused
    }

    /// Offers the extraction result of one capture (cut at its kind's poses, as a gate cuts a
    /// probe: the station compares captures as a card compares a probe).
    ///
    /// # Errors
    /// An extraction failure that is not the capture's fault (the feature model failed): the
    /// station cannot go on.
    pub fn offer(
        &mut self,
        result: Result<Probe, ExtractError>,
    ) -> Result<CaptureStep, ExtractError> {
        if self.gave_up() {
            return Ok(self.gave_up_step());
        }
        match result {
            Ok(Probe { extraction, poses }) => {
                if self.is_complete() {
                    // More captures than wanted: the series is already complete; keep it as is.
                    return Ok(CaptureStep::Accepted {
                        number: self.numbered_after + self.accepted.len(),
                        wanted: self.numbered_after + self.wanted,
                        valid_cells: extraction.valid_cells,
                    });
                }
                let valid_cells = extraction.valid_cells;
                self.accepted.push(poses);
                Ok(CaptureStep::Accepted {
                    number: self.numbered_after + self.accepted.len(),
                    wanted: self.numbered_after + self.wanted,
                    valid_cells,
                })
            }
            Err(ExtractError::Features(error)) => Err(ExtractError::Features(error)),
            Err(refusal) => {
                self.refused += 1;
                self.last_reason = reason_text(&refusal);
                if self.gave_up() {
                    return Ok(self.gave_up_step());
                }
                Ok(CaptureStep::Refused {
                    reason: self.last_reason.clone(),
                    advice: advice(&refusal),
                    refused: self.refused,
                    max_refused: self.max_refused,
                })
            }
        }
    }

    /// Whether every wanted capture was accepted.
    pub fn is_complete(&self) -> bool {
        self.accepted.len() >= self.wanted
    }

    /// Whether the loop gave up (more than `max_refused` refusals).
    pub fn gave_up(&self) -> bool {
        self.refused > self.max_refused
    }

    /// Accepted captures so far.
    pub fn accepted(&self) -> usize {
        self.accepted.len()
    }

    /// The accepted captures, in capture order, each at its poses (the pose found first).
    pub fn into_captures(self) -> Vec<Vec<Template>> {
        self.accepted
    }

    fn gave_up_step(&self) -> CaptureStep {
        CaptureStep::GaveUp {
            refused: self.refused,
            last_reason: self.last_reason.clone(),
        }
    }
}

/// The matcher's reason, without the generic prefixes of [`ExtractError`]'s messages.
fn reason_text(refusal: &ExtractError) -> String {
    match refusal {
        ExtractError::Roi(error) => error.to_string(),
        ExtractError::Quality(error) => error.to_string(),
        other => other.to_string(),
    }
}

/// A short instruction for the person in front of the sensor.
pub fn advice(refusal: &ExtractError) -> &'static str {
    match refusal {
        ExtractError::Roi(error) | ExtractError::Quality(QualityError::Roi(error)) => {
            roi_advice(error)
        }
        ExtractError::Quality(QualityError::Underexposed { .. }) => {
            "too dark: hold the hand closer to the sensor, or check its illumination"
        }
        ExtractError::Quality(QualityError::Overexposed { .. } | QualityError::Clipped { .. }) => {
            "too bright: hold the hand a little further away, out of direct light"
        }
        ExtractError::Quality(QualityError::OutOfFocus { .. }) => {
            "blurred: hold the hand still, at the marked distance"
        }
        ExtractError::Quality(QualityError::LowCoverage { .. }) | ExtractError::Coverage { .. } => {
            "hold the whole palm flat over the sensor"
        }
        _ => "present the hand again, palm flat, fingers spread",
    }
}

fn roi_advice(error: &RoiError) -> &'static str {
    match error {
        RoiError::ImageTooSmall { .. } => "the sensor sent an unusable image: check the sensor",
        RoiError::NoHand { .. } => "no hand seen: place the hand over the sensor",
        RoiError::HandTooSmall { .. } => "hand too far: move it closer to the sensor",
        RoiError::HandFillsFrame { .. } => "hand too close: move it further from the sensor",
        RoiError::ValleysNotFound => "spread the fingers, palm flat towards the sensor",
        RoiError::RoiOutsideImage { .. } => "centre the hand over the sensor",
        _ => "present the hand again, palm flat, fingers spread",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palmgate_matcher::extract::Extractor;
    use palmgate_matcher::template::CELLS;

    fn extraction(seed: u8) -> Probe {
        let orientations: [u8; CELLS] = core::array::from_fn(|i| ((i as u8) ^ seed) % 6);
        let template = Template::from_cells(&orientations, &[true; CELLS]).expect("template");
        let roi = palmgate_matcher::roi::Roi::from_roi_image(&image::GrayImage::from_fn(
            128,
            128,
            |x, y| image::Luma([((x * 7 + y * 3) % 200 + 20) as u8]),
        ))
        .expect("roi");
        Probe {
            poses: vec![template.clone()],
            extraction: palmgate_matcher::extract::Extraction {
                template,
                roi_method: palmgate_matcher::roi::RoiMethod::Given,
                valid_cells: CELLS as u16,
                quality: palmgate_matcher::quality::measure(&roi),
            },
        }
    }

    fn blurred() -> ExtractError {
        ExtractError::Quality(QualityError::OutOfFocus {
            focus: 3.0,
            min: 8.0,
        })
    }

    #[test]
    fn accepts_until_complete_and_reports_refusals_with_advice() {
        let mut captures = CaptureLoop::new(3, 5);
        assert_eq!(
            captures.offer(Ok(extraction(1))).expect("step"),
            CaptureStep::Accepted {
                number: 1,
                wanted: 3,
                valid_cells: 576
            }
        );
        match captures.offer(Err(blurred())).expect("step") {
            CaptureStep::Refused {
                reason,
                advice,
                refused,
                max_refused,
            } => {
                assert_eq!(reason, "out of focus: sharpness 3.0 < 8.0");
                assert!(advice.contains("still"), "{advice}");
                assert_eq!((refused, max_refused), (1, 5));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        match captures
            .offer(Err(ExtractError::Roi(RoiError::NoHand { contrast: 2 })))
            .expect("step")
        {
            CaptureStep::Refused { reason, advice, .. } => {
                assert!(reason.starts_with("no hand"), "{reason}");
                assert!(advice.contains("place the hand"), "{advice}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!captures.is_complete());
        captures.offer(Ok(extraction(2))).expect("step");
        assert_eq!(
            captures.offer(Ok(extraction(3))).expect("step"),
            CaptureStep::Accepted {
                number: 3,
                wanted: 3,
                valid_cells: 576
            }
        );
        assert!(captures.is_complete());
        assert_eq!(captures.into_captures().len(), 3);
    }

    #[test]
    fn gives_up_after_too_many_refusals() {
        let mut captures = CaptureLoop::new(2, 2);
        captures.offer(Ok(extraction(1))).expect("step");
        for _ in 0..2 {
            assert!(matches!(
                captures.offer(Err(blurred())).expect("step"),
                CaptureStep::Refused { .. }
            ));
        }
        let step = captures.offer(Err(blurred())).expect("step");
        assert_eq!(
            step,
            CaptureStep::GaveUp {
                refused: 3,
                last_reason: "out of focus: sharpness 3.0 < 8.0".to_string()
            }
        );
        assert!(captures.gave_up());
        // A good capture after giving up does not revive the series.
        assert!(matches!(
            captures.offer(Ok(extraction(2))).expect("step"),
            CaptureStep::GaveUp { .. }
        ));
        assert!(!captures.is_complete());
    }

    #[test]
    fn an_extra_capture_is_numbered_after_the_series_it_continues_and_shares_its_allowance() {
        let mut captures = CaptureLoop::new(1, 3).continuing(3, 1);
        assert!(matches!(
            captures.offer(Err(blurred())).expect("step"),
            CaptureStep::Refused { refused: 2, .. }
        ));
        assert_eq!(
            captures.offer(Ok(extraction(4))).expect("step"),
            CaptureStep::Accepted {
                number: 4,
                wanted: 4,
                valid_cells: 576
            }
        );
        assert!(captures.is_complete());
        assert_eq!(
            captures.accepted(),
            1,
            "the loop itself holds the one capture"
        );
    }

    #[test]
    fn a_model_failure_is_an_error_not_a_refusal() {
        let mut captures = CaptureLoop::new(1, 3);
        let failure = ExtractError::Features(palmgate_matcher::features::FeatureError::Run(
            "broken".to_string(),
        ));
        assert!(captures.offer(Err(failure)).is_err());
        assert_eq!(captures.accepted(), 0);
        assert!(!captures.gave_up());
    }

    #[test]
    fn every_refusal_has_advice() {
        let refusals = [
            ExtractError::Roi(RoiError::ImageTooSmall {
                width: 2,
                height: 2,
            }),
            ExtractError::Roi(RoiError::HandTooSmall { percent: 1.0 }),
            ExtractError::Roi(RoiError::HandFillsFrame { percent: 99.0 }),
            ExtractError::Roi(RoiError::ValleysNotFound),
            ExtractError::Roi(RoiError::RoiOutsideImage { percent: 20.0 }),
            ExtractError::Quality(QualityError::Underexposed {
                mean: 10.0,
                min: 35.0,
            }),
            ExtractError::Quality(QualityError::Overexposed {
                mean: 250.0,
                max: 235.0,
            }),
            ExtractError::Quality(QualityError::Clipped { percent: 30.0 }),
            ExtractError::Quality(QualityError::LowCoverage {
                percent: 50.0,
                min_percent: 80.0,
            }),
            ExtractError::Coverage {
                valid_cells: 10,
                required: 352,
            },
        ];
        let mut seen = std::collections::HashSet::new();
        for refusal in &refusals {
            let text = advice(refusal);
            assert!(!text.is_empty());
            seen.insert(text);
        }
        // Different problems get different advice (coverage shares one).
        assert!(seen.len() >= 8, "{seen:?}");
    }

    #[test]
    fn real_extractor_refusals_are_reported() {
        let extractor = Extractor::builtin().expect("built-in model");
        let black = image::GrayImage::new(640, 480);
        let mut captures = CaptureLoop::new(1, 1);
        let step = captures
            .offer(extractor.extract_probe(&black, palmgate_matcher::extract::InputKind::Hand))
            .expect("step");
        match step {
            CaptureStep::Refused { reason, advice, .. } => {
                assert!(reason.contains("no hand"), "{reason}");
                assert!(advice.contains("place the hand"), "{advice}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
