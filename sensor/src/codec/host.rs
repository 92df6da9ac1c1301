//! Host → sensor messages: get info, start / stop capture, illumination, ping; since protocol 1.1,
//! get bands and start burst.

use bytes::{BufMut, BytesMut};

use super::{Band, FrameFormat, ProtocolError, Reader};

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
    /// [`super::HostMessage::GetBands`] (protocol 1.1).
    pub const GET_BANDS: u8 = 0x06;
    /// [`super::HostMessage::StartBurst`] (protocol 1.1).
    pub const START_BURST: u8 = 0x07;
}

/// The most frames one burst may ask for.
pub const MAX_BURST_FRAMES: usize = 32;

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
    /// Asks which illumination bands the sensor has; answered with `Bands` (protocol 1.1; a 1.0
    /// sensor answers `Error` unknown request).
    GetBands,
    /// Asks for one presentation burst: one frame per entry of `bands`, in that order, each lit
    /// by its band; answered with `Ack`, then the `BandFrame`s (protocol 1.1).
    StartBurst {
        /// Encoding of the frames.
        format: FrameFormat,
        /// The band of each frame, 1 to [`MAX_BURST_FRAMES`] entries.
        bands: Vec<Band>,
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
            Self::GetBands => kind::GET_BANDS,
            Self::StartBurst { .. } => kind::START_BURST,
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
            Self::GetBands => "get bands",
            Self::StartBurst { .. } => "start burst",
        }
    }

    /// Appends the payload.
    pub(crate) fn write_payload(&self, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        match self {
            Self::GetInfo | Self::StopCapture | Self::GetBands => {}
            Self::StartBurst { format, bands } => {
                let count = u8::try_from(bands.len())
                    .ok()
                    .filter(|count| (1..=MAX_BURST_FRAMES).contains(&usize::from(*count)))
                    .ok_or(ProtocolError::BadPayload {
                        kind: kind::START_BURST,
                        reason: "a burst has 1 to 32 frames",
                    })?;
                dst.put_u8(*format as u8);
                dst.put_u8(count);
                for band in bands {
                    dst.put_u8(*band as u8);
                }
            }
            Self::StartCapture { format, frames } => {
                dst.put_u8(*format as u8);
                dst.put_u16_le(*frames);
            }
            Self::SetIllumination { level } => dst.put_u8(*level),
            Self::Ping { token } => dst.put_u32_le(*token),
        }
        Ok(())
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
            kind::GET_BANDS => Self::GetBands,
            kind::START_BURST => {
                let format = FrameFormat::from_byte(reader.u8()?)
                    .ok_or(reader.bad("unknown frame format"))?;
                let count = usize::from(reader.u8()?);
                if !(1..=MAX_BURST_FRAMES).contains(&count) {
                    return Err(reader.bad("a burst has 1 to 32 frames"));
                }
                let bands = (0..count)
                    .map(|_| Band::from_byte(reader.u8()?).ok_or(reader.bad("unknown band")))
                    .collect::<Result<_, _>>()?;
                Self::StartBurst { format, bands }
            }
            other => return Err(ProtocolError::UnknownType { kind: other }),
        };
        reader.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_burst(payload: &[u8]) -> Result<HostMessage, ProtocolError> {
        HostMessage::parse(kind::START_BURST, payload)
    }

    #[test]
    fn malformed_bursts_are_bad_payloads() {
        assert_eq!(
            parse_burst(&[1, 2, 4, 2]),
            Ok(HostMessage::StartBurst {
                format: FrameFormat::Gray8,
                bands: vec![Band::Visible, Band::Nir850],
            })
        );
        for (payload, reason) in [
            (&[1, 0][..], "a burst has 1 to 32 frames"),
            (&[1, 33][..], "a burst has 1 to 32 frames"),
            (&[1, 2, 4][..], "payload too short"),
            (&[1, 1, 4, 4][..], "payload too long"),
            (&[1, 1, 9][..], "unknown band"),
            (&[7, 1, 1][..], "unknown frame format"),
        ] {
            assert_eq!(
                parse_burst(payload),
                Err(ProtocolError::BadPayload {
                    kind: kind::START_BURST,
                    reason
                }),
                "{payload:?}"
            );
        }
    }

    #[test]
    fn a_burst_that_cannot_be_sent_is_refused_before_any_byte() {
        let mut out = BytesMut::new();
        let empty = HostMessage::StartBurst {
            format: FrameFormat::Gray8,
            bands: Vec::new(),
        };
        assert!(empty.write_payload(&mut out).is_err());
        let huge = HostMessage::StartBurst {
            format: FrameFormat::Gray8,
            bands: vec![Band::Ambient; MAX_BURST_FRAMES + 1],
        };
        assert!(huge.write_payload(&mut out).is_err());
        assert!(out.is_empty());
    }
}
