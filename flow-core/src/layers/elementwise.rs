//! Elementwise bijections: the same scalar map applied to every feature.
//!
//! Direction convention (as nflows' `Sigmoid`, `Logit`, `Tanh` transforms): **each kind is named
//! after its density-direction map** `z = f(x)` ([`Bijection::inverse`], data → base), with
//! log|det ∂z/∂x| = Σᵢ ln|f'(xᵢ)|. [`Bijection::forward`] (base → data) is `x = f⁻¹(z)`.
//! Every map comes with its inverse as another kind, so either direction can be used:
//!
//! | kind | `z = f(x)` (data → base) | data domain | ln f'(x) |
//! |---|---|---|---|
//! | [`Affine`](ElementwiseKind::Affine) | `(x − m) / s` | ℝ | `−ln s` |
//! | [`Sigmoid`](ElementwiseKind::Sigmoid) | `σ(x) = 1/(1 + e⁻ˣ)` | ℝ | `−softplus(x) − softplus(−x)` |
//! | [`Logit`](ElementwiseKind::Logit) | `ln x − ln(1 − x)` | (0, 1) | `−ln x − ln(1 − x)` |
//! | [`Softplus`](ElementwiseKind::Softplus) | `ln(1 + eˣ)` | ℝ | `−softplus(−x)` |
//! | [`InvSoftplus`](ElementwiseKind::InvSoftplus) | `x + ln(1 − e⁻ˣ)` | (0, ∞) | `−ln(1 − e⁻ˣ)` |
//! | [`Tanh`](ElementwiseKind::Tanh) | `tanh x` | ℝ | `2(ln 2 − abs(x) − softplus(−2 abs(x)))` |
//! | [`Atanh`](ElementwiseKind::Atanh) | `½ (ln(1 + x) − ln(1 − x))` | (−1, 1) | `−ln(1 − x) − ln(1 + x)` |
//! | [`Log`](ElementwiseKind::Log) | `ln x` | (0, ∞) | `−ln x` |
//! | [`Exp`](ElementwiseKind::Exp) | `eˣ` | ℝ | `x` |
//!
//! Typical uses: `Affine` stores the standardization fitted on the training data inside the model
//! (`m` = mean, `s` = standard deviation, log-det `−Σ ln s`); `Logit`, `InvSoftplus` and `Atanh`
//! map data constrained to (0, 1), (0, ∞) or (−1, 1) onto ℝ before the flow.
//!
//! Parameters: `Affine` has `[mean m (D), std s (D)]` (`2D` weights, `s > 0`; the log-det uses
//! `ln |s|`); every other kind has none.
//!
//! # Non-finite and out-of-domain values
//! A NaN input gives a NaN output and (except for `Affine`, whose log-det does not depend on x) a
//! NaN log-det. An input outside the closed domain of the map
//! that is being applied (e.g. `Logit` of 1.5, `InvSoftplus` of −1, or `forward` of `Sigmoid` at
//! z = 2) gives a NaN output **and a NaN log-det** (checked explicitly, not left to `ln` of a
//! negative number). On the boundary of the domain the map is evaluated as the limit: `Logit` of 0
//! gives z = −∞ with log-det +∞, `Atanh` of 1 gives z = +∞, log-det +∞; `Sigmoid` of a large x
//! saturates to z = 1 in floating point while its log-det stays finite. The density of such a point
//! is then NaN or −∞, never a silent finite number.

use crate::layers::{Cotangent, Grads};
use serde::{Deserialize, Serialize};

use crate::layers::Bijection;
use crate::{math, slicing, Real, Weight};

/// Which scalar map an [`Elementwise`] layer applies (named after its data → base map).
///
/// New kinds are only ever appended (the model format serializes this enum by index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ElementwiseKind {
    /// `z = (x − m) / s` with parameters `[m (D), s (D)]`; log-det `−Σ ln s`.
    Affine,
    /// `z = σ(x)`: ℝ → (0, 1).
    Sigmoid,
    /// `z = logit(x) = ln(x / (1 − x))`: (0, 1) → ℝ (the inverse of `Sigmoid`).
    Logit,
    /// `z = softplus(x) = ln(1 + eˣ)`: ℝ → (0, ∞).
    Softplus,
    /// `z = softplus⁻¹(x) = x + ln(1 − e⁻ˣ)`: (0, ∞) → ℝ (the inverse of `Softplus`).
    InvSoftplus,
    /// `z = tanh(x)`: ℝ → (−1, 1).
    Tanh,
    /// `z = atanh(x)`: (−1, 1) → ℝ (the inverse of `Tanh`).
    Atanh,
    /// `z = ln x`: (0, ∞) → ℝ (positive data such as lognormal fields).
    Log,
    /// `z = eˣ`: ℝ → (0, ∞) (the inverse of `Log`).
    Exp,
}

impl ElementwiseKind {
    /// Number of parameters for `dim` features: `2 · dim` for `Affine`, 0 otherwise.
    pub const fn n_params(self, dim: usize) -> usize {
        match self {
            ElementwiseKind::Affine => 2 * dim,
            _ => 0,
        }
    }

    /// The kind whose density-direction map is this kind's inverse (`None` for `Affine`, whose
    /// inverse needs different parameters).
    pub const fn inverse_kind(self) -> Option<ElementwiseKind> {
        Some(match self {
            ElementwiseKind::Affine => return None,
            ElementwiseKind::Sigmoid => ElementwiseKind::Logit,
            ElementwiseKind::Logit => ElementwiseKind::Sigmoid,
            ElementwiseKind::Softplus => ElementwiseKind::InvSoftplus,
            ElementwiseKind::InvSoftplus => ElementwiseKind::Softplus,
            ElementwiseKind::Tanh => ElementwiseKind::Atanh,
            ElementwiseKind::Atanh => ElementwiseKind::Tanh,
            ElementwiseKind::Log => ElementwiseKind::Exp,
            ElementwiseKind::Exp => ElementwiseKind::Log,
        })
    }
}

/// `false` when `v < lo` or `v > hi` (so NaN counts as inside and propagates).
#[inline(always)]
fn in_domain<S: Real>(v: S, lo: S, hi: S) -> bool {
    !(v < lo || v > hi)
}

/// ln(1 − tanh² x) = 2 (ln 2 − |x| − softplus(−2|x|)), finite for every finite x.
#[inline]
fn ln_sech2<S: Real>(x: S) -> S {
    let a = x.abs();
    let two = S::from_f64(2.0);
    two * (S::from_f64(core::f64::consts::LN_2) - a - math::softplus(-(two * a)))
}

/// Applies the parameter-free map of `kind` (not `Affine`): returns `(f(x), ln|f'(x)|)`.
#[inline]
fn apply<S: Real>(kind: ElementwiseKind, x: S) -> (S, S) {
    let one = S::ONE;
    let nan = (S::NAN, S::NAN);
    match kind {
        ElementwiseKind::Affine => nan,
        ElementwiseKind::Sigmoid => (math::sigmoid(x), -math::softplus(x) - math::softplus(-x)),
        ElementwiseKind::Logit => {
            if !in_domain(x, S::ZERO, one) {
                return nan;
            }
            let (lx, l1x) = (x.ln(), (-x).ln_1p());
            (lx - l1x, -lx - l1x)
        }
        ElementwiseKind::Softplus => (math::softplus(x), -math::softplus(-x)),
        ElementwiseKind::InvSoftplus => {
            if !in_domain(x, S::ZERO, S::INFINITY) {
                return nan;
            }
            // ln(1 − e⁻ˣ) = ln(−expm1(−x)).
            let l = (-(-x).exp_m1()).ln();
            (x + l, -l)
        }
        ElementwiseKind::Tanh => (x.tanh(), ln_sech2(x)),
        ElementwiseKind::Atanh => {
            if !in_domain(x, -one, one) {
                return nan;
            }
            let (lp, lm) = (x.ln_1p(), (-x).ln_1p());
            (S::from_f64(0.5) * (lp - lm), -lp - lm)
        }
        ElementwiseKind::Log => {
            if !in_domain(x, S::ZERO, S::INFINITY) {
                return nan;
            }
            let l = x.ln();
            (l, -l)
        }
        ElementwiseKind::Exp => (x.exp(), x),
    }
}

/// `(f'(x), d ln|f'(x)| / dx)` of the parameter-free map of `kind`, for x inside its domain.
#[inline]
fn grad<S: Real>(kind: ElementwiseKind, x: S) -> (S, S) {
    let one = S::ONE;
    let two = S::from_f64(2.0);
    match kind {
        ElementwiseKind::Affine => (S::NAN, S::NAN),
        ElementwiseKind::Sigmoid => {
            let (s, sm) = (math::sigmoid(x), math::sigmoid(-x));
            (s * sm, sm - s)
        }
        ElementwiseKind::Logit => {
            let om = one - x;
            (one / (x * om), one / om - one / x)
        }
        ElementwiseKind::Softplus => {
            let s = math::sigmoid(x);
            (s, math::sigmoid(-x))
        }
        ElementwiseKind::InvSoftplus => {
            // f' = 1/(1 − e⁻ˣ); (ln f')' = −1/(eˣ − 1).
            (one / (-(-x).exp_m1()), -(one / x.exp_m1()))
        }
        ElementwiseKind::Tanh => (ln_sech2(x).exp(), -(two * x.tanh())),
        ElementwiseKind::Atanh => {
            let q = (one - x) * (one + x);
            (one / q, two * x / q)
        }
        ElementwiseKind::Log => (one / x, -(one / x)),
        ElementwiseKind::Exp => (x.exp(), one),
    }
}

/// An elementwise layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Elementwise<'a, W> {
    /// The map.
    pub kind: ElementwiseKind,
    /// Number of features D.
    pub dim: usize,
    /// `[m (D), s (D)]` for `Affine`, empty otherwise.
    pub params: &'a [W],
}

impl<'a, W: Weight> Elementwise<'a, W> {
    /// `(m, s)` of the affine map, D values each, zipped.
    #[inline(always)]
    fn ms(&self) -> core::iter::Zip<core::slice::Iter<'a, W>, core::slice::Iter<'a, W>> {
        let (m, s) = slicing::split(self.params, self.dim);
        m.iter().zip(s)
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for Elementwise<'a, W> {
    fn dim(&self) -> usize {
        self.dim
    }

    fn n_params(&self) -> usize {
        self.kind.n_params(self.dim)
    }

    fn scratch_len(&self) -> usize {
        0
    }

    /// `zᵢ = f(xᵢ)`; returns Σ ln|f'(xᵢ)|.
    fn inverse(&self, x: &[S], _ctx: &[S], z: &mut [S], _scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        if self.kind == ElementwiseKind::Affine {
            for ((zi, &xi), (m, s)) in z.iter_mut().zip(x).zip(self.ms()) {
                let (m, s): (S, S) = (m.get(), s.get());
                *zi = (xi - m) / s;
                ldj -= s.abs().ln();
            }
        } else {
            for (zi, &xi) in z.iter_mut().zip(x) {
                let (v, l) = apply(self.kind, xi);
                *zi = v;
                ldj += l;
            }
        }
        ldj
    }

    /// `xᵢ = f⁻¹(zᵢ)`; returns Σ ln|(f⁻¹)'(zᵢ)|.
    fn forward(&self, z: &[S], _ctx: &[S], x: &mut [S], _scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        match self.kind.inverse_kind() {
            None => {
                for ((xi, &zi), (m, s)) in x.iter_mut().zip(z).zip(self.ms()) {
                    let (m, s): (S, S) = (m.get(), s.get());
                    *xi = zi * s + m;
                    ldj += s.abs().ln();
                }
            }
            Some(inv) => {
                for (xi, &zi) in x.iter_mut().zip(z) {
                    let (v, l) = apply(inv, zi);
                    *xi = v;
                    ldj += l;
                }
            }
        }
        ldj
    }

    /// `g_xᵢ = g_zᵢ f'(xᵢ) + g_ℓ (ln|f'|)'(xᵢ)`; for `Affine`: `g_x = g_z / s`,
    /// `∂L/∂m = −g_z / s`, `∂L/∂s = −g_z (x − m)/s² − g_ℓ / s`.
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
        if self.kind == ElementwiseKind::Affine {
            for ((gx, &gz), (_, s)) in g_x.iter_mut().zip(g_z).zip(self.ms()) {
                *gx = gz / s.get::<S>();
            }
            if let Some(gp) = g_params {
                let (g_m, g_s) = slicing::split_mut(gp, self.dim);
                let grads = g_m.iter_mut().zip(g_s.iter_mut());
                for (((gm, gs), (&gz, &xi)), (m, s)) in grads.zip(g_z.iter().zip(x)).zip(self.ms()) {
                    let (m, s): (S, S) = (m.get(), s.get());
                    let u = (xi - m) / s;
                    *gm -= gz / s;
                    *gs -= (gz * u + g_ldj) / s;
                }
            }
        } else {
            for ((gx, &gz), &xi) in g_x.iter_mut().zip(g_z).zip(x).take(self.dim) {
                let (df, dl) = grad(self.kind, xi);
                *gx = gz * df + g_ldj * dl;
            }
        }
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        0
    }

    /// The inverse map's VJP at `z` (`f⁻¹` is another kind of this module); for `Affine`
    /// (`x = z s + m`): `g_z = g_x s`, `∂L/∂m = g_x`, `∂L/∂s = g_x z + g_ℓ / s`.
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
        match self.kind.inverse_kind() {
            None => {
                for ((gz, &gx), (_, s)) in g_z.iter_mut().zip(g_x).zip(self.ms()) {
                    *gz = gx * s.get::<S>();
                }
                if let Some(gp) = g_params {
                    let (g_m, g_s) = slicing::split_mut(gp, self.dim);
                    let grads = g_m.iter_mut().zip(g_s.iter_mut());
                    for (((gm, gs), (&gx, &zi)), (_, s)) in grads.zip(g_x.iter().zip(z)).zip(self.ms()) {
                        *gm += gx;
                        *gs += gx * zi + g_ldj / s.get::<S>();
                    }
                }
            }
            Some(inv) => {
                for ((gz, &gx), &zi) in g_z.iter_mut().zip(g_x).zip(z).take(self.dim) {
                    let (df, dl) = grad(inv, zi);
                    *gz = gx * df + g_ldj * dl;
                }
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

    const KINDS: [ElementwiseKind; 9] = [
        ElementwiseKind::Affine,
        ElementwiseKind::Sigmoid,
        ElementwiseKind::Logit,
        ElementwiseKind::Softplus,
        ElementwiseKind::InvSoftplus,
        ElementwiseKind::Tanh,
        ElementwiseKind::Atanh,
        ElementwiseKind::Log,
        ElementwiseKind::Exp,
    ];

    /// A random point inside the data domain of `kind`.
    fn sample_x(kind: ElementwiseKind, rng: &mut Lcg) -> f64 {
        let n = rng.normal() * 1.5;
        match kind {
            ElementwiseKind::Logit => 1.0 / (1.0 + (-n).exp()),
            ElementwiseKind::InvSoftplus | ElementwiseKind::Log => n.exp(),
            ElementwiseKind::Atanh => n.tanh(),
            _ => n * 2.0,
        }
    }

    #[test]
    fn elementwise_passes_finite_difference_checks() {
        let mut worst = Report::default();
        for kind in KINDS {
            let mut worst_kind = Report::default();
            for seed in 0..4u64 {
                let mut rng = Lcg(500 + seed);
                for d in [1usize, 2, 3, 5] {
                    let params: Vec<f64> = if kind == ElementwiseKind::Affine {
                        let mut p = rng.normals(d);
                        p.extend((0..d).map(|_| (rng.normal() * 0.8).exp()));
                        p
                    } else {
                        Vec::new()
                    };
                    let build = builder(move |p| {
                        Box::new(Elementwise {
                            kind,
                            dim: d,
                            params: p,
                        })
                    });
                    let x: Vec<f64> = (0..d).map(|_| sample_x(kind, &mut rng)).collect();
                    let mut r = check_bijection(&build, &params, &x, &[]);
                    if kind == ElementwiseKind::Tanh && x.iter().any(|v| v.abs() > 4.0) {
                        // The sampling direction is atanh at z = tanh(x), 1 − |z| < 7e-4: central
                        // differences with h = 1e-6 are off by (h / (1 − |z|))², not the VJP.
                        (r.fwd_vjp_z, r.fwd_vjp_ctx, r.fwd_vjp_params) = (0.0, 0.0, 0.0);
                    }
                    assert!(
                        r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                        "{kind:?} {x:?} {r:?}"
                    );
                    assert!(r.max_fd() < 1e-6, "{kind:?} d={d} x={x:?}: {r:?}");
                    worst_kind.merge(&r);
                }
            }
            std::eprintln!("elementwise {kind:?}: {worst_kind:?}");
            worst.merge(&worst_kind);
        }
        std::eprintln!("elementwise worst: {worst:?}");
    }

    #[test]
    fn elementwise_kinds_pair_with_their_inverses() {
        let xs = [-3.0f64, -0.4, 0.0, 0.7, 5.0];
        for kind in KINDS {
            let Some(inv) = kind.inverse_kind() else { continue };
            assert_eq!(inv.inverse_kind(), Some(kind));
            for &x in &xs {
                let (z, l) = apply(kind, x);
                if !z.is_finite() {
                    continue;
                }
                let (x2, l2) = apply(inv, z);
                assert!((x2 - x).abs() < 1e-9 * (1.0 + x.abs()), "{kind:?} {x}: {x2}");
                assert!((l + l2).abs() < 1e-9, "{kind:?} {x}: {l} {l2}");
            }
        }
    }

    #[test]
    fn elementwise_known_values_nan_and_out_of_domain() {
        let none: &[f64] = &[];
        let mut z = [0.0f64; 1];
        let eval = |kind, x: f64, z: &mut [f64; 1]| {
            let l = Elementwise {
                kind,
                dim: 1,
                params: none,
            };
            Bijection::<f64>::inverse(&l, &[x], &[], z, &mut [])
        };
        let ldj = eval(ElementwiseKind::Sigmoid, 0.0, &mut z);
        assert_eq!(z[0], 0.5);
        assert!((ldj - 0.25f64.ln()).abs() < 1e-15);
        eval(ElementwiseKind::Logit, 0.5, &mut z);
        assert_eq!(z[0], 0.0);
        // Standardization: log-det −Σ ln std.
        let p = [1.0f64, 4.0];
        let l = Elementwise {
            kind: ElementwiseKind::Affine,
            dim: 1,
            params: &p[..],
        };
        let ldj = l.inverse(&[9.0], &[], &mut z, &mut []);
        assert_eq!(z[0], 2.0);
        assert!((ldj + 4.0f64.ln()).abs() < 1e-15);
        // NaN in → NaN out, for every kind and both directions.
        for kind in KINDS {
            // (Affine's log-det does not depend on x.)
            let l = Elementwise {
                kind,
                dim: 1,
                params: &p[..kind.n_params(1)],
            };
            let affine = kind == ElementwiseKind::Affine;
            assert!(
                l.inverse(&[f64::NAN], &[], &mut z, &mut []).is_nan() != affine,
                "{kind:?}"
            );
            assert!(z[0].is_nan(), "{kind:?}");
            assert!(
                l.forward(&[f64::NAN], &[], &mut z, &mut []).is_nan() != affine,
                "{kind:?}"
            );
            assert!(z[0].is_nan(), "{kind:?}");
        }
        // Out of domain → NaN z and NaN log-det.
        for (kind, x) in [
            (ElementwiseKind::Logit, 1.5),
            (ElementwiseKind::Logit, -0.1),
            (ElementwiseKind::InvSoftplus, -1.0),
            (ElementwiseKind::Atanh, 1.01),
            (ElementwiseKind::Atanh, -2.0),
            (ElementwiseKind::Log, -1.0),
        ] {
            let ldj = eval(kind, x, &mut z);
            assert!(z[0].is_nan() && ldj.is_nan(), "{kind:?} {x}: {} {ldj}", z[0]);
        }
        // Sampling direction of Sigmoid/Softplus/Tanh is only defined on their ranges.
        for (kind, zv) in [
            (ElementwiseKind::Sigmoid, 2.0),
            (ElementwiseKind::Softplus, -0.5),
            (ElementwiseKind::Tanh, -1.5),
        ] {
            let l = Elementwise {
                kind,
                dim: 1,
                params: none,
            };
            let mut x = [0.0];
            let ldj = l.forward(&[zv], &[], &mut x, &mut []);
            assert!(x[0].is_nan() && ldj.is_nan(), "{kind:?} {zv}");
        }
        // Boundary: the limit.
        let ldj = eval(ElementwiseKind::Logit, 0.0, &mut z);
        assert_eq!(z[0], f64::NEG_INFINITY);
        assert_eq!(ldj, f64::INFINITY);
        // Saturation of tanh keeps a finite log-det.
        let ldj = eval(ElementwiseKind::Tanh, 30.0, &mut z);
        assert_eq!(z[0], 1.0);
        assert!((ldj - 2.0 * (2.0f64.ln() - 30.0)).abs() < 1e-12);
        // f32 agrees.
        let l = Elementwise {
            kind: ElementwiseKind::Atanh,
            dim: 1,
            params: &[] as &[f32],
        };
        let mut z32 = [0.0f32];
        let ldj32 = l.inverse(&[0.5f32], &[], &mut z32, &mut []);
        assert!((z32[0] as f64 - 0.5f64.atanh()).abs() < 1e-6);
        assert!((ldj32 as f64 + (0.75f64).ln()).abs() < 1e-6);
    }
}
