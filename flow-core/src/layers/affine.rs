//! The affine transformer of one coordinate, shared by the autoregressive and coupling layers:
//! `x ↦ x · s(a) + t` with a positive scale `s(a)` from the raw conditioner output `a`
//! ([`AffineScale`]: each library's parameterization) and the pair `(t, a)` read from the
//! conditioner in the library's order ([`AffineLayout`]).

use serde::{Deserialize, Serialize};

use crate::lanes::{Lanes, Pair, Vals};
use crate::layers::transformer::{FeatureVjp, Transformer};
use crate::{math, slicing, Real};

/// How the raw network output `a` becomes a positive scale `s(a)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum AffineScale {
    /// zuko: `ln s = a / (1 + |a| / bound)` with `bound = −ln(slope)` (6.9078 for slope 1e-3),
    /// so `s ∈ (e^−bound, e^bound)`.
    SoftclipExp {
        /// The bound on |ln s|.
        bound: f64,
    },
    /// nflows (eps 1e-3): `s = softplus(a) + eps`.
    SoftplusEps {
        /// Lower bound of the scale.
        eps: f64,
    },
    /// normflows: `s = σ(a + 2) + eps`.
    Sigmoid {
        /// Lower bound of the scale.
        eps: f64,
    },
    /// FlowJAX 19 `Affine` transformers: `s = softplus(a + offset) + eps` with JAX's softplus
    /// (`max(v, 0) + ln(1 + e^{−|v|})`, no threshold). FlowJAX's ravelled-parameter constructor
    /// adds the transformer's initial raw value to the network output, so the offset is
    /// `inv_softplus(s₀ − eps)` (paramax: `ln(−expm1(−x)) + x`) for the initial scale `s₀ = 1`:
    /// `Affine()` has `offset = ln(e − 1)`, `eps = 0`; FlowJAX's default transformer
    /// (`_affine_with_min_scale`) has `offset = inv_softplus(0.99)`, `eps = 1e-2`.
    ///
    /// With `eps = 0`, `ln s` is taken as `v = a + offset` for `v < −30` (where
    /// `ln softplus(v) = v − e^v/2 + …`, an error below 1e-13), so the log-determinant stays finite
    /// where `softplus(v)` underflows.
    SoftplusOffset {
        /// Added to the raw output before the softplus.
        offset: f64,
        /// Lower bound of the scale (≥ 0).
        eps: f64,
    },
}

/// The affine transformer of one coordinate: `x · s + t` (`forward`) or `(x − t) / s`, in one lane
/// or in lanes (the operations of every path).
#[inline(always)]
pub(crate) fn affine_map<V: Vals>(x: V, t: V, s: V, forward: bool) -> V {
    if forward {
        x * s + t
    } else {
        (x - t) / s
    }
}

/// `ldj + ln s` (`forward`) or `ldj − ln s`: a subtraction, not the sum with `−ln s`, so that a NaN
/// keeps the sign bit the single-sample path gives it.
#[inline(always)]
pub(crate) fn add_ldj<V: Vals>(ldj: V, ls: V, forward: bool) -> V {
    if forward {
        ldj + ls
    } else {
        ldj - ls
    }
}

impl AffineScale {
    /// Why the options are out of range (the validator's rule, and the baking macro's message),
    /// or `None`: the softclip bound in (0, 80), eps finite and positive (finite and
    /// non-negative, with a finite offset, for `SoftplusOffset`).
    pub fn out_of_range(self) -> Option<&'static str> {
        match self {
            AffineScale::SoftclipExp { bound } if !(bound.is_finite() && bound > 0.0 && bound < 80.0) => {
                Some("the bound must be in (0, 80)")
            }
            AffineScale::SoftplusEps { eps } | AffineScale::Sigmoid { eps }
                if !(eps.is_finite() && eps > 0.0) =>
            {
                Some("eps must be finite and positive")
            }
            AffineScale::SoftplusOffset { offset, eps }
                if !(offset.is_finite() && eps.is_finite() && eps >= 0.0) =>
            {
                Some("offset must be finite and eps finite and non-negative")
            }
            _ => None,
        }
    }

    /// Returns `(s, ln s, d ln s / da)`.
    #[inline]
    pub fn eval<S: Real>(self, a: S) -> (S, S, S) {
        self.eval_with::<S, true>(a)
    }

    /// `(s, ln s)`: [`AffineScale::eval`] without the derivative (the same bits), for the
    /// forward and inverse passes; in lanes too ([`Vals`]), each lane with the bits of one value.
    #[inline(always)]
    pub fn scale<V: Vals>(self, a: V) -> (V, V) {
        let (s, ls, _) = self.eval_with::<V, false>(a);
        (s, ls)
    }

    /// `(s, ln s, d ln s / da)`, the derivative only when `GRAD` (else 0).
    #[inline(always)]
    pub(crate) fn eval_with<V: Vals, const GRAD: bool>(self, a: V) -> (V, V, V) {
        let c = |v: f64| V::splat(V::Elem::from_f64(v));
        match self {
            AffineScale::SoftclipExp { bound } => {
                let b = c(bound);
                let ls = math::softclip(a, b);
                (ls.exp(), ls, when::<V, GRAD>(|| math::softclip_grad(a, b)))
            }
            AffineScale::SoftplusEps { eps } => {
                let s = math::softplus(a) + c(eps);
                (s, s.ln(), when::<V, GRAD>(|| math::sigmoid(a) / s))
            }
            AffineScale::Sigmoid { eps } => {
                let sg = math::sigmoid(a + c(2.0));
                let s = sg + c(eps);
                (s, s.ln(), when::<V, GRAD>(|| sg * (c(1.0) - sg) / s))
            }
            AffineScale::SoftplusOffset { offset, eps } => {
                let v = a + c(offset);
                let s = v.max(c(0.0)) + (-v.abs()).exp().ln_1p() + c(eps);
                let grad = when::<V, GRAD>(|| math::sigmoid(v) / s);
                if eps == 0.0 {
                    // ln s is taken as v below −30; d ln s / da = σ(v) / softplus(v) = 1 − e^v/2 + …
                    let far = v.lt(c(-30.0));
                    (
                        s,
                        V::select(far, v, s.ln()),
                        V::select(far, when::<V, GRAD>(|| c(1.0)), grad),
                    )
                } else {
                    (s, s.ln(), grad)
                }
            }
        }
    }
}

/// `g()` when `GRAD`, else 0 (not computed).
#[inline(always)]
fn when<V: Vals, const GRAD: bool>(g: impl FnOnce() -> V) -> V {
    if GRAD {
        g()
    } else {
        V::splat(V::Elem::ZERO)
    }
}

/// Which of the two outputs per feature is the shift.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AffineLayout {
    /// `[shift, raw scale]` per feature (zuko).
    ShiftScale,
    /// `[raw scale, shift]` per feature (nflows).
    ScaleShift,
}

impl AffineLayout {
    /// Indices of (shift, raw scale) within a feature's pair.
    #[inline(always)]
    pub fn indices(self) -> (usize, usize) {
        match self {
            AffineLayout::ShiftScale => (0, 1),
            AffineLayout::ScaleShift => (1, 0),
        }
    }

    /// `(shift, raw scale)` of one feature's pair of network outputs (NaNs if `pair` is not two
    /// values long).
    #[inline(always)]
    pub fn split<S: Real>(self, pair: &[S]) -> (S, S) {
        match (self, pair) {
            (AffineLayout::ShiftScale, &[t, a]) | (AffineLayout::ScaleShift, &[a, t]) => (t, a),
            _ => (S::NAN, S::NAN),
        }
    }

    /// Writes `(shift, raw scale)` into one feature's pair of network outputs (nothing if `pair` is
    /// not two values long).
    #[inline(always)]
    pub fn join<S: Real>(self, pair: &mut [S], shift: S, raw_scale: S) {
        match (self, pair) {
            (AffineLayout::ShiftScale, [t, a]) | (AffineLayout::ScaleShift, [a, t]) => {
                *t = shift;
                *a = raw_scale;
            }
            _ => {}
        }
    }
}

/// The affine transformer `y = x · s(a) + t` of the autoregressive and coupling layers, with
/// `(t, a)` read from the conditioner's output in `layout` and `s(a)` from `scale`; `additive`
/// is NICE's shift (`s ≡ 1`, one raw parameter `t` per feature, log-det 0; `scale` and `layout`
/// ignored).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Affine {
    /// Scale parameterization.
    pub scale: AffineScale,
    /// Output layout.
    pub layout: AffineLayout,
    /// Shift only (NICE).
    pub additive: bool,
}

impl Affine {
    /// The affine transformer with a scale (`additive = false`).
    pub const fn new(scale: AffineScale, layout: AffineLayout) -> Affine {
        Affine {
            scale,
            layout,
            additive: false,
        }
    }

    /// `(t, s, ln s, d ln s / da)` of one feature from its raw parameters `o`, the derivative only
    /// when `GRAD` (else 0).
    #[inline(always)]
    fn shift_scale<S: Real, const GRAD: bool>(&self, o: &[S]) -> (S, S, S, S) {
        if self.additive {
            (o.first().copied().unwrap_or(S::NAN), S::ONE, S::ZERO, S::ZERO)
        } else {
            let (t, a) = self.layout.split(o);
            let (s, ls, dls) = self.scale.eval_with::<S, GRAD>(a);
            (t, s, ls, dls)
        }
    }
}

impl Transformer for Affine {
    fn params_per_feature(&self) -> usize {
        if self.additive {
            1
        } else {
            2
        }
    }

    fn map_len(&self) -> usize {
        0
    }

    fn vjp_len(&self) -> usize {
        0
    }

    /// `y = x · s + t` (`forward`, log-det `+ln s`) or `y = (x − t) / s` (`−ln s`).
    #[inline(always)]
    fn map<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = (&'f S, &'f [S], &'f mut S)>,
        _: &mut [S],
        forward: bool,
    ) -> S {
        let mut ldj = S::ZERO;
        for (&x, o, y) in features {
            let (t, s, ls, _) = self.shift_scale::<S, false>(o);
            *y = affine_map(x, t, s, forward);
            ldj = add_ldj(ldj, ls, forward);
        }
        ldj
    }

    /// With `side_by_side`, two coordinates at a time (independent divisions and exponentials in
    /// flight: faster in the autoregressive layers); one at a time otherwise (faster in the
    /// couplings, measured with `bench_speed`). The same bits either way.
    #[inline(always)]
    fn map_lanes<S: Real, const N: usize>(
        &self,
        src: &[&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        mut coords: impl Iterator<Item = (usize, usize)>,
        forward: bool,
        side_by_side: bool,
    ) -> [S; N] {
        let p = self.params_per_feature();
        let (ti, ai) = self.layout.indices();
        let cols = |r: usize| (Lanes::at(out, r * p + ti), Lanes::at(out, r * p + ai));
        let mut ldj = Lanes::splat(S::ZERO);
        if self.additive {
            for (i, r) in coords {
                let t = Lanes::at(out, r);
                let x = Lanes::column(src, i);
                affine_map(x, t, Lanes::splat(S::ONE), forward).store_column(dst, i);
                ldj = add_ldj(ldj, Lanes::splat(S::ZERO), forward);
            }
            return ldj.0;
        }
        if !side_by_side {
            for (i, r) in coords {
                let (t, a) = cols(r);
                let (s, l) = self.scale.scale(a);
                affine_map(Lanes::column(src, i), t, s, forward).store_column(dst, i);
                ldj = add_ldj(ldj, l, forward);
            }
            return ldj.0;
        }
        loop {
            match (coords.next(), coords.next()) {
                (Some((i, r)), Some((i2, r2))) => {
                    let ((t0, a0), (t1, a1)) = (cols(r), cols(r2));
                    let x = Pair(Lanes::column(src, i), Lanes::column(src, i2));
                    let (s, l) = self.scale.scale(Pair(a0, a1));
                    let v = affine_map(x, Pair(t0, t1), s, forward);
                    v.0.store_column(dst, i);
                    v.1.store_column(dst, i2);
                    ldj = add_ldj(add_ldj(ldj, l.0, forward), l.1, forward);
                }
                (Some((i, r)), None) => {
                    let (t, a) = cols(r);
                    let (s, l) = self.scale.scale(a);
                    affine_map(Lanes::column(src, i), t, s, forward).store_column(dst, i);
                    ldj = add_ldj(ldj, l, forward);
                    break;
                }
                _ => break,
            }
        }
        ldj.0
    }

    /// `dy/dx = s`.
    #[inline(always)]
    fn derivatives<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = (&'f S, &'f [S], &'f mut S)>,
        _: &mut [S],
    ) {
        for (_, o, d) in features {
            *d = self.shift_scale::<S, false>(o).1;
        }
    }

    /// Forward (`y = x s + t`): `∂y/∂x = s`, `∂y/∂t = 1`, `∂y/∂a = x s (d ln s/da)`,
    /// `∂ℓ/∂a = d ln s/da`. Inverse (`y = (x − t) / s`, ℓ = −ln s): `∂y/∂x = 1/s`,
    /// `∂y/∂t = −1/s`, `∂(y, ℓ)/∂a = −(y, 1) d ln s/da`.
    #[inline(always)]
    fn vjp<'f, S: Real + 'f>(
        &self,
        features: impl Iterator<Item = FeatureVjp<'f, S>>,
        g_ldj: S,
        _: &mut [S],
        forward: bool,
    ) {
        for (&x, &gy, o, g_o, gx) in features {
            let (t, s, _, dls) = self.shift_scale::<S, true>(o);
            if forward {
                *gx = gy * s;
                if self.additive {
                    slicing::copy(g_o, &[gy]);
                } else {
                    self.layout.join(g_o, gy, (gy * x * s + g_ldj) * dls);
                }
            } else {
                *gx = gy / s;
                if self.additive {
                    slicing::copy(g_o, &[-gy]);
                } else {
                    let y = (x - t) / s;
                    self.layout.join(g_o, -*gx, -(gy * y + g_ldj) * dls);
                }
            }
        }
    }
}
