//! Optimisers: SGD with momentum, Adam and AdamW.

use crate::run::OptimizerKind;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW};

use crate::error::Result;
use crate::model::cpu_ops::{update_in_place, UpdateRule};

pub(crate) enum Optimizer {
    Sgd {
        vars: Vec<Var>,
        velocity: Vec<Option<Tensor>>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    },
    Adam(AdamW),
    /// Parameters on the CPU, updated in place (`cpu_ops::update`); the same rules as above.
    Cpu(CpuOptimizer),
}

/// The CPU optimiser's state: per parameter, Adam's two moments or SGD's velocity.
pub(crate) struct CpuOptimizer {
    vars: Vec<Var>,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
    kind: OptimizerKind,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    steps: u64,
}

impl Optimizer {
    pub fn new(
        kind: OptimizerKind,
        vars: Vec<Var>,
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    ) -> Result<Self> {
        let on_cpu = vars
            .iter()
            .all(|v| v.device().is_cpu() && v.dtype() == candle_core::DType::F32);
        if on_cpu {
            // Adam is AdamW without decoupled weight decay.
            let weight_decay = if kind == OptimizerKind::Adam {
                0.0
            } else {
                weight_decay
            };
            let zeros = |v: &Var| vec![0.0f32; v.elem_count()];
            let first = vars.iter().map(zeros).collect();
            let second = if kind == OptimizerKind::Sgd {
                vec![Vec::new(); vars.len()]
            } else {
                vars.iter().map(zeros).collect()
            };
            return Ok(Self::Cpu(CpuOptimizer {
                vars,
                first,
                second,
                kind,
                lr,
                momentum,
                weight_decay,
                steps: 0,
            }));
        }
        Ok(match kind {
            OptimizerKind::Sgd => Self::Sgd {
                velocity: vec![None; vars.len()],
                vars,
                lr,
                momentum,
                weight_decay,
            },
            // Adam is AdamW without decoupled weight decay.
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let weight_decay = if kind == OptimizerKind::Adam {
                    0.0
                } else {
                    weight_decay
                };
                Self::Adam(AdamW::new(
                    vars,
                    ParamsAdamW {
                        lr,
                        weight_decay,
                        ..Default::default()
                    },
                )?)
            }
        })
    }

    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    pub(crate) fn step(&mut self, grads: &GradStore) -> Result<()> {
        match self {
            Self::Cpu(cpu) => cpu.step(grads)?,
            Self::Adam(adam) => adam.step(grads)?,
            Self::Sgd {
                vars,
                velocity,
                lr,
                momentum,
                weight_decay,
            } => {
                for (var, v) in vars.iter().zip(velocity.iter_mut()) {
                    let Some(g) = grads.get(var) else { continue };
                    let g = if *weight_decay > 0.0 {
                        (g + (var.as_tensor() * *weight_decay)?)?
                    } else {
                        g.clone()
                    };
                    // PyTorch's formulation: v = μ·v + g; θ = θ − lr·v.
                    let next = match v.take() {
                        Some(prev) if *momentum > 0.0 => ((prev * *momentum)? + g)?,
                        _ => g,
                    };
                    var.set(&(var.as_tensor() - (&next * *lr)?)?)?;
                    *v = Some(next);
                }
            }
        }
        Ok(())
    }
}

impl CpuOptimizer {
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let defaults = ParamsAdamW::default();
        let rule = match self.kind {
            OptimizerKind::Sgd => UpdateRule::Sgd {
                lr: self.lr,
                momentum: self.momentum,
                weight_decay: self.weight_decay,
            },
            OptimizerKind::Adam | OptimizerKind::AdamW => UpdateRule::Adam {
                lr: self.lr,
                beta1: defaults.beta1,
                beta2: defaults.beta2,
                eps: defaults.eps,
                weight_decay: self.weight_decay,
                step: self.steps,
            },
        };
        for ((var, first), second) in self.vars.iter().zip(&mut self.first).zip(&mut self.second) {
            if let Some(g) = grads.get(var) {
                update_in_place(var.as_tensor(), g, rule, first, second)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;
    use candle_core::Device;

    /// The in-place CPU update against candle's AdamW (and our tensor SGD) over a few steps.
    #[test]
    fn in_place_updates_match_the_tensor_optimisers() {
        for kind in [
            OptimizerKind::AdamW,
            OptimizerKind::Adam,
            OptimizerKind::Sgd,
        ] {
            let start: Vec<f32> = (0..40).map(|i| (i as f32 * 0.37).sin()).collect();
            let targets: Vec<f32> = (0..40).map(|i| (i as f32 * 0.11).cos()).collect();
            let target = Tensor::new(targets.as_slice(), &Device::Cpu).unwrap();
            let cpu_var = Var::new(start.as_slice(), &Device::Cpu).unwrap();
            let ref_var = Var::new(start.as_slice(), &Device::Cpu).unwrap();
            let mut cpu = Optimizer::new(kind, vec![cpu_var.clone()], 0.05, 0.9, 0.01).unwrap();
            assert!(matches!(cpu, Optimizer::Cpu(_)));
            let wd = if kind == OptimizerKind::Adam {
                0.0
            } else {
                0.01
            };
            let mut reference = match kind {
                OptimizerKind::Sgd => Optimizer::Sgd {
                    vars: vec![ref_var.clone()],
                    velocity: vec![None],
                    lr: 0.05,
                    momentum: 0.9,
                    weight_decay: 0.01,
                },
                _ => Optimizer::Adam(
                    AdamW::new(
                        vec![ref_var.clone()],
                        ParamsAdamW {
                            lr: 0.05,
                            weight_decay: wd,
                            ..Default::default()
                        },
                    )
                    .unwrap(),
                ),
            };
            for _ in 0..5 {
                for (var, opt) in [(&cpu_var, &mut cpu), (&ref_var, &mut reference)] {
                    let loss = (var.as_tensor() - &target)
                        .unwrap()
                        .sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap();
                    opt.backward_step(&loss).unwrap();
                }
            }
            let (a, b) = (
                cpu_var.as_tensor().to_vec1::<f32>().unwrap(),
                ref_var.as_tensor().to_vec1::<f32>().unwrap(),
            );
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "{kind:?}: in place {x}, tensors {y}");
            }
            assert_ne!(a, start, "{kind:?}: the parameters moved");
        }
    }
}
