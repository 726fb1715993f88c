//! Commands take effect here, after the frame that queued them: the one place (besides job events)
//! where the state changes.

use super::*;

impl WickApp {
    pub(super) fn apply_commands(&mut self) {
        for command in self.commands.take() {
            self.apply(command);
        }
    }

    pub(super) fn apply(&mut self, command: Command) {
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
                let input = self.state.input_kind();
                if let Some(task) = self.state.task() {
                    if self.state.project.model.template.fits(input, task).is_err() {
                        self.state.project.model.template = Template::default_for(input, task);
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

    pub(super) fn save_settings(&mut self) {
        if let Err(e) = self.state.settings.save(&self.state.config.settings_path) {
            self.state.notices.push(e.to_string());
        }
    }
}
