//! Where the desktop app keeps things (from `directories`), and where it finds the sample datasets.

use std::path::PathBuf;

use anyhow::Context;
use tauri::Manager;

pub struct AppPaths {
    /// The project the app opens: `project.json` and trained packages.
    pub project_dir: PathBuf,
    /// Theme and remote endpoint (with its token): per user, never inside a project.
    pub settings: PathBuf,
    pub window_state: PathBuf,
    /// The embedded endpoint's model store and token hashes.
    pub serve_dir: PathBuf,
    /// The local publish/infer token for the embedded endpoint (mode 0600).
    pub endpoint_token: PathBuf,
}

impl AppPaths {
    /// The user's data and config folders, or everything under `$WICK_HOME` when it is set (tests and
    /// portable installs).
    pub fn resolve() -> anyhow::Result<Self> {
        let (data, config) = match std::env::var_os("WICK_HOME") {
            Some(home) => {
                let home = PathBuf::from(home);
                (home.join("data"), home.join("config"))
            }
            None => {
                let dirs = directories::ProjectDirs::from("dev", "Wick", "wick").context(
                    "this system has no home folder for Wick's data; set WICK_HOME to a folder",
                )?;
                (
                    dirs.data_dir().to_path_buf(),
                    dirs.config_dir().to_path_buf(),
                )
            }
        };
        Ok(Self {
            project_dir: data.join("projects").join("default"),
            settings: config.join("settings.json"),
            window_state: config.join("window.json"),
            serve_dir: data.join("endpoint"),
            endpoint_token: config.join("endpoint-token"),
        })
    }

    /// `$WICK_SAMPLES_DIR`, the bundle's resources, or the repository's `sample-data/` for builds run
    /// from a checkout.
    pub fn samples_dir<R: tauri::Runtime>(&self, app: &tauri::App<R>) -> Option<PathBuf> {
        let candidates = [
            std::env::var_os("WICK_SAMPLES_DIR").map(PathBuf::from),
            app.path()
                .resource_dir()
                .ok()
                .map(|d| d.join("sample-data")),
            Some(PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../sample-data"
            ))),
        ];
        candidates
            .into_iter()
            .flatten()
            .find(|d| d.join("seattle-weather.csv").is_file())
    }
}
