//! Whole training runs: from a table or an image index to a trained [`Model`] and its report.

use crate::model::fine_tune::FineTuneNet;
use crate::train::fit::{FitSummary, ImageFiles};
use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::data::fingerprint::{fingerprint_file, fingerprint_files, DatasetFingerprint};
use crate::data::images::load_image_u8;
use crate::data::{
    prepare_tabular, ImageIndex, ImageShape, Preprocessor, Split, TargetValues, Task,
};
use crate::device::describe;
use crate::error::{Result, WickError};
use crate::metrics::{classification_metrics, regression_metrics, Metrics};
use crate::model::transfer::FrozenBackbone;
use crate::model::{
    Model, ModelInput, ModelKind, ModelSpec, Network, Prediction, TargetInfo, Weights,
};
use crate::run::{
    Actual, MetricPoint, SplitSizes, TestSample, TrainConfig, TrainOutcome, TrainReport,
};
use crate::train::events::{CancelToken, TrainEvent, TrainObserver};
use crate::train::fit::{fit_network, NetData, NetTargets, Samples};
use crate::train::table_data::TableData;
use crate::train::table_kinds::{self, Fitted, TableFit};

/// Records metric events into the history while passing every event on.
struct Recorder<'a> {
    inner: &'a mut dyn TrainObserver,
    history: Vec<MetricPoint>,
}

impl TrainObserver for Recorder<'_> {
    fn on_event(&mut self, event: TrainEvent) {
        if let TrainEvent::Metric {
            epoch,
            split,
            name,
            value,
        } = &event
        {
            self.history.push(MetricPoint {
                epoch: *epoch,
                split: *split,
                name: name.clone(),
                value: *value,
            });
        }
        self.inner.on_event(event);
    }
}

/// Trains a model on a table held in memory.
pub fn train_table(
    table: TableData<'_>,
    spec: &ModelSpec,
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let result = train_table_with(table, None, spec, config, observer, cancel);
    report_failure(result, observer)
}

pub(super) fn report_failure<T>(result: Result<T>, observer: &mut dyn TrainObserver) -> Result<T> {
    match &result {
        Err(WickError::Cancelled) | Err(WickError::Diverged { .. }) | Ok(_) => {}
        Err(e) => observer.on_event(TrainEvent::Failed {
            message: e.to_string(),
        }),
    }
    result
}

/// As [`train_table`], without reporting a failure as an event; `known` is the file's
/// fingerprint when it has already been read (so the file is not hashed again).
pub(super) fn train_table_with(
    table: TableData<'_>,
    known: Option<DatasetFingerprint>,
    spec: &ModelSpec,
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let TableData {
        df,
        source,
        request,
    } = table;
    let started = Instant::now();
    let dataset = prepare_tabular(df, request)?;
    let task = dataset.target.task();
    check_spec_fits_task(spec, task)?;
    let split = config.split_rows(dataset.rows(), dataset.target.class_indices())?;
    if split.train.len() < 2 {
        return Err(WickError::InvalidSpec(format!(
            "{} rows leave {} for training; add rows or lower the validation and test fractions",
            dataset.rows(),
            split.train.len()
        )));
    }
    let preprocessor = if spec.is_tree() {
        Preprocessor::fit_for_trees(&dataset, &split.train)?
    } else {
        Preprocessor::fit(&dataset, &split.train, &request.options)?
    };
    let profile =
        crate::drift::TrainingProfile::of(&dataset.features, &dataset.target, &split.train);
    let encode = |rows: &[usize]| preprocessor.transform(&dataset, rows);
    let (x_train, x_valid, x_test) = (
        encode(&split.train)?,
        encode(&split.valid)?,
        encode(&split.test)?,
    );
    let fingerprint = match known {
        Some(f) => f,
        None => fingerprint_file(source, dataset.rows())?,
    };
    let table = EncodedTable {
        target_name: dataset.target_name,
        target: dataset.target,
        split,
        x_train,
        x_valid,
        x_test,
        warnings: dataset.warnings,
        fingerprint,
        file_rows: None,
        preprocessor,
        profile: Some(profile),
    };
    fit_encoded(table, spec, config, started, observer, cancel)
}

/// A table encoded for a model: the target of every row, the split, each split's encoded
/// features (row-major, `preprocessor.width()` columns), and what the run reports about its data.
pub(super) struct EncodedTable {
    pub preprocessor: Preprocessor,
    pub target_name: String,
    pub target: TargetValues,
    pub split: Split,
    pub x_train: Vec<f64>,
    pub x_valid: Vec<f64>,
    pub x_test: Vec<f64>,
    pub warnings: Vec<String>,
    pub fingerprint: DatasetFingerprint,
    /// Each target row's row in the file (0-based), where they differ; names the test samples.
    pub file_rows: Option<Vec<usize>>,
    /// The training rows' distributions (not for a file read in chunks: no frame holds its rows).
    pub profile: Option<crate::drift::TrainingProfile>,
}

/// Fits `spec` to an encoded table and scores it on the test rows.
pub(super) fn fit_encoded(
    table: EncodedTable,
    spec: &ModelSpec,
    config: &TrainConfig,
    started: Instant,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let EncodedTable {
        preprocessor,
        target_name,
        target: target_values,
        split,
        x_train,
        x_valid,
        x_test,
        warnings,
        fingerprint,
        file_rows,
        profile,
    } = table;
    let task = target_values.task();
    let width = preprocessor.width();
    let labels = match &target_values {
        TargetValues::Classification { labels, .. } => labels.clone(),
        TargetValues::Regression(_) => Vec::new(),
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut recorder = Recorder {
        inner: observer,
        history: Vec::new(),
    };
    let input = ModelInput::Tabular {
        preprocessor: preprocessor.clone(),
    };

    let fitted = table_kinds::fit(
        TableFit {
            spec,
            config,
            target: &target_values,
            target_info: TargetInfo {
                name: target_name,
                task,
                labels,
                scale: None,
            },
            split: &split,
            x_train: &x_train,
            x_valid: &x_valid,
            width,
            input,
        },
        &mut rng,
        &mut recorder,
        cancel,
    )?;
    let Fitted {
        model,
        epochs_run,
        best_epoch,
        device: device_name,
    } = fitted;

    let predictions = model.predict_encoded(&x_test, split.test.len())?;
    let (test, test_samples) = score_held_out(
        &target_values,
        &split.test,
        &predictions,
        &model.target.labels,
        |r| {
            format!(
                "row {}",
                file_rows
                    .as_ref()
                    .and_then(|f| f.get(r))
                    .copied()
                    .unwrap_or(r)
                    + 1
            )
        },
    );
    let duration_secs = started.elapsed().as_secs_f64();
    recorder.on_event(TrainEvent::Finished {
        epochs_run,
        best_epoch,
        duration_secs,
    });
    let report = TrainReport {
        test,
        history: recorder.history,
        test_samples,
        warnings,
        dataset: fingerprint,
        config: config.clone(),
        device: device_name,
        epochs_run,
        best_epoch,
        duration_secs,
        rows: SplitSizes::from(&split),
        rows_used: None,
        training_profile: profile,
    };
    Ok(TrainOutcome { model, report })
}

pub(super) fn check_spec_fits_task(spec: &ModelSpec, task: Task) -> Result<()> {
    ModelKind::of(spec).check_task(task)
}

pub(super) fn started_event(
    device: String,
    epochs: usize,
    steps_per_epoch: usize,
    rows: SplitSizes,
) -> TrainEvent {
    TrainEvent::Started {
        device,
        epochs,
        steps_per_epoch,
        train_rows: rows.train,
        valid_rows: rows.valid,
        test_rows: rows.test,
    }
}

fn values(predictions: &[Prediction]) -> Vec<f64> {
    predictions.iter().map(Prediction::as_f64).collect()
}

fn classes_of(predictions: &[Prediction]) -> Vec<usize> {
    predictions
        .iter()
        .map(|p| match p {
            Prediction::Class { class_index, .. } => *class_index,
            Prediction::Value { value } => value.round().max(0.0) as usize,
        })
        .collect()
}

/// Scores the test rows; no metrics when there are none (the model trained on every row).
pub(super) fn score_held_out(
    target: &TargetValues,
    rows: &[usize],
    predictions: &[Prediction],
    labels: &[String],
    source: impl Fn(usize) -> String,
) -> (Option<Metrics>, Vec<TestSample>) {
    if rows.is_empty() {
        return (None, Vec::new());
    }
    let (metrics, samples) = score(target, rows, predictions, labels, source);
    (Some(metrics), samples)
}

fn score(
    target: &TargetValues,
    rows: &[usize],
    predictions: &[Prediction],
    labels: &[String],
    source: impl Fn(usize) -> String,
) -> (Metrics, Vec<TestSample>) {
    match target {
        TargetValues::Regression(y) => {
            let actual: Vec<f64> = rows.iter().map(|&r| y[r]).collect();
            let samples = rows
                .iter()
                .zip(predictions)
                .map(|(&r, p)| TestSample {
                    source: source(r),
                    actual: Actual::Value(y[r]),
                    predicted: p.clone(),
                })
                .collect();
            (
                Metrics::Regression(regression_metrics(&actual, &values(predictions))),
                samples,
            )
        }
        TargetValues::Classification { classes, .. } => {
            let actual: Vec<usize> = rows.iter().map(|&r| classes[r]).collect();
            let samples = rows
                .iter()
                .zip(predictions)
                .map(|(&r, p)| TestSample {
                    source: source(r),
                    actual: Actual::Class(classes[r]),
                    predicted: p.clone(),
                })
                .collect();
            (
                Metrics::Classification(classification_metrics(
                    labels,
                    &actual,
                    &classes_of(predictions),
                )),
                samples,
            )
        }
    }
}

/// Augmented versions of each training image a frozen backbone sees, besides the image itself.
pub const AUGMENTED_VIEWS: usize = 3;

/// Trains a CNN or a transfer-learning head on an image dataset.
pub fn train_images(
    index: &ImageIndex,
    spec: &ModelSpec,
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let result = train_images_inner(
        index,
        spec,
        config,
        IMAGES_IN_MEMORY_MAX_BYTES,
        observer,
        cancel,
    );
    report_failure(result, observer)
}

/// Training images (decoded, as bytes) held in memory at most; past it a CNN's or a fine-tuned
/// backbone's training split streams from its files (`Samples::Files`).
pub const IMAGES_IN_MEMORY_MAX_BYTES: usize = 512 << 20;
/// Decoded images a streamed training split keeps between epochs.
pub const STREAMED_IMAGE_CACHE_BYTES: usize = 256 << 20;

fn train_images_inner(
    index: &ImageIndex,
    spec: &ModelSpec,
    config: &TrainConfig,
    in_memory_max_bytes: usize,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let started = Instant::now();
    let shape = match spec {
        ModelSpec::Cnn { input, .. } => *input,
        ModelSpec::Transfer { backbone } => ImageShape { channels: 3, ..backbone.input },
        _ => {
            return Err(WickError::InvalidSpec(
                "an image dataset needs a CNN or a transfer-learning model; linear, logistic and MLP models take tables".into(),
            ))
        }
    };
    config.augment.check()?;
    let samples = index.samples()?;
    let paths: Vec<PathBuf> = samples.iter().map(|(p, _)| p.clone()).collect();
    let classes: Vec<usize> = samples.iter().map(|(_, c)| *c).collect();
    let labels = index.classes.clone();
    let mut split = config.split_rows(samples.len(), Some(&classes))?;
    let fingerprint = fingerprint_files(&index.root, &paths)?;
    let device = config.device.open()?;
    let device_name = describe(&device);
    let per = shape.len();
    let targets =
        |rows: &[usize]| NetTargets::Classes(rows.iter().map(|&r| classes[r] as u32).collect());
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut recorder = Recorder {
        inner: observer,
        history: Vec::new(),
    };
    let image_dims = vec![shape.channels, shape.height, shape.width];
    let augment = config.augment.is_active().then_some(config.augment);
    let mut undecodable: Vec<Undecodable> = Vec::new();

    // Pixels are kept as bytes (a quarter of f32) and converted batch by batch; a frozen
    // backbone's images are decoded a chunk at a time and only their features kept.
    let (weights, feature_dims, train, valid) = match spec {
        ModelSpec::Transfer { backbone } if backbone.fine_tune => {
            // The last stage trains, so every epoch runs the images through the frozen trunk.
            let frozen = std::sync::Arc::new(FrozenBackbone::load_folded(
                backbone.arch,
                &backbone.weights,
                &device,
            )?);
            let (train_x, valid_x) = epoch_images(
                &paths,
                &mut split,
                shape,
                in_memory_max_bytes,
                &mut undecodable,
            )?;
            let prefix = Some(frozen.clone());
            let train = NetData {
                x: train_x,
                sample_dims: image_dims.clone(),
                y: targets(&split.train),
                augment: augment.map(|a| (a, shape)),
                prefix: prefix.clone(),
            };
            let valid = NetData {
                x: valid_x,
                sample_dims: image_dims.clone(),
                y: targets(&split.valid),
                augment: None,
                prefix,
            };
            let mut net = FineTuneNet::new(frozen.last_stage()?, labels.len(), &mut rng, &device)?;
            recorder.on_event(started_event(
                device_name.clone(),
                config.epochs,
                train.rows().div_ceil(config.batch_size.max(1)),
                SplitSizes::from(&split),
            ));
            let summary = fit_network(
                &mut net,
                &train,
                Some(&valid),
                config,
                &mut rng,
                &mut recorder,
                cancel,
            )?;
            streamed_failures(&train, &mut split, &paths, &mut undecodable);
            drop((train, valid));
            let frozen = std::sync::Arc::try_unwrap(frozen).map_err(|_| {
                WickError::InvalidSpec("the backbone is still in use after training".into())
            })?;
            let weights = Weights::Transfer {
                backbone: frozen.with_last_stage(net.stage_blocks()?)?,
                head: net.head()?,
            };
            return finish_image_run(FinishedImageRun {
                index,
                spec,
                config,
                shape,
                labels,
                classes,
                paths,
                split,
                fingerprint,
                device_name,
                started,
                recorder,
                undecodable,
                weights,
                summary,
            });
        }
        ModelSpec::Cnn { layers, .. } => {
            crate::model::infer_shapes(shape, layers, labels.len())?;
            let (train_x, valid_x) = epoch_images(
                &paths,
                &mut split,
                shape,
                in_memory_max_bytes,
                &mut undecodable,
            )?;
            let train = NetData {
                x: train_x,
                sample_dims: image_dims.clone(),
                y: targets(&split.train),
                augment: augment.map(|a| (a, shape)),
                prefix: None,
            };
            let valid = NetData {
                x: valid_x,
                sample_dims: image_dims.clone(),
                y: targets(&split.valid),
                augment: None,
                prefix: None,
            };
            (None, image_dims.clone(), train, valid)
        }
        ModelSpec::Transfer { backbone } => {
            let frozen = FrozenBackbone::load(backbone.arch, &backbone.weights, &device)?;
            let features = |rows: &[usize],
                            views: usize,
                            rng: &mut ChaCha8Rng,
                            bad: &mut Vec<Undecodable>|
             -> Result<(Vec<f32>, Vec<usize>)> {
                let mut x = Vec::new();
                let mut kept = Vec::new();
                for chunk in rows.chunks(FEATURE_CHUNK_IMAGES) {
                    let (images, ok) = decode_rows(&paths, chunk, shape, bad)?;
                    // Each view's images in row order: the image itself, then its augmented versions.
                    for view in 0..views {
                        let mut batch = images.clone();
                        if view > 0 {
                            if let Some(a) = augment {
                                batch
                                    .chunks_mut(per)
                                    .for_each(|image| a.apply(image, shape, rng));
                            }
                        }
                        x.extend(backbone_features(
                            &frozen,
                            &batch,
                            ok.len(),
                            &image_dims,
                            &device,
                        )?);
                        kept.extend(&ok);
                    }
                }
                Ok((x, kept))
            };
            // A frozen backbone's features are computed once, so it sees each training image as
            // it is and in AUGMENTED_VIEWS augmented versions, all drawn before training.
            let views = if augment.is_some() {
                1 + AUGMENTED_VIEWS
            } else {
                1
            };
            let mut bad = Vec::new();
            let (train_x, train_rows) = features(&split.train.clone(), views, &mut rng, &mut bad)?;
            let (valid_x, valid_rows) = features(&split.valid.clone(), 1, &mut rng, &mut bad)?;
            undecodable = bad;
            drop_undecodable(&mut split, &paths, &undecodable);
            let feature_dims = vec![backbone.arch.feature_len()];
            let train = NetData {
                x: Samples::F32(train_x),
                sample_dims: feature_dims.clone(),
                y: targets(&train_rows),
                augment: None,
                prefix: None,
            };
            let valid = NetData {
                x: Samples::F32(valid_x),
                sample_dims: feature_dims.clone(),
                y: targets(&valid_rows),
                augment: None,
                prefix: None,
            };
            (Some(frozen), feature_dims, train, valid)
        }
        _ => {
            return Err(WickError::InvalidSpec(format!(
                "{} models take a table; only CNN and transfer-learning models train on images",
                spec.kind_name()
            )))
        }
    };
    let layers = match spec {
        ModelSpec::Cnn { layers, .. } => layers.clone(),
        _ => Vec::new(),
    };
    let mut net = Network::new(&feature_dims, &layers, labels.len(), &mut rng, &device)?;
    recorder.on_event(started_event(
        device_name.clone(),
        config.epochs,
        train.rows().div_ceil(config.batch_size.max(1)),
        SplitSizes::from(&split),
    ));
    let summary = fit_network(
        &mut net,
        &train,
        Some(&valid),
        config,
        &mut rng,
        &mut recorder,
        cancel,
    )?;
    streamed_failures(&train, &mut split, &paths, &mut undecodable);
    drop((train, valid));
    let weights = match weights {
        None => Weights::Network(net),
        Some(backbone) => Weights::Transfer {
            backbone,
            head: net,
        },
    };
    finish_image_run(FinishedImageRun {
        index,
        spec,
        config,
        shape,
        labels,
        classes,
        paths,
        split,
        fingerprint,
        device_name,
        started,
        recorder,
        undecodable,
        weights,
        summary,
    })
}

/// An image run whose network has trained, for scoring on the test split and reporting.
struct FinishedImageRun<'a, 'o> {
    index: &'a ImageIndex,
    spec: &'a ModelSpec,
    config: &'a TrainConfig,
    shape: ImageShape,
    labels: Vec<String>,
    classes: Vec<usize>,
    paths: Vec<PathBuf>,
    split: Split,
    fingerprint: DatasetFingerprint,
    device_name: String,
    started: Instant,
    recorder: Recorder<'o>,
    undecodable: Vec<Undecodable>,
    weights: Weights,
    summary: FitSummary,
}

fn finish_image_run(run: FinishedImageRun<'_, '_>) -> Result<TrainOutcome> {
    let FinishedImageRun {
        index,
        spec,
        config,
        shape,
        labels,
        classes,
        paths,
        mut split,
        fingerprint,
        device_name,
        started,
        mut recorder,
        mut undecodable,
        weights,
        summary,
    } = run;
    let target = TargetInfo {
        name: "label".into(),
        task: Task::Classification,
        labels: labels.clone(),
        scale: None,
    };
    let model = Model::new(spec.clone(), ModelInput::Image { shape }, target, weights)?;

    // Test images are decoded and predicted a chunk at a time too.
    let mut predictions = Vec::with_capacity(split.test.len());
    let mut test_rows = Vec::with_capacity(split.test.len());
    for chunk in split.test.chunks(FEATURE_CHUNK_IMAGES) {
        let (images, ok) = decode_rows(&paths, chunk, shape, &mut undecodable)?;
        predictions.extend(model.predict_pixels(&images, ok.len())?);
        test_rows.extend(ok);
    }
    split.test = test_rows;
    let target_values = TargetValues::Classification {
        labels: labels.clone(),
        classes: classes.clone(),
    };
    let (test, test_samples) =
        score_held_out(&target_values, &split.test, &predictions, &labels, |r| {
            paths[r].display().to_string()
        });
    let duration_secs = started.elapsed().as_secs_f64();
    recorder.on_event(TrainEvent::Finished {
        epochs_run: summary.epochs_run,
        best_epoch: summary.best_epoch,
        duration_secs,
    });
    let mut warnings = Vec::new();
    if !index.skipped.is_empty() {
        warnings.push(format!(
            "skipped {} files that are not readable images",
            index.skipped.len()
        ));
    }
    undecodable.sort();
    undecodable.dedup();
    if let Some((first, why)) = undecodable.first() {
        warnings.push(format!(
            "skipped {} images that could not be decoded (the first: {}: {why})",
            undecodable.len(),
            first.display()
        ));
    }
    let report = TrainReport {
        test,
        history: recorder.history,
        test_samples,
        warnings,
        dataset: fingerprint,
        config: config.clone(),
        device: device_name,
        epochs_run: summary.epochs_run,
        best_epoch: summary.best_epoch,
        duration_secs,
        rows: SplitSizes::from(&split),
        rows_used: None,
        training_profile: None,
    };
    Ok(TrainOutcome { model, report })
}

/// An image that failed to decode, and why.
type Undecodable = (PathBuf, String);

/// Images decoded at once for a frozen backbone's features or for scoring the test split.
const FEATURE_CHUNK_IMAGES: usize = 256;

/// Decodes the images of `rows` (indices into `paths`) as f32 in `[0, 1]`: the pixels of those that
/// decode, in order, and their rows. Those that don't are added to `bad`.
fn decode_rows(
    paths: &[PathBuf],
    rows: &[usize],
    shape: ImageShape,
    bad: &mut Vec<Undecodable>,
) -> Result<(Vec<f32>, Vec<usize>)> {
    let chunk_paths: Vec<PathBuf> = rows.iter().map(|&r| paths[r].clone()).collect();
    let (pixels, failed) = load_images_parallel(&chunk_paths, shape)?;
    let failed_paths: std::collections::HashSet<&PathBuf> = failed.iter().map(|(p, _)| p).collect();
    let per = shape.len();
    let ok: Vec<usize> = (0..rows.len())
        .filter(|&i| !failed_paths.contains(&chunk_paths[i]))
        .collect();
    let images = ok
        .iter()
        .flat_map(|&i| {
            pixels[i * per..(i + 1) * per]
                .iter()
                .map(|&v| v as f32 / 255.0)
        })
        .collect();
    bad.extend(failed);
    Ok((images, ok.iter().map(|&i| rows[i]).collect()))
}

/// Training and validation pixels for a network that sees the images every epoch (a CNN, a
/// fine-tuned backbone), as bytes in memory. Past `in_memory_max_bytes` the training split is read
/// from its files batch by batch instead ([`Samples::Files`]); validation is decoded here either
/// way. `split`'s rows are renumbered to those that decoded.
fn epoch_images(
    paths: &[PathBuf],
    split: &mut Split,
    shape: ImageShape,
    in_memory_max_bytes: usize,
    bad: &mut Vec<Undecodable>,
) -> Result<(Samples, Samples)> {
    let (valid, valid_rows) = decode_rows_u8(paths, &split.valid, shape, bad)?;
    split.valid = valid_rows;
    let train = if split.train.len().saturating_mul(shape.len()) <= in_memory_max_bytes {
        let (train, train_rows) = decode_rows_u8(paths, &split.train, shape, bad)?;
        split.train = train_rows;
        Samples::Bytes(train)
    } else {
        let files = split.train.iter().map(|&r| paths[r].clone()).collect();
        Samples::Files(ImageFiles::new(files, shape, STREAMED_IMAGE_CACHE_BYTES))
    };
    Ok((train, Samples::Bytes(valid)))
}

/// Images of a streamed training split that failed to decode while it trained: reported, and left
/// out of the split's count.
fn streamed_failures(
    train: &NetData,
    split: &mut Split,
    paths: &[PathBuf],
    bad: &mut Vec<Undecodable>,
) {
    if let Samples::Files(files) = &train.x {
        let failed = files
            .failed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        bad.extend(failed);
        drop_undecodable(split, paths, bad);
    }
}

/// [`decode_rows`] as bytes, all at once (an error only when none of them decodes).
fn decode_rows_u8(
    paths: &[PathBuf],
    rows: &[usize],
    shape: ImageShape,
    bad: &mut Vec<Undecodable>,
) -> Result<(Vec<u8>, Vec<usize>)> {
    let per = shape.len();
    let row_paths: Vec<PathBuf> = rows.iter().map(|&r| paths[r].clone()).collect();
    let (mut pixels, failed) = load_images_parallel(&row_paths, shape)?;
    if failed.is_empty() {
        return Ok((pixels, rows.to_vec()));
    }
    let failed_paths: std::collections::HashSet<&PathBuf> = failed.iter().map(|(p, _)| p).collect();
    let mut kept = Vec::with_capacity(rows.len());
    let mut write = 0;
    for (i, &r) in rows.iter().enumerate() {
        if !failed_paths.contains(&row_paths[i]) {
            pixels.copy_within(i * per..(i + 1) * per, write * per);
            write += 1;
            kept.push(r);
        }
    }
    pixels.truncate(write * per);
    bad.extend(failed);
    Ok((pixels, kept))
}

/// Removes the images that failed to decode from every split.
fn drop_undecodable(split: &mut Split, paths: &[PathBuf], bad: &[Undecodable]) {
    if bad.is_empty() {
        return;
    }
    let bad: std::collections::HashSet<&PathBuf> = bad.iter().map(|(p, _)| p).collect();
    for rows in [&mut split.train, &mut split.valid, &mut split.test] {
        rows.retain(|&r| !bad.contains(&paths[r]));
    }
}

fn backbone_features(
    backbone: &FrozenBackbone,
    x: &[f32],
    n: usize,
    dims: &[usize],
    device: &candle_core::Device,
) -> Result<Vec<f32>> {
    let per: usize = dims.iter().product();
    let mut out = Vec::new();
    for start in (0..n).step_by(crate::model::BACKBONE_BATCH) {
        let len = crate::model::BACKBONE_BATCH.min(n - start);
        let mut shape = vec![len];
        shape.extend(dims);
        let batch =
            candle_core::Tensor::from_slice(&x[start * per..(start + len) * per], shape, device)?;
        out.extend(backbone.features(&batch)?.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok(out)
}

/// Decodes images on every core into channel-first bytes. An image that fails to decode (say a
/// truncated JPEG) is skipped: its pixels stay zero and it is returned with the reason, so one bad
/// file does not stop a run. It is an error only when no image decodes.
fn load_images_parallel(
    paths: &[PathBuf],
    shape: ImageShape,
) -> Result<(Vec<u8>, Vec<Undecodable>)> {
    use rayon::prelude::*;
    let per = shape.len();
    let mut pixels = vec![0u8; paths.len() * per];
    let bad: Vec<(PathBuf, String)> = pixels
        .par_chunks_mut(per.max(1))
        .zip(paths.par_iter())
        .filter_map(|(out, path)| match load_image_u8(path, shape) {
            Ok(image) => {
                out.copy_from_slice(&image);
                None
            }
            Err(e) => Some((path.clone(), e.to_string())),
        })
        .collect();
    if !paths.is_empty() && bad.len() == paths.len() {
        let (path, why) = &bad[0];
        return Err(WickError::data(
            path,
            format!(
                "none of the {} images could be decoded; the first: {why}",
                paths.len()
            ),
        ));
    }
    Ok((pixels, bad))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;
    use crate::data::index_image_folder;

    /// Two classes of 12 small PNGs; `truncated` adds a file whose header reads but pixels don't.
    fn two_classes(dir: &std::path::Path, truncated: bool) -> ImageIndex {
        for class in ["dark", "light"] {
            std::fs::create_dir_all(dir.join(class)).unwrap();
            for i in 0..12u8 {
                let base = if class == "dark" { 20 } else { 200 };
                let image = image::RgbImage::from_fn(24, 24, |x, y| {
                    image::Rgb([base + (x as u8 % 9) + i, base + (y as u8 % 7), base])
                });
                image
                    .save(dir.join(class).join(format!("{i}.png")))
                    .unwrap();
            }
        }
        if truncated {
            let good = std::fs::read(dir.join("dark/0.png")).unwrap();
            std::fs::write(dir.join("dark/truncated.png"), &good[..good.len() * 7 / 10]).unwrap();
        }
        index_image_folder(dir).unwrap()
    }

    fn losses(
        index: &ImageIndex,
        in_memory_max_bytes: usize,
        split: crate::data::SplitFractions,
    ) -> (Vec<f64>, TrainReport) {
        let spec = ModelSpec::Cnn {
            input: ImageShape {
                height: 16,
                width: 16,
                channels: 3,
            },
            layers: crate::model::default_cnn_layers(),
        };
        let augment = crate::data::Augment::from_names(["flip", "crop"]).unwrap();
        let config = TrainConfig {
            epochs: 3,
            batch_size: 8,
            augment,
            early_stopping_patience: None,
            split,
            ..TrainConfig::default()
        };
        let mut steps = Vec::new();
        let mut observer = |e: TrainEvent| {
            if let TrainEvent::Step { loss, .. } = e {
                steps.push(loss);
            }
        };
        let out = train_images_inner(
            index,
            &spec,
            &config,
            in_memory_max_bytes,
            &mut observer,
            &CancelToken::new(),
        )
        .unwrap();
        (steps, out.report)
    }

    /// Streamed from the files batch by batch, a CNN trains exactly as from decoded bytes: the same
    /// batches, the same augmentation draws, the same losses.
    #[test]
    fn a_streamed_training_split_trains_as_the_one_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let index = two_classes(dir.path(), false);
        let split = TrainConfig::default().split;
        let (in_memory, _) = losses(&index, IMAGES_IN_MEMORY_MAX_BYTES, split);
        let (streamed, _) = losses(&index, 0, split);
        assert_eq!(in_memory.len(), streamed.len());
        assert_eq!(in_memory, streamed);
        // With a cache too small for any image, every epoch decodes again: still the same.
        let files = ImageFiles::new(
            vec![dir.path().join("dark/1.png"), dir.path().join("dark/2.png")],
            ImageShape {
                height: 16,
                width: 16,
                channels: 3,
            },
            0,
        );
        assert_eq!(files.decode(&[1, 0]).0, vec![1, 0]);
        assert_eq!(files.decode(&[0]).1, files.decode(&[0]).1);
    }

    /// An image that fails to decode while the split streams is skipped and counted; the run goes on.
    #[test]
    fn a_streamed_image_that_fails_to_decode_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let index = two_classes(dir.path(), true);
        // Every image in the training split, so the bad one is met while streaming.
        let (steps, report) = losses(
            &index,
            0,
            crate::data::SplitFractions {
                valid: 0.0,
                test: 0.0,
            },
        );
        assert!(!steps.is_empty());
        assert_eq!(
            report.rows.train, 24,
            "the truncated file is left out of the count"
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("skipped 1 images that could not be decoded")
                    && w.contains("truncated.png")),
            "{:?}",
            report.warnings
        );
    }
}
