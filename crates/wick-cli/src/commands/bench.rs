//! `wick bench`: Wick's speed beside pandas, numpy and PyTorch, measured in one interleaved run.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use wick_core::data::{read_table, summarize, ImageShape, TableFormat};
use wick_core::model::{fit_least_squares, lenet_layers};
use wick_core::train::throughput::{cnn_throughput, ThroughputWork};
use wick_core::train::DeviceChoice;

use crate::output::{print_json, table};

const REFERENCE_PY: &str = include_str!("../../bench/reference.py");

#[derive(Args)]
pub struct BenchArgs {
    /// Rows of the generated CSV (12 columns, about 135 bytes per row).
    #[arg(long, default_value_t = 1_000_000)]
    pub csv_rows: usize,
    /// Where the generated CSV is kept between runs.
    #[arg(long, default_value = "bench-data")]
    pub data_dir: PathBuf,
    /// Rounds of each measurement; the best round is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// CNN training steps per round.
    #[arg(long, default_value_t = 20)]
    pub cnn_steps: usize,
    /// Threads for PyTorch (Wick uses every core; set RAYON_NUM_THREADS to match).
    #[arg(long, default_value_t = 2)]
    pub torch_threads: usize,
    /// Python interpreter for the reference measurements.
    #[arg(long, default_value = "python3")]
    pub python: String,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Instead: load-test wick-serve beside a Python (FastAPI + PyTorch) server.
    #[arg(long)]
    pub serve: bool,
    /// Seconds per load-test cell (--serve).
    #[arg(long, default_value_t = 5.0)]
    pub duration_secs: f64,
    /// Most requests per load-test cell (--serve).
    #[arg(long, default_value_t = 200_000)]
    pub max_requests: usize,
    /// The sample-data folder (--serve trains its models from it).
    #[arg(long, default_value = "sample-data")]
    pub samples: PathBuf,
}

#[derive(Serialize)]
struct Row {
    task: String,
    unit: String,
    wick: f64,
    reference: Option<f64>,
    reference_name: String,
    /// How many times faster Wick is (>1 = Wick faster).
    speedup: Option<f64>,
}

pub fn run(args: &BenchArgs, json: bool) -> Result<()> {
    if args.serve {
        return super::bench_serve::run(&args.samples, &args.python, args.duration_secs, args.max_requests, json);
    }
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let csv = args.data_dir.join(format!("bench-v2-{}.csv", args.csv_rows));
    if !csv.exists() {
        eprintln!("writing {} ({} rows)…", csv.display(), args.csv_rows);
        write_bench_csv(&csv, args.csv_rows)?;
    }
    let script = args.data_dir.join("reference.py");
    std::fs::write(&script, REFERENCE_PY).with_context(|| format!("writing {}", script.display()))?;
    let py = |a: &[&str]| reference(&args.python, &script, a);

    let (lstsq_rows, lstsq_cols) = (200_000usize, 20usize);
    let (x, y) = lstsq_data(lstsq_rows, lstsq_cols);
    let shape = ImageShape { height: 28, width: 28, channels: 1 };
    let infer_batches = 10;
    let torch_args = [args.cnn_steps.to_string(), infer_batches.to_string(), args.torch_threads.to_string()];

    let mut csv_read_w = f64::MAX;
    let (mut csv_w, mut csv_p, mut ls_w, mut ls_p) = (f64::MAX, None::<f64>, f64::MAX, None::<f64>);
    let (mut tr_w, mut in_w, mut tr_p, mut in_p) = (0f64, 0f64, None::<f64>, None::<f64>);
    let mut versions = serde_json::Map::new();
    for round in 1..=args.rounds {
        eprintln!("round {round}/{}", args.rounds);
        let t = Instant::now();
        let df = read_table(&csv)?;
        let read_secs = t.elapsed().as_secs_f64();
        summarize(&csv, TableFormat::Csv, &df)?;
        csv_w = csv_w.min(t.elapsed().as_secs_f64());
        csv_read_w = csv_read_w.min(read_secs);
        drop(df);
        if let Some(r) = py(&["csv", &csv.to_string_lossy()])? {
            csv_p = Some(csv_p.map_or(r["secs"].as_f64().unwrap_or(f64::MAX), |b: f64| b.min(r["secs"].as_f64().unwrap_or(f64::MAX))));
            versions.insert("pandas".into(), r["version"].clone());
        }
        let t = Instant::now();
        fit_least_squares(&x, lstsq_cols, &y, 0.0)?;
        ls_w = ls_w.min(t.elapsed().as_secs_f64());
        if let Some(r) = py(&["lstsq", &lstsq_rows.to_string(), &lstsq_cols.to_string()])? {
            ls_p = Some(ls_p.map_or(r["secs"].as_f64().unwrap_or(f64::MAX), |b: f64| b.min(r["secs"].as_f64().unwrap_or(f64::MAX))));
            versions.insert("numpy".into(), r["version"].clone());
        }
        let work = ThroughputWork { train_batch: 64, train_steps: args.cnn_steps, infer_batch: 256, infer_batches };
        let c = cnn_throughput(&lenet_layers(), shape, 10, work, args.device)?;
        tr_w = tr_w.max(c.train_images_per_sec);
        in_w = in_w.max(c.infer_images_per_sec);
        if let Some(r) = py(&["cnn", &torch_args[0], &torch_args[1], &torch_args[2]])? {
            tr_p = Some(tr_p.unwrap_or(0.0).max(r["train_images_per_sec"].as_f64().unwrap_or(0.0)));
            in_p = Some(in_p.unwrap_or(0.0).max(r["infer_images_per_sec"].as_f64().unwrap_or(0.0)));
            versions.insert("torch".into(), r["version"].clone());
        }
    }
    let peak_rss_mb = peak_rss_of_inspect(&csv)?;
    let file_mb = std::fs::metadata(&csv)?.len() as f64 / 1e6;

    let time_row = |task: &str, wick: f64, reference: Option<f64>, name: &str| Row {
        task: task.into(),
        unit: "seconds".into(),
        wick,
        reference,
        reference_name: name.into(),
        speedup: reference.map(|r| r / wick),
    };
    let rate_row = |task: &str, wick: f64, reference: Option<f64>, name: &str| Row {
        task: task.into(),
        unit: "images/s".into(),
        wick,
        reference,
        reference_name: name.into(),
        speedup: reference.map(|r| wick / r),
    };
    let rows = vec![
        time_row(&format!("open {} rows × 12 CSV ({file_mb:.0} MB) + statistics", args.csv_rows), csv_w, csv_p, "pandas read_csv"),
        time_row("  of which reading (polars)", csv_read_w, csv_p, "pandas read_csv"),
        time_row("least squares 200000 × 20 f64", ls_w, ls_p, "numpy lstsq"),
        rate_row("LeNet training, batch 64, AdamW", tr_w, tr_p, &format!("PyTorch CPU, {} threads", args.torch_threads)),
        rate_row("LeNet inference, batch 256", in_w, in_p, &format!("PyTorch CPU, {} threads", args.torch_threads)),
    ];
    if json {
        return print_json(&serde_json::json!({
            "rows": rows,
            "csv_peak_rss_mb": peak_rss_mb,
            "csv_file_mb": file_mb,
            "reference_versions": versions,
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }));
    }
    let mut t = table(&["benchmark", "unit", "Wick", "reference", "reference value", "Wick speed ×"]);
    for r in &rows {
        t.add_row(vec![
            r.task.clone(),
            r.unit.clone(),
            format!("{:.3}", r.wick),
            r.reference_name.clone(),
            r.reference.map(|v| format!("{v:.3}")).unwrap_or_else(|| "not installed".into()),
            r.speedup.map(|s| format!("{s:.2}")).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    if let Some(rss) = peak_rss_mb {
        println!("peak memory of `wick inspect` on the CSV: {rss:.0} MB = {:.2}× the file size", rss / file_mb);
    }
    println!("reference versions: {}", serde_json::Value::Object(versions));
    Ok(())
}

/// Runs one reference measurement; `None` when Python or the library is missing.
fn reference(python: &str, script: &Path, args: &[&str]) -> Result<Option<serde_json::Value>> {
    let output = match Command::new(python).arg(script).args(args).output() {
        Ok(o) => o,
        Err(_) => return Ok(None),
    };
    if !output.status.success() {
        eprintln!("reference {args:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).context("reading the reference script's output")?;
    Ok(if value.get("missing").is_some() { None } else { Some(value) })
}

/// Peak resident memory of a child `wick inspect` on the CSV, in MB (Linux only).
fn peak_rss_of_inspect(csv: &Path) -> Result<Option<f64>> {
    if !cfg!(target_os = "linux") {
        return Ok(None);
    }
    let exe = std::env::current_exe()?;
    let status = Command::new(exe).args(["--json", "inspect"]).arg(csv).arg("--peak-rss").output()?;
    if !status.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&status.stderr);
    Ok(text.lines().find_map(|l| l.strip_prefix("peak_rss_kb=")).and_then(|v| v.trim().parse::<f64>().ok()).map(|kb| kb / 1000.0))
}

/// Reads this process's peak resident set size from /proc (Linux).
pub fn own_peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn lstsq_data(rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let w: Vec<f64> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x: Vec<f64> = (0..rows * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let y = x.chunks_exact(cols).map(|r| r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + rng.random_range(-0.1..0.1)).collect();
    (x, y)
}

/// A 12-column CSV like a real export: an id, a date, a category, and nine measurements.
fn write_bench_csv(path: &Path, rows: usize) -> Result<()> {
    let tmp = path.with_extension("csv.partial");
    let mut w = BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?);
    writeln!(w, "id,date,category,a,b,c,d,e,f,g,h,score")?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cats = ["alpha", "beta", "gamma", "delta", "epsilon"];
    for i in 0..rows {
        let day = 1 + i % 28;
        let month = 1 + (i / 28) % 12;
        write!(w, "{i},2024-{month:02}-{day:02},{}", cats[rng.random_range(0..cats.len())])?;
        for _ in 0..8 {
            write!(w, ",{:.7}", rng.random_range(-1000.0..1000.0f64))?;
        }
        writeln!(w, ",{:.6}", rng.random_range(0.0..100.0f64))?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)?;
    Ok(())
}
