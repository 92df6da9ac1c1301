//! Shared helpers for the in-process tests: test templates, a personalised card, a tampering
//! transport.
#![allow(dead_code)]

use palmgate_card::applet::Applet;
use palmgate_card::host::issuer::{EnrolmentAuthority, IssuerKey};
use palmgate_card::host::platform::{MemoryStorage, SystemClock, SystemRng, system_rng};
use palmgate_card::host::{Card, CardTransport, InProcessTransport, TransportError};
use palmgate_card::protocol::{SlotKind, permission};
use palmgate_matcher::template::Template;

/// The applet in this process with in-memory storage.
pub type TestTransport = InProcessTransport<MemoryStorage, SystemRng, SystemClock>;

/// A factory-state card.
pub fn factory_transport() -> TestTransport {
    InProcessTransport::new(Applet::factory(
        MemoryStorage::default(),
        system_rng(),
        SystemClock::default(),
    ))
}

/// Test templates: palmgate-matcher's fixtures; a capture of identity `seed` with `changed`
/// cells turned.
#[allow(unused_imports)] // each test binary uses its own subset
pub use palmgate_matcher::fixtures::{capture_changed as capture, cells, template};

/// An issuer and its enrolment authority.
pub struct Issuer {
    pub key: IssuerKey,
    pub authority: EnrolmentAuthority,
}

impl Issuer {
    pub fn new() -> Self {
        let key = IssuerKey::generate();
        let authority = key.create_authority(permission::ALL);
        Self { key, authority }
    }
}

/// Personalises a factory card and enrols `templates` (slot i = templates[i]).
pub fn enrolled_card<T: CardTransport>(
    transport: T,
    issuer: &Issuer,
    templates: &[(SlotKind, &Template)],
    max_tries: Option<u8>,
) -> Card<T> {
    let mut card = Card::open(transport).expect("select");
    card.personalise(&issuer.key).expect("personalise");
    let verified = card
        .verify_certificate(&[issuer.key.public_key()])
        .expect("certificate");
    {
        let session = card.open_session(&verified).expect("session");
        let mut enrolment = session
            .prove_authority(&issuer.authority)
            .expect("authority");
        for (slot, (kind, template)) in templates.iter().enumerate() {
            enrolment.enrol(slot as u8, *kind, template).expect("enrol");
        }
        if let Some(max_tries) = max_tries {
            enrolment.set_policy(max_tries).expect("policy");
        }
    }
    card.refresh_identity().expect("identity");
    card
}

type Hook = Box<dyn FnMut(&[u8], &mut Vec<u8>)>;
type CommandHook = Box<dyn FnMut(&mut Vec<u8>)>;

/// A transport in the middle: may rewrite commands and responses.
pub struct Tamper<T> {
    pub inner: T,
    /// Called with each command before it is sent (may change it).
    pub on_command: Option<CommandHook>,
    /// Called with the command and its response (may change the response).
    pub on_response: Option<Hook>,
}

impl<T> Tamper<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            on_command: None,
            on_response: None,
        }
    }
}

impl<T: CardTransport> CardTransport for Tamper<T> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut command = command.to_vec();
        if let Some(hook) = self.on_command.as_mut() {
            hook(&mut command);
        }
        let mut response = self.inner.transmit(&command)?;
        if let Some(hook) = self.on_response.as_mut() {
            hook(&command, &mut response);
        }
        Ok(response)
    }
}
