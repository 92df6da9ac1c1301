//! Fuzz the MQTT command parser and verifier: any payload on any command topic, retained or not,
//! must be refused or accepted without panicking, and a refusal must name a command only when
//! the topic named a known one.
//!
//! Input: the first byte picks the topic's command name (the four known ones, or an unknown one)
//! and whether the message is retained; the rest is the payload. The verifier has one (random)
//! operator key: the envelope, nonce, argument and signature-format checks are what a fuzzer can
//! reach; the checks after the signature are covered by the unit tests and proptests.
//!
//! Run (nightly or `RUSTC_BOOTSTRAP=1`): `cargo fuzz run command` in `daemon/`.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use palmgate::mqtt::command::{MemoryReplayCache, Verdict};
use palmgate::mqtt::{Command, CommandVerifier, OperatorSigner};

/// A fixed "now" for the verifier (the corpus's commands are signed for it).
const NOW: i64 = 1_795_575_784;

fn verifier() -> &'static CommandVerifier {
    static VERIFIER: OnceLock<CommandVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let signer = OperatorSigner::generate().expect("operator key");
        CommandVerifier::new(
            "gate-1",
            vec![signer.operator_key()],
            Duration::from_secs(60),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let names = Command::NAMES;
    let name = names
        .get(usize::from(selector & 0x07))
        .copied()
        .unwrap_or("open_sesame");
    let retained = selector & 0x80 != 0;
    let mut replay = MemoryReplayCache::default();
    match verifier().verify(name, payload, retained, NOW, &mut replay) {
        Verdict::Refuse(refusal) => {
            if let Some(command) = refusal.command {
                assert!(names.contains(&command), "refusal names {command}");
            }
        }
        Verdict::Accept(verified) => assert_eq!(verified.command.name(), name),
        _ => {}
    }
});
