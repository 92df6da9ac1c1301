//! Record encryption for the outbox: AES-256-GCM, one record per event.
//!
//! # Keys and nonces
//! - The record key is `SHA-256("palmgate outbox record key v1" || device key || salt)`, where the
//!   salt is 32 random bytes created with the database. Wiping the state directory while keeping
//!   the device key therefore yields a fresh record key: ids that restart from 1 never meet an old
//!   ciphertext under the same key.
//! - The 96-bit nonce is `epoch (u32, big-endian) || event id (u64, big-endian)`. The epoch is a
//!   counter in the database, incremented and flushed to disk each time the outbox opens, before
//!   anything is encrypted. Within one opening, ids are unique; across openings, epochs are. A
//!   (key, nonce) pair therefore never repeats, even if a crash made the database forget an id
//!   that had already been used for a write that never reached the disk.
//! - The associated data is `gate || 0x00 || id`, so a record cannot be moved to another position
//!   or another gate's database without failing authentication.
//!
//! Record layout: `version (1 = 0x01) || epoch (4) || ciphertext || tag (16)`.

use aes_gcm::aead::{AeadInOut, Nonce, Tag};
use aes_gcm::{Aes256Gcm, KeyInit};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::key::DeviceKey;
use crate::event::EventId;

const RECORD_VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const TAG_LEN: usize = 16;

/// Seals and opens outbox records under one record key and epoch.
pub(crate) struct Sealer {
    cipher: Aes256Gcm,
    epoch: u32,
    gate: Vec<u8>,
}

/// A record that does not decrypt: wrong key, tampering, truncation or an unknown version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreadable;

impl Sealer {
    pub(crate) fn new(device_key: &DeviceKey, salt: &[u8], epoch: u32, gate: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"palmgate outbox record key v1");
        hasher.update(device_key.expose());
        hasher.update(salt);
        let record_key = Zeroizing::new(<[u8; 32]>::from(hasher.finalize()));
        // `Aes256Gcm` zeroizes its key schedule on drop only with the `zeroize` feature; the
        // derived key bytes themselves are wiped here.
        let cipher = Aes256Gcm::new(&(*record_key).into());
        Self {
            cipher,
            epoch,
            gate: gate.as_bytes().to_vec(),
        }
    }

    fn aad(&self, id: EventId) -> Vec<u8> {
        let mut aad = Vec::with_capacity(self.gate.len() + 9);
        aad.extend_from_slice(&self.gate);
        aad.push(0);
        aad.extend_from_slice(&id.to_be_bytes());
        aad
    }

    fn nonce(epoch: u32, id: EventId) -> Nonce<Aes256Gcm> {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&epoch.to_be_bytes());
        nonce[4..].copy_from_slice(&id.to_be_bytes());
        nonce.into()
    }

    pub(crate) fn seal(&self, id: EventId, plaintext: &[u8]) -> Vec<u8> {
        let mut record = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        record.push(RECORD_VERSION);
        record.extend_from_slice(&self.epoch.to_be_bytes());
        record.extend_from_slice(plaintext);
        let aad = self.aad(id);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &Self::nonce(self.epoch, id),
                &aad,
                record[HEADER_LEN..].as_mut().into(),
            )
            // Only fails for messages over 64 GiB.
            .unwrap_or_default();
        record.extend_from_slice(&tag);
        record
    }

    pub(crate) fn open(
        &self,
        id: EventId,
        record: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Unreadable> {
        if record.len() < HEADER_LEN + TAG_LEN || record[0] != RECORD_VERSION {
            return Err(Unreadable);
        }
        let epoch = u32::from_be_bytes([record[1], record[2], record[3], record[4]]);
        let (body, tag) = record[HEADER_LEN..].split_at(record.len() - HEADER_LEN - TAG_LEN);
        let tag = Tag::<Aes256Gcm>::try_from(tag).map_err(|_| Unreadable)?;
        let mut plaintext = Zeroizing::new(body.to_vec());
        self.cipher
            .decrypt_inout_detached(
                &Self::nonce(epoch, id),
                &self.aad(id),
                plaintext.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| Unreadable)?;
        Ok(plaintext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(epoch: u32) -> Sealer {
        Sealer::new(&DeviceKey::from_bytes([9; 32]), &[1; 32], epoch, "gate-1")
    }

    #[test]
    fn records_round_trip_and_carry_their_epoch() {
        let record = sealer(3).seal(42, b"{\"id\":42}");
        assert_eq!(&record[..5], &[1, 0, 0, 0, 3]);
        assert_eq!(record.len(), 5 + 9 + 16);
        assert!(
            !record.windows(9).any(|w| w == b"{\"id\":42}"),
            "plaintext visible"
        );
        // A later opening (new epoch) still reads records of an earlier one.
        assert_eq!(
            sealer(4).open(42, &record).expect("open").as_slice(),
            b"{\"id\":42}"
        );
    }

    #[test]
    fn tampered_moved_or_foreign_records_are_refused() {
        let sealer = sealer(1);
        let record = sealer.seal(7, b"event");
        assert_eq!(
            sealer.open(8, &record),
            Err(Unreadable),
            "moved to another id"
        );
        let mut flipped = record.clone();
        flipped[6] ^= 1;
        assert_eq!(sealer.open(7, &flipped), Err(Unreadable), "tampered");
        assert_eq!(
            sealer.open(7, &record[..record.len() - 1]),
            Err(Unreadable),
            "truncated"
        );
        let other_gate = Sealer::new(&DeviceKey::from_bytes([9; 32]), &[1; 32], 1, "gate-2");
        assert_eq!(other_gate.open(7, &record), Err(Unreadable), "other gate");
        let other_salt = Sealer::new(&DeviceKey::from_bytes([9; 32]), &[2; 32], 1, "gate-1");
        assert_eq!(
            other_salt.open(7, &record),
            Err(Unreadable),
            "other database"
        );
    }

    #[test]
    fn same_id_in_another_epoch_uses_another_nonce() {
        let a = sealer(1).seal(5, b"same plaintext");
        let b = sealer(2).seal(5, b"same plaintext");
        assert_ne!(a[5..], b[5..]);
    }
}
