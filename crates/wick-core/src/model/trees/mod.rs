//! Tree models: gradient-boosted trees ([`boosted`], via forust-ml) and a random forest
//! ([`forest`], Wick's own). Both read the tree encoding of a table: numbers as they are, text as
//! category codes, and missing values as NaN, which every split sends down a learned side.

pub mod boosted;
pub mod forest;

use serde::{Deserialize, Serialize};

pub use boosted::{BoostHistory, BoostParams, Boosted};
pub use forest::{Forest, ForestParams};

/// A fitted tree ensemble; the package's `trees.json` is this value as JSON.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TreeEnsemble {
    Boosted(Boosted),
    Forest(Forest),
}

/// One row's prediction split into per-feature parts: `bias + Σ per_feature[f]` is the model's
/// output for each output column (the value, or each class's score).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contributions {
    /// What the parts add to: `value` for regression, `log-odds` for boosted classes, `probability`
    /// for forest classes.
    pub scale: String,
    pub bias: Vec<f64>,
    /// `[feature][output]`, in the preprocessor's feature order.
    pub per_feature: Vec<Vec<f64>>,
}

impl TreeEnsemble {
    /// Predicts rows of a row-major table: one value per row, or one probability per class.
    pub fn predict(&self, x: &[f64], n_rows: usize) -> Vec<f64> {
        match self {
            Self::Boosted(b) => b.predict(x, n_rows),
            Self::Forest(f) => f.predict(x, n_rows),
        }
    }

    /// Total split gain per feature, normalised to sum to 1 (all zeros for a model without splits).
    pub fn split_gain(&self) -> Vec<f64> {
        let raw = match self {
            Self::Boosted(b) => b.split_gain(),
            Self::Forest(f) => f.split_gain.clone(),
        };
        let total: f64 = raw.iter().sum();
        if total > 0.0 {
            raw.iter().map(|g| g / total).collect()
        } else {
            raw
        }
    }

    /// Per-feature contributions to one encoded row: exact TreeSHAP for boosted trees, path
    /// attribution (Saabas) for the forest.
    pub fn contributions(&self, row: &[f64]) -> Contributions {
        match self {
            Self::Boosted(b) => {
                let (bias, per_feature) = b.contributions(row);
                let scale = if b.n_classes >= 2 {
                    "log-odds"
                } else {
                    "value"
                };
                Contributions {
                    scale: scale.into(),
                    bias,
                    per_feature,
                }
            }
            Self::Forest(f) => {
                let (bias, per_feature) = f.contributions(row);
                let scale = if f.n_outputs > 1 {
                    "probability"
                } else {
                    "value"
                };
                Contributions {
                    scale: scale.into(),
                    bias,
                    per_feature,
                }
            }
        }
    }
}
