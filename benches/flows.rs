//! Criterion benchmarks of the baked bench models (the models of `bench/speed.sh`): single-sample
//! `log_prob`, and batches of 10 000 through `log_prob_batch`, `sample_batch` and
//! `grad_log_prob_batch`, one thread. `cargo bench --bench flows` (add
//! `RUSTFLAGS="-C target-cpu=native"` for the second half of the speed report).
//! Throughput is reported in samples per second.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use flow_core::baked::BakedFlow;
use flow_macros::flow;

#[flow("flow-macros/tests/models/moons_maf.flow", verify = false)]
struct MafMoons;
#[flow("flow-macros/tests/models/bench_nsf.flow", verify = false)]
struct NsfMoons;
#[flow("flow-macros/tests/models/bench_realnvp8.flow", verify = false)]
struct RealNvp8;
#[flow("flow-macros/tests/models/bench_maf16.flow", verify = false)]
struct Maf16;

/// Rows of a batch.
const N: usize = 10_000;

/// `n × d` deterministic points in [−2, 2).
fn points(n: usize, d: usize) -> Vec<f32> {
    let mut s = 0x2545_f491u64;
    (0..n * d)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
        })
        .collect()
}

/// The four measurements of one model.
fn model<F: BakedFlow<f32>>(c: &mut Criterion, name: &str, flow: &F) {
    let d = F::DIM;
    let xs = points(N, d);
    let ctx: [f32; 0] = [];
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function("log_prob/1", |b| {
        let mut k = 0;
        b.iter(|| {
            k = (k + 1) % N;
            flow.log_prob(black_box(&xs[k * d..(k + 1) * d]), &ctx).unwrap()
        })
    });
    group.throughput(Throughput::Elements(N as u64));
    let mut out = vec![0.0f32; N];
    let mut ys = vec![0.0f32; N * d];
    group.bench_function(BenchmarkId::new("log_prob_batch", N), |b| {
        b.iter(|| flow.log_prob_batch(black_box(&xs), &ctx, &mut out).unwrap())
    });
    group.bench_function(BenchmarkId::new("sample_batch", N), |b| {
        b.iter(|| flow.sample_batch(black_box(&xs), &ctx, &mut ys).unwrap())
    });
    group.bench_function(BenchmarkId::new("grad_log_prob_batch", N), |b| {
        b.iter(|| {
            flow.grad_log_prob_batch(black_box(&xs), &ctx, &mut ys, &mut out)
                .unwrap()
        })
    });
    group.finish();
}

fn flows(c: &mut Criterion) {
    model(c, "maf_5x64x64_d2", &MafMoons);
    model(c, "nsf_5x8x64x64_d2", &NsfMoons);
    model(c, "realnvp_5x64x64_d8", &RealNvp8);
    model(c, "maf_5x64x64_d16", &Maf16);
}

criterion_group!(benches, flows);
criterion_main!(benches);
