//! A Wick model as an ONNX graph: the same preprocessing, layers and output decoding as
//! [`Model`]'s own prediction path, in the same precision (f64 where Wick computes in f64).

use candle_core::Tensor;

use super::graph::{attr_float, attr_int, attr_ints, Dim, GraphBuilder};
use super::onnx_proto::tensor_proto::DataType;
use super::trees::{tree_ensemble, TreeOutput};
use crate::data::{FeatureEncoder, ImageShape, Preprocessor, Task};
use crate::error::{Result, WickError};
use crate::model::spec::{conv_padding, Activation, BackboneArch, Layer};
use crate::model::transfer::{FoldedConv, FrozenBackbone, IMAGENET_MEAN, IMAGENET_STD};
use crate::model::{LinearFit, Model, ModelInput, ModelSpec, Network, TargetInfo, Weights};

/// Batch norm's epsilon in Wick's networks.
const BN_EPS: f32 = 1e-5;

/// Writes the whole model into `g`: inputs as the endpoint takes them, outputs as it answers.
pub fn lower_model(g: &mut GraphBuilder, model: &Model) -> Result<()> {
    if let ModelInput::Tabular { preprocessor } = &model.input {
        // ONNX has no SHA-256 operator: a graph fed raw values could not hash them as training did.
        if let Some(e) = preprocessor
            .encoders
            .iter()
            .find(|e| preprocessor.personal.is_hashed(e.name()))
        {
            return Err(WickError::Export(format!(
                "feature `{}` is personal data that the model sees hashed (the first 16 hex digits of SHA-256 over the salt, a zero byte and the value; the salt is `preprocessing.preprocessor.personal.salt` in the package's wick.json), and ONNX has no SHA-256 operator to hash it inside the graph, so the export is refused. Train without the column (or with it dropped instead of hashed) to export, or serve the model with wick-serve, which hashes as training did",
                e.name()
            )));
        }
    }
    match (&model.input, &model.weights) {
        (ModelInput::Tabular { preprocessor }, Weights::Trees(trees)) => {
            let x = tree_input(g, preprocessor)?;
            match tree_ensemble(g, trees, &x)? {
                TreeOutput::Value(y) => regression_output(g, &model.target, &y),
                TreeOutput::Probabilities(p) => class_output(g, &model.target, &p),
            }
        }
        (ModelInput::Image { .. }, Weights::Trees(_)) => {
            return Err(WickError::Export(
                "the package pairs image input with a tree model, which Wick never trains".into(),
            ))
        }
        (ModelInput::Tabular { preprocessor }, Weights::Linear(fit)) => {
            let degree = match model.spec {
                ModelSpec::Linear { poly_degree, .. } => poly_degree,
                _ => 1,
            };
            let x = tabular_input(g, preprocessor)?;
            let y = linear(g, fit, &x, degree);
            regression_output(g, &model.target, &y);
        }
        (ModelInput::Tabular { preprocessor }, Weights::Network(net)) => {
            let x = tabular_input(g, preprocessor)?;
            let x = g.op("Cast", &[&x], vec![attr_int("to", DataType::Float as i64)]);
            let y = network(g, net, &x)?;
            network_output(g, &model.target, &y);
        }
        (ModelInput::Image { shape }, Weights::Network(net)) => {
            let x = image_input(g, *shape);
            let y = network(g, net, &x)?;
            network_output(g, &model.target, &y);
        }
        (ModelInput::Image { shape }, Weights::Transfer { backbone, head }) => {
            let x = image_input(g, *shape);
            let features = match backbone.arch() {
                BackboneArch::MobileNetV4Small => mobilenetv4_small(g, backbone, &x)?,
                _ => resnet(g, backbone, &x)?,
            };
            let y = network(g, head, &features)?;
            network_output(g, &model.target, &y);
        }
        (ModelInput::Tabular { .. }, Weights::Transfer { .. })
        | (ModelInput::Image { .. }, Weights::Linear(_)) => {
            return Err(WickError::Export(
                "the package pairs an input kind with a model kind Wick never trains together"
                    .into(),
            ))
        }
    }
    Ok(())
}

/// One input per feature column, named as the column: numbers as `double [N]`, text as
/// `string [N]`. NaN (numbers) and `""` (text) are missing values and get the training fill value,
/// as an empty CSV cell does. Returns the encoded `double [N, width]` matrix.
fn tabular_input(g: &mut GraphBuilder, pre: &Preprocessor) -> Result<String> {
    let axis1 = g.i64s("axis1", &[1], &[1]);
    let mut blocks = Vec::new();
    for enc in &pre.encoders {
        match enc {
            FeatureEncoder::Numeric { name, fill, mean, std } => {
                let x = g.input(name, DataType::Double, &[Dim::Batch]);
                let x = g.op("Unsqueeze", &[&x, &axis1], vec![]);
                let missing = g.op("IsNaN", &[&x], vec![]);
                let fill = g.f64s("fill", &[1], &[*fill]);
                let x = g.op("Where", &[&missing, &fill, &x], vec![]);
                let mean = g.f64s("mean", &[1], &[*mean]);
                let std = g.f64s("std", &[1], &[*std]);
                let x = g.op("Sub", &[&x, &mean], vec![]);
                blocks.push(g.op("Div", &[&x, &std], vec![]));
            }
            FeatureEncoder::OneHot { name, categories, fill } => {
                let x = g.input(name, DataType::String, &[Dim::Batch]);
                let x = g.op("Unsqueeze", &[&x, &axis1], vec![]);
                let empty = g.strings("empty", &[1], &[String::new()]);
                let missing = g.op("Equal", &[&x, &empty], vec![]);
                let fill = g.strings("fill", &[1], std::slice::from_ref(fill));
                let x = g.op("Where", &[&missing, &fill, &x], vec![]);
                // [N, 1] == [K] broadcasts to [N, K]; an unseen category encodes as all zeros.
                let cats = g.strings("categories", &[categories.len()], categories);
                let hot = g.op("Equal", &[&x, &cats], vec![]);
                blocks.push(g.op("Cast", &[&hot], vec![attr_int("to", DataType::Double as i64)]));
            }
            FeatureEncoder::Raw { name } | FeatureEncoder::Code { name, .. } => {
                return Err(WickError::Export(format!(
                    "`{name}` has the tree encoding in a model that is not a tree model; retrain the model"
                )))
            }
            FeatureEncoder::Date { name, scale } => {
                // Each part as a number is: missing gets the training fill, then standardised.
                let parts = date_parts(g, name);
                let column = |i: usize| scale.iter().map(move |s| [s.0, s.1, s.2][i]);
                let (fill, mean, std): (Vec<f64>, Vec<f64>, Vec<f64>) =
                    (column(0).collect(), column(1).collect(), column(2).collect());
                let missing = g.op("IsNaN", &[&parts], vec![]);
                let fill = g.f64s("date_fill", &[fill.len()], &fill);
                let x = g.op("Where", &[&missing, &fill, &parts], vec![]);
                let mean = g.f64s("date_mean", &[mean.len()], &mean);
                let std = g.f64s("date_std", &[std.len()], &std);
                let x = g.op("Sub", &[&x, &mean], vec![]);
                blocks.push(g.op("Div", &[&x, &std], vec![]));
            }
        }
    }
    let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
    Ok(g.op("Concat", &refs, vec![attr_int("axis", 1)]))
}

/// The tree encoding as `double [N, F]`: numbers as they are, text as its index among the sorted
/// categories, dates as their five parts; NaN wherever a value is missing or (text) unseen in
/// training, as [`Preprocessor::transform`] does for trees.
fn tree_input(g: &mut GraphBuilder, pre: &Preprocessor) -> Result<String> {
    let axis1 = g.i64s("axis1", &[1], &[1]);
    let mut blocks = Vec::new();
    for enc in &pre.encoders {
        match enc {
            FeatureEncoder::Raw { name } => {
                let x = g.input(name, DataType::Double, &[Dim::Batch]);
                blocks.push(g.op("Unsqueeze", &[&x, &axis1], vec![]));
            }
            FeatureEncoder::Code { name, categories } => {
                let x = g.input(name, DataType::String, &[Dim::Batch]);
                let x = g.op("Unsqueeze", &[&x, &axis1], vec![]);
                // [N, 1] == [K] is one-hot; its product with 0..K is the code, its sum whether
                // the value is a category at all ("" and unseen values are not).
                let cats = g.strings("categories", &[categories.len()], categories);
                let hot = g.op("Equal", &[&x, &cats], vec![]);
                let hot = g.op(
                    "Cast",
                    &[&hot],
                    vec![attr_int("to", DataType::Double as i64)],
                );
                let codes: Vec<f64> = (0..categories.len()).map(|i| i as f64).collect();
                let codes = g.f64s("codes", &[codes.len(), 1], &codes);
                let code = g.op("MatMul", &[&hot, &codes], vec![]);
                let found = g.op("ReduceSum", &[&hot, &axis1], vec![attr_int("keepdims", 1)]);
                let half = g.f64s("half", &[1], &[0.5]);
                let found = g.op("Greater", &[&found, &half], vec![]);
                let nan = g.f64s("nan", &[1], &[f64::NAN]);
                blocks.push(g.op("Where", &[&found, &code, &nan], vec![]));
            }
            FeatureEncoder::Date { name, .. } => blocks.push(date_parts(g, name)),
            FeatureEncoder::Numeric { name, .. } | FeatureEncoder::OneHot { name, .. } => {
                return Err(WickError::Export(format!(
                    "`{name}` is encoded for a network in a tree model; retrain the model"
                )))
            }
        }
    }
    let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
    Ok(g.op("Concat", &refs, vec![attr_int("axis", 1)]))
}

/// A date column's input, `double [N]` seconds since 1970-01-01T00:00:00 (UTC, or the date-time as
/// written when it has no zone; NaN = missing), as its [`crate::data::DATE_PARTS`], `double [N, 5]`:
/// year, month, day of the week (Monday 0), hour and fractional days since 1970, as
/// [`crate::data::date_parts`] reads an ISO date. ONNX can't parse text dates, so the caller passes
/// the time stamp (`datetime.timestamp()`); the calendar is worked out here with Howard Hinnant's
/// days-to-civil algorithm, in exact integer arithmetic on doubles.
fn date_parts(g: &mut GraphBuilder, name: &str) -> String {
    let axis1 = g.i64s("axis1", &[1], &[1]);
    let secs = g.input(name, DataType::Double, &[Dim::Batch]);
    let secs = g.op("Unsqueeze", &[&secs, &axis1], vec![]);
    let mut c = |v: f64| g.f64s("date_const", &[1], &[v]);
    let (c86400, c3600, c3, c7, c719468, c146097, c1460, c36524, c146096, c365, c4, c100, c400) = (
        c(86_400.0),
        c(3_600.0),
        c(3.0),
        c(7.0),
        c(719_468.0),
        c(146_097.0),
        c(1_460.0),
        c(36_524.0),
        c(146_096.0),
        c(365.0),
        c(4.0),
        c(100.0),
        c(400.0),
    );
    let (c5, c2, c153, c10, c12) = (c(5.0), c(2.0), c(153.0), c(10.0), c(12.0));
    let div_floor = |g: &mut GraphBuilder, a: &str, b: &str| {
        let q = g.op("Div", &[a, b], vec![]);
        g.op("Floor", &[&q], vec![])
    };
    let days = g.op("Div", &[&secs, &c86400], vec![]);
    let day = g.op("Floor", &[&days], vec![]);
    // Hour of the day.
    let day_secs = g.op("Mul", &[&day, &c86400], vec![]);
    let in_day = g.op("Sub", &[&secs, &day_secs], vec![]);
    let hour = div_floor(g, &in_day, &c3600);
    // 1970-01-01 was a Thursday (3 with Monday 0).
    let shifted = g.op("Add", &[&day, &c3], vec![]);
    let weeks = div_floor(g, &shifted, &c7);
    let week_days = g.op("Mul", &[&weeks, &c7], vec![]);
    let weekday = g.op("Sub", &[&shifted, &week_days], vec![]);
    // Days to civil (year, month).
    let z = g.op("Add", &[&day, &c719468], vec![]);
    let era = div_floor(g, &z, &c146097);
    let era_days = g.op("Mul", &[&era, &c146097], vec![]);
    let doe = g.op("Sub", &[&z, &era_days], vec![]);
    let a = div_floor(g, &doe, &c1460);
    let b = div_floor(g, &doe, &c36524);
    let d = div_floor(g, &doe, &c146096);
    let t = g.op("Sub", &[&doe, &a], vec![]);
    let t = g.op("Add", &[&t, &b], vec![]);
    let t = g.op("Sub", &[&t, &d], vec![]);
    let yoe = div_floor(g, &t, &c365);
    let era_years = g.op("Mul", &[&era, &c400], vec![]);
    let year = g.op("Add", &[&yoe, &era_years], vec![]);
    let y365 = g.op("Mul", &[&yoe, &c365], vec![]);
    let y4 = div_floor(g, &yoe, &c4);
    let y100 = div_floor(g, &yoe, &c100);
    let start = g.op("Add", &[&y365, &y4], vec![]);
    let start = g.op("Sub", &[&start, &y100], vec![]);
    let doy = g.op("Sub", &[&doe, &start], vec![]);
    let mp = g.op("Mul", &[&doy, &c5], vec![]);
    let mp = g.op("Add", &[&mp, &c2], vec![]);
    let mp = div_floor(g, &mp, &c153);
    // month = mp + 3, less 12 from March's 10th month on; January and February count to the
    // next year.
    let late = g.op("GreaterOrEqual", &[&mp, &c10], vec![]);
    let late = g.op(
        "Cast",
        &[&late],
        vec![attr_int("to", DataType::Double as i64)],
    );
    let minus = g.op("Mul", &[&late, &c12], vec![]);
    let month = g.op("Add", &[&mp, &c3], vec![]);
    let month = g.op("Sub", &[&month, &minus], vec![]);
    let early = g.op("LessOrEqual", &[&month, &c2], vec![]);
    let early = g.op(
        "Cast",
        &[&early],
        vec![attr_int("to", DataType::Double as i64)],
    );
    let year = g.op("Add", &[&year, &early], vec![]);
    g.op(
        "Concat",
        &[&year, &month, &weekday, &hour, &days],
        vec![attr_int("axis", 1)],
    )
}

/// `uint8 [N, H, W, C]` pixels, as the endpoint takes them, to `float [N, C, H, W]` in `[0, 1]`.
fn image_input(g: &mut GraphBuilder, shape: ImageShape) -> String {
    let dims = [
        Dim::Batch,
        Dim::Fixed(shape.height),
        Dim::Fixed(shape.width),
        Dim::Fixed(shape.channels),
    ];
    let x = g.input("image", DataType::Uint8, &dims);
    let x = g.op("Cast", &[&x], vec![attr_int("to", DataType::Float as i64)]);
    let x = g.op("Transpose", &[&x], vec![attr_ints("perm", &[0, 3, 1, 2])]);
    let scale = g.f32s("pixel_scale", &[1], &[255.0]);
    g.op("Div", &[&x, &scale], vec![])
}

/// Least squares in f64: powers 1..=degree of each encoded column, then `X·w + b`, as `[N, 1]`.
fn linear(g: &mut GraphBuilder, fit: &LinearFit, x: &str, degree: u32) -> String {
    let mut parts = vec![x.to_string()];
    for _ in 2..=degree {
        let last = parts.last().cloned().unwrap_or_default();
        parts.push(g.op("Mul", &[&last, x], vec![]));
    }
    let x = if parts.len() > 1 {
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        g.op("Concat", &refs, vec![attr_int("axis", 1)])
    } else {
        x.to_string()
    };
    let w = g.f64s(
        "coefficients",
        &[fit.coefficients.len(), 1],
        &fit.coefficients,
    );
    let b = g.f64s("intercept", &[1], &[fit.intercept]);
    let y = g.op("MatMul", &[&x, &w], vec![]);
    g.op("Add", &[&y, &b], vec![])
}

fn tensor_f32(t: &Tensor) -> Result<Vec<f32>> {
    Ok(t.to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

/// A named tensor of the network as an initialiser of the same shape.
fn weight(
    g: &mut GraphBuilder,
    tensors: &std::collections::HashMap<String, Tensor>,
    name: &str,
) -> Result<String> {
    let t = tensors
        .get(name)
        .ok_or_else(|| WickError::Export(format!("the network has no tensor `{name}`")))?;
    Ok(g.f32s(&name.replace('.', "_"), t.dims(), &tensor_f32(t)?))
}

/// The layer stack and output layer of a network; returns the raw outputs `float [N, outputs]`.
fn network(g: &mut GraphBuilder, net: &Network, x: &str) -> Result<String> {
    let tensors = net.tensors()?;
    let mut x = x.to_string();
    for (i, layer) in net.layer_specs().iter().enumerate() {
        let p = format!("layers.{i}");
        x = match layer {
            Layer::Conv2d {
                kernel,
                stride,
                padding,
                ..
            } => {
                let (w, b) = (
                    weight(g, &tensors, &format!("{p}.weight"))?,
                    weight(g, &tensors, &format!("{p}.bias"))?,
                );
                conv(
                    g,
                    &x,
                    &w,
                    &b,
                    *kernel,
                    *stride,
                    conv_padding(*kernel, *padding),
                )
            }
            Layer::MaxPool2d { size } => pool(g, "MaxPool", &x, *size, *size, 0),
            Layer::AvgPool2d { size } => pool(g, "AveragePool", &x, *size, *size, 0),
            Layer::BatchNorm => {
                let names =
                    ["weight", "bias", "running_mean", "running_var"].map(|n| format!("{p}.{n}"));
                let [scale, bias, mean, var] = [0, 1, 2, 3].map(|k| weight(g, &tensors, &names[k]));
                let (scale, bias, mean, var) = (scale?, bias?, mean?, var?);
                g.op(
                    "BatchNormalization",
                    &[&x, &scale, &bias, &mean, &var],
                    vec![attr_float("epsilon", BN_EPS)],
                )
            }
            // Dropout is the identity at inference.
            Layer::Dropout { .. } => x,
            Layer::Flatten => g.op("Flatten", &[&x], vec![attr_int("axis", 1)]),
            Layer::Dense { .. } => {
                let (w, b) = (
                    weight(g, &tensors, &format!("{p}.weight"))?,
                    weight(g, &tensors, &format!("{p}.bias"))?,
                );
                g.op("Gemm", &[&x, &w, &b], vec![attr_int("transB", 1)])
            }
            Layer::Activation { function } => activation(g, &x, *function),
        };
    }
    let (w, b) = (
        weight(g, &tensors, "output.weight")?,
        weight(g, &tensors, "output.bias")?,
    );
    Ok(g.op("Gemm", &[&x, &w, &b], vec![attr_int("transB", 1)]))
}

fn conv(
    g: &mut GraphBuilder,
    x: &str,
    w: &str,
    b: &str,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> String {
    let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
    let attrs = vec![
        attr_ints("kernel_shape", &[k, k]),
        attr_ints("strides", &[s, s]),
        attr_ints("pads", &[p, p, p, p]),
    ];
    g.op("Conv", &[x, w, b], attrs)
}

fn pool(
    g: &mut GraphBuilder,
    op: &str,
    x: &str,
    size: usize,
    stride: usize,
    padding: usize,
) -> String {
    let (k, s, p) = (size as i64, stride as i64, padding as i64);
    let attrs = vec![
        attr_ints("kernel_shape", &[k, k]),
        attr_ints("strides", &[s, s]),
        attr_ints("pads", &[p, p, p, p]),
    ];
    g.op(op, &[x], attrs)
}

fn activation(g: &mut GraphBuilder, x: &str, function: Activation) -> String {
    match function {
        Activation::Relu => g.op("Relu", &[x], vec![]),
        Activation::Tanh => g.op("Tanh", &[x], vec![]),
        Activation::Sigmoid => g.op("Sigmoid", &[x], vec![]),
        Activation::Silu => {
            let s = g.op("Sigmoid", &[x], vec![]);
            g.op("Mul", &[x, &s], vec![])
        }
        // Wick's GELU is the exact (erf) form: x·(1 + erf(x/√2))/2.
        Activation::Gelu => {
            let sqrt2 = g.f32s("sqrt2", &[1], &[std::f32::consts::SQRT_2]);
            let (one, half) = (g.f32s("one", &[1], &[1.0]), g.f32s("half", &[1], &[0.5]));
            let e = g.op("Div", &[x, &sqrt2], vec![]);
            let e = g.op("Erf", &[&e], vec![]);
            let e = g.op("Add", &[&e, &one], vec![]);
            let y = g.op("Mul", &[x, &e], vec![]);
            g.op("Mul", &[&y, &half], vec![])
        }
    }
}

/// The frozen ResNet with its batch norms folded into the convolutions, exactly as Wick runs it on
/// the CPU; returns `float [N, features]`.
fn resnet(g: &mut GraphBuilder, backbone: &FrozenBackbone, x: &str) -> Result<String> {
    let net = backbone.cpu_resnet().ok_or_else(|| {
        WickError::Export(
            "the backbone is loaded on a GPU; export loads the package on the CPU".into(),
        )
    })?;
    let mean = g.f32s("imagenet_mean", &[1, 3, 1, 1], &IMAGENET_MEAN);
    let std = g.f32s("imagenet_std", &[1, 3, 1, 1], &IMAGENET_STD);
    let x = g.op("Sub", &[x, &mean], vec![]);
    let x = g.op("Div", &[&x, &std], vec![]);
    let x = folded_conv(g, &net.stem, &x, true)?;
    let mut x = pool(g, "MaxPool", &x, 3, 2, 1);
    for block in &net.blocks {
        let Some((last, inner)) = block.convs.split_last() else {
            continue;
        };
        let mut y = x.clone();
        for conv in inner {
            y = folded_conv(g, conv, &y, true)?;
        }
        let shortcut = match &block.downsample {
            Some(ds) => folded_conv(g, ds, &x, false)?,
            None => x.clone(),
        };
        let y = folded_conv(g, last, &y, false)?;
        let y = g.op("Add", &[&y, &shortcut], vec![]);
        x = g.op("Relu", &[&y], vec![]);
    }
    let x = g.op("GlobalAveragePool", &[&x], vec![]);
    Ok(g.op("Flatten", &[&x], vec![attr_int("axis", 1)]))
}

/// MobileNetV4-small (timm's `mobilenetv4_conv_small`) as candle-transformers runs it: the stem,
/// then its blocks in eval mode: convolution blocks (conv, batch norm, ReLU) and universal inverted
/// bottlenecks (an optional depthwise conv, a pointwise expansion with ReLU, an optional depthwise
/// conv with ReLU, a pointwise projection, the optional layer scale, the residual when the shape
/// stays), then the global average. A part is there when its weights are, as in candle.
fn mobilenetv4_small(g: &mut GraphBuilder, backbone: &FrozenBackbone, x: &str) -> Result<String> {
    let tensors = backbone.candle_tensors().ok_or_else(|| {
        WickError::Export("the MobileNetV4 backbone was loaded without its weights".into())
    })?;
    let mean = g.f32s("imagenet_mean", &[1, 3, 1, 1], &IMAGENET_MEAN);
    let std = g.f32s("imagenet_std", &[1, 3, 1, 1], &IMAGENET_STD);
    let x = g.op("Sub", &[x, &mean], vec![]);
    let x = g.op("Div", &[&x, &std], vec![]);
    let mut x = conv_bn(g, tensors, &x, ("conv_stem", "bn1"), 2, 1)?;
    x = g.op("Relu", &[&x], vec![]);
    // The blocks as the weights have them (kernels and widths from their shapes); the small model
    // halves the resolution in the first block of each of its first four stages.
    for stage in 0..5 {
        for block in 0.. {
            let at = format!("blocks.{stage}.{block}");
            let has = |part: &str| tensors.contains_key(&format!("{at}.{part}.weight"));
            let stride = if block == 0 && stage < 4 { 2 } else { 1 };
            if has("conv") {
                let y = conv_bn(
                    g,
                    tensors,
                    &x,
                    (&format!("{at}.conv"), &format!("{at}.bn1")),
                    stride,
                    usize::MAX,
                )?;
                x = g.op("Relu", &[&y], vec![]);
            } else if has("pw_exp.conv") {
                let part = |name: &str| (format!("{at}.{name}.conv"), format!("{at}.{name}.bn"));
                let in_channels = out_channels(tensors, &format!("{at}.pw_exp.conv"), 1)?;
                let mid = has("dw_mid.conv");
                let mut y = x.clone();
                if has("dw_start.conv") {
                    let (c, b) = part("dw_start");
                    y = conv_bn(
                        g,
                        tensors,
                        &y,
                        (&c, &b),
                        if mid { 1 } else { stride },
                        usize::MAX,
                    )?;
                }
                let (c, b) = part("pw_exp");
                y = conv_bn(g, tensors, &y, (&c, &b), 1, usize::MAX)?;
                y = g.op("Relu", &[&y], vec![]);
                if mid {
                    let (c, b) = part("dw_mid");
                    y = conv_bn(g, tensors, &y, (&c, &b), stride, usize::MAX)?;
                    y = g.op("Relu", &[&y], vec![]);
                }
                let (c, b) = part("pw_proj");
                let out = out_channels(tensors, &c, 0)?;
                y = conv_bn(g, tensors, &y, (&c, &b), 1, usize::MAX)?;
                if let Some(t) = tensors.get(&format!("{at}.layer_scale.gamma")) {
                    let scale = g.f32s("layer_scale", &[1, t.elem_count(), 1, 1], &tensor_f32(t)?);
                    y = g.op("Mul", &[&y, &scale], vec![]);
                }
                if in_channels == out && stride == 1 {
                    y = g.op("Add", &[&y, &x], vec![]);
                }
                x = y;
            } else {
                break;
            }
        }
    }
    let x = g.op("GlobalAveragePool", &[&x], vec![]);
    Ok(g.op("Flatten", &[&x], vec![attr_int("axis", 1)]))
}

/// A bias-free convolution (`{conv}.weight`: square kernel, padded by half of it unless `padding`
/// says, depthwise when its weight has one input channel per group) followed by a batch norm in
/// eval mode (`{bn}.weight`, `.bias`, `.running_mean`, `.running_var`, epsilon 1e-5).
fn conv_bn(
    g: &mut GraphBuilder,
    tensors: &std::collections::HashMap<String, Tensor>,
    x: &str,
    (conv, bn): (&str, &str),
    stride: usize,
    padding: usize,
) -> Result<String> {
    let name = format!("{conv}.weight");
    let w = tensors
        .get(&name)
        .ok_or_else(|| WickError::Export(format!("the backbone has no tensor `{name}`")))?;
    let (out, per_group, kernel, _) = w.dims4()?;
    // A depthwise convolution's weight is (C, 1, k, k); the stem's 3-channel input has 3.
    let groups = if per_group == 1 && out > 1 { out } else { 1 };
    let padding = if padding == usize::MAX {
        kernel / 2
    } else {
        padding
    };
    let w = weight(g, tensors, &name)?;
    let (k, s, p) = (kernel as i64, stride as i64, padding as i64);
    let y = g.op(
        "Conv",
        &[x, &w],
        vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("strides", &[s, s]),
            attr_ints("pads", &[p, p, p, p]),
            attr_int("group", groups as i64),
        ],
    );
    let part = |p: &str| format!("{bn}.{p}");
    let scale = weight(g, tensors, &part("weight"))?;
    let bias = weight(g, tensors, &part("bias"))?;
    let mean = weight(g, tensors, &part("running_mean"))?;
    let var = weight(g, tensors, &part("running_var"))?;
    Ok(g.op(
        "BatchNormalization",
        &[&y, &scale, &bias, &mean, &var],
        vec![attr_float("epsilon", BN_EPS)],
    ))
}

/// Dimension `dim` of the weight `{conv}.weight` (0: output channels, 1: input channels).
fn out_channels(
    tensors: &std::collections::HashMap<String, Tensor>,
    conv: &str,
    dim: usize,
) -> Result<usize> {
    let name = format!("{conv}.weight");
    let w = tensors
        .get(&name)
        .ok_or_else(|| WickError::Export(format!("the backbone has no tensor `{name}`")))?;
    Ok(w.dim(dim)?)
}

fn folded_conv(g: &mut GraphBuilder, c: &FoldedConv, x: &str, relu: bool) -> Result<String> {
    let w = g.f32s("backbone_weight", c.weight.dims(), &tensor_f32(&c.weight)?);
    let b = g.f32s("backbone_bias", c.bias.dims(), &tensor_f32(&c.bias)?);
    let kernel = c.weight.dim(2)?;
    let y = conv(g, x, &w, &b, kernel, c.stride, c.padding);
    Ok(if relu { g.op("Relu", &[&y], vec![]) } else { y })
}

/// `double [N, 1]` values to the regression output `double [N]`, named as the target.
fn regression_output(g: &mut GraphBuilder, target: &TargetInfo, y: &str) {
    let flat = g.i64s("flat", &[1], &[-1]);
    let y = g.op("Reshape", &[y, &flat], vec![]);
    g.output(&y, &target.name, DataType::Double, &[Dim::Batch]);
}

/// Decodes raw network outputs as Wick does: regression values un-standardised in f64;
/// classification logits through a softmax in f64 to `probabilities`, and the label of the largest.
fn network_output(g: &mut GraphBuilder, target: &TargetInfo, y: &str) {
    let y = g.op("Cast", &[y], vec![attr_int("to", DataType::Double as i64)]);
    match target.task {
        Task::Regression => {
            let (mean, std) = target.scale.unwrap_or((0.0, 1.0));
            let (mean, std) = (
                g.f64s("target_mean", &[1], &[mean]),
                g.f64s("target_std", &[1], &[std]),
            );
            let y = g.op("Mul", &[&y, &std], vec![]);
            let y = g.op("Add", &[&y, &mean], vec![]);
            regression_output(g, target, &y);
        }
        Task::Classification => {
            let p = g.op("Softmax", &[&y], vec![attr_int("axis", 1)]);
            class_output(g, target, &p);
        }
    }
}

/// `double [N, K]` class probabilities to the outputs `probabilities` (`float [N, K]`) and the
/// label of the largest, named as the target.
fn class_output(g: &mut GraphBuilder, target: &TargetInfo, p: &str) {
    let k = target.labels.len();
    // ArgMax on the doubles, and it takes the first of tied maxima, as Wick does.
    let index = g.op(
        "ArgMax",
        &[p],
        vec![attr_int("axis", 1), attr_int("keepdims", 0)],
    );
    let probabilities = g.op("Cast", &[p], vec![attr_int("to", DataType::Float as i64)]);
    g.output(
        &probabilities,
        "probabilities",
        DataType::Float,
        &[Dim::Batch, Dim::Fixed(k)],
    );
    let labels = g.strings("labels", &[k], &target.labels);
    let label = g.op("Gather", &[&labels, &index], vec![attr_int("axis", 0)]);
    g.output(&label, &target.name, DataType::String, &[Dim::Batch]);
}
