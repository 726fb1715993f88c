#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every screen driven headlessly with egui_kittest: clicks by label, state assertions, and image
//! snapshots (tests/snapshots/*.png; refresh with UPDATE_SNAPSHOTS=1 and look at them).
//!
//! Training, loading and publishing run on real background threads against real files and a real
//! endpoint server on loopback, so the tests wait for them the way a person would.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::{Harness, SnapshotOptions};
use wick_ui::app::DataState;
use wick_ui::project::RunStatus;
use wick_ui::{AppConfig, EndpointTarget, HostEvent, HostRequest, Screen, WickApp};

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-data")
}

struct Env {
    dir: tempfile::TempDir,
    server: Option<wick_serve::EmbeddedServer>,
}

impl Env {
    fn new(with_server: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = with_server.then(|| {
            wick_serve::EmbeddedServer::start(
                &dir.path().join("endpoint"),
                &dir.path().join("config/desktop-token"),
                0,
            )
            .unwrap()
        });
        Self { dir, server }
    }

    fn config(&self) -> AppConfig {
        AppConfig {
            project_dir: self.dir.path().join("project"),
            settings_path: self.dir.path().join("settings.json"),
            samples_dir: Some(samples_dir()),
            embedded_endpoint: self.server.as_ref().map(|s| EndpointTarget {
                url: s.url.clone(),
                token: s.token.clone(),
            }),
            embedded_endpoint_error: None,
            embedded_token_file: Some(self.dir.path().join("config/desktop-token")),
            native_menu: false,
            stream_threshold_bytes: wick_core::data::STREAM_THRESHOLD_BYTES,
            stream_sample_rows: wick_ui::jobs::SAMPLE_ROWS,
            // Nothing listens there: a test that trains on a Hub backbone serves one itself.
            hub: Some(wick_core::hub::HubClient::new(
                "http://127.0.0.1:9",
                self.dir.path().join("hub-cache"),
            )),
            startup_notices: Vec::new(),
        }
    }
}

fn harness(app: WickApp) -> Harness<'static, WickApp> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 860.0))
        .build_ui_state(|ui, app: &mut WickApp| app.ui(ui), app)
}

/// Steps frames until `done` holds, as background jobs finish.
fn wait_for(h: &mut Harness<'static, WickApp>, what: &str, done: impl Fn(&WickApp) -> bool) {
    let start = Instant::now();
    // Queued clicks take effect in the next frame: always run at least two before looking.
    h.step();
    h.step();
    while !done(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        h.step();
        std::thread::sleep(Duration::from_millis(15));
    }
    // Let the UI settle (layout of the new content, thumbnails) before asserting on it.
    for _ in 0..4 {
        h.step();
    }
}

/// A fresh app with a sample dataset opened by its button (e.g. "Seattle weather"), loaded.
fn with_sample(env: &Env, sample: &str) -> Harness<'static, WickApp> {
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    h.get_by_label(&format!("Open {sample}")).click();
    wait_for(&mut h, "the sample to load", loaded);
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, NEXT).click();
    h.run_steps(2);
    h
}

/// The Data screen's way on to the Model screen.
const NEXT: &str = "Next: choose a model  →";

fn loaded(app: &WickApp) -> bool {
    matches!(app.state.data, DataState::Loaded { .. })
}

fn trained(app: &WickApp) -> bool {
    app.state.training.is_none()
        && app
            .state
            .project
            .runs
            .last()
            .is_some_and(|r| r.status != RunStatus::Running)
}

/// Counts the clicks a person makes, to check the "few steps" promises.
struct Clicks(usize);

impl Clicks {
    fn button(&mut self, h: &Harness<'static, WickApp>, label: &str) {
        h.get_by_role_and_label(Role::Button, label).click();
        self.0 += 1;
    }
}

fn snapshot_options() -> SnapshotOptions {
    // Software rendering differs by a few anti-aliased pixels between Mesa builds, and the endpoint's
    // random port shows in the status bar.
    SnapshotOptions::new().max_failed_pixels(600)
}

/// Waits until the project is saved and no job is running, so the snapshot shows a settled screen.
fn settle(h: &mut Harness<'static, WickApp>) {
    wait_for(h, "a settled screen", |a| a.is_saved() && !a.is_busy());
    h.remove_cursor();
    h.run_steps(3);
}

#[test]
fn first_launch_shows_the_drop_zone_and_samples() {
    let env = Env::new(false);
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(4);
    h.get_by_label("Open Seattle weather");
    h.get_by_label("Open Handwritten digits");
    h.get_by_role_and_label(Role::Button, "Open file…");
    settle(&mut h);
    h.snapshot_options("data_empty", &snapshot_options());
}

#[test]
fn the_dark_theme_is_remembered() {
    let env = Env::new(false);
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Dark mode").click();
    h.run_steps(4);
    assert!(h.state().state.settings.dark);
    h.get_by_role_and_label(Role::Button, "Light mode");
    settle(&mut h);
    h.snapshot_options("data_empty_dark", &snapshot_options());
    let saved = std::fs::read_to_string(env.dir.path().join("settings.json")).unwrap();
    assert!(saved.contains("\"dark\": true"), "{saved}");
    drop(h);
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    assert!(
        h.state().state.settings.dark,
        "the theme survives a restart"
    );
}

#[test]
fn regression_flow_from_sample_to_a_published_endpoint_in_few_clicks() {
    let env = Env::new(true);
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    let mut clicks = Clicks(0);

    clicks.button(&h, "Open Seattle weather");
    wait_for(&mut h, "the sample to load", loaded);
    assert_eq!(
        h.state().state.screen,
        Screen::Data,
        "a loaded dataset is shown first"
    );
    h.run_steps(2);
    clicks.button(&h, NEXT);
    h.run_steps(2);
    assert_eq!(h.state().state.screen, Screen::Model);
    assert_eq!(
        h.state().state.project.model.target.as_deref(),
        Some("temp_max"),
        "the sample's target is preselected"
    );
    settle(&mut h);
    h.snapshot_options("model_regression", &snapshot_options());

    clicks.button(&h, "▶  Train");
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert!(
        clicks.0 <= 5,
        "a trained regression model took {} clicks",
        clicks.0
    );
    let r2 = match run.test_metrics.unwrap() {
        wick_core::metrics::Metrics::Regression(m) => m.r2,
        other => panic!("{other:?}"),
    };
    assert!(
        r2 > 0.8,
        "temp_max from temp_min and friends is easy: r2 = {r2}"
    );
    assert_eq!(h.state().state.screen, Screen::Train);

    clicks.button(&h, "Evaluate");
    h.run_steps(4);
    h.get_by_label("R²");
    h.get_by_label("Predicted vs actual");
    settle(&mut h);
    h.snapshot_options("evaluate_regression", &snapshot_options());

    // Try it with typed feature values.
    h.get_by_role_and_label(Role::Button, "Predict")
        .scroll_to_me();
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Predict").click();
    wait_for(&mut h, "a prediction", |a| a.state.try_it.result.is_some());
    let prediction = h.state().state.try_it.result.clone().unwrap().unwrap();
    assert!(prediction.parse::<f64>().is_ok(), "{prediction}");

    clicks.button(&h, "Publish");
    h.run_steps(2);
    // The snippets read WICK_TOKEN: the token is shown masked and copied with one click.
    let token = env.server.as_ref().unwrap().token.clone();
    assert!(
        h.query_by_label_contains(&token).is_none(),
        "the token is never shown"
    );
    h.get_by_label_contains("readable only by you");
    h.get_by_role_and_label(Role::Button, "Copy token").click();
    h.step();
    let copied = h
        .output()
        .platform_output
        .commands
        .iter()
        .any(|c| matches!(c, egui::OutputCommand::CopyText(t) if *t == token));
    assert!(
        copied,
        "Copy token puts the endpoint's token on the clipboard"
    );
    clicks.button(&h, "⬆  Publish");
    wait_for(&mut h, "publishing", |a| !a.state.publish.busy);
    assert_eq!(h.state().state.publish.error, None);
    let published = h.state().state.publish.last.clone().unwrap();
    assert_eq!(
        (published.name.as_str(), published.version),
        ("seattle-weather", 1)
    );

    h.get_by_role_and_label(Role::Button, "Send test request")
        .scroll_to_me();
    h.run_steps(3);
    clicks.button(&h, "Send test request");
    wait_for(&mut h, "the test request", |a| !a.state.publish.test_busy);
    let response = h
        .state()
        .state
        .publish
        .test_response
        .clone()
        .unwrap()
        .unwrap();
    assert!(response.contains("\"outputs\""), "{response}");
    assert!(
        clicks.0 <= 8,
        "launch to a published endpoint answering took {} clicks",
        clicks.0
    );
    wait_for(&mut h, "the versions list", |a| {
        !a.state.publish.versions_busy
    });
    h.get_by_label("serving");

    // Monitor: switch request logging on, then calls from "an app" (every 5th day of the sample
    // file, 16 rows a call) show up with their latency and the drift of each input.
    h.get_by_role_and_label(Role::Button, "Monitor").click();
    wait_for(
        &mut h,
        "the live figures",
        |a| matches!(&a.state.monitor.report, Some(Ok(r)) if r.versions.contains_key("1")),
    );
    h.get_by_role_and_label(Role::Button, "All").click();
    wait_for(
        &mut h,
        "logging on",
        |a| matches!(&a.state.monitor.report, Some(Ok(r)) if r.log_sample == 1.0),
    );
    let server = env.server.as_ref().unwrap();
    let endpoint = wick_core::publish::Endpoint::new(&server.url, &server.token).unwrap();
    let manifest = wick_core::package::read_manifest(run.package.as_ref().unwrap()).unwrap();
    let df = wick_core::data::read_table(&samples_dir().join("seattle-weather.csv")).unwrap();
    let rows: Vec<usize> = (0..df.height()).step_by(5).collect();
    for chunk in rows.chunks(16) {
        let inputs: Vec<serde_json::Value> = manifest
            .inputs
            .iter()
            .map(|input| {
                let column = df.column(&input.name).unwrap().as_materialized_series().clone();
                let data: Vec<serde_json::Value> = chunk
                    .iter()
                    .map(|&r| match (column.get(r).unwrap(), input.datatype.as_str()) {
                        (wick_core::polars::prelude::AnyValue::String(s), _) => serde_json::json!(s),
                        // Text and dates go as text (a date column reads as polars dates).
                        (v, "BYTES") => serde_json::json!(v.to_string().trim_matches('"')),
                        (v, _) => serde_json::json!(v.try_extract::<f64>().unwrap()),
                    })
                    .collect();
                serde_json::json!({ "name": input.name, "shape": [chunk.len()], "datatype": input.datatype, "data": data })
            })
            .collect();
        endpoint
            .infer(
                "seattle-weather",
                None,
                &serde_json::json!({ "inputs": inputs }),
            )
            .unwrap();
    }
    let calls = rows.len().div_ceil(16) + 1;
    wait_for(
        &mut h,
        "the calls in the figures",
        |a| matches!(&a.state.monitor.report, Some(Ok(r)) if r.versions["1"].requests >= calls && !r.versions["1"].drift.is_empty()),
    );
    let report = h.state().state.monitor.report.clone().unwrap().unwrap();
    let v1 = &report.versions["1"];
    assert!(v1.latency_p50_ms.is_some() && v1.errors == 0, "{v1:?}");
    assert!(
        v1.drift.iter().all(|d| !d.drifting),
        "rows drawn across the training file do not drift: {:?}",
        v1.drift
    );
    h.get_by_label_contains("Drift from training");
    // Two refreshes draw the request history.
    let polls = h.state().state.monitor.history.len();
    wait_for(&mut h, "another refresh", |a| {
        a.state.monitor.history.len() > polls + 1
    });
    settle(&mut h);
    // Latencies and refresh times differ from run to run: the snapshot pins them (the counts and
    // drift are the run's own), and is taken before the next refresh.
    {
        let m = &mut h.state_mut().state.monitor;
        let mut report = m.report.clone().unwrap().unwrap();
        let v1 = report.versions.get_mut("1").unwrap();
        (v1.latency_p50_ms, v1.latency_p99_ms) = (Some(0.15), Some(0.35));
        m.history = (0..5)
            .map(|i| wick_ui::state::MonitorPoint {
                secs: 3.0 * i as f64,
                version: "1".into(),
                requests: (v1.requests * i / 4).max(1),
                p50_ms: Some(0.15 + 0.01 * (4 - i) as f64),
            })
            .collect();
        m.report = Some(Ok(report));
        m.asked = Some(Instant::now());
    }
    h.run_steps(3);
    h.snapshot_options("monitor", &snapshot_options());

    // Improve with live data: 12 days the app saw with a slightly different night (new rows) and 3
    // it saw as they are in the file (duplicates), each with its true temp_max as feedback.
    let one_row = |r: usize, shift: f64| -> serde_json::Value {
        let inputs: Vec<serde_json::Value> = manifest
            .inputs
            .iter()
            .map(|input| {
                let value = match (df.column(&input.name).unwrap().as_materialized_series().get(r).unwrap(), input.datatype.as_str()) {
                    (wick_core::polars::prelude::AnyValue::String(s), _) => serde_json::json!(s),
                    (v, "BYTES") => serde_json::json!(v.to_string().trim_matches('"')),
                    (v, _) if input.name == "temp_min" => serde_json::json!(v.try_extract::<f64>().unwrap() + shift),
                    (v, _) => serde_json::json!(v.try_extract::<f64>().unwrap()),
                };
                serde_json::json!({ "name": input.name, "shape": [1], "datatype": input.datatype, "data": [value] })
            })
            .collect();
        serde_json::json!({ "inputs": inputs })
    };
    let temp_max = df
        .column("temp_max")
        .unwrap()
        .as_materialized_series()
        .f64()
        .unwrap()
        .clone();
    for (i, r) in (3..df.height()).step_by(97).take(15).enumerate() {
        let answer = endpoint
            .infer(
                "seattle-weather",
                None,
                &one_row(r, if i < 12 { 0.25 } else { 0.0 }),
            )
            .unwrap();
        endpoint
            .feedback(
                "seattle-weather",
                answer["id"].as_str().unwrap(),
                &serde_json::json!(temp_max.get(r).unwrap()),
            )
            .unwrap();
    }
    h.get_by_role_and_label(Role::Button, "Get live rows with feedback")
        .scroll_to_me();
    h.run_steps(10);
    // The log reaches the store within a second: ask until every answer with feedback is there.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        h.get_by_role_and_label(Role::Button, "Get live rows with feedback")
            .click();
        wait_for(&mut h, "the live rows", |a| {
            !a.state.monitor.live.busy && a.state.monitor.live.result.is_some()
        });
        let received = match &h.state().state.monitor.live.result {
            Some(Ok(live)) => live.new.received,
            other => panic!("{:?}", other.as_ref().map(|r| r.as_ref().map(|_| ()))),
        };
        if received == 15 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{received} of 15 labelled requests reached the store"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (new_rows, duplicates) = match &h.state().state.monitor.live.result {
        Some(Ok(live)) => (live.new.frame.height(), live.new.duplicates),
        _ => unreachable!(),
    };
    assert_eq!(new_rows + duplicates, 15);
    assert!(new_rows >= 12, "{new_rows} new rows");
    h.get_by_label_contains(&format!(
        "15 logged requests have feedback: {new_rows} new rows"
    ));
    // Scrolling is animated: some frames pass before the button is under the pointer.
    h.get_by_role_and_label(Role::Button, &format!("Retrain with {new_rows} new rows"))
        .scroll_to_me();
    h.run_steps(10);
    h.get_by_role_and_label(Role::Button, &format!("Retrain with {new_rows} new rows"))
        .click();
    wait_for(&mut h, "training with the live rows", trained);
    let improved = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(
        improved.status,
        RunStatus::Finished,
        "{:?}",
        improved.status
    );
    assert_eq!(
        improved.live_rows,
        Some(wick_ui::project::LiveRowsRun {
            base_run: run.id,
            rows: new_rows
        })
    );
    assert_eq!(improved.spec, run.spec, "the same model, trained again");
    h.get_by_role_and_label(Role::Button, "Monitor").click();
    h.run_steps(3);
    h.get_by_label_contains("(same test rows)");
    let canary = format!("Publish {} as a canary (10 %)", improved.name);
    h.get_by_role_and_label(Role::Button, &canary)
        .scroll_to_me();
    h.run_steps(10);
    h.get_by_role_and_label(Role::Button, &canary).click();
    wait_for(&mut h, "the canary", |a| {
        !a.state.publish.busy
            && a.state
                .publish
                .last
                .as_ref()
                .is_some_and(|p| p.version == 2)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        h.step();
        let listing = endpoint.models().unwrap();
        let model = listing
            .iter()
            .find(|m| m.name == "seattle-weather")
            .unwrap();
        if model.traffic == Some(std::collections::BTreeMap::from([(1u64, 90u32), (2, 10)])) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no 90/10 split: {:?}",
            model.traffic
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The snapshot pins the latencies and the history, which differ from run to run.
    settle(&mut h);
    {
        let m = &mut h.state_mut().state.monitor;
        if let Some(Ok(report)) = &mut m.report {
            for f in report.versions.values_mut() {
                (f.latency_p50_ms, f.latency_p99_ms) = (Some(0.15), Some(0.35));
            }
        }
        m.history.clear();
        m.asked = Some(Instant::now());
    }
    h.run_steps(3);
    h.snapshot_options("monitor_improve", &snapshot_options());

    // The label queue: the logged calls without feedback (the app's 16-row calls and the test
    // request); a label sent from the screen is that request's feedback on the endpoint.
    h.get_by_role_and_label(Role::Button, "Get requests to label")
        .scroll_to_me();
    h.run_steps(10);
    h.get_by_role_and_label(Role::Button, "Get requests to label")
        .click();
    wait_for(&mut h, "the label queue", |a| {
        !a.state.monitor.queue.busy && a.state.monitor.queue.result.is_some()
    });
    let queue = h
        .state()
        .state
        .monitor
        .queue
        .result
        .clone()
        .unwrap()
        .unwrap();
    assert!(
        queue.requests.len() >= 5,
        "{} requests wait for a label",
        queue.requests.len()
    );
    assert!(
        queue.labels.is_empty(),
        "a regression has no classes to pick"
    );
    assert!(
        queue.requests.windows(2).all(|w| w[0].at >= w[1].at),
        "without confidences, the newest first"
    );
    let first = queue.requests[0].id.clone();
    let feedback_before: usize = endpoint
        .monitor("seattle-weather", 3600.0)
        .unwrap()
        .versions
        .values()
        .map(|f| f.feedback)
        .sum();
    let waiting = h
        .get_all_by_role_and_label(Role::Button, "Send label")
        .count();
    h.get_all_by_role_and_label(Role::Button, "Send label")
        .next()
        .unwrap()
        .click();
    wait_for(&mut h, "the label", |a| {
        matches!(a.state.monitor.queue.sent.get(&first), Some(Some(Ok(_))))
    });
    let feedback_after: usize = endpoint
        .monitor("seattle-weather", 3600.0)
        .unwrap()
        .versions
        .values()
        .map(|f| f.feedback)
        .sum();
    assert_eq!(
        feedback_after,
        feedback_before + 1,
        "the label reached the endpoint as feedback"
    );
    h.run_steps(2);
    // The sent row shows its label instead of the button ("✓ Saved" in the top bar also starts
    // with a tick, so the buttons are counted).
    assert_eq!(
        h.get_all_by_role_and_label(Role::Button, "Send label")
            .count(),
        waiting - 1,
        "the sent row has no Send label any more"
    );
}

#[test]
fn versions_roll_back_from_the_publish_screen() {
    let env = Env::new(true);
    let mut h = with_sample(&env, "Seattle weather");
    for template in ["Linear", "Ridge"] {
        h.get_by_role_and_label(Role::Button, "Model").click();
        h.run_steps(2);
        h.get_by_role_and_label(Role::Button, template).click();
        h.run_steps(2);
        h.get_by_role_and_label(Role::Button, "▶  Train").click();
        wait_for(&mut h, "training", trained);
        h.get_by_role_and_label(Role::Button, "Publish").click();
        h.run_steps(2);
        h.get_by_role_and_label(Role::Button, "⬆  Publish").click();
        wait_for(&mut h, "publishing", |a| {
            !a.state.publish.busy && !a.state.publish.versions_busy
        });
    }
    assert_eq!(
        h.state().state.publish.last.as_ref().map(|p| p.version),
        Some(2)
    );
    // The endpoint's random port shows in four places: allow for it.
    settle(&mut h);
    h.snapshot_options("publish", &SnapshotOptions::new().max_failed_pixels(2500));
    h.get_by_role_and_label(Role::Button, "Roll back to v1")
        .scroll_to_me();
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Roll back to v1")
        .click();
    h.run_steps(2);
    wait_for(&mut h, "the rollback", |a| {
        a.state
            .publish
            .versions
            .as_ref()
            .and_then(|v| v.as_ref().ok())
            .and_then(|m| m.first())
            .and_then(|m| m.default_version)
            == Some(1)
    });
    // A canary: v2 gets 10% of the calls, then is promoted, which ends the split.
    let listing = |a: &WickApp| {
        a.state
            .publish
            .versions
            .as_ref()
            .and_then(|v| v.as_ref().ok())
            .and_then(|m| m.first())
            .cloned()
    };
    h.get_by_role_and_label(Role::Button, "Canary v2 at 10%")
        .click();
    wait_for(&mut h, "the canary", |a| {
        listing(a)
            .and_then(|m| m.traffic)
            .is_some_and(|t| t == [(1, 90), (2, 10)].into_iter().collect())
    });
    h.get_by_label("canary 10%");
    h.get_by_label("serving 90%");
    h.get_by_role_and_label(Role::Button, "End canary, serve v1");
    h.get_by_role_and_label(Role::Button, "Promote v2").click();
    wait_for(&mut h, "the promotion", |a| {
        listing(a).is_some_and(|m| m.default_version == Some(2) && m.traffic.is_none())
    });
    // A canary of the older version, ended: every call goes back to the serving version, not to the
    // canary (the screen sent everything to the canary).
    h.get_by_role_and_label(Role::Button, "Canary v1 at 10%")
        .scroll_to_me();
    h.run_steps(10);
    h.get_by_role_and_label(Role::Button, "Canary v1 at 10%")
        .click();
    wait_for(&mut h, "the second canary", |a| {
        listing(a)
            .and_then(|m| m.traffic)
            .is_some_and(|t| t == [(2, 90), (1, 10)].into_iter().collect())
    });
    h.get_by_role_and_label(Role::Button, "End canary, serve v2")
        .scroll_to_me();
    h.run_steps(10);
    h.get_by_role_and_label(Role::Button, "End canary, serve v2")
        .click();
    wait_for(&mut h, "the canary's end", |a| {
        listing(a).is_some_and(|m| m.default_version == Some(2) && m.traffic.is_none())
    });
    h.get_by_role_and_label(Role::Button, "Roll back to v1");

    // A restart (a new app on the same project and endpoint) finds what was published: Publish
    // offers the test request again and Monitor watches the model.
    settle(&mut h);
    drop(h);
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    assert_eq!(
        h.state()
            .state
            .publish
            .last
            .as_ref()
            .map(|p| (p.name.as_str(), p.version)),
        Some(("seattle-weather", 2))
    );
    wait_for(&mut h, "the versions after the restart", |a| {
        !a.state.publish.versions_busy && a.state.publish.versions.is_some()
    });
    assert!(
        h.state().state.publish.last.is_some(),
        "the endpoint still has v2: {:?}",
        h.state().state.notices
    );
    h.get_by_role_and_label(Role::Button, "Publish").click();
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Send test request");
    h.get_by_role_and_label(Role::Button, "Monitor").click();
    h.run_steps(3);
    assert!(
        h.query_by_label_contains("Publish a model first").is_none(),
        "Monitor forgot the published model"
    );
    h.get_by_label("Label queue");
}

#[test]
fn classification_confusion_cells_filter_the_samples() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Breast cancer");
    assert_eq!(
        h.state().state.project.model.template,
        wick_ui::project::Template::Logistic
    );
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    settle(&mut h);
    // How long the run took differs from machine to machine: the snapshot pins it.
    h.state_mut()
        .state
        .project
        .runs
        .last_mut()
        .unwrap()
        .duration_secs = 1.5;
    h.run_steps(3);
    h.snapshot_options("train_classification", &snapshot_options());
    // The legends sit above the plots, never on a curve, and the x-axis spans the whole run.
    let epochs = h
        .state()
        .state
        .project
        .runs
        .last()
        .unwrap()
        .history
        .iter()
        .map(|m| m.epoch)
        .max()
        .unwrap() as f64;
    for (plot, legend) in [
        ("loss_plot", "validation loss"),
        ("metric_plot", "validation accuracy"),
    ] {
        let memory = egui_plot::PlotMemory::load(&h.ctx, egui::Id::unique(plot))
            .unwrap_or_else(|| panic!("{plot} was drawn"));
        let transform = memory.transform();
        let legend_rect = h.get_by_label(legend).rect();
        assert!(
            !transform.frame().intersects(legend_rect),
            "{plot}: the legend {legend_rect:?} lies on the plot {:?}",
            transform.frame()
        );
        let (min, max) = (transform.bounds().min()[0], transform.bounds().max()[0]);
        assert!(
            min <= 0.0 && max >= epochs,
            "{plot}: x from {min} to {max}, the run ran {epochs} epochs"
        );
    }
    h.get_by_role_and_label(Role::Button, "Evaluate").click();
    h.run_steps(3);
    h.get_by_label_contains("actual malignant, predicted malignant")
        .click();
    h.run_steps(2);
    assert_eq!(h.state().view.cm_filter, Some((1, 1)));
    h.get_by_label("Showing actual malignant predicted as malignant");
    settle(&mut h);
    h.snapshot_options("evaluate_classification", &snapshot_options());
    h.get_by_label("Mistakes only").scroll_to_me();
    h.run_steps(3);
    h.get_by_label("Mistakes only").click();
    h.run_steps(2);
    assert!(h.state().view.mistakes_only);

    // File → Export model as ONNX… asks the host for a .onnx path, then writes the file there.
    h.get_by_label("File").click();
    h.run_steps(2);
    h.get_by_label("Export model as ONNX…").click();
    h.run_steps(2);
    let requests = h.state_mut().take_host_requests();
    assert_eq!(
        requests,
        vec![HostRequest::PickExportPath {
            suggested_name: "breast-cancer.onnx".into()
        }]
    );
    let dest = env.dir.path().join("exported.onnx");
    h.state_mut()
        .handle_host_event(HostEvent::ExportTo(dest.clone()));
    wait_for(&mut h, "the export", |a| {
        a.state
            .notices
            .iter()
            .any(|n| n.contains("exported") || n.contains("failed"))
    });
    assert!(
        h.state()
            .state
            .notices
            .iter()
            .any(|n| n.starts_with("Model exported to")),
        "{:?}",
        h.state().state.notices
    );
    let bytes = std::fs::read(&dest).unwrap();
    assert!(
        bytes.len() > 1000 && bytes.windows(4).any(|w| w == b"wick"),
        "an ONNX file naming its producer"
    );
}

#[test]
fn images_show_thumbnails_and_a_cnn_trains_on_them() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Handwritten digits");
    assert_eq!(
        h.state().state.project.model.template,
        wick_ui::project::Template::Cnn
    );
    h.get_by_role_and_label(Role::Button, "Data").click();
    h.run_steps(2);
    h.get_by_label("Images per class");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    settle(&mut h);
    h.snapshot_options("data_images", &snapshot_options());
    h.get_by_role_and_label(Role::Button, "Model").click();
    h.state_mut().state.project.train.epochs = 3;
    h.run_steps(2);
    h.get_by_label("Conv2d 3×3 ×32");
    settle(&mut h);
    h.snapshot_options("model_cnn", &snapshot_options());
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert!(!run.step_losses.is_empty());
    // At 1,000 px the run's header wraps: *Evaluate →* stays in the window.
    h.set_size(egui::vec2(1000.0, 860.0));
    h.run_steps(3);
    let evaluate = h.get_by_role_and_label(Role::Button, "Evaluate  →").rect();
    assert!(evaluate.right() <= 1000.0, "{evaluate:?}");
    h.set_size(egui::vec2(1280.0, 860.0));
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Evaluate").click();
    h.run_steps(3);
    h.get_by_label("Mistakes only").scroll_to_me();
    h.run_steps(3);
    h.get_by_label("Mistakes only").click();
    h.run_steps(3);
    assert!(h.state().view.mistakes_only);
    h.get_by_label("Accuracy");
    // Side by side at 1,280 px; at 1,000 px the per-class table goes under the 10-class matrix
    // (it was drawn over it).
    let (matrix, table) = (
        h.get_by_label("Confusion matrix").rect(),
        h.get_by_label("Per class").rect(),
    );
    assert!(
        (matrix.top() - table.top()).abs() < 1.0,
        "{matrix:?} {table:?}"
    );
    h.set_size(egui::vec2(1000.0, 860.0));
    h.run_steps(3);
    let (matrix, table) = (
        h.get_by_label("Confusion matrix").rect(),
        h.get_by_label("Per class").rect(),
    );
    assert!(
        table.top() > matrix.top() + 200.0,
        "the table starts below the matrix: {matrix:?} {table:?}"
    );
    h.set_size(egui::vec2(1280.0, 860.0));
    h.run_steps(3);
    // Where the model looked, on every shown test image: overlays computed in the background.
    h.get_by_label("Where the model looked, on each image")
        .click();
    h.run_steps(2);
    let shown = {
        let app = h.state();
        let run = app.state.project.runs.last().unwrap();
        let mistake = |s: &&wick_core::train::TestSample| match (&s.actual, &s.predicted) {
            (
                wick_core::train::Actual::Class(a),
                wick_core::model::Prediction::Class { class_index, .. },
            ) => a != class_index,
            _ => false,
        };
        run.test_samples.iter().filter(mistake).count().min(120)
    };
    wait_for(&mut h, "the saliency overlays", |a| {
        a.state.grid_saliency.overlays.len() >= shown && a.state.grid_saliency.run.is_some()
    });
    assert!(
        h.state().state.grid_saliency.error.is_none(),
        "{:?}",
        h.state().state.grid_saliency.error
    );
    h.get_by_label("Where the model looked, on each image")
        .scroll_to_me();
    settle(&mut h);
    h.snapshot_options("evaluate_saliency_grid", &snapshot_options());
    h.get_by_label("Where the model looked, on each image")
        .click();
    h.run_steps(2);
    // Try it with an image chosen in a file dialog (the host answers the request).
    h.get_by_role_and_label(Role::Button, "Choose image…")
        .scroll_to_me();
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Choose image…")
        .click();
    h.run_steps(2);
    assert_eq!(
        h.state_mut().take_host_requests(),
        vec![HostRequest::PickTryImage]
    );
    let seven = std::fs::read_dir(samples_dir().join("digits/7"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    h.state_mut()
        .handle_host_event(HostEvent::TryImageChosen(seven));
    wait_for(&mut h, "the prediction", |a| {
        !a.state.try_it.busy && a.state.try_it.result.is_some()
    });
    let answer = h
        .state()
        .state
        .try_it
        .result
        .clone()
        .unwrap()
        .expect("a prediction for a digit image");
    assert!(answer.contains("% sure"), "{answer}");
    // Where the model looked: a toggle swaps the image for its saliency overlay.
    assert!(
        h.state().state.try_it.saliency.is_some(),
        "a CNN has a saliency map"
    );
    h.get_by_label("Show where the model looked").scroll_to_me();
    h.run_steps(3);
    h.get_by_label("Show where the model looked").click();
    h.run_steps(3);
    assert!(h.state().view.show_saliency);
    settle(&mut h);
    h.snapshot_options("try_it_saliency", &snapshot_options());
}

#[test]
fn an_impossible_layer_is_flagged_and_training_does_not_start() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Handwritten digits");
    h.state_mut().state.project.model.cnn_layers.insert(
        3,
        wick_core::model::Layer::Conv2d {
            filters: 8,
            kernel: 9,
            stride: 1,
            padding: wick_core::model::Padding::Valid,
        },
    );
    h.run_steps(3);
    h.get_by_label("⚠ invalid");
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    h.run_steps(3);
    let error = h.state().view.model_error.clone().unwrap();
    assert!(
        error.starts_with("Layer 4:") && error.contains("larger than"),
        "{error}"
    );
    assert!(
        h.state().state.project.runs.is_empty(),
        "no run starts with an invalid stack"
    );
    // Removing the bad layer fixes it.
    h.get_all_by_label("×").nth(3).unwrap().scroll_to_me();
    h.run_steps(3);
    h.get_all_by_label("×").nth(3).unwrap().click();
    h.run_steps(3);
    assert!(h.query_by_label("⚠ invalid").is_none());
}

#[test]
fn a_broken_file_shows_a_readable_error_and_a_dropped_file_opens() {
    let env = Env::new(false);
    let bad = env.dir.path().join("broken.csv");
    std::fs::write(&bad, b"").unwrap();
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    h.state_mut()
        .handle_host_event(HostEvent::OpenDataset(bad.clone()));
    h.run_steps(2);
    wait_for(&mut h, "the load to fail", |a| {
        matches!(a.state.data, DataState::Failed { .. })
    });
    h.get_by_label_contains("Could not open");
    h.get_by_label_contains("broken.csv");

    #[derive(Debug)]
    struct Dropped(PathBuf);
    impl egui::DroppedFile for Dropped {
        fn path(&self) -> &Path {
            &self.0
        }
        fn bytes(&self) -> Result<Vec<u8>, String> {
            std::fs::read(&self.0).map_err(|e| e.to_string())
        }
    }
    h.input_mut()
        .dropped_files
        .push(Arc::new(Dropped(samples_dir().join("breast-cancer.csv"))));
    h.step();
    wait_for(&mut h, "the dropped file to load", loaded);
    assert_eq!(
        h.state().state.project.model.target.as_deref(),
        Some("diagnosis")
    );
}

#[test]
fn an_unreachable_endpoint_is_reported_next_to_the_publish_button() {
    let env = Env::new(false);
    let mut app = WickApp::new(env.config());
    app.state.settings.use_remote = true;
    app.state.settings.remote_url = "http://127.0.0.1:1".into();
    app.state.settings.remote_token = "wick_nope_0".into();
    let mut h = harness(app);
    h.run_steps(3);
    h.get_by_label("Open Seattle weather").click();
    wait_for(&mut h, "the sample to load", loaded);
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, NEXT).click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    h.get_by_role_and_label(Role::Button, "Publish").click();
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "⬆  Publish").click();
    wait_for(&mut h, "publishing", |a| !a.state.publish.busy);
    let error = h.state().state.publish.error.clone().unwrap();
    assert!(error.contains("127.0.0.1:1"), "{error}");
    // Beside the button, and over the versions list, which could not be read either.
    assert!(h.get_all_by_label_contains("⚠").count() >= 1);
}

#[test]
fn the_project_is_restored_after_a_restart() {
    let env = Env::new(false);
    {
        let mut h = with_sample(&env, "Seattle weather");
        h.get_by_role_and_label(Role::Button, "Polynomial").click();
        h.run_steps(2);
        h.get_by_role_and_label(Role::Button, "▶  Train").click();
        wait_for(&mut h, "training", trained);
        wait_for(&mut h, "the save", WickApp::is_saved);
        // No flush on purpose: what the UI showed as saved must already be on disk.
    }
    let mut h = harness(WickApp::new(env.config()));
    wait_for(&mut h, "the dataset to reload", loaded);
    let app = h.state();
    assert_eq!(
        app.state.project.model.template,
        wick_ui::project::Template::Polynomial
    );
    assert_eq!(app.state.project.runs.len(), 1);
    assert_eq!(app.state.project.runs[0].status, RunStatus::Finished);
    assert!(app.state.project.runs[0]
        .package
        .as_ref()
        .unwrap()
        .join("wick.json")
        .is_file());
    assert_eq!(app.state.selected_run, Some(1));
    assert!(
        app.state.models.is_empty(),
        "nothing is loaded until a screen needs it"
    );
    h.get_by_role_and_label(Role::Button, "Evaluate").click();
    h.run_steps(3);
    h.get_by_label("R²");
    // The fit plot needs the model: a background job loads it from the package, then draws the curve.
    wait_for(&mut h, "the fit plot", |a| a.state.fit.view.is_some());
    let fit = h
        .state()
        .state
        .fit
        .view
        .clone()
        .unwrap()
        .expect("the fit is drawn from the saved package");
    assert_eq!(fit.curve.len(), 120);
    assert!(!fit.points.is_empty());
    assert!(fit
        .curve
        .iter()
        .all(|[x, y]| x.is_finite() && y.is_finite()));
    assert!(
        h.state().state.models.contains_key(&1),
        "the loaded model is kept for Try it"
    );
}

#[test]
fn a_diverging_run_says_so_on_the_train_screen() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Seattle weather");
    h.get_by_role_and_label(Role::Button, "MLP").click();
    h.run_steps(2);
    // A learning rate no network survives: the loss overflows within a few steps.
    h.state_mut().state.project.train.lr = 1e12;
    h.state_mut().state.project.train.optimizer = wick_core::train::OptimizerKind::Sgd;
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    let RunStatus::Failed(message) = &run.status else {
        panic!("expected a failed run, got {:?}", run.status)
    };
    assert!(
        message.contains("diverged") && message.contains("learning rate"),
        "{message}"
    );
    assert_eq!(h.state().state.screen, Screen::Train);
    h.get_by_label_contains("training diverged");
    assert!(
        h.state().state.training.is_none(),
        "the app is ready for another run"
    );
}

/// A final refit on every row: the run finishes without a test metric, and Evaluate says why
/// instead of pretending there is nothing to see.
#[test]
fn a_run_on_every_row_says_it_has_no_held_out_metric() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Seattle weather");
    h.state_mut().state.project.train.split = wick_core::data::SplitFractions {
        valid: 0.0,
        test: 0.0,
    };
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(
        (run.status.clone(), run.test_metrics.is_none()),
        (RunStatus::Finished, true),
        "{:?}",
        run.status
    );
    h.get_by_role_and_label(Role::Button, "Evaluate").click();
    h.run_steps(3);
    h.get_by_label_contains("trained on every row");
}

#[test]
fn boosted_trees_train_from_their_card_and_are_evaluated_like_any_model() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Seattle weather");
    // The Data screen says what training does with the date column.
    h.state_mut()
        .command(wick_ui::command::Command::GoTo(Screen::Data));
    h.run_steps(3);
    h.get_by_label_contains("`date` holds dates: it becomes year, month, day of week");
    h.state_mut()
        .command(wick_ui::command::Command::GoTo(Screen::Model));
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Boosted trees")
        .click();
    h.run_steps(3);
    assert_eq!(
        h.state().state.project.model.template,
        wick_ui::project::Template::BoostedTrees
    );
    // Trees have no epochs or learning-rate schedule to set; their own settings show instead.
    assert!(h.query_by_label("Epochs").is_none());
    h.get_by_label("Trees (at most)");
    settle(&mut h);
    h.snapshot_options("model_trees", &snapshot_options());

    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert!(
        matches!(run.spec, wick_core::model::ModelSpec::Gbdt { .. }),
        "{:?}",
        run.spec
    );
    let Some(wick_core::metrics::Metrics::Regression(m)) = run.test_metrics else {
        panic!("regression metrics expected")
    };
    assert!(m.r2 > 0.8, "r2 = {}", m.r2);
    // The curve is per tree: the validation loss of every tree grown.
    assert!(run.history.iter().filter(|p| p.name == "loss").count() > 10);

    h.get_by_role_and_label(Role::Button, "Evaluate").click();
    // The fit plot is computed in the background and moves the page when it lands.
    wait_for(&mut h, "the fit plot", |a| a.state.fit.view.is_some());
    h.get_by_label("Predicted vs actual");
    // Feature importance on the test rows: temp_min is what the day's high follows.
    wait_for(&mut h, "the importance", |a| {
        a.state.importance.view.is_some()
    });
    let importance = h
        .state()
        .state
        .importance
        .view
        .as_ref()
        .unwrap()
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(
        importance.features[0].feature, "temp_min",
        "{importance:#?}"
    );
    assert!(
        importance.features.iter().all(|f| f.split_gain.is_some()),
        "trees also show their split gain"
    );
    h.get_by_label("Share of the trees' split gain");
    h.get_by_role_and_label(Role::Button, "Predict")
        .scroll_to_me();
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Predict").click();
    wait_for(&mut h, "a prediction", |a| a.state.try_it.result.is_some());
    let prediction = h.state().state.try_it.result.clone().unwrap().unwrap();
    let value: f64 = prediction
        .parse()
        .unwrap_or_else(|_| panic!("{prediction}"));
    // The prediction's parts, TreeSHAP for boosted trees, add up to it.
    let e = h
        .state()
        .state
        .try_it
        .explanation
        .clone()
        .expect("a tree model explains its prediction");
    assert!(e.method.contains("TreeSHAP"), "{e:?}");
    let total = e.base + e.parts.iter().map(|p| p.1).sum::<f64>();
    assert!((total - value).abs() < 1e-3, "{total} vs {value}");
    h.get_by_label_contains("Why: temp_max =");
    h.get_by_label("Feature importance").scroll_to_me();
    settle(&mut h);
    h.snapshot_options("evaluate_trees", &snapshot_options());
    h.get_by_label_contains("Why: temp_max =").scroll_to_me();
    settle(&mut h);
    h.snapshot_options("try_it_contributions", &snapshot_options());
}

#[test]
fn imbalanced_classes_offer_balancing_on_the_model_screen() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Seattle weather");
    h.state_mut()
        .command(wick_ui::command::Command::SetTarget("weather".into()));
    h.run_steps(3);
    h.get_by_role_and_label(Role::Button, "Boosted trees")
        .click();
    h.run_steps(3);
    // snow has 26 days, rain 641: the warning sits beside a button that fixes it.
    h.get_by_label_contains("Classes are imbalanced");
    assert_eq!(
        h.state().state.project.train.class_weight,
        wick_core::train::ClassWeight::None
    );
    h.get_by_role_and_label(Role::Button, "Balance the classes")
        .click();
    h.run_steps(3);
    assert_eq!(
        h.state().state.project.train.class_weight,
        wick_core::train::ClassWeight::Balanced
    );
    assert!(
        h.query_by_label_contains("Classes are imbalanced")
            .is_none(),
        "the offer goes once taken"
    );
    // Cross-validate with 3 folds before the run's own model.
    h.get_by_role_and_label(Role::CheckBox, "Balance the classes")
        .scroll_to_me();
    h.run_steps(3);
    h.get_by_label("Cross-validate").click();
    h.run_steps(2);
    h.get_by_label("3 folds").click();
    h.run_steps(3);
    assert_eq!(h.state().state.project.model.cv_folds, 3);
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert_eq!(
        run.config.class_weight,
        wick_core::train::ClassWeight::Balanced,
        "the run records its weights"
    );
    let cv = run.cv.clone().expect("the run was cross-validated");
    assert_eq!((cv.folds, cv.fold_metrics.len()), (3, 3));
    h.get_by_role_and_label(Role::Button, "Evaluate").click();
    h.run_steps(4);
    h.get_by_label_contains("3-fold cross-validation: accuracy");
}

#[test]
fn find_the_best_model_shows_a_leaderboard_and_trains_the_best() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Breast cancer");
    let mut model = h.state().state.project.model.clone();
    model.search_budget_secs = 5.0;
    h.state_mut()
        .command(wick_ui::command::Command::SetModelChoice(model));
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "Find the best model")
        .click();
    h.run_steps(3);
    assert_eq!(h.state().state.screen, Screen::Train);
    h.get_by_label_contains("Trying models:");
    wait_for(&mut h, "the search", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    let board = run.leaderboard.clone().unwrap();
    assert!(
        board.len() >= 5,
        "every template at least once: {}",
        board.len()
    );
    assert!(run.name.starts_with("Run 1 · Best: "), "{}", run.name);
    assert_eq!(
        run.spec, board[0].spec,
        "the run's model is the best candidate"
    );
    assert!(
        run.test_metrics.is_some(),
        "the best is scored on the test rows"
    );
    // Sort by time with a click on the header; the fastest comes first.
    h.get_by_label("Seconds").click();
    h.run_steps(2);
    assert_eq!(
        h.state().view.leaderboard_sort,
        (wick_ui::screens::common::LeaderboardSort::Time, false)
    );
    // A second click reverses it, and the arrow turns.
    h.get_by_label("Seconds ▲").click();
    h.run_steps(2);
    assert_eq!(
        h.state().view.leaderboard_sort,
        (wick_ui::screens::common::LeaderboardSort::Time, true)
    );
    h.get_by_label("Seconds ▼");
    h.get_by_label("Validation").click();
    h.run_steps(2);
    settle(&mut h);
    // How many models fit in the budget depends on the machine, so this screen is not compared
    // with a stored image; UPDATE_SNAPSHOTS=1 refreshes the picture the README shows.
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        let image = h.render().unwrap();
        image
            .save(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screen-leaderboard.png"))
            .unwrap();
    }
    // Any row trains as a run of its own.
    let second = board[1].spec.clone();
    h.get_all_by_label("Train this one").nth(1).unwrap().click();
    wait_for(&mut h, "the second model's run", |a| {
        a.state.project.runs.len() == 2 && trained(a)
    });
    assert_eq!(h.state().state.project.runs[1].spec, second);
}

#[test]
fn a_large_csv_opens_by_streaming_and_trains_on_every_row() {
    let env = Env::new(false);
    let mut csv = String::from("x,noise,y\n");
    for i in 0..5000 {
        csv.push_str(&format!(
            "{},{},{}\n",
            i % 100,
            (i * 37) % 11,
            2 * (i % 100) + 1
        ));
    }
    let path = env.dir.path().join("large.csv");
    std::fs::write(&path, csv).unwrap();
    // "Large" here: anything over 1 KiB streams, and the frame keeps 1,000 rows.
    let config = AppConfig {
        stream_threshold_bytes: 1024,
        stream_sample_rows: 1000,
        ..env.config()
    };
    let mut h = harness(WickApp::new(config));
    h.run_steps(3);
    h.state_mut()
        .handle_host_event(HostEvent::OpenDataset(path));
    wait_for(&mut h, "the file to load", loaded);
    assert_eq!(h.state().state.sampled(), Some((1000, 5000)));
    let DataState::Loaded {
        data: wick_ui::loaded::LoadedData::Table { summary, .. },
        ..
    } = &h.state().state.data
    else {
        panic!("a table")
    };
    assert_eq!(summary.rows, 5000, "the statistics cover every row");
    h.state_mut()
        .command(wick_ui::command::Command::GoTo(Screen::Data));
    h.run_steps(3);
    h.get_by_label_contains("seeded random sample of 1000");
    h.state_mut()
        .command(wick_ui::command::Command::GoTo(Screen::Model));
    h.run_steps(2);
    h.get_by_role_and_label(Role::Button, "▶  Train").click();
    wait_for(&mut h, "training", trained);
    // The default for a numeric target is linear regression, which reads every row of the file.
    h.get_by_label_contains("Linear regression trains on every one of the file's 5000 rows");
    h.get_by_label_contains("Trained on every one of the file's 5000 rows");
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert_eq!(
        run.rows_used,
        Some(wick_core::train::RowsUsed::EveryRow { rows: 5000 })
    );
    assert!(
        run.test_samples.len() > 600,
        "tested on the file's held-out rows, not the sample's: {}",
        run.test_samples.len()
    );
}

#[test]
fn stopping_a_search_ends_it_as_stopped() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Seattle weather");
    h.get_by_role_and_label(Role::Button, "Find the best model")
        .click();
    wait_for(&mut h, "the first model of the search", |a| {
        a.state
            .project
            .runs
            .last()
            .and_then(|r| r.leaderboard.as_ref())
            .is_some_and(|b| !b.is_empty())
    });
    h.get_by_role_and_label(Role::Button, "■  Stop").click();
    wait_for(&mut h, "the search to stop", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Cancelled, "{:?}", run.status);
    assert!(
        !run.leaderboard.unwrap().is_empty(),
        "what was tried stays listed"
    );
}

#[test]
fn augmentation_is_chosen_on_the_model_screen_with_a_preview_of_what_the_network_sees() {
    let env = Env::new(false);
    let mut h = with_sample(&env, "Handwritten digits");
    h.get_by_role_and_label(Role::Button, "Model").click();
    h.run_steps(2);
    h.get_by_label("Rotate ±15°").scroll_to_me();
    h.run_steps(4);
    h.get_by_label("Rotate ±15°").click();
    wait_for(&mut h, "rotation to be on", |a| {
        a.state.project.train.augment.has("rotate")
    });
    h.get_by_label("Crop and zoom").click();
    wait_for(&mut h, "the preview", |a| {
        matches!(&a.state.augment_preview.images, Some(Ok(images)) if images.len() == 6)
            && a.state
                .augment_preview
                .augment
                .is_some_and(|x| x.has("crop"))
    });
    let augment = h.state().state.project.train.augment;
    assert!(
        augment.has("rotate") && augment.has("crop") && !augment.has("flip"),
        "{augment:?}"
    );
    let Some(Ok(images)) = &h.state().state.augment_preview.images else {
        panic!()
    };
    assert_ne!(
        images[0].pixels, images[1].pixels,
        "an augmented version differs from the image"
    );
    h.get_by_label_contains("What the network sees")
        .scroll_to_me();
    h.run_steps(4);
    settle(&mut h);
    h.snapshot_options("model_augmentation", &snapshot_options());
    // The run trains with them, and its package keeps them.
    h.state_mut().state.project.train.epochs = 1;
    h.state_mut()
        .command(wick_ui::command::Command::StartTraining);
    wait_for(&mut h, "training", trained);
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert_eq!(run.config.augment, augment);
    let manifest = wick_core::package::read_manifest(run.package.as_ref().unwrap()).unwrap();
    assert_eq!(manifest.train_config.augment, augment);
}

#[path = "../../crates/wick-core/tests/support/fake_hub.rs"]
mod fake_hub;

#[test]
fn transfer_learning_offers_hub_backbones_and_downloads_the_chosen_one_with_progress() {
    // A small photo folder: three digit classes, 12 images each.
    let env = Env::new(false);
    let data = env.dir.path().join("digits3");
    for class in ["0", "1", "7"] {
        std::fs::create_dir_all(data.join(class)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(samples_dir().join("digits").join(class))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files.iter().take(12) {
            std::fs::copy(f, data.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    let weights = env.dir.path().join("random-resnet18.safetensors");
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
    let config = AppConfig {
        hub: Some(wick_core::hub::HubClient::new(
            &hub.url,
            env.dir.path().join("hub-cache"),
        )),
        ..env.config()
    };
    let mut h = harness(WickApp::new(config));
    h.run_steps(3);
    h.state_mut()
        .handle_host_event(HostEvent::OpenDataset(data));
    wait_for(&mut h, "the folder to load", loaded);
    h.get_by_role_and_label(Role::Button, "Model").click();
    h.run_steps(2);
    h.get_by_label("Transfer learning").click();
    h.run_steps(3);
    // Each backbone with its size and input; ResNet-18 is the default.
    h.get_by_label("ResNet-50").scroll_to_me();
    h.run_steps(3);
    assert_eq!(
        h.state().state.project.model.backbone,
        wick_ui::project::BackboneChoice::Hub("resnet18".into())
    );
    h.get_by_label("MobileNetV4 small").click();
    h.run_steps(2);
    assert_eq!(
        h.state().state.project.model.backbone,
        wick_ui::project::BackboneChoice::Hub("mobilenetv4".into())
    );
    h.get_by_label("ResNet-18").click();
    h.run_steps(2);
    h.get_by_label("47 MB download");
    h.get_by_label_contains("Downloads from the Hugging Face Hub");
    settle(&mut h);
    h.snapshot_options("model_backbones", &snapshot_options());
    h.get_by_label("Fine-tune the last stage").click();
    h.run_steps(2);
    assert!(h.state().state.project.model.fine_tune);

    // Training downloads it first, with a progress line, then trains on it (its last stage too).
    h.state_mut().state.project.train.epochs = 2;
    h.state_mut()
        .command(wick_ui::command::Command::StartTraining);
    let mut saw_download = false;
    let start = Instant::now();
    while !trained(h.state()) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training did not finish"
        );
        saw_download |= h
            .state()
            .state
            .training
            .as_ref()
            .is_some_and(|t| t.download.is_some());
        h.step();
        std::thread::sleep(Duration::from_millis(5));
    }
    let run = h.state().state.project.runs.last().unwrap().clone();
    assert_eq!(run.status, RunStatus::Finished, "{:?}", run.status);
    assert!(
        saw_download || !hub.requests.lock().unwrap().is_empty(),
        "the weights came from the Hub"
    );
    let manifest = wick_core::package::read_manifest(run.package.as_ref().unwrap()).unwrap();
    let wick_core::model::ModelSpec::Transfer { backbone } = &manifest.spec else {
        panic!("{:?}", manifest.spec)
    };
    assert_eq!(
        (backbone.arch, backbone.input.height, backbone.fine_tune),
        (wick_core::model::BackboneArch::Resnet18, 224, true)
    );
    h.get_by_role_and_label(Role::Button, "Model").click();
    h.run_steps(3);
    h.get_by_label("downloaded");
}

/// A table with e-mail addresses: the Model screen (where opening lands) and the Data screen flag the
/// column and offer Keep, Hash and Drop; the choice is the project's and shapes the features.
#[test]
fn personal_columns_are_flagged_with_drop_and_hash() {
    let env = Env::new(false);
    let csv = env.dir.path().join("customers.csv");
    let mut text = String::from("email,visits,spend\n");
    for i in 0..40 {
        text.push_str(&format!(
            "customer{}@example.org,{},{}\n",
            i % 5,
            i % 9,
            (i % 5) * 10 + i % 9
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let mut h = harness(WickApp::new(env.config()));
    h.run_steps(3);
    h.state_mut().handle_host_event(HostEvent::OpenDataset(csv));
    wait_for(&mut h, "the table to load", loaded);
    assert_eq!(h.state().state.screen, Screen::Data);
    h.state_mut()
        .command(wick_ui::command::Command::GoTo(Screen::Model));
    h.run_steps(3);
    h.get_by_label("⚠ looks like e-mail addresses");
    h.get_by_label("Hash").click();
    h.run_steps(3);
    let personal = &h.state().state.project.model.personal;
    assert_eq!(
        personal.action("email"),
        Some(wick_core::data::PersonalAction::Hash)
    );
    assert_eq!(
        personal.salt.len(),
        32,
        "a salt is made with the first hashed column"
    );
    assert!(
        h.state().state.features().contains(&"email".to_string()),
        "a hashed column is still a feature"
    );
    h.state_mut()
        .command(wick_ui::command::Command::GoTo(Screen::Data));
    h.run_steps(3);
    h.get_by_label("⚠ looks like e-mail addresses");
    h.get_by_label("Drop").click();
    h.run_steps(3);
    assert_eq!(
        h.state().state.project.model.personal.action("email"),
        Some(wick_core::data::PersonalAction::Drop)
    );
    assert_eq!(
        h.state().state.features(),
        ["visits"],
        "a dropped column is not a feature"
    );
    settle(&mut h);
    h.snapshot_options("data_personal", &snapshot_options());
    h.get_by_label("Keep").click();
    h.run_steps(3);
    assert_eq!(h.state().state.project.model.personal.action("email"), None);
}
