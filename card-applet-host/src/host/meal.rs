//! Meal receipts on the host: the receipt as gates publish it (the card's signed receipt with the
//! card certificate, so that anyone holding the issuer public key can check it), its
//! verification, and a ledger that refuses replays.
//!
//! `MealReceipt::to_bytes()` = `signed meal receipt(103) | card certificate(158)` (261 bytes).

use std::collections::{BTreeMap, HashMap};

use crate::host::error::{MealReceiptError, ReplayError};
use crate::host::issuer::IssuerPublicKey;
use crate::protocol::CARD_ID_LEN;
use crate::protocol::cert::{CARD_CERT_LEN, CardCertificate};
use crate::protocol::meal::{
    MEAL_RECEIPT_LEN, MEAL_RECEIPT_SIGNED_LEN, MealReceiptFields, MealRequest, SignedMealReceipt,
};

/// Encoded length of a [`MealReceipt`] (receipt and certificate).
pub const MEAL_RECEIPT_BUNDLE_LEN: usize = MEAL_RECEIPT_LEN + CARD_CERT_LEN;

/// What REDEEM MEAL did.
// One outcome per meal, moved once: boxing the receipt would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MealOutcome {
    /// The meal is counted on the card; its receipt (card id and signature already checked
    /// against the session's verified card).
    Served(MealReceipt),
    /// The period's allowance is used up: nothing was counted.
    AllowanceUsed {
        /// Meals served in the period.
        count: u8,
        /// The allowance the gate applied.
        allowance: u8,
    },
    /// The card's applet predates meals (applet version below 1.2): nothing was counted. Such a
    /// card keeps working at doors.
    Unsupported,
}

/// A card-signed meal receipt with the certificate of the card that signed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MealReceipt {
    receipt: SignedMealReceipt,
    certificate: CardCertificate,
}

impl MealReceipt {
    /// Pairs a card's receipt with its certificate (not verified: see [`MealReceipt::verify`]).
    pub fn new(receipt: SignedMealReceipt, certificate: CardCertificate) -> Self {
        Self {
            receipt,
            certificate,
        }
    }

    /// `receipt(103) | certificate(158)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MEAL_RECEIPT_BUNDLE_LEN);
        out.extend_from_slice(self.receipt.as_bytes());
        out.extend_from_slice(self.certificate.as_bytes());
        out
    }

    /// Decodes (lengths, magics, versions; nothing verified yet).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MealReceiptError> {
        if bytes.len() != MEAL_RECEIPT_BUNDLE_LEN {
            return Err(MealReceiptError::Malformed("length is not 261 bytes"));
        }
        let (receipt, certificate) = bytes.split_at(MEAL_RECEIPT_LEN);
        Ok(Self {
            receipt: SignedMealReceipt::decode(receipt)
                .map_err(|_| MealReceiptError::Malformed("no meal receipt magic and version"))?,
            certificate: CardCertificate::decode(certificate).map_err(|_| {
                MealReceiptError::Malformed("no card certificate after the receipt")
            })?,
        })
    }

    /// The card's signed receipt.
    pub fn signed(&self) -> &SignedMealReceipt {
        &self.receipt
    }

    /// The certificate of the card that signed it.
    pub fn certificate(&self) -> &CardCertificate {
        &self.certificate
    }

    /// The receipt's fields, NOT verified (for display and matching; trust only
    /// [`MealReceipt::verify`]).
    pub fn unverified_fields(&self) -> MealReceiptFields {
        self.receipt.fields()
    }

    /// Whether it answers `request` (same period, allowance and gate time), e.g. to tell the
    /// receipt of a torn REDEEM MEAL from an earlier meal's.
    pub fn answers(&self, request: &MealRequest) -> bool {
        self.receipt.fields().answers(request)
    }

    /// Checks the chain issuer → card certificate → receipt, and that both name the same card.
    pub fn verify(
        &self,
        issuers: &[IssuerPublicKey],
    ) -> Result<VerifiedMealReceipt, MealReceiptError> {
        let issuer = issuers
            .iter()
            .find(|issuer| issuer.key_id() == self.certificate.issuer_key_id())
            .ok_or(MealReceiptError::Certificate(
                crate::protocol::cert::CertError::UnknownIssuer,
            ))?;
        let card_key = self
            .certificate
            .verify(issuer.verifying_key())
            .map_err(MealReceiptError::Certificate)?;
        let fields = self
            .receipt
            .verify(&card_key)
            .map_err(MealReceiptError::Signature)?;
        if fields.card_id != self.certificate.card_id() {
            return Err(MealReceiptError::CardIdMismatch);
        }
        Ok(VerifiedMealReceipt {
            fields,
            receipt: *self,
        })
    }
}

/// A meal receipt whose chain verified against a configured issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedMealReceipt {
    fields: MealReceiptFields,
    receipt: MealReceipt,
}

impl VerifiedMealReceipt {
    /// The signed fields.
    pub fn fields(&self) -> &MealReceiptFields {
        &self.fields
    }

    /// The receipt itself.
    pub fn receipt(&self) -> &MealReceipt {
        &self.receipt
    }
}

/// The meal receipts accepted so far, to refuse a replay.
///
/// A receipt is identified by its card id and receipt counter (a card never repeats a counter),
/// and compared by its signed bytes (an ECDSA signature can be re-encoded without the key, so a
/// replay may carry other signature bytes). Not "the last counter per card": gates that were
/// offline deliver their receipts late, out of order, and those are genuine.
#[derive(Debug, Default, Clone)]
pub struct MealReceiptLedger {
    seen: HashMap<[u8; CARD_ID_LEN], BTreeMap<u32, [u8; MEAL_RECEIPT_SIGNED_LEN]>>,
}

impl MealReceiptLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `receipt` if it was never accepted before, and remembers it.
    pub fn accept(&mut self, receipt: &VerifiedMealReceipt) -> Result<(), ReplayError> {
        let fields = receipt.fields();
        let mut signed = [0u8; MEAL_RECEIPT_SIGNED_LEN];
        signed.copy_from_slice(&receipt.receipt().signed().as_bytes()[..MEAL_RECEIPT_SIGNED_LEN]);
        let card = self.seen.entry(fields.card_id).or_default();
        match card.get(&fields.receipt_counter) {
            Some(earlier) if *earlier == signed => Err(ReplayError::Replayed {
                card_id: fields.card_id,
                receipt_counter: fields.receipt_counter,
            }),
            Some(_) => Err(ReplayError::CounterReused {
                card_id: fields.card_id,
                receipt_counter: fields.receipt_counter,
            }),
            None => {
                card.insert(fields.receipt_counter, signed);
                Ok(())
            }
        }
    }

    /// The highest receipt counter accepted from `card_id`.
    pub fn last_counter(&self, card_id: &[u8; CARD_ID_LEN]) -> Option<u32> {
        self.seen
            .get(card_id)
            .and_then(|counters| counters.keys().next_back().copied())
    }

    /// Receipts accepted.
    pub fn len(&self) -> usize {
        self.seen.values().map(BTreeMap::len).sum()
    }

    /// Whether no receipt was accepted.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}
