//! `palmgate config check` as an installer runs it: exit status, output, redaction.

use std::path::Path;
use std::process::Command;

fn config_check(config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_palmgate"))
        .args(["config", "check", "--config"])
        .arg(config)
        .env_remove("PALMGATE__MQTT__URL")
        .output()
        .expect("run palmgate")
}

fn repo_file(relative: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

#[test]
fn shipped_examples_are_valid() {
    for example in ["config/palmgate.example.toml", "config/demo.toml"] {
        let output = config_check(&repo_file(example));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("[gate]") && stdout.contains("[mqtt]"),
            "{stdout}"
        );
    }
}

#[test]
fn invalid_configuration_exits_2_with_one_line_per_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let main = dir.path().join("palmgate.toml");
    std::fs::write(
        &main,
        "[gate]\nid = \"Bad Id\"\n[card]\nissuer_keys = [\"nope.pub\"]\n[sensor]\nport = \"/dev/x\"\n\
         [door.a]\nlock_pin = 3\n[mqtt]\nurl = \"mqtt://localhost\"\npassword = \"s3cret\"\n",
    )
    .expect("write");
    let output = config_check(&main);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout for an invalid configuration"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let shown = main.display().to_string();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{shown}: gate.id: \"Bad Id\" must be 1 to 64 characters of a-z, 0-9, '-' or '_' (it is used in MQTT topics)"
            ),
            format!(
                "{shown}: card.issuer_keys[0]: cannot read {}: No such file or directory (os error 2)",
                dir.path().join("nope.pub").display()
            ),
            format!("{shown}: mqtt.username: a password needs a username"),
        ]
    );
    assert!(!stderr.contains("s3cret"));
}

#[test]
fn secrets_are_redacted_in_the_effective_configuration() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        repo_file("config/issuers/example-site.pub"),
        dir.path().join("issuer.pub"),
    )
    .expect("copy key");
    let main = dir.path().join("palmgate.toml");
    std::fs::write(
        &main,
        "[gate]\nid = \"g1\"\n[card]\nissuer_keys = [\"issuer.pub\"]\n[sensor]\nport = \"/dev/x\"\n\
         [door.a]\nlock_pin = 3\n[mqtt]\nurl = \"mqtt://localhost\"\nusername = \"g1\"\npassword = \"s3cret\"\n",
    )
    .expect("write");
    let output = config_check(&main);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("password = \"REDACTED\""), "{stdout}");
    assert!(!stdout.contains("s3cret"), "{stdout}");
}

#[test]
fn a_broken_policy_file_named_by_a_valid_configuration_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("issuer.pub"), "00").expect("issuer key");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "version = 1\n[group.staff]\ndoors = 7\n").expect("policy");
    let main = dir.path().join("palmgate.toml");
    std::fs::write(
        &main,
        "[gate]\nid = \"gate-01\"\n[card]\nissuer_keys = [\"issuer.pub\"]\n\
         policy_file = \"policy.toml\"\n[sensor]\nport = \"/dev/ttyUSB0\"\n\
         [door.main]\nlock_pin = 17\n[mqtt]\nurl = \"mqtt://localhost\"\n",
    )
    .expect("write");
    let output = config_check(&main);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("card.policy_file: ") && stderr.contains("policy.toml"),
        "{stderr}"
    );

    std::fs::write(&policy, "version = 1\n").expect("policy");
    let output = config_check(&main);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A valid configuration in `dir` whose `storage.state_dir` is `dir/state` (created, empty).
fn config_with_state_dir(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    std::fs::write(dir.join("issuer.pub"), "00").expect("issuer key");
    let state = dir.join("state");
    std::fs::create_dir(&state).expect("state dir");
    let main = dir.join("palmgate.toml");
    std::fs::write(
        &main,
        format!(
            "[gate]\nid = \"gate-01\"\n[card]\nissuer_keys = [\"issuer.pub\"]\n\
             [sensor]\nport = \"/dev/ttyUSB0\"\n[door.main]\nlock_pin = 17\n\
             [mqtt]\nurl = \"mqtt://localhost\"\n[storage]\nstate_dir = \"{}\"\n",
            state.display()
        ),
    )
    .expect("write");
    (main, state)
}

#[test]
fn a_damaged_lockdown_record_in_the_state_directory_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (main, state) = config_with_state_dir(dir.path());
    // No record yet: a gate that was never locked down.
    let output = config_check(&main);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(state.join("lockdown.json"), "{\"doors\":").expect("damaged record");
    let output = config_check(&main);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("storage.state_dir: ") && stderr.contains("lockdown.json"),
        "{stderr}"
    );
}

#[test]
fn a_damaged_record_of_lost_meal_answers_is_a_warning_and_one_set_aside_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (main, state) = config_with_state_dir(dir.path());
    let output = config_check(&main);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    // The gate starts without a damaged record (it sets it aside): a warning, status 0.
    std::fs::write(state.join("unconfirmed-meals.json"), "{\"meals\":").expect("damaged");
    let output = config_check(&main);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("warning: storage.state_dir: "))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("unconfirmed-meals.json")
            && warnings[0].contains("unconfirmed-meals.json.damaged"),
        "{stderr}"
    );

    // Once set aside, the file still holds evidence nobody has settled: named until removed.
    std::fs::rename(
        state.join("unconfirmed-meals.json"),
        state.join("unconfirmed-meals.json.damaged"),
    )
    .expect("set aside");
    let output = config_check(&main);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("unconfirmed-meals.json.damaged is a damaged record"),
        "{stderr}"
    );

    // Damaged again before anyone settled the first: the gate would set it aside beside the
    // first (named so), and both are named afterwards.
    std::fs::write(state.join("unconfirmed-meals.json"), "{\"meals\":").expect("damaged");
    let stderr = String::from_utf8_lossy(&config_check(&main).stderr).into_owned();
    assert!(
        stderr.contains("moves it to") && stderr.contains("unconfirmed-meals.json.damaged.2"),
        "{stderr}"
    );
    std::fs::rename(
        state.join("unconfirmed-meals.json"),
        state.join("unconfirmed-meals.json.damaged.2"),
    )
    .expect("set aside");
    let stderr = String::from_utf8_lossy(&config_check(&main).stderr).into_owned();
    for name in [
        "unconfirmed-meals.json.damaged is",
        "unconfirmed-meals.json.damaged.2 is",
    ] {
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

/// Runs `palmgate ARGS`; fails the test (and kills the process) when it has not exited within
/// 10 s: a configuration must be refused promptly, never hang `config check` or the daemon.
fn palmgate_within_10_s(args: &[&std::ffi::OsStr]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_palmgate"))
        .args(args)
        .env_remove("PALMGATE__MQTT__URL")
        .env_remove("NOTIFY_SOCKET")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run palmgate");
    // Read both pipes from threads: a full pipe must not pass for a hang.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("palmgate {args:?} still running after 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().expect("stdout"),
        stderr: stderr.join().expect("stderr"),
    }
}

/// `/dev/zero` and a FIFO named as the revocation list or the device key: `config check` and
/// `run` refuse them at once, naming the file and the key (they used to read `/dev/zero` until
/// they held 2 GB and wait on a FIFO forever; the device key passed `config check`).
#[test]
fn a_fifo_or_a_device_named_as_a_file_is_refused_promptly_by_check_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("issuer.pub"), "00").expect("issuer key");
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success(), "mkfifo");
    let state = dir.path().join("state");
    let main = dir.path().join("palmgate.toml");
    for (key, value, kind) in [
        (
            "card.revocation_list",
            Path::new("/dev/zero"),
            "a character device",
        ),
        ("card.revocation_list", fifo.as_path(), "a FIFO"),
        (
            "storage.device_key_file",
            Path::new("/dev/zero"),
            "a character device",
        ),
        ("storage.device_key_file", fifo.as_path(), "a FIFO"),
    ] {
        let (revocation, device_key) = if key == "card.revocation_list" {
            (
                format!("revocation_list = \"{}\"\n", value.display()),
                String::new(),
            )
        } else {
            (
                String::new(),
                format!("device_key_file = \"{}\"\n", value.display()),
            )
        };
        std::fs::write(
            &main,
            format!(
                "[gate]\nid = \"gate-01\"\n[card]\nissuer_keys = [\"issuer.pub\"]\n{revocation}\
                 [sensor]\nport = \"/dev/ttyUSB0\"\n[door.main]\nlock_pin = 17\n\
                 [mqtt]\nurl = \"mqtt://localhost\"\n[storage]\nstate_dir = \"{}\"\n{device_key}",
                state.display()
            ),
        )
        .expect("write");
        for command in [&["config", "check"][..], &["run"][..]] {
            let mut args: Vec<&std::ffi::OsStr> =
                command.iter().map(std::ffi::OsStr::new).collect();
            args.push("--config".as_ref());
            args.push(main.as_os_str());
            let output = palmgate_within_10_s(&args);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(2), "{command:?} {key}: {stderr}");
            let expected = format!(
                "{}: {key}: {} is {kind}, not a regular file",
                main.display(),
                value.display()
            );
            assert!(
                stderr.contains(&expected),
                "{command:?} {key} = {}: expected {expected:?} in:\n{stderr}",
                value.display()
            );
        }
    }
}

/// Absurd sizes: a 10 MB gate name, a 100,000-character broker URL, an integer beyond 64 bits.
/// Each is refused with the file and the key, without repeating the value.
#[test]
fn oversized_values_are_refused_with_file_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("issuer.pub"), "00").expect("issuer key");
    let main = dir.path().join("palmgate.toml");
    let base = "[gate]\nid = \"gate-01\"\n[card]\nissuer_keys = [\"issuer.pub\"]\n\
                [sensor]\nport = \"/dev/ttyUSB0\"\n[door.main]\nlock_pin = 17\n";
    let shown = main.display().to_string();
    let long_url = format!("mqtt://{}", "h".repeat(100_000));
    let cases = [
        (
            format!("{base}[mqtt]\nurl = \"{long_url}\"\n"),
            format!("{shown}: mqtt.url: 100007 characters is too long (at most 512)"),
        ),
        (
            format!(
                "{base}[mqtt]\nurl = \"mqtt://localhost\"\n[storage]\noutbox_max_events = 18446744073709551615\n"
            ),
            format!(
                "{shown}: storage.outbox_max_events: 18446744073709551615 is too large (at most 9223372036854775807)"
            ),
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&main, text).expect("write");
        let output = palmgate_within_10_s(&[
            "config".as_ref(),
            "check".as_ref(),
            "--config".as_ref(),
            main.as_os_str(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim_end(), expected);
    }
    // A 10 MB name: in a file it makes the file too large; from the environment it is too long.
    let name = "n".repeat(10 * 1024 * 1024);
    let text = base.replacen("[gate]\n", &format!("[gate]\nname = \"{name}\"\n"), 1);
    std::fs::write(&main, format!("{text}[mqtt]\nurl = \"mqtt://localhost\"\n")).expect("write");
    let output = palmgate_within_10_s(&[
        "config".as_ref(),
        "check".as_ref(),
        "--config".as_ref(),
        main.as_os_str(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
    assert!(
        stderr.starts_with(&format!("{shown}: {shown} is larger than 1048576 bytes")),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
}
