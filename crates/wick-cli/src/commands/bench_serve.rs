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
use wick_core::train::TableData;
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

/// A server process on loopback, killed when dropped.
struct ServerProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServerProcess {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run(
    samples: &Path,
    python: &str,
    duration_secs: f64,
    max_requests: usize,
    json: bool,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    eprintln!("training the benchmark models…");
    let (linear, cnn) = train_models(samples, dir.path())?;

    let tokens = dir.path().join("tokens.json");
    let (token, _) = create_token(&tokens, "bench", vec![Scope::Publish, Scope::Infer], None)?;
    // wick-serve runs as its own process, as `wick serve` would, so that it and the Python server are
    // measured alike: each a separate process, the same load generator in this one.
    let port = free_port()?;
    let mut wick_command =
        Command::new(std::env::current_exe().context("finding the wick executable")?);
    wick_command
        .arg("serve")
        .env("WICK_SERVE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WICK_SERVE_STORE", dir.path().join("store"))
        .env("WICK_SERVE_DATA_DIR", dir.path().join("data"))
        .env("WICK_SERVE_TOKENS_FILE", &tokens)
        .env("WICK_SERVE_MAX_CONCURRENT_REQUESTS", "1024")
        .env("WICK_LOG", "warn");
    let wick_server = start_server(wick_command, port)?
        .context("wick serve did not start (its error is printed above)")?;
    let endpoint = Endpoint::new(&wick_server.url(), &token)?;
    endpoint.publish(&linear, Some("linear"), "")?;
    endpoint.publish(&cnn, Some("cnn"), "")?;
    // The same linear model with every request logged, for the logging-on row.
    endpoint.publish(&linear, Some("linear-logged"), "")?;
    endpoint.set_logging("linear-logged", 1.0)?;

    let reference = start_reference(python, dir.path(), &linear, &cnn)?;
    if reference.is_none() {
        eprintln!(
            "note: the Python reference server could not start; measuring Wick only. It needs fastapi, uvicorn[standard], safetensors and torch: `scripts/setup.sh --bench` and `python3 -m pip install torch`, then pass --python"
        );
    }

    let linear_body = serde_json::to_vec(&serde_json::json!({ "inputs": [
        { "name": "temp_min", "shape": [1], "datatype": "FP64", "data": [11.5] },
        { "name": "month", "shape": [1], "datatype": "FP64", "data": [6.0] } ] }))?;
    let pixels: Vec<u8> = (0..64).map(|i| (i * 37 % 256) as u8).collect();
    let cnn_body = serde_json::to_vec(
        &serde_json::json!({ "inputs": [{ "name": "image", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": pixels }] }),
    )?;

    // One load thread per CPU (one per connection below that): fewer made the load generator the
    // bottleneck at 64 connections on 2 cores.
    let client_threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1);
    let mut rows = Vec::new();
    // The health check is each server's round trip with no model work.
    let cells = [
        ("linear", Some(&linear_body), vec![1usize, 16, 64]),
        ("cnn", Some(&cnn_body), vec![1, 16, 64]),
        ("health", None, vec![1]),
    ];
    for (model, body, connection_counts) in cells {
        for connections in connection_counts {
            eprintln!("{model}, {connections} connections…");
            let path = if body.is_some() {
                format!("/v2/models/{model}/infer")
            } else {
                "/v2/health/ready".to_string()
            };
            let load = |server: &ServerProcess, auth: Option<String>| -> Result<LoadResult> {
                let target = Target {
                    addr: server.addr,
                    path: path.clone(),
                    auth,
                };
                load_test(
                    &target,
                    body.map(Vec::as_slice),
                    connections,
                    client_threads,
                    Duration::from_secs_f64(duration_secs),
                    max_requests,
                )
            };
            let wick = load(&wick_server, Some(token.clone()))?;
            let python = match &reference {
                Some(server) => Some(load(server, None)?),
                None => None,
            };
            let throughput_ratio = python
                .as_ref()
                .map(|p| wick.requests_per_sec / p.requests_per_sec.max(1e-9));
            rows.push(Row {
                model: model.into(),
                connections,
                wick,
                python,
                throughput_ratio,
            });
        }
    }
    // Request logging at sample 1.0 against the same model unlogged, in the same run: its cost on
    // throughput, and whether every answered request was logged (none dropped).
    let mut logging = Vec::new();
    for connections in [16usize, 64] {
        eprintln!("linear with every request logged, {connections} connections…");
        let target = Target {
            addr: wick_server.addr,
            path: "/v2/models/linear-logged/infer".into(),
            auth: Some(token.clone()),
        };
        let logged = load_test(
            &target,
            Some(&linear_body),
            connections,
            client_threads,
            Duration::from_secs_f64(duration_secs),
            max_requests,
        )?;
        let off = rows
            .iter()
            .find(|r| r.model == "linear" && r.connections == connections)
            .map(|r| r.wick.requests_per_sec);
        logging.push(serde_json::json!({
            "connections": connections,
            "requests_per_sec": logged.requests_per_sec,
            "requests_per_sec_logging_off": off,
            "ratio": off.map(|o| logged.requests_per_sec / o.max(1e-9)),
            "requests": logged.requests,
            "errors": logged.errors,
        }));
        rows.push(Row {
            model: "linear, logging all".into(),
            connections,
            wick: logged,
            python: None,
            throughput_ratio: None,
        });
    }
    let metrics = reqwest::blocking::get(format!("{}/metrics", wick_server.url()))
        .and_then(|r| r.text())
        .context("reading wick serve's /metrics")?;
    let counter = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let (logged_total, dropped_total) = (
        counter("wick_logged_requests_total "),
        counter("wick_log_dropped_total "),
    );
    let answered_logged: usize = rows
        .iter()
        .filter(|r| r.model == "linear, logging all")
        .map(|r| r.wick.requests - r.wick.errors)
        .sum();
    drop(reference);
    drop(wick_server);
    let echo_round_trips_per_sec =
        tcp_echo_round_trips_per_sec(Duration::from_secs_f64(duration_secs.min(2.0)))?;
    if json {
        return print_json(&serde_json::json!({
            "rows": rows,
            "tcp_echo_round_trips_per_sec": echo_round_trips_per_sec,
            "logging": { "cells": logging, "answered": answered_logged, "logged": logged_total, "dropped": dropped_total },
        }));
    }
    let mut t = table(&[
        "model",
        "conns",
        "Wick req/s",
        "p50 ms",
        "p99 ms",
        "err",
        "Python req/s",
        "p50 ms",
        "p99 ms",
        "err",
        "Wick ×",
    ]);
    for r in &rows {
        let py =
            |f: fn(&LoadResult) -> String| r.python.as_ref().map(f).unwrap_or_else(|| "-".into());
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
            r.throughput_ratio
                .map(|x| format!("{x:.1}"))
                .unwrap_or_default(),
        ]);
    }
    println!("{t}");
    println!("each cell: {duration_secs} s or {max_requests} requests, one row or one 8×8 image per request; load generator in this process");
    println!("health: GET /v2/health/ready, each server's round trip with no model work");
    for cell in &logging {
        if let (Some(on), Some(ratio)) = (cell["requests_per_sec"].as_f64(), cell["ratio"].as_f64())
        {
            println!("request logging at sample 1.0, {} connections: {on:.0} req/s, {ratio:.2}× the same model unlogged", cell["connections"]);
        }
    }
    println!("logged {logged_total} of the {answered_logged} answered requests of the logging rows, {dropped_total} dropped (buffer full)");
    println!(
        "this machine's floor at 1 connection: {echo_round_trips_per_sec:.0} round trips/s of 300 bytes between two threads over loopback TCP, with no HTTP and no work (a sleeping thread woken per message)"
    );
    Ok(())
}

fn train_models(samples: &Path, dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let data = samples.join("seattle-weather.csv");
    let df = read_table(&data)?;
    let request = TabularRequest {
        target: "temp_max".into(),
        features: Some(vec!["temp_min".into(), "month".into()]),
        ..Default::default()
    };
    let out = train_table(
        TableData::new(&df, &data, &request),
        &ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        },
        &TrainConfig::default(),
        &mut |_| {},
        &CancelToken::new(),
    )?;
    let linear = dir.join("linear.wick");
    save_package(&out.model, &out.report, "linear", &linear)?;
    let index = index_image_folder(&samples.join("digits"))?;
    let spec = ModelSpec::Cnn {
        input: index.default_shape(64),
        layers: default_cnn_layers(),
    };
    let out = train_images(
        &index,
        &spec,
        &TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        },
        &mut |_| {},
        &CancelToken::new(),
    )?;
    let cnn = dir.join("cnn.wick");
    save_package(&out.model, &out.report, "cnn", &cnn)?;
    Ok((linear, cnn))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn start_reference(
    python: &str,
    dir: &Path,
    linear: &Path,
    cnn: &Path,
) -> Result<Option<ServerProcess>> {
    let script = dir.join("reference_server.py");
    std::fs::write(&script, REFERENCE_SERVER_PY)?;
    let port = free_port()?;
    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg(port.to_string())
        .arg(linear)
        .arg(cnn);
    start_server(command, port)
}

/// Starts `command` (a server that will listen on `port`) and waits until it answers its readiness
/// check; `None` when it cannot be started or exits first.
fn start_server(mut command: Command, port: u16) -> Result<Option<ServerProcess>> {
    let child = match command
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(c) => c,
        Err(_) => return Ok(None),
    };
    let mut server = ServerProcess {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    };
    let ready = format!("{}/v2/health/ready", server.url());
    let client = reqwest::blocking::Client::new();
    for _ in 0..600 {
        if client
            .get(&ready)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(Some(server));
        }
        if server.child.try_wait()?.is_some() {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{command:?} did not become ready in 60 s")
}

/// `connections` keep-alive HTTP/1 connections POST `body` (GET without one) back to back until
/// `duration` passes or `max_requests` are sent. The load generator is hyper's bare client connection on
/// current-thread runtimes (no pool, no redirects, no cross-thread hand-offs) so that, like `wrk`, it
/// costs the servers as little of this machine's CPU as it can.
fn load_test(
    target: &Target,
    body: Option<&[u8]>,
    connections: usize,
    client_threads: usize,
    duration: Duration,
    max_requests: usize,
) -> Result<LoadResult> {
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let body = body.map(bytes::Bytes::copy_from_slice);
    let thread_count = client_threads.clamp(1, connections);
    let threads: Vec<_> = (0..thread_count)
        .map(|t| {
            let mine = (t..connections).step_by(thread_count).count();
            let (target, body, sent) = (target.clone(), body.clone(), sent.clone());
            std::thread::spawn(move || -> Result<(Vec<f64>, usize)> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let workers: Vec<_> = (0..mine)
                        .map(|_| {
                            tokio::spawn(connection_loop(
                                target.clone(),
                                body.clone(),
                                sent.clone(),
                                deadline,
                                max_requests,
                            ))
                        })
                        .collect();
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    for w in workers {
                        let (l, e) = w.await.context("load worker")?;
                        latencies.extend(l);
                        errors += e;
                    }
                    Ok((latencies, errors))
                })
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    Ok(LoadResult {
        requests: latencies.len(),
        errors,
        requests_per_sec: latencies.len() as f64 / elapsed,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
    })
}

/// Round trips per second of 300 bytes echoed between two threads over loopback TCP (blocking
/// sockets): what one connection costs this machine before any HTTP or model work.
fn tcp_echo_round_trips_per_sec(duration: Duration) -> Result<f64> {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            stream.write_all(&buf[..n])?;
        }
    });
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let message = [7u8; 300];
    let mut reply = [0u8; 300];
    let started = Instant::now();
    let mut round_trips = 0u64;
    while started.elapsed() < duration {
        stream.write_all(&message)?;
        stream.read_exact(&mut reply)?;
        round_trips += 1;
    }
    let rate = round_trips as f64 / started.elapsed().as_secs_f64();
    drop(stream);
    echo.join()
        .map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    Ok(rate)
}

/// Where a load test sends its requests.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    path: String,
    auth: Option<String>,
}

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// The request every connection sends: method, path and headers (the body is added per request).
fn request_template(target: &Target, post: bool) -> Result<hyper::Request<()>> {
    let mut request = hyper::Request::builder()
        .uri(target.path.as_str())
        .header(hyper::header::HOST, target.addr.to_string());
    if let Some(a) = &target.auth {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {a}"));
    }
    Ok(if post {
        request
            .method(hyper::Method::POST)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(())?
    } else {
        request.method(hyper::Method::GET).body(())?
    })
}

/// One connection's requests, reconnecting after a failure (a failed request counts as an error).
async fn connection_loop(
    target: Target,
    body: Option<bytes::Bytes>,
    sent: Arc<std::sync::atomic::AtomicUsize>,
    deadline: Instant,
    max_requests: usize,
) -> (Vec<f64>, usize) {
    use http_body_util::BodyExt;
    let mut latencies = Vec::new();
    let mut errors = 0usize;
    let Ok(template) = request_template(&target, body.is_some()) else {
        return (latencies, 1);
    };
    let body = body.unwrap_or_default();
    let mut sender: Option<Sender> = None;
    while Instant::now() < deadline
        && sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < max_requests
    {
        let t = Instant::now();
        let ok = async {
            let s = match sender.as_mut() {
                Some(s) => s,
                None => sender.insert(connect(target.addr).await?),
            };
            // The request line and headers are built once; each request copies them.
            let mut request = hyper::Request::new(http_body_util::Full::new(body.clone()));
            *request.method_mut() = template.method().clone();
            *request.uri_mut() = template.uri().clone();
            *request.headers_mut() = template.headers().clone();
            let response = s.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            anyhow::Ok(status.is_success())
        }
        .await;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        match ok {
            Ok(true) => {}
            Ok(false) => errors += 1,
            Err(_) => {
                errors += 1;
                sender = None;
            }
        }
    }
    (latencies, errors)
}
