//! Reading tables (CSV, Parquet, NDJSON) into polars, with errors that say what is wrong with the file.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WickError};

/// The file formats Wick reads as tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    Csv,
    Parquet,
    Ndjson,
}

impl TableFormat {
    /// Picks the format from the file extension.
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        match ext.as_str() {
            "csv" | "tsv" | "txt" => Ok(Self::Csv),
            "parquet" | "pq" => Ok(Self::Parquet),
            "ndjson" | "jsonl" | "json" => Ok(Self::Ndjson),
            _ => Err(WickError::data(
                path,
                "is not a table Wick can open: use a .csv, .tsv, .parquet, .ndjson or .jsonl file",
            )),
        }
    }
}

/// Reads a whole table. Errors name the file and, where it can be found, the row.
pub fn read_table(path: &Path) -> Result<DataFrame> {
    let format = TableFormat::from_path(path)?;
    let meta = std::fs::metadata(path).map_err(|e| WickError::io(path, e))?;
    if meta.is_dir() {
        return Err(WickError::data(
            path,
            "is a folder; open a table file, or open the folder as an image dataset",
        ));
    }
    if meta.len() == 0 {
        return Err(WickError::data(path, "is empty (0 bytes): export the data again, with a header row and at least one row of values"));
    }
    let df = match format {
        TableFormat::Csv => read_csv(path)?,
        TableFormat::Parquet => {
            let file = File::open(path).map_err(|e| WickError::io(path, e))?;
            ParquetReader::new(file).finish().map_err(|e| {
                WickError::data(path, format!("is not a readable Parquet file ({e}); check that it was written completely"))
            })?
        }
        TableFormat::Ndjson => {
            let file = File::open(path).map_err(|e| WickError::io(path, e))?;
            JsonReader::new(file)
                .with_json_format(JsonFormat::JsonLines)
                .finish()
                .map_err(|e| {
                    WickError::data(path, format!("is not valid newline-delimited JSON ({e}); each line must be one JSON object"))
                })?
        }
    };
    if df.width() == 0 {
        return Err(WickError::data(
            path,
            "has no columns: add a header row naming each column",
        ));
    }
    if df.height() == 0 {
        return Err(WickError::data(
            path,
            format!(
                "has a header ({} columns) but no rows of data: add rows below the header",
                df.width()
            ),
        ));
    }
    Ok(df)
}

fn read_csv(path: &Path) -> Result<DataFrame> {
    let head = read_head(path)?;
    if head.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(WickError::data(
            path,
            "contains only blank lines: export the data again, with a header row",
        ));
    }
    let separator = sniff_separator(path, &head);
    let read = CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .map_parse_options(|p| p.with_separator(separator))
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish());
    let df = match read {
        Ok(df) => df,
        Err(err) => return Err(diagnose_csv(path, separator, err)),
    };
    check_separator_guess(path, &df, separator)?;
    Ok(df)
}

pub(crate) fn read_head(path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; 64 * 1024];
    let mut file = File::open(path).map_err(|e| WickError::io(path, e))?;
    let n = file.read(&mut buf).map_err(|e| WickError::io(path, e))?;
    buf.truncate(n);
    Ok(buf)
}

/// Chooses the separator from the header line: `.tsv` means tab, otherwise the most frequent of `, ; \t |`.
pub(crate) fn sniff_separator(path: &Path, head: &[u8]) -> u8 {
    let is_tsv = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv"));
    if is_tsv {
        return b'\t';
    }
    let header = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let count = |sep: u8| count_fields(header, sep).saturating_sub(1);
    let mut best = b',';
    let mut best_count = count(b',');
    for sep in [b';', b'\t', b'|'] {
        let n = count(sep);
        if n > best_count {
            best = sep;
            best_count = n;
        }
    }
    best
}

/// Counts the fields of one CSV line, honouring double quotes.
fn count_fields(line: &[u8], separator: u8) -> usize {
    let mut in_quotes = false;
    let mut fields = 1;
    for &b in line {
        if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == separator && !in_quotes {
            fields += 1;
        }
    }
    fields
}

/// A header whose column names still contain another separator was split with the wrong one, or
/// mixes separators: either way the columns would be wrong, so say so instead of guessing.
fn check_separator_guess(path: &Path, df: &DataFrame, separator: u8) -> Result<()> {
    for name in df.get_column_names() {
        for other in [b',', b';', b'\t', b'|'] {
            if other != separator && name.as_bytes().contains(&other) {
                return Err(WickError::data(
                    path,
                    format!(
                        "has a column named {:?}: the header seems to mix separators ({:?} and {:?}). \
                         Use one separator throughout the file",
                        name.as_str(),
                        separator as char,
                        other as char
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Polars' CSV errors are terse; find the row and the kind of problem ourselves.
fn diagnose_csv(path: &Path, separator: u8, err: PolarsError) -> WickError {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return WickError::io(path, e),
    };
    if let Err(utf8) = std::str::from_utf8(&bytes) {
        let offset = utf8.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        return WickError::data(
            path,
            format!(
                "is not UTF-8 text: line {line} has a byte (0x{:02x}) that is not valid UTF-8. \
                 Save the file as UTF-8 (in a spreadsheet: \"CSV UTF-8\") and open it again",
                bytes[offset]
            ),
        );
    }
    let mut lines = bytes.split(|&b| b == b'\n');
    let header_fields = lines
        .next()
        .map(|h| count_fields(h, separator))
        .unwrap_or(0);
    for (i, line) in lines.enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let fields = count_fields(line, separator);
        if fields != header_fields {
            return WickError::data(
                path,
                format!(
                    "row {} has {fields} fields but the header has {header_fields} (separator {:?}). \
                     Fix that row so that every row has one value per column",
                    i + 1,
                    separator as char
                ),
            );
        }
    }
    WickError::data(path, format!("could not be read as CSV: {err}"))
}
