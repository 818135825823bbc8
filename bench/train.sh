#!/usr/bin/env bash
# Fit quality at every budget: flow-train's defaults vs zuko and FlowJAX with theirs, one run.
#
# usage: bench/train.sh [--quick] [--seeds "0 1 2"] [--ours-only] [-- EXTRA fit ARGS]
#   PY=<venv>/bin/python (default $HOME/.cache/flow-peers/bin/python, made by python/peers/setup.sh);
#   without it only our rows are printed.
#
# Cells: moons and checkerboard (`flow-train data`), 1 000 and 10 000 training rows, a fresh test
# set of 5 000 rows, budgets of 10 / 30 / 100 epochs, MAF, NSF (8 bins) and RealNVP, 5 transforms
# × 64×64; plus wine (13-D) and breast_cancer (30-D) from python/peers/datasets.py (train split;
# test split) at 100 epochs when the venv exists.
# Each cell: mean ± std of the test NLL (nats, raw units) over the seeds. `ours ≤ best` compares
# our mean with the best peer's; a seed of ours more than 1 nat above the best peer's mean, or a
# failed fit, is marked `diverged`. --quick: 1 000 rows, 10 and 30 epochs (a few minutes);
# SIZES="..." and BUDGETS="..." override the rows and epochs.
# Peers: python/peers/fit_peer.py (its docstring says which settings each library uses).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=0; seeds="0 1 2"; peers=1; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --seeds) seeds=$2; shift ;;
    --ours-only) peers=0 ;;
    --) shift; extra=("$@"); break ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
PY=${PY:-$HOME/.cache/flow-peers/bin/python}
[ -x "$PY" ] || peers=0
T=$(nproc)
out=target/bench/train
mkdir -p "$out"
cargo build --release -q -p flow-train
ft="${CARGO_TARGET_DIR:-target}/release/flow-train"

if [ $quick = 1 ]; then sizes="1000"; budgets="10 30"; else sizes="1000 10000"; budgets="10 30 100"; fi
sizes=${SIZES:-$sizes}; budgets=${BUDGETS:-$budgets}

# stats NLL... -> "mean ± std" (sample std; "-" without values)
stats() { echo "$@" | awk '{ if (NF == 0) { print "-"; exit } s = 0; for (i = 1; i <= NF; i++) s += $i; m = s / NF;
  v = 0; for (i = 1; i <= NF; i++) v += ($i - m) ^ 2; sd = NF > 1 ? sqrt(v / (NF - 1)) : 0;
  printf "%.3f ± %.3f", m, sd }'; }
mean() { echo "$@" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; if (NF) printf "%.6f", s / NF }'; }

ours_nll() { # train test flow epochs seed -> NLL or "fail"
  local m="$out/ours.flow"
  if "$ft" fit "$1" -o "$m" --flow "$3" --epochs "$4" --seed "$5" --quiet "${extra[@]}" > /dev/null 2>&1; then
    "$ft" eval "$m" "$2" | tail -1 | sed -E 's/mean_log_prob=([^ ]+).*/\1/' | awk '{ printf "%.5f", -$1 }'
  else echo fail; fi
}
peer_nll() { # lib train test flow epochs seed
  "$PY" python/peers/fit_peer.py "$1" "$4" "$2" "$3" "$5" "$6" "$T" 2> /dev/null | tail -1 |
    sed -nE 's/.*test_nll=([^ ]+).*/\1/p'
}

printf '| data | rows | epochs | flow | ours | zuko | FlowJAX | ours ≤ best peer |\n|---|---|---|---|---|---|---|---|\n'
cell() { # set rows epochs flow train test
  local o="" z="" j="" bad=""
  for s in $seeds; do
    v=$(ours_nll "$5" "$6" "$4" "$3" "$s")
    if [ "$v" = fail ]; then bad=" (seed $s failed)"; else o="$o $v"; fi
    if [ $peers = 1 ]; then z="$z $(peer_nll zuko "$5" "$6" "$4" "$3" "$s")"; j="$j $(peer_nll flowjax "$5" "$6" "$4" "$3" "$s")"; fi
  done
  local verdict="-"
  if [ $peers = 1 ]; then
    best=$(printf '%s\n%s\n' "$(mean $z)" "$(mean $j)" | grep . | sort -g | head -1)
    verdict=$(awk -v m="$(mean $o)" -v b="$best" 'BEGIN { print (m <= b ? "yes" : "no") }')
    for v in $o; do
      if awk -v v="$v" -v b="$best" 'BEGIN { exit !(v > b + 1) }'; then bad=" (diverged: $v)"; fi
    done
  fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s%s |\n' "$1" "$2" "$3" "$4" "$(stats $o)" "$(stats $z)" "$(stats $j)" "$verdict" "$bad"
}

for set_ in moons checkerboard; do
  "$ft" data "$set_" --n 5000 --seed 999 -o "$out/${set_}_test.csv" > /dev/null
  for n in $sizes; do
    "$ft" data "$set_" --n "$n" --seed 1 -o "$out/${set_}_$n.csv" > /dev/null
    for e in $budgets; do
      for flow in maf nsf realnvp; do
        cell "$set_" "$n" "$e" "$flow" "$out/${set_}_$n.csv" "$out/${set_}_test.csv"
      done
    done
  done
done
if [ $quick = 0 ] && [ $peers = 1 ]; then
  [ -f "$out/tab/breast_cancer_train.csv" ] || "$PY" python/peers/datasets.py --out "$out/tab" > /dev/null
  for t in "wine 107" "breast_cancer 341"; do
    set -- $t
    for flow in maf nsf realnvp; do
      cell "$1" "$2" 100 "$flow" "$out/tab/$1_train.csv" "$out/tab/$1_test.csv"
    done
  done
fi
