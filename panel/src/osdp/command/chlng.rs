//! `osdp_CHLNG` (0x76): start of the secure channel handshake: the CP's random RND.A (8 bytes).
//! Its security block (type 0x11) says which key: 0 = SCBK-D, 1 = SCBK.

/// Command code.
pub const CODE: u8 = 0x76;

/// The CP's challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// RND.A.
    pub cp_random: [u8; 8],
}

impl Challenge {
    /// Decodes the data after the code.
    pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
        super::expect_len(CODE, data, 8)?;
        let mut cp_random = [0u8; 8];
        cp_random.copy_from_slice(data);
        Ok(Self { cp_random })
    }

    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        self.cp_random.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_random_bytes() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(
            Challenge::decode(&bytes).map(|c| c.encode()),
            Ok(bytes.to_vec())
        );
        assert!(Challenge::decode(&bytes[..7]).is_err());
    }
}
