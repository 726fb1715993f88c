//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed unwrap is a failed test

use std::path::PathBuf;

pub fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sample-data")
        .join(name)
}

/// Writes `contents` to `name` inside a fresh temporary folder.
pub fn write_temp(dir: &tempfile::TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A randomly initialised candle-transformers ResNet-18 (no final layer) saved as safetensors in
/// `dir`, so backbone loading runs offline.
pub fn random_resnet18(dir: &std::path::Path) -> PathBuf {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};
    let weights = dir.join("resnet18.safetensors");
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    candle_transformers::models::resnet::resnet18_no_final_layer(vb).unwrap();
    varmap.save(&weights).unwrap();
    weights
}
