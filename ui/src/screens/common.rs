//! What every screen gets and shares: [`ScreenCtx`] (the state to read, the view state, the
//! thumbnail cache and the command queue), the screens' view state, and small shared widgets.

use egui::{RichText, Sense};

use crate::command::{Command, Commands};
use crate::state::{AppState, DataState, Screen};
use crate::theme;
use crate::thumbnails::Thumbnails;

/// Screen-local view state that is not part of the saved project.
#[derive(Default)]
pub struct ViewState {
    /// How the Train screen's leaderboard is sorted, and whether that order is reversed.
    pub leaderboard_sort: (crate::screens::train::LeaderboardSort, bool),
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
    /// The Evaluate screen's "Try it" fields (feature, typed value) and the run they are for.
    pub try_fields: Vec<(String, String)>,
    pub try_fields_for_run: Option<u32>,
    /// Whether *Try it* shows where the model looked, and its textures (image, overlay) for the
    /// result generation they were made from.
    pub show_saliency: bool,
    pub saliency_textures: Option<(u64, egui::TextureHandle, egui::TextureHandle)>,
    /// Evaluate's grid: overlay the test images' saliency maps.
    pub grid_saliency: bool,
    /// Textures of `AppState::grid_saliency`'s overlays, for the run they were made for.
    pub grid_saliency_textures: (Option<u32>, std::collections::HashMap<std::path::PathBuf, egui::TextureHandle>),
    /// The label queue's typed or picked outcomes, by request id.
    pub label_answers: std::collections::HashMap<String, String>,
    /// The augmentation preview's textures, and the settings they show.
    pub augment_textures: Option<(wick_core::data::Augment, Vec<egui::TextureHandle>)>,
}

/// What a screen gets: the state to read, the view state of the screens, the thumbnail cache, and
/// the queue its commands go to. Never the app itself.
pub struct ScreenCtx<'a> {
    pub state: &'a AppState,
    pub view: &'a mut ViewState,
    pub thumbnails: &'a mut Thumbnails,
    pub(crate) commands: &'a mut Commands,
}

impl ScreenCtx<'_> {
    pub fn send(&mut self, command: Command) {
        self.commands.send(command);
    }
}

/// A metric's name as people read it ("macro_f1" is the key in files and events).
pub fn metric_title(key: &str) -> &str {
    match key {
        "accuracy" => "accuracy",
        "macro_f1" => "macro F1",
        "r2" => "R²",
        "mse" => "MSE",
        "rmse" => "RMSE",
        "mae" => "MAE",
        other => other,
    }
}

/// A short description of the data state for empty screens.
pub fn need_data(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, what: &str) -> bool {
    let state = cx.state;
    if state.loaded().is_some() {
        return false;
    }
    empty_state(ui, &format!("Open a dataset to {what}."), |ui| {
        if let DataState::Loading(p) = &state.data {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Loading {}…", p.display()));
            });
        } else if ui.button("Go to Data").clicked() {
            cx.send(Command::GoTo(Screen::Data));
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

/// A wrapping grid of thumbnails with a caption each and an optional right/wrong mark.
pub fn thumbnail_grid(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, items: impl Iterator<Item = (std::path::PathBuf, String, Option<bool>)>) {
    thumbnail_grid_with(cx, ui, items, &std::collections::HashMap::new());
}

/// The thumbnail grid, with `overlays` drawn instead of the images they are keyed by.
pub fn thumbnail_grid_with(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    items: impl Iterator<Item = (std::path::PathBuf, String, Option<bool>)>,
    overlays: &std::collections::HashMap<std::path::PathBuf, egui::TextureHandle>,
) {
    let items: Vec<_> = items.collect();
    cx.thumbnails.request_paths(items.iter().map(|(p, _, _)| p.clone()).collect());
    ui.horizontal_wrapped(|ui| {
        for (path, caption, right) in items {
            ui.allocate_ui(egui::vec2(84.0, 96.0), |ui| ui.vertical(|ui| {
                ui.set_width(84.0);
                let size = egui::vec2(72.0, 72.0);
                let texture = match overlays.get(&path) {
                    Some(overlay) => Some(overlay),
                    None => cx.thumbnails.get(&path),
                };
                match texture {
                    Some(texture) => {
                        ui.add(egui::Image::new(texture).fit_to_exact_size(size).corner_radius(4.0));
                    }
                    None => {
                        let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
                        ui.painter().rect_filled(rect, 4.0, ui.visuals().faint_bg_color);
                    }
                }
                let mark = match right {
                    Some(true) => RichText::new(format!("✓ {caption}")).color(theme::GOOD),
                    Some(false) => RichText::new(format!("✗ {caption}")).color(theme::BAD),
                    None => RichText::new(caption),
                };
                ui.label(mark.small());
            }));
        }
    });
}
