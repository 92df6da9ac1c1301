//! Sensor → host messages: info, ack, presence / distance, frame, error, pong; since protocol 1.1,
//! bands and band frames.

use bytes::{BufMut, BytesMut};

use super::{Band, FrameFormat, ProtocolError, Reader};
use crate::image::ImageBytes;

/// Message type bytes of the sensor → host messages.
pub mod kind {
    /// [`super::SensorMessage::Info`].
    pub const INFO: u8 = 0x81;
    /// [`super::SensorMessage::Ack`].
    pub const ACK: u8 = 0x82;
    /// [`super::SensorMessage::Presence`].
    pub const PRESENCE: u8 = 0x83;
    /// [`super::SensorMessage::Frame`].
    pub const FRAME: u8 = 0x84;
    /// [`super::SensorMessage::Error`].
    pub const ERROR: u8 = 0x85;
    /// [`super::SensorMessage::Pong`].
    pub const PONG: u8 = 0x86;
    /// [`super::SensorMessage::Bands`] (protocol 1.1).
    pub const BANDS: u8 = 0x87;
    /// [`super::SensorMessage::BandFrame`] (protocol 1.1).
    pub const BAND_FRAME: u8 = 0x88;
}

/// The protocol's major version, reported in `Info` by 1.0 and 1.1 sensors alike (1.1 only adds
/// messages, which a 1.1 host discovers with `GetBands`).
pub const PROTOCOL_VERSION: u8 = 1;

/// `distance_mm` value meaning "unknown".
pub const DISTANCE_UNKNOWN: u16 = 0xFFFF;

/// Identity and capabilities of a sensor, from its `Info` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorInfo {
    /// Protocol version the sensor speaks.
    pub protocol_version: u8,
    /// Frame width in pixels.
    pub width: u16,
    /// Frame height in pixels.
    pub height: u16,
    /// Frame formats the sensor can send.
    pub formats: Vec<FrameFormat>,
    /// Highest frame rate, frames per second.
    pub max_fps: u8,
    /// Model name (UTF-8, at most 255 bytes).
    pub model: String,
    /// Firmware version (UTF-8, at most 255 bytes).
    pub firmware: String,
}

/// Error codes a sensor may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SensorErrorCode {
    /// The request's message type is unknown to the sensor.
    UnknownRequest,
    /// The request's payload is malformed.
    BadRequest,
    /// The requested frame format is not supported.
    UnsupportedFormat,
    /// The sensor is busy (for example, a capture is already running).
    Busy,
    /// Camera or illumination hardware failure.
    Hardware,
    /// Any other code.
    Other(u8),
}

impl SensorErrorCode {
    /// The code byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Self::UnknownRequest => 0x01,
            Self::BadRequest => 0x02,
            Self::UnsupportedFormat => 0x03,
            Self::Busy => 0x04,
            Self::Hardware => 0x05,
            Self::Other(code) => code,
        }
    }

    /// The code for a byte (unknown bytes become `Other`).
    pub fn from_byte(byte: u8) -> Self {
        match byte {
            0x01 => Self::UnknownRequest,
            0x02 => Self::BadRequest,
            0x03 => Self::UnsupportedFormat,
            0x04 => Self::Busy,
            0x05 => Self::Hardware,
            other => Self::Other(other),
        }
    }
}

/// A message from the sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SensorMessage {
    /// Answer to `GetInfo`.
    Info(SensorInfo),
    /// Answer to `StartCapture`, `StopCapture` and `SetIllumination`.
    Ack,
    /// A hand appeared or left (unsolicited, sequence 0).
    Presence {
        /// Whether a hand is in front of the sensor.
        present: bool,
        /// Distance from the sensor in millimetres, when known.
        distance_mm: Option<u16>,
    },
    /// One captured image (unsolicited, sequence 0).
    Frame {
        /// Encoding of `data`.
        format: FrameFormat,
        /// Width in pixels.
        width: u16,
        /// Height in pixels.
        height: u16,
        /// The sensor's frame counter.
        frame_number: u32,
        /// The encoded image (raw rows for GRAY8).
        data: ImageBytes,
    },
    /// The request with this sequence number failed (or, with sequence 0, the sensor failed).
    Error {
        /// What went wrong.
        code: SensorErrorCode,
        /// Human-readable detail (UTF-8, at most 255 bytes).
        message: String,
    },
    /// Answer to `Ping`.
    Pong {
        /// The token of the ping.
        token: u32,
    },
    /// Answer to `GetBands`: the illumination bands the sensor has (protocol 1.1).
    Bands(Vec<Band>),
    /// One frame of a burst (unsolicited, sequence 0; protocol 1.1).
    BandFrame(BandFrame),
}

/// One frame of a presentation burst, with the light it was taken under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandFrame {
    /// The illumination of this frame.
    pub band: Band,
    /// Position in the burst, from 0.
    pub index: u8,
    /// Exposure time in microseconds after the burst's `Ack` (the sensor's clock).
    pub time_us: u32,
    /// Encoding of `data`.
    pub format: FrameFormat,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// The sensor's frame counter (shared with `Frame`).
    pub frame_number: u32,
    /// The encoded image (raw rows for GRAY8).
    pub data: ImageBytes,
}

impl SensorMessage {
    /// The message type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Self::Info(_) => kind::INFO,
            Self::Ack => kind::ACK,
            Self::Presence { .. } => kind::PRESENCE,
            Self::Frame { .. } => kind::FRAME,
            Self::Error { .. } => kind::ERROR,
            Self::Pong { .. } => kind::PONG,
            Self::Bands(_) => kind::BANDS,
            Self::BandFrame(_) => kind::BAND_FRAME,
        }
    }

    /// Appends the payload.
    pub(crate) fn write_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match self {
            Self::Info(info) => {
                dst.put_u8(info.protocol_version);
                dst.put_u16_le(info.width);
                dst.put_u16_le(info.height);
                dst.put_u8(FrameFormat::mask(&info.formats));
                dst.put_u8(info.max_fps);
                put_short_string(dst, self.kind(), &info.model)?;
                put_short_string(dst, self.kind(), &info.firmware)?;
            }
            Self::Ack => {}
            Self::Presence {
                present,
                distance_mm,
            } => {
                dst.put_u8(u8::from(*present));
                dst.put_u16_le(distance_mm.unwrap_or(DISTANCE_UNKNOWN));
            }
            Self::Frame {
                format,
                width,
                height,
                frame_number,
                data,
            } => {
                dst.reserve(9 + data.len());
                dst.put_u8(*format as u8);
                dst.put_u16_le(*width);
                dst.put_u16_le(*height);
                dst.put_u32_le(*frame_number);
                dst.put_slice(data);
            }
            Self::Error { code, message } => {
                dst.put_u8(code.to_byte());
                put_short_string(dst, self.kind(), message)?;
            }
            Self::Pong { token } => dst.put_u32_le(*token),
            Self::Bands(bands) => dst.put_u8(Band::mask(bands)),
            Self::BandFrame(frame) => {
                dst.reserve(15 + frame.data.len());
                dst.put_u8(frame.band as u8);
                dst.put_u8(frame.index);
                dst.put_u32_le(frame.time_us);
                dst.put_u8(frame.format as u8);
                dst.put_u16_le(frame.width);
                dst.put_u16_le(frame.height);
                dst.put_u32_le(frame.frame_number);
                dst.put_slice(&frame.data);
            }
        }
        Ok(())
    }

    /// Parses a payload of type `kind`.
    pub(crate) fn parse(kind: u8, payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut reader = Reader::new(kind, payload);
        let message = match kind {
            kind::INFO => {
                let protocol_version = reader.u8()?;
                let width = reader.u16()?;
                let height = reader.u16()?;
                let formats = FrameFormat::from_mask(reader.u8()?);
                let max_fps = reader.u8()?;
                let model = reader.short_string()?;
                let firmware = reader.short_string()?;
                Self::Info(SensorInfo {
                    protocol_version,
                    width,
                    height,
                    formats,
                    max_fps,
                    model,
                    firmware,
                })
            }
            kind::ACK => Self::Ack,
            kind::PRESENCE => {
                let present = match reader.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(reader.bad("presence flag is neither 0 nor 1")),
                };
                let distance = reader.u16()?;
                Self::Presence {
                    present,
                    distance_mm: (distance != DISTANCE_UNKNOWN).then_some(distance),
                }
            }
            kind::FRAME => {
                let format = FrameFormat::from_byte(reader.u8()?)
                    .ok_or(reader.bad("unknown frame format"))?;
                let width = reader.u16()?;
                let height = reader.u16()?;
                let frame_number = reader.u32()?;
                let data = reader.rest();
                if format == FrameFormat::Gray8
                    && data.len() != usize::from(width) * usize::from(height)
                {
                    return Err(reader.bad("GRAY8 data length is not width × height"));
                }
                Self::Frame {
                    format,
                    width,
                    height,
                    frame_number,
                    data: ImageBytes::from(data),
                }
            }
            kind::ERROR => Self::Error {
                code: SensorErrorCode::from_byte(reader.u8()?),
                message: reader.short_string()?,
            },
            kind::PONG => Self::Pong {
                token: reader.u32()?,
            },
            kind::BANDS => Self::Bands(Band::from_mask(reader.u8()?)),
            kind::BAND_FRAME => {
                let band = Band::from_byte(reader.u8()?).ok_or(reader.bad("unknown band"))?;
                let index = reader.u8()?;
                let time_us = reader.u32()?;
                let format = FrameFormat::from_byte(reader.u8()?)
                    .ok_or(reader.bad("unknown frame format"))?;
                let width = reader.u16()?;
                let height = reader.u16()?;
                let frame_number = reader.u32()?;
                let data = reader.rest();
                if format == FrameFormat::Gray8
                    && data.len() != usize::from(width) * usize::from(height)
                {
                    return Err(reader.bad("GRAY8 data length is not width × height"));
                }
                Self::BandFrame(BandFrame {
                    band,
                    index,
                    time_us,
                    format,
                    width,
                    height,
                    frame_number,
                    data: ImageBytes::from(data),
                })
            }
            other => return Err(ProtocolError::UnknownType { kind: other }),
        };
        reader.finish()?;
        Ok(message)
    }
}

fn put_short_string(dst: &mut BytesMut, kind: u8, text: &str) -> Result<(), ProtocolError> {
    let length = u8::try_from(text.len()).map_err(|_| ProtocolError::BadPayload {
        kind,
        reason: "string longer than 255 bytes",
    })?;
    dst.put_u8(length);
    dst.put_slice(text.as_bytes());
    Ok(())
}
