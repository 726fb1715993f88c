//! The five screens and the shell around them (step list, status bar, settings, drop overlay).

pub mod data;
pub mod evaluate;
pub mod model;
pub mod publish;
pub mod train;

use egui::{Align2, Color32, RichText};

use crate::app::{Command, DataState, Screen, WickApp};
use crate::host::{HostEvent, HostRequest};
use crate::project::RunStatus;
use crate::theme;

/// Screen-local view state that is not part of the saved project.
#[derive(Default)]
pub struct ViewState {
    /// The column whose histogram the Data screen shows.
    pub selected_column: Option<usize>,
    /// Why training could not start (shown on the Model screen next to the Train button).
    pub model_error: Option<String>,
    /// A confusion-matrix cell (actual, predicted) the sample list is filtered to.
    pub cm_filter: Option<(usize, usize)>,
    pub mistakes_only: bool,
    /// The feature the regression fit plot uses.
    pub eval_feature: Option<String>,
    /// Which CNN layer's editor is open.
    pub editing_layer: Option<usize>,
}

/// The whole window: a top bar, a step list on the left, the current screen in the middle.
pub fn shell(app: &mut WickApp, ui: &mut egui::Ui) {
    egui::Panel::top("top_bar").show(ui, |ui| top_bar(app, ui));
    egui::Panel::bottom("status_bar").show(ui, |ui| status_bar(app, ui));
    egui::Panel::left("steps").resizable(false).default_size(176.0).show(ui, |ui| steps(app, ui));
    egui::CentralPanel::default().show(ui, |ui| {
        notices(app, ui);
        egui::ScrollArea::vertical().id_salt(app.screen.title()).auto_shrink([false, false]).show(ui, |ui| {
            match app.screen {
                Screen::Data => data::ui(app, ui),
                Screen::Model => model::ui(app, ui),
                Screen::Train => train::ui(app, ui),
                Screen::Evaluate => evaluate::ui(app, ui),
                Screen::Publish => publish::ui(app, ui),
            }
        });
    });
    settings_window(app, ui.ctx());
    about_window(app, ui.ctx());
    drop_overlay(ui.ctx());
}

/// File and Help menus for hosts without a native menu, with the same shortcuts the native one has.
fn menus(app: &mut WickApp, ui: &mut egui::Ui) {
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
        app.command(Command::Host(HostRequest::PickProject));
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
        app.command(Command::Host(HostRequest::Quit));
    }
    ui.menu_button("File", |ui| {
        let item = |ui: &mut egui::Ui, text: &str, s: &KeyboardShortcut| {
            ui.add(egui::Button::new(text).shortcut_text(ui.ctx().format_shortcut(s))).clicked()
        };
        if item(ui, "Open dataset…", &open) {
            event = Some(HostEvent::OpenDatasetDialog);
        }
        if item(ui, "Open project…", &open_project) {
            app.command(Command::Host(HostRequest::PickProject));
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
            app.command(Command::Host(HostRequest::Quit));
        }
    });
    ui.menu_button("Help", |ui| {
        if ui.button("About Wick").clicked() {
            event = Some(HostEvent::About);
        }
    });
    if let Some(e) = event {
        app.handle_host_event(e);
    }
}

fn top_bar(app: &mut WickApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.add_space(4.0);
        if !app.config.native_menu {
            menus(app, ui);
            ui.separator();
        }
        ui.label(RichText::new("Wick").family(theme::strong_family()).size(18.0).color(theme::ACCENT));
        if let Some(d) = &app.project.dataset {
            ui.separator();
            ui.label(RichText::new(d.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default()).weak());
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui.button("Settings").clicked() {
                app.show_settings = !app.show_settings;
            }
            let dark = app.settings.dark;
            if ui.button(if dark { "Light mode" } else { "Dark mode" }).on_hover_text("Switch the colour theme").clicked() {
                app.command(Command::SetDark(!dark));
            }
            match (app.save_error(), app.is_saved()) {
                (Some(e), _) => {
                    ui.colored_label(theme::BAD, "⚠ Not saved").on_hover_text(e.to_string());
                }
                (None, true) => {
                    ui.label(RichText::new("✓ Saved").weak()).on_hover_text(app.config.project_dir.display().to_string());
                }
                (None, false) => {
                    ui.label(RichText::new("Saving…").weak());
                }
            }
        });
    });
}

fn status_bar(app: &mut WickApp, ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        let endpoint = match app.endpoint() {
            Ok(e) => format!("Endpoint: {}", e.url),
            Err(_) => "Endpoint: not available".into(),
        };
        ui.label(RichText::new(endpoint).small().weak());
        if let Some(t) = &app.training {
            ui.separator();
            let run = app.project.runs.iter().find(|r| r.id == t.run_id);
            ui.spinner();
            ui.label(RichText::new(format!("Training on {}", run.map(|r| r.device.as_str()).unwrap_or(""))).small());
        }
    });
}

fn steps(app: &mut WickApp, ui: &mut egui::Ui) {
    ui.add_space(10.0);
    for (i, screen) in Screen::ALL.into_iter().enumerate() {
        let done = match screen {
            Screen::Data => app.loaded().is_some(),
            Screen::Model => app.project.model.target.is_some() || app.loaded().is_some_and(|d| d.is_images()),
            Screen::Train => app.project.runs.iter().any(|r| r.status == RunStatus::Finished),
            Screen::Evaluate => app.selected_run_record().is_some_and(|r| r.test_metrics.is_some()),
            Screen::Publish => app.publish.last.is_some(),
        };
        ui.horizontal(|ui| {
            let mark = if done { RichText::new("✓").color(theme::GOOD) } else { RichText::new(format!("{}", i + 1)).weak() };
            ui.add_sized([18.0, 30.0], egui::Label::new(mark));
            let text = RichText::new(screen.title()).size(15.0);
            let text = if app.screen == screen { text.family(theme::strong_family()) } else { text };
            if ui.add_sized([136.0, 30.0], egui::Button::selectable(app.screen == screen, text)).clicked() {
                app.command(Command::GoTo(screen));
            }
        });
    }
    ui.add_space(16.0);
    ui.separator();
    ui.label(RichText::new("Your project is saved automatically.").small().weak());
}

fn notices(app: &mut WickApp, ui: &mut egui::Ui) {
    let mut dismiss = None;
    for (i, n) in app.notices.iter().enumerate() {
        egui::Frame::new().fill(theme::ACCENT.gamma_multiply(0.18)).corner_radius(6.0).inner_margin(8.0).show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(n);
                if ui.small_button("Dismiss").clicked() {
                    dismiss = Some(i);
                }
            });
        });
    }
    if let Some(i) = dismiss {
        app.notices.remove(i);
    }
}

fn settings_window(app: &mut WickApp, ctx: &egui::Context) {
    let mut open = app.show_settings;
    let mut changed = false;
    egui::Window::new("Settings").open(&mut open).resizable(false).collapsible(false).show(ctx, |ui| {
        ui.label(RichText::new("Publishing endpoint").strong());
        changed |= ui.radio_value(&mut app.settings.use_remote, false, "Built-in endpoint on this computer").changed();
        if let Some(e) = &app.config.embedded_endpoint {
            ui.label(RichText::new(format!("   {}", e.url)).small().weak());
        }
        changed |= ui.radio_value(&mut app.settings.use_remote, true, "Remote endpoint").changed();
        ui.add_enabled_ui(app.settings.use_remote, |ui| {
            egui::Grid::new("remote").num_columns(2).show(ui, |ui| {
                ui.label("URL");
                changed |= ui
                    .add(egui::TextEdit::singleline(&mut app.settings.remote_url).hint_text("https://models.example.com"))
                    .lost_focus();
                ui.end_row();
                ui.label("Token");
                changed |= ui.add(egui::TextEdit::singleline(&mut app.settings.remote_token).password(true)).lost_focus();
                ui.end_row();
            });
        });
        ui.add_space(6.0);
        ui.label(RichText::new(format!("Project folder: {}", app.config.project_dir.display())).small().weak());
        if ui.button("Open another project…").clicked() {
            app.command(Command::Host(HostRequest::PickProject));
        }
    });
    if changed {
        app.command(Command::SaveSettings);
        app.publish.versions = None;
    }
    app.show_settings = open;
}

fn about_window(app: &mut WickApp, ctx: &egui::Context) {
    let mut open = app.show_about;
    egui::Window::new("About Wick").open(&mut open).resizable(false).collapsible(false).show(ctx, |ui| {
        ui.heading("Wick");
        ui.label(format!("Version {}", env!("CARGO_PKG_VERSION")));
        ui.label("Train models on your own data and publish them to an Open Inference Protocol endpoint.");
        ui.label(RichText::new("Font: Inter (SIL Open Font License 1.1)").small().weak());
    });
    app.show_about = open;
}

/// While files are dragged over the window: dim it and say what a drop will do.
fn drop_overlay(ctx: &egui::Context) {
    let hovered: Vec<String> = ctx.input(|i| {
        i.raw
            .hovered_files
            .iter()
            .map(|f| f.path.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()).unwrap_or_default())
            .collect()
    });
    if hovered.is_empty() {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(egui::Order::Foreground, egui::Id::unique("drop_overlay")));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(160));
    painter.rect_stroke(rect.shrink(12.0), 12.0, egui::Stroke::new(3.0, theme::ACCENT), egui::StrokeKind::Inside);
    let names = hovered.iter().filter(|n| !n.is_empty()).cloned().collect::<Vec<_>>().join(", ");
    let text = if names.is_empty() { "Drop to open".to_string() } else { format!("Drop to open {names}") };
    painter.text(rect.center(), Align2::CENTER_CENTER, text, egui::FontId::proportional(24.0), Color32::WHITE);
}

/// A short description of the data state for empty screens.
pub fn need_data(app: &mut WickApp, ui: &mut egui::Ui, what: &str) -> bool {
    if app.loaded().is_some() {
        return false;
    }
    empty_state(ui, &format!("Open a dataset to {what}."), |ui| {
        if let DataState::Loading(p) = &app.data {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Loading {}…", p.display()));
            });
        } else if ui.button("Go to Data").clicked() {
            app.command(Command::GoTo(Screen::Data));
        }
    });
    true
}

/// A centred message with an action, for screens with nothing to show yet.
pub fn empty_state(ui: &mut egui::Ui, message: &str, action: impl FnOnce(&mut egui::Ui)) {
    ui.add_space(60.0);
    ui.vertical_centered(|ui| {
        ui.label(RichText::new(message).size(17.0).weak());
        ui.add_space(8.0);
        action(ui);
    });
}

/// An error message placed next to what caused it.
pub fn error_label(ui: &mut egui::Ui, message: &str) {
    egui::Frame::new().fill(theme::BAD.gamma_multiply(0.12)).corner_radius(6.0).inner_margin(8.0).show(ui, |ui| {
        ui.colored_label(theme::BAD, format!("⚠ {message}"));
    });
}
