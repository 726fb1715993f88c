//! Every Wick screen, drawn with egui and host-agnostic: the Tauri desktop host and the egui_kittest
//! tests drive the same [`WickApp`]. Engine work runs on background threads ([`jobs`]); widgets only
//! queue [`app::Command`]s, which take effect in one place after each frame.

pub mod app;
pub mod decimate;
pub mod host;
pub mod jobs;
pub mod project;
pub mod requests;
pub mod samples;
pub mod screens;
pub mod settings;
pub mod theme;
pub mod thumbnails;

pub use app::{Command, Screen, WickApp};
pub use host::{AppConfig, HostEvent, HostRequest};
pub use jobs::EndpointTarget;
