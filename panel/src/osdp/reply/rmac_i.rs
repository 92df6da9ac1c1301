//! `osdp_RMAC_I` (0x78): the initial R-MAC, 16 bytes; security block type 0x14 with 0x01
//! (the CP's cryptogram was accepted).

/// Reply code.
pub const CODE: u8 = 0x78;
/// Security block data: the CP's cryptogram verified.
pub const ACCEPTED: u8 = 0x01;

/// The data after the code.
pub fn encode(initial_rmac: &[u8; 16]) -> Vec<u8> {
    initial_rmac.to_vec()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sixteen_bytes() {
        assert_eq!(super::encode(&[5; 16]), vec![5; 16]);
    }
}
