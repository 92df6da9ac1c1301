//! `cargo xtask isolated <xtask task> [args]`: runs another xtask task in private mount, network
//! and PID namespaces, with its own `/run/pcscd` and loopback.
//!
//! Why: the system tests start pcscd (its socket is the fixed path `/run/pcscd/pcscd.comm`),
//! vpcd (fixed TCP port 35963) and mosquitto on loopback. Two runs on one machine — two engineers,
//! or a test run beside a demo — would meet each other's services. In its own namespaces a run
//! starts and stops its own, and cannot stop anyone else's. There is no network inside: fetch and
//! build first (`cargo build --workspace --all-targets`).
//!
//! Example: `cargo xtask isolated test -p palmgate-system-tests --test fault_matrix`.

use std::process::Command;

/// The script run inside the namespaces: a private tmpfs on /run/pcscd, loopback up, then the
/// task through the same `cargo` that runs this xtask.
const INSIDE: &str =
    "mkdir -p /run/pcscd && mount -t tmpfs tmpfs /run/pcscd && ip link set lo up && exec \"$@\"";

pub fn isolated(rest: &[String]) -> Result<(), String> {
    if rest.is_empty() {
        return Err("usage: cargo xtask isolated <task> [args] (for example `test -p palmgate-system-tests --test gate_e2e`)".into());
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new("unshare")
        .args(["--mount", "--net", "--pid", "--fork", "--mount-proc"])
        .args(["bash", "-c", INSIDE, "isolated", &cargo, "xtask"])
        .args(rest)
        .status()
        .map_err(|error| format!("cannot run unshare (util-linux; needs root): {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo xtask {}` in private namespaces: {status}",
            rest.join(" ")
        ))
    }
}
