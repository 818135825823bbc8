//! The scalar type of every kernel (`f32` or `f64`) and the type weights are stored in.
//!
//! Math functions go through [`libm`] by default, so the host and a Cortex-M compute the same bits
//! (libm is the same software everywhere and rustc does not contract `a * b + c` into an FMA).
//! With the `micromath` feature, `f32`'s `exp` and `exp_m1` use micromath's approximation instead
//! (measured worst relative error 2.4e-3 on [−20, 20], `tests/micromath.rs`); `f64` always uses libm.
//! micromath's `ln` (0.12 absolute error measured on [1e-6, 1e6]) and `sqrt` (6% relative) are too
//! coarse for log-densities, so `ln`, `ln_1p`, `sqrt` and `tanh` stay on libm even with the feature.

use core::fmt::Debug;
use core::ops::{Add, AddAssign, Div, Mul, MulAssign, Neg, Sub, SubAssign};

/// A floating-point scalar: `f32` (firmware) or `f64` (reference and training).
pub trait Real:
    Copy
    + Debug
    + Default
    + PartialOrd
    + PartialEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + Send
    + Sync
    + 'static
    + crate::arch::Native
{
    /// 0.
    const ZERO: Self;
    /// 1.
    const ONE: Self;
    /// ½ ln 2π, the per-dimension constant of the standard normal.
    const HALF_LN_2PI: Self;
    /// Machine epsilon.
    const EPSILON: Self;
    /// The largest finite value.
    const MAX: Self;
    /// Not a number.
    const NAN: Self;
    /// +∞.
    const INFINITY: Self;
    /// Whether [`crate::math::RunningSum`] carries the rounding error of each addition: `true` for
    /// `f32` (PyTorch's CPU `cumsum` accumulates float32 tensors in double, and the peers' float32
    /// knot positions are those correctly rounded prefix sums), `false` for `f64` (accumulated
    /// plainly, as PyTorch and JAX do in float64).
    const COMPENSATED_PREFIX_SUMS: bool;
    /// Converts from `f64` (rounds to nearest for `f32`).
    fn from_f64(v: f64) -> Self;
    /// Converts from `f32` (exact).
    fn from_f32(v: f32) -> Self;
    /// Widens to `f64` (exact).
    fn to_f64(self) -> f64;
    /// eˣ.
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// ln(1 + x), accurate near 0.
    fn ln_1p(self) -> Self;
    /// eˣ − 1, accurate near 0.
    fn exp_m1(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Complementary error function `erfc(x) = 1 − erf(x)` (libm's, also with `micromath`).
    fn erfc(self) -> Self;
    /// |x|.
    fn abs(self) -> Self;
    /// True unless NaN or ±∞.
    fn is_finite(self) -> bool;
    /// True for NaN.
    fn is_nan(self) -> bool;
    /// The larger of two values (NaN-ignoring, as `f32::max`).
    fn max(self, other: Self) -> Self;
    /// The smaller of two values (NaN-ignoring, as `f32::min`).
    fn min(self, other: Self) -> Self;
    /// `self · b + c` rounded once (fused), the multiply-add of every dot product: one
    /// instruction where the processor has it, libm's exact routine elsewhere, the same bits on
    /// every target (see [`crate::arch`]).
    fn fmadd(self, b: Self, c: Self) -> Self;
    /// [`Real::exp`] of each lane, the same bits, written so that the loop vectorizes where the
    /// routine allows (for `f32`, libm's routine without branches: [`crate::lanes::libm_f32`]).
    fn exp_lanes<const N: usize>(x: [Self; N]) -> [Self; N];
    /// [`Real::ln`] of each lane, the same bits (see [`Real::exp_lanes`]).
    fn ln_lanes<const N: usize>(x: [Self; N]) -> [Self; N];
    /// [`Real::ln_1p`] of each lane, the same bits (see [`Real::exp_lanes`]).
    fn ln_1p_lanes<const N: usize>(x: [Self; N]) -> [Self; N];
    /// x · 2ⁿ-free sign: −1, 0 or +1 (0 for ±0, NaN for NaN).
    fn signum0(self) -> Self {
        if self > Self::ZERO {
            Self::ONE
        } else if self < Self::ZERO {
            -Self::ONE
        } else {
            self
        }
    }
}

macro_rules! impl_real {
    ($t:ty, $bits:expr, $compensated:expr, $exp:path, $ln:path, $ln1p:path, $expm1:path, $sqrt:path, $tanh:path, $erfc:path, $half_ln_2pi:expr, $fma:path, $exp_l:path, $ln_l:path, $ln1p_l:path) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const HALF_LN_2PI: Self = $half_ln_2pi;
            const EPSILON: Self = <$t>::EPSILON;
            const MAX: Self = <$t>::MAX;
            const NAN: Self = <$t>::NAN;
            const INFINITY: Self = <$t>::INFINITY;
            const COMPENSATED_PREFIX_SUMS: bool = $compensated;
            #[inline(always)]
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_f32(v: f32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $ln1p(self)
            }
            #[inline(always)]
            fn exp_m1(self) -> Self {
                $expm1(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn erfc(self) -> Self {
                $erfc(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::from_bits(self.to_bits() & !(1 << ($bits - 1)))
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                self.abs() < <$t>::INFINITY
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                self != self
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                if self.is_nan() || self < other {
                    other
                } else {
                    self
                }
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                if self.is_nan() || self > other {
                    other
                } else {
                    self
                }
            }
            #[inline(always)]
            fn fmadd(self, b: Self, c: Self) -> Self {
                $fma(self, b, c)
            }
            #[inline(always)]
            fn exp_lanes<const N: usize>(mut x: [Self; N]) -> [Self; N] {
                for v in x.iter_mut() {
                    *v = $exp_l(*v);
                }
                x
            }
            #[inline(always)]
            fn ln_lanes<const N: usize>(mut x: [Self; N]) -> [Self; N] {
                for v in x.iter_mut() {
                    *v = $ln_l(*v);
                }
                x
            }
            #[inline(always)]
            fn ln_1p_lanes<const N: usize>(mut x: [Self; N]) -> [Self; N] {
                for v in x.iter_mut() {
                    *v = $ln1p_l(*v);
                }
                x
            }
        }
    };
}

#[cfg(not(feature = "micromath"))]
impl_real!(
    f32,
    32,
    true,
    libm::expf,
    libm::logf,
    libm::log1pf,
    libm::expm1f,
    libm::sqrtf,
    libm::tanhf,
    libm::erfcf,
    0.918_938_5,
    crate::arch::fmaf,
    crate::lanes::libm_f32::expf,
    crate::lanes::libm_f32::logf,
    crate::lanes::libm_f32::log1pf
);

#[cfg(feature = "micromath")]
mod mm {
    //! micromath-backed `f32` functions (approximate; see module docs).
    use micromath::F32;
    pub fn exp(x: f32) -> f32 {
        F32(x).exp().0
    }
    pub fn exp_m1(x: f32) -> f32 {
        F32(x).exp().0 - 1.0
    }
}

#[cfg(feature = "micromath")]
impl_real!(
    f32,
    32,
    true,
    mm::exp,
    libm::logf,
    libm::log1pf,
    mm::exp_m1,
    libm::sqrtf,
    libm::tanhf,
    libm::erfcf,
    0.918_938_5,
    crate::arch::fmaf,
    mm::exp,
    crate::lanes::libm_f32::logf,
    crate::lanes::libm_f32::log1pf
);

impl_real!(
    f64,
    64,
    false,
    libm::exp,
    libm::log,
    libm::log1p,
    libm::expm1,
    libm::sqrt,
    libm::tanh,
    libm::erfc,
    0.918_938_533_204_672_8,
    crate::arch::fma,
    libm::exp,
    libm::log,
    libm::log1p
);

/// A stored weight: `f32` (model files of format version 1 and their baked code) or `f64`
/// (version-2 files and their baked code, and while training).
pub trait Weight: Copy + Debug + Send + Sync + 'static {
    /// The weight in the kernel's scalar type: exact, except an `f64` weight read as `f32`, which
    /// rounds to nearest.
    fn get<S: Real>(self) -> S;
    /// The slice as `f32` weights, if they are (the Cortex-M4F's assembly kernel takes them).
    fn f32s(s: &[Self]) -> Option<&[f32]>;
}

impl Weight for f32 {
    #[inline(always)]
    fn get<S: Real>(self) -> S {
        S::from_f32(self)
    }
    #[inline(always)]
    fn f32s(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
}

impl Weight for f64 {
    #[inline(always)]
    fn get<S: Real>(self) -> S {
        S::from_f64(self)
    }
    #[inline(always)]
    fn f32s(_: &[f64]) -> Option<&[f32]> {
        None
    }
}
