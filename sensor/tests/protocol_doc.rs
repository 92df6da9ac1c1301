//! The test vectors of `docs/sensor-protocol.md` are the codec's bytes: every vector in the document
//! encodes from, and decodes to, the message named here, and every message here has a vector.
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

use bytes::BytesMut;
use palmgate_sensor::codec::{
    Band, BandFrame, Envelope, FrameFormat, HostCodec, HostMessage, SensorCodec, SensorErrorCode,
    SensorInfo, SensorMessage,
};
use palmgate_sensor::image::ImageBytes;
use tokio_util::codec::{Decoder, Encoder};

enum Vector {
    Host(Envelope<HostMessage>),
    Sensor(Envelope<SensorMessage>),
}

fn vectors() -> Vec<(&'static str, Vector)> {
    use Vector::{Host, Sensor};
    vec![
        ("get-info", Host(Envelope::new(1, HostMessage::GetInfo))),
        (
            "start-capture",
            Host(Envelope::new(
                2,
                HostMessage::StartCapture {
                    format: FrameFormat::Jpeg,
                    frames: 0,
                },
            )),
        ),
        (
            "stop-capture",
            Host(Envelope::new(3, HostMessage::StopCapture)),
        ),
        (
            "set-illumination",
            Host(Envelope::new(4, HostMessage::SetIllumination { level: 75 })),
        ),
        (
            "ping",
            Host(Envelope::new(5, HostMessage::Ping { token: 0xDEAD_BEEF })),
        ),
        (
            "info",
            Sensor(Envelope::new(
                1,
                SensorMessage::Info(SensorInfo {
                    protocol_version: 1,
                    width: 640,
                    height: 480,
                    formats: FrameFormat::ALL.to_vec(),
                    max_fps: 30,
                    model: "PG-1".to_owned(),
                    firmware: "1.2.0".to_owned(),
                }),
            )),
        ),
        ("ack", Sensor(Envelope::new(2, SensorMessage::Ack))),
        (
            "presence",
            Sensor(Envelope::new(
                0,
                SensorMessage::Presence {
                    present: true,
                    distance_mm: Some(85),
                },
            )),
        ),
        (
            "absence",
            Sensor(Envelope::new(
                0,
                SensorMessage::Presence {
                    present: false,
                    distance_mm: None,
                },
            )),
        ),
        (
            "frame-gray8",
            Sensor(Envelope::new(
                0,
                SensorMessage::Frame {
                    format: FrameFormat::Gray8,
                    width: 2,
                    height: 2,
                    frame_number: 7,
                    data: ImageBytes::from(vec![0x00, 0x40, 0x80, 0xFF]),
                },
            )),
        ),
        (
            "error",
            Sensor(Envelope::new(
                2,
                SensorMessage::Error {
                    code: SensorErrorCode::UnsupportedFormat,
                    message: "no png".to_owned(),
                },
            )),
        ),
        (
            "pong",
            Sensor(Envelope::new(5, SensorMessage::Pong { token: 0xDEAD_BEEF })),
        ),
        ("get-bands", Host(Envelope::new(6, HostMessage::GetBands))),
        (
            "start-burst",
            Host(Envelope::new(
                7,
                HostMessage::StartBurst {
                    format: FrameFormat::Gray8,
                    bands: vec![Band::Ambient, Band::Nir850, Band::Nir940, Band::Visible],
                },
            )),
        ),
        (
            "bands",
            Sensor(Envelope::new(6, SensorMessage::Bands(Band::ALL.to_vec()))),
        ),
        (
            "bands-nir850",
            Sensor(Envelope::new(6, SensorMessage::Bands(vec![Band::Nir850]))),
        ),
        (
            "band-frame",
            Sensor(Envelope::new(
                0,
                SensorMessage::BandFrame(BandFrame {
                    band: Band::Nir850,
                    index: 1,
                    time_us: 33_333,
                    format: FrameFormat::Gray8,
                    width: 2,
                    height: 2,
                    frame_number: 8,
                    data: ImageBytes::from(vec![0x10, 0x20, 0x30, 0x40]),
                }),
            )),
        ),
    ]
}

fn encode(vector: &Vector) -> Vec<u8> {
    let mut out = BytesMut::new();
    match vector {
        Vector::Host(envelope) => HostCodec::default()
            .encode(envelope.clone(), &mut out)
            .unwrap(),
        Vector::Sensor(envelope) => SensorCodec::default()
            .encode(envelope.clone(), &mut out)
            .unwrap(),
    }
    out.to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `(name, bytes)` of each block that starts with a `# vector: NAME` line.
fn document_vectors() -> Vec<(String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/sensor-protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/sensor-protocol.md");
    let mut vectors = Vec::new();
    let mut current: Option<(String, Vec<u8>)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("# vector: ") {
            vectors.extend(current.take());
            let name = name
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            current = Some((name, Vec::new()));
        } else if line.starts_with("```") {
            vectors.extend(current.take());
        } else if let Some((_, bytes)) = current.as_mut() {
            let data = line.split('#').next().unwrap_or_default();
            for token in data.split_whitespace() {
                bytes.push(
                    u8::from_str_radix(token, 16).unwrap_or_else(|_| panic!("bad hex {token:?}")),
                );
            }
        }
    }
    vectors.extend(current);
    vectors
}

#[test]
fn document_vectors_match_the_codec() {
    let expected = vectors();
    let listing: String = expected
        .iter()
        .map(|(name, vector)| format!("# vector: {name}\n{}\n", hex(&encode(vector))))
        .collect();
    let documented = document_vectors();
    assert_eq!(
        documented
            .iter()
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>(),
        expected.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        "the document's vectors differ from the test's; the codec's are:\n{listing}"
    );
    for ((name, bytes), (_, vector)) in documented.iter().zip(&expected) {
        assert_eq!(
            hex(bytes),
            hex(&encode(vector)),
            "vector {name}; the codec's are:\n{listing}"
        );
        let mut buffer = BytesMut::from(&bytes[..]);
        match vector {
            Vector::Host(envelope) => {
                let decoded = SensorCodec::default()
                    .decode(&mut buffer)
                    .unwrap()
                    .unwrap()
                    .unwrap();
                assert_eq!(&decoded, envelope, "vector {name}");
            }
            Vector::Sensor(envelope) => {
                let decoded = HostCodec::default()
                    .decode(&mut buffer)
                    .unwrap()
                    .unwrap()
                    .unwrap();
                assert_eq!(&decoded, envelope, "vector {name}");
            }
        }
        assert!(buffer.is_empty(), "vector {name} has trailing bytes");
    }
}
