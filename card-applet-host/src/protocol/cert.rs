//! Compact fixed-size certificates (no ASN.1): the card certificate and the enrolment authority
//! certificate, both ECDSA P-256 / SHA-256 signatures by the issuer key.
//!
//! Card certificate (158 bytes): `"PGCC" | version 01 | card_id(16) | card public key(65) |
//! issuer key id(8) | signature(64)`.
//! Authority certificate (143 bytes): `"PGAC" | version 01 | permissions(1) | authority public key(65) |
//! issuer key id(8) | signature(64)`.
//! The signature covers every byte before it. The issuer key id is the first 8 bytes of
//! SHA-256 over the issuer's uncompressed public key.

use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{CARD_ID_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN};

/// Card certificate magic.
pub const CARD_CERT_MAGIC: [u8; 4] = *b"PGCC";
/// Authority certificate magic.
pub const AUTHORITY_CERT_MAGIC: [u8; 4] = *b"PGAC";
/// Certificate format version.
pub const CERT_VERSION: u8 = 1;
/// Issuer key id length.
pub const KEY_ID_LEN: usize = 8;
/// Encoded card certificate length.
pub const CARD_CERT_LEN: usize = 4 + 1 + CARD_ID_LEN + PUBLIC_KEY_LEN + KEY_ID_LEN + SIGNATURE_LEN;
/// Encoded authority certificate length.
pub const AUTHORITY_CERT_LEN: usize = 4 + 1 + 1 + PUBLIC_KEY_LEN + KEY_ID_LEN + SIGNATURE_LEN;

/// Why a certificate, receipt or signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertError {
    /// Wrong length, magic or version.
    Malformed,
    /// A public key is not a valid P-256 point.
    BadPublicKey,
    /// Signed by another issuer (key id differs).
    UnknownIssuer,
    /// The signature does not verify.
    BadSignature,
}

impl core::error::Error for CertError {}

impl core::fmt::Display for CertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed certificate or receipt",
            Self::BadPublicKey => "invalid P-256 public key",
            Self::UnknownIssuer => "signed by an issuer that is not configured",
            Self::BadSignature => "signature does not verify",
        })
    }
}

/// Issuer key id: first 8 bytes of SHA-256 over the uncompressed public key.
pub fn key_id(public_key: &[u8; PUBLIC_KEY_LEN]) -> [u8; KEY_ID_LEN] {
    let digest = Sha256::digest(public_key);
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    id
}

/// Uncompressed SEC1 encoding of a verifying key.
pub fn encode_public_key(key: &VerifyingKey) -> [u8; PUBLIC_KEY_LEN] {
    let point = key.to_sec1_point(false);
    let mut out = [0u8; PUBLIC_KEY_LEN];
    out.copy_from_slice(point.as_bytes());
    out
}

/// Decodes an uncompressed SEC1 public key.
pub fn decode_public_key(bytes: &[u8]) -> Result<VerifyingKey, CertError> {
    if bytes.len() != PUBLIC_KEY_LEN || bytes[0] != 0x04 {
        return Err(CertError::BadPublicKey);
    }
    VerifyingKey::from_sec1_bytes(bytes).map_err(|_| CertError::BadPublicKey)
}

/// Signs `message` (ECDSA P-256, SHA-256, deterministic nonces), returning `r || s`.
pub fn sign(key: &SigningKey, message: &[u8]) -> [u8; SIGNATURE_LEN] {
    let signature: Signature = key.sign(message);
    let mut out = [0u8; SIGNATURE_LEN];
    out.copy_from_slice(&signature.to_bytes());
    out
}

/// Verifies a raw `r || s` signature over `message`.
pub fn verify(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> Result<(), CertError> {
    let signature = Signature::from_slice(signature).map_err(|_| CertError::BadSignature)?;
    key.verify(message, &signature)
        .map_err(|_| CertError::BadSignature)
}

/// An issuer-signed card certificate: binds a card id to the card's public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CardCertificate {
    bytes: [u8; CARD_CERT_LEN],
}

impl core::fmt::Debug for CardCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CardCertificate")
            .field("card_id", &self.card_id())
            .field("issuer_key_id", &self.issuer_key_id())
            .finish_non_exhaustive()
    }
}

impl CardCertificate {
    const SIGNED_LEN: usize = CARD_CERT_LEN - SIGNATURE_LEN;

    /// Issues a certificate (run by the issuer).
    pub fn issue(
        card_id: &[u8; CARD_ID_LEN],
        card_public_key: &[u8; PUBLIC_KEY_LEN],
        issuer: &SigningKey,
    ) -> Self {
        let mut bytes = [0u8; CARD_CERT_LEN];
        bytes[..4].copy_from_slice(&CARD_CERT_MAGIC);
        bytes[4] = CERT_VERSION;
        bytes[5..21].copy_from_slice(card_id);
        bytes[21..86].copy_from_slice(card_public_key);
        bytes[86..94].copy_from_slice(&key_id(&encode_public_key(issuer.verifying_key())));
        let signature = sign(issuer, &bytes[..Self::SIGNED_LEN]);
        bytes[Self::SIGNED_LEN..].copy_from_slice(&signature);
        Self { bytes }
    }

    /// Decodes (checks length, magic and version; not the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        let bytes: [u8; CARD_CERT_LEN] = bytes.try_into().map_err(|_| CertError::Malformed)?;
        if bytes[..4] != CARD_CERT_MAGIC || bytes[4] != CERT_VERSION {
            return Err(CertError::Malformed);
        }
        Ok(Self { bytes })
    }

    /// The encoded certificate.
    pub fn as_bytes(&self) -> &[u8; CARD_CERT_LEN] {
        &self.bytes
    }

    /// Card id.
    pub fn card_id(&self) -> [u8; CARD_ID_LEN] {
        let mut id = [0u8; CARD_ID_LEN];
        id.copy_from_slice(&self.bytes[5..21]);
        id
    }

    /// Card public key (uncompressed SEC1).
    pub fn card_public_key(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut key = [0u8; PUBLIC_KEY_LEN];
        key.copy_from_slice(&self.bytes[21..86]);
        key
    }

    /// Key id of the issuer that signed it.
    pub fn issuer_key_id(&self) -> [u8; KEY_ID_LEN] {
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&self.bytes[86..94]);
        id
    }

    /// Verifies the issuer signature and returns the card's public key.
    pub fn verify(&self, issuer: &VerifyingKey) -> Result<VerifyingKey, CertError> {
        if self.issuer_key_id() != key_id(&encode_public_key(issuer)) {
            return Err(CertError::UnknownIssuer);
        }
        verify(
            issuer,
            &self.bytes[..Self::SIGNED_LEN],
            &self.bytes[Self::SIGNED_LEN..],
        )?;
        decode_public_key(&self.bytes[21..86])
    }
}

/// An issuer-signed enrolment authority certificate: the issuer allows the holder of the authority
/// key to enrol, set policy, reset and erase (as its permission bits say).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthorityCertificate {
    bytes: [u8; AUTHORITY_CERT_LEN],
}

impl core::fmt::Debug for AuthorityCertificate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AuthorityCertificate")
            .field("permissions", &self.permissions())
            .field("issuer_key_id", &self.issuer_key_id())
            .finish_non_exhaustive()
    }
}

impl AuthorityCertificate {
    const SIGNED_LEN: usize = AUTHORITY_CERT_LEN - SIGNATURE_LEN;

    /// Issues an authority certificate (run by the issuer).
    pub fn issue(
        authority_public_key: &[u8; PUBLIC_KEY_LEN],
        permissions: u8,
        issuer: &SigningKey,
    ) -> Self {
        let mut bytes = [0u8; AUTHORITY_CERT_LEN];
        bytes[..4].copy_from_slice(&AUTHORITY_CERT_MAGIC);
        bytes[4] = CERT_VERSION;
        bytes[5] = permissions;
        bytes[6..71].copy_from_slice(authority_public_key);
        bytes[71..79].copy_from_slice(&key_id(&encode_public_key(issuer.verifying_key())));
        let signature = sign(issuer, &bytes[..Self::SIGNED_LEN]);
        bytes[Self::SIGNED_LEN..].copy_from_slice(&signature);
        Self { bytes }
    }

    /// Decodes (checks length, magic and version; not the signature).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        let bytes: [u8; AUTHORITY_CERT_LEN] = bytes.try_into().map_err(|_| CertError::Malformed)?;
        if bytes[..4] != AUTHORITY_CERT_MAGIC || bytes[4] != CERT_VERSION {
            return Err(CertError::Malformed);
        }
        Ok(Self { bytes })
    }

    /// The encoded certificate.
    pub fn as_bytes(&self) -> &[u8; AUTHORITY_CERT_LEN] {
        &self.bytes
    }

    /// Permission bits ([`super::permission`]).
    pub fn permissions(&self) -> u8 {
        self.bytes[5]
    }

    /// Key id of the issuer that signed it.
    pub fn issuer_key_id(&self) -> [u8; KEY_ID_LEN] {
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&self.bytes[71..79]);
        id
    }

    /// Verifies the issuer signature and returns the authority's public key.
    pub fn verify(&self, issuer: &VerifyingKey) -> Result<VerifyingKey, CertError> {
        if self.issuer_key_id() != key_id(&encode_public_key(issuer)) {
            return Err(CertError::UnknownIssuer);
        }
        verify(
            issuer,
            &self.bytes[..Self::SIGNED_LEN],
            &self.bytes[Self::SIGNED_LEN..],
        )?;
        decode_public_key(&self.bytes[6..71])
    }
}
