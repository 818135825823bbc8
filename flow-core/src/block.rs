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

// The views are plain loops, not `array::from_fn` over a chunk iterator: with N = 16 the compiler
// kept that closure out of line, a few percent of a batch evaluation.

/// `N` consecutive slices of `len` elements from the front of `buf` (empty where `buf` is short).
#[inline(always)]
pub fn views<S, const N: usize>(buf: &[S], len: usize) -> [&[S]; N] {
    strided(buf, len, len)
}

/// `N` consecutive mutable slices of `len` elements from the front of `buf`.
#[inline(always)]
pub fn views_mut<S, const N: usize>(buf: &mut [S], len: usize) -> [&mut [S]; N] {
    strided_mut(buf, len, len)
}

/// `N` mutable slices of `len` elements, the `s`-th starting at `s · stride` (a strided buffer;
/// empty where `buf` is short).
#[inline(always)]
pub fn strided_mut<S, const N: usize>(buf: &mut [S], stride: usize, len: usize) -> [&mut [S]; N] {
    let mut out: [&mut [S]; N] = core::array::from_fn(|_| <&mut [S]>::default());
    let mut rest = buf;
    for o in out.iter_mut() {
        let step = stride.max(1).min(rest.len());
        let Some((chunk, tail)) = core::mem::take(&mut rest).split_at_mut_checked(step) else {
            break;
        };
        if let Some(v) = chunk.get_mut(..len) {
            *o = v;
        }
        rest = tail;
    }
    out
}

/// `N` slices of `len` elements, the `s`-th starting at `s · stride` (empty where `buf` is
/// short).
#[inline(always)]
pub fn strided<S, const N: usize>(buf: &[S], stride: usize, len: usize) -> [&[S]; N] {
    let mut out: [&[S]; N] = [&[]; N];
    let mut rest = buf;
    for o in out.iter_mut() {
        let step = stride.max(1).min(rest.len());
        let Some((chunk, tail)) = rest.split_at_checked(step) else {
            break;
        };
        if let Some(v) = chunk.get(..len) {
            *o = v;
        }
        rest = tail;
    }
    out
}

/// Shared views of mutable per-sample slices.
#[inline(always)]
pub fn shared<'a, S, const N: usize>(v: &'a [&mut [S]; N]) -> [&'a [S]; N] {
    v.each_ref().map(|s| &**s)
}

/// A value aligned to 64 bytes (a cache line, a 512-bit vector) on x86-64 and aarch64, with its own
/// alignment elsewhere (no padding in a microcontroller's flash or stack): the baked weights, so
/// that rows of a multiple of 8 `f32` start on a 32-byte boundary (a split load costs twice), and
/// the scratch arrays of the batch methods, so that every vector of [`BLOCK`] `f32` samples in them
/// is one aligned load.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(any(target_arch = "x86_64", target_arch = "aarch64"), repr(C, align(64)))]
#[cfg_attr(not(any(target_arch = "x86_64", target_arch = "aarch64")), repr(C))]
pub struct Aligned<T>(pub T);

#[cfg(test)]
mod tests {
    use super::*;

    /// The views are the chunks of `stride` (at least 1) cut to `len`, empty past the end or where
    /// a chunk is short: the definition through `chunks`, on every small shape.
    #[test]
    fn views_are_strided_chunks_cut_to_length() {
        let data: [u32; 20] = core::array::from_fn(|i| i as u32);
        for n in 0..=20 {
            for stride in 0..6 {
                for len in 0..6 {
                    let buf = &data[..n];
                    let mut it = buf.chunks(stride.max(1));
                    let want: [&[u32]; 4] =
                        core::array::from_fn(|_| it.next().and_then(|v| v.get(..len)).unwrap_or(&[]));
                    assert_eq!(
                        strided::<u32, 4>(buf, stride, len),
                        want,
                        "n={n} stride={stride} len={len}"
                    );
                    let mut copy = data;
                    let got = strided_mut::<u32, 4>(&mut copy[..n], stride, len);
                    assert_eq!(
                        got.map(|v| v.to_vec()),
                        want.map(|v| v.to_vec()),
                        "mut n={n} stride={stride}"
                    );
                }
                let mut it = buf_chunks(&data[..n], stride);
                let want: [&[u32]; 4] = core::array::from_fn(|_| it.next().unwrap_or(&[]));
                assert_eq!(
                    views::<u32, 4>(&data[..n], stride),
                    want,
                    "views n={n} len={stride}"
                );
            }
        }
    }

    /// `views(buf, len)` as chunks of `len`: whole chunks only.
    fn buf_chunks(buf: &[u32], len: usize) -> impl Iterator<Item = &[u32]> {
        buf.chunks(len.max(1)).map(move |v| v.get(..len).unwrap_or(&[]))
    }
}
