//! `cargo xtask demo`: the gate end to end on this machine.
//!
//! pcscd (with vpcd) is started here as for the tests; the scenario itself — issuers, virtual
//! cards, sensor simulator, its own mosquitto, `palmgate run`, the MQTT dashboard — is the
//! `palmgate-demo` binary of the system-test crate, which shares its harness with the tests.

use std::path::Path;
use std::process::Command;

use crate::services;

pub fn run(root: &Path) -> Result<(), String> {
    let run_dir = root.join("target").join("xtask-services");
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let pcscd = services::start_pcscd(&run_dir)?;
    let demo = root.join("target").join("debug").join("palmgate-demo");
    let status = Command::new(&demo)
        .current_dir(root)
        .env("PALMGATE_TEST_PCSCD", "1")
        .env("PALMGATE_TEST_VPCD", services::VPCD_ADDR)
        .env("PALMGATE_TEST_MOSQUITTO_BIN", services::mosquitto_binary())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", demo.display()))?;
    drop(pcscd);
    if status.success() {
        Ok(())
    } else {
        Err(format!("the demo failed ({status})"))
    }
}
