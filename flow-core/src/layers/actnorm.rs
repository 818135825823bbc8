//! Activation normalization (Kingma & Dhariwal 2018, Glow), in nflows' convention.
//!
//! nflows' `ActNorm.forward` (data → base) is `outputs = scale · inputs + shift` with
//! `scale = exp(log_scale)`, so here, per feature i:
//!
//! - [`Bijection::inverse`] (data → base): `zᵢ = e^{λᵢ} xᵢ + bᵢ`, log|det ∂z/∂x| = Σᵢ λᵢ;
//! - [`Bijection::forward`] (base → data): `xᵢ = (zᵢ − bᵢ) e^{−λᵢ}`, log|det ∂x/∂z| = −Σᵢ λᵢ.
//!
//! (λ = `log_scale`, b = `shift`.) nflows' data-dependent initialization (`λ = −ln std`,
//! `b = −mean(x / std)` on the first batch) is the trainer's business, not this kernel's.
//!
//! Parameters, `2D` long: `[log_scale (D), shift (D)]` (nflows' `log_scale`, `shift`).

use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::{slicing, Real, Weight};

/// An ActNorm layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct ActNorm<'a, W> {
    /// `[log_scale (D), shift (D)]`; the dimension is `params.len() / 2`.
    pub params: &'a [W],
}

impl<'a, W: Weight> ActNorm<'a, W> {
    fn d(&self) -> usize {
        self.params.len() / 2
    }

    /// `(λ, b)`, D values each.
    #[inline]
    fn halves(&self) -> (&'a [W], &'a [W]) {
        slicing::split(self.params, self.d())
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for ActNorm<'a, W> {
    fn dim(&self) -> usize {
        self.d()
    }

    fn n_params(&self) -> usize {
        2 * self.d()
    }

    fn scratch_len(&self) -> usize {
        0
    }

    /// `zᵢ = e^{λᵢ} xᵢ + bᵢ`; returns Σ λᵢ.
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], _scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        let (lam, bias) = self.halves();
        for (((zi, &xi), l), b) in z.iter_mut().zip(x).zip(lam).zip(bias) {
            let (l, b): (S, S) = (l.get(), b.get());
            *zi = l.exp() * xi + b;
            ldj += l;
        }
        ldj
    }

    /// `xᵢ = (zᵢ − bᵢ) e^{−λᵢ}`; returns −Σ λᵢ.
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        let (lam, bias) = self.halves();
        for (((xi, &zi), l), b) in x.iter_mut().zip(z).zip(lam).zip(bias) {
            let (l, b): (S, S) = (l.get(), b.get());
            *xi = (zi - b) * (-l).exp();
            ldj -= l;
        }
        ldj
    }

    /// `g_x = g_z e^λ`; `∂L/∂λᵢ = g_zᵢ e^{λᵢ} xᵢ + g_ℓ`; `∂L/∂bᵢ = g_zᵢ`.
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
        let (lam, _) = self.halves();
        for ((gx, &gz), l) in g_x.iter_mut().zip(g_z).zip(lam) {
            *gx = gz * l.get::<S>().exp();
        }
        if let Some(gp) = g_params {
            let (g_lam, g_bias) = slicing::split_mut(gp, self.d());
            let grads = g_lam.iter_mut().zip(g_bias.iter_mut());
            for (((gl, gb), (&gz, &xi)), l) in grads.zip(g_z.iter().zip(x)).zip(lam) {
                *gl += gz * l.get::<S>().exp() * xi + g_ldj;
                *gb += gz;
            }
        }
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        0
    }

    /// `g_z = g_x e^{−λ}`; `∂L/∂λᵢ = −g_xᵢ xᵢ − g_ℓ`; `∂L/∂bᵢ = −g_xᵢ e^{−λᵢ}`.
    fn forward_vjp(
        &self,
        z: &[S],
        _ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        _scratch: &mut [S],
    ) {
        let (g_x, g_ldj) = cot.into_parts();
        let (g_z, _g_ctx, g_params) = grads.into_parts();
        let (lam, bias) = self.halves();
        for ((gz, &gx), l) in g_z.iter_mut().zip(g_x).zip(lam) {
            *gz = gx * (-l.get::<S>()).exp();
        }
        if let Some(gp) = g_params {
            let (g_lam, g_bias) = slicing::split_mut(gp, self.d());
            let grads = g_lam.iter_mut().zip(g_bias.iter_mut());
            for (((gl, gb), (&gx, &zi)), (l, b)) in grads.zip(g_x.iter().zip(z)).zip(lam.iter().zip(bias)) {
                let inv = (-l.get::<S>()).exp();
                let xi = (zi - b.get::<S>()) * inv;
                *gl += -(gx * xi) - g_ldj;
                *gb += -(gx * inv);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;

    use super::*;
    use crate::testing::{builder, check_bijection, Lcg, Report};

    #[test]
    fn actnorm_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for seed in 0..4u64 {
            let mut rng = Lcg(200 + seed);
            for d in [1usize, 2, 3, 5] {
                let params = rng.normals(2 * d);
                let build = builder(|p| Box::new(ActNorm { params: p }));
                let x = rng.normals(d);
                let r = check_bijection(&build, &params, &x, &[]);
                assert!(r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10, "{r:?}");
                assert!(r.max_fd() < 1e-6, "d={d}: {r:?}");
                worst.merge(&r);
            }
        }
        std::eprintln!("actnorm worst: {worst:?}");
    }

    #[test]
    fn actnorm_matches_nflows_formula() {
        let params = [0.5f64, -1.0, 0.25, 2.0];
        let l = ActNorm { params: &params[..] };
        let x = [1.5f64, -0.5];
        let mut z = [0.0; 2];
        let ldj = l.inverse(&x, &[], &mut z, &mut []);
        assert!((z[0] - (0.5f64.exp() * 1.5 + 0.25)).abs() < 1e-15);
        assert!((z[1] - ((-1.0f64).exp() * -0.5 + 2.0)).abs() < 1e-15);
        assert!((ldj - (-0.5)).abs() < 1e-15);
    }
}
