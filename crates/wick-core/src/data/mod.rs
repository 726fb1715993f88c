//! Datasets: tables (CSV, Parquet, NDJSON) and image folders, their statistics, splits and preprocessing.

pub mod augment;
pub mod columns;
pub mod fingerprint;
pub mod images;
pub mod personal;
pub mod split;
pub mod stream;
pub mod summary;
pub mod table;
pub mod tabular;
pub mod text;

pub use augment::{Augment, AUGMENT_NAMES};
pub use columns::{date_parts, parse_date, ColumnKind, FeatureAdvice, DATE_PARTS};
pub use fingerprint::{
    fingerprint_file, fingerprint_files, fingerprint_hashed, DatasetFingerprint,
};
pub use images::{
    index_image_csv, index_image_folder, index_image_folder_with_progress, load_image, ImageIndex,
    ImageShape, SkippedFile, IMAGE_EXTENSIONS,
};
pub use personal::{detect_personal, PersonalAction, PersonalData, PersonalKind};
pub use split::{split_rows, Split, SplitFractions};
pub use stream::{
    sample_csv, stream_csv, summarize_csv_streaming, CsvChunks, DEFAULT_CHUNK_BYTES,
    STREAM_THRESHOLD_BYTES,
};
pub use summary::{inspect_table, summarize, ColumnSummary, TableSummary};
pub use table::{read_table, TableFormat};
pub use tabular::{
    detect_task, prepare_tabular, FeatureEncoder, MissingPolicy, PreprocessOptions, Preprocessor,
    RawColumn, TabularDataset, TabularRequest, TargetValues, Task,
};
pub use text::cut_text;
