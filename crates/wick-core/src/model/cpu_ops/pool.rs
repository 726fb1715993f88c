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

/// Pools one `h × w` plane with `size × size` windows into `out` (`h/size × w/size`), adding `bias`
/// to each value first and applying ReLU after; `argmax` receives each maximum's position in the plane.
///
/// One output row at a time, visiting each window's elements in PyTorch's order (row by row) for all
/// windows of the row together, with branch-free selects the compiler vectorises.
#[allow(clippy::too_many_arguments)] // one plane's geometry; a struct would only rename these
pub(super) fn pool_plane_forward(plane: &[f32], h: usize, w: usize, size: usize, bias: f32, apply_relu: bool, out: &mut [f32], argmax: Option<&mut [u32]>) {
    // A window size known at compile time turns the strided reads into vector shuffles.
    match size {
        2 => pool_rows::<2>(plane, h, w, 2, bias, apply_relu, out, argmax),
        3 => pool_rows::<3>(plane, h, w, 3, bias, apply_relu, out, argmax),
        _ => pool_rows::<0>(plane, h, w, size, bias, apply_relu, out, argmax),
    }
}

/// [`pool_plane_forward`] for windows of `S` (or of `size` when `S` is 0).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn pool_rows<const S: usize>(plane: &[f32], h: usize, w: usize, size: usize, bias: f32, apply_relu: bool, out: &mut [f32], mut argmax: Option<&mut [u32]>) {
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
                for (px, ((b, a), window)) in best.iter_mut().zip(at.iter_mut()).zip(row.chunks_exact(size)).enumerate() {
                    let v = window[j] + bias;
                    // As PyTorch: a later value wins only if larger, and NaN propagates.
                    let take = v > *b || v.is_nan();
                    *b = if take { v } else { *b };
                    *a = if take { first + (px * size) as u32 } else { *a };
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

/// Scatters one pooled plane's gradient to the positions of its maxima in `dplane` (zeroed here),
/// masked by ReLU's derivative when `apply_relu`; returns the sum of what was passed on.
pub(super) fn pool_plane_backward(grad: &[f32], out: &[f32], argmax: &[u32], apply_relu: bool, dplane: &mut [f32]) -> f32 {
    dplane.fill(0.0);
    let mut sum = 0.0;
    for ((&g, &o), &at) in grad.iter().zip(out).zip(argmax) {
        let g = if !apply_relu || o > 0.0 { g } else { 0.0 };
        // Windows do not overlap (stride = size), so each position receives at most one value.
        dplane[at as usize] = g;
        sum += g;
    }
    sum
}

struct MaxPoolOp {
    size: usize,
    argmax: Mutex<Option<Vec<u32>>>,
    keep: bool,
}

/// Max-pooling of an `(N, C, H, W)` tensor on the CPU, with its backward pass when the input
/// needs gradients.
pub(crate) fn max_pool2d(x: &Tensor, size: usize) -> Result<Tensor> {
    let x = x.contiguous()?;
    let tracked = x.track_op();
    let op = MaxPoolOp { size, argmax: Mutex::new(None), keep: tracked };
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
        let &[n, c, h, w] = layout.dims() else { bail!("max-pool: needs a 4-d input, got {:?}", layout.dims()) };
        let size = self.size;
        if size == 0 || size > h || size > w {
            bail!("max-pool: window {size}×{size} does not fit its {h}×{w} input");
        }
        let q = (h / size) * (w / size);
        let mut out = vec![0.0f32; n * c * q];
        let mut argmax = if self.keep { vec![0u32; out.len()] } else { Vec::new() };
        if !out.is_empty() {
            let planes = out.par_chunks_mut(q).zip(x.par_chunks(h * w));
            if self.keep {
                planes.zip(argmax.par_chunks_mut(q)).for_each(|((o, p), a)| pool_plane_forward(p, h, w, size, 0.0, false, o, Some(a)));
            } else {
                planes.for_each(|(o, p)| pool_plane_forward(p, h, w, size, 0.0, false, o, None));
            }
        }
        if self.keep {
            *self.argmax.lock().map_err(|_| candle_core::Error::Msg("max-pool: state lock poisoned".into()))? = Some(argmax);
        }
        Ok((CpuStorage::F32(out), Shape::from((n, c, h / size, w / size))))
    }

    fn bwd(&self, arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let argmax = self.argmax.lock().map_err(|_| candle_core::Error::Msg("max-pool: state lock poisoned".into()))?.take();
        let Some(argmax) = argmax else { bail!("max-pool: backward called twice") };
        let (_, _, h, w) = arg.dims4()?;
        let grad_res = grad_res.contiguous()?;
        let (grad, out) = (F32View::new(&grad_res)?, F32View::new(res)?);
        let (grad, out) = (grad.as_slice(), out.as_slice());
        let q = (h / self.size) * (w / self.size);
        if grad.len() != argmax.len() || out.len() != grad.len() {
            bail!("max-pool: the output gradient has {} values, expected {}", grad.len(), argmax.len());
        }
        let mut dx = vec![0.0f32; arg.elem_count()];
        if !dx.is_empty() && q > 0 {
            dx.par_chunks_mut(h * w)
                .zip(grad.par_chunks(q).zip(out.par_chunks(q)).zip(argmax.par_chunks(q)))
                .for_each(|(d, ((g, o), a))| {
                    pool_plane_backward(g, o, a, false, d);
                });
        }
        Ok(Some(Tensor::from_vec(dx, arg.dims(), arg.device())?))
    }
}
