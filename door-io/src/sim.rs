//! Simulated GPIO: records every output change with its time, and lets tests (or the demo) set
//! the inputs.
//!
//! A [`SimulatedGpio`] is a cheap handle: clones share the same pins, so a test keeps one clone to
//! drive inputs and inspect outputs while the driver owns another. Its clock is the real one
//! unless [`SimulatedGpio::set_now`] has set a manual time (tests with injected time).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::Level;
use crate::gpio::{Backend, GpioError, InputPin, OutputPin};

/// One recorded output change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputChange {
    /// Position in the journal of this backend (output changes and input claims share it).
    pub seq: u64,
    /// When.
    pub at: Instant,
    /// BCM pin.
    pub pin: u8,
    /// New level.
    pub level: Level,
}

#[derive(Debug)]
struct State {
    created: Instant,
    manual_now: Option<Instant>,
    seq: u64,
    outputs: BTreeMap<u8, Level>,
    inputs: BTreeMap<u8, Level>,
    claimed: BTreeSet<u8>,
    changes: Vec<OutputChange>,
    input_claims: Vec<(u64, u8)>,
}

impl State {
    fn now(&self) -> Instant {
        self.manual_now.unwrap_or_else(Instant::now)
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn claim(&mut self, pin: u8) -> Result<(), GpioError> {
        if !self.claimed.insert(pin) {
            return Err(GpioError::PinUsed(pin));
        }
        Ok(())
    }

    fn record(&mut self, pin: u8, level: Level) {
        if self.outputs.get(&pin) != Some(&level) {
            self.outputs.insert(pin, level);
            let (seq, at) = (self.next_seq(), self.now());
            self.changes.push(OutputChange {
                seq,
                at,
                pin,
                level,
            });
        }
    }
}

/// A simulated GPIO chip (see the module documentation).
#[derive(Debug, Clone)]
pub struct SimulatedGpio {
    state: Arc<Mutex<State>>,
}

impl Default for SimulatedGpio {
    fn default() -> Self {
        Self::new()
    }
}

impl SimulatedGpio {
    /// A chip with no pin claimed; unset inputs read high (pulled up, nothing connected).
    pub fn new() -> Self {
        let state = State {
            created: Instant::now(),
            manual_now: None,
            seq: 0,
            outputs: BTreeMap::new(),
            inputs: BTreeMap::new(),
            claimed: BTreeSet::new(),
            changes: Vec::new(),
            input_claims: Vec::new(),
        };
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent data (every update is one assignment).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// When this chip was created (the origin of the times shown by the CLI).
    pub fn created(&self) -> Instant {
        self.lock().created
    }

    /// Uses `now` as the time of the changes recorded from here on (injected time).
    pub fn set_now(&self, now: Instant) {
        self.lock().manual_now = Some(now);
    }

    /// Sets an input pin's level (what the wiring would present).
    pub fn set_input(&self, pin: u8, level: Level) {
        self.lock().inputs.insert(pin, level);
    }

    /// An output's current level; `None` when it was never driven.
    pub fn output_level(&self, pin: u8) -> Option<Level> {
        self.lock().outputs.get(&pin).copied()
    }

    /// Every output change so far, oldest first (the first entry of a pin is its initial level).
    pub fn changes(&self) -> Vec<OutputChange> {
        self.lock().changes.clone()
    }

    /// Journal positions at which input pins were claimed, in order.
    pub fn input_claims(&self) -> Vec<(u64, u8)> {
        self.lock().input_claims.clone()
    }
}

struct SimOutput {
    pin: u8,
    state: Arc<Mutex<State>>,
}

impl OutputPin for SimOutput {
    fn set(&mut self, level: Level) -> Result<(), GpioError> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .record(self.pin, level);
        Ok(())
    }
}

impl Drop for SimOutput {
    fn drop(&mut self) {
        // Released, but the level stays (as with the rpi backend).
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .claimed
            .remove(&self.pin);
    }
}

struct SimInput {
    pin: u8,
    state: Arc<Mutex<State>>,
}

impl Drop for SimInput {
    fn drop(&mut self) {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .claimed
            .remove(&self.pin);
    }
}

impl InputPin for SimInput {
    fn read(&mut self) -> Result<Level, GpioError> {
        let state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(state.inputs.get(&self.pin).copied().unwrap_or(Level::High))
    }
}

impl Backend for SimulatedGpio {
    fn output(&mut self, pin: u8, initial: Level) -> Result<Box<dyn OutputPin>, GpioError> {
        let mut state = self.lock();
        state.claim(pin)?;
        state.record(pin, initial);
        Ok(Box::new(SimOutput {
            pin,
            state: Arc::clone(&self.state),
        }))
    }

    fn input(&mut self, pin: u8) -> Result<Box<dyn InputPin>, GpioError> {
        let mut state = self.lock();
        state.claim(pin)?;
        let seq = state.next_seq();
        state.input_claims.push((seq, pin));
        Ok(Box::new(SimInput {
            pin,
            state: Arc::clone(&self.state),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_changes_only_and_refuses_a_pin_claimed_twice() {
        let mut gpio = SimulatedGpio::new();
        let t0 = Instant::now();
        gpio.set_now(t0);
        let mut out = gpio.output(17, Level::Low).expect("claim 17");
        out.set(Level::Low).expect("set");
        out.set(Level::High).expect("set");
        assert!(matches!(
            gpio.output(17, Level::Low),
            Err(GpioError::PinUsed(17))
        ));
        assert!(matches!(gpio.input(17), Err(GpioError::PinUsed(17))));
        drop(out);
        assert!(gpio.input(17).is_ok(), "released when dropped");
        let levels: Vec<Level> = gpio.changes().iter().map(|change| change.level).collect();
        assert_eq!(levels, [Level::Low, Level::High]);
        assert_eq!(gpio.output_level(17), Some(Level::High));

        let mut input = gpio.input(4).expect("claim 4");
        assert_eq!(
            input.read().expect("read"),
            Level::High,
            "pulled up while unset"
        );
        gpio.set_input(4, Level::Low);
        assert_eq!(input.read().expect("read"), Level::Low);
    }
}
