//! The kinds of model Wick trains, and what each one is: its name on the Model screen's card and
//! after `wick train --model`, the data it reads, the tasks it fits, and how a user's settings
//! become its [`ModelSpec`]. The app and the CLI ask this module instead of matching every spec.

use serde::{Deserialize, Serialize};

use crate::data::{ImageShape, Task};
use crate::error::{Result, WickError};
use crate::model::spec::{Activation, Backbone, Layer, ModelSpec};

/// A kind of model, as a user picks it. Several kinds can share a spec variant (linear,
/// polynomial and ridge are all [`ModelSpec::Linear`]).
///
/// The variant names are stored in project files: renaming one needs a serde alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModelKind {
    Linear,
    Polynomial,
    Ridge,
    Logistic,
    Mlp,
    BoostedTrees,
    Forest,
    Cnn,
    Transfer,
}

/// What a kind of model reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Table,
    Images,
}

/// The settings a user can give a kind, from the Model screen or `wick train`'s flags. Each kind
/// reads its own and ignores the rest; `None` takes the kind's default.
#[derive(Debug, Clone, PartialEq)]
pub struct KindSettings {
    pub ridge_alpha: f64,
    pub poly_degree: u32,
    pub hidden: Vec<usize>,
    pub activation: Activation,
    pub dropout: f32,
    pub trees: Option<usize>,
    pub learning_rate: Option<f64>,
    /// Boosted trees: at most this deep (default 6). Forests: `None` grows pure leaves.
    pub max_depth: Option<usize>,
    /// Boosted trees: `Some(0)` grows every tree; `None` keeps the default patience.
    pub patience: Option<usize>,
    /// Images: the shape a CNN reads.
    pub image_input: Option<ImageShape>,
    pub cnn_layers: Vec<Layer>,
    /// Transfer learning: the backbone (its weights' path may be empty until the job downloads them).
    pub backbone: Option<Backbone>,
}

impl Default for KindSettings {
    fn default() -> Self {
        Self {
            ridge_alpha: 1.0,
            poly_degree: 2,
            hidden: vec![64, 32],
            activation: Activation::Relu,
            dropout: 0.0,
            trees: None,
            learning_rate: None,
            max_depth: None,
            patience: None,
            image_input: None,
            cnn_layers: crate::model::spec::default_cnn_layers(),
            backbone: None,
        }
    }
}

impl ModelKind {
    pub const ALL: [ModelKind; 9] = [
        Self::Linear,
        Self::Polynomial,
        Self::Ridge,
        Self::Logistic,
        Self::Mlp,
        Self::BoostedTrees,
        Self::Forest,
        Self::Cnn,
        Self::Transfer,
    ];

    /// The kind a spec belongs to.
    pub fn of(spec: &ModelSpec) -> Self {
        match spec {
            ModelSpec::Linear { poly_degree, .. } if *poly_degree > 1 => Self::Polynomial,
            ModelSpec::Linear { ridge_alpha, .. } if *ridge_alpha > 0.0 => Self::Ridge,
            ModelSpec::Linear { .. } => Self::Linear,
            ModelSpec::Logistic => Self::Logistic,
            ModelSpec::Mlp { .. } => Self::Mlp,
            ModelSpec::Gbdt { .. } => Self::BoostedTrees,
            ModelSpec::Forest { .. } => Self::Forest,
            ModelSpec::Cnn { .. } => Self::Cnn,
            ModelSpec::Transfer { .. } => Self::Transfer,
        }
    }

    /// The name `wick train --model` takes.
    pub fn id(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Polynomial => "poly",
            Self::Ridge => "ridge",
            Self::Logistic => "logistic",
            Self::Mlp => "mlp",
            Self::BoostedTrees => "gbdt",
            Self::Forest => "forest",
            Self::Cnn => "cnn",
            Self::Transfer => "transfer",
        }
    }

    /// The kind named `id` (as [`ModelKind::id`] writes it).
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }

    /// The name on the Model screen's card.
    pub fn title(self) -> &'static str {
        match self {
            Self::Linear => "Linear",
            Self::Polynomial => "Polynomial",
            Self::Ridge => "Ridge",
            Self::Logistic => "Logistic",
            Self::Mlp => "MLP",
            Self::BoostedTrees => "Boosted trees",
            Self::Forest => "Random forest",
            Self::Cnn => "CNN",
            Self::Transfer => "Transfer learning",
        }
    }

    /// One line on what the kind is good for.
    pub fn blurb(self) -> &'static str {
        match self {
            Self::Linear => "A straight-line fit, solved exactly. Fast and explainable.",
            Self::Polynomial => "Curves: adds powers of each feature to a linear fit.",
            Self::Ridge => "Linear with a penalty that tames noisy or correlated features.",
            Self::Logistic => "The classic classifier: one weight per feature and class.",
            Self::Mlp => "A small neural network for non-linear tables.",
            Self::BoostedTrees => {
                "The strong baseline for tables. Missing values and text are fine."
            }
            Self::Forest => "Many deep trees, averaged. Robust with little tuning.",
            Self::Cnn => "A convolutional network for images.",
            Self::Transfer => "Reuse a pretrained network from the Hub; train a new head on it.",
        }
    }

    pub fn input(self) -> InputKind {
        match self {
            Self::Cnn | Self::Transfer => InputKind::Images,
            _ => InputKind::Table,
        }
    }

    /// Trees: no epochs, batches or learning-rate schedule to set, and tables in the tree
    /// encoding (raw numbers, category codes, NaN for missing).
    pub fn is_tree(self) -> bool {
        matches!(self, Self::BoostedTrees | Self::Forest)
    }

    /// Whether the kind fits the data; `Err` says why not, short enough for a card.
    pub fn fits(self, input: InputKind, task: Task) -> std::result::Result<(), &'static str> {
        match (self.input(), input) {
            (InputKind::Images, InputKind::Table) => return Err("needs an image dataset"),
            (InputKind::Table, InputKind::Images) => {
                return Err("needs a table; this dataset is images")
            }
            _ => {}
        }
        match (self, task) {
            (Self::Linear | Self::Polynomial | Self::Ridge, Task::Classification) => {
                Err("predicts numbers; pick Logistic or MLP for classes")
            }
            (Self::Logistic, Task::Regression) => Err("predicts classes; pick Linear for numbers"),
            _ => Ok(()),
        }
    }

    /// Whether the kind fits a table's task, as an error that says what to choose instead.
    pub fn check_task(self, task: Task) -> Result<()> {
        match (self, task) {
            (Self::Linear | Self::Polynomial | Self::Ridge, Task::Classification) => {
                Err(WickError::InvalidSpec(
                    "linear regression predicts numbers but this target has classes; choose logistic regression or an MLP".into(),
                ))
            }
            (Self::Logistic, Task::Regression) => Err(WickError::InvalidSpec(
                "logistic regression predicts classes but this target is numeric; choose linear regression or an MLP (or set the task to classification)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The kind a first-time user should get for this kind of data.
    pub fn default_for(input: InputKind, task: Task) -> Self {
        match (input, task) {
            (InputKind::Images, _) => Self::Cnn,
            (InputKind::Table, Task::Regression) => Self::Linear,
            (InputKind::Table, Task::Classification) => Self::Logistic,
        }
    }

    /// The spec this kind trains with these settings.
    pub fn spec(self, s: &KindSettings) -> Result<ModelSpec> {
        Ok(match self {
            Self::Linear => ModelSpec::Linear {
                ridge_alpha: 0.0,
                poly_degree: 1,
            },
            Self::Polynomial => ModelSpec::Linear {
                ridge_alpha: 0.0,
                poly_degree: s.poly_degree.max(1),
            },
            Self::Ridge => ModelSpec::Linear {
                ridge_alpha: s.ridge_alpha.max(0.0),
                poly_degree: 1,
            },
            Self::Logistic => ModelSpec::Logistic,
            Self::Mlp => ModelSpec::Mlp {
                hidden: s.hidden.clone(),
                activation: s.activation,
                dropout: s.dropout,
            },
            Self::BoostedTrees => {
                let mut spec = ModelSpec::default_gbdt();
                if let ModelSpec::Gbdt {
                    trees,
                    learning_rate,
                    max_depth,
                    early_stopping_rounds,
                    ..
                } = &mut spec
                {
                    *trees = s.trees.unwrap_or(*trees).max(1);
                    *learning_rate = s.learning_rate.unwrap_or(*learning_rate).clamp(1e-4, 1.0);
                    *max_depth = s.max_depth.unwrap_or(*max_depth).max(1);
                    if let Some(p) = s.patience {
                        *early_stopping_rounds = (p > 0).then_some(p);
                    }
                }
                spec
            }
            Self::Forest => {
                let mut spec = ModelSpec::default_forest();
                if let ModelSpec::Forest {
                    trees, max_depth, ..
                } = &mut spec
                {
                    *trees = s.trees.unwrap_or(*trees).max(1);
                    *max_depth = s.max_depth.or(*max_depth).filter(|&d| d > 0);
                }
                spec
            }
            Self::Cnn => ModelSpec::Cnn {
                input: s
                    .image_input
                    .ok_or_else(|| WickError::InvalidSpec("a CNN needs an image dataset".into()))?,
                layers: s.cnn_layers.clone(),
            },
            Self::Transfer => ModelSpec::Transfer {
                backbone: s.backbone.clone().ok_or_else(|| {
                    WickError::InvalidSpec("transfer learning needs a backbone".into())
                })?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_spec_and_its_id() {
        let settings = KindSettings {
            image_input: Some(ImageShape {
                channels: 1,
                height: 28,
                width: 28,
            }),
            backbone: Some(Backbone {
                arch: crate::model::BackboneArch::Resnet18,
                weights: std::path::PathBuf::new(),
                input: ImageShape {
                    channels: 3,
                    height: 224,
                    width: 224,
                },
                fine_tune: false,
            }),
            ..KindSettings::default()
        };
        for kind in ModelKind::ALL {
            let spec = kind.spec(&settings).unwrap();
            assert_eq!(ModelKind::of(&spec), kind, "{kind:?}");
            assert_eq!(ModelKind::from_id(kind.id()), Some(kind));
            assert_eq!(kind.is_tree(), spec.is_tree(), "{kind:?}");
        }
    }

    #[test]
    fn a_kind_says_why_it_does_not_fit_the_data() {
        use InputKind::*;
        assert!(ModelKind::Cnn.fits(Table, Task::Classification).is_err());
        assert!(ModelKind::Mlp.fits(Images, Task::Classification).is_err());
        assert!(ModelKind::Ridge.fits(Table, Task::Classification).is_err());
        assert!(ModelKind::Logistic.fits(Table, Task::Regression).is_err());
        assert!(ModelKind::BoostedTrees
            .fits(Table, Task::Regression)
            .is_ok());
        let e = ModelKind::Ridge
            .check_task(Task::Classification)
            .unwrap_err();
        assert!(
            e.to_string().contains("linear regression predicts numbers"),
            "{e}"
        );
    }
}
