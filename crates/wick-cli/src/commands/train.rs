use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::builder::PossibleValue;
use clap::{Args, ValueEnum};
use wick_core::data::{
    Augment, MissingPolicy, PersonalAction, PersonalData, PreprocessOptions, SplitFractions,
    TabularRequest, Task,
};
use wick_core::hub::{self, BackboneSource, HubClient};
use wick_core::model::{
    Activation, Backbone, BackboneArch, InputKind, KindSettings, ModelKind, ModelSpec,
};
use wick_core::train::TableData;
use wick_core::train::{
    CancelToken, ClassWeight, DeviceChoice, JobData, JobOutcome, OptimizerKind, SaveTo,
    StreamOptions, TableRows, TrainConfig, TrainJob,
};

use crate::dataset::{self, Dataset};
use crate::output::{print_json, print_metrics};
use crate::progress::ProgressBars;

/// `--model`: a kind of model by the name [`ModelKind::id`] gives it, with its blurb as help.
#[derive(Clone, Copy)]
pub struct KindArg(pub ModelKind);

static KIND_ARGS: [KindArg; ModelKind::ALL.len()] = {
    let k = ModelKind::ALL;
    [
        KindArg(k[0]),
        KindArg(k[1]),
        KindArg(k[2]),
        KindArg(k[3]),
        KindArg(k[4]),
        KindArg(k[5]),
        KindArg(k[6]),
        KindArg(k[7]),
        KindArg(k[8]),
    ]
};

impl ValueEnum for KindArg {
    fn value_variants<'a>() -> &'a [Self] {
        &KIND_ARGS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.id()).help(self.0.blurb()))
    }
}

#[derive(Args)]
pub struct TrainArgs {
    /// A CSV/Parquet/NDJSON table, an image folder (one sub-folder per class) or an image CSV (path,label).
    pub data: PathBuf,
    /// The column to predict (tables only).
    #[arg(long)]
    pub target: Option<String>,
    /// Feature columns, comma-separated (default: every usable column but the target).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Override task detection.
    #[arg(long, value_parser = ["regression", "classification"])]
    pub task: Option<String>,
    /// Model template (default: linear for numbers, logistic for classes, cnn for images).
    #[arg(long, value_enum, conflicts_with = "spec")]
    pub model: Option<KindArg>,
    /// A ModelSpec JSON file instead of a template.
    #[arg(long)]
    pub spec: Option<PathBuf>,
    /// Polynomial degree (poly).
    #[arg(long, default_value_t = 2)]
    pub degree: u32,
    /// Ridge penalty (ridge, poly).
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// Hidden layer sizes (mlp), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,32")]
    pub hidden: Vec<usize>,
    /// Dropout rate (mlp).
    #[arg(long, default_value_t = 0.0)]
    pub dropout: f32,
    /// Number of trees (gbdt: 300, the most it grows before early stopping; forest: 100).
    #[arg(long)]
    pub trees: Option<usize>,
    /// Tree depth limit (gbdt: 6; forest: none, trees grow until their leaves are pure).
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Pretrained backbone (transfer): a name, downloaded from the Hugging Face Hub on first use
    /// (mobilenetv4, resnet18, resnet34, resnet50; `wick backbones` lists them), or a local
    /// .safetensors file. Default resnet18. Implies --model transfer.
    #[arg(long)]
    pub backbone: Option<String>,
    /// Transfer learning: also train the backbone's last stage (at a tenth of the learning rate),
    /// not only the new head. Slower (every epoch runs the backbone), often more accurate. ResNets only.
    #[arg(long)]
    pub fine_tune: bool,
    /// Image side length for CNN/transfer inputs (CNN default: from the data, at most 64;
    /// transfer default: the backbone's own, 224).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Random changes to training images, comma-separated: flip, vflip, rotate, crop, color,
    /// noise, blur (image datasets only).
    #[arg(long, value_delimiter = ',')]
    pub augment: Option<Vec<String>>,
    /// Personal columns, comma-separated COLUMN=drop or COLUMN=hash: drop leaves the column out,
    /// hash trains on (and the endpoint logs) a salted SHA-256 of each value instead of the value.
    /// `wick inspect` flags the columns that look personal.
    #[arg(long, value_delimiter = ',')]
    pub personal: Option<Vec<String>>,
    /// How to handle missing values: drop, mean, median, most-frequent.
    #[arg(long, default_value = "mean")]
    pub missing: String,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub lr: Option<f64>,
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value = "adamw")]
    pub optimizer: OptimizerKind,
    /// Epochs without a better validation loss before stopping, or trees for gbdt (default 5 epochs,
    /// 20 trees; 0 = never stop early).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Class weights in the training loss (classification): none, or balanced (each class counts
    /// as much as the others, as scikit-learn's class_weight="balanced").
    #[arg(long, default_value = "none", value_parser = ["none", "balanced"])]
    pub class_weight: String,
    /// Cross-validate with this many folds (stratified for classes) before training the model that
    /// is saved; prints each metric's mean ± sd over the folds (tables only).
    #[arg(long)]
    pub cv: Option<usize>,
    /// Fraction of rows held out for validation and for test.
    #[arg(long, default_value_t = 0.15)]
    pub valid_fraction: f64,
    #[arg(long, default_value_t = 0.15)]
    pub test_fraction: f64,
    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Model name stored in the package (default: the output file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Where to write the model package (a .wick folder).
    #[arg(long)]
    pub out: PathBuf,
    /// Train from the CSV in chunks, as for files over 1 GiB (which always do): linear
    /// regression and trees use every row; networks a stratified sample.
    #[arg(long)]
    pub stream: bool,
}

pub fn run(args: &TrainArgs, json: bool) -> Result<()> {
    // A large CSV opens as a sample (columns, encodings) and trains from the file in chunks.
    let large_sample = dataset::large_csv_sample(&args.data, args.stream, json)?;
    let streaming = large_sample.is_some();
    let data = match large_sample {
        Some(sample) => Dataset::Table(sample),
        None => dataset::open(&args.data)?,
    };
    let mut config = TrainConfig {
        seed: args.seed,
        optimizer: args.optimizer,
        device: args.device,
        early_stopping_patience: Some(args.patience.unwrap_or(5)).filter(|&p| p > 0),
        split: SplitFractions {
            valid: args.valid_fraction,
            test: args.test_fraction,
        },
        class_weight: if args.class_weight == "balanced" {
            ClassWeight::Balanced
        } else {
            ClassWeight::None
        },
        ..TrainConfig::default()
    };
    let mut bars = ProgressBars::new(json);
    let cancel = CancelToken::new();
    let name = args.name.clone().unwrap_or_else(|| {
        args.out
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "model".into())
    });
    let save = Some(SaveTo {
        name,
        path: args.out.clone(),
    });
    // The table's request, which the job borrows.
    let mut request = None;
    let job = match &data {
        Dataset::Table(df) => {
            let Some(target) = args.target.clone() else {
                let names: Vec<String> = df
                    .get_column_names()
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                bail!(
                    "choose the column to predict with --target; the columns are: {}",
                    names.join(", ")
                );
            };
            let task = args.task.as_deref().map(|t| {
                if t == "regression" {
                    Task::Regression
                } else {
                    Task::Classification
                }
            });
            let missing = match args.missing.as_str() {
                "drop" => MissingPolicy::Drop,
                "mean" => MissingPolicy::Mean,
                "median" => MissingPolicy::Median,
                "most-frequent" | "most_frequent" => MissingPolicy::MostFrequent,
                other => bail!(
                    "--missing {other:?} is not known; use drop, mean, median or most-frequent"
                ),
            };
            let personal = personal_choices(args.personal.as_deref().unwrap_or_default(), df)?;
            let table_request = TabularRequest {
                target,
                features: args.features.clone(),
                task,
                options: PreprocessOptions {
                    missing,
                    ..Default::default()
                },
                personal,
            };
            let detected = match task {
                Some(t) => t,
                None => {
                    let Ok(col) = df.column(&table_request.target) else {
                        let names: Vec<String> = df
                            .get_column_names()
                            .iter()
                            .map(|s| s.to_string())
                            .collect();
                        bail!(
                            "column `{}` is not in {}; the columns are: {}",
                            table_request.target,
                            args.data.display(),
                            names.join(", ")
                        );
                    };
                    wick_core::data::detect_task(col.as_materialized_series())
                }
            };
            let spec = table_spec(args, detected)?;
            apply_defaults(&mut config, args, 100, 32, 3e-3);
            if args.augment.is_some() {
                bail!("--augment changes training images; for a table, leave it out");
            }
            if let (Some(_), true) = (args.cv, streaming) {
                bail!("--cv refits the model once per fold, which for a file this large means reading it many times; leave --cv out (the held-out rows are then up to 200,000 rows each)");
            }
            TrainJob {
                data: JobData::Table {
                    table: TableData::new(df, &args.data, request.insert(table_request)),
                    rows: if streaming {
                        TableRows::Streamed(StreamOptions::default())
                    } else {
                        TableRows::InMemory
                    },
                },
                spec,
                config,
                cv_folds: args.cv,
                backbone: None,
                save,
            }
        }
        Dataset::Images(index) => {
            if args.cv.is_some() {
                bail!("--cv cross-validates table models; for an image folder, leave it out");
            }
            if args.personal.is_some() {
                bail!("--personal marks table columns; for an image folder, leave it out");
            }
            if args.target.is_some() {
                eprintln!("note: --target is ignored for image datasets; the class is the sub-folder name");
            }
            let mut shape = index.default_shape(64);
            if let Some(side) = args.image_size {
                shape.height = side;
                shape.width = side;
            }
            let (spec, backbone) = image_spec(args, shape)?;
            apply_defaults(&mut config, args, 15, 32, 2e-3);
            if let Some(names) = &args.augment {
                config.augment =
                    Augment::from_names(names.iter().map(String::as_str)).context("--augment")?;
            }
            TrainJob {
                data: JobData::Images { index },
                spec,
                config,
                cv_folds: None,
                backbone,
                save,
            }
        }
    };
    let JobOutcome {
        outcome,
        cv: cv_report,
        manifest,
    } = wick_core::train::run(job, &mut bars, &cancel)?;
    let manifest = manifest.context("the run saved no package")?;
    if json {
        return print_json(&serde_json::json!({
            "package": args.out,
            "name": manifest.name,
            "task": manifest.target.task,
            "metrics": outcome.report.test,
            "epochs_run": outcome.report.epochs_run,
            "best_epoch": outcome.report.best_epoch,
            "duration_secs": outcome.report.duration_secs,
            "device": outcome.report.device,
            "rows": outcome.report.rows,
            "warnings": outcome.report.warnings,
            "rows_used": outcome.report.rows_used,
            "cv": cv_report,
        }));
    }
    if let Some(cv) = &cv_report {
        for w in &cv.warnings {
            eprintln!("note: {w}");
        }
        println!(
            "{}-fold cross-validation (every row tested once by a model that never saw it):",
            cv.folds
        );
        let mut t = crate::output::table(&["metric", "mean", "± sd", "folds"]);
        for s in &cv.stats {
            let per_fold: Vec<String> = cv
                .fold_metrics
                .iter()
                .filter_map(|m| {
                    m.scalars()
                        .iter()
                        .find(|(n, _)| *n == s.name)
                        .map(|(_, v)| format!("{v:.3}"))
                })
                .collect();
            t.add_row(vec![
                s.name.clone(),
                format!("{:.4}", s.mean),
                format!("{:.4}", s.sd),
                per_fold.join(" "),
            ]);
        }
        println!("{t}");
    }
    for w in &outcome.report.warnings {
        eprintln!("note: {w}");
    }
    if let Some(used) = &outcome.report.rows_used {
        println!("{}", used.describe());
    }
    let rows = outcome.report.rows;
    println!(
        "model `{}` ({:?}, target `{}`) — {} train / {} valid / {} test rows, {} epochs on {}",
        manifest.name,
        manifest.target.task,
        manifest.target.name,
        rows.train,
        rows.valid,
        rows.test,
        outcome.report.epochs_run,
        outcome.report.device
    );
    match &outcome.report.test {
        Some(metrics) => {
            println!("test metrics:");
            print_metrics(metrics);
        }
        None => println!("no test metrics: every row trained the model (--test-fraction 0), so nothing was held out"),
    }
    println!("saved to {}", args.out.display());
    Ok(())
}

fn apply_defaults(
    config: &mut TrainConfig,
    args: &TrainArgs,
    epochs: usize,
    batch: usize,
    lr: f64,
) {
    config.epochs = args.epochs.unwrap_or(epochs);
    config.batch_size = args.batch.unwrap_or(batch);
    config.lr = args.lr.unwrap_or(lr);
}

fn read_spec(path: &PathBuf) -> Result<ModelSpec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a valid model spec", path.display()))
}

/// The settings `wick train`'s flags give a kind of model.
fn kind_settings(args: &TrainArgs) -> KindSettings {
    KindSettings {
        ridge_alpha: args.alpha,
        poly_degree: args.degree,
        hidden: args.hidden.clone(),
        activation: Activation::Relu,
        dropout: args.dropout,
        trees: args.trees,
        learning_rate: args.lr,
        max_depth: args.max_depth,
        patience: args.patience,
        ..KindSettings::default()
    }
}

fn table_spec(args: &TrainArgs, task: Task) -> Result<ModelSpec> {
    if let Some(path) = &args.spec {
        return read_spec(path);
    }
    let kind = args
        .model
        .map_or(ModelKind::default_for(InputKind::Table, task), |k| k.0);
    if kind.input() != InputKind::Table {
        bail!(
            "--model {} needs an image folder, not a table; for a table, pick one of: {}",
            kind.id(),
            kind_ids(InputKind::Table)
        )
    }
    Ok(kind.spec(&kind_settings(args))?)
}

/// The `--model` names for this kind of data, comma-separated.
fn kind_ids(input: InputKind) -> String {
    let ids: Vec<&str> = ModelKind::ALL
        .into_iter()
        .filter(|k| k.input() == input)
        .map(ModelKind::id)
        .collect();
    ids.join(", ")
}

fn image_spec(
    args: &TrainArgs,
    shape: wick_core::data::ImageShape,
) -> Result<(ModelSpec, Option<(BackboneSource, HubClient)>)> {
    if let Some(path) = &args.spec {
        return Ok((read_spec(path)?, None));
    }
    let kind = match args.model {
        Some(k) => k.0,
        None if args.backbone.is_some() => ModelKind::Transfer,
        None => ModelKind::default_for(InputKind::Images, Task::Classification),
    };
    if kind.input() != InputKind::Images {
        bail!(
            "an image dataset needs --model {}",
            kind_ids(InputKind::Images).replace(", ", " or --model ")
        )
    }
    let mut settings = KindSettings {
        image_input: Some(shape),
        ..kind_settings(args)
    };
    let mut backbone = None;
    if kind == ModelKind::Transfer {
        let source =
            BackboneSource::parse(args.backbone.as_deref().unwrap_or(hub::DEFAULT_BACKBONE))
                .context("--backbone")?;
        let client = HubClient::from_env()?;
        // The backbone sees images at the size it was trained on unless --image-size says otherwise.
        let side = args.image_size.unwrap_or(source.input_px());
        // The job puts the weights on this machine (a download on first use), then fills in
        // their architecture and path.
        settings.backbone = Some(Backbone {
            arch: BackboneArch::Resnet18,
            weights: PathBuf::new(),
            input: wick_core::data::ImageShape {
                channels: 3,
                height: side,
                width: side,
            },
            fine_tune: args.fine_tune,
        });
        backbone = Some((source, client));
    }
    Ok((kind.spec(&settings)?, backbone))
}

/// Parses `--personal COLUMN=drop|hash` against the table's columns.
fn personal_choices(
    items: &[String],
    df: &wick_core::polars::prelude::DataFrame,
) -> Result<PersonalData> {
    let mut personal = PersonalData::default();
    for item in items {
        let Some((column, action)) = item.split_once('=') else {
            bail!("--personal {item:?}: write COLUMN=drop or COLUMN=hash");
        };
        if df.column(column).is_err() {
            let names: Vec<String> = df
                .get_column_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
            bail!(
                "--personal: column `{column}` is not in the table; the columns are: {}",
                names.join(", ")
            );
        }
        let action: PersonalAction = action
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--personal {item:?}: {e}"))?;
        personal.set(column, Some(action));
    }
    Ok(personal)
}
