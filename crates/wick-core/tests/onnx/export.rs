//! ONNX export, checked in onnxruntime: every model kind is trained on its sample data, saved,
//! exported from the package, and run by onnxruntime (with `onnx.checker`) on the raw inputs the
//! endpoint takes. Its outputs must equal Wick's within `RTOL`. Needs a Python with `onnx` and
//! `onnxruntime` (`WICK_PYTHON`, as scripts/test.sh sets).

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use tempfile::TempDir;
use wick_core::data::{index_image_folder, read_table, FeatureEncoder, ImageShape, TabularRequest};
use wick_core::export::export_package_onnx;
use wick_core::model::{
    default_cnn_layers, Activation, Backbone, BackboneArch, Layer, Model, ModelInput, ModelSpec,
    Padding, Prediction,
};
use wick_core::package::save_package;
use wick_core::polars::prelude::{DataFrame, DataType};
use wick_core::train::TableData;
use wick_core::train::{train_images, train_table, CancelToken, TrainConfig, TrainOutcome};

use crate::common;

/// The bar: outputs equal within 1e-5 relative.
const RTOL: f64 = 1e-5;
/// A transfer model runs 20 f32 convolutions of a ResNet-18 before its head, each summed in another
/// order by onnxruntime than by Wick's gemm: measured 1.5e-5 and 2.2e-5 on the worst probability.
const RTOL_TRANSFER: f64 = 5e-5;
/// Below this magnitude the error is measured absolutely (a probability of 1e-12 has no
/// meaningful relative error in f32).
const ABS_FLOOR: f64 = 1e-6;

fn python() -> String {
    let python = std::env::var("WICK_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = std::process::Command::new(&python)
        .args(["-c", "import onnx, onnxruntime"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{python} can't import onnx and onnxruntime: run scripts/test.sh, or `pip install onnx onnxruntime` and set WICK_PYTHON");
    python
}

fn config(epochs: usize) -> TrainConfig {
    TrainConfig {
        epochs,
        early_stopping_patience: None,
        ..TrainConfig::default()
    }
}

/// Saves the model, exports the package and checks the file in onnxruntime against `expected`.
fn check(
    dir: &TempDir,
    name: &str,
    out: &TrainOutcome,
    inputs: Map<String, Value>,
    expected: Map<String, Value>,
) -> Value {
    let rtol = if matches!(out.model.spec, ModelSpec::Transfer { .. }) {
        RTOL_TRANSFER
    } else {
        RTOL
    };
    let pkg = dir.path().join(format!("{name}.wick"));
    save_package(&out.model, &out.report, name, &pkg).unwrap();
    let onnx = dir.path().join(format!("{name}.onnx"));
    let summary = export_package_onnx(&pkg, &onnx).unwrap();
    assert_eq!(
        summary.bytes as u64,
        std::fs::metadata(&onnx).unwrap().len()
    );
    let case = json!({ "onnx": onnx, "inputs": inputs, "expected": expected, "rtol": rtol, "abs_floor": ABS_FLOOR });
    let case_path = dir.path().join(format!("{name}.json"));
    std::fs::write(&case_path, serde_json::to_vec(&case).unwrap()).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/onnx/check.py");
    let run = std::process::Command::new(python())
        .arg(script)
        .arg(&case_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{name}: onnxruntime disagrees with Wick:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    eprintln!("{name}: {stdout}");
    serde_json::from_str(stdout.trim()).unwrap()
}

fn expected_outputs(model: &Model, predictions: &[Prediction]) -> Map<String, Value> {
    let mut out = Map::new();
    let target = model.target.name.clone();
    match &predictions[0] {
        Prediction::Value { .. } => {
            let values: Vec<f64> = predictions.iter().map(Prediction::as_f64).collect();
            out.insert(target, json!({ "dtype": "float64", "data": values }));
        }
        Prediction::Class { .. } => {
            let (mut labels, mut probs) = (Vec::new(), Vec::new());
            for p in predictions {
                let Prediction::Class {
                    label,
                    probabilities,
                    ..
                } = p
                else {
                    panic!("mixed predictions")
                };
                labels.push(label.clone());
                probs.extend(probabilities.iter().map(|&v| v as f64));
            }
            out.insert(target, json!({ "dtype": "str", "data": labels }));
            out.insert(
                "probabilities".into(),
                json!({ "dtype": "float64", "data": probs }),
            );
        }
    }
    out
}

/// The frame's feature columns as the graph inputs: numbers (missing = NaN) and text (missing = "").
fn table_inputs(model: &Model, df: &DataFrame) -> Map<String, Value> {
    let ModelInput::Tabular { preprocessor } = &model.input else {
        panic!("not a table model")
    };
    let n = df.height();
    let mut inputs = Map::new();
    for enc in &preprocessor.encoders {
        let col = df.column(enc.name()).unwrap();
        let value = match enc {
            FeatureEncoder::Numeric { .. } | FeatureEncoder::Raw { .. } => {
                let c = col.cast(&DataType::Float64).unwrap();
                let data: Vec<Option<f64>> = c.f64().unwrap().iter().collect();
                json!({ "dtype": "float64", "shape": [n], "data": data })
            }
            // ONNX can't parse text dates: the graph takes seconds since 1970 (NaN = missing).
            FeatureEncoder::Date { .. } => {
                let c = col.cast(&DataType::String).unwrap();
                let data: Vec<Option<f64>> = c
                    .str()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        let date = wick_core::data::parse_date(v?)?;
                        Some(date.and_utc().timestamp() as f64)
                    })
                    .collect();
                json!({ "dtype": "float64", "shape": [n], "data": data })
            }
            FeatureEncoder::OneHot { .. } | FeatureEncoder::Code { .. } => {
                let c = col.cast(&DataType::String).unwrap();
                let data: Vec<String> = c
                    .str()
                    .unwrap()
                    .iter()
                    .map(|v| v.unwrap_or("").to_string())
                    .collect();
                json!({ "dtype": "str", "shape": [n], "data": data })
            }
        };
        inputs.insert(enc.name().to_string(), value);
    }
    inputs
}

/// The weather sample with some cells emptied, so the graph's imputation is exercised.
fn weather_with_gaps(dir: &TempDir) -> PathBuf {
    let text = std::fs::read_to_string(common::sample("seattle-weather.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let columns: Vec<&str> = header.split(',').collect();
    let blank: Vec<usize> = ["temp_min", "wind", "weather"]
        .iter()
        .map(|c| columns.iter().position(|h| h == c).unwrap())
        .collect();
    let mut out = vec![header.to_string()];
    for (i, line) in lines.enumerate() {
        let mut cells: Vec<&str> = line.split(',').collect();
        if i % 37 == 5 {
            cells[blank[i % blank.len()]] = "";
        }
        out.push(cells.join(","));
    }
    common::write_temp(dir, "weather-gaps.csv", out.join("\n").as_bytes())
}

fn table_case(
    dir: &TempDir,
    name: &str,
    data: &Path,
    request: &TabularRequest,
    spec: ModelSpec,
    epochs: usize,
) -> Value {
    let df = read_table(data).unwrap();
    let out = train_table(
        TableData::new(&df, data, request),
        &spec,
        &config(epochs),
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let predictions = out.model.predict_frame(&df).unwrap();
    let (inputs, expected) = (
        table_inputs(&out.model, &df),
        expected_outputs(&out.model, &predictions),
    );
    check(dir, name, &out, inputs, expected)
}

fn weather_request() -> TabularRequest {
    let features = ["month", "precipitation", "temp_min", "wind", "weather"]
        .map(String::from)
        .to_vec();
    TabularRequest {
        target: "temp_max".into(),
        features: Some(features),
        ..Default::default()
    }
}

fn cancer_request() -> TabularRequest {
    TabularRequest {
        target: "diagnosis".into(),
        ..Default::default()
    }
}

#[test]
fn linear_polynomial_and_ridge_models_run_in_onnxruntime() {
    let dir = TempDir::new().unwrap();
    let data = weather_with_gaps(&dir);
    for (name, spec) in [
        (
            "linear",
            ModelSpec::Linear {
                ridge_alpha: 0.0,
                poly_degree: 1,
            },
        ),
        (
            "polynomial",
            ModelSpec::Linear {
                ridge_alpha: 0.0,
                poly_degree: 3,
            },
        ),
        (
            "ridge",
            ModelSpec::Linear {
                ridge_alpha: 2.5,
                poly_degree: 2,
            },
        ),
    ] {
        let report = table_case(&dir, name, &data, &weather_request(), spec, 1);
        assert!(report["outputs"]["temp_max"]["max_rel"].as_f64().unwrap() <= RTOL);
    }
}

#[test]
fn logistic_and_mlp_models_run_in_onnxruntime() {
    let dir = TempDir::new().unwrap();
    let cancer = common::sample("breast-cancer.csv");
    table_case(
        &dir,
        "logistic",
        &cancer,
        &cancer_request(),
        ModelSpec::Logistic,
        5,
    );
    let mlp = ModelSpec::Mlp {
        hidden: vec![16, 8],
        activation: Activation::Gelu,
        dropout: 0.1,
    };
    let report = table_case(&dir, "mlp-classifier", &cancer, &cancer_request(), mlp, 5);
    assert_eq!(report["outputs"]["diagnosis"]["mismatches"], 0);
    // Regression through a network: the standardised target is scaled back inside the graph.
    let weather = weather_with_gaps(&dir);
    for activation in [Activation::Tanh, Activation::Silu, Activation::Sigmoid] {
        let mlp = ModelSpec::Mlp {
            hidden: vec![12],
            activation,
            dropout: 0.0,
        };
        table_case(
            &dir,
            &format!("mlp-{activation:?}"),
            &weather,
            &weather_request(),
            mlp,
            3,
        );
    }
}

/// Boosted trees and forests as `ai.onnx.ml` tree ensembles, on numbers, text codes and dates with
/// missing values. The graph's thresholds and leaf values are doubles, so every row takes the path
/// it takes in Wick: none falls on the other side of a split (a row that did would be off by a
/// whole leaf, far outside `RTOL`); only the ensemble's float32 output rounds.
#[test]
fn boosted_trees_and_forests_run_in_onnxruntime() {
    let dir = TempDir::new().unwrap();
    let weather = weather_with_gaps(&dir);
    let cancer = common::sample("breast-cancer.csv");
    // Every column of the weather sample, the date included, for its five kinds of weather.
    let kinds = TabularRequest {
        target: "weather".into(),
        ..Default::default()
    };
    let forest = ModelSpec::Forest {
        trees: 25,
        max_depth: None,
        min_samples_leaf: 1,
        max_features: None,
    };
    for (data, request) in [
        (&weather, weather_request()),
        (&cancer, cancer_request()),
        (&weather, kinds),
    ] {
        for (kind, spec) in [
            ("gbdt", ModelSpec::default_gbdt()),
            ("forest", forest.clone()),
        ] {
            let name = format!("{kind}-{}", request.target);
            let report = table_case(&dir, &name, data, &request, spec, 1);
            for (output, figures) in report["outputs"].as_object().unwrap() {
                let within = figures["max_rel"].as_f64().is_none_or(|r| r <= RTOL);
                let labels = figures["mismatches"].as_u64().is_none_or(|m| m == 0);
                assert!(within && labels, "{name} `{output}`: {figures}");
            }
        }
    }
}

/// The README's first example: `temp_max` from every column of the Seattle sample, its date
/// column included, as a linear model and a network.
#[test]
fn models_with_a_date_column_run_in_onnxruntime() {
    let dir = TempDir::new().unwrap();
    let weather = weather_with_gaps(&dir);
    let every_column = TabularRequest {
        target: "temp_max".into(),
        ..Default::default()
    };
    let linear = ModelSpec::Linear {
        ridge_alpha: 0.0,
        poly_degree: 1,
    };
    let report = table_case(&dir, "linear-dated", &weather, &every_column, linear, 1);
    assert!(report["outputs"]["temp_max"]["max_rel"].as_f64().unwrap() <= RTOL);
    let mlp = ModelSpec::Mlp {
        hidden: vec![8],
        activation: Activation::Relu,
        dropout: 0.0,
    };
    table_case(&dir, "mlp-dated", &weather, &every_column, mlp, 2);
}

/// `n` digits as the endpoint takes them: `uint8 [N, H, W, C]`, resized as a client would.
fn digit_pixels(paths: &[PathBuf], shape: ImageShape) -> Vec<u8> {
    let mut pixels = Vec::new();
    for p in paths {
        let img = image::open(p).unwrap();
        let img = img.resize_exact(
            shape.width as u32,
            shape.height as u32,
            image::imageops::FilterType::Triangle,
        );
        match shape.channels {
            1 => pixels.extend(img.to_luma8().into_raw()),
            _ => pixels.extend(img.to_rgb8().into_raw()),
        }
    }
    pixels
}

fn image_case(dir: &TempDir, name: &str, spec: ModelSpec, epochs: usize, images: usize) -> Value {
    image_case_on(dir, name, spec, epochs, images, &digits(usize::MAX, dir))
}

/// The digits sample, or every `every`-th of its images (a path,label CSV in `dir`) where a model
/// is slow to train on all 1,797.
fn digits(every: usize, dir: &TempDir) -> wick_core::data::ImageIndex {
    let all = index_image_folder(&common::sample("digits")).unwrap();
    if every == usize::MAX {
        return all;
    }
    let labels = all.classes.clone();
    let mut csv = String::from("path,label\n");
    for (path, class) in all.samples().unwrap().into_iter().step_by(every) {
        csv.push_str(&format!("{},{}\n", path.display(), labels[class]));
    }
    let path = common::write_temp(dir, "digits-subset.csv", csv.as_bytes());
    wick_core::data::index_image_csv(&path).unwrap()
}

fn image_case_on(
    dir: &TempDir,
    name: &str,
    spec: ModelSpec,
    epochs: usize,
    images: usize,
    index: &wick_core::data::ImageIndex,
) -> Value {
    let index = index.clone();
    let out = train_images(
        &index,
        &spec,
        &config(epochs),
        &mut |_| {},
        &CancelToken::new(),
    )
    .unwrap();
    let shape = out.model.image_shape().unwrap();
    let paths: Vec<PathBuf> = index
        .samples()
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .step_by(index.len() / images)
        .collect();
    let pixels = digit_pixels(&paths, shape);
    let predictions = out.model.predict_hwc_u8(&pixels, paths.len()).unwrap();
    let mut inputs = Map::new();
    let dims = [paths.len(), shape.height, shape.width, shape.channels];
    inputs.insert(
        "image".into(),
        json!({ "dtype": "uint8", "shape": dims, "data": pixels }),
    );
    check(
        dir,
        name,
        &out,
        inputs,
        expected_outputs(&out.model, &predictions),
    )
}

#[test]
fn cnn_models_run_in_onnxruntime() {
    let dir = TempDir::new().unwrap();
    let input = ImageShape {
        height: 8,
        width: 8,
        channels: 1,
    };
    image_case(
        &dir,
        "default-cnn",
        ModelSpec::Cnn {
            input,
            layers: default_cnn_layers(),
        },
        2,
        200,
    );
    // Every other layer kind: valid and strided convolutions, batch norm, average pooling, dropout.
    let layers = vec![
        Layer::Conv2d {
            filters: 6,
            kernel: 3,
            stride: 1,
            padding: Padding::Valid,
        },
        Layer::BatchNorm,
        Layer::Activation {
            function: Activation::Gelu,
        },
        Layer::Conv2d {
            filters: 8,
            kernel: 3,
            stride: 2,
            padding: Padding::Same,
        },
        Layer::Activation {
            function: Activation::Relu,
        },
        Layer::AvgPool2d { size: 2 },
        Layer::Flatten,
        Layer::Dropout { rate: 0.2 },
        Layer::Dense { units: 16 },
        Layer::BatchNorm,
        Layer::Activation {
            function: Activation::Tanh,
        },
    ];
    let input = ImageShape {
        height: 12,
        width: 12,
        channels: 1,
    };
    image_case(&dir, "cnn-layers", ModelSpec::Cnn { input, layers }, 2, 200);
}

#[test]
fn transfer_model_runs_in_onnxruntime_with_its_backbone() {
    let dir = TempDir::new().unwrap();
    let weights = common::random_resnet18(dir.path());
    let input = ImageShape {
        height: 32,
        width: 32,
        channels: 3,
    };
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::Resnet18,
            weights,
            input,
            fine_tune: false,
        },
    };
    let report = image_case(&dir, "transfer", spec, 2, 60);
    assert_eq!(report["outputs"]["label"]["mismatches"], 0, "{report}");
}

/// A MobileNetV4 backbone (random weights in the Hub file's layout, so no download): its depthwise
/// and pointwise convolutions, batch norms, layer scales and residuals in the graph.
#[test]
fn mobilenetv4_transfer_model_runs_in_onnxruntime() {
    let dir = TempDir::new().unwrap();
    let weights = dir.path().join("mobilenetv4.safetensors");
    wick_core::model::transfer::write_random_weights(BackboneArch::MobileNetV4Small, &weights)
        .unwrap();
    let spec = ModelSpec::Transfer {
        backbone: Backbone {
            arch: BackboneArch::MobileNetV4Small,
            weights,
            input: ImageShape {
                height: 32,
                width: 32,
                channels: 3,
            },
            fine_tune: false,
        },
    };
    // A twelfth of the digits: MobileNetV4 runs as candle's model, slower than the fused ResNet.
    let report = image_case_on(&dir, "mobilenetv4", spec, 2, 60, &digits(12, &dir));
    assert_eq!(report["outputs"]["label"]["mismatches"], 0, "{report}");
}
