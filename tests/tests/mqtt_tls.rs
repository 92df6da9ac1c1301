//! TLS with a client certificate against a real mosquitto (`require_certificate true`): the gate's
//! own rustls 0.23 client (through its Unix-socket bridge) connects and delivers events; a gate
//! whose client certificate, or whose trusted CA, is wrong never connects.

mod mqtt_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use mqtt_support::{Gate, PrivateBroker, Subscriber, free_port, mqtt_settings, unique_prefix};
use palmgate::config::MqttScheme;
use palmgate::event::{EventKind, NewEvent, Outcome, Timestamp};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl runs (package openssl)");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A CA and a certificate it signs (`name.crt`, `name.key`), with an IP SAN for 127.0.0.1.
fn pki(dir: &Path, ca: &str, names: &[&str]) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    for name in names {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        std::fs::write(
            dir.join(format!("{name}.ext")),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("ext");
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "2",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

fn readable(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        std::fs::set_permissions(
            entry.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .expect("chmod");
    }
}

struct Tls {
    broker: PrivateBroker,
    tls_port: u16,
}

fn tls_broker() -> Tls {
    let tls_port = free_port();
    let broker = PrivateBroker::start_with(|dir, plain_port| {
        pki(dir, "ca", &["server", "gate"]);
        pki(dir, "rogue-ca", &["rogue"]);
        readable(dir);
        let d = dir.display();
        format!(
            "per_listener_settings true\n\
             listener {tls_port} 127.0.0.1\nallow_anonymous true\nrequire_certificate true\n\
             cafile {d}/ca.crt\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n\
             listener {plain_port} 127.0.0.1\nallow_anonymous true\n"
        )
    });
    // The plain listener is up (start_with waits for it); wait for the TLS one too.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "TLS listener did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Tls { broker, tls_port }
}

fn tls_gate(tls: &Tls, prefix: &str, ca: &str, client: &str) -> Gate {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut mqtt = mqtt_settings(
        &format!("127.0.0.1:{}", tls.tls_port),
        prefix,
        "gate-1",
        vec![],
    );
    let file = |name: &str| -> PathBuf { tls.broker.dir().join(name) };
    mqtt.url = format!("mqtts://127.0.0.1:{}", tls.tls_port);
    mqtt.scheme = MqttScheme::Mqtts;
    mqtt.ca_file = Some(file(&format!("{ca}.crt")));
    mqtt.cert_file = Some(file(&format!("{client}.crt")));
    mqtt.key_file = Some(file(&format!("{client}.key")));
    Gate::launch(dir, "gate-1", mqtt)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate_delivers_and_wrong_identities_are_kept_out() {
    let _ = palmgate_system_tests::require_mqtt();
    let tls = tls_broker();
    let prefix = unique_prefix("tls");
    let mut sub = Subscriber::connect(
        &tls.broker.addr(),
        &format!("{prefix}-sub"),
        &[format!("{prefix}/gate-1/event/#")],
        false,
    )
    .await;

    let mut gate = tls_gate(&tls, &prefix, "ca", "gate");
    gate.wait_connected().await;
    let event = NewEvent::new(EventKind::ACCESS_GRANTED, Timestamp::now())
        .door("main")
        .result(Outcome::Granted);
    gate.outbox.append(event).expect("append");
    let received = sub
        .next_on("/event/access.granted", Duration::from_secs(15))
        .await;
    assert_eq!(received.json()["id"], 1);
    gate.stop().await;

    // A client certificate from another CA: the broker refuses the handshake.
    let mut rogue = tls_gate(&tls, &format!("{prefix}-rogue"), "ca", "rogue");
    // A gate that does not trust the broker's CA refuses the server.
    let mut distrustful = tls_gate(&tls, &format!("{prefix}-distrust"), "rogue-ca", "gate");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        !*rogue.handles.connected.borrow_and_update(),
        "rogue client certificate accepted"
    );
    assert!(
        !*distrustful.handles.connected.borrow_and_update(),
        "untrusted server accepted"
    );
    rogue.stop().await;
    distrustful.stop().await;
}
