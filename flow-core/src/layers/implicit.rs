//! The vector-Jacobian product of a layer's sampling direction from its density direction, by
//! implicit differentiation: the default of [`Bijection::forward_vjp`].
//!
//! With `x = F(z)` the sampling map, `I = F⁻¹` the density map, `ℓ_I(x)` its log-determinant and
//! `ℓ_F(z) = −ℓ_I(F(z))`, a loss `L(x, ℓ_F)` with cotangents `(g_x, g_ℓ)` has
//!
//! `ĝ = g_x − g_ℓ ∂ℓ_I/∂x`,   `J_Iᵀ v = ĝ`,   `dL/dz = v`,
//! `dL/dθ = −g_ℓ ∂ℓ_I/∂θ − vᵀ ∂I/∂θ` (likewise for the context),
//!
//! i.e. two calls of [`Bijection::inverse_vjp`] at `x` (cotangents `(0, −g_ℓ)`, then `(−v, 0)`)
//! around a linear solve. The default solves it densely: `D` more calls build `J_I` row by row
//! and Gaussian elimination with partial pivoting solves `J_Iᵀ v = ĝ` (`O(D³)`). Layers whose
//! Jacobian is triangular or diagonal override [`Bijection::forward_vjp`] with their direct form.

use crate::layers::{Bijection, Cotangent, Grads};
use crate::{slicing, Real};

/// Scratch of [`forward_vjp_dense`] for a layer of dimension `d`, context `c` and scratch `s`.
pub(crate) const fn dense_scratch_len(d: usize, c: usize, s: usize) -> usize {
    d * d + 4 * d + c + s
}

/// [`Bijection::forward_vjp`] by implicit differentiation with a dense solve (module docs).
/// `scratch`: `x, ĝ, e` (D each), `J_I` (D²), a context buffer, a row (D), then the layer's
/// scratch.
pub(crate) fn forward_vjp_dense<S: Real, L: Bijection<S> + ?Sized>(
    layer: &L,
    z: &[S],
    ctx: &[S],
    cot: Cotangent<&[S], S>,
    grads: Grads<'_, S>,
    scratch: &mut [S],
) {
    let (g_x, g_ldj) = cot.into_parts();
    let (g_z, g_ctx, mut g_params) = grads.into_parts();
    let d = layer.dim();
    let (x, rest) = slicing::split_mut(scratch, d);
    let (gh, rest) = slicing::split_mut(rest, d);
    let (e, rest) = slicing::split_mut(rest, d);
    let (jac, rest) = slicing::split_mut(rest, d * d);
    let (c_tmp, rest) = slicing::split_mut(rest, ctx.len());
    layer.forward(z, ctx, x, rest);
    // ĝ = g_x − g_ℓ ∂ℓ_I/∂x, and the direct part −g_ℓ ∂ℓ_I/∂θ of the parameters' gradient.
    e.fill(S::ZERO);
    let g = Grads::new(&mut *gh, &mut *g_ctx, g_params.as_deref_mut());
    layer.inverse_vjp(x, ctx, Cotangent::new(e, -g_ldj), g, rest);
    for (g, &gx) in gh.iter_mut().zip(g_x) {
        *g += gx;
    }
    // Row i of J_I is J_Iᵀ eᵢ; stored so that jac[j·d + i] = ∂zᵢ/∂xⱼ, the matrix J_Iᵀ.
    for i in 0..d {
        e.fill(S::ZERO);
        slicing::add_at(e, i, S::ONE);
        c_tmp.fill(S::ZERO);
        let (row, tail) = slicing::split_mut(rest, d);
        layer.inverse_vjp(
            x,
            ctx,
            Cotangent::new(e, S::ZERO),
            Grads::new(row, c_tmp, None),
            tail,
        );
        for (j, &r) in row.iter().enumerate() {
            if let Some(a) = jac.get_mut(j * d + i) {
                *a = r;
            }
        }
    }
    solve(jac, d, gh);
    slicing::copy(g_z, gh);
    for v in gh.iter_mut() {
        *v = -*v;
    }
    layer.inverse_vjp(
        x,
        ctx,
        Cotangent::new(gh, S::ZERO),
        Grads::new(e, g_ctx, g_params),
        rest,
    );
}

/// Solves `A v = b` in place (`b` becomes `v`) for the row-major `n × n` matrix `a` (destroyed),
/// by Gaussian elimination with partial pivoting. A singular `A` gives non-finite values; short
/// buffers leave `b` unspecified (no panic).
fn solve<S: Real>(a: &mut [S], n: usize, b: &mut [S]) {
    let at = |a: &[S], r: usize, c: usize| a.get(r * n + c).copied().unwrap_or(S::NAN);
    for c in 0..n {
        let mut p = c;
        for r in c + 1..n {
            if at(a, r, c).abs() > at(a, p, c).abs() {
                p = r;
            }
        }
        if p != c {
            for k in 0..n {
                let (u, w) = (at(a, c, k), at(a, p, k));
                set(a, c * n + k, w);
                set(a, p * n + k, u);
            }
            let (u, w) = (b.get(c).copied(), b.get(p).copied());
            if let (Some(u), Some(w)) = (u, w) {
                set(b, c, w);
                set(b, p, u);
            }
        }
        let piv = at(a, c, c);
        let bc = b.get(c).copied().unwrap_or(S::NAN);
        for r in c + 1..n {
            let f = at(a, r, c) / piv;
            for k in c..n {
                let v = at(a, r, k) - f * at(a, c, k);
                set(a, r * n + k, v);
            }
            if let Some(br) = b.get_mut(r) {
                *br -= f * bc;
            }
        }
    }
    for c in (0..n).rev() {
        let mut s = b.get(c).copied().unwrap_or(S::NAN);
        for k in c + 1..n {
            s -= at(a, c, k) * b.get(k).copied().unwrap_or(S::NAN);
        }
        set(b, c, s / at(a, c, c));
    }
}

/// `s[k] = v` when `k` is in range.
#[inline]
fn set<S: Copy>(s: &mut [S], k: usize, v: S) {
    if let Some(t) = s.get_mut(k) {
        *t = v;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn solve_matches_a_known_system_with_pivoting() {
        // A has a zero leading entry, so it needs a row swap.
        let mut a = [0.0, 2.0, 1.0, 1.0, 1.0, 0.0, 3.0, 0.0, 1.0];
        let v = [1.0, -2.0, 0.5];
        let mut b = [0.0; 3];
        for r in 0..3 {
            b[r] = (0..3).map(|k| a[r * 3 + k] * v[k]).sum();
        }
        solve(&mut a, 3, &mut b);
        for (x, y) in b.iter().zip(v) {
            assert!((x - y).abs() < 1e-14, "{b:?}");
        }
    }
}
