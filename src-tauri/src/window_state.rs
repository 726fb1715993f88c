//! The main window's size and position, remembered between runs.

use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// Logical (DPI-independent) pixels.
    pub width: f64,
    pub height: f64,
    pub x: Option<f64>,
    pub y: Option<f64>,
    pub maximized: bool,
}

impl Default for WindowState {
    fn default() -> Self {
        Self {
            width: 1280.0,
            height: 820.0,
            x: None,
            y: None,
            maximized: false,
        }
    }
}

impl WindowState {
    /// The saved state, or the default when there is none or it is unusable.
    pub fn load(path: &Path) -> Self {
        let state: Self = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        if state.width < 400.0
            || state.height < 300.0
            || !state.width.is_finite()
            || !state.height.is_finite()
        {
            return Self::default();
        }
        state
    }

    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        wick_ui::project::write_atomic(path, &bytes)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_rejects_nonsense() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("window.json");
        assert_eq!(WindowState::load(&path), WindowState::default());
        let s = WindowState {
            width: 900.0,
            height: 700.0,
            x: Some(10.0),
            y: Some(20.0),
            maximized: false,
        };
        s.save(&path).unwrap();
        assert_eq!(WindowState::load(&path), s);
        std::fs::write(
            &path,
            br#"{"width": 3, "height": 2, "x": null, "y": null, "maximized": false}"#,
        )
        .unwrap();
        assert_eq!(WindowState::load(&path), WindowState::default());
    }
}
