//! Vector-Jacobian products of the spline with respect to the coordinate and the raw
//! parameters.

use super::bin::{Bin, BinGrad};
use super::{identity, Spline, SplineKind};
use crate::{math, slicing, Real};

impl<S: Real> Spline<S> {
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
    /// returns `(y, ln dy/dx, dL/dx)`. `scratch` needs [`SplineOpts::vjp_scratch_len`](super::SplineOpts::vjp_scratch_len).
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
    /// [`SplineOpts::vjp_scratch_len`](super::SplineOpts::vjp_scratch_len).
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
