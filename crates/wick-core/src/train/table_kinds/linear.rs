//! Linear, polynomial and ridge regression: least squares solved exactly in f64.

use super::{Fitted, TableFit};
use crate::data::TargetValues;
use crate::error::{Result, WickError};
use crate::metrics::regression_metrics;
use crate::model::{fit_least_squares, polynomial_features, Model, ModelSpec, Prediction, Weights};
use crate::run::SplitSizes;
use crate::train::events::{SplitName, TrainEvent, TrainObserver};
use crate::train::pipeline::started_event;

pub(super) fn fit(fit: TableFit<'_>, observer: &mut dyn TrainObserver) -> Result<Fitted> {
    let TableFit {
        spec,
        target,
        target_info,
        split,
        x_train,
        x_valid,
        width,
        input,
        ..
    } = fit;
    let ModelSpec::Linear {
        ridge_alpha,
        poly_degree,
    } = spec
    else {
        return Err(WickError::InvalidSpec("not a linear model".into()));
    };
    let TargetValues::Regression(y) = target else {
        return Err(WickError::InvalidSpec(
            "linear regression needs a numeric target".into(),
        ));
    };
    observer.on_event(started_event(
        "CPU (f64 least squares)".into(),
        1,
        1,
        SplitSizes::from(split),
    ));
    let y_train: Vec<f64> = split.train.iter().map(|&r| y[r]).collect();
    let (px, cols) = polynomial_features(x_train, width, *poly_degree);
    let weights = fit_least_squares(&px, cols, &y_train, *ridge_alpha)?;
    let model = Model::new(spec.clone(), input, target_info, Weights::Linear(weights))?;
    for (split_name, x, rows) in [
        (SplitName::Train, x_train, &split.train),
        (SplitName::Valid, x_valid, &split.valid),
    ] {
        if rows.is_empty() {
            continue;
        }
        let predicted: Vec<f64> = model
            .predict_encoded(x, rows.len())?
            .iter()
            .map(Prediction::as_f64)
            .collect();
        let actual: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
        let m = regression_metrics(&actual, &predicted);
        for (name, value) in [("loss", m.mse), ("r2", m.r2)] {
            observer.on_event(TrainEvent::Metric {
                epoch: 1,
                split: split_name,
                name: name.into(),
                value,
            });
        }
    }
    Ok(Fitted {
        model,
        epochs_run: 1,
        best_epoch: 1,
        device: "CPU".to_string(),
    })
}
