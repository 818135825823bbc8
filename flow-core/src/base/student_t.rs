//! Independent Student-t coordinates with learned location, scale and degrees of freedom,
//! `p(z) = Πᵢ t_{νᵢ}((zᵢ − μᵢ)/σᵢ) / σᵢ` (FlowJAX's `StudentT(df, loc, scale)`): a base with
//! heavier tails than the normal, whose tail weight `ν` is fitted per coordinate (small `ν`: heavy
//! tails; `ν → ∞`: the normal).
//!
//! Parameters: `[μ (D), ρ = ln σ (D), λ = ln ν (D)]`, all unconstrained.
//!
//! With `u = (z − μ)/σ`: `log p = Σᵢ r(νᵢ/2) − ½ ln 2π − ρᵢ − (νᵢ + 1)/2 · ln(1 + uᵢ²/νᵢ)`, where
//! `r(x) = ln Γ(x + ½) − ln Γ(x) − ½ ln x` ([`half_gamma_ratio`]: an asymptotic series after
//! shifting `x` past 16, no `lgamma` and no cancellation for large `ν`).
//!
//! Sampling maps standard-normal noise through the t quantile, `zᵢ = μᵢ + σᵢ F⁻¹_ν(Φ(εᵢ))`
//! ([`t_quantile`]), so both tails are computed from their own small probability. The
//! reparameterization gradient is exact in `μ` and `ln σ`; in `ln ν` it is the implicit derivative
//! `∂t/∂ν = (∂Q/∂ν)/f(t)` of the quantile, with `∂Q/∂ν` by a central difference in `ν` (relative
//! error about `ε^{2/3}`: 1e-11 in `f64`, 1e-5 in `f32`).
//!
//! Numerics: `±∞` in `z` gives `−∞`, NaN gives NaN; samples saturate at `±S::MAX` (reached only
//! for `ν` well below 1 and noise in the far tail).

use crate::base::mixture::{normal_cdf, normal_quantile};
use crate::base::Base;
use crate::{slicing, Real, Weight};

/// Independent Student-t coordinates (module docs).
#[derive(Clone, Copy, Debug)]
pub struct StudentT<'a, W> {
    /// `[μ (D), ln σ (D), ln ν (D)]`.
    pub params: &'a [W],
}

/// The number of parameters of a Student-t base in `d` dimensions: `3d`.
pub const fn n_params(d: usize) -> usize {
    3 * d
}

/// `r(x) = ln Γ(x + ½) − ln Γ(x) − ½ ln x` and `r'(x)`, for `x > 0`.
///
/// For `x ≥ 16` the asymptotic series `−1/(8x) + 1/(192x³) − 1/(640x⁵) + 17/(14336x⁷) −
/// 31/(18432x⁹)` (relative error < 1e-15); below, `Γ(y + 1) = y Γ(y)` shifts `x` up by `n`:
/// `r(x) = r(x + n) + ½ ln((x + n)/x) − Σₖ ln((x + k + ½)/(x + k))`.
pub fn half_gamma_ratio<S: Real>(x: S) -> (S, S) {
    let c = |v: f64| S::from_f64(v);
    let (mut y, mut log_prod, mut d_sum) = (x, S::ONE, S::ZERO);
    // At most 16 shifts; the product of the ratios is taken in one logarithm.
    let mut n = 0;
    while y < c(16.0) && n < 16 {
        log_prod *= (y + c(0.5)) / y;
        d_sum += S::ONE / (y + c(0.5)) - S::ONE / y;
        y += S::ONE;
        n += 1;
    }
    let inv = S::ONE / y;
    let inv2 = inv * inv;
    const C: [f64; 5] = [
        -1.0 / 8.0,
        1.0 / 192.0,
        -1.0 / 640.0,
        17.0 / 14336.0,
        -31.0 / 18432.0,
    ];
    let (mut r, mut dr, mut pow) = (S::ZERO, S::ZERO, inv);
    for (k, &ck) in C.iter().enumerate() {
        r += c(ck) * pow;
        dr -= c(ck * (2 * k + 1) as f64) * pow * inv;
        pow *= inv2;
    }
    if n > 0 {
        r += c(0.5) * (y / x).ln() - log_prod.ln();
        dr += c(0.5) * (inv - S::ONE / x) - d_sum;
    }
    (r, dr)
}

/// `ln(1 + s²)` and `s²/(1 + s²)`, without forming `s²` when `|s| > 1` (it would overflow for
/// `|s|` beyond `√S::MAX`).
fn ln_1p_sq<S: Real>(s: S) -> (S, S) {
    let a = s.abs();
    if a > S::ONE {
        let inv = S::ONE / a;
        let i2 = inv * inv;
        (a.ln() + a.ln() + i2.ln_1p(), S::ONE / (S::ONE + i2))
    } else {
        let s2 = a * a;
        (s2.ln_1p(), s2 / (S::ONE + s2))
    }
}

/// `log f_ν(u)` of the standard t density.
fn t_log_density<S: Real>(u: S, nu: S) -> S {
    let (r, _) = half_gamma_ratio(nu * S::from_f64(0.5));
    r - S::HALF_LN_2PI - (nu + S::ONE) * S::from_f64(0.5) * ln_1p_sq(u / nu.sqrt()).0
}

/// The continued fraction of the regularized incomplete beta function `I_x(a, b)` (modified
/// Lentz), converging fast for `x < (a + 1)/(a + b + 2)`.
fn beta_fraction<S: Real>(a: S, b: S, x: S) -> S {
    let tiny = S::from_f64(1e-30);
    let guard = |v: S| if v.abs() < tiny { tiny } else { v };
    let (qab, qap, qam) = (a + b, a + S::ONE, a - S::ONE);
    let mut c = S::ONE;
    let mut d = S::ONE / guard(S::ONE - qab * x / qap);
    let mut h = d;
    for m in 1..=300 {
        let m = S::from_f64(m as f64);
        let m2 = m + m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = S::ONE / guard(S::ONE + aa * d);
        c = guard(S::ONE + aa / c);
        h *= d * c;
        let aa = -((a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
        d = S::ONE / guard(S::ONE + aa * d);
        c = guard(S::ONE + aa / c);
        let step = d * c;
        h *= step;
        if (step - S::ONE).abs() <= S::EPSILON {
            break;
        }
    }
    h
}

/// The upper tail `Q_ν(t) = P(T > t)` of the standard t distribution, for `t ≥ 0`:
/// `½ I_w(ν/2, ½)` with `w = ν/(ν + t²)`, by the continued fraction on whichever side converges.
pub fn t_upper_tail<S: Real>(t: S, nu: S) -> S {
    let half = S::from_f64(0.5);
    let a = nu * half;
    // ln w and ln(1 − w) from s = t/√ν without forming t² (which overflows for large t).
    let s = t / nu.sqrt();
    let (l, frac) = ln_1p_sq(s);
    let (ln_w, ln_1mw) = (-l, frac.ln());
    // ln B(a, ½) = ½ ln π − r(a) − ½ ln a.
    let (r, _) = half_gamma_ratio(a);
    let ln_beta = half * S::from_f64(core::f64::consts::PI).ln() - r - half * a.ln();
    let front = |lead: S, other: S, p: S| (p * lead + half * other - ln_beta).exp() / p;
    let w = ln_w.exp();
    if w < (a + S::ONE) / (a + S::from_f64(2.5)) {
        half * front(ln_w, ln_1mw, a) * beta_fraction(a, half, w)
    } else {
        // I_w(a, ½) = 1 − I_{1−w}(½, a).
        let i = (half * ln_1mw + a * ln_w - ln_beta).exp() / half * beta_fraction(half, a, ln_1mw.exp());
        half * (S::ONE - i)
    }
}

/// `F⁻¹_ν(Φ(ε))`: the standard t quantile of the normal noise `ε`'s probability, computed from the
/// smaller tail `q = Φ(−|ε|)` (so both tails keep their precision) and given `ε`'s sign.
///
/// Newton's method on `Q_ν(t) = q`: in `t` for `q > 0.05` (from `t = 0`, where `Q` is convex, so
/// the iterates rise to the root), in `ln t` in the tails (where `ln Q` is nearly linear in
/// `ln t`), from the normal quantile with its first Cornish–Fisher correction.
pub fn t_quantile<S: Real>(eps: S, nu: S) -> S {
    if eps.is_nan() || nu.is_nan() {
        return S::NAN;
    }
    let q = normal_cdf(-eps.abs());
    let t = t_tail_quantile(q, nu);
    if eps < S::ZERO {
        -t
    } else {
        t
    }
}

/// The `t ≥ 0` with `Q_ν(t) = q`, for `q` in (0, ½].
fn t_tail_quantile<S: Real>(q: S, nu: S) -> S {
    let tol = S::EPSILON * S::from_f64(4.0);
    let density = |t: S| t_log_density(t, nu).exp();
    if q > S::from_f64(0.05) {
        let mut t = S::ZERO;
        for _ in 0..60 {
            let step = (t_upper_tail(t, nu) - q) / density(t);
            t += step;
            if step.abs() <= tol * t || step.is_nan() {
                break;
            }
        }
        return t.max(S::ZERO);
    }
    let z = -normal_quantile(q);
    let mut u = (z + (z * z * z + z) / (nu * S::from_f64(4.0))).max(S::ONE).ln();
    let u_max = S::MAX.ln();
    let ln_q = q.ln();
    for _ in 0..100 {
        let t = u.exp();
        let tail = t_upper_tail(t, nu);
        // d ln Q / d ln t = −t f(t)/Q(t).
        let slope = -(t * density(t) / tail);
        let step = -((tail.ln() - ln_q) / slope);
        if !step.is_finite() {
            break;
        }
        u = (u + step).min(u_max);
        if step.abs() <= tol {
            break;
        }
    }
    u.exp().min(S::MAX)
}

impl<'a, W: Weight> StudentT<'a, W> {
    /// `(μ, ln σ, ln ν)`.
    fn parts(&self) -> (&'a [W], &'a [W], &'a [W]) {
        let d = self.params.len() / 3;
        let (mu, rest) = slicing::split(self.params, d);
        let (rho, lam) = slicing::split(rest, d);
        (mu, rho, lam)
    }
}

impl<'a, S: Real, W: Weight> Base<S> for StudentT<'a, W> {
    fn dim(&self) -> usize {
        self.params.len() / 3
    }
    fn n_params(&self) -> usize {
        self.params.len()
    }
    /// `Σᵢ r(νᵢ/2) − ½ ln 2π − ρᵢ − (νᵢ + 1)/2 · ln(1 + uᵢ²/νᵢ)`.
    fn log_prob(&self, z: &[S], _: &mut [S]) -> S {
        let (mu, rho, lam) = self.parts();
        let mut acc = S::ZERO;
        for (((&v, m), r), l) in z.iter().zip(mu).zip(rho).zip(lam) {
            let r: S = r.get();
            let u = (v - m.get()) * (-r).exp();
            acc += t_log_density(u, l.get::<S>().exp()) - r;
        }
        acc
    }

    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        let (mu, rho, lam) = self.parts();
        for ((((zi, &e), m), r), l) in z.iter_mut().zip(eps).zip(mu).zip(rho).zip(lam) {
            let t = t_quantile(e, l.get::<S>().exp());
            *zi = m.get::<S>() + r.get::<S>().exp() * t;
        }
    }

    /// `z = μ + σ t_ν(ε)`: `∂/∂μ = g_z`, `∂/∂ρ = g_z σ t`, `∂/∂λ = g_z σ ν ∂t/∂ν` with
    /// `∂|t|/∂ν = (∂Q/∂ν)/f(|t|)` at fixed `q` (module docs).
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]) {
        let (_, rho, lam) = self.parts();
        let d = lam.len();
        let (g_mu, rest) = slicing::split_mut(g_params, d);
        let (g_rho, g_lam) = slicing::split_mut(rest, d);
        let grads = g_mu.iter_mut().zip(g_rho.iter_mut()).zip(g_lam.iter_mut());
        for (((gm, gr), gl), ((&gz, &e), (r, l))) in grads.zip(g_z.iter().zip(eps).zip(rho.iter().zip(lam))) {
            let nu = l.get::<S>().exp();
            let sigma = r.get::<S>().exp();
            let t = t_quantile(e, nu);
            *gm += gz;
            *gr += gz * sigma * t;
            let a = t.abs();
            let h = nu * S::EPSILON.sqrt().sqrt().max(S::from_f64(6e-6));
            let dq = (t_upper_tail(a, nu + h) - t_upper_tail(a, nu - h)) / (h + h);
            let dt = dq / t_log_density(a, nu).exp();
            let dt = if t < S::ZERO { -dt } else { dt };
            if dt.is_finite() {
                *gl += gz * sigma * nu * dt;
            }
        }
    }

    /// With `w = (ν + 1) u/(ν + u²)`: `∂/∂z = −w/σ`, `∂/∂μ = w/σ`, `∂/∂ρ = w u − 1`,
    /// `∂/∂λ = ν (½ r'(ν/2) − ½ ln(1 + u²/ν) + (ν + 1) u²/(2ν(ν + u²)))` (the squares formed
    /// only where they cannot overflow).
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, _: &mut [S]) {
        let (mu, rho, lam) = self.parts();
        let half = S::from_f64(0.5);
        let d = lam.len();
        let per = |v: S, m: &W, r: &W, l: &W| {
            let (r, nu): (S, S) = (r.get(), l.get::<S>().exp());
            let inv = (-r).exp();
            let u = (v - m.get()) * inv;
            let w = if u.abs() > S::ONE {
                (nu + S::ONE) / (u + nu / u)
            } else {
                (nu + S::ONE) * u / (nu + u * u)
            };
            (inv, u, w, nu)
        };
        for ((((gz, &v), m), r), l) in g_z.iter_mut().zip(z).zip(mu).zip(rho).zip(lam) {
            let (inv, _, w, _) = per(v, m, r, l);
            *gz = -(g * w * inv);
        }
        let Some(gp) = g_params else {
            return;
        };
        let (g_mu, rest) = slicing::split_mut(gp, d);
        let (g_rho, g_lam) = slicing::split_mut(rest, d);
        let grads = g_mu.iter_mut().zip(g_rho.iter_mut()).zip(g_lam.iter_mut());
        for (((gm, gr), gl), (((&v, m), r), l)) in grads.zip(z.iter().zip(mu).zip(rho).zip(lam)) {
            let (inv, u, w, nu) = per(v, m, r, l);
            let (_, dr) = half_gamma_ratio(nu * half);
            let (l1p, frac) = ln_1p_sq(u / nu.sqrt());
            let d_nu = half * dr - half * l1p + (nu + S::ONE) * frac / (nu + nu);
            *gm += g * w * inv;
            *gr += g * (w * u - S::ONE);
            *gl += g * nu * d_nu;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// ln Γ by Lanczos (g = 7, n = 9), for the checks only.
    fn ln_gamma(x: f64) -> f64 {
        const G: [f64; 9] = [
            0.999_999_999_999_809_9,
            676.520_368_121_885_1,
            -1_259.139_216_722_402_8,
            771.323_428_777_653_1,
            -176.615_029_162_140_6,
            12.507_343_278_686_905,
            -0.138_571_095_265_720_12,
            9.984_369_578_019_572e-6,
            1.505_632_735_149_311_6e-7,
        ];
        let x = x - 1.0;
        let mut a = G[0];
        let t = x + 7.5;
        for (i, g) in G.iter().enumerate().skip(1) {
            a += g / (x + i as f64);
        }
        0.5 * (2.0 * core::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
    }

    #[test]
    fn the_gamma_ratio_matches_ln_gamma_and_its_derivative_matches_differences() {
        // r(x) by mpmath at 40 digits.
        let table = [
            (1e-3, -2.882_897_348_393_753_4),
            (0.05, -0.990_982_208_163_609_3),
            (0.5, -0.225_791_352_644_727_43),
            (1.0, -0.120_782_237_635_245_22),
            (2.5, -0.049_681_055_850_051_383),
            (7.9, -0.015_812_271_250_245_134),
            (15.99, -0.007_816_113_403_610_966),
            (16.0, -0.007_811_229_919_967_624),
            (40.0, -0.003_124_918_635_043_224_4),
            (1e4, -0.000_012_499_999_994_791_667),
        ];
        for (x, exact) in table {
            let (r, dr) = half_gamma_ratio(x);
            assert!(
                (r - exact).abs() < 2e-15 * (1.0 + exact.abs()),
                "r({x}) = {r} vs {exact}"
            );
            let h = 1e-5 * x;
            let fd = (half_gamma_ratio(x + h).0 - half_gamma_ratio(x - h).0) / (2.0 * h);
            assert!(
                (dr - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "r'({x}) = {dr} vs {fd}"
            );
        }
        // f32 agrees with f64 to its own precision.
        for x in [0.3f32, 3.0, 30.0] {
            let (r, _) = half_gamma_ratio(x);
            assert!((r as f64 - half_gamma_ratio(x as f64).0).abs() < 1e-6);
        }
    }

    #[test]
    fn tails_match_closed_forms() {
        // ν = 1 (Cauchy): Q = ½ − atan(t)/π; ν = 2: Q = ½ (1 − t/√(2 + t²)).
        for t in [0.0, 0.1, 0.9, 1.0, 3.0, 50.0, 1e6] {
            let cauchy = 0.5 - libm::atan(t) / core::f64::consts::PI;
            let q = t_upper_tail(t, 1.0);
            assert!(
                (q - cauchy).abs() < 1e-13 * (1.0 + 1.0 / cauchy),
                "ν = 1, t = {t}: {q} vs {cauchy}"
            );
            // ½ (1 − t/√(2 + t²)), written without the cancellation.
            let r = (2.0 + t * t).sqrt();
            let two = 1.0 / ((r + t) * r);
            let q = t_upper_tail(t, 2.0);
            assert!((q - two).abs() < 1e-13 * two, "ν = 2, t = {t}: {q} vs {two}");
        }
    }

    #[test]
    fn the_quantile_inverts_the_tail_in_both_precisions() {
        for nu in [0.3, 1.0, 2.5, 7.0, 40.0, 1e4] {
            for eps in [-8.0, -3.0, -1.0, -0.01, 0.0, 0.2, 1.5, 4.0, 6.5] {
                let t: f64 = t_quantile(eps, nu);
                let q = normal_cdf(-libm::fabs(eps));
                let back = t_upper_tail(t.abs(), nu);
                assert!(
                    (back - q).abs() < 1e-12 * q,
                    "ν = {nu}, ε = {eps}: Q({t}) = {back} vs {q}"
                );
                assert_eq!(t < 0.0, eps < 0.0, "sign at ν = {nu}, ε = {eps}");
                let t32: f32 = t_quantile(eps as f32, nu as f32);
                if t.abs() > f32::MAX as f64 {
                    assert_eq!(t32.abs(), f32::MAX, "saturates at ν = {nu}, ε = {eps}");
                    continue;
                }
                assert!(
                    ((t32 as f64) - t).abs() < 1e-4 * (1.0 + t.abs()),
                    "f32 at ν = {nu}, ε = {eps}: {t32} vs {t}"
                );
            }
        }
        // Large ν: the normal quantile.
        assert!((t_quantile(1.2f64, 1e8) - 1.2).abs() < 1e-7);
        assert!(t_quantile(f64::NAN, 3.0).is_nan());
    }

    #[test]
    fn log_prob_matches_the_density_formula() {
        let p = [0.5, -1.0, 0.2, -0.3, 3.0f64.ln(), 0.5f64.ln()];
        let b = StudentT { params: &p[..] };
        let z = [1.7, -2.5];
        let mut exact = 0.0;
        for i in 0..2 {
            let (m, s, nu) = (p[i], p[2 + i].exp(), p[4 + i].exp());
            let u: f64 = (z[i] - m) / s;
            exact += ln_gamma((nu + 1.0) / 2.0)
                - ln_gamma(nu / 2.0)
                - 0.5 * (nu * core::f64::consts::PI).ln()
                - s.ln()
                - (nu + 1.0) / 2.0 * (1.0 + u * u / nu).ln();
        }
        let got: f64 = b.log_prob(&z, &mut []);
        assert!((got - exact).abs() < 1e-12, "{got} vs {exact}");
        assert_eq!(
            Base::<f64>::log_prob(&b, &[f64::INFINITY, 0.0], &mut []),
            f64::NEG_INFINITY
        );
        assert!(Base::<f64>::log_prob(&b, &[f64::NAN, 0.0], &mut []).is_nan());
    }
}
