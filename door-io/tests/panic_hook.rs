//! A panic in any thread drives the outputs safe and halts the driver (its own test binary: the
//! panic hook is process-wide).

use std::time::{Duration, Instant};

use palmgate_door::{
    DoorConfig, DriverError, FailMode, GateConfig, GateDriver, Level, LockConfig, SimulatedGpio,
};

#[test]
fn a_panic_elsewhere_drives_the_outputs_safe_and_halts_the_driver() {
    let mut gpio = SimulatedGpio::new();
    let lock = LockConfig {
        pin: 17,
        active: Level::High,
        fail_mode: FailMode::Secure,
    };
    let config = GateConfig {
        doors: vec![DoorConfig::new("main", lock)],
        fire: None,
    };
    let t0 = Instant::now();
    let mut driver = GateDriver::start(&config, &mut gpio, t0).expect("start");
    driver.step(t0).expect("step");
    driver.grant("main", t0).expect("grant");
    assert_eq!(gpio.output_level(17), Some(Level::High), "released");
    driver.safe_stop().install_panic_hook();

    let worker = std::thread::spawn(|| panic!("a bug in some other task"));
    assert!(worker.join().is_err());

    assert_eq!(
        gpio.output_level(17),
        Some(Level::Low),
        "strike de-energised by the panic hook"
    );
    assert!(driver.safe_stop().is_halted());
    assert!(matches!(
        driver.step(t0 + Duration::from_millis(10)),
        Err(DriverError::Halted)
    ));
    assert_eq!(gpio.output_level(17), Some(Level::Low), "and it stays safe");
}
