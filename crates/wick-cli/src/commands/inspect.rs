use std::path::Path;

use anyhow::{Context, Result};
use wick_core::data::{inspect_table, ColumnKind};

use crate::dataset::{self, Dataset};
use crate::output::{print_json, table};

pub fn run(path: &Path, json: bool) -> Result<()> {
    if path.is_file() {
        if let Ok((_, summary)) = inspect_table(path) {
            let is_image_list = summary.columns.iter().map(|c| c.name.as_str()).eq(["path", "label"]);
            if !is_image_list {
                if json {
                    return print_json(&summary);
                }
                println!("{}: {} rows × {} columns ({:?})", path.display(), summary.rows, summary.columns.len(), summary.format);
                let mut t = table(&["column", "type", "missing", "distinct", "min", "max", "mean", "std", "top values"]);
                let num = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_default();
                for c in &summary.columns {
                    let top = c.top_values.iter().map(|(v, n)| format!("{v} ({n})")).collect::<Vec<_>>().join(", ");
                    t.add_row(vec![c.name.clone(), c.dtype.clone(), c.missing.to_string(), c.distinct.to_string(), num(c.min), num(c.max), num(c.mean), num(c.std), top]);
                }
                println!("{t}");
                let mut preview = table(&summary.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>());
                for row in &summary.preview {
                    preview.add_row(row.clone());
                }
                println!("first rows:\n{preview}");
                for c in &summary.columns {
                    if c.missing > 0 {
                        println!("note: column `{}` has {} missing values", c.name, c.missing);
                    }
                    if c.distinct <= 1 {
                        println!("note: column `{}` is constant; it can't help a model", c.name);
                    }
                    if c.kind == ColumnKind::Text && c.distinct > 50 {
                        println!("note: column `{}` is text with {} distinct values; it will be left out of features", c.name, c.distinct);
                    }
                }
                return Ok(());
            }
        }
    }
    match dataset::open(path)? {
        Dataset::Images(index) => {
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
            println!("{}: {} images in {} classes (default model input {}×{}×{})", path.display(), index.len(), counts.len(), shape.height, shape.width, shape.channels);
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
        Dataset::Table(_) => inspect_table(path).map(|_| ()).with_context(|| format!("inspecting {}", path.display())),
    }
}
