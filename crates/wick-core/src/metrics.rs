//! Evaluation metrics: MSE, RMSE, MAE and R² for regression; accuracy, per-class precision/recall/F1
//! and the confusion matrix for classification; Pearson correlation.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegressionMetrics {
    pub mse: f64,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
}

pub fn regression_metrics(actual: &[f64], predicted: &[f64]) -> RegressionMetrics {
    let n = actual.len().max(1) as f64;
    let mse = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p) * (a - p))
        .sum::<f64>()
        / n;
    let mae = actual
        .iter()
        .zip(predicted)
        .map(|(a, p)| (a - p).abs())
        .sum::<f64>()
        / n;
    let mean = actual.iter().sum::<f64>() / n;
    let ss_tot = actual.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>();
    let r2 = if ss_tot > 0.0 {
        1.0 - mse * n / ss_tot
    } else {
        0.0
    };
    RegressionMetrics {
        mse,
        rmse: mse.sqrt(),
        mae,
        r2,
    }
}

/// Pearson's r of (x, y) pairs; `None` when either side is constant or there are fewer than 3 pairs.
pub fn correlation(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.len() < 3 {
        return None;
    }
    let n = pairs.len() as f64;
    let (mx, my) = (
        pairs.iter().map(|p| p.0).sum::<f64>() / n,
        pairs.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    pub label: String,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub support: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationMetrics {
    pub accuracy: f64,
    pub per_class: Vec<ClassMetrics>,
    /// `confusion[actual][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

pub fn classification_metrics(
    labels: &[String],
    actual: &[usize],
    predicted: &[usize],
) -> ClassificationMetrics {
    let k = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&a, &p) in actual.iter().zip(predicted) {
        if a < k && p < k {
            confusion[a][p] += 1;
        }
    }
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let accuracy = correct as f64 / actual.len().max(1) as f64;
    let per_class = (0..k)
        .map(|c| {
            let tp = confusion[c][c] as f64;
            let predicted_c: usize = (0..k).map(|a| confusion[a][c]).sum();
            let support: usize = confusion[c].iter().sum();
            let precision = if predicted_c > 0 {
                tp / predicted_c as f64
            } else {
                0.0
            };
            let recall = if support > 0 {
                tp / support as f64
            } else {
                0.0
            };
            let f1 = if precision + recall > 0.0 {
                2.0 * precision * recall / (precision + recall)
            } else {
                0.0
            };
            ClassMetrics {
                label: labels[c].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect();
    ClassificationMetrics {
        accuracy,
        per_class,
        confusion,
    }
}

/// Metrics of one split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "task", rename_all = "lowercase")]
pub enum Metrics {
    Regression(RegressionMetrics),
    Classification(ClassificationMetrics),
}

impl Metrics {
    /// The headline number: R² for regression, accuracy for classification.
    pub fn headline(&self) -> (&'static str, f64) {
        match self {
            Self::Regression(m) => ("r2", m.r2),
            Self::Classification(m) => ("accuracy", m.accuracy),
        }
    }

    /// Flat (name, value) pairs, for events and tables.
    pub fn scalars(&self) -> Vec<(&'static str, f64)> {
        match self {
            Self::Regression(m) => vec![
                ("mse", m.mse),
                ("rmse", m.rmse),
                ("mae", m.mae),
                ("r2", m.r2),
            ],
            Self::Classification(m) => {
                let macro_f1 =
                    m.per_class.iter().map(|c| c.f1).sum::<f64>() / m.per_class.len().max(1) as f64;
                vec![("accuracy", m.accuracy), ("macro_f1", macro_f1)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn correlation_of_a_line_noise_and_constants() {
        let falling: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 3.0 - 2.0 * i as f64)).collect();
        assert!((correlation(&falling).unwrap() + 1.0).abs() < 1e-12);
        // numpy.corrcoef([0, 1, 2, 3], [1, 3, 2, 5])[0, 1] = 0.8315218406202999
        let four = [(0.0, 1.0), (1.0, 3.0), (2.0, 2.0), (3.0, 5.0)];
        assert!((correlation(&four).unwrap() - 0.8315218406202999).abs() < 1e-12);
        let constant: Vec<(f64, f64)> = (0..50).map(|i| (1.0, i as f64)).collect();
        assert_eq!(correlation(&constant), None);
        assert_eq!(correlation(&falling[..2]), None);
    }

    #[test]
    fn regression_metrics_by_hand() {
        let m = regression_metrics(&[1.0, 2.0, 3.0], &[1.0, 2.0, 4.0]);
        assert!((m.mse - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.mae - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.r2 - 0.5).abs() < 1e-12, "1 - (1/3·3)/2");
    }

    #[test]
    fn classification_metrics_by_hand() {
        let labels = vec!["a".to_string(), "b".to_string()];
        let m = classification_metrics(&labels, &[0, 0, 1, 1], &[0, 1, 1, 1]);
        assert_eq!(m.confusion, vec![vec![1, 1], vec![0, 2]]);
        assert!((m.accuracy - 0.75).abs() < 1e-12);
        assert!((m.per_class[1].precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((m.per_class[0].recall - 0.5).abs() < 1e-12);
    }
}
