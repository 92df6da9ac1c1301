//! Simulator ↔ device task over a real pseudo-terminal opened with tokio-serial: every frame format,
//! every injected fault, unplug / replug, timeouts, sensor errors and commands.
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::GrayImage;
use palmgate_sensor::codec::{FrameFormat, ProtocolError, SensorErrorCode};
use palmgate_sensor::device::{
    self, Backoff, CaptureRequest, CapturedFrame, DeviceCommand, DeviceConfig, DeviceError,
    SensorEvent,
};
use palmgate_sensor::sim::{
    Fault, FaultInjector, Pty, Simulator, SimulatorConfig, SimulatorStatus,
};
use tokio::sync::{mpsc, oneshot, watch};

/// Whether a protocol error is the one a fault should cause.
type ErrorCheck = fn(&ProtocolError) -> bool;

mod common;
use common::{HEIGHT, PATIENCE, WIDTH, test_image};

/// The index of the test image closest to `frame` (JPEG is lossy).
fn which_image(frame: &GrayImage) -> (u32, u8) {
    (0..200)
        .map(|n| {
            let reference = test_image(n);
            let error = frame
                .pixels()
                .zip(reference.pixels())
                .map(|(a, b)| a.0[0].abs_diff(b.0[0]))
                .max()
                .unwrap_or(u8::MAX);
            (n, error)
        })
        .min_by_key(|&(_, error)| error)
        .unwrap()
}

struct Rig {
    _dir: tempfile::TempDir,
    link: PathBuf,
    faults: FaultInjector,
    status: watch::Receiver<SimulatorStatus>,
    events: mpsc::Receiver<SensorEvent>,
    commands: mpsc::Sender<DeviceCommand>,
    stop_sim: Option<oneshot::Sender<()>>,
    stop_device: Option<oneshot::Sender<()>>,
    sim: tokio::task::JoinHandle<()>,
    device: tokio::task::JoinHandle<()>,
}

struct RigOptions {
    sim_formats: Vec<FrameFormat>,
    capture: Option<CaptureRequest>,
    max_frame_bytes: usize,
    fps: f64,
}

impl Default for RigOptions {
    fn default() -> Self {
        Self {
            sim_formats: FrameFormat::ALL.to_vec(),
            capture: Some(CaptureRequest {
                format: FrameFormat::Gray8,
                frames: 0,
            }),
            max_frame_bytes: 64 * 1024,
            fps: 40.0,
        }
    }
}

fn device_config(link: &Path, options: &RigOptions) -> DeviceConfig {
    let mut config = DeviceConfig::new(link);
    config.baud = 115_200;
    config.max_frame_bytes = options.max_frame_bytes;
    config.request_timeout = Duration::from_millis(800);
    config.reconnect_backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    };
    config.keepalive = Duration::from_secs(2);
    config.capture = options.capture;
    config
}

fn start(options: RigOptions) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("palm-sensor");
    let mut sim_config = SimulatorConfig::new(&link);
    sim_config.formats = options.sim_formats.clone();
    sim_config.fps = options.fps;
    sim_config.width = WIDTH as u16;
    sim_config.height = HEIGHT as u16;
    let (simulator, faults) = Simulator::new(sim_config, (0..).map(test_image));
    let status = simulator.status();
    let (stop_sim, sim) = common::spawn(simulator);

    let (event_sender, events) = mpsc::channel(64);
    let (commands, command_receiver) = mpsc::channel(8);
    let (stop_device, device_stopped) = oneshot::channel::<()>();
    let config = device_config(&link, &options);
    let device = tokio::spawn(device::run(config, event_sender, command_receiver, async {
        let _ = device_stopped.await;
    }));
    Rig {
        _dir: dir,
        link,
        faults,
        status,
        events,
        commands,
        stop_sim: Some(stop_sim),
        stop_device: Some(stop_device),
        sim,
        device,
    }
}

impl Rig {
    /// Waits for the first event matching `select`, returning what it extracts.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut select: impl FnMut(SensorEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .expect("device task ended");
            if let Some(found) = select(event) {
                return found;
            }
        }
    }

    async fn next_frame(&mut self) -> CapturedFrame {
        self.wait_for("a frame", |event| match event {
            SensorEvent::Frame(frame) => Some(frame),
            _ => None,
        })
        .await
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop_device.take() {
            stop.send(()).unwrap();
        }
        tokio::time::timeout(PATIENCE, &mut self.device)
            .await
            .unwrap()
            .unwrap();
        if let Some(stop) = self.stop_sim.take() {
            stop.send(()).unwrap();
        }
        tokio::time::timeout(PATIENCE, &mut self.sim)
            .await
            .unwrap()
            .unwrap();
        assert!(
            std::fs::symlink_metadata(&self.link).is_err(),
            "simulator left its link behind"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_format_is_delivered_decoded() {
    for format in FrameFormat::ALL {
        let mut rig = start(RigOptions {
            capture: Some(CaptureRequest { format, frames: 0 }),
            ..RigOptions::default()
        });
        let info = rig
            .wait_for("connected", |event| match event {
                SensorEvent::Connected(info) => Some(info),
                _ => None,
            })
            .await;
        assert_eq!((info.width, info.height), (WIDTH as u16, HEIGHT as u16));
        assert_eq!(info.formats, FrameFormat::ALL.to_vec());
        let mut presence_seen = false;
        let frame = rig
            .wait_for("presence then a frame", |event| match event {
                SensorEvent::Presence {
                    present: true,
                    distance_mm: Some(85),
                    ..
                } => {
                    presence_seen = true;
                    None
                }
                SensorEvent::Frame(frame) => Some(frame),
                _ => None,
            })
            .await;
        assert!(
            presence_seen,
            "{format}: no presence report before the first frame"
        );
        assert_eq!(frame.format, format);
        assert_eq!(frame.image.as_gray().dimensions(), (WIDTH, HEIGHT));
        assert!(frame.decoded_at >= frame.received.instant);
        let (index, error) = which_image(frame.image.as_gray());
        assert_eq!(
            index + 1,
            frame.frame_number,
            "{format}: frame content does not match its number"
        );
        let tolerance = if format == FrameFormat::Jpeg { 12 } else { 0 };
        assert!(error <= tolerance, "{format}: pixel error {error}");
        // Frames keep coming, in order.
        let next = rig.next_frame().await;
        assert!(next.frame_number > frame.frame_number);
        rig.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_injected_fault_is_recovered_from() {
    let mut rig = start(RigOptions::default());
    rig.next_frame().await;
    // Garbage may be reported in several pieces (how much the decoder skips at once depends on how
    // the bytes arrive, which varies with load): what matters is that all of it is skipped.
    let mut garbage_skipped = 0usize;
    let faults: [(Fault, ErrorCheck); 3] = [
        (Fault::Garbage { bytes: 3000 }, |error| {
            matches!(error, ProtocolError::Garbage { .. })
        }),
        (Fault::BadCrc, |error| {
            matches!(error, ProtocolError::BadCrc { .. })
        }),
        (Fault::TruncatedFrame, |error| {
            matches!(error, ProtocolError::BadCrc { .. })
        }),
    ];
    for (fault, expected) in faults {
        let applied_before = rig.status.borrow().faults_applied;
        assert!(rig.faults.inject(fault));
        let is_garbage = matches!(fault, Fault::Garbage { .. });
        let error = rig
            .wait_for("the fault's protocol error", |event| match event {
                SensorEvent::Problem(DeviceError::Protocol(error)) if expected(&error) => {
                    if let ProtocolError::Garbage { skipped } = &error {
                        garbage_skipped += *skipped;
                    }
                    (!is_garbage || garbage_skipped >= 3000).then_some(error)
                }
                SensorEvent::Frame(frame) => {
                    // Frames sent before the fault may still arrive; the fault must not have gone out yet.
                    assert_eq!(frame.image.width(), WIDTH);
                    None
                }
                SensorEvent::Disconnected { error, .. } => {
                    panic!("{fault:?} caused a disconnect: {error}")
                }
                _ => None,
            })
            .await;
        assert!(
            rig.status.borrow().faults_applied > applied_before,
            "{fault:?} not applied ({error})"
        );
        // Recovered: whole, correct frames again.
        let frame = rig.next_frame().await;
        let (index, pixel_error) = which_image(frame.image.as_gray());
        assert_eq!(
            (index + 1, pixel_error),
            (frame.frame_number, 0),
            "after {fault:?}"
        );
    }
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unplug_and_replug_is_recovered_within_two_seconds() {
    let mut rig = start(RigOptions::default());
    rig.next_frame().await;
    assert_eq!(rig.status.borrow().plugged, 1);
    assert!(rig.faults.inject(Fault::Disconnect {
        down_for: Duration::from_millis(500)
    }));
    let error = rig
        .wait_for("a disconnect", |event| match event {
            SensorEvent::Disconnected { error, .. } => Some(error),
            _ => None,
        })
        .await;
    assert!(
        matches!(error, DeviceError::Io(_) | DeviceError::Closed),
        "{error}"
    );
    // While unplugged, the link is gone and opening fails. (The simulator closes the pty, which
    // the device task may notice, before it removes the link: allow it a moment.)
    let gone_by = Instant::now() + Duration::from_millis(400);
    while std::fs::symlink_metadata(&rig.link).is_ok() && Instant::now() < gone_by {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(std::fs::symlink_metadata(&rig.link).is_err());
    let mut status = rig.status.clone();
    tokio::time::timeout(
        PATIENCE,
        status.wait_for(|status| status.plugged == 2 && status.device.is_some()),
    )
    .await
    .unwrap()
    .unwrap();
    let replugged = Instant::now();
    let mut reconnected = false;
    let frame = rig
        .wait_for("a frame after replug", |event| match event {
            SensorEvent::Connected(_) => {
                reconnected = true;
                None
            }
            SensorEvent::Frame(frame) if reconnected => Some(frame),
            _ => None,
        })
        .await;
    let recovery = frame.received.instant.saturating_duration_since(replugged);
    assert!(
        recovery < Duration::from_secs(2),
        "recovery took {recovery:?}"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sensor_times_out_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("mute");
    // A pty nobody answers on.
    let pty = Pty::open().unwrap();
    let _link = palmgate_sensor::sim::Link::create(&link, pty.slave_path()).unwrap();
    let mut config = device_config(&link, &RigOptions::default());
    config.request_timeout = Duration::from_millis(200);
    let (event_sender, mut events) = mpsc::channel(16);
    let (_commands, command_receiver) = mpsc::channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(device::run(config, event_sender, command_receiver, async {
        let _ = stopped.await;
    }));
    for _ in 0..2 {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap();
        match event {
            SensorEvent::Disconnected {
                error: DeviceError::Timeout { request, after },
                retry_in,
            } => {
                assert_eq!((request, after), ("get info", Duration::from_millis(200)));
                assert!(retry_in <= Duration::from_millis(200));
            }
            other => panic!("expected a timeout, got {other:?}"),
        }
    }
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    drop(pty);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_port_is_retried_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let config = device_config(&dir.path().join("absent"), &RigOptions::default());
    let (event_sender, mut events) = mpsc::channel(16);
    let (_commands, command_receiver) = mpsc::channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(device::run(config, event_sender, command_receiver, async {
        let _ = stopped.await;
    }));
    let mut delays = Vec::new();
    for _ in 0..4 {
        match tokio::time::timeout(PATIENCE, events.recv())
            .await
            .unwrap()
            .unwrap()
        {
            SensorEvent::Disconnected {
                error: DeviceError::Open { .. },
                retry_in,
            } => delays.push(retry_in.as_millis()),
            other => panic!("expected an open failure, got {other:?}"),
        }
    }
    assert_eq!(delays, vec![20, 40, 80, 160]);
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_limit_frames_and_sensor_errors_are_problems_not_disconnects() {
    // GRAY8 frames are 64×48 = 3072 bytes; allow only 1000.
    let mut rig = start(RigOptions {
        max_frame_bytes: 1000,
        ..RigOptions::default()
    });
    let (length, limit) = rig
        .wait_for("an over-limit frame", |event| match event {
            SensorEvent::Problem(DeviceError::Protocol(ProtocolError::TooLarge {
                length,
                limit,
            })) => Some((length, limit)),
            SensorEvent::Frame(_) => panic!("an over-limit frame was delivered"),
            _ => None,
        })
        .await;
    assert_eq!((length, limit), ((WIDTH * HEIGHT) as usize + 9, 1000));
    // A format the sensor does not offer is refused by the sensor, and the connection stays up.
    rig.stop().await;

    let mut rig = start(RigOptions {
        sim_formats: vec![FrameFormat::Gray8],
        capture: None,
        ..RigOptions::default()
    });
    rig.wait_for("connected", |event| {
        matches!(event, SensorEvent::Connected(_)).then_some(())
    })
    .await;
    let jpeg = CaptureRequest {
        format: FrameFormat::Jpeg,
        frames: 0,
    };
    rig.commands
        .send(DeviceCommand::StartCapture(jpeg))
        .await
        .unwrap();
    let (request, code) = rig
        .wait_for("the sensor's refusal", |event| match event {
            SensorEvent::Problem(DeviceError::Sensor { request, code, .. }) => {
                Some((request, code))
            }
            SensorEvent::Disconnected { error, .. } => panic!("disconnected: {error}"),
            _ => None,
        })
        .await;
    assert_eq!(
        (request, code),
        (Some("start capture"), SensorErrorCode::UnsupportedFormat)
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_start_and_stop_capture() {
    let mut rig = start(RigOptions {
        capture: None,
        ..RigOptions::default()
    });
    rig.wait_for("connected", |event| {
        matches!(event, SensorEvent::Connected(_)).then_some(())
    })
    .await;
    let three = CaptureRequest {
        format: FrameFormat::Png,
        frames: 3,
    };
    rig.commands
        .send(DeviceCommand::SetIllumination(60))
        .await
        .unwrap();
    rig.commands
        .send(DeviceCommand::StartCapture(three))
        .await
        .unwrap();
    let mut frames = Vec::new();
    rig.wait_for("three frames, then absence", |event| match event {
        SensorEvent::Frame(frame) => {
            frames.push(frame.frame_number);
            None
        }
        SensorEvent::Presence { present: false, .. } => Some(()),
        SensorEvent::Problem(error) => panic!("{error}"),
        _ => None,
    })
    .await;
    assert_eq!(frames.len(), 3, "{frames:?}");
    let sent = rig.status.borrow().frames_sent;
    rig.commands
        .send(DeviceCommand::StartCapture(CaptureRequest {
            frames: 0,
            ..three
        }))
        .await
        .unwrap();
    rig.next_frame().await;
    rig.commands.send(DeviceCommand::StopCapture).await.unwrap();
    rig.wait_for("absence", |event| {
        matches!(event, SensorEvent::Presence { present: false, .. }).then_some(())
    })
    .await;
    let stopped_at = rig.status.borrow().frames_sent;
    assert!(stopped_at > sent);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        rig.status.borrow().frames_sent,
        stopped_at,
        "frames still sent after stop"
    );
    rig.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_answers_requests_and_refuses_bad_ones() {
    use futures::{SinkExt, StreamExt};
    use palmgate_sensor::codec::{Envelope, HostCodec, HostMessage, SensorMessage};
    use tokio_serial::SerialPortBuilderExt;

    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("sensor");
    let (simulator, _faults) = Simulator::new(SimulatorConfig::new(&link), (0..2).map(test_image));
    let mut status = simulator.status();
    let (stop, stopped) = oneshot::channel::<()>();
    let sim = tokio::spawn(simulator.run(async {
        let _ = stopped.await;
    }));
    tokio::time::timeout(PATIENCE, status.wait_for(|status| status.device.is_some()))
        .await
        .unwrap()
        .unwrap();
    let port = tokio_serial::new(link.to_str().unwrap(), 115_200)
        .open_native_async()
        .unwrap();
    let mut framed = tokio_util::codec::Framed::new(port, HostCodec::default());
    let mut ask = async |seq: u16, message: HostMessage| {
        framed.send(Envelope::new(seq, message)).await.unwrap();
        tokio::time::timeout(PATIENCE, framed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .unwrap()
    };

    let info = ask(7, HostMessage::GetInfo).await;
    assert!(
        matches!(
            info,
            Envelope {
                seq: 7,
                message: SensorMessage::Info(_)
            }
        ),
        "{info:?}"
    );
    let pong = ask(8, HostMessage::Ping { token: 99 }).await;
    assert_eq!(pong, Envelope::new(8, SensorMessage::Pong { token: 99 }));
    // 101 % is out of range: the sensor refuses the payload.
    let refusal = ask(9, HostMessage::SetIllumination { level: 101 }).await;
    assert!(
        matches!(
            &refusal,
            Envelope {
                seq: 0,
                message: SensorMessage::Error {
                    code: SensorErrorCode::BadRequest,
                    ..
                }
            }
        ),
        "{refusal:?}"
    );
    // A source of two images: two frames, then the hand "leaves".
    let ack = ask(
        10,
        HostMessage::StartCapture {
            format: FrameFormat::Gray8,
            frames: 0,
        },
    )
    .await;
    assert_eq!(ack, Envelope::new(10, SensorMessage::Ack));
    let mut frames = 0;
    loop {
        let next = tokio::time::timeout(PATIENCE, framed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match next.unwrap().message {
            SensorMessage::Frame { .. } => frames += 1,
            SensorMessage::Presence { present: true, .. } => assert_eq!(frames, 0),
            SensorMessage::Presence { present: false, .. } => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(frames, 2);
    stop.send(()).unwrap();
    tokio::time::timeout(PATIENCE, sim)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
