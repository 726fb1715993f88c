//! A random forest on binned features, written here because no crate measured offers one with
//! native missing values (ARCHITECTURE.md, "Tree models").
//!
//! Each tree grows on a bootstrap sample with a random subset of features tried at every node, like
//! scikit-learn's `RandomForest*`. Splits are searched over at most 255 quantile bins per feature;
//! a missing value (NaN) has its own bin, and each split learns which side missing values go to.
//! Classification trees split on Gini impurity and their leaves hold class frequencies; regression
//! trees split on squared error and hold means. Both are the same computation: the per-output sums
//! of one-hot classes or of the target.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WickError};

/// Settings of a forest fit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForestParams {
    pub trees: usize,
    /// `None` grows each tree until its leaves are pure or hold `min_samples_leaf` rows.
    pub max_depth: Option<usize>,
    pub min_samples_leaf: usize,
    /// Features tried per split; `None` uses √features for classes and every feature for numbers.
    pub max_features: Option<usize>,
    pub seed: u64,
}

/// One node; a leaf has `feature == LEAF`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    /// Rows with `value <= threshold` go left.
    pub threshold: f64,
    /// Where a missing value goes.
    pub missing_left: bool,
    pub left: u32,
    pub right: u32,
    /// The mean of the node's rows (class frequencies or the target mean): the prediction at a leaf,
    /// and the baseline of the path attribution at an inner node.
    pub value: Vec<f64>,
}

pub const LEAF: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A fitted forest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forest {
    /// 1 for regression, the number of classes for classification.
    pub n_outputs: usize,
    pub n_features: usize,
    pub trees: Vec<Tree>,
    /// Total impurity decrease of each feature's splits, summed over the trees.
    pub split_gain: Vec<f64>,
}

/// Binned training data: column-major bin indices, bin 0 is missing.
struct Bins {
    n_rows: usize,
    /// `cuts[f][j]`: values `<= cuts[f][j]` fall in bins `1..=j+1`.
    cuts: Vec<Vec<f64>>,
    bins: Vec<Vec<u8>>,
}

const MAX_BINS: usize = 255;

impl Bins {
    fn new(x: &[f64], n_rows: usize, n_features: usize) -> Self {
        let mut cuts = Vec::with_capacity(n_features);
        let mut bins = Vec::with_capacity(n_features);
        for f in 0..n_features {
            let mut present: Vec<f64> = (0..n_rows)
                .map(|r| x[r * n_features + f])
                .filter(|v| !v.is_nan())
                .collect();
            present.sort_by(f64::total_cmp);
            present.dedup();
            // Midpoints between distinct values when few, else quantiles of the distinct values.
            let c: Vec<f64> = if present.len() <= MAX_BINS {
                present
                    .windows(2)
                    .map(|w| w[0] + (w[1] - w[0]) / 2.0)
                    .collect()
            } else {
                let mut c: Vec<f64> = (1..MAX_BINS - 1)
                    .map(|q| present[q * present.len() / (MAX_BINS - 1)])
                    .collect();
                c.dedup();
                c
            };
            bins.push(
                (0..n_rows)
                    .map(|r| bin_of(&c, x[r * n_features + f]))
                    .collect(),
            );
            cuts.push(c);
        }
        Self { n_rows, cuts, bins }
    }
}

fn bin_of(cuts: &[f64], v: f64) -> u8 {
    if v.is_nan() {
        0
    } else {
        (1 + cuts.partition_point(|&c| c < v)) as u8
    }
}

impl Forest {
    /// Fits on a row-major `x` (NaN = missing) and per-row targets: `y[r]` is the class index for
    /// classification (`n_outputs > 1`) or the value for regression. `class_weights` weigh each
    /// class's rows (balanced classes) on top of the bootstrap's counts.
    pub fn fit(
        x: &[f64],
        n_features: usize,
        y: &[f64],
        class_weights: Option<&[f64]>,
        n_outputs: usize,
        params: &ForestParams,
    ) -> Result<Self> {
        let n_rows = y.len();
        if n_rows == 0 || n_features == 0 || x.len() != n_rows * n_features {
            return Err(WickError::InvalidSpec(format!(
                "a forest needs a {n_rows}×{n_features} table, got {} values",
                x.len()
            )));
        }
        if params.trees == 0 {
            return Err(WickError::InvalidSpec(
                "a forest needs at least 1 tree".into(),
            ));
        }
        let bins = Bins::new(x, n_rows, n_features);
        // Per-row output vector: one-hot class or the value.
        let targets: Vec<f64> = if n_outputs > 1 {
            let mut t = vec![0.0; n_rows * n_outputs];
            for (r, &c) in y.iter().enumerate() {
                t[r * n_outputs + c as usize] = 1.0;
            }
            t
        } else {
            y.to_vec()
        };
        let max_features = params
            .max_features
            .unwrap_or(if n_outputs > 1 {
                (n_features as f64).sqrt().round() as usize
            } else {
                n_features
            })
            .clamp(1, n_features);
        let row_weights: Option<Vec<f64>> = class_weights.filter(|_| n_outputs > 1).map(|w| {
            y.iter()
                .map(|&c| w.get(c as usize).copied().unwrap_or(1.0))
                .collect()
        });
        let grower = Grower {
            row_weights: row_weights.as_deref(),
            bins: &bins,
            targets: &targets,
            n_outputs,
            max_depth: params.max_depth.unwrap_or(64),
            min_samples_leaf: params.min_samples_leaf.max(1),
            max_features,
        };
        // Each tree has its own seed, so the forest is the same whatever the thread count.
        let grown: Vec<(Tree, Vec<f64>)> = (0..params.trees)
            .into_par_iter()
            .map(|t| {
                grower.grow(
                    params
                        .seed
                        .wrapping_add((t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
                )
            })
            .collect();
        let mut split_gain = vec![0.0; n_features];
        let mut trees = Vec::with_capacity(grown.len());
        for (tree, gain) in grown {
            split_gain.iter_mut().zip(&gain).for_each(|(s, g)| *s += g);
            trees.push(tree);
        }
        Ok(Self {
            n_outputs,
            n_features,
            trees,
            split_gain,
        })
    }

    /// Predicts rows of a row-major `x`: `n_outputs` values per row (class probabilities or the value).
    pub fn predict(&self, x: &[f64], n_rows: usize) -> Vec<f64> {
        let k = self.n_outputs;
        let mut out = vec![0.0; n_rows * k];
        out.par_chunks_mut(k.max(1)).enumerate().for_each(|(r, o)| {
            let row = &x[r * self.n_features..(r + 1) * self.n_features];
            for tree in &self.trees {
                let leaf = &tree.nodes[tree.leaf_of(row)];
                o.iter_mut().zip(&leaf.value).for_each(|(a, v)| *a += v);
            }
            let n = self.trees.len().max(1) as f64;
            o.iter_mut().for_each(|a| *a /= n);
        });
        out
    }

    /// Each feature's contribution to one row's prediction, per output, by path attribution
    /// (Saabas): walking a tree, each split's change of the node mean is credited to its feature.
    /// `bias + Σ contributions` equals the prediction exactly. Returns `(bias, [feature][output])`.
    pub fn contributions(&self, row: &[f64]) -> (Vec<f64>, Vec<Vec<f64>>) {
        let k = self.n_outputs;
        let mut bias = vec![0.0; k];
        let mut contrib = vec![vec![0.0; k]; self.n_features];
        for tree in &self.trees {
            let mut i = 0;
            bias.iter_mut()
                .zip(&tree.nodes[0].value)
                .for_each(|(b, v)| *b += v);
            while tree.nodes[i].feature != LEAF {
                let node = &tree.nodes[i];
                let next = node.child_for(row[node.feature as usize]) as usize;
                for (c, (a, b)) in contrib[node.feature as usize]
                    .iter_mut()
                    .zip(tree.nodes[next].value.iter().zip(&node.value))
                {
                    *c += a - b;
                }
                i = next;
            }
        }
        let n = self.trees.len().max(1) as f64;
        bias.iter_mut().for_each(|b| *b /= n);
        contrib.iter_mut().flatten().for_each(|c| *c /= n);
        (bias, contrib)
    }
}

impl Node {
    fn child_for(&self, v: f64) -> u32 {
        let left = if v.is_nan() {
            self.missing_left
        } else {
            v <= self.threshold
        };
        if left {
            self.left
        } else {
            self.right
        }
    }
}

impl Tree {
    fn leaf_of(&self, row: &[f64]) -> usize {
        let mut i = 0;
        while self.nodes[i].feature != LEAF {
            let node = &self.nodes[i];
            i = node.child_for(row[node.feature as usize]) as usize;
        }
        i
    }
}

struct Grower<'a> {
    row_weights: Option<&'a [f64]>,
    bins: &'a Bins,
    targets: &'a [f64],
    n_outputs: usize,
    max_depth: usize,
    min_samples_leaf: usize,
    max_features: usize,
}

/// The best split of one node.
struct Split {
    feature: usize,
    /// Bins `1..=bin` go left.
    bin: usize,
    missing_left: bool,
    gain: f64,
}

impl Grower<'_> {
    fn grow(&self, seed: u64) -> (Tree, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = self.bins.n_rows;
        // A bootstrap sample: each row's weight is how often it was drawn.
        // `drawn` counts rows (for the leaf-size limit); `weight` also weighs their class.
        let mut drawn = vec![0.0f64; n];
        for _ in 0..n {
            drawn[rng.random_range(0..n)] += 1.0;
        }
        let mut weight = drawn.clone();
        if let Some(w) = self.row_weights {
            weight.iter_mut().zip(w).for_each(|(a, b)| *a *= b);
        }
        let rows: Vec<u32> = (0..n as u32)
            .filter(|&r| weight[r as usize] > 0.0)
            .collect();
        let n_features = self.bins.cuts.len();
        let mut features: Vec<usize> = (0..n_features).collect();
        let mut gain = vec![0.0; n_features];
        let mut nodes = Vec::new();
        // (node index, rows, depth)
        let mut stack = vec![(0usize, rows, 0usize)];
        nodes.push(self.leaf(&stack[0].1, &weight));
        while let Some((at, rows, depth)) = stack.pop() {
            let total: f64 = rows.iter().map(|&r| drawn[r as usize]).sum();
            let pure = self.n_outputs > 1 && nodes[at].value.iter().any(|&p| p >= 1.0 - 1e-12);
            if depth >= self.max_depth || total < 2.0 * self.min_samples_leaf as f64 || pure {
                continue;
            }
            features.shuffle(&mut rng);
            let mut best: Option<Split> = None;
            for &f in &features[..self.max_features] {
                if let Some(s) = self.best_split(f, &rows, &drawn, &weight) {
                    if best.as_ref().is_none_or(|b| s.gain > b.gain) {
                        best = Some(s);
                    }
                }
            }
            let Some(split) = best else { continue };
            let column = &self.bins.bins[split.feature];
            let goes_left = |r: u32| {
                let b = column[r as usize] as usize;
                if b == 0 {
                    split.missing_left
                } else {
                    b <= split.bin
                }
            };
            let (left, right): (Vec<u32>, Vec<u32>) = rows.iter().partition(|&&r| goes_left(r));
            gain[split.feature] += split.gain;
            let (li, ri) = (nodes.len(), nodes.len() + 1);
            nodes.push(self.leaf(&left, &weight));
            nodes.push(self.leaf(&right, &weight));
            let node = &mut nodes[at];
            node.feature = split.feature as u32;
            // The cut between the last left bin and the next; the top bin never splits.
            node.threshold = self.bins.cuts[split.feature][split.bin - 1];
            node.missing_left = split.missing_left;
            node.left = li as u32;
            node.right = ri as u32;
            stack.push((li, left, depth + 1));
            stack.push((ri, right, depth + 1));
        }
        (Tree { nodes }, gain)
    }

    fn leaf(&self, rows: &[u32], weight: &[f64]) -> Node {
        let k = self.n_outputs;
        let mut sums = vec![0.0; k];
        let mut total = 0.0;
        for &r in rows {
            let w = weight[r as usize];
            total += w;
            for (s, t) in sums
                .iter_mut()
                .zip(&self.targets[r as usize * k..(r as usize + 1) * k])
            {
                *s += w * t;
            }
        }
        let value = sums
            .iter()
            .map(|s| s / total.max(f64::MIN_POSITIVE))
            .collect();
        Node {
            feature: LEAF,
            threshold: 0.0,
            missing_left: true,
            left: 0,
            right: 0,
            value,
        }
    }

    /// The split of feature `f` with the largest decrease of squared error (Gini for one-hot classes).
    fn best_split(&self, f: usize, rows: &[u32], drawn: &[f64], weight: &[f64]) -> Option<Split> {
        let k = self.n_outputs;
        let n_bins = self.bins.cuts[f].len() + 2;
        if n_bins < 3 {
            return None;
        }
        // Rows per bin (for the leaf-size limit) and their weight (for the criterion).
        let mut rows_in = vec![0.0f64; n_bins];
        let mut count = vec![0.0f64; n_bins];
        let mut sums = vec![0.0f64; n_bins * k];
        let column = &self.bins.bins[f];
        for &r in rows {
            let (b, w) = (column[r as usize] as usize, weight[r as usize]);
            rows_in[b] += drawn[r as usize];
            count[b] += w;
            for (s, t) in sums[b * k..(b + 1) * k]
                .iter_mut()
                .zip(&self.targets[r as usize * k..(r as usize + 1) * k])
            {
                *s += w * t;
            }
        }
        let total: f64 = count.iter().sum();
        let total_rows: f64 = rows_in.iter().sum();
        let mut all = vec![0.0; k];
        for b in 0..n_bins {
            all.iter_mut()
                .zip(&sums[b * k..(b + 1) * k])
                .for_each(|(a, s)| *a += s);
        }
        let score = |s: &[f64], w: f64| {
            if w > 0.0 {
                s.iter().map(|v| v * v).sum::<f64>() / w
            } else {
                0.0
            }
        };
        let parent = score(&all, total);
        let min_leaf = self.min_samples_leaf as f64;
        let (missing_w, missing_s, missing_rows) = (count[0], sums[..k].to_vec(), rows_in[0]);
        let mut left_rows = 0.0;
        let mut left_w = 0.0;
        let mut left_s = vec![0.0; k];
        let mut best: Option<Split> = None;
        let mut with_missing = vec![0.0; k];
        let mut right_s = vec![0.0; k];
        for bin in 1..n_bins - 1 {
            left_w += count[bin];
            left_rows += rows_in[bin];
            left_s
                .iter_mut()
                .zip(&sums[bin * k..(bin + 1) * k])
                .for_each(|(l, s)| *l += s);
            if count[bin] == 0.0 && bin > 1 {
                continue;
            }
            for missing_left in [true, false] {
                if !missing_left && missing_w == 0.0 {
                    continue;
                }
                let (lw, ls) = if missing_left {
                    with_missing
                        .iter_mut()
                        .zip(left_s.iter().zip(&missing_s))
                        .for_each(|(o, (a, b))| *o = a + b);
                    (left_w + missing_w, &with_missing)
                } else {
                    (left_w, &left_s)
                };
                let rw = total - lw;
                let l_rows = left_rows + if missing_left { missing_rows } else { 0.0 };
                if l_rows < min_leaf || total_rows - l_rows < min_leaf || lw <= 0.0 || rw <= 0.0 {
                    continue;
                }
                right_s
                    .iter_mut()
                    .zip(all.iter().zip(ls.iter()))
                    .for_each(|(o, (a, l))| *o = a - l);
                let gain = score(ls, lw) + score(&right_s, rw) - parent;
                if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(Split {
                        feature: f,
                        bin,
                        missing_left,
                        gain,
                    });
                }
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(trees: usize) -> ForestParams {
        ForestParams {
            trees,
            max_depth: None,
            min_samples_leaf: 1,
            max_features: None,
            seed: 7,
        }
    }

    #[test]
    fn a_step_function_is_learned_and_missing_values_follow_the_training_side() {
        // y = 1 when x > 0.5, and missing x behave like large x.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..200 {
            let v = i as f64 / 200.0;
            x.push(if i % 10 == 0 { f64::NAN } else { v });
            y.push(if i % 10 == 0 || v > 0.5 { 1.0 } else { 0.0 });
        }
        let forest = Forest::fit(&x, 1, &y, None, 2, &params(20)).unwrap();
        let p = forest.predict(&[0.1, 0.9, f64::NAN], 3);
        assert!(p[0] > 0.9 && p[3] > 0.9 && p[5] > 0.9, "{p:?}");
    }

    #[test]
    fn contributions_sum_to_the_prediction() {
        let x: Vec<f64> = (0..300)
            .flat_map(|i| [(i % 17) as f64, (i % 5) as f64, (i * 7 % 11) as f64])
            .collect();
        let y: Vec<f64> = x
            .chunks(3)
            .map(|r| 2.0 * r[0] - r[1] + 0.1 * r[2])
            .collect();
        let forest = Forest::fit(&x, 3, &y, None, 1, &params(10)).unwrap();
        let row = [3.0, f64::NAN, 4.0];
        let (bias, c) = forest.contributions(&row);
        let total = bias[0] + c.iter().map(|v| v[0]).sum::<f64>();
        assert!((total - forest.predict(&row, 1)[0]).abs() < 1e-9);
    }

    #[test]
    fn the_same_seed_gives_the_same_forest() {
        let x: Vec<f64> = (0..200).map(|i| (i * 37 % 101) as f64).collect();
        let y: Vec<f64> = x.iter().map(|v| (v / 10.0).sin()).collect();
        let a = Forest::fit(&x, 1, &y, None, 1, &params(5)).unwrap();
        let b = Forest::fit(&x, 1, &y, None, 1, &params(5)).unwrap();
        assert_eq!(a, b);
        let c = Forest::fit(
            &x,
            1,
            &y,
            None,
            1,
            &ForestParams {
                seed: 8,
                ..params(5)
            },
        )
        .unwrap();
        assert_ne!(a, c);
    }
}
