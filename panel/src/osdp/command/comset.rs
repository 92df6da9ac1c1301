//! `osdp_COMSET` (0x6E): new address and baud rate: `address | baud (4 bytes, LSB first)`.
//! The PD answers `osdp_COM` with the new values under the old ones, then switches.

/// Command code.
pub const CODE: u8 = 0x6E;

/// Baud rates a PD must support.
pub const BAUD_RATES: [u32; 5] = [9600, 19200, 38400, 57600, 115_200];

/// New communication settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComSet {
    /// New address (0–126).
    pub address: u8,
    /// New baud rate.
    pub baud: u32,
}

impl ComSet {
    /// Decodes the data after the code.
    pub fn decode(data: &[u8]) -> Result<Self, super::CommandError> {
        super::expect_len(CODE, data, 5)?;
        Ok(Self {
            address: data[0],
            baud: u32::from_le_bytes([data[1], data[2], data[3], data[4]]),
        })
    }

    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.address];
        out.extend_from_slice(&self.baud.to_le_bytes());
        out
    }

    /// Whether the PD can take these settings.
    pub fn is_acceptable(&self) -> bool {
        self.address < 0x7F && BAUD_RATES.contains(&self.baud)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_and_little_endian_baud() {
        let bytes = [0x05, 0x00, 0x96, 0x00, 0x00];
        let comset = ComSet::decode(&bytes).expect("five bytes");
        assert_eq!(
            comset,
            ComSet {
                address: 5,
                baud: 38400
            }
        );
        assert!(comset.is_acceptable());
        assert_eq!(comset.encode(), bytes.to_vec());
        assert!(
            !ComSet {
                address: 0x7F,
                baud: 9600
            }
            .is_acceptable()
        );
        assert!(
            !ComSet {
                address: 1,
                baud: 1200
            }
            .is_acceptable()
        );
    }
}
