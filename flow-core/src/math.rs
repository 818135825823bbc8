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
    fn sigmoid_is_stable_at_extremes() {
        assert_eq!(sigmoid(-800.0f64), 0.0);
        assert_eq!(sigmoid(800.0f64), 1.0);
        assert!((log_sigmoid(-50.0f64) + 50.0).abs() < 1e-12);
    }
}
