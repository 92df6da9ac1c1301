//! Platform services for running the applet on a host: storage, clock and randomness.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::applet::{Applet, Clock, STATE_LEN, StateError, Storage, StorageFailed};
use crate::host::file::{Durability, replace_file};

/// The operating system's random generator as an infallible [`rand_core::CryptoRng`]
/// (aborts if the OS cannot provide randomness).
pub type SystemRng = rand_core::UnwrapErr<getrandom::SysRng>;

/// A new [`SystemRng`].
pub fn system_rng() -> SystemRng {
    rand_core::UnwrapErr(getrandom::SysRng)
}

/// Monotonic clock from [`Instant`].
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    origin: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for SystemClock {
    fn now_ms(&mut self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// State kept in memory (tests); can be told to fail to test the `6581` path.
#[derive(Default)]
pub struct MemoryStorage {
    stored: Option<Box<[u8; STATE_LEN]>>,
    /// When `true`, every store fails.
    pub fail: bool,
    /// Number of successful stores.
    pub writes: usize,
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage")
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// The last stored state.
    pub fn stored(&self) -> Option<&[u8; STATE_LEN]> {
        self.stored.as_deref()
    }
}

impl Storage for MemoryStorage {
    fn store(&mut self, state: &[u8; STATE_LEN]) -> Result<(), StorageFailed> {
        if self.fail {
            return Err(StorageFailed);
        }
        self.stored = Some(Box::new(*state));
        self.writes += 1;
        Ok(())
    }
}

/// State in a file, replaced whole ([`replace_file`]: a temporary file renamed over it).
///
/// Without [`FileStorage::durable`] the new state survives the process being killed (the card
/// being pulled) but not a crash of the host OS; with it, every store also waits for the disk
/// (`fsync` of the file and of the directory), which costs ~8 ms per store on the development
/// machine.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    /// Wait for the disk on every store.
    pub durable: bool,
    /// Pause after each store (simulates slow card memory; used by tests to pull the card while
    /// a command is between its store and its answer).
    pub delay_after_store: Duration,
}

impl FileStorage {
    /// Storage at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durable: false,
            delay_after_store: Duration::ZERO,
        }
    }

    /// The state file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, state: &[u8]) -> std::io::Result<()> {
        let durability = if self.durable {
            Durability::PowerLoss
        } else {
            Durability::ProcessKill
        };
        replace_file(&self.path, state, durability)
    }
}

impl Storage for FileStorage {
    fn store(&mut self, state: &[u8; STATE_LEN]) -> Result<(), StorageFailed> {
        self.write(state).map_err(|_| StorageFailed)?;
        if !self.delay_after_store.is_zero() {
            std::thread::sleep(self.delay_after_store);
        }
        Ok(())
    }
}

/// Why a state file could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateFileError {
    /// Reading failed.
    #[error("cannot read card state {path}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The content is not a valid state.
    #[error("card state {path} is not valid")]
    Invalid {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: StateError,
    },
}

/// An applet backed by a state file: loads it, or starts in the factory state when it is missing.
pub type FileApplet = Applet<FileStorage, SystemRng, SystemClock>;

/// Opens (or creates in the factory state) the applet stored at `storage.path()`.
pub fn open_file_applet(storage: FileStorage) -> Result<FileApplet, StateFileError> {
    let path = storage.path().to_path_buf();
    match std::fs::read(&path) {
        Ok(bytes) => Applet::load(storage, system_rng(), SystemClock::default(), &bytes)
            .map_err(|source| StateFileError::Invalid { path, source }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Applet::factory(
            storage,
            system_rng(),
            SystemClock::default(),
        )),
        Err(source) => Err(StateFileError::Io { path, source }),
    }
}

/// Decodes a stored state's identity without starting an applet (tests, diagnostics).
pub fn identity_of_state(
    bytes: &[u8],
) -> Result<crate::protocol::identity::CardIdentity, StateError> {
    Ok(applet_of_state(bytes)?.identity())
}

/// The meal entitlement record of a stored state (`None`: no meal served yet).
pub fn meal_entitlement_of_state(
    bytes: &[u8],
) -> Result<Option<crate::applet::MealEntitlement>, StateError> {
    Ok(applet_of_state(bytes)?.meal_entitlement())
}

/// A stored state loaded in memory (nothing written back), for reading it or, in tests, for
/// running the card it describes.
pub fn applet_of_state(
    bytes: &[u8],
) -> Result<Applet<MemoryStorage, SystemRng, SystemClock>, StateError> {
    Applet::load(
        MemoryStorage::default(),
        system_rng(),
        SystemClock::default(),
        bytes,
    )
}
