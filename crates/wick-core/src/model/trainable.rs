//! The interface the gradient-descent loop (`train::fit`) trains through, so model kinds below
//! `train` (a network, a fine-tuned backbone stage) can be trained without importing it.

use std::collections::HashMap;

use candle_core::{Device, Tensor, Var};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::model::Network;

/// What `train::fit` trains: a [`Network`], or a fine-tuned backbone stage with its head.
pub(crate) trait Trainable {
    fn forward(
        &self,
        x: &Tensor,
        train: bool,
        dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor>;
    /// The trainable variables, each group with its learning rate as a share of the run's.
    fn param_groups(&self) -> Vec<(Vec<Var>, f64)>;
    fn snapshot(&self) -> Result<HashMap<String, Tensor>>;
    fn restore(&mut self, snapshot: &HashMap<String, Tensor>) -> Result<()>;
    fn n_outputs(&self) -> usize;
    fn device(&self) -> &Device;
}

impl Trainable for Network {
    fn forward(
        &self,
        x: &Tensor,
        train: bool,
        dropout_rng: Option<&mut ChaCha8Rng>,
    ) -> Result<Tensor> {
        Network::forward(self, x, train, dropout_rng)
    }

    fn param_groups(&self) -> Vec<(Vec<Var>, f64)> {
        vec![(self.trainable_vars(), 1.0)]
    }

    fn snapshot(&self) -> Result<HashMap<String, Tensor>> {
        Network::snapshot(self)
    }

    fn restore(&mut self, snapshot: &HashMap<String, Tensor>) -> Result<()> {
        Network::restore(self, snapshot)
    }

    fn n_outputs(&self) -> usize {
        Network::n_outputs(self)
    }

    fn device(&self) -> &Device {
        Network::device(self)
    }
}
