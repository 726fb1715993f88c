//! Starting the work a command asks for: training runs, publishing, test requests, the Monitor's
//! figures, Evaluate's fit plot and saliency, Try it.

use super::*;

impl WickApp {
    pub(super) fn start_training(&mut self) {
        self.start_run(RunKind::Current);
    }

    pub(super) fn start_run(&mut self, kind: RunKind) {
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
        let target = request
            .as_ref()
            .map(|r| r.target.clone())
            .or_else(|| self.state.project.model.target.clone());
        self.state.project.runs.push(RunRecord {
            leaderboard: matches!(kind, RunKind::Search { .. }).then(Vec::new),
            live_rows: match &kind {
                RunKind::LiveRows { base_run, rows } => Some(crate::project::LiveRowsRun {
                    base_run: *base_run,
                    rows: rows.height(),
                }),
                _ => None,
            },
            dataset: self.state.project.dataset.as_ref().map(|d| d.path.clone()),
            ..RunRecord::started(run_id, name, template, spec.clone(), config.clone(), target)
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
                self.jobs.search(SearchOrder {
                    run_id,
                    df,
                    source,
                    request,
                    config,
                    budget_secs,
                    package,
                    cancel,
                })
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
    pub(super) fn start_publish(&mut self, canary_percent: Option<u32>) {
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
    pub(super) fn fetch_live_rows(&mut self) {
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

    pub(super) fn send_test_request(&mut self) {
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
    pub(super) fn request_snippets(&mut self, record: &PublishedRecord) {
        self.state.publish.snippets = None;
        if let Ok(source) = crate::requests::request_source(&self.state, record.run_id, 0) {
            self.jobs.snippets(record.clone(), source);
        }
    }

    /// Where a run's trained model is: in memory since training or a job loaded it, else its package.
    pub(super) fn model_source(&self, run_id: u32) -> Result<ModelSource, String> {
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
    pub(super) fn refresh_monitor(&mut self) {
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
    pub(super) fn request_grid_saliency(&mut self, run_id: u32, paths: Vec<PathBuf>) {
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

    pub(super) fn try_with(&mut self, input: TryInput) {
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
}
