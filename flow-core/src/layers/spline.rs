//! Monotone rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows"): the scalar
//! kernel of [`SplineAutoregressive`](crate::layers::spline_ar::SplineAutoregressive) and
//! [`SplineCoupling`](crate::layers::spline_coupling::SplineCoupling).
//!
//! # The map
//!
//! `K` bins on `[−B, B]` with knots `(xₖ, yₖ)`, `k = 0..=K`, increasing in both coordinates, and
//! positive knot derivatives `dₖ`. In bin `k`, with `w = xₖ₊₁ − xₖ`, `h = yₖ₊₁ − yₖ`, `s = h / w`,
//! `ξ = (x − xₖ) / w` and `τ = ξ(1 − ξ)`:
//!
//! `y = yₖ + h (s ξ² + dₖ τ) / (s + (dₖ + dₖ₊₁ − 2s) τ)`
//!
//! `dy/dx = s² (dₖ₊₁ ξ² + 2s τ + dₖ (1 − ξ)²) / (s + (dₖ + dₖ₊₁ − 2s) τ)²`
//!
//! Outside the spline's domain the map is the identity (log-derivative 0). The inverse solves the
//! quadratic `a ξ² + b ξ + c = 0` with `ỹ = y − yₖ`, `a = h (s − dₖ) + ỹ (dₖ + dₖ₊₁ − 2s)`,
//! `b = h dₖ − ỹ (dₖ + dₖ₊₁ − 2s)`, `c = −s ỹ`, by the stable root `ξ = 2c / (−b − √(b² − 4ac))`.
//!
//! # Parameters
//!
//! Each transformed coordinate gets [`SplineOpts::params_per_feature`] raw numbers (a conditioner
//! network's outputs), laid out `[widths (K) | heights (K) | derivatives]`. [`SplineKind`] says how
//! they become knots, exactly as each peer library does it (see its docs). In every kind the width
//! and height logits are first multiplied by [`SplineOpts::logit_scale`].
//!
//! Knot buffers (see [`Spline::knots`]) hold `[x₀..x_K | y₀..y_K | d₀..d_K]`, `3(K + 1)` values.
//!
//! # Use
//!
//! [`SplineOpts::prepare`] converts the options' constants to the scalar type once (a [`Spline`]);
//! then, per coordinate, [`Spline::knots`] fills a caller-provided buffer from the raw parameters and
//! [`Spline::forward`] / [`Spline::inverse`] evaluate the map; [`Spline::forward_vjp`] and
//! [`Spline::inverse_vjp`] give gradients with respect to the coordinate and the raw parameters.
//! Nothing allocates; the number of bins is a runtime value. `SplineOpts` has one-shot wrappers of
//! the same methods.
//!
//! # Numerics
//!
//! - Every evaluation runs on a coordinate clamped into its bin and the result is selected
//!   afterwards, so inputs outside the domain (however large, ±∞ included) give the identity with
//!   log-derivative 0 and zero gradients for the spline parameters, never NaN or ∞ from the unused
//!   branch.
//! - The inverse clamps the discriminant `b² − 4ac` at 0 (rounding can make it slightly negative in
//!   `f32`; nflows asserts instead) and the root `ξ` to `[0, 1]`.
//! - A NaN input gives a NaN output and a NaN log-derivative; the VJPs treat it as outside the
//!   domain (input gradient passed through, zero parameter gradients).
//! - Behaviour exactly at the bound, per kind: see [`SplineKind`].
//!
//! Options that [`SplineOpts::is_valid`] accepts keep every bin width, height and derivative positive,
//! so the formulas above stay finite.

use serde::{Deserialize, Serialize};

use crate::lanes::{Lanes, Pair, Vals};
use crate::{math, slicing, Real};

/// How raw parameters become knots: one variant per peer library, each reproducing its formulas.
///
/// Notation: `w`, `h` are the (logit-scaled) width and height logits, `d` the raw derivatives,
/// `softmax(v)ᵢ = exp(vᵢ − max v) / Σⱼ exp(vⱼ − max v)`, `softplus(v) = ln(1 + eᵛ)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum SplineKind {
    /// zuko `MonotonicRQSTransform` (1.6; the maths is the same since 0.1), `P = 3K − 1`
    /// (`w[0..K]`, `h[K..2K]`, `d[2K..3K−1]`, the interior derivatives):
    ///
    /// `w' = w / (1 + |2w / ln slope|)`, `h'` likewise, `d' = d / (1 + |d / ln slope|)`;
    /// `xₖ = B (2 Σᵢ<ₖ softmax(w')ᵢ − 1)` (so `x₀ = −B` and `x_K ≈ B` up to rounding), `yₖ` likewise;
    /// `dₖ = exp(d'ₖ₋₁)` inside and `d₀ = d_K = 1`.
    ///
    /// Domain: `x₀ < x ≤ x_K` (bin `k` holds `xₖ < x ≤ xₖ₊₁`, zuko's `Σ[xⱼ < x] − 1`), so
    /// `x = −B` takes the identity tail, which there agrees with the spline (value −B, slope 1).
    Zuko {
        /// zuko's `slope` (default 1e-3 in 1.6 and ≤ 1.0.0, 1e-4 in 1.0.1–1.4.1): derivatives lie in
        /// `(slope, 1/slope)`.
        slope: f64,
    },
    /// nflows `unconstrained_rational_quadratic_spline` with `tails="linear"`, `P = 3K − 1`
    /// (`w[0..K]`, `h[K..2K]`, `d[2K..3K−1]`):
    ///
    /// `Wᵢ = min_bin_width + (1 − min_bin_width·K) softmax(w)ᵢ`;
    /// `xₖ = 2B Σᵢ<ₖ Wᵢ − B` for `0 < k < K`, and exactly `x₀ = −B`, `x_K = B`; `yₖ` likewise with
    /// `min_bin_height`; `dₖ = min_derivative + softplus(dₖ₋₁)` inside and
    /// `d₀ = d_K = min_derivative + softplus(ln(e^{1 − min_derivative} − 1))` (= 1).
    ///
    /// Domain: `−B ≤ x ≤ B` inclusive; bin `k` holds `xₖ ≤ x < xₖ₊₁`, and `x = B` is in bin `K − 1`
    /// (nflows' `searchsorted` adds 1e-6 to the last knot, which only matters for `x = B`).
    Nflows {
        /// Minimum bin width as a fraction of `2B` (nflows default 1e-3).
        min_bin_width: f64,
        /// Minimum bin height as a fraction of `2B` (nflows default 1e-3).
        min_bin_height: f64,
        /// Minimum knot derivative (nflows default 1e-3).
        min_derivative: f64,
    },
    /// FlowJAX `RationalQuadraticSpline` (19.x, knots from paramax `RealToIncreasingOnInterval`),
    /// `P = 3K + 1` (`w[0..K]`, `h[K..2K]`, `d[2K..3K+1]`, all `K + 1` derivatives learned). FlowJAX's
    /// `knots` argument counts the inner knots: `knots = n` gives `K = n + 1` bins.
    ///
    /// `Wᵢ = min_width + (2B − min_width·K) softmax(w)ᵢ` (absolute widths);
    /// `xₖ = −B + Σᵢ<ₖ Wᵢ` for `0 < k < K`, and exactly `x₀ = −B`, `x_K = B`; `yₖ` likewise;
    /// `dₖ = softplus(dₖ + c) + min_derivative` for `k = 0..=K`, with
    /// `c = ln(−expm1(−(1 − min_derivative))) + (1 − min_derivative)` (paramax `inv_softplus`): FlowJAX's
    /// ravelled-parameter constructor adds the transformer's initial value to the network output, so
    /// the conditioner's weights are used unchanged and raw 0 means derivative 1. `softplus` here is
    /// JAX's (`max(v, 0) + ln(1 + e^{−|v|})`, no threshold).
    ///
    /// Domain: `−B ≤ x ≤ B` inclusive, evaluated on `clip(x, −B, B)`; bin `k` holds
    /// `xₖ < x ≤ xₖ₊₁` (`searchsorted` − 1, clipped to `0..K`), so `x = −B` is in bin 0. Outputs are
    /// clipped to `[−B, B]` as FlowJAX does. The boundary derivatives are learned, so the
    /// log-derivative jumps when `x` crosses ±B.
    FlowJax {
        /// Minimum bin width and height in absolute units (FlowJAX default 1e-3).
        min_width: f64,
        /// Minimum knot derivative (FlowJAX default 1e-3).
        min_derivative: f64,
    },
}

/// The most bins [`Spline::eval_block`] evaluates in lanes (its knots live on the stack: for 16
/// `f32` lanes, `(6 · 16 + 4)` vectors of 64 bytes); splines with more bins run sample by sample.
pub const LANES_MAX_BINS: usize = 16;

/// Options of a rational-quadratic spline transformer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplineOpts {
    /// Number of bins K (≥ 1).
    pub bins: usize,
    /// The bound B: the spline lives on `[−B, B]` (both axes), identity outside.
    pub bound: f64,
    /// The parameterization.
    pub kind: SplineKind,
    /// Factor applied to the width and height logits before anything else: `1/√H` for nflows'
    /// coupling splines whose conditioner has `hidden_features = H` (nflows divides by `√H` when the
    /// net has a `hidden_features` attribute: its `ResidualNet`, not its MADE); 1 otherwise.
    pub logit_scale: f64,
}

/// The quantities of one bin, in one lane (`S`) or in each lane of a block ([`Lanes`]).
#[derive(Clone, Copy)]
struct Bin<S: Vals> {
    k: S::Index,
    x0: S,
    x1: S,
    y0: S,
    y1: S,
    w: S,
    h: S,
    s: S,
    d0: S,
    d1: S,
}

/// Cotangents of `G = g_y·y + g_l·ln(dy/dx)` for the bin's knots and the input.
#[derive(Clone, Copy, Debug)]
struct BinGrad<S> {
    x: S,
    x0: S,
    x1: S,
    y0: S,
    y1: S,
    d0: S,
    d1: S,
}

impl<V: Vals> Bin<V> {
    /// Bin `k` of a knot buffer with `n = K + 1` knots (NaN knots when `k + 1` is not a knot).
    #[inline(always)]
    fn new(knots: &[V], n: usize, k: V::Index) -> Self {
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
    fn xi(&self, x: V) -> V {
        (x.max(self.x0).min(self.x1) - self.x0) / self.w
    }

    /// `(y, ln dy/dx)` at `ξ`.
    #[inline(always)]
    fn eval(&self, xi: V) -> (V, V) {
        let om = V::splat(V::Elem::ONE) - xi;
        let tau = xi * om;
        let den = self.s + (self.d0 + self.d1 - (self.s + self.s)) * tau;
        let y = self.y0 + self.h * (self.s * xi * xi + self.d0 * tau) / den;
        (y, self.log_deriv(xi, tau, om, den))
    }

    /// `ln dy/dx` given `ξ`, `τ`, `1 − ξ` and the denominator.
    #[inline(always)]
    fn log_deriv(&self, xi: V, tau: V, om: V, den: V) -> V {
        let two = V::splat(V::Elem::from_f64(2.0));
        let num = self.s * self.s * (self.d1 * xi * xi + two * self.s * tau + self.d0 * om * om);
        (num / (den * den)).ln()
    }

    /// `ξ` of the inverse at `y` (clamped into the bin), in `[0, 1]`.
    #[inline(always)]
    fn inv_xi(&self, y: V) -> V {
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
    fn vjp(&self, xi: S, g_y: S, g_l: S) -> BinGrad<S> {
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

/// JAX's `softplus` (`logaddexp(v, 0)`).
#[inline(always)]
fn softplus_jax<V: Vals>(v: V) -> V {
    v.max(V::splat(V::Elem::ZERO)) + (-v.abs()).exp().ln_1p()
}

/// Sets the first and last entries of `v` to `end` and returns the entries between them (empty
/// when `v` has fewer than two entries).
#[inline]
fn ends<S: Copy>(v: &mut [S], end: S) -> &mut [S] {
    match v {
        [first, inner @ .., last] => {
            *first = end;
            *last = end;
            inner
        }
        _ => &mut [],
    }
}

/// `(y, ldj)` of the identity (NaN log-derivative for a NaN input).
#[inline(always)]
fn identity<V: Vals>(x: V) -> (V, V) {
    (x, V::select(x.is_nan(), x, V::splat(V::Elem::ZERO)))
}

impl SplineOpts {
    /// zuko's options: `bins` bins on `[−bound, bound]` with `slope` (zuko `NSF`: 8, 5, 1e-3).
    pub const fn zuko(bins: usize, bound: f64, slope: f64) -> Self {
        SplineOpts {
            bins,
            bound,
            kind: SplineKind::Zuko { slope },
            logit_scale: 1.0,
        }
    }

    /// nflows' options with linear tails at `tail_bound` and the default minimums (1e-3);
    /// `logit_scale` is `1/√hidden_features` for coupling splines, 1 for autoregressive ones.
    pub const fn nflows(bins: usize, tail_bound: f64, logit_scale: f64) -> Self {
        SplineOpts {
            bins,
            bound: tail_bound,
            kind: SplineKind::Nflows {
                min_bin_width: 1e-3,
                min_bin_height: 1e-3,
                min_derivative: 1e-3,
            },
            logit_scale,
        }
    }

    /// FlowJAX's options for `RationalQuadraticSpline(knots=n, interval=bound)` with the default
    /// minimums (1e-3): `bins = n + 1`.
    pub const fn flowjax(bins: usize, bound: f64) -> Self {
        SplineOpts {
            bins,
            bound,
            kind: SplineKind::FlowJax {
                min_width: 1e-3,
                min_derivative: 1e-3,
            },
            logit_scale: 1.0,
        }
    }

    /// Raw parameters per transformed feature P: `3K − 1` (zuko, nflows) or `3K + 1` (FlowJAX).
    #[inline]
    pub fn params_per_feature(&self) -> usize {
        match self.kind {
            SplineKind::Zuko { .. } | SplineKind::Nflows { .. } => 3 * self.bins - 1,
            SplineKind::FlowJax { .. } => 3 * self.bins + 1,
        }
    }

    /// Length of a knot buffer: `3(K + 1)`.
    #[inline]
    pub fn knots_len(&self) -> usize {
        3 * (self.bins + 1)
    }

    /// Scratch that the VJPs ([`Spline::forward_vjp`], [`Spline::inverse_vjp`]) need: `5K + 3`.
    #[inline]
    pub fn vjp_scratch_len(&self) -> usize {
        self.knots_len() + 2 * self.bins
    }

    /// Whether the options are in range: `K ≥ 1`; `B` and `logit_scale` finite and positive; zuko
    /// `0 < slope < 1`; nflows `0 < min_bin_width·K ≤ 1`, same for heights, `min_derivative ≥ 0`;
    /// FlowJAX `0 < min_width·K ≤ 2B`, `min_derivative ≥ 0`. Every value must be finite.
    pub fn is_valid(&self) -> bool {
        let fin = |v: f64| v.is_finite();
        let k = self.bins as f64;
        let base = self.bins >= 1
            && fin(self.bound)
            && self.bound > 0.0
            && fin(self.logit_scale)
            && self.logit_scale > 0.0;
        base && match self.kind {
            SplineKind::Zuko { slope } => fin(slope) && slope > 0.0 && slope < 1.0,
            SplineKind::Nflows {
                min_bin_width,
                min_bin_height,
                min_derivative,
            } => {
                let frac = |m: f64| fin(m) && m > 0.0 && m * k <= 1.0;
                frac(min_bin_width) && frac(min_bin_height) && fin(min_derivative) && min_derivative >= 0.0
            }
            SplineKind::FlowJax {
                min_width,
                min_derivative,
            } => {
                fin(min_width)
                    && min_width > 0.0
                    && min_width * k <= 2.0 * self.bound
                    && fin(min_derivative)
                    && min_derivative >= 0.0
            }
        }
    }

    /// The spline's constants in the scalar type `S` (the `f64` logarithms and exponentials of the
    /// options run here, once, not per coordinate). Layers call this once per evaluation.
    #[inline]
    pub fn prepare<S: Real>(&self) -> Spline<S> {
        let k = self.bins as f64;
        let b = self.bound;
        let mut c = Spline {
            opts: *self,
            bound: S::from_f64(b),
            logit_scale: S::from_f64(self.logit_scale),
            clip_logit: S::ZERO,
            clip_deriv: S::ZERO,
            min_w: S::ZERO,
            min_h: S::ZERO,
            free_w: S::ZERO,
            free_h: S::ZERO,
            span: S::from_f64(2.0 * b),
            min_d: S::ZERO,
            d_offset: S::ZERO,
            d_end: S::ONE,
            alpha_w: S::from_f64(2.0 * b),
            alpha_h: S::from_f64(2.0 * b),
        };
        match self.kind {
            SplineKind::Zuko { slope } => {
                let l = <f64 as Real>::ln(slope);
                c.clip_logit = S::from_f64(l / 2.0);
                c.clip_deriv = S::from_f64(l);
            }
            SplineKind::Nflows {
                min_bin_width,
                min_bin_height,
                min_derivative,
            } => {
                c.min_w = S::from_f64(min_bin_width);
                c.min_h = S::from_f64(min_bin_height);
                c.free_w = S::from_f64(1.0 - min_bin_width * k);
                c.free_h = S::from_f64(1.0 - min_bin_height * k);
                c.alpha_w = c.span * c.free_w;
                c.alpha_h = c.span * c.free_h;
                c.min_d = S::from_f64(min_derivative);
                // nflows: np.log(np.exp(1 − m) − 1), then min_derivative + softplus of it (≈ 1).
                let off = <f64 as Real>::ln(<f64 as Real>::exp(1.0 - min_derivative) - 1.0);
                c.d_end = c.min_d + math::softplus(S::from_f64(off));
            }
            SplineKind::FlowJax {
                min_width,
                min_derivative,
            } => {
                c.min_w = S::from_f64(min_width);
                c.min_h = c.min_w;
                c.free_w = S::from_f64(2.0 * b - min_width * k);
                c.free_h = c.free_w;
                c.alpha_w = c.free_w;
                c.alpha_h = c.free_w;
                c.min_d = S::from_f64(min_derivative);
                // paramax inv_softplus(1 − m) = ln(−expm1(−v)) + v.
                let v = 1.0 - min_derivative;
                c.d_offset = S::from_f64(<f64 as Real>::ln(-<f64 as Real>::exp_m1(-v)) + v);
            }
        }
        c
    }

    /// [`Spline::knots`] (prepares the constants on each call; loops should [`SplineOpts::prepare`]
    /// once).
    #[inline]
    pub fn knots<S: Real>(&self, raw: &[S], knots: &mut [S]) {
        self.prepare::<S>().knots(raw, knots);
    }

    /// [`Spline::forward`] (prepares the constants on each call).
    #[inline]
    pub fn forward<S: Real>(&self, knots: &[S], x: S) -> (S, S) {
        self.prepare::<S>().forward(knots, x)
    }

    /// [`Spline::inverse`] (prepares the constants on each call).
    #[inline]
    pub fn inverse<S: Real>(&self, knots: &[S], y: S) -> (S, S) {
        self.prepare::<S>().inverse(knots, y)
    }

    /// [`Spline::forward_vjp`] (prepares the constants on each call).
    #[inline]
    pub fn forward_vjp<S: Real>(
        &self,
        raw: &[S],
        x: S,
        g_y: S,
        g_l: S,
        g_raw: &mut [S],
        scratch: &mut [S],
    ) -> (S, S, S) {
        self.prepare::<S>().forward_vjp(raw, x, g_y, g_l, g_raw, scratch)
    }

    /// [`Spline::inverse_vjp`] (prepares the constants on each call).
    #[inline]
    pub fn inverse_vjp<S: Real>(
        &self,
        raw: &[S],
        y: S,
        g_x: S,
        g_l: S,
        g_raw: &mut [S],
        scratch: &mut [S],
    ) -> (S, S, S) {
        self.prepare::<S>().inverse_vjp(raw, y, g_x, g_l, g_raw, scratch)
    }
}

/// A spline with its constants converted to the scalar type `S` ([`SplineOpts::prepare`]): the
/// kernel itself. All methods work on one coordinate, without allocation; the number of bins is
/// the options' `bins`.
#[derive(Clone, Copy, Debug)]
pub struct Spline<S> {
    opts: SplineOpts,
    bound: S,
    logit_scale: S,
    /// zuko: softclip bounds of the width/height logits (`ln(slope)/2`) and derivatives (`ln slope`).
    clip_logit: S,
    clip_deriv: S,
    /// nflows' minimum fractions or FlowJAX's minimum width, per axis.
    min_w: S,
    min_h: S,
    /// The softmax's multiplier: nflows `1 − m·K`, FlowJAX `2B − m·K`.
    free_w: S,
    free_h: S,
    /// `2B`.
    span: S,
    /// nflows, FlowJAX: minimum derivative.
    min_d: S,
    /// FlowJAX: offset added to the raw derivatives.
    d_offset: S,
    /// zuko, nflows: the boundary derivatives.
    d_end: S,
    /// `∂ position / ∂ softmax` per axis: zuko `2B`, nflows `2B(1 − m·K)`, FlowJAX `2B − m·K`.
    alpha_w: S,
    alpha_h: S,
}

impl<S: Real> Spline<S> {
    /// The options this spline was prepared from.
    #[inline]
    pub fn opts(&self) -> &SplineOpts {
        &self.opts
    }

    /// Computes the knots of one coordinate from its `P` raw parameters into `knots`
    /// ([`SplineOpts::knots_len`] long): `[x₀..x_K | y₀..y_K | d₀..d_K]`. In [`Lanes`], each lane is
    /// one sample's coordinate, with the single-sample bits.
    #[inline(always)]
    pub fn knots<V: Vals<Elem = S>>(&self, raw: &[V], knots: &mut [V]) {
        self.build(raw, knots, None);
    }

    /// The `P` raw parameters of one coordinate as `(width logits (K), height logits (K), raw
    /// derivatives)`; `None` when `raw` is shorter.
    ///
    /// Here and below, a short buffer ends the computation early (`let … else { return }`: as
    /// cheap as the bounds check it replaces) rather than giving empty slices.
    #[inline(always)]
    fn split_raw<'r, V>(&self, raw: &'r [V]) -> Option<(&'r [V], &'r [V], &'r [V])> {
        let kb = self.opts.bins;
        let (widths, rest) = raw.split_at_checked(kb)?;
        let (heights, rest) = rest.split_at_checked(kb)?;
        let n_derivs = self.opts.params_per_feature().saturating_sub(2 * kb);
        Some((widths, heights, rest.get(..n_derivs)?))
    }

    /// As [`Spline::knots`], also keeping the width and height softmaxes in `soft` (`2K`).
    #[inline(always)]
    fn build<V: Vals<Elem = S>>(&self, raw: &[V], knots: &mut [V], soft: Option<&mut [V]>) {
        let kb = self.opts.bins;
        let n = kb + 1;
        let mut knots = knots;
        let mut take = || slicing::take_front(&mut knots, n);
        let (Some(xs), Some(ys), Some(ds)) = (take(), take(), take()) else {
            return;
        };
        let Some((widths, heights, derivs)) = self.split_raw(raw) else {
            return;
        };
        // Separate calls with and without `soft`, so that each is compiled for its case.
        match soft {
            Some(soft) => {
                let Some((sw, sh)) = soft.split_at_mut_checked(kb) else {
                    return;
                };
                self.positions(widths, xs, Some(sw), self.min_w, self.free_w);
                self.positions(heights, ys, Some(sh), self.min_h, self.free_h);
            }
            None => {
                self.positions(widths, xs, None, self.min_w, self.free_w);
                self.positions(heights, ys, None, self.min_h, self.free_h);
            }
        }
        self.derivatives(derivs, ds);
    }

    /// Knot positions `pos` (`K + 1`) from `K` logits (see [`SplineKind`]), with this axis' minimum
    /// and softmax multiplier; the softmax is copied into `soft` when given.
    #[inline(always)]
    fn positions<V: Vals<Elem = S>>(
        &self,
        logits: &[V],
        pos: &mut [V],
        soft: Option<&mut [V]>,
        min: S,
        free: S,
    ) {
        let b = V::splat(self.bound);
        let (min, free) = (V::splat(min), V::splat(free));
        let zuko = matches!(self.opts.kind, SplineKind::Zuko { .. });
        // `pos` is `[x₀, x₁ … x_{K−1}, x_K]`, K = logits.len().
        let [p0, tail @ ..] = pos else {
            return;
        };
        // Transformed logits into pos[1..], then their softmax exp(v − max) / Σ.
        let mut mx = V::splat(-S::INFINITY);
        let mut put = |p: &mut V, v: V| {
            *p = v;
            mx = mx.max(v);
        };
        let scale = V::splat(self.logit_scale);
        // Two loops rather than a test inside one: the kind is known before the loop.
        if zuko {
            let clip = V::splat(self.clip_logit);
            for (p, &l) in tail.iter_mut().zip(logits) {
                put(p, math::softclip(l * scale, clip));
            }
        } else {
            for (p, &l) in tail.iter_mut().zip(logits) {
                put(p, l * scale);
            }
        }
        // In f32 the exponent's rounding error `e` (v − max = d + e exactly, TwoSum) is put back
        // as exp(d + e) ≈ exp(d)(1 + e), and the sum is compensated: each softmax value is then
        // within ~1 ulp, where the plain formula is ~3 ulp off for logits a few units below the
        // maximum (the widths' errors reach ln s, and the log-det, squared).
        let mut sum = math::RunningSum::new();
        let mut total = V::splat(S::ZERO);
        for p in tail.iter_mut() {
            *p = if S::COMPENSATED_PREFIX_SUMS {
                let (d, e) = math::two_sum(*p, -mx);
                let x = d.exp();
                x + x * e
            } else {
                (*p - mx).exp()
            };
            total = sum.add(*p);
        }
        // `tail` holds the unnormalized exponentials; the softmax is each divided by `total`.
        if let Some(soft) = soft {
            for (s, &e) in soft.iter_mut().zip(tail.iter()) {
                *s = e / total;
            }
        }
        // Prefix sums as the peers' cumsum computes them (see `math::RunningSum`).
        let mut sum = math::RunningSum::new();
        match self.opts.kind {
            SplineKind::Zuko { .. } => {
                // B (2 cumsum([0, W]) − 1), evaluated as B ((2 Σₖ − T) + 2 lo) / T with the
                // compensated prefix sum Σₖ + lo of the exponentials and their total T: no
                // rounding of the cumsum before the cancellation in 2c − 1 (which made the
                // knots, and through s = h/w the log-det, the largest f32 error of zuko splines).
                // The ends are exactly ∓B.
                let two = V::splat(S::from_f64(2.0));
                *p0 = -b;
                for p in tail.iter_mut() {
                    sum.add(*p);
                    let (hi, lo) = sum.hi_lo();
                    *p = b * ((two * hi - total + two * lo) / total);
                }
                if let Some(last) = tail.last_mut() {
                    *last = b;
                }
            }
            SplineKind::Nflows { .. } => {
                // 2B cumsum(W) − B, ends forced.
                let span = V::splat(self.span);
                for p in ends(pos, b).iter_mut() {
                    let c = sum.add(min + free * (*p / total));
                    *p = span * c + -b;
                }
                slicing::copy(pos, &[-b]);
            }
            SplineKind::FlowJax { .. } => {
                // cumsum(W)[:-1] − B between the ends.
                for p in ends(pos, b).iter_mut() {
                    let c = sum.add(min + free * (*p / total));
                    *p = c + -b;
                }
                slicing::copy(pos, &[-b]);
            }
        }
    }

    /// Knot derivatives `ds` (`K + 1`) from the raw derivative parameters (see [`SplineKind`]).
    #[inline(always)]
    fn derivatives<V: Vals<Elem = S>>(&self, raw: &[V], ds: &mut [V]) {
        let min_d = V::splat(self.min_d);
        match self.opts.kind {
            SplineKind::Zuko { .. } => {
                let clip = V::splat(self.clip_deriv);
                for (d, &r) in ends(ds, V::splat(self.d_end)).iter_mut().zip(raw) {
                    *d = math::softclip(r, clip).exp();
                }
            }
            SplineKind::Nflows { .. } => {
                for (d, &r) in ends(ds, V::splat(self.d_end)).iter_mut().zip(raw) {
                    *d = min_d + math::softplus(r);
                }
            }
            SplineKind::FlowJax { .. } => {
                let offset = V::splat(self.d_offset);
                for (d, &r) in ds.iter_mut().zip(raw) {
                    *d = softplus_jax(r + offset) + min_d;
                }
            }
        }
    }

    /// `(inside, bin)` of the coordinate `v` against the increasing positions `p` (`K + 1`), with
    /// each kind's domain and bin rule (see [`SplineKind`]); the bin is always in `0..K`.
    #[inline(always)]
    fn locate<V: Vals<Elem = S>>(&self, p: &[V], v: V) -> (V::Mask, V::Index) {
        let kb = self.opts.bins;
        let b = V::splat(self.bound);
        let (inside, cnt) = match self.opts.kind {
            SplineKind::Zuko { .. } => {
                let cnt = V::count_below(p, v, false);
                (V::index_within(cnt, 1, kb), cnt)
            }
            // x = B lands in bin K − 1 (nflows' +1e-6 on the last knot); larger x are outside.
            SplineKind::Nflows { .. } => (
                V::and((-b).le(v), v.le(b)),
                V::count_below(slicing::head(p, kb), v, true),
            ),
            SplineKind::FlowJax { .. } => {
                let vc = v.max(-b).min(b);
                (V::and((-b).le(v), v.le(b)), V::count_below(p, vc, false))
            }
        };
        (inside, V::bin_of_count(cnt, kb))
    }

    /// FlowJAX clips outputs to `[−B, B]`.
    #[inline(always)]
    fn clip_out<V: Vals<Elem = S>>(&self, v: V) -> V {
        match self.opts.kind {
            SplineKind::FlowJax { .. } => v.max(-V::splat(self.bound)).min(V::splat(self.bound)),
            _ => v,
        }
    }

    /// The spline at `x` given its knots: returns `(y, ln dy/dx)`.
    #[inline]
    pub fn forward<V: Vals<Elem = S>>(&self, knots: &[V], x: V) -> (V, V) {
        self.forward_at(knots, x)
    }

    /// [`Spline::forward`], always inlined (the block kernels).
    #[inline(always)]
    fn forward_at<V: Vals<Elem = S>>(&self, knots: &[V], x: V) -> (V, V) {
        let n = self.opts.bins + 1;
        let (inside, k) = self.locate(slicing::head(knots, n), x);
        let bin = Bin::new(knots, n, k);
        let (y, l) = bin.eval(bin.xi(x));
        let (xo, lo) = identity(x);
        (V::select(inside, self.clip_out(y), xo), V::select(inside, l, lo))
    }

    /// The inverse spline at `y` given its knots: returns `(x, ln dx/dy)`.
    #[inline]
    pub fn inverse<V: Vals<Elem = S>>(&self, knots: &[V], y: V) -> (V, V) {
        self.inverse_at(knots, y)
    }

    /// [`Spline::inverse`], always inlined (the block kernels).
    #[inline(always)]
    fn inverse_at<V: Vals<Elem = S>>(&self, knots: &[V], y: V) -> (V, V) {
        let n = self.opts.bins + 1;
        let (inside, k) = self.locate(slicing::range(knots, n, n), y);
        let bin = Bin::new(knots, n, k);
        let xi = bin.inv_xi(y);
        let x = bin.x0 + xi * bin.w;
        let (_, l) = bin.eval(xi);
        let (yo, lo) = identity(y);
        (V::select(inside, self.clip_out(x), yo), V::select(inside, -l, lo))
    }

    /// Coordinates of `N` samples at once: for each `(i, r)` of `coords`, `dst[s][i] = f(src[s][i])`
    /// (or `f⁻¹`, `inverse`) with the raw parameters at row `r` of sample `s`'s network output
    /// `out[s]` (`P` per row); returns each sample's log-derivatives summed in the order of
    /// `coords`. Every sample gets the bits of [`Spline::knots`] then [`Spline::forward`] (or
    /// [`Spline::inverse`]) alone. Two coordinates are computed side by side ([`Pair`]), so that
    /// the running sums and divisions have independent work to overlap. The caller checks
    /// [`LANES_MAX_BINS`] (nothing is written for larger splines).
    #[inline(always)]
    pub fn eval_block<const N: usize>(
        &self,
        src: &[&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        mut coords: impl Iterator<Item = (usize, usize)>,
        inverse: bool,
    ) -> Lanes<S, N> {
        let p = self.opts.params_per_feature();
        let mut ldj = Lanes::splat(S::ZERO);
        loop {
            match (coords.next(), coords.next()) {
                (Some((i, r)), Some((i2, r2))) => {
                    let raw = |j| Pair(Lanes::at(out, r * p + j), Lanes::at(out, r2 * p + j));
                    let x = Pair(Lanes::column(src, i), Lanes::column(src, i2));
                    let Some((v, l)) = self.eval_vals(raw, x, inverse) else {
                        break;
                    };
                    v.0.store_column(dst, i);
                    v.1.store_column(dst, i2);
                    ldj = ldj + l.0 + l.1;
                }
                (Some((i, r)), None) => {
                    let raw = |j| Lanes::at(out, r * p + j);
                    if let Some((v, l)) = self.eval_vals(raw, Lanes::column(src, i), inverse) {
                        v.store_column(dst, i);
                        ldj = ldj + l;
                    }
                    break;
                }
                _ => break,
            }
        }
        ldj
    }

    /// `(f(x), ln f'(x))` (or the inverse's, `inverse`) in lanes, with raw parameter `j` of the
    /// lanes given by `raw(j)`: the knots and the map as [`Spline::knots`] then
    /// [`Spline::forward`] / [`Spline::inverse`] compute them; `None` when the spline has more than
    /// [`LANES_MAX_BINS`] bins (the knots live on the stack).
    #[inline(always)]
    fn eval_vals<V: Vals<Elem = S>>(&self, raw: impl Fn(usize) -> V, x: V, inverse: bool) -> Option<(V, V)> {
        if self.opts.bins > LANES_MAX_BINS {
            return None;
        }
        let zero = V::splat(S::ZERO);
        let mut raw_l = [zero; 3 * LANES_MAX_BINS + 1];
        let mut knots = [zero; 3 * (LANES_MAX_BINS + 1)];
        let raw_l = raw_l.get_mut(..self.opts.params_per_feature())?;
        let knots = knots.get_mut(..self.opts.knots_len())?;
        for (j, r) in raw_l.iter_mut().enumerate() {
            *r = raw(j);
        }
        self.build(raw_l, knots, None);
        Some(if inverse {
            self.inverse_at(knots, x)
        } else {
            self.forward_at(knots, x)
        })
    }

    /// The start of both VJPs: the knots and softmaxes of `raw` in `scratch`, and `g_raw` cut to
    /// `P` and zeroed; `None` when a buffer is short.
    #[inline]
    fn vjp_knots<'s, 'g>(
        &self,
        raw: &[S],
        g_raw: &'g mut [S],
        scratch: &'s mut [S],
    ) -> Option<(&'s [S], &'s [S], &'g mut [S])> {
        let kb = self.opts.bins;
        let (knots, soft) = scratch.split_at_mut_checked(3 * (kb + 1))?;
        let soft = soft.get_mut(..2 * kb)?;
        self.build(raw, knots, Some(&mut *soft));
        let g_raw = g_raw.get_mut(..self.opts.params_per_feature())?;
        g_raw.fill(S::ZERO);
        Some((knots, soft, g_raw))
    }

    /// Vector-Jacobian product of [`Spline::forward`] with respect to `x` and the raw parameters.
    ///
    /// For `L = g_y·y + g_l·ln(dy/dx)`, writes `dL/d(raw)` into `g_raw` (P long, overwritten) and
    /// returns `(y, ln dy/dx, dL/dx)`. `scratch` needs [`SplineOpts::vjp_scratch_len`].
    #[inline]
    pub fn forward_vjp(
        &self,
        raw: &[S],
        x: S,
        g_y: S,
        g_l: S,
        g_raw: &mut [S],
        scratch: &mut [S],
    ) -> (S, S, S) {
        let n = self.opts.bins + 1;
        let Some((knots, soft, g_raw)) = self.vjp_knots(raw, g_raw, scratch) else {
            return (S::NAN, S::NAN, S::NAN);
        };
        let (inside, k) = self.locate(slicing::head(knots, n), x);
        if !inside {
            let (y, l) = identity(x);
            return (y, l, g_y);
        }
        let bin = Bin::new(knots, n, k);
        let xi = bin.xi(x);
        let (y, l) = bin.eval(xi);
        let g = bin.vjp(xi, g_y, g_l);
        self.knots_vjp(raw, knots, soft, &bin, &g, g_raw);
        (self.clip_out(y), l, g.x)
    }

    /// Vector-Jacobian product of [`Spline::inverse`] with respect to `y` and the raw parameters.
    ///
    /// For `L = g_x·x + g_l·ln(dx/dy)`, writes `dL/d(raw)` into `g_raw` (P long, overwritten) and
    /// returns `(x, ln dx/dy, dL/dy)`. By implicit differentiation at `x`: with `f' = dy/dx`,
    /// `q = ∂ ln f'/∂x` and `a = (g_x − g_l q)/f'`, `dL/dy = a` and `dL/dθ` is the forward VJP's
    /// parameter gradient for the cotangents `(−a, −g_l)`. `scratch` needs
    /// [`SplineOpts::vjp_scratch_len`].
    #[inline]
    pub fn inverse_vjp(
        &self,
        raw: &[S],
        y: S,
        g_x: S,
        g_l: S,
        g_raw: &mut [S],
        scratch: &mut [S],
    ) -> (S, S, S) {
        let n = self.opts.bins + 1;
        let Some((knots, soft, g_raw)) = self.vjp_knots(raw, g_raw, scratch) else {
            return (S::NAN, S::NAN, S::NAN);
        };
        let (inside, k) = self.locate(slicing::range(knots, n, n), y);
        if !inside {
            let (x, l) = identity(y);
            return (x, l, g_x);
        }
        let bin = Bin::new(knots, n, k);
        let xi = bin.inv_xi(y);
        let x = bin.x0 + xi * bin.w;
        let (_, lf) = bin.eval(xi);
        let q = bin.vjp(xi, S::ZERO, S::ONE).x;
        let a = (g_x - g_l * q) / lf.exp();
        let g = bin.vjp(xi, -a, -g_l);
        self.knots_vjp(raw, knots, soft, &bin, &g, g_raw);
        (self.clip_out(x), -lf, a)
    }

    /// Back-propagates the cotangents of one bin's knots to the raw parameters (`g_raw` zeroed).
    #[inline]
    fn knots_vjp(&self, raw: &[S], knots: &[S], soft: &[S], bin: &Bin<S>, g: &BinGrad<S>, g_raw: &mut [S]) {
        let kb = self.opts.bins;
        let n = kb + 1;
        let Some((sw, sh)) = soft.split_at_checked(kb) else {
            return;
        };
        let Some((gw, rest)) = g_raw.split_at_mut_checked(kb) else {
            return;
        };
        let Some((gh, gd)) = rest.split_at_mut_checked(kb) else {
            return;
        };
        let (Some((widths, heights, draw)), Some(ds)) = (self.split_raw(raw), knots.get(2 * n..3 * n)) else {
            return;
        };
        self.positions_vjp(widths, sw, self.alpha_w, bin.k, g.x0, g.x1, gw);
        self.positions_vjp(heights, sh, self.alpha_h, bin.k, g.y0, g.y1, gh);
        for (j, gj) in [(bin.k, g.d0), (bin.k + 1, g.d1)] {
            match self.opts.kind {
                // dⱼ = exp(softclip(rⱼ₋₁)) for 0 < j < K.
                SplineKind::Zuko { .. } if j >= 1 && j < kb => {
                    if let (Some(gr), Some(&dj), Some(&r)) = (gd.get_mut(j - 1), ds.get(j), draw.get(j - 1)) {
                        *gr += gj * dj * math::softclip_grad(r, self.clip_deriv);
                    }
                }
                // dⱼ = m + softplus(rⱼ₋₁) for 0 < j < K.
                SplineKind::Nflows { .. } if j >= 1 && j < kb => {
                    if let (Some(gr), Some(&r)) = (gd.get_mut(j - 1), draw.get(j - 1)) {
                        *gr += gj * math::sigmoid(r);
                    }
                }
                // dⱼ = softplus(rⱼ + c) + m for every j.
                SplineKind::FlowJax { .. } => {
                    if let (Some(gr), Some(&r)) = (gd.get_mut(j), draw.get(j)) {
                        *gr += gj * math::sigmoid(r + self.d_offset);
                    }
                }
                _ => {}
            }
        }
    }

    /// Back-propagates the cotangents `g0`, `g1` of positions `k`, `k + 1` to the `K` logits
    /// (written into `g_logits`); `soft` is the softmax and `alpha = ∂ position / ∂ softmax`.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    fn positions_vjp(&self, logits: &[S], soft: &[S], alpha: S, k: usize, g0: S, g1: S, g_logits: &mut [S]) {
        let kb = logits.len();
        // Position j depends on softmaxᵢ for i < j; positions 0 and K are constants except zuko's x_K.
        let last = match self.opts.kind {
            SplineKind::Zuko { .. } => kb,
            _ => kb.saturating_sub(1),
        };
        let g0 = if k <= last { g0 * alpha } else { S::ZERO };
        let g1 = if k < last { g1 * alpha } else { S::ZERO };
        // g_softmaxᵢ = g0 [i < k] + g1 [i ≤ k]; then the softmax VJP sᵢ (gᵢ − Σⱼ sⱼ gⱼ).
        let gs = |i: usize| -> S {
            let mut v = S::ZERO;
            if i < k {
                v += g0;
            }
            if i <= k {
                v += g1;
            }
            v
        };
        let mut dot = S::ZERO;
        let soft = slicing::head(soft, kb);
        for (i, &si) in soft.iter().enumerate() {
            dot += si * gs(i);
        }
        let zuko = matches!(self.opts.kind, SplineKind::Zuko { .. });
        let ls = self.logit_scale;
        for (i, ((g, &si), &l)) in g_logits.iter_mut().zip(soft).zip(logits).enumerate() {
            let mut d = si * (gs(i) - dot) * ls;
            if zuko {
                d *= math::softclip_grad(l * ls, self.clip_logit);
            }
            *g = d;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::testing::Lcg;

    const KINDS: [SplineKind; 6] = [
        SplineKind::Zuko { slope: 1e-3 },
        SplineKind::Zuko { slope: 1e-4 },
        SplineKind::Nflows {
            min_bin_width: 1e-3,
            min_bin_height: 1e-3,
            min_derivative: 1e-3,
        },
        SplineKind::Nflows {
            min_bin_width: 2e-2,
            min_bin_height: 5e-3,
            min_derivative: 1e-2,
        },
        SplineKind::FlowJax {
            min_width: 1e-3,
            min_derivative: 1e-3,
        },
        SplineKind::FlowJax {
            min_width: 5e-2,
            min_derivative: 1e-2,
        },
    ];

    /// Every kind × several K, bounds and logit scales.
    fn all_opts() -> Vec<SplineOpts> {
        let mut v = Vec::new();
        for (i, &kind) in KINDS.iter().enumerate() {
            for (j, &bins) in [1usize, 2, 5, 8].iter().enumerate() {
                for (l, &bound) in [1.0, 3.0, 5.0].iter().enumerate() {
                    let logit_scale = if (i + j + l) % 2 == 0 { 1.0 } else { 0.25 };
                    let o = SplineOpts {
                        bins,
                        bound,
                        kind,
                        logit_scale,
                    };
                    assert!(o.is_valid(), "{o:?}");
                    v.push(o);
                }
            }
        }
        v
    }

    /// Same bits, or both NaN.
    fn same<S: Real>(a: S, b: S) -> bool {
        a.to_f64().to_bits() == b.to_f64().to_bits() || (a.is_nan() && b.is_nan())
    }

    /// [`Spline::eval_block`] run through [`crate::arch::vectorized`] (the code of the block kernels).
    struct Block<'a, S, const N: usize> {
        sp: &'a Spline<S>,
        src: [&'a [S]; N],
        out: &'a [[S; N]],
        dims: usize,
        inverse: bool,
    }

    impl<S: Real, const N: usize> crate::lanes::LaneTask for Block<'_, S, N> {
        type Output = (Vec<[S; N]>, [S; N]);
        #[inline(always)]
        fn run(self) -> Self::Output {
            let mut rows = [[S::ZERO; 4]; N];
            let mut dst: [&mut [S]; N] = rows.each_mut().map(|r| &mut r[..]);
            let coords = (0..self.dims).map(|i| (i, i));
            let l = self
                .sp
                .eval_block(&self.src, self.out, &mut dst, coords, self.inverse);
            let cols = (0..self.dims)
                .map(|i| core::array::from_fn(|s| rows[s][i]))
                .collect();
            (cols, l.0)
        }
    }

    /// [`Spline::eval_block`] of 16 samples × 1–3 coordinates (one lane group, a [`Pair`], both),
    /// each with its own raw parameters and input (edge points, knots, far tails, ±∞, NaN), under
    /// every kernel the CPU has: the bits of [`Spline::knots`] then [`Spline::forward`] /
    /// [`Spline::inverse`] on each sample and coordinate alone, the log-derivatives summed in order.
    fn check_lanes<S: Real>(o: &SplineOpts, rng: &mut Lcg) {
        const N: usize = 16;
        let sp = o.prepare::<S>();
        let p = o.params_per_feature();
        let dims = 3;
        let raws: Vec<Vec<S>> = (0..N)
            .map(|i| {
                let scale = [0.1, 1.0, 3.0, 30.0][i % 4];
                (0..dims * p).map(|_| S::from_f64(scale * rng.normal())).collect()
            })
            .collect();
        let knots = |s: usize, i: usize| {
            let mut k = vec![S::ZERO; o.knots_len()];
            sp.knots(&raws[s][i * p..(i + 1) * p], &mut k);
            k
        };
        // The raw parameters as columns, as the network's block pass leaves them.
        let cols: Vec<[S; N]> = (0..dims * p)
            .map(|j| core::array::from_fn(|s| raws[s][j]))
            .collect();
        let b = o.bound;
        let edges = edge_points(o, b);
        for round in 0..24 {
            let xs: Vec<[S; 4]> = (0..N)
                .map(|s| {
                    core::array::from_fn(|i| match (round + s + i) % 6 {
                        0 => S::from_f64(edges[(round * 7 + s + i) % edges.len()]),
                        1 => knots(s, i % dims)[(round + s) % o.knots_len()],
                        2 => S::from_f64([f64::NAN, f64::INFINITY, -f64::INFINITY, 1e30][s % 4]),
                        _ => S::from_f64(1.5 * b * (2.0 * rng.uniform() - 1.0)),
                    })
                })
                .collect();
            for inverse in [false, true] {
                for d in 1..=dims {
                    let task = Block::<S, N> {
                        sp: &sp,
                        src: core::array::from_fn(|s| &xs[s][..]),
                        out: &cols,
                        dims: d,
                        inverse,
                    };
                    let (v, l) = crate::arch::vectorized(task);
                    for s in 0..N {
                        let mut want_l = S::ZERO;
                        for (i, col) in v.iter().enumerate() {
                            let k = knots(s, i);
                            let (wv, wl) = if inverse {
                                sp.inverse(&k, xs[s][i])
                            } else {
                                sp.forward(&k, xs[s][i])
                            };
                            want_l += wl;
                            let what =
                                std::format!("{o:?} inverse={inverse} d={d} sample {s} coordinate {i}");
                            assert!(
                                same(col[s], wv),
                                "{what}: {:?} vs {wv:?} at x={:?}",
                                col[s],
                                xs[s][i]
                            );
                        }
                        assert!(
                            same(l[s], want_l),
                            "{o:?} inverse={inverse} d={d} sample {s}: ldj {:?} vs {want_l:?}",
                            l[s]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn lanes_give_each_sample_the_single_sample_bits() {
        use crate::arch::{kernel, limit_kernel, Kernel};
        let best = kernel();
        let mut opts = all_opts();
        opts.push(SplineOpts::zuko(LANES_MAX_BINS, 5.0, 1e-3));
        opts.push(SplineOpts::flowjax(LANES_MAX_BINS, 4.0));
        let mut rng = Lcg(11);
        for k in [Kernel::Portable, Kernel::Avx2, Kernel::Avx512]
            .into_iter()
            .filter(|&k| k <= best)
        {
            limit_kernel(k);
            for o in &opts {
                check_lanes::<f32>(o, &mut rng);
                check_lanes::<f64>(o, &mut rng);
            }
        }
        limit_kernel(best);
        let many = SplineOpts::zuko(LANES_MAX_BINS + 1, 3.0, 1e-3).prepare::<f32>();
        let raw = Lanes([0.0f32; 2]);
        assert!(many.eval_vals(|_| raw, raw, false).is_none());
    }

    fn knots_of(o: &SplineOpts, raw: &[f64]) -> Vec<f64> {
        let mut k = vec![0.0; o.knots_len()];
        o.knots(raw, &mut k);
        k
    }

    fn dist(v: f64, ps: &[f64]) -> f64 {
        ps.iter().map(|p| (v - p).abs()).fold(f64::INFINITY, f64::min)
    }

    /// Five-point central difference (error O(h⁴)), so steep inverse spline bins are checked too.
    fn fd(f: impl Fn(f64) -> f64, v: f64) -> f64 {
        let h = 2e-6;
        (8.0 * (f(v + h) - f(v - h)) - (f(v + 2.0 * h) - f(v - 2.0 * h))) / (12.0 * h)
    }

    fn rel(a: f64, b: f64) -> f64 {
        (a - b).abs() / (1.0 + b.abs())
    }

    #[derive(Debug, Default)]
    struct Worst {
        roundtrip: f64,
        logdet: f64,
        fwd_x: f64,
        fwd_params: f64,
        inv_y: f64,
        inv_params: f64,
    }

    #[test]
    fn kernel_roundtrip_logdet_and_vjps_match_finite_differences() {
        let mut rng = Lcg(3);
        let mut worst = Worst::default();
        let (mut n_inside, mut n_steep) = (0, 0);
        for o in all_opts() {
            let p = o.params_per_feature();
            let n = o.bins + 1;
            let b = o.bound;
            for _ in 0..4 {
                let raw: Vec<f64> = (0..p).map(|_| rng.normal() * 1.5).collect();
                let kn = knots_of(&o, &raw);
                let (xs, ys) = (&kn[..n], &kn[n..2 * n]);
                let mut scratch = vec![0.0; o.vjp_scratch_len()];
                let mut pts: Vec<f64> = (0..6).map(|_| (2.0 * rng.uniform() - 1.0) * b).collect();
                pts.extend([
                    b * (1.0 + rng.uniform()),
                    -b * (1.0 + rng.uniform()),
                    1e3,
                    -7.5 * b,
                ]);
                for &x in &pts {
                    let (y, l) = o.forward(&kn, x);
                    if dist(x, xs) < 1e-4 || dist(y, ys) < 1e-4 {
                        continue;
                    }
                    n_inside += usize::from(x.abs() < b);
                    // Round trip and log-det cancellation.
                    let (x2, li) = o.inverse(&kn, y);
                    assert!(
                        rel(x2, x) < 1e-10 && (l + li).abs() < 1e-10,
                        "{o:?} x={x}: {x2} {l} {li}"
                    );
                    worst.roundtrip = worst.roundtrip.max(rel(x2, x));
                    // Log-det against the finite-difference derivative.
                    let dy = fd(|v| o.forward(&kn, v).0, x);
                    let e = rel(l, dy.ln());
                    assert!(e < 1e-6, "{o:?} x={x}: ldj {l} vs {}", dy.ln());
                    worst.logdet = worst.logdet.max(e);
                    // Forward VJP.
                    let (g_y, g_l) = (rng.normal(), 0.7);
                    let loss = |raw: &[f64], x: f64| {
                        let (y, l) = o.forward(&knots_of(&o, raw), x);
                        g_y * y + g_l * l
                    };
                    let mut g_raw = vec![f64::NAN; p];
                    let (y3, l3, gx) = o.forward_vjp(&raw, x, g_y, g_l, &mut g_raw, &mut scratch);
                    assert_eq!((y3, l3), (y, l));
                    let e = rel(gx, fd(|v| loss(&raw, v), x));
                    assert!(e < 1e-6, "{o:?} x={x}: dL/dx {gx}");
                    worst.fwd_x = worst.fwd_x.max(e);
                    for q in 0..p {
                        let f = fd(
                            |v| {
                                let mut r = raw.clone();
                                r[q] = v;
                                loss(&r, x)
                            },
                            raw[q],
                        );
                        let e = rel(g_raw[q], f);
                        assert!(e < 1e-6, "{o:?} x={x} param {q}: {} vs {f}", g_raw[q]);
                        worst.fwd_params = worst.fwd_params.max(e);
                    }
                    // Inverse VJP at y; finite differences in y are meaningless where the spline is
                    // nearly flat (a step of 1e-6 in y crosses bins), so those points are skipped.
                    if l.abs() > 30f64.ln() {
                        n_steep += 1;
                        continue;
                    }
                    let (g_x, g_l) = (rng.normal(), -0.4);
                    let loss = |raw: &[f64], y: f64| {
                        let (x, l) = o.inverse(&knots_of(&o, raw), y);
                        g_x * x + g_l * l
                    };
                    let (x4, l4, gy) = o.inverse_vjp(&raw, y, g_x, g_l, &mut g_raw, &mut scratch);
                    assert_eq!((x4, l4), (x2, li));
                    let e = rel(gy, fd(|v| loss(&raw, v), y));
                    assert!(
                        e < 1e-6,
                        "{o:?} y={y}: dL/dy {gy} vs {}",
                        fd(|v| loss(&raw, v), y)
                    );
                    worst.inv_y = worst.inv_y.max(e);
                    for q in 0..p {
                        let f = fd(
                            |v| {
                                let mut r = raw.clone();
                                r[q] = v;
                                loss(&r, y)
                            },
                            raw[q],
                        );
                        let e = rel(g_raw[q], f);
                        assert!(e < 1e-6, "{o:?} y={y} param {q}: {} vs {f}", g_raw[q]);
                        worst.inv_params = worst.inv_params.max(e);
                    }
                }
            }
        }
        assert!(n_inside > 500 && n_steep < n_inside / 5, "{n_inside} {n_steep}");
        std::eprintln!("spline kernel worst ({n_inside} inside points, {n_steep} steep): {worst:?}");
    }

    /// ±B, the last knot, and one ULP either side of each, in f64 and f32.
    fn edge_points(o: &SplineOpts, xs_end: f64) -> Vec<f64> {
        let b = o.bound;
        let mut v = Vec::new();
        for c in [b, -b, xs_end, 0.0] {
            v.push(c);
            v.push(f64::from_bits(c.to_bits() + 1));
            if c != 0.0 {
                v.push(f64::from_bits(c.to_bits() - 1));
            }
            let c32 = c as f32;
            for u in [
                f32::from_bits(c32.to_bits() + 1),
                f32::from_bits(c32.to_bits().saturating_sub(1)),
            ] {
                v.push(u as f64);
            }
        }
        v
    }

    fn check_finite<S: Real>(o: &SplineOpts, raw: &[S], v: S) {
        let mut kn = vec![S::ZERO; o.knots_len()];
        o.knots(raw, &mut kn);
        let (y, l) = o.forward(&kn, v);
        let (x, li) = o.inverse(&kn, v);
        assert!(
            y.is_finite() && l.is_finite() && x.is_finite() && li.is_finite(),
            "{o:?} {v:?}"
        );
        let mut g = vec![S::ZERO; o.params_per_feature()];
        let mut s = vec![S::ZERO; o.vjp_scratch_len()];
        let (_, _, gx) = o.forward_vjp(raw, v, S::ONE, S::ONE, &mut g, &mut s);
        assert!(gx.is_finite() && g.iter().all(|g| g.is_finite()), "{o:?} {v:?}");
        let (_, _, gy) = o.inverse_vjp(raw, v, S::ONE, S::ONE, &mut g, &mut s);
        assert!(gy.is_finite() && g.iter().all(|g| g.is_finite()), "{o:?} {v:?}");
        // Near the bound the output stays near the bound.
        let b = S::from_f64(o.bound);
        let tol = S::from_f64(1e-4) * b;
        if v.abs() <= b {
            assert!(
                y.abs() <= b + tol && x.abs() <= b + tol,
                "{o:?} {v:?} -> {y:?} {x:?}"
            );
        }
    }

    #[test]
    fn kernel_is_finite_at_and_around_the_bound_in_f32_and_f64() {
        let mut rng = Lcg(5);
        for o in all_opts() {
            for scale in [0.0, 1.0, 4.0] {
                let raw: Vec<f64> = (0..o.params_per_feature())
                    .map(|_| rng.normal() * scale)
                    .collect();
                let kn = knots_of(&o, &raw);
                let raw32: Vec<f32> = raw.iter().map(|&r| r as f32).collect();
                let mut kn32 = vec![0.0f32; o.knots_len()];
                o.knots(&raw32, &mut kn32);
                let n = o.bins + 1;
                let mut pts = edge_points(&o, kn[n - 1]);
                pts.extend(edge_points(&o, kn32[n - 1] as f64));
                pts.extend(edge_points(&o, kn[2 * n - 1]));
                for &v in &pts {
                    check_finite(&o, &raw, v);
                    check_finite(&o, &raw32, v as f32);
                }
            }
        }
    }

    #[test]
    fn f32_inverse_never_nan() {
        let mut rng = Lcg(17);
        for o in all_opts() {
            let n = o.bins + 1;
            for _ in 0..20 {
                let raw: Vec<f32> = (0..o.params_per_feature())
                    .map(|_| (rng.normal() * 4.0) as f32)
                    .collect();
                let mut kn = vec![0.0f32; o.knots_len()];
                o.knots(&raw, &mut kn);
                let mut ys: Vec<f32> = (0..200)
                    .map(|_| ((2.0 * rng.uniform() - 1.0) * o.bound) as f32)
                    .collect();
                for &k in &kn[n..2 * n] {
                    ys.extend([
                        k,
                        f32::from_bits(k.to_bits() + 1),
                        f32::from_bits(k.to_bits() - 1),
                    ]);
                }
                for &y in &ys {
                    let (x, l) = o.inverse(&kn, y);
                    assert!(x.is_finite() && l.is_finite(), "{o:?} y={y}: {x} {l}");
                    let (y2, _) = o.forward(&kn, x);
                    assert!((y2 - y).abs() < 1e-3 * o.bound as f32, "{o:?} y={y}: {y2}");
                }
            }
        }
    }

    #[test]
    fn far_tails_are_the_identity_with_zero_gradients() {
        let mut rng = Lcg(23);
        for o in all_opts() {
            let p = o.params_per_feature();
            let raw: Vec<f64> = (0..p).map(|_| rng.normal() * 2.0).collect();
            let kn = knots_of(&o, &raw);
            let mut s = vec![0.0; o.vjp_scratch_len()];
            let b = o.bound;
            for v in [
                1.001 * b,
                -1.001 * b,
                10.0 * b,
                -1e6,
                1e300,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ] {
                assert_eq!(o.forward(&kn, v), (v, 0.0));
                assert_eq!(o.inverse(&kn, v), (v, 0.0));
                let mut g = vec![1.0; p];
                assert_eq!(o.forward_vjp(&raw, v, 0.3, 0.7, &mut g, &mut s), (v, 0.0, 0.3));
                assert!(g.iter().all(|&g| g == 0.0));
                let mut g = vec![1.0; p];
                assert_eq!(o.inverse_vjp(&raw, v, 0.3, 0.7, &mut g, &mut s), (v, 0.0, 0.3));
                assert!(g.iter().all(|&g| g == 0.0));
            }
            let (y, l) = o.forward(&kn, f64::NAN);
            assert!(y.is_nan() && l.is_nan());
            let (x, l) = o.inverse(&kn, f64::NAN);
            assert!(x.is_nan() && l.is_nan());
        }
    }

    #[test]
    fn monotonic_and_continuous_across_the_bound() {
        let mut rng = Lcg(29);
        for o in all_opts() {
            let raw: Vec<f64> = (0..o.params_per_feature()).map(|_| rng.normal() * 2.0).collect();
            let kn = knots_of(&o, &raw);
            let raw32: Vec<f32> = raw.iter().map(|&r| r as f32).collect();
            let mut kn32 = vec![0.0f32; o.knots_len()];
            o.knots(&raw32, &mut kn32);
            let b = o.bound;
            let m = 4000;
            let (mut py, mut px, mut py32) = (f64::NEG_INFINITY, f64::NEG_INFINITY, f32::NEG_INFINITY);
            for i in 0..=m {
                let v = -1.5 * b + 3.0 * b * i as f64 / m as f64;
                let (y, _) = o.forward(&kn, v);
                let (x, _) = o.inverse(&kn, v);
                let (y32, _) = o.forward(&kn32, v as f32);
                assert!(y > py && x > px && y32 >= py32, "{o:?} at {v}");
                // Continuous: steps stay below the largest slope times the grid step.
                if i > 0 {
                    assert!(y - py < 3.0 * b / m as f64 / 1e-4 && x - px < 3.0 * b / m as f64 / 1e-4);
                }
                (py, px, py32) = (y, x, y32);
            }
        }
    }

    #[test]
    fn conventions_of_each_kind() {
        let mut rng = Lcg(31);
        for o in all_opts() {
            let (kb, n, b) = (o.bins, o.bins + 1, o.bound);
            let p = o.params_per_feature();
            match o.kind {
                SplineKind::FlowJax { .. } => assert_eq!(p, 3 * kb + 1),
                _ => assert_eq!(p, 3 * kb - 1),
            }
            // Zero parameters: uniform knots; zuko and FlowJAX are then the identity.
            let kn = knots_of(&o, &vec![0.0; p]);
            for j in 0..n {
                let u = -b + 2.0 * b * j as f64 / kb as f64;
                assert!(
                    (kn[j] - u).abs() < 1e-12 && (kn[n + j] - u).abs() < 1e-12,
                    "{o:?}"
                );
            }
            let d = &kn[2 * n..];
            match o.kind {
                SplineKind::Nflows { min_derivative, .. } => {
                    assert!((d[0] - 1.0).abs() < 1e-14 && (d[kb] - 1.0).abs() < 1e-14);
                    for &dj in &d[1..kb] {
                        assert!((dj - (min_derivative + 2f64.ln())).abs() < 1e-14);
                    }
                }
                _ => {
                    assert!(d.iter().all(|&dj| (dj - 1.0).abs() < 1e-14), "{o:?} {d:?}");
                    for x in [-0.9 * b, -0.1 * b, 0.3 * b, 0.77 * b] {
                        let (y, l) = o.forward(&kn, x);
                        assert!((y - x).abs() < 1e-12 && l.abs() < 1e-12);
                    }
                }
            }
            // Knot ends: exact ±B for nflows and FlowJAX; zuko's x₀ = −B and x_K ≈ B.
            let raw: Vec<f64> = (0..p).map(|_| rng.normal() * 3.0).collect();
            let kn = knots_of(&o, &raw);
            assert_eq!((kn[0], kn[n]), (-b, -b));
            match o.kind {
                SplineKind::Zuko { .. } => assert!((kn[kb] - b).abs() < 1e-14 * b),
                _ => assert_eq!((kn[kb], kn[n + kb]), (b, b)),
            }
            // Boundary derivatives: 1 for zuko and nflows, learned for FlowJAX.
            let d = &kn[2 * n..];
            match o.kind {
                SplineKind::FlowJax { min_derivative, .. } => {
                    let c = (1.0 - min_derivative) + (-(-(1.0 - min_derivative)).exp_m1()).ln();
                    let sp = |v: f64| (1.0 + v.exp()).ln();
                    assert!((d[0] - (sp(raw[2 * kb] + c) + min_derivative)).abs() < 1e-12);
                    assert!((d[kb] - (sp(raw[3 * kb] + c) + min_derivative)).abs() < 1e-12);
                }
                _ => assert!((d[0] - 1.0).abs() < 1e-14 && (d[kb] - 1.0).abs() < 1e-14),
            }
            // Exactly at the bounds.
            let (y, l) = o.forward(&kn, -b);
            assert_eq!(y, -b);
            match o.kind {
                SplineKind::Zuko { .. } => assert_eq!(l, 0.0),
                _ => assert!((l - d[0].ln()).abs() < 1e-12),
            }
            let (y, l) = o.forward(&kn, b);
            assert!((y - b).abs() < 1e-14 * b, "{o:?} {y}");
            assert!((l - d[kb].ln()).abs() < 1e-9 || l == 0.0, "{o:?} {l}");
        }
    }

    #[test]
    fn bins_follow_each_library_at_knots() {
        // A knot value belongs to the bin on its left for zuko and FlowJAX (searchsorted "left"),
        // on its right for nflows (count of knots ≤ x).
        let mut rng = Lcg(37);
        for o in all_opts().into_iter().filter(|o| o.bins >= 3) {
            let raw: Vec<f64> = (0..o.params_per_feature()).map(|_| rng.normal()).collect();
            let kn = knots_of(&o, &raw);
            let n = o.bins + 1;
            let (inside, k) = o.prepare::<f64>().locate(&kn[..n], kn[2]);
            assert!(inside);
            match o.kind {
                SplineKind::Nflows { .. } => assert_eq!(k, 2),
                _ => assert_eq!(k, 1),
            }
            assert_eq!(o.prepare::<f64>().locate(&kn[..n], kn[n - 1]), (true, o.bins - 1));
            let lo = o.prepare::<f64>().locate(&kn[..n], -o.bound);
            match o.kind {
                SplineKind::Zuko { .. } => assert!(!lo.0),
                _ => assert_eq!(lo, (true, 0)),
            }
        }
    }

    #[test]
    fn options_validate_and_serialize() {
        assert!(SplineOpts::zuko(8, 5.0, 1e-3).is_valid());
        assert!(SplineOpts::nflows(8, 3.0, 1.0 / 32f64.sqrt()).is_valid());
        assert!(SplineOpts::flowjax(9, 4.0).is_valid());
        assert!(!SplineOpts::zuko(0, 5.0, 1e-3).is_valid());
        assert!(!SplineOpts::zuko(8, 5.0, 1.0).is_valid());
        assert!(!SplineOpts::zuko(8, f64::NAN, 1e-3).is_valid());
        let mut o = SplineOpts::nflows(8, 3.0, 1.0);
        o.kind = SplineKind::Nflows {
            min_bin_width: 0.2,
            min_bin_height: 1e-3,
            min_derivative: 1e-3,
        };
        assert!(!o.is_valid());
        let o = SplineOpts::flowjax(9, 4.0);
        let bytes = postcard::to_allocvec(&o).unwrap();
        assert_eq!(postcard::from_bytes::<SplineOpts>(&bytes).unwrap(), o);
    }
}
