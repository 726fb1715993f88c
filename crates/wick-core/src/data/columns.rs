//! What to do with a column people really have: dates become features, ID-like and free-text
//! columns are left out by default, constant columns are dropped. One verdict, used by training
//! (for the features it picks itself), the Data screen's notes and the Model screen's defaults.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use polars::prelude::*;
use serde::{Deserialize, Serialize};

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

/// A column's verdict as a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "advice", rename_all = "snake_case")]
pub enum FeatureAdvice {
    #[default]
    Use,
    /// ISO dates or date-times: used as year, month, day of week, hour and days since 1970.
    Date,
    /// One value in every row: nothing to learn from.
    Constant,
    /// No value in any row.
    Empty,
    /// Nearly one distinct value per row (an ID, a name, free text): it can't generalise to new rows.
    IdLike { distinct: usize, rows: usize },
}

/// Below this many present values a column is too short to call ID-like.
const ID_MIN_ROWS: usize = 20;
/// Text with at least this share of distinct values among its present values is ID-like.
const ID_DISTINCT_SHARE: f64 = 0.9;

/// The parts a date column becomes, in order.
pub const DATE_PARTS: [&str; 5] = ["year", "month", "day_of_week", "hour", "days_since_1970"];

impl FeatureAdvice {
    /// Judges a column from its values.
    pub fn of(series: &Series) -> Self {
        let present = series.len() - series.null_count();
        if present == 0 {
            return Self::Empty;
        }
        let kind = ColumnKind::of(series.dtype());
        // Counting distinct floats is dear on long columns; min == max tells a constant one.
        if kind == ColumnKind::Numeric && !series.dtype().is_integer() {
            let values = series.cast(&DataType::Float64).ok();
            let range = values
                .as_ref()
                .and_then(|v| v.f64().ok())
                .and_then(|v| Some(v.max()? - v.min()?));
            return if range.is_none_or(|r| r == 0.0) {
                Self::Constant
            } else {
                Self::Use
            };
        }
        let distinct = series.drop_nulls().n_unique().unwrap_or(present);
        if distinct <= 1 {
            return Self::Constant;
        }
        match kind {
            ColumnKind::Temporal => Self::Date,
            ColumnKind::Text => {
                if series
                    .str()
                    .is_ok_and(|t| t.iter().flatten().all(|v| parse_date(v).is_some()))
                {
                    Self::Date
                } else if present >= ID_MIN_ROWS
                    && distinct as f64 >= ID_DISTINCT_SHARE * present as f64
                {
                    Self::IdLike {
                        distinct,
                        rows: present,
                    }
                } else {
                    Self::Use
                }
            }
            // Whole numbers counting up by one (a row number or a running id).
            ColumnKind::Numeric
                if series.dtype().is_integer() && present >= ID_MIN_ROWS && distinct == present =>
            {
                let values = series.cast(&DataType::Float64).ok();
                let range = values
                    .as_ref()
                    .and_then(|v| v.f64().ok())
                    .and_then(|v| Some(v.max()? - v.min()?));
                if range.is_some_and(|r| (r + 1.0 - present as f64).abs() < 0.5) {
                    Self::IdLike {
                        distinct,
                        rows: present,
                    }
                } else {
                    Self::Use
                }
            }
            _ => Self::Use,
        }
    }

    /// Whether a feature list picked automatically leaves the column out.
    pub fn excluded_by_default(self) -> bool {
        matches!(self, Self::Constant | Self::Empty | Self::IdLike { .. })
    }

    /// What the user should read about the column, if anything.
    pub fn note(self, name: &str) -> Option<String> {
        match self {
            Self::Use => None,
            Self::Date => Some(format!("`{name}` holds dates: it becomes year, month, day of week, hour and days since 1970")),
            Self::Constant => Some(format!("`{name}` has the same value in every row, so it is left out")),
            Self::Empty => Some(format!("`{name}` is empty (no value in any row), so it is left out")),
            Self::IdLike { distinct, rows } => Some(format!(
                "`{name}` looks like an ID or free text ({distinct} distinct values in {rows} rows), which can't carry over to new rows, so it is left out unless you choose it as a feature"
            )),
        }
    }
}

/// Parses ISO 8601 dates (`2024-03-01`) and date-times (`2024-03-01T14:30:00`, a space instead of
/// `T`, optional seconds, fractions and a `Z` or offset).
pub fn parse_date(text: &str) -> Option<NaiveDateTime> {
    let t = text.trim();
    if t.len() < 10 {
        return None;
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0);
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(t) {
        return Some(dt.naive_utc());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t.trim_end_matches('Z'), f).ok())
}

/// The [`DATE_PARTS`] of one value; `None` when it is not a date.
pub fn date_parts(text: &str) -> Option<[f64; 5]> {
    let dt = parse_date(text)?;
    let days = dt.and_utc().timestamp() as f64 / 86_400.0;
    Some([
        dt.year() as f64,
        dt.month() as f64,
        dt.weekday().num_days_from_monday() as f64,
        dt.hour() as f64,
        days,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_date_times_become_parts() {
        assert_eq!(
            date_parts("2024-03-01"),
            Some([2024.0, 3.0, 4.0, 0.0, 19783.0])
        );
        let p = date_parts("2024-03-01T18:00:00Z").unwrap();
        assert_eq!((p[3], p[4]), (18.0, 19783.75));
        assert_eq!(date_parts("2024-03-01 06:30").map(|p| p[3]), Some(6.0));
        assert_eq!(date_parts("March 1st"), None);
        assert_eq!(date_parts("2024-13-01"), None);
    }

    #[test]
    fn ids_dates_and_constants_are_told_apart() {
        let ids = Series::new("id".into(), (0..100i64).collect::<Vec<_>>());
        assert!(matches!(
            FeatureAdvice::of(&ids),
            FeatureAdvice::IdLike {
                distinct: 100,
                rows: 100
            }
        ));
        let names = Series::new(
            "name".into(),
            (0..100)
                .map(|i| format!("passenger {i}"))
                .collect::<Vec<_>>(),
        );
        assert!(FeatureAdvice::of(&names).excluded_by_default());
        let measured = Series::new(
            "x".into(),
            (0..100i64).map(|i| i * 3 % 17).collect::<Vec<_>>(),
        );
        assert_eq!(FeatureAdvice::of(&measured), FeatureAdvice::Use);
        let dates = Series::new(
            "d".into(),
            (1..=28)
                .map(|d| format!("2024-02-{d:02}"))
                .collect::<Vec<_>>(),
        );
        assert_eq!(FeatureAdvice::of(&dates), FeatureAdvice::Date);
        let constant = Series::new("c".into(), vec![Some("a"), None, Some("a")]);
        assert_eq!(FeatureAdvice::of(&constant), FeatureAdvice::Constant);
        let empty = Series::new("e".into(), vec![None::<f64>, None]);
        assert_eq!(FeatureAdvice::of(&empty), FeatureAdvice::Empty);
        assert_eq!(
            FeatureAdvice::of(&Series::new("f".into(), vec![1.5, 1.5, 1.5])),
            FeatureAdvice::Constant
        );
    }
}
