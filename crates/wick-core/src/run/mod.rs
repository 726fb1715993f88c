//! What describes one training run: its settings ([`TrainConfig`]) and what it measured
//! ([`TrainReport`]). Both are kept in a package's manifest, so they sit below `package` and `train`.

mod config;
mod report;

pub use config::{ClassWeight, OptimizerKind, TrainConfig};
pub use report::{
    Actual, MetricPoint, RowsUsed, SplitName, SplitSizes, TestSample, TrainOutcome, TrainReport,
};
