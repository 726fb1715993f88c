//! The one error type of the engine. Every variant says what went wrong, where, and what to do.

use std::path::PathBuf;

/// Errors from `wick-core`. Messages are written for the person using Wick, not for a developer.
#[derive(Debug, thiserror::Error)]
pub enum WickError {
    /// A problem with a data file as a whole (empty, unreadable, wrong format…).
    #[error("{path}: {message}")]
    Data { path: PathBuf, message: String },

    /// A problem with one column of a table.
    #[error("column `{column}`: {message}")]
    Column { column: String, message: String },

    /// A problem with one layer of a model's layer stack.
    #[error("layer {index} ({layer}): {message}")]
    Layer {
        index: usize,
        layer: String,
        message: String,
    },

    /// A model specification or training setting that can't work.
    #[error("{0}")]
    InvalidSpec(String),

    /// The loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}, step {step}: the loss became {loss}. \
         Lower the learning rate (it was {lr}) and train again."
    )]
    Diverged {
        epoch: usize,
        step: usize,
        loss: f64,
        lr: f64,
    },

    /// The caller cancelled the run.
    #[error("training was cancelled")]
    Cancelled,

    /// A requested compute device is not available.
    #[error("device: {0}")]
    Device(String),

    /// A model package that can't be read or written.
    #[error("model package {path}: {message}")]
    Package { path: PathBuf, message: String },

    /// A file that could not be downloaded (pretrained backbone weights).
    #[error("downloading {what}: {message}")]
    Download { what: String, message: String },

    /// A model that can't be written in an export format.
    #[error("export: {0}")]
    Export(String),

    /// Input given to a trained model that does not fit it.
    #[error("prediction input: {0}")]
    PredictInput(String),

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("tensor computation failed: {0}")]
    Tensor(#[from] candle_core::Error),

    #[error("{context}: {source}")]
    Polars {
        context: String,
        #[source]
        source: polars::error::PolarsError,
    },
}

pub type Result<T, E = WickError> = std::result::Result<T, E>;

impl WickError {
    pub(crate) fn data(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Data {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn column(column: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Column {
            column: column.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn package(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self::Package {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn polars(context: impl Into<String>, source: polars::error::PolarsError) -> Self {
        Self::Polars {
            context: context.into(),
            source,
        }
    }
}
