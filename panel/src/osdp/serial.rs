//! The PD on a serial line: reads bytes, hands packets to the [`Pd`], writes its replies, and
//! takes card data and status changes from the gate. Runs on the async runtime; every decision
//! is the [`Pd`]'s, and when to open the port again is the caller's.
//!
//! The port can fail (a USB-RS485 adapter unplugged, the device gone): [`run`] then reports
//! [`LinkEvent::Lost`], closes the port and keeps the [`Pd`] — its key, address, speed, tamper
//! state and queued card data — taking the gate's requests as before. It opens the port again
//! each time it gets [`PdRequest::Reopen`] (reporting [`LinkEvent::Opened`] or
//! [`LinkEvent::OpenFailed`]): the caller decides the back-off. Card data queued meanwhile waits
//! for a poll at most [`super::pd::CARD_READ_TTL`], as on a working link.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::packet::Deframer;
use super::pd::{Pd, PdEvent};
use crate::credential::WiegandBits;

/// A partial packet older than this is dropped (the line went quiet mid-packet).
pub const INTER_BYTE_TIMEOUT: Duration = Duration::from_millis(200);

/// What the gate asks of the PD task.
#[derive(Debug)]
#[non_exhaustive]
pub enum PdRequest {
    /// Send this card data at the next poll.
    Present(WiegandBits),
    /// The reader's tamper state.
    Tamper(bool),
    /// An input's state.
    Input(usize, bool),
    /// Open the port again after [`LinkEvent::Lost`] or [`LinkEvent::OpenFailed`]; ignored while
    /// it is open.
    Reopen,
}

/// What the PD task reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkEvent {
    /// What the PD did with a packet.
    Pd(PdEvent),
    /// The line failed and the port is closed; the task waits for [`PdRequest::Reopen`].
    Lost(SerialError),
    /// [`PdRequest::Reopen`] could not open the port; the task waits for the next one.
    OpenFailed(SerialError),
    /// [`PdRequest::Reopen`] opened the port.
    Opened,
    /// The first packet for this PD since the port was opened: the panel polls it.
    PanelHeard,
}

/// A line that can change its speed (COMSET).
pub trait BaudRate {
    /// Switches to `baud`.
    fn set_baud(&mut self, baud: u32) -> std::io::Result<()>;
}

impl BaudRate for tokio_serial::SerialStream {
    fn set_baud(&mut self, baud: u32) -> std::io::Result<()> {
        tokio_serial::SerialPort::set_baud_rate(self, baud).map_err(std::io::Error::other)
    }
}

impl BaudRate for tokio::io::DuplexStream {
    fn set_baud(&mut self, _baud: u32) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why the line stopped, or could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialError {
    /// Reading or writing the line failed.
    #[error("serial line I/O")]
    Io(#[from] std::io::Error),
    /// The line was closed by the other side.
    #[error("the serial line was closed")]
    Closed,
    /// The port cannot be opened.
    #[error("{device}: cannot open the OSDP serial port")]
    Open {
        /// The device.
        device: String,
        /// Why.
        #[source]
        source: tokio_serial::Error,
    },
}

/// Opens the line, at start-up and again after it failed.
pub trait Opener: Send + 'static {
    /// The line.
    type Line: AsyncRead + AsyncWrite + BaudRate + Unpin + Send;

    /// Opens the line at `baud`.
    fn open(&mut self, baud: u32) -> Result<Self::Line, SerialError>;
}

/// A serial port by its device path (8N1, no flow control). The path is opened again as it is
/// on every attempt, so a `/dev/serial/by-id/…` link finds an adapter plugged back in.
#[derive(Debug, Clone)]
pub struct SerialPort {
    device: String,
}

impl SerialPort {
    /// The port at `device`.
    pub fn new(device: impl Into<String>) -> Self {
        Self {
            device: device.into(),
        }
    }
}

impl Opener for SerialPort {
    type Line = tokio_serial::SerialStream;

    fn open(&mut self, baud: u32) -> Result<Self::Line, SerialError> {
        open(&self.device, baud).map_err(|source| SerialError::Open {
            device: self.device.clone(),
            source,
        })
    }
}

/// Opens a serial port for the PD (8N1, no flow control).
pub fn open(path: &str, baud: u32) -> Result<tokio_serial::SerialStream, tokio_serial::Error> {
    tokio_serial::SerialStream::open(&tokio_serial::new(path, baud))
}

/// Serves `pd` on `line` (already opened by `opener`) until the requests channel closes or the
/// events receiver is dropped; a failed line is closed and opened again on
/// [`PdRequest::Reopen`].
pub async fn run<O: Opener>(
    mut opener: O,
    line: O::Line,
    mut pd: Pd,
    mut requests: mpsc::Receiver<PdRequest>,
    events: mpsc::UnboundedSender<LinkEvent>,
) {
    let mut line = Some(line);
    loop {
        if let Some(mut open) = line.take() {
            match serve(&mut open, &mut pd, &mut requests, &events).await {
                Ok(()) => return,
                Err(error) => {
                    // Closed before reporting, so a reopen cannot race the old descriptor.
                    drop(open);
                    if events.send(LinkEvent::Lost(error)).is_err() {
                        return;
                    }
                }
            }
        }
        // The port is closed: the PD still takes the gate's requests (queued card data then
        // waits for the panel as on a working link) until it is told to reopen.
        while line.is_none() {
            let Some(request) = requests.recv().await else {
                return;
            };
            let report = match request {
                PdRequest::Reopen => match opener.open(pd.baud()) {
                    Ok(opened) => {
                        line = Some(opened);
                        LinkEvent::Opened
                    }
                    Err(error) => LinkEvent::OpenFailed(error),
                },
                other => {
                    apply(&mut pd, other);
                    continue;
                }
            };
            if events.send(report).is_err() {
                return;
            }
        }
    }
}

fn apply(pd: &mut Pd, request: PdRequest) {
    match request {
        PdRequest::Present(bits) => pd.present(bits, std::time::Instant::now()),
        PdRequest::Tamper(tamper) => pd.set_tamper(tamper),
        PdRequest::Input(index, active) => pd.set_input(index, active),
        PdRequest::Reopen => {}
    }
}

/// Serves `pd` on the open `line` until the requests channel closes (Ok) or the line fails.
async fn serve<L>(
    line: &mut L,
    pd: &mut Pd,
    requests: &mut mpsc::Receiver<PdRequest>,
    events: &mpsc::UnboundedSender<LinkEvent>,
) -> Result<(), SerialError>
where
    L: AsyncRead + AsyncWrite + BaudRate + Unpin,
{
    let mut deframer = Deframer::new();
    let mut buffer = [0u8; 256];
    let mut heard = false;
    loop {
        let partial = deframer.is_partial();
        tokio::select! {
            read = line.read(&mut buffer) => {
                let count = read?;
                if count == 0 {
                    return Err(SerialError::Closed);
                }
                deframer.push(&buffer[..count]);
                while let Some(result) = deframer.next_packet() {
                    let step = match result {
                        Ok(packet) => pd.handle(&packet, std::time::Instant::now()),
                        Err(error) => pd.handle_error(&error),
                    };
                    if let Some(reply) = step.reply {
                        line.write_all(&reply).await?;
                        line.flush().await?;
                        if !heard {
                            heard = true;
                            let _ = events.send(LinkEvent::PanelHeard);
                        }
                    }
                    for event in step.events {
                        if let PdEvent::ComSet(settings) = &event {
                            line.set_baud(settings.baud)?;
                        }
                        let _ = events.send(LinkEvent::Pd(event));
                    }
                }
            }
            request = requests.recv() => match request {
                Some(request) => apply(pd, request),
                None => return Ok(()),
            },
            () = tokio::time::sleep(INTER_BYTE_TIMEOUT), if partial => deframer.clear(),
        }
    }
}

#[cfg(test)]
mod tests;
