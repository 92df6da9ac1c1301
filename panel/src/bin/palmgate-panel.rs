//! `palmgate-panel`: the issuer's map signing, and the panel side of palmgate on its own (a bench
//! and commissioning tool; on a gate, `palmgate run` with `[panel]` drives the panel).
//!
//! - `palmgate-panel serve --config PANEL.toml --issuer ISSUER.pub [--simulate-gpio]` runs the
//!   `[panel]` section: the OSDP peripheral device on its serial port (or the Wiegand output),
//!   the reader feedback pins the panel drives. It reads verdicts on standard input, one per
//!   line — `grant CARD_ID_HEX`, `duress CARD_ID_HEX`, `deny [CARD_ID_HEX]`, `tamper on|off` —
//!   and reports everything as JSON lines on standard output. It stops when the serial line
//!   fails (`link_lost`): the gate's reconnection is `palmgate run`'s.
//! - `palmgate-panel sign-map --issuer-key ISSUER.key MAP.toml` signs a credential map (writes
//!   `MAP.toml.sig`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use palmgate_card::host::issuer::{IssuerKey, IssuerPublicKey};
use palmgate_door::{Backend, SimulatedGpio};
use palmgate_panel::config::{PanelProtocol, PanelSettings};
use palmgate_panel::credential_map::{self, CardId, CredentialMap};
use palmgate_panel::feedback::{FeedbackPins, ReaderFeedback};
use palmgate_panel::osdp::command::Color;
use palmgate_panel::osdp::pd::PdEvent;
use palmgate_panel::osdp::serial::{LinkEvent, PdRequest};
use palmgate_panel::output::{PanelOutput, Transport, Verdict, start_osdp};
use palmgate_panel::wiegand::WiegandEmitter;
use serde_json::json;
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(
    name = "palmgate-panel",
    version,
    about = "palmgate as a reader of an access panel (OSDP, Wiegand)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the panel link; verdicts on stdin, events as JSON lines on stdout.
    Serve {
        /// A file with a `[panel]` section.
        #[arg(long)]
        config: PathBuf,
        /// Issuer public key(s) (hex) that may sign the credential map.
        #[arg(long = "issuer", required = true)]
        issuers: Vec<PathBuf>,
        /// Use the simulated GPIO (reported as `gpio` events) instead of the Raspberry Pi's.
        #[arg(long)]
        simulate_gpio: bool,
    },
    /// Sign a credential map with the issuer key (writes MAP.sig).
    SignMap {
        /// The issuer private key file (hex), as `palmgate issuer init` writes it.
        #[arg(long)]
        issuer_key: PathBuf,
        /// The map.
        map: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("palmgate-panel: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::SignMap { issuer_key, map } => {
            let text = zeroize::Zeroizing::new(
                std::fs::read_to_string(&issuer_key)
                    .with_context(|| format!("{}: cannot read", issuer_key.display()))?,
            );
            let bytes = zeroize::Zeroizing::new(
                hex::decode(text.trim()).context("the issuer key is not hex")?,
            );
            let issuer = IssuerKey::from_bytes(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", issuer_key.display()))?;
            let contents =
                std::fs::read(&map).with_context(|| format!("{}: cannot read", map.display()))?;
            let signature = credential_map::sign(&contents, &issuer)?;
            let path = credential_map::signature_path(&map);
            std::fs::write(&path, signature)
                .with_context(|| format!("{}: cannot write", path.display()))?;
            println!("signed: {}", path.display());
            Ok(())
        }
        Command::Serve {
            config,
            issuers,
            simulate_gpio,
        } => {
            let settings = palmgate_panel::config::load_file(&config)?;
            let issuers = issuers
                .iter()
                .map(|path| {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("{}: cannot read", path.display()))?;
                    IssuerPublicKey::from_hex(&text)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let map = CredentialMap::load(&settings.credential_map, &issuers)?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(serve(settings, map, simulate_gpio))
        }
    }
}

/// The Raspberry Pi's GPIO, when this build has it.
fn hardware_gpio() -> anyhow::Result<Box<dyn Backend>> {
    #[cfg(feature = "rpi")]
    {
        Ok(Box::new(palmgate_door::rpi::RpiGpio::new()?))
    }
    #[cfg(not(feature = "rpi"))]
    bail!("this build has no Raspberry Pi GPIO support (feature `rpi`): use --simulate-gpio")
}

fn emit(value: serde_json::Value) {
    println!("{value}");
}

fn color_text(color: Color) -> String {
    match color {
        Color::Off => "off".into(),
        Color::Red => "red".into(),
        Color::Green => "green".into(),
        Color::Amber => "amber".into(),
        Color::Blue => "blue".into(),
        other => format!("colour {}", other.code()),
    }
}

fn event_json(event: &PdEvent) -> serde_json::Value {
    match event {
        PdEvent::Led(led) => json!({
            "event": "led",
            "permanent": led.permanent.map(|p| color_text(p.on_color)),
            "temporary": format!("{:?}", led.temporary),
        }),
        PdEvent::Buzzer(buzzer) => json!({
            "event": "buzzer", "tone": buzzer.tone, "on": buzzer.on, "off": buzzer.off, "count": buzzer.count,
        }),
        PdEvent::ComSet(settings) => {
            json!({"event": "comset", "address": settings.address, "baud": settings.baud})
        }
        PdEvent::SecureChannel { default_key } => {
            json!({"event": "secure_channel", "default_key": default_key})
        }
        PdEvent::KeyInstalled => json!({"event": "key_installed"}),
        PdEvent::SessionExpired => json!({"event": "session_expired"}),
        PdEvent::CardDelivered { bits } => json!({"event": "card_delivered", "bits": bits}),
        PdEvent::Refused(refusal) => {
            json!({"event": "secure_refused", "reason": refusal.to_string()})
        }
        PdEvent::Nak { command, reason } => {
            json!({"event": "nak", "command": command, "reason": reason})
        }
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}

fn parse_card(word: Option<&str>) -> anyhow::Result<Option<CardId>> {
    word.map(|text| {
        let bytes = hex::decode(text).context("card id is not hex")?;
        bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("card id is not 16 bytes"))
    })
    .transpose()
}

async fn serve(settings: PanelSettings, map: CredentialMap, simulate: bool) -> anyhow::Result<()> {
    // The simulated chip is a shared handle: this clone reports its pin changes.
    let simulated = SimulatedGpio::new();
    let mut gpio: Box<dyn Backend> = if simulate {
        Box::new(simulated.clone())
    } else {
        hardware_gpio()?
    };
    let mut pins = match &settings.feedback {
        Some(feedback) => {
            let off = !feedback.active;
            Some(FeedbackPins::new(
                gpio.output(feedback.green_led_pin, off)?,
                gpio.output(feedback.red_led_pin, off)?,
                gpio.output(feedback.buzzer_pin, off)?,
                feedback.active,
            )?)
        }
        None => None,
    };
    let mut reader = ReaderFeedback::new(std::time::Instant::now());
    let (transport, mut link) = match &settings.protocol {
        PanelProtocol::Osdp(osdp) => {
            let link = start_osdp(osdp)?;
            (Transport::Osdp(link.requests.clone()), Some(link))
        }
        PanelProtocol::Wiegand(wiegand) => {
            let idle = !wiegand.active;
            let emitter = WiegandEmitter::spawn(
                gpio.output(wiegand.d0_pin, idle)?,
                gpio.output(wiegand.d1_pin, idle)?,
                wiegand.active,
                wiegand.timing(),
            )?;
            (Transport::Wiegand(emitter), None)
        }
    };
    let requests = link.as_ref().map(|link| link.requests.clone());
    let output = PanelOutput::new(&settings, map, transport);
    let mut reported = simulated.changes().len();
    let report_gpio = |reported: &mut usize| {
        let changes = simulated.changes();
        for change in &changes[*reported..] {
            emit(json!({"event": "gpio", "pin": change.pin, "level": change.level.to_string()}));
        }
        *reported = changes.len();
    };
    report_gpio(&mut reported);
    emit(json!({"event": "ready"}));

    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        let next = reader.next_change(std::time::Instant::now());
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let mut words = line.split_whitespace();
                let command = words.next().unwrap_or("");
                match command {
                    "grant" | "duress" | "deny" => {
                        let verdict = match command {
                            "grant" => Verdict::Granted,
                            "duress" => Verdict::Duress,
                            _ => Verdict::Denied,
                        };
                        let card = parse_card(words.next())?;
                        let sent = match (verdict, card) {
                            (Verdict::Granted, Some(card)) => output.credential_verified(&card),
                            (Verdict::Duress, Some(card)) => output.duress(&card),
                            (Verdict::Denied, card) => output.denied(card.as_ref()),
                            _ => bail!("{command}: a card id is needed"),
                        };
                        match sent {
                            Ok(Some(sent)) => {
                                if let Some(frame) = sent.wiegand {
                                    tokio::task::spawn_blocking(move || frame.wait()).await??;
                                }
                                emit(json!({
                                    "event": "sent", "verdict": command,
                                    "format": sent.credential.format().name(),
                                    "facility": sent.credential.facility(),
                                    "number": sent.credential.number(),
                                }));
                            }
                            Ok(None) => emit(json!({"event": "nothing_sent", "verdict": command})),
                            Err(error) => emit(json!({"event": "refused", "verdict": command, "reason": format!("{:#}", anyhow::Error::new(error))})),
                        }
                    }
                    "tamper" => {
                        let on = words.next() == Some("on");
                        if let Some(requests) = &requests {
                            requests.send(PdRequest::Tamper(on)).await?;
                        }
                    }
                    "" => {}
                    other => emit(json!({"event": "error", "reason": format!("unknown command {other:?}")})),
                }
            }
            event = async {
                match link.as_mut() {
                    Some(link) => link.events.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let event = match event {
                    Some(LinkEvent::Pd(event)) => event,
                    Some(LinkEvent::Lost(error)) => {
                        emit(json!({"event": "link_lost", "reason": format!("{:#}", anyhow::Error::new(error))}));
                        break;
                    }
                    Some(_) => continue,
                    None => break,
                };
                let now = std::time::Instant::now();
                match &event {
                    PdEvent::Led(led) => reader.led(led, now),
                    PdEvent::Buzzer(buzzer) => reader.buzzer(buzzer, now),
                    _ => {}
                }
                emit(event_json(&event));
                if let Some(pins) = &mut pins {
                    pins.show(reader.shown(now))?;
                }
                report_gpio(&mut reported);
            }
            () = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            } => {
                if let Some(pins) = &mut pins {
                    pins.show(reader.shown(std::time::Instant::now()))?;
                }
                report_gpio(&mut reported);
            }
        }
    }
    if let Some(link) = link {
        drop(link.requests);
        link.task.abort();
    }
    Ok(())
}
