//! The extraction pipeline: image → ROI → quality → filter bank → template.

use std::path::Path;

use image::GrayImage;

use crate::compare::MAX_PROBE_POSES;
use crate::features::{CELLS, FeatureError, FeatureModel, INPUT_SIDE, ORIENTATIONS};
use crate::quality::{self, QualityBar, QualityError, QualityReport};
use crate::roi::{self, Pose, Roi, RoiError, RoiMethod};
use crate::template::{GRID, Template};

/// What an input image shows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum InputKind {
    /// A whole hand on a background: the ROI is found and cut.
    #[default]
    Hand,
    /// An image that already is a palm ROI (sensors that cut it themselves, ROI databases).
    Roi,
}

/// Centre of cell 0 in the ROI, pixels (cells are 5 px, centred on 6, 11, …, 121).
const FIRST_CELL_CENTRE: usize = 6;
/// Cell pitch in the ROI, pixels.
const CELL_PITCH: usize = 5;
/// Half side of the window around a cell centre that must lie on the hand for the cell to count:
/// the core of the filter (about one wavelength).
const CELL_WINDOW_HALF: usize = 5;
/// Share of the window's pixels that must be valid.
const CELL_WINDOW_VALID: f32 = 0.9;
/// Fewest valid cells a template may have: below this it could never reach the comparison's
/// minimum overlap once shifted.
pub const MIN_VALID_CELLS: u16 = crate::compare::MIN_OVERLAP_CELLS + 64;

/// Why no template was made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// No palm ROI could be cut (no hand, valleys not found, ROI outside the frame, …). The
    /// reason is said in the text, so it is not also a `source()`: a printed chain says it once.
    #[error("no palm ROI: {0}")]
    Roi(RoiError),
    /// The ROI was cut but the capture is below the quality bar (exposure, focus, coverage).
    #[error("capture refused: {0}")]
    Quality(QualityError),
    /// Too little of the ROI lies on the hand.
    #[error("too little palm visible: {valid_cells} valid cells, {required} required")]
    Coverage {
        /// Valid cells found.
        valid_cells: u16,
        /// Cells required.
        required: u16,
    },
    /// The feature model failed.
    #[error(transparent)]
    Features(#[from] FeatureError),
}

impl From<RoiError> for ExtractError {
    fn from(error: RoiError) -> Self {
        Self::Roi(error)
    }
}

/// A template with what was measured on the way (for logs and the CLI; no biometric data but the
/// template itself, which is redacted in `Debug`).
#[derive(Debug)]
pub struct Extraction {
    /// The template.
    pub template: Template,
    /// How the ROI was found.
    pub roi_method: RoiMethod,
    /// Valid cells in the template.
    pub valid_cells: u16,
    /// Exposure, focus and coverage measured on the ROI.
    pub quality: QualityReport,
}

/// Rotation of the turned probe poses, degrees. Chosen on the development sets between 5° and
/// 10° (`docs/matcher.md`, "Probe poses"): 10° pulls impostors closer more than it helps genuine
/// pairs on the ROI sets.
pub const PROBE_TURN_DEGREES: f32 = 5.0;

/// Sideways slide of the slid probe poses, as a fraction of the ROI side (8 %: about two cells
/// beyond the comparison's own ±2-cell search).
pub const PROBE_SLIDE: f32 = 0.08;

/// Every pose a probe may be cut at, in the order they are sent: the frame as found, turned by
/// ∓[`PROBE_TURN_DEGREES`], slid left and right by [`PROBE_SLIDE`]. [`probe_poses`] says which
/// apply to an input kind.
pub const PROBE_POSES: [Pose; MAX_PROBE_POSES] = [
    Pose::FOUND,
    Pose {
        rotation: -PROBE_TURN_DEGREES * std::f32::consts::PI / 180.0,
        offset: [0.0, 0.0],
    },
    Pose {
        rotation: PROBE_TURN_DEGREES * std::f32::consts::PI / 180.0,
        offset: [0.0, 0.0],
    },
    Pose {
        rotation: 0.0,
        offset: [-PROBE_SLIDE, 0.0],
    },
    Pose {
        rotation: 0.0,
        offset: [PROBE_SLIDE, 0.0],
    },
];

/// The poses the gate cuts a probe at. A whole hand is framed by its own finger valleys: the
/// found frame and the two turned ones. An ROI the sensor cut itself keeps that sensor's looser
/// placement, which the gate cannot re-find: it is also slid sideways (all five).
pub const fn probe_poses(kind: InputKind) -> &'static [Pose] {
    match kind {
        InputKind::Hand => PROBE_POSES.split_at(3).0,
        InputKind::Roi => &PROBE_POSES,
    }
}

/// A probe cut at its [`probe_poses`]: what the gate sends the card.
#[derive(Debug)]
pub struct Probe {
    /// The extraction at the pose found (its quality is the capture's).
    pub extraction: Extraction,
    /// The templates of every pose that gave one, the pose found first (so never empty).
    pub poses: Vec<Template>,
}

/// Turns palm images into templates. Holds the optimised filter bank; clone it to share between
/// threads (the plan is shared). All methods are synchronous and CPU-bound.
#[derive(Debug, Clone)]
pub struct Extractor {
    model: FeatureModel,
    bar: QualityBar,
}

impl Extractor {
    /// With the committed filter bank.
    pub fn builtin() -> Result<Extractor, ExtractError> {
        Ok(Extractor {
            model: FeatureModel::builtin()?,
            bar: QualityBar::default(),
        })
    }

    /// With a replacement model (same input and output as the committed one).
    pub fn from_model_file(path: &Path) -> Result<Extractor, ExtractError> {
        Ok(Extractor {
            model: FeatureModel::from_file(path)?,
            bar: QualityBar::default(),
        })
    }

    /// The same extractor with another quality bar.
    #[must_use]
    pub fn with_quality_bar(mut self, bar: QualityBar) -> Extractor {
        self.bar = bar;
        self
    }

    /// The quality bar captures must clear.
    pub fn quality_bar(&self) -> &QualityBar {
        &self.bar
    }

    /// Extracts a template from a grey image.
    pub fn extract(&self, image: &GrayImage, kind: InputKind) -> Result<Template, ExtractError> {
        Ok(self.extract_detailed(image, kind)?.template)
    }

    /// Extracts a template from a decoded image of any colour type; a colour whole-hand image keeps
    /// its colour for the hand segmentation.
    pub fn extract_image(
        &self,
        image: &image::DynamicImage,
        kind: InputKind,
    ) -> Result<Extraction, ExtractError> {
        let roi = match (kind, image) {
            (InputKind::Hand, image::DynamicImage::ImageLuma8(gray)) => roi::extract_roi(gray)?,
            (InputKind::Hand, image) if image.color().has_color() => {
                roi::extract_roi_rgb(&image.to_rgb8())?
            }
            (InputKind::Hand, image) => roi::extract_roi(&image.to_luma8())?,
            (InputKind::Roi, image) => Roi::from_roi_image(&image.to_luma8())?,
        };
        self.extract_from_roi(&roi)
    }

    /// Like [`Extractor::extract_image`], once per pose of the ROI frame (the hand is segmented
    /// once). The outer error is a capture with no ROI at all; each pose has its own outcome.
    pub fn extract_image_posed(
        &self,
        image: &image::DynamicImage,
        kind: InputKind,
        poses: &[Pose],
    ) -> Result<Vec<Result<Extraction, ExtractError>>, ExtractError> {
        let rois = match (kind, image) {
            (InputKind::Hand, image::DynamicImage::ImageLuma8(gray)) => {
                roi::extract_roi_posed(gray, poses)?
            }
            (InputKind::Hand, image) if image.color().has_color() => {
                roi::extract_roi_rgb_posed(&image.to_rgb8(), poses)?
            }
            (InputKind::Hand, image) => roi::extract_roi_posed(&image.to_luma8(), poses)?,
            (InputKind::Roi, image) => Roi::from_roi_image_poses(&image.to_luma8(), poses)?
                .into_iter()
                .map(Ok)
                .collect(),
        };
        Ok(rois
            .into_iter()
            .map(|roi| self.extract_from_roi(&roi?))
            .collect())
    }

    /// A probe: the template at the pose found (whose refusal is the capture's) and at the other
    /// [`probe_poses`] of the input kind (a pose that gives no template is left out).
    pub fn extract_probe(&self, image: &GrayImage, kind: InputKind) -> Result<Probe, ExtractError> {
        let rois = match kind {
            InputKind::Hand => roi::extract_roi_posed(image, probe_poses(kind))?,
            InputKind::Roi => Roi::from_roi_image_poses(image, probe_poses(kind))?
                .into_iter()
                .map(Ok)
                .collect(),
        };
        Probe::from_extractions(rois.into_iter().map(|roi| self.extract_from_roi(&roi?)))
    }

    /// Like [`Extractor::extract_probe`] from an image of any colour type, at `poses` (the first
    /// is the one whose refusal is the capture's).
    pub fn extract_image_probe(
        &self,
        image: &image::DynamicImage,
        kind: InputKind,
        poses: &[Pose],
    ) -> Result<Probe, ExtractError> {
        Probe::from_extractions(self.extract_image_posed(image, kind, poses)?.into_iter())
    }

    /// Like [`Extractor::extract`], with the measurements.
    pub fn extract_detailed(
        &self,
        image: &GrayImage,
        kind: InputKind,
    ) -> Result<Extraction, ExtractError> {
        let roi = match kind {
            InputKind::Hand => roi::extract_roi(image)?,
            InputKind::Roi => Roi::from_roi_image(image)?,
        };
        self.extract_from_roi(&roi)
    }

    /// Template from a cut ROI (after the quality checks).
    pub fn extract_from_roi(&self, roi: &Roi) -> Result<Extraction, ExtractError> {
        let quality = match quality::check(roi, &self.bar) {
            Ok(report) => report,
            Err(QualityError::Roi(e)) => return Err(ExtractError::Roi(e)),
            Err(refusal) => return Err(ExtractError::Quality(refusal)),
        };
        let valid = cell_validity(&roi.valid);
        let valid_cells = valid.iter().filter(|&&v| v).count() as u16;
        if valid_cells < MIN_VALID_CELLS {
            return Err(ExtractError::Coverage {
                valid_cells,
                required: MIN_VALID_CELLS,
            });
        }
        let responses = self.model.responses(roi.image.as_raw())?;
        let mut orientations = [0u8; CELLS];
        for (cell, orientation) in orientations.iter_mut().enumerate() {
            let mut best = 0;
            for k in 1..ORIENTATIONS {
                if responses.0[k][cell] < responses.0[best][cell] {
                    best = k;
                }
            }
            *orientation = best as u8;
        }
        let template = Template::from_cells(&orientations, &valid);
        zeroize::Zeroize::zeroize(&mut orientations);
        let template = template.map_err(|e| {
            FeatureError::Run(format!("model output gave an invalid template: {e}"))
        })?;
        Ok(Extraction {
            template,
            roi_method: roi.geometry.method,
            valid_cells,
            quality,
        })
    }
}

impl Probe {
    /// From the extractions of [`PROBE_POSES`], in order.
    fn from_extractions(
        mut extractions: impl Iterator<Item = Result<Extraction, ExtractError>>,
    ) -> Result<Probe, ExtractError> {
        let extraction = extractions
            .next()
            .ok_or(ExtractError::Roi(RoiError::ValleysNotFound))??;
        let mut poses = Vec::with_capacity(MAX_PROBE_POSES);
        poses.push(extraction.template.clone());
        poses.extend(extractions.filter_map(|e| e.ok().map(|e| e.template)));
        Ok(Probe { extraction, poses })
    }
}

/// A cell is valid when nearly all of the window around its centre lies on the hand.
fn cell_validity(valid: &GrayImage) -> [bool; CELLS] {
    let mut cells = [false; CELLS];
    if valid.dimensions() != (INPUT_SIDE as u32, INPUT_SIDE as u32) {
        return cells;
    }
    let pixels = valid.as_raw();
    let window = (2 * CELL_WINDOW_HALF + 1) * (2 * CELL_WINDOW_HALF + 1);
    for (index, cell) in cells.iter_mut().enumerate() {
        let cx = FIRST_CELL_CENTRE + CELL_PITCH * (index % GRID);
        let cy = FIRST_CELL_CENTRE + CELL_PITCH * (index / GRID);
        let mut count = 0usize;
        for y in cy.saturating_sub(CELL_WINDOW_HALF)..=(cy + CELL_WINDOW_HALF).min(INPUT_SIDE - 1) {
            for x in
                cx.saturating_sub(CELL_WINDOW_HALF)..=(cx + CELL_WINDOW_HALF).min(INPUT_SIDE - 1)
            {
                count += usize::from(pixels[y * INPUT_SIDE + x] >= 128);
            }
        }
        *cell = count as f32 >= CELL_WINDOW_VALID * window as f32;
    }
    cells
}
