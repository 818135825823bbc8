#!/usr/bin/env bash
# Makes a Python virtual environment with the peer flow libraries (zuko, nflows, FlowJAX, normflows),
# for the benchmarks that run them beside ours (bench/train_vs_zuko.sh, examples/bench_speed.rs) and
# for python/make_fixtures.py. About 3 minutes and a few GB (PyTorch brings CUDA wheels, unused).
# usage: python/peers/setup.sh [VENV_DIR]   (default: $HOME/.cache/flow-peers)
set -euo pipefail
V=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/flow-peers}
python3 -m venv "$V"
"$V/bin/pip" install -q torch "zuko==1.6.0" "nflows==0.14" "jax[cpu]" "flowjax==19.1.2" "normflows==1.7.3" numpy scikit-learn
"$V/bin/python" -c "import torch, zuko, flowjax, normflows; print('peers ready: torch', torch.__version__, 'zuko', zuko.__version__, 'flowjax', flowjax.__version__)"
