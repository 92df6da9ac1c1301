//! The palmgate card protocol: every byte on the wire is defined here, shared by the applet and the
//! host (see `docs/applet-protocol.md`).

pub mod apdu;
pub mod cert;
pub mod identity;
pub mod meal;
pub mod receipt;
pub mod session;
pub mod status;

pub use apdu::{ApduError, CommandApdu};
pub use status::StatusWord;

/// The applet's proprietary AID: `F0` (proprietary, no registered RID) + ASCII `palmgate` + version 1.
pub const AID: [u8; 10] = [0xF0, b'p', b'a', b'l', b'm', b'g', b'a', b't', b'e', 0x01];

/// Applet version reported in the identity (major, minor): 1.1 added GET RECEIPT and state layout 2,
/// 1.2 the security profile in VERIFY PALM's P1, 1.3 REDEEM MEAL and state layout 3 (the
/// entitlement record), 1.4 VERIFY PALM with up to [`MAX_PROBE_POSES`] probe poses, 1.5 the
/// profile floor (SET PROFILE FLOOR, GET DATA [`data::PROFILE_FLOOR`], state layout 4), 1.6 no
/// new command: the threshold table recalibrated (`palmgate_matcher::Profile`; stricter for two
/// or three templates), so that a card says which table it applies; 1.7 no new command: the
/// table recalibrated again without the comparisons of a hand filed under two names in the
/// development data (looser for `balanced` and most for `security`); 1.8 six template slots
/// instead of four (state layout 5), so that a duress hand is enrolled with three templates as the
/// normal hand is ([`SIX_SLOT_APPLET_VERSION`]); 1.9 no new command: the elastic comparison
/// (each quarter of the probe also moved by up to a cell on its own,
/// `palmgate_matcher::compare`) with the threshold table calibrated for it.
pub const APPLET_VERSION: (u8, u8) = (1, 9);
/// The first applet version that compares as this release does, with its threshold table
/// (`palmgate_matcher::compare`, `palmgate_matcher::Profile`); earlier applets compare at one
/// common shift with an earlier table, which refuses more genuine hands
/// (`docs/applet-protocol.md`, "VERIFY PALM profile"). Raised with every change of the
/// comparison or recalibration of the table.
pub const THRESHOLD_TABLE_APPLET_VERSION: (u8, u8) = (1, 9);
/// The first applet version with [`SLOT_COUNT`] slots, at most three templates of a hand, and an
/// identity whose slots-used count is the hand's templates alone (a duress hand's are not
/// counted, so that whoever reads the identity cannot learn that one exists).
pub const SIX_SLOT_APPLET_VERSION: (u8, u8) = (1, 8);
/// The first applet version that has REDEEM MEAL.
pub const MEAL_APPLET_VERSION: (u8, u8) = (1, 3);
/// The first applet version whose VERIFY PALM takes more than one probe pose (earlier ones take
/// exactly one template and answer `6700` to more).
pub const POSED_VERIFY_APPLET_VERSION: (u8, u8) = (1, 4);
/// The first applet version that keeps a profile floor (earlier ones answer `6D00` to SET PROFILE
/// FLOOR and `6A86` to GET DATA [`data::PROFILE_FLOOR`]).
pub const PROFILE_FLOOR_APPLET_VERSION: (u8, u8) = (1, 5);

/// Card id length.
pub const CARD_ID_LEN: usize = 16;
/// Uncompressed SEC1 P-256 public key length (`04 || X || Y`).
pub const PUBLIC_KEY_LEN: usize = 65;
/// Raw P-256 ECDSA signature length (`r || s`).
pub const SIGNATURE_LEN: usize = 64;
/// Nonce length in OPEN SECURE SESSION (both directions).
pub const NONCE_LEN: usize = 16;
/// AES-GCM tag length.
pub const TAG_LEN: usize = 16;
/// Encoded template length (matcher format v1).
pub const TEMPLATE_LEN: usize = palmgate_matcher::template::ENCODED_LEN;
/// Number of template slots on the card (applet 1.8; earlier applets have
/// [`SLOT_COUNT_BEFORE_1_8`] and answer `6A80` to ENROL in a slot beyond them). A host reads a
/// card's own count from its identity (`slot_capacity`).
pub const SLOT_COUNT: usize = 6;
/// Number of template slots of applets 1.0 to 1.7 (state layouts 1 to 4).
pub const SLOT_COUNT_BEFORE_1_8: usize = 4;
/// Retry counter used when the enrolment station sets none.
pub const DEFAULT_MAX_TRIES: u8 = 5;
/// Highest retry counter an enrolment station may set (as PIV on-card comparison).
pub const MAX_TRIES_LIMIT: u8 = 10;
/// Most probe templates one VERIFY PALM carries: the probe cut at each of the gate's poses
/// (`palmgate_matcher::extract::probe_poses`: three for a whole hand, five for a sensor's ROI).
pub const MAX_PROBE_POSES: usize = palmgate_matcher::MAX_PROBE_POSES;
/// Largest command data the applet accepts (after chaining): the largest command, a VERIFY PALM
/// of [`MAX_PROBE_POSES`] templates and its tag (1476 bytes). The card holds it twice in RAM (the
/// chain and the command being processed), so it is no larger.
pub const MAX_COMMAND_DATA: usize = MAX_PROBE_POSES * TEMPLATE_LEN + TAG_LEN;

/// The number of probe poses in a VERIFY PALM plaintext of `len` bytes: `Some(k)` when it is
/// `k` templates, `1 ≤ k ≤` [`MAX_PROBE_POSES`]; `None` otherwise (the card answers `6700`).
pub const fn probe_poses(len: usize) -> Option<usize> {
    let poses = len / TEMPLATE_LEN;
    if len.is_multiple_of(TEMPLATE_LEN) && poses >= 1 && poses <= MAX_PROBE_POSES {
        Some(poses)
    } else {
        None
    }
}

/// Class bytes.
pub mod cla {
    /// Interindustry class: SELECT and GET RESPONSE.
    pub const ISO: u8 = 0x00;
    /// Proprietary class: every palmgate command.
    pub const PROPRIETARY: u8 = 0x80;
    /// Command chaining bit ("more command data follows").
    pub const CHAINING: u8 = 0x10;
}

/// Instruction bytes.
pub mod ins {
    /// SELECT by AID (`00 A4 04 00`).
    pub const SELECT: u8 = 0xA4;
    /// GET RESPONSE (`00 C0 00 00`).
    pub const GET_RESPONSE: u8 = 0xC0;
    /// GET DATA: P1 P2 = [`super::data::IDENTITY`] or [`super::data::CERTIFICATE`].
    pub const GET_DATA: u8 = 0xCA;
    /// PERSONALISE: P1 = [`super::personalise::GENERATE_KEY`] or [`super::personalise::INSTALL_CERTIFICATE`].
    pub const PERSONALISE: u8 = 0x50;
    /// OPEN SECURE SESSION.
    pub const OPEN_SESSION: u8 = 0x8A;
    /// VERIFY PALM (in session).
    pub const VERIFY_PALM: u8 = 0x20;
    /// PROVE AUTHORITY (in session): enrolment authority certificate + transcript signature.
    pub const PROVE_AUTHORITY: u8 = 0x82;
    /// ENROL (in session, authority).
    pub const ENROL: u8 = 0xE2;
    /// SET POLICY (in session, authority).
    pub const SET_POLICY: u8 = 0x24;
    /// RESET RETRY COUNTER (in session, authority).
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    /// ERASE (in session, authority): removes every template, answers with a deletion receipt.
    pub const ERASE: u8 = 0x0E;

    /// GET RECEIPT (in session): the receipt of the last receipt-bearing command (ERASE, REDEEM
    /// MEAL), kept on the card until the next one replaces it.
    pub const GET_RECEIPT: u8 = 0x0A;
    /// REDEEM MEAL (in session, after a palm match in it): counts one meal of a period and
    /// answers with a card-signed meal receipt (applet 1.3).
    pub const REDEEM_MEAL: u8 = 0x54;
    /// SET PROFILE FLOOR (in session, authority with the enrol bit): the weakest profile VERIFY
    /// PALM may apply on this card (applet 1.5; `DA` as ISO PUT DATA, the write beside GET DATA).
    pub const SET_PROFILE_FLOOR: u8 = 0xDA;

    /// The instructions that are only accepted inside a secure session.
    pub const SECURE: [u8; 9] = [
        VERIFY_PALM,
        PROVE_AUTHORITY,
        ENROL,
        SET_POLICY,
        RESET_RETRY_COUNTER,
        ERASE,
        GET_RECEIPT,
        REDEEM_MEAL,
        SET_PROFILE_FLOOR,
    ];

    /// Whether command chaining (CLA `90`) is accepted for `instruction`: only instructions that
    /// take command data (every secure one carries at least its 16-byte tag).
    pub const fn takes_data(instruction: u8) -> bool {
        matches!(
            instruction,
            PERSONALISE
                | OPEN_SESSION
                | VERIFY_PALM
                | PROVE_AUTHORITY
                | ENROL
                | SET_POLICY
                | RESET_RETRY_COUNTER
                | ERASE
                | GET_RECEIPT
                | REDEEM_MEAL
                | SET_PROFILE_FLOOR
        )
    }

    /// Whether `instruction` is one the applet knows (SELECT and GET RESPONSE included).
    pub const fn is_known(instruction: u8) -> bool {
        matches!(instruction, SELECT | GET_RESPONSE | GET_DATA) || takes_data(instruction)
    }
}

/// GET DATA object references (P1 P2).
pub mod data {
    /// Card identity ([`super::identity::CardIdentity`]).
    pub const IDENTITY: (u8, u8) = (0x01, 0x01);
    /// Card certificate ([`super::cert::CardCertificate`]).
    pub const CERTIFICATE: (u8, u8) = (0x01, 0x02);
    /// Profile floor, one byte ([`super::profile_floor`]); applet 1.5.
    pub const PROFILE_FLOOR: (u8, u8) = (0x01, 0x03);
}

/// PERSONALISE steps (P1).
pub mod personalise {
    /// Generate the card key pair and set the card id (factory or keyed state).
    pub const GENERATE_KEY: u8 = 0x01;
    /// Install the issuer public key and the card certificate (keyed state).
    pub const INSTALL_CERTIFICATE: u8 = 0x02;
}

/// Kind of an enrolled slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    /// A normal enrolment.
    Normal,
    /// A duress enrolment: a match opens the door and raises a silent alarm.
    Duress,
}

impl SlotKind {
    /// Wire value: 0 normal, 1 duress.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Normal => 0,
            Self::Duress => 1,
        }
    }

    /// Decodes the wire value.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Normal),
            1 => Some(Self::Duress),
            _ => None,
        }
    }
}

/// Life-cycle state of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Fresh from the factory: no key, no certificate.
    Factory,
    /// Key pair generated, waiting for its certificate.
    Keyed,
    /// Certificate installed: the card is in service.
    Personalised,
}

impl Lifecycle {
    /// Wire value.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Factory => 0,
            Self::Keyed => 1,
            Self::Personalised => 2,
        }
    }

    /// Decodes the wire value.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Factory),
            1 => Some(Self::Keyed),
            2 => Some(Self::Personalised),
            _ => None,
        }
    }
}

/// Verification decision as carried (encrypted) in the VERIFY PALM response.
pub mod decision {
    /// No slot matched.
    pub const NO_MATCH: u8 = 0x00;
    /// A slot matched.
    pub const MATCH: u8 = 0x01;
    /// The retry counter is at zero: nothing was compared.
    pub const BLOCKED: u8 = 0x02;
    /// Slot-kind byte when no slot matched.
    pub const NO_SLOT: u8 = 0xFF;
    /// Length of the decision plaintext: `[decision, slot kind, tries left]`.
    pub const LEN: usize = 3;
}

/// VERIFY PALM P1: the security profile whose calibrated threshold the card applies
/// (`docs/applet-protocol.md`, "VERIFY PALM profile"). P1 is authenticated with the command
/// (associated data of the secure session): nobody between the gate and the card can change it.
/// The card is never sent a raw threshold, only one of the profiles it compiles in.
pub mod verify_profile {
    use palmgate_matcher::Profile;

    /// `00`: the gate names no profile; the card applies [`Profile::default`] (`balanced`).
    /// Hosts before applet 1.2 sent only this.
    pub const DEFAULT: u8 = 0x00;

    /// The P1 byte naming `profile` (`01` convenience, `02` balanced, `03` security).
    pub const fn encode(profile: Profile) -> u8 {
        profile.id()
    }

    /// The profile P1 names; `None` for a byte that names none (the card answers `6A86`).
    pub const fn decode(p1: u8) -> Option<Profile> {
        if p1 == DEFAULT {
            Some(Profile::Balanced)
        } else {
            Profile::from_id(p1)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn profile_codes_are_the_documented_bytes() {
            assert_eq!(encode(Profile::Convenience), 0x01);
            assert_eq!(encode(Profile::Balanced), 0x02);
            assert_eq!(encode(Profile::Security), 0x03);
            for profile in Profile::ALL {
                assert_eq!(decode(encode(profile)), Some(profile));
            }
            assert_eq!(decode(0x00), Some(Profile::default()));
            assert_eq!(decode(0x04), None);
            assert_eq!(decode(0xFF), None);
        }
    }
}

/// The profile floor byte (SET PROFILE FLOOR data, GET DATA [`data::PROFILE_FLOOR`] answer, state
/// layout 4): the weakest profile the card applies in VERIFY PALM, whatever P1 names. The card
/// applies `requested.stricter(floor)`: a gate can ask for more than the floor, never for less.
pub mod profile_floor {
    use palmgate_matcher::Profile;

    /// `00`: no floor; the card applies the profile P1 names.
    pub const NONE: u8 = 0x00;

    /// A byte that names neither "no floor" nor a profile.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct InvalidFloor(pub u8);

    impl core::fmt::Display for InvalidFloor {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            write!(
                f,
                "profile floor byte {:#04x} names no profile (00 none, 01 to 03)",
                self.0
            )
        }
    }

    impl core::error::Error for InvalidFloor {}

    /// The byte of `floor`: `00` none, else the profile's id (`01` convenience, `02` balanced,
    /// `03` security, as VERIFY PALM's P1).
    pub const fn encode(floor: Option<Profile>) -> u8 {
        match floor {
            None => NONE,
            Some(profile) => profile.id(),
        }
    }

    /// The floor a byte names.
    pub const fn decode(byte: u8) -> Result<Option<Profile>, InvalidFloor> {
        if byte == NONE {
            return Ok(None);
        }
        match Profile::from_id(byte) {
            Some(profile) => Ok(Some(profile)),
            None => Err(InvalidFloor(byte)),
        }
    }

    /// The profile VERIFY PALM applies when the gate asks for `requested` on a card whose floor
    /// is `floor`.
    pub const fn applied(requested: Profile, floor: Option<Profile>) -> Profile {
        match floor {
            None => requested,
            Some(floor) => requested.stricter(floor),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn floor_bytes_are_the_documented_ones() {
            assert_eq!(encode(None), 0x00);
            assert_eq!(encode(Some(Profile::Convenience)), 0x01);
            assert_eq!(encode(Some(Profile::Balanced)), 0x02);
            assert_eq!(encode(Some(Profile::Security)), 0x03);
            for floor in [None, Some(Profile::Convenience), Some(Profile::Balanced)] {
                assert_eq!(decode(encode(floor)), Ok(floor));
            }
            assert_eq!(decode(0x03), Ok(Some(Profile::Security)));
            assert_eq!(decode(0x04), Err(InvalidFloor(0x04)));
            assert_eq!(decode(0xFF), Err(InvalidFloor(0xFF)));
        }

        #[test]
        fn a_request_is_raised_to_the_floor_and_never_lowered() {
            use Profile::*;
            assert_eq!(applied(Convenience, None), Convenience);
            assert_eq!(applied(Convenience, Some(Security)), Security);
            assert_eq!(applied(Balanced, Some(Convenience)), Balanced);
            assert_eq!(applied(Security, Some(Balanced)), Security);
        }
    }
}

/// Enrolment authority permissions (bit mask in the authority certificate).
pub mod permission {
    /// ENROL.
    pub const ENROL: u8 = 0x01;
    /// SET POLICY.
    pub const SET_POLICY: u8 = 0x02;
    /// RESET RETRY COUNTER.
    pub const RESET_RETRY_COUNTER: u8 = 0x04;
    /// ERASE.
    pub const ERASE: u8 = 0x08;
    /// Every permission.
    pub const ALL: u8 = ENROL | SET_POLICY | RESET_RETRY_COUNTER | ERASE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_palm_plaintext_is_one_to_five_whole_templates() {
        for k in 1..=5 {
            assert_eq!(probe_poses(k * 292), Some(k));
        }
        for len in [
            0,
            1,
            291,
            293,
            2 * 292 - 1,
            3 * 292 + 1,
            5 * 292 + 1,
            6 * 292,
            7 * 292,
        ] {
            assert_eq!(probe_poses(len), None, "{len} bytes");
        }
    }

    #[test]
    fn the_card_holds_a_five_pose_verify_palm_and_its_tag() {
        assert_eq!(MAX_COMMAND_DATA, 1476);
        assert_eq!(MAX_COMMAND_DATA, 5 * TEMPLATE_LEN + TAG_LEN);
        // Every other command is shorter: ENROL (slot, kind, template) and its tag.
        const { assert!(2 + TEMPLATE_LEN + TAG_LEN < MAX_COMMAND_DATA) };
    }
}
