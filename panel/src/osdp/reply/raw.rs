//! `osdp_RAW` (0x50): card data as read:
//! `reader | format (0 unspecified, 1 Wiegand) | bit count (2, LSB first) | bits, left-justified`.

use crate::credential::WiegandBits;

/// Reply code.
pub const CODE: u8 = 0x50;
/// Format code: raw Wiegand bits.
pub const FORMAT_WIEGAND: u8 = 0x01;

/// The data after the code.
pub fn encode(reader: u8, bits: &WiegandBits) -> Vec<u8> {
    let mut out = vec![reader, FORMAT_WIEGAND];
    out.extend_from_slice(&(bits.len() as u16).to_le_bytes());
    out.extend_from_slice(&bits.left_justified());
    out
}

#[cfg(test)]
mod tests {
    use crate::credential::{Credential, WiegandFormat};

    #[test]
    fn a_26_bit_frame_is_four_left_justified_bytes() {
        let bits = Credential::new(WiegandFormat::H10301, 12, 3456)
            .expect("fits")
            .bits();
        assert_eq!(
            super::encode(0, &bits),
            vec![0x00, 0x01, 26, 0, 0x06, 0x06, 0xC0, 0x40]
        );
    }
}
