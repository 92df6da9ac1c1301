//! The serial task over in-memory lines: a line that fails is reported once, the PD keeps taking
//! requests while the port is closed, and a reopened port serves the same PD.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;
use crate::credential::{Credential, WiegandFormat};
use crate::osdp::command::{Command, Poll};
use crate::osdp::packet::{Outgoing, Packet};
use crate::osdp::pd::{MemoryStore, PdConfig, Random};
use crate::osdp::reply::{self, Identity};

const ADDRESS: u8 = 1;
const PATIENCE: Duration = Duration::from_secs(5);

/// Hands out prepared lines in order; `None` fails like an unplugged adapter.
struct Plugs(VecDeque<Option<DuplexStream>>);

impl Opener for Plugs {
    type Line = DuplexStream;

    fn open(&mut self, _baud: u32) -> Result<DuplexStream, SerialError> {
        self.0
            .pop_front()
            .flatten()
            .ok_or_else(|| SerialError::Io(std::io::Error::from(std::io::ErrorKind::NotFound)))
    }
}

fn pd() -> Pd {
    let random: Random = Box::new(|| Some([7; 8]));
    Pd::new(
        PdConfig {
            address: ADDRESS,
            baud: 9600,
            identity: Identity {
                vendor: [0x5A, 0x47, 0x01],
                model: 1,
                version: 1,
                serial: 1,
                firmware: [0, 1, 0],
            },
            inputs: 1,
            require_secure: false,
            install_mode: false,
        },
        None,
        Box::new(MemoryStore::default()),
        random,
    )
}

/// Sends a poll with `sequence` as the CP and returns the PD's reply.
async fn poll(cp: &mut DuplexStream, sequence: u8) -> Packet {
    let (code, data) = Command::Poll(Poll).encode();
    let bytes = Outgoing {
        mark: true,
        address: ADDRESS,
        sequence,
        security: None,
        code,
        data: &data,
    }
    .encode(|_| [0; 4]);
    cp.write_all(&bytes).await.expect("write poll");
    let mut deframer = Deframer::new();
    let mut buffer = [0u8; 256];
    loop {
        if let Some(reply) = deframer.next_packet() {
            return reply.expect("a valid reply");
        }
        let count = tokio::time::timeout(PATIENCE, cp.read(&mut buffer))
            .await
            .expect("a reply in time")
            .expect("read reply");
        assert!(count > 0, "the PD closed the line");
        deframer.push(&buffer[..count]);
    }
}

async fn next(events: &mut mpsc::UnboundedReceiver<LinkEvent>) -> LinkEvent {
    tokio::time::timeout(PATIENCE, events.recv())
        .await
        .expect("an event in time")
        .expect("the task runs")
}

#[tokio::test]
async fn a_lost_line_is_reported_once_and_a_reopened_one_delivers_what_was_queued() {
    let (first_pd, mut first_cp) = tokio::io::duplex(1024);
    let (second_pd, mut second_cp) = tokio::io::duplex(1024);
    let plugs = Plugs(VecDeque::from([None, Some(second_pd)]));
    let (requests, requests_rx) = mpsc::channel(8);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(plugs, first_pd, pd(), requests_rx, events_tx));

    assert_eq!(poll(&mut first_cp, 0).await.code, reply::ack::CODE);
    assert!(matches!(next(&mut events).await, LinkEvent::PanelHeard));
    assert_eq!(poll(&mut first_cp, 1).await.code, reply::ack::CODE);

    drop(first_cp);
    assert!(matches!(
        next(&mut events).await,
        LinkEvent::Lost(SerialError::Closed)
    ));
    // Down: the card data is still taken, a reopen while it is already open is ignored.
    let credential = Credential::new(WiegandFormat::H10301, 12, 3456).expect("fits");
    requests
        .send(PdRequest::Present(credential.bits()))
        .await
        .expect("taken");
    requests.send(PdRequest::Reopen).await.expect("taken");
    assert!(matches!(
        next(&mut events).await,
        LinkEvent::OpenFailed(SerialError::Io(_))
    ));
    requests.send(PdRequest::Reopen).await.expect("taken");
    assert!(matches!(next(&mut events).await, LinkEvent::Opened));
    requests.send(PdRequest::Reopen).await.expect("taken");

    // The panel starts over at sequence 0 and collects the read queued while the port was shut.
    let raw = poll(&mut second_cp, 0).await;
    assert_eq!(raw.code, reply::raw::CODE, "the queued card data: {raw:?}");
    assert!(matches!(next(&mut events).await, LinkEvent::PanelHeard));
    assert!(matches!(
        next(&mut events).await,
        LinkEvent::Pd(PdEvent::CardDelivered { bits: 26 })
    ));

    drop(requests);
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the task ends when the gate's side closes")
        .expect("no panic");
    assert!(
        events.recv().await.is_none(),
        "nothing else was reported (the ignored reopen included)"
    );
}
