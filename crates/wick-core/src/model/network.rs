//! Neural networks (logistic regression, MLP, CNN) built from a layer stack with candle.
//!
//! Weights are initialised from our own seeded RNG rather than candle's, because candle's CPU
//! `set_seed` does not make runs reproducible.

use std::collections::HashMap;

use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use candle_nn::{BatchNorm, Conv2d, Conv2dConfig, Linear};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, WickError};
use crate::model::cpu_net::CpuNet;
use crate::model::cpu_ops::{self, ConvBlock, MaxPool};
use crate::model::spec::{conv_padding, Activation, Layer};

enum NetLayer {
    /// A convolution. On the CPU it runs as one fused op, together with the ReLU and max-pool that
    /// directly follow it (`fused`); elsewhere as candle's conv2d, with those layers after it.
    Conv {
        conv: Conv2d,
        fused: ConvBlock,
    },
    /// A layer computed inside the convolution before it.
    FusedIntoConv,
    MaxPool(usize),
    AvgPool(usize),
    BatchNorm(BatchNorm),
    Dropout(f32),
    Flatten,
    Dense(Linear),
    Act(Activation),
}

/// A feed-forward network: the layer stack plus an output layer of `n_outputs` units.
pub struct Network {
    layers: Vec<NetLayer>,
    output: Linear,
    /// Trainable parameters by name, in a stable order.
    params: Vec<(String, Var)>,
    input_shape: Vec<usize>,
    /// The stack as specified (for building [`CpuNet`]).
    layer_specs: Vec<Layer>,
    n_outputs: usize,
    device: Device,
    /// Whether convolutions and max-pools run as the fused CPU ops (`cpu_ops`): on the CPU.
    cpu_ops: bool,
}

/// Where a network's weights come from.
enum Init<'a> {
    Random(&'a mut ChaCha8Rng),
    Tensors(&'a HashMap<String, Tensor>),
}

impl Network {
    /// A new network with weights drawn like PyTorch's defaults (uniform ±1/√fan_in) from `rng`.
    pub fn new(
        input_shape: &[usize],
        layers: &[Layer],
        n_outputs: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Self> {
        Self::build(
            input_shape,
            layers,
            n_outputs,
            Init::Random(rng),
            device,
            device.is_cpu(),
        )
    }

    /// As [`Network::new`], but always with candle's own ops (the reference the fused CPU ops are
    /// checked against, and what GPUs run).
    pub(crate) fn with_candle_ops(
        input_shape: &[usize],
        layers: &[Layer],
        n_outputs: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Self> {
        Self::build(
            input_shape,
            layers,
            n_outputs,
            Init::Random(rng),
            device,
            false,
        )
    }

    /// A network with the given weights (from a model package).
    pub fn from_tensors(
        input_shape: &[usize],
        layers: &[Layer],
        n_outputs: usize,
        tensors: &HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        Self::build(
            input_shape,
            layers,
            n_outputs,
            Init::Tensors(tensors),
            device,
            device.is_cpu(),
        )
    }

    fn build(
        input_shape: &[usize],
        layers: &[Layer],
        n_outputs: usize,
        mut init: Init,
        device: &Device,
        cpu_ops: bool,
    ) -> Result<Self> {
        let mut params = Vec::new();
        let mut shape = input_shape.to_vec();
        let mut built = Vec::with_capacity(layers.len());
        // Layers (by index) that a fused CPU convolution computes.
        let mut fused_layers = Vec::new();
        for (i, layer) in layers.iter().enumerate() {
            let name = format!("layers.{i}");
            let layer_err = |message: String| WickError::Layer {
                index: i + 1,
                layer: layer.label(),
                message,
            };
            let net_layer = match layer {
                Layer::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                } => {
                    let [c, h, w] = shape[..] else {
                        return Err(layer_err(format!(
                            "needs an image-shaped input, got {shape:?}"
                        )));
                    };
                    let fan_in = c * kernel * kernel;
                    let weight = param(
                        &mut init,
                        &mut params,
                        &format!("{name}.weight"),
                        &[*filters, c, *kernel, *kernel],
                        fan_in,
                        device,
                    )?;
                    let bias = param(
                        &mut init,
                        &mut params,
                        &format!("{name}.bias"),
                        &[*filters],
                        fan_in,
                        device,
                    )?;
                    let pad = conv_padding(*kernel, *padding);
                    if *kernel > h + 2 * pad || *kernel > w + 2 * pad {
                        return Err(layer_err(format!("kernel larger than its {h}×{w} input")));
                    }
                    shape = vec![
                        *filters,
                        (h + 2 * pad - kernel) / stride + 1,
                        (w + 2 * pad - kernel) / stride + 1,
                    ];
                    let cfg = Conv2dConfig {
                        padding: pad,
                        stride: *stride,
                        ..Default::default()
                    };
                    let mut fused = ConvBlock {
                        stride: *stride,
                        padding: pad,
                        relu: false,
                        max_pool: None,
                    };
                    if cpu_ops {
                        let mut next = i + 1;
                        if matches!(
                            layers.get(next),
                            Some(Layer::Activation {
                                function: Activation::Relu
                            })
                        ) {
                            fused.relu = true;
                            fused_layers.push(next);
                            next += 1;
                        }
                        if let Some(Layer::MaxPool2d { size }) = layers.get(next) {
                            fused.max_pool = Some(MaxPool::tiling(*size));
                            fused_layers.push(next);
                        }
                    }
                    NetLayer::Conv {
                        conv: Conv2d::new(weight, Some(bias), cfg),
                        fused,
                    }
                }
                Layer::MaxPool2d { size } | Layer::AvgPool2d { size } => {
                    let [c, h, w] = shape[..] else {
                        return Err(layer_err(format!(
                            "needs an image-shaped input, got {shape:?}"
                        )));
                    };
                    shape = vec![c, h / size, w / size];
                    if matches!(layer, Layer::MaxPool2d { .. }) {
                        NetLayer::MaxPool(*size)
                    } else {
                        NetLayer::AvgPool(*size)
                    }
                }
                Layer::BatchNorm => {
                    let c = shape[0];
                    let weight = fixed(
                        &mut init,
                        &mut params,
                        &format!("{name}.weight"),
                        c,
                        1.0,
                        true,
                        device,
                    )?;
                    let bias = fixed(
                        &mut init,
                        &mut params,
                        &format!("{name}.bias"),
                        c,
                        0.0,
                        true,
                        device,
                    )?;
                    let mean = fixed(
                        &mut init,
                        &mut params,
                        &format!("{name}.running_mean"),
                        c,
                        0.0,
                        false,
                        device,
                    )?;
                    let var = fixed(
                        &mut init,
                        &mut params,
                        &format!("{name}.running_var"),
                        c,
                        1.0,
                        false,
                        device,
                    )?;
                    NetLayer::BatchNorm(BatchNorm::new(c, mean, var, weight, bias, 1e-5)?)
                }
                Layer::Dropout { rate } => NetLayer::Dropout(*rate),
                Layer::Flatten => {
                    shape = vec![shape.iter().product()];
                    NetLayer::Flatten
                }
                Layer::Dense { units } => {
                    let [n] = shape[..] else {
                        return Err(layer_err(format!(
                            "needs a flat input, got {shape:?}; add Flatten"
                        )));
                    };
                    let weight = param(
                        &mut init,
                        &mut params,
                        &format!("{name}.weight"),
                        &[*units, n],
                        n,
                        device,
                    )?;
                    let bias = param(
                        &mut init,
                        &mut params,
                        &format!("{name}.bias"),
                        &[*units],
                        n,
                        device,
                    )?;
                    shape = vec![*units];
                    NetLayer::Dense(Linear::new(weight, Some(bias)))
                }
                Layer::Activation { function } => NetLayer::Act(*function),
            };
            built.push(if fused_layers.contains(&i) {
                NetLayer::FusedIntoConv
            } else {
                net_layer
            });
        }
        let n_in: usize = shape.iter().product();
        if shape.len() != 1 {
            return Err(WickError::InvalidSpec(format!(
                "the layer stack ends with shape {shape:?}; add a Flatten layer"
            )));
        }
        let weight = param(
            &mut init,
            &mut params,
            "output.weight",
            &[n_outputs, n_in],
            n_in,
            device,
        )?;
        let bias = param(
            &mut init,
            &mut params,
            "output.bias",
            &[n_outputs],
            n_in,
            device,
        )?;
        let output = Linear::new(weight, Some(bias));
        Ok(Self {
            layers: built,
            output,
            params,
            input_shape: input_shape.to_vec(),
            layer_specs: layers.to_vec(),
            n_outputs,
            device: device.clone(),
            cpu_ops,
        })
    }

    /// Runs the network on a batch `(N, ...input_shape)`. `dropout_rng` is only used when `train`.
    pub fn forward(
        &self,
        x: &Tensor,
        train: bool,
        mut dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = match layer {
                NetLayer::Conv { conv, fused } => match conv.bias() {
                    Some(bias) if self.cpu_ops => {
                        cpu_ops::conv_block(&x, conv.weight(), bias, *fused)?
                    }
                    _ => conv.forward(&x)?,
                },
                NetLayer::FusedIntoConv => x,
                // Candle's max-pool backward scales the gradient by the share of tied maxima (see
                // `cpu_ops::pool`); ours gives it to the first maximum, as PyTorch does.
                NetLayer::MaxPool(s) if self.cpu_ops => cpu_ops::max_pool2d(&x, *s)?,
                NetLayer::MaxPool(s) => cpu_ops::max_pool2d_by_reduction(&x, *s)?,
                NetLayer::AvgPool(s) => x.avg_pool2d(*s)?,
                NetLayer::BatchNorm(bn) => bn.forward_t(&x, train)?,
                NetLayer::Dropout(rate) => match (&mut dropout_rng, train) {
                    (Some(rng), true) if *rate > 0.0 => dropout(&x, *rate, rng)?,
                    _ => x,
                },
                NetLayer::Flatten => x.flatten_from(1)?,
                NetLayer::Dense(linear) => linear.forward(&x)?,
                NetLayer::Act(a) => activate(&x, *a)?,
            };
        }
        Ok(self.output.forward(&x)?)
    }

    /// Trainable variables (running statistics of batch norm excluded).
    pub fn trainable_vars(&self) -> Vec<Var> {
        self.params
            .iter()
            .filter(|(n, _)| !n.contains("running_"))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Every tensor needed to rebuild the network, by name (batch norm running statistics included).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out = HashMap::new();
        for (name, var) in &self.params {
            out.insert(name.clone(), var.as_tensor().clone());
        }
        // BatchNorm keeps its running statistics in its own variables; read the current values there.
        for (i, layer) in self.layers.iter().enumerate() {
            if let NetLayer::BatchNorm(bn) = layer {
                out.insert(
                    format!("layers.{i}.running_mean"),
                    bn.running_mean().clone(),
                );
                out.insert(format!("layers.{i}.running_var"), bn.running_var().clone());
            }
        }
        Ok(out)
    }

    /// A detached copy of every tensor (for keeping the best epoch's weights).
    pub fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        self.tensors()?
            .into_iter()
            .map(|(k, t)| Ok((k, t.copy()?)))
            .collect()
    }

    /// Restores a snapshot taken with [`Network::snapshot`].
    pub fn restore(&mut self, snapshot: &HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in &self.params {
            if let Some(t) = snapshot.get(name) {
                var.set(t)?;
            }
        }
        for (i, layer) in self.layers.iter_mut().enumerate() {
            if let NetLayer::BatchNorm(bn) = layer {
                let get = |k: &str| snapshot.get(&format!("layers.{i}.{k}")).cloned();
                if let (Some(m), Some(v), Some(w), Some(b)) = (
                    get("running_mean"),
                    get("running_var"),
                    get("weight"),
                    get("bias"),
                ) {
                    let c = m.dim(0)?;
                    // Weight and bias are shared with the trainable vars (already set); the stats are not.
                    *bn = BatchNorm::new(c, m, v, w, b, 1e-5)?;
                }
            }
        }
        Ok(())
    }

    /// The same network for CPU inference without candle, when it computes on the CPU. Built from a
    /// copy of the current weights: for a network that is done training.
    pub(crate) fn cpu_net(&self) -> Result<Option<CpuNet>> {
        if !self.device.is_cpu() {
            return Ok(None);
        }
        Ok(Some(CpuNet::new(
            &self.input_shape,
            &self.layer_specs,
            self.n_outputs,
            &self.tensors()?,
        )?))
    }

    /// The layer stack as specified, without the output layer (for export).
    pub(crate) fn layer_specs(&self) -> &[Layer] {
        &self.layer_specs
    }

    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Units of the output layer (classes, or 1 for a number).
    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

fn param(
    init: &mut Init,
    params: &mut Vec<(String, Var)>,
    name: &str,
    shape: &[usize],
    fan_in: usize,
    device: &Device,
) -> Result<Tensor> {
    let var = match init {
        Init::Random(rng) => {
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
            Var::from_vec(values, shape, device)?
        }
        Init::Tensors(tensors) => Var::from_tensor(&stored(tensors, name, shape, device)?)?,
    };
    let tensor = var.as_tensor().clone();
    params.push((name.to_string(), var));
    Ok(tensor)
}

fn fixed(
    init: &mut Init,
    params: &mut Vec<(String, Var)>,
    name: &str,
    len: usize,
    value: f32,
    trainable: bool,
    device: &Device,
) -> Result<Tensor> {
    let tensor = match init {
        Init::Random(_) => Tensor::full(value, len, device)?,
        Init::Tensors(tensors) => stored(tensors, name, &[len], device)?,
    };
    if trainable {
        let var = Var::from_tensor(&tensor)?;
        let t = var.as_tensor().clone();
        params.push((name.to_string(), var));
        Ok(t)
    } else {
        Ok(tensor)
    }
}

fn stored(
    tensors: &HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
    device: &Device,
) -> Result<Tensor> {
    let t = tensors.get(name).ok_or_else(|| {
        WickError::InvalidSpec(format!(
            "the weights have no tensor `{name}`; the package does not match its spec"
        ))
    })?;
    if t.dims() != shape {
        return Err(WickError::InvalidSpec(format!(
            "tensor `{name}` has shape {:?} but the spec needs {shape:?}",
            t.dims()
        )));
    }
    Ok(t.to_dtype(DType::F32)?.to_device(device)?)
}

fn activate(x: &Tensor, a: Activation) -> Result<Tensor> {
    Ok(match a {
        Activation::Relu => x.relu()?,
        Activation::Gelu => x.gelu_erf()?,
        Activation::Tanh => x.tanh()?,
        Activation::Sigmoid => candle_nn::ops::sigmoid(x)?,
        Activation::Silu => x.silu()?,
    })
}

/// Inverted dropout with a mask from our seeded RNG.
fn dropout(x: &Tensor, rate: f32, rng: &mut ChaCha8Rng) -> Result<Tensor> {
    let keep = 1.0 - rate;
    let mask: Vec<f32> = (0..x.elem_count())
        .map(|_| {
            if rng.random::<f32>() < keep {
                1.0 / keep
            } else {
                0.0
            }
        })
        .collect();
    let mask = Tensor::from_vec(mask, x.shape(), x.device())?;
    Ok((x * mask)?)
}
