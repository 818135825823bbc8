//! One bin of the rational-quadratic map: its knots, the map and its inverse at `ξ`, and the
//! cotangents of the map with respect to the bin's knots (see the formulas in [`super`]).

use crate::lanes::Vals;
use crate::{slicing, Real};

/// The quantities of one bin, in one lane (`S`) or in each lane of a block ([`Lanes`]).
#[derive(Clone, Copy)]
pub(super) struct Bin<S: Vals> {
    pub(super) k: S::Index,
    pub(super) x0: S,
    pub(super) x1: S,
    pub(super) y0: S,
    pub(super) y1: S,
    pub(super) w: S,
    pub(super) h: S,
    pub(super) s: S,
    pub(super) d0: S,
    pub(super) d1: S,
}

/// Cotangents of `G = g_y·y + g_l·ln(dy/dx)` for the bin's knots and the input.
#[derive(Clone, Copy, Debug)]
pub(super) struct BinGrad<S> {
    pub(super) x: S,
    pub(super) x0: S,
    pub(super) x1: S,
    pub(super) y0: S,
    pub(super) y1: S,
    pub(super) d0: S,
    pub(super) d1: S,
}

impl<V: Vals> Bin<V> {
    /// Bin `k` of a knot buffer with `n = K + 1` knots (NaN knots when `k + 1` is not a knot).
    #[inline(always)]
    pub(super) fn new(knots: &[V], n: usize, k: V::Index) -> Self {
        let (xs, rest) = slicing::split(knots, n);
        let (ys, ds) = slicing::split(rest, n);
        let ((x0, x1), (y0, y1), (d0, d1)) = (V::pair(xs, k), V::pair(ys, k), V::pair(ds, k));
        let (w, h) = (x1 - x0, y1 - y0);
        Bin {
            k,
            x0,
            x1,
            y0,
            y1,
            w,
            h,
            s: h / w,
            d0,
            d1,
        }
    }

    /// `ξ` of `x` clamped into the bin.
    #[inline(always)]
    pub(super) fn xi(&self, x: V) -> V {
        (x.max(self.x0).min(self.x1) - self.x0) / self.w
    }

    /// `(y, ln dy/dx)` at `ξ`.
    #[inline(always)]
    pub(super) fn eval(&self, xi: V) -> (V, V) {
        let om = V::splat(V::Elem::ONE) - xi;
        let tau = xi * om;
        let den = self.s + (self.d0 + self.d1 - (self.s + self.s)) * tau;
        let y = self.y0 + self.h * (self.s * xi * xi + self.d0 * tau) / den;
        (y, self.log_deriv(xi, tau, om, den))
    }

    /// `ln dy/dx` given `ξ`, `τ`, `1 − ξ` and the denominator.
    #[inline(always)]
    pub(super) fn log_deriv(&self, xi: V, tau: V, om: V, den: V) -> V {
        let two = V::splat(V::Elem::from_f64(2.0));
        let num = self.s * self.s * (self.d1 * xi * xi + two * self.s * tau + self.d0 * om * om);
        (num / (den * den)).ln()
    }

    /// `ξ` of the inverse at `y` (clamped into the bin), in `[0, 1]`.
    #[inline(always)]
    pub(super) fn inv_xi(&self, y: V) -> V {
        let yr = y.max(self.y0).min(self.y1) - self.y0;
        let dsum = self.d0 + self.d1 - (self.s + self.s);
        let a = self.h * (self.s - self.d0) + yr * dsum;
        let b = self.h * self.d0 - yr * dsum;
        let c = -self.s * yr;
        let four = V::splat(V::Elem::from_f64(4.0));
        let disc = (b * b - four * a * c).max(V::splat(V::Elem::ZERO));
        let xi = (c + c) / (-b - disc.sqrt());
        xi.max(V::splat(V::Elem::ZERO)).min(V::splat(V::Elem::ONE))
    }
}

impl<S: Real> Bin<S> {
    /// Cotangents of `G = g_y·y + g_l·ln(dy/dx)` at `ξ` (input `x = x₀ + ξ w` held fixed).
    #[inline]
    pub(super) fn vjp(&self, xi: S, g_y: S, g_l: S) -> BinGrad<S> {
        let two = S::from_f64(2.0);
        let (s, h, w, d0, d1) = (self.s, self.h, self.w, self.d0, self.d1);
        let om = S::ONE - xi;
        let tau = xi * om;
        let dtau = S::ONE - two * xi;
        let dsum = d0 + d1 - two * s;
        let den = s + dsum * tau;
        let r = (s * xi * xi + d0 * tau) / den;
        let n = d1 * xi * xi + two * s * tau + d0 * om * om;
        // ∂den/∂(ξ, s, d₀, d₁).
        let den_xi = dsum * dtau;
        let den_s = S::ONE - two * tau;
        // ∂R/∂v = (∂A/∂v − R ∂den/∂v) / den with A = s ξ² + d₀ τ.
        let r_xi = (two * s * xi + d0 * dtau - r * den_xi) / den;
        let r_s = (xi * xi - r * den_s) / den;
        let r_d0 = (tau - r * tau) / den;
        let r_d1 = -r * tau / den;
        // ln y' = 2 ln s + ln N − 2 ln den.
        let l_xi = (two * d1 * xi + two * s * dtau - two * d0 * om) / n - two * den_xi / den;
        let l_s = two / s + two * tau / n - two * den_s / den;
        let l_d0 = om * om / n - two * tau / den;
        let l_d1 = xi * xi / n - two * tau / den;
        let gh = g_y * h;
        let g_xi = gh * r_xi + g_l * l_xi;
        let g_s = gh * r_s + g_l * l_s;
        let g_h = g_y * r;
        // ξ = (x − x₀)/w, s = h/w, w = x₁ − x₀, h = y₁ − y₀.
        let gs_w = g_s / w;
        BinGrad {
            x: g_xi / w,
            x0: (g_xi * (xi - S::ONE) + g_s * s) / w,
            x1: -(g_xi * xi + g_s * s) / w,
            y0: g_y - g_h - gs_w,
            y1: g_h + gs_w,
            d0: gh * r_d0 + g_l * l_d0,
            d1: gh * r_d1 + g_l * l_d1,
        }
    }
}
