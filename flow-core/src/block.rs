//! Blocks of samples for the batch paths: `N` per-sample slices viewed out of one flat buffer.
//!
//! Batch evaluation runs `N` samples through each layer together so that the dense kernels
//! ([`crate::nn::dense`]) load every weight once per block; elementwise work stays per sample
//! and is the same code as the single-sample path, so each sample's result is bit for bit the
//! single-sample one.

/// Samples per block of the batch paths: 16 on x86-64 (one 512-bit vector of `f32` per hidden
/// unit in [`crate::nn::dense::dense_soa`] with AVX-512, two 256-bit ones with AVX2), 8 on
/// aarch64 (two NEON vectors), 1 elsewhere (Cortex-M: no SIMD, so a block would only spill
/// registers).
#[cfg(target_arch = "x86_64")]
pub const BLOCK: usize = 16;
/// Samples per block of the batch paths (see above).
#[cfg(target_arch = "aarch64")]
pub const BLOCK: usize = 8;
/// Samples per block of the batch paths (see above).
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const BLOCK: usize = 1;

/// `N` consecutive slices of `len` elements from the front of `buf` (empty where `buf` is short).
#[inline(always)]
pub fn views<S, const N: usize>(buf: &[S], len: usize) -> [&[S]; N] {
    let mut it = buf.chunks(len.max(1));
    core::array::from_fn(|_| it.next().and_then(|v| v.get(..len)).unwrap_or(&[]))
}

/// `N` consecutive mutable slices of `len` elements from the front of `buf`.
#[inline(always)]
pub fn views_mut<S, const N: usize>(buf: &mut [S], len: usize) -> [&mut [S]; N] {
    let mut it = buf.chunks_mut(len.max(1));
    core::array::from_fn(|_| it.next().and_then(|v| v.get_mut(..len)).unwrap_or(&mut []))
}

/// `N` mutable slices of `len` elements, the `s`-th starting at `s · stride` (a strided buffer).
#[inline(always)]
pub fn strided_mut<S, const N: usize>(buf: &mut [S], stride: usize, len: usize) -> [&mut [S]; N] {
    let mut it = buf.chunks_mut(stride.max(1));
    core::array::from_fn(|_| it.next().and_then(|v| v.get_mut(..len)).unwrap_or(&mut []))
}

/// `N` slices of `len` elements, the `s`-th starting at `s · stride`.
#[inline(always)]
pub fn strided<S, const N: usize>(buf: &[S], stride: usize, len: usize) -> [&[S]; N] {
    let mut it = buf.chunks(stride.max(1));
    core::array::from_fn(|_| it.next().and_then(|v| v.get(..len)).unwrap_or(&[]))
}

/// Shared views of mutable per-sample slices.
#[inline(always)]
pub fn shared<'a, S, const N: usize>(v: &'a [&mut [S]; N]) -> [&'a [S]; N] {
    v.each_ref().map(|s| &**s)
}

/// A value aligned to 64 bytes (a cache line, a 512-bit vector): the scratch arrays of the batch
/// methods, so that every vector of [`BLOCK`] `f32` samples in them is one aligned load.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Aligned<T>(pub T);
