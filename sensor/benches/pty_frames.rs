//! Decoded frames per second, and latency from the last byte written to the decoded frame in the
//! consumer's hands, for 640×480 GRAY8 and JPEG frames through the device task over a real
//! pseudo-terminal (tokio-serial on the device side).
//!
//! Run: `cargo bench -p palmgate-sensor --bench pty_frames` (prints median and p99).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use palmgate_sensor::codec::{
    Envelope, FrameFormat, HostMessage, SensorCodec, SensorInfo, SensorMessage,
    encode_sensor_message,
};
use palmgate_sensor::device::{self, DeviceConfig, SensorEvent};
use palmgate_sensor::image::encode_image;
use palmgate_sensor::sim::Pty;
use palmgate_sensor::{GrayImage, Luma};
use tokio::io::{AsyncWriteExt, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

const LATENCY_SAMPLES: usize = 200;
const THROUGHPUT_FRAMES: usize = 300;

/// A palm-like test image: smooth shading, lines and noise, so that JPEG has realistic work to do.
fn test_image() -> GrayImage {
    let mut state: u32 = 0x1234_5678;
    GrayImage::from_fn(640, 480, |x, y| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let shade = 60.0
            + 100.0
                * (-(((x as f32 - 320.0) / 200.0).powi(2) + ((y as f32 - 240.0) / 160.0).powi(2)))
                    .exp();
        let line = if (x + 2 * y) % 53 < 2 || (3 * x + y) % 97 < 2 {
            -30.0
        } else {
            0.0
        };
        let noise = (state % 16) as f32 - 8.0;
        Luma([(shade + line + noise).clamp(0.0, 255.0) as u8])
    })
}

fn frame_bytes(image: &GrayImage, format: FrameFormat, number: u32) -> BytesMut {
    let (width, height, data) = encode_image(image, format).expect("encode");
    let mut out = BytesMut::new();
    let frame = SensorMessage::Frame {
        format,
        width,
        height,
        frame_number: number,
        data,
    };
    encode_sensor_message(&Envelope::new(0, frame), &mut out).expect("frame");
    out
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted[index]
}

struct Bench {
    writer: WriteHalf<Pty>,
    events: mpsc::Receiver<SensorEvent>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// A device task on a fresh pty, past its handshake.
async fn connect() -> Bench {
    let pty = Pty::open().expect("pty");
    let mut config = DeviceConfig::new(pty.slave_path());
    config.capture = None;
    config.keepalive = Duration::from_secs(3600);
    config.request_timeout = Duration::from_secs(10);
    let (reader, mut writer) = tokio::io::split(pty);
    let mut requests = FramedRead::new(reader, SensorCodec::default());
    let (event_sender, mut events) = mpsc::channel(1024);
    let (_commands, command_receiver) = mpsc::channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(device::run(config, event_sender, command_receiver, async {
        let _ = stopped.await;
    }));
    // Handshake: GetInfo → Info, then StopCapture (no capture configured) → Ack.
    for _ in 0..2 {
        let Envelope { seq, message } = requests
            .next()
            .await
            .expect("request")
            .expect("io")
            .expect("valid");
        let reply = match message {
            HostMessage::GetInfo => SensorMessage::Info(SensorInfo {
                protocol_version: 1,
                width: 640,
                height: 480,
                formats: FrameFormat::ALL.to_vec(),
                max_fps: 30,
                model: "bench".to_owned(),
                firmware: "0".to_owned(),
            }),
            _ => SensorMessage::Ack,
        };
        let mut out = BytesMut::new();
        encode_sensor_message(&Envelope::new(seq, reply), &mut out).expect("reply");
        writer.write_all(&out).await.expect("write");
    }
    loop {
        if let Some(SensorEvent::Connected(_)) = events.recv().await {
            break;
        }
    }
    // Keep draining requests so the host never blocks on writes.
    tokio::spawn(async move { while requests.next().await.is_some() {} });
    Bench {
        writer,
        events,
        stop,
        task,
    }
}

async fn next_frame(events: &mut mpsc::Receiver<SensorEvent>) -> Instant {
    loop {
        match events.recv().await.expect("event") {
            SensorEvent::Frame(_) => return Instant::now(),
            SensorEvent::Problem(error) => panic!("problem: {error}"),
            _ => {}
        }
    }
}

async fn measure(format: FrameFormat, image: &GrayImage) {
    let frame = frame_bytes(image, format, 1);
    let mut bench = connect().await;

    // Latency: one frame at a time, from the end of the write to the consumer.
    let mut latencies = Vec::with_capacity(LATENCY_SAMPLES);
    for _ in 0..LATENCY_SAMPLES + 10 {
        bench.writer.write_all(&frame).await.expect("write");
        let last_byte = Instant::now();
        let received = next_frame(&mut bench.events).await;
        latencies.push(received - last_byte);
    }
    let mut latencies = latencies.split_off(10); // warm-up
    latencies.sort();

    // Throughput: frames back to back.
    let mut writer = bench.writer;
    let frames = frame.clone();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        for _ in 0..THROUGHPUT_FRAMES {
            writer.write_all(&frames).await.expect("write");
        }
        writer
    });
    for _ in 0..THROUGHPUT_FRAMES {
        next_frame(&mut bench.events).await;
    }
    let elapsed = start.elapsed();
    let _writer = sender.await.expect("sender");
    let _ = bench.stop.send(());
    let _ = bench.task.await;

    println!(
        "640x480 {format:<5} frame {:>7} B: {:>7.1} decoded frames/s ({:>6.1} MB/s); last byte -> decoded frame: median {:>8.3} ms, p99 {:>8.3} ms",
        frame.len(),
        THROUGHPUT_FRAMES as f64 / elapsed.as_secs_f64(),
        (THROUGHPUT_FRAMES * frame.len()) as f64 / elapsed.as_secs_f64() / 1e6,
        percentile(&latencies, 0.5).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let image = test_image();
    runtime.block_on(async {
        for format in [FrameFormat::Gray8, FrameFormat::Jpeg] {
            measure(format, &image).await;
        }
    });
}
