//! The GPIO seam: one trait per pin direction with one primitive each, and a backend that hands
//! out pins. Backends: [`crate::sim::SimulatedGpio`] and, with the `rpi` feature,
//! [`crate::rpi::RpiGpio`].

use std::path::Path;

use crate::config::Level;

/// A GPIO problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpioError {
    /// This machine is not a Raspberry Pi (or its model is unknown to rppal).
    #[error("this machine is not a Raspberry Pi (no supported GPIO chip found)")]
    NotRaspberryPi,
    /// This build has no Raspberry Pi GPIO support.
    #[error("this palmgate was built without Raspberry Pi GPIO support (cargo feature `rpi`)")]
    NotBuiltIn,
    /// The pin is held elsewhere (this process, or a pin configured twice).
    #[error("GPIO {0} is already in use")]
    PinUsed(u8),
    /// The chip has no such pin.
    #[error("GPIO {0} does not exist on this chip")]
    PinNotAvailable(u8),
    /// No permission to open the GPIO device.
    #[error("permission denied opening {0} (is the user in the `gpio` group?)")]
    PermissionDenied(String),
    /// The outputs were driven to their safe state and halted (panic or shutdown).
    #[error("the outputs are halted in their safe state")]
    Halted,
    /// Any other hardware error.
    #[error("GPIO error")]
    Hardware(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// An output pin: drive a level.
pub trait OutputPin: Send {
    /// Drives the pin to `level`.
    fn set(&mut self, level: Level) -> Result<(), GpioError>;
}

/// An input pin: read its level.
pub trait InputPin: Send {
    /// Reads the pin's level.
    fn read(&mut self) -> Result<Level, GpioError>;
}

/// Hands out pins by BCM number.
pub trait Backend: Send {
    /// Claims `pin` as an output, driving `initial` from the first moment it is an output.
    /// The pin keeps its last level when dropped (it is not switched back to an input).
    fn output(&mut self, pin: u8, initial: Level) -> Result<Box<dyn OutputPin>, GpioError>;

    /// Claims `pin` as an input with the internal pull-up on (an open contact reads high).
    fn input(&mut self, pin: u8) -> Result<Box<dyn InputPin>, GpioError>;
}

/// Where Linux names the board.
pub const DEVICE_TREE_MODEL: &str = "/proc/device-tree/model";

/// The board name from the device tree, when there is one.
pub fn board_model() -> Option<String> {
    let raw = std::fs::read(Path::new(DEVICE_TREE_MODEL)).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .trim_end_matches('\0')
            .trim()
            .to_string(),
    )
}

/// Whether the device tree says this is a Raspberry Pi.
pub fn is_raspberry_pi() -> bool {
    board_model().is_some_and(|model| model.contains("Raspberry Pi"))
}
