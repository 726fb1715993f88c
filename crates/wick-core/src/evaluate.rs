//! Scoring a trained model on a labelled table or image folder.

use polars::prelude::*;

use crate::data::{ImageIndex, Task};
use crate::error::{Result, WickError};
use crate::metrics::{classification_metrics, regression_metrics, Metrics};
use crate::model::{Model, Prediction};

/// Predicts every row of `df` and compares with its target column (the one the model was trained on).
pub fn evaluate_table(model: &Model, df: &DataFrame) -> Result<(Metrics, Vec<Prediction>)> {
    let target = &model.target.name;
    let column = df.column(target).map_err(|_| {
        WickError::column(
            target,
            "is missing: evaluation needs the target column the model was trained on",
        )
    })?;
    let predictions = model.predict_frame(df)?;
    let metrics = match model.task() {
        Task::Regression => {
            let actual = column
                .cast(&DataType::Float64)
                .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
            let actual = actual
                .f64()
                .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
            let (mut a, mut p) = (Vec::new(), Vec::new());
            for (v, pred) in actual.iter().zip(&predictions) {
                if let (Some(v), Prediction::Value { value }) = (v, pred) {
                    a.push(v);
                    p.push(*value);
                }
            }
            Metrics::Regression(regression_metrics(&a, &p))
        }
        Task::Classification => {
            let actual = column
                .cast(&DataType::String)
                .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
            let actual = actual
                .str()
                .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
            let labels = &model.target.labels;
            let (mut a, mut p) = (Vec::new(), Vec::new());
            for (v, pred) in actual.iter().zip(&predictions) {
                let (Some(v), Prediction::Class { class_index, .. }) = (v, pred) else {
                    continue;
                };
                // A label never seen in training counts as a miss (index past the known classes).
                a.push(labels.iter().position(|l| l == v).unwrap_or(labels.len()));
                p.push(*class_index);
            }
            Metrics::Classification(classification_metrics(labels, &a, &p))
        }
    };
    Ok((metrics, predictions))
}

/// Predicts every image of an indexed folder and compares with its class folder.
pub fn evaluate_images(model: &Model, index: &ImageIndex) -> Result<(Metrics, Vec<Prediction>)> {
    let samples = index.samples()?;
    let paths: Vec<_> = samples.iter().map(|(p, _)| p.clone()).collect();
    let predictions = model.predict_image_paths(&paths)?;
    let labels = &model.target.labels;
    let actual: Vec<usize> = samples
        .iter()
        .map(|(_, c)| {
            labels
                .iter()
                .position(|l| *l == index.classes[*c])
                .unwrap_or(labels.len())
        })
        .collect();
    let predicted: Vec<usize> = predictions
        .iter()
        .map(|p| match p {
            Prediction::Class { class_index, .. } => *class_index,
            Prediction::Value { .. } => labels.len(),
        })
        .collect();
    Ok((
        Metrics::Classification(classification_metrics(labels, &actual, &predicted)),
        predictions,
    ))
}
