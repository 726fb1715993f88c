//! The one way a run is trained. The CLI (`wick train`, `wick improve`), the app's training job,
//! *Improve with live data* and *Find the best model* all describe what they want as a
//! [`TrainJob`] and call [`run`]: it fetches a backbone when one is needed, cross-validates when
//! asked, chooses in-memory, streamed, live-row or image training, and saves the package.

use std::path::PathBuf;

use polars::prelude::DataFrame;

use crate::data::ImageIndex;
use crate::error::{Result, WickError};
use crate::hub::{BackboneSource, HubClient};
use crate::model::ModelSpec;
use crate::package::{save_package, Manifest};
use crate::run::{TrainConfig, TrainOutcome};
use crate::train::cv::{cross_validate, CvReport};
use crate::train::events::{CancelToken, TrainEvent, TrainObserver};
use crate::train::live_data::train_with_live_rows;
use crate::train::pipeline::{train_images, train_table};
use crate::train::streamed::{train_csv_streamed, StreamOptions};
use crate::train::table_data::TableData;

/// What a run trains on.
pub enum JobData<'a> {
    /// A table, and which of its rows train.
    Table {
        table: TableData<'a>,
        rows: TableRows<'a>,
    },
    /// An image folder or image CSV.
    Images { index: &'a ImageIndex },
}

/// Which rows of a table train the model.
pub enum TableRows<'a> {
    /// The frame's rows, split by the config.
    InMemory,
    /// The frame is a seeded sample of `source`, a CSV too large to load: the run reads the file in
    /// chunks, and the sample fixes the columns' encodings.
    Streamed(StreamOptions),
    /// *Improve with live data*: the frame's rows split as before, plus these rows (labelled on the
    /// endpoint), which only train; the test rows stay the earlier run's.
    WithLiveRows(&'a DataFrame),
}

/// Where the trained model is saved.
pub struct SaveTo {
    /// The model's name in its manifest (and on an endpoint).
    pub name: String,
    /// The `.wick` package folder.
    pub path: PathBuf,
}

/// One training run, as every caller describes it.
pub struct TrainJob<'a> {
    pub data: JobData<'a>,
    pub spec: ModelSpec,
    pub config: TrainConfig,
    /// Cross-validate with this many folds (at least 2) before the run (tables in memory only).
    pub cv_folds: Option<usize>,
    /// A backbone to put on this machine first (downloaded from the Hub on first use); its
    /// architecture and weights then fill the transfer spec.
    pub backbone: Option<(BackboneSource, HubClient)>,
    /// Save the package here; `None` keeps the model in memory only (a search's candidates).
    pub save: Option<SaveTo>,
}

impl<'a> TrainJob<'a> {
    /// A run on a table in memory with nothing before or after it: the building block of
    /// cross-validation's folds and the search's candidates.
    pub fn table(table: TableData<'a>, spec: ModelSpec, config: TrainConfig) -> Self {
        Self {
            data: JobData::Table {
                table,
                rows: TableRows::InMemory,
            },
            spec,
            config,
            cv_folds: None,
            backbone: None,
            save: None,
        }
    }
}

/// What a job produced.
pub struct JobOutcome {
    pub outcome: TrainOutcome,
    /// The folds' figures, when the job cross-validated.
    pub cv: Option<CvReport>,
    /// The saved package's manifest, when the job saved one.
    pub manifest: Option<Manifest>,
}

/// Runs `job`. The run's events go to `observer`; cross-validation's folds report only
/// [`TrainEvent::CrossValidating`] (their curves are not the run's).
pub fn run(
    job: TrainJob<'_>,
    observer: &mut dyn TrainObserver,
    cancel: &CancelToken,
) -> Result<JobOutcome> {
    let TrainJob {
        data,
        mut spec,
        config,
        cv_folds,
        backbone,
        save,
    } = job;
    if let Some((source, client)) = backbone {
        let ModelSpec::Transfer { backbone: chosen } = &mut spec else {
            return Err(WickError::InvalidSpec(
                "a backbone was given for a model that is not a transfer model".into(),
            ));
        };
        let (arch, weights) = source.resolve(&client, observer)?;
        chosen.arch = arch;
        chosen.weights = weights;
        if cancel.is_cancelled() {
            observer.on_event(TrainEvent::Cancelled);
            return Err(WickError::Cancelled);
        }
    }
    let cv = match (&data, cv_folds) {
        (_, None) => None,
        (
            JobData::Table {
                table,
                rows: TableRows::InMemory,
            },
            Some(k),
        ) => {
            let mut fold = 0;
            let mut progress = |event: TrainEvent| {
                if let TrainEvent::Started { .. } = event {
                    fold += 1;
                    observer.on_event(TrainEvent::CrossValidating { fold, folds: k });
                }
            };
            Some(cross_validate(
                *table,
                &spec,
                &config,
                k,
                &mut progress,
                cancel,
            )?)
        }
        (JobData::Table { .. }, Some(_)) => {
            return Err(WickError::InvalidSpec(
                "cross-validation refits the model once per fold, which for a file this large \
                 (or with live rows added) means training many times; leave it out"
                    .into(),
            ))
        }
        (JobData::Images { .. }, Some(_)) => {
            return Err(WickError::InvalidSpec(
                "cross-validation is for table models; for an image folder, leave it out".into(),
            ))
        }
    };
    let outcome = match data {
        JobData::Table { table, rows } => match rows {
            TableRows::InMemory => train_table(table, &spec, &config, observer, cancel)?,
            TableRows::Streamed(options) => {
                train_csv_streamed(table, &spec, &config, &options, observer, cancel)?
            }
            TableRows::WithLiveRows(live) => {
                train_with_live_rows(table, live, &spec, &config, observer, cancel)?
            }
        },
        JobData::Images { index } => train_images(index, &spec, &config, observer, cancel)?,
    };
    let manifest = match save {
        Some(to) => Some(
            save_package(&outcome.model, &outcome.report, &to.name, &to.path).map_err(|e| {
                WickError::Package {
                    path: to.path.clone(),
                    message: format!("the model trained but could not be saved: {e}"),
                }
            })?,
        ),
        None => None,
    };
    Ok(JobOutcome {
        outcome,
        cv,
        manifest,
    })
}
