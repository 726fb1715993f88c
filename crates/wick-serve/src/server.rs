//! The HTTP server: Open Inference Protocol routes, Wick's registry routes, limits and metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::audit::{AuditEntry, AuditLog, MAX_AUDIT_ENTRIES};
use crate::auth::{Scope, TokenRecord, TokenStore};
use crate::config::ServeConfig;
use crate::error::{ApiError, ServeError};
use crate::metrics::{InferLabels, Metrics, ModelLabels, RouteLabels};
use crate::registry::{LoadedVersion, Registry};
use crate::request_log::{FeedbackError, LiveValue, LoggedRequest, Predicted, RequestLog};
use crate::tensors::{to_call, to_outputs, InferRequest, InferResponse};

pub struct AppState {
    pub config: ServeConfig,
    pub registry: Registry,
    pub audit: AuditLog,
    pub tokens: TokenStore,
    pub metrics: Metrics,
    /// Request logging, feedback and live figures (written by a task on the first worker).
    pub log: Arc<RequestLog>,
    permits: Arc<Semaphore>,
    /// Inference bodies in flight, in KiB (`max_inflight_infer_bytes`).
    infer_body_budget: Arc<Semaphore>,
}

type Shared = State<Arc<AppState>>;

/// Inference requests with bodies up to this size are answered on the worker that received them;
/// larger ones on the blocking pool. 64 KiB of JSON is about 4,000 numbers: tens of µs to parse and
/// predict, less than a hop between threads costs.
const INLINE_MAX_BODY_BYTES: usize = 64 * 1024;

impl AppState {
    pub async fn new(config: ServeConfig) -> Result<Arc<Self>, ServeError> {
        let store = Registry::open_store(&config.store)?;
        let audit = AuditLog::new(store.clone());
        let log = Arc::new(RequestLog::new(store.clone(), config.log_retention_days));
        let mut metrics = Metrics::default();
        metrics.register_log(&log);
        let registry = Registry::new(store, config.data_dir.join("cache"));
        registry.refresh().await?;
        let tokens = TokenStore::open(&config.tokens_path());
        let permits = Arc::new(Semaphore::new(config.max_concurrent_requests.max(1)));
        let budget_kib = (config.max_inflight_infer_bytes / 1024).clamp(1, Semaphore::MAX_PERMITS);
        let infer_body_budget = Arc::new(Semaphore::new(budget_kib));
        Ok(Arc::new(Self {
            config,
            registry,
            audit,
            tokens,
            metrics,
            log,
            permits,
            infer_body_budget,
        }))
    }
}

/// Builds the router with every route and layer.
pub fn router(state: Arc<AppState>) -> Router {
    // Inference has its own body limit and a budget for the bodies in flight; uploads of packages
    // (publish) have theirs.
    let inference = Router::new()
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer_v))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            reserve_infer_body,
        ))
        .layer(DefaultBodyLimit::max(state.config.max_infer_body_bytes));
    let oip = Router::new()
        .route("/v2", get(server_metadata))
        // The protocol's OpenAPI file writes server metadata as `/v2/`.
        .route("/v2/", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_metadata_v),
        )
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_v),
        )
        .route("/v2/wick/models", get(list_models))
        .route("/v2/wick/models/{name}/versions", post(publish))
        .route(
            "/v2/wick/models/{name}/versions/{version}",
            delete(delete_version),
        )
        .route("/v2/wick/models/{name}/default", post(set_default))
        .route("/v2/wick/models/{name}/public", post(set_public))
        .route(
            "/v2/wick/models/{name}/traffic",
            axum::routing::put(set_traffic),
        )
        .route(
            "/v2/wick/models/{name}/logging",
            axum::routing::put(set_logging),
        )
        .route("/v2/wick/models/{name}/feedback", post(feedback))
        .route("/v2/wick/models/{name}/monitor", get(monitor))
        .route("/v2/wick/models/{name}/labelled", get(labelled))
        .route("/v2/wick/models/{name}/queue", get(label_queue))
        .route("/v2/wick/usage", get(usage))
        .route("/v2/wick/audit", get(audit_log))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes));
    let timeout = Duration::from_secs(state.config.request_timeout_secs.max(1));
    Router::new()
        .merge(oip)
        .merge(inference)
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_concurrency,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Bounds the memory held by inference bodies: each request reserves its declared size (the limit
/// when it declares none) from `max_inflight_infer_bytes` before its body is read, and keeps it
/// until it is answered. A body declared over the limit is left to the body limit, which refuses it
/// (413) unread. When the budget is spent the
/// body is read and dropped chunk by chunk (so the client gets its answer, not a reset connection)
/// and the request answered 503 with Retry-After.
async fn reserve_infer_body(State(state): Shared, request: Request, next: Next) -> Response {
    let limit = state.config.max_infer_body_bytes;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        // The body limit refuses it (413) before reading any of it: nothing to reserve.
        return next.run(request).await;
    }
    let kib = declared.unwrap_or(limit).div_ceil(1024).max(1);
    let permit = u32::try_from(kib).ok().and_then(|kib| {
        state
            .infer_body_budget
            .clone()
            .try_acquire_many_owned(kib)
            .ok()
    });
    match permit {
        Some(_reserved) => next.run(request).await,
        None => {
            drain_body(request.into_body(), limit).await;
            ApiError::Overloaded.into_response()
        }
    }
}

/// Reads and drops up to `limit` bytes of a body, holding one chunk at a time.
async fn drain_body(body: axum::body::Body, limit: usize) {
    use futures::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len();
        if seen > limit {
            break;
        }
    }
}

/// Answers 503 with Retry-After instead of queueing without bound.
async fn limit_concurrency(State(state): Shared, request: Request, next: Next) -> Response {
    crate::activity::note_request();
    let response = match state.permits.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::Overloaded.into_response(),
    };
    state
        .metrics
        .http_requests
        .get_or_create(&RouteLabels {
            status: response.status().as_u16(),
        })
        .inc();
    crate::activity::note_request();
    response
}

async fn server_metadata() -> Json<serde_json::Value> {
    Json(
        serde_json::json!({ "name": "wick-serve", "version": env!("CARGO_PKG_VERSION"), "extensions": ["wick_registry"] }),
    )
}

async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "live": true }))
}

async fn ready() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ready": true }))
}

/// The window of the live gauges `/metrics` ends with: the monitor's default.
const LIVE_GAUGE_WINDOW_SECS: f64 = 3600.0;

async fn metrics(State(state): Shared) -> impl IntoResponse {
    let mut text = state.metrics.encode();
    let mut models = Vec::new();
    for listing in state.registry.list().await {
        let profiles = state.registry.training_profiles(&listing.name).await;
        let figures = state
            .log
            .monitor(&listing.name, LIVE_GAUGE_WINDOW_SECS, &profiles);
        if !figures.is_empty() {
            models.push((listing.name, figures));
        }
    }
    let gauges = crate::metrics::live_gauges(&models, LIVE_GAUGE_WINDOW_SECS);
    match text.rfind("# EOF") {
        Some(end) => text.insert_str(end, &gauges),
        None => text.push_str(&gauges),
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

fn auth_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn parse_version(version: &str) -> Result<u64, ApiError> {
    version
        .parse()
        .map_err(|_| ApiError::NotFound(format!("version {version:?} is not a version number")))
}

async fn lookup(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    version: Option<u64>,
) -> Result<(Arc<LoadedVersion>, Option<String>), ApiError> {
    let public = state.registry.is_public(name).await;
    let token = state
        .tokens
        .authorize(auth_header(headers), Scope::Infer, Some(name), public)?;
    let (loaded, _) = state
        .registry
        .resolve(name, version)
        .await
        .ok_or_else(|| match version {
            Some(v) => ApiError::NotFound(format!("model `{name}` version {v} not found")),
            None => ApiError::NotFound(format!("model `{name}` not found")),
        })?;
    Ok((loaded, token.map(|t| t.name)))
}

async fn metadata(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    version: Option<u64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (loaded, _) = lookup(state, headers, name, version).await?;
    let versions: Vec<String> = state
        .registry
        .versions_of(name)
        .await
        .unwrap_or_default()
        .iter()
        .map(u64::to_string)
        .collect();
    let m = &loaded.manifest;
    Ok(Json(serde_json::json!({
        "name": name,
        "versions": versions,
        "platform": "wick",
        "inputs": m.inputs,
        "outputs": m.outputs,
        "parameters": { "version": loaded.record.version.to_string(), "task": m.target.task, "labels": m.target.labels },
    })))
}

async fn model_metadata(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    metadata(&state, &headers, &name, None).await
}

async fn model_metadata_v(
    State(state): Shared,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    metadata(&state, &headers, &name, Some(parse_version(&version)?)).await
}

async fn model_ready(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    lookup(&state, &headers, &name, None).await?;
    Ok(Json(serde_json::json!({ "name": name, "ready": true })))
}

async fn model_ready_v(
    State(state): Shared,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    lookup(&state, &headers, &name, Some(parse_version(&version)?)).await?;
    Ok(Json(serde_json::json!({ "name": name, "ready": true })))
}

type InferBody = Result<Bytes, axum::extract::rejection::BytesRejection>;

async fn infer(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: InferBody,
) -> Response {
    let result = match infer_body_bytes(&state, body) {
        Ok(body) => run_inference(&state, &headers, &name, None, body).await,
        Err(e) => Err(e),
    };
    with_request_id(result)
}

async fn infer_v(
    State(state): Shared,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    body: InferBody,
) -> Response {
    let result = match (infer_body_bytes(&state, body), parse_version(&version)) {
        (Ok(body), Ok(version)) => {
            run_inference(&state, &headers, &name, Some(version), body).await
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    with_request_id(result)
}

/// The header every inference answer carries its id in (errors too), for logs and feedback.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// An inference answer, with the bytes of its binary outputs when the request asked for them.
struct InferAnswer {
    response: InferResponse,
    binary: Option<Vec<u8>>,
    /// The first predictions, for the live figures.
    predicted: Vec<Predicted>,
    /// The request's tensors and the answer's, when this request is logged.
    logged: Option<(
        Vec<crate::tensors::InferInput>,
        Vec<crate::tensors::InferOutput>,
    )>,
    /// A table model's first input rows, named by feature, for drift.
    inputs: Option<(Vec<String>, Vec<Vec<LiveValue>>)>,
}

/// Gives an inference answer its id: the request's own OIP `id`, or one the server makes
/// (`wick-` and 16 hex digits), in the body and in the `x-request-id` header. Binary outputs follow
/// the JSON, whose length the `Inference-Header-Content-Length` header gives.
fn with_request_id(result: Result<InferAnswer, ApiError>) -> Response {
    let made = || format!("wick-{:016x}", rand::random::<u64>());
    let (id, mut response) = match result {
        Ok(InferAnswer {
            mut response,
            binary,
            ..
        }) => {
            let id = response.id.get_or_insert_with(made).clone();
            match binary {
                None => (id, Json(response).into_response()),
                Some(blobs) => match serde_json::to_vec(&response) {
                    Ok(mut body) => {
                        let json_len = body.len();
                        body.extend_from_slice(&blobs);
                        let mut r = (
                            StatusCode::OK,
                            [(header::CONTENT_TYPE, "application/octet-stream")],
                            body,
                        )
                            .into_response();
                        r.headers_mut().insert(
                            crate::binary_data::HEADER_LENGTH,
                            header::HeaderValue::from(json_len),
                        );
                        (id, r)
                    }
                    Err(e) => (
                        id,
                        ApiError::Internal(format!("the answer could not be written: {e}"))
                            .into_response(),
                    ),
                },
            }
        }
        Err(e) => (made(), e.into_response()),
    };
    if let Ok(value) = header::HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// The body, or an error that says which limit it broke and what to do.
fn infer_body_bytes(state: &AppState, body: InferBody) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(format!(
                "the request body is larger than {} bytes, the server's inference limit (max_infer_body_bytes). Send fewer rows per request",
                state.config.max_infer_body_bytes
            ))
        } else {
            ApiError::BadRequest(format!("the request body could not be read: {e}"))
        }
    })
}

async fn run_inference(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    version: Option<u64>,
    body: Bytes,
) -> Result<InferAnswer, ApiError> {
    let started = Instant::now();
    let (loaded, token) = lookup(state, headers, name, version).await?;
    let version_label = loaded.record.version.to_string();
    let max_elements = state.config.max_tensor_elements;
    let json_len = headers
        .get(crate::binary_data::HEADER_LENGTH)
        .map(|v| v.to_str().unwrap_or("?").to_string());
    let sample = state.registry.log_sample(name).await;
    let log = sample > 0.0 && rand::random::<f64>() < sample;
    let result = if body.len() <= INLINE_MAX_BODY_BYTES {
        // Small requests take microseconds: a hop to the blocking pool would cost more than the work.
        infer_body(
            &loaded,
            name,
            &version_label,
            &body,
            json_len.as_deref(),
            max_elements,
            log,
        )
    } else {
        // Parsing and predicting a large request takes long enough to hold up the other connections
        // of this worker: off to the blocking pool.
        let (loaded, name, version_label) =
            (loaded.clone(), name.to_string(), version_label.clone());
        tokio::task::spawn_blocking(move || {
            infer_body(
                &loaded,
                &name,
                &version_label,
                &body,
                json_len.as_deref(),
                max_elements,
                log,
            )
        })
        .await
        .map_err(|e| ApiError::Internal(format!("inference task failed: {e}")))?
    };
    let status = match &result {
        Ok(_) => 200,
        Err(e) => e.status().as_u16(),
    };
    let labels = InferLabels {
        model: name.to_string(),
        version: version_label.clone(),
        status,
    };
    state.metrics.infer_requests.get_or_create(&labels).inc();
    state
        .metrics
        .infer_latency
        .get_or_create(&ModelLabels {
            model: name.to_string(),
            version: version_label,
        })
        .observe(started.elapsed().as_secs_f64());
    let rows = result.as_ref().map(|(_, r)| *r as u64).unwrap_or(0);
    state.metrics.meter(
        token.as_deref().unwrap_or("public"),
        name,
        rows,
        result.is_ok(),
    );
    let latency_secs = started.elapsed().as_secs_f64();
    let version = loaded.record.version;
    match result {
        Ok((mut answer, _)) => {
            // The id is made here, before logging, so the log and the caller see the same one.
            let id = answer
                .response
                .id
                .get_or_insert_with(|| format!("wick-{:016x}", rand::random::<u64>()))
                .clone();
            let first = answer.predicted.first().cloned();
            state.log.observe(
                name,
                version,
                true,
                latency_secs,
                std::mem::take(&mut answer.predicted),
                answer.inputs.take(),
            );
            if let Some((inputs, outputs)) = answer.logged.take() {
                let entry = LoggedRequest {
                    id,
                    at: chrono::Utc::now(),
                    model: name.to_string(),
                    version,
                    latency_ms: latency_secs * 1e3,
                    inputs,
                    outputs,
                };
                state.log.log_request(entry, first);
            }
            Ok(answer)
        }
        Err(e) => {
            state
                .log
                .observe(name, version, false, latency_secs, Vec::new(), None);
            Err(e)
        }
    }
}

/// Parses an inference request (JSON, or JSON and binary tensors when `json_len` is given),
/// predicts and builds the response; also returns the number of rows.
#[allow(clippy::too_many_arguments)] // one request and the limits of the version that answers it
fn infer_body(
    loaded: &LoadedVersion,
    name: &str,
    version_label: &str,
    body: &[u8],
    json_len: Option<&str>,
    max_elements: usize,
    log: bool,
) -> Result<(InferAnswer, usize), ApiError> {
    let (json, blobs) = crate::binary_data::split(body, json_len)?;
    let mut request: InferRequest = crate::tensor_data::parse_with_element_limit(json, max_elements).map_err(|e| match e {
        crate::tensor_data::ParseError::TooManyElements => ApiError::TooLarge(format!(
            "the request holds more than {max_elements} tensor elements, the server's limit. Send fewer rows per request"
        )),
        crate::tensor_data::ParseError::Invalid(e) => ApiError::BadRequest(format!("the request body is not a valid inference request: {e}")),
    })?;
    crate::binary_data::fill_inputs(&mut request, blobs, max_elements)?;
    let call = to_call(&loaded.model, &request, max_elements)?;
    let rows = call.rows();
    let inputs = live_rows(&loaded.model, &call);
    let predictions = call
        .run(&loaded.model)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let mut outputs = to_outputs(&loaded.model, &predictions, request.outputs.as_deref());
    let predicted = predictions
        .iter()
        .take(64)
        .map(|p| match p {
            wick_core::model::Prediction::Class { label, .. } => Predicted::Class(label.clone()),
            wick_core::model::Prediction::Value { value } => Predicted::Value(*value),
        })
        .collect();
    let logged = log.then(|| {
        (
            logged_inputs(&loaded.model, &request.inputs),
            outputs.clone(),
        )
    });
    let mut binary: Option<Vec<u8>> = None;
    for output in &mut outputs {
        if crate::binary_data::wants_binary(&request, &output.name) {
            binary
                .get_or_insert_with(Vec::new)
                .extend(crate::binary_data::encode_output(output));
        }
    }
    let response = InferResponse {
        model_name: name.to_string(),
        model_version: version_label.to_string(),
        id: request.id,
        outputs,
    };
    Ok((
        InferAnswer {
            response,
            binary,
            predicted,
            logged,
            inputs,
        },
        rows,
    ))
}

/// The request's tensors as the request log keeps them: a column marked as personal data is left
/// out when training dropped it and hashed (with the model's salt) when training hashed it, so the
/// log never holds what the user chose not to train on, even when a caller sends it.
fn logged_inputs(
    model: &wick_core::model::Model,
    inputs: &[crate::tensors::InferInput],
) -> Vec<crate::tensors::InferInput> {
    use crate::tensor_data::TensorData;
    use wick_core::data::PersonalAction;
    let wick_core::model::ModelInput::Tabular { preprocessor } = &model.input else {
        return inputs.to_vec();
    };
    let personal = &preprocessor.personal;
    inputs
        .iter()
        .filter(|input| personal.action(&input.name) != Some(PersonalAction::Drop))
        .map(|input| {
            if !personal.is_hashed(&input.name) {
                return input.clone();
            }
            let text = |v: &serde_json::Value| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            };
            let hashed = match &input.data {
                TensorData::Numbers(v) => v
                    .iter()
                    .map(|&x| {
                        personal
                            .hash_value(&crate::tensor_data::number_text(x))
                            .into()
                    })
                    .collect(),
                TensorData::Values(v) => v
                    .iter()
                    .map(|v| {
                        if v.is_null() {
                            v.clone()
                        } else {
                            personal.hash_value(&text(v)).into()
                        }
                    })
                    .collect(),
            };
            crate::tensors::InferInput {
                data: TensorData::Values(hashed),
                datatype: "BYTES".into(),
                ..input.clone()
            }
        })
        .collect()
}

/// A table call's first rows as live values, with the features' names; hashed personal columns
/// hold their hashes, as the training rows the drift is measured against did.
fn live_rows(
    model: &wick_core::model::Model,
    call: &crate::tensors::ModelCall,
) -> Option<(Vec<String>, Vec<Vec<LiveValue>>)> {
    use wick_core::data::RawColumn;
    let (
        crate::tensors::ModelCall::Table { columns, n },
        wick_core::model::ModelInput::Tabular { preprocessor },
    ) = (call, &model.input)
    else {
        return None;
    };
    let names: Vec<String> = preprocessor
        .encoders
        .iter()
        .map(|e| e.name().to_string())
        .collect();
    let personal = &preprocessor.personal;
    let rows = (0..(*n).min(crate::request_log::ROWS_KEPT_PER_REQUEST))
        .map(|r| {
            columns
                .iter()
                .zip(&names)
                .map(|(c, name)| match c {
                    RawColumn::Numeric(v) => v[r].map_or(LiveValue::Missing, LiveValue::Number),
                    RawColumn::Text(v) | RawColumn::Date(v) => match &v[r] {
                        None => LiveValue::Missing,
                        Some(t) if personal.is_hashed(name) => {
                            LiveValue::Text(personal.hash_value(t))
                        }
                        Some(t) => LiveValue::Text(t.clone()),
                    },
                })
                .collect()
        })
        .collect();
    Some((names, rows))
}

#[derive(Deserialize)]
struct PublishQuery {
    #[serde(default)]
    notes: String,
    /// Publish as a canary taking this percent of the calls.
    #[serde(default)]
    canary: Option<u32>,
    /// Allow other inputs than the serving version's.
    #[serde(default)]
    replace_inputs: bool,
}

async fn publish(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<PublishQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token =
        state
            .tokens
            .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let expected = headers.get("x-wick-sha256").and_then(|v| v.to_str().ok());
    let options = wick_core::publish::PublishOptions {
        canary_percent: query.canary,
        replace_inputs: query.replace_inputs,
    };
    let published = state
        .registry
        .publish_with(&name, body, expected, &query.notes, &options)
        .await?;
    if !published.existing {
        let mut details =
            serde_json::json!({ "version": published.version, "sha256": published.sha256 });
        if let Some(p) = query.canary {
            details["canary_percent"] = serde_json::json!(p);
        }
        audit(&state, token.as_ref(), "publish", &name, details).await;
    }
    let status = if published.existing {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    tracing::info!(model = %name, version = published.version, existing = published.existing, "published");
    Ok((status, Json(published)).into_response())
}

async fn list_models(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = state
        .tokens
        .authorize(auth_header(&headers), Scope::Infer, None, false)
        .or_else(|_| {
            state
                .tokens
                .authorize(auth_header(&headers), Scope::Publish, None, false)
        })?;
    let models: Vec<_> = state
        .registry
        .list()
        .await
        .into_iter()
        .filter(|m| {
            token.as_ref().is_none_or(|t| {
                t.models
                    .as_ref()
                    .is_none_or(|allowed| allowed.contains(&m.name))
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "models": models })))
}

#[derive(Deserialize)]
struct DefaultBody {
    version: u64,
}

async fn set_default(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<DefaultBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token =
        state
            .tokens
            .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    state
        .registry
        .set_default(&name, body.version)
        .await
        .map_err(not_found_or)?;
    audit(
        &state,
        token.as_ref(),
        "set_default",
        &name,
        serde_json::json!({ "version": body.version }),
    )
    .await;
    Ok(Json(
        serde_json::json!({ "name": name, "default_version": body.version }),
    ))
}

/// `{"versions": {"2": 90, "3": 10}}`, read by hand so a wrong shape is a 400 with a JSON error
/// that says what to send.
async fn set_traffic(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token =
        state
            .tokens
            .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let usage = "send {\"versions\": {\"2\": 90, \"3\": 10}}: whole percentages per version, adding up to 100";
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON ({e}); {usage}")))?;
    let Some(versions) = value.get("versions").and_then(|v| v.as_object()) else {
        return Err(ApiError::BadRequest(format!(
            "the body has no `versions` object; {usage}"
        )));
    };
    let mut percent = std::collections::BTreeMap::new();
    for (version, weight) in versions {
        let v = version.parse::<u64>().map_err(|_| {
            ApiError::BadRequest(format!("`{version}` is not a version number; {usage}"))
        })?;
        let p = weight.as_u64().filter(|p| *p <= 100).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "version {v}'s share {weight} is not a whole percentage from 0 to 100; {usage}"
            ))
        })?;
        percent.insert(v, p as u32);
    }
    if state.registry.versions_of(&name).await.is_none() {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    }
    state
        .registry
        .set_traffic(&name, percent.clone())
        .await
        .map_err(|e| match e {
            ServeError::Invalid(m) => ApiError::BadRequest(m),
            other => other.into(),
        })?;
    audit(
        &state,
        token.as_ref(),
        "traffic",
        &name,
        serde_json::json!({ "versions": percent }),
    )
    .await;
    Ok(Json(
        serde_json::json!({ "name": name, "traffic": percent }),
    ))
}

/// `PUT /v2/wick/models/{name}/logging` with `{"sample": 0.1}`: log that share of the model's
/// inference requests (0 turns logging off).
async fn set_logging(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token =
        state
            .tokens
            .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let usage =
        "send {\"sample\": 0.1}: the share of inference requests to log, from 0 (off) to 1 (all)";
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON ({e}); {usage}")))?;
    let sample = value
        .get("sample")
        .and_then(serde_json::Value::as_f64)
        .filter(|s| (0.0..=1.0).contains(s))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`sample` is missing or not a number from 0 to 1; {usage}"
            ))
        })?;
    if state.registry.versions_of(&name).await.is_none() {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    }
    state.registry.set_logging(&name, sample).await?;
    audit(
        &state,
        token.as_ref(),
        "logging",
        &name,
        serde_json::json!({ "sample": sample }),
    )
    .await;
    Ok(Json(
        serde_json::json!({ "name": name, "logging": { "sample": sample } }),
    ))
}

/// `POST /v2/wick/models/{name}/feedback` with `{"id": ..., "label": ...}` or `{"id": ...,
/// "value": ...}`: the true outcome of a logged request.
async fn feedback(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let public = state.registry.is_public(&name).await;
    state
        .tokens
        .authorize(auth_header(&headers), Scope::Infer, Some(&name), public)?;
    let usage = "send {\"id\": \"<the answer's id>\", \"label\": \"<the true class>\"} or {\"id\": ..., \"value\": <the true number>}";
    let value: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON ({e}); {usage}")))?;
    let id = value
        .get("id")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| ApiError::BadRequest(format!("`id` is missing; {usage}")))?;
    let label = value.get("label").map(|l| {
        l.as_str()
            .map(str::to_string)
            .unwrap_or_else(|| l.to_string())
    });
    let number = value
        .get("value")
        .map(|v| {
            v.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
                ApiError::BadRequest(format!("`value` is {v}, not a finite number; {usage}"))
            })
        })
        .transpose()?;
    if label.is_none() && number.is_none() {
        return Err(ApiError::BadRequest(format!(
            "neither `label` nor `value` is given; {usage}"
        )));
    }
    if state.registry.versions_of(&name).await.is_none() {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    }
    let recorded = match state.log.feedback(&name, id, label.clone(), number) {
        // Logged by another replica sharing the store, or by this one before a restart: the
        // store's request log has it.
        Err(FeedbackError::UnknownId(message)) => {
            let logged: Vec<LoggedRequest> = read_log(&state, "logs", &name).await?;
            match logged.iter().rev().find(|r| r.id == id) {
                Some(request) => {
                    state.log.remember_logged(request);
                    state.log.feedback(&name, id, label, number)
                }
                None => Err(FeedbackError::UnknownId(message)),
            }
        }
        other => other,
    }
    .map_err(|e| match e {
        FeedbackError::UnknownId(m) | FeedbackError::Invalid(m) => ApiError::BadRequest(m),
    })?;
    Ok(Json(serde_json::json!({ "recorded": recorded })))
}

#[derive(Deserialize)]
struct MonitorQuery {
    window_secs: Option<f64>,
}

/// `GET /v2/wick/models/{name}/monitor?window_secs=N`: this server's live figures per version over
/// the last N seconds (default 3600).
async fn monitor(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<MonitorQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .tokens
        .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let window_secs = query.window_secs.unwrap_or(3600.0);
    if !(window_secs > 0.0 && window_secs.is_finite()) {
        return Err(ApiError::BadRequest(format!("window_secs is {window_secs}; give a number of seconds above 0, e.g. ?window_secs=3600")));
    }
    if state.registry.versions_of(&name).await.is_none() {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    }
    let figures = state.log.monitor(
        &name,
        window_secs,
        &state.registry.training_profiles(&name).await,
    );
    let report = wick_core::wire::MonitorReport {
        log_sample: state.registry.log_sample(&name).await,
        versions: figures
            .into_iter()
            .map(|(v, f)| (v.to_string(), f))
            .collect(),
        model: name,
        window_secs,
    };
    Ok(Json(serde_json::json!(report)))
}

/// `GET /v2/wick/models/{name}/labelled`: the logged requests that have feedback, as rows with
/// their true outcome, read from the store (so every replica's logs count): what *Improve with live
/// data* adds to the dataset.
async fn labelled(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::request_log::{Feedback, LoggedRequest};
    state
        .tokens
        .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let Some(versions) = state.registry.versions_of(&name).await else {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    };
    let feedback: Vec<Feedback> = read_log(&state, "feedback", &name).await?;
    let logged: Vec<LoggedRequest> = if feedback.is_empty() {
        Vec::new()
    } else {
        read_log(&state, "logs", &name).await?
    };
    let features = table_features(&state, &name, versions).await?;
    let rows =
        crate::request_log::labelled_rows(&name, &logged, &feedback, |v| features.get(&v).cloned());
    Ok(Json(serde_json::json!(rows)))
}

/// Every entry under `folder/name/` of the store (request logs or feedback, from every replica).
async fn read_log<T: serde::de::DeserializeOwned>(
    state: &AppState,
    folder: &str,
    name: &str,
) -> Result<Vec<T>, ApiError> {
    crate::request_log::read_entries(state.registry.store().as_ref(), &format!("{folder}/{name}"))
        .await
        .map_err(|e| ApiError::Internal(format!("reading the {folder} of `{name}` from the store: {e}; check the store is reachable, then retry")))
}

/// Each version's features in order and those it hashes; an image model is a 400 (live rows and
/// labels are for table models).
async fn table_features(
    state: &AppState,
    name: &str,
    versions: Vec<u64>,
) -> Result<std::collections::HashMap<u64, (Vec<String>, Vec<String>)>, ApiError> {
    let mut features = std::collections::HashMap::new();
    for version in versions {
        if let Some((loaded, _)) = state.registry.resolve(name, Some(version)).await {
            if let wick_core::model::ModelInput::Tabular { preprocessor } = &loaded.model.input {
                let names: Vec<String> = preprocessor
                    .encoders
                    .iter()
                    .map(|e| e.name().to_string())
                    .collect();
                let hashed = names
                    .iter()
                    .filter(|n| preprocessor.personal.is_hashed(n))
                    .cloned()
                    .collect();
                features.insert(version, (names, hashed));
            } else {
                return Err(ApiError::BadRequest(format!(
                    "`{name}` is an image model; live rows and labels are for table models"
                )));
            }
        }
    }
    Ok(features)
}

#[derive(Deserialize)]
struct QueueQuery {
    #[serde(default = "default_queue_limit")]
    limit: usize,
}

fn default_queue_limit() -> usize {
    20
}

/// `GET /v2/wick/models/{name}/queue?limit=N`: logged requests without feedback, the ones the model
/// was least sure of first, read from the store like `labelled`; a person labels them on Monitor
/// and the labels go back as feedback.
async fn label_queue(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    axum::extract::Query(query): axum::extract::Query<QueueQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::request_log::{Feedback, LoggedRequest};
    state
        .tokens
        .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let Some(versions) = state.registry.versions_of(&name).await else {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    };
    let features = table_features(&state, &name, versions).await?;
    let feedback: Vec<Feedback> = read_log(&state, "feedback", &name).await?;
    let logged: Vec<LoggedRequest> = read_log(&state, "logs", &name).await?;
    let requests = crate::request_log::label_queue(
        &logged,
        &feedback,
        |v| features.get(&v).cloned(),
        query.limit,
    );
    let labels = state
        .registry
        .serving_version(&name)
        .await
        .map(|v| v.manifest.target.labels.clone())
        .unwrap_or_default();
    Ok(Json(serde_json::json!(wick_core::wire::LabelQueue {
        model: name,
        requests,
        labels
    })))
}

#[derive(Deserialize)]
struct PublicBody {
    public: bool,
}

async fn set_public(
    State(state): Shared,
    headers: HeaderMap,
    Path(name): Path<String>,
    Json(body): Json<PublicBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token =
        state
            .tokens
            .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    if state.registry.versions_of(&name).await.is_none() {
        return Err(ApiError::NotFound(format!("model `{name}` not found")));
    }
    state.registry.set_public(&name, body.public).await?;
    audit(
        &state,
        token.as_ref(),
        "set_public",
        &name,
        serde_json::json!({ "public": body.public }),
    )
    .await;
    Ok(Json(
        serde_json::json!({ "name": name, "public": body.public }),
    ))
}

async fn delete_version(
    State(state): Shared,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token =
        state
            .tokens
            .authorize(auth_header(&headers), Scope::Publish, Some(&name), false)?;
    let version = parse_version(&version)?;
    state
        .registry
        .delete_version(&name, version)
        .await
        .map_err(not_found_or)?;
    audit(
        &state,
        token.as_ref(),
        "delete_version",
        &name,
        serde_json::json!({ "version": version }),
    )
    .await;
    Ok(Json(
        serde_json::json!({ "name": name, "deleted": version }),
    ))
}

fn not_found_or(e: ServeError) -> ApiError {
    match e {
        ServeError::Invalid(m) if m.contains("has no version") => ApiError::NotFound(m),
        ServeError::Invalid(m) if m.contains("is the default") || m.contains("traffic split") => {
            ApiError::Conflict(m)
        }
        other => other.into(),
    }
}

/// Records a change in the audit log. The change has happened: a failed write is logged, not
/// turned into an error for a request that succeeded.
async fn audit(
    state: &AppState,
    token: Option<&TokenRecord>,
    action: &str,
    model: &str,
    details: serde_json::Value,
) {
    let entry = AuditEntry {
        at: chrono::Utc::now(),
        token_id: token.map_or_else(|| "none".to_string(), |t| t.id.clone()),
        action: action.to_string(),
        model: model.to_string(),
        details,
    };
    if let Err(e) = state.audit.append(&entry).await {
        tracing::error!(error = %e, action, model, "could not write the audit entry");
    }
}

async fn audit_log(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .tokens
        .authorize(auth_header(&headers), Scope::Publish, None, false)?;
    Ok(Json(
        serde_json::json!({ "entries": state.audit.read(MAX_AUDIT_ENTRIES).await? }),
    ))
}

async fn usage(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .tokens
        .authorize(auth_header(&headers), Scope::Publish, None, false)?;
    Ok(Json(serde_json::json!({ "usage": state.metrics.usage() })))
}

/// Re-reads the store every `refresh_interval_secs` until dropped.
pub(crate) fn spawn_refresher(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(
            state.config.refresh_interval_secs.max(1),
        ));
        loop {
            tick.tick().await;
            if let Err(e) = state.registry.refresh().await {
                tracing::warn!(error = %e, "store refresh failed");
            }
        }
    })
}

/// Answers HTTP connections on `listener` until `shutdown` resolves.
pub(crate) async fn serve_connections(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServeError::Invalid(format!("server error: {e}")))
}

/// Answers HTTPS (rustls) connections on `listener` until `shutdown` resolves, then lets requests in
/// flight finish for up to 10 s.
pub(crate) async fn serve_connections_tls(
    state: Arc<AppState>,
    listener: std::net::TcpListener,
    tls: axum_server::tls_rustls::RustlsConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(10)));
    });
    let server = axum_server::from_tcp_rustls(listener, tls).map_err(|e| ServeError::Io {
        path: "listener".into(),
        source: e,
    })?;
    server
        .handle(handle)
        .serve(router(state).into_make_service())
        .await
        .map_err(|e| ServeError::Io {
            path: "server".into(),
            source: e,
        })
}
