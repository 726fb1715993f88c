//! Fine-tuning a backbone's last stage: its residual blocks, started from the pretrained (folded)
//! weights, trained with a new linear head on the trunk's activations.
//!
//! The stage learns at a tenth of the head's rate: it starts from good weights, which a head's
//! rate would wreck in the first epochs. Its batch norms stay folded into the convolutions
//! (frozen statistics, as when fine-tuning with PyTorch's `eval()` batch norms), so that after
//! training the stage drops back into the backbone unchanged in form.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, WickError};
use crate::model::trainable::Trainable;
use crate::model::transfer::{residual_block, FoldedConv, ResBlock};
use crate::model::Network;

/// The stage's learning rate as a share of the run's (the head's).
pub const STAGE_LR_SHARE: f64 = 0.1;

struct TrainableConv {
    weight: Var,
    bias: Var,
    stride: usize,
    padding: usize,
}

impl TrainableConv {
    fn from_folded(c: &FoldedConv) -> Result<Self> {
        Ok(Self {
            weight: Var::from_tensor(&c.weight.copy()?)?,
            bias: Var::from_tensor(&c.bias.copy()?)?,
            stride: c.stride,
            padding: c.padding,
        })
    }

    fn as_conv(&self) -> (&Tensor, &Tensor, usize, usize) {
        (
            self.weight.as_tensor(),
            self.bias.as_tensor(),
            self.stride,
            self.padding,
        )
    }

    fn folded(&self) -> Result<FoldedConv> {
        Ok(FoldedConv {
            weight: self.weight.as_tensor().copy()?.detach(),
            bias: self.bias.as_tensor().copy()?.detach(),
            stride: self.stride,
            padding: self.padding,
        })
    }
}

struct TrainableBlock {
    convs: Vec<TrainableConv>,
    downsample: Option<TrainableConv>,
}

/// A backbone's last stage and a linear head, trained together.
pub(crate) struct FineTuneNet {
    stage: Vec<TrainableBlock>,
    head_weight: Var,
    head_bias: Var,
    n_outputs: usize,
    device: Device,
}

impl FineTuneNet {
    /// The stage starts from `stage`'s weights; the head is drawn like PyTorch's default linear
    /// layer (uniform ±1/√fan_in) from `rng`.
    pub(crate) fn new(
        stage: &[ResBlock],
        n_outputs: usize,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Self> {
        let stage = stage
            .iter()
            .map(|b| {
                Ok(TrainableBlock {
                    convs: b
                        .convs
                        .iter()
                        .map(TrainableConv::from_folded)
                        .collect::<Result<_>>()?,
                    downsample: b
                        .downsample
                        .as_ref()
                        .map(TrainableConv::from_folded)
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let features = stage
            .last()
            .and_then(|b| b.convs.last())
            .map(|c| c.weight.dim(0))
            .transpose()?
            .ok_or_else(|| {
                WickError::InvalidSpec("the backbone's last stage has no blocks".into())
            })?;
        let bound = 1.0 / (features as f32).sqrt();
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let head_weight = Var::from_vec(draw(n_outputs * features), (n_outputs, features), device)?;
        let head_bias = Var::from_vec(draw(n_outputs), n_outputs, device)?;
        Ok(Self {
            stage,
            head_weight,
            head_bias,
            n_outputs,
            device: device.clone(),
        })
    }

    fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (b, block) in self.stage.iter().enumerate() {
            for (i, c) in block.convs.iter().enumerate() {
                out.push((format!("stage.{b}.conv{i}.weight"), &c.weight));
                out.push((format!("stage.{b}.conv{i}.bias"), &c.bias));
            }
            if let Some(c) = &block.downsample {
                out.push((format!("stage.{b}.downsample.weight"), &c.weight));
                out.push((format!("stage.{b}.downsample.bias"), &c.bias));
            }
        }
        out.push(("output.weight".into(), &self.head_weight));
        out.push(("output.bias".into(), &self.head_bias));
        out
    }

    /// The trained stage, as frozen blocks to put back into the backbone.
    pub(crate) fn stage_blocks(&self) -> Result<Vec<ResBlock>> {
        self.stage
            .iter()
            .map(|b| {
                Ok(ResBlock {
                    convs: b
                        .convs
                        .iter()
                        .map(TrainableConv::folded)
                        .collect::<Result<_>>()?,
                    downsample: b
                        .downsample
                        .as_ref()
                        .map(TrainableConv::folded)
                        .transpose()?,
                })
            })
            .collect()
    }

    /// The trained head as a plain network on the backbone's features.
    pub(crate) fn head(&self) -> Result<Network> {
        let tensors = HashMap::from([
            (
                "output.weight".to_string(),
                self.head_weight.as_tensor().copy()?,
            ),
            (
                "output.bias".to_string(),
                self.head_bias.as_tensor().copy()?,
            ),
        ]);
        Network::from_tensors(
            &[self.head_weight.dim(1)?],
            &[],
            self.n_outputs,
            &tensors,
            &self.device,
        )
    }
}

impl Trainable for FineTuneNet {
    fn forward(
        &self,
        x: &Tensor,
        _train: bool,
        _dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        let mut x = x.clone();
        for block in &self.stage {
            let convs: Vec<_> = block.convs.iter().map(TrainableConv::as_conv).collect();
            x = residual_block(
                &x,
                &convs,
                block.downsample.as_ref().map(TrainableConv::as_conv),
            )?;
        }
        let features = x.mean(D::Minus1)?.mean(D::Minus1)?;
        Ok(features
            .matmul(&self.head_weight.as_tensor().t()?)?
            .broadcast_add(self.head_bias.as_tensor())?)
    }

    fn param_groups(&self) -> Vec<(Vec<Var>, f64)> {
        let vars = self.named_vars();
        let (head, stage): (Vec<_>, Vec<_>) = vars
            .into_iter()
            .partition(|(n, _)| n.starts_with("output."));
        vec![
            (
                stage.into_iter().map(|(_, v)| v.clone()).collect(),
                STAGE_LR_SHARE,
            ),
            (head.into_iter().map(|(_, v)| v.clone()).collect(), 1.0),
        ]
    }

    fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        self.named_vars()
            .into_iter()
            .map(|(n, v)| Ok((n, v.as_tensor().copy()?)))
            .collect()
    }

    fn restore(&mut self, snapshot: &HashMap<String, Tensor>) -> Result<()> {
        for (name, var) in self.named_vars() {
            if let Some(t) = snapshot.get(&name) {
                var.set(t)?;
            }
        }
        Ok(())
    }

    fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;
    use crate::model::spec::BackboneArch;
    use crate::model::transfer::FrozenBackbone;
    use rand::SeedableRng;

    /// Before any training, the stage on the trunk's activations is the backbone's own last stage:
    /// the head then sees exactly the frozen backbone's features.
    #[test]
    fn the_untrained_stage_continues_the_trunk_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r18.safetensors");
        crate::model::transfer::write_random_weights(BackboneArch::Resnet18, &path).unwrap();
        let backbone =
            FrozenBackbone::load_folded(BackboneArch::Resnet18, &path, &Device::Cpu).unwrap();
        let images = Tensor::rand(0f32, 1f32, (2, 3, 64, 64), &Device::Cpu).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let net =
            FineTuneNet::new(backbone.last_stage().unwrap(), 3, &mut rng, &Device::Cpu).unwrap();
        let trunk = backbone.trunk(&images).unwrap();
        assert_eq!(trunk.dims(), &[2, 256, 4, 4]);
        let mut x = trunk;
        for block in &net.stage {
            let convs: Vec<_> = block.convs.iter().map(TrainableConv::as_conv).collect();
            x = residual_block(
                &x,
                &convs,
                block.downsample.as_ref().map(TrainableConv::as_conv),
            )
            .unwrap();
        }
        let ours = x.mean(D::Minus1).unwrap().mean(D::Minus1).unwrap();
        let want = backbone.features(&images).unwrap();
        let diff = (ours - want)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-5, "{diff}");
        assert_eq!(
            net.forward(&backbone.trunk(&images).unwrap(), true, None)
                .unwrap()
                .dims(),
            &[2, 3]
        );
        // Two groups: the stage at a tenth of the rate, the head at the run's.
        let groups = net.param_groups();
        assert_eq!(
            groups
                .iter()
                .map(|(v, s)| (v.len(), *s))
                .collect::<Vec<_>>(),
            vec![(10, STAGE_LR_SHARE), (2, 1.0)]
        );
    }
}
