//! Every Wick screen, drawn with egui and host-agnostic: the Tauri desktop host and the egui_kittest
//! tests drive the same [`WickApp`]. Engine work runs on background threads ([`jobs`]). Screens read
//! the [`state::AppState`] and queue [`command::Command`]s, which take effect in one place after
//! each frame; only the shell (`shell`) knows every screen, and no screen knows the app.

pub mod app;
pub mod checks;
pub mod command;
pub mod decimate;
pub mod host;
pub mod job_error;
pub mod jobs;
pub mod loaded;
pub mod project;
pub mod requests;
pub mod samples;
pub mod screens;
pub mod settings;
pub mod shell;
pub mod state;
pub mod theme;
pub mod thumbnails;
pub mod waker;

pub use app::{Command, Screen, WickApp};
pub use host::{AppConfig, HostEvent, HostRequest};
pub use loaded::EndpointTarget;
