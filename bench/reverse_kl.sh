#!/usr/bin/env bash
# Reverse-KL training on the 2-D lattice phi^4 theory (8 x 8, m2 = -4, lambda = 8), one run:
# `flow-train fit-target phi4` beside zuko (python/peers/phi4_reverse_kl.py), the same flow
# (16 affine couplings with checkerboard masks, 64x64 ReLU conditioners, zuko's soft-clipped
# scale), Adam 1e-3 cosine, batch 256, equal wall time SECONDS, one thread each (pinned to one
# core), then ours on all cores.
#
# usage: bench/reverse_kl.sh [SECONDS]   (default 60; PY=<venv>/bin/python, see python/peers/setup.sh)
# Prints a table: ms per step, steps in the budget, ESS/N and E_q[log q - log p*] of 10 000
# fresh draws after training (higher ESS and lower KL are better).
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-60}
PY=${PY:-$HOME/.cache/flow-peers/bin/python}
out=target/bench/reverse_kl
mkdir -p "$out"
cargo build --release -q -p flow-train
ft="${CARGO_TARGET_DIR:-target}/release/flow-train"
field() { sed -nE "s/.*$1=([^ ]+).*/\1/p"; }
ours() { # threads cpus -> "ms steps ess kl"
  local probe ms steps line
  # Time 200 steps to size the budget, then fit for T seconds' worth of steps.
  probe=$(taskset -c "$2" "$ft" fit-target phi4 -o "$out/probe.flow" --transforms 16 --steps 200 \
    --threads "$1" --eval-samples 2 --quiet | field seconds)
  steps=$(awk -v t="$T" -v p="$probe" 'BEGIN { printf "%d", t / (p / 200) }')
  line=$(taskset -c "$2" "$ft" fit-target phi4 -o "$out/phi4.flow" --transforms 16 --steps "$steps" \
    --threads "$1" --quiet)
  ms=$(awk -v s="$(echo "$line" | field seconds)" -v n="$steps" 'BEGIN { printf "%.2f", 1000 * s / n }')
  echo "$ms $steps $(echo "$line" | field 'ess' | xargs printf '%.4f') $(echo "$line" | field kl | xargs printf '%.3f')"
}
printf '| phi4 8x8, %s s each | ms per step | steps | ESS/N | E_q[log q - log p*] |\n|---|---|---|---|---|\n' "$T"
read -r ms steps ess kl <<< "$(ours 1 0)"
printf '| ours, 1 thread | %s | %s | %s | %s |\n' "$ms" "$steps" "$ess" "$kl"
ours_ms=$ms
read -r ms steps ess kl <<< "$(ours 0 "0-$(($(nproc) - 1))")"
printf '| ours, %s threads | %s | %s | %s | %s |\n' "$(nproc)" "$ms" "$steps" "$ess" "$kl"
if [ -x "$PY" ]; then
  line=$("$PY" python/peers/phi4_reverse_kl.py "$T" 2> /dev/null)
  zms=$(echo "$line" | field ms_per_step)
  printf '| zuko, 1 thread | %s | %s | %s | %s |\n' "$zms" "$(echo "$line" | field steps)" \
    "$(echo "$line" | field ess)" "$(echo "$line" | field kl)"
  echo
  awk -v o="$ours_ms" -v z="$zms" 'BEGIN { printf "time per step, ours / zuko (1 thread each): %.2f\n", o / z }'
else
  echo "(no peer environment at $PY: run python/peers/setup.sh)"
fi
