//! Optimisers: SGD with momentum, Adam and AdamW.

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer as _, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    #[default]
    AdamW,
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Ok(Self::Sgd),
            "adam" => Ok(Self::Adam),
            "adamw" => Ok(Self::AdamW),
            _ => Err(format!("unknown optimiser {s:?}; use sgd, adam or adamw")),
        }
    }
}

pub(crate) enum Optimizer {
    Sgd { vars: Vec<Var>, velocity: Vec<Option<Tensor>>, lr: f64, momentum: f64, weight_decay: f64 },
    Adam(AdamW),
}

impl Optimizer {
    pub fn new(kind: OptimizerKind, vars: Vec<Var>, lr: f64, momentum: f64, weight_decay: f64) -> Result<Self> {
        Ok(match kind {
            OptimizerKind::Sgd => Self::Sgd { velocity: vec![None; vars.len()], vars, lr, momentum, weight_decay },
            // Adam is AdamW without decoupled weight decay.
            OptimizerKind::Adam | OptimizerKind::AdamW => {
                let weight_decay = if kind == OptimizerKind::Adam { 0.0 } else { weight_decay };
                Self::Adam(AdamW::new(vars, ParamsAdamW { lr, weight_decay, ..Default::default() })?)
            }
        })
    }

    pub fn backward_step(&mut self, loss: &Tensor) -> Result<()> {
        let grads = loss.backward()?;
        self.step(&grads)
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        match self {
            Self::Adam(adam) => adam.step(grads)?,
            Self::Sgd { vars, velocity, lr, momentum, weight_decay } => {
                for (var, v) in vars.iter().zip(velocity.iter_mut()) {
                    let Some(g) = grads.get(var) else { continue };
                    let g = if *weight_decay > 0.0 { (g + (var.as_tensor() * *weight_decay)?)? } else { g.clone() };
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
