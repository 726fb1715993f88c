//! The user's project: what they loaded, chose and trained, saved automatically and atomically.
//!
//! The UI thread serialises the project; a saver thread writes it (temp file + fsync + rename), so a
//! slow disk never stalls a frame and a crash leaves either the old or the new file, never half of one.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};

use serde::{Deserialize, Serialize};
use wick_core::data::{MissingPolicy, Task};
use wick_core::hub::BackboneSource;
use wick_core::metrics::Metrics;
use wick_core::model::{default_cnn_layers, Activation, KindSettings, Layer, ModelSpec};
use wick_core::train::{MetricPoint, TestSample, TrainConfig};

/// What `project.json` holds. Unknown or missing fields fall back to defaults, so older files open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Project {
    pub dataset: Option<DatasetRef>,
    pub model: ModelChoice,
    pub train: TrainConfig,
    pub runs: Vec<RunRecord>,
    pub publish: PublishForm,
    pub published: Vec<PublishedRecord>,
}

/// A dataset the project uses: the path, and the sample it came from if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    pub path: PathBuf,
    pub sample: Option<String>,
}

/// Where transfer learning's backbone comes from: a Hub backbone by name (downloaded on first use),
/// or a safetensors file the user picked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackboneChoice {
    Hub(String),
    File(PathBuf),
}

impl Default for BackboneChoice {
    fn default() -> Self {
        Self::Hub(wick_core::hub::DEFAULT_BACKBONE.into())
    }
}

impl BackboneChoice {
    pub fn source(&self) -> Result<BackboneSource, String> {
        match self {
            Self::Hub(name) => wick_core::hub::backbone(name)
                .map(BackboneSource::Hub)
                .ok_or_else(|| {
                    format!("the backbone `{name}` is not one Wick knows; pick one of the list")
                }),
            Self::File(path) => Ok(BackboneSource::File(path.clone())),
        }
    }

    /// The Hub backbone chosen, if it is one.
    pub fn hub(&self) -> Option<&'static wick_core::hub::HubBackbone> {
        match self {
            Self::Hub(name) => wick_core::hub::backbone(name),
            Self::File(_) => None,
        }
    }
}

/// The model the user is building: one template plus the settings each template keeps, so switching
/// between templates does not lose the edits of another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelChoice {
    pub target: Option<String>,
    /// Feature columns left out by the user (everything else but the target is used).
    pub excluded_features: Vec<String>,
    pub task_override: Option<Task>,
    pub missing: MissingPolicy,
    pub template: Template,
    pub poly_degree: u32,
    pub ridge_alpha: f64,
    pub mlp_hidden: Vec<usize>,
    pub mlp_activation: Activation,
    pub mlp_dropout: f32,
    pub cnn_layers: Vec<Layer>,
    /// Image side the CNN resizes to (0 = the dataset's own size, capped at 64).
    pub image_side: usize,
    /// Transfer learning's pretrained backbone.
    pub backbone: BackboneChoice,
    /// Transfer learning: train the backbone's last stage too.
    pub fine_tune: bool,
    /// Boosted trees: the most trees grown (early stopping on the validation rows may stop sooner).
    pub gbdt_trees: usize,
    pub gbdt_learning_rate: f64,
    pub gbdt_max_depth: usize,
    pub forest_trees: usize,
    /// 0 = grow each tree until its leaves are pure.
    pub forest_max_depth: usize,
    /// Cross-validate table runs with this many folds before the run's own model (0 = off).
    pub cv_folds: usize,
    /// Seconds *Find the best model* spends trying models.
    pub search_budget_secs: f64,
    /// Personal columns to drop or hash before training (and, through the model, at serving).
    pub personal: wick_core::data::PersonalData,
}

impl Default for ModelChoice {
    fn default() -> Self {
        Self {
            target: None,
            excluded_features: Vec::new(),
            task_override: None,
            missing: MissingPolicy::Mean,
            template: Template::Linear,
            poly_degree: 3,
            ridge_alpha: 1.0,
            mlp_hidden: vec![64, 32],
            mlp_activation: Activation::Relu,
            mlp_dropout: 0.0,
            cnn_layers: default_cnn_layers(),
            image_side: 0,
            backbone: BackboneChoice::default(),
            fine_tune: false,
            gbdt_trees: 300,
            gbdt_learning_rate: 0.1,
            gbdt_max_depth: 6,
            forest_trees: 100,
            forest_max_depth: 0,
            cv_folds: 0,
            search_budget_secs: 60.0,
            personal: wick_core::data::PersonalData::default(),
        }
    }
}

/// The template cards of the Model screen: one per kind of model the engine trains.
pub use wick_core::model::ModelKind as Template;

impl ModelChoice {
    /// The engine's spec for the current template. Image specs need the input shape.
    pub fn spec(
        &self,
        image_shape: Option<wick_core::data::ImageShape>,
    ) -> Result<ModelSpec, String> {
        let trees = match self.template {
            Template::Forest => Some(self.forest_trees),
            _ => Some(self.gbdt_trees),
        };
        let max_depth = match self.template {
            Template::Forest => Some(self.forest_max_depth),
            _ => Some(self.gbdt_max_depth),
        };
        let backbone = match self.template {
            Template::Transfer => Some(self.backbone_spec(image_shape)?),
            _ => None,
        };
        let settings = KindSettings {
            ridge_alpha: self.ridge_alpha,
            poly_degree: self.poly_degree,
            hidden: self.mlp_hidden.clone(),
            activation: self.mlp_activation,
            dropout: self.mlp_dropout,
            trees,
            learning_rate: Some(self.gbdt_learning_rate),
            max_depth,
            patience: None,
            image_input: image_shape,
            cnn_layers: self.cnn_layers.clone(),
            backbone,
        };
        self.template.spec(&settings).map_err(|e| e.to_string())
    }

    /// The transfer template's backbone, at the size it was trained on (224×224 for all of them).
    fn backbone_spec(
        &self,
        image_shape: Option<wick_core::data::ImageShape>,
    ) -> Result<wick_core::model::Backbone, String> {
        image_shape.ok_or("transfer learning needs an image dataset")?;
        let source = self.backbone.source()?;
        let side = source.input_px();
        let input = wick_core::data::ImageShape {
            channels: 3,
            height: side,
            width: side,
        };
        let (arch, weights) = match &source {
            // The training job downloads it (with progress) and fills in the path.
            BackboneSource::Hub(b) => (b.arch, PathBuf::new()),
            BackboneSource::File(path) => (
                wick_core::hub::detect_arch(path).map_err(|e| e.to_string())?,
                path.clone(),
            ),
        };
        Ok(wick_core::model::Backbone {
            arch,
            weights,
            input,
            fine_tune: self.fine_tune,
        })
    }
}

/// One training run, with everything the Train and Evaluate screens draw.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: u32,
    pub name: String,
    pub template: Template,
    pub spec: ModelSpec,
    pub config: TrainConfig,
    pub target: Option<String>,
    pub status: RunStatus,
    pub device: String,
    pub epochs: usize,
    /// Per-step training loss, x = fractional epoch.
    pub step_losses: Vec<[f64; 2]>,
    pub history: Vec<MetricPoint>,
    pub test_metrics: Option<Metrics>,
    pub test_samples: Vec<TestSample>,
    pub package: Option<PathBuf>,
    pub duration_secs: f64,
    /// Mean ± sd over the folds, when the run was cross-validated.
    #[serde(default)]
    pub cv: Option<wick_core::train::CvReport>,
    /// The models *Find the best model* tried, as they finished; the run's model is the best.
    #[serde(default)]
    pub leaderboard: Option<Vec<wick_core::train::Candidate>>,
    /// For a file too large to load: whether every row trained, or a sample and why.
    #[serde(default)]
    pub rows_used: Option<wick_core::train::RowsUsed>,
    /// Trained again with live rows (*Improve with live data*): the run it improves on and how many
    /// rows were added. Its test rows are that run's.
    #[serde(default)]
    pub live_rows: Option<LiveRowsRun>,
    /// The dataset it trained on (runs of other datasets say so instead of showing this one's rows).
    #[serde(default)]
    pub dataset: Option<PathBuf>,
}

impl RunRecord {
    /// A run that has just started: nothing measured yet, its planned epochs from `config`.
    pub fn started(
        id: u32,
        name: String,
        template: Template,
        spec: ModelSpec,
        config: TrainConfig,
        target: Option<String>,
    ) -> Self {
        Self {
            id,
            name,
            template,
            spec,
            epochs: config.epochs,
            config,
            target,
            status: RunStatus::Running,
            device: String::new(),
            step_losses: Vec::new(),
            history: Vec::new(),
            test_metrics: None,
            test_samples: Vec::new(),
            package: None,
            duration_secs: 0.0,
            cv: None,
            leaderboard: None,
            rows_used: None,
            live_rows: None,
            dataset: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRowsRun {
    pub base_run: u32,
    pub rows: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RunStatus {
    Running,
    Finished,
    Cancelled,
    Failed(String),
    /// The app closed or crashed while it ran.
    Interrupted,
}

/// The Publish screen's form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PublishForm {
    pub model_name: String,
    pub notes: String,
    /// Publish the next version as a canary taking 10% of the calls (offered while a version serves).
    pub canary: bool,
}

/// A version this project published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedRecord {
    pub run_id: u32,
    pub endpoint: String,
    pub name: String,
    pub version: u64,
    pub infer_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("could not read the project file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the project file {path} is damaged ({source}); it was kept as {backup} and a new project was started")]
    Damaged {
        path: PathBuf,
        backup: PathBuf,
        source: serde_json::Error,
    },
    #[error("could not save the project to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Loads `project.json` from `dir`. A missing file is a new project; a damaged one is set aside (never
/// deleted) and reported.
pub fn load_project(dir: &Path) -> (Project, Option<ProjectError>) {
    let path = dir.join("project.json");
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Project::default(), None),
        Err(source) => {
            return (
                Project::default(),
                Some(ProjectError::Read { path, source }),
            )
        }
    };
    match serde_json::from_slice::<Project>(&bytes) {
        Ok(mut p) => {
            for run in &mut p.runs {
                if run.status == RunStatus::Running {
                    run.status = RunStatus::Interrupted;
                }
            }
            (p, None)
        }
        Err(source) => {
            let backup = dir.join(format!("project.damaged-{}.json", std::process::id()));
            let _ = std::fs::rename(&path, &backup);
            (
                Project::default(),
                Some(ProjectError::Damaged {
                    path,
                    backup,
                    source,
                }),
            )
        }
    }
}

/// Writes `bytes` to `path` atomically: a temp file in the same folder, fsync, rename, fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ProjectError> {
    use std::io::Write;
    let err = |source| ProjectError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file = std::fs::File::create(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A save request: a snapshot of the project and a generation number the UI compares with what it shows.
/// The snapshot is serialised on the saver thread: a run with 100,000 loss points takes milliseconds to
/// write out, too long for a frame.
struct SaveRequest {
    generation: u64,
    project: Box<Project>,
}

/// The background writer of `project.json`.
pub struct ProjectSaver {
    requests: Sender<SaveRequest>,
    done: Receiver<(u64, Result<(), String>)>,
    /// The newest generation known to be on disk.
    pub saved_generation: u64,
    pub last_error: Option<String>,
}

impl ProjectSaver {
    pub fn start(dir: PathBuf, repaint: impl Fn() + Send + 'static) -> Self {
        let (requests, rx) = channel::<SaveRequest>();
        let (done_tx, done) = channel();
        std::thread::Builder::new()
            .name("wick-project-saver".into())
            .spawn(move || {
                let path = dir.join("project.json");
                while let Ok(mut req) = rx.recv() {
                    // Only the newest pending state matters.
                    while let Ok(newer) = rx.try_recv() {
                        req = newer;
                    }
                    let result = serde_json::to_vec(&req.project)
                        .map_err(|e| format!("could not serialise the project: {e}"))
                        .and_then(|bytes| write_atomic(&path, &bytes).map_err(|e| e.to_string()));
                    if done_tx.send((req.generation, result)).is_err() {
                        break;
                    }
                    repaint();
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!("could not start the project saver: {e}"));
        Self {
            requests,
            done,
            saved_generation: 0,
            last_error: None,
        }
    }

    pub fn save(&self, generation: u64, project: &Project) {
        let _ = self.requests.send(SaveRequest {
            generation,
            project: Box::new(project.clone()),
        });
    }

    pub fn poll(&mut self) {
        while let Ok((generation, result)) = self.done.try_recv() {
            match result {
                Ok(()) => {
                    self.saved_generation = self.saved_generation.max(generation);
                    self.last_error = None;
                }
                Err(e) => self.last_error = Some(e),
            }
        }
    }

    /// Blocks until everything sent so far is written (used on quit).
    pub fn flush(&mut self, generation: u64, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while self.saved_generation < generation && std::time::Instant::now() < deadline {
            if let Ok((g, result)) = self.done.recv_timeout(std::time::Duration::from_millis(50)) {
                match result {
                    Ok(()) => self.saved_generation = self.saved_generation.max(g),
                    Err(e) => {
                        self.last_error = Some(e);
                        return;
                    }
                }
            }
        }
    }
}

/// Sensible starting hyper-parameters per template.
pub fn default_train_config(images: bool, template: Template) -> wick_core::train::TrainConfig {
    let mut c = wick_core::train::TrainConfig::default();
    match template {
        Template::Logistic => {
            c.lr = 0.05;
            c.epochs = 60;
        }
        Template::Mlp => {
            c.lr = 3e-3;
            c.epochs = 60;
        }
        Template::Cnn | Template::Transfer => {
            c.lr = 3e-3;
            c.epochs = if images { 15 } else { 30 };
            c.batch_size = 64;
        }
        Template::Linear
        | Template::Polynomial
        | Template::Ridge
        | Template::BoostedTrees
        | Template::Forest => {}
    }
    c
}

/// Endpoint model names: letters, digits, `-`, `_`, `.`.
pub fn sanitize_model_name(s: &str) -> String {
    let cleaned: String = s
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    cleaned.trim_matches(|c| c == '-' || c == '.').to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn a_saved_project_reopens_and_running_runs_become_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Project::default();
        p.model.target = Some("temp_max".into());
        p.runs.push(RunRecord {
            device: "cpu".into(),
            epochs: 1,
            step_losses: vec![[0.0, 1.0]],
            ..RunRecord::started(
                1,
                "run 1".into(),
                Template::Linear,
                ModelSpec::Linear {
                    ridge_alpha: 0.0,
                    poly_degree: 1,
                },
                TrainConfig::default(),
                Some("temp_max".into()),
            )
        });
        let mut saver = ProjectSaver::start(dir.path().to_path_buf(), || {});
        saver.save(1, &p);
        saver.flush(1, std::time::Duration::from_secs(5));
        assert_eq!(saver.saved_generation, 1);
        let (back, err) = load_project(dir.path());
        assert!(err.is_none());
        assert_eq!(back.model.target.as_deref(), Some("temp_max"));
        assert_eq!(back.runs[0].status, RunStatus::Interrupted);
        // No temp files are left behind.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["project.json".to_string()]);
    }

    #[test]
    fn a_damaged_project_is_kept_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("project.json"), b"{ not json").unwrap();
        let (p, err) = load_project(dir.path());
        assert!(p.dataset.is_none());
        let message = err.unwrap().to_string();
        assert!(message.contains("damaged"), "{message}");
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("project.damaged-")
            })
            .collect();
        assert_eq!(kept.len(), 1);
    }
}
