//! How the app takes each background job's event: the state it changes, and the follow-up work
//! it starts.

use super::*;
use crate::job_error::JobError;

/// A job's result as the screens keep it: the error's text, which says what to do.
fn shown<T>(result: Result<T, JobError>) -> Result<T, String> {
    result.map_err(|e| e.to_string())
}

impl WickApp {
    pub(super) fn on_job_event(&mut self, event: JobEvent) {
        match event {
            JobEvent::LoadProgress { path, fraction } => {
                if matches!(&self.state.data, DataState::Loading(p) if *p == path) {
                    self.state.load_progress = Some(fraction);
                }
            }
            JobEvent::DatasetLoaded { path, result } => self.on_dataset_loaded(path, result),
            JobEvent::Train { run_id, event } => self.on_train_event(run_id, event),
            JobEvent::Search { run_id, event } => self.on_search_event(run_id, event),
            JobEvent::TrainDone { run_id, result } => self.on_train_done(run_id, result),
            JobEvent::Published {
                run_id,
                endpoint,
                result,
            } => self.on_published(run_id, endpoint, result),
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
                    Some(shown(result).map(|new| crate::state::LiveRows { base_run, new }));
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
                    queue.result = Some(shown(result));
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
                    .insert(id, Some(shown(result).map(|()| outcome)));
            }
            JobEvent::TestResponse { result } => {
                tracing::info!(ok = result.is_ok(), "test request answered");
                self.state.publish.test_busy = false;
                self.state.publish.test_response = Some(shown(result));
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
                self.state.publish.versions = Some(shown(result));
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
                m.report = Some(shown(result));
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
                        self.state.try_it.result = Some(Err(e.to_string()));
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
                        Err(e) => grid.error = Some(e.to_string()),
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
                    self.state.importance.view = Some(shown(result));
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
                    self.state.fit.view = Some(shown(result));
                }
            }
            JobEvent::AugmentPreview { augment, result } => {
                if self.state.augment_preview.augment == Some(augment) {
                    self.state.augment_preview.images = Some(shown(result));
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

    /// A dataset finished loading (or failed); a stale load is ignored.
    fn on_dataset_loaded(&mut self, path: PathBuf, result: Result<LoadedData, JobError>) {
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
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "dataset not loaded");
                self.state.data = DataState::Failed {
                    path,
                    message: error.to_string(),
                };
            }
        }
    }

    /// News from *Find the best model*: the candidate in training, and each one done.
    fn on_search_event(&mut self, run_id: u32, event: SearchEvent) {
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
                if let Some(run) = self.state.project.runs.iter_mut().find(|r| r.id == run_id) {
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

    /// A run ended: its record takes the report, its model is kept, or it failed or was cancelled.
    fn on_train_done(
        &mut self,
        run_id: u32,
        result: Result<Box<crate::jobs::TrainDone>, JobError>,
    ) {
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
            Err(error) => {
                tracing::info!(run = run_id, %error, "run did not finish");
                // Stop pressed during a download ends the run with the download's error.
                let cancelled =
                    error.is_cancelled() || active.is_some_and(|a| a.cancel.is_cancelled());
                run.status = if cancelled {
                    RunStatus::Cancelled
                } else {
                    RunStatus::Failed(error.to_string())
                };
            }
        }
    }

    /// A version was published (or refused): the Publish screen shows it, and the project keeps it.
    fn on_published(
        &mut self,
        run_id: u32,
        endpoint: String,
        result: Result<(wick_core::wire::Published, String), JobError>,
    ) {
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
                self.state.publish.error = Some(e.to_string());
            }
        }
    }

    pub(super) fn on_train_event(&mut self, run_id: u32, event: TrainEvent) {
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

    pub(super) fn after_dataset_loaded(&mut self, path: &Path) {
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
            self.state.project.model.template =
                Template::default_for(self.state.input_kind(), task);
            self.state.project.train =
                default_train_config(images, self.state.project.model.template);
            self.state.project.publish.model_name = self.state.publish_name_default();
            // The new data stays on screen (its table, statistics and warnings come first); *Next:
            // choose a model* leads on.
        }
    }
}
