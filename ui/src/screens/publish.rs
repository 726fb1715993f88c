//! Publish: one button puts the trained model on an endpoint; then the URL, ready-to-paste snippets, a
//! live test request, and the versions with rollback.

use egui::RichText;

use crate::command::Command;
use crate::project::RunStatus;
use crate::screens::common::{empty_state, error_label, ScreenCtx};
use crate::state::{AppState, Screen};
use crate::theme;

/// The share of calls a canary takes when it goes out.
pub const CANARY_PERCENT: u32 = 10;

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.heading("Publish");
    let Some(run) = state
        .selected_run_record()
        .filter(|r| r.status == RunStatus::Finished && r.package.is_some())
        .cloned()
    else {
        empty_state(
            ui,
            "Train a model first; then publish it here with one click.",
            |ui| {
                if ui.button("Go to Model").clicked() {
                    cx.send(Command::GoTo(Screen::Model));
                }
            },
        );
        return;
    };
    let endpoint = state.endpoint();
    theme::card(ui).show(ui, |ui| {
        ui.set_width(ui.available_width());
        egui::Grid::new("publish_form")
            .num_columns(2)
            .spacing([12.0, 8.0])
            .show(ui, |ui| {
                ui.label("Model");
                ui.label(RichText::new(&run.name).strong());
                ui.end_row();
                ui.label("Endpoint");
                match &endpoint {
                    Ok(e) => {
                        let kind = if state.settings.use_remote {
                            "remote"
                        } else {
                            "built-in, on this computer"
                        };
                        ui.label(format!("{} ({kind})", e.url));
                    }
                    Err(e) => {
                        ui.colored_label(theme::BAD, e);
                    }
                }
                ui.end_row();
                if let Ok(e) = &endpoint {
                    ui.label("Token");
                    token_row(state, ui, &e.token);
                    ui.end_row();
                }
                // Edited on a copy that goes back as a command.
                let mut form = state.project.publish.clone();
                ui.label("Name");
                ui.add(
                    egui::TextEdit::singleline(&mut form.model_name)
                        .hint_text("my-model")
                        .desired_width(260.0),
                );
                ui.end_row();
                ui.label("Notes");
                ui.add(
                    egui::TextEdit::singleline(&mut form.notes)
                        .hint_text("what changed in this version")
                        .desired_width(420.0),
                );
                ui.end_row();
                // A canary needs a version already serving under this name, and no canary running.
                let serving = serving_under(state, &form.model_name);
                if let Some(serving) = serving {
                    ui.label("");
                    ui.checkbox(
                        &mut form.canary,
                        format!(
                            "Publish as a canary: {}% of calls, v{serving} keeps the rest",
                            CANARY_PERCENT
                        ),
                    )
                    .on_hover_text(
                        "Watch both on Monitor, then Promote the canary or End it on this screen",
                    );
                    ui.end_row();
                } else {
                    form.canary = false;
                }
                if form != state.project.publish {
                    cx.send(Command::SetPublishForm(form));
                }
            });
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let button = egui::Button::new(RichText::new("⬆  Publish").size(16.0).strong())
                .fill(theme::ACCENT.gamma_multiply(0.45));
            if ui
                .add_enabled(!state.publish.busy && endpoint.is_ok(), button)
                .clicked()
            {
                cx.send(Command::Publish);
            }
            if state.publish.busy {
                ui.spinner();
                ui.label("Uploading…");
            }
        });
        if let Some(e) = &state.publish.error {
            error_label(ui, e);
        }
    });
    if let Some(last) = state.publish.last.clone() {
        published(cx, ui, &last);
    }
    versions(cx, ui);
}

fn published(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, last: &crate::project::PublishedRecord) {
    let state = cx.state;
    theme::section(ui, "Live");
    // A canary answers only its share of the unversioned calls: say so.
    let role = state
        .publish
        .versions
        .as_ref()
        .and_then(|v| v.as_ref().ok())
        .and_then(|models| models.iter().find(|m| m.name == last.name))
        .map(|m| version_roles(m).role(last.version));
    let live = match role {
        Some(Role::Canary { percent }) => format!(
            "✓ {} version {} is live as a canary: {percent}% of calls",
            last.name, last.version
        ),
        _ => format!("✓ {} version {} is live", last.name, last.version),
    };
    ui.horizontal(|ui| {
        ui.colored_label(theme::GOOD, RichText::new(live).strong());
    });
    ui.horizontal(|ui| {
        ui.label(RichText::new(&last.infer_url).monospace());
        if ui.button("Copy URL").clicked() {
            ui.ctx().copy_text(last.infer_url.clone());
        }
    });
    if let Some((curl, python)) = state.publish.snippets.clone() {
        snippet(ui, "curl", &curl);
        snippet(ui, "Python (pip install 'tritonclient[http]')", &python);
        ui.label(RichText::new("Both read the token from the WICK_TOKEN environment variable: Copy token above, then run export WICK_TOKEN=<paste> in the terminal.").small().weak());
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(
                !state.publish.test_busy,
                egui::Button::new("Send test request"),
            )
            .clicked()
        {
            cx.send(Command::SendTestRequest);
        }
        if state.publish.test_busy {
            ui.spinner();
        }
    });
    match &state.publish.test_response {
        Some(Ok(body)) => {
            ui.label(RichText::new("Response").strong());
            let mut text = body.clone();
            ui.add(
                egui::TextEdit::multiline(&mut text)
                    .code_editor()
                    .desired_rows(6)
                    .desired_width(f32::INFINITY)
                    .interactive(false),
            );
        }
        Some(Err(e)) => error_label(ui, e),
        None => {}
    }
}

/// The endpoint's token, masked, with a button that copies it and where it is kept.
fn token_row(state: &AppState, ui: &mut egui::Ui, token: &str) {
    ui.horizontal(|ui| {
        if token.is_empty() {
            ui.label(RichText::new("none (the endpoint takes requests without one)").weak());
            return;
        }
        ui.label(RichText::new(mask_token(token)).monospace());
        if ui
            .button("Copy token")
            .on_hover_text("The snippets read it from WICK_TOKEN")
            .clicked()
        {
            ui.ctx().copy_text(token.to_string());
        }
        let kept = if state.settings.use_remote {
            format!(
                "kept in Settings ({})",
                state.config.settings_path.display()
            )
        } else {
            match &state.config.embedded_token_file {
                Some(path) => format!("kept in {}, readable only by you", path.display()),
                None => "made by the built-in endpoint when it started".into(),
            }
        };
        ui.label(RichText::new(kept).small().weak());
    });
}

/// A token as dots: its length hints which one it is without showing any of it.
pub fn mask_token(token: &str) -> String {
    "•".repeat(token.chars().count().clamp(8, 24))
}

fn snippet(ui: &mut egui::Ui, title: &str, code: &str) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(title).strong());
        if ui
            .small_button(format!(
                "Copy {}",
                title.split_whitespace().next().unwrap_or(title)
            ))
            .clicked()
        {
            ui.ctx().copy_text(code.to_string());
        }
    });
    let mut text = code.to_string();
    ui.add(
        egui::TextEdit::multiline(&mut text)
            .code_editor()
            .desired_rows(3)
            .desired_width(f32::INFINITY)
            .interactive(false),
    );
}

fn versions(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    theme::section(ui, "Versions on the endpoint");
    ui.horizontal(|ui| {
        if ui.button("Refresh").clicked() {
            cx.send(Command::RefreshVersions);
        }
        if state.publish.versions_busy {
            ui.spinner();
        }
    });
    let name = state.project.publish.model_name.clone();
    match &state.publish.versions {
        None => {
            ui.label(RichText::new("Press Refresh to list what the endpoint serves.").weak());
        }
        Some(Err(e)) => error_label(ui, e),
        Some(Ok(models)) => {
            let Some(model) = models.iter().find(|m| m.name == name) else {
                ui.label(RichText::new(format!("Nothing is published as {name} yet.")).weak());
                return;
            };
            let roles = version_roles(model);
            let mut rollback = None;
            let mut canary = None;
            egui::Grid::new("versions").striped(true).num_columns(6).show(ui, |ui| {
                for h in ["Version", "Published", "Size", "Notes", "", ""] {
                    ui.label(RichText::new(h).small().strong());
                }
                ui.end_row();
                for v in model.versions.iter().rev() {
                    ui.label(format!("v{}", v.version));
                    ui.label(published_ago(v.created_at, chrono::Utc::now())).on_hover_text(v.created_at.to_rfc3339());
                    ui.label(format!("{:.1} kB", v.size_bytes as f64 / 1024.0));
                    ui.label(&v.notes);
                    let role = roles.role(v.version);
                    match role {
                        Role::Serving { percent: Some(p) } => ui.colored_label(theme::GOOD, format!("serving {p}%")),
                        Role::Serving { percent: None } => ui.colored_label(theme::GOOD, "serving"),
                        Role::Canary { percent } => ui.colored_label(theme::VALID_COLOUR, format!("canary {percent}%")),
                        Role::Idle => ui.label(""),
                    };
                    ui.horizontal(|ui| {
                        let (text, hover) = match role {
                            Role::Serving { percent: None } => (None, ""),
                            Role::Serving { percent: Some(_) } => (Some(format!("End canary, serve v{}", v.version)), "Send every call to this version again; the canary stops answering"),
                            Role::Canary { .. } => (Some(format!("Promote v{}", v.version)), "Send every call to the canary: it becomes the serving version"),
                            Role::Idle if roles.stable.is_some_and(|s| v.version < s) => (Some(format!("Roll back to v{}", v.version)), "Make this the version every call goes to (ends a canary)"),
                            Role::Idle => (Some(format!("Serve v{}", v.version)), "Make this the version every call goes to (ends a canary)"),
                        };
                        if let Some(text) = text {
                            if ui.button(text).on_hover_text(hover).clicked() {
                                rollback = Some(v.version);
                            }
                        }
                        if let (Some(stable), false, Role::Idle) = (roles.stable, roles.split, role) {
                            let percent = CANARY_PERCENT;
                            if ui.button(format!("Canary v{} at {percent}%", v.version)).on_hover_text(format!("Send {percent}% of calls to v{} and {}% to v{stable}; watch both, then promote or end it", v.version, 100 - percent)).clicked() {
                                canary = Some((stable, v.version, percent));
                            }
                        }
                    });
                    ui.end_row();
                }
            });
            if let Some(version) = rollback {
                cx.send(Command::Rollback {
                    name: name.clone(),
                    version,
                });
            }
            if let Some((serving, new, percent)) = canary {
                cx.send(Command::SetTraffic {
                    name,
                    split: [(serving, 100 - percent), (new, percent)]
                        .into_iter()
                        .collect(),
                });
            }
        }
    }
}

/// The version the endpoint serves under `name`, by the last version list, while no canary runs.
fn serving_under(state: &AppState, name: &str) -> Option<u64> {
    let name = crate::project::sanitize_model_name(name);
    let models = state.publish.versions.as_ref()?.as_ref().ok()?;
    let model = models.iter().find(|m| m.name == name)?;
    let roles = version_roles(model);
    (!roles.split).then_some(roles.stable).flatten()
}

/// What a version does for the model's unversioned calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Answers every call (`percent` is `None`), or the largest share of a split.
    Serving {
        percent: Option<u32>,
    },
    /// Answers a smaller share of a split beside the serving version.
    Canary {
        percent: u32,
    },
    Idle,
}

/// Every version's role. In a split the serving version is the one with the largest share (the
/// older on a tie), whichever the default is: the endpoint draws split calls by share alone, and
/// an older Wick left the canary as the default.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionRoles {
    pub stable: Option<u64>,
    pub split: bool,
    shares: std::collections::BTreeMap<u64, u32>,
}

impl VersionRoles {
    pub fn role(&self, version: u64) -> Role {
        match (self.shares.get(&version), Some(version) == self.stable) {
            (Some(&p), true) => Role::Serving { percent: Some(p) },
            (None, true) => Role::Serving { percent: None },
            (Some(&p), false) => Role::Canary { percent: p },
            (None, false) => Role::Idle,
        }
    }
}

pub fn version_roles(model: &wick_core::wire::ModelListing) -> VersionRoles {
    let shares = model.traffic.clone().unwrap_or_default();
    VersionRoles {
        stable: model.serving_version(),
        split: !shares.is_empty(),
        shares,
    }
}

/// "just now", "5 min ago", "3 h ago", or the date for older versions.
pub fn published_ago(
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let secs = (now - at).num_seconds().max(0);
    match secs {
        0..60 => "just now".into(),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86_400 => format!("{} h ago", secs / 3600),
        _ => at.format("%Y-%m-%d").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(
        default_version: Option<u64>,
        traffic: Option<&[(u64, u32)]>,
    ) -> wick_core::wire::ModelListing {
        serde_json::from_value(serde_json::json!({
            "name": "m",
            "default_version": default_version,
            "public": false,
            "versions": [],
            "traffic": traffic.map(|t| t.iter().map(|(v, p)| (v.to_string(), *p)).collect::<std::collections::BTreeMap<_, _>>()),
        }))
        .unwrap()
    }

    #[test]
    fn the_largest_share_serves_and_the_smaller_is_the_canary_whatever_the_default() {
        // What an older Wick left after "Publish as a canary": default v3, split {2: 90, 3: 10}.
        // The screen called v3 "serving 10%" and v2 "canary 90%".
        let roles = version_roles(&listing(Some(3), Some(&[(2, 90), (3, 10)])));
        assert_eq!(roles.role(2), Role::Serving { percent: Some(90) });
        assert_eq!(roles.role(3), Role::Canary { percent: 10 });
        assert_eq!(roles.role(1), Role::Idle);
        assert_eq!(roles.stable, Some(2));
        // What this Wick leaves: the serving version stays the default.
        let roles = version_roles(&listing(Some(2), Some(&[(2, 90), (3, 10)])));
        assert_eq!(
            (roles.role(2), roles.role(3)),
            (
                Role::Serving { percent: Some(90) },
                Role::Canary { percent: 10 }
            )
        );
        // A 50/50 split: the older serves.
        assert_eq!(
            version_roles(&listing(Some(3), Some(&[(2, 50), (3, 50)]))).stable,
            Some(2)
        );
        // No split: the default serves everything.
        let roles = version_roles(&listing(Some(3), None));
        assert_eq!(
            (roles.role(3), roles.role(2), roles.split),
            (Role::Serving { percent: None }, Role::Idle, false)
        );
    }

    #[test]
    fn versions_show_how_long_ago_they_were_published() {
        let now = chrono::Utc::now();
        assert_eq!(published_ago(now, now), "just now");
        assert_eq!(
            published_ago(now - chrono::Duration::minutes(5), now),
            "5 min ago"
        );
        assert_eq!(
            published_ago(now - chrono::Duration::hours(3), now),
            "3 h ago"
        );
        assert_eq!(
            published_ago(now - chrono::Duration::days(3), now).len(),
            10
        );
    }
}
