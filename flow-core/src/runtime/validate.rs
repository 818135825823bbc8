//! The one validator shared by the runtime evaluator, the macro's checker and the host tools.
//!
//! After [`validate`] succeeds, every layer view built from the description indexes only inside
//! its spans, every network's sizes chain, and every kernel's preconditions hold, so evaluation
//! cannot panic (given scratch of the flow's `scratch_len`).

use crate::layers::affine::AffineScale;
use crate::layers::elementwise::ElementwiseKind;
use crate::layers::lu_linear;
use crate::layers::permutation::is_permutation;
use crate::model::{BaseDesc, LayerDesc, ModelDesc, NetDesc, Span, MAX_COMPONENTS, MAX_DIM};
use crate::nn::{made, mlp};
use crate::runtime::layers::{base_span, layer_span, slice};
use crate::Weight;

/// Largest width of a network layer.
pub const MAX_WIDTH: usize = 1 << 14;

/// Why a description is invalid. `layer` is the layer's index (data side first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// D is 0 or above [`MAX_DIM`], or C above it.
    BadDimension,
    /// A span points outside its section, or has the wrong length.
    BadSpan {
        /// Layer index.
        layer: usize,
    },
    /// A weight is NaN or infinite, or (`f64` weights) beyond the `f32` range, where `f32`
    /// evaluation would read it as infinite.
    NonFiniteWeight {
        /// Index in the weight section.
        index: usize,
    },
    /// A network's sizes do not chain with the layer's dimensions, or are out of range.
    NetShape {
        /// Layer index.
        layer: usize,
    },
    /// A permutation layer's indices are not a permutation of `0..D`.
    NotAPermutation {
        /// Layer index.
        layer: usize,
    },
    /// An autoregressive order has a rank outside `0..D`. (Ranks may repeat: features of equal
    /// rank do not depend on each other, as in zuko's `passes`.)
    BadOrder {
        /// Layer index.
        layer: usize,
    },
    /// A MADE has a nonzero weight under its mask, or hidden degrees out of range.
    NotAutoregressive {
        /// Layer index.
        layer: usize,
    },
    /// A coupling mask is not 0/1 or leaves nothing to transform.
    BadMask {
        /// Layer index.
        layer: usize,
    },
    /// An option (scale epsilon, spline bins or bound, …) is out of range.
    BadOption {
        /// Layer index.
        layer: usize,
    },
    /// The base's parameters must be the last weights, and match D.
    BadBase,
}

impl core::fmt::Display for Invalid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Invalid::BadDimension => write!(f, "dimension out of range (1..={MAX_DIM})"),
            Invalid::BadSpan { layer } => write!(f, "layer {layer}: parameters out of range or wrong length"),
            Invalid::NonFiniteWeight { index } => {
                write!(f, "weight {index} is NaN or infinite (or beyond the f32 range)")
            }
            Invalid::NetShape { layer } => write!(f, "layer {layer}: network sizes do not chain"),
            Invalid::NotAPermutation { layer } => write!(f, "layer {layer}: order is not a permutation"),
            Invalid::BadOrder { layer } => {
                write!(f, "layer {layer}: autoregressive order has a rank outside 0..D")
            }
            Invalid::NotAutoregressive { layer } => {
                write!(
                    f,
                    "layer {layer}: masked weights are not zero (not autoregressive)"
                )
            }
            Invalid::BadMask { layer } => write!(f, "layer {layer}: coupling mask is not a 0/1 split"),
            Invalid::BadOption { layer } => write!(f, "layer {layer}: option out of range"),
            Invalid::BadBase => write!(f, "base distribution parameters are inconsistent"),
        }
    }
}

impl core::error::Error for Invalid {}

/// A coupling mask: `D` values, each 0 (transformed) or 1 (identity), at least one transformed.
/// Returns (identity count, transformed count).
fn check_mask(mask: Span, ints: &[u16], d: usize, layer: usize) -> Result<(usize, usize), Invalid> {
    span_len(mask, ints.len(), d, layer)?;
    let m = slice(ints, mask);
    if m.iter().any(|&v| v > 1) {
        return Err(Invalid::BadMask { layer });
    }
    let n_id = m.iter().filter(|&&v| v == 1).count();
    if n_id == d {
        return Err(Invalid::BadMask { layer });
    }
    Ok((n_id, d - n_id))
}

fn finite(v: f64) -> bool {
    v.is_finite()
}

/// A weight that both precisions read as a finite number (an `f64` weight must round to a finite
/// `f32`: `f32` evaluation reads every weight as `f32`).
fn finite_weight<W: Weight>(w: &W) -> bool {
    finite(w.get::<f64>()) && w.get::<f32>().is_finite()
}

/// A weight that both precisions read as positive (an `f64` weight below the smallest `f32`
/// subnormal would be 0 in `f32`).
fn positive<W: Weight>(w: &W) -> bool {
    w.get::<f64>() > 0.0 && w.get::<f32>() > 0.0
}

fn span_len(span: Span, section: usize, len: usize, layer: usize) -> Result<(), Invalid> {
    match span.range(section) {
        Some(r) if r.len() == len => Ok(()),
        _ => Err(Invalid::BadSpan { layer }),
    }
}

/// Checks a network: sizes in range, `n_in` and `n_out` as expected, parameter span exact.
fn check_net<W>(
    net: &NetDesc,
    n_in: usize,
    n_out: usize,
    weights: &[W],
    layer: usize,
) -> Result<(), Invalid> {
    let s = &net.sizes;
    if s.len() < 2 || s[0] != n_in || s[s.len() - 1] != n_out || s.iter().any(|&w| w == 0 || w > MAX_WIDTH) {
        return Err(Invalid::NetShape { layer });
    }
    // Residual nets: [n_in, H, (H, H) × blocks, n_out].
    if net.residual
        && (s.len() < 3 || !(s.len() - 3).is_multiple_of(2) || s[1..s.len() - 1].iter().any(|&w| w != s[1]))
    {
        return Err(Invalid::NetShape { layer });
    }
    span_len(net.params, weights.len(), mlp::n_params(s), layer)
}

/// Checks a MADE: ranks of the order in `0..D`, hidden degrees in range, masked weights zero.
#[allow(clippy::too_many_arguments)]
fn check_made<W: Weight>(
    net: &NetDesc,
    order: Span,
    hidden: Span,
    per_feature: usize,
    d: usize,
    weights: &[W],
    ints: &[u16],
    layer: usize,
) -> Result<(), Invalid> {
    span_len(order, ints.len(), d, layer)?;
    span_len(hidden, ints.len(), mlp::hidden_total(&net.sizes), layer)?;
    let order = slice(ints, order);
    let hidden = slice(ints, hidden);
    // Any ranks below D: the masks then define an acyclic dependence (strictly lower ranks only),
    // so the D sweeps of the inverse are exact.
    if order.iter().any(|&r| r as usize >= d) {
        return Err(Invalid::BadOrder { layer });
    }
    if hidden.iter().any(|&m| m as usize > d) {
        return Err(Invalid::NotAutoregressive { layer });
    }
    // Skip connections add unit k of one hidden layer to unit k of another: equal degrees.
    let width = net.sizes[1];
    if net.residual && hidden.chunks(width).any(|c| c != &hidden[..width]) {
        return Err(Invalid::NotAutoregressive { layer });
    }
    let params = slice(weights, net.params);
    let s = &net.sizes;
    let mut offset = 0;
    for l in 0..s.len() - 1 {
        let (n_in, n_out) = (s[l], s[l + 1]);
        for row in 0..n_out {
            for col in 0..n_in {
                let w: f64 = params[offset + row * n_in + col].get();
                if w != 0.0 && !made::allows(order, s, hidden, per_feature, l, row, col) {
                    return Err(Invalid::NotAutoregressive { layer });
                }
            }
        }
        offset += n_in * n_out + n_out;
    }
    Ok(())
}

fn check_scale(scale: AffineScale, layer: usize) -> Result<(), Invalid> {
    match scale.out_of_range() {
        None => Ok(()),
        Some(_) => Err(Invalid::BadOption { layer }),
    }
}

/// Validates a description against its weight and integer sections.
pub fn validate<W: Weight>(desc: &ModelDesc, weights: &[W], ints: &[u16]) -> Result<(), Invalid> {
    let d = desc.dim as usize;
    let c = desc.context_dim as usize;
    if d == 0 || d > MAX_DIM || c > MAX_DIM {
        return Err(Invalid::BadDimension);
    }
    if let Some(index) = weights.iter().position(|w| !finite_weight(w)) {
        return Err(Invalid::NonFiniteWeight { index });
    }
    // Base: parameters last, right length.
    let base = base_span(&desc.base);
    let base_len = match desc.base {
        BaseDesc::StandardNormal => 0,
        BaseDesc::DiagNormal { .. } => 2 * d,
        BaseDesc::CholeskyNormal { .. } => d + d * (d + 1) / 2,
        BaseDesc::GaussianMixture { components, .. } => {
            if components == 0 || components as usize > MAX_COMPONENTS {
                return Err(Invalid::BadBase);
            }
            crate::base::mixture::n_params(components as usize, d)
        }
        BaseDesc::StudentT { .. } => crate::base::student_t::n_params(d),
    };
    if base_len > 0 {
        match base.range(weights.len()) {
            Some(r) if r.len() == base_len && r.end == weights.len() => {}
            _ => return Err(Invalid::BadBase),
        }
        let p = slice(weights, base);
        let ok = match desc.base {
            BaseDesc::DiagNormal { .. } => p[d..].iter().all(positive),
            // Any finite logits, means and ln σ (checked above) define a mixture.
            BaseDesc::GaussianMixture { .. } => true,
            // Any finite μ and ln σ; ln ν within ±80, so ν and 1/ν are finite in `f32`.
            BaseDesc::StudentT { .. } => p[2 * d..].iter().all(|l| l.get::<f64>().abs() <= 80.0),
            _ => (0..d).all(|i| positive(&p[d + crate::base::packed(i, i)])),
        };
        if !ok {
            return Err(Invalid::BadBase);
        }
    }
    let limit = if base_len > 0 {
        base.offset as usize
    } else {
        weights.len()
    };
    for (i, layer) in desc.layers.iter().enumerate() {
        // Every layer's weights lie before the base's.
        match layer_span(layer).range(limit) {
            Some(_) => {}
            None => return Err(Invalid::BadSpan { layer: i }),
        }
        match layer {
            LayerDesc::AffineAutoregressive {
                net,
                order,
                hidden_degrees,
                scale,
                ..
            } => {
                check_net(net, d + c, 2 * d, weights, i)?;
                check_made(net, *order, *hidden_degrees, 2, d, weights, ints, i)?;
                check_scale(*scale, i)?;
            }
            LayerDesc::AffineCoupling {
                net,
                mask,
                scale,
                additive,
                ..
            } => {
                let (n_id, n_tr) = check_mask(*mask, ints, d, i)?;
                check_net(net, n_id + c, if *additive { n_tr } else { 2 * n_tr }, weights, i)?;
                check_scale(*scale, i)?;
            }
            LayerDesc::Elementwise { kind, params } => {
                span_len(*params, weights.len(), kind.n_params(d), i)?;
                let p = slice(weights, *params);
                if *kind == ElementwiseKind::Affine && !p[d..].iter().all(positive) {
                    return Err(Invalid::BadOption { layer: i });
                }
            }
            LayerDesc::Planar { params } => span_len(*params, weights.len(), 2 * d + 1, i)?,
            LayerDesc::Radial { params } => span_len(*params, weights.len(), d + 2, i)?,
            LayerDesc::ActNorm { params } => span_len(*params, weights.len(), 2 * d, i)?,
            LayerDesc::BatchNorm { params, eps } => {
                span_len(*params, weights.len(), 4 * d, i)?;
                let var = &slice(weights, *params)[3 * d..];
                if !(finite(*eps) && *eps > 0.0) || var.iter().any(|v| v.get::<f64>() < 0.0) {
                    return Err(Invalid::BadOption { layer: i });
                }
            }
            LayerDesc::LuLinear { params, eps } => {
                span_len(*params, weights.len(), lu_linear::n_params(d), i)?;
                if !(finite(*eps) && *eps > 0.0) {
                    return Err(Invalid::BadOption { layer: i });
                }
            }
            LayerDesc::Permutation { perm } => {
                span_len(*perm, ints.len(), d, i)?;
                if !is_permutation(slice(ints, *perm)) {
                    return Err(Invalid::NotAPermutation { layer: i });
                }
            }
            LayerDesc::SplineAutoregressive {
                net,
                order,
                hidden_degrees,
                spline,
                ..
            } => {
                if !spline.is_valid() {
                    return Err(Invalid::BadOption { layer: i });
                }
                let p = spline.params_per_feature();
                check_net(net, d + c, p * d, weights, i)?;
                check_made(net, *order, *hidden_degrees, p, d, weights, ints, i)?;
            }
            LayerDesc::ContextStandardize { params } => {
                // First layer, first weights, a conditional model: `Layers` and the baked
                // `StandardizedContext` cut it off the front of the parameters.
                if i != 0 || c == 0 || params.offset != 0 {
                    return Err(Invalid::BadOption { layer: i });
                }
                span_len(*params, weights.len(), 2 * c, i)?;
                if !slice(weights, *params)[c..].iter().all(positive) {
                    return Err(Invalid::BadOption { layer: i });
                }
            }
            LayerDesc::SplineCoupling { net, mask, spline } => {
                if !spline.is_valid() {
                    return Err(Invalid::BadOption { layer: i });
                }
                let (n_id, n_tr) = check_mask(*mask, ints, d, i)?;
                check_net(net, n_id + c, spline.params_per_feature() * n_tr, weights, i)?;
            }
        }
    }
    Ok(())
}
