//! Training on a CSV too large to load, which the Data screen opens as a sample.
//!
//! - Linear regression sums the normal equations chunk by chunk: every row, in memory of
//!   `features²`.
//! - Boosted trees and forests hold every row encoded (8 bytes a value) while that fits the
//!   memory budget.
//! - Networks, and trees past the budget, train on a bounded, seeded sample, stratified by class.
//!
//! Rows fall into train, validation and test by a seeded hash of their row number, so a split
//! needs no index of the file. Features, their encoding and the task come from the sample the
//! file was opened with; classes and counts from a first pass over the target column.

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use polars::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::data::fingerprint::{fingerprint_hashed, DatasetFingerprint};
use crate::data::stream::stack;
use crate::data::{
    prepare_tabular, CsvChunks, MissingPolicy, Preprocessor, Split, SplitFractions, TabularRequest,
    TargetValues, Task,
};
use crate::error::{Result, WickError};
use crate::metrics::regression_metrics;
use crate::model::{
    polynomial_features, Model, ModelInput, ModelSpec, NormalEquations, TargetInfo, Weights,
};
use crate::run::{MetricPoint, RowsUsed, SplitSizes, TrainConfig, TrainOutcome, TrainReport};
use crate::train::events::{CancelToken, SplitName, TrainEvent, TrainObserver};
use crate::train::pipeline::{
    check_spec_fits_task, fit_encoded, report_failure, score_held_out, started_event,
    train_table_with, EncodedTable,
};
use crate::train::table_data::TableData;

/// Rows of each held-out split at most. Past this, rows drawn for validation or test train
/// instead: a score on 200,000 rows is already precise to about ±0.002.
pub const MAX_HELD_OUT_ROWS: usize = 200_000;
/// Bytes a tree fit takes per encoded value: the row-major matrix, the column-major copy the
/// boosting crate reads, its bins and gradients.
const TREE_BYTES_PER_VALUE: u64 = 8 * 3;
/// Rows of a class kept in a stratified sample even when its share would give fewer.
const MIN_SAMPLE_ROWS_PER_CLASS: usize = 50;
/// Bytes of rows parsed at once: a chunk is copied a few times on its way to the model (parsed,
/// encoded, split), so smaller than a summary's chunks.
const TRAIN_CHUNK_BYTES: usize = 16 << 20;
/// More classes than this is not a classification target (as for tables in memory).
const MAX_CLASSES: usize = 1000;

/// How a large file is read for training.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Bytes of rows parsed at once.
    pub chunk_bytes: usize,
    /// Rows of the sample that networks (and trees past the budget) train on.
    pub sample_rows: usize,
    /// Memory that a tree model's encoded rows may take.
    pub memory_budget_bytes: u64,
}

impl Default for StreamOptions {
    fn default() -> Self {
        let mut system = sysinfo::System::new();
        system.refresh_memory();
        // Half of what is free now, so the app and the system keep room.
        let available = system.available_memory().max(1 << 30);
        Self {
            chunk_bytes: TRAIN_CHUNK_BYTES,
            sample_rows: 500_000,
            memory_budget_bytes: available / 2,
        }
    }
}

/// Trains `spec` on the CSV at `path`, reading it in chunks. `sample` is a seeded uniform sample of
/// the file (as [`crate::data::stream_csv`] draws): it fixes the features and their encoding.
pub fn train_csv_streamed(
    table: TableData<'_>,
    spec: &ModelSpec,
    config: &TrainConfig,
    options: &StreamOptions,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let result = train_streamed_inner(table, spec, config, options, observer, cancel);
    report_failure(result, observer)
}

fn train_streamed_inner(
    table: TableData<'_>,
    spec: &ModelSpec,
    config: &TrainConfig,
    options: &StreamOptions,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    // The frame is a seeded sample of the file at `source`.
    let TableData {
        df: sample,
        source: path,
        request,
    } = table;
    let started = Instant::now();
    if config.fixed_split.is_some() {
        return Err(WickError::InvalidSpec(
            "a fixed split of row numbers can't be used with a file this large; use the validation and test fractions".into(),
        ));
    }
    let probe = prepare_tabular(sample, request)?;
    let task = probe.target.task();
    check_spec_fits_task(spec, task)?;
    let features: Vec<String> = probe
        .features
        .iter()
        .map(|(name, _)| name.clone())
        .collect();
    let passes = usize::from(task == Task::Classification) + 1;
    let mut reading = Reading {
        observer,
        pass: 0,
        passes,
    };
    let counts = match task {
        Task::Classification => Some(count_target(
            path,
            &request.target,
            true,
            options.chunk_bytes,
            &mut reading,
            cancel,
        )?),
        Task::Regression => None,
    };
    let ctx = FileCtx {
        path,
        request,
        features: &features,
        sample_warnings: &probe.warnings,
        config,
        options,
        counts: counts.as_ref(),
        started,
    };
    match spec {
        ModelSpec::Linear {
            ridge_alpha,
            poly_degree,
        } => {
            let preprocessor = Preprocessor::fit(
                &probe,
                &(0..probe.rows()).collect::<Vec<_>>(),
                &request.options,
            )?;
            linear_every_row(
                &ctx,
                preprocessor,
                *ridge_alpha,
                *poly_degree,
                spec,
                &mut reading,
                cancel,
            )
        }
        ModelSpec::Gbdt { .. } | ModelSpec::Forest { .. } => {
            let preprocessor =
                Preprocessor::fit_for_trees(&probe, &(0..probe.rows()).collect::<Vec<_>>())?;
            let width = preprocessor.width().max(1) as u64;
            let max_rows = (options.memory_budget_bytes / (width * TREE_BYTES_PER_VALUE)) as usize;
            match trees_every_row(&ctx, preprocessor, max_rows, spec, &mut reading, cancel)? {
                Some(outcome) => Ok(outcome),
                None => {
                    let reason = format!(
                        "every row would need more than the {:.1} GB this run may use",
                        options.memory_budget_bytes as f64 / 1e9
                    );
                    train_on_sample(
                        &ctx,
                        sample,
                        max_rows.min(options.sample_rows),
                        reason,
                        spec,
                        &mut reading,
                        cancel,
                    )
                }
            }
        }
        _ => {
            let reason =
                "networks learn from a sample as well as from every row, in a fraction of the time"
                    .to_string();
            train_on_sample(
                &ctx,
                sample,
                options.sample_rows,
                reason,
                spec,
                &mut reading,
                cancel,
            )
        }
    }
}

/// What every pass over one file shares.
struct FileCtx<'a> {
    path: &'a Path,
    request: &'a TabularRequest,
    features: &'a [String],
    /// The opening sample's notes on the columns (left out, dates, …).
    sample_warnings: &'a [String],
    config: &'a TrainConfig,
    options: &'a StreamOptions,
    counts: Option<&'a ClassCounts>,
    started: Instant,
}

impl FileCtx<'_> {
    /// The feature columns and the target: all a pass parses.
    fn columns(&self) -> Vec<String> {
        let mut columns = self.features.to_vec();
        columns.push(self.request.target.clone());
        columns
    }

    fn chunks(&self) -> Result<CsvChunks> {
        Ok(CsvChunks::open(self.path, self.options.chunk_bytes)?
            .0
            .select(&self.columns()))
    }
}

/// Sends the progress of the passes over the file.
struct Reading<'a> {
    observer: &'a mut dyn TrainObserver,
    pass: usize,
    passes: usize,
}

impl Reading<'_> {
    fn start_pass(&mut self) {
        self.pass += 1;
        self.passes = self.passes.max(self.pass);
    }

    fn progress(&mut self, chunks: &CsvChunks) {
        let (pass, passes) = (self.pass, self.passes);
        self.observer.on_event(TrainEvent::ReadingData {
            pass,
            passes,
            bytes_done: chunks.bytes_read().min(chunks.total_bytes()),
            bytes_total: chunks.total_bytes(),
        });
    }
}

/// The target's classes over the whole file (none for a numeric target), and the file's hash
/// (read on the way).
struct ClassCounts {
    /// Sorted, as for a table in memory.
    labels: Vec<String>,
    counts: Vec<usize>,
    /// Rows with a target.
    rows: usize,
    sha256: String,
}

/// One pass over the target column: the rows with a target, the file's hash, and with `classes`
/// the count of each class.
fn count_target(
    path: &Path,
    target: &str,
    classes: bool,
    chunk_bytes: usize,
    reading: &mut Reading<'_>,
    cancel: &CancelToken,
) -> Result<ClassCounts> {
    reading.start_pass();
    let mut chunks = CsvChunks::open(path, chunk_bytes)?
        .0
        .select(&[target.to_string()])
        .hashing();
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut rows = 0;
    while let Some(chunk) = chunks.next_chunk()? {
        if cancel.is_cancelled() {
            return Err(WickError::Cancelled);
        }
        let text = target_text(&chunk, target)?;
        if !classes {
            rows += text.len() - text.null_count();
            reading.progress(&chunks);
            continue;
        }
        for label in text.iter().flatten() {
            match counts.get_mut(label) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(label.to_string(), 1);
                }
            }
        }
        if counts.len() > MAX_CLASSES {
            return Err(WickError::column(target, format!("has more than {MAX_CLASSES} distinct values: too many classes. Did you mean regression?")));
        }
        reading.progress(&chunks);
    }
    let mut pairs: Vec<(String, usize)> = counts.into_iter().collect();
    pairs.sort();
    rows += pairs.iter().map(|(_, n)| n).sum::<usize>();
    let sha256 = chunks.sha256_hex().unwrap_or_default();
    let (labels, counts) = pairs.into_iter().unzip();
    Ok(ClassCounts {
        labels,
        counts,
        rows,
        sha256,
    })
}

/// The target column of a chunk as text (how class labels are read everywhere).
fn target_text(chunk: &DataFrame, target: &str) -> Result<StringChunked> {
    let column = chunk.column(target).map_err(|_| {
        WickError::column(
            target,
            "is missing from part of the file: check that every row has the header's columns",
        )
    })?;
    let text = column
        .cast(&DataType::String)
        .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
    Ok(text
        .str()
        .map_err(|e| WickError::polars(format!("target `{target}`"), e))?
        .clone())
}

/// Where a row of the file falls: a seeded hash of its number against the fractions.
fn split_of(row: usize, seed: u64, fractions: SplitFractions) -> SplitName {
    // splitmix64: consecutive rows get independent draws.
    let mut z = (row as u64)
        .wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = (z >> 11) as f64 / (1u64 << 53) as f64;
    if u < fractions.test {
        SplitName::Test
    } else if u < fractions.test + fractions.valid {
        SplitName::Valid
    } else {
        SplitName::Train
    }
}

/// One chunk's rows that can train: their file rows, splits, encoded features and targets.
struct ChunkRows {
    rows: Vec<(usize, SplitName)>,
    x: Vec<f64>,
    y: Vec<f64>,
    missing_target: usize,
    missing_feature: usize,
}

/// Encodes a chunk whose first row is file row `first_row`. Targets are numbers, or class
/// indices into `labels`.
fn encode_chunk(
    ctx: &FileCtx<'_>,
    preprocessor: &Preprocessor,
    chunk: &DataFrame,
    first_row: usize,
    held_out: &mut [usize; 2],
) -> Result<ChunkRows> {
    let target = &ctx.request.target;
    let n = chunk.height();
    let y: Vec<Option<f64>> = match ctx.counts {
        Some(counts) => target_text(chunk, target)?
            .iter()
            .map(|v| {
                v.and_then(|v| counts.labels.binary_search_by(|l| l.as_str().cmp(v)).ok())
                    .map(|c| c as f64)
            })
            .collect(),
        None => {
            let values = chunk.column(target).map_err(|_| WickError::column(target, "is missing from part of the file: check that every row has the header's columns"))?;
            let values = values
                .cast(&DataType::Float64)
                .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
            let values = values
                .f64()
                .map_err(|e| WickError::polars(format!("target `{target}`"), e))?;
            if let Some((i, v)) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| v.filter(|v| !v.is_finite()).map(|v| (i, v)))
            {
                return Err(WickError::column(
                    target,
                    format!(
                        "row {} holds {v}: a target must be a finite number",
                        first_row + i + 1
                    ),
                ));
            }
            values.iter().collect()
        }
    };
    let mut missing_feature_at = vec![false; n];
    if ctx.request.options.missing == MissingPolicy::Drop {
        for name in ctx.features {
            if let Ok(column) = chunk.column(name) {
                for (i, null) in column.is_null().iter().enumerate() {
                    missing_feature_at[i] |= null.unwrap_or(false);
                }
            }
        }
    }
    // Encoding (date parsing, category look-ups) is per row: slices of the chunk encode in parallel.
    let slice_rows = n.div_ceil(rayon::current_num_threads().max(1)).max(1);
    let parts: Vec<Result<Vec<f64>>> = (0..n)
        .step_by(slice_rows)
        .collect::<Vec<_>>()
        .into_par_iter()
        .map(|start| preprocessor.transform_frame(&chunk.slice(start as i64, slice_rows)))
        .collect();
    let mut x = Vec::with_capacity(n * preprocessor.width());
    for part in parts {
        x.extend(part.map_err(|e| {
            WickError::data(
                ctx.path,
                format!("rows {}–{}: {e}", first_row + 1, first_row + n),
            )
        })?);
    }
    let width = preprocessor.width();
    let mut out = ChunkRows {
        rows: Vec::new(),
        x: Vec::new(),
        y: Vec::new(),
        missing_target: 0,
        missing_feature: 0,
    };
    for i in 0..n {
        let Some(value) = y[i] else {
            out.missing_target += 1;
            continue;
        };
        if missing_feature_at[i] {
            out.missing_feature += 1;
            continue;
        }
        let row = first_row + i;
        let split = match split_of(row, ctx.config.seed, ctx.config.split) {
            SplitName::Valid if held_out[0] < MAX_HELD_OUT_ROWS => {
                held_out[0] += 1;
                SplitName::Valid
            }
            SplitName::Test if held_out[1] < MAX_HELD_OUT_ROWS => {
                held_out[1] += 1;
                SplitName::Test
            }
            _ => SplitName::Train,
        };
        out.rows.push((row, split));
        out.x.extend_from_slice(&x[i * width..(i + 1) * width]);
        out.y.push(value);
    }
    Ok(out)
}

/// Rows of one split gathered from every chunk.
#[derive(Default)]
struct SplitRows {
    file_rows: Vec<usize>,
    x: Vec<f64>,
    y: Vec<f64>,
}

impl SplitRows {
    fn push(&mut self, file_row: usize, x: &[f64], y: f64) {
        self.file_rows.push(file_row);
        self.x.extend_from_slice(x);
        self.y.push(y);
    }
}

/// Warnings for the whole file: the sample's notes on columns, and the file's own counts.
fn file_warnings(ctx: &FileCtx<'_>, missing_target: usize, missing_feature: usize) -> Vec<String> {
    // The sample's counts of dropped rows describe the sample, not the file.
    let mut warnings: Vec<String> = ctx
        .sample_warnings
        .iter()
        .filter(|w| !w.starts_with("dropped "))
        .cloned()
        .collect();
    if missing_target > 0 {
        warnings.push(format!(
            "dropped {missing_target} rows whose target `{}` is missing",
            ctx.request.target
        ));
    }
    if missing_feature > 0 {
        warnings.push(format!(
            "dropped {missing_feature} rows with a missing feature value"
        ));
    }
    if let Some(counts) = ctx.counts {
        for (label, n) in counts.labels.iter().zip(&counts.counts) {
            if *n == 1 {
                warnings.push(format!(
                    "class `{label}` of `{}` has a single row in the file",
                    ctx.request.target
                ));
            }
        }
    }
    warnings
}

fn fingerprint(
    ctx: &FileCtx<'_>,
    sha256: Option<String>,
    rows: usize,
) -> Result<DatasetFingerprint> {
    match sha256.or_else(|| ctx.counts.map(|c| c.sha256.clone())) {
        Some(sha256) => Ok(fingerprint_hashed(ctx.path, sha256, rows)),
        None => crate::data::fingerprint_file(ctx.path, rows),
    }
}

/// Linear regression on every row: the training rows' normal equations are summed chunk by
/// chunk; the held-out rows (at most [`MAX_HELD_OUT_ROWS`] each) are kept to score.
fn linear_every_row(
    ctx: &FileCtx<'_>,
    preprocessor: Preprocessor,
    ridge_alpha: f64,
    poly_degree: u32,
    spec: &ModelSpec,
    reading: &mut Reading<'_>,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    reading.start_pass();
    let width = preprocessor.width();
    let mut sums = NormalEquations::new(width * poly_degree.max(1) as usize);
    let (mut valid, mut test) = (SplitRows::default(), SplitRows::default());
    let (mut missing_target, mut missing_feature, mut held_out) = (0, 0, [0usize; 2]);
    let mut chunks = ctx.chunks()?.hashing();
    while let Some(chunk) = chunks.next_chunk()? {
        if cancel.is_cancelled() {
            return Err(WickError::Cancelled);
        }
        let first_row = chunks.rows_read() - chunk.height();
        let part = encode_chunk(ctx, &preprocessor, &chunk, first_row, &mut held_out)?;
        missing_target += part.missing_target;
        missing_feature += part.missing_feature;
        let (mut train_x, mut train_y) = (Vec::new(), Vec::new());
        for (i, (row, split)) in part.rows.iter().enumerate() {
            let x = &part.x[i * width..(i + 1) * width];
            match split {
                SplitName::Train => {
                    train_x.extend_from_slice(x);
                    train_y.push(part.y[i]);
                }
                SplitName::Valid => valid.push(*row, x, part.y[i]),
                SplitName::Test => test.push(*row, x, part.y[i]),
            }
        }
        if poly_degree > 1 {
            sums.add(
                &polynomial_features(&train_x, width, poly_degree).0,
                &train_y,
            )?;
        } else {
            sums.add(&train_x, &train_y)?;
        }
        reading.progress(&chunks);
    }
    let sizes = SplitSizes {
        train: sums.rows() as usize,
        valid: valid.y.len(),
        test: test.y.len(),
    };
    let mut history = Vec::new();
    let mut send = |observer: &mut dyn TrainObserver, event: TrainEvent| {
        if let TrainEvent::Metric {
            epoch,
            split,
            name,
            value,
        } = &event
        {
            history.push(MetricPoint {
                epoch: *epoch,
                split: *split,
                name: name.clone(),
                value: *value,
            });
        }
        observer.on_event(event);
    };
    send(
        reading.observer,
        started_event("CPU (f64 normal equations)".into(), 1, 1, sizes),
    );
    let (fit, train_mse, train_r2) = sums.solve(ridge_alpha)?;
    let target = TargetInfo {
        name: ctx.request.target.clone(),
        task: Task::Regression,
        labels: Vec::new(),
        scale: None,
    };
    let model = Model::new(
        spec.clone(),
        ModelInput::Tabular { preprocessor },
        target,
        Weights::Linear(fit),
    )?;
    let metric = |split: SplitName, name: &str, value: f64| TrainEvent::Metric {
        epoch: 1,
        split,
        name: name.into(),
        value,
    };
    send(
        reading.observer,
        metric(SplitName::Train, "loss", train_mse),
    );
    send(reading.observer, metric(SplitName::Train, "r2", train_r2));
    if !valid.y.is_empty() {
        let predicted: Vec<f64> = model
            .predict_encoded(&valid.x, valid.y.len())?
            .iter()
            .map(|p| p.as_f64())
            .collect();
        let m = regression_metrics(&valid.y, &predicted);
        send(reading.observer, metric(SplitName::Valid, "loss", m.mse));
        send(reading.observer, metric(SplitName::Valid, "r2", m.r2));
    }
    let predictions = model.predict_encoded(&test.x, test.y.len())?;
    let test_rows: Vec<usize> = (0..test.y.len()).collect();
    let (test_metrics, test_samples) = score_held_out(
        &TargetValues::Regression(test.y.clone()),
        &test_rows,
        &predictions,
        &[],
        |r| format!("row {}", test.file_rows[r] + 1),
    );
    let duration_secs = ctx.started.elapsed().as_secs_f64();
    send(
        reading.observer,
        TrainEvent::Finished {
            epochs_run: 1,
            best_epoch: 1,
            duration_secs,
        },
    );
    let rows = sizes.train + sizes.valid + sizes.test;
    let report = TrainReport {
        test: test_metrics,
        history,
        test_samples,
        warnings: file_warnings(ctx, missing_target, missing_feature),
        dataset: fingerprint(ctx, chunks.sha256_hex(), rows)?,
        config: ctx.config.clone(),
        device: "CPU".into(),
        epochs_run: 1,
        best_epoch: 1,
        duration_secs,
        rows: sizes,
        rows_used: Some(RowsUsed::EveryRow { rows }),
        training_profile: None,
    };
    Ok(TrainOutcome { model, report })
}

/// A boosted model or a forest on every row, encoded in memory; `None` when the rows turn out
/// more than `max_rows` (the memory budget), so the caller trains on a sample instead.
fn trees_every_row(
    ctx: &FileCtx<'_>,
    preprocessor: Preprocessor,
    max_rows: usize,
    spec: &ModelSpec,
    reading: &mut Reading<'_>,
    cancel: &CancelToken,
) -> Result<Option<TrainOutcome>> {
    if ctx.counts.is_some_and(|c| c.rows > max_rows) {
        return Ok(None);
    }
    reading.start_pass();
    let width = preprocessor.width();
    let mut splits: [SplitRows; 3] = Default::default();
    let (mut missing_target, mut missing_feature, mut held_out) = (0, 0, [0usize; 2]);
    let mut chunks = ctx.chunks()?;
    if ctx.counts.is_none() {
        chunks = chunks.hashing();
    }
    while let Some(chunk) = chunks.next_chunk()? {
        if cancel.is_cancelled() {
            return Err(WickError::Cancelled);
        }
        // Without a first pass, the row count is estimated from the bytes read so far.
        if ctx.counts.is_none() && chunks.estimated_rows() > max_rows as f64 {
            return Ok(None);
        }
        let first_row = chunks.rows_read() - chunk.height();
        let part = encode_chunk(ctx, &preprocessor, &chunk, first_row, &mut held_out)?;
        missing_target += part.missing_target;
        missing_feature += part.missing_feature;
        for (i, (row, split)) in part.rows.iter().enumerate() {
            let k = match split {
                SplitName::Train => 0,
                SplitName::Valid => 1,
                SplitName::Test => 2,
            };
            splits[k].push(*row, &part.x[i * width..(i + 1) * width], part.y[i]);
        }
        reading.progress(&chunks);
    }
    let [train, valid, test] = splits;
    let (nt, nv, ns) = (train.y.len(), valid.y.len(), test.y.len());
    let split = Split {
        train: (0..nt).collect(),
        valid: (nt..nt + nv).collect(),
        test: (nt + nv..nt + nv + ns).collect(),
    };
    let y: Vec<f64> = train.y.into_iter().chain(valid.y).chain(test.y).collect();
    let target = match ctx.counts {
        Some(counts) => TargetValues::Classification {
            labels: counts.labels.clone(),
            classes: y.iter().map(|&c| c as usize).collect(),
        },
        None => TargetValues::Regression(y),
    };
    let rows = nt + nv + ns;
    let table = EncodedTable {
        preprocessor,
        target_name: ctx.request.target.clone(),
        target,
        split,
        x_train: train.x,
        x_valid: valid.x,
        x_test: test.x,
        warnings: file_warnings(ctx, missing_target, missing_feature),
        fingerprint: fingerprint(ctx, chunks.sha256_hex(), rows)?,
        file_rows: Some(
            train
                .file_rows
                .into_iter()
                .chain(valid.file_rows)
                .chain(test.file_rows)
                .collect(),
        ),
        profile: None,
    };
    let mut outcome = fit_encoded(
        table,
        spec,
        ctx.config,
        ctx.started,
        reading.observer,
        cancel,
    )?;
    outcome.report.rows_used = Some(RowsUsed::EveryRow { rows });
    Ok(Some(outcome))
}

/// Trains on a seeded sample of at most about `rows` rows: stratified by class (each class its
/// share, and at least a few rows), drawn in one more pass; for a numeric target, the uniform
/// sample the file was opened with.
fn train_on_sample(
    ctx: &FileCtx<'_>,
    uniform: &DataFrame,
    rows: usize,
    reason: String,
    spec: &ModelSpec,
    reading: &mut Reading<'_>,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let (df, counted, stratified) = match ctx.counts {
        Some(counts) => (
            stratified_sample(ctx, counts, rows, reading, cancel)?,
            None,
            true,
        ),
        None => {
            // The file's rows and hash in the one pass its fingerprint needs anyway.
            let counted = count_target(
                ctx.path,
                &ctx.request.target,
                false,
                ctx.options.chunk_bytes,
                reading,
                cancel,
            )?;
            (
                uniform.slice(0, uniform.height().min(rows.max(1))),
                Some(counted),
                false,
            )
        }
    };
    let file = ctx
        .counts
        .or(counted.as_ref())
        .ok_or_else(|| WickError::InvalidSpec("the file's rows were not counted".into()))?;
    let known = fingerprint_hashed(ctx.path, file.sha256.clone(), file.rows);
    let mut outcome = train_table_with(
        TableData::new(&df, ctx.path, ctx.request),
        Some(known),
        spec,
        ctx.config,
        reading.observer,
        cancel,
    )?;
    outcome.report.rows_used = Some(RowsUsed::Sample {
        rows: df.height(),
        of: file.rows,
        stratified,
        reason,
    });
    Ok(outcome)
}

/// Draws exactly each class's quota in one pass (selection sampling: a row is kept with the
/// chance its class still needs over the rows of it still to come), keeping file order.
fn stratified_sample(
    ctx: &FileCtx<'_>,
    counts: &ClassCounts,
    rows: usize,
    reading: &mut Reading<'_>,
    cancel: &CancelToken,
) -> Result<DataFrame> {
    reading.start_pass();
    let share = rows as f64 / counts.rows.max(1) as f64;
    let quota: Vec<usize> = counts
        .counts
        .iter()
        .map(|&n| {
            ((n as f64 * share).round() as usize)
                .max(MIN_SAMPLE_ROWS_PER_CLASS)
                .min(n)
        })
        .collect();
    let mut left: Vec<usize> = counts.counts.clone();
    let mut needed = quota;
    let mut rng = ChaCha8Rng::seed_from_u64(ctx.config.seed ^ 0x5354_5241_5449_4659);
    let mut parts = Vec::new();
    let (mut chunks, head) = CsvChunks::open(ctx.path, ctx.options.chunk_bytes)?;
    chunks = chunks.select(&ctx.columns());
    while let Some(chunk) = chunks.next_chunk()? {
        if cancel.is_cancelled() {
            return Err(WickError::Cancelled);
        }
        let text = target_text(&chunk, &ctx.request.target)?;
        let mask: BooleanChunked = text
            .iter()
            .map(|v| {
                let Some(c) =
                    v.and_then(|v| counts.labels.binary_search_by(|l| l.as_str().cmp(v)).ok())
                else {
                    return false;
                };
                let keep = left[c] > 0 && rng.random_range(0..left[c]) < needed[c];
                left[c] = left[c].saturating_sub(1);
                needed[c] -= usize::from(keep);
                keep
            })
            .collect();
        parts.push(
            chunk
                .filter(&mask)
                .map_err(|e| WickError::polars("sample rows", e))?,
        );
        reading.progress(&chunks);
    }
    let columns = ctx.columns();
    stack(
        parts,
        &head
            .select(columns.iter().map(String::as_str))
            .map_err(|e| WickError::polars("sample rows", e))?,
    )
}
