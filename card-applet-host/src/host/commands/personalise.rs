//! PERSONALISE: `80 50 01 00 10 <card id> 00` generates the card key pair (answer: public key);
//! `80 50 02 00 E1 <issuer public key> <card certificate>` installs the certificate.

use super::{PlainCommand, expect_empty, expect_success};
use crate::host::apdu::{Command, Data, Response};
use crate::host::error::CardError;
use crate::protocol::cert::CardCertificate;
use crate::protocol::{CARD_ID_LEN, PUBLIC_KEY_LEN, cla, ins, personalise};

/// Step 1: generate the card key pair and set the card id.
#[derive(Debug, Clone, Copy)]
pub struct GenerateCardKey {
    /// Card id chosen by the issuer.
    pub card_id: [u8; CARD_ID_LEN],
}

/// Step 2: install the issuer public key and the card certificate.
#[derive(Debug, Clone, Copy)]
pub struct InstallCertificate {
    /// Issuer public key (uncompressed SEC1).
    pub issuer_public_key: [u8; PUBLIC_KEY_LEN],
    /// Certificate issued for the key returned by step 1.
    pub certificate: CardCertificate,
}

impl PlainCommand for GenerateCardKey {
    const NAME: &'static str = "PERSONALISE (generate key)";
    type Output = [u8; PUBLIC_KEY_LEN];

    fn command(&self) -> Command {
        Command {
            cla: cla::PROPRIETARY,
            ins: ins::PERSONALISE,
            p1: personalise::GENERATE_KEY,
            p2: 0,
            data: Data::Plain(self.card_id.to_vec()),
            le: Some(256),
        }
    }

    fn decode(response: Response) -> Result<Self::Output, CardError> {
        expect_success(Self::NAME, response.status)?;
        <[u8; PUBLIC_KEY_LEN]>::try_from(response.data.as_slice()).map_err(|_| {
            CardError::MalformedResponse {
                command: Self::NAME,
                reason: "public key length",
            }
        })
    }
}

impl PlainCommand for InstallCertificate {
    const NAME: &'static str = "PERSONALISE (install certificate)";
    type Output = ();

    fn command(&self) -> Command {
        let mut data = self.issuer_public_key.to_vec();
        data.extend_from_slice(self.certificate.as_bytes());
        Command {
            cla: cla::PROPRIETARY,
            ins: ins::PERSONALISE,
            p1: personalise::INSTALL_CERTIFICATE,
            p2: 0,
            data: Data::Plain(data),
            le: None,
        }
    }

    fn decode(response: Response) -> Result<(), CardError> {
        expect_empty(Self::NAME, response.status, &response.data)
    }
}
