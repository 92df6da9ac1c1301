//! `osdp_PDID` (0x45): identification, 12 bytes:
//! `vendor code (3) | model | version | serial number (4, LSB first) | firmware major minor build`.

/// Reply code.
pub const CODE: u8 = 0x45;

/// What the PD says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// IEEE OUI of the vendor (3 bytes, as sent).
    pub vendor: [u8; 3],
    /// Model number.
    pub model: u8,
    /// Model version.
    pub version: u8,
    /// Serial number.
    pub serial: u32,
    /// Firmware major, minor, build.
    pub firmware: [u8; 3],
}

impl Identity {
    /// The data after the code.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.vendor.to_vec();
        out.push(self.model);
        out.push(self.version);
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&self.firmware);
        out
    }

    /// The 8-byte client UID sent in `osdp_CCRYPT`: vendor (2), model, version, serial (4).
    pub fn client_uid(&self) -> [u8; 8] {
        let mut uid = [0u8; 8];
        uid[..2].copy_from_slice(&self.vendor[..2]);
        uid[2] = self.model;
        uid[3] = self.version;
        uid[4..].copy_from_slice(&self.serial.to_le_bytes());
        uid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twelve_bytes_serial_lsb_first() {
        let identity = Identity {
            vendor: [0xA1, 0xB2, 0xC3],
            model: 7,
            version: 2,
            serial: 0x0403_0201,
            firmware: [1, 2, 3],
        };
        assert_eq!(
            identity.encode(),
            vec![0xA1, 0xB2, 0xC3, 7, 2, 1, 2, 3, 4, 1, 2, 3]
        );
        assert_eq!(identity.client_uid(), [0xA1, 0xB2, 7, 2, 1, 2, 3, 4]);
    }
}
