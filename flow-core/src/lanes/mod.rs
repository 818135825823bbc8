//! Values computed in lanes: one scalar ([`Real`]) or `N` samples side by side ([`Lanes`]), with
//! one trait, [`Vals`], so that a kernel written once runs on a single sample and on a block.
//!
//! A kernel generic over `V: Vals` computes, in each lane of `Lanes<S, N>`, exactly the operations
//! it computes on one `S`: the arithmetic is lane by lane, branches are [`Vals::select`]s of values
//! both sides compute, and `exp`, `ln`, `ln_1p` of `Lanes<f32, N>` are libm's routines written
//! without branches ([`libm_f32`]), which return libm's bits for every input. The block path
//! therefore gives every sample the bits of the single-sample path, while a loop over the lanes of
//! each operation compiles to vector instructions (16 `f32` lanes in one AVX-512 register).

pub mod libm_f32;

use core::ops::{Add, Div, Mul, Neg, Sub};

use crate::Real;

/// Whether block kernels run in lanes on this target: where it has vector registers (x86-64,
/// aarch64). Elsewhere (the Cortex-M) a block runs sample by sample, which is as fast without
/// vectors and keeps the lanes' stack buffers off small stacks.
pub const ENABLED: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// A computation over lanes that [`crate::arch::vectorized`] runs in code compiled for the CPU's
/// vector extensions. Implementations mark `run` `#[inline(always)]`, so that all of it is
/// compiled there (a closure would be compiled on its own, for the baseline).
pub trait LaneTask {
    /// What the computation returns.
    type Output;
    /// Runs it.
    fn run(self) -> Self::Output;
}

/// One value per lane with the operations a kernel needs; implemented by every [`Real`] (one lane)
/// and by [`Lanes`].
pub trait Vals:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self>
{
    /// The scalar type of a lane.
    type Elem: Real;
    /// One truth value per lane.
    type Mask: Copy;
    /// One index per lane (into a slice of `Self`).
    type Index: Copy;
    /// The same scalar in every lane.
    fn splat(v: Self::Elem) -> Self;
    /// eˣ per lane.
    fn exp(self) -> Self;
    /// ln x per lane.
    fn ln(self) -> Self;
    /// ln(1 + x) per lane.
    fn ln_1p(self) -> Self;
    /// √x per lane.
    fn sqrt(self) -> Self;
    /// |x| per lane.
    fn abs(self) -> Self;
    /// The larger per lane (NaN-ignoring, as [`Real::max`]).
    fn max(self, o: Self) -> Self;
    /// The smaller per lane (NaN-ignoring, as [`Real::min`]).
    fn min(self, o: Self) -> Self;
    /// `self < o` per lane.
    fn lt(self, o: Self) -> Self::Mask;
    /// `self ≤ o` per lane.
    fn le(self, o: Self) -> Self::Mask;
    /// `self > o` per lane.
    fn gt(self, o: Self) -> Self::Mask;
    /// `self = o` per lane.
    fn eq(self, o: Self) -> Self::Mask;
    /// NaN per lane.
    fn is_nan(self) -> Self::Mask;
    /// `a ∧ b` per lane.
    fn and(a: Self::Mask, b: Self::Mask) -> Self::Mask;
    /// `m ? a : b` per lane.
    fn select(m: Self::Mask, a: Self, b: Self) -> Self;
    /// The number of entries of `p` below `v` (`<`, or `≤` when `or_equal`), per lane.
    fn count_below(p: &[Self], v: Self, or_equal: bool) -> Self::Index;
    /// `lo ≤ i ≤ hi` per lane.
    fn index_within(i: Self::Index, lo: usize, hi: usize) -> Self::Mask;
    /// `max(i, 1).min(hi) − 1` per lane (a bin from a count of knots below).
    fn bin_of_count(i: Self::Index, hi: usize) -> Self::Index;
    /// `(v[i], v[i + 1])` per lane, `(NaN, NaN)` where `i + 1` is out of range.
    fn pair(v: &[Self], i: Self::Index) -> (Self, Self);
}

impl<S: Real> Vals for S {
    type Elem = S;
    type Mask = bool;
    type Index = usize;
    #[inline(always)]
    fn splat(v: S) -> S {
        v
    }
    #[inline(always)]
    fn exp(self) -> S {
        Real::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> S {
        Real::ln(self)
    }
    #[inline(always)]
    fn ln_1p(self) -> S {
        Real::ln_1p(self)
    }
    #[inline(always)]
    fn sqrt(self) -> S {
        Real::sqrt(self)
    }
    #[inline(always)]
    fn abs(self) -> S {
        Real::abs(self)
    }
    #[inline(always)]
    fn max(self, o: S) -> S {
        Real::max(self, o)
    }
    #[inline(always)]
    fn min(self, o: S) -> S {
        Real::min(self, o)
    }
    #[inline(always)]
    fn lt(self, o: S) -> bool {
        self < o
    }
    #[inline(always)]
    fn le(self, o: S) -> bool {
        self <= o
    }
    #[inline(always)]
    fn gt(self, o: S) -> bool {
        self > o
    }
    #[inline(always)]
    fn eq(self, o: S) -> bool {
        self == o
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        Real::is_nan(self)
    }
    #[inline(always)]
    fn and(a: bool, b: bool) -> bool {
        a && b
    }
    #[inline(always)]
    fn select(m: bool, a: S, b: S) -> S {
        if m {
            a
        } else {
            b
        }
    }
    #[inline(always)]
    fn count_below(p: &[S], v: S, or_equal: bool) -> usize {
        let mut n = 0;
        for &q in p {
            if q < v || (or_equal && q == v) {
                n += 1;
            }
        }
        n
    }
    #[inline(always)]
    fn index_within(i: usize, lo: usize, hi: usize) -> bool {
        lo <= i && i <= hi
    }
    #[inline(always)]
    fn bin_of_count(i: usize, hi: usize) -> usize {
        i.max(1).min(hi).saturating_sub(1)
    }
    #[inline(always)]
    fn pair(v: &[S], i: usize) -> (S, S) {
        match v.get(i..) {
            Some(&[a, b, ..]) => (a, b),
            _ => (S::NAN, S::NAN),
        }
    }
}

/// `N` scalars, one per sample of a block, operated on lane by lane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lanes<S, const N: usize>(pub [S; N]);

impl<S: Real, const N: usize> Lanes<S, N> {
    /// Lane `i` of each of `rows` at column `j` (`NaN` where a row is short).
    #[inline(always)]
    pub fn column(rows: &[&[S]; N], j: usize) -> Self {
        Lanes(core::array::from_fn(|i| {
            rows[i].get(j).copied().unwrap_or(S::NAN)
        }))
    }

    /// Column `j` of a block stored as columns (`cols[j][s]`); NaN where `cols` is short.
    #[inline(always)]
    pub fn at(cols: &[[S; N]], j: usize) -> Self {
        cols.get(j).map_or(Lanes([S::NAN; N]), |&c| Lanes(c))
    }

    /// Writes lane `i` into `rows[i][j]` (where the row is long enough).
    #[inline(always)]
    pub fn store_column(self, rows: &mut [&mut [S]; N], j: usize) {
        for (row, v) in rows.iter_mut().zip(self.0) {
            if let Some(d) = row.get_mut(j) {
                *d = v;
            }
        }
    }

    /// `f` of each lane.
    #[inline(always)]
    fn map(self, f: impl Fn(S) -> S) -> Self {
        let mut out = self.0;
        for o in out.iter_mut() {
            *o = f(*o);
        }
        Lanes(out)
    }

    /// `f` of each pair of lanes.
    #[inline(always)]
    fn zip(self, o: Self, f: impl Fn(S, S) -> S) -> Self {
        let mut out = self.0;
        for (a, &b) in out.iter_mut().zip(o.0.iter()) {
            *a = f(*a, b);
        }
        Lanes(out)
    }

    /// `f` of each pair of lanes, a truth value.
    #[inline(always)]
    fn test(self, o: Self, f: impl Fn(S, S) -> bool) -> [bool; N] {
        let mut out = [false; N];
        for ((m, &a), &b) in out.iter_mut().zip(self.0.iter()).zip(o.0.iter()) {
            *m = f(a, b);
        }
        out
    }
}

macro_rules! lane_op {
    ($tr:ident, $f:ident, $op:tt) => {
        impl<S: Real, const N: usize> $tr for Lanes<S, N> {
            type Output = Self;
            #[inline(always)]
            fn $f(self, o: Self) -> Self {
                self.zip(o, |a, b| a $op b)
            }
        }
    };
}
lane_op!(Add, add, +);
lane_op!(Sub, sub, -);
lane_op!(Mul, mul, *);
lane_op!(Div, div, /);

impl<S: Real, const N: usize> Neg for Lanes<S, N> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        self.map(|a| -a)
    }
}

impl<S: Real, const N: usize> Vals for Lanes<S, N> {
    type Elem = S;
    type Mask = [bool; N];
    /// Indices as exact small integers in `S`, so that they live in the same registers.
    type Index = Self;
    #[inline(always)]
    fn splat(v: S) -> Self {
        Lanes([v; N])
    }
    #[inline(always)]
    fn exp(self) -> Self {
        Lanes(S::exp_lanes(self.0))
    }
    #[inline(always)]
    fn ln(self) -> Self {
        Lanes(S::ln_lanes(self.0))
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        Lanes(S::ln_1p_lanes(self.0))
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        self.map(Real::sqrt)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        self.map(Real::abs)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.zip(o, Real::max)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.zip(o, Real::min)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> [bool; N] {
        self.test(o, |a, b| a < b)
    }
    #[inline(always)]
    fn le(self, o: Self) -> [bool; N] {
        self.test(o, |a, b| a <= b)
    }
    #[inline(always)]
    fn gt(self, o: Self) -> [bool; N] {
        self.test(o, |a, b| a > b)
    }
    #[inline(always)]
    fn eq(self, o: Self) -> [bool; N] {
        self.test(o, |a, b| a == b)
    }
    #[inline(always)]
    fn is_nan(self) -> [bool; N] {
        self.test(self, |a, _| a.is_nan())
    }
    #[inline(always)]
    fn and(a: [bool; N], b: [bool; N]) -> [bool; N] {
        let mut out = a;
        for (o, &m) in out.iter_mut().zip(b.iter()) {
            *o = *o && m;
        }
        out
    }
    #[inline(always)]
    fn select(m: [bool; N], a: Self, b: Self) -> Self {
        let mut out = b.0;
        for ((o, &t), &v) in out.iter_mut().zip(m.iter()).zip(a.0.iter()) {
            *o = if t { v } else { *o };
        }
        Lanes(out)
    }
    #[inline(always)]
    fn count_below(p: &[Self], v: Self, or_equal: bool) -> Self {
        float_index::count_below(p, v, or_equal)
    }
    #[inline(always)]
    fn index_within(i: Self, lo: usize, hi: usize) -> [bool; N] {
        float_index::within(i, lo, hi)
    }
    #[inline(always)]
    fn bin_of_count(i: Self, hi: usize) -> Self {
        float_index::bin_of_count(i, hi)
    }
    #[inline(always)]
    fn pair(v: &[Self], i: Self) -> (Self, Self) {
        float_index::pair(v, i)
    }
}

/// Two values side by side, each a [`Vals`]: two independent computations interleaved, so that a
/// latency-bound kernel (a running sum, a division) keeps twice the operations in flight.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pair<V>(pub V, pub V);

macro_rules! pair_op {
    ($tr:ident, $f:ident) => {
        impl<V: Vals> $tr for Pair<V> {
            type Output = Self;
            #[inline(always)]
            fn $f(self, o: Self) -> Self {
                Pair(self.0.$f(o.0), self.1.$f(o.1))
            }
        }
    };
}
pair_op!(Add, add);
pair_op!(Sub, sub);
pair_op!(Mul, mul);
pair_op!(Div, div);

impl<V: Vals> Neg for Pair<V> {
    type Output = Self;
    #[inline(always)]
    fn neg(self) -> Self {
        Pair(-self.0, -self.1)
    }
}

impl<V: Vals<Index = V>> Vals for Pair<V> {
    type Elem = V::Elem;
    type Mask = (V::Mask, V::Mask);
    type Index = Self;
    #[inline(always)]
    fn splat(v: V::Elem) -> Self {
        Pair(V::splat(v), V::splat(v))
    }
    #[inline(always)]
    fn exp(self) -> Self {
        Pair(self.0.exp(), self.1.exp())
    }
    #[inline(always)]
    fn ln(self) -> Self {
        Pair(self.0.ln(), self.1.ln())
    }
    #[inline(always)]
    fn ln_1p(self) -> Self {
        Pair(self.0.ln_1p(), self.1.ln_1p())
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        Pair(self.0.sqrt(), self.1.sqrt())
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Pair(self.0.abs(), self.1.abs())
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        Pair(self.0.max(o.0), self.1.max(o.1))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        Pair(self.0.min(o.0), self.1.min(o.1))
    }
    #[inline(always)]
    fn lt(self, o: Self) -> Self::Mask {
        (self.0.lt(o.0), self.1.lt(o.1))
    }
    #[inline(always)]
    fn le(self, o: Self) -> Self::Mask {
        (self.0.le(o.0), self.1.le(o.1))
    }
    #[inline(always)]
    fn gt(self, o: Self) -> Self::Mask {
        (self.0.gt(o.0), self.1.gt(o.1))
    }
    #[inline(always)]
    fn eq(self, o: Self) -> Self::Mask {
        (self.0.eq(o.0), self.1.eq(o.1))
    }
    #[inline(always)]
    fn is_nan(self) -> Self::Mask {
        (self.0.is_nan(), self.1.is_nan())
    }
    #[inline(always)]
    fn and(a: Self::Mask, b: Self::Mask) -> Self::Mask {
        (V::and(a.0, b.0), V::and(a.1, b.1))
    }
    #[inline(always)]
    fn select(m: Self::Mask, a: Self, b: Self) -> Self {
        Pair(V::select(m.0, a.0, b.0), V::select(m.1, a.1, b.1))
    }
    #[inline(always)]
    fn count_below(p: &[Self], v: Self, or_equal: bool) -> Self {
        float_index::count_below(p, v, or_equal)
    }
    #[inline(always)]
    fn index_within(i: Self, lo: usize, hi: usize) -> Self::Mask {
        float_index::within(i, lo, hi)
    }
    #[inline(always)]
    fn bin_of_count(i: Self, hi: usize) -> Self {
        float_index::bin_of_count(i, hi)
    }
    #[inline(always)]
    fn pair(v: &[Self], i: Self) -> (Self, Self) {
        float_index::pair(v, i)
    }
}

/// Indices held as exact small integers in the lanes' own scalar type (what [`Lanes`] and
/// [`Pair`] use), so that searching and gathering are compares and selects.
mod float_index {
    use super::Vals;
    use crate::Real;

    #[inline(always)]
    fn int<V: Vals>(n: usize) -> V {
        V::splat(V::Elem::from_f64(n as f64))
    }

    /// See [`Vals::count_below`].
    #[inline(always)]
    pub(super) fn count_below<V: Vals>(p: &[V], v: V, or_equal: bool) -> V {
        let one = V::splat(V::Elem::ONE);
        let mut n = V::splat(V::Elem::ZERO);
        for &q in p {
            let below = if or_equal { q.le(v) } else { q.lt(v) };
            n = V::select(below, n + one, n);
        }
        n
    }

    /// See [`Vals::index_within`].
    #[inline(always)]
    pub(super) fn within<V: Vals>(i: V, lo: usize, hi: usize) -> V::Mask {
        V::and(int::<V>(lo).le(i), i.le(int(hi)))
    }

    /// See [`Vals::bin_of_count`]. `hi ≥ 1` for a spline; `max(0, ·)` keeps `saturating_sub`'s
    /// floor when it is not.
    #[inline(always)]
    pub(super) fn bin_of_count<V: Vals>(i: V, hi: usize) -> V {
        let one = V::splat(V::Elem::ONE);
        (i.max(one).min(int(hi)) - one).max(V::splat(V::Elem::ZERO))
    }

    /// See [`Vals::pair`].
    #[inline(always)]
    pub(super) fn pair<V: Vals>(v: &[V], i: V) -> (V, V) {
        let nan = V::splat(V::Elem::NAN);
        let (mut a, mut b) = (nan, nan);
        let mut at = V::splat(V::Elem::ZERO);
        for w in v.windows(2) {
            if let [lo, hi] = w {
                let here = at.eq(i);
                a = V::select(here, *lo, a);
                b = V::select(here, *hi, b);
            }
            at = at + V::splat(V::Elem::ONE);
        }
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes<const N: usize>(f: impl Fn(usize) -> f32) -> Lanes<f32, N> {
        Lanes(core::array::from_fn(f))
    }

    #[test]
    fn lanes_agree_with_scalars_lane_by_lane() {
        let a: Lanes<f32, 5> = lanes(|i| [-3.5, 0.0, 1.0e-30, 88.8, f32::NAN][i]);
        let b: Lanes<f32, 5> = lanes(|i| [2.0, -0.0, 7.0, -1.0, 1.0][i]);
        let same = |l: Lanes<f32, 5>, f: &dyn Fn(f32, f32) -> f32| {
            (0..5).all(|i| {
                let (got, want) = (l.0[i], f(a.0[i], b.0[i]));
                got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
            })
        };
        assert!(same(a + b, &|x, y| x + y));
        assert!(same(a / b, &|x, y| x / y));
        assert!(same(a.max(b), &|x, y| x.max(y)));
        assert!(same(a.exp(), &|x, _| libm::expf(x)));
        assert!(same(b.ln(), &|_, y| libm::logf(y)));
        assert!(same(a.ln_1p(), &|x, _| libm::log1pf(x)));
        assert!(same(Vals::select(a.lt(b), a, b), &|x, y| if x < y {
            x
        } else {
            y
        }));
    }

    #[test]
    fn bins_and_pairs_match_the_scalar_search() {
        let knots = [-1.0f32, -0.5, -0.5, 0.25, 1.0];
        let kl: [Lanes<f32, 7>; 5] = knots.map(Vals::splat);
        let vs = [-2.0f32, -1.0, -0.5, 0.0, 0.25, 1.0, f32::NAN];
        let v: Lanes<f32, 7> = lanes(|i| vs[i]);
        for or_equal in [false, true] {
            let cnt = Lanes::count_below(&kl, v, or_equal);
            let bin = Lanes::bin_of_count(cnt, 4);
            let (a, b) = Lanes::pair(&kl, bin);
            let inside = Lanes::index_within(cnt, 1, 4);
            for (i, &x) in vs.iter().enumerate() {
                let c = <f32 as Vals>::count_below(&knots, x, or_equal);
                let k = <f32 as Vals>::bin_of_count(c, 4);
                assert_eq!(cnt.0[i], c as f32);
                assert_eq!(bin.0[i], k as f32);
                assert_eq!((a.0[i], b.0[i]), <f32 as Vals>::pair(&knots, k));
                assert_eq!(inside[i], <f32 as Vals>::index_within(c, 1, 4));
            }
        }
        let (a, b) = Lanes::pair(&kl, Vals::splat(4.0));
        assert!(a.0[0].is_nan() && b.0[0].is_nan());
    }
}
