//! Spline architectures (`nsf`: autoregressive, `nsf-coupling`): zuko's rational-quadratic
//! parameterization (softclipped logits, slope 1e-3, unit derivatives at ±B, identity tails).
//! A conditioner output of zero is the identity spline, so the 1e-2 scaled last layer starts
//! each layer near the identity.

use flow_core::layers::autoregressive::Direction;
use flow_core::layers::spline::SplineOpts;
use flow_core::model::LayerDesc;
use rand_chacha::ChaCha8Rng;

use flow_core::nn::Activation;

use super::nets::{coupling_mask, push_coupling_net, push_made, Trainable};
use crate::error::ArchError;

/// How a spline layer's conditioner sees the features.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Structure {
    /// MADE over all features (`nsf`).
    Autoregressive,
    /// Half the features condition the other half (`nsf-coupling`).
    Coupling,
}

/// The spline and conditioner settings of a spline flow (from `ArchConfig`).
pub(crate) struct SplineArch<'a> {
    /// Bins per spline.
    pub bins: usize,
    /// Splines act on `[-bound, bound]`, identity outside.
    pub bound: f64,
    /// Hidden widths of the conditioners.
    pub hidden: &'a [usize],
    /// Their activation.
    pub activation: Activation,
    /// Checkerboard lattice side of the coupling masks (0 = alternate features).
    pub checkerboard: usize,
}

/// Appends layer `k` of a spline flow with `structure`.
pub(crate) fn push_layer(
    t: &mut Trainable,
    cfg: &SplineArch,
    structure: Structure,
    order: &[u16],
    k: usize,
    c: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(), ArchError> {
    if cfg.bins == 0 || cfg.bound.is_nan() || cfg.bound <= 0.0 {
        return Err(format!("invalid spline: {} bins on [-{b}, {b}]", cfg.bins, b = cfg.bound).into());
    }
    let spline = SplineOpts::zuko(cfg.bins, cfg.bound, 1e-3);
    let p = spline.params_per_feature();
    match structure {
        Structure::Autoregressive => {
            let (net, order, hidden_degrees) = push_made(t, order, c, cfg.hidden, p, cfg.activation, rng);
            t.parts.push_layer(LayerDesc::SplineAutoregressive {
                net,
                order,
                hidden_degrees,
                spline,
                direction: Direction::Maf,
            });
        }
        Structure::Coupling => {
            let d = order.len();
            let mask = coupling_mask(d, k, cfg.checkerboard);
            let (net, mask) = push_coupling_net(t, &mask, c, cfg.hidden, p, cfg.activation, rng);
            t.parts
                .push_layer(LayerDesc::SplineCoupling { net, mask, spline });
        }
    }
    Ok(())
}
