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

/// Where a row starts in its 32-bit lane while the table is counted: four bits up, so the left
/// region (cells 0–11) fills the lane's low two bytes and the right region (cells 12–23) its
/// high two. Byte counts then never mix the two regions and need no masking; shifts of up to
/// [`REACH`] cells keep every bit in its lane, and bits moved into the lane's padding are
/// cleared by the probe mask (zero there).
const ROW_OFFSET: u32 = 4;

// A row moved by ROW_OFFSET and shifted by REACH either way stays inside its 32-bit lane.
const _: () = assert!(ROW_OFFSET >= REACH as u32 && ROW_OFFSET + GRID as u32 + REACH as u32 <= 32);

/// The probe planes with each row at [`ROW_OFFSET`] in its lane.
fn offset_rows(planes: &[[u64; WORDS]; CODE_BITS + 1]) -> [[u64; WORDS]; CODE_BITS + 1] {
    let mut out = *planes;
    for word in out.iter_mut().flatten() {
        *word <<= ROW_OFFSET;
    }
    out
}

/// Words of a reference plane packed for every y-shift: [`PAD`] empty rows above and below the
/// grid, rows at [`ROW_OFFSET`], packed two to a word starting at an even row (parity 0) and at
/// an odd row (parity 1). The rows of shift `dy` (0 ..= 2 · PAD, the padded row index of the
/// first row compared) are the [`WORDS`] words of parity `dy % 2` from word `dy / 2`: no
/// re-packing per shift.
type PackedRows = [[[u64; WORDS + PAD]; CODE_BITS + 1]; 2];

/// The reference planes packed as [`PackedRows`].
fn packed_rows(planes: &[[u64; WORDS]; CODE_BITS + 1]) -> PackedRows {
    // One more empty row than the padding needs, so the odd packing's last word reads in range.
    let mut padded = [[0u64; GRID + 2 * PAD + 1]; CODE_BITS + 1];
    for (plane, rows) in planes.iter().zip(padded.iter_mut()) {
        for y in 0..GRID {
            rows[y + PAD] = ((plane[y / 2] >> ((y % 2) * 32)) & ROW_MASK) << ROW_OFFSET;
        }
    }
    let mut out = [[[0u64; WORDS + PAD]; CODE_BITS + 1]; 2];
    for (parity, packed) in out.iter_mut().enumerate() {
        for (rows, words) in padded.iter().zip(packed.iter_mut()) {
            for (j, word) in words.iter_mut().enumerate() {
                *word = rows[2 * j + parity] | (rows[2 * j + 1 + parity] << 32);
            }
        }
    }
    out
}

/// Shifts both row lanes of a word so that reference cell `x + dx` lines up with probe cell `x`.
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

/// Words of one region's rows (12 rows, two a word).
const REGION_WORDS: usize = WORDS / REGIONS;

// `count_regions` sums a half's six words, and ROW_OFFSET puts the two regions' twelve columns
// in a lane's two 16-bit halves.
const _: () = assert!(REGIONS == 2 && REGION_WORDS == 6 && GRID == 24);

/// Per-nibble set-bit counts of `x` (each nibble 0–4): the first two steps of a SWAR popcount.
/// The target has no popcount instruction by default; counted this way, a half's words add up
/// in bytes and its two regions are told apart by byte position.
#[inline(always)]
fn nibble_counts(x: u64) -> u64 {
    let pairs = x - ((x >> 1) & 0x5555_5555_5555_5555);
    (pairs & 0x3333_3333_3333_3333) + ((pairs >> 2) & 0x3333_3333_3333_3333)
}

/// Nibble counts widened to byte counts (each byte the sum of its two nibbles).
#[inline(always)]
fn widen(nibbles: u64) -> u64 {
    const LOW_NIBBLES: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    (nibbles & LOW_NIBBLES) + ((nibbles >> 4) & LOW_NIBBLES)
}

/// The left and right regions' totals of a half's byte counts, in the low and high 16 bits:
/// the two bytes of each region in a row add into 16-bit lanes (at most 2 · 144), then the
/// word's two rows add (at most 432 bits a region).
#[inline(always)]
fn region_totals(bytes: u64) -> u32 {
    const LOW_BYTES: u64 = 0x00FF_00FF_00FF_00FF;
    let lanes = (bytes & LOW_BYTES) + ((bytes >> 8) & LOW_BYTES);
    (lanes + (lanes >> 32)) as u32
}

/// Cells compared and code bits mismatched by each region at each shift of the table, the
/// shift `(dx, dy)` at index `(dy + REACH) · TABLE_SIDE + dx + REACH`. A region compares at most
/// 144 cells and 432 bits, so `u16` holds them and the products the selection forms (at most
/// 432 · 144 = 62 208).
struct RegionTable {
    compared: [[u16; TABLE_SIDE * TABLE_SIDE]; REGIONS * REGIONS],
    mismatched: [[u16; TABLE_SIDE * TABLE_SIDE]; REGIONS * REGIONS],
}

/// Fills the table's entries at index `at`: the probe against the reference words from
/// `first_word` (the y-shift's packing) moved by `dx`; probe and reference rows at
/// [`ROW_OFFSET`].
#[inline(always)]
fn count_regions(
    probe: &[[u64; WORDS]; CODE_BITS + 1],
    reference: &[[u64; WORDS + PAD]; CODE_BITS + 1],
    first_word: usize,
    dx: i32,
    table: &mut RegionTable,
    at: usize,
) {
    let [p0, p1, p2, pm] = probe;
    let [r0, r1, r2, rm] = reference
        .each_ref()
        .map(|words| &words[first_word..first_word + WORDS]);
    // Per word, byte counts of the code bits mismatched (the full adder's sum bits count once,
    // its carry bits twice: at most 4 + 2 · 4 = 12 a nibble, 24 a byte) and of the cells compared.
    let mut mismatched = [0u64; WORDS];
    let mut compared = [0u64; WORDS];
    for w in 0..WORDS {
        let m = pm[w] & shift_x(rm[w], dx);
        let x0 = p0[w] ^ shift_x(r0[w], dx);
        let x1 = p1[w] ^ shift_x(r1[w], dx);
        let x2 = p2[w] ^ shift_x(r2[w], dx);
        // Per cell, the mismatch count x0 + x1 + x2 (0–3) as two bit planes (full adder).
        let (sum, carry) = full_add(x0, x1, x2);
        mismatched[w] = widen(nibble_counts(sum & m) + 2 * nibble_counts(carry & m));
        compared[w] = widen(nibble_counts(m));
    }
    for half in 0..REGIONS {
        let words = half * REGION_WORDS..(half + 1) * REGION_WORDS;
        // Six words: at most 6 · 24 = 144 bits and 48 cells a byte.
        let compared = region_totals(compared[words.clone()].iter().sum());
        let mismatched = region_totals(mismatched[words].iter().sum());
        for side in 0..REGIONS {
            let region = half * REGIONS + side;
            table.compared[region][at] = (compared >> (16 * side)) as u16;
            table.mismatched[region][at] = (mismatched >> (16 * side)) as u16;
        }
    }
}

/// Lanes of the selection: the common shift `(dx, dy)` is lane `(dy + MAX_SHIFT) · TABLE_SIDE +
/// dx + MAX_SHIFT`, so the shifts a region may move to are, for every lane at once, one
/// contiguous run of the table (lanes whose column lies past `2 · MAX_SHIFT` are not common
/// shifts: they are computed with the rest and never read).
const LANES: usize = 2 * MAX_SHIFT as usize * TABLE_SIDE + 2 * MAX_SHIFT as usize + 1;

/// Table index of lane 0's common shift, `(-MAX_SHIFT, -MAX_SHIFT)`.
const FIRST_COMMON: usize = REGION_REACH as usize * (TABLE_SIDE + 1);

/// All ones when `a < b`, else zero, per lane: `b - a` saturating at zero is non-zero exactly
/// when `a < b` (a vector of `u16` has a saturating subtraction but no unsigned comparison).
#[inline(always)]
fn lt_mask16(a: u16, b: u16) -> u16 {
    0u16.wrapping_sub(u16::from(b.saturating_sub(a) != 0))
}

/// `if_true` where `mask` is all ones, `if_false` where it is zero.
#[inline(always)]
fn select16(mask: u16, if_true: u16, if_false: u16) -> u16 {
    (if_true & mask) | (if_false & !mask)
}

/// Each region's cells and bits at every common shift after it moved to its best neighbour,
/// summed over the regions: `(cells, bits)` per lane. Written lane by lane over contiguous runs
/// so the compiler can vectorise it: the choice for every region and common shift is the same
/// sequence of masks as one written shift by shift.
fn moved_region_sums(table: &RegionTable) -> ([u16; LANES], [u16; LANES]) {
    let mut overlap = [0u16; LANES];
    let mut mismatched = [0u16; LANES];
    for region in 0..REGIONS * REGIONS {
        let compared = &table.compared[region];
        let bits_at = &table.mismatched[region];
        let own_cells = &compared[FIRST_COMMON..FIRST_COMMON + LANES];
        let mut cells = [0u16; LANES];
        let mut bits = [0u16; LANES];
        cells.copy_from_slice(own_cells);
        bits.copy_from_slice(&bits_at[FIRST_COMMON..FIRST_COMMON + LANES]);
        for oy in -REGION_REACH..=REGION_REACH {
            for ox in -REGION_REACH..=REGION_REACH {
                // The common shift itself is never strictly closer than the best so far (which
                // starts there and only gets closer): skipping it changes nothing.
                if ox == 0 && oy == 0 {
                    continue;
                }
                // In 0..=2 · FIRST_COMMON: public loop index.
                let start = (FIRST_COMMON as i32 + oy * TABLE_SIDE as i32 + ox) as usize;
                let other_cells = &compared[start..start + LANES];
                let other_bits = &bits_at[start..start + LANES];
                for lane in 0..LANES {
                    // Enough cells: 4·other ≥ 3·own; closer: other's bits/cells < bits/cells,
                    // cross-multiplied (a region with no cells has no bits either: 0 < 0 fails
                    // and it moves nowhere). Both sides are at most 432 bits · 144 cells < 2^16.
                    let enough = !lt_mask16(4 * other_cells[lane], 3 * own_cells[lane]);
                    let closer = lt_mask16(
                        other_bits[lane].wrapping_mul(cells[lane]),
                        bits[lane].wrapping_mul(other_cells[lane]),
                    );
                    let take = enough & closer;
                    cells[lane] = select16(take, other_cells[lane], cells[lane]);
                    bits[lane] = select16(take, other_bits[lane], bits[lane]);
                }
            }
        }
        for lane in 0..LANES {
            // At most 576 cells and 1728 bits over the four regions.
            overlap[lane] += cells[lane];
            mismatched[lane] += bits[lane];
        }
    }
    (overlap, mismatched)
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
    let mut table = RegionTable {
        compared: [[0; TABLE_SIDE * TABLE_SIDE]; REGIONS * REGIONS],
        mismatched: [[0; TABLE_SIDE * TABLE_SIDE]; REGIONS * REGIONS],
    };
    let probe_rows = offset_rows(&probe.planes);
    let reference_rows = packed_rows(&reference.planes);
    for dy in -REACH..=REACH {
        // dy + REACH is in 0..=2·PAD: public loop index.
        let first_row = (dy + REACH) as usize;
        let rows = &reference_rows[first_row % 2];
        for dx in -REACH..=REACH {
            let at = first_row * TABLE_SIDE + (dx + REACH) as usize;
            count_regions(&probe_rows, rows, first_row / 2, dx, &mut table, at);
        }
    }
    let (overlaps, mismatches) = moved_region_sums(&table);
    // Start above any real distance (2/1), so the first eligible shift always wins.
    let mut best_num = 2u32;
    let mut best_den = 1u32;
    let mut best_overlap = 0u32;
    let mut max_overlap = 0u32;
    for dy in 0..=2 * MAX_SHIFT as usize {
        for dx in 0..=2 * MAX_SHIFT as usize {
            let lane = dy * TABLE_SIDE + dx;
            let overlap = u32::from(overlaps[lane]);
            let mismatched = u32::from(mismatches[lane]);
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

        /// A probe whose quarters are valid unevenly — none, only a strip along the grid's edge
        /// (so a quarter compares no cells at some shifts and some at its neighbours), a
        /// sparse scatter or all — so regions with no cells, few cells and the three-quarters
        /// rule are exercised at once.
        fn patchy_template() -> impl Strategy<Value = Template> {
            (
                proptest::collection::vec(0u8..6, CELLS),
                proptest::array::uniform4(0u8..4),
                proptest::collection::vec(0u32..1000, CELLS),
            )
                .prop_map(|(o, kinds, rolls)| {
                    const SIDE: usize = GRID / REGIONS;
                    let o: [u8; CELLS] = o.try_into().unwrap();
                    let mut v = [false; CELLS];
                    for (i, slot) in v.iter_mut().enumerate() {
                        let (x, y) = (i % GRID, i / GRID);
                        let quarter = (y / SIDE) * REGIONS + x / SIDE;
                        *slot = match kinds[quarter] {
                            0 => false,
                            1 => y == 0 || y == GRID - 1 || x == 0 || x == GRID - 1,
                            2 => rolls[i] < 150,
                            _ => true,
                        };
                    }
                    Template::from_cells(&o, &v).unwrap()
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
            fn patchy_probes_match_naive(
                probe in patchy_template(),
                reference in arbitrary_template(),
                same in any::<bool>(),
            ) {
                // Against a stranger, and against itself (every region's best is its own shift).
                check(&probe, if same { &probe } else { &reference })?;
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
