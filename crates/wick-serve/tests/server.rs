//! wick-serve over real HTTP on loopback: publish, metadata, inference, versions, auth, limits,
//! metrics, replicas sharing a store, and a SIGKILL in the middle of an upload.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde_json::{json, Value};
use wick_core::data::{index_image_folder, read_table, TabularRequest};
use wick_core::model::{default_cnn_layers, ModelSpec, Prediction};
use wick_core::package::{load_package, save_package};
use wick_core::publish::{Endpoint, PublishError};
use wick_core::train::TableData;
use wick_core::train::{train_images, train_table, CancelToken, TrainConfig};
use wick_serve::auth::{create_token, Scope};
use wick_serve::{RunningServer, ServeConfig};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sample-data")
        .join(name)
}

/// Packages trained once per test binary: two linear models (different features), boosted trees
/// named `weather-trees` (the features of the first), and a small CNN.
struct Packages {
    _dir: tempfile::TempDir,
    linear_a: PathBuf,
    linear_b: PathBuf,
    trees: PathBuf,
    cnn: PathBuf,
}

fn packages() -> &'static Packages {
    static P: OnceLock<Packages> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = sample("seattle-weather.csv");
        let df = read_table(&data).unwrap();
        let linear = ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        };
        let mut paths = Vec::new();
        for (i, features) in [
            vec!["temp_min", "wind", "weather"],
            vec!["temp_min", "month"],
        ]
        .into_iter()
        .enumerate()
        {
            let request = TabularRequest {
                target: "temp_max".into(),
                features: Some(features.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            };
            let out = train_table(
                TableData::new(&df, &data, &request),
                &linear,
                &TrainConfig::default(),
                &mut |_| {},
                &CancelToken::new(),
            )
            .unwrap();
            let path = dir.path().join(format!("weather-{i}.wick"));
            save_package(&out.model, &out.report, "weather", &path).unwrap();
            paths.push(path);
        }
        let request = TabularRequest {
            target: "temp_max".into(),
            features: Some(["temp_min", "wind", "weather"].map(String::from).to_vec()),
            ..Default::default()
        };
        let out = train_table(
            TableData::new(&df, &data, &request),
            &ModelSpec::default_gbdt(),
            &TrainConfig::default(),
            &mut |_| {},
            &CancelToken::new(),
        )
        .unwrap();
        let trees = dir.path().join("weather-trees.wick");
        save_package(&out.model, &out.report, "weather-trees", &trees).unwrap();
        let index = index_image_folder(&sample("digits")).unwrap();
        let spec = ModelSpec::Cnn {
            input: index.default_shape(64),
            layers: default_cnn_layers(),
        };
        let out = train_images(
            &index,
            &spec,
            &TrainConfig {
                epochs: 2,
                ..TrainConfig::default()
            },
            &mut |_| {},
            &CancelToken::new(),
        )
        .unwrap();
        let cnn = dir.path().join("digits.wick");
        save_package(&out.model, &out.report, "digits", &cnn).unwrap();
        Packages {
            linear_a: paths[0].clone(),
            linear_b: paths[1].clone(),
            trees,
            cnn,
            _dir: dir,
        }
    })
}

/// `linear_b` takes other columns (temp_min, month) than `linear_a` (temp_min, wind, weather): as a
/// later version of the same name it must say it replaces the inputs.
fn replacing_inputs() -> wick_core::publish::PublishOptions {
    wick_core::publish::PublishOptions {
        replace_inputs: true,
        ..Default::default()
    }
}

struct Server {
    url: String,
    publish_token: String,
    infer_token: String,
    _server: RunningServer,
    dir: Arc<tempfile::TempDir>,
}

fn config_in(dir: &Path, store: &Path) -> ServeConfig {
    ServeConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        store: store.to_string_lossy().to_string(),
        data_dir: dir.join("data"),
        tokens_file: Some(dir.join("tokens.json")),
        max_body_bytes: 8 * 1024 * 1024,
        max_infer_body_bytes: 8 * 1024 * 1024,
        max_tensor_elements: 10_000,
        refresh_interval_secs: 1,
        ..ServeConfig::default()
    }
}

fn start_with(
    config: ServeConfig,
    dir: Arc<tempfile::TempDir>,
    tokens: (String, String),
) -> Server {
    let server = RunningServer::start(config).unwrap();
    let url = format!("http://{}", server.addr);
    Server {
        url,
        publish_token: tokens.0,
        infer_token: tokens.1,
        _server: server,
        dir,
    }
}

fn start() -> Server {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let tokens_file = dir.path().join("tokens.json");
    let (publish, _) = create_token(
        &tokens_file,
        "publisher",
        vec![Scope::Publish, Scope::Infer],
        None,
    )
    .unwrap();
    let (infer, _) = create_token(
        &tokens_file,
        "caller",
        vec![Scope::Infer],
        Some(vec!["weather".into(), "digits".into()]),
    )
    .unwrap();
    let config = config_in(dir.path(), &dir.path().join("store"));
    start_with(config, dir, (publish, infer))
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::new()
}

fn post(url: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = client().post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn weather_body(rows: &[(f64, f64, &str)]) -> Value {
    json!({
        "id": "t1",
        "inputs": [
            { "name": "temp_min", "shape": [rows.len()], "datatype": "FP64", "data": rows.iter().map(|r| r.0).collect::<Vec<_>>() },
            { "name": "wind", "shape": [rows.len()], "datatype": "FP32", "data": rows.iter().map(|r| r.1).collect::<Vec<_>>() },
            { "name": "weather", "shape": [rows.len()], "datatype": "BYTES", "data": rows.iter().map(|r| r.2).collect::<Vec<_>>() }
        ]
    })
}

#[test]
fn publish_metadata_infer_round_trip_matches_local_predict() {
    let s = start();
    let p = packages();
    let endpoint = Endpoint::new(&s.url, &s.publish_token).unwrap();
    let published = endpoint.publish(&p.linear_a, None, "first").unwrap();
    assert_eq!(
        (
            published.name.as_str(),
            published.version,
            published.existing
        ),
        ("weather", 1, false)
    );

    assert_eq!(get(&format!("{}/v2/health/live", s.url), None).0, 200);
    assert_eq!(get(&format!("{}/v2/health/ready", s.url), None).0, 200);
    let (status, server) = get(&format!("{}/v2", s.url), None);
    assert_eq!(status, 200);
    assert_eq!(server["name"], "wick-serve");
    // As the protocol's OpenAPI file writes it.
    assert_eq!(get(&format!("{}/v2/", s.url), None), (200, server.clone()));

    let (status, meta) = get(
        &format!("{}/v2/models/weather", s.url),
        Some(&s.infer_token),
    );
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["versions"], json!(["1"]));
    assert_eq!(
        meta["inputs"][0],
        json!({ "name": "temp_min", "datatype": "FP64", "shape": [-1] })
    );
    assert_eq!(meta["outputs"][0]["name"], "temp_max");
    assert_eq!(
        get(
            &format!("{}/v2/models/weather/ready", s.url),
            Some(&s.infer_token)
        )
        .0,
        200
    );
    assert_eq!(
        get(
            &format!("{}/v2/models/weather/versions/1/ready", s.url),
            Some(&s.infer_token)
        )
        .0,
        200
    );

    let rows = [(10.0, 3.0, "rain"), (15.5, 1.2, "sun"), (0.5, 6.0, "snow")];
    let (status, answer) = post(
        &format!("{}/v2/models/weather/infer", s.url),
        Some(&s.infer_token),
        &weather_body(&rows),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["model_name"], "weather");
    assert_eq!(answer["model_version"], "1");
    assert_eq!(answer["id"], "t1");
    let served: Vec<f64> = serde_json::from_value(answer["outputs"][0]["data"].clone()).unwrap();

    let (model, _) = load_package(&p.linear_a).unwrap();
    let local_rows: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| {
            serde_json::from_value(json!({ "temp_min": r.0, "wind": r.1, "weather": r.2 })).unwrap()
        })
        .collect();
    let local: Vec<f64> = model
        .predict_rows(&local_rows)
        .unwrap()
        .iter()
        .map(|p| match p {
            Prediction::Value { value } => *value,
            _ => panic!(),
        })
        .collect();
    assert_eq!(served, local, "served predictions equal local ones");

    // A body over 64 KiB is parsed and predicted on the blocking pool: the same answer.
    let padded = format!("{}{}", weather_body(&rows), " ".repeat(70_000));
    let resp = client()
        .post(format!("{}/v2/models/weather/infer", s.url))
        .bearer_auth(&s.infer_token)
        .body(padded)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let answer: Value = resp.json().unwrap();
    assert_eq!(answer["outputs"][0]["data"], json!(local));

    // The same model called with tensors that are text-free as one 2-D tensor is refused (text feature).
    let matrix = json!({ "inputs": [{ "name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[1.0, 2.0, 3.0]] }] });
    let (status, err) = post(
        &format!("{}/v2/models/weather/infer", s.url),
        Some(&s.infer_token),
        &matrix,
    );
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().contains("`weather` is text"),
        "{err}"
    );
}

#[test]
fn versions_rollback_identical_bytes_and_deletion() {
    let s = start();
    let p = packages();
    let endpoint = Endpoint::new(&s.url, &s.publish_token).unwrap();
    assert_eq!(endpoint.publish(&p.linear_a, None, "").unwrap().version, 1);
    assert_eq!(
        endpoint
            .publish_with(&p.linear_b, None, "", &replacing_inputs())
            .unwrap()
            .version,
        2
    );
    let again = endpoint.publish(&p.linear_a, None, "").unwrap();
    assert!(
        again.existing && again.version == 1,
        "identical bytes return the existing version"
    );

    // Version 2 (temp_min, month) is the default now: a 2-D tensor works for it.
    let matrix = json!({ "inputs": [{ "name": "input", "shape": [2, 2], "datatype": "FP64", "data": [10.0, 7.0, 0.0, 1.0] }] });
    let (status, a) = post(
        &format!("{}/v2/models/weather/infer", s.url),
        Some(&s.infer_token),
        &matrix,
    );
    assert_eq!(
        (status, a["model_version"].as_str()),
        (200, Some("2")),
        "{a}"
    );
    let (status, a) = post(
        &format!("{}/v2/models/weather/versions/1/infer", s.url),
        Some(&s.infer_token),
        &weather_body(&[(1.0, 2.0, "sun")]),
    );
    assert_eq!(
        (status, a["model_version"].as_str()),
        (200, Some("1")),
        "{a}"
    );

    endpoint.set_default("weather", 1).unwrap();
    let (_, meta) = get(
        &format!("{}/v2/models/weather", s.url),
        Some(&s.infer_token),
    );
    assert_eq!(meta["parameters"]["version"], "1");
    let models = endpoint.models().unwrap();
    assert_eq!(models[0].default_version, Some(1));
    assert_eq!(models[0].versions.len(), 2);

    let del = client()
        .delete(format!("{}/v2/wick/models/weather/versions/1", s.url))
        .bearer_auth(&s.publish_token)
        .send()
        .unwrap();
    assert_eq!(del.status().as_u16(), 409, "the default can't be deleted");
    let del = client()
        .delete(format!("{}/v2/wick/models/weather/versions/2", s.url))
        .bearer_auth(&s.publish_token)
        .send()
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    assert_eq!(
        get(
            &format!("{}/v2/models/weather/versions/2", s.url),
            Some(&s.infer_token)
        )
        .0,
        404
    );
    let err = endpoint.set_default("weather", 9).unwrap_err();
    assert!(
        matches!(err, PublishError::Server { status: 404, .. }),
        "{err}"
    );
}

#[test]
fn tokens_scopes_and_public_models() {
    let s = start();
    let p = packages();
    let url = format!("{}/v2/models/weather/infer", s.url);
    let body = weather_body(&[(5.0, 1.0, "fog")]);
    let caller = Endpoint::new(&s.url, &s.infer_token).unwrap();
    assert!(
        matches!(
            caller.publish(&p.linear_a, None, ""),
            Err(PublishError::Forbidden { .. })
        ),
        "infer scope can't publish"
    );
    let wrong = Endpoint::new(&s.url, "wick_nope_0000").unwrap();
    assert!(matches!(
        wrong.publish(&p.linear_a, None, ""),
        Err(PublishError::Unauthorized { .. })
    ));
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.linear_a, None, "")
        .unwrap();

    let (status, err) = post(&url, None, &body);
    assert_eq!(status, 401, "{err}");
    assert!(err["error"].as_str().unwrap().contains("bearer token"));
    assert_eq!(post(&url, Some("wick_abc_def"), &body).0, 401);
    // The caller token is limited to weather and digits; a publisher-only check on another model:
    let (status, _) = post(
        &format!("{}/v2/models/other/infer", s.url),
        Some(&s.infer_token),
        &body,
    );
    assert_eq!(status, 403);

    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .set_public("weather", true)
        .unwrap();
    let (status, answer) = post(&url, None, &body);
    assert_eq!(status, 200, "public model, no token: {answer}");

    let (status, usage) = get(&format!("{}/v2/wick/usage", s.url), Some(&s.publish_token));
    assert_eq!(status, 200);
    let rows = usage["usage"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["token"] == "public" && r["model"] == "weather" && r["requests"] == 1),
        "{usage}"
    );
    assert_eq!(
        get(&format!("{}/v2/wick/usage", s.url), Some(&s.infer_token)).0,
        403
    );
    let tokens = std::fs::read_to_string(s.dir.path().join("tokens.json")).unwrap();
    assert!(!tokens.contains(&s.infer_token) && !tokens.contains(&s.publish_token));
}

#[test]
fn bad_requests_get_the_right_status() {
    let s = start();
    let p = packages();
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.linear_a, None, "")
        .unwrap();
    let url = format!("{}/v2/models/weather/infer", s.url);
    let t = Some(s.infer_token.as_str());
    let raw = client()
        .post(&url)
        .bearer_auth(&s.infer_token)
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(raw.status().as_u16(), 400);
    let err: Value = raw.json().unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("not a valid inference request"),
        "{err}"
    );

    let mut wrong_shape = weather_body(&[(1.0, 2.0, "sun")]);
    wrong_shape["inputs"][0]["shape"] = json!([2]);
    let (status, err) = post(&url, t, &wrong_shape);
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("shape"), "{err}");

    let mut wrong_type = weather_body(&[(1.0, 2.0, "sun")]);
    wrong_type["inputs"][0]["datatype"] = json!("BYTES");
    let (status, err) = post(&url, t, &wrong_type);
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("numeric"), "{err}");

    let mut missing = weather_body(&[(1.0, 2.0, "sun")]);
    missing["inputs"].as_array_mut().unwrap().remove(1);
    let (status, err) = post(&url, t, &missing);
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().contains("`wind` is missing"),
        "{err}"
    );

    assert_eq!(
        post(
            &format!("{}/v2/models/nope/infer", s.url),
            Some(&s.publish_token),
            &missing
        )
        .0,
        404
    );
    assert_eq!(
        post(
            &format!("{}/v2/models/weather/versions/7/infer", s.url),
            t,
            &missing
        )
        .0,
        404
    );
    assert_eq!(
        get(&format!("{}/v2/models/weather/versions/x", s.url), t).0,
        404
    );

    let too_many = json!({ "inputs": [{ "name": "temp_min", "shape": [20000], "datatype": "FP64", "data": vec![1.0; 20000] }] });
    let (status, err) = post(&url, t, &too_many);
    assert_eq!(status, 413, "{err}");
    let huge = vec![b' '; 9 * 1024 * 1024];
    let resp = client()
        .post(&url)
        .bearer_auth(&s.infer_token)
        .body(huge)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let err: Value = resp.json().unwrap();
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("max_infer_body_bytes"),
        "the 413 names the limit: {err}"
    );
}

#[test]
fn image_model_takes_uint8_and_fp32_batches() {
    let s = start();
    let p = packages();
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.cnn, None, "")
        .unwrap();
    let pixels: Vec<u8> = (0..2 * 64).map(|i| (i * 37 % 256) as u8).collect();
    let body = json!({ "inputs": [{ "name": "image", "shape": [2, 8, 8, 1], "datatype": "UINT8", "data": pixels }] });
    let (status, a) = post(
        &format!("{}/v2/models/digits/infer", s.url),
        Some(&s.infer_token),
        &body,
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(a["outputs"][0]["shape"], json!([2]));
    assert_eq!(a["outputs"][1]["shape"], json!([2, 10]));
    let (model, _) = load_package(&p.cnn).unwrap();
    let local = model.predict_hwc_u8(&pixels, 2).unwrap();
    let Prediction::Class { label, .. } = &local[0] else {
        panic!()
    };
    assert_eq!(a["outputs"][0]["data"][0], json!(label));
    let floats: Vec<f32> = pixels.iter().map(|&v| v as f32 / 255.0).collect();
    let body = json!({ "inputs": [{ "name": "image", "shape": [2, 8, 8, 1], "datatype": "FP32", "data": floats }], "outputs": [{ "name": "probabilities" }] });
    let (status, b) = post(
        &format!("{}/v2/models/digits/infer", s.url),
        Some(&s.infer_token),
        &body,
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(
        b["outputs"].as_array().unwrap().len(),
        1,
        "only the requested output"
    );
    let (status, err) = post(
        &format!("{}/v2/models/digits/infer", s.url),
        Some(&s.infer_token),
        &json!({ "inputs": [{ "name": "image", "shape": [1, 9, 9, 1], "datatype": "UINT8", "data": vec![0; 81] }] }),
    );
    assert_eq!(status, 400);
    assert!(
        err["error"].as_str().unwrap().contains("[N, 8, 8, 1]"),
        "{err}"
    );

    let metrics = client()
        .get(format!("{}/metrics", s.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics
            .contains("wick_infer_requests_total{model=\"digits\",version=\"1\",status=\"200\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wick_infer_latency_seconds_bucket"),
        "{metrics}"
    );
}

#[test]
fn concurrent_publishes_get_distinct_versions() {
    let s = start();
    let p = packages();
    let handles: Vec<_> = [&p.linear_a, &p.linear_b]
        .into_iter()
        .map(|pkg| {
            let (url, token, pkg) = (s.url.clone(), s.publish_token.clone(), pkg.clone());
            std::thread::spawn(move || {
                Endpoint::new(&url, &token)
                    .unwrap()
                    .publish_with(&pkg, Some("race"), "", &replacing_inputs())
                    .unwrap()
                    .version
            })
        })
        .collect();
    let mut versions: Vec<u64> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    versions.sort();
    assert_eq!(versions, vec![1, 2]);
}

#[test]
fn a_second_replica_sees_new_versions_and_rollbacks() {
    let a = start();
    let p = packages();
    let config_b = ServeConfig {
        data_dir: a.dir.path().join("data-b"),
        ..config_in(a.dir.path(), &a.dir.path().join("store"))
    };
    let b = start_with(
        config_b,
        a.dir.clone(),
        (a.publish_token.clone(), a.infer_token.clone()),
    );
    let endpoint = Endpoint::new(&a.url, &a.publish_token).unwrap();
    endpoint.publish(&p.linear_a, None, "").unwrap();
    endpoint
        .publish_with(&p.linear_b, None, "", &replacing_inputs())
        .unwrap();
    let version_on_b = || {
        get(
            &format!("{}/v2/models/weather", b.url),
            Some(&a.infer_token),
        )
        .1["parameters"]["version"]
            .clone()
    };
    let wait_for = |want: &str| {
        for _ in 0..50 {
            if version_on_b() == json!(want) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("replica b never served version {want}");
    };
    wait_for("2");
    endpoint.set_default("weather", 1).unwrap();
    wait_for("1");
}

#[test]
fn sigkill_during_upload_leaves_the_previous_version_serving() {
    let p = packages();
    let PublishedServer {
        dir,
        token,
        port,
        url,
        mut server,
    } = published_wick_serve(&p.linear_a);

    // Start uploading version 2 but stop halfway, then kill the server.
    let archive = wick_core::package::pack_package(&p.linear_b).unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "POST /v2/wick/models/weather/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n", archive.len()).unwrap();
    stream.write_all(&archive[..archive.len() / 2]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    server.kill().unwrap();
    server.wait().unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);

    let mut server = spawn_wick_serve(dir.path(), Some(&dir.path().join("tokens.json")), port, &[]);
    let (status, meta) = get(&format!("{url}/v2/models/weather"), Some(&token));
    assert_eq!(status, 200, "{meta}");
    assert_eq!(
        meta["versions"],
        json!(["1"]),
        "no partial version is visible"
    );
    let (status, _) = post(
        &format!("{url}/v2/models/weather/infer"),
        Some(&token),
        &weather_body(&[(3.0, 2.0, "rain")]),
    );
    assert_eq!(status, 200);
    server.kill().unwrap();
    server.wait().unwrap();
}

/// SIGTERM stops accepting, lets a request already in flight finish, and exits cleanly.
#[cfg(unix)]
#[test]
fn sigterm_finishes_the_request_in_flight_then_exits() {
    let p = packages();
    let PublishedServer {
        dir: _dir,
        token,
        port,
        url: _,
        mut server,
    } = published_wick_serve(&p.linear_a);

    // Half a request, then SIGTERM, then the rest.
    let body = weather_body(&[(3.0, 2.0, "rain")]).to_string();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "POST /v2/models/weather/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n", body.len()).unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(std::time::Duration::from_millis(200));
    stream
        .write_all(&body.as_bytes()[body.len() / 2..])
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the request in flight is answered: {answer}"
    );
    assert!(answer.contains("\"temp_max\""), "{answer}");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "wick-serve still running 10 s after SIGTERM"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after exit"
    );
}

/// Workers spin after requests, but only for `idle_spin_us`: an idle server sleeps. (Its own process,
/// so that its CPU time is its own.)
#[cfg(target_os = "linux")]
#[test]
fn an_idle_server_sleeps_after_its_spin_window() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = spawn_wick_serve(
        dir.path(),
        None,
        port,
        &[
            ("WICK_SERVE_WORKER_THREADS", "2"),
            ("WICK_SERVE_IDLE_SPIN_US", "2000"),
        ],
    );
    let cpu_ms = || {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.id())).unwrap();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        // utime and stime, in clock ticks of 10 ms.
        (fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()) * 10
    };
    let url = format!("http://127.0.0.1:{port}/v2/health/live");
    assert!((0..100).all(|_| client()
        .get(&url)
        .send()
        .is_ok_and(|r| r.status().is_success())));
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before = cpu_ms();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let spent_ms = cpu_ms() - before;
    server.kill().unwrap();
    server.wait().unwrap();
    // A worker that never stopped spinning would spend ~1000 ms of CPU in this second.
    assert!(
        spent_ms < 200,
        "the idle server used {spent_ms} ms of CPU in 1 s"
    );
}

/// A real `wick-serve` process with `package` published as its first version, and a token that can
/// publish and infer.
struct PublishedServer {
    /// Store, data and tokens; bind it for as long as the server runs.
    dir: tempfile::TempDir,
    token: String,
    port: u16,
    url: String,
    server: std::process::Child,
}

fn published_wick_serve(package: &Path) -> PublishedServer {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.json");
    let (token, _) = create_token(&tokens, "p", vec![Scope::Publish, Scope::Infer], None).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let server = spawn_wick_serve(dir.path(), Some(&tokens), port, &[]);
    Endpoint::new(&url, &token)
        .unwrap()
        .publish(package, None, "")
        .unwrap();
    PublishedServer {
        dir,
        token,
        port,
        url,
        server,
    }
}

/// A real `wick-serve` process on `port` with its store and data under `dir`, once it answers
/// `/v2/health/ready`.
fn spawn_wick_serve(
    dir: &Path,
    tokens: Option<&Path>,
    port: u16,
    env: &[(&str, &str)],
) -> std::process::Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wick-serve"));
    command
        .env("WICK_SERVE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WICK_SERVE_STORE", dir.join("store"))
        .env("WICK_SERVE_DATA_DIR", dir.join("data"))
        .envs(env.iter().copied())
        .stderr(std::process::Stdio::null());
    if let Some(tokens) = tokens {
        command.env("WICK_SERVE_TOKENS_FILE", tokens);
    }
    let mut child = command.spawn().unwrap();
    let ready = format!("http://127.0.0.1:{port}/v2/health/ready");
    for _ in 0..100 {
        if client()
            .get(&ready)
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return child;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("wick-serve did not start on port {port}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The stock `tritonclient[http]` Python client works unchanged. `scripts/test.sh` installs it and
/// sets WICK_PYTHON; without it this test fails and says how to run it.
#[test]
fn tritonclient_http_works_unchanged() {
    let python = std::env::var("WICK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import tritonclient.http"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{python} can't import tritonclient.http: run scripts/test.sh, or `pip install 'tritonclient[http]'` and set WICK_PYTHON"
    );
    let s = start();
    let p = packages();
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.linear_a, None, "")
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/triton_client.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(s.url.trim_start_matches("http://"))
        .arg(&s.infer_token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tritonclient failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["ready"], true);
    assert_eq!(answer["inputs"], json!(["temp_min", "wind", "weather"]));
    let (model, _) = load_package(&p.linear_a).unwrap();
    let rows: Vec<serde_json::Map<String, Value>> = [(10.0, 3.0, "rain"), (15.5, 1.2, "sun")]
        .iter()
        .map(|r| {
            serde_json::from_value(json!({ "temp_min": r.0, "wind": r.1, "weather": r.2 })).unwrap()
        })
        .collect();
    let local: Vec<f64> = model
        .predict_rows(&rows)
        .unwrap()
        .iter()
        .map(|p| match p {
            Prediction::Value { value } => *value,
            _ => panic!(),
        })
        .collect();
    assert_eq!(answer["prediction"], json!(local));

    // A tree model through the same routes and the same client.
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.trees, None, "")
        .unwrap();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(s.url.trim_start_matches("http://"))
        .arg(&s.publish_token)
        .arg("weather-trees")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tritonclient failed on the tree model: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (trees, _) = load_package(&p.trees).unwrap();
    let local: Vec<f64> = trees
        .predict_rows(&rows)
        .unwrap()
        .iter()
        .map(|p| p.as_f64())
        .collect();
    assert_eq!(answer["prediction"], json!(local));
}

#[test]
fn a_tree_model_is_served_and_a_missing_column_is_named() {
    let s = start();
    let p = packages();
    let published = Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.trees, None, "trees")
        .unwrap();
    assert_eq!(published.name, "weather-trees");
    let (status, meta) = get(
        &format!("{}/v2/models/weather-trees", s.url),
        Some(&s.publish_token),
    );
    assert_eq!(status, 200, "{meta}");
    assert_eq!(
        meta["inputs"][2],
        json!({ "name": "weather", "datatype": "BYTES", "shape": [-1] })
    );
    let rows = [(10.0, 3.0, "rain"), (15.5, 1.2, "sun"), (0.5, 6.0, "snow")];
    let (status, answer) = post(
        &format!("{}/v2/models/weather-trees/infer", s.url),
        Some(&s.publish_token),
        &weather_body(&rows),
    );
    assert_eq!(status, 200, "{answer}");
    let served: Vec<f64> = serde_json::from_value(answer["outputs"][0]["data"].clone()).unwrap();
    let (model, _) = load_package(&p.trees).unwrap();
    let local_rows: Vec<serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| {
            serde_json::from_value(json!({ "temp_min": r.0, "wind": r.1, "weather": r.2 })).unwrap()
        })
        .collect();
    let local: Vec<f64> = model
        .predict_rows(&local_rows)
        .unwrap()
        .iter()
        .map(|p| p.as_f64())
        .collect();
    assert_eq!(served, local);

    // The example request the app's snippets show works as it is, with a category the model knows.
    let (_, manifest) = load_package(&p.trees).unwrap();
    let example = wick_core::publish::example_request(&manifest);
    assert_eq!(
        example["inputs"][2]["data"],
        json!(["drizzle"]),
        "{example}"
    );
    let (status, answer) = post(
        &format!("{}/v2/models/weather-trees/infer", s.url),
        Some(&s.publish_token),
        &example,
    );
    assert_eq!(status, 200, "{answer}");

    let mut body = weather_body(&rows);
    body["inputs"].as_array_mut().unwrap().remove(1);
    let (status, err) = post(
        &format!("{}/v2/models/weather-trees/infer", s.url),
        Some(&s.publish_token),
        &body,
    );
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("`wind` is missing"),
        "{err}"
    );
}

#[test]
fn tls_serves_https_and_an_untrusted_certificate_is_a_clear_client_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let config = ServeConfig {
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..config_in(dir.path(), &dir.path().join("store"))
    };
    let server = RunningServer::start(config).unwrap();
    assert!(server.tls);
    let port = server.addr.port();
    let url = format!("https://localhost:{port}");
    let trusting = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .build()
        .unwrap();
    let mut ok = false;
    for _ in 0..50 {
        if trusting
            .get(format!("{url}/v2/health/live"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ok, "HTTPS health check");
    let err = Endpoint::new(&url, "wick_x_y")
        .unwrap()
        .models()
        .unwrap_err();
    assert!(matches!(err, PublishError::Tls { .. }), "{err}");
    let err = Endpoint::new(&format!("http://localhost:{port}"), "t")
        .unwrap()
        .models()
        .unwrap_err();
    assert!(
        matches!(
            err,
            PublishError::Unreachable { .. } | PublishError::NotWick { .. }
        ),
        "{err}"
    );
    let err = Endpoint::new(&format!("http://127.0.0.1:{}", free_port()), "t")
        .unwrap()
        .models()
        .unwrap_err();
    assert!(
        matches!(err, PublishError::Unreachable { .. })
            && err.to_string().contains("can't be reached"),
        "{err}"
    );
}

/// Peak and current resident memory of a process, in KiB.
#[cfg(target_os = "linux")]
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// 32 connections send 50 MiB inference bodies for 20 s to a real `wick-serve` with its default
/// limits. Bodies beyond the in-flight budget are answered 503 (read and dropped, never held);
/// the others are parsed only up to the tensor-element limit and answered 413. The server's peak
/// memory stays under a stated bound, it does not crash, and answers a normal request afterwards.
/// Before the budget and the typed parse, 16 such bodies of 48 MB took it to 3.6 GB.
#[cfg(target_os = "linux")]
#[test]
fn large_inference_bodies_in_flight_are_bounded() {
    const CONNECTIONS: usize = 32;
    const BODY_BYTES: usize = 50 * 1024 * 1024;
    /// Budget 256 MiB of bodies (5 of these at once), each parsed to at most 16M f64s (128 MiB,
    /// 256 MiB while its vector grows), plus the process itself.
    const PEAK_BOUND_KIB: u64 = 2 * 1024 * 1024;
    let p = packages();
    let PublishedServer {
        dir: _dir,
        token,
        port: _,
        url,
        mut server,
    } = published_wick_serve(&p.linear_a);
    let (base_kib, _) = rss_kib(server.id());

    // `1,` is the shortest number: 26M of them, more than the 16M-element default.
    let head = format!(
        r#"{{"inputs":[{{"name":"temp_min","shape":[{n}],"datatype":"FP64","data":["#,
        n = BODY_BYTES / 2
    );
    let mut body = head.into_bytes();
    while body.len() < BODY_BYTES - 8 {
        body.extend_from_slice(b"1,");
    }
    body.extend_from_slice(b"1]}]}");
    let body: &'static [u8] = Box::leak(body.into_boxed_slice());

    let infer = format!("{url}/v2/models/weather/infer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let workers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (infer, token) = (infer.clone(), token.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(std::time::Duration::from_secs(60))
                    .build()
                    .unwrap();
                let mut statuses = std::collections::BTreeMap::<String, usize>::new();
                while std::time::Instant::now() < deadline {
                    let key = match client.post(&infer).bearer_auth(&token).body(body).send() {
                        Ok(r) => r.status().as_u16().to_string(),
                        Err(e) => format!("error: {e}"),
                    };
                    *statuses.entry(key).or_default() += 1;
                }
                statuses
            })
        })
        .collect();
    let mut peak_seen = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        peak_seen = peak_seen.max(rss_kib(server.id()).1);
        assert!(
            server.try_wait().unwrap().is_none(),
            "wick-serve exited under load"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for w in workers {
        for (k, n) in w.join().unwrap() {
            *statuses.entry(k).or_default() += n;
        }
    }
    let (peak_kib, _) = rss_kib(server.id());
    eprintln!("statuses {statuses:?}; wick-serve RSS {base_kib} KiB at rest, peak {peak_kib} KiB (sampled {peak_seen} KiB)");
    assert!(
        statuses.get("413").copied().unwrap_or(0) > 0,
        "bodies within the budget are parsed up to the element limit: {statuses:?}"
    );
    assert!(
        statuses.get("503").copied().unwrap_or(0) > 0,
        "bodies beyond the budget are refused: {statuses:?}"
    );
    assert!(
        statuses.keys().all(|k| k == "413" || k == "503"),
        "every request gets an answer: {statuses:?}"
    );
    assert!(
        peak_kib < PEAK_BOUND_KIB,
        "peak RSS {peak_kib} KiB, bound {PEAK_BOUND_KIB} KiB"
    );

    let (status, answer) = post(&infer, Some(&token), &weather_body(&[(3.0, 2.0, "rain")]));
    assert_eq!(status, 200, "{answer}");
    let _ = server.kill();
    let _ = server.wait();
}

/// Every inference answer carries an id, in its body and in `x-request-id`: the request's own, or
/// one the server makes; errors carry one in the header.
#[test]
fn every_inference_answer_carries_a_request_id() {
    let s = start();
    let p = packages();
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.linear_a, None, "first")
        .unwrap();
    let url = format!("{}/v2/models/weather/infer", s.url);
    let rows = [(10.0, 3.0, "rain")];
    let send = |body: &Value| {
        let resp = client()
            .post(&url)
            .bearer_auth(&s.infer_token)
            .json(body)
            .send()
            .unwrap();
        let header = resp
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string());
        (
            resp.status().as_u16(),
            header,
            resp.json::<Value>().unwrap(),
        )
    };
    let (status, header, answer) = send(&weather_body(&rows));
    assert_eq!(
        (status, header.as_deref(), answer["id"].as_str()),
        (200, Some("t1"), Some("t1")),
        "the request's own id"
    );
    let mut anonymous = weather_body(&rows);
    anonymous.as_object_mut().unwrap().remove("id");
    let (_, first_header, first) = send(&anonymous);
    let (_, _, second) = send(&anonymous);
    let made = first["id"].as_str().unwrap();
    assert!(made.starts_with("wick-") && made.len() == 21, "{made}");
    assert_eq!(first_header.as_deref(), Some(made));
    assert_ne!(first["id"], second["id"], "each answer its own id");
    let resp = client()
        .post(format!("{}/v2/models/nope/infer", s.url))
        .bearer_auth(&s.infer_token)
        .json(&anonymous)
        .send()
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert!(resp
        .headers()
        .get("x-request-id")
        .is_some_and(|v| v.to_str().unwrap().starts_with("wick-")));
}

/// Publish, rollback, visibility and deletion are appended to the audit log in the store, with the
/// id of the token that made them (never the token), and read back in order.
#[test]
fn registry_changes_are_in_the_audit_log() {
    let s = start();
    let p = packages();
    let endpoint = Endpoint::new(&s.url, &s.publish_token).unwrap();
    endpoint.publish(&p.linear_a, None, "").unwrap();
    endpoint
        .publish_with(&p.linear_b, None, "", &replacing_inputs())
        .unwrap();
    endpoint.publish(&p.linear_a, None, "").unwrap(); // identical bytes: no new version, no entry
    endpoint.set_default("weather", 1).unwrap();
    let public = client()
        .post(format!("{}/v2/wick/models/weather/public", s.url))
        .bearer_auth(&s.publish_token)
        .json(&json!({ "public": true }))
        .send()
        .unwrap();
    assert_eq!(public.status().as_u16(), 200);
    let del = client()
        .delete(format!("{}/v2/wick/models/weather/versions/2", s.url))
        .bearer_auth(&s.publish_token)
        .send()
        .unwrap();
    assert_eq!(del.status().as_u16(), 200);
    let failed = client()
        .delete(format!("{}/v2/wick/models/weather/versions/1", s.url))
        .bearer_auth(&s.publish_token)
        .send()
        .unwrap();
    assert_eq!(
        failed.status().as_u16(),
        409,
        "a refused change is not in the log"
    );

    let (status, log) = get(&format!("{}/v2/wick/audit", s.url), Some(&s.publish_token));
    assert_eq!(status, 200, "{log}");
    let entries = log["entries"].as_array().unwrap();
    let actions: Vec<(&str, Value)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["details"]["version"].clone(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("publish", json!(1)),
            ("publish", json!(2)),
            ("set_default", json!(1)),
            ("set_public", Value::Null),
            ("delete_version", json!(2))
        ],
        "{log}"
    );
    assert!(entries
        .iter()
        .all(|e| e["model"] == "weather" && e["at"].is_string()));
    let token_id = entries[0]["token_id"].as_str().unwrap();
    assert!(!token_id.is_empty() && token_id != "none");
    assert!(
        !log.to_string().contains(&s.publish_token),
        "never the token itself"
    );
    assert_eq!(
        get(&format!("{}/v2/wick/audit", s.url), Some(&s.infer_token)).0,
        403,
        "publish scope only"
    );
}

/// A version whose inputs the serving version's callers don't send is refused (409, saying what
/// differs and what to do), unless it says it replaces them; a canary published in one step keeps
/// the serving version the default with the larger share, and a second canary waits for the first.
#[test]
fn publishing_checks_the_callers_inputs_and_releases_a_canary_in_one_step() {
    let s = start();
    let p = packages();
    let endpoint = Endpoint::new(&s.url, &s.publish_token).unwrap();
    endpoint.publish(&p.linear_a, None, "").unwrap();
    // An image model under the table model's name: every caller's request would fail.
    let refused = endpoint
        .publish(&p.cnn, Some("weather"), "")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("409")
            && refused.contains("takes images")
            && refused.contains("another name"),
        "{refused}"
    );
    let refused = endpoint
        .publish(&p.linear_b, None, "")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("month") && refused.contains("version 1"),
        "{refused}"
    );
    assert_eq!(
        endpoint.models().unwrap()[0].versions.len(),
        1,
        "nothing was written"
    );
    // Fewer columns than callers send is fine; trees on the same columns too, as a canary.
    let canary = wick_core::publish::PublishOptions {
        canary_percent: Some(10),
        replace_inputs: false,
    };
    let published = endpoint
        .publish_with(&p.trees, Some("weather"), "trees", &canary)
        .unwrap();
    assert_eq!(published.version, 2);
    let listing = endpoint.models().unwrap().remove(0);
    assert_eq!(
        (listing.default_version, listing.traffic),
        (Some(1), Some([(1, 90), (2, 10)].into_iter().collect()))
    );
    let second = endpoint
        .publish_with(
            &p.linear_b,
            None,
            "",
            &wick_core::publish::PublishOptions {
                canary_percent: Some(10),
                replace_inputs: true,
            },
        )
        .unwrap_err()
        .to_string();
    assert!(
        second.contains("already runs a canary") && second.contains("v1 90%"),
        "{second}"
    );
    let first = endpoint
        .publish_with(&p.linear_a, Some("fresh"), "", &canary)
        .unwrap_err()
        .to_string();
    assert!(first.contains("no serving version"), "{first}");
    // Promote: the canary serves everything, and its callers' inputs are the ones checked now.
    endpoint.set_default("weather", 2).unwrap();
    assert_eq!(
        endpoint
            .publish_with(&p.linear_b, None, "", &replacing_inputs())
            .unwrap()
            .version,
        3
    );
}

/// A canary: 90/10 between two versions lands within ±2 points over 10,000 unversioned calls,
/// versioned calls are unaffected, bad splits are 400s with a JSON error, and making a version the
/// default (promote) ends the split.
#[test]
fn a_traffic_split_sends_each_version_its_share() {
    let s = start();
    let p = packages();
    let endpoint = Endpoint::new(&s.url, &s.publish_token).unwrap();
    endpoint.publish(&p.linear_a, None, "").unwrap();
    endpoint
        .publish_with(&p.linear_b, None, "", &replacing_inputs())
        .unwrap();
    endpoint
        .set_traffic("weather", &[(1, 90), (2, 10)].into_iter().collect())
        .unwrap();
    assert_eq!(
        endpoint.models().unwrap()[0].traffic,
        Some([(1, 90), (2, 10)].into_iter().collect())
    );
    // One request both versions answer: every column either needs.
    let body = json!({ "inputs": [
        { "name": "temp_min", "shape": [1], "datatype": "FP64", "data": [10.0] },
        { "name": "wind", "shape": [1], "datatype": "FP64", "data": [3.0] },
        { "name": "weather", "shape": [1], "datatype": "BYTES", "data": ["rain"] },
        { "name": "month", "shape": [1], "datatype": "FP64", "data": [7.0] }
    ] });
    let url = format!("{}/v2/models/weather/infer", s.url);
    let mut second = 0;
    for _ in 0..10_000 {
        let (status, answer) = post(&url, Some(&s.infer_token), &body);
        assert_eq!(status, 200, "{answer}");
        second += usize::from(answer["model_version"] == "2");
    }
    assert!(
        (800..=1200).contains(&second),
        "version 2 answered {second} of 10,000 calls (10% ± 2 points)"
    );
    let (_, pinned) = post(
        &format!("{}/v2/models/weather/versions/1/infer", s.url),
        Some(&s.infer_token),
        &weather_body(&[(1.0, 2.0, "sun")]),
    );
    assert_eq!(
        pinned["model_version"], "1",
        "a versioned call is not split"
    );

    let put = |body: Value| {
        let resp = client()
            .put(format!("{}/v2/wick/models/weather/traffic", s.url))
            .bearer_auth(&s.publish_token)
            .json(&body)
            .send()
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<Value>().unwrap_or(Value::Null),
        )
    };
    for (body, says) in [
        (json!({ "versions": { "1": 90, "2": 20 } }), "add up to 110"),
        (json!({ "versions": { "1": 50, "7": 50 } }), "no version 7"),
        (
            json!({ "versions": { "1": 110, "2": -10 } }),
            "whole percentage",
        ),
        (json!({ "split": { "1": 100 } }), "no `versions` object"),
    ] {
        let (status, error) = put(body);
        assert_eq!(status, 400, "{error}");
        assert!(
            error["error"].as_str().is_some_and(|e| e.contains(says)),
            "{says}: {error}"
        );
    }
    let del = client()
        .delete(format!("{}/v2/wick/models/weather/versions/1", s.url))
        .bearer_auth(&s.publish_token)
        .send()
        .unwrap();
    assert_eq!(
        del.status().as_u16(),
        409,
        "a version in the split can't be deleted"
    );
    // Promote: version 2 becomes the default and takes every call.
    endpoint.set_default("weather", 2).unwrap();
    assert_eq!(endpoint.models().unwrap()[0].traffic, None);
    for _ in 0..50 {
        assert_eq!(
            post(&url, Some(&s.infer_token), &body).1["model_version"],
            "2"
        );
    }
    let (_, log) = get(&format!("{}/v2/wick/audit", s.url), Some(&s.publish_token));
    assert!(
        log["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "traffic"
                && e["details"]["versions"] == json!({ "1": 90, "2": 10 })),
        "{log}"
    );
}

/// A transfer model on a folder of photos, published and called by the stock tritonclient with a
/// real 640×427 JPEG that the client prepares itself (Pillow: EXIF, centre crop, bilinear resize)
/// as the README tells clients to. The served answer matches Wick's own prediction for the file.
#[test]
fn tritonclient_sends_a_real_photo_to_a_transfer_model() {
    use wick_core::model::{Backbone, BackboneArch};
    let python = std::env::var("WICK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = std::process::Command::new(&python)
        .args(["-c", "import tritonclient.http, PIL"])
        .output();
    assert!(
        probe.as_ref().is_ok_and(|o| o.status.success()),
        "{python} can't import tritonclient.http and PIL: run scripts/test.sh, or `pip install 'tritonclient[http]' pillow` and set WICK_PYTHON"
    );
    // Two classes of photos: crops of each sample photo at seeded places and sizes (50–90 % a side).
    let dir = tempfile::tempdir().unwrap();
    let photos = sample("photos");
    let data = dir.path().join("photos");
    for class in ["flower", "china"] {
        let photo = image::open(photos.join(format!("{class}.jpg"))).unwrap();
        std::fs::create_dir_all(data.join(class)).unwrap();
        for i in 0..10u32 {
            let side = 0.5 + 0.04 * i as f32;
            let (w, h) = (
                (photo.width() as f32 * side) as u32,
                (photo.height() as f32 * side) as u32,
            );
            let (x, y) = (
                (photo.width() - w) * (i % 3) / 2,
                (photo.height() - h) * (i % 2),
            );
            photo
                .crop_imm(x, y, w, h)
                .to_rgb8()
                .save(data.join(class).join(format!("{i}.jpg")))
                .unwrap();
        }
    }
    let weights = dir.path().join("resnet18.safetensors");
    wick_core::model::transfer::write_random_weights(BackboneArch::Resnet18, &weights).unwrap();
    let input = wick_core::data::ImageShape {
        channels: 3,
        height: 64,
        width: 64,
    };
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::Resnet18,
            weights,
            input,
            fine_tune: false,
        },
    };
    let index = index_image_folder(&data).unwrap();
    let config = TrainConfig {
        epochs: 30,
        lr: 3e-3,
        early_stopping_patience: None,
        ..TrainConfig::default()
    };
    let out = train_images(&index, &spec, &config, &mut |_| {}, &CancelToken::new()).unwrap();
    let package = dir.path().join("photos.wick");
    save_package(&out.model, &out.report, "photos", &package).unwrap();

    // The package carries its 45 MB backbone: the server's own limits (256 MB bodies), not the
    // small ones the other tests use.
    let server_dir = Arc::new(tempfile::tempdir().unwrap());
    let tokens_file = server_dir.path().join("tokens.json");
    let (publish, _) = create_token(
        &tokens_file,
        "publisher",
        vec![Scope::Publish, Scope::Infer],
        None,
    )
    .unwrap();
    let config = ServeConfig {
        max_body_bytes: ServeConfig::default().max_body_bytes,
        max_tensor_elements: ServeConfig::default().max_tensor_elements,
        ..config_in(server_dir.path(), &server_dir.path().join("store"))
    };
    let s = start_with(config, server_dir, (publish.clone(), publish));
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&package, None, "")
        .unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/triton_photo.py");
    let flower = photos.join("flower.jpg");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args([
            s.url.trim_start_matches("http://"),
            &s.publish_token,
            "photos",
            flower.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tritonclient failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["input_shape"], json!([-1, 64, 64, 3]));
    assert_eq!(answer["model_version"], "1");
    let (model, _) = load_package(&package).unwrap();
    let local = model
        .predict_image_paths(std::slice::from_ref(&flower))
        .unwrap();
    let Prediction::Class {
        label,
        probabilities,
        ..
    } = &local[0]
    else {
        panic!("{local:?}")
    };
    assert_eq!(
        answer["label"],
        json!([label]),
        "the served class is Wick's own for the file: {answer}"
    );
    let served: Vec<f64> = serde_json::from_value(answer["probabilities"][0].clone()).unwrap();
    // Pillow's bilinear resize and Wick's (fast_image_resize) differ by about a grey level.
    for (a, b) in served.iter().zip(probabilities) {
        assert!(
            (a - f64::from(*b)).abs() < 0.02,
            "served {served:?}, Wick {probabilities:?}"
        );
    }
}

/// The binary tensor data extension: inputs as raw little-endian bytes after the JSON header
/// (FP64 and length-prefixed BYTES), outputs asked for as binary; the same answer as in JSON.
#[test]
fn binary_tensor_data_gives_the_json_answer() {
    let s = start();
    let p = packages();
    Endpoint::new(&s.url, &s.publish_token)
        .unwrap()
        .publish(&p.linear_a, None, "")
        .unwrap();
    let rows = [(10.0, 3.0, "rain"), (15.5, 1.2, "sun")];
    let url = format!("{}/v2/models/weather/infer", s.url);
    let (status, json_answer) = post(&url, Some(&s.infer_token), &weather_body(&rows));
    assert_eq!(status, 200, "{json_answer}");

    let f64s = |v: [f64; 2]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let texts: Vec<u8> = ["rain", "sun"]
        .iter()
        .flat_map(|t| {
            [
                (t.len() as u32).to_le_bytes().to_vec(),
                t.as_bytes().to_vec(),
            ]
            .concat()
        })
        .collect();
    let blobs = [f64s([10.0, 15.5]), f64s([3.0, 1.2]), texts.clone()];
    let header = json!({
        "inputs": [
            { "name": "temp_min", "shape": [2], "datatype": "FP64", "parameters": { "binary_data_size": 16 } },
            { "name": "wind", "shape": [2], "datatype": "FP64", "parameters": { "binary_data_size": 16 } },
            { "name": "weather", "shape": [2], "datatype": "BYTES", "parameters": { "binary_data_size": texts.len() } },
        ],
        "parameters": { "binary_data_output": true },
    })
    .to_string();
    let send = |header: &str, declared: usize, blobs: &[Vec<u8>]| {
        let body = [header.as_bytes().to_vec(), blobs.concat()].concat();
        client()
            .post(&url)
            .bearer_auth(&s.infer_token)
            .header("Inference-Header-Content-Length", declared)
            .body(body)
            .send()
            .unwrap()
    };
    let resp = send(&header, header.len(), &blobs);
    assert_eq!(resp.status().as_u16(), 200);
    let json_len: usize = resp.headers()["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = resp.bytes().unwrap();
    let answer: Value = serde_json::from_slice(&body[..json_len]).unwrap();
    assert_eq!(
        answer["outputs"][0]["parameters"]["binary_data_size"], 16,
        "{answer}"
    );
    assert!(answer["outputs"][0].get("data").is_none());
    let served: Vec<f64> = body[json_len..]
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(json!(served), json_answer["outputs"][0]["data"]);

    // A header length past the body, and bytes no input accounts for: 400s that say so.
    let resp = send(&header, header.len() + 1000, &blobs);
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp
        .text()
        .unwrap()
        .contains("Inference-Header-Content-Length"));
    let extra = [blobs.to_vec(), vec![vec![0u8; 3]]].concat();
    let resp = send(&header, header.len(), &extra);
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp
        .text()
        .unwrap()
        .contains("no input's binary_data_size accounts for"));
}

fn put_json(url: &str, token: &str, body: &Value) -> (u16, Value) {
    let resp = client()
        .put(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// Request logging at sample 1.0: every answered request lands in the store as NDJSON (no token in
/// it), feedback joins its id, and monitor reports requests, latency, predictions and the live
/// error; bad settings, unknown ids and a window of 0 are 400s with a JSON error.
#[test]
fn logged_requests_feedback_and_monitor() {
    let s = start();
    let p = packages();
    let publisher = Endpoint::new(&s.url, &s.publish_token).unwrap();
    publisher.publish(&p.linear_a, None, "").unwrap();
    publisher.publish(&p.cnn, None, "").unwrap();
    let models = format!("{}/v2/wick/models", s.url);
    for bad in [
        json!({ "sample": 1.5 }),
        json!({ "sample": "all" }),
        json!({}),
    ] {
        let (status, err) = put_json(&format!("{models}/weather/logging"), &s.publish_token, &bad);
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(err["error"].as_str().unwrap().contains("sample"), "{err}");
    }
    let (status, _) = put_json(
        &format!("{models}/weather/logging"),
        &s.infer_token,
        &json!({ "sample": 1.0 }),
    );
    assert_eq!(status, 403, "logging needs the publish scope");
    publisher.set_logging("weather", 1.0).unwrap();
    publisher.set_logging("digits", 1.0).unwrap();
    assert_eq!(
        publisher
            .models()
            .unwrap()
            .iter()
            .find(|m| m.name == "weather")
            .unwrap()
            .log_sample,
        Some(1.0)
    );

    // 20 calls of 2 rows each; the server makes each answer's id.
    let mut body = weather_body(&[(10.0, 3.0, "rain"), (15.5, 1.2, "sun")]);
    body.as_object_mut().unwrap().remove("id");
    let mut answers = Vec::new();
    for _ in 0..20 {
        let (status, a) = post(
            &format!("{}/v2/models/weather/infer", s.url),
            Some(&s.infer_token),
            &body,
        );
        assert_eq!(status, 200, "{a}");
        answers.push(a);
    }
    let infer = Endpoint::new(&s.url, &s.infer_token).unwrap();
    let truth = 20.0;
    for a in &answers {
        infer
            .feedback("weather", a["id"].as_str().unwrap(), &json!(truth))
            .unwrap();
    }
    let feedback = format!("{models}/weather/feedback");
    for (bad, says) in [
        (
            json!({ "id": "wick-0000000000000000", "value": 1.0 }),
            "no logged request",
        ),
        (
            json!({ "id": answers[0]["id"], "label": "sun" }),
            "predicts numbers",
        ),
        (
            json!({ "id": answers[0]["id"] }),
            "neither `label` nor `value`",
        ),
        (json!({ "value": 3.0 }), "`id` is missing"),
    ] {
        let (status, err) = post(&feedback, Some(&s.infer_token), &bad);
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(
            err["error"].as_str().unwrap().contains(says),
            "{bad}: {err}"
        );
    }
    // A classifier: feedback that agrees with the prediction.
    let image = json!({ "inputs": [{ "name": "image", "shape": [1, 8, 8, 1], "datatype": "UINT8", "data": vec![7; 64] }] });
    let (_, digit) = post(
        &format!("{}/v2/models/digits/infer", s.url),
        Some(&s.infer_token),
        &image,
    );
    infer
        .feedback(
            "digits",
            digit["id"].as_str().unwrap(),
            &digit["outputs"][0]["data"][0],
        )
        .unwrap();

    let (status, err) = get(
        &format!("{models}/weather/monitor?window_secs=0"),
        Some(&s.publish_token),
    );
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("window_secs"),
        "{err}"
    );
    let m = json!(publisher.monitor("weather", 600.0).unwrap());
    let v1 = &m["versions"]["1"];
    assert_eq!(
        (
            v1["requests"].as_u64(),
            v1["errors"].as_u64(),
            v1["feedback"].as_u64()
        ),
        (Some(20), Some(0), Some(20)),
        "{m}"
    );
    assert!(
        v1["latency_p50_ms"].as_f64().unwrap() > 0.0
            && v1["latency_p99_ms"].as_f64().unwrap() >= v1["latency_p50_ms"].as_f64().unwrap(),
        "{m}"
    );
    assert_eq!(v1["predicted_values"]["count"], 40);
    // Each call's first row is the one feedback is checked against.
    let first = answers[0]["outputs"][0]["data"][0].as_f64().unwrap();
    assert!(
        (v1["live_mae"].as_f64().unwrap() - (first - truth).abs()).abs() < 1e-9,
        "{m}"
    );
    let d = json!(publisher.monitor("digits", 600.0).unwrap());
    assert_eq!(d["versions"]["1"]["live_accuracy"], 1.0, "{d}");

    // The store holds every logged request (written within a second), and the feedback.
    let store =
        wick_serve::registry::Registry::open_store(&s.dir.path().join("store").to_string_lossy())
            .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let read = |prefix: &str| {
        runtime
            .block_on(wick_serve::request_log::read_entries::<Value>(
                store.as_ref(),
                prefix,
            ))
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while read("logs/weather").len() < 20 || read("feedback/weather").len() < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the logs did not reach the store"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let logged = read("logs/weather");
    let ids: std::collections::HashSet<&str> =
        logged.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert!(answers
        .iter()
        .all(|a| ids.contains(a["id"].as_str().unwrap())));
    assert_eq!(logged[0]["inputs"][0]["name"], "temp_min");
    assert_eq!(logged[0]["version"], 1);
    let raw = std::fs::read_dir(s.dir.path().join("store/logs/weather/v1"))
        .unwrap()
        .flat_map(|day| std::fs::read_dir(day.unwrap().path()).unwrap())
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .collect::<String>();
    assert!(
        !raw.contains(&s.infer_token) && !raw.contains(&s.publish_token),
        "never a token in the logs"
    );
    let (_, metrics) = {
        let r = client().get(format!("{}/metrics", s.url)).send().unwrap();
        (r.status(), r.text().unwrap())
    };
    assert!(
        metrics.contains("wick_logged_requests_total 21"),
        "{metrics}"
    );
    assert!(metrics.contains("wick_log_dropped_total 0"), "{metrics}");
    // The monitor's live figures, as gauges by model and version.
    assert!(
        metrics.contains("wick_live_feedback{model=\"weather\",version=\"1\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "wick_live_mae{{model=\"weather\",version=\"1\"}} {}",
            v1["live_mae"].as_f64().unwrap()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("wick_live_accuracy{model=\"digits\",version=\"1\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wick_feature_psi{model=\"weather\",version=\"1\",feature=\"temp_min\"}"),
        "{metrics}"
    );
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    // The audit log has the logging changes.
    let (_, audit) = get(&format!("{}/v2/wick/audit", s.url), Some(&s.publish_token));
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "logging" && e["details"]["sample"] == 1.0),
        "{audit}"
    );
}

/// kill -9 while requests are being logged leaves only readable NDJSON in the store: every object
/// whole (the last second's entries may be lost). SIGTERM writes what is queued before it exits.
#[test]
fn killed_while_logging_the_store_holds_only_whole_ndjson() {
    let p = packages();
    let PublishedServer {
        dir,
        token,
        port: _,
        url,
        mut server,
    } = published_wick_serve(&p.linear_a);
    Endpoint::new(&url, &token)
        .unwrap()
        .set_logging("weather", 1.0)
        .unwrap();
    let mut body = weather_body(&[(10.0, 3.0, "rain")]);
    body.as_object_mut().unwrap().remove("id");
    let infer = format!("{url}/v2/models/weather/infer");
    let started = std::time::Instant::now();
    let mut answered = 0;
    // Requests for 2.5 s, so that several objects are written, then SIGKILL with more queued.
    while started.elapsed() < std::time::Duration::from_millis(2500) {
        let (status, _) = post(&infer, Some(&token), &body);
        assert_eq!(status, 200);
        answered += 1;
    }
    server.kill().unwrap();
    let _ = server.wait();
    let logs = dir.path().join("store/logs/weather/v1");
    let mut lines = 0;
    for day in std::fs::read_dir(&logs).unwrap() {
        for object in std::fs::read_dir(day.unwrap().path()).unwrap() {
            let path = object.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(text.ends_with('\n'), "{} is cut short", path.display());
            for line in text.lines() {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
                lines += 1;
            }
        }
    }
    assert!(
        lines > 0 && lines <= answered,
        "{lines} logged of {answered}"
    );

    // SIGTERM: a fresh server on the same store writes every queued entry before it exits.
    let port = free_port();
    let mut server = spawn_wick_serve(dir.path(), Some(&dir.path().join("tokens.json")), port, &[]);
    let url = format!("http://127.0.0.1:{port}");
    let before = count_lines(&logs);
    let ids: Vec<String> = (0..50)
        .map(|_| {
            let (status, a) = post(
                &format!("{url}/v2/models/weather/infer"),
                Some(&token),
                &body,
            );
            assert_eq!(status, 200);
            a["id"].as_str().unwrap().to_string()
        })
        .collect();
    let term = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(server.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let _ = server.wait();
    assert_eq!(
        count_lines(&logs),
        before + ids.len(),
        "every answered request was logged before exit"
    );
}

fn count_lines(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|day| std::fs::read_dir(day.unwrap().path()).unwrap())
        .map(|f| {
            std::fs::read_to_string(f.unwrap().path())
                .unwrap()
                .lines()
                .count()
        })
        .sum()
}

/// Drift: live rows drawn across the training file stay under the PSI threshold on every feature;
/// the same rows with temp_min 25 °C warmer flag it, the worst first, and the predictions too.
#[test]
fn monitor_flags_a_drifting_feature_against_the_training_profile() {
    let s = start();
    let p = packages();
    let publisher = Endpoint::new(&s.url, &s.publish_token).unwrap();
    for name in ["steady", "shifted", "few"] {
        publisher.publish(&p.linear_a, Some(name), "").unwrap();
    }
    let df = read_table(&sample("seattle-weather.csv")).unwrap();
    let col = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
    let (temp_min, wind, weather) = (col("temp_min"), col("wind"), col("weather"));
    let rows: Vec<usize> = (0..df.height()).step_by(5).collect();
    let numbers = |s: &wick_core::polars::prelude::Series, shift: f64| -> Vec<f64> {
        rows.iter()
            .map(|&r| s.get(r).unwrap().try_extract::<f64>().unwrap() + shift)
            .collect()
    };
    let texts: Vec<String> = rows
        .iter()
        .map(|&r| weather.str().unwrap().get(r).unwrap().to_string())
        .collect();
    for (name, shift) in [("steady", 0.0), ("shifted", 25.0)] {
        let body = json!({ "inputs": [
            { "name": "temp_min", "shape": [rows.len()], "datatype": "FP64", "data": numbers(&temp_min, shift) },
            { "name": "wind", "shape": [rows.len()], "datatype": "FP64", "data": numbers(&wind, 0.0) },
            { "name": "weather", "shape": [rows.len()], "datatype": "BYTES", "data": texts },
        ] });
        // 16 rows of each request are kept for drift: send it in requests of 16.
        for start in (0..rows.len()).step_by(16) {
            let end = (start + 16).min(rows.len());
            let mut part = body.clone();
            for input in part["inputs"].as_array_mut().unwrap() {
                input["data"] = json!(input["data"].as_array().unwrap()[start..end]);
                input["shape"] = json!([end - start]);
            }
            let (status, a) = post(
                &format!("{}/v2/models/{name}/infer", s.url),
                Some(&s.publish_token),
                &part,
            );
            assert_eq!(status, 200, "{a}");
        }
    }
    let steady = json!(publisher.monitor("steady", 600.0).unwrap());
    let drift = steady["versions"]["1"]["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 3, "{steady}");
    for d in drift {
        assert!(
            d["psi"].as_f64().unwrap() < 0.2 && d["drifting"] == false,
            "{d}"
        );
        assert_eq!(d["rows"], rows.len());
    }
    let shifted = json!(publisher.monitor("shifted", 600.0).unwrap());
    let v1 = &shifted["versions"]["1"];
    assert_eq!(
        v1["drift"][0]["feature"], "temp_min",
        "the worst first: {shifted}"
    );
    assert_eq!(v1["drift"][0]["drifting"], true);
    assert_eq!(
        v1["drift"][1]["drifting"], false,
        "wind did not move: {shifted}"
    );
    assert_eq!(
        v1["prediction_drift"]["drifting"], true,
        "warmer nights, warmer predicted days: {shifted}"
    );
    assert_eq!(
        steady["versions"]["1"]["prediction_drift"]["drifting"], false,
        "{steady}"
    );
    // Eight identical requests (what *Send test request* used to send): the index is large, but
    // eight values are too few to call anything drifting.
    let one = json!({ "inputs": [
        { "name": "temp_min", "shape": [1], "datatype": "FP64", "data": [5.0] },
        { "name": "wind", "shape": [1], "datatype": "FP64", "data": [3.0] },
        { "name": "weather", "shape": [1], "datatype": "BYTES", "data": ["rain"] },
    ] });
    for _ in 0..8 {
        assert_eq!(
            post(
                &format!("{}/v2/models/few/infer", s.url),
                Some(&s.publish_token),
                &one
            )
            .0,
            200
        );
    }
    let few = json!(publisher.monitor("few", 600.0).unwrap());
    let drift = few["versions"]["1"]["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 3, "{few}");
    for d in drift
        .iter()
        .chain([&few["versions"]["1"]["prediction_drift"]])
    {
        assert_eq!(
            (d["rows"].as_u64(), d["drifting"].as_bool()),
            (Some(8), Some(false)),
            "{d}"
        );
    }
    assert!(
        drift[0]["psi"].as_f64().unwrap() > 1.0,
        "one value in every request is a large index: {few}"
    );
}

/// A model trained with a hashed e-mail column and a dropped name column: the request log keeps
/// the e-mail only as the model's salted hash and never the name, even when the caller sends it;
/// the answer is the one the model gives locally for the raw rows.
#[test]
fn the_request_log_never_holds_personal_data() {
    use wick_core::data::{PersonalAction, PersonalData};
    use wick_core::polars::prelude::*;
    let n = 60;
    let emails: Vec<String> = (0..n)
        .map(|i| format!("user{}@example.com", i % 4))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("Ann Example{i}")).collect();
    let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let y: Vec<f64> = (0..n)
        .map(|i| (i % 4) as f64 * 2.0 + (i % 7) as f64)
        .collect();
    let df = df!("email" => &emails, "name" => &names, "x" => &x, "y" => &y).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut personal = PersonalData::default();
    personal.set("email", Some(PersonalAction::Hash));
    personal.set("name", Some(PersonalAction::Drop));
    let request = TabularRequest {
        target: "y".into(),
        task: Some(wick_core::data::Task::Regression),
        personal: personal.clone(),
        ..Default::default()
    };
    let spec = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 1,
    };
    // The source file is hashed for the package's fingerprint.
    let source = dir.path().join("people.csv");
    std::fs::write(&source, "email,name,x,y\n").unwrap();
    let out = train_table(
        TableData::new(&df, &source, &request),
        &spec,
        &TrainConfig::default(),
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let pkg = dir.path().join("people.wick");
    save_package(&out.model, &out.report, "people", &pkg).unwrap();
    let local = out.model.predict_frame(&df.head(Some(3))).unwrap();

    let s = start();
    let publisher = Endpoint::new(&s.url, &s.publish_token).unwrap();
    publisher.publish(&pkg, None, "").unwrap();
    publisher.set_logging("people", 1.0).unwrap();
    let body = json!({ "inputs": [
        { "name": "email", "shape": [3], "datatype": "BYTES", "data": &emails[..3] },
        { "name": "name", "shape": [3], "datatype": "BYTES", "data": &names[..3] },
        { "name": "x", "shape": [3], "datatype": "FP64", "data": &x[..3] },
    ] });
    let (status, answer) = post(
        &format!("{}/v2/models/people/infer", s.url),
        Some(&s.publish_token),
        &body,
    );
    assert_eq!(status, 200, "{answer}");
    for (i, p) in local.iter().enumerate() {
        assert!(
            (answer["outputs"][0]["data"][i].as_f64().unwrap() - p.as_f64()).abs() < 1e-9,
            "{answer}"
        );
    }
    let store =
        wick_serve::registry::Registry::open_store(&s.dir.path().join("store").to_string_lossy())
            .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let logged = loop {
        let entries = runtime
            .block_on(wick_serve::request_log::read_entries::<Value>(
                store.as_ref(),
                "logs/people",
            ))
            .unwrap();
        if !entries.is_empty() {
            break entries;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the log did not reach the store"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let inputs = logged[0]["inputs"].as_array().unwrap();
    let names_logged: Vec<&str> = inputs.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(
        names_logged,
        ["email", "x"],
        "the dropped column is not logged: {}",
        logged[0]
    );
    let hashes: Vec<String> = emails[..3]
        .iter()
        .map(|e| personal_hash(&out.model, e))
        .collect();
    assert_eq!(inputs[0]["data"], json!(hashes));
    let raw = serde_json::to_string(&logged).unwrap();
    assert!(
        !raw.contains("@example.com") && !raw.contains("Ann Example"),
        "{raw}"
    );
}

/// The model's own hash of a value of its hashed `email` column.
fn personal_hash(model: &wick_core::model::Model, value: &str) -> String {
    let wick_core::model::ModelInput::Tabular { preprocessor } = &model.input else {
        panic!("a table model")
    };
    assert!(preprocessor.personal.is_hashed("email"));
    preprocessor.personal.hash_value(value)
}

/// `wick-serve token create` and `revoke` (offline, on the server's machine) are in the audit log
/// in the model store: the token's id and name, never the token.
#[test]
fn token_changes_are_in_the_audit_log() {
    let dir = tempfile::tempdir().unwrap();
    let wick_serve = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wick-serve"))
            .args(args)
            .env("WICK_SERVE_STORE", dir.path().join("store"))
            .env("WICK_SERVE_DATA_DIR", dir.path().join("data"))
            .env("WICK_SERVE_TOKENS_FILE", dir.path().join("tokens.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wick-serve {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let token = wick_serve(&["token", "create", "--name", "ci", "--scopes", "infer"])
        .trim()
        .to_string();
    wick_serve(&["token", "revoke", "ci"]);
    let store =
        wick_serve::registry::Registry::open_store(&dir.path().join("store").to_string_lossy())
            .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let entries = runtime
        .block_on(wick_serve::audit::AuditLog::new(store).read(10))
        .unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token_create", "token_revoke"]);
    assert_eq!(entries[0].details["name"], "ci");
    assert_eq!(entries[0].details["id"], entries[1].details["id"]);
    assert!(
        !serde_json::to_string(&entries).unwrap().contains(&token),
        "never the token itself"
    );
}
