//! Opening whatever the user points at: a table, an image folder, or an image CSV (path,label).

use std::path::Path;

use anyhow::{Context, Result};
use wick_core::data::{
    index_image_csv, index_image_folder_with_progress, read_table, sample_csv, ImageIndex,
    TableFormat, DEFAULT_CHUNK_BYTES, STREAM_THRESHOLD_BYTES,
};
use wick_core::polars::prelude::DataFrame;

pub enum Dataset {
    Table(DataFrame),
    Images(ImageIndex),
}

/// Rows of the sample a large CSV is opened with for training (as in the app).
const SAMPLE_ROWS: usize = 500_000;

/// A CSV to train on by streaming (over 1 GiB, or `force`d): the seeded sample it is opened with,
/// `None` for anything that loads whole.
pub fn large_csv_sample(path: &Path, force: bool, quiet: bool) -> Result<Option<DataFrame>> {
    let csv = matches!(TableFormat::from_path(path), Ok(TableFormat::Csv));
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if !csv || !(force || size > STREAM_THRESHOLD_BYTES) {
        return Ok(None);
    }
    if !quiet {
        eprintln!("{} is large ({:.1} GB): reading a sample for its columns, then training from the file in chunks", path.display(), size as f64 / 1e9);
    }
    let sample = sample_csv(path, DEFAULT_CHUNK_BYTES, SAMPLE_ROWS, 0, &mut |_, _| {})
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(sample))
}

/// Indexes an image folder, with a progress bar on a terminal for one of 1,000 files or more.
pub fn index_folder(path: &Path) -> Result<ImageIndex> {
    let mut bar: Option<indicatif::ProgressBar> = None;
    let index = index_image_folder_with_progress(path, &mut |done, total| {
        if total < 1000 {
            return;
        }
        let bar = bar.get_or_insert_with(|| {
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30.green/blue} {pos}/{len} images  {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(format!("indexing {}", path.display()));
            bar
        });
        bar.set_position(done as u64);
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    index.with_context(|| format!("opening image folder {}", path.display()))
}

pub fn open(path: &Path) -> Result<Dataset> {
    if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    if path.is_dir() {
        return Ok(Dataset::Images(index_folder(path)?));
    }
    let df = read_table(path).with_context(|| format!("opening {}", path.display()))?;
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    if names == ["path", "label"] {
        let index = index_image_csv(path)
            .with_context(|| format!("opening image list {}", path.display()))?;
        return Ok(Dataset::Images(index));
    }
    Ok(Dataset::Table(df))
}
