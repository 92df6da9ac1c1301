//! Durable replacement of a small file ([`replace_file`]) and the state kept as versioned JSON
//! ([`read_record`] / [`write_record`]). The one writer for the gate's state (revocation list,
//! lockdown, lost meal answers), the operator's revocation list and erasure receipts.

use std::path::{Path, PathBuf};

use palmgate_card::host::file::Durability;

/// Replaces `path` with `bytes` durably: a private temporary file beside it (0600), synced,
/// renamed over it, the directory synced (`palmgate_card::host::file::replace_file`). A crash
/// leaves the old file or the new one, whole; a failure leaves the old file and no temporary.
///
/// # Errors
/// The temporary file cannot be written, or the rename or a sync fails.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    palmgate_card::host::file::replace_file(path, bytes, Durability::PowerLoss)
}

/// A versioned JSON record of the gate's state (`{"version": N, …}`).
pub trait Record: serde::Serialize + serde::de::DeserializeOwned {
    /// The version this code writes and reads.
    const VERSION: u32;
    /// The version the record says it is.
    fn version(&self) -> u32;
}

/// A state file that could not be read or written. `file` says which record it is ("lockdown
/// file", …), so that the message names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFileError {
    /// The file could not be read or written.
    #[error("{file} {path}")]
    Io {
        /// What the file is.
        file: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not such a record (damaged, or of another version).
    #[error("{file} {path}: {reason}")]
    Invalid {
        /// What the file is.
        file: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Reads the record at `path` (a `file`, for messages); `None` when the file does not exist.
///
/// # Errors
/// The file cannot be read, or is not a record of [`Record::VERSION`].
pub fn read_record<T: Record>(
    file: &'static str,
    path: &Path,
) -> Result<Option<T>, StateFileError> {
    let invalid = |reason: String| StateFileError::Invalid {
        file,
        path: path.to_path_buf(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateFileError::Io {
                file,
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let record: T = serde_json::from_slice(&bytes).map_err(|error| invalid(error.to_string()))?;
    if record.version() != T::VERSION {
        return Err(invalid(format!("unknown version {}", record.version())));
    }
    Ok(Some(record))
}

/// Writes `record` to `path` (a `file`, for messages) durably ([`replace_file`]).
///
/// # Errors
/// The record cannot be encoded or the file written.
pub fn write_record<T: Record>(
    file: &'static str,
    path: &Path,
    record: &T,
) -> Result<(), StateFileError> {
    let json = serde_json::to_vec_pretty(record).map_err(|error| StateFileError::Invalid {
        file,
        path: path.to_path_buf(),
        reason: error.to_string(),
    })?;
    replace_file(path, &json).map_err(|source| StateFileError::Io {
        file,
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        version: u32,
        names: Vec<String>,
    }

    impl Record for Sample {
        const VERSION: u32 = 3;
        fn version(&self) -> u32 {
            self.version
        }
    }

    #[test]
    fn a_record_reads_back_is_none_when_missing_and_refuses_damage_and_other_versions() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("record.json");
        assert!(matches!(read_record::<Sample>("sample", &path), Ok(None)));
        let sample = Sample {
            version: 3,
            names: vec!["main".to_string()],
        };
        write_record("sample", &path, &sample).expect("write");
        assert_eq!(
            read_record::<Sample>("sample", &path).expect("read"),
            Some(sample)
        );
        for text in [
            "",
            "{",
            "[]",
            r#"{"version":2,"names":[]}"#,
            r#"{"version":3,"names":[],"x":1}"#,
        ] {
            std::fs::write(&path, text).expect("write");
            assert!(
                matches!(
                    read_record::<Sample>("sample", &path),
                    Err(StateFileError::Invalid { .. })
                ),
                "{text}"
            );
        }
    }
}
