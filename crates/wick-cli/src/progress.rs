//! Progress bars drawn from the trainer's events (one consumer of the event stream among several).

use indicatif::{ProgressBar, ProgressStyle};
use wick_core::train::{SplitName, TrainEvent, TrainObserver};

pub struct ProgressBars {
    bar: Option<ProgressBar>,
    quiet: bool,
    epochs: usize,
    line: Vec<String>,
    /// The epoch (or tree) whose metrics `line` holds.
    line_epoch: usize,
    /// The pass over a large file being read, if one is.
    reading: Option<usize>,
}

impl ProgressBars {
    pub fn new(quiet: bool) -> Self {
        Self {
            bar: None,
            quiet,
            epochs: 0,
            line: Vec::new(),
            line_epoch: 0,
            reading: None,
        }
    }
}

impl TrainObserver for ProgressBars {
    fn on_event(&mut self, event: TrainEvent) {
        if self.quiet {
            return;
        }
        match event {
            TrainEvent::ReadingData {
                pass,
                passes,
                bytes_done,
                bytes_total,
            } => {
                if self.reading != Some(pass) {
                    if let Some(bar) = self.bar.take() {
                        bar.finish_and_clear();
                    }
                    let bar = ProgressBar::new(bytes_total);
                    bar.set_style(
                        ProgressStyle::with_template("{bar:30.green/blue} {bytes}/{total_bytes}  {elapsed_precise} (eta {eta})  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_message(format!("reading the file, pass {pass} of {passes}"));
                    self.bar = Some(bar);
                    self.reading = Some(pass);
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(bytes_done);
                }
            }
            TrainEvent::Downloading {
                file,
                bytes_done,
                bytes_total,
            } => {
                if self.reading.is_some() || self.bar.is_none() {
                    if let Some(bar) = self.bar.take() {
                        bar.finish_and_clear();
                    }
                    let bar = ProgressBar::new(bytes_total);
                    bar.set_style(
                        ProgressStyle::with_template("{bar:30.green/blue} {bytes}/{total_bytes}  {bytes_per_sec} (eta {eta})  {msg}")
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    bar.set_message(format!("downloading {file}"));
                    self.bar = Some(bar);
                    self.reading = None;
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(bytes_done);
                    if bytes_done >= bytes_total {
                        bar.finish_and_clear();
                        self.bar = None;
                        eprintln!("downloaded {file} ({:.0} MB)", bytes_total as f64 / 1e6);
                    }
                }
            }
            TrainEvent::CrossValidating { fold, folds } => {
                eprintln!("cross-validation: fold {fold} of {folds}…");
            }
            TrainEvent::Started {
                device,
                epochs,
                steps_per_epoch,
                train_rows,
                valid_rows,
                test_rows,
            } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.reading = None;
                eprintln!("training on {device}: {train_rows} train / {valid_rows} validation / {test_rows} test rows");
                self.epochs = epochs;
                let bar = ProgressBar::new((epochs * steps_per_epoch) as u64);
                bar.set_style(
                    ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} steps  {elapsed_precise} (eta {eta})  {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                self.bar = Some(bar);
            }
            TrainEvent::Step { epoch, loss, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                    bar.set_message(format!("epoch {epoch}/{}  loss {loss:.4}", self.epochs));
                }
            }
            TrainEvent::Metric {
                epoch,
                split,
                name,
                value,
            } => {
                // Boosted trees send every tree's losses at once, without epoch ends: keep the last.
                if epoch != self.line_epoch {
                    self.line.clear();
                    self.line_epoch = epoch;
                }
                let split = match split {
                    SplitName::Train => "train",
                    SplitName::Valid => "valid",
                    SplitName::Test => "test",
                };
                self.line.push(format!("{split} {name} {value:.4}"));
            }
            TrainEvent::EpochFinished {
                epoch,
                samples_per_sec,
                ..
            } => {
                let text = format!(
                    "epoch {epoch:>3}: {}  ({samples_per_sec:.0} samples/s)",
                    self.line.join("  ")
                );
                match &self.bar {
                    Some(bar) => bar.println(text),
                    None => eprintln!("{text}"),
                }
                self.line.clear();
            }
            TrainEvent::EarlyStopped { epoch, best_epoch } => {
                eprintln!("stopped early at epoch {epoch}: validation loss has not improved since epoch {best_epoch}");
            }
            TrainEvent::Finished { duration_secs, .. } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                if !self.line.is_empty() {
                    eprintln!("{}", self.line.join("  "));
                    self.line.clear();
                }
                eprintln!("trained in {duration_secs:.1} s");
            }
            TrainEvent::Failed { .. } | TrainEvent::Cancelled => {
                if let Some(bar) = self.bar.take() {
                    bar.abandon();
                }
            }
        }
    }
}
