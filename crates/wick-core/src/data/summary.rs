//! Schema, preview rows and per-column statistics of a table.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::table::{read_table, TableFormat};
use crate::error::{Result, WickError};

/// What kind of values a column holds, as Wick treats them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Numeric,
    Boolean,
    Text,
    Temporal,
    Other,
}

impl ColumnKind {
    pub fn of(dtype: &DataType) -> Self {
        if dtype.is_primitive_numeric() {
            Self::Numeric
        } else if dtype.is_bool() {
            Self::Boolean
        } else if dtype.is_string() || dtype.is_categorical() {
            Self::Text
        } else if dtype.is_temporal() {
            Self::Temporal
        } else {
            Self::Other
        }
    }
}

/// Statistics of one column. Numeric fields are `None` for non-numeric columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnSummary {
    pub name: String,
    pub dtype: String,
    pub kind: ColumnKind,
    pub missing: usize,
    pub distinct: usize,
    /// True when `distinct` is a HyperLogLog estimate (columns longer than [`EXACT_DISTINCT_MAX_ROWS`]).
    pub distinct_approximate: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// The most frequent values with their counts (text and boolean columns).
    pub top_values: Vec<(String, usize)>,
}

/// An opened table: its schema, size, a preview and statistics.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableSummary {
    pub path: PathBuf,
    pub format: TableFormat,
    pub rows: usize,
    pub columns: Vec<ColumnSummary>,
    /// The first rows, formatted as text, one inner vector per row.
    pub preview: Vec<Vec<String>>,
}

const PREVIEW_ROWS: usize = 10;
/// Up to this many rows distinct values are counted exactly; above it, estimated (about 1% error),
/// because exact counting of a million floats costs more than reading them.
pub const EXACT_DISTINCT_MAX_ROWS: usize = 100_000;
const TOP_VALUES: usize = 5;

/// Opens a table and summarises it.
pub fn inspect_table(path: &Path) -> Result<(DataFrame, TableSummary)> {
    let format = TableFormat::from_path(path)?;
    let df = read_table(path)?;
    let summary = summarize(path, format, &df)?;
    Ok((df, summary))
}

/// Summarises a frame already in memory. Columns are summarised in parallel.
pub fn summarize(path: &Path, format: TableFormat, df: &DataFrame) -> Result<TableSummary> {
    let columns = df.columns();
    let summaries: Vec<Result<ColumnSummary>> = std::thread::scope(|scope| {
        let handles: Vec<_> = columns
            .iter()
            .map(|c| scope.spawn(move || summarize_column(c.as_materialized_series())))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(WickError::InvalidSpec("column statistics panicked".into()))))
            .collect()
    });
    let columns = summaries.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(TableSummary { path: path.to_path_buf(), format, rows: df.height(), columns, preview: preview_rows(df, PREVIEW_ROWS) })
}

fn summarize_column(series: &Series) -> Result<ColumnSummary> {
    let name = series.name().to_string();
    let kind = ColumnKind::of(series.dtype());
    let ctx = |what: &str| format!("statistics of column `{name}` ({what})");
    let distinct_approximate = series.len() > EXACT_DISTINCT_MAX_ROWS;
    let distinct = if distinct_approximate {
        series.approx_n_unique().map(|n| n as usize)
    } else {
        series.n_unique()
    }
    .map_err(|e| WickError::polars(ctx("distinct"), e))?;
    let mut summary = ColumnSummary {
        name: name.clone(),
        dtype: series.dtype().to_string(),
        kind,
        missing: series.null_count(),
        distinct,
        distinct_approximate,
        min: None,
        max: None,
        mean: None,
        std: None,
        top_values: Vec::new(),
    };
    match kind {
        ColumnKind::Numeric => {
            summary.min = series.min::<f64>().map_err(|e| WickError::polars(ctx("min"), e))?;
            summary.max = series.max::<f64>().map_err(|e| WickError::polars(ctx("max"), e))?;
            summary.mean = series.mean();
            summary.std = series.std(1);
        }
        ColumnKind::Text | ColumnKind::Boolean => {
            let text = series.cast(&DataType::String).map_err(|e| WickError::polars(ctx("cast"), e))?;
            let text = text.str().map_err(|e| WickError::polars(ctx("text"), e))?;
            summary.top_values = top_values(text.iter().flatten(), TOP_VALUES);
        }
        ColumnKind::Temporal | ColumnKind::Other => {}
    }
    Ok(summary)
}

/// The `k` most frequent values, most frequent first, ties broken by value for stable output.
pub(crate) fn top_values<'a>(values: impl Iterator<Item = &'a str>, k: usize) -> Vec<(String, usize)> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts.into_iter().take(k).map(|(v, n)| (v.to_string(), n)).collect()
}

fn preview_rows(df: &DataFrame, n: usize) -> Vec<Vec<String>> {
    let head = df.head(Some(n));
    (0..head.height())
        .map(|row| {
            head.columns()
                .iter()
                .map(|c| match c.get(row) {
                    Ok(AnyValue::Null) => String::new(),
                    Ok(AnyValue::String(s)) => s.to_string(),
                    Ok(v) => v.to_string(),
                    Err(_) => String::new(),
                })
                .collect()
        })
        .collect()
}
