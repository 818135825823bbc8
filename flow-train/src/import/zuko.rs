//! zuko 1.x (`zuko.flows.MAF`, `NSF`, `RealNVP`, `NICE`).
//!
//! Conventions reproduced (zuko 1.6.0 source: `zuko/flows/autoregressive.py`, `zuko/nn.py`,
//! `zuko/transforms.py`):
//! - the transform maps data → base, layers in index order; no permutation layers: each layer's
//!   `order` buffer (feature ranks) is baked into its masks;
//! - `MaskedMLP` computes `linear(x, mask ⊙ W, b)` with the stored bool masks (masked weights are
//!   not zero in the file), ReLU between layers, input `[x, context]`;
//! - outputs feature-major `phi[i·P + p]`; affine: `[shift, a]`, `ln s = a / (1 + |a / ln slope|)`
//!   with slope 1e-3 (1.5.0 and later; 1e-4 in 1.0.1–1.4.1);
//! - base `DiagNormal(loc, scale)` from the buffers `base.loc`, `base.scale`.

use flow_core::layers::affine::{AffineLayout, AffineScale};
use flow_core::layers::autoregressive::Direction;
use flow_core::layers::spline::SplineOpts;
use flow_core::model::builder::ModelParts;
use flow_core::model::{LayerDesc, NetDesc, Span};
use flow_core::nn::Activation;

use super::{activation_option, check_kwargs, kw_usize, Fixture, Params};
use crate::error::ImportError;

/// zuko's default `slope` for a version string (`x.y.z`).
pub fn default_slope(version: &str) -> f64 {
    let v: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    let (major, minor, patch) = (
        v.first().copied().unwrap_or(0),
        v.get(1).copied().unwrap_or(0),
        v.get(2).copied().unwrap_or(0),
    );
    let after_1_0_0 = (major, minor, patch) > (1, 0, 0);
    let before_1_5 = (major, minor) < (1, 5);
    if after_1_0_0 && before_1_5 {
        1e-4
    } else {
        1e-3
    }
}

/// A zuko `MaskedMLP` (layers `hyper.0`, `hyper.2`, … with `activation` between): returns the
/// network with `mask ⊙ W`, and the hidden degrees implied by the masks.
fn masked_mlp(
    parts: &mut ModelParts,
    p: &mut Params,
    prefix: &str,
    order: &[u16],
    (n_in, activation): (usize, Activation),
) -> Result<(NetDesc, Span), ImportError> {
    let d = order.len();
    let mut sizes = vec![n_in];
    let mut weights = Vec::new();
    let mut degrees: Vec<u16> = Vec::new();
    let mut prev_deg: Vec<u16> = (0..n_in).map(|j| if j < d { order[j] + 1 } else { 0 }).collect();
    let mut k = 0;
    loop {
        let name = format!("{prefix}.hyper.{k}.weight");
        let Some(shape) = p.shape(&name).map(|s| s.to_vec()) else {
            break;
        };
        if shape.len() != 2 || shape[1] != *sizes.last().unwrap() {
            return Err(format!("parameter '{name}' has shape {shape:?}, which does not chain").into());
        }
        let (n_out, n_prev) = (shape[0], shape[1]);
        let w = p.get(&name, &shape)?;
        let mask = p.get(&format!("{prefix}.hyper.{k}.mask"), &shape)?;
        let b = p.get(&format!("{prefix}.hyper.{k}.bias"), &[n_out])?;
        let is_last = p.shape(&format!("{prefix}.hyper.{}.weight", k + 2)).is_none();
        // Degree of each unit: the largest degree among its unmasked inputs (hidden layers).
        let mut deg = vec![0u16; n_out];
        for row in 0..n_out {
            for col in 0..n_prev {
                if mask[row * n_prev + col] != 0.0 {
                    deg[row] = deg[row].max(prev_deg[col]);
                }
            }
        }
        for (wv, mv) in w.iter().zip(&mask) {
            weights.push(if *mv != 0.0 { *wv } else { 0.0 });
        }
        weights.extend_from_slice(&b);
        sizes.push(n_out);
        if !is_last {
            degrees.extend_from_slice(&deg);
            prev_deg = deg;
        }
        k += 2;
    }
    if sizes.len() < 2 {
        return Err(format!("missing parameter '{prefix}.hyper.0.weight'").into());
    }
    let params = parts.push_weights(&weights);
    let deg_span = parts.push_ints(&degrees);
    let mut s = flow_core::heapless::Vec::new();
    for v in sizes {
        s.push(v)
            .map_err(|_| format!("{prefix}: too many layers in the network"))?;
    }
    Ok((
        NetDesc {
            sizes: s,
            activation,
            residual: false,
            params,
        },
        deg_span,
    ))
}

/// A zuko `MLP` (`hyper.0`, `hyper.2`, … with `activation` between, no masks).
fn plain_mlp(
    parts: &mut ModelParts,
    p: &mut Params,
    prefix: &str,
    (n_in, activation): (usize, Activation),
) -> Result<NetDesc, ImportError> {
    let mut sizes = vec![n_in];
    let mut weights = Vec::new();
    let mut k = 0;
    while let Some(shape) = p.shape(&format!("{prefix}.hyper.{k}.weight")).map(|s| s.to_vec()) {
        if shape.len() != 2 || shape[1] != *sizes.last().unwrap_or(&0) {
            return Err(format!(
                "parameter '{prefix}.hyper.{k}.weight' has shape {shape:?}, which does not chain"
            )
            .into());
        }
        weights.extend(p.get(&format!("{prefix}.hyper.{k}.weight"), &shape)?);
        weights.extend(p.get(&format!("{prefix}.hyper.{k}.bias"), &[shape[0]])?);
        sizes.push(shape[0]);
        k += 2;
    }
    if sizes.len() < 2 {
        return Err(format!("missing parameter '{prefix}.hyper.0.weight'").into());
    }
    let params = parts.push_weights(&weights);
    let mut s = flow_core::heapless::Vec::new();
    for v in sizes {
        s.push(v)
            .map_err(|_| format!("{prefix}: too many layers in the network"))?;
    }
    Ok(NetDesc {
        sizes: s,
        activation,
        residual: false,
        params,
    })
}

/// Reads a layer's `order` buffer as feature ranks.
fn order(p: &mut Params, prefix: &str, d: usize) -> Result<Vec<u16>, ImportError> {
    let o = p.get(&format!("{prefix}.order"), &[d])?;
    Ok(o.iter().map(|&v| v as u16).collect())
}

/// The base `DiagNormal(loc, scale)`.
fn base(parts: &mut ModelParts, p: &mut Params, d: usize) -> Result<(), ImportError> {
    let loc = p.get("base.loc", &[d])?;
    let scale = p.get("base.scale", &[d])?;
    parts.set_diag_base(&loc, &scale);
    Ok(())
}

/// Imports a zuko flow.
pub(crate) fn import(fx: &Fixture, p: &mut Params) -> Result<ModelParts, ImportError> {
    let c = &fx.flow;
    let d = kw_usize(c, "features")?.ok_or("zuko flow without 'features'")?;
    let ctx = kw_usize(c, "context")?.unwrap_or(0);
    let transforms = kw_usize(c, "transforms")?.unwrap_or(3);
    let act = activation_option(c, "activation", ["ReLU", "Tanh", "ELU", "SiLU"])?;
    let mut parts = ModelParts::new(d, ctx);
    match c.constructor.as_str() {
        "zuko.flows.MAF" => {
            check_kwargs(c, &["features", "context", "transforms", "hidden_features", "activation", "randperm", "passes"])?;
            let slope = default_slope(&fx.library_version);
            for i in 0..transforms {
                let prefix = format!("transform.transforms.{i}");
                let ord = order(p, &prefix, d)?;
                let (net, hidden_degrees) = masked_mlp(&mut parts, p, &prefix, &ord, (d + ctx, act))?;
                let order = parts.push_ints(&ord);
                parts.push_layer(LayerDesc::AffineAutoregressive {
                    net,
                    order,
                    hidden_degrees,
                    scale: AffineScale::SoftclipExp { bound: -slope.ln() },
                    layout: AffineLayout::ShiftScale,
                    direction: Direction::Maf,
                });
            }
        }
        "zuko.flows.NSF" => {
            check_kwargs(
                c,
                &["features", "context", "transforms", "bins", "hidden_features", "activation", "slope", "randperm", "passes"],
            )?;
            let bins = kw_usize(c, "bins")?.unwrap_or(8);
            let slope = match c.kwargs.get("slope") {
                Some(v) => v.as_f64().ok_or_else(|| format!("option 'slope' is not a number: {v}"))?,
                None => default_slope(&fx.library_version),
            };
            let spline = SplineOpts::zuko(bins, 5.0, slope);
            for i in 0..transforms {
                let prefix = format!("transform.transforms.{i}");
                let ord = order(p, &prefix, d)?;
                let (net, hidden_degrees) = masked_mlp(&mut parts, p, &prefix, &ord, (d + ctx, act))?;
                let order = parts.push_ints(&ord);
                parts.push_layer(LayerDesc::SplineAutoregressive {
                    net,
                    order,
                    hidden_degrees,
                    spline,
                    direction: Direction::Maf,
                });
            }
        }
        // zuko's `RealNVP` is its `NICE` (affine couplings); `randmask` only changes the masks,
        // which the state holds.
        "zuko.flows.RealNVP" | "zuko.flows.NICE" => {
            check_kwargs(c, &["features", "context", "transforms", "hidden_features", "activation", "randmask"])?;
            let slope = default_slope(&fx.library_version);
            for i in 0..transforms {
                let prefix = format!("transform.transforms.{i}");
                let mask: Vec<u16> =
                    p.get(&format!("{prefix}.mask"), &[d])?.iter().map(|&m| u16::from(m != 0.0)).collect();
                let n_id = mask.iter().filter(|&&m| m == 1).count();
                let net = plain_mlp(&mut parts, p, &prefix, (n_id + ctx, act))?;
                let mask = parts.push_ints(&mask);
                parts.push_layer(LayerDesc::AffineCoupling {
                    net,
                    mask,
                    scale: AffineScale::SoftclipExp { bound: -slope.ln() },
                    layout: AffineLayout::ShiftScale,
                    additive: false,
                });
            }
        }
        other => {
            return Err(format!(
                "unsupported zuko constructor '{other}' (supported: zuko.flows.MAF, zuko.flows.NSF, zuko.flows.RealNVP, zuko.flows.NICE)"
            ).into())
        }
    }
    base(&mut parts, p, d)?;
    Ok(parts)
}
