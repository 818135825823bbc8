"""Milliseconds per Adam step of a peer library's maximum-likelihood training, one thread.

usage: step_time.py LIB(zuko|flowjax) FLOW(maf|nsf|realnvp) TRAIN.csv [BATCH] [STEPS]

The flow is 5 transforms with 64x64 ReLU conditioners (NSF: 8 bins), as `flow-train fit`'s
defaults; the data are standardized. FlowJAX's step is its own `flowjax.train.step` under
`eqx.filter_jit` (what `fit_to_data` runs), zuko's the usual PyTorch loop (forward, backward,
`Adam.step`). The first steps (compilation, warm-up) are not timed; the figure is the median of
5 rounds of STEPS steps. Prints `ms_per_step=...`."""
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import numpy as np  # noqa: E402

lib, kind, path = sys.argv[1:4]
batch = int(sys.argv[4]) if len(sys.argv) > 4 else 256
steps = int(sys.argv[5]) if len(sys.argv) > 5 else 50
x = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
D = x.shape[1]
rng = np.random.default_rng(0)
batches = [x[rng.integers(0, len(x), batch)] for _ in range(steps)]


def rounds(step):
    for b in batches[:5]:
        step(b)  # compile / warm up
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for b in batches:
            step(b)
        times.append((time.perf_counter() - t0) / steps)
    return sorted(times)[2]


if lib == "zuko":
    import torch
    import zuko

    torch.set_num_threads(1)
    flow = {"maf": lambda: zuko.flows.MAF(D, transforms=5, hidden_features=[64, 64]),
            "nsf": lambda: zuko.flows.NSF(D, transforms=5, bins=8, hidden_features=[64, 64]),
            "realnvp": lambda: zuko.flows.RealNVP(D, transforms=5, hidden_features=[64, 64])}[kind]()
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)

    def step(b):
        loss = -flow().log_prob(torch.from_numpy(b)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    sec = rounds(step)
else:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import optax
    import paramax
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow, masked_autoregressive_flow
    from flowjax.train.losses import MaximumLikelihoodLoss
    from flowjax.train.train_utils import step as fj_step

    key = jr.key(0)
    kw = dict(base_dist=Normal(jnp.zeros(D)), flow_layers=5, nn_width=64, nn_depth=2)
    if kind == "maf":
        flow = masked_autoregressive_flow(key, **kw)
    elif kind == "nsf":
        flow = masked_autoregressive_flow(key, transformer=RationalQuadraticSpline(knots=7, interval=5), **kw)
    else:
        flow = coupling_flow(key, **kw)
    params, static = eqx.partition(flow, eqx.is_inexact_array,
                                   is_leaf=lambda leaf: isinstance(leaf, paramax.NonTrainable))
    opt = optax.adam(5e-4)
    state = {"p": params, "o": opt.init(params)}
    loss_fn = MaximumLikelihoodLoss()

    def step(b):
        p, o, loss = fj_step(state["p"], static, jnp.asarray(b), optimizer=opt,
                             opt_state=state["o"], loss_fn=loss_fn, key=key)
        jax.block_until_ready(loss)
        state["p"], state["o"] = p, o

    sec = rounds(step)
print("ms_per_step=%.4f" % (sec * 1e3))
