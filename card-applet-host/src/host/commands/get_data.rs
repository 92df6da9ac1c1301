//! GET DATA (`80 CA P1 P2 00`): identity (`0101`), card certificate (`0102`) and profile floor
//! (`0103`, applet 1.5).

use palmgate_matcher::Profile;

use super::{PlainCommand, expect_success};
use crate::host::apdu::{Command, Data, Response};
use crate::host::error::CardError;
use crate::protocol::cert::CardCertificate;
use crate::protocol::identity::CardIdentity;
use crate::protocol::{cla, data, ins, profile_floor};

/// GET DATA identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetIdentity;

/// GET DATA certificate.
#[derive(Debug, Clone, Copy, Default)]
pub struct GetCertificate;

/// GET DATA profile floor (applet 1.5; earlier applets answer `6A86`).
#[derive(Debug, Clone, Copy, Default)]
pub struct GetProfileFloor;

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

impl PlainCommand for GetProfileFloor {
    const NAME: &'static str = "GET DATA (profile floor)";
    type Output = Option<Profile>;

    fn command(&self) -> Command {
        get_data(data::PROFILE_FLOOR)
    }

    fn decode(response: Response) -> Result<Option<Profile>, CardError> {
        expect_success(Self::NAME, response.status)?;
        let malformed = CardError::MalformedResponse {
            command: Self::NAME,
            reason: "profile floor",
        };
        let [floor] = response.data[..] else {
            return Err(malformed);
        };
        profile_floor::decode(floor).map_err(|_| malformed)
    }
}

#[cfg(test)]
mod tests {
    use zeroize::Zeroizing;

    use super::*;
    use crate::protocol::StatusWord;

    fn answer(data: &[u8], status: StatusWord) -> Response {
        Response {
            data: Zeroizing::new(data.to_vec()),
            status,
        }
    }

    #[test]
    fn the_profile_floor_answer_is_one_known_byte() {
        assert_eq!(
            GetProfileFloor::decode(answer(&[0x00], StatusWord::Success)).unwrap(),
            None
        );
        assert_eq!(
            GetProfileFloor::decode(answer(&[0x03], StatusWord::Success)).unwrap(),
            Some(Profile::Security)
        );
        for data in [&[][..], &[0x04], &[0x02, 0x00]] {
            assert!(
                matches!(
                    GetProfileFloor::decode(answer(data, StatusWord::Success)),
                    Err(CardError::MalformedResponse { .. })
                ),
                "{data:02x?}"
            );
        }
        // An applet before 1.5 knows no such object.
        assert!(matches!(
            GetProfileFloor::decode(answer(&[], StatusWord::IncorrectP1P2)),
            Err(CardError::Status {
                status: StatusWord::IncorrectP1P2,
                ..
            })
        ));
    }
}
