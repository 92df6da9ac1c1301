//! Support for palmgate's system tests.
//!
//! The services these tests need (pcscd with vsmartcard's vpcd, mosquitto on loopback) are started
//! by `cargo xtask test`, which tells the tests where they are through environment variables. A test
//! that needs a service and does not find it **fails** with a message saying how to run it; it never
//! passes by skipping.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

/// Set by `cargo xtask test` once `pcscd -f` is running with the vpcd driver loaded.
pub const ENV_PCSCD: &str = "PALMGATE_TEST_PCSCD";
/// `host:port` where vpcd waits for a virtual card (set by `cargo xtask test`).
pub const ENV_VPCD: &str = "PALMGATE_TEST_VPCD";
/// `host:port` of the mosquitto broker started for the tests (set by `cargo xtask test`).
pub const ENV_MQTT: &str = "PALMGATE_TEST_MQTT";

/// Returns the value of a service variable, or panics with a clear message when the test was not
/// started by `cargo xtask test` (or the service failed to start).
pub fn require_service(var: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{var} is not set: this system test needs a real service. Run it through \
             `cargo xtask test`, which installs and starts pcscd (with vpcd) and mosquitto."
        ),
    }
}

/// The vpcd address (`host:port`) after checking that pcscd was started for the tests.
pub fn require_pcscd_vpcd() -> String {
    require_service(ENV_PCSCD);
    require_service(ENV_VPCD)
}

/// The broker address (`host:port`) of the test mosquitto.
pub fn require_mqtt() -> String {
    require_service(ENV_MQTT)
}

/// Held while a test uses the virtual reader (see [`reader_lock`]).
#[derive(Debug)]
pub struct ReaderLock {
    _in_process: MutexGuard<'static, ()>,
    /// Released when the file is closed.
    _across_processes: Option<std::fs::File>,
}

/// vpcd has one virtual reader slot per port, and pcscd is one per machine: tests that insert a
/// virtual card hold this lock so that they take turns — the tests of one binary (a mutex) and
/// test binaries or demos run at the same time by different people (a file lock in the temporary
/// directory).
pub fn reader_lock() -> ReaderLock {
    static LOCK: Mutex<()> = Mutex::new(());
    let in_process = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let path = std::env::temp_dir().join("palmgate-test-reader.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .and_then(|file| file.lock().map(|()| file));
    if let Err(error) = &file {
        eprintln!(
            "warning: no lock on {} ({error}); tests running elsewhere may share the reader",
            path.display()
        );
    }
    ReaderLock {
        _in_process: in_process,
        _across_processes: file.ok(),
    }
}

/// Path of a binary of this workspace (`palmgate`, `palmgate-vcard`), built in the same target
/// directory as the running test (`cargo xtask test` builds every binary first).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current executable");
    // Tests run from target/<profile>/deps/, binaries (the demo) from target/<profile>/.
    let mut dir = exe.parent().expect("executable in a directory");
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (`cargo build --workspace --bins`, \
         which `cargo xtask test` does)",
        path.display()
    );
    path
}

pub mod gate;
pub mod osdp;
pub mod pcscd;
pub mod schema;
pub mod site;
pub mod templates;
