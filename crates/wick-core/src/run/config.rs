//! A training run's settings, below `package` (which keeps them in the manifest) and `train`.

use serde::{Deserialize, Serialize};

use crate::data::{Augment, Split, SplitFractions};
use crate::device::DeviceChoice;

/// Settings of one training run. Defaults suit the sample datasets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub weight_decay: f64,
    /// SGD momentum.
    pub momentum: f64,
    pub seed: u64,
    pub device: DeviceChoice,
    /// Stop after this many epochs without a better validation loss; `None` trains every epoch.
    pub early_stopping_patience: Option<usize>,
    pub split: SplitFractions,
    /// Use these rows instead of a random split (e.g. a split the user keeps in a column).
    pub fixed_split: Option<Split>,
    /// How much each class counts in the loss (classification only).
    pub class_weight: ClassWeight,
    /// Random changes to training images (image models only; none by default).
    pub augment: Augment,
}

/// Weights of the classes in the training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeight {
    /// Every row counts the same.
    #[default]
    None,
    /// Each class counts as much as the others in total: a row of class `c` weighs
    /// `rows / (classes · rows of c)` (scikit-learn's `class_weight="balanced"`), so a rare class is
    /// not drowned out.
    Balanced,
}

impl ClassWeight {
    /// Per-class weights from the training rows' classes; `None` when every row counts the same.
    pub fn weights(self, classes: &[usize], n_classes: usize) -> Option<Vec<f64>> {
        match self {
            Self::None => None,
            Self::Balanced => {
                let mut counts = vec![0usize; n_classes];
                for &c in classes {
                    if let Some(n) = counts.get_mut(c) {
                        *n += 1;
                    }
                }
                let n = classes.len() as f64;
                // A class absent from the training rows gets weight 0 (it has no rows to weigh).
                Some(
                    counts
                        .iter()
                        .map(|&k| {
                            if k > 0 {
                                n / (n_classes as f64 * k as f64)
                            } else {
                                0.0
                            }
                        })
                        .collect(),
                )
            }
        }
    }
}

impl TrainConfig {
    /// The rows of each split: the fixed split if one is set (checked against `n` rows), else a seeded
    /// random split, stratified when `classes` are given.
    pub fn split_rows(&self, n: usize, classes: Option<&[usize]>) -> crate::Result<Split> {
        match &self.fixed_split {
            Some(split) => {
                let all = split.train.iter().chain(&split.valid).chain(&split.test);
                if let Some(bad) = all.clone().find(|&&r| r >= n) {
                    return Err(crate::WickError::InvalidSpec(format!(
                        "the fixed split names row {bad}, but the data has {n} rows"
                    )));
                }
                Ok(split.clone())
            }
            None => Ok(crate::data::split_rows(n, classes, self.split, self.seed)),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 32,
            lr: 1e-3,
            optimizer: OptimizerKind::AdamW,
            weight_decay: 1e-4,
            momentum: 0.9,
            seed: 42,
            device: DeviceChoice::Auto,
            early_stopping_patience: Some(5),
            split: SplitFractions::default(),
            fixed_split: None,
            class_weight: ClassWeight::None,
            augment: Augment::default(),
        }
    }
}

/// The optimiser a network trains with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Sgd,
    Adam,
    #[default]
    AdamW,
}

impl std::str::FromStr for OptimizerKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Ok(Self::Sgd),
            "adam" => Ok(Self::Adam),
            "adamw" => Ok(Self::AdamW),
            _ => Err(format!("unknown optimiser {s:?}; use sgd, adam or adamw")),
        }
    }
}
