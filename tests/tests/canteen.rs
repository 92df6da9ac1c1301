//! Canteen gates end to end, on the real services: pcscd + vpcd with `palmgate-vcard` cards, the
//! sensor simulator on a pseudo-terminal, mosquitto, and `palmgate run` with simulated doors.
//!
//! The card carries the count: a second meal in the same period is refused at another gate of
//! the site while the first gate is offline, and the receipt of a meal whose answer was lost
//! (card pulled after the card counted it) is read back and published at the next presentation,
//! the gate restarted in between (it keeps the lost answer in its state directory).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use palmgate_system_tests::gate::{
    ChildGuard, NotifySocket, Subscriber, VirtualCard, field, gate_config_on, now_unix,
    presentation_ms, sensor_simulator_with, start_daemon, utc_offset_for_local_time,
};
use palmgate_system_tests::site::{PATIENCE, Site, stop};
use palmgate_system_tests::{reader_lock, require_mqtt, require_pcscd_vpcd};

const FPS: u32 = 5;

/// A policy whose canteen gate is the door `main`, with `lunches` lunches allowed per person. The
/// site's offset is chosen so that its local time is about noon now: lunch (10:00–14:00, every
/// day) is open whenever the test runs.
fn write_policy(root: &Path, lunches: u8) -> PathBuf {
    let offset = utc_offset_for_local_time(now_unix(), 12 * 60, 0);
    let lunch = "\"10:00-14:00\"";
    let days: String = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"]
        .iter()
        .map(|day| format!("{day} = {lunch}\n"))
        .collect();
    let policy = format!(
        "version = 1\nutc_offset_minutes = {offset}\ndefault_groups = [\"staff\"]\n\n\
         [group.staff]\n\n[canteen]\ndoors = [\"main\"]\n\n[canteen.period.lunch]\n{days}\n\
         [canteen.allowance.staff]\nlunch = {lunches}\n"
    );
    let path = root.join("policy.toml");
    std::fs::write(&path, policy).expect("policy");
    path
}

/// `palmgate run` for canteen gate `gate`, its state in `dir`, reading the sensor at the site's
/// link.
struct CanteenGate {
    daemon: ChildGuard,
    log: PathBuf,
    _notify: NotifySocket,
    _sensor: ChildGuard,
}

impl CanteenGate {
    fn start(site: &Site, gate: &str, policy: &Path, edit: impl FnOnce(String) -> String) -> Self {
        let dir = site.root.join(gate);
        std::fs::create_dir_all(&dir).expect("gate dir");
        let images = site.palms.captures(0, 2);
        let (held, away) = presentation_ms(FPS);
        let sensor = sensor_simulator_with(
            &site.sensor_link(),
            &[
                "--format",
                "jpeg",
                "--fps",
                &FPS.to_string(),
                "--images",
                images.to_str().expect("utf-8 path"),
                "--hand-held-ms",
                &held.to_string(),
                "--hand-away-ms",
                &away.to_string(),
            ],
        );
        let config = gate_config_on(
            &require_mqtt(),
            &dir,
            gate,
            &site.issuer.join("issuer.pub"),
            &site.sensor_link(),
            &site.operator_pub,
        );
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replace(
            "[card]\n",
            &format!("[card]\npolicy_file = \"{}\"\n", policy.display()),
        );
        std::fs::write(&config, edit(text)).expect("config");
        let notify = NotifySocket::bind(&dir);
        let log = dir.join("daemon.log");
        let daemon = start_daemon(&config, &notify, &log);
        assert!(
            notify.wait_for("READY=1", PATIENCE).is_some(),
            "{gate}: no READY=1"
        );
        Self {
            daemon,
            log,
            _notify: notify,
            _sensor: sensor,
        }
    }

    fn stop(self) -> String {
        stop(self.daemon, &self.log);
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

fn meal(payload: &str) -> serde_json::Value {
    let json: serde_json::Value = serde_json::from_str(payload).expect("JSON");
    json["meal"].clone()
}

#[test]
fn a_second_meal_in_the_same_period_is_refused_at_another_gate_with_the_first_gate_offline() {
    require_pcscd_vpcd();
    let _reader = reader_lock();
    let site = Site::new();
    let policy = write_policy(&site.root, 1);
    let (template, _) = site.palms.template(0);
    let card = site.root.join("alice.card");
    let card_id = palmgate_system_tests::gate::personalised_card(
        &card,
        &site.issuer,
        std::slice::from_ref(&template),
        None,
    );

    // Lunch at gate A: the turnstile opens once, the receipt is published, the count is retained.
    let mut events_a = Subscriber::start("palmgate/canteen-a/event/#");
    let mut counts_a = Subscriber::start("palmgate/canteen-a/meals");
    let gate_a = CanteenGate::start(&site, "canteen-a", &policy, |text| text);
    let presented = VirtualCard::insert(&card);
    let served = events_a.wait_for("/event/meal.served", PATIENCE);
    presented.remove();
    assert_eq!(
        field(&served, "result").as_deref(),
        Some("granted"),
        "{served}"
    );
    assert_eq!(field(&served, "card_id"), Some(card_id.to_string()));
    let first = meal(&served);
    assert_eq!(first["count"], 1, "{served}");
    assert_eq!(first["allowance"], 1, "{served}");
    assert_eq!(first["period_name"], "lunch", "{served}");
    assert_eq!(first["group"], "staff", "{served}");
    // The published receipt is the card's, verifiable with the issuer key alone.
    let receipt = hex::decode(first["receipt"].as_str().expect("receipt hex")).expect("hex");
    let issuer = palmgate_card::host::issuer::IssuerPublicKey::from_hex(
        std::fs::read_to_string(site.issuer.join("issuer.pub"))
            .expect("issuer key")
            .trim(),
    )
    .expect("issuer key");
    let verified = palmgate_card::host::MealReceipt::from_bytes(&receipt)
        .expect("meal receipt")
        .verify(&[issuer])
        .expect("the receipt verifies against the issuer");
    assert_eq!(verified.fields().count, 1);
    assert_eq!(
        u64::from(verified.fields().receipt_counter),
        first["receipt_counter"].as_u64().expect("counter")
    );
    let counts = counts_a.wait_for("/meals", PATIENCE);
    assert_eq!(field(&counts, "served").as_deref(), Some("1"), "{counts}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&counts).expect("json")["groups"]["staff"],
        1
    );

    // Gate A goes offline for good; the same card at gate B, which never heard of that lunch.
    gate_a.stop();
    let mut events_b = Subscriber::start("palmgate/canteen-b/event/#");
    let gate_b = CanteenGate::start(&site, "canteen-b", &policy, |text| text);
    let presented = VirtualCard::insert(&card);
    let denied = events_b.wait_for("/event/access.denied", PATIENCE);
    presented.remove();
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("meal_allowance_used"),
        "{denied}"
    );
    let refused = meal(&denied);
    assert_eq!(
        (refused["count"].clone(), refused["allowance"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(refused["period"], first["period"], "{denied}");
    let log = gate_b.stop();
    // Gate B opened nothing. It published the receipt the card keeps (gate A's lunch) as a
    // recovered one, which the records tell from a new meal by its receipt counter.
    let lines = events_b.all().to_vec();
    let served_b: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("/event/meal.served"))
        .collect();
    let counter = format!("\"receipt_counter\":{}", first["receipt_counter"]);
    assert!(
        served_b
            .iter()
            .all(|line| line.contains("\"result\":\"info\"")
                && line.contains("\"reason\":\"recovered\"")
                && line.contains(&counter)),
        "gate B served a second lunch:\n{served_b:?}\n{log}"
    );
    assert_eq!(
        served_b.len(),
        1,
        "the kept receipt is published: {lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.contains("/event/door.unlocked") && line.contains("\"grant\"")),
        "gate B opened its door:\n{log}"
    );
    // Nothing was consumed by the refusal: the card still holds one meal in the period.
    let state = std::fs::read(&card).expect("card state");
    let entitlement = palmgate_card::host::platform::meal_entitlement_of_state(&state)
        .expect("state loads")
        .expect("entitlement");
    assert_eq!(entitlement.count, 1);
}

#[test]
fn the_receipt_of_a_meal_whose_answer_was_lost_is_published_at_the_next_presentation_after_a_restart()
 {
    require_pcscd_vpcd();
    let _reader = reader_lock();
    let site = Site::new();
    // Two lunches: the next presentation is served a meal, whose receipt replaces the one the card
    // keeps. The lost meal's receipt must be read back before that, even after a restart.
    let policy = write_policy(&site.root, 2);
    let (template, _) = site.palms.template(0);
    let card = site.root.join("alice.card");
    let card_id = palmgate_system_tests::gate::personalised_card(
        &card,
        &site.issuer,
        std::slice::from_ref(&template),
        None,
    );
    let mut events = Subscriber::start("palmgate/canteen-torn/event/#");
    // Each store of the card is followed by a long pause, so the gate must wait for it.
    let longer_wait =
        |text: String| text.replace("verify_timeout_ms = 5000", "verify_timeout_ms = 10000");
    let gate = CanteenGate::start(&site, "canteen-torn", &policy, longer_wait);
    let entitlement = |card: &Path| {
        let state = std::fs::read(card).expect("card state");
        palmgate_card::host::platform::meal_entitlement_of_state(&state).expect("state loads")
    };
    assert_eq!(entitlement(&card), None);

    // The card is pulled as soon as it stored the meal, before it answers.
    let presented = VirtualCard::insert_with(&card, &["--store-delay-ms", "2000"]);
    let deadline = Instant::now() + Duration::from_secs(90);
    while entitlement(&card).is_none() {
        assert!(Instant::now() < deadline, "the card never counted the meal");
        std::thread::sleep(Duration::from_millis(20));
    }
    presented.pull();
    let denied = events.wait_for("/event/access.denied", PATIENCE);
    assert_eq!(
        field(&denied, "reason").as_deref(),
        Some("meal_not_confirmed"),
        "{denied}"
    );
    let counted = entitlement(&card).expect("counted");
    assert_eq!(counted.count, 1, "the card counted the meal");

    // The gate restarts before the card comes back: the lost answer is kept in its state
    // directory, not only in memory.
    let first_log = gate.stop();
    let kept_file = site
        .root
        .join("canteen-torn")
        .join("state")
        .join("unconfirmed-meals.json");
    let kept_text = std::fs::read_to_string(&kept_file)
        .unwrap_or_else(|error| panic!("{}: {error}\n{first_log}", kept_file.display()));
    assert!(kept_text.contains(&card_id.to_string()), "{kept_text}");
    let gate = CanteenGate::start(&site, "canteen-torn", &policy, longer_wait);

    // Next presentation: the kept receipt is read back and published, then the second lunch is
    // served (its receipt replaces the first on the card).
    let presented = VirtualCard::insert(&card);
    let recovered = events.wait_for("/event/meal.served", PATIENCE);
    let second = events.wait_for("/event/meal.served", PATIENCE);
    presented.remove();
    assert_eq!(
        field(&recovered, "result").as_deref(),
        Some("info"),
        "{recovered}"
    );
    assert_eq!(
        field(&recovered, "reason").as_deref(),
        Some("recovered"),
        "{recovered}"
    );
    let kept = meal(&recovered);
    assert_eq!(kept["count"], 1, "{recovered}");
    assert_eq!(
        kept["receipt_counter"].as_u64(),
        Some(u64::from(counted.receipt_counter)),
        "{recovered}"
    );
    assert_ne!(
        field(&second, "reason").as_deref(),
        Some("recovered"),
        "{second}"
    );
    assert_eq!(meal(&second)["count"], 2, "{second}");
    let log = gate.stop();
    let served: Vec<&String> = events
        .all()
        .iter()
        .filter(|line| line.contains("/event/meal.served"))
        .collect();
    assert_eq!(
        served.len(),
        2,
        "each receipt published once:\n{served:?}\n{log}"
    );
}
