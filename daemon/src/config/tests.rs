//! Configuration loading: layering, redaction, and every kind of bad configuration with its exact
//! message.

use std::path::{Path, PathBuf};

use super::*;

/// A valid configuration: one door and the shared sections (ending with `[storage]`).
const VALID: &str = concat!(
    r#"
[door.main]
lock_pin = 17
contact_pin = 27
rex_pin = 22

"#,
    include_str!("../../tests/fixtures/gate-base.toml")
);

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::write(dir.path().join("issuer.pub"), "issuer public key").expect("write key");
        Self { dir }
    }

    fn main(&self) -> PathBuf {
        self.dir.path().join("palmgate.toml")
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn write(&self, main: &str, dropins: &[(&str, &str)]) -> &Path {
        std::fs::write(self.main(), main).expect("write main");
        if !dropins.is_empty() {
            let confd = self.dir.path().join("conf.d");
            std::fs::create_dir_all(&confd).expect("conf.d");
            for (name, text) in dropins {
                std::fs::write(confd.join(name), text).expect("write drop-in");
            }
        }
        self.dir.path()
    }

    fn load(
        &self,
        main: &str,
        dropins: &[(&str, &str)],
        env: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        self.write(main, dropins);
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        load_with_env(&self.main(), env)
    }

    /// The problem lines of a configuration that must be refused.
    fn problems(&self, main: &str, dropins: &[(&str, &str)], env: &[(&str, &str)]) -> Vec<String> {
        match self.load(main, dropins, env) {
            Ok(settings) => panic!("configuration accepted, expected problems: {settings:#?}"),
            Err(error) => error.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The valid configuration with one line replaced (`old` must occur exactly once).
fn valid_with(old: &str, new: &str) -> String {
    assert_eq!(
        VALID.matches(old).count(),
        1,
        "{old:?} must occur once in VALID"
    );
    VALID.replace(old, new)
}

#[test]
fn valid_configuration_is_layered_over_the_defaults() {
    let fixture = Fixture::new();
    let settings = fixture.load(VALID, &[], &[]).expect("valid configuration");
    assert_eq!(settings.gate.id, "gate-01");
    assert_eq!(settings.gate.name, "gate-01");
    assert_eq!(
        settings.card.issuer_keys,
        vec![PathBuf::from(fixture.path("issuer.pub"))]
    );
    assert_eq!(
        settings.card.presentation_window,
        std::time::Duration::from_secs(10)
    );
    assert_eq!(settings.sensor.baud, 921_600);
    assert_eq!(settings.mqtt.host, "127.0.0.1");
    assert_eq!(settings.mqtt.port, 1883);
    assert_eq!(settings.mqtt.client_id, "palmgate-gate-01");
    // Relative paths are resolved against the file that set them.
    assert_eq!(
        settings.storage.state_dir,
        PathBuf::from(fixture.path("state"))
    );
    assert_eq!(
        settings.storage.device_key_file,
        PathBuf::from(fixture.path("state/device.key"))
    );
    let door = &settings.door["main"];
    assert_eq!(door.lock_pin, 17);
    assert_eq!(door.fail_mode, FailMode::Secure);
    assert_eq!(door.unlock, std::time::Duration::from_secs(5));
    assert_eq!(
        door.rex(),
        Some(InputPin {
            pin: 22,
            active: Level::Low
        })
    );
}

#[test]
fn dropins_then_environment_override_in_order() {
    let fixture = Fixture::new();
    let dropins = [
        ("10-door.toml", "[door.main]\nunlock_s = 7\n"),
        (
            "20-door.toml",
            "[door.main]\nunlock_s = 8\n[sensor]\nbaud = 115200\n",
        ),
        ("README", "not toml, not read"),
    ];
    let settings = fixture
        .load(
            VALID,
            &dropins,
            &[
                ("PALMGATE__SENSOR__BAUD", "57600"),
                ("OTHER__SENSOR__BAUD", "9"),
            ],
        )
        .expect("valid configuration");
    assert_eq!(
        settings.door["main"].unlock,
        std::time::Duration::from_secs(8)
    );
    assert_eq!(settings.sensor.baud, 57_600);
}

#[test]
fn check_output_redacts_the_password() {
    let fixture = Fixture::new();
    let main = valid_with(
        "url = \"mqtt://127.0.0.1:1883\"",
        "url = \"mqtt://127.0.0.1:1883\"\nusername = \"gate\"\npassword = \"hunter2-secret\"",
    );
    let settings = fixture.load(&main, &[], &[]).expect("valid configuration");
    let printed = toml::to_string_pretty(&settings).expect("serialisable");
    assert!(printed.contains("password = \"REDACTED\""), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!format!("{settings:?}").contains("hunter2"));
    assert_eq!(
        settings.mqtt.password.as_ref().map(Secret::expose),
        Some("hunter2-secret")
    );
    // The printed configuration is itself a valid configuration with the same meaning.
    let reread = fixture
        .load(&printed.replace("REDACTED", "hunter2-secret"), &[], &[])
        .expect("re-readable");
    assert_eq!(reread.door["main"].unlock, settings.door["main"].unlock);
    assert_eq!(reread.storage.state_dir, settings.storage.state_dir);
}

#[test]
fn unknown_key_names_file_and_key() {
    let fixture = Fixture::new();
    let main = valid_with("id = \"gate-01\"", "id = \"gate-01\"\ncolour = \"red\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: gate.colour: unknown key",
            fixture.main().display()
        )]
    );
}

#[test]
fn unknown_key_in_a_dropin_names_the_dropin() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        VALID,
        &[("50-site.toml", "[door.main]\nunlock_seconds = 3\n")],
        &[],
    );
    assert_eq!(
        problems,
        [format!(
            "{}: door.main.unlock_seconds: unknown key",
            fixture.path("conf.d/50-site.toml")
        )]
    );
}

#[test]
fn unknown_section_is_refused() {
    let fixture = Fixture::new();
    let main = format!("{VALID}\n[doors.main]\nlock_pin = 3\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!("{}: doors: unknown key", fixture.main().display())]
    );
}

#[test]
fn wrong_type_names_the_expected_type() {
    let fixture = Fixture::new();
    let main = valid_with("lock_pin = 17", "lock_pin = \"seventeen\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.lock_pin: invalid type: string \"seventeen\", expected i64",
            fixture.main().display()
        )]
    );
}

#[test]
fn syntax_error_gives_line_and_column() {
    let fixture = Fixture::new();
    let main = "[gate]\nid = \"gate-01\n";
    assert_eq!(
        fixture.problems(main, &[], &[]),
        [format!(
            "{}: invalid TOML at line 2, column 14: invalid basic string, expected `\"`",
            fixture.main().display()
        )]
    );
}

#[test]
fn out_of_range_timing() {
    let fixture = Fixture::new();
    let main = valid_with("lock_pin = 17", "lock_pin = 17\nunlock_s = 0.05");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.unlock_s: 0.05 s is out of range (0.2 to 300 s)",
            fixture.main().display()
        )]
    );
}

#[test]
fn out_of_range_from_the_environment_names_the_environment() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        VALID,
        &[],
        &[("PALMGATE__CARD__VERIFY_TIMEOUT_MS", "60000")],
    );
    assert_eq!(
        problems,
        ["environment: card.verify_timeout_ms: 60000 is out of range (100 to 10000)"]
    );
}

#[test]
fn duplicate_pin() {
    let fixture = Fixture::new();
    let main = valid_with("rex_pin = 22", "rex_pin = 17");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.rex_pin: GPIO 17 is already used by door.main.lock_pin",
            fixture.main().display()
        )]
    );
}

#[test]
fn duplicate_pin_across_doors_and_fire() {
    let fixture = Fixture::new();
    let main = format!("{VALID}\n[door.back]\nlock_pin = 5\n\n[fire]\npin = 27\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.contact_pin: GPIO 27 is already used by fire.pin",
            fixture.main().display()
        )]
    );
}

#[test]
fn pin_that_is_not_a_bcm_gpio() {
    let fixture = Fixture::new();
    let main = valid_with("lock_pin = 17", "lock_pin = 40");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.lock_pin: GPIO 40 is not a BCM pin (0 to 27)",
            fixture.main().display()
        )]
    );
}

#[test]
fn missing_key_file() {
    let fixture = Fixture::new();
    let main = valid_with(
        "issuer_keys = [\"issuer.pub\"]",
        "issuer_keys = [\"missing.pub\"]",
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: card.issuer_keys[0]: cannot read {}: No such file or directory (os error 2)",
            fixture.main().display(),
            fixture.path("missing.pub")
        )]
    );
}

#[test]
fn malformed_broker_url() {
    let fixture = Fixture::new();
    for (url, reason) in [
        (
            "http://broker",
            "unsupported scheme \"http\" (use mqtt or mqtts)",
        ),
        (
            "broker:1883",
            "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]",
        ),
        ("mqtt://broker:99999", "invalid port \"99999\""),
        ("mqtt://:1883", "missing host"),
    ] {
        let main = valid_with(
            "url = \"mqtt://127.0.0.1:1883\"",
            &format!("url = \"{url}\""),
        );
        assert_eq!(
            fixture.problems(&main, &[], &[]),
            [format!(
                "{}: mqtt.url: \"{url}\" is not a broker URL: {reason}",
                fixture.main().display()
            )]
        );
    }
}

#[test]
fn tls_without_ca() {
    let fixture = Fixture::new();
    let main = valid_with(
        "url = \"mqtt://127.0.0.1:1883\"",
        "url = \"mqtts://broker.example:8883\"",
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: mqtt.ca_file: mqtts:// needs the CA certificate that signs the broker's certificate",
            fixture.main().display()
        )]
    );
}

#[test]
fn topic_prefix_with_wildcard() {
    let fixture = Fixture::new();
    let main = valid_with(
        "url = \"mqtt://127.0.0.1:1883\"",
        "url = \"mqtt://127.0.0.1:1883\"\ntopic_prefix = \"site/#\"",
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: mqtt.topic_prefix: \"site/#\" must not contain MQTT wildcards (+, #) or NUL",
            fixture.main().display()
        )]
    );
}

#[test]
fn missing_required_keys_are_all_reported() {
    let fixture = Fixture::new();
    let main = "[gate]\nid = \"gate-01\"\n";
    let shown = fixture.main().display().to_string();
    assert_eq!(
        fixture.problems(main, &[], &[]),
        [
            format!("{shown}: card.issuer_keys: missing: this key has no default and must be set"),
            format!("{shown}: sensor.port: missing: this key has no default and must be set"),
            format!("{shown}: door: no door configured: add a [door.<name>] section"),
            format!("{shown}: mqtt.url: missing: this key has no default and must be set"),
        ]
    );
}

#[test]
fn bad_gate_id() {
    let fixture = Fixture::new();
    let main = valid_with("id = \"gate-01\"", "id = \"Gate 1\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: gate.id: \"Gate 1\" must be 1 to 64 characters of a-z, 0-9, '-' or '_' (it is used in MQTT topics)",
            fixture.main().display()
        )]
    );
}

#[test]
fn bad_choice_lists_the_options() {
    let fixture = Fixture::new();
    let main = valid_with("lock_pin = 17", "lock_pin = 17\nlock_active = \"medium\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.lock_active: \"medium\" is not one of: high, low",
            fixture.main().display()
        )]
    );
}

#[test]
fn prealarm_must_come_before_alarm() {
    let fixture = Fixture::new();
    let main = valid_with(
        "lock_pin = 17",
        "lock_pin = 17\nheld_open_prealarm_s = 40\nheld_open_alarm_s = 30",
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.held_open_prealarm_s: must be shorter than held_open_alarm_s",
            fixture.main().display()
        )]
    );
}

#[test]
fn turnstile_needs_a_passage_input() {
    let fixture = Fixture::new();
    let main = valid_with("lock_pin = 17", "lock_pin = 17\nmode = \"turnstile\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.passage_pin: a turnstile needs a passage input to count passages",
            fixture.main().display()
        )]
    );
}

#[test]
fn interlock_with_an_unknown_door() {
    let fixture = Fixture::new();
    let main = valid_with("lock_pin = 17", "lock_pin = 17\ninterlock_with = \"side\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: door.main.interlock_with: no door named \"side\"",
            fixture.main().display()
        )]
    );
}

#[test]
fn missing_main_file() {
    let fixture = Fixture::new();
    let error = load_with_env(&fixture.main(), Vec::new()).expect_err("no file");
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot read the configuration file: it does not exist or is not a file",
            fixture.main().display()
        )
    );
}

#[test]
fn several_problems_are_reported_together() {
    let fixture = Fixture::new();
    let main = valid_with(
        "lock_pin = 17",
        "lock_pin = 17\nunlock_s = 1000\ndebounce_ms = 0",
    );
    let shown = fixture.main().display().to_string();
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [
            format!("{shown}: door.main.unlock_s: 1000 s is out of range (0.2 to 300 s)"),
            format!("{shown}: door.main.debounce_ms: 0 is out of range (1 to 1000)"),
        ]
    );
}

#[test]
fn interlock_needs_contacts_on_both_doors_and_no_turnstile() {
    let fixture = Fixture::new();
    let shown = fixture.main().display().to_string();
    let main = format!(
        "{}\n[door.side]\nlock_pin = 5\n",
        valid_with("lock_pin = 17", "lock_pin = 17\ninterlock_with = \"side\"")
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{shown}: door.main.interlock_with: the door \"side\" needs a contact_pin for an interlock"
        )]
    );
    let main = format!(
        "{}\n[door.side]\nlock_pin = 5\ncontact_pin = 6\nmode = \"turnstile\"\npassage_pin = 7\n",
        valid_with("lock_pin = 17", "lock_pin = 17\ninterlock_with = \"side\"")
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{shown}: door.main.interlock_with: turnstiles cannot be interlocked"
        )]
    );
}

#[test]
fn fire_input_defaults_to_active_high_and_debounce() {
    let fixture = Fixture::new();
    let settings = fixture
        .load(&format!("{VALID}\n[fire]\npin = 26\n"), &[], &[])
        .expect("valid");
    let fire = settings.fire.expect("fire input");
    assert_eq!(fire.active, Level::High);
    assert_eq!(fire.debounce, std::time::Duration::from_millis(100));
}

#[test]
fn the_reader_door_must_be_named_when_there_are_several() {
    let fixture = Fixture::new();
    let shown = fixture.main().display().to_string();
    let main = format!(
        "{}\n[door.side]\nlock_pin = 5\n",
        VALID.replace("door = \"main\"\n", "")
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{shown}: card.door: missing: name the door this reader opens (there are several)"
        )]
    );
    let main = valid_with("door = \"main\"", "door = \"back\"");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!("{shown}: card.door: no door named \"back\"")]
    );
    // With one door, it is the reader's door.
    let settings = fixture
        .load(&VALID.replace("door = \"main\"\n", ""), &[], &[])
        .expect("valid");
    assert_eq!(settings.card.door, "main");
}

#[test]
fn simulated_control_socket_needs_the_simulated_backend() {
    let fixture = Fixture::new();
    let main = format!("{VALID}\n[gpio]\nsimulated_control = \"gpio.sock\"\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: gpio.simulated_control: only the simulated backend has inputs to set from outside",
            fixture.main().display()
        )]
    );
    let main =
        format!("{VALID}\n[gpio]\nbackend = \"simulated\"\nsimulated_control = \"gpio.sock\"\n");
    let settings = fixture.load(&main, &[], &[]).expect("valid configuration");
    assert_eq!(
        settings.gpio.simulated_control,
        Some(PathBuf::from(fixture.path("gpio.sock")))
    );
}

/// A configuration naming `path` at `key` (`card.revocation_list`, `storage.device_key_file`…).
fn naming(section: &str, key: &str, path: &str) -> String {
    let line = format!("{key} = \"{path}\"");
    VALID.replacen(
        &format!("[{section}]\n"),
        &format!("[{section}]\n{line}\n"),
        1,
    )
}

#[test]
fn named_files_must_be_regular_files_and_a_fifo_cannot_hang_loading() {
    let fixture = Fixture::new();
    let fifo = fixture.dir.path().join("fifo");
    make_fifo(&fifo);
    let fifo = fifo.display().to_string();
    let main = fixture.main().display().to_string();
    for (section, key) in [
        ("card", "revocation_list"),
        ("card", "policy_file"),
        ("storage", "device_key_file"),
    ] {
        for (path, kind) in [
            ("/dev/zero", "a character device"),
            (fifo.as_str(), "a FIFO"),
            ("/tmp", "a directory"),
        ] {
            let problems = fixture.problems(&naming(section, key, path), &[], &[]);
            assert_eq!(
                problems,
                [format!(
                    "{main}: {section}.{key}: {path} is {kind}, not a regular file"
                )],
                "{section}.{key} = {path}"
            );
        }
    }
    // Key lists and TLS files too.
    let text = VALID.replace(
        "issuer_keys = [\"issuer.pub\"]",
        &format!("issuer_keys = [\"issuer.pub\", \"{fifo}\"]"),
    );
    assert_eq!(
        fixture.problems(&text, &[], &[]),
        [format!(
            "{main}: card.issuer_keys[1]: {fifo} is a FIFO, not a regular file"
        )]
    );
    let text = naming("mqtt", "operator_keys", "x")
        .replace("operator_keys = \"x\"", "operator_keys = [\"/dev/zero\"]");
    assert_eq!(
        fixture.problems(&text, &[], &[]),
        [format!(
            "{main}: mqtt.operator_keys[0]: /dev/zero is a character device, not a regular file"
        )]
    );
}

fn make_fifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn named_files_have_a_size_limit() {
    let fixture = Fixture::new();
    let main = fixture.main().display().to_string();
    let list = fixture.path("revoked.json");
    let big = files::MAX_REVOCATION_LIST_BYTES + 1;
    std::fs::File::create(&list)
        .and_then(|file| file.set_len(big))
        .expect("sparse file");
    assert_eq!(
        fixture.problems(&naming("card", "revocation_list", &list), &[], &[]),
        [format!(
            "{main}: card.revocation_list: {list} is larger than {} bytes ({big} bytes)",
            files::MAX_REVOCATION_LIST_BYTES
        )]
    );
    // At the limit, and absent (the gate writes it on the first list it receives): accepted.
    std::fs::File::create(&list)
        .and_then(|file| file.set_len(files::MAX_REVOCATION_LIST_BYTES))
        .expect("sparse file");
    fixture
        .load(&naming("card", "revocation_list", &list), &[], &[])
        .expect("a list at the limit");
    std::fs::remove_file(&list).expect("remove");
    fixture
        .load(&naming("card", "revocation_list", &list), &[], &[])
        .expect("no list yet");

    // A configuration file itself.
    let padding = "#".repeat(usize::try_from(files::MAX_CONFIG_FILE_BYTES).unwrap_or(0));
    let problems = fixture.problems(&format!("{VALID}{padding}\n"), &[], &[]);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("{main}: {main} is larger than 1048576 bytes")),
        "{problems:?}"
    );
}

#[test]
fn read_bounded_reads_a_regular_file_and_refuses_devices_without_reading_them() {
    let fixture = Fixture::new();
    let file = fixture.dir.path().join("issuer.pub");
    assert_eq!(
        files::read_bounded(&file, 100).expect("read"),
        b"issuer public key"
    );
    assert!(matches!(
        files::read_bounded(&file, 5),
        Err(files::BoundedFileError::TooLarge {
            size: 17,
            limit: 5,
            ..
        })
    ));
    assert!(matches!(
        files::read_bounded(Path::new("/dev/zero"), u64::MAX),
        Err(files::BoundedFileError::NotRegular {
            kind: "a character device",
            ..
        })
    ));
    let missing = files::read_bounded(&fixture.dir.path().join("missing"), 5);
    assert!(missing.is_err_and(|error| error.is_not_found()));
}

#[test]
fn texts_have_limits_and_a_long_value_is_not_repeated() {
    let fixture = Fixture::new();
    let main = fixture.main().display().to_string();
    let huge_name = "n".repeat(10 * 1024 * 1024);
    assert_eq!(
        fixture.problems(VALID, &[], &[("PALMGATE__GATE__NAME", &huge_name)]),
        [format!(
            "environment: gate.name: {} characters is too long (at most 128)",
            huge_name.len()
        )]
    );
    let url = format!("mqtt://{}", "h".repeat(100_000));
    assert_eq!(
        fixture.problems(&VALID.replace("mqtt://127.0.0.1:1883", &url), &[], &[]),
        [format!(
            "{main}: mqtt.url: {} characters is too long (at most 512)",
            url.len()
        )]
    );
    for (key, max) in [
        ("GATE__SITE", 128),
        ("CARD__READER", 256),
        ("MQTT__TOPIC_PREFIX", 256),
        ("MQTT__DISCOVERY_PREFIX", 256),
        ("MQTT__USERNAME", 256),
    ] {
        let value = "v".repeat(max + 1);
        let variable = format!("PALMGATE__{key}");
        let problems = fixture.problems(VALID, &[], &[(&variable, &value)]);
        let dotted = key.to_lowercase().replace("__", ".");
        assert_eq!(
            problems,
            [format!(
                "environment: {dotted}: {} characters is too long (at most {max})",
                max + 1
            )]
        );
        // At the limit: fine.
        let value = "v".repeat(max);
        fixture
            .load(VALID, &[], &[(&variable, &value)])
            .unwrap_or_else(|error| panic!("{key} at its limit: {error}"));
    }
    let path = format!("/{}", "p".repeat(5000));
    assert_eq!(
        fixture.problems(&naming("card", "revocation_list", &path), &[], &[]),
        [format!(
            "{main}: card.revocation_list: a path of 5001 bytes is too long (at most 4095)"
        )]
    );
}

#[test]
fn an_integer_beyond_64_bits_signed_names_its_key() {
    let fixture = Fixture::new();
    let main = fixture.main().display().to_string();
    let text = format!("{VALID}outbox_max_events = 18446744073709551615\n");
    assert_eq!(
        fixture.problems(&text, &[], &[]),
        [format!(
            "{main}: storage.outbox_max_events: 18446744073709551615 is too large (at most 9223372036854775807)"
        )]
    );
    let dropin = "[door.main]\nunlock_s = 1\nrelock_delay_ms = 9223372036854775808\n";
    let dropin_path = fixture.dir.path().join("conf.d").join("50-door.toml");
    assert_eq!(
        fixture.problems(VALID, &[("50-door.toml", dropin)], &[]),
        [format!(
            "{}: door.main.relock_delay_ms: 9223372036854775808 is too large (at most 9223372036854775807)",
            dropin_path.display()
        )]
    );
}

#[test]
fn panel_section_is_checked_with_file_key_and_reason() {
    let fixture = Fixture::new();
    let main = format!(
        "{VALID}\n[panel]\nprotocol = \"wiegand\"\ncredential_map = \"m.toml\"\n[panel.wiegand]\nd0_pin = 23\nd1_pin = 23\n"
    );
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: panel.wiegand.d1_pin: is the same pin as d0_pin",
            fixture.main().display()
        )]
    );
    let unknown = format!("{VALID}\n[panel]\nprotocl = \"osdp\"\n");
    assert_eq!(
        fixture.problems(&unknown, &[], &[]),
        [format!(
            "{}: panel.protocl: unknown key",
            fixture.main().display()
        )]
    );
    let valid = main.replace("d1_pin = 23", "d1_pin = 24");
    std::fs::write(fixture.path("m.toml"), "version = 1\n").expect("map");
    assert_eq!(
        fixture.problems(&valid, &[], &[]),
        [format!(
            "{}: panel.credential_map: {}.sig is missing: the map must be signed (palmgate-panel sign-map)",
            fixture.main().display(),
            fixture.path("m.toml")
        )]
    );
    std::fs::write(fixture.path("m.toml.sig"), "00").expect("signature");
    let settings = fixture.load(&valid, &[], &[]).expect("valid");
    let panel = settings.panel.expect("[panel]");
    assert_eq!(panel.credential_map, PathBuf::from(fixture.path("m.toml")));
}

#[test]
fn panel_pins_must_not_be_door_pins() {
    let fixture = Fixture::new();
    std::fs::write(fixture.path("m.toml"), "version = 1\n").expect("map");
    std::fs::write(fixture.path("m.toml.sig"), "00").expect("signature");
    let main = format!(
        "{VALID}\n[panel]\nprotocol = \"wiegand\"\ncredential_map = \"m.toml\"\n[panel.wiegand]\nd0_pin = 17\nd1_pin = 24\n[panel.feedback]\ngreen_led_pin = 5\nred_led_pin = 22\nbuzzer_pin = 13\n"
    );
    let main_path = fixture.main().display().to_string();
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [
            format!(
                "{main_path}: panel.wiegand.d0_pin: GPIO 17 is already used by door.main.lock_pin"
            ),
            format!(
                "{main_path}: panel.feedback.red_led_pin: GPIO 22 is already used by door.main.rex_pin"
            ),
        ]
    );
}

#[test]
fn matcher_profile_defaults_to_balanced_and_takes_every_profile() {
    let fixture = Fixture::new();
    let settings = fixture.load(VALID, &[], &[]).expect("valid configuration");
    assert_eq!(
        settings.matcher.profile,
        palmgate_matcher::Profile::Balanced
    );
    for profile in palmgate_matcher::Profile::ALL {
        let dropin = format!("[matcher]\nprofile = \"{}\"\n", profile.name());
        let settings = fixture
            .load(VALID, &[("50-profile.toml", &dropin)], &[])
            .expect("valid profile");
        assert_eq!(settings.matcher.profile, profile);
    }
    let settings = fixture
        .load(VALID, &[], &[("PALMGATE__MATCHER__PROFILE", "security")])
        .expect("profile from the environment");
    assert_eq!(
        settings.matcher.profile,
        palmgate_matcher::Profile::Security
    );
    // `config check` shows it by name.
    let shown = serde_json::to_value(&settings.matcher).expect("serialise");
    assert_eq!(shown["profile"], "security");
}

#[test]
fn unknown_matcher_profile_names_file_key_and_the_profiles() {
    let fixture = Fixture::new();
    let problems = fixture.problems(
        VALID,
        &[("50-profile.toml", "[matcher]\nprofile = \"lenient\"\n")],
        &[],
    );
    assert_eq!(
        problems,
        [format!(
            "{}: matcher.profile: \"lenient\" is not one of: convenience, balanced, security",
            fixture.path("conf.d/50-profile.toml")
        )]
    );
    let problems = fixture.problems(VALID, &[], &[("PALMGATE__MATCHER__PROFILE", "Security")]);
    assert_eq!(
        problems,
        [
            "environment: matcher.profile: \"Security\" is not one of: convenience, balanced, security"
        ]
    );
}

#[test]
fn a_raw_matcher_threshold_is_refused_with_what_replaced_it() {
    let fixture = Fixture::new();
    let main = format!("{VALID}\n[matcher]\nthreshold = 0.36\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: matcher.threshold: no longer used: the card compares with the calibrated \
             threshold of matcher.profile (convenience, balanced or security)",
            fixture.main().display()
        )]
    );
}

#[test]
fn pad_defaults_to_the_balanced_profile_and_two_burst_rounds() {
    use palmgate_matcher::pad::{PadProfile, PadSettings};
    let fixture = Fixture::new();
    let settings = fixture.load(VALID, &[], &[]).expect("valid");
    assert_eq!(settings.pad, PadSettings::default());
    assert_eq!(settings.pad.profile, PadProfile::Balanced);
    assert_eq!(settings.pad.burst_rounds, 2);

    let main = format!("{VALID}\n[pad]\nprofile = \"security\"\nburst_rounds = 3\n");
    let settings = fixture
        .load(&main, &[], &[("PALMGATE__PAD__BURST_ROUNDS", "4")])
        .expect("valid");
    assert_eq!(settings.pad.profile, PadProfile::Security);
    assert_eq!(settings.pad.burst_rounds, 4, "the environment wins");
    // `palmgate config check` prints the section as it is written.
    let printed = toml::to_string(&settings).expect("settings print as TOML");
    assert!(
        printed.contains("[pad]\nprofile = \"security\"\nburst_rounds = 4\n"),
        "{printed}"
    );
}

#[test]
fn pad_section_problems_name_file_key_and_reason() {
    let fixture = Fixture::new();
    let main = format!("{VALID}\n[pad]\nprofile = \"paranoid\"\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: pad.profile: \"paranoid\" is not one of: convenience, balanced, security",
            fixture.main().display()
        )]
    );
    let problems = fixture.problems(VALID, &[("40-pad.toml", "[pad]\nburst_rounds = 9\n")], &[]);
    assert_eq!(
        problems,
        [format!(
            "{}: pad.burst_rounds: 9 is out of range (1 to 8)",
            fixture.path("conf.d/40-pad.toml")
        )]
    );
    let problems = fixture.problems(VALID, &[], &[("PALMGATE__PAD__BURST_ROUNDS", "0")]);
    assert_eq!(
        problems,
        ["environment: pad.burst_rounds: 0 is out of range (1 to 8)"]
    );
    let main = format!("{VALID}\n[pad]\nrounds = 2\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: pad.rounds: unknown key",
            fixture.main().display()
        )]
    );
    let main = format!("{VALID}\n[pad]\nburst_rounds = \"two\"\n");
    assert_eq!(
        fixture.problems(&main, &[], &[]),
        [format!(
            "{}: pad.burst_rounds: invalid type: string \"two\", expected u64",
            fixture.main().display()
        )]
    );
}
