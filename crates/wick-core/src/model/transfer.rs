//! Transfer learning: a pretrained backbone turns images into feature vectors, and a new head is
//! trained on them; the backbone stays frozen, or its last stage is fine-tuned too.
//!
//! The weights use candle-transformers' naming (torchvision's for the ResNets, timm's for
//! MobileNetV4). On the CPU a ResNet runs as a *folded* network: each batch norm folded into its
//! convolution (a frozen backbone's statistics never change), through the fused convolution of
//! `cpu_ops`. Features are computed once per image and dominate transfer-learning time. Elsewhere
//! (CUDA, Metal), and for MobileNetV4 everywhere, the frozen backbone runs as candle-transformers'
//! own model. Fine-tuning needs the stages apart, so it always uses the folded network, with
//! candle's conv2d where `cpu_ops` can't run.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{Func, Module, VarBuilder};

use crate::error::{Result, WickError};
use crate::model::cpu_ops::{conv_block, conv_block_residual, ConvBlock, MaxPool};
use crate::model::spec::BackboneArch;

/// ImageNet channel statistics, which the pretrained ResNets expect.
pub(crate) const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub(crate) const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];
/// Batch norm's epsilon in torchvision's (and candle-transformers') ResNets.
const BN_EPS: f64 = 1e-5;

pub struct FrozenBackbone {
    arch: BackboneArch,
    net: BackboneNet,
    mean: Tensor,
    std: Tensor,
}

enum BackboneNet {
    Folded(FoldedResNet),
    /// candle-transformers' model, with the tensors it was built from (for export).
    Candle(Func<'static>, HashMap<String, Tensor>),
}

impl FrozenBackbone {
    /// Loads backbone weights from a safetensors file in candle-transformers' naming.
    pub fn load(arch: BackboneArch, weights: &Path, device: &Device) -> Result<Self> {
        Self::load_with(arch, weights, device, device.is_cpu())
    }

    /// As [`FrozenBackbone::load`], as the folded network on every device (for fine-tuning).
    pub fn load_folded(arch: BackboneArch, weights: &Path, device: &Device) -> Result<Self> {
        if arch == BackboneArch::MobileNetV4Small {
            return Err(WickError::InvalidSpec("fine-tuning covers the ResNet backbones; MobileNetV4 trains with its backbone frozen".into()));
        }
        Self::load_with(arch, weights, device, true)
    }

    fn load_with(
        arch: BackboneArch,
        weights: &Path,
        device: &Device,
        folded: bool,
    ) -> Result<Self> {
        let tensors = read_weights(arch, weights, device)?;
        Self::from_tensors_with(arch, tensors, device, folded)
            .map_err(|e| WickError::data(weights, format!("does not hold {arch:?} weights ({e})")))
    }

    /// A backbone from tensors by name (candle-transformers' naming).
    pub fn from_tensors(
        arch: BackboneArch,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        Self::from_tensors_with(arch, tensors, device, device.is_cpu())
    }

    /// As [`FrozenBackbone::from_tensors`], as the folded network on every device (fine-tuning).
    pub(crate) fn from_tensors_folded(
        arch: BackboneArch,
        tensors: HashMap<String, Tensor>,
        device: &Device,
    ) -> Result<Self> {
        Self::from_tensors_with(arch, tensors, device, true)
    }

    fn from_tensors_with(
        arch: BackboneArch,
        tensors: HashMap<String, Tensor>,
        device: &Device,
        folded: bool,
    ) -> Result<Self> {
        use candle_transformers::models::{mobilenetv4, resnet};
        let net = match arch {
            BackboneArch::Resnet18 | BackboneArch::Resnet34 | BackboneArch::Resnet50 if folded => {
                BackboneNet::Folded(FoldedResNet::new(arch, &tensors, device)?)
            }
            _ => {
                // candle's VarBuilder names a missing tensor in its error, as FoldedResNet does.
                // (Tensors share their storage: the copy kept for export costs no memory.)
                let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, device);
                let func = match arch {
                    BackboneArch::Resnet18 => resnet::resnet18_no_final_layer(vb)?,
                    BackboneArch::Resnet34 => resnet::resnet34_no_final_layer(vb)?,
                    BackboneArch::Resnet50 => resnet::resnet50_no_final_layer(vb)?,
                    BackboneArch::MobileNetV4Small => {
                        let net = mobilenetv4::mobilenetv4_no_final_layer(
                            &mobilenetv4::Config::small(),
                            vb,
                        )?;
                        // It keeps the pooled 1×1 dimensions: (N, 960, 1, 1) to (N, 960).
                        Func::new(move |x| net.forward(x)?.flatten_from(1))
                    }
                };
                BackboneNet::Candle(func, tensors)
            }
        };
        let mean = Tensor::from_slice(&IMAGENET_MEAN, (1, 3, 1, 1), device)?;
        let std = Tensor::from_slice(&IMAGENET_STD, (1, 3, 1, 1), device)?;
        Ok(Self {
            arch,
            net,
            mean,
            std,
        })
    }

    pub fn arch(&self) -> BackboneArch {
        self.arch
    }

    /// The weights of a backbone that runs as candle-transformers' model (for export).
    pub(crate) fn candle_tensors(&self) -> Option<&HashMap<String, Tensor>> {
        match &self.net {
            BackboneNet::Candle(_, tensors) => Some(tensors),
            BackboneNet::Folded(_) => None,
        }
    }

    /// The folded network (for export); `None` when the backbone runs as candle's model.
    pub(crate) fn cpu_resnet(&self) -> Option<&FoldedResNet> {
        match &self.net {
            BackboneNet::Folded(net) if net.stem.weight.device().is_cpu() => Some(net),
            _ => None,
        }
    }

    fn folded(&self) -> Result<&FoldedResNet> {
        match &self.net {
            BackboneNet::Folded(net) => Ok(net),
            BackboneNet::Candle(..) => Err(WickError::InvalidSpec(
                "fine-tuning needs the backbone loaded as its stages (FrozenBackbone::load_folded)"
                    .into(),
            )),
        }
    }

    fn normalise(&self, images: &Tensor) -> Result<Tensor> {
        Ok(images.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?)
    }

    /// Feature vectors `(N, arch.feature_len())` for images `(N, 3, H, W)` with values in `[0, 1]`.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let x = self.normalise(images)?;
        match &self.net {
            BackboneNet::Folded(net) => net.forward(&x),
            BackboneNet::Candle(func, _) => Ok(func.forward(&x)?),
        }
    }

    /// What the last stage takes: the activations `(N, C, h, w)` of every block before it.
    pub(crate) fn trunk(&self, images: &Tensor) -> Result<Tensor> {
        let net = self.folded()?;
        net.run_blocks(
            &net.stem_forward(&self.normalise(images)?)?,
            &net.blocks[..net.last_stage_start],
        )
    }

    /// The blocks of the last stage (ResNet's `layer4`), which fine-tuning trains.
    pub(crate) fn last_stage(&self) -> Result<&[ResBlock]> {
        let net = self.folded()?;
        Ok(&net.blocks[net.last_stage_start..])
    }

    /// The backbone with its last stage replaced by fine-tuned blocks of the same shapes.
    pub(crate) fn with_last_stage(mut self, stage: Vec<ResBlock>) -> Result<Self> {
        let BackboneNet::Folded(net) = &mut self.net else {
            return Err(WickError::InvalidSpec(
                "only a folded backbone takes a fine-tuned stage".into(),
            ));
        };
        if stage.len() != net.blocks.len() - net.last_stage_start {
            return Err(WickError::InvalidSpec(format!(
                "the fine-tuned stage has {} blocks, the backbone's last has {}",
                stage.len(),
                net.blocks.len() - net.last_stage_start
            )));
        }
        net.blocks.truncate(net.last_stage_start);
        net.blocks.extend(stage);
        Ok(self)
    }

    /// The last stage in candle-transformers' naming, each convolution's folded weight and bias
    /// with an identity batch norm (γ 1, β the bias, mean 0, variance 1 − ε, so that folding it
    /// again gives the same weights): a fine-tuned package's backbone file keeps the format every
    /// reader (CPU, GPU, export) loads.
    pub(crate) fn last_stage_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let net = self.folded()?;
        let stage = &net.blocks[net.last_stage_start..];
        let mut out = HashMap::new();
        let mut put = |conv_name: String, bn_name: String, c: &FoldedConv| -> Result<()> {
            let cpu = |t: &Tensor| -> Result<Tensor> {
                Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?)
            };
            let filters = c.weight.dim(0)?;
            out.insert(format!("{conv_name}.weight"), cpu(&c.weight)?);
            out.insert(
                format!("{bn_name}.weight"),
                Tensor::ones(filters, DType::F32, &Device::Cpu)?,
            );
            out.insert(format!("{bn_name}.bias"), cpu(&c.bias)?);
            out.insert(
                format!("{bn_name}.running_mean"),
                Tensor::zeros(filters, DType::F32, &Device::Cpu)?,
            );
            out.insert(
                format!("{bn_name}.running_var"),
                Tensor::full((1.0 - BN_EPS) as f32, filters, &Device::Cpu)?,
            );
            Ok(())
        };
        for (index, block) in stage.iter().enumerate() {
            let p = format!("layer4.{index}");
            for (i, conv) in block.convs.iter().enumerate() {
                put(
                    format!("{p}.conv{}", i + 1),
                    format!("{p}.bn{}", i + 1),
                    conv,
                )?;
            }
            if let Some(ds) = &block.downsample {
                put(format!("{p}.downsample.0"), format!("{p}.downsample.1"), ds)?;
            }
        }
        Ok(out)
    }
}

/// A backbone's tensors from its safetensors file, with a message that names the file.
pub(crate) fn read_weights(
    arch: BackboneArch,
    weights: &Path,
    device: &Device,
) -> Result<HashMap<String, Tensor>> {
    candle_core::safetensors::load(weights, device).map_err(|e| {
        WickError::data(weights, format!("is not a readable safetensors file ({e}); point the backbone at a {} .safetensors file", arch.title()))
    })
}

/// Writes a randomly initialised backbone of `arch` to `path` in candle-transformers' naming: the
/// stand-in for downloaded weights in benchmarks and in tests that run offline.
pub fn write_random_weights(arch: BackboneArch, path: &Path) -> Result<()> {
    use candle_transformers::models::{mobilenetv4, resnet};
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    match arch {
        BackboneArch::Resnet18 => drop(resnet::resnet18_no_final_layer(vb)?),
        BackboneArch::Resnet34 => drop(resnet::resnet34_no_final_layer(vb)?),
        BackboneArch::Resnet50 => drop(resnet::resnet50_no_final_layer(vb)?),
        BackboneArch::MobileNetV4Small => drop(mobilenetv4::mobilenetv4_no_final_layer(
            &mobilenetv4::Config::small(),
            vb,
        )?),
    }
    // A block without one of its optional parts (MobileNetV4's kernel-0 depthwise convolutions)
    // has no tensors for it in a real file; the VarMap made them empty. It also makes a layer
    // scale zeros (its default), which would silence every bottleneck: ones keep the path alive.
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| WickError::InvalidSpec("the random weights' map was poisoned".into()))?
        .iter()
        .filter(|(_, v)| v.elem_count() > 0)
        .map(|(k, v)| {
            let t = v.as_tensor();
            Ok((
                k.clone(),
                if k.ends_with("layer_scale.gamma") {
                    t.ones_like()?
                } else {
                    t.clone()
                },
            ))
        })
        .collect::<Result<_>>()?;
    candle_core::safetensors::save(&tensors, path)?;
    Ok(())
}

/// `relu?(conv(x, weight) + bias)`: the fused op of `cpu_ops` on the CPU (with gradients when an
/// input tracks them), candle's conv2d elsewhere.
pub(crate) fn conv_bias(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    relu: bool,
) -> Result<Tensor> {
    if x.device().is_cpu() {
        return Ok(conv_block(
            x,
            weight,
            bias,
            ConvBlock {
                stride,
                padding,
                relu,
                max_pool: None,
            },
        )?);
    }
    candle_conv_bias(x, weight, bias, stride, padding, relu)
}

/// [`conv_bias`] in candle's ops: what GPUs run (its CPU twin is checked in the tests).
fn candle_conv_bias(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    relu: bool,
) -> Result<Tensor> {
    let y = x
        .conv2d(weight, padding, stride, 1, 1)?
        .broadcast_add(&bias.reshape((1, bias.dim(0)?, 1, 1))?)?;
    Ok(if relu { y.relu()? } else { y })
}

/// The stem's 3×3 max-pool, stride 2, padding 1, in candle's ops. After a ReLU, padding with the
/// edge values is padding with −∞.
fn candle_stem_pool(y: &Tensor) -> Result<Tensor> {
    Ok(y.pad_with_same(D::Minus1, 1, 1)?
        .pad_with_same(D::Minus2, 1, 1)?
        .max_pool2d_with_stride(3, 2)?)
}

/// `relu(conv(x, weight) + bias + residual)`.
fn conv_bias_residual_relu(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    padding: usize,
    residual: &Tensor,
) -> Result<Tensor> {
    if x.device().is_cpu() {
        return Ok(conv_block_residual(
            x,
            weight,
            bias,
            ConvBlock {
                stride,
                padding,
                relu: true,
                max_pool: None,
            },
            residual,
        )?);
    }
    Ok((conv_bias(x, weight, bias, stride, padding, false)? + residual)?.relu()?)
}

/// One residual block's forward pass: ReLU after each convolution but the last, whose output is
/// added to the shortcut (`x`, or `x` through the downsampling convolution) before its ReLU. Each
/// convolution is `(weight, bias, stride, padding)`. Frozen blocks and fine-tuned ones (whose
/// weights are training variables) run through this one function.
pub(crate) fn residual_block(
    x: &Tensor,
    convs: &[(&Tensor, &Tensor, usize, usize)],
    downsample: Option<(&Tensor, &Tensor, usize, usize)>,
) -> Result<Tensor> {
    let Some(((w, b, stride, padding), inner)) = convs.split_last() else {
        return Ok(x.clone());
    };
    let mut y = x.clone();
    for (w, b, s, p) in inner {
        y = conv_bias(&y, w, b, *s, *p, true)?;
    }
    let shortcut = match downsample {
        Some((dw, db, s, p)) => conv_bias(x, dw, db, s, p, false)?,
        None => x.clone(),
    };
    conv_bias_residual_relu(&y, w, b, *stride, *padding, &shortcut)
}

/// A convolution with its batch norm folded in: `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
#[derive(Clone)]
pub(crate) struct FoldedConv {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
}

impl FoldedConv {
    fn new(
        tensors: &HashMap<String, Tensor>,
        conv: &str,
        bn: &str,
        stride: usize,
        padding: usize,
        device: &Device,
    ) -> Result<Self> {
        let get = |name: String| {
            tensors
                .get(&name)
                .ok_or_else(|| {
                    WickError::InvalidSpec(format!("the backbone weights have no tensor `{name}`"))
                })
                .and_then(|t| Ok(t.to_dtype(DType::F32)?.to_device(device)?))
        };
        let weight = get(format!("{conv}.weight"))?;
        let (gamma, beta) = (get(format!("{bn}.weight"))?, get(format!("{bn}.bias"))?);
        let (mean, var) = (
            get(format!("{bn}.running_mean"))?,
            get(format!("{bn}.running_var"))?,
        );
        let filters = weight.dim(0)?;
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        // Detached: a frozen backbone keeps nothing for a backward pass through it.
        let weight = weight
            .broadcast_mul(&scale.reshape((filters, 1, 1, 1))?)?
            .contiguous()?
            .detach();
        let bias = (beta - (mean * &scale)?)?.detach();
        Ok(Self {
            weight,
            bias,
            stride,
            padding,
        })
    }

    pub(crate) fn as_conv(&self) -> (&Tensor, &Tensor, usize, usize) {
        (&self.weight, &self.bias, self.stride, self.padding)
    }
}

/// One residual block: its convolutions in order (a basic block's two 3×3, a bottleneck's 1×1, 3×3,
/// 1×1) and the shortcut's strided 1×1 convolution where the shape changes (see [`residual_block`]).
#[derive(Clone)]
pub(crate) struct ResBlock {
    pub(crate) convs: Vec<FoldedConv>,
    pub(crate) downsample: Option<FoldedConv>,
}

impl ResBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let convs: Vec<_> = self.convs.iter().map(FoldedConv::as_conv).collect();
        residual_block(x, &convs, self.downsample.as_ref().map(FoldedConv::as_conv))
    }
}

/// candle-transformers' ResNet (torchvision's layout) with batch norms folded, for inference and
/// as the frozen part of fine-tuning.
pub(crate) struct FoldedResNet {
    pub(crate) stem: FoldedConv,
    pub(crate) blocks: Vec<ResBlock>,
    /// Where the last stage (`layer4`) begins in `blocks`.
    last_stage_start: usize,
}

impl FoldedResNet {
    fn new(arch: BackboneArch, tensors: &HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        let (counts, bottleneck) = match arch {
            BackboneArch::Resnet18 => ([2, 2, 2, 2], false),
            BackboneArch::Resnet34 => ([3, 4, 6, 3], false),
            BackboneArch::Resnet50 => ([3, 4, 6, 3], true),
            BackboneArch::MobileNetV4Small => {
                return Err(WickError::InvalidSpec("MobileNetV4 is not a ResNet".into()))
            }
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let stem = FoldedConv::new(tensors, "conv1", "bn1", 2, 3, device)?;
        let mut blocks = Vec::new();
        let mut c_in = 64;
        let mut last_stage_start = 0;
        for (layer, (&count, width)) in counts.iter().zip([64, 128, 256, 512]).enumerate() {
            let c_out = width * expansion;
            last_stage_start = blocks.len();
            for index in 0..count {
                let stride = if index == 0 && layer > 0 { 2 } else { 1 };
                let p = format!("layer{}.{index}", layer + 1);
                let downsample = if stride != 1 || c_in != c_out {
                    Some(FoldedConv::new(
                        tensors,
                        &format!("{p}.downsample.0"),
                        &format!("{p}.downsample.1"),
                        stride,
                        0,
                        device,
                    )?)
                } else {
                    None
                };
                let conv = |i: usize, stride: usize, padding: usize| {
                    FoldedConv::new(
                        tensors,
                        &format!("{p}.conv{i}"),
                        &format!("{p}.bn{i}"),
                        stride,
                        padding,
                        device,
                    )
                };
                // torchvision's v1.5 bottleneck strides in its 3×3 convolution, as candle's does.
                let convs = if bottleneck {
                    vec![conv(1, 1, 0)?, conv(2, stride, 1)?, conv(3, 1, 0)?]
                } else {
                    vec![conv(1, stride, 1)?, conv(2, 1, 1)?]
                };
                blocks.push(ResBlock { convs, downsample });
                c_in = c_out;
            }
        }
        Ok(Self {
            stem,
            blocks,
            last_stage_start,
        })
    }

    /// The stem: 7×7 convolution, stride 2, ReLU, then a 3×3 max-pool with stride 2 and padding 1.
    fn stem_forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.contiguous()?;
        let s = &self.stem;
        if x.device().is_cpu() {
            let block = ConvBlock {
                stride: s.stride,
                padding: s.padding,
                relu: true,
                max_pool: Some(MaxPool {
                    size: 3,
                    stride: 2,
                    padding: 1,
                }),
            };
            return Ok(conv_block(&x, &s.weight, &s.bias, block)?);
        }
        candle_stem_pool(&candle_conv_bias(
            &x, &s.weight, &s.bias, s.stride, s.padding, true,
        )?)
    }

    fn run_blocks(&self, x: &Tensor, blocks: &[ResBlock]) -> Result<Tensor> {
        let mut x = x.clone();
        for block in blocks {
            x = block.forward(&x)?;
        }
        Ok(x)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = self.run_blocks(&self.stem_forward(x)?, &self.blocks)?;
        Ok(x.mean(D::Minus1)?.mean(D::Minus1)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;
    use candle_nn::VarMap;
    use rand::{Rng, SeedableRng};

    /// Random ResNet-18 tensors with non-trivial batch-norm statistics.
    fn random_resnet18() -> HashMap<String, Tensor> {
        random_tensors(|vb| {
            candle_transformers::models::resnet::resnet18_no_final_layer(vb).unwrap();
        })
    }

    /// Random tensors of the model `build` makes, with non-trivial batch-norm statistics.
    fn random_tensors(build: impl FnOnce(VarBuilder)) -> HashMap<String, Tensor> {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        build(vb);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let data = varmap.data().lock().unwrap();
        data.iter()
            .map(|(name, var)| {
                let t = var.as_tensor();
                let t = if name.contains("bn") || name.contains("downsample.1") {
                    let (lo, hi) = if name.ends_with("running_var") {
                        (0.5, 2.0)
                    } else {
                        (-0.5, 1.5)
                    };
                    let v: Vec<f32> = (0..t.elem_count())
                        .map(|_| rng.random_range(lo..hi))
                        .collect();
                    Tensor::from_vec(v, t.dims(), &Device::Cpu).unwrap()
                } else {
                    t.clone()
                };
                (name.clone(), t)
            })
            .collect()
    }

    #[test]
    fn cpu_resnet_matches_candle_transformers() {
        let tensors = random_resnet18();
        let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let reference = candle_transformers::models::resnet::resnet18_no_final_layer(vb).unwrap();
        assert_cpu_matches(BackboneArch::Resnet18, tensors, &reference);
    }

    #[test]
    fn cpu_bottleneck_resnet50_matches_candle_transformers() {
        let tensors = random_tensors(|vb| {
            candle_transformers::models::resnet::resnet50_no_final_layer(vb).unwrap();
        });
        let vb = VarBuilder::from_tensors(tensors.clone(), DType::F32, &Device::Cpu);
        let reference = candle_transformers::models::resnet::resnet50_no_final_layer(vb).unwrap();
        assert_cpu_matches(BackboneArch::Resnet50, tensors, &reference);
    }

    #[test]
    fn mobilenetv4_gives_960_features_per_image() {
        use candle_transformers::models::mobilenetv4;
        let tensors = random_tensors(|vb| {
            mobilenetv4::mobilenetv4_no_final_layer(&mobilenetv4::Config::small(), vb).unwrap();
        });
        let backbone =
            FrozenBackbone::from_tensors(BackboneArch::MobileNetV4Small, tensors, &Device::Cpu)
                .unwrap();
        let images = Tensor::rand(0f32, 1f32, (3, 3, 64, 64), &Device::Cpu).unwrap();
        let features = backbone.features(&images).unwrap();
        assert_eq!(
            features.dims(),
            &[3, BackboneArch::MobileNetV4Small.feature_len()]
        );
        assert!(features
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .all(|v| v.is_finite()));
        assert!(backbone.cpu_resnet().is_none());
    }

    /// Wick's folded CPU network gives candle-transformers' features for two random images.
    fn assert_cpu_matches(arch: BackboneArch, tensors: HashMap<String, Tensor>, reference: &Func) {
        let cpu = FrozenBackbone::from_tensors(arch, tensors, &Device::Cpu).unwrap();
        assert!(cpu.cpu_resnet().is_some());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let v: Vec<f32> = (0..2 * 3 * 64 * 64).map(|_| rng.random::<f32>()).collect();
        let images = Tensor::from_vec(v, (2, 3, 64, 64), &Device::Cpu).unwrap();
        let ours = cpu.features(&images).unwrap();
        let x = images
            .broadcast_sub(&cpu.mean)
            .unwrap()
            .broadcast_div(&cpu.std)
            .unwrap();
        let want = reference.forward(&x).unwrap();
        assert_eq!(ours.dims(), &[2, arch.feature_len()]);
        let (a, b) = (
            ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * scale,
                "feature {i}: {x} vs {y} (scale {scale})"
            );
        }
    }

    /// The candle-op path GPUs take through the folded network gives the fused CPU ops' answers
    /// (the CPU twin of fine-tuning and folded inference on CUDA).
    #[test]
    fn candle_ops_twin_of_the_folded_convolutions() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let mut rand = |dims: &[usize]| {
            let v: Vec<f32> = (0..dims.iter().product::<usize>())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            Tensor::from_vec(v, dims, &Device::Cpu).unwrap()
        };
        let x = rand(&[2, 8, 15, 15]);
        for (k, stride, padding) in [(3, 1, 1), (3, 2, 1), (1, 2, 0), (7, 2, 3)] {
            let (w, b) = (rand(&[6, 8, k, k]), rand(&[6]));
            for relu in [false, true] {
                let fused = conv_bias(&x, &w, &b, stride, padding, relu).unwrap();
                let candle = candle_conv_bias(&x, &w, &b, stride, padding, relu).unwrap();
                let diff = (fused - candle)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(diff < 1e-4, "k{k} s{stride} p{padding} relu {relu}: {diff}");
            }
        }
        let relu = rand(&[2, 6, 15, 15]).relu().unwrap();
        let pooled = candle_stem_pool(&relu).unwrap();
        let b = Tensor::zeros(6, DType::F32, &Device::Cpu).unwrap();
        // An identity 1×1 convolution: the fused op's pool on the activations themselves.
        let eye = Tensor::eye(6, DType::F32, &Device::Cpu)
            .unwrap()
            .reshape((6, 6, 1, 1))
            .unwrap();
        let fused = conv_block(
            &relu,
            &eye,
            &b,
            ConvBlock {
                stride: 1,
                padding: 0,
                relu: true,
                max_pool: Some(MaxPool {
                    size: 3,
                    stride: 2,
                    padding: 1,
                }),
            },
        )
        .unwrap();
        let diff = (fused - pooled)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let mut tensors = random_resnet18();
        tensors.remove("layer3.1.bn2.running_var");
        let err = FrozenBackbone::from_tensors(BackboneArch::Resnet18, tensors, &Device::Cpu)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("layer3.1.bn2.running_var"), "{err}");
    }
}
