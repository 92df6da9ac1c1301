//! Host → sensor messages: get info, start / stop capture, illumination, ping.

use bytes::{BufMut, BytesMut};

use super::{FrameFormat, ProtocolError, Reader};

/// Message type bytes of the host → sensor messages.
pub mod kind {
    /// [`super::HostMessage::GetInfo`].
    pub const GET_INFO: u8 = 0x01;
    /// [`super::HostMessage::StartCapture`].
    pub const START_CAPTURE: u8 = 0x02;
    /// [`super::HostMessage::StopCapture`].
    pub const STOP_CAPTURE: u8 = 0x03;
    /// [`super::HostMessage::SetIllumination`].
    pub const SET_ILLUMINATION: u8 = 0x04;
    /// [`super::HostMessage::Ping`].
    pub const PING: u8 = 0x05;
}

/// The highest illumination level (percent).
pub const MAX_ILLUMINATION: u8 = 100;

/// A request from the host. Each one is answered with the same sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostMessage {
    /// Asks for the sensor's identity and capabilities; answered with `Info`.
    GetInfo,
    /// Starts sending presence reports and frames; answered with `Ack`.
    StartCapture {
        /// Encoding of the frames.
        format: FrameFormat,
        /// Number of frames to send, 0 for "until stopped".
        frames: u16,
    },
    /// Stops sending frames; answered with `Ack`.
    StopCapture,
    /// Sets the infrared illumination level; answered with `Ack`.
    SetIllumination {
        /// Level in percent, 0..=100.
        level: u8,
    },
    /// Checks that the sensor is alive; answered with `Pong` carrying the same token.
    Ping {
        /// Echoed by the sensor.
        token: u32,
    },
}

impl HostMessage {
    /// The message type byte.
    pub fn kind(&self) -> u8 {
        match self {
            Self::GetInfo => kind::GET_INFO,
            Self::StartCapture { .. } => kind::START_CAPTURE,
            Self::StopCapture => kind::STOP_CAPTURE,
            Self::SetIllumination { .. } => kind::SET_ILLUMINATION,
            Self::Ping { .. } => kind::PING,
        }
    }

    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::GetInfo => "get info",
            Self::StartCapture { .. } => "start capture",
            Self::StopCapture => "stop capture",
            Self::SetIllumination { .. } => "set illumination",
            Self::Ping { .. } => "ping",
        }
    }

    /// Appends the payload.
    pub(crate) fn write_payload(&self, dst: &mut BytesMut) {
        match self {
            Self::GetInfo | Self::StopCapture => {}
            Self::StartCapture { format, frames } => {
                dst.put_u8(*format as u8);
                dst.put_u16_le(*frames);
            }
            Self::SetIllumination { level } => dst.put_u8(*level),
            Self::Ping { token } => dst.put_u32_le(*token),
        }
    }

    /// Parses a payload of type `kind`.
    pub(crate) fn parse(kind: u8, payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut reader = Reader::new(kind, payload);
        let message = match kind {
            kind::GET_INFO => Self::GetInfo,
            kind::START_CAPTURE => Self::StartCapture {
                format: FrameFormat::from_byte(reader.u8()?)
                    .ok_or(reader.bad("unknown frame format"))?,
                frames: reader.u16()?,
            },
            kind::STOP_CAPTURE => Self::StopCapture,
            kind::SET_ILLUMINATION => {
                let level = reader.u8()?;
                if level > MAX_ILLUMINATION {
                    return Err(reader.bad("illumination level above 100"));
                }
                Self::SetIllumination { level }
            }
            kind::PING => Self::Ping {
                token: reader.u32()?,
            },
            other => return Err(ProtocolError::UnknownType { kind: other }),
        };
        reader.finish()?;
        Ok(message)
    }
}
