//! The credential number a panel expects, and the Wiegand bit formats that carry it.
//!
//! | format | bits | layout (bit 0 first on the wire) | parity |
//! |---|---|---|---|
//! | H10301 | 26 | `E FFFFFFFF CCCCCCCCCCCCCCCC O` (facility 8, card 16) | E even over bits 1–12, O odd over 13–24 |
//! | H10306 | 34 | `E F×16 C×16 O` | E even over bits 1–16, O odd over 17–32 |
//! | H10304 | 37 | `E F×16 C×19 O` | E even over bits 1–18, O odd over 18–35 (bit 18 in both) |
//!
//! The same bits, left-justified in bytes, are what OSDP's `osdp_RAW` reply carries.

use std::fmt;

/// A Wiegand card format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WiegandFormat {
    /// HID H10301, 26 bits: facility code 0–255, card number 0–65535.
    H10301,
    /// HID H10306, 34 bits: facility code 0–65535, card number 0–65535.
    H10306,
    /// HID H10304, 37 bits: facility code 0–65535, card number 0–524287.
    H10304,
}

impl WiegandFormat {
    /// Every format, for configuration messages.
    pub const ALL: [WiegandFormat; 3] = [Self::H10301, Self::H10306, Self::H10304];

    /// Its name in the configuration and the credential map.
    pub fn name(self) -> &'static str {
        match self {
            Self::H10301 => "h10301",
            Self::H10306 => "h10306",
            Self::H10304 => "h10304",
        }
    }

    /// Parses a name (`h10301`, `h10306`, `h10304`; `26`, `34`, `37` as aliases).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "h10301" | "26" => Some(Self::H10301),
            "h10306" | "34" => Some(Self::H10306),
            "h10304" | "37" => Some(Self::H10304),
            _ => None,
        }
    }

    /// Total bits on the wire.
    pub fn bit_count(self) -> usize {
        match self {
            Self::H10301 => 26,
            Self::H10306 => 34,
            Self::H10304 => 37,
        }
    }

    /// Bits of the facility code.
    pub fn facility_bits(self) -> u32 {
        match self {
            Self::H10301 => 8,
            Self::H10306 | Self::H10304 => 16,
        }
    }

    /// Bits of the card number.
    pub fn number_bits(self) -> u32 {
        match self {
            Self::H10301 | Self::H10306 => 16,
            Self::H10304 => 19,
        }
    }

    /// Inclusive bit ranges covered by the leading even and the trailing odd parity bit.
    fn parity_spans(self) -> ((usize, usize), (usize, usize)) {
        match self {
            Self::H10301 => ((1, 12), (13, 24)),
            Self::H10306 => ((1, 16), (17, 32)),
            Self::H10304 => ((1, 18), (18, 35)),
        }
    }
}

impl fmt::Display for WiegandFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} bits)", self.name(), self.bit_count())
    }
}

/// Why a credential number cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The facility code does not fit the format.
    #[error("facility code {value} does not fit {format} (at most {max})")]
    FacilityTooLarge {
        /// The format.
        format: WiegandFormat,
        /// The value given.
        value: u32,
        /// Its largest value.
        max: u32,
    },
    /// The card number does not fit the format.
    #[error("card number {value} does not fit {format} (at most {max})")]
    NumberTooLarge {
        /// The format.
        format: WiegandFormat,
        /// The value given.
        value: u32,
        /// Its largest value.
        max: u32,
    },
}

/// A credential number: what the panel knows the person by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Credential {
    format: WiegandFormat,
    facility: u32,
    number: u32,
}

impl Credential {
    /// A credential, checked against the format's field widths.
    pub fn new(format: WiegandFormat, facility: u32, number: u32) -> Result<Self, CredentialError> {
        let max_facility = (1u32 << format.facility_bits()) - 1;
        if facility > max_facility {
            return Err(CredentialError::FacilityTooLarge {
                format,
                value: facility,
                max: max_facility,
            });
        }
        let max_number = (1u32 << format.number_bits()) - 1;
        if number > max_number {
            return Err(CredentialError::NumberTooLarge {
                format,
                value: number,
                max: max_number,
            });
        }
        Ok(Self {
            format,
            facility,
            number,
        })
    }

    /// The format.
    pub fn format(&self) -> WiegandFormat {
        self.format
    }

    /// The facility code.
    pub fn facility(&self) -> u32 {
        self.facility
    }

    /// The card number.
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The Wiegand bits, parity included, first bit on the wire first.
    pub fn bits(&self) -> WiegandBits {
        let count = self.format.bit_count();
        let mut bits = vec![false; count];
        let data = (u64::from(self.facility) << self.format.number_bits()) | u64::from(self.number);
        let data_bits = count - 2;
        for (index, bit) in bits[1..count - 1].iter_mut().enumerate() {
            *bit = (data >> (data_bits - 1 - index)) & 1 == 1;
        }
        let ((even_from, even_to), (odd_from, odd_to)) = self.format.parity_spans();
        let ones = |from: usize, to: usize| bits[from..=to].iter().filter(|bit| **bit).count();
        // Even parity: the parity bit makes the count of ones even; odd: makes it odd.
        let (even_ones, odd_ones) = (ones(even_from, even_to), ones(odd_from, odd_to));
        bits[0] = even_ones % 2 == 1;
        bits[count - 1] = odd_ones % 2 == 0;
        WiegandBits { bits }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} facility {} card {}",
            self.format.name(),
            self.facility,
            self.number
        )
    }
}

/// A Wiegand frame: the bits in wire order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WiegandBits {
    bits: Vec<bool>,
}

impl WiegandBits {
    /// The bits, first on the wire first.
    pub fn as_slice(&self) -> &[bool] {
        &self.bits
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// The bits packed most significant bit first, the last byte padded with zeros (the
    /// left-justified form of `osdp_RAW`).
    pub fn left_justified(&self) -> Vec<u8> {
        let mut bytes = vec![0u8; self.bits.len().div_ceil(8)];
        for (index, bit) in self.bits.iter().enumerate() {
            if *bit {
                bytes[index / 8] |= 0x80 >> (index % 8);
            }
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bits: &WiegandBits) -> String {
        bits.as_slice()
            .iter()
            .map(|bit| if *bit { '1' } else { '0' })
            .collect()
    }

    #[test]
    fn h10301_facility_1_card_1_is_the_published_frame() {
        // Facility 1 (00000001), card 1: the even half has one 1 → E=1; the odd half has one 1
        // → O=0. Worked out by hand from the H10301 definition.
        let credential = Credential::new(WiegandFormat::H10301, 1, 1).expect("fits");
        assert_eq!(text(&credential.bits()), "10000000100000000000000010");
    }

    #[test]
    fn h10301_facility_12_card_3456() {
        // 12 = 00001100, 3456 = 0000110110000000. First 12 data bits 000011000000 (2 ones → E=0);
        // last 12 110110000000 (4 ones → O=1).
        let credential = Credential::new(WiegandFormat::H10301, 12, 3456).expect("fits");
        assert_eq!(text(&credential.bits()), "00000110000001101100000001");
        assert_eq!(
            credential.bits().left_justified(),
            vec![0x06, 0x06, 0xC0, 0x40]
        );
    }

    #[test]
    fn h10304_parity_spans_overlap_on_bit_18() {
        // All data bits one: bits 1..=18 have 18 ones → E=0; bits 18..=35 have 18 ones → O=1.
        let credential = Credential::new(WiegandFormat::H10304, 0xFFFF, 0x7FFFF).expect("fits");
        let bits = credential.bits();
        assert_eq!(bits.len(), 37);
        assert!(!bits.as_slice()[0]);
        assert!(bits.as_slice()[36]);
    }

    #[test]
    fn h10306_zero_has_odd_parity_one() {
        let bits = Credential::new(WiegandFormat::H10306, 0, 0)
            .expect("fits")
            .bits();
        assert_eq!(bits.len(), 34);
        assert_eq!(text(&bits), format!("0{}1", "0".repeat(32)));
    }

    #[test]
    fn refuses_numbers_that_do_not_fit() {
        assert_eq!(
            Credential::new(WiegandFormat::H10301, 256, 1),
            Err(CredentialError::FacilityTooLarge {
                format: WiegandFormat::H10301,
                value: 256,
                max: 255
            })
        );
        assert!(matches!(
            Credential::new(WiegandFormat::H10306, 1, 65536),
            Err(CredentialError::NumberTooLarge { max: 65535, .. })
        ));
        assert!(Credential::new(WiegandFormat::H10304, 65535, 524_287).is_ok());
        assert!(Credential::new(WiegandFormat::H10304, 1, 524_288).is_err());
    }

    #[test]
    fn format_names_round_trip() {
        for format in WiegandFormat::ALL {
            assert_eq!(WiegandFormat::parse(format.name()), Some(format));
        }
        assert_eq!(WiegandFormat::parse("26"), Some(WiegandFormat::H10301));
        assert_eq!(WiegandFormat::parse("35"), None);
    }
}
