//! The block paths of the evaluator against single samples: gradients, and every layer and
//! transformer's batch passes, bit for bit.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;

/// `grad_block` of the runtime evaluator is `grad` called sample after sample, bit for bit: the
/// log-densities, the input gradients and the parameter gradients summed over the block (the
/// training step), in f32 and f64, with a context per sample.
#[test]
fn block_gradients_equal_per_sample_gradients_bit_for_bit() {
    const N: usize = 5;
    fn check<S: Real + crate::Weight>(parts: &ModelParts, what: &str) {
        let w: Vec<S> = parts.weights.iter().map(|&v| S::from_f64(v)).collect();
        let f = flow_of::<S, S>(&parts.desc, &w, &parts.ints);
        let (d, c) = (parts.desc.dim as usize, parts.desc.context_dim as usize);
        let mut rng = Lcg(5);
        let xs: Vec<S> = (0..N * d).map(|_| S::from_f64(rng.normal())).collect();
        let cs: Vec<S> = (0..N * c).map(|_| S::from_f64(rng.normal())).collect();
        let start: Vec<S> = (0..w.len()).map(|_| S::from_f64(rng.normal() * 0.1)).collect();
        // Per sample, in order.
        let mut s = vec![S::ZERO; f.scratch_len()];
        let mut g1 = start.clone();
        let mut gx1 = vec![S::ZERO; N * d];
        let mut lp1 = [S::ZERO; N];
        for i in 0..N {
            let (x, cx) = (&xs[i * d..(i + 1) * d], &cs[i * c..(i + 1) * c]);
            lp1[i] = f.grad(x, cx, &mut gx1[i * d..(i + 1) * d], Some(&mut g1), &mut s);
        }
        // The block.
        let mut s = vec![S::ZERO; f.grad_block_scratch_len(N)];
        let mut g2 = start.clone();
        let mut gx2 = vec![S::ZERO; N * d];
        let mut lp2 = [S::ZERO; N];
        let x = crate::block::views::<S, N>(&xs, d);
        let cx = crate::block::views::<S, N>(&cs, c);
        let gx = crate::block::views_mut::<S, N>(&mut gx2, d);
        f.grad_block(x, cx, gx, Some(&mut g2), &mut lp2, &mut s);
        let bits = |v: &[S]| v.iter().map(|a| a.to_f64().to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&lp1), bits(&lp2), "log p, {what}");
        assert_eq!(bits(&gx1), bits(&gx2), "g_x, {what}");
        assert_eq!(bits(&g1), bits(&g2), "g_params, {what}");
        assert!(
            g1.iter().zip(&start).filter(|(a, b)| a != b).count() > w.len() / 4,
            "{what}"
        );
    }
    let mut rng = Lcg(9);
    for (d, c, hidden) in [(3, 2, &[8, 8][..]), (2, 0, &[16, 16][..]), (1, 1, &[5][..])] {
        let parts = random_maf(d, c, 3, hidden, &mut rng);
        check::<f32>(&parts, &std::format!("MAF/IAF f32 d={d} c={c}"));
        check::<f64>(&parts, &std::format!("MAF/IAF f64 d={d} c={c}"));
    }
    let (parts, _) = random_maf_with_context_stats(3, 2, 3, &[8, 8], &mut rng);
    check::<f32>(&parts, "MAF/IAF with context standardization, f32");
    check::<f64>(&parts, "MAF/IAF with context standardization, f64");
}

/// A random tanh coupling conditioner `n_in → 10 → n_out` (weights `0.5 · N(0, 1)`) in `m`.
fn coupling_net(m: &mut ModelParts, n_in: usize, n_out: usize, rng: &mut Lcg) -> NetDesc {
    let sizes = heapless::Vec::from_slice(&[n_in, 10, n_out]).unwrap();
    let w: Vec<f64> = (0..mlp::n_params(&sizes)).map(|_| rng.normal() * 0.5).collect();
    NetDesc {
        sizes,
        activation: Activation::Tanh,
        residual: false,
        params: m.push_weights(&w),
    }
}

/// The block paths (`log_prob_batch`, `sample_batch`: the transformers in lanes, the kernels the
/// CPU has) give every row the bits of the single-sample methods, for every affine scale and
/// layout, additive couplings and every spline kind, autoregressive and coupling, MAF and IAF, in
/// f32 and f64, at ordinary points, far tails, ±∞ and NaN.
#[test]
fn block_paths_equal_single_samples_for_every_transformer() {
    use crate::arch::{kernel, limit_kernel, Kernel};
    use crate::layers::spline::{SplineKind, SplineOpts};
    let scales = [
        AffineScale::SoftclipExp { bound: 3.0 },
        AffineScale::SoftplusEps { eps: 1e-3 },
        AffineScale::Sigmoid { eps: 1e-3 },
        AffineScale::SoftplusOffset {
            offset: 0.54,
            eps: 0.0,
        },
        AffineScale::SoftplusOffset {
            offset: 0.54,
            eps: 1e-2,
        },
    ];
    let splines = [
        SplineOpts::zuko(8, 3.0, 1e-3),
        SplineOpts::nflows(6, 2.0, 1.0),
        SplineOpts::flowjax(5, 2.5),
        SplineOpts {
            bins: 4,
            bound: 3.0,
            kind: SplineKind::Nflows {
                min_bin_width: 1e-3,
                min_bin_height: 1e-3,
                min_derivative: 1e-3,
            },
            logit_scale: 0.5,
        },
    ];
    const MADE: (f64, f64, Activation) = (0.6, 0.5, Activation::Relu);
    let (d, c) = (5, 1);
    let mut rng = Lcg(23);
    let mut m = ModelParts::new(d, c);
    for (k, &scale) in scales.iter().enumerate() {
        let (net, order, hidden_degrees) = push_made_layer(&mut m, &[12], 2, k % 2 == 1, MADE, &mut rng);
        let layout = if k % 2 == 0 {
            AffineLayout::ShiftScale
        } else {
            AffineLayout::ScaleShift
        };
        let direction = if k % 3 == 1 {
            Direction::Iaf
        } else {
            Direction::Maf
        };
        m.push_layer(LayerDesc::AffineAutoregressive {
            net,
            order,
            hidden_degrees,
            scale,
            layout,
            direction,
        });
        let mask: Vec<u16> = (0..d).map(|i| u16::from((i + k) % 2 == 0)).collect();
        let n_id = mask.iter().filter(|&&v| v == 1).count();
        for additive in [false, k == 0] {
            let per = if additive { 1 } else { 2 };
            let net = coupling_net(&mut m, n_id + c, per * (d - n_id), &mut rng);
            let mask = m.push_ints(&mask);
            m.push_layer(LayerDesc::AffineCoupling {
                net,
                mask,
                scale,
                layout,
                additive,
            });
        }
    }
    for (k, &spline) in splines.iter().enumerate() {
        let p = spline.params_per_feature();
        let (net, order, hidden_degrees) = push_made_layer(&mut m, &[12], p, k % 2 == 0, MADE, &mut rng);
        let direction = if k % 2 == 1 {
            Direction::Iaf
        } else {
            Direction::Maf
        };
        m.push_layer(LayerDesc::SplineAutoregressive {
            net,
            order,
            hidden_degrees,
            spline,
            direction,
        });
        let mask: Vec<u16> = (0..d).map(|i| u16::from((i + k) % 2 == 1)).collect();
        let n_id = mask.iter().filter(|&&v| v == 1).count();
        let net = coupling_net(&mut m, n_id + c, p * (d - n_id), &mut rng);
        let mask = m.push_ints(&mask);
        m.push_layer(LayerDesc::SplineCoupling { net, mask, spline });
    }
    m.set_diag_base(&[0.1; 5], &[1.2; 5]);
    crate::runtime::validate(&m.desc, &m.weights, &m.ints).unwrap();

    fn check<S: Real + crate::Weight>(m: &ModelParts, rng: &mut Lcg, what: &str) {
        let w: Vec<S> = m.weights.iter().map(|&v| S::from_f64(v)).collect();
        let f = crate::runtime::flow_of::<S, S>(&m.desc, &w, &m.ints);
        let (d, n) = (5, 53);
        let special = [f64::NAN, f64::INFINITY, -f64::INFINITY, 1e4, -3.0, 3.0, 2.5];
        let xs: Vec<S> = (0..n * d)
            .map(|i| {
                S::from_f64(if i % 11 == 3 {
                    special[(i / 11) % special.len()]
                } else {
                    2.0 * rng.normal()
                })
            })
            .collect();
        let ctx = [S::from_f64(0.4)];
        let mut scratch = vec![S::ZERO; f.batch_scratch_len().max(f.scratch_len())];
        let mut lp = vec![S::ZERO; n];
        f.log_prob_batch(&xs, &ctx, &mut lp, &mut scratch);
        let mut ys = vec![S::ZERO; n * d];
        f.sample_batch(&xs, &ctx, &mut ys, &mut scratch);
        let same = |a: S, b: S| a.to_f64().to_bits() == b.to_f64().to_bits() || (a.is_nan() && b.is_nan());
        let mut finite = 0;
        for (r, x) in xs.chunks_exact(d).enumerate() {
            let want = f.log_prob(x, &ctx, &mut scratch);
            assert!(
                same(lp[r], want),
                "{what}: log_prob row {r}: {:?} vs {want:?}",
                lp[r]
            );
            finite += usize::from(want.is_finite());
            let mut y = vec![S::ZERO; d];
            f.sample(x, &ctx, &mut y, &mut scratch);
            for i in 0..d {
                assert!(
                    same(ys[r * d + i], y[i]),
                    "{what}: sample row {r}[{i}]: {:?} vs {:?}",
                    ys[r * d + i],
                    y[i]
                );
            }
        }
        assert!(finite > n / 2, "{what}: only {finite} finite log-densities");
    }
    let best = kernel();
    for k in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= best)
    {
        limit_kernel(k);
        check::<f32>(&m, &mut rng, &std::format!("f32 {}", k.name()));
        check::<f64>(&m, &mut rng, &std::format!("f64 {}", k.name()));
    }
    limit_kernel(best);
}
