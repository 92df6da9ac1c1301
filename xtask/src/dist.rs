//! `cargo xtask dist [--profile dev|release]`: the Raspberry Pi package.
//!
//! 1. Installs what the cross build needs when it is missing: the Rust target, Debian's aarch64
//!    cross compiler, the arm64 PC/SC library (Debian multiarch) and cargo-deb.
//! 2. Cross-compiles `palmgate` (feature `rpi`: Raspberry Pi GPIO) for [`TARGET`].
//! 3. Builds the `.deb` with cargo-deb from `[package.metadata.deb]` in `daemon/Cargo.toml`.
//! 4. Checks the package: its file list is exactly [`expected_files`] (and each of those paths is
//!    named in `docs/operations.md`), the binary is an aarch64 ELF whose shared libraries and glibc
//!    version are covered by `Depends`, `Architecture: arm64`, pcscd is a dependency, the
//!    configuration is a conffile, the maintainer scripts are there.
//! 5. Installs it into an empty directory with `dpkg --root` (maintainer scripts run with
//!    `DPKG_ROOT`, as image builders run them), checks what `postinst` did (user, groups,
//!    directories, ownership and modes), purges it and checks what `postrm` removed.
//!
//! Only `palmgate` is packaged: `palmgate-vcard` (the virtual card) is a test and demonstration
//! tool that has no place on a gate, where a real reader and real cards are used.
//!
//! The cross linker and pkg-config settings are given to the cargo child process only, not written
//! to `.cargo/config.toml`: they name tools that only `dist` installs, and a committed setting
//! would also apply to native aarch64 builds (on a Pi, or an arm64 CI runner) where it is wrong.
//! The build uses the shared `target/` (cargo keeps the cross artifacts in `target/<triple>/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tasks::{cargo, installed, is_root, run, workspace_root};

/// The Raspberry Pi's target (64-bit Raspberry Pi OS, Debian arm64).
const TARGET: &str = "aarch64-unknown-linux-gnu";
/// Debian's name for it.
const DEB_ARCH: &str = "arm64";
/// The GNU triplet of Debian's cross tools and multiarch directories.
const GNU_TRIPLET: &str = "aarch64-linux-gnu";
/// cargo-deb, pinned (3.8.0 needs Rust 1.85; we build with 1.95).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Debian packages of the build machine for the cross build. `libc6-dev-arm64-cross` is only a
/// recommendation of the compiler, and `xtask deps` installs without recommendations.
const CROSS_PACKAGES: &[&str] = &[
    "gcc-aarch64-linux-gnu",
    "libc6-dev-arm64-cross",
    "binutils-aarch64-linux-gnu",
    "pkg-config",
    "libpcsclite-dev:arm64",
];

/// Shared libraries the gate binary may link, and the Debian package that provides each on the Pi.
/// A library not in this table fails the check: add it here and to `depends` in daemon/Cargo.toml.
const LIBRARY_PACKAGES: &[(&str, &str)] = &[
    ("libc.so.6", "libc6"),
    ("libm.so.6", "libc6"),
    ("libdl.so.2", "libc6"),
    ("libpthread.so.0", "libc6"),
    ("librt.so.1", "libc6"),
    ("ld-linux-aarch64.so.1", "libc6"),
    ("libgcc_s.so.1", "libgcc-s1"),
    ("libpcsclite.so.1", "libpcsclite1"),
];

/// The build profile of `--profile`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// `dev`: quick to build, for CI and iteration.
    Dev,
    /// `release`: what goes onto gates.
    Release,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Dev => "dev",
            Profile::Release => "release",
        }
    }

    /// The directory under `target/<triple>/` cargo writes this profile to.
    fn dir(self) -> &'static str {
        match self {
            Profile::Dev => "debug",
            Profile::Release => "release",
        }
    }
}

fn parse_args(args: &[String]) -> Result<Profile, String> {
    let mut profile = Profile::Release;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--profile" => args
                .next()
                .map(String::as_str)
                .ok_or("--profile needs a value: dev or release")?,
            other => match other.strip_prefix("--profile=") {
                Some(value) => value,
                None => {
                    return Err(format!(
                        "dist: unknown argument `{other}` (usage: dist [--profile dev|release])"
                    ));
                }
            },
        };
        profile = match value {
            "dev" | "debug" => Profile::Dev,
            "release" => Profile::Release,
            other => return Err(format!("dist: unknown profile `{other}`: dev or release")),
        };
    }
    Ok(profile)
}

/// `cargo xtask dist`; returns the path of the checked package.
pub fn dist(args: &[String]) -> Result<PathBuf, String> {
    let profile = parse_args(args)?;
    let started = std::time::Instant::now();
    ensure_toolchain()?;
    let binary = cross_build(profile)?;
    check_elf_machine(&binary)?;
    let deb = build_deb(profile)?;
    let report = check_package(&deb, &binary)?;
    println!("{report}");
    check_install(&deb)?;
    println!(
        "xtask: dist ({} profile) done in {:.0} s: {}",
        profile.name(),
        started.elapsed().as_secs_f64(),
        deb.display()
    );
    Ok(deb)
}

fn output(command: &mut Command) -> Result<String, String> {
    let shown = format!("{command:?}");
    let out = command
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{shown} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn ensure_toolchain() -> Result<(), String> {
    let targets = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .map_err(|e| format!("{e}\nthe cross build needs rustup (https://rustup.rs)"))?;
    if !targets.lines().any(|line| line.trim() == TARGET) {
        run(Command::new("rustup").args(["target", "add", TARGET]))?;
    }

    let foreign = output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    let has_arch = foreign.lines().any(|line| line.trim() == DEB_ARCH);
    let missing: Vec<&str> = CROSS_PACKAGES
        .iter()
        .copied()
        .filter(|package| !installed(package))
        .collect();
    if !missing.is_empty() || !has_arch {
        if !is_root() {
            return Err(format!(
                "missing for the cross build: {}\nrun as root: dpkg --add-architecture {DEB_ARCH} && apt-get update && \
                 apt-get install -y --no-install-recommends {}",
                missing.join(" "),
                CROSS_PACKAGES.join(" ")
            ));
        }
        if !has_arch {
            run(Command::new("dpkg").args(["--add-architecture", DEB_ARCH]))?;
        }
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }

    let version = Command::new("cargo").args(["deb", "--version"]).output();
    let present = version.as_ref().is_ok_and(|out| out.status.success());
    if present {
        let shown = version
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string())
            .unwrap_or_default();
        println!("xtask: {shown}");
    } else {
        run(Command::new("cargo").args([
            "install",
            "cargo-deb",
            "--locked",
            "--version",
            CARGO_DEB_VERSION,
        ]))?;
    }
    Ok(())
}

/// Environment of the cross build. The pkg-config settings are scoped to the target (the
/// pkg-config crate reads `NAME_<target>` first) so that a build script run for the host is not
/// pointed at arm64 libraries. `PKG_CONFIG_LIBDIR` replaces the default search path, so only the
/// arm64 `.pc` files of Debian's multiarch directory are found; they name `/usr/lib/<triplet>`,
/// which is where multiarch installed the libraries, so no sysroot is needed.
fn cross_env(command: &mut Command) -> &mut Command {
    let target_env = TARGET.replace('-', "_");
    command
        .env(
            format!("CARGO_TARGET_{}_LINKER", target_env.to_uppercase()),
            format!("{GNU_TRIPLET}-gcc"),
        )
        .env(format!("CC_{target_env}"), format!("{GNU_TRIPLET}-gcc"))
        .env(format!("AR_{target_env}"), format!("{GNU_TRIPLET}-ar"))
        .env(format!("PKG_CONFIG_ALLOW_CROSS_{target_env}"), "1")
        .env(
            format!("PKG_CONFIG_LIBDIR_{target_env}"),
            format!("/usr/lib/{GNU_TRIPLET}/pkgconfig:/usr/share/pkgconfig"),
        )
}

fn cross_build(profile: Profile) -> Result<PathBuf, String> {
    let started = std::time::Instant::now();
    run(cross_env(&mut cargo()).args([
        "build",
        "--locked",
        "-p",
        "palmgate",
        "--bin",
        "palmgate",
        "--features",
        "rpi",
        "--target",
        TARGET,
        "--profile",
        profile.name(),
    ]))?;
    println!(
        "xtask: cross build ({} profile) took {:.0} s",
        profile.name(),
        started.elapsed().as_secs_f64()
    );
    let binary = workspace_root()
        .join("target")
        .join(TARGET)
        .join(profile.dir())
        .join("palmgate");
    if binary.is_file() {
        Ok(binary)
    } else {
        Err(format!(
            "the cross build did not produce {}",
            binary.display()
        ))
    }
}

/// The ELF header's machine field must say AArch64 (183).
fn check_elf_machine(binary: &Path) -> Result<(), String> {
    let bytes = std::fs::read(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    let is_elf64_le = bytes.get(..6) == Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]);
    let machine = bytes.get(18..20).map(|m| u16::from_le_bytes([m[0], m[1]]));
    if is_elf64_le && machine == Some(183) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a 64-bit little-endian AArch64 ELF (machine {machine:?})",
            binary.display()
        ))
    }
}

fn build_deb(profile: Profile) -> Result<PathBuf, String> {
    // One directory per profile: a dev package (unoptimised) must not be taken for a release one.
    let out_dir = workspace_root()
        .join("target")
        .join("dist")
        .join(profile.name());
    std::fs::create_dir_all(&out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    // --no-build: cargo-deb packages the binary built above (with our environment and features).
    // --strip: always, with the target's strip (`aarch64-linux-gnu-strip`); without it cargo-deb
    // keeps the release profile's line tables, and the package carries a 190 MB binary instead of
    // a few tens of MB. The unstripped binary stays in target/ to symbolise a crash report.
    let mut command = cargo();
    cross_env(&mut command)
        .args([
            "deb",
            "--no-build",
            "--strip",
            "-p",
            "palmgate",
            "--target",
            TARGET,
            "--profile",
            profile.name(),
            "--output",
        ])
        .arg(&out_dir);
    println!("xtask: $ {command:?}");
    let stdout = output(&mut command)?;
    print!("{stdout}");
    stdout
        .lines()
        .map(str::trim)
        .rfind(|line| line.ends_with(".deb"))
        .map(PathBuf::from)
        .filter(|path| path.is_file())
        .ok_or_else(|| format!("cargo deb did not say where it wrote the package:\n{stdout}"))
}

/// Every regular file the package must install, and nothing else: the fixed files, and one entry
/// per `docs/*.md` (all of the project's documentation goes to `/usr/share/doc/palmgate/`).
fn expected_files() -> Result<BTreeSet<String>, String> {
    let mut files: BTreeSet<String> = [
        "/usr/bin/palmgate",
        "/lib/systemd/system/palmgate.service",
        "/usr/lib/sysusers.d/palmgate.conf",
        "/usr/lib/tmpfiles.d/palmgate.conf",
        "/lib/udev/rules.d/99-palmgate-sensor.rules",
        "/etc/palmgate/palmgate.toml",
        "/usr/share/doc/palmgate/copyright",
        "/usr/share/doc/palmgate/README.md",
        "/usr/share/doc/palmgate/examples/palmgate.example.toml",
        "/usr/share/doc/palmgate/examples/issuers/example-site.pub",
        "/usr/share/doc/palmgate/examples/operators/example-operator.pub",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let docs = workspace_root().join("docs");
    let entries = std::fs::read_dir(&docs).map_err(|e| format!("{}: {e}", docs.display()))?;
    for entry in entries {
        let name = entry
            .map_err(|e| format!("{}: {e}", docs.display()))?
            .file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".md") {
            files.insert(format!("/usr/share/doc/palmgate/{name}"));
        }
    }
    Ok(files)
}

/// One line of `dpkg-deb -c`: `-rw-r--r-- root/root 1234 2026-11-25 02:00 ./usr/bin/palmgate`.
struct Entry {
    mode: String,
    path: String,
}

fn parse_listing(listing: &str) -> Vec<Entry> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let mode = fields.next()?.to_string();
            let path = fields.nth(4)?.trim_start_matches('.').to_string();
            Some(Entry { mode, path })
        })
        .collect()
}

fn check_package(deb: &Path, binary: &Path) -> Result<String, String> {
    let mut problems = Vec::new();
    let listing = output(Command::new("dpkg-deb").arg("-c").arg(deb))?;
    let entries = parse_listing(&listing);
    let files: BTreeSet<String> = entries
        .iter()
        .filter(|entry| entry.mode.starts_with('-'))
        .map(|entry| entry.path.clone())
        .collect();
    let expected = expected_files()?;
    for missing in expected.difference(&files) {
        problems.push(format!("missing from the package: {missing}"));
    }
    for extra in files.difference(&expected) {
        problems.push(format!(
            "not expected in the package: {extra} (add it to expected_files in xtask/src/dist.rs)"
        ));
    }
    let mode_of = |path: &str| {
        entries
            .iter()
            .find(|entry| entry.path == path)
            .map(|entry| entry.mode.as_str())
    };
    if mode_of("/usr/bin/palmgate") != Some("-rwxr-xr-x") {
        problems.push(format!(
            "/usr/bin/palmgate has mode {:?}, expected -rwxr-xr-x",
            mode_of("/usr/bin/palmgate")
        ));
    }
    if mode_of("/etc/palmgate/palmgate.toml") != Some("-rw-r-----") {
        problems.push(format!(
            "/etc/palmgate/palmgate.toml has mode {:?}, expected -rw-r----- (it names key files)",
            mode_of("/etc/palmgate/palmgate.toml")
        ));
    }

    // The installer's guide lists every installed file.
    let guide_path = workspace_root().join("docs").join("operations.md");
    let guide = std::fs::read_to_string(&guide_path)
        .map_err(|e| format!("{}: {e}", guide_path.display()))?;
    for path in &expected {
        let documented =
            guide.contains(path.as_str()) || path.starts_with("/usr/share/doc/palmgate/");
        if !documented {
            problems.push(format!(
                "{path} is installed but docs/operations.md does not name it"
            ));
        }
    }

    let field = |name: &str| output(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name));
    let architecture = field("Architecture")?;
    if architecture.trim() != DEB_ARCH {
        problems.push(format!(
            "Architecture: {} (expected {DEB_ARCH})",
            architecture.trim()
        ));
    }
    let depends = field("Depends")?;
    let dependencies = parse_depends(&depends);
    if !dependencies.iter().any(|(name, _)| name == "pcscd") {
        problems.push(format!("Depends does not pull pcscd: {}", depends.trim()));
    }
    problems.extend(check_libraries(binary, &dependencies)?);

    let conffiles =
        output(Command::new("dpkg-deb").arg("-I").arg(deb).arg("conffiles")).unwrap_or_default();
    if !conffiles
        .lines()
        .any(|line| line.trim() == "/etc/palmgate/palmgate.toml")
    {
        problems.push(format!(
            "/etc/palmgate/palmgate.toml is not a conffile (conffiles: {conffiles:?})"
        ));
    }
    for script in ["postinst", "prerm", "postrm"] {
        if output(Command::new("dpkg-deb").arg("-I").arg(deb).arg(script)).is_err() {
            problems.push(format!("the package has no {script} script"));
        }
    }

    let info = output(Command::new("dpkg-deb").arg("-I").arg(deb))?;
    println!(
        "xtask: package {}\n{info}\nxtask: files (dpkg-deb -c):\n{listing}",
        deb.display()
    );
    if problems.is_empty() {
        Ok(format!(
            "xtask: package checked: {} files as expected, arm64, depends on pcscd",
            files.len()
        ))
    } else {
        Err(format!(
            "the package {} is wrong:\n  {}",
            deb.display(),
            problems.join("\n  ")
        ))
    }
}

/// `dpkg --root` install and purge in `target/dist/install-check/`, checked.
fn check_install(deb: &Path) -> Result<(), String> {
    if !is_root() {
        return Err("the install check (dpkg --root) needs root".to_string());
    }
    let root = workspace_root()
        .join("target")
        .join("dist")
        .join("install-check");
    if root.exists() {
        std::fs::remove_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    }
    let write = |relative: &str, text: &str| -> Result<(), String> {
        let path = root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))
    };
    // The smallest tree dpkg and systemd-sysusers work on: a dpkg database and the base accounts
    // (Debian's `dialout` is group 20; `gpio` is created by the package's sysusers file).
    write("var/lib/dpkg/status", "")?;
    write("var/lib/dpkg/info/.keep", "")?;
    write("var/lib/dpkg/updates/.keep", "")?;
    write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n")?;
    write("etc/group", "root:x:0:\ndialout:x:20:\n")?;
    write("etc/shadow", "")?;
    write("etc/gshadow", "")?;
    let dpkg = |args: &[&str]| {
        let mut command = Command::new("dpkg");
        command
            .arg(format!("--root={}", root.display()))
            .args([
                "--force-script-chrootless",
                "--force-architecture",
                "--force-depends",
                "--log=/dev/null",
            ])
            .args(args);
        command
    };
    run(dpkg(&["--install"]).arg(deb))?;

    let mut problems = Vec::new();
    let status = output(&mut dpkg(&["--status", "palmgate"]))?;
    if !status.contains("Status: install ok installed") {
        problems.push(format!("not installed cleanly:\n{status}"));
    }
    let group = std::fs::read_to_string(root.join("etc/group")).unwrap_or_default();
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    let palmgate_gid = account_id(&group, "palmgate");
    let palmgate_uid = account_id(&passwd, "palmgate");
    for needed in ["gpio", "dialout"] {
        let member = group.lines().any(|line| {
            line.starts_with(&format!("{needed}:"))
                && line
                    .rsplit(':')
                    .next()
                    .is_some_and(|m| m.split(',').any(|u| u == "palmgate"))
        });
        if !member {
            problems.push(format!(
                "postinst: user palmgate is not in group {needed}:\n{group}"
            ));
        }
    }
    match (palmgate_uid, palmgate_gid) {
        (Some(uid), Some(gid)) => {
            for (path, mode, owner) in [
                ("etc/palmgate/palmgate.toml", 0o640, (0, gid)),
                ("etc/palmgate", 0o750, (0, gid)),
                ("etc/palmgate/conf.d", 0o750, (0, gid)),
                ("var/lib/palmgate", 0o700, (uid, gid)),
            ] {
                match stat(&root.join(path)) {
                    Some(found) if found == (mode, owner) => {}
                    found => problems.push(format!(
                        "postinst: /{path} is {found:?}, expected mode {mode:o} owner {owner:?} (mode, (uid, gid))"
                    )),
                }
            }
        }
        _ => problems.push(format!(
            "postinst did not create the palmgate user and group:\n{passwd}{group}"
        )),
    }

    let installed_binary = root.join("usr/bin/palmgate");
    let sections = output(
        Command::new(format!("{GNU_TRIPLET}-readelf"))
            .arg("--section-headers")
            .arg(&installed_binary),
    )?;
    if sections.contains(".debug_info") {
        problems.push("/usr/bin/palmgate is not stripped (it has .debug_info)".to_string());
    }
    if let Ok(metadata) = std::fs::metadata(&installed_binary) {
        println!(
            "xtask: /usr/bin/palmgate in the package: {:.1} MB",
            metadata.len() as f64 / 1e6
        );
    }

    run(&mut dpkg(&["--purge", "palmgate"]))?;
    for gone in [
        "var/lib/palmgate",
        "etc/palmgate/palmgate.toml",
        "usr/bin/palmgate",
    ] {
        if root.join(gone).exists() {
            problems.push(format!("purge left /{gone} behind"));
        }
    }
    if problems.is_empty() {
        println!(
            "xtask: install check: dpkg --root install, postinst (user, groups, modes) and purge as expected"
        );
        std::fs::remove_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))
    } else {
        Err(format!(
            "install check in {} failed:\n  {}",
            root.display(),
            problems.join("\n  ")
        ))
    }
}

/// The numeric id of `name` in an `/etc/passwd` or `/etc/group` text.
fn account_id(database: &str, name: &str) -> Option<u32> {
    database.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next() == Some(name))
            .then(|| fields.nth(1).and_then(|id| id.parse().ok()))
            .flatten()
    })
}

/// (permission bits, (uid, gid)) of a path.
fn stat(path: &Path) -> Option<(u32, (u32, u32))> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.mode() & 0o7777, (metadata.uid(), metadata.gid())))
}

/// `Depends:` as (package, minimum version) pairs; alternatives count for each of their names.
fn parse_depends(depends: &str) -> Vec<(String, Option<String>)> {
    depends
        .split([',', '|'])
        .filter_map(|item| {
            let item = item.trim();
            let (name, rest) = item.split_once(' ').unwrap_or((item, ""));
            if name.is_empty() {
                return None;
            }
            let name = name.split(':').next().unwrap_or(name).to_string();
            let minimum = rest
                .trim()
                .strip_prefix("(>=")
                .and_then(|version| version.strip_suffix(')'))
                .map(|version| version.trim().to_string());
            Some((name, minimum))
        })
        .collect()
}

/// Every `NEEDED` library of the binary comes from a package in `Depends`, and the `libc6`
/// minimum there is at least the newest `GLIBC_x.y` symbol version the binary uses.
fn check_libraries(
    binary: &Path,
    dependencies: &[(String, Option<String>)],
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let readelf = format!("{GNU_TRIPLET}-readelf");
    let dynamic = output(Command::new(&readelf).arg("--dynamic").arg(binary))?;
    for line in dynamic.lines().filter(|line| line.contains("(NEEDED)")) {
        let library = line
            .split('[')
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .unwrap_or(line);
        match LIBRARY_PACKAGES.iter().find(|(name, _)| *name == library) {
            Some((_, package)) if dependencies.iter().any(|(name, _)| name == package) => {}
            Some((_, package)) => problems.push(format!("the binary needs {library}: add {package} to Depends")),
            None => problems.push(format!(
                "the binary needs {library}, which LIBRARY_PACKAGES in xtask/src/dist.rs does not know"
            )),
        }
    }
    let versions = output(Command::new(&readelf).arg("--version-info").arg(binary))?;
    let newest_glibc = versions
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("GLIBC_"))
        .filter_map(parse_version)
        .max();
    let declared = dependencies
        .iter()
        .find(|(name, _)| name == "libc6")
        .and_then(|(_, minimum)| minimum.as_deref().and_then(parse_version));
    if let Some(needed) = newest_glibc {
        match declared {
            Some(declared) if declared >= needed => {}
            _ => problems.push(format!(
                "the binary uses GLIBC_{}.{}: Depends needs libc6 (>= {}.{}) or higher",
                needed.0, needed.1, needed.0, needed.1
            )),
        }
    }
    Ok(problems)
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(['.', '-', '+', '~']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts
        .next()
        .and_then(|minor| minor.parse().ok())
        .unwrap_or(0);
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_arguments() {
        assert_eq!(parse_args(&[]), Ok(Profile::Release));
        assert_eq!(
            parse_args(&["--profile".into(), "dev".into()]),
            Ok(Profile::Dev)
        );
        assert_eq!(
            parse_args(&["--profile=release".into()]),
            Ok(Profile::Release)
        );
        assert!(parse_args(&["--profile".into()]).is_err());
        assert!(parse_args(&["--profile".into(), "fast".into()]).is_err());
        assert!(parse_args(&["--release".into()]).is_err());
    }

    #[test]
    fn depends_field() {
        let parsed = parse_depends(
            "libc6 (>= 2.34), libgcc-s1 (>= 4.2), pcscd | pcsc-lite, libpcsclite1:arm64\n",
        );
        assert_eq!(
            parsed,
            vec![
                ("libc6".to_string(), Some("2.34".to_string())),
                ("libgcc-s1".to_string(), Some("4.2".to_string())),
                ("pcscd".to_string(), None),
                ("pcsc-lite".to_string(), None),
                ("libpcsclite1".to_string(), None),
            ]
        );
    }

    #[test]
    fn account_ids() {
        let group = "root:x:0:\ndialout:x:20:palmgate\npalmgate:x:997:\n";
        assert_eq!(account_id(group, "palmgate"), Some(997));
        assert_eq!(account_id(group, "dialout"), Some(20));
        assert_eq!(account_id(group, "gpio"), None);
        assert_eq!(account_id("palmgate:x:notanumber:", "palmgate"), None);
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("2.34"), Some((2, 34)));
        assert_eq!(parse_version("2.17"), Some((2, 17)));
        assert!(parse_version("2.34") > parse_version("2.17"));
        assert_eq!(parse_version("1:2"), None);
        assert_eq!(parse_version("3"), Some((3, 0)));
    }

    #[test]
    fn listing_lines() {
        let listing = "drwxr-xr-x root/root         0 2026-11-25 02:00 ./usr/bin/\n\
                       -rwxr-xr-x root/root  12345678 2026-11-25 02:00 ./usr/bin/palmgate\n\
                       -rw-r----- root/root      4096 2026-11-25 02:00 ./etc/palmgate/palmgate.toml\n";
        let entries = parse_listing(listing);
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].path, "/usr/bin/palmgate");
        assert_eq!(entries[1].mode, "-rwxr-xr-x");
        assert_eq!(entries[2].path, "/etc/palmgate/palmgate.toml");
    }

    #[test]
    fn expected_files_include_every_doc() {
        let files = expected_files().expect("docs/ readable");
        assert!(files.contains("/usr/bin/palmgate"));
        assert!(files.contains("/usr/share/doc/palmgate/door-io.md"));
        assert!(!files.iter().any(|file| file.contains("vcard")));
    }
}
