//! Fused CPU training ops with their own backward, plugged into candle's autograd as custom ops.
//!
//! Candle stays the autograd engine and the GPU path; on the CPU, a network's convolution blocks
//! (conv + bias + ReLU + max-pool) and its separate max-pools run here instead of as candle's
//! separate ops, whose CPU backward is where LeNet training spent most of its time (see
//! ARCHITECTURE.md, "Fast CPU training"). Each op is checked against candle's own ops and against
//! finite differences in `tests.rs` (this module's unit tests).

mod buffers;
mod conv;
mod matmul;
mod pool;
mod update;

use candle_core::{bail, CpuStorage, Layout, Result, Storage, StorageRef, Tensor};

pub(crate) use conv::{conv_block, conv_block_residual, ConvBlock};
pub(crate) use pool::{max_pool2d, max_pool2d_by_reduction, MaxPool};
pub(crate) use update::{update_in_place, UpdateRule};

/// The contiguous f32 values a CPU storage holds for `layout`.
fn cpu_slice<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(values) = storage else {
        bail!("fused CPU ops take f32 tensors")
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => bail!("fused CPU ops take contiguous tensors"),
    }
}

/// Read access to a contiguous f32 CPU tensor's values (the backward passes read their inputs).
struct F32View<'a> {
    guard: StorageRef<'a>,
    start: usize,
    end: usize,
}

impl<'a> F32View<'a> {
    fn new(tensor: &'a Tensor) -> Result<Self> {
        let (guard, layout) = tensor.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("fused CPU ops take contiguous tensors")
        };
        if !matches!(&*guard, Storage::Cpu(CpuStorage::F32(_))) {
            bail!("fused CPU ops take f32 tensors on the CPU");
        }
        Ok(Self { guard, start, end })
    }

    fn as_slice(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(values)) => &values[self.start..self.end],
            _ => &[],
        }
    }
}

/// ReLU as PyTorch computes it: negatives to zero, NaN kept.
#[inline]
fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

#[cfg(test)]
mod tests;
