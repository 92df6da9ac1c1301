//! How the device task reaches the sensor, on every (re)connection: a serial port opened by path
//! ([`SerialConnector`], the daemon), or a stream handed over by someone else
//! ([`StreamConnector`]: an end of a `tokio::io::duplex` in tests, so that the real codec and
//! device task run without a pty).

use std::future::Future;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_serial::{SerialPort as _, SerialPortBuilderExt as _};

use super::DeviceError;

/// Opens the link to the sensor; called again after every lost connection.
pub trait Connector: Send + 'static {
    /// The byte stream to the sensor.
    type Link: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// The next link. The device task reports an error as `Disconnected` and calls again after
    /// its back-off; it stops waiting when it shuts down.
    fn connect(&mut self) -> impl Future<Output = Result<Self::Link, DeviceError>> + Send;
}

/// A serial port (UART, USB-CDC, pseudo-terminal) opened by path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialConnector {
    /// The port.
    pub path: PathBuf,
    /// Line speed (ignored by USB-CDC and pseudo-terminals).
    pub baud: u32,
}

impl Connector for SerialConnector {
    type Link = tokio_serial::SerialStream;

    async fn connect(&mut self) -> Result<Self::Link, DeviceError> {
        let port = tokio_serial::new(self.path.to_string_lossy(), self.baud)
            .open_native_async()
            .map_err(|source| DeviceError::Open {
                path: self.path.clone(),
                source,
            })?;
        // Whatever a previous user of the port left unread is stale.
        if let Err(error) = port.clear(tokio_serial::ClearBuffer::Input) {
            tracing::debug!(%error, "cannot flush the sensor port's input");
        }
        Ok(port)
    }
}

/// Streams plugged in through a [`StreamPlug`], one per connection: after losing one (its other
/// end dropped: an unplug), the task waits for the next.
#[derive(Debug)]
pub struct StreamConnector<S> {
    plugged: mpsc::UnboundedReceiver<S>,
}

/// Plugs streams into a [`StreamConnector`].
#[derive(Debug)]
pub struct StreamPlug<S>(mpsc::UnboundedSender<S>);

impl<S> Clone for StreamPlug<S> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<S> StreamConnector<S> {
    /// A connector with nothing plugged in yet, and its plug.
    pub fn new() -> (Self, StreamPlug<S>) {
        let (sender, plugged) = mpsc::unbounded_channel();
        (Self { plugged }, StreamPlug(sender))
    }
}

impl<S> StreamPlug<S> {
    /// Plugs `stream` in (the connector's next link); `false` when the connector is gone.
    pub fn plug(&self, stream: S) -> bool {
        self.0.send(stream).is_ok()
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Connector for StreamConnector<S> {
    type Link = S;

    async fn connect(&mut self) -> Result<S, DeviceError> {
        // Every plug gone: nothing will ever be plugged in again.
        self.plugged.recv().await.ok_or(DeviceError::Closed)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn plugged_streams_come_out_in_order_and_a_dropped_plug_closes() {
        let (mut connector, plug) = StreamConnector::new();
        let (first, mut first_far) = tokio::io::duplex(64);
        let (second, mut second_far) = tokio::io::duplex(64);
        assert!(plug.plug(first));
        assert!(plug.plug(second));
        for far in [&mut first_far, &mut second_far] {
            let mut link = connector.connect().await.expect("a plugged stream");
            link.write_all(b"hi").await.expect("write");
            let mut read = [0; 2];
            far.read_exact(&mut read).await.expect("read");
            assert_eq!(&read, b"hi");
        }
        drop(plug);
        assert!(matches!(
            connector.connect().await,
            Err(DeviceError::Closed)
        ));
    }

    #[tokio::test]
    async fn a_missing_port_is_an_open_error_naming_it() {
        let mut connector = SerialConnector {
            path: PathBuf::from("/nonexistent/palmgate-sensor"),
            baud: 921_600,
        };
        match connector.connect().await {
            Err(DeviceError::Open { path, .. }) => assert_eq!(path, connector.path),
            other => panic!("expected an open error, got {:?}", other.map(|_| ())),
        }
    }
}
