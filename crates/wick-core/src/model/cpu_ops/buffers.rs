//! Scratch buffers kept between training steps.
//!
//! A training step of LeNet at batch 64 needs ~20 MB of scratch (the unfolded inputs kept for the
//! backward pass, pre-activation maps, their gradients). Allocating that fresh every step means the
//! allocator maps and unmaps it and the kernel zero-fills every page again; earlier profiling of
//! candle's training put about a third of the time in those page faults. Buffers taken here go back
//! to a small pool when their op is dropped, so the next step finds them already mapped.

use std::sync::Mutex;

/// Buffers kept at most; a step holds a few per thread at once.
const POOL_MAX_BUFFERS: usize = 32;
/// Bytes kept at most, so that an idle app does not sit on a large network's scratch.
const POOL_MAX_BYTES: usize = 256 << 20;

static POOL: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of exactly `len` values whose contents are unspecified (the caller writes every one).
pub(crate) fn take(len: usize) -> Vec<f32> {
    let reused = POOL.lock().ok().and_then(|mut pool| {
        // The smallest buffer that fits, so big ones stay for big requests.
        let best = pool
            .iter()
            .enumerate()
            .filter(|(_, b)| b.capacity() >= len)
            .min_by_key(|(_, b)| b.capacity())
            .map(|(i, _)| i)?;
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
        let held: usize = pool
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<f32>())
            .sum();
        if held + buf.capacity() * std::mem::size_of::<f32>() > POOL_MAX_BYTES {
            return;
        }
        if pool.len() < POOL_MAX_BUFFERS {
            pool.push(buf);
        } else if let Some(smallest) = pool.iter_mut().min_by_key(|b| b.capacity()) {
            if smallest.capacity() < buf.capacity() {
                *smallest = buf;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
    use super::*;

    #[test]
    fn buffers_come_back_at_the_asked_length_and_the_pool_stays_under_its_cap() {
        let a = take(1000);
        assert_eq!(a.len(), 1000);
        give(a);
        // Shorter or longer than what was given back: the length asked for, either way.
        assert_eq!(take(400).len(), 400);
        assert_eq!(take(1500).len(), 1500);
        give(vec![0.0; POOL_MAX_BYTES / std::mem::size_of::<f32>() + 1]);
        let held: usize = POOL
            .lock()
            .unwrap()
            .iter()
            .map(|b| b.capacity() * std::mem::size_of::<f32>())
            .sum();
        assert!(held <= POOL_MAX_BYTES, "{held} bytes held");
    }
}
