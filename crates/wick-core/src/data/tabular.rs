//! From a polars frame to model-ready numbers: choosing features, task detection, imputation,
//! one-hot encoding and standardisation. Fitted on the training rows only and stored with the model.

use std::collections::BTreeSet;

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use super::columns::{date_parts, FeatureAdvice, DATE_PARTS};
use crate::data::columns::ColumnKind;
use crate::data::summary::top_values;
use crate::error::{Result, WickError};

/// What a model predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Regression,
    Classification,
}

/// A numeric target with more distinct values than this is treated as regression.
const REGRESSION_MIN_DISTINCT: usize = 20;

/// Regression for a numeric column with many distinct values, classification otherwise.
pub fn detect_task(series: &Series) -> Task {
    let distinct = series.drop_nulls().n_unique().unwrap_or(0);
    let numeric = ColumnKind::of(series.dtype()) == ColumnKind::Numeric;
    if numeric && distinct > REGRESSION_MIN_DISTINCT {
        Task::Regression
    } else {
        Task::Classification
    }
}

/// How missing values are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingPolicy {
    /// Drop rows with a missing feature.
    Drop,
    /// Numeric: column mean; text: most frequent value.
    Mean,
    /// Numeric: column median; text: most frequent value.
    Median,
    /// The most frequent value, for every column.
    MostFrequent,
}

/// Preprocessing choices, with the defaults a user would expect.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreprocessOptions {
    pub missing: MissingPolicy,
    pub standardize: bool,
    /// Text columns with more distinct values than this are not one-hot encoded.
    pub max_categories: usize,
}

impl Default for PreprocessOptions {
    fn default() -> Self {
        Self {
            missing: MissingPolicy::Mean,
            standardize: true,
            max_categories: 50,
        }
    }
}

/// What to learn from a table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TabularRequest {
    pub target: String,
    /// Feature columns; `None` means every usable column but the target.
    pub features: Option<Vec<String>>,
    /// Overrides task detection.
    pub task: Option<Task>,
    pub options: PreprocessOptions,
    /// Personal columns to drop or hash before anything else sees them.
    #[serde(default)]
    pub personal: super::PersonalData,
}

/// One feature column's raw values.
#[derive(Debug, Clone)]
pub enum RawColumn {
    Numeric(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
    /// ISO dates or date-times, as text.
    Date(Vec<Option<String>>),
}

/// The target's values.
#[derive(Debug, Clone)]
pub enum TargetValues {
    Regression(Vec<f64>),
    Classification {
        labels: Vec<String>,
        classes: Vec<usize>,
    },
}

impl TargetValues {
    pub fn task(&self) -> Task {
        match self {
            Self::Regression(_) => Task::Regression,
            Self::Classification { .. } => Task::Classification,
        }
    }

    pub fn class_indices(&self) -> Option<&[usize]> {
        match self {
            Self::Classification { classes, .. } => Some(classes),
            Self::Regression(_) => None,
        }
    }
}

/// A table reduced to typed feature columns and a target, before any fitting.
#[derive(Debug, Clone)]
pub struct TabularDataset {
    pub features: Vec<(String, RawColumn)>,
    pub target_name: String,
    pub target: TargetValues,
    /// Things the user should know (dropped rows, skipped columns).
    pub warnings: Vec<String>,
    /// The personal-data choices the features were prepared with (hashed columns hold hashes).
    pub personal: super::PersonalData,
}

impl TabularDataset {
    pub fn rows(&self) -> usize {
        match &self.target {
            TargetValues::Regression(v) => v.len(),
            TargetValues::Classification { classes, .. } => classes.len(),
        }
    }
}

/// Picks features and target from `df` and checks them.
pub fn prepare_tabular(df: &DataFrame, request: &TabularRequest) -> Result<TabularDataset> {
    if request.personal.action(&request.target).is_some() {
        return Err(WickError::column(
            &request.target,
            "is the target and is marked as personal data: unmark it on the Data screen (or leave out --personal) or choose another target",
        ));
    }
    let mut warnings = Vec::new();
    let request_features = request.features.as_ref().map(|f| {
        f.iter()
            .filter(|name| match request.personal.action(name) {
                Some(super::PersonalAction::Drop) => {
                    warnings.push(format!(
                        "`{name}` is left out: it is marked as personal data to drop"
                    ));
                    false
                }
                _ => true,
            })
            .cloned()
            .collect::<Vec<_>>()
    });
    let personal_frame;
    let df = if request.personal.is_empty() {
        df
    } else {
        personal_frame = request.personal.apply(df)?;
        &personal_frame
    };
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let target_col = df.column(&request.target).map_err(|_| {
        WickError::column(
            &request.target,
            format!("is not in the table; the columns are: {}", names.join(", ")),
        )
    })?;
    let target_series = target_col.as_materialized_series();
    if target_series.null_count() == target_series.len() {
        return Err(WickError::column(
            &request.target,
            "is empty (every value is missing): choose another target",
        ));
    }
    let distinct = target_series
        .drop_nulls()
        .n_unique()
        .map_err(|e| WickError::polars("target", e))?;
    if distinct < 2 {
        return Err(WickError::column(
            &request.target,
            "has the same value in every row, so there is nothing to learn: choose another target",
        ));
    }
    let task = request.task.unwrap_or_else(|| detect_task(target_series));

    let explicit = request.features.is_some();
    let feature_names: Vec<String> = match &request_features {
        Some(f) => f.clone(),
        None => names
            .iter()
            .filter(|n| **n != request.target)
            .cloned()
            .collect(),
    };
    if feature_names.is_empty() {
        return Err(WickError::InvalidSpec(
            "no feature columns: the table needs at least one column besides the target".into(),
        ));
    }

    let mut features = Vec::new();
    for name in &feature_names {
        if *name == request.target {
            return Err(WickError::column(
                name,
                "is the target; it can't also be a feature",
            ));
        }
        let col = df.column(name).map_err(|_| {
            WickError::column(
                name,
                format!("is not in the table; the columns are: {}", names.join(", ")),
            )
        })?;
        let series = col.as_materialized_series();
        let advice = FeatureAdvice::of(series);
        // Constant columns never help; ID-like ones are left out unless the user names them.
        if matches!(advice, FeatureAdvice::Constant | FeatureAdvice::Empty)
            || (!explicit && advice.excluded_by_default())
        {
            warnings.extend(advice.note(name));
            continue;
        }
        if advice == FeatureAdvice::Date {
            warnings.extend(advice.note(name));
            features.push((name.clone(), RawColumn::Date(text_values(series)?)));
            continue;
        }
        match raw_column(series) {
            Ok(raw) => {
                if let RawColumn::Text(values) = &raw {
                    let distinct: BTreeSet<&str> =
                        values.iter().flatten().map(String::as_str).collect();
                    if distinct.len() > request.options.max_categories {
                        warnings.push(format!(
                            "`{name}` has {} distinct values: models that one-hot encode keep its {} most frequent as categories and count the rest as one \"other\"; tree models use them all",
                            distinct.len(),
                            request.options.max_categories
                        ));
                    }
                }
                features.push((name.clone(), raw))
            }
            Err(err) if !explicit => warnings.push(format!("skipped {err}")),
            Err(err) => return Err(err),
        }
    }
    if features.is_empty() {
        return Err(WickError::InvalidSpec(format!(
            "none of the columns can be used as a feature ({}).",
            warnings.join("; ")
        )));
    }

    // Rows without a target can't train; rows with missing features may be dropped by policy.
    let target_missing: Vec<bool> = (0..df.height())
        .map(|i| target_series.get(i).map_or(true, |v| v.is_null()))
        .collect();
    let mut keep: Vec<bool> = target_missing.iter().map(|m| !m).collect();
    let n_missing_target = target_missing.iter().filter(|m| **m).count();
    if n_missing_target > 0 {
        warnings.push(format!(
            "dropped {n_missing_target} rows whose target `{}` is missing",
            request.target
        ));
    }
    if request.options.missing == MissingPolicy::Drop {
        let before = keep.iter().filter(|k| **k).count();
        for (_, raw) in &features {
            for (row, k) in keep.iter_mut().enumerate() {
                if raw.is_missing(row) {
                    *k = false;
                }
            }
        }
        let dropped = before - keep.iter().filter(|k| **k).count();
        if dropped > 0 {
            warnings.push(format!(
                "dropped {dropped} rows with a missing feature value"
            ));
        }
    }
    let rows: Vec<usize> = (0..df.height()).filter(|&i| keep[i]).collect();
    if rows.len() < 4 {
        return Err(WickError::InvalidSpec(format!(
            "only {} usable rows remain after removing missing values: training needs more data",
            rows.len()
        )));
    }
    let features = features
        .into_iter()
        .map(|(n, raw)| (n, raw.select(&rows)))
        .collect();
    let target = target_values(target_series, task, &rows)?;
    if let TargetValues::Classification { labels, classes } = &target {
        for (c, label) in labels.iter().enumerate() {
            if classes.iter().filter(|&&x| x == c).count() == 1 {
                warnings.push(format!(
                    "class `{label}` of `{}` has a single row: it stays in the training rows, so no validation or test row can check it; add rows of it or merge it into another class",
                    request.target
                ));
            }
        }
    }
    Ok(TabularDataset {
        features,
        target_name: request.target.clone(),
        target,
        warnings,
        personal: request.personal.clone(),
    })
}

impl RawColumn {
    fn is_missing(&self, row: usize) -> bool {
        match self {
            Self::Numeric(v) => v[row].is_none(),
            Self::Text(v) | Self::Date(v) => v[row].is_none(),
        }
    }

    fn select(&self, rows: &[usize]) -> Self {
        match self {
            Self::Numeric(v) => Self::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Self::Text(v) => Self::Text(rows.iter().map(|&r| v[r].clone()).collect()),
            Self::Date(v) => Self::Date(rows.iter().map(|&r| v[r].clone()).collect()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Numeric(v) => v.len(),
            Self::Text(v) | Self::Date(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A column's values as text (dates as ISO 8601).
fn text_values(series: &Series) -> Result<Vec<Option<String>>> {
    let name = series.name().to_string();
    let text = series
        .cast(&DataType::String)
        .map_err(|e| WickError::polars(format!("column `{name}`"), e))?;
    let text = text
        .str()
        .map_err(|e| WickError::polars(format!("column `{name}`"), e))?;
    Ok(text.iter().map(|v| v.map(str::to_string)).collect())
}

/// Reads a feature column; NaN/inf and columns of other types are errors naming the column.
fn raw_column(series: &Series) -> Result<RawColumn> {
    let name = series.name().to_string();
    match ColumnKind::of(series.dtype()) {
        ColumnKind::Numeric | ColumnKind::Boolean => {
            let values = series
                .cast(&DataType::Float64)
                .map_err(|e| WickError::polars(format!("column `{name}`"), e))?;
            let values: Vec<Option<f64>> = values
                .f64()
                .map_err(|e| WickError::polars(format!("column `{name}`"), e))?
                .iter()
                .collect();
            if let Some(row) = values
                .iter()
                .position(|v| v.is_some_and(|x| !x.is_finite()))
            {
                return Err(WickError::column(
                    &name,
                    format!(
                        "row {} holds {} (not a finite number). Replace NaN/inf values with real numbers or leave the cell empty so it is treated as missing",
                        row + 1,
                        values[row].unwrap_or_default()
                    ),
                ));
            }
            Ok(RawColumn::Numeric(values))
        }
        ColumnKind::Text => Ok(RawColumn::Text(text_values(series)?)),
        ColumnKind::Temporal => Ok(RawColumn::Date(text_values(series)?)),
        ColumnKind::Other => Err(WickError::column(
            &name,
            format!(
                "has type {} which can't be a feature; convert it to numbers or text",
                series.dtype()
            ),
        )),
    }
}

fn target_values(series: &Series, task: Task, rows: &[usize]) -> Result<TargetValues> {
    let name = series.name().to_string();
    match task {
        Task::Regression => {
            if ColumnKind::of(series.dtype()) != ColumnKind::Numeric {
                return Err(WickError::column(
                    &name,
                    "is not numeric, so it can't be a regression target; choose classification",
                ));
            }
            let values = series
                .cast(&DataType::Float64)
                .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
            let values = values
                .f64()
                .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
            let mut out = Vec::with_capacity(rows.len());
            for &r in rows {
                let v = values.get(r).unwrap_or(f64::NAN);
                if !v.is_finite() {
                    return Err(WickError::column(
                        &name,
                        format!("row {} holds {v}: a target must be a finite number", r + 1),
                    ));
                }
                out.push(v);
            }
            Ok(TargetValues::Regression(out))
        }
        Task::Classification => {
            if series.dtype().is_float() {
                let values = series
                    .cast(&DataType::Float64)
                    .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
                let values = values
                    .f64()
                    .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
                if let Some(&r) = rows
                    .iter()
                    .find(|&&r| values.get(r).is_some_and(|v| !v.is_finite()))
                {
                    return Err(WickError::column(
                        &name,
                        format!(
                            "row {} holds {}: a class label must be a finite number or text",
                            r + 1,
                            values.get(r).unwrap_or_default()
                        ),
                    ));
                }
            }
            let text = series
                .cast(&DataType::String)
                .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
            let text = text
                .str()
                .map_err(|e| WickError::polars(format!("target `{name}`"), e))?;
            let values: Vec<String> = rows
                .iter()
                .map(|&r| text.get(r).unwrap_or_default().to_string())
                .collect();
            let labels: Vec<String> = values
                .iter()
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            if labels.len() > 1000 {
                return Err(WickError::column(
                    &name,
                    format!(
                        "has {} distinct values: too many classes. Did you mean regression?",
                        labels.len()
                    ),
                ));
            }
            let classes = values
                .iter()
                .map(|v| labels.binary_search(v).unwrap_or(0))
                .collect();
            Ok(TargetValues::Classification { labels, classes })
        }
    }
}

/// How one feature column becomes model inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "snake_case")]
pub enum FeatureEncoder {
    Numeric {
        name: String,
        fill: f64,
        mean: f64,
        std: f64,
    },
    OneHot {
        name: String,
        categories: Vec<String>,
        fill: String,
    },
    /// Tree models: the number as it is; missing is NaN, which the trees route themselves.
    Raw { name: String },
    /// Tree models: the category's index in `categories`; missing or never seen in training is NaN.
    Code {
        name: String,
        categories: Vec<String>,
    },
    /// ISO dates: the [`DATE_PARTS`], each `(fill, mean, std)`-scaled as numbers are; with no
    /// `scale` (tree models) the parts as they are and NaN when missing.
    Date {
        name: String,
        #[serde(default)]
        scale: Vec<(f64, f64, f64)>,
    },
}

impl FeatureEncoder {
    pub fn name(&self) -> &str {
        match self {
            Self::Numeric { name, .. }
            | Self::OneHot { name, .. }
            | Self::Raw { name }
            | Self::Code { name, .. }
            | Self::Date { name, .. } => name,
        }
    }

    pub fn width(&self) -> usize {
        match self {
            Self::Numeric { .. } | Self::Raw { .. } | Self::Code { .. } => 1,
            Self::OneHot { categories, .. } => categories.len(),
            Self::Date { .. } => DATE_PARTS.len(),
        }
    }

    /// Whether the column is text (sent as BYTES to a server; dates as ISO 8601 text).
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            Self::OneHot { .. } | Self::Code { .. } | Self::Date { .. }
        )
    }
}

/// Fitted preprocessing: one encoder per feature column, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    pub encoders: Vec<FeatureEncoder>,
    /// Personal columns: hashed ones are hashed from raw input before encoding, exactly as for
    /// training; all of them are hashed in the endpoint's request log.
    #[serde(default, skip_serializing_if = "super::PersonalData::is_empty")]
    pub personal: super::PersonalData,
}

impl Preprocessor {
    /// Fits imputation values, categories and scaling on `rows` (the training split) only.
    pub fn fit(
        dataset: &TabularDataset,
        rows: &[usize],
        options: &PreprocessOptions,
    ) -> Result<Self> {
        let mut encoders = Vec::new();
        for (name, raw) in &dataset.features {
            match raw {
                RawColumn::Numeric(values) => {
                    let mut present: Vec<f64> = rows.iter().filter_map(|&r| values[r]).collect();
                    if present.is_empty() {
                        return Err(WickError::column(
                            name,
                            "has no values in the training rows; leave it out",
                        ));
                    }
                    let fill = match options.missing {
                        MissingPolicy::Mean | MissingPolicy::Drop => mean(&present),
                        MissingPolicy::Median => median(&mut present),
                        MissingPolicy::MostFrequent => most_frequent_f64(&present),
                    };
                    let filled: Vec<f64> =
                        rows.iter().map(|&r| values[r].unwrap_or(fill)).collect();
                    let (m, s) = if options.standardize {
                        (mean(&filled), std_dev(&filled))
                    } else {
                        (0.0, 1.0)
                    };
                    // A constant column scales by 1 so it stays finite (its value is then 0 after centring).
                    let s = if s > 0.0 && s.is_finite() { s } else { 1.0 };
                    encoders.push(FeatureEncoder::Numeric {
                        name: name.clone(),
                        fill,
                        mean: m,
                        std: s,
                    });
                }
                RawColumn::Text(values) => {
                    let present = rows.iter().filter_map(|&r| values[r].as_deref());
                    let fill = top_values(present, 1)
                        .into_iter()
                        .next()
                        .map(|(v, _)| v)
                        .unwrap_or_default();
                    // The most frequent values (all of them up to the limit); the rest encode as all
                    // zeros, one shared "other".
                    let filled = rows.iter().map(|&r| values[r].as_deref().unwrap_or(&fill));
                    let categories: BTreeSet<String> =
                        top_values(filled, options.max_categories.max(1))
                            .into_iter()
                            .map(|(v, _)| v)
                            .collect();
                    encoders.push(FeatureEncoder::OneHot {
                        name: name.clone(),
                        categories: categories.into_iter().collect(),
                        fill,
                    });
                }
                RawColumn::Date(values) => {
                    let parts: Vec<[f64; 5]> = rows
                        .iter()
                        .filter_map(|&r| values[r].as_deref().and_then(date_parts))
                        .collect();
                    if parts.is_empty() {
                        return Err(WickError::column(
                            name,
                            "has no readable dates in the training rows; leave it out",
                        ));
                    }
                    let scale = (0..DATE_PARTS.len())
                        .map(|p| {
                            let column: Vec<f64> = parts.iter().map(|v| v[p]).collect();
                            let fill = mean(&column);
                            let (m, s) = if options.standardize {
                                (fill, std_dev(&column))
                            } else {
                                (0.0, 1.0)
                            };
                            (fill, m, if s > 0.0 && s.is_finite() { s } else { 1.0 })
                        })
                        .collect();
                    encoders.push(FeatureEncoder::Date {
                        name: name.clone(),
                        scale,
                    });
                }
            }
        }
        Ok(Self {
            encoders,
            personal: dataset.personal.clone(),
        })
    }

    /// The tree encoding, fitted on `rows`: numbers pass through, text becomes category codes, and
    /// nothing is imputed (trees learn where missing values go).
    pub fn fit_for_trees(dataset: &TabularDataset, rows: &[usize]) -> Result<Self> {
        let mut encoders = Vec::new();
        for (name, raw) in &dataset.features {
            let present = match raw {
                RawColumn::Numeric(v) => rows.iter().any(|&r| v[r].is_some()),
                RawColumn::Text(v) | RawColumn::Date(v) => rows.iter().any(|&r| v[r].is_some()),
            };
            if !present {
                return Err(WickError::column(
                    name,
                    "has no values in the training rows; leave it out",
                ));
            }
            encoders.push(match raw {
                RawColumn::Numeric(_) => FeatureEncoder::Raw { name: name.clone() },
                RawColumn::Text(values) => {
                    let categories: BTreeSet<String> =
                        rows.iter().filter_map(|&r| values[r].clone()).collect();
                    FeatureEncoder::Code {
                        name: name.clone(),
                        categories: categories.into_iter().collect(),
                    }
                }
                RawColumn::Date(_) => FeatureEncoder::Date {
                    name: name.clone(),
                    scale: Vec::new(),
                },
            });
        }
        Ok(Self {
            encoders,
            personal: dataset.personal.clone(),
        })
    }

    /// Number of model inputs after encoding.
    pub fn width(&self) -> usize {
        self.encoders.iter().map(FeatureEncoder::width).sum()
    }

    /// Names of the encoded inputs (`column` or `column=category`).
    pub fn input_names(&self) -> Vec<String> {
        self.encoders
            .iter()
            .flat_map(|e| match e {
                FeatureEncoder::Numeric { name, .. }
                | FeatureEncoder::Raw { name }
                | FeatureEncoder::Code { name, .. } => vec![name.clone()],
                FeatureEncoder::OneHot {
                    name, categories, ..
                } => categories.iter().map(|c| format!("{name}={c}")).collect(),
                FeatureEncoder::Date { name, .. } => {
                    DATE_PARTS.iter().map(|p| format!("{name}.{p}")).collect()
                }
            })
            .collect()
    }

    /// Encodes `rows` of the dataset as a row-major matrix of `self.width()` columns.
    pub fn transform(&self, dataset: &TabularDataset, rows: &[usize]) -> Result<Vec<f64>> {
        let columns: Vec<&RawColumn> = dataset.features.iter().map(|(_, raw)| raw).collect();
        self.encode(&columns, rows.iter().copied(), rows.len())
    }

    /// Encodes every row of a frame, reading the feature columns by name (for prediction).
    pub fn transform_frame(&self, df: &DataFrame) -> Result<Vec<f64>> {
        let mut columns = Vec::new();
        for enc in &self.encoders {
            let col = df.column(enc.name()).map_err(|_| {
                WickError::column(
                    enc.name(),
                    "is missing from the input; the model needs every feature it was trained on",
                )
            })?;
            let raw = match enc {
                FeatureEncoder::Numeric { .. } | FeatureEncoder::Raw { .. } => {
                    raw_column(col.as_materialized_series())?
                }
                FeatureEncoder::OneHot { .. }
                | FeatureEncoder::Code { .. }
                | FeatureEncoder::Date { .. } => {
                    let text = col
                        .cast(&DataType::String)
                        .map_err(|e| WickError::polars(format!("column `{}`", enc.name()), e))?;
                    let text = text
                        .str()
                        .map_err(|e| WickError::polars(format!("column `{}`", enc.name()), e))?;
                    let mut values: Vec<Option<String>> =
                        text.iter().map(|v| v.map(str::to_string)).collect();
                    self.personal.hash_values(enc.name(), &mut values);
                    RawColumn::Text(values)
                }
            };
            columns.push(raw);
        }
        let refs: Vec<&RawColumn> = columns.iter().collect();
        self.encode(&refs, 0..df.height(), df.height())
    }

    /// Encodes `n_rows` rows given as one raw column per encoder, in encoder order (for prediction
    /// from tensors, without building a frame).
    pub fn transform_columns(&self, columns: &[RawColumn], n_rows: usize) -> Result<Vec<f64>> {
        if columns.len() != self.encoders.len() {
            return Err(WickError::PredictInput(format!(
                "expected {} feature columns, got {}",
                self.encoders.len(),
                columns.len()
            )));
        }
        for (enc, raw) in self.encoders.iter().zip(columns) {
            let len = raw.len();
            if len != n_rows {
                return Err(WickError::column(
                    enc.name(),
                    format!("has {len} values but the other features have {n_rows}"),
                ));
            }
        }
        let hashed: Vec<RawColumn>;
        let columns = if self
            .personal
            .columns
            .values()
            .any(|a| *a == super::PersonalAction::Hash)
        {
            hashed = self
                .encoders
                .iter()
                .zip(columns)
                .map(|(enc, raw)| match raw {
                    RawColumn::Text(v) if self.personal.is_hashed(enc.name()) => {
                        let mut v = v.clone();
                        self.personal.hash_values(enc.name(), &mut v);
                        RawColumn::Text(v)
                    }
                    other => other.clone(),
                })
                .collect();
            &hashed[..]
        } else {
            columns
        };
        let refs: Vec<&RawColumn> = columns.iter().collect();
        self.encode(&refs, 0..n_rows, n_rows)
    }

    fn encode(
        &self,
        columns: &[&RawColumn],
        rows: impl Iterator<Item = usize>,
        n_rows: usize,
    ) -> Result<Vec<f64>> {
        let width = self.width();
        let mut out = vec![0.0; n_rows * width];
        for (i, row) in rows.enumerate() {
            let mut offset = i * width;
            for (enc, raw) in self.encoders.iter().zip(columns) {
                match (enc, raw) {
                    (
                        FeatureEncoder::Numeric {
                            fill, mean, std, ..
                        },
                        RawColumn::Numeric(v),
                    ) => {
                        out[offset] = (v[row].unwrap_or(*fill) - mean) / std;
                    }
                    (
                        FeatureEncoder::OneHot {
                            categories, fill, ..
                        },
                        RawColumn::Text(v),
                    ) => {
                        let value = v[row].as_deref().unwrap_or(fill);
                        // Categories never seen in training encode as all zeros.
                        if let Ok(k) = categories.binary_search_by(|c| c.as_str().cmp(value)) {
                            out[offset + k] = 1.0;
                        }
                    }
                    (FeatureEncoder::Raw { .. }, RawColumn::Numeric(v)) => {
                        out[offset] = v[row].unwrap_or(f64::NAN);
                    }
                    (
                        FeatureEncoder::Date { scale, .. },
                        RawColumn::Text(v) | RawColumn::Date(v),
                    ) => {
                        let parts = v[row].as_deref().and_then(date_parts);
                        for p in 0..DATE_PARTS.len() {
                            out[offset + p] = match (parts, scale.get(p)) {
                                (Some(parts), Some((_, mean, std))) => (parts[p] - mean) / std,
                                (None, Some((fill, mean, std))) => (fill - mean) / std,
                                (Some(parts), None) => parts[p],
                                (None, None) => f64::NAN,
                            };
                        }
                    }
                    (FeatureEncoder::Code { categories, .. }, RawColumn::Text(v)) => {
                        out[offset] = v[row]
                            .as_deref()
                            .and_then(|value| {
                                categories.binary_search_by(|c| c.as_str().cmp(value)).ok()
                            })
                            .map_or(f64::NAN, |k| k as f64);
                    }
                    (enc, _) => return Err(WickError::column(
                        enc.name(),
                        "has a different type than when the model was trained (numbers vs text)",
                    )),
                }
                offset += enc.width();
            }
        }
        Ok(out)
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

fn std_dev(v: &[f64]) -> f64 {
    let m = mean(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64).sqrt()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn most_frequent_f64(v: &[f64]) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let (mut best, mut best_n, mut i) = (sorted[0], 0, 0);
    while i < sorted.len() {
        let j = sorted[i..]
            .iter()
            .position(|x| *x != sorted[i])
            .map_or(sorted.len(), |p| i + p);
        if j - i > best_n {
            best = sorted[i];
            best_n = j - i;
        }
        i = j;
    }
    best
}
