//! Monotone rational-quadratic splines (Durkan et al. 2019, "Neural Spline Flows"): the scalar
//! kernel of [`SplineAutoregressive`](crate::layers::autoregressive::SplineAutoregressive) and
//! [`SplineCoupling`](crate::layers::coupling::SplineCoupling).
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

mod bin;
mod knots;
#[cfg(test)]
mod tests;
mod transformer;
mod vjp;

use serde::{Deserialize, Serialize};

use crate::lanes::{Lanes, Pair, Vals};
use crate::{math, slicing, Real};

use bin::Bin;

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

/// `(y, ldj)` of the identity (NaN log-derivative for a NaN input).
#[inline(always)]
pub(super) fn identity<V: Vals>(x: V) -> (V, V) {
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
}
