//! `palmgate door test|safe` as an installer runs them: exit status and output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The doors under test, and the shared sections.
const CONFIG: &str = concat!(
    r#"
[fire]
pin = 4

[door.main]
lock_pin = 17
unlock_s = 0.3
contact_pin = 27
rex_pin = 22
green_led_pin = 5

[door.turn]
mode = "turnstile"
lock_pin = 18
fail_mode = "safe"
lock_active = "low"
passage_pin = 20
unlock_s = 0.2

"#,
    include_str!("fixtures/gate-base.toml")
);

struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("issuer.pub"), "issuer public key").expect("key");
    let config = dir.path().join("palmgate.toml");
    std::fs::write(&config, CONFIG).expect("config");
    Fixture { _dir: dir, config }
}

fn palmgate(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_palmgate"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("PALMGATE__GPIO__BACKEND")
        .output()
        .expect("run palmgate")
}

/// `+0.123 s  GPIO 17  main.lock  high  relay on: released` -> (0.123, "high", "relay on: released")
fn recorded_changes(stdout: &str, role: &str) -> Vec<(f64, String, String)> {
    let listing = stdout
        .split("recorded output changes")
        .nth(1)
        .expect("changes listed");
    listing
        .lines()
        .filter(|line| line.split_whitespace().nth(4) == Some(role))
        .map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words[0].trim_start_matches('+').parse().expect("time");
            (at, words[5].to_string(), words[6..].join(" "))
        })
        .collect()
}

#[test]
fn door_test_simulate_pulses_the_strike_for_its_unlock_time() {
    let fixture = fixture();
    let output = palmgate(
        &["door", "test", "--door", "main", "--simulate"],
        &fixture.config,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for expected in [
        "doors.ready",
        "main.contact     GPIO 27  low   door closed",
        "main.rex         GPIO 22  high  released",
        "fire             GPIO  4  low   no fire",
        "door.unlocked door=main cause=Grant",
        "door.locked door=main",
        "door main: unlocked and relocked",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let lock = recorded_changes(&stdout, "main.lock");
    let levels: Vec<(&str, &str)> = lock
        .iter()
        .map(|(_, level, meaning)| (level.as_str(), meaning.as_str()))
        .collect();
    assert_eq!(
        levels,
        [
            ("low", "relay off: locked"),
            ("high", "relay on: released"),
            ("low", "relay off: locked")
        ],
        "{stdout}"
    );
    let held = lock[2].0 - lock[1].0;
    assert!(
        (0.29..2.0).contains(&held),
        "released for {held} s, configured 0.3 s:\n{stdout}"
    );
    assert_eq!(lock[0].0, 0.0, "lock driven safe at start:\n{stdout}");
    let green: Vec<String> = recorded_changes(&stdout, "main.green_led")
        .into_iter()
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(green, ["off", "on", "off"]);
}

#[test]
fn door_test_simulate_on_a_fail_safe_turnstile_ends_unpowered() {
    let fixture = fixture();
    let output = palmgate(
        &["door", "test", "--door", "turn", "--simulate"],
        &fixture.config,
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meanings: Vec<String> = recorded_changes(&stdout, "turn.lock")
        .into_iter()
        .map(|(_, _, m)| m)
        .collect();
    // Unpowered (released) until the inputs are read, locked, one pulse, locked, safe again.
    assert_eq!(
        meanings,
        [
            "relay off: released",
            "relay on: locked",
            "relay off: released",
            "relay on: locked",
            "relay off: released"
        ],
        "{stdout}"
    );
}

#[test]
fn door_test_refuses_unknown_doors_and_bad_configurations_with_exit_2() {
    let fixture = fixture();
    let output = palmgate(
        &["door", "test", "--door", "back", "--simulate"],
        &fixture.config,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no door named \"back\"")
            && stderr.contains("configured doors: main, turn"),
        "{stderr}"
    );

    std::fs::write(
        &fixture.config,
        CONFIG.replace("lock_pin = 17", "lock_pin = 99"),
    )
    .expect("write");
    let output = palmgate(
        &["door", "test", "--door", "main", "--simulate"],
        &fixture.config,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("door.main.lock_pin: GPIO 99 is not a BCM pin"),
        "{stderr}"
    );
}

#[test]
fn door_test_without_gpio_says_so_and_suggests_simulate() {
    let fixture = fixture();
    let output = palmgate(&["door", "test", "--door", "main"], &fixture.config);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if palmgate_door::gpio::is_raspberry_pi() {
        // On a Pi the message differs (GPIO present); what must hold is that it never claims
        // the machine is not a Pi.
        assert!(!stderr.contains("not a Raspberry Pi"), "{stderr}");
        return;
    }
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("this machine is not a Raspberry Pi"),
        "{stderr}"
    );
    assert!(stderr.contains("--door main --simulate"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing driven: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn door_safe_drives_every_output() {
    let fixture = fixture();
    let output = palmgate(&["door", "safe", "--simulate"], &fixture.config);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "3 outputs of 2 doors driven to their safe state\n"
    );
}

#[test]
fn sigterm_during_the_pulse_relocks_before_exiting() {
    use std::io::{BufRead, BufReader, Read};

    let fixture = fixture();
    std::fs::write(
        &fixture.config,
        CONFIG.replace("unlock_s = 0.3", "unlock_s = 30"),
    )
    .expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_palmgate"))
        .args(["door", "test", "--door", "main", "--simulate", "--config"])
        .arg(&fixture.config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start palmgate");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("read stdout");
        assert!(read > 0, "palmgate ended before unlocking:\n{seen}");
        seen.push_str(&line);
        if line.contains("door.unlocked door=main") {
            break;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    stdout.read_to_string(&mut seen).expect("rest of stdout");
    let exit = child.wait().expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert_eq!(exit.code(), Some(143), "{seen}\n{stderr}");
    assert!(
        stderr.contains("interrupted: outputs driven to their safe state (done)"),
        "{stderr}"
    );
    let meanings: Vec<String> = recorded_changes(&seen, "main.lock")
        .into_iter()
        .map(|(_, _, m)| m)
        .collect();
    assert_eq!(
        meanings,
        [
            "relay off: locked",
            "relay on: released",
            "relay off: locked"
        ],
        "{seen}"
    );
}
