//! Wick's engine: datasets, models, training, metrics and model packages. No UI.
//!
//! The flow: open data ([`data`]) → choose a [`model::ModelSpec`] → train ([`train`]), which emits
//! [`train::TrainEvent`]s → save a [`package`] → load it and predict with [`model::Model`].

pub mod data;
pub mod device;
pub mod drift;
pub mod error;
pub mod evaluate;
pub mod explain;
pub mod export;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod package;
pub mod publish;
pub mod run;
pub mod train;
pub mod wire;

pub use error::{Result, WickError};
/// The polars version Wick is built with, for callers that handle frames.
pub use polars;
