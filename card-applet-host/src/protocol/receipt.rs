//! The deletion receipt returned by ERASE, signed with the card key.
//!
//! Layout (130 bytes): `"PGRC" | version 01 | card_id(16) | erase counter(u32 BE) |
//! gate timestamp(u64 BE, Unix seconds) | slots erased(1) | commitment(32) | signature(64)`.
//! The commitment is SHA-256 over `"palmgate erase commitment v1"` followed, for every slot in
//! order, by `used(1) | kind(1) | template(292)` as they were before the erase (zeros for an empty
//! slot), so an enrolment station that kept its record can check exactly what was erased.

use p256::ecdsa::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::cert::{CertError, sign, verify};
use super::{CARD_ID_LEN, SIGNATURE_LEN};

/// Receipt magic.
pub const RECEIPT_MAGIC: [u8; 4] = *b"PGRC";
/// Receipt format version.
pub const RECEIPT_VERSION: u8 = 1;
/// Encoded receipt length.
pub const RECEIPT_LEN: usize = 4 + 1 + CARD_ID_LEN + 4 + 8 + 1 + 32 + SIGNATURE_LEN;
/// Domain separation prefix of the commitment.
pub const COMMITMENT_DOMAIN: &[u8] = b"palmgate erase commitment v1";

/// The fields of a deletion receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptFields {
    /// Card id.
    pub card_id: [u8; CARD_ID_LEN],
    /// How many erasures this card has done, this one included.
    pub erase_counter: u32,
    /// Time given by the gate (Unix seconds); the card has no clock of its own.
    pub gate_timestamp: u64,
    /// Slots that held a template.
    pub slots_erased: u8,
    /// Commitment to the erased content.
    pub commitment: [u8; 32],
}

/// A signed deletion receipt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DeletionReceipt {
    bytes: [u8; RECEIPT_LEN],
}

impl core::fmt::Debug for DeletionReceipt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("DeletionReceipt")
            .field(&self.fields())
            .finish()
    }
}

/// Incremental commitment over the erased slots.
pub struct Commitment(Sha256);

impl Default for Commitment {
    fn default() -> Self {
        Self::new()
    }
}

impl Commitment {
    /// Starts a commitment.
    pub fn new() -> Self {
        let mut hash = Sha256::new();
        hash.update(COMMITMENT_DOMAIN);
        Self(hash)
    }

    /// Adds one slot: `used | kind | template` (all zero for an empty slot).
    pub fn add_slot(&mut self, used: bool, kind: u8, template: &[u8]) {
        self.0.update([u8::from(used), kind]);
        self.0.update(template);
    }

    /// The commitment.
    pub fn finish(self) -> [u8; 32] {
        self.0.finalize().into()
    }
}

impl DeletionReceipt {
    const SIGNED_LEN: usize = RECEIPT_LEN - SIGNATURE_LEN;

    /// Builds and signs a receipt (run by the card).
    pub fn sign(fields: &ReceiptFields, card_key: &SigningKey) -> Self {
        let mut bytes = [0u8; RECEIPT_LEN];
        bytes[..4].copy_from_slice(&RECEIPT_MAGIC);
        bytes[4] = RECEIPT_VERSION;
        bytes[5..21].copy_from_slice(&fields.card_id);
        bytes[21..25].copy_from_slice(&fields.erase_counter.to_be_bytes());
        bytes[25..33].copy_from_slice(&fields.gate_timestamp.to_be_bytes());
        bytes[33] = fields.slots_erased;
        bytes[34..66].copy_from_slice(&fields.commitment);
        let signature = sign(card_key, &bytes[..Self::SIGNED_LEN]);
        bytes[Self::SIGNED_LEN..].copy_from_slice(&signature);
        Self { bytes }
    }

    /// Decodes (length, magic, version; not the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        let bytes: [u8; RECEIPT_LEN] = bytes.try_into().map_err(|_| CertError::Malformed)?;
        if bytes[..4] != RECEIPT_MAGIC || bytes[4] != RECEIPT_VERSION {
            return Err(CertError::Malformed);
        }
        Ok(Self { bytes })
    }

    /// The encoded receipt.
    pub fn as_bytes(&self) -> &[u8; RECEIPT_LEN] {
        &self.bytes
    }

    /// The receipt's fields (not yet verified).
    pub fn fields(&self) -> ReceiptFields {
        let b = &self.bytes;
        let mut card_id = [0u8; CARD_ID_LEN];
        card_id.copy_from_slice(&b[5..21]);
        let mut commitment = [0u8; 32];
        commitment.copy_from_slice(&b[34..66]);
        ReceiptFields {
            card_id,
            erase_counter: u32::from_be_bytes([b[21], b[22], b[23], b[24]]),
            gate_timestamp: u64::from_be_bytes([
                b[25], b[26], b[27], b[28], b[29], b[30], b[31], b[32],
            ]),
            slots_erased: b[33],
            commitment,
        }
    }

    /// Verifies the card signature.
    pub fn verify(&self, card_key: &VerifyingKey) -> Result<ReceiptFields, CertError> {
        verify(
            card_key,
            &self.bytes[..Self::SIGNED_LEN],
            &self.bytes[Self::SIGNED_LEN..],
        )?;
        Ok(self.fields())
    }
}
