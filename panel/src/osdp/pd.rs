//! The peripheral device as an I/O-free machine: a received packet in, the reply bytes and what
//! happened out. The serial task ([`super::serial`]) only moves bytes.
//!
//! Rules it keeps:
//! - It answers only its address (and the broadcast address), always in the sequence number of
//!   the command; a command repeating the previous sequence number gets the previous reply again
//!   (the CP lost it); sequence 0 restarts the link and drops any secure channel.
//! - Secure channel: `osdp_CHLNG` with SCBK-D is accepted only in install mode; a wrong server
//!   cryptogram, a bad MAC or bad padding drops the session and is answered with NAK 0x06 and
//!   reported ([`SecureRefusal`]). `osdp_KEYSET` is accepted only inside a session; the new key
//!   is stored first ([`PdStore`]), acknowledged inside the old session, then install mode ends.
//! - `osdp_COMSET` is stored first too ([`PdStore`]: the new address and speed survive a
//!   restart), answered under the old settings, then applied; a failed store is a NAK.
//! - Card data waits for a poll at most [`CARD_READ_TTL`]: a read the panel did not collect in
//!   time is dropped ([`PdEvent::CardExpired`]), never delivered late.
//! - With `require_secure`, only `osdp_ID`, `osdp_CAP` and the handshake work outside a session:
//!   card data never crosses the bus in clear.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::command::{self, Command, CommandError};
use super::nak;
use super::packet::{BROADCAST, Outgoing, Packet, PacketError, REPLY_BIT, SecurityBlock, scs};
use super::reply::{self, Capability, Identity, pdcap::function};
use super::secure::{self, Key, SessionKeys};
use crate::credential::WiegandBits;

/// A secure channel session with no valid secured command for this long is dropped (the value
/// libosdp's PD uses); the CP then sets up a new one.
pub const SESSION_TIMEOUT: Duration = Duration::from_secs(8);

/// A card read not collected by a poll within this time is dropped: a panel that comes back
/// minutes later must not open the door for someone long gone.
pub const CARD_READ_TTL: Duration = Duration::from_secs(5);

/// How the PD presents itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdConfig {
    /// Bus address (0–126).
    pub address: u8,
    /// Baud rate (reported by COMSET; the serial task applies changes).
    pub baud: u32,
    /// What `osdp_PDID` reports.
    pub identity: Identity,
    /// Number of inputs `osdp_ISTAT` reports.
    pub inputs: usize,
    /// Refuse everything but identification and the handshake outside a secure channel.
    pub require_secure: bool,
    /// Accept SCBK-D (until a key is installed with `osdp_KEYSET`).
    pub install_mode: bool,
}

/// Where what the panel sets is kept across restarts: the installed SCBK (`osdp_KEYSET`) and the
/// communication settings (`osdp_COMSET`). Files in production, memory in tests.
pub trait PdStore: Send {
    /// Stores `key` durably before the PD acknowledges it.
    fn store_key(&mut self, key: &Key) -> std::io::Result<()>;
    /// Stores the new address and baud rate durably before the PD answers with them.
    fn store_comset(&mut self, settings: &command::ComSet) -> std::io::Result<()>;
}

/// A store that keeps everything in memory only.
#[derive(Debug, Default)]
pub struct MemoryStore {
    /// The last stored key.
    pub key: Option<Key>,
    /// The last stored communication settings.
    pub comset: Option<command::ComSet>,
}

impl PdStore for MemoryStore {
    fn store_key(&mut self, key: &Key) -> std::io::Result<()> {
        self.key = Some(key.clone());
        Ok(())
    }

    fn store_comset(&mut self, settings: &command::ComSet) -> std::io::Result<()> {
        self.comset = Some(*settings);
        Ok(())
    }
}

/// A secure channel attempt the PD refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecureRefusal {
    /// `osdp_CHLNG` asked for SCBK-D outside install mode.
    DefaultKeyOutsideInstallMode,
    /// `osdp_CHLNG` asked for the SCBK but none is installed.
    NoKeyInstalled,
    /// The CP's cryptogram did not verify: it holds another key.
    BadCryptogram,
    /// `osdp_SCRYPT` without a preceding challenge.
    UnexpectedCryptogram,
    /// A command's MAC did not verify (session dropped).
    BadMac,
    /// An encrypted command did not decrypt to valid padding (session dropped).
    BadPadding,
    /// A secured message arrived while no session was active.
    NoSession,
    /// A plain command arrived while a session was active.
    PlainInSession,
    /// A command needing the secure channel arrived outside one (`require_secure`).
    InsecureCommand(u8),
    /// `osdp_KEYSET` outside a secure channel.
    KeySetOutsideSession,
    /// The new key could not be stored; the old one stays.
    KeyNotStored(String),
    /// The operating system gave no random number for the handshake.
    NoRandomness,
}

impl std::fmt::Display for SecureRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::DefaultKeyOutsideInstallMode => {
                f.write_str("default key SCBK-D refused: not in install mode")
            }
            Self::NoKeyInstalled => f.write_str("no SCBK installed"),
            Self::BadCryptogram => f.write_str("wrong key: the CP's cryptogram does not verify"),
            Self::UnexpectedCryptogram => f.write_str("SCRYPT without a challenge"),
            Self::BadMac => f.write_str("bad MAC: secure channel dropped"),
            Self::BadPadding => f.write_str("bad encrypted data: secure channel dropped"),
            Self::NoSession => f.write_str("secured message without a secure channel"),
            Self::PlainInSession => f.write_str("plain message inside the secure channel"),
            Self::InsecureCommand(code) => {
                write!(f, "command 0x{code:02X} needs the secure channel")
            }
            Self::KeySetOutsideSession => f.write_str("KEYSET outside the secure channel"),
            Self::KeyNotStored(why) => write!(f, "new SCBK not stored: {why}"),
            Self::NoRandomness => f.write_str("no random number for the handshake"),
        }
    }
}

/// What happened while handling a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PdEvent {
    /// The panel set the reader LED.
    Led(command::LedCommand),
    /// The panel set the buzzer.
    Buzzer(command::BuzzerCommand),
    /// New address and baud rate, in force from the next command.
    ComSet(command::ComSet),
    /// The secure channel session expired (no secured command for [`SESSION_TIMEOUT`]).
    SessionExpired,
    /// A secure channel session started.
    SecureChannel {
        /// With SCBK-D (install mode).
        default_key: bool,
    },
    /// A new SCBK was installed (install mode is over).
    KeyInstalled,
    /// Card data left in an `osdp_RAW` reply.
    CardDelivered {
        /// Bits sent.
        bits: usize,
    },
    /// Card data dropped: no poll collected it within [`CARD_READ_TTL`].
    CardExpired {
        /// Bits dropped.
        bits: usize,
    },
    /// `osdp_COMSET` could not be stored: refused with a NAK, the settings stay.
    ComSetNotStored(String),
    /// A secure channel problem (refused and answered with a NAK).
    Refused(SecureRefusal),
    /// Any other command answered with a NAK.
    Nak {
        /// The command code.
        command: u8,
        /// The NAK reason.
        reason: u8,
    },
}

/// The outcome of one packet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Step {
    /// Bytes to send back (none when the packet was not for this PD).
    pub reply: Option<Vec<u8>>,
    /// What happened.
    pub events: Vec<PdEvent>,
}

struct Handshake {
    keys: SessionKeys,
    cp_random: [u8; 8],
    pd_random: [u8; 8],
    default_key: bool,
}

struct Session {
    keys: SessionKeys,
    rmac: [u8; 16],
    cmac: [u8; 16],
    last_valid: Instant,
}

/// Source of the PD's random numbers (RND.B); `None` when none can be had.
pub type Random = Box<dyn FnMut() -> Option<[u8; 8]> + Send>;

/// The peripheral device.
pub struct Pd {
    config: PdConfig,
    scbk: Option<Key>,
    store: Box<dyn PdStore>,
    random: Random,
    handshake: Option<Handshake>,
    session: Option<Session>,
    cards: VecDeque<(WiegandBits, Instant)>,
    tamper: bool,
    inputs: Vec<bool>,
    last: Option<(u8, Vec<u8>)>,
    now: Instant,
}

impl std::fmt::Debug for Pd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pd")
            .field("config", &self.config)
            .field("secure", &self.session.is_some())
            .field("queued_cards", &self.cards.len())
            .finish_non_exhaustive()
    }
}

/// Random numbers from the operating system (a handshake is refused when it has none).
pub fn system_random() -> Random {
    Box::new(|| {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).ok().map(|()| bytes)
    })
}

impl Pd {
    /// A PD with its installed key (`None`: only install mode can set one up).
    pub fn new(
        config: PdConfig,
        scbk: Option<Key>,
        store: Box<dyn PdStore>,
        random: Random,
    ) -> Self {
        let inputs = vec![false; config.inputs];
        Self {
            config,
            scbk,
            store,
            random,
            handshake: None,
            session: None,
            cards: VecDeque::new(),
            tamper: false,
            inputs,
            last: None,
            now: Instant::now(),
        }
    }

    /// The current address.
    pub fn address(&self) -> u8 {
        self.config.address
    }

    /// The current baud rate.
    pub fn baud(&self) -> u32 {
        self.config.baud
    }

    /// Whether a secure channel session is active.
    pub fn is_secure(&self) -> bool {
        self.session.is_some()
    }

    /// Whether SCBK-D is still accepted.
    pub fn in_install_mode(&self) -> bool {
        self.config.install_mode
    }

    /// Queues card data, read at `now`, for the next poll.
    pub fn present(&mut self, bits: WiegandBits, now: Instant) {
        self.cards.push_back((bits, now));
    }

    /// Number of card reads waiting for a poll.
    pub fn queued_cards(&self) -> usize {
        self.cards.len()
    }

    /// Sets the reader's tamper state (reported by `osdp_LSTAT`).
    pub fn set_tamper(&mut self, tamper: bool) {
        self.tamper = tamper;
    }

    /// Sets an input's state (reported by `osdp_ISTAT`); unknown inputs are ignored.
    pub fn set_input(&mut self, index: usize, active: bool) {
        if let Some(input) = self.inputs.get_mut(index) {
            *input = active;
        }
    }

    /// Handles bytes that failed their check: NAK 0x01 when they were addressed to this PD.
    pub fn handle_error(&mut self, error: &PacketError) -> Step {
        match error {
            PacketError::Check { address, sequence }
                if *address & !REPLY_BIT == self.config.address =>
            {
                let reply = self.encode_plain(
                    false,
                    *sequence,
                    reply::nak::CODE,
                    &reply::nak::encode(nak::MESSAGE_CHECK),
                );
                Step {
                    reply: Some(reply),
                    events: vec![PdEvent::Nak {
                        command: 0,
                        reason: nak::MESSAGE_CHECK,
                    }],
                }
            }
            _ => Step::default(),
        }
    }

    /// Handles one checked packet received at `now`.
    pub fn handle(&mut self, packet: &Packet, now: Instant) -> Step {
        if packet.is_reply || (packet.address != self.config.address && packet.address != BROADCAST)
        {
            return Step::default();
        }
        self.now = now;
        let mut events = Vec::new();
        let expired = self.session.as_ref().is_some_and(|session| {
            now.saturating_duration_since(session.last_valid) > SESSION_TIMEOUT
        });
        if expired {
            self.session = None;
            events.push(PdEvent::SessionExpired);
        }
        if packet.sequence == 0 {
            self.session = None;
            self.handshake = None;
            self.last = None;
        } else if let Some((sequence, bytes)) = &self.last
            && *sequence == packet.sequence
        {
            return Step {
                reply: Some(bytes.clone()),
                events,
            };
        }
        let reply = match self.respond(packet, &mut events) {
            Ok(reply) => reply,
            Err(refusal) => Reply::nak(packet.code, refusal, &mut events),
        };
        let bytes = self.encode(packet, reply.code, &reply.data, reply.security.as_ref());
        if let Some(after) = reply.after {
            self.apply(after, &mut events);
        }
        self.last = Some((packet.sequence, bytes.clone()));
        Step {
            reply: Some(bytes),
            events,
        }
    }

    fn respond(&mut self, packet: &Packet, events: &mut Vec<PdEvent>) -> Result<Reply, Refusal> {
        let data = self.open(packet)?;
        let command = Command::decode(packet.code, &data).map_err(|error| match error {
            CommandError::Unknown(_) => Refusal::Nak(nak::UNKNOWN_COMMAND),
            CommandError::Length { .. } => Refusal::Nak(nak::COMMAND_LENGTH),
            _ => Refusal::Nak(nak::RECORD),
        })?;
        let open_outside_session = matches!(
            command,
            Command::Id(_) | Command::Cap(_) | Command::Challenge(_) | Command::ServerCryptogram(_)
        );
        if self.config.require_secure && self.session.is_none() && !open_outside_session {
            return Err(Refusal::Secure(SecureRefusal::InsecureCommand(packet.code)));
        }
        Ok(match command {
            Command::Poll(_) => match self.next_card(events) {
                Some(bits) => {
                    events.push(PdEvent::CardDelivered { bits: bits.len() });
                    Reply::plain(reply::raw::CODE, reply::raw::encode(0, &bits))
                }
                None => Reply::plain(reply::ack::CODE, reply::ack::encode()),
            },
            Command::Id(_) => Reply::plain(reply::pdid::CODE, self.config.identity.encode()),
            Command::Cap(_) => Reply::plain(
                reply::pdcap::CODE,
                reply::pdcap::encode(&self.capabilities()),
            ),
            Command::LocalStatus(_) => Reply::plain(
                reply::lstatr::CODE,
                reply::lstatr::encode(self.tamper, false),
            ),
            Command::InputStatus(_) => {
                Reply::plain(reply::istatr::CODE, reply::istatr::encode(&self.inputs))
            }
            Command::Led(records) => {
                if records
                    .iter()
                    .any(|record| record.reader != 0 || record.led != 0)
                {
                    return Err(Refusal::Nak(nak::RECORD));
                }
                events.extend(records.into_iter().map(PdEvent::Led));
                Reply::plain(reply::ack::CODE, reply::ack::encode())
            }
            Command::Buzzer(records) => {
                if records.iter().any(|record| record.reader != 0) {
                    return Err(Refusal::Nak(nak::RECORD));
                }
                events.extend(records.into_iter().map(PdEvent::Buzzer));
                Reply::plain(reply::ack::CODE, reply::ack::encode())
            }
            Command::ComSet(settings) => {
                if !settings.is_acceptable() {
                    return Err(Refusal::Nak(nak::RECORD));
                }
                if let Err(error) = self.store.store_comset(&settings) {
                    events.push(PdEvent::ComSetNotStored(error.to_string()));
                    return Err(Refusal::Nak(nak::RECORD));
                }
                let mut reply = Reply::plain(
                    reply::com::CODE,
                    reply::com::encode(settings.address, settings.baud),
                );
                reply.after = Some(After::ComSet(settings));
                reply
            }
            Command::KeySet(keyset) => {
                if self.session.is_none() {
                    return Err(Refusal::Secure(SecureRefusal::KeySetOutsideSession));
                }
                if let Err(error) = self.store.store_key(&keyset.key) {
                    return Err(Refusal::Secure(SecureRefusal::KeyNotStored(
                        error.to_string(),
                    )));
                }
                let mut reply = Reply::plain(reply::ack::CODE, reply::ack::encode());
                reply.after = Some(After::KeyInstalled(keyset.key));
                reply
            }
            Command::Challenge(challenge) => self.challenge(packet, challenge.cp_random)?,
            Command::ServerCryptogram(scrypt) => {
                self.server_cryptogram(&scrypt.cryptogram, events)?
            }
        })
    }

    /// The oldest card read still fresh; older ones are dropped and reported.
    fn next_card(&mut self, events: &mut Vec<PdEvent>) -> Option<WiegandBits> {
        while let Some((bits, read)) = self.cards.pop_front() {
            if self.now.saturating_duration_since(read) <= CARD_READ_TTL {
                return Some(bits);
            }
            events.push(PdEvent::CardExpired { bits: bits.len() });
        }
        None
    }

    /// Checks the MAC and decrypts; returns the command's plain data.
    fn open(&mut self, packet: &Packet) -> Result<Vec<u8>, Refusal> {
        let Some(block) = &packet.security else {
            if self.session.is_some() {
                return Err(Refusal::Secure(SecureRefusal::PlainInSession));
            }
            return Ok(packet.data.clone());
        };
        match block.kind {
            scs::CHALLENGE | scs::SERVER_CRYPTOGRAM => Ok(packet.data.clone()),
            scs::COMMAND_MAC | scs::COMMAND_ENCRYPTED => {
                let session = self
                    .session
                    .as_mut()
                    .ok_or(Refusal::Secure(SecureRefusal::NoSession))?;
                let expected = session.keys.mac(&session.rmac, &packet.authenticated);
                let received = packet.mac.unwrap_or_default();
                if !secure::equal(&received, &expected[..4]) {
                    self.session = None;
                    return Err(Refusal::Secure(SecureRefusal::BadMac));
                }
                session.cmac = expected;
                session.last_valid = self.now;
                if block.kind == scs::COMMAND_MAC {
                    return Ok(packet.data.clone());
                }
                match session.keys.decrypt(&session.rmac, &packet.data) {
                    Some(plain) => Ok(plain),
                    None => {
                        self.session = None;
                        Err(Refusal::Secure(SecureRefusal::BadPadding))
                    }
                }
            }
            _ => Err(Refusal::Nak(nak::SECURITY_UNSUPPORTED)),
        }
    }

    fn challenge(&mut self, packet: &Packet, cp_random: [u8; 8]) -> Result<Reply, Refusal> {
        self.session = None;
        self.handshake = None;
        let selector = packet
            .security
            .as_ref()
            .filter(|block| block.kind == scs::CHALLENGE)
            .and_then(|block| block.data.first().copied())
            .ok_or(Refusal::Nak(nak::SECURITY_UNSUPPORTED))?;
        let default_key = selector == 0;
        let key = if default_key {
            if !self.config.install_mode {
                return Err(Refusal::Secure(SecureRefusal::DefaultKeyOutsideInstallMode));
            }
            Key::default_key()
        } else {
            self.scbk
                .clone()
                .ok_or(Refusal::Secure(SecureRefusal::NoKeyInstalled))?
        };
        // Without randomness the session keys would repeat: refuse rather than weaken.
        let pd_random = (self.random)().ok_or(Refusal::Secure(SecureRefusal::NoRandomness))?;
        let keys = SessionKeys::derive(&key, &cp_random);
        let cryptogram = keys.client_cryptogram(&cp_random, &pd_random);
        let data =
            reply::ccrypt::encode(&self.config.identity.client_uid(), &pd_random, &cryptogram);
        self.handshake = Some(Handshake {
            keys,
            cp_random,
            pd_random,
            default_key,
        });
        Ok(Reply {
            code: reply::ccrypt::CODE,
            data,
            security: Some(SecurityBlock {
                kind: scs::CLIENT_CRYPTOGRAM,
                data: vec![selector],
            }),
            after: None,
        })
    }

    fn server_cryptogram(
        &mut self,
        received: &[u8; 16],
        events: &mut Vec<PdEvent>,
    ) -> Result<Reply, Refusal> {
        let handshake = self
            .handshake
            .take()
            .ok_or(Refusal::Secure(SecureRefusal::UnexpectedCryptogram))?;
        let expected = handshake
            .keys
            .server_cryptogram(&handshake.cp_random, &handshake.pd_random);
        if !secure::equal(received, &expected) {
            return Err(Refusal::Secure(SecureRefusal::BadCryptogram));
        }
        let rmac = handshake.keys.initial_rmac(received);
        self.session = Some(Session {
            keys: handshake.keys,
            rmac,
            cmac: [0; 16],
            last_valid: self.now,
        });
        events.push(PdEvent::SecureChannel {
            default_key: handshake.default_key,
        });
        Ok(Reply {
            code: reply::rmac_i::CODE,
            data: reply::rmac_i::encode(&rmac),
            security: Some(SecurityBlock {
                kind: scs::INITIAL_RMAC,
                data: vec![reply::rmac_i::ACCEPTED],
            }),
            after: None,
        })
    }

    fn apply(&mut self, after: After, events: &mut Vec<PdEvent>) {
        match after {
            After::ComSet(settings) => {
                self.config.address = settings.address;
                self.config.baud = settings.baud;
                events.push(PdEvent::ComSet(settings));
            }
            After::KeyInstalled(key) => {
                self.scbk = Some(key);
                self.config.install_mode = false;
                self.session = None;
                events.push(PdEvent::KeyInstalled);
            }
        }
    }

    fn capabilities(&self) -> Vec<Capability> {
        let cap = |function, compliance, items| Capability {
            function,
            compliance,
            items,
        };
        let buffer = (super::packet::MAX_PACKET as u16).to_le_bytes();
        vec![
            cap(function::CONTACT_STATUS, 1, self.inputs.len() as u8),
            cap(function::CARD_DATA_FORMAT, 1, 0),
            cap(function::LED, 2, 1),
            cap(function::AUDIBLE, 2, 1),
            cap(function::CHECK_CHARACTER, 1, 0),
            cap(function::SECURITY, 1, 0),
            cap(function::RECEIVE_BUFFER, buffer[0], buffer[1]),
            cap(function::VERSION, 2, 0),
        ]
    }

    /// Encodes a reply: inside the session (MAC, and encryption when there is data) when the
    /// command came inside it, plain otherwise.
    fn encode(
        &mut self,
        packet: &Packet,
        code: u8,
        data: &[u8],
        handshake: Option<&SecurityBlock>,
    ) -> Vec<u8> {
        let address = self.config.address | REPLY_BIT;
        let secured = packet.security.as_ref().is_some_and(SecurityBlock::has_mac);
        match (&mut self.session, handshake) {
            (Some(session), None) if secured => {
                let (kind, body) = if data.is_empty() {
                    (scs::REPLY_MAC, Vec::new())
                } else {
                    (
                        scs::REPLY_ENCRYPTED,
                        session.keys.encrypt(&session.cmac, data),
                    )
                };
                let block = SecurityBlock {
                    kind,
                    data: Vec::new(),
                };
                let mut rmac = [0u8; 16];
                let bytes = Outgoing {
                    mark: packet.mark,
                    address,
                    sequence: packet.sequence,
                    security: Some(&block),
                    code,
                    data: &body,
                }
                .encode(|covered| {
                    rmac = session.keys.mac(&session.cmac, covered);
                    let mut mac = [0u8; 4];
                    mac.copy_from_slice(&rmac[..4]);
                    mac
                });
                session.rmac = rmac;
                bytes
            }
            _ => Outgoing {
                mark: packet.mark,
                address,
                sequence: packet.sequence,
                security: handshake,
                code,
                data,
            }
            .encode(|_| [0; 4]),
        }
    }

    fn encode_plain(&self, mark: bool, sequence: u8, code: u8, data: &[u8]) -> Vec<u8> {
        Outgoing {
            mark,
            address: self.config.address | REPLY_BIT,
            sequence,
            security: None,
            code,
            data,
        }
        .encode(|_| [0; 4])
    }
}

enum Refusal {
    Nak(u8),
    Secure(SecureRefusal),
}

enum After {
    ComSet(command::ComSet),
    KeyInstalled(Key),
}

struct Reply {
    code: u8,
    data: Vec<u8>,
    security: Option<SecurityBlock>,
    after: Option<After>,
}

impl Reply {
    fn plain(code: u8, data: Vec<u8>) -> Self {
        Self {
            code,
            data,
            security: None,
            after: None,
        }
    }

    fn nak(command: u8, refusal: Refusal, events: &mut Vec<PdEvent>) -> Self {
        let reason = match refusal {
            Refusal::Nak(reason) => {
                events.push(PdEvent::Nak { command, reason });
                reason
            }
            Refusal::Secure(refusal) => {
                events.push(PdEvent::Refused(refusal));
                nak::SECURITY_CONDITIONS
            }
        };
        Self::plain(reply::nak::CODE, reply::nak::encode(reason))
    }
}

#[cfg(test)]
mod tests;
