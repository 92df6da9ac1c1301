//! The simulated GPIO's control socket (`gpio.simulated_control`): lets the demo and the system
//! tests play the wiring of a simulated gate from outside the daemon — open a door contact, press
//! an exit button, raise the fire input — and read the outputs.
//!
//! # Protocol
//! One request per line on a Unix stream socket (mode 0600, owner only), one answer line each:
//!
//! | request               | answer                      |
//! |-----------------------|-----------------------------|
//! | `input <pin> high`    | `ok`                        |
//! | `input <pin> low`     | `ok`                        |
//! | `output <pin>`        | `high`, `low` or `unset`    |
//! | anything else         | `error: <reason>`           |
//!
//! Levels are electrical, as on the real pins: whether `low` means "door open" depends on the
//! door's configured `active` levels. A line longer than [`MAX_LINE`] bytes ends the connection.

use crate::error_chain;
use std::future::Future;
use std::path::Path;

use palmgate_door::{Level, SimulatedGpio};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Longest request line, in bytes.
pub const MAX_LINE: usize = 64;

/// A parsed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Set an input's level.
    Input {
        /// BCM pin.
        pin: u8,
        /// Level the wiring presents.
        level: Level,
    },
    /// Read an output's level.
    Output {
        /// BCM pin.
        pin: u8,
    },
}

/// Parses one request line (without its line ending).
pub fn parse(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_ascii_whitespace().collect();
    let pin = |word: &str| {
        word.parse::<u8>()
            .map_err(|_| format!("{word:?} is not a pin number"))
    };
    match words.as_slice() {
        ["input", number, level] => Ok(Request::Input {
            pin: pin(number)?,
            level: match *level {
                "high" => Level::High,
                "low" => Level::Low,
                other => return Err(format!("{other:?} is not a level (high or low)")),
            },
        }),
        ["output", number] => Ok(Request::Output { pin: pin(number)? }),
        _ => Err("expected `input <pin> high|low` or `output <pin>`".to_string()),
    }
}

/// Carries out a request and returns the answer line (without its line ending).
pub fn answer(gpio: &SimulatedGpio, line: &str) -> String {
    match parse(line) {
        Ok(Request::Input { pin, level }) => {
            gpio.set_input(pin, level);
            "ok".to_string()
        }
        Ok(Request::Output { pin }) => match gpio.output_level(pin) {
            Some(Level::High) => "high".to_string(),
            Some(Level::Low) => "low".to_string(),
            None => "unset".to_string(),
        },
        Err(reason) => format!("error: {reason}"),
    }
}

/// Listens on `path` until `shutdown` completes, then removes the socket file.
pub async fn serve(
    path: &Path,
    gpio: SimulatedGpio,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    tracing::info!(path = %path.display(), "simulated GPIO control socket listening");
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, gpio.clone()));
                }
                Err(error) => tracing::warn!(error = %error_chain(&error), "simulated GPIO control socket"),
            },
        }
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

async fn connection(stream: UnixStream, gpio: SimulatedGpio) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        let read = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_line(&mut line)
            .await;
        let reply = match read {
            Ok(0) | Err(_) => return,
            Ok(_) if line.len() > MAX_LINE => {
                let _ = writer.write_all(b"error: line too long\n").await;
                return;
            }
            Ok(_) => answer(&gpio, line.trim_end()),
        };
        if writer
            .write_all(format!("{reply}\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse("input 27 low"),
            Ok(Request::Input {
                pin: 27,
                level: Level::Low
            })
        );
        assert_eq!(parse("output 17"), Ok(Request::Output { pin: 17 }));
        assert_eq!(
            parse("input 27 open"),
            Err("\"open\" is not a level (high or low)".to_string())
        );
        assert_eq!(
            parse("input 300 low"),
            Err("\"300\" is not a pin number".to_string())
        );
        assert!(parse("").is_err());
        assert!(parse("input 27").is_err());
        assert!(parse("reboot").is_err());
    }

    #[test]
    fn answers_set_inputs_and_read_outputs() {
        let gpio = SimulatedGpio::new();
        assert_eq!(answer(&gpio, "output 17"), "unset");
        assert_eq!(answer(&gpio, "input 27 low"), "ok");
        assert!(answer(&gpio, "input x low").starts_with("error: "));
    }

    #[tokio::test]
    async fn the_socket_answers_line_by_line_and_refuses_long_lines() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gpio.sock");
        let gpio = SimulatedGpio::new();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn({
            let path = path.clone();
            async move {
                serve(&path, gpio, async {
                    let _ = stop_rx.await;
                })
                .await
            }
        });
        let stream = loop {
            match UnixStream::connect(&path).await {
                Ok(stream) => break stream,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        };
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        writer
            .write_all(b"input 27 low\noutput 27\nbogus\n")
            .await
            .expect("write");
        assert_eq!(
            lines.next_line().await.expect("read").as_deref(),
            Some("ok")
        );
        // Inputs and outputs are separate: pin 27 was never driven as an output.
        assert_eq!(
            lines.next_line().await.expect("read").as_deref(),
            Some("unset")
        );
        let error = lines.next_line().await.expect("read").expect("line");
        assert!(error.starts_with("error: expected"), "{error}");
        writer
            .write_all(format!("{}\n", "x".repeat(MAX_LINE + 10)).as_bytes())
            .await
            .expect("write");
        assert_eq!(
            lines.next_line().await.expect("read").as_deref(),
            Some("error: line too long")
        );
        assert_eq!(lines.next_line().await.expect("read"), None);
        let _ = stop_tx.send(());
        server.await.expect("join").expect("serve");
        assert!(!path.exists(), "socket file left behind");
    }
}
