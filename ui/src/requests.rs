//! Building a real inference request for a published model from one of its own test samples, so
//! "Send test request" shows a meaningful answer rather than a prediction for zeros.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use wick_core::explain::any_value_json;
use wick_core::package::{Manifest, TensorSpec};

use crate::job_error::JobError;
use crate::loaded::LoadedData;
use crate::state::AppState;

/// What a test request is built from, picked on the UI thread (cheap: one row's cells, or a path)
/// and turned into a body by [`request_body`] on a job's thread (it reads the manifest and may
/// decode and resize a photo).
#[derive(Debug, Clone)]
pub struct RequestSource {
    pub package: PathBuf,
    pub sample: SampleInput,
}

#[derive(Debug, Clone)]
pub enum SampleInput {
    /// A test row of the open table: its cells by column.
    Row(HashMap<String, Value>),
    /// A test image.
    Image(PathBuf),
    /// No test sample at hand (the dataset is not open): the manifest's example request.
    Example,
}

/// The source of a request for one of run `run_id`'s test samples: the `which`-th, counting round
/// (so repeated test requests send different rows, as real traffic does).
pub fn request_source(
    state: &AppState,
    run_id: u32,
    which: usize,
) -> Result<RequestSource, String> {
    let run = state.project.runs.iter().find(|r| r.id == run_id).ok_or("the run this version was published from is no longer in the project; publish a run again to get a test request built from its data")?;
    let package = run.package.clone().ok_or(
        "the run has no saved model (it did not finish); train it again and publish that run",
    )?;
    let sample =
        (!run.test_samples.is_empty()).then(|| &run.test_samples[which % run.test_samples.len()]);
    let sample = match (state.loaded(), sample) {
        (Some(LoadedData::Table { df, .. }), Some(sample)) => {
            let row = row_index(&sample.source).ok_or("the test sample has no row number")?;
            SampleInput::Row(
                df.columns()
                    .iter()
                    .filter_map(|c| Some((c.name().to_string(), any_value_json(&c.get(row).ok()?))))
                    .collect(),
            )
        }
        (Some(LoadedData::Images { .. }), Some(sample)) => {
            SampleInput::Image(PathBuf::from(&sample.source))
        }
        _ => SampleInput::Example,
    };
    Ok(RequestSource { package, sample })
}

/// An Open Inference Protocol request body from `source`, built for `manifest` (the package's,
/// read by the caller). Off the UI thread: it may decode and resize a photo.
pub fn request_body(manifest: &Manifest, source: &RequestSource) -> Result<Value, JobError> {
    Ok(match &source.sample {
        SampleInput::Row(cells) => table_body(manifest, |name| cells.get(name).cloned())?,
        SampleInput::Image(path) => image_body(manifest, path)?,
        SampleInput::Example => wick_core::publish::example_request(manifest),
    })
}

fn table_body(
    manifest: &Manifest,
    value_of: impl Fn(&str) -> Option<Value>,
) -> Result<Value, JobError> {
    let inputs: Vec<Value> = manifest
        .inputs
        .iter()
        .map(|t: &TensorSpec| {
            let value = value_of(&t.name).unwrap_or(Value::Null);
            let value = match (t.datatype.as_str(), value) {
                ("BYTES", Value::String(s)) => Value::String(s),
                ("BYTES", Value::Null) => Value::String(String::new()),
                ("BYTES", other) => Value::String(other.to_string()),
                (_, Value::Number(n)) => Value::Number(n),
                (_, Value::Bool(b)) => json!(if b { 1.0 } else { 0.0 }),
                (_, _) => json!(0.0),
            };
            json!({ "name": t.name, "shape": [1], "datatype": t.datatype, "data": [value] })
        })
        .collect();
    Ok(json!({ "inputs": inputs }))
}

fn image_body(manifest: &Manifest, path: &Path) -> Result<Value, JobError> {
    let spec = manifest.inputs.first().ok_or("the model has no input")?;
    let [_, h, w, c] = spec.shape[..] else {
        return Err(format!("unexpected image input shape {:?}", spec.shape).into());
    };
    // Decoded, cropped and resized as training saw its images.
    let shape = wick_core::data::ImageShape {
        height: h.max(1) as usize,
        width: w.max(1) as usize,
        channels: c.max(1) as usize,
    };
    let img = wick_core::data::images::decode_image(path)?;
    let pixels = wick_core::data::images::image_to_hwc_u8(&img, shape)?;
    Ok(
        json!({ "inputs": [{ "name": spec.name, "shape": [1, h, w, c], "datatype": "UINT8", "data": pixels }] }),
    )
}

/// The 0-based table row of a test sample's source ("row 12" is the 12th row).
pub fn row_index(source: &str) -> Option<usize> {
    source
        .strip_prefix("row ")?
        .trim()
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}
