//! Replacing a small file whole: the new contents go to a private temporary file beside it
//! (`tempfile`: a unique name, mode 0600, removed again if anything below fails), which is
//! renamed over the old one. A reader, or a process killed at any point, sees the old file or
//! the new one, never a mix. With [`Durability::PowerLoss`] the file and then the directory are
//! also synced, so that the rename survives a crash of the host OS. (`atomic-write-file` 0.3 was
//! tried first: when its rename fails it leaves its temporary file behind, which
//! `a_failed_rename_keeps_the_old_contents_and_removes_the_temporary` catches.)
//!
//! The one writer of the gate's state and receipts (`palmgate::gate::state::durable`), the panel
//! link's keys and the virtual card's state ([`super::platform::FileStorage`]).

use std::io::Write as _;
use std::path::Path;

/// How long the new contents must last once [`replace_file`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Until the disk loses power: the file and its directory are synced (several milliseconds).
    PowerLoss,
    /// Until the process is killed: no sync (the virtual card's state in tests).
    ProcessKill,
}

/// Replaces `path` with `bytes` (see the module documentation). The new file is private (0600),
/// whatever the mode of the file it replaces.
///
/// # Errors
/// `path` names no file, or the temporary file cannot be written, synced or renamed.
pub fn replace_file(path: &Path, bytes: &[u8], durability: Durability) -> std::io::Result<()> {
    let Some(name) = path.file_name() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} is not a file name", path.display()),
        ));
    };
    // Same directory: a rename does not cross file systems.
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut temporary = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(directory)?;
    temporary.write_all(bytes)?;
    if durability == Durability::PowerLoss {
        temporary.as_file().sync_all()?;
    }
    // On failure the temporary comes back in the error and is removed when it is dropped.
    temporary.persist(path).map_err(|failed| failed.error)?;
    if durability == Durability::PowerLoss {
        // The rename is durable only once the directory is.
        std::fs::File::open(directory)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    fn names(directory: &Path) -> Vec<std::ffi::OsString> {
        let mut names: Vec<_> = std::fs::read_dir(directory)
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn replaces_the_whole_file_privately_and_leaves_no_temporary() {
        for durability in [Durability::PowerLoss, Durability::ProcessKill] {
            let dir = tempfile::tempdir().expect("temporary directory");
            let path = dir.path().join("state.json");
            replace_file(&path, b"first, and longer", durability).expect("write");
            replace_file(&path, b"second", durability).expect("replace");
            assert_eq!(std::fs::read(&path).expect("read"), b"second");
            assert_eq!(names(dir.path()), ["state.json"]);
            assert_eq!(mode(&path), 0o600);
        }
    }

    #[test]
    fn a_file_readable_by_others_is_replaced_by_a_private_one() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("receipt.bin");
        std::fs::write(&path, b"old").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        replace_file(&path, b"new", Durability::PowerLoss).expect("replace");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_failed_rename_keeps_the_old_contents_and_removes_the_temporary() {
        let dir = tempfile::tempdir().expect("temporary directory");
        // A directory where the file should be: the rename fails after the temporary is written.
        let path = dir.path().join("taken");
        std::fs::create_dir(&path).expect("directory");
        std::fs::write(path.join("inside"), b"kept").expect("write");
        assert!(replace_file(&path, b"new", Durability::PowerLoss).is_err());
        assert_eq!(std::fs::read(path.join("inside")).expect("read"), b"kept");
        assert_eq!(names(dir.path()), ["taken"]);
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let error =
            replace_file(Path::new("/"), b"x", Durability::ProcessKill).expect_err("no name");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
    }
}
