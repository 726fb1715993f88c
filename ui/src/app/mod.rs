//! The workbench: the frame loop, background jobs, and the one place where commands take effect.
//! The state screens read is [`AppState`]; only the shell (`shell`) knows every screen.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

use wick_core::data::{PreprocessOptions, TabularRequest, Task};
use wick_core::model::ModelSpec;
use wick_core::train::{CancelToken, SearchEvent, TrainEvent};

pub use crate::command::{Command, Commands};
use crate::host::{AppConfig, HostEvent, HostRequest};
use crate::jobs::{FitRequest, JobEvent, Jobs, ModelSource, SearchOrder, TrainOrder, TryInput};
use crate::loaded::LoadedData;
pub use crate::project::{default_train_config, sanitize_model_name};
use crate::project::{
    load_project, DatasetRef, Project, ProjectSaver, PublishedRecord, RunRecord, RunStatus,
    Template,
};
use crate::settings::Settings;
pub use crate::state::{
    ActiveTraining, AppState, DataState, FitState, ImportanceState, PublishState, ReadingProgress,
    SaveStatus, Screen, SearchProgress, TryState,
};
pub use crate::waker::Waker;
use crate::{screens, theme};

mod commands;
mod job_events;
mod runs;

pub struct WickApp {
    /// What the screens read.
    pub state: AppState,
    /// Screen-local view state (selected column, filters, layer being edited, …).
    pub view: screens::common::ViewState,
    pub thumbnails: crate::thumbnails::Thumbnails,
    waker: Waker,
    commands: Commands,
    host_requests: Vec<HostRequest>,
    jobs: Jobs,
    job_events: Receiver<JobEvent>,
    saver: ProjectSaver,
    /// Bumped on every change worth saving; compared with what the saver wrote.
    generation: u64,
    /// The newest generation handed to the saver.
    sent_generation: u64,
    last_save_sent: Instant,
    saved_project_json: String,
    pub frame_count: u64,
}

/// What a new run trains.
enum RunKind {
    /// The Model screen's current choice.
    Current,
    /// A leaderboard row, with the network settings it was ranked with.
    Candidate(wick_core::train::Candidate),
    /// The leaderboard search; the run becomes its best model.
    Search { budget_secs: f64 },
    /// *Improve with live data*: run `base_run`'s model trained again on the dataset and these rows.
    LiveRows {
        base_run: u32,
        rows: wick_core::polars::prelude::DataFrame,
    },
}

impl WickApp {
    /// Builds the app and restores the saved project. Fonts and themes are installed on the first
    /// frame, when the host's egui context is known.
    pub fn new(config: AppConfig) -> Self {
        let settings = Settings::load(&config.settings_path);
        let waker = Waker::default();
        let (events, job_events) = channel();
        let job_waker = waker.clone();
        let jobs = Jobs::new(events, Arc::new(move || job_waker.wake()));
        let (project, problem) = load_project(&config.project_dir);
        let saver_waker = waker.clone();
        let saver = ProjectSaver::start(config.project_dir.clone(), move || saver_waker.wake());
        let saved_project_json = small_state_json(&project).unwrap_or_default();
        let notices = config
            .startup_notices
            .iter()
            .cloned()
            .chain(problem.map(|p| p.to_string()))
            .collect();
        let state = AppState {
            config,
            settings,
            screen: Screen::Data,
            data: DataState::Empty,
            training: None,
            models: HashMap::new(),
            gpus: Vec::new(),
            selected_run: project.runs.last().map(|r| r.id),
            compare_runs: Vec::new(),
            publish: PublishState::default(),
            try_it: TryState::default(),
            fit: FitState::default(),
            importance: ImportanceState::default(),
            grid_saliency: Default::default(),
            monitor: Default::default(),
            downloaded_backbones: Vec::new(),
            augment_preview: Default::default(),
            load_progress: None,
            notices,
            show_settings: false,
            show_about: false,
            save_status: SaveStatus::default(),
            project,
        };
        let mut state = state;
        state.refresh_downloaded_backbones();
        let mut app = Self {
            thumbnails: crate::thumbnails::Thumbnails::new(waker.clone()),
            waker,
            state,
            view: screens::common::ViewState::default(),
            commands: Commands::default(),
            host_requests: Vec::new(),
            jobs,
            job_events,
            saver,
            generation: 0,
            sent_generation: 0,
            last_save_sent: Instant::now()
                .checked_sub(SAVE_DEBOUNCE)
                .unwrap_or_else(Instant::now),
            saved_project_json,
            frame_count: 0,
        };
        app.load_project_dataset();
        app.restore_published();
        app.jobs.probe_gpus();
        app
    }

    /// What this project last published is live again after a restart: Monitor, *Send test
    /// request* and the step list's tick come back at once, and the endpoint's version list
    /// (asked for here) confirms the version is still there or takes it back.
    fn restore_published(&mut self) {
        let runs = &self.state.project.runs;
        let Some(mut record) = self
            .state
            .project
            .published
            .iter()
            .rev()
            .find(|p| runs.iter().any(|r| r.id == p.run_id))
            .cloned()
        else {
            return;
        };
        let Ok(endpoint) = self.state.endpoint() else {
            return;
        };
        // The record names the endpoint it was published to; the app's own endpoint keeps its port,
        // but an older project may have been published while the port changed with each launch.
        if record.endpoint != endpoint.url
            && self
                .state
                .config
                .embedded_endpoint
                .as_ref()
                .is_some_and(|e| e.url == endpoint.url)
        {
            record.infer_url =
                wick_core::wire::infer_url(&endpoint.url, &record.name, record.version);
            record.endpoint = endpoint.url.clone();
        }
        tracing::info!(model = %record.name, version = record.version, "published version restored");
        self.request_snippets(&record);
        self.state.publish.last = Some(record);
        self.command(Command::RefreshVersions);
    }

    /// Draws one frame. Hosts call this inside their root `Ui`.
    pub fn ui(&mut self, ui: &mut egui::Ui) {
        if self.frame_count == 0 {
            theme::install(ui.ctx(), self.state.settings.dark);
            self.waker.set(ui.ctx());
        }
        self.frame_count += 1;
        self.poll_jobs();
        self.handle_dropped_files(ui.ctx());
        self.state.save_status = SaveStatus {
            saved: self.is_saved(),
            error: self.save_error().map(str::to_string),
        };
        crate::shell::shell(
            &self.state,
            &mut self.view,
            &mut self.thumbnails,
            &mut self.commands,
            ui,
        );
        self.apply_commands();
        self.autosave();
    }

    /// Queues a side effect; widgets call this instead of acting directly.
    pub fn command(&mut self, command: Command) {
        self.commands.send(command);
    }

    /// What the host should do next (dialogs, quitting).
    pub fn take_host_requests(&mut self) -> Vec<HostRequest> {
        std::mem::take(&mut self.host_requests)
    }

    /// Menu commands and dialog answers from the host.
    pub fn handle_host_event(&mut self, event: HostEvent) {
        match event.clone() {
            HostEvent::OpenDataset(path) => self.command(Command::OpenDataset(path)),
            HostEvent::OpenProject(dir) => self.open_project(dir),
            HostEvent::ExportTo(dest) => match self.state.selected_package() {
                Some(package) => self.jobs.export(package, dest),
                None => self
                    .state
                    .notices
                    .push("Train a model before exporting it.".into()),
            },
            HostEvent::BackboneChosen(path) => {
                self.state.project.model.backbone = crate::project::BackboneChoice::File(path);
            }
            HostEvent::TryImageChosen(path) => self.command(Command::TryImage(path)),
            HostEvent::Save => {
                self.generation += 1;
                self.flush();
            }
            HostEvent::ExportModel | HostEvent::ExportOnnx => {
                match self.state.selected_run_record() {
                    Some(run) if run.package.is_some() => {
                        let extension = if event == HostEvent::ExportOnnx {
                            "onnx"
                        } else {
                            "wick"
                        };
                        let suggested_name =
                            format!("{}.{extension}", self.state.publish_name_default());
                        self.host_requests
                            .push(HostRequest::PickExportPath { suggested_name });
                    }
                    _ => self
                        .state
                        .notices
                        .push("Train a model before exporting it.".into()),
                }
            }
            HostEvent::OpenDatasetDialog => self
                .host_requests
                .push(HostRequest::PickDataset { folder: false }),
            HostEvent::About => self.state.show_about = true,
        }
    }

    /// Writes pending changes and waits for them (the host calls this before quitting).
    pub fn flush(&mut self) {
        self.last_save_sent = Instant::now()
            .checked_sub(SAVE_DEBOUNCE)
            .unwrap_or_else(Instant::now);
        self.autosave();
        self.saver
            .flush(self.generation, std::time::Duration::from_secs(5));
    }

    /// True when everything shown is on disk.
    pub fn is_saved(&self) -> bool {
        self.saver.saved_generation >= self.generation
    }

    pub fn save_error(&self) -> Option<&str> {
        self.saver.last_error.as_deref()
    }

    pub fn is_busy(&self) -> bool {
        self.state.is_busy()
    }

    // ----- effects -----

    fn open_project(&mut self, dir: PathBuf) {
        self.flush();
        if let Some(t) = &self.state.training {
            t.cancel.cancel();
        }
        let (project, problem) = load_project(&dir);
        self.state.config.project_dir = dir.clone();
        let saver_waker = self.waker.clone();
        self.saver = ProjectSaver::start(dir, move || saver_waker.wake());
        self.generation = 0;
        self.saved_project_json = small_state_json(&project).unwrap_or_default();
        self.sent_generation = 0;
        self.state.selected_run = project.runs.last().map(|r| r.id);
        self.state.project = project;
        self.state.models.clear();
        self.state.fit = FitState::default();
        self.state.importance = ImportanceState::default();
        self.state.publish = PublishState::default();
        self.state.monitor = Default::default();
        self.state.try_it = TryState::default();
        self.state.notices.extend(problem.map(|p| p.to_string()));
        self.restore_published();
        self.load_project_dataset();
        self.state.screen = Screen::Data;
    }

    /// Starts loading the project's dataset, if it has one (at start and when a project opens).
    fn load_project_dataset(&mut self) {
        self.state.data = DataState::Empty;
        if let Some(dataset) = self.state.project.dataset.clone() {
            self.state.data = DataState::Loading(dataset.path.clone());
            self.jobs.load_dataset(
                dataset.path,
                (
                    self.state.config.stream_threshold_bytes,
                    self.state.config.stream_sample_rows,
                ),
            );
        }
    }

    fn handle_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped: Vec<PathBuf> = ctx.input(|i| {
            i.raw
                .dropped_files
                .iter()
                .map(|f| f.path().to_path_buf())
                .collect()
        });
        let Some(path) = dropped.into_iter().next() else {
            return;
        };
        // An image dropped once a model exists is something to try; anything else is a dataset.
        if is_image_file(&path) && self.state.selected_package().is_some() {
            self.state.screen = Screen::Evaluate;
            self.command(Command::TryImage(path));
        } else {
            self.command(Command::OpenDataset(path));
        }
    }

    fn poll_jobs(&mut self) {
        self.saver.poll();
        while let Ok(event) = self.job_events.try_recv() {
            self.on_job_event(event);
        }
    }

    fn autosave(&mut self) {
        // Runs can hold 100k loss points, so they are not compared every frame: run changes bump the
        // generation themselves (start, each epoch, finish). Everything else is small and compared here.
        if let Some(json) = small_state_json(&self.state.project) {
            if json != self.saved_project_json {
                self.saved_project_json = json;
                self.generation += 1;
            }
        }
        if self.generation > self.sent_generation {
            let since = self.last_save_sent.elapsed();
            if since >= SAVE_DEBOUNCE {
                self.sent_generation = self.generation;
                self.last_save_sent = Instant::now();
                self.saver.save(self.generation, &self.state.project);
            } else {
                self.waker.wake_after(SAVE_DEBOUNCE - since);
            }
        }
    }
}

/// Typing in a field saves at most this often.
const SAVE_DEBOUNCE: std::time::Duration = std::time::Duration::from_millis(250);

/// The parts of a project other than its runs, for change detection.
fn small_state_json(p: &Project) -> Option<String> {
    serde_json::to_string(&(&p.dataset, &p.model, &p.train, &p.publish, &p.published)).ok()
}

pub fn is_image_file(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| matches!(e.as_str(), "png" | "jpg" | "jpeg" | "bmp" | "gif" | "webp"))
}

pub fn describe_prediction(p: &wick_core::model::Prediction) -> String {
    match p {
        wick_core::model::Prediction::Value { value } => format!("{value:.4}"),
        wick_core::model::Prediction::Class { label, .. } => {
            format!(
                "{label} ({:.0}% sure)",
                p.confidence().unwrap_or(0.0) * 100.0
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_endpoint_safe() {
        assert_eq!(sanitize_model_name("Seattle Weather!"), "seattle-weather");
        assert_eq!(sanitize_model_name("breast-cancer"), "breast-cancer");
        assert_eq!(sanitize_model_name("  "), "");
    }

    #[test]
    fn throughput_is_estimated_from_steps_until_an_epoch_finishes() {
        let mut t = ActiveTraining {
            run_id: 1,
            cancel: CancelToken::new(),
            started: Instant::now(),
            epochs: 2,
            steps_per_epoch: 10,
            done_steps: 0,
            samples_per_sec: None,
            train_rows: 640,
            steps_started: None,
            cv_fold: None,
            search: None,
            reading: None,
            download: None,
        };
        assert_eq!(t.throughput(), None, "nothing before the trainer starts");
        t.steps_started = Instant::now().checked_sub(std::time::Duration::from_secs(2));
        assert_eq!(t.throughput(), None, "nothing before the first step");
        t.done_steps = 5;
        // 5 steps of 64 samples in about 2 s.
        let live = t.throughput().unwrap();
        assert!((140.0..=160.0).contains(&live), "{live}");
        t.samples_per_sec = Some(321.0);
        assert_eq!(
            t.throughput(),
            Some(321.0),
            "the finished epoch's figure wins"
        );
    }
}
