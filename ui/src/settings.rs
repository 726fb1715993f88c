//! App settings kept outside the project: theme and the remote endpoint (whose token must never end
//! up in a project folder someone might share).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::project::{write_atomic, ProjectError};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub dark: bool,
    /// Publish to `remote_url` instead of the built-in endpoint.
    pub use_remote: bool,
    pub remote_url: String,
    pub remote_token: String,
}

impl Settings {
    /// Reads settings; a missing or unreadable file gives the defaults.
    pub fn load(path: &Path) -> Self {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> Result<(), ProjectError> {
        let bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        write_atomic(path, &bytes)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(())
    }
}
