//! The working view of a burst: what the cues look at, computed once per frame.
//!
//! The hand fills the centre of a sensor's frame, so the cues look at the central square (half the
//! frame's shorter side): block-averaged to about [`COARSE_TARGET`] pixels a side for the
//! photometric and motion cues, and a [`FINE_SIDE`]-pixel patch at full resolution for the
//! texture cues (print dots and screen pixels live in the finest detail).

use std::time::Duration;

use super::{Band, PadFrame};

/// Side of the coarse view, roughly (an integer block size is used).
pub(crate) const COARSE_TARGET: usize = 96;
/// Side of the full-resolution patch.
pub(crate) const FINE_SIDE: usize = 64;
/// A frame darker than this on average (0–255) shows nothing usable.
const DARKEST_USABLE: f32 = 4.0;

/// One frame, reduced.
pub(crate) struct FrameView {
    pub band: Option<Band>,
    pub exposed_after: Duration,
    /// `side × side`, block means of the central square.
    pub coarse: Vec<f32>,
    /// Full-resolution pixels per coarse pixel.
    pub block: usize,
    /// `FINE_SIDE × FINE_SIDE` (or smaller for tiny frames) full-resolution centre.
    pub fine: Vec<f32>,
    pub fine_side: usize,
    pub mean: f32,
}

/// The views of a burst whose frames share one size.
pub(crate) struct BurstViews {
    pub frames: Vec<FrameView>,
    pub side: usize,
}

impl BurstViews {
    /// `None` for an empty burst, frames of different sizes, frames too small to look at, or a
    /// burst in which every frame is too dark to show anything.
    pub fn new(frames: &[PadFrame<'_>]) -> Option<Self> {
        let first = frames.first()?.image.dimensions();
        if frames.iter().any(|frame| frame.image.dimensions() != first) {
            return None;
        }
        let (width, height) = (first.0 as usize, first.1 as usize);
        let crop = width.min(height) / 2;
        if crop < 16 {
            return None;
        }
        let block = (crop / COARSE_TARGET).max(1);
        let side = crop / block;
        let crop = side * block;
        let (x0, y0) = ((width - crop) / 2, (height - crop) / 2);
        let fine_side = FINE_SIDE.min(crop);
        let (fx0, fy0) = ((width - fine_side) / 2, (height - fine_side) / 2);
        let views: Vec<FrameView> = frames
            .iter()
            .map(|frame| {
                let pixels = frame.image.as_raw();
                let mut coarse = vec![0.0f32; side * side];
                for y in 0..crop {
                    let row = &pixels[(y0 + y) * width + x0..][..crop];
                    let out = &mut coarse[(y / block) * side..][..side];
                    for (x, &value) in row.iter().enumerate() {
                        out[x / block] += f32::from(value);
                    }
                }
                let scale = 1.0 / (block * block) as f32;
                coarse.iter_mut().for_each(|value| *value *= scale);
                let mean = coarse.iter().sum::<f32>() / coarse.len() as f32;
                let fine = (0..fine_side)
                    .flat_map(|y| {
                        pixels[(fy0 + y) * width + fx0..][..fine_side]
                            .iter()
                            .map(|&value| f32::from(value))
                    })
                    .collect();
                FrameView {
                    band: frame.band,
                    exposed_after: frame.exposed_after,
                    coarse,
                    block,
                    fine,
                    fine_side,
                    mean,
                }
            })
            .collect();
        if views.iter().all(|view| view.mean < DARKEST_USABLE) {
            return None;
        }
        Some(Self {
            frames: views,
            side,
        })
    }

    /// The frames taken under `band`, in burst order.
    pub fn of(&self, band: Option<Band>) -> impl Iterator<Item = &FrameView> {
        self.frames.iter().filter(move |view| view.band == band)
    }

    /// Mean brightness of the frames of `band` (`None` without such a frame).
    pub fn band_mean(&self, band: Band) -> Option<f32> {
        let (sum, count) = self
            .of(Some(band))
            .fold((0.0, 0usize), |(sum, count), view| {
                (sum + view.mean, count + 1)
            });
        (count > 0).then(|| sum / count as f32)
    }

    /// Mean of the coarse views of `band`, pixel by pixel.
    pub fn band_average(&self, band: Band) -> Option<Vec<f32>> {
        let mut count = 0usize;
        let mut sum = vec![0.0f32; self.side * self.side];
        for view in self.of(Some(band)) {
            count += 1;
            sum.iter_mut()
                .zip(&view.coarse)
                .for_each(|(total, value)| *total += value);
        }
        (count > 0).then(|| {
            sum.iter_mut().for_each(|value| *value /= count as f32);
            sum
        })
    }

    /// The frames that texture cues look at: the first visible and the first NIR 850 frame, or
    /// the first frame of a single-band burst.
    pub fn texture_frames(&self) -> Vec<&FrameView> {
        let named: Vec<&FrameView> = [Band::Visible, Band::Nir850]
            .into_iter()
            .filter_map(|band| self.of(Some(band)).next())
            .collect();
        if named.is_empty() {
            self.frames
                .iter()
                .filter(|view| view.band.is_none_or(Band::is_lit))
                .take(1)
                .collect()
        } else {
            named
        }
    }
}
