//! Frame time of the Train screen while a run has 100,000 loss points, against the same plot drawn
//! with every point (the reference, measured in the same run); then frame time while a real training
//! run emits over 100,000 step losses into the app, frames paced at 60 fps as the desktop host paces
//! them. A frame here is egui's UI pass plus tessellation: the CPU work of every frame; the GPU upload
//! is small and separate.
//!
//! Run: `cargo bench -p wick-ui --bench frame_time`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use egui_plot::{Line, Plot, PlotPoints};
use wick_ui::project::{RunRecord, RunStatus, Template};
use wick_ui::{AppConfig, Screen, WickApp};

const POINTS: usize = 100_000;
/// Frames timed by `cargo bench`; `cargo test --all-targets` runs this file too, as a quick check.
fn frames() -> usize {
    if full_run() {
        120
    } else {
        5
    }
}

fn full_run() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn input(t: f64) -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(
            egui::Pos2::ZERO,
            egui::vec2(1280.0, 860.0),
        )),
        time: Some(t),
        ..Default::default()
    }
}

fn losses() -> Vec<[f64; 2]> {
    (0..POINTS)
        .map(|i| {
            let x = i as f64 / 1000.0;
            [
                x,
                (-x / 20.0).exp() + 0.05 * ((i * 7919) % 101) as f64 / 101.0,
            ]
        })
        .collect()
}

/// Milliseconds per frame: (mean, p99).
fn measure(mut frame: impl FnMut(&egui::Context, f64)) -> (f64, f64) {
    let ctx = egui::Context::default();
    for i in 0..5 {
        frame(&ctx, i as f64 / 60.0);
    }
    let mut times: Vec<f64> = (0..frames())
        .map(|i| {
            let start = Instant::now();
            frame(&ctx, (i + 5) as f64 / 60.0);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    (mean, times[(times.len() * 99 / 100).min(times.len() - 1)])
}

fn app_in(dir: &std::path::Path, samples_dir: Option<PathBuf>) -> WickApp {
    WickApp::new(AppConfig {
        project_dir: dir.join("project"),
        settings_path: dir.join("settings.json"),
        samples_dir,
        embedded_endpoint: None,
        embedded_endpoint_error: None,
        embedded_token_file: None,
        native_menu: false,
        stream_threshold_bytes: wick_core::data::STREAM_THRESHOLD_BYTES,
        stream_sample_rows: wick_ui::jobs::SAMPLE_ROWS,
        hub: None,
        startup_notices: Vec::new(),
    })
}

fn frame(app: &mut WickApp, ctx: &egui::Context, t: f64) {
    let mut out = ctx.run_ui(input(t), |ui| app.ui(ui));
    let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
    out.textures_delta.clear(); // no GPU here to upload fonts to
}

/// A real MLP run on the Seattle weather sample with batch size 1, so every one of its ~1,020 training
/// rows per epoch is a step event: 100 epochs give about 102,000 points on the loss plot. Frames are
/// drawn every 16.7 ms while it trains on the other threads, as the desktop host would draw them.
fn during_training(dir: &std::path::Path) {
    let samples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sample-data");
    let mut app = app_in(&dir.join("training"), Some(samples));
    let ctx = egui::Context::default();
    let started = Instant::now();
    let mut t = 0.0;
    app.command(wick_ui::Command::OpenSample("seattle-weather"));
    while app.state.loaded().is_none() && started.elapsed() < Duration::from_secs(30) {
        frame(&mut app, &ctx, t);
        t += 1.0 / 60.0;
        std::thread::sleep(Duration::from_millis(5));
    }
    app.command(wick_ui::Command::ChooseTemplate(Template::Mlp));
    frame(&mut app, &ctx, t); // the template's default settings are applied here; ours go on top
    app.state.project.train.batch_size = 1;
    app.state.project.train.epochs = if full_run() { 100 } else { 1 };
    app.state.project.train.early_stopping_patience = None;
    app.command(wick_ui::Command::StartTraining);
    let mut times = Vec::new();
    let budget = Duration::from_secs_f64(1.0 / 60.0);
    let training_started = Instant::now();
    loop {
        let tick = Instant::now();
        frame(&mut app, &ctx, t);
        times.push(tick.elapsed().as_secs_f64() * 1000.0);
        t += 1.0 / 60.0;
        let running = app
            .state
            .project
            .runs
            .last()
            .is_some_and(|r| r.status == RunStatus::Running);
        if !running || training_started.elapsed() > Duration::from_secs(600) {
            break;
        }
        std::thread::sleep(budget.saturating_sub(tick.elapsed()));
    }
    let run = app.state.project.runs.last();
    let points = run.map_or(0, |r| r.step_losses.len());
    let status = run.map(|r| format!("{:?}", r.status)).unwrap_or_default();
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let p99 = times
        .get((times.len() * 99 / 100).min(times.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN);
    let max = times.last().copied().unwrap_or(f64::NAN);
    println!(
        "During a real training run ({:.1} s, {points} step losses at the end, status {status}), {} frames paced at 60 fps:",
        training_started.elapsed().as_secs_f64(),
        times.len()
    );
    println!("  wick (whole Train screen)        mean {mean:7.2} ms   p99 {p99:7.2} ms   max {max:7.2} ms");
    println!(
        "  60 fps budget 16.7 ms: {}",
        if p99 < 16.7 { "met" } else { "NOT met" }
    );
}

fn main() {
    let dir = std::env::temp_dir().join(format!("wick-frame-bench-{}", std::process::id()));
    let mut app = app_in(&dir, None);
    let points = losses();
    app.state.project.runs.push(RunRecord {
        device: "cpu".into(),
        epochs: 100,
        step_losses: points.clone(),
        ..RunRecord::started(
            1,
            "Run 1 · CNN".into(),
            Template::Cnn,
            wick_core::model::ModelSpec::Logistic,
            Default::default(),
            None,
        )
    });
    app.state.selected_run = Some(1);
    app.state.screen = Screen::Train;
    let (wick_mean, wick_p99) = measure(|ctx, t| frame(&mut app, ctx, t));
    let (raw_mean, raw_p99) = measure(|ctx, t| {
        let mut out = ctx.run_ui(input(t), |ui| {
            egui::CentralPanel::default().show(ui, |ui| {
                Plot::new("raw").height(260.0).show(ui, |p| {
                    p.line(Line::new("loss", PlotPoints::from(points.clone())))
                });
            });
        });
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
        out.textures_delta.clear();
    });
    println!(
        "Train screen with {POINTS} loss points, {} frames (UI pass + tessellation):",
        frames()
    );
    println!("  wick (decimated, whole screen)   mean {wick_mean:7.2} ms   p99 {wick_p99:7.2} ms   → {:.0} fps", 1000.0 / wick_mean);
    println!("  reference (one plot, all points) mean {raw_mean:7.2} ms   p99 {raw_p99:7.2} ms   → {:.0} fps", 1000.0 / raw_mean);
    println!(
        "  speed-up {:.1}×; 60 fps budget 16.7 ms: {}",
        raw_mean / wick_mean,
        if wick_p99 < 16.7 { "met" } else { "NOT met" }
    );
    during_training(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}
