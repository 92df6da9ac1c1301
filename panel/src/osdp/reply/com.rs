//! `osdp_COM` (0x54): the communication settings the PD switches to after this reply:
//! `address | baud (4, LSB first)`.

/// Reply code.
pub const CODE: u8 = 0x54;

/// The data after the code.
pub fn encode(address: u8, baud: u32) -> Vec<u8> {
    let mut out = vec![address];
    out.extend_from_slice(&baud.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn address_then_baud() {
        assert_eq!(super::encode(5, 115_200), vec![5, 0x00, 0xC2, 0x01, 0x00]);
    }
}
