//! SELECT the palmgate applet (`00 A4 04 00 0A <AID> 00`); the answer is the card identity.

use super::{PlainCommand, expect_success};
use crate::host::apdu::{Command, Data, Response};
use crate::host::error::CardError;
use crate::protocol::identity::CardIdentity;
use crate::protocol::{AID, cla, ins};

/// SELECT by AID.
#[derive(Debug, Clone, Copy, Default)]
pub struct Select;

impl PlainCommand for Select {
    const NAME: &'static str = "SELECT";
    type Output = CardIdentity;

    fn command(&self) -> Command {
        Command {
            cla: cla::ISO,
            ins: ins::SELECT,
            p1: 0x04,
            p2: 0x00,
            data: Data::Plain(AID.to_vec()),
            le: Some(256),
        }
    }

    fn decode(response: Response) -> Result<CardIdentity, CardError> {
        expect_success(Self::NAME, response.status)?;
        CardIdentity::decode(&response.data).ok_or(CardError::MalformedResponse {
            command: Self::NAME,
            reason: "identity record",
        })
    }
}
