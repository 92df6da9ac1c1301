//! What the simulator tests share: the test image source and the patience of a loaded machine.

use std::time::Duration;

use image::{GrayImage, Luma};

/// Size of the test images.
pub const WIDTH: u32 = 64;
/// Size of the test images.
pub const HEIGHT: u32 = 48;
/// Generous for a loaded 2-core CI machine; the tests normally finish far sooner.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Image `n` of the test source: a gradient shifted by `n`, so frames are told apart by content.
pub fn test_image(n: u32) -> GrayImage {
    GrayImage::from_fn(WIDTH, HEIGHT, |x, y| {
        Luma([((x * 2 + y + n * 7) % 200) as u8])
    })
}

/// Runs `simulator` on the current runtime until the returned sender is used or dropped; the task
/// fails the test if the simulator ends with an error.
pub fn spawn(
    simulator: palmgate_sensor::sim::Simulator,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        simulator
            .run(async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (stop, task)
}
