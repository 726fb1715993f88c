//! Transfer learning: a frozen candle-transformers ResNet backbone turns images into feature vectors;
//! only a new head is trained on them.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Func, Module, VarBuilder};

use crate::error::{Result, WickError};
use crate::model::spec::BackboneArch;

/// ImageNet channel statistics, which the pretrained ResNets expect.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

pub struct FrozenBackbone {
    func: Func<'static>,
    mean: Tensor,
    std: Tensor,
}

impl FrozenBackbone {
    /// Loads backbone weights from a safetensors file in candle-transformers' ResNet naming.
    pub fn load(arch: BackboneArch, weights: &Path, device: &Device) -> Result<Self> {
        let tensors = candle_core::safetensors::load(weights, device).map_err(|e| {
            WickError::data(weights, format!("is not a readable safetensors file ({e}); point the backbone at a ResNet .safetensors file"))
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let func = match arch {
            BackboneArch::Resnet18 => candle_transformers::models::resnet::resnet18_no_final_layer(vb),
            BackboneArch::Resnet34 => candle_transformers::models::resnet::resnet34_no_final_layer(vb),
        }
        .map_err(|e| WickError::data(weights, format!("does not hold {arch:?} weights ({e})")))?;
        let mean = Tensor::from_slice(&IMAGENET_MEAN, (1, 3, 1, 1), device)?;
        let std = Tensor::from_slice(&IMAGENET_STD, (1, 3, 1, 1), device)?;
        Ok(Self { func, mean, std })
    }

    /// Feature vectors `(N, 512)` for images `(N, 3, H, W)` with values in `[0, 1]`.
    pub fn features(&self, images: &Tensor) -> Result<Tensor> {
        let x = images.broadcast_sub(&self.mean)?.broadcast_div(&self.std)?;
        Ok(self.func.forward(&x)?)
    }
}
