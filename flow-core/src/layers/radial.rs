//! Radial flow (Rezende & Mohamed 2015), defined in the sampling direction as normflows' `Radial`:
//!
//! `x = f(z) = z + β h(α, r) (z − z₀)`,   `h = 1/(α + r)`,   `r = |z − z₀|`,
//!
//! with `α = softplus(α̃) > 0` and `β = −α + softplus(β̃) > −α` (invertibility). Writing
//! `P = α + β = softplus(β̃)`, the map scales `z − z₀` by `(P + r)/(α + r)`.
//!
//! - [`Bijection::forward`] (base → data): the closed form above, with
//!   log|det ∂x/∂z| = (D − 1) ln(1 + βh) + ln(1 + βh + βh'r)
//!   = (D − 1) ln((P + r)/(α + r)) + ln(1 + βα/(α + r)²).
//! - [`Bijection::inverse`] (data → base): with `e = x − z₀` and `ρ = |e|`, the radius `r` of the
//!   preimage solves the 1-D equation `r (P + r)/(α + r) = ρ`, strictly increasing in `r ≥ 0`.
//!   Cleared of its denominator it is the quadratic `r² + (P − ρ) r − αρ = 0`, whose only
//!   non-negative root is taken in closed form, in the branch without cancellation:
//!   `r = (−B + √(B² + 4αρ))/2` if `B = P − ρ ≤ 0`, else `r = 2αρ/(B + √(B² + 4αρ))`. No
//!   iteration is needed, the result is exact to rounding, never NaN for finite inputs, and
//!   `r = 0` at `x = z₀`. Then `z = z₀ + e (α + r)/(P + r)` and log|det ∂z/∂x| is minus the forward
//!   log-det at `r`.
//!
//! `P = α + β` is computed as `softplus(β̃)` directly (exact as β → −α) and, like `α`, floored at
//! ε⁴ of the scalar type (f64 ≈ 2.4e−63, f32 ≈ 1.9e−28), so that the map stays invertible in
//! floating point when the softplus underflows. `1 + βα/(α + r)²` is evaluated as
//! `(αP + 2αr + r²)/(α + r)²` (a sum of non-negative terms).
//!
//! The VJP of the inverse differentiates through the root implicitly
//! (`G(r) = r (P + r)/(α + r) − ρ`, `dr = −(G_ρ dρ + G_α dα + G_P dP)/G_r`).
//!
//! Parameters, `D + 2` long: `[z₀ (D), α̃, β̃]` (normflows stores `α` and `β` and uses `|α|` and
//! `softplus(β) − |α|`; convert with `α̃ = softplus⁻¹(|α|)`, `β̃ = β`).

use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::{math, slicing, Real, Weight};

/// A radial layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Radial<'a, W> {
    /// `[z₀ (D), α̃, β̃]`; the dimension is `params.len() − 2`.
    pub params: &'a [W],
}

/// Scalars derived from the parameters.
#[derive(Clone, Copy, Debug)]
struct Coefs<S> {
    /// α = softplus(α̃).
    alpha: S,
    /// P = α + β = softplus(β̃).
    p: S,
    /// dα/dα̃ (0 where floored).
    d_alpha: S,
    /// dP/dβ̃ (0 where floored).
    d_p: S,
}

/// ε⁴ of the scalar type.
#[inline(always)]
fn floor<S: Real>() -> S {
    let e2 = S::EPSILON * S::EPSILON;
    e2 * e2
}

/// The non-negative root r of `r (P + r)/(α + r) = ρ` (see the module docs).
pub fn solve_radius<S: Real>(rho: S, alpha: S, p: S) -> S {
    let b = p - rho;
    let disc = (b * b + S::from_f64(4.0) * alpha * rho).sqrt();
    if b <= S::ZERO {
        S::from_f64(0.5) * (disc - b)
    } else {
        S::from_f64(2.0) * alpha * rho / (b + disc)
    }
}

impl<'a, W: Weight> Radial<'a, W> {
    fn d(&self) -> usize {
        self.params.len().saturating_sub(2)
    }

    /// `z₀`, D values.
    #[inline(always)]
    fn z0(&self) -> &'a [W] {
        slicing::head(self.params, self.d())
    }

    fn coefs<S: Real>(&self) -> Coefs<S> {
        let d = self.d();
        let (at, bt): (S, S) = (
            slicing::weight(self.params, d),
            slicing::weight(self.params, d + 1),
        );
        let (alpha, p) = (math::softplus(at), math::softplus(bt));
        let fl = floor::<S>();
        Coefs {
            alpha: alpha.max(fl),
            p: p.max(fl),
            d_alpha: if alpha > fl { math::sigmoid(at) } else { S::ZERO },
            d_p: if p > fl { math::sigmoid(bt) } else { S::ZERO },
        }
    }

    /// `|v − z₀|`.
    fn radius<S: Real>(&self, z0: &[W], v: &[S]) -> S {
        let mut acc = S::ZERO;
        for (&vi, z0) in v.iter().zip(z0) {
            let e = vi - z0.get::<S>();
            acc += e * e;
        }
        acc.sqrt()
    }

    /// Forward log-det at radius `r`: `(D − 1) ln((P + r)/(α + r)) + ln q`.
    fn fwd_ldj<S: Real>(&self, co: &Coefs<S>, r: S) -> S {
        let (ar, pr) = (co.alpha + r, co.p + r);
        let num = co.alpha * co.p + r * (co.alpha + ar);
        let dm1 = S::from_f64((self.d() as f64) - 1.0);
        dm1 * (pr.ln() - ar.ln()) + num.ln() - S::from_f64(2.0) * ar.ln()
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for Radial<'a, W> {
    fn dim(&self) -> usize {
        self.d()
    }

    fn n_params(&self) -> usize {
        self.params.len()
    }

    fn scratch_len(&self) -> usize {
        0
    }

    /// `r` from `ρ = |x − z₀|` (closed-form root), `z = z₀ + (x − z₀)(α + r)/(P + r)`; returns
    /// minus the forward log-det at `r`.
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], _scratch: &mut [S]) -> S {
        let (co, z0) = (self.coefs::<S>(), self.z0());
        let rho = self.radius(z0, x);
        let r = solve_radius(rho, co.alpha, co.p);
        let s = (co.alpha + r) / (co.p + r);
        for ((zi, &xi), z0) in z.iter_mut().zip(x).zip(z0) {
            let z0: S = z0.get();
            *zi = z0 + (xi - z0) * s;
        }
        -self.fwd_ldj(&co, r)
    }

    /// `x = z₀ + (z − z₀)(P + r)/(α + r)` with `r = |z − z₀|`.
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        let (co, z0) = (self.coefs::<S>(), self.z0());
        let r = self.radius(z0, z);
        let f = (co.p + r) / (co.alpha + r);
        for ((xi, &zi), z0) in x.iter_mut().zip(z).zip(z0) {
            let z0: S = z0.get();
            *xi = z0 + (zi - z0) * f;
        }
        self.fwd_ldj(&co, r)
    }

    /// Implicit differentiation through the root. With `s = (α + r)/(P + r)`,
    /// `q = G_r = (αP + 2αr + r²)/(α + r)²` and ℓ = (D − 1) ln s − ln q: the direct partials
    /// `L_r, L_α, L_P` (r held fixed) give `ρ̄ = L_r/q`, `ᾱ = L_α + L_r r(P + r)/((α + r)² q)`,
    /// `P̄ = L_P − L_r r/((α + r) q)`; then `g_x = g_z s + ρ̄ e/ρ`, `∂L/∂z₀ = g_z − g_x`,
    /// `∂L/∂α̃ = ᾱ σ(α̃)`, `∂L/∂β̃ = P̄ σ(β̃)`.
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
        let d = self.d();
        let co = self.coefs::<S>();
        let (a, p) = (co.alpha, co.p);
        let z0 = self.z0();
        let rho = self.radius(z0, x);
        let r = solve_radius(rho, a, p);
        let (ar, pr) = (a + r, p + r);
        let s = ar / pr;
        let num = a * p + r * (a + ar);
        let q = num / (ar * ar);
        let two = S::from_f64(2.0);
        // ge = g_zᵀ e.
        let mut ge = S::ZERO;
        for ((&gz, &xi), z0) in g_z.iter().zip(x).zip(z0) {
            ge += gz * (xi - z0.get::<S>());
        }
        let dm1 = S::from_f64((d as f64) - 1.0);
        let l_s = ge + g_ldj * dm1 / s;
        // Partials of s and ln q, r held fixed.
        let pr2 = pr * pr;
        let (s_r, s_a, s_p) = ((p - a) / pr2, S::ONE / pr, -(ar / pr2));
        let lq_r = two * ar / num - two / ar;
        let lq_a = (p + two * r) / num - two / ar;
        let lq_p = a / num;
        let l_r = l_s * s_r - g_ldj * lq_r;
        let l_a = l_s * s_a - g_ldj * lq_a;
        let l_p = l_s * s_p - g_ldj * lq_p;
        let rho_bar = l_r / q;
        let a_bar = l_a + rho_bar * r * pr / (ar * ar);
        let p_bar = l_p - rho_bar * r / ar;
        // ρ̄ e/ρ: at ρ = 0 the direction is undefined (r is not differentiable there); use 0.
        let dir = if rho > S::ZERO { rho_bar / rho } else { S::ZERO };
        for ((gx, (&gz, &xi)), z0) in g_x.iter_mut().zip(g_z.iter().zip(x)).zip(z0) {
            let e = xi - z0.get::<S>();
            *gx = gz * s + dir * e;
        }
        if let Some(gp) = g_params {
            let (g_z0, g_ab) = slicing::split_mut(gp, d);
            for ((gp, &gz), &gx) in g_z0.iter_mut().zip(g_z).zip(g_x.iter()) {
                *gp += gz - gx;
            }
            slicing::add_at(g_ab, 0, a_bar * co.d_alpha);
            slicing::add_at(g_ab, 1, p_bar * co.d_p);
        }
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
        builder(|p| Box::new(Radial { params: p }))
    }

    #[test]
    fn radial_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for seed in 0..6u64 {
            let mut rng = Lcg(800 + seed);
            for d in [1usize, 2, 3, 5] {
                let params = rng.normals(d + 2);
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
        std::eprintln!("radial worst: {worst:?}");
    }

    #[test]
    fn radial_near_singular_parameters_stay_finite_and_invertible() {
        let mut worst = Report::default();
        for seed in 0..4u64 {
            let mut rng = Lcg(850 + seed);
            for d in [1usize, 2, 3, 5] {
                // β̃ → −∞: β → −α (contraction of the ball around z₀ by up to α/P);
                // α̃ → −∞: α → 0; β̃ = −800: softplus underflows (floored).
                for (at, bt) in [
                    (0.5, -5.0),
                    (0.5, -30.0),
                    (0.5, -800.0),
                    (-30.0, 0.3),
                    (-800.0, -800.0),
                    (3.0, 25.0),
                ] {
                    let mut params = rng.normals(d);
                    params.push(at);
                    params.push(bt);
                    let layer = Radial { params: &params[..] };
                    let co = layer.coefs::<f64>();
                    for scale in [0.0, 1e-300, 1e-12, 1e-6, 1e-2, 1.0, 1e3] {
                        let dir = rng.normals(d);
                        let v: Vec<f64> = (0..d).map(|i| params[i] + scale * dir[i]).collect();
                        // Round trip from the side where the map is contracting: near z₀ the
                        // forward map scales by P/α, so with α ≪ P the points z within ulp(z₀)
                        // of z₀ cover a ball of x of radius ~P, and x cannot be recovered.
                        let (mut a, mut b) = (std::vec![0.0; d], std::vec![0.0; d]);
                        let (ldj_1, ldj_2) = if co.alpha >= co.p {
                            let l1 = layer.inverse(&v, &[], &mut a, &mut []);
                            (l1, layer.forward(&a, &[], &mut b, &mut []))
                        } else {
                            let l1 = layer.forward(&v, &[], &mut a, &mut []);
                            (l1, layer.inverse(&a, &[], &mut b, &mut []))
                        };
                        assert!(
                            ldj_1.is_finite() && a.iter().all(|v| v.is_finite()),
                            "{at} {bt} {scale}"
                        );
                        for i in 0..d {
                            assert!(
                                (b[i] - v[i]).abs() < 1e-12 * (1.0 + v[i].abs()),
                                "{at} {bt} {scale}: {b:?} vs {v:?}"
                            );
                        }
                        assert!(
                            (ldj_1 + ldj_2).abs() < 1e-10 * (1.0 + ldj_1.abs()),
                            "{at} {bt} {scale}"
                        );
                        let x = if co.alpha >= co.p { v.clone() } else { a.clone() };
                        let gz = rng.normals(d);
                        let mut gx = std::vec![0.0; d];
                        let mut gp = std::vec![0.0; params.len()];
                        layer.inverse_vjp(
                            &x,
                            &[],
                            Cotangent::new(&gz, 0.7),
                            Grads::new(&mut gx, &mut [], Some(&mut gp)),
                            &mut [],
                        );
                        assert!(gx.iter().chain(&gp).all(|v| v.is_finite()), "{at} {bt} {scale}");
                        // (At |x| ~ 1e3, central differences with h = 1e-6 have ~1e-7 rounding noise.)
                        if (1e-2..=1.0).contains(&scale) && bt > -100.0 && at > -100.0 {
                            let r = check_bijection(&build_box(), &params, &x, &[]);
                            assert!(
                                r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                                "{at} {bt} {scale}: {r:?}"
                            );
                            assert!(r.max_fd() < 1e-6, "{at} {bt} {scale} d={d}: {r:?}");
                            worst.merge(&r);
                        }
                    }
                }
            }
        }
        std::eprintln!("radial ill-conditioned worst: {worst:?}");
    }

    #[test]
    fn radial_matches_normflows_formula() {
        // normflows: h = β/(|α| + r), z' = z + h (z − z₀),
        // log_det = (d − 1) ln(1 + h) + ln(1 + h − βr/(|α| + r)²), β = softplus(β_raw) − |α|.
        let (z0, at, bt) = ([0.2f64, -0.4, 1.0], 0.3f64, -0.8f64);
        let params = [z0[0], z0[1], z0[2], at, bt];
        let l = Radial { params: &params[..] };
        let alpha = (1.0 + at.exp()).ln();
        let beta = (1.0 + bt.exp()).ln() - alpha;
        let z = [1.0f64, 0.5, -0.3];
        let dz: Vec<f64> = (0..3).map(|i| z[i] - z0[i]).collect();
        let r = dz.iter().map(|v| v * v).sum::<f64>().sqrt();
        let h = beta / (alpha + r);
        let hh = -beta * r / (alpha + r).powi(2);
        let mut x = [0.0; 3];
        let ldj = l.forward(&z, &[], &mut x, &mut []);
        for i in 0..3 {
            assert!((x[i] - (z[i] + h * dz[i])).abs() < 1e-14);
        }
        assert!((ldj - (2.0 * (1.0 + h).ln() + (1.0 + h + hh).ln())).abs() < 1e-13);
        assert!(solve_radius(0.0f64, alpha, alpha + beta) == 0.0);
    }
}
