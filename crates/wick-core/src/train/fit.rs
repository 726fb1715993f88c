//! The gradient-descent loop shared by logistic regression, MLPs, CNNs, transfer-learning heads and
//! fine-tuned backbone stages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::{Augment, ImageShape};
use crate::error::{Result, WickError};
use crate::model::trainable::Trainable;
use crate::model::transfer::FrozenBackbone;
use crate::train::events::{CancelToken, SplitName, TrainEvent, TrainObserver};
use crate::train::optim::Optimizer;
use crate::train::TrainConfig;

/// Targets of a network: class indices, or standardised regression values.
pub(crate) enum NetTargets {
    Classes(Vec<u32>),
    Values(Vec<f32>),
}

/// A network's inputs, row after row.
pub(crate) enum Samples {
    F32(Vec<f32>),
    /// Image pixels as bytes, a quarter of the memory; a batch is scaled to `[0, 1]` (`v / 255`)
    /// when it is gathered.
    Bytes(Vec<u8>),
    /// Training images too many to hold decoded: read from their files batch by batch, ahead of
    /// the step on a background thread, through a bounded cache of decoded bytes.
    Files(ImageFiles),
}

impl Samples {
    /// The values of `rows` samples of `per` values each, starting at each row, as f32 (not for
    /// `Files`, whose rows may fail to decode: see [`ImageFiles::decode`]).
    fn gather(&self, rows: impl Iterator<Item = usize>, per: usize) -> Vec<f32> {
        let mut x = Vec::new();
        for r in rows {
            match self {
                Self::F32(v) => x.extend_from_slice(&v[r * per..(r + 1) * per]),
                Self::Bytes(v) => {
                    x.extend(v[r * per..(r + 1) * per].iter().map(|&b| b as f32 / 255.0))
                }
                Self::Files(_) => {}
            }
        }
        x
    }
}

/// Image files of a training split, decoded when a batch needs them. Decoded images are kept while
/// they fit in `cache_budget_bytes` (those seen first), so a folder that nearly fits is decoded
/// once; the rest are decoded again each epoch.
pub(crate) struct ImageFiles {
    /// The file of each sample row.
    pub paths: Vec<std::path::PathBuf>,
    pub shape: ImageShape,
    cache_budget_bytes: usize,
    cache: std::sync::Mutex<HashMap<u32, Arc<Vec<u8>>>>,
    /// Images that failed to decode during training, with why; their rows are left out of batches.
    pub failed: std::sync::Mutex<Vec<(std::path::PathBuf, String)>>,
}

impl ImageFiles {
    pub fn new(
        paths: Vec<std::path::PathBuf>,
        shape: ImageShape,
        cache_budget_bytes: usize,
    ) -> Self {
        Self {
            paths,
            shape,
            cache_budget_bytes,
            cache: Default::default(),
            failed: Default::default(),
        }
    }

    /// The rows of `rows` that decode, and their CHW bytes one after another. An image that does
    /// not decode (a file truncated since the folder was indexed) is recorded in `failed` once and
    /// left out, so the run goes on.
    pub fn decode(&self, rows: &[u32]) -> (Vec<u32>, Vec<u8>) {
        use rayon::prelude::*;
        let cached: Vec<Option<Arc<Vec<u8>>>> = {
            let cache = self
                .cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            rows.iter().map(|r| cache.get(r).cloned()).collect()
        };
        let decoded: Vec<std::result::Result<Arc<Vec<u8>>, String>> = rows
            .par_iter()
            .zip(cached)
            .map(|(&r, hit)| match hit {
                Some(bytes) => Ok(bytes),
                None => crate::data::images::load_image_u8(&self.paths[r as usize], self.shape)
                    .map(Arc::new)
                    .map_err(|e| e.to_string()),
            })
            .collect();
        let mut ok = Vec::with_capacity(rows.len());
        let mut bytes = Vec::with_capacity(rows.len() * self.shape.len());
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (&r, image) in rows.iter().zip(decoded) {
            match image {
                Ok(image) => {
                    bytes.extend_from_slice(&image);
                    ok.push(r);
                    if !cache.contains_key(&r)
                        && (cache.len() + 1) * self.shape.len() <= self.cache_budget_bytes
                    {
                        cache.insert(r, image);
                    }
                }
                Err(why) => {
                    let mut failed = self
                        .failed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let path = &self.paths[r as usize];
                    if !failed.iter().any(|(p, _)| p == path) {
                        failed.push((path.clone(), why));
                    }
                }
            }
        }
        (ok, bytes)
    }
}

/// Encoded samples for a network: `rows` samples of `sample_dims` values each.
pub(crate) struct NetData {
    pub x: Samples,
    pub sample_dims: Vec<usize>,
    pub y: NetTargets,
    /// Training images augmented afresh in every batch (CNNs; `x` holds CHW pixels of `shape`).
    pub augment: Option<(Augment, ImageShape)>,
    /// A frozen backbone every batch of images goes through first (its trunk, before the stage that
    /// is fine-tuned): the network trains on what it gives.
    pub prefix: Option<Arc<FrozenBackbone>>,
}

impl NetData {
    pub fn rows(&self) -> usize {
        match &self.y {
            NetTargets::Classes(v) => v.len(),
            NetTargets::Values(v) => v.len(),
        }
    }

    fn tensors(&self, device: &Device) -> Result<(Tensor, Tensor)> {
        Ok((self.x_tensor(device)?, self.y_tensor(device)?))
    }

    fn x_tensor(&self, device: &Device) -> Result<Tensor> {
        let mut dims = vec![self.rows()];
        dims.extend(&self.sample_dims);
        if self.prefix.is_some() {
            // A backbone trunk's activations are large: they are made a batch at a time (`batch`).
            return Err(WickError::InvalidSpec(
                "samples for a backbone's trunk are gathered batch by batch".into(),
            ));
        }
        Ok(match &self.x {
            Samples::F32(x) => Tensor::from_slice(x, dims, device)?,
            Samples::Bytes(_) => Tensor::from_vec(
                self.x.gather(0..self.rows(), self.sample_len()),
                dims,
                device,
            )?,
            // Only training splits stream; held-out ones are decoded before training.
            Samples::Files(_) => {
                return Err(WickError::InvalidSpec(
                    "images read from files are a training split only".into(),
                ))
            }
        })
    }

    fn sample_len(&self) -> usize {
        self.sample_dims.iter().product()
    }

    fn y_tensor(&self, device: &Device) -> Result<Tensor> {
        Ok(match &self.y {
            NetTargets::Classes(c) => Tensor::from_slice(c, c.len(), device)?,
            NetTargets::Values(v) => Tensor::from_slice(v, (v.len(), 1), device)?,
        })
    }

    /// The samples at `rows`, each augmented with `rng` when `augment` is given. `decoded` holds
    /// their pixels when they were read from files ([`Samples::Files`]).
    fn batch(
        &self,
        rows: &[u32],
        decoded: Option<Vec<u8>>,
        augment: Option<(&Augment, ImageShape)>,
        rng: &mut ChaCha8Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let per = self.sample_len();
        let mut x = match decoded {
            Some(bytes) => bytes.iter().map(|&b| b as f32 / 255.0).collect(),
            None => self.x.gather(rows.iter().map(|&r| r as usize), per),
        };
        if let Some((augment, shape)) = augment {
            for image in x.chunks_mut(per) {
                augment.apply(image, shape, rng);
            }
        }
        let mut dims = vec![rows.len()];
        dims.extend(&self.sample_dims);
        let x = Tensor::from_vec(x, dims, device)?;
        match &self.prefix {
            Some(prefix) => prefix.trunk(&x),
            None => Ok(x),
        }
    }
}

pub(crate) struct FitSummary {
    pub epochs_run: usize,
    pub best_epoch: usize,
}

fn loss_of(output: &Tensor, y: &Tensor, classification: bool) -> Result<Tensor> {
    Ok(if classification {
        candle_nn::loss::cross_entropy(output, y)?
    } else {
        candle_nn::loss::mse(output, y)?
    })
}

/// Cross entropy with per-class weights, as PyTorch's `cross_entropy(weight=…)` with mean
/// reduction: `-Σ w[y]·log p[y] / Σ w[y]`.
pub(crate) fn weighted_cross_entropy(
    logits: &Tensor,
    y: &Tensor,
    class_weights: &Tensor,
) -> Result<Tensor> {
    let log_p = candle_nn::ops::log_softmax(logits, 1)?;
    let picked = log_p.gather(&y.unsqueeze(1)?, 1)?.squeeze(1)?;
    let w = class_weights.index_select(y, 0)?;
    Ok((picked.mul(&w)?.sum_all()?.neg()?
        / w.sum_all()?.to_scalar::<f32>()?.max(f32::MIN_POSITIVE) as f64)?)
}

/// Trains `net` in place; on return it holds the weights of the best validation epoch.
pub(crate) fn fit_network(
    net: &mut impl Trainable,
    train: &NetData,
    valid: Option<&NetData>,
    config: &TrainConfig,
    rng: &mut ChaCha8Rng,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<FitSummary> {
    if config.batch_size == 0 || config.epochs == 0 {
        return Err(WickError::InvalidSpec(
            "epochs and batch size must be at least 1".into(),
        ));
    }
    if !(config.lr > 0.0 && config.lr.is_finite()) {
        return Err(WickError::InvalidSpec(format!(
            "learning rate must be a positive number, got {}",
            config.lr
        )));
    }
    let device = net.device().clone();
    let classification = matches!(train.y, NetTargets::Classes(_));
    // Bytes, augmented images and images for a backbone's trunk are gathered batch by batch; f32
    // samples go to the device once.
    let x_train = match (&train.x, &train.augment, &train.prefix) {
        (Samples::F32(_), None, None) => Some(train.x_tensor(&device)?),
        _ => None,
    };
    let y_train = train.y_tensor(&device)?;
    // Validation samples go to the device once, except images for a backbone's trunk: its
    // activations are kept for one batch at a time.
    let valid = valid.filter(|v| v.rows() > 0);
    let valid_tensors = valid
        .filter(|v| v.prefix.is_none())
        .map(|v| v.tensors(&device))
        .transpose()?;
    let valid_y = valid.map(|v| v.y_tensor(&device)).transpose()?;
    let mut optimizers = net
        .param_groups()
        .into_iter()
        .map(|(vars, share)| {
            Optimizer::new(
                config.optimizer,
                vars,
                config.lr * share,
                config.momentum,
                config.weight_decay,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    // Balanced classes weigh the training loss; validation keeps the plain loss, so early stopping
    // and the curves compare runs with and without weights alike.
    let class_weights = match &train.y {
        NetTargets::Classes(c) => {
            let classes: Vec<usize> = c.iter().map(|&v| v as usize).collect();
            let k = net.n_outputs();
            config
                .class_weight
                .weights(&classes, k)
                .map(|w| {
                    Tensor::from_vec(
                        w.iter().map(|&v| v as f32).collect::<Vec<f32>>(),
                        k,
                        &device,
                    )
                })
                .transpose()?
        }
        NetTargets::Values(_) => None,
    };

    let n = train.rows();
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut best: Option<(f64, usize, HashMap<String, Tensor>)> = None;
    let mut epochs_run = 0;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        order.shuffle(rng);
        let (mut loss_sum, mut correct, mut seen) = (0.0f64, 0usize, 0usize);
        let mut step_on = |step: usize,
                           batch: &[u32],
                           decoded: Option<Vec<u8>>,
                           rng: &mut ChaCha8Rng|
         -> Result<()> {
            if cancel.is_cancelled() {
                observer.on_event(TrainEvent::Cancelled);
                return Err(WickError::Cancelled);
            }
            if batch.is_empty() {
                return Ok(());
            }
            let idx = Tensor::from_slice(batch, batch.len(), &device)?;
            let xb = match &x_train {
                Some(x) => x.index_select(&idx, 0)?,
                None => train.batch(
                    batch,
                    decoded,
                    train.augment.as_ref().map(|(a, s)| (a, *s)),
                    rng,
                    &device,
                )?,
            };
            let yb = y_train.index_select(&idx, 0)?;
            let output = net.forward(&xb, true, Some(rng))?;
            let loss = match &class_weights {
                Some(w) => weighted_cross_entropy(&output, &yb, w)?,
                None => loss_of(&output, &yb, classification)?,
            };
            let loss_value = loss.to_scalar::<f32>()? as f64;
            if !loss_value.is_finite() {
                let err = WickError::Diverged {
                    epoch,
                    step: step + 1,
                    loss: loss_value,
                    lr: config.lr,
                };
                observer.on_event(TrainEvent::Failed {
                    message: err.to_string(),
                });
                return Err(err);
            }
            let grads = loss.backward()?;
            for optimizer in &mut optimizers {
                optimizer.step(&grads)?;
            }
            loss_sum += loss_value * batch.len() as f64;
            seen += batch.len();
            if classification {
                let predicted = output.argmax(1)?.to_vec1::<u32>()?;
                let actual = yb.to_vec1::<u32>()?;
                correct += predicted
                    .iter()
                    .zip(&actual)
                    .filter(|(p, a)| p == a)
                    .count();
            }
            observer.on_event(TrainEvent::Step {
                epoch,
                step: step + 1,
                loss: loss_value,
            });
            Ok(())
        };
        match &train.x {
            Samples::Files(files) => {
                // The next batches decode on another thread while this one trains; two wait at most.
                std::thread::scope(|scope| -> Result<()> {
                    let (sender, batches) = std::sync::mpsc::sync_channel(2);
                    let order = &order;
                    scope.spawn(move || {
                        for batch in order.chunks(config.batch_size) {
                            if sender.send(files.decode(batch)).is_err() {
                                return;
                            }
                        }
                    });
                    for (step, (rows, bytes)) in batches.iter().enumerate() {
                        step_on(step, &rows, Some(bytes), rng)?;
                    }
                    Ok(())
                })?;
            }
            _ => {
                for (step, batch) in order.chunks(config.batch_size).enumerate() {
                    step_on(step, batch, None, rng)?;
                }
            }
        }
        epochs_run = epoch;
        let metric = |split, name: &str, value| TrainEvent::Metric {
            epoch,
            split,
            name: name.to_string(),
            value,
        };
        observer.on_event(metric(
            SplitName::Train,
            "loss",
            loss_sum / seen.max(1) as f64,
        ));
        if classification {
            observer.on_event(metric(
                SplitName::Train,
                "accuracy",
                correct as f64 / seen.max(1) as f64,
            ));
        }
        let scored = match (&valid_tensors, valid, &valid_y) {
            (Some((xv, yv)), _, _) => {
                let n = xv.dim(0)?;
                Some(evaluate(
                    net,
                    n,
                    config.batch_size.max(256),
                    classification,
                    |start, len| Ok((xv.narrow(0, start, len)?, yv.narrow(0, start, len)?)),
                )?)
            }
            (None, Some(v), Some(yv)) => {
                let mut no_augment = ChaCha8Rng::seed_from_u64(0);
                Some(evaluate(
                    net,
                    v.rows(),
                    crate::model::BACKBONE_BATCH,
                    classification,
                    |start, len| {
                        let rows: Vec<u32> = (start as u32..(start + len) as u32).collect();
                        Ok((
                            v.batch(&rows, None, None, &mut no_augment, &device)?,
                            yv.narrow(0, start, len)?,
                        ))
                    },
                )?)
            }
            _ => None,
        };
        let valid_loss = match scored {
            Some((loss, score)) => {
                observer.on_event(metric(SplitName::Valid, "loss", loss));
                observer.on_event(metric(
                    SplitName::Valid,
                    if classification { "accuracy" } else { "r2" },
                    score,
                ));
                Some(loss)
            }
            None => None,
        };
        let duration_secs = started.elapsed().as_secs_f64();
        observer.on_event(TrainEvent::EpochFinished {
            epoch,
            duration_secs,
            samples_per_sec: n as f64 / duration_secs.max(1e-9),
        });

        let tracked = valid_loss.unwrap_or(loss_sum / seen.max(1) as f64);
        let improved = best.as_ref().is_none_or(|(b, _, _)| tracked < *b);
        if improved {
            best = Some((tracked, epoch, net.snapshot()?));
        }
        if let (Some(patience), Some((_, best_epoch, _))) = (config.early_stopping_patience, &best)
        {
            if valid_loss.is_some() && epoch - best_epoch >= patience {
                observer.on_event(TrainEvent::EarlyStopped {
                    epoch,
                    best_epoch: *best_epoch,
                });
                break;
            }
        }
    }
    let best_epoch = match best {
        Some((_, e, snapshot)) => {
            net.restore(&snapshot)?;
            e
        }
        None => epochs_run,
    };
    Ok(FitSummary {
        epochs_run,
        best_epoch,
    })
}

/// Mean loss and accuracy (classification) or R² (regression) in evaluation mode, over `n` samples
/// that `batch_at(start, len)` gives `batch` at a time.
fn evaluate(
    net: &impl Trainable,
    n: usize,
    batch: usize,
    classification: bool,
    mut batch_at: impl FnMut(usize, usize) -> Result<(Tensor, Tensor)>,
) -> Result<(f64, f64)> {
    let (mut loss_sum, mut correct) = (0.0f64, 0usize);
    let (mut actual_all, mut predicted_all) = (Vec::new(), Vec::new());
    for start in (0..n).step_by(batch.max(1)) {
        let len = batch.min(n - start);
        let (xb, yb) = batch_at(start, len)?;
        let output = net.forward(&xb, false, None)?;
        loss_sum += loss_of(&output, &yb, classification)?.to_scalar::<f32>()? as f64 * len as f64;
        if classification {
            let p = output.argmax(1)?.to_vec1::<u32>()?;
            let a = yb.to_vec1::<u32>()?;
            correct += p.iter().zip(&a).filter(|(p, a)| p == a).count();
        } else {
            actual_all.extend(
                yb.flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(f64::from),
            );
            predicted_all.extend(
                output
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .into_iter()
                    .map(f64::from),
            );
        }
    }
    let score = if classification {
        correct as f64 / n.max(1) as f64
    } else {
        crate::metrics::regression_metrics(&actual_all, &predicted_all).r2
    };
    Ok((loss_sum / n.max(1) as f64, score))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_cross_entropy_matches_pytorch() {
        // Reference: PyTorch 2.15, torch.nn.functional.cross_entropy(logits, y, weight=w) with
        // logits [[2, .5, -1], [.1, .2, .3], [-1, 3, 0], [1, 1, 1]], y [0, 2, 1, 2], w [.5, 2, 1.5].
        let d = Device::Cpu;
        let logits = Tensor::from_vec(
            vec![
                2.0f32, 0.5, -1.0, 0.1, 0.2, 0.3, -1.0, 3.0, 0.0, 1.0, 1.0, 1.0,
            ],
            (4, 3),
            &d,
        )
        .unwrap();
        let y = Tensor::from_vec(vec![0u32, 2, 1, 2], 4, &d).unwrap();
        let w = Tensor::from_vec(vec![0.5f32, 2.0, 1.5], 3, &d).unwrap();
        let loss = weighted_cross_entropy(&logits, &y, &w)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!((loss as f64 - 0.618773877620697).abs() < 1e-6, "{loss}");
    }
}
