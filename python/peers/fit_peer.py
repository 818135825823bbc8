"""Fit a peer library on a CSV with its documented defaults; print the test NLL in raw units.

usage: fit_peer.py LIB(zuko|flowjax) FLOW(maf|nsf|realnvp) TRAIN.csv TEST.csv EPOCHS SEED [THREADS]

Same architecture as `flow-train fit`'s defaults: 5 transforms, conditioners 64x64 ReLU, NSF with
8 bins. Both libraries see the data standardized with the training split's mean/std (the NLL is
corrected back to raw units), as their tutorials do.
- zuko (its README/tutorial loop): Adam lr 1e-3 constant, batch 256, 10% validation split, the
  weights of the best validation epoch; `zuko.flows.MAF/NSF/RealNVP(D, transforms=5,
  hidden_features=[64, 64])`, NSF `bins=8`.
- FlowJAX: `flowjax.train.fit_to_data` with its defaults (Adam lr 5e-4, batch 100, val_prop 0.1,
  max_patience 5, best weights) and `max_epochs=EPOCHS`; `masked_autoregressive_flow` (Affine, or
  `RationalQuadraticSpline(knots=7, interval=5)`: 8 bins) and `coupling_flow`, `nn_width=64, nn_depth=2,
  flow_layers=5`, base `Normal(zeros(D))` (trainable, as in its examples).
Prints one line: `test_nll=... seconds=... epochs=...`."""
import os
import sys
import time

lib, kind, tr, te, E, seed = sys.argv[1:7]
threads = int(sys.argv[7]) if len(sys.argv) > 7 else 1
E, seed = int(E), int(seed)
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(threads)
if threads == 1:
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

x = np.loadtxt(tr, delimiter=",", skiprows=1, ndmin=2)
t = np.loadtxt(te, delimiter=",", skiprows=1, ndmin=2)
mu, sd = x.mean(0), x.std(0) + 1e-12
D = x.shape[1]
log_sd = float(np.log(sd).sum())


def zuko_fit():
    import torch
    import zuko

    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(x))
    nv = max(1, len(x) // 10)
    f = lambda a: torch.tensor((a - mu) / sd, dtype=torch.float32)  # noqa: E731
    xv, xt, xte = f(x[perm[:nv]]), f(x[perm[nv:]]), f(t)
    torch.manual_seed(seed)
    flow = {"maf": lambda: zuko.flows.MAF(D, transforms=5, hidden_features=[64, 64]),
            "nsf": lambda: zuko.flows.NSF(D, transforms=5, bins=8, hidden_features=[64, 64]),
            "realnvp": lambda: zuko.flows.RealNVP(D, transforms=5, hidden_features=[64, 64])}[kind]()
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    best, state = float("inf"), None
    for _ in range(E):
        idx = torch.randperm(len(xt))
        for i in range(0, len(idx), 256):
            loss = -flow().log_prob(xt[idx[i:i + 256]]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            v = -flow().log_prob(xv).mean().item()
        if v < best:
            best, state = v, {k: a.clone() for k, a in flow.state_dict().items()}
    flow.load_state_dict(state)
    with torch.no_grad():
        return -flow().log_prob(xte).double().mean().item(), E


def flowjax_fit():
    import jax.numpy as jnp
    import jax.random as jr
    from flowjax.bijections import RationalQuadraticSpline
    from flowjax.distributions import Normal
    from flowjax.flows import coupling_flow, masked_autoregressive_flow
    from flowjax.train import fit_to_data

    key, sub = jr.split(jr.key(seed))
    kw = dict(base_dist=Normal(jnp.zeros(D)), flow_layers=5, nn_width=64, nn_depth=2)
    if kind == "maf":
        flow = masked_autoregressive_flow(sub, **kw)
    elif kind == "nsf":
        tr_ = RationalQuadraticSpline(knots=7, interval=5)  # inner knots: 8 bins
        flow = masked_autoregressive_flow(sub, transformer=tr_, **kw)
    else:
        flow = coupling_flow(sub, **kw)
    xs = jnp.asarray((x - mu) / sd, dtype=jnp.float32)
    flow, losses = fit_to_data(key, flow, xs, max_epochs=E, show_progress=False)
    lp = flow.log_prob(jnp.asarray((t - mu) / sd, dtype=jnp.float32))
    return -float(np.asarray(lp, dtype=np.float64).mean()), len(losses["train"])


t0 = time.time()
nll, epochs = {"zuko": zuko_fit, "flowjax": flowjax_fit}[lib]()
print("test_nll=%.5f seconds=%.3f epochs=%d" % (nll + log_sd, time.time() - t0, epochs))
