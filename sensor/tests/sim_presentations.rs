//! The simulator's hand that is presented and lifted ([`Presentation`]), read as a host reads it:
//! the protocol over a real pseudo-terminal opened with tokio-serial.
#![allow(clippy::unwrap_used)] // helpers of tests unwrap like the tests themselves

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use palmgate_sensor::codec::{Envelope, FrameFormat, HostCodec, HostMessage, SensorMessage};
use palmgate_sensor::image::ImageBytes;
use palmgate_sensor::sim::{
    ImageSource, Presentation, Simulator, SimulatorConfig, SimulatorStatus,
};
use tokio::sync::{oneshot, watch};
use tokio_serial::{SerialPortBuilderExt, SerialStream};
use tokio_util::codec::Framed;

mod common;
use common::{HEIGHT, PATIENCE, WIDTH, test_image};

fn cycle(held_ms: u64, away_ms: u64) -> Presentation {
    Presentation {
        held: Duration::from_millis(held_ms),
        away: Duration::from_millis(away_ms),
    }
}

/// What the host reads, reduced to what these tests look at.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Ack(u16),
    Present(Option<u16>),
    Absent,
    Frame(FrameFormat, ImageBytes),
}

/// A running simulator and a host on its serial port.
struct Host {
    _dir: tempfile::TempDir,
    line: Framed<SerialStream, HostCodec>,
    status: watch::Receiver<SimulatorStatus>,
    stop: oneshot::Sender<()>,
    sim: tokio::task::JoinHandle<()>,
    seq: u16,
}

impl Host {
    async fn start(
        presentation: Option<Presentation>,
        fps: f64,
        source: impl ImageSource + 'static,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let link: PathBuf = dir.path().join("palm-sensor");
        let mut config = SimulatorConfig::new(&link);
        config.fps = fps;
        config.width = WIDTH as u16;
        config.height = HEIGHT as u16;
        config.presentation = presentation;
        // The fault injector is dropped at once: the simulator must carry on without it.
        let (simulator, _) = Simulator::new(config, source);
        let mut status = simulator.status();
        let (stop, sim) = common::spawn(simulator);
        tokio::time::timeout(PATIENCE, status.wait_for(|status| status.device.is_some()))
            .await
            .unwrap()
            .unwrap();
        let port = tokio_serial::new(link.to_str().unwrap(), 115_200)
            .open_native_async()
            .unwrap();
        Self {
            _dir: dir,
            line: Framed::new(port, HostCodec::default()),
            status,
            stop,
            sim,
            seq: 0,
        }
    }

    /// Sends a request; returns its sequence number.
    async fn send(&mut self, message: HostMessage) -> u16 {
        self.seq += 1;
        self.line
            .send(Envelope::new(self.seq, message))
            .await
            .unwrap();
        self.seq
    }

    /// The next message from the sensor, and when it was read.
    async fn next(&mut self) -> (Instant, Seen) {
        let envelope = tokio::time::timeout(PATIENCE, self.line.next())
            .await
            .expect("the sensor went quiet")
            .expect("the line closed")
            .expect("the line failed")
            .expect("a message that does not decode");
        let seen = match envelope.message {
            SensorMessage::Ack => Seen::Ack(envelope.seq),
            SensorMessage::Presence {
                present: true,
                distance_mm,
            } => Seen::Present(distance_mm),
            SensorMessage::Presence { present: false, .. } => Seen::Absent,
            SensorMessage::Frame {
                format,
                width,
                height,
                data,
                ..
            } => {
                assert_eq!((u32::from(width), u32::from(height)), (WIDTH, HEIGHT));
                Seen::Frame(format, data)
            }
            other => panic!("unexpected {other:?}"),
        };
        (Instant::now(), seen)
    }

    /// Sends a request and reads up to its `Ack`; returns what came before it (frames already on
    /// their way).
    async fn request(&mut self, message: HostMessage) -> Vec<Seen> {
        let seq = self.send(message).await;
        let mut before = Vec::new();
        loop {
            match self.next().await.1 {
                Seen::Ack(acked) if acked == seq => return before,
                other => before.push(other),
            }
        }
    }

    async fn start_capture(&mut self, format: FrameFormat, frames: u16) {
        let before = self
            .request(HostMessage::StartCapture { format, frames })
            .await;
        assert_eq!(before, Vec::new(), "messages before the start was acked");
    }

    /// Stops the capture; returns what the sensor sent from the `StopCapture` on, once the line
    /// has been quiet for a while (frames on their way before the `Ack` are left out).
    async fn stop_capture(&mut self) -> Vec<Seen> {
        self.request(HostMessage::StopCapture).await;
        let mut after = Vec::new();
        while let Ok(Some(item)) =
            tokio::time::timeout(Duration::from_millis(150), self.line.next()).await
        {
            after.push(item.unwrap().unwrap().message);
        }
        after
            .into_iter()
            .map(|message| match message {
                SensorMessage::Presence { present: false, .. } => Seen::Absent,
                other => panic!("{other:?} after the stop"),
            })
            .collect()
    }

    async fn shut_down(self) {
        drop(self.line);
        self.stop.send(()).unwrap();
        tokio::time::timeout(PATIENCE, self.sim)
            .await
            .unwrap()
            .unwrap();
    }
}

fn gray8(n: u32) -> Seen {
    Seen::Frame(
        FrameFormat::Gray8,
        ImageBytes::from(test_image(n).into_raw()),
    )
}

/// One presentation as the host saw it.
#[derive(Debug)]
struct Shown {
    arrived: Instant,
    left: Instant,
    frames: Vec<Seen>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_that_comes_and_goes_is_framed_only_while_present() {
    let mut host = Host::start(Some(cycle(300, 200)), 20.0, (0..).map(test_image)).await;
    host.start_capture(FrameFormat::Gray8, 0).await;

    // Read three whole presentations: present → frames → absent, three times.
    let mut shown: Vec<Shown> = Vec::new();
    let mut current: Option<Shown> = None;
    while shown.len() < 3 {
        let (at, seen) = host.next().await;
        match seen {
            Seen::Present(distance) => {
                assert_eq!(distance, Some(85));
                assert!(current.is_none(), "present reported twice in a row");
                current = Some(Shown {
                    arrived: at,
                    left: at,
                    frames: Vec::new(),
                });
            }
            Seen::Frame(..) => current
                .as_mut()
                .unwrap_or_else(|| panic!("a frame while the hand is away ({} shown)", shown.len()))
                .frames
                .push(seen),
            Seen::Absent => {
                let mut done = current.take().expect("absent reported twice in a row");
                done.left = at;
                shown.push(done);
            }
            Seen::Ack(seq) => panic!("unexpected ack {seq}"),
        }
    }
    let after = host.stop_capture().await;
    assert!(
        after.len() <= 1,
        "one absence at most after the stop: {after:?}"
    );
    let status = host.status.borrow().clone();
    assert!((3..=4).contains(&status.presentations), "{status:?}");

    for (index, presentation) in shown.iter().enumerate() {
        // Held 300 ms at 20 fps: 6 frames at most (one per 50 ms after the arrival); a loaded
        // machine may deliver fewer, but never none.
        let count = presentation.frames.len();
        assert!(
            (1..=6).contains(&count),
            "presentation {index}: {count} frames"
        );
        // One image per presentation, the source's next one, repeated byte for byte.
        let expected = gray8(index as u32);
        for frame in &presentation.frames {
            assert_eq!(frame, &expected, "presentation {index}");
        }
        assert!(presentation.left >= presentation.arrived);
    }
    // The hand stays away about 200 ms between presentations (half of it, to allow for a reader
    // that falls behind), and the cycle is 500 ms.
    for pair in shown.windows(2) {
        let away = pair[1].arrived.duration_since(pair[0].left);
        assert!(away >= Duration::from_millis(100), "away only {away:?}");
    }
    let two_cycles = shown[2].arrived.duration_since(shown[0].arrived);
    assert!(
        two_cycles >= Duration::from_millis(900),
        "two cycles in {two_cycles:?}"
    );
    host.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captures_report_the_hand_as_it_is_on_its_own_clock() {
    let mut host = Host::start(Some(cycle(1_500, 1_000)), 20.0, (0..).map(test_image)).await;

    // The first capture starts the hand's clock: present at once, then frames of image 0.
    host.start_capture(FrameFormat::Jpeg, 0).await;
    assert_eq!(host.next().await.1, Seen::Present(Some(85)));
    let (_, first) = host.next().await;
    assert!(
        matches!(first, Seen::Frame(FrameFormat::Jpeg, _)),
        "{first:?}"
    );
    assert_eq!(host.stop_capture().await, vec![Seen::Absent]);

    // Still the same presentation: a counted capture reports the hand at once and repeats the
    // same image (even JPEG frames are byte-identical), then ends as counted captures do.
    host.start_capture(FrameFormat::Jpeg, 2).await;
    assert_eq!(host.next().await.1, Seen::Present(Some(85)));
    assert_eq!(host.next().await.1, first);
    assert_eq!(host.next().await.1, first);
    assert_eq!(host.next().await.1, Seen::Absent);
    assert_eq!(host.status.borrow().presentations, 1);

    // Wait for the lift (1.5 s after the first start, whatever the captures did meanwhile).
    host.start_capture(FrameFormat::Jpeg, 0).await;
    assert_eq!(host.next().await.1, Seen::Present(Some(85)));
    loop {
        match host.next().await.1 {
            Seen::Absent => break,
            frame => assert_eq!(frame, first),
        }
    }
    // Stopped while the hand is away: nothing more to report.
    assert_eq!(host.stop_capture().await, Vec::new());

    // A capture started while the hand is away says so at once, then waits for it.
    host.start_capture(FrameFormat::Jpeg, 0).await;
    assert_eq!(host.next().await.1, Seen::Absent);
    assert_eq!(host.next().await.1, Seen::Present(Some(85)));
    let (_, second) = host.next().await;
    assert!(
        matches!(second, Seen::Frame(FrameFormat::Jpeg, _)),
        "{second:?}"
    );
    assert_ne!(second, first, "a new presentation must show a new image");
    assert_eq!(host.next().await.1, second);
    assert_eq!(host.status.borrow().presentations, 2);
    assert_eq!(host.stop_capture().await, vec![Seen::Absent]);
    host.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_runs_out_ends_the_capture_at_the_next_arrival() {
    // One image only: the first presentation has it, the second has none.
    let mut host = Host::start(Some(cycle(200, 100)), 40.0, (0..1).map(test_image)).await;
    host.start_capture(FrameFormat::Gray8, 0).await;
    assert_eq!(host.next().await.1, Seen::Present(Some(85)));
    loop {
        match host.next().await.1 {
            Seen::Absent => break,
            frame => assert_eq!(frame, gray8(0)),
        }
    }
    // At the next arrival there is no image: the capture ends without claiming a hand, and the
    // sensor falls silent (its last word was "absent").
    let quiet = tokio::time::timeout(Duration::from_millis(600), host.line.next()).await;
    assert!(quiet.is_err(), "expected silence, got {quiet:?}");
    assert_eq!(host.status.borrow().presentations, 1);
    // A new capture says "absent" at once and then nothing.
    host.start_capture(FrameFormat::Gray8, 0).await;
    assert_eq!(host.next().await.1, Seen::Absent);
    assert_eq!(host.stop_capture().await, Vec::new());
    host.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_cycle_the_hand_stays_and_every_frame_is_a_new_image() {
    let mut host = Host::start(None, 40.0, (0..).map(test_image)).await;
    host.start_capture(FrameFormat::Gray8, 0).await;
    assert_eq!(host.next().await.1, Seen::Present(Some(85)));
    for n in 0..12 {
        assert_eq!(host.next().await.1, gray8(n), "frame {n}");
    }
    assert_eq!(host.stop_capture().await, vec![Seen::Absent]);
    assert_eq!(host.status.borrow().presentations, 0);
    host.shut_down().await;
}
