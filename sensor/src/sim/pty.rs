//! A pseudo-terminal in raw mode whose master side is an `AsyncRead + AsyncWrite`, and a symlink
//! to its device (slave) side so that the gate opens it like a real serial port.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::pty::{OpenptyResult, openpty};
use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::unix::pipe;

/// The master side of a pseudo-terminal (the sensor's end of the "cable").
#[derive(Debug)]
pub struct Pty {
    // The master fd and a duplicate of it, registered with tokio as the two ends of a stream (a
    // pty master reads and writes like a pipe; this needs no `unsafe`).
    reader: pipe::Receiver,
    writer: pipe::Sender,
    /// Held open so that reading the master does not fail while no one has the device open.
    _slave: OwnedFd,
    slave_path: PathBuf,
}

impl Pty {
    /// Opens a pseudo-terminal in raw mode (no echo, no line editing, 8-bit clean). Must be called
    /// inside a tokio runtime.
    pub fn open() -> io::Result<Self> {
        let OpenptyResult { master, slave } = openpty(None, None)?;
        let mut termios = tcgetattr(&slave)?;
        cfmakeraw(&mut termios);
        tcsetattr(&slave, SetArg::TCSANOW, &termios)?;
        let flags = OFlag::from_bits_truncate(fcntl(&master, FcntlArg::F_GETFL)?);
        fcntl(&master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        let slave_path = nix::unistd::ttyname(&slave)?;
        let writer = pipe::Sender::from_owned_fd_unchecked(master.try_clone()?)?;
        let reader = pipe::Receiver::from_owned_fd_unchecked(master)?;
        Ok(Self {
            reader,
            writer,
            _slave: slave,
            slave_path,
        })
    }

    /// The device side, e.g. `/dev/pts/3`.
    pub fn slave_path(&self) -> &Path {
        &self.slave_path
    }
}

impl AsyncRead for Pty {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for Pty {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

/// A symlink to a pty's device side, removed when dropped.
#[derive(Debug)]
pub struct Link {
    path: PathBuf,
}

impl Link {
    /// Points `path` at `target`, replacing an existing symlink (but never a regular file).
    pub fn create(path: &Path, target: &Path) -> io::Result<Self> {
        match std::fs::symlink_metadata(path) {
            Ok(metadata) if metadata.file_type().is_symlink() => std::fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a symlink", path.display()),
                ));
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        std::os::unix::fs::symlink(target, path)?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The link's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path)
            && error.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(link = %self.path.display(), %error, "cannot remove sensor link");
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn bytes_cross_the_pty_unchanged() {
        let mut pty = Pty::open().unwrap();
        let mut device = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pty.slave_path())
            .await
            .unwrap();
        // Raw mode: CR, LF, ^C, ^D and 0xFF pass untouched, and nothing is echoed.
        let bytes = [b'\r', b'\n', 3, 4, 0xFF, 0];
        pty.write_all(&bytes).await.unwrap();
        let mut received = [0u8; 6];
        device.read_exact(&mut received).await.unwrap();
        assert_eq!(received, bytes);
        device.write_all(&bytes).await.unwrap();
        let mut back = [0u8; 6];
        pty.read_exact(&mut back).await.unwrap();
        assert_eq!(back, bytes);
    }

    #[test]
    fn link_replaces_symlinks_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sensor");
        let first = Link::create(&path, Path::new("/dev/null")).unwrap();
        std::mem::forget(first);
        let second = Link::create(&path, Path::new("/dev/zero")).unwrap();
        assert_eq!(std::fs::read_link(&path).unwrap(), Path::new("/dev/zero"));
        drop(second);
        assert!(std::fs::symlink_metadata(&path).is_err());
        std::fs::write(&path, b"keep").unwrap();
        assert!(Link::create(&path, Path::new("/dev/null")).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"keep");
    }
}
