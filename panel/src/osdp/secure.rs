//! The OSDP secure channel (AES-128).
//!
//! - SCBK: the PD's 16-byte base key, installed by the CP with `osdp_KEYSET`. SCBK-D
//!   (`30 31 … 3F`) is the published default, accepted only while the PD is in install mode.
//! - Session keys, from the CP's random RND.A: `S-ENC = AES(SCBK, 01 82 RND.A[0..6] 00…)`,
//!   `S-MAC1 = AES(SCBK, 01 01 RND.A[0..6] 00…)`, `S-MAC2 = AES(SCBK, 01 02 RND.A[0..6] 00…)`.
//! - Client cryptogram (PD → CP in `osdp_CCRYPT`): `AES(S-ENC, RND.A ‖ RND.B)`; server cryptogram
//!   (CP → PD in `osdp_SCRYPT`): `AES(S-ENC, RND.B ‖ RND.A)`; initial R-MAC (PD → CP in
//!   `osdp_RMAC_I`): `AES(S-MAC2, AES(S-MAC1, server cryptogram))`.
//! - MAC of a message (SOM … data), padded with `80 00…` when not a whole number of blocks:
//!   AES-CBC with S-MAC1 over all blocks but the last, the last with S-MAC2; the chaining value
//!   is the last MAC of the other side (commands start from the last R-MAC, replies from the
//!   command's C-MAC); the packet carries its first 4 bytes.
//! - Data (after the code) of SCS 0x17/0x18: `80 00…` padding to whole blocks (always at least
//!   the `80`), AES-CBC with S-ENC, IV = the bitwise complement of that same chaining value.
//!
//! AES-CBC is chained here by hand over the `aes` crate's block cipher: OSDP switches keys for
//! the last MAC block and needs the intermediate value, which a CBC mode crate does not expose.

use aes::Aes128;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The default key SCBK-D, for install mode only.
pub const SCBK_D: [u8; 16] = [
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3A, 0x3B, 0x3C, 0x3D, 0x3E, 0x3F,
];

/// A 128-bit secure channel key (SCBK or a session key). Wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; 16]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(REDACTED)")
    }
}

impl Key {
    /// From its bytes.
    pub fn new(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// SCBK-D.
    pub fn default_key() -> Self {
        Self(SCBK_D)
    }

    /// From 32 hex digits (whitespace around them ignored).
    pub fn from_hex(text: &str) -> Option<Self> {
        // Decoded in place: no copy of the key is left behind on the stack.
        let mut key = Self([0u8; 16]);
        hex::decode_to_slice(text.trim(), &mut key.0).ok()?;
        Some(key)
    }

    /// 32 hex digits (for the key file only).
    pub fn to_hex(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(hex::encode(self.0))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    fn cipher(&self) -> Aes128 {
        Aes128::new(&Array::from(self.0))
    }

    /// `AES-128-ECB(self, block)`.
    pub fn encrypt_block(&self, block: [u8; 16]) -> [u8; 16] {
        let mut block = Array::from(block);
        self.cipher().encrypt_block(&mut block);
        block.into()
    }
}

/// The three session keys of one secure channel session.
#[derive(Debug, Clone)]
pub struct SessionKeys {
    enc: Key,
    mac1: Key,
    mac2: Key,
}

impl SessionKeys {
    /// Derives the session keys from the base key and the CP's random number.
    pub fn derive(scbk: &Key, cp_random: &[u8; 8]) -> Self {
        let derive = |second: u8| {
            let mut block = [0u8; 16];
            block[0] = 0x01;
            block[1] = second;
            block[2..8].copy_from_slice(&cp_random[..6]);
            Key(scbk.encrypt_block(block))
        };
        Self {
            enc: derive(0x82),
            mac1: derive(0x01),
            mac2: derive(0x02),
        }
    }

    /// The cryptogram the PD sends: `AES(S-ENC, RND.A ‖ RND.B)`.
    pub fn client_cryptogram(&self, cp_random: &[u8; 8], pd_random: &[u8; 8]) -> [u8; 16] {
        self.enc.encrypt_block(concat(cp_random, pd_random))
    }

    /// The cryptogram the CP sends: `AES(S-ENC, RND.B ‖ RND.A)`.
    pub fn server_cryptogram(&self, cp_random: &[u8; 8], pd_random: &[u8; 8]) -> [u8; 16] {
        self.enc.encrypt_block(concat(pd_random, cp_random))
    }

    /// The initial R-MAC: `AES(S-MAC2, AES(S-MAC1, server cryptogram))`.
    pub fn initial_rmac(&self, server_cryptogram: &[u8; 16]) -> [u8; 16] {
        self.mac2
            .encrypt_block(self.mac1.encrypt_block(*server_cryptogram))
    }

    /// The full 16-byte MAC of `message` chained from `iv`.
    pub fn mac(&self, iv: &[u8; 16], message: &[u8]) -> [u8; 16] {
        let mut padded = message.to_vec();
        if !padded.len().is_multiple_of(16) || padded.is_empty() {
            padded.push(0x80);
            padded.resize(padded.len().div_ceil(16) * 16, 0);
        }
        let blocks = padded.len() / 16;
        let mut chain = *iv;
        for (index, block) in padded.chunks_exact(16).enumerate() {
            let key = if index + 1 == blocks {
                &self.mac2
            } else {
                &self.mac1
            };
            chain = key.encrypt_block(xor(&chain, block));
        }
        chain
    }

    /// Encrypts `data` (padded with `80 00…`) under S-ENC with IV = `!chain`.
    pub fn encrypt(&self, chain: &[u8; 16], data: &[u8]) -> Vec<u8> {
        let mut padded = data.to_vec();
        padded.push(0x80);
        padded.resize(padded.len().div_ceil(16) * 16, 0);
        let cipher = self.enc.cipher();
        let mut previous = complement(chain);
        let mut out = Vec::with_capacity(padded.len());
        for block in padded.chunks_exact(16) {
            let mut block = Array::from(xor(&previous, block));
            cipher.encrypt_block(&mut block);
            previous = block.into();
            out.extend_from_slice(&previous);
        }
        out
    }

    /// Decrypts data encrypted by [`SessionKeys::encrypt`] and strips the padding; `None` when
    /// the length or the padding is wrong.
    pub fn decrypt(&self, chain: &[u8; 16], data: &[u8]) -> Option<Vec<u8>> {
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return None;
        }
        let cipher = self.enc.cipher();
        let mut previous = complement(chain);
        let mut out = Vec::with_capacity(data.len());
        for block in data.chunks_exact(16) {
            let mut plain = Array::try_from(block).ok()?;
            cipher.decrypt_block(&mut plain);
            let plain: [u8; 16] = plain.into();
            out.extend_from_slice(&xor(&previous, &plain));
            previous.copy_from_slice(block);
        }
        let end = out.iter().rposition(|byte| *byte != 0)?;
        if out[end] != 0x80 {
            return None;
        }
        out.truncate(end);
        Some(out)
    }
}

/// Constant-time comparison of a received MAC or cryptogram with the expected one.
pub fn equal(received: &[u8], expected: &[u8]) -> bool {
    received.len() == expected.len() && bool::from(received.ct_eq(expected))
}

fn concat(first: &[u8; 8], second: &[u8; 8]) -> [u8; 16] {
    let mut block = [0u8; 16];
    block[..8].copy_from_slice(first);
    block[8..].copy_from_slice(second);
    block
}

fn xor(chain: &[u8; 16], block: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = chain[index] ^ block[index];
    }
    out
}

fn complement(chain: &[u8; 16]) -> [u8; 16] {
    let mut out = *chain;
    for byte in &mut out {
        *byte = !*byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_block_matches_fips_197() {
        // FIPS-197 appendix C.1 (AES-128).
        let key = Key::new(hex_16("000102030405060708090a0b0c0d0e0f"));
        assert_eq!(
            key.encrypt_block(hex_16("00112233445566778899aabbccddeeff")),
            hex_16("69c4e0d86a7b0430d8cdb78070b4c55a")
        );
    }

    fn hex_16(text: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        hex::decode_to_slice(text, &mut out).expect("hex");
        out
    }

    #[test]
    fn session_keys_are_aes_of_the_documented_blocks() {
        let cp_random = [1, 2, 3, 4, 5, 6, 7, 8];
        let scbk = Key::default_key();
        let keys = SessionKeys::derive(&scbk, &cp_random);
        let expected_enc =
            scbk.encrypt_block([0x01, 0x82, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(keys.enc.as_bytes(), &expected_enc);
        let pd_random = [9; 8];
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&pd_random);
        block[8..].copy_from_slice(&cp_random);
        assert_eq!(
            keys.server_cryptogram(&cp_random, &pd_random),
            Key::new(expected_enc).encrypt_block(block)
        );
    }

    #[test]
    fn one_block_mac_is_mac2_of_the_padded_block_xor_iv() {
        let keys = SessionKeys::derive(&Key::default_key(), &[7; 8]);
        let iv = [0x55; 16];
        let message = [0x53, 0x00, 0x0E, 0x00, 0x0D, 0x02, 0x15, 0x60];
        let mut block = [0u8; 16];
        block[..8].copy_from_slice(&message);
        block[8] = 0x80;
        assert_eq!(
            keys.mac(&iv, &message),
            keys.mac2.encrypt_block(xor(&iv, &block))
        );
        // Two blocks: the first with S-MAC1, the last with S-MAC2.
        let long = [0xAB; 20];
        let first = keys.mac1.encrypt_block(xor(&iv, &long[..16]));
        let mut last = [0u8; 16];
        last[..4].copy_from_slice(&long[16..]);
        last[4] = 0x80;
        assert_eq!(
            keys.mac(&iv, &long),
            keys.mac2.encrypt_block(xor(&first, &last))
        );
    }

    #[test]
    fn encryption_round_trips_and_refuses_bad_padding() {
        let keys = SessionKeys::derive(&Key::new([3; 16]), &[1; 8]);
        let chain = [0x11; 16];
        for len in [0usize, 1, 15, 16, 17, 40] {
            let data: Vec<u8> = (0..len as u8).collect();
            let sealed = keys.encrypt(&chain, &data);
            assert_eq!(sealed.len(), (len + 1).div_ceil(16) * 16);
            assert_eq!(keys.decrypt(&chain, &sealed), Some(data));
        }
        let sealed = keys.encrypt(&chain, b"abc");
        assert_eq!(
            keys.decrypt(&[0x12; 16], &sealed),
            None,
            "other IV: bad padding"
        );
        assert_eq!(keys.decrypt(&chain, &sealed[..15]), None);
    }

    #[test]
    fn keys_print_redacted() {
        assert_eq!(format!("{:?}", Key::default_key()), "Key(REDACTED)");
    }
}
