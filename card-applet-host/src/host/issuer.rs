//! Issuer (site) keys, enrolment authorities and their files.
//!
//! `palmgate issuer init --out DIR` writes:
//! - `issuer.key`: the issuer private key (hex, mode 0600): signs card and authority certificates;
//! - `issuer.pub`: the issuer public key (hex, uncompressed SEC1): the trust anchor gates configure;
//! - `authority.key` (hex, 0600) and `authority.cert` (hex): an enrolment authority for this
//!   station, allowed to enrol, set policy, reset the retry counter and erase.

use std::path::{Path, PathBuf};

use p256::ecdsa::{SigningKey, VerifyingKey};
use p256::elliptic_curve::Generate;
use zeroize::Zeroizing;

use crate::host::platform::system_rng;
use crate::protocol::cert::{
    AuthorityCertificate, CardCertificate, CertError, KEY_ID_LEN, decode_public_key,
    encode_public_key, key_id, sign,
};
use crate::protocol::session::authority_message;
use crate::protocol::{CARD_ID_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN, permission};

/// File names inside an issuer directory.
pub mod files {
    /// Issuer private key.
    pub const ISSUER_KEY: &str = "issuer.key";
    /// Issuer public key.
    pub const ISSUER_PUB: &str = "issuer.pub";
    /// Enrolment authority private key.
    pub const AUTHORITY_KEY: &str = "authority.key";
    /// Enrolment authority certificate.
    pub const AUTHORITY_CERT: &str = "authority.cert";
}

/// The issuer's private key. Zeroized on drop; `Debug` prints `REDACTED`.
#[derive(Clone)]
pub struct IssuerKey {
    key: SigningKey,
}

impl std::fmt::Debug for IssuerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuerKey(REDACTED)")
    }
}

impl IssuerKey {
    /// A new random issuer key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate_from_rng(&mut system_rng()),
        }
    }

    /// From the 32-byte private scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertError> {
        SigningKey::from_slice(bytes)
            .map(|key| Self { key })
            .map_err(|_| CertError::BadPublicKey)
    }

    /// The 32-byte private scalar.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes().into())
    }

    /// The public key.
    pub fn public_key(&self) -> IssuerPublicKey {
        IssuerPublicKey::from_verifying_key(*self.key.verifying_key())
    }

    /// Certifies a card key (personalisation).
    pub fn certify_card(
        &self,
        card_id: &[u8; CARD_ID_LEN],
        card_public_key: &[u8; PUBLIC_KEY_LEN],
    ) -> CardCertificate {
        CardCertificate::issue(card_id, card_public_key, &self.key)
    }

    /// Creates an enrolment authority with a fresh key and the given permission bits.
    pub fn create_authority(&self, permissions: u8) -> EnrolmentAuthority {
        let key = SigningKey::generate_from_rng(&mut system_rng());
        let certificate = AuthorityCertificate::issue(
            &encode_public_key(key.verifying_key()),
            permissions,
            &self.key,
        );
        EnrolmentAuthority { key, certificate }
    }
}

/// An issuer public key: the trust anchor for card certificates.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IssuerPublicKey {
    key: VerifyingKey,
    bytes: [u8; PUBLIC_KEY_LEN],
}

impl std::fmt::Debug for IssuerPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "IssuerPublicKey({})", hex::encode(self.key_id()))
    }
}

impl IssuerPublicKey {
    fn from_verifying_key(key: VerifyingKey) -> Self {
        Self {
            bytes: encode_public_key(&key),
            key,
        }
    }

    /// From the uncompressed SEC1 encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CertError> {
        decode_public_key(bytes).map(Self::from_verifying_key)
    }

    /// From hex text (whitespace around it ignored).
    pub fn from_hex(text: &str) -> Result<Self, CertError> {
        let bytes = hex::decode(text.trim()).map_err(|_| CertError::BadPublicKey)?;
        Self::from_bytes(&bytes)
    }

    /// Uncompressed SEC1 encoding.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        self.bytes
    }

    /// Key id (first 8 bytes of SHA-256 over the encoding).
    pub fn key_id(&self) -> [u8; KEY_ID_LEN] {
        key_id(&self.bytes)
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// An enrolment authority: a key certified by the issuer, which proves itself to a card by signing
/// the session transcript. Zeroized on drop; `Debug` prints `REDACTED` for the key.
#[derive(Clone)]
pub struct EnrolmentAuthority {
    key: SigningKey,
    certificate: AuthorityCertificate,
}

impl std::fmt::Debug for EnrolmentAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolmentAuthority")
            .field("key", &"REDACTED")
            .field("certificate", &self.certificate)
            .finish()
    }
}

impl EnrolmentAuthority {
    /// From its private key and certificate (checks that they belong together).
    pub fn new(key_bytes: &[u8], certificate: AuthorityCertificate) -> Result<Self, CertError> {
        let key = SigningKey::from_slice(key_bytes).map_err(|_| CertError::BadPublicKey)?;
        if certificate.as_bytes()[6..71] != encode_public_key(key.verifying_key()) {
            return Err(CertError::Malformed);
        }
        Ok(Self { key, certificate })
    }

    /// An authority whose certificate was signed by someone else (for tests of refusal).
    pub fn with_certificate(&self, certificate: AuthorityCertificate) -> Self {
        Self {
            key: self.key.clone(),
            certificate,
        }
    }

    /// The certificate.
    pub fn certificate(&self) -> &AuthorityCertificate {
        &self.certificate
    }

    /// The 32-byte private scalar.
    pub fn key_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.key.to_bytes().into())
    }

    /// Signs a session transcript.
    pub fn prove(&self, transcript: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
        sign(&self.key, &authority_message(transcript))
    }
}

/// Reading or writing issuer files failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerFileError {
    /// I/O failed.
    #[error("{path}: I/O error")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The content is invalid.
    #[error("{path}: invalid content")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: CertError,
    },
    /// `init` would overwrite an existing issuer.
    #[error("{path} already exists: refusing to overwrite an issuer")]
    Exists {
        /// File.
        path: PathBuf,
    },
}

fn read_hex(path: &Path) -> Result<Zeroizing<Vec<u8>>, IssuerFileError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| IssuerFileError::Io {
                path: path.into(),
                source,
            })?,
        );
    hex::decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|_| IssuerFileError::Invalid {
            path: path.into(),
            source: CertError::Malformed,
        })
}

fn write_file(path: &Path, content: &str, secret: bool) -> Result<(), IssuerFileError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, if secret { 0o600 } else { 0o644 });
    let io = |source| IssuerFileError::Io {
        path: path.into(),
        source,
    };
    let mut file = options.open(path).map_err(io)?;
    file.write_all(content.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Creates a new issuer in `dir` (created if missing): issuer key pair and an enrolment authority
/// with every permission. Refuses to overwrite.
pub fn init_issuer_dir(dir: &Path) -> Result<(IssuerKey, EnrolmentAuthority), IssuerFileError> {
    std::fs::create_dir_all(dir).map_err(|source| IssuerFileError::Io {
        path: dir.into(),
        source,
    })?;
    for name in [
        files::ISSUER_KEY,
        files::ISSUER_PUB,
        files::AUTHORITY_KEY,
        files::AUTHORITY_CERT,
    ] {
        let path = dir.join(name);
        if path.exists() {
            return Err(IssuerFileError::Exists { path });
        }
    }
    let issuer = IssuerKey::generate();
    let authority = issuer.create_authority(permission::ALL);
    write_file(
        &dir.join(files::ISSUER_KEY),
        &format!("{}\n", hex::encode(issuer.to_bytes().as_ref())),
        true,
    )?;
    write_file(
        &dir.join(files::ISSUER_PUB),
        &format!("{}\n", hex::encode(issuer.public_key().to_bytes())),
        false,
    )?;
    write_file(
        &dir.join(files::AUTHORITY_KEY),
        &format!("{}\n", hex::encode(authority.key_bytes().as_ref())),
        true,
    )?;
    write_file(
        &dir.join(files::AUTHORITY_CERT),
        &format!("{}\n", hex::encode(authority.certificate().as_bytes())),
        false,
    )?;
    Ok((issuer, authority))
}

/// Loads the issuer public key (`DIR/issuer.pub`).
pub fn load_issuer_public_key(dir: &Path) -> Result<IssuerPublicKey, IssuerFileError> {
    let path = dir.join(files::ISSUER_PUB);
    let bytes = read_hex(&path)?;
    IssuerPublicKey::from_bytes(&bytes).map_err(|source| IssuerFileError::Invalid { path, source })
}

/// Loads the issuer private key (`DIR/issuer.key`).
pub fn load_issuer_key(dir: &Path) -> Result<IssuerKey, IssuerFileError> {
    let path = dir.join(files::ISSUER_KEY);
    let bytes = read_hex(&path)?;
    IssuerKey::from_bytes(&bytes).map_err(|source| IssuerFileError::Invalid { path, source })
}

/// Loads the enrolment authority (`DIR/authority.key`, `DIR/authority.cert`).
pub fn load_authority(dir: &Path) -> Result<EnrolmentAuthority, IssuerFileError> {
    let cert_path = dir.join(files::AUTHORITY_CERT);
    let cert_bytes = read_hex(&cert_path)?;
    let certificate =
        AuthorityCertificate::decode(&cert_bytes).map_err(|source| IssuerFileError::Invalid {
            path: cert_path.clone(),
            source,
        })?;
    let key_path = dir.join(files::AUTHORITY_KEY);
    let key_bytes = read_hex(&key_path)?;
    EnrolmentAuthority::new(&key_bytes, certificate).map_err(|source| IssuerFileError::Invalid {
        path: key_path,
        source,
    })
}
