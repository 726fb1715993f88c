//! Server configuration: defaults, a TOML file, then `WICK_SERVE_*` environment variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ServeError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// Address to listen on. Loopback by default: exposing a server is a deliberate choice.
    pub listen: SocketAddr,
    /// Model store: a local folder, or `s3://bucket/prefix` (credentials and endpoint from the usual
    /// `AWS_*` variables) shared by several replicas.
    pub store: String,
    /// Where tokens and unpacked model caches live.
    pub data_dir: PathBuf,
    /// Token file (hashes only); defaults to `<data_dir>/tokens.json`.
    pub tokens_file: Option<PathBuf>,
    /// Largest request body accepted for publishing a package (413 above).
    pub max_body_bytes: usize,
    /// Largest inference request body (413 above); Triton's HTTP default.
    pub max_infer_body_bytes: usize,
    /// Inference bodies held at once, in bytes; a request that would exceed it is answered 503.
    /// Parsing holds at most 8 more bytes per tensor element, up to `max_tensor_elements`.
    pub max_inflight_infer_bytes: usize,
    /// Most tensor elements in one inference request (413 above).
    pub max_tensor_elements: usize,
    pub request_timeout_secs: u64,
    /// Requests processed at once; more are answered 503 with Retry-After.
    pub max_concurrent_requests: usize,
    /// How often the store is re-read for versions published by other replicas.
    pub refresh_interval_secs: u64,
    /// PEM certificate chain and private key: serve HTTPS instead of HTTP when both are set.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Worker threads, each answering its own connections; 0 = one per CPU.
    pub worker_threads: usize,
    /// After a request, a worker keeps polling for this many µs before it sleeps, so that a client's
    /// next request finds it awake (waking a sleeping thread costs tens of µs on virtual machines).
    /// Costs at most this much CPU per request; 0 turns it off.
    pub idle_spin_us: u64,
    /// Days request logs and feedback are kept in the store.
    pub log_retention_days: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        let data_dir = directories::ProjectDirs::from("dev", "Wick", "wick")
            .map(|d| d.data_dir().join("serve"))
            .unwrap_or_else(|| PathBuf::from("wick-serve-data"));
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            store: data_dir.join("models").to_string_lossy().to_string(),
            data_dir,
            tokens_file: None,
            max_body_bytes: 256 * 1024 * 1024,
            max_infer_body_bytes: 64 * 1024 * 1024,
            max_inflight_infer_bytes: 256 * 1024 * 1024,
            max_tensor_elements: 16 * 1024 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 256,
            refresh_interval_secs: 2,
            tls_cert: None,
            tls_key: None,
            worker_threads: 0,
            idle_spin_us: 100,
            log_retention_days: 30,
        }
    }
}

impl ServeConfig {
    /// Defaults, overridden by `file` (if given) and then by environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ServeError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ServeError::Io {
                    path: path.to_path_buf(),
                    source: e,
                })?;
                toml::from_str(&text)
                    .map_err(|e| ServeError::Config(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.check()?;
        Ok(config)
    }

    /// Refuses limits that contradict each other.
    pub fn check(&self) -> Result<(), ServeError> {
        if self.max_inflight_infer_bytes < self.max_infer_body_bytes {
            return Err(ServeError::Config(format!(
                "max_inflight_infer_bytes ({}) is below max_infer_body_bytes ({}), so a request of the largest allowed size could never \
                 be taken; raise max_inflight_infer_bytes (WICK_SERVE_MAX_INFLIGHT_INFER_BYTES) or lower max_infer_body_bytes",
                self.max_inflight_infer_bytes, self.max_infer_body_bytes
            )));
        }
        Ok(())
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ServeError> {
        fn parse<T: std::str::FromStr>(key: &str, value: String) -> Result<T, ServeError> {
            value
                .parse()
                .map_err(|_| ServeError::Config(format!("{key}={value:?} is not valid")))
        }
        if let Some(v) = get("WICK_SERVE_LISTEN") {
            self.listen = parse("WICK_SERVE_LISTEN", v)?;
        }
        if let Some(v) = get("WICK_SERVE_STORE") {
            self.store = v;
        }
        if let Some(v) = get("WICK_SERVE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("WICK_SERVE_TOKENS_FILE") {
            self.tokens_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("WICK_SERVE_LOG_RETENTION_DAYS") {
            self.log_retention_days = parse("WICK_SERVE_LOG_RETENTION_DAYS", v)?;
        }
        if let Some(v) = get("WICK_SERVE_MAX_BODY_BYTES") {
            self.max_body_bytes = parse("WICK_SERVE_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = get("WICK_SERVE_MAX_INFER_BODY_BYTES") {
            self.max_infer_body_bytes = parse("WICK_SERVE_MAX_INFER_BODY_BYTES", v)?;
        }
        if let Some(v) = get("WICK_SERVE_MAX_INFLIGHT_INFER_BYTES") {
            self.max_inflight_infer_bytes = parse("WICK_SERVE_MAX_INFLIGHT_INFER_BYTES", v)?;
        }
        if let Some(v) = get("WICK_SERVE_MAX_TENSOR_ELEMENTS") {
            self.max_tensor_elements = parse("WICK_SERVE_MAX_TENSOR_ELEMENTS", v)?;
        }
        if let Some(v) = get("WICK_SERVE_REQUEST_TIMEOUT_SECS") {
            self.request_timeout_secs = parse("WICK_SERVE_REQUEST_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = get("WICK_SERVE_MAX_CONCURRENT_REQUESTS") {
            self.max_concurrent_requests = parse("WICK_SERVE_MAX_CONCURRENT_REQUESTS", v)?;
        }
        if let Some(v) = get("WICK_SERVE_TLS_CERT") {
            self.tls_cert = Some(PathBuf::from(v));
        }
        if let Some(v) = get("WICK_SERVE_TLS_KEY") {
            self.tls_key = Some(PathBuf::from(v));
        }
        if let Some(v) = get("WICK_SERVE_WORKER_THREADS") {
            self.worker_threads = parse("WICK_SERVE_WORKER_THREADS", v)?;
        }
        if let Some(v) = get("WICK_SERVE_IDLE_SPIN_US") {
            self.idle_spin_us = parse("WICK_SERVE_IDLE_SPIN_US", v)?;
        }
        if let Some(v) = get("WICK_SERVE_REFRESH_INTERVAL_SECS") {
            self.refresh_interval_secs = parse("WICK_SERVE_REFRESH_INTERVAL_SECS", v)?;
        }
        Ok(())
    }

    pub fn tokens_path(&self) -> PathBuf {
        self.tokens_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("tokens.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        std::fs::write(&path, "listen = \"0.0.0.0:9000\"\nmax_body_bytes = 1000\n").unwrap();
        let mut c: ServeConfig = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        c.apply_env(|k| (k == "WICK_SERVE_MAX_BODY_BYTES").then(|| "2000".to_string()))
            .unwrap();
        assert_eq!(c.max_body_bytes, 2000);
        let err = c
            .apply_env(|k| (k == "WICK_SERVE_LISTEN").then(|| "nope".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("WICK_SERVE_LISTEN"));
        let err = toml::from_str::<ServeConfig>("lisen = \"x\"").unwrap_err();
        assert!(err.to_string().contains("lisen"));
    }

    #[test]
    fn an_inflight_budget_below_the_body_limit_is_refused() {
        assert!(ServeConfig::default().check().is_ok());
        let c = ServeConfig {
            max_infer_body_bytes: 64 << 20,
            max_inflight_infer_bytes: 32 << 20,
            ..ServeConfig::default()
        };
        let err = c.check().unwrap_err().to_string();
        assert!(
            err.contains("max_inflight_infer_bytes")
                && err.contains("WICK_SERVE_MAX_INFLIGHT_INFER_BYTES"),
            "{err}"
        );
    }
}
