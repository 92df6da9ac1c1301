//! Every error prints its cause once: an error either says its cause in its own text or returns
//! it as `source()`, never both (docs/architecture.md, "Errors"). Before, the outbox opened on a
//! file printed "outbox database …: storage I/O: File exists (os error 17): storage I/O: File
//! exists (os error 17): File exists (os error 17)".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::access::{PolicyError, PolicyRules};
use crate::config::files::{BoundedFileError, read_bounded};
use crate::enrol::Refusal;
use crate::error_chain;
use crate::mqtt::oneshot::OneShotError;
use crate::mqtt::tls::TlsError;
use crate::outbox::{DeviceKey, IdMark, Outbox, OutboxError, OutboxOptions, StoreError};

/// `cause` appears exactly once in the printed chain of `error`.
fn says_once(error: &dyn std::error::Error, cause: &str) {
    let chain = error_chain(error);
    assert_eq!(chain.matches(cause).count(), 1, "{cause:?} in {chain:?}");
}

/// A directory with a plain file `file` in it (a path under `file` is "Not a directory").
fn dir_with_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").expect("write");
    (dir, file)
}

#[test]
fn files_that_cannot_be_opened_or_read_say_why_once() {
    let (_dir, file) = dir_with_file();
    let error = read_bounded(&file.join("missing"), 10).expect_err("not a directory");
    assert!(matches!(error, BoundedFileError::Open { .. }), "{error:?}");
    says_once(&error, "Not a directory");
    let error = BoundedFileError::Read {
        path: file.clone(),
        error: std::io::Error::other("disk on fire"),
    };
    says_once(&error, "disk on fire");

    let error = PolicyRules::load(&file.join("policy.toml"), &BTreeSet::new())
        .expect_err("not a directory");
    assert!(matches!(error, PolicyError::Io { .. }), "{error:?}");
    says_once(&error, "Not a directory");
}

#[test]
fn outbox_files_that_cannot_be_used_say_why_once() {
    let (dir, file) = dir_with_file();
    let error = IdMark::open(dir.path()).expect_err("a directory");
    says_once(&error, "Is a directory");
    let error = DeviceKey::load_or_create(&file.join("device.key")).expect_err("not a directory");
    says_once(&error, "Not a directory");

    // The case seen: the outbox's directory is a file.
    let options = OutboxOptions {
        dir: file.clone(),
        device_key_file: dir.path().join("device.key"),
        gate: "gate-1".into(),
        max_events: 10,
        alarm_percent: 50,
    };
    let error = Outbox::open(&options).expect_err("the outbox directory is a file");
    assert!(matches!(error, OutboxError::Database { .. }), "{error:?}");
    says_once(&error, "storage I/O");
    says_once(&error, "os error");

    says_once(
        &StoreError::Io(std::io::Error::other("disk on fire")),
        "disk on fire",
    );
    let error = OutboxError::Database {
        dir: file.clone(),
        error: StoreError::Io(std::io::Error::other("disk on fire")),
    };
    says_once(&error, "disk on fire");
    let error = OutboxError::SetAside {
        path: file,
        error: std::io::Error::other("disk on fire"),
    };
    says_once(&error, "disk on fire");
}

#[test]
fn tls_set_up_failures_say_why_once() {
    let error = TlsError::Socket {
        path: Path::new("/run/palmgate/mqtt-tls.sock").to_owned(),
        error: std::io::Error::other("disk on fire"),
    };
    says_once(&error, "disk on fire");
    let error = TlsError::from(tokio_rustls::rustls::Error::NoCertificatesPresented);
    says_once(
        &error,
        &tokio_rustls::rustls::Error::NoCertificatesPresented.to_string(),
    );
    let error = OneShotError::BridgeDir(std::io::Error::other("disk on fire"));
    says_once(&error, "disk on fire");
}

#[test]
fn a_foreign_card_says_why_its_certificate_was_refused_once() {
    use palmgate_card::host::CardError;
    use palmgate_card::protocol::cert::CertError;
    let error = Refusal::ForeignCard {
        issuer: PathBuf::from("/etc/palmgate/issuers"),
        source: CardError::Certificate(CertError::UnknownIssuer),
    };
    says_once(&error, "card certificate refused");
    says_once(&error, &CertError::UnknownIssuer.to_string());
}
