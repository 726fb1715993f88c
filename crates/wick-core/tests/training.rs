//! Training runs end to end: events, cancellation, divergence, reproducibility, the sample digits CNN,
//! and save → load → predict giving identical outputs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::mpsc;

use tempfile::TempDir;
use wick_core::data::{index_image_folder, read_table, TabularRequest};
use wick_core::metrics::Metrics;
use wick_core::model::{default_cnn_layers, Activation, Layer, ModelSpec, Prediction};
use wick_core::package::{load_package, read_manifest, save_package};
use wick_core::train::TableData;
use wick_core::train::{
    train_csv_streamed, train_images, train_table, CancelToken, ClassWeight, RowsUsed,
    StreamOptions, TrainConfig, TrainEvent, TrainOutcome,
};
use wick_core::WickError;

fn weather(
    spec: &ModelSpec,
    config: &TrainConfig,
    events: &mut Vec<TrainEvent>,
) -> wick_core::Result<TrainOutcome> {
    let path = common::sample("seattle-weather.csv");
    let df = read_table(&path).unwrap();
    let req = TabularRequest {
        target: "temp_max".into(),
        ..Default::default()
    };
    train_table(
        TableData::new(&df, &path, &req),
        spec,
        config,
        &mut |e: TrainEvent| events.push(e),
        &CancelToken::new(),
    )
}

fn mlp() -> ModelSpec {
    ModelSpec::Mlp {
        hidden: vec![16, 8],
        activation: Activation::Relu,
        dropout: 0.1,
    }
}

#[test]
fn events_arrive_in_order_through_a_channel() {
    let (tx, rx) = mpsc::channel();
    let path = common::sample("seattle-weather.csv");
    let df = read_table(&path).unwrap();
    let req = TabularRequest {
        target: "temp_max".into(),
        ..Default::default()
    };
    let config = TrainConfig {
        epochs: 3,
        early_stopping_patience: None,
        ..TrainConfig::default()
    };
    let mut tx_observer = tx;
    train_table(
        TableData::new(&df, &path, &req),
        &mlp(),
        &config,
        &mut tx_observer,
        &CancelToken::new(),
    )
    .unwrap();
    drop(tx_observer);
    let events: Vec<TrainEvent> = rx.iter().collect();
    assert!(
        matches!(events[0], TrainEvent::Started { epochs: 3, .. }),
        "{:?}",
        events[0]
    );
    assert!(matches!(
        events.last(),
        Some(TrainEvent::Finished { epochs_run: 3, .. })
    ));
    let steps = events
        .iter()
        .filter(|e| matches!(e, TrainEvent::Step { .. }))
        .count();
    let TrainEvent::Started {
        steps_per_epoch, ..
    } = events[0]
    else {
        unreachable!()
    };
    assert_eq!(steps, 3 * steps_per_epoch);
    let valid_r2: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::Metric {
                split: wick_core::train::SplitName::Valid,
                name,
                value,
                ..
            } if name == "r2" => Some(*value),
            _ => None,
        })
        .collect();
    assert_eq!(valid_r2.len(), 3);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TrainEvent::EpochFinished { .. }))
            .count(),
        3
    );
}

#[test]
fn linear_regression_on_sample_data_fits_well() {
    let mut events = Vec::new();
    let out = weather(
        &ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        },
        &TrainConfig::default(),
        &mut events,
    )
    .unwrap();
    let Some(Metrics::Regression(m)) = &out.report.test else {
        panic!()
    };
    assert!(m.r2 > 0.8, "temp_max from temp_min etc.: r2 {}", m.r2);
    assert_eq!(out.report.test_samples.len(), out.report.rows.test);
}

#[test]
fn cancelling_stops_training() {
    let cancel = CancelToken::new();
    let path = common::sample("seattle-weather.csv");
    let df = read_table(&path).unwrap();
    let req = TabularRequest {
        target: "temp_max".into(),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let c = cancel.clone();
    let mut observer = |e: TrainEvent| {
        if matches!(e, TrainEvent::Step { step: 5, .. }) {
            c.cancel();
        }
        seen.push(e);
    };
    let err = train_table(
        TableData::new(&df, &path, &req),
        &mlp(),
        &TrainConfig::default(),
        &mut observer,
        &cancel,
    )
    .err()
    .unwrap();
    assert!(matches!(err, WickError::Cancelled));
    assert!(matches!(seen.last(), Some(TrainEvent::Cancelled)));
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, TrainEvent::Step { .. }))
            .count(),
        5
    );
}

#[test]
fn divergence_stops_with_advice() {
    let mut events = Vec::new();
    let config = TrainConfig {
        lr: 1e12,
        optimizer: wick_core::train::OptimizerKind::Sgd,
        ..TrainConfig::default()
    };
    let err = weather(&mlp(), &config, &mut events).err().unwrap();
    assert!(matches!(err, WickError::Diverged { .. }), "{err}");
    assert!(err.to_string().contains("Lower the learning rate"), "{err}");
    assert!(matches!(events.last(), Some(TrainEvent::Failed { .. })));
}

#[test]
fn same_seed_same_model_other_seed_other_model() {
    let config = TrainConfig {
        epochs: 4,
        ..TrainConfig::default()
    };
    let run = |seed| {
        let out = weather(
            &mlp(),
            &TrainConfig {
                seed,
                ..config.clone()
            },
            &mut Vec::new(),
        )
        .unwrap();
        out.report
            .test_samples
            .iter()
            .map(|s| s.predicted.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn every_optimiser_learns() {
    for optimizer in [
        wick_core::train::OptimizerKind::Sgd,
        wick_core::train::OptimizerKind::Adam,
        wick_core::train::OptimizerKind::AdamW,
    ] {
        let lr = if optimizer == wick_core::train::OptimizerKind::Sgd {
            0.01
        } else {
            3e-3
        };
        let config = TrainConfig {
            epochs: 15,
            lr,
            optimizer,
            ..TrainConfig::default()
        };
        let out = weather(&mlp(), &config, &mut Vec::new()).unwrap();
        let Some(Metrics::Regression(m)) = &out.report.test else {
            panic!()
        };
        assert!(m.r2 > 0.7, "{optimizer:?}: r2 {}", m.r2);
    }
}

fn assert_identical(a: &[Prediction], b: &[Prediction]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        match (x, y) {
            (Prediction::Value { value: v1 }, Prediction::Value { value: v2 }) => {
                assert_eq!(v1.to_bits(), v2.to_bits())
            }
            (
                Prediction::Class {
                    probabilities: p1,
                    class_index: c1,
                    ..
                },
                Prediction::Class {
                    probabilities: p2,
                    class_index: c2,
                    ..
                },
            ) => {
                assert_eq!(c1, c2);
                assert!(p1.iter().zip(p2).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
            _ => panic!("different prediction kinds"),
        }
    }
}

#[test]
fn save_load_predict_is_identical_for_tabular_models() {
    let dir = TempDir::new().unwrap();
    let path = common::sample("seattle-weather.csv");
    let df = read_table(&path).unwrap();
    let specs = [
        ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        },
        ModelSpec::Linear {
            ridge_alpha: 1.0,
            poly_degree: 3,
        },
        mlp(),
    ];
    for (i, spec) in specs.iter().enumerate() {
        let config = TrainConfig {
            epochs: 3,
            ..TrainConfig::default()
        };
        let out = weather(spec, &config, &mut Vec::new()).unwrap();
        let pkg = dir.path().join(format!("m{i}.wick"));
        save_package(&out.model, &out.report, "weather", &pkg).unwrap();
        let (loaded, manifest) = load_package(&pkg).unwrap();
        assert_eq!(manifest.spec, *spec);
        assert_eq!(manifest.dataset.rows, 1461);
        assert_eq!(manifest.seed, 42);
        assert!(pkg.join("README.md").exists());
        assert_identical(
            &out.model.predict_frame(&df).unwrap(),
            &loaded.predict_frame(&df).unwrap(),
        );
    }
    // Classification with one-hot features, predicted from JSON rows.
    let req = TabularRequest {
        target: "weather".into(),
        features: Some(vec![
            "month".into(),
            "precipitation".into(),
            "temp_min".into(),
            "temp_max".into(),
            "wind".into(),
        ]),
        ..Default::default()
    };
    let out = train_table(
        TableData::new(&df, &path, &req),
        &ModelSpec::Logistic,
        &TrainConfig {
            epochs: 5,
            ..TrainConfig::default()
        },
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let pkg = dir.path().join("weather-class.wick");
    save_package(&out.model, &out.report, "weather", &pkg).unwrap();
    let (loaded, _) = load_package(&pkg).unwrap();
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(
        r#"[{"month": 7, "precipitation": 0.0, "temp_min": 15.0, "temp_max": 30.1, "wind": 2.0},
            {"month": "1", "precipitation": 12.5, "temp_min": 2.0, "temp_max": 6.0, "wind": 5.5}]"#,
    )
    .unwrap();
    let p = loaded.predict_rows(&rows).unwrap();
    assert_identical(&out.model.predict_rows(&rows).unwrap(), &p);
    let Prediction::Class {
        label,
        probabilities,
        ..
    } = &p[0]
    else {
        panic!()
    };
    assert!(["sun", "fog", "rain", "drizzle", "snow"].contains(&label.as_str()));
    assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    let err = loaded
        .predict_rows(&serde_json::from_str::<Vec<_>>(r#"[{"month": "July"}]"#).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("`month` must be a number"), "{err}");
}

#[test]
fn saving_over_a_package_replaces_it_and_never_touches_other_files() {
    let dir = TempDir::new().unwrap();
    let out = weather(
        &ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        },
        &TrainConfig::default(),
        &mut Vec::new(),
    )
    .unwrap();
    let pkg = dir.path().join("m.wick");
    save_package(&out.model, &out.report, "first", &pkg).unwrap();
    save_package(&out.model, &out.report, "second", &pkg).unwrap();
    assert_eq!(read_manifest(&pkg).unwrap().name, "second");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temp or backup folders left: {leftovers:?}"
    );
    let precious = dir.path().join("notes");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("keep.txt"), "mine").unwrap();
    let err = save_package(&out.model, &out.report, "x", &precious)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Wick package"), "{err}");
    assert_eq!(
        std::fs::read_to_string(precious.join("keep.txt")).unwrap(),
        "mine"
    );
    // A damaged weights file is detected on load.
    std::fs::write(pkg.join("model.safetensors"), b"garbage").unwrap();
    let err = load_package(&pkg).err().unwrap().to_string();
    assert!(err.contains("damaged"), "{err}");
}

/// The default CNN on the sample digits (8×8 grey): at least 95% test accuracy, well under a minute.
#[test]
fn default_cnn_learns_the_sample_digits() {
    let index = index_image_folder(&common::sample("digits")).unwrap();
    let spec = ModelSpec::Cnn {
        input: index.default_shape(64),
        layers: default_cnn_layers(),
    };
    let config = TrainConfig {
        epochs: 15,
        lr: 2e-3,
        batch_size: 32,
        device: wick_core::train::DeviceChoice::Cpu,
        ..TrainConfig::default()
    };
    let started = std::time::Instant::now();
    let out = train_images(&index, &spec, &config, &mut |_| {}, &CancelToken::new()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let Some(Metrics::Classification(m)) = &out.report.test else {
        panic!()
    };
    assert!(m.accuracy >= 0.95, "test accuracy {}", m.accuracy);
    eprintln!(
        "digits CNN: accuracy {:.4} in {secs:.1} s, {} epochs",
        m.accuracy, out.report.epochs_run
    );

    let dir = TempDir::new().unwrap();
    let pkg = dir.path().join("digits.wick");
    save_package(&out.model, &out.report, "digits", &pkg).unwrap();
    let (loaded, manifest) = load_package(&pkg).unwrap();
    assert_eq!(manifest.inputs[0].shape, vec![-1, 8, 8, 1]);
    let paths: Vec<_> = out
        .report
        .test_samples
        .iter()
        .take(50)
        .map(|s| std::path::PathBuf::from(&s.source))
        .collect();
    assert_identical(
        &out.model.predict_image_paths(&paths).unwrap(),
        &loaded.predict_image_paths(&paths).unwrap(),
    );
}

#[test]
fn cnn_with_batchnorm_and_dropout_round_trips() {
    let index = index_image_folder(&common::sample("digits")).unwrap();
    let layers = vec![
        Layer::Conv2d {
            filters: 8,
            kernel: 3,
            stride: 1,
            padding: wick_core::model::Padding::Same,
        },
        Layer::BatchNorm,
        Layer::Activation {
            function: Activation::Relu,
        },
        Layer::AvgPool2d { size: 2 },
        Layer::Dropout { rate: 0.2 },
        Layer::Flatten,
        Layer::Dense { units: 16 },
        Layer::Activation {
            function: Activation::Gelu,
        },
    ];
    let spec = ModelSpec::Cnn {
        input: index.default_shape(64),
        layers,
    };
    let config = TrainConfig {
        epochs: 2,
        device: wick_core::train::DeviceChoice::Cpu,
        ..TrainConfig::default()
    };
    let out = train_images(&index, &spec, &config, &mut |_| {}, &CancelToken::new()).unwrap();
    let dir = TempDir::new().unwrap();
    let pkg = dir.path().join("bn.wick");
    save_package(&out.model, &out.report, "bn", &pkg).unwrap();
    let (loaded, _) = load_package(&pkg).unwrap();
    let pixels: Vec<u8> = (0..64 * 3).map(|i| (i * 7 % 256) as u8).collect();
    assert_identical(
        &out.model.predict_hwc_u8(&pixels, 3).unwrap(),
        &loaded.predict_hwc_u8(&pixels, 3).unwrap(),
    );
}

/// A final refit on every row before shipping: no held-out rows, so no test metric, said in the
/// manifest and the model card rather than invented.
#[test]
fn training_on_every_row_reports_no_held_out_metric() {
    let split = wick_core::data::SplitFractions {
        valid: 0.0,
        test: 0.0,
    };
    let config = TrainConfig {
        epochs: 2,
        split,
        ..TrainConfig::default()
    };
    for spec in [
        ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        },
        mlp(),
    ] {
        let out = weather(&spec, &config, &mut Vec::new()).unwrap();
        assert_eq!(
            (
                out.report.rows.train,
                out.report.rows.valid,
                out.report.rows.test
            ),
            (1461, 0, 0)
        );
        assert!(out.report.test.is_none() && out.report.test_samples.is_empty());
        let dir = TempDir::new().unwrap();
        let pkg = dir.path().join("all.wick");
        save_package(&out.model, &out.report, "all-rows", &pkg).unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(pkg.join("wick.json")).unwrap()).unwrap();
        assert!(manifest["metrics"].is_null(), "{}", manifest["metrics"]);
        assert!(read_manifest(&pkg).unwrap().metrics.is_none());
        let card = std::fs::read_to_string(pkg.join("README.md")).unwrap();
        assert!(card.contains("every row trained this model"), "{card}");
        let (loaded, _) = load_package(&pkg).unwrap();
        assert_eq!(
            loaded
                .predict_frame(&read_table(&common::sample("seattle-weather.csv")).unwrap())
                .unwrap()
                .len(),
            1461
        );
    }
}

/// One rare class (5 %) that overlaps the common one: without weights a model mostly ignores it;
/// balanced class weights make it find most of them, for every classifier that takes weights.
#[test]
fn balanced_class_weights_lift_the_recall_of_a_rare_class() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,z,label\n");
    let mut state = 12345u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for i in 0..2000 {
        let rare = i % 20 == 0;
        let x = if rare { 1.0 } else { 0.0 } + 1.2 * (uniform() + uniform() + uniform() - 1.5);
        csv.push_str(&format!(
            "{x},{},{}\n",
            uniform(),
            if rare { "rare" } else { "common" }
        ));
    }
    let path = common::write_temp(&dir, "rare.csv", csv.as_bytes());
    let df = wick_core::data::read_table(&path).unwrap();
    let request = wick_core::data::TabularRequest {
        target: "label".into(),
        ..Default::default()
    };
    let rare_recall = |spec: &ModelSpec, class_weight| {
        let config = TrainConfig {
            class_weight,
            epochs: 30,
            lr: 0.05,
            ..TrainConfig::default()
        };
        let out = train_table(
            TableData::new(&df, &path, &request),
            spec,
            &config,
            &mut |_: TrainEvent| {},
            &CancelToken::new(),
        )
        .unwrap();
        let Some(wick_core::metrics::Metrics::Classification(m)) = out.report.test else {
            panic!("classes expected")
        };
        m.per_class
            .iter()
            .find(|c| c.label == "rare")
            .unwrap()
            .recall
    };
    let mlp = ModelSpec::Mlp {
        hidden: vec![16],
        activation: wick_core::model::Activation::Relu,
        dropout: 0.0,
    };
    // Fully grown forest trees end in pure leaves, where weights change nothing; leaves of at least
    // 10 rows hold both classes, and there the weights count.
    let forest = ModelSpec::Forest {
        trees: 100,
        max_depth: None,
        min_samples_leaf: 10,
        max_features: None,
    };
    for spec in [ModelSpec::Logistic, mlp, ModelSpec::default_gbdt(), forest] {
        let plain = rare_recall(&spec, ClassWeight::None);
        let balanced = rare_recall(&spec, ClassWeight::Balanced);
        println!(
            "{}: rare-class recall {plain:.2} → {balanced:.2} balanced",
            spec.kind_name()
        );
        // Measured: 0.20 → 0.67, 0.20 → 0.60, 0.27 → 0.60 and 0.27 → 0.40 on the 15 rare test rows.
        assert!(
            balanced >= plain + 0.1,
            "{spec:?}: recall {plain} without weights, {balanced} balanced"
        );
    }
}

#[test]
fn cross_validation_tests_every_row_once_and_warns_about_tiny_classes() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,label\n");
    for i in 0..60 {
        // Two rows of `rare`: fewer than the 3 folds.
        let label = if i == 7 || i == 40 {
            "rare"
        } else if i % 2 == 0 {
            "even"
        } else {
            "odd"
        };
        csv.push_str(&format!("{},{label}\n", i % 2));
    }
    let path = common::write_temp(&dir, "tiny.csv", csv.as_bytes());
    let df = read_table(&path).unwrap();
    let request = TabularRequest {
        target: "label".into(),
        ..Default::default()
    };
    let config = TrainConfig::default();
    let report = wick_core::train::cross_validate(
        TableData::new(&df, &path, &request),
        &ModelSpec::default_forest(),
        &config,
        3,
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    )
    .unwrap();
    let tested: usize = report
        .fold_metrics
        .iter()
        .map(|m| match m {
            Metrics::Classification(c) => c.confusion.iter().flatten().sum::<usize>(),
            _ => 0,
        })
        .sum();
    assert_eq!(tested, 60, "every row is tested exactly once");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("class `rare` has 2 rows, fewer than the 3 folds")),
        "{:?}",
        report.warnings
    );
    let accuracy = report.stats.iter().find(|s| s.name == "accuracy").unwrap();
    assert!(accuracy.mean > 0.85, "{accuracy:?}");
    let err = wick_core::train::cross_validate(
        TableData::new(&df, &path, &request),
        &ModelSpec::default_forest(),
        &config,
        40,
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("too few for 40 folds"), "{err}");
}

// Training on every row of a file read in chunks (a large CSV); the sample data, read 4 KiB at a
// time, stands in for a file too large to load.

fn streamed(
    target: &str,
    spec: &ModelSpec,
    config: &TrainConfig,
    options: &StreamOptions,
    events: &mut Vec<TrainEvent>,
) -> wick_core::Result<TrainOutcome> {
    let path = common::sample("seattle-weather.csv");
    // The sample the file is opened with, as the Data screen draws it.
    let (_, sample) = wick_core::data::stream_csv(&path, 4096, 600, 0, &mut |_, _| {}).unwrap();
    let req = TabularRequest {
        target: target.into(),
        ..Default::default()
    };
    train_csv_streamed(
        TableData::new(&sample, &path, &req),
        spec,
        config,
        options,
        &mut |e: TrainEvent| events.push(e),
        &CancelToken::new(),
    )
}

fn small_chunks() -> StreamOptions {
    StreamOptions {
        chunk_bytes: 4096,
        sample_rows: 500,
        memory_budget_bytes: 1 << 30,
    }
}

#[test]
fn linear_regression_on_every_row_of_a_streamed_file_is_the_least_squares_fit() {
    let mut events = Vec::new();
    let every_row = TrainConfig {
        split: wick_core::data::SplitFractions {
            valid: 0.0,
            test: 0.0,
        },
        ..TrainConfig::default()
    };
    let spec = ModelSpec::Linear {
        ridge_alpha: 0.5,
        poly_degree: 2,
    };
    let out = streamed("temp_max", &spec, &every_row, &small_chunks(), &mut events).unwrap();
    assert_eq!(
        out.report.rows_used,
        Some(RowsUsed::EveryRow { rows: 1461 })
    );
    assert_eq!(out.report.rows.train, 1461);
    // The same rows, encoded by the model's own preprocessor and solved by QR in memory.
    let path = common::sample("seattle-weather.csv");
    let df = read_table(&path).unwrap();
    let wick_core::model::ModelInput::Tabular { preprocessor } = &out.model.input else {
        panic!()
    };
    let x = preprocessor.transform_frame(&df).unwrap();
    let (px, cols) = wick_core::model::polynomial_features(&x, preprocessor.width(), 2);
    let y: Vec<f64> = df
        .column("temp_max")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    let exact = wick_core::model::fit_least_squares(&px, cols, &y, 0.5).unwrap();
    let predicted = out.model.predict_frame(&df).unwrap();
    for (i, p) in predicted.iter().enumerate() {
        let want = exact.predict_row(&px[i * cols..(i + 1) * cols]);
        assert!(
            (p.as_f64() - want).abs() < 1e-6,
            "row {i}: {} vs {want}",
            p.as_f64()
        );
    }
    // Progress came pass by pass, to the end of the file, before training started.
    let reads: Vec<(u64, u64)> = events
        .iter()
        .filter_map(|e| match e {
            TrainEvent::ReadingData {
                bytes_done,
                bytes_total,
                ..
            } => Some((*bytes_done, *bytes_total)),
            _ => None,
        })
        .collect();
    assert!(reads.len() > 10, "{} chunks", reads.len());
    assert!(reads.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(reads.last().map(|r| r.0), reads.last().map(|r| r.1));
    assert!(matches!(
        events
            .iter()
            .find(|e| !matches!(e, TrainEvent::ReadingData { .. })),
        Some(TrainEvent::Started { .. })
    ));
    assert_eq!(
        out.report.dataset.sha256,
        wick_core::data::fingerprint_file(&path, 0).unwrap().sha256,
        "the hash is taken while reading"
    );
}

#[test]
fn boosted_trees_train_on_every_row_of_a_streamed_file_with_every_class() {
    let mut events = Vec::new();
    let spec = ModelSpec::default_gbdt();
    let config = TrainConfig::default();
    let out = streamed("weather", &spec, &config, &small_chunks(), &mut events).unwrap();
    assert_eq!(
        out.report.rows_used,
        Some(RowsUsed::EveryRow { rows: 1461 })
    );
    let rows = out.report.rows;
    assert_eq!(rows.train + rows.valid + rows.test, 1461);
    // The hashed split gives each held-out split about its 15%.
    for n in [rows.valid, rows.test] {
        assert!((150..=290).contains(&n), "{rows:?}");
    }
    assert_eq!(
        out.model.target.labels,
        ["drizzle", "fog", "rain", "snow", "sun"]
    );
    let Some(Metrics::Classification(m)) = &out.report.test else {
        panic!()
    };
    // In memory, on its own stratified split, the same model scores 0.83–0.86 (tests/trees).
    assert!(m.accuracy > 0.78, "accuracy {}", m.accuracy);
    assert!(out
        .report
        .test_samples
        .iter()
        .all(|s| s.source.starts_with("row ")));
    assert!(
        out.report.warnings.iter().any(|w| w.contains("`date`")),
        "the sample's note on the date column is kept: {:?}",
        out.report.warnings
    );
    // Same seed, same trees.
    let again = streamed("weather", &spec, &config, &small_chunks(), &mut Vec::new()).unwrap();
    let path = common::sample("seattle-weather.csv");
    let df = read_table(&path).unwrap();
    assert_eq!(
        out.model.predict_frame(&df).unwrap(),
        again.model.predict_frame(&df).unwrap()
    );
}

#[test]
fn past_the_memory_budget_trees_and_networks_train_on_a_stratified_sample() {
    let tiny_budget = StreamOptions {
        memory_budget_bytes: 400 * 6 * 24,
        ..small_chunks()
    };
    let mut events = Vec::new();
    let out = streamed(
        "weather",
        &ModelSpec::default_forest(),
        &TrainConfig::default(),
        &tiny_budget,
        &mut events,
    )
    .unwrap();
    let Some(RowsUsed::Sample {
        rows,
        of: 1461,
        stratified: true,
        ..
    }) = out.report.rows_used.clone()
    else {
        panic!("{:?}", out.report.rows_used)
    };
    // 240 rows of 10 encoded values fit. Each class keeps its share of 240 of 1461, but at least
    // 50 rows or all it has: drizzle 54 → 50, fog 411 → 68, rain 259 → 50, snow 23 → 23, sun 714 → 117.
    assert_eq!(rows, 308);
    let sizes = out.report.rows;
    assert_eq!(sizes.train + sizes.valid + sizes.test, rows);
    assert_eq!(
        out.model.target.labels.len(),
        5,
        "every class is in the sample"
    );
    assert!(out
        .report
        .rows_used
        .unwrap()
        .describe()
        .contains("stratified"));

    let mlp = ModelSpec::Mlp {
        hidden: vec![8],
        activation: Activation::Relu,
        dropout: 0.0,
    };
    let config = TrainConfig {
        epochs: 2,
        ..TrainConfig::default()
    };
    let out = streamed("weather", &mlp, &config, &small_chunks(), &mut Vec::new()).unwrap();
    assert!(
        matches!(
            out.report.rows_used,
            Some(RowsUsed::Sample {
                rows: 500..=560,
                of: 1461,
                stratified: true,
                ..
            })
        ),
        "{:?}",
        out.report.rows_used
    );
    // A numeric target: the opening sample, uniform, out of the file's rows (counted as it is hashed).
    let out = streamed("temp_max", &mlp, &config, &small_chunks(), &mut Vec::new()).unwrap();
    assert!(
        matches!(
            out.report.rows_used,
            Some(RowsUsed::Sample {
                rows: 500,
                of: 1461,
                stratified: false,
                ..
            })
        ),
        "{:?}",
        out.report.rows_used
    );
    let path = common::sample("seattle-weather.csv");
    assert_eq!(
        out.report.dataset.sha256,
        wick_core::data::fingerprint_file(&path, 0).unwrap().sha256
    );
}

#[test]
fn a_streamed_run_can_be_cancelled_while_it_reads() {
    let path = common::sample("seattle-weather.csv");
    let (_, sample) = wick_core::data::stream_csv(&path, 4096, 600, 0, &mut |_, _| {}).unwrap();
    let req = TabularRequest {
        target: "temp_max".into(),
        ..Default::default()
    };
    let cancel = CancelToken::new();
    let mut seen = Vec::new();
    let result = train_csv_streamed(
        TableData::new(&sample, &path, &req),
        &ModelSpec::default_gbdt(),
        &TrainConfig::default(),
        &small_chunks(),
        &mut |e: TrainEvent| {
            if matches!(e, TrainEvent::ReadingData { .. }) {
                cancel.cancel();
            }
            seen.push(e);
        },
        &cancel,
    );
    assert!(
        matches!(result, Err(WickError::Cancelled)),
        "{:?}",
        result.err()
    );
    assert!(!seen
        .iter()
        .any(|e| matches!(e, TrainEvent::Started { .. } | TrainEvent::Failed { .. })));
}

/// Augmented batches still learn the digits, the same seed gives the same model, and the settings
/// travel in the package's manifest.
#[test]
fn a_cnn_trained_on_augmented_digits_learns_and_keeps_its_augmentation_in_the_manifest() {
    let index = index_image_folder(&common::sample("digits")).unwrap();
    let spec = ModelSpec::Cnn {
        input: index.default_shape(64),
        layers: default_cnn_layers(),
    };
    // Digits are not mirror images of themselves: small rotations, crops and noise only.
    let augment = wick_core::data::Augment::from_names(["rotate", "crop", "noise"]).unwrap();
    let config = TrainConfig {
        epochs: 12,
        lr: 2e-3,
        batch_size: 32,
        augment,
        device: wick_core::train::DeviceChoice::Cpu,
        ..TrainConfig::default()
    };
    let out = train_images(&index, &spec, &config, &mut |_| {}, &CancelToken::new()).unwrap();
    let Some(Metrics::Classification(m)) = &out.report.test else {
        panic!()
    };
    assert!(m.accuracy >= 0.9, "test accuracy {}", m.accuracy);
    let again = train_images(
        &index,
        &spec,
        &TrainConfig {
            epochs: 2,
            ..config.clone()
        },
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let twice = train_images(
        &index,
        &spec,
        &TrainConfig {
            epochs: 2,
            ..config.clone()
        },
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let pixels: Vec<u8> = (0..64 * 4).map(|i| (i * 13 % 256) as u8).collect();
    assert_identical(
        &again.model.predict_hwc_u8(&pixels, 4).unwrap(),
        &twice.model.predict_hwc_u8(&pixels, 4).unwrap(),
    );
    let dir = TempDir::new().unwrap();
    let pkg = dir.path().join("aug.wick");
    save_package(&out.model, &out.report, "aug", &pkg).unwrap();
    let manifest = read_manifest(&pkg).unwrap();
    assert_eq!(manifest.train_config.augment, augment);
    // A strength out of range is refused before any image is read.
    let bad = TrainConfig {
        augment: wick_core::data::Augment {
            rotate_degrees: 500.0,
            ..augment
        },
        ..config
    };
    let err = train_images(&index, &spec, &bad, &mut |_| {}, &CancelToken::new())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("rotate_degrees"), "{err}");
}

/// Personal columns: a dropped one is never a feature, a hashed one trains on its hashes, and
/// prediction from raw rows (frame, JSON rows, tensors' columns) hashes them the same way, so the
/// saved package predicts like the model in memory; ONNX export refuses the hashed feature.
#[test]
fn personal_columns_are_dropped_or_hashed_in_training_and_prediction() {
    use wick_core::data::{PersonalAction, PersonalData, RawColumn};
    let n = 120;
    let emails: Vec<String> = (0..n)
        .map(|i| format!("user{}@example.com", i % 6))
        .collect();
    let names: Vec<String> = (0..n).map(|i| format!("Person {}", i)).collect();
    let x: Vec<f64> = (0..n).map(|i| (i % 10) as f64).collect();
    // y depends on which of 6 addresses a row has: only a hashed (not dropped) column can learn it.
    let y: Vec<f64> = (0..n)
        .map(|i| (i % 6) as f64 * 3.0 + (i % 10) as f64 * 0.1)
        .collect();
    use polars::prelude::*;
    let df = df!("email" => &emails, "name" => &names, "x" => &x, "y" => &y).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("people.csv");
    std::fs::write(&source, "email,name,x,y\n").unwrap();
    let mut personal = PersonalData::default();
    personal.set("email", Some(PersonalAction::Hash));
    personal.set("name", Some(PersonalAction::Drop));
    let request = TabularRequest {
        target: "y".into(),
        features: Some(vec!["email".into(), "name".into(), "x".into()]),
        personal: personal.clone(),
        ..Default::default()
    };
    let spec = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 1,
    };
    let out = train_table(
        TableData::new(&df, &source, &request),
        &spec,
        &TrainConfig::default(),
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    )
    .unwrap();
    let wick_core::model::ModelInput::Tabular { preprocessor } = &out.model.input else {
        panic!("a table model")
    };
    let names_used: Vec<&str> = preprocessor.encoders.iter().map(|e| e.name()).collect();
    assert_eq!(
        names_used,
        ["email", "x"],
        "the dropped column is not a feature"
    );
    let wick_core::data::FeatureEncoder::OneHot { categories, .. } = &preprocessor.encoders[0]
    else {
        panic!("email one-hot")
    };
    assert!(
        categories.iter().all(|c| c.len() == 16 && !c.contains('@')),
        "categories are hashes: {categories:?}"
    );
    assert!(categories.contains(&personal.hash_value("user3@example.com")));
    assert!(out
        .report
        .warnings
        .iter()
        .any(|w| w.contains("`name`") && w.contains("personal")));
    // Raw addresses in, the hashed model's answer out, on each prediction path.
    let from_frame = out.model.predict_frame(&df.head(Some(12))).unwrap();
    let rows: Vec<serde_json::Map<String, serde_json::Value>> = (0..12)
        .map(|i| {
            serde_json::json!({"email": emails[i], "x": x[i]})
                .as_object()
                .unwrap()
                .clone()
        })
        .collect();
    let from_rows = out.model.predict_rows(&rows).unwrap();
    let columns = [
        RawColumn::Text(emails[..12].iter().cloned().map(Some).collect()),
        RawColumn::Numeric(x[..12].iter().copied().map(Some).collect()),
    ];
    let from_columns = out.model.predict_columns(&columns, 12).unwrap();
    assert_eq!(from_frame, from_rows);
    assert_eq!(from_frame, from_columns);
    for (i, p) in from_frame.iter().enumerate() {
        assert!(
            (p.as_f64() - y[i]).abs() < 1e-6,
            "row {i}: {} vs {}",
            p.as_f64(),
            y[i]
        );
    }
    // The package keeps the choice and the salt, and predicts the same.
    let pkg = dir.path().join("people.wick");
    save_package(&out.model, &out.report, "people", &pkg).unwrap();
    let (loaded, _) = load_package(&pkg).unwrap();
    assert_eq!(
        loaded.predict_frame(&df.head(Some(12))).unwrap(),
        from_frame
    );
    let manifest = std::fs::read_to_string(pkg.join(wick_core::package::MANIFEST_FILE)).unwrap();
    assert!(manifest.contains(&personal.salt) && manifest.contains("\"drop\""));
    assert!(
        !manifest.contains("user3@example.com"),
        "no raw address in the manifest"
    );
    let err = wick_core::export::export_package_onnx(&pkg, &dir.path().join("people.onnx"))
        .unwrap_err()
        .to_string();
    // It says where the salt is, for a caller who would hash before calling.
    assert!(
        err.contains("`email`") && err.contains("SHA-256") && err.contains("personal.salt"),
        "{err}"
    );
    // The target can't be personal data.
    let bad = TabularRequest {
        target: "email".into(),
        personal,
        ..Default::default()
    };
    let Err(err) = train_table(
        TableData::new(&df, &source, &bad),
        &spec,
        &TrainConfig::default(),
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    ) else {
        panic!("a personal target trained")
    };
    let err = err.to_string();
    assert!(err.contains("`email`") && err.contains("personal"), "{err}");
}
