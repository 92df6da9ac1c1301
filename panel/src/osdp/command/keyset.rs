//! `osdp_KEYSET` (0x75): install a new SCBK: `key type (1 = SCBK) | length (16) | key`.
//! Accepted only inside an active secure channel.

use crate::osdp::secure::Key;

/// Command code.
pub const CODE: u8 = 0x75;
/// Key type of an SCBK.
pub const KEY_TYPE_SCBK: u8 = 0x01;

/// A new base key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySet {
    /// The key (wiped on drop, printed REDACTED).
    pub key: Key,
}

impl KeySet {
    /// Decodes the data after the code.
    pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
        super::expect_len(CODE, data, 18)?;
        if data[0] != KEY_TYPE_SCBK || data[1] != 16 {
            return Err(super::CommandError::Unsupported {
                code: CODE,
                what: "only key type 1 (SCBK) of 16 bytes",
            });
        }
        let mut key = [0u8; 16];
        key.copy_from_slice(&data[2..]);
        Ok(Self { key: Key::new(key) })
    }

    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![KEY_TYPE_SCBK, 16];
        out.extend_from_slice(self.key.as_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_length_key() {
        let mut bytes = vec![1, 16];
        bytes.extend(0u8..16);
        let keyset = KeySet::decode(&bytes).expect("18 bytes");
        assert_eq!(keyset.key.as_bytes()[15], 15);
        assert_eq!(keyset.encode(), bytes);
        bytes[0] = 0;
        assert!(
            KeySet::decode(&bytes).is_err(),
            "master keys are not supported"
        );
    }
}
