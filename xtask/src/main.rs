//! `cargo xtask`: palmgate's project automation.
//!
//! - `deps`: installs the Debian packages the build and the system tests need (apt, as root).
//! - `test`: `deps`, builds the binaries, starts pcscd (with vsmartcard's vpcd) and mosquitto on
//!   loopback, runs the whole test suite against them, stops them by PID.
//! - `ci`: formatting, clippy with warnings denied, the systemd unit's exposure score, `test`.
//! - `demo`, `bench`, `eval`, `dist`, `ha-check`, `isolated`: see `cargo xtask help`.
//!
//! This crate has no dependencies, so that it builds on a bare machine before `deps` has run.

mod demo;
mod dist;
mod ha_check;
mod isolated;
mod services;
mod tasks;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <task>

tasks:
  deps    install the Debian packages needed to build and test (needs root)
  test    deps + build + start pcscd/vpcd and mosquitto + run every test
  ci      fmt check + clippy -D warnings + no_std checks + unit exposure + test + demo
  demo    the gate end to end on this machine (virtual cards, simulated sensor and doors)
  bench   run the benchmarks (release build) and print their figures
  eval    evaluate the matcher on ../shared/data/palm (release build)
  dist    Raspberry Pi package: arm64 cross build + .deb, checked [--profile dev|release]
  ha-check  the demo against a real Home Assistant (opt-in; --install needs the network)
  isolated  another task in private mount/net/pid namespaces with its own pcscd, vpcd and broker
            (e.g. `isolated test -p palmgate-system-tests --test gate_e2e`); no network inside
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = args.first().map(String::as_str).unwrap_or("help");
    let rest = &args[args.len().min(1)..];
    let result = match task {
        "deps" => tasks::deps(),
        "test" => tasks::test(rest),
        "ci" => tasks::ci(),
        "demo" => tasks::demo(),
        "bench" => tasks::bench(),
        "eval" => tasks::eval(rest),
        "dist" => dist::dist(rest).map(|_| ()),
        "ha-check" => ha_check::ha_check(rest),
        "isolated" => isolated::isolated(rest),
        "help" | "--help" | "-h" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task `{other}`\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
