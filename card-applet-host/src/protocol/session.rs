//! Secure session key schedule and message protection, shared by the card and the gate.
//!
//! 1. The gate sends an ephemeral public key `G` and a nonce `Ng`; the card answers a nonce `Nc`.
//! 2. `transcript = SHA-256("palmgate session v1" | card_id | card public key | G | Ng | Nc)`.
//! 3. `Z` = x-coordinate of ECDH(card static key, G).
//! 4. `HKDF-SHA256(salt = transcript, IKM = Z, info = "palmgate session keys v1")` → 64 bytes:
//!    command key (32) then response key (32), both AES-256-GCM.
//! 5. Nonce = `direction(1) | 000000 | counter(u64 BE)`: direction `01` gate→card, `02` card→gate.
//!    Each direction starts at 0 and counts every protected message; a message is accepted only at
//!    the expected counter, so replayed or reordered messages fail authentication.
//! 6. The card proves it derived the keys (and so holds the certified private key) with response
//!    number 0: a GCM tag over an empty message with associated data `"confirm" | transcript`.
//! 7. Command AAD = `INS | P1 | P2`; response AAD = `INS | P1 | P2 | SW1 | SW2`: the status word is
//!    authenticated with the response.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce, Tag};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{CARD_ID_LEN, NONCE_LEN, PUBLIC_KEY_LEN, TAG_LEN};

/// Transcript hash domain.
pub const TRANSCRIPT_DOMAIN: &[u8] = b"palmgate session v1";
/// HKDF info.
pub const KEYS_INFO: &[u8] = b"palmgate session keys v1";
/// Key confirmation AAD prefix.
pub const CONFIRM_LABEL: &[u8] = b"confirm";
/// Authority proof domain: the enrolment station signs `domain | transcript`.
pub const AUTHORITY_DOMAIN: &[u8] = b"palmgate authority proof v1";
/// Direction byte of gate → card messages.
pub const DIRECTION_COMMAND: u8 = 0x01;
/// Direction byte of card → gate messages.
pub const DIRECTION_RESPONSE: u8 = 0x02;

/// A message failed authentication (tampered, replayed, reordered or from another session).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthenticationFailed;

/// The session transcript hash.
pub fn transcript_hash(
    card_id: &[u8; CARD_ID_LEN],
    card_public_key: &[u8; PUBLIC_KEY_LEN],
    gate_public_key: &[u8; PUBLIC_KEY_LEN],
    gate_nonce: &[u8; NONCE_LEN],
    card_nonce: &[u8; NONCE_LEN],
) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(TRANSCRIPT_DOMAIN);
    hash.update(card_id);
    hash.update(card_public_key);
    hash.update(gate_public_key);
    hash.update(gate_nonce);
    hash.update(card_nonce);
    hash.finalize().into()
}

/// The message an enrolment authority signs to prove itself in a session.
pub fn authority_message(transcript: &[u8; 32]) -> [u8; 59] {
    let mut message = [0u8; 59];
    message[..AUTHORITY_DOMAIN.len()].copy_from_slice(AUTHORITY_DOMAIN);
    message[AUTHORITY_DOMAIN.len()..].copy_from_slice(transcript);
    message
}

/// Session keys: command key then response key.
#[derive(Zeroize)]
#[zeroize(drop)]
pub struct SessionKeys {
    /// Gate → card key.
    pub command: [u8; 32],
    /// Card → gate key.
    pub response: [u8; 32],
}

impl core::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SessionKeys(REDACTED)")
    }
}

impl SessionKeys {
    /// HKDF-SHA256 with the transcript as salt and the ECDH x-coordinate as input key material.
    pub fn derive(shared_x: &[u8; 32], transcript: &[u8; 32]) -> Self {
        let mut okm = Zeroizing::new([0u8; 64]);
        let hkdf = Hkdf::<Sha256>::new(Some(transcript), shared_x);
        // 64 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
        if hkdf.expand(KEYS_INFO, okm.as_mut()).is_err() {
            unreachable!("HKDF output length is fixed and valid");
        }
        let mut keys = Self {
            command: [0; 32],
            response: [0; 32],
        };
        keys.command.copy_from_slice(&okm[..32]);
        keys.response.copy_from_slice(&okm[32..]);
        keys
    }
}

/// ECDH x-coordinate of `secret × public`.
pub fn ecdh(secret: &p256::NonZeroScalar, public: &p256::PublicKey) -> Zeroizing<[u8; 32]> {
    let shared = p256::ecdh::diffie_hellman(secret, public.as_affine());
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(shared.raw_secret_bytes());
    out
}

/// Per-direction AES-256-GCM with message counters.
pub struct SecureChannel {
    command: Aes256Gcm,
    response: Aes256Gcm,
    command_counter: u64,
    response_counter: u64,
}

impl core::fmt::Debug for SecureChannel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SecureChannel")
            .field("command_counter", &self.command_counter)
            .field("response_counter", &self.response_counter)
            .finish_non_exhaustive()
    }
}

/// The AES-GCM nonce of message `counter` in `direction`: `direction || 00 00 00 || counter`.
pub fn nonce_bytes(direction: u8, counter: u64) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[0] = direction;
    bytes[4..].copy_from_slice(&counter.to_be_bytes());
    bytes
}

fn nonce(direction: u8, counter: u64) -> Nonce<aes_gcm::aead::consts::U12> {
    Nonce::from(nonce_bytes(direction, counter))
}

impl SecureChannel {
    /// A channel at counters 0 / 0.
    pub fn new(keys: &SessionKeys) -> Self {
        Self {
            command: Aes256Gcm::new(&Key::<Aes256Gcm>::from(keys.command)),
            response: Aes256Gcm::new(&Key::<Aes256Gcm>::from(keys.response)),
            command_counter: 0,
            response_counter: 0,
        }
    }

    fn seal(
        cipher: &Aes256Gcm,
        direction: u8,
        counter: &mut u64,
        aad: &[u8],
        buffer: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let nonce = nonce(direction, *counter);
        *counter = counter.wrapping_add(1);
        // Only fails for messages longer than 64 GiB.
        match cipher.encrypt_inout_detached(&nonce, aad, buffer.into()) {
            Ok(tag) => tag.into(),
            Err(_) => [0; TAG_LEN],
        }
    }

    fn open(
        cipher: &Aes256Gcm,
        direction: u8,
        counter: &mut u64,
        aad: &[u8],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        let nonce = nonce(direction, *counter);
        *counter = counter.wrapping_add(1);
        cipher
            .decrypt_inout_detached(&nonce, aad, buffer.into(), &Tag::from(*tag))
            .map_err(|_| AuthenticationFailed)
    }

    /// Card side: key confirmation (response number 0).
    pub fn confirmation(&mut self, transcript: &[u8; 32]) -> [u8; TAG_LEN] {
        let aad = confirmation_aad(transcript);
        Self::seal(
            &self.response,
            DIRECTION_RESPONSE,
            &mut self.response_counter,
            &aad,
            &mut [],
        )
    }

    /// Gate side: checks the key confirmation.
    pub fn check_confirmation(
        &mut self,
        transcript: &[u8; 32],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        let aad = confirmation_aad(transcript);
        Self::open(
            &self.response,
            DIRECTION_RESPONSE,
            &mut self.response_counter,
            &aad,
            &mut [],
            tag,
        )
    }

    /// Gate side: encrypts command data in place, returns the tag.
    pub fn seal_command(&mut self, header: [u8; 3], buffer: &mut [u8]) -> [u8; TAG_LEN] {
        Self::seal(
            &self.command,
            DIRECTION_COMMAND,
            &mut self.command_counter,
            &header,
            buffer,
        )
    }

    /// Card side: decrypts command data in place.
    pub fn open_command(
        &mut self,
        header: [u8; 3],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        Self::open(
            &self.command,
            DIRECTION_COMMAND,
            &mut self.command_counter,
            &header,
            buffer,
            tag,
        )
    }

    /// Card side: counts a command the card could not even hold (secure data over
    /// [`crate::protocol::MAX_COMMAND_DATA`] bytes) as received, so that its encrypted answer and
    /// the next command keep both sides' counters in step.
    pub fn skip_command(&mut self) {
        self.command_counter = self.command_counter.wrapping_add(1);
    }

    /// Card side: encrypts response data in place, returns the tag.
    pub fn seal_response(
        &mut self,
        header: [u8; 3],
        sw: [u8; 2],
        buffer: &mut [u8],
    ) -> [u8; TAG_LEN] {
        let aad = response_aad(header, sw);
        Self::seal(
            &self.response,
            DIRECTION_RESPONSE,
            &mut self.response_counter,
            &aad,
            buffer,
        )
    }

    /// Gate side: decrypts response data in place.
    pub fn open_response(
        &mut self,
        header: [u8; 3],
        sw: [u8; 2],
        buffer: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AuthenticationFailed> {
        let aad = response_aad(header, sw);
        Self::open(
            &self.response,
            DIRECTION_RESPONSE,
            &mut self.response_counter,
            &aad,
            buffer,
            tag,
        )
    }
}

fn confirmation_aad(transcript: &[u8; 32]) -> [u8; 39] {
    let mut aad = [0u8; 39];
    aad[..CONFIRM_LABEL.len()].copy_from_slice(CONFIRM_LABEL);
    aad[CONFIRM_LABEL.len()..].copy_from_slice(transcript);
    aad
}

fn response_aad(header: [u8; 3], sw: [u8; 2]) -> [u8; 5] {
    [header[0], header[1], header[2], sw[0], sw[1]]
}
