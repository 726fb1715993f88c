//! Open Inference Protocol tensors: request and response shapes, and their conversion to and from
//! a Wick model's inputs and predictions.

use serde::{Deserialize, Serialize};
use wick_core::data::{FeatureEncoder, RawColumn};
use wick_core::model::{Model, ModelInput, Prediction};

use crate::error::ApiError;
use crate::tensor_data::TensorData;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferInput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
    /// Flattened while parsing (row-major, as the protocol lays tensors out). Absent when the
    /// tensor comes as binary data after the JSON (`parameters.binary_data_size`).
    #[serde(default)]
    pub data: TensorData,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RequestedOutput {
    pub name: String,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferRequest {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub parameters: Option<serde_json::Value>,
    pub inputs: Vec<InferInput>,
    #[serde(default)]
    pub outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferOutput {
    pub name: String,
    pub shape: Vec<i64>,
    pub datatype: String,
    /// `binary_data_size` when the data follows the JSON as bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<serde_json::Value>,
    /// Null when the data is sent as binary.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferResponse {
    pub model_name: String,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub outputs: Vec<InferOutput>,
}

/// What the model will be called with.
pub enum ModelCall {
    /// One raw column per feature, in the model's feature order, of `n` rows.
    Table {
        columns: Vec<RawColumn>,
        n: usize,
    },
    ImagesU8 {
        pixels: Vec<u8>,
        n: usize,
    },
    ImagesF32 {
        chw: Vec<f32>,
        n: usize,
    },
}

impl ModelCall {
    pub fn rows(&self) -> usize {
        match self {
            Self::Table { n, .. } | Self::ImagesU8 { n, .. } | Self::ImagesF32 { n, .. } => *n,
        }
    }

    pub fn run(self, model: &Model) -> wick_core::Result<Vec<Prediction>> {
        match self {
            Self::Table { columns, n } => model.predict_columns(&columns, n),
            Self::ImagesU8 { pixels, n } => model.predict_hwc_u8(&pixels, n),
            Self::ImagesF32 { chw, n } => model.predict_pixels(&chw, n),
        }
    }
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

fn element_count(shape: &[i64], name: &str) -> Result<usize, ApiError> {
    shape.iter().try_fold(1usize, |acc, &d| {
        if d < 0 {
            Err(bad(format!(
                "input `{name}` has a negative dimension in shape {shape:?}"
            )))
        } else {
            acc.checked_mul(d as usize)
                .ok_or_else(|| bad(format!("input `{name}` shape {shape:?} is too large")))
        }
    })
}

fn numbers(input: &InferInput) -> Result<Vec<f64>, ApiError> {
    const NUMERIC: &[&str] = &[
        "FP64", "FP32", "FP16", "INT64", "INT32", "INT16", "INT8", "UINT64", "UINT32", "UINT16",
        "UINT8", "BOOL",
    ];
    if !NUMERIC.contains(&input.datatype.as_str()) {
        return Err(bad(format!(
            "input `{}` has datatype {} but must be numeric (e.g. FP32, FP64, INT64)",
            input.name, input.datatype
        )));
    }
    let values = match &input.data {
        TensorData::Numbers(v) => return Ok(v.clone()),
        TensorData::Values(v) => v,
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            serde_json::Value::Number(n) => n.as_f64().ok_or_else(|| {
                bad(format!(
                    "input `{}` element {i} is not a number",
                    input.name
                ))
            }),
            serde_json::Value::Bool(b) => Ok(f64::from(u8::from(*b))),
            other => Err(bad(format!(
                "input `{}` element {i} is {other}, not a number",
                input.name
            ))),
        })
        .collect()
}

/// Turns the request's tensors into a model call, checking names, shapes, datatypes and the size cap.
pub fn to_call(
    model: &Model,
    request: &InferRequest,
    max_elements: usize,
) -> Result<ModelCall, ApiError> {
    if request.inputs.is_empty() {
        return Err(bad("the request has no inputs"));
    }
    let mut total = 0usize;
    for input in &request.inputs {
        total = total.saturating_add(element_count(&input.shape, &input.name)?);
    }
    if total > max_elements {
        return Err(ApiError::TooLarge(format!("the request holds {total} tensor elements; the limit is {max_elements}. Send fewer rows per request")));
    }
    let flat_data = |input: &InferInput| -> Result<usize, ApiError> {
        let (len, expected) = (input.data.len(), element_count(&input.shape, &input.name)?);
        if len != expected {
            return Err(bad(format!(
                "input `{}` has {len} values but its shape {:?} needs {expected}",
                input.name, input.shape
            )));
        }
        Ok(len)
    };
    match &model.input {
        ModelInput::Tabular { preprocessor } => {
            let encoders = &preprocessor.encoders;
            // One 2-D numeric tensor whose columns are the features in order.
            let first = &request.inputs[0];
            let is_matrix = request.inputs.len() == 1
                && first.shape.len() == 2
                && !(encoders.len() == 1 && first.name == encoders[0].name());
            if is_matrix {
                let input = &request.inputs[0];
                let (n, width) = (input.shape[0] as usize, input.shape[1] as usize);
                if width != encoders.len() {
                    return Err(bad(format!(
                        "input `{}` has {width} columns but the model has {} features: {}",
                        input.name,
                        encoders.len(),
                        names(encoders)
                    )));
                }
                if let Some(e) = encoders.iter().find(|e| e.is_text()) {
                    return Err(bad(format!(
                        "feature `{}` is text; send one tensor per feature instead of a 2-D tensor",
                        e.name()
                    )));
                }
                flat_data(input)?;
                let values = numbers(input)?;
                let columns = (0..width)
                    .map(|j| {
                        RawColumn::Numeric((0..n).map(|i| Some(values[i * width + j])).collect())
                    })
                    .collect();
                return Ok(ModelCall::Table { columns, n });
            }
            let mut columns = Vec::new();
            let mut rows = None;
            for e in encoders {
                let input = request.inputs.iter().find(|i| i.name == e.name()).ok_or_else(|| {
                    bad(format!("input `{}` is missing; this model needs one tensor per feature ({}) or one 2-D FP32/FP64 tensor", e.name(), names(encoders)))
                })?;
                let n = flat_data(input)?;
                if input.shape.first().copied().unwrap_or(0) as usize != n
                    && !(input.shape.len() == 2 && input.shape[1] == 1)
                {
                    return Err(bad(format!(
                        "input `{}` must have shape [N] or [N, 1], got {:?}",
                        input.name, input.shape
                    )));
                }
                if *rows.get_or_insert(n) != n {
                    return Err(bad(format!(
                        "input `{}` has {n} rows but other inputs have {}",
                        input.name,
                        rows.unwrap_or(0)
                    )));
                }
                let column = match e.is_text() {
                    false => RawColumn::Numeric(numbers(input)?.into_iter().map(Some).collect()),
                    true => {
                        if input.datatype != "BYTES" {
                            return Err(bad(format!(
                                "input `{}` is text: send it with datatype BYTES, not {}",
                                input.name, input.datatype
                            )));
                        }
                        RawColumn::Text(match &input.data {
                            // Numbers sent for a text column stand for their text (`3`, `2.5`).
                            TensorData::Numbers(v) => v
                                .iter()
                                .map(|&x| Some(crate::tensor_data::number_text(x)))
                                .collect(),
                            TensorData::Values(v) => v
                                .iter()
                                .map(|v| {
                                    Some(
                                        v.as_str()
                                            .map(str::to_string)
                                            .unwrap_or_else(|| v.to_string()),
                                    )
                                })
                                .collect(),
                        })
                    }
                };
                columns.push(column);
            }
            Ok(ModelCall::Table {
                columns,
                n: rows.unwrap_or(0),
            })
        }
        ModelInput::Image { shape } => {
            let [input] = request.inputs.as_slice() else {
                return Err(bad(
                    "this image model takes one input tensor of shape [N, H, W, C]",
                ));
            };
            let expected = [
                shape.height as i64,
                shape.width as i64,
                shape.channels as i64,
            ];
            if input.shape.len() != 4 || input.shape[1..] != expected {
                return Err(bad(format!(
                    "input `{}` must have shape [N, {}, {}, {}], got {:?}",
                    input.name, expected[0], expected[1], expected[2], input.shape
                )));
            }
            let n = input.shape[0] as usize;
            flat_data(input)?;
            match input.datatype.as_str() {
                "UINT8" => {
                    let pixel = |v: f64| {
                        (v.fract() == 0.0 && (0.0..=255.0).contains(&v)).then_some(v as u8)
                    };
                    let not_a_pixel = |v: &dyn std::fmt::Display| {
                        bad(format!(
                            "input `{}` holds {v}, not a 0-255 pixel",
                            input.name
                        ))
                    };
                    let pixels = match &input.data {
                        TensorData::Numbers(v) => v
                            .iter()
                            .map(|&x| pixel(x).ok_or_else(|| not_a_pixel(&x)))
                            .collect::<Result<Vec<u8>, _>>()?,
                        TensorData::Values(v) => v
                            .iter()
                            .map(|x| {
                                x.as_u64()
                                    .filter(|p| *p <= 255)
                                    .map(|p| p as u8)
                                    .ok_or_else(|| not_a_pixel(x))
                            })
                            .collect::<Result<Vec<u8>, _>>()?,
                    };
                    Ok(ModelCall::ImagesU8 { pixels, n })
                }
                "FP32" | "FP64" => {
                    let hwc = numbers(input)?;
                    let plane = shape.height * shape.width;
                    let mut chw = vec![0f32; hwc.len()];
                    for img in 0..n {
                        for i in 0..plane {
                            for c in 0..shape.channels {
                                chw[img * plane * shape.channels + c * plane + i] = hwc
                                    [img * plane * shape.channels + i * shape.channels + c]
                                    as f32;
                            }
                        }
                    }
                    Ok(ModelCall::ImagesF32 { chw, n })
                }
                other => Err(bad(format!(
                    "input `{}` has datatype {other}; images must be UINT8 (0-255) or FP32 (0-1)",
                    input.name
                ))),
            }
        }
    }
}

fn names(encoders: &[FeatureEncoder]) -> String {
    encoders
        .iter()
        .map(|e| e.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds the response tensors from predictions.
pub fn to_outputs(
    model: &Model,
    predictions: &[Prediction],
    requested: Option<&[RequestedOutput]>,
) -> Vec<InferOutput> {
    let n = predictions.len() as i64;
    let target = model.target.name.clone();
    let mut outputs = Vec::new();
    if predictions
        .iter()
        .all(|p| matches!(p, Prediction::Value { .. }))
    {
        let data: Vec<f64> = predictions
            .iter()
            .map(|p| {
                if let Prediction::Value { value } = p {
                    *value
                } else {
                    f64::NAN
                }
            })
            .collect();
        outputs.push(InferOutput {
            name: target,
            shape: vec![n],
            datatype: "FP64".into(),
            parameters: None,
            data: serde_json::json!(data),
        });
    } else {
        let labels: Vec<String> = predictions
            .iter()
            .map(|p| {
                if let Prediction::Class { label, .. } = p {
                    label.clone()
                } else {
                    String::new()
                }
            })
            .collect();
        let k = model.target.labels.len() as i64;
        let probs: Vec<f32> = predictions
            .iter()
            .flat_map(|p| {
                if let Prediction::Class { probabilities, .. } = p {
                    probabilities.clone()
                } else {
                    Vec::new()
                }
            })
            .collect();
        outputs.push(InferOutput {
            name: target,
            shape: vec![n],
            datatype: "BYTES".into(),
            parameters: None,
            data: serde_json::json!(labels),
        });
        outputs.push(InferOutput {
            name: "probabilities".into(),
            shape: vec![n, k],
            datatype: "FP32".into(),
            parameters: None,
            data: serde_json::json!(probs),
        });
    }
    if let Some(requested) = requested.filter(|r| !r.is_empty()) {
        outputs.retain(|o| requested.iter().any(|r| r.name == o.name));
    }
    outputs
}
