//! Model packages: a `.wick` directory holding `model.safetensors`, the `wick.json` manifest and a
//! `README.md` model card. Saving is atomic: the package is written beside its destination and
//! renamed into place, so a crash leaves either the old package or the new one, never half of one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::data::fingerprint::{file_name, hash_file, DatasetFingerprint};
use crate::data::Task;
use crate::error::{Result, WickError};
use crate::metrics::Metrics;
use crate::model::spec::dense_layers;
use crate::model::transfer::FrozenBackbone;
use crate::model::{LinearFit, Model, ModelInput, ModelSpec, Network, TargetInfo, Weights};
use crate::run::{TrainConfig, TrainReport};

pub const MANIFEST_FILE: &str = "wick.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CARD_FILE: &str = "README.md";
pub const BACKBONE_FILE: &str = "backbone.safetensors";
/// Tree models keep their ensemble here instead of `model.safetensors`: JSON, documented in
/// docs/tree-format.md.
pub const TREES_FILE: &str = "trees.json";

/// The file holding a model's weights (its sha256 is the manifest's `weights_sha256`).
pub fn weights_file(spec: &ModelSpec) -> &'static str {
    if spec.is_tree() {
        TREES_FILE
    } else {
        WEIGHTS_FILE
    }
}
/// Bumped when the manifest changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// An input or output tensor as an inference server describes it (Open Inference Protocol names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    /// `FP32`, `FP64`, `UINT8`, `BYTES`, …
    pub datatype: String,
    /// `-1` is a variable dimension (the batch).
    pub shape: Vec<i64>,
}

/// The `wick.json` manifest: everything needed to use the weights, readable without Wick.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub wick_version: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub name: String,
    pub spec: ModelSpec,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Preprocessing parameters (tabular encoders or the image shape).
    pub preprocessing: ModelInput,
    pub target: TargetInfo,
    /// Held-out test metrics; `null` when the model trained on every row (test fraction 0).
    #[serde(default)]
    pub metrics: Option<Metrics>,
    pub history: Vec<crate::run::MetricPoint>,
    pub dataset: DatasetFingerprint,
    pub seed: u64,
    pub train_config: TrainConfig,
    pub weights_sha256: String,
    /// A table model's training distributions per feature and of the target (drift monitoring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_profile: Option<crate::drift::TrainingProfile>,
}

/// Input tensors as a server would expose them.
pub fn input_specs(input: &ModelInput) -> Vec<TensorSpec> {
    match input {
        ModelInput::Tabular { preprocessor } => preprocessor
            .encoders
            .iter()
            .map(|e| TensorSpec {
                name: e.name().to_string(),
                datatype: if e.is_text() {
                    "BYTES".into()
                } else {
                    "FP64".into()
                },
                shape: vec![-1],
            })
            .collect(),
        ModelInput::Image { shape } => vec![TensorSpec {
            name: "image".into(),
            datatype: "UINT8".into(),
            shape: vec![
                -1,
                shape.height as i64,
                shape.width as i64,
                shape.channels as i64,
            ],
        }],
    }
}

/// Output tensors as a server would expose them.
pub fn output_specs(target: &TargetInfo) -> Vec<TensorSpec> {
    match target.task {
        Task::Regression => vec![TensorSpec {
            name: target.name.clone(),
            datatype: "FP64".into(),
            shape: vec![-1],
        }],
        Task::Classification => vec![
            TensorSpec {
                name: target.name.clone(),
                datatype: "BYTES".into(),
                shape: vec![-1],
            },
            TensorSpec {
                name: "probabilities".into(),
                datatype: "FP32".into(),
                shape: vec![-1, target.labels.len() as i64],
            },
        ],
    }
}

/// Writes `model` as a package directory at `path`, replacing any package already there.
pub fn save_package(
    model: &Model,
    report: &TrainReport,
    name: &str,
    path: &Path,
) -> Result<Manifest> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| WickError::io(&parent, e))?;
    if path.exists() && !path.join(MANIFEST_FILE).exists() {
        return Err(WickError::package(
            path,
            "exists and is not a Wick package; choose another output path so nothing of yours is overwritten",
        ));
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.", file_name(path)))
        .suffix(".partial")
        .tempdir_in(&parent)
        .map_err(|e| WickError::io(&parent, e))?;
    let dir = staging.path();

    let mut spec = model.spec.clone();
    let weights_path = dir.join(weights_file(&spec));
    let tensors: HashMap<String, Tensor> = match &model.weights {
        Weights::Trees(ensemble) => {
            let json = serde_json::to_vec(ensemble)
                .map_err(|e| WickError::package(path, format!("trees: {e}")))?;
            write_synced(&weights_path, &json)?;
            HashMap::new()
        }
        Weights::Linear(fit) => HashMap::from([
            (
                "linear.coefficients".to_string(),
                Tensor::from_slice(&fit.coefficients, fit.coefficients.len(), &Device::Cpu)?,
            ),
            (
                "linear.intercept".to_string(),
                Tensor::from_slice(&[fit.intercept], 1, &Device::Cpu)?,
            ),
        ]),
        Weights::Network(net) => net.tensors()?,
        Weights::Transfer {
            head,
            backbone: frozen,
        } => {
            if let ModelSpec::Transfer { backbone } = &mut spec {
                let dest = dir.join(BACKBONE_FILE);
                if backbone.fine_tune {
                    // The pretrained tensors with the fine-tuned last stage in their place.
                    let mut tensors = crate::model::transfer::read_weights(
                        backbone.arch,
                        &backbone.weights,
                        &Device::Cpu,
                    )?;
                    tensors.extend(frozen.last_stage_tensors()?);
                    candle_core::safetensors::save(&tensors, &dest)?;
                } else {
                    std::fs::copy(&backbone.weights, &dest)
                        .map_err(|e| WickError::io(&backbone.weights, e))?;
                }
                backbone.weights = PathBuf::from(BACKBONE_FILE);
            }
            head.tensors()?
        }
    };
    if !model.spec.is_tree() {
        let tensors: HashMap<String, Tensor> = tensors
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?)))
            .collect::<Result<_>>()?;
        candle_core::safetensors::save(&tensors, &weights_path)?;
    }
    let mut hasher = Sha256::new();
    hash_file(&weights_path, &mut hasher)?;

    let manifest = Manifest {
        format_version: FORMAT_VERSION,
        wick_version: env!("CARGO_PKG_VERSION").to_string(),
        created_at: chrono::Utc::now(),
        name: name.to_string(),
        spec,
        inputs: input_specs(&model.input),
        outputs: output_specs(&model.target),
        preprocessing: model.input.clone(),
        target: model.target.clone(),
        metrics: report.test.clone(),
        history: report.history.clone(),
        dataset: report.dataset.clone(),
        seed: report.config.seed,
        train_config: report.config.clone(),
        weights_sha256: hex::encode(hasher.finalize()),
        training_profile: report.training_profile.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| WickError::package(path, format!("manifest: {e}")))?;
    write_synced(&dir.join(MANIFEST_FILE), &json)?;
    write_synced(&dir.join(CARD_FILE), model_card(&manifest).as_bytes())?;

    // Swap into place: move any old package aside, rename the new one in, then delete the old one.
    let staged = staging.keep();
    let backup = parent.join(format!(".{}.old-{}", file_name(path), std::process::id()));
    let had_old = path.exists();
    if had_old {
        std::fs::rename(path, &backup).map_err(|e| WickError::io(path, e))?;
    }
    if let Err(e) = std::fs::rename(&staged, path) {
        if had_old {
            let _ = std::fs::rename(&backup, path);
        }
        let _ = std::fs::remove_dir_all(&staged);
        return Err(WickError::io(path, e));
    }
    if had_old {
        let _ = std::fs::remove_dir_all(&backup);
    }
    Ok(manifest)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(|e| WickError::io(path, e))?;
    f.write_all(bytes).map_err(|e| WickError::io(path, e))?;
    f.sync_all().map_err(|e| WickError::io(path, e))
}

/// What a caller sends a model: named table columns, or images (any size; the model resizes them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerInput {
    Table {
        columns: std::collections::BTreeSet<String>,
    },
    Images,
}

impl CallerInput {
    pub fn of(manifest: &Manifest) -> Self {
        match &manifest.preprocessing {
            ModelInput::Tabular { preprocessor } => Self::Table {
                columns: preprocessor
                    .encoders
                    .iter()
                    .map(|e| e.name().to_string())
                    .collect(),
            },
            ModelInput::Image { .. } => Self::Images,
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Images => "images".into(),
            Self::Table { columns } => {
                let names: Vec<&str> = columns.iter().map(String::as_str).take(6).collect();
                let more = columns.len().saturating_sub(names.len());
                let tail = if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                };
                format!("table rows with the columns {}{tail}", names.join(", "))
            }
        }
    }
}

/// Why `new` can't answer the calls that `serving` answers today: it takes another kind of input, or
/// needs table columns the callers don't send. `None` when every call `serving` takes fits `new`
/// (fewer columns are fine: extra columns are ignored).
pub fn caller_input_change(serving: &Manifest, new: &Manifest) -> Option<String> {
    let (was, now) = (CallerInput::of(serving), CallerInput::of(new));
    match (&was, &now) {
        (CallerInput::Images, CallerInput::Images) => None,
        (CallerInput::Table { columns: sent }, CallerInput::Table { columns: needed }) => {
            let missing: Vec<&str> = needed.difference(sent).map(String::as_str).collect();
            (!missing.is_empty()).then(|| {
                format!(
                    "it needs the column{} {}, which callers of the serving version don't send",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", ")
                )
            })
        }
        _ => Some(format!(
            "it takes {}, but the serving version takes {}",
            now.describe(),
            was.describe()
        )),
    }
}

/// Reads a package's manifest only.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    let manifest_path = path.join(MANIFEST_FILE);
    if !path.is_dir() {
        return Err(WickError::package(
            path,
            "is not a model package folder (it should contain wick.json and model.safetensors)",
        ));
    }
    let bytes = std::fs::read(&manifest_path).map_err(|e| WickError::io(&manifest_path, e))?;
    let manifest: Manifest = serde_json::from_slice(&bytes)
        .map_err(|e| WickError::package(path, format!("wick.json is not a valid manifest ({e}); the package may be from another Wick version or damaged")))?;
    if manifest.format_version > FORMAT_VERSION {
        return Err(WickError::package(
            path,
            format!("was written by a newer Wick (format {}, this Wick reads up to {FORMAT_VERSION}); update Wick", manifest.format_version),
        ));
    }
    Ok(manifest)
}

/// Loads a package onto the CPU.
pub fn load_package(path: &Path) -> Result<(Model, Manifest)> {
    load_package_on(path, &Device::Cpu)
}

/// Loads a package onto `device`.
pub fn load_package_on(path: &Path, device: &Device) -> Result<(Model, Manifest)> {
    let manifest = read_manifest(path)?;
    let weights_name = weights_file(&manifest.spec);
    let weights_path = path.join(weights_name);
    let mut hasher = Sha256::new();
    hash_file(&weights_path, &mut hasher)?;
    if hex::encode(hasher.finalize()) != manifest.weights_sha256 {
        return Err(WickError::package(path, format!("{weights_name} does not match the checksum in wick.json: the package is damaged; export it again")));
    }
    // Tree models keep JSON, not tensors.
    let tensors = if manifest.spec.is_tree() {
        HashMap::new()
    } else {
        candle_core::safetensors::load(&weights_path, device).map_err(|e| {
            WickError::package(path, format!("model.safetensors can't be read ({e})"))
        })?
    };
    let n_out = match manifest.target.task {
        Task::Classification => manifest.target.labels.len(),
        Task::Regression => 1,
    };
    let input_dims = match &manifest.preprocessing {
        ModelInput::Tabular { preprocessor } => vec![preprocessor.width()],
        ModelInput::Image { shape } => vec![shape.channels, shape.height, shape.width],
    };
    let mut spec = manifest.spec.clone();
    let weights = match &mut spec {
        ModelSpec::Linear { .. } => {
            let get = |name: &str| -> Result<Vec<f64>> {
                let t = tensors.get(name).ok_or_else(|| {
                    WickError::package(path, format!("model.safetensors has no `{name}`"))
                })?;
                Ok(t.to_dtype(DType::F64)?
                    .to_device(&Device::Cpu)?
                    .to_vec1::<f64>()?)
            };
            let intercept = get("linear.intercept")?
                .first()
                .copied()
                .unwrap_or_default();
            Weights::Linear(LinearFit {
                coefficients: get("linear.coefficients")?,
                intercept,
            })
        }
        ModelSpec::Logistic | ModelSpec::Mlp { .. } => Weights::Network(Network::from_tensors(
            &input_dims,
            &dense_layers(&manifest.spec),
            n_out,
            &tensors,
            device,
        )?),
        ModelSpec::Cnn { layers, .. } => Weights::Network(Network::from_tensors(
            &input_dims,
            layers,
            n_out,
            &tensors,
            device,
        )?),
        ModelSpec::Gbdt { .. } | ModelSpec::Forest { .. } => {
            let bytes =
                std::fs::read(&weights_path).map_err(|e| WickError::io(&weights_path, e))?;
            Weights::Trees(serde_json::from_slice(&bytes).map_err(|e| {
                WickError::package(path, format!("{TREES_FILE} can't be read ({e}); the package may be damaged: export it again"))
            })?)
        }
        ModelSpec::Transfer { backbone } => {
            backbone.weights = path.join(&backbone.weights);
            let frozen = FrozenBackbone::load(backbone.arch, &backbone.weights, device)?;
            let head = Network::from_tensors(
                &[backbone.arch.feature_len()],
                &[],
                n_out,
                &tensors,
                device,
            )?;
            Weights::Transfer {
                backbone: frozen,
                head,
            }
        }
    };
    let model = Model::new(
        spec,
        manifest.preprocessing.clone(),
        manifest.target.clone(),
        weights,
    )?;
    Ok((model, manifest))
}

/// Packs a package folder into one uncompressed tar archive (for uploading or sharing as one file).
/// The archive holds the package's files at its root, in a fixed order with fixed metadata, so the
/// same package always gives the same bytes (and the same sha256).
pub fn pack_package(path: &Path) -> Result<Vec<u8>> {
    read_manifest(path)?;
    let mut names: Vec<String> = std::fs::read_dir(path)
        .map_err(|e| WickError::io(path, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for name in names {
        let bytes =
            std::fs::read(path.join(&name)).map_err(|e| WickError::io(path.join(&name), e))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder
            .append_data(&mut header, &name, bytes.as_slice())
            .map_err(|e| WickError::io(path, e))?;
    }
    builder.into_inner().map_err(|e| WickError::io(path, e))
}

/// Unpacks an archive made by [`pack_package`] into `dest` (created; must not exist yet) and checks
/// that it is a readable package. Only plain files at the archive's root are accepted.
pub fn unpack_package(archive: &[u8], dest: &Path) -> Result<Manifest> {
    std::fs::create_dir_all(dest).map_err(|e| WickError::io(dest, e))?;
    let mut tar = tar::Archive::new(archive);
    let entries = tar
        .entries()
        .map_err(|e| WickError::package(dest, format!("is not a Wick package archive ({e})")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| WickError::package(dest, format!("archive is damaged ({e})")))?;
        let name = entry
            .path()
            .map_err(|e| WickError::package(dest, format!("archive entry has a bad name ({e})")))?
            .to_path_buf();
        let plain = entry.header().entry_type().is_file()
            && name.components().count() == 1
            && !name.to_string_lossy().starts_with('.');
        if !plain {
            return Err(WickError::package(
                dest,
                format!(
                    "archive entry {} is not a plain file at the top level",
                    name.display()
                ),
            ));
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| WickError::io(dest.join(&name), e))?;
        write_synced(&dest.join(&name), &bytes)?;
    }
    read_manifest(dest)
}

/// A human-readable model card.
fn model_card(m: &Manifest) -> String {
    let mut s = format!(
        "# {}\n\nA Wick model ({:?}) predicting `{}` ({:?}).\n\n",
        m.name,
        m.spec.kind_name(),
        m.target.name,
        m.target.task
    );
    s.push_str("## Inputs\n\n| name | datatype | shape |\n|---|---|---|\n");
    for t in &m.inputs {
        s.push_str(&format!(
            "| {} | {} | {:?} |\n",
            t.name, t.datatype, t.shape
        ));
    }
    s.push_str("\n## Outputs\n\n| name | datatype | shape |\n|---|---|---|\n");
    for t in &m.outputs {
        s.push_str(&format!(
            "| {} | {} | {:?} |\n",
            t.name, t.datatype, t.shape
        ));
    }
    if !m.target.labels.is_empty() {
        s.push_str(&format!("\nClasses: {}\n", m.target.labels.join(", ")));
    }
    s.push_str("\n## Test metrics\n\n");
    match &m.metrics {
        Some(metrics) => {
            for (name, value) in metrics.scalars() {
                s.push_str(&format!("- {name}: {value:.4}\n"));
            }
        }
        None => s.push_str(
            "None: every row trained this model (test fraction 0), so no held-out figure exists. \
             Judge it by a run of the same settings that held rows out.\n",
        ),
    }
    s.push_str(&format!(
        "\n## Training\n\n- data: `{}` ({} rows, sha256 {})\n- seed: {}\n- epochs: {}, batch size: {}, learning rate: {}, optimiser: {:?}\n- created: {} with Wick {}\n\nThe weights are `model.safetensors`; `wick.json` holds the preprocessing needed to use them.\n",
        m.dataset.source, m.dataset.rows, m.dataset.sha256, m.seed, m.train_config.epochs, m.train_config.batch_size, m.train_config.lr,
        m.train_config.optimizer, m.created_at.to_rfc3339(), m.wick_version
    ));
    s.push_str(&onnx_section(m));
    s
}

/// How to run the model outside Wick, from `wick export`'s ONNX file.
fn onnx_section(m: &Manifest) -> String {
    // ONNX can't parse text dates: a date column's input is its time stamp.
    let dates: Vec<&str> = match &m.preprocessing {
        ModelInput::Tabular { preprocessor } => preprocessor
            .encoders
            .iter()
            .filter(|e| matches!(e, crate::data::FeatureEncoder::Date { .. }))
            .map(|e| e.name())
            .collect(),
        ModelInput::Image { .. } => Vec::new(),
    };
    let feed: Vec<String> = m
        .inputs
        .iter()
        .map(|t| match t.datatype.as_str() {
            _ if dates.contains(&t.name.as_str()) => format!(
                "    {:?}: np.array([datetime(2024, 3, 1).replace(tzinfo=timezone.utc).timestamp()]),  # seconds since 1970; NaN = missing",
                t.name
            ),
            "BYTES" => format!("    {:?}: np.array([\"text\"], dtype=object),", t.name),
            "UINT8" => {
                let dims: Vec<String> = t.shape.iter().skip(1).map(i64::to_string).collect();
                format!("    {:?}: np.zeros((1, {}), dtype=np.uint8),  # pixels, as the endpoint takes them", t.name, dims.join(", "))
            }
            _ => format!("    {:?}: np.array([0.0]),  # float64; NaN = missing", t.name),
        })
        .collect();
    format!(
        "\n## Using it outside Wick (ONNX)\n\n\
         `wick export {name}.wick --format onnx --out {name}.onnx` (or *File → Export model as ONNX…* in the app) \
         writes a standard ONNX model (opset {opset}) with the preprocessing inside the graph: feed the raw \
         columns or pixels, exactly as the endpoint takes them{date_note}.\n\n\
         In Python with onnxruntime (`pip install onnxruntime numpy`):\n\n\
         ```python\n{date_import}import numpy as np\nimport onnxruntime as ort\n\n\
         session = ort.InferenceSession(\"{name}.onnx\")\noutputs = session.run(None, {{\n{feed}\n}})\n\
         print(dict(zip([o.name for o in session.get_outputs()], outputs)))\n```\n\n\
         In an ONNX-speaking server, e.g. Triton's onnxruntime backend: put the file at \
         `models/{name}/1/model.onnx` in the model repository and start Triton; it reads the inputs and outputs \
         from the file (text columns are `TYPE_STRING`, sent as `BYTES` over the Open Inference Protocol).\n",
        name = m.name,
        opset = crate::export::ONNX_OPSET,
        feed = feed.join("\n"),
        date_note = if dates.is_empty() {
            String::new()
        } else {
            format!(
                ", except {}: ONNX can't parse text dates, so the graph takes a date's time stamp, \
                 seconds since 1970-01-01 (UTC, or the date-time as written when it has no zone), \
                 as float64 (NaN = missing)",
                dates.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(", ")
            )
        },
        date_import = if dates.is_empty() {
            ""
        } else {
            "from datetime import datetime, timezone\n"
        },
    )
}
