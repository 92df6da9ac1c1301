//! `osdp_ISTATR` (0x49): input status, one byte per input (0 inactive, 1 active).

/// Reply code.
pub const CODE: u8 = 0x49;

/// The data after the code.
pub fn encode(inputs: &[bool]) -> Vec<u8> {
    inputs.iter().map(|active| u8::from(*active)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_byte_per_input() {
        assert_eq!(super::encode(&[false, true]), vec![0, 1]);
    }
}
