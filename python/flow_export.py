"""Export a live zuko, nflows or FlowJAX flow to `flow-fixture/1` JSON for `flow-train import`.

The file holds the flow's constructor and arguments, every parameter tensor, probe points with the
library's own log p (float64 and float32), and base-noise -> sample pairs, so the import can be
verified against the library (`flow-train import` keeps them as golden vectors; `flow-train verify`
re-checks them).

    import zuko, flow_export
    flow = zuko.flows.NSF(2, transforms=3, bins=8, hidden_features=[64, 64])
    ... train ...
    flow_export.export_zuko(flow, "NSF", {"features": 2, "transforms": 3, "bins": 8,
                            "hidden_features": [64, 64]}, x_train, "nsf.json")

then `flow-train import nsf.json -o nsf.flow` and bake `nsf.flow` with `#[flow_macros::flow(...)]`.

`kwargs` must be exactly the constructor's keyword arguments (the importer rejects options it does
not reproduce). Probe points: 200 rows of `x` plus points at and 1e-4 around the spline bound, at
0 and far in the tails (7.5, -12) in one coordinate.
"""
import json
import re

import numpy as np


def probe_points(x, bound, seed=0):
    """Typical rows of `x`, plus points at and around +-bound and far out in one coordinate."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float32)
    d = x.shape[1]
    pts = [x[i] for i in rng.choice(len(x), min(200, len(x)), replace=False)]
    for v in [bound - 1e-4, bound, bound + 1e-4, -bound + 1e-4, -bound, -bound - 1e-4, 0.0, 7.5, -12.0]:
        p = x[rng.integers(len(x))].copy()
        p[rng.integers(d)] = v
        pts.append(p)
    return np.array(pts, dtype=np.float32)


def _params(named):
    out = {}
    for name, arr in named:
        a = np.asarray(arr)
        kind = "bool" if a.dtype == np.bool_ else ("int64" if a.dtype.kind in "iu" else "float32")
        if kind == "bool":
            data = [int(v) for v in a.reshape(-1)]
        else:
            data = a.astype(np.float64 if kind == "float32" else np.int64).reshape(-1).tolist()
        out[name] = {"shape": list(a.shape), "dtype": kind, "data": data}
    return out


def _json_kwargs(kwargs):
    """Constructor options as JSON: classes and functions (`activation=torch.nn.ELU`,
    `nn_activation=jax.nn.tanh`) by their name."""
    return {k: (v.__name__ if callable(v) and hasattr(v, "__name__") else v) for k, v in kwargs.items()}


def _write(path, obj):
    """Compact JSON (no spaces), written to a temporary file and renamed, so a reader never sees half a file."""
    import os

    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, separators=(",", ":"))
    os.replace(tmp, path)


def export_zuko(flow, constructor, kwargs, x, path, context=None, n_samples=50, seed=0, bound=5.0):
    """`flow` is a `zuko.flows.<constructor>(**kwargs)`; `context` rows pair with `x` if conditional."""
    import torch
    import zuko

    rng = np.random.default_rng(seed)
    pts = probe_points(x, bound, seed)
    ctx = None if context is None else np.asarray(context, dtype=np.float32)[rng.choice(len(context), len(pts))]
    flow = flow.eval()
    with torch.no_grad():
        c32 = None if ctx is None else torch.from_numpy(ctx)
        lp32 = flow(c32).log_prob(torch.from_numpy(pts)).numpy()
        params = _params((k, v.numpy()) for k, v in flow.state_dict().items())
        f64 = flow.double()
        c64 = None if ctx is None else torch.from_numpy(ctx).double()
        lp64 = f64(c64).log_prob(torch.from_numpy(pts).double()).numpy()
        zb = torch.from_numpy(rng.normal(size=(n_samples, pts.shape[1])))
        cs = None if ctx is None else c64[:n_samples]
        xs = f64(cs).transform.inv(zb).numpy()
        flow.float()
    _write(path, {
        "format": "flow-fixture/1", "library": "zuko", "library_version": zuko.__version__,
        "framework": "torch " + torch.__version__,
        "flow": {"constructor": "zuko.flows." + constructor, "kwargs": _json_kwargs(kwargs)},
        "notes": "Sampling: x = flow(context).transform.inv(base).",
        "params": params, "points": pts.tolist(), "context": None if ctx is None else ctx.tolist(),
        "log_prob": lp64.tolist(), "log_prob_f32": lp32.tolist(),
        "sample": {"base": zb.numpy().tolist(), "context": None if ctx is None else ctx[:n_samples].tolist(),
                   "x": xs.tolist()},
    })


def export_nflows_maf(flow, kwargs, x, path, n_samples=50, seed=0):
    """`flow` is `nflows.flows.MaskedAutoregressiveFlow(**kwargs)` (no context)."""
    export_nflows(flow, "nflows.flows.MaskedAutoregressiveFlow", kwargs, x, path, 3.0, n_samples, seed)


def export_nflows(flow, constructor, kwargs, x, path, bound=3.0, n_samples=50, seed=0):
    """Any unconditional `nflows.flows.Flow`. `constructor` names how it was built: the class path
    (`nflows.flows.MaskedAutoregressiveFlow`) or, for a hand-built `Flow(CompositeTransform([...]))`,
    the `nflows composite: ...` grammar that `flow-train/src/import/nflows.rs` documents."""
    import nflows  # noqa: F401
    import torch

    rng = np.random.default_rng(seed)
    pts = probe_points(x, bound, seed)
    flow = flow.eval()
    with torch.no_grad():
        lp32 = flow.log_prob(torch.from_numpy(pts)).numpy()
        params = _params((k, v.numpy()) for k, v in flow.state_dict().items())
        f64 = flow.double()
        lp64 = f64.log_prob(torch.from_numpy(pts).double()).numpy()
        zb = torch.from_numpy(rng.normal(size=(n_samples, pts.shape[1])))
        xs, _ = f64._transform.inverse(zb)
        flow.float()
    _write(path, {
        "format": "flow-fixture/1", "library": "nflows", "library_version": "0.14",
        "framework": "torch " + torch.__version__,
        "flow": {"constructor": constructor, "kwargs": kwargs},
        "notes": "Sampling: x = flow._transform.inverse(base).",
        "params": params, "points": pts.tolist(), "context": None,
        "log_prob": lp64.tolist(), "log_prob_f32": lp32.tolist(),
        "sample": {"base": zb.numpy().tolist(), "context": None, "x": xs.numpy().tolist()},
    })


def export_flowjax(flow, constructor, kwargs, transformer, transformer_kwargs, x, path, n_samples=50, seed=0,
                   edges=True, context=None):
    """`flow` is `flowjax.flows.<constructor>(key, base_dist=Normal(zeros(d)), transformer=..., **kwargs)`.

    Needs `jax.config.update("jax_enable_x64", True)` before the flow was built (float64 reference).
    `edges=False` probes typical points only: an inverse autoregressive flow (`invert=False`) finds
    its density by inverting, which overflows far from the data (FlowJAX returns -inf there).
    `context` rows pair with `x` for a conditional flow (`cond_dim`)."""
    import equinox as eqx
    import flowjax
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(seed)
    pts = probe_points(x, transformer_kwargs.get("interval", 4.0), seed)
    if not edges:
        pts = pts[:200]
    ctx = None if context is None else np.asarray(context, dtype=np.float64)[rng.choice(len(context), len(pts))]
    cond = None if ctx is None else jnp.asarray(ctx)
    lp64 = np.asarray(flow.log_prob(jnp.asarray(pts, dtype=jnp.float64), condition=cond))
    leaves = jax.tree_util.tree_leaves_with_path(eqx.filter(flow, eqx.is_array))
    params = _params((jax.tree_util.keystr(p), np.asarray(v)) for p, v in leaves)
    zb = rng.normal(size=(n_samples, pts.shape[1]))
    if ctx is None:
        xs = np.asarray(jax.vmap(flow.bijection.transform)(jnp.asarray(zb)))
    else:
        xs = np.asarray(jax.vmap(flow.bijection.transform)(jnp.asarray(zb), cond[:n_samples]))
    _write(path, {
        "format": "flow-fixture/1", "library": "flowjax", "library_version": flowjax.__version__,
        "framework": "jax " + jax.__version__ + " (x64)",
        "flow": {"constructor": "flowjax.flows." + constructor,
                 "kwargs": dict(_json_kwargs(kwargs), transformer=transformer, transformer_kwargs=transformer_kwargs),
                 "base_dist": "Normal(zeros(%d))" % pts.shape[1]},
        "notes": "flowjax.__repr__ of the flow: " + re.sub(r" at 0x[0-9a-f]+", "", repr(flow))[:4000] + " Sampling: x = flow.bijection.transform(base).",
        "params": params, "points": pts.tolist(), "context": None if ctx is None else ctx.tolist(),
        "log_prob": lp64.tolist(), "log_prob_f32": None,
        "sample": {"base": zb.tolist(), "context": None if ctx is None else ctx[:n_samples].tolist(),
                   "x": xs.tolist()},
    })
