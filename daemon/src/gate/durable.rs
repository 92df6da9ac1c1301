//! Durable replacement of a small state file: write a temporary file, fsync it, rename it over
//! the old one, fsync the directory. A crash leaves either the old file or the new one, whole.

use std::io::Write as _;
use std::path::Path;

/// Replaces `path` with `bytes` durably (see the module documentation).
pub fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent() {
        // The rename is durable only once the directory is.
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("state.json");
        replace_file(&path, b"first, and longer").expect("write");
        replace_file(&path, b"second").expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"second");
        assert!(!path.with_extension("tmp").exists());
    }
}
