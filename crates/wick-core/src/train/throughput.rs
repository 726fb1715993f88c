//! Training and inference throughput of a network on synthetic data, for `wick bench`.

use std::time::Instant;

use candle_core::{DType, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::data::ImageShape;
use crate::error::Result;
use crate::model::{Layer, Network};
use crate::train::optim::{Optimizer, OptimizerKind};
use crate::train::DeviceChoice;

/// Images per second of a CNN: training (forward, backward, AdamW step) and inference.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CnnThroughput {
    pub train_images_per_sec: f64,
    pub infer_images_per_sec: f64,
}

/// How much work a throughput measurement does.
#[derive(Debug, Clone, Copy)]
pub struct ThroughputWork {
    pub train_batch: usize,
    pub train_steps: usize,
    pub infer_batch: usize,
    pub infer_batches: usize,
}

/// Measures `train_steps` optimiser steps of `train_batch` images and `infer_batches` forward passes of
/// `infer_batch` images, after one warm-up step of each.
pub fn cnn_throughput(layers: &[Layer], shape: ImageShape, n_classes: usize, work: ThroughputWork, device: DeviceChoice) -> Result<CnnThroughput> {
    let ThroughputWork { train_batch, train_steps, infer_batch, infer_batches } = work;
    let device = device.open()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let net = Network::new(&[shape.channels, shape.height, shape.width], layers, n_classes, &mut rng, &device)?;
    let mut optimizer = Optimizer::new(OptimizerKind::AdamW, net.trainable_vars(), 1e-3, 0.0, 1e-2)?;
    let images = |n: usize, rng: &mut ChaCha8Rng| -> Result<Tensor> {
        let v: Vec<f32> = (0..n * shape.len()).map(|_| rng.random::<f32>()).collect();
        Ok(Tensor::from_vec(v, (n, shape.channels, shape.height, shape.width), &device)?)
    };
    let x = images(train_batch, &mut rng)?;
    let y: Vec<u32> = (0..train_batch).map(|_| rng.random_range(0..n_classes as u32)).collect();
    let y = Tensor::from_vec(y, train_batch, &device)?;
    let mut step = || -> Result<()> {
        let logits = net.forward(&x, true, None)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        optimizer.backward_step(&loss)?;
        // Reading the loss waits for the device, so GPU timings are honest.
        loss.to_dtype(DType::F32)?.to_scalar::<f32>()?;
        Ok(())
    };
    step()?;
    let started = Instant::now();
    for _ in 0..train_steps {
        step()?;
    }
    let train_images_per_sec = (train_steps * train_batch) as f64 / started.elapsed().as_secs_f64();

    let xi = images(infer_batch, &mut rng)?;
    // What prediction uses: the CPU plan on the CPU, candle elsewhere.
    let cpu = net.cpu_net()?;
    let pixels = xi.flatten_all()?.to_vec1::<f32>()?;
    let infer = || -> Result<()> {
        match &cpu {
            Some(cpu) => {
                std::hint::black_box(cpu.forward(&pixels, infer_batch));
            }
            None => {
                net.forward(&xi, false, None)?.sum_all()?.to_dtype(DType::F32)?.to_scalar::<f32>()?;
            }
        }
        Ok(())
    };
    infer()?;
    let started = Instant::now();
    for _ in 0..infer_batches {
        infer()?;
    }
    let infer_images_per_sec = (infer_batches * infer_batch) as f64 / started.elapsed().as_secs_f64();
    Ok(CnnThroughput { train_images_per_sec, infer_images_per_sec })
}
