//! Frame time of the Train screen while a run has 100,000 loss points, against the same plot drawn
//! with every point (the reference, measured in the same run). A frame here is egui's UI pass plus
//! tessellation: the CPU work of every frame; the GPU upload is small and separate.
//!
//! Run: `cargo bench -p wick-ui --bench frame_time`

use std::time::Instant;

use egui_plot::{Line, Plot, PlotPoints};
use wick_ui::project::{RunRecord, RunStatus, Template};
use wick_ui::{AppConfig, Screen, WickApp};

const POINTS: usize = 100_000;
/// Frames timed by `cargo bench`; `cargo test --all-targets` runs this file too, as a quick check.
fn frames() -> usize {
    if std::env::args().any(|a| a == "--bench") { 120 } else { 5 }
}

fn input(t: f64) -> egui::RawInput {
    egui::RawInput {
        screen_rect: Some(egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1280.0, 860.0))),
        time: Some(t),
        ..Default::default()
    }
}

fn losses() -> Vec<[f64; 2]> {
    (0..POINTS).map(|i| {
        let x = i as f64 / 1000.0;
        [x, (-x / 20.0).exp() + 0.05 * ((i * 7919) % 101) as f64 / 101.0]
    }).collect()
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

fn main() {
    let dir = std::env::temp_dir().join(format!("wick-frame-bench-{}", std::process::id()));
    let mut app = WickApp::new(AppConfig {
        project_dir: dir.join("project"),
        settings_path: dir.join("settings.json"),
        samples_dir: None,
        embedded_endpoint: None,
        embedded_endpoint_error: None,
        native_menu: false,
    });
    let points = losses();
    app.project.runs.push(RunRecord {
        id: 1,
        name: "Run 1 · CNN".into(),
        template: Template::Cnn,
        spec: wick_core::model::ModelSpec::Logistic,
        config: Default::default(),
        target: None,
        status: RunStatus::Running,
        device: "cpu".into(),
        epochs: 100,
        step_losses: points.clone(),
        history: Vec::new(),
        test_metrics: None,
        test_samples: Vec::new(),
        package: None,
        duration_secs: 0.0,
    });
    app.selected_run = Some(1);
    app.screen = Screen::Train;
    let (wick_mean, wick_p99) = measure(|ctx, t| {
        let mut out = ctx.run_ui(input(t), |ui| app.ui(ui));
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
        out.textures_delta.clear(); // no GPU here to upload fonts to
    });
    let (raw_mean, raw_p99) = measure(|ctx, t| {
        let mut out = ctx.run_ui(input(t), |ui| {
            egui::CentralPanel::default().show(ui, |ui| {
                Plot::new("raw").height(260.0).show(ui, |p| p.line(Line::new("loss", PlotPoints::from(points.clone()))));
            });
        });
        let _ = ctx.tessellate(out.shapes, out.pixels_per_point);
        out.textures_delta.clear();
    });
    println!("Train screen with {POINTS} loss points, {} frames (UI pass + tessellation):", frames());
    println!("  wick (decimated, whole screen)   mean {wick_mean:7.2} ms   p99 {wick_p99:7.2} ms   → {:.0} fps", 1000.0 / wick_mean);
    println!("  reference (one plot, all points) mean {raw_mean:7.2} ms   p99 {raw_p99:7.2} ms   → {:.0} fps", 1000.0 / raw_mean);
    println!("  speed-up {:.1}×; 60 fps budget 16.7 ms: {}", raw_mean / wick_mean, if wick_p99 < 16.7 { "met" } else { "NOT met" });
    let _ = std::fs::remove_dir_all(&dir);
}
