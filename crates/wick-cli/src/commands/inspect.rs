use std::path::Path;

use anyhow::{Context, Result};
use wick_core::data::{
    cut_text, index_image_csv, inspect_table, summarize_csv_streaming, ColumnKind, ImageIndex,
    TableFormat, TableSummary, DEFAULT_CHUNK_BYTES, STREAM_THRESHOLD_BYTES,
};

use crate::output::{print_json, table, CELL_CHARS};

/// `stream`: summarise a CSV in one streaming pass without loading it (automatic above 1 GiB).
pub fn run(path: &Path, stream: bool, json: bool) -> Result<()> {
    if path.is_dir() {
        let index = crate::dataset::index_folder(path)?;
        return print_images(path, &index, json);
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let csv = matches!(TableFormat::from_path(path), Ok(TableFormat::Csv));
    let summary = if csv && (stream || size > STREAM_THRESHOLD_BYTES) {
        let mut last_percent = u64::MAX;
        let mut progress = |done: u64, total: u64| {
            let percent = done * 100 / total.max(1);
            if !json && percent / 10 != last_percent / 10 {
                eprintln!("reading {}: {percent}%", path.display());
                last_percent = percent;
            }
        };
        summarize_csv_streaming(path, DEFAULT_CHUNK_BYTES, &mut progress)
            .with_context(|| format!("streaming {}", path.display()))?
    } else {
        inspect_table(path)
            .with_context(|| format!("opening {}", path.display()))?
            .1
    };
    if summary
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .eq(["path", "label"])
    {
        let index = index_image_csv(path)
            .with_context(|| format!("opening image list {}", path.display()))?;
        return print_images(path, &index, json);
    }
    if json {
        return print_json(&summary);
    }
    print_table(path, &summary);
    Ok(())
}

fn print_table(path: &Path, summary: &TableSummary) {
    println!(
        "{}: {} rows × {} columns ({:?})",
        path.display(),
        summary.rows,
        summary.columns.len(),
        summary.format
    );
    let mut t = table(&[
        "column",
        "type",
        "missing",
        "distinct",
        "min",
        "max",
        "mean",
        "std",
        "top values",
    ]);
    let num = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
    for c in &summary.columns {
        let top = c
            .top_values
            .iter()
            .map(|(v, n)| format!("{} ({n})", cut_text(v, CELL_CHARS)))
            .collect::<Vec<_>>()
            .join(", ");
        t.add_row(vec![
            c.name.clone(),
            c.dtype.clone(),
            c.missing.to_string(),
            c.distinct.to_string(),
            num(c.min),
            num(c.max),
            num(c.mean),
            num(c.std),
            top,
        ]);
    }
    println!("{t}");
    let mut preview = table(
        &summary
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
    );
    let mut cut_any = false;
    for row in &summary.preview {
        preview.add_row(
            row.iter()
                .map(|cell| {
                    cut_any |= cell.chars().count() > CELL_CHARS;
                    cut_text(cell, CELL_CHARS)
                })
                .collect::<Vec<_>>(),
        );
    }
    println!("first rows:\n{preview}");
    if cut_any {
        println!("(long cells are cut to {CELL_CHARS} characters; --json prints them whole)");
    }
    for c in &summary.columns {
        if c.missing > 0 {
            println!("note: column `{}` has {} missing values", c.name, c.missing);
        }
        if c.distinct <= 1 {
            println!(
                "note: column `{}` is constant; it can't help a model",
                c.name
            );
        }
        if let Some(kind) = c.personal {
            println!(
                "note: column `{}` looks like {}; train with --personal {}=drop (leave it out) or {}=hash (a salted hash instead of the value)",
                c.name,
                kind.describe(),
                c.name,
                c.name
            );
        }
        if c.kind == ColumnKind::Text && c.distinct > 50 {
            println!("note: column `{}` is text with {} distinct values; training leaves it out of the features", c.name, c.distinct);
        }
    }
}

fn print_images(path: &Path, index: &ImageIndex, json: bool) -> Result<()> {
    let counts = index.class_counts();
    let shape = index.default_shape(64);
    if json {
        return print_json(&serde_json::json!({
            "path": path,
            "images": index.len(),
            "classes": counts,
            "default_input": shape,
            "skipped": index.skipped,
        }));
    }
    println!(
        "{}: {} images in {} classes (default model input {}×{}×{})",
        path.display(),
        index.len(),
        counts.len(),
        shape.height,
        shape.width,
        shape.channels
    );
    let mut t = table(&["class", "images"]);
    for (class, n) in &counts {
        t.add_row(vec![class.clone(), n.to_string()]);
    }
    println!("{t}");
    if !index.skipped.is_empty() {
        println!("skipped {} files:", index.skipped.len());
        for s in index.skipped.iter().take(10) {
            println!("  {}: {}", s.path.display(), s.reason);
        }
    }
    Ok(())
}
