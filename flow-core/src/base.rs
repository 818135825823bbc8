//! Base distributions p_base(z): standard normal, diagonal normal, full-covariance normal
//! through a Cholesky factor (`Σ = L Lᵀ`), and a mixture of diagonal normals
//! ([`mixture::GaussianMixture`]), and independent Student-t coordinates ([`student_t::StudentT`]).
//!
//! Sampling starts from standard-normal noise ε and maps it with [`Base::noise_to_base`]
//! (`z = μ + σ ε`, `z = μ + L ε`, a component picked by ε₀ and its recycled uniform, or
//! `z = μ + σ F⁻¹_ν(Φ(ε))`).

pub mod mixture;
pub mod student_t;

pub use mixture::GaussianMixture;
pub use student_t::StudentT;

use crate::{slicing, Real, Weight};

/// A base distribution over ℝᴰ.
pub trait Base<S: Real> {
    /// Dimension D.
    fn dim(&self) -> usize;
    /// Number of parameters.
    fn n_params(&self) -> usize;
    /// Scratch elements needed by the methods below.
    fn scratch_len(&self) -> usize {
        0
    }
    /// log p_base(z).
    fn log_prob(&self, z: &[S], scratch: &mut [S]) -> S;
    /// Maps standard-normal noise ε to a base point z.
    fn noise_to_base(&self, eps: &[S], z: &mut [S]);
    /// Writes `g_z = g · ∂ log p/∂z`, and adds `g · ∂ log p/∂θ` into `g_params` when given.
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, scratch: &mut [S]);
    /// Adds `g_zᵀ ∂z/∂θ` of `z = noise_to_base(ε)` into `g_params` (the reparameterization
    /// gradient of sampling).
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]);
}

/// N(0, I).
#[derive(Clone, Copy, Debug)]
pub struct StandardNormal {
    /// Dimension D.
    pub dim: usize,
}

impl<S: Real> Base<S> for StandardNormal {
    fn dim(&self) -> usize {
        self.dim
    }
    fn n_params(&self) -> usize {
        0
    }
    /// −½ Σ zᵢ² − D · ½ ln 2π.
    #[inline]
    fn log_prob(&self, z: &[S], _: &mut [S]) -> S {
        let mut sq = S::ZERO;
        for &v in z {
            sq += v * v;
        }
        -(S::from_f64(0.5) * sq) - S::from_f64(self.dim as f64) * S::HALF_LN_2PI
    }
    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        slicing::copy(z, eps);
    }
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], _: Option<&mut [S]>, _: &mut [S]) {
        for (gz, &v) in g_z.iter_mut().zip(z) {
            *gz = -(g * v);
        }
    }
    /// No parameters.
    fn noise_to_base_vjp(&self, _: &[S], _: &[S], _: &mut [S]) {}
}

/// N(μ, diag(σ²)). Parameters: `μ` (D) then `σ` (D), as zuko's `DiagNormal(loc, scale)`.
#[derive(Clone, Copy, Debug)]
pub struct DiagNormal<'a, W> {
    /// `[μ₀ … μ_{D−1}, σ₀ … σ_{D−1}]`.
    pub params: &'a [W],
}

impl<'a, S: Real, W: Weight> Base<S> for DiagNormal<'a, W> {
    fn dim(&self) -> usize {
        self.params.len() / 2
    }
    fn n_params(&self) -> usize {
        self.params.len()
    }
    /// Σᵢ [−½ ((zᵢ − μᵢ)/σᵢ)² − ln σᵢ − ½ ln 2π].
    fn log_prob(&self, z: &[S], _: &mut [S]) -> S {
        let (mu, sigma) = self.params.split_at(self.params.len() / 2);
        let mut acc = S::ZERO;
        for ((&v, m), s) in z.iter().zip(mu).zip(sigma) {
            let s: S = s.get();
            let u = (v - m.get()) / s;
            acc += -(S::from_f64(0.5) * u * u) - s.ln() - S::HALF_LN_2PI;
        }
        acc
    }
    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        let (mu, sigma) = self.params.split_at(self.params.len() / 2);
        for (((zi, &e), m), s) in z.iter_mut().zip(eps).zip(mu).zip(sigma) {
            *zi = m.get::<S>() + s.get::<S>() * e;
        }
    }
    /// `z = μ + σ ε`: `∂/∂μ = g_z`, `∂/∂σ = g_z ε`.
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]) {
        let (g_mu, g_sigma) = slicing::split_mut(g_params, self.params.len() / 2);
        for (((gm, gs), &gz), &e) in g_mu.iter_mut().zip(g_sigma.iter_mut()).zip(g_z).zip(eps) {
            *gm += gz;
            *gs += gz * e;
        }
    }
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, _: &mut [S]) {
        let d = self.params.len() / 2;
        let (mu, sigma) = slicing::split(self.params, d);
        for (((gz, &v), m), s) in g_z.iter_mut().zip(z).zip(mu).zip(sigma) {
            let s: S = s.get();
            let u = (v - m.get()) / s;
            *gz = -(g * u / s);
        }
        if let Some(gp) = g_params {
            let (g_mu, g_sigma) = slicing::split_mut(gp, d);
            let grads = g_mu.iter_mut().zip(g_sigma.iter_mut());
            for (((gm, gs), &v), (m, s)) in grads.zip(z).zip(mu.iter().zip(sigma)) {
                let s: S = s.get();
                let u = (v - m.get()) / s;
                *gm += g * u / s;
                *gs += g * (u * u - S::ONE) / s;
            }
        }
    }
}

/// N(μ, L Lᵀ) with L lower-triangular with a positive diagonal.
///
/// Parameters: `μ` (D) then the rows of L packed (`L₀₀, L₁₀, L₁₁, L₂₀, …`, D(D+1)/2 entries).
#[derive(Clone, Copy, Debug)]
pub struct CholeskyNormal<'a, W> {
    /// Dimension D.
    pub dim: usize,
    /// `[μ, packed L]`.
    pub params: &'a [W],
}

/// Index of `L[i][j]` (j ≤ i) in the packed rows.
#[inline(always)]
pub const fn packed(i: usize, j: usize) -> usize {
    i * (i + 1) / 2 + j
}

impl<'a, W: Weight> CholeskyNormal<'a, W> {
    /// `L[i][j]` (NaN outside the parameters).
    #[inline]
    fn l<S: Real>(&self, i: usize, j: usize) -> S {
        slicing::weight(self.params, self.dim + packed(i, j))
    }

    /// Solves `L u = z − μ` by forward substitution, walking the packed rows of L.
    fn whiten<S: Real>(&self, z: &[S], u: &mut [S]) {
        let (mu, mut rows) = slicing::split(self.params, self.dim);
        for (i, (&zi, m)) in z.iter().zip(mu).enumerate() {
            let (row, rest) = slicing::split(rows, i + 1);
            rows = rest;
            let (solved, todo) = slicing::split_mut(u, i);
            let (Some(ui), Some((l_ii, l_i))) = (todo.first_mut(), row.split_last()) else {
                return;
            };
            let mut r = zi - m.get();
            for (l_ij, &uj) in l_i.iter().zip(solved.iter()) {
                r -= l_ij.get::<S>() * uj;
            }
            *ui = r / l_ii.get::<S>();
        }
    }
}

impl<'a, S: Real, W: Weight> Base<S> for CholeskyNormal<'a, W> {
    fn dim(&self) -> usize {
        self.dim
    }
    fn n_params(&self) -> usize {
        self.params.len()
    }
    fn scratch_len(&self) -> usize {
        2 * self.dim
    }
    /// −½ |L⁻¹(z − μ)|² − Σ ln Lᵢᵢ − D · ½ ln 2π.
    fn log_prob(&self, z: &[S], scratch: &mut [S]) -> S {
        let u = slicing::head_mut(scratch, self.dim);
        self.whiten(z, u);
        let mut sq = S::ZERO;
        let mut logdiag = S::ZERO;
        for (i, &v) in u.iter().enumerate() {
            sq += v * v;
            logdiag += self.l::<S>(i, i).ln();
        }
        -(S::from_f64(0.5) * sq) - logdiag - S::from_f64(self.dim as f64) * S::HALF_LN_2PI
    }
    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        let mu = slicing::head(self.params, self.dim);
        for (i, (zi, m)) in z.iter_mut().zip(mu).enumerate() {
            let mut acc: S = m.get();
            for (j, &e) in eps.iter().enumerate().take(i + 1) {
                acc += self.l::<S>(i, j) * e;
            }
            *zi = acc;
        }
    }
    /// `z = μ + L ε`: `∂/∂μ = g_z`, `∂/∂Lᵢⱼ = g_zᵢ εⱼ`.
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]) {
        let (g_mu, mut g_rows) = slicing::split_mut(g_params, self.dim);
        for (i, (gm, &gz)) in g_mu.iter_mut().zip(g_z).enumerate() {
            *gm += gz;
            let (g_row, rest) = slicing::split_mut(core::mem::take(&mut g_rows), i + 1);
            g_rows = rest;
            for (gl, &e) in g_row.iter_mut().zip(eps) {
                *gl += gz * e;
            }
        }
    }
    /// With `u = L⁻¹(z − μ)` and `w = L⁻ᵀ u`: ∂/∂z = −w, ∂/∂μ = w, ∂/∂Lᵢⱼ = wᵢ uⱼ − [i = j]/Lᵢᵢ.
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, scratch: &mut [S]) {
        let d = self.dim;
        let (u, rest) = slicing::split_mut(scratch, d);
        let w = slicing::head_mut(rest, d);
        self.whiten(z, u);
        // Back substitution for Lᵀ w = u, last row first.
        for (i, &ui) in u.iter().enumerate().rev() {
            let (head, solved) = slicing::split_mut(w, i + 1);
            let Some(wi) = head.last_mut() else {
                return;
            };
            let mut r = ui;
            for (k, &wj) in solved.iter().enumerate() {
                r -= self.l::<S>(i + 1 + k, i) * wj;
            }
            *wi = r / self.l(i, i);
        }
        for (gz, &wi) in g_z.iter_mut().zip(w.iter()) {
            *gz = -(g * wi);
        }
        if let Some(gp) = g_params {
            // μ's gradient, then L's packed rows, row i being i + 1 long.
            let (g_mu, mut g_rows) = slicing::split_mut(gp, d);
            for (i, (gm, &wi)) in g_mu.iter_mut().zip(w.iter()).enumerate() {
                *gm += g * wi;
                let (g_row, rest) = slicing::split_mut(core::mem::take(&mut g_rows), i + 1);
                g_rows = rest;
                for (j, (gl, &uj)) in g_row.iter_mut().zip(u.iter()).enumerate() {
                    let mut v = wi * uj;
                    if i == j {
                        v -= S::ONE / self.l(i, i);
                    }
                    *gl += g * v;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::testing::Lcg;
    use std::vec::Vec;

    fn check<B: for<'a> Fn(&'a [f64]) -> std::boxed::Box<dyn Base<f64> + 'a>>(
        build: B,
        params: Vec<f64>,
        z: &[f64],
    ) {
        let b = build(&params);
        let mut s = [0.0; 16];
        let h = 1e-6;
        let mut gz = [0.0; 3];
        let mut gp = std::vec![0.0; params.len()];
        b.log_prob_vjp(z, 1.3, &mut gz, Some(&mut gp), &mut s);
        for i in 0..z.len() {
            let (mut zp, mut zm) = (z.to_vec(), z.to_vec());
            zp[i] += h;
            zm[i] -= h;
            let fd = 1.3 * (b.log_prob(&zp, &mut s) - b.log_prob(&zm, &mut s)) / (2.0 * h);
            assert!((fd - gz[i]).abs() < 1e-6, "z{i}: {fd} vs {}", gz[i]);
        }
        for k in 0..params.len() {
            let (mut pp, mut pm) = (params.clone(), params.clone());
            pp[k] += h;
            pm[k] -= h;
            let fd = 1.3 * (build(&pp).log_prob(z, &mut s) - build(&pm).log_prob(z, &mut s)) / (2.0 * h);
            assert!((fd - gp[k]).abs() < 1e-6, "param {k}: {fd} vs {}", gp[k]);
        }
        // The sampling map z = b(ε): g_zᵀ ∂z/∂θ against finite differences (it is linear in θ).
        let (eps, g) = ([0.4, -0.9, 1.3], [0.7, -0.2, 1.1]);
        let mut gp = std::vec![0.0; params.len()];
        b.noise_to_base_vjp(&eps, &g, &mut gp);
        let dot = |b: &dyn Base<f64>| {
            let mut z = [0.0; 3];
            b.noise_to_base(&eps, &mut z);
            z.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>()
        };
        for k in 0..params.len() {
            let (mut pp, mut pm) = (params.clone(), params.clone());
            pp[k] += h;
            pm[k] -= h;
            let fd = (dot(&*build(&pp)) - dot(&*build(&pm))) / (2.0 * h);
            assert!((fd - gp[k]).abs() < 1e-6, "noise param {k}: {fd} vs {}", gp[k]);
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let z = [0.3, -1.1, 0.7];
        check(
            |_| std::boxed::Box::new(StandardNormal { dim: 3 }),
            Vec::new(),
            &z,
        );
        check(
            |p| std::boxed::Box::new(DiagNormal { params: p }),
            std::vec![0.1, -0.2, 0.3, 1.5, 0.7, 1.1],
            &z,
        );
        check(
            |p| std::boxed::Box::new(CholeskyNormal { dim: 3, params: p }),
            std::vec![0.1, -0.2, 0.3, 1.2, 0.4, 0.9, -0.3, 0.2, 1.4],
            &z,
        );
        // Two components; the noise (0.4, …) picks the second, the third coordinate's noise
        // (1.3) is used as is.
        let mut p = std::vec![0.2, -0.4];
        p.extend([0.1, -0.2, 0.3, -0.5, 0.6, 0.2]);
        p.extend([0.2, -0.1, 0.3, -0.2, 0.1, 0.4]);
        check(
            |p| {
                std::boxed::Box::new(GaussianMixture {
                    dim: 3,
                    components: 2,
                    params: p,
                })
            },
            p,
            &z,
        );
    }

    #[test]
    fn student_t_gradients_match_finite_differences() {
        let z = [0.3, -1.1, 2.7];
        // ν = 3, 0.8 and 12; the third coordinate sits in a tail.
        let p = std::vec![0.1, -0.2, 0.3, 0.2, -0.3, 0.1, 3f64.ln(), 0.8f64.ln(), 12f64.ln()];
        check(|p| std::boxed::Box::new(StudentT { params: p }), p, &z);
    }

    #[test]
    fn cholesky_normal_matches_dense_formula_and_samples_have_its_covariance() {
        let params = [0.5, -1.0, 1.0, 0.8, 0.6];
        let b = CholeskyNormal {
            dim: 2,
            params: &params[..],
        };
        // Σ = L Lᵀ = [[1, .8], [.8, .64 + .36]] = [[1, .8], [.8, 1]].
        let z = [1.2f64, 0.3];
        let r = [z[0] - 0.5, z[1] + 1.0];
        let det = 1.0 - 0.64;
        let quad = (r[0] * r[0] - 2.0 * 0.8 * r[0] * r[1] + r[1] * r[1]) / det;
        let exact = -0.5 * quad - 0.5 * f64::ln(det) - (2.0 * std::f64::consts::PI).ln();
        let mut s = [0.0; 4];
        assert!((Base::<f64>::log_prob(&b, &z, &mut s) - exact).abs() < 1e-12);
        let mut rng = Lcg(5);
        let (mut c01, n) = (0.0, 200_000);
        for _ in 0..n {
            let e = [rng.normal(), rng.normal()];
            let mut z = [0.0; 2];
            b.noise_to_base(&e, &mut z);
            c01 += (z[0] - 0.5) * (z[1] + 1.0);
        }
        assert!((c01 / n as f64 - 0.8).abs() < 0.01);
    }
}
