//! Outbox throughput against a real mosquitto on loopback: encrypted write + flush + publish
//! (QoS 1) + delete on PUBACK, and the drain of a 100,000-event backlog.
//!
//! Run: `cargo bench -p palmgate --bench outbox` (needs `mosquitto` installed; `cargo xtask test`
//! installs it). The bench starts its own mosquitto on a free loopback port, configured with a deep
//! per-client queue: with the default (1,000 queued messages) the broker drops messages for the
//! measuring subscriber whenever it lags behind the gate on this 2-core machine, which would be a
//! loss in the measuring instrument, not in the gate. Prints events/s and per-event latencies
//! (median, p99).
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use palmgate::config::{MqttScheme, MqttSettings};
use palmgate::event::{CardId, EventKind, Latencies, NewEvent, Outcome, Timestamp};
use palmgate::mqtt::{Link, LinkOptions};
use palmgate::outbox::{Outbox, OutboxOptions};
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::{mpsc, oneshot};

fn event(n: u64) -> NewEvent {
    NewEvent::new(EventKind::AccessGranted, Timestamp::now())
        .door("main")
        .card(CardId::new(&n.to_be_bytes()).unwrap())
        .result(Outcome::Granted)
        .latencies(Latencies {
            card_ms: Some(12.3),
            match_ms: Some(21.7),
            decision_ms: Some(35.1),
            ..Latencies::default()
        })
}

fn settings(addr: &str, prefix: &str) -> MqttSettings {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    MqttSettings {
        url: format!("mqtt://{addr}"),
        scheme: MqttScheme::Mqtt,
        host: host.into(),
        port: port.parse().expect("port"),
        client_id: format!("{prefix}-gate"),
        ca_file: None,
        cert_file: None,
        key_file: None,
        username: None,
        password: None,
        topic_prefix: prefix.into(),
        keep_alive: Duration::from_secs(30),
        operator_keys: vec![],
        command_max_age: Duration::from_secs(60),
        discovery: false,
        discovery_prefix: "homeassistant".into(),
    }
}

struct Running {
    outbox: Arc<Outbox>,
    stop: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn open(dir: &std::path::Path) -> Arc<Outbox> {
    Arc::new(
        Outbox::open(&OutboxOptions {
            dir: dir.join("outbox"),
            device_key_file: dir.join("device.key"),
            gate: "bench".into(),
            max_events: 1_000_000,
            alarm_percent: 100,
        })
        .expect("outbox"),
    )
}

fn start(outbox: Arc<Outbox>, addr: &str, prefix: &str, dir: &std::path::Path) -> Running {
    let options = LinkOptions {
        gate: "bench".into(),
        gate_name: "bench".into(),
        mqtt: settings(addr, prefix),
        doors: vec![],
        meal_groups: None,
        runtime_dir: dir.join("run"),
        discovery_record: dir.join("discovery.json"),
    };
    let (link, handles) = Link::new(options, outbox.clone()).expect("link");
    std::mem::forget(handles);
    let (flush_stop, flush_rx) = oneshot::channel::<()>();
    let (link_stop, link_rx) = oneshot::channel::<()>();
    let flusher = tokio::spawn({
        let outbox = outbox.clone();
        async move {
            outbox
                .run_flusher(async { flush_rx.await.unwrap_or(()) })
                .await
        }
    });
    let link = tokio::spawn(async move {
        link.run(async { link_rx.await.unwrap_or(()) })
            .await
            .expect("link")
    });
    Running {
        outbox,
        stop: vec![link_stop, flush_stop],
        tasks: vec![link, flusher],
    }
}

impl Running {
    async fn stop(self) {
        for stop in self.stop {
            let _ = stop.send(());
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A subscriber that reports (event id, receive instant).
async fn subscribe(addr: &str, prefix: &str) -> mpsc::UnboundedReceiver<(u64, Instant)> {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut options = MqttOptions::new(format!("{prefix}-sub"), host, port.parse().expect("port"));
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let filter = format!("{prefix}/bench/event/#");
    tokio::spawn(async move {
        let mut ready = Some(ready_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::ConnAck(_))) => {
                    client
                        .subscribe(filter.clone(), QoS::AtLeastOnce)
                        .await
                        .expect("subscribe");
                }
                Ok(Event::Incoming(Incoming::SubAck(_))) => {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
                Ok(Event::Incoming(Incoming::Publish(p))) => {
                    let now = Instant::now();
                    let json: serde_json::Value = serde_json::from_slice(&p.payload).expect("json");
                    let _ = tx.send((json["id"].as_u64().expect("id"), now));
                }
                Ok(_) => {}
                Err(error) => panic!("bench subscriber: {error}"),
            }
            if tx.is_closed() {
                break;
            }
        }
    });
    ready_rx.await.expect("subscribed");
    rx
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn sustained(addr: &str, events: u64, pace: Option<Duration>) -> (f64, Vec<f64>, Vec<f64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!(
        "pgbench-{}-{}",
        std::process::id(),
        Timestamp::now().unix_ms()
    );
    let mut received = subscribe(addr, &prefix).await;
    let running = start(open(dir.path()), addr, &prefix, dir.path());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut appended_at = HashMap::with_capacity(events as usize);
    let mut append_us = Vec::with_capacity(events as usize);
    let start = Instant::now();
    let mut ticker = pace.map(tokio::time::interval);
    for n in 0..events {
        if let Some(ticker) = ticker.as_mut() {
            ticker.tick().await;
        }
        let t0 = Instant::now();
        let stored = running.outbox.append(event(n)).expect("append");
        append_us.push(t0.elapsed().as_secs_f64() * 1e6);
        appended_at.insert(stored.id, t0);
        if n % 256 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut latency_ms = Vec::with_capacity(events as usize);
    let mut seen = std::collections::HashSet::new();
    while seen.len() < events as usize {
        let (id, at) = tokio::time::timeout(Duration::from_secs(60), received.recv())
            .await
            .expect("events keep arriving")
            .expect("subscriber");
        if seen.insert(id) {
            latency_ms.push(at.duration_since(appended_at[&id]).as_secs_f64() * 1e3);
        }
    }
    while !running.outbox.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let rate = events as f64 / start.elapsed().as_secs_f64();
    running.stop().await;
    (rate, latency_ms, append_us)
}

async fn backlog(addr: &str, events: u64) -> (f64, f64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let prefix = format!(
        "pgbench-backlog-{}-{}",
        std::process::id(),
        Timestamp::now().unix_ms()
    );
    let outbox = open(dir.path());
    let fill = Instant::now();
    for n in 0..events {
        outbox.append(event(n)).expect("append");
    }
    outbox.flush().expect("flush");
    let fill_rate = events as f64 / fill.elapsed().as_secs_f64();
    let mut received = subscribe(addr, &prefix).await;
    let start = Instant::now();
    let running = start_link(outbox, addr, &prefix, dir.path());
    let mut seen = std::collections::HashSet::new();
    while seen.len() < events as usize {
        let (id, _) = tokio::time::timeout(Duration::from_secs(60), received.recv())
            .await
            .expect("backlog keeps draining")
            .expect("subscriber");
        seen.insert(id);
    }
    while !running.outbox.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drain_rate = events as f64 / start.elapsed().as_secs_f64();
    let lost = (1..=events).filter(|id| !seen.contains(id)).count() as u64;
    running.stop().await;
    (fill_rate, drain_rate, lost)
}

fn start_link(outbox: Arc<Outbox>, addr: &str, prefix: &str, dir: &std::path::Path) -> Running {
    start(outbox, addr, prefix, dir)
}

/// A mosquitto for the bench; killed on drop.
struct Broker {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_broker() -> (Broker, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    // mosquitto started as root drops to the `mosquitto` user: it must read its configuration.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_queued_bytes 0\n"),
    )
    .expect("config");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let binary = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("mosquitto");
    let child = std::process::Command::new(binary)
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the outbox bench needs mosquitto installed (cargo xtask test installs it)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Broker { child, _dir: dir }, format!("127.0.0.1:{port}"))
}

fn main() {
    let (_broker, addr) = start_broker();
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run passes nothing and gets
    // a short smoke run.
    let full = std::env::args().any(|a| a == "--bench");
    let (runs, per_run, backlog_events) = if full {
        (5, 20_000, 100_000)
    } else {
        (1, 2_000, 5_000)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut rates = Vec::new();
        let mut latencies = Vec::new();
        let mut appends = Vec::new();
        for _ in 0..runs {
            let (rate, latency, append) = sustained(&addr, per_run, None).await;
            rates.push(rate);
            latencies.extend(latency);
            appends.extend(append);
        }
        rates.sort_by(f64::total_cmp);
        latencies.sort_by(f64::total_cmp);
        appends.sort_by(f64::total_cmp);
        println!(
            "outbox sustained ({runs} runs x {per_run} events, encrypted write + fsync batches + QoS 1 publish + delete): \
             median {:.0} events/s, min {:.0} events/s",
            percentile(&rates, 0.5),
            rates[0]
        );
        println!(
            "  append() latency: median {:.1} us, p99 {:.1} us; append -> subscriber under this burst: median {:.1} ms, p99 {:.1} ms",
            percentile(&appends, 0.5),
            percentile(&appends, 0.99),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99)
        );
        let paced_events = if full { 5_000 } else { 500 };
        let (_, mut paced, _) = sustained(&addr, paced_events, Some(Duration::from_millis(1))).await;
        paced.sort_by(f64::total_cmp);
        println!(
            "  paced at 1,000 events/s ({paced_events} events): append -> subscriber median {:.2} ms, p99 {:.2} ms",
            percentile(&paced, 0.5),
            percentile(&paced, 0.99)
        );
        let (fill, drain, lost) = backlog(&addr, backlog_events).await;
        println!(
            "outbox backlog of {backlog_events} events: filled at {fill:.0} events/s, drained at {drain:.0} events/s, lost {lost}"
        );
        assert_eq!(lost, 0, "backlog events lost");
    });
}
