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
use wick_core::model::spec::dense_layers;
use wick_core::model::trees::{BoostParams, Boosted};
use wick_core::model::{
    default_cnn_layers, fit_least_squares, lenet_layers, Activation, ModelSpec,
};
use wick_core::train::parity::{device_parity, PARITY_TOLERANCE};
use wick_core::train::throughput::{
    cpu_peak_gflops, infer_throughput, lenet_memory_run, resnet18_fine_tune_throughput,
    resnet18_forward_throughput, train_throughput, training_flops_per_sample, TrainWork,
};
use wick_core::train::{DeviceChoice, OptimizerKind};

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
    /// Batches of 16 per round for the ResNet-18 forward and fine-tuning rows (0 leaves them out).
    #[arg(long, default_value_t = 3)]
    pub resnet_batches: usize,
    /// Training steps of the peak-memory run (LeNet on 60,000 images; 0 leaves it out).
    #[arg(long, default_value_t = 40)]
    pub memory_steps: usize,
    /// Instead: check that training on --device gives the CPU's logits and gradients (one step of a
    /// small CNN with batch norm); exits with an error when they differ.
    #[arg(long)]
    pub parity: bool,
    /// Instead: open and summarise a generated big CSV by streaming (peak memory, rows/s) beside
    /// polars' own streaming scan of the same file.
    #[arg(long)]
    pub big: bool,
    /// Rows of the --big CSV (30,000,000 are about 4 GB).
    #[arg(long, default_value_t = 30_000_000)]
    pub big_rows: usize,
    /// Rows of the generated regression table of the boosted-tree rows (0 leaves them out).
    #[arg(long, default_value_t = 50_000)]
    pub gbdt_rows: usize,
    /// Instead: generate this many 640×480 JPEGs (once) and time decoding and resizing them to
    /// 224×224 beside Pillow, then the peak memory of training the default transfer model on them.
    #[arg(long)]
    pub photos: Option<usize>,
    /// With --photos: also the peak memory of fine-tuning the backbone's last stage on them (one
    /// epoch; its training split streams from the files past 1 GiB).
    #[arg(long)]
    pub fine_tune: bool,
    /// Internal: run the peak-memory training in this process and report its peak memory.
    #[arg(long, hide = true)]
    pub memory_child: bool,
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
    if args.memory_child {
        return memory_child(args.memory_steps);
    }
    if args.parity {
        return parity(args.device, json);
    }
    if args.big {
        return big(args, json);
    }
    if let Some(n) = args.photos {
        return photos(args, n, json);
    }
    if args.serve {
        return super::bench_serve::run(
            &args.samples,
            &args.python,
            args.duration_secs,
            args.max_requests,
            json,
        );
    }
    let (csv, script) = bench_files(&args.data_dir, args.csv_rows)?;
    let py = |a: &[&str]| reference(&args.python, &script, a);

    let (lstsq_rows, lstsq_cols) = (200_000usize, 20usize);
    let (x, y) = lstsq_data(lstsq_rows, lstsq_cols);
    let shape = ImageShape {
        height: 28,
        width: 28,
        channels: 1,
    };
    let infer_batches = 10;
    let threads = args.torch_threads.to_string();
    // The reference runs on the kind of device Wick's rows run on (`auto` resolved here).
    let (torch_device, device_word) = match args.device.resolve()? {
        DeviceChoice::Cuda(i) => (format!("cuda:{i}"), "CUDA"),
        DeviceChoice::Metal => ("mps".to_string(), "MPS"),
        DeviceChoice::Cpu | DeviceChoice::Auto => ("cpu".to_string(), "CPU"),
    };
    let trainings = training_rows(args.cnn_steps);
    let gbdt_csv = args.data_dir.join(format!("gbdt-{}.csv", args.gbdt_rows));
    let gbdt_data = (args.gbdt_rows > 0).then(|| friedman_table(args.gbdt_rows));
    if let Some((x, y)) = &gbdt_data {
        if !gbdt_csv.exists() {
            write_numeric_csv(&gbdt_csv, x, y, GBDT_FEATURES)?;
        }
    }
    let (mut gb_w, mut gb_p, mut gbp_w, mut gbp_p) = (f64::MAX, None::<f64>, 0f64, None::<f64>);

    let mut csv_read_w = f64::MAX;
    let (mut csv_w, mut csv_p, mut ls_w, mut ls_p) = (f64::MAX, None::<f64>, f64::MAX, None::<f64>);
    let (mut in_w, mut in_p) = (0f64, None::<f64>);
    let (mut rn_w, mut rn_p) = (0f64, None::<f64>);
    let (mut ft_w, mut ft_p) = (0f64, None::<f64>);
    let mut train_w = vec![0f64; trainings.len()];
    let mut train_p: Vec<Option<f64>> = vec![None; trainings.len()];
    let mut versions = serde_json::Map::new();
    let best_max = |best: &mut Option<f64>, v: Option<f64>| {
        if let Some(v) = v {
            *best = Some(best.map_or(v, |b| b.max(v)));
        }
    };
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
            csv_p = Some(
                csv_p.map_or(r["secs"].as_f64().unwrap_or(f64::MAX), |b: f64| {
                    b.min(r["secs"].as_f64().unwrap_or(f64::MAX))
                }),
            );
            versions.insert("pandas".into(), r["version"].clone());
        }
        let t = Instant::now();
        fit_least_squares(&x, lstsq_cols, &y, 0.0)?;
        ls_w = ls_w.min(t.elapsed().as_secs_f64());
        if let Some(r) = py(&["lstsq", &lstsq_rows.to_string(), &lstsq_cols.to_string()])? {
            ls_p = Some(
                ls_p.map_or(r["secs"].as_f64().unwrap_or(f64::MAX), |b: f64| {
                    b.min(r["secs"].as_f64().unwrap_or(f64::MAX))
                }),
            );
            versions.insert("numpy".into(), r["version"].clone());
        }
        if let Some((x, y)) = &gbdt_data {
            let t = Instant::now();
            let (model, _) = Boosted::fit(x, GBDT_FEATURES, y, None, 0, None, &gbdt_params())?;
            gb_w = gb_w.min(t.elapsed().as_secs_f64());
            let t = Instant::now();
            std::hint::black_box(model.predict(x, y.len()));
            gbp_w = gbp_w.max(y.len() as f64 / t.elapsed().as_secs_f64());
            if let Some(r) = py(&["gbdt", &gbdt_csv.to_string_lossy(), &threads])? {
                gb_p = Some(
                    gb_p.map_or(r["fit_secs"].as_f64().unwrap_or(f64::MAX), |b: f64| {
                        b.min(r["fit_secs"].as_f64().unwrap_or(f64::MAX))
                    }),
                );
                best_max(&mut gbp_p, r["predict_rows_per_sec"].as_f64());
                versions.insert("scikit-learn".into(), r["version"].clone());
            }
        }
        for (i, t) in trainings.iter().enumerate() {
            train_w[i] = train_w[i].max(train_throughput(&t.work, args.device)?);
            let r = py(&[
                "train",
                t.reference,
                &t.work.steps.to_string(),
                &threads,
                &torch_device,
            ])?;
            best_max(
                &mut train_p[i],
                r.as_ref().and_then(|r| r["train_samples_per_sec"].as_f64()),
            );
            if let Some(r) = r {
                versions.insert("torch".into(), r["version"].clone());
            }
        }
        in_w = in_w.max(infer_throughput(
            &lenet_layers(),
            shape,
            10,
            256,
            infer_batches,
            args.device,
        )?);
        let r = py(&["infer", &infer_batches.to_string(), &threads, &torch_device])?;
        best_max(
            &mut in_p,
            r.as_ref().and_then(|r| r["infer_images_per_sec"].as_f64()),
        );
        if args.resnet_batches > 0 {
            rn_w = rn_w.max(resnet18_forward_throughput(
                16,
                args.resnet_batches,
                args.device,
            )?);
            let r = py(&[
                "resnet18",
                "16",
                &args.resnet_batches.to_string(),
                &threads,
                &torch_device,
            ])?;
            best_max(
                &mut rn_p,
                r.as_ref().and_then(|r| r["images_per_sec"].as_f64()),
            );
            if let Some(r) = r {
                versions.insert("torchvision/torch".into(), r["version"].clone());
            }
            ft_w = ft_w.max(resnet18_fine_tune_throughput(
                16,
                args.resnet_batches,
                args.device,
            )?);
            let r = py(&[
                "resnet18-fine-tune",
                "16",
                &args.resnet_batches.to_string(),
                &threads,
                &torch_device,
            ])?;
            best_max(
                &mut ft_p,
                r.as_ref().and_then(|r| r["images_per_sec"].as_f64()),
            );
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
    let rate_row = |task: &str, wick: f64, reference: Option<f64>, name: &str, unit: &str| Row {
        task: task.into(),
        unit: unit.into(),
        wick,
        reference,
        reference_name: name.into(),
        speedup: reference.map(|r| wick / r),
    };
    let mut rows = vec![
        time_row(
            &format!(
                "open {} rows × 12 CSV ({file_mb:.0} MB) + statistics",
                args.csv_rows
            ),
            csv_w,
            csv_p,
            "pandas read_csv",
        ),
        time_row(
            "  of which reading (polars)",
            csv_read_w,
            csv_p,
            "pandas read_csv",
        ),
        time_row("least squares 200000 × 20 f64", ls_w, ls_p, "numpy lstsq"),
    ];
    if gbdt_data.is_some() {
        let sk = format!(
            "scikit-learn HistGradientBoostingRegressor, {} threads",
            args.torch_threads
        );
        rows.push(time_row(
            &format!(
                "boosted trees fit {} × {GBDT_FEATURES}, 100 trees depth 6",
                args.gbdt_rows
            ),
            gb_w,
            gb_p,
            &sk,
        ));
        rows.push(rate_row(
            &format!("boosted trees predict {} rows", args.gbdt_rows),
            gbp_w,
            gbp_p,
            &sk,
            "rows/s",
        ));
    }
    let torch_name = match device_word {
        "CPU" => format!("PyTorch CPU, {} threads", args.torch_threads),
        gpu => format!("PyTorch {gpu}"),
    };
    for (i, t) in trainings.iter().enumerate() {
        rows.push(rate_row(
            t.task,
            train_w[i],
            train_p[i],
            &torch_name,
            t.unit,
        ));
    }
    rows.push(rate_row(
        "LeNet inference, batch 256",
        in_w,
        in_p,
        &torch_name,
        "images/s",
    ));
    if args.resnet_batches > 0 {
        rows.push(rate_row(
            "ResNet-18 forward 224×224, batch 16",
            rn_w,
            rn_p,
            &torch_name,
            "images/s",
        ));
        rows.push(rate_row(
            "ResNet-18 fine-tune layer4 + head 224×224, batch 16",
            ft_w,
            ft_p,
            &torch_name,
            "images/s",
        ));
    }
    // How close LeNet training comes to what this CPU can do at all.
    let peak_gflops = cpu_peak_gflops();
    let lenet = &trainings[0];
    let lenet_flops =
        training_flops_per_sample(&lenet.work.input, &lenet.work.layers, lenet.work.n_classes)?;
    let fraction = |rate: f64| rate * lenet_flops / 1e9 / peak_gflops;
    let memory = if args.memory_steps > 0 {
        Some(peak_memory(
            &args.python,
            &script,
            args.memory_steps,
            &threads,
        )?)
    } else {
        None
    };
    if json {
        return print_json(&serde_json::json!({
            "rows": rows,
            "csv_peak_rss_mb": peak_rss_mb,
            "cpu_peak_gflops": peak_gflops,
            "lenet_training_mflop_per_image": lenet_flops / 1e6,
            "lenet_training_fraction_of_peak": { "wick": fraction(train_w[0]), "reference": train_p[0].map(fraction) },
            "lenet_training_peak_rss_mb": memory.map(|(w, p)| serde_json::json!({ "wick": w, "reference": p })),
            "csv_file_mb": file_mb,
            "reference_versions": versions,
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }));
    }
    let mut t = table(&[
        "benchmark",
        "unit",
        "Wick",
        "reference",
        "reference value",
        "Wick speed ×",
    ]);
    for r in &rows {
        t.add_row(vec![
            r.task.clone(),
            r.unit.clone(),
            format!("{:.3}", r.wick),
            r.reference_name.clone(),
            r.reference
                .map(|v| format!("{v:.3}"))
                .unwrap_or_else(|| "not installed".into()),
            r.speedup.map(|s| format!("{s:.2}")).unwrap_or_default(),
        ]);
    }
    println!("{t}");
    if let Some(rss) = peak_rss_mb {
        println!(
            "peak memory of `wick inspect` on the CSV: {rss:.0} MB = {:.2}× the file size",
            rss / file_mb
        );
    }
    println!(
        "LeNet training: {:.1} MFLOP per image; this CPU's f32 peak {peak_gflops:.0} GFLOP/s (FMA loop, every core); Wick reaches {:.0}% of it{}",
        lenet_flops / 1e6,
        100.0 * fraction(train_w[0]),
        train_p[0].map(|p| format!(", PyTorch {:.0}%", 100.0 * fraction(p))).unwrap_or_default()
    );
    if let Some((wick, reference)) = memory {
        let reference_text = reference
            .map(|p| format!(", PyTorch {p:.0} MB (Wick/PyTorch = {:.2})", wick / p))
            .unwrap_or_else(|| ", PyTorch not installed".into());
        println!("peak memory training LeNet on 60,000 28×28 images ({} steps): Wick {wick:.0} MB{reference_text}", args.memory_steps);
    }
    println!(
        "reference versions: {}",
        serde_json::Value::Object(versions)
    );
    Ok(())
}

/// `wick bench --big`: a child `wick inspect --stream` on a generated CSV of `--big-rows` rows,
/// timed and its peak memory read, then polars' streaming scan of the same file.
fn big(args: &BenchArgs, json: bool) -> Result<()> {
    let (csv, script) = bench_files(&args.data_dir, args.big_rows)?;
    let file_gb = std::fs::metadata(&csv)?.len() as f64 / 1e9;
    let csv_arg = csv.to_string_lossy().to_string();
    let summary = timed_child(&["--json", "--peak-rss", "inspect", "--stream", &csv_arg])?;
    let rows = summary.json["rows"].as_f64().unwrap_or(0.0);
    let scan_reference = reference(&args.python, &script, &["big", &csv_arg])?;
    let polars_rate = scan_reference
        .as_ref()
        .and_then(|r| r["rows_per_sec"].as_f64());
    let wick_rate = rows / summary.secs;
    // Linear regression on every row (normal equations summed chunk by chunk), beside the same
    // fit written with pandas' chunked reader and numpy.
    let out = std::env::temp_dir().join(format!("wick-bench-big-{}.wick", std::process::id()));
    let train = timed_child(&[
        "--json",
        "--peak-rss",
        "train",
        &csv_arg,
        "--target",
        "score",
        "--model",
        "linear",
        "--stream",
        "--out",
        &out.to_string_lossy(),
    ]);
    let _ = std::fs::remove_dir_all(&out);
    let train = train?;
    let linear_reference = reference(&args.python, &script, &["big_linear", &csv_arg])?;
    let train_rate = rows / train.secs;
    let linear_rate = linear_reference
        .as_ref()
        .and_then(|r| r["rows_per_sec"].as_f64());
    if json {
        return print_json(&serde_json::json!({
            "file_gb": file_gb, "rows": rows, "wick_secs": summary.secs, "wick_rows_per_sec": wick_rate, "wick_peak_rss_mb": summary.peak_mb,
            "reference": scan_reference,
            "linear": { "wick_secs": train.secs, "wick_rows_per_sec": train_rate, "wick_peak_rss_mb": train.peak_mb, "rows_used": train.json["rows_used"], "reference": linear_reference },
        }));
    }
    let mb = |m: Option<f64>| {
        m.map(|m| format!("{m:.0} MB"))
            .unwrap_or_else(|| "not measured".into())
    };
    println!("streaming summary of a {file_gb:.2} GB CSV ({rows:.0} rows × 12): Wick {:.1} s = {wick_rate:.0} rows/s, peak memory {} (bound 1,500 MB)", summary.secs, mb(summary.peak_mb));
    match (&scan_reference, polars_rate) {
        (Some(r), Some(rate)) => println!(
            "polars {} streaming scan (count, missing, min, max, mean): {:.1} s = {rate:.0} rows/s, peak memory {:.0} MB; Wick × {:.2}",
            r["version"].as_str().unwrap_or("?"), r["secs"].as_f64().unwrap_or(0.0), r["peak_mb"].as_f64().unwrap_or(0.0), wick_rate / rate
        ),
        _ => println!("polars not installed: pip install polars for the reference"),
    }
    println!(
        "linear regression on every row (wick train --stream, with its sample and test scoring): {:.1} s = {train_rate:.0} rows/s, peak memory {}",
        train.secs,
        mb(train.peak_mb)
    );
    match (&linear_reference, linear_rate) {
        (Some(r), Some(rate)) => println!(
            "pandas {} chunked read + numpy normal equations (same columns): {:.1} s = {rate:.0} rows/s, peak memory {:.0} MB; Wick × {:.2}",
            r["version"].as_str().unwrap_or("?"), r["secs"].as_f64().unwrap_or(0.0), r["peak_mb"].as_f64().unwrap_or(0.0), train_rate / rate
        ),
        _ => println!("pandas or numpy not installed: pip install pandas numpy for the reference"),
    }
    Ok(())
}

/// `wick bench --photos N`: decode + resize throughput beside Pillow on the same files and threads,
/// and the peak memory of `wick train --model transfer` on them at 224×224.
fn photos(args: &BenchArgs, n: usize, json: bool) -> Result<()> {
    let dir = args.data_dir.join(format!("photos-{n}"));
    let script = args.data_dir.join("reference.py");
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating {}", args.data_dir.display()))?;
    std::fs::write(&script, REFERENCE_PY)
        .with_context(|| format!("writing {}", script.display()))?;
    if !json {
        eprintln!("writing {n} photos to {} (once)…", dir.display());
    }
    let paths = wick_core::train::throughput::write_bench_photos(&dir, n)?;
    let threads = wick_core::train::throughput::pool_threads();
    let wick_rate = wick_core::train::throughput::decode_resize_throughput(&paths, 224)?;
    let pillow = reference(
        &args.python,
        &script,
        &["photos", &dir.to_string_lossy(), &threads.to_string()],
    )?;
    let pillow_rate = pillow.as_ref().and_then(|r| r["images_per_sec"].as_f64());
    let weights = args.data_dir.join("resnet18-random.safetensors");
    if !weights.exists() {
        wick_core::model::transfer::write_random_weights(
            wick_core::model::BackboneArch::Resnet18,
            &weights,
        )?;
    }
    let out = std::env::temp_dir().join(format!("wick-bench-photos-{}.wick", std::process::id()));
    let train = timed_child(&[
        "--json",
        "--peak-rss",
        "train",
        &dir.to_string_lossy(),
        "--model",
        "transfer",
        "--backbone",
        &weights.to_string_lossy(),
        "--image-size",
        "224",
        "--epochs",
        "1",
        "--out",
        &out.to_string_lossy(),
    ]);
    let _ = std::fs::remove_dir_all(&out);
    let train = train?;
    let fine_tune = if args.fine_tune {
        let run = timed_child(&[
            "--json",
            "--peak-rss",
            "train",
            &dir.to_string_lossy(),
            "--model",
            "transfer",
            "--backbone",
            &weights.to_string_lossy(),
            "--fine-tune",
            "--image-size",
            "224",
            "--epochs",
            "1",
            "--out",
            &out.to_string_lossy(),
        ]);
        let _ = std::fs::remove_dir_all(&out);
        Some(run?)
    } else {
        None
    };
    if json {
        return print_json(&serde_json::json!({
            "photos": n, "threads": threads, "wick_decode_images_per_sec": wick_rate, "reference": pillow,
            "transfer_train_secs": train.secs, "transfer_train_peak_rss_mb": train.peak_mb,
            "fine_tune_train_secs": fine_tune.as_ref().map(|r| r.secs), "fine_tune_peak_rss_mb": fine_tune.as_ref().and_then(|r| r.peak_mb),
        }));
    }
    println!("decode + resize of {n} 640×480 JPEGs to 224×224 RGB, {threads} threads: Wick {wick_rate:.0} images/s");
    match (&pillow, pillow_rate) {
        (Some(r), Some(rate)) => println!(
            "Pillow {} (open, convert RGB, bilinear resize, to numpy; a thread pool of {threads}): {rate:.0} images/s; Wick × {:.2}",
            r["version"].as_str().unwrap_or("?"), wick_rate / rate
        ),
        _ => println!("Pillow not installed: pip install pillow numpy for the reference"),
    }
    println!(
        "training the default transfer model (ResNet-18, 224×224, 1 epoch) on them: {:.0} s, peak memory {} (bound 2,000 MB)",
        train.secs,
        train.peak_mb.map(|m| format!("{m:.0} MB")).unwrap_or_else(|| "not measured".into())
    );
    if let Some(run) = fine_tune {
        println!(
            "fine-tuning its last stage too (1 epoch): {:.0} s, peak memory {} (bound 2,000 MB)",
            run.secs,
            run.peak_mb
                .map(|m| format!("{m:.0} MB"))
                .unwrap_or_else(|| "not measured".into())
        );
    }
    Ok(())
}

/// A child `wick` run: its JSON output, wall time and peak memory.
struct ChildRun {
    json: serde_json::Value,
    secs: f64,
    peak_mb: Option<f64>,
}

fn timed_child(args: &[&str]) -> Result<ChildRun> {
    let exe = std::env::current_exe()?;
    let t = Instant::now();
    let output = Command::new(exe).args(args).output()?;
    let secs = t.elapsed().as_secs_f64();
    if !output.status.success() {
        anyhow::bail!(
            "wick {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let json = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("reading the output of wick {}", args.join(" ")))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak_mb = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb="))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kb| kb / 1000.0);
    Ok(ChildRun {
        json,
        secs,
        peak_mb,
    })
}

/// The generated `rows`-row CSV in `dir` (written once) and the reference script (written each run).
fn bench_files(dir: &Path, rows: usize) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let csv = dir.join(format!("bench-v2-{rows}.csv"));
    if !csv.exists() {
        eprintln!("writing {} ({rows} rows)…", csv.display());
        write_bench_csv(&csv, rows)?;
    }
    let script = dir.join("reference.py");
    std::fs::write(&script, REFERENCE_PY)
        .with_context(|| format!("writing {}", script.display()))?;
    Ok((csv, script))
}

/// One training row of the bench: Wick's network and the reference script's name for the same one.
struct TrainingRow {
    task: &'static str,
    unit: &'static str,
    reference: &'static str,
    work: TrainWork,
}

fn training_rows(lenet_steps: usize) -> Vec<TrainingRow> {
    let mlp = ModelSpec::Mlp {
        hidden: vec![64, 64],
        activation: Activation::Relu,
        dropout: 0.0,
    };
    vec![
        TrainingRow {
            task: "LeNet training, batch 64, AdamW",
            unit: "images/s",
            reference: "lenet",
            work: TrainWork {
                input: vec![1, 28, 28],
                layers: lenet_layers(),
                n_classes: 10,
                batch: 64,
                steps: lenet_steps,
                optimizer: OptimizerKind::AdamW,
            },
        },
        TrainingRow {
            task: "default CNN training (8×8 digits), batch 64, AdamW",
            unit: "images/s",
            reference: "cnn8",
            work: TrainWork {
                input: vec![1, 8, 8],
                layers: default_cnn_layers(),
                n_classes: 10,
                batch: 64,
                steps: 5 * lenet_steps,
                optimizer: OptimizerKind::AdamW,
            },
        },
        TrainingRow {
            task: "MLP training (30 features, 64-64), batch 32, Adam",
            unit: "rows/s",
            reference: "mlp",
            work: TrainWork {
                input: vec![30],
                layers: dense_layers(&mlp),
                n_classes: 2,
                batch: 32,
                steps: 25 * lenet_steps,
                optimizer: OptimizerKind::Adam,
            },
        },
    ]
}

/// Peak memory (MB) of training LeNet on 60,000 images: Wick in a child process, and the reference.
fn peak_memory(
    python: &str,
    script: &Path,
    steps: usize,
    threads: &str,
) -> Result<(f64, Option<f64>)> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args([
            "bench",
            "--memory-child",
            "--memory-steps",
            &steps.to_string(),
        ])
        .output()
        .context("running the peak-memory child")?;
    if !child.status.success() {
        anyhow::bail!(
            "the peak-memory training run failed: {}",
            String::from_utf8_lossy(&child.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&child.stderr);
    let wick = text
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb="))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kb| kb / 1000.0)
        .context("the peak-memory child printed no peak_rss_kb line (Linux only)")?;
    let reference = reference(
        python,
        script,
        &["peak-memory", &steps.to_string(), threads],
    )?
    .and_then(|r| r["peak_rss_mb"].as_f64());
    Ok((wick, reference))
}

/// `wick bench --parity`: the device's logits and gradients against the fused CPU ops'.
fn parity(device: DeviceChoice, json: bool) -> Result<()> {
    let report = device_parity(device)?;
    if json {
        print_json(&report)?;
    } else {
        println!("parity on {} against the CPU (largest difference relative to the largest value; tolerance {PARITY_TOLERANCE:e}):", report.device);
        println!("  logits {:.2e}", report.logits);
        for (i, g) in report.gradients.iter().enumerate() {
            println!("  gradient of tensor {i} {g:.2e}");
        }
    }
    if !report.passed() {
        anyhow::bail!(
            "{} does not match the CPU within {PARITY_TOLERANCE:e}",
            report.device
        );
    }
    println!("parity: ok");
    Ok(())
}

/// The child side of [`peak_memory`].
pub fn memory_child(steps: usize) -> Result<()> {
    lenet_memory_run(steps)?;
    if let Some(kb) = own_peak_rss_kb() {
        eprintln!("peak_rss_kb={kb}");
    }
    Ok(())
}

/// Runs one reference measurement; `None` when Python or the library is missing.
fn reference(python: &str, script: &Path, args: &[&str]) -> Result<Option<serde_json::Value>> {
    let output = match Command::new(python).arg(script).args(args).output() {
        Ok(o) => o,
        Err(_) => return Ok(None),
    };
    if !output.status.success() {
        eprintln!(
            "reference {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        return Ok(None);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading the reference script's output")?;
    Ok(if value.get("missing").is_some() {
        None
    } else {
        Some(value)
    })
}

/// Peak resident memory of a child `wick inspect` on the CSV, in MB (Linux only).
fn peak_rss_of_inspect(csv: &Path) -> Result<Option<f64>> {
    if !cfg!(target_os = "linux") {
        return Ok(None);
    }
    let exe = std::env::current_exe()?;
    let status = Command::new(exe)
        .args(["--json", "inspect"])
        .arg(csv)
        .arg("--peak-rss")
        .output()?;
    if !status.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&status.stderr);
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb="))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|kb| kb / 1000.0))
}

/// Reads this process's peak resident set size from /proc (Linux).
pub fn own_peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

const GBDT_FEATURES: usize = 10;

/// The boosted-tree rows' settings, the same as reference.py's `gbdt`.
fn gbdt_params() -> BoostParams {
    BoostParams {
        trees: 100,
        learning_rate: 0.1,
        max_depth: 6,
        min_leaf_weight: 20.0,
        l2: 0.0,
        early_stopping_rounds: None,
        seed: 0,
        record_train_loss: false,
    }
}

/// Friedman's regression problem #1 (as scikit-learn's `make_friedman1`): ten uniform features, of
/// which five matter, plus noise.
fn friedman_table(rows: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x: Vec<f64> = (0..rows * GBDT_FEATURES)
        .map(|_| rng.random_range(0.0..1.0))
        .collect();
    let y = x
        .chunks_exact(GBDT_FEATURES)
        .map(|r| {
            let noise: f64 = (0..12).map(|_| rng.random_range(0.0..1.0)).sum::<f64>() - 6.0;
            10.0 * (std::f64::consts::PI * r[0] * r[1]).sin()
                + 20.0 * (r[2] - 0.5).powi(2)
                + 10.0 * r[3]
                + 5.0 * r[4]
                + noise
        })
        .collect();
    (x, y)
}

/// Writes features and target as a CSV whose numbers parse back to the same f64s.
fn write_numeric_csv(path: &Path, x: &[f64], y: &[f64], cols: usize) -> Result<()> {
    let tmp = path.with_extension("csv.partial");
    let mut w = BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?,
    );
    let header: Vec<String> = (0..cols)
        .map(|j| format!("x{j}"))
        .chain(["y".to_string()])
        .collect();
    writeln!(w, "{}", header.join(","))?;
    for (row, target) in x.chunks_exact(cols).zip(y) {
        for v in row {
            write!(w, "{v},")?;
        }
        writeln!(w, "{target}")?;
    }
    w.flush()?;
    drop(w);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn lstsq_data(rows: usize, cols: usize) -> (Vec<f64>, Vec<f64>) {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let w: Vec<f64> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x: Vec<f64> = (0..rows * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let y = x
        .chunks_exact(cols)
        .map(|r| r.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() + rng.random_range(-0.1..0.1))
        .collect();
    (x, y)
}

/// A 12-column CSV like a real export: an id, a date, a category, and nine measurements.
fn write_bench_csv(path: &Path, rows: usize) -> Result<()> {
    let tmp = path.with_extension("csv.partial");
    let mut w = BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?,
    );
    writeln!(w, "id,date,category,a,b,c,d,e,f,g,h,score")?;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let cats = ["alpha", "beta", "gamma", "delta", "epsilon"];
    for i in 0..rows {
        let day = 1 + i % 28;
        let month = 1 + (i / 28) % 12;
        write!(
            w,
            "{i},2024-{month:02}-{day:02},{}",
            cats[rng.random_range(0..cats.len())]
        )?;
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
