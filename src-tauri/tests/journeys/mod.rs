//! Journeys: what a person does in the real window, start to finish, through the native dialogs.
//! One app start per group of journeys keeps CI's time down; the second start of the same home
//! folder is the restart journey. Screenshots land in `target/journeys/` to look at.

pub mod desktop;

use std::path::Path;
use std::time::Duration;

use desktop::{read, Desktop};

fn sample(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../sample-data")
        .join(name)
        .canonicalize()
        .unwrap()
}

/// Through the native dialogs: open a CSV with File → Open (Ctrl+O), typing its path into GTK's
/// chooser as a person would; train and publish it; export it with File → Export model as ONNX…
/// through the save dialog.
#[test]
fn journey_open_through_the_file_dialog_train_and_export_onnx() {
    let mut d = Desktop::new(2);
    d.launch();
    d.key("ctrl+o");
    // A table without dates: ONNX has no date parsing, so a model that reads one does not export.
    let csv = sample("breast-cancer.csv");
    d.answer_dialog("Open a dataset", &csv, "journey-open-dialog");
    d.wait_log("rows=569", 1, Duration::from_secs(60));
    assert!(
        read(&d.log).contains("breast-cancer.csv"),
        "{}",
        read(&d.log)
    );
    d.press("Next: choose a model  →");
    d.press("▶  Train");
    d.wait_log("run finished run=1", 1, Duration::from_secs(240));
    // The UI draws the File menu itself on Linux (GTK's menu bar would paint over wgpu's surface).
    d.press("File");
    d.press("Export model as ONNX…");
    let onnx = d.home.path().join("exports/breast cancer.onnx");
    std::fs::create_dir_all(onnx.parent().unwrap()).unwrap();
    d.answer_dialog("Export the model as ONNX", &onnx, "journey-export-dialog");
    d.wait_log("model exported", 1, Duration::from_secs(60));
    let bytes = std::fs::read(&onnx).unwrap_or_default();
    assert!(
        bytes.len() > 100,
        "{} is {} bytes",
        onnx.display(),
        bytes.len()
    );
    d.screenshot("journey-exported");
    d.quit();
}

/// Publish, quit and start again: the published model is found again, on the same port. A second
/// run goes out as a canary at publish time and is promoted; three logged requests are labelled
/// on Monitor and the model retrains on them.
#[test]
fn journey_publish_restart_canary_and_label() {
    let mut d = Desktop::new(3);
    d.launch();
    d.press("Open Seattle weather");
    d.wait_log("rows=1461", 1, Duration::from_secs(60));
    // The data is shown first, and the samples stay one click away.
    d.wait_text("Samples", 10);
    d.screenshot("journey-data");
    d.press("Next: choose a model  →");
    d.press("▶  Train");
    d.wait_log("run finished run=1", 1, Duration::from_secs(240));
    d.press("Publish");
    d.press("⬆  Publish");
    d.wait_log(
        "published model=seattle-weather version=1",
        1,
        Duration::from_secs(60),
    );
    d.wait_text("seattle-weather version 1 is live", 20);
    d.screenshot("journey-published");
    d.quit();

    // --- Restart: Monitor and Publish still know the published model, on the same port.
    d.launch();
    d.press("Monitor");
    d.wait_text("Label queue", 20);
    assert!(
        !d.screen_text().contains("Publish a model first"),
        "Monitor forgot the published model:\n{}",
        d.screen_text()
    );
    let port = format!("listening addr=127.0.0.1:{}", d.port);
    assert!(
        read(&d.log).contains(&port),
        "the endpoint did not keep its port:\n{}",
        read(&d.log)
    );
    d.press("Publish");
    d.wait_text("Send test request", 20);

    // --- A second run goes out as a canary at publish time, then is promoted.
    d.press("Model");
    d.press("▶  Train");
    d.wait_log("run finished run=2", 1, Duration::from_secs(240));
    d.press("Publish");
    d.press("Publish as a canary: 10% of calls, v1 keeps the rest");
    d.press("⬆  Publish");
    d.wait_log(
        "published model=seattle-weather version=2",
        1,
        Duration::from_secs(60),
    );
    let listing = d.listing("seattle-weather");
    assert_eq!(
        listing.default_version,
        Some(1),
        "the serving version stays the default"
    );
    assert_eq!(
        listing.traffic,
        Some([(1, 90), (2, 10)].into_iter().collect()),
        "{listing:?}"
    );
    d.wait_text("serving 90%", 20);
    d.wait_text("canary 10%", 20);
    d.scroll_down(15);
    d.screenshot("journey-canary");
    d.press("Promote v2");
    desktop::wait_until("the promotion", Duration::from_secs(20), || {
        let l = d.listing("seattle-weather");
        l.default_version == Some(2) && l.traffic.is_none()
    });

    // --- Log requests, send three test requests, label them on Monitor, retrain.
    d.press("Monitor");
    d.press("All");
    desktop::wait_until("logging to start", Duration::from_secs(20), || {
        d.listing("seattle-weather").log_sample == Some(1.0)
    });
    d.press("Publish");
    for i in 1..=3 {
        d.press("Send test request");
        d.wait_log("test request answered ok=true", i, Duration::from_secs(30));
    }
    d.press("Monitor");
    // The log reaches the store within a second or two.
    let mut shown = false;
    for _ in 0..10 {
        d.press("Get requests to label");
        std::thread::sleep(Duration::from_secs(1));
        if d.screen_text().matches("Send label").count() >= 3 {
            shown = true;
            break;
        }
    }
    assert!(
        shown,
        "three requests to label did not appear:\n{}",
        d.screen_text()
    );
    for i in 1..=3 {
        d.press("Send label");
        d.wait_log("feedback sent", i, Duration::from_secs(20));
    }
    assert!(
        !read(&d.log).contains("ok=false"),
        "a label was refused:\n{}",
        read(&d.log)
    );
    d.scroll_down(15);
    d.screenshot("journey-labelled");
    d.press("Get live rows with feedback");
    d.wait_log("live rows fetched received=3", 1, Duration::from_secs(30));
    d.press("Retrain with 3 new rows");
    d.wait_log("run finished run=3", 1, Duration::from_secs(240));
    d.wait_text("3 live rows", 20);
    d.screenshot("journey-retrained");
    d.quit();
}
