//! Durable replacement of a small file: write a temporary file next to it (mode 0600), fsync it,
//! rename it over the old one, fsync the directory. A crash leaves either the old file or the new
//! one, whole; a failure leaves the old file and no temporary. The one writer for the gate's state
//! (revocation list, lockdown, lost meal answers), the operator's revocation list and erasure
//! receipts; [`read_record`] / [`write_record`] for the state kept as versioned JSON.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes` durably (see the module documentation).
///
/// # Errors
/// The temporary file cannot be written, or the rename or a fsync fails.
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a file name", path.display()),
        ));
    };
    // Same directory (a rename does not cross file systems); the pid keeps two writers apart.
    let mut temporary_name = name.to_os_string();
    temporary_name.push(format!(".tmp-{}", std::process::id()));
    let temporary = dir.join(temporary_name);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        // The rename is durable only once the directory is.
        std::fs::File::open(&dir)?.sync_all()
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
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
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("state.json");
        replace_file(&path, b"first, and longer").expect("write");
        replace_file(&path, b"second").expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().expect("temporary directory");
        // A directory where the file should be: the rename fails after the temporary is written.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).expect("directory");
        std::fs::write(path.join("inside"), b"kept").expect("write");
        assert!(replace_file(&path, b"new").is_err());
        assert_eq!(std::fs::read(path.join("inside")).expect("read"), b"kept");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }

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
