//! Code families on the same filter responses: the competitive code of template v1 against a
//! BOCV-style code (one sign bit per orientation) and the two fused — the study behind the
//! template v2 decision in `docs/matcher.md` ("Code families").
//!
//! ```text
//! cargo run --release -p palmgate-matcher --example code_families -- /work/shared/data/palm
//! ```
//!
//! Every set of the evaluation suite that exists under the data folder is read (the research
//! images stay where they are; nothing is written). The protocol is the product's: three
//! templates enrolled at the pose found, every later capture a probe cut at its kind's poses,
//! the closest pair kept; figures with 95 % intervals over identities, and the profile
//! calibration validated on 5 held-out identity folds, as `palmgate eval` does. The comparison is
//! a plain re-implementation of `compare` (±2 cells, each of 2 × 2 regions within ±1 more, at
//! least `MIN_OVERLAP_CELLS` cells compared, mismatched bits over compared bits) for any number of
//! bit planes: its `cc` rows reproduce `palmgate eval`'s enrolment rows, which checks it.
//! `--regions N` (regions on a side, default the card's 2) and `--region-reach R` (cells each
//! region moves on its own, default 1): the elastic comparison of applet 1.9; `--regions 0` is
//! the comparison before it, one common shift for every cell (the studies below were measured
//! with it, before 1.9).
//!
//! Options (for the IITD alignment study in `docs/matcher.md`, "IITD: what else was tried"):
//! `--sets NAME,…` (default every set above; the profile calibration pools the sets read),
//! `--codes competitive,signs,both` (default all three), `--max-shift N` (cells, default the
//! card's 2), `--max-shift-y N` (rows only, along the palm; columns keep `--max-shift`),
//! `--station 1` (the enrolment station's check on each hand's first three captures under four
//! rules, to stderr), `--overlap-norm N0` (Daugman's normalisation of a distance by the cells compared:
//! `0.5 − (0.5 − d)·√(compared / N0)`), `--area-reach R` (pixel-to-area: a probe cell's mismatch is
//! the least over the reference cells within `R` cells of its place), `--enrolled N` (templates
//! per hand, default the product's 3) and `--probes-after M` (genuine probes are the captures
//! after the first `M`, default 3; every capture is an impostor probe: pass `--enrolled 3
//! --probes-after 4` and `--enrolled 4 --probes-after 4` to compare a fourth template with three
//! on the same probes), `--fragile PER_MILLE` (that share of each template's valid cells, those
//! whose two strongest orientations respond most alike, left out), `--register ALPHA` (a
//! sensor's ROI re-centred before it is cut: the centre moved `ALPHA` of the way towards where
//! the palm's line energy lies in the found cut, at most 15 % of the side; the reference and
//! every probe pose are cut relative to that),
//! `--enrol-poses x8|y8|r5` (a sensor's ROI: the second and third enrolled captures cut slid left
//! and right, up and down by 8 % of the side, or turned by ∓5°, the first as found),
//! `--enrol-extra x8|y8|r5|d1.95` (a sensor's ROI: every enrolled capture also enrolled at one
//! more pose, the first and third at the first of the pair, the second at the other: six
//! templates; `d` slides diagonally, up-left and down-right, `d1.95` by half a cell: the
//! comparison shifts by whole cells only),
//! `--probe-extra x|y|d|r AMOUNT` (a sensor's ROI: one more probe pose, slid right, down or both
//! or turned clockwise by that much: `y1.95` is half a cell down),
//! `--consistent one|near` (each enrolled capture's template keeps only the cells whose
//! orientation equals at least one of the hand's other enrolled captures', or is within one step
//! of every other's, each at its best shift: the station masks what varies between presentations),
//! `--enrol-scale PERCENT` (a sensor's ROI: the second enrolled capture as if the hand had been
//! that much further from the sensor, the third as if that much closer),
//! `--coarse BLOCKS` (the fine ±2-cell search also run around the shift, within ±BLOCKS blocks of
//! 2 × 2 cells, where the blocks' majority orientations agree best), `--closest N` (the N closest
//! impostor trials of each set with three templates, named, on stderr), `--same-hand SET:ID=ID`
//! (as `palmgate eval`: that pair's comparisons left out of the impostor trials),
//! `--station-enrol after|all` (each hand enrolled as the enrolment station chooses under
//! `balanced`, up to two extra captures; its genuine probes the captures after the last one the
//! station took, or every capture it did not enrol) with `--station-rule every|connected` (the
//! station's rule: every pair matches, the product's, or the matching pairs connect the three)
//! and `--station-compare found|posed` (each pair at the pose found, the product's, or the later
//! capture at its kind's poses with the threshold for that many poses), `--dump PREFIX` (for
//! the quality-gate study: where the genuine probes refused at the shipped `balanced` threshold
//! rank among a set's captures by ten reference-free statistics, on stderr, and the statistics
//! and genuine distances as `PREFIX-SET-captures.csv` and `PREFIX-SET-genuine.csv`),
//! `--cohort-norm raw|z` (impostor trials only within each half of the identities; `z` turns
//! each reference's distances into standard scores against its distances to the other half),
//! `--station-choose earliest|spread` (with `--station-enrol`: a hand enrolled from later
//! captures gets the agreeing three presented that lie furthest apart, not the earliest),
//! `--station-profile convenience|balanced|security` (whose one-template threshold the station's
//! check compares with; default `balanced`, the gates' profile the eval's station rows assume).
//! `--codes hist` (the competitive code fused with block orientation histograms, a descriptor
//! that tolerates shifts within a block: `1 − w` of the code's distance plus `w` of the
//! histograms' at their own best block shift) with `--hist-weight PERCENT` (`w`, default 50),
//! `--hist-reach STEPS` (block steps of 2 cells searched each way, default 2) and
//! `--hist-vote hard|soft` (a cell votes for its strongest orientation, or spreads its vote by
//! how negative each response is).
//!
//! In the enrolment protocol the enrolled capture is always the reference as found and the other
//! capture the probe at every pose, whichever was taken first (every capture of another hand is
//! an impostor probe, also one taken before the references).

use std::path::{Path, PathBuf};

use palmgate_matcher::agreement::{agreeing_groups, earliest_group};
use palmgate_matcher::compare::{MAX_SHIFT, MIN_OVERLAP_CELLS};
use palmgate_matcher::eval::protocol::{
    EnrolmentRoles, SampleKey, StationProbes, StationRule, Trials, enrolment, enrolment_with_roles,
    folds, per_identity, validate_calibration, with_confidence,
};
use palmgate_matcher::eval::{SessionRule, load_file, scan};
use palmgate_matcher::extract::{Extractor, InputKind, probe_poses};
use palmgate_matcher::features::{CELLS, FeatureModel, ORIENTATIONS};
use palmgate_matcher::roi::{self, Pose, Roi};
use palmgate_matcher::template::{GRAY_CODES, GRID};

/// The sets of `cargo xtask eval` this study reads (the two tiny tuning sets are left out).
const SETS: [(&str, InputKind, SessionRule); 4] = [
    ("tongji-roi-dev", InputKind::Roi, SessionRule::Prefix),
    ("iitd-roi-dev", InputKind::Roi, SessionRule::Prefix),
    ("casia940-dev", InputKind::Hand, SessionRule::SplitAfter(3)),
    ("coep-dev", InputKind::Hand, SessionRule::Prefix),
];

/// Competitive code (v1), sign bits (BOCV-style), both.
const FAMILIES: [Family; 3] = [Family::Competitive, Family::Signs, Family::Fused];

const PROFILES: [(&str, f64); 3] = [
    ("convenience", 1e-2),
    ("balanced", 1e-3),
    ("security", 1e-4),
];

#[derive(Debug, Clone, Copy)]
enum Family {
    /// Gray code of the most negative orientation: 3 bits a cell (template v1).
    Competitive,
    /// Whether each orientation's response is negative: 6 bits a cell.
    Signs,
    /// Both: 9 bits a cell.
    Fused,
    /// `hist`: the competitive code fused with block orientation histograms (a shift-tolerant
    /// descriptor: each block of 4 × 4 cells, every 2 cells, counts its cells' orientations).
    Histograms,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Competitive => "competitive code (v1, 3 bits)",
            Family::Signs => "signs of the 6 responses (6 bits)",
            Family::Fused => "both (9 bits)",
            Family::Histograms => "competitive code + block orientation histograms",
        }
    }
}

/// One cut of one capture: the cell mask and the filter responses.
struct Cut {
    valid: Vec<bool>,
    responses: Vec<[f32; CELLS]>,
}

impl Cut {
    /// Cell `c`'s strongest orientation: the most negative response (dark lines).
    fn strongest(&self, c: usize) -> usize {
        (0..ORIENTATIONS)
            .min_by(|&a, &b| self.responses[a][c].total_cmp(&self.responses[b][c]))
            .unwrap_or(0)
    }
}

/// A code as bit planes of 24-bit rows (bit x = cell x), and the mask.
#[derive(Clone)]
struct Code {
    planes: Vec<[u32; GRID]>,
    mask: [u32; GRID],
    /// `--coarse`: the competitive code of 2 × 2 blocks of cells (the orientation most of the
    /// block's valid cells have; ties: the first such cell's), valid where a cell is,
    /// as three bit planes of 12-bit rows, and its mask.
    coarse_planes: [[u32; COARSE]; 3],
    coarse_mask: [u32; COARSE],
    /// `hist`: each block's orientation histogram (summing to 1), `None` where under half of
    /// its cells are valid; row by row over `BLOCKS` × `BLOCKS` blocks. Empty for other codes.
    histograms: Vec<Option<[f32; ORIENTATIONS]>>,
}

/// `hist`: a block is `BLOCK` × `BLOCK` cells, one starts every `BLOCK_STEP` cells.
const BLOCK: usize = 4;
const BLOCK_STEP: usize = 2;
/// Blocks on a side.
const BLOCKS: usize = (GRID - BLOCK) / BLOCK_STEP + 1;
/// The least blocks compared at a shift (a third, as the coarse grid's).
const MIN_BLOCKS_COMPARED: usize = BLOCKS * BLOCKS / 3;

/// `--hist-vote`: each valid cell votes for its strongest orientation (`hard`), or spreads its
/// vote over the orientations by how negative each response is (`soft`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vote {
    Hard,
    Soft,
}

/// The orientation histograms of `cut`'s blocks over the `kept` cells.
fn block_histograms(cut: &Cut, kept: &[bool], vote: Vote) -> Vec<Option<[f32; ORIENTATIONS]>> {
    let votes = |c: usize| {
        let mut v = [0f32; ORIENTATIONS];
        match vote {
            Vote::Hard => v[cut.strongest(c)] = 1.0,
            Vote::Soft => {
                for (k, slot) in v.iter_mut().enumerate() {
                    *slot = (-cut.responses[k][c]).max(0.0);
                }
                let sum: f32 = v.iter().sum();
                if sum > 0.0 {
                    v.iter_mut().for_each(|x| *x /= sum);
                }
            }
        }
        v
    };
    (0..BLOCKS * BLOCKS)
        .map(|b| {
            let (top, left) = ((b / BLOCKS) * BLOCK_STEP, (b % BLOCKS) * BLOCK_STEP);
            let cells: Vec<usize> = (0..BLOCK * BLOCK)
                .map(|i| (top + i / BLOCK) * GRID + left + i % BLOCK)
                .filter(|&c| kept[c])
                .collect();
            if cells.len() * 2 < BLOCK * BLOCK {
                return None;
            }
            let mut h = [0f32; ORIENTATIONS];
            for c in cells {
                h.iter_mut().zip(votes(c)).for_each(|(a, v)| *a += v);
            }
            let sum: f32 = h.iter().sum();
            (sum > 0.0).then(|| h.map(|x| x / sum))
        })
        .collect()
}

/// Half the L1 distance between the blocks' histograms (0 alike, 1 disjoint), averaged over the
/// blocks valid in both, at the block shift (within ±`reach` steps) where it is least with at
/// least `MIN_BLOCKS_COMPARED` blocks compared; 1 if no shift has enough.
fn histogram_distance(
    probe: &[Option<[f32; ORIENTATIONS]>],
    reference: &[Option<[f32; ORIENTATIONS]>],
    reach: i32,
) -> f64 {
    let mut best = 1f64;
    for dy in -reach..=reach {
        for dx in -reach..=reach {
            let (mut compared, mut total) = (0usize, 0f64);
            for (b, p) in probe.iter().enumerate() {
                let Some(p) = p else { continue };
                let (x, y) = ((b % BLOCKS) as i32 + dx, (b / BLOCKS) as i32 + dy);
                if !(0..BLOCKS as i32).contains(&x) || !(0..BLOCKS as i32).contains(&y) {
                    continue;
                }
                let Some(r) = &reference[y as usize * BLOCKS + x as usize] else {
                    continue;
                };
                compared += 1;
                total += f64::from(p.iter().zip(r).map(|(a, b)| (a - b).abs()).sum::<f32>()) / 2.0;
            }
            if compared >= MIN_BLOCKS_COMPARED {
                best = best.min(total / compared as f64);
            }
        }
    }
    best
}

/// Cells on a side of the coarse grid (`--coarse`).
const COARSE: usize = GRID / 2;

/// The coarse grid's least overlap: a third of it (it only chooses where the fine search looks;
/// the fine search still needs `MIN_OVERLAP_CELLS`).
const MIN_COARSE_OVERLAP: u32 = (COARSE * COARSE / 3) as u32;

/// A row of `n` cells moved so that cell `x + dx` lands on cell `x` (cells moved off the row are
/// dropped).
fn moved_row(row: u32, dx: i32, n: usize) -> u32 {
    if dx >= 0 {
        row >> dx
    } else {
        (row << -dx) & ((1u32 << n) - 1)
    }
}

/// Cells compared and bits mismatched between two codes of `n`-bit rows at shift (dx, dy): probe
/// cell (x, y) against reference cell (x + dx, y + dy).
fn shifted(
    probe: (&[[u32; GRID]], &[u32]),
    reference: (&[[u32; GRID]], &[u32]),
    n: usize,
    dx: i32,
    dy: i32,
) -> (u64, u64) {
    let moved = |row: u32| moved_row(row, dx, n);
    let (mut compared, mut mismatched) = (0u64, 0u64);
    for y in 0..n {
        let Some(ry) = y.checked_add_signed(dy as isize).filter(|&r| r < n) else {
            continue;
        };
        let mask = probe.1[y] & moved(reference.1[ry]);
        compared += u64::from(mask.count_ones());
        for (p, r) in probe.0.iter().zip(reference.0) {
            mismatched += u64::from(((p[y] ^ moved(r[ry])) & mask).count_ones());
        }
    }
    (compared, mismatched)
}

fn rows(bit: impl Fn(usize) -> bool) -> [u32; GRID] {
    let mut rows = [0u32; GRID];
    for cell in (0..CELLS).filter(|&c| bit(c)) {
        rows[cell / GRID] |= 1 << (cell % GRID);
    }
    rows
}

impl Code {
    /// The code of `cut`; `fragile` (per mille) of its valid cells, those whose two strongest
    /// orientations respond most alike, are left out (masked) as unreliable.
    fn new(cut: &Cut, family: Family, fragile: u16, vote: Vote) -> Code {
        let margin = |c: usize| {
            let mut sorted: Vec<f32> = (0..ORIENTATIONS).map(|k| cut.responses[k][c]).collect();
            sorted.sort_by(f32::total_cmp);
            sorted[1] - sorted[0]
        };
        let mut kept = cut.valid.clone();
        if fragile > 0 {
            let mut cells: Vec<(f32, usize)> = (0..CELLS)
                .filter(|&c| cut.valid[c])
                .map(|c| (margin(c), c))
                .collect();
            cells.sort_by(|a, b| a.0.total_cmp(&b.0));
            let drop = cells.len() * usize::from(fragile) / 1000;
            for &(_, c) in cells.iter().take(drop) {
                kept[c] = false;
            }
        }
        let valid = |c: usize| kept[c];
        let strongest = |c: usize| cut.strongest(c);
        let competitive =
            (0..3).map(|b| rows(|c| valid(c) && (GRAY_CODES[strongest(c)] >> b) & 1 == 1));
        let signs = (0..ORIENTATIONS).map(|k| rows(|c| valid(c) && cut.responses[k][c] < 0.0));
        let planes = match family {
            Family::Competitive => competitive.collect(),
            Family::Signs => signs.collect(),
            Family::Fused => competitive.chain(signs).collect(),
            Family::Histograms => competitive.collect(),
        };
        let histograms = match family {
            Family::Histograms => block_histograms(cut, &kept, vote),
            _ => Vec::new(),
        };
        let mut coarse_planes = [[0u32; COARSE]; 3];
        let mut coarse_mask = [0u32; COARSE];
        for (by, bx) in (0..COARSE).flat_map(|by| (0..COARSE).map(move |bx| (by, bx))) {
            let mut votes = [0u8; ORIENTATIONS];
            for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let c = (2 * by + y) * GRID + 2 * bx + x;
                if valid(c) {
                    votes[strongest(c)] += 1;
                }
            }
            let most = votes.iter().copied().max().unwrap_or(0);
            // Ties: the orientation of the first of the tied cells in the block.
            let first = [(0, 0), (0, 1), (1, 0), (1, 1)]
                .into_iter()
                .map(|(y, x)| (2 * by + y) * GRID + 2 * bx + x)
                .filter(|&c| valid(c))
                .map(strongest)
                .find(|&o| votes[o] == most);
            if let Some(orientation) = first {
                coarse_mask[by] |= 1 << bx;
                for (b, plane) in coarse_planes.iter_mut().enumerate() {
                    plane[by] |= u32::from((GRAY_CODES[orientation] >> b) & 1) << bx;
                }
            }
        }
        Code {
            planes,
            mask: rows(valid),
            coarse_planes,
            coarse_mask,
            histograms,
        }
    }

    /// The coarse shift (in blocks, within ±`reach`) whose blocks agree best with the
    /// reference's, among those with enough blocks compared; ties: the shift nearest no shift.
    fn coarse_shift(&self, reference: &Code, reach: i32) -> (i32, i32) {
        let mut shifts: Vec<(i32, i32)> = (-reach..=reach)
            .flat_map(|dy| (-reach..=reach).map(move |dx| (dx, dy)))
            .collect();
        shifts.sort_by_key(|&(dx, dy)| dx * dx + dy * dy);
        let wide = |code: &Code| {
            let (mut planes, mut mask) = ([[0u32; GRID]; 3], [0u32; GRID]);
            for (w, p) in planes.iter_mut().zip(&code.coarse_planes) {
                w[..COARSE].copy_from_slice(p);
            }
            mask[..COARSE].copy_from_slice(&code.coarse_mask);
            (planes, mask)
        };
        let (probe, other) = (wide(self), wide(reference));
        let mut best = ((0, 0), u64::MAX, 1u64);
        for (dx, dy) in shifts {
            let (compared, mismatched) =
                shifted((&probe.0, &probe.1), (&other.0, &other.1), COARSE, dx, dy);
            // mismatched / compared < best: cross-multiplied.
            if compared >= u64::from(MIN_COARSE_OVERLAP)
                && u128::from(mismatched) * u128::from(best.2)
                    < u128::from(best.1) * u128::from(compared)
            {
                best = ((dx, dy), mismatched, compared);
            }
        }
        best.0
    }

    /// Q16 distance, as `compare` with the study's `variant`: the closest shift with enough cells
    /// compared.
    fn distance(&self, reference: &Code, variant: &Variant) -> u32 {
        if variant.area_reach > 0 {
            return self.distance_to_area(reference, variant);
        }
        let best = if variant.regions > 0 {
            self.distance_elastic(reference, variant)
        } else {
            self.distance_rigid(reference, variant)
        };
        if self.histograms.is_empty() {
            return best;
        }
        // `hist`: the weighted sum of the two distances, each at its own best shift.
        let histogram =
            histogram_distance(&self.histograms, &reference.histograms, variant.hist_reach);
        let w = variant.hist_weight;
        ((1.0 - w) * f64::from(best) + w * histogram * 65536.0).min(65535.0) as u32
    }

    /// One common shift for every cell (the card's comparison before applet 1.9), around no
    /// shift and, with `--coarse`, around the coarse grid's best shift too.
    fn distance_rigid(&self, reference: &Code, variant: &Variant) -> u32 {
        let shift = variant.max_shift;
        let shift_y = variant.max_shift_y.unwrap_or(shift);
        let mut centres = vec![(0, 0)];
        if variant.coarse > 0 {
            let (cx, cy) = self.coarse_shift(reference, variant.coarse);
            centres.push((2 * cx, 2 * cy));
        }
        let mut best = 1u32 << 16;
        for (cx, cy) in centres {
            for dy in cy - shift_y..=cy + shift_y {
                for dx in cx - shift..=cx + shift {
                    if let Some((compared, mismatched)) = self.at_shift(reference, dx, dy) {
                        best = best.min(variant.q16(mismatched, compared, self.planes.len()));
                    }
                }
            }
        }
        best
    }

    /// Cells compared and bits mismatched at shift (dx, dy), if enough cells are compared.
    fn at_shift(&self, reference: &Code, dx: i32, dy: i32) -> Option<(u64, u64)> {
        let (compared, mismatched) = shifted(
            (&self.planes, &self.mask),
            (&reference.planes, &reference.mask),
            GRID,
            dx,
            dy,
        );
        (compared >= u64::from(MIN_OVERLAP_CELLS)).then_some((compared, mismatched))
    }

    /// The shift (dx, dy) within ±`MAX_SHIFT` at which this code compares best with
    /// `reference` (probe cell (x, y) against reference cell (x + dx, y + dy)).
    fn best_shift(&self, reference: &Code) -> Option<(i32, i32)> {
        let mut best: Option<((i32, i32), u32)> = None;
        for dy in -MAX_SHIFT..=MAX_SHIFT {
            for dx in -MAX_SHIFT..=MAX_SHIFT {
                if let Some((compared, mismatched)) = self.at_shift(reference, dx, dy) {
                    let d = (mismatched * 65536 / (compared * self.planes.len() as u64)) as u32;
                    if best.is_none_or(|(_, b)| d < b) {
                        best = Some(((dx, dy), d));
                    }
                }
            }
        }
        best.map(|(shift, _)| shift)
    }

    /// This code with only the cells `keep` says valid.
    fn masked(&self, keep: impl Fn(usize, usize) -> bool) -> Code {
        let mut code = self.clone();
        for y in 0..GRID {
            for x in 0..GRID {
                if !keep(x, y) {
                    code.mask[y] &= !(1 << x);
                    for plane in &mut code.planes {
                        plane[y] &= !(1 << x);
                    }
                }
            }
        }
        code
    }

    /// The code of cell (x, y), `None` outside the grid or where the cell is not valid.
    fn cell(&self, x: isize, y: isize) -> Option<u32> {
        let (x, y) = (usize::try_from(x).ok()?, usize::try_from(y).ok()?);
        if x >= GRID || y >= GRID || (self.mask[y] >> x) & 1 == 0 {
            return None;
        }
        Some(
            self.planes
                .iter()
                .enumerate()
                .fold(0, |code, (b, plane)| code | ((plane[y] >> x) & 1) << b),
        )
    }

    /// Elastic: as [`Code::distance`], but at each shift searched every one of `regions` ×
    /// `regions` regions of the probe may move by up to `region_reach` cells more on its own, to
    /// where it compares best (a region keeps the common shift unless another compares at least
    /// three quarters as many cells); mismatched bits over compared bits of the regions summed.
    fn distance_elastic(&self, reference: &Code, variant: &Variant) -> u32 {
        let (n, reach) = (variant.regions, variant.region_reach);
        let shift = variant.max_shift;
        let shift_y = variant.max_shift_y.unwrap_or(shift);
        let (wide_x, wide_y) = (shift + reach, shift_y + reach);
        let side_x = (2 * wide_x + 1) as usize;
        // Per shift, per region: (compared, mismatched).
        let table: Vec<Vec<(u64, u64)>> = (-wide_y..=wide_y)
            .flat_map(|dy| (-wide_x..=wide_x).map(move |dx| (dx, dy)))
            .map(|(dx, dy)| self.regions_at_shift(reference, n, dx, dy))
            .collect();
        let at =
            |dx: i32, dy: i32| &table[(dy + wide_y) as usize * side_x + (dx + wide_x) as usize];
        let mut best = 1u32 << 16;
        for dy in -shift_y..=shift_y {
            for dx in -shift..=shift {
                let (mut compared, mut mismatched) = (0u64, 0u64);
                for r in 0..n * n {
                    let (c0, m0) = at(dx, dy)[r];
                    let mut chosen = (c0, m0);
                    for oy in -reach..=reach {
                        for ox in -reach..=reach {
                            let (c, m) = at(dx + ox, dy + oy)[r];
                            // m / c < chosen.1 / chosen.0, with enough cells compared.
                            if c * 4 >= c0 * 3
                                && c > 0
                                && u128::from(m) * u128::from(chosen.0.max(1))
                                    < u128::from(chosen.1) * u128::from(c)
                            {
                                chosen = (c, m);
                            }
                        }
                    }
                    compared += chosen.0;
                    mismatched += chosen.1;
                }
                if compared >= u64::from(MIN_OVERLAP_CELLS) {
                    best = best.min(variant.q16(mismatched, compared, self.planes.len()));
                }
            }
        }
        best
    }

    /// Cells compared and bits mismatched at shift (dx, dy), per region of the probe (`n` × `n`
    /// regions, row by row).
    fn regions_at_shift(&self, reference: &Code, n: usize, dx: i32, dy: i32) -> Vec<(u64, u64)> {
        let moved = |row: u32| moved_row(row, dx, GRID);
        let bands: Vec<u32> = (0..n)
            .map(|b| {
                let (from, to) = (b * GRID / n, (b + 1) * GRID / n);
                ((1u32 << to) - 1) & !((1u32 << from) - 1)
            })
            .collect();
        let mut out = vec![(0u64, 0u64); n * n];
        for y in 0..GRID {
            let Some(ry) = y.checked_add_signed(dy as isize).filter(|&r| r < GRID) else {
                continue;
            };
            let mask = self.mask[y] & moved(reference.mask[ry]);
            let mut counts = vec![0u64; n];
            for (p, r) in self.planes.iter().zip(&reference.planes) {
                let differ = (p[y] ^ moved(r[ry])) & mask;
                for (count, band) in counts.iter_mut().zip(&bands) {
                    *count += u64::from((differ & band).count_ones());
                }
            }
            let row = y * n / GRID;
            for (b, band) in bands.iter().enumerate() {
                out[row * n + b].0 += u64::from((mask & band).count_ones());
                out[row * n + b].1 += counts[b];
            }
        }
        out
    }

    /// Pixel-to-area: as [`Code::distance`], each probe cell against the closest code among the
    /// reference cells within `area_reach` of its shifted place. Cell by cell (slow; a study).
    fn distance_to_area(&self, reference: &Code, variant: &Variant) -> u32 {
        let (shift, reach) = (variant.max_shift as isize, variant.area_reach as isize);
        let probe: Vec<Option<u32>> = (0..CELLS)
            .map(|c| self.cell((c % GRID) as isize, (c / GRID) as isize))
            .collect();
        let mut best = 1u32 << 16;
        for dy in -shift..=shift {
            for dx in -shift..=shift {
                let (mut compared, mut mismatched) = (0u64, 0u64);
                for (c, code) in probe.iter().enumerate() {
                    let (x, y) = ((c % GRID) as isize + dx, (c / GRID) as isize + dy);
                    let (Some(code), Some(_)) = (code, reference.cell(x, y)) else {
                        continue;
                    };
                    let least = (-reach..=reach)
                        .flat_map(|oy| (-reach..=reach).map(move |ox| (ox, oy)))
                        .filter_map(|(ox, oy)| reference.cell(x + ox, y + oy))
                        .map(|other| (code ^ other).count_ones())
                        .min()
                        .unwrap_or(0);
                    compared += 1;
                    mismatched += u64::from(least);
                }
                if compared >= u64::from(MIN_OVERLAP_CELLS) {
                    best = best.min(variant.q16(mismatched, compared, self.planes.len()));
                }
            }
        }
        best
    }
}

/// `--station 1`: the enrolment station's check on each hand's first three captures, by four
/// rules: every pair must match or the captures need only be connected by matching pairs (two of
/// the three), each comparison at the pose found or with the later capture at its kind's poses
/// (as a card compares a probe); and a fifth, three captures that all match among the first 4, 5
/// or 6. Hands refused per profile, to stderr.
fn print_station(set: &Set, codes: &[Vec<Code>], variant: &Variant) {
    let roles = EnrolmentRoles::new(set.identities, &set.keys, 3, 3);
    let hands: Vec<&Vec<usize>> = roles.references.iter().filter(|r| r.len() == 3).collect();
    for posed in [false, true] {
        let poses = if posed {
            codes.first().map_or(1, Vec::len).max(1)
        } else {
            1
        };
        for profile in palmgate_matcher::Profile::ALL {
            let threshold = profile.threshold(1, if posed { poses } else { 1 }).q16();
            // Capture `b` (at its poses, or as found) against capture `a` as found.
            let matches = |a: usize, b: usize| {
                let (reference, probe) = (&codes[a][0], &codes[b]);
                let distance = if posed {
                    probe
                        .iter()
                        .map(|p| p.distance(reference, variant))
                        .min()
                        .unwrap_or(1 << 16)
                } else {
                    probe[0].distance(reference, variant)
                };
                distance <= threshold
            };
            let (mut all_refused, mut connected_refused) = (0, 0);
            for hand in &hands {
                let mut matching = 0;
                for (a, b) in [(0, 1), (0, 2), (1, 2)] {
                    matching += usize::from(matches(hand[a], hand[b]));
                }
                all_refused += usize::from(matching < 3);
                connected_refused += usize::from(matching < 2);
            }
            // A station that, when the three disagree, asks for more captures (up to `k`) and
            // enrols three that all match each other: hands with no such three among their
            // first `k` captures (hands with at least `k` captures).
            let mut retry = Vec::new();
            for k in [4usize, 5, 6] {
                let roles = EnrolmentRoles::new(set.identities, &set.keys, k, k);
                let full: Vec<&Vec<usize>> =
                    roles.references.iter().filter(|r| r.len() == k).collect();
                let refused = full
                    .iter()
                    .filter(|hand| {
                        earliest_group(k, 3, StationRule::EveryPair, |a, b| {
                            matches(hand[a], hand[b])
                        })
                        .is_none()
                    })
                    .count();
                retry.push(format!("{k} captures: {refused} of {}", full.len()));
            }
            eprintln!(
                "station {}: {} pose(s), {}: three agreeing among the first {}",
                set.name,
                if posed { "the kind's" } else { "one" },
                profile.name(),
                retry.join(", ")
            );
            eprintln!(
                "station {}: {} pose(s), {}: every pair refuses {} of {}, connected refuses {}",
                set.name,
                if posed { "the kind's" } else { "one" },
                profile.name(),
                all_refused,
                hands.len(),
                connected_refused
            );
        }
    }
}

/// `--cohort-norm`: impostor trials only within each half of the identities (odd or even
/// index), distances as they are (`raw`) or as standard scores against the reference's
/// distances to the other half (`z`, a per-template score normalisation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CohortNorm {
    Raw,
    Z,
}

/// How the study compares two codes (the product: `max_shift` 2, no normalisation, reach 0).
#[derive(Debug, Clone, Copy)]
struct Variant {
    max_shift: i32,
    /// `--max-shift-y N`: rows searched (along the palm), where it differs from `max_shift`.
    max_shift_y: Option<i32>,
    overlap_norm: Option<f64>,
    area_reach: i32,
    /// `--regions N`: the elastic comparison's regions on a side (default the card's 2; 0 or
    /// `--regions 1 --region-reach 0`: one common shift for every cell, the card's before 1.9).
    regions: usize,
    /// `--region-reach R`: how far each region may move on its own, in cells.
    region_reach: i32,
    /// `--coarse R`: the fine search also runs around the best coarse shift within ±R blocks.
    coarse: i32,
    /// `hist`: the histogram distance's weight in the fused distance (`--hist-weight PERCENT`).
    hist_weight: f64,
    /// `hist`: block steps searched each way (`--hist-reach N`).
    hist_reach: i32,
}

impl Variant {
    /// Mismatched bits over compared bits, Q16, normalised by the cells compared if asked.
    fn q16(&self, mismatched: u64, compared: u64, planes: usize) -> u32 {
        let bits = compared * planes as u64;
        match self.overlap_norm {
            None => ((mismatched << 16) / bits) as u32,
            Some(typical) => {
                let raw = mismatched as f64 / bits as f64;
                let normalised = 0.5 - (0.5 - raw) * (compared as f64 / typical).sqrt();
                (normalised.clamp(0.0, 1.0) * 65536.0) as u32
            }
        }
    }
}

/// The move of a given ROI's centre (fraction of the side) that brings the centroid of the palm's
/// line energy (the square of the strongest negative response, over the valid cells of the found
/// cut) `alpha` of the way to the middle, at most 15 % of the side; none for `alpha` 0.
fn line_energy_offset(
    gray: &image::GrayImage,
    extractor: &Extractor,
    model: &FeatureModel,
    alpha: f32,
) -> [f32; 2] {
    const LIMIT: f32 = 0.15;
    if alpha == 0.0 {
        return [0.0, 0.0];
    }
    let Some((template, responses)) = Roi::from_roi_image(gray).ok().and_then(|roi| {
        let template = extractor.extract_from_roi(&roi).ok()?.template;
        Some((template, model.responses(roi.image.as_raw()).ok()?))
    }) else {
        return [0.0, 0.0];
    };
    let (mut sx, mut sy, mut sw) = (0f64, 0f64, 0f64);
    for c in (0..CELLS).filter(|&c| template.orientation(c % GRID, c / GRID).is_some()) {
        let strongest = (0..ORIENTATIONS)
            .map(|k| responses.0[k][c])
            .fold(f32::INFINITY, f32::min);
        let w = f64::from((-strongest).max(0.0)).powi(2);
        sx += w * (c % GRID) as f64;
        sy += w * (c / GRID) as f64;
        sw += w;
    }
    if sw <= 0.0 {
        return [0.0, 0.0];
    }
    let middle = (GRID as f64 - 1.0) / 2.0;
    let offset =
        |sum: f64| (((sum / sw - middle) / GRID as f64) as f32 * alpha).clamp(-LIMIT, LIMIT);
    [offset(sx), offset(sy)]
}

/// A set's usable captures: keys for the protocol and every pose's cut (the found pose first).
struct Set {
    name: &'static str,
    identities: usize,
    /// Identity names, by the index in `keys`.
    names: Vec<String>,
    keys: Vec<SampleKey>,
    cuts: Vec<Vec<Cut>>,
    /// Per capture, its cut at each of the `--enrol-poses` (a sensor's ROI only; `None` where
    /// the pose leaves the image).
    enrol_cuts: Vec<Vec<Option<Cut>>>,
    /// Per capture, what the found cut measures without a reference (`--dump`).
    stats: Vec<CaptureStats>,
    /// Per capture, its file name (`--dump`).
    files: Vec<String>,
}

/// One of [`CaptureStats`]' measures, as a number.
type Statistic = fn(&CaptureStats) -> f64;

/// What a gate could measure on a capture's found cut alone, with no reference to compare.
#[derive(Debug, Clone, Copy)]
struct CaptureStats {
    quality: palmgate_matcher::quality::QualityReport,
    valid_cells: usize,
    /// Centroid of the line energy, in cells from the middle (x, y).
    centroid: [f64; 2],
    /// Mean line energy (strongest negative response, squared) per valid cell.
    energy: f64,
    /// Share of the line energy in the outer ring of cells (4 deep).
    border_energy: f64,
    /// Share of valid cells coded with the commonest orientation.
    dominant: f64,
}

impl CaptureStats {
    fn new(quality: palmgate_matcher::quality::QualityReport, cut: &Cut) -> Self {
        let middle = (GRID as f64 - 1.0) / 2.0;
        let (mut sx, mut sy, mut sw, mut border) = (0f64, 0f64, 0f64, 0f64);
        let mut counts = [0usize; ORIENTATIONS];
        for c in (0..CELLS).filter(|&c| cut.valid[c]) {
            let (k, strongest) = (0..ORIENTATIONS)
                .map(|k| (k, cut.responses[k][c]))
                .fold((0, f32::INFINITY), |a, b| if b.1 < a.1 { b } else { a });
            counts[k] += 1;
            let w = f64::from((-strongest).max(0.0)).powi(2);
            let (x, y) = (c % GRID, c / GRID);
            sx += w * x as f64;
            sy += w * y as f64;
            sw += w;
            if x < 4 || y < 4 || x >= GRID - 4 || y >= GRID - 4 {
                border += w;
            }
        }
        let valid_cells = cut.valid.iter().filter(|v| **v).count();
        let sw_safe = sw.max(f64::MIN_POSITIVE);
        Self {
            quality,
            valid_cells,
            centroid: [sx / sw_safe - middle, sy / sw_safe - middle],
            energy: sw / valid_cells.max(1) as f64,
            border_energy: border / sw_safe,
            dominant: counts.iter().copied().max().unwrap_or(0) as f64 / valid_cells.max(1) as f64,
        }
    }
}

/// How every capture is cut and coded.
struct Cutting<'a> {
    extractor: &'a Extractor,
    model: &'a FeatureModel,
    /// `--register ALPHA`.
    register: f32,
    /// `--enrol-poses`: where a sensor's ROI is cut for the second, third, … enrolled capture.
    enrol_poses: &'a [Pose],
    /// `--enrol-scale`: the zoom of a sensor's ROI for the second, third, … enrolled capture
    /// (above 1: closer; after any `--enrol-poses`).
    enrol_scales: &'a [f32],
    /// `--probe-extra`: one more probe pose for a sensor's ROI, after the product's.
    probe_extra: &'a [Pose],
}

/// A given ROI as if the hand had been `zoom` times closer (above 1: the middle cropped and
/// enlarged) or further (below 1: shrunk into a square of the database's flat dark padding, which
/// the ROI's padding rule masks), the same size.
fn zoomed(roi: &image::GrayImage, zoom: f32) -> image::GrayImage {
    use image::imageops::{self, FilterType};
    let (w, h) = roi.dimensions();
    if zoom >= 1.0 {
        let (cw, ch) = ((w as f32 / zoom) as u32, (h as f32 / zoom) as u32);
        let crop = imageops::crop_imm(roi, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
        imageops::resize(&crop, w, h, FilterType::Triangle)
    } else {
        let (sw, sh) = ((w as f32 * zoom) as u32, (h as f32 * zoom) as u32);
        let small = imageops::resize(roi, sw, sh, FilterType::Triangle);
        let mut canvas = image::GrayImage::from_pixel(w, h, image::Luma([4]));
        imageops::replace(
            &mut canvas,
            &small,
            i64::from((w - sw) / 2),
            i64::from((h - sh) / 2),
        );
        canvas
    }
}

fn read_set(
    folder: &Path,
    name: &'static str,
    kind: InputKind,
    sessions: SessionRule,
    cutting: &Cutting<'_>,
) -> Result<Set, String> {
    let Cutting {
        extractor,
        model,
        register,
        enrol_poses,
        enrol_scales,
        probe_extra,
    } = *cutting;
    let samples = scan(folder).map_err(|e| e.to_string())?;
    let mut names: Vec<&str> = samples.iter().map(|s| s.identity.as_str()).collect();
    names.dedup();
    let code_cut = |roi: Roi| -> Option<Cut> {
        let template = extractor.extract_from_roi(&roi).ok()?.template;
        let responses = model.responses(roi.image.as_raw()).ok()?;
        Some(Cut {
            valid: (0..CELLS)
                .map(|c| template.orientation(c % GRID, c / GRID).is_some())
                .collect(),
            responses: responses.0.to_vec(),
        })
    };
    let cut = |image: &image::DynamicImage| -> Option<(Vec<Cut>, Vec<Option<Cut>>, CaptureStats)> {
        let probe: Vec<Pose> = probe_poses(kind)
            .iter()
            .chain(if kind == InputKind::Roi {
                probe_extra
            } else {
                &[]
            })
            .copied()
            .collect();
        let extra = if kind == InputKind::Roi {
            enrol_poses
        } else {
            &[]
        };
        let poses: Vec<Pose> = probe.iter().chain(extra).copied().collect();
        let poses = poses.as_slice();
        let rois: Vec<Result<Roi, _>> = match kind {
            InputKind::Hand if image.color().has_color() => {
                roi::extract_roi_rgb_posed(&image.to_rgb8(), poses).ok()?
            }
            InputKind::Hand => roi::extract_roi_posed(&image.to_luma8(), poses).ok()?,
            InputKind::Roi => {
                let gray = image.to_luma8();
                let centre = line_energy_offset(&gray, extractor, model, register);
                let moved: Vec<_> = poses
                    .iter()
                    .map(|&pose| {
                        let mut pose = pose;
                        pose.offset[0] += centre[0];
                        pose.offset[1] += centre[1];
                        pose
                    })
                    .collect();
                // As the product: the sensor's padding found once for every pose.
                let mut rois: Vec<_> = Roi::from_roi_image_poses(&gray, &moved)
                    .ok()?
                    .into_iter()
                    .map(Ok)
                    .collect();
                for &zoom in enrol_scales {
                    let found = Pose {
                        rotation: 0.0,
                        offset: centre,
                    };
                    rois.push(Roi::from_roi_image_posed(&zoomed(&gray, zoom), found));
                }
                rois
            }
        };
        let mut rois = rois.into_iter();
        let mut cuts = Vec::new();
        let mut stats = None;
        for (pose, roi) in rois.by_ref().take(probe.len()).enumerate() {
            // As `extract_probe`: the found pose's refusal is the capture's, other poses drop out.
            match roi.ok().and_then(|roi| {
                let quality = palmgate_matcher::quality::measure(&roi);
                let cut = code_cut(roi)?;
                Some((quality, cut))
            }) {
                Some((quality, cut)) => {
                    if pose == 0 {
                        stats = Some(CaptureStats::new(quality, &cut));
                    }
                    cuts.push(cut);
                }
                None if pose == 0 => return None,
                None => {}
            }
        }
        let enrol_cuts = rois.map(|roi| roi.ok().and_then(code_cut)).collect();
        Some((cuts, enrol_cuts, stats?))
    };
    let mut set = Set {
        name,
        identities: names.len(),
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        keys: Vec::new(),
        cuts: Vec::new(),
        enrol_cuts: Vec::new(),
        stats: Vec::new(),
        files: Vec::new(),
    };
    let mut refused = 0;
    for sample in &samples {
        let image = load_file(sample)?;
        match cut(&image) {
            Some((cuts, enrol_cuts, stats)) => {
                set.stats.push(stats);
                set.files.push(
                    sample
                        .path
                        .file_name()
                        .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                );
                let identity = names.iter().position(|n| *n == sample.identity);
                set.keys.push(SampleKey {
                    identity: identity.unwrap_or(0) as u32,
                    session: sessions.session(sample),
                });
                set.cuts.push(cuts);
                set.enrol_cuts.push(enrol_cuts);
            }
            None => refused += 1,
        }
    }
    eprintln!(
        "{name}: {} captures, {refused} refused, {} identities",
        samples.len(),
        set.identities
    );
    Ok(set)
}

/// `--dump PREFIX`: every capture's reference-free statistics (`PREFIX-SET-captures.csv`) and
/// every genuine probe's distance to its hand's references (`PREFIX-SET-genuine.csv`), for the
/// quality-gate study in `docs/matcher.md`.
fn dump_set(
    prefix: &Path,
    set: &Set,
    roles: &EnrolmentRoles,
    distance: impl Fn(usize, usize) -> u32,
) -> std::io::Result<()> {
    use std::io::Write as _;
    let rank = capture_ranks(&set.keys);
    let path = |what: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(format!("-{}-{what}.csv", set.name));
        PathBuf::from(name)
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create(path("captures"))?);
    writeln!(
        out,
        "capture,identity,rank,file,valid,mean,focus,dark,saturated,valid_cells,cx,cy,energy,border_energy,dominant"
    )?;
    for (i, stats) in set.stats.iter().enumerate() {
        let q = stats.quality;
        writeln!(
            out,
            "{i},{},{},{},{:.4},{:.2},{:.2},{:.4},{:.4},{},{:.3},{:.3},{:.5},{:.4},{:.4}",
            set.names[set.keys[i].identity as usize],
            rank[i],
            set.files[i],
            q.valid,
            q.raw.mean,
            q.raw.focus,
            q.raw.dark,
            q.raw.saturated,
            stats.valid_cells,
            stats.centroid[0],
            stats.centroid[1],
            stats.energy,
            stats.border_energy,
            stats.dominant
        )?;
    }
    out.flush()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path("genuine"))?);
    writeln!(out, "probe,identity,references,distance")?;
    // The shipped `balanced` threshold for the hand's templates at the kind's poses (the
    // held-out folds' own thresholds differ from it by a few hundred Q16 at most).
    let poses = set.cuts.first().map_or(1, Vec::len);
    let mut refused = Vec::new();
    for (identity, (references, probes)) in roles.references.iter().zip(&roles.probes).enumerate() {
        let threshold = palmgate_matcher::Profile::Balanced
            .threshold(references.len().max(1), poses)
            .q16();
        for &probe in probes {
            let closest = references
                .iter()
                .map(|&r| distance(r, probe))
                .min()
                .unwrap_or(1 << 16);
            if closest > threshold {
                refused.push(probe);
            }
            let names: Vec<String> = references.iter().map(usize::to_string).collect();
            writeln!(
                out,
                "{probe},{},{},{:.5}",
                set.names[identity],
                names.join(" "),
                f64::from(closest) / 65536.0
            )?;
        }
    }
    out.flush()?;
    // Where the refused probes fall among every capture of the set, statistic by statistic: a
    // reference-free quality gate could turn them into re-presentations only if they crowd a
    // tail (at most 2 % of the captures may be refused, FTA).
    let statistics: [(&str, Statistic); 10] = [
        ("valid share", |s| f64::from(s.quality.valid)),
        ("mean level", |s| f64::from(s.quality.raw.mean)),
        ("focus", |s| f64::from(s.quality.raw.focus)),
        ("saturated share", |s| f64::from(s.quality.raw.saturated)),
        ("line-energy centroid x", |s| s.centroid[0]),
        ("line-energy centroid y", |s| s.centroid[1]),
        ("line-energy centroid off the middle", |s| {
            s.centroid[0].hypot(s.centroid[1])
        }),
        ("line energy", |s| s.energy),
        ("line energy in the border cells", |s| s.border_energy),
        ("commonest orientation's share", |s| s.dominant),
    ];
    eprintln!(
        "{}: {} of {} genuine probes refused at the shipped `balanced` threshold; their ranks among the {} captures (0 lowest, 1 highest):",
        set.name,
        refused.len(),
        roles.probes.iter().map(Vec::len).sum::<usize>(),
        set.stats.len()
    );
    for (name, statistic) in statistics {
        let mut all: Vec<f64> = set.stats.iter().map(statistic).collect();
        all.sort_by(f64::total_cmp);
        // Mid-rank: ties (every capture fully valid, none saturated) sit in the middle.
        let rank = |value: f64| {
            let below = all.partition_point(|&v| v < value);
            let up_to = all.partition_point(|&v| v <= value);
            (below + up_to) as f64 / 2.0 / all.len() as f64
        };
        let mut ranks: Vec<f64> = refused
            .iter()
            .map(|&p| rank(statistic(&set.stats[p])))
            .collect();
        ranks.sort_by(f64::total_cmp);
        let in_tails = ranks
            .iter()
            .filter(|&&r| !(0.01..0.99).contains(&r))
            .count();
        let listed: Vec<String> = ranks.iter().map(|r| format!("{r:.2}")).collect();
        eprintln!(
            "  {name}: {} ({in_tails} in the outer 1 % at either end)",
            listed.join(" ")
        );
    }
    Ok(())
}

/// `--station-choose spread`: a hand the station enrolled from later captures gets, among every
/// `enrolled` captures presented to it that agree by `rule`, those furthest apart (the largest
/// sum of their pairwise distances) instead of the earliest; its probes stay as they were.
/// Returns how many hands' references changed.
fn spread_out(
    roles: &mut EnrolmentRoles,
    keys: &[SampleKey],
    enrolled: usize,
    rule: StationRule,
    matches: &dyn Fn(usize, usize) -> bool,
    distance: impl Fn(usize, usize) -> u32,
) -> usize {
    let mut changed = 0;
    for (list, references) in per_identity(roles.references.len(), keys)
        .iter()
        .zip(roles.references.iter_mut())
    {
        // The station stopped at the capture that completed its (earliest) group.
        let Some(presented) = references
            .iter()
            .filter_map(|r| list.iter().position(|s| s == r))
            .max()
            .map(|last| last + 1)
        else {
            continue;
        };
        if presented == enrolled {
            continue;
        }
        let spread = |group: &Vec<usize>| -> u64 {
            group
                .iter()
                .enumerate()
                .flat_map(|(i, &a)| group[i + 1..].iter().map(move |&b| (list[a], list[b])))
                .map(|(a, b)| u64::from(distance(a, b)))
                .sum()
        };
        let furthest = agreeing_groups(presented, enrolled, rule, |i, j| matches(list[i], list[j]))
            .max_by_key(|group| (spread(group), std::cmp::Reverse(group.clone())));
        if let Some(group) = furthest {
            let group: Vec<usize> = group.into_iter().map(|i| list[i]).collect();
            changed += usize::from(*references != group);
            *references = group;
        }
    }
    changed
}

/// Each capture's place among its identity's captures (0 for the first), as `enrolment` counts.
fn capture_ranks(keys: &[SampleKey]) -> Vec<usize> {
    let mut seen = std::collections::HashMap::new();
    keys.iter()
        .map(|key| {
            let count = seen.entry(key.identity).or_insert(0usize);
            *count += 1;
            *count - 1
        })
        .collect()
}

/// `--consistent`: which cells of an enrolled capture's template are kept, judged against the
/// hand's other enrolled captures each at its best shift (as the station holds them).
#[derive(Debug, Clone, Copy)]
enum Consistency {
    /// Kept where its orientation equals at least one other capture's.
    One,
    /// Kept where its orientation is within one step of every other capture's.
    NearAll,
}

/// `--consistent`: each enrolled capture's template with the cells that disagree with the hand's
/// other enrolled captures left out (a cell with no valid counterpart in any is kept).
fn consistent_references(
    codes: &[Vec<Code>],
    references: &[Vec<usize>],
    rule: Consistency,
) -> Vec<Option<Code>> {
    let mut out: Vec<Option<Code>> = vec![None; codes.len()];
    for hand in references {
        for &r in hand {
            let own = &codes[r][0];
            let others: Vec<(&Code, (i32, i32))> = hand
                .iter()
                .filter(|&&o| o != r)
                .filter_map(|&o| Some((&codes[o][0], own.best_shift(&codes[o][0])?)))
                .collect();
            out[r] = Some(own.masked(|x, y| {
                let Some(mine) = own.cell(x as isize, y as isize) else {
                    return true;
                };
                let theirs: Vec<u32> = others
                    .iter()
                    .filter_map(|(other, (dx, dy))| {
                        other.cell(x as isize + *dx as isize, y as isize + *dy as isize)
                    })
                    .collect();
                if theirs.is_empty() {
                    return true;
                }
                match rule {
                    Consistency::One => theirs.contains(&mine),
                    Consistency::NearAll => theirs.iter().all(|t| (t ^ mine).count_ones() <= 1),
                }
            }));
        }
    }
    let valid = |code: &Code| code.mask.iter().map(|row| row.count_ones()).sum::<u32>();
    let (kept, before) = references
        .iter()
        .flatten()
        .filter_map(|&r| Some((valid(out[r].as_ref()?), valid(&codes[r][0]))))
        .fold((0u64, 0u64), |(k, b), (kept, before)| {
            (k + u64::from(kept), b + u64::from(before))
        });
    eprintln!(
        "--consistent {rule:?}: {kept} of {before} valid cells of the enrolled templates kept ({:.1} %)",
        100.0 * kept as f64 / before.max(1) as f64
    );
    out
}

/// `--enrol-poses AXIS AMOUNT` as `x8` (the second and third enrolled captures of a sensor's ROI
/// slid left and right by 8 % of the side), `y8` (up and down) or `r5` (turned by ∓5°).
fn parse_enrol_poses(value: &str) -> Result<Vec<Pose>, String> {
    let bad = || format!("--enrol-poses {value}: x, y, r or d and a number (x8, y8, r5, d1.95)");
    let (axis, amount) = value.split_at_checked(1).ok_or_else(bad)?;
    let amount: f32 = amount.parse().map_err(|_| bad())?;
    let pose = |rotation: f32, offset: [f32; 2]| Pose { rotation, offset };
    let (fraction, radians) = (amount / 100.0, amount.to_radians());
    match axis {
        "x" => Ok(vec![
            pose(0.0, [-fraction, 0.0]),
            pose(0.0, [fraction, 0.0]),
        ]),
        "y" => Ok(vec![
            pose(0.0, [0.0, -fraction]),
            pose(0.0, [0.0, fraction]),
        ]),
        "r" => Ok(vec![pose(-radians, [0.0, 0.0]), pose(radians, [0.0, 0.0])]),
        // Diagonally, up-left and down-right: `d1.95` is half a cell (5 px of a 128-px cut).
        "d" => Ok(vec![
            pose(0.0, [-fraction, -fraction]),
            pose(0.0, [fraction, fraction]),
        ]),
        _ => Err(bad()),
    }
}

/// Each read set's `--same-hand` pairs as identity indices; a pair naming a set that was not read
/// or an identity the set does not have is an error (it would leave its trials among the
/// impostors without a word).
fn same_hand_indices(
    sets: &[Set],
    pairs: &[(String, String, String)],
) -> Result<Vec<Vec<[u32; 2]>>, String> {
    let mut indices = vec![Vec::new(); sets.len()];
    for (set_name, a, b) in pairs {
        let (s, set) = sets
            .iter()
            .enumerate()
            .find(|(_, set)| set.name == set_name.as_str())
            .ok_or_else(|| format!("--same-hand {set_name}:{a}={b}: no set {set_name:?} read"))?;
        let index = |name: &String| {
            set.names
                .iter()
                .position(|n| n == name)
                .map(|i| i as u32)
                .ok_or_else(|| format!("--same-hand: {set_name} has no identity {name:?}"))
        };
        indices[s].push([index(a)?, index(b)?]);
    }
    Ok(indices)
}

fn percent(rate: f64) -> String {
    format!("{:.3}", 100.0 * rate)
}

const USAGE: &str = "usage: code_families DATA_DIR [--sets NAME,...] \
     [--codes competitive,signs,both,hist] [--hist-weight PERCENT] [--hist-reach STEPS] [--hist-vote hard|soft] [--max-shift CELLS] [--max-shift-y CELLS] [--overlap-norm CELLS] \
     [--area-reach CELLS] [--regions N] [--region-reach CELLS] [--enrolled N] [--probes-after M] [--fragile PER_MILLE] [--register ALPHA] \
     [--enrol-poses x8|y8|r5|d1.95] [--enrol-extra x8|y8|r5|d1.95] [--probe-extra y1.95] [--enrol-scale PERCENT] [--coarse BLOCKS] [--closest N] [--same-hand SET:ID=ID] [--station 1] \
     [--station-enrol after|all] [--station-rule every|connected] [--station-compare found|posed] [--dump PREFIX] [--cohort-norm raw|z] [--station-choose earliest|spread] [--station-profile PROFILE]";

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or(USAGE)?);
    let mut families = FAMILIES.to_vec();
    let mut only: Option<Vec<String>> = None;
    let mut variant = Variant {
        max_shift: MAX_SHIFT,
        max_shift_y: None,
        overlap_norm: None,
        area_reach: 0,
        regions: palmgate_matcher::compare::REGIONS,
        region_reach: palmgate_matcher::compare::REGION_REACH,
        coarse: 0,
        hist_weight: 0.5,
        hist_reach: 2,
    };
    let mut vote = Vote::Hard;
    let mut enrolled = 3usize;
    let mut fragile = 0u16;
    let mut register = 0f32;
    let mut probes_after = 3usize;
    let mut enrol_poses: Vec<Pose> = Vec::new();
    let mut enrol_scales: Vec<f32> = Vec::new();
    let mut enrol_extra = false;
    let mut probe_extra: Vec<Pose> = Vec::new();
    let mut consistent: Option<Consistency> = None;
    let mut closest = 0usize;
    let mut station = false;
    let mut station_enrol = None;
    let mut station_rule = StationRule::EveryPair;
    let mut station_posed = false;
    let mut same_hands: Vec<(String, String, String)> = Vec::new();
    let mut dump: Option<PathBuf> = None;
    let mut cohort_norm = None;
    let mut station_spread = false;
    let mut station_profile = palmgate_matcher::Profile::Balanced;
    while let Some(option) = args.next() {
        let value = args.next().ok_or(USAGE)?;
        let number = || {
            value
                .parse::<u16>()
                .map_err(|e| format!("{option} {value}: {e}"))
        };
        match option.as_str() {
            "--codes" => {
                families = value
                    .split(',')
                    .map(|name| match name {
                        "competitive" => Ok(Family::Competitive),
                        "signs" => Ok(Family::Signs),
                        "both" => Ok(Family::Fused),
                        "hist" => Ok(Family::Histograms),
                        other => Err(format!("unknown code {other:?}; {USAGE}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--sets" => only = Some(value.split(',').map(str::to_owned).collect()),
            "--max-shift" => variant.max_shift = i32::from(number()?),
            "--max-shift-y" => variant.max_shift_y = Some(i32::from(number()?)),
            "--overlap-norm" => variant.overlap_norm = Some(f64::from(number()?)),
            "--area-reach" => variant.area_reach = i32::from(number()?),
            "--regions" => variant.regions = usize::from(number()?).min(6),
            "--region-reach" => variant.region_reach = i32::from(number()?).min(3),
            "--coarse" => variant.coarse = i32::from(number()?).min(5),
            "--hist-weight" => variant.hist_weight = f64::from(number()?.min(100)) / 100.0,
            "--hist-reach" => variant.hist_reach = i32::from(number()?).min(5),
            "--hist-vote" => {
                vote = match value.as_str() {
                    "hard" => Vote::Hard,
                    "soft" => Vote::Soft,
                    _ => return Err(format!("--hist-vote hard|soft, not {value}")),
                }
            }
            "--enrolled" => enrolled = usize::from(number()?).max(1),
            "--fragile" => fragile = number()?.min(900),
            "--register" => {
                register = value
                    .parse::<f32>()
                    .ok()
                    .filter(|alpha| (0.0..=1.0).contains(alpha))
                    .ok_or_else(|| format!("--register {value}: a number from 0 to 1"))?;
            }
            "--probes-after" => probes_after = usize::from(number()?),
            "--enrol-poses" => enrol_poses = parse_enrol_poses(&value)?,
            "--consistent" => {
                consistent = Some(match value.as_str() {
                    "one" => Consistency::One,
                    "near" => Consistency::NearAll,
                    _ => return Err(format!("--consistent one|near, not {value}")),
                });
            }
            "--enrol-extra" => {
                enrol_poses = parse_enrol_poses(&value)?;
                enrol_extra = true;
            }
            "--probe-extra" => {
                // The second of the pair: slid down, right or both, or turned clockwise (half a
                // cell either way reaches the same sampling phase: the shifts cover a cell).
                probe_extra = parse_enrol_poses(&value)?.split_off(1);
            }
            "--enrol-scale" => {
                let step = 1.0 + f32::from(number()?.min(50)) / 100.0;
                enrol_scales = vec![1.0 / step, step];
            }
            "--closest" => closest = usize::from(number()?),
            "--station" => station = value == "1",
            "--station-compare" => {
                station_posed = match value.as_str() {
                    "found" => false,
                    "posed" => true,
                    _ => return Err(format!("--station-compare found|posed, not {value}")),
                }
            }
            "--station-rule" => {
                station_rule = match value.as_str() {
                    "every" => StationRule::EveryPair,
                    "connected" => StationRule::Connected,
                    _ => return Err(format!("--station-rule every|connected, not {value}")),
                }
            }
            "--station-enrol" => {
                station_enrol = Some(match value.as_str() {
                    "after" => StationProbes::AfterTaken,
                    "all" => StationProbes::NotEnrolled,
                    _ => return Err(format!("--station-enrol after|all, not {value}")),
                })
            }
            "--dump" => dump = Some(PathBuf::from(&value)),
            "--station-profile" => {
                station_profile = value
                    .parse()
                    .map_err(|e| format!("--station-profile {value}: {e}"))?;
            }
            "--station-choose" => {
                station_spread = match value.as_str() {
                    "earliest" => false,
                    "spread" => true,
                    _ => return Err(format!("--station-choose earliest|spread, not {value}")),
                }
            }
            "--cohort-norm" => {
                cohort_norm = Some(match value.as_str() {
                    "raw" => CohortNorm::Raw,
                    "z" => CohortNorm::Z,
                    _ => return Err(format!("--cohort-norm raw|z, not {value}")),
                })
            }
            "--same-hand" => {
                let bad = || format!("--same-hand {value}: SET:ID=ID");
                let (set, pair) = value.split_once(':').ok_or_else(bad)?;
                let (a, b) = pair.split_once('=').ok_or_else(bad)?;
                same_hands.push((set.to_owned(), a.to_owned(), b.to_owned()));
            }
            _ => return Err(format!("unknown option {option:?}; {USAGE}")),
        }
    }
    if variant.regions > 0 && variant.coarse > 0 {
        return Err("--coarse searches one common shift: add --regions 0".into());
    }
    eprintln!("comparison: {variant:?}");
    let extractor = Extractor::builtin().map_err(|e| e.to_string())?;
    let model = FeatureModel::builtin().map_err(|e| e.to_string())?;
    let cutting = Cutting {
        extractor: &extractor,
        model: &model,
        register,
        enrol_poses: &enrol_poses,
        enrol_scales: &enrol_scales,
        probe_extra: &probe_extra,
    };
    let mut sets = Vec::new();
    let wanted = |name: &str| {
        only.as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    };
    for (name, kind, sessions) in SETS.into_iter().filter(|(name, ..)| wanted(name)) {
        let folder = data.join(name);
        if folder.is_dir() {
            sets.push(read_set(&folder, name, kind, sessions, &cutting)?);
        } else {
            eprintln!("{name}: not in {}, left out", data.display());
        }
    }
    let same_hand_indices = same_hand_indices(&sets, &same_hands)?;
    let probes_after = probes_after.max(enrolled);
    eprintln!("{enrolled} templates enrolled, probes after the first {probes_after} captures");
    println!(
        "| code | set | EER {enrolled} templates % | FNMR@1e-3 {enrolled} templates % | EER 1 template % | FNMR@1e-3 1 template % |"
    );
    println!("|---|---|---|---|---|---|");
    let mut validation = Vec::new();
    for &family in &families {
        let mut family_trials = Vec::new();
        for (set, same_hand) in sets.iter().zip(&same_hand_indices) {
            let codes: Vec<Vec<Code>> = set
                .cuts
                .iter()
                .map(|cuts| {
                    cuts.iter()
                        .map(|cut| Code::new(cut, family, fragile, vote))
                        .collect()
                })
                .collect();
            let enrol_codes: Vec<Vec<Option<Code>>> = set
                .enrol_cuts
                .iter()
                .map(|cuts| {
                    cuts.iter()
                        .map(|cut| {
                            cut.as_ref()
                                .map(|cut| Code::new(cut, family, fragile, vote))
                        })
                        .collect()
                })
                .collect();
            if station && matches!(family, Family::Competitive) {
                print_station(set, &codes, &variant);
            }
            let rank = capture_ranks(&set.keys);
            let roles = match station_enrol {
                None => EnrolmentRoles::new(set.identities, &set.keys, enrolled, probes_after),
                Some(probes) => {
                    // The station's choice under `--station-profile` (default `balanced`):
                    // captures compared at the pose found.
                    // `--station-compare posed`: the later capture at its kind's poses against
                    // the earlier as found, with the threshold for that many poses (as a gate
                    // holding the earlier capture alone would compare them).
                    let poses = if station_posed {
                        codes.first().map_or(1, Vec::len).max(1)
                    } else {
                        1
                    };
                    let threshold = station_profile.threshold(1, poses).q16();
                    let matches = |a: usize, b: usize| {
                        codes[b]
                            .iter()
                            .take(poses)
                            .map(|probe| probe.distance(&codes[a][0], &variant))
                            .min()
                            .is_some_and(|d| d <= threshold)
                    };
                    let mut roles = EnrolmentRoles::station(
                        set.identities,
                        &set.keys,
                        enrolled,
                        2,
                        station_rule,
                        probes,
                        matches,
                    );
                    if station_spread {
                        let changed = spread_out(
                            &mut roles,
                            &set.keys,
                            enrolled,
                            station_rule,
                            &matches,
                            |a, b| codes[b][0].distance(&codes[a][0], &variant),
                        );
                        eprintln!(
                            "{}: the furthest-apart agreeing three differs from the earliest for {changed} hands",
                            set.name
                        );
                    }
                    eprintln!(
                        "{}: the station refuses {} hands, enrols {} of them from later captures",
                        set.name,
                        roles.refused.len(),
                        roles
                            .references
                            .iter()
                            .filter(|r| r.iter().enumerate().any(|(i, &s)| rank[s] != i))
                            .count()
                    );
                    roles
                }
            };
            let consistent_codes = match consistent {
                Some(rule) => consistent_references(&codes, &roles.references, rule),
                None => Vec::new(),
            };
            // The reference (an identity's `rank`-th capture) at the rank's enrol pose, the
            // first as found; the probe at every pose.
            let raw_distance = |references: usize| {
                let (codes, enrol_codes, rank, variant) = (&codes, &enrol_codes, &rank, &variant);
                let consistent_codes = &consistent_codes;
                move |reference: usize, probe: usize| {
                    let closest = |reference: &Code| {
                        codes[probe]
                            .iter()
                            .map(|probe| probe.distance(reference, variant))
                            .min()
                            .unwrap_or(1 << 16)
                    };
                    // As found (`--consistent`: with the cells that vary left out).
                    let found = consistent_codes
                        .get(reference)
                        .and_then(Option::as_ref)
                        .filter(|_| references > 1)
                        .unwrap_or(&codes[reference][0]);
                    if enrol_extra {
                        // `--enrol-extra`: the capture as found and at its rank's extra pose,
                        // two templates for each enrolled capture.
                        let extra = enrol_codes[reference]
                            .get(rank[reference] % 2)
                            .and_then(Option::as_ref)
                            .filter(|_| references > 1);
                        let found = closest(found);
                        return extra.map_or(found, |extra| found.min(closest(extra)));
                    }
                    let posed = rank[reference]
                        .checked_sub(1)
                        .filter(|_| references > 1)
                        .and_then(|pose| enrol_codes[reference].get(pose)?.as_ref());
                    closest(posed.unwrap_or(found))
                }
            };
            // `--cohort-norm z`: each reference's distances as standard scores against its
            // distances to every capture of the other half of the identities (odd against even
            // index), mapped back to Q16 around the middle (any monotone map serves the EER and
            // the calibration).
            let cohort: Vec<(f64, f64)> = match cohort_norm {
                Some(CohortNorm::Z) => {
                    let raw = raw_distance(1);
                    (0..set.keys.len())
                        .map(|reference| {
                            let parity = set.keys[reference].identity % 2;
                            let distances: Vec<f64> = (0..set.keys.len())
                                .filter(|&k| set.keys[k].identity % 2 != parity)
                                .map(|k| f64::from(raw(reference, k)))
                                .collect();
                            let n = distances.len().max(1) as f64;
                            let mean = distances.iter().sum::<f64>() / n;
                            let variance =
                                distances.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n;
                            (mean, variance.sqrt().max(1.0))
                        })
                        .collect()
                }
                _ => Vec::new(),
            };
            let distance = |references: usize| {
                let (raw, cohort) = (raw_distance(references), &cohort);
                move |reference: usize, probe: usize| {
                    let d = raw(reference, probe);
                    match cohort.get(reference) {
                        Some(&(mean, deviation)) => {
                            let z = (f64::from(d) - mean) / deviation;
                            (32_768.0 + 2_048.0 * z).clamp(0.0, 65_535.0) as u32
                        }
                        None => d,
                    }
                }
            };
            let mut several =
                enrolment_with_roles(set.identities, &set.keys, &roles, distance(enrolled));
            if let (Some(prefix), Family::Competitive) = (&dump, family) {
                dump_set(prefix, set, &roles, distance(enrolled)).map_err(|e| e.to_string())?;
            }
            several.leave_out_same_hands(same_hand);
            if cohort_norm.is_some() {
                // Only impostors of the reference's own half: the other half is its cohort.
                several.impostor.retain(|t| t.probe % 2 == t.reference % 2);
            }
            if closest > 0 {
                let mut impostors = several.impostor.clone();
                impostors.sort_by_key(|t| t.distance);
                for t in impostors.iter().take(closest) {
                    eprintln!(
                        "{}: impostor {} against {}: {:.4}",
                        set.name,
                        set.names[t.probe as usize],
                        set.names[t.reference as usize],
                        f64::from(t.distance) / 65536.0
                    );
                }
            }
            let mut one = enrolment(set.identities, &set.keys, 1, probes_after, distance(1));
            one.leave_out_same_hands(same_hand);
            if cohort_norm.is_some() {
                one.impostor.retain(|t| t.probe % 2 == t.reference % 2);
            }
            let [several_ci, one_ci] = [&several, &one].map(|t| with_confidence(t, 200, 1, 2));
            let has_probes = !several.genuine.is_empty();
            let cell = |f: &palmgate_matcher::eval::protocol::FiguresCi, fnmr: bool| {
                if !has_probes {
                    return "– (no probes)".to_owned();
                }
                let (value, ci) = if fnmr {
                    (f.figures.fnmr_at_fmr[1], f.fnmr_at_fmr_ci95[1])
                } else {
                    (f.figures.eer, f.eer_ci95)
                };
                format!(
                    "{} [{}, {}]",
                    percent(value),
                    percent(ci[0]),
                    percent(ci[1])
                )
            };
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                family.name(),
                set.name,
                cell(&several_ci, false),
                cell(&several_ci, true),
                cell(&one_ci, false),
                cell(&one_ci, true),
            );
            family_trials.push((several, folds(set.identities, 5, 0x5eed)));
        }
        let pairs: Vec<(&Trials, &[usize])> = family_trials
            .iter()
            .map(|(t, f)| (t, f.as_slice()))
            .collect();
        validation.push(validate_calibration(&pairs, 5, &PROFILES));
    }
    println!();
    println!(
        "Profiles calibrated on 4 of 5 identity folds of every set, measured on the 5th ({enrolled} templates; FMR / FNMR %):"
    );
    println!();
    println!("| code | set | convenience (1e-2) | balanced (1e-3) | security (1e-4) |");
    println!("|---|---|---|---|---|");
    for (family, outcomes) in families.iter().zip(&validation) {
        for (set, outcome) in sets.iter().zip(outcomes) {
            let cells: Vec<String> = outcome
                .iter()
                .map(|o| {
                    format!(
                        "{} / {} ({}/{}, {}/{})",
                        percent(o.fmr),
                        percent(o.fnmr),
                        o.false_matches,
                        o.impostors,
                        o.false_non_matches,
                        o.genuine
                    )
                })
                .collect();
            println!(
                "| {} | {} | {} |",
                family.name(),
                set.name,
                cells.join(" | ")
            );
        }
    }
    Ok(())
}
