//! The endpoint's wire types: the JSON that `wick-serve` answers and its clients (`publish`, the app,
//! the CLI) read. One definition for both sides, in a module of its own so the server does not
//! depend on the HTTP client.

use serde::{Deserialize, Serialize};

/// The result of a publish, as the server answers it (one definition for client and server).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub name: String,
    pub version: u64,
    pub sha256: String,
    /// Identical bytes were already published as this version.
    pub existing: bool,
}

/// A model on an endpoint, as the server lists it (one definition for client and server).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelListing {
    pub name: String,
    pub default_version: Option<u64>,
    pub public: bool,
    pub versions: Vec<VersionRecord>,
    /// A traffic split: the percentage of unversioned calls each version answers (a canary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<std::collections::BTreeMap<u64, u32>>,
    /// The share of inference requests the endpoint logs (absent: logging off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_sample: Option<f64>,
}

impl ModelListing {
    /// The version that answers most unversioned calls (see [`serving_version`]).
    pub fn serving_version(&self) -> Option<u64> {
        serving_version(self.traffic.as_ref(), self.default_version)
    }
}

/// The version that answers most of a model's unversioned calls: the largest share of a traffic
/// split (the older on a tie), whichever the default is, else the default. The one rule the
/// server (what a canary runs beside, whose inputs a new version must take) and the app (which
/// row says "serving") share.
pub fn serving_version(
    split: Option<&std::collections::BTreeMap<u64, u32>>,
    default_version: Option<u64>,
) -> Option<u64> {
    match split.filter(|s| !s.is_empty()) {
        Some(split) => split
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(v, _)| *v),
        None => default_version,
    }
}

/// The inference URL of `version` of `name` on the endpoint at `base_url`.
pub fn infer_url(base_url: &str, name: &str, version: u64) -> String {
    format!(
        "{}/v2/models/{name}/versions/{version}/infer",
        base_url.trim_end_matches('/')
    )
}

/// An endpoint's live figures of one model (`GET /v2/wick/models/{name}/monitor`): per version,
/// over the last `window_secs`, as the answering server saw them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorReport {
    pub model: String,
    pub window_secs: f64,
    /// The share of requests the endpoint logs (0: logging off).
    pub log_sample: f64,
    /// By version number, as text (JSON's keys).
    pub versions: std::collections::BTreeMap<String, VersionFigures>,
}

/// Live figures of one version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionFigures {
    pub requests: usize,
    pub errors: usize,
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    /// Classification: how often each class was predicted.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub predicted_classes: std::collections::BTreeMap<String, usize>,
    /// Regression: the predicted values' spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_values: Option<ValueSummary>,
    pub feedback: usize,
    /// PSI of each feature's live values against training, the worst first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift: Vec<FeatureDrift>,
    /// PSI of the predictions against the training target's distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction_drift: Option<FeatureDrift>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_accuracy: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_mae: Option<f64>,
}

/// How far one feature (or the predictions) has moved from training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub psi: f64,
    /// `psi` above [`crate::drift::DRIFT_PSI`], from at least [`crate::drift::MIN_DRIFT_ROWS`] values.
    pub drifting: bool,
    /// Live values it was computed from.
    pub rows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueSummary {
    pub count: usize,
    pub mean: f64,
    pub p10: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
}

/// One immutable version of a model on an endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u64,
    pub sha256: String,
    pub size_bytes: u64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    pub notes: String,
}

/// Logged requests with feedback, as `GET /v2/wick/models/{name}/labelled` returns them: the rows
/// *Improve with live data* adds to a dataset.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelledRows {
    pub model: String,
    pub rows: Vec<LabelledRow>,
    /// Columns the log holds only as hashes (personal data): their values come back missing.
    #[serde(default)]
    pub hashed: Vec<String>,
}

/// One logged request's first row: its feature values by name, and the outcome feedback gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledRow {
    pub id: String,
    pub version: u64,
    pub values: std::collections::BTreeMap<String, serde_json::Value>,
    /// A class label (text) or a number.
    pub outcome: serde_json::Value,
}

/// Logged requests waiting for a person's label (`GET /v2/wick/models/{name}/queue`), the ones the
/// model was least sure of first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LabelQueue {
    pub model: String,
    pub requests: Vec<QueuedRequest>,
    /// The serving version's class labels, to pick from (empty for a regression).
    #[serde(default)]
    pub labels: Vec<String>,
}

/// One logged request without feedback: its first row, and what the model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedRequest {
    pub id: String,
    pub version: u64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub values: std::collections::BTreeMap<String, serde_json::Value>,
    /// The answer's first prediction: a class label or a number.
    pub predicted: serde_json::Value,
    /// The predicted class's probability (classification).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
}
