//! `palmgate revoke`: the operator side of the revocation list.
//!
//! The operator keeps the site's list in a local JSON file of the same shape as the gate's
//! (`{"version": N, "cards": ["<hex>", …]}`). Revoking (or restoring) a card changes the file,
//! bumps its version, writes it atomically (mode 0600), then signs one `revocation_list` command
//! per gate and publishes it **retained** with QoS 1, waiting for every PUBACK. A gate that is
//! offline gets the retained list when it reconnects (docs/mqtt-api.md, "Revocation lists").
//!
//! Versions: `max(previous + 1, now in Unix milliseconds)`. Gates apply a list only if its
//! version is newer than the one in force, so versions must grow across operator stations even
//! when they share no state: the clock makes a later publication win, and `previous + 1` keeps
//! versions growing on one station whose clock went back.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use palmgate::event::CardId;
use palmgate::gate::state::revocation::RevocationList;
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

/// What a revocation changes in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// Put the card on the list.
    Revoke(&'a CardId),
    /// Take it off.
    Unrevoke(&'a CardId),
    /// Nothing (publish again).
    Republish,
}

/// The next version: newer than `previous` and, normally, than anything another station
/// published before `now_ms`.
pub fn next_version(previous: u64, now_ms: u64) -> u64 {
    previous.saturating_add(1).max(now_ms)
}

/// Applies `change` to `list`: the new list (with its version bumped), and whether the change
/// did anything (revoking a revoked card only publishes again). Taking off a card that is not
/// on the list is an error.
pub fn apply(
    list: &RevocationList,
    change: Change<'_>,
    now_ms: u64,
) -> anyhow::Result<(RevocationList, bool)> {
    let mut cards: BTreeSet<CardId> = list.cards().clone();
    let changed = match change {
        Change::Revoke(card) => cards.insert(card.clone()),
        Change::Unrevoke(card) => {
            if !cards.remove(card) {
                bail!("card {card} is not on the revocation list");
            }
            true
        }
        Change::Republish => false,
    };
    let mut next = RevocationList::default();
    next.replace(next_version(list.version(), now_ms), cards, None)?;
    Ok((next, changed))
}

/// Writes `list` to `path` durably through [`palmgate::gate::state::durable::replace_file`]
/// (mode 0600).
pub fn save(list: &RevocationList, path: &Path) -> anyhow::Result<()> {
    let mut json = serde_json::to_vec_pretty(list).context("encoding the revocation list")?;
    json.push(b'\n');
    palmgate::gate::state::durable::replace_file(path, &json)
        .with_context(|| format!("writing {}", path.display()))
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
    let (next, changed) = apply(&list, change, now_ms())?;
    if !existed {
        eprintln!(
            "note: {} did not exist: starting a new list. The list replaces the whole list on \
             the gates; use the site's one list file (see docs/operations.md).",
            args.list.display()
        );
    }
    // Stored before it is published: a failed publication is repeated with --republish.
    save(&next, &args.list)?;
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

    fn card(byte: u8) -> CardId {
        CardId::new(&[byte; 16]).expect("card id")
    }

    #[test]
    fn versions_grow_on_one_station_and_across_stations() {
        // The clock wins when it is ahead…
        assert_eq!(next_version(0, 1_795_575_784_000), 1_795_575_784_000);
        // …and a station whose clock went back (or two changes in one millisecond) still grows.
        assert_eq!(
            next_version(1_795_575_784_000, 1_795_575_000_000),
            1_795_575_784_001
        );
        assert_eq!(next_version(u64::MAX, 0), u64::MAX);
        // Two stations without shared state: the later publication has the higher version.
        let station_a = next_version(5, 1_795_575_784_000);
        let station_b = next_version(0, 1_795_575_784_250);
        assert!(station_b > station_a);
    }

    #[test]
    fn revoke_unrevoke_and_republish_change_the_list_as_asked() {
        let empty = RevocationList::default();
        let (one, changed) = apply(&empty, Change::Revoke(&card(1)), 1000).expect("revoke");
        assert!(changed);
        assert_eq!(one.version(), 1000);
        assert_eq!(one.cards(), &BTreeSet::from([card(1)]));
        let (again, changed) = apply(&one, Change::Revoke(&card(1)), 1000).expect("again");
        assert!(!changed, "already revoked");
        assert_eq!(
            again.version(),
            1001,
            "still a new version, published again"
        );
        let (two, _) = apply(&again, Change::Revoke(&card(2)), 900).expect("second card");
        assert_eq!(two.version(), 1002);
        assert_eq!(two.cards().len(), 2);
        let (restored, _) = apply(&two, Change::Unrevoke(&card(1)), 5000).expect("unrevoke");
        assert_eq!(restored.cards(), &BTreeSet::from([card(2)]));
        assert_eq!(restored.version(), 5000);
        let error = apply(&restored, Change::Unrevoke(&card(7)), 6000).expect_err("not listed");
        assert!(
            error.to_string().contains("not on the revocation list"),
            "{error}"
        );
        let (same, changed) = apply(&restored, Change::Republish, 6000).expect("republish");
        assert!(!changed);
        assert_eq!(same.cards(), restored.cards());
        assert_eq!(same.version(), 6000);
    }

    #[test]
    fn the_list_file_is_written_atomically_private_and_readable_by_the_gate() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("site-revoked.json");
        let missing = RevocationList::load(&path).expect("a missing file is an empty list");
        assert_eq!(missing.version(), 0);
        let (list, _) = apply(&missing, Change::Revoke(&card(3)), 42).expect("revoke");
        save(&list, &path).expect("save");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // The gate's own loader reads the operator's file: same shape.
        assert_eq!(RevocationList::load(&path).expect("reload"), list);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("site-revoked.json")]);
        // A corrupt list is an error, never silently an empty list (which would un-revoke).
        std::fs::write(&path, b"{\"version\": 3}").expect("write");
        assert!(RevocationList::load(&path).is_err());
    }

    #[test]
    fn topic_levels_are_checked() {
        assert!(check_topic_level("--gate", "gate-1", false).is_ok());
        assert!(check_topic_level("--topic-prefix", "site/a", true).is_ok());
        for bad in ["", "a/b", "+", "g#", "a//b"] {
            assert!(check_topic_level("--gate", bad, false).is_err(), "{bad}");
        }
    }
}
