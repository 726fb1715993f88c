//! The `wick` binary, run as a user would: each sample dataset trained, evaluated and predicted.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../sample-data")
        .join(name)
}

fn wick(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .output()
        .unwrap()
}

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = wick(args);
    assert!(
        out.status.success(),
        "wick {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "wick {args:?}: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn inspect_a_table_and_an_image_folder() {
    let weather = sample("seattle-weather.csv");
    let v = ok_json(&["--json", "inspect", s(&weather)]);
    assert_eq!(v["rows"], 1461);
    assert_eq!(v["columns"].as_array().unwrap().len(), 7);
    let out = wick(&["inspect", s(&weather)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1461 rows × 7 columns") && text.contains("temp_max"),
        "{text}"
    );
    // --stream summarises without loading the file (the default above 1 GiB): the same figures.
    let streamed = ok_json(&["--json", "inspect", "--stream", s(&weather)]);
    assert_eq!(streamed["rows"], 1461);
    let loaded = ok_json(&["--json", "inspect", s(&weather)]);
    for (a, b) in streamed["columns"]
        .as_array()
        .unwrap()
        .iter()
        .zip(loaded["columns"].as_array().unwrap())
    {
        assert_eq!(
            (&a["name"], &a["missing"], &a["min"], &a["max"]),
            (&b["name"], &b["missing"], &b["min"], &b["max"])
        );
    }
    let v = ok_json(&["--json", "inspect", s(&sample("digits"))]);
    assert_eq!(v["images"], 1797);
    assert_eq!(v["classes"].as_array().unwrap().len(), 10);
}

#[test]
fn inspect_cuts_long_text_cells_and_json_keeps_them_whole() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("reviews.csv");
    let review =
        "Arrived late and the box was crushed, but the kettle itself works well. ".repeat(20);
    std::fs::write(
        &csv,
        format!("text,stars\n\"{review}\",4\n\"Great kettle — boils fast.\",5\n"),
    )
    .unwrap();
    let out = wick(&["inspect", s(&csv)]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("long cells are cut to 40 characters"),
        "{text}"
    );
    assert!(text.contains("Great kettle — boils fast."), "{text}");
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest < 200, "a line of {widest} characters:\n{text}");
    let v = ok_json(&["--json", "inspect", s(&csv)]);
    assert_eq!(v["preview"][0][0].as_str().unwrap().trim(), review.trim());
}

#[test]
fn train_predict_and_eval_the_regression_sample() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("weather.wick");
    let data = sample("seattle-weather.csv");
    let v = ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "temp_max",
        "--out",
        s(&model),
    ]);
    assert_eq!(v["task"], "regression");
    assert!(v["metrics"]["r2"].as_f64().unwrap() > 0.8, "{v}");
    let v = ok_json(&["--json", "eval", s(&model), s(&data)]);
    assert!(v["metrics"]["r2"].as_f64().unwrap() > 0.8);
    let input = dir.path().join("new-days.csv");
    // The model uses the date too (as year, month, day of week, hour and days since 1970).
    std::fs::write(&input, "date,month,precipitation,temp_min,wind,weather\n2016-07-01,7,0.0,15.6,2.1,sun\n2016-01-15,1,8.1,1.1,5.0,rain\n").unwrap();
    let out_csv = dir.path().join("predictions.csv");
    let v = ok_json(&[
        "--json",
        "predict",
        s(&model),
        s(&input),
        "--out",
        s(&out_csv),
    ]);
    let july = v[0]["prediction"]["value"].as_f64().unwrap();
    let january = v[1]["prediction"]["value"].as_f64().unwrap();
    assert!(
        july > january + 10.0,
        "a July day is warmer: {july} vs {january}"
    );
    let written = std::fs::read_to_string(&out_csv).unwrap();
    assert!(
        written.starts_with("input,temp_max,confidence\nrow 1,"),
        "{written}"
    );

    // Export: the file is written and names the endpoint's inputs (onnxruntime runs it in wick-core's
    // tests). The README's model uses every column, the date too: ONNX can't parse text dates, so
    // the graph takes the date's time stamp and the export says so.
    let onnx = dir.path().join("exported").join("weather.onnx");
    std::fs::create_dir_all(onnx.parent().unwrap()).unwrap();
    let v = ok_json(&[
        "--json",
        "export",
        s(&model),
        "--format",
        "onnx",
        "--out",
        s(&onnx),
    ]);
    assert!(
        v["inputs"].as_array().unwrap().iter().any(|i| i == "date"),
        "{v}"
    );
    assert_eq!(v["date_inputs"], serde_json::json!(["date"]), "{v}");
    assert_eq!(v["outputs"], serde_json::json!(["temp_max"]));
    assert_eq!(
        std::fs::metadata(&onnx).unwrap().len(),
        v["bytes"].as_u64().unwrap()
    );
    let out = wick(&["export", s(&model), "--out", s(&onnx)]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("date take the time stamp"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = wick(&["export", s(&dir.path().join("nope.wick"))]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nope.wick"));

    // A reader that stops early (`wick predict … | head`) ends wick quietly, with SIGPIPE's status.
    let mut child = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(["--json", "predict", s(&model), s(&data)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(13),
        "ended by SIGPIPE, not an error: {:?} {err}",
        out.status
    );
}

#[test]
fn train_predict_and_eval_the_classification_sample() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("cancer.wick");
    let data = sample("breast-cancer.csv");
    let v = ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "diagnosis",
        "--model",
        "mlp",
        "--epochs",
        "30",
        "--out",
        s(&model),
    ]);
    assert_eq!(v["task"], "classification");
    assert!(v["metrics"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    let out = wick(&["eval", s(&model), s(&data)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("malignant") && text.contains("precision"),
        "{text}"
    );
    let v = ok_json(&["--json", "predict", s(&model), s(&data)]);
    assert_eq!(v.as_array().unwrap().len(), 569);
    assert!(v[0]["prediction"]["label"].is_string());
}

#[test]
fn train_and_predict_the_image_sample() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("digits.wick");
    let data = sample("digits");
    let v = ok_json(&[
        "--json",
        "train",
        s(&data),
        "--epochs",
        "8",
        "--out",
        s(&model),
    ]);
    assert!(v["metrics"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    let img = data.join("3").join(
        std::fs::read_dir(data.join("3"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name(),
    );
    let v = ok_json(&["--json", "predict", s(&model), s(&img)]);
    assert!(
        v[0]["prediction"]["probabilities"]
            .as_array()
            .unwrap()
            .len()
            == 10
    );
    // The saliency map of one image: a PNG of at least 224 pixels a side.
    let map = dir.path().join("map.png");
    let v = ok_json(&["--json", "explain", s(&model), s(&img), "--out", s(&map)]);
    assert!(v["class"].is_string(), "{v}");
    let png = image::open(&map).unwrap();
    assert!(
        png.width() >= 224 && png.height() >= 224,
        "{}×{}",
        png.width(),
        png.height()
    );
    let out = wick(&["explain", s(&model), s(&img)]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("add --out map.png"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --augment: the named augmentations, kept in the package's manifest.
    let augmented = dir.path().join("augmented.wick");
    ok_json(&[
        "--json",
        "train",
        s(&data),
        "--epochs",
        "1",
        "--augment",
        "rotate,crop,noise",
        "--out",
        s(&augmented),
    ]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(augmented.join("wick.json")).unwrap())
            .unwrap();
    assert_eq!(
        manifest["train_config"]["augment"]["rotate_degrees"], 15.0,
        "{}",
        manifest["train_config"]
    );
    let out = wick(&[
        "train",
        s(&data),
        "--augment",
        "flip,zoom",
        "--out",
        s(&augmented),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`zoom` is not an augmentation"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wick(&[
        "train",
        s(&sample("seattle-weather.csv")),
        "--target",
        "weather",
        "--augment",
        "flip",
        "--out",
        s(&augmented),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("for a table, leave it out"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn failures_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.wick");
    let data = sample("seattle-weather.csv");
    let out = wick(&["train", s(&data), "--target", "nope", "--out", s(&model)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("column `nope`") && err.contains("temp_max"),
        "{err}"
    );
    let out = wick(&["train", s(&data), "--out", s(&model)]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target"));
    let out = wick(&["predict", s(&dir.path().join("missing.wick")), s(&data)]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("missing.wick"));
    assert!(!model.exists(), "nothing written on failure");
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wick serve` on a free loopback port with its store in `dir` and a publish+infer token: the
/// server (killed when dropped), its URL and the token.
fn serve_in(dir: &Path) -> (KillOnDrop, String, String) {
    let tokens = dir.join("tokens.json");
    let (token, _) = wick_serve::auth::create_token(
        &tokens,
        "me",
        vec![
            wick_serve::auth::Scope::Publish,
            wick_serve::auth::Scope::Infer,
        ],
        None,
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Command::new(env!("CARGO_BIN_EXE_wick"))
        .arg("serve")
        .env("WICK_SERVE_LISTEN", format!("127.0.0.1:{port}"))
        .env("WICK_SERVE_STORE", dir.join("store"))
        .env("WICK_SERVE_DATA_DIR", dir.join("data"))
        .env("WICK_SERVE_TOKENS_FILE", &tokens)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let server = KillOnDrop(server);
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (server, format!("http://127.0.0.1:{port}"), token)
}

/// `wick serve`, then `wick publish`, `wick models` and `wick rollback` against it, as processes.
#[test]
fn serve_publish_models_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, endpoint, token) = serve_in(dir.path());
    let data = sample("seattle-weather.csv");
    let (m1, m2) = (dir.path().join("a.wick"), dir.path().join("b.wick"));
    ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "temp_max",
        "--features",
        "temp_min,wind",
        "--name",
        "weather",
        "--out",
        s(&m1),
    ]);
    ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "temp_max",
        "--features",
        "temp_min,month",
        "--name",
        "weather",
        "--out",
        s(&m2),
    ]);

    let publish = |model: &Path| {
        Command::new(env!("CARGO_BIN_EXE_wick"))
            .args(["publish", s(model), "--endpoint", &endpoint])
            .env("WICK_TOKEN", &token)
            .output()
            .unwrap()
    };
    let out = publish(&m1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("`weather` version 1")
            && text.contains("curl -s -X POST")
            && text.contains("tritonclient"),
        "{text}"
    );
    assert!(!text.contains(&token), "the token is never printed");
    // The printed curl body is a valid request for this model.
    let body = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("-d '"))
        .unwrap()
        .trim_end_matches('\'');
    let answer: serde_json::Value = reqwest::blocking::Client::new()
        .post(format!("{endpoint}/v2/models/weather/versions/1/infer"))
        .bearer_auth(&token)
        .body(body.to_string())
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(answer["outputs"][0]["data"][0].is_number(), "{answer}");
    // m2 takes `month`, which v1's callers don't send: refused unless it says it replaces the inputs.
    let refused = publish(&m2);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("month") && why.contains("replace"),
        "{why}"
    );
    let replaced = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "publish",
            s(&m2),
            "--endpoint",
            &endpoint,
            "--replace-inputs",
        ])
        .env("WICK_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        replaced.status.success(),
        "{}",
        String::from_utf8_lossy(&replaced.stderr)
    );

    let models = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wick"))
            .args(args)
            .args(["--endpoint", &endpoint])
            .env("WICK_TOKEN", &token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert_eq!(models(&["--json", "models"])[0]["default_version"], 2);
    // A canary of version 2 at 10%, then a rollback, which ends it.
    assert_eq!(
        models(&["--json", "traffic", "weather", "1=90", "2=10"])["traffic"],
        serde_json::json!({ "1": 90, "2": 10 })
    );
    assert_eq!(
        models(&["--json", "models"])[0]["traffic"],
        serde_json::json!({ "1": 90, "2": 10 })
    );
    let bad = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "traffic",
            "weather",
            "1=90",
            "2=20",
            "--endpoint",
            &endpoint,
        ])
        .env("WICK_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("add up to 110"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    models(&["--json", "rollback", "weather", "1"]);
    assert_eq!(models(&["--json", "models"])[0]["default_version"], 1);
    assert!(models(&["--json", "models"])[0].get("traffic").is_none());

    let out = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "publish",
            s(&m1),
            "--endpoint",
            &endpoint,
            "--token",
            "wick_bad_token",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused the token (401)"));
}

/// `wick bench --serve` in miniature: `wick serve` started as its own process, loaded by the hyper
/// client at 1, 16 and 64 connections, every request answered. (No Python here: Wick's rows only.)
#[test]
fn bench_serve_loads_a_real_wick_serve_process() {
    let v = ok_json(&[
        "--json",
        "bench",
        "--serve",
        "--duration-secs",
        "0.3",
        "--max-requests",
        "300",
        "--python",
        "/nonexistent/python",
        "--samples",
        s(&sample("")),
    ]);
    let rows = v["rows"].as_array().unwrap();
    let cells: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["model"].as_str().unwrap(),
                r["connections"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("linear", 1),
            ("linear", 16),
            ("linear", 64),
            ("cnn", 1),
            ("cnn", 16),
            ("cnn", 64),
            ("health", 1),
            ("linear, logging all", 16),
            ("linear, logging all", 64)
        ]
    );
    // Logging every request under load loses no answer and no log entry.
    let logging = &v["logging"];
    assert_eq!(logging["dropped"], 0, "{logging}");
    assert_eq!(logging["logged"], logging["answered"], "{logging}");
    assert!(
        logging["cells"][0]["ratio"].as_f64().unwrap() > 0.0,
        "{logging}"
    );
    for r in rows {
        let wick = &r["wick"];
        assert!(wick["requests"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(wick["errors"], 0, "{r}");
        assert!(
            wick["p99_ms"].as_f64().unwrap() >= wick["p50_ms"].as_f64().unwrap(),
            "{r}"
        );
        assert!(r["python"].is_null(), "{r}");
    }
    assert!(
        v["tcp_echo_round_trips_per_sec"].as_f64().unwrap() > 0.0,
        "{v}"
    );
}

#[test]
fn boosted_trees_and_forests_train_on_each_sample_table_and_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    for (file, target, metric, floor) in [
        ("seattle-weather.csv", "temp_max", "r2", 0.8),
        ("seattle-weather.csv", "weather", "accuracy", 0.6),
        ("breast-cancer.csv", "diagnosis", "accuracy", 0.9),
    ] {
        for kind in ["gbdt", "forest"] {
            let model = dir.path().join(format!("{target}-{kind}.wick"));
            let data = sample(file);
            let v = ok_json(&[
                "--json",
                "train",
                s(&data),
                "--target",
                target,
                "--model",
                kind,
                "--out",
                s(&model),
            ]);
            assert!(
                v["metrics"][metric].as_f64().unwrap() > floor,
                "{kind} on {file}: {v}"
            );
            assert!(
                model.join("trees.json").exists(),
                "a tree package keeps trees.json"
            );
            let card = std::fs::read_to_string(model.join("README.md")).unwrap();
            assert!(
                // Trees export to ONNX like every other kind.
                card.contains("## Using it outside Wick (ONNX)") && card.contains("onnxruntime"),
                "{card}"
            );
            let v = ok_json(&[
                "--json",
                "explain",
                s(&model),
                s(&data),
                "--repeats",
                "2",
                "--row",
                "3",
            ]);
            let features = v["importance"]["features"].as_array().unwrap();
            assert!(
                !features.is_empty() && features.iter().all(|f| f["split_gain"].is_number()),
                "{v}"
            );
            assert!(
                v["explanation"]["parts"]
                    .as_array()
                    .is_some_and(|p| p.len() == features.len()),
                "{v}"
            );
        }
    }
    // k-fold cross-validation: mean ± sd over stratified folds, then the saved model as usual.
    let model = dir.path().join("cv.wick");
    let v = ok_json(&[
        "--json",
        "train",
        s(&sample("breast-cancer.csv")),
        "--target",
        "diagnosis",
        "--model",
        "gbdt",
        "--cv",
        "4",
        "--out",
        s(&model),
    ]);
    assert_eq!(v["cv"]["folds"], 4);
    assert_eq!(v["cv"]["fold_metrics"].as_array().unwrap().len(), 4);
    let accuracy = v["cv"]["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "accuracy")
        .unwrap()
        .clone();
    assert!(
        accuracy["mean"].as_f64().unwrap() > 0.9 && accuracy["sd"].as_f64().unwrap() < 0.1,
        "{accuracy}"
    );
    let out = wick(&[
        "train",
        s(&sample("breast-cancer.csv")),
        "--target",
        "diagnosis",
        "--cv",
        "1",
        "--out",
        s(&model),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 2 folds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The leaderboard: every fitting template tried within the budget, the best saved. Six seconds:
    // beside this binary's other tests on two cores, two seconds fitted only two models.
    let best = dir.path().join("best.wick");
    let v = ok_json(&[
        "--json",
        "search",
        s(&sample("breast-cancer.csv")),
        "--target",
        "diagnosis",
        "--budget-secs",
        "6",
        "--out",
        s(&best),
    ]);
    assert!(v["leaderboard"].as_array().unwrap().len() >= 5, "{v}");
    assert!(v["test"]["accuracy"].as_f64().unwrap() > 0.9, "{v}");
    assert!(best.join("wick.json").exists());
    let out = wick(&[
        "search",
        s(&sample("breast-cancer.csv")),
        "--target",
        "diagnosis",
        "--budget-secs",
        "0",
        "--out",
        s(&best),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("more than 0 seconds"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A model without per-feature contributions says so; --row out of range is named.
    let model = dir.path().join("mlp.wick");
    let data = sample("breast-cancer.csv");
    ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "diagnosis",
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--out",
        s(&model),
    ]);
    let out = wick(&[
        "explain",
        s(&model),
        s(&data),
        "--repeats",
        "1",
        "--row",
        "2",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("MLP models have no per-feature contributions"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wick(&["explain", s(&model), s(&data), "--row", "100000"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--row 100000 is not in"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn train_stream_reads_the_file_in_chunks_and_evaluates_like_any_other_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = sample("seattle-weather.csv");
    // --stream trains as a file over 1 GiB does: trees and linear regression on every row.
    let model = dir.path().join("streamed.wick");
    let v = ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "weather",
        "--model",
        "gbdt",
        "--stream",
        "--out",
        s(&model),
    ]);
    assert_eq!(
        v["rows_used"],
        serde_json::json!({"kind": "every_row", "rows": 1461}),
        "{v}"
    );
    assert!(v["metrics"]["accuracy"].as_f64().unwrap() > 0.75, "{v}");
    let v = ok_json(&["--json", "eval", s(&model), s(&data)]);
    assert!(v["metrics"]["accuracy"].as_f64().unwrap() > 0.75, "{v}");
    let out = wick(&[
        "train",
        s(&data),
        "--target",
        "temp_max",
        "--model",
        "linear",
        "--stream",
        "--out",
        s(&dir.path().join("linear.wick")),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("trained on every one of the file's 1461 rows"),
        "{text}"
    );
    let out = wick(&[
        "train",
        s(&data),
        "--target",
        "weather",
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--stream",
        "--out",
        s(&dir.path().join("mlp.wick")),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("stratified (each class keeps its share) sample of"),
        "{text}"
    );
    let out = wick(&[
        "train",
        s(&data),
        "--target",
        "weather",
        "--stream",
        "--cv",
        "3",
        "--out",
        s(&model),
    ]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("leave --cv out"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[path = "../../wick-core/tests/support/fake_hub.rs"]
mod fake_hub;

/// Three digit classes, 15 images each: enough for a head on a backbone to train in seconds.
fn small_digits(dir: &Path) -> PathBuf {
    let data = dir.join("digits3");
    for class in ["0", "1", "7"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(sample("digits").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(15) {
            std::fs::copy(f, data.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    data
}

#[test]
fn train_with_a_backbone_named_downloads_it_from_the_hub_once() {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("random-resnet18.safetensors");
    wick_core::model::transfer::write_random_weights(
        wick_core::model::BackboneArch::Resnet18,
        &weights,
    )
    .unwrap();
    let b = wick_core::hub::backbone("resnet18").unwrap();
    let hub = fake_hub::serve(
        b.repo,
        b.file,
        std::fs::read(&weights).unwrap(),
        fake_hub::Behaviour::Normal,
    );
    let cache = dir.path().join("hub-cache");
    let data = small_digits(dir.path());
    let model = dir.path().join("photos.wick");
    let train = |out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_wick"))
            .args([
                "train",
                s(&data),
                "--backbone",
                "resnet18",
                "--image-size",
                "32",
                "--epochs",
                "3",
                "--out",
                s(out),
            ])
            .env("HF_ENDPOINT", &hub.url)
            .env("WICK_HUB_CACHE", &cache)
            .output()
            .unwrap()
    };
    let out = train(&model);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("downloaded lmz/candle-resnet/resnet18.safetensors"),
        "{stderr}"
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("wick.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["spec"]["backbone"]["arch"], "resnet18",
        "{}",
        manifest["spec"]
    );

    // The second run uses the cache: no new request reaches the Hub.
    let requests = hub.requests.lock().unwrap().len();
    let again = train(&dir.path().join("again.wick"));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(!String::from_utf8_lossy(&again.stderr).contains("downloaded"));
    assert_eq!(hub.requests.lock().unwrap().len(), requests);
    let listed: serde_json::Value = serde_json::from_slice(
        &Command::new(env!("CARGO_BIN_EXE_wick"))
            .args(["--json", "backbones"])
            .env("WICK_HUB_CACHE", &cache)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let resnet18 = listed["backbones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "resnet18")
        .unwrap();
    assert!(resnet18["cached"].is_string(), "{listed}");

    // Offline with an empty cache: a clear message naming the file and where to put it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let offline = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "train",
            s(&data),
            "--backbone",
            "mobilenetv4",
            "--out",
            s(&dir.path().join("x.wick")),
        ])
        .env("HF_ENDPOINT", format!("http://{closed}"))
        .env("WICK_HUB_CACHE", dir.path().join("empty-cache"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&offline.stderr);
    assert!(!offline.status.success());
    assert!(
        err.contains("could not reach")
            && err.contains("manual")
            && err.contains("mobilenetv4.safetensors"),
        "{err}"
    );
}

/// The loop after publish from the CLI and HTTP: publish v1 (trained on 2012–2014), log its calls,
/// send 2015's days and their true temperatures as feedback, `wick improve` trains v2 on both and
/// releases it to 10% of the calls, and `wick rollback` promotes it.
#[test]
fn improve_with_live_data_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, endpoint, token) = serve_in(dir.path());
    // 2012–2014 to train on; 2015 arrives as live traffic.
    let text = std::fs::read_to_string(sample("seattle-weather.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let (old, live): (Vec<&str>, Vec<&str>) = rows.lines().partition(|l| !l.starts_with("2015"));
    let data = dir.path().join("weather-2012-2014.csv");
    std::fs::write(&data, format!("{header}\n{}\n", old.join("\n"))).unwrap();
    let v1 = dir.path().join("v1.wick");
    ok_json(&[
        "--json",
        "train",
        s(&data),
        "--target",
        "temp_max",
        "--features",
        "temp_min,month,wind",
        "--name",
        "weather",
        "--out",
        s(&v1),
    ]);
    let remote = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_wick"))
            .args(args)
            .args(["--endpoint", &endpoint])
            .env("WICK_TOKEN", &token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wick {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    remote(&["--json", "publish", s(&v1)]);
    // Nothing logged yet: a clear error, not an empty model.
    let v2 = dir.path().join("v2.wick");
    let out = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "improve",
            "weather",
            "--model",
            s(&v1),
            "--data",
            s(&data),
            "--out",
            s(&v2),
            "--endpoint",
            &endpoint,
        ])
        .env("WICK_TOKEN", &token)
        .output()
        .unwrap();
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("wick logging weather"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    remote(&["--json", "logging", "weather", "--sample", "1"]);

    let client = reqwest::blocking::Client::new();
    let field = |line: &str, i: usize| line.split(',').nth(i).unwrap().to_string();
    for line in &live {
        let body = serde_json::json!({ "inputs": [
            { "name": "temp_min", "shape": [1], "datatype": "FP64", "data": [field(line, 3).parse::<f64>().unwrap()] },
            { "name": "month", "shape": [1], "datatype": "INT64", "data": [field(line, 1).parse::<i64>().unwrap()] },
            { "name": "wind", "shape": [1], "datatype": "FP64", "data": [field(line, 4).parse::<f64>().unwrap()] },
        ] });
        let answer: serde_json::Value = client
            .post(format!("{endpoint}/v2/models/weather/infer"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        let feedback = serde_json::json!({ "id": answer["id"], "value": field(line, 6).parse::<f64>().unwrap() });
        let status = client
            .post(format!("{endpoint}/v2/wick/models/weather/feedback"))
            .bearer_auth(&token)
            .json(&feedback)
            .send()
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }
    let monitor = remote(&["--json", "monitor", "weather"]);
    assert_eq!(
        monitor["versions"]["1"]["feedback"],
        live.len(),
        "{monitor}"
    );
    // The table has the drift column too (it showed only with --json).
    let table = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(["monitor", "weather", "--endpoint", &endpoint])
        .env("WICK_TOKEN", &token)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        // A year of live rows is enough for a verdict either way.
        table.contains("drift (PSI)")
            && (table.contains("drifting: ") || table.contains("none (worst ")),
        "{table}"
    );
    // The log reaches the store within a second or so (later under load): wait until every
    // labelled request is readable, so `improve` publishes once, with all of them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let labelled: serde_json::Value = client
            .get(format!("{endpoint}/v2/wick/models/weather/labelled"))
            .bearer_auth(&token)
            .send()
            .unwrap()
            .json()
            .unwrap();
        if labelled["rows"]
            .as_array()
            .is_some_and(|r| r.len() == live.len())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store holds {} of {} labelled requests",
            labelled["rows"].as_array().map_or(0, Vec::len),
            live.len()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut improved = None;
    let mut last_error = String::new();
    for _ in 0..50 {
        let out = Command::new(env!("CARGO_BIN_EXE_wick"))
            .args([
                "--json",
                "improve",
                "weather",
                "--model",
                s(&v1),
                "--data",
                s(&data),
                "--out",
                s(&v2),
                "--canary",
                "10",
                "--endpoint",
                &endpoint,
            ])
            .env("WICK_TOKEN", &token)
            .output()
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if out.status.success() && answer["received"] == live.len() {
            improved = Some(answer);
            break;
        }
        last_error = format!("{answer} {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let improved = improved.unwrap_or_else(|| {
        panic!(
            "every live row with feedback comes back as a new row; the last try said: {last_error}"
        )
    });
    // Two 2015 days may agree in every column the log has: the second is a duplicate.
    let new_rows = improved["new_rows"].as_u64().unwrap();
    assert_eq!(
        new_rows + improved["duplicates"].as_u64().unwrap(),
        live.len() as u64,
        "{improved}"
    );
    assert!(
        new_rows as usize > live.len() - 5 && improved["unusable"] == 0,
        "{improved}"
    );
    assert!(
        improved["before"]["r2"].as_f64().unwrap() > 0.8
            && improved["after"]["r2"].as_f64().unwrap() > 0.8,
        "{improved}"
    );
    assert_eq!(improved["canary"]["version"], 2, "{improved}");
    let listing = remote(&["--json", "models"]);
    assert_eq!(
        listing[0]["traffic"],
        serde_json::json!({ "1": 90, "2": 10 }),
        "{listing}"
    );
    // The new package trained on the live rows too; its test rows are v1's.
    let v2_manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v2.join("wick.json")).unwrap()).unwrap();
    let v1_manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(v1.join("wick.json")).unwrap()).unwrap();
    assert_eq!(
        v2_manifest["dataset"]["rows"].as_u64().unwrap(),
        v1_manifest["dataset"]["rows"].as_u64().unwrap() + new_rows
    );
    // Its fingerprint covers the live rows, not only the file both trained on.
    assert_ne!(
        v2_manifest["dataset"]["sha256"],
        v1_manifest["dataset"]["sha256"]
    );
    assert_eq!(
        v2_manifest["dataset"]["source"],
        format!(
            "{} + {new_rows} live rows",
            v1_manifest["dataset"]["source"].as_str().unwrap()
        )
    );
    // Promote.
    remote(&["--json", "rollback", "weather", "2"]);
    assert_eq!(remote(&["--json", "models"])[0]["default_version"], 2);
}
