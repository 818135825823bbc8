//! Scalar helper functions shared by the layers, each with the derivative the gradients need.

use crate::Real;

/// softplus(x) = ln(1 + eˣ), computed as PyTorch does (`x` itself above 20).
#[inline]
pub fn softplus<S: Real>(x: S) -> S {
    if x > S::from_f64(20.0) {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The logistic sigmoid 1 / (1 + e⁻ˣ), stable for both signs; also softplus'(x).
#[inline]
pub fn sigmoid<S: Real>(x: S) -> S {
    if x >= S::ZERO {
        S::ONE / (S::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (S::ONE + e)
    }
}

/// ln σ(x) = −softplus(−x).
#[inline]
pub fn log_sigmoid<S: Real>(x: S) -> S {
    -softplus(-x)
}

/// zuko's soft clip: `x / (1 + |x / bound|)`, which maps ℝ onto (−bound, bound).
#[inline]
pub fn softclip<S: Real>(x: S, bound: S) -> S {
    x / (S::ONE + (x / bound).abs())
}

/// d softclip(x, bound) / dx = 1 / (1 + |x / bound|)².
#[inline]
pub fn softclip_grad<S: Real>(x: S, bound: S) -> S {
    let d = S::ONE + (x / bound).abs();
    S::ONE / (d * d)
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

impl<S: Real> RunningSum<S> {
    /// An empty sum (0).
    #[inline]
    pub fn new() -> Self {
        RunningSum {
            hi: S::ZERO,
            lo: S::ZERO,
        }
    }

    /// The sum so far as an unevaluated pair `hi + lo` (`lo` is 0 without compensation).
    #[inline]
    pub fn hi_lo(&self) -> (S, S) {
        (self.hi, self.lo)
    }

    /// Adds `v` and returns the sum so far.
    #[inline]
    pub fn add(&mut self, v: S) -> S {
        if S::COMPENSATED_PREFIX_SUMS {
            // TwoSum: hi + v = s + e exactly (no assumption on the magnitudes; rustc never
            // reassociates floating-point operations, so the error term survives optimization).
            let (s, e) = two_sum(self.hi, v);
            self.hi = s;
            self.lo += e;
            self.hi + self.lo
        } else {
            self.hi += v;
            self.hi
        }
    }
}

/// TwoSum: `(s, e)` with `s = a + b` rounded and `a + b = s + e` exactly, for any magnitudes
/// (rustc never reassociates floating-point operations, so the error term survives optimization).
#[inline]
pub fn two_sum<S: Real>(a: S, b: S) -> (S, S) {
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
