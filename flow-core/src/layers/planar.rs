//! Planar flow (Rezende & Mohamed 2015), defined in the sampling direction as normflows' `Planar`:
//!
//! `x = f(z) = z + û h(wᵀz + b)`,   `h = tanh`,
//!
//! with the invertibility constraint (their appendix A)
//!
//! `û = u + (m(wᵀu) − wᵀu) w / |w|²`,   `m(a) = −1 + softplus(a)`,
//!
//! so that `wᵀû = m(wᵀu) > −1` and `f` is strictly monotone along `w`.
//!
//! - [`Bijection::forward`] (base → data) is the closed form above, with
//!   log|det ∂x/∂z| = ln(1 + h'(wᵀz + b) wᵀû).
//! - [`Bijection::inverse`] (data → base) solves for `α = wᵀz` (with `c = wᵀû`, `y = wᵀx`)
//!   `α + c h(α + b) = y` (strictly increasing in α), then `z = x − û h(α + b)`;
//!   log|det ∂z/∂x| = −ln(1 + h'(α + b) c).
//!
//! The 1-D root solve is a safeguarded Newton iteration (Newton steps inside a shrinking bracket,
//! bisection whenever Newton leaves the bracket or stalls) started from the bracket
//! `[y − |c|, y + |c|]`, which holds the root because |h| < 1. It stops at machine precision or
//! after [`MAX_ITER`] iterations, so it always terminates, and for finite inputs it returns a
//! finite α inside the bracket, never NaN. Near-singular parameters (`c → −1`, where
//! `f'` vanishes at `α = −b`) only slow it down to bisection speed.
//!
//! `1 + c h'` is evaluated as `h² + softplus(wᵀu) h'` (both terms ≥ 0), which is exact even when
//! `c` is within rounding of −1; `softplus(wᵀu)` is floored at ε⁴ of the scalar type (where it
//! would underflow, `wᵀu` below about −140 in f64), so that `1 + c h' > 0` always holds in floating
//! point and the log-determinant and gradients stay finite even on the near-singular set. At `w = 0` (exactly) the constraint is undefined; the layer then
//! uses `û = u`, which makes it the translation `x = z + u tanh(b)`.
//!
//! The VJP of the inverse differentiates through the root implicitly (`dα/dy = 1/(1 + c h')`,
//! `dα/dc = −h/(1 + c h')`, `dα/db = −c h'/(1 + c h')`).
//!
//! Parameters, `2D + 1` long: `[u (D), w (D), b]` (normflows' `u`, `w`, `b`).

use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::{math, slicing, Real, Weight};

/// Iteration cap of the root solve (bisection alone halves the bracket each step).
pub const MAX_ITER: usize = 100;

/// A planar layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Planar<'a, W> {
    /// `[u (D), w (D), b]`; the dimension is `(params.len() − 1) / 2`.
    pub params: &'a [W],
}

/// Scalars derived from the parameters.
#[derive(Clone, Copy, Debug)]
struct Coefs<S> {
    /// `s = wᵀu`.
    s: S,
    /// `n = |w|²`.
    n: S,
    /// `c = wᵀû = m(s)`.
    c: S,
    /// `1 + c = softplus(s)` (computed directly, so it stays exact near c = −1).
    sp: S,
    /// `k = (m(s) − s) / n`, so `û = u + k w` (0 when `n = 0`).
    k: S,
    /// `b`.
    b: S,
}

/// `(tanh t, tanh' t = 1 − tanh² t)`, the derivative computed as `4e/(1 + e)²` with `e = e^{−2|t|}`
/// (no cancellation for large |t|).
#[inline]
fn tanh_d<S: Real>(t: S) -> (S, S) {
    let e = (-(S::from_f64(2.0) * t.abs())).exp();
    let one_e = S::ONE + e;
    (t.tanh(), S::from_f64(4.0) * e / (one_e * one_e))
}

/// Solves `α + c tanh(α + b) = y` for α, where `1 + c = sp ≥ 0` (see the module docs).
///
/// Returns `y` unchanged when `c = 0` or `y` is not finite (NaN propagates). For finite inputs
/// (with `|y| + |c|` below overflow) the result is finite, inside `[y − |c|, y + |c|]`.
pub fn solve_alpha<S: Real>(y: S, c: S, sp: S, b: S) -> S {
    if !y.is_finite() || c == S::ZERO || !c.is_finite() {
        return y;
    }
    let eval = |a: S| {
        let (h, hp) = tanh_d(a + b);
        // g(α) and g'(α) = 1 + c h' = h² + (1 + c) h'.
        (a + c * h - y, h * h + sp * hp)
    };
    let half = S::from_f64(0.5);
    let (mut lo, mut hi) = (y - c.abs(), y + c.abs());
    // A first guess inside the bracket: one fixed-point step from α = y.
    let mut a = y - c * (y + b).tanh();
    if !(a >= lo && a <= hi) {
        a = half * (lo + hi);
    }
    let (mut g, mut dg) = eval(a);
    let mut dx_old = hi - lo;
    for _ in 0..MAX_ITER {
        if g < S::ZERO {
            lo = a;
        } else if g > S::ZERO {
            hi = a;
        } else {
            return a;
        }
        // Newton if it stays strictly inside the bracket and shrinks faster than bisection
        // would (|step| ≤ half the step before), else bisection.
        let nt = a - g / dg;
        let newton = dg > S::ZERO && nt > lo && nt < hi && (g + g).abs() <= (dx_old * dg).abs();
        let next = if newton { nt } else { lo + half * (hi - lo) };
        if !(next > lo && next < hi) {
            // lo and hi are adjacent floats: α is known to the last bit.
            return a;
        }
        dx_old = next - a;
        a = next;
        if newton && dx_old.abs() <= S::EPSILON * (S::ONE + a.abs()) {
            // Quadratic convergence: the step just taken is below rounding.
            return a;
        }
        (g, dg) = eval(a);
    }
    a
}

/// Floor of `softplus(wᵀu) = 1 + c`: ε⁴ (f64 ≈ 2.4e−63, f32 ≈ 1.9e−28).
#[inline(always)]
fn sp_floor<S: Real>() -> S {
    let e2 = S::EPSILON * S::EPSILON;
    e2 * e2
}

impl<'a, W: Weight> Planar<'a, W> {
    fn d(&self) -> usize {
        self.params.len().saturating_sub(1) / 2
    }

    /// `(u, w)`, D values each.
    #[inline(always)]
    fn uw(&self) -> (&'a [W], &'a [W]) {
        let (u, rest) = slicing::split(self.params, self.d());
        (u, slicing::head(rest, self.d()))
    }

    /// The scalars of the map, from `(u, w)` ([`Planar::uw`]).
    fn coefs<S: Real>(&self, (u, w): (&[W], &[W])) -> Coefs<S> {
        let (mut s, mut n) = (S::ZERO, S::ZERO);
        for (u, w) in u.iter().zip(w) {
            let w: S = w.get();
            s += w * u.get::<S>();
            n += w * w;
        }
        let b = slicing::weight(self.params, 2 * self.d());
        if n == S::ZERO {
            return Coefs {
                s,
                n,
                c: S::ZERO,
                sp: S::ONE,
                k: S::ZERO,
                b,
            };
        }
        let sp = math::softplus(s).max(sp_floor());
        // m(s) − s = softplus(s) − s − 1 = softplus(−s) − 1.
        Coefs {
            s,
            n,
            c: sp - S::ONE,
            sp,
            k: (math::softplus(-s) - S::ONE) / n,
            b,
        }
    }
}

/// `û = u + k w` from `(u, w)`, one `(ûᵢ, uᵢ, wᵢ)` per feature.
#[inline(always)]
fn u_hat<'c, S: Real, W: Weight>(
    (u, w): (&'c [W], &'c [W]),
    co: &'c Coefs<S>,
) -> impl Iterator<Item = (S, S, S)> + 'c {
    u.iter().zip(w).map(|(u, w)| {
        let (u, w): (S, S) = (u.get(), w.get());
        (u + co.k * w, u, w)
    })
}

/// `wᵀv`.
#[inline]
fn w_dot<S: Real, W: Weight>(w: &[W], v: &[S]) -> S {
    let mut acc = S::ZERO;
    for (&vi, w) in v.iter().zip(w) {
        acc += w.get::<S>() * vi;
    }
    acc
}

impl<'a, S: Real, W: Weight> Bijection<S> for Planar<'a, W> {
    fn dim(&self) -> usize {
        self.d()
    }

    fn n_params(&self) -> usize {
        self.params.len()
    }

    fn scratch_len(&self) -> usize {
        0
    }

    /// Root solve for `α = wᵀz`, then `z = x − û h(α + b)`; returns `−ln(1 + c h'(α + b))`.
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], _scratch: &mut [S]) -> S {
        let uw = self.uw();
        let co = self.coefs::<S>(uw);
        let alpha = solve_alpha(w_dot(uw.1, x), co.c, co.sp, co.b);
        let (h, hp) = tanh_d(alpha + co.b);
        for ((zi, &xi), (uh, _, _)) in z.iter_mut().zip(x).zip(u_hat(uw, &co)) {
            *zi = xi - uh * h;
        }
        -(h * h + co.sp * hp).ln()
    }

    /// `x = z + û h(wᵀz + b)`; returns `ln(1 + c h'(wᵀz + b))`.
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        let uw = self.uw();
        let co = self.coefs::<S>(uw);
        let (h, hp) = tanh_d(w_dot(uw.1, z) + co.b);
        for ((xi, &zi), (uh, _, _)) in x.iter_mut().zip(z).zip(u_hat(uw, &co)) {
            *xi = zi + uh * h;
        }
        (h * h + co.sp * hp).ln()
    }

    /// Implicit differentiation through the root (see the module docs). With `t = α + b`,
    /// `q = 1 + c h'(t)` and `L_t = −(g_zᵀû) h' − g_ℓ c h''/q`: `g_x = g_z + (L_t / q) w`;
    /// `∂L/∂b = L_t / q`, `∂L/∂c = −g_ℓ h'/q − L_t h/q`, `∂L/∂û = −g_z h`, chained through
    /// `c = m(wᵀu)` and `û = u + k(wᵀu, |w|²) w` to `u` and `w`.
    fn inverse_vjp(
        &self,
        x: &[S],
        _ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        _scratch: &mut [S],
    ) {
        let (g_z, g_ldj) = cot.into_parts();
        let (g_x, _g_ctx, g_params) = grads.into_parts();
        let uw = self.uw();
        let co = self.coefs::<S>(uw);
        let alpha = solve_alpha(w_dot(uw.1, x), co.c, co.sp, co.b);
        let (h, hp) = tanh_d(alpha + co.b);
        let q = h * h + co.sp * hp;
        let hpp = -(S::from_f64(2.0) * h * hp);
        let mut gu = S::ZERO;
        for (&g, (uh, _, _)) in g_z.iter().zip(u_hat(uw, &co)) {
            gu += g * uh;
        }
        let l_t = -(gu * hp) - g_ldj * co.c * hpp / q;
        let y_bar = l_t / q;
        for ((gx, &gz), w) in g_x.iter_mut().zip(g_z).zip(uw.1) {
            *gx = gz + y_bar * w.get::<S>();
        }
        let Some(gp) = g_params else { return };
        let c_bar = -(g_ldj * hp / q) - l_t * h / q;
        // P = (∂L/∂û)ᵀ w with ∂L/∂û = −g_z h.
        let p = -(h * w_dot(uw.1, g_z));
        let (dc_ds, dk_ds, dk_dn) = if co.n == S::ZERO {
            (S::ONE, S::ZERO, S::ZERO)
        } else {
            (
                math::sigmoid(co.s),
                -(math::sigmoid(-co.s) / co.n),
                -(co.k / co.n),
            )
        };
        // ∂L/∂s (s = wᵀu), through c and k.
        let a = c_bar * dc_ds + p * dk_ds;
        let two_p_dkdn = S::from_f64(2.0) * p * dk_dn;
        let (g_u, rest) = slicing::split_mut(gp, self.d());
        let (g_w, g_b) = slicing::split_mut(rest, self.d());
        let grads = g_u.iter_mut().zip(g_w.iter_mut());
        for (((gu, gw), (&gz, &xi)), (_, u, w)) in grads.zip(g_z.iter().zip(x)).zip(u_hat(uw, &co)) {
            let uh_bar = -(gz * h);
            *gu += uh_bar + a * w;
            *gw += y_bar * xi + a * u + co.k * uh_bar + two_p_dkdn * w;
        }
        slicing::add_at(g_b, 0, y_bar);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    use super::*;
    use crate::testing::{builder, check_bijection, Lcg, Report};

    fn build_box() -> impl for<'a> Fn(&'a [f64]) -> Box<dyn Bijection<f64> + 'a> {
        builder(|p| Box::new(Planar { params: p }))
    }

    #[test]
    fn planar_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for seed in 0..6u64 {
            let mut rng = Lcg(700 + seed);
            for d in [1usize, 2, 3, 5] {
                let params = rng.normals(2 * d + 1);
                let x: Vec<f64> = rng.normals(d).iter().map(|v| 1.5 * v).collect();
                let r = check_bijection(&build_box(), &params, &x, &[]);
                assert!(
                    r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                    "d={d} {params:?}: {r:?}"
                );
                assert!(r.max_fd() < 1e-6, "d={d} {params:?} {x:?}: {r:?}");
                worst.merge(&r);
            }
        }
        std::eprintln!("planar worst: {worst:?}");
    }

    /// Parameters with `wᵀu = s`, so `c = wᵀû = −1 + softplus(s)`.
    fn with_s(d: usize, s: f64, b: f64, rng: &mut Lcg) -> Vec<f64> {
        let w = rng.normals(d);
        let n: f64 = w.iter().map(|v| v * v).sum();
        // u = (s / n) w + (a component orthogonal to w).
        let mut v = rng.normals(d);
        let vw: f64 = v.iter().zip(&w).map(|(a, b)| a * b).sum();
        for (vi, wi) in v.iter_mut().zip(&w) {
            *vi -= vw / n * wi;
        }
        let mut p: Vec<f64> = w.iter().zip(&v).map(|(wi, vi)| s / n * wi + 0.5 * vi).collect();
        p.extend(&w);
        p.push(b);
        p
    }

    #[test]
    fn planar_near_singular_parameters_converge_without_nan() {
        let mut worst = Report::default();
        let mut worst_extreme = Report::default();
        for seed in 0..4u64 {
            let mut rng = Lcg(750 + seed);
            for d in [1usize, 2, 3, 5] {
                // c = −1 + softplus(s): s = −5 → c ≈ −0.9933, s = −30 → c = −1 + 9e−14,
                // s = −800 → softplus underflows, c = −1 exactly; s = 40 → c ≈ 39.
                for s in [-5.0, -30.0, -800.0, 40.0] {
                    let b = rng.normal();
                    let params = with_s(d, s, b, &mut rng);
                    let layer = Planar { params: &params[..] };
                    // Points whose projection sits on or near the flat spot wᵀz + b = 0.
                    for off in [0.0, 1e-9, -1e-4, 0.3, -2.0, 50.0] {
                        let mut z = rng.normals(d);
                        let w = &params[d..2 * d];
                        let n: f64 = w.iter().map(|v| v * v).sum();
                        let t: f64 = z.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + b;
                        for (zi, wi) in z.iter_mut().zip(w) {
                            *zi += (off - t) / n * wi;
                        }
                        let mut x = std::vec![0.0; d];
                        let ldj_f = layer.forward(&z, &[], &mut x, &mut []);
                        let mut z2 = std::vec![0.0; d];
                        let ldj = layer.inverse(&x, &[], &mut z2, &mut []);
                        assert!(
                            !ldj.is_nan() && z2.iter().all(|v| v.is_finite()),
                            "s={s} off={off}"
                        );
                        // The root is exact in x-space.
                        let mut x2 = std::vec![0.0; d];
                        layer.forward(&z2, &[], &mut x2, &mut []);
                        for i in 0..d {
                            assert!(
                                (x2[i] - x[i]).abs() < 1e-12 * (1.0 + x[i].abs()),
                                "s={s} off={off}"
                            );
                        }
                        if s > -10.0 || off.abs() > 0.1 {
                            // Well enough conditioned: z itself is recovered and log-dets cancel.
                            for i in 0..d {
                                assert!(
                                    (z2[i] - z[i]).abs() < 1e-8 * (1.0 + z[i].abs()),
                                    "s={s} off={off}"
                                );
                            }
                            assert!((ldj + ldj_f).abs() < 1e-8, "s={s} off={off}: {ldj} {ldj_f}");
                        }
                        // Gradients stay finite.
                        let mut gx = std::vec![0.0; d];
                        let mut gp = std::vec![0.0; params.len()];
                        layer.inverse_vjp(
                            &x,
                            &[],
                            Cotangent::new(&z, 0.7),
                            Grads::new(&mut gx, &mut [], Some(&mut gp)),
                            &mut [],
                        );
                        assert!(gx.iter().chain(&gp).all(|v| !v.is_nan()), "s={s} off={off}");
                        // Finite differences where the Jacobian is not near-singular.
                        if s == -5.0 || s == 40.0 || (s == -30.0 && off.abs() > 0.1) {
                            let r = check_bijection(&build_box(), &params, &x, &[]);
                            assert!(r.roundtrip < 1e-10, "s={s} off={off}: {r:?}");
                            if s == -5.0 && off.abs() < 0.1 {
                                // q = 1 + c h' ≈ 0.0067: FD truncation error is larger here.
                                assert!(r.max_fd() < 1e-5, "s={s} off={off}: {r:?}");
                                worst_extreme.merge(&r);
                            } else {
                                assert!(r.max_fd() < 1e-6, "s={s} off={off}: {r:?}");
                                worst.merge(&r);
                            }
                        }
                    }
                }
            }
        }
        std::eprintln!("planar ill-conditioned worst: {worst:?}");
        std::eprintln!("planar near-singular (q ≈ 0.007) worst: {worst_extreme:?}");
    }

    #[test]
    fn planar_vjp_matches_extrapolated_differences_near_singular() {
        // At q = 1 + c h' ≈ 0.007 plain central differences with h = 1e-6 are off by ~1e-5
        // (truncation: the higher derivatives scale like powers of 1/q); Richardson extrapolation
        // of steps 1e-7 and 5e-8 confirms the analytic VJP.
        let mut worst: f64 = 0.0;
        for seed in 0..4u64 {
            let mut rng = Lcg(760 + seed);
            for d in [1usize, 2, 3, 5] {
                let b = rng.normal();
                let params = with_s(d, -5.0, b, &mut rng);
                let w = &params[d..2 * d];
                let n: f64 = w.iter().map(|v| v * v).sum();
                let mut z = rng.normals(d);
                let t: f64 = z.iter().zip(w).map(|(a, b)| a * b).sum::<f64>() + b;
                for (zi, wi) in z.iter_mut().zip(w) {
                    *zi += (1e-3 - t) / n * wi;
                }
                let mut x = std::vec![0.0; d];
                Planar { params: &params[..] }.forward(&z, &[], &mut x, &mut []);
                let (gz, gl) = (rng.normals(d), 0.7);
                let loss = |p: &[f64], x: &[f64]| {
                    let mut z = std::vec![0.0; d];
                    let l = Planar { params: p }.inverse(x, &[], &mut z, &mut []);
                    z.iter().zip(&gz).map(|(a, b)| a * b).sum::<f64>() + gl * l
                };
                let mut gx = std::vec![0.0; d];
                let mut gp = std::vec![0.0; params.len()];
                Planar { params: &params[..] }.inverse_vjp(
                    &x,
                    &[],
                    Cotangent::new(&gz, gl),
                    Grads::new(&mut gx, &mut [], Some(&mut gp)),
                    &mut [],
                );
                let rich = |f: &dyn Fn(f64) -> f64| {
                    let cd = |h: f64| (f(h) - f(-h)) / (2.0 * h);
                    (4.0 * cd(5e-8) - cd(1e-7)) / 3.0
                };
                for k in 0..params.len() {
                    let fd = rich(&|e| {
                        let mut p = params.clone();
                        p[k] += e;
                        loss(&p, &x)
                    });
                    worst = worst.max((gp[k] - fd).abs() / (1.0 + fd.abs()));
                }
                for j in 0..d {
                    let fd = rich(&|e| {
                        let mut xx = x.clone();
                        xx[j] += e;
                        loss(&params, &xx)
                    });
                    worst = worst.max((gx[j] - fd).abs() / (1.0 + fd.abs()));
                }
            }
        }
        std::eprintln!("planar near-singular VJP vs Richardson: {worst:e}");
        assert!(worst < 1e-6, "{worst}");
    }

    #[test]
    fn planar_root_solve_is_exact_and_never_nan() {
        let mut rng = Lcg(7);
        for _ in 0..2000 {
            let s = rng.normal() * 20.0;
            let sp = math::softplus(s);
            let c = sp - 1.0;
            let b = rng.normal() * 3.0;
            let y = rng.normal() * [1.0, 1e3, 1e-6][(rng.uniform() * 3.0) as usize];
            let a = solve_alpha(y, c, sp, b);
            assert!(a.is_finite());
            let g = a + c * (a + b).tanh() - y;
            assert!(
                g.abs() <= 1e-13 * (1.0 + y.abs() + c.abs()),
                "y={y} c={c} b={b}: g={g}"
            );
            let a32 = solve_alpha(y as f32, c as f32, sp as f32, b as f32);
            assert!(a32.is_finite());
        }
        assert!(solve_alpha(f64::NAN, 0.5, 1.5, 0.0).is_nan());
        assert_eq!(solve_alpha(f64::INFINITY, 0.5, 1.5, 0.0), f64::INFINITY);
        assert!(solve_alpha(1e300, 1e300, 1e300, 0.0).is_finite());
    }

    #[test]
    fn planar_matches_normflows_formula_and_w_zero_is_a_translation() {
        let p = [0.3f64, -0.7, 1.1, 0.4, -0.2];
        let l = Planar { params: &p[..] };
        let (u, w, b) = ([0.3, -0.7], [1.1, 0.4], -0.2);
        let inner = u[0] * w[0] + u[1] * w[1];
        let n = w[0] * w[0] + w[1] * w[1];
        let f = ((1.0f64 + inner.exp()).ln() - 1.0 - inner) / n;
        let uh = [u[0] + f * w[0], u[1] + f * w[1]];
        let z = [0.5, -1.5];
        let lin = w[0] * z[0] + w[1] * z[1] + b;
        let mut x = [0.0; 2];
        let ldj = l.forward(&z, &[], &mut x, &mut []);
        assert!((x[0] - (z[0] + uh[0] * lin.tanh())).abs() < 1e-14);
        assert!((x[1] - (z[1] + uh[1] * lin.tanh())).abs() < 1e-14);
        let wu = w[0] * uh[0] + w[1] * uh[1];
        assert!((ldj - (1.0 + wu * (1.0 - lin.tanh().powi(2))).abs().ln()).abs() < 1e-14);
        // w = 0: x = z + u tanh(b).
        let p0 = [0.3f64, -0.7, 0.0, 0.0, 0.5];
        let l0 = Planar { params: &p0[..] };
        let ldj = l0.forward(&z, &[], &mut x, &mut []);
        assert_eq!(ldj, 0.0);
        assert!((x[0] - (0.5 + 0.3 * 0.5f64.tanh())).abs() < 1e-15);
        let mut z2 = [0.0; 2];
        assert_eq!(l0.inverse(&x, &[], &mut z2, &mut []), 0.0);
        assert!((z2[0] - z[0]).abs() < 1e-15 && (z2[1] - z[1]).abs() < 1e-15);
    }
}
