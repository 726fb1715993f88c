//! Transfer learning: a frozen pretrained backbone turns images into feature vectors; only a new
//! head is trained on them.
//!
//! The weights use candle-transformers' naming (torchvision's for the ResNets, timm's for
//! MobileNetV4). On the CPU a ResNet runs through the fused convolution of `cpu_ops` with each
//! batch norm folded into its convolution (the backbone is frozen, so its statistics never change):
//! features are computed once per image and dominate transfer-learning time. Elsewhere (CUDA,
//! Metal), and for MobileNetV4 everywhere, the backbone runs as candle-transformers' own model.

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
    Cpu(CpuResNet),
    Candle(Func<'static>),
}

impl FrozenBackbone {
    /// Loads backbone weights from a safetensors file in candle-transformers' naming.
    pub fn load(arch: BackboneArch, weights: &Path, device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load(weights, device).map_err(|e| {
            WickError::data(weights, format!("is not a readable safetensors file ({e}); point the backbone at a {} .safetensors file", arch.title()))
        })?;
        Self::from_tensors(arch, tensors, device).map_err(|e| WickError::data(weights, format!("does not hold {arch:?} weights ({e})")))
    }

    /// A backbone from tensors by name (candle-transformers' naming).
    pub fn from_tensors(arch: BackboneArch, tensors: HashMap<String, Tensor>, device: &Device) -> Result<Self> {
        use candle_transformers::models::{mobilenetv4, resnet};
        let net = match arch {
            BackboneArch::Resnet18 | BackboneArch::Resnet34 | BackboneArch::Resnet50 if device.is_cpu() => {
                BackboneNet::Cpu(CpuResNet::new(arch, &tensors)?)
            }
            _ => {
                // candle's VarBuilder names a missing tensor in its error, as CpuResNet does.
                let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
                BackboneNet::Candle(match arch {
                    BackboneArch::Resnet18 => resnet::resnet18_no_final_layer(vb)?,
                    BackboneArch::Resnet34 => resnet::resnet34_no_final_layer(vb)?,
                    BackboneArch::Resnet50 => resnet::resnet50_no_final_layer(vb)?,
                    BackboneArch::MobileNetV4Small => {
                        let net = mobilenetv4::mobilenetv4_no_final_layer(&mobilenetv4::Config::small(), vb)?;
                        // It keeps the pooled 1×1 dimensions: (N, 960, 1, 1) to (N, 960).
                        Func::new(move |x| net.forward(x)?.flatten_from(1))
                    }
                })
            }
        };
        let mean = Tensor::from_slice(&IMAGENET_MEAN, (1, 3, 1, 1), device)?;
        let std = Tensor::from_slice(&IMAGENET_STD, (1, 3, 1, 1), device)?;
        Ok(Self { arch, net, mean, std })
    }

    pub fn arch(&self) -> BackboneArch {
        self.arch
    }

    /// The folded CPU network (for export); `None` when the backbone runs as candle's model.
    pub(crate) fn cpu_resnet(&self) -> Option<&CpuResNet> {
        match &self.net {
            BackboneNet::Cpu(net) => Some(net),
            BackboneNet::Candle(_) => None,
        }
    }

    /// Feature vectors `(N, arch.feature_len())` for images `(N, 3, H, W)` with values in `[0, 1]`.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let x = images.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        match &self.net {
            BackboneNet::Cpu(net) => net.forward(&x),
            BackboneNet::Candle(func) => Ok(func.forward(&x)?),
        }
    }
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
        BackboneArch::MobileNetV4Small => drop(mobilenetv4::mobilenetv4_no_final_layer(&mobilenetv4::Config::small(), vb)?),
    }
    varmap.save(path)?;
    Ok(())
}

/// A convolution with its batch norm folded in: `w' = w·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
pub(crate) struct FoldedConv {
    pub(crate) weight: Tensor,
    pub(crate) bias: Tensor,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
}

impl FoldedConv {
    fn new(tensors: &HashMap<String, Tensor>, conv: &str, bn: &str, stride: usize, padding: usize) -> Result<Self> {
        let get = |name: String| {
            tensors
                .get(&name)
                .ok_or_else(|| WickError::InvalidSpec(format!("the backbone weights have no tensor `{name}`")))
                .and_then(|t| Ok(t.to_dtype(DType::F32)?.to_device(&Device::Cpu)?))
        };
        let weight = get(format!("{conv}.weight"))?;
        let (gamma, beta) = (get(format!("{bn}.weight"))?, get(format!("{bn}.bias"))?);
        let (mean, var) = (get(format!("{bn}.running_mean"))?, get(format!("{bn}.running_var"))?);
        let filters = weight.dim(0)?;
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        // Detached: the backbone is frozen, so nothing is kept for a backward pass through it.
        let weight = weight.broadcast_mul(&scale.reshape((filters, 1, 1, 1))?)?.contiguous()?.detach();
        let bias = (beta - (mean * &scale)?)?.detach();
        Ok(Self { weight, bias, stride, padding })
    }

    fn block(&self, relu: bool) -> ConvBlock {
        ConvBlock { stride: self.stride, padding: self.padding, relu, max_pool: None }
    }

    fn forward(&self, x: &Tensor, relu: bool) -> Result<Tensor> {
        Ok(conv_block(x, &self.weight, &self.bias, self.block(relu))?)
    }

    /// `maxpool(relu(conv(x)))` in one op.
    fn forward_relu_pool(&self, x: &Tensor, pool: MaxPool) -> Result<Tensor> {
        Ok(conv_block(x, &self.weight, &self.bias, ConvBlock { max_pool: Some(pool), ..self.block(true) })?)
    }

    /// `relu(conv(x) + residual)`.
    fn forward_residual_relu(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        Ok(conv_block_residual(x, &self.weight, &self.bias, self.block(true), residual)?)
    }
}

/// One residual block: its convolutions in order (a basic block's two 3×3, a bottleneck's 1×1, 3×3,
/// 1×1), ReLU after each but the last, whose output is added to the shortcut before its ReLU. The
/// shortcut is a strided 1×1 convolution where the shape changes.
pub(crate) struct ResBlock {
    pub(crate) convs: Vec<FoldedConv>,
    pub(crate) downsample: Option<FoldedConv>,
}

/// candle-transformers' ResNet (torchvision's layout) for inference on the CPU.
pub(crate) struct CpuResNet {
    pub(crate) stem: FoldedConv,
    pub(crate) blocks: Vec<ResBlock>,
}

impl CpuResNet {
    fn new(arch: BackboneArch, tensors: &HashMap<String, Tensor>) -> Result<Self> {
        let (counts, bottleneck) = match arch {
            BackboneArch::Resnet18 => ([2, 2, 2, 2], false),
            BackboneArch::Resnet34 => ([3, 4, 6, 3], false),
            BackboneArch::Resnet50 => ([3, 4, 6, 3], true),
            BackboneArch::MobileNetV4Small => return Err(WickError::InvalidSpec("MobileNetV4 is not a ResNet".into())),
        };
        let expansion = if bottleneck { 4 } else { 1 };
        let stem = FoldedConv::new(tensors, "conv1", "bn1", 2, 3)?;
        let mut blocks = Vec::new();
        let mut c_in = 64;
        for (layer, (&count, width)) in counts.iter().zip([64, 128, 256, 512]).enumerate() {
            let c_out = width * expansion;
            for index in 0..count {
                let stride = if index == 0 && layer > 0 { 2 } else { 1 };
                let p = format!("layer{}.{index}", layer + 1);
                let downsample = if stride != 1 || c_in != c_out {
                    Some(FoldedConv::new(tensors, &format!("{p}.downsample.0"), &format!("{p}.downsample.1"), stride, 0)?)
                } else {
                    None
                };
                let conv = |i: usize, stride: usize, padding: usize| FoldedConv::new(tensors, &format!("{p}.conv{i}"), &format!("{p}.bn{i}"), stride, padding);
                // torchvision's v1.5 bottleneck strides in its 3×3 convolution, as candle's does.
                let convs = if bottleneck { vec![conv(1, 1, 0)?, conv(2, stride, 1)?, conv(3, 1, 0)?] } else { vec![conv(1, stride, 1)?, conv(2, 1, 1)?] };
                blocks.push(ResBlock { convs, downsample });
                c_in = c_out;
            }
        }
        Ok(Self { stem, blocks })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // The stem: 7×7 convolution, stride 2, ReLU, then a 3×3 max-pool with stride 2 and padding 1.
        let mut x = self.stem.forward_relu_pool(&x.contiguous()?, MaxPool { size: 3, stride: 2, padding: 1 })?;
        for block in &self.blocks {
            let Some((last, inner)) = block.convs.split_last() else { continue };
            let mut y = x.clone();
            for conv in inner {
                y = conv.forward(&y, true)?;
            }
            let shortcut = match &block.downsample {
                Some(ds) => ds.forward(&x, false)?,
                None => x,
            };
            x = last.forward_residual_relu(&y, &shortcut)?;
        }
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
                    let (lo, hi) = if name.ends_with("running_var") { (0.5, 2.0) } else { (-0.5, 1.5) };
                    let v: Vec<f32> = (0..t.elem_count()).map(|_| rng.random_range(lo..hi)).collect();
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
        let backbone = FrozenBackbone::from_tensors(BackboneArch::MobileNetV4Small, tensors, &Device::Cpu).unwrap();
        let images = Tensor::rand(0f32, 1f32, (3, 3, 64, 64), &Device::Cpu).unwrap();
        let features = backbone.features(&images).unwrap();
        assert_eq!(features.dims(), &[3, BackboneArch::MobileNetV4Small.feature_len()]);
        assert!(features.flatten_all().unwrap().to_vec1::<f32>().unwrap().iter().all(|v| v.is_finite()));
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
        let x = images.broadcast_sub(&cpu.mean).unwrap().broadcast_div(&cpu.std).unwrap();
        let want = reference.forward(&x).unwrap();
        assert_eq!(ours.dims(), &[2, arch.feature_len()]);
        let (a, b) = (ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(), want.flatten_all().unwrap().to_vec1::<f32>().unwrap());
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!((x - y).abs() <= 1e-4 * scale, "feature {i}: {x} vs {y} (scale {scale})");
        }
    }

    #[test]
    fn a_missing_tensor_is_named() {
        let mut tensors = random_resnet18();
        tensors.remove("layer3.1.bn2.running_var");
        let err = FrozenBackbone::from_tensors(BackboneArch::Resnet18, tensors, &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("layer3.1.bn2.running_var"), "{err}");
    }
}
