//! Micro-benchmark of the batch dense kernel `flow_core::nn::dense::dense_soa`: one 64 × 64 layer
//! against a block of samples (`flow_core::block::BLOCK`) in structure-of-arrays form, best of 5 timings, in GFLOP/s (2 flops per
//! weight and sample). Build it like the speed report: `RUSTFLAGS="-C target-cpu=native" cargo
//! run --release --example soa_kernel`.

use flow_core::nn::dense::dense_soa;
use std::hint::black_box;
use std::time::Instant;

/// Samples per call: the batch block.
const NB: usize = flow_core::block::BLOCK;

/// Times `dense_soa` for one `m × k` layer (with `kc` context inputs) and prints GFLOP/s.
fn run(m: usize, k: usize, kc: usize) {
    let n_in = k + kc;
    let mut seed = 1u32;
    let mut next = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let w: Vec<f32> = (0..m * n_in).map(|_| next()).collect();
    let b: Vec<f32> = (0..m).map(|_| next()).collect();
    let x: Vec<[f32; NB]> = (0..k).map(|_| core::array::from_fn(|_| next())).collect();
    let c: Vec<[f32; NB]> = (0..kc).map(|_| core::array::from_fn(|_| next())).collect();
    let mut out = vec![[0.0f32; NB]; m];
    let calls = 200_000_000 / (m * n_in * NB);
    let mut best = f64::INFINITY;
    let mut check = 0u32;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..calls {
            dense_soa(
                black_box(&w),
                black_box(&b),
                black_box(&x),
                black_box(&c),
                &mut out,
            );
            black_box(&mut out);
        }
        best = best.min(t.elapsed().as_secs_f64());
        check = out
            .iter()
            .flatten()
            .fold(0u32, |h, v| h.rotate_left(5) ^ v.to_bits());
    }
    let gflops = 2.0 * (m * n_in * NB * calls) as f64 / best / 1e9;
    println!("{m:>4} x {k:>3} + {kc:>2} ctx: {gflops:6.1} GFLOP/s   (output hash {check:08x})");
}

fn main() {
    run(64, 64, 0);
    run(64, 2, 0);
    run(64, 64, 3);
    run(128, 128, 0);
    run(4, 64, 0);
}
