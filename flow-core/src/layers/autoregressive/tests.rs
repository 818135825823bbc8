//! Tests of the autoregressive layers with each transformer: finite differences of every
//! VJP, round trips and log-det cancellation (`check_bijection_except`), f32 against f64, and
//! the affine scale parameterizations against FlowJAX.

extern crate std;
use std::boxed::Box;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::layers::affine::{AffineLayout, AffineScale};
use crate::layers::spline::SplineKind;
use crate::nn::made;
use crate::nn::mlp::n_params;
use crate::nn::Activation;
use crate::testing::{builder, check_bijection_except, Lcg, Report};

/// Random MADE parameters with masks applied (masked weights exactly 0).
fn made_params(order: &[u16], sizes: &[usize], per: usize, rng: &mut Lcg) -> Vec<f64> {
    let d = order.len();
    let hidden: Vec<u16> = sizes[1..sizes.len() - 1]
        .iter()
        .flat_map(|&h| (0..h).map(move |k| made::default_hidden_degree(k, d)))
        .collect();
    let mut allowed = Vec::new();
    made::for_each_weight(order, sizes, &hidden, per, |_, _, _, ok| allowed.push(ok));
    let mut params = Vec::new();
    let mut it = allowed.iter();
    for l in 0..sizes.len() - 1 {
        let (i, o) = (sizes[l], sizes[l + 1]);
        for _ in 0..i * o {
            let w = rng.normal() * 0.5;
            params.push(if *it.next().unwrap() { w } else { 0.0 });
        }
        for _ in 0..o {
            params.push(rng.normal() * 0.3);
        }
    }
    assert_eq!(params.len(), n_params(sizes));
    params
}

/// The spline options exercised: every kind, several bins and bounds.
fn test_splines() -> [SplineOpts; 7] {
    [
        SplineOpts::zuko(4, 2.0, 1e-3),
        SplineOpts::zuko(1, 1.0, 1e-4),
        SplineOpts::nflows(5, 1.5, 1.0),
        SplineOpts::nflows(2, 3.0, 0.3),
        SplineOpts::flowjax(3, 1.0),
        SplineOpts::flowjax(6, 2.5),
        SplineOpts {
            bins: 8,
            bound: 2.0,
            kind: SplineKind::Nflows {
                min_bin_width: 1e-2,
                min_bin_height: 2e-2,
                min_derivative: 5e-2,
            },
            logit_scale: 0.5,
        },
    ]
}

fn layer<'a>(
    sizes: &'a [usize],
    params: &'a [f64],
    activation: Activation,
    dim: usize,
    spline: SplineOpts,
    direction: Direction,
) -> SplineAutoregressive<'a, f64> {
    SplineAutoregressive {
        net: Mlp {
            sizes,
            params,
            activation,
            residual: false,
        },
        dim,
        transformer: spline,
        direction,
    }
}

/// Distance from `v` to the nearest of `ps`.
fn dist(v: f64, ps: &[f64]) -> f64 {
    ps.iter().map(|p| (v - p).abs()).fold(f64::INFINITY, f64::min)
}

/// Whether central differences with step 1e-6 are meaningful at `x`: `F`'s inputs are at least
/// 1e-4 from their x-knots and its outputs from their y-knots (the log-derivative has kinks
/// there), and no slope is below 1/20 or above 20 (there, rounding noise in the log-derivative,
/// divided by the step, exceeds the tolerance; the kernel's own tests cover steep bins with a
/// higher-order stencil).
fn fd_safe(layer: &SplineAutoregressive<f64>, x: &[f64], ctx: &[f64]) -> bool {
    let d = layer.dim;
    let sp = layer.transformer;
    let (p, n) = (sp.params_per_feature(), sp.bins + 1);
    let mut scratch = vec![0.0; Bijection::<f64>::scratch_len(layer)];
    let mut u = x.to_vec();
    if layer.direction == Direction::Iaf {
        layer.solve(x, ctx, &mut u, &mut scratch);
    }
    let mut out = vec![0.0; d * p];
    layer.net.forward(&u, ctx, &mut out, &mut scratch);
    let mut knots = vec![0.0; sp.knots_len()];
    (0..d).all(|i| {
        sp.knots(&out[i * p..(i + 1) * p], &mut knots);
        let (z, l) = sp.forward(&knots, u[i]);
        dist(u[i], &knots[..n]) > 1e-4 && dist(z, &knots[n..2 * n]) > 1e-4 && l.abs() < 20f64.ln()
    })
}

#[test]
fn spline_maf_and_iaf_pass_finite_difference_checks() {
    let mut worst = Report::default();
    let mut rng = Lcg(41);
    let (mut n_in, mut n_out, mut n_skipped) = (0, 0, 0);
    for (case, spline) in test_splines().into_iter().enumerate() {
        let p = spline.params_per_feature();
        for direction in [Direction::Maf, Direction::Iaf] {
            for &(d, c) in &[(1usize, 0usize), (1, 2), (2, 0), (2, 1), (3, 0), (3, 2)] {
                let order: Vec<u16> = if case % 2 == 0 {
                    (0..d as u16).rev().collect()
                } else {
                    (0..d as u16).collect()
                };
                let sizes = [d + c, 8, 7, d * p];
                let params = made_params(&order, &sizes, p, &mut rng);
                let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case % 3];
                let sizes: &'static [usize] = Box::leak(Box::new(sizes));
                let make = move |p| layer(sizes, p, act, d, spline, direction);
                let build = builder(move |p| Box::new(layer(sizes, p, act, d, spline, direction)));
                for _ in 0..3 {
                    // Normals scaled to the bound: about a fifth of the coordinates in the tails.
                    let ctx = rng.normals(c);
                    let mut draw =
                        || -> Vec<f64> { rng.normals(d).iter().map(|v| v * 0.8 * spline.bound).collect() };
                    let mut x = draw();
                    for _ in 0..100 {
                        if fd_safe(&make(&params), &x, &ctx) {
                            break;
                        }
                        x = draw();
                    }
                    if !fd_safe(&make(&params), &x, &ctx) {
                        n_skipped += 1;
                        continue;
                    }
                    for &xi in &x {
                        if xi.abs() < spline.bound {
                            n_in += 1;
                        } else {
                            n_out += 1;
                        }
                    }
                    let r = check_bijection_except(&build, &params, &x, &ctx, &|k| params[k] == 0.0);
                    assert!(
                        r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                        "{spline:?} {direction:?} d={d} c={c}: {r:?}"
                    );
                    assert!(
                        r.max_fd() < 1e-6,
                        "{spline:?} {direction:?} d={d} c={c} x={x:?}: {r:?}"
                    );
                    worst.merge(&r);
                }
            }
        }
    }
    assert!(
        n_in > 200 && n_out > 30 && n_skipped < 10,
        "{n_in} inside, {n_out} tails, {n_skipped}"
    );
    std::eprintln!("spline_ar worst ({n_in} coordinates inside, {n_out} in the tails): {worst:?}");
}

#[test]
fn f32_evaluation_matches_f64_and_stays_finite_far_out() {
    let mut rng = Lcg(43);
    for spline in test_splines() {
        let p = spline.params_per_feature();
        let (d, c) = (3, 1);
        let order: Vec<u16> = (0..d as u16).collect();
        let sizes = [d + c, 6, d * p];
        let params = made_params(&order, &sizes, p, &mut rng);
        let params32: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        for direction in [Direction::Maf, Direction::Iaf] {
            let l64 = SplineAutoregressive {
                net: Mlp {
                    sizes: &sizes,
                    params: &params,
                    activation: Activation::Tanh,
                    residual: false,
                },
                dim: d,
                transformer: spline,
                direction,
            };
            let l32 = SplineAutoregressive {
                net: Mlp {
                    sizes: &sizes,
                    params: &params32,
                    activation: Activation::Tanh,
                    residual: false,
                },
                dim: d,
                transformer: spline,
                direction,
            };
            let mut s64 = vec![0.0f64; Bijection::<f64>::scratch_len(&l64)];
            let mut s32 = vec![0.0f32; Bijection::<f32>::scratch_len(&l32)];
            let b = spline.bound;
            for x in [
                vec![0.1, -0.5 * b, 0.9 * b],
                vec![b, -b, 0.0],
                vec![1e4, -3.0 * b, 0.5 * b],
            ] {
                let ctx = [0.3];
                let mut z = vec![0.0; d];
                let l = l64.inverse(&x, &ctx, &mut z, &mut s64);
                let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                let mut z32 = vec![0.0f32; d];
                let l32v = l32.inverse(&x32, &[0.3], &mut z32, &mut s32);
                assert!(l32v.is_finite() && z32.iter().all(|v| v.is_finite()));
                assert!(
                    (l32v as f64 - l).abs() < 1e-3,
                    "{spline:?} {direction:?} {l} {l32v}"
                );
                let mut back = vec![0.0f32; d];
                let lf = l32.forward(&z32, &[0.3], &mut back, &mut s32);
                assert!(lf.is_finite() && back.iter().all(|v| v.is_finite()));
            }
        }
    }
}

#[test]
fn maf_and_iaf_pass_finite_difference_checks() {
    let mut worst = Report::default();
    let scales = [
        AffineScale::SoftclipExp {
            bound: -(1e-3f64).ln(),
        },
        AffineScale::SoftplusEps { eps: 1e-3 },
        AffineScale::Sigmoid { eps: 1e-3 },
        AffineScale::SoftplusOffset {
            offset: flowjax_inv_softplus(1.0),
            eps: 0.0,
        },
        AffineScale::SoftplusOffset {
            offset: flowjax_inv_softplus(0.99),
            eps: 1e-2,
        },
    ];
    let mut rng = Lcg(11);
    for (case, &scale) in scales.iter().enumerate() {
        for direction in [Direction::Maf, Direction::Iaf] {
            for &(d, c) in &[(1usize, 0usize), (2, 0), (3, 2), (4, 1)] {
                let order: Vec<u16> = (0..d as u16).rev().collect();
                let sizes = [d + c, 8, 7, 2 * d];
                let params = made_params(&order, &sizes, 2, &mut rng);
                let layout = if case % 2 == 0 {
                    AffineLayout::ShiftScale
                } else {
                    AffineLayout::ScaleShift
                };
                let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case % 3];
                let sizes: &'static [usize] = Box::leak(Box::new(sizes));
                let build = builder(move |p| {
                    Box::new(AffineAutoregressive {
                        net: Mlp {
                            sizes,
                            params: p,
                            activation: act,
                            residual: false,
                        },
                        dim: d,
                        transformer: Affine::new(scale, layout),
                        direction,
                    })
                });
                let x = rng.normals(d);
                let ctx = rng.normals(c);
                let r = check_bijection_except(&build, &params, &x, &ctx, &|k| params[k] == 0.0);
                assert!(
                    r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                    "{scale:?} {direction:?} {r:?}"
                );
                assert!(r.max_fd() < 1e-6, "{scale:?} {direction:?} d={d} c={c}: {r:?}");
                worst.merge(&r);
            }
        }
    }
    std::eprintln!("affine_ar worst: {worst:?}");
}

/// paramax's `inv_softplus`: `ln(−expm1(−x)) + x`.
fn flowjax_inv_softplus(x: f64) -> f64 {
    (-(-x).exp_m1()).ln() + x
}

#[test]
fn softplus_offset_scale_follows_flowjax_and_its_derivative() {
    // FlowJAX's initial transformer: raw output 0 gives scale 1 (both parameterizations).
    for (s0, eps) in [(1.0, 0.0), (0.99, 1e-2)] {
        let scale = AffineScale::SoftplusOffset {
            offset: flowjax_inv_softplus(s0),
            eps,
        };
        let (s, ls, _) = scale.eval(0.0f64);
        assert!((s - 1.0).abs() < 1e-15 && ls.abs() < 1e-15, "{s} {ls}");
    }
    let offset = flowjax_inv_softplus(1.0);
    for eps in [0.0, 1e-2] {
        let scale = AffineScale::SoftplusOffset { offset, eps };
        for a in [
            -800.0, -60.0, -31.0, -29.0, -5.0, -0.3, 0.0, 0.7, 4.0, 25.0, 40.0, 800.0,
        ] {
            let (s, ls, dls) = scale.eval(a);
            // Reference: JAX's softplus(v) = logaddexp(v, 0).
            let v = a + offset;
            let sp = v.max(0.0) + (-v.abs()).exp().ln_1p();
            assert_eq!(s, sp + eps);
            assert!(ls.is_finite() && dls.is_finite(), "{a}: {ls} {dls}");
            if s > 0.0 {
                assert!(
                    (ls - s.ln()).abs() <= 1e-13 * ls.abs().max(1.0),
                    "{a}: {ls} vs {}",
                    s.ln()
                );
            }
            let h = 1e-5;
            let fd = (scale.eval(a + h).1 - scale.eval(a - h).1) / (2.0 * h);
            assert!((fd - dls).abs() < 1e-8, "eps {eps} a {a}: fd {fd} vs {dls}");
            let (s32, ls32, dls32) = scale.eval(a as f32);
            assert!(s32 >= 0.0 && ls32.is_finite() && dls32.is_finite(), "f32 {a}");
        }
    }
}
