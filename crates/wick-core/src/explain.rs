//! What a tabular model relies on: permutation importance for every model, split gain for trees,
//! and one prediction split into per-feature contributions (exact for linear models, TreeSHAP for
//! boosted trees, path attribution for forests).

use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{FeatureEncoder, Preprocessor, Task};
use crate::error::{Result, WickError};
use crate::metrics::regression_metrics;
use crate::model::{Model, ModelInput, ModelSpec, Prediction, Weights};

/// How much one feature matters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureImportance {
    pub feature: String,
    /// Mean drop of the score when the feature's values are shuffled (0 = not used).
    pub permutation_mean: f64,
    pub permutation_std: f64,
    /// Trees: the feature's share of the total split gain.
    pub split_gain: Option<f64>,
}

/// Importances of every feature, most important first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Importance {
    /// `accuracy` or `r2`: the score whose drop is measured.
    pub metric: String,
    /// The score on the unshuffled rows.
    pub baseline: f64,
    pub rows: usize,
    pub repeats: usize,
    pub features: Vec<FeatureImportance>,
}

/// Permutation importance on the labelled rows of `df`: each feature column is shuffled `repeats`
/// times (seeded) and the drop of accuracy (classes) or R² (numbers) is averaged.
pub fn permutation_importance(
    model: &Model,
    df: &DataFrame,
    repeats: usize,
    seed: u64,
) -> Result<Importance> {
    let preprocessor = tabular(model)?;
    let target = &model.target.name;
    let column = df.column(target).map_err(|_| {
        WickError::column(
            target,
            "is missing: importance needs the target column the model was trained on",
        )
    })?;
    // Rows with a target only.
    let keep: Vec<bool> = (0..df.height())
        .map(|i| column.get(i).is_ok_and(|v| !v.is_null()))
        .collect();
    let mask = BooleanChunked::from_iter_values("keep".into(), keep.iter().copied());
    let df = df
        .filter(&mask)
        .map_err(|e| WickError::polars("importance rows", e))?;
    let n = df.height();
    if n < 2 {
        return Err(WickError::InvalidSpec(
            "permutation importance needs at least 2 rows with a target value".into(),
        ));
    }
    let repeats = repeats.max(1);
    let actual = Actual::read(
        model,
        df.column(target)
            .map_err(|e| WickError::polars(format!("target `{target}`"), e))?,
    )?;
    let x = preprocessor.transform_frame(&df)?;
    let width = preprocessor.width();
    let baseline = actual.score(&model.predict_encoded(&x, n)?);
    // Split gain per encoded input, summed per feature column (a date is five inputs).
    let owner = owners(preprocessor);
    let gains = model.tree_ensemble().map(|t| {
        let mut per_feature = vec![0.0; preprocessor.encoders.len()];
        for (j, g) in t.split_gain().iter().enumerate() {
            per_feature[owner[j]] += g;
        }
        per_feature
    });
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut features = Vec::with_capacity(preprocessor.encoders.len());
    let mut offset = 0;
    let mut shuffled = x.clone();
    for (f, enc) in preprocessor.encoders.iter().enumerate() {
        let w = enc.width();
        let mut drops = Vec::with_capacity(repeats);
        let mut order: Vec<usize> = (0..n).collect();
        for _ in 0..repeats {
            order.shuffle(&mut rng);
            // The feature's whole block (every one-hot column) moves together.
            for (row, &from) in order.iter().enumerate() {
                shuffled[row * width + offset..row * width + offset + w]
                    .copy_from_slice(&x[from * width + offset..from * width + offset + w]);
            }
            drops.push(baseline - actual.score(&model.predict_encoded(&shuffled, n)?));
        }
        for row in 0..n {
            shuffled[row * width + offset..row * width + offset + w]
                .copy_from_slice(&x[row * width + offset..row * width + offset + w]);
        }
        let mean = drops.iter().sum::<f64>() / drops.len() as f64;
        let std =
            (drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / drops.len() as f64).sqrt();
        features.push(FeatureImportance {
            feature: enc.name().to_string(),
            permutation_mean: mean,
            permutation_std: std,
            split_gain: gains.as_ref().and_then(|g| g.get(f).copied()),
        });
        offset += w;
    }
    features.sort_by(|a, b| b.permutation_mean.total_cmp(&a.permutation_mean));
    let metric = match model.task() {
        Task::Regression => "r2",
        Task::Classification => "accuracy",
    };
    Ok(Importance {
        metric: metric.into(),
        baseline,
        rows: n,
        repeats,
        features,
    })
}

/// For each encoded input, the index of the feature column (encoder) it comes from.
fn owners(preprocessor: &Preprocessor) -> Vec<usize> {
    preprocessor
        .encoders
        .iter()
        .enumerate()
        .flat_map(|(f, e)| std::iter::repeat_n(f, e.width()))
        .collect()
}

fn tabular(model: &Model) -> Result<&Preprocessor> {
    match &model.input {
        ModelInput::Tabular { preprocessor } => Ok(preprocessor),
        ModelInput::Image { .. } => Err(WickError::PredictInput(
            "importance by feature needs a table model; this model takes images".into(),
        )),
    }
}

/// True targets of the rows, in the model's terms.
enum Actual {
    Values(Vec<f64>),
    /// Class indices; a label never seen in training is `labels.len()` (always a miss).
    Classes(Vec<usize>),
}

impl Actual {
    fn read(model: &Model, column: &Column) -> Result<Self> {
        let name = &model.target.name;
        Ok(match model.task() {
            Task::Regression => {
                let v = column
                    .cast(&DataType::Float64)
                    .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
                Self::Values(
                    v.f64()
                        .map_err(|e| WickError::polars(format!("target `{name}`"), e))?
                        .iter()
                        .map(|v| v.unwrap_or(f64::NAN))
                        .collect(),
                )
            }
            Task::Classification => {
                let v = column
                    .cast(&DataType::String)
                    .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
                let labels = &model.target.labels;
                let v = v
                    .str()
                    .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
                Self::Classes(
                    v.iter()
                        .map(|v| {
                            v.and_then(|v| labels.iter().position(|l| l == v))
                                .unwrap_or(labels.len())
                        })
                        .collect(),
                )
            }
        })
    }

    fn score(&self, predictions: &[Prediction]) -> f64 {
        match self {
            Self::Values(actual) => {
                let predicted: Vec<f64> = predictions.iter().map(Prediction::as_f64).collect();
                regression_metrics(actual, &predicted).r2
            }
            Self::Classes(actual) => {
                let hits = actual.iter().zip(predictions).filter(|(a, p)| matches!(p, Prediction::Class { class_index, .. } if class_index == *a)).count();
                hits as f64 / actual.len().max(1) as f64
            }
        }
    }
}

/// One prediction split into per-feature parts: `base + Σ parts` is the explained output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// What is explained: the target (numbers) or `score of <class>`.
    pub output: String,
    /// `value`, `log-odds` or `probability`.
    pub scale: String,
    /// How the parts were computed.
    pub method: String,
    pub base: f64,
    /// Per feature column, largest magnitude first.
    pub parts: Vec<(String, f64)>,
}

/// Explains the model's prediction of one row given as JSON (column → value). `None` for models
/// whose contributions Wick can't compute exactly or honestly (logistic regression, MLPs).
pub fn explain_row(
    model: &Model,
    row: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Explanation>> {
    let preprocessor = tabular(model)?;
    let x = preprocessor.transform_frame(&crate::model::rows_frame(
        preprocessor,
        std::slice::from_ref(row),
    )?)?;
    let prediction = model.predict_encoded(&x, 1)?.into_iter().next();
    let predicted_class = match &prediction {
        Some(Prediction::Class { class_index, .. }) => Some(*class_index),
        _ => None,
    };
    let names: Vec<&str> = preprocessor
        .encoders
        .iter()
        .map(FeatureEncoder::name)
        .collect();
    let explanation = match (&model.weights, &model.spec) {
        (Weights::Linear(fit), ModelSpec::Linear { poly_degree, .. }) => {
            // Each encoded input's term w·x (powers of a feature included) belongs to its column.
            let (px, _) = crate::model::polynomial_features(&x, preprocessor.width(), *poly_degree);
            let width = preprocessor.width();
            let owner = owners(preprocessor);
            let mut parts = vec![0.0; names.len()];
            for (j, (v, c)) in px.iter().zip(&fit.coefficients).enumerate() {
                parts[owner[j % width]] += v * c;
            }
            Some(finish(
                model.target.name.clone(),
                "value",
                "exact (linear terms)",
                fit.intercept,
                names,
                parts,
            ))
        }
        (Weights::Trees(ensemble), _) => {
            let c = ensemble.contributions(&x);
            // The output explained: the value; the predicted class (its own booster or forest
            // column); for two boosted classes, the one booster models the second class.
            let (k, output) = match (predicted_class, c.bias.len()) {
                (None, _) => (0, model.target.name.clone()),
                (Some(_), 1) => (
                    0,
                    format!(
                        "score of {}",
                        model.target.labels.get(1).cloned().unwrap_or_default()
                    ),
                ),
                (Some(i), _) => (
                    i,
                    format!(
                        "score of {}",
                        model.target.labels.get(i).cloned().unwrap_or_default()
                    ),
                ),
            };
            let method = if matches!(model.spec, ModelSpec::Gbdt { .. }) {
                "TreeSHAP: exact Shapley values"
            } else {
                "path attribution (Saabas), sums exactly"
            };
            let owner = owners(preprocessor);
            let mut parts = vec![0.0; names.len()];
            for (j, p) in c.per_feature.iter().enumerate() {
                parts[owner[j]] += p.get(k).copied().unwrap_or(0.0);
            }
            Some(finish(
                output,
                &c.scale,
                method,
                c.bias.get(k).copied().unwrap_or(0.0),
                names,
                parts,
            ))
        }
        _ => None,
    };
    Ok(explanation)
}

fn finish(
    output: String,
    scale: &str,
    method: &str,
    base: f64,
    names: Vec<&str>,
    parts: Vec<f64>,
) -> Explanation {
    let mut parts: Vec<(String, f64)> = names.into_iter().map(str::to_string).zip(parts).collect();
    parts.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    Explanation {
        output,
        scale: scale.into(),
        method: method.into(),
        base,
        parts,
    }
}

/// Row `index` (0-based) of a frame as JSON (column → value), as `explain_row` takes it.
pub fn frame_row(
    df: &DataFrame,
    index: usize,
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut out = serde_json::Map::new();
    for column in df.columns() {
        let value = column
            .get(index)
            .map_err(|e| WickError::polars(format!("row {}", index + 1), e))?;
        out.insert(column.name().to_string(), any_value_json(&value));
    }
    Ok(out)
}

/// A table cell as JSON: numbers, text, booleans, `null` for missing; other types (and non-finite
/// numbers, which JSON lacks) as their text.
pub fn any_value_json(v: &AnyValue) -> serde_json::Value {
    match v {
        AnyValue::Null => serde_json::Value::Null,
        AnyValue::Boolean(b) => serde_json::Value::Bool(*b),
        AnyValue::String(s) => serde_json::Value::String(s.to_string()),
        AnyValue::StringOwned(s) => serde_json::Value::String(s.to_string()),
        other => match other.extract::<f64>() {
            Some(f) if f.is_finite() => serde_json::json!(f),
            _ => serde_json::Value::String(other.to_string()),
        },
    }
}

/// Where an image model looked: for each pixel, how much the predicted class's score changes with
/// it (the gradient's magnitude, the largest over the colour channels), scaled so the largest is 1.
/// This is vanilla gradient saliency (Simonyan et al., 2014).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaliencyMap {
    pub class_index: usize,
    pub label: String,
    pub width: usize,
    pub height: usize,
    /// `height × width` values in `[0, 1]`, row by row.
    pub values: Vec<f32>,
}

/// The saliency map of one image given as channel-first f32 in `[0, 1]` at the model's input size
/// (as [`crate::data::load_image`] returns it), for the class the model predicts.
pub fn saliency(model: &Model, chw: &[f32]) -> Result<SaliencyMap> {
    let shape = model.image_shape()?;
    if chw.len() != shape.len() {
        return Err(WickError::PredictInput(format!(
            "expected one image of {} values, got {}",
            shape.len(),
            chw.len()
        )));
    }
    let device = match &model.weights {
        Weights::Network(net) | Weights::Transfer { head: net, .. } => net.device().clone(),
        _ => {
            return Err(WickError::InvalidSpec(
                "saliency maps are for image models (CNNs and transfer models)".into(),
            ))
        }
    };
    let x =
        candle_core::Var::from_slice(chw, (1, shape.channels, shape.height, shape.width), &device)?;
    let logits = match &model.weights {
        Weights::Network(net) => net.forward(x.as_tensor(), false, None)?,
        Weights::Transfer { backbone, head } => {
            head.forward(&backbone.features(x.as_tensor())?, false, None)?
        }
        _ => {
            return Err(WickError::InvalidSpec(
                "saliency maps are for image models (CNNs and transfer models)".into(),
            ))
        }
    };
    let scores = logits.flatten_all()?.to_vec1::<f32>()?;
    let class_index = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i);
    let grads = logits.narrow(1, class_index, 1)?.sum_all()?.backward()?;
    let gradient = grads
        .get(x.as_tensor())
        .ok_or_else(|| WickError::InvalidSpec(format!("{} models do not pass gradients back to their input, so Wick can't draw their saliency map", model.spec.kind_name())))?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let plane = shape.height * shape.width;
    let mut values: Vec<f32> = (0..plane)
        .map(|i| {
            (0..shape.channels)
                .map(|c| gradient[c * plane + i].abs())
                .fold(0.0, f32::max)
        })
        .collect();
    let max = values.iter().copied().fold(0.0f32, f32::max);
    if max > 0.0 {
        values.iter_mut().for_each(|v| *v /= max);
    }
    let label = model
        .target
        .labels
        .get(class_index)
        .cloned()
        .unwrap_or_default();
    Ok(SaliencyMap {
        class_index,
        label,
        width: shape.width,
        height: shape.height,
        values,
    })
}

/// The image with its saliency map laid over it in red, each pixel drawn `scale`×`scale`, as RGB
/// bytes row by row: `(width, height, pixels)`.
pub fn saliency_overlay(
    chw: &[f32],
    channels: usize,
    map: &SaliencyMap,
    scale: usize,
) -> (usize, usize, Vec<u8>) {
    let (w, h, scale) = (map.width, map.height, scale.max(1));
    let plane = w * h;
    let mut out = Vec::with_capacity(plane * scale * scale * 3);
    for y in 0..h * scale {
        for x in 0..w * scale {
            let i = (y / scale) * w + x / scale;
            let grey = |c: usize| {
                chw.get(c.min(channels.saturating_sub(1)) * plane + i)
                    .copied()
                    .unwrap_or(0.0)
            };
            let heat = map.values.get(i).copied().unwrap_or(0.0);
            // The image dimmed where the model did not look, red where it did.
            for (c, tint) in [(0, 1.0f32), (1, 0.15), (2, 0.1)] {
                let base = 0.35 * grey(c);
                out.push(((base + heat * tint * 0.65).clamp(0.0, 1.0) * 255.0) as u8);
            }
        }
    }
    (w * scale, h * scale, out)
}

/// Writes [`saliency_overlay`] as a PNG, drawn at least 224 pixels on its longer side; the file is
/// written next to `path` and renamed into place.
pub fn write_saliency_png(
    chw: &[f32],
    channels: usize,
    map: &SaliencyMap,
    path: &std::path::Path,
) -> Result<()> {
    let scale = 224usize.div_ceil(map.width.max(map.height).max(1)).max(1);
    let (w, h, rgb) = saliency_overlay(chw, channels, map, scale);
    let image = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| WickError::InvalidSpec("the saliency image has the wrong size".into()))?;
    let partial = path.with_extension("png.partial");
    image
        .save_with_format(&partial, image::ImageFormat::Png)
        .map_err(|e| WickError::data(&partial, format!("could not be written ({e})")))?;
    std::fs::rename(&partial, path).map_err(|e| WickError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{ImageShape, Task};
    use crate::model::{default_cnn_layers, Network, TargetInfo};
    use candle_core::{Device, Tensor};

    /// The map is the gradient of the predicted class's logit: checked against central finite
    /// differences of that logit, pixel by pixel, on a randomly initialised default CNN.
    #[test]
    fn saliency_is_the_logit_gradient_by_finite_differences() {
        let shape = ImageShape {
            height: 8,
            width: 8,
            channels: 1,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let net =
            Network::new(&[1, 8, 8], &default_cnn_layers(), 3, &mut rng, &Device::Cpu).unwrap();
        let image: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32) / 64.0).collect();
        let target = TargetInfo {
            name: "label".into(),
            task: Task::Classification,
            labels: vec!["a".into(), "b".into(), "c".into()],
            scale: None,
        };
        let spec = ModelSpec::Cnn {
            input: shape,
            layers: default_cnn_layers(),
        };
        let model = Model::new(
            spec,
            ModelInput::Image { shape },
            target,
            Weights::Network(net),
        )
        .unwrap();
        let Weights::Network(net) = &model.weights else {
            unreachable!()
        };
        let logit = |x: &[f32], class: usize| -> f64 {
            let t = Tensor::from_slice(x, (1, 1, 8, 8), &Device::Cpu).unwrap();
            net.forward(&t, false, None)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[class] as f64
        };
        let map = saliency(&model, &image).unwrap();
        let eps = 2e-3f32;
        let numeric: Vec<f64> = (0..64)
            .map(|i| {
                let (mut up, mut down) = (image.clone(), image.clone());
                up[i] += eps;
                down[i] -= eps;
                ((logit(&up, map.class_index) - logit(&down, map.class_index)) / (2.0 * eps as f64))
                    .abs()
            })
            .collect();
        let max = numeric.iter().copied().fold(0.0, f64::max);
        assert!(max > 0.0);
        for (i, (m, n)) in map.values.iter().zip(&numeric).enumerate() {
            // f32 logits and ReLU/max-pool kinks within ±eps leave a little slack.
            assert!(
                (*m as f64 - n / max).abs() < 0.03,
                "pixel {i}: {m} vs {}",
                n / max
            );
        }
        assert!(map.values.contains(&1.0));
        let (w, h, rgb) = saliency_overlay(&image, 1, &map, 4);
        assert_eq!((w, h, rgb.len()), (32, 32, 32 * 32 * 3));
    }
}
