//! What the background jobs hand back and the app state keeps: the loaded dataset, the endpoint to
//! talk to, the fit plot's data, a saliency overlay. A leaf below `jobs`, `state` and `host`, so
//! none of them imports another for these.

use wick_core::data::{ImageIndex, TableSummary};
use wick_core::polars::prelude::DataFrame;

/// A numeric column's histogram, computed off the UI thread.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub min: f64,
    pub bin_width: f64,
    pub counts: Vec<usize>,
}

/// A dataset in memory.
#[derive(Clone)]
pub enum LoadedData {
    /// `sampled_from`: the file's row count when `df` is a seeded sample of a large file (the
    /// summary still describes every row).
    Table {
        df: DataFrame,
        summary: TableSummary,
        histograms: Vec<Option<Histogram>>,
        sampled_from: Option<usize>,
    },
    Images {
        index: ImageIndex,
    },
}

impl LoadedData {
    pub fn is_images(&self) -> bool {
        matches!(self, Self::Images { .. })
    }
}

/// Where to publish: the embedded server or a remote one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointTarget {
    pub url: String,
    pub token: String,
}

/// The fit plot's data: test samples over the feature, and the model's curve.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FitView {
    pub points: Vec<[f64; 2]>,
    pub curve: Vec<[f64; 2]>,
}

/// An image tried on an image model, and where the model looked.
#[derive(Clone)]
pub struct TrySaliency {
    pub image: egui::ColorImage,
    pub overlay: egui::ColorImage,
}
