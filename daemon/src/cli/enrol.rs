//! `palmgate enrol`: the enrolment station.
//!
//! Order of work, chosen so that a refusal at any step leaves the card as it was:
//! 1. read the card (refuse an enrolled card without `--re-enrol`, or one of another issuer);
//! 2. show the consent text and get an explicit yes (prompt, or `--consent-confirmed`);
//! 3. capture the hand(s) with live quality feedback; check the captures match each other (and
//!    that a duress hand differs from the normal one);
//! 4. only then write: personalise a factory card, record consent, erase (with `--re-enrol`,
//!    keeping the signed receipt), enrol, reset the retry counter;
//! 5. verify each enrolled hand on the card with a fresh capture.
//!
//! Each capture comes from its own presentation of the hand: after an accepted capture the station
//! ignores frames until the sensor reports the hand gone (`palmgate::enrol::presentation`).
//!
//! Exit status: 0 enrolled and verified; 1 refused (the reason is printed); 2 error.

use std::fs::File;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use palmgate::enrol::audit::SlotRecord;
use palmgate::enrol::{
    AuditRecord, CaptureLoop, CaptureStep, ConsentMethod, DEFAULT_CONSENT_TEXT, Hand,
    PresentationFilter, check_distinct, check_mutual, consent_answer, consent_hash,
};
use palmgate::event::{CardId, EventKind, NewEvent, Outcome, Timestamp};
use palmgate_card::host::issuer::{
    EnrolmentAuthority, load_authority, load_issuer_key, load_issuer_public_key,
};
use palmgate_card::host::pcsc::PcscTransport;
use palmgate_card::host::{Card, CardError, ReceiptBundle, VerifiedCard, VerifyOutcome};
use palmgate_card::protocol::{Lifecycle, SlotKind};
use palmgate_matcher::Profile;
use palmgate_matcher::extract::{Extractor, InputKind};
use palmgate_matcher::template::Template;
use palmgate_sensor::codec::FrameFormat;
use palmgate_sensor::device::{self, CaptureRequest, DeviceCommand, DeviceConfig, SensorEvent};
use sha2::Digest as _;
use tokio::sync::{mpsc, oneshot};

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
    /// Accepted captures per hand; every pair must match.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=10))]
    samples: u8,
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
    /// Refused captures allowed per hand before giving up.
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
    /// Also publish the audit log's records as events (`enrol.consent`, `card.erased` with the
    /// receipt, `enrol.completed`) on `<prefix>/<station>/event/<kind>`.
    #[command(flatten)]
    publish: super::broker::PublishArgs,
}

/// Why the station stopped: a refusal (exit 1) or an error (exit 2).
enum Stop {
    Refused(String),
    Error(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for Stop {
    fn from(error: E) -> Self {
        Stop::Error(error.into())
    }
}

fn refused<T>(reason: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Refused(reason.into()))
}

/// Runs `palmgate enrol`.
pub fn run(args: EnrolArgs) -> anyhow::Result<ExitCode> {
    Ok(match enrol(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::Refused(reason)) => {
            eprintln!("palmgate: refused: {reason}");
            ExitCode::from(1)
        }
        Err(Stop::Error(error)) => {
            eprintln!("palmgate: error: {error:#}");
            ExitCode::from(2)
        }
    })
}

fn enrol(args: &EnrolArgs) -> Result<(), Stop> {
    let issuer_key = load_issuer_key(&args.issuer)?;
    let issuer_public = load_issuer_public_key(&args.issuer)?;
    let authority = load_authority(&args.issuer)?;
    let consent_text = match &args.consent_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading consent text {}", path.display()))?,
        None => DEFAULT_CONSENT_TEXT.to_string(),
    };
    // A half-given broker destination is an error before anything happens.
    let publisher = super::broker::resolve_publisher(&args.publish)?;
    let extractor = load_extractor(args.model.as_deref())?;
    let mut audit = AuditLog::open(&args.audit_log)?;

    // 1. The card.
    let transport = PcscTransport::connect(&args.reader).context("connecting to the card")?;
    let mut card = Card::open(transport).context("selecting the palmgate applet")?;
    let identity = *card.identity();
    let mut verified = None;
    if identity.lifecycle == Lifecycle::Personalised {
        let checked = match card.verify_certificate(&[issuer_public]) {
            Ok(checked) => checked,
            Err(error @ (CardError::Certificate(_) | CardError::CardIdMismatch)) => {
                return refused(format!(
                    "the card's certificate does not verify against the issuer in {} ({}): a card \
                     of another site, or a forged one",
                    args.issuer.display(),
                    anyhow::Error::new(error)
                ));
            }
            Err(error) => return Err(anyhow::Error::new(error).context("reading the card").into()),
        };
        println!(
            "card {}: personalised, {} of {} slots used",
            hex::encode(checked.card_id),
            identity.slots_used,
            identity.slot_capacity
        );
        if identity.slots_used > 0 && !args.re_enrol {
            return refused(format!(
                "card {} already has {} enrolled template(s); pass --re-enrol to erase them (with a \
                 signed deletion receipt) and enrol again",
                hex::encode(checked.card_id),
                identity.slots_used
            ));
        }
        verified = Some(checked);
    } else {
        println!("card in the factory state: it will be personalised");
    }
    let hands_needed = if args.duress_hand { 2 } else { 1 };
    if usize::from(identity.slot_capacity) < hands_needed {
        return refused(format!(
            "the card has {} slot(s); {hands_needed} are needed",
            identity.slot_capacity
        ));
    }

    // 2. Consent, before any capture.
    let consent = ask_consent(&consent_text, args.consent_confirmed)?;

    // 3. Captures.
    let mut station = Station::start(args, extractor)?;
    // Captures are compared one to one: the profile's one-template threshold.
    let threshold = args.profile.threshold(1);
    let normal = station.capture_series(Hand::Normal, usize::from(args.samples))?;
    let normal_report =
        check_mutual(&normal, threshold).map_err(|e| Stop::Refused(e.to_string()))?;
    println!("hand: {normal_report}");
    let duress = if args.duress_hand {
        println!("Now the OTHER hand, for the duress slot.");
        let duress = station.capture_series(Hand::Duress, usize::from(args.samples))?;
        let report = check_mutual(&duress, threshold).map_err(|e| Stop::Refused(e.to_string()))?;
        check_distinct(&normal, &duress, threshold).map_err(|e| Stop::Refused(e.to_string()))?;
        println!("duress hand: {report}");
        Some((duress, report.reference))
    } else {
        None
    };

    // 4. Write to the card (the station keeps watching the hand meanwhile).
    station.watch();
    let personalised = verified.is_none();
    let verified = match verified {
        Some(verified) => verified,
        None => {
            card.personalise(&issuer_key)
                .context("personalising the card")?;
            let verified = card
                .verify_certificate(&[issuer_public])
                .context("checking the new card certificate")?;
            println!("card {}: personalised", hex::encode(verified.card_id));
            verified
        }
    };
    let card_id = CardId::new(&verified.card_id).context("card id")?;
    audit.append(&AuditRecord::Consent {
        time: consent.time,
        card_id: card_id.clone(),
        consent_text_sha256: consent_hash(&consent_text),
        method: consent.method,
        duress_hand: args.duress_hand,
    })?;
    // The same records as events for the facility's dashboards (the audit log is the durable
    // record), published at the end however the enrolment ends.
    let mut events = vec![
        NewEvent::new(EventKind::EnrolConsent, consent.time)
            .card(card_id.clone())
            .result(Outcome::Info)
            .detail(format!(
                "consent_text_sha256={} method={}",
                consent_hash(&consent_text),
                match consent.method {
                    ConsentMethod::Prompt => "prompt",
                    ConsentMethod::Flag => "flag",
                }
            )),
    ];
    let mut slots = vec![(SlotKind::Normal, &normal[normal_report.reference])];
    if let Some((duress, reference)) = &duress {
        slots.push((SlotKind::Duress, &duress[*reference]));
    }
    // Erase, enrol and verify as one step whose events are published however it ends: a
    // consent given or a card erased is news for the facility even when enrolment fails later.
    let written = (|| -> Result<bool, Stop> {
        // Erase first and keep the receipt safe before anything new is written.
        let used = card
            .refresh_identity()
            .context("reading the card")?
            .slots_used;
        if used > 0 {
            if !args.re_enrol {
                return refused(format!(
                    "card {card_id} gained templates during enrolment; nothing was written"
                ));
            }
            let receipt = erase_card(&mut card, &verified, &authority)?;
            let fields = receipt.receipt.fields();
            let path = audit.receipt_path(&card_id, fields.erase_counter);
            let bytes = receipt.encode();
            write_new_private(&path, &bytes)
                .with_context(|| format!("writing the deletion receipt {}", path.display()))?;
            println!(
                "erased {} slot(s); deletion receipt {}",
                fields.slots_erased,
                path.display()
            );
            audit.append(&AuditRecord::CardErased {
                time: Timestamp::now(),
                card_id: card_id.clone(),
                erase_counter: fields.erase_counter,
                slots_erased: fields.slots_erased,
                receipt_file: path.display().to_string(),
                receipt_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            })?;
            events.push(palmgate::station::erased_new_event(
                &receipt,
                Timestamp::now(),
            )?);
        }
        enrol_slots(&mut card, &verified, &authority, &slots)?;
        for (slot, (kind, _)) in slots.iter().enumerate() {
            println!("slot {slot}: enrolled ({})", kind_name(*kind));
        }

        // 5. Verify with fresh captures. The card now holds templates: its completion is
        // recorded (verified or not) before any verification error is passed on.
        let verification = verify_enrolled(
            &mut station,
            &mut card,
            &verified,
            args.profile,
            slots.len(),
        );
        let all_matched = matches!(verification, Ok(true));
        station.stop();
        audit.append(&AuditRecord::Completed {
            time: Timestamp::now(),
            card_id: card_id.clone(),
            personalised,
            slots: slots
                .iter()
                .enumerate()
                .map(|(slot, (kind, _))| SlotRecord {
                    slot: slot as u8,
                    kind: kind_name(*kind),
                })
                .collect(),
            verified: all_matched,
        })?;
        events.push(
            NewEvent::new(EventKind::EnrolCompleted, Timestamp::now())
                .card(card_id.clone())
                .result(Outcome::Info)
                .detail(format!(
                    "slots={} verified={all_matched} personalised={personalised}",
                    slots
                        .iter()
                        .map(|(kind, _)| kind_name(*kind))
                        .collect::<Vec<_>>()
                        .join(",")
                )),
        );
        verification.map(|_| all_matched)
    })();
    if let Some(publisher) = &publisher
        && let Err(error) = publisher.publish_events(events)
    {
        eprintln!(
            "palmgate: warning: the events were not published ({error:#}); they are in the audit \
             log {}",
            args.audit_log.display()
        );
    }
    let all_matched = written?;
    if !all_matched {
        return refused(format!(
            "card {card_id} is enrolled but the verification capture did not match: check with \
             `palmgate card verify`, or enrol again with --re-enrol"
        ));
    }
    println!("card {card_id}: enrolled and verified");
    Ok(())
}

/// Verifies each enrolled hand with a fresh capture (slot 0 the normal hand, slot 1 the duress
/// hand); whether every one matched its own slot.
fn verify_enrolled(
    station: &mut Station,
    card: &mut Card<PcscTransport>,
    verified: &VerifiedCard,
    profile: Profile,
    slots: usize,
) -> Result<bool, Stop> {
    let mut all_matched = true;
    for (kind, hand) in [
        (SlotKind::Normal, Hand::Normal),
        (SlotKind::Duress, Hand::Duress),
    ]
    .into_iter()
    .take(slots)
    {
        println!("Verification: lift the hand, then present the {hand} once more.");
        let probe = station.capture_one(hand)?;
        let mut session = card
            .open_session(verified)
            .context("opening a secure session")?;
        let outcome = session
            .verify_palm_under(profile, &probe)
            .context("verifying")?;
        match outcome {
            VerifyOutcome::Match { slot_kind, .. } if slot_kind == kind => {
                println!("verification ({hand}): match");
            }
            VerifyOutcome::Match { slot_kind, .. } => {
                println!(
                    "verification ({hand}): matched the {} slot instead",
                    kind_name(slot_kind)
                );
                all_matched = false;
            }
            VerifyOutcome::NoMatch { tries_left } => {
                println!("verification ({hand}): no match, {tries_left} tries left");
                all_matched = false;
            }
            VerifyOutcome::Blocked => {
                println!("verification ({hand}): blocked");
                all_matched = false;
            }
        }
    }
    Ok(all_matched)
}

fn kind_name(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Duress => "duress",
        _ => "normal",
    }
}

/// Erases every template in an enrolment session; returns the signed receipt with the card
/// certificate (so that it verifies on its own).
fn erase_card(
    card: &mut Card<PcscTransport>,
    verified: &VerifiedCard,
    authority: &EnrolmentAuthority,
) -> anyhow::Result<ReceiptBundle> {
    let session = card
        .open_session(verified)
        .context("opening a secure session")?;
    let unix_s = u64::try_from(Timestamp::now().unix_ms() / 1000).unwrap_or(0);
    let receipt = session
        .prove_authority(authority)
        .context("proving the enrolment authority")?
        .erase(unix_s)
        .context("erasing")?;
    Ok(ReceiptBundle {
        receipt,
        certificate: verified.certificate,
    })
}

/// Enrols the slots in order (0, 1, …) and restores the retry counter, in one enrolment session.
fn enrol_slots(
    card: &mut Card<PcscTransport>,
    verified: &VerifiedCard,
    authority: &EnrolmentAuthority,
    slots: &[(SlotKind, &Template)],
) -> anyhow::Result<()> {
    let session = card
        .open_session(verified)
        .context("opening a secure session")?;
    let mut enrolment = session
        .prove_authority(authority)
        .context("proving the enrolment authority")?;
    for (slot, (kind, template)) in slots.iter().enumerate() {
        let slot = u8::try_from(slot).map_err(|_| anyhow!("too many slots"))?;
        enrolment
            .enrol(slot, *kind, template)
            .with_context(|| format!("enrolling slot {slot}"))?;
    }
    enrolment
        .reset_retry_counter()
        .context("restoring the retry counter")
}

struct Consent {
    time: Timestamp,
    method: ConsentMethod,
}

fn ask_consent(text: &str, confirmed_by_flag: bool) -> Result<Consent, Stop> {
    println!("---- consent ----\n{}\n-----------------", text.trim_end());
    println!("consent text sha256: {}", consent_hash(text));
    if confirmed_by_flag {
        println!("consent confirmed by the operator (--consent-confirmed)");
        return Ok(Consent {
            time: Timestamp::now(),
            method: ConsentMethod::Flag,
        });
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return refused(
            "consent not confirmed: no terminal to ask on; once the person has read the consent \
             text and agreed, pass --consent-confirmed",
        );
    }
    print!("Has the person read this and do they consent to enrolment? [y/N] ");
    std::io::stdout().flush().context("writing the prompt")?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    if !consent_answer(&answer) {
        return refused("consent not given: nothing was captured or written");
    }
    Ok(Consent {
        time: Timestamp::now(),
        method: ConsentMethod::Prompt,
    })
}

/// The append-only audit log (created 0600, its directory 0700).
struct AuditLog {
    path: PathBuf,
    file: File,
}

impl AuditLog {
    fn open(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening the audit log {}", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
        })
    }

    fn append(&mut self, record: &AuditRecord) -> anyhow::Result<()> {
        self.file
            .write_all(record.to_line().as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing the audit log {}", self.path.display()))
    }

    /// `receipt-<card id>-<erase counter>.bin` next to the log.
    fn receipt_path(&self, card_id: &CardId, erase_counter: u32) -> PathBuf {
        let name = format!("receipt-{card_id}-{erase_counter}.bin");
        match self.path.parent() {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }
}

/// Writes a new file readable by the owner only (never overwrites).
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// What [`Station::watch`] hands back.
struct WatchResult {
    events: mpsc::Receiver<SensorEvent>,
    /// Whether the sensor reported the hand gone while the station was busy.
    lifted: bool,
}

/// The sensor side of the station: a device task and the extractor.
struct Station {
    runtime: tokio::runtime::Runtime,
    /// The sensor's events; lent to the watch task while the station works on the card.
    events: Option<mpsc::Receiver<SensorEvent>>,
    /// Reads the sensor while the station works on the card (see [`Station::watch`]).
    watch: Option<(oneshot::Sender<()>, tokio::task::JoinHandle<WatchResult>)>,
    commands: mpsc::Sender<DeviceCommand>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    extractor: Arc<Extractor>,
    input: InputKind,
    wait: Duration,
    max_refused: usize,
    sensor: PathBuf,
    /// Frame format to ask for: JPEG when the sensor offers it (the gate's default), else the
    /// sensor's first format.
    format: FrameFormat,
    /// Whether the sensor was asked to stream (once, for the whole enrolment).
    capturing: bool,
    /// One capture per presentation of the hand, across every series and the verification.
    presentations: PresentationFilter,
}

impl Station {
    fn start(args: &EnrolArgs, extractor: Extractor) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let mut config = DeviceConfig::new(&args.sensor);
        config.baud = args.baud;
        config.capture = None;
        let (events_sender, events) = mpsc::channel(16);
        let (commands, command_receiver) = mpsc::channel(4);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(device::run(
            config,
            events_sender,
            command_receiver,
            async {
                let _ = stopped.await;
            },
        ));
        let mut station = Self {
            runtime,
            events: Some(events),
            commands,
            stop: Some(stop),
            task: Some(task),
            extractor: Arc::new(extractor),
            input: args.input.into(),
            wait: Duration::from_secs(args.wait),
            max_refused: usize::from(args.max_refused),
            sensor: args.sensor.clone(),
            format: FrameFormat::Jpeg,
            capturing: false,
            watch: None,
            presentations: PresentationFilter::default(),
        };
        station.wait_connected()?;
        Ok(station)
    }

    fn wait_connected(&mut self) -> anyhow::Result<()> {
        let wait = self.wait;
        let sensor = self.sensor.clone();
        let events = self
            .events
            .as_mut()
            .context("the sensor events are lent out")?;
        let format = &mut self.format;
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            let mut last_error = None;
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(SensorEvent::Connected(info))) => {
                        println!(
                            "sensor {}: {} {} ({}x{})",
                            sensor.display(),
                            info.model,
                            info.firmware,
                            info.width,
                            info.height
                        );
                        if !info.formats.contains(format) {
                            *format = *info
                                .formats
                                .first()
                                .context("the sensor offers no frame format")?;
                        }
                        return Ok(());
                    }
                    Ok(Some(SensorEvent::Disconnected { error, .. })) => last_error = Some(error),
                    Ok(Some(_)) => {}
                    Ok(None) => anyhow::bail!("the sensor task stopped"),
                    Err(_) => {
                        let message = format!(
                            "no sensor on {} within {} s",
                            sensor.display(),
                            wait.as_secs()
                        );
                        return Err(match last_error {
                            Some(error) => anyhow::Error::new(error).context(message),
                            None => anyhow!(message),
                        });
                    }
                }
            }
        })
    }

    /// Starts the sensor streaming presence reports and frames, unless it already is.
    fn start_capture(&mut self) -> anyhow::Result<()> {
        if self.capturing {
            return Ok(());
        }
        let request = DeviceCommand::StartCapture(CaptureRequest {
            format: self.format,
            frames: 0,
        });
        let commands = self.commands.clone();
        self.runtime
            .block_on(commands.send(request))
            .map_err(|_| anyhow!("the sensor task stopped"))?;
        self.capturing = true;
        Ok(())
    }

    /// While the station works on the card, keeps reading the sensor: frames are dropped (they
    /// would be stale by the time the station looks again) and a lift of the hand is remembered,
    /// so that the verification that follows knows whether a new presentation has begun.
    fn watch(&mut self) {
        let Some(mut events) = self.events.take() else {
            return;
        };
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = self.runtime.spawn(async move {
            let mut lifted = false;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    event = events.recv() => match event {
                        Some(SensorEvent::Presence { present: false, .. }) => lifted = true,
                        Some(SensorEvent::Problem(error)) => {
                            eprintln!("palmgate: sensor: {:#}", anyhow::Error::new(error));
                        }
                        Some(_) => {}
                        None => break,
                    },
                }
            }
            WatchResult { events, lifted }
        });
        self.watch = Some((stop, task));
    }

    /// Ends [`Self::watch`]: the events come back, and a lift seen meanwhile opens the next
    /// presentation.
    fn end_watch(&mut self) -> anyhow::Result<()> {
        if let Some((stop, task)) = self.watch.take() {
            // The task may have ended on its own (sensor task gone): then the send fails.
            let _ = stop.send(());
            let result = self
                .runtime
                .block_on(task)
                .context("the sensor watch crashed")?;
            self.events = Some(result.events);
            if result.lifted {
                self.presentations.presence(false);
            }
        }
        Ok(())
    }

    /// The next frame the presentation filter admits, extracted (refusals are results, not
    /// errors), with the time it was received.
    fn next_capture(
        &mut self,
    ) -> anyhow::Result<(
        Instant,
        Result<palmgate_matcher::extract::Extraction, palmgate_matcher::extract::ExtractError>,
    )> {
        self.end_watch()?;
        self.start_capture()?;
        let wait = self.wait;
        let sensor = self.sensor.clone();
        let extractor = self.extractor.clone();
        let input = self.input;
        let events = self
            .events
            .as_mut()
            .context("the sensor events are lent out")?;
        let presentations = &mut self.presentations;
        self.runtime.block_on(async {
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                match tokio::time::timeout_at(deadline, events.recv()).await {
                    Ok(Some(SensorEvent::Presence { present, .. })) => {
                        presentations.presence(present);
                    }
                    Ok(Some(SensorEvent::Frame(frame))) => {
                        let received = frame.received.instant;
                        if presentations.admits(received).is_err() {
                            continue;
                        }
                        let extraction = tokio::task::spawn_blocking(move || {
                            extractor.extract_detailed(frame.image.as_gray(), input)
                        })
                        .await
                        .context("template extraction crashed")?;
                        return Ok((received, extraction));
                    }
                    Ok(Some(SensorEvent::Problem(error))) => {
                        eprintln!("palmgate: sensor: {:#}", anyhow::Error::new(error));
                    }
                    Ok(Some(SensorEvent::Disconnected { error, retry_in })) => {
                        eprintln!(
                            "palmgate: sensor: {:#}; retrying in {} ms",
                            anyhow::Error::new(error),
                            retry_in.as_millis()
                        );
                    }
                    // Connected, and whatever a newer sensor crate reports.
                    Ok(Some(_)) => {}
                    Ok(None) => anyhow::bail!("the sensor task stopped"),
                    Err(_) if presentations.waiting_for_lift() => anyhow::bail!(
                        "the sensor on {} still sees the hand after {} s: each capture needs the \
                         hand lifted and presented again",
                        sensor.display(),
                        wait.as_secs()
                    ),
                    Err(_) => anyhow::bail!(
                        "no frame from the sensor on {} within {} s",
                        sensor.display(),
                        wait.as_secs()
                    ),
                }
            }
        })
    }

    /// Offers the next admitted capture to `captures`, and tells the presentation filter what
    /// became of it.
    fn offer_next(&mut self, captures: &mut CaptureLoop) -> Result<CaptureStep, Stop> {
        let (received, extraction) = self.next_capture()?;
        let step = captures.offer(extraction).context("template extraction")?;
        match step {
            CaptureStep::Accepted { .. } => self.presentations.accepted(),
            CaptureStep::Refused { .. } | CaptureStep::GaveUp { .. } => {
                self.presentations.refused(received);
            }
        }
        Ok(step)
    }

    /// `wanted` accepted captures of `hand`, with progress and feedback.
    fn capture_series(&mut self, hand: Hand, wanted: usize) -> Result<Vec<Template>, Stop> {
        let mut captures = CaptureLoop::new(wanted, self.max_refused);
        let bar = ProgressBar::new(wanted as u64);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:24}] {pos}/{len} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(hand.to_string());
        bar.suspend(|| println!("Present the {hand} to the sensor: palm flat, fingers spread."));
        while !captures.is_complete() {
            let step = self.offer_next(&mut captures)?;
            match step {
                CaptureStep::Accepted {
                    number,
                    wanted,
                    valid_cells,
                } => {
                    bar.set_position(number as u64);
                    bar.set_message("accepted");
                    bar.suspend(|| {
                        println!(
                            "{hand} capture {number} of {wanted}: accepted ({valid_cells} of 576 cells valid)"
                        );
                        if number < wanted {
                            println!("Lift the hand and present it again.");
                        }
                    });
                }
                CaptureStep::Refused {
                    reason,
                    advice,
                    refused,
                    max_refused,
                } => {
                    bar.set_message(format!("refused: {reason}"));
                    bar.suspend(|| {
                        println!(
                            "{hand} capture refused ({refused} of {max_refused} allowed): {reason} — {advice}"
                        );
                    });
                }
                CaptureStep::GaveUp {
                    refused,
                    last_reason,
                } => {
                    bar.finish_and_clear();
                    return refused_stop(format!(
                        "{refused} {hand} captures refused (last: {last_reason}); nothing was written \
                         to the card"
                    ));
                }
            }
        }
        bar.finish_and_clear();
        Ok(captures.into_templates())
    }

    /// One accepted capture of `hand` (for the final verification).
    fn capture_one(&mut self, hand: Hand) -> Result<Template, Stop> {
        let mut captures = CaptureLoop::new(1, self.max_refused);
        while !captures.is_complete() {
            match self.offer_next(&mut captures)? {
                CaptureStep::Accepted { .. } => {}
                CaptureStep::Refused { reason, advice, .. } => {
                    println!("{hand} capture refused: {reason} — {advice}");
                }
                CaptureStep::GaveUp { refused, .. } => {
                    return refused_stop(format!(
                        "{refused} verification captures refused; the card is enrolled but not \
                         verified: check it with `palmgate card verify`"
                    ));
                }
            }
        }
        captures
            .into_templates()
            .pop()
            .ok_or_else(|| Stop::Error(anyhow!("no capture")))
    }

    fn stop(&mut self) {
        if let Some((stop, _)) = self.watch.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = self
                .runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), task).await });
        }
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        self.stop();
    }
}

fn refused_stop<T>(reason: String) -> Result<T, Stop> {
    refused(reason)
}
