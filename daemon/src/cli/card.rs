//! `palmgate card …`: talk to a palmgate card through a PC/SC reader.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use palmgate_card::host::issuer::{load_authority, load_issuer_key, load_issuer_public_key};
use palmgate_card::host::pcsc::PcscTransport;
use palmgate_card::host::{Card, ReceiptBundle, VerifiedCard, VerifyOutcome};
use palmgate_card::protocol::{Lifecycle, MAX_TRIES_LIMIT, SLOT_COUNT, SlotKind, permission};
use palmgate_matcher::template::{CELLS, Template};
use zeroize::Zeroizing;

/// `palmgate card` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CardCommand {
    /// Print the card's id, applet version, state, slots and tries left.
    Info(ReaderArg),
    /// Personalise a factory-state card: key pair on the card, certificate from the issuer.
    Personalise(PersonaliseArgs),
    /// Enrol palm templates (slots 0, 1, … in order), as an enrolment authority of the issuer.
    Enrol(EnrolArgs),
    /// Verify a palm template on the card: prints `match`, `no match, N tries left` or `blocked`
    /// (exit status 0, 1 or 3; 2 on error).
    Verify(VerifyArgs),
    /// Erase every template and save the card-signed deletion receipt.
    Erase(EraseArgs),
    /// Check a deletion receipt against the issuer.
    VerifyReceipt(VerifyReceiptArgs),
    /// Benchmark secure verification on a factory-state card (it is personalised with a
    /// throw-away issuer): prints `verify median_us=… p99_us=… apdus=…`.
    Bench(BenchArgs),
}

/// Reader selection.
#[derive(Debug, Clone, clap::Args)]
pub struct ReaderArg {
    /// Use the first PC/SC reader whose name contains PATTERN (case-insensitive; default: any).
    #[arg(long, value_name = "PATTERN", default_value = "")]
    pub reader: String,
}

/// Arguments of `palmgate card personalise`.
#[derive(Debug, clap::Args)]
pub struct PersonaliseArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Issuer directory (`palmgate issuer init`).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
}

/// Arguments of `palmgate card enrol`.
#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Issuer directory (its enrolment authority is used).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Template files (292 bytes each), enrolled into slots 0, 1, … in order.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    template: Vec<PathBuf>,
    /// Mark slot N as a duress slot (a match opens and raises a silent alarm).
    #[arg(long, value_name = "N")]
    duress_slot: Option<u8>,
    /// Retry counter limit (1 to 10; the card's default is 5).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_TRIES_LIMIT)))]
    tries: Option<u8>,
}

/// Arguments of `palmgate card verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Issuer directory (its public key checks the card certificate).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Probe template file (292 bytes).
    #[arg(long, value_name = "FILE")]
    template: PathBuf,
}

/// Arguments of `palmgate card erase`.
#[derive(Debug, clap::Args)]
pub struct EraseArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Issuer directory (its enrolment authority is used).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Where to write the deletion receipt (with the card certificate).
    #[arg(long, value_name = "FILE")]
    receipt: PathBuf,
}

/// Arguments of `palmgate card verify-receipt`.
#[derive(Debug, clap::Args)]
pub struct VerifyReceiptArgs {
    /// Issuer directory (its public key).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Receipt file written by `palmgate card erase`.
    #[arg(long, value_name = "FILE")]
    receipt: PathBuf,
}

/// Arguments of `palmgate card bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Number of verifications.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
}

/// Runs a `palmgate card` subcommand.
pub fn run(command: CardCommand) -> anyhow::Result<ExitCode> {
    match command {
        CardCommand::Info(reader) => info(&reader),
        CardCommand::Personalise(args) => personalise(&args),
        CardCommand::Enrol(args) => enrol(&args),
        CardCommand::Verify(args) => Ok(verify(&args).unwrap_or_else(|error| {
            eprintln!("palmgate: error: {error:#}");
            ExitCode::from(2)
        })),
        CardCommand::Erase(args) => erase(&args),
        CardCommand::VerifyReceipt(args) => verify_receipt(&args),
        CardCommand::Bench(args) => bench(&args),
    }
}

fn connect(reader: &ReaderArg) -> anyhow::Result<Card<PcscTransport>> {
    let transport = PcscTransport::connect(&reader.reader).context("connecting to the card")?;
    Card::open(transport).context("selecting the palmgate applet")
}

fn lifecycle_name(lifecycle: Lifecycle) -> &'static str {
    match lifecycle {
        Lifecycle::Factory => "factory",
        Lifecycle::Keyed => "keyed (personalisation unfinished)",
        Lifecycle::Personalised => "personalised",
    }
}

fn info(reader: &ReaderArg) -> anyhow::Result<ExitCode> {
    let mut card = connect(reader)?;
    let reader_name = card.transport_mut().reader().to_owned();
    let identity = *card.identity();
    println!("reader: {reader_name}");
    println!("card id: {}", hex::encode(identity.card_id));
    println!(
        "applet version: {}.{}",
        identity.applet_version.0, identity.applet_version.1
    );
    println!("state: {}", lifecycle_name(identity.lifecycle));
    println!("template algorithm: {:#04x}", identity.algorithm);
    println!(
        "slots: {} of {} used",
        identity.slots_used, identity.slot_capacity
    );
    println!(
        "tries left: {} of {}",
        identity.tries_left, identity.max_tries
    );
    if identity.lifecycle == Lifecycle::Personalised {
        let certificate = card.certificate()?;
        println!(
            "issuer key id: {}",
            hex::encode(certificate.issuer_key_id())
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn personalise(args: &PersonaliseArgs) -> anyhow::Result<ExitCode> {
    let issuer = load_issuer_key(&args.issuer)?;
    let mut card = connect(&args.reader)?;
    let certificate = card
        .personalise(&issuer)
        .context("personalising the card")?;
    println!("personalised card {}", hex::encode(certificate.card_id()));
    Ok(ExitCode::SUCCESS)
}

fn read_template(path: &Path) -> anyhow::Result<Template> {
    let bytes = Zeroizing::new(
        std::fs::read(path).with_context(|| format!("reading template {}", path.display()))?,
    );
    Template::decode(&bytes)
        .map_err(|error| anyhow::anyhow!("template {}: {error}", path.display()))
}

fn verified_card(
    card: &mut Card<PcscTransport>,
    issuer_dir: &Path,
) -> anyhow::Result<VerifiedCard> {
    let issuer = load_issuer_public_key(issuer_dir)?;
    card.verify_certificate(&[issuer])
        .context("checking the card certificate")
}

fn enrol(args: &EnrolArgs) -> anyhow::Result<ExitCode> {
    if args.template.len() > SLOT_COUNT {
        bail!(
            "the card has {SLOT_COUNT} slots; {} templates given",
            args.template.len()
        );
    }
    if let Some(slot) = args.duress_slot
        && usize::from(slot) >= args.template.len()
    {
        bail!(
            "--duress-slot {slot}: only {} templates are enrolled (slots 0..{})",
            args.template.len(),
            args.template.len()
        );
    }
    let templates = args
        .template
        .iter()
        .map(|path| read_template(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let authority = load_authority(&args.issuer)?;
    let mut card = connect(&args.reader)?;
    let verified = verified_card(&mut card, &args.issuer)?;
    let session = card
        .open_session(&verified)
        .context("opening a secure session")?;
    let mut enrolment = session
        .prove_authority(&authority)
        .context("proving the enrolment authority")?;
    for (slot, template) in templates.iter().enumerate() {
        let slot = slot as u8;
        let kind = if args.duress_slot == Some(slot) {
            SlotKind::Duress
        } else {
            SlotKind::Normal
        };
        enrolment
            .enrol(slot, kind, template)
            .with_context(|| format!("enrolling slot {slot}"))?;
        println!(
            "slot {slot}: enrolled ({})",
            if kind == SlotKind::Duress {
                "duress"
            } else {
                "normal"
            }
        );
    }
    if let Some(tries) = args.tries {
        enrolment
            .set_policy(tries)
            .context("setting the retry counter")?;
        println!("retry counter: {tries}");
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let probe = read_template(&args.template)?;
    let mut card = connect(&args.reader)?;
    let verified = verified_card(&mut card, &args.issuer)?;
    let mut session = card
        .open_session(&verified)
        .context("opening a secure session")?;
    let outcome = session.verify_palm(&probe).context("verifying")?;
    Ok(match outcome {
        VerifyOutcome::Match {
            slot_kind: SlotKind::Normal,
            ..
        } => {
            println!("match");
            ExitCode::SUCCESS
        }
        VerifyOutcome::Match {
            slot_kind: SlotKind::Duress,
            ..
        } => {
            println!("match (duress)");
            ExitCode::SUCCESS
        }
        VerifyOutcome::NoMatch { tries_left } => {
            println!("no match, {tries_left} tries left");
            ExitCode::from(1)
        }
        VerifyOutcome::Blocked => {
            println!("blocked");
            ExitCode::from(3)
        }
    })
}

fn erase(args: &EraseArgs) -> anyhow::Result<ExitCode> {
    let authority = load_authority(&args.issuer)?;
    let mut card = connect(&args.reader)?;
    let verified = verified_card(&mut card, &args.issuer)?;
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let session = card
        .open_session(&verified)
        .context("opening a secure session")?;
    let receipt = session
        .prove_authority(&authority)
        .context("proving the enrolment authority")?
        .erase(timestamp)
        .context("erasing")?;
    let bundle = ReceiptBundle {
        receipt,
        certificate: verified.certificate,
    };
    std::fs::write(&args.receipt, bundle.encode())
        .with_context(|| format!("writing receipt {}", args.receipt.display()))?;
    println!(
        "erased {} slot(s) on card {}; receipt written to {}",
        receipt.fields().slots_erased,
        hex::encode(verified.card_id),
        args.receipt.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify_receipt(args: &VerifyReceiptArgs) -> anyhow::Result<ExitCode> {
    let issuer = load_issuer_public_key(&args.issuer)?;
    let bytes = std::fs::read(&args.receipt)
        .with_context(|| format!("reading receipt {}", args.receipt.display()))?;
    let bundle = ReceiptBundle::decode(&bytes).context("decoding the receipt")?;
    let fields = bundle
        .verify(&[issuer])
        .context("receipt does not verify")?;
    println!("receipt valid");
    println!("card id: {}", hex::encode(fields.card_id));
    println!("erase counter: {}", fields.erase_counter);
    println!("timestamp: {}", fields.gate_timestamp);
    println!("slots erased: {}", fields.slots_erased);
    println!("commitment: {}", hex::encode(fields.commitment));
    Ok(ExitCode::SUCCESS)
}

/// A throw-away template with every cell valid (a fixed pseudo-random pattern).
fn bench_template() -> anyhow::Result<Template> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let orientations: [u8; CELLS] = core::array::from_fn(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 6) as u8
    });
    Template::from_cells(&orientations, &[true; CELLS]).map_err(|error| anyhow::anyhow!("{error}"))
}

fn bench(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let mut card = connect(&args.reader)?;
    let lifecycle = card.identity().lifecycle;
    if lifecycle == Lifecycle::Personalised {
        bail!(
            "card bench needs a factory-state card (this one is {})",
            lifecycle_name(lifecycle)
        );
    }
    let issuer = palmgate_card::host::issuer::IssuerKey::generate();
    let authority = issuer.create_authority(permission::ALL);
    card.personalise(&issuer)
        .context("personalising with a throw-away issuer")?;
    let verified = card.verify_certificate(&[issuer.public_key()])?;
    let template = bench_template()?;
    {
        let session = card.open_session(&verified)?;
        session
            .prove_authority(&authority)?
            .enrol(0, SlotKind::Normal, &template)?;
    }
    let mut micros = Vec::with_capacity(args.n as usize);
    let apdus_before = card.apdu_count();
    for _ in 0..args.n {
        let start = Instant::now();
        let mut session = card.open_session(&verified)?;
        let outcome = session.verify_palm(&template)?;
        micros.push(start.elapsed().as_micros() as u64);
        if !matches!(outcome, VerifyOutcome::Match { .. }) {
            bail!("benchmark verification did not match: {outcome:?}");
        }
    }
    let apdus = (card.apdu_count() - apdus_before) / u64::from(args.n);
    micros.sort_unstable();
    let median = micros[micros.len() / 2];
    let p99 = micros[(micros.len() * 99 / 100).min(micros.len() - 1)];
    println!("verify median_us={median} p99_us={p99} apdus={apdus}");
    Ok(ExitCode::SUCCESS)
}
