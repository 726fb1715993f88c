//! Models: the user's [`ModelSpec`], and a trained [`Model`] that predicts.

mod cpu_net;
pub(crate) mod cpu_ops;
pub(crate) mod fine_tune;
pub mod kind;
pub mod linear;
pub mod network;
pub mod spec;
pub mod text_encoder;
pub(crate) mod trainable;
pub mod transfer;
pub mod trees;

use std::path::PathBuf;

use candle_core::{DType, Device, Tensor};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

pub use kind::{InputKind, KindSettings, ModelKind};
pub use linear::{fit_least_squares, polynomial_features, LinearFit, NormalEquations};
pub use network::Network;
pub use spec::{
    default_cnn_layers, infer_shapes, lenet_layers, Activation, Backbone, BackboneArch, Layer,
    LayerShape, ModelSpec, Padding,
};
pub use trees::TreeEnsemble;

use crate::data::images::{hwc_u8_to_chw, load_image};
use crate::data::{ImageShape, Preprocessor, RawColumn, Task};
use crate::error::{Result, WickError};

/// What a model takes as input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelInput {
    /// Named table columns, encoded by the fitted preprocessor.
    Tabular { preprocessor: Preprocessor },
    /// Images resized and converted to `shape`, pixel values scaled to `[0, 1]`.
    Image { shape: ImageShape },
}

/// The target a model predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetInfo {
    pub name: String,
    pub task: Task,
    /// Class labels, in output order (classification).
    pub labels: Vec<String>,
    /// Networks learn a standardised regression target: prediction = output · std + mean.
    pub scale: Option<(f64, f64)>,
}

/// Trained weights.
pub(crate) enum Weights {
    Linear(LinearFit),
    Network(Network),
    Transfer {
        backbone: transfer::FrozenBackbone,
        head: Network,
    },
    Trees(trees::TreeEnsemble),
}

/// A trained model, in memory or loaded from a package; both predict identically.
pub struct Model {
    pub spec: ModelSpec,
    pub input: ModelInput,
    pub target: TargetInfo,
    pub(crate) weights: Weights,
    /// The network of `weights`, ready for CPU inference without candle (CPU networks only).
    cpu_net: Option<cpu_net::CpuNet>,
}

/// One prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Prediction {
    Value {
        value: f64,
    },
    Class {
        label: String,
        class_index: usize,
        probabilities: Vec<f32>,
    },
}

impl Prediction {
    /// The prediction as a number: the value, or the class index (for plots and regression metrics).
    pub fn as_f64(&self) -> f64 {
        match self {
            Self::Value { value } => *value,
            Self::Class { class_index, .. } => *class_index as f64,
        }
    }

    pub fn confidence(&self) -> Option<f32> {
        match self {
            Self::Class {
                class_index,
                probabilities,
                ..
            } => probabilities.get(*class_index).copied(),
            Self::Value { .. } => None,
        }
    }
}

/// How many rows a network sees at once when predicting.
const PREDICT_BATCH: usize = 256;
/// Images a frozen backbone sees at once (training features and prediction alike).
pub const BACKBONE_BATCH: usize = 16;

impl Model {
    pub(crate) fn new(
        spec: ModelSpec,
        input: ModelInput,
        target: TargetInfo,
        weights: Weights,
    ) -> Result<Self> {
        let cpu_net = match &weights {
            Weights::Network(net) => net.cpu_net()?,
            Weights::Linear(_) | Weights::Transfer { .. } | Weights::Trees(_) => None,
        };
        Ok(Self {
            spec,
            input,
            target,
            weights,
            cpu_net,
        })
    }

    pub fn task(&self) -> Task {
        self.target.task
    }

    /// Predicts every row of a frame; feature columns are read by name, extra columns ignored.
    pub fn predict_frame(&self, df: &DataFrame) -> Result<Vec<Prediction>> {
        let ModelInput::Tabular { preprocessor } = &self.input else {
            return Err(WickError::PredictInput(
                "this model takes images, not table rows".into(),
            ));
        };
        let x = preprocessor.transform_frame(df)?;
        self.predict_encoded(&x, df.height())
    }

    /// Predicts `n` rows given as one raw column per feature, in the preprocessor's encoder order.
    pub fn predict_columns(&self, columns: &[RawColumn], n: usize) -> Result<Vec<Prediction>> {
        let ModelInput::Tabular { preprocessor } = &self.input else {
            return Err(WickError::PredictInput(
                "this model takes images, not table rows".into(),
            ));
        };
        let x = preprocessor.transform_columns(columns, n)?;
        self.predict_encoded(&x, n)
    }

    /// Predicts rows given as JSON objects keyed by column name.
    pub fn predict_rows(
        &self,
        rows: &[serde_json::Map<String, serde_json::Value>],
    ) -> Result<Vec<Prediction>> {
        let ModelInput::Tabular { preprocessor } = &self.input else {
            return Err(WickError::PredictInput(
                "this model takes images, not table rows".into(),
            ));
        };
        self.predict_frame(&rows_frame(preprocessor, rows)?)
    }

    /// Predicts image files.
    pub fn predict_image_paths(&self, paths: &[PathBuf]) -> Result<Vec<Prediction>> {
        let shape = self.image_shape()?;
        let mut pixels = Vec::with_capacity(paths.len() * shape.len());
        for p in paths {
            pixels.extend(load_image(p, shape)?);
        }
        self.predict_pixels(&pixels, paths.len())
    }

    /// Predicts images given as interleaved u8 pixels `[N, H, W, C]` of the model's input size.
    pub fn predict_hwc_u8(&self, pixels: &[u8], n: usize) -> Result<Vec<Prediction>> {
        let shape = self.image_shape()?;
        let per = shape.len();
        if pixels.len() != n * per {
            return Err(WickError::PredictInput(format!(
                "expected {n} images of {} values, got {} values",
                per,
                pixels.len()
            )));
        }
        let mut chw = Vec::with_capacity(pixels.len());
        for img in pixels.chunks_exact(per.max(1)) {
            chw.extend(hwc_u8_to_chw(img, shape)?);
        }
        self.predict_pixels(&chw, n)
    }

    /// Predicts images given as channel-first f32 in `[0, 1]`, `n` images of the model's input size.
    pub fn predict_pixels(&self, chw: &[f32], n: usize) -> Result<Vec<Prediction>> {
        let shape = self.image_shape()?;
        if chw.len() != n * shape.len() {
            return Err(WickError::PredictInput(format!(
                "expected {n} images of {} values, got {}",
                shape.len(),
                chw.len()
            )));
        }
        if let Some(cpu) = &self.cpu_net {
            return Ok(self.decode_outputs(&cpu.forward(chw, n), n));
        }
        // A batch at a time, so the f64 copy stays one batch (a chunk of 224×224 photos in f64 is
        // hundreds of MB).
        let per = shape.len();
        let mut out = Vec::with_capacity(n);
        for start in (0..n).step_by(PREDICT_BATCH) {
            let rows = PREDICT_BATCH.min(n - start);
            let x: Vec<f64> = chw[start * per..(start + rows) * per]
                .iter()
                .map(|&v| v as f64)
                .collect();
            out.extend(self.predict_encoded(&x, rows)?);
        }
        Ok(out)
    }

    pub fn image_shape(&self) -> Result<ImageShape> {
        match &self.input {
            ModelInput::Image { shape } => Ok(*shape),
            ModelInput::Tabular { .. } => Err(WickError::PredictInput(
                "this model takes table rows, not images".into(),
            )),
        }
    }

    /// Number of encoded input values per sample.
    pub fn input_width(&self) -> usize {
        match &self.input {
            ModelInput::Tabular { preprocessor } => preprocessor.width(),
            ModelInput::Image { shape } => shape.len(),
        }
    }

    /// Predicts already-encoded inputs (`n` rows of [`Model::input_width`] values).
    pub fn predict_encoded(&self, x: &[f64], n: usize) -> Result<Vec<Prediction>> {
        match &self.weights {
            Weights::Linear(fit) => {
                let degree = match self.spec {
                    ModelSpec::Linear { poly_degree, .. } => poly_degree,
                    _ => 1,
                };
                let width = self.input_width();
                let (px, _) = polynomial_features(x, width, degree);
                let cols = fit.coefficients.len();
                Ok(px
                    .chunks_exact(cols.max(1))
                    .take(n)
                    .map(|row| Prediction::Value {
                        value: fit.predict_row(row),
                    })
                    .collect())
            }
            Weights::Network(net) => {
                let outputs = match &self.cpu_net {
                    Some(cpu) => cpu.forward(&x.iter().map(|&v| v as f32).collect::<Vec<_>>(), n),
                    None => self.network_outputs(net, None, x, n)?,
                };
                Ok(self.decode_outputs(&outputs, n))
            }
            Weights::Transfer { backbone, head } => {
                let outputs = self.network_outputs(head, Some(backbone), x, n)?;
                Ok(self.decode_outputs(&outputs, n))
            }
            Weights::Trees(ensemble) => Ok(self.decode_tree_outputs(&ensemble.predict(x, n), n)),
        }
    }

    /// The tree ensemble, for split-gain importance and per-prediction contributions.
    pub fn tree_ensemble(&self) -> Option<&trees::TreeEnsemble> {
        match &self.weights {
            Weights::Trees(t) => Some(t),
            _ => None,
        }
    }

    /// Tree outputs are already values or probabilities (no softmax).
    fn decode_tree_outputs(&self, outputs: &[f64], n: usize) -> Vec<Prediction> {
        match self.target.task {
            Task::Regression => outputs
                .iter()
                .take(n)
                .map(|&value| Prediction::Value { value })
                .collect(),
            Task::Classification => outputs
                .chunks_exact(self.target.labels.len().max(1))
                .map(|p| {
                    let probabilities: Vec<f32> = p.iter().map(|&v| v as f32).collect();
                    let class_index = argmax(&probabilities);
                    Prediction::Class {
                        label: self
                            .target
                            .labels
                            .get(class_index)
                            .cloned()
                            .unwrap_or_default(),
                        class_index,
                        probabilities,
                    }
                })
                .collect(),
        }
    }

    /// Raw network outputs (logits or standardised values), row-major.
    fn network_outputs(
        &self,
        net: &Network,
        backbone: Option<&transfer::FrozenBackbone>,
        x: &[f64],
        n: usize,
    ) -> Result<Vec<f32>> {
        let width = self.input_width();
        let device = net.device().clone();
        let mut out = Vec::new();
        // A backbone's activations at photo sizes are tens of MB an image: smaller batches.
        let batch_rows = if backbone.is_some() {
            BACKBONE_BATCH
        } else {
            PREDICT_BATCH
        };
        for start in (0..n).step_by(batch_rows) {
            let rows = batch_rows.min(n - start);
            let chunk: Vec<f32> = x[start * width..(start + rows) * width]
                .iter()
                .map(|&v| v as f32)
                .collect();
            let mut dims = vec![rows];
            let input_dims = match (&self.input, backbone) {
                (ModelInput::Image { shape }, _) => vec![shape.channels, shape.height, shape.width],
                (ModelInput::Tabular { .. }, _) => vec![width],
            };
            dims.extend(input_dims);
            let batch = Tensor::from_vec(chunk, dims, &device)?;
            let batch = match backbone {
                Some(b) => b.features(&batch)?,
                None => batch,
            };
            let y = net.forward(&batch, false, None)?;
            out.extend(y.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    fn decode_outputs(&self, outputs: &[f32], n: usize) -> Vec<Prediction> {
        match self.target.task {
            Task::Regression => {
                let (mean, std) = self.target.scale.unwrap_or((0.0, 1.0));
                outputs
                    .iter()
                    .take(n)
                    .map(|&v| Prediction::Value {
                        value: v as f64 * std + mean,
                    })
                    .collect()
            }
            Task::Classification => {
                let k = self.target.labels.len().max(1);
                outputs
                    .chunks_exact(k)
                    .map(|logits| {
                        let probabilities = softmax(logits);
                        let class_index = argmax(&probabilities);
                        Prediction::Class {
                            label: self
                                .target
                                .labels
                                .get(class_index)
                                .cloned()
                                .unwrap_or_default(),
                            class_index,
                            probabilities,
                        }
                    })
                    .collect()
            }
        }
    }

    /// The device the model computes on.
    pub fn device(&self) -> Device {
        match &self.weights {
            Weights::Network(net) | Weights::Transfer { head: net, .. } => net.device().clone(),
            Weights::Linear(_) | Weights::Trees(_) => Device::Cpu,
        }
    }
}

/// Softmax computed on the CPU in f64, so probabilities don't depend on the device's reduction order.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

pub(crate) fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// JSON rows (column → value) as a frame of the preprocessor's feature columns; a missing key or
/// `null` is a missing value.
pub(crate) fn rows_frame(
    preprocessor: &Preprocessor,
    rows: &[serde_json::Map<String, serde_json::Value>],
) -> Result<DataFrame> {
    let mut columns = Vec::new();
    for enc in &preprocessor.encoders {
        let name = enc.name();
        let values = rows.iter().map(|row| match row.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => Ok(Some(v.clone())),
        });
        let values: Vec<Option<serde_json::Value>> = values.collect::<Result<_>>()?;
        let col = match enc {
            crate::data::FeatureEncoder::Numeric { .. }
            | crate::data::FeatureEncoder::Raw { .. } => {
                let nums = values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        None => Ok(None),
                        Some(serde_json::Value::Number(n)) => Ok(n.as_f64()),
                        Some(serde_json::Value::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
                        Some(serde_json::Value::String(s)) => {
                            s.trim().parse::<f64>().map(Some).map_err(|_| {
                                WickError::PredictInput(format!(
                                    "row {}: `{name}` must be a number, got {s:?}",
                                    i + 1
                                ))
                            })
                        }
                        Some(other) => Err(WickError::PredictInput(format!(
                            "row {}: `{name}` must be a number, got {other}",
                            i + 1
                        ))),
                    })
                    .collect::<Result<Vec<Option<f64>>>>()?;
                Column::new(name.into(), nums)
            }
            crate::data::FeatureEncoder::OneHot { .. }
            | crate::data::FeatureEncoder::Code { .. }
            | crate::data::FeatureEncoder::Date { .. } => {
                let texts: Vec<Option<String>> = values
                    .iter()
                    .map(|v| {
                        v.as_ref().map(|v| {
                            v.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string())
                        })
                    })
                    .collect();
                Column::new(name.into(), texts)
            }
        };
        columns.push(col);
    }
    DataFrame::new(rows.len(), columns).map_err(|e| WickError::polars("prediction rows", e))
}
