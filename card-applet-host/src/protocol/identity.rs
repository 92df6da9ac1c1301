//! The card identity record (SELECT response and GET DATA `0101`).

use super::{CARD_ID_LEN, Lifecycle};

/// Encoded identity length.
pub const IDENTITY_LEN: usize = 24;

/// What a card says about itself before any session (unauthenticated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardIdentity {
    /// Card id (all zero in the factory state).
    pub card_id: [u8; CARD_ID_LEN],
    /// Applet version (major, minor).
    pub applet_version: (u8, u8),
    /// Life-cycle state.
    pub lifecycle: Lifecycle,
    /// Template algorithm id the card compares.
    pub algorithm: u8,
    /// Slots holding a template.
    pub slots_used: u8,
    /// Slots available.
    pub slot_capacity: u8,
    /// Tries left before verification blocks.
    pub tries_left: u8,
    /// Retry counter limit.
    pub max_tries: u8,
}

impl CardIdentity {
    /// Encodes: `card_id(16) | major | minor | lifecycle | algorithm | slots_used | slot_capacity |
    /// tries_left | max_tries`.
    pub fn encode(&self) -> [u8; IDENTITY_LEN] {
        let mut out = [0u8; IDENTITY_LEN];
        out[..CARD_ID_LEN].copy_from_slice(&self.card_id);
        out[16] = self.applet_version.0;
        out[17] = self.applet_version.1;
        out[18] = self.lifecycle.to_byte();
        out[19] = self.algorithm;
        out[20] = self.slots_used;
        out[21] = self.slot_capacity;
        out[22] = self.tries_left;
        out[23] = self.max_tries;
        out
    }

    /// Decodes, or `None` when the length or the life-cycle byte is wrong.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; IDENTITY_LEN] = bytes.try_into().ok()?;
        let mut card_id = [0u8; CARD_ID_LEN];
        card_id.copy_from_slice(&bytes[..CARD_ID_LEN]);
        Some(Self {
            card_id,
            applet_version: (bytes[16], bytes[17]),
            lifecycle: Lifecycle::from_byte(bytes[18])?,
            algorithm: bytes[19],
            slots_used: bytes[20],
            slot_capacity: bytes[21],
            tries_left: bytes[22],
            max_tries: bytes[23],
        })
    }
}
