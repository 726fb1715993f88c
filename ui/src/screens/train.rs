//! Train: start and stop, live loss and metric curves, progress with ETA and throughput, and the runs
//! list whose curves can be overlaid.

use egui::RichText;
use egui_plot::{Line, LineStyle, Plot, PlotPoints};
use wick_core::train::SplitName;

use crate::command::Command;
use crate::decimate;
use crate::project::{RunRecord, RunStatus, Template};
use crate::screens::common::{empty_state, error_label, LeaderboardSort, ScreenCtx};
use crate::state::Screen;
use crate::theme;

/// Points drawn per curve at most; more than a plot has pixels is wasted work.
pub const MAX_PLOT_POINTS: usize = 1500;

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.heading("Train");
    controls(cx, ui);
    let Some(run) = state.selected_run_record().cloned() else {
        empty_state(
            ui,
            "No training yet. Choose a model, then press Train.",
            |ui| {
                if ui.button("Go to Model").clicked() {
                    cx.send(Command::GoTo(Screen::Model));
                }
            },
        );
        return;
    };
    run_header(cx, ui, &run);
    if let Some(board) = &run.leaderboard {
        leaderboard(cx, ui, board);
    }
    let overlay: Vec<RunRecord> = state
        .compare_runs
        .iter()
        .filter(|id| **id != run.id)
        .filter_map(|id| state.project.runs.iter().find(|r| r.id == *id))
        .cloned()
        .collect();
    ui.columns(2, |cols| {
        theme::section(&mut cols[0], "Loss");
        loss_plot(&mut cols[0], &run, &overlay);
        theme::section(&mut cols[1], "Metrics");
        metric_plot(&mut cols[1], &run, &overlay);
    });
    runs_list(cx, ui);
}

fn controls(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.horizontal(|ui| {
        if state.training.is_some() {
            if ui
                .add(
                    egui::Button::new(RichText::new("■  Stop").strong())
                        .fill(theme::BAD.gamma_multiply(0.3)),
                )
                .clicked()
            {
                cx.send(Command::StopTraining);
            }
        } else {
            let start = egui::Button::new(RichText::new("▶  Start").strong())
                .fill(theme::ACCENT.gamma_multiply(0.45));
            if ui
                .add_enabled(state.loaded().is_some(), start)
                .on_disabled_hover_text("Open a dataset first")
                .clicked()
            {
                cx.send(Command::StartTraining);
            }
        }
    });
    if let Some((sample, total)) = state.sampled() {
        ui.label(
            RichText::new(large_file_note(state.project.model.template, sample, total))
                .small()
                .color(theme::VALID_COLOUR),
        );
    }
    if let Some(d) = state.training.as_ref().and_then(|t| t.download.as_ref()) {
        let fraction = d.bytes_done as f32 / d.bytes_total.max(1) as f32;
        let text = format!(
            "Downloading {} · {:.0} of {:.0} MB",
            d.file,
            d.bytes_done as f64 / 1e6,
            d.bytes_total as f64 / 1e6
        );
        ui.add(
            egui::ProgressBar::new(fraction.clamp(0.0, 1.0))
                .text(text)
                .animate(true),
        );
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    } else if let Some(r) = state.training.as_ref().and_then(|t| t.reading) {
        let text = format!(
            "Reading the file, pass {} of {} · {:.0}%",
            r.pass,
            r.passes,
            r.fraction * 100.0
        );
        ui.add(
            egui::ProgressBar::new(r.fraction.clamp(0.0, 1.0))
                .text(text)
                .animate(true),
        );
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    } else if let Some(progress) = state
        .training
        .as_ref()
        .and_then(|t| Some((t.started.elapsed().as_secs_f64(), t.search.clone()?)))
    {
        let (elapsed, p) = progress;
        let text = if p.finalising {
            format!("Training the best, {}, on the usual split…", p.current)
        } else {
            format!(
                "Trying models: {} tried · {:.0} of {:.0} s · now {}",
                p.tried, elapsed, p.budget_secs, p.current
            )
        };
        let fraction = if p.finalising {
            1.0
        } else {
            (elapsed / p.budget_secs.max(1.0)) as f32
        };
        // No spinner: the bar's own spinner sat over the end of this long line. The bar fills with
        // the budget and the count of models tried changes, which show it is working.
        ui.add(egui::ProgressBar::new(fraction.clamp(0.0, 1.0)).text(text));
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    } else if let Some((fold, folds)) = state
        .training
        .as_ref()
        .and_then(|t| t.cv_fold)
        .filter(|_| state.training.as_ref().is_some_and(|t| t.done_steps == 0))
    {
        ui.add(
            egui::ProgressBar::new(fold as f32 / folds.max(1) as f32)
                .text(format!("Cross-validating: fold {fold} of {folds}"))
                .animate(true),
        );
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    } else if let Some(t) = &state.training {
        let total = (t.epochs * t.steps_per_epoch).max(1);
        let fraction = (t.done_steps as f32 / total as f32).clamp(0.0, 1.0);
        let elapsed = t.started.elapsed().as_secs_f64();
        let eta = if fraction > 0.01 {
            elapsed * (1.0 - fraction as f64) / fraction as f64
        } else {
            f64::NAN
        };
        let epoch = (t.done_steps / t.steps_per_epoch.max(1) + 1).min(t.epochs);
        let mut text = format!("Epoch {epoch} of {} · {:.0}%", t.epochs, fraction * 100.0);
        if eta.is_finite() {
            text.push_str(&format!(" · about {} left", format_secs(eta)));
        }
        if let Some(sps) = t.throughput() {
            text.push_str(&format!(" · {sps:.0} samples/s"));
        }
        ui.add(egui::ProgressBar::new(fraction).text(text).animate(true));
        ui.ctx()
            .request_repaint_after(std::time::Duration::from_millis(250));
    }
}

/// What a run on a large file will train on, for the model chosen now.
pub fn large_file_note(template: Template, sample: usize, total: usize) -> String {
    match template {
        Template::Linear | Template::Polynomial | Template::Ridge => {
            format!("Linear regression trains on every one of the file's {total} rows, read from disk in chunks.")
        }
        Template::BoostedTrees | Template::Forest => format!(
            "Tree models train on every one of the file's {total} rows while they fit in memory (else on a stratified sample); cross-validation and Find the best model use the {sample}-row sample."
        ),
        _ => format!("Networks train on a seeded sample of about {sample} of the file's {total} rows, stratified by class."),
    }
}

/// The models a search tried, sortable by a click on a column's header; any can be trained as a run.
fn leaderboard(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, board: &[wick_core::train::Candidate]) {
    theme::section(ui, "Leaderboard");
    let metric = if cx.state.task() == Some(wick_core::data::Task::Regression) {
        "R²"
    } else {
        "accuracy"
    };
    ui.label(RichText::new(format!("{} models, ranked on the validation rows ({metric}); the run's own model is the best, scored once on the test rows.", board.len())).small().weak());
    let mut rows: Vec<(usize, &wick_core::train::Candidate)> = board.iter().enumerate().collect();
    let (sort, reversed) = cx.view.leaderboard_sort;
    // Each column's first click puts what people look for on top: the best score, the fastest
    // model, names A to Z. A second click reverses it.
    match sort {
        LeaderboardSort::Score => rows.sort_by(|a, b| b.1.valid_score.total_cmp(&a.1.valid_score)),
        LeaderboardSort::Time => {
            rows.sort_by(|a, b| a.1.duration_secs.total_cmp(&b.1.duration_secs))
        }
        LeaderboardSort::Name => rows.sort_by_cached_key(|r| r.1.name.to_lowercase()),
    }
    if reversed {
        rows.reverse();
    }
    let training = cx.state.training.is_some();
    egui::ScrollArea::vertical()
        .id_salt("leaderboard")
        .max_height(220.0)
        .show(ui, |ui| {
            egui::Grid::new("leaderboard_grid")
                .striped(true)
                .num_columns(4)
                .spacing([18.0, 4.0])
                .show(ui, |ui| {
                    for (label, sort) in [
                        ("Model", LeaderboardSort::Name),
                        ("Validation", LeaderboardSort::Score),
                        ("Seconds", LeaderboardSort::Time),
                    ] {
                        let (current, reversed) = cx.view.leaderboard_sort;
                        // The arrow points the way the values grow down the column.
                        let marker = match (current == sort, sort.ascending() != reversed) {
                            (false, _) => "",
                            (true, true) => " ▲",
                            (true, false) => " ▼",
                        };
                        if ui
                            .add(
                                egui::Button::new(
                                    RichText::new(format!("{label}{marker}")).strong(),
                                )
                                .frame(false),
                            )
                            .on_hover_text("Click to sort; click again to reverse")
                            .clicked()
                        {
                            cx.view.leaderboard_sort = (sort, current == sort && !reversed);
                        }
                    }
                    ui.label("");
                    ui.end_row();
                    for (_, c) in rows {
                        ui.label(&c.name);
                        ui.label(format!("{:.4}", c.valid_score));
                        ui.label(format!("{:.2}", c.duration_secs));
                        if ui
                            .add_enabled(!training, egui::Button::new("Train this one").small())
                            .clicked()
                        {
                            cx.send(Command::TrainCandidate(c.clone()));
                        }
                        ui.end_row();
                    }
                });
        });
}

fn run_header(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, run: &RunRecord) {
    // Wrapped: in a 1,000 px window a long run name pushed *Evaluate →* off the screen.
    ui.horizontal_wrapped(|ui| {
        ui.label(RichText::new(&run.name).strong().size(16.0));
        if !run.device.is_empty() {
            ui.label(RichText::new(format!("on {}", run.device)).weak());
        }
        match &run.status {
            RunStatus::Running => {
                ui.spinner();
            }
            RunStatus::Finished => {
                ui.colored_label(
                    theme::GOOD,
                    format!("✓ finished in {}", format_secs(run.duration_secs)),
                );
                if let Some(m) = &run.test_metrics {
                    let (name, value) = m.headline();
                    ui.label(
                        RichText::new(format!(
                            "test {} {value:.3}",
                            crate::screens::common::metric_title(name)
                        ))
                        .strong(),
                    );
                }
                if ui.button("Evaluate  →").clicked() {
                    cx.send(Command::GoTo(Screen::Evaluate));
                }
            }
            RunStatus::Cancelled => {
                ui.label("Stopped");
            }
            RunStatus::Interrupted => {
                ui.label("Interrupted (the app closed while it ran)");
            }
            RunStatus::Failed(_) => {}
        }
    });
    if let RunStatus::Failed(message) = &run.status {
        error_label(ui, message);
    }
    if let Some(used) = &run.rows_used {
        ui.label(RichText::new(capitalise(&used.describe())).small().weak());
    }
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The curve points a plot should draw for a run's step losses.
pub fn step_loss_points(run: &RunRecord) -> Vec<[f64; 2]> {
    decimate::min_max(&run.step_losses, MAX_PLOT_POINTS / 4)
}

fn epoch_series(run: &RunRecord, split: SplitName, name: &str) -> Vec<[f64; 2]> {
    run.history
        .iter()
        .filter(|m| m.split == split && m.name == name)
        .map(|m| [m.epoch as f64, m.value])
        .collect()
}

/// The x-range of a run's plots. While it trains, every planned epoch from the first step, so a first
/// epoch's single point sits at the start of the run rather than alone in a 0.9–1.1 window; once it
/// ends (early stopping often ends it sooner), the epochs it ran.
pub fn epoch_axis(run: &RunRecord) -> (f64, f64) {
    let ran = run.history.iter().map(|m| m.epoch).max().unwrap_or(0);
    let last = if run.status == RunStatus::Running {
        ran.max(run.epochs)
    } else {
        ran
    };
    (0.0, last.max(1) as f64)
}

/// egui_plot's own line width (thinner lines look bad on some displays, its docs say).
const DEFAULT_LINE_WIDTH: f32 = 1.5;

/// One curve of a Train-screen plot: its points, label, colour and style.
struct Series {
    label: String,
    points: Vec<[f64; 2]>,
    colour: egui::Color32,
    width: f32,
    dashed: bool,
}

impl Series {
    fn solid(
        label: impl Into<String>,
        points: Vec<[f64; 2]>,
        colour: egui::Color32,
        width: f32,
    ) -> Self {
        Self {
            label: label.into(),
            points,
            colour,
            width,
            dashed: false,
        }
    }

    fn overlay(label: String, points: Vec<[f64; 2]>, colour: egui::Color32) -> Self {
        Self {
            label,
            points,
            colour,
            width: DEFAULT_LINE_WIDTH,
            dashed: true,
        }
    }
}

/// The legend as a row above the plot, so it never covers a curve, then the plot over the run's
/// epochs (see [`epoch_axis`]). Empty series are left out of both.
fn plot_with_legend(ui: &mut egui::Ui, id: &str, run: &RunRecord, series: Vec<Series>) {
    let series: Vec<Series> = series
        .into_iter()
        .filter(|s| !s.points.is_empty())
        .collect();
    ui.horizontal_wrapped(|ui| {
        for s in &series {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(18.0, 10.0), egui::Sense::hover());
            let ends = [
                egui::pos2(rect.left(), rect.center().y),
                egui::pos2(rect.right(), rect.center().y),
            ];
            let stroke = egui::Stroke::new(2.0, s.colour);
            if s.dashed {
                ui.painter()
                    .add(egui::Shape::dashed_line(&ends, stroke, 4.0, 3.0));
            } else {
                ui.painter().line_segment(ends, stroke);
            }
            ui.label(RichText::new(&s.label).small());
            ui.add_space(8.0);
        }
    });
    let (x0, x1) = epoch_axis(run);
    Plot::new(id)
        .id(egui::Id::unique(id))
        .allow_scroll(false)
        .y_grid_spacer(crate::screens::common::readable_grid())
        .y_axis_formatter(crate::screens::common::grid_label)
        .height(260.0)
        .x_axis_label("epoch")
        .include_x(x0)
        .include_x(x1)
        .show(ui, |p| {
            for s in series {
                // A metric measured once (a tree model's, after its fit) is a dot, not an invisible line.
                if s.points.len() == 1 {
                    p.points(
                        egui_plot::Points::new(s.label, PlotPoints::from(s.points))
                            .color(s.colour)
                            .radius(5.0),
                    );
                    continue;
                }
                let line = Line::new(s.label, PlotPoints::from(s.points))
                    .color(s.colour)
                    .width(s.width);
                p.line(if s.dashed {
                    line.style(LineStyle::dashed_loose())
                } else {
                    line
                });
            }
        });
}

/// Colours for overlaid runs, after the selected run's own two.
fn overlay_colour(ui: &egui::Ui, i: usize) -> egui::Color32 {
    let palette = [
        egui::Color32::from_rgb(200, 130, 240),
        egui::Color32::from_rgb(240, 200, 80),
        egui::Color32::from_rgb(120, 210, 200),
    ];
    let c = palette[i % palette.len()];
    if ui.visuals().dark_mode {
        c
    } else {
        c.gamma_multiply(0.8)
    }
}

fn loss_plot(ui: &mut egui::Ui, run: &RunRecord, overlay: &[RunRecord]) {
    let mut series = vec![
        Series::solid(
            "train loss (per step)",
            step_loss_points(run),
            theme::TRAIN_COLOUR.gamma_multiply(0.35),
            DEFAULT_LINE_WIDTH,
        ),
        Series::solid(
            "train loss",
            epoch_series(run, SplitName::Train, "loss"),
            theme::TRAIN_COLOUR,
            2.0,
        ),
        Series::solid(
            "validation loss",
            epoch_series(run, SplitName::Valid, "loss"),
            theme::VALID_COLOUR,
            2.0,
        ),
    ];
    // Losses of different model kinds are on different scales (a network's regression loss is on
    // the standardised target, a linear model's in the target's units; trees count their own):
    // only runs of the same kind share this plot. The metrics beside it compare every run.
    let mut elsewhere = Vec::new();
    for (i, other) in overlay.iter().enumerate() {
        if other.template == run.template {
            series.push(Series::overlay(
                format!("{} (validation)", other.name),
                epoch_series(other, SplitName::Valid, "loss"),
                overlay_colour(ui, i),
            ));
        } else {
            elsewhere.push(other.name.as_str());
        }
    }
    plot_with_legend(ui, "loss_plot", run, series);
    if !elsewhere.is_empty() {
        ui.label(RichText::new(format!("Not overlaid here: {} (another kind of model, whose loss is on another scale); see the metrics.", elsewhere.join(", "))).small().weak());
    }
}

fn metric_plot(ui: &mut egui::Ui, run: &RunRecord, overlay: &[RunRecord]) {
    let mut names: Vec<&str> = run
        .history
        .iter()
        .filter(|m| m.name != "loss")
        .map(|m| m.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    if names.is_empty() {
        ui.label(RichText::new("Metrics appear after the first epoch.").weak());
        return;
    }
    let mut series = Vec::new();
    for name in &names {
        series.push(Series::solid(
            format!("train {name}"),
            epoch_series(run, SplitName::Train, name),
            theme::TRAIN_COLOUR,
            2.0,
        ));
        series.push(Series::solid(
            format!("validation {name}"),
            epoch_series(run, SplitName::Valid, name),
            theme::VALID_COLOUR,
            2.0,
        ));
        for (i, other) in overlay.iter().enumerate() {
            series.push(Series::overlay(
                format!("{} {name}", other.name),
                epoch_series(other, SplitName::Valid, name),
                overlay_colour(ui, i),
            ));
        }
    }
    plot_with_legend(ui, "metric_plot", run, series);
}

fn runs_list(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    theme::section(ui, "Runs");
    ui.label(
        RichText::new("Tick runs to overlay their validation curves.")
            .small()
            .weak(),
    );
    let runs: Vec<(u32, String, String, String, String)> = state
        .project
        .runs
        .iter()
        .rev()
        .map(|r| {
            let status = match &r.status {
                RunStatus::Running => "running".to_string(),
                RunStatus::Finished => "finished".into(),
                RunStatus::Cancelled => "stopped".into(),
                RunStatus::Failed(_) => "failed".into(),
                RunStatus::Interrupted => "interrupted".into(),
            };
            let metric = r.test_metrics.as_ref().map(|m| {
                let (n, v) = m.headline();
                format!("{} {v:.3}", crate::screens::common::metric_title(n))
            });
            let data = r
                .dataset
                .as_ref()
                .and_then(|p| p.file_name())
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            (
                r.id,
                r.name.clone(),
                data,
                status,
                metric.unwrap_or_default(),
            )
        })
        .collect();
    egui::Grid::new("runs")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for (id, name, data, status, metric) in runs {
                let mut compare = state.compare_runs.contains(&id);
                if ui
                    .checkbox(&mut compare, "")
                    .on_hover_text("Overlay on the plots")
                    .changed()
                {
                    cx.send(Command::SetCompared {
                        run_id: id,
                        compared: compare,
                    });
                }
                if ui
                    .selectable_label(state.selected_run == Some(id), name)
                    .clicked()
                {
                    cx.send(Command::SelectRun(id));
                }
                ui.label(RichText::new(data).small().weak())
                    .on_hover_text("The dataset it trained on");
                ui.label(status);
                ui.label(metric);
                ui.end_row();
            }
        });
}

pub fn format_secs(secs: f64) -> String {
    if secs < 1.0 {
        "under a second".into()
    } else if secs < 90.0 {
        format!("{secs:.1} s")
    } else {
        format!("{:.0} min {:.0} s", (secs / 60.0).floor(), secs % 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_axis_spans_the_planned_run_from_the_first_epoch() {
        let mut run = crate::project::RunRecord {
            device: "cpu".into(),
            step_losses: vec![[0.1, 1.0]],
            ..crate::project::RunRecord::started(
                1,
                "run 1".into(),
                crate::project::Template::Logistic,
                wick_core::model::ModelSpec::Logistic,
                wick_core::train::TrainConfig {
                    epochs: 15,
                    ..Default::default()
                },
                Some("diagnosis".into()),
            )
        };
        assert_eq!(epoch_axis(&run), (0.0, 15.0));
        run.history.push(wick_core::train::MetricPoint {
            epoch: 1,
            split: SplitName::Valid,
            name: "loss".into(),
            value: 0.5,
        });
        assert_eq!(
            epoch_axis(&run),
            (0.0, 15.0),
            "one point does not shrink the axis to 0.9–1.1"
        );
        run.status = RunStatus::Finished;
        run.history.push(wick_core::train::MetricPoint {
            epoch: 7,
            split: SplitName::Valid,
            name: "loss".into(),
            value: 0.4,
        });
        assert_eq!(
            epoch_axis(&run),
            (0.0, 7.0),
            "a run stopped early at epoch 7 fills the plot"
        );
    }
}
