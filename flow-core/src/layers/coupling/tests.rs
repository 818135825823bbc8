//! Tests of the coupling layers with each transformer: finite differences of every VJP, round
//! trips and log-det cancellation (`check_bijection`), `u16` masks against `bool` masks and a
//! hand computation, identity features and f32.

extern crate std;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::layers::affine::{AffineLayout, AffineScale};
use crate::layers::spline::SplineKind;
use crate::nn::mlp::n_params;
use crate::nn::Activation;
use crate::testing::{builder, check_bijection, Lcg, Report};

/// Masks for dimension `d`: alternating, first half identity, all transformed, and a random one.
fn masks(d: usize, rng: &mut Lcg) -> Vec<Vec<bool>> {
    std::vec![
        std::vec![false; d],
        (0..d).map(|i| i % 2 == 0).collect(),
        (0..d).map(|i| i < d / 2).collect(),
        (0..d).map(|_| rng.uniform() < 0.5).collect(),
    ]
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

#[test]
fn affine_coupling_passes_finite_difference_checks() {
    let scales = [
        AffineScale::SoftclipExp {
            bound: -(1e-3f64).ln(),
        },
        AffineScale::SoftplusEps { eps: 1e-3 },
        AffineScale::Sigmoid { eps: 1e-3 },
    ];
    let mut worst = Report::default();
    let mut worst_nice = Report::default();
    for seed in 0..3u64 {
        let mut rng = Lcg(600 + seed);
        for d in [1usize, 2, 3, 5] {
            for mask in masks(d, &mut rng) {
                let mask = leak(mask);
                let n_id = mask.iter().filter(|&&m| m).count();
                let n_tr = d - n_id;
                if n_tr == 0 {
                    continue; // all identity: nothing to test
                }
                for (case, additive) in [(0usize, false), (1, false), (2, false), (0, true)] {
                    // A conditioner needs at least one input.
                    let c = if n_id == 0 {
                        2
                    } else {
                        [0usize, 2][(seed as usize + case) % 2]
                    };
                    let per = if additive { 1 } else { 2 };
                    let sizes = leak(std::vec![n_id + c, 6, 5, per * n_tr]);
                    let params: Vec<f64> = (0..n_params(sizes)).map(|_| rng.normal() * 0.5).collect();
                    let scale = scales[case];
                    let layout = if case % 2 == 0 {
                        AffineLayout::ShiftScale
                    } else {
                        AffineLayout::ScaleShift
                    };
                    let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case];
                    let build = builder(move |p| {
                        Box::new(AffineCoupling {
                            net: Mlp {
                                sizes,
                                params: p,
                                activation: act,
                                residual: false,
                            },
                            mask,
                            transformer: Affine {
                                scale,
                                layout,
                                additive,
                            },
                        })
                    });
                    let x = rng.normals(d);
                    let ctx = rng.normals(c);
                    let r = check_bijection(&build, &params, &x, &ctx);
                    assert!(
                        r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                        "{scale:?} additive={additive} {mask:?}: {r:?}"
                    );
                    assert!(
                        r.max_fd() < 1e-6,
                        "{scale:?} additive={additive} {mask:?} c={c}: {r:?}"
                    );
                    if additive {
                        worst_nice.merge(&r);
                    } else {
                        worst.merge(&r);
                    }
                }
            }
        }
    }
    std::eprintln!("affine_coupling worst (RealNVP): {worst:?}");
    std::eprintln!("affine_coupling worst (NICE): {worst_nice:?}");
}

#[test]
fn affine_coupling_u16_mask_matches_bool_mask_and_hand_computation() {
    let mut rng = Lcg(77);
    let sizes = [2usize, 4, 4];
    let params: Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal()).collect();
    let net = Mlp {
        sizes: &sizes,
        params: &params[..],
        activation: Activation::Tanh,
        residual: false,
    };
    let mb = [true, false, true, false];
    let mu = [1u16, 0, 1, 0];
    let scale = AffineScale::SoftplusEps { eps: 1e-3 };
    let layout = AffineLayout::ScaleShift;
    let lb = AffineCoupling {
        net,
        mask: &mb[..],
        transformer: Affine {
            scale,
            layout,
            additive: false,
        },
    };
    let lu = AffineCoupling {
        net,
        mask: &mu[..],
        transformer: Affine {
            scale,
            layout,
            additive: false,
        },
    };
    let x = [0.3, -1.0, 2.0, 0.5];
    let mut s = std::vec![0.0; Bijection::<f64>::scratch_len(&lb)];
    let (mut z1, mut z2) = ([0.0; 4], [0.0; 4]);
    let l1 = lb.inverse(&x, &[], &mut z1, &mut s);
    let l2 = lu.inverse(&x, &[], &mut z2, &mut s);
    assert_eq!((z1, l1), (z2, l2));
    // By hand: out = net([x0, x2]); feature 1 uses out[0..2], feature 3 out[2..4], each
    // [raw scale, shift] (ScaleShift).
    let mut out = [0.0; 4];
    let mut ns = [0.0; 8];
    net.forward(&[x[0], x[2]], &[], &mut out, &mut ns);
    let sp = |a: f64| crate::math::softplus(a) + 1e-3;
    assert_eq!((z1[0], z1[2]), (x[0], x[2]));
    assert!((z1[1] - (x[1] * sp(out[0]) + out[1])).abs() < 1e-14);
    assert!((z1[3] - (x[3] * sp(out[2]) + out[3])).abs() < 1e-14);
    assert!((l1 - (sp(out[0]).ln() + sp(out[2]).ln())).abs() < 1e-14);
    // NICE: one shift per transformed feature, log-det 0.
    let sizes2 = [2usize, 4, 2];
    let p2: Vec<f64> = (0..n_params(&sizes2)).map(|_| rng.normal()).collect();
    let net2 = Mlp {
        sizes: &sizes2,
        params: &p2[..],
        activation: Activation::Tanh,
        residual: false,
    };
    let nice = AffineCoupling {
        net: net2,
        mask: &mu[..],
        transformer: Affine {
            scale,
            layout,
            additive: true,
        },
    };
    let mut out2 = [0.0; 2];
    net2.forward(&[x[0], x[2]], &[], &mut out2, &mut ns);
    let mut s2 = std::vec![0.0; Bijection::<f64>::scratch_len(&nice)];
    let ldj = nice.inverse(&x, &[], &mut z1, &mut s2);
    assert_eq!(ldj, 0.0);
    assert!((z1[1] - (x[1] + out2[0])).abs() < 1e-14 && (z1[3] - (x[3] + out2[1])).abs() < 1e-14);
}

fn layer<'a>(
    sizes: &'a [usize],
    params: &'a [f64],
    activation: Activation,
    mask: &'a [bool],
    spline: SplineOpts,
) -> SplineCoupling<'a, f64> {
    SplineCoupling {
        net: Mlp {
            sizes,
            params,
            activation,
            residual: false,
        },
        mask,
        transformer: spline,
    }
}

fn test_splines() -> [SplineOpts; 7] {
    [
        SplineOpts::zuko(5, 2.0, 1e-3),
        SplineOpts::zuko(2, 1.0, 1e-4),
        SplineOpts::nflows(4, 1.5, 1.0 / 8f64.sqrt()),
        SplineOpts::nflows(1, 3.0, 1.0),
        SplineOpts::flowjax(3, 1.0),
        SplineOpts::flowjax(9, 2.5),
        SplineOpts {
            bins: 6,
            bound: 2.0,
            kind: SplineKind::FlowJax {
                min_width: 0.1,
                min_derivative: 5e-2,
            },
            logit_scale: 0.7,
        },
    ]
}

fn dist(v: f64, ps: &[f64]) -> f64 {
    ps.iter().map(|p| (v - p).abs()).fold(f64::INFINITY, f64::min)
}

/// Whether central differences are meaningful at `x`: transformed inputs at least 1e-4 from
/// their x-knots, outputs from their y-knots, and slopes within [1/20, 20] (see the autoregressive tests).
fn fd_safe(l: &SplineCoupling<f64>, x: &[f64], ctx: &[f64]) -> bool {
    let sp = l.transformer;
    let (p, n) = (sp.params_per_feature(), sp.bins + 1);
    let a: Vec<f64> = x
        .iter()
        .zip(l.mask)
        .filter(|(_, &m)| m)
        .map(|(&v, _)| v)
        .collect();
    let mut out = vec![0.0; l.n_out()];
    let mut s = vec![0.0; l.net.scratch_len()];
    l.net.forward(&a, ctx, &mut out, &mut s);
    let mut knots = vec![0.0; sp.knots_len()];
    let xb: Vec<f64> = x
        .iter()
        .zip(l.mask)
        .filter(|(_, &m)| !m)
        .map(|(&v, _)| v)
        .collect();
    xb.iter().zip(out.chunks_exact(p)).all(|(&xi, raw)| {
        sp.knots(raw, &mut knots);
        let (z, ld) = sp.forward(&knots, xi);
        dist(xi, &knots[..n]) > 1e-4 && dist(z, &knots[n..2 * n]) > 1e-4 && ld.abs() < 20f64.ln()
    })
}

#[test]
fn spline_coupling_passes_finite_difference_checks() {
    let masks: [&'static [bool]; 7] = [
        &[false],
        &[true, false],
        &[false, true],
        &[true, false, true],
        &[false, true, false],
        &[false, false, true],
        &[true, true, false],
    ];
    let mut worst = Report::default();
    let mut rng = Lcg(53);
    let (mut n_in, mut n_out, mut n_skipped) = (0, 0, 0);
    for (case, spline) in test_splines().into_iter().enumerate() {
        let p = spline.params_per_feature();
        for mask in masks {
            let na = mask.iter().filter(|&&m| m).count();
            let nt = mask.len() - na;
            // A one-feature coupling has no identity feature: its net needs a context.
            let ctxs: &[usize] = if na == 0 { &[1, 2] } else { &[0, 2] };
            for &c in ctxs {
                let sizes = [na + c, 9, 6, nt * p];
                let params: Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal() * 0.4).collect();
                let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case % 3];
                let sizes: &'static [usize] = Box::leak(Box::new(sizes));
                let build = builder(move |p| Box::new(layer(sizes, p, act, mask, spline)));
                for _ in 0..3 {
                    let ctx = rng.normals(c);
                    let mut draw = || -> Vec<f64> {
                        rng.normals(mask.len())
                            .iter()
                            .map(|v| v * 0.8 * spline.bound)
                            .collect()
                    };
                    let mut x = draw();
                    for _ in 0..100 {
                        if fd_safe(&layer(sizes, &params, act, mask, spline), &x, &ctx) {
                            break;
                        }
                        x = draw();
                    }
                    if !fd_safe(&layer(sizes, &params, act, mask, spline), &x, &ctx) {
                        n_skipped += 1;
                        continue;
                    }
                    for (&xi, &m) in x.iter().zip(mask) {
                        if !m && xi.abs() < spline.bound {
                            n_in += 1;
                        } else if !m {
                            n_out += 1;
                        }
                    }
                    let r = check_bijection(&build, &params, &x, &ctx);
                    assert!(
                        r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                        "{spline:?} {mask:?} c={c}: {r:?}"
                    );
                    assert!(r.max_fd() < 1e-6, "{spline:?} {mask:?} c={c} x={x:?}: {r:?}");
                    worst.merge(&r);
                }
            }
        }
    }
    assert!(
        n_in > 200 && n_out > 30 && n_skipped < 10,
        "{n_in} inside, {n_out} tails, {n_skipped}"
    );
    std::eprintln!("spline_coupling worst ({n_in} coordinates inside, {n_out} in the tails): {worst:?}");
}

#[test]
fn identity_features_pass_through_and_f32_stays_finite() {
    let mut rng = Lcg(59);
    let mask: &[bool] = &[true, false, true, false];
    for spline in test_splines() {
        let p = spline.params_per_feature();
        let sizes = [2 + 1, 7, 2 * p];
        let params: Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal() * 0.5).collect();
        let params32: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        let l64 = layer(&sizes, &params, Activation::Tanh, mask, spline);
        let l32 = SplineCoupling {
            net: Mlp {
                sizes: &sizes,
                params: &params32,
                activation: Activation::Tanh,
                residual: false,
            },
            mask,
            transformer: spline,
        };
        let b = spline.bound;
        let mut s64 = vec![0.0f64; Bijection::<f64>::scratch_len(&l64)];
        let mut s32 = vec![0.0f32; Bijection::<f32>::scratch_len(&l32)];
        for x in [
            [0.3, -0.2 * b, 9.0, 0.7 * b],
            [b, b, -b, -b],
            [-1e5, 1e5, 0.0, -3.0 * b],
        ] {
            let mut z = [0.0; 4];
            let l = l64.inverse(&x, &[0.1], &mut z, &mut s64);
            assert_eq!((z[0], z[2]), (x[0], x[2]));
            let x32 = x.map(|v| v as f32);
            let mut z32 = [0.0f32; 4];
            let l32v = l32.inverse(&x32, &[0.1], &mut z32, &mut s32);
            assert!(l32v.is_finite() && z32.iter().all(|v| v.is_finite()));
            assert!((l32v as f64 - l).abs() < 1e-3, "{spline:?} {l} {l32v}");
            let mut back = [0.0f32; 4];
            assert!(l32.forward(&z32, &[0.1], &mut back, &mut s32).is_finite());
            assert_eq!((back[0], back[2]), (x32[0], x32[2]));
        }
    }
}
