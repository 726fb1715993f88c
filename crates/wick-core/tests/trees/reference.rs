//! Tree models against scikit-learn, and what a user relies on: the same seed gives the same
//! model, packages predict like the model that was saved, and odd inputs get an answer.
//! Included in tests/references.rs, so it shares that test binary.

use wick_core::data::{read_table, Split, TabularRequest, Task};
use wick_core::metrics::Metrics;
use wick_core::model::ModelSpec;
use wick_core::package::{load_package, save_package, TREES_FILE};
use wick_core::train::TableData;
use wick_core::train::{train_table, CancelToken, TrainConfig, TrainEvent, TrainOutcome};

use super::common;

/// Test rows: index % 5 == 0, as in reference.py; validation (early stopping): index % 5 == 1.
fn fifths(n: usize) -> Split {
    Split {
        train: (0..n).filter(|i| i % 5 > 1).collect(),
        valid: (0..n).filter(|i| i % 5 == 1).collect(),
        test: (0..n).filter(|i| i % 5 == 0).collect(),
    }
}

fn train(
    file: &str,
    target: &str,
    features: Option<&[&str]>,
    spec: &ModelSpec,
    seed: u64,
) -> TrainOutcome {
    let path = common::sample(file);
    let df = read_table(&path).unwrap();
    let config = TrainConfig {
        seed,
        fixed_split: Some(fifths(df.height())),
        ..TrainConfig::default()
    };
    let request = TabularRequest {
        target: target.into(),
        features: features.map(|f| f.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    };
    train_table(
        TableData::new(&df, &path, &request),
        spec,
        &config,
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    )
    .unwrap()
}

fn score(outcome: &TrainOutcome) -> f64 {
    match &outcome.report.test {
        Some(Metrics::Classification(m)) => m.accuracy,
        Some(Metrics::Regression(m)) => m.r2,
        None => panic!("no test metrics"),
    }
}

const WEATHER_CLASS_FEATURES: &[&str] = &["month", "precipitation", "temp_min", "wind", "temp_max"];
const WEATHER_VALUE_FEATURES: &[&str] = &["month", "precipitation", "temp_min", "wind", "weather"];

/// Reference: `OMP_NUM_THREADS=2 python crates/wick-core/tests/trees/reference.py` (scikit-learn
/// 1.9.1, defaults, `random_state=0`, categorical features native in HistGradientBoosting*):
/// each (file, target, features, HistGradientBoosting score, RandomForest score).
type Reference = (
    &'static str,
    &'static str,
    Option<&'static [&'static str]>,
    f64,
    f64,
);
const REFERENCES: &[Reference] = &[
    (
        "breast-cancer.csv",
        "diagnosis",
        None,
        0.9385964912280702,
        0.9649122807017544,
    ),
    (
        "seattle-weather.csv",
        "weather",
        Some(WEATHER_CLASS_FEATURES),
        0.6484641638225256,
        0.6621160409556314,
    ),
    (
        "seattle-weather.csv",
        "temp_max",
        Some(WEATHER_VALUE_FEATURES),
        0.8461532564790324,
        0.8377463392717681,
    ),
];

#[test]
fn boosted_trees_and_forests_are_within_two_points_of_scikit_learn() {
    let mut failures = Vec::new();
    for &(file, target, features, hgb, rf) in REFERENCES {
        for (spec, reference, name) in [
            (ModelSpec::default_gbdt(), hgb, "gbdt"),
            (ModelSpec::default_forest(), rf, "forest"),
        ] {
            let got = score(&train(file, target, features, &spec, 42));
            println!("{file} {target} {name}: {got:.4} (scikit-learn {reference:.4})");
            // Within 0.02, or better than scikit-learn.
            if got < reference - 0.02 {
                failures.push(format!(
                    "{file} {target} {name}: {got} vs scikit-learn {reference}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn the_same_seed_gives_the_same_tree_model_and_packages_predict_alike() {
    let dir = tempfile::tempdir().unwrap();
    for spec in [
        ModelSpec::default_gbdt(),
        ModelSpec::Forest {
            trees: 20,
            max_depth: None,
            min_samples_leaf: 1,
            max_features: None,
        },
    ] {
        let a = train(
            "seattle-weather.csv",
            "weather",
            Some(WEATHER_CLASS_FEATURES),
            &spec,
            7,
        );
        let b = train(
            "seattle-weather.csv",
            "weather",
            Some(WEATHER_CLASS_FEATURES),
            &spec,
            7,
        );
        let (pa, pb) = (dir.path().join("a.wick"), dir.path().join("b.wick"));
        save_package(&a.model, &a.report, "a", &pa).unwrap();
        save_package(&b.model, &b.report, "b", &pb).unwrap();
        let (ta, tb) = (
            std::fs::read(pa.join(TREES_FILE)).unwrap(),
            std::fs::read(pb.join(TREES_FILE)).unwrap(),
        );
        assert!(ta == tb, "{spec:?}: the same seed gave different trees");

        let df = read_table(&common::sample("seattle-weather.csv")).unwrap();
        let (loaded, manifest) = load_package(&pa).unwrap();
        assert_eq!(manifest.spec, spec);
        assert_eq!(
            loaded.predict_frame(&df).unwrap(),
            a.model.predict_frame(&df).unwrap(),
            "{spec:?}: the package predicts differently"
        );

        // Another seed grows another forest (the booster has no randomness without sampling).
        if matches!(spec, ModelSpec::Forest { .. }) {
            let c = train(
                "seattle-weather.csv",
                "weather",
                Some(WEATHER_CLASS_FEATURES),
                &spec,
                8,
            );
            let pc = dir.path().join("c.wick");
            save_package(&c.model, &c.report, "c", &pc).unwrap();
            assert!(
                std::fs::read(pc.join(TREES_FILE)).unwrap() != ta,
                "another seed gave the same forest"
            );
        }
    }
}

#[test]
fn tree_models_take_missing_values_and_categories_never_seen_in_training() {
    let dir = tempfile::tempdir().unwrap();
    // Every 7th precipitation is missing, and weather is text: no imputation, no one-hot.
    let mut csv = String::from("precipitation,weather,temp_max\n");
    for i in 0..300 {
        let p = if i % 7 == 0 {
            String::new()
        } else {
            format!("{}", (i % 11) as f64 * 1.5)
        };
        let w = ["rain", "sun", "fog"][i % 3];
        csv.push_str(&format!(
            "{p},{w},{}\n",
            10.0 + (i % 11) as f64 + if w == "sun" { 5.0 } else { 0.0 }
        ));
    }
    let path = common::write_temp(&dir, "weather.csv", csv.as_bytes());
    let df = read_table(&path).unwrap();
    let request = TabularRequest {
        target: "temp_max".into(),
        task: Some(Task::Regression),
        ..Default::default()
    };
    for spec in [ModelSpec::default_gbdt(), ModelSpec::default_forest()] {
        let out = train_table(
            TableData::new(&df, &path, &request),
            &spec,
            &TrainConfig::default(),
            &mut |_: TrainEvent| {},
            &CancelToken::new(),
        )
        .unwrap();
        let Some(Metrics::Regression(m)) = &out.report.test else {
            panic!("regression expected")
        };
        assert!(m.r2 > 0.9, "{spec:?}: r2 {}", m.r2);
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = vec![
            serde_json::from_str(r#"{"precipitation": null, "weather": "sun"}"#).unwrap(),
            // A category never seen in training is treated as missing.
            serde_json::from_str(r#"{"precipitation": 3.0, "weather": "snow"}"#).unwrap(),
        ];
        let p = out.model.predict_rows(&rows).unwrap();
        assert!(p.iter().all(|p| p.as_f64().is_finite()), "{p:?}");
    }
}

#[test]
fn a_feature_missing_in_every_row_is_left_out_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("empty,x,y\n");
    for i in 0..50 {
        csv.push_str(&format!(",{i},{}\n", i * 2));
    }
    let path = common::write_temp(&dir, "t.csv", csv.as_bytes());
    let df = read_table(&path).unwrap();
    let request = TabularRequest {
        target: "y".into(),
        features: Some(vec!["empty".into(), "x".into()]),
        ..Default::default()
    };
    let out = train_table(
        TableData::new(&df, &path, &request),
        &ModelSpec::default_gbdt(),
        &TrainConfig::default(),
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    )
    .unwrap();
    assert!(
        out.report
            .warnings
            .iter()
            .any(|w| w.contains("`empty` is empty")),
        "{:?}",
        out.report.warnings
    );
    // Only `empty`: nothing left to learn from, and the message says why.
    let request = TabularRequest {
        target: "y".into(),
        features: Some(vec!["empty".into()]),
        ..Default::default()
    };
    let err = train_table(
        TableData::new(&df, &path, &request),
        &ModelSpec::default_gbdt(),
        &TrainConfig::default(),
        &mut |_: TrainEvent| {},
        &CancelToken::new(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("`empty` is empty"), "{err}");
}

#[test]
fn importance_finds_the_feature_that_matters_and_contributions_add_up() {
    use wick_core::explain::{explain_row, permutation_importance};
    let df = read_table(&common::sample("seattle-weather.csv")).unwrap();
    let linear = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 2,
    };
    for spec in [
        ModelSpec::default_gbdt(),
        ModelSpec::default_forest(),
        linear,
    ] {
        let out = train(
            "seattle-weather.csv",
            "temp_max",
            Some(WEATHER_VALUE_FEATURES),
            &spec,
            42,
        );
        let a = permutation_importance(&out.model, &df, 3, 1).unwrap();
        let b = permutation_importance(&out.model, &df, 3, 1).unwrap();
        assert_eq!(a, b, "{spec:?}: the same seed gives the same importances");
        assert_eq!(
            a.features[0].feature, "temp_min",
            "{spec:?}: {:#?}",
            a.features
        );
        assert!(
            a.features[0].permutation_mean > 0.3,
            "{spec:?}: {:#?}",
            a.features
        );
        assert_eq!(
            a.features.iter().all(|f| f.split_gain.is_some()),
            spec.is_tree()
        );

        let row: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"month": 7, "precipitation": 0.0, "temp_min": 14.0, "wind": 3.1, "weather": "sun"}"#).unwrap();
        let e = explain_row(&out.model, &row)
            .unwrap()
            .expect("linear and tree models are explained");
        let predicted = out.model.predict_rows(std::slice::from_ref(&row)).unwrap()[0].as_f64();
        let total = e.base + e.parts.iter().map(|p| p.1).sum::<f64>();
        assert!(
            (total - predicted).abs() < 1e-6 * predicted.abs().max(1.0),
            "{spec:?}: {total} vs {predicted} ({e:?})"
        );
        assert_eq!(e.parts[0].0, "temp_min", "{spec:?}: {e:?}");
    }

    // A date column is five inputs (year, month, day of week, hour, days since 1970), explained and
    // ranked as one feature.
    for spec in [
        ModelSpec::default_gbdt(),
        ModelSpec::Linear {
            ridge_alpha: 0.0,
            poly_degree: 1,
        },
    ] {
        let out = train("seattle-weather.csv", "temp_max", None, &spec, 42);
        let imp = permutation_importance(&out.model, &df, 1, 1).unwrap();
        assert!(imp.features.iter().any(|f| f.feature == "date"), "{imp:#?}");
        let row: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"date": "2015-07-04", "month": 7, "precipitation": 0.0, "temp_min": 14.0, "wind": 3.1, "weather": "sun"}"#).unwrap();
        let e = explain_row(&out.model, &row).unwrap().unwrap();
        let predicted = out.model.predict_rows(std::slice::from_ref(&row)).unwrap()[0].as_f64();
        assert!(
            (e.base + e.parts.iter().map(|p| p.1).sum::<f64>() - predicted).abs()
                < 1e-6 * predicted.abs().max(1.0),
            "{spec:?}: {e:?}"
        );
        assert_eq!(e.parts.len(), 6, "{e:?}");
    }

    // Classes: the explained score is the predicted class's.
    let out = train(
        "seattle-weather.csv",
        "weather",
        Some(WEATHER_CLASS_FEATURES),
        &ModelSpec::default_gbdt(),
        42,
    );
    let row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
        r#"{"month": 1, "precipitation": 12.0, "temp_min": 4.0, "wind": 5.0, "temp_max": 9.0}"#,
    )
    .unwrap();
    let e = explain_row(&out.model, &row).unwrap().unwrap();
    let label = match &out.model.predict_rows(std::slice::from_ref(&row)).unwrap()[0] {
        wick_core::model::Prediction::Class { label, .. } => label.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(e.output, format!("score of {label}"));
    assert_eq!(e.scale, "log-odds");
}

#[test]
fn the_leaderboard_ranks_on_validation_rows_and_keeps_the_test_rows_for_the_best() {
    use wick_core::train::{search, SearchEvent};
    let path = common::sample("breast-cancer.csv");
    let df = read_table(&path).unwrap();
    let request = TabularRequest {
        target: "diagnosis".into(),
        ..Default::default()
    };
    let config = TrainConfig::default();
    let mut done = 0;
    let outcome = search(
        TableData::new(&df, &path, &request),
        &config,
        3.0,
        &mut |e| done += usize::from(matches!(e, SearchEvent::CandidateDone(_))),
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(outcome.metric, "accuracy");
    assert!(
        outcome.leaderboard.len() >= 5 && outcome.leaderboard.len() == done,
        "every template at least once: {}",
        outcome.leaderboard.len()
    );
    assert!(
        outcome
            .leaderboard
            .windows(2)
            .all(|w| w[0].valid_score >= w[1].valid_score),
        "best first"
    );
    // A candidate's score is its accuracy on the validation rows: the same spec trained on the same
    // training rows and scored on those validation rows gives it again.
    let diagnosis = df.column("diagnosis").unwrap().str().unwrap().clone();
    let usual = config
        .split_rows(df.height(), Some(&class_indices(&diagnosis)))
        .unwrap();
    let ranking = Split {
        train: usual.train.clone(),
        valid: usual.valid.clone(),
        test: usual.valid.clone(),
    };
    // Every candidate replays: networks with the learning rate and epochs they were ranked with.
    for c in &outcome.leaderboard {
        let replay_config = TrainConfig {
            fixed_split: Some(ranking.clone()),
            ..c.config(&config)
        };
        let replay = train_table(
            TableData::new(&df, &path, &request),
            &c.spec,
            &replay_config,
            &mut |_: TrainEvent| {},
            &CancelToken::new(),
        )
        .unwrap();
        assert!(
            (score(&replay) - c.valid_score).abs() < 1e-12,
            "{}: {} vs {}",
            c.name,
            score(&replay),
            c.valid_score
        );
    }
    // The best was trained again on the usual split and scored on its test rows.
    assert_eq!(outcome.best.report.rows.test, usual.test.len());
    assert!(score(&outcome.best) > 0.9);
    let err = search(
        TableData::new(&df, &path, &request),
        &config,
        0.0,
        &mut |_| {},
        &CancelToken::new(),
    )
    .err()
    .unwrap();
    assert!(err.to_string().contains("more than 0 seconds"), "{err}");
}

fn class_indices(labels: &wick_core::polars::prelude::StringChunked) -> Vec<usize> {
    let names: std::collections::BTreeSet<&str> = labels.iter().flatten().collect();
    labels
        .iter()
        .map(|v| names.iter().position(|n| Some(*n) == v).unwrap())
        .collect()
}
