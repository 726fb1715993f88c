//! `wick bench --serve`: wick-serve under load beside a Python (FastAPI + PyTorch) server answering the
//! same Open Inference Protocol requests for the same packages, measured in one interleaved run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use wick_core::data::{index_image_folder, read_table, TabularRequest};
use wick_core::model::{default_cnn_layers, ModelSpec};
use wick_core::package::save_package;
use wick_core::publish::Endpoint;
use wick_core::train::{train_images, train_table, CancelToken, TrainConfig};
use wick_serve::auth::{create_token, Scope};

use crate::output::{print_json, table};

const REFERENCE_SERVER_PY: &str = include_str!("../../bench/reference_server.py");

#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    pub requests: usize,
    pub errors: usize,
    pub requests_per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

#[derive(Serialize)]
struct Row {
    model: String,
    connections: usize,
    wick: LoadResult,
    python: Option<LoadResult>,
    throughput_ratio: Option<f64>,
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(samples: &Path, python: &str, duration_secs: f64, max_requests: usize, json: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    eprintln!("training the benchmark models…");
    let (linear, cnn) = train_models(samples, dir.path())?;

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let tokens = dir.path().join("tokens.json");
    let (token, _) = create_token(&tokens, "bench", vec![Scope::Publish, Scope::Infer], None)?;
    let config = wick_serve::ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: dir.path().join("store").to_string_lossy().to_string(),
        data_dir: dir.path().join("data"),
        tokens_file: Some(tokens),
        max_concurrent_requests: 1024,
        ..wick_serve::ServeConfig::default()
    };
    let wick_url = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = wick_serve::AppState::new(config).await?;
        tokio::spawn(wick_serve::serve(state, listener, std::future::pending()));
        anyhow::Ok(format!("http://{addr}"))
    })?;
    let endpoint = Endpoint::new(&wick_url, &token)?;
    endpoint.publish(&linear, Some("linear"), "")?;
    endpoint.publish(&cnn, Some("cnn"), "")?;

    let reference = start_reference(python, dir.path(), &linear, &cnn)?;
    if reference.is_none() {
        eprintln!("note: the Python reference server could not start (needs fastapi, uvicorn, safetensors, torch); measuring Wick only");
    }
    let python_url = reference.as_ref().map(|(_, url)| url.clone());

    let linear_body = serde_json::to_vec(&serde_json::json!({ "inputs": [
        { "name": "temp_min", "shape": [1], "datatype": "FP64", "data": [11.5] },
        { "name": "month", "shape": [1], "datatype": "FP64", "data": [6.0] } ] }))?;
    let pixels: Vec<u8> = (0..64).map(|i| (i * 37 % 256) as u8).collect();
    let cnn_body = serde_json::to_vec(&serde_json::json!({ "inputs": [{ "name": "image", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": pixels }] }))?;

    let mut rows = Vec::new();
    // The health check is each server's round trip with no work in it: the floor under the 1-connection
    // latency of the model rows.
    let cells = [("linear", Some(&linear_body), vec![1usize, 16, 64]), ("cnn", Some(&cnn_body), vec![1, 16, 64]), ("health", None, vec![1])];
    for (model, body, connection_counts) in cells {
        for connections in connection_counts {
            eprintln!("{model}, {connections} connections…");
            let load = |url: String, auth: Option<String>| {
                runtime.block_on(load_test(url, auth, body.cloned(), connections, Duration::from_secs_f64(duration_secs), max_requests))
            };
            let path = if body.is_some() { format!("/v2/models/{model}/infer") } else { "/v2/health/ready".to_string() };
            let wick = load(format!("{wick_url}{path}"), Some(token.clone()))?;
            let python = match &python_url {
                Some(url) => Some(load(format!("{url}{path}"), None)?),
                None => None,
            };
            let throughput_ratio = python.as_ref().map(|p| wick.requests_per_sec / p.requests_per_sec.max(1e-9));
            rows.push(Row { model: model.into(), connections, wick, python, throughput_ratio });
        }
    }
    drop(reference);
    if json {
        return print_json(&rows);
    }
    let mut t = table(&["model", "conns", "Wick req/s", "p50 ms", "p99 ms", "err", "Python req/s", "p50 ms", "p99 ms", "err", "Wick ×"]);
    for r in &rows {
        let py = |f: fn(&LoadResult) -> String| r.python.as_ref().map(f).unwrap_or_else(|| "-".into());
        t.add_row(vec![
            r.model.clone(),
            r.connections.to_string(),
            format!("{:.0}", r.wick.requests_per_sec),
            format!("{:.2}", r.wick.p50_ms),
            format!("{:.2}", r.wick.p99_ms),
            r.wick.errors.to_string(),
            py(|p| format!("{:.0}", p.requests_per_sec)),
            py(|p| format!("{:.2}", p.p50_ms)),
            py(|p| format!("{:.2}", p.p99_ms)),
            py(|p| p.errors.to_string()),
            r.throughput_ratio.map(|x| format!("{x:.1}")).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    println!("each cell: {duration_secs} s or {max_requests} requests, one row or one 8×8 image per request; load generator in this process");
    println!("health: GET /v2/health/ready, each server's round trip with no model work (the floor under 1-connection latency)");
    Ok(())
}

fn train_models(samples: &Path, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let data = samples.join("seattle-weather.csv");
    let df = read_table(&data)?;
    let request = TabularRequest { target: "temp_max".into(), features: Some(vec!["temp_min".into(), "month".into()]), ..Default::default() };
    let out = train_table(&df, &data, &request, &ModelSpec::Linear { ridge_alpha: 0.0, poly_degree: 1 }, &TrainConfig::default(), &mut |_| {}, &CancelToken::new())?;
    let linear = dir.join("linear.wick");
    save_package(&out.model, &out.report, "linear", &linear)?;
    let index = index_image_folder(&samples.join("digits"))?;
    let spec = ModelSpec::Cnn { input: index.default_shape(64), layers: default_cnn_layers() };
    let out = train_images(&index, &spec, &TrainConfig { epochs: 3, ..TrainConfig::default() }, &mut |_| {}, &CancelToken::new())?;
    let cnn = dir.join("cnn.wick");
    save_package(&out.model, &out.report, "cnn", &cnn)?;
    Ok((linear, cnn))
}

fn start_reference(python: &str, dir: &Path, linear: &Path, cnn: &Path) -> Result<Option<(KillOnDrop, String)>> {
    let script = dir.join("reference_server.py");
    std::fs::write(&script, REFERENCE_SERVER_PY)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = match Command::new(python).arg(&script).arg(port.to_string()).arg(linear).arg(cnn).stdout(Stdio::null()).stderr(Stdio::inherit()).spawn() {
        Ok(c) => c,
        Err(_) => return Ok(None),
    };
    let mut guard = KillOnDrop(child);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::new();
    for _ in 0..600 {
        if client.get(format!("{url}/v2/health/ready")).send().is_ok_and(|r| r.status().is_success()) {
            return Ok(Some((guard, url)));
        }
        if guard.0.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the Python reference server did not become ready in 60 s")
}

/// `connections` workers POST `body` (GET without one) back to back until `duration` passes or
/// `max_requests` are sent.
async fn load_test(url: String, auth: Option<String>, body: Option<Vec<u8>>, connections: usize, duration: Duration, max_requests: usize) -> Result<LoadResult> {
    let client = reqwest::Client::builder().pool_max_idle_per_host(connections).build()?;
    let body = body.map(bytes::Bytes::from);
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, url, auth, body, sent) = (client.clone(), url.clone(), auth.clone(), body.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline && sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < max_requests {
                let t = Instant::now();
                let mut req = match &body {
                    Some(body) => client.post(&url).header("content-type", "application/json").body(body.clone()),
                    None => client.get(&url),
                };
                if let Some(a) = &auth {
                    req = req.bearer_auth(a);
                }
                let ok = match req.send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                errors += usize::from(!ok);
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.context("load worker")?;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    Ok(LoadResult { requests: latencies.len(), errors, requests_per_sec: latencies.len() as f64 / elapsed, p50_ms: pct(0.5), p99_ms: pct(0.99) })
}
