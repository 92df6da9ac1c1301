//! `osdp_ID`: identification report request: command code 0x61, one byte (reply type, 0x00).

/// Command code.
pub const CODE: u8 = 0x61;

/// `osdp_ID`: identification report request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdReport {
    /// The requested reply type (0x00: standard).
    pub reply_type: u8,
}

impl IdReport {
    /// Decodes the data after the code.
    pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
        super::expect_len(CODE, data, 1)?;
        Ok(Self {
            reply_type: data[0],
        })
    }

    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        vec![self.reply_type]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_of_reply_type() {
        assert_eq!(IdReport::decode(&[0x00]), Ok(IdReport { reply_type: 0 }));
        assert!(IdReport::decode(&[]).is_err());
        assert_eq!(IdReport { reply_type: 0 }.encode(), vec![0x00]);
    }
}
