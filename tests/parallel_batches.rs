//! The multi-core batch methods (`Flow::par_*`, flow-core's `rayon` feature) give the same bits as
//! the single-sample methods of the baked model, row for row, including a tail shorter than a
//! thread's chunk.

use flow_core::baked::BakedFlow;

/// A conditional flow: MAF and spline layers with a context.
#[flow_macros::flow("flow-macros/tests/models/cond_mixed.flow")]
struct Cond;

/// Rows `n × d` of deterministic points in [−2.5, 2.5).
fn points(n: usize, d: usize) -> Vec<f32> {
    let mut s = 0x9E37_79B9u32;
    (0..n * d)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 * 5.0 - 2.5
        })
        .collect()
}

#[test]
fn parallel_batches_equal_single_samples() {
    const D: usize = Cond::DIM;
    let ctx = [0.3f32; Cond::CONTEXT_DIM];
    // More than two chunks of `PAR_CHUNK` rows, and a ragged tail.
    let n = 2 * flow_core::flow::PAR_CHUNK + 37;
    let xs = points(n, D);
    let flow = Cond.flow();

    let mut lp = vec![0.0f32; n];
    flow.par_log_prob_batch(&xs, &ctx, &mut lp);
    let mut samples = vec![0.0f32; n * D];
    flow.par_sample_batch(&xs, &ctx, &mut samples);
    let (mut grads, mut lp_g) = (vec![0.0f32; n * D], vec![0.0f32; n]);
    flow.par_grad_log_prob_batch(&xs, &ctx, &mut grads, &mut lp_g);

    for (k, x) in xs.chunks_exact(D).enumerate() {
        let x: &[f32; D] = x.try_into().unwrap();
        let want = Cond::log_prob(x, &ctx);
        assert_eq!(lp[k].to_bits(), want.to_bits(), "par_log_prob_batch row {k}");
        assert_eq!(
            lp_g[k].to_bits(),
            want.to_bits(),
            "par_grad_log_prob_batch log p row {k}"
        );
        let s = Cond::sample(x, &ctx);
        assert_eq!(&samples[k * D..(k + 1) * D], &s[..], "par_sample_batch row {k}");
        let g = Cond::grad_log_prob(x, &ctx);
        let got = &grads[k * D..(k + 1) * D];
        assert!(
            got.iter().zip(&g).all(|(a, b)| a.to_bits() == b.to_bits()),
            "par_grad_log_prob_batch row {k}: {got:?} vs {g:?}"
        );
    }
    assert!(lp.iter().filter(|v| v.is_finite()).count() > n / 2);
}
