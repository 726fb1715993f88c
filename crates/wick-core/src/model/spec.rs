//! `ModelSpec`: what the UI edits and the manifest stores. Shape inference and parameter counts are
//! available before training, and an impossible layer stack is rejected naming the layer.

use serde::{Deserialize, Serialize};

use crate::data::ImageShape;
use crate::error::{Result, WickError};

/// A model, as the user chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ModelSpec {
    /// Least squares solved exactly in f64; `ridge_alpha > 0` adds an L2 penalty; `poly_degree > 1` adds
    /// powers of each feature up to that degree.
    Linear {
        #[serde(default)]
        ridge_alpha: f64,
        #[serde(default = "one")]
        poly_degree: u32,
    },
    /// Logistic regression (binary or multinomial), trained by gradient descent.
    Logistic,
    /// A multi-layer perceptron. The output layer is added automatically.
    Mlp {
        hidden: Vec<usize>,
        #[serde(default)]
        activation: Activation,
        #[serde(default)]
        dropout: f32,
    },
    /// A convolutional network for images. The output layer is added automatically.
    Cnn {
        input: ImageShape,
        layers: Vec<Layer>,
    },
    /// A frozen pretrained image backbone with a newly trained dense head.
    Transfer { backbone: Backbone },
    /// Gradient-boosted trees on a table: missing values and text categories are handled by the
    /// trees themselves; with validation rows, boosting stops when they stop improving.
    Gbdt {
        #[serde(default = "gbdt_trees")]
        trees: usize,
        #[serde(default = "gbdt_learning_rate")]
        learning_rate: f64,
        #[serde(default = "gbdt_max_depth")]
        max_depth: usize,
        /// Smallest sum of hessians in a leaf (for regression: rows).
        #[serde(default = "one_f64")]
        min_leaf_weight: f64,
        /// L2 penalty on leaf values.
        #[serde(default = "one_f64")]
        l2: f64,
        /// Stop after this many trees without a better validation loss; `None` grows every tree.
        #[serde(default = "gbdt_early_stopping")]
        early_stopping_rounds: Option<usize>,
    },
    /// A random forest on a table, with the same native handling of missing values and categories.
    Forest {
        #[serde(default = "forest_trees")]
        trees: usize,
        /// `None` grows every tree until its leaves are pure.
        #[serde(default)]
        max_depth: Option<usize>,
        #[serde(default = "one_usize")]
        min_samples_leaf: usize,
        /// Features tried per split; `None`: √features for classes, every feature for numbers.
        #[serde(default)]
        max_features: Option<usize>,
    },
}

fn one() -> u32 {
    1
}

fn one_f64() -> f64 {
    1.0
}

fn gbdt_trees() -> usize {
    300
}

fn gbdt_learning_rate() -> f64 {
    0.1
}

fn gbdt_max_depth() -> usize {
    6
}

fn gbdt_early_stopping() -> Option<usize> {
    Some(20)
}

fn forest_trees() -> usize {
    100
}

impl ModelSpec {
    /// Boosted trees with the defaults (300 trees at rate 0.1, depth 6, early stopping after 20).
    pub fn default_gbdt() -> Self {
        Self::Gbdt {
            trees: gbdt_trees(),
            learning_rate: gbdt_learning_rate(),
            max_depth: gbdt_max_depth(),
            min_leaf_weight: 1.0,
            l2: 1.0,
            early_stopping_rounds: gbdt_early_stopping(),
        }
    }

    /// A forest with scikit-learn's defaults (100 fully grown trees).
    pub fn default_forest() -> Self {
        Self::Forest {
            trees: forest_trees(),
            max_depth: None,
            min_samples_leaf: 1,
            max_features: None,
        }
    }

    /// The model's kind in words, as the model card and messages name it.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Linear {
                ridge_alpha,
                poly_degree,
            } if *poly_degree > 1 && *ridge_alpha > 0.0 => "polynomial ridge regression",
            Self::Linear { poly_degree, .. } if *poly_degree > 1 => "polynomial regression",
            Self::Linear { ridge_alpha, .. } if *ridge_alpha > 0.0 => "ridge regression",
            Self::Linear { .. } => "linear regression",
            Self::Logistic => "logistic regression",
            Self::Mlp { .. } => "MLP",
            Self::Cnn { .. } => "CNN",
            Self::Transfer { .. } => "transfer learning",
            Self::Gbdt { .. } => "gradient-boosted trees",
            Self::Forest { .. } => "random forest",
        }
    }

    /// Tree models read tables in the tree encoding (raw numbers, category codes, NaN for missing).
    pub fn is_tree(&self) -> bool {
        matches!(self, Self::Gbdt { .. } | Self::Forest { .. })
    }
}

/// A pretrained image backbone read from a local safetensors file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Backbone {
    pub arch: BackboneArch,
    /// Path to the safetensors weights (candle-transformers' naming).
    pub weights: std::path::PathBuf,
    pub input: ImageShape,
    /// Train the backbone's last stage too (at a tenth of the learning rate), not only the head.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fine_tune: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackboneArch {
    Resnet18,
    Resnet34,
    Resnet50,
    /// timm's `mobilenetv4_conv_small`.
    #[serde(rename = "mobilenetv4_small")]
    MobileNetV4Small,
}

impl BackboneArch {
    /// Length of the feature vector the backbone produces.
    pub fn feature_len(self) -> usize {
        match self {
            Self::Resnet18 | Self::Resnet34 => 512,
            Self::Resnet50 => 2048,
            // The last stage's channels; timm's 1280-wide head convolution is part of its classifier.
            Self::MobileNetV4Small => 960,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Resnet18 => "ResNet-18",
            Self::Resnet34 => "ResNet-34",
            Self::Resnet50 => "ResNet-50",
            Self::MobileNetV4Small => "MobileNetV4 small",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    Relu,
    Gelu,
    Tanh,
    Sigmoid,
    Silu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Output keeps the input's height and width (for stride 1).
    #[default]
    Same,
    /// No padding.
    Valid,
}

/// One layer of a CNN stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Layer {
    Conv2d {
        filters: usize,
        kernel: usize,
        #[serde(default = "one_usize")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
    },
    MaxPool2d {
        size: usize,
    },
    AvgPool2d {
        size: usize,
    },
    BatchNorm,
    Dropout {
        rate: f32,
    },
    Flatten,
    Dense {
        units: usize,
    },
    Activation {
        function: Activation,
    },
}

fn one_usize() -> usize {
    1
}

impl Layer {
    pub fn label(&self) -> String {
        match self {
            Self::Conv2d {
                filters, kernel, ..
            } => format!("Conv2d {kernel}×{kernel} ×{filters}"),
            Self::MaxPool2d { size } => format!("MaxPool2d {size}×{size}"),
            Self::AvgPool2d { size } => format!("AvgPool2d {size}×{size}"),
            Self::BatchNorm => "BatchNorm".into(),
            Self::Dropout { rate } => format!("Dropout {rate}"),
            Self::Flatten => "Flatten".into(),
            Self::Dense { units } => format!("Dense {units}"),
            Self::Activation { function } => format!("{function:?}"),
        }
    }
}

/// The default CNN: conv 3×3 ×32 → max-pool → conv 3×3 ×64 → max-pool → flatten → dense 64 → (output).
pub fn default_cnn_layers() -> Vec<Layer> {
    let relu = Layer::Activation {
        function: Activation::Relu,
    };
    vec![
        Layer::Conv2d {
            filters: 32,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
        },
        relu.clone(),
        Layer::MaxPool2d { size: 2 },
        Layer::Conv2d {
            filters: 64,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
        },
        relu.clone(),
        Layer::MaxPool2d { size: 2 },
        Layer::Flatten,
        Layer::Dense { units: 64 },
        relu,
    ]
}

/// The LeNet-style CNN of the benchmark: conv 5×5 ×32 → pool → conv 5×5 ×64 → pool → dense 128 → (output).
pub fn lenet_layers() -> Vec<Layer> {
    let relu = Layer::Activation {
        function: Activation::Relu,
    };
    vec![
        Layer::Conv2d {
            filters: 32,
            kernel: 5,
            stride: 1,
            padding: Padding::Valid,
        },
        relu.clone(),
        Layer::MaxPool2d { size: 2 },
        Layer::Conv2d {
            filters: 64,
            kernel: 5,
            stride: 1,
            padding: Padding::Valid,
        },
        relu.clone(),
        Layer::MaxPool2d { size: 2 },
        Layer::Flatten,
        Layer::Dense { units: 128 },
        relu,
    ]
}

/// A layer's output shape (without the batch dimension) and its number of trainable parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerShape {
    pub label: String,
    pub output: Vec<usize>,
    pub params: usize,
}

/// Infers every layer's output shape for a CHW input, ending with the implicit output layer of
/// `n_outputs` units. Errors name the first impossible layer.
pub fn infer_shapes(
    input: ImageShape,
    layers: &[Layer],
    n_outputs: usize,
) -> Result<Vec<LayerShape>> {
    if input.channels == 0 || input.height == 0 || input.width == 0 {
        return Err(WickError::InvalidSpec(format!(
            "the input shape {}×{}×{} has a zero dimension",
            input.height, input.width, input.channels
        )));
    }
    let mut shape = vec![input.channels, input.height, input.width];
    let mut out = Vec::with_capacity(layers.len() + 1);
    for (index, layer) in layers.iter().enumerate() {
        let err = |message: String| WickError::Layer {
            index: index + 1,
            layer: layer.label(),
            message,
        };
        let spatial = |shape: &[usize]| -> Result<(usize, usize, usize)> {
            match shape {
                [c, h, w] => Ok((*c, *h, *w)),
                _ => Err(err(format!("needs an image-shaped input (channels×height×width) but gets {shape:?}; move it before Flatten/Dense"))),
            }
        };
        let (next, params) = match layer {
            Layer::Conv2d {
                filters,
                kernel,
                stride,
                padding,
            } => {
                let (c, h, w) = spatial(&shape)?;
                if *filters == 0 {
                    return Err(err("has zero filters; use at least 1".into()));
                }
                if *kernel == 0 || *stride == 0 {
                    return Err(err("kernel size and stride must be at least 1".into()));
                }
                let pad = conv_padding(*kernel, *padding);
                if *kernel > h + 2 * pad || *kernel > w + 2 * pad {
                    return Err(err(format!("kernel {kernel}×{kernel} is larger than its {h}×{w} input; use a smaller kernel or 'same' padding, or remove a pooling layer before it")));
                }
                let oh = (h + 2 * pad - kernel) / stride + 1;
                let ow = (w + 2 * pad - kernel) / stride + 1;
                (
                    vec![*filters, oh, ow],
                    filters * c * kernel * kernel + filters,
                )
            }
            Layer::MaxPool2d { size } | Layer::AvgPool2d { size } => {
                let (c, h, w) = spatial(&shape)?;
                if *size == 0 {
                    return Err(err("pool size must be at least 1".into()));
                }
                if *size > h || *size > w {
                    return Err(err(format!("pool {size}×{size} is larger than its {h}×{w} input; remove this layer or use a larger input image")));
                }
                (vec![c, h / size, w / size], 0)
            }
            Layer::BatchNorm => {
                let c = shape[0];
                (shape.clone(), 2 * c)
            }
            Layer::Dropout { rate } => {
                if !(0.0..1.0).contains(rate) {
                    return Err(err(format!("rate {rate} must be at least 0 and below 1")));
                }
                (shape.clone(), 0)
            }
            Layer::Flatten => (vec![shape.iter().product()], 0),
            Layer::Dense { units } => {
                if *units == 0 {
                    return Err(err("has zero units; use at least 1".into()));
                }
                let [n] = shape[..] else {
                    return Err(err(format!(
                        "needs a flat input but gets {shape:?}; add a Flatten layer before it"
                    )));
                };
                (vec![*units], n * units + units)
            }
            Layer::Activation { .. } => (shape.clone(), 0),
        };
        shape = next;
        out.push(LayerShape {
            label: layer.label(),
            output: shape.clone(),
            params,
        });
    }
    let n_in: usize = shape.iter().product();
    if shape.len() != 1 {
        return Err(WickError::InvalidSpec(format!(
            "the layer stack ends with shape {shape:?}; add a Flatten layer so the output layer gets a flat input"
        )));
    }
    out.push(LayerShape {
        label: format!("Output {n_outputs}"),
        output: vec![n_outputs],
        params: n_in * n_outputs + n_outputs,
    });
    Ok(out)
}

/// Padding on each side for a convolution.
pub fn conv_padding(kernel: usize, padding: Padding) -> usize {
    match padding {
        Padding::Same => kernel / 2,
        Padding::Valid => 0,
    }
}

/// The dense layer stack of a tabular network (MLP or logistic regression), without the output layer.
pub fn dense_layers(spec: &ModelSpec) -> Vec<Layer> {
    match spec {
        ModelSpec::Mlp {
            hidden,
            activation,
            dropout,
        } => hidden
            .iter()
            .flat_map(|&units| {
                let mut l = vec![
                    Layer::Dense { units },
                    Layer::Activation {
                        function: *activation,
                    },
                ];
                if *dropout > 0.0 {
                    l.push(Layer::Dropout { rate: *dropout });
                }
                l
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cnn_shapes_and_params() {
        let input = ImageShape {
            height: 28,
            width: 28,
            channels: 1,
        };
        let shapes = infer_shapes(input, &default_cnn_layers(), 10).unwrap();
        assert_eq!(shapes[0].output, vec![32, 28, 28]);
        assert_eq!(shapes[0].params, 32 * 9 + 32);
        assert_eq!(shapes[5].output, vec![64, 7, 7]);
        assert_eq!(shapes[6].output, vec![64 * 49]);
        assert_eq!(shapes.last().unwrap().output, vec![10]);
        assert_eq!(shapes.last().unwrap().params, 64 * 10 + 10);
    }

    #[test]
    fn lenet_matches_pytorch_parameter_count() {
        // PyTorch 2.15: sum(p.numel() for p in net.parameters()) of the LeNet in bench/reference.py.
        let input = ImageShape {
            height: 28,
            width: 28,
            channels: 1,
        };
        let total: usize = infer_shapes(input, &lenet_layers(), 10)
            .unwrap()
            .iter()
            .map(|s| s.params)
            .sum();
        assert_eq!(total, 184_586);
    }

    #[test]
    fn impossible_stacks_name_the_layer() {
        let input = ImageShape {
            height: 4,
            width: 4,
            channels: 1,
        };
        let layers = vec![Layer::Conv2d {
            filters: 8,
            kernel: 5,
            stride: 1,
            padding: Padding::Valid,
        }];
        let err = infer_shapes(input, &layers, 2).unwrap_err().to_string();
        assert!(
            err.contains("layer 1 (Conv2d 5×5 ×8)") && err.contains("larger than its 4×4 input"),
            "{err}"
        );

        let layers = vec![
            Layer::Flatten,
            Layer::Conv2d {
                filters: 0,
                kernel: 3,
                stride: 1,
                padding: Padding::Same,
            },
        ];
        let err = infer_shapes(input, &layers, 2).unwrap_err().to_string();
        assert!(err.contains("layer 2"), "{err}");

        let layers = vec![Layer::MaxPool2d { size: 2 }, Layer::Dense { units: 3 }];
        let err = infer_shapes(input, &layers, 2).unwrap_err().to_string();
        assert!(
            err.contains("layer 2 (Dense 3)") && err.contains("Flatten"),
            "{err}"
        );
    }
}
