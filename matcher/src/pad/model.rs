//! The physical model behind the simulator's presentations: a live synthetic hand per band, and
//! the attack species, rendered frame by frame over a burst. Each parameter below is a modelling
//! choice written up in `docs/pad.md` with what the model ignores; figures measured on these
//! renderings are figures on *modelled* attacks, not on physical attack instruments.
//!
//! Image formation (radiance in [0, 1] of full scale, 8-bit after noise):
//! `pixel = 255 · (coverage · (E_led(band) + E_ambient) · R(band, point) + (1 − coverage) · E_ambient · background) + noise`
//! for reflecting objects; a screen adds its own emission instead. `R` is the object's reflectance
//! under that band at the point of the object now seen at the pixel (motion moves the object, and
//! the skin's veins and creases with it).
//!
//! The hand's surface (pose, shape, creases, skin texture) is the project's synthetic palm
//! ([`crate::synth::hand_capture`]): its visible-light image gives the surface texture `t` (image
//! over its mean on the hand) and the coverage. Veins are a separate map in hand coordinates
//! drawn from the identity seed.

use std::time::Duration;

use image::GrayImage;

use super::Band;
use crate::synth::{self, Pose};

/// An attack instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Species {
    /// A colour print on paper of a visible-light photo of the hand, cut out along the hand.
    PrintVisible,
    /// A toner print on paper of a near-infrared (850 nm) capture of the hand, veins included.
    PrintNir,
    /// A phone or tablet screen replaying a visible-light video of the hand.
    ScreenReplay,
    /// A hand-shaped silicone cast of the hand, tinted skin colour, without veins.
    Mould,
}

impl Species {
    /// Every species.
    pub const ALL: [Species; 4] = [
        Species::PrintVisible,
        Species::PrintNir,
        Species::ScreenReplay,
        Species::Mould,
    ];

    /// The species' name (attack folder names, `--species`).
    pub fn name(self) -> &'static str {
        match self {
            Self::PrintVisible => "print-visible",
            Self::PrintNir => "print-nir",
            Self::ScreenReplay => "screen-replay",
            Self::Mould => "mould",
        }
    }
}

impl std::fmt::Display for Species {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Species {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|species| species.name() == text)
            .ok_or_else(|| {
                format!(
                    "unknown attack species {text:?} (expected print-visible, print-nir, screen-replay or mould)"
                )
            })
    }
}

/// What is put in front of the sensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Presented {
    /// A live hand (bona fide).
    Live,
    /// An attack instrument made from the same hand.
    Attack(Species),
}

impl Presented {
    fn seed(self) -> u64 {
        match self {
            Self::Live => 0x11FE,
            Self::Attack(species) => 0xA77A_0000 + species as u64,
        }
    }
}

/// Skin (and the other materials) per band: reflectance `rho`, how much of the surface texture
/// shows (`texture`, 1 = all of it) and how deep veins darken it (`vein`).
#[derive(Debug, Clone, Copy)]
struct Optics {
    rho: f32,
    texture: f32,
    vein: f32,
}

/// Per-presentation parameters drawn from the seed.
struct Scene {
    presented: Presented,
    /// Room light reaching the object, relative to the sensor's LEDs.
    ambient: f32,
    /// Live skin or mould optics per band (Ambient uses the visible optics).
    optics: [Optics; 4],
    /// LED output per band relative to nominal (calibrated sensors vary by a few percent).
    led_gain: [f32; 4],
    /// Print: paper white per band; screen: brightness.
    paper: [f32; 4],
    /// Halftone or pixel-grid period (pixels), angle (radians) and depth.
    grid: (f32, f32, f32),
    /// Screen: where the LEDs' mirror image lies (pixels) and its radius.
    glare: ([f32; 2], f32),
    /// Non-rigid motion amplitude (pixels), wavelength (pixels), phase step per frame.
    flex: (f32, f32, f32),
    flex_phase: [f32; 2],
    noise: f32,
}

fn band_slot(band: Band) -> usize {
    match band {
        Band::Ambient => 0,
        Band::Nir850 => 1,
        Band::Nir940 => 2,
        Band::Visible => 3,
    }
}

impl Scene {
    fn new(presented: Presented, rng: &mut Stream) -> Self {
        // Skin tone: melanin absorbs visible light and hardly any NIR (visible reflectance under
        // white LEDs 0.28 for dark skin to 0.50 for light skin; 0.60–0.70 at 850 nm).
        let rho_visible = rng.range(0.28, 0.50);
        let rho_850 = rng.range(0.60, 0.70);
        // Water absorbs more at 940 nm than at 850 nm.
        let rho_940 = rho_850 * rng.range(0.80, 0.90);
        let skin = |rho, texture, vein| Optics { rho, texture, vein };
        // Near-infrared goes a few millimetres into the skin: the surface creases fade and the
        // veins (deoxygenated blood absorbs there) show; visible light stays at the surface.
        let mut optics = [
            skin(rho_visible, 1.0, 0.04),
            skin(rho_850, 0.2, 0.4),
            skin(rho_940, 0.18, 0.32),
            skin(rho_visible, 1.0, 0.04),
        ];
        if presented == Presented::Attack(Species::Mould) {
            // Pigmented silicone: tinted to look like skin, flat in NIR, no blood, no water, and
            // a surface that shows its cast creases alike under every light.
            let visible = rng.range(0.34, 0.62);
            let nir = rng.range(0.55, 0.75);
            let nir_940 = nir * rng.range(0.97, 1.03);
            optics = [
                skin(visible, 1.0, 0.0),
                skin(nir, 0.9, 0.0),
                skin(nir_940, 0.9, 0.0),
                skin(visible, 1.0, 0.0),
            ];
        }
        // Each band's LED output, as calibrated at the factory against a reference target (±1 %;
        // the spectral cues are ratios of bands and inherit this error).
        let led_gain = [
            0.0,
            rng.range(0.99, 1.01),
            rng.range(0.99, 1.01),
            rng.range(0.99, 1.01),
        ];
        let screen = presented == Presented::Attack(Species::ScreenReplay);
        let paper = if screen {
            [rng.range(0.35, 0.6); 4]
        } else {
            // Paper is white from the visible to the near-infrared (slightly brighter there).
            let white = rng.range(0.8, 0.9);
            let nir = white * rng.range(1.0, 1.06);
            [white, nir, nir * rng.range(0.98, 1.02), white]
        };
        let grid = if screen {
            (
                rng.range(3.0, 5.0),
                rng.range(-0.2, 0.2),
                rng.range(0.10, 0.18),
            )
        } else {
            (
                rng.range(3.5, 6.5),
                rng.range(0.6, 1.0),
                rng.range(0.08, 0.14),
            )
        };
        let glare = (
            [
                320.0 + rng.range(-80.0, 80.0),
                240.0 + rng.range(-60.0, 60.0),
            ],
            rng.range(10.0, 16.0),
        );
        let moves = matches!(
            presented,
            Presented::Live | Presented::Attack(Species::ScreenReplay)
        );
        let flex = if moves {
            (
                rng.range(0.8, 1.6),
                rng.range(150.0, 220.0),
                rng.range(0.6, 1.2),
            )
        } else {
            (0.0, 200.0, 0.0)
        };
        Self {
            presented,
            ambient: rng.range(0.02, 0.10),
            optics,
            led_gain,
            paper,
            grid,
            glare,
            flex,
            flex_phase: [rng.range(0.0, 6.3), rng.range(0.0, 6.3)],
            noise: 1.5,
        }
    }
}

/// Where the object is at one frame: rigid tremor plus (for a hand, or a replayed video of one)
/// a smooth non-rigid flex.
#[derive(Debug, Clone, Copy)]
struct Placement {
    shift: [f32; 2],
    angle: f32,
    phase: [f32; 2],
}

/// Renders one burst: one frame per entry of `bands`, `period` apart, of `presented` made from
/// synthetic hand `identity`, capture `capture`. Deterministic in all its arguments.
pub fn render_burst(
    identity: u64,
    capture: u64,
    presented: Presented,
    bands: &[Band],
    period: Duration,
) -> Vec<GrayImage> {
    let hand = synth::hand_capture(identity, capture);
    let veins = VeinMap::new(identity);
    let mut rng = Stream::new(mix(mix(identity, capture), presented.seed()));
    let scene = Scene::new(presented, &mut rng);
    let surface = Surface::new(&hand.image);
    // Tremor: a random walk of about half a pixel and a tenth of a degree per frame period of
    // 33 ms (scaled with the actual period).
    let steps = (period.as_secs_f32() / 0.033).max(0.1).sqrt();
    let mut placement = Placement {
        shift: [0.0; 2],
        angle: 0.0,
        phase: scene.flex_phase,
    };
    bands
        .iter()
        .map(|&band| {
            let frame = render_frame(
                &scene, &surface, &veins, &hand.pose, band, placement, &mut rng,
            );
            placement.shift[0] += rng.normal() * 0.5 * steps;
            placement.shift[1] += rng.normal() * 0.5 * steps;
            placement.angle += rng.normal() * 0.1f32.to_radians() * steps;
            placement.phase[0] += scene.flex.2 * steps;
            placement.phase[1] += scene.flex.2 * steps * 0.8;
            frame
        })
        .collect()
}

/// The visible photo of the hand as a surface: texture and coverage.
struct Surface {
    width: usize,
    height: usize,
    pixels: Vec<f32>,
    hand_mean: f32,
}

impl Surface {
    fn new(image: &GrayImage) -> Self {
        let pixels: Vec<f32> = image
            .as_raw()
            .iter()
            .map(|&v| f32::from(v) / 255.0)
            .collect();
        let on_hand: Vec<f32> = pixels
            .iter()
            .copied()
            .filter(|&v| coverage(v) > 0.5)
            .collect();
        let hand_mean = if on_hand.is_empty() {
            0.5
        } else {
            on_hand.iter().sum::<f32>() / on_hand.len() as f32
        };
        Self {
            width: image.width() as usize,
            height: image.height() as usize,
            pixels,
            hand_mean,
        }
    }

    fn at(&self, x: f32, y: f32) -> f32 {
        sample(&self.pixels, self.width, self.height, x, y)
    }
}

/// How much of a pixel of the visible photo is hand (the generator's background stays below 0.21
/// of full scale, its skin above 0.3).
fn coverage(value: f32) -> f32 {
    ((value - 0.21) / 0.08).clamp(0.0, 1.0)
}

#[allow(clippy::too_many_arguments)]
fn render_frame(
    scene: &Scene,
    surface: &Surface,
    veins: &VeinMap,
    pose: &Pose,
    band: Band,
    placement: Placement,
    rng: &mut Stream,
) -> GrayImage {
    let (width, height) = (surface.width, surface.height);
    let slot = band_slot(band);
    let led = if band.is_lit() {
        scene.led_gain[slot]
    } else {
        0.0
    };
    let light = led + scene.ambient;
    let centre = [width as f32 / 2.0, height as f32 / 2.0];
    let (sin, cos) = placement.angle.sin_cos();
    let (amplitude, wavelength, _) = scene.flex;
    let tau = std::f32::consts::TAU;
    let (period, grid_angle, grid_depth) = scene.grid;
    let (grid_sin, grid_cos) = grid_angle.sin_cos();
    let mut out = GrayImage::new(width as u32, height as u32);
    for y in 0..height {
        for x in 0..width {
            let p = [x as f32 + 0.5, y as f32 + 0.5];
            // The object point now at p: undo the rigid tremor, then the flex.
            let dx = p[0] - centre[0] - placement.shift[0];
            let dy = p[1] - centre[1] - placement.shift[1];
            let rigid = [
                centre[0] + cos * dx + sin * dy,
                centre[1] - sin * dx + cos * dy,
            ];
            let mut q = rigid;
            if amplitude > 0.0 {
                q[0] -= amplitude * (tau * q[1] / wavelength + placement.phase[0]).sin();
                q[1] -= amplitude * (tau * q[0] / wavelength + placement.phase[1]).sin();
            }
            let photo = surface.at(q[0], q[1]);
            let cover = coverage(photo);
            let texture = photo / surface.hand_mean;
            let vein = veins.at(pose.to_hand(q));
            let live_reflectance = |optics: Optics| {
                optics.rho * (1.0 + optics.texture * (texture - 1.0)) * (1.0 - optics.vein * vein)
            };
            // Print dots and screen pixels sit on the instrument, which only moves rigidly.
            let grid = {
                let u = (grid_cos * rigid[0] + grid_sin * rigid[1]) / period;
                let v = (-grid_sin * rigid[0] + grid_cos * rigid[1]) / period;
                (tau * u).cos() * (tau * v).cos()
            };
            let radiance = match scene.presented {
                Presented::Live | Presented::Attack(Species::Mould) => {
                    let optics = scene.optics[if band == Band::Ambient { 3 } else { slot }];
                    cover * light * live_reflectance(optics) + (1.0 - cover) * scene.ambient * photo
                }
                Presented::Attack(Species::PrintVisible) => {
                    // The photo's reflectance printed with colour inks: dense in visible light,
                    // nearly transparent in NIR.
                    let photo_reflectance = live_reflectance(scene.optics[3]);
                    let white = scene.paper[slot];
                    let ink = ((1.0 - photo_reflectance / scene.paper[3]) / 0.95).clamp(0.0, 1.0);
                    let absorbance = match band {
                        Band::Nir850 => 0.12,
                        Band::Nir940 => 0.10,
                        Band::Ambient | Band::Visible => 0.95,
                    };
                    let dots = 1.0 + grid_depth * grid * (0.3 + 2.8 * ink * (1.0 - ink));
                    let print = white * (1.0 - absorbance * ink) * dots;
                    cover * light * print + (1.0 - cover) * scene.ambient * photo
                }
                Presented::Attack(Species::PrintNir) => {
                    // An 850 nm capture printed with carbon toner, which absorbs at every band.
                    let capture = live_reflectance(scene.optics[1]);
                    let ink = ((1.0 - capture / scene.paper[1]) / 0.95).clamp(0.0, 1.0);
                    let dots = 1.0 + grid_depth * grid * (0.3 + 2.8 * ink * (1.0 - ink));
                    let print = scene.paper[slot] * (1.0 - 0.95 * ink) * dots;
                    cover * light * print + (1.0 - cover) * scene.ambient * photo
                }
                Presented::Attack(Species::ScreenReplay) => {
                    // The replayed video (a visible recording, flex included) lights itself,
                    // whatever the band; the glass mirrors the LEDs.
                    let video =
                        cover * live_reflectance(scene.optics[3]) + (1.0 - cover) * 0.3 * photo;
                    let emission = scene.paper[0] * video * (1.0 + grid_depth * grid);
                    let (spot, radius) = scene.glare;
                    let distance2 = (p[0] - spot[0]).powi(2) + (p[1] - spot[1]).powi(2);
                    let mirror = 3.0 * (-distance2 / (2.0 * radius * radius)).exp();
                    emission + led * (0.04 + mirror) + scene.ambient * 0.04
                }
            };
            let value = radiance * 255.0 + scene.noise * rng.normal();
            out.put_pixel(
                x as u32,
                y as u32,
                image::Luma([value.clamp(0.0, 255.0).round() as u8]),
            );
        }
    }
    out
}

/// Bilinear sample of a `width × height` image at (x, y) in pixel-centre coordinates.
fn sample(pixels: &[f32], width: usize, height: usize, x: f32, y: f32) -> f32 {
    let x = (x - 0.5).clamp(0.0, (width - 1) as f32);
    let y = (y - 0.5).clamp(0.0, (height - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let top = pixels[y0 * width + x0] * (1.0 - fx) + pixels[y0 * width + x1] * fx;
    let bottom = pixels[y1 * width + x0] * (1.0 - fx) + pixels[y1 * width + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Hand-coordinate extent of the vein map (units of the synthetic generator's hand frame).
const VEIN_X0: f32 = -110.0;
const VEIN_Y0: f32 = -110.0;
const VEIN_SIDE: usize = 220;

/// The palm's veins, 0 (none) to 1 (a vein's centre line), in hand coordinates: a few vessels
/// rising from the wrist towards the finger bases, with branches.
struct VeinMap {
    map: Vec<f32>,
}

impl VeinMap {
    fn new(identity: u64) -> Self {
        let mut rng = Stream::new(mix(identity, 0x7E15));
        let mut map = vec![0.0f32; VEIN_SIDE * VEIN_SIDE];
        let vessels = 5 + (rng.next() % 4) as usize;
        for _ in 0..vessels {
            let mut point = [rng.range(-75.0, 75.0), rng.range(95.0, 105.0)];
            let mut heading = -std::f32::consts::FRAC_PI_2 + rng.range(-0.4, 0.4);
            let width = rng.range(3.0, 4.5);
            while point[1] > -90.0 && point[0].abs() < 100.0 {
                heading += rng.range(-0.25, 0.25);
                heading = heading.clamp(-std::f32::consts::PI + 0.5, -0.5);
                let next = [
                    point[0] + 5.0 * heading.cos(),
                    point[1] + 5.0 * heading.sin(),
                ];
                stamp(&mut map, point, next, width);
                if rng.unit() < 0.06 {
                    // A branch, thinner, leaving at an angle for a while.
                    let mut branch = next;
                    let mut turn =
                        heading + rng.range(0.5, 0.9) * if rng.unit() < 0.5 { -1.0 } else { 1.0 };
                    for _ in 0..8 {
                        turn += rng.range(-0.2, 0.2);
                        let ahead = [branch[0] + 5.0 * turn.cos(), branch[1] + 5.0 * turn.sin()];
                        stamp(&mut map, branch, ahead, width * 0.7);
                        branch = ahead;
                    }
                }
                point = next;
            }
        }
        Self { map }
    }

    fn at(&self, hand: [f32; 2]) -> f32 {
        let x = hand[0] - VEIN_X0;
        let y = hand[1] - VEIN_Y0;
        if x < 0.0 || y < 0.0 || x >= VEIN_SIDE as f32 || y >= VEIN_SIDE as f32 {
            return 0.0;
        }
        sample(&self.map, VEIN_SIDE, VEIN_SIDE, x + 0.5, y + 0.5)
    }
}

/// Draws a vessel segment of Gaussian profile `width` (σ, hand units) into the map (max-blend).
fn stamp(map: &mut [f32], a: [f32; 2], b: [f32; 2], width: f32) {
    let reach = 3.0 * width;
    let lo_x = ((a[0].min(b[0]) - reach - VEIN_X0).floor().max(0.0)) as usize;
    let hi_x = ((a[0].max(b[0]) + reach - VEIN_X0)
        .ceil()
        .min(VEIN_SIDE as f32 - 1.0)) as usize;
    let lo_y = ((a[1].min(b[1]) - reach - VEIN_Y0).floor().max(0.0)) as usize;
    let hi_y = ((a[1].max(b[1]) + reach - VEIN_Y0)
        .ceil()
        .min(VEIN_SIDE as f32 - 1.0)) as usize;
    let along = [b[0] - a[0], b[1] - a[1]];
    let length2 = (along[0] * along[0] + along[1] * along[1]).max(1e-6);
    for y in lo_y..=hi_y {
        for x in lo_x..=hi_x {
            let p = [x as f32 + VEIN_X0, y as f32 + VEIN_Y0];
            let t =
                (((p[0] - a[0]) * along[0] + (p[1] - a[1]) * along[1]) / length2).clamp(0.0, 1.0);
            let d2 = (p[0] - a[0] - t * along[0]).powi(2) + (p[1] - a[1] - t * along[1]).powi(2);
            let value = (-d2 / (2.0 * width * width)).exp();
            let cell = &mut map[y * VEIN_SIDE + x];
            *cell = cell.max(value);
        }
    }
}

/// Seeds combined (the SplitMix64 finaliser).
fn mix(seed: u64, value: u64) -> u64 {
    let mut z = (seed ^ value.rotate_left(17)).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A counter-based stream of random numbers (fixed here so renderings never change with a
/// dependency).
struct Stream {
    seed: u64,
    counter: u64,
}

impl Stream {
    fn new(seed: u64) -> Self {
        Self { seed, counter: 0 }
    }

    fn next(&mut self) -> u64 {
        self.counter += 1;
        mix(self.seed, self.counter)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f32 {
        let u = self.unit().max(1e-7);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}
