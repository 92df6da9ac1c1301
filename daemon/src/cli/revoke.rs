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
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use palmgate::event::CardId;
use palmgate::gate::state::revocation::{Change, RevocationList};

use super::broker::{BrokerArgs, check_topic_level};
use palmgate::mqtt::command::MAX_COMMAND_BYTES;
use palmgate::mqtt::oneshot::{self, Message};
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
