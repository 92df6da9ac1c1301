//! `osdp_POLL`: anything to report?: command code 0x60, no data.

/// Command code.
pub const CODE: u8 = 0x60;

/// `osdp_POLL`: anything to report?.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll;

impl Poll {
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
        assert_eq!(Poll::decode(&[]), Ok(Poll));
        assert!(Poll::decode(&[0]).is_err());
        assert!(Poll.encode().is_empty());
    }
}
