//! Numbers checked against trusted references, computed once in Python and pinned here.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;
#[path = "support/fake_hub.rs"]
mod fake_hub;
#[path = "onnx/export.rs"]
mod onnx_export;
#[path = "text/encoder.rs"]
mod text_encoder;
#[path = "trees/reference.rs"]
mod trees_reference;

use wick_core::data::{read_table, Split, TabularRequest};
use wick_core::metrics::Metrics;
use wick_core::model::{fit_least_squares, ModelSpec};
use wick_core::train::TableData;
use wick_core::train::{train_table, CancelToken, TrainConfig, TrainEvent};

fn close(actual: f64, expected: f64, rel: f64) -> bool {
    (actual - expected).abs() <= rel * expected.abs().max(1e-300)
}

fn weather_xy() -> (Vec<f64>, Vec<f64>) {
    let df = read_table(&common::sample("seattle-weather.csv")).unwrap();
    let cols = ["month", "precipitation", "temp_min", "wind"];
    let mut columns = Vec::new();
    for c in cols {
        let s = df
            .column(c)
            .unwrap()
            .cast(&wick_core::polars::prelude::DataType::Float64)
            .unwrap();
        columns.push(s.f64().unwrap().into_no_null_iter().collect::<Vec<f64>>());
    }
    let n = df.height();
    let x: Vec<f64> = (0..n)
        .flat_map(|i| columns.iter().map(move |c| c[i]).collect::<Vec<_>>())
        .collect();
    let y = df
        .column("temp_max")
        .unwrap()
        .f64()
        .unwrap()
        .into_no_null_iter()
        .collect();
    (x, y)
}

#[test]
fn least_squares_on_three_points() {
    let fit = fit_least_squares(&[1.0, 2.0, 3.0], 1, &[2.0, 3.0, 5.0], 0.0).unwrap();
    assert!(close(fit.coefficients[0], 1.5, 1e-12));
    assert!(close(fit.intercept, 1.0 / 3.0, 1e-12));
}

/// Reference: numpy 2.4.6,
/// `np.linalg.lstsq(np.column_stack([X, np.ones(len(X))]), y, rcond=None)` with
/// X = seattle-weather.csv[month, precipitation, temp_min, wind], y = temp_max.
#[test]
fn least_squares_matches_numpy() {
    let (x, y) = weather_xy();
    let fit = fit_least_squares(&x, 4, &y, 0.0).unwrap();
    let expected = [
        -0.0690349434202128,
        -0.16162762442173428,
        1.2701293117631736,
        -0.27516196468412824,
    ];
    for (a, e) in fit.coefficients.iter().zip(expected) {
        assert!(close(*a, e, 1e-8), "{a} vs {e}");
    }
    assert!(
        close(fit.intercept, 7.81164652842657, 1e-8),
        "{}",
        fit.intercept
    );
}

/// Reference: scikit-learn 1.9.1, `Ridge(alpha=10.0).fit(X, y)` on the same X and y.
#[test]
fn ridge_matches_scikit_learn() {
    let (x, y) = weather_xy();
    let fit = fit_least_squares(&x, 4, &y, 10.0).unwrap();
    let expected = [
        -0.06886061127798387,
        -0.16169063839876868,
        1.2697723677356159,
        -0.274229749546433,
    ];
    for (a, e) in fit.coefficients.iter().zip(expected) {
        assert!(close(*a, e, 1e-8), "{a} vs {e}");
    }
    assert!(
        close(fit.intercept, 7.8106181846900515, 1e-8),
        "{}",
        fit.intercept
    );
}

/// Reference: scikit-learn 1.9.1 `LogisticRegression()` (L2, C=1, lbfgs) on breast-cancer.csv with
/// StandardScaler fitted on the training rows; test rows are those with index % 5 == 0 (114 rows):
/// accuracy 0.9649122807017544.
#[test]
fn logistic_regression_is_within_two_points_of_scikit_learn() {
    let path = common::sample("breast-cancer.csv");
    let df = read_table(&path).unwrap();
    let n = df.height();
    let split = Split {
        train: (0..n).filter(|i| i % 5 != 0).collect(),
        valid: Vec::new(),
        test: (0..n).filter(|i| i % 5 == 0).collect(),
    };
    let config = TrainConfig {
        epochs: 60,
        lr: 0.01,
        batch_size: 32,
        fixed_split: Some(split),
        ..TrainConfig::default()
    };
    let request = TabularRequest {
        target: "diagnosis".into(),
        ..Default::default()
    };
    let mut events = Vec::new();
    let outcome = train_table(
        TableData::new(&df, &path, &request),
        &ModelSpec::Logistic,
        &config,
        &mut |e: TrainEvent| events.push(e),
        &CancelToken::new(),
    )
    .unwrap();
    let Some(Metrics::Classification(m)) = &outcome.report.test else {
        panic!("classification expected")
    };
    let sklearn = 0.9649122807017544;
    assert_eq!(m.confusion.iter().flatten().sum::<usize>(), 114);
    assert!(
        (m.accuracy - sklearn).abs() <= 0.02,
        "accuracy {} vs scikit-learn {sklearn}",
        m.accuracy
    );
}
