//! Palm images in and out of frames: GRAY8 rows, PNG and JPEG (with the `image` crate).
//!
//! Palm images are biometric data: [`ImageBytes`] and [`PalmImage`] wipe their buffers when dropped
//! and print `REDACTED`.

use std::io::Cursor;

use image::{GrayImage, ImageEncoder, ImageFormat};
use zeroize::Zeroize;

use crate::codec::FrameFormat;

/// An encoded image (GRAY8 rows, PNG or JPEG file), wiped when dropped.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct ImageBytes(Vec<u8>);

impl ImageBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for ImageBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl From<&[u8]> for ImageBytes {
    fn from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }
}

impl std::ops::Deref for ImageBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for ImageBytes {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for ImageBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ImageBytes({} bytes, REDACTED)", self.0.len())
    }
}

/// A decoded 8-bit gray palm image, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct PalmImage(GrayImage);

impl PalmImage {
    /// Wraps an image.
    pub fn new(image: GrayImage) -> Self {
        Self(image)
    }

    /// The image.
    pub fn as_gray(&self) -> &GrayImage {
        &self.0
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.0.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.0.height()
    }

    /// Takes the image out; wiping it becomes the caller's business.
    pub fn into_inner(mut self) -> GrayImage {
        std::mem::take(&mut self.0)
    }
}

impl Drop for PalmImage {
    fn drop(&mut self) {
        let pixels: &mut [u8] = &mut self.0;
        pixels.zeroize();
    }
}

impl std::fmt::Debug for PalmImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PalmImage({}×{}, REDACTED)",
            self.0.width(),
            self.0.height()
        )
    }
}

/// Why a frame's image could not be decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageDecodeError {
    /// GRAY8 data whose length is not width × height.
    #[error("GRAY8 frame of {width}×{height} carries {length} bytes")]
    Gray8Length {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
        /// Bytes received.
        length: usize,
    },
    /// The PNG or JPEG data is not a valid image.
    #[error("{format} frame does not decode")]
    Codec {
        /// Declared format.
        format: FrameFormat,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The decoded image's size differs from the frame header's.
    #[error("frame header says {declared_width}×{declared_height}, image is {width}×{height}")]
    SizeMismatch {
        /// Width in the frame header.
        declared_width: u32,
        /// Height in the frame header.
        declared_height: u32,
        /// Decoded width.
        width: u32,
        /// Decoded height.
        height: u32,
    },
}

/// Decodes a frame's image to 8-bit gray. CPU-bound for PNG and JPEG: call it off the async threads.
pub fn decode_image(
    format: FrameFormat,
    width: u32,
    height: u32,
    data: &[u8],
) -> Result<PalmImage, ImageDecodeError> {
    let image = match format {
        FrameFormat::Gray8 => GrayImage::from_raw(width, height, data.to_vec()).ok_or(
            ImageDecodeError::Gray8Length {
                width,
                height,
                length: data.len(),
            },
        )?,
        FrameFormat::Png | FrameFormat::Jpeg => {
            let image_format = if format == FrameFormat::Png {
                ImageFormat::Png
            } else {
                ImageFormat::Jpeg
            };
            // The frame header bounds the image: a file claiming more is refused before it allocates.
            let mut limits = image::Limits::default();
            limits.max_image_width = Some(width);
            limits.max_image_height = Some(height);
            limits.max_alloc = Some(u64::from(width) * u64::from(height) * 8 + (1 << 20));
            let mut reader = image::ImageReader::with_format(Cursor::new(data), image_format);
            reader.limits(limits);
            let mut decoded = reader
                .decode()
                .map_err(|source| ImageDecodeError::Codec { format, source })?;
            let gray = match &mut decoded {
                image::DynamicImage::ImageLuma8(gray) => std::mem::take(gray),
                other => other.to_luma8(),
            };
            wipe_dynamic(&mut decoded);
            gray
        }
    };
    let image = PalmImage::new(image);
    if (image.width(), image.height()) != (width, height) {
        return Err(ImageDecodeError::SizeMismatch {
            declared_width: width,
            declared_height: height,
            width: image.width(),
            height: image.height(),
        });
    }
    Ok(image)
}

/// Wipes an intermediate decoded image (colour JPEGs decode to RGB before conversion).
fn wipe_dynamic(image: &mut image::DynamicImage) {
    if let Some(bytes) = image.as_mut_rgb8() {
        let pixels: &mut [u8] = bytes;
        pixels.zeroize();
    } else if let Some(bytes) = image.as_mut_luma8() {
        let pixels: &mut [u8] = bytes;
        pixels.zeroize();
    }
}

/// Why an image could not be encoded into a frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageEncodeError {
    /// Frame dimensions are 16-bit.
    #[error("image of {width}×{height} is too large for a frame (65535 pixels a side at most)")]
    TooLarge {
        /// Width.
        width: u32,
        /// Height.
        height: u32,
    },
    /// The PNG or JPEG encoder failed.
    #[error("{format} encoding failed")]
    Codec {
        /// Requested format.
        format: FrameFormat,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
}

/// JPEG quality used by [`encode_image`].
pub const JPEG_QUALITY: u8 = 90;

/// Encodes an image as a frame's data in `format` (for the simulator). Returns `(width, height, data)`.
pub fn encode_image(
    image: &GrayImage,
    format: FrameFormat,
) -> Result<(u16, u16, ImageBytes), ImageEncodeError> {
    let (width, height) = image.dimensions();
    let too_large = || ImageEncodeError::TooLarge { width, height };
    let frame_width = u16::try_from(width).map_err(|_| too_large())?;
    let frame_height = u16::try_from(height).map_err(|_| too_large())?;
    let data = match format {
        FrameFormat::Gray8 => image.as_raw().clone(),
        FrameFormat::Png | FrameFormat::Jpeg => {
            let mut out = Cursor::new(Vec::new());
            let result = if format == FrameFormat::Png {
                image::codecs::png::PngEncoder::new(&mut out).write_image(
                    image.as_raw(),
                    width,
                    height,
                    image::ExtendedColorType::L8,
                )
            } else {
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY)
                    .write_image(image.as_raw(), width, height, image::ExtendedColorType::L8)
            };
            result.map_err(|source| ImageEncodeError::Codec { format, source })?;
            out.into_inner()
        }
    };
    Ok((frame_width, frame_height, ImageBytes::from(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> GrayImage {
        GrayImage::from_fn(width, height, |x, y| {
            image::Luma([((x * 3 + y * 5) % 256) as u8])
        })
    }

    #[test]
    fn every_format_round_trips() {
        let original = gradient(64, 48);
        for format in FrameFormat::ALL {
            let (width, height, data) = encode_image(&original, format).unwrap();
            assert_eq!((width, height), (64, 48));
            let decoded = decode_image(format, 64, 48, &data).unwrap();
            let max_error = decoded
                .as_gray()
                .pixels()
                .zip(original.pixels())
                .map(|(a, b)| a.0[0].abs_diff(b.0[0]))
                .max()
                .unwrap();
            let tolerance = if format == FrameFormat::Jpeg { 24 } else { 0 };
            assert!(max_error <= tolerance, "{format}: max error {max_error}");
        }
    }

    #[test]
    fn size_mismatch_and_garbage_are_errors() {
        let (_, _, png) = encode_image(&gradient(8, 8), FrameFormat::Png).unwrap();
        assert!(matches!(
            decode_image(FrameFormat::Png, 9, 8, &png),
            Err(ImageDecodeError::SizeMismatch { .. })
        ));
        assert!(matches!(
            decode_image(FrameFormat::Jpeg, 8, 8, b"not a jpeg"),
            Err(ImageDecodeError::Codec { .. })
        ));
        assert!(matches!(
            decode_image(FrameFormat::Gray8, 8, 8, &[0; 63]),
            Err(ImageDecodeError::Gray8Length { .. })
        ));
    }

    #[test]
    fn debug_is_redacted() {
        let image = PalmImage::new(gradient(4, 4));
        assert_eq!(format!("{image:?}"), "PalmImage(4×4, REDACTED)");
        assert_eq!(
            format!("{:?}", ImageBytes::from(vec![1, 2])),
            "ImageBytes(2 bytes, REDACTED)"
        );
    }
}
