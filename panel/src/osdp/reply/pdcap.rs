//! `osdp_PDCAP` (0x46): capabilities, 3 bytes each: `function code | compliance | number of items`.

/// Reply code.
pub const CODE: u8 = 0x46;

/// Function codes this PD reports.
pub mod function {
    /// Contact status monitoring (inputs).
    pub const CONTACT_STATUS: u8 = 1;
    /// Card data format.
    pub const CARD_DATA_FORMAT: u8 = 3;
    /// Reader LED control.
    pub const LED: u8 = 4;
    /// Reader audible output.
    pub const AUDIBLE: u8 = 5;
    /// Check character support (CRC-16).
    pub const CHECK_CHARACTER: u8 = 8;
    /// Communication security (AES-128).
    pub const SECURITY: u8 = 9;
    /// Receive buffer size (LSB, MSB).
    pub const RECEIVE_BUFFER: u8 = 10;
    /// OSDP version (2: 2.2).
    pub const VERSION: u8 = 16;
}

/// One capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    /// Function code.
    pub function: u8,
    /// Compliance level.
    pub compliance: u8,
    /// Number of items.
    pub items: u8,
}

/// The data after the code.
pub fn encode(capabilities: &[Capability]) -> Vec<u8> {
    capabilities
        .iter()
        .flat_map(|c| [c.function, c.compliance, c.items])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples() {
        let caps = [
            Capability {
                function: function::SECURITY,
                compliance: 1,
                items: 0,
            },
            Capability {
                function: function::RECEIVE_BUFFER,
                compliance: 0x00,
                items: 0x01,
            },
        ];
        assert_eq!(encode(&caps), vec![9, 1, 0, 10, 0, 1]);
    }
}
