//! FlowJAX 19.x (`flowjax.flows.masked_autoregressive_flow` with an `Affine` transformer,
//! `flowjax.flows.coupling_flow` with a `RationalQuadraticSpline` transformer).
//!
//! Conventions reproduced (FlowJAX 19.1.2 source: `flows.py`, `distributions.py`,
//! `bijections/{masked_autoregressive,coupling,affine,rational_quadratic_spline,utils,chain,
//! jax_transforms}.py`, `masks.py`, `utils.py`; paramax `wrappers.py`, `utils.py`; equinox
//! `nn/_mlp.py`, `nn/_linear.py`):
//! - the flow is `Transformed(base, Invert(Scan(layers)))` (`invert=True`, the default), and
//!   `log_prob(x)` runs `Scan.transform` on `x`: FlowJAX's `transform` direction is our `inverse`
//!   (data → base), layers in index order, each `Chain([bijection, Flip or Permute])` with the
//!   bijection first;
//! - layer parameters are stacked (`eqx.filter_vmap`): leading axis = layer index;
//! - `Permute.transform` is `y = x[permutation]` (our `z[i] = x[perm[i]]`, the stored
//!   `permutation[0]` as is; `inverse_permutation[0]` is checked to be its inverse); for `D = 2` the
//!   permutation is `Flip` (no parameters): `perm = [1, 0]`; none for `D = 1`;
//! - networks are `equinox.nn.MLP`: `Linear` is `W x + b` (`W` is `out × in`), ReLU between layers,
//!   identity after the last; the input is `[x, condition]`;
//! - `MaskedAutoregressive`: weights are `Parameterize(jnp.where, mask, W, 0)` (`weight.args[0]` the
//!   bool mask, `weight.args[1]` the raw weights, used as `W ⊙ mask`); ranks: inputs `0..D`
//!   (context −1), hidden `≥`, outputs `>`: our MADE with order `0..D` and hidden degree
//!   = rank + 1 (derived here from the stored masks); outputs `repeat(arange(D), P)`: feature-major;
//! - transformers are built by `get_ravelled_pytree_constructor`, which adds the transformer's
//!   initial parameters to the network output. `Affine()`: `[loc, scale.args[0]]` per feature
//!   (shift first), `s = softplus(a + inv_softplus(1))` ([`AffineScale::SoftplusOffset`]);
//!   `RationalQuadraticSpline(knots=n, interval=B)`: `n + 1` bins, see [`SplineKind::FlowJax`];
//! - `coupling_flow`: `untransformed_dim = D // 2`, the first features are the identity features;
//! - base `Normal(loc, scale)` = `Affine(loc, Parameterize(softplus, raw))` over a standard normal:
//!   our `DiagNormal(loc, softplus(raw))` with JAX's softplus, computed in f64.
//!
//! [`SplineKind::FlowJax`]: flow_core::layers::spline::SplineKind::FlowJax

use flow_core::layers::affine::{AffineLayout, AffineScale};
use flow_core::layers::autoregressive::Direction;
use flow_core::layers::spline::{SplineKind, SplineOpts};
use flow_core::model::builder::ModelParts;
use flow_core::model::{LayerDesc, NetDesc, Span};
use flow_core::nn::Activation;
use serde_json::Value;

use super::{activation_option, check_kwargs, kw_usize, Constructor, Fixture, Params};
use crate::error::ImportError;

/// Pytree path of the stacked layers under `Transformed.bijection = Invert(Scan(Chain(…)))` (the
/// default, `invert=True`).
const LAYERS: &str = ".bijection.bijection.bijection";

/// The same under `Transformed.bijection = Scan(Chain(…))` (`invert=False`).
const LAYERS_NOT_INVERTED: &str = ".bijection.bijection";

/// paramax's `inv_softplus`: `ln(−expm1(−x)) + x`.
fn inv_softplus(x: f64) -> f64 {
    (-(-x).exp_m1()).ln() + x
}

/// JAX's `softplus` (`logaddexp(v, 0)`).
fn softplus(v: f64) -> f64 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

/// Path of the flow layer's bijection (`k = 0`) or permutation (`k = 1`) inside the `Chain` at
/// `root` ([`LAYERS`] or [`LAYERS_NOT_INVERTED`]); a one-dimensional flow has no permutation and
/// no `Chain`.
fn member(root: &str, d: usize, k: usize) -> String {
    if d == 1 {
        root.to_string()
    } else {
        format!("{root}.bijections[{k}]")
    }
}

/// A stacked tensor `[layers, rest…]`, split per layer.
fn stacked(p: &mut Params, name: &str, layers: usize, rest: &[usize]) -> Result<Vec<Vec<f64>>, ImportError> {
    let mut shape = vec![layers];
    shape.extend_from_slice(rest);
    let all = p.get(name, &shape)?;
    let n: usize = rest.iter().product();
    Ok(all.chunks(n.max(1)).map(|c| c.to_vec()).take(layers).collect())
}

/// The stacked `equinox.nn.MLP` at `prefix` (`layers[k].weight`, `.bias`): per flow layer, its
/// weights (`W ⊙ mask` when `masked`) and, when masked, its hidden degrees derived from the masks
/// (a unit's degree is the largest degree among its unmasked inputs; feature `i` has degree
/// `i + 1`, context inputs 0). Returns the sizes too.
#[allow(clippy::type_complexity)]
fn stacked_mlp(
    p: &mut Params,
    prefix: &str,
    layers: usize,
    n_in: usize,
    d: usize,
    masked: bool,
) -> Result<(Vec<usize>, Vec<Vec<f64>>, Vec<Vec<u16>>), ImportError> {
    let weight_name = |k: usize| {
        if masked {
            format!("{prefix}.layers[{k}].weight.args[1]")
        } else {
            format!("{prefix}.layers[{k}].weight")
        }
    };
    let mut sizes = vec![n_in];
    let mut weights = vec![Vec::new(); layers];
    let mut degrees = vec![Vec::new(); layers];
    let mut prev_deg: Vec<Vec<u16>> =
        vec![(0..n_in).map(|j| if j < d { j as u16 + 1 } else { 0 }).collect(); layers];
    let mut k = 0;
    while let Some(shape) = p.shape(&weight_name(k)).map(|s| s.to_vec()) {
        let n_prev = *sizes.last().unwrap_or(&0);
        if shape.len() != 3 || shape[0] != layers || shape[2] != n_prev {
            return Err(format!(
                "parameter '{}' has shape {shape:?}, expected [{layers}, _, {n_prev}]",
                weight_name(k)
            )
            .into());
        }
        let n_out = shape[1];
        let is_last = p.shape(&weight_name(k + 1)).is_none();
        let w = stacked(p, &weight_name(k), layers, &[n_out, n_prev])?;
        let b = stacked(p, &format!("{prefix}.layers[{k}].bias"), layers, &[n_out])?;
        let m = if masked {
            Some(stacked(
                p,
                &format!("{prefix}.layers[{k}].weight.args[0]"),
                layers,
                &[n_out, n_prev],
            )?)
        } else {
            None
        };
        for l in 0..layers {
            match &m {
                Some(m) => {
                    let mut deg = vec![0u16; n_out];
                    for (row, dg) in deg.iter_mut().enumerate() {
                        for col in 0..n_prev {
                            if m[l][row * n_prev + col] != 0.0 {
                                *dg = (*dg).max(prev_deg[l][col]);
                            }
                        }
                    }
                    weights[l].extend(
                        w[l].iter()
                            .zip(&m[l])
                            .map(|(&wv, &mv)| if mv != 0.0 { wv } else { 0.0 }),
                    );
                    if !is_last {
                        degrees[l].extend_from_slice(&deg);
                        prev_deg[l] = deg;
                    }
                }
                None => weights[l].extend_from_slice(&w[l]),
            }
            weights[l].extend_from_slice(&b[l]);
        }
        sizes.push(n_out);
        k += 1;
    }
    if sizes.len() < 2 {
        return Err(format!("missing parameter '{}'", weight_name(0)).into());
    }
    Ok((sizes, weights, degrees))
}

/// A network description for one layer's weights.
fn net(
    parts: &mut ModelParts,
    (sizes, activation): (&[usize], Activation),
    weights: &[f64],
    prefix: &str,
) -> Result<NetDesc, ImportError> {
    let params = parts.push_weights(weights);
    let mut s = flow_core::heapless::Vec::new();
    for &v in sizes {
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

/// The permutation after each flow layer: `Flip` (`D = 2`), `Permute` (`D > 2`), none (`D = 1`).
fn permutations(
    p: &mut Params,
    root: &str,
    d: usize,
    layers: usize,
) -> Result<Vec<Option<Vec<u16>>>, ImportError> {
    match d {
        1 => Ok(vec![None; layers]),
        2 => Ok(vec![Some(vec![1, 0]); layers]),
        _ => {
            let prefix = member(root, d, 1);
            let perm = stacked(p, &format!("{prefix}.permutation[0]"), layers, &[d])?;
            let inv = stacked(p, &format!("{prefix}.inverse_permutation[0]"), layers, &[d])?;
            perm.iter()
                .zip(&inv)
                .map(|(pm, iv)| {
                    let pm: Vec<u16> = pm.iter().map(|&v| v as u16).collect();
                    let ok = pm
                        .iter()
                        .enumerate()
                        .all(|(i, &j)| iv.get(j as usize) == Some(&(i as f64)));
                    if ok {
                        Ok(Some(pm))
                    } else {
                        Err(format!("{prefix}: inverse_permutation is not the inverse of permutation").into())
                    }
                })
                .collect()
        }
    }
}

/// A numeric entry of `transformer_kwargs`.
fn tkw_f64(kwargs: &serde_json::Map<String, Value>, key: &str) -> Result<Option<f64>, ImportError> {
    match kwargs.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("transformer option '{key}' is not a number: {v}").into()),
    }
}

/// The transformer and its keyword arguments.
fn transformer(c: &Constructor) -> Result<(String, serde_json::Map<String, Value>), ImportError> {
    let name = match c.kwargs.get("transformer") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(format!("option 'transformer' is not a name: {v}").into()),
        None => {
            return Err(
                "option 'transformer' missing: FlowJAX's default (an affine transformer with minimum scale 1e-2) \
                 is not supported yet"
                    .into(),
            )
        }
    };
    let kwargs = match c.kwargs.get("transformer_kwargs") {
        None | Some(Value::Null) => serde_json::Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(v) => return Err(format!("option 'transformer_kwargs' is not an object: {v}").into()),
    };
    Ok((name, kwargs))
}

/// Rejects transformer kwargs outside `known`.
fn check_transformer_kwargs(
    name: &str,
    kwargs: &serde_json::Map<String, Value>,
    known: &[&str],
) -> Result<(), ImportError> {
    match kwargs.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(format!(
            "{name}: unsupported transformer option '{k}' (supported: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )
        .into()),
    }
}

/// The base distribution: `Normal(loc, scale)` with `scale = softplus(raw)`.
fn base(fx: &Fixture, p: &mut Params, parts: &mut ModelParts, d: usize) -> Result<(), ImportError> {
    let desc = fx.flow.base_dist.as_deref().unwrap_or("");
    if !desc.starts_with("Normal(") {
        return Err(format!("unsupported FlowJAX base distribution '{desc}' (supported: Normal)").into());
    }
    let loc = p.get(".base_dist.bijection.loc", &[d])?;
    let raw = p.get(".base_dist.bijection.scale.args[0]", &[d])?;
    let scale: Vec<f64> = raw.iter().map(|&r| softplus(r)).collect();
    parts.set_diag_base(&loc, &scale);
    Ok(())
}

/// Imports a FlowJAX flow.
pub(crate) fn import(fx: &Fixture, p: &mut Params) -> Result<ModelParts, ImportError> {
    let c = &fx.flow;
    let supported = "flowjax.flows.masked_autoregressive_flow, flowjax.flows.coupling_flow";
    if !matches!(
        c.constructor.as_str(),
        "flowjax.flows.masked_autoregressive_flow" | "flowjax.flows.coupling_flow"
    ) {
        return Err(format!(
            "unsupported FlowJAX constructor '{}' (supported: {supported})",
            c.constructor
        )
        .into());
    }
    check_kwargs(
        c,
        &[
            "flow_layers",
            "nn_width",
            "nn_depth",
            "nn_activation",
            "cond_dim",
            "transformer",
            "transformer_kwargs",
            "invert",
        ],
    )?;
    // `invert=True` (the default): the density runs the masked autoregressive bijection's
    // one-pass `transform` (MAF); `invert=False`: sampling does (IAF).
    let direction = match c.kwargs.get("invert") {
        None | Some(Value::Bool(true)) => Direction::Maf,
        Some(Value::Bool(false)) if c.constructor == "flowjax.flows.masked_autoregressive_flow" => {
            Direction::Iaf
        }
        Some(v) => {
            return Err(format!(
            "option 'invert' = {v} is not supported for {} (only true; false for masked_autoregressive_flow)",
            c.constructor
        )
            .into())
        }
    };
    // FlowJAX's defaults.
    let layers = kw_usize(c, "flow_layers")?.unwrap_or(8);
    let width = kw_usize(c, "nn_width")?.unwrap_or(50);
    let depth = kw_usize(c, "nn_depth")?.unwrap_or(1);
    let ctx = kw_usize(c, "cond_dim")?.unwrap_or(0);
    let d = match p.shape(".base_dist.bijection.loc") {
        Some([d]) => *d,
        _ => return Err("missing parameter '.base_dist.bijection.loc' of shape [D]".into()),
    };
    let (tname, tkw) = transformer(c)?;
    let act = activation_option(c, "nn_activation", ["relu", "tanh", "elu", "silu"])?;
    let mut parts = ModelParts::new(d, ctx);
    let root = match direction {
        Direction::Maf => LAYERS,
        Direction::Iaf => LAYERS_NOT_INVERTED,
    };
    let perms = permutations(p, root, d, layers)?;
    let check_sizes = |sizes: &[usize], prefix: &str| -> Result<(), ImportError> {
        let hidden = &sizes[1..sizes.len() - 1];
        if hidden.len() != depth || hidden.iter().any(|&h| h != width) {
            return Err(format!(
                "{prefix}: network sizes {sizes:?} do not match nn_width {width}, nn_depth {depth}"
            )
            .into());
        }
        Ok(())
    };
    match c.constructor.as_str() {
        "flowjax.flows.masked_autoregressive_flow" => {
            // The network's outputs are feature-major (`jnp.repeat(ranks, num_params)`, then
            // reshaped to `(dim, num_params)`), as our autoregressive layers read them.
            let transformer = transformer_of(&tname, &tkw, &c.constructor)?;
            let per_feature = transformer.params_per_feature();
            let prefix = format!("{}.masked_autoregressive_mlp", member(root, d, 0));
            let (sizes, weights, degrees) = stacked_mlp(p, &prefix, layers, d + ctx, d, true)?;
            check_sizes(&sizes, &prefix)?;
            if sizes[sizes.len() - 1] != per_feature * d {
                return Err(format!(
                    "{prefix}: {} outputs, expected {} ({d} features × {per_feature} parameters)",
                    sizes[sizes.len() - 1],
                    per_feature * d
                )
                .into());
            }
            let order: Vec<u16> = (0..d as u16).collect();
            // `invert=False`: `Scan(Chain)` is the sampling direction, so the density runs the
            // layers last to first, each permutation inverted before its layer.
            let sequence: Vec<usize> = match direction {
                Direction::Maf => (0..layers).collect(),
                Direction::Iaf => (0..layers).rev().collect(),
            };
            for l in sequence {
                if direction == Direction::Iaf {
                    push_perm(&mut parts, &perms[l].as_deref().map(inverse_permutation));
                }
                let net = net(&mut parts, (&sizes, act), &weights[l], &prefix)?;
                let hidden_degrees = parts.push_ints(&degrees[l]);
                let order = parts.push_ints(&order);
                parts.push_layer(match transformer {
                    Transformer::Affine(scale) => LayerDesc::AffineAutoregressive {
                        net,
                        order,
                        hidden_degrees,
                        scale,
                        layout: AffineLayout::ShiftScale,
                        direction,
                    },
                    Transformer::Spline(spline) => LayerDesc::SplineAutoregressive {
                        net,
                        order,
                        hidden_degrees,
                        spline,
                        direction,
                    },
                });
                if direction == Direction::Maf {
                    push_perm(&mut parts, &perms[l]);
                }
            }
        }
        _ => {
            let transformer = transformer_of(&tname, &tkw, &c.constructor)?;
            let per_feature = transformer.params_per_feature();
            if d < 2 {
                return Err(format!("{}: D = {d} has no coupling split", c.constructor).into());
            }
            let n_id = d / 2;
            let prefix = format!("{}.conditioner", member(root, d, 0));
            let (sizes, weights, _) = stacked_mlp(p, &prefix, layers, n_id + ctx, d, false)?;
            check_sizes(&sizes, &prefix)?;
            let n_out = (d - n_id) * per_feature;
            if sizes[sizes.len() - 1] != n_out {
                return Err(format!(
                    "{prefix}: {} outputs, expected {n_out} ({} features × {per_feature} parameters)",
                    sizes[sizes.len() - 1],
                    d - n_id,
                )
                .into());
            }
            // The first D/2 features condition the rest; the outputs are feature-major.
            let mask: Vec<u16> = (0..d).map(|i| u16::from(i < n_id)).collect();
            for l in 0..layers {
                let net = net(&mut parts, (&sizes, act), &weights[l], &prefix)?;
                let mask = parts.push_ints(&mask);
                parts.push_layer(match transformer {
                    Transformer::Affine(scale) => LayerDesc::AffineCoupling {
                        net,
                        mask,
                        scale,
                        layout: AffineLayout::ShiftScale,
                        additive: false,
                    },
                    Transformer::Spline(spline) => LayerDesc::SplineCoupling { net, mask, spline },
                });
                push_perm(&mut parts, &perms[l]);
            }
        }
    }
    base(fx, p, &mut parts, d)?;
    Ok(parts)
}

/// The transformer of a FlowJAX flow.
#[derive(Clone, Copy)]
enum Transformer {
    /// `Affine()`.
    Affine(AffineScale),
    /// `RationalQuadraticSpline(...)`.
    Spline(SplineOpts),
}

impl Transformer {
    /// Network outputs per transformed feature.
    fn params_per_feature(self) -> usize {
        match self {
            Transformer::Affine(_) => 2,
            Transformer::Spline(spline) => spline.params_per_feature(),
        }
    }
}

/// The transformer named `tname` with options `tkw` (`Affine()` or `RationalQuadraticSpline`) of
/// a `constructor` flow.
fn transformer_of(
    tname: &str,
    tkw: &serde_json::Map<String, Value>,
    constructor: &str,
) -> Result<Transformer, ImportError> {
    match tname {
        "Affine" => {
            check_transformer_kwargs(tname, tkw, &[])?;
            // FlowJAX's ravelled constructor starts the scale at 1: softplus(a + inv_softplus(1)).
            Ok(Transformer::Affine(AffineScale::SoftplusOffset {
                offset: inv_softplus(1.0),
                eps: 0.0,
            }))
        }
        "RationalQuadraticSpline" => Ok(Transformer::Spline(rq_spline(tname, tkw)?)),
        other => Err(format!(
            "unsupported transformer '{other}' for {constructor} (supported: Affine, RationalQuadraticSpline)"
        )
        .into()),
    }
}

/// `q` with `q[p[i]] = i` (`p` a permutation, checked on reading).
fn inverse_permutation(p: &[u16]) -> Vec<u16> {
    let mut q = vec![0u16; p.len()];
    for (i, &v) in p.iter().enumerate() {
        if let Some(slot) = q.get_mut(v as usize) {
            *slot = i as u16;
        }
    }
    q
}

/// Appends a permutation layer, if any.
fn push_perm(parts: &mut ModelParts, perm: &Option<Vec<u16>>) {
    if let Some(perm) = perm {
        let perm: Span = parts.push_ints(perm);
        parts.push_layer(LayerDesc::Permutation { perm });
    }
}

/// The spline of FlowJAX's `RationalQuadraticSpline(knots, interval, min_derivative, min_width)`
/// transformer.
fn rq_spline(tname: &str, tkw: &serde_json::Map<String, Value>) -> Result<SplineOpts, ImportError> {
    check_transformer_kwargs(tname, tkw, &["knots", "interval", "min_derivative", "min_width"])?;
    let knots = tkw
        .get("knots")
        .and_then(Value::as_u64)
        .ok_or("RationalQuadraticSpline: transformer option 'knots' missing or not an integer")?;
    let interval = match tkw.get("interval") {
        Some(v) if v.is_number() => v.as_f64().unwrap_or(f64::NAN),
        Some(v) => {
            return Err(format!(
                "RationalQuadraticSpline: interval {v} is not supported (only a number B, for [−B, B])"
            )
            .into())
        }
        None => return Err("RationalQuadraticSpline: transformer option 'interval' missing".into()),
    };
    let mut spline = SplineOpts::flowjax(knots as usize + 1, interval);
    if let SplineKind::FlowJax {
        min_width,
        min_derivative,
    } = &mut spline.kind
    {
        *min_width = tkw_f64(tkw, "min_width")?.unwrap_or(*min_width);
        *min_derivative = tkw_f64(tkw, "min_derivative")?.unwrap_or(*min_derivative);
    }
    if !spline.is_valid() {
        return Err(format!("RationalQuadraticSpline: options out of range: {spline:?}").into());
    }
    Ok(spline)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::json;

    use super::inv_softplus;
    use crate::import::{read_fixture, to_parts, Fixture};

    fn fixture(name: &str) -> Fixture {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures");
        read_fixture(&dir.join(format!("{name}.json"))).unwrap()
    }

    fn err_of(fx: &Fixture) -> String {
        to_parts(fx).unwrap_err().to_string()
    }

    #[test]
    fn inv_softplus_inverts_softplus() {
        for x in [1e-3, 0.99, 1.0, 3.0] {
            assert!((super::softplus(inv_softplus(x)) - x).abs() < 1e-15 * x.max(1.0));
        }
        assert!((inv_softplus(1.0) - (std::f64::consts::E - 1.0).ln()).abs() < 1e-15);
    }

    #[test]
    fn flowjax_import_names_what_it_does_not_support() {
        for name in ["flowjax_maf_moons", "flowjax_rqcoupling_banana4"] {
            let fx = fixture(name);
            assert!(to_parts(&fx).is_ok());
            let mut bad = fx.clone();
            bad.flow.constructor = "flowjax.flows.block_neural_autoregressive_flow".into();
            assert!(err_of(&bad).contains("flowjax.flows.block_neural_autoregressive_flow"));
            let mut bad = fx.clone();
            bad.flow.kwargs.insert("nn_activation".into(), json!("gelu"));
            let e = err_of(&bad);
            assert!(
                e.contains("gelu") && e.contains("supported: relu, tanh, elu, silu"),
                "{e}"
            );
            let mut bad = fx.clone();
            bad.flow.kwargs.insert("invert".into(), json!("yes"));
            assert!(err_of(&bad).contains("'invert'"));
            // invert=False has no coupling counterpart (the MAF's is the fixture
            // flowjax_iaf_moons).
            if name == "flowjax_rqcoupling_banana4" {
                let mut iaf = fx.clone();
                iaf.flow.kwargs.insert("invert".into(), json!(false));
                assert!(err_of(&iaf).contains("'invert'"));
            }
            let mut bad = fx.clone();
            bad.flow.kwargs.insert("transformer".into(), json!("Foo"));
            assert!(err_of(&bad).contains("'Foo'"));
            let mut bad = fx.clone();
            bad.flow
                .kwargs
                .insert("transformer_kwargs".into(), json!({"softmax_adjust": 0.01}));
            assert!(err_of(&bad).contains("'softmax_adjust'"));
            let mut bad = fx.clone();
            bad.flow.kwargs.remove("transformer");
            assert!(err_of(&bad).contains("'transformer'"));
            let mut bad = fx.clone();
            bad.flow.base_dist = Some("StudentT(df=3)".into());
            assert!(err_of(&bad).contains("StudentT(df=3)"));
            let mut bad = fx.clone();
            bad.flow.kwargs.insert("nn_width".into(), json!(50));
            assert!(err_of(&bad).contains("nn_width"));
            let mut bad = fx.clone();
            bad.flow.kwargs.insert("flow_layers".into(), json!(3));
            assert!(err_of(&bad).contains("shape"));
            let mut bad = fx.clone();
            let t = bad.params.values().next().unwrap().clone();
            bad.params.insert(".bijection.extra".into(), t);
            assert!(err_of(&bad).contains(".bijection.extra"));
            let mut bad = fx;
            bad.params.remove(".base_dist.bijection.scale.args[0]");
            assert!(err_of(&bad).contains(".base_dist.bijection.scale.args[0]"));
        }
        let mut bad = fixture("flowjax_rqcoupling_banana4");
        bad.flow.kwargs.insert(
            "transformer_kwargs".into(),
            json!({"knots": 8, "interval": [-4, 4]}),
        );
        assert!(err_of(&bad).contains("interval"));
        let mut bad = fixture("flowjax_maf_moons");
        bad.flow
            .kwargs
            .insert("transformer_kwargs".into(), json!({"scale": 2.0}));
        assert!(err_of(&bad).contains("'scale'"));
    }
}
