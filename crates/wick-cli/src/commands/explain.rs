//! `wick explain MODEL DATA`: which features a table model relies on, and optionally why it made
//! one prediction.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use wick_core::data::load_image;
use wick_core::explain::{
    explain_row, frame_row, permutation_importance, saliency, write_saliency_png,
};
use wick_core::package::load_package;

use crate::dataset::{self, Dataset};
use crate::output::{print_json, table};

#[derive(Args)]
pub struct ExplainArgs {
    /// A model package (.wick folder).
    pub model: PathBuf,
    /// For a table model, a labelled table (with the model's target column), e.g. held-out rows.
    /// For an image model, one image: its saliency map is written to --out.
    pub data: PathBuf,
    /// Image models: where to write the saliency map (a PNG: the image, red where the model looked).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Shuffles per feature; more give steadier figures.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also split the prediction of this row (1-based, as `wick predict` numbers them) into
    /// per-feature contributions.
    #[arg(long)]
    pub row: Option<usize>,
}

pub fn run(args: &ExplainArgs, json: bool) -> Result<()> {
    let (model, manifest) =
        load_package(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    if let Ok(shape) = model.image_shape() {
        let Some(out) = &args.out else {
            bail!(
                "{} is an image model: add --out map.png for the saliency map of {}",
                manifest.name,
                args.data.display()
            )
        };
        let chw = load_image(&args.data, shape)
            .with_context(|| format!("reading {}", args.data.display()))?;
        let map = saliency(&model, &chw)?;
        write_saliency_png(&chw, shape.channels, &map, out)?;
        if json {
            return print_json(
                &serde_json::json!({ "model": manifest.name, "class": map.label, "class_index": map.class_index, "out": out }),
            );
        }
        println!("`{}` predicts `{}` for {}; its saliency map (red where the score depends most on the pixel) is in {}", manifest.name, map.label, args.data.display(), out.display());
        return Ok(());
    }
    let Dataset::Table(df) = dataset::open(&args.data)? else {
        bail!(
            "{} is images; `wick explain` explains table models on a labelled table",
            args.data.display()
        );
    };
    let importance = permutation_importance(&model, &df, args.repeats, args.seed)
        .with_context(|| format!("explaining {} on {}", manifest.name, args.data.display()))?;
    let explanation = match args.row {
        None => None,
        Some(row) => {
            if row == 0 || row > df.height() {
                bail!(
                    "--row {row} is not in {} (rows 1 to {})",
                    args.data.display(),
                    df.height()
                );
            }
            let record = frame_row(&df, row - 1)?;
            let explained = explain_row(&model, &record)?;
            Some(explained.with_context(|| format!("{} models have no per-feature contributions in Wick (linear models and trees do)", manifest.spec.kind_name()))?)
        }
    };
    if json {
        return print_json(
            &serde_json::json!({ "model": manifest.name, "importance": importance, "explanation": explanation }),
        );
    }
    println!(
        "model `{}` on {} ({} rows): {} {:.4}; drop when a feature is shuffled ({} times each)",
        manifest.name,
        args.data.display(),
        importance.rows,
        importance.metric,
        importance.baseline,
        importance.repeats
    );
    let trees = importance.features.iter().any(|f| f.split_gain.is_some());
    let mut header = vec!["feature", "permutation drop", "± sd"];
    if trees {
        header.push("split gain share");
    }
    let mut t = table(&header);
    for f in &importance.features {
        let mut row = vec![
            f.feature.clone(),
            format!("{:.4}", f.permutation_mean),
            format!("{:.4}", f.permutation_std),
        ];
        if trees {
            row.push(
                f.split_gain
                    .map(|g| format!("{:.3}", g))
                    .unwrap_or_default(),
            );
        }
        t.add_row(row);
    }
    println!("{t}");
    if let Some(e) = explanation {
        println!(
            "row {}: {} = {:.4} ({}, {})",
            args.row.unwrap_or_default(),
            e.output,
            e.base + e.parts.iter().map(|p| p.1).sum::<f64>(),
            e.scale,
            e.method
        );
        let mut t = table(&["feature", "contribution"]);
        t.add_row(vec!["(base)".to_string(), format!("{:+.4}", e.base)]);
        for (name, value) in &e.parts {
            t.add_row(vec![name.clone(), format!("{value:+.4}")]);
        }
        println!("{t}");
    }
    Ok(())
}
