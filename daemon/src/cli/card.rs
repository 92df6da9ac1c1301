//! `palmgate card …`: talk to a palmgate card through a PC/SC reader.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use palmgate_card::host::issuer::{
    IssuerPublicKey, load_authority, load_issuer_key, load_issuer_public_key,
};
use palmgate_card::host::pcsc::PcscTransport;
use palmgate_card::host::{
    Card, MealReceipt, MealReceiptFields, MealReceiptLedger, ReceiptBundle, ReplayError,
    VerifiedCard, VerifyOutcome,
};
use palmgate_card::protocol::meal::MEAL_RECEIPT_MAGIC;
use palmgate_card::protocol::{
    Lifecycle, MAX_TRIES_LIMIT, SIX_SLOT_APPLET_VERSION, SLOT_COUNT, SlotKind,
    THRESHOLD_TABLE_APPLET_VERSION, permission,
};
use palmgate_matcher::Profile;
use palmgate_matcher::compare::MAX_PROBE_POSES;
use palmgate_matcher::extract::probe_poses;
use palmgate_matcher::profile::MAX_ENROLLED_TEMPLATES;
use palmgate_matcher::template::{CELLS, Template};
use zeroize::Zeroizing;

use palmgate::station::EventPublisher;

use super::broker::{PublishArgs, resolve_publisher};
use super::template::{InputArg, load_extractor};

/// `palmgate card` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum CardCommand {
    /// Print what an installer needs: id, applet version, state, certificate (checked against
    /// the issuer with --issuer), slots, tries left, revocation (with --revocation-list).
    Info(InfoArgs),
    /// Personalise a factory-state card: key pair on the card, certificate from the issuer.
    Personalise(PersonaliseArgs),
    /// Enrol palm templates (slots 0, 1, … in order), as an enrolment authority of the issuer.
    Enrol(EnrolArgs),
    /// Verify a palm template, or the probe of a palm image cut at the gate's poses, on the card:
    /// prints `match`, `no match, N tries left` or `blocked` (exit status 0, 1 or 3; 2 on error).
    Verify(VerifyArgs),
    /// Erase every template, save the card-signed deletion receipt and, with a broker, publish
    /// it as a `card.erased` event.
    Erase(EraseArgs),
    /// Check a deletion receipt (the file, or a published `card.erased` event) or a meal receipt
    /// (the file, its hex, or a published `meal.served` event) against the issuer; with --seen,
    /// refuse a meal receipt accepted before.
    VerifyReceipt(VerifyReceiptArgs),
    /// Publish a saved deletion receipt as a `card.erased` event (when publishing at erase time
    /// failed).
    PublishReceipt(PublishReceiptArgs),
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

/// Arguments of `palmgate card info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Issuer directory: check that the card certificate is signed by this issuer.
    #[arg(long, value_name = "DIR")]
    issuer: Option<PathBuf>,
    /// Revocation list (the gate's `card.revocation_list` or the operator's list file): show
    /// whether the card is revoked.
    #[arg(long, value_name = "FILE")]
    revocation_list: Option<PathBuf>,
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
    /// Mark slot N as a duress slot (a match opens and raises a silent alarm); repeat it for
    /// each template of the duress hand.
    #[arg(long, value_name = "N")]
    duress_slot: Vec<u8>,
    /// Retry counter limit (1 to 10; the card's default is 5).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_TRIES_LIMIT)))]
    tries: Option<u8>,
    /// The weakest profile the card's verification applies, whatever a gate asks for
    /// (`convenience`, `balanced`, `security`; applet 1.5 or later). Set before the templates;
    /// without it the card's floor stays as it is.
    #[arg(long, value_name = "PROFILE")]
    profile_floor: Option<Profile>,
}

/// Arguments of `palmgate card verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Issuer directory (its public key checks the card certificate).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Probe template file (292 bytes): the card compares that one pose.
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    template: Option<PathBuf>,
    /// Palm image (PNG, JPEG or BMP): the probe is cut at the gate's poses (the ROI as found and
    /// turned ±5°; an ROI image also slid sideways) and the card compares them all, as at a gate.
    #[arg(long, value_name = "IMAGE")]
    image: Option<PathBuf>,
    /// What the image shows.
    #[arg(long, value_enum, default_value_t = InputArg::Hand)]
    input: InputArg,
    /// A replacement ONNX feature model for the image (as `matcher.model`).
    #[arg(long, value_name = "FILE.onnx")]
    model: Option<PathBuf>,
    /// The security profile whose threshold the card compares with (as `matcher.profile`).
    #[arg(long, value_name = "PROFILE", default_value_t = Profile::Balanced)]
    profile: Profile,
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
    #[command(flatten)]
    publish: PublishArgs,
}

/// Arguments of `palmgate card publish-receipt`.
#[derive(Debug, clap::Args)]
pub struct PublishReceiptArgs {
    /// Issuer directory (the receipt is checked before it is published).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Receipt file written by `palmgate card erase`.
    #[arg(long, value_name = "FILE")]
    receipt: PathBuf,
    #[command(flatten)]
    publish: PublishArgs,
}

/// Arguments of `palmgate card verify-receipt`.
#[derive(Debug, clap::Args)]
pub struct VerifyReceiptArgs {
    /// Issuer directory (its public key).
    #[arg(long, value_name = "DIR")]
    issuer: PathBuf,
    /// Receipt file written by `palmgate card erase`, or a `card.erased` event (JSON, as
    /// published on MQTT); or a meal receipt: its 261 bytes, their hex, or a `meal.served`
    /// event (JSON).
    #[arg(long, value_name = "FILE")]
    receipt: PathBuf,
    /// Meal receipts accepted before (one hex receipt a line; created if missing): a receipt
    /// already in it is refused as replayed, one that is not is checked and added to it (the file
    /// is replaced atomically; run one check at a time per file).
    #[arg(long, value_name = "FILE")]
    seen: Option<PathBuf>,
}

/// Arguments of `palmgate card bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    reader: ReaderArg,
    /// Number of verifications.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    n: u32,
    /// Probe poses sent in each VERIFY PALM: 1, 3 as a gate sends for a whole hand, 5 for a
    /// sensor's ROI (the card compares every pose with every template).
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=MAX_PROBE_POSES as i64))]
    poses: u8,
    /// Templates enrolled for the hand (normal slots), as enrolment stores three.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=MAX_ENROLLED_TEMPLATES as i64))]
    templates: u8,
}

/// Runs a `palmgate card` subcommand.
pub fn run(command: CardCommand) -> anyhow::Result<ExitCode> {
    match command {
        CardCommand::Info(args) => info(&args),
        CardCommand::Personalise(args) => personalise(&args),
        CardCommand::Enrol(args) => enrol(&args),
        CardCommand::Verify(args) => Ok(verify(&args).unwrap_or_else(|error| {
            eprintln!("palmgate: error: {error:#}");
            ExitCode::from(2)
        })),
        CardCommand::Erase(args) => erase(&args),
        CardCommand::VerifyReceipt(args) => verify_receipt(&args),
        CardCommand::PublishReceipt(args) => publish_receipt(&args),
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

fn info(args: &InfoArgs) -> anyhow::Result<ExitCode> {
    use sha2::{Digest, Sha256};
    let mut card = connect(&args.reader)?;
    let reader_name = card.transport_mut().reader().to_owned();
    let identity = *card.identity();
    let personalised = identity.lifecycle == Lifecycle::Personalised;
    let mut problems: Vec<String> = Vec::new();
    println!("reader: {reader_name}");
    if personalised {
        println!("card id: {}", hex::encode(identity.card_id));
    } else {
        println!("card id: none yet (not personalised)");
    }
    println!(
        "applet version: {}.{}",
        identity.applet_version.0, identity.applet_version.1
    );
    if identity.applet_version >= THRESHOLD_TABLE_APPLET_VERSION {
        println!("comparison and threshold table: this release's");
    } else {
        println!(
            "comparison and threshold table: an earlier release's (applet {}.{}: one common shift \
             for the whole palm, so it refuses more genuine hands; docs/applet-protocol.md, \
             \"VERIFY PALM profile\")",
            identity.applet_version.0, identity.applet_version.1
        );
    }
    println!("state: {}", lifecycle_name(identity.lifecycle));
    println!("template algorithm: {:#04x}", identity.algorithm);
    if card.keeps_profile_floor() {
        match card.profile_floor().context("reading the profile floor")? {
            Some(floor) => println!(
                "profile floor: {floor} (the card applies at least {floor}, whatever a gate asks)"
            ),
            None => println!("profile floor: none (the card applies the profile a gate asks for)"),
        }
    } else {
        println!(
            "profile floor: none (applet {}.{} keeps no floor)",
            identity.applet_version.0, identity.applet_version.1
        );
    }
    if personalised {
        let certificate = card.certificate().context("reading the card certificate")?;
        println!(
            "certificate: issuer key id {}, fingerprint {} (SHA-256, first 16 bytes)",
            hex::encode(certificate.issuer_key_id()),
            hex::encode(&Sha256::digest(certificate.as_bytes())[..16])
        );
        println!(
            "card public key: {} (SHA-256, first 16 bytes)",
            hex::encode(&Sha256::digest(certificate.card_public_key())[..16])
        );
        if let Some(dir) = &args.issuer {
            match verified_card(&mut card, dir) {
                Ok(_) => println!(
                    "certificate check: valid for the issuer in {}",
                    dir.display()
                ),
                Err(error) => {
                    println!(
                        "certificate check: FAILED for the issuer in {}: {error:#}",
                        dir.display()
                    );
                    problems.push("certificate".into());
                }
            }
        }
    } else if args.issuer.is_some() {
        println!("certificate check: no certificate (not personalised)");
        problems.push("certificate".into());
    }
    let enrolled = identity.slots_used > 0;
    println!(
        "slots: {} of {} used ({})",
        identity.slots_used,
        identity.slot_capacity,
        if enrolled { "enrolled" } else { "not enrolled" }
    );
    // The card tells its slot kinds only inside a secure session, in a verification answer: an
    // unauthenticated reader (someone holding the card) must not learn that a duress slot exists.
    // Since applet 1.8 the count above is the hand's templates alone; before, it counted a
    // duress slot too.
    println!(
        "slot kinds: not shown (the card reveals a duress slot to no one but the gate{})",
        if identity.applet_version >= SIX_SLOT_APPLET_VERSION {
            "; the slots counted are the hand's"
        } else {
            "; this applet counts a duress slot among the slots used"
        }
    );
    println!(
        "tries left: {} of {}{}",
        identity.tries_left,
        identity.max_tries,
        if identity.tries_left == 0 {
            " (BLOCKED: re-enrol or reset at the desk)"
        } else {
            ""
        }
    );
    // The erase counter is signed into each deletion receipt; the card exposes no other copy.
    println!("erase counter: see the card's deletion receipts (`palmgate card verify-receipt`)");
    if let Some(path) = &args.revocation_list {
        let list = palmgate::gate::state::revocation::RevocationList::load(path)?;
        let revoked = palmgate::event::CardId::new(&identity.card_id)
            .is_some_and(|id| personalised && list.cards().contains(&id));
        println!(
            "revoked: {} (list {} version {})",
            if revoked { "YES" } else { "no" },
            path.display(),
            list.version()
        );
        if revoked {
            problems.push("revoked".into());
        }
    }
    if !personalised {
        problems.push("not personalised".into());
    }
    if !enrolled {
        problems.push("no template enrolled".into());
    }
    if identity.tries_left == 0 {
        problems.push("blocked".into());
    }
    if problems.is_empty() {
        println!("ready for use: yes");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("ready for use: no ({})", problems.join(", "));
        // A failed check is an installer's error (exit 1); merely unfinished cards are not.
        let failed = problems
            .iter()
            .any(|p| p == "certificate" || p == "revoked");
        Ok(if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        })
    }
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
            "a card has at most {SLOT_COUNT} slots; {} templates given",
            args.template.len()
        );
    }
    if let Some(slot) = args
        .duress_slot
        .iter()
        .find(|slot| usize::from(**slot) >= args.template.len())
    {
        bail!(
            "--duress-slot {slot}: only {} templates are enrolled (slots 0..{})",
            args.template.len(),
            args.template.len()
        );
    }
    let kind_of = |slot: u8| {
        if args.duress_slot.contains(&slot) {
            SlotKind::Duress
        } else {
            SlotKind::Normal
        }
    };
    // Slots 0, 1, … in order (at most SLOT_COUNT, checked above).
    let slots = || (0u8..).take(args.template.len());
    // The card refuses a fourth template of a hand (applet 1.8): refused here before any is
    // written.
    let duress = slots()
        .filter(|slot| kind_of(*slot) == SlotKind::Duress)
        .count();
    let normal = args.template.len() - duress;
    if normal.max(duress) > MAX_ENROLLED_TEMPLATES {
        bail!(
            "a hand holds at most {MAX_ENROLLED_TEMPLATES} templates (the thresholds are \
             calibrated for up to that many); {normal} normal and {duress} duress given"
        );
    }
    // The card keeps a duress hand only beside the hand (applet 1.8), so the hand's templates
    // are written first.
    if normal == 0 {
        bail!("every template is a duress slot: a duress hand is enrolled beside the hand");
    }
    let templates = args
        .template
        .iter()
        .map(|path| read_template(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let authority = load_authority(&args.issuer)?;
    let mut card = connect(&args.reader)?;
    // A card before applet 1.8 has four slots: refused before anything is written.
    let capacity = card.identity().slot_capacity;
    if args.template.len() > usize::from(capacity) {
        bail!(
            "the card has {capacity} slots; {} templates given (nothing was written)",
            args.template.len()
        );
    }
    let verified = verified_card(&mut card, &args.issuer)?;
    let session = card
        .open_session(&verified)
        .context("opening a secure session")?;
    let mut enrolment = session
        .prove_authority(&authority)
        .context("proving the enrolment authority")?;
    // The floor goes first: a card refused it (an applet before 1.5) has no template written,
    // and a card interrupted later is never left with templates and without its floor.
    if let Some(floor) = args.profile_floor {
        enrolment
            .set_profile_floor(Some(floor))
            .context("setting the profile floor (no template was written)")?;
        println!("profile floor: {floor}");
    }
    let mut written: Vec<(u8, &Template)> = slots().zip(&templates).collect();
    written.sort_by_key(|(slot, _)| kind_of(*slot) == SlotKind::Duress);
    for (slot, template) in written {
        let kind = kind_of(slot);
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

/// The probe of `image` at the gate's poses ([`probe_poses`]), the pose found first; an error
/// when the found pose gives no template (another pose that gives none is left out, as at a gate).
fn probe_of_image(args: &VerifyArgs, image: &Path) -> anyhow::Result<Vec<Template>> {
    let extractor = load_extractor(args.model.as_deref())?;
    let cuts = probe_poses(args.input.into());
    let decoded =
        image::open(image).with_context(|| format!("reading image {}", image.display()))?;
    let mut extractions = extractor
        .extract_image_posed(&decoded, args.input.into(), cuts)
        .with_context(|| format!("image {} refused", image.display()))?
        .into_iter();
    let found = extractions
        .next()
        .context("no pose was cut")?
        .with_context(|| format!("image {} refused", image.display()))?;
    let mut poses = Vec::with_capacity(cuts.len());
    poses.push(found.template);
    poses.extend(extractions.filter_map(|other| other.ok().map(|e| e.template)));
    Ok(poses)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let poses = match (&args.template, &args.image) {
        (_, Some(image)) => probe_of_image(args, image)?,
        (Some(template), None) => vec![read_template(template)?],
        (None, None) => bail!("--template or --image is needed"),
    };
    let mut card = connect(&args.reader)?;
    let verified = verified_card(&mut card, &args.issuer)?;
    let compared = card.probe_poses_compared(poses.len());
    if poses.len() > 1 {
        // On standard error: standard output is the decision alone.
        let (major, minor) = card.identity().applet_version;
        eprintln!(
            "probe: {} of {} poses cut; the card (applet {major}.{minor}) compares {compared}",
            poses.len(),
            probe_poses(args.input.into()).len()
        );
    }
    let mut session = card
        .open_session(&verified)
        .context("opening a secure session")?;
    let outcome = session
        .verify_palm_posed(args.profile, &poses)
        .context("verifying")?;
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
    // Resolve the broker before touching the card: a typo must not leave an erased card whose
    // event was never sent.
    let publisher = resolve_publisher(&args.publish)?;
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
    palmgate::gate::state::durable::replace_file(&args.receipt, &bundle.encode())
        .with_context(|| format!("writing receipt {}", args.receipt.display()))?;
    println!(
        "erased {} slot(s) on card {}; receipt written to {}",
        receipt.fields().slots_erased,
        hex::encode(verified.card_id),
        args.receipt.display()
    );
    if let Some(publisher) = publisher {
        publish_erased(&publisher, &bundle).with_context(|| {
            format!(
                "the card is erased and its receipt saved in {}, but the card.erased event was \
                 not published; publish it with `palmgate card publish-receipt --receipt {} …`",
                args.receipt.display(),
                args.receipt.display()
            )
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Publishes one receipt's `card.erased` event and says where it went.
fn publish_erased(publisher: &EventPublisher, bundle: &ReceiptBundle) -> anyhow::Result<()> {
    let now = palmgate::event::Timestamp::now();
    let event = palmgate::station::erased_new_event(bundle, now)?;
    let (id, messages) = publisher.publish_events(vec![event])?;
    for message in &messages {
        println!(
            "published card.erased (event {id}) on {}, acknowledged by {}",
            message.topic,
            publisher.options().broker
        );
    }
    Ok(())
}

/// Reads a receipt: the binary file `card erase` writes, or a `card.erased` event (JSON). For an
/// event, the plain fields it repeats are returned too, to be compared with the signed ones.
fn read_receipt(path: &Path) -> anyhow::Result<(ReceiptBundle, Option<palmgate::event::Event>)> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading receipt {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let event = palmgate::event::Event::from_json(trimmed.trim_end().as_bytes())
            .context("reading the card.erased event")?;
        let receipt = event
            .receipt
            .as_ref()
            .context("the event carries no receipt (not a card.erased event?)")?;
        let raw = hex::decode(&receipt.bundle).context("the event's receipt is not hex")?;
        let bundle = ReceiptBundle::decode(&raw).context("decoding the receipt")?;
        return Ok((bundle, Some(event)));
    }
    let bundle = ReceiptBundle::decode(&bytes).context("decoding the receipt")?;
    Ok((bundle, None))
}

fn verify_receipt(args: &VerifyReceiptArgs) -> anyhow::Result<ExitCode> {
    let issuer = load_issuer_public_key(&args.issuer)?;
    let bytes = std::fs::read(&args.receipt)
        .with_context(|| format!("reading receipt {}", args.receipt.display()))?;
    if let Some(meal) = read_meal_receipt(&bytes)? {
        return verify_meal_receipt(args, issuer, meal);
    }
    if args.seen.is_some() {
        bail!(
            "--seen is for meal receipts; a deletion receipt's erase counter is checked by the card"
        );
    }
    let (bundle, event) = read_receipt(&args.receipt)?;
    let fields = bundle
        .verify(&[issuer])
        .context("receipt does not verify")?;
    if let Some(event) = &event {
        // What the event says in plain fields must be what the card signed.
        let receipt = event.receipt.as_ref().context("no receipt")?;
        let same = event.kind == palmgate::event::EventKind::CardErased
            && event.card_id.as_ref().map(|id| id.as_bytes()) == Some(&fields.card_id[..])
            && receipt.erase_counter == fields.erase_counter
            && receipt.timestamp == fields.gate_timestamp
            && receipt.slots_erased == fields.slots_erased;
        if !same {
            bail!(
                "the event's fields (kind, card_id, erase_counter, timestamp, slots_erased) differ \
                 from the signed receipt"
            );
        }
    }
    println!("receipt valid");
    println!("card id: {}", hex::encode(fields.card_id));
    println!("erase counter: {}", fields.erase_counter);
    println!("timestamp: {}", fields.gate_timestamp);
    println!("slots erased: {}", fields.slots_erased);
    println!("commitment: {}", hex::encode(fields.commitment));
    if let Some(event) = &event {
        println!("event: {} from {} at {}", event.id, event.gate, event.time);
    }
    Ok(ExitCode::SUCCESS)
}

/// A meal receipt as `verify-receipt` reads it, with the plain fields of its event if it came in
/// one.
#[derive(Debug)]
struct MealReceiptInput {
    receipt: MealReceipt,
    event: Option<serde_json::Value>,
}

/// Reads a meal receipt: the 261 bytes of `MealReceipt::to_bytes()`, their hex, or a `meal.served`
/// event (JSON) whose `receipt.bundle` is that hex. `None` when the input is not a meal receipt
/// (a deletion receipt or its event); an error when it claims to be one and is malformed.
fn read_meal_receipt(bytes: &[u8]) -> anyhow::Result<Option<MealReceiptInput>> {
    if bytes.starts_with(&MEAL_RECEIPT_MAGIC) {
        let receipt = MealReceipt::from_bytes(bytes).context("decoding the meal receipt")?;
        return Ok(Some(MealReceiptInput {
            receipt,
            event: None,
        }));
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(None);
    };
    let text = text.trim();
    if text.starts_with('{') {
        let event: serde_json::Value =
            serde_json::from_str(text).context("reading the receipt event (JSON)")?;
        if event.get("kind").and_then(serde_json::Value::as_str) != Some("meal.served") {
            return Ok(None);
        }
        let bundle = event
            .pointer("/receipt/bundle")
            .and_then(serde_json::Value::as_str)
            .context("the meal.served event carries no receipt.bundle")?;
        let raw = hex::decode(bundle).context("the event's receipt.bundle is not hex")?;
        let receipt = MealReceipt::from_bytes(&raw).context("decoding the event's meal receipt")?;
        return Ok(Some(MealReceiptInput {
            receipt,
            event: Some(event),
        }));
    }
    let magic_hex = hex::encode(MEAL_RECEIPT_MAGIC);
    if text
        .get(..magic_hex.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(&magic_hex))
    {
        let raw = hex::decode(text).context("the meal receipt is not hex")?;
        let receipt = MealReceipt::from_bytes(&raw).context("decoding the meal receipt")?;
        return Ok(Some(MealReceiptInput {
            receipt,
            event: None,
        }));
    }
    Ok(None)
}

/// The plain fields a `meal.served` event repeats must be the signed ones.
fn check_meal_event(event: &serde_json::Value, fields: &MealReceiptFields) -> anyhow::Result<()> {
    let number = |pointer: &str| event.pointer(pointer).map(serde_json::Value::as_u64);
    let plain = [
        (
            "period",
            number("/receipt/period"),
            u64::from(fields.period),
        ),
        ("count", number("/receipt/count"), u64::from(fields.count)),
        (
            "allowance",
            number("/receipt/allowance"),
            u64::from(fields.allowance),
        ),
        ("gate_time", number("/receipt/gate_time"), fields.gate_time),
        (
            "counter",
            number("/receipt/counter"),
            u64::from(fields.receipt_counter),
        ),
    ];
    let mut differing: Vec<&str> = plain
        .iter()
        .filter(|(_, value, signed)| value.is_some_and(|value| value != Some(*signed)))
        .map(|(name, _, _)| *name)
        .collect();
    if event
        .get("card_id")
        .is_some_and(|card_id| card_id.as_str() != Some(hex::encode(fields.card_id).as_str()))
    {
        differing.push("card_id");
    }
    if !differing.is_empty() {
        bail!(
            "the event's fields ({}) differ from the signed receipt",
            differing.join(", ")
        );
    }
    Ok(())
}

/// Loads the receipts accepted before (one hex receipt a line), each checked again.
fn load_seen(path: &Path, issuers: &[IssuerPublicKey]) -> anyhow::Result<MealReceiptLedger> {
    let mut ledger = MealReceiptLedger::new();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(ledger),
        Err(error) => {
            return Err(error).with_context(|| format!("reading {}", path.display()));
        }
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), index + 1);
        let raw = hex::decode(line).with_context(|| format!("{}: not hex", at()))?;
        let receipt = MealReceipt::from_bytes(&raw).with_context(at)?;
        let verified = receipt
            .verify(issuers)
            .with_context(|| format!("{}: the receipt does not verify", at()))?;
        // A duplicate line is harmless (the same receipt); a counter reused is not.
        match ledger.accept(&verified) {
            Ok(()) | Err(ReplayError::Replayed { .. }) => {}
            Err(error) => return Err(error).with_context(at),
        }
    }
    Ok(ledger)
}

fn verify_meal_receipt(
    args: &VerifyReceiptArgs,
    issuer: IssuerPublicKey,
    input: MealReceiptInput,
) -> anyhow::Result<ExitCode> {
    let issuers = [issuer];
    let verified = input
        .receipt
        .verify(&issuers)
        .context("meal receipt does not verify")?;
    let fields = *verified.fields();
    if let Some(event) = &input.event {
        check_meal_event(event, &fields)?;
    }
    if let Some(seen) = &args.seen {
        let mut ledger = load_seen(seen, &issuers)?;
        ledger.accept(&verified).context("meal receipt refused")?;
        let mut text = std::fs::read_to_string(seen).unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&hex::encode(input.receipt.to_bytes()));
        text.push('\n');
        palmgate::gate::state::durable::replace_file(seen, text.as_bytes())
            .with_context(|| format!("recording the receipt in {}", seen.display()))?;
    }
    println!("receipt valid");
    println!("kind: meal");
    println!("card id: {}", hex::encode(fields.card_id));
    println!(
        "period: {} (day {} since 1970-01-01, meal period {})",
        fields.period,
        fields.period / 16,
        fields.period % 16
    );
    println!("count: {} of {}", fields.count, fields.allowance);
    println!("gate time: {}", fields.gate_time);
    println!("receipt counter: {}", fields.receipt_counter);
    if let Some(seen) = &args.seen {
        println!("not seen before; recorded in {}", seen.display());
    }
    if let Some(event) = &input.event {
        let field = |name: &str| match event.get(name) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(value) => value.to_string(),
            None => "?".to_owned(),
        };
        println!(
            "event: {} from {} at {}",
            field("id"),
            field("gate"),
            field("time")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn publish_receipt(args: &PublishReceiptArgs) -> anyhow::Result<ExitCode> {
    let publisher = resolve_publisher(&args.publish)?
        .context("give the broker: --broker URL --station ID, or --mqtt-config FILE")?;
    let issuer = load_issuer_public_key(&args.issuer)?;
    let (bundle, _) = read_receipt(&args.receipt)?;
    bundle
        .verify(&[issuer])
        .context("receipt does not verify; not published")?;
    publish_erased(&publisher, &bundle)?;
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
    for slot in 0..args.templates {
        let session = card.open_session(&verified)?;
        session
            .prove_authority(&authority)?
            .enrol(slot, SlotKind::Normal, &template)?;
    }
    // Every pose is compared with every template whatever the outcome, so copies of one
    // template cost what a gate's probe costs.
    let poses = vec![template; usize::from(args.poses)];
    let mut micros = Vec::with_capacity(args.n as usize);
    let apdus_before = card.apdu_count();
    for _ in 0..args.n {
        let start = Instant::now();
        let mut session = card.open_session(&verified)?;
        let outcome = session.verify_palm_posed(Profile::default(), &poses)?;
        micros.push(start.elapsed().as_micros() as u64);
        if !matches!(outcome, VerifyOutcome::Match { .. }) {
            bail!("benchmark verification did not match: {outcome:?}");
        }
    }
    let apdus = (card.apdu_count() - apdus_before) / u64::from(args.n);
    micros.sort_unstable();
    let median = micros[micros.len() / 2];
    let p99 = micros[(micros.len() * 99 / 100).min(micros.len() - 1)];
    println!(
        "verify median_us={median} p99_us={p99} apdus={apdus} poses={} templates={}",
        args.poses, args.templates
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palmgate::station::erased_event;
    use palmgate_card::host::issuer::IssuerKey;
    use palmgate_card::protocol::cert::encode_public_key;
    use palmgate_card::protocol::receipt::{DeletionReceipt, ReceiptFields};

    fn bundle(issuer: &IssuerKey) -> ReceiptBundle {
        let card_key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
        let card_id = [0x5a; 16];
        let certificate =
            issuer.certify_card(&card_id, &encode_public_key(card_key.verifying_key()));
        let fields = ReceiptFields {
            card_id,
            erase_counter: 3,
            gate_timestamp: 1_795_575_784,
            slots_erased: 2,
            commitment: [0xc0; 32],
        };
        ReceiptBundle {
            receipt: DeletionReceipt::sign(&fields, &card_key),
            certificate,
        }
    }

    #[test]
    fn the_card_erased_event_carries_a_receipt_that_verifies() {
        let issuer = IssuerKey::generate();
        let bundle = bundle(&issuer);
        let event = erased_event(
            &bundle,
            "desk-1",
            palmgate::event::Timestamp::from_unix_ms(1_795_575_790_123),
        )
        .expect("event");
        let json: serde_json::Value = serde_json::from_slice(&event.to_json()).expect("json");
        assert_eq!(json["kind"], "card.erased");
        assert_eq!(json["gate"], "desk-1");
        assert_eq!(json["id"], 1_795_575_790_123u64);
        assert_eq!(json["card_id"], "5a".repeat(16));
        assert_eq!(json["receipt"]["erase_counter"], 3);
        assert_eq!(json["receipt"]["timestamp"], 1_795_575_784u64);
        assert_eq!(json["receipt"]["bundle"], hex::encode(bundle.encode()));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("event.json");
        std::fs::write(&path, event.to_json()).expect("write");
        let (read, parsed) = read_receipt(&path).expect("read");
        assert_eq!(read, bundle);
        assert_eq!(parsed.as_ref(), Some(&event));
        read.verify(&[issuer.public_key()]).expect("verifies");
        // The same bytes as the receipt file.
        let file = dir.path().join("receipt.bin");
        palmgate::gate::state::durable::replace_file(&file, &bundle.encode()).expect("write");
        assert_eq!(read_receipt(&file).expect("read").0, bundle);
        // A receipt bundle from another issuer does not verify.
        assert!(read.verify(&[IssuerKey::generate().public_key()]).is_err());
    }

    #[test]
    fn verify_receipt_checks_the_chain_and_the_plain_fields_of_an_event() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer_dir = dir.path().join("issuer");
        palmgate_card::host::issuer::init_issuer_dir(&issuer_dir).expect("issuer dir");
        let issuer = load_issuer_key(&issuer_dir).expect("issuer key");
        let event = erased_event(
            &bundle(&issuer),
            "desk-1",
            palmgate::event::Timestamp::from_unix_ms(1),
        )
        .expect("event");
        let path = dir.path().join("event.json");
        let args = VerifyReceiptArgs {
            issuer: issuer_dir.clone(),
            receipt: path.clone(),
            seen: None,
        };
        std::fs::write(&path, event.to_json()).expect("write");
        verify_receipt(&args).expect("a genuine event verifies");
        // Plain fields that lie about the signed ones are refused.
        let mut json: serde_json::Value = serde_json::from_slice(&event.to_json()).expect("json");
        json["receipt"]["erase_counter"] = 1.into();
        std::fs::write(&path, serde_json::to_vec(&json).expect("json")).expect("write");
        let error = verify_receipt(&args).expect_err("lying fields");
        assert!(error.to_string().contains("differ"), "{error:#}");
        // A receipt of another issuer's card does not verify.
        let foreign = erased_event(
            &bundle(&IssuerKey::generate()),
            "desk-1",
            palmgate::event::Timestamp::from_unix_ms(1),
        )
        .expect("event");
        std::fs::write(&path, foreign.to_json()).expect("write");
        assert!(verify_receipt(&args).is_err());
        // Garbage is a clear error, not a panic.
        std::fs::write(&path, b"{\"id\": 1}").expect("write");
        assert!(verify_receipt(&args).is_err());
    }

    fn meal_receipt(issuer: &IssuerKey, counter: u32) -> MealReceipt {
        use palmgate_card::protocol::meal::SignedMealReceipt;
        let card_key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
        let card_id = [0x5a; 16];
        let certificate =
            issuer.certify_card(&card_id, &encode_public_key(card_key.verifying_key()));
        let fields = MealReceiptFields {
            card_id,
            period: 20_428 * 16 + 1,
            count: 1,
            allowance: 1,
            gate_time: 1_765_022_400,
            receipt_counter: counter,
        };
        MealReceipt::new(SignedMealReceipt::sign(&fields, &card_key), certificate)
    }

    fn meal_event(receipt: &MealReceipt) -> serde_json::Value {
        let fields = receipt.unverified_fields();
        serde_json::json!({
            "id": 1_765_022_400_123u64,
            "time": "2025-12-06T12:00:00.123Z",
            "gate": "canteen-1",
            "kind": "meal.served",
            "card_id": hex::encode(fields.card_id),
            "receipt": {
                "bundle": hex::encode(receipt.to_bytes()),
                "period": fields.period,
                "count": fields.count,
                "allowance": fields.allowance,
                "gate_time": fields.gate_time,
                "counter": fields.receipt_counter,
            },
        })
    }

    #[test]
    fn verify_receipt_checks_meal_receipts_in_every_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer_dir = dir.path().join("issuer");
        palmgate_card::host::issuer::init_issuer_dir(&issuer_dir).expect("issuer dir");
        let issuer = load_issuer_key(&issuer_dir).expect("issuer key");
        let receipt = meal_receipt(&issuer, 1);
        let path = dir.path().join("meal");
        let args = VerifyReceiptArgs {
            issuer: issuer_dir.clone(),
            receipt: path.clone(),
            seen: None,
        };
        let forms = [
            receipt.to_bytes(),
            hex::encode(receipt.to_bytes()).into_bytes(),
            format!("{}\n", hex::encode_upper(receipt.to_bytes())).into_bytes(),
            serde_json::to_vec(&meal_event(&receipt)).expect("json"),
        ];
        for form in &forms {
            std::fs::write(&path, form).expect("write");
            verify_receipt(&args).expect("a genuine meal receipt verifies");
        }
        // Forged: any bit of the signed receipt flipped.
        for byte in [5, 21, 25, 26, 30, 38, 60] {
            let mut forged = receipt.to_bytes();
            forged[byte] ^= 0x01;
            std::fs::write(&path, &forged).expect("write");
            let error = verify_receipt(&args).expect_err("forged");
            assert!(
                format!("{error:#}").contains("does not verify"),
                "{error:#}"
            );
        }
        // Another issuer's card.
        std::fs::write(&path, meal_receipt(&IssuerKey::generate(), 1).to_bytes()).expect("write");
        assert!(verify_receipt(&args).is_err());
        // An event whose plain fields lie about the signed ones.
        for (field, value) in [("count", 0u64), ("period", 7), ("counter", 9)] {
            let mut event = meal_event(&receipt);
            event["receipt"][field] = value.into();
            std::fs::write(&path, serde_json::to_vec(&event).expect("json")).expect("write");
            let error = verify_receipt(&args).expect_err("lying fields");
            assert!(error.to_string().contains(field), "{error:#}");
        }
        let mut event = meal_event(&receipt);
        event["card_id"] = "00".repeat(16).into();
        std::fs::write(&path, serde_json::to_vec(&event).expect("json")).expect("write");
        assert!(verify_receipt(&args).is_err());
        // Truncated: a clear error.
        std::fs::write(&path, &receipt.to_bytes()[..200]).expect("write");
        let error = verify_receipt(&args).expect_err("truncated");
        assert!(format!("{error:#}").contains("261"), "{error:#}");
    }

    #[test]
    fn verify_receipt_with_seen_refuses_a_replayed_meal_receipt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let issuer_dir = dir.path().join("issuer");
        palmgate_card::host::issuer::init_issuer_dir(&issuer_dir).expect("issuer dir");
        let issuer = load_issuer_key(&issuer_dir).expect("issuer key");
        let seen = dir.path().join("seen.txt");
        let path = dir.path().join("meal.bin");
        let args = VerifyReceiptArgs {
            issuer: issuer_dir.clone(),
            receipt: path.clone(),
            seen: Some(seen.clone()),
        };
        let (first, second) = (meal_receipt(&issuer, 1), meal_receipt(&issuer, 2));
        // Counter 2 arrives before counter 1 (a gate that was offline): both accepted.
        for receipt in [&second, &first] {
            std::fs::write(&path, receipt.to_bytes()).expect("write");
            verify_receipt(&args).expect("first time");
        }
        let lines = std::fs::read_to_string(&seen).expect("seen file");
        assert_eq!(lines.lines().count(), 2);
        // Replayed, as the file and as the event: refused, the seen file unchanged.
        for form in [
            first.to_bytes(),
            serde_json::to_vec(&meal_event(&first)).expect("json"),
        ] {
            std::fs::write(&path, form).expect("write");
            let error = verify_receipt(&args).expect_err("replay");
            assert!(format!("{error:#}").contains("replayed"), "{error:#}");
        }
        assert_eq!(std::fs::read_to_string(&seen).expect("seen file"), lines);
        // A damaged seen file is a clear error naming the line, and is left as it is.
        std::fs::write(&seen, format!("{lines}not hex\n")).expect("write");
        std::fs::write(&path, meal_receipt(&issuer, 3).to_bytes()).expect("write");
        let error = verify_receipt(&args).expect_err("damaged seen file");
        assert!(format!("{error:#}").contains("line 3"), "{error:#}");
        // --seen with a deletion receipt is refused rather than ignored.
        std::fs::write(&path, bundle(&issuer).encode()).expect("write");
        assert!(verify_receipt(&args).is_err());
    }
}
