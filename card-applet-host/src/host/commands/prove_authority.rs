//! PROVE AUTHORITY (secure, INS `82`): plaintext = authority certificate (143) | ECDSA signature
//! (64) over `"palmgate authority proof v1" | transcript`; empty answer.

use zeroize::Zeroizing;

use super::{SecureCommand, expect_empty};
use crate::host::error::CardError;
use crate::protocol::cert::AuthorityCertificate;
use crate::protocol::{SIGNATURE_LEN, StatusWord, ins};

/// PROVE AUTHORITY.
#[derive(Debug, Clone, Copy)]
pub struct ProveAuthority {
    /// Issuer-signed certificate of the enrolment authority key.
    pub certificate: AuthorityCertificate,
    /// Authority signature over the session transcript.
    pub signature: [u8; SIGNATURE_LEN],
}

impl SecureCommand for ProveAuthority {
    const NAME: &'static str = "PROVE AUTHORITY";
    const INS: u8 = ins::PROVE_AUTHORITY;
    type Output = ();

    fn plaintext(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(self.certificate.as_bytes().to_vec());
        out.extend_from_slice(&self.signature);
        out
    }

    fn decode(status: StatusWord, plaintext: &[u8]) -> Result<(), CardError> {
        expect_empty(Self::NAME, status, plaintext)
    }
}
