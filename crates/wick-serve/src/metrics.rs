//! Prometheus metrics and per-token usage metering.

use std::collections::BTreeMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use serde::Serialize;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InferLabels {
    pub model: String,
    pub version: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    pub model: String,
    pub version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    pub infer_requests: Family<InferLabels, Counter>,
    pub infer_latency: Family<ModelLabels, Histogram>,
    pub http_requests: Family<RouteLabels, Counter>,
    usage: Mutex<BTreeMap<(String, String), UsageCounts>>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct UsageCounts {
    pub requests: u64,
    pub rows: u64,
    pub errors: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct UsageRow {
    pub token: String,
    pub model: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wick");
        let infer_requests = Family::<InferLabels, Counter>::default();
        let infer_latency = Family::<ModelLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let http_requests = Family::<RouteLabels, Counter>::default();
        registry.register(
            "infer_requests",
            "Inference requests by model, version and HTTP status",
            infer_requests.clone(),
        );
        registry.register(
            "infer_latency_seconds",
            "Inference latency by model and version",
            infer_latency.clone(),
        );
        registry.register(
            "http_requests",
            "All HTTP requests by status",
            http_requests.clone(),
        );
        Self {
            registry,
            infer_requests,
            infer_latency,
            http_requests,
            usage: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    /// Adds the request log's counters (`wick_logged_requests_total`, `wick_log_dropped_total`).
    pub fn register_log(&mut self, log: &crate::request_log::RequestLog) {
        self.registry.register(
            "logged_requests",
            "Inference requests queued for the request log",
            log.logged.clone(),
        );
        self.registry.register(
            "log_dropped",
            "Request log entries dropped because the log's queue was full",
            log.dropped.clone(),
        );
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one inference call for a token (or "public") on a model.
    pub fn meter(&self, token: &str, model: &str, rows: u64, ok: bool) {
        if let Ok(mut usage) = self.usage.lock() {
            let entry = usage
                .entry((token.to_string(), model.to_string()))
                .or_default();
            entry.requests += 1;
            entry.rows += rows;
            entry.errors += u64::from(!ok);
        }
    }

    pub fn usage(&self) -> Vec<UsageRow> {
        self.usage
            .lock()
            .map(|u| {
                u.iter()
                    .map(|((t, m), c)| UsageRow {
                        token: t.clone(),
                        model: m.clone(),
                        counts: c.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The monitor's live figures as OpenMetrics gauges, by model and version (and feature): the
/// feedback count, live accuracy or mean absolute error, and the drift of each feature and of the
/// predictions, over `window_secs`. Appended to `/metrics` before its `# EOF`.
pub fn live_gauges(
    models: &[(String, BTreeMap<u64, wick_core::wire::VersionFigures>)],
    window_secs: f64,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut family = |name: &str, help: &str, samples: Vec<(String, f64)>| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP wick_{name} {help} (the last {window_secs:.0} s).\n# TYPE wick_{name} gauge"
        );
        for (labels, value) in samples {
            let _ = writeln!(out, "wick_{name}{{{labels}}} {value}");
        }
    };
    let labels = |model: &str, version: u64| {
        format!("model=\"{}\",version=\"{version}\"", escape_label(model))
    };
    let each =
        |f: &dyn Fn(&wick_core::wire::VersionFigures) -> Vec<(String, f64)>| -> Vec<(String, f64)> {
            models
                .iter()
                .flat_map(|(model, versions)| {
                    versions.iter().flat_map(move |(v, figures)| {
                        f(figures)
                            .into_iter()
                            .map(move |(extra, x)| (format!("{}{extra}", labels(model, *v)), x))
                    })
                })
                .collect()
        };
    family(
        "live_feedback",
        "Answers that got feedback, by model and version",
        each(&|f| vec![(String::new(), f.feedback as f64)]),
    );
    family(
        "live_accuracy",
        "Accuracy of the answers that got feedback",
        each(&|f| {
            f.live_accuracy
                .map(|a| (String::new(), a))
                .into_iter()
                .collect()
        }),
    );
    family(
        "live_mae",
        "Mean absolute error of the answers that got feedback",
        each(&|f| f.live_mae.map(|e| (String::new(), e)).into_iter().collect()),
    );
    family(
        "feature_psi",
        "Population stability index of each input feature's live values against training; above 0.2 is drifting",
        each(&|f| f.drift.iter().map(|d| (format!(",feature=\"{}\"", escape_label(&d.feature)), d.psi)).collect()),
    );
    family(
        "prediction_psi",
        "Population stability index of the predictions against the training target",
        each(&|f| {
            f.prediction_drift
                .iter()
                .map(|d| (String::new(), d.psi))
                .collect()
        }),
    );
    out
}

/// A label value with `\`, `"` and newlines escaped, as the text format needs.
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
