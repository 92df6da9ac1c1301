//! `palmgate revoke`: the operator side of the revocation list.
//!
//! The operator keeps the site's list in a local JSON file of the same shape as the gate's
//! (`{"version": N, "cards": ["<hex>", …]}`). Revoking (or restoring) a card changes the file,
//! bumps its version, writes it atomically (mode 0600), then signs one `revocation_list` command
//! per gate and publishes it **retained** with QoS 1, waiting for every PUBACK. A gate that is
//! offline gets the retained list when it reconnects (docs/mqtt-api.md, "Revocation lists").
//!
//! The list's edits and versions are [`RevocationList::apply`]'s (gate/state/revocation.rs);
//! this command resolves the broker, signs and publishes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use palmgate::event::CardId;
use palmgate::gate::state::revocation::{Change, RevocationList};
use palmgate::mqtt::command::MAX_COMMAND_BYTES;
use palmgate::mqtt::oneshot::{self, Message, OneShotOptions};
use palmgate::mqtt::{Command, OperatorSigner, Topics};

/// Arguments of `palmgate revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Card id (hex, as `palmgate card info` and the events show it).
    #[arg(value_name = "CARD_ID", required_unless_present = "republish")]
    card: Option<String>,
    /// Take the card off the list instead (a lost card that was found again).
    #[arg(long, conflicts_with = "republish")]
    unrevoke: bool,
    /// Change nothing; publish the list again with a new version (a new gate, or a broker that
    /// lost its retained messages).
    #[arg(long)]
    republish: bool,
    /// Operator private key (PEM, SEC1 or PKCS#8, mode 0600) whose public key is in the gates'
    /// `mqtt.operator_keys`.
    #[arg(long, value_name = "FILE")]
    operator_key: PathBuf,
    /// The site's revocation list (JSON; created if missing).
    #[arg(long, value_name = "FILE")]
    list: PathBuf,
    /// Gate id to send the list to (repeat for every gate of the site).
    #[arg(long = "gate", value_name = "GATE", required = true)]
    gates: Vec<String>,
    #[command(flatten)]
    broker: BrokerArgs,
}

/// Where to publish: a broker URL with TLS options, or the `[mqtt]` section of a palmgate
/// configuration file.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// Broker URL: mqtt://HOST[:PORT] (loopback only) or mqtts://HOST[:PORT].
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// CA certificate(s) (PEM) that sign the broker's certificate (mqtts).
    #[arg(long, value_name = "FILE", requires = "broker")]
    ca: Option<PathBuf>,
    /// Client certificate (PEM), when the broker wants one.
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_key",
        requires = "broker"
    )]
    client_cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(
        long,
        value_name = "FILE",
        requires = "client_cert",
        requires = "broker"
    )]
    client_key: Option<PathBuf>,
    /// MQTT user name.
    #[arg(long, value_name = "NAME", requires = "broker")]
    username: Option<String>,
    /// File whose first line is the MQTT password.
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// First topic level(s) (`mqtt.topic_prefix`; default palmgate).
    #[arg(long, value_name = "PREFIX", requires = "broker")]
    topic_prefix: Option<String>,
    /// Take the broker, TLS files, credentials and topic prefix from this palmgate
    /// configuration's [mqtt] section instead.
    #[arg(long = "mqtt-config", value_name = "FILE", conflicts_with = "broker")]
    mqtt_config: Option<PathBuf>,
    /// Give up when the broker has not acknowledged everything after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    timeout_s: u64,
}

/// A resolved broker: connection options, topic prefix, and the configuration's gate id when
/// the options came from a configuration file.
pub struct Broker {
    /// Connection options.
    pub options: OneShotOptions,
    /// Topic prefix.
    pub prefix: String,
    /// `gate.id` of the configuration file, when one was given.
    pub config_gate: Option<String>,
}

impl BrokerArgs {
    /// Resolves the options (`tool` names the MQTT client id); `None` when no broker was given.
    pub fn resolve(&self, tool: &str) -> anyhow::Result<Option<Broker>> {
        let timeout = Duration::from_secs(self.timeout_s);
        if let Some(path) = &self.mqtt_config {
            let settings = palmgate::config::load(path).map_err(|error| {
                anyhow::anyhow!(
                    "configuration {}:\n{}",
                    path.display(),
                    error
                        .problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })?;
            let mut options = OneShotOptions::from_settings(&settings.mqtt, tool);
            options.timeout = timeout;
            return Ok(Some(Broker {
                options,
                prefix: settings.mqtt.topic_prefix.clone(),
                config_gate: Some(settings.gate.id.clone()),
            }));
        }
        let Some(url) = &self.broker else {
            return Ok(None);
        };
        let mut options = OneShotOptions::new(url, tool)?;
        options.ca_file = self.ca.clone();
        options.cert_file = self.client_cert.clone();
        options.key_file = self.client_key.clone();
        options.username = self.username.clone();
        if let Some(path) = &self.password_file {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading password file {}", path.display()))?,
            );
            let password = text.lines().next().unwrap_or_default().to_owned();
            options.password = Some(palmgate::config::Secret::new(password));
        }
        options.timeout = timeout;
        let prefix = self
            .topic_prefix
            .clone()
            .unwrap_or_else(|| "palmgate".to_owned());
        check_topic_level("--topic-prefix", &prefix, true)?;
        Ok(Some(Broker {
            options,
            prefix,
            config_gate: None,
        }))
    }
}

/// Refuses topic levels that would change the topic's meaning (wildcards, empty levels).
pub fn check_topic_level(what: &str, value: &str, allow_slash: bool) -> anyhow::Result<()> {
    let bad = value.is_empty()
        || value.len() > 128
        || value.contains(['+', '#', '\0'])
        || (!allow_slash && value.contains('/'))
        || value.split('/').any(str::is_empty);
    if bad {
        bail!("{what} {value:?}: not a valid topic level (no +, #, empty levels or NUL)");
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Runs `palmgate revoke`.
pub fn run(args: RevokeArgs) -> anyhow::Result<ExitCode> {
    let card = args
        .card
        .as_deref()
        .map(|text| {
            CardId::from_hex(text.trim())
                .with_context(|| format!("card id {text:?}: expected 1 to 32 bytes of hex"))
        })
        .transpose()?;
    for gate in &args.gates {
        check_topic_level("--gate", gate, false)?;
    }
    let signer = OperatorSigner::load(&args.operator_key)?;
    let broker = args
        .broker
        .resolve("palmgate-revoke")?
        .context("give the broker: --broker URL (with --ca … for mqtts) or --mqtt-config FILE")?;
    let existed = args.list.exists();
    let list = RevocationList::load(&args.list)?;
    let change = match (&card, args.unrevoke) {
        (Some(card), false) => Change::Revoke(card),
        (Some(card), true) => Change::Unrevoke(card),
        (None, _) => Change::Republish,
    };
    let (next, changed) = list.apply(change, now_ms())?;
    if !existed {
        eprintln!(
            "note: {} did not exist: starting a new list. The list replaces the whole list on \
             the gates; use the site's one list file (see docs/operations.md).",
            args.list.display()
        );
    }
    // Stored before it is published: a failed publication is repeated with --republish.
    next.save(&args.list)
        .with_context(|| format!("writing {}", args.list.display()))?;
    match (change, changed) {
        (Change::Revoke(card), true) => println!("revoked card {card}"),
        (Change::Revoke(card), false) => println!("card {card} was already revoked"),
        (Change::Unrevoke(card), _) => println!("restored card {card}"),
        (Change::Republish, _) => println!("publishing the list again"),
    }
    println!(
        "list {}: version {}, {} card(s) revoked",
        args.list.display(),
        next.version(),
        next.cards().len()
    );
    let command = Command::RevocationList {
        version: next.version(),
        cards: next.cards().iter().cloned().collect(),
    };
    let timestamp = i64::try_from(now_ms() / 1000).unwrap_or(i64::MAX);
    let mut messages = Vec::with_capacity(args.gates.len());
    for gate in &args.gates {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|error| anyhow::anyhow!("randomness: {error}"))?;
        let payload = signer.sign(gate, &command, timestamp, &nonce);
        if payload.len() > MAX_COMMAND_BYTES {
            bail!(
                "the signed list is {} bytes; gates accept at most {MAX_COMMAND_BYTES}",
                payload.len()
            );
        }
        messages.push(Message {
            topic: Topics::new(&broker.prefix, gate).command(command.name()),
            payload,
            retain: true,
        });
    }
    oneshot::publish_blocking(&broker.options, &messages).with_context(|| {
        format!(
            "publishing the list (it is saved in {}; run again with --republish)",
            args.list.display()
        )
    })?;
    let operator = signer.operator_key();
    for message in &messages {
        println!(
            "published {} (retained, QoS 1, acknowledged by {}), signed by operator {}",
            message.topic,
            broker.options.broker,
            operator.fingerprint()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_levels_are_checked() {
        assert!(check_topic_level("--gate", "gate-1", false).is_ok());
        assert!(check_topic_level("--topic-prefix", "site/a", true).is_ok());
        for bad in ["", "a/b", "+", "g#", "a//b"] {
            assert!(check_topic_level("--gate", bad, false).is_err(), "{bad}");
        }
    }
}
