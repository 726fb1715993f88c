//! *Improve with live data*: a published table model's logged requests that have feedback become
//! new rows of its dataset, and the same model is trained again on both. The new run holds back
//! exactly the first run's validation and test rows, so the two runs' test figures are measured on
//! the same rows and compare like for like.

use std::collections::HashSet;

use polars::prelude::*;

use super::{CancelToken, TrainConfig, TrainObserver, TrainOutcome};
use crate::data::fingerprint::fingerprint_with_rows;
use crate::data::{prepare_tabular, Split, TabularRequest};
use crate::error::{Result, WickError};
use crate::model::ModelSpec;
use crate::train::pipeline::{report_failure, train_table_with};
use crate::train::table_data::TableData;
use crate::wire::LabelledRows;

/// What a table model was asked to learn, rebuilt from its package: its target, its features, the
/// task and its personal-data choices (preprocessing options are the defaults; the encoders in
/// the package do not record the missing-value policy).
pub fn request_of(manifest: &crate::package::Manifest) -> Result<TabularRequest> {
    let crate::model::ModelInput::Tabular { preprocessor } = &manifest.preprocessing else {
        return Err(WickError::InvalidSpec(format!(
            "`{}` is an image model; live rows with feedback are for table models",
            manifest.name
        )));
    };
    Ok(TabularRequest {
        target: manifest.target.name.clone(),
        features: Some(
            preprocessor
                .encoders
                .iter()
                .map(|e| e.name().to_string())
                .collect(),
        ),
        task: Some(manifest.target.task),
        options: Default::default(),
        personal: preprocessor.personal.clone(),
    })
}

/// Live rows ready to add to a dataset.
#[derive(Debug, Clone)]
pub struct NewRows {
    /// The rows, with the dataset's columns and types; duplicates already removed.
    pub frame: DataFrame,
    /// Labelled requests received from the endpoint.
    pub received: usize,
    /// Rows left out because the dataset (or an earlier live row) already has them.
    pub duplicates: usize,
    /// Rows left out because their outcome does not fit the target (a label for a number).
    pub unusable: usize,
    /// Columns the endpoint logged only as hashes: missing in the new rows.
    pub hashed: Vec<String>,
}

/// Turns the endpoint's labelled rows into rows of `dataset` (same columns, same types), with
/// the outcome as `target`. Columns a request did not send are missing. A row is a duplicate when
/// the dataset (or an earlier live row) has the same values in the columns the requests send and
/// the target; columns the model never sees (missing in every live row) are not compared, or no
/// live row would ever match a dataset row.
pub fn live_rows_frame(
    dataset: &DataFrame,
    target: &str,
    labelled: &LabelledRows,
) -> Result<NewRows> {
    if dataset.column(target).is_err() {
        return Err(WickError::InvalidSpec(format!(
            "the model predicts `{target}`, which is not a column of this table: open the table the published model was trained on"
        )));
    }
    let rows = &labelled.rows;
    let mut columns: Vec<Column> = Vec::with_capacity(dataset.width());
    for column in dataset.columns() {
        let name = column.name().as_str();
        let values: Vec<Option<&serde_json::Value>> = rows
            .iter()
            .map(|r| {
                if name == target {
                    Some(&r.outcome)
                } else {
                    r.values.get(name)
                }
            })
            .map(|v| v.filter(|v| !v.is_null()))
            .collect();
        let series = if column.dtype().is_primitive_numeric() {
            let numbers: Float64Chunked = values
                .iter()
                .map(|v| {
                    v.and_then(|v| {
                        v.as_f64()
                            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    })
                })
                .collect();
            numbers.with_name(name.into()).into_series()
        } else {
            let text: StringChunked = values
                .iter()
                .map(|v| {
                    v.map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                })
                .collect();
            text.with_name(name.into()).into_series()
        };
        // A value that does not fit the column's type (text in a number column) becomes missing.
        let typed = series
            .cast(column.dtype())
            .map_err(|e| WickError::polars(format!("live values of column `{name}`"), e))?;
        columns.push(typed.into());
    }
    let frame =
        DataFrame::new(rows.len(), columns).map_err(|e| WickError::polars("live rows", e))?;
    let usable = frame
        .column(target)
        .map_err(|e| WickError::polars("target", e))?
        .is_not_null();
    let unusable = frame.height() - usable.sum().unwrap_or(0) as usize;
    let frame = frame
        .filter(&usable)
        .map_err(|e| WickError::polars("live rows", e))?;

    let compared: Vec<&str> = dataset
        .get_column_names()
        .into_iter()
        .map(|n| n.as_str())
        .filter(|&n| {
            n == target
                || rows
                    .iter()
                    .any(|r| r.values.get(n).is_some_and(|v| !v.is_null()))
        })
        .collect();
    let mut seen: HashSet<String> = row_keys(dataset, &compared)?.into_iter().collect();
    let keep: BooleanChunked = row_keys(&frame, &compared)?
        .into_iter()
        .map(|k| seen.insert(k))
        .collect();
    let duplicates = frame.height() - keep.sum().unwrap_or(0) as usize;
    let frame = frame
        .filter(&keep)
        .map_err(|e| WickError::polars("live rows", e))?;
    Ok(NewRows {
        frame,
        received: rows.len(),
        duplicates,
        unusable,
        hashed: labelled.hashed.clone(),
    })
}

/// One text key per row, the values of `columns` in order (missing as a mark no value has).
fn row_keys(df: &DataFrame, columns: &[&str]) -> Result<Vec<String>> {
    let mut keys = vec![String::new(); df.height()];
    for name in columns {
        let column = df
            .column(name)
            .map_err(|e| WickError::polars(format!("column `{name}`"), e))?;
        let text = column
            .cast(&DataType::String)
            .map_err(|e| WickError::polars(format!("column `{}`", column.name()), e))?;
        let text = text
            .str()
            .map_err(|e| WickError::polars(format!("column `{}`", column.name()), e))?;
        for (key, value) in keys.iter_mut().zip(text.iter()) {
            key.push_str(value.unwrap_or("\u{0}missing"));
            key.push('\u{1f}');
        }
    }
    Ok(keys)
}

/// Trains `spec` again on `dataset` plus `new_rows` (from [`live_rows_frame`]). The first
/// `dataset` rows are split as a run on `dataset` alone with `config` splits them; the new rows
/// only train. So the new run's validation and test rows are the earlier run's, and its test
/// figures compare with that run's.
pub fn train_with_live_rows(
    table: TableData<'_>,
    new_rows: &DataFrame,
    spec: &ModelSpec,
    config: &TrainConfig,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<TrainOutcome> {
    let TableData {
        df: dataset,
        source,
        request,
    } = table;
    let before = prepare_tabular(dataset, request)?;
    let old = config.split_rows(before.rows(), before.target.class_indices())?;
    let combined = dataset
        .vstack(new_rows)
        .map_err(|e| WickError::polars("adding the live rows to the dataset", e))?;
    // Rows are prepared in order (a row dropped for a missing value is dropped in both), so the
    // dataset's rows keep their positions and the live rows follow them.
    let after = prepare_tabular(&combined, request)?;
    let added = before.rows()..after.rows();
    let split = Split {
        train: old.train.iter().copied().chain(added).collect(),
        valid: old.valid,
        test: old.test,
    };
    let config = TrainConfig {
        fixed_split: Some(split),
        ..config.clone()
    };
    // The package's fingerprint covers the live rows too, not only the file.
    let known = fingerprint_with_rows(source, new_rows, after.rows())?;
    let result = train_table_with(
        TableData::new(&combined, source, request),
        Some(known),
        spec,
        &config,
        observer,
        cancel,
    );
    report_failure(result, observer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::LabelledRow;

    fn row(id: &str, values: serde_json::Value, outcome: serde_json::Value) -> LabelledRow {
        let values = values
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        LabelledRow {
            id: id.into(),
            version: 1,
            values,
            outcome,
        }
    }

    #[test]
    fn live_rows_take_the_dataset_types_and_skip_duplicates_and_misfits() {
        // `note` is in the table but never sent: row 1 still matches the table's first row.
        let dataset = df!("x" => [1.0, 2.0], "kind" => ["a", "b"], "note" => ["n1", "n2"], "y" => [10i64, 20]).unwrap();
        let labelled = LabelledRows {
            model: "m".into(),
            rows: vec![
                row(
                    "1",
                    serde_json::json!({"x": 1.0, "kind": "a"}),
                    serde_json::json!(10),
                ), // in the dataset
                row(
                    "2",
                    serde_json::json!({"x": 3.0, "kind": "c"}),
                    serde_json::json!(30),
                ),
                row(
                    "3",
                    serde_json::json!({"x": 3.0, "kind": "c"}),
                    serde_json::json!(30),
                ), // twice live
                row("4", serde_json::json!({"x": "4"}), serde_json::json!(40)), // text number, no kind
                row(
                    "5",
                    serde_json::json!({"x": 5.0, "kind": "e"}),
                    serde_json::json!("rain"),
                ), // a label for a number
            ],
            hashed: vec![],
        };
        let new = live_rows_frame(&dataset, "y", &labelled).unwrap();
        assert_eq!((new.received, new.duplicates, new.unusable), (5, 2, 1));
        assert_eq!(new.frame.height(), 2);
        assert_eq!(new.frame.column("y").unwrap().dtype(), &DataType::Int64);
        assert_eq!(
            new.frame.column("x").unwrap().f64().unwrap().get(1),
            Some(4.0)
        );
        assert_eq!(
            new.frame.column("kind").unwrap().str().unwrap().get(1),
            None
        );
        assert!(live_rows_frame(&dataset, "z", &labelled).is_err());
    }
}
