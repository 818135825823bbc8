#!/usr/bin/env bash
# The speed report in one command: baked flows vs the runtime evaluator vs zuko and
# FlowJAX, single-sample latency, batch-10 000 throughput (one thread, all cores) and GFLOP/s next
# to the single-core FMA peak measured in the same run.
#
# The default build (what a user gets: the kernels pick AVX2 or AVX-512 at run time), then the
# same built for this CPU (`-C target-cpu=native`, in its own target directory so that the normal
# builds are not invalidated). Pass `--no-peers` to skip the Python libraries, `--quick` for fewer
# repetitions; `NATIVE=0` skips the second build.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== default build (cargo build --release)"
cargo run --release -q --example bench_speed -- "$@"
if [ "${NATIVE:-1}" = 1 ]; then
  echo
  echo "== RUSTFLAGS=\"-C target-cpu=native\""
  CARGO_TARGET_DIR=target/bench-native RUSTFLAGS="-C target-cpu=native" \
    cargo run --release -q --example bench_speed -- "$@"
fi
