//! `osdp_LSTAT`: local status (tamper, power) request: command code 0x64, no data.

/// Command code.
pub const CODE: u8 = 0x64;

/// `osdp_LSTAT`: local status (tamper, power) request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalStatus;

impl LocalStatus {
    /// Decodes the data after the code.
    pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
        super::expect_len(CODE, data, 0)?;
        Ok(Self)
    }

    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_no_data() {
        assert_eq!(LocalStatus::decode(&[]), Ok(LocalStatus));
        assert!(LocalStatus::decode(&[0]).is_err());
        assert!(LocalStatus.encode().is_empty());
    }
}
