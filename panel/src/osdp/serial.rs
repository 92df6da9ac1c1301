//! The PD on a serial line: reads bytes, hands packets to the [`Pd`], writes its replies, and
//! takes card data and status changes from the gate. Runs on the async runtime; every decision
//! is the [`Pd`]'s.

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

/// Why the PD task stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SerialError {
    /// Reading or writing the line failed.
    #[error("serial line I/O")]
    Io(#[from] std::io::Error),
    /// The line was closed by the other side.
    #[error("the serial line was closed")]
    Closed,
}

/// Opens a serial port for the PD (8N1, no flow control).
pub fn open(path: &str, baud: u32) -> Result<tokio_serial::SerialStream, tokio_serial::Error> {
    tokio_serial::SerialStream::open(&tokio_serial::new(path, baud))
}

/// Serves `pd` on `line` until the requests channel closes (Ok) or the line fails.
pub async fn serve<L>(
    mut line: L,
    mut pd: Pd,
    mut requests: mpsc::Receiver<PdRequest>,
    events: mpsc::UnboundedSender<PdEvent>,
) -> Result<(), SerialError>
where
    L: AsyncRead + AsyncWrite + BaudRate + Unpin,
{
    let mut deframer = Deframer::new();
    let mut buffer = [0u8; 256];
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
                    }
                    for event in step.events {
                        if let PdEvent::ComSet(settings) = &event {
                            line.set_baud(settings.baud)?;
                        }
                        let _ = events.send(event);
                    }
                }
            }
            request = requests.recv() => match request {
                Some(PdRequest::Present(bits)) => pd.present(bits, std::time::Instant::now()),
                Some(PdRequest::Tamper(tamper)) => pd.set_tamper(tamper),
                Some(PdRequest::Input(index, active)) => pd.set_input(index, active),
                None => return Ok(()),
            },
            () = tokio::time::sleep(INTER_BYTE_TIMEOUT), if partial => deframer.clear(),
        }
    }
}
