//! The knots of one coordinate from its raw parameters, in each peer library's convention
//! ([`SplineKind`]), and the bin search on them.

use super::{Spline, SplineKind};
use crate::lanes::Vals;
use crate::{math, slicing, Real};

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

impl<S: Real> Spline<S> {
    /// Computes the knots of one coordinate from its `P` raw parameters into `knots`
    /// ([`SplineOpts::knots_len`](super::SplineOpts::knots_len) long): `[x₀..x_K | y₀..y_K | d₀..d_K]`. In [`Lanes`](crate::lanes::Lanes), each lane is
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
    pub(super) fn split_raw<'r, V>(&self, raw: &'r [V]) -> Option<(&'r [V], &'r [V], &'r [V])> {
        let kb = self.opts.bins;
        let (widths, rest) = raw.split_at_checked(kb)?;
        let (heights, rest) = rest.split_at_checked(kb)?;
        let n_derivs = self.opts.params_per_feature().saturating_sub(2 * kb);
        Some((widths, heights, rest.get(..n_derivs)?))
    }

    /// As [`Spline::knots`], also keeping the width and height softmaxes in `soft` (`2K`).
    #[inline(always)]
    pub(super) fn build<V: Vals<Elem = S>>(&self, raw: &[V], knots: &mut [V], soft: Option<&mut [V]>) {
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
    pub(super) fn positions<V: Vals<Elem = S>>(
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
    pub(super) fn derivatives<V: Vals<Elem = S>>(&self, raw: &[V], ds: &mut [V]) {
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
    pub(super) fn locate<V: Vals<Elem = S>>(&self, p: &[V], v: V) -> (V::Mask, V::Index) {
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
    pub(super) fn clip_out<V: Vals<Elem = S>>(&self, v: V) -> V {
        match self.opts.kind {
            SplineKind::FlowJax { .. } => v.max(-V::splat(self.bound)).min(V::splat(self.bound)),
            _ => v,
        }
    }
}
