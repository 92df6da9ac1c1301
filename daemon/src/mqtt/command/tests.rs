use super::*;

const NOW: i64 = 1_795_575_784;
const NONCE: [u8; 16] = [0x11; 16];

fn unlock() -> Command {
    Command::Unlock {
        door: "main".into(),
        duration_s: Some(5),
    }
}

fn setup() -> (OperatorSigner, CommandVerifier, MemoryReplayCache) {
    let signer = OperatorSigner::generate().expect("key");
    let verifier = CommandVerifier::new(
        "gate-1",
        vec![signer.operator_key()],
        Duration::from_secs(60),
    );
    (signer, verifier, MemoryReplayCache::default())
}

fn reason(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Refuse(refusal) => refusal.reason.as_str(),
        Verdict::Accept(_) => "accepted",
        Verdict::AlreadyHandled => "already_handled",
    }
}

#[test]
fn canonical_message_byte_vector() {
    let message = canonical_message("g", &Command::Lockdown { door: None }, 5, &[0xab]);
    let mut expected = Vec::new();
    for field in ["palmgate-command-v1", "g", "lockdown", "door=*", "5", "ab"] {
        expected.extend_from_slice(&(field.len() as u32).to_be_bytes());
        expected.extend_from_slice(field.as_bytes());
    }
    assert_eq!(message, expected);
    assert_eq!(&message[..4], &[0, 0, 0, 19]);
    // Length prefixes keep field boundaries: moving a character between fields changes bytes.
    assert_ne!(
        canonical_message("ga", &Command::Lockdown { door: None }, 5, &[0xab]),
        canonical_message(
            "g",
            &Command::Lockdown {
                door: Some("a".into())
            },
            5,
            &[0xab]
        )
    );
}

#[test]
fn a_signed_fresh_command_is_accepted_once() {
    let (signer, verifier, mut cache) = setup();
    let payload = signer.sign("gate-1", &unlock(), NOW - 10, &NONCE);
    match verifier.verify("unlock", &payload, false, NOW, &mut cache) {
        Verdict::Accept(verified) => {
            assert_eq!(verified.command, unlock());
            assert_eq!(verified.operator, signer.operator_key().fingerprint());
        }
        other => panic!("refused: {other:?}"),
    }
    assert_eq!(
        reason(verifier.verify("unlock", &payload, false, NOW, &mut cache)),
        "replayed"
    );
    // The broker's retained copy of a handled command is ignored, not reported.
    assert_eq!(
        reason(verifier.verify("unlock", &payload, true, NOW + 5, &mut cache)),
        "already_handled"
    );
}

#[test]
fn refusal_table() {
    let (signer, verifier, _) = setup();
    let other = OperatorSigner::generate().expect("key");
    let signed = |command: &Command, ts: i64| signer.sign("gate-1", command, ts, &NONCE);
    let edit = |payload: Vec<u8>, f: &dyn Fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        f(&mut json);
        serde_json::to_vec(&json).expect("json")
    };
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "unsigned",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| {
                j.as_object_mut().expect("object").remove("signature");
            }),
        ),
        (
            "bad_signature",
            "unlock",
            other.sign("gate-1", &unlock(), NOW, &NONCE),
        ),
        (
            "bad_signature",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| {
                j["args"]["door"] = "back".into();
            }),
        ),
        (
            "bad_signature",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| {
                j["timestamp"] = (NOW + 1).into();
            }),
        ),
        (
            "bad_signature",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| j["signature"] = "zz".into()),
        ),
        ("stale", "unlock", signed(&unlock(), NOW - 61)),
        ("from_future", "unlock", signed(&unlock(), NOW + 31)),
        (
            "wrong_gate",
            "unlock",
            signer.sign("gate-2", &unlock(), NOW, &NONCE),
        ),
        ("topic_mismatch", "lockdown", signed(&unlock(), NOW)),
        ("unknown_command", "open_sesame", signed(&unlock(), NOW)),
        ("malformed", "unlock", b"UNLOCK".to_vec()),
        (
            "bad_nonce",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| j["nonce"] = "00".into()),
        ),
        (
            "bad_nonce",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| j["nonce"] = "not hex".into()),
        ),
        (
            "malformed",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| j["extra"] = 1.into()),
        ),
        (
            "invalid_arguments",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| {
                j["args"]["duration_s"] = 0.into();
            }),
        ),
        (
            "invalid_arguments",
            "unlock",
            edit(signed(&unlock(), NOW), &|j| {
                j["args"] = serde_json::json!({});
            }),
        ),
        ("too_large", "unlock", vec![b' '; MAX_COMMAND_BYTES + 1]),
    ];
    for (expected, topic, payload) in cases {
        let mut cache = MemoryReplayCache::default();
        let verdict = verifier.verify(topic, &payload, false, NOW, &mut cache);
        assert_eq!(
            reason(verdict),
            expected,
            "payload {}",
            String::from_utf8_lossy(&payload)
        );
        assert!(
            !cache.contains(&NONCE).expect("cache"),
            "a refused command used up its nonce"
        );
    }
}

#[test]
fn der_signatures_and_every_command_verify() {
    let (signer, verifier, mut cache) = setup();
    let commands = [
        unlock(),
        Command::Unlock {
            door: "side".into(),
            duration_s: None,
        },
        Command::Lockdown { door: None },
        Command::Release {
            door: Some("main".into()),
        },
        Command::RevocationList {
            version: 3,
            cards: vec![CardId::from_hex("00112233445566778899aabbccddeeff").expect("id")],
        },
    ];
    for (n, command) in commands.iter().enumerate() {
        let nonce = [n as u8; 16];
        let payload = signer.sign("gate-1", command, NOW, &nonce);
        let verdict = verifier.verify(command.name(), &payload, false, NOW, &mut cache);
        assert!(
            matches!(&verdict, Verdict::Accept(v) if &v.command == command),
            "{verdict:?}"
        );
    }
    // DER form (as `openssl dgst -sha256 -sign` writes it).
    let nonce = [0x77; 16];
    let message = canonical_message("gate-1", &unlock(), NOW, &nonce);
    let signature: Signature = signer.key.sign(&message);
    let payload = serde_json::to_vec(&serde_json::json!({
        "gate": "gate-1", "command": "unlock", "args": {"door": "main", "duration_s": 5},
        "timestamp": NOW, "nonce": hex::encode(nonce),
        "signature": hex::encode(signature.to_der().as_bytes()),
    }))
    .expect("json");
    assert_eq!(
        reason(verifier.verify("unlock", &payload, false, NOW, &mut cache)),
        "accepted"
    );
}

#[test]
fn operator_keys_load_from_pem_with_clear_errors() {
    let signer = OperatorSigner::generate().expect("key");
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("op.pem");
    std::fs::write(&good, signer.public_key_pem()).expect("write");
    let bad = dir.path().join("bad.pem");
    std::fs::write(
        &bad,
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    )
    .expect("write");
    let loaded = OperatorKey::load_all(std::slice::from_ref(&good)).expect("load");
    assert_eq!(loaded[0].fingerprint(), signer.operator_key().fingerprint());
    let error = OperatorKey::load_all(&[good, bad.clone()]).expect_err("bad key");
    assert!(
        error.to_string().contains(&bad.display().to_string()),
        "{error}"
    );
}

#[test]
fn without_operator_keys_everything_is_refused() {
    let signer = OperatorSigner::generate().expect("key");
    let verifier = CommandVerifier::new("gate-1", vec![], Duration::from_secs(60));
    let payload = signer.sign("gate-1", &unlock(), NOW, &NONCE);
    let verdict = verifier.verify(
        "unlock",
        &payload,
        false,
        NOW,
        &mut MemoryReplayCache::default(),
    );
    assert_eq!(reason(verdict), "no_operator_keys");
}

proptest::proptest! {
    #[test]
    fn arbitrary_payloads_never_panic_and_are_refused(
        payload in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        topic in "[a-z_]{0,16}",
    ) {
        let (_, verifier, mut cache) = setup();
        let verdict = verifier.verify(&topic, &payload, false, NOW, &mut cache);
        proptest::prop_assert!(matches!(verdict, Verdict::Refuse(_)));
    }

    #[test]
    fn arbitrary_json_envelopes_never_panic(
        gate in ".{0,8}", command in "[a-z_]{0,16}", ts in proptest::num::i64::ANY,
        nonce in "[0-9a-f]{0,70}", sig in "[0-9a-f]{0,150}", door in ".{0,70}",
    ) {
        let (_, verifier, mut cache) = setup();
        let payload = serde_json::to_vec(&serde_json::json!({
            "gate": gate, "command": command, "args": {"door": door},
            "timestamp": ts, "nonce": nonce, "signature": sig,
        })).expect("json");
        let verdict = verifier.verify(&command, &payload, false, NOW, &mut cache);
        proptest::prop_assert!(matches!(verdict, Verdict::Refuse(_)));
    }
}

#[test]
fn a_retained_revocation_list_is_state_and_may_be_old() {
    let (signer, verifier, mut cache) = setup();
    let list = Command::RevocationList {
        version: 7,
        cards: vec![CardId::from_hex("00112233445566778899aabbccddeeff").expect("id")],
    };
    let old = NOW - 86_400;
    let payload = signer.sign("gate-1", &list, old, &NONCE);
    // Live, a day-old list is stale like any command…
    assert_eq!(
        reason(verifier.verify("revocation_list", &payload, false, NOW, &mut cache)),
        "stale"
    );
    // …but from the broker's retained store it is how an offline gate catches up.
    match verifier.verify("revocation_list", &payload, true, NOW, &mut cache) {
        Verdict::Accept(verified) => assert_eq!(verified.command, list),
        other => panic!("refused: {other:?}"),
    }
    // Redelivered on the next reconnect: silently ignored.
    assert_eq!(
        reason(verifier.verify("revocation_list", &payload, true, NOW + 60, &mut cache)),
        "already_handled"
    );
    // Signature, gate and clock checks still hold for retained lists.
    let other = OperatorSigner::generate().expect("key");
    let forged = other.sign("gate-1", &list, old, &[0x22; 16]);
    assert_eq!(
        reason(verifier.verify("revocation_list", &forged, true, NOW, &mut cache)),
        "bad_signature"
    );
    let future = signer.sign("gate-1", &list, NOW + 31, &[0x33; 16]);
    assert_eq!(
        reason(verifier.verify("revocation_list", &future, true, NOW, &mut cache)),
        "from_future"
    );
    // Actions never get the exemption: a retained old unlock is stale.
    let unlock_payload = signer.sign("gate-1", &unlock(), old, &[0x44; 16]);
    assert_eq!(
        reason(verifier.verify("unlock", &unlock_payload, true, NOW, &mut cache)),
        "stale"
    );
}

#[test]
fn operator_private_keys_load_from_sec1_and_pkcs8_pem() {
    use std::os::unix::fs::PermissionsExt;
    let signer = OperatorSigner::generate().expect("key");
    let pkcs8 = signer.to_pkcs8_pem().expect("pkcs8");
    let sec1 = p256::SecretKey::from(&signer.key)
        .to_sec1_pem(LineEnding::LF)
        .expect("sec1");
    for pem in [pkcs8.as_str(), sec1.as_str()] {
        let loaded = OperatorSigner::from_pem(pem).expect("loads");
        assert_eq!(
            loaded.operator_key().fingerprint(),
            signer.operator_key().fingerprint()
        );
    }
    assert!(OperatorSigner::from_pem(&signer.public_key_pem()).is_err());
    assert!(format!("{signer:?}").contains("REDACTED"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("operator.key");
    std::fs::write(&path, pkcs8.as_bytes()).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let error = OperatorSigner::load(&path).expect_err("world-readable key");
    assert!(error.to_string().contains("chmod 600"), "{error}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(
        OperatorSigner::load(&path)
            .expect("private key")
            .operator_key()
            .fingerprint(),
        signer.operator_key().fingerprint()
    );
}
