//! Least squares and ridge regression, solved exactly in f64.
//!
//! The centred design matrix is factorised by Householder QR; the small triangular factor is then
//! solved through its SVD, which gives numpy's `lstsq` minimum-norm answer when columns are collinear
//! (one-hot columns, duplicated features) instead of dividing by zero.

use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

use crate::error::{Result, WickError};

/// A fitted linear model: `y = intercept + Σ coefficients[j] * x[j]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    pub coefficients: Vec<f64>,
    pub intercept: f64,
}

impl LinearFit {
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        self.intercept + row.iter().zip(&self.coefficients).map(|(x, c)| x * c).sum::<f64>()
    }
}

/// Fits `y ≈ X w + b` for a row-major `x` of `n_cols` columns. `ridge_alpha` penalises `‖w‖²` but not the
/// intercept, like scikit-learn's `Ridge`.
pub fn fit_least_squares(x: &[f64], n_cols: usize, y: &[f64], ridge_alpha: f64) -> Result<LinearFit> {
    let n_rows = y.len();
    if n_cols == 0 || x.len() != n_rows * n_cols {
        return Err(WickError::InvalidSpec(format!(
            "least squares needs a {n_rows}×{n_cols} matrix, got {} values",
            x.len()
        )));
    }
    if n_rows < 2 {
        return Err(WickError::InvalidSpec("least squares needs at least 2 rows".into()));
    }
    if !(ridge_alpha >= 0.0 && ridge_alpha.is_finite()) {
        return Err(WickError::InvalidSpec(format!("ridge alpha must be a finite number ≥ 0, got {ridge_alpha}")));
    }
    let mut x_mean = vec![0.0; n_cols];
    for row in x.chunks_exact(n_cols) {
        for (m, v) in x_mean.iter_mut().zip(row) {
            *m += v;
        }
    }
    x_mean.iter_mut().for_each(|m| *m /= n_rows as f64);
    let y_mean = y.iter().sum::<f64>() / n_rows as f64;

    // The ridge penalty is least squares on extra rows sqrt(alpha)·I with target 0.
    let extra = if ridge_alpha > 0.0 { n_cols } else { 0 };
    let mut a = DMatrix::<f64>::zeros(n_rows + extra, n_cols);
    let mut b = DVector::<f64>::zeros(n_rows + extra);
    for (i, row) in x.chunks_exact(n_cols).enumerate() {
        for j in 0..n_cols {
            a[(i, j)] = row[j] - x_mean[j];
        }
        b[i] = y[i] - y_mean;
    }
    for j in 0..extra {
        a[(n_rows + j, j)] = ridge_alpha.sqrt();
    }

    let qr = a.qr();
    let qt_b = qr.q().transpose() * &b;
    let r = qr.r();
    let svd = r.svd(true, true);
    let max_sv = svd.singular_values.max();
    let eps = max_sv * f64::EPSILON * (n_rows + extra).max(n_cols) as f64;
    let w = svd
        .solve(&qt_b, eps)
        .map_err(|e| WickError::InvalidSpec(format!("least squares could not be solved: {e}")))?;
    let coefficients: Vec<f64> = w.iter().copied().collect();
    if coefficients.iter().any(|c| !c.is_finite()) {
        return Err(WickError::InvalidSpec("least squares gave non-finite coefficients; check the features for extreme values".into()));
    }
    let intercept = y_mean - coefficients.iter().zip(&x_mean).map(|(c, m)| c * m).sum::<f64>();
    Ok(LinearFit { coefficients, intercept })
}

/// Appends powers 2..=degree of every column (no cross terms), keeping the original columns first.
pub fn polynomial_features(x: &[f64], n_cols: usize, degree: u32) -> (Vec<f64>, usize) {
    if degree <= 1 {
        return (x.to_vec(), n_cols);
    }
    let out_cols = n_cols * degree as usize;
    let mut out = Vec::with_capacity(x.len() / n_cols.max(1) * out_cols);
    for row in x.chunks_exact(n_cols) {
        out.extend_from_slice(row);
        for p in 2..=degree as i32 {
            out.extend(row.iter().map(|v| v.powi(p)));
        }
    }
    (out, out_cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_points() {
        let fit = fit_least_squares(&[1.0, 2.0, 3.0], 1, &[2.0, 3.0, 5.0], 0.0).unwrap();
        assert!((fit.coefficients[0] - 1.5).abs() < 1e-12);
        assert!((fit.intercept - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn collinear_columns_get_the_minimum_norm_answer() {
        // Column 2 duplicates column 1: numpy.linalg.lstsq splits the slope evenly (0.75, 0.75).
        let x = [1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        let fit = fit_least_squares(&x, 2, &[2.0, 3.0, 5.0], 0.0).unwrap();
        assert!((fit.coefficients[0] - 0.75).abs() < 1e-9, "{fit:?}");
        assert!((fit.coefficients[1] - 0.75).abs() < 1e-9, "{fit:?}");
    }

    #[test]
    fn polynomial_fits_a_parabola_exactly() {
        let xs: Vec<f64> = (0..10).map(|i| i as f64 / 3.0).collect();
        let ys: Vec<f64> = xs.iter().map(|x| 1.0 - 2.0 * x + 0.5 * x * x).collect();
        let (px, cols) = polynomial_features(&xs, 1, 2);
        let fit = fit_least_squares(&px, cols, &ys, 0.0).unwrap();
        assert!((fit.coefficients[0] + 2.0).abs() < 1e-9 && (fit.coefficients[1] - 0.5).abs() < 1e-9);
        assert!((fit.intercept - 1.0).abs() < 1e-9);
    }
}
