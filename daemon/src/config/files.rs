//! Files the configuration names: regular files of bounded size, read so that nothing a hostile
//! or mistaken path points at can hang or exhaust the gate.
//!
//! A FIFO opened for reading blocks until a writer comes (forever, for `config check` and the
//! daemon's start); `/dev/zero` or `/dev/urandom` never end. So every such file is opened with
//! `O_NONBLOCK` (a FIFO opens at once and a device is never read), checked with `fstat` on the
//! open descriptor (no race between the check and the read) to be a regular file no larger than
//! its limit, and read through a reader that stops one byte past the limit (a file that grows
//! while being read is refused too).

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Key and certificate files: issuer and operator public keys, TLS CA, certificate and key, the
/// device key (a CA bundle of a few hundred certificates fits).
pub const MAX_KEY_FILE_BYTES: u64 = 1024 * 1024;
/// Configuration files (main and drop-ins).
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;
/// The access policy.
pub const MAX_POLICY_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The revocation list (the gate writes it from a command of at most 1 MiB).
pub const MAX_REVOCATION_LIST_BYTES: u64 = 4 * 1024 * 1024;
/// A replacement matcher model (ONNX).
pub const MAX_MODEL_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Why a named file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoundedFileError {
    /// It cannot be opened (missing, permissions…).
    #[error("cannot read {}: {error}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: std::io::Error,
    },
    /// It is a FIFO, a device, a socket or a directory.
    #[error("{} is {kind}, not a regular file", path.display())]
    NotRegular {
        /// The file.
        path: PathBuf,
        /// What it is instead (`a FIFO`, `a character device`…).
        kind: &'static str,
    },
    /// Larger than its limit.
    #[error("{} is larger than {limit} bytes ({size} bytes)", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size (at least this much, when it grew while read).
        size: u64,
        /// The limit for this kind of file.
        limit: u64,
    },
    /// Reading failed.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: std::io::Error,
    },
}

impl BoundedFileError {
    /// Whether the file does not exist (some files are optional until the gate writes them).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Open { error, .. } if error.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Opens `path` for reading without blocking and checks it is a regular file of at most `limit`
/// bytes; returns the open file and its size.
pub fn open_bounded(path: &Path, limit: u64) -> Result<(File, u64), BoundedFileError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|error| BoundedFileError::Open {
            path: path.to_owned(),
            error,
        })?;
    let meta = file.metadata().map_err(|error| BoundedFileError::Read {
        path: path.to_owned(),
        error,
    })?;
    let file_type = meta.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() {
            "a character device"
        } else if file_type.is_block_device() {
            "a block device"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_dir() {
            "a directory"
        } else {
            "not a file"
        };
        return Err(BoundedFileError::NotRegular {
            path: path.to_owned(),
            kind,
        });
    }
    if meta.len() > limit {
        return Err(BoundedFileError::TooLarge {
            path: path.to_owned(),
            size: meta.len(),
            limit,
        });
    }
    Ok((file, meta.len()))
}

/// Reads the regular file `path` of at most `limit` bytes (see the module documentation).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, BoundedFileError> {
    let (file, size) = open_bounded(path, limit)?;
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| BoundedFileError::Read {
            path: path.to_owned(),
            error,
        })?;
    let read = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read > limit {
        return Err(BoundedFileError::TooLarge {
            path: path.to_owned(),
            size: read,
            limit,
        });
    }
    Ok(bytes)
}

/// [`read_bounded`] as UTF-8 text.
pub fn read_bounded_to_string(path: &Path, limit: u64) -> Result<String, BoundedFileError> {
    let bytes = read_bounded(path, limit)?;
    String::from_utf8(bytes).map_err(|error| BoundedFileError::Read {
        path: path.to_owned(),
        error: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
    })
}
