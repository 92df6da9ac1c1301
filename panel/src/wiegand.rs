//! Wiegand output: two lines, D0 and D1, idle at their inactive level; each bit is one pulse on
//! D0 (a 0) or D1 (a 1), `pulse` long, bits `interval` apart (start to start); a frame ends with
//! silence (`frame_gap`).
//!
//! Panels sample the lines with tight windows, so the pulses are emitted from a dedicated thread,
//! never from an async runtime thread: it sleeps until shortly before each edge and spins the last
//! stretch ([`wait_until`]). A pulse is never shorter than `pulse` and bit starts are never closer
//! than `interval` (late edges push the following ones back rather than squeezing them); how much
//! longer they get depends on the scheduler (see `docs/panel-integration.md`).

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use palmgate_door::{GpioError, Level, OutputPin};

use crate::credential::WiegandBits;

/// Below this, sleeping is too coarse: spin instead.
const SPIN_MARGIN: Duration = Duration::from_micros(200);

/// Pulse timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WiegandTiming {
    /// How long a line is held active for one bit.
    pub pulse: Duration,
    /// From one bit's start to the next one's.
    pub interval: Duration,
    /// Silence after a frame before the next may start.
    pub frame_gap: Duration,
}

impl Default for WiegandTiming {
    /// 50 µs pulses 2 ms apart, 50 ms between frames: inside what HID readers emit and every
    /// panel we know accepts (20–100 µs, 200 µs–20 ms).
    fn default() -> Self {
        Self {
            pulse: Duration::from_micros(50),
            interval: Duration::from_millis(2),
            frame_gap: Duration::from_millis(50),
        }
    }
}

/// A Wiegand output problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WiegandError {
    /// A line could not be driven; the frame was not (completely) sent.
    #[error("Wiegand line could not be driven")]
    Gpio(#[from] GpioError),
    /// The emitter thread has stopped.
    #[error("the Wiegand emitter thread has stopped")]
    Stopped,
    /// The emitter thread could not be started.
    #[error("cannot start the Wiegand emitter thread")]
    Spawn(#[source] std::io::Error),
}

struct Job {
    bits: WiegandBits,
    done: mpsc::SyncSender<Result<(), WiegandError>>,
}

/// The Wiegand lines with their emitter thread.
#[derive(Debug)]
pub struct WiegandEmitter {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// The pending result of one frame.
#[derive(Debug)]
pub struct Sending(mpsc::Receiver<Result<(), WiegandError>>);

impl Sending {
    /// Blocks until the frame is out (or failed).
    pub fn wait(self) -> Result<(), WiegandError> {
        self.0.recv().unwrap_or(Err(WiegandError::Stopped))
    }
}

impl WiegandEmitter {
    /// Drives both lines to idle and starts the emitter thread. `active` is the level of a pulse
    /// at the GPIO (low when the pin drives the line directly or through a non-inverting buffer).
    pub fn spawn(
        mut d0: Box<dyn OutputPin>,
        mut d1: Box<dyn OutputPin>,
        active: Level,
        timing: WiegandTiming,
    ) -> Result<Self, WiegandError> {
        let idle = !active;
        d0.set(idle)?;
        d1.set(idle)?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("wiegand".to_string())
            .spawn(move || {
                let mut lines = Lines {
                    d0,
                    d1,
                    active,
                    idle,
                };
                let mut quiet_from: Option<Instant> = None;
                for job in receiver {
                    if let Some(quiet) = quiet_from {
                        wait_until(quiet + timing.frame_gap);
                    }
                    let result = lines.emit(&job.bits, timing);
                    if result.is_err() {
                        // Leave the lines idle whatever happened, so the panel sees no stuck bit.
                        let _ = lines.d0.set(idle);
                        let _ = lines.d1.set(idle);
                    }
                    quiet_from = Some(Instant::now());
                    let _ = job.done.send(result);
                }
            })
            .map_err(WiegandError::Spawn)?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues a frame; frames go out in order, `frame_gap` apart.
    pub fn send(&self, bits: WiegandBits) -> Result<Sending, WiegandError> {
        let (done, result) = mpsc::sync_channel(1);
        self.jobs
            .as_ref()
            .ok_or(WiegandError::Stopped)?
            .send(Job { bits, done })
            .map_err(|_| WiegandError::Stopped)?;
        Ok(Sending(result))
    }

    /// Lets the queued frames go out, then stops the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for WiegandEmitter {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Lines {
    d0: Box<dyn OutputPin>,
    d1: Box<dyn OutputPin>,
    active: Level,
    idle: Level,
}

impl Lines {
    fn emit(&mut self, bits: &WiegandBits, timing: WiegandTiming) -> Result<(), WiegandError> {
        let mut next_start = Instant::now();
        for bit in bits.as_slice() {
            wait_until(next_start);
            let line = if *bit { &mut self.d1 } else { &mut self.d0 };
            line.set(self.active)?;
            let started = Instant::now();
            wait_until(started + timing.pulse);
            line.set(self.idle)?;
            // From the actual start: a late edge delays the next bit instead of shortening
            // the gap the panel sees.
            next_start = started + timing.interval;
        }
        Ok(())
    }
}

/// Sleeps until shortly before `deadline`, then spins until it has passed.
pub fn wait_until(deadline: Instant) {
    loop {
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        let left = deadline - now;
        if left > SPIN_MARGIN {
            std::thread::sleep(left - SPIN_MARGIN);
        } else {
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palmgate_door::{Backend, SimulatedGpio};

    #[test]
    fn lines_start_idle_and_a_bit_is_one_pulse_on_its_line() {
        let mut gpio = SimulatedGpio::new();
        let d0 = gpio.output(5, Level::High).expect("d0");
        let d1 = gpio.output(6, Level::High).expect("d1");
        let emitter =
            WiegandEmitter::spawn(d0, d1, Level::Low, WiegandTiming::default()).expect("spawn");
        let bits = crate::Credential::new(crate::WiegandFormat::H10301, 1, 1)
            .expect("fits")
            .bits();
        emitter.send(bits).expect("queued").wait().expect("sent");
        emitter.shutdown();
        let lows_d1 = gpio
            .changes()
            .iter()
            .filter(|change| change.pin == 6 && change.level == Level::Low)
            .count();
        // 10000000100000000000000010 has three ones.
        assert_eq!(lows_d1, 3);
        assert_eq!(gpio.output_level(5), Some(Level::High));
        assert_eq!(gpio.output_level(6), Some(Level::High));
    }
}
