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

#[test]
fn a_damaged_lockdown_record_in_the_state_directory_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("issuer.pub"), "00").expect("issuer key");
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let main = dir.path().join("palmgate.toml");
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
