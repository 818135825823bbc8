//! Slicing that cannot panic, for the kernels that baked models run.
//!
//! Baked code must contain no panic path (`examples/nostd-check` links with a panic handler that
//! cannot be linked otherwise), and the kernels are shared by the layers of one type, so the
//! optimizer does not see the sizes as constants and cannot remove a bounds check. The kernels
//! therefore carve their buffers with these helpers (a buffer shorter than documented gives empty
//! slices instead of a panic, and the zipped loops that follow do less) or, in the hot loops where
//! exact lengths vectorize better and a branch costs less than a select, with `let … else`
//! early returns. Either way the results for short buffers are unspecified; they are never wrong
//! for the sizes that [`crate::Bijection::scratch_len`] and the model validator guarantee.

use core::ops::AddAssign;

use crate::{Real, Weight};

/// `(s[..n], s[n..])`, or two empty slices when `s` is shorter than `n`.
#[inline(always)]
pub(crate) fn split_mut<T>(s: &mut [T], n: usize) -> (&mut [T], &mut [T]) {
    s.split_at_mut_checked(n).unwrap_or_default()
}

/// `(s[..n], s[n..])`, or two empty slices when `s` is shorter than `n`.
#[inline(always)]
pub(crate) fn split<T>(s: &[T], n: usize) -> (&[T], &[T]) {
    s.split_at_checked(n).unwrap_or_default()
}

/// `(s[..len − n], s[len − n..])`, or `None` when `s` is shorter than `n`.
#[inline(always)]
pub(crate) fn split_back_checked<T>(s: &[T], n: usize) -> Option<(&[T], &[T])> {
    s.split_at_checked(s.len().checked_sub(n)?)
}

/// `(s[..len − n], s[len − n..])`, or two empty slices when `s` is shorter than `n`.
#[inline(always)]
pub(crate) fn split_back<T>(s: &[T], n: usize) -> (&[T], &[T]) {
    split_back_checked(s, n).unwrap_or_default()
}

/// Splits the first `n` elements off `*s`, which keeps the rest; `None` (and `*s` empty) when `*s`
/// is shorter than `n`.
#[inline(always)]
pub(crate) fn take_front<'a, T>(s: &mut &'a mut [T], n: usize) -> Option<&'a mut [T]> {
    let (front, rest) = core::mem::take(s).split_at_mut_checked(n)?;
    *s = rest;
    Some(front)
}

/// `&s[..n]`, or an empty slice when `s` is shorter than `n`.
#[inline(always)]
pub(crate) fn head<T>(s: &[T], n: usize) -> &[T] {
    s.get(..n).unwrap_or_default()
}

/// `&mut s[..n]`, or an empty slice when `s` is shorter than `n`.
#[inline(always)]
pub(crate) fn head_mut<T>(s: &mut [T], n: usize) -> &mut [T] {
    s.get_mut(..n).unwrap_or_default()
}

/// `&s[start..start + len]`, or an empty slice when that range is not inside `s`.
#[inline(always)]
pub(crate) fn range<T>(s: &[T], start: usize, len: usize) -> &[T] {
    s.get(start..start.wrapping_add(len)).unwrap_or_default()
}

/// `&mut s[start..start + len]`, or an empty slice when that range is not inside `s`.
#[inline(always)]
pub(crate) fn range_mut<T>(s: &mut [T], start: usize, len: usize) -> &mut [T] {
    s.get_mut(start..start.wrapping_add(len)).unwrap_or_default()
}

/// `s.chunks_exact(n)`, empty instead of a panic when `n = 0`.
#[inline(always)]
pub(crate) fn rows<T>(s: &[T], n: usize) -> core::slice::ChunksExact<'_, T> {
    // The same pointer either way (no select between `s` and a dangling empty slice, which would
    // cost the loops over the rows their alias information).
    let len = if n == 0 { 0 } else { s.len() };
    head(s, len).chunks_exact(n.max(1))
}

/// `s.chunks_exact_mut(n)`, empty instead of a panic when `n = 0`.
#[inline(always)]
pub(crate) fn rows_mut<T>(s: &mut [T], n: usize) -> core::slice::ChunksExactMut<'_, T> {
    let len = if n == 0 { 0 } else { s.len() };
    head_mut(s, len).chunks_exact_mut(n.max(1))
}

/// Weight `k` of `w` as an `S`, or NaN when `k` is out of range.
#[inline(always)]
pub(crate) fn weight<S: Real, W: Weight>(w: &[W], k: usize) -> S {
    w.get(k).map_or(S::NAN, |v| v.get())
}

/// `s[k] += v`, or nothing when `k` is out of range.
#[inline(always)]
pub(crate) fn add_at<T: AddAssign>(s: &mut [T], k: usize, v: T) {
    if let Some(e) = s.get_mut(k) {
        *e += v;
    }
}

/// Copies `src` into `dst` element by element, as far as the shorter of the two goes
/// (`copy_from_slice` without its length assertion).
#[inline(always)]
pub(crate) fn copy<T: Copy>(dst: &mut [T], src: &[T]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_buffers_give_empty_slices_and_exact_ones_split() {
        let mut v = [1, 2, 3];
        let (a, b) = split_mut(&mut v, 2);
        assert_eq!((&*a, &*b), (&[1, 2][..], &[3][..]));
        let (a, b) = split_mut(&mut v, 4);
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(split(&v, 3), (&[1, 2, 3][..], &[][..]));
        assert_eq!(split(&v, 5), (&[][..], &[][..]));
        assert_eq!(split_back(&v, 1), (&[1, 2][..], &[3][..]));
        assert_eq!(split_back(&v, 4), (&[][..], &[][..]));
        assert_eq!(split_back_checked(&v, 3), Some((&[][..], &[1, 2, 3][..])));
        assert_eq!(split_back_checked(&v, 4), None);
        let mut rest = &mut v[..];
        assert_eq!(take_front(&mut rest, 2), Some(&mut [1, 2][..]));
        assert_eq!(rest, &mut [3]);
        assert_eq!(take_front(&mut rest, 2), None);
        assert!(rest.is_empty());
        assert_eq!(head(&v, 1), &[1]);
        assert!(head(&v, 4).is_empty());
        assert_eq!(head_mut(&mut v, 3), &mut [1, 2, 3]);
        assert!(head_mut(&mut v, 9).is_empty());
        assert_eq!(range(&v, 1, 2), &[2, 3]);
        assert!(range(&v, 2, 2).is_empty());
        assert!(range(&v, usize::MAX, 2).is_empty());
        assert_eq!(range_mut(&mut v, 0, 1), &mut [1]);
        assert!(range_mut(&mut v, 3, 1).is_empty());
        assert_eq!(rows(&v, 2).collect::<std::vec::Vec<_>>(), [&[1, 2]]);
        assert_eq!(rows(&v, 0).count(), 0);
        assert_eq!(rows_mut(&mut v, 0).count(), 0);
        assert_eq!(rows_mut(&mut v, 3).count(), 1);
        assert_eq!(weight::<f64, f32>(&[0.5, 2.0], 1), 2.0);
        assert!(weight::<f32, f32>(&[0.5], 1).is_nan());
        add_at(&mut v, 2, 10);
        add_at(&mut v, 3, 10);
        assert_eq!(v, [1, 2, 13]);
        v[2] = 3;
        let mut d = [0; 2];
        copy(&mut d, &v);
        assert_eq!(d, [1, 2]);
        let mut d = [0; 4];
        copy(&mut d, &v);
        assert_eq!(d, [1, 2, 3, 0]);
    }
}
