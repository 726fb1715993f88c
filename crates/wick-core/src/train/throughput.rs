//! Training and inference throughput of networks on synthetic data, and this CPU's f32 peak, for
//! `wick bench`.

use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::ImageShape;
use crate::error::Result;
use crate::model::transfer::FrozenBackbone;
use crate::model::{infer_shapes, BackboneArch, Layer, Network};
use crate::run::OptimizerKind;
use crate::train::optim::Optimizer;
use crate::train::DeviceChoice;

/// One training benchmark: a network, its input, and how it is trained.
#[derive(Debug, Clone)]
pub struct TrainWork {
    /// One sample's shape: `[features]` or `[channels, height, width]`.
    pub input: Vec<usize>,
    pub layers: Vec<Layer>,
    pub n_classes: usize,
    pub batch: usize,
    pub steps: usize,
    pub optimizer: OptimizerKind,
}

fn random_tensor(dims: &[usize], rng: &mut ChaCha8Rng, device: &Device) -> Result<Tensor> {
    let v: Vec<f32> = (0..dims.iter().product())
        .map(|_| rng.random::<f32>())
        .collect();
    Ok(Tensor::from_vec(v, dims, device)?)
}

/// Samples per second of `work.steps` optimiser steps (forward, cross-entropy, backward, update) on
/// one fixed batch, after one warm-up step.
pub fn train_throughput(work: &TrainWork, device: DeviceChoice) -> Result<f64> {
    let device = device.open()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let net = Network::new(&work.input, &work.layers, work.n_classes, &mut rng, &device)?;
    let lr = 1e-3;
    let mut optimizer = Optimizer::new(work.optimizer, net.trainable_vars(), lr, 0.0, 1e-2)?;
    let mut dims = vec![work.batch];
    dims.extend(&work.input);
    let x = random_tensor(&dims, &mut rng, &device)?;
    let y: Vec<u32> = (0..work.batch)
        .map(|_| rng.random_range(0..work.n_classes as u32))
        .collect();
    let y = Tensor::from_vec(y, work.batch, &device)?;
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
    for _ in 0..work.steps {
        step()?;
    }
    Ok((work.steps * work.batch) as f64 / started.elapsed().as_secs_f64())
}

/// Images per second of prediction in batches of `batch`: the CPU plan on the CPU, candle elsewhere.
pub fn infer_throughput(
    layers: &[Layer],
    shape: ImageShape,
    n_classes: usize,
    batch: usize,
    batches: usize,
    device: DeviceChoice,
) -> Result<f64> {
    let device = device.open()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let net = Network::new(
        &[shape.channels, shape.height, shape.width],
        layers,
        n_classes,
        &mut rng,
        &device,
    )?;
    let xi = random_tensor(
        &[batch, shape.channels, shape.height, shape.width],
        &mut rng,
        &device,
    )?;
    let cpu = net.cpu_net()?;
    let pixels = xi.flatten_all()?.to_vec1::<f32>()?;
    let infer = || -> Result<()> {
        match &cpu {
            Some(cpu) => {
                std::hint::black_box(cpu.forward(&pixels, batch));
            }
            None => {
                net.forward(&xi, false, None)?
                    .sum_all()?
                    .to_dtype(DType::F32)?
                    .to_scalar::<f32>()?;
            }
        }
        Ok(())
    };
    infer()?;
    let started = Instant::now();
    for _ in 0..batches {
        infer()?;
    }
    Ok((batches * batch) as f64 / started.elapsed().as_secs_f64())
}

/// A randomly initialised ResNet-18 without its final layer, as tensors by name, on `device`.
fn random_resnet18_tensors(device: &Device) -> Result<std::collections::HashMap<String, Tensor>> {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    candle_transformers::models::resnet::resnet18_no_final_layer(vb)?;
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| crate::WickError::InvalidSpec("the ResNet's weights are locked".into()))?;
    Ok(vars
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
        .collect())
}

/// Images per second of the transfer-learning backbone's features: a randomly initialised ResNet-18
/// without its final layer, at 224×224 in batches of `batch`.
pub fn resnet18_forward_throughput(
    batch: usize,
    batches: usize,
    device: DeviceChoice,
) -> Result<f64> {
    let device = device.open()?;
    let tensors = random_resnet18_tensors(&device)?;
    let backbone = FrozenBackbone::from_tensors(BackboneArch::Resnet18, tensors, &device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let x = random_tensor(&[batch, 3, 224, 224], &mut rng, &device)?;
    let run = || -> Result<()> {
        backbone
            .features(&x)?
            .sum_all()?
            .to_dtype(DType::F32)?
            .to_scalar::<f32>()?;
        Ok(())
    };
    run()?;
    let started = Instant::now();
    for _ in 0..batches {
        run()?;
    }
    Ok((batches * batch) as f64 / started.elapsed().as_secs_f64())
}

/// Images per second of fine-tuning a ResNet-18's last stage at 224×224, batch `batch`: the frozen
/// trunk's forward pass (no gradients), then the stage and a 10-class head forward and back, and
/// AdamW steps at the two learning rates; randomly initialised weights.
pub fn resnet18_fine_tune_throughput(
    batch: usize,
    steps: usize,
    device: DeviceChoice,
) -> Result<f64> {
    use crate::model::fine_tune::FineTuneNet;
    use crate::model::trainable::Trainable;
    let device = device.open()?;
    let tensors = random_resnet18_tensors(&device)?;
    let backbone = FrozenBackbone::from_tensors_folded(BackboneArch::Resnet18, tensors, &device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let net = FineTuneNet::new(backbone.last_stage()?, 10, &mut rng, &device)?;
    let mut optimizers = net
        .param_groups()
        .into_iter()
        .map(|(vars, share)| Optimizer::new(OptimizerKind::AdamW, vars, 1e-3 * share, 0.9, 0.01))
        .collect::<Result<Vec<_>>>()?;
    let x = random_tensor(&[batch, 3, 224, 224], &mut rng, &device)?;
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 10).collect();
    let y = Tensor::from_vec(labels, batch, &device)?;
    let mut step = || -> Result<()> {
        let trunk = backbone.trunk(&x)?;
        let loss = candle_nn::loss::cross_entropy(&net.forward(&trunk, true, None)?, &y)?;
        let grads = loss.backward()?;
        for optimizer in &mut optimizers {
            optimizer.step(&grads)?;
        }
        loss.to_scalar::<f32>()?;
        Ok(())
    };
    step()?;
    let started = Instant::now();
    for _ in 0..steps {
        step()?;
    }
    Ok((steps * batch) as f64 / started.elapsed().as_secs_f64())
}

/// Floating-point operations (a multiply-add counts two) of one training step per sample: the
/// forward pass, the weight gradients, and the input gradients of every layer but the first (whose
/// input, the data, needs none). Element-wise work (activations, pooling, the optimiser) is left out.
pub fn training_flops_per_sample(
    input: &[usize],
    layers: &[Layer],
    n_classes: usize,
) -> Result<f64> {
    let shapes = match input {
        &[c, h, w] => infer_shapes(
            ImageShape {
                channels: c,
                height: h,
                width: w,
            },
            layers,
            n_classes,
        )?,
        _ => {
            // A flat input: the same stack behind a 1×1 "image" of n channels, then flattened.
            let mut stack = vec![Layer::Flatten];
            stack.extend_from_slice(layers);
            let n = input.iter().product();
            infer_shapes(
                ImageShape {
                    channels: n,
                    height: 1,
                    width: 1,
                },
                &stack,
                n_classes,
            )?[1..]
                .to_vec()
        }
    };
    let mut total = 0.0;
    let mut first = true;
    // `shapes` has one entry per layer, then the output layer (`None` here).
    for (layer, s) in layers.iter().map(Some).chain([None]).zip(&shapes) {
        if !matches!(
            layer,
            Some(Layer::Conv2d { .. } | Layer::Dense { .. }) | None
        ) {
            continue;
        }
        let out: usize = s.output.iter().product();
        let filters = s.output.first().copied().unwrap_or(1).max(1);
        // Each output value is a dot product over (parameters per filter − its bias) inputs.
        let macs = out as f64 * (s.params / filters).saturating_sub(1) as f64;
        total += 2.0 * macs * if first { 2.0 } else { 3.0 };
        first = false;
    }
    Ok(total)
}

/// This CPU's f32 multiply-add peak in GFLOP/s over rayon's threads: independent chains of vector
/// FMAs kept in registers (12 chains, more than the latency × throughput of any current core), in
/// the widest vectors the CPU has.
pub fn cpu_peak_gflops() -> f64 {
    let threads = rayon::current_num_threads();
    let iterations = 2_000_000;
    let mut best = 0.0f64;
    for _ in 0..3 {
        let started = Instant::now();
        let results: Vec<(f32, usize)> = (0..threads)
            .into_par_iter()
            .map(|t| fma_chains(iterations, t as f32))
            .collect();
        let secs = started.elapsed().as_secs_f64();
        let flops: usize = results.iter().map(|(_, flops)| flops).sum();
        std::hint::black_box(results);
        best = best.max(flops as f64 / secs / 1e9);
    }
    best
}

/// Runs the FMA chains; returns their sum (so nothing is optimised away) and the flops done.
fn fma_chains(iterations: usize, seed: f32) -> (f32, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return (
                unsafe { x86::fma_avx512(iterations, seed) },
                iterations * 12 * 16 * 2,
            );
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU has AVX2 and FMA (checked just above).
            return (
                unsafe { x86::fma_avx2(iterations, seed) },
                iterations * 12 * 8 * 2,
            );
        }
    }
    // Elsewhere: plain multiply-adds, which the compiler vectorises for the baseline target.
    let mut acc = [[seed; 8]; 12];
    let (a, b) = (
        std::hint::black_box(0.999_999f32),
        std::hint::black_box(1e-7f32),
    );
    for _ in 0..iterations {
        for lanes in acc.iter_mut() {
            for v in lanes.iter_mut() {
                *v = *v * a + b;
            }
        }
    }
    (acc.iter().flatten().sum(), iterations * 12 * 8 * 2)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fma_avx512(iterations: usize, seed: f32) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc = [_mm512_set1_ps(seed); 12];
        for _ in 0..iterations {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, v| _mm512_add_ps(s, *v));
        _mm512_reduce_add_ps(sum)
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn fma_avx2(iterations: usize, seed: f32) -> f32 {
        let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
        let mut acc = [_mm256_set1_ps(seed); 12];
        for _ in 0..iterations {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, v| _mm256_add_ps(s, *v));
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
        lanes.iter().sum()
    }
}

/// Trains LeNet for `steps` batches of 64 drawn from 60,000 random 28×28 images held in memory the
/// way the trainer holds a dataset (one f32 tensor, each batch gathered by index), for a
/// peak-memory measurement.
pub fn lenet_memory_run(steps: usize) -> Result<()> {
    let (n, batch, classes) = (60_000usize, 64usize, 10u32);
    let device = Device::Cpu;
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let net = Network::new(
        &[1, 28, 28],
        &crate::model::lenet_layers(),
        classes as usize,
        &mut rng,
        &device,
    )?;
    let mut optimizer =
        Optimizer::new(OptimizerKind::AdamW, net.trainable_vars(), 1e-3, 0.0, 1e-2)?;
    let x = random_tensor(&[n, 1, 28, 28], &mut rng, &device)?;
    let y: Vec<u32> = (0..n).map(|_| rng.random_range(0..classes)).collect();
    let y = Tensor::from_vec(y, n, &device)?;
    for step in 0..steps {
        let rows: Vec<u32> = (0..batch)
            .map(|i| ((step * batch + i) % n) as u32)
            .collect();
        let idx = Tensor::from_vec(rows, batch, &device)?;
        let logits = net.forward(&x.index_select(&idx, 0)?, true, Some(&mut rng))?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y.index_select(&idx, 0)?)?;
        optimizer.backward_step(&loss)?;
    }
    Ok(())
}

/// Writes `n` photo-like 640×480 JPEGs (quality 85) into `dir/warm` and `dir/cool`: smooth colour
/// gradients with seeded blobs and noise, so they compress and decode like photos rather than flat
/// colour. Returns their paths.
pub fn write_bench_photos(dir: &std::path::Path, n: usize) -> Result<Vec<std::path::PathBuf>> {
    let paths: Vec<std::path::PathBuf> = (0..n)
        .map(|i| {
            dir.join(if i % 2 == 0 { "warm" } else { "cool" })
                .join(format!("{i:05}.jpg"))
        })
        .collect();
    for class in ["warm", "cool"] {
        std::fs::create_dir_all(dir.join(class))
            .map_err(|e| crate::WickError::io(dir.join(class), e))?;
    }
    paths
        .par_iter()
        .enumerate()
        .try_for_each(|(i, path)| -> Result<()> {
            if path.exists() {
                return Ok(());
            }
            let mut rng = ChaCha8Rng::seed_from_u64(i as u64);
            let warm = i % 2 == 0;
            let blobs: Vec<(f32, f32, f32, [f32; 3])> = (0..6)
                .map(|_| {
                    (
                        rng.random_range(0.0..640.0),
                        rng.random_range(0.0..480.0),
                        rng.random_range(30.0..120.0),
                        [rng.random(), rng.random(), rng.random()],
                    )
                })
                .collect();
            let mut noise = ChaCha8Rng::seed_from_u64(i as u64 ^ 0xFEED);
            let image = image::RgbImage::from_fn(640, 480, |x, y| {
                let (fx, fy) = (x as f32 / 640.0, y as f32 / 480.0);
                let mut c = if warm {
                    [0.8 - 0.3 * fy, 0.5 * fx, 0.2]
                } else {
                    [0.2, 0.4 * fy, 0.8 - 0.3 * fx]
                };
                for (bx, by, r, colour) in &blobs {
                    let d = ((x as f32 - bx).powi(2) + (y as f32 - by).powi(2)).sqrt();
                    let w = (1.0 - d / r).clamp(0.0, 1.0);
                    for k in 0..3 {
                        c[k] = c[k] * (1.0 - w) + colour[k] * w;
                    }
                }
                let jitter: f32 = noise.random_range(-0.04..0.04);
                image::Rgb(c.map(|v| ((v + jitter).clamp(0.0, 1.0) * 255.0) as u8))
            });
            let partial = path.with_extension("jpg.partial");
            let file =
                std::fs::File::create(&partial).map_err(|e| crate::WickError::io(&partial, e))?;
            image::codecs::jpeg::JpegEncoder::new_with_quality(std::io::BufWriter::new(file), 85)
                .encode_image(&image)
                .map_err(|e| {
                    crate::WickError::data(&partial, format!("could not be written ({e})"))
                })?;
            std::fs::rename(&partial, path).map_err(|e| crate::WickError::io(path, e))?;
            Ok(())
        })?;
    Ok(paths)
}

/// Images per second decoded and resized to `side`×`side` RGB bytes, on every thread of the pool.
pub fn decode_resize_throughput(paths: &[std::path::PathBuf], side: usize) -> Result<f64> {
    let shape = ImageShape {
        height: side,
        width: side,
        channels: 3,
    };
    let started = Instant::now();
    let bytes: usize = paths
        .par_iter()
        .map(|p| crate::data::images::load_image_u8(p, shape).map(|v| v.len()))
        .sum::<Result<usize>>()?;
    let secs = started.elapsed().as_secs_f64();
    if bytes != paths.len() * shape.len() {
        return Err(crate::WickError::InvalidSpec(
            "decoded images have the wrong size".into(),
        ));
    }
    Ok(paths.len() as f64 / secs)
}

/// Threads of the pool that decodes and trains on the CPU.
pub fn pool_threads() -> usize {
    rayon::current_num_threads()
}
