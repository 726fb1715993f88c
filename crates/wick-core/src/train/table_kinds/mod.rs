//! How each kind of table model is fitted, one module per family: the run around it (reading,
//! splitting, encoding, scoring the test rows, the report) is the same for all of them and lives in
//! `pipeline` and `streamed`.

mod linear;
mod network;
mod trees;

use rand_chacha::ChaCha8Rng;

use crate::data::{Split, TargetValues};
use crate::error::{Result, WickError};
use crate::model::{Model, ModelInput, ModelKind, ModelSpec, TargetInfo};
use crate::run::TrainConfig;
use crate::train::events::{CancelToken, TrainObserver};

/// What a kind is fitted from: an encoded table (row-major, `width` columns per row) and its split.
pub(in crate::train) struct TableFit<'a> {
    pub spec: &'a ModelSpec,
    pub config: &'a TrainConfig,
    /// The target of every row of the table; the split's rows index it.
    pub target: &'a TargetValues,
    /// The target's name, task and labels; a kind that rescales the target sets its scale.
    pub target_info: TargetInfo,
    pub split: &'a Split,
    pub x_train: &'a [f64],
    pub x_valid: &'a [f64],
    pub width: usize,
    pub input: ModelInput,
}

/// A fitted model and what the run reports about the fit.
pub(in crate::train) struct Fitted {
    pub model: Model,
    pub epochs_run: usize,
    pub best_epoch: usize,
    /// Where it trained, in words.
    pub device: String,
}

/// Fits the table model `fit.spec` names. It sends `Started` and its metrics to `observer`; the
/// caller sends `Finished` once the test rows are scored.
pub(in crate::train) fn fit(
    fit: TableFit<'_>,
    rng: &mut ChaCha8Rng,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<Fitted> {
    match ModelKind::of(fit.spec) {
        ModelKind::Linear | ModelKind::Polynomial | ModelKind::Ridge => linear::fit(fit, observer),
        ModelKind::Logistic | ModelKind::Mlp => network::fit(fit, rng, observer, cancel),
        ModelKind::BoostedTrees | ModelKind::Forest => trees::fit(fit, observer, cancel),
        ModelKind::Cnn | ModelKind::Transfer => Err(WickError::InvalidSpec(
            "CNN and transfer-learning models take images; open an image folder instead of a table"
                .into(),
        )),
    }
}
