//! A mixture of `K` diagonal Gaussians, `p(z) = Σₖ wₖ N(z; μₖ, diag σₖ²)` with
//! `w = softmax(logits)` and `σ = exp(ρ)` (normflows' `GaussianMixture`, zuko's `GMM` with
//! `covariance_type="diagonal"` up to its `+ε` on the scale). One component (`K = 1`, logit 0) is
//! a diagonal normal with learned `μ` and `ln σ`.
//!
//! Parameters: `[logits (K), μ (K × D, component after component), ρ = ln σ (K × D)]`.
//!
//! Sampling maps `D` standard normals to a sample: the first one's uniform `Φ(ε₀)` picks the
//! component `k` (the interval of the cumulative weights it falls in) and what is left of it,
//! `u' = (Φ(ε₀) − c_{k−1}) / w_k`, is again uniform and independent of `k`, so
//! `ε₀' = Φ⁻¹(u')` is a fresh standard normal: `z = μₖ + σₖ ⊙ (ε₀', ε₁, …)`. For `ε₀ > 0` the
//! same is computed from `Φ(−ε₀)` and the cumulative weights from the top, so both tails keep
//! their precision. With `K = 1` the noise is used as is.
//!
//! Numerics: `log p` is a log-sum-exp (the largest term factored out); `±∞` in `z` gives
//! `−∞`, NaN gives NaN. The reparameterization gradient ([`Base::noise_to_base_vjp`]) is the
//! derivative of the sampling map at a fixed component (the choice of component is discrete and
//! its jumps are not differentiated): the means and scales get theirs and the logits theirs
//! through `ε₀'`. Maximum likelihood is exact; for reverse-KL training the weights' gradient is
//! that of the map between the jumps (the jumps' share is missing).

use crate::base::Base;
use crate::{slicing, Real, Weight};

/// `K` diagonal Gaussians in `D` dimensions (module docs).
#[derive(Clone, Copy, Debug)]
pub struct GaussianMixture<'a, W> {
    /// Dimension D.
    pub dim: usize,
    /// Number of components K (≥ 1).
    pub components: usize,
    /// `[logits (K), μ (K·D), ln σ (K·D)]`.
    pub params: &'a [W],
}

/// The number of parameters of a mixture of `k` components in `d` dimensions: `k (1 + 2d)`.
pub const fn n_params(k: usize, d: usize) -> usize {
    k * (1 + 2 * d)
}

impl<'a, W: Weight> GaussianMixture<'a, W> {
    fn logits(&self) -> &'a [W] {
        slicing::split(self.params, self.components).0
    }
    /// Component `k`'s `(μ, ln σ)`.
    fn component(&self, k: usize) -> (&'a [W], &'a [W]) {
        let (kk, d) = (self.components, self.dim);
        let rest = slicing::split(self.params, kk).1;
        let (mu, rho) = slicing::split(rest, kk * d);
        let mu = slicing::split(slicing::split(mu, k * d).1, d).0;
        let rho = slicing::split(slicing::split(rho, k * d).1, d).0;
        (mu, rho)
    }

    /// `log N(z; μₖ, diag σₖ²)`.
    fn component_log_prob<S: Real>(&self, k: usize, z: &[S]) -> S {
        let (mu, rho) = self.component(k);
        let mut acc = S::ZERO;
        for ((&v, m), r) in z.iter().zip(mu).zip(rho) {
            let r: S = r.get();
            let u = (v - m.get()) * (-r).exp();
            acc += -(S::from_f64(0.5) * u * u) - r - S::HALF_LN_2PI;
        }
        acc
    }

    /// `log Σₖ exp(logitₖ)`.
    fn log_normalizer<S: Real>(&self) -> S {
        log_sum_exp(self.logits().iter().map(|l| l.get::<S>()))
    }
}

/// `log Σ exp(aᵢ)` with the largest term factored out; `−∞` when every term is `−∞` (or there
/// are none), NaN when one is NaN.
fn log_sum_exp<S: Real>(a: impl Iterator<Item = S> + Clone) -> S {
    let mut m = -S::INFINITY;
    for v in a.clone() {
        if v.is_nan() {
            return v;
        }
        m = m.max(v);
    }
    if !m.is_finite() {
        return m;
    }
    let mut s = S::ZERO;
    for v in a {
        s += (v - m).exp();
    }
    m + s.ln()
}

impl<'a, S: Real, W: Weight> Base<S> for GaussianMixture<'a, W> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn n_params(&self) -> usize {
        n_params(self.components, self.dim)
    }
    /// The components' log-densities (K).
    fn scratch_len(&self) -> usize {
        self.components
    }
    /// `log Σₖ exp(logitₖ + log N(z; μₖ, σₖ)) − log Σₖ exp(logitₖ)`.
    fn log_prob(&self, z: &[S], scratch: &mut [S]) -> S {
        let a = slicing::split_mut(scratch, self.components).0;
        for (k, (ak, l)) in a.iter_mut().zip(self.logits()).enumerate() {
            *ak = l.get::<S>() + self.component_log_prob(k, z);
        }
        log_sum_exp(a.iter().copied()) - self.log_normalizer::<S>()
    }

    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        let Pick { k, e0, .. } = self.pick(eps);
        let (mu, rho) = self.component(k);
        for (i, (((zi, &e), m), r)) in z.iter_mut().zip(eps).zip(mu).zip(rho).enumerate() {
            let e = if i == 0 { e0 } else { e };
            *zi = m.get::<S>() + r.get::<S>().exp() * e;
        }
    }

    /// `z = μₖ + σₖ ⊙ ε'` at the picked component: `∂/∂μₖ = g_z`, `∂/∂ρₖ = g_z σₖ ε'`, and the
    /// logits through `ε₀'` (`pick_vjp`); the component's switching is not differentiated.
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]) {
        let (kk, d) = (self.components, self.dim);
        let pick = self.pick(eps);
        let (k, e0) = (pick.k, pick.e0);
        let (_, rho) = self.component(k);
        let (g_logits, g) = slicing::split_mut(g_params, kk);
        if let (Some(&gz0), Some(r0)) = (g_z.first(), rho.first()) {
            self.pick_vjp(pick, gz0 * r0.get::<S>().exp(), g_logits);
        }
        let (g_mu, g_rho) = slicing::split_mut(g, kk * d);
        let g_mu = slicing::split_mut(slicing::split_mut(g_mu, k * d).1, d).0;
        let g_rho = slicing::split_mut(slicing::split_mut(g_rho, k * d).1, d).0;
        let per = g_mu.iter_mut().zip(g_rho.iter_mut()).zip(g_z).zip(eps).zip(rho);
        for (i, ((((gm, gr), &gz), &e), r)) in per.enumerate() {
            let e = if i == 0 { e0 } else { e };
            *gm += gz;
            *gr += gz * r.get::<S>().exp() * e;
        }
    }

    /// With the responsibilities `rₖ = softmax(aₖ)`: `∂/∂z = −Σₖ rₖ (z − μₖ)/σₖ²`,
    /// `∂/∂logitₖ = rₖ − wₖ`, `∂/∂μₖ = rₖ (z − μₖ)/σₖ²`, `∂/∂ρₖ = rₖ (uₖ² − 1)`.
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, scratch: &mut [S]) {
        let (kk, d) = (self.components, self.dim);
        let a = slicing::split_mut(scratch, kk).0;
        for (k, (ak, l)) in a.iter_mut().zip(self.logits()).enumerate() {
            *ak = l.get::<S>() + self.component_log_prob(k, z);
        }
        let lse = log_sum_exp(a.iter().copied());
        let norm = self.log_normalizer::<S>();
        g_z.fill(S::ZERO);
        let mut g_params = g_params;
        for k in 0..kk {
            let r = a.get(k).map_or(S::NAN, |&ak| (ak - lse).exp());
            let (mu, rho) = self.component(k);
            for ((gz, &v), (m, rr)) in g_z.iter_mut().zip(z).zip(mu.iter().zip(rho)) {
                let inv = (-rr.get::<S>()).exp();
                let u = (v - m.get()) * inv;
                *gz -= g * r * u * inv;
            }
            if let Some(gp) = g_params.as_deref_mut() {
                let (g_logits, rest) = slicing::split_mut(gp, kk);
                let w = self
                    .logits()
                    .get(k)
                    .map_or(S::NAN, |l| (l.get::<S>() - norm).exp());
                slicing::add_at(g_logits, k, g * (r - w));
                let (g_mu, g_rho) = slicing::split_mut(rest, kk * d);
                let g_mu = slicing::split_mut(slicing::split_mut(g_mu, k * d).1, d).0;
                let g_rho = slicing::split_mut(slicing::split_mut(g_rho, k * d).1, d).0;
                let per = g_mu
                    .iter_mut()
                    .zip(g_rho.iter_mut())
                    .zip(z)
                    .zip(mu.iter().zip(rho));
                for (((gm, gr), &v), (m, rr)) in per {
                    let inv = (-rr.get::<S>()).exp();
                    let u = (v - m.get()) * inv;
                    *gm += g * r * u * inv;
                    *gr += g * r * (u * u - S::ONE);
                }
            }
        }
    }
}

/// The component the noise picks and the first coordinate's recycled normal (module docs).
#[derive(Clone, Copy, Debug)]
struct Pick<S> {
    /// The component.
    k: usize,
    /// `ε₀'`.
    e0: S,
    /// `u'` (from the first component, `ε₀ ≤ 0`) or `v = 1 − u'` (from the last).
    frac: S,
    /// `ε₀ ≤ 0`: counted from the first component.
    lower: bool,
}

impl<'a, W: Weight> GaussianMixture<'a, W> {
    /// The weight `wₖ = softmax(logits)ₖ`.
    fn weight<S: Real>(&self, k: usize, log_norm: S) -> S {
        self.logits()
            .get(k)
            .map_or(S::ZERO, |l| (l.get::<S>() - log_norm).exp())
    }

    /// The component picked by `ε₀` and its recycled normal (module docs).
    fn pick<S: Real>(&self, eps: &[S]) -> Pick<S> {
        let e = eps.first().copied().unwrap_or(S::ZERO);
        let kk = self.components;
        let none = Pick {
            k: 0,
            e0: e,
            frac: S::ZERO,
            lower: true,
        };
        if kk <= 1 {
            return none;
        }
        let norm = self.log_normalizer::<S>();
        if e <= S::ZERO {
            // p = Φ(ε₀) is precise; c sums the weights from the first component.
            let p = normal_cdf(e);
            let mut c = S::ZERO;
            for k in 0..kk {
                let w = self.weight(k, norm);
                if p < c + w || k + 1 == kk {
                    let frac = (p - c) / w;
                    return Pick {
                        k,
                        e0: normal_quantile(frac),
                        frac,
                        lower: true,
                    };
                }
                c += w;
            }
        } else {
            // q = Φ(−ε₀) = 1 − p is precise; r sums the weights from the last component.
            let q = normal_cdf(-e);
            let mut r = S::ZERO;
            for k in (0..kk).rev() {
                let w = self.weight(k, norm);
                if q < r + w || k == 0 {
                    let frac = (q - r) / w;
                    return Pick {
                        k,
                        e0: -normal_quantile(frac),
                        frac,
                        lower: false,
                    };
                }
                r += w;
            }
        }
        none
    }

    /// `g · ∂ε₀'/∂logitᵢ` added into `g_logits`, at a fixed component: with `u' = (p − c_{k−1})/wₖ`
    /// (`∂u'/∂wⱼ = −1/wₖ` for `j < k`, `−u'/wₖ` for `j = k`), `∂ε₀'/∂u' = 1/φ(ε₀')` and
    /// `∂wⱼ/∂logitᵢ = wⱼ (δᵢⱼ − wᵢ)`; from the last component the same with `v` and the signs of
    /// `ε₀' = −Φ⁻¹(v)`.
    fn pick_vjp<S: Real>(&self, pick: Pick<S>, g: S, g_logits: &mut [S]) {
        let kk = self.components;
        if kk <= 1 {
            return;
        }
        let norm = self.log_normalizer::<S>();
        let wk = self.weight(pick.k, norm);
        let phi = (-(pick.e0 * pick.e0) * S::from_f64(0.5)).exp() * S::from_f64(0.398_942_280_401_432_7);
        // ∂ε₀'/∂frac: 1/φ from the first component, −1/φ from the last.
        let d_frac = if pick.lower { g / phi } else { -(g / phi) };
        // ∂frac/∂wⱼ: the weights counted before component k, and k itself.
        let before = |j: usize| if pick.lower { j < pick.k } else { j > pick.k };
        let dfrac_dw = |j: usize| {
            if j == pick.k {
                -(pick.frac / wk)
            } else if before(j) {
                -(S::ONE / wk)
            } else {
                S::ZERO
            }
        };
        // Σⱼ ∂frac/∂wⱼ wⱼ, the part of ∂frac/∂logitᵢ common to every i.
        let mut mean = S::ZERO;
        for j in 0..kk {
            mean += dfrac_dw(j) * self.weight(j, norm);
        }
        for (i, gl) in g_logits.iter_mut().enumerate().take(kk) {
            let wi = self.weight(i, norm);
            *gl += d_frac * wi * (dfrac_dw(i) - mean);
        }
    }
}

/// `Φ(x) = ½ erfc(−x/√2)`.
pub fn normal_cdf<S: Real>(x: S) -> S {
    S::from_f64(0.5) * (-x * S::from_f64(core::f64::consts::FRAC_1_SQRT_2)).erfc()
}

/// `Φ⁻¹(p)` for `p` in (0, 1): Acklam's rational approximation (relative error < 1.2e-9) and one
/// Halley step on `Φ(x) − p` (close to full precision in `f64`). `p` is clamped into
/// `[ε⁴, 1 − ε/2]` (ε = `S::EPSILON`; the upper end is the largest value below 1), so the result
/// is finite (−11.0 ≤ x ≤ 5.3 in `f32`, −16.8 ≤ x ≤ 8.2 in `f64`); NaN gives NaN.
pub fn normal_quantile<S: Real>(p: S) -> S {
    if p.is_nan() {
        return p;
    }
    let c = |v: f64| S::from_f64(v);
    let tiny = (S::EPSILON * S::EPSILON) * (S::EPSILON * S::EPSILON);
    let p = p.max(tiny).min(S::ONE - S::EPSILON * c(0.5));
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let poly = |k: &[f64], x: S| k.iter().fold(S::ZERO, |acc, &v| acc * x + c(v));
    let low = c(0.024_25);
    let x = if p < low {
        let q = (c(-2.0) * p.ln()).sqrt();
        poly(&C, q) / (poly(&D, q) * q + S::ONE)
    } else if p <= S::ONE - low {
        let q = p - c(0.5);
        let r = q * q;
        poly(&A, r) * q / (poly(&B, r) * r + S::ONE)
    } else {
        let q = (c(-2.0) * (S::ONE - p).ln()).sqrt();
        -(poly(&C, q) / (poly(&D, q) * q + S::ONE))
    };
    // Halley: e = Φ(x) − p, u = e √(2π) e^{x²/2}, x ← x − u / (1 + x u / 2).
    let e = normal_cdf(x) - p;
    let u = e * c(2.506_628_274_631_000_5) * (x * x * c(0.5)).exp();
    x - u / (S::ONE + x * u * c(0.5))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::base::DiagNormal;
    use crate::testing::Lcg;
    use std::vec::Vec;

    /// K = 3 in D = 2: logits, means, ln σ.
    const PARAMS: [f64; 15] = [
        0.3, -0.5, 0.9, // logits
        -1.5, 0.2, 0.4, -0.8, 1.7, 1.1, // μ
        -0.4, 0.1, -0.9, 0.3, 0.2, -0.3, // ln σ
    ];

    fn mixture(p: &[f64]) -> GaussianMixture<'_, f64> {
        GaussianMixture {
            dim: 2,
            components: 3,
            params: p,
        }
    }

    #[test]
    fn quantile_inverts_the_cdf() {
        // Φ(x) for x ≤ 0 is precise (the sampler only inverts that side, see `pick`).
        for i in -400..=0 {
            let x = i as f64 * 0.025;
            let back = normal_quantile(normal_cdf(x));
            assert!((back - x).abs() < 1e-12 * (1.0 + x.abs()), "{x}: {back}");
            let back = normal_quantile(normal_cdf(x as f32));
            assert!(
                (back - x as f32).abs() < 2e-5 * (1.0 + x.abs() as f32),
                "{x}: {back}"
            );
        }
        assert!((normal_quantile(0.975f64) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((normal_quantile(0.975f32) - 1.959_964).abs() < 1e-5);
        assert!(normal_quantile(0.0f64).is_finite() && normal_quantile(1.0f64).is_finite());
        assert!(normal_quantile(f64::NAN).is_nan());
    }

    #[test]
    fn log_prob_is_the_weighted_sum_of_the_components() {
        let b = mixture(&PARAMS);
        let w: Vec<f64> = {
            let e: Vec<f64> = PARAMS[..3].iter().map(|l| l.exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        let mut s = [0.0; 3];
        for z in [[0.1, -0.3], [-1.4, 0.5], [3.0, -4.0], [40.0, 0.0]] {
            let mut p = 0.0;
            for k in 0..3 {
                let mut c = 1.0;
                for i in 0..2 {
                    let (m, sg) = (PARAMS[3 + 2 * k + i], PARAMS[9 + 2 * k + i].exp());
                    let u = (z[i] - m) / sg;
                    c *= (-0.5 * u * u).exp() / (sg * (2.0 * std::f64::consts::PI).sqrt());
                }
                p += w[k] * c;
            }
            let lp = b.log_prob(&z, &mut s);
            if p > 0.0 {
                assert!((lp - p.ln()).abs() < 1e-12, "{z:?}: {lp} vs {}", p.ln());
            } else {
                assert!(lp.is_finite() && lp < -500.0, "{z:?}: {lp}");
            }
        }
        assert_eq!(b.log_prob(&[f64::INFINITY, 0.0], &mut s), f64::NEG_INFINITY);
        assert!(b.log_prob(&[f64::NAN, 0.0], &mut s).is_nan());
    }

    #[test]
    fn one_component_is_a_diagonal_normal() {
        let p = [0.0, 0.4, -1.2, -0.3, 0.6];
        let b = GaussianMixture {
            dim: 2,
            components: 1,
            params: &p[..],
        };
        let sigma = [p[3].exp(), p[4].exp()];
        let dp = [p[1], p[2], sigma[0], sigma[1]];
        let diag = DiagNormal { params: &dp[..] };
        let (mut s, mut z, mut zd) = ([0.0; 1], [0.0; 2], [0.0; 2]);
        for x in [[0.3, -0.7], [2.0, 1.0]] {
            let (a, c) = (b.log_prob(&x, &mut s), Base::<f64>::log_prob(&diag, &x, &mut s));
            assert!((a - c).abs() < 1e-14, "{a} vs {c}");
        }
        b.noise_to_base(&[0.5, -1.5], &mut z);
        diag.noise_to_base(&[0.5, -1.5], &mut zd);
        assert_eq!(z, zd);
    }

    #[test]
    fn samples_follow_the_mixture() {
        let b = mixture(&PARAMS);
        let mut rng = Lcg(11);
        let n = 200_000;
        let w: Vec<f64> = {
            let e: Vec<f64> = PARAMS[..3].iter().map(|l| l.exp()).collect();
            let s: f64 = e.iter().sum();
            e.iter().map(|v| v / s).collect()
        };
        // Each coordinate's mean and the fraction below a few thresholds (the marginal CDF
        // Σₖ wₖ Φ((t − μₖ)/σₖ)).
        let ts = [-2.0, -0.5, 0.0, 0.7, 2.5];
        let (mut mean, mut below) = ([0.0; 2], [[0.0; 5]; 2]);
        let mut z = [0.0; 2];
        for _ in 0..n {
            b.noise_to_base(&[rng.normal(), rng.normal()], &mut z);
            for i in 0..2 {
                mean[i] += z[i] / n as f64;
                for (c, &t) in below[i].iter_mut().zip(&ts) {
                    *c += f64::from(u8::from(z[i] < t)) / n as f64;
                }
            }
        }
        for i in 0..2 {
            let m: f64 = (0..3).map(|k| w[k] * PARAMS[3 + 2 * k + i]).sum();
            assert!((mean[i] - m).abs() < 0.01, "mean {i}: {} vs {m}", mean[i]);
            for (c, &t) in below[i].iter().zip(&ts) {
                let cdf: f64 = (0..3)
                    .map(|k| w[k] * normal_cdf((t - PARAMS[3 + 2 * k + i]) / PARAMS[9 + 2 * k + i].exp()))
                    .sum();
                assert!((c - cdf).abs() < 0.005, "coordinate {i} below {t}: {c} vs {cdf}");
            }
        }
    }
}
