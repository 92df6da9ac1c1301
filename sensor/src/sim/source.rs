//! Where the simulator's images come from.

use std::path::{Path, PathBuf};

use image::GrayImage;

use crate::codec::Band;

/// A supply of images for the simulator. Any `Iterator<Item = GrayImage> + Send` is one.
pub trait ImageSource: Send {
    /// The next image, or `None` when the source is exhausted (the capture then ends).
    fn next_image(&mut self) -> Option<GrayImage>;

    /// The frames of one presentation burst (protocol 1.1): one image per entry of `bands`, each
    /// as that band's light shows the presented object, or `None` when the source is exhausted.
    ///
    /// The default has no model of light: it repeats the next image for every band (a flat,
    /// rigid object). Sources that model illumination (the synthetic hands and attack species of
    /// `palmgate sensor simulate --species`) override it.
    fn next_burst(&mut self, bands: &[Band]) -> Option<Vec<GrayImage>> {
        let image = self.next_image()?;
        Some(bands.iter().map(|_| image.clone()).collect())
    }
}

impl<I> ImageSource for I
where
    I: Iterator<Item = GrayImage> + Send,
{
    fn next_image(&mut self) -> Option<GrayImage> {
        self.next()
    }
}

/// Why a folder cannot serve images.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FolderError {
    /// The folder cannot be listed.
    #[error("cannot read image folder {path}")]
    Read {
        /// The folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No `.png`, `.jpg` or `.jpeg` file in the folder.
    #[error("no PNG or JPEG image in {0}")]
    Empty(PathBuf),
}

/// The PNG and JPEG files of a folder, in name order, loaded one at a time and served in a loop.
/// Files that do not decode are skipped with a warning.
#[derive(Debug, Clone)]
pub struct FolderSource {
    files: Vec<PathBuf>,
    next: usize,
}

impl FolderSource {
    /// Lists the images of `dir` (not recursively).
    pub fn open(dir: &Path) -> Result<Self, FolderError> {
        let read_error = |source| FolderError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_error)? {
            let path = entry.map_err(read_error)?.path();
            let is_image = path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| {
                    matches!(ext.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                });
            if is_image && path.is_file() {
                files.push(path);
            }
        }
        if files.is_empty() {
            return Err(FolderError::Empty(dir.to_path_buf()));
        }
        files.sort();
        Ok(Self { files, next: 0 })
    }

    /// The files served, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

impl Iterator for FolderSource {
    type Item = GrayImage;

    /// The next image that decodes; `None` only when none of the files does.
    fn next(&mut self) -> Option<GrayImage> {
        for _ in 0..self.files.len() {
            let path = &self.files[self.next];
            self.next = (self.next + 1) % self.files.len();
            match image::open(path) {
                Ok(image) => return Some(image.into_luma8()),
                Err(error) => {
                    tracing::warn!(file = %path.display(), %error, "skipping image that does not load");
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_cycles_in_name_order_and_skips_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        GrayImage::from_pixel(4, 4, image::Luma([20]))
            .save(dir.path().join("b.png"))
            .unwrap();
        GrayImage::from_pixel(4, 4, image::Luma([10]))
            .save(dir.path().join("a.png"))
            .unwrap();
        std::fs::write(dir.path().join("c.jpg"), b"not a jpeg").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"ignored").unwrap();
        let mut source = FolderSource::open(dir.path()).unwrap();
        assert_eq!(source.files().len(), 3);
        let firsts: Vec<u8> = (0..4)
            .map(|_| source.next_image().unwrap().get_pixel(0, 0).0[0])
            .collect();
        assert_eq!(firsts, vec![10, 20, 10, 20]);
    }

    #[test]
    fn empty_folder_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            FolderSource::open(dir.path()),
            Err(FolderError::Empty(_))
        ));
        assert!(matches!(
            FolderSource::open(&dir.path().join("missing")),
            Err(FolderError::Read { .. })
        ));
    }
}
