//! Background work: loading data, training, publishing and talking to the endpoint. Each job runs on its
//! own thread and reports typed [`JobEvent`]s over one channel; the UI drains it every frame and a job
//! wakes the UI with `request_repaint` whenever it has news.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::sync::Arc;

use wick_core::data::{
    index_image_csv, inspect_table, stream_csv, ColumnKind, TableFormat, TabularRequest,
    DEFAULT_CHUNK_BYTES,
};
use wick_core::data::{Augment, ImageShape};
use wick_core::explain::{explain_row, permutation_importance, Explanation, Importance};
use wick_core::hub::{BackboneSource, HubBackbone, HubClient};
use wick_core::model::{Model, ModelSpec, Prediction};
use wick_core::package::{read_manifest, save_package};
use wick_core::polars::prelude::{DataFrame, DataType};
use wick_core::publish::Endpoint;
use wick_core::train::{
    search, CancelToken, Candidate, CvReport, DeviceChoice, JobData, SaveTo, SearchEvent,
    StreamOptions, TableData, TableRows, TrainConfig, TrainEvent, TrainJob, TrainReport,
};
use wick_core::wire::{ModelListing, Published};

use crate::job_error::JobError;
use crate::loaded::{EndpointTarget, FitView, Histogram, LoadedData, TrySaliency};
use crate::project::PublishedRecord;
use crate::requests::{request_body, RequestSource};

/// Requests the Monitor screen's label queue shows at once.
pub const LABEL_QUEUE_LENGTH: usize = 20;

/// A run the app asks for: what `wick_core::train::run` needs, owned by the job's thread.
pub struct TrainOrder {
    pub run_id: u32,
    pub data: LoadedData,
    /// The dataset's file (its fingerprint goes into the manifest).
    pub source: PathBuf,
    /// The table's target and features; `None` for images.
    pub request: Option<TabularRequest>,
    pub spec: ModelSpec,
    pub config: TrainConfig,
    /// Cross-validation folds before the run (under 2: none).
    pub cv_folds: usize,
    pub package: PathBuf,
    /// A Hub backbone to download first, with the client to do it (none: no cache folder).
    pub download: Option<(&'static HubBackbone, Option<HubClient>)>,
    /// *Improve with live data*: the endpoint's labelled rows, added to the training rows.
    pub live_rows: Option<DataFrame>,
    pub cancel: CancelToken,
}

/// *Find the best model* on a table, as the app asks for it.
pub struct SearchOrder {
    pub run_id: u32,
    pub df: DataFrame,
    /// The table's file (its fingerprint goes into the manifest).
    pub source: PathBuf,
    pub request: TabularRequest,
    pub config: TrainConfig,
    /// How long the search may take; the best model so far is kept when it runs out.
    pub budget_secs: f64,
    pub package: PathBuf,
    pub cancel: CancelToken,
}

/// What a finished training hands back.
pub struct TrainDone {
    pub run_id: u32,
    pub model: Arc<Model>,
    pub report: TrainReport,
    pub package: PathBuf,
    pub cv: Option<CvReport>,
    /// The models a search tried (best first); the run's model is the first.
    pub leaderboard: Option<Vec<Candidate>>,
}

/// A run's trained model: already in memory, or still in its package on disk (after a restart).
/// Jobs load packages themselves, so a large CNN never loads on the UI thread.
#[derive(Clone)]
pub enum ModelSource {
    Loaded(Arc<Model>),
    Package(PathBuf),
}

impl ModelSource {
    /// Runs `work` with the model, loading it first if needed. Gives back the model when it was
    /// loaded here, for the UI to keep, with the result.
    fn with<T>(
        self,
        work: impl FnOnce(&Model) -> Result<T, JobError>,
    ) -> (Option<Arc<Model>>, Result<T, JobError>) {
        let (model, loaded_here) = match self {
            Self::Loaded(model) => (model, false),
            Self::Package(path) => match wick_core::package::load_package(&path) {
                Ok((model, _)) => (Arc::new(model), true),
                Err(e) => {
                    let message = format!(
                        "The saved model in {} could not be loaded ({e}); train the run again.",
                        path.display()
                    );
                    return (None, Err(JobError::Message(message)));
                }
            },
        };
        let result = work(&model);
        (loaded_here.then_some(model), result)
    }
}

/// What the Evaluate screen's fit plot needs, taken from the UI state so the work can run elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRequest {
    pub feature: String,
    pub df: DataFrame,
    /// Every feature at its typical value; the chosen one is swept from `range.0` to `range.1`.
    pub base_row: serde_json::Map<String, serde_json::Value>,
    pub range: (f64, f64),
    /// (row in `df`, actual target) of each test sample.
    pub test_rows: Vec<(usize, f64)>,
}

/// Points along the chosen feature; enough for a smooth curve, few enough to predict in a blink.
const FIT_CURVE_POINTS: usize = 120;

fn fit_view(model: &Model, request: &FitRequest) -> Result<FitView, JobError> {
    let not_numeric = |e: wick_core::polars::prelude::PolarsError| {
        format!("column `{}` of the open dataset can't be plotted ({e}); open the dataset this run was trained on", request.feature)
    };
    let column = request.df.column(&request.feature).map_err(not_numeric)?;
    let column = column.cast(&DataType::Float64).map_err(not_numeric)?;
    let xs = column.f64().map_err(not_numeric)?;
    let points = request
        .test_rows
        .iter()
        .filter_map(|&(row, actual)| Some([xs.get(row)?, actual]))
        .collect();
    let (lo, hi) = request.range;
    let n = FIT_CURVE_POINTS;
    let xs: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect();
    let rows: Vec<_> = xs
        .iter()
        .map(|x| {
            let mut row = request.base_row.clone();
            row.insert(request.feature.clone(), serde_json::json!(x));
            row
        })
        .collect();
    let predictions = model
        .predict_rows(&rows)
        .map_err(|e| format!("{e}; open the dataset this run was trained on"))?;
    let curve = xs
        .iter()
        .zip(&predictions)
        .map(|(x, p)| [*x, p.as_f64()])
        .collect();
    Ok(FitView { points, curve })
}

/// Shuffles per feature of the Evaluate screen's importance (as `wick explain`'s default).
const IMPORTANCE_REPEATS: usize = 5;

/// News from a background job.
pub enum JobEvent {
    DatasetLoaded {
        path: PathBuf,
        result: Result<LoadedData, JobError>,
    },
    /// A large file streams: this share of it is read.
    LoadProgress {
        path: PathBuf,
        fraction: f32,
    },
    Train {
        run_id: u32,
        event: TrainEvent,
    },
    /// News from *Find the best model*.
    Search {
        run_id: u32,
        event: SearchEvent,
    },
    TrainDone {
        run_id: u32,
        result: Result<Box<TrainDone>, JobError>,
    },
    Published {
        run_id: u32,
        endpoint: String,
        result: Result<(Published, String), JobError>,
    },
    TestResponse {
        result: Result<String, JobError>,
    },
    Versions {
        result: Result<Vec<ModelListing>, JobError>,
    },
    RolledBack {
        name: String,
        version: u64,
        result: Result<(), JobError>,
    },
    TrafficSet {
        name: String,
        result: Result<(), JobError>,
    },
    Monitor {
        name: String,
        result: Result<wick_core::wire::MonitorReport, JobError>,
    },
    LoggingSet {
        name: String,
        result: Result<(), JobError>,
    },
    LiveRows {
        base_run: u32,
        result: Result<wick_core::train::NewRows, JobError>,
    },
    LabelQueue {
        name: String,
        result: Result<wick_core::wire::LabelQueue, JobError>,
    },
    FeedbackSent {
        id: String,
        outcome: serde_json::Value,
        result: Result<(), JobError>,
    },
    /// `model` is set when the job loaded it from its package, for the UI to keep.
    /// The predictions, and for a table row the prediction's per-feature parts where the model has them.
    /// For an image, also the image and its saliency overlay (when the model passes gradients back).
    TryIt {
        run_id: u32,
        model: Option<Arc<Model>>,
        result: Result<(Vec<Prediction>, Option<Explanation>), JobError>,
        saliency: Option<TrySaliency>,
    },
    Importance {
        run_id: u32,
        model: Option<Arc<Model>>,
        result: Result<Importance, JobError>,
    },
    FitView {
        run_id: u32,
        feature: String,
        model: Option<Arc<Model>>,
        result: Result<FitView, JobError>,
    },
    Exported {
        path: PathBuf,
        result: Result<(), JobError>,
    },
    /// The GPUs found at start.
    Gpus(Vec<wick_core::train::DeviceChoice>),
    /// The Publish screen's curl and Python snippets for `version`.
    Snippets {
        version: u64,
        snippets: (String, String),
    },
    AugmentPreview {
        augment: Augment,
        result: Result<Vec<egui::ColorImage>, JobError>,
    },
    /// One test image's saliency overlay for Evaluate's grid.
    GridSaliency {
        run_id: u32,
        path: PathBuf,
        result: Result<egui::ColorImage, JobError>,
    },
    /// The grid's overlays are all made; `model` is set when the job loaded it.
    GridSaliencyDone {
        run_id: u32,
        model: Option<Arc<Model>>,
    },
}

/// Starts background jobs; every job gets the event channel and a way to wake the UI.
#[derive(Clone)]
pub struct Jobs {
    events: Sender<JobEvent>,
    repaint: Arc<dyn Fn() + Send + Sync>,
}

impl Jobs {
    pub fn new(events: Sender<JobEvent>, repaint: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self { events, repaint }
    }

    /// Looks for GPUs once: opening CUDA can take a second, too long for the UI thread and too
    /// often for every frame the device list is open.
    pub fn probe_gpus(&self) {
        self.spawn("probe-gpus", |send| {
            let gpus = wick_core::train::available_devices()
                .into_iter()
                .filter(|d| !matches!(d, DeviceChoice::Auto | DeviceChoice::Cpu))
                .collect();
            send(JobEvent::Gpus(gpus));
        });
    }

    fn spawn(&self, name: &str, work: impl FnOnce(&dyn Fn(JobEvent)) + Send + 'static) {
        let (events, repaint) = (self.events.clone(), self.repaint.clone());
        let send = move |e: JobEvent| {
            let _ = events.send(e);
            repaint();
        };
        let spawned = std::thread::Builder::new()
            .name(format!("wick-{name}"))
            .spawn(move || work(&send));
        if let Err(e) = spawned {
            tracing::error!("could not start the {name} job: {e}");
        }
    }

    pub fn load_dataset(&self, path: PathBuf, stream: (u64, usize)) {
        self.spawn("load", move |send| {
            let result = load_dataset(&path, stream, &mut |fraction| {
                send(JobEvent::LoadProgress {
                    path: path.clone(),
                    fraction,
                })
            });
            send(JobEvent::DatasetLoaded { path, result });
        });
    }

    /// Trains a run through `wick_core::train::run`, the one entry every caller shares, and saves
    /// its package.
    pub fn train(&self, order: TrainOrder) {
        self.spawn("train", move |send| {
            let TrainOrder {
                run_id,
                data,
                source,
                request,
                spec,
                config,
                cv_folds,
                package,
                download,
                live_rows,
                cancel,
            } = order;
            let fail = |message: String| {
                send(JobEvent::TrainDone {
                    run_id,
                    result: Err(JobError::Message(message)),
                })
            };
            let backbone = match download {
                None => None,
                Some((backbone, Some(client))) => Some((BackboneSource::Hub(backbone), client)),
                Some((backbone, None)) => {
                    return fail(format!(
                        "this system has no cache folder to download {} into; set {} to one",
                        backbone.title,
                        wick_core::hub::CACHE_ENV
                    ))
                }
            };
            let data = match (&data, &request) {
                (LoadedData::Images { index }, _) => JobData::Images { index },
                (
                    LoadedData::Table {
                        df, sampled_from, ..
                    },
                    Some(request),
                ) => JobData::Table {
                    table: TableData::new(df, &source, request),
                    rows: match (&live_rows, sampled_from) {
                        // Improve with live data: the run's test rows are the earlier run's.
                        (Some(rows), _) => TableRows::WithLiveRows(rows),
                        // A large file's frame is a sample: the run reads the file itself.
                        (None, Some(_)) => TableRows::Streamed(StreamOptions::default()),
                        (None, None) => TableRows::InMemory,
                    },
                },
                (LoadedData::Table { .. }, None) => {
                    return fail("pick a target column first".into())
                }
            };
            let job = TrainJob {
                data,
                spec,
                config,
                cv_folds: (cv_folds >= 2).then_some(cv_folds),
                backbone,
                save: Some(SaveTo {
                    name: format!("run-{run_id}"),
                    path: package.clone(),
                }),
            };
            let mut observer = |event: TrainEvent| send(JobEvent::Train { run_id, event });
            let result = wick_core::train::run(job, &mut observer, &cancel)
                .map_err(JobError::from)
                .map(|done| {
                    Box::new(TrainDone {
                        run_id,
                        model: Arc::new(done.outcome.model),
                        report: done.outcome.report,
                        package,
                        cv: done.cv,
                        leaderboard: None,
                    })
                });
            send(JobEvent::TrainDone { run_id, result });
        });
    }

    /// *Improve with live data*: the model's logged requests with feedback, matched to the dataset's
    /// columns and deduplicated against its rows.
    pub fn fetch_live_rows(
        &self,
        endpoint: EndpointTarget,
        name: String,
        base_run: u32,
        df: DataFrame,
        target: String,
    ) {
        self.spawn("live-rows", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.labelled_rows(&name))
                .map_err(JobError::from)
                .and_then(|labelled| {
                    wick_core::train::live_rows_frame(&df, &target, &labelled)
                        .map_err(JobError::from)
                });
            send(JobEvent::LiveRows { base_run, result });
        });
    }

    /// The published model's logged requests without feedback, the least sure first.
    pub fn label_queue(&self, endpoint: EndpointTarget, name: String) {
        self.spawn("label-queue", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.label_queue(&name, LABEL_QUEUE_LENGTH))
                .map_err(JobError::from);
            send(JobEvent::LabelQueue { name, result });
        });
    }

    /// A person's label for a logged request, sent as its feedback.
    pub fn feedback(
        &self,
        endpoint: EndpointTarget,
        name: String,
        id: String,
        outcome: serde_json::Value,
    ) {
        self.spawn("feedback", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.feedback(&name, &id, &outcome))
                .map_err(JobError::from);
            send(JobEvent::FeedbackSent {
                id,
                outcome,
                result,
            });
        });
    }

    /// *Find the best model*: the leaderboard search on a table; the best model is saved as the
    /// run's package, as a training run's is.
    pub fn search(&self, order: SearchOrder) {
        self.spawn("search", move |send| {
            let SearchOrder {
                run_id,
                df,
                source,
                request,
                config,
                budget_secs,
                package,
                cancel,
            } = order;
            let mut on_event = |event: SearchEvent| send(JobEvent::Search { run_id, event });
            let result = search(
                TableData::new(&df, &source, &request),
                &config,
                budget_secs,
                &mut on_event,
                &cancel,
            )
            .map_err(JobError::from)
            .and_then(|outcome| {
                save_package(
                    &outcome.best.model,
                    &outcome.best.report,
                    &format!("run-{run_id}"),
                    &package,
                )
                .map_err(|e| format!("the best model trained but could not be saved: {e}"))?;
                Ok(Box::new(TrainDone {
                    run_id,
                    model: Arc::new(outcome.best.model),
                    report: outcome.best.report,
                    package: package.clone(),
                    cv: None,
                    leaderboard: Some(outcome.leaderboard),
                }))
            });
            send(JobEvent::TrainDone { run_id, result });
        });
    }

    pub fn publish(
        &self,
        run_id: u32,
        endpoint: EndpointTarget,
        package: PathBuf,
        name: String,
        notes: String,
        options: wick_core::publish::PublishOptions,
    ) {
        self.spawn("publish", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| {
                    let published = e.publish_with(&package, Some(&name), &notes, &options)?;
                    let url = e.infer_url(&published);
                    Ok((published, url))
                })
                .map_err(JobError::from);
            send(JobEvent::Published {
                run_id,
                endpoint: endpoint.url.clone(),
                result,
            });
        });
    }

    /// Sends `body` to `name` without a version, as clients do: through the traffic split.
    pub fn test_request(&self, endpoint: EndpointTarget, name: String, source: RequestSource) {
        self.spawn("test-request", move |send| {
            let result = read_manifest(&source.package)
                .map_err(JobError::from)
                .and_then(|manifest| request_body(&manifest, &source))
                .and_then(|body| {
                    Endpoint::new(&endpoint.url, &endpoint.token)
                        .and_then(|e| e.infer(&name, None, &body))
                        .map(|v| serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string()))
                        .map_err(JobError::from)
                });
            send(JobEvent::TestResponse { result });
        });
    }

    /// The curl and Python snippets of a published version, with a body from one of its run's
    /// test samples (the manifest's example request when that can't be built).
    pub fn snippets(&self, record: PublishedRecord, source: RequestSource) {
        self.spawn("snippets", move |send| {
            let Ok(manifest) = read_manifest(&source.package) else {
                return;
            };
            // The manifest is read once, for the body and the Python snippet alike.
            let body = request_body(&manifest, &source)
                .unwrap_or_else(|_| wick_core::publish::example_request(&manifest));
            let curl = wick_core::publish::curl_example(&record.infer_url, &body);
            let python = wick_core::publish::python_example(
                &record.endpoint,
                &record.name,
                record.version,
                &manifest,
                Some(&body),
            );
            send(JobEvent::Snippets {
                version: record.version,
                snippets: (curl, python),
            });
        });
    }

    pub fn list_versions(&self, endpoint: EndpointTarget) {
        self.spawn("versions", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.models())
                .map_err(JobError::from);
            send(JobEvent::Versions { result });
        });
    }

    pub fn rollback(&self, endpoint: EndpointTarget, name: String, version: u64) {
        self.spawn("rollback", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.set_default(&name, version))
                .map_err(JobError::from);
            send(JobEvent::RolledBack {
                name,
                version,
                result,
            });
        });
    }

    /// Sets a traffic split (a canary) on the endpoint.
    pub fn set_traffic(
        &self,
        endpoint: EndpointTarget,
        name: String,
        split: std::collections::BTreeMap<u64, u32>,
    ) {
        self.spawn("traffic", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.set_traffic(&name, &split))
                .map_err(JobError::from);
            send(JobEvent::TrafficSet { name, result });
        });
    }

    /// The endpoint's live figures of `name` over the last `window_secs`.
    pub fn monitor(&self, endpoint: EndpointTarget, name: String, window_secs: f64) {
        self.spawn("monitor", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.monitor(&name, window_secs))
                .map_err(JobError::from);
            send(JobEvent::Monitor { name, result });
        });
    }

    pub fn set_logging(&self, endpoint: EndpointTarget, name: String, sample: f64) {
        self.spawn("logging", move |send| {
            let result = Endpoint::new(&endpoint.url, &endpoint.token)
                .and_then(|e| e.set_logging(&name, sample))
                .map_err(JobError::from);
            send(JobEvent::LoggingSet { name, result });
        });
    }

    /// Predicts one table row given as JSON values, or one image file.
    pub fn try_it(&self, run_id: u32, source: ModelSource, input: TryInput) {
        self.spawn("try-it", move |send| {
            let mut saliency = None;
            let (model, result) = source.with(|model| {
                match input {
                    TryInput::Row(row) => {
                        let predictions = model
                            .predict_rows(std::slice::from_ref(&row))
                            .map_err(JobError::from)?;
                        // A model without contributions (or a row they can't be computed for) still predicts.
                        let explanation = explain_row(model, &row).ok().flatten();
                        Ok((predictions, explanation))
                    }
                    TryInput::Image(path) => {
                        // Decoded once, for the prediction and its saliency map.
                        let shape = model.image_shape().map_err(JobError::from)?;
                        let chw =
                            wick_core::data::load_image(&path, shape).map_err(JobError::from)?;
                        let predictions = model.predict_pixels(&chw, 1).map_err(JobError::from)?;
                        saliency = try_saliency(model, &chw, shape);
                        Ok((predictions, None))
                    }
                }
            });
            send(JobEvent::TryIt {
                run_id,
                model,
                result,
                saliency,
            });
        });
    }

    /// Saliency overlays of test images, one event per image as each finishes.
    pub fn grid_saliency(&self, run_id: u32, source: ModelSource, paths: Vec<PathBuf>) {
        self.spawn("grid-saliency", move |send| {
            let (model, result) = source.with(|model| {
                let shape = model.image_shape().map_err(JobError::from)?;
                for path in paths {
                    let result = wick_core::data::load_image(&path, shape)
                        .map_err(JobError::from)
                        .and_then(|chw| {
                            let map = wick_core::explain::saliency(model, &chw)
                                .map_err(JobError::from)?;
                            // Thumbnails are 72 points a side: enlarge small inputs so the overlay stays sharp.
                            let scale = 72usize
                                .div_ceil(shape.width.max(shape.height).max(1))
                                .max(1);
                            let (w, h, rgb) = wick_core::explain::saliency_overlay(
                                &chw,
                                shape.channels,
                                &map,
                                scale,
                            );
                            Ok(egui::ColorImage::from_rgb([w, h], &rgb))
                        });
                    let failed = result.is_err();
                    send(JobEvent::GridSaliency {
                        run_id,
                        path,
                        result,
                    });
                    if failed {
                        break;
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                send(JobEvent::GridSaliency {
                    run_id,
                    path: PathBuf::new(),
                    result: Err(e),
                });
            }
            send(JobEvent::GridSaliencyDone { run_id, model });
        });
    }

    /// Permutation importance of a table model on `rows` of `df` (the run's test rows), 5 shuffles
    /// per feature.
    pub fn importance(&self, run_id: u32, source: ModelSource, df: DataFrame, rows: Vec<usize>) {
        self.spawn("importance", move |send| {
            let idx = wick_core::polars::prelude::IdxCa::from_vec(
                "rows".into(),
                rows.iter()
                    .map(|&r| r as wick_core::polars::prelude::IdxSize)
                    .collect(),
            );
            let (model, result) = source.with(|model| {
                let test_rows = df
                    .take(&idx)
                    .map_err(|e| format!("the test rows could not be read: {e}"))?;
                permutation_importance(model, &test_rows, IMPORTANCE_REPEATS, 0)
                    .map_err(JobError::from)
            });
            send(JobEvent::Importance {
                run_id,
                model,
                result,
            });
        });
    }

    /// Computes the Evaluate screen's fit plot for one feature.
    pub fn fit_view(&self, run_id: u32, source: ModelSource, request: FitRequest) {
        self.spawn("fit-view", move |send| {
            let (model, result) = source.with(|model| fit_view(model, &request));
            send(JobEvent::FitView {
                run_id,
                feature: request.feature,
                model,
                result,
            });
        });
    }

    /// Decodes `path` at `shape`, then draws it as it is and in `PREVIEW_VIEWS - 1` augmented versions
    /// (seeded from `seed`).
    pub fn augment_preview(&self, path: PathBuf, shape: ImageShape, augment: Augment, seed: u64) {
        self.spawn("augment-preview", move |send| {
            let result = wick_core::data::load_image(&path, shape)
                .map_err(JobError::from)
                .map(|image| {
                    (0..PREVIEW_VIEWS)
                        .map(|i| {
                            let mut view = image.clone();
                            if i > 0 {
                                augment.apply_seeded(&mut view, shape, seed.wrapping_add(i as u64));
                            }
                            chw_to_color_image(&view, shape)
                        })
                        .collect()
                });
            send(JobEvent::AugmentPreview { augment, result });
        });
    }

    /// Copies a package folder to `dest` (staged next to it, then renamed).
    /// Exports a package: as ONNX when `dest` ends in `.onnx`, else as a copy of the package.
    pub fn export(&self, package: PathBuf, dest: PathBuf) {
        self.spawn("export", move |send| {
            let onnx = dest
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
            let result = if onnx {
                wick_core::export::export_package_onnx(&package, &dest)
                    .map(|_| ())
                    .map_err(JobError::from)
            } else {
                copy_package(&package, &dest)
            };
            send(JobEvent::Exported { path: dest, result });
        });
    }
}

/// The image at the model's input size, and its saliency overlay drawn at least 224 pixels a side;
/// `None` when the model has no saliency map.
fn try_saliency(model: &Model, chw: &[f32], shape: ImageShape) -> Option<TrySaliency> {
    let map = wick_core::explain::saliency(model, chw).ok()?;
    let scale = 224usize
        .div_ceil(shape.width.max(shape.height).max(1))
        .max(1);
    let (w, h, overlay) = wick_core::explain::saliency_overlay(chw, shape.channels, &map, scale);
    Some(TrySaliency {
        image: chw_to_color_image(chw, shape),
        overlay: egui::ColorImage::from_rgb([w, h], &overlay),
    })
}

/// Images in the augmentation preview: the original, then augmented versions.
pub const PREVIEW_VIEWS: usize = 6;

/// CHW `f32` pixels in `[0, 1]` (one or three channels) as an egui image.
fn chw_to_color_image(chw: &[f32], shape: ImageShape) -> egui::ColorImage {
    let plane = shape.height * shape.width;
    let byte = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let pixels = (0..plane)
        .map(|i| match shape.channels {
            3 => egui::Color32::from_rgb(
                byte(chw[i]),
                byte(chw[plane + i]),
                byte(chw[2 * plane + i]),
            ),
            _ => egui::Color32::from_gray(byte(chw[i])),
        })
        .collect();
    egui::ColorImage {
        size: [shape.width, shape.height],
        source_size: egui::vec2(shape.width as f32, shape.height as f32),
        pixels,
    }
}

pub enum TryInput {
    Row(serde_json::Map<String, serde_json::Value>),
    Image(PathBuf),
}

/// Rows of the frame a large CSV opens with (a seeded sample; the statistics cover every row).
pub const SAMPLE_ROWS: usize = 500_000;

/// Opens a table, an image folder or an image list (`path,label` CSV). A CSV over
/// `stream.0` bytes is read by streaming and kept as a seeded sample of at most `stream.1` rows.
/// `progress` gets the share of the file read so far while a large file streams.
pub fn load_dataset(
    path: &Path,
    stream: (u64, usize),
    progress: &mut dyn FnMut(f32),
) -> Result<LoadedData, JobError> {
    let (stream_threshold_bytes, sample_rows) = stream;
    if path.is_dir() {
        // A folder of thousands of photos takes a while to index: its share read is the progress.
        let index = wick_core::data::index_image_folder_with_progress(path, &mut |done, total| {
            if total >= 1000 {
                progress(done as f32 / total as f32);
            }
        })
        .map_err(JobError::from)?;
        return Ok(LoadedData::Images { index });
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let csv = matches!(TableFormat::from_path(path), Ok(TableFormat::Csv));
    let (df, summary, sampled_from) = if csv && size > stream_threshold_bytes {
        let (summary, sample) = stream_csv(
            path,
            DEFAULT_CHUNK_BYTES,
            sample_rows,
            0,
            &mut |done, total| progress(done as f32 / total.max(1) as f32),
        )
        .map_err(JobError::from)?;
        let sampled_from = (sample.height() < summary.rows).then_some(summary.rows);
        (sample, summary, sampled_from)
    } else {
        let (df, summary) = inspect_table(path).map_err(JobError::from)?;
        (df, summary, None)
    };
    let is_image_list = summary.columns.len() == 2
        && summary.columns[0].name == "path"
        && summary.columns[1].name == "label";
    if is_image_list {
        let index = index_image_csv(path).map_err(JobError::from)?;
        return Ok(LoadedData::Images { index });
    }
    let histograms = summary
        .columns
        .iter()
        .map(|c| match c.kind {
            ColumnKind::Numeric => df
                .column(&c.name)
                .ok()
                .and_then(|col| histogram(col, c.min?, c.max?, 24)),
            _ => None,
        })
        .collect();
    Ok(LoadedData::Table {
        df,
        summary,
        histograms,
        sampled_from,
    })
}

fn histogram(
    col: &wick_core::polars::prelude::Column,
    min: f64,
    max: f64,
    bins: usize,
) -> Option<Histogram> {
    let values = col.cast(&DataType::Float64).ok()?;
    let values = values.f64().ok()?;
    let span = max - min;
    let bins = if span > 0.0 { bins } else { 1 };
    let bin_width = if span > 0.0 { span / bins as f64 } else { 1.0 };
    let mut counts = vec![0usize; bins];
    for v in values.iter().flatten() {
        let i = (((v - min) / bin_width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    Some(Histogram {
        min,
        bin_width,
        counts,
    })
}

fn copy_package(package: &Path, dest: &Path) -> Result<(), JobError> {
    read_manifest(package).map_err(JobError::from)?;
    let parent = dest.parent().unwrap_or(Path::new("."));
    let stage = parent.join(format!(".wick-export-{}", std::process::id()));
    let io = |source: std::io::Error| JobError::Write {
        path: dest.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).map_err(io)?;
    for entry in std::fs::read_dir(package).map_err(io)? {
        let entry = entry.map_err(io)?;
        std::fs::copy(entry.path(), stage.join(entry.file_name())).map_err(io)?;
    }
    if dest.exists() {
        return Err(format!("{} already exists; choose another name", dest.display()).into());
    }
    std::fs::rename(&stage, dest).map_err(io)
}
