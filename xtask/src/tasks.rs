//! The tasks.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::services;

/// Debian packages: the build (PC/SC headers, libudev for the serial port crate, pkg-config), the
/// system tests (pcscd, vsmartcard's vpcd, mosquitto and its clients), the unit check
/// (systemd-analyze), and the CA bundle the example configuration points at.
const PACKAGES: &[&str] = &[
    "pkg-config",
    "libpcsclite-dev",
    "libudev-dev",
    "pcscd",
    "vsmartcard-vpcd",
    "mosquitto",
    "mosquitto-clients",
    "systemd",
    "ca-certificates",
    // The plot labels of `palmgate eval` (plotters renders text from a TrueType file).
    "fonts-dejavu-core",
];

/// Highest `systemd-analyze security` exposure accepted for the unit.
const MAX_EXPOSURE: f64 = 2.5;

pub(crate) fn workspace_root() -> PathBuf {
    // xtask/ is one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub(crate) fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string()));
    command.current_dir(workspace_root());
    command
}

pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    println!("xtask: $ {shown}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

pub(crate) fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|output| {
            String::from_utf8_lossy(&output.stdout).contains("install ok installed")
        })
}

pub fn deps() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .copied()
        .filter(|package| !installed(package))
        .collect();
    if missing.is_empty() {
        println!("xtask: system packages present: {}", PACKAGES.join(" "));
        return python_deps();
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        return Err(format!(
            "missing Debian packages: {}\nrun as root: apt-get update && {install}",
            missing.join(" ")
        ));
    }
    println!("xtask: installing {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    // Debian's postinst may have started its own pcscd or mosquitto (where an init system runs);
    // the tests start theirs in the foreground, so stop any that the install started.
    for service in ["pcscd", "mosquitto"] {
        let _ = Command::new("systemctl")
            .args(["stop", service])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    python_deps()
}

/// Python packages of the system tests, as (module, pip requirement): libosdp's control panel
/// drives the OSDP reader in `tests/tests/panel_osdp.rs`.
const PYTHON_PACKAGES: &[(&str, &str)] = &[("osdp", "libosdp==3.2.9")];

fn python_deps() -> Result<(), String> {
    for (module, requirement) in PYTHON_PACKAGES {
        let present = Command::new("python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|output| output.status.success());
        if present {
            println!("xtask: python package present: {requirement}");
            continue;
        }
        let pip = |extra: &[&str]| {
            run(Command::new("python3")
                .args(["-m", "pip", "install", "--quiet"])
                .args(extra)
                .arg(requirement))
        };
        // A distribution's own Python refuses pip without --break-system-packages (PEP 668).
        pip(&[])
            .or_else(|_| pip(&["--break-system-packages"]))
            .map_err(|error| {
                format!("{error}\ninstall it by hand: python3 -m pip install {requirement}")
            })?;
    }
    Ok(())
}

/// `cargo xtask test [extra cargo test args]`.
pub fn test(extra: &[String]) -> Result<(), String> {
    deps()?;
    run(cargo().args(["build", "--workspace", "--bins", "--locked"]))?;

    let run_dir = workspace_root().join("target").join("xtask-services");
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let pcscd = services::start_pcscd(&run_dir)?;
    let port = services::free_port()?;
    let mosquitto_dir = std::env::temp_dir().join(format!("palmgate-mosquitto-{port}"));
    let config = services::mosquitto_config(&mosquitto_dir, port)?;
    let mosquitto = services::start_mosquitto(&config, port, &run_dir)?;

    let result = run(cargo()
        .args(["test", "--workspace", "--locked", "--no-fail-fast"])
        .args(extra)
        .env("PALMGATE_TEST_PCSCD", "1")
        .env("PALMGATE_TEST_VPCD", services::VPCD_ADDR)
        .env("PALMGATE_TEST_MQTT", format!("127.0.0.1:{port}"))
        .env("PALMGATE_TEST_MOSQUITTO_BIN", services::mosquitto_binary())
        .env("RUST_BACKTRACE", "1"));

    drop(mosquitto);
    drop(pcscd);
    let _ = std::fs::remove_dir_all(&mosquitto_dir);
    result
}

pub fn ci() -> Result<(), String> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    deps()?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]))?;
    // The applet and the comparison it uses must build without std (they run on a card).
    run(cargo().args([
        "check",
        "--locked",
        "-p",
        "palmgate-matcher",
        "--no-default-features",
    ]))?;
    run(cargo().args([
        "check",
        "--locked",
        "-p",
        "palmgate-card",
        "--no-default-features",
        "--lib",
    ]))?;
    // The Raspberry Pi GPIO backend builds (it can only run on a Pi).
    run(cargo().args([
        "clippy",
        "--locked",
        "-p",
        "palmgate-door",
        "--features",
        "rpi",
        "--",
        "-D",
        "warnings",
    ]))?;
    unit_exposure()?;
    test(&[])?;
    // The README's first command must work too.
    demo()?;
    // The Raspberry Pi package builds, with exactly the files docs/operations.md lists (the
    // debug profile: the package's contents and maintainer scripts are what is checked here; the
    // release build only makes the binary faster and takes three times as long).
    crate::dist::dist(&["--profile".to_string(), "dev".to_string()]).map(|_| ())
}

/// `systemd-analyze security --offline=true` on the unit; fails above [`MAX_EXPOSURE`].
fn unit_exposure() -> Result<(), String> {
    let unit = workspace_root().join("systemd").join("palmgate.service");
    let output = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .map_err(|e| format!("cannot run systemd-analyze (package systemd): {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let exposure = text
        .lines()
        .find_map(|line| line.split("Overall exposure level for").nth(1))
        .and_then(|rest| rest.split(':').nth(1))
        .and_then(|score| score.split_whitespace().next())
        .and_then(|score| score.parse::<f64>().ok())
        .ok_or_else(|| {
            format!(
                "could not read the exposure from systemd-analyze:\n{text}{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    println!("xtask: systemd unit exposure: {exposure:.1} (limit {MAX_EXPOSURE})");
    if exposure > MAX_EXPOSURE {
        return Err(format!(
            "{} exposure {exposure} is above {MAX_EXPOSURE}:\n{text}",
            unit.display()
        ));
    }
    Ok(())
}

pub fn demo() -> Result<(), String> {
    deps()?;
    run(cargo().args(["build", "--workspace", "--bins", "--locked"]))?;
    crate::demo::run(&workspace_root())
}

pub fn bench() -> Result<(), String> {
    run(cargo().args(["bench", "--workspace", "--locked"]))
}

/// The evaluation sets in `../shared/data/palm` and how `palmgate eval --set` reads them
/// (what the images show, and which sample numbers make the first session).
const EVAL_SETS: [(&str, &str); 6] = [
    ("roi", "tongji-roi"),
    ("roi", "tongji-roi-dev"),
    ("roi", "iitd-roi-dev"),
    ("hand,sessions=3", "casia940-small"),
    ("hand,sessions=3", "casia940-dev"),
    ("hand", "coep-dev"),
];

/// Identity pairs of those sets that are one hand filed under two names (`palmgate eval
/// --same-hand`): their comparisons are not impostor trials. How they were found and checked:
/// docs/matcher.md, "One hand under two names".
const EVAL_SAME_HANDS: [(&str, &str, &str); 4] = [
    ("iitd-roi-dev", "R025", "R115"),
    ("coep-dev", "xhand078", "xhand160"),
    ("coep-dev", "xhand079", "xhand159"),
    ("coep-dev", "xhand084", "xhand164"),
];

/// Synthetic hands added to the calibration pool of the profiles.
const EVAL_SYNTHETIC_IDENTITIES: &str = "100";

/// One `palmgate eval` over every set: one table, one calibration of the profiles.
/// `PALMGATE_PALM_DATA` overrides the data folder (a git worktree's `..` is not the checkout's).
pub fn eval(extra: &[String]) -> Result<(), String> {
    let data = std::env::var_os("PALMGATE_PALM_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            workspace_root()
                .join("..")
                .join("shared")
                .join("data")
                .join("palm")
        });
    let plan = eval_plan(&data)?;
    for line in &plan.left_out {
        eprintln!("xtask eval: {line}");
    }
    let mut command = cargo();
    command.args([
        "run",
        "--release",
        "--locked",
        "-p",
        "palmgate",
        "--bin",
        "palmgate",
        "--",
        "eval",
    ]);
    command.args(&plan.arguments);
    command.args(["--synthetic", EVAL_SYNTHETIC_IDENTITIES]);
    run(command.args(palmgate_arguments(extra)))
}

/// What `palmgate eval` is given for a data folder, and what is left out of it and why.
#[derive(Debug, PartialEq, Eq)]
struct EvalPlan {
    /// `--set` for each known set the folder holds, `--same-hand` for each pair whose two
    /// identities are both there.
    arguments: Vec<String>,
    /// One line for each known set missing, each pair not passed, each folder not read: a data
    /// folder of other identities (the unseen ones) or fewer sets runs, and says what it read.
    left_out: Vec<String>,
}

/// The evaluation of `data`: every known set it holds; none is an error.
fn eval_plan(data: &Path) -> Result<EvalPlan, String> {
    if !data.is_dir() {
        return Err(format!(
            "{} is missing: the evaluation sets live in ../shared/data/palm (or set PALMGATE_PALM_DATA)",
            data.display()
        ));
    }
    let mut arguments = Vec::new();
    let mut left_out = Vec::new();
    let mut read = Vec::new();
    for (kind, name) in EVAL_SETS {
        let folder = data.join(name);
        if folder.is_dir() {
            arguments.push("--set".to_owned());
            arguments.push(format!("{kind}:{}", folder.display()));
            read.push(name);
        } else {
            left_out.push(format!("{name}: not in {}, left out", data.display()));
        }
    }
    if read.is_empty() {
        return Err(format!(
            "{} holds none of the evaluation sets ({})",
            data.display(),
            EVAL_SETS.map(|(_, name)| name).join(", ")
        ));
    }
    for (name, a, b) in EVAL_SAME_HANDS {
        let pair = format!("{name}:{a}={b}");
        let missing: Vec<&str> = [a, b]
            .into_iter()
            .filter(|id| !data.join(name).join(id).is_dir())
            .collect();
        if read.contains(&name) && missing.is_empty() {
            arguments.push("--same-hand".to_owned());
            arguments.push(pair);
        } else if read.contains(&name) {
            // Not there, so there are no trials to leave out: passing it would be an error.
            left_out.push(format!(
                "--same-hand {pair} not passed: {name} has no identity {}",
                missing.join(" or ")
            ));
        }
    }
    let mut unknown: Vec<String> = std::fs::read_dir(data)
        .map_err(|e| format!("cannot list {}: {e}", data.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|folder| !read.contains(&folder.as_str()))
        .filter(|folder| !folder.starts_with('.'))
        .collect();
    unknown.sort();
    for folder in unknown {
        left_out.push(format!(
            "{folder}: not one of the evaluation sets, not read (palmgate eval --set KIND:{} reads it)",
            data.join(&folder).display()
        ));
    }
    Ok(EvalPlan {
        arguments,
        left_out,
    })
}

/// The arguments after `cargo xtask eval` that go to `palmgate eval`: a leading `--` (as in
/// `cargo xtask eval -- --threads 2`, docs/matcher.md) separates them and is not one of them.
fn palmgate_arguments(extra: &[String]) -> &[String] {
    match extra.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => extra,
    }
}

#[cfg(test)]
mod tests {
    use super::{EvalPlan, eval_plan, palmgate_arguments};

    /// A data folder holding `folders` (each `SET/IDENTITY` or `SET`), removed on drop.
    struct DataFolder(std::path::PathBuf);

    impl DataFolder {
        fn new(test: &str, folders: &[&str]) -> DataFolder {
            let root = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for folder in folders {
                std::fs::create_dir_all(root.join(folder)).expect("create folder");
            }
            DataFolder(root)
        }
    }

    impl Drop for DataFolder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_development_folder_gets_every_set_and_pair() {
        let data = DataFolder::new(
            "every-set",
            &[
                "tongji-roi/1",
                "tongji-roi-dev/1",
                "iitd-roi-dev/R025",
                "iitd-roi-dev/R115",
                "casia940-small/1",
                "casia940-dev/1",
                "coep-dev/xhand078",
                "coep-dev/xhand160",
                "coep-dev/xhand079",
                "coep-dev/xhand159",
                "coep-dev/xhand084",
                "coep-dev/xhand164",
            ],
        );
        let plan = eval_plan(&data.0).expect("plan");
        assert_eq!(plan.left_out, Vec::<String>::new());
        let sets = plan.arguments.iter().filter(|a| *a == "--set").count();
        let pairs = plan
            .arguments
            .iter()
            .filter(|a| *a == "--same-hand")
            .count();
        assert_eq!((sets, pairs), (6, 4));
        let iitd = format!("roi:{}", data.0.join("iitd-roi-dev").display());
        assert!(plan.arguments.contains(&iitd), "{:?}", plan.arguments);
        assert!(
            plan.arguments
                .contains(&"iitd-roi-dev:R025=R115".to_owned())
        );
    }

    #[test]
    fn a_folder_of_other_identities_runs_and_says_what_it_left_out() {
        // The unseen identities: other people under the same set names, some sets missing, a
        // set palmgate does not know.
        let data = DataFolder::new(
            "other-identities",
            &["iitd-roi-dev/L500", "coep-dev/hand900", "iitd-roi-test/L1"],
        );
        let EvalPlan {
            arguments,
            left_out,
        } = eval_plan(&data.0).expect("plan");
        assert_eq!(
            arguments,
            vec![
                "--set".to_owned(),
                format!("roi:{}", data.0.join("iitd-roi-dev").display()),
                "--set".to_owned(),
                format!("hand:{}", data.0.join("coep-dev").display()),
            ]
        );
        let said = |needle: &str| left_out.iter().filter(|l| l.contains(needle)).count();
        assert_eq!(said("left out"), 4, "{left_out:?}");
        assert_eq!(said("tongji-roi-dev: not in"), 1, "{left_out:?}");
        assert_eq!(said("not passed"), 4, "{left_out:?}");
        assert_eq!(
            said("iitd-roi-dev:R025=R115 not passed: iitd-roi-dev has no identity R025 or R115"),
            1
        );
        assert_eq!(
            said("iitd-roi-test: not one of the evaluation sets"),
            1,
            "{left_out:?}"
        );
    }

    #[test]
    fn a_folder_of_no_known_set_is_an_error() {
        let data = DataFolder::new("no-set", &["palms/1"]);
        let error = eval_plan(&data.0).expect_err("no set");
        assert!(
            error.contains("holds none of the evaluation sets"),
            "{error}"
        );
        let missing = data.0.join("absent");
        assert!(
            eval_plan(&missing)
                .expect_err("no folder")
                .contains("is missing")
        );
    }

    #[test]
    fn a_leading_double_dash_is_not_passed_to_palmgate() {
        let args = |list: &[&str]| {
            list.iter()
                .map(|s| (*s).to_owned())
                .collect::<Vec<String>>()
        };
        assert_eq!(
            palmgate_arguments(&args(&["--", "--threads", "2"])),
            args(&["--threads", "2"])
        );
        assert_eq!(
            palmgate_arguments(&args(&["--threads", "2"])),
            args(&["--threads", "2"])
        );
        assert!(palmgate_arguments(&[]).is_empty());
    }
}
