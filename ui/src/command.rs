//! What widgets ask for: [`Command`]s, queued in a [`Commands`] during the frame and carried out by
//! the app after it, in one place.

use std::path::PathBuf;

use crate::host::{HostEvent, HostRequest};
use crate::jobs::FitRequest;
use crate::project::{ModelChoice, PublishForm, Template};
use crate::settings::Settings;
use crate::state::Screen;

/// Side effects asked for by widgets; the app applies them after the frame is drawn (`WickApp::apply`).
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    GoTo(Screen),
    OpenDataset(PathBuf),
    OpenSample(&'static str),
    SetTarget(String),
    ChooseTemplate(Template),
    StartTraining,
    /// Try the templates that fit the table within the Model screen's budget; the best becomes the run.
    FindBestModel,
    /// Train a leaderboard row's model as a new run, with the settings it was ranked with.
    TrainCandidate(wick_core::train::Candidate),
    StopTraining,
    SelectRun(u32),
    Publish,
    SendTestRequest,
    RefreshVersions,
    Rollback {
        name: String,
        version: u64,
    },
    /// Split the model's unversioned calls between versions by percent (a canary).
    SetTraffic {
        name: String,
        split: std::collections::BTreeMap<u64, u32>,
    },
    /// Ask the endpoint for the published model's live figures (the Monitor screen).
    RefreshMonitor,
    SetMonitorWindow(f64),
    /// Log this share of the model's requests on the endpoint (0: off).
    SetLogging {
        name: String,
        sample: f64,
    },
    /// Fetch the published model's logged requests that have feedback, as new rows of the dataset.
    FetchLiveRows,
    /// Fetch the published model's logged requests that wait for a label (the label queue).
    FetchLabelQueue,
    /// Send a person's label for a logged request as its feedback.
    SendFeedback {
        id: String,
        outcome: serde_json::Value,
    },
    /// Train the published run's model again on the dataset and the fetched live rows.
    TrainWithLiveRows,
    /// Publish a run and send it `percent` of the calls, the serving version the rest.
    PublishCanary {
        run_id: u32,
        percent: u32,
    },
    TryRow(serde_json::Map<String, serde_json::Value>),
    /// Compute the permutation importance of a run on these rows (its test rows) of the open table.
    RequestImportance {
        run_id: u32,
        rows: Vec<usize>,
    },
    TryImage(PathBuf),
    /// Compute saliency overlays of these test images of a run (Evaluate's sample grid).
    RequestGridSaliency {
        run_id: u32,
        paths: Vec<PathBuf>,
    },
    Host(HostRequest),
    SetDark(bool),
    /// The Settings window's edits; saved to disk when `save` (a field was committed).
    SetSettings {
        settings: Settings,
        save: bool,
    },
    /// The Model screen's edits of the model choice (target, features, template settings, layers).
    SetModelChoice(ModelChoice),
    /// Drop or hash a column of personal data before training (`None`: keep it as it is).
    SetPersonal {
        column: String,
        action: Option<wick_core::data::PersonalAction>,
    },
    /// The Model screen's training settings.
    SetTrainConfig(wick_core::train::TrainConfig),
    /// The Publish screen's name and notes.
    SetPublishForm(PublishForm),
    /// Overlay (or stop overlaying) a run's curves on the Train screen.
    SetCompared {
        run_id: u32,
        compared: bool,
    },
    ShowSettings(bool),
    ShowAbout(bool),
    DismissNotice(usize),
    /// Make the Model screen's preview of these augmentations on a training image.
    PreviewAugment(wick_core::data::Augment),
    /// Compute the Evaluate screen's fit plot for a run.
    RequestFit {
        run_id: u32,
        request: FitRequest,
    },
    /// A menu item of the UI-drawn menus (same as the host's native menu).
    Menu(HostEvent),
}

/// The queue screens send commands into.
#[derive(Default)]
pub struct Commands(Vec<Command>);

impl Commands {
    pub fn send(&mut self, command: Command) {
        self.0.push(command);
    }

    pub fn take(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.0)
    }
}
