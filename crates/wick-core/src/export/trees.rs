//! Tree models as `ai.onnx.ml`'s `TreeEnsembleRegressor`: every tree's splits and leaves, with
//! thresholds and leaf values as doubles (`*_as_tensor`), so each row takes the same path as in
//! Wick. The regressor sums (boosted) or averages (forest) the leaves per output; the rest of
//! Wick's decoding (sigmoids, normalising) follows as standard operators.

use super::graph::{attr_int, attr_ints, attr_string, attr_strings, attr_tensor_f64, GraphBuilder};
use super::onnx_proto::tensor_proto::DataType;
use crate::error::{Result, WickError};
use crate::model::trees::forest::LEAF;
use crate::model::trees::{Boosted, Forest, TreeEnsemble};

/// The `ai.onnx.ml` operator set the tree graphs use: 3 is the first with double thresholds and
/// leaf values (`nodes_values_as_tensor`, `target_weights_as_tensor`).
pub const ML_OPSET: i64 = 3;
pub const ML_DOMAIN: &str = "ai.onnx.ml";

/// The flat node and leaf lists `TreeEnsembleRegressor` takes.
#[derive(Default)]
struct Ensemble {
    tree_ids: Vec<i64>,
    node_ids: Vec<i64>,
    feature_ids: Vec<i64>,
    modes: Vec<String>,
    thresholds: Vec<f64>,
    true_ids: Vec<i64>,
    false_ids: Vec<i64>,
    missing_true: Vec<i64>,
    target_tree_ids: Vec<i64>,
    target_node_ids: Vec<i64>,
    target_ids: Vec<i64>,
    target_weights: Vec<f64>,
}

impl Ensemble {
    /// An inner node: a row goes to `yes` when `mode` holds for `x[feature]` and `threshold`,
    /// else to `no`; a missing value (NaN) goes to `yes` when `missing_yes`.
    #[allow(clippy::too_many_arguments)] // one node's fields, as the operator lists them
    fn branch(
        &mut self,
        tree: usize,
        node: usize,
        feature: usize,
        mode: &str,
        threshold: f64,
        yes: usize,
        no: usize,
        missing_yes: bool,
    ) {
        self.tree_ids.push(tree as i64);
        self.node_ids.push(node as i64);
        self.feature_ids.push(feature as i64);
        self.modes.push(mode.into());
        self.thresholds.push(threshold);
        self.true_ids.push(yes as i64);
        self.false_ids.push(no as i64);
        self.missing_true.push(i64::from(missing_yes));
    }

    /// A leaf adding `weight` to output `target` (once per output it feeds).
    fn leaf(&mut self, tree: usize, node: usize, weights: impl IntoIterator<Item = (usize, f64)>) {
        self.branch(tree, node, 0, "LEAF", 0.0, 0, 0, false);
        for (target, weight) in weights {
            self.target_tree_ids.push(tree as i64);
            self.target_node_ids.push(node as i64);
            self.target_ids.push(target as i64);
            self.target_weights.push(weight);
        }
    }

    /// The regressor over `x` (`double [N, F]`): `float [N, targets]`, cast to double.
    fn into_op(
        self,
        g: &mut GraphBuilder,
        x: &str,
        targets: usize,
        base: &[f64],
        aggregate: &str,
    ) -> String {
        let attributes = vec![
            attr_int("n_targets", targets as i64),
            attr_string("aggregate_function", aggregate),
            attr_string("post_transform", "NONE"),
            attr_tensor_f64("base_values_as_tensor", base),
            attr_ints("nodes_treeids", &self.tree_ids),
            attr_ints("nodes_nodeids", &self.node_ids),
            attr_ints("nodes_featureids", &self.feature_ids),
            attr_strings("nodes_modes", &self.modes),
            attr_tensor_f64("nodes_values_as_tensor", &self.thresholds),
            attr_ints("nodes_truenodeids", &self.true_ids),
            attr_ints("nodes_falsenodeids", &self.false_ids),
            attr_ints("nodes_missing_value_tracks_true", &self.missing_true),
            attr_ints("target_treeids", &self.target_tree_ids),
            attr_ints("target_nodeids", &self.target_node_ids),
            attr_ints("target_ids", &self.target_ids),
            attr_tensor_f64("target_weights_as_tensor", &self.target_weights),
        ];
        let y = g.op_in(ML_DOMAIN, "TreeEnsembleRegressor", &[x], attributes);
        g.op("Cast", &[&y], vec![attr_int("to", DataType::Double as i64)])
    }
}

/// What the trees output, before Wick's decoding: `double [N, K]`.
pub enum TreeOutput {
    /// Regression (K = 1): the value.
    Value(String),
    /// Class probabilities (K = classes).
    Probabilities(String),
}

/// The ensemble over the tree encoding `x` (`double [N, F]`, NaN = missing).
pub fn tree_ensemble(g: &mut GraphBuilder, trees: &TreeEnsemble, x: &str) -> Result<TreeOutput> {
    match trees {
        TreeEnsemble::Boosted(b) => boosted(g, b, x),
        TreeEnsemble::Forest(f) => Ok(forest(g, f, x)),
    }
}

/// Boosted trees: per booster, `base_score` plus the leaves of its first `prediction_iteration`
/// trees (a row goes left when `x < split_value`, NaN to `missing_node`); then one sigmoid (two
/// classes) or one per class normalised to sum to 1 (one-vs-rest), as `Boosted::predict`.
fn boosted(g: &mut GraphBuilder, b: &Boosted, x: &str) -> Result<TreeOutput> {
    let mut e = Ensemble::default();
    let mut tree_id = 0;
    for (target, booster) in b.boosters.iter().enumerate() {
        let kept = booster.prediction_iteration.unwrap_or(booster.trees.len());
        for tree in booster.trees.iter().take(kept) {
            for (i, node) in tree.nodes.iter().enumerate() {
                if node.num != i {
                    return Err(WickError::Export(format!(
                        "boosted tree {tree_id} stores node {} at position {i}; retrain the model",
                        node.num
                    )));
                }
                if node.is_leaf {
                    e.leaf(tree_id, i, [(target, f64::from(node.weight_value))]);
                    continue;
                }
                let missing_left = node.missing_node == node.left_child;
                if !missing_left && node.missing_node != node.right_child {
                    return Err(WickError::Export(format!(
                        "boosted tree {tree_id} sends missing values down a branch of their own, which ONNX's tree operator has no place for"
                    )));
                }
                e.branch(
                    tree_id,
                    i,
                    node.split_feature,
                    "BRANCH_LT",
                    node.split_value,
                    node.left_child,
                    node.right_child,
                    missing_left,
                );
            }
            tree_id += 1;
        }
    }
    let base: Vec<f64> = b
        .boosters
        .iter()
        .map(|booster| booster.base_score)
        .collect();
    let raw = e.into_op(g, x, b.boosters.len(), &base, "SUM");
    Ok(match b.n_classes {
        0 | 1 => TreeOutput::Value(raw),
        2 => {
            let p1 = g.op("Sigmoid", &[&raw], vec![]);
            let one = g.f64s("one", &[1], &[1.0]);
            let p0 = g.op("Sub", &[&one, &p1], vec![]);
            TreeOutput::Probabilities(g.op("Concat", &[&p0, &p1], vec![attr_int("axis", 1)]))
        }
        _ => {
            let p = g.op("Sigmoid", &[&raw], vec![]);
            let axis1 = g.i64s("axis1", &[1], &[1]);
            let sum = g.op("ReduceSum", &[&p, &axis1], vec![attr_int("keepdims", 1)]);
            // As Wick does: never divide by zero (a sum of sigmoids is positive anyway).
            let tiny = g.f64s("tiny", &[1], &[f64::MIN_POSITIVE]);
            let sum = g.op("Max", &[&sum, &tiny], vec![]);
            TreeOutput::Probabilities(g.op("Div", &[&p, &sum], vec![]))
        }
    })
}

/// The forest: the mean over trees of each leaf's value (a row goes left when `x <= threshold`,
/// NaN left when `missing_left`), the target mean or the class frequencies.
fn forest(g: &mut GraphBuilder, f: &Forest, x: &str) -> TreeOutput {
    let mut e = Ensemble::default();
    for (t, tree) in f.trees.iter().enumerate() {
        for (i, node) in tree.nodes.iter().enumerate() {
            if node.feature == LEAF {
                e.leaf(t, i, node.value.iter().copied().enumerate());
            } else {
                e.branch(
                    t,
                    i,
                    node.feature as usize,
                    "BRANCH_LEQ",
                    node.threshold,
                    node.left as usize,
                    node.right as usize,
                    node.missing_left,
                );
            }
        }
    }
    let y = e.into_op(g, x, f.n_outputs, &vec![0.0; f.n_outputs], "AVERAGE");
    if f.n_outputs == 1 {
        TreeOutput::Value(y)
    } else {
        TreeOutput::Probabilities(y)
    }
}
