//! Gradient-boosted trees through `forust-ml`'s histogram booster (chosen by measurement;
//! ARCHITECTURE.md, "Tree models"). Regression boosts squared error; two classes boost log loss;
//! more classes boost one log-loss model per class (one-vs-rest) whose probabilities are normalised.

use forust_ml::gradientbooster::{ContributionsMethod, ImportanceMethod};
use forust_ml::metric::Metric;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WickError};

/// Settings of a boosted fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoostParams {
    pub trees: usize,
    pub learning_rate: f64,
    pub max_depth: usize,
    /// Smallest sum of hessians in a leaf (rows, for squared error).
    pub min_leaf_weight: f64,
    pub l2: f64,
    /// Stop when the validation loss has not improved for this many trees; the model keeps the best.
    pub early_stopping_rounds: Option<usize>,
    pub seed: u64,
    /// Record the training loss of every tree (for the loss curve); costs about a quarter more time.
    pub record_train_loss: bool,
}

/// A fitted booster per output.
#[derive(Serialize, Deserialize)]
pub struct Boosted {
    /// Number of classes (0 for regression).
    pub n_classes: usize,
    pub n_features: usize,
    pub boosters: Vec<GradientBooster>,
}

/// Per-tree losses of one fit: training and validation (the latter empty without validation rows).
#[derive(Debug, Clone, Default)]
pub struct BoostHistory {
    pub train: Vec<f64>,
    pub valid: Vec<f64>,
    /// Trees grown, and the trees the model keeps (the best validation iteration with early stopping).
    pub trees_grown: usize,
    pub trees_kept: usize,
}

/// A row-major table turned column-major, as forust reads it.
fn column_major(x: &[f64], n_rows: usize, n_features: usize) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for r in 0..n_rows {
        for f in 0..n_features {
            out[f * n_rows + r] = x[r * n_features + f];
        }
    }
    out
}

impl Boosted {
    /// Fits on a row-major `x` (NaN = missing). `y` holds values, or class indices with
    /// `n_classes >= 2`. `valid` is the validation split `(x, y)`, used for early stopping.
    /// `class_weights` weigh each class's rows (balanced classes), in training and in the
    /// validation loss that early stopping watches; `None` weighs every row 1.
    #[allow(clippy::too_many_arguments)] // rows, labels, weights, validation rows and settings, as forust takes them
    pub fn fit(
        x: &[f64],
        n_features: usize,
        y: &[f64],
        class_weights: Option<&[f64]>,
        n_classes: usize,
        valid: Option<(&[f64], &[f64])>,
        params: &BoostParams,
    ) -> Result<(Self, BoostHistory)> {
        let n_rows = y.len();
        if n_rows == 0 || n_features == 0 || x.len() != n_rows * n_features {
            return Err(WickError::InvalidSpec(format!(
                "boosted trees need a {n_rows}×{n_features} table, got {} values",
                x.len()
            )));
        }
        if params.trees == 0
            || !(params.learning_rate > 0.0 && params.learning_rate <= 1.0)
            || params.max_depth == 0
        {
            return Err(WickError::InvalidSpec(format!(
                "boosted trees need at least 1 tree, a depth of at least 1 and a learning rate in (0, 1]; got {} trees, depth {}, rate {}",
                params.trees, params.max_depth, params.learning_rate
            )));
        }
        let xt = column_major(x, n_rows, n_features);
        let data = Matrix::new(&xt, n_rows, n_features);
        let valid = valid.filter(|(_, vy)| !vy.is_empty());
        let vt = valid.map(|(vx, vy)| column_major(vx, vy.len(), n_features));
        let outputs: Vec<Option<usize>> = if n_classes > 2 {
            (0..n_classes).map(Some).collect()
        } else if n_classes == 2 {
            vec![Some(1)]
        } else {
            vec![None]
        };
        let mut boosters = Vec::with_capacity(outputs.len());
        let mut history = BoostHistory::default();
        for class in outputs {
            // One-vs-rest target for a class; the values themselves for regression.
            let target = |ys: &[f64]| -> Vec<f64> {
                match class {
                    Some(c) => ys
                        .iter()
                        .map(|&v| f64::from(u8::from(v as usize == c)))
                        .collect(),
                    None => ys.to_vec(),
                }
            };
            let (objective, metric) = match class {
                Some(_) => (ObjectiveType::LogLoss, Metric::LogLoss),
                None => (ObjectiveType::SquaredLoss, Metric::RootMeanSquaredError),
            };
            let mut booster = GradientBooster::default()
                .set_objective_type(objective)
                .set_iterations(params.trees)
                .set_learning_rate(params.learning_rate as f32)
                .set_max_depth(params.max_depth)
                .set_min_leaf_weight(params.min_leaf_weight as f32)
                .set_l2(params.l2 as f32)
                .set_nbins(256)
                .set_seed(params.seed)
                .set_evaluation_metric(Some(metric))
                .set_early_stopping_rounds(valid.and(params.early_stopping_rounds));
            let y_train = target(y);
            let weigh = |ys: &[f64]| -> Vec<f64> {
                match class_weights.filter(|_| n_classes >= 2) {
                    Some(w) => ys
                        .iter()
                        .map(|&c| w.get(c as usize).copied().unwrap_or(1.0))
                        .collect(),
                    None => vec![1.0; ys.len()],
                }
            };
            let ones_train = weigh(y);
            let y_valid = valid.map(|(_, vy)| target(vy));
            let ones_valid = valid.map(|(_, vy)| weigh(vy)).unwrap_or_default();
            // forust stops early on the last evaluation set, so the validation rows come last.
            let mut evals = Vec::new();
            if params.record_train_loss {
                evals.push((
                    Matrix::new(&xt, n_rows, n_features),
                    y_train.as_slice(),
                    ones_train.as_slice(),
                ));
            }
            if let (Some(vt), Some(vy)) = (&vt, &y_valid) {
                evals.push((
                    Matrix::new(vt, vy.len(), n_features),
                    vy.as_slice(),
                    ones_valid.as_slice(),
                ));
            }
            booster
                .fit(&data, &y_train, &ones_train, (!evals.is_empty()).then_some(evals))
                .map_err(|e| WickError::InvalidSpec(format!("boosted trees could not be fitted ({e}); check the features for extreme values, or try a random forest")))?;
            if let Some(h) = &booster.evaluation_history {
                // Summed over one-vs-rest models; squared for regression so it reads as the MSE loss.
                let square = class.is_none();
                let train_col = params.record_train_loss.then_some(0);
                let valid_col = vt.as_ref().map(|_| usize::from(params.record_train_loss));
                for i in 0..h.rows {
                    for (col, out) in [
                        (train_col, &mut history.train),
                        (valid_col, &mut history.valid),
                    ] {
                        if let Some(set) = col.filter(|&c| c < h.cols) {
                            let v = *h.get(i, set);
                            let v = if square { v * v } else { v };
                            if out.len() <= i {
                                out.push(v);
                            } else {
                                out[i] += v;
                            }
                        }
                    }
                }
            }
            history.trees_grown = history.trees_grown.max(booster.trees.len());
            let kept = booster
                .prediction_iteration
                .unwrap_or(booster.trees.len())
                .min(booster.trees.len());
            history.trees_kept = history.trees_kept.max(kept);
            boosters.push(booster);
        }
        Ok((
            Self {
                n_classes,
                n_features,
                boosters,
            },
            history,
        ))
    }

    /// Predicts rows of a row-major `x`: one value per row, or class probabilities.
    pub fn predict(&self, x: &[f64], n_rows: usize) -> Vec<f64> {
        let xt = column_major(x, n_rows, self.n_features);
        let data = Matrix::new(&xt, n_rows, self.n_features);
        let raw: Vec<Vec<f64>> = self
            .boosters
            .iter()
            .map(|b| b.predict(&data, true))
            .collect();
        match self.n_classes {
            0 | 1 => raw.into_iter().next().unwrap_or_default(),
            2 => raw[0]
                .iter()
                .flat_map(|&z| {
                    let p = sigmoid(z);
                    [1.0 - p, p]
                })
                .collect(),
            k => {
                let mut out = Vec::with_capacity(n_rows * k);
                for r in 0..n_rows {
                    let p: Vec<f64> = raw.iter().map(|z| sigmoid(z[r])).collect();
                    let sum: f64 = p.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                    out.extend(p.iter().map(|v| v / sum));
                }
                out
            }
        }
    }

    /// Exact TreeSHAP values (forust's `Shapley`) of one row, per feature and booster, in the
    /// booster's raw output (the value, or log-odds per class). Returns `(bias, [feature][booster])`.
    pub fn contributions(&self, row: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let data = Matrix::new(row, 1, self.n_features);
        let mut bias = Vec::new();
        let mut contrib = vec![Vec::new(); self.n_features];
        for b in &self.boosters {
            let c = b.predict_contributions(&data, ContributionsMethod::Shapley, false);
            for (f, out) in contrib.iter_mut().enumerate() {
                out.push(c.get(f).copied().unwrap_or(0.0));
            }
            bias.push(c.get(self.n_features).copied().unwrap_or(0.0));
        }
        (bias, contrib)
    }

    /// Total split gain of each feature, summed over the boosters.
    pub fn split_gain(&self) -> Vec<f64> {
        let mut out = vec![0.0; self.n_features];
        for b in &self.boosters {
            for (f, g) in b.calculate_feature_importance(ImportanceMethod::TotalGain, false) {
                if let Some(o) = out.get_mut(f) {
                    *o += g as f64;
                }
            }
        }
        out
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BoostParams {
        BoostParams {
            trees: 50,
            learning_rate: 0.2,
            max_depth: 3,
            min_leaf_weight: 1.0,
            l2: 1.0,
            early_stopping_rounds: Some(5),
            seed: 0,
            record_train_loss: true,
        }
    }

    #[test]
    fn shapley_values_add_up_to_the_raw_prediction() {
        let x: Vec<f64> = (0..400)
            .flat_map(|i| {
                [
                    (i % 13) as f64,
                    if i % 7 == 0 { f64::NAN } else { (i % 3) as f64 },
                ]
            })
            .collect();
        let y: Vec<f64> = x
            .chunks(2)
            .map(|r| r[0] * 0.5 + if r[1].is_nan() { 3.0 } else { r[1] })
            .collect();
        let (model, history) =
            Boosted::fit(&x, 2, &y, None, 0, Some((&x[..200], &y[..100])), &params()).unwrap();
        assert!(history.trees_kept > 0 && !history.valid.is_empty());
        let row = [4.0, f64::NAN];
        let (bias, c) = model.contributions(&row);
        let total = bias[0] + c[0][0] + c[1][0];
        assert!(
            (total - model.predict(&row, 1)[0]).abs() < 1e-6,
            "{total} vs {:?}",
            model.predict(&row, 1)
        );
        assert!(
            (model.predict(&row, 1)[0] - 5.0).abs() < 0.5,
            "missing values learn their own branch"
        );
    }

    #[test]
    fn three_classes_give_normalised_probabilities() {
        let x: Vec<f64> = (0..300).map(|i| (i % 30) as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| (v / 10.0).floor()).collect();
        let (model, _) = Boosted::fit(&x, 1, &y, None, 3, None, &params()).unwrap();
        let p = model.predict(&[5.0, 25.0], 2);
        assert!((p[..3].iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(p[0] > 0.8 && p[5] > 0.8, "{p:?}");
    }
}
