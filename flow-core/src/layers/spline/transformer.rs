//! The spline as the [`Transformer`] of the autoregressive and coupling layers: the knots of each
//! feature from its raw parameters ([`Spline::knots`]), then the map or its inverse.

use super::{Spline, SplineOpts, LANES_MAX_BINS};
use crate::layers::transformer::{FeatureVjp, Transformer};
use crate::{slicing, Real};

impl Transformer for SplineOpts {
    fn params_per_feature(&self) -> usize {
        SplineOpts::params_per_feature(self)
    }

    /// The knots of one feature.
    fn map_len(&self) -> usize {
        self.knots_len()
    }

    fn vjp_len(&self) -> usize {
        self.vjp_scratch_len()
    }

    fn lanes_apply(&self) -> bool {
        self.bins <= LANES_MAX_BINS
    }

    /// `y = f(x)` (`forward`) or `f⁻¹(x)`, each feature's knots built in `scratch`.
    #[inline(always)]
    fn map<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = (&'f S, &'f [S], &'f mut S)>,
        scratch: &mut [S],
        forward: bool,
    ) -> S {
        let sp = self.prepare::<S>();
        let knots = slicing::split_mut(scratch, self.knots_len()).0;
        let mut ldj = S::ZERO;
        for (&x, raw, y) in features {
            sp.knots(raw, knots);
            let (v, l) = if forward {
                sp.forward(knots, x)
            } else {
                sp.inverse(knots, x)
            };
            *y = v;
            ldj += l;
        }
        ldj
    }

    /// [`Spline::eval_block`] (always two coordinates side by side).
    #[inline(always)]
    fn map_lanes<S: Real, const N: usize>(
        &self,
        src: &[&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        coords: impl Iterator<Item = (usize, usize)>,
        forward: bool,
        _: bool,
    ) -> [S; N] {
        let sp: Spline<S> = self.prepare::<S>();
        sp.eval_block(src, out, dst, coords, !forward).0
    }

    /// `f'(x) = exp(ln f'(x))`.
    #[inline(always)]
    fn derivatives<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = (&'f S, &'f [S], &'f mut S)>,
        scratch: &mut [S],
    ) {
        let sp = self.prepare::<S>();
        let knots = slicing::split_mut(scratch, self.knots_len()).0;
        for (&x, raw, d) in features {
            sp.knots(raw, knots);
            *d = sp.forward(knots, x).1.exp();
        }
    }

    /// [`Spline::forward_vjp`] (`forward`) or [`Spline::inverse_vjp`] per feature.
    #[inline(always)]
    fn vjp<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = FeatureVjp<'f, S>>,
        g_ldj: S,
        scratch: &mut [S],
        forward: bool,
    ) {
        let sp = self.prepare::<S>();
        for (&x, &gy, raw, g_raw, gx) in features {
            *gx = if forward {
                sp.forward_vjp(raw, x, gy, g_ldj, g_raw, scratch).2
            } else {
                sp.inverse_vjp(raw, x, gy, g_ldj, g_raw, scratch).2
            };
        }
    }
}
