//! Tests of the spline kernel: round trips, log-determinants and VJPs against finite
//! differences, each library's conventions, the bound, and the lanes' bits.

extern crate std;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::testing::Lcg;

const KINDS: [SplineKind; 6] = [
    SplineKind::Zuko { slope: 1e-3 },
    SplineKind::Zuko { slope: 1e-4 },
    SplineKind::Nflows {
        min_bin_width: 1e-3,
        min_bin_height: 1e-3,
        min_derivative: 1e-3,
    },
    SplineKind::Nflows {
        min_bin_width: 2e-2,
        min_bin_height: 5e-3,
        min_derivative: 1e-2,
    },
    SplineKind::FlowJax {
        min_width: 1e-3,
        min_derivative: 1e-3,
    },
    SplineKind::FlowJax {
        min_width: 5e-2,
        min_derivative: 1e-2,
    },
];

/// Every kind × several K, bounds and logit scales.
fn all_opts() -> Vec<SplineOpts> {
    let mut v = Vec::new();
    for (i, &kind) in KINDS.iter().enumerate() {
        for (j, &bins) in [1usize, 2, 5, 8].iter().enumerate() {
            for (l, &bound) in [1.0, 3.0, 5.0].iter().enumerate() {
                let logit_scale = if (i + j + l) % 2 == 0 { 1.0 } else { 0.25 };
                let o = SplineOpts {
                    bins,
                    bound,
                    kind,
                    logit_scale,
                };
                assert!(o.is_valid(), "{o:?}");
                v.push(o);
            }
        }
    }
    v
}

/// Same bits, or both NaN.
fn same<S: Real>(a: S, b: S) -> bool {
    a.to_f64().to_bits() == b.to_f64().to_bits() || (a.is_nan() && b.is_nan())
}

/// [`Spline::eval_block`] run through [`crate::arch::vectorized`] (the code of the block kernels).
struct Block<'a, S, const N: usize> {
    sp: &'a Spline<S>,
    src: [&'a [S]; N],
    out: &'a [[S; N]],
    dims: usize,
    inverse: bool,
}

impl<S: Real, const N: usize> crate::lanes::LaneTask for Block<'_, S, N> {
    type Output = (Vec<[S; N]>, [S; N]);
    #[inline(always)]
    fn run(self) -> Self::Output {
        let mut rows = [[S::ZERO; 4]; N];
        let mut dst: [&mut [S]; N] = rows.each_mut().map(|r| &mut r[..]);
        let coords = (0..self.dims).map(|i| (i, i));
        let l = self
            .sp
            .eval_block(&self.src, self.out, &mut dst, coords, self.inverse);
        let cols = (0..self.dims)
            .map(|i| core::array::from_fn(|s| rows[s][i]))
            .collect();
        (cols, l.0)
    }
}

/// [`Spline::eval_block`] of 16 samples × 1–3 coordinates (one lane group, a [`Pair`], both),
/// each with its own raw parameters and input (edge points, knots, far tails, ±∞, NaN), under
/// every kernel the CPU has: the bits of [`Spline::knots`] then [`Spline::forward`] /
/// [`Spline::inverse`] on each sample and coordinate alone, the log-derivatives summed in order.
fn check_lanes<S: Real>(o: &SplineOpts, rng: &mut Lcg) {
    const N: usize = 16;
    let sp = o.prepare::<S>();
    let p = o.params_per_feature();
    let dims = 3;
    let raws: Vec<Vec<S>> = (0..N)
        .map(|i| {
            let scale = [0.1, 1.0, 3.0, 30.0][i % 4];
            (0..dims * p).map(|_| S::from_f64(scale * rng.normal())).collect()
        })
        .collect();
    let knots = |s: usize, i: usize| {
        let mut k = vec![S::ZERO; o.knots_len()];
        sp.knots(&raws[s][i * p..(i + 1) * p], &mut k);
        k
    };
    // The raw parameters as columns, as the network's block pass leaves them.
    let cols: Vec<[S; N]> = (0..dims * p)
        .map(|j| core::array::from_fn(|s| raws[s][j]))
        .collect();
    let b = o.bound;
    let edges = edge_points(o, b);
    for round in 0..24 {
        let xs: Vec<[S; 4]> = (0..N)
            .map(|s| {
                core::array::from_fn(|i| match (round + s + i) % 6 {
                    0 => S::from_f64(edges[(round * 7 + s + i) % edges.len()]),
                    1 => knots(s, i % dims)[(round + s) % o.knots_len()],
                    2 => S::from_f64([f64::NAN, f64::INFINITY, -f64::INFINITY, 1e30][s % 4]),
                    _ => S::from_f64(1.5 * b * (2.0 * rng.uniform() - 1.0)),
                })
            })
            .collect();
        for inverse in [false, true] {
            for d in 1..=dims {
                let task = Block::<S, N> {
                    sp: &sp,
                    src: core::array::from_fn(|s| &xs[s][..]),
                    out: &cols,
                    dims: d,
                    inverse,
                };
                let (v, l) = crate::arch::vectorized(task);
                for s in 0..N {
                    let mut want_l = S::ZERO;
                    for (i, col) in v.iter().enumerate() {
                        let k = knots(s, i);
                        let (wv, wl) = if inverse {
                            sp.inverse(&k, xs[s][i])
                        } else {
                            sp.forward(&k, xs[s][i])
                        };
                        want_l += wl;
                        let what = std::format!("{o:?} inverse={inverse} d={d} sample {s} coordinate {i}");
                        assert!(
                            same(col[s], wv),
                            "{what}: {:?} vs {wv:?} at x={:?}",
                            col[s],
                            xs[s][i]
                        );
                    }
                    assert!(
                        same(l[s], want_l),
                        "{o:?} inverse={inverse} d={d} sample {s}: ldj {:?} vs {want_l:?}",
                        l[s]
                    );
                }
            }
        }
    }
}

#[test]
fn lanes_give_each_sample_the_single_sample_bits() {
    use crate::arch::{kernel, limit_kernel, Kernel};
    let best = kernel();
    let mut opts = all_opts();
    opts.push(SplineOpts::zuko(LANES_MAX_BINS, 5.0, 1e-3));
    opts.push(SplineOpts::flowjax(LANES_MAX_BINS, 4.0));
    let mut rng = Lcg(11);
    for k in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
        .into_iter()
        .filter(|&k| k <= best)
    {
        limit_kernel(k);
        for o in &opts {
            check_lanes::<f32>(o, &mut rng);
            check_lanes::<f64>(o, &mut rng);
        }
    }
    limit_kernel(best);
    let many = SplineOpts::zuko(LANES_MAX_BINS + 1, 3.0, 1e-3).prepare::<f32>();
    let raw = Lanes([0.0f32; 2]);
    assert!(many.eval_vals(|_| raw, raw, false).is_none());
}

fn knots_of(o: &SplineOpts, raw: &[f64]) -> Vec<f64> {
    let mut k = vec![0.0; o.knots_len()];
    o.knots(raw, &mut k);
    k
}

fn dist(v: f64, ps: &[f64]) -> f64 {
    ps.iter().map(|p| (v - p).abs()).fold(f64::INFINITY, f64::min)
}

/// Five-point central difference (error O(h⁴)), so steep inverse spline bins are checked too.
fn fd(f: impl Fn(f64) -> f64, v: f64) -> f64 {
    let h = 2e-6;
    (8.0 * (f(v + h) - f(v - h)) - (f(v + 2.0 * h) - f(v - 2.0 * h))) / (12.0 * h)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / (1.0 + b.abs())
}

#[derive(Debug, Default)]
struct Worst {
    roundtrip: f64,
    logdet: f64,
    fwd_x: f64,
    fwd_params: f64,
    inv_y: f64,
    inv_params: f64,
}

#[test]
fn kernel_roundtrip_logdet_and_vjps_match_finite_differences() {
    let mut rng = Lcg(3);
    let mut worst = Worst::default();
    let (mut n_inside, mut n_steep) = (0, 0);
    for o in all_opts() {
        let p = o.params_per_feature();
        let n = o.bins + 1;
        let b = o.bound;
        for _ in 0..4 {
            let raw: Vec<f64> = (0..p).map(|_| rng.normal() * 1.5).collect();
            let kn = knots_of(&o, &raw);
            let (xs, ys) = (&kn[..n], &kn[n..2 * n]);
            let mut scratch = vec![0.0; o.vjp_scratch_len()];
            let mut pts: Vec<f64> = (0..6).map(|_| (2.0 * rng.uniform() - 1.0) * b).collect();
            pts.extend([
                b * (1.0 + rng.uniform()),
                -b * (1.0 + rng.uniform()),
                1e3,
                -7.5 * b,
            ]);
            for &x in &pts {
                let (y, l) = o.forward(&kn, x);
                if dist(x, xs) < 1e-4 || dist(y, ys) < 1e-4 {
                    continue;
                }
                n_inside += usize::from(x.abs() < b);
                // Round trip and log-det cancellation.
                let (x2, li) = o.inverse(&kn, y);
                assert!(
                    rel(x2, x) < 1e-10 && (l + li).abs() < 1e-10,
                    "{o:?} x={x}: {x2} {l} {li}"
                );
                worst.roundtrip = worst.roundtrip.max(rel(x2, x));
                // Log-det against the finite-difference derivative.
                let dy = fd(|v| o.forward(&kn, v).0, x);
                let e = rel(l, dy.ln());
                assert!(e < 1e-6, "{o:?} x={x}: ldj {l} vs {}", dy.ln());
                worst.logdet = worst.logdet.max(e);
                // Forward VJP.
                let (g_y, g_l) = (rng.normal(), 0.7);
                let loss = |raw: &[f64], x: f64| {
                    let (y, l) = o.forward(&knots_of(&o, raw), x);
                    g_y * y + g_l * l
                };
                let mut g_raw = vec![f64::NAN; p];
                let (y3, l3, gx) = o.forward_vjp(&raw, x, g_y, g_l, &mut g_raw, &mut scratch);
                assert_eq!((y3, l3), (y, l));
                let e = rel(gx, fd(|v| loss(&raw, v), x));
                assert!(e < 1e-6, "{o:?} x={x}: dL/dx {gx}");
                worst.fwd_x = worst.fwd_x.max(e);
                for q in 0..p {
                    let f = fd(
                        |v| {
                            let mut r = raw.clone();
                            r[q] = v;
                            loss(&r, x)
                        },
                        raw[q],
                    );
                    let e = rel(g_raw[q], f);
                    assert!(e < 1e-6, "{o:?} x={x} param {q}: {} vs {f}", g_raw[q]);
                    worst.fwd_params = worst.fwd_params.max(e);
                }
                // Inverse VJP at y; finite differences in y are meaningless where the spline is
                // nearly flat (a step of 1e-6 in y crosses bins), so those points are skipped.
                if l.abs() > 30f64.ln() {
                    n_steep += 1;
                    continue;
                }
                let (g_x, g_l) = (rng.normal(), -0.4);
                let loss = |raw: &[f64], y: f64| {
                    let (x, l) = o.inverse(&knots_of(&o, raw), y);
                    g_x * x + g_l * l
                };
                let (x4, l4, gy) = o.inverse_vjp(&raw, y, g_x, g_l, &mut g_raw, &mut scratch);
                assert_eq!((x4, l4), (x2, li));
                let e = rel(gy, fd(|v| loss(&raw, v), y));
                assert!(
                    e < 1e-6,
                    "{o:?} y={y}: dL/dy {gy} vs {}",
                    fd(|v| loss(&raw, v), y)
                );
                worst.inv_y = worst.inv_y.max(e);
                for q in 0..p {
                    let f = fd(
                        |v| {
                            let mut r = raw.clone();
                            r[q] = v;
                            loss(&r, y)
                        },
                        raw[q],
                    );
                    let e = rel(g_raw[q], f);
                    assert!(e < 1e-6, "{o:?} y={y} param {q}: {} vs {f}", g_raw[q]);
                    worst.inv_params = worst.inv_params.max(e);
                }
            }
        }
    }
    assert!(n_inside > 500 && n_steep < n_inside / 5, "{n_inside} {n_steep}");
    std::eprintln!("spline kernel worst ({n_inside} inside points, {n_steep} steep): {worst:?}");
}

/// ±B, the last knot, and one ULP either side of each, in f64 and f32.
fn edge_points(o: &SplineOpts, xs_end: f64) -> Vec<f64> {
    let b = o.bound;
    let mut v = Vec::new();
    for c in [b, -b, xs_end, 0.0] {
        v.push(c);
        v.push(f64::from_bits(c.to_bits() + 1));
        if c != 0.0 {
            v.push(f64::from_bits(c.to_bits() - 1));
        }
        let c32 = c as f32;
        for u in [
            f32::from_bits(c32.to_bits() + 1),
            f32::from_bits(c32.to_bits().saturating_sub(1)),
        ] {
            v.push(u as f64);
        }
    }
    v
}

fn check_finite<S: Real>(o: &SplineOpts, raw: &[S], v: S) {
    let mut kn = vec![S::ZERO; o.knots_len()];
    o.knots(raw, &mut kn);
    let (y, l) = o.forward(&kn, v);
    let (x, li) = o.inverse(&kn, v);
    assert!(
        y.is_finite() && l.is_finite() && x.is_finite() && li.is_finite(),
        "{o:?} {v:?}"
    );
    let mut g = vec![S::ZERO; o.params_per_feature()];
    let mut s = vec![S::ZERO; o.vjp_scratch_len()];
    let (_, _, gx) = o.forward_vjp(raw, v, S::ONE, S::ONE, &mut g, &mut s);
    assert!(gx.is_finite() && g.iter().all(|g| g.is_finite()), "{o:?} {v:?}");
    let (_, _, gy) = o.inverse_vjp(raw, v, S::ONE, S::ONE, &mut g, &mut s);
    assert!(gy.is_finite() && g.iter().all(|g| g.is_finite()), "{o:?} {v:?}");
    // Near the bound the output stays near the bound.
    let b = S::from_f64(o.bound);
    let tol = S::from_f64(1e-4) * b;
    if v.abs() <= b {
        assert!(
            y.abs() <= b + tol && x.abs() <= b + tol,
            "{o:?} {v:?} -> {y:?} {x:?}"
        );
    }
}

#[test]
fn kernel_is_finite_at_and_around_the_bound_in_f32_and_f64() {
    let mut rng = Lcg(5);
    for o in all_opts() {
        for scale in [0.0, 1.0, 4.0] {
            let raw: Vec<f64> = (0..o.params_per_feature())
                .map(|_| rng.normal() * scale)
                .collect();
            let kn = knots_of(&o, &raw);
            let raw32: Vec<f32> = raw.iter().map(|&r| r as f32).collect();
            let mut kn32 = vec![0.0f32; o.knots_len()];
            o.knots(&raw32, &mut kn32);
            let n = o.bins + 1;
            let mut pts = edge_points(&o, kn[n - 1]);
            pts.extend(edge_points(&o, kn32[n - 1] as f64));
            pts.extend(edge_points(&o, kn[2 * n - 1]));
            for &v in &pts {
                check_finite(&o, &raw, v);
                check_finite(&o, &raw32, v as f32);
            }
        }
    }
}

#[test]
fn f32_inverse_never_nan() {
    let mut rng = Lcg(17);
    for o in all_opts() {
        let n = o.bins + 1;
        for _ in 0..20 {
            let raw: Vec<f32> = (0..o.params_per_feature())
                .map(|_| (rng.normal() * 4.0) as f32)
                .collect();
            let mut kn = vec![0.0f32; o.knots_len()];
            o.knots(&raw, &mut kn);
            let mut ys: Vec<f32> = (0..200)
                .map(|_| ((2.0 * rng.uniform() - 1.0) * o.bound) as f32)
                .collect();
            for &k in &kn[n..2 * n] {
                ys.extend([
                    k,
                    f32::from_bits(k.to_bits() + 1),
                    f32::from_bits(k.to_bits() - 1),
                ]);
            }
            for &y in &ys {
                let (x, l) = o.inverse(&kn, y);
                assert!(x.is_finite() && l.is_finite(), "{o:?} y={y}: {x} {l}");
                let (y2, _) = o.forward(&kn, x);
                assert!((y2 - y).abs() < 1e-3 * o.bound as f32, "{o:?} y={y}: {y2}");
            }
        }
    }
}

#[test]
fn far_tails_are_the_identity_with_zero_gradients() {
    let mut rng = Lcg(23);
    for o in all_opts() {
        let p = o.params_per_feature();
        let raw: Vec<f64> = (0..p).map(|_| rng.normal() * 2.0).collect();
        let kn = knots_of(&o, &raw);
        let mut s = vec![0.0; o.vjp_scratch_len()];
        let b = o.bound;
        for v in [
            1.001 * b,
            -1.001 * b,
            10.0 * b,
            -1e6,
            1e300,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            assert_eq!(o.forward(&kn, v), (v, 0.0));
            assert_eq!(o.inverse(&kn, v), (v, 0.0));
            let mut g = vec![1.0; p];
            assert_eq!(o.forward_vjp(&raw, v, 0.3, 0.7, &mut g, &mut s), (v, 0.0, 0.3));
            assert!(g.iter().all(|&g| g == 0.0));
            let mut g = vec![1.0; p];
            assert_eq!(o.inverse_vjp(&raw, v, 0.3, 0.7, &mut g, &mut s), (v, 0.0, 0.3));
            assert!(g.iter().all(|&g| g == 0.0));
        }
        let (y, l) = o.forward(&kn, f64::NAN);
        assert!(y.is_nan() && l.is_nan());
        let (x, l) = o.inverse(&kn, f64::NAN);
        assert!(x.is_nan() && l.is_nan());
    }
}

#[test]
fn monotonic_and_continuous_across_the_bound() {
    let mut rng = Lcg(29);
    for o in all_opts() {
        let raw: Vec<f64> = (0..o.params_per_feature()).map(|_| rng.normal() * 2.0).collect();
        let kn = knots_of(&o, &raw);
        let raw32: Vec<f32> = raw.iter().map(|&r| r as f32).collect();
        let mut kn32 = vec![0.0f32; o.knots_len()];
        o.knots(&raw32, &mut kn32);
        let b = o.bound;
        let m = 4000;
        let (mut py, mut px, mut py32) = (f64::NEG_INFINITY, f64::NEG_INFINITY, f32::NEG_INFINITY);
        for i in 0..=m {
            let v = -1.5 * b + 3.0 * b * i as f64 / m as f64;
            let (y, _) = o.forward(&kn, v);
            let (x, _) = o.inverse(&kn, v);
            let (y32, _) = o.forward(&kn32, v as f32);
            assert!(y > py && x > px && y32 >= py32, "{o:?} at {v}");
            // Continuous: steps stay below the largest slope times the grid step.
            if i > 0 {
                assert!(y - py < 3.0 * b / m as f64 / 1e-4 && x - px < 3.0 * b / m as f64 / 1e-4);
            }
            (py, px, py32) = (y, x, y32);
        }
    }
}

#[test]
fn conventions_of_each_kind() {
    let mut rng = Lcg(31);
    for o in all_opts() {
        let (kb, n, b) = (o.bins, o.bins + 1, o.bound);
        let p = o.params_per_feature();
        match o.kind {
            SplineKind::FlowJax { .. } => assert_eq!(p, 3 * kb + 1),
            _ => assert_eq!(p, 3 * kb - 1),
        }
        // Zero parameters: uniform knots; zuko and FlowJAX are then the identity.
        let kn = knots_of(&o, &vec![0.0; p]);
        for j in 0..n {
            let u = -b + 2.0 * b * j as f64 / kb as f64;
            assert!(
                (kn[j] - u).abs() < 1e-12 && (kn[n + j] - u).abs() < 1e-12,
                "{o:?}"
            );
        }
        let d = &kn[2 * n..];
        match o.kind {
            SplineKind::Nflows { min_derivative, .. } => {
                assert!((d[0] - 1.0).abs() < 1e-14 && (d[kb] - 1.0).abs() < 1e-14);
                for &dj in &d[1..kb] {
                    assert!((dj - (min_derivative + 2f64.ln())).abs() < 1e-14);
                }
            }
            _ => {
                assert!(d.iter().all(|&dj| (dj - 1.0).abs() < 1e-14), "{o:?} {d:?}");
                for x in [-0.9 * b, -0.1 * b, 0.3 * b, 0.77 * b] {
                    let (y, l) = o.forward(&kn, x);
                    assert!((y - x).abs() < 1e-12 && l.abs() < 1e-12);
                }
            }
        }
        // Knot ends: exact ±B for nflows and FlowJAX; zuko's x₀ = −B and x_K ≈ B.
        let raw: Vec<f64> = (0..p).map(|_| rng.normal() * 3.0).collect();
        let kn = knots_of(&o, &raw);
        assert_eq!((kn[0], kn[n]), (-b, -b));
        match o.kind {
            SplineKind::Zuko { .. } => assert!((kn[kb] - b).abs() < 1e-14 * b),
            _ => assert_eq!((kn[kb], kn[n + kb]), (b, b)),
        }
        // Boundary derivatives: 1 for zuko and nflows, learned for FlowJAX.
        let d = &kn[2 * n..];
        match o.kind {
            SplineKind::FlowJax { min_derivative, .. } => {
                let c = (1.0 - min_derivative) + (-(-(1.0 - min_derivative)).exp_m1()).ln();
                let sp = |v: f64| (1.0 + v.exp()).ln();
                assert!((d[0] - (sp(raw[2 * kb] + c) + min_derivative)).abs() < 1e-12);
                assert!((d[kb] - (sp(raw[3 * kb] + c) + min_derivative)).abs() < 1e-12);
            }
            _ => assert!((d[0] - 1.0).abs() < 1e-14 && (d[kb] - 1.0).abs() < 1e-14),
        }
        // Exactly at the bounds.
        let (y, l) = o.forward(&kn, -b);
        assert_eq!(y, -b);
        match o.kind {
            SplineKind::Zuko { .. } => assert_eq!(l, 0.0),
            _ => assert!((l - d[0].ln()).abs() < 1e-12),
        }
        let (y, l) = o.forward(&kn, b);
        assert!((y - b).abs() < 1e-14 * b, "{o:?} {y}");
        assert!((l - d[kb].ln()).abs() < 1e-9 || l == 0.0, "{o:?} {l}");
    }
}

#[test]
fn bins_follow_each_library_at_knots() {
    // A knot value belongs to the bin on its left for zuko and FlowJAX (searchsorted "left"),
    // on its right for nflows (count of knots ≤ x).
    let mut rng = Lcg(37);
    for o in all_opts().into_iter().filter(|o| o.bins >= 3) {
        let raw: Vec<f64> = (0..o.params_per_feature()).map(|_| rng.normal()).collect();
        let kn = knots_of(&o, &raw);
        let n = o.bins + 1;
        let (inside, k) = o.prepare::<f64>().locate(&kn[..n], kn[2]);
        assert!(inside);
        match o.kind {
            SplineKind::Nflows { .. } => assert_eq!(k, 2),
            _ => assert_eq!(k, 1),
        }
        assert_eq!(o.prepare::<f64>().locate(&kn[..n], kn[n - 1]), (true, o.bins - 1));
        let lo = o.prepare::<f64>().locate(&kn[..n], -o.bound);
        match o.kind {
            SplineKind::Zuko { .. } => assert!(!lo.0),
            _ => assert_eq!(lo, (true, 0)),
        }
    }
}

#[test]
fn options_validate_and_serialize() {
    assert!(SplineOpts::zuko(8, 5.0, 1e-3).is_valid());
    assert!(SplineOpts::nflows(8, 3.0, 1.0 / 32f64.sqrt()).is_valid());
    assert!(SplineOpts::flowjax(9, 4.0).is_valid());
    assert!(!SplineOpts::zuko(0, 5.0, 1e-3).is_valid());
    assert!(!SplineOpts::zuko(8, 5.0, 1.0).is_valid());
    assert!(!SplineOpts::zuko(8, f64::NAN, 1e-3).is_valid());
    let mut o = SplineOpts::nflows(8, 3.0, 1.0);
    o.kind = SplineKind::Nflows {
        min_bin_width: 0.2,
        min_bin_height: 1e-3,
        min_derivative: 1e-3,
    };
    assert!(!o.is_valid());
    let o = SplineOpts::flowjax(9, 4.0);
    let bytes = postcard::to_allocvec(&o).unwrap();
    assert_eq!(postcard::from_bytes::<SplineOpts>(&bytes).unwrap(), o);
}
