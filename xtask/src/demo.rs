//! `cargo xtask demo`: the gate end to end on this machine.
//!
//! pcscd (with vpcd) is started here as for the tests; the scenario itself — issuers, virtual
//! cards, sensor simulator, its own mosquitto, `palmgate run`, the MQTT dashboard — is the
//! `palmgate-demo` binary of the system-test crate, which shares its harness with the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::services;

pub fn run(root: &Path) -> Result<(), String> {
    run_with(root, &[])
}

/// The demo with extra environment for the scenario (`cargo xtask ha-check` points its
/// mosquitto at a fixed port so that Home Assistant can follow it).
pub fn run_with(root: &Path, env: &[(&str, String)]) -> Result<(), String> {
    let run_dir = root.join("target").join("xtask-services");
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let pcscd = services::start_pcscd(&run_dir)?;
    let demo = debug_binary(root, "palmgate-demo");
    let status = Command::new(&demo)
        .current_dir(root)
        .env("PALMGATE_TEST_PCSCD", "1")
        .env("PALMGATE_TEST_VPCD", services::VPCD_ADDR)
        .env("PALMGATE_TEST_MOSQUITTO_BIN", services::mosquitto_binary())
        .envs(env.iter().map(|(name, value)| (*name, value)))
        .status()
        .map_err(|e| format!("cannot run {}: {e}", demo.display()))?;
    drop(pcscd);
    if status.success() {
        Ok(())
    } else {
        Err(format!("the demo failed ({status})"))
    }
}

/// A binary of the debug build: in `$CARGO_TARGET_DIR` when it is set (cargo built it there),
/// else in `<root>/target`.
pub fn debug_binary(root: &Path, name: &str) -> PathBuf {
    target_dir(root, std::env::var_os("CARGO_TARGET_DIR").as_deref())
        .join("debug")
        .join(name)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` (relative to the directory cargo runs in, the
/// workspace root here) or `<root>/target`.
pub fn target_dir(root: &Path, cargo_target_dir: Option<&std::ffi::OsStr>) -> PathBuf {
    match cargo_target_dir {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16, failure 5: with `CARGO_TARGET_DIR` set the demo looked in `<root>/target`.
    #[test]
    fn the_demo_binary_is_found_in_cargo_target_dir() {
        let root = Path::new("/work/palmgate");
        assert_eq!(
            target_dir(root, Some(std::ffi::OsStr::new("/tmp/shared-target"))),
            Path::new("/tmp/shared-target")
        );
        assert_eq!(
            target_dir(root, Some(std::ffi::OsStr::new("build"))),
            Path::new("/work/palmgate/build")
        );
        assert_eq!(target_dir(root, None), Path::new("/work/palmgate/target"));
        assert_eq!(
            target_dir(root, Some(std::ffi::OsStr::new(""))),
            Path::new("/work/palmgate/target")
        );
    }
}
