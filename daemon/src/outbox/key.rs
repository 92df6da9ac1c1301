//! The device key: 32 random bytes in a file only the daemon's user can read.
//!
//! Created on first start with `getrandom` and mode 0600 (`O_CREAT | O_EXCL`, so two starts
//! cannot race into two keys); refused afterwards if anyone else could read or write it, or if it
//! is not exactly 32 bytes. The key lives in a zeroizing buffer, prints `REDACTED`, and is never
//! logged.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Length of the device key (AES-256).
pub const DEVICE_KEY_LEN: usize = 32;

/// Why the device key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file could not be read or created.
    #[error("device key file {path}: {error}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// Why (said in the text, so not also a `source()`: a printed chain says it once).
        error: io::Error,
    },
    /// Group or other users have access to the file.
    #[error(
        "device key file {path} has mode {mode:o}: it must be readable by its owner only \
         (chmod 600 {path})"
    )]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is not 32 bytes long.
    #[error("device key file {path} is {len} bytes long: a device key is exactly 32 bytes")]
    WrongLength {
        /// The key file.
        path: PathBuf,
        /// Its length.
        len: u64,
    },
    /// The path exists but is not a regular file.
    #[error("device key file {path} is not a regular file")]
    NotAFile {
        /// The key file.
        path: PathBuf,
    },
    /// The operating system's random generator failed.
    #[error("cannot generate a device key: {0}")]
    Random(getrandom::Error),
}

/// The device key. Zeroized on drop; `Debug` prints `REDACTED`.
pub struct DeviceKey(Zeroizing<[u8; DEVICE_KEY_LEN]>);

impl DeviceKey {
    /// Loads the key from `path`, creating it (mode 0600, random) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        match fs::symlink_metadata(path) {
            Ok(_) => Self::load(path),
            Err(error) if error.kind() == io::ErrorKind::NotFound => match Self::create(path) {
                // Another process created it between our check and our create: use theirs.
                Err(KeyError::Io { error, .. }) if error.kind() == io::ErrorKind::AlreadyExists => {
                    Self::load(path)
                }
                other => other,
            },
            Err(error) => Err(KeyError::Io {
                path: path.to_owned(),
                error,
            }),
        }
    }

    /// Loads an existing key file, checking its permissions and length.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io_error = |error| KeyError::Io {
            path: path.to_owned(),
            error,
        };
        let meta = fs::symlink_metadata(path).map_err(io_error)?;
        if !meta.file_type().is_file() {
            return Err(KeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyError::TooOpen {
                path: path.to_owned(),
                mode,
            });
        }
        if meta.len() != DEVICE_KEY_LEN as u64 {
            return Err(KeyError::WrongLength {
                path: path.to_owned(),
                len: meta.len(),
            });
        }
        let mut file = fs::File::open(path).map_err(io_error)?;
        let mut key = Zeroizing::new([0u8; DEVICE_KEY_LEN]);
        file.read_exact(key.as_mut()).map_err(io_error)?;
        // The file must not have grown between the check and the read.
        let mut extra = [0u8; 1];
        if file.read(&mut extra).map_err(io_error)? != 0 {
            return Err(KeyError::WrongLength {
                path: path.to_owned(),
                len: meta.len() + 1,
            });
        }
        Ok(Self(key))
    }

    fn create(path: &Path) -> Result<Self, KeyError> {
        let io_error = |error| KeyError::Io {
            path: path.to_owned(),
            error,
        };
        let mut key = Zeroizing::new([0u8; DEVICE_KEY_LEN]);
        getrandom::fill(key.as_mut()).map_err(KeyError::Random)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(io_error)?;
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error)?;
        file.write_all(key.as_ref()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Make the new directory entry durable too.
            fs::File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(io_error)?;
        }
        Ok(Self(key))
    }

    /// A key from raw bytes (tests and benchmarks).
    pub fn from_bytes(bytes: [u8; DEVICE_KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; DEVICE_KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(REDACTED)")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_with_mode_0600_and_reloaded_identically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/device.key");
        let created = DeviceKey::load_or_create(&path).expect("create");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = DeviceKey::load_or_create(&path).expect("load");
        assert_eq!(created.expose(), loaded.expose());
        assert_ne!(created.expose(), &[0u8; 32]);
        assert_eq!(format!("{created:?}"), "DeviceKey(REDACTED)");
    }

    #[test]
    fn refuses_wider_permissions_and_wrong_lengths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("device.key");
        fs::write(&path, [7u8; 32]).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).expect("chmod");
        let error = DeviceKey::load_or_create(&path).expect_err("group-readable key");
        assert!(
            matches!(error, KeyError::TooOpen { mode: 0o640, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("chmod 600"));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(DeviceKey::load(&path).is_ok());
        fs::write(&path, [7u8; 31]).expect("write");
        let error = DeviceKey::load(&path).expect_err("short key");
        assert!(
            matches!(error, KeyError::WrongLength { len: 31, .. }),
            "{error}"
        );

        let error = DeviceKey::load(dir.path()).expect_err("directory");
        assert!(matches!(error, KeyError::NotAFile { .. }), "{error}");
    }
}
