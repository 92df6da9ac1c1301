//! The card applet: a `no_std`, allocation-free APDU processor.
//!
//! [`Applet::process`] takes one command APDU and fills a [`ResponseBuffer`], returning the status
//! word. Persistent state goes through [`Storage`] (written whole, after every change, before the
//! response is sent), randomness through a [`rand_core::CryptoRng`], time through [`Clock`].
//! The applet keeps RAM and storage equal: a change is applied to a copy, stored, and only then
//! adopted; if storing fails the command answers `6581` and nothing changes.

mod state;

use p256::ecdsa::SigningKey;
use p256::elliptic_curve::Generate;
use palmgate_matcher::Profile;
use palmgate_matcher::compare::{Threshold, compare};
use palmgate_matcher::profile::MAX_ENROLLED_TEMPLATES;
use palmgate_matcher::template::{ALGORITHM_COMPCODE_V1, Template};
use rand_core::CryptoRng;
use subtle::ConditionallySelectable;
use zeroize::{Zeroize, Zeroizing};

use state::PersistentState;
pub use state::{
    MealEntitlement, RECEIPT_CAPACITY, STATE_LEN, STATE_V1_LEN, STATE_V2_LEN, STATE_V3_LEN,
    STATE_V4_LEN, StateError,
};

use crate::protocol::cert::{
    AUTHORITY_CERT_LEN, AuthorityCertificate, CARD_CERT_LEN, CardCertificate, decode_public_key,
    encode_public_key, verify,
};
use crate::protocol::identity::CardIdentity;
use crate::protocol::meal::{
    MealReceiptFields, MealRequest, MealRequestError, SignedMealReceipt, encode_allowance_used,
    encode_period_behind,
};
use crate::protocol::receipt::{Commitment, DeletionReceipt, ReceiptFields};
use crate::protocol::session::{
    SecureChannel, SessionKeys, authority_message, ecdh, transcript_hash,
};
use crate::protocol::{
    AID, APPLET_VERSION, CARD_ID_LEN, CommandApdu, Lifecycle, MAX_COMMAND_DATA, MAX_TRIES_LIMIT,
    NONCE_LEN, PUBLIC_KEY_LEN, SIGNATURE_LEN, SLOT_COUNT, SlotKind, StatusWord, TAG_LEN,
    TEMPLATE_LEN, cla, data, decision, ins, permission, personalise, probe_poses, profile_floor,
    verify_profile,
};

/// Largest response the applet produces (before GET RESPONSE splitting).
pub const RESPONSE_CAPACITY: usize = 512;
/// A session unused for this long is closed (on platforms with a clock).
pub const SESSION_IDLE_LIMIT_MS: u64 = 30_000;

/// Persistent storage of the card state.
pub trait Storage {
    /// Writes the whole state atomically: after a crash the old or the new state is stored, never
    /// a mix. Returns `Err` when nothing could be written.
    fn store(&mut self, state: &[u8; STATE_LEN]) -> Result<(), StorageFailed>;
}

/// The storage could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageFailed;

/// A monotonic millisecond clock (for session idle time-out). A platform without a clock may
/// return a constant: sessions then end only with the power or a new session.
pub trait Clock {
    /// Milliseconds since an arbitrary origin, never decreasing.
    fn now_ms(&mut self) -> u64;
}

/// A fixed response buffer (no allocation).
pub struct ResponseBuffer {
    bytes: [u8; RESPONSE_CAPACITY],
    len: usize,
}

impl Default for ResponseBuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for ResponseBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "ResponseBuffer({} bytes)", self.len)
    }
}

impl ResponseBuffer {
    /// An empty buffer.
    pub const fn new() -> Self {
        Self {
            bytes: [0; RESPONSE_CAPACITY],
            len: 0,
        }
    }

    /// The response data (without the status word).
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn set(&mut self, data: &[u8]) {
        self.bytes[..data.len()].copy_from_slice(data);
        self.len = data.len();
    }
}

struct Session {
    channel: SecureChannel,
    transcript: [u8; 32],
    /// Permission bits proven by an enrolment authority in this session (0: none).
    authority: u8,
    /// The last VERIFY PALM of this session matched (a normal or a duress slot) and no meal was
    /// served on it yet: REDEEM MEAL needs it and consumes it.
    palm_matched: bool,
    last_used_ms: u64,
}

/// Response data being assembled (zeroized: it may briefly hold a decision before encryption).
struct Out {
    bytes: [u8; RESPONSE_CAPACITY],
    len: usize,
}

impl Drop for Out {
    fn drop(&mut self) {
        self.bytes[..self.len].zeroize();
    }
}

/// The command data being processed (zeroized on drop: it may hold a decrypted template).
struct Scratch {
    bytes: [u8; MAX_COMMAND_DATA],
    len: usize,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.bytes[..self.len].zeroize();
    }
}

impl Out {
    fn put(&mut self, data: &[u8]) {
        self.bytes[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }
}

/// The palmgate card applet.
pub struct Applet<S, R, C> {
    storage: S,
    rng: R,
    clock: C,
    state: PersistentState,
    card_key: Option<SigningKey>,
    selected: bool,
    session: Option<Session>,
    chain: Chain,
    pending: Pending,
}

struct Chain {
    active: bool,
    header: [u8; 3],
    bytes: [u8; MAX_COMMAND_DATA],
    len: usize,
}

struct Pending {
    bytes: [u8; RESPONSE_CAPACITY],
    start: usize,
    end: usize,
}

impl<S, R, C> core::fmt::Debug for Applet<S, R, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Applet")
            .field("lifecycle", &self.state.lifecycle())
            .field("selected", &self.selected)
            .field("session", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: Storage, R: CryptoRng, C: Clock> Applet<S, R, C> {
    /// An applet in the factory state (the state is not stored until the first change).
    pub fn factory(storage: S, rng: R, clock: C) -> Self {
        Self::with_state(storage, rng, clock, PersistentState::factory())
    }

    /// An applet resuming from stored state.
    pub fn load(storage: S, rng: R, clock: C, stored: &[u8]) -> Result<Self, StateError> {
        let state = PersistentState::decode(stored)?;
        Ok(Self::with_state(storage, rng, clock, state))
    }

    fn with_state(storage: S, rng: R, clock: C, state: PersistentState) -> Self {
        let card_key = state.card_key();
        Self {
            storage,
            rng,
            clock,
            state,
            card_key,
            selected: false,
            session: None,
            chain: Chain {
                active: false,
                header: [0; 3],
                bytes: [0; MAX_COMMAND_DATA],
                len: 0,
            },
            pending: Pending {
                bytes: [0; RESPONSE_CAPACITY],
                start: 0,
                end: 0,
            },
        }
    }

    /// The current persistent state, encoded exactly as it was last stored.
    pub fn state_bytes(&self) -> Zeroizing<[u8; STATE_LEN]> {
        self.state.encode()
    }

    /// The identity record.
    pub fn identity(&self) -> CardIdentity {
        CardIdentity {
            card_id: self.state.card_id,
            applet_version: APPLET_VERSION,
            lifecycle: self.state.lifecycle(),
            algorithm: ALGORITHM_COMPCODE_V1,
            // The hand's templates only: whoever reads the identity (no session needed) must
            // not learn that a duress hand exists (applet 1.8; earlier applets counted every
            // used slot, so a duress hand showed as one slot more than the hand's). A card with
            // duress templates and none of the hand (which applet 1.8 never writes, an earlier
            // one could) counts them all, so that it never reads as not enrolled.
            slots_used: match self.state.slots_of(SlotKind::Normal) {
                0 => self.state.slots_used(),
                hand => hand,
            },
            slot_capacity: SLOT_COUNT as u8,
            tries_left: self.state.tries_left,
            max_tries: self.state.max_tries,
        }
    }

    /// The meal entitlement record; `None` until the first meal is served.
    pub fn meal_entitlement(&self) -> Option<MealEntitlement> {
        self.state.entitlement
    }

    /// The profile floor: the weakest profile VERIFY PALM applies; `None` when none is set.
    pub fn profile_floor(&self) -> Option<Profile> {
        self.state.profile_floor
    }

    /// Whether a secure session is open (for tests and diagnostics).
    pub fn session_open(&self) -> bool {
        self.session.is_some()
    }

    /// The storage (for tests and the virtual card).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// The storage, mutably (tests: make the next write fail).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// Power loss or card reset: all volatile state (selection, session, chains) is lost.
    pub fn reset(&mut self) {
        self.selected = false;
        self.session = None;
        self.chain.active = false;
        self.chain.len = 0;
        self.chain.bytes.zeroize();
        self.clear_pending();
    }

    fn clear_pending(&mut self) {
        self.pending.bytes[..self.pending.end].zeroize();
        self.pending.start = 0;
        self.pending.end = 0;
    }

    /// Processes one command APDU. The response data goes to `response`; the status word is
    /// returned. Never panics, whatever the input.
    pub fn process(&mut self, command: &[u8], response: &mut ResponseBuffer) -> StatusWord {
        response.len = 0;
        let apdu = match CommandApdu::parse(command) {
            Ok(apdu) => apdu,
            Err(_) => {
                self.abort_chain();
                self.clear_pending();
                return StatusWord::WrongLength;
            }
        };
        if apdu.ins == ins::GET_RESPONSE && apdu.cla == cla::ISO {
            return self.get_response(&apdu, response);
        }
        self.clear_pending();

        let chained = apdu.cla & cla::CHAINING != 0;
        let header = [apdu.ins, apdu.p1, apdu.p2];
        if self.chain.active && self.chain.header != header {
            self.abort_chain();
            return StatusWord::LastCommandOfChainExpected;
        }
        if chained {
            if apdu.cla != cla::PROPRIETARY | cla::CHAINING {
                self.abort_chain();
                return StatusWord::ClaNotSupported;
            }
            // Only the parts of a command that takes data, for a selected applet: anything
            // else is refused now rather than answered 9000 and buffered.
            if !ins::takes_data(apdu.ins) {
                self.abort_chain();
                return if ins::is_known(apdu.ins) {
                    StatusWord::ChainingNotSupported
                } else {
                    StatusWord::InsNotSupported
                };
            }
            if !self.selected {
                self.abort_chain();
                return StatusWord::ConditionsNotSatisfied;
            }
            let end = self.chain.len + apdu.data.len();
            if end > MAX_COMMAND_DATA {
                self.abort_chain();
                return self.refuse_too_long(header, response);
            }
            self.chain.bytes[self.chain.len..end].copy_from_slice(apdu.data);
            self.chain.len = end;
            self.chain.active = true;
            self.chain.header = header;
            return StatusWord::Success;
        }

        // The whole command data: earlier chained parts, then this APDU's data.
        let prefix = if self.chain.active { self.chain.len } else { 0 };
        let total = prefix + apdu.data.len();
        if total > MAX_COMMAND_DATA {
            self.abort_chain();
            if apdu.cla != cla::PROPRIETARY {
                return StatusWord::WrongLength;
            }
            return self.refuse_too_long(header, response);
        }
        let mut data = Scratch {
            bytes: [0u8; MAX_COMMAND_DATA],
            len: total,
        };
        data.bytes[..prefix].copy_from_slice(&self.chain.bytes[..prefix]);
        data.bytes[prefix..total].copy_from_slice(apdu.data);
        self.abort_chain();

        let mut out = Out {
            bytes: [0; RESPONSE_CAPACITY],
            len: 0,
        };
        let sw = self.dispatch(apdu.cla, header, &mut data.bytes[..total], &mut out);
        self.deliver(&out.bytes[..out.len], apdu.max_response_len(), response);
        match sw {
            StatusWord::Success if self.pending.end > self.pending.start => {
                StatusWord::BytesRemaining(remaining_byte(self.pending.end - self.pending.start))
            }
            sw => sw,
        }
    }

    /// `6700` for command data over [`MAX_COMMAND_DATA`]. For a secure instruction in an open
    /// session the answer is encrypted like every other answer to a secure command: the command
    /// counts as one message in each direction (the card cannot hold it to authenticate it), so
    /// the session stays usable.
    fn refuse_too_long(&mut self, header: [u8; 3], response: &mut ResponseBuffer) -> StatusWord {
        let sw = StatusWord::WrongLength;
        if !self.selected || !ins::SECURE.contains(&header[0]) {
            return sw;
        }
        let Some(mut session) = self.session.take() else {
            return sw;
        };
        let now = self.clock.now_ms();
        if now.saturating_sub(session.last_used_ms) > SESSION_IDLE_LIMIT_MS {
            return sw;
        }
        session.channel.skip_command();
        let tag = session
            .channel
            .seal_response(header, sw.to_bytes(), &mut []);
        response.set(&tag);
        session.last_used_ms = now;
        self.session = Some(session);
        sw
    }

    fn abort_chain(&mut self) {
        self.chain.active = false;
        self.chain.bytes[..self.chain.len].zeroize();
        self.chain.len = 0;
    }

    /// Sends at most `limit` bytes now and keeps the rest for GET RESPONSE.
    fn deliver(&mut self, bytes: &[u8], limit: usize, response: &mut ResponseBuffer) {
        let now = bytes.len().min(limit);
        response.set(&bytes[..now]);
        let rest = &bytes[now..];
        self.pending.bytes[..rest.len()].copy_from_slice(rest);
        self.pending.start = 0;
        self.pending.end = rest.len();
    }

    fn get_response(
        &mut self,
        apdu: &CommandApdu<'_>,
        response: &mut ResponseBuffer,
    ) -> StatusWord {
        if apdu.p1 != 0 || apdu.p2 != 0 {
            return StatusWord::IncorrectP1P2;
        }
        if self.pending.end == self.pending.start {
            return StatusWord::ConditionsNotSatisfied;
        }
        let available = self.pending.end - self.pending.start;
        let now = available.min(apdu.max_response_len());
        let start = self.pending.start;
        response.set(&self.pending.bytes[start..start + now]);
        self.pending.bytes[start..start + now].zeroize();
        self.pending.start += now;
        let left = self.pending.end - self.pending.start;
        if left == 0 {
            self.clear_pending();
            StatusWord::Success
        } else {
            StatusWord::BytesRemaining(remaining_byte(left))
        }
    }

    fn dispatch(
        &mut self,
        class: u8,
        header: [u8; 3],
        data: &mut [u8],
        out: &mut Out,
    ) -> StatusWord {
        let [instruction, p1, p2] = header;
        if instruction == ins::SELECT {
            if class != cla::ISO {
                return StatusWord::ClaNotSupported;
            }
            return self.select(p1, p2, data, out);
        }
        if class != cla::PROPRIETARY {
            return StatusWord::ClaNotSupported;
        }
        if !self.selected {
            return StatusWord::ConditionsNotSatisfied;
        }
        match instruction {
            ins::GET_DATA => self.get_data(p1, p2, data, out),
            ins::PERSONALISE => self.personalise(p1, p2, data, out),
            ins::OPEN_SESSION => self.open_session(p1, p2, data, out),
            i if ins::SECURE.contains(&i) => self.secure(header, data, out),
            _ => StatusWord::InsNotSupported,
        }
    }

    fn select(&mut self, p1: u8, p2: u8, data: &[u8], out: &mut Out) -> StatusWord {
        if p1 != 0x04 || p2 != 0x00 {
            return StatusWord::IncorrectP1P2;
        }
        self.session = None;
        if data != AID {
            self.selected = false;
            return StatusWord::ApplicationNotFound;
        }
        self.selected = true;
        out.put(&self.identity().encode());
        StatusWord::Success
    }

    fn get_data(&mut self, p1: u8, p2: u8, data: &[u8], out: &mut Out) -> StatusWord {
        if !data.is_empty() {
            return StatusWord::WrongLength;
        }
        match (p1, p2) {
            data::IDENTITY => out.put(&self.identity().encode()),
            data::CERTIFICATE => {
                if self.state.lifecycle() != Lifecycle::Personalised {
                    return StatusWord::ReferencedDataNotFound;
                }
                let certificate = self.state.certificate;
                out.put(&certificate);
            }
            data::PROFILE_FLOOR => out.put(&[profile_floor::encode(self.state.profile_floor)]),
            _ => return StatusWord::IncorrectP1P2,
        }
        StatusWord::Success
    }

    /// Stores `next` and adopts it, or leaves everything unchanged.
    fn commit(&mut self, next: PersistentState) -> Result<(), StatusWord> {
        let encoded = next.encode();
        self.storage
            .store(&encoded)
            .map_err(|StorageFailed| StatusWord::MemoryFailure)?;
        self.card_key = next.card_key();
        self.state = next;
        Ok(())
    }

    fn personalise(&mut self, p1: u8, p2: u8, data: &[u8], out: &mut Out) -> StatusWord {
        if p2 != 0 {
            return StatusWord::IncorrectP1P2;
        }
        let lifecycle = self.state.lifecycle();
        match p1 {
            personalise::GENERATE_KEY => {
                if lifecycle == Lifecycle::Personalised {
                    return StatusWord::ConditionsNotSatisfied;
                }
                let Ok(card_id) = <[u8; CARD_ID_LEN]>::try_from(data) else {
                    return StatusWord::WrongLength;
                };
                let key = SigningKey::generate_from_rng(&mut self.rng);
                let mut next = self.state.clone();
                next.lifecycle = Lifecycle::Keyed.to_byte();
                next.card_id = card_id;
                next.card_secret.copy_from_slice(&key.to_bytes());
                if let Err(sw) = self.commit(next) {
                    return sw;
                }
                out.put(&encode_public_key(key.verifying_key()));
                StatusWord::Success
            }
            personalise::INSTALL_CERTIFICATE => {
                if lifecycle != Lifecycle::Keyed {
                    return StatusWord::ConditionsNotSatisfied;
                }
                if data.len() != PUBLIC_KEY_LEN + CARD_CERT_LEN {
                    return StatusWord::WrongLength;
                }
                let (issuer_bytes, cert_bytes) = data.split_at(PUBLIC_KEY_LEN);
                let Some(card_key) = &self.card_key else {
                    return StatusWord::ConditionsNotSatisfied;
                };
                let own_public = encode_public_key(card_key.verifying_key());
                let valid = decode_public_key(issuer_bytes).ok().and_then(|issuer| {
                    let cert = CardCertificate::decode(cert_bytes).ok()?;
                    cert.verify(&issuer).ok()?;
                    (cert.card_id() == self.state.card_id && cert.card_public_key() == own_public)
                        .then_some(cert)
                });
                let Some(cert) = valid else {
                    return StatusWord::WrongData;
                };
                let mut next = self.state.clone();
                next.lifecycle = Lifecycle::Personalised.to_byte();
                next.issuer_public_key.copy_from_slice(issuer_bytes);
                next.certificate = *cert.as_bytes();
                match self.commit(next) {
                    Ok(()) => StatusWord::Success,
                    Err(sw) => sw,
                }
            }
            _ => StatusWord::IncorrectP1P2,
        }
    }

    fn open_session(&mut self, p1: u8, p2: u8, data: &[u8], out: &mut Out) -> StatusWord {
        // Any attempt ends the previous session.
        self.session = None;
        if p1 != 0 || p2 != 0 {
            return StatusWord::IncorrectP1P2;
        }
        if self.state.lifecycle() != Lifecycle::Personalised {
            return StatusWord::ConditionsNotSatisfied;
        }
        if data.len() != PUBLIC_KEY_LEN + NONCE_LEN {
            return StatusWord::WrongLength;
        }
        let Some(card_key) = &self.card_key else {
            return StatusWord::ConditionsNotSatisfied;
        };
        let (gate_bytes, gate_nonce) = data.split_at(PUBLIC_KEY_LEN);
        let Ok(gate_public) = decode_public_key(gate_bytes) else {
            return StatusWord::WrongData;
        };
        let mut gate_public_bytes = [0u8; PUBLIC_KEY_LEN];
        gate_public_bytes.copy_from_slice(gate_bytes);
        let mut gate_nonce_bytes = [0u8; NONCE_LEN];
        gate_nonce_bytes.copy_from_slice(gate_nonce);
        let mut card_nonce = [0u8; NONCE_LEN];
        self.rng.fill_bytes(&mut card_nonce);

        let transcript = transcript_hash(
            &self.state.card_id,
            &encode_public_key(card_key.verifying_key()),
            &gate_public_bytes,
            &gate_nonce_bytes,
            &card_nonce,
        );
        let shared = ecdh(
            card_key.as_nonzero_scalar(),
            &p256::PublicKey::from(&gate_public),
        );
        let keys = SessionKeys::derive(&shared, &transcript);
        let mut channel = SecureChannel::new(&keys);
        let confirmation = channel.confirmation(&transcript);
        let now = self.clock.now_ms();
        self.session = Some(Session {
            channel,
            transcript,
            authority: 0,
            palm_matched: false,
            last_used_ms: now,
        });
        out.put(&card_nonce);
        out.put(&confirmation);
        StatusWord::Success
    }

    /// Decrypts a secure command, runs it, encrypts the response. A message that fails
    /// authentication closes the session.
    fn secure(&mut self, header: [u8; 3], data: &mut [u8], out: &mut Out) -> StatusWord {
        let Some(mut session) = self.session.take() else {
            return StatusWord::SecurityStatusNotSatisfied;
        };
        let now = self.clock.now_ms();
        if now.saturating_sub(session.last_used_ms) > SESSION_IDLE_LIMIT_MS {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        let Some(body_len) = data.len().checked_sub(TAG_LEN) else {
            return StatusWord::SecureMessagingIncorrect;
        };
        let (body, tag) = data.split_at_mut(body_len);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        if session
            .channel
            .open_command(header, body, &tag_bytes)
            .is_err()
        {
            return StatusWord::SecureMessagingIncorrect;
        }
        let plain: &[u8] = body;
        let sw = match header[0] {
            // VERIFY PALM alone uses P1: the profile (authenticated above, like the data).
            ins::VERIFY_PALM if header[2] == 0 => {
                self.verify_palm(&mut session, header[1], plain, out)
            }
            _ if header[1] != 0 || header[2] != 0 => StatusWord::IncorrectP1P2,
            ins::PROVE_AUTHORITY => self.prove_authority(&mut session, plain),
            ins::ENROL => self.enrol(&session, plain),
            ins::SET_PROFILE_FLOOR => self.set_profile_floor(&session, plain),
            ins::SET_POLICY => self.set_policy(&session, plain),
            ins::RESET_RETRY_COUNTER => self.reset_retry_counter(&session, plain),
            ins::ERASE => self.erase(&session, plain, out),
            ins::GET_RECEIPT => self.get_receipt(&session, plain, out),
            ins::REDEEM_MEAL => self.redeem_meal(&mut session, plain, out),
            _ => StatusWord::InsNotSupported,
        };
        let len = out.len;
        let tag = session
            .channel
            .seal_response(header, sw.to_bytes(), &mut out.bytes[..len]);
        out.put(&tag);
        session.last_used_ms = now;
        self.session = Some(session);
        sw
    }

    fn verify_palm(
        &mut self,
        session: &mut Session,
        profile_code: u8,
        plain: &[u8],
        out: &mut Out,
    ) -> StatusWord {
        // Only this attempt's decision counts: whatever it answers, an earlier match is gone.
        session.palm_matched = false;
        // An unknown profile is refused before anything else: no try spent, nothing compared.
        let Some(requested) = verify_profile::decode(profile_code) else {
            return StatusWord::IncorrectP1P2;
        };
        // The floor set at enrolment raises a weaker request (a gate, or a thief's own reader,
        // cannot loosen it); P1 still names what the gate asked for, authenticated as before.
        let profile = profile_floor::applied(requested, self.state.profile_floor);
        // The probe cut at 1 to MAX_PROBE_POSES poses (applet 1.4; a gate before it sends one).
        // Every template is checked before a try is spent.
        let Some(poses) = probe_poses(plain.len()) else {
            return StatusWord::WrongLength;
        };
        // Checked here, decoded again pose by pose below: the card never holds the decoded
        // poses together beside the command (a Java Card has a few KB of RAM).
        for encoded in plain.chunks_exact(TEMPLATE_LEN) {
            if encoded[1] != ALGORITHM_COMPCODE_V1 {
                return StatusWord::FunctionNotSupported;
            }
            if Template::decode(encoded).is_err() {
                return StatusWord::WrongData;
            }
        }
        if self.state.slots_used() == 0 {
            return StatusWord::ReferencedDataNotFound;
        }
        if self.state.tries_left == 0 {
            out.put(&[decision::BLOCKED, decision::NO_SLOT, 0]);
            return StatusWord::AuthenticationBlocked;
        }
        // Spend the try first: a card pulled during the comparison has lost it.
        let mut next = self.state.clone();
        next.tries_left -= 1;
        if let Err(sw) = self.commit(next) {
            return sw;
        }

        // The probe's distance to a hand is the minimum over that hand's templates and the
        // probe's poses, so the profile's threshold depends on how many of each there are: one
        // hand per slot kind.
        let enrolled = |kind| usize::from(self.state.slots_of(kind));
        let threshold_normal = profile.threshold(enrolled(SlotKind::Normal), poses);
        let threshold_duress = profile.threshold(enrolled(SlotKind::Duress), poses);
        // Every pose is compared with every slot; the result is accumulated without
        // data-dependent branches (a minimum under the threshold is any pair under it).
        let mut matched_normal = subtle::Choice::from(0);
        let mut matched_duress = subtle::Choice::from(0);
        for slot in &self.state.slots {
            if !slot.used {
                continue;
            }
            let Ok(reference) = Template::decode(&slot.template) else {
                continue;
            };
            let duress = subtle::Choice::from(u8::from(slot.kind == SlotKind::Duress.to_byte()));
            let threshold = Threshold::from_q16(u32::conditional_select(
                &threshold_normal.q16(),
                &threshold_duress.q16(),
                duress,
            ));
            for encoded in plain.chunks_exact(TEMPLATE_LEN) {
                let Ok(probe) = Template::decode(encoded) else {
                    continue;
                };
                let Ok(comparison) = compare(&probe, &reference) else {
                    continue;
                };
                let is_match = subtle::Choice::from(u8::from(comparison.is_match(threshold)));
                matched_duress |= is_match & duress;
                matched_normal |= is_match & !duress;
            }
        }
        let matched = matched_normal | matched_duress;
        if bool::from(matched) {
            let mut next = self.state.clone();
            next.tries_left = next.max_tries;
            // The decision stands even if restoring the counter could not be stored.
            let _ = self.commit(next);
            let kind = u8::conditional_select(
                &SlotKind::Normal.to_byte(),
                &SlotKind::Duress.to_byte(),
                matched_duress,
            );
            out.put(&[decision::MATCH, kind, self.state.tries_left]);
            session.palm_matched = true;
            StatusWord::Success
        } else {
            let tries_left = self.state.tries_left;
            out.put(&[decision::NO_MATCH, decision::NO_SLOT, tries_left]);
            StatusWord::VerifyFailed { tries_left }
        }
    }

    fn prove_authority(&mut self, session: &mut Session, plain: &[u8]) -> StatusWord {
        session.authority = 0;
        if plain.len() != AUTHORITY_CERT_LEN + SIGNATURE_LEN {
            return StatusWord::WrongLength;
        }
        let (cert_bytes, signature) = plain.split_at(AUTHORITY_CERT_LEN);
        let Ok(cert) = AuthorityCertificate::decode(cert_bytes) else {
            return StatusWord::WrongData;
        };
        let Ok(issuer) = decode_public_key(&self.state.issuer_public_key) else {
            return StatusWord::ConditionsNotSatisfied;
        };
        let Ok(authority) = cert.verify(&issuer) else {
            return StatusWord::SecurityStatusNotSatisfied;
        };
        if verify(
            &authority,
            &authority_message(&session.transcript),
            signature,
        )
        .is_err()
        {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        session.authority = cert.permissions();
        StatusWord::Success
    }

    fn enrol(&mut self, session: &Session, plain: &[u8]) -> StatusWord {
        if session.authority & permission::ENROL == 0 {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        if plain.len() != 2 + TEMPLATE_LEN {
            return StatusWord::WrongLength;
        }
        let (slot, template) = (usize::from(plain[0]), &plain[2..]);
        let Some(kind) = SlotKind::from_byte(plain[1]).filter(|_| slot < SLOT_COUNT) else {
            return StatusWord::WrongData;
        };
        if template[1] != ALGORITHM_COMPCODE_V1 {
            return StatusWord::FunctionNotSupported;
        }
        if Template::decode(template).is_err() {
            return StatusWord::WrongData;
        }
        let mut next = self.state.clone();
        next.slots[slot].used = true;
        next.slots[slot].kind = kind.to_byte();
        next.slots[slot].template.copy_from_slice(template);
        // A hand holds at most as many templates as the thresholds are calibrated for: a minimum
        // over more would bring impostors closer than its profile's target (applet 1.8, whose
        // six slots would otherwise take six templates of one hand).
        if usize::from(next.slots_of(kind)) > MAX_ENROLLED_TEMPLATES {
            return StatusWord::NotEnoughMemory;
        }
        // A duress hand only beside the hand: the identity counts the hand's templates alone, so
        // a card holding duress templates and none of the hand would read as not enrolled.
        if next.slots_of(SlotKind::Normal) == 0 && next.slots_used() > 0 {
            return StatusWord::ConditionsNotSatisfied;
        }
        match self.commit(next) {
            Ok(()) => StatusWord::Success,
            Err(sw) => sw,
        }
    }

    /// SET PROFILE FLOOR: under the same permission as ENROL, since the floor is part of what an
    /// enrolment decides and an authority that may replace the templates gains nothing by
    /// lowering it. `00` removes the floor.
    fn set_profile_floor(&mut self, session: &Session, plain: &[u8]) -> StatusWord {
        if session.authority & permission::ENROL == 0 {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        let [floor] = plain else {
            return StatusWord::WrongLength;
        };
        let Ok(floor) = profile_floor::decode(*floor) else {
            return StatusWord::WrongData;
        };
        let mut next = self.state.clone();
        next.profile_floor = floor;
        match self.commit(next) {
            Ok(()) => StatusWord::Success,
            Err(sw) => sw,
        }
    }

    fn set_policy(&mut self, session: &Session, plain: &[u8]) -> StatusWord {
        if session.authority & permission::SET_POLICY == 0 {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        let [max_tries] = plain else {
            return StatusWord::WrongLength;
        };
        if *max_tries == 0 || *max_tries > MAX_TRIES_LIMIT {
            return StatusWord::WrongData;
        }
        let mut next = self.state.clone();
        next.max_tries = *max_tries;
        next.tries_left = *max_tries;
        match self.commit(next) {
            Ok(()) => StatusWord::Success,
            Err(sw) => sw,
        }
    }

    fn reset_retry_counter(&mut self, session: &Session, plain: &[u8]) -> StatusWord {
        if session.authority & permission::RESET_RETRY_COUNTER == 0 {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        if !plain.is_empty() {
            return StatusWord::WrongLength;
        }
        let mut next = self.state.clone();
        next.tries_left = next.max_tries;
        match self.commit(next) {
            Ok(()) => StatusWord::Success,
            Err(sw) => sw,
        }
    }

    fn erase(&mut self, session: &Session, plain: &[u8], out: &mut Out) -> StatusWord {
        if session.authority & permission::ERASE == 0 {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        let Ok(timestamp) = <[u8; 8]>::try_from(plain) else {
            return StatusWord::WrongLength;
        };
        let Some(card_key) = self.card_key.clone() else {
            return StatusWord::ConditionsNotSatisfied;
        };
        let mut commitment = Commitment::new();
        for slot in &self.state.slots {
            commitment.add_slot(slot.used, slot.kind, &slot.template);
        }
        let mut next = self.state.clone();
        let slots_erased = next.slots_used();
        for slot in &mut next.slots {
            slot.zeroize();
        }
        // The floor belonged to the hand that was enrolled: the next enrolment sets its own.
        next.profile_floor = None;
        next.erase_counter = next.erase_counter.saturating_add(1);
        let fields = ReceiptFields {
            card_id: next.card_id,
            erase_counter: next.erase_counter,
            gate_timestamp: u64::from_be_bytes(timestamp),
            slots_erased,
            commitment: commitment.finish(),
        };
        // The receipt is stored with the erase, in the same write: a card pulled before the
        // answer leaves it readable with GET RECEIPT.
        let receipt = DeletionReceipt::sign(&fields, &card_key);
        if !next
            .last_receipt
            .set(ins::ERASE, permission::ERASE, receipt.as_bytes())
        {
            return StatusWord::ConditionsNotSatisfied;
        }
        if let Err(sw) = self.commit(next) {
            return sw;
        }
        out.put(receipt.as_bytes());
        StatusWord::Success
    }

    /// REDEEM MEAL: one meal of the requested period, after a palm match in this session (a
    /// duress match included: the gate raises its silent alarm, the card behaves as for any
    /// match). Decrement-first: the new count, the receipt counter and the receipt are stored in
    /// one write before the answer; if the write fails nothing changes (`6581`).
    fn redeem_meal(&mut self, session: &mut Session, plain: &[u8], out: &mut Out) -> StatusWord {
        if !session.palm_matched {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        let request = match MealRequest::decode(plain) {
            Ok(request) => request,
            Err(MealRequestError::Length) => return StatusWord::WrongLength,
            Err(MealRequestError::ZeroAllowance) => return StatusWord::WrongData,
        };
        let Some(card_key) = self.card_key.clone() else {
            return StatusWord::ConditionsNotSatisfied;
        };
        let stored = self.state.entitlement.unwrap_or_default();
        // Counters never go back: a gate whose clock is behind cannot start an earlier period.
        if request.period < stored.period {
            out.put(&encode_period_behind(stored.period));
            return StatusWord::ConditionsNotSatisfied;
        }
        let served = if request.period == stored.period {
            stored.count
        } else {
            0
        };
        if served >= request.allowance {
            out.put(&encode_allowance_used(served, request.allowance));
            return StatusWord::ReferenceDataNotUsable;
        }
        let Some(receipt_counter) = stored.receipt_counter.checked_add(1) else {
            return StatusWord::NotEnoughMemory;
        };
        let entitlement = MealEntitlement {
            period: request.period,
            count: served + 1,
            receipt_counter,
        };
        let receipt = SignedMealReceipt::sign(
            &MealReceiptFields {
                card_id: self.state.card_id,
                period: entitlement.period,
                count: entitlement.count,
                allowance: request.allowance,
                gate_time: request.gate_time,
                receipt_counter,
            },
            &card_key,
        );
        let mut next = self.state.clone();
        next.entitlement = Some(entitlement);
        // Kept in the same write as the count: a card pulled before the answer has served the
        // meal and keeps its receipt for GET RECEIPT (any session may read it).
        if !next
            .last_receipt
            .set(ins::REDEEM_MEAL, 0, receipt.as_bytes())
        {
            return StatusWord::ConditionsNotSatisfied;
        }
        if let Err(sw) = self.commit(next) {
            return sw;
        }
        // One palm match, at most one meal.
        session.palm_matched = false;
        out.put(receipt.as_bytes());
        StatusWord::Success
    }

    /// The kept receipt: `instruction that produced it (1) || receipt`. Reading it needs the
    /// permission the producing command needed (ERASE: an authority with the erase bit; REDEEM
    /// MEAL: none).
    fn get_receipt(&mut self, session: &Session, plain: &[u8], out: &mut Out) -> StatusWord {
        if !plain.is_empty() {
            return StatusWord::WrongLength;
        }
        let kept = &self.state.last_receipt;
        let Some(receipt) = kept.get() else {
            return StatusWord::ReferencedDataNotFound;
        };
        if session.authority & kept.permission != kept.permission {
            return StatusWord::SecurityStatusNotSatisfied;
        }
        out.put(&[kept.instruction]);
        out.put(receipt);
        StatusWord::Success
    }
}

/// `xx` of `61xx`: the bytes still available, `00` meaning 256 or more.
fn remaining_byte(left: usize) -> u8 {
    if left >= 256 { 0 } else { left as u8 }
}
