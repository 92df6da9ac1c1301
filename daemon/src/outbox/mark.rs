//! The event-id mark: a small file beside the device key that bounds every id ever published, so
//! that ids never go back or repeat even when the outbox database is damaged or deleted.
//!
//! # Why beside the key
//! Damage to the outbox directory (a truncated or deleted database) must not take the
//! high-water mark with it. The device key is the one file whose loss makes the outbox useless
//! anyway, so its directory is where the mark lives (`<key dir>/event-ids.mark`).
//!
//! # Written ahead, in place
//! `reserved_end` is raised in blocks of [`BLOCK`] ids *before* an id above it can be published:
//! one fsync per [`BLOCK`] events. The file has two fixed 32-byte slots written alternately in
//! place (no allocation, so it still works on a full disk), each
//! `magic "PGIDMRK1" (8) || sequence (u64) || reserved_end (u64) || accounted_through (u64)`
//! followed by the first 8 bytes of its SHA-256: a torn or flipped slot fails its checksum and the
//! other slot (one write older, still an upper bound) is used.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::event::EventId;

/// Ids reserved per write of the mark.
pub const BLOCK: u64 = 1024;
/// File name of the mark, in the device key's directory.
pub const FILE_NAME: &str = "event-ids.mark";

const MAGIC: &[u8; 8] = b"PGIDMRK1";
const BODY_LEN: usize = 32;
const SLOT_LEN: usize = BODY_LEN + 8;

/// Why the mark could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MarkError {
    /// Reading or writing the file failed.
    #[error("event-id mark {path}: {error}")]
    Io {
        /// The mark file.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: io::Error,
    },
    /// Neither slot passes its checksum: the gate cannot know which ids were used.
    #[error(
        "event-id mark {path} is damaged (both copies fail their checksum): the gate cannot tell \
         which event ids it already used. Move it away to start anyway; event ids may then repeat"
    )]
    Damaged {
        /// The mark file.
        path: PathBuf,
    },
}

/// The values the mark keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MarkValues {
    /// No id above this has ever been published.
    pub reserved_end: EventId,
    /// Every id up to this was delivered or reported lost (as of the last write).
    pub accounted_through: EventId,
}

/// The open mark file.
#[derive(Debug)]
pub struct IdMark {
    path: PathBuf,
    file: File,
    sequence: u64,
    values: MarkValues,
}

impl IdMark {
    /// The mark's path for a device key file.
    pub fn path_beside(device_key_file: &Path) -> PathBuf {
        device_key_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."))
            .join(FILE_NAME)
    }

    /// Opens the mark, creating it (all zero) when missing. `Ok((mark, existed))`.
    pub fn open(path: &Path) -> Result<(Self, bool), MarkError> {
        let io_error = |error| MarkError::Io {
            path: path.to_owned(),
            error,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io_error)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error)?;
        if bytes.is_empty() {
            let mut mark = Self {
                path: path.to_owned(),
                file,
                sequence: 0,
                values: MarkValues::default(),
            };
            // Both slots, so that a later torn write always leaves one valid.
            mark.write(MarkValues::default())?;
            mark.write(MarkValues::default())?;
            return Ok((mark, false));
        }
        let best = bytes
            .chunks(SLOT_LEN)
            .filter_map(decode_slot)
            .max_by_key(|(sequence, _)| *sequence);
        let Some((sequence, values)) = best else {
            return Err(MarkError::Damaged {
                path: path.to_owned(),
            });
        };
        Ok((
            Self {
                path: path.to_owned(),
                file,
                sequence,
                values,
            },
            true,
        ))
    }

    /// The values in force.
    pub fn values(&self) -> MarkValues {
        self.values
    }

    /// Writes new values into the older slot and fsyncs it.
    pub fn write(&mut self, values: MarkValues) -> Result<(), MarkError> {
        let io_error = |error| MarkError::Io {
            path: self.path.clone(),
            error,
        };
        let sequence = self.sequence + 1;
        let slot = encode_slot(sequence, values);
        let offset = (sequence % 2) * SLOT_LEN as u64;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(&slot))
            .and_then(|()| self.file.sync_data())
            .map_err(io_error)?;
        self.sequence = sequence;
        self.values = values;
        Ok(())
    }
}

fn encode_slot(sequence: u64, values: MarkValues) -> [u8; SLOT_LEN] {
    let mut slot = [0u8; SLOT_LEN];
    slot[..8].copy_from_slice(MAGIC);
    slot[8..16].copy_from_slice(&sequence.to_be_bytes());
    slot[16..24].copy_from_slice(&values.reserved_end.to_be_bytes());
    slot[24..32].copy_from_slice(&values.accounted_through.to_be_bytes());
    let digest = Sha256::digest(&slot[..BODY_LEN]);
    slot[BODY_LEN..].copy_from_slice(&digest[..8]);
    slot
}

fn decode_slot(slot: &[u8]) -> Option<(u64, MarkValues)> {
    if slot.len() != SLOT_LEN || &slot[..8] != MAGIC {
        return None;
    }
    let digest = Sha256::digest(&slot[..BODY_LEN]);
    if slot[BODY_LEN..] != digest[..8] {
        return None;
    }
    let word = |at: usize| {
        <[u8; 8]>::try_from(&slot[at..at + 8])
            .ok()
            .map(u64::from_be_bytes)
    };
    Some((
        word(8)?,
        MarkValues {
            reserved_end: word(16)?,
            accounted_through: word(24)?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_reopening_and_a_torn_slot_falls_back_to_the_other() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        let (mut mark, existed) = IdMark::open(&path).expect("create");
        assert!(!existed);
        assert_eq!(mark.values(), MarkValues::default());
        let first = MarkValues {
            reserved_end: 1024,
            accounted_through: 3,
        };
        let second = MarkValues {
            reserved_end: 2048,
            accounted_through: 900,
        };
        mark.write(first).expect("write");
        mark.write(second).expect("write");
        drop(mark);
        let (mark, existed) = IdMark::open(&path).expect("reopen");
        assert!(existed);
        assert_eq!(mark.values(), second);
        let sequence = mark.sequence;
        drop(mark);

        // Flip a bit in the newest slot: the previous values (still an upper bound) are used.
        let mut bytes = std::fs::read(&path).expect("read");
        let newest = (sequence % 2) as usize * SLOT_LEN;
        bytes[newest + 20] ^= 0x01;
        std::fs::write(&path, &bytes).expect("write");
        let (mark, _) = IdMark::open(&path).expect("reopen");
        assert_eq!(mark.values(), first);

        // Both slots damaged: refused, naming the file.
        let other = SLOT_LEN - newest;
        bytes[other + 3] ^= 0x80;
        std::fs::write(&path, &bytes).expect("write");
        let error = IdMark::open(&path).expect_err("damaged");
        assert!(matches!(error, MarkError::Damaged { .. }), "{error}");
        assert!(error.to_string().contains(FILE_NAME));
    }

    #[test]
    fn the_mark_lives_beside_the_device_key() {
        assert_eq!(
            IdMark::path_beside(Path::new("/var/lib/palmgate/device.key")),
            Path::new("/var/lib/palmgate/event-ids.mark")
        );
        assert_eq!(
            IdMark::path_beside(Path::new("device.key")),
            Path::new("./event-ids.mark")
        );
    }
}
