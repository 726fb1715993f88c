//! After publish: request logging (opt-in per model, sampled), feedback on logged requests, and the
//! live figures `GET /v2/wick/models/{name}/monitor` reports.
//!
//! - **Off the request path.** A request that is sampled is queued with `try_send` on a bounded
//!   channel; when it is full the entry is dropped and counted (`wick_log_dropped_total`), never
//!   waited for. A writer task on the first worker drains it.
//! - **Whole objects.** The writer groups entries by model, version and day and writes each group
//!   as one new NDJSON object, `logs/{model}/v{version}/{YYYY-MM-DD}/{millis}-{random}.ndjson`
//!   (feedback under `feedback/{model}/{YYYY-MM-DD}/`), at most every second and at most 4 MiB
//!   each. Objects are created, never appended to, so replicas sharing a store never clobber each
//!   other, and a killed server leaves only whole objects (it loses at most the last second).
//!   Readers skip a line that does not parse all the same.
//! - **Retention.** Day folders older than `log_retention_days` are deleted hourly.
//! - **Never tokens**: only the request's tensors, its answer, its id and timings are written.
//! - **Live figures** (requests, errors, latency, predictions, feedback) come from this replica's
//!   memory of its last 100,000 requests and feedback entries.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::tensors::{InferInput, InferOutput};
pub use wick_core::drift::LiveValue;
use wick_core::drift::{is_drifting, TrainingProfile};
use wick_core::wire::{FeatureDrift, ValueSummary, VersionFigures};

/// Log entries waiting for the writer at most; more are dropped and counted.
pub const LOG_BUFFER_ENTRIES: usize = 10_000;
/// Requests (and feedback entries) the live figures remember, per replica.
pub const LIVE_MEMORY: usize = 100_000;
/// Predictions of one request kept for the live figures (a batch of thousands keeps its first).
const PREDICTIONS_KEPT: usize = 64;
/// Input rows of one request kept for drift, and of one model in all.
pub const ROWS_KEPT_PER_REQUEST: usize = 16;
const LIVE_ROWS_PER_MODEL: usize = 20_000;
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
const MAX_OBJECT_BYTES: usize = 4 << 20;
const RETENTION_CHECK: Duration = Duration::from_secs(3600);

/// One sampled request and its answer, as written to the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub model: String,
    pub version: u64,
    pub latency_ms: f64,
    pub inputs: Vec<InferInput>,
    pub outputs: Vec<InferOutput>,
}

impl LoggedRequest {
    /// The first row's prediction as logged: the target output's first value (a label or a
    /// number).
    pub fn first_prediction(&self) -> Option<Predicted> {
        match self.outputs.first()?.data.as_array()?.first()? {
            serde_json::Value::String(label) => Some(Predicted::Class(label.clone())),
            value => value.as_f64().map(Predicted::Value),
        }
    }
}

/// The true outcome of a logged request, sent later by the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Feedback {
    pub id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub model: String,
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

enum Record {
    Request(LoggedRequest),
    Feedback(Feedback),
}

impl Record {
    /// The folder its object goes in: per model, version (requests) and day.
    fn folder(&self) -> String {
        match self {
            Self::Request(r) => format!(
                "logs/{}/v{}/{}",
                r.model,
                r.version,
                r.at.format("%Y-%m-%d")
            ),
            Self::Feedback(f) => format!("feedback/{}/{}", f.model, f.at.format("%Y-%m-%d")),
        }
    }

    fn line(&self) -> Option<Vec<u8>> {
        match self {
            Self::Request(r) => serde_json::to_vec(r).ok(),
            Self::Feedback(f) => serde_json::to_vec(f).ok(),
        }
    }
}

/// One prediction, as the live figures count it.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicted {
    Class(String),
    Value(f64),
}

struct Observation {
    at_secs: f64,
    model: String,
    version: u64,
    ok: bool,
    latency_secs: f64,
    predictions: Vec<Predicted>,
}

struct FeedbackObservation {
    at_secs: f64,
    model: String,
    version: u64,
    correct: Option<bool>,
    abs_error: Option<f64>,
}

/// A logged request's id, what it predicted, for feedback to be checked against.
struct LoggedId {
    model: String,
    version: u64,
    predicted: Option<Predicted>,
}

/// A model's recent input rows (its features in `names`' order), for drift.
#[derive(Default)]
struct LiveRows {
    names: Vec<String>,
    rows: VecDeque<(f64, u64, Vec<LiveValue>)>,
}

#[derive(Default)]
struct Live {
    rows: HashMap<String, LiveRows>,
    observations: VecDeque<Observation>,
    feedback: VecDeque<FeedbackObservation>,
    logged: HashMap<String, LoggedId>,
    logged_order: VecDeque<String>,
}

/// Why feedback was refused.
#[derive(Debug, PartialEq)]
pub enum FeedbackError {
    UnknownId(String),
    Invalid(String),
}

pub struct RequestLog {
    sender: mpsc::Sender<Record>,
    receiver: Mutex<Option<mpsc::Receiver<Record>>>,
    store: Arc<dyn ObjectStore>,
    live: Mutex<Live>,
    retention_days: u32,
    pub dropped: Counter,
    pub logged: Counter,
}

fn now_secs() -> f64 {
    chrono::Utc::now().timestamp_micros() as f64 / 1e6
}

impl RequestLog {
    pub fn new(store: Arc<dyn ObjectStore>, retention_days: u32) -> Self {
        let (sender, receiver) = mpsc::channel(LOG_BUFFER_ENTRIES);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            store,
            live: Mutex::default(),
            retention_days,
            dropped: Counter::default(),
            logged: Counter::default(),
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers an answered request for the live figures (every request, sampled or not), with
    /// its first input rows (a table model's features, named) for drift.
    pub fn observe(
        &self,
        model: &str,
        version: u64,
        ok: bool,
        latency_secs: f64,
        predictions: Vec<Predicted>,
        inputs: Option<(Vec<String>, Vec<Vec<LiveValue>>)>,
    ) {
        let mut live = self.live();
        if let Some((names, rows)) = inputs {
            let at = now_secs();
            let kept = live.rows.entry(model.to_string()).or_default();
            if kept.names != names {
                // A version with other features: its rows start afresh.
                *kept = LiveRows {
                    names,
                    rows: VecDeque::new(),
                };
            }
            for row in rows.into_iter().take(ROWS_KEPT_PER_REQUEST) {
                if kept.rows.len() >= LIVE_ROWS_PER_MODEL {
                    kept.rows.pop_front();
                }
                kept.rows.push_back((at, version, row));
            }
        }
        if live.observations.len() >= LIVE_MEMORY {
            live.observations.pop_front();
        }
        let predictions = predictions.into_iter().take(PREDICTIONS_KEPT).collect();
        live.observations.push_back(Observation {
            at_secs: now_secs(),
            model: model.to_string(),
            version,
            ok,
            latency_secs,
            predictions,
        });
    }

    /// Queues a sampled request for the store; `false` when the queue is full and it was dropped.
    pub fn log_request(&self, entry: LoggedRequest, first_prediction: Option<Predicted>) -> bool {
        let id = entry.id.clone();
        let (model, version) = (entry.model.clone(), entry.version);
        match self.sender.try_send(Record::Request(entry)) {
            Ok(()) => {
                self.logged.inc();
                self.remember(
                    id,
                    LoggedId {
                        model,
                        version,
                        predicted: first_prediction,
                    },
                );
                true
            }
            Err(_) => {
                self.dropped.inc();
                false
            }
        }
    }

    /// Remembers a request that another replica logged (or this one before a restart), read back
    /// from the store, so its feedback is checked and counted as if this replica had logged it.
    pub fn remember_logged(&self, request: &LoggedRequest) {
        self.remember(
            request.id.clone(),
            LoggedId {
                model: request.model.clone(),
                version: request.version,
                predicted: request.first_prediction(),
            },
        );
    }

    fn remember(&self, id: String, logged: LoggedId) {
        let mut live = self.live();
        if let Some(known) = live.logged.get_mut(&id) {
            *known = logged;
            return;
        }
        if live.logged_order.len() >= LIVE_MEMORY {
            if let Some(old) = live.logged_order.pop_front() {
                live.logged.remove(&old);
            }
        }
        live.logged_order.push_back(id.clone());
        live.logged.insert(id, logged);
    }

    /// Records the true outcome of a logged request of `model`: a class label or a number.
    pub fn feedback(
        &self,
        model: &str,
        id: &str,
        label: Option<String>,
        value: Option<f64>,
    ) -> Result<Feedback, FeedbackError> {
        let (version, correct, abs_error) = {
            let live = self.live();
            let Some(logged) = live.logged.get(id).filter(|l| l.model == model) else {
                return Err(FeedbackError::UnknownId(format!(
                    "no logged request of `{model}` has id `{id}`, here or in the store: feedback is for requests the endpoint logged (turn logging on with PUT /v2/wick/models/{model}/logging; only sampled requests are logged, and a logged request reaches the store within a second or so of its answer)"
                )));
            };
            let (correct, abs_error) = match (&logged.predicted, &label, value) {
                (Some(Predicted::Class(p)), Some(l), None) => (Some(p == l), None),
                (Some(Predicted::Value(p)), None, Some(v)) if v.is_finite() => {
                    (None, Some((p - v).abs()))
                }
                (Some(Predicted::Class(_)), _, _) => {
                    return Err(FeedbackError::Invalid(
                        "this model predicts classes: send {\"id\": ..., \"label\": \"...\"}"
                            .into(),
                    ))
                }
                (Some(Predicted::Value(_)), _, _) => return Err(FeedbackError::Invalid(
                    "this model predicts numbers: send {\"id\": ..., \"value\": <finite number>}"
                        .into(),
                )),
                (None, _, _) => (None, None),
            };
            (logged.version, correct, abs_error)
        };
        let entry = Feedback {
            id: id.to_string(),
            at: chrono::Utc::now(),
            model: model.to_string(),
            version,
            label,
            value,
        };
        if self
            .sender
            .try_send(Record::Feedback(entry.clone()))
            .is_err()
        {
            self.dropped.inc();
        }
        let mut live = self.live();
        if live.feedback.len() >= LIVE_MEMORY {
            live.feedback.pop_front();
        }
        live.feedback.push_back(FeedbackObservation {
            at_secs: now_secs(),
            model: model.to_string(),
            version,
            correct,
            abs_error,
        });
        Ok(entry)
    }

    /// Per version over the last `window_secs`: requests, errors, latency quantiles, the
    /// distribution of predictions and the live accuracy or mean absolute error from feedback.
    pub fn monitor(
        &self,
        model: &str,
        window_secs: f64,
        profiles: &BTreeMap<u64, TrainingProfile>,
    ) -> BTreeMap<u64, VersionFigures> {
        let since = now_secs() - window_secs;
        let live = self.live();
        let mut out: BTreeMap<u64, VersionFigures> = BTreeMap::new();
        let mut latencies: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        let mut values: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
        let mut judged: BTreeMap<u64, Judged> = BTreeMap::new();
        for o in live
            .observations
            .iter()
            .filter(|o| o.at_secs >= since && o.model == model)
        {
            let f = out.entry(o.version).or_default();
            f.requests += 1;
            if !o.ok {
                f.errors += 1;
                continue;
            }
            latencies.entry(o.version).or_default().push(o.latency_secs);
            for p in &o.predictions {
                match p {
                    Predicted::Class(c) => *f.predicted_classes.entry(c.clone()).or_default() += 1,
                    Predicted::Value(v) => values.entry(o.version).or_default().push(*v),
                }
            }
        }
        for (version, mut l) in latencies {
            let f = out.entry(version).or_default();
            f.latency_p50_ms = quantile(&mut l, 0.5).map(|s| s * 1e3);
            f.latency_p99_ms = quantile(&mut l, 0.99).map(|s| s * 1e3);
        }
        for (version, mut v) in values {
            let f = out.entry(version).or_default();
            f.predicted_values = Some(ValueSummary {
                count: v.len(),
                mean: v.iter().sum::<f64>() / v.len().max(1) as f64,
                p10: quantile(&mut v, 0.1),
                p50: quantile(&mut v, 0.5),
                p90: quantile(&mut v, 0.9),
            });
        }
        for fb in live
            .feedback
            .iter()
            .filter(|f| f.at_secs >= since && f.model == model)
        {
            out.entry(fb.version).or_default().feedback += 1;
            let j = judged.entry(fb.version).or_default();
            if let Some(c) = fb.correct {
                j.correct += usize::from(c);
                j.classes += 1;
            }
            if let Some(e) = fb.abs_error {
                j.abs_error_sum += e;
                j.values += 1;
            }
        }
        for (version, j) in judged {
            let f = out.entry(version).or_default();
            f.live_accuracy = (j.classes > 0).then(|| j.correct as f64 / j.classes as f64);
            f.live_mae = (j.values > 0).then(|| j.abs_error_sum / j.values as f64);
        }
        // Drift: each profiled feature's live values, and the predictions, against training.
        for (version, profile) in profiles {
            let Some(f) = out.get_mut(version) else {
                continue;
            };
            if let Some(rows) = live.rows.get(model) {
                let window: Vec<&Vec<LiveValue>> = rows
                    .rows
                    .iter()
                    .filter(|(at, v, _)| *at >= since && v == version)
                    .map(|(_, _, r)| r)
                    .collect();
                for feature in &profile.features {
                    let Some(i) = rows.names.iter().position(|n| *n == feature.name) else {
                        continue;
                    };
                    let values: Vec<LiveValue> =
                        window.iter().filter_map(|r| r.get(i).cloned()).collect();
                    if let Some(psi) = feature.profile.psi(&values) {
                        f.drift.push(FeatureDrift {
                            feature: feature.name.clone(),
                            psi,
                            drifting: is_drifting(psi, values.len()),
                            rows: values.len(),
                        });
                    }
                }
                f.drift.sort_by(|a, b| b.psi.total_cmp(&a.psi));
            }
            let predicted: Vec<LiveValue> = live
                .observations
                .iter()
                .filter(|o| o.at_secs >= since && o.model == model && o.version == *version)
                .flat_map(|o| {
                    o.predictions.iter().map(|p| match p {
                        Predicted::Class(c) => LiveValue::Text(c.clone()),
                        Predicted::Value(v) => LiveValue::Number(*v),
                    })
                })
                .collect();
            f.prediction_drift = profile.target.psi(&predicted).map(|psi| FeatureDrift {
                feature: "prediction".into(),
                psi,
                drifting: is_drifting(psi, predicted.len()),
                rows: predicted.len(),
            });
        }
        out
    }

    /// Drains the queue into the store until `stopped`, then writes what is left.
    pub async fn run_writer(self: Arc<Self>, mut stopped: watch::Receiver<bool>) {
        let Some(mut receiver) = self
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        let mut pending: Vec<Record> = Vec::new();
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        let mut retention = tokio::time::interval(RETENTION_CHECK);
        loop {
            tokio::select! {
                record = receiver.recv() => match record {
                    Some(r) => pending.push(r),
                    None => break,
                },
                _ = tick.tick() => {
                    self.flush(&mut pending).await;
                }
                _ = retention.tick() => self.remove_expired().await,
                changed = stopped.changed() => {
                    if changed.is_err() || *stopped.borrow() {
                        break;
                    }
                }
            }
        }
        while let Ok(r) = receiver.try_recv() {
            pending.push(r);
        }
        self.flush(&mut pending).await;
    }

    async fn flush(&self, pending: &mut Vec<Record>) {
        if pending.is_empty() {
            return;
        }
        let mut groups: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for record in pending.drain(..) {
            let Some(line) = record.line() else { continue };
            let folder = record.folder();
            let buf = groups.entry(folder.clone()).or_default();
            if buf.len() + line.len() > MAX_OBJECT_BYTES && !buf.is_empty() {
                let full = std::mem::take(buf);
                self.put(&folder, full).await;
            }
            let buf = groups.entry(folder).or_default();
            buf.extend_from_slice(&line);
            buf.push(b'\n');
        }
        for (folder, bytes) in groups {
            self.put(&folder, bytes).await;
        }
    }

    async fn put(&self, folder: &str, bytes: Vec<u8>) {
        let key = StorePath::from(format!(
            "{folder}/{:013}-{:016x}.ndjson",
            chrono::Utc::now().timestamp_millis().max(0),
            rand::random::<u64>()
        ));
        if let Err(e) = self
            .store
            .put_opts(
                &key,
                PutPayload::from(bytes),
                PutOptions {
                    mode: PutMode::Create,
                    ..Default::default()
                },
            )
            .await
        {
            tracing::error!(key = %key, error = %e, "could not write request logs");
        }
    }

    /// Deletes log and feedback objects in day folders older than the retention.
    async fn remove_expired(&self) {
        let cutoff = (chrono::Utc::now() - chrono::Duration::days(i64::from(self.retention_days)))
            .format("%Y-%m-%d")
            .to_string();
        for prefix in ["logs", "feedback"] {
            let objects: Vec<_> = match self
                .store
                .list(Some(&StorePath::from(prefix)))
                .try_collect()
                .await
            {
                Ok(o) => o,
                Err(e) => {
                    tracing::warn!(error = %e, "could not list request logs for retention");
                    continue;
                }
            };
            for o in objects {
                let day = o
                    .location
                    .parts()
                    .map(|p| p.as_ref().to_string())
                    .find(|p| p.len() == 10 && p.as_bytes()[4] == b'-');
                if day.is_some_and(|d| d < cutoff) {
                    let _ = self.store.delete(&o.location).await;
                }
            }
        }
    }
}

/// Feedback tallies of one version while its figures are made.
#[derive(Default)]
struct Judged {
    classes: usize,
    correct: usize,
    values: usize,
    abs_error_sum: f64,
}

fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let i = ((values.len() - 1) as f64 * q).round() as usize;
    values.get(i).copied()
}

/// Every entry under `prefix` (e.g. `logs/weather`), oldest object first; a line that does not
/// parse (a server killed while writing could only leave one in a store without atomic puts) is
/// skipped.
pub async fn read_entries<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    prefix: &str,
) -> Result<Vec<T>, object_store::Error> {
    let mut objects: Vec<_> = store
        .list(Some(&StorePath::from(prefix)))
        .try_collect()
        .await?;
    objects.sort_by(|a, b| {
        a.location
            .as_ref()
            .rsplit('/')
            .next()
            .cmp(&b.location.as_ref().rsplit('/').next())
    });
    let mut out = Vec::new();
    for o in objects {
        let bytes = store.get(&o.location).await?.bytes().await?;
        out.extend(
            bytes
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .filter_map(|l| serde_json::from_slice(l).ok()),
        );
    }
    Ok(out)
}

/// Labelled requests at most in one answer of `GET /v2/wick/models/{name}/labelled`.
pub const LABELLED_ROWS_MAX: usize = 100_000;

/// Joins logged requests with their feedback (the latest for an id): each request's first row, by
/// feature name, with its true outcome. `features(version)` names a version's features in order
/// (for a request sent as one 2-D tensor) and says which of them the log holds hashed; those come
/// back missing, since a hash can't be trained on again as the raw value.
pub fn labelled_rows(
    model: &str,
    logged: &[LoggedRequest],
    feedback: &[Feedback],
    features: impl Fn(u64) -> Option<(Vec<String>, Vec<String>)>,
) -> wick_core::wire::LabelledRows {
    let outcomes: HashMap<&str, serde_json::Value> = feedback
        .iter()
        .filter_map(|f| {
            let outcome = f
                .label
                .clone()
                .map(serde_json::Value::String)
                .or_else(|| f.value.map(serde_json::Value::from))?;
            Some((f.id.as_str(), outcome))
        })
        .collect();
    let mut hashed = std::collections::BTreeSet::new();
    let mut seen = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for request in logged {
        let Some(outcome) = outcomes.get(request.id.as_str()) else {
            continue;
        };
        if rows.len() >= LABELLED_ROWS_MAX || !seen.insert(request.id.as_str()) {
            continue;
        }
        let (values, hashed_here) =
            first_row(request, features(request.version).unwrap_or_default());
        hashed.extend(hashed_here);
        rows.push(wick_core::wire::LabelledRow {
            id: request.id.clone(),
            version: request.version,
            values,
            outcome: outcome.clone(),
        });
    }
    wick_core::wire::LabelledRows {
        model: model.to_string(),
        rows,
        hashed: hashed.into_iter().collect(),
    }
}

/// A logged request's first row by feature name, given the version's features in order and those
/// it hashes (which come back missing, and are returned).
fn first_row(
    request: &LoggedRequest,
    (names, hashed): (Vec<String>, Vec<String>),
) -> (BTreeMap<String, serde_json::Value>, Vec<String>) {
    use crate::tensor_data::TensorData;
    let first = |data: &TensorData, i: usize| match data {
        TensorData::Numbers(v) => v.get(i).map(|x| serde_json::json!(x)),
        TensorData::Values(v) => v.get(i).cloned(),
    };
    let mut values = BTreeMap::new();
    match request.inputs.as_slice() {
        // One 2-D tensor whose columns are the features in order.
        [only]
            if only.shape.len() == 2
                && only.shape[1] as usize == names.len()
                && !names.contains(&only.name) =>
        {
            for (j, name) in names.iter().enumerate() {
                values.insert(name.clone(), first(&only.data, j).unwrap_or_default());
            }
        }
        inputs => {
            for input in inputs {
                values.insert(
                    input.name.clone(),
                    first(&input.data, 0).unwrap_or_default(),
                );
            }
        }
    }
    for name in &hashed {
        values.insert(name.clone(), serde_json::Value::Null);
    }
    (values, hashed)
}

/// Requests in one answer of `GET /v2/wick/models/{name}/queue` at most.
pub const LABEL_QUEUE_MAX: usize = 200;

/// The label queue: logged requests without feedback, the ones the model was least sure of first
/// (its top class's probability; a regression has none, and those come newest first), at most
/// `limit`. Active learning: a person's label teaches the model most where it was unsure.
pub fn label_queue(
    logged: &[LoggedRequest],
    feedback: &[Feedback],
    features: impl Fn(u64) -> Option<(Vec<String>, Vec<String>)>,
    limit: usize,
) -> Vec<wick_core::wire::QueuedRequest> {
    let answered: std::collections::HashSet<&str> =
        feedback.iter().map(|f| f.id.as_str()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut queue: Vec<wick_core::wire::QueuedRequest> = logged
        .iter()
        .filter(|r| !answered.contains(r.id.as_str()) && seen.insert(r.id.as_str()))
        .map(|request| {
            let (values, _) = first_row(request, features(request.version).unwrap_or_default());
            let predicted = request
                .outputs
                .first()
                .and_then(|o| o.data.as_array()?.first().cloned())
                .unwrap_or_default();
            // The first row of the probabilities ([n, classes], flattened): its largest.
            let confidence = request
                .outputs
                .iter()
                .find(|o| o.name == "probabilities")
                .and_then(|o| {
                    let classes = *o.shape.get(1)? as usize;
                    let row: Vec<f64> = o
                        .data
                        .as_array()?
                        .iter()
                        .take(classes)
                        .filter_map(serde_json::Value::as_f64)
                        .collect();
                    row.into_iter().reduce(f64::max)
                });
            wick_core::wire::QueuedRequest {
                id: request.id.clone(),
                version: request.version,
                at: request.at,
                values,
                predicted,
                confidence,
            }
        })
        .collect();
    queue.sort_by(|a, b| match (a.confidence, b.confidence) {
        (Some(x), Some(y)) => x.total_cmp(&y).then(b.at.cmp(&a.at)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => b.at.cmp(&a.at),
    });
    queue.truncate(limit.min(LABEL_QUEUE_MAX));
    queue
}

#[cfg(test)]
mod labelled_tests {
    use super::*;
    use crate::tensor_data::TensorData;

    fn input(name: &str, shape: Vec<i64>, data: TensorData) -> InferInput {
        InferInput {
            name: name.into(),
            shape,
            datatype: "FP64".into(),
            parameters: None,
            data,
        }
    }

    fn request(id: &str, inputs: Vec<InferInput>) -> LoggedRequest {
        LoggedRequest {
            id: id.into(),
            at: chrono::Utc::now(),
            model: "m".into(),
            version: 1,
            latency_ms: 1.0,
            inputs,
            outputs: vec![],
        }
    }

    fn feedback(id: &str, value: f64) -> Feedback {
        Feedback {
            id: id.into(),
            at: chrono::Utc::now(),
            model: "m".into(),
            version: 1,
            label: None,
            value: Some(value),
        }
    }

    #[test]
    fn the_label_queue_puts_the_least_sure_first_and_leaves_out_answered_requests() {
        let answered = |id: &str, p: [f64; 2]| {
            let mut r = request(
                id,
                vec![input("x", vec![1], TensorData::Numbers(vec![p[0]]))],
            );
            r.outputs = vec![
                InferOutput {
                    name: "y".into(),
                    shape: vec![1],
                    datatype: "BYTES".into(),
                    parameters: None,
                    data: serde_json::json!([if p[0] > p[1] { "a" } else { "b" }]),
                },
                InferOutput {
                    name: "probabilities".into(),
                    shape: vec![1, 2],
                    datatype: "FP32".into(),
                    parameters: None,
                    data: serde_json::json!(p),
                },
            ];
            r
        };
        let logged = vec![
            answered("sure", [0.95, 0.05]),
            answered("unsure", [0.45, 0.55]),
            answered("middling", [0.7, 0.3]),
            answered("labelled", [0.5, 0.5]),
        ];
        let mut given = feedback("labelled", 0.0);
        given.label = Some("a".into());
        let queue = label_queue(&logged, &[given], |_| Some((vec!["x".into()], vec![])), 10);
        let ids: Vec<&str> = queue.iter().map(|q| q.id.as_str()).collect();
        assert_eq!(ids, ["unsure", "middling", "sure"]);
        assert_eq!(queue[0].confidence, Some(0.55));
        assert_eq!(queue[0].predicted, serde_json::json!("b"));
        assert_eq!(queue[0].values["x"], serde_json::json!(0.45));
        assert_eq!(
            label_queue(&logged, &[], |_| None, 2).len(),
            2,
            "the limit holds"
        );
    }

    /// A 2-D tensor's first row is named by the features; the latest feedback for an id wins; a
    /// hashed column comes back missing; requests without feedback are left out.
    #[test]
    fn logged_requests_join_their_feedback_by_id() {
        let logged = vec![
            request(
                "a",
                vec![input(
                    "x",
                    vec![2, 2],
                    TensorData::Numbers(vec![1.0, 2.0, 3.0, 4.0]),
                )],
            ),
            request(
                "b",
                vec![
                    input("x1", vec![1], TensorData::Numbers(vec![5.0])),
                    input("email", vec![1], TensorData::Values(vec!["3f2a".into()])),
                ],
            ),
            request(
                "c",
                vec![input("x1", vec![1], TensorData::Numbers(vec![7.0]))],
            ),
        ];
        let answers = [feedback("a", 1.0), feedback("b", 2.0), feedback("a", 10.0)];
        let features = |_| {
            Some((
                vec!["x1".to_string(), "x2".to_string()],
                vec!["email".to_string()],
            ))
        };
        let rows = labelled_rows("m", &logged, &answers, features);
        assert_eq!(rows.rows.len(), 2);
        assert_eq!(
            (
                rows.rows[0].values["x1"].as_f64(),
                rows.rows[0].values["x2"].as_f64()
            ),
            (Some(1.0), Some(2.0))
        );
        assert_eq!(rows.rows[0].outcome, serde_json::json!(10.0));
        assert!(rows.rows[1].values["email"].is_null());
        assert_eq!(rows.hashed, ["email"]);
    }
}
