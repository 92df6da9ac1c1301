//! ISO 7816-4 command APDU parsing (no allocation): short and extended length, cases 1 to 4.

/// A parsed command APDU borrowing its data from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandApdu<'a> {
    /// Class byte.
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data (empty when there is no Lc field).
    pub data: &'a [u8],
    /// Expected response length: `None` without an Le field; `Some(256)` for a short `00`,
    /// `Some(65536)` for an extended `0000`.
    pub le: Option<u32>,
    /// `true` when the APDU used extended length fields.
    pub extended: bool,
}

/// Why bytes are not a well-formed command APDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApduError {
    /// Fewer than the 4 header bytes.
    TooShort,
    /// The Lc / Le fields do not match the length of the body.
    LengthMismatch,
}

impl core::error::Error for ApduError {}

impl core::fmt::Display for ApduError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TooShort => f.write_str("command APDU shorter than its 4-byte header"),
            Self::LengthMismatch => f.write_str("command APDU length fields do not match its body"),
        }
    }
}

impl<'a> CommandApdu<'a> {
    /// Parses a command APDU (ISO 7816-3 cases 1, 2S, 3S, 4S, 2E, 3E, 4E).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ApduError> {
        let (header, body) = bytes.split_first_chunk::<4>().ok_or(ApduError::TooShort)?;
        let [cla, ins, p1, p2] = *header;
        let apdu = |data, le, extended| CommandApdu {
            cla,
            ins,
            p1,
            p2,
            data,
            le,
            extended,
        };
        match body {
            [] => Ok(apdu(&[], None, false)),
            [le] => Ok(apdu(&[], Some(short_le(*le)), false)),
            [0, rest @ ..] => match rest {
                [hi, lo] => Ok(apdu(&[], Some(extended_le(*hi, *lo)), true)),
                [hi, lo, rest @ ..] => {
                    let lc = usize::from(u16::from_be_bytes([*hi, *lo]));
                    if lc == 0 {
                        return Err(ApduError::LengthMismatch);
                    }
                    match rest.len().checked_sub(lc) {
                        Some(0) => Ok(apdu(rest, None, true)),
                        Some(2) => {
                            let (data, le) = rest.split_at(lc);
                            Ok(apdu(data, Some(extended_le(le[0], le[1])), true))
                        }
                        _ => Err(ApduError::LengthMismatch),
                    }
                }
                _ => Err(ApduError::LengthMismatch),
            },
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) => Ok(apdu(rest, None, false)),
                    Some(1) => {
                        let (data, le) = rest.split_at(lc);
                        Ok(apdu(data, Some(short_le(le[0])), false))
                    }
                    _ => Err(ApduError::LengthMismatch),
                }
            }
        }
    }

    /// The expected response length as a byte count, `usize::MAX` when there is no Le field
    /// (the applet then answers with everything it has).
    pub fn max_response_len(&self) -> usize {
        self.le.map_or(usize::MAX, |le| le as usize)
    }
}

const fn short_le(le: u8) -> u32 {
    if le == 0 { 256 } else { le as u32 }
}

const fn extended_le(hi: u8, lo: u8) -> u32 {
    match u16::from_be_bytes([hi, lo]) {
        0 => 65536,
        n => n as u32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_case() {
        let case1 = CommandApdu::parse(&[0x80, 0x10, 1, 2]).unwrap();
        assert_eq!(
            (case1.data, case1.le, case1.extended),
            (&[][..], None, false)
        );
        let case2s = CommandApdu::parse(&[0, 0xCA, 1, 1, 0]).unwrap();
        assert_eq!(case2s.le, Some(256));
        let case3s = CommandApdu::parse(&[0, 0xA4, 4, 0, 2, 0xAA, 0xBB]).unwrap();
        assert_eq!((case3s.data, case3s.le), (&[0xAA, 0xBB][..], None));
        let case4s = CommandApdu::parse(&[0, 0xA4, 4, 0, 1, 0xAA, 0x10]).unwrap();
        assert_eq!((case4s.data, case4s.le), (&[0xAA][..], Some(16)));
        let case2e = CommandApdu::parse(&[0, 0xCA, 1, 1, 0, 0, 0]).unwrap();
        assert_eq!((case2e.le, case2e.extended), (Some(65536), true));
        let case3e = CommandApdu::parse(&[0x80, 0x20, 0, 0, 0, 0, 1, 0xCC]).unwrap();
        assert_eq!(
            (case3e.data, case3e.le, case3e.extended),
            (&[0xCC][..], None, true)
        );
        let case4e = CommandApdu::parse(&[0x80, 0x20, 0, 0, 0, 0, 1, 0xCC, 0x01, 0x00]).unwrap();
        assert_eq!((case4e.data, case4e.le), (&[0xCC][..], Some(256)));
    }

    #[test]
    fn refuses_inconsistent_lengths() {
        assert_eq!(CommandApdu::parse(&[0, 1, 2]), Err(ApduError::TooShort));
        assert_eq!(
            CommandApdu::parse(&[0, 1, 2, 3, 2, 0xAA]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            CommandApdu::parse(&[0, 1, 2, 3, 1, 0xAA, 1, 2]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            CommandApdu::parse(&[0, 1, 2, 3, 0, 0]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            CommandApdu::parse(&[0, 1, 2, 3, 0, 0, 0, 0xAA]),
            Err(ApduError::LengthMismatch)
        );
        assert_eq!(
            CommandApdu::parse(&[0, 1, 2, 3, 0, 0, 2, 0xAA]),
            Err(ApduError::LengthMismatch)
        );
    }
}
