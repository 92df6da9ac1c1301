//! pcscd restarted under a running gate, as a crash (SIGKILL) or a package upgrade (SIGTERM) does:
//! the gate reports the reader unavailable, reconnects by itself, reports it available, and
//! verifies the next card — without a restart of `palmgate run`.
//!
//! Its own test binary: it stops the pcscd every other card test of the run is using.

use palmgate_system_tests::pcscd::OwnedPcscd;
use palmgate_system_tests::reader_lock;
use palmgate_system_tests::site::{PATIENCE, Site};

#[test]
fn the_gate_verifies_the_next_card_after_pcscd_restarts() {
    let _lock = reader_lock();
    let mut pcscd = OwnedPcscd::find();
    let site = Site::new();
    let mut alice = site.alice_at_the_gate("reader-restart", 5, |config| config);
    alice.present("access.granted");
    for signal in ["-KILL", "-TERM"] {
        pcscd.stop(signal);
        let gone = alice.mqtt.wait_for("/event/reader.unavailable", PATIENCE);
        assert!(gone.contains("\"service_unavailable\""), "{signal}: {gone}");
        pcscd.start();
        alice.mqtt.wait_for("/event/reader.available", PATIENCE);
        alice.present("access.granted");
    }
    let log = alice.stop();
    assert!(
        log.contains("card reader unavailable") && log.contains("card reader available"),
        "the daemon's log tells the story:\n{log}"
    );
}
