//! Invertible linear map in LU form (Kingma & Dhariwal 2018, Glow; nflows' `LULinear`).
//!
//! `W = L U` with `L` unit lower-triangular and `U` upper-triangular with a positive diagonal
//! `dᵢ = softplus(d̃ᵢ) + ε` (nflows: `upper_diag = softplus(unconstrained_upper_diag) + eps`,
//! `eps = 1e-3`). nflows' `LULinear.forward` (data → base) is `F.linear(F.linear(x, U), L, bias)`,
//! so here:
//!
//! - [`Bijection::inverse`] (data → base): `z = L (U x) + b`, log|det ∂z/∂x| = Σᵢ ln dᵢ;
//! - [`Bijection::forward`] (base → data): solve `L y = z − b` (forward substitution, unit
//!   diagonal), then `U x = y` (back substitution); log|det ∂x/∂z| = −Σᵢ ln dᵢ.
//!
//! # Parameter layout (`D² + D` weights)
//!
//! With `T = D(D − 1)/2`:
//!
//! | range | content |
//! |---|---|
//! | `0..T` | strictly lower entries `L[i][j]` (`j < i`), row-major: `L₁₀, L₂₀, L₂₁, L₃₀, …`; index `i(i−1)/2 + j` |
//! | `T..2T` | strictly upper entries `U[i][j]` (`j > i`), row-major: `U₀₁, U₀₂, …, U₀,D−1, U₁₂, …`; index `i(D−1) − i(i−1)/2 + (j − i − 1)` |
//! | `2T..2T+D` | unconstrained diagonal `d̃` of U |
//! | `2T+D..D²+D` | bias `b` |
//!
//! This is the order of numpy's `tril_indices(D, k=−1)` / `triu_indices(D, k=1)`, i.e. nflows'
//! `lower_entries`, `upper_entries`, `unconstrained_upper_diag`, `bias`, which import unchanged.
//! nflows' identity initialization is `L = U = 0` off the diagonal and `d̃ = ln(e^{1−ε} − 1)`.

use crate::layers::Bijection;
use crate::layers::{Cotangent, Grads};
use crate::{math, slicing, Real, Weight};

/// Index of `L[i][j]` (`j < i`) among the strictly lower entries (row-major).
#[inline(always)]
pub const fn lower_index(i: usize, j: usize) -> usize {
    i * (i - 1) / 2 + j
}

/// Index of `U[i][j]` (`j > i`) among the strictly upper entries (row-major) of a `d × d` matrix.
#[inline(always)]
pub const fn upper_index(d: usize, i: usize, j: usize) -> usize {
    i * (d - 1) - i * (i.saturating_sub(1)) / 2 + (j - i - 1)
}

/// Number of parameters of an LU linear layer of dimension `d`: `d² + d`.
pub const fn n_params(d: usize) -> usize {
    d * d + d
}

/// An invertible LU linear layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct LuLinear<'a, W> {
    /// Dimension D.
    pub dim: usize,
    /// `[L entries (T), U entries (T), d̃ (D), b (D)]`, `D² + D` long.
    pub params: &'a [W],
    /// Lower bound of U's diagonal (nflows: `1e-3`).
    pub eps: f64,
}

impl<'a, W: Weight> LuLinear<'a, W> {
    /// `T = D(D − 1)/2`, the number of strictly lower (or upper) entries.
    #[inline(always)]
    fn tri(&self) -> usize {
        self.dim * self.dim.saturating_sub(1) / 2
    }

    /// `L[i][j]` (`j < i`); NaN outside the parameters, as every accessor below.
    #[inline(always)]
    fn l<S: Real>(&self, i: usize, j: usize) -> S {
        slicing::weight(self.params, lower_index(i, j))
    }

    /// `U[i][j]` (`j > i`).
    #[inline(always)]
    fn u<S: Real>(&self, i: usize, j: usize) -> S {
        slicing::weight(self.params, self.tri() + upper_index(self.dim, i, j))
    }

    /// `(dᵢ, σ(d̃ᵢ))`: the diagonal of U and its derivative w.r.t. the raw parameter.
    #[inline(always)]
    fn diag<S: Real>(&self, i: usize) -> (S, S) {
        let raw: S = slicing::weight(self.params, 2 * self.tri() + i);
        (math::softplus(raw) + S::from_f64(self.eps), math::sigmoid(raw))
    }

    /// `bᵢ`.
    #[inline(always)]
    fn bias<S: Real>(&self, i: usize) -> S {
        slicing::weight(self.params, 2 * self.tri() + self.dim + i)
    }

    /// `y = U x`.
    fn upper_mul<S: Real>(&self, x: &[S], y: &mut [S]) {
        let d = self.dim;
        for (i, (yi, &xi)) in y.iter_mut().zip(x).enumerate().take(d) {
            let mut acc = self.diag::<S>(i).0 * xi;
            for (j, &xj) in x.iter().enumerate().take(d).skip(i + 1) {
                acc += self.u::<S>(i, j) * xj;
            }
            *yi = acc;
        }
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for LuLinear<'a, W> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn n_params(&self) -> usize {
        n_params(self.dim)
    }

    fn scratch_len(&self) -> usize {
        2 * self.dim
    }

    /// `z = L (U x) + b`; returns Σ ln dᵢ.
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let d = self.dim;
        let y = slicing::head_mut(scratch, d);
        self.upper_mul(x, y);
        let mut ldj = S::ZERO;
        for (i, (zi, &yi)) in z.iter_mut().zip(y.iter()).enumerate().take(d) {
            let mut acc = yi;
            for (j, &yj) in y.iter().enumerate().take(i) {
                acc += self.l::<S>(i, j) * yj;
            }
            *zi = acc + self.bias(i);
            ldj += self.diag::<S>(i).0.ln();
        }
        ldj
    }

    /// Solves `L y = z − b`, then `U x = y`, in place in `x`; returns −Σ ln dᵢ.
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        let d = self.dim;
        for (i, &zi) in z.iter().enumerate().take(d) {
            let (solved, rest) = slicing::split_mut(x, i);
            let Some(xi) = rest.first_mut() else {
                break;
            };
            let mut acc = zi - self.bias(i);
            for (j, &xj) in solved.iter().enumerate() {
                acc -= self.l::<S>(i, j) * xj;
            }
            *xi = acc;
        }
        let mut ldj = S::ZERO;
        for i in (0..d).rev() {
            let (head, solved) = slicing::split_mut(x, i + 1);
            let (di, _) = self.diag::<S>(i);
            if let Some(xi) = head.last_mut() {
                let mut acc = *xi;
                for (k, &xj) in solved.iter().enumerate().take(d - (i + 1)) {
                    acc -= self.u::<S>(i, i + 1 + k) * xj;
                }
                *xi = acc / di;
            }
            ldj -= di.ln();
        }
        ldj
    }

    /// With `y = U x` and `g_y = Lᵀ g_z`: `g_x = Uᵀ g_y`; `∂L/∂Lᵢⱼ = g_zᵢ yⱼ`,
    /// `∂L/∂Uᵢⱼ = g_yᵢ xⱼ`, `∂L/∂d̃ᵢ = (g_yᵢ xᵢ + g_ℓ / dᵢ) σ(d̃ᵢ)`, `∂L/∂b = g_z`.
    fn inverse_vjp(
        &self,
        x: &[S],
        _ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_z, g_ldj) = cot.into_parts();
        let (g_x, _g_ctx, g_params) = grads.into_parts();
        let d = self.dim;
        let (y, rest) = slicing::split_mut(scratch, d);
        let g_y = slicing::head_mut(rest, d);
        for (j, (gyj, &gzj)) in g_y.iter_mut().zip(g_z).enumerate() {
            let mut acc = gzj;
            for (i, &gzi) in g_z.iter().enumerate().skip(j + 1) {
                acc += self.l::<S>(i, j) * gzi;
            }
            *gyj = acc;
        }
        for (j, (gxj, &gyj)) in g_x.iter_mut().zip(g_y.iter()).enumerate() {
            let mut acc = self.diag::<S>(j).0 * gyj;
            for (i, &gyi) in g_y.iter().enumerate().take(j) {
                acc += self.u::<S>(i, j) * gyi;
            }
            *gxj = acc;
        }
        if let Some(gp) = g_params {
            self.upper_mul(x, y);
            let t = self.tri();
            for (i, ((&gzi, &gyi), &xi)) in g_z.iter().zip(g_y.iter()).zip(x).enumerate().take(d) {
                for (j, &yj) in y.iter().enumerate().take(i) {
                    slicing::add_at(gp, lower_index(i, j), gzi * yj);
                }
                for (j, &xj) in x.iter().enumerate().take(d).skip(i + 1) {
                    slicing::add_at(gp, t + upper_index(d, i, j), gyi * xj);
                }
                let (di, ddi) = self.diag::<S>(i);
                slicing::add_at(gp, 2 * t + i, (gyi * xi + g_ldj / di) * ddi);
                slicing::add_at(gp, 2 * t + d + i, gzi);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec;

    use super::*;
    use crate::testing::{builder, check_bijection, Lcg, Report};

    #[test]
    fn packed_indices_are_row_major_and_dense() {
        for d in 1..7usize {
            let mut k = 0;
            for i in 0..d {
                for j in 0..i {
                    assert_eq!(lower_index(i, j), k);
                    k += 1;
                }
            }
            let mut k = 0;
            for i in 0..d {
                for j in i + 1..d {
                    assert_eq!(upper_index(d, i, j), k);
                    k += 1;
                }
            }
            assert_eq!(k, d * (d - 1) / 2);
        }
    }

    #[test]
    fn lu_linear_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for seed in 0..4u64 {
            let mut rng = Lcg(400 + seed);
            for d in [1usize, 2, 3, 5] {
                let params: std::vec::Vec<f64> = rng.normals(n_params(d)).iter().map(|v| 0.6 * v).collect();
                for eps in [1e-3, 0.1] {
                    let build = builder(move |p| {
                        Box::new(LuLinear {
                            dim: d,
                            params: p,
                            eps,
                        })
                    });
                    let x = rng.normals(d);
                    let r = check_bijection(&build, &params, &x, &[]);
                    assert!(r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10, "{r:?}");
                    assert!(r.max_fd() < 1e-6, "d={d}: {r:?}");
                    worst.merge(&r);
                }
            }
        }
        std::eprintln!("lu_linear worst: {worst:?}");
    }

    #[test]
    fn lu_linear_equals_dense_lu_product() {
        let d = 3;
        let mut rng = Lcg(9);
        let params = rng.normals(n_params(d));
        let layer = LuLinear {
            dim: d,
            params: &params[..],
            eps: 1e-3,
        };
        let (mut lm, mut um) = (vec![0.0; 9], vec![0.0; 9]);
        for i in 0..d {
            lm[i * d + i] = 1.0;
            um[i * d + i] = crate::math::softplus(params[6 + i]) + 1e-3;
            for j in 0..i {
                lm[i * d + j] = params[lower_index(i, j)];
            }
            for j in i + 1..d {
                um[i * d + j] = params[3 + upper_index(d, i, j)];
            }
        }
        let x = [0.4, -1.3, 0.9];
        let mut z = [0.0; 3];
        let mut s = [0.0; 6];
        layer.inverse(&x, &[], &mut z, &mut s);
        for i in 0..d {
            let mut acc = params[9 + i];
            for k in 0..d {
                for j in 0..d {
                    acc += lm[i * d + k] * um[k * d + j] * x[j];
                }
            }
            assert!((z[i] - acc).abs() < 1e-12, "{i}: {} vs {acc}", z[i]);
        }
    }
}
