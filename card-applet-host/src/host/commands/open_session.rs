//! OPEN SECURE SESSION: `80 8A 00 00 51 <gate ephemeral public key(65)> <gate nonce(16)> 00`;
//! answer `<card nonce(16)> <key confirmation tag(16)>`.

use super::{PlainCommand, expect_success};
use crate::host::apdu::{Command, Data, Response};
use crate::host::error::CardError;
use crate::protocol::{NONCE_LEN, PUBLIC_KEY_LEN, TAG_LEN, cla, ins};

/// OPEN SECURE SESSION.
#[derive(Debug, Clone, Copy)]
pub struct OpenSession {
    /// Gate ephemeral public key.
    pub gate_public_key: [u8; PUBLIC_KEY_LEN],
    /// Gate nonce.
    pub gate_nonce: [u8; NONCE_LEN],
}

/// The card's answer.
#[derive(Debug, Clone, Copy)]
pub struct OpenSessionResponse {
    /// Card nonce.
    pub card_nonce: [u8; NONCE_LEN],
    /// Key confirmation (GCM tag, response counter 0).
    pub confirmation: [u8; TAG_LEN],
}

impl PlainCommand for OpenSession {
    const NAME: &'static str = "OPEN SECURE SESSION";
    type Output = OpenSessionResponse;

    fn command(&self) -> Command {
        let mut data = self.gate_public_key.to_vec();
        data.extend_from_slice(&self.gate_nonce);
        Command {
            cla: cla::PROPRIETARY,
            ins: ins::OPEN_SESSION,
            p1: 0,
            p2: 0,
            data: Data::Plain(data),
            le: Some(256),
        }
    }

    fn decode(response: Response) -> Result<OpenSessionResponse, CardError> {
        expect_success(Self::NAME, response.status)?;
        let data = response.data.as_slice();
        if data.len() != NONCE_LEN + TAG_LEN {
            return Err(CardError::MalformedResponse {
                command: Self::NAME,
                reason: "length",
            });
        }
        let mut out = OpenSessionResponse {
            card_nonce: [0; NONCE_LEN],
            confirmation: [0; TAG_LEN],
        };
        out.card_nonce.copy_from_slice(&data[..NONCE_LEN]);
        out.confirmation.copy_from_slice(&data[NONCE_LEN..]);
        Ok(out)
    }
}
