//! The cues: each one a number measured on a burst, and where live hands and attacks part.
//!
//! A cue's value becomes liveness *evidence* in [0, 1] through a logistic step at its boundary
//! ([`Boundary`]): 0.5 on the boundary, towards 1 on the live side. The boundaries were set on the
//! tuning half of the modelled presentations and the real bona fide images (`docs/pad.md`, "Tuning");
//! a profile's threshold then moves every boundary by the same number of widths.

use super::Band;
use super::view::{BurstViews, FrameView};

/// One liveness cue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cue {
    /// (NIR 850 − ambient) / (visible − ambient) brightness: skin reflects near-infrared far
    /// better than visible light (melanin and blood absorb the visible); paper, screens and
    /// pigmented silicone are flatter or inverted.
    NirVisibleRatio,
    /// (NIR 940 − ambient) / (NIR 850 − ambient): water in tissue absorbs more at 940 nm, so skin
    /// is darker at 940 than at 850; paper, screens and silicone are not.
    WaterAbsorption,
    /// Ambient-only brightness over the lit frames' brightness: a screen lights itself, a hand or a
    /// print is lit by the sensor.
    AmbientShare,
    /// Vein-scale contrast under NIR 850 over the same under visible light: veins show under
    /// near-infrared only. A visible print loses its pattern under NIR (colour inks are
    /// transparent there); a NIR print, a mould or a screen shows the same pattern in both.
    VeinContrast,
    /// Non-rigid motion between frames of one band, after the best affine fit (full-resolution
    /// pixels): a hand flexes and pulses, paper and a mould move as one piece.
    NonRigidMotion,
    /// Periodic fine texture (halftone dots, a screen's pixel grid and their moiré): how much the
    /// high-pass autocorrelation peaks at one period and dips at half of it.
    PeriodicTexture,
    /// Share of the view that is saturated in a lit frame: glass and glossy surfaces mirror the
    /// LEDs, skin scatters them.
    SpecularGlare,
}

/// Where a cue's live and attack values part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Boundary {
    /// Live above `at`; `width` is the value change from evidence 0.5 to about 0.73.
    Above {
        /// The boundary.
        at: f32,
        /// The logistic scale.
        width: f32,
    },
    /// Live below `at`.
    Below {
        /// The boundary.
        at: f32,
        /// The logistic scale.
        width: f32,
    },
    /// Live between `low` and `high`.
    Within {
        /// The lower boundary.
        low: f32,
        /// The upper boundary.
        high: f32,
        /// The logistic scale.
        width: f32,
    },
}

impl Boundary {
    /// Liveness evidence in [0, 1] of `value`.
    pub fn evidence(self, value: f32) -> f32 {
        let logistic = |steps: f32| 1.0 / (1.0 + (-steps).exp());
        match self {
            Self::Above { at, width } => logistic((value - at) / width),
            Self::Below { at, width } => logistic((at - value) / width),
            Self::Within { low, high, width } => {
                logistic((value - low) / width).min(logistic((high - value) / width))
            }
        }
    }
}

/// A cue measured on one burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CueReading {
    /// Which cue.
    pub cue: Cue,
    /// Its value (unit: see the cue).
    pub value: f32,
    /// Liveness evidence in [0, 1].
    pub evidence: f32,
}

impl Cue {
    /// Every cue, in report order.
    pub const ALL: [Cue; 7] = [
        Cue::NirVisibleRatio,
        Cue::WaterAbsorption,
        Cue::AmbientShare,
        Cue::VeinContrast,
        Cue::NonRigidMotion,
        Cue::PeriodicTexture,
        Cue::SpecularGlare,
    ];

    /// The cue's name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::NirVisibleRatio => "nir_visible_ratio",
            Self::WaterAbsorption => "water_absorption_940_850",
            Self::AmbientShare => "ambient_share",
            Self::VeinContrast => "vein_contrast_nir_visible",
            Self::NonRigidMotion => "non_rigid_motion_px",
            Self::PeriodicTexture => "periodic_texture",
            Self::SpecularGlare => "specular_glare",
        }
    }

    /// Whether the cue needs more than one band (and so never runs on a single-band sensor).
    pub fn needs_bands(self) -> bool {
        matches!(
            self,
            Self::NirVisibleRatio | Self::WaterAbsorption | Self::AmbientShare | Self::VeinContrast
        )
    }

    /// Where live and attack part (set on the tuning set, docs/pad.md).
    pub fn boundary(self) -> Boundary {
        match self {
            Self::NirVisibleRatio => Boundary::Within {
                low: 1.12,
                high: 3.0,
                width: 0.02,
            },
            Self::WaterAbsorption => Boundary::Within {
                low: 0.74,
                high: 0.955,
                width: 0.004,
            },
            Self::AmbientShare => Boundary::Below {
                at: 0.45,
                width: 0.04,
            },
            Self::VeinContrast => Boundary::Above {
                at: 1.05,
                width: 0.015,
            },
            Self::NonRigidMotion => Boundary::Above {
                at: 0.3,
                width: 0.03,
            },
            Self::PeriodicTexture => Boundary::Below {
                at: 0.9,
                width: 0.06,
            },
            Self::SpecularGlare => Boundary::Below {
                at: 0.03,
                width: 0.004,
            },
        }
    }

    /// Liveness evidence of a value of this cue.
    pub fn evidence(self, value: f32) -> f32 {
        self.boundary().evidence(value)
    }

    /// The cue's value on a burst, or `None` when the burst lacks what the cue needs.
    pub(crate) fn measure(self, burst: &BurstViews) -> Option<f32> {
        match self {
            Self::NirVisibleRatio => lit_ratio(burst, Band::Nir850, Band::Visible),
            Self::WaterAbsorption => lit_ratio(burst, Band::Nir940, Band::Nir850),
            Self::AmbientShare => ambient_share(burst),
            Self::VeinContrast => vein_contrast(burst),
            Self::NonRigidMotion => non_rigid_motion(burst),
            Self::PeriodicTexture => burst
                .texture_frames()
                .into_iter()
                .map(periodicity)
                .max_by(f32::total_cmp),
            Self::SpecularGlare => burst
                .frames
                .iter()
                .filter(|view| view.band.is_none_or(Band::is_lit))
                .map(glare)
                .max_by(f32::total_cmp),
        }
    }
}

/// The smallest lit-minus-ambient brightness a ratio divides by (0–255 scale).
const MIN_LIT_SIGNAL: f32 = 1.0;

/// (mean of `over` − ambient) / (mean of `under` − ambient); ambient counts as 0 without an
/// ambient frame.
fn lit_ratio(burst: &BurstViews, over: Band, under: Band) -> Option<f32> {
    let ambient = burst.band_mean(Band::Ambient).unwrap_or(0.0);
    let over = burst.band_mean(over)? - ambient;
    let under = burst.band_mean(under)? - ambient;
    Some(over.max(0.0) / under.max(MIN_LIT_SIGNAL))
}

fn ambient_share(burst: &BurstViews) -> Option<f32> {
    let ambient = burst.band_mean(Band::Ambient)?;
    let lit: Vec<f32> = [Band::Nir850, Band::Nir940, Band::Visible]
        .into_iter()
        .filter_map(|band| burst.band_mean(band))
        .collect();
    if lit.is_empty() {
        return None;
    }
    let lit = lit.iter().sum::<f32>() / lit.len() as f32;
    Some(ambient / lit.max(MIN_LIT_SIGNAL))
}

fn vein_contrast(burst: &BurstViews) -> Option<f32> {
    let side = burst.side;
    let nir = burst.band_average(Band::Nir850)?;
    let visible = burst.band_average(Band::Visible)?;
    let structure = |image: &[f32]| {
        // Vein-scale band: wider than print dots and screen pixels (averaged out by the 5-pixel
        // box), narrower than the hand's shading.
        let fine = box_blur(image, side, 2);
        let coarse = box_blur(image, side, 8);
        let mean = image.iter().sum::<f32>() / image.len() as f32;
        let band_pass: Vec<f32> = fine.iter().zip(&coarse).map(|(f, c)| f - c).collect();
        std_dev(&band_pass) / mean.max(MIN_LIT_SIGNAL)
    };
    let visible_structure = structure(&visible).max(1e-4);
    Some(structure(&nir) / visible_structure)
}

fn non_rigid_motion(burst: &BurstViews) -> Option<f32> {
    let order = [
        Some(Band::Nir850),
        Some(Band::Visible),
        None,
        Some(Band::Nir940),
    ];
    let frames: Vec<&FrameView> = order
        .into_iter()
        .map(|band| burst.of(band).collect::<Vec<_>>())
        .find(|frames| frames.len() >= 2)?;
    // Frames with the same exposure time are one exposure sent twice, not motion.
    let residuals: Vec<f32> = frames
        .windows(2)
        .filter(|pair| pair[0].exposed_after != pair[1].exposed_after)
        .filter_map(|pair| affine_residual(&pair[0].coarse, &pair[1].coarse, burst.side))
        .collect();
    if residuals.is_empty() {
        return None;
    }
    let block = frames[0].block as f32;
    let mean = residuals.iter().sum::<f32>() / residuals.len() as f32;
    Some(mean * block)
}

/// Blocks per side of the motion grid.
const MOTION_GRID: usize = 4;
/// Fewest textured blocks for a motion estimate (an affine fit has 3 parameters per axis).
const MIN_MOTION_BLOCKS: usize = 8;
/// Smallest mean squared gradient, along the weaker direction, of a block whose shift is
/// measurable (0–255 levels per coarse pixel, squared).
const MIN_BLOCK_TEXTURE: f32 = 4.0;

/// RMS of the block displacements from `a` to `b` left after the best affine motion (coarse
/// pixels); `None` when too few blocks have texture to measure.
fn affine_residual(a: &[f32], b: &[f32], side: usize) -> Option<f32> {
    let cell = side / MOTION_GRID;
    let mut points = Vec::with_capacity(MOTION_GRID * MOTION_GRID);
    for gy in 0..MOTION_GRID {
        for gx in 0..MOTION_GRID {
            let (x0, y0) = (gx * cell, gy * cell);
            // A block without texture in both directions (background, a flat patch) has no
            // measurable shift.
            let Some(shift) = block_shift(a, b, side, x0, y0, cell) else {
                continue;
            };
            let centre = [
                x0 as f32 + cell as f32 / 2.0 - side as f32 / 2.0,
                y0 as f32 + cell as f32 / 2.0 - side as f32 / 2.0,
            ];
            points.push((centre, shift));
        }
    }
    if points.len() < MIN_MOTION_BLOCKS {
        return None;
    }
    // Blocks on an edge (one direction of texture only) or across an occlusion give wild
    // shifts: fit, drop the worst quarter, fit again on the rest.
    let squared = |points: &[([f32; 2], [f32; 2])]| -> Vec<f32> {
        let residual_x = fit_residuals(points, 0);
        let residual_y = fit_residuals(points, 1);
        residual_x
            .iter()
            .zip(&residual_y)
            .map(|(x, y)| x * x + y * y)
            .collect()
    };
    let first = squared(&points);
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&i, &j| first[i].total_cmp(&first[j]));
    let keep = points.len() - points.len() / 4;
    let inliers: Vec<_> = order[..keep].iter().map(|&i| points[i]).collect();
    let second = squared(&inliers);
    Some((second.iter().sum::<f32>() / second.len() as f32).sqrt())
}

/// Lucas–Kanade: the sub-pixel shift `d` with `b(p + d) ≈ a(p)` over one block; `None` when
/// the block lacks texture in some direction, or the estimate runs away.
fn block_shift(
    a: &[f32],
    b: &[f32],
    side: usize,
    x0: usize,
    y0: usize,
    cell: usize,
) -> Option<[f32; 2]> {
    // One pixel of margin for the central differences.
    let lo_x = x0.max(1);
    let lo_y = y0.max(1);
    let hi_x = (x0 + cell).min(side - 1);
    let hi_y = (y0 + cell).min(side - 1);
    let pixels = ((hi_x - lo_x) * (hi_y - lo_y)) as f32;
    let mut shift = [0.0f32; 2];
    for _ in 0..5 {
        let (mut gxx, mut gxy, mut gyy, mut ex, mut ey) = (0.0f32, 0.0f32, 0.0f32, 0.0f32, 0.0f32);
        for y in lo_y..hi_y {
            for x in lo_x..hi_x {
                let gx = (a[y * side + x + 1] - a[y * side + x - 1]) / 2.0;
                let gy = (a[(y + 1) * side + x] - a[(y - 1) * side + x]) / 2.0;
                let moved = bilinear(b, side, x as f32 + shift[0], y as f32 + shift[1]);
                let error = moved - a[y * side + x];
                gxx += gx * gx;
                gxy += gx * gy;
                gyy += gy * gy;
                ex += gx * error;
                ey += gy * error;
            }
        }
        let det = gxx * gyy - gxy * gxy;
        // The structure tensor's smaller eigenvalue, per pixel.
        let half_trace = (gxx + gyy) / 2.0;
        let weaker = half_trace - (half_trace * half_trace - det).max(0.0).sqrt();
        if weaker / pixels < MIN_BLOCK_TEXTURE {
            return None;
        }
        let step = [(gyy * ex - gxy * ey) / det, (gxx * ey - gxy * ex) / det];
        shift[0] -= step[0].clamp(-2.0, 2.0);
        shift[1] -= step[1].clamp(-2.0, 2.0);
        if step[0].abs() + step[1].abs() < 0.01 {
            break;
        }
    }
    (shift[0].abs() < 4.0 && shift[1].abs() < 4.0).then_some(shift)
}

fn bilinear(image: &[f32], side: usize, x: f32, y: f32) -> f32 {
    let max = (side - 1) as f32;
    let (x, y) = (x.clamp(0.0, max), y.clamp(0.0, max));
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(side - 1), (y0 + 1).min(side - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = image[y0 * side + x0] * (1.0 - fx) + image[y0 * side + x1] * fx;
    let bottom = image[y1 * side + x0] * (1.0 - fx) + image[y1 * side + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Residuals of the least-squares fit `shift[axis] ≈ c + u·x + v·y` over the points.
fn fit_residuals(points: &[([f32; 2], [f32; 2])], axis: usize) -> Vec<f32> {
    // Normal equations of the 3-parameter linear fit.
    let mut m = [[0.0f64; 3]; 3];
    let mut r = [0.0f64; 3];
    for (centre, shift) in points {
        let basis = [1.0, f64::from(centre[0]), f64::from(centre[1])];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += basis[i] * basis[j];
            }
            r[i] += basis[i] * f64::from(shift[axis]);
        }
    }
    let coefficients = solve3(m, r).unwrap_or([0.0; 3]);
    points
        .iter()
        .map(|(centre, shift)| {
            let fitted = coefficients[0]
                + coefficients[1] * f64::from(centre[0])
                + coefficients[2] * f64::from(centre[1]);
            (f64::from(shift[axis]) - fitted) as f32
        })
        .collect()
}

/// Solves a 3×3 system by Cramer's rule (`None` when singular).
fn solve3(m: [[f64; 3]; 3], r: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let whole = det(m);
    if whole.abs() < 1e-9 {
        return None;
    }
    let mut solution = [0.0; 3];
    for (column, value) in solution.iter_mut().enumerate() {
        let mut replaced = m;
        for row in 0..3 {
            replaced[row][column] = r[row];
        }
        *value = det(replaced) / whole;
    }
    Some(solution)
}

/// Largest lag (pixels) the periodicity search looks at: print and screen periods at palm
/// distance are 3–7 pixels, and 8 would find JPEG's block grid.
const MAX_LAG: isize = 7;

/// How strongly the high-passed patch repeats itself: the best, over lags `v` of 2 to 7 pixels,
/// of the autocorrelation at `v` minus the autocorrelation at `v / 2`. A period `p` correlates at
/// `p` and anti-correlates at `p / 2` (up to 2); lines and noise do neither.
fn periodicity(view: &FrameView) -> f32 {
    let side = view.fine_side;
    let smooth = box_blur(&view.fine, side, 2);
    let high: Vec<f32> = view.fine.iter().zip(&smooth).map(|(v, s)| v - s).collect();
    let energy = high.iter().map(|v| v * v).sum::<f32>() / high.len() as f32;
    if energy < 1e-3 {
        return 0.0;
    }
    let n = side as isize;
    // r(v) for v in the half-plane dy ≥ 0 (r(−v) = r(v)), each computed once.
    let width = (2 * MAX_LAG + 1) as usize;
    let mut table = vec![0.0f32; width * (MAX_LAG as usize + 1)];
    for dy in 0..=MAX_LAG {
        for dx in -MAX_LAG..=MAX_LAG {
            let mut sum = 0.0f32;
            let (start, end) = (0.max(-dx), n.min(n - dx));
            for y in 0..n - dy {
                let row = &high[(y * n) as usize..][..side];
                let other = &high[((y + dy) * n) as usize..][..side];
                for x in start..end {
                    sum += row[x as usize] * other[(x + dx) as usize];
                }
            }
            let count = ((n - dy) * (end - start).max(0)).max(1) as f32;
            table[dy as usize * width + (dx + MAX_LAG) as usize] = sum / count / energy;
        }
    }
    let correlation = |dx: isize, dy: isize| -> f32 {
        let (dx, dy) = if dy < 0 { (-dx, -dy) } else { (dx, dy) };
        table[dy as usize * width + (dx + MAX_LAG) as usize]
    };
    let mut best = f32::MIN;
    for dy in 0..=MAX_LAG {
        for dx in -MAX_LAG..=MAX_LAG {
            if (dy == 0 && dx <= 0) || dx.abs().max(dy) < 2 {
                continue;
            }
            let half = (
                (dx as f32 / 2.0).round() as isize,
                (dy as f32 / 2.0).round() as isize,
            );
            best = best.max(correlation(dx, dy) - correlation(half.0, half.1));
        }
    }
    best.max(0.0)
}

/// Share of the coarse view at or near saturation.
fn glare(view: &FrameView) -> f32 {
    let saturated = view.coarse.iter().filter(|&&value| value >= 250.0).count();
    saturated as f32 / view.coarse.len() as f32
}

/// Box blur of radius `radius` (separable; near the edges the window shrinks to what lies inside),
/// with running sums so that the cost does not grow with the radius.
pub(crate) fn box_blur(image: &[f32], side: usize, radius: usize) -> Vec<f32> {
    let pass = |input: &[f32], horizontal: bool| -> Vec<f32> {
        let at = |line: usize, i: usize| {
            if horizontal {
                line * side + i
            } else {
                i * side + line
            }
        };
        let mut out = vec![0.0f32; input.len()];
        let mut prefix = vec![0.0f32; side + 1];
        for line in 0..side {
            for i in 0..side {
                prefix[i + 1] = prefix[i] + input[at(line, i)];
            }
            for i in 0..side {
                let lo = i.saturating_sub(radius);
                let hi = (i + radius).min(side - 1);
                out[at(line, i)] = (prefix[hi + 1] - prefix[lo]) / (hi - lo + 1) as f32;
            }
        }
        out
    };
    pass(&pass(image, true), false)
}

fn std_dev(values: &[f32]) -> f32 {
    let n = values.len().max(1) as f32;
    let mean = values.iter().sum::<f32>() / n;
    (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n).sqrt()
}
