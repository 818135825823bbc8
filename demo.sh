#!/usr/bin/env bash
# The main job, end to end: make a built-in data set, fit a flow, evaluate it, sample it, check its
# golden vectors, then bake it into fixed-size code with flow-macros and evaluate the baked code.
# Outputs go to target/demo/. DEMO_EPOCHS (default 60) and DEMO_FLOW (default maf) shorten or change it.
set -euo pipefail
cd "$(dirname "$0")"
out=target/demo
mkdir -p "$out"
epochs=${DEMO_EPOCHS:-60}
flow=${DEMO_FLOW:-maf}
cargo build --release -q -p flow-train
ft="${CARGO_TARGET_DIR:-target}/release/flow-train"

$ft data moons --n 12000 --seed 1 -o "$out/moons.csv"
$ft data moons --n 5000 --seed 2 -o "$out/moons_test.csv"
$ft fit "$out/moons.csv" -o "$out/moons.flow" --flow "$flow" --epochs "$epochs" --seed 0
$ft eval "$out/moons.flow" "$out/moons_test.csv" -o "$out/moons_test_logp.csv"
$ft sample "$out/moons.flow" -n 2000 --seed 3 -o "$out/moons_samples.csv"
$ft inspect "$out/moons.flow"
$ft verify "$out/moons.flow"
if [ -d examples/bake-demo ]; then
  cp "$out/moons.flow" examples/bake-demo/model.flow
  (cd examples/bake-demo && cargo run --release -q -- "../../$out/moons_test.csv")
fi
if $ft help plot >/dev/null 2>&1; then
  $ft plot "$out/moons.flow" --data "$out/moons.csv" -o "$out/moons.png"
fi
echo "demo outputs in $out/"
