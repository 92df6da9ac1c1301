//! REDEEM MEAL (secure, INS `54`): the request, the card's refusal answers and the meal receipt,
//! signed with the card key (see `docs/applet-protocol.md` §2 and §4).
//!
//! Request (13 bytes): `period(u32 BE) | allowance(1, 1..=255) | gate time(u64 BE, Unix seconds)`.
//!
//! Meal receipt (103 bytes): `"PGMR" | version 01 | card id(16) | period(u32 BE) |
//! count after(1) | allowance(1) | gate time(u64 BE) | receipt counter(u32 BE) | signature(64)`,
//! signed by the card key over the first 39 bytes. The magic is the domain tag: it is part of the
//! signed bytes, and a deletion receipt's signed bytes start with `"PGRC"`, so a signature of one
//! kind never verifies as the other.

use p256::ecdsa::{SigningKey, VerifyingKey};

use super::cert::{CertError, sign, verify};
use super::{CARD_ID_LEN, SIGNATURE_LEN};

/// Encoded request length.
pub const MEAL_REQUEST_LEN: usize = 4 + 1 + 8;
/// Meal receipt magic (the domain tag of its signature).
pub const MEAL_RECEIPT_MAGIC: [u8; 4] = *b"PGMR";
/// Meal receipt format version.
pub const MEAL_RECEIPT_VERSION: u8 = 1;
/// Bytes of a meal receipt covered by the card signature.
pub const MEAL_RECEIPT_SIGNED_LEN: usize = 4 + 1 + CARD_ID_LEN + 4 + 1 + 1 + 8 + 4;
/// Encoded meal receipt length.
pub const MEAL_RECEIPT_LEN: usize = MEAL_RECEIPT_SIGNED_LEN + SIGNATURE_LEN;
/// Answer data with `6984` (allowance used): `count(1) | allowance(1)`.
pub const ALLOWANCE_USED_LEN: usize = 2;
/// Answer data with `6985` (period older than the card's): the card's period (u32 BE).
pub const PERIOD_BEHIND_LEN: usize = 4;

/// What a gate asks the card for: one meal of `period`, if fewer than `allowance` were served in
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MealRequest {
    /// The meal period (grows with time; the card refuses one older than its last).
    pub period: u32,
    /// Meals allowed in the period (1..=255).
    pub allowance: u8,
    /// The gate's time (Unix seconds), recorded in the receipt; the card has no clock of its own.
    pub gate_time: u64,
}

/// Why request bytes were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MealRequestError {
    /// Not [`MEAL_REQUEST_LEN`] bytes.
    Length,
    /// An allowance of 0 (a gate with nothing to serve must not ask).
    ZeroAllowance,
}

impl core::error::Error for MealRequestError {}

impl core::fmt::Display for MealRequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Length => "meal request is not 13 bytes",
            Self::ZeroAllowance => "meal allowance must be 1..=255",
        })
    }
}

impl MealRequest {
    /// Encodes: `period | allowance | gate time`.
    pub fn encode(&self) -> [u8; MEAL_REQUEST_LEN] {
        let mut out = [0u8; MEAL_REQUEST_LEN];
        out[..4].copy_from_slice(&self.period.to_be_bytes());
        out[4] = self.allowance;
        out[5..].copy_from_slice(&self.gate_time.to_be_bytes());
        out
    }

    /// Decodes and checks the allowance.
    pub fn decode(bytes: &[u8]) -> Result<Self, MealRequestError> {
        let bytes: &[u8; MEAL_REQUEST_LEN] =
            bytes.try_into().map_err(|_| MealRequestError::Length)?;
        let [p0, p1, p2, p3, allowance, t @ ..] = *bytes;
        if allowance == 0 {
            return Err(MealRequestError::ZeroAllowance);
        }
        Ok(Self {
            period: u32::from_be_bytes([p0, p1, p2, p3]),
            allowance,
            gate_time: u64::from_be_bytes(t),
        })
    }
}

/// `6984` answer data: `count | allowance`.
pub fn encode_allowance_used(count: u8, allowance: u8) -> [u8; ALLOWANCE_USED_LEN] {
    [count, allowance]
}

/// Decodes `6984` answer data into `(count, allowance)`.
pub fn decode_allowance_used(bytes: &[u8]) -> Option<(u8, u8)> {
    match bytes {
        [count, allowance] => Some((*count, *allowance)),
        _ => None,
    }
}

/// `6985` answer data: the card's last period.
pub fn encode_period_behind(card_period: u32) -> [u8; PERIOD_BEHIND_LEN] {
    card_period.to_be_bytes()
}

/// Decodes `6985` answer data into the card's last period.
pub fn decode_period_behind(bytes: &[u8]) -> Option<u32> {
    <[u8; PERIOD_BEHIND_LEN]>::try_from(bytes)
        .ok()
        .map(u32::from_be_bytes)
}

/// The fields of a meal receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MealReceiptFields {
    /// Card id.
    pub card_id: [u8; CARD_ID_LEN],
    /// The period the meal was served in.
    pub period: u32,
    /// Meals served in the period, this one included.
    pub count: u8,
    /// The allowance the gate applied.
    pub allowance: u8,
    /// The gate's time (Unix seconds).
    pub gate_time: u64,
    /// The card's receipt counter: strictly increasing over the card's life, never repeated.
    pub receipt_counter: u32,
}

impl MealReceiptFields {
    /// Whether these fields answer `request` (same period, allowance and gate time).
    pub fn answers(&self, request: &MealRequest) -> bool {
        self.period == request.period
            && self.allowance == request.allowance
            && self.gate_time == request.gate_time
    }
}

/// A meal receipt as the card signs it (without the card certificate).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignedMealReceipt {
    bytes: [u8; MEAL_RECEIPT_LEN],
}

impl core::fmt::Debug for SignedMealReceipt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("SignedMealReceipt")
            .field(&self.fields())
            .finish()
    }
}

impl SignedMealReceipt {
    /// Builds and signs a receipt (run by the card).
    pub fn sign(fields: &MealReceiptFields, card_key: &SigningKey) -> Self {
        let mut bytes = [0u8; MEAL_RECEIPT_LEN];
        bytes[..4].copy_from_slice(&MEAL_RECEIPT_MAGIC);
        bytes[4] = MEAL_RECEIPT_VERSION;
        bytes[5..21].copy_from_slice(&fields.card_id);
        bytes[21..25].copy_from_slice(&fields.period.to_be_bytes());
        bytes[25] = fields.count;
        bytes[26] = fields.allowance;
        bytes[27..35].copy_from_slice(&fields.gate_time.to_be_bytes());
        bytes[35..39].copy_from_slice(&fields.receipt_counter.to_be_bytes());
        let signature = sign(card_key, &bytes[..MEAL_RECEIPT_SIGNED_LEN]);
        bytes[MEAL_RECEIPT_SIGNED_LEN..].copy_from_slice(&signature);
        Self { bytes }
    }

    /// Decodes (length, magic, version; not the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        let bytes: [u8; MEAL_RECEIPT_LEN] = bytes.try_into().map_err(|_| CertError::Malformed)?;
        if bytes[..4] != MEAL_RECEIPT_MAGIC || bytes[4] != MEAL_RECEIPT_VERSION {
            return Err(CertError::Malformed);
        }
        Ok(Self { bytes })
    }

    /// The encoded receipt.
    pub fn as_bytes(&self) -> &[u8; MEAL_RECEIPT_LEN] {
        &self.bytes
    }

    /// The receipt's fields (not yet verified).
    pub fn fields(&self) -> MealReceiptFields {
        let b = &self.bytes;
        let mut card_id = [0u8; CARD_ID_LEN];
        card_id.copy_from_slice(&b[5..21]);
        let mut gate_time = [0u8; 8];
        gate_time.copy_from_slice(&b[27..35]);
        MealReceiptFields {
            card_id,
            period: u32::from_be_bytes([b[21], b[22], b[23], b[24]]),
            count: b[25],
            allowance: b[26],
            gate_time: u64::from_be_bytes(gate_time),
            receipt_counter: u32::from_be_bytes([b[35], b[36], b[37], b[38]]),
        }
    }

    /// Verifies the card signature.
    pub fn verify(&self, card_key: &VerifyingKey) -> Result<MealReceiptFields, CertError> {
        verify(
            card_key,
            &self.bytes[..MEAL_RECEIPT_SIGNED_LEN],
            &self.bytes[MEAL_RECEIPT_SIGNED_LEN..],
        )?;
        Ok(self.fields())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes() {
        let request = MealRequest {
            period: 0x0004_5A21,
            allowance: 2,
            gate_time: 1_764_000_000,
        };
        let bytes = request.encode();
        assert_eq!(
            bytes,
            [
                0x00, 0x04, 0x5A, 0x21, 0x02, 0, 0, 0, 0, 0x69, 0x24, 0x81, 0x00
            ]
        );
        assert_eq!(MealRequest::decode(&bytes), Ok(request));
        assert_eq!(
            MealRequest::decode(&bytes[..12]),
            Err(MealRequestError::Length)
        );
        let mut zero = bytes;
        zero[4] = 0;
        assert_eq!(
            MealRequest::decode(&zero),
            Err(MealRequestError::ZeroAllowance)
        );
    }

    #[test]
    fn refusal_answers() {
        assert_eq!(encode_allowance_used(1, 1), [1, 1]);
        assert_eq!(decode_allowance_used(&[2, 3]), Some((2, 3)));
        assert_eq!(decode_allowance_used(&[2]), None);
        assert_eq!(encode_period_behind(0x0102_0304), [1, 2, 3, 4]);
        assert_eq!(decode_period_behind(&[1, 2, 3, 4]), Some(0x0102_0304));
        assert_eq!(decode_period_behind(&[1, 2, 3]), None);
    }

    #[test]
    fn receipt_layout_and_signature() {
        let key = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let fields = MealReceiptFields {
            card_id: [0xAB; 16],
            period: 0x0004_5A21,
            count: 1,
            allowance: 2,
            gate_time: 1_764_000_000,
            receipt_counter: 0x0000_0102,
        };
        let receipt = SignedMealReceipt::sign(&fields, &key);
        let b = receipt.as_bytes();
        assert_eq!(&b[..5], b"PGMR\x01");
        assert_eq!(&b[5..21], &[0xAB; 16]);
        assert_eq!(&b[21..27], &[0x00, 0x04, 0x5A, 0x21, 1, 2]);
        assert_eq!(
            &b[27..39],
            &[0, 0, 0, 0, 0x69, 0x24, 0x81, 0x00, 0, 0, 1, 2]
        );
        assert_eq!(receipt.verify(key.verifying_key()), Ok(fields));
        assert_eq!(SignedMealReceipt::decode(b), Ok(receipt));
        let mut altered = *b;
        altered[25] = 0;
        let altered = SignedMealReceipt::decode(&altered).unwrap();
        assert_eq!(
            altered.verify(key.verifying_key()),
            Err(CertError::BadSignature)
        );
        let mut other_magic = *b;
        other_magic[..4].copy_from_slice(b"PGRC");
        assert_eq!(
            SignedMealReceipt::decode(&other_magic),
            Err(CertError::Malformed)
        );
        assert_eq!(
            SignedMealReceipt::decode(&b[..MEAL_RECEIPT_LEN - 1]),
            Err(CertError::Malformed)
        );
    }
}
