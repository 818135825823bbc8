//! Batch normalization in evaluation form (Dinh et al. 2017; Papamakarios et al. 2017), in nflows'
//! convention (`nflows.transforms.normalization.BatchNorm` in eval mode).
//!
//! With `wᵢ = softplus(ũᵢ) + ε` (ũ = `unconstrained_weight`), running statistics `μᵢ`, `vᵢ` and one
//! ε used twice, as nflows does (default `1e-5`):
//!
//! - [`Bijection::inverse`] (data → base): `zᵢ = wᵢ (xᵢ − μᵢ) / √(vᵢ + ε) + βᵢ`,
//!   log|det ∂z/∂x| = Σᵢ [ln wᵢ − ½ ln(vᵢ + ε)];
//! - [`Bijection::forward`] (base → data): `xᵢ = √(vᵢ + ε) (zᵢ − βᵢ) / wᵢ + μᵢ`.
//!
//! Parameters, `4D` long: `[unconstrained_weight ũ (D), bias β (D), running_mean μ (D),
//! running_var v (D)]` (nflows' `state_dict` keys in that order). The running statistics are part
//! of the layout so that one weight vector describes the layer, but a trainer should not step them
//! by gradient (nflows updates them by a moving average in training mode); their gradients are
//! still reported exactly. `vᵢ + ε` must be positive (NaN otherwise).

use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::{math, slicing, Real, Weight};

/// A batch-norm layer in evaluation form (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct BatchNorm<'a, W> {
    /// `[ũ (D), β (D), μ (D), v (D)]`; the dimension is `params.len() / 4`.
    pub params: &'a [W],
    /// ε, both the weight's lower bound and the variance offset (nflows: `1e-5`).
    pub eps: f64,
}

/// Per-feature constants of the affine map `z = a x + c`.
struct Coef<S> {
    /// `w = softplus(ũ) + ε`.
    w: S,
    /// `1 / √(v + ε)`.
    inv_sd: S,
    /// μ (running mean).
    mu: S,
    /// β.
    beta: S,
    /// σ(ũ) = dw/dũ.
    dw: S,
}

impl<'a, W: Weight> BatchNorm<'a, W> {
    fn d(&self) -> usize {
        self.params.len() / 4
    }

    /// The coefficients of every feature, in order, from the four parameter blocks
    /// `[ũ, β, μ, σ²]` (D values each).
    #[inline]
    fn coefs<S: Real>(&self) -> impl Iterator<Item = Coef<S>> + 'a {
        let d = self.d();
        let eps = S::from_f64(self.eps);
        let (u, rest) = slicing::split(self.params, d);
        let (beta, rest) = slicing::split(rest, d);
        let (mu, var) = slicing::split(rest, d);
        u.iter()
            .zip(beta)
            .zip(mu)
            .zip(var)
            .map(move |(((u, beta), mu), v)| {
                let (u, v): (S, S) = (u.get(), v.get());
                Coef {
                    w: math::softplus(u) + eps,
                    inv_sd: S::ONE / (v + eps).sqrt(),
                    mu: mu.get(),
                    beta: beta.get(),
                    dw: math::sigmoid(u),
                }
            })
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for BatchNorm<'a, W> {
    fn dim(&self) -> usize {
        self.d()
    }

    fn n_params(&self) -> usize {
        4 * self.d()
    }

    fn scratch_len(&self) -> usize {
        0
    }

    /// `zᵢ = wᵢ (xᵢ − μᵢ) / √(vᵢ + ε) + βᵢ`; returns Σ [ln wᵢ − ½ ln(vᵢ + ε)] = Σ ln(wᵢ / √(vᵢ + ε)).
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], _scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        for ((zi, &xi), c) in z.iter_mut().zip(x).zip(self.coefs::<S>()) {
            let a = c.w * c.inv_sd;
            *zi = a * (xi - c.mu) + c.beta;
            ldj += a.ln();
        }
        ldj
    }

    /// `xᵢ = √(vᵢ + ε) (zᵢ − βᵢ) / wᵢ + μᵢ`; returns −Σ ln(wᵢ / √(vᵢ + ε)).
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        for ((xi, &zi), c) in x.iter_mut().zip(z).zip(self.coefs::<S>()) {
            let a = c.w * c.inv_sd;
            *xi = (zi - c.beta) / a + c.mu;
            ldj -= a.ln();
        }
        ldj
    }

    /// With `aᵢ = wᵢ / √(vᵢ + ε)` and `eᵢ = xᵢ − μᵢ`: `g_x = g_z a`;
    /// `∂L/∂ũ = (g_z e / √(v + ε) + g_ℓ / w) σ(ũ)`, `∂L/∂β = g_z`, `∂L/∂μ = −g_z a`,
    /// `∂L/∂v = −½ (g_z a e + g_ℓ) / (v + ε)`.
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
        for ((gx, &gz), c) in g_x.iter_mut().zip(g_z).zip(self.coefs::<S>()) {
            *gx = gz * c.w * c.inv_sd;
        }
        if let Some(gp) = g_params {
            let half = S::from_f64(0.5);
            let d = self.d();
            let (g_u, rest) = slicing::split_mut(gp, d);
            let (g_beta, rest) = slicing::split_mut(rest, d);
            let (g_mu, g_var) = slicing::split_mut(rest, d);
            let grads = g_u.iter_mut().zip(g_beta).zip(g_mu).zip(g_var);
            for ((((gu, gb), gm), gv), ((&gz, &xi), c)) in grads.zip(g_z.iter().zip(x).zip(self.coefs::<S>()))
            {
                let a = c.w * c.inv_sd;
                let e = xi - c.mu;
                *gu += (gz * e * c.inv_sd + g_ldj / c.w) * c.dw;
                *gb += gz;
                *gm -= gz * a;
                *gv -= half * (gz * a * e + g_ldj) * c.inv_sd * c.inv_sd;
            }
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

    fn random_params(d: usize, rng: &mut Lcg) -> Vec<f64> {
        let mut p = rng.normals(3 * d);
        // Running variances: positive, some small (ε matters), some large.
        for _ in 0..d {
            p.push((rng.normal() * 1.5).exp() * 0.5);
        }
        p
    }

    #[test]
    fn batchnorm_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for seed in 0..4u64 {
            let mut rng = Lcg(300 + seed);
            for d in [1usize, 2, 3, 5] {
                let params = random_params(d, &mut rng);
                for eps in [1e-5, 1e-2] {
                    let build = builder(move |p| Box::new(BatchNorm { params: p, eps }));
                    let x = rng.normals(d);
                    let r = check_bijection(&build, &params, &x, &[]);
                    assert!(r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10, "{r:?}");
                    assert!(r.max_fd() < 1e-6, "d={d} eps={eps}: {r:?}");
                    worst.merge(&r);
                }
            }
        }
        std::eprintln!("batchnorm worst: {worst:?}");
    }

    #[test]
    fn batchnorm_matches_nflows_formula() {
        // ũ = ln(e^{1−ε} − 1) (nflows' init) gives w = 1 exactly up to rounding.
        let eps = 1e-5f64;
        let u0 = ((1.0 - eps).exp() - 1.0).ln();
        let params = [u0, 0.3, 1.2, 4.0];
        let l = BatchNorm {
            params: &params[..],
            eps,
        };
        let mut z = [0.0];
        let ldj = l.inverse(&[2.0f64], &[], &mut z, &mut []);
        let sd = (4.0 + eps).sqrt();
        assert!((z[0] - ((2.0 - 1.2) / sd + 0.3)).abs() < 1e-12);
        assert!((ldj - (-0.5 * (4.0 + eps).ln())).abs() < 1e-12);
    }
}
