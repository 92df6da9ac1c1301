//! `palmgate sensor …`: simulate a palm sensor on a pseudo-terminal, or talk to one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use palmgate_matcher::pad::model::{Presented, render_burst};
use palmgate_sensor::codec::{Band, FrameFormat, SensorInfo};
use palmgate_sensor::device::{
    self, BurstRequest, CaptureRequest, CapturedFrame, DeviceCommand, DeviceConfig, DeviceError,
    SensorEvent,
};
use palmgate_sensor::sim::{FolderSource, ImageSource, Presentation, Simulator, SimulatorConfig};
use tokio::sync::{mpsc, oneshot};

/// `palmgate sensor` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SensorCommand {
    /// Simulate a palm sensor on a pseudo-terminal linked at PATH (until Ctrl-C or SIGTERM).
    Simulate(SimulateArgs),
    /// Print a sensor's model, firmware, resolution and formats.
    Info(InfoArgs),
    /// Capture frames from a sensor and save the last one as a PNG file; with --burst, save
    /// labelled presentation bursts for `palmgate pad eval`.
    Capture(CaptureArgs),
}

/// Arguments of `palmgate sensor simulate`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("images_from").required(true).args(["images", "synthetic"])))]
pub struct SimulateArgs {
    /// Symlink to create to the pseudo-terminal's device side (the "serial port" to open).
    #[arg(long, value_name = "PATH")]
    pub link: PathBuf,
    /// Serve the PNG and JPEG images of this folder, in name order, in a loop.
    #[arg(long, value_name = "DIR")]
    pub images: Option<PathBuf>,
    /// Serve synthetic whole-hand images of N identities (identity 0, 1, …, N-1, then the next
    /// capture of each).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub synthetic: Option<u64>,
    /// Offer only this frame format (gray8, png or jpeg); all three by default.
    #[arg(long)]
    pub format: Option<FrameFormat>,
    /// Frames per second while capturing.
    #[arg(long, default_value_t = 10.0, value_parser = parse_fps)]
    pub fps: f64,
    /// How long the simulated hand stays in front of the sensor per presentation, in
    /// milliseconds (frames of one image), before it is lifted for --hand-away-ms. A gate takes
    /// one decision per presentation: the hand must come and go for someone to pass again.
    #[arg(long, value_name = "MS", default_value_t = 2_000, value_parser = parse_hand_ms)]
    pub hand_held_ms: u64,
    /// How long the simulated hand stays lifted between presentations, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 500, value_parser = parse_hand_ms)]
    pub hand_away_ms: u64,
    /// No presentations: the hand is there whenever a capture runs and every frame is a new
    /// image (for throughput tests; a gate then takes one decision and waits for a lift).
    #[arg(long, conflicts_with_all = ["hand_held_ms", "hand_away_ms"])]
    pub hand_always_present: bool,
    /// What the synthetic hands are: `live` or an attack species (print-visible, print-nir,
    /// screen-replay, mould), rendered per band by the physical model of docs/pad.md; the
    /// sensor then speaks protocol 1.1 (bands and bursts). Needs --synthetic. Without it the
    /// images have no model of light, and the sensor is a protocol 1.0 one.
    #[arg(long, value_parser = crate::cli::pad::parse_presented, requires = "synthetic")]
    pub species: Option<Presented>,
    /// With --species: behave as a protocol 1.0 sensor all the same (one light, no bands, no
    /// bursts).
    #[arg(long)]
    pub single_band: bool,
}

/// Longest time a simulated hand may stay, or stay away: one hour.
const MAX_HAND_MS: u64 = 3_600_000;

fn parse_hand_ms(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(ms) if (1..=MAX_HAND_MS).contains(&ms) => Ok(ms),
        _ => Err(format!(
            "{text:?} is not a whole number of milliseconds between 1 and {MAX_HAND_MS}"
        )),
    }
}

/// Where the sensor is.
#[derive(Debug, Clone, clap::Args)]
pub struct PortArgs {
    /// Serial device of the sensor (or a simulator's link).
    #[arg(long, value_name = "PATH")]
    pub port: PathBuf,
    /// Line speed.
    #[arg(long, default_value_t = 921_600)]
    pub baud: u32,
    /// Give up after this many seconds without the expected answer (the port is retried meanwhile).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub wait: f64,
}

/// Arguments of `palmgate sensor info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub port: PortArgs,
}

/// Arguments of `palmgate sensor capture`.
#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub port: PortArgs,
    /// PNG file to write (the last frame captured); with --burst, the folder to collect
    /// presentations in (`bona-fide/` and `attacks/<species>/` below it).
    #[arg(long, value_name = "FILE.png|DIR")]
    pub out: PathBuf,
    /// Capture presentation bursts (protocol 1.1: every band the sensor has, --rounds times) for
    /// PAD evaluation; with a 1.0 sensor, single frames.
    #[arg(long, requires = "label")]
    pub burst: bool,
    /// What is presented: `bona-fide` or `attack:<species>` (with --burst).
    #[arg(long, value_parser = parse_label, requires = "burst")]
    pub label: Option<Label>,
    /// Presentations to capture (with --burst); present the hand (or the instrument) anew for
    /// each one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub presentations: u32,
    /// Times a burst cycles through the sensor's bands.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub rounds: u8,
    /// Number of frames to capture.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub frames: u16,
    /// Frame format to ask for (the sensor's first format is used if it does not offer this one).
    #[arg(long, default_value_t = FrameFormat::Jpeg)]
    pub format: FrameFormat,
}

/// What a captured presentation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// A live hand.
    BonaFide,
    /// An attack instrument of this species.
    Attack(String),
}

impl Label {
    /// The folder below `--out` where its presentations go.
    fn folder(&self) -> PathBuf {
        match self {
            Self::BonaFide => PathBuf::from("bona-fide"),
            Self::Attack(species) => Path::new("attacks").join(species),
        }
    }
}

fn parse_label(text: &str) -> Result<Label, String> {
    if text == "bona-fide" {
        return Ok(Label::BonaFide);
    }
    match text.strip_prefix("attack:") {
        Some(species)
            if !species.is_empty()
                && species
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Ok(Label::Attack(species.to_owned()))
        }
        _ => Err(format!(
            "{text:?}: expected bona-fide or attack:<species> (letters, digits, - and _)"
        )),
    }
}

fn parse_fps(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(fps) if (0.01..=1000.0).contains(&fps) => Ok(fps),
        _ => Err(format!(
            "{text:?} is not a frame rate between 0.01 and 1000"
        )),
    }
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds <= 86_400.0 => Ok(seconds),
        _ => Err(format!(
            "{text:?} is not a number of seconds between 0 and 86400"
        )),
    }
}

/// Runs a `palmgate sensor` subcommand.
pub fn run(command: SensorCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        match command {
            SensorCommand::Simulate(args) => simulate(args).await,
            SensorCommand::Info(args) => info(args).await,
            SensorCommand::Capture(args) => capture(args).await,
        }
    })
}

async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let period = Duration::from_secs_f64(1.0 / args.fps);
    let source: Box<dyn ImageSource> = match (&args.images, args.synthetic) {
        (Some(dir), _) => Box::new(
            FolderSource::open(dir).with_context(|| format!("--images {}", dir.display()))?,
        ),
        (None, Some(identities)) => match args.species {
            None => Box::new((0u64..).map(move |index| {
                palmgate_matcher::synth::hand_image(index % identities, index / identities)
            })),
            Some(presented) => Box::new(ModelledSource {
                identities,
                presented,
                period,
                next: 0,
            }),
        },
        (None, None) => bail!("give --images DIR or --synthetic N"),
    };
    let mut config = SimulatorConfig::new(&args.link);
    // Bands only where the images model light: a folder of photographs (or the plain synthetic
    // hands) shows the same image under every band, which is what a flat print looks like, and
    // a gate's presentation attack detection would rightly refuse it.
    if args.single_band || args.species.is_none() {
        config.bands = None;
    }
    if let Some(format) = args.format {
        config.formats = vec![format];
    }
    config.fps = args.fps;
    config.presentation = (!args.hand_always_present).then(|| Presentation {
        held: Duration::from_millis(args.hand_held_ms),
        away: Duration::from_millis(args.hand_away_ms),
    });
    let hand = match config.presentation {
        Some(cycle) => format!(
            ", hand held {} ms / away {} ms",
            cycle.held.as_millis(),
            cycle.away.as_millis()
        ),
        None => String::new(),
    };
    let offered: Vec<String> = config.formats.iter().map(ToString::to_string).collect();
    let (simulator, _faults) = Simulator::new(config, BoxedSource(source));

    let mut status = simulator.status();
    let link = args.link.clone();
    let fps = args.fps;
    tokio::spawn(async move {
        let mut shown = None;
        while status.changed().await.is_ok() {
            let device = status.borrow_and_update().device.clone();
            if device == shown {
                continue;
            }
            shown.clone_from(&device);
            if let Some(device) = device {
                println!(
                    "sensor simulator: {} -> {} ({}, {fps} fps{hand}); Ctrl-C to stop",
                    link.display(),
                    device.display(),
                    offered.join(", ")
                );
            }
        }
    });
    simulator
        .run(stop_signal())
        .await
        .with_context(|| format!("sensor simulator on {}", args.link.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// An owned boxed source (the simulator takes `impl ImageSource`).
struct BoxedSource(Box<dyn ImageSource>);

impl ImageSource for BoxedSource {
    fn next_image(&mut self) -> Option<image::GrayImage> {
        self.0.next_image()
    }

    fn next_burst(&mut self, bands: &[Band]) -> Option<Vec<image::GrayImage>> {
        self.0.next_burst(bands)
    }
}

/// Synthetic hands (or an attack species made from them) through the physical model of
/// docs/pad.md: identity 0, 1, …, N-1, then the next capture of each.
struct ModelledSource {
    identities: u64,
    presented: Presented,
    period: Duration,
    next: u64,
}

impl ModelledSource {
    fn render(&mut self, bands: &[palmgate_matcher::pad::Band]) -> Vec<image::GrayImage> {
        let (identity, capture) = (self.next % self.identities, self.next / self.identities);
        self.next += 1;
        render_burst(identity, capture, self.presented, bands, self.period)
    }
}

impl ImageSource for ModelledSource {
    /// A 1.0 capture: the frame a one-light (NIR 850) sensor sees.
    fn next_image(&mut self) -> Option<image::GrayImage> {
        self.render(&[palmgate_matcher::pad::Band::Nir850]).pop()
    }

    fn next_burst(&mut self, bands: &[Band]) -> Option<Vec<image::GrayImage>> {
        let bands: Vec<_> = bands.iter().map(|&band| pad_band(band)).collect();
        Some(self.render(&bands))
    }
}

/// The PAD stage's name for a sensor band.
pub fn pad_band(band: Band) -> palmgate_matcher::pad::Band {
    use palmgate_matcher::pad::Band as Light;
    match band {
        Band::Ambient => Light::Ambient,
        Band::Nir850 => Light::Nir850,
        Band::Nir940 => Light::Nir940,
        Band::Visible => Light::Visible,
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

/// A device task on `port`; returns its events and the sender that stops it.
fn start_device(
    port: &PortArgs,
    capture: Option<CaptureRequest>,
) -> (
    mpsc::Receiver<SensorEvent>,
    mpsc::Sender<DeviceCommand>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let mut config = DeviceConfig::new(&port.port);
    config.baud = port.baud;
    config.capture = capture;
    let (events_sender, events) = mpsc::channel(16);
    let (commands, command_receiver) = mpsc::channel(1);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(device::run(
        config,
        events_sender,
        command_receiver,
        async {
            let _ = stopped.await;
        },
    ));
    (events, commands, stop, task)
}

async fn stop_device(stop: oneshot::Sender<()>, task: tokio::task::JoinHandle<()>) {
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
}

/// Waits for events until `handle` returns a result, the deadline passes or the task ends.
async fn follow<T>(
    events: &mut mpsc::Receiver<SensorEvent>,
    port: &PortArgs,
    mut handle: impl FnMut(SensorEvent) -> Option<anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(port.wait);
    let mut last_error: Option<DeviceError> = None;
    loop {
        let event = match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => bail!("the device task stopped"),
            Err(_) => {
                let waited = format!(
                    "no answer from {} within {} s",
                    port.port.display(),
                    port.wait
                );
                return Err(match last_error {
                    Some(error) => anyhow::Error::new(error).context(waited),
                    None => anyhow::anyhow!(waited),
                });
            }
        };
        match event {
            SensorEvent::Disconnected { error, .. } => last_error = Some(error),
            SensorEvent::Problem(error) => {
                eprintln!("palmgate: sensor: {:#}", anyhow::Error::new(error))
            }
            other => {
                if let Some(result) = handle(other) {
                    return result;
                }
            }
        }
    }
}

async fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let (mut events, _commands, stop, task) = start_device(&args.port, None);
    let result = follow(&mut events, &args.port, |event| match event {
        SensorEvent::Connected(info) => Some(Ok(info)),
        _ => None,
    })
    .await;
    stop_device(stop, task).await;
    print_info(&result?);
    Ok(ExitCode::SUCCESS)
}

fn print_info(info: &SensorInfo) {
    let formats: Vec<String> = info.formats.iter().map(ToString::to_string).collect();
    println!("model:      {}", info.model);
    println!("firmware:   {}", info.firmware);
    println!("protocol:   {}", info.protocol_version);
    println!("resolution: {}x{}", info.width, info.height);
    println!("formats:    {}", formats.join(", "));
    println!("max fps:    {}", info.max_fps);
}

async fn capture(args: CaptureArgs) -> anyhow::Result<ExitCode> {
    if let Some(label) = &args.label {
        return capture_bursts(&args, label).await;
    }
    let request = CaptureRequest {
        format: args.format,
        frames: args.frames,
    };
    let (mut events, _commands, stop, task) = start_device(&args.port, Some(request));
    let wanted = usize::from(args.frames);
    let mut captured = 0usize;
    let mut last: Option<CapturedFrame> = None;
    let result = follow(&mut events, &args.port, |event| {
        if let SensorEvent::Frame(frame) = event {
            captured += 1;
            println!(
                "frame {}: {}x{} {} ({} bytes)",
                frame.frame_number,
                frame.image.width(),
                frame.image.height(),
                frame.format,
                frame.encoded_bytes
            );
            last = Some(frame);
            if captured >= wanted {
                return Some(Ok(()));
            }
        }
        None
    })
    .await;
    stop_device(stop, task).await;
    result?;
    let frame = last.context("no frame captured")?;
    save_png(&frame, &args.out)?;
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn save_png(frame: &CapturedFrame, out: &Path) -> anyhow::Result<()> {
    frame
        .image
        .as_gray()
        .save_with_format(out, image::ImageFormat::Png)
        .with_context(|| format!("cannot write {}", out.display()))
}

/// `palmgate sensor capture --burst`: labelled presentations for `palmgate pad eval`.
async fn capture_bursts(args: &CaptureArgs, label: &Label) -> anyhow::Result<ExitCode> {
    let (mut events, commands, stop, task) = start_device(&args.port, None);
    let result = capture_burst_loop(args, label, &mut events, &commands).await;
    stop_device(stop, task).await;
    result
}

async fn capture_burst_loop(
    args: &CaptureArgs,
    label: &Label,
    events: &mut mpsc::Receiver<SensorEvent>,
    commands: &mpsc::Sender<DeviceCommand>,
) -> anyhow::Result<ExitCode> {
    let mut bands = follow(events, &args.port, |event| match event {
        SensorEvent::Bands(bands) => Some(Ok(bands)),
        _ => None,
    })
    .await?;
    let folder = args.out.join(label.folder());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    if bands.is_empty() {
        println!("the sensor speaks protocol 1.0 (one light, no bursts): capturing single frames");
    } else {
        let names: Vec<&str> = bands.iter().map(|band| band.name()).collect();
        println!("sensor bands: {}", names.join(", "));
    }
    for presentation in 0..args.presentations {
        if args.presentations > 1 {
            println!("present {} of {}", presentation + 1, args.presentations);
        }
        let frames = if bands.is_empty() {
            take_single_frame(args, events, commands).await?
        } else {
            take_burst(args, events, commands, &mut bands).await?
        };
        let dir = folder.join(format!("{stamp}-{presentation:04}"));
        let borrowed: Vec<_> = frames
            .iter()
            .map(|(band, time, image)| (*band, *time, image.as_gray()))
            .collect();
        crate::cli::pad::write_burst(&dir, &borrowed)?;
        println!("wrote {} ({} frames)", dir.display(), frames.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// Bursts asked for in a row when the sensor reconnects during each, before giving up.
const BURST_ATTEMPTS: u32 = 3;

/// One burst of a 1.1 sensor, under `bands`. A burst does not survive a reconnection (the sensor
/// forgets it and the device task does not replay it): when the sensor announces its bands again
/// before the burst is complete, the frames so far are dropped and the burst is asked for again,
/// under the bands announced.
async fn take_burst(
    args: &CaptureArgs,
    events: &mut mpsc::Receiver<SensorEvent>,
    commands: &mpsc::Sender<DeviceCommand>,
    bands: &mut Vec<Band>,
) -> anyhow::Result<Vec<PresentationFrame>> {
    for _ in 0..BURST_ATTEMPTS {
        let request = BurstRequest::new(args.format, bands, args.rounds);
        let expected = request.sequence().len();
        commands
            .send(DeviceCommand::Burst(request))
            .await
            .context("the device task stopped")?;
        let mut frames = Vec::with_capacity(expected);
        let reconnected = follow(events, &args.port, |event| match event {
            SensorEvent::BurstFrame(frame) => {
                frames.push((
                    Some(pad_band(frame.band)),
                    frame.exposed_after,
                    frame.frame.image,
                ));
                (frames.len() == expected).then_some(Ok(None))
            }
            SensorEvent::Bands(announced) => Some(Ok(Some(announced))),
            _ => None,
        })
        .await?;
        let Some(announced) = reconnected else {
            return Ok(frames);
        };
        eprintln!(
            "palmgate: the sensor reconnected during the burst ({} of {expected} frames): asking again",
            frames.len()
        );
        if announced.is_empty() {
            bail!("the sensor came back as a protocol 1.0 sensor (no bands) during a burst");
        }
        *bands = announced;
    }
    bail!("the sensor reconnected during {BURST_ATTEMPTS} bursts in a row: giving up")
}

/// A frame of a presentation on disk: its light (when known), its time and the image.
type PresentationFrame = (
    Option<palmgate_matcher::pad::Band>,
    Duration,
    palmgate_sensor::image::PalmImage,
);

/// One frame of a 1.0 sensor, as a one-frame presentation of unknown light.
async fn take_single_frame(
    args: &CaptureArgs,
    events: &mut mpsc::Receiver<SensorEvent>,
    commands: &mpsc::Sender<DeviceCommand>,
) -> anyhow::Result<Vec<PresentationFrame>> {
    let request = CaptureRequest {
        format: args.format,
        frames: 1,
    };
    commands
        .send(DeviceCommand::StartCapture(request))
        .await
        .context("the device task stopped")?;
    let frame = follow(events, &args.port, |event| match event {
        SensorEvent::Frame(frame) => Some(Ok(frame)),
        _ => None,
    })
    .await?;
    Ok(vec![(None, Duration::ZERO, frame.image)])
}

#[cfg(test)]
mod tests {
    // Test code: a failed unwrap is a failed test.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use palmgate_sensor::device::{BurstFrame, ReceivedAt};
    use palmgate_sensor::image::PalmImage;

    fn burst_frame(band: Band, index: u8) -> SensorEvent {
        SensorEvent::BurstFrame(BurstFrame {
            band,
            index,
            exposed_after: Duration::from_millis(u64::from(index) * 33),
            frame: CapturedFrame {
                image: PalmImage::new(image::GrayImage::from_pixel(16, 16, image::Luma([index]))),
                format: FrameFormat::Gray8,
                frame_number: u32::from(index),
                encoded_bytes: 0,
                received: ReceivedAt::now(),
                decoded_at: std::time::Instant::now(),
            },
        })
    }

    async fn next_burst(commands: &mut mpsc::Receiver<DeviceCommand>) -> Vec<Band> {
        match tokio::time::timeout(Duration::from_secs(2), commands.recv()).await {
            Ok(Some(DeviceCommand::Burst(request))) => request.sequence(),
            other => panic!("expected a burst request, got {other:?}"),
        }
    }

    /// The sensor is unplugged after the first frame of a burst and comes back: the burst is
    /// asked for again and the presentation written is the second burst, whole.
    #[tokio::test]
    async fn a_burst_cut_by_a_reconnection_is_asked_for_again() {
        let out = tempfile::tempdir().unwrap();
        let args = CaptureArgs {
            port: PortArgs {
                port: PathBuf::from("/nonexistent/sensor"),
                baud: 921_600,
                wait: 5.0,
            },
            out: out.path().to_path_buf(),
            burst: true,
            label: Some(Label::BonaFide),
            presentations: 1,
            rounds: 1,
            frames: 1,
            format: FrameFormat::Gray8,
        };
        let (events_tx, mut events) = mpsc::channel(16);
        let (commands, mut commands_rx) = mpsc::channel(4);
        let capture = tokio::spawn(async move {
            let result = capture_burst_loop(&args, &Label::BonaFide, &mut events, &commands).await;
            result.map_err(|error| format!("{error:#}"))
        });
        // The sensor's bands; a burst takes them in code order, ambient first.
        let bands = vec![Band::Visible, Band::Ambient];
        let sequence = vec![Band::Ambient, Band::Visible];
        events_tx
            .send(SensorEvent::Bands(bands.clone()))
            .await
            .unwrap();
        assert_eq!(next_burst(&mut commands_rx).await, sequence);
        events_tx.send(burst_frame(Band::Ambient, 0)).await.unwrap();
        events_tx
            .send(SensorEvent::Disconnected {
                error: DeviceError::Closed,
                retry_in: Duration::from_millis(250),
            })
            .await
            .unwrap();
        let info = SensorInfo {
            protocol_version: 1,
            width: 16,
            height: 16,
            formats: vec![FrameFormat::Gray8],
            max_fps: 10,
            model: "test".to_string(),
            firmware: "0".to_string(),
        };
        events_tx.send(SensorEvent::Connected(info)).await.unwrap();
        events_tx
            .send(SensorEvent::Bands(bands.clone()))
            .await
            .unwrap();
        assert_eq!(next_burst(&mut commands_rx).await, sequence);
        for (index, band) in (10u8..).zip(&sequence) {
            events_tx.send(burst_frame(*band, index)).await.unwrap();
        }
        assert_eq!(capture.await.unwrap(), Ok(ExitCode::SUCCESS));

        let folder = out.path().join(Label::BonaFide.folder());
        let presentations: Vec<_> = std::fs::read_dir(&folder).unwrap().collect();
        assert_eq!(presentations.len(), 1);
        let presentation = presentations.into_iter().next().unwrap().unwrap().path();
        let mut names: Vec<String> = std::fs::read_dir(&presentation)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["00-ambient-330000us.png", "01-visible-363000us.png"]
        );
    }
}
