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
        self.intercept
            + row
                .iter()
                .zip(&self.coefficients)
                .map(|(x, c)| x * c)
                .sum::<f64>()
    }
}

/// Fits `y ≈ X w + b` for a row-major `x` of `n_cols` columns. `ridge_alpha` penalises `‖w‖²` but not the
/// intercept, like scikit-learn's `Ridge`.
pub fn fit_least_squares(
    x: &[f64],
    n_cols: usize,
    y: &[f64],
    ridge_alpha: f64,
) -> Result<LinearFit> {
    let n_rows = y.len();
    if n_cols == 0 || x.len() != n_rows * n_cols {
        return Err(WickError::InvalidSpec(format!(
            "least squares needs a {n_rows}×{n_cols} matrix, got {} values",
            x.len()
        )));
    }
    if n_rows < 2 {
        return Err(WickError::InvalidSpec(
            "least squares needs at least 2 rows".into(),
        ));
    }
    if !(ridge_alpha >= 0.0 && ridge_alpha.is_finite()) {
        return Err(WickError::InvalidSpec(format!(
            "ridge alpha must be a finite number ≥ 0, got {ridge_alpha}"
        )));
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
        return Err(WickError::InvalidSpec(
            "least squares gave non-finite coefficients; check the features for extreme values"
                .into(),
        ));
    }
    let intercept = y_mean
        - coefficients
            .iter()
            .zip(&x_mean)
            .map(|(c, m)| c * m)
            .sum::<f64>();
    Ok(LinearFit {
        coefficients,
        intercept,
    })
}

/// Least squares over rows that arrive in batches (a file too large to hold): the sums
/// `Σx`, `Σy`, `ΣxxT`, `Σxy`, `Σy²` of the rows shifted by the first batch's means, so the
/// centred sums stay accurate; solved once at the end. Memory is `n_cols²`, whatever the rows.
#[derive(Debug, Clone)]
pub struct NormalEquations {
    n_cols: usize,
    rows: u64,
    shift_x: Vec<f64>,
    shift_y: f64,
    sum_x: DVector<f64>,
    sum_y: f64,
    xtx: DMatrix<f64>,
    xty: DVector<f64>,
    yty: f64,
}

/// Rows per block whose sums one thread computes.
const SUM_BLOCK_ROWS: usize = 8192;

impl NormalEquations {
    pub fn new(n_cols: usize) -> Self {
        Self {
            n_cols,
            rows: 0,
            shift_x: Vec::new(),
            shift_y: 0.0,
            sum_x: DVector::zeros(n_cols),
            sum_y: 0.0,
            xtx: DMatrix::zeros(n_cols, n_cols),
            xty: DVector::zeros(n_cols),
            yty: 0.0,
        }
    }

    /// Rows added so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds the rows of a row-major `x` (`n_cols` columns) and their targets `y`.
    pub fn add(&mut self, x: &[f64], y: &[f64]) -> Result<()> {
        use rayon::prelude::*;
        let n_cols = self.n_cols;
        if n_cols == 0 || x.len() != y.len() * n_cols {
            return Err(WickError::InvalidSpec(format!(
                "least squares needs a {}×{n_cols} matrix, got {} values",
                y.len(),
                x.len()
            )));
        }
        if y.is_empty() {
            return Ok(());
        }
        if self.rows == 0 {
            let n = y.len() as f64;
            self.shift_x = (0..n_cols)
                .map(|j| x.iter().skip(j).step_by(n_cols).sum::<f64>() / n)
                .collect();
            self.shift_y = y.iter().sum::<f64>() / n;
        }
        let (shift_x, shift_y) = (&self.shift_x, self.shift_y);
        let blocks: Vec<Self> = x
            .par_chunks(SUM_BLOCK_ROWS * n_cols)
            .zip(y.par_chunks(SUM_BLOCK_ROWS))
            .map(|(xb, yb)| {
                let a = DMatrix::from_fn(yb.len(), n_cols, |i, j| xb[i * n_cols + j] - shift_x[j]);
                let b = DVector::from_iterator(yb.len(), yb.iter().map(|v| v - shift_y));
                Self {
                    sum_x: a.row_sum().transpose(),
                    sum_y: b.sum(),
                    xtx: a.tr_mul(&a),
                    xty: a.tr_mul(&b),
                    yty: b.dot(&b),
                    ..Self::new(n_cols)
                }
            })
            .collect();
        for block in blocks {
            self.sum_x += block.sum_x;
            self.sum_y += block.sum_y;
            self.xtx += block.xtx;
            self.xty += block.xty;
            self.yty += block.yty;
        }
        self.rows += y.len() as u64;
        Ok(())
    }

    /// The fit, with `ridge_alpha` as in [`fit_least_squares`], and the training rows' mean squared
    /// error and R², from the same sums. Collinear columns get the minimum-norm answer, as there.
    pub fn solve(&self, ridge_alpha: f64) -> Result<(LinearFit, f64, f64)> {
        if self.rows < 2 {
            return Err(WickError::InvalidSpec(
                "least squares needs at least 2 rows".into(),
            ));
        }
        if !(ridge_alpha >= 0.0 && ridge_alpha.is_finite()) {
            return Err(WickError::InvalidSpec(format!(
                "ridge alpha must be a finite number ≥ 0, got {ridge_alpha}"
            )));
        }
        let n = self.rows as f64;
        let mean_x = &self.sum_x / n;
        let mean_y = self.sum_y / n;
        // Centred sums: Σ(x-x̄)(x-x̄)ᵀ, Σ(x-x̄)(y-ȳ), Σ(y-ȳ)².
        let cxx = &self.xtx - (&mean_x * mean_x.transpose()) * n;
        let cxy = &self.xty - &mean_x * (mean_y * n);
        let syy = self.yty - mean_y * mean_y * n;
        let mut system = cxx.clone();
        for j in 0..self.n_cols {
            system[(j, j)] += ridge_alpha;
        }
        // A pseudo-inverse through the eigenvalues: directions the rows never span (collinear
        // columns) get no weight, like lstsq's cut-off on singular values.
        let eig = system.symmetric_eigen();
        let max = eig.eigenvalues.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let cut = max * 1e-10;
        let proj = eig.eigenvectors.transpose() * &cxy;
        let scaled = DVector::from_iterator(
            self.n_cols,
            proj.iter()
                .zip(eig.eigenvalues.iter())
                .map(|(p, l)| if *l > cut { p / l } else { 0.0 }),
        );
        let w = &eig.eigenvectors * scaled;
        if w.iter().any(|c| !c.is_finite()) {
            return Err(WickError::InvalidSpec(
                "least squares gave non-finite coefficients; check the features for extreme values"
                    .into(),
            ));
        }
        // Σ(y-ŷ)² = Σ(y-ȳ)² − 2wᵀcxy + wᵀcxx w.
        let sse = (syy - 2.0 * w.dot(&cxy) + (w.transpose() * &cxx * &w)[(0, 0)]).max(0.0);
        let mse = sse / n;
        let r2 = if syy > 0.0 { 1.0 - sse / syy } else { 0.0 };
        let coefficients: Vec<f64> = w.iter().copied().collect();
        let intercept = (mean_y + self.shift_y)
            - coefficients
                .iter()
                .zip(mean_x.iter().zip(&self.shift_x))
                .map(|(c, (m, s))| c * (m + s))
                .sum::<f64>();
        Ok((
            LinearFit {
                coefficients,
                intercept,
            },
            mse,
            r2,
        ))
    }
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
        assert!(
            (fit.coefficients[0] + 2.0).abs() < 1e-9 && (fit.coefficients[1] - 0.5).abs() < 1e-9
        );
        assert!((fit.intercept - 1.0).abs() < 1e-9);
    }

    /// Rows fed in three batches give the QR fit of all of them at once (which matches numpy's
    /// lstsq in tests/references), collinear columns and ridge included, and the same training error.
    #[test]
    fn batched_sums_give_the_least_squares_fit() {
        let rows = 500;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..rows {
            let (a, b) = (
                (i as f64 * 0.37).sin() * 3.0 + 100.0,
                (i as f64 * 0.11).cos(),
            );
            // Column 3 is column 1 again; the offset of 100 checks the shifted sums.
            x.extend([a, b, a]);
            y.push(2.0 * a - 4.0 * b + 0.3 * (i as f64 * 1.7).sin());
        }
        for alpha in [0.0, 2.5] {
            let exact = fit_least_squares(&x, 3, &y, alpha).unwrap();
            let mut sums = NormalEquations::new(3);
            for (xb, yb) in x.chunks(3 * 170).zip(y.chunks(170)) {
                sums.add(xb, yb).unwrap();
            }
            let (fit, mse, r2) = sums.solve(alpha).unwrap();
            for (c, e) in fit.coefficients.iter().zip(&exact.coefficients) {
                assert!((c - e).abs() < 1e-7, "alpha {alpha}: {fit:?} vs {exact:?}");
            }
            assert!(
                (fit.intercept - exact.intercept).abs() < 1e-5,
                "alpha {alpha}: {fit:?} vs {exact:?}"
            );
            let residuals: Vec<f64> = x
                .chunks(3)
                .zip(&y)
                .map(|(r, v)| v - exact.predict_row(r))
                .collect();
            let exact_mse = residuals.iter().map(|r| r * r).sum::<f64>() / rows as f64;
            assert!(
                (mse - exact_mse).abs() < 1e-8 * exact_mse.max(1.0),
                "{mse} vs {exact_mse}"
            );
            assert!(r2 > 0.99 && r2 <= 1.0);
            assert_eq!(sums.rows(), rows as u64);
        }
    }
}
