//! Wiegand timing evaluation: emits frames through the emitter thread onto the simulated GPIO
//! and prints the pulse widths and bit intervals the lines actually showed (the simulated pins
//! time-stamp every edge). `cargo run -p palmgate-panel --example wiegand_timing [FRAMES]`;
//! results in docs/panel-integration.md.

use std::time::Duration;

use palmgate_door::{Backend, Level, SimulatedGpio};
use palmgate_panel::wiegand::{WiegandEmitter, WiegandTiming};
use palmgate_panel::{Credential, WiegandFormat};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn summary(name: &str, mut values: Vec<Duration>) {
    values.sort();
    println!(
        "{name}: n={} min={:?} p50={:?} p99={:?} max={:?}",
        values.len(),
        values[0],
        percentile(&values, 0.5),
        percentile(&values, 0.99),
        values[values.len() - 1]
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frames: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(50);
    let mut gpio = SimulatedGpio::new();
    let timing = WiegandTiming::default();
    let emitter = WiegandEmitter::spawn(
        gpio.output(5, Level::High)?,
        gpio.output(6, Level::High)?,
        Level::Low,
        timing,
    )?;
    for index in 0..frames {
        let bits = Credential::new(WiegandFormat::H10301, 12, index as u32)?.bits();
        emitter.send(bits)?.wait()?;
    }
    emitter.shutdown();
    let changes = gpio.changes();
    let mut widths = Vec::new();
    let mut starts = Vec::new();
    let mut low_since = None;
    for change in changes.iter().filter(|c| c.pin == 5 || c.pin == 6) {
        match change.level {
            Level::Low => {
                low_since = Some(change.at);
                starts.push(change.at);
            }
            Level::High => {
                if let Some(since) = low_since.take() {
                    widths.push(change.at - since);
                }
            }
        }
    }
    let intervals: Vec<Duration> = starts
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .filter(|gap| *gap < timing.frame_gap / 2)
        .collect();
    println!(
        "configured: pulse {:?}, interval {:?}, frame gap {:?}; {frames} frames of 26 bits",
        timing.pulse, timing.interval, timing.frame_gap
    );
    summary("pulse width", widths);
    summary("bit interval", intervals);
    Ok(())
}
