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
use crate::jobs::{FitRequest, JobEvent, Jobs, ModelSource, TrainOrder, TryInput};
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
        if let Some(dataset) = app.state.project.dataset.clone() {
            app.state.data = DataState::Loading(dataset.path.clone());
            app.jobs.load_dataset(
                dataset.path,
                (
                    app.state.config.stream_threshold_bytes,
                    app.state.config.stream_sample_rows,
                ),
            );
        }
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
        self.state.screen = Screen::Data;
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

    fn on_job_event(&mut self, event: JobEvent) {
        match event {
            JobEvent::LoadProgress { path, fraction } => {
                if matches!(&self.state.data, DataState::Loading(p) if *p == path) {
                    self.state.load_progress = Some(fraction);
                }
            }
            JobEvent::DatasetLoaded { path, result } => {
                // A later request wins; ignore stale loads.
                if !matches!(&self.state.data, DataState::Loading(p) if *p == path) {
                    return;
                }
                self.state.load_progress = None;
                self.state.fit = FitState::default();
                match result {
                    Ok(data) => {
                        if let LoadedData::Images { index } = &data {
                            self.thumbnails.request(index);
                        }
                        let rows = match &data {
                            LoadedData::Table { summary, .. } => summary.rows,
                            LoadedData::Images { index } => index.len(),
                        };
                        tracing::info!(path = %path.display(), rows, "dataset loaded");
                        self.state.data = DataState::Loaded {
                            path: path.clone(),
                            data,
                        };
                        self.after_dataset_loaded(&path);
                    }
                    Err(message) => {
                        tracing::warn!(path = %path.display(), %message, "dataset not loaded");
                        self.state.data = DataState::Failed { path, message };
                    }
                }
            }
            JobEvent::Train { run_id, event } => self.on_train_event(run_id, event),
            JobEvent::Search { run_id, event } => {
                let Some(t) = self.state.training.as_mut().filter(|t| t.run_id == run_id) else {
                    return;
                };
                let Some(progress) = t.search.as_mut() else {
                    return;
                };
                match event {
                    SearchEvent::CandidateStarted { name, .. } => progress.current = name,
                    SearchEvent::CandidateDone(candidate) => {
                        progress.tried += 1;
                        if let Some(run) =
                            self.state.project.runs.iter_mut().find(|r| r.id == run_id)
                        {
                            run.leaderboard.get_or_insert_with(Vec::new).push(candidate);
                        }
                    }
                    SearchEvent::CandidateFailed { name, message } => {
                        tracing::info!(candidate = %name, %message, "search candidate skipped")
                    }
                    SearchEvent::FinalStarted { name } => {
                        progress.current = name;
                        progress.finalising = true;
                    }
                }
            }
            JobEvent::TrainDone { run_id, result } => {
                // A transfer run may have downloaded its backbone.
                self.state.refresh_downloaded_backbones();
                self.generation += 1;
                let active = self.state.training.take();
                let Some(run) = self.state.project.runs.iter_mut().find(|r| r.id == run_id) else {
                    return;
                };
                match result {
                    Ok(done) => {
                        tracing::info!(
                            run = run_id,
                            secs = done.report.duration_secs,
                            "run finished"
                        );
                        run.status = RunStatus::Finished;
                        run.test_metrics = done.report.test.clone();
                        run.test_samples = done.report.test_samples.clone();
                        run.history = done.report.history.clone();
                        run.device = done.report.device.clone();
                        // A search's run took the whole search, not only its best model's fit.
                        run.duration_secs = match (&done.leaderboard, &active) {
                            (Some(_), Some(a)) => a.started.elapsed().as_secs_f64(),
                            _ => done.report.duration_secs,
                        };
                        run.cv = done.cv.clone();
                        run.rows_used = done.report.rows_used.clone();
                        if let Some(board) = &done.leaderboard {
                            // The search's run is its best model.
                            run.spec = done.model.spec.clone();
                            run.template = Template::of(&run.spec);
                            if let Some(best) = board.first() {
                                run.name = format!("Run {run_id} · Best: {}", best.name);
                            }
                            run.leaderboard = Some(board.clone());
                        }
                        run.package = Some(done.package);
                        self.state.models.insert(run_id, done.model);
                        self.state.selected_run = Some(run_id);
                        self.state.try_it = TryState::default();
                    }
                    Err(message) => {
                        tracing::info!(run = run_id, %message, "run did not finish");
                        let cancelled = active.is_some_and(|a| a.cancel.is_cancelled());
                        run.status = if cancelled {
                            RunStatus::Cancelled
                        } else {
                            RunStatus::Failed(message)
                        };
                    }
                }
            }
            JobEvent::Published {
                run_id,
                endpoint,
                result,
            } => {
                self.state.publish.busy = false;
                match result {
                    Ok((published, infer_url)) => {
                        tracing::info!(model = %published.name, version = published.version, run = run_id, "published");
                        let record = PublishedRecord {
                            run_id,
                            endpoint,
                            name: published.name,
                            version: published.version,
                            infer_url,
                        };
                        self.request_snippets(&record);
                        self.state.project.published.push(record.clone());
                        self.state.publish.last = Some(record);
                        self.state.publish.error = None;
                        self.state.publish.test_response = None;
                        // The notes were this version's; the next one gets its own. A canary is a
                        // choice made once, not the way every later version goes out.
                        self.state.project.publish.notes.clear();
                        self.state.project.publish.canary = false;
                        self.command(Command::RefreshVersions);
                    }
                    Err(e) => {
                        tracing::info!(error = %e, "publish refused");
                        self.state.publish.error = Some(e);
                    }
                }
            }
            JobEvent::LiveRows { base_run, result } => {
                self.state.monitor.live.busy = false;
                if let Ok(new) = &result {
                    tracing::info!(
                        received = new.received,
                        new = new.frame.height(),
                        duplicates = new.duplicates,
                        "live rows fetched"
                    );
                }
                self.state.monitor.live.result =
                    Some(result.map(|new| crate::state::LiveRows { base_run, new }));
            }
            JobEvent::LabelQueue { name, result } => {
                let queue = &mut self.state.monitor.queue;
                queue.busy = false;
                if self
                    .state
                    .publish
                    .last
                    .as_ref()
                    .is_some_and(|p| p.name == name)
                {
                    // Labels already sent stay shown until the list is fetched again.
                    queue.sent.retain(|_, s| s.is_none());
                    queue.result = Some(result);
                }
            }
            JobEvent::FeedbackSent {
                id,
                outcome,
                result,
            } => {
                tracing::info!(%id, ok = result.is_ok(), "feedback sent");
                self.state
                    .monitor
                    .queue
                    .sent
                    .insert(id, Some(result.map(|()| outcome)));
            }
            JobEvent::TestResponse { result } => {
                tracing::info!(ok = result.is_ok(), "test request answered");
                self.state.publish.test_busy = false;
                self.state.publish.test_response = Some(result);
            }
            JobEvent::Versions { result } => {
                self.state.publish.versions_busy = false;
                if let (Ok(models), Some(last)) = (&result, &self.state.publish.last) {
                    let there = models.iter().any(|m| {
                        m.name == last.name && m.versions.iter().any(|v| v.version == last.version)
                    });
                    if !there {
                        self.state.notices.push(format!("{} version {} is no longer on the endpoint; publish again to serve it.", last.name, last.version));
                        self.state.publish.last = None;
                        self.state.publish.snippets = None;
                    }
                }
                self.state.publish.versions = Some(result);
            }
            JobEvent::RolledBack {
                name,
                version,
                result,
            } => match result {
                Ok(()) => {
                    self.state.notices.retain(|n| !n.starts_with("Rollback"));
                    self.command(Command::RefreshVersions);
                    tracing::info!(model = %name, version, "rolled back");
                }
                Err(e) => {
                    self.state.publish.error = Some(format!(
                        "Rollback of {name} to version {version} failed: {e}"
                    ))
                }
            },
            JobEvent::Monitor { name, result } => {
                let m = &mut self.state.monitor;
                m.busy = false;
                if let (Ok(report), true) = (
                    &result,
                    self.state
                        .publish
                        .last
                        .as_ref()
                        .is_some_and(|p| p.name == name),
                ) {
                    let since = *m.since.get_or_insert_with(Instant::now);
                    let secs = since.elapsed().as_secs_f64();
                    for (version, f) in &report.versions {
                        m.history.push(crate::state::MonitorPoint {
                            secs,
                            version: version.clone(),
                            requests: f.requests,
                            p50_ms: f.latency_p50_ms,
                        });
                    }
                    // An hour of refreshes at most.
                    let excess = m.history.len().saturating_sub(4000);
                    m.history.drain(..excess);
                }
                m.report = Some(result);
            }
            JobEvent::LoggingSet { name, result } => match result {
                Ok(()) => {
                    self.state.monitor.logging_error = None;
                    self.refresh_monitor();
                }
                Err(e) => {
                    self.state.monitor.logging_error =
                        Some(format!("Logging of {name} could not be changed: {e}"))
                }
            },
            JobEvent::TrafficSet { name, result } => match result {
                Ok(()) => {
                    tracing::info!(model = %name, "traffic split set");
                    self.command(Command::RefreshVersions);
                }
                Err(e) => {
                    self.state.publish.error =
                        Some(format!("The traffic split of {name} failed: {e}"))
                }
            },
            JobEvent::TryIt {
                run_id,
                model,
                result,
                saliency,
            } => {
                self.state.models.extend(model.map(|m| (run_id, m)));
                self.state.try_it.busy = false;
                self.state.try_it.saliency = saliency;
                self.state.try_it.generation += 1;
                match result {
                    Ok((predictions, explanation)) => {
                        self.state.try_it.result = Some(Ok(predictions
                            .iter()
                            .map(describe_prediction)
                            .collect::<Vec<_>>()
                            .join("\n")));
                        self.state.try_it.explanation = explanation;
                    }
                    Err(e) => {
                        self.state.try_it.result = Some(Err(e));
                        self.state.try_it.explanation = None;
                    }
                }
            }
            JobEvent::GridSaliency {
                run_id,
                path,
                result,
            } => {
                let grid = &mut self.state.grid_saliency;
                if grid.run == Some(run_id) {
                    match result {
                        Ok(image) => {
                            grid.overlays.insert(path, image);
                        }
                        Err(e) => grid.error = Some(e),
                    }
                }
            }
            JobEvent::GridSaliencyDone { run_id, model } => {
                self.state.models.extend(model.map(|m| (run_id, m)));
            }
            JobEvent::Importance {
                run_id,
                model,
                result,
            } => {
                self.state.models.extend(model.map(|m| (run_id, m)));
                if self.state.importance.run == Some(run_id) {
                    self.state.importance.view = Some(result);
                }
            }
            JobEvent::FitView {
                run_id,
                feature,
                model,
                result,
            } => {
                self.state.models.extend(model.map(|m| (run_id, m)));
                if self
                    .state
                    .fit
                    .key
                    .as_ref()
                    .is_some_and(|(r, f)| *r == run_id && *f == feature)
                {
                    self.state.fit.view = Some(result);
                }
            }
            JobEvent::AugmentPreview { augment, result } => {
                if self.state.augment_preview.augment == Some(augment) {
                    self.state.augment_preview.images = Some(result);
                }
            }
            JobEvent::Gpus(gpus) => self.state.gpus = gpus,
            JobEvent::Snippets { version, snippets } => {
                // Only the version on show: an older job's answer is stale.
                if self.state.publish.last.as_ref().map(|l| l.version) == Some(version) {
                    self.state.publish.snippets = Some(snippets);
                }
            }
            JobEvent::Exported { path, result } => match result {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "model exported");
                    self.state
                        .notices
                        .push(format!("Model exported to {}", path.display()));
                }
                Err(e) => {
                    tracing::info!(path = %path.display(), error = %e, "export failed");
                    self.state.notices.push(format!("Export failed: {e}"));
                }
            },
        }
    }

    fn on_train_event(&mut self, run_id: u32, event: TrainEvent) {
        let Some(active) = self.state.training.as_mut().filter(|a| a.run_id == run_id) else {
            return;
        };
        let Some(run) = self.state.project.runs.iter_mut().find(|r| r.id == run_id) else {
            return;
        };
        match event {
            TrainEvent::ReadingData {
                pass,
                passes,
                bytes_done,
                bytes_total,
            } => {
                active.reading = Some(ReadingProgress {
                    pass,
                    passes,
                    fraction: bytes_done as f32 / bytes_total.max(1) as f32,
                });
            }
            TrainEvent::CrossValidating { fold, folds } => active.cv_fold = Some((fold, folds)),
            TrainEvent::Downloading {
                file,
                bytes_done,
                bytes_total,
            } => {
                active.download = Some(crate::state::DownloadProgress {
                    file,
                    bytes_done,
                    bytes_total,
                });
            }
            TrainEvent::Started {
                device,
                epochs,
                steps_per_epoch,
                train_rows,
                ..
            } => {
                active.reading = None;
                active.download = None;
                run.device = device;
                run.epochs = epochs;
                active.epochs = epochs;
                active.steps_per_epoch = steps_per_epoch.max(1);
                active.train_rows = train_rows;
                active.steps_started = Some(Instant::now());
            }
            TrainEvent::Step { epoch, step, loss } => {
                let x =
                    (epoch.saturating_sub(1)) as f64 + step as f64 / active.steps_per_epoch as f64;
                run.step_losses.push([x, loss]);
                crate::decimate::compact_mean(&mut run.step_losses, 200_000);
                active.done_steps = (epoch.saturating_sub(1)) * active.steps_per_epoch + step;
            }
            TrainEvent::Metric {
                epoch,
                split,
                name,
                value,
            } => {
                run.history.push(wick_core::train::MetricPoint {
                    epoch,
                    split,
                    name,
                    value,
                });
            }
            TrainEvent::EpochFinished {
                samples_per_sec,
                epoch,
                ..
            } => {
                active.samples_per_sec = Some(samples_per_sec);
                active.done_steps = epoch * active.steps_per_epoch;
                // Save the curves once per epoch, so a crash loses at most one epoch of history.
                self.generation += 1;
            }
            TrainEvent::EarlyStopped { .. } | TrainEvent::Finished { .. } => {}
            TrainEvent::Failed { message } => run.status = RunStatus::Failed(message),
            TrainEvent::Cancelled => run.status = RunStatus::Cancelled,
        }
    }

    fn after_dataset_loaded(&mut self, path: &Path) {
        let sample = self
            .state
            .samples()
            .into_iter()
            .find(|(_, p)| p == path)
            .map(|(s, _)| s);
        let same_dataset = self
            .state
            .project
            .dataset
            .as_ref()
            .is_some_and(|d| d.path == path);
        if !same_dataset {
            self.state.project.dataset = Some(DatasetRef {
                path: path.to_path_buf(),
                sample: sample.map(|s| s.id.to_string()),
            });
            let mut model = crate::project::ModelChoice::default();
            if let Some(LoadedData::Table { summary, .. }) = self.state.loaded() {
                // Samples know their target; for other tables the last column is the usual convention.
                model.target = sample
                    .and_then(|s| s.target.map(str::to_string))
                    .or_else(|| summary.columns.last().map(|c| c.name.clone()));
                // IDs, names and constant columns can't carry over to new rows: start with them left
                // out (the Data screen says why); dates are used, as their parts.
                model.excluded_features = summary
                    .columns
                    .iter()
                    .filter(|c| c.advice.excluded_by_default())
                    .map(|c| c.name.clone())
                    .collect();
            }
            self.state.project.model = model;
            let images = self.state.loaded().is_some_and(LoadedData::is_images);
            let task = self.state.task().unwrap_or(Task::Regression);
            self.state.project.model.template = Template::default_for(images, task);
            self.state.project.train =
                default_train_config(images, self.state.project.model.template);
            self.state.project.publish.model_name = self.state.publish_name_default();
            // The new data stays on screen (its table, statistics and warnings come first); *Next:
            // choose a model* leads on.
        }
    }

    fn apply_commands(&mut self) {
        for command in self.commands.take() {
            self.apply(command);
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::GoTo(screen) => {
                tracing::info!(?screen, "screen shown");
                self.state.screen = screen;
                if screen == Screen::Publish
                    && self.state.publish.versions.is_none()
                    && !self.state.publish.versions_busy
                {
                    self.apply(Command::RefreshVersions);
                }
            }
            Command::OpenDataset(path) => {
                self.state.data = DataState::Loading(path.clone());
                // Live rows are rows of the table they were matched to.
                self.state.monitor.live = Default::default();
                self.view = screens::common::ViewState::default();
                self.jobs.load_dataset(
                    path,
                    (
                        self.state.config.stream_threshold_bytes,
                        self.state.config.stream_sample_rows,
                    ),
                );
            }
            Command::OpenSample(id) => {
                if let Some((_, path)) = self.state.samples().into_iter().find(|(s, _)| s.id == id)
                {
                    self.apply(Command::OpenDataset(path));
                }
            }
            Command::SetTarget(target) => {
                self.state
                    .project
                    .model
                    .excluded_features
                    .retain(|f| *f != target);
                self.state.project.model.target = Some(target);
                self.state.project.model.task_override = None;
                let images = self.state.loaded().is_some_and(LoadedData::is_images);
                if let Some(task) = self.state.task() {
                    if self
                        .state
                        .project
                        .model
                        .template
                        .fits(images, task)
                        .is_err()
                    {
                        self.state.project.model.template = Template::default_for(images, task);
                    }
                }
            }
            Command::ChooseTemplate(template) => {
                self.state.project.model.template = template;
                let images = self.state.loaded().is_some_and(LoadedData::is_images);
                self.state.project.train = default_train_config(images, template);
            }
            Command::StartTraining => self.start_training(),
            Command::FindBestModel => self.start_run(RunKind::Search {
                budget_secs: self.state.project.model.search_budget_secs.max(1.0),
            }),
            Command::TrainCandidate(candidate) => self.start_run(RunKind::Candidate(candidate)),
            Command::StopTraining => {
                if let Some(t) = &self.state.training {
                    t.cancel.cancel();
                }
            }
            Command::SelectRun(id) => {
                self.state.selected_run = Some(id);
                self.state.try_it = TryState::default();
            }
            Command::Publish => self.start_publish(
                self.state
                    .project
                    .publish
                    .canary
                    .then_some(crate::screens::publish::CANARY_PERCENT),
            ),
            Command::SendTestRequest => self.send_test_request(),
            Command::RefreshVersions => match self.state.endpoint() {
                Ok(endpoint) => {
                    self.state.publish.versions_busy = true;
                    self.jobs.list_versions(endpoint);
                }
                Err(e) => self.state.publish.versions = Some(Err(e)),
            },
            Command::Rollback { name, version } => match self.state.endpoint() {
                Ok(endpoint) => self.jobs.rollback(endpoint, name, version),
                Err(e) => self.state.publish.error = Some(e),
            },
            Command::SetTraffic { name, split } => match self.state.endpoint() {
                Ok(endpoint) => self.jobs.set_traffic(endpoint, name, split),
                Err(e) => self.state.publish.error = Some(e),
            },
            Command::RefreshMonitor => self.refresh_monitor(),
            Command::SetMonitorWindow(secs) => {
                self.state.monitor.window_secs = secs;
                self.state.monitor.history.clear();
                self.state.monitor.since = None;
                self.refresh_monitor();
            }
            Command::SetLogging { name, sample } => match self.state.endpoint() {
                Ok(endpoint) => self.jobs.set_logging(endpoint, name, sample),
                Err(e) => self.state.monitor.logging_error = Some(e),
            },
            Command::FetchLiveRows => self.fetch_live_rows(),
            Command::FetchLabelQueue => {
                let Some(name) = self.state.publish.last.as_ref().map(|p| p.name.clone()) else {
                    return;
                };
                match self.state.endpoint() {
                    Ok(endpoint) if !self.state.monitor.queue.busy => {
                        self.state.monitor.queue.busy = true;
                        self.jobs.label_queue(endpoint, name);
                    }
                    Ok(_) => {}
                    Err(e) => self.state.monitor.queue.result = Some(Err(e)),
                }
            }
            Command::SendFeedback { id, outcome } => {
                let Some(name) = self.state.publish.last.as_ref().map(|p| p.name.clone()) else {
                    return;
                };
                match self.state.endpoint() {
                    Ok(endpoint) => {
                        self.state.monitor.queue.sent.insert(id.clone(), None);
                        self.jobs.feedback(endpoint, name, id, outcome);
                    }
                    Err(e) => {
                        self.state.monitor.queue.sent.insert(id, Some(Err(e)));
                    }
                }
            }
            Command::TrainWithLiveRows => match self.state.monitor.live.result.take() {
                Some(Ok(live)) => {
                    let (base_run, rows) = (live.base_run, live.new.frame.clone());
                    self.state.monitor.live.result = Some(Ok(live));
                    self.start_run(RunKind::LiveRows { base_run, rows });
                }
                other => self.state.monitor.live.result = other,
            },
            Command::PublishCanary { run_id, percent } => {
                self.state.selected_run = Some(run_id);
                self.start_publish(Some(percent));
            }
            Command::TryRow(row) => self.try_with(TryInput::Row(row)),
            Command::TryImage(path) => self.try_with(TryInput::Image(path)),
            Command::RequestGridSaliency { run_id, paths } => {
                self.request_grid_saliency(run_id, paths)
            }
            Command::Host(request) => self.host_requests.push(request),
            Command::SetDark(dark) => {
                self.state.settings.dark = dark;
                if let Some(ctx) = self.waker.ctx() {
                    theme::set_dark(&ctx, dark);
                }
                self.save_settings();
            }
            Command::SetSettings { settings, save } => {
                self.state.settings = settings;
                if save {
                    self.save_settings();
                    // Another endpoint's versions are not this one's.
                    self.state.publish.versions = None;
                }
            }
            Command::SetModelChoice(choice) => self.state.project.model = choice,
            Command::SetPersonal { column, action } => {
                tracing::info!(%column, ?action, "personal data choice");
                self.state.project.model.personal.set(&column, action);
            }
            Command::SetTrainConfig(config) => self.state.project.train = config,
            Command::SetPublishForm(form) => self.state.project.publish = form,
            Command::SetCompared { run_id, compared } => {
                self.state.compare_runs.retain(|r| *r != run_id);
                if compared {
                    self.state.compare_runs.push(run_id);
                }
            }
            Command::ShowSettings(show) => self.state.show_settings = show,
            Command::ShowAbout(show) => self.state.show_about = show,
            Command::DismissNotice(i) => {
                if i < self.state.notices.len() {
                    self.state.notices.remove(i);
                }
            }
            Command::RequestFit { run_id, request } => self.request_fit(run_id, request),
            Command::PreviewAugment(augment) => {
                self.state.augment_preview = crate::state::AugmentPreview {
                    augment: Some(augment),
                    images: None,
                };
                let Some(LoadedData::Images { index }) = self.state.loaded() else {
                    return;
                };
                match index.samples().ok().and_then(|s| s.into_iter().next()) {
                    Some((path, _)) => self.jobs.augment_preview(
                        path,
                        index.default_shape(64),
                        augment,
                        self.state.project.train.seed,
                    ),
                    None => {
                        self.state.augment_preview.images =
                            Some(Err("the dataset has no images to preview".into()))
                    }
                }
            }
            Command::RequestImportance { run_id, rows } => {
                self.state.importance = ImportanceState {
                    run: Some(run_id),
                    view: None,
                };
                let Some(LoadedData::Table { df, .. }) = self.state.loaded() else {
                    return;
                };
                // The frame is shared (polars columns are reference-counted); the job picks the rows.
                let df = df.clone();
                match self.model_source(run_id) {
                    Ok(source) => self.jobs.importance(run_id, source, df, rows),
                    Err(e) => self.state.importance.view = Some(Err(e)),
                }
            }
            Command::Menu(event) => self.handle_host_event(event),
        }
    }

    fn save_settings(&mut self) {
        if let Err(e) = self.state.settings.save(&self.state.config.settings_path) {
            self.state.notices.push(e.to_string());
        }
    }

    fn start_training(&mut self) {
        self.start_run(RunKind::Current);
    }

    fn start_run(&mut self, kind: RunKind) {
        if self.state.training.is_some() {
            return;
        }
        let Some(data) = self.state.loaded().cloned() else {
            self.state.notices.push("Open a dataset first.".into());
            return;
        };
        let source = self
            .state
            .project
            .dataset
            .as_ref()
            .map(|d| d.path.clone())
            .unwrap_or_default();
        let base_run = match &kind {
            RunKind::LiveRows { base_run, .. } => {
                match self.state.project.runs.iter().find(|r| r.id == *base_run) {
                    Some(run) => Some(run.clone()),
                    None => {
                        self.state.monitor.live.result = Some(Err(format!(
                            "run {base_run}, the published one, is no longer in this project"
                        )));
                        return;
                    }
                }
            }
            _ => None,
        };
        let spec = match &kind {
            RunKind::LiveRows { .. } => Ok(base_run
                .as_ref()
                .map(|r| r.spec.clone())
                .unwrap_or_else(ModelSpec::default_gbdt)),
            RunKind::Candidate(c) => Ok(c.spec.clone()),
            // The search's run takes the best candidate's spec when it finishes.
            RunKind::Search { .. } if data.is_images() => {
                Err("Find the best model compares table models; this dataset is images".to_string())
            }
            RunKind::Search { .. } => Ok(ModelSpec::default_gbdt()),
            RunKind::Current => self.state.project.model.spec(self.state.image_shape()),
        };
        let spec = match spec {
            Ok(spec) => spec,
            Err(e) => {
                self.view.model_error = Some(e);
                self.state.screen = Screen::Model;
                return;
            }
        };
        if let Err(e) = crate::checks::validate(&self.state, &spec) {
            self.view.model_error = Some(e);
            self.state.screen = Screen::Model;
            return;
        }
        let request = match &data {
            LoadedData::Table { .. } => {
                // A retrain with live rows predicts what the run it improves on predicted.
                let target = base_run
                    .as_ref()
                    .and_then(|r| r.target.clone())
                    .or_else(|| self.state.project.model.target.clone());
                let Some(target) = target else {
                    self.view.model_error =
                        Some("Pick the column to predict (the target) first.".into());
                    self.state.screen = Screen::Model;
                    return;
                };
                Some(TabularRequest {
                    target,
                    features: Some(self.state.features()),
                    task: self.state.project.model.task_override,
                    options: PreprocessOptions {
                        missing: self.state.project.model.missing,
                        ..PreprocessOptions::default()
                    },
                    personal: self.state.project.model.personal.clone(),
                })
            }
            LoadedData::Images { .. } => None,
        };
        self.view.model_error = None;
        let run_id = self
            .state
            .project
            .runs
            .iter()
            .map(|r| r.id)
            .max()
            .unwrap_or(0)
            + 1;
        let package = self
            .state
            .config
            .project_dir
            .join("packages")
            .join(format!("run-{run_id}.wick"));
        let config = match (&kind, &base_run) {
            (RunKind::LiveRows { .. }, Some(base)) => base.config.clone(),
            (RunKind::Candidate(c), _) => c.config(&self.state.project.train),
            _ => self.state.project.train.clone(),
        };
        let template = match &kind {
            RunKind::Current => self.state.project.model.template,
            RunKind::LiveRows { .. } => base_run
                .as_ref()
                .map(|r| r.template)
                .unwrap_or_else(|| Template::of(&spec)),
            RunKind::Candidate(_) | RunKind::Search { .. } => Template::of(&spec),
        };
        let name = match &kind {
            RunKind::Search { .. } => format!("Run {run_id} · Find the best model"),
            RunKind::LiveRows { rows, .. } => format!(
                "Run {run_id} · {} + {} live rows",
                template.title(),
                rows.height()
            ),
            // The leaderboard's name carries the settings it was ranked with.
            RunKind::Candidate(c) => format!("Run {run_id} · {}", c.name),
            _ => format!("Run {run_id} · {}", template.title()),
        };
        self.state.project.runs.push(RunRecord {
            id: run_id,
            name,
            template,
            spec: spec.clone(),
            config: config.clone(),
            target: request
                .as_ref()
                .map(|r| r.target.clone())
                .or_else(|| self.state.project.model.target.clone()),
            status: RunStatus::Running,
            device: String::new(),
            epochs: config.epochs,
            step_losses: Vec::new(),
            history: Vec::new(),
            test_metrics: None,
            test_samples: Vec::new(),
            package: None,
            duration_secs: 0.0,
            cv: None,
            leaderboard: matches!(kind, RunKind::Search { .. }).then(Vec::new),
            rows_used: None,
            live_rows: match &kind {
                RunKind::LiveRows { base_run, rows } => Some(crate::project::LiveRowsRun {
                    base_run: *base_run,
                    rows: rows.height(),
                }),
                _ => None,
            },
            dataset: self.state.project.dataset.as_ref().map(|d| d.path.clone()),
        });
        let cv_folds = if matches!(data, LoadedData::Table { .. })
            && !matches!(kind, RunKind::LiveRows { .. })
        {
            self.state.project.model.cv_folds
        } else {
            0
        };
        let cancel = CancelToken::new();
        self.state.training = Some(ActiveTraining {
            run_id,
            cancel: cancel.clone(),
            started: Instant::now(),
            epochs: config.epochs,
            steps_per_epoch: 1,
            done_steps: 0,
            samples_per_sec: None,
            train_rows: 0,
            steps_started: None,
            cv_fold: None,
            reading: None,
            download: None,
            search: match kind {
                RunKind::Search { budget_secs } => Some(SearchProgress {
                    budget_secs,
                    tried: 0,
                    current: String::new(),
                    finalising: false,
                }),
                _ => None,
            },
        });
        self.state.selected_run = Some(run_id);
        self.generation += 1;
        self.state.screen = Screen::Train;
        // A Hub backbone (a spec without a weights file yet) downloads in the job, before it trains.
        let download = match &spec {
            ModelSpec::Transfer { backbone } if backbone.weights.as_os_str().is_empty() => self
                .state
                .project
                .model
                .backbone
                .hub()
                .map(|b| (b, self.state.config.hub.clone())),
            _ => None,
        };
        match (kind, data, request) {
            (RunKind::Search { budget_secs }, LoadedData::Table { df, .. }, Some(request)) => {
                self.jobs.search(
                    run_id,
                    df,
                    source,
                    request,
                    config,
                    budget_secs,
                    package,
                    cancel,
                )
            }
            (kind, data, request) => {
                let live_rows = match kind {
                    RunKind::LiveRows { rows, .. } => Some(rows),
                    _ => None,
                };
                self.jobs.train(TrainOrder {
                    run_id,
                    data,
                    source,
                    request,
                    spec,
                    config,
                    // Live rows train on the earlier run's split: no folds, nothing to download.
                    cv_folds: if live_rows.is_some() { 0 } else { cv_folds },
                    package,
                    download: if live_rows.is_some() { None } else { download },
                    live_rows,
                    cancel,
                })
            }
        }
    }

    /// Publishes the selected run; with `canary_percent` it takes that share of the calls and the
    /// serving version keeps the rest.
    fn start_publish(&mut self, canary_percent: Option<u32>) {
        let Some(run) = self.state.selected_run_record() else {
            self.state.publish.error =
                Some("Train a model first: there is nothing to publish yet.".into());
            return;
        };
        let Some(package) = run.package.clone() else {
            self.state.publish.error = Some(format!(
                "{} has no saved model (it did not finish); train again.",
                run.name
            ));
            return;
        };
        let run_id = run.id;
        let endpoint = match self.state.endpoint() {
            Ok(e) => e,
            Err(e) => {
                self.state.publish.error = Some(e);
                return;
            }
        };
        let mut name = sanitize_model_name(&self.state.project.publish.model_name);
        if name.is_empty() {
            name = self.state.publish_name_default();
        }
        self.state.project.publish.model_name = name.clone();
        self.state.publish.busy = true;
        self.state.publish.error = None;
        let options = wick_core::publish::PublishOptions {
            canary_percent,
            replace_inputs: false,
        };
        self.jobs.publish(
            run_id,
            endpoint,
            package,
            name,
            self.state.project.publish.notes.clone(),
            options,
        );
    }

    /// Asks the endpoint for the published model's logged requests with feedback, as rows of the
    /// open table.
    fn fetch_live_rows(&mut self) {
        let live = &mut self.state.monitor.live;
        if live.busy {
            return;
        }
        let Some(last) = self.state.publish.last.clone() else {
            live.result = Some(Err("Publish a model first.".into()));
            return;
        };
        let Some(LoadedData::Table { df, .. }) = self.state.loaded().cloned() else {
            self.state.monitor.live.result = Some(Err(
                "Open the table the published model was trained on; live rows are added to it."
                    .into(),
            ));
            return;
        };
        let Some(target) = self
            .state
            .project
            .runs
            .iter()
            .find(|r| r.id == last.run_id)
            .and_then(|r| r.target.clone())
        else {
            self.state.monitor.live.result = Some(Err(format!(
                "run {} (the published one) is not a table model in this project",
                last.run_id
            )));
            return;
        };
        match self.state.endpoint() {
            Ok(endpoint) => {
                self.state.monitor.live.busy = true;
                self.jobs
                    .fetch_live_rows(endpoint, last.name, last.run_id, df, target);
            }
            Err(e) => self.state.monitor.live.result = Some(Err(e)),
        }
    }

    fn send_test_request(&mut self) {
        let Some(last) = self.state.publish.last.clone() else {
            return;
        };
        let endpoint = match self.state.endpoint() {
            Ok(e) => e,
            Err(e) => {
                self.state.publish.test_response = Some(Err(e));
                return;
            }
        };
        let which = self.state.publish.next_test_row;
        self.state.publish.next_test_row += 1;
        let source = match crate::requests::request_source(&self.state, last.run_id, which) {
            Ok(source) => source,
            Err(e) => {
                self.state.publish.test_response = Some(Err(e));
                return;
            }
        };
        self.state.publish.test_busy = true;
        self.jobs.test_request(endpoint, last.name, source);
    }

    /// Asks a job for the Publish screen's curl and Python snippets of `record` (they read the
    /// package's manifest and may decode a photo, so not on the UI thread).
    fn request_snippets(&mut self, record: &PublishedRecord) {
        self.state.publish.snippets = None;
        if let Ok(source) = crate::requests::request_source(&self.state, record.run_id, 0) {
            self.jobs.snippets(record.clone(), source);
        }
    }

    /// Where a run's trained model is: in memory since training or a job loaded it, else its package.
    fn model_source(&self, run_id: u32) -> Result<ModelSource, String> {
        if let Some(model) = self.state.models.get(&run_id) {
            return Ok(ModelSource::Loaded(model.clone()));
        }
        let run = self
            .state
            .project
            .runs
            .iter()
            .find(|r| r.id == run_id)
            .ok_or("This run is no longer in the project; pick another run on the Train screen.")?;
        let package = run
            .package
            .clone()
            .ok_or("This run has no saved model (it did not finish); train it again.")?;
        Ok(ModelSource::Package(package))
    }

    /// Starts computing the fit plot of `run_id` over `request.feature`, replacing any earlier one.
    pub fn request_fit(&mut self, run_id: u32, request: FitRequest) {
        self.state.fit = FitState {
            key: Some((run_id, request.feature.clone())),
            view: None,
        };
        match self.model_source(run_id) {
            Ok(source) => self.jobs.fit_view(run_id, source, request),
            Err(e) => self.state.fit.view = Some(Err(e)),
        }
    }

    /// Asks the endpoint for the published model's live figures (one request at a time).
    fn refresh_monitor(&mut self) {
        let Some(name) = self.state.publish.last.as_ref().map(|p| p.name.clone()) else {
            return;
        };
        self.state.monitor.asked = Some(Instant::now());
        match self.state.endpoint() {
            Ok(endpoint) if !self.state.monitor.busy => {
                self.state.monitor.busy = true;
                self.jobs
                    .monitor(endpoint, name, self.state.monitor.window_secs);
            }
            Ok(_) => {}
            Err(e) => self.state.monitor.report = Some(Err(e)),
        }
    }

    /// Starts saliency overlays for those of `paths` not yet asked for; another run's are dropped.
    fn request_grid_saliency(&mut self, run_id: u32, paths: Vec<PathBuf>) {
        let grid = &mut self.state.grid_saliency;
        if grid.run != Some(run_id) {
            *grid = crate::state::GridSaliency {
                run: Some(run_id),
                ..Default::default()
            };
        }
        let fresh: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| grid.requested.insert(p.clone()))
            .collect();
        if fresh.is_empty() {
            return;
        }
        match self.model_source(run_id) {
            Ok(source) => self.jobs.grid_saliency(run_id, source, fresh),
            Err(e) => self.state.grid_saliency.error = Some(e),
        }
    }

    fn try_with(&mut self, input: TryInput) {
        let Some(run_id) = self.state.selected_run else {
            self.state.try_it.result = Some(Err("Train a model first.".into()));
            return;
        };
        match self.model_source(run_id) {
            Ok(source) => {
                self.state.try_it.busy = true;
                self.jobs.try_it(run_id, source, input);
            }
            Err(e) => self.state.try_it.result = Some(Err(e)),
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
