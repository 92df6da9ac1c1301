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
    ATR, CONTROL_ATR, CONTROL_POWER_OFF, CONTROL_POWER_ON, Shutdown, serve,
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
