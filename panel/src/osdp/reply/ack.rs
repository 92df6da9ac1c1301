//! `osdp_ACK` (0x40): the command was accepted; nothing to report. No data.

/// Reply code.
pub const CODE: u8 = 0x40;

/// The data after the code.
pub fn encode() -> Vec<u8> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    #[test]
    fn has_no_data() {
        assert_eq!(super::CODE, 0x40);
        assert!(super::encode().is_empty());
    }
}
