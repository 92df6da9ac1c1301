//! The frame layer: start marker, header, payload and CRC-32 (see `docs/sensor-protocol.md`).
//!
//! ```text
//! offset  size  field
//! 0       2     start marker A5 5A
//! 2       1     message type
//! 3       2     sequence number (u16 LE)
//! 5       4     payload length N (u32 LE)
//! 9       2     header check: CRC-16/IBM-3740 of bytes 2..9 (u16 LE)
//! 11      N     payload
//! 11+N    4     CRC-32/ISO-HDLC of bytes 2..11+N (u32 LE)
//! ```
//!
//! The header check lets the decoder trust a length before it waits for (or allocates) the
//! payload: a start marker that appears by chance inside garbage fails it and is skipped at once.

use bytes::{Buf, BufMut, BytesMut};
use crc::{CRC_16_IBM_3740, CRC_32_ISO_HDLC, Crc};
use zeroize::Zeroize;

use super::ProtocolError;

/// The two bytes that open every frame.
pub const START_MARKER: [u8; 2] = [0xA5, 0x5A];
/// Bytes before the payload: marker, type, sequence, length, header check.
pub const HEADER_LEN: usize = 11;
/// Bytes after the payload: the CRC-32.
pub const TRAILER_LEN: usize = 4;
/// Default limit on a payload's length: a 640×480 GRAY8 frame with room to spare.
pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

const HEADER_CHECK: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_3740);
const FRAME_CHECK: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

/// One frame as it travels on the line, before its payload is interpreted.
#[derive(PartialEq, Eq)]
pub struct RawFrame {
    /// Message type byte.
    pub kind: u8,
    /// Sequence number: a request's own, echoed by its response; 0 for unsolicited messages.
    pub seq: u16,
    /// The payload; wiped when dropped because it may hold a palm image.
    pub payload: BytesMut,
}

impl Drop for RawFrame {
    fn drop(&mut self) {
        self.payload.as_mut().zeroize();
    }
}

impl std::fmt::Debug for RawFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawFrame")
            .field("kind", &format_args!("{:#04x}", self.kind))
            .field("seq", &self.seq)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// Appends one complete frame to `dst`.
///
/// The caller checks the payload length against its limit; here it only has to fit in a `u32`.
pub fn encode_frame(
    kind: u8,
    seq: u16,
    payload: &[u8],
    dst: &mut BytesMut,
) -> Result<(), ProtocolError> {
    let length = u32::try_from(payload.len()).map_err(|_| ProtocolError::TooLarge {
        length: payload.len(),
        limit: u32::MAX as usize,
    })?;
    dst.reserve(HEADER_LEN + payload.len() + TRAILER_LEN);
    let start = dst.len();
    dst.put_slice(&START_MARKER);
    dst.put_u8(kind);
    dst.put_u16_le(seq);
    dst.put_u32_le(length);
    let header_check = HEADER_CHECK.checksum(&dst[start + 2..start + 9]);
    dst.put_u16_le(header_check);
    dst.put_slice(payload);
    let frame_check = FRAME_CHECK.checksum(&dst[start + 2..]);
    dst.put_u32_le(frame_check);
    Ok(())
}

/// Where the decoder is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Looking for (or inside) a frame.
    Scanning,
    /// Dropping the rest of a refused over-limit frame without buffering it.
    Skipping { remaining: usize },
}

/// Splits a byte stream into frames, resynchronising after garbage.
///
/// Every problem is returned as an `Err` item and decoding goes on with the next bytes; the decoder
/// never asks for more than `HEADER_LEN + max_payload + TRAILER_LEN` bytes of buffer.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: usize,
    state: State,
    /// Bytes dropped while looking for a start marker, not yet reported.
    skipped: usize,
}

impl FrameDecoder {
    /// A decoder refusing payloads longer than `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Self {
            max_payload,
            state: State::Scanning,
            skipped: 0,
        }
    }

    /// The payload limit.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Decodes the next frame from `src`, or returns `None` when more bytes are needed.
    pub fn decode(&mut self, src: &mut BytesMut) -> Option<Result<RawFrame, ProtocolError>> {
        loop {
            if let State::Skipping { remaining } = self.state {
                let dropped = remaining.min(src.len());
                discard(src, dropped);
                if dropped < remaining {
                    self.state = State::Skipping {
                        remaining: remaining - dropped,
                    };
                    return None;
                }
                self.state = State::Scanning;
            }

            // Drop everything before the first possible start marker.
            let before = src.len();
            let start = find_marker(src);
            discard(src, start);
            self.skipped += before - src.len();
            if src.len() < HEADER_LEN {
                // Report garbage now rather than when the next frame completes.
                return self.take_skipped();
            }

            let header_check = u16::from_le_bytes([src[9], src[10]]);
            if HEADER_CHECK.checksum(&src[2..9]) != header_check {
                // A marker by chance: skip its first byte and look again.
                discard(src, 1);
                self.skipped += 1;
                continue;
            }
            if let Some(garbage) = self.take_skipped() {
                return Some(garbage);
            }

            let kind = src[2];
            let seq = u16::from_le_bytes([src[3], src[4]]);
            let length = u32::from_le_bytes([src[5], src[6], src[7], src[8]]) as usize;
            if length > self.max_payload {
                discard(src, HEADER_LEN);
                let remaining = length + TRAILER_LEN;
                let dropped = remaining.min(src.len());
                discard(src, dropped);
                self.state = if dropped < remaining {
                    State::Skipping {
                        remaining: remaining - dropped,
                    }
                } else {
                    State::Scanning
                };
                return Some(Err(ProtocolError::TooLarge {
                    length,
                    limit: self.max_payload,
                }));
            }

            let total = HEADER_LEN + length + TRAILER_LEN;
            if src.len() < total {
                src.reserve(total - src.len());
                return None;
            }
            let expected = u32::from_le_bytes([
                src[total - 4],
                src[total - 3],
                src[total - 2],
                src[total - 1],
            ]);
            let actual = FRAME_CHECK.checksum(&src[2..total - TRAILER_LEN]);
            if actual != expected {
                // The header was sound, so the length is probably right, but the frame may also be a
                // truncated one followed by the next frame: drop only the marker and rescan, so that a
                // complete frame inside the claimed span is still found.
                discard(src, START_MARKER.len());
                return Some(Err(ProtocolError::BadCrc {
                    kind,
                    seq,
                    expected,
                    actual,
                }));
            }

            let mut frame = src.split_to(total);
            frame.advance(HEADER_LEN);
            frame.truncate(length);
            return Some(Ok(RawFrame {
                kind,
                seq,
                payload: frame,
            }));
        }
    }

    /// At the end of the stream: reports an incomplete frame as truncated, then rescans what
    /// followed its start marker (a complete frame may hide inside a falsely claimed length).
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Option<Result<RawFrame, ProtocolError>> {
        if let Some(item) = self.decode(src) {
            return Some(item);
        }
        if let State::Skipping { remaining } = self.state {
            self.state = State::Scanning;
            return Some(Err(ProtocolError::Truncated { bytes: remaining }));
        }
        if src.is_empty() {
            return None;
        }
        // `decode` stopped at a start marker: the frame it begins is incomplete.
        let bytes = src.len();
        discard(src, START_MARKER.len().min(bytes));
        Some(Err(ProtocolError::Truncated { bytes }))
    }

    fn take_skipped(&mut self) -> Option<Result<RawFrame, ProtocolError>> {
        if self.skipped == 0 {
            return None;
        }
        let skipped = std::mem::take(&mut self.skipped);
        Some(Err(ProtocolError::Garbage { skipped }))
    }
}

/// Index of the first byte that may start a frame: the marker, or a lone first marker byte at the end.
fn find_marker(src: &[u8]) -> usize {
    let mut index = 0;
    while index < src.len() {
        match src[index..]
            .iter()
            .position(|&byte| byte == START_MARKER[0])
        {
            None => return src.len(),
            Some(offset) => index += offset,
        }
        match src.get(index + 1) {
            None => return index,
            Some(&byte) if byte == START_MARKER[1] => return index,
            Some(_) => index += 1,
        }
    }
    src.len()
}

/// Drops `count` bytes from the front of `src`, wiping them first (they may be part of an image).
fn discard(src: &mut BytesMut, count: usize) {
    src[..count].zeroize();
    src.advance(count);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, seq: u16, payload: &[u8]) -> BytesMut {
        let mut out = BytesMut::new();
        encode_frame(kind, seq, payload, &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip() {
        let mut buf = frame(0x05, 7, &[1, 2, 3, 4]);
        let mut decoder = FrameDecoder::new(16);
        let decoded = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(
            (decoded.kind, decoded.seq, &decoded.payload[..]),
            (0x05, 7, &[1, 2, 3, 4][..])
        );
        assert!(buf.is_empty());
        assert!(decoder.decode(&mut buf).is_none());
    }

    #[test]
    fn byte_by_byte() {
        let bytes = frame(0x84, 0, &[9; 100]);
        let mut decoder = FrameDecoder::new(1000);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for &byte in bytes.iter() {
            buf.put_u8(byte);
            if let Some(item) = decoder.decode(&mut buf) {
                frames.push(item.unwrap());
            }
        }
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].payload.len(), 100);
    }

    #[test]
    fn garbage_then_frame() {
        let mut buf = BytesMut::from(&[0x00, 0xA5, 0x13, 0xA5, 0x5A, 0x01][..]);
        buf.extend_from_slice(&frame(0x01, 1, &[]));
        let mut decoder = FrameDecoder::new(16);
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap_err(),
            ProtocolError::Garbage { skipped: 6 }
        );
        let decoded = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!((decoded.kind, decoded.seq), (0x01, 1));
    }

    #[test]
    fn over_limit_is_skipped_without_buffering() {
        let big = frame(0x84, 0, &[7; 64]);
        let mut decoder = FrameDecoder::new(32);
        let mut buf = BytesMut::from(&big[..HEADER_LEN + 10]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap().unwrap_err(),
            ProtocolError::TooLarge {
                length: 64,
                limit: 32
            }
        );
        assert!(buf.is_empty());
        buf.extend_from_slice(&big[HEADER_LEN + 10..]);
        buf.extend_from_slice(&frame(0x86, 3, &[1, 2, 3, 4]));
        let decoded = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!((decoded.kind, decoded.seq), (0x86, 3));
    }

    #[test]
    fn huge_claimed_length_does_not_reserve() {
        let mut header = frame(0x84, 0, &[]);
        header.truncate(HEADER_LEN);
        // Claim 4 GiB - 1 with a valid header check.
        header[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        let check = HEADER_CHECK.checksum(&header[2..9]);
        header[9..11].copy_from_slice(&check.to_le_bytes());
        let mut decoder = FrameDecoder::new(1024);
        let capacity = header.capacity();
        assert!(matches!(
            decoder.decode(&mut header),
            Some(Err(ProtocolError::TooLarge { length, .. })) if length == u32::MAX as usize
        ));
        assert!(header.capacity() <= capacity);
    }

    #[test]
    fn bad_crc_then_next_frame() {
        let mut buf = frame(0x83, 0, &[1, 0, 80]);
        let last = buf.len() - 1;
        buf[last] ^= 0xFF;
        buf.extend_from_slice(&frame(0x83, 0, &[0, 0xFF, 0xFF]));
        let mut decoder = FrameDecoder::new(16);
        assert!(matches!(
            decoder.decode(&mut buf),
            Some(Err(ProtocolError::BadCrc { .. }))
        ));
        assert!(matches!(
            decoder.decode(&mut buf),
            Some(Err(ProtocolError::Garbage { .. }))
        ));
        let decoded = decoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(&decoded.payload[..], &[0, 0xFF, 0xFF]);
    }

    #[test]
    fn truncated_frame_then_complete_frame() {
        let first = frame(0x84, 0, &[5; 40]);
        let mut buf = BytesMut::from(&first[..25]);
        buf.extend_from_slice(&frame(0x86, 9, &[1, 2, 3, 4]));
        // Bytes that complete the truncated frame's claimed length, as the next frames would.
        buf.extend_from_slice(&[0u8; 40]);
        let mut decoder = FrameDecoder::new(64);
        let mut decoded = Vec::new();
        while let Some(item) = decoder.decode(&mut buf) {
            if let Ok(frame) = item {
                decoded.push((frame.kind, frame.seq));
            }
        }
        assert_eq!(decoded, vec![(0x86, 9)]);
    }

    #[test]
    fn eof_reports_truncation() {
        let whole = frame(0x84, 0, &[5; 40]);
        let mut buf = BytesMut::from(&whole[..30]);
        let mut decoder = FrameDecoder::new(64);
        assert!(decoder.decode(&mut buf).is_none());
        assert_eq!(
            decoder.decode_eof(&mut buf).unwrap().unwrap_err(),
            ProtocolError::Truncated { bytes: 30 }
        );
        assert_eq!(
            decoder.decode_eof(&mut buf).unwrap().unwrap_err(),
            ProtocolError::Garbage { skipped: 28 }
        );
        assert!(decoder.decode_eof(&mut buf).is_none());
        assert!(buf.is_empty());
    }
}
