//! `osdp_ISTAT`: input status request: command code 0x65, no data.

/// Command code.
pub const CODE: u8 = 0x65;

/// `osdp_ISTAT`: input status request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputStatus;

impl InputStatus {
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
        assert_eq!(InputStatus::decode(&[]), Ok(InputStatus));
        assert!(InputStatus::decode(&[0]).is_err());
        assert!(InputStatus.encode().is_empty());
    }
}
