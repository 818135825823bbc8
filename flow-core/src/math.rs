//! Scalar helper functions shared by the layers, each with the derivative the gradients need.

use crate::lanes::Vals;
use crate::Real;

/// softplus(x) = ln(1 + eˣ), computed as PyTorch does (`x` itself above 20).
#[inline(always)]
pub fn softplus<V: Vals>(x: V) -> V {
    V::select(x.gt(V::splat(V::Elem::from_f64(20.0))), x, x.exp().ln_1p())
}

/// The logistic sigmoid 1 / (1 + e⁻ˣ), stable for both signs (`eˣ / (1 + eˣ)` below 0); also
/// softplus'(x).
#[inline(always)]
pub fn sigmoid<V: Vals>(x: V) -> V {
    let one = V::splat(V::Elem::ONE);
    let positive = V::splat(V::Elem::ZERO).le(x);
    let e = V::select(positive, -x, x).exp();
    V::select(positive, one / (one + e), e / (one + e))
}

/// ln σ(x) = −softplus(−x).
#[inline]
pub fn log_sigmoid<S: Real>(x: S) -> S {
    -softplus(-x)
}

/// zuko's soft clip: `x / (1 + |x / bound|)`, which maps ℝ onto (−bound, bound).
#[inline(always)]
pub fn softclip<S: Vals>(x: S, bound: S) -> S {
    x / (S::splat(S::Elem::ONE) + (x / bound).abs())
}

/// d softclip(x, bound) / dx = 1 / (1 + |x / bound|)².
#[inline]
pub fn softclip_grad<S: Vals>(x: S, bound: S) -> S {
    let one = S::splat(S::Elem::ONE);
    let d = one + (x / bound).abs();
    one / (d * d)
}

/// Sum of a slice from left to right (the order every path uses, so results agree bit for bit).
#[inline]
pub fn sum<S: Real>(xs: &[S]) -> S {
    let mut acc = S::ZERO;
    for &x in xs {
        acc += x;
    }
    acc
}

/// A running sum whose every prefix is returned: the cumulative sums of spline knot positions.
///
/// PyTorch's CPU `cumsum` accumulates float32 tensors in double and rounds each prefix to float32,
/// so zuko's and nflows' float32 knots are the correctly rounded prefix sums; a plain float32
/// accumulation is up to `k` roundings away from them, which shows up as extra float32 error in
/// spline log-densities (measured on the zuko NSF fixture: mean error 1.2× zuko's own). In `f32`
/// ([`Real::COMPENSATED_PREFIX_SUMS`]) this keeps the exact error of every addition (Knuth's
/// TwoSum) in a second term and returns `hi + lo`, the same correctly rounded prefixes without
/// `f64` arithmetic (which is soft-float on FPUs without double precision, e.g. the Cortex-M4F). In
/// `f64` it is the plain left-to-right sum, as PyTorch and JAX accumulate float64.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunningSum<S> {
    hi: S,
    lo: S,
}

impl<S: Vals> RunningSum<S> {
    /// An empty sum (0).
    #[inline(always)]
    pub fn new() -> Self {
        let zero = S::splat(S::Elem::ZERO);
        RunningSum { hi: zero, lo: zero }
    }

    /// The sum so far as an unevaluated pair `hi + lo` (`lo` is 0 without compensation).
    #[inline(always)]
    pub fn hi_lo(&self) -> (S, S) {
        (self.hi, self.lo)
    }

    /// Adds `v` and returns the sum so far.
    #[inline(always)]
    pub fn add(&mut self, v: S) -> S {
        if S::Elem::COMPENSATED_PREFIX_SUMS {
            // TwoSum: hi + v = s + e exactly (no assumption on the magnitudes; rustc never
            // reassociates floating-point operations, so the error term survives optimization).
            let (s, e) = two_sum(self.hi, v);
            self.hi = s;
            self.lo = self.lo + e;
            self.hi + self.lo
        } else {
            self.hi = self.hi + v;
            self.hi
        }
    }
}

/// TwoSum: `(s, e)` with `s = a + b` rounded and `a + b = s + e` exactly, for any magnitudes
/// (rustc never reassociates floating-point operations, so the error term survives optimization).
#[inline(always)]
pub fn two_sum<S: Vals>(a: S, b: S) -> (S, S) {
    let s = a + b;
    let bv = s - a;
    (s, (a - (s - bv)) + (b - bv))
}

/// Dot product from left to right.
#[inline]
pub fn dot<S: Real>(a: &[S], b: &[S]) -> S {
    let mut acc = S::ZERO;
    for (&x, &y) in a.iter().zip(b) {
        acc += x * y;
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num_grad(f: impl Fn(f64) -> f64, x: f64) -> f64 {
        let h = 1e-6;
        (f(x + h) - f(x - h)) / (2.0 * h)
    }

    #[test]
    fn softplus_matches_definition_and_derivative() {
        for &x in &[-30.0, -3.0, -0.5, 0.0, 0.7, 5.0, 19.0] {
            let exact = (1.0f64 + f64::exp(x)).ln();
            assert!((softplus(x) - exact).abs() < 1e-12 * (1.0 + exact));
            assert!((num_grad(softplus, x) - sigmoid(x)).abs() < 1e-7);
        }
        assert_eq!(softplus(25.0f64), 25.0);
    }

    #[test]
    fn softclip_is_bounded_and_derivative_matches() {
        for &x in &[-100.0, -2.0, 0.05, 0.3, 9.0] {
            assert!(softclip(x, 3.0f64).abs() < 3.0);
            assert!((num_grad(|v| softclip(v, 3.0), x) - softclip_grad(x, 3.0)).abs() < 1e-7);
        }
    }

    #[test]
    fn running_sum_gives_correctly_rounded_prefixes_in_f32_and_plain_sums_in_f64() {
        let mut rng = crate::testing::Lcg(7);
        let (mut plain_off, mut n) = (0, 0);
        for _ in 0..2000 {
            let v: [f32; 9] = core::array::from_fn(|_| rng.uniform() as f32 * 0.3);
            let (mut rs, mut plain, mut exact) = (RunningSum::<f32>::new(), 0.0f32, 0.0f64);
            let mut rs64 = RunningSum::<f64>::new();
            let mut plain64 = 0.0f64;
            for &x in &v {
                exact += x as f64; // exact: 9 f32 values of similar size fit in 53 bits
                plain += x;
                plain64 += x as f64;
                assert_eq!(rs.add(x), exact as f32);
                assert_eq!(rs64.add(x as f64), plain64);
                plain_off += usize::from(plain != exact as f32);
                n += 1;
            }
        }
        // The compensation matters: the plain f32 sum is off on a good share of the prefixes.
        assert!(plain_off * 10 > n, "{plain_off} of {n}");
    }

    #[test]
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(sigmoid(-800.0f64), 0.0);
        assert_eq!(sigmoid(800.0f64), 1.0);
        assert!((log_sigmoid(-50.0f64) + 50.0).abs() < 1e-12);
    }
}
