//! A sensor played by a test on the far end of an in-memory link: it answers the device task's
//! requests as a protocol 1.0 sensor does (`Info`, `Ack`, `Pong`; `Error` *unknown request* to
//! the 1.1 requests) and sends presence reports and frames when the test says so. With a
//! [`StreamConnector`](super::StreamConnector) the real codec and device task run on it without a
//! pty; dropping (or [`ScriptedSensor::unplug`]ging) it is a USB unplug.

use crate::error_chain;
use bytes::BytesMut;
use futures::StreamExt as _;
use image::GrayImage;
use tokio::io::{AsyncWriteExt as _, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::StreamPlug;
use crate::codec::{
    Envelope, FrameFormat, HostMessage, SensorCodec, SensorErrorCode, SensorInfo, SensorMessage,
    encode_sensor_message,
};

/// Bytes the in-memory link buffers each way (a few GRAY8 VGA frames).
const LINK_BUFFER: usize = 4 << 20;

/// A sensor on the far end of one in-memory link (see the module doc).
#[derive(Debug)]
pub struct ScriptedSensor {
    to_host: mpsc::Sender<SensorMessage>,
    task: JoinHandle<()>,
    frame_number: u32,
}

impl ScriptedSensor {
    /// Plugs a new link in through `plug` and serves it as a sensor describing itself with
    /// `info`. Must be called within a tokio runtime.
    pub fn plug_in(plug: &StreamPlug<DuplexStream>, info: SensorInfo) -> Self {
        let (near, far) = tokio::io::duplex(LINK_BUFFER);
        // A connector that is gone never reads: the task below then ends on its own.
        let _ = plug.plug(near);
        let (to_host, outgoing) = mpsc::channel(16);
        Self {
            to_host,
            task: tokio::spawn(serve(far, info, outgoing)),
            frame_number: 0,
        }
    }

    /// Sends `message` unsolicited (sequence 0), as a sensor sends presence reports and frames;
    /// `false` once the link is gone.
    pub async fn send(&self, message: SensorMessage) -> bool {
        self.to_host.send(message).await.is_ok()
    }

    /// Reports a hand (`true`) or its leaving.
    pub async fn presence(&self, present: bool) -> bool {
        self.send(SensorMessage::Presence {
            present,
            distance_mm: present.then_some(80),
        })
        .await
    }

    /// Sends `image` as the next GRAY8 frame; `false` once the link is gone (or the image is
    /// larger than the protocol's 65535 × 65535).
    pub async fn frame(&mut self, image: &GrayImage) -> bool {
        let (Ok(width), Ok(height)) = (u16::try_from(image.width()), u16::try_from(image.height()))
        else {
            return false;
        };
        self.frame_number += 1;
        self.send(SensorMessage::Frame {
            format: FrameFormat::Gray8,
            width,
            height,
            frame_number: self.frame_number,
            data: image.as_raw().as_slice().into(),
        })
        .await
    }

    /// Pulls the sensor out: its end of the link closes.
    pub fn unplug(self) {
        self.task.abort();
    }
}

impl Drop for ScriptedSensor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(link: DuplexStream, info: SensorInfo, mut outgoing: mpsc::Receiver<SensorMessage>) {
    let (reader, mut writer) = tokio::io::split(link);
    let mut requests = FramedRead::new(reader, SensorCodec::default());
    loop {
        let envelope = tokio::select! {
            request = requests.next() => match request {
                // The host closed the link, or it failed.
                None | Some(Err(_)) => return,
                Some(Ok(Err(error))) => Envelope::new(0, SensorMessage::Error {
                    code: SensorErrorCode::BadRequest,
                    message: error_chain(&error),
                }),
                Some(Ok(Ok(Envelope { seq, message }))) => Envelope::new(seq, answer(message, &info)),
            },
            message = outgoing.recv() => match message {
                None => return,
                Some(message) => Envelope::new(0, message),
            },
        };
        let mut out = BytesMut::new();
        if encode_sensor_message(&envelope, &mut out).is_err()
            || writer.write_all(&out).await.is_err()
        {
            return;
        }
    }
}

/// A protocol 1.0 sensor's answer to `request`.
fn answer(request: HostMessage, info: &SensorInfo) -> SensorMessage {
    match request {
        HostMessage::GetInfo => SensorMessage::Info(info.clone()),
        HostMessage::Ping { token } => SensorMessage::Pong { token },
        HostMessage::SetIllumination { .. }
        | HostMessage::StartCapture { .. }
        | HostMessage::StopCapture => SensorMessage::Ack,
        _ => SensorMessage::Error {
            code: SensorErrorCode::UnknownRequest,
            message: "protocol 1.0 sensor".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::device::{DeviceConfig, SensorEvent, StreamConnector, run_with};

    fn info() -> SensorInfo {
        SensorInfo {
            protocol_version: 1,
            width: 8,
            height: 4,
            formats: vec![FrameFormat::Gray8],
            max_fps: 10,
            model: "scripted".to_owned(),
            firmware: "0".to_owned(),
        }
    }

    async fn next(events: &mut mpsc::Receiver<SensorEvent>) -> SensorEvent {
        tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .expect("device task running")
    }

    #[tokio::test]
    async fn the_device_task_connects_decodes_and_reconnects_over_in_memory_links() {
        let (connector, plug) = StreamConnector::new();
        let (events_tx, mut events) = mpsc::channel(16);
        let (_commands, commands) = mpsc::channel(4);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_with(
            connector,
            DeviceConfig::new("/unused"),
            events_tx,
            commands,
            async {
                let _ = stopped.await;
            },
        ));

        let mut first = ScriptedSensor::plug_in(&plug, info());
        assert!(matches!(next(&mut events).await, SensorEvent::Connected(got) if got == info()));
        // A 1.0 sensor: no bands.
        assert!(matches!(next(&mut events).await, SensorEvent::Bands(bands) if bands.is_empty()));
        let image = GrayImage::from_fn(8, 4, |x, y| image::Luma([(x * 10 + y) as u8]));
        assert!(first.presence(true).await);
        assert!(first.frame(&image).await);
        assert!(matches!(
            next(&mut events).await,
            SensorEvent::Presence { present: true, .. }
        ));
        match next(&mut events).await {
            SensorEvent::Frame(frame) => {
                assert_eq!(frame.image.as_gray(), &image);
                assert_eq!(frame.frame_number, 1);
            }
            other => panic!("expected a frame, got {other:?}"),
        }

        first.unplug();
        assert!(matches!(
            next(&mut events).await,
            SensorEvent::Disconnected { .. }
        ));
        let _second = ScriptedSensor::plug_in(&plug, info());
        assert!(matches!(next(&mut events).await, SensorEvent::Connected(_)));

        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("the task stops")
            .expect("no panic");
    }
}
