//! What the screens read: the project, the loaded data, runs, jobs in progress and the endpoint's
//! status, with the facts derived from them. The app (`app`) owns it and changes it only when it
//! applies commands and job events; screens get it by shared reference.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use wick_core::data::{detect_task, Task};
use wick_core::model::{InputKind, Model};
use wick_core::train::CancelToken;
use wick_core::wire::ModelListing;

use crate::host::AppConfig;
use crate::loaded::{EndpointTarget, FitView, LoadedData, TrySaliency};
use crate::project::sanitize_model_name;
use crate::project::{Project, PublishedRecord, RunRecord};
use crate::samples::{Sample, SAMPLES};
use crate::settings::Settings;

/// The workbench's screens, in the order a user meets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Data,
    Model,
    Train,
    Evaluate,
    Publish,
    Monitor,
}

impl Screen {
    pub const ALL: [Screen; 6] = [
        Screen::Data,
        Screen::Model,
        Screen::Train,
        Screen::Evaluate,
        Screen::Publish,
        Screen::Monitor,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Self::Data => "Data",
            Self::Model => "Model",
            Self::Train => "Train",
            Self::Evaluate => "Evaluate",
            Self::Publish => "Publish",
            Self::Monitor => "Monitor",
        }
    }
}

/// Where a loading dataset stands.
pub enum DataState {
    Empty,
    Loading(PathBuf),
    Loaded { path: PathBuf, data: LoadedData },
    Failed { path: PathBuf, message: String },
}

/// A training in progress.
pub struct ActiveTraining {
    pub run_id: u32,
    pub cancel: CancelToken,
    pub started: Instant,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub done_steps: usize,
    /// The last finished epoch's throughput (training and validation together).
    pub samples_per_sec: Option<f64>,
    pub train_rows: usize,
    /// When the trainer reported that it started (data loaded, model built).
    pub steps_started: Option<Instant>,
    /// `(fold, folds)` while the run cross-validates, before its own training.
    pub cv_fold: Option<(usize, usize)>,
    /// While *Find the best model* runs: its budget and the candidate being tried.
    pub search: Option<SearchProgress>,
    /// While a large file is read before training.
    pub reading: Option<ReadingProgress>,
    /// While pretrained weights download before training.
    pub download: Option<DownloadProgress>,
}

/// Pretrained weights downloading before a run trains.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    /// `repo/file` on the Hub.
    pub file: String,
    pub bytes_done: u64,
    pub bytes_total: u64,
}

/// The Model screen's augmentation preview: one training image as it is and augmented.
#[derive(Default)]
pub struct AugmentPreview {
    /// The settings the images show, or are being made for.
    pub augment: Option<wick_core::data::Augment>,
    pub images: Option<Result<Vec<egui::ColorImage>, String>>,
}

/// A pass over a large file, before training on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReadingProgress {
    pub pass: usize,
    pub passes: usize,
    /// Share of the file's bytes read in this pass.
    pub fraction: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchProgress {
    pub budget_secs: f64,
    pub tried: usize,
    pub current: String,
    /// Set when the best is being trained on the usual split.
    pub finalising: bool,
}

impl ActiveTraining {
    /// Samples per second to show: the last epoch's figure, or during the first epoch an estimate
    /// from the steps done so far (a first epoch of a large dataset can take minutes).
    pub fn throughput(&self) -> Option<f64> {
        self.samples_per_sec.or_else(|| {
            let secs = self.steps_started?.elapsed().as_secs_f64();
            let per_step = self.train_rows as f64 / self.steps_per_epoch.max(1) as f64;
            (self.done_steps > 0 && secs > 0.0).then(|| self.done_steps as f64 * per_step / secs)
        })
    }
}

/// The Publish screen's live state.
#[derive(Default)]
pub struct PublishState {
    pub busy: bool,
    pub error: Option<String>,
    pub last: Option<PublishedRecord>,
    pub test_busy: bool,
    pub test_response: Option<Result<String, String>>,
    pub versions: Option<Result<Vec<ModelListing>, String>>,
    pub versions_busy: bool,
    /// Ready-to-paste (curl, Python) calls of the last published version.
    pub snippets: Option<(String, String)>,
    /// Which of the project's test rows the next *Send test request* sends (they take turns).
    pub next_test_row: usize,
}

/// The Monitor screen: the endpoint's live figures of the published model, asked for every few
/// seconds while the screen is shown, and their history for the charts.
pub struct MonitorState {
    pub busy: bool,
    pub report: Option<Result<wick_core::wire::MonitorReport, String>>,
    pub asked: Option<Instant>,
    pub window_secs: f64,
    /// One point per version per refresh.
    pub history: Vec<MonitorPoint>,
    /// When the first of `history` was taken.
    pub since: Option<Instant>,
    pub logging_error: Option<String>,
    /// *Improve with live data*: the logged requests with feedback, as new rows of the dataset.
    pub live: LiveRowsState,
    /// Logged requests waiting for a person's label, and the labels sent.
    pub queue: LabelQueueState,
}

#[derive(Default)]
pub struct LabelQueueState {
    pub busy: bool,
    pub result: Option<Result<wick_core::wire::LabelQueue, String>>,
    /// Per request id: the label sent (`Ok`) or why it failed; `None` while it is on its way.
    pub sent: std::collections::BTreeMap<String, Option<Result<serde_json::Value, String>>>,
}

#[derive(Default)]
pub struct LiveRowsState {
    pub busy: bool,
    pub result: Option<Result<LiveRows, String>>,
}

/// Live rows fetched for a run (the published one), ready to train it again with.
pub struct LiveRows {
    pub base_run: u32,
    pub new: wick_core::train::NewRows,
}

impl Default for MonitorState {
    fn default() -> Self {
        Self {
            busy: false,
            report: None,
            asked: None,
            window_secs: 3600.0,
            history: Vec::new(),
            since: None,
            logging_error: None,
            live: LiveRowsState::default(),
            queue: LabelQueueState::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MonitorPoint {
    /// Seconds since the first refresh.
    pub secs: f64,
    pub version: String,
    pub requests: usize,
    pub p50_ms: Option<f64>,
}

/// The Evaluate screen's fit plot, computed in the background for one (run, feature) at a time.
#[derive(Default)]
pub struct FitState {
    pub key: Option<(u32, String)>,
    /// `None` while the job for `key` runs.
    pub view: Option<Result<FitView, String>>,
}

impl FitState {
    pub fn is_busy(&self) -> bool {
        self.key.is_some() && self.view.is_none()
    }
}

/// Result of the Evaluate screen's "Try it".
#[derive(Default)]
pub struct TryState {
    pub busy: bool,
    pub result: Option<Result<String, String>>,
    /// The prediction split into per-feature parts (linear and tree models).
    pub explanation: Option<wick_core::explain::Explanation>,
    /// For an image: the image at the model's input size and its saliency overlay.
    pub saliency: Option<TrySaliency>,
    /// Counts results, so views know when to replace their textures.
    pub generation: u64,
}

/// Saliency overlays of the Evaluate screen's test images, computed in the background one image at
/// a time for one run.
#[derive(Default)]
pub struct GridSaliency {
    pub run: Option<u32>,
    /// Overlays by image path, as they finish.
    pub overlays: std::collections::HashMap<PathBuf, egui::ColorImage>,
    pub requested: std::collections::HashSet<PathBuf>,
    /// Why they could not be computed (the model passes no gradients back, say).
    pub error: Option<String>,
}

/// The Evaluate screen's feature importance, computed in the background for one run at a time.
#[derive(Default)]
pub struct ImportanceState {
    pub run: Option<u32>,
    /// `None` while the job for `run` runs.
    pub view: Option<Result<wick_core::explain::Importance, String>>,
}

impl ImportanceState {
    pub fn is_busy(&self) -> bool {
        self.run.is_some() && self.view.is_none()
    }
}

/// Whether what the screens show is on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaveStatus {
    pub saved: bool,
    pub error: Option<String>,
}

pub struct AppState {
    pub config: AppConfig,
    pub project: Project,
    pub settings: Settings,
    pub screen: Screen,
    pub data: DataState,
    pub training: Option<ActiveTraining>,
    /// Trained models still in memory, for "Try it" (others are loaded from their package on demand).
    pub models: HashMap<u32, Arc<Model>>,
    /// The GPUs this machine can train on, probed once off the UI thread at start (empty until
    /// the probe answers, and on a machine without one).
    pub gpus: Vec<wick_core::train::DeviceChoice>,
    pub selected_run: Option<u32>,
    /// Runs overlaid on the Train screen's plots.
    pub compare_runs: Vec<u32>,
    pub publish: PublishState,
    pub try_it: TryState,
    pub fit: FitState,
    pub importance: ImportanceState,
    pub grid_saliency: GridSaliency,
    pub monitor: MonitorState,
    /// The Hub backbones in the cache (read at start and after each run, not every frame).
    pub downloaded_backbones: Vec<&'static str>,
    pub augment_preview: AugmentPreview,
    /// The share of a large file read while it opens by streaming.
    pub load_progress: Option<f32>,
    /// Problems to show in the banner at the top (save failures, a damaged project file, …).
    pub notices: Vec<String>,
    pub show_settings: bool,
    pub show_about: bool,
    pub save_status: SaveStatus,
}

impl AppState {
    /// Re-reads which Hub backbones are in the cache.
    pub fn refresh_downloaded_backbones(&mut self) {
        self.downloaded_backbones = match &self.config.hub {
            Some(hub) => wick_core::hub::BACKBONES
                .iter()
                .filter(|b| hub.cached(b).is_some())
                .map(|b| b.name)
                .collect(),
            None => Vec::new(),
        };
    }

    pub fn is_busy(&self) -> bool {
        self.training.is_some()
            || matches!(self.data, DataState::Loading(_))
            || self.publish.busy
            || self.publish.test_busy
            || self.publish.versions_busy
            || self.try_it.busy
            || self.fit.is_busy()
            || self.importance.is_busy()
            || self.monitor.busy
    }

    /// For a large file kept as a sample: `(rows in the sample, rows in the file)`.
    pub fn sampled(&self) -> Option<(usize, usize)> {
        match self.loaded()? {
            LoadedData::Table {
                df,
                sampled_from: Some(total),
                ..
            } => Some((df.height(), *total)),
            _ => None,
        }
    }

    pub fn loaded(&self) -> Option<&LoadedData> {
        match &self.data {
            DataState::Loaded { data, .. } => Some(data),
            _ => None,
        }
    }

    /// What the loaded data is, as the model kinds read it (a table until something is loaded).
    pub fn input_kind(&self) -> InputKind {
        match self.loaded() {
            Some(data) if data.is_images() => InputKind::Images,
            _ => InputKind::Table,
        }
    }

    /// The task: the user's override, else detected from the target (images are classification).
    pub fn task(&self) -> Option<Task> {
        if let Some(t) = self.project.model.task_override {
            return Some(t);
        }
        match self.loaded()? {
            LoadedData::Images { .. } => Some(Task::Classification),
            LoadedData::Table { df, .. } => {
                let target = self.project.model.target.as_ref()?;
                let col = df.column(target).ok()?;
                Some(detect_task(col.as_materialized_series()))
            }
        }
    }

    pub fn detected_task(&self) -> Option<Task> {
        match self.loaded()? {
            LoadedData::Images { .. } => Some(Task::Classification),
            LoadedData::Table { df, .. } => {
                let col = df.column(self.project.model.target.as_ref()?).ok()?;
                Some(detect_task(col.as_materialized_series()))
            }
        }
    }

    /// Feature columns in use.
    pub fn features(&self) -> Vec<String> {
        let Some(LoadedData::Table { summary, .. }) = self.loaded() else {
            return Vec::new();
        };
        let target = self.project.model.target.as_deref();
        summary
            .columns
            .iter()
            .map(|c| c.name.clone())
            .filter(|n| {
                Some(n.as_str()) != target && !self.project.model.excluded_features.contains(n)
            })
            .filter(|n| {
                self.project.model.personal.action(n) != Some(wick_core::data::PersonalAction::Drop)
            })
            .collect()
    }

    /// The image input shape the CNN will use.
    pub fn image_shape(&self) -> Option<wick_core::data::ImageShape> {
        let Some(LoadedData::Images { index }) = self.loaded() else {
            return None;
        };
        let side = self.project.model.image_side;
        let mut shape = index.default_shape(if side == 0 { 64 } else { side });
        if side > 0 {
            shape.height = side;
            shape.width = side;
        }
        Some(shape)
    }

    pub fn n_classes(&self) -> usize {
        match self.loaded() {
            Some(LoadedData::Images { index }) => index.classes.len(),
            Some(LoadedData::Table { df, .. }) => self
                .project
                .model
                .target
                .as_ref()
                .and_then(|t| df.column(t).ok())
                .and_then(|c| c.n_unique().ok())
                .unwrap_or(2),
            None => 2,
        }
    }

    pub fn selected_run_record(&self) -> Option<&RunRecord> {
        let id = self.selected_run?;
        self.project.runs.iter().find(|r| r.id == id)
    }

    pub fn selected_package(&self) -> Option<PathBuf> {
        self.selected_run_record().and_then(|r| r.package.clone())
    }

    pub fn publish_name_default(&self) -> String {
        let from_data = self
            .project
            .dataset
            .as_ref()
            .and_then(|d| d.path.file_stem())
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into());
        sanitize_model_name(&from_data)
    }

    /// The endpoint publishing goes to: the remote one if the user set it, else the embedded server.
    pub fn endpoint(&self) -> Result<EndpointTarget, String> {
        if self.settings.use_remote {
            if self.settings.remote_url.trim().is_empty() {
                return Err("Set the remote endpoint's URL in Settings, or switch back to the built-in endpoint.".into());
            }
            return Ok(EndpointTarget {
                url: self.settings.remote_url.trim().to_string(),
                token: self.settings.remote_token.clone(),
            });
        }
        self.config.embedded_endpoint.clone().ok_or_else(|| {
            self.config
                .embedded_endpoint_error
                .clone()
                .map(|e| format!("The built-in endpoint is not running ({e}). Set a remote endpoint in Settings."))
                .unwrap_or_else(|| "The built-in endpoint is not running. Set a remote endpoint in Settings.".into())
        })
    }

    pub fn samples(&self) -> Vec<(&'static Sample, PathBuf)> {
        let Some(dir) = &self.config.samples_dir else {
            return Vec::new();
        };
        SAMPLES
            .iter()
            .map(|s| (s, dir.join(s.path)))
            .filter(|(_, p)| p.exists())
            .collect()
    }
}
