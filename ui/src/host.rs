//! What the UI needs from whatever hosts it (the Tauri desktop app, or a test harness), and what it
//! asks of it. The UI never opens windows, dialogs or sockets itself.

use std::path::PathBuf;

use crate::loaded::EndpointTarget;

/// How the host sets the app up.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Where `project.json` and trained packages live.
    pub project_dir: PathBuf,
    /// Where `settings.json` lives (theme, remote endpoint and its token; never inside the project).
    pub settings_path: PathBuf,
    /// The folder with Wick's sample datasets, if the host found it.
    pub samples_dir: Option<PathBuf>,
    /// The endpoint server the host runs in-process, if it started.
    pub embedded_endpoint: Option<EndpointTarget>,
    /// Why the embedded endpoint is missing, to show on the Publish screen.
    pub embedded_endpoint_error: Option<String>,
    /// The file that keeps the embedded endpoint's token (shown on the Publish screen).
    pub embedded_token_file: Option<PathBuf>,
    /// The host shows a native menu; when false the UI draws File and Help menus itself (and
    /// handles their keyboard shortcuts).
    pub native_menu: bool,
    /// CSV files larger than this open by streaming: statistics of every row, and a seeded sample
    /// of at most `stream_sample_rows` rows as the frame to show and train on.
    pub stream_threshold_bytes: u64,
    pub stream_sample_rows: usize,
    /// Where pretrained backbones download from and are kept; `None` where the system has no
    /// cache folder (transfer learning then says so).
    pub hub: Option<wick_core::hub::HubClient>,
    /// What the host wants the person to know at start (the endpoint moved to another port, …).
    pub startup_notices: Vec<String>,
}

/// Things only the host can do; the UI queues them and the host drains them after each frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRequest {
    /// A native file dialog for a dataset (file or folder).
    PickDataset {
        folder: bool,
    },
    /// A folder dialog for another project.
    PickProject,
    /// A save dialog for exporting the model; the name's extension (`.wick` or `.onnx`) is the format.
    PickExportPath {
        suggested_name: String,
    },
    /// A file dialog for pretrained backbone weights.
    PickBackbone,
    /// A file dialog for an image to show the model (Evaluate → Try it).
    PickTryImage,
    Quit,
}

/// The host's answers and menu commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    OpenDataset(PathBuf),
    OpenProject(PathBuf),
    ExportTo(PathBuf),
    BackboneChosen(PathBuf),
    TryImageChosen(PathBuf),
    /// Menu: File → Save (the project is saved continuously; this forces it now).
    Save,
    /// Menu: File → Export model… (a Wick package)
    ExportModel,
    /// Menu: File → Export model as ONNX…
    ExportOnnx,
    /// Menu: File → Open dataset…
    OpenDatasetDialog,
    /// Menu: Help → About.
    About,
}
