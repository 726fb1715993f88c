//! Data: drop or open a dataset, or start from a sample; then see its table, statistics and warnings
//! (tables) or thumbnails and class counts (images).

use egui::{RichText, Sense};
use egui_extras::{Column, TableBuilder};
use egui_plot::{Bar, BarChart, Plot};
use wick_core::data::{cut_text, ColumnKind, ImageIndex, TableSummary};
use wick_core::polars::prelude::DataFrame;

use crate::checks::imbalance_warning;
use crate::command::Command;
use crate::host::HostRequest;
use crate::loaded::{Histogram, LoadedData};
use crate::screens::common::{error_label, thumbnail_grid, ScreenCtx};
use crate::state::{AppState, DataState, Screen};
use crate::theme;

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.heading("Data");
    match &state.data {
        DataState::Empty => {
            ui.label("Start with your own data or one of the samples.");
            drop_zone(cx, ui, true);
            samples(cx, ui);
        }
        DataState::Loading(path) => {
            let path = path.clone();
            ui.add_space(30.0);
            match cx.state.load_progress {
                // A large file streams: every row is read once for its statistics.
                Some(fraction) => {
                    // A folder of many photos: each file's header is read to index it.
                    let what = if path.is_dir() {
                        "Indexing the images in"
                    } else {
                        "Reading"
                    };
                    ui.add(
                        egui::ProgressBar::new(fraction)
                            .text(format!(
                                "{what} {} ({:.0}%)…",
                                path.display(),
                                fraction * 100.0
                            ))
                            .animate(true),
                    );
                }
                None => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(format!("Opening {}…", path.display()));
                    });
                }
            }
        }
        DataState::Failed { path, message } => {
            let (path, message) = (path.clone(), message.clone());
            error_label(ui, &format!("Could not open {}: {message}", path.display()));
            drop_zone(cx, ui, true);
            samples(cx, ui);
        }
        DataState::Loaded { path, data } => {
            let (path, data) = (path.clone(), data.clone());
            ui.horizontal(|ui| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                ui.label(RichText::new(name).strong().size(16.0))
                    .on_hover_text(path.display().to_string());
                ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                    if ui
                        .add(
                            egui::Button::new(RichText::new("Next: choose a model  →").strong())
                                .fill(theme::ACCENT.gamma_multiply(0.35)),
                        )
                        .clicked()
                    {
                        cx.send(Command::GoTo(Screen::Model));
                    }
                    // The samples stay one click away once a dataset is open.
                    let samples = cx.state.samples();
                    if !samples.is_empty() {
                        ui.menu_button("Samples", |ui| {
                            for (sample, _) in samples {
                                if ui
                                    .button(format!("Open {}", sample.title))
                                    .on_hover_text(sample.blurb)
                                    .clicked()
                                {
                                    cx.send(Command::OpenSample(sample.id));
                                    ui.close();
                                }
                            }
                        });
                    }
                    if ui
                        .button("Open folder…")
                        .on_hover_text("A folder of images, one sub-folder per class")
                        .clicked()
                    {
                        cx.send(Command::Host(HostRequest::PickDataset { folder: true }));
                    }
                    if ui
                        .button("Open file…")
                        .on_hover_text("A CSV, TSV, Parquet or NDJSON table")
                        .clicked()
                    {
                        cx.send(Command::Host(HostRequest::PickDataset { folder: false }));
                    }
                });
            });
            match &data {
                LoadedData::Table {
                    df,
                    summary,
                    histograms,
                    ..
                } => table_view(cx, ui, df, summary, histograms),
                LoadedData::Images { index } => images_view(cx, ui, index),
            }
        }
    }
}

fn drop_zone(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, big: bool) {
    let height = if big { 170.0 } else { 60.0 };
    let width = ui.available_width();
    let (rect, response) = ui.allocate_exact_size(egui::vec2(width, height), Sense::click());
    let hovered = response.hovered() || ui.ctx().input(|i| !i.raw.hovered_files.is_empty());
    let stroke = egui::Stroke::new(
        2.0,
        if hovered {
            theme::ACCENT
        } else {
            ui.visuals().weak_text_color()
        },
    );
    ui.painter().rect(
        rect,
        12.0,
        ui.visuals().faint_bg_color,
        stroke,
        egui::StrokeKind::Inside,
    );
    ui.painter().text(
        rect.center() - egui::vec2(0.0, 18.0),
        egui::Align2::CENTER_CENTER,
        "Drop a CSV, Parquet file or a folder of images here",
        egui::FontId::new(18.0, theme::strong_family()),
        ui.visuals().text_color(),
    );
    ui.painter().text(
        rect.center() + egui::vec2(0.0, 12.0),
        egui::Align2::CENTER_CENTER,
        "CSV · TSV · Parquet · NDJSON · one sub-folder of images per class",
        egui::FontId::proportional(13.0),
        ui.visuals().weak_text_color(),
    );
    let button_rect = egui::Rect::from_center_size(
        rect.center() + egui::vec2(-70.0, 50.0),
        egui::vec2(130.0, 28.0),
    );
    let folder_rect = egui::Rect::from_center_size(
        rect.center() + egui::vec2(70.0, 50.0),
        egui::vec2(130.0, 28.0),
    );
    if ui
        .put(button_rect, egui::Button::new("Open file…"))
        .clicked()
    {
        cx.send(Command::Host(HostRequest::PickDataset { folder: false }));
    }
    if ui
        .put(folder_rect, egui::Button::new("Open folder…"))
        .clicked()
    {
        cx.send(Command::Host(HostRequest::PickDataset { folder: true }));
    }
    ui.add_space(10.0);
}

fn samples(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    let samples = state.samples();
    if samples.is_empty() {
        return;
    }
    theme::section(ui, "Try a sample dataset");
    ui.horizontal_wrapped(|ui| {
        for (sample, _) in samples {
            ui.allocate_ui(egui::vec2(276.0, 120.0), |ui| {
                theme::card(ui).show(ui, |ui| {
                    ui.set_width(250.0);
                    ui.vertical(|ui| {
                        if ui
                            .add(
                                egui::Button::new(RichText::new(sample.title).strong().size(15.0))
                                    .frame(false),
                            )
                            .clicked()
                        {
                            cx.send(Command::OpenSample(sample.id));
                        }
                        ui.label(RichText::new(sample.blurb).small());
                        if ui.button(format!("Open {}", sample.title)).clicked() {
                            cx.send(Command::OpenSample(sample.id));
                        }
                    });
                })
            });
        }
    });
}

fn table_view(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    df: &DataFrame,
    summary: &TableSummary,
    histograms: &[Option<Histogram>],
) {
    let state = cx.state;
    ui.label(
        RichText::new(format!(
            "{} rows × {} columns · {:?}",
            summary.rows,
            summary.columns.len(),
            summary.format
        ))
        .strong(),
    );
    let warnings = table_warnings(state, summary);
    for w in &warnings {
        ui.colored_label(theme::ACCENT, format!("⚠ {w}"));
    }
    personal_choices(cx, ui, summary);
    ui.add_space(4.0);
    ui.columns(2, |cols| {
        theme::section(&mut cols[0], "Columns");
        column_list(cx, &mut cols[0], summary);
        let selected = cx
            .view
            .selected_column
            .unwrap_or(0)
            .min(summary.columns.len().saturating_sub(1));
        if let Some(col) = summary.columns.get(selected) {
            theme::section(&mut cols[1], &format!("Distribution of {}", col.name));
            column_chart(
                &mut cols[1],
                col,
                histograms.get(selected).and_then(Option::as_ref),
            );
        }
    });
    theme::section(ui, "Rows");
    preview_table(ui, df);
}

/// Warnings a person should see before training: missing values, constant columns, class imbalance.
pub fn table_warnings(state: &AppState, summary: &TableSummary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((sample, total)) = state.sampled() {
        out.push(format!(
            "This file is large ({total} rows): the statistics cover every row, and the rows shown here are a seeded random sample of {sample}. Linear and tree models train on every row, read from the file; networks on a stratified sample"
        ));
    }
    for c in &summary.columns {
        if c.missing > 0 {
            out.push(format!(
                "{}: {} missing values ({:.1}%) — they will be filled with the column mean or most common value",
                c.name,
                c.missing,
                100.0 * c.missing as f64 / summary.rows.max(1) as f64
            ));
        }
        // Dates, IDs and constant columns: what training does with them, and why.
        out.extend(c.advice.note(&c.name));
    }
    if let Some(w) = imbalance_warning(state) {
        out.push(w);
    }
    out
}

/// The columns that look like personal data (or that the user marked), each with Keep, Hash and
/// Drop; shown on the Data screen and again on the Model screen, where opening a table lands.
pub fn personal_choices(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, summary: &TableSummary) {
    use wick_core::data::PersonalAction;
    let state = cx.state;
    let personal = &state.project.model.personal;
    let target = state.project.model.target.as_deref();
    let flagged: Vec<_> = summary
        .columns
        .iter()
        .filter(|c| {
            Some(c.name.as_str()) != target
                && (c.personal.is_some() || personal.action(&c.name).is_some())
        })
        .collect();
    if flagged.is_empty() {
        return;
    }
    theme::section(ui, "Personal data");
    ui.label(
        RichText::new(
            "Drop leaves a column out of training. Hash trains on a salted SHA-256 of each value instead of the value; \
             the endpoint hashes what callers send the same way, and its request log keeps only the hashes.",
        )
        .small(),
    );
    egui::Grid::new("personal").num_columns(3).show(ui, |ui| {
        for c in flagged {
            ui.label(RichText::new(&c.name).strong());
            match c.personal {
                Some(kind) => {
                    ui.colored_label(theme::ACCENT, format!("⚠ looks like {}", kind.describe()))
                }
                None => ui.label("marked by you"),
            };
            let current = personal.action(&c.name);
            ui.horizontal(|ui| {
                for (label, action) in [
                    ("Keep", None),
                    ("Hash", Some(PersonalAction::Hash)),
                    ("Drop", Some(PersonalAction::Drop)),
                ] {
                    if ui.selectable_label(current == action, label).clicked() && current != action
                    {
                        cx.send(Command::SetPersonal {
                            column: c.name.clone(),
                            action,
                        });
                    }
                }
            });
            ui.end_row();
        }
    });
}

fn column_list(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, summary: &TableSummary) {
    egui::Grid::new("columns")
        .striped(true)
        .num_columns(5)
        .show(ui, |ui| {
            for h in ["Column", "Type", "Missing", "Distinct", "Mean"] {
                ui.label(RichText::new(h).small().strong());
            }
            ui.end_row();
            for (i, c) in summary.columns.iter().enumerate() {
                let selected = cx.view.selected_column.unwrap_or(0) == i;
                if ui.selectable_label(selected, &c.name).clicked() {
                    cx.view.selected_column = Some(i);
                }
                let kind = if c.advice == wick_core::data::FeatureAdvice::Date {
                    "date"
                } else {
                    kind_name(c.kind)
                };
                ui.label(RichText::new(kind).small());
                ui.label(c.missing.to_string());
                ui.label(if c.distinct_approximate {
                    format!("≈{}", c.distinct)
                } else {
                    c.distinct.to_string()
                });
                ui.label(c.mean.map(|m| format!("{m:.3}")).unwrap_or_default());
                ui.end_row();
            }
        });
}

fn kind_name(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::Numeric => "number",
        ColumnKind::Text => "text",
        ColumnKind::Boolean => "yes/no",
        ColumnKind::Temporal => "date",
        ColumnKind::Other => "other",
    }
}

fn column_chart(
    ui: &mut egui::Ui,
    col: &wick_core::data::ColumnSummary,
    histogram: Option<&Histogram>,
) {
    // Dates and IDs or free text have nearly one row per value: a few bars of count 1 say nothing.
    let spread = match col.advice {
        wick_core::data::FeatureAdvice::Date => {
            Some("dates: training uses their year, month, day of week, hour and days since 1970")
        }
        wick_core::data::FeatureAdvice::IdLike { .. } => {
            Some("values that nearly all differ (IDs or free text)")
        }
        _ => None,
    };
    if let (None, Some(what)) = (histogram, spread) {
        ui.add_space(20.0);
        ui.label(
            RichText::new(format!(
                "{} distinct {what}; no distribution to draw.",
                col.distinct
            ))
            .weak(),
        );
        if let Some((first, _)) = col.top_values.first() {
            ui.label(RichText::new(format!("For example: {first}")).small());
        }
        return;
    }
    let bars: Vec<Bar> = match histogram {
        Some(h) => h
            .counts
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                Bar::new(h.min + (i as f64 + 0.5) * h.bin_width, n as f64).width(h.bin_width * 0.95)
            })
            .collect(),
        None => col
            .top_values
            .iter()
            .enumerate()
            .map(|(i, (_, n))| Bar::new(i as f64, *n as f64).width(0.7))
            .collect(),
    };
    let labels: Vec<String> = col.top_values.iter().map(|(v, _)| v.clone()).collect();
    let is_histogram = histogram.is_some();
    Plot::new(format!("hist-{}", col.name))
        .height(190.0)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .x_axis_formatter(move |mark, _| {
            if is_histogram {
                format!("{:.4}", mark.value)
                    .trim_end_matches('0')
                    .trim_end_matches('.')
                    .to_string()
            } else {
                let i = mark.value.round();
                if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            }
        })
        .show(ui, |p| {
            p.bar_chart(BarChart::new(col.name.clone(), bars).color(theme::TRAIN_COLOUR))
        });
    let stats = match (col.min, col.max, col.mean, col.std) {
        (Some(min), Some(max), Some(mean), Some(std)) => {
            format!("min {min:.3} · max {max:.3} · mean {mean:.3} · std {std:.3}")
        }
        _ => col
            .top_values
            .iter()
            .map(|(v, n)| format!("{v}: {n}"))
            .collect::<Vec<_>>()
            .join(" · "),
    };
    ui.label(RichText::new(stats).small());
}

/// Every row, virtualised: only the rows on screen are formatted.
/// Characters a preview cell shows; longer text is cut with "…" and shown whole on hover.
const PREVIEW_CELL_CHARS: usize = 60;
/// Characters the hover shows of a long cell.
const HOVER_TEXT_CHARS: usize = 2_000;

fn preview_table(ui: &mut egui::Ui, df: &DataFrame) {
    let columns = df.columns();
    let row_height = 22.0;
    egui::ScrollArea::horizontal()
        .id_salt("rows_h")
        .show(ui, |ui| {
            TableBuilder::new(ui)
                .id_salt("rows")
                .striped(true)
                .max_scroll_height(320.0)
                .column(Column::auto().at_least(44.0))
                // Inter's digits differ in width: a column sized on the first rows cut later dates
                // ("2012-02-…"), so every column starts wide enough for an ISO date.
                .columns(Column::auto().at_least(86.0).clip(true), columns.len())
                .header(row_height, |mut header| {
                    header.col(|ui| {
                        ui.label(RichText::new("#").small().strong());
                    });
                    for c in columns {
                        header.col(|ui| {
                            ui.label(RichText::new(c.name().as_str()).small().strong());
                        });
                    }
                })
                .body(|body| {
                    body.rows(row_height, df.height(), |mut row| {
                        let i = row.index();
                        row.col(|ui| {
                            ui.label(RichText::new((i + 1).to_string()).weak().small());
                        });
                        for c in columns {
                            row.col(|ui| {
                                let text = match c.get(i) {
                                    Ok(v) if v.is_null() => "—".to_string(),
                                    Ok(v) => v.str_value().to_string(),
                                    Err(_) => String::new(),
                                };
                                // A review or a ticket is a paragraph: the cell shows its start and
                                // the tooltip the text (up to a screenful).
                                if text.chars().count() > PREVIEW_CELL_CHARS {
                                    ui.label(cut_text(&text, PREVIEW_CELL_CHARS)).on_hover_text(
                                        text.chars().take(HOVER_TEXT_CHARS).collect::<String>(),
                                    );
                                } else {
                                    ui.label(text);
                                }
                            });
                        }
                    });
                });
        });
}

fn images_view(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, index: &ImageIndex) {
    let state = cx.state;
    let counts = index.class_counts();
    let shape = index.default_shape(64);
    ui.label(
        RichText::new(format!(
            "{} images · {} classes · most are {}×{} with {} channel{}",
            index.len(),
            counts.len(),
            shape.width,
            shape.height,
            shape.channels,
            if shape.channels == 1 { "" } else { "s" }
        ))
        .strong(),
    );
    if let Some(w) = imbalance_warning(state) {
        ui.colored_label(theme::ACCENT, format!("⚠ {w}"));
    }
    if !index.skipped.is_empty() {
        egui::CollapsingHeader::new(format!("⚠ {} files were skipped", index.skipped.len())).show(
            ui,
            |ui| {
                for s in index.skipped.iter().take(50) {
                    ui.label(RichText::new(format!("{}: {}", s.path.display(), s.reason)).small());
                }
            },
        );
    }
    theme::section(ui, "Images per class");
    let labels: Vec<String> = counts.iter().map(|(c, _)| c.clone()).collect();
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, (c, n))| Bar::new(i as f64, *n as f64).name(c).width(0.7))
        .collect();
    Plot::new("class_counts")
        .height(170.0)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .x_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .show(ui, |p| {
            p.bar_chart(BarChart::new("images", bars).color(theme::TRAIN_COLOUR))
        });
    theme::section(ui, "Examples");
    let samples = index.samples().unwrap_or_default();
    let mut shown: Vec<(std::path::PathBuf, usize)> = Vec::new();
    // Round-robin over classes, as the thumbnail loader does.
    let mut per_class: Vec<Vec<&(std::path::PathBuf, usize)>> =
        vec![Vec::new(); index.classes.len()];
    for s in &samples {
        if let Some(v) = per_class.get_mut(s.1) {
            v.push(s);
        }
    }
    'outer: for i in 0.. {
        let mut any = false;
        for class in &per_class {
            if let Some(s) = class.get(i) {
                any = true;
                shown.push((*s).clone());
                if shown.len() >= 60 {
                    break 'outer;
                }
            }
        }
        if !any {
            break;
        }
    }
    thumbnail_grid(
        cx,
        ui,
        shown.iter().map(|(p, c)| {
            (
                p.clone(),
                index.classes.get(*c).cloned().unwrap_or_default(),
                None,
            )
        }),
    );
}
