//! The virtual card's side of vsmartcard's vpcd protocol.
//!
//! vpcd (the driver inside pcscd) listens on TCP; the virtual card connects to it. Every message
//! in both directions is a 2-byte big-endian length followed by that many bytes. From vpcd, a
//! 1-byte message is a control code — `00` power off, `01` power on, `02` reset, `04` send ATR —
//! and anything longer is a command APDU (vsmartcard `vpcd.c`: `vicc_poweroff`, `vicc_poweron`,
//! `vicc_reset` send their code and read nothing; `vicc_getatr` and `vicc_transmit` read one
//! answer; `IFDHPowerICC` follows power on / reset with an ATR request at once, and pcscd polls
//! presence with an ATR request about every 400 ms).
//!
//! vpcd also passes a client's 1-byte APDU unchanged, so a 1-byte message is ambiguous; the
//! card answers so that nobody waits forever ([`Ambiguous`]):
//! - `00` / `01` / `02`: vpcd waits for nothing after a real control code but always sends
//!   something soon after (the ATR request of power on / reset, the next presence poll). So the
//!   card waits up to [`CONTROL_FOLLOW_UP`] for the next message: if one comes, the byte was a
//!   control code (power off / on / reset: the applet's volatile state is reset); if none does,
//!   vpcd is blocked waiting for an answer, so it was an APDU: the card answers `6700`.
//! - `04`: vpcd waits for the ATR (presence polling depends on it), so the card sends the ATR; the
//!   ATR is built to end in `67 00`, so a client that sent the 1-byte APDU `04` reads status word
//!   `6700` (wrong length).
//! - any other byte: vpcd never sends it as a control code, so it is an APDU: `6700`.
//!
//! We keep our own small loop instead of the `vpicc` crate because vpcd writes the length and the
//! body in separate segments: with delayed ACKs each APDU then waits ~40 ms, so `TCP_QUICKACK` must
//! be set before *every* read (Linux clears it again); we also need a shutdown hook and reconnection,
//! and want the 2-byte length and the body in one write.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::SockRef;

use crate::applet::{Applet, Clock, ResponseBuffer, Storage};
use crate::protocol::StatusWord;

/// Control code: power off.
pub const CONTROL_POWER_OFF: u8 = 0x00;
/// Control code: power on.
pub const CONTROL_POWER_ON: u8 = 0x01;
/// Control code: reset.
pub const CONTROL_RESET: u8 = 0x02;
/// Control code: send the ATR.
pub const CONTROL_ATR: u8 = 0x04;

/// ATR of the virtual card: `3B 8A 80 01`, historical bytes `"palmgate" 6B 67`, TCK `00`
/// (T=1). The last historical byte (`67`) and the `6B` that makes the TCK `00` are chosen so that
/// the ATR read as a response APDU ends in status word `6700`: vpcd cannot tell the ATR request
/// from a client's 1-byte APDU `04`, and that client must see an error, not success.
pub const ATR: [u8; 15] = atr();

const fn atr() -> [u8; 15] {
    let mut atr = [
        0x3B, 0x8A, 0x80, 0x01, b'p', b'a', b'l', b'm', b'g', b'a', b't', b'e', 0x6B, 0x67, 0,
    ];
    let mut tck = 0u8;
    let mut i = 1;
    while i < 14 {
        tck ^= atr[i];
        i += 1;
    }
    atr[14] = tck;
    atr
}

/// How long the card waits after a 1-byte `00` / `01` / `02` for vpcd's next message before
/// deciding the byte was a client's APDU (vpcd polls presence about every 400 ms; power on and
/// reset are followed by an ATR request at once).
pub const CONTROL_FOLLOW_UP: Duration = Duration::from_millis(1500);

/// What a 1-byte message from vpcd turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambiguous {
    /// A control code: the card's power or reset (volatile state reset), no answer.
    Control,
    /// A client's 1-byte APDU: answered `6700`.
    Apdu,
}

/// Delay between connection attempts while vpcd is not reachable.
pub const RECONNECT_DELAY: Duration = Duration::from_millis(200);

/// Stops [`serve`] from another thread (e.g. a signal handler thread).
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
    stream: Arc<Mutex<Option<TcpStream>>>,
}

impl Shutdown {
    /// A new handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks `serve` to return; unblocks a read in progress.
    pub fn trigger(&self) {
        self.requested.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.stream.lock()
            && let Some(stream) = guard.as_ref()
        {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Whether shutdown was requested.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    fn register(&self, stream: Option<&TcpStream>) {
        if let Ok(mut guard) = self.stream.lock() {
            *guard = stream.and_then(|stream| stream.try_clone().ok());
        }
    }
}

/// What [`serve`] puts behind vpcd: a card that answers APDUs and can be power cycled. The
/// applet is one; `palmgate-vcard --applet-version` wraps it to answer as an older applet would.
pub trait VirtualCard {
    /// Power off and on: what the card keeps in RAM (a secure session) is gone.
    fn reset(&mut self);
    /// Answers `command`: `body` (cleared first) gets the response data, then the status word.
    fn respond(&mut self, command: &[u8], body: &mut Vec<u8>);
}

impl<S: Storage, R: rand_core::CryptoRng, C: Clock> VirtualCard for Applet<S, R, C> {
    fn reset(&mut self) {
        Applet::reset(self);
    }

    fn respond(&mut self, command: &[u8], body: &mut Vec<u8>) {
        let mut response = ResponseBuffer::new();
        let status = self.process(command, &mut response);
        body.clear();
        body.extend_from_slice(response.as_slice());
        body.extend_from_slice(&status.to_bytes());
    }
}

/// Events reported by [`serve`] (for logging by the binary).
#[derive(Debug)]
pub enum VpcdEvent<'a> {
    /// Connected to vpcd.
    Connected,
    /// The connection ended (vpcd went away, or an I/O error).
    Disconnected(&'a std::io::Error),
}

/// Connects to vpcd at `address` and serves the applet until `shutdown` is triggered,
/// reconnecting whenever vpcd drops the connection. A lost connection is a power loss for the
/// card (volatile state is reset).
pub fn serve(
    address: &str,
    applet: &mut impl VirtualCard,
    shutdown: &Shutdown,
    mut on_event: impl FnMut(VpcdEvent<'_>),
) {
    while !shutdown.is_requested() {
        // A bounded connect: vpcd's backlog is tiny, and a SYN left unanswered must not keep us
        // from noticing a shutdown request.
        let stream = match connect(address) {
            Ok(stream) => stream,
            Err(_) => {
                std::thread::sleep(RECONNECT_DELAY);
                continue;
            }
        };
        shutdown.register(Some(&stream));
        if shutdown.is_requested() {
            break;
        }
        on_event(VpcdEvent::Connected);
        let result = run_connection(stream, applet);
        applet.reset();
        shutdown.register(None);
        if let Err(error) = result
            && !shutdown.is_requested()
        {
            on_event(VpcdEvent::Disconnected(&error));
            std::thread::sleep(RECONNECT_DELAY);
        }
    }
}

/// Longest wait for vpcd to accept the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

fn connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last_error =
        std::io::Error::new(std::io::ErrorKind::NotFound, "address resolves to nothing");
    for socket_address in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&socket_address, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

/// After a 1-byte `00` / `01` / `02`: waits up to `wait` for vpcd's next message. A message
/// (or the end of the connection) means the byte was a control code; silence means vpcd is
/// waiting for an answer, so it was an APDU.
fn classify_power_byte(stream: &TcpStream, wait: Duration) -> std::io::Result<Ambiguous> {
    stream.set_read_timeout(Some(wait))?;
    let mut first = [0u8; 1];
    let peeked = stream.peek(&mut first);
    stream.set_read_timeout(None)?;
    match peeked {
        Ok(_) => Ok(Ambiguous::Control),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(Ambiguous::Apdu)
        }
        Err(error) => Err(error),
    }
}

fn read_message(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<()> {
    SockRef::from(&*stream).set_tcp_quickack(true)?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length)?;
    buffer.resize(usize::from(u16::from_be_bytes(length)), 0);
    SockRef::from(&*stream).set_tcp_quickack(true)?;
    stream.read_exact(buffer)
}

fn write_message(stream: &mut TcpStream, body: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
    let length = u16::try_from(body.len()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message longer than 65535 bytes",
        )
    })?;
    out.clear();
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(body);
    stream.write_all(out)
}

fn run_connection(mut stream: TcpStream, applet: &mut impl VirtualCard) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut message = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    let mut body = Vec::with_capacity(1024);
    loop {
        read_message(&mut stream, &mut message)?;
        match message.as_slice() {
            [] => {}
            [CONTROL_POWER_OFF] | [CONTROL_POWER_ON] | [CONTROL_RESET] => {
                SockRef::from(&stream).set_tcp_quickack(true)?;
                match classify_power_byte(&stream, CONTROL_FOLLOW_UP)? {
                    Ambiguous::Control => applet.reset(),
                    Ambiguous::Apdu => {
                        write_message(&mut stream, &StatusWord::WrongLength.to_bytes(), &mut out)?
                    }
                }
            }
            [CONTROL_ATR] => write_message(&mut stream, &ATR, &mut out)?,
            // vpcd sends no other control code: a client's 1-byte APDU, malformed.
            [_] => write_message(&mut stream, &StatusWord::WrongLength.to_bytes(), &mut out)?,
            command => {
                applet.respond(command, &mut body);
                write_message(&mut stream, &body, &mut out)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_checksum_makes_the_xor_zero() {
        assert_eq!(ATR[..4], [0x3B, 0x8A, 0x80, 0x01]);
        assert_eq!(ATR[1..].iter().fold(0u8, |acc, b| acc ^ b), 0);
        // T0's low nibble counts the historical bytes between TD2 and TCK.
        assert_eq!(usize::from(ATR[1] & 0x0F), ATR.len() - 4 - 1);
    }

    #[test]
    fn the_atr_read_as_a_response_apdu_is_wrong_length() {
        assert_eq!(
            StatusWord::from_response(&ATR).map(|(status, _)| status),
            Some(StatusWord::WrongLength)
        );
    }
}
