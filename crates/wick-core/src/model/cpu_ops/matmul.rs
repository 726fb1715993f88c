//! Checked, strided f32 matrix products on the `gemm` crate (the one candle's CPU matmul uses).
//!
//! Every product of the fused ops goes through [`matmul`], which checks each operand's extent
//! against its slice before handing raw pointers to `gemm`, so the ops themselves stay safe code.

use candle_core::{bail, Result};

/// A read-only strided view of an f32 matrix: element `(r, c)` is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Mat<'a> {
    /// A dense row-major `rows × cols` matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// One past the largest index the view reads.
    fn extent(&self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = a · b`, or `dst += a · b` when `accumulate`; `dst` is dense row-major `a.rows × b.cols`.
/// With `parallel`, the product is split over rayon's threads when it is large enough to gain from it.
pub(crate) fn matmul(
    dst: &mut [f32],
    a: Mat,
    b: Mat,
    accumulate: bool,
    parallel: bool,
) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k {
        bail!("matmul: inner dimensions differ ({m}×{k} · {}×{n})", b.rows);
    }
    if dst.len() < m * n || a.data.len() < a.extent() || b.data.len() < b.extent() {
        bail!("matmul: an operand is shorter than its shape ({m}×{k} · {k}×{n})");
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return Ok(());
    }
    let threads = if parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the extents checked above bound every index gemm reads (a, b) and writes (dst: rows of
    // n with column stride 1); the slices are borrowed for the call, so nothing else writes them.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        out
    }

    #[test]
    fn products_and_transposes_match_a_plain_loop() {
        let (m, k, n) = (37, 53, 29);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
        let want = naive(&a, &b, m, k, n);
        let mut got = vec![0.0; m * n];
        matmul(
            &mut got,
            Mat::rows(&a, m, k),
            Mat::rows(&b, k, n),
            false,
            true,
        )
        .unwrap();
        assert_eq!(got, want);
        // aᵀ stored as k × m, read through a transposed view; accumulating doubles the result.
        let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        matmul(
            &mut got,
            Mat::rows(&at, k, m).t(),
            Mat::rows(&b, k, n),
            true,
            false,
        )
        .unwrap();
        assert_eq!(got, want.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    }

    #[test]
    fn short_operands_are_refused() {
        let a = vec![0.0; 5];
        let mut dst = vec![0.0; 4];
        assert!(matmul(
            &mut dst,
            Mat::rows(&a, 2, 3),
            Mat::rows(&a, 3, 2),
            false,
            false
        )
        .is_err());
    }
}
