use std::path::Path;

use anyhow::{Context, Result};
use wick_core::evaluate::{evaluate_images, evaluate_table};
use wick_core::package::load_package;

use crate::dataset::{self, Dataset};
use crate::output::{print_json, print_metrics};

pub fn run(model_path: &Path, data: &Path, json: bool) -> Result<()> {
    let (model, manifest) =
        load_package(model_path).with_context(|| format!("loading {}", model_path.display()))?;
    let (metrics, predictions) = match dataset::open(data)? {
        Dataset::Table(df) => evaluate_table(&model, &df)?,
        Dataset::Images(index) => evaluate_images(&model, &index)?,
    };
    if json {
        return print_json(
            &serde_json::json!({ "model": manifest.name, "rows": predictions.len(), "metrics": metrics }),
        );
    }
    println!(
        "model `{}` on {} ({} rows):",
        manifest.name,
        data.display(),
        predictions.len()
    );
    print_metrics(&metrics);
    Ok(())
}
