//! What a training run measured, below `package` (which keeps it in the manifest) and `train`.

use serde::{Deserialize, Serialize};

use crate::data::fingerprint::DatasetFingerprint;
use crate::data::Split;
use crate::metrics::Metrics;
use crate::model::{Model, Prediction};
use crate::run::TrainConfig;

/// Which part of the data a metric was measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitName {
    Train,
    Valid,
    Test,
}

/// A metric's value at the end of one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub epoch: usize,
    pub split: SplitName,
    pub name: String,
    pub value: f64,
}

/// The true value of a test sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Actual {
    Value(f64),
    Class(usize),
}

/// One test-split sample with its prediction, kept for plots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestSample {
    /// The table row (1-based) or the image path.
    pub source: String,
    pub actual: Actual,
    pub predicted: Prediction,
}

/// What a run measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainReport {
    /// Metrics on the held-out test rows; `None` when the test fraction is 0 and every row trained
    /// the model (a final refit before shipping), so no honest held-out figure exists.
    pub test: Option<Metrics>,
    pub history: Vec<MetricPoint>,
    #[serde(skip)]
    pub test_samples: Vec<TestSample>,
    pub warnings: Vec<String>,
    pub dataset: DatasetFingerprint,
    pub config: TrainConfig,
    pub device: String,
    pub epochs_run: usize,
    pub best_epoch: usize,
    pub duration_secs: f64,
    pub rows: SplitSizes,
    /// For a file too large to load: whether every row trained, or a sample (and why).
    #[serde(default)]
    pub rows_used: Option<RowsUsed>,
    /// A table model's training distributions, which an endpoint compares live inputs with.
    #[serde(default)]
    pub training_profile: Option<crate::drift::TrainingProfile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSizes {
    pub train: usize,
    pub valid: usize,
    pub test: usize,
}

impl From<&Split> for SplitSizes {
    fn from(s: &Split) -> Self {
        Self {
            train: s.train.len(),
            valid: s.valid.len(),
            test: s.test.len(),
        }
    }
}

pub struct TrainOutcome {
    pub model: Model,
    pub report: TrainReport,
}

/// How a run on a large file used its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowsUsed {
    /// Every row with a target, read from the file in chunks.
    EveryRow { rows: usize },
    /// A seeded sample of `rows` of the file's `of`; `stratified` when each class kept its share.
    Sample {
        rows: usize,
        of: usize,
        stratified: bool,
        reason: String,
    },
}

impl RowsUsed {
    /// One sentence for the Train screen and the CLI.
    pub fn describe(&self) -> String {
        match self {
            Self::EveryRow { rows } => {
                format!("trained on every one of the file's {rows} rows, read from disk in chunks")
            }
            Self::Sample {
                rows,
                of,
                stratified,
                reason,
            } => {
                let kind = if *stratified {
                    "stratified (each class keeps its share)"
                } else {
                    "uniform"
                };
                format!(
                    "trained on a seeded {kind} sample of {rows} of the file's {of} rows: {reason}"
                )
            }
        }
    }
}
