//! nflows 0.14 (`nflows.flows.MaskedAutoregressiveFlow`; coupling stacks of
//! `PiecewiseRationalQuadraticCouplingTransform`).
//!
//! Conventions reproduced (nflows 0.14 source: `transforms/autoregressive.py`, `transforms/made.py`,
//! `transforms/permutations.py`, `nn/nets/resnet.py`, `transforms/splines/rational_quadratic.py`):
//! - the transform maps data → base; layers in index order, **permutation first** in every layer;
//!   `Permutation.forward` is `out[:, i] = x[:, perm[i]]`;
//! - residual MADE: `h = initial(x)`; blocks `h + L₁(relu(L₀(relu(h))))`; `final(h)` with no
//!   activation before it; masks and degrees stored, weights used as `W ⊙ mask`;
//! - affine: outputs `view(-1, D, 2)`: `[unconstrained scale, shift]`, `s = softplus(u) + 1e-3`,
//!   `z = s·x + shift`;
//! - base `StandardNormal` (no parameters).

use flow_core::layers::affine_ar::{AffineLayout, AffineScale, Direction};
use flow_core::model::builder::ModelParts;
use flow_core::model::{LayerDesc, NetDesc, Span};
use flow_core::nn::Activation;

use super::{check_kwargs, kw_usize, Fixture, Params};

/// A masked linear layer of an nflows MADE: `(W ⊙ mask, b)` appended to `w`; returns the
/// layer's stored degrees.
fn masked_linear(
    p: &mut Params,
    prefix: &str,
    n_out: usize,
    n_in: usize,
    w: &mut Vec<f64>,
) -> Result<Vec<u16>, String> {
    let weight = p.get(&format!("{prefix}.weight"), &[n_out, n_in])?;
    let mask = p.get(&format!("{prefix}.mask"), &[n_out, n_in])?;
    let bias = p.get(&format!("{prefix}.bias"), &[n_out])?;
    let degrees = p.get(&format!("{prefix}.degrees"), &[n_out])?;
    w.extend(
        weight
            .iter()
            .zip(&mask)
            .map(|(a, m)| if *m != 0.0 { *a } else { 0.0 }),
    );
    w.extend_from_slice(&bias);
    Ok(degrees.iter().map(|&d| d as u16).collect())
}

/// An nflows residual MADE with `blocks` blocks of width `h`, for `d` features and 2 outputs each.
fn residual_made(
    parts: &mut ModelParts,
    p: &mut Params,
    prefix: &str,
    d: usize,
    h: usize,
    blocks: usize,
) -> Result<(NetDesc, Span, Span), String> {
    let mut w = Vec::new();
    let mut hidden_degrees = masked_linear(p, &format!("{prefix}.initial_layer"), h, d, &mut w)?;
    let mut sizes = vec![d, h];
    for b in 0..blocks {
        for k in 0..2 {
            let deg = masked_linear(p, &format!("{prefix}.blocks.{b}.linear_layers.{k}"), h, h, &mut w)?;
            hidden_degrees.extend_from_slice(&deg);
            sizes.push(h);
        }
    }
    // The final layer's degrees are the output degrees (feature ranks + 1), implied by the order.
    let _ = masked_linear(p, &format!("{prefix}.final_layer"), 2 * d, h, &mut w)?;
    sizes.push(2 * d);
    let params = parts.push_weights(&w);
    let deg_span = parts.push_ints(&hidden_degrees);
    // MADE's input order is the natural one: feature i has degree i + 1, rank i.
    let order: Vec<u16> = (0..d as u16).collect();
    let order_span = parts.push_ints(&order);
    let mut s = flow_core::heapless::Vec::new();
    for v in sizes {
        s.push(v)
            .map_err(|_| format!("{prefix}: too many blocks ({blocks})"))?;
    }
    Ok((
        NetDesc {
            sizes: s,
            activation: Activation::Relu,
            residual: true,
            params,
        },
        order_span,
        deg_span,
    ))
}

/// A permutation buffer as a layer.
fn permutation(parts: &mut ModelParts, p: &mut Params, name: &str, d: usize) -> Result<(), String> {
    let perm: Vec<u16> = p.get(name, &[d])?.iter().map(|&v| v as u16).collect();
    let perm = parts.push_ints(&perm);
    parts.push_layer(LayerDesc::Permutation { perm });
    Ok(())
}

/// Imports an nflows flow.
pub(crate) fn import(fx: &Fixture, p: &mut Params) -> Result<ModelParts, String> {
    let c = &fx.flow;
    match c.constructor.as_str() {
        "nflows.flows.MaskedAutoregressiveFlow" => {
            check_kwargs(
                c,
                &[
                    "features",
                    "hidden_features",
                    "num_layers",
                    "num_blocks_per_layer",
                ],
            )?;
            let d = kw_usize(c, "features")?.ok_or("missing option 'features'")?;
            let h = kw_usize(c, "hidden_features")?.ok_or("missing option 'hidden_features'")?;
            let layers = kw_usize(c, "num_layers")?.ok_or("missing option 'num_layers'")?;
            let blocks = kw_usize(c, "num_blocks_per_layer")?.unwrap_or(2);
            let mut parts = ModelParts::new(d, 0);
            for l in 0..layers {
                permutation(
                    &mut parts,
                    p,
                    &format!("_transform._transforms.{}._permutation", 2 * l),
                    d,
                )?;
                let prefix = format!("_transform._transforms.{}.autoregressive_net", 2 * l + 1);
                let (net, order, hidden_degrees) = residual_made(&mut parts, p, &prefix, d, h, blocks)?;
                parts.push_layer(LayerDesc::AffineAutoregressive {
                    net,
                    order,
                    hidden_degrees,
                    scale: AffineScale::SoftplusEps { eps: 1e-3 },
                    layout: AffineLayout::ScaleShift,
                    direction: Direction::Maf,
                });
            }
            Ok(parts)
        }
        other => Err(format!(
            "unsupported nflows constructor '{other}' (supported: nflows.flows.MaskedAutoregressiveFlow)"
        )),
    }
}
