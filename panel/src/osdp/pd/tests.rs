//! The PD against a minimal control panel written from the specification (the system test
//! `tests/tests/panel_osdp.rs` runs it against libosdp's CP).

use super::*;
use crate::credential::{Credential, WiegandFormat};
use crate::osdp::packet::parse;

const ADDRESS: u8 = 0x01;

fn identity() -> Identity {
    Identity {
        vendor: [0x5A, 0x47, 0x01],
        model: 1,
        version: 1,
        serial: 0x1234_5678,
        firmware: [0, 1, 0],
    }
}

fn config(install_mode: bool, require_secure: bool) -> PdConfig {
    PdConfig {
        address: ADDRESS,
        baud: 9600,
        identity: identity(),
        inputs: 1,
        require_secure,
        install_mode,
    }
}

fn pd(install_mode: bool, require_secure: bool, scbk: Option<Key>) -> Pd {
    pd_with_store(
        install_mode,
        require_secure,
        scbk,
        Box::new(MemoryStore::default()),
    )
}

fn pd_with_store(
    install_mode: bool,
    require_secure: bool,
    scbk: Option<Key>,
    store: Box<dyn PdStore>,
) -> Pd {
    let mut counter = 0u8;
    let random: Random = Box::new(move || {
        counter = counter.wrapping_add(1);
        Some([counter; 8])
    });
    Pd::new(config(install_mode, require_secure), scbk, store, random)
}

/// A memory store the test can read after the PD took it.
#[derive(Clone, Default)]
struct SharedStore(std::sync::Arc<std::sync::Mutex<MemoryStore>>);

impl PdStore for SharedStore {
    fn store_key(&mut self, key: &Key) -> std::io::Result<()> {
        self.0.lock().expect("store").store_key(key)
    }

    fn store_comset(&mut self, settings: &command::ComSet) -> std::io::Result<()> {
        self.0.lock().expect("store").store_comset(settings)
    }
}

/// A store on a full or read-only disk.
struct FailingStore;

impl PdStore for FailingStore {
    fn store_key(&mut self, _key: &Key) -> std::io::Result<()> {
        Err(std::io::Error::other("disk full"))
    }

    fn store_comset(&mut self, _settings: &command::ComSet) -> std::io::Result<()> {
        Err(std::io::Error::other("disk full"))
    }
}

/// A command without a MAC (plain, or a handshake step).
fn unmaced(sequence: u8, security: Option<&SecurityBlock>, code: u8, data: &[u8]) -> Vec<u8> {
    Outgoing {
        mark: true,
        address: ADDRESS,
        sequence,
        security,
        code,
        data,
    }
    .encode(|_| [0; 4])
}

/// The CP side, from the specification.
struct Cp {
    now: Instant,
    sequence: u8,
    session: Option<(SessionKeys, [u8; 16], [u8; 16])>,
}

impl Cp {
    fn new() -> Self {
        Self {
            now: Instant::now(),
            sequence: 0,
            session: None,
        }
    }

    fn next_sequence(&mut self) -> u8 {
        let sequence = self.sequence;
        self.sequence = if self.sequence == 3 {
            1
        } else {
            self.sequence + 1
        };
        sequence
    }

    fn command(&mut self, command: &Command) -> Vec<u8> {
        let (code, data) = command.encode();
        let sequence = self.next_sequence();
        let handshake = matches!(
            command,
            Command::Challenge(_) | Command::ServerCryptogram(_)
        );
        match &mut self.session {
            Some((keys, rmac, cmac)) if !handshake => {
                let (kind, body) = if data.is_empty() {
                    (scs::COMMAND_MAC, Vec::new())
                } else {
                    (scs::COMMAND_ENCRYPTED, keys.encrypt(rmac, &data))
                };
                let block = SecurityBlock { kind, data: vec![] };
                Outgoing {
                    mark: true,
                    address: ADDRESS,
                    sequence,
                    security: Some(&block),
                    code,
                    data: &body,
                }
                .encode(|covered| {
                    *cmac = keys.mac(rmac, covered);
                    let mut mac = [0u8; 4];
                    mac.copy_from_slice(&cmac[..4]);
                    mac
                })
            }
            _ => unmaced(sequence, None, code, &data),
        }
    }

    fn handshake_command(&mut self, code: u8, data: &[u8], kind: u8, key_selector: u8) -> Vec<u8> {
        let sequence = self.next_sequence();
        let block = SecurityBlock {
            kind,
            data: vec![key_selector],
        };
        unmaced(sequence, Some(&block), code, data)
    }

    /// Checks and opens a reply: (code, plain data).
    fn reply(&mut self, bytes: &[u8]) -> (u8, Vec<u8>) {
        assert_eq!(bytes[0], 0xFF, "mark answered in kind");
        let packet = parse(&bytes[1..], true).expect("valid reply");
        assert!(packet.is_reply);
        assert_eq!(packet.address, ADDRESS);
        let secured = packet.security.as_ref().is_some_and(SecurityBlock::has_mac);
        if let (true, Some((keys, rmac, cmac))) = (secured, &mut self.session) {
            let expected = keys.mac(cmac, &packet.authenticated);
            assert_eq!(packet.mac.expect("mac"), expected[..4], "reply MAC");
            *rmac = expected;
            let data = if packet.security.as_ref().map(|b| b.kind) == Some(scs::REPLY_ENCRYPTED) {
                keys.decrypt(cmac, &packet.data).expect("decrypts")
            } else {
                packet.data
            };
            return (packet.code, data);
        }
        (packet.code, packet.data)
    }

    fn exchange(&mut self, pd: &mut Pd, command: &Command) -> (u8, Vec<u8>, Vec<PdEvent>) {
        let bytes = self.command(command);
        let step = pd.handle(&parse(&bytes[1..], true).expect("own packet"), self.now);
        let (code, data) = self.reply(&step.reply.expect("a reply"));
        (code, data, step.events)
    }

    /// Runs the handshake; returns the PD's events of the SCRYPT step and whether it succeeded.
    fn secure(&mut self, pd: &mut Pd, scbk: &Key, selector: u8) -> (bool, Vec<PdEvent>) {
        self.session = None;
        let cp_random = [0xA5; 8];
        let bytes =
            self.handshake_command(command::chlng::CODE, &cp_random, scs::CHALLENGE, selector);
        let step = pd.handle(&parse(&bytes[1..], true).expect("own"), self.now);
        let (code, data) = self.reply(&step.reply.expect("reply"));
        if code != reply::ccrypt::CODE {
            return (false, step.events);
        }
        let keys = SessionKeys::derive(scbk, &cp_random);
        let pd_random: [u8; 8] = data[8..16].try_into().expect("8");
        assert_eq!(data[..8], identity().client_uid());
        if data[16..32] != keys.client_cryptogram(&cp_random, &pd_random) {
            return (false, step.events);
        }
        let server = keys.server_cryptogram(&cp_random, &pd_random);
        let bytes = self.handshake_command(
            command::scrypt::CODE,
            &server,
            scs::SERVER_CRYPTOGRAM,
            selector,
        );
        let step = pd.handle(&parse(&bytes[1..], true).expect("own"), self.now);
        let (code, data) = self.reply(&step.reply.expect("reply"));
        if code != reply::rmac_i::CODE {
            return (false, step.events);
        }
        let rmac: [u8; 16] = data.try_into().expect("16");
        assert_eq!(rmac, keys.initial_rmac(&server));
        self.session = Some((keys, rmac, [0; 16]));
        (true, step.events)
    }
}

fn card() -> WiegandBits {
    Credential::new(WiegandFormat::H10301, 12, 3456)
        .expect("fits")
        .bits()
}

#[test]
fn plain_session_identifies_polls_and_delivers_card_data() {
    let mut pd = pd(false, false, None);
    let mut cp = Cp::new();
    let (code, data, _) = cp.exchange(&mut pd, &Command::Id(command::IdReport { reply_type: 0 }));
    assert_eq!((code, data), (reply::pdid::CODE, identity().encode()));
    let (code, data, _) = cp.exchange(
        &mut pd,
        &Command::Cap(command::Capabilities { reply_type: 0 }),
    );
    assert_eq!(code, reply::pdcap::CODE);
    assert!(data.chunks(3).any(|c| c == [9, 1, 0]), "AES-128 advertised");
    let (code, _, _) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(code, reply::ack::CODE);
    pd.present(card(), cp.now);
    let (code, data, events) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(
        (code, data),
        (0x50, vec![0, 1, 26, 0, 0x06, 0x06, 0xC0, 0x40])
    );
    assert_eq!(events, vec![PdEvent::CardDelivered { bits: 26 }]);
    let (code, data, _) = cp.exchange(&mut pd, &Command::LocalStatus(command::LocalStatus));
    assert_eq!((code, data), (reply::lstatr::CODE, vec![0, 0]));
}

#[test]
fn a_repeated_sequence_number_gets_the_same_reply_and_no_second_card() {
    let mut pd = pd(false, false, None);
    let mut cp = Cp::new();
    cp.exchange(&mut pd, &Command::Poll(command::Poll));
    pd.present(card(), cp.now);
    let bytes = cp.command(&Command::Poll(command::Poll));
    let packet = parse(&bytes[1..], true).expect("own");
    let first = pd.handle(&packet, cp.now);
    let again = pd.handle(&packet, cp.now);
    assert_eq!(first.reply, again.reply);
    assert!(again.events.is_empty());
    assert_eq!(pd.queued_cards(), 0);
}

#[test]
fn require_secure_refuses_polls_in_clear() {
    let mut pd = pd(false, true, Some(Key::new([7; 16])));
    let mut cp = Cp::new();
    pd.present(card(), cp.now);
    let (code, data, events) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(
        (code, data),
        (reply::nak::CODE, vec![nak::SECURITY_CONDITIONS])
    );
    assert_eq!(
        events,
        vec![PdEvent::Refused(SecureRefusal::InsecureCommand(0x60))]
    );
    assert_eq!(pd.queued_cards(), 1, "the card waits for a secure poll");
}

#[test]
fn install_mode_takes_scbk_d_then_a_new_key_and_refuses_scbk_d_afterwards() {
    let mut pd = pd(true, true, None);
    let mut cp = Cp::new();
    cp.exchange(&mut pd, &Command::Id(command::IdReport { reply_type: 0 }));
    let (ok, events) = cp.secure(&mut pd, &Key::default_key(), 0);
    assert!(ok);
    assert_eq!(events, vec![PdEvent::SecureChannel { default_key: true }]);

    let new_key = Key::new([0x42; 16]);
    let (code, _, events) = cp.exchange(
        &mut pd,
        &Command::KeySet(command::KeySet {
            key: new_key.clone(),
        }),
    );
    assert_eq!(
        code,
        reply::ack::CODE,
        "acknowledged inside the old session"
    );
    assert_eq!(events, vec![PdEvent::KeyInstalled]);
    assert!(!pd.in_install_mode());
    assert!(!pd.is_secure());

    let (ok, events) = cp.secure(&mut pd, &Key::default_key(), 0);
    assert!(!ok);
    assert_eq!(
        events,
        vec![PdEvent::Refused(
            SecureRefusal::DefaultKeyOutsideInstallMode
        )]
    );

    let (ok, _) = cp.secure(&mut pd, &new_key, 1);
    assert!(ok);
    pd.present(card(), cp.now);
    let (code, data, _) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(
        (code, data),
        (0x50, vec![0, 1, 26, 0, 0x06, 0x06, 0xC0, 0x40])
    );
    // An encrypted command (LED) is decrypted and acknowledged.
    let led = command::LedCommand {
        reader: 0,
        led: 0,
        temporary: command::Temporary::NoChange,
        permanent: Some(command::LedPattern {
            on: 1,
            off: 0,
            on_color: command::Color::Green,
            off_color: command::Color::Off,
        }),
    };
    let (code, _, events) = cp.exchange(&mut pd, &Command::Led(vec![led]));
    assert_eq!(code, reply::ack::CODE);
    assert_eq!(events, vec![PdEvent::Led(led)]);
}

#[test]
fn a_wrong_key_is_refused_at_the_cryptogram() {
    let mut pd = pd(false, true, Some(Key::new([1; 16])));
    let mut cp = Cp::new();
    cp.exchange(&mut pd, &Command::Id(command::IdReport { reply_type: 0 }));
    // The CP computes with another key: its check of the PD's cryptogram fails, so a CP that
    // pressed on would send a server cryptogram the PD cannot verify.
    let cp_random = [3; 8];
    let bytes = cp.handshake_command(command::chlng::CODE, &cp_random, scs::CHALLENGE, 1);
    let step = pd.handle(&parse(&bytes[1..], true).expect("own"), cp.now);
    let (_, data) = cp.reply(&step.reply.expect("reply"));
    let wrong = SessionKeys::derive(&Key::new([2; 16]), &cp_random);
    let pd_random: [u8; 8] = data[8..16].try_into().expect("8");
    let bytes = cp.handshake_command(
        command::scrypt::CODE,
        &wrong.server_cryptogram(&cp_random, &pd_random),
        scs::SERVER_CRYPTOGRAM,
        1,
    );
    let step = pd.handle(&parse(&bytes[1..], true).expect("own"), cp.now);
    let (code, data) = cp.reply(&step.reply.expect("reply"));
    assert_eq!(
        (code, data),
        (reply::nak::CODE, vec![nak::SECURITY_CONDITIONS])
    );
    assert_eq!(
        step.events,
        vec![PdEvent::Refused(SecureRefusal::BadCryptogram)]
    );
    assert!(!pd.is_secure());
}

#[test]
fn a_bad_mac_drops_the_session_and_is_reported() {
    let key = Key::new([9; 16]);
    let mut pd = pd(false, true, Some(key.clone()));
    let mut cp = Cp::new();
    cp.exchange(&mut pd, &Command::Id(command::IdReport { reply_type: 0 }));
    assert!(cp.secure(&mut pd, &key, 1).0);
    let mut bytes = cp.command(&Command::Poll(command::Poll));
    let mac_at = bytes.len() - 3;
    bytes[mac_at] ^= 0x01;
    let crc = crate::osdp::packet::crc16(&bytes[1..bytes.len() - 2]).to_le_bytes();
    let len = bytes.len();
    bytes[len - 2..].copy_from_slice(&crc);
    let step = pd.handle(&parse(&bytes[1..], true).expect("CRC is right"), cp.now);
    assert_eq!(step.events, vec![PdEvent::Refused(SecureRefusal::BadMac)]);
    assert!(!pd.is_secure());
    let packet = parse(&step.reply.expect("reply")[1..], true).expect("valid");
    assert_eq!(
        (packet.code, packet.data, packet.security),
        (0x41, vec![0x06], None)
    );
}

#[test]
fn comset_is_stored_answered_with_the_new_settings_then_applied() {
    let store = SharedStore::default();
    let mut pd = pd_with_store(false, false, None, Box::new(store.clone()));
    let mut cp = Cp::new();
    let settings = command::ComSet {
        address: 0x05,
        baud: 38400,
    };
    let (code, data, events) = cp.exchange(&mut pd, &Command::ComSet(settings));
    assert_eq!((code, data), (reply::com::CODE, vec![5, 0x00, 0x96, 0, 0]));
    assert_eq!(events, vec![PdEvent::ComSet(settings)]);
    assert_eq!((pd.address(), pd.baud()), (5, 38400));
    assert_eq!(
        store.0.lock().expect("store").comset,
        Some(settings),
        "kept for the next start"
    );
    // The old address is no longer answered.
    let bytes = cp.command(&Command::Poll(command::Poll));
    assert!(
        pd.handle(&parse(&bytes[1..], true).expect("own"), cp.now)
            .reply
            .is_none()
    );
}

#[test]
fn a_bad_crc_addressed_here_gets_nak_1() {
    let mut pd = pd(false, false, None);
    let step = pd.handle_error(&PacketError::Check {
        address: ADDRESS,
        sequence: 2,
    });
    let packet = parse(&step.reply.expect("reply"), false).expect("valid");
    assert_eq!(
        (packet.code, packet.data, packet.sequence),
        (0x41, vec![0x01], 2)
    );
    assert!(
        pd.handle_error(&PacketError::Check {
            address: 9,
            sequence: 2
        })
        .reply
        .is_none()
    );
}

#[test]
fn no_randomness_refuses_the_handshake() {
    let mut pd = Pd::new(
        config(true, true),
        None,
        Box::new(MemoryStore::default()),
        Box::new(|| None),
    );
    let mut cp = Cp::new();
    let (ok, events) = cp.secure(&mut pd, &Key::default_key(), 0);
    assert!(!ok);
    assert_eq!(events, vec![PdEvent::Refused(SecureRefusal::NoRandomness)]);
}

#[test]
fn an_idle_session_expires_and_the_next_secured_command_is_refused() {
    let key = Key::new([5; 16]);
    let mut pd = pd(false, true, Some(key.clone()));
    let mut cp = Cp::new();
    cp.exchange(&mut pd, &Command::Id(command::IdReport { reply_type: 0 }));
    assert!(cp.secure(&mut pd, &key, 1).0);
    cp.now += SESSION_TIMEOUT;
    let (code, _, events) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(
        (code, events),
        (reply::ack::CODE, vec![]),
        "still inside the timeout"
    );
    cp.now += SESSION_TIMEOUT + Duration::from_millis(1);
    let bytes = cp.command(&Command::Poll(command::Poll));
    let step = pd.handle(&parse(&bytes[1..], true).expect("own"), cp.now);
    assert_eq!(
        step.events,
        vec![
            PdEvent::SessionExpired,
            PdEvent::Refused(SecureRefusal::NoSession)
        ]
    );
    assert!(!pd.is_secure());
}

#[test]
fn a_comset_that_cannot_be_stored_is_refused_and_the_settings_stay() {
    let mut pd = pd_with_store(false, false, None, Box::new(FailingStore));
    let mut cp = Cp::new();
    let settings = command::ComSet {
        address: 0x05,
        baud: 38400,
    };
    let (code, data, events) = cp.exchange(&mut pd, &Command::ComSet(settings));
    assert_eq!((code, data), (reply::nak::CODE, vec![nak::RECORD]));
    assert!(
        events.contains(&PdEvent::ComSetNotStored("disk full".to_string())),
        "{events:?}"
    );
    assert_eq!((pd.address(), pd.baud()), (ADDRESS, 9600));
}

#[test]
fn a_card_read_not_polled_in_time_is_dropped_not_delivered_late() {
    let mut pd = pd(false, false, None);
    let mut cp = Cp::new();
    let read_at = cp.now;
    pd.present(card(), read_at);
    cp.now = read_at + CARD_READ_TTL + Duration::from_millis(1);
    let (code, _, events) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(code, reply::ack::CODE, "nothing left to deliver");
    assert_eq!(events, vec![PdEvent::CardExpired { bits: 26 }]);

    // A read polled within its time is delivered.
    pd.present(card(), cp.now);
    cp.now += CARD_READ_TTL;
    let (code, _, events) = cp.exchange(&mut pd, &Command::Poll(command::Poll));
    assert_eq!(code, reply::raw::CODE);
    assert_eq!(events, vec![PdEvent::CardDelivered { bits: 26 }]);
}
