//! Publishing packages to a Wick endpoint (`wick-serve`), and managing its versions.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::package::{pack_package, read_manifest, Manifest};

/// Why talking to an endpoint failed, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{url} can't be reached ({detail}); check the URL and that the server is running")]
    Unreachable { url: String, detail: String },
    #[error("TLS with {url} failed ({detail}); check the certificate or use the right http/https scheme")]
    Tls { url: String, detail: String },
    #[error("{url} refused the token (401): check that it is correct and not revoked")]
    Unauthorized { url: String },
    #[error("{url} refused the request (403): {message}")]
    Forbidden { url: String, message: String },
    #[error("{url} refused the upload as too large (413): raise the server's max_body_bytes or publish a smaller model")]
    TooLarge { url: String },
    #[error("{url} is not a Wick endpoint ({detail}); point --endpoint at a wick-serve server")]
    NotWick { url: String, detail: String },
    #[error("{url} answered {status}: {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
    },
    #[error(transparent)]
    Package(#[from] crate::WickError),
}

/// The result of a publish, as the server answers it (one definition for client and server).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Published {
    pub name: String,
    pub version: u64,
    pub sha256: String,
    /// Identical bytes were already published as this version.
    pub existing: bool,
}

/// How a new version goes live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishOptions {
    /// Send the new version this percent of the unversioned calls and the serving version the rest,
    /// in the same step (the serving version stays the default). Needs a serving version and no
    /// canary already running.
    pub canary_percent: Option<u32>,
    /// Let the new version take other inputs than the serving one (callers must change with it).
    /// Without it such a version is refused: its callers' requests would fail.
    pub replace_inputs: bool,
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

/// An endpoint and its token.
pub struct Endpoint {
    base: String,
    token: String,
    client: reqwest::blocking::Client,
}

impl Endpoint {
    pub fn new(url: &str, token: &str) -> Result<Self, PublishError> {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PublishError::Unreachable {
                url: url.into(),
                detail: e.to_string(),
            })?;
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
            token: token.to_string(),
            client,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn send(
        &self,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, PublishError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        let url = self.base.clone();
        let message = response
            .json::<serde_json::Value>()
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| "no error message".into());
        Err(match status {
            401 => PublishError::Unauthorized { url },
            403 => PublishError::Forbidden { url, message },
            413 => PublishError::TooLarge { url },
            _ => PublishError::Server {
                url,
                status,
                message,
            },
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> PublishError {
        let detail = error_chain(&e);
        let lower = detail.to_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
            PublishError::Tls {
                url: self.base.clone(),
                detail,
            }
        } else {
            PublishError::Unreachable {
                url: self.base.clone(),
                detail,
            }
        }
    }

    /// Checks that the endpoint is a Wick server (an Open Inference Protocol server with Wick's registry).
    pub fn check(&self) -> Result<(), PublishError> {
        let response = self
            .client
            .get(format!("{}/v2", self.base))
            .send()
            .map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let body: Option<serde_json::Value> = response.json().ok();
        let is_wick = body
            .as_ref()
            .and_then(|b| b.get("extensions"))
            .and_then(|e| e.as_array())
            .is_some_and(|e| e.iter().any(|x| x == "wick_registry"));
        if is_wick {
            Ok(())
        } else {
            let detail = match body {
                Some(b) if b.get("name").is_some() => {
                    "an inference server without Wick's registry".to_string()
                }
                _ => format!(
                    "GET /v2 answered {status} without Open Inference Protocol server metadata"
                ),
            };
            Err(PublishError::NotWick {
                url: self.base.clone(),
                detail,
            })
        }
    }

    /// Uploads a package folder as a new version of `name` (default: the package's own name).
    pub fn publish(
        &self,
        package: &Path,
        name: Option<&str>,
        notes: &str,
    ) -> Result<Published, PublishError> {
        self.publish_with(package, name, notes, &PublishOptions::default())
    }

    /// [`Endpoint::publish`] as a canary, or replacing what callers send (see [`PublishOptions`]).
    pub fn publish_with(
        &self,
        package: &Path,
        name: Option<&str>,
        notes: &str,
        options: &PublishOptions,
    ) -> Result<Published, PublishError> {
        let manifest = read_manifest(package)?;
        let name = name.unwrap_or(&manifest.name).to_string();
        let archive = pack_package(package)?;
        let sha256 = hex::encode(Sha256::digest(&archive));
        self.check()?;
        let url = format!("{}/v2/wick/models/{name}/versions", self.base);
        let mut query = vec![("notes", notes.to_string())];
        if let Some(p) = options.canary_percent {
            query.push(("canary", p.to_string()));
        }
        if options.replace_inputs {
            query.push(("replace_inputs", "true".into()));
        }
        let response = self.send(
            self.client
                .post(url)
                .query(&query)
                .header("x-wick-sha256", &sha256)
                .body(archive),
        )?;
        response.json().map_err(|e| PublishError::NotWick {
            url: self.base.clone(),
            detail: e.to_string(),
        })
    }

    /// The inference URL of a published version.
    pub fn infer_url(&self, published: &Published) -> String {
        infer_url(&self.base, &published.name, published.version)
    }

    pub fn models(&self) -> Result<Vec<ModelListing>, PublishError> {
        self.check()?;
        #[derive(Deserialize)]
        struct Answer {
            models: Vec<ModelListing>,
        }
        let a: Answer = self
            .send(self.client.get(format!("{}/v2/wick/models", self.base)))?
            .json()
            .map_err(|e| PublishError::NotWick {
                url: self.base.clone(),
                detail: e.to_string(),
            })?;
        Ok(a.models)
    }

    /// Makes `version` the default of `name` (a rollback when it is older).
    pub fn set_default(&self, name: &str, version: u64) -> Result<(), PublishError> {
        self.check()?;
        self.send(
            self.client
                .post(format!("{}/v2/wick/models/{name}/default", self.base))
                .json(&serde_json::json!({ "version": version })),
        )?;
        Ok(())
    }

    /// Splits `name`'s unversioned calls between versions by percentage (they must add up to 100), e.g.
    /// `{2: 90, 3: 10}` for a canary of version 3. Making a version the default ends the split.
    pub fn set_traffic(
        &self,
        name: &str,
        percent: &std::collections::BTreeMap<u64, u32>,
    ) -> Result<(), PublishError> {
        self.check()?;
        let versions: serde_json::Map<String, serde_json::Value> = percent
            .iter()
            .map(|(v, p)| (v.to_string(), serde_json::json!(p)))
            .collect();
        self.send(
            self.client
                .put(format!("{}/v2/wick/models/{name}/traffic", self.base))
                .json(&serde_json::json!({ "versions": versions })),
        )?;
        Ok(())
    }

    /// Logs `sample` (0 to 1) of the model's inference requests to the endpoint's store; 0 turns
    /// logging off.
    pub fn set_logging(&self, name: &str, sample: f64) -> Result<(), PublishError> {
        self.check()?;
        self.send(
            self.client
                .put(format!("{}/v2/wick/models/{name}/logging", self.base))
                .json(&serde_json::json!({ "sample": sample })),
        )?;
        Ok(())
    }

    /// The endpoint's live figures of `name` per version over the last `window_secs`.
    pub fn monitor(&self, name: &str, window_secs: f64) -> Result<MonitorReport, PublishError> {
        self.check()?;
        self.send(self.client.get(format!(
            "{}/v2/wick/models/{name}/monitor?window_secs={window_secs}",
            self.base
        )))?
        .json()
        .map_err(|e| PublishError::NotWick {
            url: self.base.clone(),
            detail: e.to_string(),
        })
    }

    /// Records the true outcome of a logged request: a class label or a number.
    pub fn feedback(
        &self,
        name: &str,
        id: &str,
        outcome: &serde_json::Value,
    ) -> Result<(), PublishError> {
        let mut body = serde_json::json!({ "id": id });
        match outcome {
            serde_json::Value::Number(_) => body["value"] = outcome.clone(),
            other => {
                body["label"] = serde_json::Value::String(
                    other
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| other.to_string()),
                )
            }
        }
        self.send(
            self.client
                .post(format!("{}/v2/wick/models/{name}/feedback", self.base))
                .json(&body),
        )?;
        Ok(())
    }

    /// Sends an Open Inference Protocol request to `name` (its default version when `version` is `None`)
    /// and returns the response body.
    pub fn infer(
        &self,
        name: &str,
        version: Option<u64>,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, PublishError> {
        let url = match version {
            Some(v) => format!("{}/v2/models/{name}/versions/{v}/infer", self.base),
            None => format!("{}/v2/models/{name}/infer", self.base),
        };
        self.send(self.client.post(url).json(body))?
            .json()
            .map_err(|e| PublishError::NotWick {
                url: self.base.clone(),
                detail: e.to_string(),
            })
    }

    /// The logged requests of `name` that have feedback, as rows with their true outcome (all
    /// versions; the first row of each request, the one feedback is about).
    pub fn labelled_rows(&self, name: &str) -> Result<LabelledRows, PublishError> {
        self.check()?;
        self.send(
            self.client
                .get(format!("{}/v2/wick/models/{name}/labelled", self.base)),
        )?
        .json()
        .map_err(|e| PublishError::NotWick {
            url: self.base.clone(),
            detail: e.to_string(),
        })
    }

    /// Up to `limit` logged requests of `name` without feedback, the least sure first.
    pub fn label_queue(&self, name: &str, limit: usize) -> Result<LabelQueue, PublishError> {
        self.check()?;
        self.send(self.client.get(format!(
            "{}/v2/wick/models/{name}/queue?limit={limit}",
            self.base
        )))?
        .json()
        .map_err(|e| PublishError::NotWick {
            url: self.base.clone(),
            detail: e.to_string(),
        })
    }

    pub fn set_public(&self, name: &str, public: bool) -> Result<(), PublishError> {
        self.check()?;
        self.send(
            self.client
                .post(format!("{}/v2/wick/models/{name}/public", self.base))
                .json(&serde_json::json!({ "public": public })),
        )?;
        Ok(())
    }
}

/// A value a model's input takes, for examples: a number's training fill value, a category the
/// model knows, a date; zeros for images.
fn example_value(manifest: &Manifest, input: &crate::package::TensorSpec) -> serde_json::Value {
    use crate::data::FeatureEncoder;
    let encoder = match &manifest.preprocessing {
        crate::model::ModelInput::Tabular { preprocessor } => preprocessor
            .encoders
            .iter()
            .find(|e| e.name() == input.name),
        crate::model::ModelInput::Image { .. } => None,
    };
    match (encoder, input.datatype.as_str()) {
        (Some(FeatureEncoder::Numeric { fill, .. }), _) => serde_json::json!(fill),
        (Some(FeatureEncoder::OneHot { fill, .. }), _) => serde_json::json!(fill),
        (Some(FeatureEncoder::Code { categories, .. }), _) => {
            serde_json::json!(categories.first().cloned().unwrap_or_default())
        }
        (Some(FeatureEncoder::Date { .. }), _) => serde_json::json!("2024-01-01"),
        (_, "BYTES") => serde_json::json!("value"),
        (_, "UINT8") => serde_json::json!(0),
        _ => serde_json::json!(0.0),
    }
}

/// A request body that works for a model, with one row of example values (see `example_value`).
pub fn example_request(manifest: &Manifest) -> serde_json::Value {
    let inputs: Vec<serde_json::Value> = manifest
        .inputs
        .iter()
        .map(|t| {
            let shape = example_shape(&t.shape);
            let n = shape.iter().product::<i64>().max(0) as usize;
            let data = serde_json::Value::Array(vec![example_value(manifest, t); n]);
            serde_json::json!({ "name": t.name, "shape": shape, "datatype": t.datatype, "data": data })
        })
        .collect();
    serde_json::json!({ "inputs": inputs })
}

/// A tensor shape with its variable (batch) dimensions set to 1.
fn example_shape(shape: &[i64]) -> Vec<i64> {
    let mut out: Vec<i64> = shape.iter().map(|&d| if d < 0 { 1 } else { d }).collect();
    if out.is_empty() {
        out.push(1);
    }
    out
}

/// A ready-to-paste `curl` call of `infer_url` with `body`; the token is read from `$WICK_TOKEN`.
pub fn curl_example(infer_url: &str, body: &serde_json::Value) -> String {
    format!(
        "curl -s -X POST {infer_url} \\\n  -H \"Authorization: Bearer $WICK_TOKEN\" -H 'Content-Type: application/json' \\\n  -d '{body}'"
    )
}

/// A ready-to-paste Python snippet calling a published version with the stock `tritonclient[http]`.
/// A `tritonclient` call of a published version. `request`, an Open Inference Protocol request body
/// (a real test row), gives table inputs their values; without it each input takes an example
/// value the model knows.
pub fn python_example(
    base_url: &str,
    name: &str,
    version: u64,
    manifest: &Manifest,
    request: Option<&serde_json::Value>,
) -> String {
    let host = base_url
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let ssl = if base_url.starts_with("https://") {
        ", ssl=True"
    } else {
        ""
    };
    let mut s = format!(
        "import os, numpy as np, tritonclient.http as http\nclient = http.InferenceServerClient(\"{host}\"{ssl})\nheaders = {{\"Authorization\": \"Bearer \" + os.environ[\"WICK_TOKEN\"]}}\ninputs = []\n"
    );
    for t in &manifest.inputs {
        let dtype = match t.datatype.as_str() {
            "BYTES" => "object",
            "UINT8" => "np.uint8",
            _ => "np.float64",
        };
        // JSON's numbers and strings read the same in Python.
        let from_request = request
            .and_then(|r| {
                r["inputs"]
                    .as_array()?
                    .iter()
                    .find(|i| i["name"] == t.name.as_str())?["data"]
                    .as_array()?
                    .first()
                    .cloned()
            })
            .filter(|v| (v.is_number() || v.is_string()) && t.datatype != "UINT8");
        let value = from_request
            .unwrap_or_else(|| example_value(manifest, t))
            .to_string();
        let shape: Vec<String> = example_shape(&t.shape).iter().map(i64::to_string).collect();
        s.push_str(&format!(
            "x = http.InferInput(\"{}\", [{}], \"{}\")\nx.set_data_from_numpy(np.full(({},), {value}, dtype={dtype}).reshape([{}]), binary_data=False)\ninputs.append(x)\n",
            t.name,
            shape.join(", "),
            t.datatype,
            shape.join(" * "),
            shape.join(", ")
        ));
    }
    s.push_str(&format!(
        "outputs = [http.InferRequestedOutput(o, binary_data=False) for o in {:?}]\nprint(client.infer(\"{name}\", inputs, model_version=\"{version}\", outputs=outputs, headers=headers).get_response())",
        manifest.outputs.iter().map(|o| o.name.clone()).collect::<Vec<_>>()
    ));
    s
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
