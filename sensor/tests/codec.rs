//! Codec properties (arbitrary bytes never panic nor grow the buffer past the limit; frames are found
//! again after garbage and corruption) and the codecs over an in-memory duplex stream.
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

use std::time::Duration;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use palmgate_sensor::codec::frame::{HEADER_LEN, TRAILER_LEN};
use palmgate_sensor::codec::{
    Envelope, FrameFormat, HostCodec, HostMessage, ProtocolError, SensorCodec, SensorErrorCode,
    SensorInfo, SensorMessage,
};
use palmgate_sensor::image::ImageBytes;
use proptest::prelude::*;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};

const LIMIT: usize = 512;

fn format() -> impl Strategy<Value = FrameFormat> {
    prop::sample::select(FrameFormat::ALL.to_vec())
}

fn short_string() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ._é-]{0,40}"
}

fn sensor_message() -> impl Strategy<Value = SensorMessage> {
    prop_oneof![
        (
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            prop::collection::vec(format(), 0..3),
            any::<u8>(),
            short_string(),
            short_string()
        )
            .prop_map(
                |(protocol_version, width, height, mut formats, max_fps, model, firmware)| {
                    formats.sort_by_key(|format| *format as u8);
                    formats.dedup();
                    SensorMessage::Info(SensorInfo {
                        protocol_version,
                        width,
                        height,
                        formats,
                        max_fps,
                        model,
                        firmware,
                    })
                }
            ),
        Just(SensorMessage::Ack),
        (any::<bool>(), prop::option::of(0u16..0xFFFF)).prop_map(|(present, distance_mm)| {
            SensorMessage::Presence {
                present,
                distance_mm,
            }
        }),
        (1u16..16, 1u16..16, any::<u32>(), any::<u8>()).prop_map(
            |(width, height, frame_number, fill)| {
                let data = vec![fill; usize::from(width) * usize::from(height)];
                SensorMessage::Frame {
                    format: FrameFormat::Gray8,
                    width,
                    height,
                    frame_number,
                    data: ImageBytes::from(data),
                }
            }
        ),
        (
            prop::collection::vec(any::<u8>(), 0..200),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(data, width, height)| {
                SensorMessage::Frame {
                    format: FrameFormat::Jpeg,
                    width,
                    height,
                    frame_number: 1,
                    data: ImageBytes::from(data),
                }
            }),
        (any::<u8>(), short_string()).prop_map(|(code, message)| SensorMessage::Error {
            code: SensorErrorCode::from_byte(code),
            message,
        }),
        any::<u32>().prop_map(|token| SensorMessage::Pong { token }),
    ]
}

fn host_message() -> impl Strategy<Value = HostMessage> {
    prop_oneof![
        Just(HostMessage::GetInfo),
        (format(), any::<u16>())
            .prop_map(|(format, frames)| HostMessage::StartCapture { format, frames }),
        Just(HostMessage::StopCapture),
        (0u8..=100).prop_map(|level| HostMessage::SetIllumination { level }),
        any::<u32>().prop_map(|token| HostMessage::Ping { token }),
    ]
}

fn envelope<M: std::fmt::Debug + Clone>(
    message: impl Strategy<Value = M>,
) -> impl Strategy<Value = Envelope<M>> {
    (any::<u16>(), message).prop_map(|(seq, message)| Envelope::new(seq, message))
}

/// Noise that cannot contain a start marker.
fn noise() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        any::<u8>().prop_map(|byte| if byte == 0xA5 { 0 } else { byte }),
        0..64,
    )
}

/// Feeds `bytes` to `codec` in chunks of `chunk` bytes, then ends the stream; returns every item.
fn feed<D: Decoder>(codec: &mut D, bytes: &[u8], chunk: usize, limit: usize) -> Vec<D::Item>
where
    D::Error: std::fmt::Debug,
{
    let mut buffer = BytesMut::new();
    let mut items = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buffer.extend_from_slice(piece);
        while let Some(item) = codec
            .decode(&mut buffer)
            .expect("decoding never fails the stream")
        {
            items.push(item);
        }
        // Never holds more than one frame's worth of bytes plus the chunk just received.
        assert!(
            buffer.len() <= HEADER_LEN + limit + TRAILER_LEN + chunk,
            "buffer {} bytes",
            buffer.len()
        );
    }
    while let Some(item) = codec
        .decode_eof(&mut buffer)
        .expect("decoding never fails the stream")
    {
        items.push(item);
    }
    assert!(buffer.is_empty());
    items
}

fn encode_sensor(envelope: &Envelope<SensorMessage>) -> BytesMut {
    let mut out = BytesMut::new();
    SensorCodec::default()
        .encode(envelope.clone(), &mut out)
        .unwrap();
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048), chunk in 1usize..300) {
        feed(&mut HostCodec::new(LIMIT), &bytes, chunk, LIMIT);
        feed(&mut SensorCodec::new(LIMIT), &bytes, chunk, LIMIT);
    }

    #[test]
    fn arbitrary_bytes_after_a_marker_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600), chunk in 1usize..64) {
        let mut stream = vec![0xA5, 0x5A];
        stream.extend_from_slice(&bytes);
        feed(&mut HostCodec::new(LIMIT), &stream, chunk, LIMIT);
        feed(&mut SensorCodec::new(LIMIT), &stream, chunk, LIMIT);
    }

    #[test]
    fn sensor_messages_round_trip_through_garbage(
        parts in prop::collection::vec((noise(), envelope(sensor_message())), 1..8),
        trailing in noise(),
        chunk in 1usize..200,
    ) {
        let mut stream = Vec::new();
        let mut garbage = 0;
        for (noise, envelope) in &parts {
            stream.extend_from_slice(noise);
            garbage += noise.len();
            stream.extend_from_slice(&encode_sensor(envelope));
        }
        stream.extend_from_slice(&trailing);
        garbage += trailing.len();
        let items = feed(&mut HostCodec::new(LIMIT), &stream, chunk, LIMIT);
        let mut decoded = Vec::new();
        let mut reported = 0;
        for item in items {
            match item {
                Ok(envelope) => decoded.push(envelope),
                Err(ProtocolError::Garbage { skipped }) => reported += skipped,
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
        let sent: Vec<_> = parts.into_iter().map(|(_, envelope)| envelope).collect();
        prop_assert_eq!(decoded, sent);
        prop_assert_eq!(reported, garbage);
    }

    #[test]
    fn host_messages_round_trip(messages in prop::collection::vec(envelope(host_message()), 1..10), chunk in 1usize..40) {
        let mut stream = BytesMut::new();
        for envelope in &messages {
            HostCodec::default().encode(envelope.clone(), &mut stream).unwrap();
        }
        let items = feed(&mut SensorCodec::default(), &stream, chunk, 64);
        let decoded: Vec<_> = items.into_iter().map(|item| item.unwrap()).collect();
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn a_corrupted_frame_loses_only_itself(
        messages in prop::collection::vec(envelope(sensor_message()), 2..6),
        victim in any::<prop::sample::Index>(),
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
        chunk in 1usize..200,
    ) {
        let victim = victim.index(messages.len());
        let mut stream = Vec::new();
        for (index, envelope) in messages.iter().enumerate() {
            let mut bytes = encode_sensor(envelope).to_vec();
            if index == victim {
                let at = position.index(bytes.len());
                bytes[at] ^= flip;
            }
            stream.extend_from_slice(&bytes);
        }
        let decoded: Vec<_> = feed(&mut HostCodec::new(LIMIT), &stream, chunk, LIMIT)
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        let mut expected = messages;
        expected.remove(victim);
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn over_limit_frames_are_skipped(
        big in 1usize..4096,
        after in envelope(sensor_message()),
        chunk in 1usize..300,
    ) {
        let limit = 16;
        let frame = Envelope::new(0, SensorMessage::Frame {
            format: FrameFormat::Png,
            width: 1,
            height: 1,
            frame_number: 0,
            data: ImageBytes::from(vec![0xA5; big + limit]),
        });
        let mut stream = encode_sensor(&frame).to_vec();
        let after_bytes = encode_sensor(&after);
        prop_assume!(after_bytes.len() - HEADER_LEN - TRAILER_LEN <= limit);
        stream.extend_from_slice(&after_bytes);
        let items = feed(&mut HostCodec::new(limit), &stream, chunk, limit);
        prop_assert_eq!(items.len(), 2);
        let too_large = matches!(items[0], Err(ProtocolError::TooLarge { limit: 16, .. }));
        prop_assert!(too_large);
        prop_assert_eq!(items[1].as_ref().ok(), Some(&after));
    }
}

#[tokio::test]
async fn codecs_talk_over_a_duplex_stream_through_noise() {
    let (host_side, sensor_side) = tokio::io::duplex(64);
    let (host_read, host_write) = tokio::io::split(host_side);
    let (sensor_read, mut sensor_write) = tokio::io::split(sensor_side);
    let mut host_in = FramedRead::new(host_read, HostCodec::default());
    let mut host_out = FramedWrite::new(host_write, HostCodec::default());
    let mut sensor_in = FramedRead::new(sensor_read, SensorCodec::default());

    host_out
        .send(Envelope::new(1, HostMessage::Ping { token: 42 }))
        .await
        .unwrap();
    let request = sensor_in.next().await.unwrap().unwrap().unwrap();
    assert_eq!(request, Envelope::new(1, HostMessage::Ping { token: 42 }));

    // The sensor answers through noise, a corrupted frame and a frame split in small writes.
    let pong = encode_sensor(&Envelope::new(1, SensorMessage::Pong { token: 42 }));
    let frame = encode_sensor(&Envelope::new(
        0,
        SensorMessage::Frame {
            format: FrameFormat::Gray8,
            width: 40,
            height: 30,
            frame_number: 9,
            data: ImageBytes::from(vec![7; 1200]),
        },
    ));
    let mut corrupted = frame.to_vec();
    corrupted[100] ^= 0x55;
    let writer = tokio::spawn(async move {
        sensor_write.write_all(b"\x00\x01noise\xA5").await.unwrap();
        sensor_write.write_all(&pong).await.unwrap();
        sensor_write.write_all(&corrupted).await.unwrap();
        for piece in frame.chunks(7) {
            sensor_write.write_all(piece).await.unwrap();
        }
        sensor_write.shutdown().await.unwrap();
    });

    let mut items = Vec::new();
    while let Some(item) = tokio::time::timeout(Duration::from_secs(5), host_in.next())
        .await
        .unwrap()
    {
        items.push(item.unwrap());
    }
    writer.await.unwrap();
    let messages: Vec<_> = items.iter().filter_map(|item| item.as_ref().ok()).collect();
    assert_eq!(messages.len(), 2, "{items:?}");
    assert_eq!(
        messages[0],
        &Envelope::new(1, SensorMessage::Pong { token: 42 })
    );
    assert!(matches!(
        messages[1].message,
        SensorMessage::Frame {
            frame_number: 9,
            ..
        }
    ));
    assert!(
        matches!(items[0], Err(ProtocolError::Garbage { skipped: 8 })),
        "{items:?}"
    );
    assert!(
        items
            .iter()
            .any(|item| matches!(item, Err(ProtocolError::BadCrc { .. })))
    );
}
