//! Evaluating a fitted or imported model on a data set, on all cores.

use flow_core::model::builder::ModelParts;
use flow_core::runtime::flow_of;
use rayon::prelude::*;

use crate::train::Dataset;

/// log p of every row of `data` with the model at `model` (f64 arithmetic, the weights as stored,
/// f32 or f64: the same bits as the runtime evaluator's `Evaluator<f64, _>` on the file).
pub fn log_probs(parts: &ModelParts, data: &Dataset) -> Vec<f64> {
    let w = parts.stored_weights();
    (0..data.len())
        .into_par_iter()
        .map_init(
            || {
                let f = flow_of::<f64, f64>(&parts.desc, &w, &parts.ints);
                vec![0.0; f.scratch_len()]
            },
            |scratch, i| {
                let f = flow_of::<f64, f64>(&parts.desc, &w, &parts.ints);
                let (x, c) = data.row(i);
                f.log_prob(x, c, scratch)
            },
        )
        .collect()
}
