//! Which data a model was trained on: a file's or an image folder's SHA-256, kept in the manifest.

use std::io::Read;
use std::path::{Path, PathBuf};

use polars::prelude::{CsvWriter, DataFrame, SerWriter};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, WickError};

/// Identifies the data a model was trained on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetFingerprint {
    /// File or folder name (not the full path, which may hold a user name).
    pub source: String,
    pub sha256: String,
    pub rows: usize,
}

/// Hashes a data file.
pub fn fingerprint_file(path: &Path, rows: usize) -> Result<DatasetFingerprint> {
    let mut hasher = Sha256::new();
    hash_file(path, &mut hasher)?;
    Ok(DatasetFingerprint {
        source: file_name(path),
        sha256: hex::encode(hasher.finalize()),
        rows,
    })
}

/// The fingerprint of a file whose SHA-256 was taken while it was read for something else (a large
/// CSV read in chunks), so it is not read again.
pub fn fingerprint_hashed(path: &Path, sha256: String, rows: usize) -> DatasetFingerprint {
    DatasetFingerprint {
        source: file_name(path),
        sha256,
        rows,
    }
}

/// Hashes a set of files (an image dataset): each file's path relative to `root`, then its bytes.
pub fn fingerprint_files(root: &Path, paths: &[PathBuf]) -> Result<DatasetFingerprint> {
    let mut sorted: Vec<&PathBuf> = paths.iter().collect();
    sorted.sort();
    let mut hasher = Sha256::new();
    for p in sorted {
        let rel = p.strip_prefix(root).unwrap_or(p);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0u8]);
        hash_file(p, &mut hasher)?;
    }
    Ok(DatasetFingerprint {
        source: file_name(root),
        sha256: hex::encode(hasher.finalize()),
        rows: paths.len(),
    })
}

/// The fingerprint of a file plus rows added to it in memory (*Improve with live data*): the file's
/// bytes and the added rows as CSV text hashed together, so runs on the same file with other live
/// rows have other fingerprints. `rows` counts both.
pub fn fingerprint_with_rows(
    path: &Path,
    added: &DataFrame,
    rows: usize,
) -> Result<DatasetFingerprint> {
    let mut hasher = Sha256::new();
    hash_file(path, &mut hasher)?;
    let mut csv = Vec::new();
    CsvWriter::new(&mut csv)
        .finish(&mut added.clone())
        .map_err(|e| WickError::polars("hashing the added rows", e))?;
    hasher.update(&csv);
    Ok(DatasetFingerprint {
        source: format!("{} + {} live rows", file_name(path), added.height()),
        sha256: hex::encode(hasher.finalize()),
        rows,
    })
}

/// Feeds a file's bytes to `hasher`.
pub fn hash_file(path: &Path, hasher: &mut Sha256) -> Result<()> {
    let mut file = std::fs::File::open(path).map_err(|e| WickError::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| WickError::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

/// A path's last part (not the full path, which may hold a user name).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.display().to_string())
}
