//! `osdp_LSTATR` (0x48): local status: `tamper (0 normal, 1 tampered) | power (0 normal, 1 failure)`.

/// Reply code.
pub const CODE: u8 = 0x48;

/// The data after the code.
pub fn encode(tamper: bool, power_failure: bool) -> Vec<u8> {
    vec![u8::from(tamper), u8::from(power_failure)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_flags() {
        assert_eq!(super::encode(true, false), vec![1, 0]);
    }
}
