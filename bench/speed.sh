#!/usr/bin/env bash
# The speed report in one command: baked flows vs the runtime evaluator vs zuko and
# FlowJAX, single-sample latency, batch-10 000 throughput (one thread, all cores) and GFLOP/s next
# to the single-core FMA peak measured in the same run.
#
# Built for this CPU (`-C target-cpu=native`) with fused multiply-adds (`--features fma`), in its
# own target directory so that the normal builds are not invalidated. Pass `--no-peers` to skip
# the Python libraries, `--quick` for fewer repetitions. `FMA=0 bench/speed.sh` measures the
# default build instead (separate multiply and add, as on a Cortex-M).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${FMA:-1}" = 1 ]; then
  export CARGO_TARGET_DIR=target/bench-native RUSTFLAGS="-C target-cpu=native"
  exec cargo run --release -q --features fma --example bench_speed -- "$@"
else
  exec cargo run --release -q --example bench_speed -- "$@"
fi
