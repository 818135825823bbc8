//! What depends on the processor, and the only module with `unsafe`: the fused multiply-add of
//! every dot product, and on x86-64 the choice of dense kernels at run time.
//!
//! **The multiply-add is fused** (`a · b + c` rounded once, IEEE 754 `fusedMultiplyAdd`) on every
//! target, so every processor computes the same bits: one instruction on x86-64 with FMA (every
//! x86-64 CPU since 2013) and aarch64, and on the Cortex-M4F/M7 an assembly dot product of
//! `vfma.f32` for `f32` (`arm.rs`); libm's exact software routine elsewhere (slower, the same
//! result).
//!
//! **Kernels.** On x86-64 the dense kernels are compiled three times: for the baseline (SSE2,
//! software FMA), for AVX2 + FMA, and for AVX-512. [`kernel`] detects the CPU once (`cpuid`, no
//! `std` needed) and every dense layer runs the best one. All three compute each output in the
//! same order with the same operations, so the choice changes the speed, never the bits.

#[cfg(flow_vfma)]
pub(crate) mod arm;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;

/// `a · b + c` with one rounding, in `f32` (libm: the instruction where libm detects it, x86-64
/// with FMA and aarch64, exact software elsewhere).
#[inline(always)]
pub fn fmaf(a: f32, b: f32, c: f32) -> f32 {
    libm::fmaf(a, b, c)
}

/// `a · b + c` with one rounding, in `f64`.
#[inline(always)]
pub fn fma(a: f64, b: f64, c: f64) -> f64 {
    libm::fma(a, b, c)
}

/// Runs `task` compiled for the vector extensions the dense kernels use ([`kernel`]: AVX-512 or
/// AVX2 on x86-64; the baseline elsewhere), so that the lane loops of [`crate::lanes`] inside it
/// vectorize. The same bits on every choice: the extensions change the width of each operation,
/// never the operation (rustc never contracts a multiply and an add into an FMA).
#[inline(always)]
pub fn vectorized<T: crate::lanes::LaneTask>(task: T) -> T::Output {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::vectorized(task)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        task.run()
    }
}

/// Which compilation of the dense kernels runs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// The baseline of the target (on x86-64: SSE2, the multiply-add in software).
    Portable,
    /// x86-64 with AVX2 and FMA.
    Avx2,
    /// x86-64 with AVX-512 (F, VL) and FMA.
    Avx512,
}

impl Kernel {
    /// A short name for reports: `portable`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }
}

/// The kernels that run: the best the CPU supports, unless [`limit_kernel`] lowered it.
#[inline]
pub fn kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::kernel()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        Kernel::Portable
    }
}

/// Runs at most `k` from now on, in the whole process (benchmarks and tests compare kernels;
/// results are the same bits whichever runs). Returns the kernel that will run.
pub fn limit_kernel(k: Kernel) -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::limit_kernel(k)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = k;
        Kernel::Portable
    }
}

/// What the kernels need of a scalar type beyond [`crate::Real`] (sealed: `f32` and `f64`).
pub trait Native: Copy {
    /// The slice as `f32`, if the type is `f32` (the Cortex-M4F's assembly kernel takes it).
    fn f32s(s: &[Self]) -> Option<&[f32]>;
    /// The mutable slice as `f32`, if the type is `f32`.
    fn f32s_mut(s: &mut [Self]) -> Option<&mut [f32]>;
    /// `self · b + c` with one rounding through the FMA instruction.
    ///
    /// # Safety
    /// Only where the CPU has FMA: called from code compiled for AVX2 or AVX-512 only.
    #[cfg(target_arch = "x86_64")]
    #[doc(hidden)]
    unsafe fn fma_native(self, b: Self, c: Self) -> Self;
}

impl Native for f32 {
    #[inline(always)]
    fn f32s(s: &[f32]) -> Option<&[f32]> {
        Some(s)
    }
    #[inline(always)]
    fn f32s_mut(s: &mut [f32]) -> Option<&mut [f32]> {
        Some(s)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn fma_native(self, b: f32, c: f32) -> f32 {
        // SAFETY: the caller guarantees FMA.
        unsafe { x86_64::fmaf_native(self, b, c) }
    }
}

impl Native for f64 {
    #[inline(always)]
    fn f32s(_: &[f64]) -> Option<&[f32]> {
        None
    }
    #[inline(always)]
    fn f32s_mut(_: &mut [f64]) -> Option<&mut [f32]> {
        None
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn fma_native(self, b: f64, c: f64) -> f64 {
        // SAFETY: the caller guarantees FMA.
        unsafe { x86_64::fma_native(self, b, c) }
    }
}
