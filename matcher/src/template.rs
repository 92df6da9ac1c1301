//! Template format v1: the 292-byte encoding shared by the gate and the card.
//!
//! Layout (see `docs/matcher.md`): a 4-byte header `[FORMAT_VERSION, algorithm_id, 0, 0]`, then four
//! bit planes of 24 rows × 24 cells, each row stored as 3 bytes little-endian (bit `x` of the 24-bit
//! row value is cell `x`; byte `3·y` holds cells 0–7 of row `y`). Planes, in order: code bit 0, code
//! bit 1, code bit 2 (the Gray-coded orientation of each cell), then the validity mask. A cell that is
//! not valid has all three code bits zero, so every template has exactly one encoding.
//!
//! In memory each plane is held as 12 `u64` words with two rows per word (row `2k` in bits 0–23,
//! row `2k+1` in bits 32–55): the comparison then shifts in x with plain bit shifts and in y by
//! choosing rows, and counts with XOR/AND/popcount.

use core::fmt;

use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Version of the encoding (header byte 0).
pub const FORMAT_VERSION: u8 = 1;
/// Competitive code v1: 24×24 cells, 6 orientations Gray-coded in 3 bits, validity mask.
pub const ALGORITHM_COMPCODE_V1: u8 = 0x01;
/// Cells per side of the grid.
pub const GRID: usize = 24;
/// Number of cells in the grid.
pub const CELLS: usize = GRID * GRID;
/// Number of orientations a cell can take.
pub const ORIENTATIONS: u8 = 6;
/// Code bits per cell.
pub const CODE_BITS: usize = 3;
/// Payload length: 1,728 code bits + 576 mask bits.
pub const PAYLOAD_LEN: usize = 288;
/// Header length: `[format_version, algorithm_id, 0, 0]`.
pub const HEADER_LEN: usize = 4;
/// Length of an encoded template.
pub const ENCODED_LEN: usize = HEADER_LEN + PAYLOAD_LEN;

/// Bytes per stored row (24 cells).
const ROW_BYTES: usize = GRID / 8;
/// Bytes per bit plane.
const PLANE_BYTES: usize = ROW_BYTES * GRID;
/// Bit planes: three code planes, then the mask.
const PLANES: usize = CODE_BITS + 1;
/// `u64` words per plane, two rows per word.
pub(crate) const WORDS: usize = GRID / 2;
/// The 24 low bits of a row.
pub(crate) const ROW_MASK: u64 = (1 << GRID) - 1;
/// Both row lanes of a word.
pub(crate) const LANE_MASK: u64 = ROW_MASK | (ROW_MASK << 32);

/// Gray code of each orientation: neighbouring orientations (circularly) differ in one bit, so the
/// Hamming distance between two codes is the angular distance between the orientations (0–3).
pub const GRAY_CODES: [u8; ORIENTATIONS as usize] = [0b000, 0b001, 0b011, 0b111, 0b110, 0b100];

/// Why bytes or cells do not form a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateError {
    /// The input does not have [`ENCODED_LEN`] bytes.
    Length {
        /// Length received.
        actual: usize,
    },
    /// Header byte 0 is not [`FORMAT_VERSION`].
    FormatVersion(u8),
    /// Header byte 1 names an algorithm this code does not know.
    Algorithm(u8),
    /// Header bytes 2–3 are reserved and must be zero.
    Reserved,
    /// A cell holds a 3-bit value that is not one of the six Gray codes.
    InvalidCode,
    /// A cell outside the validity mask has code bits set (the encoding would not be canonical).
    CodeOutsideMask,
    /// An orientation index is not below [`ORIENTATIONS`].
    Orientation(u8),
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Length { actual } => {
                write!(f, "template must be {ENCODED_LEN} bytes, got {actual}")
            }
            Self::FormatVersion(v) => {
                write!(
                    f,
                    "template format version {v} is not supported (expected {FORMAT_VERSION})"
                )
            }
            Self::Algorithm(a) => write!(f, "template algorithm id {a:#04x} is not supported"),
            Self::Reserved => f.write_str("template header reserved bytes are not zero"),
            Self::InvalidCode => {
                f.write_str("template holds a cell code that is not an orientation")
            }
            Self::CodeOutsideMask => f.write_str("template has code bits set in masked-out cells"),
            Self::Orientation(o) => {
                write!(f, "orientation {o} is out of range (0..{ORIENTATIONS})")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TemplateError {}

/// A palm template: per cell a Gray-coded orientation and a validity bit.
///
/// Biometric data: zeroized on drop, `Debug` prints `REDACTED`, equality only in constant time
/// ([`ConstantTimeEq`]).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Template {
    algorithm: u8,
    /// Code planes then the mask plane, two rows per word.
    pub(crate) planes: [[u64; WORDS]; PLANES],
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Template(REDACTED)")
    }
}

impl ConstantTimeEq for Template {
    fn ct_eq(&self, other: &Self) -> Choice {
        let mut eq = self.algorithm.ct_eq(&other.algorithm);
        for (a, b) in self.planes.iter().zip(other.planes.iter()) {
            for (x, y) in a.iter().zip(b.iter()) {
                eq &= x.ct_eq(y);
            }
        }
        eq
    }
}

/// Word index and bit offset of cell `(x, y)`.
const fn bit_position(x: usize, y: usize) -> (usize, usize) {
    (y / 2, (y % 2) * 32 + x)
}

impl Template {
    /// Builds a template from per-cell orientations (`0..6`, row-major, `y * 24 + x`) and validity.
    /// The orientation of a cell that is not valid is ignored.
    pub fn from_cells(
        orientations: &[u8; CELLS],
        valid: &[bool; CELLS],
    ) -> Result<Template, TemplateError> {
        let mut planes = [[0u64; WORDS]; PLANES];
        for (index, (&orientation, &is_valid)) in orientations.iter().zip(valid.iter()).enumerate()
        {
            if !is_valid {
                continue;
            }
            let code = *GRAY_CODES
                .get(usize::from(orientation))
                .ok_or(TemplateError::Orientation(orientation))?;
            let (word, bit) = bit_position(index % GRID, index / GRID);
            for (plane, words) in planes.iter_mut().take(CODE_BITS).enumerate() {
                words[word] |= u64::from((code >> plane) & 1) << bit;
            }
            planes[CODE_BITS][word] |= 1 << bit;
        }
        Ok(Template {
            algorithm: ALGORITHM_COMPCODE_V1,
            planes,
        })
    }

    /// Decodes an encoded template, refusing a wrong length, version, algorithm or a non-canonical
    /// payload.
    pub fn decode(bytes: &[u8]) -> Result<Template, TemplateError> {
        let bytes: &[u8; ENCODED_LEN] = bytes.try_into().map_err(|_| TemplateError::Length {
            actual: bytes.len(),
        })?;
        let (header, payload) = bytes.split_at(HEADER_LEN);
        if header[0] != FORMAT_VERSION {
            return Err(TemplateError::FormatVersion(header[0]));
        }
        if header[1] != ALGORITHM_COMPCODE_V1 {
            return Err(TemplateError::Algorithm(header[1]));
        }
        if header[2] != 0 || header[3] != 0 {
            return Err(TemplateError::Reserved);
        }
        let mut template = Template {
            algorithm: header[1],
            planes: [[0; WORDS]; PLANES],
        };
        for (plane, plane_bytes) in payload.chunks_exact(PLANE_BYTES).enumerate() {
            for (y, row) in plane_bytes.chunks_exact(ROW_BYTES).enumerate() {
                let value = u64::from(row[0]) | u64::from(row[1]) << 8 | u64::from(row[2]) << 16;
                template.planes[plane][y / 2] |= value << ((y % 2) * 32);
            }
        }
        // Checked over every word without early exit, so the time does not depend on where a fault is.
        let [c0, c1, c2, mask] = &template.planes;
        let mut outside_mask = 0u64;
        let mut invalid_code = 0u64;
        for w in 0..WORDS {
            outside_mask |= (c0[w] | c1[w] | c2[w]) & !mask[w];
            // 010 and 101 are the two 3-bit values that are not Gray codes of an orientation.
            invalid_code |= (!c0[w] & c1[w] & !c2[w]) | (c0[w] & !c1[w] & c2[w]);
        }
        if outside_mask != 0 {
            return Err(TemplateError::CodeOutsideMask);
        }
        if invalid_code & LANE_MASK != 0 {
            return Err(TemplateError::InvalidCode);
        }
        Ok(template)
    }

    /// Encodes the template in the v1 layout.
    pub fn encode(&self) -> [u8; ENCODED_LEN] {
        let mut out = [0u8; ENCODED_LEN];
        out[0] = FORMAT_VERSION;
        out[1] = self.algorithm;
        for (plane, plane_out) in out[HEADER_LEN..].chunks_exact_mut(PLANE_BYTES).enumerate() {
            for (y, row) in plane_out.chunks_exact_mut(ROW_BYTES).enumerate() {
                let value = (self.planes[plane][y / 2] >> ((y % 2) * 32)) & ROW_MASK;
                row.copy_from_slice(&value.to_le_bytes()[..ROW_BYTES]);
            }
        }
        out
    }

    /// Algorithm id (header byte 1).
    pub fn algorithm(&self) -> u8 {
        self.algorithm
    }

    /// Number of valid cells (popcount of the mask).
    pub fn valid_cells(&self) -> u16 {
        // At most 576 cells: always fits.
        self.planes[CODE_BITS]
            .iter()
            .map(|w| w.count_ones() as u16)
            .sum()
    }

    /// Changes the algorithm id, to test refusal of mixed algorithms.
    #[cfg(test)]
    pub(crate) fn set_algorithm_for_test(&mut self, algorithm: u8) {
        self.algorithm = algorithm;
    }

    /// Orientation index (`0..6`) of cell `(x, y)`, or `None` when the cell is not valid or outside
    /// the grid.
    pub fn orientation(&self, x: usize, y: usize) -> Option<u8> {
        if x >= GRID || y >= GRID {
            return None;
        }
        let (word, bit) = bit_position(x, y);
        if (self.planes[CODE_BITS][word] >> bit) & 1 == 0 {
            return None;
        }
        let code = (0..CODE_BITS)
            .map(|plane| (((self.planes[plane][word] >> bit) & 1) as u8) << plane)
            .fold(0, |acc, b| acc | b);
        GRAY_CODES.iter().position(|&g| g == code).map(|o| o as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_cells() -> ([u8; CELLS], [bool; CELLS]) {
        let mut orientations = [0u8; CELLS];
        let mut valid = [false; CELLS];
        for i in 0..CELLS {
            orientations[i] = ((i * 7 + i / 5) % 6) as u8;
            valid[i] = i % 11 != 3;
        }
        (orientations, valid)
    }

    #[test]
    fn gray_codes_distance_is_circular_angle() {
        for (a, code_a) in GRAY_CODES.iter().enumerate() {
            for (b, code_b) in GRAY_CODES.iter().enumerate() {
                let diff = a.abs_diff(b);
                let angular = diff.min(6 - diff) as u32;
                assert_eq!((code_a ^ code_b).count_ones(), angular, "{a} {b}");
            }
        }
    }

    #[test]
    fn byte_vector_single_cells() {
        // Cell (0, 0) orientation 1 (code 001), cell (9, 1) orientation 3 (code 111),
        // cell (23, 23) orientation 5 (code 100); all other cells invalid.
        let mut orientations = [0u8; CELLS];
        let mut valid = [false; CELLS];
        orientations[0] = 1;
        valid[0] = true;
        orientations[GRID + 9] = 3;
        valid[GRID + 9] = true;
        orientations[CELLS - 1] = 5;
        valid[CELLS - 1] = true;
        let template = Template::from_cells(&orientations, &valid).unwrap();
        let bytes = template.encode();

        let mut expected = [0u8; ENCODED_LEN];
        expected[..4].copy_from_slice(&[0x01, 0x01, 0x00, 0x00]);
        let p = |plane: usize, y: usize, byte: usize| HEADER_LEN + plane * 72 + y * 3 + byte;
        // Plane 0 (code bit 0): cells (0,0) and (9,1).
        expected[p(0, 0, 0)] = 0x01;
        expected[p(0, 1, 1)] = 0x02;
        // Plane 1: (9,1).
        expected[p(1, 1, 1)] = 0x02;
        // Plane 2: (9,1) and (23,23).
        expected[p(2, 1, 1)] = 0x02;
        expected[p(2, 23, 2)] = 0x80;
        // Mask.
        expected[p(3, 0, 0)] = 0x01;
        expected[p(3, 1, 1)] = 0x02;
        expected[p(3, 23, 2)] = 0x80;
        assert_eq!(bytes, expected);
        assert_eq!(template.valid_cells(), 3);
        assert_eq!(template.orientation(0, 0), Some(1));
        assert_eq!(template.orientation(9, 1), Some(3));
        assert_eq!(template.orientation(23, 23), Some(5));
        assert_eq!(template.orientation(1, 0), None);
        assert_eq!(template.orientation(24, 0), None);
    }

    #[test]
    fn full_mask_encodes_all_ones_mask_plane() {
        let template = Template::from_cells(&[3; CELLS], &[true; CELLS]).unwrap();
        let bytes = template.encode();
        // Orientation 3 is code 111: every plane is all ones.
        assert!(bytes[HEADER_LEN..].iter().all(|&b| b == 0xff));
        assert_eq!(template.valid_cells(), 576);
    }

    #[test]
    fn round_trip() {
        let (o, v) = sample_cells();
        let template = Template::from_cells(&o, &v).unwrap();
        let bytes = template.encode();
        let decoded = Template::decode(&bytes).unwrap();
        assert!(bool::from(decoded.ct_eq(&template)));
        assert_eq!(decoded.encode(), bytes);
        for i in 0..CELLS {
            let expected = v[i].then_some(o[i]);
            assert_eq!(
                decoded.orientation(i % GRID, i / GRID),
                expected,
                "cell {i}"
            );
        }
    }

    #[test]
    fn decode_refuses_bad_input() {
        let (o, v) = sample_cells();
        let good = Template::from_cells(&o, &v).unwrap().encode();
        assert_eq!(
            Template::decode(&good[..291]).unwrap_err(),
            TemplateError::Length { actual: 291 }
        );
        assert_eq!(
            Template::decode(&[]).unwrap_err(),
            TemplateError::Length { actual: 0 }
        );
        let mut bad = good;
        bad[0] = 2;
        assert_eq!(
            Template::decode(&bad).unwrap_err(),
            TemplateError::FormatVersion(2)
        );
        let mut bad = good;
        bad[1] = 0x02;
        assert_eq!(
            Template::decode(&bad).unwrap_err(),
            TemplateError::Algorithm(2)
        );
        let mut bad = good;
        bad[3] = 1;
        assert_eq!(Template::decode(&bad).unwrap_err(), TemplateError::Reserved);
        // Cell (0,0): make it 010.
        let mut bad = [0u8; ENCODED_LEN];
        bad[..4].copy_from_slice(&[1, 1, 0, 0]);
        bad[HEADER_LEN + 72] = 0x01; // plane 1
        bad[HEADER_LEN + 216] = 0x01; // mask
        assert_eq!(
            Template::decode(&bad).unwrap_err(),
            TemplateError::InvalidCode
        );
        // Code bits without the mask bit.
        bad[HEADER_LEN + 216] = 0;
        assert_eq!(
            Template::decode(&bad).unwrap_err(),
            TemplateError::CodeOutsideMask
        );
        assert!(
            Template::from_cells(&[6; CELLS], &[true; CELLS])
                .is_err_and(|e| e == TemplateError::Orientation(6))
        );
    }

    #[test]
    fn debug_is_redacted() {
        let template = Template::from_cells(&[2; CELLS], &[true; CELLS]).unwrap();
        let text = std::format!("{template:?}");
        assert_eq!(text, "Template(REDACTED)");
    }
}
