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
    pub leaderboard_sort: (LeaderboardSort, bool),
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
    pub grid_saliency_textures: (
        Option<u32>,
        std::collections::HashMap<std::path::PathBuf, egui::TextureHandle>,
    ),
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

/// Grid lines whose steps grow by 5 and 2 in turn (1, 5, 10, 50, … or 2, 10, 20, …) up to the
/// axis's whole range, instead of egui_plot's 1, 10, 100: it draws a tick label only where lines
/// are 20 points apart, so a residual axis from -8 to 9 (lines at 1 and 10) showed "0" alone, and a
/// loss from 0 to 1.2 only "0" and "1". Each step is a multiple of the one before, so labels of two
/// levels never stand a step apart. Label such an axis with [`grid_label`].
pub fn readable_grid() -> impl Fn(egui_plot::GridInput) -> Vec<egui_plot::GridMark> {
    |input: egui_plot::GridInput| {
        let (lo, hi) = input.bounds;
        let mut step = nice_step_at_least(input.base_step_size.abs().max(f64::MIN_POSITIVE));
        let mut marks: Vec<egui_plot::GridMark> = Vec::new();
        let span = (hi - lo).abs();
        for _ in 0..8 {
            if step > span * 2.0 && !marks.is_empty() {
                break;
            }
            let (first, last) = ((lo / step).ceil(), (hi / step).floor());
            if last - first <= 2000.0 {
                for i in first as i64..=last as i64 {
                    let value = i as f64 * step;
                    // A coarser line at the same value replaces the finer one.
                    marks.retain(|m| (m.value - value).abs() > step * 1e-6);
                    marks.push(egui_plot::GridMark {
                        value,
                        step_size: step,
                    });
                }
            }
            step = next_nice_step(step);
        }
        marks
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `x` (> 0).
fn nice_step_at_least(x: f64) -> f64 {
    let power = 10f64.powf(x.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= x * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// 1 → 5 → 10 and 2 → 10, at any power of ten: always a multiple of `step`.
fn next_nice_step(step: f64) -> f64 {
    let power = 10f64.powf(step.log10().floor());
    let mantissa = (step / power).round();
    if mantissa == 5.0 {
        step * 2.0
    } else {
        step * 5.0
    }
}

/// A tick label with as many decimals as its grid step needs: 0.05 steps read 0.05, 0.10, not
/// egui_plot's 0.1, 0.1.
pub fn grid_label(mark: egui_plot::GridMark, _range: &std::ops::RangeInclusive<f64>) -> String {
    let decimals = (-mark.step_size.log10() - 1e-9).ceil().max(0.0) as usize;
    let text = format!("{:.*}", decimals, mark.value);
    // "-0.0" reads as a different number from "0.0".
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_string()
    } else {
        text
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
    egui::Frame::new()
        .fill(theme::BAD.gamma_multiply(0.12))
        .corner_radius(6.0)
        .inner_margin(8.0)
        .show(ui, |ui| {
            ui.colored_label(theme::BAD, format!("⚠ {message}"));
        });
}

/// A wrapping grid of thumbnails with a caption each and an optional right/wrong mark.
pub fn thumbnail_grid(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    items: impl Iterator<Item = (std::path::PathBuf, String, Option<bool>)>,
) {
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
    cx.thumbnails
        .request_paths(items.iter().map(|(p, _, _)| p.clone()).collect());
    ui.horizontal_wrapped(|ui| {
        for (path, caption, right) in items {
            ui.allocate_ui(egui::vec2(84.0, 96.0), |ui| {
                ui.vertical(|ui| {
                    ui.set_width(84.0);
                    let size = egui::vec2(72.0, 72.0);
                    let texture = match overlays.get(&path) {
                        Some(overlay) => Some(overlay),
                        None => cx.thumbnails.get(&path),
                    };
                    match texture {
                        Some(texture) => {
                            ui.add(
                                egui::Image::new(texture)
                                    .fit_to_exact_size(size)
                                    .corner_radius(4.0),
                            );
                        }
                        None => {
                            let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
                            ui.painter()
                                .rect_filled(rect, 4.0, ui.visuals().faint_bg_color);
                        }
                    }
                    let mark = match right {
                        Some(true) => RichText::new(format!("✓ {caption}")).color(theme::GOOD),
                        Some(false) => RichText::new(format!("✗ {caption}")).color(theme::BAD),
                        None => RichText::new(caption),
                    };
                    ui.label(mark.small());
                })
            });
        }
    });
}

#[cfg(test)]
mod grid_tests {
    use super::*;

    fn marks(lo: f64, hi: f64, base: f64) -> Vec<(f64, f64)> {
        let mut m: Vec<(f64, f64)> = readable_grid()(egui_plot::GridInput {
            bounds: (lo, hi),
            base_step_size: base,
        })
        .into_iter()
        .map(|m| (m.value, m.step_size))
        .collect();
        m.sort_by(|a, b| a.0.total_cmp(&b.0));
        m
    }

    #[test]
    fn steps_are_one_two_five_and_coarser_lines_win() {
        assert_eq!(nice_step_at_least(0.03), 0.05);
        assert_eq!(nice_step_at_least(1.0), 1.0);
        assert_eq!(nice_step_at_least(1.2), 2.0);
        assert_eq!(next_nice_step(5.0), 10.0);
        assert!((next_nice_step(0.2) - 1.0).abs() < 1e-12);
        assert_eq!(next_nice_step(1.0), 5.0);
        // A residual axis from -8 to 9: lines every 1, labels every 5, one line per value.
        let m = marks(-8.0, 9.0, 0.8);
        let fives: Vec<f64> = m
            .iter()
            .filter(|(_, s)| *s == 5.0)
            .map(|(v, _)| *v)
            .collect();
        assert_eq!(fives, [-5.0, 5.0]);
        assert!(m.iter().any(|(v, s)| *v == 0.0 && *s >= 10.0), "{m:?}");
        assert_eq!(m.iter().filter(|(v, _)| *v == 0.0).count(), 1, "{m:?}");
        assert!(
            m.iter().all(|(v, s)| *s != 2.0 || *v != 4.0),
            "no level of 2 beside a level of 5: {m:?}"
        );
        // A wide axis gets coarse levels too: -25 to 60 from a step of 0.5.
        let m = marks(-25.0, 60.0, 0.5);
        assert!(m.iter().any(|(v, s)| *v == 50.0 && *s >= 50.0), "{m:?}");
    }

    #[test]
    fn labels_have_the_decimals_their_step_needs() {
        let label = |value: f64, step_size: f64| {
            grid_label(egui_plot::GridMark { value, step_size }, &(0.0..=1.0))
        };
        assert_eq!(label(0.95, 0.05), "0.95");
        assert_eq!(label(0.9, 0.1), "0.9");
        assert_eq!(label(0.4, 0.2), "0.4");
        assert_eq!(label(25.0, 5.0), "25");
        assert_eq!(label(-0.0, 0.5), "0.0");
        assert_eq!(label(-1.5, 0.5), "-1.5");
    }
}

/// How the leaderboard is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeaderboardSort {
    #[default]
    Score,
    Time,
    Name,
}

impl LeaderboardSort {
    /// Whether the column's first sort puts the smallest value on top.
    pub fn ascending(self) -> bool {
        !matches!(self, Self::Score)
    }
}
