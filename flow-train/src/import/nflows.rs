//! nflows 0.14 (`nflows.flows.MaskedAutoregressiveFlow`; coupling stacks of
//! `PiecewiseRationalQuadraticCouplingTransform`).
//!
//! Conventions reproduced (nflows 0.14 source: `transforms/autoregressive.py`, `transforms/made.py`,
//! `transforms/permutations.py`, `transforms/coupling.py`, `nn/nets/resnet.py`,
//! `transforms/splines/rational_quadratic.py`, `distributions/normal.py`):
//! - the transform maps data → base; layers in index order, **permutation first** in every layer;
//!   `Permutation.forward` is `out[:, i] = x[:, perm[i]]`;
//! - residual MADE: `h = initial(x)`; blocks `h + L₁(relu(L₀(relu(h))))`; `final(h)` with no
//!   activation before it; masks and degrees stored, weights used as `W ⊙ mask`;
//! - affine: outputs `view(-1, D, 2)`: `[unconstrained scale, shift]`, `s = softplus(u) + 1e-3`,
//!   `z = s·x + shift`;
//! - coupling (`CouplingTransform.forward`, data → base): `mask > 0` marks the *transformed*
//!   features; the buffers `identity_features` / `transform_features` (`masked_select`, so in index
//!   order) are read, and our mask is their complement (1 = identity); the conditioner sees the
//!   identity features in index order;
//! - `ResidualNet` (no context, no batch norm): `h = initial(a)`; blocks
//!   `h + L₁(relu(L₀(relu(h))))` (dropout is inactive in evaluation); `final(h)` with no activation
//!   before it: exactly our residual MLP;
//! - RQ coupling: net output `reshape(B, n_transformed, 3K − 1)` (feature-major, `out[t·P + p]`,
//!   as our kernel expects); widths and heights divided by `√hidden_features` because
//!   `ResidualNet` has that attribute (our `logit_scale = 1/√H`); `tails="linear"` only;
//! - base `StandardNormal` (no parameters).
//!
//! # What is supported
//!
//! nflows' `Flow` objects are not self-describing, so the exporter names the construction; two
//! forms are read. Any other constructor, option, option value, transform or parameter name is an
//! error that names it (options whose only supported value is nflows' default may be given with
//! that value).
//!
//! **`nflows.flows.MaskedAutoregressiveFlow`**, kwargs:
//!
//! | option | supported values |
//! |---|---|
//! | `features`, `hidden_features`, `num_layers` | required |
//! | `num_blocks_per_layer` | any (default 2) |
//! | `use_residual_blocks` | `true` (default) |
//! | `use_random_masks` | `false` (default; nflows forbids it with residual blocks) |
//! | `use_random_permutations` | `true` or `false` (the permutation is read from its buffer) |
//! | `activation` | `"relu"` (default) |
//! | `dropout_probability` | any in `[0, 1)` (inactive in evaluation) |
//! | `batch_norm_within_layers`, `batch_norm_between_layers` | `false` (default) |
//!
//! **A coupling stack** (nflows has no NSF flow class), constructor
//! `nflows composite: per layer i [P, PiecewiseRationalQuadraticCouplingTransform(ARGS)]`:
//! - `P`: `ReversePermutation` or `RandomPermutation` (both store `_permutation`);
//! - `ARGS`, comma-separated: `mask=…` (free text: the masks are read from the
//!   `identity_features` / `transform_features` buffers), `ResidualNet` (or
//!   `transform_net_create_fn=ResidualNet`; required), `tails=linear` (required; quotes allowed),
//!   and optionally the spline options below as `key=value`;
//! - kwargs and spline options:
//!
//! | option | supported values |
//! |---|---|
//! | `num_layers`, `hidden_features` | required (kwargs) |
//! | `num_blocks` | any (default 2) |
//! | `num_bins` | any ≥ 1 (default 10) |
//! | `tail_bound` | any > 0 (default 1) |
//! | `min_bin_width`, `min_bin_height`, `min_derivative` | in range (default 1e-3) |
//! | `activation` | `"relu"` (default) |
//! | `dropout_probability` | any in `[0, 1)` (inactive in evaluation) |
//! | `use_batch_norm` | `false` (default) |
//! | `apply_unconditional_transform` | `false` (default) |
//!
//! A spline option given both in the kwargs and in `ARGS` must agree.

use flow_core::layers::affine::{AffineLayout, AffineScale};
use flow_core::layers::autoregressive::Direction;
use flow_core::layers::spline::{SplineKind, SplineOpts};
use flow_core::model::builder::ModelParts;
use flow_core::model::{LayerDesc, NetDesc, Span};
use flow_core::nn::Activation;

use super::{check_kwargs, kw_usize, Constructor, Fixture, Params};
use crate::error::ImportError;

/// An option whose only supported value is nflows' default: absent, or equal to `default`.
fn only_default(c: &Constructor, key: &str, default: serde_json::Value) -> Result<(), ImportError> {
    match c.kwargs.get(key) {
        Some(v) if *v != default => Err(format!(
            "{}: option '{key}' = {v} is not supported (supported: {default})",
            c.constructor
        )
        .into()),
        _ => Ok(()),
    }
}

/// The options every supported nflows network shares: ReLU, dropout (inactive in evaluation).
fn check_network_options(c: &Constructor) -> Result<(), ImportError> {
    only_default(c, "activation", serde_json::json!("relu"))?;
    match c.kwargs.get("dropout_probability") {
        Some(v) if !v.as_f64().is_some_and(|p| (0.0..1.0).contains(&p)) => Err(format!(
            "{}: option 'dropout_probability' = {v} is not a probability in [0, 1)",
            c.constructor
        )
        .into()),
        _ => Ok(()),
    }
}

/// A masked linear layer of an nflows MADE: `(W ⊙ mask, b)` appended to `w`; returns the
/// layer's stored degrees.
fn masked_linear(
    p: &mut Params,
    prefix: &str,
    n_out: usize,
    n_in: usize,
    w: &mut Vec<f64>,
) -> Result<Vec<u16>, ImportError> {
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
) -> Result<(NetDesc, Span, Span), ImportError> {
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
fn permutation(parts: &mut ModelParts, p: &mut Params, name: &str, d: usize) -> Result<(), ImportError> {
    let perm: Vec<u16> = p.get(name, &[d])?.iter().map(|&v| v as u16).collect();
    let perm = parts.push_ints(&perm);
    parts.push_layer(LayerDesc::Permutation { perm });
    Ok(())
}

/// Imports an nflows flow.
pub(crate) fn import(fx: &Fixture, p: &mut Params) -> Result<ModelParts, ImportError> {
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
                    "use_residual_blocks",
                    "use_random_masks",
                    "use_random_permutations",
                    "activation",
                    "dropout_probability",
                    "batch_norm_within_layers",
                    "batch_norm_between_layers",
                ],
            )?;
            only_default(c, "use_residual_blocks", serde_json::json!(true))?;
            only_default(c, "use_random_masks", serde_json::json!(false))?;
            only_default(c, "batch_norm_within_layers", serde_json::json!(false))?;
            only_default(c, "batch_norm_between_layers", serde_json::json!(false))?;
            check_network_options(c)?;
            if let Some(v) = c.kwargs.get("use_random_permutations") {
                if !v.is_boolean() {
                    return Err(format!("option 'use_random_permutations' is not a boolean: {v}").into());
                }
            }
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
        other if other.starts_with(COMPOSITE_PREFIX) => rq_coupling_stack(c, p),
        other => Err(format!(
            "unsupported nflows constructor '{other}' (supported: nflows.flows.MaskedAutoregressiveFlow, \
             '{COMPOSITE_PREFIX}[ReversePermutation | RandomPermutation, \
             PiecewiseRationalQuadraticCouplingTransform(mask=…, ResidualNet, tails=linear)]')"
        )
        .into()),
    }
}

/// How the exporter describes a hand-composed stack (nflows has no NSF flow class).
const COMPOSITE_PREFIX: &str = "nflows composite: per layer i ";

/// Splits `s` at the commas outside parentheses and brackets, trimming each part.
fn split_top(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts
}

/// Spline options that may be given inside the composite's coupling arguments.
const SPLINE_ARGS: [&str; 5] = [
    "num_bins",
    "tail_bound",
    "min_bin_width",
    "min_bin_height",
    "min_derivative",
];

/// Checks the composite description: per layer `[permutation, RQ coupling(mask=…, ResidualNet,
/// tails=linear, spline options…)]`, and returns the spline options given there as numbers. The
/// masks themselves are read from the layers' buffers.
fn check_composite(constructor: &str) -> Result<Vec<(&'static str, f64)>, ImportError> {
    let body = constructor
        .strip_prefix(COMPOSITE_PREFIX)
        .and_then(|r| r.strip_prefix('['))
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("unsupported nflows constructor '{constructor}'"))?;
    let items = split_top(body);
    let [perm, coupling] = items[..] else {
        return Err(format!(
            "unsupported nflows composite '{body}': expected [permutation, coupling transform] per layer"
        )
        .into());
    };
    if !matches!(perm, "ReversePermutation" | "RandomPermutation") {
        return Err(format!(
            "unsupported nflows transform '{perm}' (supported: ReversePermutation, RandomPermutation)"
        )
        .into());
    }
    let args = coupling
        .strip_prefix("PiecewiseRationalQuadraticCouplingTransform(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unsupported nflows transform '{coupling}' (supported: PiecewiseRationalQuadraticCouplingTransform)")
        })?;
    let (mut residual_net, mut linear_tails) = (false, false);
    let mut options = Vec::new();
    for arg in split_top(args) {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim().trim_matches(['\'', '"']))),
            None => (arg, None),
        };
        match (key, value) {
            ("ResidualNet", None) | ("transform_net_create_fn", Some("ResidualNet")) => residual_net = true,
            ("tails", Some("linear")) => linear_tails = true,
            ("mask", Some(_)) => {}
            ("tails", _) => {
                return Err(
                    format!("unsupported nflows spline option '{arg}' (supported: tails=linear)").into(),
                )
            }
            ("apply_unconditional_transform", Some("False" | "false")) => {}
            (k, Some(v)) if SPLINE_ARGS.contains(&k) => {
                let v: f64 = v
                    .parse()
                    .map_err(|_| format!("nflows coupling argument '{arg}': not a number"))?;
                let k = SPLINE_ARGS.iter().find(|&&s| s == k).copied().unwrap_or_default();
                options.push((k, v));
            }
            _ => {
                return Err(format!(
                    "unsupported nflows coupling argument '{arg}' (supported: mask=…, ResidualNet, \
                     tails=linear, {})",
                    SPLINE_ARGS.map(|k| format!("{k}=…")).join(", ")
                )
                .into())
            }
        }
    }
    if !residual_net {
        return Err(
            format!("nflows coupling '{coupling}': only a ResidualNet conditioner is supported").into(),
        );
    }
    if !linear_tails {
        return Err(format!(
            "nflows coupling '{coupling}': only tails=linear is supported (nflows' default tails=None lives on [0, 1])"
        ).into());
    }
    Ok(options)
}

/// Reads a numeric option from the kwargs or the composite's coupling arguments (`in_args`);
/// both must agree when both give it.
fn kw_f64(c: &Constructor, key: &str, in_args: &[(&str, f64)]) -> Result<Option<f64>, ImportError> {
    let kw = match c.kwargs.get(key) {
        None => None,
        Some(v) => Some(
            v.as_f64()
                .ok_or_else(|| format!("option '{key}' is not a number: {v}"))?,
        ),
    };
    let arg = in_args.iter().find(|(k, _)| *k == key).map(|&(_, v)| v);
    match (kw, arg) {
        (Some(a), Some(b)) if a != b => {
            Err(format!("option '{key}' is {a} in the kwargs but {b} in the constructor string").into())
        }
        (a, b) => Ok(a.or(b)),
    }
}

/// An integer buffer of unknown length (`identity_features`, `transform_features`).
fn index_buffer(p: &mut Params, name: &str) -> Result<Vec<usize>, ImportError> {
    let shape = p
        .shape(name)
        .map(|s| s.to_vec())
        .ok_or_else(|| format!("missing parameter '{name}'"))?;
    if shape.len() != 1 {
        return Err(format!("parameter '{name}' has shape {shape:?}, expected one axis").into());
    }
    Ok(p.get(name, &shape)?.iter().map(|&v| v as usize).collect())
}

/// A dense layer `(W, b)` appended to `w`.
fn linear(
    p: &mut Params,
    prefix: &str,
    n_out: usize,
    n_in: usize,
    w: &mut Vec<f64>,
) -> Result<(), ImportError> {
    w.extend(p.get(&format!("{prefix}.weight"), &[n_out, n_in])?);
    w.extend(p.get(&format!("{prefix}.bias"), &[n_out])?);
    Ok(())
}

/// An nflows `ResidualNet` without context or batch norm (their parameters would be left over and
/// reported): `n_in → H`, `blocks` blocks of two `H × H` layers, `H → n_out`.
fn residual_net(
    parts: &mut ModelParts,
    p: &mut Params,
    prefix: &str,
    n_in: usize,
    h: usize,
    blocks: usize,
    n_out: usize,
) -> Result<NetDesc, ImportError> {
    let mut w = Vec::new();
    linear(p, &format!("{prefix}.initial_layer"), h, n_in, &mut w)?;
    let mut sizes = vec![n_in, h];
    for b in 0..blocks {
        for k in 0..2 {
            linear(p, &format!("{prefix}.blocks.{b}.linear_layers.{k}"), h, h, &mut w)?;
            sizes.push(h);
        }
    }
    linear(p, &format!("{prefix}.final_layer"), n_out, h, &mut w)?;
    sizes.push(n_out);
    let params = parts.push_weights(&w);
    let mut s = flow_core::heapless::Vec::new();
    for v in sizes {
        s.push(v)
            .map_err(|_| format!("{prefix}: too many blocks ({blocks})"))?;
    }
    Ok(NetDesc {
        sizes: s,
        activation: Activation::Relu,
        residual: true,
        params,
    })
}

/// Layers of `[permutation, PiecewiseRationalQuadraticCouplingTransform]` over a standard normal.
fn rq_coupling_stack(c: &Constructor, p: &mut Params) -> Result<ModelParts, ImportError> {
    let in_args = check_composite(&c.constructor)?;
    check_kwargs(
        c,
        &[
            "num_layers",
            "hidden_features",
            "num_blocks",
            "num_bins",
            "tail_bound",
            "min_bin_width",
            "min_bin_height",
            "min_derivative",
            "activation",
            "dropout_probability",
            "use_batch_norm",
            "apply_unconditional_transform",
        ],
    )?;
    only_default(c, "use_batch_norm", serde_json::json!(false))?;
    only_default(c, "apply_unconditional_transform", serde_json::json!(false))?;
    check_network_options(c)?;
    let layers = kw_usize(c, "num_layers")?.ok_or("missing option 'num_layers'")?;
    let h = kw_usize(c, "hidden_features")?.ok_or("missing option 'hidden_features'")?;
    // nflows' defaults: ResidualNet num_blocks=2; the transform's num_bins=10, tail_bound=1,
    // min_bin_width = min_bin_height = min_derivative = 1e-3.
    let blocks = kw_usize(c, "num_blocks")?.unwrap_or(2);
    let bins = match kw_f64(c, "num_bins", &in_args)? {
        None => 10,
        Some(v) if v >= 1.0 && v.fract() == 0.0 && v <= 1e6 => v as usize,
        Some(v) => return Err(format!("option 'num_bins' is not a positive integer: {v}").into()),
    };
    let tail_bound = kw_f64(c, "tail_bound", &in_args)?.unwrap_or(1.0);
    let mut spline = SplineOpts::nflows(bins, tail_bound, 1.0 / (h as f64).sqrt());
    if let SplineKind::Nflows {
        min_bin_width,
        min_bin_height,
        min_derivative,
    } = &mut spline.kind
    {
        *min_bin_width = kw_f64(c, "min_bin_width", &in_args)?.unwrap_or(*min_bin_width);
        *min_bin_height = kw_f64(c, "min_bin_height", &in_args)?.unwrap_or(*min_bin_height);
        *min_derivative = kw_f64(c, "min_derivative", &in_args)?.unwrap_or(*min_derivative);
    }
    if !spline.is_valid() {
        return Err(format!("{}: spline options out of range: {spline:?}", c.constructor).into());
    }
    let first_perm = "_transform._transforms.0._permutation";
    let d = match p.shape(first_perm) {
        Some([d]) => *d,
        Some(s) => return Err(format!("parameter '{first_perm}' has shape {s:?}, expected one axis").into()),
        None => return Err(format!("missing parameter '{first_perm}'").into()),
    };
    let per = spline.params_per_feature();
    let mut parts = ModelParts::new(d, 0);
    for l in 0..layers {
        permutation(
            &mut parts,
            p,
            &format!("_transform._transforms.{}._permutation", 2 * l),
            d,
        )?;
        let prefix = format!("_transform._transforms.{}", 2 * l + 1);
        let identity = index_buffer(p, &format!("{prefix}.identity_features"))?;
        let transform = index_buffer(p, &format!("{prefix}.transform_features"))?;
        let mut mask = vec![2u16; d];
        for (list, bit) in [(&identity, 1u16), (&transform, 0)] {
            if list.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("{prefix}: feature lists are not in increasing order").into());
            }
            for &j in list.iter() {
                match mask.get_mut(j) {
                    Some(m) if *m == 2 => *m = bit,
                    _ => {
                        return Err(format!(
                            "{prefix}: identity and transform features do not partition 0..{d}"
                        )
                        .into())
                    }
                }
            }
        }
        if mask.contains(&2) || identity.is_empty() || transform.is_empty() {
            return Err(format!(
                "{prefix}: identity and transform features must partition 0..{d}, both non-empty"
            )
            .into());
        }
        let net = residual_net(
            &mut parts,
            p,
            &format!("{prefix}.transform_net"),
            identity.len(),
            h,
            blocks,
            transform.len() * per,
        )?;
        let mask = parts.push_ints(&mask);
        parts.push_layer(LayerDesc::SplineCoupling { net, mask, spline });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::{json, Value};

    use crate::import::{read_fixture, to_parts, Fixture};

    fn fixture(name: &str) -> Fixture {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        read_fixture(&dir.join(format!("{name}.json"))).unwrap()
    }

    fn err_of(fx: &Fixture) -> String {
        to_parts(fx).unwrap_err().to_string()
    }

    /// `fx` with the option `k` set to `v`.
    fn with_kwarg(fx: &Fixture, k: &str, v: Value) -> Fixture {
        let mut f = fx.clone();
        f.flow.kwargs.insert(k.into(), v);
        f
    }

    /// `fx` with `from` replaced by `to` in its constructor string.
    fn with_constructor(fx: &Fixture, from: &str, to: &str) -> Fixture {
        let mut f = fx.clone();
        f.flow.constructor = f.flow.constructor.replace(from, to);
        f
    }

    #[test]
    fn coupling_stack_names_what_it_does_not_support() {
        let fx = fixture("nflows_rqcoupling_moons");
        assert!(to_parts(&fx).is_ok());
        // RandomPermutation stores the same `_permutation` buffer.
        let mut ok = fx.clone();
        ok.flow.constructor = ok
            .flow
            .constructor
            .replace("ReversePermutation", "RandomPermutation");
        assert!(to_parts(&ok).is_ok());
        let mut bad = fx.clone();
        bad.flow.constructor = bad.flow.constructor.replace("ReversePermutation", "LULinear");
        assert!(err_of(&bad).contains("'LULinear'"));
        let mut bad = fx.clone();
        bad.flow.constructor = bad.flow.constructor.replace("tails=linear", "tails=None");
        assert!(err_of(&bad).contains("'tails=None'"));
        let mut bad = fx.clone();
        bad.flow.constructor = bad.flow.constructor.replace("ResidualNet", "MLP");
        assert!(err_of(&bad).contains("'MLP'"));
        let mut bad = fx.clone();
        bad.flow.constructor = bad.flow.constructor.replace(
            "PiecewiseRationalQuadraticCouplingTransform",
            "PiecewiseCubicCouplingTransform",
        );
        assert!(err_of(&bad).contains("PiecewiseCubicCouplingTransform"));
        let mut bad = fx.clone();
        bad.flow.constructor = "nflows composite: something else".into();
        assert!(err_of(&bad).contains("nflows composite: something else"));
        let mut bad = fx.clone();
        bad.flow
            .kwargs
            .insert("apply_unconditional_transform".into(), serde_json::json!(true));
        assert!(err_of(&bad).contains("'apply_unconditional_transform'"));
        let mut bad = fx.clone();
        bad.flow.kwargs.remove("hidden_features");
        assert!(err_of(&bad).contains("'hidden_features'"));
        // A conditional ResidualNet's context layers (GLU gating, not representable) are reported.
        let mut bad = fx.clone();
        let name = "_transform._transforms.1.transform_net.blocks.0.context_layer.weight";
        let t = bad.params.values().next().unwrap().clone();
        bad.params.insert(name.into(), t);
        assert!(err_of(&bad).contains(name));
        let mut bad = fx.clone();
        let name = "_transform._transforms.3.transform_net.final_layer.bias";
        bad.params.remove(name);
        assert!(err_of(&bad).contains(name));
        // Written differently, the same construction imports the same model.
        let same = to_parts(&fx).unwrap();
        for (from, to) in [
            ("tails=linear", "tails='linear'"),
            ("ResidualNet", "transform_net_create_fn=ResidualNet"),
            (
                "tails=linear",
                "tails=linear, num_bins=8, tail_bound=3.0, min_derivative=0.001",
            ),
            (
                "tails=linear",
                "tails=linear, apply_unconditional_transform=False",
            ),
        ] {
            assert_eq!(to_parts(&with_constructor(&fx, from, to)).unwrap(), same, "{to}");
        }
        let mut ok = fx.clone();
        for (k, v) in [
            ("activation", json!("relu")),
            ("dropout_probability", json!(0.1)),
            ("use_batch_norm", json!(false)),
            ("apply_unconditional_transform", json!(false)),
            ("min_bin_width", json!(1e-3)),
        ] {
            ok = with_kwarg(&ok, k, v);
        }
        assert_eq!(to_parts(&ok).unwrap(), same);
        // Options with values we cannot reproduce are named with the value.
        for (k, v, want) in [
            ("activation", json!("tanh"), "'activation' = \"tanh\""),
            ("use_batch_norm", json!(true), "'use_batch_norm' = true"),
            ("dropout_probability", json!(1.5), "'dropout_probability' = 1.5"),
            ("num_bins", json!(2.5), "'num_bins'"),
        ] {
            let e = err_of(&with_kwarg(&fx, k, v));
            assert!(e.contains(want), "{e}");
        }
        // A spline option in the string that contradicts the kwargs, or an unknown argument.
        for (to, want) in [
            ("tails=linear, num_bins=9", "'num_bins'"),
            ("tails=linear, img_shape=2", "'img_shape=2'"),
            ("tails='quadratic'", "tails='quadratic'"),
        ] {
            let e = err_of(&with_constructor(&fx, "tails=linear", to));
            assert!(e.contains(want), "{e}");
        }
        // The feature buffers must partition the features.
        let mut bad = fx;
        let t = bad.params["_transform._transforms.1.identity_features"].clone();
        bad.params
            .insert("_transform._transforms.1.transform_features".into(), t);
        assert!(err_of(&bad).contains("_transform._transforms.1"));
    }

    #[test]
    fn maf_takes_nflows_default_options_and_names_the_others() {
        let fx = fixture("nflows_maf_banana4");
        let same = to_parts(&fx).unwrap();
        let mut ok = fx.clone();
        for (k, v) in [
            ("use_residual_blocks", json!(true)),
            ("use_random_masks", json!(false)),
            ("use_random_permutations", json!(true)),
            ("activation", json!("relu")),
            ("dropout_probability", json!(0.0)),
            ("batch_norm_within_layers", json!(false)),
            ("batch_norm_between_layers", json!(false)),
        ] {
            ok = with_kwarg(&ok, k, v);
        }
        assert_eq!(to_parts(&ok).unwrap(), same);
        for (k, v, want) in [
            (
                "use_residual_blocks",
                json!(false),
                "'use_residual_blocks' = false",
            ),
            ("use_random_masks", json!(true), "'use_random_masks' = true"),
            (
                "batch_norm_between_layers",
                json!(true),
                "'batch_norm_between_layers' = true",
            ),
            (
                "batch_norm_within_layers",
                json!(true),
                "'batch_norm_within_layers' = true",
            ),
            ("activation", json!("elu"), "'activation' = \"elu\""),
            (
                "use_random_permutations",
                json!("yes"),
                "'use_random_permutations'",
            ),
            ("context_features", json!(2), "'context_features'"),
        ] {
            let e = err_of(&with_kwarg(&fx, k, v));
            assert!(e.contains(want), "{k}: {e}");
        }
        let mut bad = fx;
        bad.flow.constructor = "nflows.flows.SimpleRealNVP".into();
        let e = err_of(&bad);
        assert!(
            e.contains("'nflows.flows.SimpleRealNVP'") && e.contains("MaskedAutoregressiveFlow"),
            "{e}"
        );
    }
}
