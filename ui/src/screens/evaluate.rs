//! Evaluate: how good is the model on data it never saw? Regression fit and residual plots, the
//! confusion matrix whose cells filter the samples behind them, image results, and "Try it".

use egui::{Color32, RichText, Sense};
use egui_plot::{Legend, Line, Plot, PlotPoints, Points};
use serde_json::{Map, Value};
use wick_core::metrics::{ClassificationMetrics, Metrics, RegressionMetrics};
use wick_core::model::Prediction;
use wick_core::train::{Actual, TestSample};

use crate::command::Command;
use crate::host::HostRequest;
use crate::jobs::FitRequest;
use crate::loaded::LoadedData;
use crate::project::RunRecord;
use crate::screens::common::{
    empty_state, error_label, grid_label, readable_grid, thumbnail_grid, thumbnail_grid_with,
    ScreenCtx,
};
use crate::state::Screen;
use crate::theme;

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.heading("Evaluate");
    // A run trained on every row (test split 0 %) has a model but nothing held out to measure it on.
    let usable = |r: &&RunRecord| {
        r.test_metrics.is_some()
            || (r.status == crate::project::RunStatus::Finished && r.package.is_some())
    };
    let Some(run) = state.selected_run_record().filter(usable).cloned() else {
        empty_state(
            ui,
            "Train a model to see how well it predicts data it has never seen.",
            |ui| {
                if ui.button("Go to Model").clicked() {
                    cx.send(Command::GoTo(Screen::Model));
                }
            },
        );
        return;
    };
    if run.test_metrics.is_none() {
        ui.label(
            RichText::new(format!(
                "{} trained on every row (test split 0 %), so no rows were held out to measure it on. Try it below, or train with a test split to measure it.",
                run.name
            ))
            .weak(),
        );
    } else {
        ui.label(
            RichText::new(format!(
                "{} · measured on {} test samples the model never saw",
                run.name,
                run.test_samples.len()
            ))
            .weak(),
        );
    }
    if let Some(cv) = &run.cv {
        let stats: Vec<String> = cv
            .stats
            .iter()
            .map(|s| {
                format!(
                    "{} {:.3} ± {:.3}",
                    crate::screens::common::metric_title(&s.name),
                    s.mean,
                    s.sd
                )
            })
            .collect();
        ui.label(RichText::new(format!("{}-fold cross-validation: {}", cv.folds, stats.join(" · "))).strong())
            .on_hover_text("Mean ± standard deviation over the folds; each fold was tested by a model trained on the others.");
        for w in &cv.warnings {
            ui.label(
                RichText::new(format!("⚠ {w}"))
                    .small()
                    .color(theme::VALID_COLOUR),
            );
        }
    }
    // Another dataset's run: its test rows and images are not in the open table or folder.
    if let (Some(trained_on), Some(open)) = (
        &run.dataset,
        state.project.dataset.as_ref().map(|d| &d.path),
    ) {
        if trained_on != open {
            let name = trained_on
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            ui.label(RichText::new(format!("{} trained on {name}, not on the dataset open now: open {name} to see its test samples and try it.", run.name)).color(theme::VALID_COLOUR));
            match &run.test_metrics {
                Some(Metrics::Regression(m)) => {
                    ui.label(format!(
                        "R² {:.3} · RMSE {:.3} · MAE {:.3}",
                        m.r2, m.rmse, m.mae
                    ));
                }
                Some(Metrics::Classification(m)) => {
                    ui.label(format!("accuracy {:.1}%", m.accuracy * 100.0));
                }
                None => {}
            }
            return;
        }
    }
    match run.test_metrics.clone() {
        Some(Metrics::Regression(m)) => regression(cx, ui, &run, &m),
        Some(Metrics::Classification(m)) => classification(cx, ui, &run, &m),
        None => {}
    }
    importance(cx, ui, &run);
    try_it(cx, ui, &run);
}

/// Which features the model relies on: the score's drop when each feature is shuffled, on the
/// test rows; for trees also each feature's share of the split gain.
fn importance(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, run: &RunRecord) {
    let state = cx.state;
    let Some(LoadedData::Table { df, .. }) = state.loaded() else {
        return;
    };
    let rows: Vec<usize> = run
        .test_samples
        .iter()
        .filter_map(|s| crate::requests::row_index(&s.source))
        .filter(|&r| r < df.height())
        .collect();
    if rows.len() < 2 {
        return;
    }
    theme::section(ui, "Feature importance");
    if state.importance.run != Some(run.id) {
        cx.send(Command::RequestImportance {
            run_id: run.id,
            rows,
        });
    }
    let Some(view) = job_result(
        ui,
        &state.importance.view,
        "Shuffling each feature on the test rows…",
        "Importance could not be computed",
    ) else {
        return;
    };
    let metric = if view.metric == "r2" {
        "R²"
    } else {
        "accuracy"
    };
    ui.label(
        RichText::new(format!(
            "How much the test {metric} ({:.3}) drops when one feature's values are shuffled ({} times each, on {} rows); 0 means the model doesn't use it.",
            view.baseline, view.repeats, view.rows
        ))
        .small()
        .weak(),
    );
    // Most important at the top: bars are drawn bottom-up.
    let n = view.features.len();
    let names: Vec<String> = view.features.iter().map(|f| f.feature.clone()).collect();
    let height = (28.0 * n as f32 + 40.0).clamp(120.0, 420.0);
    let label_names = names.clone();
    let y_labels = move |mark: egui_plot::GridMark, _: &std::ops::RangeInclusive<f64>| {
        let i = mark.value.round();
        if (mark.value - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        label_names
            .get(n.saturating_sub(1 + i as usize))
            .cloned()
            .unwrap_or_default()
    };
    let bars =
        |value: &dyn Fn(&wick_core::explain::FeatureImportance) -> f64| -> Vec<egui_plot::Bar> {
            view.features
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    egui_plot::Bar::new((n - 1 - i) as f64, value(f))
                        .name(&f.feature)
                        .width(0.6)
                })
                .collect()
        };
    let trees = view.features.iter().any(|f| f.split_gain.is_some());
    let draw = |ui: &mut egui::Ui, id: &str, title: &str, chart: egui_plot::BarChart| {
        ui.label(RichText::new(title).strong());
        Plot::new(id.to_string())
            .height(height)
            .y_axis_formatter(y_labels.clone())
            .y_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 1.0, 1.0]))
            .x_grid_spacer(readable_grid())
            .x_axis_formatter(grid_label)
            .allow_scroll(false)
            .allow_drag(false)
            .show(ui, |p| p.bar_chart(chart));
    };
    let permutation = egui_plot::BarChart::new("score drop", bars(&|f| f.permutation_mean))
        .horizontal()
        .color(theme::ACCENT);
    if trees {
        let gain =
            egui_plot::BarChart::new("split gain share", bars(&|f| f.split_gain.unwrap_or(0.0)))
                .horizontal()
                .color(theme::TRAIN_COLOUR);
        ui.columns(2, |cols| {
            draw(
                &mut cols[0],
                "importance_plot",
                &format!("Drop in {metric} when shuffled"),
                permutation,
            );
            draw(
                &mut cols[1],
                "split_gain_plot",
                "Share of the trees' split gain",
                gain,
            );
        });
    } else {
        draw(
            ui,
            "importance_plot",
            &format!("Drop in {metric} when shuffled"),
            permutation,
        );
    }
}

fn value_of(a: &Actual) -> f64 {
    match a {
        Actual::Value(v) => *v,
        Actual::Class(c) => *c as f64,
    }
}

fn regression(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, run: &RunRecord, m: &RegressionMetrics) {
    ui.horizontal(|ui| {
        metric_tile(
            ui,
            "R²",
            format!("{:.3}", m.r2),
            "1.0 is perfect; 0 is no better than guessing the mean",
        );
        metric_tile(
            ui,
            "RMSE",
            format!("{:.3}", m.rmse),
            "typical size of an error, in the target's units",
        );
        metric_tile(ui, "MAE", format!("{:.3}", m.mae), "average absolute error");
    });
    let pairs: Vec<[f64; 2]> = run
        .test_samples
        .iter()
        .map(|s| [value_of(&s.actual), s.predicted.as_f64()])
        .collect();
    fit_plot(cx, ui, run);
    ui.label(
        RichText::new("Drag a plot to pan, Ctrl + wheel to zoom, double-click to reset it.")
            .small()
            .weak(),
    );
    ui.columns(2, |cols| {
        theme::section(&mut cols[0], "Predicted vs actual");
        let (lo, hi) = pairs
            .iter()
            .flat_map(|p| [p[0], p[1]])
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        // Per run: a plot keeps its zoom, and the next run's data may lie outside the last one's.
        Plot::new(("pred_vs_actual", run.id))
            .allow_scroll(false)
            .x_grid_spacer(readable_grid())
            .y_grid_spacer(readable_grid())
            .x_axis_formatter(grid_label)
            .y_axis_formatter(grid_label)
            .height(240.0)
            .data_aspect(1.0)
            .x_axis_label("actual")
            .y_axis_label("predicted")
            .legend(Legend::default())
            .show(&mut cols[0], |p| {
                if lo.is_finite() {
                    p.line(
                        Line::new("y = x", PlotPoints::from(vec![[lo, lo], [hi, hi]]))
                            .color(Color32::GRAY),
                    );
                }
                p.points(
                    Points::new("test samples", PlotPoints::from(pairs.clone()))
                        .radius(2.5)
                        .color(theme::TRAIN_COLOUR),
                );
            });
        theme::section(&mut cols[1], "Residuals");
        let residuals: Vec<[f64; 2]> = pairs.iter().map(|p| [p[1], p[0] - p[1]]).collect();
        Plot::new(("residuals", run.id))
            .allow_scroll(false)
            .x_grid_spacer(readable_grid())
            .y_grid_spacer(readable_grid())
            .x_axis_formatter(grid_label)
            .y_axis_formatter(grid_label)
            .height(240.0)
            .x_axis_label("predicted")
            .y_axis_label("actual − predicted")
            .show(&mut cols[1], |p| {
                p.hline(egui_plot::HLine::new("zero", 0.0).color(Color32::GRAY));
                p.points(
                    Points::new("residuals", PlotPoints::from(residuals))
                        .radius(2.5)
                        .color(theme::VALID_COLOUR),
                );
            });
    });
}

/// The data against one feature with the model's curve: the feature swept over its range while the
/// other features stay at their mean (numbers) or most common value (text).
fn fit_plot(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, run: &RunRecord) {
    let state = cx.state;
    let Some(LoadedData::Table { df, summary, .. }) = state.loaded().cloned() else {
        return;
    };
    let numeric: Vec<String> = summary
        .columns
        .iter()
        .filter(|c| {
            c.kind == wick_core::data::ColumnKind::Numeric && Some(&c.name) != run.target.as_ref()
        })
        .filter(|c| !state.project.model.excluded_features.contains(&c.name))
        .map(|c| c.name.clone())
        .collect();
    let Some(first) = numeric.first().cloned() else {
        return;
    };
    let test_rows = || -> Vec<(usize, f64)> {
        run.test_samples
            .iter()
            .filter_map(|s| Some((crate::requests::row_index(&s.source)?, value_of(&s.actual))))
            .collect()
    };
    let feature = match cx.view.eval_feature.clone().filter(|f| numeric.contains(f)) {
        Some(chosen) => chosen,
        None => {
            // Open on the feature that explains the target best, so the first picture shows the fit.
            let strongest = strongest_feature(&df, &test_rows(), &numeric).unwrap_or(first);
            cx.view.eval_feature = Some(strongest.clone());
            strongest
        }
    };
    theme::section(ui, "The fit");
    ui.horizontal(|ui| {
        ui.label("Feature");
        egui::ComboBox::from_id_salt("eval_feature")
            .selected_text(&feature)
            .show_ui(ui, |ui| {
                for n in &numeric {
                    if ui.selectable_label(*n == feature, n).clicked() {
                        cx.view.eval_feature = Some(n.clone());
                    }
                }
            });
        ui.label(
            RichText::new("other features held at their typical value")
                .small()
                .weak(),
        );
    });
    if state.fit.key.as_ref() != Some(&(run.id, feature.clone())) {
        let Some(range) = summary
            .columns
            .iter()
            .find(|c| c.name == feature)
            .and_then(|c| Some((c.min?, c.max?)))
        else {
            return;
        };
        let request = FitRequest {
            feature: feature.clone(),
            df,
            base_row: typical_row(&summary),
            range,
            test_rows: test_rows(),
        };
        cx.send(Command::RequestFit {
            run_id: run.id,
            request,
        });
    }
    let Some(view) = job_result(
        ui,
        &state.fit.view,
        "Drawing the fit…",
        "The fit could not be drawn",
    )
    .cloned() else {
        return;
    };
    Plot::new(("fit_plot", run.id, feature.as_str()))
        .allow_scroll(false)
        .x_grid_spacer(readable_grid())
        .y_grid_spacer(readable_grid())
        .x_axis_formatter(grid_label)
        .y_axis_formatter(grid_label)
        .height(240.0)
        .x_axis_label(feature.clone())
        .y_axis_label(run.target.clone().unwrap_or_default())
        .legend(Legend::default())
        .show(ui, |p| {
            p.points(
                Points::new("test data", PlotPoints::from(view.points))
                    .radius(2.5)
                    .color(theme::TRAIN_COLOUR.gamma_multiply(0.7)),
            );
            p.line(
                Line::new("model", PlotPoints::from(view.curve))
                    .color(theme::ACCENT)
                    .width(2.5),
            );
        });
}

/// A background job's result: `None` (after a spinner with `running`, or the error after `failed`)
/// until it is there.
fn job_result<'a, T>(
    ui: &mut egui::Ui,
    view: &'a Option<Result<T, String>>,
    running: &str,
    failed: &str,
) -> Option<&'a T> {
    match view {
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(running);
            });
            None
        }
        Some(Err(e)) => {
            error_label(ui, &format!("{failed}: {e}"));
            None
        }
        Some(Ok(view)) => Some(view),
    }
}

/// Why this prediction: the base value and each feature's part, largest first, as signed bars.
fn contributions(ui: &mut egui::Ui, e: &wick_core::explain::Explanation) {
    let total = e.base + e.parts.iter().map(|p| p.1).sum::<f64>();
    ui.label(
        RichText::new(format!(
            "Why: {} = {:.3} (base) {} = {total:.3}",
            e.output,
            e.base,
            e.parts
                .iter()
                .map(|(n, v)| format!("{v:+.3} {n}"))
                .collect::<Vec<_>>()
                .join(" ")
        ))
        .small(),
    );
    ui.label(
        RichText::new(format!(
            "Each feature's part of the {} ({}).",
            e.scale, e.method
        ))
        .small()
        .weak(),
    );
    let largest = e
        .parts
        .iter()
        .map(|p| p.1.abs())
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    egui::Grid::new("contributions")
        .num_columns(3)
        .spacing([10.0, 2.0])
        .show(ui, |ui| {
            for (name, value) in &e.parts {
                ui.label(name.as_str());
                let (rect, _) = ui.allocate_exact_size(egui::vec2(220.0, 12.0), Sense::hover());
                let mid = rect.center().x;
                let len = (*value / largest) as f32 * rect.width() / 2.0;
                let bar = egui::Rect::from_min_max(
                    egui::pos2(mid.min(mid + len), rect.top()),
                    egui::pos2(mid.max(mid + len), rect.bottom()),
                );
                let colour = if *value >= 0.0 {
                    theme::ACCENT
                } else {
                    theme::TRAIN_COLOUR
                };
                ui.painter().rect_filled(bar, 2.0, colour);
                ui.painter()
                    .vline(mid, rect.y_range(), egui::Stroke::new(1.0, Color32::GRAY));
                ui.label(format!("{value:+.3}"));
                ui.end_row();
            }
        });
}

/// Test samples looked at when choosing the feature to plot; plenty to rank features, few enough to
/// do on the UI thread once.
const RANKING_SAMPLES: usize = 2_000;

/// The numeric feature most correlated (in absolute value) with the target over `test_rows`
/// (row in `df`, actual target).
fn strongest_feature(
    df: &wick_core::polars::prelude::DataFrame,
    test_rows: &[(usize, f64)],
    numeric: &[String],
) -> Option<String> {
    let strength = |name: &String| -> Option<f64> {
        let column = df.column(name).ok()?;
        let pairs: Vec<(f64, f64)> = test_rows
            .iter()
            .take(RANKING_SAMPLES)
            .filter_map(|&(row, y)| Some((column.get(row).ok()?.extract::<f64>()?, y)))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        Some(wick_core::metrics::correlation(&pairs)?.abs())
    };
    numeric
        .iter()
        .filter_map(|n| Some((n, strength(n)?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(n, _)| n.clone())
}

/// A row of typical values: the mean for numbers (the median is not in the summary) and the most
/// common value for text.
pub fn typical_row(summary: &wick_core::data::TableSummary) -> Map<String, Value> {
    summary
        .columns
        .iter()
        .map(|c| {
            let v = match (c.mean, c.top_values.first()) {
                (Some(mean), _) => serde_json::json!(mean),
                (None, Some((v, _))) => Value::String(v.clone()),
                (None, None) => Value::Null,
            };
            (c.name.clone(), v)
        })
        .collect()
}

fn metric_tile(ui: &mut egui::Ui, name: &str, value: String, help: &str) {
    theme::card(ui)
        .show(ui, |ui| {
            ui.set_min_width(120.0);
            ui.vertical(|ui| {
                ui.label(RichText::new(name).small().weak());
                ui.label(RichText::new(value).size(22.0).strong());
            });
        })
        .response
        .on_hover_text(help);
}

fn classification(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    run: &RunRecord,
    m: &ClassificationMetrics,
) {
    ui.horizontal(|ui| {
        metric_tile(
            ui,
            "Accuracy",
            format!("{:.1}%", m.accuracy * 100.0),
            "share of test samples classified correctly",
        );
        let macro_f1 =
            m.per_class.iter().map(|c| c.f1).sum::<f64>() / m.per_class.len().max(1) as f64;
        metric_tile(
            ui,
            "Macro F1",
            format!("{macro_f1:.3}"),
            "F1 averaged over classes: fair to small classes",
        );
    });
    let matrix = |cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui| {
        theme::section(ui, "Confusion matrix");
        ui.label(
            RichText::new(
                "Rows: actual class · columns: predicted. Click a cell to see its samples.",
            )
            .small()
            .weak(),
        );
        confusion_matrix(cx, ui, m);
    };
    let per_class = |ui: &mut egui::Ui| {
        theme::section(ui, "Per class");
        egui::Grid::new("per_class")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for h in ["Class", "Precision", "Recall", "F1", "Samples"] {
                    ui.label(RichText::new(h).small().strong());
                }
                ui.end_row();
                for c in &m.per_class {
                    ui.label(&c.label);
                    ui.label(format!("{:.2}", c.precision));
                    ui.label(format!("{:.2}", c.recall));
                    ui.label(format!("{:.2}", c.f1));
                    ui.label(c.support.to_string());
                    ui.end_row();
                }
            });
    };
    // Side by side only where both fit: a 10-class matrix beside the table overlapped it in a
    // 1,000 px window.
    if ui.available_width() >= 2.0 * confusion_width(m) + 160.0 {
        ui.columns(2, |cols| {
            matrix(cx, &mut cols[0]);
            per_class(&mut cols[1]);
        });
    } else {
        matrix(cx, ui);
        per_class(ui);
    }
    samples(cx, ui, run, m);
}

/// The confusion matrix's cell size for `k` classes.
fn confusion_cell(k: usize) -> f32 {
    (300.0 / k.max(1) as f32).clamp(26.0, 64.0)
}

/// About how wide the confusion matrix is drawn: the row labels and one cell per class.
fn confusion_width(m: &ClassificationMetrics) -> f32 {
    let k = m.confusion.len();
    let label_chars = m
        .per_class
        .iter()
        .map(|c| c.label.chars().count())
        .max()
        .unwrap_or(1) as f32;
    label_chars * 7.0 + 12.0 + k as f32 * (confusion_cell(k) + 2.0)
}

fn confusion_matrix(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, m: &ClassificationMetrics) {
    let k = m.confusion.len();
    let max = m
        .confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1);
    let labels: Vec<String> = m.per_class.iter().map(|c| c.label.clone()).collect();
    let cell = confusion_cell(k);
    egui::Grid::new("confusion")
        .spacing([2.0, 2.0])
        .show(ui, |ui| {
            ui.label("");
            for l in &labels {
                ui.label(RichText::new(l).small());
            }
            ui.end_row();
            for (a, row) in m.confusion.iter().enumerate() {
                ui.label(RichText::new(labels.get(a).cloned().unwrap_or_default()).small());
                for (p, &n) in row.iter().enumerate() {
                    let (rect, response) =
                        ui.allocate_exact_size(egui::vec2(cell, cell), Sense::click());
                    let strength = n as f32 / max as f32;
                    let base = if a == p { theme::GOOD } else { theme::BAD };
                    let fill = if n == 0 {
                        ui.visuals().faint_bg_color
                    } else {
                        base.gamma_multiply(0.15 + 0.85 * strength)
                    };
                    ui.painter().rect_filled(rect, 3.0, fill);
                    if cx.view.cm_filter == Some((a, p)) {
                        ui.painter().rect_stroke(
                            rect,
                            3.0,
                            egui::Stroke::new(2.5, theme::ACCENT),
                            egui::StrokeKind::Inside,
                        );
                    }
                    let text_colour = if strength > 0.5 {
                        Color32::WHITE
                    } else {
                        ui.visuals().text_color()
                    };
                    ui.painter().text(
                        rect.center(),
                        egui::Align2::CENTER_CENTER,
                        n.to_string(),
                        egui::FontId::proportional(13.0),
                        text_colour,
                    );
                    let actual = labels.get(a).cloned().unwrap_or_default();
                    let predicted = labels.get(p).cloned().unwrap_or_default();
                    let label = format!("actual {actual}, predicted {predicted}: {n}");
                    response.widget_info(|| {
                        egui::WidgetInfo::labeled(egui::Role::Button, true, &label)
                    });
                    if response.on_hover_text(&label).clicked() {
                        cx.view.cm_filter = if cx.view.cm_filter == Some((a, p)) {
                            None
                        } else {
                            Some((a, p))
                        };
                    }
                }
                ui.end_row();
            }
        });
}

fn samples(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, run: &RunRecord, m: &ClassificationMetrics) {
    let state = cx.state;
    let labels: Vec<String> = m.per_class.iter().map(|c| c.label.clone()).collect();
    theme::section(ui, "Test samples");
    ui.horizontal(|ui| {
        ui.checkbox(&mut cx.view.mistakes_only, "Mistakes only");
        if let Some((a, p)) = cx.view.cm_filter {
            let text = format!(
                "Showing actual {} predicted as {}",
                labels.get(a).cloned().unwrap_or_default(),
                labels.get(p).cloned().unwrap_or_default()
            );
            ui.label(RichText::new(text).strong());
            if ui.small_button("Clear filter").clicked() {
                cx.view.cm_filter = None;
            }
        }
    });
    let class_of = |s: &TestSample| match s.actual {
        Actual::Class(c) => c,
        Actual::Value(v) => v as usize,
    };
    let predicted_of = |s: &TestSample| match s.predicted {
        Prediction::Class { class_index, .. } => class_index,
        Prediction::Value { value } => value as usize,
    };
    let filter = cx.view.cm_filter;
    let mistakes_only = cx.view.mistakes_only;
    let shown: Vec<&TestSample> = run
        .test_samples
        .iter()
        .filter(|s| filter.is_none_or(|(a, p)| class_of(s) == a && predicted_of(s) == p))
        .filter(|s| !mistakes_only || class_of(s) != predicted_of(s))
        .collect();
    ui.label(
        RichText::new(format!("{} samples", shown.len()))
            .small()
            .weak(),
    );
    let images = state.loaded().is_some_and(LoadedData::is_images);
    if images {
        let items: Vec<_> = shown
            .iter()
            .take(120)
            .map(|s| {
                let said = labels.get(predicted_of(s)).cloned().unwrap_or_default();
                let sure = s.predicted.confidence().unwrap_or(0.0) * 100.0;
                // A mistake says what the image really is, too.
                let caption = if class_of(s) == predicted_of(s) {
                    format!("{said} {sure:.0}%")
                } else {
                    format!(
                        "{said} {sure:.0}% (is {})",
                        labels.get(class_of(s)).cloned().unwrap_or_default()
                    )
                };
                (
                    std::path::PathBuf::from(&s.source),
                    caption,
                    Some(class_of(s) == predicted_of(s)),
                )
            })
            .collect();
        // Where the model looked, on every shown image: overlays arrive one by one from a job.
        ui.checkbox(&mut cx.view.grid_saliency, "Where the model looked, on each image")
            .on_hover_text("Red marks the pixels the predicted class's score depends on most (the gradient of its logit)");
        if cx.view.grid_saliency {
            let missing: Vec<_> = items
                .iter()
                .map(|(p, _, _)| p.clone())
                .filter(|p| {
                    !state.grid_saliency.requested.contains(p)
                        || state.grid_saliency.run != Some(run.id)
                })
                .collect();
            if !missing.is_empty() {
                cx.send(Command::RequestGridSaliency {
                    run_id: run.id,
                    paths: missing,
                });
            }
            let textures = &mut cx.view.grid_saliency_textures;
            if textures.0 != Some(run.id) {
                *textures = (Some(run.id), Default::default());
            }
            if state.grid_saliency.run == Some(run.id) {
                for (path, image) in &state.grid_saliency.overlays {
                    if !textures.1.contains_key(path) {
                        let texture = ui.ctx().load_texture(
                            format!("saliency {}", path.display()),
                            image.clone(),
                            egui::TextureOptions::LINEAR,
                        );
                        textures.1.insert(path.clone(), texture);
                    }
                }
                let done = items
                    .iter()
                    .filter(|(p, _, _)| textures.1.contains_key(p))
                    .count();
                if let Some(e) = &state.grid_saliency.error {
                    error_label(ui, e);
                } else if done < items.len() {
                    ui.label(
                        RichText::new(format!(
                            "Computing saliency maps: {done} of {}…",
                            items.len()
                        ))
                        .small()
                        .weak(),
                    );
                }
            }
            let overlays = std::mem::take(&mut cx.view.grid_saliency_textures.1);
            thumbnail_grid_with(cx, ui, items.into_iter(), &overlays);
            cx.view.grid_saliency_textures.1 = overlays;
        } else {
            thumbnail_grid(cx, ui, items.into_iter());
        }
    } else {
        // The row's first few inputs, so a mistake can be read, not only counted.
        let df = match state.loaded() {
            Some(LoadedData::Table { df, .. }) => Some(df.clone()),
            _ => None,
        };
        let features: Vec<String> = if df.is_some() {
            state.features().into_iter().take(4).collect()
        } else {
            Vec::new()
        };
        let value = |feature: &str, source: &str| -> String {
            let cell = crate::requests::row_index(source).and_then(|r| {
                df.as_ref()?
                    .column(feature)
                    .ok()?
                    .get(r)
                    .ok()
                    .map(|v| v.str_value().to_string())
            });
            cell.unwrap_or_default()
        };
        egui::Grid::new("sample_rows")
            .striped(true)
            .num_columns(4 + features.len())
            .show(ui, |ui| {
                for h in ["Row"]
                    .into_iter()
                    .chain(features.iter().map(String::as_str))
                    .chain(["Actual", "Predicted", "Confidence"])
                {
                    ui.label(RichText::new(h).small().strong());
                }
                ui.end_row();
                for s in shown.iter().take(200) {
                    let right = class_of(s) == predicted_of(s);
                    ui.label(&s.source);
                    for f in &features {
                        ui.label(RichText::new(value(f, &s.source)).small());
                    }
                    ui.label(labels.get(class_of(s)).cloned().unwrap_or_default());
                    ui.colored_label(
                        if right { theme::GOOD } else { theme::BAD },
                        labels.get(predicted_of(s)).cloned().unwrap_or_default(),
                    );
                    ui.label(format!(
                        "{:.0}%",
                        s.predicted.confidence().unwrap_or(0.0) * 100.0
                    ));
                    ui.end_row();
                }
            });
    }
}

/// The tried image, or with the toggle on, where the model looked (red: the pixels the predicted
/// class's score depends on most).
fn saliency(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    s: &crate::loaded::TrySaliency,
    generation: u64,
) {
    if cx
        .view
        .saliency_textures
        .as_ref()
        .is_none_or(|(g, _, _)| *g != generation)
    {
        let image =
            ui.ctx()
                .load_texture("try-image", s.image.clone(), egui::TextureOptions::NEAREST);
        let overlay = ui.ctx().load_texture(
            "try-saliency",
            s.overlay.clone(),
            egui::TextureOptions::NEAREST,
        );
        cx.view.saliency_textures = Some((generation, image, overlay));
    }
    ui.checkbox(&mut cx.view.show_saliency, "Show where the model looked")
        .on_hover_text("Red marks the pixels the predicted class's score changes most with (the gradient's size)");
    if let Some((_, image, overlay)) = &cx.view.saliency_textures {
        let texture = if cx.view.show_saliency {
            overlay
        } else {
            image
        };
        // Both drawn at the overlay's size (at least 224 pixels a side), pixels kept sharp.
        let size = overlay.size_vec2() * (224.0 / overlay.size_vec2().max_elem().max(1.0)).min(1.0);
        ui.add(egui::Image::new(texture).fit_to_exact_size(size));
    }
}

fn try_it(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, run: &RunRecord) {
    let state = cx.state;
    theme::section(ui, "Try it");
    theme::card(ui).show(ui, |ui| {
        ui.set_width(ui.available_width());
        match state.loaded().cloned() {
            Some(LoadedData::Images { .. }) => {
                ui.horizontal(|ui| {
                    if ui.button("Choose image…").clicked() {
                        cx.send(Command::Host(HostRequest::PickTryImage));
                    }
                    ui.label("or drop an image file onto the window to see what the model says.");
                });
            }
            Some(LoadedData::Table { summary, df, .. }) => {
                if cx.view.try_fields_for_run != Some(run.id) {
                    // A real row to start from, the run's first test row, so every field holds a
                    // value the data has (a mean month of 6.523 beside a January date is none);
                    // the typical values only where the run has no test rows.
                    let test_row = run
                        .test_samples
                        .first()
                        .and_then(|s| crate::requests::row_index(&s.source));
                    let typical = typical_row(&summary);
                    let features = state.features();
                    cx.view.try_fields = features
                        .iter()
                        .map(|f| {
                            let real = test_row.and_then(|r| {
                                df.column(f)
                                    .ok()?
                                    .get(r)
                                    .ok()
                                    .map(|v| wick_core::explain::any_value_json(&v))
                            });
                            let v = match real.as_ref().or(typical.get(f)) {
                                // Whole numbers (a month, a count) without decimals, others to three.
                                Some(Value::Number(n)) => match n.as_f64() {
                                    Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => {
                                        format!("{x:.0}")
                                    }
                                    Some(x) => format!("{x:.3}"),
                                    None => n.to_string(),
                                },
                                Some(Value::String(s)) => s.clone(),
                                _ => String::new(),
                            };
                            (f.clone(), v)
                        })
                        .collect();
                    cx.view.try_fields_for_run = Some(run.id);
                }
                egui::Grid::new("try_fields").num_columns(4).show(ui, |ui| {
                    for (i, (name, value)) in cx.view.try_fields.iter_mut().enumerate() {
                        ui.label(name.as_str());
                        // A fixed size: a grid cell is as wide as last frame's, which would clip dates.
                        ui.add_sized([110.0, 20.0], egui::TextEdit::singleline(value));
                        if i % 2 == 1 {
                            ui.end_row();
                        }
                    }
                });
                if ui.button("Predict").clicked() {
                    let row: Map<String, Value> = cx
                        .view
                        .try_fields
                        .iter()
                        .map(|(k, v)| {
                            let value = match v.trim().parse::<f64>() {
                                Ok(n) => serde_json::json!(n),
                                Err(_) if v.trim().is_empty() => Value::Null,
                                Err(_) => Value::String(v.clone()),
                            };
                            (k.clone(), value)
                        })
                        .collect();
                    cx.send(Command::TryRow(row));
                }
            }
            None => {
                ui.label("Open the dataset again to try the model.");
            }
        }
        if state.try_it.busy {
            ui.spinner();
        }
        match &state.try_it.result {
            Some(Ok(text)) => {
                ui.label(
                    RichText::new(format!("Prediction: {text}"))
                        .size(18.0)
                        .strong()
                        .color(theme::ACCENT),
                );
                if let Some(e) = &state.try_it.explanation {
                    contributions(ui, e);
                }
                if let Some(s) = &state.try_it.saliency {
                    saliency(cx, ui, s, state.try_it.generation);
                }
            }
            Some(Err(e)) => error_label(ui, e),
            None => {}
        }
    });
}
