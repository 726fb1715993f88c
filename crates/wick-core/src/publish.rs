//! Publishing packages to a Wick endpoint (`wick-serve`), and managing its versions.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::package::{pack_package, read_manifest, Manifest};
use crate::wire::{infer_url, LabelQueue, LabelledRows, ModelListing, MonitorReport, Published};

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
