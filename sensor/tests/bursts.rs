//! Protocol 1.1 over a real pseudo-terminal: bursts tagged by band and time, and both mixes of
//! versions (a 1.1 host with a 1.0 sensor, a 1.0 host with a 1.1 sensor).
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

use std::path::Path;
use std::time::Duration;

use bytes::BytesMut;
use futures::SinkExt;
use image::{GrayImage, Luma};
use palmgate_sensor::codec::{
    Band, Envelope, FrameDecoder, FrameFormat, HostCodec, HostMessage, SensorErrorCode,
    SensorMessage, sensor::kind,
};
use palmgate_sensor::device::{
    self, Backoff, BurstRequest, CaptureRequest, DeviceCommand, DeviceConfig, SensorEvent,
};
use palmgate_sensor::sim::{ImageSource, Simulator, SimulatorConfig};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_serial::SerialPortBuilderExt;
use tokio_util::codec::Framed;

mod common;
use common::{HEIGHT, PATIENCE, WIDTH, test_image};

/// A source with a model of light: each band shows a flat image of its own level (the band's
/// code × 40) plus the burst's frame index, so that every frame tells which band and which
/// moment it is.
struct BandedSource;

impl ImageSource for BandedSource {
    fn next_image(&mut self) -> Option<GrayImage> {
        Some(test_image(0))
    }

    fn next_burst(&mut self, bands: &[Band]) -> Option<Vec<GrayImage>> {
        Some(
            bands
                .iter()
                .enumerate()
                .map(|(index, band)| {
                    GrayImage::from_pixel(WIDTH, HEIGHT, Luma([*band as u8 * 40 + index as u8]))
                })
                .collect(),
        )
    }
}

fn simulator(link: &Path, bands: Option<Vec<Band>>) -> Simulator {
    let mut config = SimulatorConfig::new(link);
    config.fps = 30.0;
    config.width = WIDTH as u16;
    config.height = HEIGHT as u16;
    config.bands = bands;
    Simulator::new(config, BandedSource).0
}

struct Device {
    events: mpsc::Receiver<SensorEvent>,
    commands: mpsc::Sender<DeviceCommand>,
    _stop: oneshot::Sender<()>,
}

/// The device task on the simulator's link, once the simulator has created it (opening it
/// before would report a disconnection, which `next` takes for a failure).
async fn device(link: &Path) -> Device {
    let created = async {
        while !link.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(PATIENCE, created)
        .await
        .expect("the simulator creates its link");
    let mut config = DeviceConfig::new(link);
    config.baud = 115_200;
    config.request_timeout = Duration::from_millis(800);
    config.reconnect_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    config.capture = Some(CaptureRequest {
        format: FrameFormat::Gray8,
        frames: 0,
    });
    let (events_tx, events) = mpsc::channel(64);
    let (commands, commands_rx) = mpsc::channel(8);
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(device::run(config, events_tx, commands_rx, async {
        let _ = stopped.await;
    }));
    Device {
        events,
        commands,
        _stop: stop,
    }
}

impl Device {
    /// The next event that is not a presence report; fails the test on a disconnection or after
    /// [`PATIENCE`].
    async fn next(&mut self) -> SensorEvent {
        loop {
            let event = tokio::time::timeout(PATIENCE, self.events.recv())
                .await
                .expect("timed out waiting for a sensor event")
                .expect("device task ended");
            match event {
                SensorEvent::Presence { .. } => {}
                SensorEvent::Disconnected { error, .. } => panic!("disconnected: {error}"),
                other => return other,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_comes_tagged_with_band_index_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    let (_stop_sim, _sim) = common::spawn(simulator(&link, Some(Band::ALL.to_vec())));
    let mut device = device(&link).await;
    assert!(matches!(device.next().await, SensorEvent::Connected(_)));
    match device.next().await {
        SensorEvent::Bands(bands) => assert_eq!(bands, Band::ALL.to_vec()),
        other => panic!("expected the bands, got {other:?}"),
    }
    let burst = BurstRequest::new(FrameFormat::Png, &Band::ALL, 2);
    device
        .commands
        .send(DeviceCommand::Burst(burst))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 8 {
        if let SensorEvent::BurstFrame(frame) = device.next().await {
            let level = frame.frame.image.as_gray().get_pixel(3, 3).0[0];
            seen.push((frame.band, frame.index, frame.exposed_after, level));
        }
    }
    let period = Duration::from_micros(33_333);
    let expected: Vec<_> = burst
        .sequence()
        .into_iter()
        .enumerate()
        .map(|(index, band)| {
            let index = u8::try_from(index).unwrap();
            (
                band,
                index,
                period * u32::from(index),
                band as u8 * 40 + index,
            )
        })
        .collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_host_works_with_an_old_single_band_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    let (_stop_sim, _sim) = common::spawn(simulator(&link, None));
    let mut device = device(&link).await;
    assert!(matches!(device.next().await, SensorEvent::Connected(_)));
    match device.next().await {
        SensorEvent::Bands(bands) => assert!(bands.is_empty(), "a 1.0 sensor has no bands"),
        other => panic!("expected the (empty) bands, got {other:?}"),
    }
    // Capture goes on as in 1.0, on the same connection.
    for _ in 0..3 {
        match device.next().await {
            SensorEvent::Frame(frame) => {
                assert_eq!(frame.image.as_gray().dimensions(), (WIDTH, HEIGHT));
            }
            other => panic!("expected a frame, got {other:?}"),
        }
    }
}

/// The host's end of the simulator's line, opened as soon as the simulator has made its link.
async fn open_host_line(link: &Path) -> Framed<tokio_serial::SerialStream, HostCodec> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio_serial::new(link.to_string_lossy(), 115_200).open_native_async() {
            Ok(port) => return Framed::new(port, HostCodec::default()),
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("cannot open the simulator: {error}"),
        }
    }
}

/// What a 1.0 host does, byte for byte: handshake, capture, ping. It must see nothing but 1.0
/// messages, and `Info` in exactly the 1.0 layout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_host_works_with_a_new_sensor() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    let (_stop_sim, _sim) = common::spawn(simulator(&link, Some(Band::ALL.to_vec())));
    let mut framed = open_host_line(&link).await;
    for (seq, request) in [
        HostMessage::GetInfo,
        HostMessage::StartCapture {
            format: FrameFormat::Gray8,
            frames: 2,
        },
        HostMessage::Ping { token: 9 },
    ]
    .into_iter()
    .enumerate()
    {
        framed
            .send(Envelope::new(u16::try_from(seq).unwrap() + 1, request))
            .await
            .unwrap();
    }
    // Read the raw frames: a 1.0 host knows types 0x81..=0x86 only.
    let mut port = framed.into_inner();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut decoder = FrameDecoder::new(1 << 20);
    let mut buffer = BytesMut::new();
    let mut kinds = Vec::new();
    let mut info_len = None;
    while !(kinds.contains(&kind::PONG) && kinds.iter().filter(|&&k| k == kind::FRAME).count() == 2)
    {
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout_at(deadline, port.read(&mut chunk))
            .await
            .expect("timed out reading the sensor")
            .unwrap();
        buffer.extend_from_slice(&chunk[..read]);
        while let Some(frame) = decoder.decode(&mut buffer) {
            let frame = frame.unwrap();
            if frame.kind == kind::INFO {
                info_len = Some(frame.payload.len());
            }
            kinds.push(frame.kind);
        }
    }
    assert!(
        kinds.iter().all(|kind| (0x81..=0x86).contains(kind)),
        "only 1.0 messages: {kinds:02x?}"
    );
    // Version, width, height, formats, fps, "palmgate-sim", the firmware string: nothing after.
    let firmware = env!("CARGO_PKG_VERSION").len();
    assert_eq!(info_len, Some(1 + 2 + 2 + 1 + 1 + 1 + 12 + 1 + firmware));
}

/// A burst model that takes as long as the test wants: each burst waits for a word on `release`
/// (a slow renderer on a loaded machine, made deterministic).
struct HeldBurstSource {
    release: std::sync::mpsc::Receiver<()>,
}

impl ImageSource for HeldBurstSource {
    fn next_image(&mut self) -> Option<GrayImage> {
        Some(test_image(0))
    }

    fn next_burst(&mut self, bands: &[Band]) -> Option<Vec<GrayImage>> {
        self.release.recv().ok()?;
        BandedSource.next_burst(bands)
    }
}

/// The next message the host reads, or a failed test after [`PATIENCE`].
async fn read_message(
    framed: &mut Framed<tokio_serial::SerialStream, HostCodec>,
) -> Envelope<SensorMessage> {
    use futures::StreamExt;
    tokio::time::timeout(PATIENCE, framed.next())
        .await
        .expect("the sensor went quiet")
        .expect("the line closed")
        .expect("the line failed")
        .expect("a message that does not decode")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sensor_answers_requests_while_it_renders_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    let mut config = SimulatorConfig::new(&link);
    config.width = WIDTH as u16;
    config.height = HEIGHT as u16;
    let (release, held) = std::sync::mpsc::channel();
    let (simulator, _) = Simulator::new(config, HeldBurstSource { release: held });
    let (_stop_sim, _sim) = common::spawn(simulator);
    let mut framed = open_host_line(&link).await;
    let bands = vec![Band::Ambient, Band::Nir850];
    framed
        .send(Envelope::new(
            1,
            HostMessage::StartBurst {
                format: FrameFormat::Gray8,
                bands: bands.clone(),
            },
        ))
        .await
        .unwrap();
    let ack = read_message(&mut framed).await;
    assert_eq!((ack.seq, ack.message), (1, SensorMessage::Ack));

    // The burst is still being rendered: the sensor answers a ping and its info at once, and
    // refuses a second burst as busy.
    framed
        .send(Envelope::new(2, HostMessage::Ping { token: 7 }))
        .await
        .unwrap();
    let pong = read_message(&mut framed).await;
    assert_eq!(
        (pong.seq, pong.message),
        (2, SensorMessage::Pong { token: 7 })
    );
    framed
        .send(Envelope::new(3, HostMessage::GetInfo))
        .await
        .unwrap();
    let info = read_message(&mut framed).await;
    assert_eq!(info.seq, 3);
    assert!(matches!(info.message, SensorMessage::Info(_)), "{info:?}");
    framed
        .send(Envelope::new(
            4,
            HostMessage::StartBurst {
                format: FrameFormat::Gray8,
                bands: bands.clone(),
            },
        ))
        .await
        .unwrap();
    let busy = read_message(&mut framed).await;
    assert_eq!(busy.seq, 4);
    assert!(
        matches!(
            busy.message,
            SensorMessage::Error {
                code: SensorErrorCode::Busy,
                ..
            }
        ),
        "{busy:?}"
    );

    // Once rendered, the acknowledged burst comes out whole.
    release.send(()).unwrap();
    for (index, band) in bands.into_iter().enumerate() {
        match read_message(&mut framed).await.message {
            SensorMessage::BandFrame(frame) => {
                assert_eq!((frame.band, usize::from(frame.index)), (band, index));
            }
            other => panic!("expected burst frame {index}, got {other:?}"),
        }
    }
}
