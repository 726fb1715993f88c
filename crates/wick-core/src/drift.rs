//! What a table model's training data looked like, kept in its manifest, and how far live inputs
//! have moved from it: the population stability index (PSI) per feature and for the predictions.
//!
//! A numeric feature is profiled as the shares of its training values in ten bins between its
//! deciles (plus the share missing); a text feature as the shares of its 20 most frequent values,
//! the rest as one "other" (plus missing). PSI = Σ (live − training) · ln(live / training) over the
//! bins, each share floored at 1e-4 so an empty bin counts without dividing by zero. Above
//! [`DRIFT_PSI`] a feature is drifting: the rule of thumb of credit scoring, where the index comes
//! from (below 0.1 stable, 0.1–0.2 a moderate shift, above 0.2 a significant one).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::data::{RawColumn, TargetValues};

/// PSI above which a feature (or the predictions) counts as drifting.
pub const DRIFT_PSI: f64 = 0.2;
/// Live values needed before drift is judged. With ten bins, a handful of values puts most bins at
/// zero and the index in the several units whatever the traffic (eight identical requests scored
/// 8.x on every feature); a hundred gives each decile bin ten values on average.
pub const MIN_DRIFT_ROWS: usize = 100;

/// Whether an index computed from `rows` live values says the feature is drifting.
pub fn is_drifting(psi: f64, rows: usize) -> bool {
    rows >= MIN_DRIFT_ROWS && psi > DRIFT_PSI
}
/// Text values profiled one by one; the rest share a bin.
const TOP_VALUES: usize = 20;
const BINS: usize = 10;
const FLOOR: f64 = 1e-4;

/// One column's training distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Profile {
    /// `edges` are the bins' inner bounds (a value `v` falls in the first bin whose edge exceeds it);
    /// `shares` has one more entry than `edges`.
    Numeric {
        edges: Vec<f64>,
        shares: Vec<f64>,
        missing: f64,
    },
    /// The most frequent values' shares; `other` for the rest.
    Categorical {
        shares: BTreeMap<String, f64>,
        other: f64,
        missing: f64,
    },
}

/// A feature's name and training distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProfile {
    pub name: String,
    pub profile: Profile,
}

/// A table model's training data: each numeric or text feature, and the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingProfile {
    pub features: Vec<FeatureProfile>,
    pub target: Profile,
}

/// One live value of a feature (or a prediction).
#[derive(Debug, Clone, PartialEq)]
pub enum LiveValue {
    Number(f64),
    Text(String),
    Missing,
}

impl TrainingProfile {
    /// The profile of `rows` (the training rows) of a prepared table. Dates are left out: their
    /// values move with time by nature.
    pub fn of(features: &[(String, RawColumn)], target: &TargetValues, rows: &[usize]) -> Self {
        let features = features
            .iter()
            .filter_map(|(name, column)| {
                let profile = match column {
                    RawColumn::Numeric(v) => numeric(rows.iter().map(|&r| v[r])),
                    RawColumn::Text(v) => categorical(rows.iter().map(|&r| v[r].as_deref())),
                    RawColumn::Date(_) => return None,
                };
                Some(FeatureProfile {
                    name: name.clone(),
                    profile,
                })
            })
            .collect();
        let target = match target {
            TargetValues::Regression(y) => numeric(rows.iter().map(|&r| Some(y[r]))),
            TargetValues::Classification { labels, classes } => categorical(
                rows.iter()
                    .map(|&r| labels.get(classes[r]).map(String::as_str)),
            ),
        };
        Self { features, target }
    }
}

fn numeric(values: impl Iterator<Item = Option<f64>>) -> Profile {
    let mut seen = 0usize;
    let mut finite: Vec<f64> = Vec::new();
    for v in values {
        seen += 1;
        if let Some(x) = v.filter(|x| x.is_finite()) {
            finite.push(x);
        }
    }
    finite.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..BINS)
        .filter_map(|i| finite.get(i * finite.len() / BINS).copied())
        .collect();
    edges.dedup();
    let mut counts = vec![0usize; edges.len() + 1];
    for &x in &finite {
        counts[bin_of(&edges, x)] += 1;
    }
    let n = seen.max(1) as f64;
    Profile::Numeric {
        shares: counts.iter().map(|&c| c as f64 / n).collect(),
        missing: (seen - finite.len()) as f64 / n,
        edges,
    }
}

fn categorical<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Profile {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut seen, mut missing) = (0usize, 0usize);
    for v in values {
        seen += 1;
        match v {
            Some(s) => *counts.entry(s).or_default() += 1,
            None => missing += 1,
        }
    }
    let mut ranked: Vec<(&str, usize)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let n = seen.max(1) as f64;
    let kept: usize = ranked.iter().take(TOP_VALUES).map(|(_, c)| c).sum();
    Profile::Categorical {
        shares: ranked
            .iter()
            .take(TOP_VALUES)
            .map(|(s, c)| (s.to_string(), *c as f64 / n))
            .collect(),
        other: (seen - missing - kept) as f64 / n,
        missing: missing as f64 / n,
    }
}

fn bin_of(edges: &[f64], x: f64) -> usize {
    edges.partition_point(|&e| e <= x)
}

impl Profile {
    /// The PSI of `live` values against this training distribution; `None` without live values.
    pub fn psi(&self, live: &[LiveValue]) -> Option<f64> {
        if live.is_empty() {
            return None;
        }
        let n = live.len() as f64;
        let (training, counts): (Vec<f64>, Vec<usize>) = match self {
            Self::Numeric {
                edges,
                shares,
                missing,
            } => {
                let mut counts = vec![0usize; shares.len() + 1];
                for v in live {
                    let i = match v {
                        LiveValue::Number(x) if x.is_finite() => bin_of(edges, *x),
                        // A number model given text it can't read counts as missing.
                        _ => shares.len(),
                    };
                    counts[i] += 1;
                }
                (shares.iter().copied().chain([*missing]).collect(), counts)
            }
            Self::Categorical {
                shares,
                other,
                missing,
            } => {
                let keys: Vec<&String> = shares.keys().collect();
                let mut counts = vec![0usize; keys.len() + 2];
                for v in live {
                    let i = match v {
                        LiveValue::Missing => keys.len() + 1,
                        LiveValue::Text(s) => {
                            keys.iter().position(|k| *k == s).unwrap_or(keys.len())
                        }
                        LiveValue::Number(x) => keys
                            .iter()
                            .position(|k| k.parse::<f64>().ok() == Some(*x))
                            .unwrap_or(keys.len()),
                    };
                    counts[i] += 1;
                }
                (
                    shares.values().copied().chain([*other, *missing]).collect(),
                    counts,
                )
            }
        };
        Some(
            training
                .iter()
                .zip(&counts)
                .map(|(&t, &c)| {
                    let (t, l) = (t.max(FLOOR), (c as f64 / n).max(FLOOR));
                    (l - t) * (l / t).ln()
                })
                .sum(),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;

    fn numbers(v: &[f64]) -> Vec<LiveValue> {
        v.iter().map(|&x| LiveValue::Number(x)).collect()
    }

    #[test]
    fn psi_matches_the_formula_and_flags_a_shift() {
        let train: Vec<Option<f64>> = (0..1000).map(|i| Some(i as f64)).collect();
        let p = numeric(train.iter().copied());
        let Profile::Numeric {
            edges,
            shares,
            missing,
        } = &p
        else {
            panic!()
        };
        assert_eq!(edges.len(), 9);
        assert!(shares.iter().all(|s| (s - 0.1).abs() < 1e-12) && *missing == 0.0);
        // The same distribution: no drift.
        let same = numbers(&(0..1000).map(|i| i as f64).collect::<Vec<_>>());
        assert!(p.psi(&same).unwrap().abs() < 1e-9);
        // Everything in the top bin: Σ over nine empty bins of (1e-4 − 0.1)·ln(1e-4/0.1) and the top
        // bin's (1 − 0.1)·ln(1/0.1) (computed by hand), far above the threshold.
        let shifted = numbers(&[950.0; 100]);
        let want = 9.0 * (1e-4f64 - 0.1) * (1e-4f64 / 0.1).ln() + 0.9 * 10f64.ln();
        assert!((p.psi(&shifted).unwrap() - want).abs() < 1e-9);
        assert!(want > DRIFT_PSI);
    }

    #[test]
    fn text_values_beyond_the_top_share_one_bin() {
        let values: Vec<Option<String>> = (0..100)
            .map(|i| {
                Some(if i < 60 {
                    "rain".to_string()
                } else {
                    format!("v{i}")
                })
            })
            .chain([None])
            .collect();
        let p = categorical(values.iter().map(|v| v.as_deref()));
        let Profile::Categorical {
            shares,
            other,
            missing,
        } = &p
        else {
            panic!()
        };
        assert_eq!(shares.len(), TOP_VALUES);
        assert!((shares["rain"] - 60.0 / 101.0).abs() < 1e-12);
        assert!((other - 21.0 / 101.0).abs() < 1e-12 && (missing - 1.0 / 101.0).abs() < 1e-12);
        let live = vec![LiveValue::Text("rain".into()); 10];
        assert!(p.psi(&live).unwrap() > DRIFT_PSI, "only rain: a shift");
        assert_eq!(p.psi(&[]), None);
    }
}
