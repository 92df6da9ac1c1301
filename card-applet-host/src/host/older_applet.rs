//! The applet answering as applet 1.4 did, before the profile floor: `palmgate-vcard
//! --applet-version 1.4`, so that what the host does with a card issued before a feature is
//! tested through the real PC/SC stack, not only in process.
//!
//! It reports 1.4 in its identity (SELECT and GET DATA identity) with the four slots of applets
//! before 1.8 ([`SLOT_COUNT_BEFORE_1_8`]), answers `6D00` to SET PROFILE FLOOR and `6A86` to GET
//! DATA profile floor, as an applet 1.4 does ([`crate::protocol::PROFILE_FLOOR_APPLET_VERSION`]);
//! everything else is the applet's own answer. (ENROL travels encrypted, so the slot it names is
//! not seen here; palmgate's host enrols only below the capacity the identity reports.)

use super::vpcd::VirtualCard;
use crate::protocol::identity::{CardIdentity, IDENTITY_LEN};
use crate::protocol::{SLOT_COUNT_BEFORE_1_8, StatusWord, data, ins};

/// The version reported.
pub const VERSION: (u8, u8) = (1, 4);

/// An applet that answers as applet [`VERSION`] did.
#[derive(Debug)]
pub struct AppletBeforeProfileFloor<V> {
    inner: V,
}

impl<V: VirtualCard> AppletBeforeProfileFloor<V> {
    /// Wraps `inner`.
    pub fn new(inner: V) -> Self {
        Self { inner }
    }
}

impl<V: VirtualCard> VirtualCard for AppletBeforeProfileFloor<V> {
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn respond(&mut self, command: &[u8], body: &mut Vec<u8>) {
        let [_, instruction, p1, p2, ..] = *command else {
            return self.inner.respond(command, body);
        };
        let refused = if instruction == ins::SET_PROFILE_FLOOR {
            Some(StatusWord::InsNotSupported)
        } else if instruction == ins::GET_DATA && (p1, p2) == data::PROFILE_FLOOR {
            Some(StatusWord::IncorrectP1P2)
        } else {
            None
        };
        if let Some(status) = refused {
            body.clear();
            body.extend_from_slice(&status.to_bytes());
            return;
        }
        self.inner.respond(command, body);
        let names_identity = instruction == ins::SELECT
            || (instruction == ins::GET_DATA && (p1, p2) == data::IDENTITY);
        let ok = StatusWord::Success.to_bytes();
        if names_identity
            && body.len() == IDENTITY_LEN + ok.len()
            && body[IDENTITY_LEN..] == ok
            && let Some(mut identity) = CardIdentity::decode(&body[..IDENTITY_LEN])
        {
            identity.applet_version = VERSION;
            identity.slot_capacity = SLOT_COUNT_BEFORE_1_8 as u8;
            body[..IDENTITY_LEN].copy_from_slice(&identity.encode());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applet::Applet;
    use crate::host::platform::{MemoryStorage, SystemClock, system_rng};
    use crate::protocol::AID;

    fn card() -> AppletBeforeProfileFloor<impl VirtualCard> {
        AppletBeforeProfileFloor::new(Applet::factory(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
        ))
    }

    fn answer(card: &mut impl VirtualCard, command: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        card.respond(command, &mut body);
        body
    }

    #[test]
    fn it_reports_applet_1_4_with_its_four_slots_and_refuses_the_floor_as_1_4_did() {
        let mut card = card();
        let select = [
            &[0x00, ins::SELECT, 0x04, 0x00, AID.len() as u8][..],
            &AID,
            &[0x00],
        ]
        .concat();
        let selected = answer(&mut card, &select);
        assert_eq!(selected[IDENTITY_LEN..], [0x90, 0x00], "{selected:02x?}");
        let identity = CardIdentity::decode(&selected[..IDENTITY_LEN]).expect("identity");
        assert_eq!(
            (identity.applet_version, identity.slot_capacity),
            ((1, 4), 4)
        );
        let get_identity = [
            0x80,
            ins::GET_DATA,
            data::IDENTITY.0,
            data::IDENTITY.1,
            0x00,
        ];
        let again = answer(&mut card, &get_identity);
        assert_eq!(again, selected, "GET DATA identity as SELECT");

        let floor = [
            0x80,
            ins::GET_DATA,
            data::PROFILE_FLOOR.0,
            data::PROFILE_FLOOR.1,
            0x00,
        ];
        assert_eq!(answer(&mut card, &floor), [0x6A, 0x86]);
        let set_floor = [0x84, ins::SET_PROFILE_FLOOR, 0x00, 0x00, 0x01, 0x03];
        assert_eq!(answer(&mut card, &set_floor), [0x6D, 0x00]);

        // The applet itself answers the floor's GET DATA and reports its own version.
        let mut current = Applet::factory(
            MemoryStorage::default(),
            system_rng(),
            SystemClock::default(),
        );
        answer(&mut current, &select);
        assert_eq!(answer(&mut current, &floor)[1..], [0x90, 0x00]);
        let own = answer(&mut current, &select);
        let own = CardIdentity::decode(&own[..IDENTITY_LEN]).expect("identity");
        assert_eq!(
            (own.applet_version, usize::from(own.slot_capacity)),
            (crate::protocol::APPLET_VERSION, crate::protocol::SLOT_COUNT)
        );
    }
}
