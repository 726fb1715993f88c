//! Training: configuration, devices, optimisers, the event stream and the training loops.

pub mod cv;
pub mod events;
pub(crate) mod fit;
pub mod job;
pub mod live_data;
pub mod optim;
pub mod parity;
mod pipeline;
pub mod search;
pub mod streamed;
mod table_data;
mod table_kinds;
pub mod throughput;

pub use cv::{cross_validate, CvReport, FoldStat};
// The run's settings and report live below `package` (in `crate::run`), the device choice in
// `crate::device`; they are re-exported here, where callers look for them.
pub use crate::device::{
    available_devices, describe as describe_device, fix_cpu_thread_count,
    keep_freed_memory_for_reuse, DeviceChoice,
};
pub use crate::run::{
    Actual, ClassWeight, MetricPoint, OptimizerKind, RowsUsed, SplitSizes, TestSample, TrainConfig,
    TrainOutcome, TrainReport,
};
pub use events::{CancelToken, SplitName, TrainEvent, TrainObserver};
pub use job::{run, JobData, JobOutcome, SaveTo, TableRows, TrainJob};
pub use live_data::{live_rows_frame, request_of, train_with_live_rows, NewRows};
pub use pipeline::{train_images, train_table, AUGMENTED_VIEWS};
pub use search::{search, Candidate, SearchEvent, SearchOutcome};
pub use streamed::{train_csv_streamed, StreamOptions};
pub use table_data::TableData;
