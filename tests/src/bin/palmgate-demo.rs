//! `palmgate-demo`: the gate end to end on this machine, as `cargo xtask demo` runs it.
//!
//! It needs pcscd with vpcd running (the xtask starts it) and starts everything else itself: an
//! issuer and a foreign issuer, virtual cards personalised and enrolled from synthetic palms, the
//! sensor simulator on a pseudo-terminal, its own mosquitto (so that it can restart it), and
//! `palmgate run --config config/demo.toml` with the per-run values given as `PALMGATE__…`
//! variables. It plays a scripted scenario, prints every event it receives over MQTT as a table,
//! and ends with one summary line. Exit status 0 only if every expectation held and no event was
//! lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use palmgate::event::CardId;
use palmgate::mqtt::{Command as GateCommand, OperatorSigner, Topics};
use palmgate_system_tests::gate::{
    Broker, ChildGuard, NotifySocket, Palms, Subscriber, VirtualCard, now_unix, palmgate,
    personalised_card, publish, sensor_simulator, simulated_gpio, utc_offset_for_local_time,
};
use palmgate_system_tests::{reader_lock, require_pcscd_vpcd, workspace_binary};

#[path = "palmgate_demo/panel_scene.rs"]
mod panel_scene;

const GATE: &str = "demo-gate";
const PATIENCE: Duration = Duration::from_secs(30);

struct Demo {
    root: PathBuf,
    issuer: PathBuf,
    palms: Palms,
    mqtt: Subscriber,
    broker: Broker,
    failures: Vec<String>,
}

impl Demo {
    fn expect(&mut self, what: &str, ok: bool, detail: &str) {
        if ok {
            println!("  ok    {what}");
        } else {
            println!("  FAIL  {what}: {detail}");
            self.failures.push(what.to_string());
        }
    }

    /// A card personalised by `issuer`, enrolled with `templates`.
    fn card(
        &self,
        name: &str,
        issuer: &Path,
        templates: &[PathBuf],
        duress: Option<u8>,
    ) -> (PathBuf, CardId) {
        let state = self.root.join(format!("{name}.card"));
        let id = personalised_card(&state, issuer, templates, duress);
        (state, id)
    }

    /// Presents a card and waits for the event `kind`; returns its payload.
    fn present(&mut self, state: &Path, kind: &str) -> String {
        let card = VirtualCard::insert(state);
        let payload = self.mqtt.wait_for(&format!("/event/{kind}"), PATIENCE);
        card.remove();
        payload
    }
}

fn field(payload: &str, name: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(payload).ok()?;
    json.get(name).map(|value| {
        value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_string)
    })
}

fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// When the demo's site has lunch and dinner (local minute of the day): lunch half an hour before
/// its period (10:00–14:00) ends, dinner half an hour after its period (17:00–21:00) opens, the
/// same local day. The site's clock moves on by raising its UTC offset, at most
/// [`palmgate_system_tests::gate::LATEST_CLOCK_MOVE_MINUTES`] from any time of day.
const LUNCH_TIME: i64 = 13 * 60 + 30;
const DINNER_TIME: i64 = 17 * 60 + 30;

/// The site's UTC offset that puts its local time at lunch at `unix_seconds`, leaving room to
/// move on to dinner.
fn lunch_offset(unix_seconds: i64) -> i64 {
    utc_offset_for_local_time(unix_seconds, LUNCH_TIME, DINNER_TIME - LUNCH_TIME)
}

/// The canteen policy of the demo: one lunch (10:00–14:00) and one dinner (17:00–21:00) a day
/// for staff, at the gate's door `main`, at a site `offset` minutes east of UTC: the demo moves
/// from lunch to dinner by raising the offset (time faked through the policy, reloaded with
/// SIGHUP like any policy change).
fn canteen_policy(offset: i64) -> String {
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"];
    let period = |range: &str| -> String {
        days.iter()
            .map(|day| format!("{day} = \"{range}\"\n"))
            .collect()
    };
    format!(
        "version = 1\nutc_offset_minutes = {offset}\ndefault_groups = [\"staff\"]\n\n\
         [group.staff]\n\n[canteen]\ndoors = [\"main\"]\n\n\
         [canteen.period.lunch]\n{}\n[canteen.period.dinner]\n{}\n\
         [canteen.allowance.staff]\nlunch = 1\ndinner = 1\n",
        period("10:00-14:00"),
        period("17:00-21:00")
    )
}

/// The canteen scene: a second gate, `demo-canteen`, whose door is a canteen turnstile. Erin has
/// lunch, is refused a second one, and has dinner once the site's clock reaches dinner time.
fn canteen_scene(demo: &mut Demo, sensor_link: &Path, operator_pub: &Path) {
    const CANTEEN: &str = "demo-canteen";
    println!("canteen:");
    let root = demo.root.clone();
    let policy = root.join("canteen-policy.toml");
    let offset = lunch_offset(now_unix());
    let _ = std::fs::write(&policy, canteen_policy(offset));
    let (erin_tpl, _) = demo.palms.template(0);
    let issuer = demo.issuer.clone();
    let (erin, erin_id) = demo.card("erin", &issuer, std::slice::from_ref(&erin_tpl), None);
    let mut mqtt = Subscriber::start_on(
        &demo.broker.address(),
        &format!("palmgate/{CANTEEN}/#"),
        None,
    );
    let notify_dir = root.join("canteen-notify");
    let _ = std::fs::create_dir_all(&notify_dir);
    let notify = NotifySocket::bind(&notify_dir);
    let log = root.join("canteen.log");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml");
    let mut daemon = ChildGuard::spawn(
        "palmgate run (canteen)",
        Command::new(workspace_binary("palmgate"))
            .args(["run", "--config"])
            .arg(&config)
            .env("PALMGATE__GATE__ID", CANTEEN)
            .env("PALMGATE__GATE__NAME", "Demo canteen")
            .env("PALMGATE__CARD__ISSUER_KEYS", issuer.join("issuer.pub"))
            .env("PALMGATE__CARD__POLICY_FILE", &policy)
            .env(
                "PALMGATE__CARD__REVOCATION_LIST",
                root.join("canteen-revoked.json"),
            )
            .env("PALMGATE__SENSOR__PORT", sensor_link)
            .env(
                "PALMGATE__MQTT__URL",
                format!("mqtt://{}", demo.broker.address()),
            )
            .env("PALMGATE__MQTT__OPERATOR_KEYS", operator_pub)
            .env("PALMGATE__STORAGE__STATE_DIR", root.join("canteen-state"))
            .env(
                "PALMGATE__GPIO__SIMULATED_CONTROL",
                root.join("canteen-gpio.sock"),
            )
            .env("NOTIFY_SOCKET", &notify.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(&log)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            ),
    );
    let ready = notify.wait_for("READY=1", PATIENCE).is_some();
    demo.expect("the canteen gate reports READY", ready, "no READY=1");
    if !ready {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
        return;
    }
    let present = |mqtt: &mut Subscriber, kind: &str| {
        let card = VirtualCard::insert(&erin);
        let payload = mqtt.wait_for(&format!("/event/{kind}"), PATIENCE);
        card.remove();
        payload
    };
    let meal = |payload: &str, name: &str| {
        serde_json::from_str::<serde_json::Value>(payload)
            .ok()
            .and_then(|json| json.get("meal")?.get(name).cloned())
            .map(|value| {
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string)
            })
    };

    let lunch = present(&mut mqtt, "meal.served");
    demo.expect(
        "Erin has lunch: the turnstile opens once and the card signs a receipt",
        field(&lunch, "card_id") == Some(erin_id.to_string())
            && meal(&lunch, "period_name").as_deref() == Some("lunch")
            && meal(&lunch, "receipt").is_some(),
        &lunch,
    );
    // The retained counts may arrive before the event (they skip the outbox).
    let seen = mqtt
        .all()
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix(&format!("palmgate/{CANTEEN}/meals ")))
        .map(str::to_string);
    let counts = seen.unwrap_or_else(|| mqtt.wait_for("/meals", PATIENCE));
    demo.expect(
        "the gate's meal counts (retained on MQTT) show one lunch for staff",
        field(&counts, "served").as_deref() == Some("1"),
        &counts,
    );
    println!("  ..    meal counts: {counts}");

    let refused = present(&mut mqtt, "access.denied");
    demo.expect(
        "a second lunch is refused by the card: meal_allowance_used, 1 of 1",
        field(&refused, "reason").as_deref() == Some("meal_allowance_used")
            && meal(&refused, "count").as_deref() == Some("1")
            && meal(&refused, "allowance").as_deref() == Some("1"),
        &refused,
    );

    println!("  ..    the site's clock moves on to dinner (policy offset +4 h, SIGHUP)");
    let _ = std::fs::write(&policy, canteen_policy(offset + DINNER_TIME - LUNCH_TIME));
    daemon.signal("-HUP");
    mqtt.wait_for("/event/policy.loaded", PATIENCE);
    let dinner = present(&mut mqtt, "meal.served");
    demo.expect(
        "in the next period Erin has dinner",
        meal(&dinner, "period_name").as_deref() == Some("dinner")
            && meal(&dinner, "count").as_deref() == Some("1"),
        &dinner,
    );
    let status = daemon.terminate(PATIENCE);
    demo.expect(
        "the canteen gate stops cleanly on SIGTERM",
        status.success(),
        &status.to_string(),
    );
}

fn main() -> ExitCode {
    require_pcscd_vpcd();
    // Tests run at the same time on this machine would insert their cards into the same reader.
    let _reader = reader_lock();
    // `--latency-rounds N`: after the scenario, N more presentations of Alice's card, for the
    // decision-latency figures in docs/performance.md. `--capture on_card`: the sensor captures
    // only once a card is presented (sensor.capture), so that every round is card first and its
    // decision latency runs from the frame's last byte to the relay command.
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.iter()
            .position(|arg| arg == name)
            .and_then(|index| args.get(index + 1))
            .cloned()
    };
    let latency_rounds: usize = option("--latency-rounds")
        .and_then(|value| value.parse().ok())
        .unwrap_or(0);
    let capture = option("--capture").unwrap_or_else(|| "continuous".to_string());
    let dir = match tempfile::Builder::new().prefix("palmgate-demo-").tempdir() {
        Ok(dir) => dir,
        Err(error) => {
            eprintln!("palmgate-demo: cannot create a working directory: {error}");
            return ExitCode::FAILURE;
        }
    };
    let root = dir.path().to_path_buf();
    println!("palmgate demo in {}", root.display());

    println!("setting up: issuers, operator, synthetic palms, cards, broker");
    let issuer = root.join("issuer");
    let foreign = root.join("foreign-issuer");
    palmgate(&[
        "issuer",
        "init",
        "--out",
        issuer.to_str().unwrap_or_default(),
    ]);
    palmgate(&[
        "issuer",
        "init",
        "--out",
        foreign.to_str().unwrap_or_default(),
    ]);
    let Ok(operator) = OperatorSigner::generate() else {
        eprintln!("palmgate-demo: no randomness for the operator key");
        return ExitCode::FAILURE;
    };
    let operator_pub = root.join("operator.pub");
    let _ = std::fs::write(&operator_pub, operator.public_key_pem());
    // `cargo xtask ha-check` sets up Home Assistant for a broker port first: then the demo's
    // broker takes that port, and Home Assistant (which retries every 10 s) gets time to
    // reconnect before the gate starts.
    let fixed_port = std::env::var("PALMGATE_DEMO_BROKER_PORT")
        .ok()
        .and_then(|port| port.parse().ok());
    let broker = match fixed_port {
        Some(port) => {
            let broker = Broker::start_on_port(&root.join("broker"), port);
            println!(
                "broker on the fixed port {port}: 15 s for its other subscribers to reconnect"
            );
            std::thread::sleep(Duration::from_secs(15));
            broker
        }
        None => Broker::start(&root.join("broker")),
    };
    // Under `cargo xtask ha-check`: time for Home Assistant to show a state before the scenario
    // changes it again, and to reconnect after the broker restarts.
    let settle = |seconds: u64| {
        if fixed_port.is_some() {
            std::thread::sleep(Duration::from_secs(seconds));
        }
    };
    let mqtt = Subscriber::start_on(
        &broker.address(),
        &format!("palmgate/{GATE}/event/#"),
        Some("palmgate-demo-dashboard"),
    );
    let mut demo = Demo {
        palms: Palms::new(&root),
        root: root.clone(),
        issuer: issuer.clone(),
        mqtt,
        broker,
        failures: Vec::new(),
    };

    let (alice_tpl, _) = demo.palms.template(0);
    let (bob_tpl, _) = demo.palms.template(1);
    let (dave_tpl, _) = demo.palms.template(3);
    let (alice, alice_id) = demo.card("alice", &issuer, std::slice::from_ref(&alice_tpl), None);
    let (bob, _) = demo.card("bob", &issuer, std::slice::from_ref(&bob_tpl), None);
    let (carol, _) = demo.card("carol", &foreign, std::slice::from_ref(&alice_tpl), None);
    // Dave's duress slot holds the palm the sensor shows in this demo.
    let (dave, _) = demo.card(
        "dave",
        &demo.issuer.clone(),
        &[dave_tpl, alice_tpl.clone()],
        Some(1),
    );

    // The sensor shows Alice's palm (later captures than the enrolled one).
    let sensor_link = root.join("sensor");
    let _sensor = sensor_simulator(&sensor_link, &demo.palms.captures(0, 3), 5);
    let notify = NotifySocket::bind(&root);
    let log = root.join("palmgate.log");
    let spawned = std::time::Instant::now();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/demo.toml");
    let mut daemon = ChildGuard::spawn(
        "palmgate run",
        Command::new(workspace_binary("palmgate"))
            .args(["run", "--config"])
            .arg(&config)
            .env("PALMGATE__CARD__ISSUER_KEYS", issuer.join("issuer.pub"))
            .env("PALMGATE__CARD__REVOCATION_LIST", root.join("revoked.json"))
            .env("PALMGATE__SENSOR__PORT", &sensor_link)
            .env(
                "PALMGATE__MQTT__URL",
                format!("mqtt://{}", demo.broker.address()),
            )
            .env("PALMGATE__MQTT__OPERATOR_KEYS", &operator_pub)
            .env("PALMGATE__STORAGE__STATE_DIR", root.join("state"))
            .env("PALMGATE__GPIO__SIMULATED_CONTROL", root.join("gpio.sock"))
            .env("PALMGATE__SENSOR__CAPTURE", &capture)
            .env("NOTIFY_SOCKET", &notify.path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(&log)
                    .map(Stdio::from)
                    .unwrap_or_else(|_| Stdio::null()),
            ),
    );
    let ready = notify.wait_for("READY=1", PATIENCE).is_some();
    let start_to_ready = spawned.elapsed();
    demo.expect(
        "the gate reports READY once reader, sensor and doors are up",
        ready,
        "no READY=1",
    );
    if !ready {
        eprintln!("{}", std::fs::read_to_string(&log).unwrap_or_default());
        return ExitCode::FAILURE;
    }

    println!("scenario:");
    let granted = demo.present(&alice, "access.granted");
    demo.expect(
        "Alice (enrolled palm) is granted",
        field(&granted, "card_id") == Some(alice_id.to_string()),
        &granted,
    );

    let denied = demo.present(&bob, "access.denied");
    demo.expect(
        "Bob's card with another palm is denied by the card",
        field(&denied, "reason").as_deref() == Some("no_match"),
        &denied,
    );

    let denied = demo.present(&carol, "access.denied");
    demo.expect(
        "Carol's card from a foreign issuer is denied before capture",
        field(&denied, "reason").as_deref() == Some("card_rejected"),
        &denied,
    );

    let card = VirtualCard::insert(&dave);
    let granted = demo.mqtt.wait_for("/event/access.granted", PATIENCE);
    let alarm = demo.mqtt.wait_for("/event/alarm.duress", PATIENCE);
    card.remove();
    demo.expect(
        "Dave's duress palm opens the door and raises a silent alarm",
        !granted.is_empty() && !alarm.is_empty(),
        &alarm,
    );

    // The door's contact is played through the simulated GPIO's control socket.
    let gpio = root.join("gpio.sock");
    // (The door may still be unlocked from Dave's grant: Alice's grant then extends it, with no
    // new door.unlocked.)
    demo.present(&alice, "access.granted");
    println!("  ..    Alice opens the door and leaves it open");
    let opened = simulated_gpio(&gpio, "input 27 high");
    let prealarm = demo
        .mqtt
        .wait_for("/event/door.held_open_prealarm", PATIENCE);
    let alarm = demo.mqtt.wait_for("/event/door.held_open", PATIENCE);
    settle(3);
    let closed = simulated_gpio(&gpio, "input 27 low");
    demo.mqtt.wait_for("/event/door.closed", PATIENCE);
    demo.expect(
        "a door held open raises the pre-alarm, then the alarm",
        opened == "ok"
            && closed == "ok"
            && field(&prealarm, "severity").as_deref() == Some("warning")
            && field(&alarm, "severity").as_deref() == Some("alarm")
            && field(&alarm, "result").as_deref() == Some("alarm"),
        &alarm,
    );

    println!("  ..    stopping the broker; Alice passes while it is down");
    settle(3);
    demo.broker.stop();
    let card = VirtualCard::insert(&alice);
    std::thread::sleep(Duration::from_secs(3));
    card.remove();
    demo.broker.resume();
    settle(15);
    let granted = demo
        .mqtt
        .wait_for("/event/access.granted", Duration::from_secs(60));
    demo.expect(
        "the grant made while the broker was down is delivered after its restart",
        field(&granted, "card_id") == Some(alice_id.to_string()),
        &granted,
    );

    if latency_rounds > 0 {
        println!(
            "  ..    {latency_rounds} more presentations of Alice's card for the latency figures"
        );
        let mut all_granted = true;
        for _ in 0..latency_rounds {
            let granted = demo.present(&alice, "access.granted");
            all_granted &= field(&granted, "card_id") == Some(alice_id.to_string());
        }
        demo.expect(
            "every latency round is granted",
            all_granted,
            "a round was not granted",
        );
    }

    let topics = Topics::new("palmgate", GATE);
    let revoke = GateCommand::RevocationList {
        version: 1,
        cards: vec![alice_id.clone()],
    };
    let timestamp = now_unix();
    publish(
        &demo.broker.address(),
        &topics.command(revoke.name()),
        &operator.sign(GATE, &revoke, timestamp, b"demo-revocation-1"),
    );
    demo.mqtt.wait_for("/event/revocation.updated", PATIENCE);
    let denied = demo.present(&alice, "access.denied");
    demo.expect(
        "Alice's card, revoked by a signed MQTT command, is denied",
        field(&denied, "reason").as_deref() == Some("card_revoked"),
        &denied,
    );

    // The daemon's resident memory after the whole scenario (steady state for a gate).
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                line.strip_prefix("VmRSS:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0);
    let status = daemon.terminate(PATIENCE);
    demo.expect(
        "the gate stops cleanly on SIGTERM",
        status.success(),
        &status.to_string(),
    );
    std::thread::sleep(Duration::from_millis(500));
    settle(3);
    // Reader mode, on the sensor the first gate has let go of (the revocation was that gate's).
    let panel_site = panel_scene::Site {
        root: &root,
        issuer: &issuer,
        operator_pub: &operator_pub,
        broker: &demo.broker.address(),
        sensor_link: &sensor_link,
        alice: (&alice, &alice_id),
    };
    for (what, held, detail) in panel_scene::run(&panel_site) {
        demo.expect(&what, held, &detail);
    }

    canteen_scene(&mut demo, &sensor_link, &operator_pub);

    // Every event received, as a table; then the summary.
    let mut events: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    let mut received = 0usize;
    for line in demo.mqtt.all().to_vec() {
        let Some((_, payload)) = line.split_once(' ') else {
            continue;
        };
        let Ok(json) = serde_json::from_str::<serde_json::Value>(payload) else {
            continue;
        };
        if let Some(id) = json.get("id").and_then(serde_json::Value::as_u64) {
            received += 1;
            events.insert(id, json);
        }
    }
    println!();
    println!(
        "{:>4}  {:<24}  {:<20}  {:<6}  {:<32}  {:<8}  reason",
        "id", "time", "kind", "door", "card", "result"
    );
    let text = |event: &serde_json::Value, name: &str| {
        event
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("-")
            .to_string()
    };
    for (id, event) in &events {
        println!(
            "{id:>4}  {:<24}  {:<20}  {:<6}  {:<32}  {:<8}  {}",
            text(event, "time"),
            text(event, "kind"),
            text(event, "door"),
            text(event, "card_id"),
            text(event, "result"),
            text(event, "reason")
        );
    }
    let count = |kind: &str| {
        events
            .values()
            .filter(|event| text(event, "kind") == kind)
            .count()
    };
    let alarms = events
        .values()
        .filter(|event| {
            text(event, "kind").starts_with("alarm.") || text(event, "result") == "alarm"
        })
        .count();
    let highest = events.keys().next_back().copied().unwrap_or(0);
    let lost = (1..=highest).filter(|id| !events.contains_key(id)).count();
    let mut decisions: Vec<f64> = events
        .values()
        .filter_map(|event| event.get("latencies")?.get("decision_ms")?.as_f64())
        .collect();
    decisions.sort_by(f64::total_cmp);
    println!();
    if received != events.len() {
        println!(
            "(the broker delivered {} duplicates at QoS 1; counted once)",
            received - events.len()
        );
    }
    if !demo.failures.is_empty() {
        println!("failed expectations: {}", demo.failures.join("; "));
        println!("daemon log: {}", log.display());
        // Keep the working directory for a look.
        let _ = dir.keep();
    }
    println!(
        "daemon: start_to_ready_ms={} rss_mib={:.1}",
        start_to_ready.as_millis(),
        rss_kib as f64 / 1024.0
    );
    println!(
        "demo: granted={} denied={} alarms={alarms} published={} lost={lost} decision_p50_ms={:.1} decision_p99_ms={:.1}",
        count("access.granted"),
        count("access.denied"),
        events.len(),
        percentile(&decisions, 0.5),
        percentile(&decisions, 0.99)
    );
    if demo.failures.is_empty() && lost == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use palmgate::access::PolicyRules;
    use palmgate::event::Timestamp;

    use super::{DINNER_TIME, LUNCH_TIME, canteen_policy, lunch_offset};

    fn period_at(offset: i64, unix_seconds: i64) -> (u32, String) {
        let doors = BTreeSet::from(["main".to_owned()]);
        let rules = PolicyRules::parse(
            &canteen_policy(offset),
            Path::new("canteen-policy.toml"),
            &doors,
        )
        .unwrap_or_else(|error| panic!("offset {offset}: {error}"));
        let (number, name) = rules
            .meal_period_at(Timestamp::from_unix_ms(unix_seconds * 1000))
            .unwrap_or_else(|| panic!("offset {offset}: no meal period open"));
        (number, name.to_owned())
    }

    /// The demo runs at any hour: the lunch policy and the dinner one are accepted, each opens its
    /// period, and dinner comes after lunch (a card refuses a period earlier than one it served).
    #[test]
    fn lunch_then_dinner_the_same_local_day_at_every_minute_of_the_day() {
        let midnight = 1_796_601_600; // 2026-12-07 00:00 UTC
        for minute in 0..24 * 60 {
            let lunch_at = midnight + minute * 60 + 17;
            let offset = lunch_offset(lunch_at);
            let (lunch, lunch_name) = period_at(offset, lunch_at);
            assert_eq!(lunch_name, "lunch", "at minute {minute}");
            // The demo's lunch scenes take seconds; a minute later is still the same period.
            let dinner_at = lunch_at + 60;
            let (dinner, dinner_name) = period_at(offset + DINNER_TIME - LUNCH_TIME, dinner_at);
            assert_eq!(dinner_name, "dinner", "at minute {minute}");
            assert!(
                dinner > lunch,
                "at minute {minute}: dinner {dinner}, lunch {lunch}"
            );
        }
    }
}
