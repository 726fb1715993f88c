//! Monitor: the published model on live traffic. Per version: requests and latency over time,
//! errors, what it predicts, how far each input has drifted from training (worst first), and the
//! live accuracy from feedback; request logging is switched here. The figures come from the
//! endpoint (built-in or remote) every few seconds while the screen is shown.

use egui::RichText;
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::command::Command;
use crate::screens::common::{empty_state, error_label, ScreenCtx};
use crate::state::Screen;
use crate::theme;

/// How often the figures are asked for while the screen is shown.
pub const POLL_SECS: f64 = 3.0;
/// The windows offered: label and seconds.
const WINDOWS: [(&str, f64); 3] = [
    ("Last 5 minutes", 300.0),
    ("Last hour", 3600.0),
    ("Last day", 86_400.0),
];
/// The logging shares offered.
const SAMPLES: [(&str, f64); 4] = [("Off", 0.0), ("1 %", 0.01), ("10 %", 0.1), ("All", 1.0)];

pub fn ui(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui) {
    let state = cx.state;
    ui.heading("Monitor");
    let Some(published) = state.publish.last.clone() else {
        empty_state(
            ui,
            "Publish a model first; then watch it on live traffic here.",
            |ui| {
                if ui.button("Go to Publish").clicked() {
                    cx.send(Command::GoTo(Screen::Publish));
                }
            },
        );
        return;
    };
    let m = &state.monitor;
    if !m.busy
        && m.asked
            .is_none_or(|t| t.elapsed().as_secs_f64() >= POLL_SECS)
    {
        cx.send(Command::RefreshMonitor);
    }
    ui.ctx()
        .request_repaint_after(std::time::Duration::from_secs_f64(POLL_SECS));
    // The endpoint's address is in the status bar.
    ui.label(
        RichText::new(format!(
            "`{}` · figures of the server that answers, refreshed every {POLL_SECS:.0} s",
            published.name
        ))
        .weak(),
    );
    ui.add_space(6.0);
    let report = match &m.report {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            error_label(ui, e);
            None
        }
        None => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Asking the endpoint…");
            });
            None
        }
    };
    ui.horizontal(|ui| {
        ui.label("Log requests");
        let current = report.map(|r| r.log_sample).unwrap_or(0.0);
        for (label, sample) in SAMPLES {
            if ui.add(egui::Button::selectable((current - sample).abs() < 1e-9, label)).on_hover_text("The share of requests (and answers) kept in the endpoint's store, for feedback and retraining").clicked() {
                cx.send(Command::SetLogging { name: published.name.clone(), sample });
            }
        }
        ui.separator();
        for (label, secs) in WINDOWS {
            if ui.add(egui::Button::selectable(m.window_secs == secs, label)).clicked() {
                cx.send(Command::SetMonitorWindow(secs));
            }
        }
    });
    if let Some(e) = &m.logging_error {
        error_label(ui, e);
    }
    if let Some(report) = report {
        figures(ui, m, report);
    }
    label_queue(cx, ui, report.is_some_and(|r| r.log_sample > 0.0));
    improve_with_live_data(cx, ui, &published);
}

/// The label queue: logged requests without a true outcome, the least sure first; a person picks or
/// types the outcome, and it goes to the endpoint as that request's feedback.
fn label_queue(cx: &mut ScreenCtx<'_>, ui: &mut egui::Ui, logging: bool) {
    let state = cx.state;
    let queue = &state.monitor.queue;
    theme::section(ui, "Label queue");
    ui.label(
        RichText::new("Logged requests without a true outcome, the ones the model was least sure of first. A label you send is the request's feedback: it counts in the live metric above and becomes a training row below.")
            .small()
            .weak(),
    );
    if !logging {
        ui.label(
            RichText::new(
                "Only logged requests can be labelled: choose a share under Log requests above.",
            )
            .small(),
        );
    }
    ui.horizontal(|ui| {
        if ui
            .add_enabled(!queue.busy, egui::Button::new("Get requests to label"))
            .clicked()
        {
            cx.send(Command::FetchLabelQueue);
        }
        if queue.busy {
            ui.spinner();
        }
    });
    let q = match &queue.result {
        None => return,
        Some(Err(e)) => return error_label(ui, e),
        Some(Ok(q)) => q,
    };
    if q.requests.is_empty() {
        ui.label("Nothing waits for a label: every logged request has its outcome, or none is logged yet.");
        return;
    }
    let features: Vec<&String> = q.requests[0].values.keys().take(4).collect();
    let mut send = None;
    egui::ScrollArea::horizontal()
        .id_salt("label_queue")
        .show(ui, |ui| {
            egui::Grid::new("label_queue_grid")
                .striped(true)
                .spacing([12.0, 6.0])
                .show(ui, |ui| {
                    for h in features.iter().map(|f| f.as_str()).chain([
                        "Model said",
                        "True outcome",
                        "",
                    ]) {
                        ui.label(RichText::new(h).small().strong());
                    }
                    ui.end_row();
                    for r in &q.requests {
                        for f in &features {
                            ui.label(r.values.get(*f).map(short_value).unwrap_or_default());
                        }
                        let said = match r.confidence {
                            Some(c) => {
                                format!("{} ({:.0}% sure)", short_value(&r.predicted), c * 100.0)
                            }
                            None => short_value(&r.predicted),
                        };
                        ui.label(said);
                        match queue.sent.get(&r.id) {
                            Some(Some(Ok(v))) => {
                                ui.colored_label(theme::GOOD, format!("✓ {}", short_value(v)));
                                ui.label("");
                            }
                            Some(None) => {
                                ui.spinner();
                                ui.label("");
                            }
                            sent => {
                                let answer = cx
                                    .view
                                    .label_answers
                                    .entry(r.id.clone())
                                    .or_insert_with(|| short_value(&r.predicted));
                                if q.labels.is_empty() {
                                    ui.add(egui::TextEdit::singleline(answer).desired_width(90.0));
                                } else {
                                    egui::ComboBox::from_id_salt(("label", &r.id))
                                        .selected_text(answer.as_str())
                                        .show_ui(ui, |ui| {
                                            for label in &q.labels {
                                                ui.selectable_value(answer, label.clone(), label);
                                            }
                                        });
                                }
                                ui.horizontal(|ui| {
                                    if ui.button("Send label").clicked() {
                                        send = Some((
                                            r.id.clone(),
                                            answer.clone(),
                                            q.labels.is_empty(),
                                        ));
                                    }
                                    if let Some(Some(Err(e))) = sent {
                                        error_label(ui, e);
                                    }
                                });
                            }
                        }
                        ui.end_row();
                    }
                });
        });
    if let Some((id, answer, number)) = send {
        let outcome = if number {
            match answer.trim().parse::<f64>() {
                Ok(v) => serde_json::json!(v),
                Err(_) => {
                    cx.view.label_answers.insert(id, answer);
                    return error_label(ui, "Type the true outcome as a number.");
                }
            }
        } else {
            serde_json::Value::String(answer)
        };
        cx.send(Command::SendFeedback { id, outcome });
    }
}

/// "1 answer", "2 answers".
fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A JSON value as a short cell: numbers to at most four decimals, text as it is.
fn short_value(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Number(n) => n
            .as_f64()
            .map(|x| format!("{}", (x * 1e4).round() / 1e4))
            .unwrap_or_else(|| n.to_string()),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "–".into(),
        other => other.to_string(),
    }
}

/// Each version's figures, newest first, after the requests and latency charts.
fn figures(
    ui: &mut egui::Ui,
    m: &crate::state::MonitorState,
    report: &wick_core::wire::MonitorReport,
) {
    if report.versions.is_empty() {
        ui.add_space(20.0);
        ui.label(RichText::new("No calls in this window yet. Send a test request on Publish, or call the endpoint from your app.").weak());
        return;
    }
    history_plot(ui, m);
    for (version, f) in report.versions.iter().rev() {
        theme::section(ui, &format!("Version {version}"));
        theme::card(ui).show(ui, |ui| {
            ui.set_width(ui.available_width());
            egui::Grid::new(("monitor", version))
                .num_columns(2)
                .spacing([16.0, 6.0])
                .show(ui, |ui| {
                    ui.label("Requests");
                    ui.label(RichText::new(format!("{}", f.requests)).strong());
                    ui.end_row();
                    ui.label("Errors");
                    let errors = RichText::new(format!("{}", f.errors));
                    ui.label(if f.errors > 0 {
                        errors.color(theme::BAD)
                    } else {
                        errors
                    });
                    ui.end_row();
                    ui.label("Latency p50 / p99");
                    let ms = |v: Option<f64>| {
                        v.map(|x| format!("{x:.2} ms"))
                            .unwrap_or_else(|| "–".into())
                    };
                    ui.label(format!(
                        "{} / {}",
                        ms(f.latency_p50_ms),
                        ms(f.latency_p99_ms)
                    ));
                    ui.end_row();
                    ui.label("Live metric");
                    let metric = match (f.live_accuracy, f.live_mae) {
                        (Some(a), _) => format!(
                            "accuracy {:.1} % on {} with feedback",
                            a * 100.0,
                            plural(f.feedback, "answer")
                        ),
                        (_, Some(e)) => format!(
                            "mean absolute error {e:.3} on {} with feedback",
                            plural(f.feedback, "answer")
                        ),
                        _ => "no feedback yet: label requests in the label queue below".into(),
                    };
                    ui.label(metric);
                    ui.end_row();
                    ui.label("Predictions");
                    if let Some(v) = &f.predicted_values {
                        let q = |x: Option<f64>| {
                            x.map(|x| format!("{x:.2}")).unwrap_or_else(|| "–".into())
                        };
                        ui.label(format!(
                            "mean {:.2} · p10 {} · median {} · p90 {} ({} values)",
                            v.mean,
                            q(v.p10),
                            q(v.p50),
                            q(v.p90),
                            v.count
                        ));
                    } else {
                        let total: usize = f.predicted_classes.values().sum();
                        let shares: Vec<String> = f
                            .predicted_classes
                            .iter()
                            .map(|(c, n)| {
                                format!("{c} {:.0} %", *n as f64 * 100.0 / total.max(1) as f64)
                            })
                            .collect();
                        ui.label(shares.join(" · "));
                    }
                    ui.end_row();
                });
            if !f.drift.is_empty() || f.prediction_drift.is_some() {
                ui.add_space(6.0);
                ui.label(
                    RichText::new(
                        "Drift from training (population stability index; above 0.2 is drifting)",
                    )
                    .small()
                    .weak(),
                );
                for d in f.prediction_drift.iter().chain(&f.drift) {
                    ui.horizontal(|ui| {
                        ui.add_sized([140.0, 18.0], egui::Label::new(&d.feature));
                        if d.rows < wick_core::drift::MIN_DRIFT_ROWS {
                            // A few values give a large index whatever the traffic: don't score them.
                            let needed = wick_core::drift::MIN_DRIFT_ROWS;
                            ui.label(
                                RichText::new(format!(
                                    "not judged yet: {} of the {needed} live values needed",
                                    d.rows
                                ))
                                .weak(),
                            );
                            return;
                        }
                        let colour = if d.drifting { theme::BAD } else { theme::GOOD };
                        // The bar's full width is a PSI of 0.5, so the 0.2 threshold sits at 40 %.
                        ui.add(
                            egui::ProgressBar::new((d.psi / 0.5).clamp(0.0, 1.0) as f32)
                                .desired_width(240.0)
                                .desired_height(10.0)
                                .fill(colour)
                                .corner_radius(2.0),
                        );
                        let text = RichText::new(format!(
                            "PSI {:.3}{}",
                            d.psi,
                            if d.drifting { " · drifting" } else { "" }
                        ));
                        ui.label(if d.drifting {
                            text.color(theme::BAD).strong()
                        } else {
                            text
                        });
                        ui.label(
                            RichText::new(format!("{} live values", d.rows))
                                .small()
                                .weak(),
                        );
                    });
                }
            }
        });
    }
}

/// *Improve with live data*: the logged requests that have feedback become new rows (those the
/// dataset already has are left out); the published run's model trains again on both, held back
/// on the same test rows, and the two runs' test figures are shown side by side; the new one can
/// go out as a canary.
fn improve_with_live_data(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    published: &crate::project::PublishedRecord,
) {
    let state = cx.state;
    let live = &state.monitor.live;
    theme::section(ui, "Improve with live data");
    ui.label(
        RichText::new("Logged requests that have feedback become new rows of your dataset; the same model trains again on both and is tested on the same held-back rows as the published one.")
            .small()
            .weak(),
    );
    ui.horizontal(|ui| {
        let button = egui::Button::new("Get live rows with feedback");
        if ui.add_enabled(!live.busy, button).clicked() {
            cx.send(Command::FetchLiveRows);
        }
        if live.busy {
            ui.spinner();
            ui.label("Reading the request log…");
        }
    });
    match &live.result {
        None => {}
        Some(Err(e)) => error_label(ui, e),
        Some(Ok(rows)) => {
            let new = &rows.new;
            let mut summary = format!(
                "{} logged requests have feedback: {} new rows, {} already in the dataset",
                new.received,
                new.frame.height(),
                new.duplicates
            );
            if new.unusable > 0 {
                summary.push_str(&format!(
                    ", {} whose outcome does not fit the target",
                    new.unusable
                ));
            }
            ui.label(RichText::new(summary).strong());
            if !new.hashed.is_empty() {
                ui.label(
                    RichText::new(format!(
                        "{} is logged only as a hash (personal data); the new rows leave it empty.",
                        new.hashed.join(", ")
                    ))
                    .small(),
                );
            }
            if new.frame.height() > 0 {
                live_rows_preview(ui, &new.frame);
                let training = state.training.is_some();
                let text = format!("Retrain with {} new rows", new.frame.height());
                if ui
                    .add_enabled(
                        !training,
                        egui::Button::new(RichText::new(text).strong())
                            .fill(theme::ACCENT.gamma_multiply(0.35)),
                    )
                    .clicked()
                {
                    cx.send(Command::TrainWithLiveRows);
                }
            } else {
                ui.label("Nothing new to train on yet: log requests (above) and send feedback for their answers.");
            }
        }
    }
    comparison(cx, ui, published);
}

/// The first live rows, as a table.
fn live_rows_preview(ui: &mut egui::Ui, frame: &wick_core::polars::prelude::DataFrame) {
    const SHOWN: usize = 8;
    egui::ScrollArea::horizontal()
        .id_salt("live_rows")
        .show(ui, |ui| {
            egui::Grid::new("live_rows_grid")
                .striped(true)
                .show(ui, |ui| {
                    for c in frame.columns() {
                        ui.label(RichText::new(c.name().as_str()).small().strong());
                    }
                    ui.end_row();
                    for r in 0..frame.height().min(SHOWN) {
                        for c in frame.columns() {
                            let text = match c.get(r) {
                                Ok(wick_core::polars::prelude::AnyValue::Null) | Err(_) => {
                                    "–".to_string()
                                }
                                Ok(v) => v.str_value().to_string(),
                            };
                            ui.label(RichText::new(text).small());
                        }
                        ui.end_row();
                    }
                });
        });
    if frame.height() > SHOWN {
        ui.label(
            RichText::new(format!("… and {} more", frame.height() - SHOWN))
                .small()
                .weak(),
        );
    }
}

/// The latest run trained with live rows beside the run it improves on, on the same test rows.
fn comparison(
    cx: &mut ScreenCtx<'_>,
    ui: &mut egui::Ui,
    published: &crate::project::PublishedRecord,
) {
    let state = cx.state;
    let Some((run, live)) = state
        .project
        .runs
        .iter()
        .rev()
        .find_map(|r| Some((r, r.live_rows?)))
    else {
        return;
    };
    let Some(base) = state.project.runs.iter().find(|r| r.id == live.base_run) else {
        return;
    };
    ui.add_space(6.0);
    ui.label(
        RichText::new(format!(
            "{} beside {} (same test rows)",
            run.name, base.name
        ))
        .strong(),
    );
    match (&base.test_metrics, &run.test_metrics) {
        (Some(before), Some(after)) => {
            egui::Grid::new("live_comparison")
                .striped(true)
                .num_columns(3)
                .show(ui, |ui| {
                    ui.label(RichText::new("metric").small().strong());
                    ui.label(RichText::new(base.name.as_str()).small().strong());
                    ui.label(RichText::new(run.name.as_str()).small().strong());
                    ui.end_row();
                    for ((name, old), (_, new)) in before.scalars().into_iter().zip(after.scalars())
                    {
                        ui.label(crate::screens::common::metric_title(name));
                        ui.label(format!("{old:.4}"));
                        ui.label(format!("{new:.4}"));
                        ui.end_row();
                    }
                });
            if state.publish.busy {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Publishing…");
                });
            } else if published.run_id != run.id && run.package.is_some() {
                let text = format!("Publish {} as a canary (10 %)", run.name);
                if ui.button(text).on_hover_text(format!("A new version of `{}` answers 10 % of the calls and the serving one the rest; promote or end it on Publish", published.name)).clicked() {
                    cx.send(Command::PublishCanary { run_id: run.id, percent: 10 });
                }
            }
            if let Some(e) = &state.publish.error {
                error_label(ui, e);
            }
        }
        _ if run.status == crate::project::RunStatus::Running => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Training…");
            });
        }
        _ => {
            ui.label(RichText::new("One of the two runs has no test figures (it did not finish, or it trained on every row).").weak());
        }
    }
}

/// Requests in the window and median latency per version, one point per refresh.
fn history_plot(ui: &mut egui::Ui, m: &crate::state::MonitorState) {
    if m.history.len() < 2 {
        return;
    }
    let mut versions: Vec<&str> = m.history.iter().map(|p| p.version.as_str()).collect();
    versions.sort_unstable();
    versions.dedup();
    ui.columns(2, |cols| {
        Plot::new("monitor_requests")
            .allow_scroll(false)
            .y_grid_spacer(crate::screens::common::readable_grid())
            .y_axis_formatter(crate::screens::common::grid_label)
            .height(150.0)
            .legend(Legend::default())
            .x_axis_label("seconds")
            .y_axis_label("requests in window")
            .show(&mut cols[0], |plot| {
                for v in &versions {
                    let points: PlotPoints = m
                        .history
                        .iter()
                        .filter(|p| p.version == *v)
                        .map(|p| [p.secs, p.requests as f64])
                        .collect();
                    plot.line(Line::new(format!("v{v}"), points));
                }
            });
        Plot::new("monitor_latency")
            .allow_scroll(false)
            .y_grid_spacer(crate::screens::common::readable_grid())
            .y_axis_formatter(crate::screens::common::grid_label)
            .height(150.0)
            .legend(Legend::default())
            .x_axis_label("seconds")
            .y_axis_label("p50 ms")
            .show(&mut cols[1], |plot| {
                for v in &versions {
                    let points: PlotPoints = m
                        .history
                        .iter()
                        .filter(|p| p.version == *v)
                        .filter_map(|p| Some([p.secs, p.p50_ms?]))
                        .collect();
                    plot.line(Line::new(format!("v{v}"), points));
                }
            });
    });
}
