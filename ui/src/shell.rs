//! The window around the screens: top bar (with File and Help menus when the host has none), step
//! list, status bar, notices, the Settings and About windows, and the drop overlay. The one module
//! that knows every screen.

use egui::{Align2, Color32, RichText};

use crate::command::{Command, Commands};
use crate::host::{HostEvent, HostRequest};
use crate::project::RunStatus;
use crate::screens::common::{ScreenCtx, ViewState};
use crate::screens::{data, evaluate, model, monitor, publish, train};
use crate::state::{AppState, Screen};
use crate::theme;
use crate::thumbnails::Thumbnails;

/// The whole window: a top bar, a step list on the left, the current screen in the middle.
pub fn shell(
    state: &AppState,
    view: &mut ViewState,
    thumbnails: &mut Thumbnails,
    commands: &mut Commands,
    ui: &mut egui::Ui,
) {
    let cx = &mut ScreenCtx {
        state,
        view,
        thumbnails,
        commands,
    };
    egui::Panel::top("top_bar").show(ui, |ui| top_bar(cx, ui));
    egui::Panel::bottom("status_bar").show(ui, |ui| status_bar(cx, ui));
    egui::Panel::left("steps")
        .resizable(false)
        .default_size(176.0)
        .show(ui, |ui| steps(cx, ui));
    egui::CentralPanel::default().show(ui, |ui| {
        notices(cx, ui);
        egui::ScrollArea::vertical()
            .id_salt(state.screen.title())
            .auto_shrink([false, false])
            .show(ui, |ui| match state.screen {
                Screen::Data => data::ui(cx, ui),
                Screen::Model => model::ui(cx, ui),
                Screen::Train => train::ui(cx, ui),
                Screen::Evaluate => evaluate::ui(cx, ui),
                Screen::Publish => publish::ui(cx, ui),
                Screen::Monitor => monitor::ui(cx, ui),
            });
    });
    settings_window(cx, ui.ctx());
    about_window(cx, ui.ctx());
    drop_overlay(ui.ctx());
}

/// File and Help menus for hosts without a native menu, with the same shortcuts the native one has.
fn menus(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    use egui::{Key, KeyboardShortcut, Modifiers};
    let shortcut = |key| KeyboardShortcut::new(Modifiers::COMMAND, key);
    let (open, open_project, save, export, quit) = (
        shortcut(Key::O),
        KeyboardShortcut::new(Modifiers::COMMAND | Modifiers::SHIFT, Key::O),
        shortcut(Key::S),
        shortcut(Key::E),
        shortcut(Key::Q),
    );
    let ctx = ui.ctx().clone();
    let mut event = None;
    // Check the longer shortcut first: Ctrl+Shift+O also matches Ctrl+O.
    if ctx.input_mut(|i| i.consume_shortcut(&open_project)) {
        cx.send(Command::Host(HostRequest::PickProject));
    } else if ctx.input_mut(|i| i.consume_shortcut(&open)) {
        event = Some(HostEvent::OpenDatasetDialog);
    }
    if ctx.input_mut(|i| i.consume_shortcut(&save)) {
        event = Some(HostEvent::Save);
    }
    if ctx.input_mut(|i| i.consume_shortcut(&export)) {
        event = Some(HostEvent::ExportModel);
    }
    if ctx.input_mut(|i| i.consume_shortcut(&quit)) {
        cx.send(Command::Host(HostRequest::Quit));
    }
    ui.menu_button("File", |ui| {
        let item = |ui: &mut egui::Ui, text: &str, s: &KeyboardShortcut| {
            ui.add(egui::Button::new(text).shortcut_text(ui.ctx().format_shortcut(s)))
                .clicked()
        };
        if item(ui, "Open dataset…", &open) {
            event = Some(HostEvent::OpenDatasetDialog);
        }
        if item(ui, "Open project…", &open_project) {
            cx.send(Command::Host(HostRequest::PickProject));
        }
        if item(ui, "Save", &save) {
            event = Some(HostEvent::Save);
        }
        if item(ui, "Export model…", &export) {
            event = Some(HostEvent::ExportModel);
        }
        if ui.button("Export model as ONNX…").clicked() {
            event = Some(HostEvent::ExportOnnx);
        }
        ui.separator();
        if item(ui, "Quit", &quit) {
            cx.send(Command::Host(HostRequest::Quit));
        }
    });
    ui.menu_button("Help", |ui| {
        if ui.button("About Wick").clicked() {
            event = Some(HostEvent::About);
        }
    });
    if let Some(e) = event {
        cx.send(Command::Menu(e));
    }
}

fn top_bar(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.horizontal(|ui| {
        ui.add_space(4.0);
        if !state.config.native_menu {
            menus(cx, ui);
            ui.separator();
        }
        ui.label(
            RichText::new("Wick")
                .family(theme::strong_family())
                .size(18.0)
                .color(theme::ACCENT),
        );
        if let Some(d) = &state.project.dataset {
            ui.separator();
            ui.label(
                RichText::new(
                    d.path
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                )
                .weak(),
            );
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Settings").clicked() {
                cx.send(Command::ShowSettings(!state.show_settings));
            }
            let dark = state.settings.dark;
            if ui
                .button(if dark { "Light mode" } else { "Dark mode" })
                .on_hover_text("Switch the colour theme")
                .clicked()
            {
                cx.send(Command::SetDark(!dark));
            }
            match (state.save_status.error.as_deref(), state.save_status.saved) {
                (Some(e), _) => {
                    ui.colored_label(theme::BAD, "⚠ Not saved")
                        .on_hover_text(e.to_string());
                }
                (None, true) => {
                    ui.label(RichText::new("✓ Saved").weak())
                        .on_hover_text(state.config.project_dir.display().to_string());
                }
                (None, false) => {
                    ui.label(RichText::new("Saving…").weak());
                }
            }
        });
    });
}

fn status_bar(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.horizontal(|ui| {
        let endpoint = match state.endpoint() {
            Ok(e) => format!("Endpoint: {}", e.url),
            Err(_) => "Endpoint: not available".into(),
        };
        ui.label(RichText::new(endpoint).small().weak());
        if let Some(t) = &state.training {
            ui.separator();
            let run = state.project.runs.iter().find(|r| r.id == t.run_id);
            ui.spinner();
            ui.label(
                RichText::new(format!(
                    "Training on {}",
                    run.map(|r| r.device.as_str()).unwrap_or("")
                ))
                .small(),
            );
        }
    });
}

fn steps(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.add_space(10.0);
    for (i, screen) in Screen::ALL.into_iter().enumerate() {
        let done = match screen {
            Screen::Data => state.loaded().is_some(),
            Screen::Model => {
                state.project.model.target.is_some()
                    || state.loaded().is_some_and(|d| d.is_images())
            }
            Screen::Train => state
                .project
                .runs
                .iter()
                .any(|r| r.status == RunStatus::Finished),
            Screen::Evaluate => state
                .selected_run_record()
                .is_some_and(|r| r.test_metrics.is_some()),
            Screen::Publish => state.publish.last.is_some(),
            Screen::Monitor => state
                .monitor
                .report
                .as_ref()
                .is_some_and(|r| r.as_ref().is_ok_and(|r| !r.versions.is_empty())),
        };
        ui.horizontal(|ui| {
            let mark = if done {
                RichText::new("✓").color(theme::GOOD)
            } else {
                RichText::new(format!("{}", i + 1)).weak()
            };
            ui.add_sized([18.0, 30.0], egui::Label::new(mark));
            let text = RichText::new(screen.title()).size(15.0);
            let text = if state.screen == screen {
                text.family(theme::strong_family())
            } else {
                text
            };
            if ui
                .add_sized(
                    [136.0, 30.0],
                    egui::Button::selectable(state.screen == screen, text),
                )
                .clicked()
            {
                cx.send(Command::GoTo(screen));
            }
        });
    }
    ui.add_space(16.0);
    ui.separator();
    ui.label(
        RichText::new("Your project is saved automatically.")
            .small()
            .weak(),
    );
}

fn notices(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    let mut dismiss = None;
    for (i, n) in state.notices.iter().enumerate() {
        egui::Frame::new()
            .fill(theme::ACCENT.gamma_multiply(0.18))
            .corner_radius(6.0)
            .inner_margin(8.0)
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.label(n);
                    if ui.small_button("Dismiss").clicked() {
                        dismiss = Some(i);
                    }
                });
            });
    }
    if let Some(i) = dismiss {
        cx.send(Command::DismissNotice(i));
    }
}

fn settings_window(cx: &mut ScreenCtx<'_>, ctx: &egui::Context) {
    let state = cx.state;
    let mut open = state.show_settings;
    // Edited on a copy; every change goes back as a command, saved once a field is committed.
    let mut settings = state.settings.clone();
    let mut commit = false;
    let mut pick_project = false;
    egui::Window::new("Settings")
        .open(&mut open)
        .resizable(false)
        .collapsible(false)
        .pivot(Align2::CENTER_TOP)
        .default_pos(window_spot(ctx))
        .show(ctx, |ui| {
            ui.label(RichText::new("Publishing endpoint").strong());
            commit |= ui
                .radio_value(
                    &mut settings.use_remote,
                    false,
                    "Built-in endpoint on this computer",
                )
                .changed();
            if let Some(e) = &state.config.embedded_endpoint {
                ui.label(RichText::new(format!("   {}", e.url)).small().weak());
            }
            commit |= ui
                .radio_value(&mut settings.use_remote, true, "Remote endpoint")
                .changed();
            ui.add_enabled_ui(settings.use_remote, |ui| {
                egui::Grid::new("remote").num_columns(2).show(ui, |ui| {
                    ui.label("URL");
                    commit |= ui
                        .add(
                            egui::TextEdit::singleline(&mut settings.remote_url)
                                .hint_text("https://models.example.com"),
                        )
                        .lost_focus();
                    ui.end_row();
                    ui.label("Token");
                    commit |= ui
                        .add(egui::TextEdit::singleline(&mut settings.remote_token).password(true))
                        .lost_focus();
                    ui.end_row();
                });
            });
            ui.add_space(6.0);
            ui.label(
                RichText::new(format!(
                    "Project folder: {}",
                    state.config.project_dir.display()
                ))
                .small()
                .weak(),
            );
            pick_project = ui.button("Open another project…").clicked();
        });
    if commit || settings != state.settings {
        cx.send(Command::SetSettings {
            settings,
            save: commit,
        });
    }
    if pick_project {
        cx.send(Command::Host(HostRequest::PickProject));
    }
    if open != state.show_settings {
        cx.send(Command::ShowSettings(open));
    }
}

/// Where a window first opens: centred, below the top bar (egui's default corner put it over the
/// File menu).
fn window_spot(ctx: &egui::Context) -> egui::Pos2 {
    ctx.content_rect().center_top() + egui::vec2(0.0, 90.0)
}

fn about_window(cx: &mut ScreenCtx<'_>, ctx: &egui::Context) {
    let mut open = cx.state.show_about;
    egui::Window::new("About Wick").open(&mut open).resizable(false).collapsible(false).pivot(Align2::CENTER_TOP).default_pos(window_spot(ctx)).show(ctx, |ui| {
        ui.heading("Wick");
        ui.label(format!("Version {}", env!("CARGO_PKG_VERSION")));
        ui.label("Train models on your own data and publish them to an Open Inference Protocol endpoint.");
        ui.label(RichText::new("Font: Inter (SIL Open Font License 1.1)").small().weak());
    });
    if open != cx.state.show_about {
        cx.send(Command::ShowAbout(open));
    }
}

/// While files are dragged over the window: dim it and say what a drop will do.
fn drop_overlay(ctx: &egui::Context) {
    let hovered: Vec<String> = ctx.input(|i| {
        i.raw
            .hovered_files
            .iter()
            .map(|f| {
                f.path
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default()
            })
            .collect()
    });
    if hovered.is_empty() {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop_overlay"),
    ));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(160));
    painter.rect_stroke(
        rect.shrink(12.0),
        12.0,
        egui::Stroke::new(3.0, theme::ACCENT),
        egui::StrokeKind::Inside,
    );
    let names = hovered
        .iter()
        .filter(|n| !n.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    let text = if names.is_empty() {
        "Drop to open".to_string()
    } else {
        format!("Drop to open {names}")
    };
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        text,
        egui::FontId::proportional(24.0),
        Color32::WHITE,
    );
}
