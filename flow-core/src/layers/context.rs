//! Context standardization: the layers of a conditional model see `c' = (c − m) / s`, so the model
//! takes its context in raw units.
//!
//! `m` and `s` are the mean and standard deviation of the training context, stored in the model
//! as its first layer's weights `[m (C), s (C)]` ([`crate::model::LayerDesc::ContextStandardize`]),
//! as the data's standardization is stored in an [`Elementwise`](super::elementwise) `Affine`
//! layer. It is not a map of `x` (no log-det, `z = x` as far as it is concerned):
//! [`StandardizedContext`] wraps the layers that follow it, standardizes the context into its
//! scratch once per call and hands `c'` to them. The baked code and the runtime evaluator
//! ([`crate::runtime::Layers`]) both use it, so they compute the same bits.
//!
//! Gradients: `∂L/∂c = (∂L/∂c') / s`, `∂L/∂m = −(∂L/∂c') / s`, `∂L/∂s = −(∂L/∂c') c' / s`.
//! A NaN or infinite context gives NaN or infinite `c'` (and log p), as it would unstandardized.

use crate::layers::{Bijection, BlockHead, SampleHead};
use crate::layers::{BlockGrads, Cotangent, Grads, Head};
use crate::{block, slicing, Real, Weight};

/// `out[i] = (ctx[i] − m[i]) / s[i]` with `stats = [m (C), s (C)]`, `C = out.len()`.
#[inline]
pub fn standardize<S: Real, W: Weight>(stats: &[W], ctx: &[S], out: &mut [S]) {
    let (m, s) = slicing::split(stats, out.len());
    for (((o, &c), m), s) in out.iter_mut().zip(ctx).zip(m).zip(s) {
        let (m, s): (S, S) = (m.get(), s.get());
        *o = (c - m) / s;
    }
}

/// The cotangent of [`standardize`]: given `c'` (`std`) and `g = ∂L/∂c'`, adds `g / s` into
/// `g_ctx` and, when given, `−g / s` and `−g c' / s` into `g_stats = [∂L/∂m, ∂L/∂s]`.
#[inline]
pub fn standardize_vjp<S: Real, W: Weight>(
    stats: &[W],
    std: &[S],
    g: &[S],
    g_ctx: &mut [S],
    g_stats: Option<&mut [S]>,
) {
    let c = g.len();
    let (_, s) = slicing::split(stats, c);
    for ((gc, &gi), s) in g_ctx.iter_mut().zip(g).zip(s) {
        *gc += gi / s.get::<S>();
    }
    if let Some(gp) = g_stats {
        let (g_m, g_s) = slicing::split_mut(gp, c);
        for (((gm, gs), (&gi, &u)), s) in g_m.iter_mut().zip(g_s.iter_mut()).zip(g.iter().zip(std)).zip(s) {
            let s: S = s.get();
            *gm -= gi / s;
            *gs -= gi * u / s;
        }
    }
}

/// The layers `inner` with their context standardized by `stats = [m (C), s (C)]` (empty: the
/// context passes unchanged and nothing is copied).
///
/// Parameters: `stats` first, then `inner`'s (the order of the model file's weights).
#[derive(Clone, Copy, Debug)]
pub struct StandardizedContext<'a, W, L> {
    /// `[m (C), s (C)]`, or empty.
    pub stats: &'a [W],
    /// The layers that see the standardized context.
    pub inner: L,
}

impl<'a, W: Weight, L> StandardizedContext<'a, W, L> {
    /// `g_params` cut into the statistics' gradients and the inner layers'.
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn split_params<'g, S: Real>(
        &self,
        g_params: Option<&'g mut [S]>,
    ) -> (Option<&'g mut [S]>, Option<&'g mut [S]>) {
        match g_params {
            Some(g) => {
                let (a, b) = slicing::split_mut(g, self.stats.len());
                (Some(a), Some(b))
            }
            None => (None, None),
        }
    }
}

impl<'a, W: Weight, L> StandardizedContext<'a, W, L> {
    /// Context elements C (0 when the context passes unchanged).
    #[inline(always)]
    fn c<S: Real>(&self) -> usize
    where
        L: Bijection<S>,
    {
        if self.stats.is_empty() {
            0
        } else {
            self.inner.context_dim()
        }
    }

    /// Standardizes the `N` contexts into the front of `scratch`; returns their views and the rest.
    #[inline(always)]
    fn standardize_block<'s, S: Real, const N: usize>(
        &self,
        ctx: [&[S]; N],
        scratch: &'s mut [S],
    ) -> ([&'s [S]; N], &'s mut [S])
    where
        L: Bijection<S>,
    {
        let c = self.c::<S>();
        let (buf, rest) = slicing::split_mut(scratch, N * c);
        for (out, cs) in block::views_mut::<S, N>(buf, c).into_iter().zip(ctx) {
            standardize(self.stats, cs, out);
        }
        let buf: &'s [S] = buf;
        (block::views::<S, N>(buf, c), rest)
    }
}

impl<'a, S: Real, W: Weight, L: Bijection<S>> Bijection<S> for StandardizedContext<'a, W, L> {
    #[inline]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    #[inline]
    fn context_dim(&self) -> usize {
        self.inner.context_dim()
    }

    #[inline]
    fn n_params(&self) -> usize {
        self.stats.len() + self.inner.n_params()
    }

    /// `c'` and its cotangent, then the inner layers' scratch.
    #[inline]
    fn scratch_len(&self) -> usize {
        2 * self.c::<S>() + self.inner.scratch_len()
    }

    #[inline]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.inverse_acc(x, ctx, z, &mut ldj, scratch);
        ldj
    }

    #[inline]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.forward_acc(z, ctx, x, &mut ldj, scratch);
        ldj
    }

    #[inline]
    fn inverse_acc(&self, x: &[S], ctx: &[S], z: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        if self.stats.is_empty() {
            return self.inner.inverse_acc(x, ctx, z, ldj, scratch);
        }
        let ([cs], rest) = self.standardize_block::<S, 1>([ctx], scratch);
        self.inner.inverse_acc(x, cs, z, ldj, rest);
    }

    #[inline]
    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        if self.stats.is_empty() {
            return self.inner.forward_acc(z, ctx, x, ldj, scratch);
        }
        let ([cs], rest) = self.standardize_block::<S, 1>([ctx], scratch);
        self.inner.forward_acc(z, cs, x, ldj, rest);
    }

    #[inline]
    fn block_scratch_len(&self, n: usize) -> usize {
        n * self.c::<S>() + self.inner.block_scratch_len(n)
    }

    #[inline]
    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        if self.stats.is_empty() {
            return self.inner.inverse_acc_block(x, ctx, z, ldj, scratch);
        }
        let (cs, rest) = self.standardize_block(ctx, scratch);
        self.inner.inverse_acc_block(x, cs, z, ldj, rest);
    }

    #[inline]
    fn forward_acc_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        x: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        if self.stats.is_empty() {
            return self.inner.forward_acc_block(z, ctx, x, ldj, scratch);
        }
        let (cs, rest) = self.standardize_block(ctx, scratch);
        self.inner.forward_acc_block(z, cs, x, ldj, rest);
    }

    #[inline]
    fn inverse_vjp_head_acc(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        ldj: &mut S,
        scratch: &mut [S],
    ) {
        *ldj += self.inverse_vjp_head(x, ctx, cot, grads, scratch);
    }

    #[inline]
    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        2 * n * self.c::<S>() + self.inner.block_vjp_scratch_len(n)
    }

    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (g_x, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            return self
                .inner
                .inverse_vjp_block(x, ctx, cot, Grads::new(g_x, g_ctx, g_inner), scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, N * c);
        g_std.fill(S::ZERO);
        let (cs, rest) = self.standardize_block(ctx, scratch);
        let g_c = block::views_mut::<S, N>(g_std, c);
        self.inner
            .inverse_vjp_block(x, cs, cot, Grads::new(g_x, g_c, g_inner), rest);
        self.back_block(cs, g_std, g_ctx, g_stats);
    }

    fn inverse_vjp_head_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut BlockHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let (g_x, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            let inner = &self.inner;
            return inner.inverse_vjp_head_block(x, ctx, cot, Grads::new(g_x, g_ctx, g_inner), ldj, scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, N * c);
        g_std.fill(S::ZERO);
        let (cs, rest) = self.standardize_block(ctx, scratch);
        let g_c = block::views_mut::<S, N>(g_std, c);
        self.inner
            .inverse_vjp_head_block(x, cs, cot, Grads::new(g_x, g_c, g_inner), ldj, rest);
        self.back_block(cs, g_std, g_ctx, g_stats);
    }

    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) -> S {
        let (g_x, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            return self
                .inner
                .inverse_vjp_head(x, ctx, cot, Grads::new(g_x, g_ctx, g_inner), scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, c);
        g_std.fill(S::ZERO);
        let ([cs], rest) = self.standardize_block::<S, 1>([ctx], scratch);
        let ldj = self
            .inner
            .inverse_vjp_head(x, cs, cot, Grads::new(g_x, g_std, g_inner), rest);
        standardize_vjp(self.stats, cs, g_std, g_ctx, g_stats);
        ldj
    }

    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_x, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            return self
                .inner
                .inverse_vjp(x, ctx, cot, Grads::new(g_x, g_ctx, g_inner), scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, c);
        g_std.fill(S::ZERO);
        let ([cs], rest) = self.standardize_block::<S, 1>([ctx], scratch);
        self.inner
            .inverse_vjp(x, cs, cot, Grads::new(g_x, g_std, g_inner), rest);
        standardize_vjp(self.stats, cs, g_std, g_ctx, g_stats);
    }

    #[inline]
    fn forward_vjp_scratch_len(&self) -> usize {
        2 * self.c::<S>() + self.inner.forward_vjp_scratch_len()
    }

    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_z, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            return self
                .inner
                .forward_vjp(z, ctx, cot, Grads::new(g_z, g_ctx, g_inner), scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, c);
        g_std.fill(S::ZERO);
        let ([cs], rest) = self.standardize_block::<S, 1>([ctx], scratch);
        self.inner
            .forward_vjp(z, cs, cot, Grads::new(g_z, g_std, g_inner), rest);
        standardize_vjp(self.stats, cs, g_std, g_ctx, g_stats);
    }

    #[inline]
    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        2 * n * self.c::<S>() + self.inner.block_forward_vjp_scratch_len(n)
    }

    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (g_z, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            return self
                .inner
                .forward_vjp_block(z, ctx, cot, Grads::new(g_z, g_ctx, g_inner), scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, N * c);
        g_std.fill(S::ZERO);
        let (cs, rest) = self.standardize_block(ctx, scratch);
        let g_c = block::views_mut::<S, N>(g_std, c);
        self.inner
            .forward_vjp_block(z, cs, cot, Grads::new(g_z, g_c, g_inner), rest);
        self.back_block(cs, g_std, g_ctx, g_stats);
    }

    #[inline]
    fn block_forward_vjp_head_scratch_len(&self, n: usize) -> usize {
        2 * n * self.c::<S>() + self.inner.block_forward_vjp_head_scratch_len(n)
    }

    fn forward_vjp_head_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut SampleHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let (g_z, g_ctx, g_params) = grads.into_parts();
        let (g_stats, g_inner) = self.split_params(g_params);
        if self.stats.is_empty() {
            let inner = &self.inner;
            return inner.forward_vjp_head_block(z, ctx, cot, Grads::new(g_z, g_ctx, g_inner), ldj, scratch);
        }
        let c = self.c::<S>();
        let (g_std, scratch) = slicing::split_mut(scratch, N * c);
        g_std.fill(S::ZERO);
        let (cs, rest) = self.standardize_block(ctx, scratch);
        let g_c = block::views_mut::<S, N>(g_std, c);
        self.inner
            .forward_vjp_head_block(z, cs, cot, Grads::new(g_z, g_c, g_inner), ldj, rest);
        self.back_block(cs, g_std, g_ctx, g_stats);
    }
}

impl<'a, W: Weight, L> StandardizedContext<'a, W, L> {
    /// [`standardize_vjp`] sample after sample (the order of the single-sample calls).
    #[inline(always)]
    fn back_block<S: Real, const N: usize>(
        &self,
        cs: [&[S]; N],
        g_std: &[S],
        g_ctx: [&mut [S]; N],
        mut g_stats: Option<&mut [S]>,
    ) where
        L: Bijection<S>,
    {
        let g = block::views::<S, N>(g_std, self.c::<S>());
        for ((u, g), gc) in cs.into_iter().zip(g).zip(g_ctx) {
            standardize_vjp(self.stats, u, g, gc, g_stats.as_deref_mut());
        }
    }
}
