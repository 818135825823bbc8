"""zuko's reverse-KL fit of the 2-D lattice phi^4 theory, for `bench/reverse_kl.sh`.

usage: phi4_reverse_kl.py SECONDS [L] [M2] [LAMBDA] [TRANSFORMS] [BATCH] [LR]

The flow is `flow-train fit-target phi4`'s default: TRANSFORMS (16) affine coupling layers with
checkerboard masks (site (r, c) conditions the layer when (r + c) % 2 == k % 2), 64x64 ReLU
conditioners and zuko's soft-clipped affine scale, over a standard normal; Adam at LR (1e-3),
cosine-annealed over the steps that fit in SECONDS, batch BATCH (256), one thread. The loss is
the batch mean of log q(x) - log p*(x) with x = T(u) (`rsample_and_log_prob`). Prints
`ms_per_step=... steps=... ess=... kl=...`, ESS/N and kl from 10 000 fresh draws after training.
"""
import math
import os
import sys
import time

for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = "1"
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})

import torch  # noqa: E402
import zuko  # noqa: E402

torch.set_num_threads(1)
torch.manual_seed(0)
seconds = float(sys.argv[1])
L = int(sys.argv[2]) if len(sys.argv) > 2 else 8
m2 = float(sys.argv[3]) if len(sys.argv) > 3 else -4.0
lam = float(sys.argv[4]) if len(sys.argv) > 4 else 8.0
transforms = int(sys.argv[5]) if len(sys.argv) > 5 else 16
batch = int(sys.argv[6]) if len(sys.argv) > 6 else 256
lr = float(sys.argv[7]) if len(sys.argv) > 7 else 1e-3
D = L * L


def action(phi):
    """S = sum_x [-2 sum_mu phi_x phi_{x+mu} + (4 + m2) phi_x^2 + lam phi_x^4], periodic."""
    p = phi.view(-1, L, L)
    hop = p * (torch.roll(p, -1, 1) + torch.roll(p, -1, 2))
    return (-2.0 * hop + (4.0 + m2) * p**2 + lam * p**4).sum((1, 2))


r, c = torch.meshgrid(torch.arange(L), torch.arange(L), indexing="ij")
parity = ((r + c) % 2).flatten()
layers = []
for k in range(transforms):
    mask = parity == (k % 2)
    layers.append(
        zuko.flows.GeneralCouplingTransform(
            D, mask=mask, hidden_features=[64, 64], activation=torch.nn.ReLU
        )
    )
flow = zuko.flows.Flow(
    layers, zuko.flows.UnconditionalDistribution(zuko.distributions.DiagNormal, torch.zeros(D), torch.ones(D), buffer=True)
)
opt = torch.optim.Adam(flow.parameters(), lr=lr)


def step():
    x, log_q = flow().rsample_and_log_prob((batch,))
    loss = (log_q + action(x)).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()


# Time a few steps first to plan the cosine schedule over the budget.
t0 = time.perf_counter()
for _ in range(5):
    step()
per = (time.perf_counter() - t0) / 5
total = max(int(seconds / per), 1)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
t0 = time.perf_counter()
steps = 0
while steps < total:
    step()
    sched.step()
    steps += 1
elapsed = time.perf_counter() - t0
with torch.no_grad():
    x, log_q = flow().rsample_and_log_prob((10000,))
    log_w = -action(x) - log_q
    w = torch.exp(log_w - log_w.max())
    ess = float(w.sum() ** 2 / (w**2).sum() / len(w))
    kl = float(-log_w.mean())
print(f"ms_per_step={1000 * elapsed / steps:.3f} steps={steps} ess={ess:.5f} kl={kl:.4f}")
