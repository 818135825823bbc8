//! Training's block gradients (`Flow::grad_block`) are the per-sample gradients added sample after
//! sample, bit for bit, for every flow family `fit` builds (with its standardization layers and
//! base), with and without a context.

use flow_core::block;
use flow_core::runtime::flow_of;
use flow_train::arch::{build, ArchConfig, FlowKind};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const N: usize = 7;

fn check(kind: FlowKind, d: usize, c: usize, hidden: &[usize]) {
    let cfg = ArchConfig {
        flow: kind,
        transforms: 3,
        hidden: hidden.to_vec(),
        ..ArchConfig::default()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (mean, std) = (vec![0.3; d], vec![1.7; d]);
    let (c_mean, c_std) = (vec![-0.4; c], vec![2.3; c]);
    let context = Some((&c_mean[..], &c_std[..])).filter(|_| c > 0);
    let model = build(&cfg, d, c, Some((&mean[..], &std[..])), context, &mut rng).expect("build");
    let parts = &model.parts;
    // Weights as trained for a while: the last layers are no longer near zero.
    let mut lcg = 0x2545_f491_u64;
    let mut next = || {
        lcg = lcg
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((lcg >> 40) as f64 / (1u64 << 24) as f64 - 0.5) * 0.6
    };
    let w: Vec<f32> = (parts.weights.iter().zip(&model.trainable))
        .map(|(&v, &t)| if t { (v + next()) as f32 } else { v as f32 })
        .collect();
    let f = flow_of::<f32, f32>(&parts.desc, &w, &parts.ints);
    let xs: Vec<f32> = (0..N * d).map(|_| (next() * 5.0) as f32).collect();
    let cs: Vec<f32> = (0..N * c).map(|_| (next() * 3.0) as f32).collect();

    let mut s = vec![0.0; f.scratch_len()];
    let (mut g1, mut gx1, mut lp1) = (vec![0.0f32; w.len()], vec![0.0; N * d], [0.0f32; N]);
    for i in 0..N {
        let (x, cx) = (&xs[i * d..(i + 1) * d], &cs[i * c..(i + 1) * c]);
        lp1[i] = f.grad(x, cx, &mut gx1[i * d..(i + 1) * d], Some(&mut g1), &mut s);
    }
    let mut s = vec![0.0; f.grad_block_scratch_len(N)];
    let (mut g2, mut gx2, mut lp2) = (vec![0.0f32; w.len()], vec![0.0; N * d], [0.0f32; N]);
    let x = block::views::<f32, N>(&xs, d);
    let cx = block::views::<f32, N>(&cs, c);
    f.grad_block(
        x,
        cx,
        block::views_mut::<f32, N>(&mut gx2, d),
        Some(&mut g2),
        &mut lp2,
        &mut s,
    );

    let bits = |v: &[f32]| v.iter().map(|a| a.to_bits()).collect::<Vec<_>>();
    let what = format!("{kind:?} d={d} c={c} hidden {hidden:?}");
    assert!(lp1.iter().all(|v| v.is_finite()), "{what}: {lp1:?}");
    assert_eq!(bits(&lp1), bits(&lp2), "log p, {what}");
    assert_eq!(bits(&gx1), bits(&gx2), "g_x, {what}");
    let first = g1.iter().zip(&g2).position(|(a, b)| a.to_bits() != b.to_bits());
    assert_eq!(first, None, "g_params, {what}: first difference at {first:?}");
    assert!(g1.iter().filter(|v| **v != 0.0).count() > w.len() / 4, "{what}");
}

#[test]
fn block_gradients_equal_per_sample_gradients_for_every_family() {
    for kind in FlowKind::ALL {
        let takes_context = !matches!(kind, FlowKind::Planar | FlowKind::Radial);
        for (d, c) in [(2, 0), (3, 2)] {
            if c > 0 && !takes_context {
                continue;
            }
            // Widths below, at and above the kernels' groups of 8 and 64 columns.
            check(kind, d, c, &[16, 16]);
            check(kind, d, c, &[70, 64]);
        }
    }
}
