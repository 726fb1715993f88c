//! Publishing packages to a Wick endpoint (`wick-serve`), and managing its versions.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::package::{pack_package, read_manifest};

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
    Server { url: String, status: u16, message: String },
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

/// A model on an endpoint, as the server lists it (one definition for client and server).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelListing {
    pub name: String,
    pub default_version: Option<u64>,
    pub public: bool,
    pub versions: Vec<VersionRecord>,
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
            .map_err(|e| PublishError::Unreachable { url: url.into(), detail: e.to_string() })?;
        Ok(Self { base: url.trim_end_matches('/').to_string(), token: token.to_string(), client })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn send(&self, request: reqwest::blocking::RequestBuilder) -> Result<reqwest::blocking::Response, PublishError> {
        let response = request.bearer_auth(&self.token).send().map_err(|e| self.transport_error(e))?;
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
            _ => PublishError::Server { url, status, message },
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> PublishError {
        let detail = error_chain(&e);
        let lower = detail.to_lowercase();
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
            PublishError::Tls { url: self.base.clone(), detail }
        } else {
            PublishError::Unreachable { url: self.base.clone(), detail }
        }
    }

    /// Checks that the endpoint is a Wick server (an Open Inference Protocol server with Wick's registry).
    pub fn check(&self) -> Result<(), PublishError> {
        let response = self.client.get(format!("{}/v2", self.base)).send().map_err(|e| self.transport_error(e))?;
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
                Some(b) if b.get("name").is_some() => "an inference server without Wick's registry".to_string(),
                _ => format!("GET /v2 answered {status} without Open Inference Protocol server metadata"),
            };
            Err(PublishError::NotWick { url: self.base.clone(), detail })
        }
    }

    /// Uploads a package folder as a new version of `name` (default: the package's own name).
    pub fn publish(&self, package: &Path, name: Option<&str>, notes: &str) -> Result<Published, PublishError> {
        let manifest = read_manifest(package)?;
        let name = name.unwrap_or(&manifest.name).to_string();
        let archive = pack_package(package)?;
        let sha256 = hex::encode(Sha256::digest(&archive));
        self.check()?;
        let url = format!("{}/v2/wick/models/{name}/versions", self.base);
        let response = self.send(self.client.post(url).query(&[("notes", notes)]).header("x-wick-sha256", &sha256).body(archive))?;
        response.json().map_err(|e| PublishError::NotWick { url: self.base.clone(), detail: e.to_string() })
    }

    /// The inference URL of a published version.
    pub fn infer_url(&self, published: &Published) -> String {
        format!("{}/v2/models/{}/versions/{}/infer", self.base, published.name, published.version)
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
            .map_err(|e| PublishError::NotWick { url: self.base.clone(), detail: e.to_string() })?;
        Ok(a.models)
    }

    /// Makes `version` the default of `name` (a rollback when it is older).
    pub fn set_default(&self, name: &str, version: u64) -> Result<(), PublishError> {
        self.check()?;
        self.send(self.client.post(format!("{}/v2/wick/models/{name}/default", self.base)).json(&serde_json::json!({ "version": version })))?;
        Ok(())
    }

    pub fn set_public(&self, name: &str, public: bool) -> Result<(), PublishError> {
        self.check()?;
        self.send(self.client.post(format!("{}/v2/wick/models/{name}/public", self.base)).json(&serde_json::json!({ "public": public })))?;
        Ok(())
    }
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
