//! k-fold cross-validation of a table model: every row is tested once, by a model that never saw
//! it. Folds are stratified by class for classification and seeded like every split.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{prepare_tabular, Split, TargetValues};
use crate::error::{Result, WickError};
use crate::metrics::Metrics;
use crate::model::ModelSpec;
use crate::train::events::{CancelToken, TrainEvent, TrainObserver};
use crate::train::table_data::TableData;
use crate::train::{train_table, TrainConfig};

/// One metric over the folds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FoldStat {
    pub name: String,
    pub mean: f64,
    /// Sample standard deviation over the folds.
    pub sd: f64,
}

/// The outcome of a cross-validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CvReport {
    pub folds: usize,
    /// Each fold's metrics on its held-out rows.
    pub fold_metrics: Vec<Metrics>,
    /// Mean ± sd of every scalar metric.
    pub stats: Vec<FoldStat>,
    pub warnings: Vec<String>,
}

/// The `k` folds' row sets: every row in exactly one fold; with `classes`, each class dealt round
/// the folds in a seeded order, so every fold has each class's share.
pub fn fold_rows(n: usize, classes: Option<&[usize]>, k: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let k = k.max(1);
    let mut folds = vec![Vec::new(); k];
    let groups = crate::data::split::class_groups(n, classes);
    // Continue dealing where the last class stopped, so small classes don't all start in fold 1.
    let mut next = 0;
    for mut rows in groups {
        rows.shuffle(&mut rng);
        for row in rows {
            folds[next % k].push(row);
            next += 1;
        }
    }
    folds.iter_mut().for_each(|f| f.sort_unstable());
    folds
}

/// Cross-validates `spec` on the table with `k` folds. Each fold's model trains on the other folds
/// (less `config.split.valid` of them for early stopping) and is scored on its own fold. Events
/// of every fold go to `observer`, each fold's run between its `Started` and `Finished`.
pub fn cross_validate(
    table: TableData<'_>,
    spec: &ModelSpec,
    config: &TrainConfig,
    k: usize,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<CvReport> {
    if k < 2 {
        return Err(WickError::InvalidSpec(format!(
            "cross-validation needs at least 2 folds, got {k}"
        )));
    }
    let dataset = prepare_tabular(table.df, table.request)?;
    let n = dataset.rows();
    if n < 2 * k {
        return Err(WickError::InvalidSpec(format!(
            "{n} rows are too few for {k} folds; use fewer folds (at least 2 rows per fold)"
        )));
    }
    let mut warnings = Vec::new();
    if let TargetValues::Classification { labels, classes } = &dataset.target {
        for (c, label) in labels.iter().enumerate() {
            let count = classes.iter().filter(|&&x| x == c).count();
            if count < k {
                warnings.push(format!(
                    "class `{label}` has {count} rows, fewer than the {k} folds: some folds are tested without it, and its metrics rest on very few rows"
                ));
            }
        }
    }
    let folds = fold_rows(n, dataset.target.class_indices(), k, config.seed);
    let mut fold_metrics = Vec::with_capacity(k);
    for (i, test) in folds.iter().enumerate() {
        if cancel.is_cancelled() {
            observer.on_event(TrainEvent::Cancelled);
            return Err(WickError::Cancelled);
        }
        // The validation rows come from the training folds, as a fraction of them.
        let mut rest: Vec<usize> = folds
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .flat_map(|(_, f)| f.iter().copied())
            .collect();
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(i as u64 + 1));
        rest.shuffle(&mut rng);
        let n_valid = (rest.len() as f64 * config.split.valid).round() as usize;
        let mut valid = rest[..n_valid.min(rest.len().saturating_sub(2))].to_vec();
        let mut train = rest[valid.len()..].to_vec();
        valid.sort_unstable();
        train.sort_unstable();
        let fold_config = TrainConfig {
            fixed_split: Some(Split {
                train,
                valid,
                test: test.clone(),
            }),
            ..config.clone()
        };
        let outcome = train_table(table, spec, &fold_config, observer, cancel)?;
        let metrics = outcome
            .report
            .test
            .ok_or_else(|| WickError::InvalidSpec(format!("fold {} has no test rows", i + 1)))?;
        fold_metrics.push(metrics);
    }
    Ok(CvReport {
        folds: k,
        stats: fold_stats(&fold_metrics),
        fold_metrics,
        warnings,
    })
}

fn fold_stats(folds: &[Metrics]) -> Vec<FoldStat> {
    let Some(first) = folds.first() else {
        return Vec::new();
    };
    first
        .scalars()
        .iter()
        .map(|(name, _)| {
            let values: Vec<f64> = folds
                .iter()
                .filter_map(|m| m.scalars().iter().find(|(n, _)| n == name).map(|(_, v)| *v))
                .collect();
            let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
            let sd = if values.len() > 1 {
                (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64)
                    .sqrt()
            } else {
                0.0
            };
            FoldStat {
                name: name.to_string(),
                mean,
                sd,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_cover_every_row_once_and_keep_class_shares() {
        let classes: Vec<usize> = (0..103).map(|i| usize::from(i % 10 == 0)).collect();
        let folds = fold_rows(103, Some(&classes), 5, 3);
        let mut all: Vec<usize> = folds.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        for f in &folds {
            assert!((20..=21).contains(&f.len()), "{}", f.len());
            let minority = f.iter().filter(|&&r| classes[r] == 1).count();
            assert!(
                (2..=3).contains(&minority),
                "each fold gets its share of the 11 minority rows: {minority}"
            );
        }
        assert_eq!(folds, fold_rows(103, Some(&classes), 5, 3), "seeded");
    }
}
