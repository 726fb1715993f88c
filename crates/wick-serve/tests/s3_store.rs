//! The S3 store path against a real S3-compatible server (moto) on loopback: publish through one
//! replica, infer through another that shares the bucket. `scripts/test.sh` installs moto and sets
//! WICK_PYTHON; this binary holds one test because it sets the AWS_* environment for object_store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};
use wick_core::data::{read_table, TabularRequest};
use wick_core::model::ModelSpec;
use wick_core::package::save_package;
use wick_core::publish::Endpoint;
use wick_core::train::TableData;
use wick_core::train::{train_table, CancelToken, TrainConfig};
use wick_serve::auth::{create_token, Scope};
use wick_serve::{RunningServer, ServeConfig};

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn s3_store_round_trip_and_a_second_replica() {
    let python = std::env::var("WICK_PYTHON").unwrap_or_else(|_| "python3".into());
    let port = free_port();
    let moto = Command::new(&python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "{python} -m moto.server: {e}; run scripts/test.sh or `pip install 'moto[server]'`"
            )
        });
    let _moto = KillOnDrop(moto);
    let s3 = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if http
            .put(format!("{s3}/wick-models"))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        up,
        "moto did not start on {s3} (is `moto[server]` installed for {python}?)"
    );
    // SAFETY-free in edition 2021: this test binary has a single test, set before any thread reads them.
    std::env::set_var("AWS_ENDPOINT_URL", &s3);
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");

    let dir = tempfile::tempdir().unwrap();
    let data =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../sample-data/seattle-weather.csv");
    let df = read_table(&data).unwrap();
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
    )
    .unwrap();
    let package = dir.path().join("w.wick");
    save_package(&out.model, &out.report, "weather", &package).unwrap();
    let tokens = dir.path().join("tokens.json");
    let (token, _) = create_token(&tokens, "p", vec![Scope::Publish, Scope::Infer], None).unwrap();

    let start = |data_dir: &str| {
        let config = ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            store: "s3://wick-models/team-a".into(),
            data_dir: dir.path().join(data_dir),
            tokens_file: Some(tokens.clone()),
            refresh_interval_secs: 1,
            ..ServeConfig::default()
        };
        let server = RunningServer::start(config).unwrap();
        let url = format!("http://{}", server.addr);
        (server, url)
    };
    let (_server_a, a) = start("a");
    let (_server_b, b) = start("b");
    let published = Endpoint::new(&a, &token)
        .unwrap()
        .publish(&package, None, "via S3")
        .unwrap();
    assert_eq!(published.version, 1);
    let keys = http
        .get(format!("{s3}/wick-models?list-type=2&prefix=team-a/"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        keys.contains("team-a/models/weather/versions/1.json"),
        "{keys}"
    );

    let body = json!({ "inputs": [{ "name": "x", "shape": [1, 2], "datatype": "FP64", "data": [12.0, 6.0] }] });
    let mut answer = Value::Null;
    for _ in 0..50 {
        let resp = http
            .post(format!("{b}/v2/models/weather/infer"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap();
        if resp.status().is_success() {
            answer = resp.json().unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        answer["model_version"], "1",
        "replica b serves the version published through a: {answer}"
    );
    let row: serde_json::Map<String, Value> =
        serde_json::from_value(json!({ "temp_min": 12.0, "month": 6 })).unwrap();
    let wick_core::model::Prediction::Value { value } =
        out.model.predict_rows(&[row]).unwrap()[0].clone()
    else {
        panic!()
    };
    assert_eq!(answer["outputs"][0]["data"][0].as_f64().unwrap(), value);

    // Both replicas append to one audit log in the bucket, neither overwriting the other's entries.
    let visibility = |url: &str, public: bool| {
        http.post(format!("{url}/v2/wick/models/weather/public"))
            .bearer_auth(&token)
            .json(&json!({ "public": public }))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((visibility(&a, true), visibility(&b, false)), (200, 200));
    let log: Value = http
        .get(format!("{b}/v2/wick/audit"))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<(&str, &Value)> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), &e["details"]))
        .collect();
    assert_eq!(
        actions,
        [
            (
                "publish",
                &json!({ "version": 1, "sha256": published.sha256 })
            ),
            ("set_public", &json!({ "public": true })),
            ("set_public", &json!({ "public": false }))
        ],
        "{log}"
    );

    // Both replicas see a traffic split and a logging setting made through one of them, and both
    // write request logs into the bucket without overwriting each other's.
    let endpoint_a = Endpoint::new(&a, &token).unwrap();
    endpoint_a
        .set_traffic("weather", &std::collections::BTreeMap::from([(1, 100)]))
        .unwrap();
    endpoint_a.set_logging("weather", 1.0).unwrap();
    let endpoint_b = Endpoint::new(&b, &token).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let listing = endpoint_b.models().unwrap();
        let weather = listing.iter().find(|m| m.name == "weather").unwrap();
        if weather.log_sample == Some(1.0)
            && weather
                .traffic
                .as_ref()
                .is_some_and(|t| t.get(&1) == Some(&100))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replica b never saw the settings made through a"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut ids = std::collections::HashSet::new();
    // Which replica answered each request.
    let mut answered_by = Vec::new();
    for url in [&a, &b].into_iter().cycle().take(20) {
        let answer: Value = http
            .post(format!("{url}/v2/models/weather/infer"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        ids.insert(answer["id"].as_str().unwrap().to_string());
        answered_by.push((url.clone(), answer["id"].as_str().unwrap().to_string()));
    }
    let store = wick_serve::registry::Registry::open_store("s3://wick-models/team-a").unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let logged: Vec<Value> = runtime
            .block_on(wick_serve::request_log::read_entries(
                store.as_ref(),
                "logs/weather",
            ))
            .unwrap();
        let seen: std::collections::HashSet<String> = logged
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        if seen == ids {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the bucket has {} of the 20 logged requests",
            seen.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Feedback for a request goes to whichever replica the caller reaches: each request's true
    // value is sent to the replica that did not answer it, which finds it in the bucket's log.
    for (url, id) in &answered_by {
        let other = if *url == a { &b } else { &a };
        let resp = http
            .post(format!("{other}/v2/wick/models/weather/feedback"))
            .bearer_auth(&token)
            .json(&json!({ "id": id, "value": 20.0 }))
            .send()
            .unwrap();
        let status = resp.status();
        assert_eq!(
            status,
            200,
            "feedback for {id} through the other replica: {}",
            resp.text().unwrap()
        );
    }
    // An id no replica logged is still refused, with the reason.
    let resp = http
        .post(format!("{b}/v2/wick/models/weather/feedback"))
        .bearer_auth(&token)
        .json(&json!({ "id": "never-logged", "value": 20.0 }))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().unwrap().contains("in the store"));
    // Both replicas' feedback joins every logged request.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let labelled = endpoint_a.labelled_rows("weather");
        if labelled
            .as_ref()
            .is_ok_and(|l| l.rows.len() == answered_by.len())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the labelled rows are {:?}",
            labelled.map(|l| l.rows.len())
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
