//! Boosted trees and random forests: fitted on the tree encoding (raw numbers, category codes,
//! NaN for missing) on every core.

use super::{Fitted, TableFit};
use crate::data::TargetValues;
use crate::error::{Result, WickError};
use crate::metrics::regression_metrics;
use crate::model::trees::{BoostParams, Boosted, Forest, ForestParams};
use crate::model::{Model, ModelSpec, Prediction, TreeEnsemble, Weights};
use crate::run::SplitSizes;
use crate::train::events::{CancelToken, SplitName, TrainEvent, TrainObserver};
use crate::train::pipeline::started_event;

/// The targets as the trees read them: values, or class indices as numbers.
struct TreeLabels {
    y_train: Vec<f64>,
    y_valid: Vec<f64>,
    /// 0 for regression.
    n_classes: usize,
}

pub(super) fn fit(
    fit: TableFit<'_>,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<Fitted> {
    let device = format!("CPU ({} threads)", rayon::current_num_threads());
    let (y_all, n_classes) = match fit.target {
        TargetValues::Regression(y) => (y.clone(), 0),
        TargetValues::Classification { classes, labels } => {
            (classes.iter().map(|&c| c as f64).collect(), labels.len())
        }
    };
    let pick = |rows: &[usize]| -> Vec<f64> { rows.iter().map(|&r| y_all[r]).collect() };
    let labels = TreeLabels {
        y_train: pick(&fit.split.train),
        y_valid: pick(&fit.split.valid),
        n_classes,
    };
    let (ensemble, epochs_run, best_epoch) = fit_trees(&fit, &labels, &device, observer, cancel)?;
    let TableFit {
        spec,
        target,
        target_info,
        split,
        x_train,
        x_valid,
        input,
        ..
    } = fit;
    let model = Model::new(spec.clone(), input, target_info, Weights::Trees(ensemble))?;
    for (split_name, x, rows) in [
        (SplitName::Train, x_train, &split.train),
        (SplitName::Valid, x_valid, &split.valid),
    ] {
        if !rows.is_empty() {
            split_metrics(&model, target, x, rows, epochs_run, split_name, observer)?;
        }
    }
    Ok(Fitted {
        model,
        epochs_run,
        best_epoch,
        device,
    })
}

/// Fits a boosted model or a forest, sending its per-tree losses as metric events. Returns the
/// ensemble, the number of trees grown (the run's "epochs") and the number kept.
fn fit_trees(
    fit: &TableFit<'_>,
    labels: &TreeLabels,
    device: &str,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<(TreeEnsemble, usize, usize)> {
    if cancel.is_cancelled() {
        return Err(WickError::Cancelled);
    }
    let TableFit {
        spec,
        config,
        split,
        x_train,
        x_valid,
        width,
        ..
    } = *fit;
    let TreeLabels {
        y_train,
        y_valid,
        n_classes,
    } = labels;
    let n_classes = *n_classes;
    // Balanced classes, weighed from the training rows' class counts.
    let class_weights: Option<Vec<f64>> = (n_classes >= 2)
        .then(|| {
            config.class_weight.weights(
                &y_train.iter().map(|&c| c as usize).collect::<Vec<_>>(),
                n_classes,
            )
        })
        .flatten();
    match spec {
        ModelSpec::Gbdt {
            trees,
            learning_rate,
            max_depth,
            min_leaf_weight,
            l2,
            early_stopping_rounds,
        } => {
            observer.on_event(started_event(
                device.to_string(),
                *trees,
                1,
                SplitSizes::from(split),
            ));
            let params = BoostParams {
                trees: *trees,
                learning_rate: *learning_rate,
                max_depth: *max_depth,
                min_leaf_weight: *min_leaf_weight,
                l2: *l2,
                early_stopping_rounds: *early_stopping_rounds,
                seed: config.seed,
                record_train_loss: true,
            };
            let (boosted, history) = Boosted::fit(
                x_train,
                width,
                y_train,
                class_weights.as_deref(),
                n_classes,
                Some((x_valid, y_valid)),
                &params,
            )?;
            // forust has no per-tree callback, so the curve is sent when the fit returns (seconds).
            for (i, loss) in history.train.iter().enumerate() {
                observer.on_event(TrainEvent::Metric {
                    epoch: i + 1,
                    split: SplitName::Train,
                    name: "loss".into(),
                    value: *loss,
                });
                if let Some(v) = history.valid.get(i) {
                    observer.on_event(TrainEvent::Metric {
                        epoch: i + 1,
                        split: SplitName::Valid,
                        name: "loss".into(),
                        value: *v,
                    });
                }
            }
            let grown = history.trees_grown.max(1);
            let kept = history.trees_kept.max(1);
            if kept < grown {
                observer.on_event(TrainEvent::EarlyStopped {
                    epoch: grown,
                    best_epoch: kept,
                });
            }
            Ok((TreeEnsemble::Boosted(boosted), grown, kept))
        }
        ModelSpec::Forest {
            trees,
            max_depth,
            min_samples_leaf,
            max_features,
        } => {
            observer.on_event(started_event(
                device.to_string(),
                1,
                1,
                SplitSizes::from(split),
            ));
            let params = ForestParams {
                trees: *trees,
                max_depth: *max_depth,
                min_samples_leaf: *min_samples_leaf,
                max_features: *max_features,
                seed: config.seed,
            };
            let n_outputs = if n_classes >= 2 { n_classes } else { 1 };
            Ok((
                TreeEnsemble::Forest(Forest::fit(
                    x_train,
                    width,
                    y_train,
                    class_weights.as_deref(),
                    n_outputs,
                    &params,
                )?),
                1,
                1,
            ))
        }
        _ => Err(WickError::InvalidSpec("not a tree model".into())),
    }
}

/// Loss and score of one split after fitting (log loss for classes, MSE for numbers).
fn split_metrics(
    model: &Model,
    target: &TargetValues,
    x: &[f64],
    rows: &[usize],
    epoch: usize,
    split: SplitName,
    observer: &mut dyn TrainObserver,
) -> Result<()> {
    let predictions = model.predict_encoded(x, rows.len())?;
    let mut send = |name: &str, value: f64| {
        observer.on_event(TrainEvent::Metric {
            epoch,
            split,
            name: name.into(),
            value,
        })
    };
    match target {
        TargetValues::Regression(y) => {
            let actual: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
            let m = regression_metrics(
                &actual,
                &predictions
                    .iter()
                    .map(Prediction::as_f64)
                    .collect::<Vec<_>>(),
            );
            // Boosted runs already sent their per-tree loss.
            if matches!(model.spec, ModelSpec::Forest { .. }) {
                send("loss", m.mse);
            }
            send("r2", m.r2);
        }
        TargetValues::Classification { classes, .. } => {
            let mut loss = 0.0;
            let mut correct = 0usize;
            for (&r, p) in rows.iter().zip(&predictions) {
                if let Prediction::Class {
                    class_index,
                    probabilities,
                    ..
                } = p
                {
                    loss -= (probabilities.get(classes[r]).copied().unwrap_or(0.0) as f64)
                        .max(1e-15)
                        .ln();
                    correct += usize::from(*class_index == classes[r]);
                }
            }
            if matches!(model.spec, ModelSpec::Forest { .. }) {
                send("loss", loss / rows.len().max(1) as f64);
            }
            send("accuracy", correct as f64 / rows.len().max(1) as f64);
        }
    }
    Ok(())
}
