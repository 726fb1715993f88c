//! Summarising a CSV too large to load: the schema and preview from its head, then one pass over
//! the file in chunks of whole rows, each parsed by polars with the head's schema and folded into
//! per-column statistics that merge (counts, moments, distinct-count sketches, bounded value
//! counts). Memory stays near a few chunks whatever the file's size.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use super::columns::{ColumnKind, FeatureAdvice};
use super::personal::PersonalKind;
use super::summary::{
    preview_rows, top_of, ColumnSummary, FastMap, Hll, TableSummary, PREVIEW_ROWS, TOP_VALUES,
};
use super::table::{read_head, sniff_separator, TableFormat};
use crate::error::{Result, WickError};

/// Files above this size are summarised by streaming (`wick inspect`, the Data screen).
pub const STREAM_THRESHOLD_BYTES: u64 = 1 << 30;
/// Bytes of rows parsed at once.
pub const DEFAULT_CHUNK_BYTES: usize = 64 << 20;
/// Rows read from the head for the schema and the preview.
const HEAD_ROWS: usize = 10_000;
/// Bytes read for the head at most.
const HEAD_MAX_BYTES: usize = 16 << 20;
/// Text values counted exactly per column; beyond, the distinct count is estimated.
const MAX_COUNTED_VALUES: usize = 100_000;

/// Per-column statistics of the rows seen so far.
enum Acc {
    Numeric {
        n: u64,
        missing: u64,
        min: f64,
        max: f64,
        mean: f64,
        m2: f64,
        hll: Hll,
    },
    Text {
        missing: u64,
        counts: HashMap<String, usize, foldhash::fast::RandomState>,
        capped: bool,
        hll: Hll,
    },
    Other {
        missing: u64,
        hll: Hll,
    },
}

impl Acc {
    fn new(dtype: &DataType) -> Self {
        match ColumnKind::of(dtype) {
            ColumnKind::Numeric => Self::Numeric {
                n: 0,
                missing: 0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
                mean: 0.0,
                m2: 0.0,
                hll: Hll::new(),
            },
            ColumnKind::Text | ColumnKind::Boolean => Self::Text {
                missing: 0,
                counts: HashMap::default(),
                capped: false,
                hll: Hll::new(),
            },
            ColumnKind::Temporal | ColumnKind::Other => Self::Other {
                missing: 0,
                hll: Hll::new(),
            },
        }
    }

    fn add(&mut self, column: &Column, ctx: &str) -> Result<()> {
        let series = column.as_materialized_series();
        match self {
            Self::Numeric {
                n,
                missing,
                min,
                max,
                mean,
                m2,
                hll,
            } => {
                let values = series
                    .cast(&DataType::Float64)
                    .map_err(|e| WickError::polars(ctx, e))?;
                let values = values.f64().map_err(|e| WickError::polars(ctx, e))?;
                *missing += values.null_count() as u64;
                // This chunk's moments, then Chan's merge with the running ones.
                let (mut cn, mut csum) = (0u64, 0.0f64);
                for v in values.iter().flatten().filter(|v| !v.is_nan()) {
                    cn += 1;
                    csum += v;
                    *min = min.min(v);
                    *max = max.max(v);
                    hll.add_f64(v);
                }
                if cn == 0 {
                    return Ok(());
                }
                let cmean = csum / cn as f64;
                let cm2: f64 = values
                    .iter()
                    .flatten()
                    .filter(|v| !v.is_nan())
                    .map(|v| (v - cmean) * (v - cmean))
                    .sum();
                let total = *n + cn;
                let delta = cmean - *mean;
                *mean += delta * cn as f64 / total as f64;
                *m2 += cm2 + delta * delta * (*n as f64) * (cn as f64) / total as f64;
                *n = total;
            }
            Self::Text {
                missing,
                counts,
                capped,
                hll,
            } => {
                let text = series
                    .cast(&DataType::String)
                    .map_err(|e| WickError::polars(ctx, e))?;
                let text = text.str().map_err(|e| WickError::polars(ctx, e))?;
                *missing += text.null_count() as u64;
                for v in text.iter().flatten() {
                    hll.add_str(v);
                    if let Some(c) = counts.get_mut(v) {
                        *c += 1;
                    } else if counts.len() < MAX_COUNTED_VALUES {
                        counts.insert(v.to_string(), 1);
                    } else {
                        *capped = true;
                    }
                }
            }
            Self::Other { missing, hll } => {
                *missing += series.null_count() as u64;
                let text = series
                    .cast(&DataType::String)
                    .map_err(|e| WickError::polars(ctx, e))?;
                text.str()
                    .map_err(|e| WickError::polars(ctx, e))?
                    .iter()
                    .flatten()
                    .for_each(|v| hll.add_str(v));
            }
        }
        Ok(())
    }

    fn finish(
        self,
        name: &str,
        dtype: &DataType,
        advice: FeatureAdvice,
        personal: Option<PersonalKind>,
    ) -> ColumnSummary {
        let mut s = ColumnSummary {
            name: name.to_string(),
            dtype: dtype.to_string(),
            kind: ColumnKind::of(dtype),
            missing: 0,
            distinct: 0,
            distinct_approximate: true,
            min: None,
            max: None,
            mean: None,
            std: None,
            top_values: Vec::new(),
            advice,
            personal,
        };
        match self {
            Self::Numeric {
                n,
                missing,
                min,
                max,
                mean,
                m2,
                hll,
            } => {
                s.missing = missing as usize;
                s.distinct = hll.estimate() + usize::from(missing > 0);
                if n > 0 {
                    (s.min, s.max, s.mean) = (Some(min), Some(max), Some(mean));
                    s.std = (n > 1).then(|| (m2 / (n - 1) as f64).sqrt());
                }
            }
            Self::Text {
                missing,
                counts,
                capped,
                hll,
            } => {
                s.missing = missing as usize;
                s.distinct_approximate = capped;
                s.distinct =
                    if capped { hll.estimate() } else { counts.len() } + usize::from(missing > 0);
                let borrowed: FastMap<'_> = counts.iter().map(|(k, v)| (k.as_str(), *v)).collect();
                s.top_values = top_of(borrowed, TOP_VALUES);
            }
            Self::Other { missing, hll } => {
                s.missing = missing as usize;
                s.distinct = hll.estimate() + usize::from(missing > 0);
            }
        }
        s
    }
}

/// Summarises a CSV in one streaming pass, `chunk_bytes` of rows at a time; `progress(done, total)`
/// gets the bytes read after each chunk. Counts and moments are exact; distinct counts of numbers,
/// and of text past 100,000 values, are estimates (`distinct_approximate`).
pub fn summarize_csv_streaming(
    path: &Path,
    chunk_bytes: usize,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<TableSummary> {
    Ok(stream_csv(path, chunk_bytes, 0, 0, progress)?.0)
}

/// As [`summarize_csv_streaming`], and also draws a seeded random sample of about `sample_rows`
/// rows (every row equally likely, in file order; at most `sample_rows`), for what needs a frame.
pub fn stream_csv(
    path: &Path,
    chunk_bytes: usize,
    sample_rows: usize,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(TableSummary, DataFrame)> {
    stream_csv_with(path, chunk_bytes, sample_rows, seed, true, progress)
}

/// Only the seeded sample of [`stream_csv`] (the same rows), without the statistics, which are
/// most of a pass's work.
pub fn sample_csv(
    path: &Path,
    chunk_bytes: usize,
    sample_rows: usize,
    seed: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<DataFrame> {
    Ok(stream_csv_with(path, chunk_bytes, sample_rows, seed, false, progress)?.1)
}

fn stream_csv_with(
    path: &Path,
    chunk_bytes: usize,
    sample_rows: usize,
    seed: u64,
    summarise: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(TableSummary, DataFrame)> {
    let (mut chunks, head) = CsvChunks::open(path, chunk_bytes)?;
    let total = chunks.total_bytes();
    let mut accs: Vec<Acc> = head.columns().iter().map(|c| Acc::new(c.dtype())).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut sampled: Vec<DataFrame> = Vec::new();
    // The share of rows kept, from the file size and the first chunk's bytes per row.
    let mut keep_share: Option<f64> = None;
    // Without statistics, only the sampled rows are parsed; the first chunk is parsed whole, for
    // the rows-per-byte estimate that sets the share.
    let next =
        |chunks: &mut CsvChunks, share: Option<f64>, rng: &mut ChaCha8Rng| match (summarise, share)
        {
            (false, Some(share)) => chunks.next_sample(share, rng),
            _ => chunks.next_chunk(),
        };
    loop {
        let drawn = !summarise && keep_share.is_some();
        let Some(chunk) = next(&mut chunks, keep_share, &mut rng)? else {
            break;
        };
        if drawn {
            sampled.push(chunk);
            progress(chunks.bytes_read().min(total), total);
            continue;
        }
        if sample_rows > 0 {
            let share = *keep_share.get_or_insert_with(|| {
                let est_rows = chunks.estimated_rows();
                // A little over, trimmed at the end, so the sample reaches its size.
                (1.1 * sample_rows as f64 / est_rows.max(1.0)).min(1.0)
            });
            let mask: BooleanChunked = (0..chunk.height())
                .map(|_| rng.random_bool(share))
                .collect();
            sampled.push(
                chunk
                    .filter(&mask)
                    .map_err(|e| WickError::polars("sample rows", e))?,
            );
        }
        // Columns fold in parallel: one column's statistics are one thread's work.
        if summarise {
            accs.par_iter_mut()
                .zip(chunk.columns().par_iter())
                .try_for_each(|(acc, column)| {
                    acc.add(column, &format!("column `{}`", column.name()))
                })?;
        }
        progress(chunks.bytes_read().min(total), total);
    }
    let columns = accs
        .into_iter()
        .zip(head.columns())
        .map(|(acc, c)| {
            // Personal data shows in the first rows as well as in all of them.
            let series = c.as_materialized_series();
            acc.finish(
                c.name(),
                c.dtype(),
                FeatureAdvice::of(series),
                super::detect_personal(series),
            )
        })
        .collect();
    let summary = TableSummary {
        path: path.to_path_buf(),
        format: TableFormat::Csv,
        rows: chunks.rows_read(),
        columns,
        preview: preview_rows(&head, PREVIEW_ROWS),
    };
    let mut sample = stack(sampled, &head)?;
    if sample.height() > sample_rows {
        // Drop the surplus uniformly, keeping file order.
        let mut keep: Vec<IdxSize> = (0..sample.height() as IdxSize).collect();
        keep.shuffle(&mut rng);
        keep.truncate(sample_rows);
        keep.sort_unstable();
        sample = sample
            .take(&IdxCa::from_vec("rows".into(), keep))
            .map_err(|e| WickError::polars("sample rows", e))?;
    }
    Ok((summary, sample))
}

/// The parts stacked into one frame, or `empty`'s columns with no rows when there are none.
pub(crate) fn stack(parts: Vec<DataFrame>, empty: &DataFrame) -> Result<DataFrame> {
    let mut parts = parts.into_iter();
    let Some(mut df) = parts.next() else {
        return Ok(empty.clear());
    };
    for part in parts {
        df.vstack_mut(&part)
            .map_err(|e| WickError::polars("sample rows", e))?;
    }
    df.rechunk_mut();
    Ok(df)
}

/// A CSV read in chunks of whole rows, each parsed by polars with the schema inferred from the
/// file's head, so memory stays near one chunk whatever the file's size.
pub struct CsvChunks {
    path: PathBuf,
    file: std::fs::File,
    separator: u8,
    schema: SchemaRef,
    columns: Option<Arc<[PlSmallStr]>>,
    chunk_bytes: usize,
    buf: Vec<u8>,
    header_skipped: bool,
    bytes_read: u64,
    total_bytes: u64,
    rows_read: usize,
    /// Bytes of rows parsed so far (without the header), for the rows-per-byte estimate.
    row_bytes: u64,
    eof: bool,
    hasher: Option<Sha256>,
}

impl CsvChunks {
    /// Opens `path` and reads its head (the first rows, which fix the column types); the head is
    /// returned with the reader.
    pub fn open(path: &Path, chunk_bytes: usize) -> Result<(Self, DataFrame)> {
        let total_bytes = std::fs::metadata(path)
            .map_err(|e| WickError::io(path, e))?
            .len();
        let separator = sniff_separator(path, &read_head(path)?);
        // The head is cut at its last row before parsing, so a row further on (which polars
        // would otherwise parse along) can't fail the open.
        let mut prefix = vec![0u8; HEAD_MAX_BYTES];
        let mut file = std::fs::File::open(path).map_err(|e| WickError::io(path, e))?;
        let n = read_full(&mut file, &mut prefix).map_err(|e| WickError::io(path, e))?;
        prefix.truncate(n);
        let cut = match row_ends(&prefix).nth(HEAD_ROWS) {
            Some(end) => end,
            None if (n as u64) < total_bytes => last_row_end(&prefix).unwrap_or(n),
            None => n,
        };
        let head = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(HEAD_ROWS))
            .map_parse_options(|p| p.with_separator(separator))
            .into_reader_with_file_handle(Cursor::new(&prefix[..cut]))
            .finish()
            .map_err(|e| WickError::data(path, format!("can't be read as CSV ({e})")))?;
        if head.width() == 0 || head.height() == 0 {
            return Err(WickError::data(
                path,
                "has no rows of data: add rows below the header",
            ));
        }
        let chunks = Self {
            path: path.to_path_buf(),
            file: std::fs::File::open(path).map_err(|e| WickError::io(path, e))?,
            separator,
            schema: Arc::new(head.schema().as_ref().clone()),
            columns: None,
            chunk_bytes: chunk_bytes.max(1 << 12),
            buf: Vec::with_capacity(chunk_bytes + (1 << 16)),
            header_skipped: false,
            bytes_read: 0,
            total_bytes,
            rows_read: 0,
            row_bytes: 0,
            eof: false,
            hasher: None,
        };
        Ok((chunks, head))
    }

    /// Parses only these columns of each chunk (the bytes are still read).
    pub fn select(mut self, columns: &[String]) -> Self {
        self.columns = Some(
            columns
                .iter()
                .map(|c| PlSmallStr::from(c.as_str()))
                .collect(),
        );
        self
    }

    /// Also hashes every byte read, for the dataset's fingerprint without a second read.
    pub fn hashing(mut self) -> Self {
        self.hasher = Some(Sha256::new());
        self
    }

    /// The next chunk's rows, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<DataFrame>> {
        let Some(end) = self.next_rows()? else {
            return Ok(None);
        };
        let chunk = self.parse(&self.buf[..end]);
        self.buf.drain(..end);
        let chunk = chunk?;
        self.rows_read += chunk.height();
        self.row_bytes += end as u64;
        Ok(Some(chunk))
    }

    /// Reads on until `buf` starts with whole rows of data; returns where they end.
    fn next_rows(&mut self) -> Result<Option<usize>> {
        while !self.eof {
            let before = self.buf.len();
            self.buf.resize(before + self.chunk_bytes, 0);
            let n = read_full(&mut self.file, &mut self.buf[before..])
                .map_err(|e| WickError::io(&self.path, e))?;
            self.buf.truncate(before + n);
            if let Some(h) = &mut self.hasher {
                h.update(&self.buf[before..]);
            }
            self.bytes_read += n as u64;
            self.eof = n == 0;
            let Some(cut) = (if self.eof {
                Some(self.buf.len())
            } else {
                last_row_end(&self.buf)
            }) else {
                continue;
            };
            if !self.header_skipped {
                let end = self
                    .buf
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.buf.len(), |p| p + 1);
                self.buf.drain(..end);
                self.header_skipped = true;
                continue;
            }
            if cut == 0 {
                continue;
            }
            if self.buf[..cut].iter().all(|b| b.is_ascii_whitespace()) {
                self.buf.drain(..cut);
                continue;
            }
            return Ok(Some(cut));
        }
        Ok(None)
    }

    /// Parses whole rows (no header) at the head's schema. A value that does not fit is an
    /// error naming its row, found by bisecting the chunk (only when parsing fails).
    fn parse(&self, rows: &[u8]) -> Result<DataFrame> {
        self.try_parse(rows).map_err(|e| {
            let ends: Vec<usize> = whole_row_ends(rows).collect();
            // The first k whose rows up to ends[k] fail to parse: that row holds the value.
            let (mut lo, mut hi) = (0, ends.len().saturating_sub(1));
            while lo < hi {
                let mid = (lo + hi) / 2;
                if self.try_parse(&rows[..ends[mid]]).is_err() {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
            // Row numbers count data rows from 1, as a spreadsheet shows them below the header.
            let row = self.rows_read + lo + 1;
            WickError::data(&self.path, format!("row {row} has a value that does not fit the column types read from the first {HEAD_ROWS} rows ({e}); fix that value, or move such rows to the top so the types are read from them"))
        })
    }

    fn try_parse(&self, rows: &[u8]) -> polars::prelude::PolarsResult<DataFrame> {
        let separator = self.separator;
        CsvReadOptions::default()
            .with_has_header(false)
            .with_schema(Some(self.schema.clone()))
            .with_columns(self.columns.clone())
            .map_parse_options(|p| p.with_separator(separator))
            .into_reader_with_file_handle(Cursor::new(rows))
            .finish()
    }

    /// The next chunk's rows, each kept with probability `share` (drawn from `rng` row by row),
    /// parsed; only the kept rows are parsed, so a sample costs little more than reading.
    pub fn next_sample(&mut self, share: f64, rng: &mut impl Rng) -> Result<Option<DataFrame>> {
        let Some(end) = self.next_rows()? else {
            return Ok(None);
        };
        let mut kept = Vec::new();
        let mut start = 0;
        let mut rows = 0;
        for row_end in whole_row_ends(&self.buf[..end]) {
            rows += 1;
            if rng.random_bool(share) {
                kept.extend_from_slice(&self.buf[start..row_end]);
                if kept.last() != Some(&b'\n') {
                    kept.push(b'\n');
                }
            }
            start = row_end;
        }
        let parsed = match kept.is_empty() {
            true => self.schema_frame(),
            // A bad value is named by its row in the file, from the whole chunk.
            false => self.try_parse(&kept).map_err(|e| {
                self.parse(&self.buf[..end]).err().unwrap_or_else(|| {
                    WickError::data(&self.path, format!("can't be read as CSV ({e})"))
                })
            }),
        };
        self.buf.drain(..end);
        self.rows_read += rows;
        self.row_bytes += end as u64;
        parsed.map(Some)
    }

    /// No rows, the columns this reader parses.
    fn schema_frame(&self) -> Result<DataFrame> {
        let df = DataFrame::empty_with_schema(&self.schema);
        match &self.columns {
            Some(columns) => df
                .select(columns.iter().cloned())
                .map_err(|e| WickError::polars("columns", e)),
            None => Ok(df),
        }
    }

    /// Rows returned so far.
    pub fn rows_read(&self) -> usize {
        self.rows_read
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The file's rows, estimated from the bytes per row seen so far.
    pub fn estimated_rows(&self) -> f64 {
        self.total_bytes as f64 / (self.row_bytes as f64 / self.rows_read.max(1) as f64).max(1.0)
    }

    /// The SHA-256 of the bytes read (all of the file once `next_chunk` has returned `None`).
    pub fn sha256_hex(self) -> Option<String> {
        self.hasher.map(|h| hex::encode(h.finalize()))
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The ends (one past each `\\n`) of the whole rows in `buf`, which starts at a row's start: a
/// newline inside a quoted field does not end a row. memchr skips the bytes between quotes and
/// newlines with SIMD, which a byte loop over 64 MB chunks does not.
fn row_ends(buf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut in_quotes = false;
    memchr::memchr2_iter(b'"', b'\n', buf).filter_map(move |i| {
        if buf[i] == b'"' {
            in_quotes = !in_quotes;
            None
        } else {
            (!in_quotes).then_some(i + 1)
        }
    })
}

/// The ends of every row of `buf`, which holds whole rows: [`row_ends`], and the end of `buf` when
/// its last row has no newline (the file's last).
fn whole_row_ends(buf: &[u8]) -> impl Iterator<Item = usize> + '_ {
    row_ends(buf).chain((buf.last().is_some_and(|&b| b != b'\n')).then_some(buf.len()))
}

/// The end of the last whole row in `buf` (see [`row_ends`]).
fn last_row_end(buf: &[u8]) -> Option<usize> {
    row_ends(buf).last()
}
