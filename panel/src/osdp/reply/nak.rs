//! `osdp_NAK` (0x41): the command was refused: one error code (see [`crate::osdp::nak`]).

/// Reply code.
pub const CODE: u8 = 0x41;

/// The data after the code.
pub fn encode(reason: u8) -> Vec<u8> {
    vec![reason]
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_reason_byte() {
        assert_eq!(
            super::encode(crate::osdp::nak::SECURITY_CONDITIONS),
            vec![0x06]
        );
    }
}
