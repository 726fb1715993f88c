//! Opening whatever the user points at: a table, an image folder, or an image CSV (path,label).

use std::path::Path;

use anyhow::{Context, Result};
use wick_core::polars::prelude::DataFrame;
use wick_core::data::{index_image_csv, index_image_folder, read_table, ImageIndex};

pub enum Dataset {
    Table(DataFrame),
    Images(ImageIndex),
}

pub fn open(path: &Path) -> Result<Dataset> {
    if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    if path.is_dir() {
        let index = index_image_folder(path).with_context(|| format!("opening image folder {}", path.display()))?;
        return Ok(Dataset::Images(index));
    }
    let df = read_table(path).with_context(|| format!("opening {}", path.display()))?;
    let names: Vec<&str> = df.get_column_names().iter().map(|s| s.as_str()).collect();
    if names == ["path", "label"] {
        let index = index_image_csv(path).with_context(|| format!("opening image list {}", path.display()))?;
        return Ok(Dataset::Images(index));
    }
    Ok(Dataset::Table(df))
}
