//! A Wick package is readable without Wick: plain safetensors weights and a JSON manifest.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use wick_core::data::{read_table, TabularRequest};
use wick_core::model::ModelSpec;
use wick_core::package::save_package;
use wick_core::train::TableData;
use wick_core::train::{train_table, CancelToken, TrainConfig};

#[test]
fn linear_package_reads_as_plain_safetensors_and_json() {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-data/seattle-weather.csv");
    let df = read_table(&data).unwrap();
    let request = TabularRequest {
        target: "temp_max".into(),
        features: Some(vec!["temp_min".into(), "wind".into()]),
        ..Default::default()
    };
    let spec = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 1,
    };
    let out = train_table(
        TableData::new(&df, &data, &request),
        &spec,
        &TrainConfig::default(),
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pkg = dir.path().join("w.wick");
    save_package(&out.model, &out.report, "weather", &pkg).unwrap();

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(pkg.join("wick.json")).unwrap()).unwrap();
    assert_eq!(manifest["spec"]["kind"], "linear");
    assert_eq!(manifest["inputs"][0]["name"], "temp_min");
    assert_eq!(manifest["inputs"][0]["datatype"], "FP64");
    let encoders = manifest["preprocessing"]["preprocessor"]["encoders"]
        .as_array()
        .unwrap();
    let bytes = std::fs::read(pkg.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let coef = tensors.tensor("linear.coefficients").unwrap();
    assert_eq!(coef.dtype(), safetensors::Dtype::F64);
    let coef: Vec<f64> = coef
        .data()
        .chunks_exact(8)
        .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let intercept = f64::from_le_bytes(
        tensors
            .tensor("linear.intercept")
            .unwrap()
            .data()
            .try_into()
            .unwrap(),
    );

    // Predict one row by hand from the manifest's scaling and the raw weights.
    let (temp_min, wind) = (10.0, 3.0);
    let scaled: Vec<f64> = [temp_min, wind]
        .iter()
        .zip(encoders)
        .map(|(v, e)| (v - e["mean"].as_f64().unwrap()) / e["std"].as_f64().unwrap())
        .collect();
    let by_hand = intercept + scaled.iter().zip(&coef).map(|(x, c)| x * c).sum::<f64>();
    let row: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"temp_min": 10.0, "wind": 3.0}"#).unwrap();
    let wick_core::model::Prediction::Value { value } =
        out.model.predict_rows(&[row]).unwrap()[0].clone()
    else {
        panic!()
    };
    assert!((value - by_hand).abs() < 1e-9, "{value} vs {by_hand}");
}
