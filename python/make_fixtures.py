"""Make the reference flows the tests import: small flows trained by zuko, nflows and FlowJAX.

    python3 -m venv .venv && .venv/bin/pip install -r python/requirements-fixtures.txt
    .venv/bin/python python/make_fixtures.py tests/fixtures

Each file is one flow trained for a few hundred steps by the real library and written by
`flow_export.py` (format `flow-fixture/1`, see `tests/fixtures/README.md`): every parameter, probe
points with the library's own log p in float64 and float32, and base noise -> sample pairs. The
tests (`flow-train/tests/import_fixtures.rs`, `flow-train/tests/verify.rs`, the importers' unit
tests, `flow-macros/tests/gen_models.rs` -> `golden.rs`) check that we evaluate what the library
evaluates.

Deterministic for given library versions (seeds below; torch on 2 threads, CPU). The versions the
checked-in files were made with are written in each file (`library_version`, `framework`) and
pinned in `requirements-fixtures.txt`. The networks are small (16 hidden units) so that the files
stay a few hundred KB in all; the tests' criteria do not depend on the size.
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flow_export  # noqa: E402

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
os.makedirs(OUT, exist_ok=True)
N_SAMPLES = 20  # base -> sample pairs per fixture


# ---------------------------------------------------------------- data (standardized, float32)
def moons(n, rng):
    t = rng.uniform(0, math.pi, n)
    a = np.stack([np.cos(t), np.sin(t)], 1)
    b = np.stack([1 - np.cos(t), 1 - np.sin(t) - 0.5], 1)
    lab = rng.integers(0, 2, n)
    x = np.where(lab[:, None] == 0, a, b) + rng.normal(0, 0.05, (n, 2))
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def banana(n, d, rng):
    """x1 ~ N(0, 1), x_k = sin(2 x_{k-1}) + x_{k-1}^2 / 4 + N(0, 0.3^2)."""
    x = np.zeros((n, d))
    x[:, 0] = rng.normal(0, 1, n)
    for k in range(1, d):
        x[:, k] = np.sin(2 * x[:, k - 1]) + 0.25 * x[:, k - 1] ** 2 + rng.normal(0, 0.3, n)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32)


def conditional(n, d, c, rng):
    """x | y: mean and spread depend nonlinearly on a c-dimensional context y."""
    y = rng.uniform(-1, 1, (n, c))
    m = np.stack([np.sin(3 * y[:, k % c]) + y[:, (k + 1) % c] for k in range(d)], 1)
    s = 0.2 + 0.3 * np.abs(y[:, :1])
    x = m + s * rng.standard_t(4, (n, d))
    return x.astype(np.float32), y.astype(np.float32)


def path(name):
    return os.path.join(OUT, name + ".json")


def report(name):
    print("wrote %-40s %7.1f KB" % (path(name), os.path.getsize(path(name)) / 1024))


# ---------------------------------------------------------------- torch: zuko and nflows
import torch  # noqa: E402

torch.set_num_threads(2)


def fit_torch(log_prob, params, x, c, steps, seed, lr=1e-3):
    """Adam on mini-batches of 256 drawn with replacement."""
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x)
    ct = None if c is None else torch.from_numpy(c)
    for _ in range(steps):
        idx = torch.randint(0, len(xt), (256,), generator=g)
        loss = -log_prob(xt[idx], None if ct is None else ct[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def zuko_fixture(name, ctor, kwargs, x, c, steps, seed):
    import zuko

    torch.manual_seed(seed)
    flow = getattr(zuko.flows, ctor)(**kwargs)
    fit_torch(lambda a, b: flow(b).log_prob(a), flow.parameters(), x, c, steps, seed)
    flow_export.export_zuko(flow, ctor, kwargs, x, path(name), context=c, n_samples=N_SAMPLES, seed=seed + 1)
    report(name)


def nflows_maf_fixture(name, kwargs, x, steps, seed):
    from nflows import flows

    torch.manual_seed(seed)
    flow = flows.MaskedAutoregressiveFlow(**kwargs)
    fit_torch(lambda a, b: flow.log_prob(a), flow.parameters(), x, None, steps, seed)
    flow_export.export_nflows_maf(flow, kwargs, x, path(name), n_samples=N_SAMPLES, seed=seed + 1)
    report(name)


def nflows_rq_coupling_fixture(name, kwargs, x, steps, seed):
    """A RealNVP-like stack of rational-quadratic coupling transforms, as in the NSF paper's code."""
    from nflows import distributions, flows, transforms
    from nflows.nn.nets import ResidualNet

    torch.manual_seed(seed)
    d = x.shape[1]
    layers = []
    for i in range(kwargs["num_layers"]):
        mask = torch.tensor([(j + i) % 2 for j in range(d)], dtype=torch.float32) * 2 - 1
        layers.append(transforms.ReversePermutation(d))
        layers.append(transforms.PiecewiseRationalQuadraticCouplingTransform(
            mask=mask,
            transform_net_create_fn=lambda i_, o_: ResidualNet(
                i_, o_, hidden_features=kwargs["hidden_features"], num_blocks=kwargs["num_blocks"]),
            num_bins=kwargs["num_bins"], tails="linear", tail_bound=kwargs["tail_bound"]))
    flow = flows.Flow(transforms.CompositeTransform(layers), distributions.StandardNormal([d]))
    fit_torch(lambda a, b: flow.log_prob(a), flow.parameters(), x, None, steps, seed)
    ctor = ("nflows composite: per layer i [ReversePermutation, PiecewiseRationalQuadraticCouplingTransform("
            "mask=+1/-1 alternating starting ((j+i)%2)*2-1, ResidualNet, tails=linear)]")
    flow_export.export_nflows(flow, ctor, kwargs, x, path(name), bound=kwargs["tail_bound"],
                              n_samples=N_SAMPLES, seed=seed + 1)
    report(name)


# ---------------------------------------------------------------- JAX: FlowJAX (float64)
def flowjax_fixture(name, ctor, kwargs, transformer, transformer_kwargs, x, seed, edges=True, c=None):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from flowjax import bijections, flows
    from flowjax.distributions import Normal
    from flowjax.train import fit_to_data

    d = x.shape[1]
    # An activation is named (`"tanh"`), to be resolved after x64 is on.
    kwargs = {k: (getattr(jax.nn, v) if k == "nn_activation" else v) for k, v in kwargs.items()}
    tr = getattr(bijections, transformer)(**transformer_kwargs)
    flow = getattr(flows, ctor)(jax.random.key(seed), base_dist=Normal(jnp.zeros(d)), transformer=tr, **kwargs)
    xd = jnp.asarray(x, dtype=jnp.float64)
    data = xd if c is None else (xd, jnp.asarray(c, dtype=jnp.float64))
    flow, _ = fit_to_data(jax.random.key(seed + 7), flow, data, max_epochs=15, learning_rate=1e-3,
                          show_progress=False)
    flow_export.export_flowjax(flow, ctor, kwargs, transformer, transformer_kwargs, x, path(name),
                               n_samples=N_SAMPLES, seed=seed + 1, edges=edges, context=c)
    report(name)


rng = np.random.default_rng(0)
xm = moons(8000, rng)
xb4 = banana(8000, 4, rng)
xc, yc = conditional(8000, 3, 2, rng)
H = [16, 16]
zuko_fixture("zuko_maf_moons", "MAF", {"features": 2, "transforms": 3, "hidden_features": H}, xm, None, 600, 1)
zuko_fixture("zuko_nsf_moons", "NSF", {"features": 2, "transforms": 2, "bins": 8, "hidden_features": H},
             xm, None, 600, 2)
zuko_fixture("zuko_nsf_conditional", "NSF",
             {"features": 3, "context": 2, "transforms": 2, "bins": 8, "hidden_features": H}, xc, yc, 600, 3)
zuko_fixture("zuko_realnvp_banana4", "RealNVP", {"features": 4, "transforms": 4, "hidden_features": H},
             xb4, None, 600, 4)
nflows_maf_fixture("nflows_maf_banana4",
                   {"features": 4, "hidden_features": 16, "num_layers": 2, "num_blocks_per_layer": 2}, xb4, 600, 5)
nflows_rq_coupling_fixture("nflows_rqcoupling_moons",
                           {"num_layers": 2, "hidden_features": 16, "num_blocks": 2, "num_bins": 8, "tail_bound": 3.0},
                           xm, 600, 6)
flowjax_fixture("flowjax_maf_moons", "masked_autoregressive_flow", {"flow_layers": 4, "nn_width": 16},
                "Affine", {}, xm, 7)
flowjax_fixture("flowjax_rqcoupling_banana4", "coupling_flow", {"flow_layers": 2, "nn_width": 16},
                "RationalQuadraticSpline", {"knots": 8, "interval": 4}, xb4, 8)
# Appended last, so that the fixtures above keep their bytes: random orders (zuko's `randperm`).
zuko_fixture("zuko_maf_randperm_banana4", "MAF",
             {"features": 4, "transforms": 3, "hidden_features": H, "randperm": True}, xb4, None, 600, 9)
zuko_fixture("zuko_nsf_randperm_banana4", "NSF",
             {"features": 4, "transforms": 2, "bins": 8, "hidden_features": H, "randperm": True}, xb4, None, 600, 10)
# zuko's `passes=2`: MAF with two rank levels (coupling), conditional.
zuko_fixture("zuko_maf_passes2_conditional", "MAF",
             {"features": 3, "context": 2, "transforms": 3, "hidden_features": H, "passes": 2}, xc, yc, 600, 11)
# Other activations (zuko's `activation`, a torch.nn class).
zuko_fixture("zuko_nsf_elu_moons", "NSF",
             {"features": 2, "transforms": 2, "bins": 8, "hidden_features": H, "activation": torch.nn.ELU},
             xm, None, 600, 12)
zuko_fixture("zuko_realnvp_tanh_banana4", "RealNVP",
             {"features": 4, "transforms": 3, "hidden_features": H, "activation": torch.nn.Tanh}, xb4, None, 600, 13)
zuko_fixture("zuko_maf_silu_moons", "MAF",
             {"features": 2, "transforms": 3, "hidden_features": H, "activation": torch.nn.SiLU}, xm, None, 600, 14)
# FlowJAX's spline MAF (its tutorials' flow).
flowjax_fixture("flowjax_rqmaf_moons", "masked_autoregressive_flow", {"flow_layers": 3, "nn_width": 16},
                "RationalQuadraticSpline", {"knots": 8, "interval": 4}, xm, 15)
# invert=False: FlowJAX's inverse autoregressive flow (one pass to sample).
flowjax_fixture("flowjax_iaf_moons", "masked_autoregressive_flow", {"flow_layers": 3, "nn_width": 16, "invert": False},
                "Affine", {}, xm, 16, edges=False)
flowjax_fixture("flowjax_iaf_banana4", "masked_autoregressive_flow", {"flow_layers": 3, "nn_width": 16, "invert": False},
                "Affine", {}, xb4, 17, edges=False)
# FlowJAX's nn_activation.
flowjax_fixture("flowjax_maf_tanh_moons", "masked_autoregressive_flow",
                {"flow_layers": 3, "nn_width": 16, "nn_activation": "tanh"}, "Affine", {}, xm, 18)
# Conditional (cond_dim): MAF and spline coupling.
flowjax_fixture("flowjax_maf_conditional", "masked_autoregressive_flow", {"flow_layers": 3, "nn_width": 16, "cond_dim": 2},
                "Affine", {}, xc, 19, c=yc)
flowjax_fixture("flowjax_rqcoupling_conditional", "coupling_flow", {"flow_layers": 2, "nn_width": 16, "cond_dim": 2},
                "RationalQuadraticSpline", {"knots": 8, "interval": 4}, xc, 20, c=yc)
# Affine coupling (FlowJAX's RealNVP).
flowjax_fixture("flowjax_affinecoupling_banana4", "coupling_flow", {"flow_layers": 3, "nn_width": 16},
                "Affine", {}, xb4, 21)
# zuko's NICE with random coupling masks (`randmask`), conditional.
zuko_fixture("zuko_nice_randmask_conditional", "NICE",
             {"features": 3, "context": 2, "transforms": 3, "hidden_features": H, "randmask": True}, xc, yc, 600, 22)
