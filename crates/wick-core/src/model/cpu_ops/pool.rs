//! Max-pooling (window = stride, PyTorch's floor mode) with its own backward, on the CPU: the
//! position of each window's maximum is kept from the forward pass, so the backward pass is one
//! scatter. It is fused into the convolution when it follows one (see `conv`), and a separate op
//! otherwise (after batch norm, say).
//!
//! The gradient goes to the first maximum of a window, as in PyTorch. Candle 0.11's own max-pool
//! backward instead scales the gradient by the share of tied maxima in the window, so a unique
//! maximum of a 2×2 window gets a quarter of it; the tests check this op against finite differences.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{cpu_slice, relu, F32View};

/// A max-pooling window: `size × size`, moved by `stride`, over an input padded by `padding` on each
/// side (padding never wins: PyTorch's −∞), with PyTorch's floor mode for the output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MaxPool {
    pub size: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPool {
    /// Windows that tile the input: stride = size, no padding (Wick's `MaxPool2d` layer).
    pub const fn tiling(size: usize) -> Self {
        Self {
            size,
            stride: size,
            padding: 0,
        }
    }

    /// The output length along a dimension of `n`, if the window fits.
    pub fn out_len(&self, n: usize) -> Option<usize> {
        let padded = n + 2 * self.padding;
        if self.size == 0 || self.stride == 0 || 2 * self.padding > self.size || padded < self.size
        {
            return None;
        }
        Some((padded - self.size) / self.stride + 1)
    }
}

/// Pools one `h × w` plane with `size × size` windows into `out` (`h/size × w/size`), adding `bias`
/// to each value first and applying ReLU after; `argmax` receives each maximum's position in the plane.
///
/// One output row at a time, visiting each window's elements in PyTorch's order (row by row) for all
/// windows of the row together, with branch-free selects the compiler vectorises.
#[allow(clippy::too_many_arguments)] // one plane's geometry; a struct would only rename these
pub(super) fn pool_plane_forward(
    plane: &[f32],
    h: usize,
    w: usize,
    pool: MaxPool,
    bias: f32,
    apply_relu: bool,
    out: &mut [f32],
    argmax: Option<&mut [u32]>,
) {
    if pool.stride != pool.size || pool.padding != 0 {
        return pool_overlapping(plane, h, w, pool, bias, apply_relu, out, argmax);
    }
    // A window size known at compile time turns the strided reads into vector shuffles.
    match pool.size {
        2 => pool_rows::<2>(plane, h, w, 2, bias, apply_relu, out, argmax),
        3 => pool_rows::<3>(plane, h, w, 3, bias, apply_relu, out, argmax),
        size => pool_rows::<0>(plane, h, w, size, bias, apply_relu, out, argmax),
    }
}

/// [`pool_plane_forward`] for windows of `S` (or of `size` when `S` is 0).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pool_rows<const S: usize>(
    plane: &[f32],
    h: usize,
    w: usize,
    size: usize,
    bias: f32,
    apply_relu: bool,
    out: &mut [f32],
    mut argmax: Option<&mut [u32]>,
) {
    let size = if S > 0 { S } else { size };
    let (qh, qw) = (h / size, w / size);
    let mut best = vec![f32::NEG_INFINITY; qw];
    let mut at = vec![0u32; qw];
    for py in 0..qh {
        best.fill(f32::NEG_INFINITY);
        for (px, a) in at.iter_mut().enumerate() {
            *a = (py * size * w + px * size) as u32;
        }
        for i in 0..size {
            let row_start = (py * size + i) * w;
            let row = &plane[row_start..row_start + qw * size];
            for j in 0..size {
                let first = (row_start + j) as u32;
                // `windows[px][j]` with `j < size` known in bounds: no checks in the loop.
                for (px, ((b, a), window)) in best
                    .iter_mut()
                    .zip(at.iter_mut())
                    .zip(row.chunks_exact(size))
                    .enumerate()
                {
                    let v = window[j] + bias;
                    // As PyTorch: a later value wins only if larger, and NaN propagates.
                    (*b, *a) = select(
                        v > *b || v.is_nan(),
                        (v, first + (px * size) as u32),
                        (*b, *a),
                    );
                }
            }
        }
        let out_row = &mut out[py * qw..(py + 1) * qw];
        for (o, &b) in out_row.iter_mut().zip(&best) {
            *o = if apply_relu { relu(b) } else { b };
        }
        if let Some(argmax) = argmax.as_deref_mut() {
            argmax[py * qw..(py + 1) * qw].copy_from_slice(&at);
        }
    }
}

/// [`pool_plane_forward`] for windows that overlap or reach into padding (a ResNet's stem).
///
/// Separably: each input row's maximum over every window's columns first, then the maximum over
/// each window's rows. Taking a later value only when it is strictly larger (or NaN) in both passes
/// finds the same element as PyTorch's scan of each window row by row.
#[allow(clippy::too_many_arguments)]
fn pool_overlapping(
    plane: &[f32],
    h: usize,
    w: usize,
    pool: MaxPool,
    bias: f32,
    apply_relu: bool,
    out: &mut [f32],
    mut argmax: Option<&mut [u32]>,
) {
    let (Some(qh), Some(qw)) = (pool.out_len(h), pool.out_len(w)) else {
        return;
    };
    if argmax.is_none() {
        return pool_overlapping_values(plane, h, w, pool, (qh, qw), bias, apply_relu, out);
    }
    let span = |o: usize, n: usize| {
        let start = (o * pool.stride).saturating_sub(pool.padding);
        let end = (o * pool.stride + pool.size)
            .saturating_sub(pool.padding)
            .min(n);
        start..end
    };
    let col_spans: Vec<_> = (0..qw).map(|px| span(px, w)).collect();
    // Per input row: each window's maximum over its columns, and where it is (the position in the
    // plane). The row is copied between −∞ padding so every window reads in bounds, without branches.
    let mut row_best = vec![f32::NEG_INFINITY; h * qw];
    let mut row_at = vec![0u32; h * qw];
    let padded_len = (qw - 1) * pool.stride + pool.size;
    let mut padded = vec![f32::NEG_INFINITY; padded_len.max(w + pool.padding)];
    for y in 0..h {
        padded[pool.padding..pool.padding + w].copy_from_slice(&plane[y * w..(y + 1) * w]);
        let (rb, ra) = (
            &mut row_best[y * qw..(y + 1) * qw],
            &mut row_at[y * qw..(y + 1) * qw],
        );
        for (a, cols) in ra.iter_mut().zip(&col_spans) {
            *a = (y * w + cols.start) as u32;
        }
        for j in 0..pool.size {
            // Padded column px·stride + j is input column px·stride + j − padding.
            let base = (y * w + j) as i64 - pool.padding as i64;
            for (px, (b, a)) in rb.iter_mut().zip(ra.iter_mut()).enumerate() {
                let v = padded[px * pool.stride + j];
                (*b, *a) = select(
                    v > *b || v.is_nan(),
                    (v, (base + (px * pool.stride) as i64) as u32),
                    (*b, *a),
                );
            }
        }
    }
    for py in 0..qh {
        let rows = span(py, h);
        let out_row = &mut out[py * qw..(py + 1) * qw];
        let mut best = vec![f32::NEG_INFINITY; qw];
        let mut at: Vec<u32> = col_spans
            .iter()
            .map(|c| (rows.start * w + c.start) as u32)
            .collect();
        for y in rows {
            let (rb, ra) = (
                &row_best[y * qw..(y + 1) * qw],
                &row_at[y * qw..(y + 1) * qw],
            );
            for (((b, a), &v), &va) in best.iter_mut().zip(at.iter_mut()).zip(rb).zip(ra) {
                (*b, *a) = select(v > *b || v.is_nan(), (v, va), (*b, *a));
            }
        }
        for (o, &b) in out_row.iter_mut().zip(&best) {
            let v = b + bias;
            *o = if apply_relu { relu(v) } else { v };
        }
        if let Some(argmax) = argmax.as_deref_mut() {
            argmax[py * qw..(py + 1) * qw].copy_from_slice(&at);
        }
    }
}

/// [`pool_overlapping`] without the positions of the maxima (nothing will run backward through
/// it: a frozen backbone), as plain maxima the compiler vectorises.
#[allow(clippy::too_many_arguments)]
fn pool_overlapping_values(
    plane: &[f32],
    h: usize,
    w: usize,
    pool: MaxPool,
    (qh, qw): (usize, usize),
    bias: f32,
    apply_relu: bool,
    out: &mut [f32],
) {
    // Either operand NaN gives NaN, as PyTorch's max-pool propagates it.
    let max = |a: f32, b: f32| if a > b || a.is_nan() { a } else { b };
    let mut row_best = vec![f32::NEG_INFINITY; h * qw];
    let mut padded =
        vec![f32::NEG_INFINITY; ((qw - 1) * pool.stride + pool.size).max(w + pool.padding)];
    for y in 0..h {
        padded[pool.padding..pool.padding + w].copy_from_slice(&plane[y * w..(y + 1) * w]);
        let rb = &mut row_best[y * qw..(y + 1) * qw];
        for j in 0..pool.size {
            for (px, b) in rb.iter_mut().enumerate() {
                *b = max(*b, padded[px * pool.stride + j]);
            }
        }
    }
    for py in 0..qh {
        let rows = (py * pool.stride).saturating_sub(pool.padding)
            ..(py * pool.stride + pool.size)
                .saturating_sub(pool.padding)
                .min(h);
        let out_row = &mut out[py * qw..(py + 1) * qw];
        out_row.fill(f32::NEG_INFINITY);
        for y in rows {
            for (o, &v) in out_row.iter_mut().zip(&row_best[y * qw..(y + 1) * qw]) {
                *o = max(*o, v);
            }
        }
        for o in out_row.iter_mut() {
            let v = *o + bias;
            *o = if apply_relu { relu(v) } else { v };
        }
    }
}

/// `new` if `take`, else `old`, as bit masks: the compiler turns `if` selects in these loops into
/// branches, which mispredict on about half of all comparisons of random data.
#[inline(always)]
fn select(take: bool, new: (f32, u32), old: (f32, u32)) -> (f32, u32) {
    let mask = (take as u32).wrapping_neg();
    (
        f32::from_bits((new.0.to_bits() & mask) | (old.0.to_bits() & !mask)),
        (new.1 & mask) | (old.1 & !mask),
    )
}

/// Scatters one pooled plane's gradient to the positions of its maxima in `dplane` (zeroed here),
/// masked by ReLU's derivative when `apply_relu`; returns the sum of what was passed on. Where
/// windows overlap, a position that is the maximum of several receives the sum.
pub(super) fn pool_plane_backward(
    grad: &[f32],
    out: &[f32],
    argmax: &[u32],
    apply_relu: bool,
    dplane: &mut [f32],
) -> f32 {
    dplane.fill(0.0);
    let mut sum = 0.0;
    for ((&g, &o), &at) in grad.iter().zip(out).zip(argmax) {
        let g = if !apply_relu || o > 0.0 { g } else { 0.0 };
        dplane[at as usize] += g;
        sum += g;
    }
    sum
}

struct MaxPoolOp {
    size: usize,
    argmax: Mutex<Option<Vec<u32>>>,
    keep: bool,
}

/// Max-pooling with tiling windows from candle's general ops, for devices without the fused op
/// (CUDA, Metal): the windows are gathered into a last dimension and reduced with `max`, whose
/// backward passes the gradient to the maximum in full (candle's own `max_pool2d` backward would
/// scale it by the tie share, a quarter for a unique maximum of a 2×2 window).
pub(crate) fn max_pool2d_by_reduction(x: &Tensor, size: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ph, pw) = (h / size, w / size);
    if size == 0 || ph == 0 || pw == 0 {
        bail!("max-pool: window {size}×{size} does not fit its {h}×{w} input");
    }
    x.narrow(2, 0, ph * size)?
        .narrow(3, 0, pw * size)?
        .reshape((n, c, ph, size, pw, size))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((n, c, ph, pw, size * size))?
        .max(4)
}

/// Max-pooling of an `(N, C, H, W)` tensor on the CPU, with its backward pass when the input
/// needs gradients.
pub(crate) fn max_pool2d(x: &Tensor, size: usize) -> Result<Tensor> {
    let x = x.contiguous()?;
    let tracked = x.track_op();
    let op = MaxPoolOp {
        size,
        argmax: Mutex::new(None),
        keep: tracked,
    };
    if tracked {
        x.apply_op1(op)
    } else {
        x.apply_op1_no_bwd(&op)
    }
}

impl CustomOp1 for MaxPoolOp {
    fn name(&self) -> &'static str {
        "wick-max-pool"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = cpu_slice(storage, layout)?;
        let &[n, c, h, w] = layout.dims() else {
            bail!("max-pool: needs a 4-d input, got {:?}", layout.dims())
        };
        let (size, pool) = (self.size, MaxPool::tiling(self.size));
        if size == 0 || size > h || size > w {
            bail!("max-pool: window {size}×{size} does not fit its {h}×{w} input");
        }
        let q = (h / size) * (w / size);
        let mut out = vec![0.0f32; n * c * q];
        let mut argmax = if self.keep {
            vec![0u32; out.len()]
        } else {
            Vec::new()
        };
        if !out.is_empty() {
            let planes = out.par_chunks_mut(q).zip(x.par_chunks(h * w));
            if self.keep {
                planes
                    .zip(argmax.par_chunks_mut(q))
                    .for_each(|((o, p), a)| {
                        pool_plane_forward(p, h, w, pool, 0.0, false, o, Some(a))
                    });
            } else {
                planes.for_each(|(o, p)| pool_plane_forward(p, h, w, pool, 0.0, false, o, None));
            }
        }
        if self.keep {
            *self
                .argmax
                .lock()
                .map_err(|_| candle_core::Error::Msg("max-pool: state lock poisoned".into()))? =
                Some(argmax);
        }
        Ok((
            CpuStorage::F32(out),
            Shape::from((n, c, h / size, w / size)),
        ))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let argmax = self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("max-pool: state lock poisoned".into()))?
            .take();
        let Some(argmax) = argmax else {
            bail!("max-pool: backward called twice")
        };
        let (_, _, h, w) = arg.dims4()?;
        let grad_res = grad_res.contiguous()?;
        let (grad, out) = (F32View::new(&grad_res)?, F32View::new(res)?);
        let (grad, out) = (grad.as_slice(), out.as_slice());
        let q = (h / self.size) * (w / self.size);
        if grad.len() != argmax.len() || out.len() != grad.len() {
            bail!(
                "max-pool: the output gradient has {} values, expected {}",
                grad.len(),
                argmax.len()
            );
        }
        let mut dx = vec![0.0f32; arg.elem_count()];
        if !dx.is_empty() && q > 0 {
            dx.par_chunks_mut(h * w)
                .zip(
                    grad.par_chunks(q)
                        .zip(out.par_chunks(q))
                        .zip(argmax.par_chunks(q)),
                )
                .for_each(|(d, ((g, o), a))| {
                    pool_plane_backward(g, o, a, false, d);
                });
        }
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}
