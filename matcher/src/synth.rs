//! Synthetic palms: the project's own test and demo data, so that tests, the sensor simulator and the
//! demo run on a fresh machine without any research images.
//!
//! Everything is deterministic. The identity seed fixes the hand (palm width, finger lengths and
//! widths, skin tone) and its palm pattern: three principal lines, an optional fate line, branching
//! creases, fine wrinkles and faint veins, plus a skin texture. The capture seed (combined with the
//! identity) fixes what changes between two presentations of the same hand: pose (rotation,
//! translation, scale), finger spread, a small elastic distortion of the skin, how strongly each crease
//! shows, illumination gradient, blur and sensor noise.
//!
//! Hand coordinates (in "hand units", one pixel at scale 1): origin at the palm centre, x towards the
//! little finger, y towards the wrist; the fingers point to negative y. The two reference finger
//! valleys (index–middle and ring–little) are at `(∓d/2, VALLEY_Y)` where `d` is the valley distance,
//! and the palm ROI is the square of side [`ROI_SIDE_PER_VALLEY_DISTANCE`]` · d` whose centre lies
//! [`ROI_OFFSET_PER_VALLEY_DISTANCE`]` · d` below the middle of the valley line
//! (the same convention as [`crate::roi`]).

use image::GrayImage;

use crate::roi::{ROI_OFFSET_PER_VALLEY_DISTANCE, ROI_SIDE_PER_VALLEY_DISTANCE, ROI_SIZE};

/// Width of [`hand_image`], in pixels.
pub const HAND_WIDTH: u32 = 640;
/// Height of [`hand_image`], in pixels.
pub const HAND_HEIGHT: u32 = 480;

/// y of the finger valleys in hand coordinates (the top edge of the palm).
const VALLEY_Y: f32 = -90.0;
/// Half height of the palm (valley line to wrist crease) in hand units.
const PALM_HALF_HEIGHT: f32 = 90.0;

/// Palm pattern texture: covers the palm in hand units.
const TEX_X0: f32 = -96.0;
const TEX_Y0: f32 = -104.0;
const TEXEL: f32 = 0.6;
const TEX_W: usize = 320;
const TEX_H: usize = 350;

/// Where the hand of one capture lies in the image: `image = centre + scale · R(angle) · hand`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    /// Rotation of the hand frame in the image, radians (image axes: x right, y down; a positive
    /// angle turns the fingers clockwise on screen).
    pub angle: f32,
    /// Pixels per hand unit.
    pub scale: f32,
    /// Image position of the hand origin (palm centre), pixels.
    pub centre: [f32; 2],
}

impl Pose {
    /// Maps a point from hand coordinates to image coordinates.
    #[must_use]
    pub fn to_image(&self, hand: [f32; 2]) -> [f32; 2] {
        let (s, c) = self.angle.sin_cos();
        [
            self.centre[0] + self.scale * (c * hand[0] - s * hand[1]),
            self.centre[1] + self.scale * (s * hand[0] + c * hand[1]),
        ]
    }

    /// Maps a point from image coordinates to hand coordinates.
    #[must_use]
    pub fn to_hand(&self, image: [f32; 2]) -> [f32; 2] {
        let (s, c) = self.angle.sin_cos();
        let dx = (image[0] - self.centre[0]) / self.scale;
        let dy = (image[1] - self.centre[1]) / self.scale;
        [c * dx + s * dy, -s * dx + c * dy]
    }
}

/// A synthetic whole-hand capture with the geometry the generator used (ground truth for tests).
#[derive(Debug, Clone)]
pub struct SynthHand {
    /// The [`HAND_WIDTH`]×[`HAND_HEIGHT`] image.
    pub image: GrayImage,
    /// Pose of the hand in the image.
    pub pose: Pose,
    /// Nominal index–middle and ring–little finger valleys, image pixels.
    pub valleys: [[f32; 2]; 2],
    /// Centre of the true palm ROI, image pixels.
    pub roi_centre: [f32; 2],
    /// Side of the true palm ROI, image pixels.
    pub roi_side: f32,
}

/// Whole-hand image (fingers spread on a dark background) of `identity`, capture number `capture`.
#[must_use]
pub fn hand_image(identity: u64, capture: u64) -> GrayImage {
    hand_capture(identity, capture).image
}

/// Whole-hand capture with its ground-truth geometry.
#[must_use]
pub fn hand_capture(identity: u64, capture: u64) -> SynthHand {
    let palm = Identity::new(identity);
    let mut rng = Rng::new(mix(mix(identity, 0xCA97_0E5E_ED00_0001), capture));
    let cap = Capture::new(&mut rng, &palm, true);
    let texture = palm.texture(&cap);
    let shape = HandShape::new(&palm, &cap);

    let (w, h) = (HAND_WIDTH as usize, HAND_HEIGHT as usize);
    let pose = cap.pose;
    let mut buf = vec![0.0f32; w * h];
    let background = ValueNoise::new(rng.next_u64(), 48.0, w as f32, h as f32);
    let bg_level = rng.range(0.05, 0.16);
    let sdf = CoarseSdf::new(&shape, &pose, w, h);
    let illum = Illumination::new(&mut rng, [w as f32 / 2.0, h as f32 / 2.0], 320.0, 0.3);
    let (sin, cos) = pose.angle.sin_cos();
    let inv = 1.0 / pose.scale;
    for y in 0..h {
        for x in 0..w {
            let p = [x as f32 + 0.5, y as f32 + 0.5];
            let (dx, dy) = ((p[0] - pose.centre[0]) * inv, (p[1] - pose.centre[1]) * inv);
            let hp = [cos * dx + sin * dy, -sin * dx + cos * dy];
            let d = sdf.at(x, y, hp, &shape);
            let alpha = (0.5 - d * pose.scale).clamp(0.0, 1.0);
            let bg = bg_level * (0.7 + 0.6 * background.at(p[0], p[1]));
            let mut v = bg;
            if alpha > 0.0 {
                let shade = 0.68 + 0.32 * smoothstep(0.0, 32.0, -d);
                let skin = palm.skin * shade * texture.at(hp) * illum.at(p);
                v = alpha * skin + (1.0 - alpha) * bg;
            }
            buf[y * w + x] = v;
        }
    }
    let out = finish(buf, w, h, cap.blur * pose.scale, cap.noise, &mut rng);

    let d = palm.valley_distance();
    let valleys = [
        pose.to_image([-d / 2.0, VALLEY_Y]),
        pose.to_image([d / 2.0, VALLEY_Y]),
    ];
    let roi_centre = pose.to_image(palm.roi_centre());
    SynthHand {
        image: out,
        pose,
        valleys,
        roi_centre,
        roi_side: ROI_SIDE_PER_VALLEY_DISTANCE * d * pose.scale,
    }
}

/// [`ROI_SIZE`]×[`ROI_SIZE`] palm ROI of the same palm as [`hand_image`], aligned as
/// [`crate::roi::extract_roi`] aligns it (fingers up), with the small residual misalignment, the
/// illumination, blur and noise of a real ROI sensor. Not contrast-normalised.
#[must_use]
pub fn roi_image(identity: u64, capture: u64) -> GrayImage {
    let palm = Identity::new(identity);
    let mut rng = Rng::new(mix(mix(identity, 0xCA97_0E5E_ED00_0002), capture));
    let cap = Capture::new(&mut rng, &palm, false);
    let texture = palm.texture(&cap);
    let shape = HandShape::new(&palm, &cap);

    // Residual misalignment left by a good ROI step.
    let side = ROI_SIDE_PER_VALLEY_DISTANCE * palm.valley_distance() * rng.range(0.97, 1.03);
    let centre = palm.roi_centre();
    let roi_pose = Pose {
        angle: rng.signed() * 3f32.to_radians(),
        scale: side / ROI_SIZE as f32,
        centre: [
            centre[0] + rng.signed() * 3.0 - side / 2.0,
            centre[1] + rng.signed() * 3.0 - side / 2.0,
        ],
    };
    let n = ROI_SIZE as usize;
    let illum = Illumination::new(&mut rng, [n as f32 / 2.0; 2], 128.0, 0.35);
    let mut buf = vec![0.0f32; n * n];
    for y in 0..n {
        for x in 0..n {
            let p = [x as f32 + 0.5, y as f32 + 0.5];
            let hp = roi_pose.to_image(p);
            let d = shape.sdf(hp);
            let shade = 0.68 + 0.32 * smoothstep(0.0, 32.0, -d);
            let alpha = (0.5 - d / roi_pose.scale).clamp(0.0, 1.0);
            let skin = palm.skin * shade * texture.at(hp) * illum.at(p);
            buf[y * n + x] = alpha * skin + (1.0 - alpha) * 0.08;
        }
    }
    finish(buf, n, n, cap.blur / roi_pose.scale, cap.noise, &mut rng)
}

/// Blur, sensor noise, quantisation.
fn finish(
    mut buf: Vec<f32>,
    w: usize,
    h: usize,
    blur: f32,
    noise: f32,
    rng: &mut Rng,
) -> GrayImage {
    gaussian_blur(&mut buf, w, h, blur.max(0.3));
    let mut out = GrayImage::new(w as u32, h as u32);
    for (px, v) in out.pixels_mut().zip(buf) {
        let value = v * 255.0 + noise * rng.normal();
        px.0[0] = (value.clamp(0.0, 255.0) + 0.5) as u8;
    }
    out
}

/// What one identity seed fixes.
struct Identity {
    palm_half_width: f32,
    finger_length: [f32; 4],
    finger_radius: [f32; 4],
    finger_rest_angle: [f32; 4],
    thumb_length: f32,
    thumb_radius: f32,
    thumb_rest_angle: f32,
    skin: f32,
    lines: Vec<Line>,
    veins: Vec<Line>,
    skin_noise_seed: u64,
}

/// One crease (or vein): a polyline in hand units.
struct Line {
    points: Vec<[f32; 2]>,
    width: f32,
    depth: f32,
    /// How much its visibility varies between captures (0..1).
    variability: f32,
}

impl Identity {
    fn new(identity: u64) -> Self {
        let mut rng = Rng::new(mix(identity, 0x1D_E771_7700_0000));
        let palm_half_width = rng.range(74.0, 86.0);
        let middle = rng.range(1.75, 1.95) * palm_half_width;
        let finger_length = [
            middle * rng.range(0.86, 0.94),
            middle,
            middle * rng.range(0.90, 0.97),
            middle * rng.range(0.70, 0.78),
        ];
        let r = palm_half_width * rng.range(0.19, 0.215);
        let finger_radius = [r, r * 1.03, r * 0.97, r * 0.85];
        let finger_rest_angle = [
            -rng.range(0.05, 0.12),
            rng.signed() * 0.02,
            rng.range(0.04, 0.1),
            rng.range(0.12, 0.22),
        ];
        let mut palm = Self {
            palm_half_width,
            finger_length,
            finger_radius,
            finger_rest_angle,
            thumb_length: palm_half_width * rng.range(1.25, 1.4),
            thumb_radius: r * 1.15,
            thumb_rest_angle: -rng.range(0.75, 0.95),
            skin: rng.range(0.58, 0.78),
            lines: Vec::new(),
            veins: Vec::new(),
            skin_noise_seed: rng.next_u64(),
        };
        palm.grow_pattern(&mut rng);
        palm
    }

    fn valley_distance(&self) -> f32 {
        self.palm_half_width
    }

    fn roi_centre(&self) -> [f32; 2] {
        [
            0.0,
            VALLEY_Y + ROI_OFFSET_PER_VALLEY_DISTANCE * self.valley_distance(),
        ]
    }

    fn grow_pattern(&mut self, rng: &mut Rng) {
        let hw = self.palm_half_width;
        let j =
            |rng: &mut Rng, p: [f32; 2], a: f32| [p[0] + rng.signed() * a, p[1] + rng.signed() * a];
        // Heart line: from the little-finger edge, curving up towards the index–middle valley.
        let heart = [
            j(rng, [hw + 2.0, -52.0], 8.0),
            j(rng, [0.4 * hw, -50.0], 12.0),
            j(rng, [-0.1 * hw, -62.0], 12.0),
            j(rng, [-0.5 * hw, -75.0], 8.0),
        ];
        // Head and life lines start together on the thumb side.
        let start = j(rng, [-hw - 2.0, -38.0], 8.0);
        let head = [
            start,
            j(rng, [-0.4 * hw, -25.0], 10.0),
            j(rng, [0.2 * hw, -10.0], 14.0),
            {
                let y = rng.range(-5.0, 25.0);
                j(rng, [0.7 * hw, y], 10.0)
            },
        ];
        let life = [
            j(rng, [start[0] + 6.0, start[1] + 2.0], 3.0),
            j(rng, [-0.2 * hw, -5.0], 10.0),
            j(rng, [-0.25 * hw, 50.0], 10.0),
            j(rng, [-0.5 * hw, 95.0], 8.0),
        ];
        for ctrl in [heart, head, life] {
            let width = rng.range(1.5, 2.3);
            let depth = rng.range(0.35, 0.55);
            self.lines.push(Line {
                points: bezier(ctrl, 2.0),
                width,
                depth,
                variability: 0.12,
            });
        }
        if rng.unit() < 0.6 {
            let ctrl = [
                j(rng, [0.05 * hw, 92.0], 8.0),
                j(rng, [0.05 * hw, 50.0], 10.0),
                j(rng, [0.1 * hw, 10.0], 10.0),
                {
                    let y = rng.range(-40.0, 0.0);
                    j(rng, [0.1 * hw, y], 10.0)
                },
            ];
            self.lines.push(Line {
                points: bezier(ctrl, 2.0),
                width: rng.range(1.1, 1.6),
                depth: rng.range(0.18, 0.32),
                variability: 0.2,
            });
        }
        // Secondary creases, some branching; their direction follows one of two families fixed per
        // identity, as real palms do.
        let families = [
            rng.range(0.0, std::f32::consts::PI),
            rng.range(0.0, std::f32::consts::PI),
        ];
        let creases = 24 + (rng.next_u64() % 16) as usize;
        for _ in 0..creases {
            let start = self.random_palm_point(rng);
            let dir = if rng.unit() < 0.6 {
                families[(rng.next_u64() % 2) as usize] + rng.signed() * 0.35
            } else {
                rng.range(0.0, std::f32::consts::TAU)
            };
            let length = rng.range(10.0, 38.0);
            let width = rng.range(0.8, 1.35);
            let depth = rng.range(0.14, 0.34);
            self.grow_crease(rng, start, dir, length, width, depth, 2);
        }
        // Fine wrinkles: the skin's own texture, short and faint.
        let wrinkles = 160 + (rng.next_u64() % 80) as usize;
        for _ in 0..wrinkles {
            let start = self.random_palm_point(rng);
            let dir = families[(rng.next_u64() % 2) as usize] + rng.signed() * 0.5;
            let length = rng.range(3.0, 9.0);
            let end = [start[0] + length * dir.cos(), start[1] + length * dir.sin()];
            self.lines.push(Line {
                points: vec![start, end],
                width: rng.range(0.55, 0.85),
                depth: rng.range(0.06, 0.16),
                variability: 0.5,
            });
        }
        // Veins: a few branching trunks rising from the wrist, wide and faint.
        let trunks = 2 + (rng.next_u64() % 3) as usize;
        for _ in 0..trunks {
            let start = [rng.range(-0.7, 0.7) * hw, PALM_HALF_HEIGHT + 10.0];
            let dir = -std::f32::consts::FRAC_PI_2 + rng.signed() * 0.4;
            let (length, width) = (rng.range(70.0, 150.0), rng.range(2.5, 4.0));
            self.grow_vein(rng, start, dir, length, width, 2);
        }
    }

    fn random_palm_point(&self, rng: &mut Rng) -> [f32; 2] {
        [
            rng.signed() * (self.palm_half_width - 4.0),
            rng.signed() * (PALM_HALF_HEIGHT - 4.0),
        ]
    }

    #[allow(clippy::too_many_arguments)]
    fn grow_crease(
        &mut self,
        rng: &mut Rng,
        start: [f32; 2],
        dir: f32,
        length: f32,
        width: f32,
        depth: f32,
        generations: u32,
    ) {
        let points = wander(rng, start, dir, length, 2.5, 0.12);
        if generations > 0 && points.len() > 3 && rng.unit() < 0.45 {
            let at = points[1 + (rng.next_u64() as usize) % (points.len() - 2)];
            let side = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
            let child_dir = dir + side * rng.range(0.45, 1.05);
            let child_length = length * rng.range(0.4, 0.8);
            self.grow_crease(
                rng,
                at,
                child_dir,
                child_length,
                width * 0.85,
                depth * 0.8,
                generations - 1,
            );
        }
        self.lines.push(Line {
            points,
            width,
            depth,
            variability: 0.3,
        });
    }

    fn grow_vein(
        &mut self,
        rng: &mut Rng,
        start: [f32; 2],
        dir: f32,
        length: f32,
        width: f32,
        generations: u32,
    ) {
        let points = wander(rng, start, dir, length, 4.0, 0.1);
        if generations > 0 {
            let branches = 1 + (rng.next_u64() % 2) as usize;
            for _ in 0..branches {
                if points.len() < 4 {
                    break;
                }
                let at = points[points.len() / 3 + (rng.next_u64() as usize) % (points.len() / 2)];
                let side = if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                let child_dir = dir + side * rng.range(0.4, 0.9);
                let child_length = length * rng.range(0.4, 0.7);
                self.grow_vein(
                    rng,
                    at,
                    child_dir,
                    child_length,
                    width * 0.75,
                    generations - 1,
                );
            }
        }
        self.veins.push(Line {
            points,
            width,
            depth: rng.range(0.05, 0.1),
            variability: 0.1,
        });
    }

    /// Renders the palm pattern of one capture: multiplicative skin reflectance around 1.
    fn texture(&self, cap: &Capture) -> Texture {
        let mut creases = vec![0.0f32; TEX_W * TEX_H];
        let mut veins = vec![0.0f32; TEX_W * TEX_H];
        let mut rng = Rng::new(cap.pattern_seed);
        for (lines, layer) in [(&self.lines, &mut creases), (&self.veins, &mut veins)] {
            for line in lines {
                let factor = 1.0 + line.variability * rng.signed();
                if line.variability >= 0.5 && rng.unit() < 0.15 {
                    continue; // this wrinkle does not show in this capture
                }
                let depth = (line.depth * factor * cap.crease_contrast).min(0.9);
                let width = line.width * (1.0 + 0.1 * rng.signed());
                let mut prev = cap.warp.apply(line.points[0]);
                for &p in &line.points[1..] {
                    let next = cap.warp.apply(p);
                    stamp_segment(layer, prev, next, width, depth);
                    prev = next;
                }
            }
        }
        let (tw, th) = (TEX_W as f32, TEX_H as f32);
        let data = creases
            .iter()
            .zip(&veins)
            .map(|(c, v)| (1.0 - c) * (1.0 - v))
            .collect();
        Texture {
            data,
            // Skin grain, evaluated only where the texture is sampled.
            grain: ValueNoise::new(self.skin_noise_seed, 5.0, tw, th),
            grain_fine: ValueNoise::new(self.skin_noise_seed ^ 0x5EED, 1.6, tw, th),
        }
    }
}

/// What one capture seed fixes.
struct Capture {
    pose: Pose,
    spread: [f32; 5],
    warp: Warp,
    crease_contrast: f32,
    blur: f32,
    noise: f32,
    pattern_seed: u64,
}

impl Capture {
    fn new(rng: &mut Rng, palm: &Identity, whole_hand: bool) -> Self {
        let pose = if whole_hand {
            // Keep the fingertips (about 2.7 palm half-widths above the centre) mostly in frame.
            let scale = rng.range(0.78, 0.98) * 80.0 / palm.palm_half_width;
            Pose {
                angle: rng.signed() * 18f32.to_radians(),
                scale,
                centre: [
                    HAND_WIDTH as f32 / 2.0 + rng.signed() * 30.0,
                    HAND_HEIGHT as f32 * 0.56 + rng.signed() * 15.0,
                ],
            }
        } else {
            Pose {
                angle: 0.0,
                scale: 1.0,
                centre: [0.0, 0.0],
            }
        };
        let spread_amount = rng.range(0.03, 0.16);
        let mut spread = [0.0; 5];
        for (i, s) in spread.iter_mut().enumerate().take(4) {
            *s = spread_amount * (i as f32 - 1.5) + rng.signed() * 0.04;
        }
        spread[4] = -rng.range(0.0, 0.3);
        Self {
            pose,
            spread,
            warp: Warp::new(rng, 1.4),
            crease_contrast: rng.range(0.8, 1.15),
            blur: rng.range(0.5, 1.3),
            noise: rng.range(1.5, 4.0),
            pattern_seed: rng.next_u64(),
        }
    }
}

/// A smooth, small displacement of the skin (hand units).
struct Warp {
    waves: [(f32, f32, f32, f32, f32); 3],
}

impl Warp {
    fn new(rng: &mut Rng, amplitude: f32) -> Self {
        let wave = |rng: &mut Rng| {
            (
                rng.range(0.02, 0.05) * if rng.unit() < 0.5 { -1.0 } else { 1.0 },
                rng.range(0.02, 0.05),
                rng.range(0.0, std::f32::consts::TAU),
                amplitude * rng.signed(),
                amplitude * rng.signed(),
            )
        };
        Self {
            waves: [wave(rng), wave(rng), wave(rng)],
        }
    }

    fn apply(&self, p: [f32; 2]) -> [f32; 2] {
        let mut out = p;
        for &(fx, fy, phase, ax, ay) in &self.waves {
            let s = (fx * p[0] + fy * p[1] + phase).sin();
            out[0] += ax * s;
            out[1] += ay * s;
        }
        out
    }
}

/// Palm pattern sampled in hand coordinates (1.0 outside).
struct Texture {
    data: Vec<f32>,
    grain: ValueNoise,
    grain_fine: ValueNoise,
}

impl Texture {
    fn at(&self, p: [f32; 2]) -> f32 {
        let fx = (p[0] - TEX_X0) / TEXEL;
        let fy = (p[1] - TEX_Y0) / TEXEL;
        if !(fx >= 0.0 && fy >= 0.0 && fx < (TEX_W - 1) as f32 && fy < (TEX_H - 1) as f32) {
            return 1.0;
        }
        let (x0, y0) = (fx as usize, fy as usize);
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let i = y0 * TEX_W + x0;
        let top = self.data[i] * (1.0 - ax) + self.data[i + 1] * ax;
        let bottom = self.data[i + TEX_W] * (1.0 - ax) + self.data[i + TEX_W + 1] * ax;
        let grain =
            0.05 * (self.grain.at(fx, fy) - 0.5) + 0.05 * (self.grain_fine.at(fx, fy) - 0.5);
        (top * (1.0 - ay) + bottom * ay) * (1.0 + grain)
    }
}

/// Draws a segment of a crease into a texture layer (maximum of the profiles).
fn stamp_segment(layer: &mut [f32], a: [f32; 2], b: [f32; 2], width: f32, depth: f32) {
    let to_tex = |p: [f32; 2]| [(p[0] - TEX_X0) / TEXEL, (p[1] - TEX_Y0) / TEXEL];
    let (a, b) = (to_tex(a), to_tex(b));
    let radius = 2.2 * width / TEXEL;
    let r2 = radius * radius;
    let x_min = (a[0].min(b[0]) - radius).floor().max(0.0) as usize;
    let y_min = (a[1].min(b[1]) - radius).floor().max(0.0) as usize;
    let x_max = ((a[0].max(b[0]) + radius).ceil().max(0.0) as usize).min(TEX_W - 1);
    let y_max = ((a[1].max(b[1]) + radius).ceil().max(0.0) as usize).min(TEX_H - 1);
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let len2 = (dx * dx + dy * dy).max(1e-6);
    for y in y_min..=y_max {
        for x in x_min..=x_max {
            let (px, py) = (x as f32 - a[0], y as f32 - a[1]);
            let t = ((px * dx + py * dy) / len2).clamp(0.0, 1.0);
            let (ex, ey) = (px - t * dx, py - t * dy);
            let d2 = ex * ex + ey * ey;
            if d2 < r2 {
                let k = 1.0 - d2 / r2;
                let v = depth * k * k * k;
                let cell = &mut layer[y * TEX_W + x];
                if v > *cell {
                    *cell = v;
                }
            }
        }
    }
}

/// Samples a cubic Bézier curve every `step` hand units (about).
fn bezier(c: [[f32; 2]; 4], step: f32) -> Vec<[f32; 2]> {
    let approx_len: f32 = c.windows(2).map(|w| dist(w[0], w[1])).sum();
    let n = ((approx_len / step).ceil() as usize).max(2);
    (0..=n)
        .map(|i| {
            let t = i as f32 / n as f32;
            let u = 1.0 - t;
            let (b0, b1, b2, b3) = (u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t);
            [
                b0 * c[0][0] + b1 * c[1][0] + b2 * c[2][0] + b3 * c[3][0],
                b0 * c[0][1] + b1 * c[1][1] + b2 * c[2][1] + b3 * c[3][1],
            ]
        })
        .collect()
}

/// A gently curving random walk.
fn wander(
    rng: &mut Rng,
    start: [f32; 2],
    dir: f32,
    length: f32,
    step: f32,
    turn: f32,
) -> Vec<[f32; 2]> {
    let n = ((length / step).ceil() as usize).max(1);
    let mut points = Vec::with_capacity(n + 1);
    let (mut p, mut d) = (start, dir);
    let mut curvature = rng.signed() * turn;
    points.push(p);
    for _ in 0..n {
        curvature = 0.8 * curvature + 0.2 * rng.signed() * turn;
        d += curvature;
        p = [p[0] + step * d.cos(), p[1] + step * d.sin()];
        points.push(p);
    }
    points
}

fn dist(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Polynomial smooth minimum (webbing between fingers and palm).
fn smin(a: f32, b: f32, k: f32) -> f32 {
    let h = (0.5 + 0.5 * (b - a) / k).clamp(0.0, 1.0);
    b + (a - b) * h - k * h * (1.0 - h)
}

/// The outline of the hand of one capture as a signed distance (hand units, negative inside).
struct HandShape {
    palm_half: [f32; 2],
    forearm_half_width: f32,
    /// Base, tip and radius of the four fingers and the thumb.
    digits: [([f32; 2], [f32; 2], f32); 5],
}

impl HandShape {
    fn new(palm: &Identity, cap: &Capture) -> Self {
        let hw = palm.palm_half_width;
        let mut digits = [([0.0; 2], [0.0; 2], 0.0); 5];
        for (i, digit) in digits.iter_mut().take(4).enumerate() {
            let base = [hw * (-0.75 + 0.5 * i as f32), VALLEY_Y + 12.0];
            let angle = palm.finger_rest_angle[i] + cap.spread[i];
            let len = palm.finger_length[i];
            *digit = (
                base,
                [base[0] + len * angle.sin(), base[1] - len * angle.cos()],
                palm.finger_radius[i],
            );
        }
        let base = [-hw * 0.8, 15.0];
        let angle = palm.thumb_rest_angle + cap.spread[4];
        digits[4] = (
            base,
            [
                base[0] + palm.thumb_length * angle.sin(),
                base[1] - palm.thumb_length * angle.cos(),
            ],
            palm.thumb_radius,
        );
        Self {
            palm_half: [hw, PALM_HALF_HEIGHT],
            forearm_half_width: hw * 0.8,
            digits,
        }
    }

    fn sdf(&self, p: [f32; 2]) -> f32 {
        let palm = rounded_box(p, [0.0, 0.0], self.palm_half, 26.0);
        let forearm = rounded_box(
            p,
            [0.0, PALM_HALF_HEIGHT + 400.0],
            [self.forearm_half_width, 400.0],
            10.0,
        );
        let mut d = smin(palm, forearm, 25.0);
        for (i, &(a, b, r)) in self.digits.iter().enumerate() {
            let k = if i == 4 { 14.0 } else { 5.0 };
            d = smin(d, capsule(p, a, b, r), k);
        }
        d
    }
}

fn rounded_box(p: [f32; 2], centre: [f32; 2], half: [f32; 2], r: f32) -> f32 {
    let qx = (p[0] - centre[0]).abs() - half[0] + r;
    let qy = (p[1] - centre[1]).abs() - half[1] + r;
    let outside = (qx.max(0.0).powi(2) + qy.max(0.0).powi(2)).sqrt();
    outside + qx.max(qy).min(0.0) - r
}

fn capsule(p: [f32; 2], a: [f32; 2], b: [f32; 2], r: f32) -> f32 {
    let (pax, pay) = (p[0] - a[0], p[1] - a[1]);
    let (bax, bay) = (b[0] - a[0], b[1] - a[1]);
    let h = ((pax * bax + pay * bay) / (bax * bax + bay * bay)).clamp(0.0, 1.0);
    ((pax - bax * h).powi(2) + (pay - bay * h).powi(2)).sqrt() - r
}

/// The hand's signed distance on a coarse grid; exact evaluation only near the outline.
struct CoarseSdf {
    grid: Vec<f32>,
    cols: usize,
    /// Blocks whose distance is far from zero everywhere (interpolation is enough there).
    far: Vec<bool>,
}

const BLOCK: usize = 8;

impl CoarseSdf {
    fn new(shape: &HandShape, pose: &Pose, w: usize, h: usize) -> Self {
        let cols = w / BLOCK + 2;
        let rows = h / BLOCK + 2;
        let mut grid = vec![0.0; cols * rows];
        for gy in 0..rows {
            for gx in 0..cols {
                let p = [(gx * BLOCK) as f32 + 0.5, (gy * BLOCK) as f32 + 0.5];
                grid[gy * cols + gx] = shape.sdf(pose.to_hand(p));
            }
        }
        // A block is far when all its corners are further than its diagonal (with a margin for the
        // smooth minimum, which is not exactly a distance).
        let margin = 1.6 * BLOCK as f32 / pose.scale;
        let far = (0..rows - 1)
            .flat_map(|gy| (0..cols - 1).map(move |gx| (gx, gy)))
            .map(|(gx, gy)| {
                let c = [
                    grid[gy * cols + gx],
                    grid[gy * cols + gx + 1],
                    grid[(gy + 1) * cols + gx],
                    grid[(gy + 1) * cols + gx + 1],
                ];
                c.iter().all(|&d| d > margin) || c.iter().all(|&d| d < -margin)
            })
            .collect();
        Self { grid, cols, far }
    }

    fn at(&self, x: usize, y: usize, hand: [f32; 2], shape: &HandShape) -> f32 {
        let (gx, gy) = (x / BLOCK, y / BLOCK);
        if !self.far[gy * (self.cols - 1) + gx] {
            return shape.sdf(hand);
        }
        let ax = (x % BLOCK) as f32 / BLOCK as f32;
        let ay = (y % BLOCK) as f32 / BLOCK as f32;
        let i = gy * self.cols + gx;
        let top = self.grid[i] * (1.0 - ax) + self.grid[i + 1] * ax;
        let bottom = self.grid[i + self.cols] * (1.0 - ax) + self.grid[i + self.cols + 1] * ax;
        top * (1.0 - ay) + bottom * ay
    }
}

/// Gain and a linear gradient of the illumination.
struct Illumination {
    gain: f32,
    gradient: [f32; 2],
    centre: [f32; 2],
}

impl Illumination {
    fn new(rng: &mut Rng, centre: [f32; 2], extent: f32, strength: f32) -> Self {
        let angle = rng.range(0.0, std::f32::consts::TAU);
        let g = rng.range(0.0, strength) / extent;
        Self {
            gain: rng.range(0.8, 1.15),
            gradient: [g * angle.cos(), g * angle.sin()],
            centre,
        }
    }

    fn at(&self, p: [f32; 2]) -> f32 {
        self.gain
            * (1.0
                + self.gradient[0] * (p[0] - self.centre[0])
                + self.gradient[1] * (p[1] - self.centre[1]))
    }
}

/// Smooth value noise in [0, 1] with the given cell size, over `[0, width) × [0, height)`
/// (clamped outside); the lattice is drawn once.
struct ValueNoise {
    lattice: Vec<f32>,
    cols: usize,
    rows: usize,
    inv_cell: f32,
}

impl ValueNoise {
    fn new(seed: u64, cell: f32, width: f32, height: f32) -> Self {
        let cols = (width / cell).ceil() as usize + 2;
        let rows = (height / cell).ceil() as usize + 2;
        let mut rng = Rng::new(seed);
        Self {
            lattice: (0..cols * rows).map(|_| rng.unit()).collect(),
            cols,
            rows,
            inv_cell: 1.0 / cell,
        }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        let fx = (x * self.inv_cell).clamp(0.0, (self.cols - 2) as f32);
        let fy = (y * self.inv_cell).clamp(0.0, (self.rows - 2) as f32);
        let (x0, y0) = (fx as usize, fy as usize);
        let (ax, ay) = (fx - x0 as f32, fy - y0 as f32);
        let (ax, ay) = (ax * ax * (3.0 - 2.0 * ax), ay * ay * (3.0 - 2.0 * ay));
        let i = y0 * self.cols + x0;
        let l = &self.lattice;
        let top = l[i] * (1.0 - ax) + l[i + 1] * ax;
        let bottom = l[i + self.cols] * (1.0 - ax) + l[i + self.cols + 1] * ax;
        top * (1.0 - ay) + bottom * ay
    }
}

/// Separable Gaussian blur with clamped borders.
fn gaussian_blur(buf: &mut [f32], w: usize, h: usize, sigma: f32) {
    let radius = (3.0 * sigma).ceil() as usize;
    let mut kernel: Vec<f32> = (0..=2 * radius)
        .map(|i| {
            let d = i as f32 - radius as f32;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let sum: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= sum);
    let mut tmp = vec![0.0f32; buf.len()];
    let r = radius as isize;
    for y in 0..h {
        let row = &buf[y * w..(y + 1) * w];
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in kernel.iter().enumerate() {
                let xx = (x as isize + k as isize - r).clamp(0, w as isize - 1) as usize;
                acc += kv * row[xx];
            }
            tmp[y * w + x] = acc;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &kv) in kernel.iter().enumerate() {
                let yy = (y as isize + k as isize - r).clamp(0, h as isize - 1) as usize;
                acc += kv * tmp[yy * w + x];
            }
            buf[y * w + x] = acc;
        }
    }
}

/// SplitMix64 finaliser: mixes a value into a seed.
fn mix(seed: u64, value: u64) -> u64 {
    let mut z = seed ^ value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A small deterministic generator (SplitMix64). Hand-written on purpose: the images must stay the
/// same across dependency upgrades, which a general-purpose RNG crate does not promise.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-1, 1).
    fn signed(&mut self) -> f32 {
        2.0 * self.unit() - 1.0
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Approximately standard normal (sum of four uniforms), cheap enough for per-pixel noise.
    fn normal(&mut self) -> f32 {
        let r = self.next_u64();
        let sum: f32 = (0..4).map(|i| ((r >> (16 * i)) & 0xFFFF) as f32).sum();
        (sum / 65536.0 - 2.0) * 3f32.sqrt()
    }
}
