//! The card's persistent state and its fixed byte layout (what a secure element keeps in flash and
//! `palmgate-vcard` keeps in its `--state` file).
//!
//! Layout, version 5 (`STATE_LEN` bytes): `"PGST" | version 05 | lifecycle | card_id(16) |
//! card secret(32) | issuer public key(65) | card certificate(158) | max_tries | tries_left |
//! erase_counter(u32 BE) | 4 × slot(used | kind | template(292)) (slots 0–3) | last
//! receipt(instruction | permission | length(u16 BE) | bytes(256, zero padded)) |
//! entitlement(present | period(u32 BE) | count | receipt counter(u32 BE)) | profile floor(1: `00`
//! none, `01`–`03` a profile) | 2 × slot (slots 4 and 5) | SHA-256 of everything before(32)`.
//! Slots 4 and 5 (applet 1.8) come after what the earlier layouts hold so that every earlier field
//! keeps its offset.
//!
//! Older layouts still load and are rewritten as version 5 at the next change: version 4
//! (`STATE_V4_LEN` bytes, applets 1.5 to 1.7) is the same with four slots (slots 4 and 5 load
//! empty), version 3 (`STATE_V3_LEN` bytes, applets 1.3 and 1.4) also without the profile floor
//! (loads as "no floor": the card applies what the gate asks, as those applets did), version 2
//! (`STATE_V2_LEN` bytes, applet 1.1) also without the entitlement record (loads as "no
//! entitlement record": nothing served yet), version 1 (`STATE_V1_LEN` bytes, applet 1.0) also
//! without the last-receipt record (loads as "no receipt kept").

use p256::ecdsa::SigningKey;
use palmgate_matcher::Profile;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::protocol::cert::{CARD_CERT_LEN, CardCertificate, decode_public_key};
use crate::protocol::{
    CARD_ID_LEN, DEFAULT_MAX_TRIES, Lifecycle, MAX_TRIES_LIMIT, PUBLIC_KEY_LEN, SLOT_COUNT,
    SLOT_COUNT_BEFORE_1_8, SlotKind, TEMPLATE_LEN, profile_floor,
};

/// State magic.
pub const STATE_MAGIC: [u8; 4] = *b"PGST";
/// State layout version written by this applet.
pub const STATE_VERSION: u8 = 5;
/// The first layout (applet 1.0): no last-receipt record.
const STATE_VERSION_1: u8 = 1;
/// Applet 1.1's layout: no entitlement record.
const STATE_VERSION_2: u8 = 2;
/// Applets 1.3 and 1.4: no profile floor.
const STATE_VERSION_3: u8 = 3;
/// Applets 1.5 to 1.7: four slots.
const STATE_VERSION_4: u8 = 4;
const SLOT_LEN: usize = 2 + TEMPLATE_LEN;
/// Largest receipt the card keeps for GET RECEIPT.
pub const RECEIPT_CAPACITY: usize = 256;
const RECEIPT_RECORD_LEN: usize = 1 + 1 + 2 + RECEIPT_CAPACITY;
const BODY_V1_LEN: usize = 4
    + 1
    + 1
    + CARD_ID_LEN
    + 32
    + PUBLIC_KEY_LEN
    + CARD_CERT_LEN
    + 1
    + 1
    + 4
    + SLOT_COUNT_BEFORE_1_8 * SLOT_LEN;
const BODY_V2_LEN: usize = BODY_V1_LEN + RECEIPT_RECORD_LEN;
const ENTITLEMENT_RECORD_LEN: usize = 1 + 4 + 1 + 4;
const BODY_V3_LEN: usize = BODY_V2_LEN + ENTITLEMENT_RECORD_LEN;
const PROFILE_FLOOR_LEN: usize = 1;
const BODY_V4_LEN: usize = BODY_V3_LEN + PROFILE_FLOOR_LEN;
const BODY_LEN: usize = BODY_V4_LEN + (SLOT_COUNT - SLOT_COUNT_BEFORE_1_8) * SLOT_LEN;
/// Encoded state length (version 5).
pub const STATE_LEN: usize = BODY_LEN + 32;
/// Encoded length of a version 1 state (still accepted by [`PersistentState::decode`]).
pub const STATE_V1_LEN: usize = BODY_V1_LEN + 32;
/// Encoded length of a version 2 state (still accepted by [`PersistentState::decode`]).
pub const STATE_V2_LEN: usize = BODY_V2_LEN + 32;
/// Encoded length of a version 3 state (still accepted by [`PersistentState::decode`]).
pub const STATE_V3_LEN: usize = BODY_V3_LEN + 32;
/// Encoded length of a version 4 state (still accepted by [`PersistentState::decode`]).
pub const STATE_V4_LEN: usize = BODY_V4_LEN + 32;

/// Why stored state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// Wrong length, magic or version.
    Format,
    /// The checksum does not match (corrupted storage).
    Checksum,
    /// A field holds a value the applet never writes.
    Inconsistent(&'static str),
}

impl core::error::Error for StateError {}

impl core::fmt::Display for StateError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Format => f.write_str("card state has the wrong length, magic or version"),
            Self::Checksum => f.write_str("card state checksum does not match (corrupted)"),
            Self::Inconsistent(what) => write!(f, "card state is inconsistent: {what}"),
        }
    }
}

/// One template slot.
#[derive(Clone, Zeroize)]
pub(crate) struct Slot {
    pub(crate) used: bool,
    pub(crate) kind: u8,
    pub(crate) template: [u8; TEMPLATE_LEN],
}

/// The answer of the last receipt-bearing command (ERASE, REDEEM MEAL), kept until the next one
/// replaces it so that a receipt whose answer was lost (card pulled between store and answer) can
/// be read again with GET RECEIPT.
#[derive(Clone, Zeroize)]
pub(crate) struct LastReceipt {
    /// Instruction that produced it; 0 when none is kept.
    pub(crate) instruction: u8,
    /// Permission bit an enrolment authority needs to read it (0: any open session).
    pub(crate) permission: u8,
    pub(crate) len: u16,
    pub(crate) bytes: [u8; RECEIPT_CAPACITY],
}

impl LastReceipt {
    const fn none() -> Self {
        Self {
            instruction: 0,
            permission: 0,
            len: 0,
            bytes: [0; RECEIPT_CAPACITY],
        }
    }

    /// The kept receipt, if any.
    pub(crate) fn get(&self) -> Option<&[u8]> {
        (self.instruction != 0).then(|| &self.bytes[..usize::from(self.len)])
    }

    /// Keeps `receipt` (at most [`RECEIPT_CAPACITY`] bytes: a longer one is a programming error
    /// and is refused).
    pub(crate) fn set(&mut self, instruction: u8, permission: u8, receipt: &[u8]) -> bool {
        let Ok(len) = u16::try_from(receipt.len()) else {
            return false;
        };
        if receipt.len() > RECEIPT_CAPACITY || instruction == 0 {
            return false;
        }
        self.bytes = [0; RECEIPT_CAPACITY];
        self.bytes[..receipt.len()].copy_from_slice(receipt);
        self.instruction = instruction;
        self.permission = permission;
        self.len = len;
        true
    }
}

/// The meal entitlement record (applet 1.3), created by the first REDEEM MEAL that serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Zeroize)]
pub struct MealEntitlement {
    /// The last period a meal was served in.
    pub period: u32,
    /// Meals served in that period.
    pub count: u8,
    /// Meal receipts issued so far (the last receipt's counter); only ever grows.
    pub receipt_counter: u32,
}

/// Everything the card keeps across power cycles.
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub(crate) struct PersistentState {
    pub(crate) lifecycle: u8,
    pub(crate) card_id: [u8; CARD_ID_LEN],
    pub(crate) card_secret: [u8; 32],
    pub(crate) issuer_public_key: [u8; PUBLIC_KEY_LEN],
    pub(crate) certificate: [u8; CARD_CERT_LEN],
    pub(crate) max_tries: u8,
    pub(crate) tries_left: u8,
    pub(crate) erase_counter: u32,
    pub(crate) slots: [Slot; SLOT_COUNT],
    pub(crate) last_receipt: LastReceipt,
    /// `None` until the first meal is served (and on a card whose state predates applet 1.3).
    pub(crate) entitlement: Option<MealEntitlement>,
    /// The weakest profile VERIFY PALM applies (set under an enrolment authority, cleared by
    /// ERASE); `None` also on a card whose state predates applet 1.5. Not secret: skipped by
    /// zeroize.
    #[zeroize(skip)]
    pub(crate) profile_floor: Option<Profile>,
}

impl PersistentState {
    /// The factory state.
    pub(crate) fn factory() -> Self {
        Self {
            lifecycle: Lifecycle::Factory.to_byte(),
            card_id: [0; CARD_ID_LEN],
            card_secret: [0; 32],
            issuer_public_key: [0; PUBLIC_KEY_LEN],
            certificate: [0; CARD_CERT_LEN],
            max_tries: DEFAULT_MAX_TRIES,
            tries_left: DEFAULT_MAX_TRIES,
            erase_counter: 0,
            slots: core::array::from_fn(|_| Slot {
                used: false,
                kind: 0,
                template: [0; TEMPLATE_LEN],
            }),
            last_receipt: LastReceipt::none(),
            entitlement: None,
            profile_floor: None,
        }
    }

    pub(crate) fn lifecycle(&self) -> Lifecycle {
        Lifecycle::from_byte(self.lifecycle).unwrap_or(Lifecycle::Factory)
    }

    pub(crate) fn slots_used(&self) -> u8 {
        self.slots.iter().filter(|slot| slot.used).count() as u8
    }

    /// Used slots of one kind.
    pub(crate) fn slots_of(&self, kind: SlotKind) -> u8 {
        self.slots
            .iter()
            .filter(|slot| slot.used && slot.kind == kind.to_byte())
            .count() as u8
    }

    /// The card signing key (keyed and personalised states).
    pub(crate) fn card_key(&self) -> Option<SigningKey> {
        if self.lifecycle() == Lifecycle::Factory {
            return None;
        }
        SigningKey::from_slice(&self.card_secret).ok()
    }

    /// Serialises the state (the buffer holds the card secret: zeroized on drop).
    pub(crate) fn encode(&self) -> Zeroizing<[u8; STATE_LEN]> {
        let mut out = Zeroizing::new([0u8; STATE_LEN]);
        let mut w = Writer {
            buf: out.as_mut(),
            pos: 0,
        };
        w.put(&STATE_MAGIC);
        w.put(&[STATE_VERSION, self.lifecycle]);
        w.put(&self.card_id);
        w.put(&self.card_secret);
        w.put(&self.issuer_public_key);
        w.put(&self.certificate);
        w.put(&[self.max_tries, self.tries_left]);
        w.put(&self.erase_counter.to_be_bytes());
        let (first_slots, later_slots) = self.slots.split_at(SLOT_COUNT_BEFORE_1_8);
        for slot in first_slots {
            w.put_slot(slot);
        }
        let receipt = &self.last_receipt;
        w.put(&[receipt.instruction, receipt.permission]);
        w.put(&receipt.len.to_be_bytes());
        w.put(&receipt.bytes);
        let entitlement = self.entitlement.unwrap_or_default();
        w.put(&[u8::from(self.entitlement.is_some())]);
        w.put(&entitlement.period.to_be_bytes());
        w.put(&[entitlement.count]);
        w.put(&entitlement.receipt_counter.to_be_bytes());
        w.put(&[profile_floor::encode(self.profile_floor)]);
        for slot in later_slots {
            w.put_slot(slot);
        }
        let digest: [u8; 32] = Sha256::digest(&out[..BODY_LEN]).into();
        out[BODY_LEN..].copy_from_slice(&digest);
        out
    }

    /// Parses and validates stored state (version 5, or an older layout: version 4 with four
    /// slots, version 3 also without a profile floor, version 2 also without an entitlement
    /// record, version 1 also without a kept receipt).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let body_len = match (bytes.len(), bytes.get(..5)) {
            (STATE_LEN, Some([b'P', b'G', b'S', b'T', STATE_VERSION])) => BODY_LEN,
            (STATE_V4_LEN, Some([b'P', b'G', b'S', b'T', STATE_VERSION_4])) => BODY_V4_LEN,
            (STATE_V3_LEN, Some([b'P', b'G', b'S', b'T', STATE_VERSION_3])) => BODY_V3_LEN,
            (STATE_V2_LEN, Some([b'P', b'G', b'S', b'T', STATE_VERSION_2])) => BODY_V2_LEN,
            (STATE_V1_LEN, Some([b'P', b'G', b'S', b'T', STATE_VERSION_1])) => BODY_V1_LEN,
            _ => return Err(StateError::Format),
        };
        let digest: [u8; 32] = Sha256::digest(&bytes[..body_len]).into();
        if digest[..] != bytes[body_len..] {
            return Err(StateError::Checksum);
        }
        let mut r = Reader { buf: bytes, pos: 5 };
        let mut state = Self::factory();
        state.lifecycle = r.byte();
        r.take(&mut state.card_id);
        r.take(&mut state.card_secret);
        r.take(&mut state.issuer_public_key);
        r.take(&mut state.certificate);
        state.max_tries = r.byte();
        state.tries_left = r.byte();
        let mut counter = [0u8; 4];
        r.take(&mut counter);
        state.erase_counter = u32::from_be_bytes(counter);
        let (first_slots, later_slots) = state.slots.split_at_mut(SLOT_COUNT_BEFORE_1_8);
        for slot in first_slots {
            r.slot(slot)?;
        }
        if body_len >= BODY_V2_LEN {
            let receipt = &mut state.last_receipt;
            receipt.instruction = r.byte();
            receipt.permission = r.byte();
            let mut len = [0u8; 2];
            r.take(&mut len);
            receipt.len = u16::from_be_bytes(len);
            r.take(&mut receipt.bytes);
            if usize::from(receipt.len) > RECEIPT_CAPACITY
                || (receipt.instruction == 0 && receipt.len != 0)
            {
                return Err(StateError::Inconsistent("last receipt"));
            }
        }
        if body_len >= BODY_V3_LEN {
            let present = r.byte();
            let mut period = [0u8; 4];
            r.take(&mut period);
            let count = r.byte();
            let mut counter = [0u8; 4];
            r.take(&mut counter);
            let record = MealEntitlement {
                period: u32::from_be_bytes(period),
                count,
                receipt_counter: u32::from_be_bytes(counter),
            };
            state.entitlement = match present {
                0 if record == MealEntitlement::default() => None,
                // A record exists only once a meal was served: count and counter are at least 1.
                1 if record.receipt_counter != 0 && record.count != 0 => Some(record),
                _ => return Err(StateError::Inconsistent("entitlement record")),
            };
        }
        if body_len >= BODY_V4_LEN {
            state.profile_floor = profile_floor::decode(r.byte())
                .map_err(|_| StateError::Inconsistent("profile floor"))?;
        }
        // An older layout's card had four slots: the others stay empty.
        if body_len >= BODY_LEN {
            for slot in later_slots {
                r.slot(slot)?;
            }
        }
        let lifecycle =
            Lifecycle::from_byte(state.lifecycle).ok_or(StateError::Inconsistent("lifecycle"))?;
        if state.max_tries == 0
            || state.max_tries > MAX_TRIES_LIMIT
            || state.tries_left > state.max_tries
        {
            return Err(StateError::Inconsistent("retry counter"));
        }
        if lifecycle != Lifecycle::Factory && state.card_key().is_none() {
            return Err(StateError::Inconsistent("card key"));
        }
        if lifecycle == Lifecycle::Personalised {
            let issuer = decode_public_key(&state.issuer_public_key)
                .map_err(|_| StateError::Inconsistent("issuer key"))?;
            CardCertificate::decode(&state.certificate)
                .and_then(|cert| cert.verify(&issuer))
                .map_err(|_| StateError::Inconsistent("certificate"))?;
        }
        Ok(state)
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    fn put_slot(&mut self, slot: &Slot) {
        self.put(&[u8::from(slot.used), slot.kind]);
        self.put(&slot.template);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let byte = self.buf[self.pos];
        self.pos += 1;
        byte
    }

    fn take(&mut self, out: &mut [u8]) {
        out.copy_from_slice(&self.buf[self.pos..self.pos + out.len()]);
        self.pos += out.len();
    }

    /// Reads and checks one slot.
    fn slot(&mut self, slot: &mut Slot) -> Result<(), StateError> {
        slot.used = match self.byte() {
            0 => false,
            1 => true,
            _ => return Err(StateError::Inconsistent("slot used flag")),
        };
        slot.kind = self.byte();
        self.take(&mut slot.template);
        if SlotKind::from_byte(slot.kind).is_none() {
            return Err(StateError::Inconsistent("slot kind"));
        }
        if slot.used && palmgate_matcher::template::Template::decode(&slot.template).is_err() {
            return Err(StateError::Inconsistent("slot template"));
        }
        Ok(())
    }
}
