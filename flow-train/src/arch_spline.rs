//! Spline architectures (`nsf`, `nsf-coupling`).
use rand_chacha::ChaCha8Rng;

use crate::arch::{ArchConfig, Trainable};

pub(crate) fn push_layer(
    _: &mut Trainable,
    cfg: &ArchConfig,
    _: &[u16],
    _: usize,
    _: usize,
    _: &mut ChaCha8Rng,
) -> Result<(), String> {
    Err(format!("{} is not available yet", cfg.flow.name()))
}
