//! Template comparison shared by the gate and the card.
//!
//! Distance (elastic, applet 1.9): the probe grid is cut into [`REGIONS`] × [`REGIONS`] regions
//! of 12 × 12 cells. For every common grid shift `(dx, dy)` with `|dx|, |dy| ≤ MAX_SHIFT`, each
//! region may move by up to [`REGION_REACH`] cells more on its own, to the shift where it compares
//! best, provided it still compares at least three quarters of the cells it compares at the
//! common shift (ties: the common shift, then the first visited, rows before columns); probe
//! cell `(x, y)` is compared with reference cell `(x + dx', y + dy')` over the cells valid in
//! both. The normalised Hamming distance is `mismatched code bits / (3 · compared cells)` summed
//! over the four regions; the result is the minimum over the common shifts whose compared cells
//! reach [`MIN_OVERLAP_CELLS`]. A palm is not a rigid plate: a hand placed flatter or with the
//! fingers spread moves one part of the palm's lines against another, which one common shift
//! cannot follow (`docs/matcher.md`, "Elastic comparison").
//!
//! Integer arithmetic only; constant time with respect to the templates: every shift and every word
//! is visited, fractions are compared by cross-multiplication and the minimum is selected with
//! branch-free mask arithmetic.

use core::fmt;

use subtle::{Choice, ConditionallySelectable, ConstantTimeGreater, ConstantTimeLess};

use crate::template::{CELLS, CODE_BITS, GRID, ROW_MASK, Template, WORDS};

/// Largest common shift in cells, in x and in y: 5 × 5 = 25 positions.
pub const MAX_SHIFT: i32 = 2;

/// Regions of the probe on a side, each moved on its own: 2 × 2 regions of 12 × 12 cells.
pub const REGIONS: usize = 2;

/// How far a region may move on its own beyond the common shift, in cells (3 × 3 positions).
pub const REGION_REACH: i32 = 1;

/// Largest shift any region is compared at: the table of region counts spans 7 × 7 shifts.
const REACH: i32 = MAX_SHIFT + REGION_REACH;

/// Shifts on a side of the table of region counts.
const TABLE_SIDE: usize = (2 * REACH + 1) as usize;

/// Smallest number of cells valid in both templates (at the chosen shift) for a decision: half the
/// grid. Fewer cells widen the impostor distribution (its spread grows as `1/√cells`), so a
/// threshold calibrated on full templates would no longer hold its false-match rate.
pub const MIN_OVERLAP_CELLS: u16 = (CELLS / 2) as u16;

/// One in Q16 fixed point.
const Q16_ONE: u32 = 1 << 16;

/// A decision threshold on the normalised distance, in Q16 fixed point (`65536` = 1.0).
/// A comparison matches when its distance is at most the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Threshold(u32);

impl Threshold {
    /// Default threshold, calibrated at FMR ≤ 1e-3 with exactly ±[`MAX_SHIFT`] cells (see
    /// `docs/matcher.md` for the evaluation behind the number).
    pub const DEFAULT: Threshold = Threshold(25_231);

    /// A threshold of `q16 / 65536`.
    pub const fn from_q16(q16: u32) -> Threshold {
        Threshold(q16)
    }

    /// The threshold in Q16 fixed point.
    pub const fn q16(self) -> u32 {
        self.0
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why two templates were not compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompareError {
    /// The templates were made by different algorithms: their codes mean different things.
    AlgorithmMismatch {
        /// Algorithm of the probe.
        probe: u8,
        /// Algorithm of the reference.
        reference: u8,
    },
}

impl fmt::Display for CompareError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AlgorithmMismatch { probe, reference } => write!(
                f,
                "templates of different algorithms are not compared (probe {probe:#04x}, reference {reference:#04x})"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CompareError {}

/// Result of a comparison: the best (smallest) distance over the shifts and its overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    mismatched_bits: u32,
    compared_bits: u32,
    overlap_cells: u16,
}

impl Comparison {
    /// Normalised Hamming distance × 65536 at the best shift (`65536` when no shift had enough
    /// overlap). Computed without a data-dependent division.
    pub fn distance_q16(&self) -> u32 {
        ct_fraction_q16(self.mismatched_bits, self.compared_bits)
    }

    /// Cells valid in both templates at the best shift (when no shift reached
    /// [`MIN_OVERLAP_CELLS`], the largest overlap seen).
    pub fn overlap_cells(&self) -> u16 {
        self.overlap_cells
    }

    /// Mismatched code bits at the best shift.
    pub fn mismatched_bits(&self) -> u32 {
        self.mismatched_bits
    }

    /// Code bits compared at the best shift (`3 × overlap`).
    pub fn compared_bits(&self) -> u32 {
        self.compared_bits
    }

    /// Whether the templates match: enough overlap and a distance at most `threshold`
    /// (`mismatched / compared ≤ threshold / 65536`, decided by cross-multiplication).
    pub fn is_match(&self, threshold: Threshold) -> bool {
        let enough = !self.overlap_cells.ct_lt(&MIN_OVERLAP_CELLS);
        let lhs = u64::from(self.mismatched_bits) << 16;
        let rhs = u64::from(threshold.0) * u64::from(self.compared_bits);
        let close = !lhs.ct_gt(&rhs);
        bool::from(enough & close)
    }
}

/// `floor(num · 65536 / den)` for `num ≤ den`, by a fixed 17-step restoring division (`65536` when
/// `den` is 0).
fn ct_fraction_q16(num: u32, den: u32) -> u32 {
    let den_zero = den.ct_eq_zero();
    let den = u64::from(u32::conditional_select(&den, &1, den_zero));
    let num = u64::from(u32::conditional_select(&num, &1, den_zero));
    let mut remainder = 0u64;
    let mut quotient = 0u32;
    // Bits of num << 16, most significant first; num ≤ 1728 < 2^17 is far below 2^33.
    let dividend = num << 16;
    for bit in (0..33).rev() {
        remainder = (remainder << 1) | ((dividend >> bit) & 1);
        let fits = !remainder.ct_lt(&den);
        remainder = u64::conditional_select(&remainder, &remainder.wrapping_sub(den), fits);
        quotient = (quotient << 1) | u32::from(fits.unwrap_u8());
    }
    u32::conditional_select(&quotient, &Q16_ONE, den_zero)
}

trait CtZero {
    fn ct_eq_zero(&self) -> Choice;
}

impl CtZero for u32 {
    fn ct_eq_zero(&self) -> Choice {
        subtle::ConstantTimeEq::ct_eq(self, &0)
    }
}

/// Number of rows of padding on each side of the reference rows, so every y-shift reads in range.
const PAD: usize = REACH as usize;

/// The reference planes re-packed for one y-shift: word `k` holds reference rows `2k + dy` and
/// `2k + 1 + dy` (zero outside the grid).
fn shifted_rows(
    planes: &[[u64; WORDS]; CODE_BITS + 1],
    dy: usize,
) -> [[u64; WORDS]; CODE_BITS + 1] {
    let mut out = [[0u64; WORDS]; CODE_BITS + 1];
    for (plane, out_plane) in planes.iter().zip(out.iter_mut()) {
        let mut rows = [0u64; GRID + 2 * PAD];
        for y in 0..GRID {
            rows[y + PAD] = (plane[y / 2] >> ((y % 2) * 32)) & ROW_MASK;
        }
        for (k, word) in out_plane.iter_mut().enumerate() {
            *word = rows[2 * k + dy] | (rows[2 * k + 1 + dy] << 32);
        }
    }
    out
}

/// Shifts both row lanes of a word so that reference cell `x + dx` lines up with probe cell `x`.
/// Bits that leave a lane land in the 8 padding bits between lanes or fall off the word; they are
/// cleared by the probe mask (whose padding is zero).
#[inline(always)]
fn shift_x(word: u64, dx: i32) -> u64 {
    if dx >= 0 { word >> dx } else { word << (-dx) }
}

/// Bitwise full adder: per bit position, `a + b + c` as `(sum, carry)`.
#[inline(always)]
fn full_add(a: u64, b: u64, c: u64) -> (u64, u64) {
    let u = a ^ b;
    (u ^ c, (a & b) | (u & c))
}

/// The cells of one region of the probe in a word of two rows: the left region holds cells
/// 0–11 of each row, the right one cells 12–23 (the top regions are words 0–5, rows 0–11).
const REGION_COLUMNS: [u64; REGIONS] = [0x0000_0FFF_0000_0FFF, 0x00FF_F000_00FF_F000];

/// Words of one region's rows (12 rows, two a word).
const REGION_WORDS: usize = WORDS / REGIONS;

// `count_region` sums six words and `REGION_COLUMNS` holds two regions of twelve columns.
const _: () = assert!(REGIONS == 2 && REGION_WORDS == 6);

/// Cells compared and code bits mismatched in one region at one shift.
#[derive(Debug, Clone, Copy, Default)]
struct RegionCount {
    compared: u32,
    mismatched: u32,
}

/// Per-nibble set-bit counts of `x` (each nibble 0–4): the first two steps of a SWAR popcount.
/// A region's twelve columns are three whole nibbles of a row, so the left and right regions
/// share these counts and are told apart by masking nibbles: the target has no popcount
/// instruction by default, and 36 software popcounts a shift cost more than the rest.
#[inline(always)]
fn nibble_counts(x: u64) -> u64 {
    let pairs = x - ((x >> 1) & 0x5555_5555_5555_5555);
    (pairs & 0x3333_3333_3333_3333) + ((pairs >> 2) & 0x3333_3333_3333_3333)
}

/// The set bits of one region's six words within `columns`, from their nibble counts: three
/// words' counts add within a nibble (at most 12), the two sums widen to bytes (at most 48) and
/// the bytes add by one multiplication (at most 144 < 256, so the top byte holds the total).
#[inline(always)]
fn count_region(nibbles: &[u64], columns: u64) -> u32 {
    const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let widen = |x: u64| (x & LOW_NIBBLES) + ((x >> 4) & LOW_NIBBLES);
    let first = (nibbles[0] + nibbles[1] + nibbles[2]) & columns;
    let second = (nibbles[3] + nibbles[4] + nibbles[5]) & columns;
    ((widen(first) + widen(second)).wrapping_mul(0x0101_0101_0101_0101) >> 56) as u32
}

/// Each region's counts at shift `dx` of the reference rows `r` (already moved by the y-shift).
#[inline(always)]
fn region_counts(
    probe: &[[u64; WORDS]; CODE_BITS + 1],
    r: &[[u64; WORDS]; CODE_BITS + 1],
    dx: i32,
) -> [RegionCount; REGIONS * REGIONS] {
    let [p0, p1, p2, pm] = probe;
    let [r0, r1, r2, rm] = r;
    // Per word, the nibble counts of the full adder's sum bits (an odd mismatch, 1 or 3), of its
    // carry bits (2 or 3, counted twice below) and of the cells compared.
    let mut ones = [0u64; WORDS];
    let mut twos = [0u64; WORDS];
    let mut both = [0u64; WORDS];
    for w in 0..WORDS {
        let m = pm[w] & shift_x(rm[w], dx);
        let x0 = p0[w] ^ shift_x(r0[w], dx);
        let x1 = p1[w] ^ shift_x(r1[w], dx);
        let x2 = p2[w] ^ shift_x(r2[w], dx);
        // Per cell, the mismatch count x0 + x1 + x2 (0–3) as two bit planes (full adder).
        let (sum, carry) = full_add(x0, x1, x2);
        ones[w] = nibble_counts(sum & m);
        twos[w] = nibble_counts(carry & m);
        both[w] = nibble_counts(m);
    }
    let mut counts = [RegionCount::default(); REGIONS * REGIONS];
    for (region, count) in counts.iter_mut().enumerate() {
        let words = (region / REGIONS) * REGION_WORDS..(region / REGIONS + 1) * REGION_WORDS;
        let columns = REGION_COLUMNS[region % REGIONS];
        *count = RegionCount {
            compared: count_region(&both[words.clone()], columns),
            mismatched: count_region(&ones[words.clone()], columns)
                + 2 * count_region(&twos[words], columns),
        };
    }
    counts
}

/// Compares a probe with a reference: the minimum masked normalised Hamming distance over the
/// ±[`MAX_SHIFT`] common shifts, each region of the probe at its best shift within
/// ±[`REGION_REACH`] of the common one, with at least [`MIN_OVERLAP_CELLS`] cells compared.
pub fn compare(probe: &Template, reference: &Template) -> Result<Comparison, CompareError> {
    if probe.algorithm() != reference.algorithm() {
        return Err(CompareError::AlgorithmMismatch {
            probe: probe.algorithm(),
            reference: reference.algorithm(),
        });
    }
    // Every region's counts at every shift a region can take.
    let mut table = [[RegionCount::default(); REGIONS * REGIONS]; TABLE_SIDE * TABLE_SIDE];
    for dy in -REACH..=REACH {
        // dy + REACH is in 0..=2·PAD: public loop index.
        let rows = shifted_rows(&reference.planes, (dy + REACH) as usize);
        for dx in -REACH..=REACH {
            table[(dy + REACH) as usize * TABLE_SIDE + (dx + REACH) as usize] =
                region_counts(&probe.planes, &rows, dx);
        }
    }
    let at = |dx: i32, dy: i32| &table[(dy + REACH) as usize * TABLE_SIDE + (dx + REACH) as usize];
    // Start above any real distance (2/1), so the first eligible shift always wins.
    let mut best_num = 2u32;
    let mut best_den = 1u32;
    let mut best_overlap = 0u32;
    let mut max_overlap = 0u32;
    for dy in -MAX_SHIFT..=MAX_SHIFT {
        for dx in -MAX_SHIFT..=MAX_SHIFT {
            let (mut overlap, mut mismatched) = (0u32, 0u32);
            for region in 0..REGIONS * REGIONS {
                let own = at(dx, dy)[region];
                let (mut cells, mut bits) = (own.compared, own.mismatched);
                for oy in -REGION_REACH..=REGION_REACH {
                    for ox in -REGION_REACH..=REGION_REACH {
                        let other = at(dx + ox, dy + oy)[region];
                        // Enough cells: 4·other ≥ 3·own; closer: other's bits/cells < bits/cells
                        // (cross-multiplied; a region with no cells keeps its 0/0 and moves
                        // nowhere). Both sides are at most 432 bits · 144 cells.
                        let enough = !lt_mask(4 * other.compared, 3 * own.compared);
                        let closer = lt_mask(
                            other.mismatched * select(lt_mask(cells, 1), 1, cells),
                            bits * other.compared,
                        );
                        let take = enough & closer;
                        cells = select(take, other.compared, cells);
                        bits = select(take, other.mismatched, bits);
                    }
                }
                overlap += cells;
                mismatched += bits;
            }
            let compared = 3 * overlap;
            let eligible = !lt_mask(overlap, u32::from(MIN_OVERLAP_CELLS));
            let num = select(eligible, mismatched, 2);
            let den = select(eligible, compared, 1);
            // num/den < best_num/best_den by cross-multiplication; both sides ≤ 1728 · 1728.
            let better = lt_mask(num * best_den, best_num * den);
            best_num = select(better, num, best_num);
            best_den = select(better, den, best_den);
            best_overlap = select(better, overlap, best_overlap);
            max_overlap = select(lt_mask(max_overlap, overlap), overlap, max_overlap);
        }
    }
    let none_eligible = lt_mask(best_den, best_num);
    Ok(Comparison {
        mismatched_bits: select(none_eligible, 0, best_num),
        compared_bits: select(none_eligible, 0, best_den),
        // Overlaps are at most 576 cells.
        overlap_cells: select(none_eligible, max_overlap, best_overlap) as u16,
    })
}

/// Compares a probe with every template enrolled for one hand and keeps the closest (the
/// smallest distance; on ties the first). Every reference is compared, whatever the earlier
/// results: the time depends only on how many there are. No reference gives a comparison that
/// never matches (no overlap). Thresholds for `n` references: `Profile::threshold(n, 1)`.
pub fn compare_enrolled(
    probe: &Template,
    references: &[Template],
) -> Result<Comparison, CompareError> {
    compare_posed(core::slice::from_ref(probe), references)
}

/// Most poses of one probe the card compares (the gate cuts the probe's ROI at the pose found,
/// turned by ±5° and, for a sensor's own ROI, slid sideways: `palmgate_matcher::extract::PROBE_POSES`).
pub const MAX_PROBE_POSES: usize = 5;

/// Compares every pose of one probe with every template enrolled for one hand and keeps the
/// closest pair (on ties the first: probes in order, references in order within a probe). Every
/// pair is compared whatever the earlier results. Thresholds for `n` references and `k` poses:
/// `Profile::threshold(n, k)` (a minimum over more pairs lowers impostor distances too).
pub fn compare_posed(
    probes: &[Template],
    references: &[Template],
) -> Result<Comparison, CompareError> {
    let mut best = Comparison {
        mismatched_bits: 0,
        compared_bits: 0,
        overlap_cells: 0,
    };
    // A comparison without an eligible shift (compared 0) ranks as distance 1, after any real one.
    let rank = |c: &Comparison| {
        let none = lt_mask(c.compared_bits, 1);
        (
            select(none, 1, c.mismatched_bits),
            select(none, 1, c.compared_bits),
        )
    };
    // Above any real distance, so the first pair always wins.
    let (mut best_num, mut best_den) = (2u32, 1u32);
    for probe in probes {
        for reference in references {
            let c = compare(probe, reference)?;
            let (num, den) = rank(&c);
            let better = lt_mask(num * best_den, best_num * den);
            best_num = select(better, num, best_num);
            best_den = select(better, den, best_den);
            best = Comparison {
                mismatched_bits: select(better, c.mismatched_bits, best.mismatched_bits),
                compared_bits: select(better, c.compared_bits, best.compared_bits),
                overlap_cells: select(
                    better,
                    u32::from(c.overlap_cells),
                    u32::from(best.overlap_cells),
                ) as u16,
            };
        }
    }
    Ok(best)
}

/// All ones when `a < b`, else zero, without a branch (both are far below 2^32, so the borrow of
/// the 64-bit subtraction is the answer).
#[inline(always)]
fn lt_mask(a: u32, b: u32) -> u32 {
    let borrow = (u64::from(a).wrapping_sub(u64::from(b)) >> 63) as u32;
    0u32.wrapping_sub(borrow)
}

/// `if_true` where `mask` is all ones, `if_false` where it is zero.
#[inline(always)]
fn select(mask: u32, if_true: u32, if_false: u32) -> u32 {
    (if_true & mask) | (if_false & !mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::{ALGORITHM_COMPCODE_V1, ENCODED_LEN, HEADER_LEN};

    /// (Cells compared, code bits mismatched) of the probe's cells in `rows` × `columns` at shift
    /// `(dx, dy)`, cell by cell.
    fn cells_compared(
        probe: &Template,
        reference: &Template,
        rows: core::ops::Range<usize>,
        columns: core::ops::Range<usize>,
        dx: i32,
        dy: i32,
    ) -> (u32, u32) {
        let (mut compared, mut mismatched) = (0u32, 0u32);
        for y in rows {
            for x in columns.clone() {
                let (rx, ry) = (x as i32 + dx, y as i32 + dy);
                if !(0..GRID as i32).contains(&rx) || !(0..GRID as i32).contains(&ry) {
                    continue;
                }
                let (Some(a), Some(b)) = (
                    probe.orientation(x, y),
                    reference.orientation(rx as usize, ry as usize),
                ) else {
                    continue;
                };
                let diff = a.abs_diff(b);
                mismatched += u32::from(diff.min(6 - diff));
                compared += 1;
            }
        }
        (compared, mismatched)
    }

    /// Naive per-cell reference implementation (floating point for the distance, branches, early
    /// outs): the elastic rule written plainly.
    fn naive(probe: &Template, reference: &Template) -> (f64, u32, u16) {
        const SIDE: usize = GRID / REGIONS;
        // (compared cells, mismatched bits) of one region at one shift.
        let region = |r: usize, dx: i32, dy: i32| {
            let rows = (r / REGIONS) * SIDE..(r / REGIONS + 1) * SIDE;
            let columns = (r % REGIONS) * SIDE..(r % REGIONS + 1) * SIDE;
            cells_compared(probe, reference, rows, columns, dx, dy)
        };
        let mut best: Option<(f64, u32, u16)> = None;
        let mut max_overlap = 0u16;
        for dy in -MAX_SHIFT..=MAX_SHIFT {
            for dx in -MAX_SHIFT..=MAX_SHIFT {
                let (mut overlap, mut mismatched) = (0u32, 0u32);
                for r in 0..REGIONS * REGIONS {
                    let own = region(r, dx, dy);
                    let mut chosen = own;
                    for oy in -REGION_REACH..=REGION_REACH {
                        for ox in -REGION_REACH..=REGION_REACH {
                            let other = region(r, dx + ox, dy + oy);
                            if chosen.0 == 0 || 4 * other.0 < 3 * own.0 {
                                continue;
                            }
                            let ratio = |(c, m): (u32, u32)| f64::from(m) / f64::from(c);
                            if other.0 > 0 && ratio(other) < ratio(chosen) {
                                chosen = other;
                            }
                        }
                    }
                    overlap += chosen.0;
                    mismatched += chosen.1;
                }
                let overlap = overlap as u16;
                max_overlap = max_overlap.max(overlap);
                if overlap < MIN_OVERLAP_CELLS {
                    continue;
                }
                let d = f64::from(mismatched) / (3.0 * f64::from(overlap));
                if best.is_none_or(|(bd, _, _)| d < bd) {
                    best = Some((d, mismatched, overlap));
                }
            }
        }
        best.unwrap_or((1.0, 0, max_overlap))
    }

    fn template_from(seed: u64, valid_fraction_per_mille: u64) -> Template {
        let mut state = seed | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut orientations = [0u8; CELLS];
        let mut valid = [false; CELLS];
        for i in 0..CELLS {
            orientations[i] = (next() % 6) as u8;
            valid[i] = next() % 1000 < valid_fraction_per_mille;
        }
        Template::from_cells(&orientations, &valid).unwrap()
    }

    #[test]
    fn identical_templates_have_zero_distance() {
        let t = template_from(7, 1000);
        let c = compare(&t, &t).unwrap();
        assert_eq!(c.distance_q16(), 0);
        assert_eq!(c.overlap_cells(), 576);
        assert!(c.is_match(Threshold::from_q16(0)));
    }

    #[test]
    fn shifted_copy_is_found() {
        // Reference = probe moved by (+2, -1) cells.
        let mut o = [0u8; CELLS];
        let mut v = [false; CELLS];
        let probe = template_from(99, 1000);
        for y in 0..GRID {
            for x in 0..GRID {
                let (px, py) = (x as i32 - 2, y as i32 + 1);
                if (0..GRID as i32).contains(&px)
                    && (0..GRID as i32).contains(&py)
                    && let Some(orientation) = probe.orientation(px as usize, py as usize)
                {
                    o[y * GRID + x] = orientation;
                    v[y * GRID + x] = true;
                }
            }
        }
        let reference = Template::from_cells(&o, &v).unwrap();
        let c = compare(&probe, &reference).unwrap();
        assert_eq!(c.distance_q16(), 0);
        assert_eq!(c.overlap_cells(), 22 * 23);
    }

    #[test]
    fn a_region_moved_on_its_own_is_followed() {
        // Reference = probe with its top half moved one cell further right than its bottom half
        // (a palm that is not a rigid plate): no common shift lines up both halves, each region
        // on its own shift does.
        let probe = template_from(41, 1000);
        let mut o = [0u8; CELLS];
        let mut v = [false; CELLS];
        for y in 0..GRID {
            let moved = if y < GRID / 2 { 1 } else { 0 };
            for x in 0..GRID {
                if let Some(orientation) =
                    x.checked_sub(moved).and_then(|px| probe.orientation(px, y))
                {
                    o[y * GRID + x] = orientation;
                    v[y * GRID + x] = true;
                }
            }
        }
        let reference = Template::from_cells(&o, &v).unwrap();
        let c = compare(&probe, &reference).unwrap();
        assert_eq!(c.distance_q16(), 0);
        // One common shift for both halves leaves half the grid at a random template's distance.
        let rigid = naive_rigid(&probe, &reference);
        assert!(rigid > 0.2, "{rigid}");
    }

    /// The distance of one common shift for every cell (the comparison before applet 1.9).
    fn naive_rigid(probe: &Template, reference: &Template) -> f64 {
        let mut best = 1f64;
        for dy in -MAX_SHIFT..=MAX_SHIFT {
            for dx in -MAX_SHIFT..=MAX_SHIFT {
                let (compared, mismatched) =
                    cells_compared(probe, reference, 0..GRID, 0..GRID, dx, dy);
                if compared >= u32::from(MIN_OVERLAP_CELLS) {
                    best = best.min(f64::from(mismatched) / (3.0 * f64::from(compared)));
                }
            }
        }
        best
    }

    #[test]
    fn opposite_orientations_have_distance_one() {
        let a = Template::from_cells(&[0; CELLS], &[true; CELLS]).unwrap();
        let b = Template::from_cells(&[3; CELLS], &[true; CELLS]).unwrap();
        let c = compare(&a, &b).unwrap();
        assert_eq!(c.distance_q16(), 65536);
        // Every shift ties at 1.0: the first one visited, (dx, dy) = (-2, -2), is kept.
        assert_eq!(
            (c.mismatched_bits(), c.overlap_cells()),
            (3 * 22 * 22, 22 * 22)
        );
        // Neighbouring orientation everywhere: one bit in three.
        let d = Template::from_cells(&[1; CELLS], &[true; CELLS]).unwrap();
        let c = compare(&a, &d).unwrap();
        assert_eq!(c.distance_q16(), 65536 / 3);
        assert!(c.is_match(Threshold::from_q16(65536 / 3 + 1)));
        assert!(!c.is_match(Threshold::from_q16(65536 / 3 - 1)));
    }

    #[test]
    fn too_little_overlap_never_matches() {
        let a = template_from(1, 1000);
        let mut valid = [false; CELLS];
        valid[..200].fill(true);
        let mut o = [0u8; CELLS];
        for (i, slot) in o.iter_mut().enumerate() {
            *slot = a.orientation(i % GRID, i / GRID).unwrap();
        }
        let b = Template::from_cells(&o, &valid).unwrap();
        let c = compare(&a, &b).unwrap();
        assert_eq!(c.overlap_cells(), 200);
        assert_eq!(c.distance_q16(), 65536);
        assert!(!c.is_match(Threshold::from_q16(65536)));
        let empty = Template::from_cells(&[0; CELLS], &[false; CELLS]).unwrap();
        let c = compare(&empty, &empty).unwrap();
        assert_eq!((c.overlap_cells(), c.distance_q16()), (0, 65536));
        assert!(!c.is_match(Threshold::from_q16(u32::MAX)));
    }

    #[test]
    fn enrolled_templates_give_the_closest_comparison() {
        let probe = template_from(11, 950);
        let far = template_from(12, 950);
        let near = probe.clone();
        let c = compare_enrolled(&probe, &[far.clone(), near.clone(), far.clone()])
            .expect("same algorithm");
        assert_eq!(c.distance_q16(), 0);
        assert_eq!(c, compare(&probe, &near).expect("same algorithm"));
        let only_far =
            compare_enrolled(&probe, core::slice::from_ref(&far)).expect("same algorithm");
        assert_eq!(only_far, compare(&probe, &far).expect("same algorithm"));
        assert!(only_far.distance_q16() > 0);
        let none = compare_enrolled(&probe, &[]).expect("nothing to refuse");
        assert_eq!(none.distance_q16(), 65536);
        assert!(!none.is_match(Threshold::from_q16(u32::MAX)));
    }

    #[test]
    fn posed_probes_give_the_closest_pair_over_every_pose_and_reference() {
        let near = template_from(31, 950);
        let far = template_from(33, 950);
        let other = template_from(35, 950);
        let reference = near.clone();
        let posed = compare_posed(&[far.clone(), near.clone()], &[other.clone(), reference])
            .expect("same algorithm");
        assert_eq!(posed.distance_q16(), 0);
        let without_the_near_pose =
            compare_posed(core::slice::from_ref(&far), &[other.clone(), near.clone()])
                .expect("same algorithm");
        let closest = [
            compare(&far, &other).expect("same algorithm"),
            compare(&far, &near).expect("same algorithm"),
        ]
        .into_iter()
        .min_by_key(|c| c.distance_q16())
        .expect("two comparisons");
        assert_eq!(without_the_near_pose.distance_q16(), closest.distance_q16());
        assert!(without_the_near_pose.distance_q16() > 0);
        let none = compare_posed(&[], core::slice::from_ref(&near)).expect("nothing to refuse");
        assert_eq!(none.distance_q16(), 65536);
        assert!(!none.is_match(Threshold::from_q16(u32::MAX)));
    }

    #[test]
    fn algorithm_mismatch_is_refused() {
        let a = template_from(3, 1000);
        let mut other = a.clone();
        other.set_algorithm_for_test(0x02);
        assert_eq!(
            compare(&a, &other).unwrap_err(),
            CompareError::AlgorithmMismatch {
                probe: ALGORITHM_COMPCODE_V1,
                reference: 0x02
            }
        );
    }

    #[test]
    fn byte_vector_comparison() {
        // Probe: every cell valid, orientation 0 (all code bits zero). Reference: every cell valid,
        // row 0 orientation 1 (code 001), the rest orientation 0. Only a region shifted by dy ≥ 1
        // keeps row 0 of the reference out of what it compares: the first common shift with a
        // distance of zero is (dx, dy) = (-2, 0), where both top regions move down a row. The
        // top-left one moves to (-3, 1) (the first of its neighbours visited with a smaller
        // distance, and 9 · 12 cells ≥ ¾ of its 10 · 12), the top-right one to (-3, 1) too
        // (12 · 12 cells); the bottom regions stay at (-2, 0) with nothing closer than zero:
        // 108 + 144 + 120 + 144 cells.
        let mut probe = [0u8; ENCODED_LEN];
        probe[..HEADER_LEN].copy_from_slice(&[1, 1, 0, 0]);
        probe[HEADER_LEN + 216..].fill(0xff);
        let mut reference = probe;
        reference[HEADER_LEN..HEADER_LEN + 3].fill(0xff);
        let probe = Template::decode(&probe).unwrap();
        let reference = Template::decode(&reference).unwrap();
        let c = compare(&probe, &reference).unwrap();
        assert_eq!(
            (c.mismatched_bits(), c.overlap_cells()),
            (0, 108 + 144 + 120 + 144)
        );
        assert_eq!(c.distance_q16(), 0);
        // Against itself the first common shift at zero is (-2, -1): both top regions move down a
        // row to (-3, 0), the first neighbour visited at zero (9 · 12 and 12 · 12 cells); the
        // bottom ones stay, already at zero (10 · 12 and 12 · 12).
        let c = compare(&reference, &reference).unwrap();
        assert_eq!(
            (c.mismatched_bits(), c.overlap_cells()),
            (0, 108 + 144 + 120 + 144)
        );
    }

    #[test]
    fn fraction_matches_division() {
        for den in [0u32, 1, 3, 7, 864, 1727, 1728] {
            for num in [0u32, 1, 2, 5, 500, 863, 1727, 1728] {
                if num > den {
                    continue;
                }
                let expected = if den == 0 {
                    65536
                } else {
                    (u64::from(num) << 16) / u64::from(den)
                };
                assert_eq!(
                    u64::from(ct_fraction_q16(num, den)),
                    expected,
                    "{num}/{den}"
                );
            }
        }
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn arbitrary_template() -> impl Strategy<Value = Template> {
            (
                proptest::collection::vec(0u8..6, CELLS),
                // Validity: mostly full, sometimes sparse, so the overlap rule is exercised.
                prop_oneof![Just(1000u32), 0u32..1000],
                proptest::collection::vec(0u32..1000, CELLS),
            )
                .prop_map(|(o, fraction, rolls)| {
                    let o: [u8; CELLS] = o.try_into().unwrap();
                    let mut v = [false; CELLS];
                    for (slot, roll) in v.iter_mut().zip(rolls) {
                        *slot = roll < fraction;
                    }
                    Template::from_cells(&o, &v).unwrap()
                })
        }

        /// A reference made from the probe: moved by a shift, with some cells changed.
        fn related_pair() -> impl Strategy<Value = (Template, Template)> {
            (
                arbitrary_template(),
                -3i32..=3,
                -3i32..=3,
                proptest::collection::vec(0u8..12, CELLS),
            )
                .prop_map(|(probe, dx, dy, noise)| {
                    let mut o = [0u8; CELLS];
                    let mut v = [false; CELLS];
                    for y in 0..GRID as i32 {
                        for x in 0..GRID as i32 {
                            let (px, py) = (x - dx, y - dy);
                            if !(0..GRID as i32).contains(&px) || !(0..GRID as i32).contains(&py) {
                                continue;
                            }
                            if let Some(orientation) = probe.orientation(px as usize, py as usize) {
                                let i = (y * GRID as i32 + x) as usize;
                                let n = noise[i];
                                o[i] = if n < 6 { n } else { orientation };
                                v[i] = true;
                            }
                        }
                    }
                    let reference = Template::from_cells(&o, &v).unwrap();
                    (probe, reference)
                })
        }

        fn check(probe: &Template, reference: &Template) -> Result<(), TestCaseError> {
            let c = compare(probe, reference).unwrap();
            let (d, mismatched, overlap) = naive(probe, reference);
            prop_assert_eq!(c.overlap_cells(), overlap);
            if overlap >= MIN_OVERLAP_CELLS {
                prop_assert_eq!(c.mismatched_bits(), mismatched);
                prop_assert_eq!(c.compared_bits(), 3 * u32::from(overlap));
            }
            let expected_q16 = if overlap >= MIN_OVERLAP_CELLS {
                (u64::from(mismatched) << 16) / (3 * u64::from(overlap))
            } else {
                65536
            };
            prop_assert_eq!(u64::from(c.distance_q16()), expected_q16);
            prop_assert!((f64::from(c.distance_q16()) / 65536.0 - d).abs() < 1e-4);
            for q16 in [0u32, 20_000, 26_214, 30_000, 65_536] {
                let expected = overlap >= MIN_OVERLAP_CELLS
                    && u64::from(mismatched) * 65536 <= u64::from(q16) * 3 * u64::from(overlap);
                prop_assert_eq!(c.is_match(Threshold::from_q16(q16)), expected);
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn random_pairs_match_naive(probe in arbitrary_template(), reference in arbitrary_template()) {
                check(&probe, &reference)?;
            }

            #[test]
            fn related_pairs_match_naive((probe, reference) in related_pair()) {
                check(&probe, &reference)?;
            }

            #[test]
            fn encode_decode_round_trips(t in arbitrary_template()) {
                let bytes = t.encode();
                let back = Template::decode(&bytes).unwrap();
                prop_assert_eq!(back.encode(), bytes);
            }

            #[test]
            fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                let _ = Template::decode(&bytes);
            }
        }
    }
}
