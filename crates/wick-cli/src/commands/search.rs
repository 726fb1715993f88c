//! `wick search DATA --target COL --budget-secs 60`: the leaderboard of the templates that fit the
//! table, ranked on the validation rows; the best is trained once more, scored on the test rows
//! and saved.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use wick_core::data::{SplitFractions, TabularRequest, Task};
use wick_core::package::save_package;
use wick_core::train::TableData;
use wick_core::train::{search, CancelToken, SearchEvent, TrainConfig};

use crate::dataset::{self, Dataset};
use crate::output::{print_json, print_metrics, table};

#[derive(Args)]
pub struct SearchArgs {
    /// A CSV, Parquet or NDJSON table.
    pub data: PathBuf,
    /// The column to predict.
    #[arg(long)]
    pub target: String,
    /// Feature columns, comma-separated (default: every usable column but the target).
    #[arg(long, value_delimiter = ',')]
    pub features: Option<Vec<String>>,
    /// Override task detection.
    #[arg(long, value_parser = ["regression", "classification"])]
    pub task: Option<String>,
    /// Seconds to spend trying models; a candidate is started only if it likely ends in time.
    #[arg(long, default_value_t = 60.0)]
    pub budget_secs: f64,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Fraction of rows held out for validation (ranking) and for test (the best model's report).
    #[arg(long, default_value_t = 0.15)]
    pub valid_fraction: f64,
    #[arg(long, default_value_t = 0.15)]
    pub test_fraction: f64,
    /// Where to write the best model's package (a .wick folder).
    #[arg(long)]
    pub out: PathBuf,
}

/// Rows of the leaderboard printed as a table.
const SHOWN: usize = 15;

pub fn run(args: &SearchArgs, json: bool) -> Result<()> {
    let Dataset::Table(df) = dataset::open(&args.data)? else {
        bail!(
            "{} is images; `wick search` compares table models",
            args.data.display()
        );
    };
    let task = args.task.as_deref().map(|t| {
        if t == "regression" {
            Task::Regression
        } else {
            Task::Classification
        }
    });
    let request = TabularRequest {
        target: args.target.clone(),
        features: args.features.clone(),
        task,
        ..Default::default()
    };
    let config = TrainConfig {
        seed: args.seed,
        split: SplitFractions {
            valid: args.valid_fraction,
            test: args.test_fraction,
        },
        ..TrainConfig::default()
    };
    let mut on_event = |e: SearchEvent| {
        if json {
            return;
        }
        match e {
            SearchEvent::CandidateStarted { .. } => {}
            SearchEvent::CandidateDone(c) => eprintln!(
                "  {:<58} validation {:.4}  {:.1} s",
                c.name, c.valid_score, c.duration_secs
            ),
            SearchEvent::CandidateFailed { name, message } => {
                eprintln!("  {name:<58} skipped: {message}")
            }
            SearchEvent::FinalStarted { name } => {
                eprintln!("training the best, {name}, on the usual split…")
            }
        }
    };
    if !json {
        eprintln!(
            "trying models on {} for {} s (ranked on the validation rows):",
            args.data.display(),
            args.budget_secs
        );
    }
    let outcome = search(
        TableData::new(&df, &args.data, &request),
        &config,
        args.budget_secs,
        &mut on_event,
        &CancelToken::new(),
    )
    .with_context(|| {
        format!(
            "searching models for `{}` in {}",
            args.target,
            args.data.display()
        )
    })?;
    let name = args
        .out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "best".into());
    save_package(&outcome.best.model, &outcome.best.report, &name, &args.out)
        .with_context(|| format!("saving the best model to {}", args.out.display()))?;
    if json {
        return print_json(&serde_json::json!({
            "metric": outcome.metric,
            "leaderboard": outcome.leaderboard,
            "best": outcome.leaderboard.first(),
            "test": outcome.best.report.test,
            "package": args.out,
        }));
    }
    let mut t = table(&[
        "rank",
        "model",
        &format!("validation {}", outcome.metric),
        "seconds",
    ]);
    for (i, c) in outcome.leaderboard.iter().take(SHOWN).enumerate() {
        t.add_row(vec![
            (i + 1).to_string(),
            c.name.clone(),
            format!("{:.4}", c.valid_score),
            format!("{:.1}", c.duration_secs),
        ]);
    }
    println!("{t}");
    if outcome.leaderboard.len() > SHOWN {
        println!(
            "{} more tried (all of them with --json)",
            outcome.leaderboard.len() - SHOWN
        );
    }
    if let Some(best) = outcome.leaderboard.first() {
        println!(
            "best: {} — test metrics (the test rows' only use):",
            best.name
        );
    }
    if let Some(m) = &outcome.best.report.test {
        print_metrics(m);
    }
    println!("saved to {}", args.out.display());
    Ok(())
}
