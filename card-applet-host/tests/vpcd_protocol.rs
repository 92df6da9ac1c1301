//! The virtual card's vpcd protocol against a fake vpcd (a TCP listener in this test): ATR,
//! APDUs, power control, reconnection after vpcd drops, shutdown.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use palmgate_card::applet::Applet;
use palmgate_card::host::platform::{MemoryStorage, SystemClock, system_rng};
use palmgate_card::host::vpcd::{
    ATR, CONTROL_ATR, CONTROL_FOLLOW_UP, CONTROL_POWER_OFF, CONTROL_POWER_ON, CONTROL_RESET,
    Shutdown, serve,
};
use palmgate_card::protocol::AID;

fn send(stream: &mut TcpStream, body: &[u8]) {
    let mut message = (body.len() as u16).to_be_bytes().to_vec();
    message.extend_from_slice(body);
    stream.write_all(&message).unwrap();
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut body).unwrap();
    body
}

fn select() -> Vec<u8> {
    [
        &[0x00, 0xA4, 0x04, 0x00, AID.len() as u8][..],
        &AID,
        &[0x00],
    ]
    .concat()
}

#[test]
fn serves_atr_and_apdus_reconnects_and_shuts_down() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let shutdown = Shutdown::new();
    let card_shutdown = shutdown.clone();
    let card = std::thread::spawn(move || {
        let mut applet = Applet::factory(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
        );
        let mut connections = 0;
        serve(&address, &mut applet, &card_shutdown, |event| {
            if matches!(event, palmgate_card::host::vpcd::VpcdEvent::Connected) {
                connections += 1;
            }
        });
        connections
    });

    let (mut vpcd, _) = listener.accept().unwrap();
    vpcd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    send(&mut vpcd, &[CONTROL_POWER_ON]);
    send(&mut vpcd, &[CONTROL_ATR]);
    assert_eq!(receive(&mut vpcd), ATR);
    send(&mut vpcd, &select());
    let answer = receive(&mut vpcd);
    assert_eq!(answer.len(), 24 + 2);
    assert_eq!(answer[24..], [0x90, 0x00]);
    // Power off: the selection is lost.
    send(&mut vpcd, &[CONTROL_POWER_OFF]);
    send(&mut vpcd, &[0x80, 0xCA, 0x01, 0x01, 0x00]);
    assert_eq!(receive(&mut vpcd), [0x69, 0x85]);
    // A malformed APDU gets a status word, not a dropped connection.
    send(&mut vpcd, &[0x80, 0xCA, 0x01]);
    assert_eq!(receive(&mut vpcd), [0x67, 0x00]);

    // vpcd goes away: the card connects again.
    drop(vpcd);
    let (mut vpcd, _) = listener.accept().unwrap();
    vpcd.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    send(&mut vpcd, &select());
    assert_eq!(receive(&mut vpcd)[24..], [0x90, 0x00]);

    shutdown.trigger();
    assert_eq!(card.join().unwrap(), 2);
}

/// A 1-byte message is either a vpcd control code or a client's 1-byte APDU (vpcd passes both the
/// same way). Every one that vpcd waits on gets an answer; real control codes get none.
#[test]
fn one_byte_apdus_are_answered_and_control_codes_are_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let shutdown = Shutdown::new();
    let card_shutdown = shutdown.clone();
    let card = std::thread::spawn(move || {
        let mut applet = Applet::factory(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
        );
        serve(&address, &mut applet, &card_shutdown, |_| {});
    });
    let (mut vpcd, _) = listener.accept().unwrap();
    vpcd.set_read_timeout(Some(CONTROL_FOLLOW_UP * 3)).unwrap();

    // Power on, then the ATR request vpcd sends right after it: only the ATR comes back.
    send(&mut vpcd, &[CONTROL_POWER_ON]);
    send(&mut vpcd, &[CONTROL_ATR]);
    assert_eq!(receive(&mut vpcd), ATR);
    send(&mut vpcd, &select());
    assert_eq!(receive(&mut vpcd)[24..], [0x90, 0x00]);

    // Bytes vpcd never sends as control codes are APDUs: answered at once.
    for byte in [0x03, 0x80, 0xFF] {
        send(&mut vpcd, &[byte]);
        assert_eq!(receive(&mut vpcd), [0x67, 0x00], "{byte:02X}");
    }
    // `00`, `02`, `01` followed by silence: vpcd is waiting, so they were APDUs: `6700`, and
    // the card was not reset (still selected).
    for byte in [CONTROL_POWER_OFF, CONTROL_RESET, CONTROL_POWER_ON] {
        let sent = std::time::Instant::now();
        send(&mut vpcd, &[byte]);
        assert_eq!(receive(&mut vpcd), [0x67, 0x00], "{byte:02X}");
        assert!(
            sent.elapsed() >= CONTROL_FOLLOW_UP,
            "{byte:02X} answered before the wait"
        );
        send(&mut vpcd, &[0x80, 0xCA, 0x01, 0x01, 0x00]);
        assert_eq!(receive(&mut vpcd)[24..], [0x90, 0x00], "{byte:02X}");
    }
    // The ATR request as a client's APDU: the answer's status word is `6700`.
    send(&mut vpcd, &[CONTROL_ATR]);
    let atr = receive(&mut vpcd);
    assert_eq!(atr[atr.len() - 2..], [0x67, 0x00]);

    // A real reset (followed by vpcd's ATR request): no answer to it, the selection is gone.
    send(&mut vpcd, &[CONTROL_RESET]);
    send(&mut vpcd, &[CONTROL_ATR]);
    assert_eq!(receive(&mut vpcd), ATR);
    send(&mut vpcd, &[0x80, 0xCA, 0x01, 0x01, 0x00]);
    assert_eq!(receive(&mut vpcd), [0x69, 0x85]);

    shutdown.trigger();
    card.join().unwrap();
}
