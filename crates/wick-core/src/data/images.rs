//! Image datasets: a folder with one sub-folder per class, or a CSV of `path,label`.
//! Indexed as a polars frame (path, label, width, height, channels); decoded with `image`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::table::read_table;
use crate::error::{Result, WickError};

/// The image file types Wick reads (lower case, without the dot).
pub const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "gif", "webp"];

/// A model's image input: pixels are resized to `width`×`height` and converted to `channels` (1 or 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    pub height: usize,
    pub width: usize,
    pub channels: usize,
}

impl ImageShape {
    pub fn len(&self) -> usize {
        self.height * self.width * self.channels
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A file left out of an image dataset, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SkippedFile {
    pub path: PathBuf,
    pub reason: String,
}

/// An indexed image dataset.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    pub root: PathBuf,
    /// Columns: path (str), label (str), width (u32), height (u32), channels (u8).
    pub frame: DataFrame,
    /// Class names, sorted.
    pub classes: Vec<String>,
    pub skipped: Vec<SkippedFile>,
}

/// One image's header facts.
struct Entry {
    path: PathBuf,
    label: String,
    width: u32,
    height: u32,
    channels: u8,
}

impl ImageIndex {
    /// Images per class, in class order.
    pub fn class_counts(&self) -> Vec<(String, usize)> {
        let mut counts: BTreeMap<String, usize> =
            self.classes.iter().map(|c| (c.clone(), 0)).collect();
        if let Ok(labels) = self.frame.column("label").and_then(|c| c.str().cloned()) {
            for label in labels.iter().flatten() {
                *counts.entry(label.to_string()).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    }

    pub fn len(&self) -> usize {
        self.frame.height()
    }

    pub fn is_empty(&self) -> bool {
        self.frame.height() == 0
    }

    /// Paths and class indices, in frame order.
    pub fn samples(&self) -> Result<Vec<(PathBuf, usize)>> {
        let ctx = |e| WickError::polars("image index", e);
        let paths = self
            .frame
            .column("path")
            .and_then(|c| c.str().cloned())
            .map_err(ctx)?;
        let labels = self
            .frame
            .column("label")
            .and_then(|c| c.str().cloned())
            .map_err(ctx)?;
        paths
            .iter()
            .zip(labels.iter())
            .map(|(p, l)| {
                let (p, l) = (p.unwrap_or_default(), l.unwrap_or_default());
                let class = self.classes.iter().position(|c| c == l).ok_or_else(|| {
                    WickError::data(
                        &self.root,
                        format!("image {p} has label {l:?}, which is not one of the classes"),
                    )
                })?;
                Ok((PathBuf::from(p), class))
            })
            .collect()
    }

    /// The input shape a model should use by default: the most common size, scaled so the longer side is
    /// at most `max_side`, and 3 channels if any image has colour.
    pub fn default_shape(&self, max_side: usize) -> ImageShape {
        let col = |name: &str| -> Vec<u32> {
            self.frame
                .column(name)
                .and_then(|c| c.cast(&DataType::UInt32))
                .ok()
                .and_then(|c| c.u32().ok().map(|ca| ca.iter().flatten().collect()))
                .unwrap_or_default()
        };
        let (widths, heights, channels) = (col("width"), col("height"), col("channels"));
        let mut sizes: BTreeMap<(u32, u32), usize> = BTreeMap::new();
        for (w, h) in widths.iter().zip(heights.iter()) {
            *sizes.entry((*w, *h)).or_default() += 1;
        }
        let (w, h) = sizes
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(s, _)| s)
            .unwrap_or((32, 32));
        let scale = (max_side as f64 / w.max(h) as f64).min(1.0);
        let channels = if channels.iter().any(|&c| c >= 3) {
            3
        } else {
            1
        };
        ImageShape {
            width: ((w as f64 * scale).round() as usize).max(1),
            height: ((h as f64 * scale).round() as usize).max(1),
            channels,
        }
    }
}

/// Indexes a folder with one sub-folder per class. Files that are not images, or whose header can't be
/// read, are skipped and listed in `skipped`. A class with fewer than 2 images is an error.
pub fn index_image_folder(root: &Path) -> Result<ImageIndex> {
    index_image_folder_with_progress(root, &mut |_, _| {})
}

/// Files whose headers are read together (on rayon's threads) between progress reports.
const PROBE_CHUNK_FILES: usize = 256;

/// [`index_image_folder`], reporting `(files read, files in all)` as the headers are read: a folder
/// of 10,000 photos on a slow disk takes a while.
pub fn index_image_folder_with_progress(
    root: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImageIndex> {
    use rayon::prelude::*;
    let dirs = read_dir_sorted(root)?;
    let class_dirs: Vec<PathBuf> = dirs.iter().filter(|p| p.is_dir()).cloned().collect();
    if class_dirs.is_empty() {
        return Err(WickError::data(
            root,
            "has no sub-folders: put the images of each class in a sub-folder named after the class",
        ));
    }
    let mut skipped = Vec::new();
    for file in dirs.iter().filter(|p| p.is_file()) {
        skipped.push(SkippedFile {
            path: file.clone(),
            reason: "not inside a class sub-folder".into(),
        });
    }
    // Listing first (fast), so the progress has a total; then the headers, a chunk at a time.
    let mut files = Vec::new();
    for dir in &class_dirs {
        let label = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        for file in read_dir_sorted(dir)? {
            if file.is_dir() {
                skipped.push(SkippedFile {
                    path: file,
                    reason: "nested folder (only one level of class folders is read)".into(),
                });
            } else {
                files.push((file, label.clone()));
            }
        }
    }
    let mut entries = Vec::new();
    progress(0, files.len());
    for (i, chunk) in files.chunks(PROBE_CHUNK_FILES).enumerate() {
        let probed: Vec<_> = chunk
            .par_iter()
            .map(|(file, _)| probe_image(file))
            .collect();
        for ((file, label), probe) in chunk.iter().zip(probed) {
            match probe {
                Ok((width, height, channels)) => entries.push(Entry {
                    path: file.clone(),
                    label: label.clone(),
                    width,
                    height,
                    channels,
                }),
                Err(reason) => skipped.push(SkippedFile {
                    path: file.clone(),
                    reason,
                }),
            }
        }
        progress(
            (i * PROBE_CHUNK_FILES + chunk.len()).min(files.len()),
            files.len(),
        );
    }
    build_index(root, entries, skipped)
}

/// Indexes a CSV with columns `path` and `label`; relative paths are relative to the CSV's folder.
pub fn index_image_csv(csv: &Path) -> Result<ImageIndex> {
    let df = read_table(csv)?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let get = |name: &str| {
        df.column(name)
            .and_then(|c| c.cast(&DataType::String))
            .map_err(|_| {
                WickError::data(
                    csv,
                    format!("needs a column named `{name}` (an image CSV has columns path,label)"),
                )
            })
    };
    let (paths, labels) = (get("path")?, get("label")?);
    let (paths, labels) = (
        paths.str().map_err(|e| WickError::polars("path", e))?,
        labels.str().map_err(|e| WickError::polars("label", e))?,
    );
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    for (row, (p, l)) in paths.iter().zip(labels.iter()).enumerate() {
        let (Some(p), Some(l)) = (p, l) else {
            return Err(WickError::data(
                csv,
                format!("row {} has an empty path or label", row + 1),
            ));
        };
        let path = base.join(p);
        match probe_image(&path) {
            Ok((width, height, channels)) => entries.push(Entry {
                path,
                label: l.to_string(),
                width,
                height,
                channels,
            }),
            Err(reason) => skipped.push(SkippedFile { path, reason }),
        }
    }
    build_index(csv, entries, skipped)
}

fn build_index(root: &Path, entries: Vec<Entry>, skipped: Vec<SkippedFile>) -> Result<ImageIndex> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for e in &entries {
        *counts.entry(e.label.clone()).or_default() += 1;
    }
    if counts.is_empty() {
        return Err(WickError::data(
            root,
            format!(
                "contains no readable images ({} files skipped); supported: {}",
                skipped.len(),
                IMAGE_EXTENSIONS.join(", ")
            ),
        ));
    }
    if let Some((class, n)) = counts.iter().find(|(_, n)| **n < 2) {
        return Err(WickError::data(
            root,
            format!("class `{class}` has {n} image(s); every class needs at least 2. Add images to it or remove its folder"),
        ));
    }
    if counts.len() < 2 {
        return Err(WickError::data(
            root,
            "has only one class: a classifier needs at least 2 class folders",
        ));
    }
    let frame = DataFrame::new_infer_height(vec![
        Column::new(
            "path".into(),
            entries
                .iter()
                .map(|e| e.path.to_string_lossy().to_string())
                .collect::<Vec<_>>(),
        ),
        Column::new(
            "label".into(),
            entries.iter().map(|e| e.label.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            "width".into(),
            entries.iter().map(|e| e.width).collect::<Vec<_>>(),
        ),
        Column::new(
            "height".into(),
            entries.iter().map(|e| e.height).collect::<Vec<_>>(),
        ),
        Column::new(
            "channels".into(),
            entries
                .iter()
                .map(|e| e.channels as u32)
                .collect::<Vec<_>>(),
        ),
    ])
    .map_err(|e| WickError::polars("image index", e))?;
    Ok(ImageIndex {
        root: root.to_path_buf(),
        frame,
        classes: counts.into_keys().collect(),
        skipped,
    })
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| WickError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

/// Reads an image's header: (width, height, channels), or why it can't be used.
fn probe_image(path: &Path) -> std::result::Result<(u32, u32, u8), String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if !IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        return Err(format!(
            "unsupported file type (.{ext}); supported: {}",
            IMAGE_EXTENSIONS.join(", ")
        ));
    }
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if len == 0 {
        return Err("empty file (0 bytes)".into());
    }
    let reader = ImageReader::open(path).map_err(|e| e.to_string())?;
    let reader = reader.with_guessed_format().map_err(|e| e.to_string())?;
    let decoder = reader
        .into_decoder()
        .map_err(|e| format!("corrupt or unreadable image: {e}"))?;
    let (w, h) = decoder.dimensions();
    let channels = decoder.color_type().channel_count();
    Ok((w, h, channels))
}

/// Decodes an image file into `shape`, as f32 in `[0, 1]`, channel-first (C, H, W).
pub fn load_image(path: &Path, shape: ImageShape) -> Result<Vec<f32>> {
    Ok(load_image_u8(path, shape)?
        .into_iter()
        .map(|v| v as f32 / 255.0)
        .collect())
}

/// Decodes an image file into `shape` as channel-first bytes (a quarter of the f32 pixels' memory;
/// `v / 255` gives [`load_image`]'s values exactly).
pub fn load_image_u8(path: &Path, shape: ImageShape) -> Result<Vec<u8>> {
    image_to_chw_u8(&decode_image(path)?, shape)
}

/// The most bytes one image may take decoded (the image crate's default `max_alloc`): a
/// 30,000 × 30,000 PNG (a decompression bomb, or a scan far larger than any model input) is refused
/// from its header, before anything is allocated.
pub const MAX_DECODED_IMAGE_BYTES: u64 = 512 << 20;

/// Decodes an image file upright: its EXIF orientation applied (phone photos are often stored
/// sideways), refusing one larger than [`MAX_DECODED_IMAGE_BYTES`] decoded. (The image crate's own
/// `max_alloc` is advisory, and its PNG decoder does not check it before allocating the image.)
pub fn decode_image(path: &Path) -> Result<DynamicImage> {
    let unreadable = |e: image::ImageError| {
        WickError::data(
            path,
            format!("is not a readable image ({e}); replace or remove the file"),
        )
    };
    let mut decoder = ImageReader::open(path)
        .map_err(|e| WickError::io(path, e))?
        .with_guessed_format()
        .map_err(|e| WickError::io(path, e))?
        .into_decoder()
        .map_err(unreadable)?;
    let (width, height) = decoder.dimensions();
    if decoder.total_bytes() > MAX_DECODED_IMAGE_BYTES {
        return Err(WickError::data(
            path,
            format!(
                "is {width}×{height} pixels, {} MB decoded, over the {} MB limit for one image (a decompression bomb, or far larger than any model input); resize it first",
                decoder.total_bytes() >> 20,
                MAX_DECODED_IMAGE_BYTES >> 20
            ),
        ));
    }
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Resizes and converts a decoded image to channel-first bytes (grey, or RGB from any colour type:
/// CMYK, 16-bit and alpha images are converted).
///
/// The policy, the same wherever an image file becomes model input (training, Evaluate, *Try it*,
/// `wick predict`): the largest centred region with the model input's aspect ratio is cut out (a
/// 640×480 photo for a square input loses 80 pixels left and right), then resized by a bilinear
/// (triangle) convolution scaled to the reduction, as Pillow's `BILINEAR` is, by fast_image_resize.
/// Nothing is stretched.
pub fn image_to_chw_u8(img: &DynamicImage, shape: ImageShape) -> Result<Vec<u8>> {
    let hwc = image_to_hwc_u8(img, shape)?;
    let channels = shape.channels.clamp(1, 3);
    let plane = shape.height * shape.width;
    let mut out = vec![0u8; shape.len()];
    for i in 0..plane {
        for c in 0..channels {
            out[c * plane + i] = hwc[i * channels + c];
        }
    }
    Ok(out)
}

/// As [`image_to_chw_u8`], interleaved (H, W, C): what an inference request's image tensor holds.
pub fn image_to_hwc_u8(img: &DynamicImage, shape: ImageShape) -> Result<Vec<u8>> {
    use fast_image_resize::{FilterType as Filter, ResizeAlg, ResizeOptions, Resizer};
    let (w, h) = (shape.width as u32, shape.height as u32);
    let src = if shape.channels == 1 {
        DynamicImage::ImageLuma8(img.to_luma8())
    } else {
        DynamicImage::ImageRgb8(img.to_rgb8())
    };
    if src.width() == w && src.height() == h {
        return Ok(src.into_bytes());
    }
    let mut dst = DynamicImage::new(w, h, src.color());
    Resizer::new()
        .resize(
            &src,
            &mut dst,
            &ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(Filter::Bilinear))
                .fit_into_destination(None),
        )
        .map_err(|e| {
            WickError::InvalidSpec(format!("an image could not be resized to {w}×{h}: {e}"))
        })?;
    Ok(dst.into_bytes())
}

/// Converts interleaved u8 pixels (H, W, C) of the model's size into channel-first f32 in `[0, 1]`.
pub fn hwc_u8_to_chw(pixels: &[u8], shape: ImageShape) -> Result<Vec<f32>> {
    if pixels.len() != shape.len() {
        return Err(WickError::PredictInput(format!(
            "expected {}×{}×{} = {} pixel values, got {}",
            shape.height,
            shape.width,
            shape.channels,
            shape.len(),
            pixels.len()
        )));
    }
    let plane = shape.height * shape.width;
    let mut out = vec![0f32; shape.len()];
    for i in 0..plane {
        for c in 0..shape.channels {
            out[c * plane + i] = pixels[i * shape.channels + c] as f32 / 255.0;
        }
    }
    Ok(out)
}
