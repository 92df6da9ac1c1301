//! What the gate's system tests share: a [`Site`] (an issuer, an operator, synthetic palms in a
//! working directory), a [`RunningGate`] (`palmgate run` on that site, READY, with its sensor
//! simulator) and [`AliceAtTheGate`] (one enrolled person at a running gate).

use std::path::{Path, PathBuf};
use std::time::Duration;

use palmgate::event::CardId;
use palmgate::mqtt::{Command as GateCommand, OperatorSigner, Topics};

use crate::gate::{
    ChildGuard, NotifySocket, Palms, Subscriber, VirtualCard, gate_config_on, now_unix, palmgate,
    personalised_card, presentation_ms, publish, sensor_simulator, sensor_simulator_with,
    start_daemon,
};
use crate::require_mqtt;

/// How long a system test waits for the gate.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// What every scenario starts from: a working directory, an issuer that certifies cards, an
/// operator whose key signs commands, and the synthetic palms.
pub struct Site {
    _dir: tempfile::TempDir,
    /// The working directory (removed with the site).
    pub root: PathBuf,
    /// The issuer's directory (`palmgate issuer init`).
    pub issuer: PathBuf,
    /// The operator whose key signs commands.
    pub operator: OperatorSigner,
    /// The operator's public key file, as the gate's configuration names it.
    pub operator_pub: PathBuf,
    /// The synthetic palms.
    pub palms: Palms,
}

impl Site {
    /// A new site in a temporary directory.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let issuer = root.join("issuer");
        palmgate(&["issuer", "init", "--out", issuer.to_str().expect("utf-8")]);
        let operator = OperatorSigner::generate().expect("operator key");
        let operator_pub = root.join("operator.pub");
        std::fs::write(&operator_pub, operator.public_key_pem()).expect("operator key file");
        let palms = Palms::new(&root);
        Self {
            _dir: dir,
            root,
            issuer,
            operator,
            operator_pub,
            palms,
        }
    }
}

/// `palmgate run` on a gate configuration (from [`gate_config_on`]), READY, with the sensor
/// simulator it reads.
pub struct RunningGate {
    /// Its systemd notification socket.
    pub notify: NotifySocket,
    /// Its log file.
    pub log: PathBuf,
    /// Its configuration file.
    pub config: PathBuf,
    /// The `palmgate run` process.
    pub daemon: ChildGuard,
    /// The sensor simulator it reads.
    pub sensor: ChildGuard,
}

impl Site {
    /// Where the sensor simulator's pty is linked.
    pub fn sensor_link(&self) -> PathBuf {
        self.root.join("sensor")
    }

    /// Starts gate `gate` on `broker` (configuration changed by `edit`) reading `sensor` (a
    /// simulator at [`Site::sensor_link`]), and waits for READY.
    pub fn start_gate(
        &self,
        broker: &str,
        gate: &str,
        sensor: ChildGuard,
        edit: impl FnOnce(String) -> String,
    ) -> RunningGate {
        let root = self.root.as_path();
        let config = gate_config_on(
            broker,
            root,
            gate,
            &self.issuer.join("issuer.pub"),
            &self.sensor_link(),
            &self.operator_pub,
        );
        let text = std::fs::read_to_string(&config).expect("config");
        std::fs::write(&config, edit(text)).expect("config");
        let notify = NotifySocket::bind(root);
        let log = root.join("daemon.log");
        let daemon = start_daemon(&config, &notify, &log);
        assert!(notify.wait_for("READY=1", PATIENCE).is_some(), "no READY=1");
        RunningGate {
            notify,
            log,
            config,
            daemon,
            sensor,
        }
    }

    /// A gate on the test broker with no card enrolled; the sensor shows one capture of palm 0.
    pub fn gate_without_cards(&self, gate: &str) -> RunningGate {
        let sensor = sensor_simulator(&self.sensor_link(), &self.palms.captures(0, 1), 1);
        self.start_gate(&require_mqtt(), gate, sensor, |text| text)
    }
}

/// A gate running for one person, Alice: her card is enrolled with palm 0, and the sensor shows
/// later captures of that palm.
pub struct AliceAtTheGate {
    /// Her virtual card's state file.
    pub card: PathBuf,
    /// Her card's id.
    pub card_id: CardId,
    /// The gate's events.
    pub mqtt: Subscriber,
    /// Her gate.
    pub running: RunningGate,
}

impl Site {
    /// Starts gate `gate` (configuration from [`gate_config`], changed by `edit`) with the sensor
    /// at `fps` frames per second, and waits for READY.
    pub fn alice_at_the_gate(
        &self,
        gate: &str,
        fps: u32,
        edit: impl FnOnce(String) -> String,
    ) -> AliceAtTheGate {
        self.alice_at_the_gate_with_hand(gate, fps, presentation_ms(fps), edit)
    }

    /// [`Site::alice_at_the_gate`] with her hand held `held_ms`, then away `away_ms`, in turn.
    pub fn alice_at_the_gate_with_hand(
        &self,
        gate: &str,
        fps: u32,
        (held_ms, away_ms): (u64, u64),
        edit: impl FnOnce(String) -> String,
    ) -> AliceAtTheGate {
        let images = self.palms.captures(0, 2);
        let sensor_args = [
            "--format",
            "jpeg",
            "--fps",
            &fps.to_string(),
            "--images",
            images.to_str().expect("utf-8 path"),
            "--hand-held-ms",
            &held_ms.to_string(),
            "--hand-away-ms",
            &away_ms.to_string(),
        ];
        self.alice_at_the_gate_with_sensor(gate, &sensor_args, edit)
    }

    /// [`Site::alice_at_the_gate`] with the sensor simulator started with `sensor_args`
    /// (`palmgate sensor simulate --link … ARGS`): for example a modelled attack species
    /// presented instead of her palm.
    pub fn alice_at_the_gate_with_sensor(
        &self,
        gate: &str,
        sensor_args: &[&str],
        edit: impl FnOnce(String) -> String,
    ) -> AliceAtTheGate {
        let root = self.root.as_path();
        let (template, _) = self.palms.template(0);
        let card = root.join("alice.card");
        let card_id = personalised_card(&card, &self.issuer, std::slice::from_ref(&template), None);
        let sensor = sensor_simulator_with(&self.sensor_link(), sensor_args);
        let mqtt = Subscriber::start(&format!("palmgate/{gate}/event/#"));
        let running = self.start_gate(&require_mqtt(), gate, sensor, edit);
        AliceAtTheGate {
            card,
            card_id,
            mqtt,
            running,
        }
    }
}

impl Site {
    /// Sends the site operator's signed commands to gate `gate` through `broker`, each with a
    /// fresh timestamp and its own nonce (`<nonce_prefix>-nonce-0001`, …).
    pub fn commands_to<'a>(
        &'a self,
        broker: &'a str,
        gate: &'a str,
        nonce_prefix: &'a str,
    ) -> impl FnMut(GateCommand) + 'a {
        let topics = Topics::new("palmgate", gate);
        let mut nonce = 0u32;
        move |command: GateCommand| {
            nonce += 1;
            let signed = self.operator.sign(
                gate,
                &command,
                now_unix(),
                format!("{nonce_prefix}-nonce-{nonce:04}").as_bytes(),
            );
            publish(broker, &topics.command(command.name()), &signed);
        }
    }
}

impl AliceAtTheGate {
    /// Presents her card, waits for the event `kind`, takes the card away; returns the payload.
    pub fn present(&mut self, kind: &str) -> String {
        let card = VirtualCard::insert(&self.card);
        let payload = self.mqtt.wait_for(&format!("/event/{kind}"), PATIENCE);
        card.remove();
        payload
    }

    /// Stops the daemon (SIGTERM and a clean exit, or SIGKILL: a crash or a power cut) and starts
    /// it again on the same configuration and state directory; waits for READY.
    pub fn restart(&mut self, kill: bool) {
        let gate = &mut self.running;
        if kill {
            gate.daemon.signal("-KILL");
            gate.daemon.wait(PATIENCE);
        } else {
            let status = gate
                .daemon
                .try_terminate(PATIENCE)
                .expect("stops on SIGTERM");
            assert!(status.success(), "daemon exit status {status}");
        }
        gate.daemon = start_daemon(&gate.config, &gate.notify, &gate.log);
        assert!(
            gate.notify.wait_for("READY=1", PATIENCE).is_some(),
            "no READY=1 after the restart"
        );
    }

    /// SIGTERM, clean exit; returns the daemon's log.
    pub fn stop(self) -> String {
        stop(self.running.daemon, &self.running.log);
        std::fs::read_to_string(&self.running.log).unwrap_or_default()
    }
}

/// SIGTERM; the daemon must exit 0 promptly (its log is shown when it does not).
pub fn stop(mut daemon: ChildGuard, log: &Path) {
    let status = daemon
        .try_terminate(Duration::from_secs(15))
        .unwrap_or_else(|| {
            panic!(
                "palmgate run did not stop on SIGTERM; log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    assert!(status.success(), "daemon exit status {status}");
}
