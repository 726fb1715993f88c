//! Checks the screens and the app share: a layer stack's shapes up to its first bad layer, whether a
//! spec can train, and class imbalance worth a warning.

use wick_core::data::Task;
use wick_core::model::{infer_shapes, Layer, ModelSpec};

use crate::loaded::LoadedData;
use crate::state::AppState;

/// Shapes of the layers before the first invalid one, and that layer's index and message.
pub fn shapes_with_error(
    input: wick_core::data::ImageShape,
    layers: &[Layer],
    n_classes: usize,
) -> (Vec<wick_core::model::LayerShape>, Option<(usize, String)>) {
    match infer_shapes(input, layers, n_classes) {
        Ok(shapes) => (shapes, None),
        Err(wick_core::WickError::Layer { index, message, .. }) => {
            let bad = index.saturating_sub(1);
            // The layers before the bad one: end the prefix with Flatten so the implicit output layer
            // accepts it, then drop those two rows again.
            let mut prefix = layers[..bad].to_vec();
            prefix.push(Layer::Flatten);
            let shapes = infer_shapes(input, &prefix, n_classes)
                .map(|mut s| {
                    s.truncate(bad);
                    s
                })
                .unwrap_or_default();
            (shapes, Some((bad, message)))
        }
        Err(e) => (Vec::new(), Some((0, e.to_string()))),
    }
}

/// Checks a spec before training, so mistakes show next to the layer instead of failing later.
pub fn validate(state: &AppState, spec: &ModelSpec) -> Result<(), String> {
    if let ModelSpec::Cnn { input, layers } = spec {
        if let (_, Some((bad, message))) =
            shapes_with_error(*input, layers, state.n_classes().max(2))
        {
            return Err(format!("Layer {}: {message}", bad + 1));
        }
    }
    if let ModelSpec::Mlp { hidden, .. } = spec {
        if hidden.contains(&0) {
            return Err("A dense layer has 0 units; give it at least 1.".into());
        }
    }
    if let Some(LoadedData::Table { .. }) = state.loaded() {
        if state.features().is_empty() {
            return Err(
                "No feature columns are selected; tick at least one under Features.".into(),
            );
        }
    }
    Ok(())
}

/// "class X has N× fewer examples than class Y" when the imbalance is worth a warning.
pub fn imbalance_warning(state: &AppState) -> Option<String> {
    let counts: Vec<(String, usize)> = match state.loaded()? {
        LoadedData::Images { index } => index.class_counts(),
        LoadedData::Table { summary, .. } => {
            if state.task()? != Task::Classification {
                return None;
            }
            let target = state.project.model.target.as_ref()?;
            let col = summary.columns.iter().find(|c| &c.name == target)?;
            col.top_values.clone()
        }
    };
    let (min_class, min) = counts.iter().min_by_key(|(_, n)| *n)?;
    let (max_class, max) = counts.iter().max_by_key(|(_, n)| *n)?;
    if *min == 0 || *max as f64 / *min as f64 >= 3.0 {
        Some(format!(
            "Classes are imbalanced: {max_class} has {max} examples but {min_class} only {min}; accuracy alone can mislead — check per-class recall"
        ))
    } else {
        None
    }
}
