#!/usr/bin/env bash
# Training speed per Adam step, one run: `flow-train fit` (one thread and all cores) beside
# FlowJAX's jitted step and zuko's PyTorch step (one thread), MAF / NSF (8 bins) / RealNVP,
# 5 transforms × 64×64, moons with 10 000 rows, batch 256.
#
# usage: bench/train_speed.sh [EPOCHS]   (PY=<venv>/bin/python as for bench/train.sh)
# Ours: the `seconds` `fit` reports over EPOCHS epochs (default 5; validation after every epoch
# included) divided by the number of steps (ceil(9 000 / 256) per epoch, `--min-batches 0`).
# Peers: python/peers/step_time.py (median of 5 rounds of 50 steps after a warm-up).
# Also prints the peak resident memory of fitting 1 000 000 rows of 4 columns for one epoch.
set -euo pipefail
cd "$(dirname "$0")/.."
E=${1:-5}
PY=${PY:-$HOME/.cache/flow-peers/bin/python}
out=target/bench/train_speed
mkdir -p "$out"
cargo build --release -q -p flow-train
ft="${CARGO_TARGET_DIR:-target}/release/flow-train"
"$ft" data moons --n 10000 --seed 1 -o "$out/moons.csv" > /dev/null
steps=$((E * (9000 + 255) / 256))
ms() { # flow threads -> ms per step
  local s
  s=$("$ft" fit "$out/moons.csv" -o "$out/m.flow" --flow "$1" --epochs "$E" --threads "$2" \
    --batch-size 256 --min-batches 0 --patience 1000 --quiet | sed -E 's/.*seconds=([^ ]+).*/\1/')
  echo "$s * 1000 / $steps" | bc -l | xargs printf '%.2f'
}
peer() { # lib flow -> ms per step
  if [ -x "$PY" ]; then
    "$PY" python/peers/step_time.py "$1" "$2" "$out/moons.csv" 256 50 2> /dev/null |
      sed -nE 's/ms_per_step=([^ ]+)/\1/p' | xargs printf '%.2f'
  else echo "-"; fi
}
printf '| ms per step, batch 256 | ours, 1 thread | ours, %s threads | FlowJAX (jit), 1 thread | zuko, 1 thread | ours / FlowJAX |\n|---|---|---|---|---|---|\n' "$(nproc)"
for flow in maf nsf realnvp; do
  o1=$(ms "$flow" 1); on=$(ms "$flow" 0); j=$(peer flowjax "$flow"); z=$(peer zuko "$flow")
  r=$(awk -v o="$o1" -v j="$j" 'BEGIN { if (j + 0 > 0) printf "%.2f", o / j; else print "-" }')
  printf '| %s | %s | %s | %s | %s | %s |\n' "$flow" "$o1" "$on" "$j" "$z" "$r"
done
# Memory: 1 000 000 rows × 4 columns, one epoch.
awk 'BEGIN { srand(1); print "a,b,c,d"; for (i = 0; i < 1000000; i++) printf "%.6f,%.6f,%.6f,%.6f\n", rand(), rand(), rand(), rand() }' > "$out/rows4.csv"
rss=$( { /usr/bin/time -v "$ft" fit "$out/rows4.csv" -o "$out/r.flow" --epochs 1 --quiet > /dev/null; } 2>&1 |
  sed -nE 's/.*Maximum resident set size \(kbytes\): ([0-9]+)/\1/p')
echo
echo "peak RSS, fit of 1 000 000 rows × 4 columns (32 MB of f64), 1 epoch: $((rss / 1024)) MiB"
