//! The serial protocol's bytes, and nothing else (see `docs/sensor-protocol.md`).
//!
//! - [`frame`]: start marker, header, CRC-32; resynchronisation after garbage.
//! - [`band`]: illumination bands (protocol 1.1).
//! - [`host`]: host → sensor payloads; [`sensor`]: sensor → host payloads.
//! - [`HostCodec`] (used by the gate) and [`SensorCodec`] (used by a sensor, here the simulator):
//!   `tokio_util` codecs over any `AsyncRead + AsyncWrite`.
//!
//! Decoding never fails the stream for bad input: every problem is an `Err(ProtocolError)` *item*
//! and decoding goes on (a `tokio_util` stream stops after its codec returns an `Err`).

pub mod band;
pub mod frame;
pub mod host;
pub mod sensor;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

pub use band::Band;
pub use frame::{DEFAULT_MAX_PAYLOAD, FrameDecoder, RawFrame};
pub use host::HostMessage;
pub use sensor::{BandFrame, SensorErrorCode, SensorInfo, SensorMessage};

/// Something wrong in the received bytes. The decoder has already skipped past it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Bytes that are not part of any frame were dropped.
    #[error("dropped {skipped} bytes of garbage before a frame")]
    Garbage {
        /// How many.
        skipped: usize,
    },
    /// A frame's payload is longer than the limit; it is skipped without being buffered.
    #[error("frame of {length} bytes refused (limit {limit})")]
    TooLarge {
        /// Claimed payload length.
        length: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A frame's CRC-32 does not match its content; it is dropped.
    #[error(
        "frame type {kind:#04x} seq {seq}: bad CRC-32 (sent {expected:#010x}, computed {actual:#010x})"
    )]
    BadCrc {
        /// Message type of the header.
        kind: u8,
        /// Sequence number of the header.
        seq: u16,
        /// CRC-32 in the frame.
        expected: u32,
        /// CRC-32 of the received bytes.
        actual: u32,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({bytes} bytes)")]
    Truncated {
        /// Size of the incomplete frame (received, or still missing when it was being skipped).
        bytes: usize,
    },
    /// A sound frame with a message type this side does not know.
    #[error("unknown message type {kind:#04x}")]
    UnknownType {
        /// The type byte.
        kind: u8,
    },
    /// A sound frame whose payload does not match its message type.
    #[error("message type {kind:#04x}: {reason}")]
    BadPayload {
        /// The type byte.
        kind: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

/// How a frame's image is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameFormat {
    /// Raw 8-bit gray rows, `width × height` bytes.
    Gray8 = 1,
    /// A PNG file (any colour type; converted to gray on decoding).
    Png = 2,
    /// A JPEG file (converted to gray on decoding).
    Jpeg = 3,
}

impl FrameFormat {
    /// Every format, in code order.
    pub const ALL: [FrameFormat; 3] = [FrameFormat::Gray8, FrameFormat::Png, FrameFormat::Jpeg];

    /// The format for a code byte.
    pub fn from_byte(byte: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|format| *format as u8 == byte)
    }

    /// The `Info` bitmask bit of this format.
    pub fn bit(self) -> u8 {
        1 << (self as u8 - 1)
    }

    /// The `Info` bitmask of a set of formats.
    pub fn mask(formats: &[FrameFormat]) -> u8 {
        formats.iter().fold(0, |mask, format| mask | format.bit())
    }

    /// The formats of an `Info` bitmask (unknown bits are ignored).
    pub fn from_mask(mask: u8) -> Vec<FrameFormat> {
        Self::ALL
            .into_iter()
            .filter(|format| mask & format.bit() != 0)
            .collect()
    }
}

impl std::fmt::Display for FrameFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gray8 => "gray8",
            Self::Png => "png",
            Self::Jpeg => "jpeg",
        })
    }
}

impl std::str::FromStr for FrameFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.to_ascii_lowercase().as_str() {
            "gray8" => Ok(Self::Gray8),
            "png" => Ok(Self::Png),
            "jpeg" | "jpg" => Ok(Self::Jpeg),
            other => Err(format!(
                "unknown frame format {other:?} (expected gray8, png or jpeg)"
            )),
        }
    }
}

/// A message with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope<M> {
    /// A request's own number (1..=65535), echoed by its response; 0 for unsolicited messages.
    pub seq: u16,
    /// The message.
    pub message: M,
}

impl<M> Envelope<M> {
    /// Wraps a message.
    pub fn new(seq: u16, message: M) -> Self {
        Self { seq, message }
    }
}

/// The gate's side: decodes [`SensorMessage`]s, encodes [`HostMessage`]s.
#[derive(Debug, Clone)]
pub struct HostCodec {
    frames: FrameDecoder,
}

impl HostCodec {
    /// A codec refusing received payloads longer than `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Self {
            frames: FrameDecoder::new(max_payload),
        }
    }
}

impl Default for HostCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl Decoder for HostCodec {
    type Item = Result<Envelope<SensorMessage>, ProtocolError>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.frames.decode(src).map(parse_sensor))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.frames.decode_eof(src).map(parse_sensor))
    }
}

fn parse_sensor(
    frame: Result<RawFrame, ProtocolError>,
) -> Result<Envelope<SensorMessage>, ProtocolError> {
    let frame = frame?;
    Ok(Envelope::new(
        frame.seq,
        SensorMessage::parse(frame.kind, &frame.payload)?,
    ))
}

impl Encoder<Envelope<HostMessage>> for HostCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Envelope<HostMessage>, dst: &mut BytesMut) -> std::io::Result<()> {
        let mut payload = BytesMut::new();
        item.message
            .write_payload(&mut payload)
            .map_err(invalid_input)?;
        frame::encode_frame(item.message.kind(), item.seq, &payload, dst).map_err(invalid_input)
    }
}

/// A sensor's side (the simulator): decodes [`HostMessage`]s, encodes [`SensorMessage`]s.
#[derive(Debug, Clone)]
pub struct SensorCodec {
    frames: FrameDecoder,
}

impl SensorCodec {
    /// A codec refusing received payloads longer than `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Self {
            frames: FrameDecoder::new(max_payload),
        }
    }
}

impl Default for SensorCodec {
    /// Host messages are tiny: 64 bytes is plenty.
    fn default() -> Self {
        Self::new(64)
    }
}

impl Decoder for SensorCodec {
    type Item = Result<Envelope<HostMessage>, ProtocolError>;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.frames.decode(src).map(parse_host))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, Self::Error> {
        Ok(self.frames.decode_eof(src).map(parse_host))
    }
}

fn parse_host(
    frame: Result<RawFrame, ProtocolError>,
) -> Result<Envelope<HostMessage>, ProtocolError> {
    let frame = frame?;
    Ok(Envelope::new(
        frame.seq,
        HostMessage::parse(frame.kind, &frame.payload)?,
    ))
}

impl Encoder<Envelope<SensorMessage>> for SensorCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: Envelope<SensorMessage>, dst: &mut BytesMut) -> std::io::Result<()> {
        encode_sensor_message(&item, dst).map_err(invalid_input)
    }
}

/// Appends one complete sensor → host frame to `dst` (for the simulator's fault injection, which
/// needs the bytes before they are written).
pub fn encode_sensor_message(
    item: &Envelope<SensorMessage>,
    dst: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let mut payload = BytesMut::new();
    item.message.write_payload(&mut payload)?;
    let result = frame::encode_frame(item.message.kind(), item.seq, &payload, dst);
    zeroize::Zeroize::zeroize(payload.as_mut());
    result
}

fn invalid_input(error: ProtocolError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, error)
}

/// Reads the fields of one payload, turning a short or long payload into `BadPayload`.
struct Reader<'a> {
    kind: u8,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(kind: u8, payload: &'a [u8]) -> Self {
        Self {
            kind,
            rest: payload,
        }
    }

    fn bad(&self, reason: &'static str) -> ProtocolError {
        ProtocolError::BadPayload {
            kind: self.kind,
            reason,
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], ProtocolError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(self.bad("payload too short"))?;
        self.rest = tail;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, ProtocolError> {
        Ok(u16::from_le_bytes(self.take()?))
    }

    fn u32(&mut self) -> Result<u32, ProtocolError> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    fn short_string(&mut self) -> Result<String, ProtocolError> {
        let length = usize::from(self.u8()?);
        if self.rest.len() < length {
            return Err(self.bad("payload too short"));
        }
        let (text, tail) = self.rest.split_at(length);
        self.rest = tail;
        String::from_utf8(text.to_vec()).map_err(|_| self.bad("string is not UTF-8"))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    fn finish(self) -> Result<(), ProtocolError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad("payload too long"))
        }
    }
}
