//! x86-64: CPU detection and the AVX2 / AVX-512 compilations of the dense kernels.
//!
//! Each compilation is the portable kernel of [`crate::nn::dense`] instantiated with [`Fused`]
//! (the FMA instruction instead of libm's routine) inside a function compiled for the feature
//! set, so the compiler vectorizes the same operations in the same order with wider registers.

use crate::cotangent::Grads;
use crate::lanes::LaneTask;
use core::arch::x86_64::{__cpuid, __cpuid_count, _mm_cvtsd_f64, _mm_cvtss_f32, _mm_fmadd_sd, _mm_fmadd_ss};
use core::arch::x86_64::{_mm_set_sd, _mm_set_ss, _xgetbv};
use core::sync::atomic::{AtomicU8, Ordering};

use super::Kernel;
use crate::nn::dense::{self, MulAdd};
use crate::nn::mlp::{Activation, Mlp};
use crate::{Real, Weight};

/// `a · b + c` rounded once, by the FMA instruction.
///
/// # Safety
/// Only on a CPU with FMA.
#[inline(always)]
pub(crate) unsafe fn fmaf_native(a: f32, b: f32, c: f32) -> f32 {
    // SAFETY: the caller guarantees FMA; the intrinsics only touch registers.
    unsafe { _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c))) }
}

/// `a · b + c` rounded once, by the FMA instruction.
///
/// # Safety
/// Only on a CPU with FMA.
#[inline(always)]
pub(crate) unsafe fn fma_native(a: f64, b: f64, c: f64) -> f64 {
    // SAFETY: as for `fmaf_native`.
    unsafe { _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(a), _mm_set_sd(b), _mm_set_sd(c))) }
}

/// The FMA instruction as the kernels' multiply-add. A value exists only inside the functions
/// below that are compiled for AVX2 or AVX-512 (its field is private to this module), and those
/// run only after [`detect`] found the features.
#[derive(Clone, Copy)]
pub(crate) struct Fused(());

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add<S: Real>(self, a: S, b: S, c: S) -> S {
        // SAFETY: a `Fused` exists only in code that runs on a CPU with FMA (see the type).
        unsafe { a.fma_native(b, c) }
    }
}

/// What the CPU and the OS support (the OS must save the wide registers: XCR0).
fn detect() -> Kernel {
    // SAFETY: `cpuid` exists on every x86-64 processor and only reads identification registers.
    #[allow(unused_unsafe)]
    let (max, l1) = unsafe { (__cpuid(0).eax, __cpuid(1)) };
    let (fma, osxsave, avx) = (
        l1.ecx >> 12 & 1 == 1,
        l1.ecx >> 27 & 1 == 1,
        l1.ecx >> 28 & 1 == 1,
    );
    if !(fma && osxsave && avx) || max < 7 {
        return Kernel::Portable;
    }
    // SAFETY: OSXSAVE is set, so the OS enabled `xgetbv`; leaf 7 exists (max ≥ 7).
    #[allow(unused_unsafe)]
    let (xcr0, l7) = unsafe { (xcr0(), __cpuid_count(7, 0)) };
    let (avx2, avx512f, avx512vl) = (l7.ebx >> 5 & 1 == 1, l7.ebx >> 16 & 1 == 1, l7.ebx >> 31 & 1 == 1);
    // XMM and YMM state (bits 1, 2); opmask, upper ZMM and ZMM16-31 state (bits 5, 6, 7).
    if !avx2 || xcr0 & 0b110 != 0b110 {
        return Kernel::Portable;
    }
    if avx512f && avx512vl && xcr0 & 0b1110_0000 == 0b1110_0000 {
        Kernel::Avx512
    } else {
        Kernel::Avx2
    }
}

/// XCR0, the register states the OS saves.
///
/// # Safety
/// Only when cpuid reports OSXSAVE (otherwise `xgetbv` faults).
#[target_feature(enable = "xsave")]
unsafe fn xcr0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { _xgetbv(0) }
}

/// 0 until detected, then 1 + the detected kernel.
static DETECTED: AtomicU8 = AtomicU8::new(0);
/// 1 + the highest kernel allowed to run ([`limit_kernel`]).
static LIMIT: AtomicU8 = AtomicU8::new(3);

fn from_code(v: u8) -> Kernel {
    match v {
        3 => Kernel::Avx512,
        2 => Kernel::Avx2,
        _ => Kernel::Portable,
    }
}

fn code(k: Kernel) -> u8 {
    match k {
        Kernel::Portable => 1,
        Kernel::Avx2 => 2,
        Kernel::Avx512 => 3,
    }
}

/// The detected kernel (detection runs once).
#[inline]
fn detected() -> Kernel {
    match DETECTED.load(Ordering::Relaxed) {
        0 => {
            let k = detect();
            DETECTED.store(code(k), Ordering::Relaxed);
            k
        }
        v => from_code(v),
    }
}

/// See [`super::kernel`].
#[inline]
pub(crate) fn kernel() -> Kernel {
    detected().min(from_code(LIMIT.load(Ordering::Relaxed)))
}

/// See [`super::limit_kernel`].
pub(crate) fn limit_kernel(k: Kernel) -> Kernel {
    LIMIT.store(code(k), Ordering::Relaxed);
    kernel()
}

/// `task` in code compiled for AVX-512 (its `run` is always inlined).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn run_avx512<T: LaneTask>(task: T) -> T::Output {
    task.run()
}

/// `task` in code compiled for AVX2.
#[target_feature(enable = "avx2,fma")]
fn run_avx2<T: LaneTask>(task: T) -> T::Output {
    task.run()
}

/// See [`super::vectorized`].
#[inline(always)]
pub(crate) fn vectorized<T: LaneTask>(task: T) -> T::Output {
    match kernel() {
        // SAFETY: `kernel()` is `Avx512` only when `cpuid`/`xgetbv` report AVX-512 F and VL, AVX2
        // and FMA with the OS saving their registers (`detect`), and `Avx2` only with AVX2 and FMA.
        Kernel::Avx512 => unsafe { run_avx512(task) },
        // SAFETY: as above.
        Kernel::Avx2 => unsafe { run_avx2(task) },
        Kernel::Portable => task.run(),
    }
}

/// Rows per step of the single-sample kernel: four independent accumulator chains.
const ROWS: usize = dense::ROWS;

/// The single-sample dense layer (then ReLU when `RELU`) in code compiled for FMA: the
/// intrinsics kernel for `f32`, with the ReLU fused into its stores, the generic kernel with the
/// FMA instruction otherwise.
#[inline(always)]
fn dense_one_fused<S: Real, W: Weight, const RELU: bool>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    if let (Some(w), Some(b), Some(x), Some(c)) = (W::f32s(w), W::f32s(b), S::f32s(x), S::f32s(c)) {
        if let Some(out) = S::f32s_mut(out) {
            f32x8::dense::<RELU>(w, b, x, c, out);
            return;
        }
    }
    dense::dense_with::<S, W, Fused, ROWS, 1>(Fused(()), w, b, [x], [c], &mut [&mut *out]);
    if RELU {
        Activation::Relu.apply_all(out);
    }
}

#[target_feature(enable = "avx2,fma")]
fn dense_one_avx2<S: Real, W: Weight, const RELU: bool>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    dense_one_fused::<S, W, RELU>(w, b, x, c, out);
}

#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn dense_one_avx512<S: Real, W: Weight, const RELU: bool>(w: &[W], b: &[W], x: &[S], c: &[S], out: &mut [S]) {
    dense_one_fused::<S, W, RELU>(w, b, x, c, out);
}

/// `(n_in, m)` of a dense layer: its row width and the rows that the weights (`w_len`), biases
/// and outputs all have; `None` for rows of width 0.
#[inline(always)]
fn rows(w_len: usize, b_len: usize, out_len: usize, n_in: usize) -> Option<(usize, usize)> {
    (n_in > 0).then(|| (n_in, (w_len / n_in).min(b_len).min(out_len)))
}

mod f32x8;
mod soa;
use soa::{soa16, soa8};

/// [`dense::dense_one`] compiled for `k` (at most the detected kernel); `false` for
/// [`Kernel::Portable`], which the caller runs itself.
#[inline]
pub(crate) fn dense_one<S: Real, W: Weight, const RELU: bool>(
    k: Kernel,
    w: &[W],
    b: &[W],
    x: &[S],
    c: &[S],
    out: &mut [S],
) -> bool {
    match k.min(detected()) {
        // SAFETY: `detected()` returns Avx512 only when cpuid reports AVX-512F/VL, AVX2 and FMA
        // and XCR0 shows the OS saves their registers.
        Kernel::Avx512 => unsafe { dense_one_avx512::<S, W, RELU>(w, b, x, c, out) },
        // SAFETY: likewise for AVX2 and FMA.
        Kernel::Avx2 => unsafe { dense_one_avx2::<S, W, RELU>(w, b, x, c, out) },
        Kernel::Portable => return false,
    }
    true
}

/// The mutable arguments of [`Mlp::backward_block`]: `g_x`, `g_c`, `g_params`, `scratch`.
type BackwardOut<'a, S, const N: usize> = (
    [&'a mut [S]; N],
    [&'a mut [S]; N],
    Option<&'a mut [S]>,
    &'a mut [S],
);

/// [`Mlp::backward_block_impl`] compiled for AVX2. Its sums are separate multiplies and adds
/// (Rust never contracts them into FMAs), so the wider registers give the portable bits.
#[target_feature(enable = "avx2,fma")]
fn mlp_backward_block_avx2<S: Real, W: Weight, const N: usize>(
    mlp: &Mlp<'_, W>,
    [x, c, g_out]: [[&[S]; N]; 3],
    cache: &[S],
    (g_x, g_c, g_params, scratch): BackwardOut<'_, S, N>,
) {
    mlp.backward_block_impl(x, c, cache, g_out, Grads::new(g_x, g_c, g_params), scratch);
}

/// [`Mlp::backward_block_impl`] compiled for AVX-512 (see [`mlp_backward_block_avx2`]).
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn mlp_backward_block_avx512<S: Real, W: Weight, const N: usize>(
    mlp: &Mlp<'_, W>,
    [x, c, g_out]: [[&[S]; N]; 3],
    cache: &[S],
    (g_x, g_c, g_params, scratch): BackwardOut<'_, S, N>,
) {
    mlp.backward_block_impl(x, c, cache, g_out, Grads::new(g_x, g_c, g_params), scratch);
}

/// [`Mlp::backward_block`] compiled for `k` (at most the detected kernel): `None` when it ran,
/// the mutable arguments back for [`Kernel::Portable`], which the caller runs itself.
#[inline]
pub(crate) fn mlp_backward_block<'a, S: Real, W: Weight, const N: usize>(
    k: Kernel,
    mlp: &Mlp<'_, W>,
    inputs: [[&[S]; N]; 3],
    cache: &[S],
    out: BackwardOut<'a, S, N>,
) -> Option<BackwardOut<'a, S, N>> {
    match k.min(detected()) {
        // SAFETY: as in `dense_one`.
        Kernel::Avx512 => unsafe { mlp_backward_block_avx512(mlp, inputs, cache, out) },
        // SAFETY: as in `dense_one`.
        Kernel::Avx2 => unsafe { mlp_backward_block_avx2(mlp, inputs, cache, out) },
        Kernel::Portable => return Some(out),
    }
    None
}

/// A block of `f32` samples through the intrinsics kernels: [`soa16`] on each 16 samples when
/// `WIDE` (AVX-512), else [`soa8`] on each 8, if the types are `f32` and the block is a multiple
/// of the vector; `false` otherwise.
#[inline(always)]
fn dense_soa_f32<S: Real, W: Weight, const NB: usize, const R: usize, const WIDE: bool, const RELU: bool>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) -> bool {
    let lanes = if WIDE { 16 } else { 8 };
    if !NB.is_multiple_of(lanes) {
        return false;
    }
    let (Some(w), Some(b)) = (W::f32s(w), W::f32s(b)) else {
        return false;
    };
    let (Some(x), Some(c)) = (S::f32s(x.as_flattened()), S::f32s(c.as_flattened())) else {
        return false;
    };
    let Some(out) = S::f32s_mut(out.as_flattened_mut()) else {
        return false;
    };
    let (x, c, out) = (
        x.as_chunks::<NB>().0,
        c.as_chunks::<NB>().0,
        out.as_chunks_mut::<NB>().0,
    );
    let mut h = 0;
    while h < NB {
        if WIDE {
            soa16::dense::<R, NB, RELU>(w, b, x, c, out, h);
        } else {
            soa8::dense::<R, NB, RELU>(w, b, x, c, out, h);
        }
        h += lanes;
    }
    true
}

#[target_feature(enable = "avx2,fma")]
fn dense_soa_avx2<S: Real, W: Weight, const NB: usize, const RELU: bool>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    if !dense_soa_f32::<S, W, NB, 1, false, RELU>(w, b, x, c, out) {
        dense::dense_soa_with::<S, W, Fused, 1, NB>(Fused(()), w, b, x, c, out);
        if RELU {
            Activation::Relu.apply_all(out.as_flattened_mut());
        }
    }
}

/// Sixteen samples per 512-bit register, three rows per step with AVX-512's 32 registers: 24
/// accumulators, each loaded input vector feeds three multiply-adds.
#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
fn dense_soa_avx512<S: Real, W: Weight, const NB: usize, const RELU: bool>(
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) {
    if !dense_soa_f32::<S, W, NB, 3, true, RELU>(w, b, x, c, out) {
        dense::dense_soa_with::<S, W, Fused, 2, NB>(Fused(()), w, b, x, c, out);
        if RELU {
            Activation::Relu.apply_all(out.as_flattened_mut());
        }
    }
}

/// [`dense::dense_soa`] (then ReLU on every output when `RELU`, fused into the store) compiled
/// for `k` (at most the detected kernel); `false` for [`Kernel::Portable`].
#[inline]
pub(crate) fn dense_soa<S: Real, W: Weight, const NB: usize, const RELU: bool>(
    k: Kernel,
    w: &[W],
    b: &[W],
    x: &[[S; NB]],
    c: &[[S; NB]],
    out: &mut [[S; NB]],
) -> bool {
    match k.min(detected()) {
        // SAFETY: as in `dense_one`.
        Kernel::Avx512 => unsafe { dense_soa_avx512::<S, W, NB, RELU>(w, b, x, c, out) },
        // SAFETY: as in `dense_one`.
        Kernel::Avx2 => unsafe { dense_soa_avx2::<S, W, NB, RELU>(w, b, x, c, out) },
        Kernel::Portable => return false,
    }
    true
}

#[cfg(test)]
mod tests;
