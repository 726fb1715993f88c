//! Schema, preview rows and per-column statistics of a table.

use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::columns::ColumnKind;
use crate::data::table::{read_table, TableFormat};
use crate::error::{Result, WickError};

/// Statistics of one column. Numeric fields are `None` for non-numeric columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnSummary {
    pub name: String,
    pub dtype: String,
    pub kind: ColumnKind,
    pub missing: usize,
    pub distinct: usize,
    /// True when `distinct` is a HyperLogLog estimate (numeric columns longer than [`EXACT_DISTINCT_MAX_ROWS`]).
    pub distinct_approximate: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    pub std: Option<f64>,
    /// The most frequent values with their counts (text and boolean columns).
    pub top_values: Vec<(String, usize)>,
    /// What training does with the column as a feature (dates, IDs, constants).
    #[serde(default)]
    pub advice: super::columns::FeatureAdvice,
    /// What personal data the values look like, if any (the Data screen and `wick inspect` flag it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub personal: Option<super::PersonalKind>,
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

pub(crate) const PREVIEW_ROWS: usize = 10;
/// Up to this many rows distinct numbers are counted exactly; above it, estimated (about 1% error),
/// because exact counting of a million floats costs more than reading them. Text is always exact.
pub const EXACT_DISTINCT_MAX_ROWS: usize = 100_000;
pub(crate) const TOP_VALUES: usize = 5;

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
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(WickError::InvalidSpec("column statistics panicked".into()))
                })
            })
            .collect()
    });
    let columns = summaries.into_iter().collect::<Result<Vec<_>>>()?;
    Ok(TableSummary {
        path: path.to_path_buf(),
        format,
        rows: df.height(),
        columns,
        preview: preview_rows(df, PREVIEW_ROWS),
    })
}

fn summarize_column(series: &Series) -> Result<ColumnSummary> {
    let name = series.name().to_string();
    let kind = ColumnKind::of(series.dtype());
    let ctx = |what: &str| format!("statistics of column `{name}` ({what})");
    let mut summary = ColumnSummary {
        name: name.clone(),
        dtype: series.dtype().to_string(),
        kind,
        missing: series.null_count(),
        distinct: 0,
        distinct_approximate: false,
        min: None,
        max: None,
        mean: None,
        std: None,
        top_values: Vec::new(),
        advice: super::columns::FeatureAdvice::of(series),
        personal: super::detect_personal(series),
    };
    match kind {
        ColumnKind::Text | ColumnKind::Boolean => {
            // One pass gives both the exact distinct count and the most frequent values.
            let text = series
                .cast(&DataType::String)
                .map_err(|e| WickError::polars(ctx("cast"), e))?;
            let text = text.str().map_err(|e| WickError::polars(ctx("text"), e))?;
            let counts = text_value_counts(text);
            summary.distinct = counts.len() + usize::from(summary.missing > 0);
            summary.top_values = top_of(counts, TOP_VALUES);
        }
        ColumnKind::Numeric => {
            summary.distinct_approximate = series.len() > EXACT_DISTINCT_MAX_ROWS;
            let values = series
                .cast(&DataType::Float64)
                .map_err(|e| WickError::polars(ctx("cast"), e))?;
            let values = values
                .f64()
                .map_err(|e| WickError::polars(ctx("values"), e))?;
            summary.distinct = if summary.distinct_approximate {
                approx_distinct_f64(values)
            } else {
                series
                    .n_unique()
                    .map_err(|e| WickError::polars(ctx("distinct"), e))?
            };
            let moments = Moments::of(values);
            if moments.n > 0 {
                summary.min = Some(moments.min);
                summary.max = Some(moments.max);
                summary.mean = Some(moments.mean);
                summary.std = (moments.n > 1).then(|| (moments.m2 / (moments.n - 1) as f64).sqrt());
            }
        }
        ColumnKind::Temporal | ColumnKind::Other => {
            summary.distinct = series
                .n_unique()
                .map_err(|e| WickError::polars(ctx("distinct"), e))?;
        }
    }
    Ok(summary)
}

/// Min, max, mean and the sum of squared deviations, in two vectorisable passes (no per-value division),
/// skipping nulls and NaN.
struct Moments {
    n: usize,
    min: f64,
    max: f64,
    mean: f64,
    m2: f64,
}

/// Values summed in this many independent lanes: one running sum is a chain of dependent additions
/// the CPU can't overlap; several let it (and the compiler) work on a whole vector at once.
const LANES: usize = 8;

impl Moments {
    fn of(values: &Float64Chunked) -> Self {
        // Without nulls the arrays' buffers are read in place; with nulls the present values are copied out.
        let parts: Vec<std::borrow::Cow<'_, [f64]>> = if values.null_count() == 0 {
            values
                .downcast_iter()
                .map(|a| std::borrow::Cow::Borrowed(a.values().as_slice()))
                .collect()
        } else {
            values
                .downcast_iter()
                .map(|a| std::borrow::Cow::Owned(a.iter().flatten().copied().collect()))
                .collect()
        };
        let (mut n, mut sum) = ([0u64; LANES], [0.0f64; LANES]);
        let (mut min, mut max) = ([f64::INFINITY; LANES], [f64::NEG_INFINITY; LANES]);
        for_each_lane(&parts, |lane, x| {
            let present = !x.is_nan();
            n[lane] += u64::from(present);
            sum[lane] += if present { x } else { 0.0 };
            // f64::min/max return the other operand when one is NaN.
            min[lane] = min[lane].min(x);
            max[lane] = max[lane].max(x);
        });
        let n = n.iter().sum::<u64>() as usize;
        let mean = if n > 0 {
            sum.iter().sum::<f64>() / n as f64
        } else {
            0.0
        };
        let mut m2 = [0.0f64; LANES];
        for_each_lane(&parts, |lane, x| {
            let d = if x.is_nan() { 0.0 } else { x - mean };
            m2[lane] += d * d;
        });
        Self {
            n,
            min: min.iter().copied().fold(f64::INFINITY, f64::min),
            max: max.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            mean,
            m2: m2.iter().sum(),
        }
    }
}

/// Calls `f(lane, x)` for every value, value `i` of each run of [`LANES`] going to lane `i`.
#[inline(always)]
fn for_each_lane(parts: &[std::borrow::Cow<'_, [f64]>], mut f: impl FnMut(usize, f64)) {
    for xs in parts {
        let chunks = xs.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for (lane, &x) in chunk.iter().enumerate() {
                f(lane, x);
            }
        }
        for (lane, &x) in rest.iter().enumerate() {
            f(lane, x);
        }
    }
}

/// HyperLogLog distinct count of a numeric column (2^14 registers, about 0.8% standard error).
/// Written here because polars' own `approx_n_unique` was the largest single cost of `wick bench`'s
/// CSV statistics when timed side by side on its 1M-row file; hashing the f64 bits with foldhash is
/// cheaper and needs no extra polars feature.
fn approx_distinct_f64(values: &Float64Chunked) -> usize {
    let mut hll = Hll::new();
    let saw_null = values.null_count() > 0;
    for array in values.downcast_iter() {
        if saw_null {
            array.iter().flatten().for_each(|&x| hll.add_f64(x));
        } else {
            array.values().iter().for_each(|&x| hll.add_f64(x));
        }
    }
    hll.estimate() + usize::from(saw_null)
}

/// A HyperLogLog distinct-count sketch (2^14 registers, about 1% error); sketches of parts of a
/// column merge into the sketch of the whole.
#[derive(Clone)]
pub(crate) struct Hll {
    registers: Vec<u8>,
}

impl Hll {
    const P: u32 = 14;

    pub(crate) fn new() -> Self {
        Self {
            registers: vec![0u8; 1 << Self::P],
        }
    }

    fn add_hash(&mut self, h: u64) {
        let index = (h >> (64 - Self::P)) as usize;
        let rank = ((h << Self::P) | (1 << (Self::P - 1))).leading_zeros() as u8 + 1;
        if self.registers[index] < rank {
            self.registers[index] = rank;
        }
    }

    pub(crate) fn add_f64(&mut self, x: f64) {
        use std::hash::BuildHasher;
        // One bit pattern per value: -0.0 is 0.0, every NaN is the same NaN.
        let bits = if x == 0.0 {
            0u64
        } else if x.is_nan() {
            f64::NAN.to_bits()
        } else {
            x.to_bits()
        };
        self.add_hash(foldhash::quality::FixedState::with_seed(0x5eed).hash_one(bits));
    }

    pub(crate) fn add_str(&mut self, v: &str) {
        use std::hash::BuildHasher;
        self.add_hash(foldhash::quality::FixedState::with_seed(0x5eed).hash_one(v));
    }

    pub(crate) fn estimate(&self) -> usize {
        let m = self.registers.len() as f64;
        let alpha = 0.7213 / (1.0 + 1.079 / m);
        let sum: f64 = self
            .registers
            .iter()
            .map(|&r| 2f64.powi(-i32::from(r)))
            .sum();
        let raw = alpha * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let estimate = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        estimate.round() as usize
    }
}

pub(crate) type FastMap<'a> =
    std::collections::HashMap<&'a str, usize, foldhash::fast::RandomState>;

fn value_counts<'a>(values: impl Iterator<Item = &'a str>) -> FastMap<'a> {
    let mut counts = FastMap::default();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
}

/// Exact counts of a text column's values. polars keeps strings of up to 12 bytes inside their 16-byte
/// view, so those are counted by the view as one integer: no string hashing or comparing, which were
/// the largest cost of the statistics of `wick bench`'s CSV (its date and category columns, seen in
/// `perf`); longer strings are counted by their text. The view counts are merged into the text counts
/// at the end, so the result does not depend on how a view pads its unused bytes.
fn text_value_counts(text: &StringChunked) -> FastMap<'_> {
    const MAX_INLINE_LEN: u32 = 12;
    let mut counts = FastMap::default();
    let mut by_view: std::collections::HashMap<u128, (usize, &str), foldhash::fast::RandomState> =
        Default::default();
    for array in text.downcast_iter() {
        for (view, value) in array.views().iter().zip(array.iter()) {
            let Some(value) = value else { continue };
            if view.length <= MAX_INLINE_LEN {
                by_view.entry(view.as_u128()).or_insert((0, value)).0 += 1;
            } else {
                *counts.entry(value).or_default() += 1;
            }
        }
    }
    for (n, value) in by_view.into_values() {
        *counts.entry(value).or_default() += n;
    }
    counts
}

/// The `k` most frequent values, most frequent first, ties broken by value for stable output.
pub(crate) fn top_of(counts: FastMap<'_>, k: usize) -> Vec<(String, usize)> {
    let mut counts: Vec<(&str, usize)> = counts.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .into_iter()
        .take(k)
        .map(|(v, n)| (v.to_string(), n))
        .collect()
}

/// The `k` most frequent values of a sequence.
pub(crate) fn top_values<'a>(
    values: impl Iterator<Item = &'a str>,
    k: usize,
) -> Vec<(String, usize)> {
    top_of(value_counts(values), k)
}

pub(crate) fn preview_rows(df: &DataFrame, n: usize) -> Vec<Vec<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperloglog_is_close_and_exact_enough_when_small() {
        let many = Float64Chunked::from_vec(
            "x".into(),
            (0..1_000_000).map(|i| i as f64 * 0.37).collect(),
        );
        let estimate = approx_distinct_f64(&many) as f64;
        assert!((estimate / 1e6 - 1.0).abs() < 0.03, "{estimate}");
        let few =
            Float64Chunked::from_vec("x".into(), (0..300_000).map(|i| (i % 12) as f64).collect());
        assert_eq!(approx_distinct_f64(&few), 12);
        let signed_zero = Float64Chunked::from_vec("x".into(), vec![0.0, -0.0, 1.0]);
        assert_eq!(approx_distinct_f64(&signed_zero), 2);
    }

    #[test]
    fn text_counts_are_exact_for_short_long_and_missing_values() {
        let long = "a value longer than twelve bytes";
        let values: Vec<Option<&str>> = (0..1000)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some("cat"),
                2 => Some(long),
                3 => Some(""),
                _ => Some("twelve bytes"),
            })
            .collect();
        let ca = StringChunked::from_iter_options("t".into(), values.into_iter());
        let mut two_chunks = ca.slice(0, 400);
        two_chunks.append(&ca.slice(400, 600)).unwrap();
        for ca in [ca, two_chunks] {
            let counts = text_value_counts(&ca);
            assert_eq!(counts.len(), 4);
            for v in ["cat", long, "", "twelve bytes"] {
                assert_eq!(counts[v], 200, "{v:?}");
            }
        }
    }

    #[test]
    fn moments_of_a_long_column_match_a_plain_loop() {
        let xs: Vec<Option<f64>> = (0..1003)
            .map(|i| {
                if i % 97 == 0 {
                    None
                } else if i % 89 == 0 {
                    Some(f64::NAN)
                } else {
                    Some((i as f64 * 0.731).sin() * 100.0)
                }
            })
            .collect();
        let v = Float64Chunked::from_slice_options("x".into(), &xs);
        let present: Vec<f64> = xs
            .iter()
            .flatten()
            .copied()
            .filter(|x| !x.is_nan())
            .collect();
        let mean = present.iter().sum::<f64>() / present.len() as f64;
        let m2: f64 = present.iter().map(|x| (x - mean) * (x - mean)).sum();
        let m = Moments::of(&v);
        assert_eq!(m.n, present.len());
        assert_eq!(m.min, present.iter().copied().fold(f64::INFINITY, f64::min));
        assert_eq!(
            m.max,
            present.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        );
        assert!((m.mean - mean).abs() < 1e-12 * mean.abs().max(1.0));
        assert!((m.m2 - m2).abs() < 1e-9 * m2);
    }

    #[test]
    fn moments_match_the_textbook_formulas() {
        let v = Float64Chunked::from_slice_options(
            "x".into(),
            &[Some(1.0), None, Some(2.0), Some(4.0), Some(f64::NAN)],
        );
        let m = Moments::of(&v);
        assert_eq!((m.n, m.min, m.max), (3, 1.0, 4.0));
        assert!((m.mean - 7.0 / 3.0).abs() < 1e-12);
        assert!(
            (m.m2 / 2.0 - 7.0 / 3.0).abs() < 1e-12,
            "sample variance of 1, 2, 4 is 7/3"
        );
    }
}
