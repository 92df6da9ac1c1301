//! Palm region of interest (ROI): from a whole-hand image to a 128×128 aligned, normalised palm crop.

/// Side of the square ROI, in pixels.
pub const ROI_SIZE: u32 = 128;
/// Side of the palm ROI, as a multiple of the distance between the index–middle and ring–little
/// finger valleys.
pub const ROI_SIDE_PER_VALLEY_DISTANCE: f32 = 1.2;
/// Distance from the middle of the valley line to the ROI centre (towards the wrist), as a multiple of
/// the valley distance.
pub const ROI_OFFSET_PER_VALLEY_DISTANCE: f32 = 0.75;
