//! GET DATA (`80 CA P1 P2 00`): identity (`0101`) and card certificate (`0102`).

use super::{PlainCommand, expect_success};
use crate::host::apdu::{Command, Data, Response};
use crate::host::error::CardError;
use crate::protocol::cert::CardCertificate;
use crate::protocol::identity::CardIdentity;
use crate::protocol::{cla, data, ins};

/// GET DATA identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetIdentity;

/// GET DATA certificate.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetCertificate;

fn get_data(object: (u8, u8)) -> Command {
    Command {
        cla: cla::PROPRIETARY,
        ins: ins::GET_DATA,
        p1: object.0,
        p2: object.1,
        data: Data::Plain(Vec::new()),
        le: Some(256),
    }
}

impl PlainCommand for GetIdentity {
    const NAME: &'static str = "GET DATA (identity)";
    type Output = CardIdentity;

    fn command(&self) -> Command {
        get_data(data::IDENTITY)
    }

    fn decode(response: Response) -> Result<CardIdentity, CardError> {
        expect_success(Self::NAME, response.status)?;
        CardIdentity::decode(&response.data).ok_or(CardError::MalformedResponse {
            command: Self::NAME,
            reason: "identity record",
        })
    }
}

impl PlainCommand for GetCertificate {
    const NAME: &'static str = "GET DATA (certificate)";
    type Output = CardCertificate;

    fn command(&self) -> Command {
        get_data(data::CERTIFICATE)
    }

    fn decode(response: Response) -> Result<CardCertificate, CardError> {
        expect_success(Self::NAME, response.status)?;
        CardCertificate::decode(&response.data).map_err(CardError::Certificate)
    }
}
