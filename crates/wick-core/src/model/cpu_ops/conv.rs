//! Convolution + bias (+ ReLU) (+ max-pooling) as one candle op with its own backward, on the CPU.
//!
//! Tensors are NCHW at the op's edges, as everywhere else in Wick (packages stay compatible).
//! Inside, every map is kept channel-major, `[channel][image][position]`, which turns each step into
//! one large matrix product over the whole batch and keeps each (channel, image) plane contiguous for
//! the bias, activation and pooling passes:
//! - the inputs are unfolded once into `col = [patch element][image][position]` and kept for the
//!   backward pass (im2col);
//! - forward: `z = W · col` (filters × patch) · (patch × batch positions);
//! - weight gradient: `dW = dz · colᵀ`, one product whose inner dimension is the whole batch;
//! - input gradient: `dcol = Wᵀ · dz`, folded back onto the input (col2im), and skipped entirely
//!   when the input needs no gradient (the first layer's images).
//!
//! Candle's own conv2d backward runs the input gradient as a naive transposed convolution (always,
//! even for the first layer) and the weight gradient as a convolution per batch element; this op
//! replaces both with three products on the `gemm` crate.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::buffers;
use super::matmul::{matmul, Mat};
use super::pool::{pool_plane_backward, pool_plane_forward};
use super::{cpu_slice, relu, F32View};

/// What one fused block computes after the convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvBlock {
    pub stride: usize,
    pub padding: usize,
    pub relu: bool,
    /// Max-pooling with this window and stride (PyTorch's floor mode) after the activation.
    pub max_pool: Option<usize>,
}

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    filters: usize,
    k: usize,
    stride: usize,
    pad: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    fn new(block: ConvBlock, x_dims: &[usize], w_dims: &[usize]) -> Result<Self> {
        let (&[n, c, h, w], &[filters, wc, kh, kw]) = (x_dims, w_dims) else {
            bail!("fused conv2d: needs a 4-d input and weight, got {x_dims:?} and {w_dims:?}")
        };
        if wc != c || kh != kw || kh == 0 || block.stride == 0 {
            bail!("fused conv2d: weight {w_dims:?} does not fit input {x_dims:?}");
        }
        let (k, stride, pad) = (kh, block.stride, block.padding);
        if h + 2 * pad < k || w + 2 * pad < k {
            bail!("fused conv2d: kernel {k}×{k} is larger than the padded {h}×{w} input");
        }
        let (oh, ow) = ((h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1);
        if let Some(size) = block.max_pool {
            if size == 0 || size > oh || size > ow {
                bail!("fused conv2d: pool {size}×{size} does not fit its {oh}×{ow} input");
            }
        }
        Ok(Self { n, c, h, w, filters, k, stride, pad, oh, ow })
    }

    fn positions(&self) -> usize {
        self.oh * self.ow
    }

    fn patch(&self) -> usize {
        self.c * self.k * self.k
    }

    fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// Positions of one output plane (after pooling, when the block pools).
    fn out_positions(&self, max_pool: Option<usize>) -> (usize, usize) {
        match max_pool {
            Some(s) => (self.oh / s, self.ow / s),
            None => (self.oh, self.ow),
        }
    }

    /// The output columns `ox` whose input column `ox·stride + j − pad` lies inside the image.
    fn valid_columns(&self, j: usize) -> std::ops::Range<usize> {
        let lo = self.pad.saturating_sub(j).div_ceil(self.stride);
        let hi = if self.w + self.pad > j { (self.w + self.pad - j - 1) / self.stride + 1 } else { 0 };
        lo.min(self.ow)..hi.min(self.ow).max(lo.min(self.ow))
    }

    /// The input row of output row `oy` for kernel row `i`, if inside the image.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride + i).checked_sub(self.pad).filter(|&y| y < self.h)
    }
}

/// What the forward pass keeps for the backward pass.
struct Saved {
    /// The unfolded input, `[patch element][image][position]`.
    col: Vec<f32>,
    /// For each pooled output, the position of its maximum inside its (pre-pooling) plane.
    argmax: Vec<u32>,
}

struct ConvBlockOp {
    block: ConvBlock,
    saved: Mutex<Option<Saved>>,
    /// Whether to keep what the backward pass needs: only when some input takes part in autograd.
    keep: bool,
}

impl Drop for ConvBlockOp {
    fn drop(&mut self) {
        if let Ok(saved) = self.saved.get_mut() {
            if let Some(saved) = saved.take() {
                buffers::give(saved.col);
            }
        }
    }
}

/// `x` `(N, C, H, W)`, `weight` `(F, C, K, K)`, `bias` `(F)` → `(N, F, OH', OW')` on the CPU, with
/// the backward pass of [`ConvBlockOp`] when any of them needs gradients (in evaluation mode too:
/// fine-tuning with frozen batch statistics trains through it).
pub(crate) fn conv_block(x: &Tensor, weight: &Tensor, bias: &Tensor, block: ConvBlock) -> Result<Tensor> {
    let (x, weight, bias) = (x.contiguous()?, weight.contiguous()?, bias.contiguous()?);
    let tracked = x.track_op() || weight.track_op() || bias.track_op();
    let op = ConvBlockOp { block, saved: Mutex::new(None), keep: tracked };
    if tracked {
        x.apply_op3(&weight, &bias, op)
    } else {
        x.apply_op3_no_bwd(&weight, &bias, &op)
    }
}

impl CustomOp3 for ConvBlockOp {
    fn name(&self) -> &'static str {
        "wick-conv-block"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (cpu_slice(s1, l1)?, cpu_slice(s2, l2)?, cpu_slice(s3, l3)?);
        let g = Geom::new(self.block, l1.dims(), l2.dims())?;
        if b.len() != g.filters {
            bail!("fused conv2d: bias has {} values for {} filters", b.len(), g.filters);
        }
        let (np, kk) = (g.n * g.positions(), g.patch());
        let mut col = buffers::take(kk * np);
        if np > 0 {
            col.par_chunks_mut(np).enumerate().for_each(|(e, row)| unfold_row(&g, x, e, row));
        }
        let mut z = buffers::take(g.filters * np);
        matmul(&mut z, Mat::rows(w, g.filters, kk), Mat::rows(&col, kk, np), false)?;

        let (qh, qw) = g.out_positions(self.block.max_pool);
        let q = qh * qw;
        let mut out = vec![0.0f32; g.n * g.filters * q];
        let mut argmax = if self.block.max_pool.is_some() && self.keep { vec![0u32; out.len()] } else { Vec::new() };
        let p = g.positions();
        if !out.is_empty() {
            let apply_relu = self.block.relu;
            let planes = out.par_chunks_mut(q).enumerate();
            match self.block.max_pool {
                Some(size) if self.keep => planes.zip(argmax.par_chunks_mut(q)).for_each(|((i, o), a)| {
                    let (img, f) = (i / g.filters, i % g.filters);
                    let plane = &z[(f * g.n + img) * p..][..p];
                    pool_plane_forward(plane, g.oh, g.ow, size, b[f], apply_relu, o, Some(a));
                }),
                Some(size) => planes.for_each(|(i, o)| {
                    let (img, f) = (i / g.filters, i % g.filters);
                    let plane = &z[(f * g.n + img) * p..][..p];
                    pool_plane_forward(plane, g.oh, g.ow, size, b[f], apply_relu, o, None);
                }),
                None => planes.for_each(|(i, o)| {
                    let (img, f) = (i / g.filters, i % g.filters);
                    let plane = &z[(f * g.n + img) * p..][..p];
                    for (dst, &v) in o.iter_mut().zip(plane) {
                        let v = v + b[f];
                        *dst = if apply_relu { relu(v) } else { v };
                    }
                }),
            }
        }
        buffers::give(z);
        if self.keep {
            let mut saved = self.saved.lock().map_err(|_| candle_core::Error::Msg("fused conv2d: state lock poisoned".into()))?;
            *saved = Some(Saved { col, argmax });
        } else {
            buffers::give(col);
        }
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.filters, qh, qw))))
    }

    fn bwd(&self, x: &Tensor, weight: &Tensor, bias: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self.saved.lock().map_err(|_| candle_core::Error::Msg("fused conv2d: state lock poisoned".into()))?.take();
        let Some(Saved { col, argmax }) = saved else { bail!("fused conv2d: backward called twice") };
        let g = Geom::new(self.block, x.dims(), weight.dims())?;
        let grad_res = grad_res.contiguous()?;
        let (grad, out, w) = (F32View::new(&grad_res)?, F32View::new(res)?, F32View::new(weight)?);
        let (grad, out, w) = (grad.as_slice(), out.as_slice(), w.as_slice());
        let (p, np, kk, f) = (g.positions(), g.n * g.positions(), g.patch(), g.filters);
        let (qh, qw) = g.out_positions(self.block.max_pool);
        let q = qh * qw;
        if grad.len() != g.n * f * q || out.len() != grad.len() {
            bail!("fused conv2d: the output gradient has {} values, expected {}", grad.len(), g.n * f * q);
        }

        // dz, channel-major like z: the output gradient through the pooling and the activation.
        let mut dz = buffers::take(f * np);
        let apply_relu = self.block.relu;
        let mut db = vec![0.0f32; f];
        if np > 0 {
            dz.par_chunks_mut(np)
                .zip(db.par_iter_mut())
                .enumerate()
                .for_each(|(ch, (row, db))| {
                    let mut sum = 0.0f32;
                    for img in 0..g.n {
                        let at = (img * f + ch) * q;
                        let (gp, op) = (&grad[at..at + q], &out[at..at + q]);
                        let dplane = &mut row[img * p..][..p];
                        match self.block.max_pool {
                            Some(_) => sum += pool_plane_backward(gp, op, &argmax[at..at + q], apply_relu, dplane),
                            None => {
                                for ((d, &gv), &ov) in dplane.iter_mut().zip(gp).zip(op) {
                                    *d = if !apply_relu || ov > 0.0 { gv } else { 0.0 };
                                    sum += *d;
                                }
                            }
                        }
                    }
                    *db = sum;
                });
        }

        let dw = if weight.track_op() {
            let mut dw = vec![0.0f32; f * kk];
            matmul(&mut dw, Mat::rows(&dz, f, np), Mat::rows(&col, kk, np).t(), false)?;
            Some(Tensor::from_vec(dw, weight.dims(), weight.device())?)
        } else {
            None
        };
        let dx = if x.track_op() {
            let mut dcol = buffers::take(kk * np);
            matmul(&mut dcol, Mat::rows(w, f, kk).t(), Mat::rows(&dz, f, np), false)?;
            let mut dx = vec![0.0f32; g.n * g.image_len()];
            if !dx.is_empty() {
                dx.par_chunks_mut(g.image_len()).enumerate().for_each(|(img, dxi)| fold_image(&g, &dcol, img, dxi));
            }
            buffers::give(dcol);
            Some(Tensor::from_vec(dx, x.dims(), x.device())?)
        } else {
            None
        };
        let db = if bias.track_op() { Some(Tensor::from_vec(db, bias.dims(), bias.device())?) } else { None };
        buffers::give(dz);
        buffers::give(col);
        Ok((dx, dw, db))
    }
}

/// Row `e` of the unfolded input: patch element `e = (channel, i, j)` at every position of every
/// image, zero where the kernel reaches into the padding.
fn unfold_row(g: &Geom, x: &[f32], e: usize, row: &mut [f32]) {
    let (ch, i, j) = (e / (g.k * g.k), (e / g.k) % g.k, e % g.k);
    let cols = g.valid_columns(j);
    let p = g.positions();
    for img in 0..g.n {
        let x_img = &x[img * g.image_len()..][..g.image_len()];
        for oy in 0..g.oh {
            let dst = &mut row[img * p + oy * g.ow..][..g.ow];
            let Some(y) = g.input_row(oy, i) else {
                dst.fill(0.0);
                continue;
            };
            let src = &x_img[(ch * g.h + y) * g.w..][..g.w];
            dst[..cols.start].fill(0.0);
            dst[cols.end..].fill(0.0);
            if g.stride == 1 {
                let first = cols.start + j - g.pad;
                for (d, s) in dst[cols.clone()].iter_mut().zip(&src[first..]) {
                    *d = *s;
                }
            } else {
                for ox in cols.clone() {
                    dst[ox] = src[ox * g.stride + j - g.pad];
                }
            }
        }
    }
}

/// Adds the unfolded gradient `dcol` of image `img` back onto its input positions (col2im).
fn fold_image(g: &Geom, dcol: &[f32], img: usize, dx: &mut [f32]) {
    let (p, np) = (g.positions(), g.n * g.positions());
    for e in 0..g.patch() {
        let (ch, i, j) = (e / (g.k * g.k), (e / g.k) % g.k, e % g.k);
        let cols = g.valid_columns(j);
        if cols.is_empty() {
            continue;
        }
        let src_img = &dcol[e * np + img * p..][..p];
        for oy in 0..g.oh {
            let Some(y) = g.input_row(oy, i) else { continue };
            let src = &src_img[oy * g.ow..][..g.ow];
            let dst = &mut dx[(ch * g.h + y) * g.w..][..g.w];
            if g.stride == 1 {
                let first = cols.start + j - g.pad;
                for (d, s) in dst[first..].iter_mut().zip(&src[cols.clone()]) {
                    *d += *s;
                }
            } else {
                for ox in cols.clone() {
                    dst[ox * g.stride + j - g.pad] += src[ox];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_columns_cover_exactly_the_inside_of_the_image() {
        for (w, k, stride, pad) in [(8, 3, 1, 1), (7, 5, 2, 2), (5, 5, 1, 0), (6, 3, 3, 1), (4, 3, 2, 2)] {
            let block = ConvBlock { stride, padding: pad, relu: false, max_pool: None };
            let g = Geom::new(block, &[1, 1, w, w], &[1, 1, k, k]).unwrap();
            for j in 0..k {
                let want: Vec<usize> = (0..g.ow).filter(|&ox| (ox * stride + j).checked_sub(pad).is_some_and(|x| x < w)).collect();
                let got: Vec<usize> = g.valid_columns(j).collect();
                assert_eq!(got, want, "w {w} k {k} stride {stride} pad {pad} j {j}");
            }
        }
    }
}
