//! Command APDUs on the host, and the one place where chaining, GET RESPONSE, `6Cxx` and
//! extended length are handled.

use zeroize::Zeroizing;

use crate::host::error::{CardError, TransportError};
use crate::host::transport::CardTransport;
use crate::protocol::{StatusWord, cla, ins};

/// Command data; sensitive data is zeroized on drop and prints as `REDACTED`.
#[derive(Clone)]
pub enum Data {
    /// Data that may appear in traces (public keys, certificates, ciphertext).
    Plain(Vec<u8>),
    /// Data that must not (templates before encryption).
    Sensitive(Zeroizing<Vec<u8>>),
}

impl Data {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Plain(bytes) => bytes,
            Self::Sensitive(bytes) => bytes,
        }
    }
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(bytes) => write!(f, "{}", hex::encode(bytes)),
            Self::Sensitive(bytes) => write!(f, "REDACTED({} bytes)", bytes.len()),
        }
    }
}

/// A command APDU before encoding.
#[derive(Debug, Clone)]
pub struct Command {
    /// Class byte (without the chaining bit).
    pub cla: u8,
    /// Instruction.
    pub ins: u8,
    /// Parameter 1.
    pub p1: u8,
    /// Parameter 2.
    pub p2: u8,
    /// Command data.
    pub data: Data,
    /// Expected response length (`None`: no Le field).
    pub le: Option<u32>,
}

/// A complete response (after GET RESPONSE).
#[derive(Debug)]
pub struct Response {
    /// Response data.
    pub data: Zeroizing<Vec<u8>>,
    /// Final status word.
    pub status: StatusWord,
}

/// How to send commands longer than 255 bytes or answers longer than 256.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LengthMode {
    /// One extended-length APDU.
    #[default]
    Extended,
    /// Short APDUs only: command chaining for data, GET RESPONSE for answers.
    Short,
}

const SHORT_DATA: usize = 255;
const SHORT_LE: u32 = 256;
const MAX_ROUNDS: usize = 300;

fn push_short_le(out: &mut Vec<u8>, le: Option<u32>) {
    if let Some(le) = le {
        out.push(if le >= SHORT_LE { 0 } else { le as u8 });
    }
}

/// Encodes `command` into the APDUs to send, in order (one unless short mode chains).
pub fn encode(command: &Command, mode: LengthMode) -> Result<Vec<Zeroizing<Vec<u8>>>, CardError> {
    let data = command.data.as_slice();
    let header = [command.cla, command.ins, command.p1, command.p2];
    let fits_short = data.len() <= SHORT_DATA && command.le.is_none_or(|le| le <= SHORT_LE);
    if data.len() > 65535 || command.le.is_some_and(|le| le > 65536) {
        return Err(CardError::InvalidArgument(
            "APDU longer than extended length allows",
        ));
    }
    if fits_short {
        let mut out = Zeroizing::new(Vec::with_capacity(6 + data.len()));
        out.extend_from_slice(&header);
        if !data.is_empty() {
            out.push(data.len() as u8);
            out.extend_from_slice(data);
        }
        push_short_le(&mut out, command.le);
        return Ok(vec![out]);
    }
    match mode {
        LengthMode::Extended => {
            let mut out = Zeroizing::new(Vec::with_capacity(9 + data.len()));
            out.extend_from_slice(&header);
            out.push(0);
            if !data.is_empty() {
                out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                out.extend_from_slice(data);
            }
            if let Some(le) = command.le {
                out.extend_from_slice(&(if le >= 65536 { 0 } else { le as u16 }).to_be_bytes());
            }
            Ok(vec![out])
        }
        LengthMode::Short => {
            let chunks: Vec<&[u8]> = if data.is_empty() {
                vec![&[][..]]
            } else {
                data.chunks(SHORT_DATA).collect()
            };
            let last = chunks.len() - 1;
            Ok(chunks
                .into_iter()
                .enumerate()
                .map(|(index, chunk)| {
                    let mut out = Zeroizing::new(Vec::with_capacity(6 + chunk.len()));
                    let class = if index < last {
                        command.cla | cla::CHAINING
                    } else {
                        command.cla
                    };
                    out.extend_from_slice(&[class, command.ins, command.p1, command.p2]);
                    if !chunk.is_empty() {
                        out.push(chunk.len() as u8);
                        out.extend_from_slice(chunk);
                    }
                    if index == last {
                        push_short_le(&mut out, command.le.map(|le| le.min(SHORT_LE)));
                    }
                    out
                })
                .collect())
        }
    }
}

/// Sends `command` and collects the whole response: chains long data (short mode), follows
/// `61xx` with GET RESPONSE and repeats once with the right Le on `6Cxx`. `sent` counts the APDUs.
pub fn exchange<T: CardTransport + ?Sized>(
    transport: &mut T,
    command: &Command,
    mode: LengthMode,
    sent: &mut u64,
    name: &'static str,
) -> Result<Response, CardError> {
    let apdus = encode(command, mode)?;
    let Some((last, chain)) = apdus.split_last() else {
        return Err(CardError::InvalidArgument("empty command"));
    };
    for part in chain {
        *sent += 1;
        let raw = Zeroizing::new(transport.transmit(part)?);
        let (status, body) =
            StatusWord::from_response(&raw).ok_or(TransportError::ShortResponse)?;
        if !status.is_success() {
            // The card ended the chain early; its answer (an encrypted `6700` for over-long
            // secure data) is the command's answer.
            return Ok(Response {
                data: Zeroizing::new(body.to_vec()),
                status,
            });
        }
    }
    *sent += 1;
    let mut raw = Zeroizing::new(transport.transmit(last)?);
    let mut data = Zeroizing::new(Vec::new());
    let mut resent = false;
    for _ in 0..MAX_ROUNDS {
        let (status, body) =
            StatusWord::from_response(&raw).ok_or(TransportError::ShortResponse)?;
        data.extend_from_slice(body);
        match status {
            StatusWord::BytesRemaining(n) => {
                *sent += 1;
                raw =
                    Zeroizing::new(transport.transmit(&[cla::ISO, ins::GET_RESPONSE, 0, 0, n])?);
            }
            StatusWord::WrongLe(n) if !resent => {
                resent = true;
                data.clear();
                let mut again = Zeroizing::new(last[..last.len() - 1].to_vec());
                again.push(n);
                *sent += 1;
                raw = Zeroizing::new(transport.transmit(&again)?);
            }
            status => return Ok(Response { data, status }),
        }
    }
    Err(CardError::MalformedResponse {
        command: name,
        reason: "endless GET RESPONSE",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(data_len: usize, le: Option<u32>) -> Command {
        Command {
            cla: 0x80,
            ins: 0x20,
            p1: 0,
            p2: 0,
            data: Data::Plain(vec![0xAB; data_len]),
            le,
        }
    }

    #[test]
    fn short_encoding() {
        let apdus = encode(&command(2, Some(256)), LengthMode::Extended).unwrap();
        assert_eq!(apdus.len(), 1);
        assert_eq!(apdus[0].as_slice(), [0x80, 0x20, 0, 0, 2, 0xAB, 0xAB, 0x00]);
        let case1 = encode(&command(0, None), LengthMode::Short).unwrap();
        assert_eq!(case1[0].as_slice(), [0x80, 0x20, 0, 0]);
    }

    #[test]
    fn extended_encoding() {
        let apdus = encode(&command(300, Some(256)), LengthMode::Extended).unwrap();
        assert_eq!(apdus.len(), 1);
        assert_eq!(&apdus[0][..7], [0x80, 0x20, 0, 0, 0, 0x01, 0x2C]);
        assert_eq!(&apdus[0][apdus[0].len() - 2..], [0x01, 0x00]);
        assert_eq!(apdus[0].len(), 7 + 300 + 2);
    }

    #[test]
    fn chained_encoding() {
        let apdus = encode(&command(300, Some(256)), LengthMode::Short).unwrap();
        assert_eq!(apdus.len(), 2);
        assert_eq!(&apdus[0][..5], [0x90, 0x20, 0, 0, 0xFF]);
        assert_eq!(apdus[0].len(), 5 + 255);
        assert_eq!(&apdus[1][..5], [0x80, 0x20, 0, 0, 45]);
        assert_eq!(apdus[1].len(), 5 + 45 + 1);
    }

    #[test]
    fn the_largest_command_chains_into_parts_that_put_back_its_data() {
        let len = crate::protocol::MAX_COMMAND_DATA;
        let mut long = command(len, Some(256));
        long.data = Data::Plain((0..len).map(|i| i as u8).collect());
        let apdus = encode(&long, LengthMode::Short).unwrap();
        assert_eq!(apdus.len(), len.div_ceil(SHORT_DATA));
        let mut data = Vec::new();
        for (index, apdu) in apdus.iter().enumerate() {
            let last = index == apdus.len() - 1;
            assert_eq!(apdu[0], if last { 0x80 } else { 0x90 });
            assert_eq!(apdu[1..4], [0x20, 0, 0]);
            let lc = usize::from(apdu[4]);
            data.extend_from_slice(&apdu[5..5 + lc]);
            // Le on the last part only.
            assert_eq!(apdu.len(), 5 + lc + usize::from(last));
        }
        assert_eq!(data, long.data.as_slice());
    }

    #[test]
    fn sensitive_data_is_redacted_in_debug() {
        let data = Data::Sensitive(Zeroizing::new(vec![1, 2, 3]));
        assert_eq!(format!("{data:?}"), "REDACTED(3 bytes)");
    }
}
