//! Scratch buffers kept between training steps.
//!
//! A training step of LeNet at batch 64 needs ~20 MB of scratch (the unfolded inputs kept for the
//! backward pass, pre-activation maps, their gradients). Allocating that fresh every step means the
//! allocator maps and unmaps it and the kernel zero-fills every page again; earlier profiling of
//! candle's training put about a third of the time in those page faults. Buffers taken here go back
//! to a small pool when their op is dropped, so the next step finds them already mapped.

use std::sync::Mutex;

/// Buffers kept at most; a step of the deepest stack here holds fewer at once.
const POOL_MAX_BUFFERS: usize = 32;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of exactly `len` values whose contents are unspecified (the caller writes every one).
pub(crate) fn take(len: usize) -> Vec<f32> {
    let reused = POOL.lock().ok().and_then(|mut pool| {
        // The smallest buffer that fits, so big ones stay for big requests.
        let best = pool.iter().enumerate().filter(|(_, b)| b.capacity() >= len).min_by_key(|(_, b)| b.capacity()).map(|(i, _)| i)?;
        Some(pool.swap_remove(best))
    });
    let mut buf = reused.unwrap_or_default();
    // Within capacity `resize` does not reallocate; stale values left in place are overwritten by
    // the caller, and only the tail beyond the old length is written here.
    buf.resize(len, 0.0);
    buf
}

/// Hands a buffer back for reuse.
pub(crate) fn give(buf: Vec<f32>) {
    if buf.capacity() == 0 {
        return;
    }
    if let Ok(mut pool) = POOL.lock() {
        if pool.len() < POOL_MAX_BUFFERS {
            pool.push(buf);
        } else if let Some(smallest) = pool.iter_mut().min_by_key(|b| b.capacity()) {
            if smallest.capacity() < buf.capacity() {
                *smallest = buf;
            }
        }
    }
}
