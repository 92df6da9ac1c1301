//! `osdp_SCRYPT` (0x77): the CP's (server) cryptogram, 16 bytes. Security block type 0x13.

/// Command code.
pub const CODE: u8 = 0x77;

/// The CP's cryptogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCryptogram {
    /// `AES(S-ENC, RND.B ‖ RND.A)`.
    pub cryptogram: [u8; 16],
}

impl ServerCryptogram {
    /// Decodes the data after the code.
    pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
        super::expect_len(CODE, data, 16)?;
        let mut cryptogram = [0u8; 16];
        cryptogram.copy_from_slice(data);
        Ok(Self { cryptogram })
    }

    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        self.cryptogram.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes() {
        let bytes = [7u8; 16];
        assert_eq!(
            ServerCryptogram::decode(&bytes).map(|c| c.encode()),
            Ok(bytes.to_vec())
        );
        assert!(ServerCryptogram::decode(&bytes[..15]).is_err());
    }
}
