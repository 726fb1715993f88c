//! Tables and JSON for the terminal.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use wick_core::metrics::Metrics;

pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(header.iter().map(|h| h.to_string()));
    t
}

pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints test metrics, and for classification the per-class table and confusion matrix.
pub fn print_metrics(metrics: &Metrics) {
    let mut t = table(&["metric", "value"]);
    for (name, value) in metrics.scalars() {
        t.add_row(vec![name.to_string(), format!("{value:.4}")]);
    }
    println!("{t}");
    if let Metrics::Classification(m) = metrics {
        let mut t = table(&["class", "precision", "recall", "f1", "support"]);
        for c in &m.per_class {
            t.add_row(vec![
                c.label.clone(),
                format!("{:.3}", c.precision),
                format!("{:.3}", c.recall),
                format!("{:.3}", c.f1),
                c.support.to_string(),
            ]);
        }
        println!("{t}");
        let mut header = vec!["actual \\ predicted".to_string()];
        header.extend(m.per_class.iter().map(|c| c.label.clone()));
        let mut t = Table::new();
        t.load_preset(UTF8_FULL_CONDENSED);
        t.set_header(header);
        for (row, c) in m.confusion.iter().zip(&m.per_class) {
            let mut cells = vec![c.label.clone()];
            cells.extend(row.iter().map(|n| n.to_string()));
            t.add_row(cells);
        }
        println!("{t}");
    }
}

/// Longest a table cell is printed; longer text is cut with "…" (`--json` keeps it whole).
pub const CELL_CHARS: usize = 40;
