//! The doors in lockdown, kept in the state directory so that a restart (a crash, a power cut, an
//! update) does not lift a lockdown: a gate that could be released by pulling its plug would make
//! lockdown worthless. Written durably after every `lockdown` / `release`, read at start-up.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::durable::{Record, StateFileError, read_record, write_record};

/// File name in the state directory.
pub const FILE_NAME: &str = "lockdown.json";

/// What the file is, in messages.
const FILE: &str = "lockdown file";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    version: u32,
    doors: BTreeSet<String>,
}

impl Record for Stored {
    const VERSION: u32 = 1;
    fn version(&self) -> u32 {
        self.version
    }
}

/// The lockdown file of a gate.
#[derive(Debug, Clone)]
pub struct LockdownFile {
    path: PathBuf,
}

impl LockdownFile {
    /// The file in `state_dir`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            path: state_dir.join(FILE_NAME),
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The doors in lockdown; none when the file does not exist (a gate never locked down).
    ///
    /// # Errors
    /// The file cannot be read or is damaged.
    pub fn load(&self) -> Result<BTreeSet<String>, StateFileError> {
        match read_record::<Stored>(FILE, &self.path) {
            Ok(stored) => Ok(stored.map(|stored| stored.doors).unwrap_or_default()),
            // A damaged record is not taken for "no lockdown": the operator must decide.
            Err(StateFileError::Invalid { file, path, reason }) => Err(StateFileError::Invalid {
                file,
                path,
                reason: format!("{reason}; remove it only if no door must stay in lockdown"),
            }),
            Err(error) => Err(error),
        }
    }

    /// Records `doors` as the doors in lockdown (durably: see [`super::durable`]).
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, doors: &BTreeSet<String>) -> Result<(), StateFileError> {
        let stored = Stored {
            version: Stored::VERSION,
            doors: doors.clone(),
        };
        write_record(FILE, &self.path, &stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doors(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    #[test]
    fn saved_doors_load_back_and_a_missing_file_is_no_lockdown() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = LockdownFile::in_state_dir(dir.path());
        assert_eq!(file.load().expect("no file"), doors(&[]));
        file.save(&doors(&["back", "main"])).expect("save");
        assert_eq!(file.load().expect("load"), doors(&["back", "main"]));
        file.save(&doors(&[])).expect("save");
        assert_eq!(file.load().expect("load"), doors(&[]));
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_set() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let file = LockdownFile::in_state_dir(dir.path());
        for text in [
            "",
            "{",
            "[\"main\"]",
            "{\"version\":2,\"doors\":[]}",
            "{\"version\":1,\"doors\":[],\"x\":1}",
        ] {
            std::fs::write(file.path(), text).expect("write");
            let error = file.load().expect_err(text);
            assert!(
                matches!(error, StateFileError::Invalid { .. }),
                "{text}: {error}"
            );
            assert!(error.to_string().contains("lockdown.json"), "{error}");
        }
    }
}
