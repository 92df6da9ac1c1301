//! `palmgate enrol`: the enrolment station on this machine's devices.
//!
//! The station's order of work (card read, consent, captures, writes, verification) is
//! `palmgate::enrol::station`; this command builds its devices (the PC/SC reader, the serial
//! sensor), asks for consent on the terminal, renders the station's notices (with a progress bar
//! per capture series) and publishes its events.
//!
//! Exit status: 0 enrolled and verified; 1 refused (the reason is printed); 2 error.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use palmgate::enrol::station::{SensorOptions, kind_name};
use palmgate::enrol::{
    AuditLog, CaptureStep, ConsentMethod, DEFAULT_CONSENT_TEXT, EnrolError, Hand, Issuer, Notice,
    Operator, Refusal, SensorSetup, StationOptions, Verification, consent_answer,
};
use palmgate::gate::devices::SerialSensor;
use palmgate_card::host::issuer::{load_authority, load_issuer_key, load_issuer_public_key};
use palmgate_card::host::pcsc::PcscTransport;
use palmgate_matcher::Profile;
use palmgate_matcher::profile::STATION_EXTRA_CAPTURES;
use palmgate_sensor::device::DeviceConfig;

use crate::cli::template::{InputArg, load_extractor};

/// Where the audit log goes unless `--audit-log` says otherwise (the daemon's state directory).
pub const DEFAULT_AUDIT_LOG: &str = "/var/lib/palmgate/enrolment/audit.jsonl";

/// Arguments of `palmgate enrol`.
#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// Serial device of the palm sensor (or a `palmgate sensor simulate` link).
    #[arg(long, value_name = "PORT")]
    sensor: PathBuf,
    /// Line speed of the sensor.
    #[arg(long, default_value_t = 921_600)]
    baud: u32,
    /// Use the first PC/SC reader whose name contains PATTERN (case-insensitive; default: any).
    #[arg(long, value_name = "PATTERN", default_value = "")]
    reader: String,
    /// Issuer directory (`palmgate issuer init`): personalises factory cards, checks certificates
    /// and proves the enrolment authority.
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Accepted captures enrolled per hand; every pair of them must match (see `--extra-captures`).
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=10))]
    samples: u8,
    /// Captures the station may ask for beyond `--samples` when a hand's captures do not all
    /// match each other; it then enrols `--samples` of them that do (0: refuse at once).
    #[arg(long, value_name = "N", default_value_t = STATION_EXTRA_CAPTURES as u8, value_parser = clap::value_parser!(u8).range(0..=5))]
    extra_captures: u8,
    /// Also enrol the other hand into a duress slot (a match opens and raises a silent alarm).
    #[arg(long)]
    duress_hand: bool,
    /// The card already holds templates: erase them first (the signed deletion receipt is kept
    /// next to the audit log).
    #[arg(long)]
    re_enrol: bool,
    /// The person has read the consent text and agreed (for non-interactive use; on a terminal
    /// without this flag the station asks).
    #[arg(long)]
    consent_confirmed: bool,
    /// The site's consent text to show (its SHA-256 is recorded); a built-in text by default.
    #[arg(long, value_name = "FILE")]
    consent_file: Option<PathBuf>,
    /// Audit log (JSON lines, created with mode 0600).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_AUDIT_LOG)]
    audit_log: PathBuf,
    /// Refused captures allowed per hand before giving up (extra captures included).
    #[arg(long, value_name = "N", default_value_t = 10)]
    max_refused: u16,
    /// Seconds to wait for the sensor to connect and for each capture.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    wait: u64,
    /// What the sensor's images show.
    #[arg(long, value_enum, default_value_t = InputArg::Hand)]
    input: InputArg,
    /// A replacement ONNX feature model (as for the gate).
    #[arg(long, value_name = "FILE.onnx")]
    model: Option<PathBuf>,
    /// The gates' security profile (`matcher.profile`): the captures of a hand must match each
    /// other under its threshold, and the verification after writing uses it.
    #[arg(long, value_name = "PROFILE", default_value_t = Profile::Balanced)]
    profile: Profile,
    /// Also write a profile floor on the card: it then applies at least this profile whatever a
    /// gate (or a thief's own reader) asks for (applet 1.5 and later; erasing clears it).
    #[arg(long, value_name = "PROFILE")]
    profile_floor: Option<Profile>,
    /// Also publish the audit log's records as events (`enrol.consent`, `card.erased` with the
    /// receipt, `enrol.completed`) on `<prefix>/<station>/event/<kind>`.
    #[command(flatten)]
    publish: super::broker::PublishArgs,
}

/// Runs `palmgate enrol`.
pub fn run(args: EnrolArgs) -> anyhow::Result<ExitCode> {
    let outcome = enrol(&args);
    Ok(match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Refused(reason)) => {
            eprintln!("palmgate: refused: {}", palmgate::error_chain(&reason));
            ExitCode::from(1)
        }
        Err(Stop::Error(error)) => {
            eprintln!("palmgate: error: {error:#}");
            ExitCode::from(2)
        }
    })
}

/// Why the station stopped: a refusal (exit 1) or an error (exit 2).
enum Stop {
    Refused(Refusal),
    Error(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(error: anyhow::Error) -> Self {
        Stop::Error(error)
    }
}

impl From<EnrolError> for Stop {
    fn from(error: EnrolError) -> Self {
        match error {
            EnrolError::Refused(refusal) => Stop::Refused(refusal),
            error => Stop::Error(error.into()),
        }
    }
}

fn enrol(args: &EnrolArgs) -> Result<(), Stop> {
    let issuer = load_issuer(&args.issuer)?;
    let consent_text = match &args.consent_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading consent text {}", path.display()))?,
        None => DEFAULT_CONSENT_TEXT.to_string(),
    };
    // A half-given broker destination is an error before anything happens.
    let publisher = super::broker::resolve_publisher(&args.publish)?;
    let extractor = load_extractor(args.model.as_deref())?;
    let mut audit = AuditLog::open(&args.audit_log).map_err(anyhow::Error::new)?;
    let transport = PcscTransport::connect(&args.reader).context("connecting to the card")?;

    let mut sensor = DeviceConfig::new(&args.sensor);
    sensor.baud = args.baud;
    sensor.capture = None;
    let setup = SensorSetup {
        link: Box::new(SerialSensor(sensor)),
        extractor: Arc::new(extractor),
        options: SensorOptions {
            name: args.sensor.display().to_string(),
            wait: Duration::from_secs(args.wait),
            input: args.input.into(),
        },
    };
    let options = StationOptions {
        samples: usize::from(args.samples),
        duress_hand: args.duress_hand,
        re_enrol: args.re_enrol,
        max_refused: usize::from(args.max_refused),
        extra_captures: usize::from(args.extra_captures),
        consent_text,
        profile: args.profile,
        profile_floor: args.profile_floor,
    };
    let mut terminal = Terminal {
        consent_confirmed: args.consent_confirmed,
        sensor: args.sensor.clone(),
        bar: None,
    };
    let enrolment = palmgate::enrol::enrol(
        transport,
        &issuer,
        &options,
        setup,
        &mut audit,
        &mut terminal,
    );
    if !enrolment.events.is_empty()
        && let Some(publisher) = &publisher
        && let Err(error) = publisher.publish_events(enrolment.events)
    {
        eprintln!(
            "palmgate: warning: the events were not published ({error:#}); they are in the audit \
             log {}",
            args.audit_log.display()
        );
    }
    let card_id = enrolment.result?;
    println!("card {card_id}: enrolled and verified");
    Ok(())
}

fn load_issuer(dir: &std::path::Path) -> anyhow::Result<Issuer> {
    Ok(Issuer {
        key: load_issuer_key(dir)?,
        public: load_issuer_public_key(dir)?,
        authority: load_authority(dir)?,
        source: dir.to_path_buf(),
    })
}

/// The station's operator on this terminal.
struct Terminal {
    consent_confirmed: bool,
    sensor: PathBuf,
    /// The progress of the capture series under way.
    bar: Option<ProgressBar>,
}

impl Terminal {
    /// Prints a line without tearing the progress bar.
    fn say(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }

    fn capture(&mut self, hand: Hand, step: &CaptureStep) {
        let Some(bar) = self.bar.clone() else {
            return;
        };
        match step {
            CaptureStep::Accepted {
                number,
                wanted,
                valid_cells,
            } => {
                bar.set_position(*number as u64);
                bar.set_message("accepted");
                self.say(&format!(
                    "{hand} capture {number} of {wanted}: accepted ({valid_cells} of 576 cells valid)"
                ));
                if number < wanted {
                    self.say("Lift the hand and present it again.");
                }
            }
            CaptureStep::Refused {
                reason,
                advice,
                refused,
                max_refused,
            } => {
                bar.set_message(format!("refused: {reason}"));
                self.say(&format!(
                    "{hand} capture refused ({refused} of {max_refused} allowed): {reason} — {advice}"
                ));
            }
            // The refusal that ends the enrolment is printed as such.
            CaptureStep::GaveUp { .. } => {}
        }
    }
}

impl Operator for Terminal {
    fn consent(&mut self, text: &str, sha256: &str) -> Result<ConsentMethod, EnrolError> {
        println!("---- consent ----\n{}\n-----------------", text.trim_end());
        println!("consent text sha256: {sha256}");
        if self.consent_confirmed {
            println!("consent confirmed by the operator (--consent-confirmed)");
            return Ok(ConsentMethod::Flag);
        }
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(Refusal::ConsentNotConfirmed.into());
        }
        print!("Has the person read this and do they consent to enrolment? [y/N] ");
        std::io::stdout()
            .flush()
            .map_err(|source| EnrolError::Operator {
                doing: "writing the prompt",
                source,
            })?;
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|source| EnrolError::Operator {
                doing: "reading the answer",
                source,
            })?;
        if !consent_answer(&answer) {
            return Err(Refusal::ConsentNotGiven.into());
        }
        Ok(ConsentMethod::Prompt)
    }

    fn notice(&mut self, notice: Notice<'_>) {
        match notice {
            Notice::CardRead {
                card_id,
                slots_used,
                slot_capacity,
            } => {
                println!("card {card_id}: personalised, {slots_used} of {slot_capacity} slots used")
            }
            Notice::FactoryCard => println!("card in the factory state: it will be personalised"),
            Notice::SensorConnected(info) => println!(
                "sensor {}: {} {} ({}x{})",
                self.sensor.display(),
                info.model,
                info.firmware,
                info.width,
                info.height
            ),
            Notice::SensorProblem(error) => {
                eprintln!("palmgate: sensor: {}", palmgate::error_chain(error));
            }
            Notice::SensorDisconnected { error, retry_in } => eprintln!(
                "palmgate: sensor: {}; retrying in {} ms",
                palmgate::error_chain(error),
                retry_in.as_millis()
            ),
            Notice::SeriesStarted {
                hand,
                wanted,
                already,
            } => {
                if hand == Hand::Duress && already == 0 {
                    println!("Now the OTHER hand, for the duress slot.");
                }
                // An extra capture goes on with the series: the bar and the numbers continue.
                let bar = ProgressBar::new((already + wanted) as u64);
                bar.set_position(already as u64);
                bar.set_style(
                    ProgressStyle::with_template("{prefix} [{bar:24}] {pos}/{len} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                bar.set_prefix(hand.to_string());
                self.bar = Some(bar);
                self.say(&format!(
                    "Present the {hand} to the sensor: palm flat, fingers spread."
                ));
            }
            Notice::Capture { hand, step } => self.capture(hand, step),
            Notice::SeriesEnded { .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            Notice::SeriesAgree { hand, report } => println!("{hand}: {report}"),
            Notice::SeriesDisagrees {
                hand,
                disagreement,
                extra,
                allowed,
            } => println!(
                "{hand}: {disagreement} — lift the hand and present it again (extra capture {extra} of {allowed})"
            ),
            Notice::Personalised { card_id } => println!("card {card_id}: personalised"),
            Notice::Erased { slots, receipt } => println!(
                "erased {slots} slot(s); deletion receipt {}",
                receipt.display()
            ),
            Notice::Enrolled { slot, kind } => {
                println!("slot {slot}: enrolled ({})", kind_name(kind));
            }
            Notice::VerifyPresent { hand } => {
                println!("Verification: lift the hand, then present the {hand} once more.");
            }
            Notice::VerifyCaptureRefused {
                hand,
                reason,
                advice,
            } => println!("{hand} capture refused: {reason} — {advice}"),
            Notice::Verified { hand, verification } => match verification {
                Verification::Match => println!("verification ({hand}): match"),
                Verification::OtherSlot(kind) => println!(
                    "verification ({hand}): matched the {} slot instead",
                    kind_name(kind)
                ),
                Verification::NoMatch { tries_left } => {
                    println!("verification ({hand}): no match, {tries_left} tries left");
                }
                Verification::Blocked => println!("verification ({hand}): blocked"),
                _ => println!("verification ({hand}): {verification:?}"),
            },
            _ => {}
        }
    }
}
