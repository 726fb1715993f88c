//! Optimiser updates in place on the CPU: one pass over each parameter, its gradient and its moment
//! buffers, with no temporaries. Candle's AdamW builds about ten intermediate tensors per parameter
//! per step (each allocated, and each a separate pass over memory).

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, InplaceOp2, Layout, Result, Tensor};

use super::cpu_slice;

/// One update rule with its hyper-parameters (PyTorch's formulations).
#[derive(Debug, Clone, Copy)]
pub(crate) enum UpdateRule {
    /// AdamW (Adam when `weight_decay` is 0): θ ← θ(1 − lr·wd) − lr·m̂/(√v̂ + eps).
    Adam {
        lr: f64,
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        step: u64,
    },
    /// SGD with momentum: v ← μv + g + wd·θ; θ ← θ − lr·v.
    Sgd {
        lr: f64,
        momentum: f64,
        weight_decay: f64,
    },
}

struct UpdateOp<'a> {
    rule: UpdateRule,
    /// Adam's first and second moments, or SGD's velocity (and an unused empty slice).
    state: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

/// Updates `param` in place from `grad`, advancing the moment buffers (each as long as `param`).
pub(crate) fn update_in_place(
    param: &Tensor,
    grad: &Tensor,
    rule: UpdateRule,
    first: &mut [f32],
    second: &mut [f32],
) -> Result<()> {
    let grad = grad.contiguous()?;
    param.inplace_op2(
        &grad,
        &UpdateOp {
            rule,
            state: Mutex::new((first, second)),
        },
    )
}

impl InplaceOp2 for UpdateOp<'_> {
    fn name(&self) -> &'static str {
        "wick-update"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let grad = cpu_slice(s2, l2)?;
        let CpuStorage::F32(values) = s1 else {
            bail!("optimiser: parameters must be f32")
        };
        let Some((start, end)) = l1.contiguous_offsets() else {
            bail!("optimiser: parameters must be contiguous")
        };
        let theta = &mut values[start..end];
        let mut state = self
            .state
            .lock()
            .map_err(|_| candle_core::Error::Msg("optimiser: state lock poisoned".into()))?;
        let (first, second) = &mut *state;
        if grad.len() != theta.len() || first.len() != theta.len() {
            bail!(
                "optimiser: a gradient or moment of {} values for a parameter of {}",
                grad.len(),
                theta.len()
            );
        }
        match self.rule {
            UpdateRule::Adam {
                lr,
                beta1,
                beta2,
                eps,
                weight_decay,
                step,
            } => {
                if second.len() != theta.len() {
                    bail!(
                        "optimiser: second moment of {} values for a parameter of {}",
                        second.len(),
                        theta.len()
                    );
                }
                let t = step.min(i32::MAX as u64) as i32;
                let (scale_m, scale_v) = (1.0 / (1.0 - beta1.powi(t)), 1.0 / (1.0 - beta2.powi(t)));
                let (b1, b2, eps, decay, lr) = (
                    beta1 as f32,
                    beta2 as f32,
                    eps as f32,
                    (1.0 - lr * weight_decay) as f32,
                    lr as f32,
                );
                let (scale_m, scale_v) = (scale_m as f32, scale_v as f32);
                for (((th, &g), m), v) in theta
                    .iter_mut()
                    .zip(grad)
                    .zip(first.iter_mut())
                    .zip(second.iter_mut())
                {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let (m_hat, v_hat) = (*m * scale_m, *v * scale_v);
                    *th = *th * decay - lr * (m_hat / (v_hat.sqrt() + eps));
                }
            }
            UpdateRule::Sgd {
                lr,
                momentum,
                weight_decay,
            } => {
                let (lr, mu, wd) = (lr as f32, momentum as f32, weight_decay as f32);
                for ((th, &g), vel) in theta.iter_mut().zip(grad).zip(first.iter_mut()) {
                    let g = g + wd * *th;
                    *vel = mu * *vel + g;
                    *th -= lr * *vel;
                }
            }
        }
        Ok(())
    }
}
