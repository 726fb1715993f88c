//! Seeded train/validation/test splits, stratified by class for classification.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Row indices of each split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    pub test: Vec<usize>,
}

/// Fractions of the rows held out for validation and test; the rest trains.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    pub valid: f64,
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        Self {
            valid: 0.15,
            test: 0.15,
        }
    }
}

/// Splits `n` rows. With `classes`, each class is split in the same proportions (stratified).
/// Every class keeps at least one training row.
pub fn split_rows(
    n: usize,
    classes: Option<&[usize]>,
    fractions: SplitFractions,
    seed: u64,
) -> Split {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let groups = class_groups(n, classes);
    let mut split = Split {
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
    };
    for mut rows in groups {
        rows.shuffle(&mut rng);
        let len = rows.len();
        let mut n_test = (len as f64 * fractions.test).round() as usize;
        let mut n_valid = (len as f64 * fractions.valid).round() as usize;
        while n_test + n_valid >= len && (n_test > 0 || n_valid > 0) {
            if n_valid >= n_test && n_valid > 0 {
                n_valid -= 1;
            } else {
                n_test -= 1;
            }
        }
        split.test.extend_from_slice(&rows[..n_test]);
        split
            .valid
            .extend_from_slice(&rows[n_test..n_test + n_valid]);
        split.train.extend_from_slice(&rows[n_test + n_valid..]);
    }
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    split
}

/// The rows of each class (one group of all `n` rows without classes), in row order.
pub(crate) fn class_groups(n: usize, classes: Option<&[usize]>) -> Vec<Vec<usize>> {
    match classes {
        Some(classes) => {
            let n_classes = classes.iter().copied().max().map_or(0, |m| m + 1);
            let mut groups = vec![Vec::new(); n_classes];
            for (row, &c) in classes.iter().enumerate() {
                groups[c].push(row);
            }
            groups
        }
        None => vec![(0..n).collect()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_seeded_disjoint_and_complete() {
        let a = split_rows(100, None, SplitFractions::default(), 7);
        let b = split_rows(100, None, SplitFractions::default(), 7);
        let c = split_rows(100, None, SplitFractions::default(), 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!((a.train.len(), a.valid.len(), a.test.len()), (70, 15, 15));
        let mut all: Vec<usize> = a
            .train
            .iter()
            .chain(&a.valid)
            .chain(&a.test)
            .copied()
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn stratified_split_keeps_class_proportions() {
        let classes: Vec<usize> = (0..200).map(|i| usize::from(i % 10 == 0)).collect();
        let s = split_rows(
            200,
            Some(&classes),
            SplitFractions {
                valid: 0.1,
                test: 0.2,
            },
            1,
        );
        let minority_in_test = s.test.iter().filter(|&&r| classes[r] == 1).count();
        assert_eq!(minority_in_test, 4, "20% of the 20 minority rows");
        let tiny = [0, 0, 0, 0, 1];
        let s = split_rows(
            5,
            Some(&tiny),
            SplitFractions {
                valid: 0.4,
                test: 0.4,
            },
            1,
        );
        assert!(s.train.contains(&4), "a one-row class stays in training");
    }
}
