//! Palm region of interest (ROI): from a whole-hand image to a 128×128 palm crop normalised in
//! rotation, scale and contrast.
//!
//! Method (see `docs/roi.md`):
//! 1. Work on a copy reduced to at most [`WORK_MAX_SIDE`] pixels. Segment the hand against the
//!    background with Otsu's threshold on the smoothed image, keep the largest component, fill its
//!    holes and open it (pegs, threads and rings detach and are dropped with the small components).
//! 2. Palm centre and radius: the centre of the largest inscribed disc (distance transform; the image
//!    frame counts as background, so a forearm cut by the frame does not win).
//! 3. Finger valleys: along the hand contour, the distance from the palm centre peaks at the fingertips
//!    and dips between them. The valleys are the deepest dips between consecutive tips; of the valleys
//!    found, the regular run of three (index–middle, middle–ring, ring–little) is kept and its two
//!    outer valleys define the hand frame: rotation from the line through them, scale from their
//!    distance `d`. The ROI is the square of side [`ROI_SIDE_PER_VALLEY_DISTANCE`]` · d` centred
//!    [`ROI_OFFSET_PER_VALLEY_DISTANCE`]` · d` below the valley line.
//! 4. When no such run of valleys exists, fall back to the palm centre, the direction from the wrist
//!    (where the hand leaves the frame) to the palm centre, and the palm radius as scale.
//! 5. Cut the ROI from the full-resolution image (bilinear), mark which of its pixels lie on the hand
//!    inside the frame, and equalise its contrast with CLAHE.
//!
//! The ROI is a rotation (never a mirror image) of the input: the fingers point up, the wrist down.

use image::{GrayImage, Luma, RgbImage};
use imageproc::contours::{BorderType, find_contours};
use zeroize::Zeroize;

/// Side of the square ROI, in pixels.
pub const ROI_SIZE: u32 = 128;
/// Side of the palm ROI, as a multiple of the distance between the index–middle and ring–little
/// finger valleys.
pub const ROI_SIDE_PER_VALLEY_DISTANCE: f32 = 1.2;
/// Distance from the middle of the valley line to the ROI centre (towards the wrist), as a multiple of
/// the valley distance.
pub const ROI_OFFSET_PER_VALLEY_DISTANCE: f32 = 0.75;
/// Segmentation runs on a copy whose longer side is at most this many pixels.
pub const WORK_MAX_SIDE: u32 = 320;

/// Valley distance as a multiple of the palm's inscribed radius, for the fallback (palm centre)
/// method: the index–middle to ring–little distance is about the palm's half width.
const FALLBACK_VALLEY_PER_RADIUS: f32 = 1.0;
/// ROI centre offset from the palm centre towards the fingers, in palm radii (fallback method).
const FALLBACK_OFFSET_PER_RADIUS: f32 = 0.3;

/// Why no ROI could be cut.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RoiError {
    /// The image is too small to hold a hand or a palm.
    #[error("image too small ({width}×{height})")]
    ImageTooSmall {
        /// Image width.
        width: u32,
        /// Image height.
        height: u32,
    },
    /// Nothing stands out from the background (blank, black or uniform image).
    #[error("no hand: no object stands out from the background (contrast {contrast})")]
    NoHand {
        /// Difference between the mean hand and background levels found (0–255).
        contrast: u8,
    },
    /// Something was found but it is too small to be a hand at this distance.
    #[error("hand too small: {percent:.1} % of the image")]
    HandTooSmall {
        /// Share of the image covered by the largest object.
        percent: f32,
    },
    /// The object fills the frame: too close, or not a hand on a background.
    #[error("hand fills the frame ({percent:.1} % of the image)")]
    HandFillsFrame {
        /// Share of the image covered by the object.
        percent: f32,
    },
    /// Neither the finger valleys nor the palm centre and wrist give a hand frame.
    #[error("finger valleys not found and no wrist to orient the palm")]
    ValleysNotFound,
    /// The palm ROI would extend beyond the image (hand cut off or too close to an edge).
    #[error("palm ROI outside the image ({percent:.0} % of it is outside)")]
    RoiOutsideImage {
        /// Share of the ROI area that falls outside the image.
        percent: f32,
    },
}

/// How the hand frame of an ROI was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoiMethod {
    /// From the index–middle and ring–little finger valleys.
    Valleys,
    /// Fallback: palm centre, wrist direction and palm radius.
    PalmCentre,
    /// The input was already an ROI.
    Given,
}

/// What the ROI step found in the input image (input pixel coordinates).
#[derive(Debug, Clone, PartialEq)]
pub struct HandGeometry {
    /// Method used.
    pub method: RoiMethod,
    /// Index–middle and ring–little valleys (in either order), when found.
    pub valleys: Option<[[f32; 2]; 2]>,
    /// Centre of the palm's largest inscribed disc (`None` for a given ROI).
    pub palm_centre: Option<[f32; 2]>,
    /// Radius of that disc.
    pub palm_radius: f32,
    /// Centre of the ROI.
    pub centre: [f32; 2],
    /// Rotation of the hand frame, radians: 0 when the fingers point up, positive when they turn
    /// clockwise on screen.
    pub angle: f32,
    /// Side of the ROI, input pixels.
    pub side: f32,
    /// Share of the image covered by the hand (0–1).
    pub hand_fraction: f32,
}

/// Statistics of the ROI before contrast normalisation (for the quality checks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawStats {
    /// Mean grey level over the valid pixels.
    pub mean: f32,
    /// Share of valid pixels at 250 or above.
    pub saturated: f32,
    /// Share of valid pixels at 5 or below.
    pub dark: f32,
    /// Sharpness: mean absolute Laplacian over the valid interior, relative to the mean level
    /// (so that it does not depend on the exposure), ×1000.
    pub focus: f32,
}

/// A change of the hand frame before the ROI is cut: a rotation about the ROI centre and a move of
/// that centre. The gate cuts the probe at a few poses so that a hand turned, or an ROI placed a
/// little off, still lines up with the enrolled templates (the comparison only shifts). Scaled
/// cuts were measured too and left out (`docs/matcher.md`, "Probe poses").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Extra rotation of the frame, radians (positive: clockwise on screen).
    pub rotation: f32,
    /// Move of the ROI centre along the ROI's own axes (x to the right, y towards the wrist), as
    /// a fraction of the side found.
    pub offset: [f32; 2],
}

impl Pose {
    /// The frame as found.
    pub const FOUND: Pose = Pose {
        rotation: 0.0,
        offset: [0.0, 0.0],
    };

    /// `centre` moved by the pose's offset in the frame whose y axis is `down` (the frame found,
    /// before the pose's rotation), `side` being the side found.
    fn shift(&self, centre: [f32; 2], down: [f32; 2], side: f32) -> [f32; 2] {
        let ex = [down[1], -down[0]];
        let (a, b) = (self.offset[0] * side, self.offset[1] * side);
        [
            centre[0] + a * ex[0] + b * down[0],
            centre[1] + a * ex[1] + b * down[1],
        ]
    }

    /// The `down` unit vector turned by the pose's rotation.
    fn turn(&self, down: [f32; 2]) -> [f32; 2] {
        let (sin, cos) = self.rotation.sin_cos();
        [down[0] * cos - down[1] * sin, down[0] * sin + down[1] * cos]
    }
}

/// A palm ROI. The pixel buffers are zeroised on drop and never printed.
pub struct Roi {
    /// [`ROI_SIZE`]×[`ROI_SIZE`], fingers up, contrast-normalised (CLAHE).
    pub image: GrayImage,
    /// [`ROI_SIZE`]×[`ROI_SIZE`], 255 where the pixel lies on the hand inside the input frame.
    pub valid: GrayImage,
    /// What was found in the input.
    pub geometry: HandGeometry,
    /// The crop before contrast normalisation, summarised.
    pub raw: RawStats,
}

impl std::fmt::Debug for Roi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roi")
            .field("image", &"REDACTED")
            .field("valid", &"REDACTED")
            .field("geometry", &self.geometry)
            .field("raw", &self.raw)
            .finish()
    }
}

impl Drop for Roi {
    fn drop(&mut self) {
        let image: &mut [u8] = &mut self.image;
        image.zeroize();
        let valid: &mut [u8] = &mut self.valid;
        valid.zeroize();
    }
}

impl Roi {
    /// Accepts an image that already is a palm ROI: crops it to a centred square, resizes it to
    /// [`ROI_SIZE`] if needed and normalises its contrast. Every pixel is valid except the
    /// sensor's padding: a flat dark fill reaching the border where the sensor's cut left its
    /// camera's image ([`sensor_content`]).
    ///
    /// # Errors
    /// [`RoiError::ImageTooSmall`] below 32×32 pixels.
    pub fn from_roi_image(roi: &GrayImage) -> Result<Roi, RoiError> {
        Roi::from_roi_image_posed(roi, Pose::FOUND)
    }

    /// Like [`Roi::from_roi_image`], the square turned and moved by `pose` about the image centre;
    /// the pixels that fall outside the image or on the sensor's padding are not valid.
    ///
    /// # Errors
    /// [`RoiError::ImageTooSmall`] below 32×32 pixels.
    pub fn from_roi_image_posed(roi: &GrayImage, pose: Pose) -> Result<Roi, RoiError> {
        given_size_check(roi)?;
        Ok(Roi::given(roi, &sensor_content(roi), pose))
    }

    /// [`Roi::from_roi_image_posed`] at each of `poses`, the padding found once.
    ///
    /// # Errors
    /// [`RoiError::ImageTooSmall`] below 32×32 pixels.
    pub fn from_roi_image_poses(roi: &GrayImage, poses: &[Pose]) -> Result<Vec<Roi>, RoiError> {
        given_size_check(roi)?;
        let content = sensor_content(roi);
        Ok(poses
            .iter()
            .map(|&pose| Roi::given(roi, &content, pose))
            .collect())
    }

    /// A given ROI (at least 32×32) cut at `pose`, `content` being its [`sensor_content`].
    fn given(roi: &GrayImage, content: &GrayImage, pose: Pose) -> Roi {
        let (w, h) = roi.dimensions();
        if pose != Pose::FOUND {
            let side = w.min(h) as f32;
            let centre = pose.shift([w as f32 / 2.0, h as f32 / 2.0], [0.0, 1.0], side);
            let sampled = sample(roi, Some((content, 1)), centre, pose.turn([0.0, 1.0]), side);
            let stats = raw_stats(&sampled.raw, &sampled.valid);
            let image = clahe(&sampled.raw, &sampled.valid);
            return Roi {
                image,
                valid: sampled.valid,
                geometry: HandGeometry {
                    method: RoiMethod::Given,
                    valleys: None,
                    palm_centre: None,
                    palm_radius: 0.0,
                    centre,
                    angle: pose.rotation,
                    side,
                    hand_fraction: 1.0,
                },
                raw: stats,
            };
        }
        let side = w.min(h);
        let (left, top) = ((w - side) / 2, (h - side) / 2);
        let square = image::imageops::crop_imm(roi, left, top, side, side).to_image();
        let content = image::imageops::crop_imm(content, left, top, side, side).to_image();
        let (raw, valid) = if side == ROI_SIZE {
            (square, content)
        } else {
            use image::imageops::{FilterType, resize};
            (
                resize(&square, ROI_SIZE, ROI_SIZE, FilterType::Triangle),
                resize(&content, ROI_SIZE, ROI_SIZE, FilterType::Nearest),
            )
        };
        let stats = raw_stats(&raw, &valid);
        let image = clahe(&raw, &valid);
        Roi {
            image,
            valid,
            geometry: HandGeometry {
                method: RoiMethod::Given,
                valleys: None,
                palm_centre: None,
                palm_radius: 0.0,
                centre: [w as f32 / 2.0, h as f32 / 2.0],
                angle: 0.0,
                side: side as f32,
                hand_fraction: 1.0,
            },
            raw: stats,
        }
    }
}

/// A given ROI must be at least 32×32 pixels.
fn given_size_check(roi: &GrayImage) -> Result<(), RoiError> {
    let (width, height) = roi.dimensions();
    if width < 32 || height < 32 {
        return Err(RoiError::ImageTooSmall { width, height });
    }
    Ok(())
}

/// Grey level at or below which a pixel may be a sensor's padding.
const PADDING_LEVEL: u8 = 8;
/// Share of a dark region's core that must hold its most common level for it to be a fill, not a
/// dark part of the palm (an underexposed palm is dark but not flat).
const PADDING_FLATNESS: f32 = 0.8;
/// Fewest core pixels a dark region needs to count as padding.
const PADDING_MIN_PIXELS: usize = 16;
/// Pixels the padding is grown by: the step from the fill to the palm is a strong edge that the
/// filters respond to a few pixels into the palm.
const PADDING_MARGIN: u8 = 3;

/// 255 where a given ROI shows the palm, 0 on its padding: the flat dark fill a sensor (or an ROI
/// database: IIT Delhi pads with grey level 4) puts where its cut left the camera's image. Padding
/// is a region of pixels at or below [`PADDING_LEVEL`] that touches the border and is flat (most
/// of its core one level), grown by [`PADDING_MARGIN`]. Compared as palm, the fill and its straight edge
/// make a genuine ROI look like a stranger's.
fn sensor_content(roi: &GrayImage) -> GrayImage {
    use imageproc::region_labelling::{Connectivity, connected_components};
    let (w, h) = roi.dimensions();
    let dark = GrayImage::from_fn(w, h, |x, y| {
        Luma([if roi.get_pixel(x, y).0[0] <= PADDING_LEVEL {
            255
        } else {
            0
        }])
    });
    let labels = connected_components(&dark, Connectivity::Four, Luma([0u8]));
    let label_at = |x: u32, y: u32| labels.get_pixel(x, y).0[0] as usize;
    let regions = labels.pixels().map(|p| p.0[0] as usize).max().unwrap_or(0);
    if regions == 0 {
        return GrayImage::from_pixel(w, h, Luma([255]));
    }
    let mut touches_border = vec![false; regions + 1];
    for x in 0..w {
        touches_border[label_at(x, 0)] = true;
        touches_border[label_at(x, h - 1)] = true;
    }
    for y in 0..h {
        touches_border[label_at(0, y)] = true;
        touches_border[label_at(w - 1, y)] = true;
    }
    // Levels of each region's core (pixels whose four neighbours are in it too): the ring where
    // the fill meets the palm is interpolated and not flat.
    let mut levels = vec![[0usize; PADDING_LEVEL as usize + 1]; regions + 1];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let label = label_at(x, y);
            let core = label != 0
                && [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)]
                    .iter()
                    .all(|&(nx, ny)| label_at(nx, ny) == label);
            if core {
                levels[label][usize::from(roi.get_pixel(x, y).0[0])] += 1;
            }
        }
    }
    let is_padding: Vec<bool> = levels
        .iter()
        .enumerate()
        .map(|(label, counts)| {
            let size: usize = counts.iter().sum();
            let mode = counts.iter().copied().max().unwrap_or(0);
            label != 0
                && touches_border[label]
                && size >= PADDING_MIN_PIXELS
                && mode as f32 >= PADDING_FLATNESS * size as f32
        })
        .collect();
    let padding = GrayImage::from_fn(w, h, |x, y| {
        Luma([if is_padding[label_at(x, y)] { 255 } else { 0 }])
    });
    let grown = imageproc::morphology::dilate(
        &padding,
        imageproc::distance_transform::Norm::LInf,
        PADDING_MARGIN,
    );
    GrayImage::from_fn(w, h, |x, y| Luma([255 - grown.get_pixel(x, y).0[0]]))
}

/// Cuts the palm ROI from a whole-hand grey image.
///
/// # Errors
/// A [`RoiError`] saying why no ROI could be cut.
pub fn extract_roi(hand: &GrayImage) -> Result<Roi, RoiError> {
    first(extract_roi_posed(hand, &[Pose::FOUND])?)
}

/// The single ROI of a one-pose cut.
fn first(mut rois: Vec<Result<Roi, RoiError>>) -> Result<Roi, RoiError> {
    rois.pop().unwrap_or(Err(RoiError::ValleysNotFound))
}

/// Cuts the palm ROI from a whole-hand grey image once per pose (the hand is segmented once).
///
/// # Errors
/// A [`RoiError`] when no hand frame was found; a pose whose ROI leaves the image has its own.
pub fn extract_roi_posed(
    hand: &GrayImage,
    poses: &[Pose],
) -> Result<Vec<Result<Roi, RoiError>>, RoiError> {
    let (w, h) = hand.dimensions();
    if w < 64 || h < 64 {
        return Err(RoiError::ImageTooSmall {
            width: w,
            height: h,
        });
    }
    let factor = w.max(h).div_ceil(WORK_MAX_SIDE);
    let work = downscale(hand, factor);
    let mask = segment(&work, None)?;
    roi_from_mask(hand, &mask, factor, poses)
}

/// Cuts the palm ROI from a whole-hand colour image. Colour helps the segmentation: pixels that are
/// clearly not skin-coloured (blue, green or grey pegs, cloth) are kept out of the hand even when
/// they are as bright as skin.
///
/// # Errors
/// A [`RoiError`] saying why no ROI could be cut.
pub fn extract_roi_rgb(hand: &RgbImage) -> Result<Roi, RoiError> {
    first(extract_roi_rgb_posed(hand, &[Pose::FOUND])?)
}

/// Like [`extract_roi_rgb`], once per pose.
///
/// # Errors
/// A [`RoiError`] when no hand frame was found; a pose whose ROI leaves the image has its own.
pub fn extract_roi_rgb_posed(
    hand: &RgbImage,
    poses: &[Pose],
) -> Result<Vec<Result<Roi, RoiError>>, RoiError> {
    // The luma `image`'s `to_luma8` computes (BT.709 weights, truncated), without a copy.
    let gray = GrayImage::from_raw(
        hand.width(),
        hand.height(),
        hand.as_raw()
            .chunks_exact(3)
            .map(|p| {
                let y = 2126 * u32::from(p[0]) + 7152 * u32::from(p[1]) + 722 * u32::from(p[2]);
                (y / 10000) as u8
            })
            .collect(),
    )
    .unwrap_or_default();
    let (w, h) = gray.dimensions();
    if w < 64 || h < 64 {
        return Err(RoiError::ImageTooSmall {
            width: w,
            height: h,
        });
    }
    let factor = w.max(h).div_ceil(WORK_MAX_SIDE);
    let work = downscale(&gray, factor);
    let skin = skin_likelihood(hand, factor);
    let mask = segment(&work, Some(&skin))?;
    roi_from_mask(&gray, &mask, factor, poses)
}

/// Box-filter reduction by an integer factor.
fn downscale(image: &GrayImage, factor: u32) -> GrayImage {
    if factor <= 1 {
        return image.clone();
    }
    let f = factor as usize;
    let (w, h) = (
        (image.width() / factor) as usize,
        (image.height() / factor) as usize,
    );
    let area = (f * f) as u32;
    let src = image.as_raw();
    let stride = image.width() as usize;
    let mut out = vec![0u8; w * h];
    let mut sums = vec![0u32; w];
    for (y, row_out) in out.chunks_exact_mut(w).enumerate() {
        sums.iter_mut().for_each(|s| *s = 0);
        for dy in 0..f {
            let row = &src[(y * f + dy) * stride..][..w * f];
            for (x, s) in sums.iter_mut().enumerate() {
                *s += row[x * f..(x + 1) * f]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>();
            }
        }
        for (o, s) in row_out.iter_mut().zip(&sums) {
            *o = ((s + area / 2) / area) as u8;
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).unwrap_or_default()
}

/// 255 where the (reduced) colour pixel may be skin: red not below blue, green not far above red.
/// Dark pixels are left to the brightness segmentation.
fn skin_likelihood(image: &RgbImage, factor: u32) -> GrayImage {
    let f = factor.max(1) as usize;
    let (w, h) = (image.width() as usize / f, image.height() as usize / f);
    let stride = image.width() as usize * 3;
    let src = image.as_raw();
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        let row = &src[(y * f + f / 2) * stride..];
        for x in 0..w {
            let p = &row[(x * f + f / 2) * 3..][..3];
            let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
            if r + 8 >= b && g <= r + 12 {
                out[y * w + x] = 255;
            }
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).unwrap_or_default()
}

/// Separable binomial smoothing [1 4 6 4 1]/16 (σ = 1), clamped borders.
fn smooth(image: &GrayImage) -> GrayImage {
    const K: [u32; 5] = [1, 4, 6, 4, 1];
    let (w, h) = (image.width() as usize, image.height() as usize);
    let src = image.as_raw();
    let mut tmp = vec![0u16; w * h];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..w {
            let mut acc = 0u32;
            for (k, &kv) in K.iter().enumerate() {
                let xx = (x + k).saturating_sub(2).min(w - 1);
                acc += kv * u32::from(row[xx]);
            }
            tmp[y * w + x] = acc as u16;
        }
    }
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0u32;
            for (k, &kv) in K.iter().enumerate() {
                let yy = (y + k).saturating_sub(2).min(h - 1);
                acc += kv * u32::from(tmp[yy * w + x]);
            }
            out[y * w + x] = ((acc + 128) / 256) as u8;
        }
    }
    GrayImage::from_raw(w as u32, h as u32, out).unwrap_or_default()
}

/// Hand mask on the work image.
fn segment(work: &GrayImage, skin: Option<&GrayImage>) -> Result<GrayImage, RoiError> {
    let smooth = smooth(work);
    let level = imageproc::contrast::otsu_level(&smooth);
    let (mut fg_sum, mut fg_n, mut bg_sum, mut bg_n) = (0u64, 0u64, 0u64, 0u64);
    for &v in smooth.as_raw() {
        if v > level {
            fg_sum += u64::from(v);
            fg_n += 1;
        } else {
            bg_sum += u64::from(v);
            bg_n += 1;
        }
    }
    let contrast = if fg_n == 0 || bg_n == 0 {
        0
    } else {
        (fg_sum / fg_n).saturating_sub(bg_sum / bg_n)
    };
    if contrast < 30 {
        return Err(RoiError::NoHand {
            contrast: u8::try_from(contrast).unwrap_or(u8::MAX),
        });
    }
    let (w, h) = (work.width() as usize, work.height() as usize);
    let mut mask: Vec<u8> = smooth
        .as_raw()
        .iter()
        .map(|&v| if v > level { 255 } else { 0 })
        .collect();
    if let Some(skin) = skin {
        for (m, &s) in mask.iter_mut().zip(skin.as_raw()) {
            *m &= s;
        }
    }
    keep_largest_component(&mut mask, w, h);
    fill_holes(&mut mask, w, h);
    // Opening detaches pegs, threads and bracelets narrower than ~5 work pixels.
    min_max_filter(&mut mask, w, h, 2, false);
    min_max_filter(&mut mask, w, h, 2, true);
    keep_largest_component(&mut mask, w, h);
    let area = mask.iter().filter(|&&v| v > 0).count() as f32;
    let percent = 100.0 * area / (w * h) as f32;
    if percent < 4.0 {
        return Err(RoiError::HandTooSmall { percent });
    }
    if percent > 85.0 {
        return Err(RoiError::HandFillsFrame { percent });
    }
    Ok(GrayImage::from_raw(w as u32, h as u32, mask).unwrap_or_default())
}

/// Keeps the largest 8-connected foreground component.
fn keep_largest_component(mask: &mut [u8], w: usize, h: usize) {
    let mut label = vec![0u32; w * h];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask[start] == 0 || label[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0;
        label[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = ny * w + nx;
                    if mask[j] != 0 && label[j] == 0 {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        sizes.push(size);
    }
    let best = sizes
        .iter()
        .enumerate()
        .skip(1)
        .max_by_key(|&(_, &s)| s)
        .map_or(0, |(l, _)| l as u32);
    for (m, &l) in mask.iter_mut().zip(&label) {
        *m = if l == best && l != 0 { 255 } else { 0 };
    }
}

/// Erosion (`dilate == false`) or dilation of a 0/255 mask by a (2r+1)² square: separable sliding
/// counts of set pixels (outside the image counts as unset for erosion, ignored for dilation).
fn min_max_filter(mask: &mut [u8], w: usize, h: usize, r: usize, dilate: bool) {
    let full = 2 * r + 1;
    let decide = |count: usize, available: usize| {
        let set = if dilate {
            count > 0
        } else {
            count == full && available == full
        };
        if set { 255u8 } else { 0 }
    };
    let mut tmp = vec![0u8; w * h];
    for y in 0..h {
        let row = &mask[y * w..(y + 1) * w];
        let out = &mut tmp[y * w..(y + 1) * w];
        let mut count = row[..r.min(w)].iter().filter(|&&v| v != 0).count();
        for x in 0..w {
            if x + r < w && row[x + r] != 0 {
                count += 1;
            }
            if x > r && row[x - r - 1] != 0 {
                count -= 1;
            }
            let available = (x + r).min(w - 1) + 1 - x.saturating_sub(r);
            out[x] = decide(count, available);
        }
    }
    let mut counts = vec![0usize; w];
    for y in 0..r.min(h) {
        for (c, &v) in counts.iter_mut().zip(&tmp[y * w..(y + 1) * w]) {
            *c += usize::from(v != 0);
        }
    }
    for y in 0..h {
        if y + r < h {
            for (c, &v) in counts.iter_mut().zip(&tmp[(y + r) * w..(y + r + 1) * w]) {
                *c += usize::from(v != 0);
            }
        }
        if y > r {
            for (c, &v) in counts.iter_mut().zip(&tmp[(y - r - 1) * w..(y - r) * w]) {
                *c -= usize::from(v != 0);
            }
        }
        let available = (y + r).min(h - 1) + 1 - y.saturating_sub(r);
        for (m, &c) in mask[y * w..(y + 1) * w].iter_mut().zip(&counts) {
            *m = decide(c, available);
        }
    }
}

/// Fills the background regions that do not touch the image border.
fn fill_holes(data: &mut [u8], w: usize, h: usize) {
    let mut outside = vec![false; w * h];
    let mut stack = Vec::new();
    for x in 0..w {
        stack.push(x);
        stack.push((h - 1) * w + x);
    }
    for y in 0..h {
        stack.push(y * w);
        stack.push(y * w + w - 1);
    }
    while let Some(i) = stack.pop() {
        if outside[i] || data[i] != 0 {
            continue;
        }
        outside[i] = true;
        let (x, y) = (i % w, i / w);
        if x > 0 {
            stack.push(i - 1);
        }
        if x + 1 < w {
            stack.push(i + 1);
        }
        if y > 0 {
            stack.push(i - w);
        }
        if y + 1 < h {
            stack.push(i + w);
        }
    }
    for (v, out) in data.iter_mut().zip(outside) {
        if !out {
            *v = 255;
        }
    }
}

/// Chamfer (3-4) distance to the background, in pixels, the image frame counting as background.
fn distance_to_background(mask: &GrayImage) -> Vec<f32> {
    let (w, h) = (mask.width() as usize, mask.height() as usize);
    let m = mask.as_raw();
    const FAR: u32 = u32::MAX / 4;
    let mut d: Vec<u32> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if m[i] == 0 || x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                0
            } else {
                FAR
            }
        })
        .collect();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let i = y * w + x;
            let v = d[i]
                .min(d[i - 1] + 3)
                .min(d[i - w] + 3)
                .min(d[i - w - 1] + 4)
                .min(d[i - w + 1] + 4);
            d[i] = v;
        }
    }
    for y in (1..h - 1).rev() {
        for x in (1..w - 1).rev() {
            let i = y * w + x;
            let v = d[i]
                .min(d[i + 1] + 3)
                .min(d[i + w] + 3)
                .min(d[i + w + 1] + 4)
                .min(d[i + w - 1] + 4);
            d[i] = v;
        }
    }
    d.into_iter().map(|v| v as f32 / 3.0).collect()
}

/// The hand frame found on the work image (work pixels).
struct Frame {
    method: RoiMethod,
    valleys: Option<[[f32; 2]; 2]>,
    centre: [f32; 2],
    /// Unit vector from the fingers towards the wrist.
    down: [f32; 2],
    side: f32,
}

fn roi_from_mask(
    hand: &GrayImage,
    mask: &GrayImage,
    factor: u32,
    poses: &[Pose],
) -> Result<Vec<Result<Roi, RoiError>>, RoiError> {
    let (ww, wh) = mask.dimensions();
    // Distance to the background, the image frame counting as background.
    let dist_bg = distance_to_background(mask);
    let max_d = dist_bg.iter().copied().fold(0.0f32, f32::max);
    // Centre: centroid of the near-maximal plateau (the arg-max alone jumps along flat ridges).
    let (mut sx, mut sy, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &d) in dist_bg.iter().enumerate() {
        if d >= 0.9 * max_d {
            sx += (i % ww as usize) as f64;
            sy += (i / ww as usize) as f64;
            n += 1.0;
        }
    }
    let radius = max_d;
    if n == 0.0 || radius < 4.0 {
        return Err(RoiError::HandTooSmall { percent: 0.0 });
    }
    let palm = [(sx / n) as f32 + 0.5, (sy / n) as f32 + 0.5];
    // A forearm is about as wide as the palm's inscribed disc; a narrower crossing of the frame is a
    // finger or the thumb.
    let wrist = wrist_point(mask, radius);
    // The fallback needs the whole palm in the picture: a palm disc pressed against the frame means
    // the palm is cut off.
    let frame_distance = palm[0]
        .min(palm[1])
        .min(ww as f32 - palm[0])
        .min(wh as f32 - palm[1]);
    let frame = valley_frame(mask, palm, radius, wrist)
        .or_else(|| {
            (frame_distance > 1.25 * radius).then(|| fallback_frame(palm, radius, wrist))?
        })
        .ok_or(RoiError::ValleysNotFound)?;

    let f = factor as f32;
    let to_input = |p: [f32; 2]| [p[0] * f, p[1] * f];
    let hand_fraction = mask.pixels().filter(|p| p.0[0] > 0).count() as f32 / (ww * wh) as f32;
    let mut rois = Vec::with_capacity(poses.len());
    for pose in poses {
        let down = pose.turn(frame.down);
        let centre = pose.shift(to_input(frame.centre), frame.down, frame.side * f);
        let side = frame.side * f;
        let sampled = sample(hand, Some((mask, factor)), centre, down, side);
        if sampled.outside_percent > 5.0 {
            rois.push(Err(RoiError::RoiOutsideImage {
                percent: sampled.outside_percent,
            }));
            continue;
        }
        let stats = raw_stats(&sampled.raw, &sampled.valid);
        let image = clahe(&sampled.raw, &sampled.valid);
        rois.push(Ok(Roi {
            image,
            valid: sampled.valid,
            geometry: HandGeometry {
                method: frame.method,
                valleys: frame.valleys.map(|[a, b]| [to_input(a), to_input(b)]),
                palm_centre: Some(to_input(palm)),
                palm_radius: radius * f,
                centre,
                angle: (-down[0]).atan2(down[1]),
                side,
                hand_fraction,
            },
            raw: stats,
        }));
    }
    Ok(rois)
}

/// An ROI cut and its validity, before contrast normalisation.
struct Sampled {
    raw: GrayImage,
    valid: GrayImage,
    outside_percent: f32,
}

/// Cuts the [`ROI_SIZE`]² square of side `side` (input pixels) centred on `centre`, its `y` axis
/// along `down`; a pixel is valid when it lies inside the input and, with a mask (reduced by
/// `factor`), on the hand.
fn sample(
    input: &GrayImage,
    mask: Option<(&GrayImage, u32)>,
    centre: [f32; 2],
    down: [f32; 2],
    side: f32,
) -> Sampled {
    let n = ROI_SIZE as usize;
    let step = side / ROI_SIZE as f32;
    let ex = [down[1], -down[0]];
    let ey = down;
    let mut raw = GrayImage::new(ROI_SIZE, ROI_SIZE);
    let mut valid = GrayImage::new(ROI_SIZE, ROI_SIZE);
    let mut outside = 0usize;
    for v in 0..n {
        for u in 0..n {
            let a = (u as f32 + 0.5 - n as f32 / 2.0) * step;
            let b = (v as f32 + 0.5 - n as f32 / 2.0) * step;
            let p = [
                centre[0] + a * ex[0] + b * ey[0],
                centre[1] + a * ex[1] + b * ey[1],
            ];
            match bilinear(input, p) {
                Some(value) => {
                    raw.put_pixel(u as u32, v as u32, Luma([value]));
                    let on_hand = match mask {
                        Some((mask, factor)) => {
                            let f = factor as f32;
                            let (mx, my) = ((p[0] / f) as u32, (p[1] / f) as u32);
                            mx < mask.width()
                                && my < mask.height()
                                && mask.get_pixel(mx, my).0[0] > 0
                        }
                        None => true,
                    };
                    if on_hand {
                        valid.put_pixel(u as u32, v as u32, Luma([255]));
                    }
                }
                None => outside += 1,
            }
        }
    }
    Sampled {
        raw,
        valid,
        outside_percent: 100.0 * outside as f32 / (n * n) as f32,
    }
}

/// Middle of the widest run of hand pixels along the image border (where the forearm leaves the
/// picture), when that run is at least `min_width` pixels long.
fn wrist_point(mask: &GrayImage, min_width: f32) -> Option<[f32; 2]> {
    let (w, h) = mask.dimensions();
    if w < 2 || h < 2 {
        return None;
    }
    // The frame's border as one closed walk: top row, right column, bottom row, left column.
    let mut border: Vec<(u32, u32)> = Vec::with_capacity(2 * (w + h) as usize);
    border.extend((0..w).map(|x| (x, 0)));
    border.extend((1..h).map(|y| (w - 1, y)));
    border.extend((0..w - 1).rev().map(|x| (x, h - 1)));
    border.extend((1..h - 1).rev().map(|y| (0, y)));
    let on_hand: Vec<bool> = border
        .iter()
        .map(|&(x, y)| mask.get_pixel(x, y).0[0] > 0)
        .collect();
    // The forearm is the widest crossing of the border; a fingertip or a thumb touching the
    // frame is a narrow one and must not pull the wrist towards the fingers. Start the walk at a
    // background pixel so that a run is never split by the wrap-around.
    let start = on_hand.iter().position(|&v| !v)?;
    let n = border.len();
    let (mut best, mut run): ((usize, usize), Option<(usize, usize)>) = ((0, 0), None);
    for step in 1..=n {
        let i = (start + step) % n;
        if on_hand[i] {
            run = Some(run.map_or((step, 1), |(first, len)| (first, len + 1)));
        } else if let Some((first, len)) = run.take()
            && len > best.1
        {
            best = (first, len);
        }
    }
    let (first, len) = best;
    if len < 8 || (len as f32) < min_width {
        return None;
    }
    let (mut sx, mut sy) = (0.0f32, 0.0f32);
    for step in first..first + len {
        let (x, y) = border[(start + step) % n];
        sx += x as f32 + 0.5;
        sy += y as f32 + 0.5;
    }
    Some([sx / len as f32, sy / len as f32])
}

/// Hand frame from the finger valleys.
fn valley_frame(
    mask: &GrayImage,
    palm: [f32; 2],
    radius: f32,
    wrist: Option<[f32; 2]>,
) -> Option<Frame> {
    let (w, h) = mask.dimensions();
    let contours = find_contours::<i32>(mask);
    let contour = contours
        .iter()
        .filter(|c| c.border_type == BorderType::Outer)
        .max_by_key(|c| c.points.len())?;
    let points: Vec<[i32; 2]> = contour.points.iter().map(|p| [p.x, p.y]).collect();
    let len = points.len();
    if len < 32 {
        return None;
    }
    // Distance from the palm centre. Points on the image frame (the forearm's cut) and the contour
    // just before and after them get zero, so that no fingertip is found there and no valley spans
    // it; a fingertip that merely comes close to the frame keeps its distance.
    let mut on_frame: Vec<bool> = points
        .iter()
        .map(|p| p[0] <= 0 || p[1] <= 0 || p[0] + 1 >= w as i32 || p[1] + 1 >= h as i32)
        .collect();
    // Only the forearm's cut is masked: a fingertip that touches the frame crosses it over less
    // than a palm radius and is still a fingertip (its valleys are needed).
    keep_wide_runs(&mut on_frame, radius);
    let reach = ((0.3 * radius) as usize).max(2);
    let mut near_frame = on_frame.clone();
    for (i, &on) in on_frame.iter().enumerate() {
        if on {
            for k in 1..=reach {
                near_frame[(i + k) % len] = true;
                near_frame[(i + len - k) % len] = true;
            }
        }
    }
    let raw: Vec<f32> = points
        .iter()
        .zip(&near_frame)
        .map(|(&p, &near)| {
            if near {
                0.0
            } else {
                dist([p[0] as f32, p[1] as f32], palm)
            }
        })
        .collect();
    let half = ((radius / 12.0).round() as usize).max(1);
    let r: Vec<f32> = (0..len)
        .map(|i| {
            if raw[i] == 0.0 {
                return 0.0;
            }
            let mut sum = 0.0;
            for k in 0..=2 * half {
                sum += raw[(i + len + k - half) % len];
            }
            sum / (2 * half + 1) as f32
        })
        .collect();
    // Fingertips: local maxima far from the palm centre.
    let window = ((0.35 * radius) as usize).max(3);
    let mut tips = Vec::new();
    for i in 0..len {
        if r[i] < 1.5 * radius {
            continue;
        }
        let is_max = (1..=window).all(|k| {
            let before = r[(i + len - k) % len];
            let after = r[(i + k) % len];
            r[i] > before && r[i] >= after && before > 0.0 && after > 0.0
        });
        if is_max {
            tips.push(i);
        }
    }
    if tips.len() < 2 {
        return None;
    }
    // Valleys: the deepest point between consecutive tips, unless that stretch nears the frame.
    let valleys: Vec<Option<[f32; 2]>> = (0..tips.len())
        .map(|k| {
            let (a, b) = (tips[k], tips[(k + 1) % tips.len()]);
            let span = (b + len - a) % len;
            let mut best = (f32::INFINITY, a);
            for s in 1..span {
                let i = (a + s) % len;
                if raw[i] == 0.0 {
                    return None;
                }
                if r[i] < best.0 {
                    best = (r[i], i);
                }
            }
            let depth = r[a].min(r[b]) - best.0;
            if span < 2 || depth < 0.3 * radius {
                return None;
            }
            let p = points[best.1];
            Some([p[0] as f32 + 0.5, p[1] as f32 + 0.5])
        })
        .collect();
    // Pick the most regular run of three consecutive valleys.
    let n = valleys.len();
    let mut best: Option<(f32, [f32; 2], [f32; 2])> = None;
    for k in 0..n {
        let (Some(a), Some(b), Some(c)) = (valleys[k], valleys[(k + 1) % n], valleys[(k + 2) % n])
        else {
            continue;
        };
        if n < 3 {
            break;
        }
        let (ab, bc, ac) = (dist(a, b), dist(b, c), dist(a, c));
        if !(0.6 * radius..=1.4 * radius).contains(&ac) {
            continue;
        }
        // Irregular spacing, or a middle valley far off the line, means a thumb valley is involved.
        let irregular = (ab - bc).abs() / (ab + bc);
        let bend = (ab + bc - ac) / ac;
        let score = irregular + bend;
        if irregular > 0.45 || bend > 0.35 {
            continue;
        }
        if best.is_none_or(|(s, _, _)| score < s) {
            best = Some((score, a, c));
        }
    }
    let (_, a, c) = best?;
    let d = dist(a, c);
    let mid = [(a[0] + c[0]) / 2.0, (a[1] + c[1]) / 2.0];
    let mut down = [-(c[1] - a[1]) / d, (c[0] - a[0]) / d];
    // Towards the palm.
    if (palm[0] - mid[0]) * down[0] + (palm[1] - mid[1]) * down[1] < 0.0 {
        down = [-down[0], -down[1]];
    }
    // The valleys must lie on the side away from the wrist (or, when the forearm does not reach the
    // frame, on the side of the fingertips).
    let towards_wrist = match wrist {
        Some(wr) => normalise([wr[0] - palm[0], wr[1] - palm[1]])?,
        None => {
            let (sx, sy) = tips.iter().fold((0.0, 0.0), |(sx, sy), &i| {
                (sx + points[i][0] as f32, sy + points[i][1] as f32)
            });
            let n = tips.len() as f32;
            normalise([palm[0] - sx / n, palm[1] - sy / n])?
        }
    };
    if towards_wrist[0] * down[0] + towards_wrist[1] * down[1] < 0.5 {
        return None;
    }
    let offset = ROI_OFFSET_PER_VALLEY_DISTANCE * d;
    Some(Frame {
        method: RoiMethod::Valleys,
        valleys: Some([a, c]),
        centre: [mid[0] + offset * down[0], mid[1] + offset * down[1]],
        down,
        side: ROI_SIDE_PER_VALLEY_DISTANCE * d,
    })
}

/// Clears the runs of `true` (circularly) shorter than `min_len`.
fn keep_wide_runs(flags: &mut [bool], min_len: f32) {
    let len = flags.len();
    let Some(start) = flags.iter().position(|&v| !v) else {
        return;
    };
    let mut run: Vec<usize> = Vec::new();
    for step in 1..=len {
        let i = (start + step) % len;
        if flags[i] {
            run.push(i);
        } else {
            if (run.len() as f32) < min_len {
                for &k in &run {
                    flags[k] = false;
                }
            }
            run.clear();
        }
    }
}

/// Fallback frame: palm centre, wrist direction, palm radius.
fn fallback_frame(palm: [f32; 2], radius: f32, wrist: Option<[f32; 2]>) -> Option<Frame> {
    let wr = wrist?;
    let down = normalise([wr[0] - palm[0], wr[1] - palm[1]])?;
    let d = FALLBACK_VALLEY_PER_RADIUS * radius;
    let offset = FALLBACK_OFFSET_PER_RADIUS * radius;
    Some(Frame {
        method: RoiMethod::PalmCentre,
        valleys: None,
        centre: [palm[0] - offset * down[0], palm[1] - offset * down[1]],
        down,
        side: ROI_SIDE_PER_VALLEY_DISTANCE * d,
    })
}

fn normalise(v: [f32; 2]) -> Option<[f32; 2]> {
    let n = (v[0] * v[0] + v[1] * v[1]).sqrt();
    (n > 1e-3).then(|| [v[0] / n, v[1] / n])
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Bilinear sample at pixel-centre coordinates `p` (pixel (0,0) covers [0,1)²); `None` outside.
fn bilinear(image: &GrayImage, p: [f32; 2]) -> Option<u8> {
    let (w, h) = image.dimensions();
    let (fx, fy) = (p[0] - 0.5, p[1] - 0.5);
    if !(fx >= -0.5 && fy >= -0.5 && fx <= w as f32 - 0.5 && fy <= h as f32 - 0.5) {
        return None;
    }
    let (fx, fy) = (fx.clamp(0.0, (w - 1) as f32), fy.clamp(0.0, (h - 1) as f32));
    let (x0, y0) = (fx as u32, fy as u32);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
    let g = |x, y| f32::from(image.get_pixel(x, y).0[0]);
    let top = g(x0, y0) * (1.0 - ax) + g(x1, y0) * ax;
    let bottom = g(x0, y1) * (1.0 - ax) + g(x1, y1) * ax;
    Some((top * (1.0 - ay) + bottom * ay).round().clamp(0.0, 255.0) as u8)
}

fn raw_stats(raw: &GrayImage, valid: &GrayImage) -> RawStats {
    let (mut sum, mut n, mut sat, mut dark) = (0.0f64, 0u32, 0u32, 0u32);
    for (p, v) in raw.pixels().zip(valid.pixels()) {
        if v.0[0] > 0 {
            let g = p.0[0];
            sum += f64::from(g);
            n += 1;
            sat += u32::from(g >= 250);
            dark += u32::from(g <= 5);
        }
    }
    let n_f = f64::from(n.max(1));
    let mean = (sum / n_f) as f32;
    let (w, h) = raw.dimensions();
    let (mut lap, mut m) = (0.0f64, 0u32);
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            if valid.get_pixel(x, y).0[0] == 0 {
                continue;
            }
            let g = |dx: i32, dy: i32| {
                f64::from(
                    raw.get_pixel((x as i32 + dx) as u32, (y as i32 + dy) as u32)
                        .0[0],
                )
            };
            lap += (4.0 * g(0, 0) - g(-1, 0) - g(1, 0) - g(0, -1) - g(0, 1)).abs();
            m += 1;
        }
    }
    let focus = if m == 0 || mean < 1.0 {
        0.0
    } else {
        (1000.0 * lap / f64::from(m) / f64::from(mean)) as f32
    };
    RawStats {
        mean,
        saturated: sat as f32 / n_f as f32,
        dark: dark as f32 / n_f as f32,
        focus,
    }
}

/// Contrast-limited adaptive histogram equalisation over a 4×4 grid of tiles; the histograms count
/// only valid pixels (a tile with none keeps an identity mapping).
fn clahe(raw: &GrayImage, valid: &GrayImage) -> GrayImage {
    const TILES: u32 = 4;
    const CLIP: f32 = 3.0;
    let (w, h) = raw.dimensions();
    let (tw, th) = (w.div_ceil(TILES), h.div_ceil(TILES));
    let mut maps = vec![[0u8; 256]; (TILES * TILES) as usize];
    for ty in 0..TILES {
        for tx in 0..TILES {
            let mut hist = [0f32; 256];
            let mut count = 0f32;
            for y in ty * th..((ty + 1) * th).min(h) {
                for x in tx * tw..((tx + 1) * tw).min(w) {
                    if valid.get_pixel(x, y).0[0] > 0 {
                        hist[raw.get_pixel(x, y).0[0] as usize] += 1.0;
                        count += 1.0;
                    }
                }
            }
            let map = &mut maps[(ty * TILES + tx) as usize];
            if count < 16.0 {
                for (i, m) in map.iter_mut().enumerate() {
                    *m = i as u8;
                }
                continue;
            }
            let limit = CLIP * count / 256.0;
            let mut excess = 0.0;
            for v in &mut hist {
                if *v > limit {
                    excess += *v - limit;
                    *v = limit;
                }
            }
            let bonus = excess / 256.0;
            let mut cdf = 0.0;
            for (i, v) in hist.iter().enumerate() {
                cdf += v + bonus;
                map[i] = (255.0 * cdf / count).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    GrayImage::from_fn(w, h, |x, y| {
        let g = raw.get_pixel(x, y).0[0] as usize;
        let fx = ((x as f32 + 0.5) / tw as f32 - 0.5).clamp(0.0, (TILES - 1) as f32);
        let fy = ((y as f32 + 0.5) / th as f32 - 0.5).clamp(0.0, (TILES - 1) as f32);
        let (x0, y0) = (fx as u32, fy as u32);
        let (x1, y1) = ((x0 + 1).min(TILES - 1), (y0 + 1).min(TILES - 1));
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let m = |tx: u32, ty: u32| f32::from(maps[(ty * TILES + tx) as usize][g]);
        let top = m(x0, y0) * (1.0 - ax) + m(x1, y0) * ax;
        let bottom = m(x0, y1) * (1.0 - ax) + m(x1, y1) * ax;
        Luma([(top * (1.0 - ay) + bottom * ay).round() as u8])
    })
}
