//! Logistic regression and MLPs: a dense network trained by gradient descent, on the CPU's fused
//! kernels or a GPU.

use rand_chacha::ChaCha8Rng;

use super::{Fitted, TableFit};
use crate::data::{Split, TargetValues, Task};
use crate::device::describe;
use crate::error::Result;
use crate::model::spec::dense_layers;
use crate::model::{Model, Network, TargetInfo, Weights};
use crate::run::SplitSizes;
use crate::train::events::{CancelToken, TrainObserver};
use crate::train::fit::{fit_network, NetData, NetTargets, Samples};
use crate::train::pipeline::started_event;

pub(super) fn fit(
    fit: TableFit<'_>,
    rng: &mut ChaCha8Rng,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<Fitted> {
    let TableFit {
        spec,
        config,
        target,
        target_info,
        split,
        x_train,
        x_valid,
        width,
        input,
    } = fit;
    let device = config.device.open()?;
    let device_name = describe(&device);
    let n_out = if target_info.task == Task::Classification {
        target_info.labels.len()
    } else {
        1
    };
    let (net_targets, scale) = targets_for(target, split)?;
    let mut net = Network::new(&[width], &dense_layers(spec), n_out, rng, &device)?;
    let to_f32 = |x: &[f64]| x.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let train = NetData {
        x: Samples::F32(to_f32(x_train)),
        sample_dims: vec![width],
        y: net_targets.0,
        augment: None,
        prefix: None,
    };
    let valid = NetData {
        x: Samples::F32(to_f32(x_valid)),
        sample_dims: vec![width],
        y: net_targets.1,
        augment: None,
        prefix: None,
    };
    observer.on_event(started_event(
        device_name.clone(),
        config.epochs,
        split.train.len().div_ceil(config.batch_size.max(1)),
        SplitSizes::from(split),
    ));
    let summary = fit_network(
        &mut net,
        &train,
        Some(&valid),
        config,
        rng,
        observer,
        cancel,
    )?;
    let target_info = TargetInfo {
        scale,
        ..target_info
    };
    let model = Model::new(spec.clone(), input, target_info, Weights::Network(net))?;
    Ok(Fitted {
        model,
        epochs_run: summary.epochs_run,
        best_epoch: summary.best_epoch,
        device: device_name,
    })
}

/// Train and validation targets, and the regression scale (mean, std) if any.
type SplitTargets = ((NetTargets, NetTargets), Option<(f64, f64)>);

/// Network targets for the train and validation rows; regression targets are standardised on the
/// training rows and the scale is returned.
fn targets_for(target: &TargetValues, split: &Split) -> Result<SplitTargets> {
    Ok(match target {
        TargetValues::Classification { classes, .. } => {
            let pick = |rows: &[usize]| {
                NetTargets::Classes(rows.iter().map(|&r| classes[r] as u32).collect())
            };
            ((pick(&split.train), pick(&split.valid)), None)
        }
        TargetValues::Regression(y) => {
            let train: Vec<f64> = split.train.iter().map(|&r| y[r]).collect();
            let mean = train.iter().sum::<f64>() / train.len().max(1) as f64;
            let std = (train.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                / train.len().max(1) as f64)
                .sqrt();
            let std = if std > 0.0 { std } else { 1.0 };
            let pick = |rows: &[usize]| {
                NetTargets::Values(rows.iter().map(|&r| ((y[r] - mean) / std) as f32).collect())
            };
            ((pick(&split.train), pick(&split.valid)), Some((mean, std)))
        }
    })
}
