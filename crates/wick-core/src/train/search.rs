//! The leaderboard: tries the templates that fit the table with a small random hyper-parameter
//! search inside a time budget, ranks them on the validation rows only, then trains the best once
//! more and scores it on the test rows, the only time those are touched.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{prepare_tabular, Split, Task};
use crate::error::{Result, WickError};
use crate::metrics::Metrics;
use crate::model::{Activation, ModelSpec};
use crate::train::events::{CancelToken, TrainEvent};
use crate::train::job::{run, TrainJob};
use crate::train::table_data::TableData;
use crate::train::{TrainConfig, TrainOutcome};

/// One tried model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The template and its settings in words.
    pub name: String,
    pub spec: ModelSpec,
    /// `r2` (numbers) or `accuracy` (classes) on the validation rows; higher is better.
    pub valid_score: f64,
    pub duration_secs: f64,
    /// The learning rate and epochs it was trained with (networks use them; others ignore them).
    pub lr: f64,
    pub epochs: usize,
}

impl Candidate {
    /// `config` with this candidate's network settings: how it was trained, and how to train it again.
    pub fn config(&self, config: &TrainConfig) -> TrainConfig {
        TrainConfig {
            lr: self.lr,
            epochs: self.epochs,
            ..config.clone()
        }
    }
}

/// What the search tells as it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SearchEvent {
    CandidateStarted {
        index: usize,
        name: String,
    },
    CandidateDone(Candidate),
    /// A candidate that could not be trained (it is skipped).
    CandidateFailed {
        name: String,
        message: String,
    },
    /// The best candidate is being trained on the usual split, for its test score.
    FinalStarted {
        name: String,
    },
}

/// The ranked candidates and the best one's final run.
pub struct SearchOutcome {
    pub metric: String,
    /// Best first.
    pub leaderboard: Vec<Candidate>,
    /// The best candidate trained on the usual split, scored once on the test rows.
    pub best: TrainOutcome,
}

/// Runs the search. `config` gives the split, the seed and the network settings.
pub fn search(
    table: TableData<'_>,
    config: &TrainConfig,
    budget_secs: f64,
    on_event: &mut dyn FnMut(SearchEvent),
    cancel: &CancelToken,
) -> Result<SearchOutcome> {
    if !(budget_secs > 0.0 && budget_secs.is_finite()) {
        return Err(WickError::InvalidSpec(format!(
            "the search needs a time budget of more than 0 seconds, got {budget_secs}"
        )));
    }
    let started = Instant::now();
    let dataset = prepare_tabular(table.df, table.request)?;
    let task = dataset.target.task();
    let split = config.split_rows(dataset.rows(), dataset.target.class_indices())?;
    if split.valid.is_empty() {
        return Err(WickError::InvalidSpec(
            "the search ranks models on the validation rows; set a validation fraction above 0"
                .into(),
        ));
    }
    // Candidates are scored on the validation rows (as the "test" of their run); the test rows
    // stay out of every candidate's run.
    let ranking = TrainConfig {
        fixed_split: Some(Split {
            train: split.train.clone(),
            valid: split.valid.clone(),
            test: split.valid.clone(),
        }),
        ..config.clone()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut leaderboard: Vec<Candidate> = Vec::new();
    let mut index = 0;
    let mut draws = 0;
    let mut slowest = 0.0f64;
    let mut tried = std::collections::HashSet::new();
    let first = first_round(task);
    loop {
        let (name, spec, net_config) = match first.get(index) {
            Some(c) => c.clone(),
            None => random_candidate(task, &mut rng),
        };
        draws += 1;
        // The random space is finite: stop when draws keep repeating what was tried.
        if draws > 400 || index >= MAX_CANDIDATES {
            break;
        }
        if !tried.insert(name.clone()) {
            continue;
        }
        // Start another only if it likely ends within the budget.
        let elapsed = started.elapsed().as_secs_f64();
        if index > 0 && elapsed + slowest.min(budget_secs) > budget_secs {
            break;
        }
        if cancel.is_cancelled() {
            return Err(WickError::Cancelled);
        }
        on_event(SearchEvent::CandidateStarted {
            index,
            name: name.clone(),
        });
        let t = Instant::now();
        let run_config = TrainConfig {
            lr: net_config.0,
            epochs: net_config.1,
            ..ranking.clone()
        };
        let job = TrainJob::table(table, spec.clone(), run_config);
        match run(job, &mut |_: TrainEvent| {}, cancel).map(|done| done.outcome) {
            Ok(outcome) => {
                let duration_secs = t.elapsed().as_secs_f64();
                slowest = slowest.max(duration_secs);
                let valid_score = outcome
                    .report
                    .test
                    .as_ref()
                    .map_or(f64::NEG_INFINITY, score);
                let candidate = Candidate {
                    name,
                    spec,
                    valid_score,
                    duration_secs,
                    lr: net_config.0,
                    epochs: net_config.1,
                };
                on_event(SearchEvent::CandidateDone(candidate.clone()));
                leaderboard.push(candidate);
            }
            Err(WickError::Cancelled) => return Err(WickError::Cancelled),
            Err(e) => on_event(SearchEvent::CandidateFailed {
                name,
                message: e.to_string(),
            }),
        }
        index += 1;
    }
    leaderboard.sort_by(|a, b| {
        b.valid_score
            .total_cmp(&a.valid_score)
            .then(a.duration_secs.total_cmp(&b.duration_secs))
    });
    let Some(top) = leaderboard.first().cloned() else {
        return Err(WickError::InvalidSpec(
            "no candidate could be trained on this table; train one model to see why".into(),
        ));
    };
    on_event(SearchEvent::FinalStarted {
        name: top.name.clone(),
    });
    // Trained again exactly as it was ranked, on the usual split.
    let final_config = TrainConfig {
        fixed_split: Some(split),
        ..top.config(config)
    };
    let best = run(
        TrainJob::table(table, top.spec.clone(), final_config),
        &mut |_: TrainEvent| {},
        cancel,
    )?
    .outcome;
    let metric = if task == Task::Regression {
        "r2"
    } else {
        "accuracy"
    };
    Ok(SearchOutcome {
        metric: metric.into(),
        leaderboard,
        best,
    })
}

fn score(m: &Metrics) -> f64 {
    match m {
        Metrics::Regression(r) => r.r2,
        Metrics::Classification(c) => c.accuracy,
    }
}

/// (learning rate, epochs) for networks; ignored by the others.
type NetSettings = (f64, usize);

/// Every fitting template once, with its defaults.
fn first_round(task: Task) -> Vec<(String, ModelSpec, NetSettings)> {
    let mut out = vec![
        (
            "boosted trees (defaults)".to_string(),
            ModelSpec::default_gbdt(),
            NET_DEFAULT,
        ),
        (
            "random forest (defaults)".to_string(),
            ModelSpec::default_forest(),
            NET_DEFAULT,
        ),
    ];
    match task {
        Task::Regression => {
            out.push((
                "linear".into(),
                ModelSpec::Linear {
                    ridge_alpha: 0.0,
                    poly_degree: 1,
                },
                NET_DEFAULT,
            ));
            out.push((
                "ridge, alpha 1".into(),
                ModelSpec::Linear {
                    ridge_alpha: 1.0,
                    poly_degree: 1,
                },
                NET_DEFAULT,
            ));
        }
        Task::Classification => out.push(("logistic".into(), ModelSpec::Logistic, (0.05, 60))),
    }
    out.push((
        "MLP 64-32".into(),
        ModelSpec::Mlp {
            hidden: vec![64, 32],
            activation: Activation::Relu,
            dropout: 0.0,
        },
        (3e-3, 60),
    ));
    out
}

const NET_DEFAULT: NetSettings = (3e-3, 60);

/// At most this many candidates, whatever the budget.
const MAX_CANDIDATES: usize = 100;

/// A random draw around the defaults: mostly trees (the usual winners on tables), some networks.
fn random_candidate(task: Task, rng: &mut ChaCha8Rng) -> (String, ModelSpec, NetSettings) {
    match rng.random_range(0..10) {
        0..=4 => {
            let depth = rng.random_range(2..=10);
            let rate = [0.03, 0.05, 0.1, 0.2][rng.random_range(0..4)];
            let l2 = [0.0, 1.0, 5.0][rng.random_range(0..3)];
            let min_leaf = [1.0, 5.0, 20.0][rng.random_range(0..3)];
            let spec = ModelSpec::Gbdt {
                trees: 600,
                learning_rate: rate,
                max_depth: depth,
                min_leaf_weight: min_leaf,
                l2,
                early_stopping_rounds: Some(30),
            };
            (
                format!("boosted trees, depth {depth}, rate {rate}, l2 {l2}, min leaf {min_leaf}"),
                spec,
                NET_DEFAULT,
            )
        }
        5..=6 => {
            let depth = [None, Some(8), Some(16)][rng.random_range(0..3)];
            let leaf = [1, 2, 5, 10][rng.random_range(0..4)];
            let spec = ModelSpec::Forest {
                trees: 150,
                max_depth: depth,
                min_samples_leaf: leaf,
                max_features: None,
            };
            let depth_text = depth.map_or("unlimited".to_string(), |d| d.to_string());
            (
                format!("random forest, depth {depth_text}, min leaf {leaf}"),
                spec,
                NET_DEFAULT,
            )
        }
        7 if task == Task::Regression => {
            let alpha = [0.1, 10.0, 100.0][rng.random_range(0..3)];
            let degree = rng.random_range(1..=3);
            (
                format!("polynomial degree {degree}, ridge alpha {alpha}"),
                ModelSpec::Linear {
                    ridge_alpha: alpha,
                    poly_degree: degree,
                },
                NET_DEFAULT,
            )
        }
        _ => {
            let width = [16, 32, 64, 128][rng.random_range(0..4)];
            let layers = rng.random_range(1..=3);
            let dropout = [0.0, 0.1, 0.3][rng.random_range(0..3)];
            let lr = [1e-3, 3e-3, 1e-2][rng.random_range(0..3)];
            let hidden = vec![width; layers];
            let spec = ModelSpec::Mlp {
                hidden,
                activation: Activation::Relu,
                dropout,
            };
            (
                format!("MLP {layers}×{width}, dropout {dropout}, lr {lr}"),
                spec,
                (lr, 60),
            )
        }
    }
}
