//! Inference of a trained [`Network`](super::Network) on the CPU without candle.
//!
//! Candle runs one image of the default CNN in ~59 µs: each layer is a separate tensor operation
//! with its own allocation, layout change and thread-pool dispatch, which for an 8×8 image costs more
//! than the arithmetic. Serving answers one small request at a time, so prediction on the CPU uses
//! this plan instead: the weights copied once into layouts the loops want, one image at a time,
//! every dot product a register-blocked loop compiled for the CPU's widest SIMD (chosen at run
//! time). Training, GPUs and transfer backbones stay with candle; both paths are checked against each
//! other in the tests.
//!
//! Activations are kept height × width × channels, so that a convolution's output channels are
//! contiguous (the vectorised dimension); `Flatten` reorders to channels-first, candle's order, which
//! the dense weights expect.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use multiversion::multiversion;

use crate::error::{Result, WickError};
use crate::model::spec::{conv_padding, Activation, Layer};

/// Outputs computed together in registers: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;
/// Convolution output positions computed together (sharing each weight row read).
const TILE_ROWS: usize = 4;
/// Batches at least this large are split over threads (a single image is faster on one).
const PARALLEL_MIN_SAMPLES: usize = 16;

thread_local! {
    /// Two activation buffers and the convolution scratch, kept per thread between calls: serving
    /// predicts one small request after another.
    static BUFFERS: std::cell::RefCell<[Vec<f32>; 3]> = const { std::cell::RefCell::new([Vec::new(), Vec::new(), Vec::new()]) };
}

/// A height × width × channels activation (a flat vector is 1 × 1 × n).
#[derive(Debug, Clone, Copy)]
struct Dims {
    h: usize,
    w: usize,
    c: usize,
}

impl Dims {
    fn len(self) -> usize {
        self.h * self.w * self.c
    }
}

/// Rows of `n_in` inputs times `n_out` outputs, stored input-major with the output dimension padded
/// to whole register blocks (padding weights are zero, padding outputs are never written).
struct DotWeights {
    weight: Vec<f32>,
    bias: Vec<f32>,
    n_out: usize,
    stride: usize,
}

impl DotWeights {
    /// `rows[i][o]` = the weight from input `i` to output `o`.
    fn new(
        n_in: usize,
        n_out: usize,
        bias: Vec<f32>,
        weight_at: impl Fn(usize, usize) -> f32,
    ) -> Self {
        let stride = n_out.div_ceil(LANES) * LANES;
        let mut weight = vec![0.0; n_in * stride];
        for (i, row) in weight.chunks_exact_mut(stride).enumerate() {
            for (o, w) in row.iter_mut().take(n_out).enumerate() {
                *w = weight_at(i, o);
            }
        }
        let mut padded_bias = bias;
        padded_bias.resize(stride, 0.0);
        Self {
            weight,
            bias: padded_bias,
            n_out,
            stride,
        }
    }

    /// `rows` inputs interleaved in `x` (see [`dot_rows`]) to `rows` outputs of `n_out`, one after another.
    fn apply(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        dot_rows(
            x,
            rows,
            &self.weight,
            self.stride,
            &self.bias,
            self.n_out,
            out,
        );
    }
}

enum Op {
    Conv {
        input: Dims,
        output: Dims,
        kernel: usize,
        stride: usize,
        pad: usize,
        dot: DotWeights,
    },
    Pool {
        input: Dims,
        size: usize,
        max: bool,
    },
    /// Batch normalisation in evaluation mode, folded into `x · scale + shift` per channel.
    ChannelAffine {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    Dense {
        dot: DotWeights,
    },
    Activation(Activation),
    /// HWC → CHW, so that what follows sees candle's flattening order.
    ToChannelsFirst(Dims),
}

/// A network ready for CPU inference.
pub(crate) struct CpuNet {
    input: Dims,
    ops: Vec<Op>,
    n_outputs: usize,
    /// Longest activation anywhere in the network (buffer size).
    max_len: usize,
    /// Longest convolution patch (kernel × kernel × input channels).
    max_patch: usize,
}

impl CpuNet {
    /// The plan for `layers` (then a dense output layer of `n_outputs`) taking `input_shape`
    /// (channels × height × width, or a flat width), with weights named as [`super::Network`] names them.
    pub(crate) fn new(
        input_shape: &[usize],
        layers: &[Layer],
        n_outputs: usize,
        tensors: &HashMap<String, Tensor>,
    ) -> Result<Self> {
        let mut dims = match *input_shape {
            [c, h, w] => Dims { h, w, c },
            [n] => Dims { h: 1, w: 1, c: n },
            _ => {
                return Err(WickError::InvalidSpec(format!(
                    "a network input of shape {input_shape:?} is neither an image nor a row"
                )))
            }
        };
        let input = dims;
        let mut ops = Vec::with_capacity(layers.len() + 1);
        let (mut max_len, mut max_patch) = (dims.len(), 0);
        for (i, layer) in layers.iter().enumerate() {
            let name = format!("layers.{i}");
            match layer {
                Layer::Conv2d {
                    filters,
                    kernel,
                    stride,
                    padding,
                } => {
                    let pad = conv_padding(*kernel, *padding);
                    let output = Dims {
                        h: (dims.h + 2 * pad - kernel) / stride + 1,
                        w: (dims.w + 2 * pad - kernel) / stride + 1,
                        c: *filters,
                    };
                    // candle: [out, in, ky, kx]; here: rows (ky, kx, in), columns out.
                    let weight = values(
                        tensors,
                        &format!("{name}.weight"),
                        filters * dims.c * kernel * kernel,
                    )?;
                    let bias = values(tensors, &format!("{name}.bias"), *filters)?;
                    let (k, c_in) = (*kernel, dims.c);
                    let dot = DotWeights::new(k * k * c_in, *filters, bias, |row, o| {
                        let (ky, kx, ci) = (row / (k * c_in), row / c_in % k, row % c_in);
                        weight[((o * c_in + ci) * k + ky) * k + kx]
                    });
                    max_patch = max_patch.max(k * k * c_in);
                    ops.push(Op::Conv {
                        input: dims,
                        output,
                        kernel: k,
                        stride: *stride,
                        pad,
                        dot,
                    });
                    dims = output;
                }
                Layer::MaxPool2d { size } | Layer::AvgPool2d { size } => {
                    ops.push(Op::Pool {
                        input: dims,
                        size: *size,
                        max: matches!(layer, Layer::MaxPool2d { .. }),
                    });
                    dims = Dims {
                        h: dims.h / size,
                        w: dims.w / size,
                        c: dims.c,
                    };
                }
                Layer::BatchNorm => {
                    let c = dims.c;
                    let get = |k: &str| values(tensors, &format!("{name}.{k}"), c);
                    let (weight, bias, mean, var) = (
                        get("weight")?,
                        get("bias")?,
                        get("running_mean")?,
                        get("running_var")?,
                    );
                    // candle's BatchNorm epsilon, as the network is built with.
                    let scale: Vec<f32> = weight
                        .iter()
                        .zip(&var)
                        .map(|(w, v)| w / (v + 1e-5).sqrt())
                        .collect();
                    let shift = bias
                        .iter()
                        .zip(&mean)
                        .zip(&scale)
                        .map(|((b, m), s)| b - m * s)
                        .collect();
                    ops.push(Op::ChannelAffine { scale, shift });
                }
                Layer::Dropout { .. } => {}
                Layer::Flatten => {
                    if dims.h * dims.w > 1 {
                        ops.push(Op::ToChannelsFirst(dims));
                    }
                    dims = Dims {
                        h: 1,
                        w: 1,
                        c: dims.len(),
                    };
                }
                Layer::Dense { units } => {
                    ops.push(Op::Dense {
                        dot: dense(tensors, &name, dims.len(), *units)?,
                    });
                    dims = Dims {
                        h: 1,
                        w: 1,
                        c: *units,
                    };
                }
                Layer::Activation { function } => ops.push(Op::Activation(*function)),
            }
            max_len = max_len.max(dims.len());
        }
        ops.push(Op::Dense {
            dot: dense(tensors, "output", dims.len(), n_outputs)?,
        });
        max_len = max_len.max(n_outputs);
        Ok(Self {
            input,
            ops,
            n_outputs,
            max_len,
            max_patch,
        })
    }

    /// Runs `n` samples given channels-first (as candle takes them); returns `n × n_outputs` values.
    /// Large batches are split over the CPU's threads.
    pub(crate) fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        use rayon::prelude::*;
        let per = self.input.len().max(1);
        let x = &x[..(n * per).min(x.len())];
        let threads = rayon::current_num_threads();
        if n < PARALLEL_MIN_SAMPLES || threads < 2 {
            return self.forward_serial(x);
        }
        let chunk = n.div_ceil(threads);
        x.par_chunks(chunk * per)
            .map(|part| self.forward_serial(part))
            .collect::<Vec<_>>()
            .concat()
    }

    fn forward_serial(&self, x: &[f32]) -> Vec<f32> {
        let per = self.input.len();
        let n = x.len() / per.max(1);
        let mut out = Vec::with_capacity(n * self.n_outputs);
        // Every op writes the part of its buffer it reads back, so stale values never show.
        BUFFERS.with_borrow_mut(|buffers| {
            let [a, b, scratch] = buffers;
            for (buffer, len) in [
                (&mut *a, self.max_len),
                (&mut *b, self.max_len),
                (&mut *scratch, self.max_patch * (1 + TILE_ROWS)),
            ] {
                if buffer.len() < len {
                    buffer.resize(len, 0.0);
                }
            }
            self.run_samples(x, n, a, b, scratch, &mut out);
        });
        out
    }

    fn run_samples(
        &self,
        x: &[f32],
        n: usize,
        a: &mut Vec<f32>,
        b: &mut Vec<f32>,
        scratch: &mut [f32],
        out: &mut Vec<f32>,
    ) {
        let per = self.input.len();
        for sample in x.chunks_exact(per.max(1)).take(n) {
            to_channels_last(sample, self.input, a);
            let mut len = per;
            for op in &self.ops {
                len = self.apply(op, &a[..len], b, scratch);
                std::mem::swap(a, b);
            }
            out.extend_from_slice(&a[..self.n_outputs]);
        }
    }

    /// Applies `op` to `x`, writing to `y`; returns the output length.
    fn apply(&self, op: &Op, x: &[f32], y: &mut [f32], scratch: &mut [f32]) -> usize {
        match op {
            Op::Conv {
                input,
                output,
                kernel,
                stride,
                pad,
                dot,
            } => {
                // TILE_ROWS output positions at a time, so each weight row is read once per tile.
                let size = kernel * kernel * input.c;
                let (patch, tile) = scratch.split_at_mut(size);
                let tile = &mut tile[..size * TILE_ROWS];
                let positions = output.h * output.w;
                for first in (0..positions).step_by(TILE_ROWS) {
                    let rows = TILE_ROWS.min(positions - first);
                    for r in 0..rows {
                        let (oy, ox) = ((first + r) / output.w, (first + r) % output.w);
                        gather_patch(x, *input, oy * stride, ox * stride, *kernel, *pad, patch);
                        for (values, &v) in tile.chunks_exact_mut(TILE_ROWS).zip(patch.iter()) {
                            values[r] = v;
                        }
                    }
                    dot.apply(
                        tile,
                        rows,
                        &mut y[first * output.c..(first + rows) * output.c],
                    );
                }
                output.len()
            }
            Op::Pool { input, size, max } => pool(x, *input, *size, *max, y),
            Op::ChannelAffine { scale, shift } => {
                let c = scale.len();
                for (i, (&v, o)) in x.iter().zip(y.iter_mut()).enumerate() {
                    *o = v * scale[i % c] + shift[i % c];
                }
                x.len()
            }
            Op::Dense { dot } => {
                dot.apply(x, 1, y);
                dot.n_out
            }
            Op::Activation(function) => {
                activate(x, *function, y);
                x.len()
            }
            Op::ToChannelsFirst(d) => {
                for p in 0..d.h * d.w {
                    for ch in 0..d.c {
                        y[ch * d.h * d.w + p] = x[p * d.c + ch];
                    }
                }
                d.len()
            }
        }
    }
}

/// Weights of a dense layer named `name` (candle's `[out, in]`), as input-major rows.
fn dense(
    tensors: &HashMap<String, Tensor>,
    name: &str,
    n_in: usize,
    n_out: usize,
) -> Result<DotWeights> {
    let weight = values(tensors, &format!("{name}.weight"), n_out * n_in)?;
    let bias = values(tensors, &format!("{name}.bias"), n_out)?;
    Ok(DotWeights::new(n_in, n_out, bias, |i, o| {
        weight[o * n_in + i]
    }))
}

fn values(tensors: &HashMap<String, Tensor>, name: &str, len: usize) -> Result<Vec<f32>> {
    let t = tensors.get(name).ok_or_else(|| {
        WickError::InvalidSpec(format!(
            "the weights have no tensor `{name}`; the package does not match its spec"
        ))
    })?;
    let v = t
        .to_dtype(DType::F32)?
        .to_device(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if v.len() != len {
        return Err(WickError::InvalidSpec(format!(
            "tensor `{name}` has {} values but the spec needs {len}",
            v.len()
        )));
    }
    Ok(v)
}

fn to_channels_last(chw: &[f32], d: Dims, hwc: &mut [f32]) {
    let plane = d.h * d.w;
    for ch in 0..d.c {
        for p in 0..plane {
            hwc[p * d.c + ch] = chw[ch * plane + p];
        }
    }
}

/// The receptive field of output (`y0`, `x0`) (top-left input corner before padding), zeros
/// where it overhangs the image.
fn gather_patch(
    x: &[f32],
    d: Dims,
    y0: usize,
    x0: usize,
    kernel: usize,
    pad: usize,
    patch: &mut [f32],
) {
    let row_len = kernel * d.c;
    for ky in 0..kernel {
        let row = &mut patch[ky * row_len..(ky + 1) * row_len];
        let iy = (y0 + ky).wrapping_sub(pad);
        if iy >= d.h {
            row.fill(0.0);
            continue;
        }
        for kx in 0..kernel {
            let cell = &mut row[kx * d.c..(kx + 1) * d.c];
            let ix = (x0 + kx).wrapping_sub(pad);
            if ix >= d.w {
                cell.fill(0.0);
            } else {
                let at = (iy * d.w + ix) * d.c;
                cell.copy_from_slice(&x[at..at + d.c]);
            }
        }
    }
}

/// Non-overlapping `size` × `size` pooling (the remainder rows/columns dropped, as candle does).
fn pool(x: &[f32], d: Dims, size: usize, max: bool, y: &mut [f32]) -> usize {
    let out = Dims {
        h: d.h / size,
        w: d.w / size,
        c: d.c,
    };
    let area = (size * size) as f32;
    for oy in 0..out.h {
        for ox in 0..out.w {
            let dst = &mut y[(oy * out.w + ox) * d.c..][..d.c];
            dst.fill(if max { f32::NEG_INFINITY } else { 0.0 });
            for ky in 0..size {
                for kx in 0..size {
                    let src = &x[((oy * size + ky) * d.w + ox * size + kx) * d.c..][..d.c];
                    for (o, &v) in dst.iter_mut().zip(src) {
                        *o = if max { o.max(v) } else { *o + v };
                    }
                }
            }
            if !max {
                dst.iter_mut().for_each(|o| *o /= area);
            }
        }
    }
    out.len()
}

/// One loop per function (a `match` per value would stop the loop being vectorised).
fn activate(x: &[f32], function: Activation, y: &mut [f32]) {
    let apply =
        |f: fn(f32) -> f32, y: &mut [f32]| x.iter().zip(y.iter_mut()).for_each(|(&v, o)| *o = f(v));
    match function {
        Activation::Relu => apply(|v| v.max(0.0), y),
        Activation::Gelu => apply(
            |v| 0.5 * v * (1.0 + libm::erff(v / std::f32::consts::SQRT_2)),
            y,
        ),
        Activation::Tanh => apply(f32::tanh, y),
        Activation::Sigmoid => apply(|v| 1.0 / (1.0 + (-v).exp()), y),
        Activation::Silu => apply(|v| v / (1.0 + (-v).exp()), y),
    }
}

/// `out[r·n_out + o] = bias[o] + Σᵢ x[i·R + r] · weight[i·stride + o]` for `r < rows`, where `R`
/// is 1 for one input and [`TILE_ROWS`] for more (`rows` ≤ `TILE_ROWS`): inputs interleaved, so that
/// a tile's values for one weight row are adjacent. A last, partial tile computes its missing rows
/// from whatever they hold and drops them.
///
/// A tile of up to `TILE_ROWS` inputs × 4 blocks of `LANES` outputs is summed in registers: the tile
/// reads each weight row once for all its inputs (a convolution's weights exceed the L1 cache), and
/// its independent sums keep the SIMD units busy where one chain of dependent additions would leave
/// them idle three cycles in four.
#[multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma", "aarch64+neon"))]
#[allow(clippy::too_many_arguments)] // a kernel's slices and sizes, read in its innermost loop
fn dot_rows(
    x: &[f32],
    rows: usize,
    weight: &[f32],
    stride: usize,
    bias: &[f32],
    n_out: usize,
    out: &mut [f32],
) {
    let fused = multiversion::target::target_cfg_f!(target_feature = "fma");
    dot_rows_with(x, rows, weight, stride, bias, n_out, out, fused);
}

/// [`dot_rows`] with or without fused multiply-add; inlined into each of its CPU versions.
#[inline(always)]
#[allow(clippy::too_many_arguments)] // as `dot_rows`, and whether to fuse
fn dot_rows_with(
    x: &[f32],
    rows: usize,
    weight: &[f32],
    stride: usize,
    bias: &[f32],
    n_out: usize,
    out: &mut [f32],
    fused: bool,
) {
    let mut col = 0;
    while col < n_out {
        let tile = Tile {
            x,
            rows,
            weight,
            stride,
            col,
            fused,
        };
        let width = match ((n_out - col).div_ceil(LANES), rows) {
            (1, 1) => tile.run::<1, 1>(bias, n_out, out),
            (2, 1) => tile.run::<1, 2>(bias, n_out, out),
            (3, 1) => tile.run::<1, 3>(bias, n_out, out),
            (_, 1) => tile.run::<1, 4>(bias, n_out, out),
            (1, _) => tile.run::<TILE_ROWS, 1>(bias, n_out, out),
            (2, _) => tile.run::<TILE_ROWS, 2>(bias, n_out, out),
            (3, _) => tile.run::<TILE_ROWS, 3>(bias, n_out, out),
            (_, _) => tile.run::<TILE_ROWS, 4>(bias, n_out, out),
        };
        col += width;
    }
}

/// One register tile of [`dot_rows`]: outputs `col..col + GROUP·LANES` of up to `ROWS` inputs.
struct Tile<'a> {
    /// `ROWS` inputs interleaved: value `i` of input `r` at `i·ROWS + r` (rows past `rows` are
    /// computed and dropped).
    x: &'a [f32],
    rows: usize,
    weight: &'a [f32],
    stride: usize,
    col: usize,
    fused: bool,
}

impl Tile<'_> {
    /// Returns the number of output columns covered.
    #[inline(always)]
    fn run<const ROWS: usize, const GROUP: usize>(
        &self,
        bias: &[f32],
        n_out: usize,
        out: &mut [f32],
    ) -> usize {
        let width = GROUP * LANES;
        let rows = self.rows.min(ROWS);
        let mut acc = [[[0.0f32; LANES]; GROUP]; ROWS];
        // No bounds checks inside this loop: a panic path there makes the compiler keep the sums in
        // memory as well as in registers.
        for (xs, row) in self
            .x
            .chunks_exact(ROWS)
            .zip(self.weight.chunks_exact(self.stride))
        {
            let (Ok(xs), Some(w)) = (
                <&[f32; ROWS]>::try_from(xs),
                row.get(self.col..self.col + width),
            ) else {
                break;
            };
            for (acc, &xv) in acc.iter_mut().zip(xs) {
                for (acc, w) in acc.iter_mut().zip(w.chunks_exact(LANES)) {
                    // `mul_add` is one instruction where FMA exists and a slow library call where not.
                    if self.fused {
                        acc.iter_mut()
                            .zip(w)
                            .for_each(|(a, &w)| *a = xv.mul_add(w, *a));
                    } else {
                        acc.iter_mut().zip(w).for_each(|(a, &w)| *a += xv * w);
                    }
                }
            }
        }
        let end = (self.col + width).min(n_out);
        for (r, acc) in acc.iter().enumerate().take(rows) {
            for c in self.col..end {
                let j = c - self.col;
                out[r * n_out + c] = acc[j / LANES][j % LANES] + bias[c];
            }
        }
        width
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::model::spec::Padding;
    use crate::model::Network;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// The plan and candle agree on the same weights and inputs, layer kinds and odd sizes included.
    fn agrees_with_candle(input_shape: &[usize], layers: &[Layer], n_outputs: usize, n: usize) {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let fresh = Network::new(input_shape, layers, n_outputs, &mut rng, &Device::Cpu).unwrap();
        // A new batch norm is the identity (mean 0, variance 1, scale 1, shift 0): give every one
        // statistics and an affine map as training would, so that folding them is tested.
        let mut tensors = fresh.tensors().unwrap();
        let norms: Vec<String> = tensors
            .keys()
            .filter_map(|k| k.strip_suffix(".running_mean").map(str::to_string))
            .collect();
        for (i, prefix) in norms.iter().enumerate() {
            for (suffix, low, high) in [
                ("running_mean", -0.5, 0.5),
                ("running_var", 0.5, 2.0),
                ("weight", 0.5, 1.5),
                ("bias", -0.5, 0.5),
            ] {
                let name = format!("{prefix}.{suffix}");
                let len = tensors[&name].elem_count();
                let v: Vec<f32> = (0..len)
                    .map(|j| low + (high - low) * (((i + 3) * (j + 5) * 7919 % 97) as f32 / 96.0))
                    .collect();
                tensors.insert(name, Tensor::from_vec(v, len, &Device::Cpu).unwrap());
            }
        }
        let net =
            Network::from_tensors(input_shape, layers, n_outputs, &tensors, &Device::Cpu).unwrap();
        let plan = CpuNet::new(input_shape, layers, n_outputs, &tensors).unwrap();
        let per: usize = input_shape.iter().product();
        let x: Vec<f32> = (0..n * per)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let mut dims = vec![n];
        dims.extend_from_slice(input_shape);
        let expected = net
            .forward(
                &Tensor::from_vec(x.clone(), dims, &Device::Cpu).unwrap(),
                false,
                None,
            )
            .unwrap();
        let expected = expected.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let got = plan.forward(&x, n);
        assert_eq!(got.len(), expected.len());
        // Again, on buffers the first call (and other tests' networks) left behind.
        assert_eq!(plan.forward(&x, n), got);
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert!(
                (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                "output {i}: plan {g}, candle {e} ({layers:?})"
            );
        }
    }

    #[test]
    fn default_cnn_matches_candle() {
        // 40 images: a batch split over threads.
        agrees_with_candle(&[1, 8, 8], &crate::model::default_cnn_layers(), 10, 40);
    }

    #[test]
    fn lenet_on_colour_images_matches_candle() {
        agrees_with_candle(&[3, 28, 28], &crate::model::lenet_layers(), 5, 3);
    }

    #[test]
    fn strides_valid_padding_batch_norm_average_pooling_and_every_activation_match_candle() {
        let act = |function| Layer::Activation { function };
        let layers = vec![
            Layer::Conv2d {
                filters: 5,
                kernel: 3,
                stride: 2,
                padding: Padding::Valid,
            },
            Layer::BatchNorm,
            act(Activation::Gelu),
            Layer::Conv2d {
                filters: 17,
                kernel: 5,
                stride: 1,
                padding: Padding::Same,
            },
            act(Activation::Silu),
            Layer::AvgPool2d { size: 2 },
            Layer::Dropout { rate: 0.3 },
            Layer::Flatten,
            Layer::Dense { units: 19 },
            Layer::BatchNorm,
            act(Activation::Tanh),
            Layer::Dense { units: 3 },
            act(Activation::Sigmoid),
        ];
        agrees_with_candle(&[2, 13, 11], &layers, 4, 3);
    }

    #[test]
    fn a_multilayer_perceptron_on_rows_matches_candle() {
        let layers = vec![
            Layer::Dense { units: 33 },
            Layer::Activation {
                function: Activation::Relu,
            },
            Layer::Dense { units: 16 },
        ];
        agrees_with_candle(&[7], &layers, 1, 5);
    }

    /// The plain multiply-then-add path (CPUs without FMA) sums what the fused one does.
    #[test]
    fn tiles_without_fused_multiply_add_agree() {
        let (n_in, n_out) = (37, 70);
        let dot = DotWeights::new(
            n_in,
            n_out,
            (0..n_out).map(|o| o as f32 * 0.01).collect(),
            |i, o| ((i * 31 + o * 17) % 23) as f32 / 11.0 - 1.0,
        );
        let x: Vec<f32> = (0..n_in * TILE_ROWS)
            .map(|i| ((i * 13) % 19) as f32 / 9.0 - 1.0)
            .collect();
        let run = |fused| {
            let mut out = vec![0.0; 3 * n_out];
            dot_rows_with(
                &x,
                3,
                &dot.weight,
                dot.stride,
                &dot.bias,
                n_out,
                &mut out,
                fused,
            );
            out
        };
        let expected: Vec<f32> = (0..3 * n_out)
            .map(|k| {
                let (r, o) = (k / n_out, k % n_out);
                dot.bias[o]
                    + (0..n_in)
                        .map(|i| x[i * TILE_ROWS + r] * dot.weight[i * dot.stride + o])
                        .sum::<f32>()
            })
            .collect();
        for fused in [false, true] {
            for (got, want) in run(fused).iter().zip(&expected) {
                assert!((got - want).abs() < 1e-4, "fused {fused}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn a_missing_tensor_names_it() {
        let err = CpuNet::new(&[4], &[], 2, &HashMap::new()).err().unwrap();
        assert!(err.to_string().contains("output.weight"), "{err}");
    }
}
