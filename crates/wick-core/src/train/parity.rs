//! Device parity: a LeNet-like stack with batch norm trained one step on a device with candle's ops
//! (what GPUs run) against the same stack on the CPU with the fused ops, from the same seed. Used by
//! the tests (the CPU twin runs in CI) and by `wick bench --parity` on a GPU machine.

use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::error::Result;
use crate::model::{Activation, Layer, Network, Padding};
use crate::train::DeviceChoice;

/// Largest differences are measured relative to the largest value of the CPU's result (for a
/// gradient, at least a tenth of the largest gradient anywhere in the network: a convolution's bias
/// before batch norm has a gradient that is zero but for rounding).
pub const PARITY_TOLERANCE: f32 = 1e-4;

/// How far the device's logits and gradients are from the CPU's.
#[derive(Debug, Clone, Serialize)]
pub struct ParityReport {
    pub device: String,
    /// The largest difference in the logits, relative to the largest logit.
    pub logits: f32,
    /// The same for each trainable tensor's gradient, in the network's order.
    pub gradients: Vec<f32>,
}

impl ParityReport {
    pub fn passed(&self) -> bool {
        self.logits <= PARITY_TOLERANCE && self.gradients.iter().all(|g| *g <= PARITY_TOLERANCE)
    }
}

fn largest(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

fn relative_difference(got: &[f32], want: &[f32], floor: f32) -> f32 {
    let scale = largest(want).max(floor).max(f32::MIN_POSITIVE);
    if got.len() != want.len() {
        return f32::INFINITY;
    }
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / scale)
        .fold(0.0, f32::max)
}

/// Runs the parity check on `device` (`Cpu` compares candle's general ops with the fused CPU ops).
pub fn device_parity(device: DeviceChoice) -> Result<ParityReport> {
    let device = device.open()?;
    let relu = Layer::Activation {
        function: Activation::Relu,
    };
    let layers = vec![
        Layer::Conv2d {
            filters: 6,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
        },
        relu.clone(),
        Layer::MaxPool2d { size: 2 },
        Layer::Conv2d {
            filters: 8,
            kernel: 3,
            stride: 1,
            padding: Padding::Valid,
        },
        Layer::BatchNorm,
        relu.clone(),
        Layer::MaxPool2d { size: 2 },
        Layer::Flatten,
        Layer::Dense { units: 16 },
        relu,
    ];
    let cpu = Network::new(
        &[1, 14, 14],
        &layers,
        4,
        &mut ChaCha8Rng::seed_from_u64(31),
        &Device::Cpu,
    )?;
    let other = Network::with_candle_ops(
        &[1, 14, 14],
        &layers,
        4,
        &mut ChaCha8Rng::seed_from_u64(31),
        &device,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x: Vec<f32> = (0..6 * 14 * 14)
        .map(|_| rng.random_range(-1.0f32..1.0))
        .collect();
    let y = [0u32, 3, 1, 2, 2, 0];
    let run = |net: &Network, device: &Device| -> Result<(Vec<f32>, Vec<Vec<f32>>)> {
        let xs = Tensor::from_vec(x.clone(), (6, 1, 14, 14), device)?;
        let ys = Tensor::new(&y, device)?;
        let logits = net.forward(&xs, true, None)?;
        let grads = candle_nn::loss::cross_entropy(&logits, &ys)?.backward()?;
        let mut out = Vec::new();
        for var in net.trainable_vars() {
            let g = grads.get(&var).ok_or_else(|| {
                crate::WickError::InvalidSpec("a trainable tensor got no gradient".into())
            })?;
            out.push(g.to_device(&Device::Cpu)?.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok((
            logits
                .to_device(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?,
            out,
        ))
    };
    let (logits_cpu, grads_cpu) = run(&cpu, &Device::Cpu)?;
    let (logits_dev, grads_dev) = run(&other, &device)?;
    let gradient_floor = 0.1 * grads_cpu.iter().map(|g| largest(g)).fold(0.0, f32::max);
    Ok(ParityReport {
        device: crate::train::describe_device(&device),
        logits: relative_difference(&logits_dev, &logits_cpu, 1e-3),
        gradients: grads_dev
            .iter()
            .zip(&grads_cpu)
            .map(|(a, b)| relative_difference(a, b, gradient_floor))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test
    use super::*;

    fn check(device: DeviceChoice) {
        let report = device_parity(device).expect("the device opens");
        assert!(report.passed(), "{report:?}");
        assert_eq!(
            report.gradients.len(),
            10,
            "conv ×2, batch norm, dense, output: weight and bias each"
        );
    }

    /// The CPU twin of the GPU checks: candle's general ops (the formulation the GPUs run) on the
    /// CPU against the fused CPU ops. CI has no GPU; `scripts/gpu-check.sh` runs the CUDA one.
    #[test]
    fn device_parity_on_the_cpu_twin() {
        check(DeviceChoice::Cpu);
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn device_parity_on_cuda() {
        check(DeviceChoice::Cuda(0));
    }

    /// candle 0.11's Metal conv2d with a non-contiguous kernel is reported wrong in candle's open pull
    /// requests; this checks Wick's stack on a Mac.
    #[cfg(feature = "metal")]
    #[test]
    fn device_parity_on_metal() {
        check(DeviceChoice::Metal);
    }
}
