//! The station's durable record: the append-only audit log (JSON lines, created 0600 in a 0700
//! directory, each line synced before the station goes on) and the deletion receipts kept next to
//! it (written once, never overwritten).

use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::AuditRecord;
use crate::event::CardId;

/// Why the audit log or a receipt could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The log's directory cannot be created.
    #[error("creating {}", .path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The log cannot be opened.
    #[error("opening the audit log {}", .path.display())]
    Open {
        /// The log.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A record was not written (or not synced).
    #[error("writing the audit log {}", .path.display())]
    Append {
        /// The log.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A deletion receipt was not written (an existing file is never replaced).
    #[error("writing the deletion receipt {}", .path.display())]
    Receipt {
        /// The receipt's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The append-only audit log (created 0600, its directory 0700).
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    /// Opens (creating it and its directory if needed) the log at `path`.
    ///
    /// # Errors
    /// The directory or the file cannot be created or opened.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| JournalError::Directory {
                    path: dir.to_path_buf(),
                    source,
                })?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| JournalError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it.
    ///
    /// # Errors
    /// The write or the sync failed.
    pub fn append(&mut self, record: &AuditRecord) -> Result<(), JournalError> {
        self.file
            .write_all(record.to_line().as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|source| JournalError::Append {
                path: self.path.clone(),
                source,
            })
    }

    /// Keeps a deletion receipt as `receipt-<card id>-<erase counter>.bin` next to the log, never
    /// replacing an existing file; returns its path.
    ///
    /// # Errors
    /// The file exists already or cannot be written.
    pub fn keep_receipt(
        &self,
        card_id: &CardId,
        erase_counter: u32,
        bytes: &[u8],
    ) -> Result<PathBuf, JournalError> {
        let name = format!("receipt-{card_id}-{erase_counter}.bin");
        let path = match self.path.parent() {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        };
        write_new_private(&path, bytes).map_err(|source| JournalError::Receipt {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// Writes a new file readable by the owner only (never overwrites), synced.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::enrol::ConsentMethod;
    use crate::event::Timestamp;

    fn card() -> CardId {
        CardId::new(&[7; 16]).expect("card id")
    }

    #[test]
    fn records_are_appended_to_a_private_file_in_a_private_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("enrolment").join("audit.jsonl");
        let record = AuditRecord::Consent {
            time: Timestamp::now(),
            card_id: card(),
            consent_text_sha256: "ab".repeat(32),
            method: ConsentMethod::Flag,
            duress_hand: false,
        };
        let mut log = AuditLog::open(&path).expect("open");
        log.append(&record).expect("append");
        drop(log);
        AuditLog::open(&path)
            .expect("reopen")
            .append(&record)
            .expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2, "{text}");
        let mode =
            |path: &Path| std::fs::metadata(path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().expect("dir")), 0o700);
    }

    #[test]
    fn a_receipt_is_kept_next_to_the_log_and_never_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let log = AuditLog::open(&dir.path().join("audit.jsonl")).expect("open");
        let path = log.keep_receipt(&card(), 3, b"first").expect("receipt");
        assert_eq!(path.parent(), Some(dir.path()));
        assert!(path.ends_with(format!("receipt-{}-3.bin", card())));
        let again = log.keep_receipt(&card(), 3, b"second");
        assert!(
            matches!(again, Err(JournalError::Receipt { .. })),
            "{again:?}"
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"first");
    }
}
