//! Raspberry Pi GPIO through rppal (feature `rpi`).
//!
//! Outputs are set to their initial level before the pin becomes an output, and are left at
//! their last level when dropped (rppal would otherwise switch them back to inputs, leaving the
//! relay driver floating). Inputs use the SoC's internal pull-up.

use crate::config::Level;
use crate::gpio::{Backend, GpioError, InputPin, OutputPin};

/// The Raspberry Pi's GPIO.
#[derive(Debug)]
pub struct RpiGpio {
    gpio: rppal::gpio::Gpio,
}

impl RpiGpio {
    /// Opens the GPIO peripheral; [`GpioError::NotRaspberryPi`] on other machines.
    pub fn new() -> Result<Self, GpioError> {
        Ok(Self {
            gpio: rppal::gpio::Gpio::new().map_err(map_error)?,
        })
    }
}

fn map_error(error: rppal::gpio::Error) -> GpioError {
    match error {
        rppal::gpio::Error::UnknownModel => GpioError::NotRaspberryPi,
        rppal::gpio::Error::PinUsed(pin) => GpioError::PinUsed(pin),
        rppal::gpio::Error::PinNotAvailable(pin) => GpioError::PinNotAvailable(pin),
        rppal::gpio::Error::PermissionDenied(path) => GpioError::PermissionDenied(path),
        other => GpioError::Hardware(Box::new(other)),
    }
}

fn to_rppal(level: Level) -> rppal::gpio::Level {
    match level {
        Level::Low => rppal::gpio::Level::Low,
        Level::High => rppal::gpio::Level::High,
    }
}

struct RpiOutput(rppal::gpio::OutputPin);

impl OutputPin for RpiOutput {
    fn set(&mut self, level: Level) -> Result<(), GpioError> {
        self.0.write(to_rppal(level));
        Ok(())
    }
}

struct RpiInput(rppal::gpio::InputPin);

impl InputPin for RpiInput {
    fn read(&mut self) -> Result<Level, GpioError> {
        Ok(match self.0.read() {
            rppal::gpio::Level::Low => Level::Low,
            rppal::gpio::Level::High => Level::High,
        })
    }
}

impl Backend for RpiGpio {
    fn output(&mut self, pin: u8, initial: Level) -> Result<Box<dyn OutputPin>, GpioError> {
        let pin = self.gpio.get(pin).map_err(map_error)?;
        let mut output = match initial {
            Level::Low => pin.into_output_low(),
            Level::High => pin.into_output_high(),
        };
        output.set_reset_on_drop(false);
        Ok(Box::new(RpiOutput(output)))
    }

    fn input(&mut self, pin: u8) -> Result<Box<dyn InputPin>, GpioError> {
        let pin = self.gpio.get(pin).map_err(map_error)?;
        Ok(Box::new(RpiInput(pin.into_input_pullup())))
    }
}
