//! Convolution + bias (+ ReLU) (+ max-pooling) as one candle op with its own backward, on the CPU.
//!
//! Tensors are NCHW at the op's edges, as everywhere else in Wick (packages stay compatible).
//! The batch is worked in chunks of a few images, sized so that a chunk's scratch stays in the
//! core's cache, and chunks run on rayon's threads with single-threaded matrix products (no
//! synchronisation inside a product). Inside a chunk every map is channel-major,
//! `[channel][image][position]`, so each step is one matrix product over the chunk and each
//! (channel, image) plane is contiguous for the bias, activation and pooling passes:
//! - the chunk's inputs are unfolded into `col = [patch element][image][position]` (im2col);
//! - forward: `z = W · col` (filters × patch) · (patch × chunk positions);
//! - weight gradient: `dW += dz · colᵀ`, accumulated per thread over its chunks and summed in a
//!   fixed order (so the same thread count gives bit-identical results); `col` is unfolded again
//!   rather than kept, which costs less than writing it out to memory and reading it back;
//! - input gradient: `dcol = Wᵀ · dz`, folded back onto the input (col2im), and skipped entirely
//!   when the input needs no gradient (the first layer's images).
//!
//! Candle's own conv2d backward runs the input gradient as a naive transposed convolution (always,
//! even for the first layer) and the weight gradient as a convolution per batch element.

use std::sync::Mutex;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::buffers;
use super::matmul::{matmul, Mat};
use super::pool::{pool_plane_backward, pool_plane_forward, MaxPool};
use super::{cpu_slice, relu, F32View};

/// Scratch bytes per chunk (its unfolded inputs and pre-activation maps): about half of a
/// server core's L2 cache.
const CHUNK_SCRATCH_BYTES: usize = 1 << 20;
/// Output positions a chunk covers at least, so that its products stay wide enough to run the
/// microkernels at speed (a 7×7 map is 49 columns per image).
const CHUNK_MIN_POSITIONS: usize = 256;

/// What one fused block computes after the convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvBlock {
    pub stride: usize,
    pub padding: usize,
    pub relu: bool,
    /// Max-pooling after the activation.
    pub max_pool: Option<MaxPool>,
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
        let (oh, ow) = (
            (h + 2 * pad - k) / stride + 1,
            (w + 2 * pad - k) / stride + 1,
        );
        if let Some(pool) = block.max_pool {
            if pool.out_len(oh).is_none() || pool.out_len(ow).is_none() {
                bail!("fused conv2d: pool {pool:?} does not fit its {oh}×{ow} input");
            }
        }
        Ok(Self {
            n,
            c,
            h,
            w,
            filters,
            k,
            stride,
            pad,
            oh,
            ow,
        })
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

    /// Images per chunk: what fits the scratch budget, but at least [`CHUNK_MIN_POSITIONS`]
    /// positions, then evened out so that the chunks share out equally over the threads.
    fn chunk_images(&self) -> usize {
        let per_image =
            (self.patch() + self.filters) * self.positions() * std::mem::size_of::<f32>();
        let by_cache = CHUNK_SCRATCH_BYTES / per_image.max(1);
        let by_width = CHUNK_MIN_POSITIONS.div_ceil(self.positions().max(1));
        let n = self.n.max(1);
        let wanted = by_cache.max(by_width).clamp(1, n);
        let threads = rayon::current_num_threads().max(1);
        let chunks = n.div_ceil(wanted);
        let chunks = if n >= threads {
            chunks.div_ceil(threads) * threads
        } else {
            chunks
        };
        n.div_ceil(chunks).max(1)
    }

    /// Positions of one output plane (after pooling, when the block pools).
    fn out_positions(&self, max_pool: Option<MaxPool>) -> (usize, usize) {
        match max_pool {
            // Checked to fit in `new`.
            Some(pool) => (
                pool.out_len(self.oh).unwrap_or(0),
                pool.out_len(self.ow).unwrap_or(0),
            ),
            None => (self.oh, self.ow),
        }
    }

    /// The output columns `ox` whose input column `ox·stride + j − pad` lies inside the image.
    fn valid_columns(&self, j: usize) -> std::ops::Range<usize> {
        let lo = self.pad.saturating_sub(j).div_ceil(self.stride);
        let hi = if self.w + self.pad > j {
            (self.w + self.pad - j - 1) / self.stride + 1
        } else {
            0
        };
        lo.min(self.ow)..hi.min(self.ow).max(lo.min(self.ow))
    }

    /// The input row of output row `oy` for kernel row `i`, if inside the image.
    fn input_row(&self, oy: usize, i: usize) -> Option<usize> {
        (oy * self.stride + i)
            .checked_sub(self.pad)
            .filter(|&y| y < self.h)
    }
}

struct ConvBlockOp {
    block: ConvBlock,
    /// Added to the convolution before the activation (a ResNet block's shortcut); only in ops
    /// without a backward pass (see [`conv_block_residual`]).
    residual: Option<Tensor>,
    /// For each pooled output, the position of its maximum inside its (pre-pooling) plane: what the
    /// forward pass keeps for the backward pass when the block pools.
    argmax: Mutex<Option<Vec<u32>>>,
    /// Whether to keep it: only when some input takes part in autograd.
    keep: bool,
}

/// `x` `(N, C, H, W)`, `weight` `(F, C, K, K)`, `bias` `(F)` → `(N, F, OH', OW')` on the CPU, with
/// the backward pass of [`ConvBlockOp`] when any of them needs gradients (in evaluation mode too:
/// fine-tuning with frozen batch statistics trains through it).
pub(crate) fn conv_block(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    block: ConvBlock,
) -> Result<Tensor> {
    let (x, weight, bias) = (x.contiguous()?, weight.contiguous()?, bias.contiguous()?);
    let tracked = x.track_op() || weight.track_op() || bias.track_op();
    let op = ConvBlockOp {
        block,
        residual: None,
        argmax: Mutex::new(None),
        keep: tracked,
    };
    if tracked {
        x.apply_op3(&weight, &bias, op)
    } else {
        x.apply_op3_no_bwd(&weight, &bias, &op)
    }
}

/// `act(conv(x) + bias + residual)`, where `residual` has the output's shape and the block does not
/// pool. Without gradients (a frozen backbone) the addition happens inside the op's last pass;
/// with them, as candle's ops after [`conv_block`].
pub(crate) fn conv_block_residual(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    block: ConvBlock,
    residual: &Tensor,
) -> Result<Tensor> {
    if block.max_pool.is_some() {
        bail!("fused conv2d: a residual is added before pooling, not after");
    }
    if x.track_op() || weight.track_op() || bias.track_op() || residual.track_op() {
        let y = (conv_block(
            x,
            weight,
            bias,
            ConvBlock {
                relu: false,
                ..block
            },
        )? + residual)?;
        return if block.relu { y.relu() } else { Ok(y) };
    }
    let (x, weight, bias) = (x.contiguous()?, weight.contiguous()?, bias.contiguous()?);
    let op = ConvBlockOp {
        block,
        residual: Some(residual.contiguous()?),
        argmax: Mutex::new(None),
        keep: false,
    };
    let out = x.apply_op3_no_bwd(&weight, &bias, &op)?;
    if out.dims() != residual.dims() {
        bail!(
            "fused conv2d: residual {:?} does not match the output {:?}",
            residual.dims(),
            out.dims()
        );
    }
    Ok(out)
}

impl CustomOp3 for ConvBlockOp {
    fn name(&self) -> &'static str {
        "wick-conv-block"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (cpu_slice(s1, l1)?, cpu_slice(s2, l2)?, cpu_slice(s3, l3)?);
        let g = Geom::new(self.block, l1.dims(), l2.dims())?;
        if b.len() != g.filters {
            bail!(
                "fused conv2d: bias has {} values for {} filters",
                b.len(),
                g.filters
            );
        }
        let (qh, qw) = g.out_positions(self.block.max_pool);
        let per_image = g.filters * qh * qw;
        let mut out = vec![0.0f32; g.n * per_image];
        let mut argmax = if self.block.max_pool.is_some() && self.keep {
            vec![0u32; out.len()]
        } else {
            Vec::new()
        };
        let residual = self.residual.as_ref().map(F32View::new).transpose()?;
        let residual = residual.as_ref().map(|r| r.as_slice());
        if residual.is_some_and(|r| r.len() != out.len()) {
            bail!(
                "fused conv2d: the residual has {} values for an output of {}",
                residual.map_or(0, |r| r.len()),
                out.len()
            );
        }
        let chunk = g.chunk_images() * per_image;
        // One chunk (a single image, say) gets every thread inside its products instead.
        let parallel_products = g.n.div_ceil(g.chunk_images()) == 1;
        if chunk > 0 && !out.is_empty() {
            let run = |ci: usize, o: &mut [f32], a: Option<&mut [u32]>| {
                let first = ci * g.chunk_images();
                let r = residual.map(|r| &r[first * per_image..first * per_image + o.len()]);
                forward_chunk(
                    &g,
                    self.block,
                    Operands {
                        x,
                        w,
                        b,
                        residual: r,
                    },
                    first,
                    o,
                    a,
                    parallel_products,
                )
            };
            if argmax.is_empty() {
                out.par_chunks_mut(chunk)
                    .enumerate()
                    .try_for_each(|(ci, o)| run(ci, o, None))?;
            } else {
                out.par_chunks_mut(chunk)
                    .zip(argmax.par_chunks_mut(chunk))
                    .enumerate()
                    .try_for_each(|(ci, (o, a))| run(ci, o, Some(a)))?;
            }
        }
        if self.keep {
            *self.argmax.lock().map_err(|_| {
                candle_core::Error::Msg("fused conv2d: state lock poisoned".into())
            })? = Some(argmax);
        }
        Ok((CpuStorage::F32(out), Shape::from((g.n, g.filters, qh, qw))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let argmax = self
            .argmax
            .lock()
            .map_err(|_| candle_core::Error::Msg("fused conv2d: state lock poisoned".into()))?
            .take();
        let Some(argmax) = argmax else {
            bail!("fused conv2d: backward called twice")
        };
        let g = Geom::new(self.block, x.dims(), weight.dims())?;
        let grad_res = grad_res.contiguous()?;
        let (xv, grad, out, w) = (
            F32View::new(x)?,
            F32View::new(&grad_res)?,
            F32View::new(res)?,
            F32View::new(weight)?,
        );
        let (qh, qw) = g.out_positions(self.block.max_pool);
        let expected = g.n * g.filters * qh * qw;
        if grad.as_slice().len() != expected || out.as_slice().len() != expected {
            bail!(
                "fused conv2d: the output gradient has {} values, expected {expected}",
                grad.as_slice().len()
            );
        }
        let inputs = BackwardInputs {
            g: &g,
            block: self.block,
            x: xv.as_slice(),
            w: w.as_slice(),
            grad: grad.as_slice(),
            out: out.as_slice(),
            argmax: &argmax,
        };
        let need_dx = x.track_op();

        // The batch in one group of whole chunks per thread; each group sums its own dW and db.
        let threads = rayon::current_num_threads().max(1);
        let chunk_images = g.chunk_images();
        let group_images = g.n.div_ceil(chunk_images).div_ceil(threads).max(1) * chunk_images;
        let mut dx = if need_dx {
            vec![0.0f32; g.n * g.image_len()]
        } else {
            Vec::new()
        };
        let partials: Vec<(Vec<f32>, Vec<f32>)> = if need_dx && !dx.is_empty() {
            dx.par_chunks_mut(group_images * g.image_len())
                .enumerate()
                .map(|(gi, dxg)| {
                    inputs.group(gi * group_images, dxg.len() / g.image_len(), Some(dxg))
                })
                .collect::<Result<_>>()?
        } else {
            (0..g.n.div_ceil(group_images))
                .into_par_iter()
                .map(|gi| {
                    inputs.group(
                        gi * group_images,
                        group_images.min(g.n - gi * group_images),
                        None,
                    )
                })
                .collect::<Result<_>>()?
        };
        let (mut dw, mut db) = (vec![0.0f32; g.filters * g.patch()], vec![0.0f32; g.filters]);
        for (pw, pb) in &partials {
            dw.iter_mut().zip(pw).for_each(|(a, b)| *a += b);
            db.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
        }
        let dx = if need_dx {
            Some(Tensor::from_vec(dx, x.dims(), x.device())?)
        } else {
            None
        };
        let dw = if weight.track_op() {
            Some(Tensor::from_vec(dw, weight.dims(), weight.device())?)
        } else {
            None
        };
        let db = if bias.track_op() {
            Some(Tensor::from_vec(db, bias.dims(), bias.device())?)
        } else {
            None
        };
        Ok((dx, dw, db))
    }
}

/// The forward pass's inputs: the whole batch's images, the weights, and the chunk's residual.
struct Operands<'a> {
    x: &'a [f32],
    w: &'a [f32],
    b: &'a [f32],
    residual: Option<&'a [f32]>,
}

/// The forward pass of the images from `first` that `out` (and `argmax`) hold.
fn forward_chunk(
    g: &Geom,
    block: ConvBlock,
    ops: Operands,
    first: usize,
    out: &mut [f32],
    mut argmax: Option<&mut [u32]>,
    parallel: bool,
) -> Result<()> {
    let Operands { x, w, b, residual } = ops;
    let (p, kk, f) = (g.positions(), g.patch(), g.filters);
    let (qh, qw) = g.out_positions(block.max_pool);
    let q = qh * qw;
    let images = out.len() / (f * q);
    let cp = images * p;
    let mut col = buffers::take(kk * cp);
    unfold(g, x, first, images, &mut col);
    let mut z = buffers::take(f * cp);
    matmul(
        &mut z,
        Mat::rows(w, f, kk),
        Mat::rows(&col, kk, cp),
        false,
        parallel,
    )?;
    for li in 0..images {
        for ch in 0..f {
            let plane = &z[ch * cp + li * p..][..p];
            let at = (li * f + ch) * q;
            let o = &mut out[at..at + q];
            match block.max_pool {
                Some(pool) => pool_plane_forward(
                    plane,
                    g.oh,
                    g.ow,
                    pool,
                    b[ch],
                    block.relu,
                    o,
                    argmax.as_deref_mut().map(|a| &mut a[at..at + q]),
                ),
                None => match residual {
                    Some(r) => {
                        for ((dst, &v), &r) in o.iter_mut().zip(plane).zip(&r[at..at + q]) {
                            let v = v + b[ch] + r;
                            *dst = if block.relu { relu(v) } else { v };
                        }
                    }
                    None => {
                        for (dst, &v) in o.iter_mut().zip(plane) {
                            let v = v + b[ch];
                            *dst = if block.relu { relu(v) } else { v };
                        }
                    }
                },
            }
        }
    }
    buffers::give(col);
    buffers::give(z);
    Ok(())
}

/// What the backward pass reads.
struct BackwardInputs<'a> {
    g: &'a Geom,
    block: ConvBlock,
    x: &'a [f32],
    w: &'a [f32],
    grad: &'a [f32],
    out: &'a [f32],
    argmax: &'a [u32],
}

impl BackwardInputs<'_> {
    /// The backward pass of `images` images from `first`, chunk by chunk: their share of dW and db,
    /// and their input gradient into `dx` when given.
    fn group(
        &self,
        first: usize,
        images: usize,
        mut dx: Option<&mut [f32]>,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let g = self.g;
        let (p, kk, f) = (g.positions(), g.patch(), g.filters);
        let (qh, qw) = g.out_positions(self.block.max_pool);
        let q = qh * qw;
        let (mut dw, mut db) = (vec![0.0f32; f * kk], vec![0.0f32; f]);
        let chunk_images = g.chunk_images();
        for start in (0..images).step_by(chunk_images) {
            let n_img = chunk_images.min(images - start);
            let (img0, cp) = (first + start, n_img * p);
            // dz, channel-major like z: the output gradient through the pooling and the activation.
            let mut dz = buffers::take(f * cp);
            for (ch, db) in db.iter_mut().enumerate() {
                for li in 0..n_img {
                    let at = ((img0 + li) * f + ch) * q;
                    let (gp, op) = (&self.grad[at..at + q], &self.out[at..at + q]);
                    let dplane = &mut dz[ch * cp + li * p..][..p];
                    *db += match self.block.max_pool {
                        Some(_) => pool_plane_backward(
                            gp,
                            op,
                            &self.argmax[at..at + q],
                            self.block.relu,
                            dplane,
                        ),
                        None => {
                            let mut sum = 0.0f32;
                            for ((d, &gv), &ov) in dplane.iter_mut().zip(gp).zip(op) {
                                *d = if !self.block.relu || ov > 0.0 {
                                    gv
                                } else {
                                    0.0
                                };
                                sum += *d;
                            }
                            sum
                        }
                    };
                }
            }
            let mut col = buffers::take(kk * cp);
            unfold(g, self.x, img0, n_img, &mut col);
            matmul(
                &mut dw,
                Mat::rows(&dz, f, cp),
                Mat::rows(&col, kk, cp).t(),
                true,
                false,
            )?;
            buffers::give(col);
            if let Some(dx) = dx.as_deref_mut() {
                let mut dcol = buffers::take(kk * cp);
                matmul(
                    &mut dcol,
                    Mat::rows(self.w, f, kk).t(),
                    Mat::rows(&dz, f, cp),
                    false,
                    false,
                )?;
                let len = g.image_len();
                fold(g, &dcol, n_img, &mut dx[start * len..(start + n_img) * len]);
                buffers::give(dcol);
            }
            buffers::give(dz);
        }
        Ok((dw, db))
    }
}

/// Unfolds `images` images from `first` into `col` (`[patch element][image][position]`): patch
/// element `(channel, i, j)` at every output position, zero where the kernel reaches into padding.
fn unfold(g: &Geom, x: &[f32], first: usize, images: usize, col: &mut [f32]) {
    let (p, len) = (g.positions(), g.image_len());
    let cp = images * p;
    for (e, row) in col.chunks_exact_mut(cp).enumerate() {
        let (ch, i, j) = (e / (g.k * g.k), (e / g.k) % g.k, e % g.k);
        let cols = g.valid_columns(j);
        for li in 0..images {
            let x_img = &x[(first + li) * len..][..len];
            for oy in 0..g.oh {
                let dst = &mut row[li * p + oy * g.ow..][..g.ow];
                let Some(y) = g.input_row(oy, i) else {
                    dst.fill(0.0);
                    continue;
                };
                let src = &x_img[(ch * g.h + y) * g.w..][..g.w];
                dst[..cols.start].fill(0.0);
                dst[cols.end..].fill(0.0);
                if g.stride == 1 {
                    let first_x = cols.start + j - g.pad;
                    for (d, s) in dst[cols.clone()].iter_mut().zip(&src[first_x..]) {
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
}

/// Adds the unfolded gradient `dcol` of `images` images back onto their input positions (col2im).
fn fold(g: &Geom, dcol: &[f32], images: usize, dx: &mut [f32]) {
    let (p, len) = (g.positions(), g.image_len());
    let cp = images * p;
    for (li, dxi) in dx.chunks_exact_mut(len).enumerate().take(images) {
        for e in 0..g.patch() {
            let (ch, i, j) = (e / (g.k * g.k), (e / g.k) % g.k, e % g.k);
            let cols = g.valid_columns(j);
            if cols.is_empty() {
                continue;
            }
            let src_img = &dcol[e * cp + li * p..][..p];
            for oy in 0..g.oh {
                let Some(y) = g.input_row(oy, i) else {
                    continue;
                };
                let src = &src_img[oy * g.ow..][..g.ow];
                let dst = &mut dxi[(ch * g.h + y) * g.w..][..g.w];
                if g.stride == 1 {
                    let first_x = cols.start + j - g.pad;
                    for (d, s) in dst[first_x..].iter_mut().zip(&src[cols.clone()]) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_columns_cover_exactly_the_inside_of_the_image() {
        for (w, k, stride, pad) in [
            (8, 3, 1, 1),
            (7, 5, 2, 2),
            (5, 5, 1, 0),
            (6, 3, 3, 1),
            (4, 3, 2, 2),
        ] {
            let block = ConvBlock {
                stride,
                padding: pad,
                relu: false,
                max_pool: None,
            };
            let g = Geom::new(block, &[1, 1, w, w], &[1, 1, k, k]).unwrap();
            for j in 0..k {
                let want: Vec<usize> = (0..g.ow)
                    .filter(|&ox| (ox * stride + j).checked_sub(pad).is_some_and(|x| x < w))
                    .collect();
                let got: Vec<usize> = g.valid_columns(j).collect();
                assert_eq!(got, want, "w {w} k {k} stride {stride} pad {pad} j {j}");
            }
        }
    }
}
