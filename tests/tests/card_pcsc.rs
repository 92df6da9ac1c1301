//! The card through the real PC/SC stack: pcscd + vsmartcard's vpcd + `palmgate-vcard`
//! (a child process holding the applet, with its state in a temporary file).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use palmgate_card::host::issuer::{IssuerKey, init_issuer_dir};
use palmgate_card::host::pcsc::{
    CardEvent, CardMonitor, MonitorEvent, PcscTransport, erase_recovering_receipt,
    recover_meal_receipt, wait_for_card,
};
use palmgate_card::host::platform::{identity_of_state, meal_entitlement_of_state};
use palmgate_card::host::reader_health::{ReaderHealth, UnavailableReason};
use palmgate_card::host::{
    Card, CardError, MealOutcome, MealRequest, ReceiptBundle, VerifyOutcome,
};
use palmgate_card::protocol::{SlotKind, permission};
use palmgate_matcher::fixtures::template;
use palmgate_matcher::template::Template;
use palmgate_system_tests::pcscd::OwnedPcscd;
use palmgate_system_tests::{reader_lock, require_pcscd_vpcd, workspace_binary};

/// vpcd's first slot (port 35963) appears as this reader.
const READER: &str = "Virtual PCD 00 00";

struct VirtualCard {
    child: Child,
}

impl VirtualCard {
    fn start(state: &Path, extra: &[&str]) -> Self {
        let vpcd = require_pcscd_vpcd();
        let child = Command::new(workspace_binary("palmgate-vcard"))
            .args(["--vpcd", &vpcd, "--state"])
            .arg(state)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn palmgate-vcard");
        let card = Self { child };
        assert!(
            wait_for_card(READER, Duration::from_secs(10)).unwrap(),
            "virtual card did not appear in {READER}"
        );
        card
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGTERM: the card must exit cleanly and promptly.
    fn stop(mut self) {
        self.signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "palmgate-vcard exit status {status}");
                break;
            }
            assert!(Instant::now() < deadline, "palmgate-vcard ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
        wait_for_absence();
    }

    /// SIGKILL: the card is yanked out of the reader.
    fn pull(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        wait_for_absence();
    }
}

impl Drop for VirtualCard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Leave the reader empty for the next test (without panicking in a drop).
        let deadline = Instant::now() + Duration::from_secs(10);
        while wait_for_card(READER, Duration::ZERO).unwrap_or(false) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_for_absence() {
    let deadline = Instant::now() + Duration::from_secs(10);
    while wait_for_card(READER, Duration::ZERO).unwrap() {
        assert!(
            Instant::now() < deadline,
            "card still present after its process ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Another capture of `seed`: a few cells differ.
fn capture(seed: u64) -> Template {
    palmgate_matcher::fixtures::capture_every(seed, 23, 0)
}

struct Site {
    _dir: tempfile::TempDir,
    state: PathBuf,
    issuer: IssuerKey,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("card.state");
        Self {
            _dir: dir,
            state,
            issuer: IssuerKey::generate(),
        }
    }
}

/// Personalise, enrol, match, no match, lockout, reset by the issuer, erase with a receipt —
/// all through pcscd and vpcd.
#[test]
fn card_lifecycle_through_pcscd() {
    let _lock = reader_lock();
    let site = Site::new();
    let authority = site.issuer.create_authority(permission::ALL);
    let issuers = [site.issuer.public_key()];
    let vcard = VirtualCard::start(&site.state, &[]);

    let mut card = Card::connect(READER).unwrap();
    card.personalise(&site.issuer).unwrap();
    let verified = card.verify_certificate(&issuers).unwrap();
    {
        let session = card.open_session(&verified).unwrap();
        let mut enrolment = session.prove_authority(&authority).unwrap();
        enrolment.enrol(0, SlotKind::Normal, &template(1)).unwrap();
        enrolment.set_policy(3).unwrap();
    }
    {
        let mut session = card.open_session(&verified).unwrap();
        assert_eq!(
            session.verify_palm(&capture(1)).unwrap(),
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 3
            }
        );
        assert_eq!(
            session.verify_palm(&template(2)).unwrap(),
            VerifyOutcome::NoMatch { tries_left: 2 }
        );
        assert_eq!(
            session.verify_palm(&template(3)).unwrap(),
            VerifyOutcome::NoMatch { tries_left: 1 }
        );
        assert_eq!(
            session.verify_palm(&template(4)).unwrap(),
            VerifyOutcome::NoMatch { tries_left: 0 }
        );
        assert_eq!(
            session.verify_palm(&capture(1)).unwrap(),
            VerifyOutcome::Blocked
        );
    }
    // The state file holds what the card holds.
    let stored = identity_of_state(&std::fs::read(&site.state).unwrap()).unwrap();
    assert_eq!(stored.tries_left, 0);
    {
        let session = card.open_session(&verified).unwrap();
        session
            .prove_authority(&authority)
            .unwrap()
            .reset_retry_counter()
            .unwrap();
    }
    {
        let mut session = card.open_session(&verified).unwrap();
        assert!(matches!(
            session.verify_palm(&capture(1)).unwrap(),
            VerifyOutcome::Match { tries_left: 3, .. }
        ));
    }
    let receipt = {
        let session = card.open_session(&verified).unwrap();
        session
            .prove_authority(&authority)
            .unwrap()
            .erase(1_764_000_000)
            .unwrap()
    };
    let bundle = ReceiptBundle::decode(
        &ReceiptBundle {
            receipt,
            certificate: verified.certificate,
        }
        .encode(),
    )
    .unwrap();
    let fields = bundle.verify(&issuers).unwrap();
    assert_eq!((fields.card_id, fields.slots_erased), (verified.card_id, 1));
    assert_eq!(card.refresh_identity().unwrap().slots_used, 0);
    drop(card);

    // The state survives the process: a restarted card is the same card.
    vcard.stop();
    let _vcard = VirtualCard::start(&site.state, &[]);
    let mut card = Card::connect(READER).unwrap();
    assert_eq!(
        card.verify_certificate(&issuers).unwrap().card_id,
        verified.card_id
    );
}

/// The card is pulled while VERIFY PALM is between spending the try and answering: no grant,
/// and the try stays spent.
#[test]
fn card_removed_in_the_middle_of_verify() {
    let _lock = reader_lock();
    let site = Site::new();
    let authority = site.issuer.create_authority(permission::ALL);
    let issuers = [site.issuer.public_key()];
    {
        let vcard = VirtualCard::start(&site.state, &[]);
        let mut card = Card::connect(READER).unwrap();
        card.personalise(&site.issuer).unwrap();
        let verified = card.verify_certificate(&issuers).unwrap();
        let session = card.open_session(&verified).unwrap();
        session
            .prove_authority(&authority)
            .unwrap()
            .enrol(0, SlotKind::Normal, &template(7))
            .unwrap();
        drop(card);
        vcard.stop();
    }
    // Slow card memory: each write is followed by a 1.5 s pause before the card goes on.
    let vcard = VirtualCard::start(&site.state, &["--store-delay-ms", "1500"]);
    let (sender, receiver) = std::sync::mpsc::channel();
    let verifier = std::thread::spawn(move || -> Result<VerifyOutcome, CardError> {
        let mut card = Card::connect(READER)?;
        let verified = card.verify_certificate(&issuers)?;
        let mut session = card.open_session(&verified)?;
        sender.send(()).unwrap();
        session.verify_palm(&capture(7))
    });
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("session opened");
    // Wait until the card has stored the spent try, then pull it.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stored = identity_of_state(&std::fs::read(&site.state).unwrap()).unwrap();
        if stored.tries_left == 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the try was not stored before the comparison"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    vcard.pull();
    let outcome = verifier.join().unwrap();
    assert!(
        outcome.is_err(),
        "a pulled card must not produce a decision: {outcome:?}"
    );

    let _vcard = VirtualCard::start(&site.state, &[]);
    let card = Card::connect(READER).unwrap();
    assert_eq!(
        card.identity().tries_left,
        4,
        "the try spent before the comparison stays spent"
    );
}

/// Insertion and removal arrive as events from the monitor thread.
#[test]
fn card_presence_events() {
    let _lock = reader_lock();
    let site = Site::new();
    let (monitor, events) = CardMonitor::start(READER).unwrap();
    let vcard = VirtualCard::start(&site.state, &[]);
    let inserted = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(
        matches!(&inserted, CardEvent::Inserted { reader, atr } if reader == READER && atr.starts_with(&[0x3B])),
        "{inserted:?}"
    );
    let transport = PcscTransport::connect(READER).unwrap();
    assert_eq!(transport.reader(), READER);
    drop(transport);
    vcard.pull();
    let removed = events.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        removed,
        CardEvent::Removed {
            reader: READER.to_owned()
        }
    );
    monitor.stop().unwrap();
}

/// A personalised card with `template(seed)` enrolled in slot 0, through pcscd.
fn enrolled(site: &Site, seed: u64) -> palmgate_card::host::VerifiedCard {
    let authority = site.issuer.create_authority(permission::ALL);
    let mut card = Card::connect(READER).unwrap();
    card.personalise(&site.issuer).unwrap();
    let verified = card
        .verify_certificate(&[site.issuer.public_key()])
        .unwrap();
    card.open_session(&verified)
        .unwrap()
        .prove_authority(&authority)
        .unwrap()
        .enrol(0, SlotKind::Normal, &template(seed))
        .unwrap();
    verified
}

/// Connects, checks the certificate, opens a session and verifies `capture(seed)`.
fn verify_once(issuer: &palmgate_card::host::issuer::IssuerPublicKey, seed: u64) -> VerifyOutcome {
    let mut card = Card::connect(READER).unwrap();
    let verified = card
        .verify_certificate(std::slice::from_ref(issuer))
        .unwrap();
    card.open_session(&verified)
        .unwrap()
        .verify_palm(&capture(seed))
        .unwrap()
}

/// A local PC/SC client sends 1-byte APDUs (`00`, `02`, `80`, `04`): vpcd passes them as if they
/// were its own control codes. Each gets an answer (status word `6700`) or a clean error in
/// bounded time, never a `SCardTransmit` that waits forever, and the card verifies afterwards.
#[test]
fn one_byte_apdus_do_not_stall_the_reader() {
    let _lock = reader_lock();
    let site = Site::new();
    let _vcard = VirtualCard::start(&site.state, &[]);
    enrolled(&site, 21);
    let issuer = site.issuer.public_key();

    for byte in [0x00u8, 0x02, 0x80, 0x04] {
        let (sender, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = PcscTransport::connect(READER).and_then(|mut transport| {
                use palmgate_card::host::CardTransport;
                transport.transmit(&[byte])
            });
            let _ = sender.send(result);
        });
        let result = answer
            .recv_timeout(Duration::from_secs(15))
            .unwrap_or_else(|_| panic!("1-byte APDU {byte:02X}: SCardTransmit still waiting"));
        match result {
            Ok(response) => assert_eq!(
                response[response.len().saturating_sub(2)..],
                [0x67, 0x00],
                "1-byte APDU {byte:02X} answered {response:02X?}"
            ),
            Err(error) => eprintln!("1-byte APDU {byte:02X}: clean error {error}"),
        }
        assert_eq!(
            verify_once(&issuer, 21),
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 5
            },
            "verification after the 1-byte APDU {byte:02X}"
        );
    }
}

/// Waits for the first event that `wanted` accepts; returns it and every event before it.
fn wait_for_event(
    events: &std::sync::mpsc::Receiver<MonitorEvent>,
    timeout: Duration,
    what: &str,
    wanted: impl Fn(&MonitorEvent) -> bool,
) -> Vec<MonitorEvent> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) => {
                let done = wanted(&event);
                seen.push(event);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no {what} within {timeout:?}; events: {seen:?}"),
        }
    }
}

fn is_inserted(event: &MonitorEvent) -> bool {
    matches!(event, MonitorEvent::Card(CardEvent::Inserted { reader, .. }) if reader == READER)
}

/// pcscd killed (SIGKILL, then SIGTERM) and started again under a running monitor, as a crash
/// or a package upgrade does: the monitor reports the reader unavailable, re-establishes its
/// context by itself, reports it available, and the card presented again is verified — without
/// restarting this process. The plain `CardMonitor::start` (what the gate uses) recovers too.
#[test]
fn the_reader_comes_back_after_pcscd_restarts() {
    let _lock = reader_lock();
    let mut pcscd = OwnedPcscd::find();
    let site = Site::new();
    let issuer = site.issuer.public_key();
    let (monitor, events) = CardMonitor::start_watching(READER).unwrap();
    let (card_only, card_events) = CardMonitor::start(READER).unwrap();
    wait_for_event(
        &events,
        Duration::from_secs(5),
        "reader available",
        |event| matches!(event, MonitorEvent::Health(health) if health.is_available()),
    );
    let _vcard = VirtualCard::start(&site.state, &[]);
    enrolled(&site, 31);
    wait_for_event(
        &events,
        Duration::from_secs(5),
        "card inserted",
        is_inserted,
    );
    while card_events.try_recv().is_ok() {}

    for signal in ["-KILL", "-TERM"] {
        pcscd.stop(signal);
        let seen = wait_for_event(
            &events,
            Duration::from_secs(5),
            "reader unavailable",
            |event| {
                matches!(
                    event,
                    MonitorEvent::Health(ReaderHealth::Unavailable {
                        reason: UnavailableReason::ServiceUnavailable { .. }
                    })
                )
            },
        );
        assert!(
            seen.iter()
                .any(|event| matches!(event, MonitorEvent::Card(CardEvent::Removed { .. }))),
            "{signal}: the card is reported removed with the service: {seen:?}"
        );
        let restarted = Instant::now();
        pcscd.start();
        wait_for_event(
            &events,
            Duration::from_secs(5),
            "reader available",
            |event| matches!(event, MonitorEvent::Health(health) if health.is_available()),
        );
        wait_for_event(
            &events,
            Duration::from_secs(10),
            "card inserted",
            is_inserted,
        );
        // The monitor the gate uses reports the card again as well.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match card_events.recv_timeout(left) {
                Ok(CardEvent::Inserted { .. }) => break,
                Ok(CardEvent::Removed { .. }) => {}
                Err(error) => panic!("{signal}: CardMonitor::start reported no insertion: {error}"),
            }
        }
        assert_eq!(
            verify_once(&issuer, 31),
            VerifyOutcome::Match {
                slot_kind: SlotKind::Normal,
                tries_left: 5
            },
            "{signal}: verification after pcscd came back"
        );
        eprintln!(
            "pcscd {signal}: card verified {:?} after pcscd was started again",
            restarted.elapsed()
        );
    }
    monitor.stop().unwrap();
    card_only.stop().unwrap();
}

/// The card is pulled (SIGKILL) after it stored an ERASE and before it answered: the host's
/// erase (`erase_recovering_receipt`, what `palmgate card erase` is to call) waits for the card
/// to be presented again and reads the receipt with GET RECEIPT.
#[test]
fn erase_torn_by_pulling_the_card_keeps_its_receipt() {
    const TIMESTAMP: u64 = 1_764_000_123;
    let _lock = reader_lock();
    let site = Site::new();
    let issuers = [site.issuer.public_key()];
    {
        let vcard = VirtualCard::start(&site.state, &[]);
        enrolled(&site, 41);
        vcard.stop();
    }
    // Slow card memory: each write is followed by a 1.5 s pause before the card answers.
    let vcard = VirtualCard::start(&site.state, &["--store-delay-ms", "1500"]);
    let (sender, receiver) = std::sync::mpsc::channel();
    let authority = site.issuer.create_authority(permission::ALL);
    let thread_issuers = issuers;
    let eraser = std::thread::spawn(move || {
        let mut card = Card::connect(READER)?;
        let verified = card.verify_certificate(&thread_issuers)?;
        sender.send(()).unwrap();
        let receipt = erase_recovering_receipt(
            &mut card,
            &verified,
            &authority,
            TIMESTAMP,
            Duration::from_secs(30),
        )?;
        Ok::<_, CardError>((receipt, verified))
    });
    receiver
        .recv_timeout(Duration::from_secs(10))
        .expect("card read");
    // Wait until the card has stored the erase, then pull it before it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while identity_of_state(&std::fs::read(&site.state).unwrap())
        .unwrap()
        .slots_used
        != 0
    {
        assert!(Instant::now() < deadline, "the erase was not stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    vcard.pull();
    assert!(!eraser.is_finished(), "the pulled card answered the erase");
    // The card is presented again (without the slow memory).
    let _vcard = VirtualCard::start(&site.state, &[]);
    let (receipt, verified) = eraser.join().unwrap().expect("receipt recovered");
    let fields = ReceiptBundle {
        receipt,
        certificate: verified.certificate,
    }
    .verify(&issuers)
    .unwrap();
    assert_eq!(
        (fields.card_id, fields.slots_erased, fields.gate_timestamp),
        (verified.card_id, 1, TIMESTAMP)
    );
}

/// The card is pulled (SIGKILL) after it stored a REDEEM MEAL and before it answered: the gate
/// gets no answer, so serves nothing yet; when the card is presented again it reads the kept
/// receipt with GET RECEIPT (no palm needed), and that receipt is the meal's. The meal is counted
/// once: asking again in the same period is refused. No meal without a receipt, no free meal.
#[test]
fn meal_torn_by_pulling_the_card_is_counted_once_and_its_receipt_recovered() {
    let request = MealRequest {
        period: 20_428 * 16 + 1,
        allowance: 1,
        gate_time: 1_765_022_400,
    };
    let _lock = reader_lock();
    let site = Site::new();
    let issuers = [site.issuer.public_key()];
    {
        let vcard = VirtualCard::start(&site.state, &[]);
        enrolled(&site, 43);
        vcard.stop();
    }
    // Slow card memory: each write is followed by a 1.5 s pause before the card answers.
    let vcard = VirtualCard::start(&site.state, &["--store-delay-ms", "1500"]);
    let (sender, receiver) = std::sync::mpsc::channel();
    let gate = std::thread::spawn(move || {
        let mut card = Card::connect(READER)?;
        let verified = card.verify_certificate(&issuers)?;
        let mut session = card.open_session(&verified)?;
        let decision = session.verify_palm(&capture(43))?;
        sender.send(decision).unwrap();
        let answer = session.redeem_meal(&request);
        drop(session);
        drop(card);
        // What a gate does when the answer is lost: wait for the card, read its kept receipt.
        let recovered = recover_meal_receipt(READER, &verified, &request, Duration::from_secs(30))?;
        Ok::<_, CardError>((answer, recovered, verified))
    });
    let decision = receiver
        .recv_timeout(Duration::from_secs(20))
        .expect("palm verified");
    assert!(
        matches!(decision, VerifyOutcome::Match { .. }),
        "{decision:?}"
    );
    // Wait until the card has stored the meal, then pull it before it answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    while meal_entitlement_of_state(&std::fs::read(&site.state).unwrap())
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the meal was not stored");
        std::thread::sleep(Duration::from_millis(5));
    }
    vcard.pull();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !gate.is_finished(),
        "the gate gave up before the card came back"
    );
    // The card is presented again (without the slow memory).
    let _vcard = VirtualCard::start(&site.state, &[]);
    let (answer, recovered, verified) = gate.join().unwrap().expect("card back in time");
    assert!(
        matches!(answer, Err(CardError::Transport(_))),
        "the pulled card must not answer: {answer:?}"
    );
    let receipt = recovered.expect("the torn meal's receipt is kept on the card");
    assert!(receipt.answers(&request));
    let fields = *receipt.verify(&issuers).unwrap().fields();
    assert_eq!(
        (
            fields.card_id,
            fields.period,
            fields.count,
            fields.receipt_counter
        ),
        (verified.card_id, request.period, 1, 1)
    );
    // Counted once: the same period again is refused, nothing more counted.
    let mut card = Card::connect(READER).unwrap();
    let mut session = card.open_session(&verified).unwrap();
    assert!(matches!(
        session.verify_palm(&capture(43)).unwrap(),
        VerifyOutcome::Match { .. }
    ));
    assert_eq!(
        session.redeem_meal(&request).unwrap(),
        MealOutcome::AllowanceUsed {
            count: 1,
            allowance: 1
        }
    );
    let record = meal_entitlement_of_state(&std::fs::read(&site.state).unwrap())
        .unwrap()
        .unwrap();
    assert_eq!((record.count, record.receipt_counter), (1, 1));
}

/// Meal receipts of a card served through pcscd, checked by `palmgate card verify-receipt`: a
/// genuine one passes and is recorded in `--seen`, the same again is refused as replayed (as the
/// file and as its hex), an altered one and one checked against another issuer do not verify.
#[test]
fn verify_receipt_accepts_each_meal_receipt_of_the_card_once() {
    let _lock = reader_lock();
    let dir = tempfile::tempdir().unwrap();
    let issuer_dir = dir.path().join("issuer");
    let (issuer, authority) = init_issuer_dir(&issuer_dir).unwrap();
    let other_dir = dir.path().join("other-issuer");
    init_issuer_dir(&other_dir).unwrap();
    let _vcard = VirtualCard::start(&dir.path().join("card.state"), &[]);
    let mut card = Card::connect(READER).unwrap();
    card.personalise(&issuer).unwrap();
    let verified = card.verify_certificate(&[issuer.public_key()]).unwrap();
    card.open_session(&verified)
        .unwrap()
        .prove_authority(&authority)
        .unwrap()
        .enrol(0, SlotKind::Normal, &template(44))
        .unwrap();
    let mut receipts = Vec::new();
    for period in [20_428 * 16 + 1, 20_428 * 16 + 2] {
        let mut session = card.open_session(&verified).unwrap();
        assert!(matches!(
            session.verify_palm(&capture(44)).unwrap(),
            VerifyOutcome::Match { .. }
        ));
        let request = MealRequest {
            period,
            allowance: 1,
            gate_time: 1_765_022_400,
        };
        let MealOutcome::Served(receipt) = session.redeem_meal(&request).unwrap() else {
            panic!("meal of period {period} not served");
        };
        receipts.push(receipt.to_bytes());
    }
    let receipt_file = dir.path().join("meal.bin");
    let seen = dir.path().join("seen.txt");
    let check = |bytes: &[u8], issuer: &Path| {
        std::fs::write(&receipt_file, bytes).unwrap();
        let output = Command::new(workspace_binary("palmgate"))
            .args(["card", "verify-receipt", "--issuer"])
            .arg(issuer)
            .arg("--receipt")
            .arg(&receipt_file)
            .arg("--seen")
            .arg(&seen)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    };
    // The second meal first (receipts arrive out of order), then the first.
    for (bytes, counter) in [(&receipts[1], 2), (&receipts[0], 1)] {
        let (accepted, text) = check(bytes, &issuer_dir);
        assert!(accepted, "{text}");
        assert!(
            text.contains("receipt valid")
                && text.contains(&format!("receipt counter: {counter}"))
                && text.contains(&format!("card id: {}", hex::encode(verified.card_id))),
            "{text}"
        );
    }
    for replay in [receipts[0].clone(), hex::encode(&receipts[1]).into_bytes()] {
        let (accepted, text) = check(&replay, &issuer_dir);
        assert!(!accepted && text.contains("replayed"), "{text}");
    }
    let mut forged = receipts[0].clone();
    forged[25] ^= 0x03; // the count after
    let (accepted, text) = check(&forged, &issuer_dir);
    assert!(!accepted && text.contains("does not verify"), "{text}");
    let (accepted, text) = check(&receipts[0], &other_dir);
    assert!(!accepted && text.contains("does not verify"), "{text}");
    assert_eq!(std::fs::read_to_string(&seen).unwrap().lines().count(), 2);
}
