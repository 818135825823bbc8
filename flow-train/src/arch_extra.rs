//! INTEGRATE: layers that land with the other flow-core layer files.
use flow_core::model::builder::ModelParts;
use rand_chacha::ChaCha8Rng;

use crate::arch::{ArchConfig, FlowKind, Trainable};

pub(crate) fn push_standardization(_: &mut ModelParts, _: &mut Vec<bool>, _: &[f64], _: &[f64]) {}

pub(crate) fn push_layer(
    _: &mut Trainable,
    kind: FlowKind,
    _: &ArchConfig,
    _: usize,
    _: &[u16],
    _: usize,
    _: &mut ChaCha8Rng,
) -> Result<(), String> {
    Err(format!("{} is not available yet", kind.name()))
}
