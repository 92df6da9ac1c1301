//! `osdp_CCRYPT` (0x76): the PD's answer to a challenge: `client UID (8) | RND.B (8) | client
//! cryptogram (16)`. Security block type 0x12 repeats which key was used (0 SCBK-D, 1 SCBK).

/// Reply code.
pub const CODE: u8 = 0x76;

/// The data after the code.
pub fn encode(client_uid: &[u8; 8], pd_random: &[u8; 8], cryptogram: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(client_uid);
    out.extend_from_slice(pd_random);
    out.extend_from_slice(cryptogram);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uid_random_cryptogram() {
        let data = super::encode(&[1; 8], &[2; 8], &[3; 16]);
        assert_eq!(data.len(), 32);
        assert_eq!((data[0], data[8], data[16], data[31]), (1, 2, 3, 3));
    }
}
