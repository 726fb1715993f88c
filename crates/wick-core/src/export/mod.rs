//! Models that leave Wick: a trained package written as a standard ONNX model.
//!
//! The graph holds the whole prediction path, preprocessing included, so an ONNX runtime is fed
//! exactly what Wick's endpoint takes: one tensor per feature column (`double [N]` numbers,
//! `string [N]` text) or `uint8 [N, H, W, C]` pixels, and answers with the endpoint's outputs (the
//! target's values or labels, and `probabilities` for classifiers). The protobuf types are
//! generated from the official `onnx.proto` (see `scripts/onnx-proto-gen`).

mod graph;
mod lower;
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod onnx_proto;

use std::io::Write;
use std::path::Path;

use candle_core::Device;
use prost::Message;

use crate::error::{Result, WickError};
use crate::model::{Model, ModelInput};
use crate::package::{input_specs, load_package_on, output_specs};

mod opset;
mod trees;
pub use opset::{ONNX_IR_VERSION, ONNX_OPSET};

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxExport {
    pub bytes: usize,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Inputs that are date columns: the graph takes their time stamp (seconds since 1970, as
    /// float64), not their text, which ONNX can't parse.
    pub date_inputs: Vec<String>,
}

/// The model as a serialised ONNX `ModelProto`. The model must compute on the CPU (as a package
/// loaded by [`export_package_onnx`] does).
pub fn onnx_bytes(model: &Model) -> Result<Vec<u8>> {
    let (inputs, outputs) = io_names(model);
    if let Some(clash) = outputs.iter().find(|o| inputs.contains(o)) {
        return Err(WickError::Export(format!(
            "`{clash}` names both an input and an output; rename the column and train again"
        )));
    }
    if outputs.len() == 2 && outputs[0] == outputs[1] {
        return Err(WickError::Export(format!(
            "the target `{}` has the name of the probabilities output; rename the column and train again",
            outputs[0]
        )));
    }
    let mut g = graph::GraphBuilder::new(inputs.iter().chain(&outputs).cloned());
    lower::lower_model(&mut g, model)?;
    let doc = match &model.input {
        ModelInput::Tabular { .. } => "Feed one tensor per feature column: double [N] for numbers (NaN = missing), string [N] for text (\"\" = missing), double [N] seconds since 1970-01-01 UTC for dates (NaN = missing).",
        ModelInput::Image { .. } => "Feed uint8 [N, H, W, C] pixels, resized to the model's input size.",
    };
    let proto = onnx_proto::ModelProto {
        ir_version: Some(ONNX_IR_VERSION),
        opset_import: vec![
            onnx_proto::OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(ONNX_OPSET),
            },
            // The tree operators; declared for every model, used by tree models.
            onnx_proto::OperatorSetIdProto {
                domain: Some(trees::ML_DOMAIN.into()),
                version: Some(trees::ML_OPSET),
            },
        ],
        producer_name: Some("wick".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(doc.into()),
        graph: Some(g.finish("wick_model")),
        metadata_props: vec![
            metadata("wick.target", &model.target.name),
            metadata(
                "wick.task",
                &format!("{:?}", model.target.task).to_lowercase(),
            ),
        ],
        ..Default::default()
    };
    Ok(proto.encode_to_vec())
}

/// The graph's input and output names: those of the endpoint's tensors.
fn io_names(model: &Model) -> (Vec<String>, Vec<String>) {
    let names =
        |specs: Vec<crate::package::TensorSpec>| specs.into_iter().map(|s| s.name).collect();
    (
        names(input_specs(&model.input)),
        names(output_specs(&model.target)),
    )
}

fn metadata(key: &str, value: &str) -> onnx_proto::StringStringEntryProto {
    onnx_proto::StringStringEntryProto {
        key: Some(key.into()),
        value: Some(value.into()),
    }
}

/// Loads the package at `package` on the CPU and writes it to `dest` as an ONNX model. The file
/// is written beside `dest` and renamed into place, so `dest` is never left half-written.
pub fn export_package_onnx(package: &Path, dest: &Path) -> Result<OnnxExport> {
    let (model, _) = load_package_on(package, &Device::Cpu)?;
    let bytes = onnx_bytes(&model)?;
    let dir = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".wick-export")
        .tempfile_in(dir)
        .map_err(|e| WickError::io(dir, e))?;
    tmp.write_all(&bytes).map_err(|e| WickError::io(dest, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| WickError::io(dest, e))?;
    tmp.persist(dest)
        .map_err(|e| WickError::io(dest, e.error))?;
    let (inputs, outputs) = io_names(&model);
    let date_inputs = match &model.input {
        ModelInput::Tabular { preprocessor } => preprocessor
            .encoders
            .iter()
            .filter(|e| matches!(e, crate::data::FeatureEncoder::Date { .. }))
            .map(|e| e.name().to_string())
            .collect(),
        ModelInput::Image { .. } => Vec::new(),
    };
    Ok(OnnxExport {
        bytes: bytes.len(),
        inputs,
        outputs,
        date_inputs,
    })
}
