//! The trainer's event stream. The CLI's progress bars, the desktop plots and the tests all consume
//! these same events.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use crate::run::SplitName;

/// Everything the trainer reports while it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TrainEvent {
    /// Reading a file too large to load, before training on it: pass `pass` of `passes` over it.
    ReadingData {
        pass: usize,
        passes: usize,
        bytes_done: u64,
        bytes_total: u64,
    },
    /// Downloading pretrained weights before training (`file` is `repo/file` on the Hub).
    Downloading {
        file: String,
        bytes_done: u64,
        bytes_total: u64,
    },
    /// Cross-validation before the run: fold `fold` (from 1) of `folds` is training.
    CrossValidating {
        fold: usize,
        folds: usize,
    },
    Started {
        device: String,
        epochs: usize,
        steps_per_epoch: usize,
        train_rows: usize,
        valid_rows: usize,
        test_rows: usize,
    },
    /// One optimiser step; `loss` is the batch's training loss.
    Step {
        epoch: usize,
        step: usize,
        loss: f64,
    },
    /// One metric of one split at the end of an epoch (`loss`, `accuracy`, `r2`, …).
    Metric {
        epoch: usize,
        split: SplitName,
        name: String,
        value: f64,
    },
    EpochFinished {
        epoch: usize,
        duration_secs: f64,
        samples_per_sec: f64,
    },
    /// Training stopped early because validation loss stopped improving; `best_epoch`'s weights are kept.
    EarlyStopped {
        epoch: usize,
        best_epoch: usize,
    },
    Finished {
        epochs_run: usize,
        best_epoch: usize,
        duration_secs: f64,
    },
    Failed {
        message: String,
    },
    Cancelled,
}

/// Receives training events. Implemented for closures and channel senders.
pub trait TrainObserver {
    fn on_event(&mut self, event: TrainEvent);
}

impl<F: FnMut(TrainEvent)> TrainObserver for F {
    fn on_event(&mut self, event: TrainEvent) {
        self(event)
    }
}

impl TrainObserver for std::sync::mpsc::Sender<TrainEvent> {
    fn on_event(&mut self, event: TrainEvent) {
        // A receiver that went away (closed window) must not stop training; the result is still returned.
        let _ = self.send(event);
    }
}

/// Cancels a running training from another thread.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
