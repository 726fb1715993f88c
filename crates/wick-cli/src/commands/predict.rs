use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use wick_core::model::{Model, ModelInput, Prediction};
use wick_core::package::load_package;

use crate::dataset::{self, Dataset};
use crate::output::{print_json, table};

pub fn run(model_path: &Path, inputs: &[PathBuf], out: Option<&Path>, json: bool) -> Result<()> {
    let (model, _) =
        load_package(model_path).with_context(|| format!("loading {}", model_path.display()))?;
    let (sources, predictions) = match &model.input {
        ModelInput::Tabular { .. } => {
            let [input] = inputs else {
                bail!("this model takes one table file (CSV, Parquet or NDJSON)")
            };
            let Dataset::Table(df) = dataset::open(input)? else {
                bail!(
                    "this model takes table rows, but {} is an image dataset",
                    input.display()
                )
            };
            let predictions = model
                .predict_frame(&df)
                .with_context(|| format!("predicting {}", input.display()))?;
            (
                (1..=df.height())
                    .map(|r| format!("row {r}"))
                    .collect::<Vec<_>>(),
                predictions,
            )
        }
        ModelInput::Image { .. } => {
            let paths = image_paths(inputs)?;
            let predictions = model.predict_image_paths(&paths)?;
            (
                paths.iter().map(|p| p.display().to_string()).collect(),
                predictions,
            )
        }
    };
    if let Some(out) = out {
        write_csv(out, &model, &sources, &predictions)?;
    }
    if json {
        let rows: Vec<_> = sources
            .iter()
            .zip(&predictions)
            .map(|(s, p)| serde_json::json!({ "input": s, "prediction": p }))
            .collect();
        return print_json(&rows);
    }
    let mut t = table(&["input", "prediction", "confidence"]);
    for (s, p) in sources.iter().zip(&predictions) {
        let (value, confidence) = describe(p);
        t.add_row(vec![s.clone(), value, confidence]);
    }
    println!("{t}");
    Ok(())
}

fn describe(p: &Prediction) -> (String, String) {
    match p {
        Prediction::Value { value } => (format!("{value:.6}"), String::new()),
        Prediction::Class { label, .. } => (
            label.clone(),
            p.confidence()
                .map(|c| format!("{:.1}%", c * 100.0))
                .unwrap_or_default(),
        ),
    }
}

/// Image files as given, and the images inside any folder (recursively one level: class folders).
fn image_paths(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = Vec::new();
            for entry in
                std::fs::read_dir(input).with_context(|| format!("reading {}", input.display()))?
            {
                let p = entry?.path();
                if p.is_dir() {
                    for e in std::fs::read_dir(&p)? {
                        found.push(e?.path());
                    }
                } else {
                    found.push(p);
                }
            }
            found.retain(|p| is_image(p));
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    if out.is_empty() {
        bail!("no images found in the given inputs");
    }
    Ok(out)
}

fn is_image(p: &Path) -> bool {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    ["png", "jpg", "jpeg", "bmp", "gif", "webp"].contains(&ext.as_str())
}

/// Writes predictions as CSV through a temporary file renamed into place.
fn write_csv(
    path: &Path,
    model: &Model,
    sources: &[String],
    predictions: &[Prediction],
) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    let target = &model.target.name;
    writeln!(tmp, "input,{target},confidence")?;
    for (s, p) in sources.iter().zip(predictions) {
        let (value, confidence) = describe(p);
        writeln!(
            tmp,
            "{},{},{}",
            csv_field(s),
            csv_field(&value),
            confidence.trim_end_matches('%')
        )?;
    }
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
