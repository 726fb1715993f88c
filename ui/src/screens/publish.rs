//! Publish: one button puts the trained model on an endpoint; then the URL, ready-to-paste snippets, a
//! live test request, and the versions with rollback.

use egui::RichText;

use crate::command::Command;
use crate::state::{AppState, Screen};
use crate::project::RunStatus;
use crate::screens::common::{empty_state, error_label, ScreenCtx};
use crate::theme;

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.heading("Publish");
    let Some(run) = state.selected_run_record().filter(|r| r.status == RunStatus::Finished && r.package.is_some()).cloned() else {
        empty_state(ui, "Train a model first; then publish it here with one click.", |ui| {
            if ui.button("Go to Model").clicked() {
                cx.send(Command::GoTo(Screen::Model));
            }
        });
        return;
    };
    let endpoint = state.endpoint();
    theme::card(ui).show(ui, |ui| {
        ui.set_width(ui.available_width());
        egui::Grid::new("publish_form").num_columns(2).spacing([12.0, 8.0]).show(ui, |ui| {
            ui.label("Model");
            ui.label(RichText::new(&run.name).strong());
            ui.end_row();
            ui.label("Endpoint");
            match &endpoint {
                Ok(e) => {
                    let kind = if state.settings.use_remote { "remote" } else { "built-in, on this computer" };
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
            ui.add(egui::TextEdit::singleline(&mut form.model_name).hint_text("my-model").desired_width(260.0));
            ui.end_row();
            ui.label("Notes");
            ui.add(egui::TextEdit::singleline(&mut form.notes).hint_text("what changed in this version").desired_width(420.0));
            ui.end_row();
            if form != state.project.publish {
                cx.send(Command::SetPublishForm(form));
            }
        });
        ui.add_space(6.0);
        ui.horizontal(|ui| {
            let button = egui::Button::new(RichText::new("⬆  Publish").size(16.0).strong()).fill(theme::ACCENT.gamma_multiply(0.45));
            if ui.add_enabled(!state.publish.busy && endpoint.is_ok(), button).clicked() {
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
    ui.horizontal(|ui| {
        ui.colored_label(theme::GOOD, RichText::new(format!("✓ {} version {} is live", last.name, last.version)).strong());
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
        if ui.add_enabled(!state.publish.test_busy, egui::Button::new("Send test request")).clicked() {
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
            ui.add(egui::TextEdit::multiline(&mut text).code_editor().desired_rows(6).desired_width(f32::INFINITY).interactive(false));
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
        if ui.button("Copy token").on_hover_text("The snippets read it from WICK_TOKEN").clicked() {
            ui.ctx().copy_text(token.to_string());
        }
        let kept = if state.settings.use_remote {
            format!("kept in Settings ({})", state.config.settings_path.display())
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
        if ui.small_button(format!("Copy {}", title.split_whitespace().next().unwrap_or(title))).clicked() {
            ui.ctx().copy_text(code.to_string());
        }
    });
    let mut text = code.to_string();
    ui.add(egui::TextEdit::multiline(&mut text).code_editor().desired_rows(3).desired_width(f32::INFINITY).interactive(false));
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
            let default = model.default_version;
            let mut rollback = None;
            let mut canary = None;
            let split = model.traffic.as_ref();
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
                    let share = split.and_then(|s| s.get(&v.version));
                    match (share, Some(v.version) == default) {
                        (Some(p), true) => ui.colored_label(theme::GOOD, format!("serving {p}%")),
                        (Some(p), false) => ui.colored_label(theme::VALID_COLOUR, format!("canary {p}%")),
                        (None, true) if split.is_none() => ui.colored_label(theme::GOOD, "serving"),
                        _ => ui.label(""),
                    };
                    ui.horizontal(|ui| {
                        if Some(v.version) != default || split.is_some() {
                            let older = default.is_some_and(|d| v.version < d);
                            let text = match (share.is_some() && Some(v.version) != default, older, Some(v.version) == default) {
                                (true, _, _) => format!("Promote v{}", v.version),
                                (_, _, true) => format!("End canary, serve v{}", v.version),
                                (_, true, _) => format!("Roll back to v{}", v.version),
                                _ => format!("Serve v{}", v.version),
                            };
                            if ui.button(text).on_hover_text("Make this the default for every call (ends a canary)").clicked() {
                                rollback = Some(v.version);
                            }
                        }
                        if let (Some(d), None, true) = (default, split, Some(v.version) != default) {
                            if ui.button(format!("Canary v{} at 10%", v.version)).on_hover_text(format!("Send 10% of calls to v{} and 90% to v{d}; watch both, then promote or end it", v.version)).clicked() {
                                canary = Some((d, v.version));
                            }
                        }
                    });
                    ui.end_row();
                }
            });
            if let Some(version) = rollback {
                cx.send(Command::Rollback { name: name.clone(), version });
            }
            if let Some((serving, new)) = canary {
                cx.send(Command::SetTraffic { name, split: [(serving, 90), (new, 10)].into_iter().collect() });
            }
        }
    }
}

/// "just now", "5 min ago", "3 h ago", or the date for older versions.
pub fn published_ago(at: chrono::DateTime<chrono::Utc>, now: chrono::DateTime<chrono::Utc>) -> String {
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

    #[test]
    fn versions_show_how_long_ago_they_were_published() {
        let now = chrono::Utc::now();
        assert_eq!(published_ago(now, now), "just now");
        assert_eq!(published_ago(now - chrono::Duration::minutes(5), now), "5 min ago");
        assert_eq!(published_ago(now - chrono::Duration::hours(3), now), "3 h ago");
        assert_eq!(published_ago(now - chrono::Duration::days(3), now).len(), 10);
    }
}
