//! OSDP packet framing.
//!
//! ```text
//! [FF mark] 53 | addr (bit 7: reply) | len LSB | len MSB | ctrl | [SCB: len type data…]
//!         | code | data… | [MAC 4] | CRC-16 LSB MSB  (or one checksum byte)
//! ```
//! `len` counts every byte from SOM to the check characters included (not the mark). `ctrl`:
//! bits 0–1 sequence number, bit 2 CRC-16 (else checksum), bit 3 security block present. The MAC
//! is present when the security block type is 0x15–0x18 and covers SOM … data. The CRC is
//! CRC-16/AUG-CCITT (polynomial 0x1021, initial value 0x1D0F, no reflection).

/// The optional mark byte before SOM (OSDP 2.2).
pub const MARK: u8 = 0xFF;
/// Start of message.
pub const SOM: u8 = 0x53;
/// Address bit set in replies.
pub const REPLY_BIT: u8 = 0x80;
/// The broadcast address.
pub const BROADCAST: u8 = 0x7F;
/// Control: sequence number mask.
pub const CTRL_SEQUENCE: u8 = 0x03;
/// Control: CRC-16 (else 8-bit checksum).
pub const CTRL_CRC: u8 = 0x04;
/// Control: security block present.
pub const CTRL_SECURITY: u8 = 0x08;
/// Largest packet this PD accepts (its advertised receive buffer).
pub const MAX_PACKET: usize = 256;

/// Security block types.
pub mod scs {
    /// CP → PD: osdp_CHLNG.
    pub const CHALLENGE: u8 = 0x11;
    /// PD → CP: osdp_CCRYPT.
    pub const CLIENT_CRYPTOGRAM: u8 = 0x12;
    /// CP → PD: osdp_SCRYPT.
    pub const SERVER_CRYPTOGRAM: u8 = 0x13;
    /// PD → CP: osdp_RMAC_I.
    pub const INITIAL_RMAC: u8 = 0x14;
    /// CP → PD: MAC, no data encryption.
    pub const COMMAND_MAC: u8 = 0x15;
    /// PD → CP: MAC, no data encryption.
    pub const REPLY_MAC: u8 = 0x16;
    /// CP → PD: MAC and encrypted data.
    pub const COMMAND_ENCRYPTED: u8 = 0x17;
    /// PD → CP: MAC and encrypted data.
    pub const REPLY_ENCRYPTED: u8 = 0x18;
}

const CRC16: crc::Crc<u16> = crc::Crc::<u16>::new(&crc::CRC_16_SPI_FUJITSU);

/// CRC-16/AUG-CCITT over `bytes` (what OSDP calls its CRC-16).
pub fn crc16(bytes: &[u8]) -> u16 {
    CRC16.checksum(bytes)
}

/// The 8-bit checksum: two's complement of the byte sum.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, byte| sum.wrapping_add(*byte))
        .wrapping_neg()
}

/// A security block: type and data (its length byte is implied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityBlock {
    /// SCS type (see [`scs`]).
    pub kind: u8,
    /// The block's data bytes (for 0x11–0x14: which key, or the PD's verdict).
    pub data: Vec<u8>,
}

impl SecurityBlock {
    /// Whether packets with this block carry a MAC.
    pub fn has_mac(&self) -> bool {
        (scs::COMMAND_MAC..=scs::REPLY_ENCRYPTED).contains(&self.kind)
    }
}

/// A packet, checked (CRC/checksum) and split into its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// The mark byte preceded it (a PD answers in kind).
    pub mark: bool,
    /// Address, without the reply bit.
    pub address: u8,
    /// The reply bit was set.
    pub is_reply: bool,
    /// Sequence number (0–3).
    pub sequence: u8,
    /// CRC-16 (true) or checksum.
    pub crc: bool,
    /// The security block, when present.
    pub security: Option<SecurityBlock>,
    /// Command or reply code.
    pub code: u8,
    /// Data after the code (still encrypted for SCS 0x17/0x18).
    pub data: Vec<u8>,
    /// The MAC, when the security block says there is one.
    pub mac: Option<[u8; 4]>,
    /// The bytes the MAC covers: SOM … data.
    pub authenticated: Vec<u8>,
}

/// Why bytes are not a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// CRC or checksum mismatch.
    #[error("message check failed")]
    Check {
        /// The address byte as received (to NAK the right PD).
        address: u8,
        /// The sequence number as received.
        sequence: u8,
    },
    /// Inconsistent length or security block.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
}

/// One packet to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing<'a> {
    /// Send the mark byte first.
    pub mark: bool,
    /// Address byte as sent (the reply bit included).
    pub address: u8,
    /// Sequence number.
    pub sequence: u8,
    /// The security block.
    pub security: Option<&'a SecurityBlock>,
    /// Command or reply code.
    pub code: u8,
    /// Data (already encrypted when the block says so).
    pub data: &'a [u8],
}

impl Outgoing<'_> {
    /// Encodes with CRC-16; `mac` computes the MAC over SOM … data when the block has one.
    pub fn encode(&self, mac: impl FnOnce(&[u8]) -> [u8; 4]) -> Vec<u8> {
        let with_mac = self.security.is_some_and(SecurityBlock::has_mac);
        let security_len = self.security.map_or(0, |block| 2 + block.data.len());
        let len = 5 + security_len + 1 + self.data.len() + if with_mac { 4 } else { 0 } + 2;
        let mut bytes = Vec::with_capacity(len + 1);
        bytes.push(SOM);
        bytes.push(self.address);
        bytes.extend_from_slice(&(len as u16).to_le_bytes());
        let mut control = (self.sequence & CTRL_SEQUENCE) | CTRL_CRC;
        if self.security.is_some() {
            control |= CTRL_SECURITY;
        }
        bytes.push(control);
        if let Some(block) = self.security {
            bytes.push((2 + block.data.len()) as u8);
            bytes.push(block.kind);
            bytes.extend_from_slice(&block.data);
        }
        bytes.push(self.code);
        bytes.extend_from_slice(self.data);
        if with_mac {
            let mac = mac(&bytes);
            bytes.extend_from_slice(&mac);
        }
        let crc = crc16(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        if self.mark {
            bytes.insert(0, MARK);
        }
        bytes
    }
}

/// Splits a byte stream into packets.
#[derive(Debug, Default)]
pub struct Deframer {
    buffer: Vec<u8>,
    /// The packet at the head of the buffer was preceded by the mark (already dropped).
    marked: bool,
}

impl Deframer {
    /// An empty deframer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// Whether a partial packet is waiting for more bytes.
    pub fn is_partial(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Drops a partial packet (the line went quiet in the middle of one).
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.marked = false;
    }

    /// The next complete packet, if any. Bytes before a SOM are skipped; a bad packet is
    /// dropped (its SOM, so the search resumes after it) and returned as an error.
    pub fn next_packet(&mut self) -> Option<Result<Packet, PacketError>> {
        loop {
            let Some(start) = self.buffer.iter().position(|byte| *byte == SOM) else {
                // Keep a trailing mark: its SOM may be in the next read.
                let keep = usize::from(self.buffer.last() == Some(&MARK));
                let drop = self.buffer.len() - keep;
                self.buffer.drain(..drop);
                return None;
            };
            if start > 0 {
                self.marked = self.buffer[start - 1] == MARK;
                self.buffer.drain(..start);
            }
            if self.buffer.len() < 5 {
                return None;
            }
            let len = usize::from(u16::from_le_bytes([self.buffer[2], self.buffer[3]]));
            if !(8..=MAX_PACKET).contains(&len) {
                self.buffer.remove(0);
                self.marked = false;
                continue;
            }
            if self.buffer.len() < len {
                return None;
            }
            let bytes: Vec<u8> = self.buffer.drain(..len).collect();
            let mark = std::mem::take(&mut self.marked);
            return Some(parse(&bytes, mark));
        }
    }
}

/// Parses one packet (`bytes` from SOM to the last check byte).
pub fn parse(bytes: &[u8], mark: bool) -> Result<Packet, PacketError> {
    if bytes.len() < 7 || bytes[0] != SOM {
        return Err(PacketError::Malformed("too short or no SOM"));
    }
    let control = bytes[4];
    let crc = control & CTRL_CRC != 0;
    let check_len = if crc { 2 } else { 1 };
    let body_end = bytes.len() - check_len;
    let check_ok = if crc {
        crc16(&bytes[..body_end]) == u16::from_le_bytes([bytes[body_end], bytes[body_end + 1]])
    } else {
        checksum(&bytes[..body_end]) == bytes[body_end]
    };
    if !check_ok {
        return Err(PacketError::Check {
            address: bytes[1],
            sequence: control & CTRL_SEQUENCE,
        });
    }
    let mut position = 5;
    let security = if control & CTRL_SECURITY != 0 {
        let block_len = usize::from(
            *bytes
                .get(position)
                .ok_or(PacketError::Malformed("security block missing"))?,
        );
        if block_len < 2 || position + block_len > body_end {
            return Err(PacketError::Malformed("security block length"));
        }
        let block = SecurityBlock {
            kind: bytes[position + 1],
            data: bytes[position + 2..position + block_len].to_vec(),
        };
        position += block_len;
        Some(block)
    } else {
        None
    };
    let with_mac = security.as_ref().is_some_and(SecurityBlock::has_mac);
    let data_end = if with_mac {
        body_end
            .checked_sub(4)
            .ok_or(PacketError::Malformed("no room for the MAC"))?
    } else {
        body_end
    };
    if position >= data_end {
        return Err(PacketError::Malformed("no command or reply code"));
    }
    let mac = if with_mac {
        let mut mac = [0u8; 4];
        mac.copy_from_slice(&bytes[data_end..body_end]);
        Some(mac)
    } else {
        None
    };
    Ok(Packet {
        mark,
        address: bytes[1] & !REPLY_BIT,
        is_reply: bytes[1] & REPLY_BIT != 0,
        sequence: control & CTRL_SEQUENCE,
        crc,
        security,
        code: bytes[position],
        data: bytes[position + 1..data_end].to_vec(),
        mac,
        authenticated: bytes[..data_end].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// CRC-16/AUG-CCITT bit by bit, straight from its definition (poly 0x1021, init 0x1D0F,
    /// MSB first, no final XOR) — independent of the `crc` crate.
    fn crc_by_definition(bytes: &[u8]) -> u16 {
        let mut crc: u16 = 0x1D0F;
        for byte in bytes {
            crc ^= u16::from(*byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 {
                    (crc << 1) ^ 0x1021
                } else {
                    crc << 1
                };
            }
        }
        crc
    }

    #[test]
    fn crc_matches_the_definition_and_the_check_value() {
        // The catalogue check value of CRC-16/AUG-CCITT over "123456789".
        assert_eq!(crc16(b"123456789"), 0xE5CC);
        assert_eq!(crc_by_definition(b"123456789"), 0xE5CC);
    }

    #[test]
    fn a_poll_encodes_to_its_bytes() {
        // POLL to PD 0, sequence 1, CRC: 53 00 08 00 05 60 + CRC (LSB first).
        let bytes = Outgoing {
            mark: false,
            address: 0,
            sequence: 1,
            security: None,
            code: 0x60,
            data: &[],
        }
        .encode(|_| [0; 4]);
        let crc = crc_by_definition(&[0x53, 0x00, 0x08, 0x00, 0x05, 0x60]).to_le_bytes();
        assert_eq!(
            bytes,
            vec![0x53, 0x00, 0x08, 0x00, 0x05, 0x60, crc[0], crc[1]]
        );
    }

    #[test]
    fn checksum_is_the_twos_complement_of_the_sum() {
        assert_eq!(
            checksum(&[0x53, 0x00, 0x07, 0x00, 0x00, 0x60]),
            0u8.wrapping_sub(0xBA)
        );
    }

    #[test]
    fn deframer_skips_noise_honours_the_mark_and_reports_bad_crc() {
        let good = Outgoing {
            mark: true,
            address: 0x05,
            sequence: 2,
            security: None,
            code: 0x61,
            data: &[0x00],
        }
        .encode(|_| [0; 4]);
        let mut bad = good.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x01;
        let mut deframer = Deframer::new();
        deframer.push(&[0x00, 0x12]);
        deframer.push(&bad);
        deframer.push(&good[..4]);
        assert!(matches!(
            deframer.next_packet(),
            Some(Err(PacketError::Check {
                address: 0x05,
                sequence: 2
            }))
        ));
        assert!(deframer.next_packet().is_none(), "waits for the rest");
        deframer.push(&good[4..]);
        let packet = deframer.next_packet().expect("one").expect("valid");
        assert!(packet.mark);
        assert_eq!((packet.address, packet.sequence, packet.code), (5, 2, 0x61));
        assert_eq!(packet.data, vec![0x00]);
    }

    #[test]
    fn a_mac_is_placed_before_the_crc_and_covers_som_to_data() {
        let block = SecurityBlock {
            kind: scs::REPLY_MAC,
            data: vec![],
        };
        let bytes = Outgoing {
            mark: false,
            address: 0x80,
            sequence: 1,
            security: Some(&block),
            code: 0x40,
            data: &[],
        }
        .encode(|covered| {
            assert_eq!(covered, &[0x53, 0x80, 0x0E, 0x00, 0x0D, 0x02, 0x16, 0x40]);
            [1, 2, 3, 4]
        });
        let packet = parse(&bytes, false).expect("valid");
        assert_eq!(packet.mac, Some([1, 2, 3, 4]));
        assert_eq!(packet.authenticated, bytes[..8].to_vec());
    }

    proptest! {
        #[test]
        fn encode_then_parse_round_trips(
            address in 0u8..0x7F,
            sequence in 0u8..4,
            code in any::<u8>(),
            data in proptest::collection::vec(any::<u8>(), 0..100),
            kind in proptest::option::of(0x11u8..=0x18),
        ) {
            let block = kind.map(|kind| SecurityBlock { kind, data: if kind < 0x15 { vec![1] } else { vec![] } });
            let bytes = Outgoing { mark: false, address, sequence, security: block.as_ref(), code, data: &data }
                .encode(|_| [9, 9, 9, 9]);
            let packet = parse(&bytes, false).expect("valid");
            prop_assert_eq!(packet.address, address);
            prop_assert_eq!(packet.code, code);
            prop_assert_eq!(&packet.data, &data);
            prop_assert_eq!(packet.security, block);
        }

        #[test]
        fn the_deframer_never_panics_on_noise(noise in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut deframer = Deframer::new();
            deframer.push(&noise);
            while deframer.next_packet().is_some() {}
        }
    }
}
