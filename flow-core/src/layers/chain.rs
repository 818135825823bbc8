//! Composition of two layers, the typed form baked models use: `Chain<A, Chain<B, C>>`.
//!
//! In the density direction `A` runs first (`x → A → B → z`); sampling runs `B⁻¹` then `A⁻¹`.
//! Log-determinants are accumulated layer by layer, in the same order as the runtime evaluator.

use crate::block;
use crate::layers::{Bijection, BlockGrads, BlockHead, Cotangent, Grads, Head};
use crate::{slicing, Real};

/// `A` then `B` in the density direction. Parameters are `A`'s followed by `B`'s.
#[derive(Clone, Copy, Debug)]
pub struct Chain<A, B>(pub A, pub B);

impl<A, B> Chain<A, B> {
    /// `g_params` cut into the first layer's parameters and the rest's (both `None` without it).
    #[inline(always)]
    #[allow(clippy::type_complexity)]
    fn split_params<'g, S: Real>(
        &self,
        g_params: Option<&'g mut [S]>,
    ) -> (Option<&'g mut [S]>, Option<&'g mut [S]>)
    where
        A: Bijection<S>,
    {
        match g_params {
            Some(g) => {
                let (a, b) = slicing::split_mut(g, self.0.n_params());
                (Some(a), Some(b))
            }
            None => (None, None),
        }
    }
}

impl<S: Real, A: Bijection<S>, B: Bijection<S>> Bijection<S> for Chain<A, B> {
    #[inline]
    fn dim(&self) -> usize {
        self.0.dim()
    }

    #[inline]
    fn context_dim(&self) -> usize {
        self.0.context_dim().max(self.1.context_dim())
    }

    #[inline]
    fn n_params(&self) -> usize {
        self.0.n_params() + self.1.n_params()
    }

    #[inline]
    fn scratch_len(&self) -> usize {
        2 * self.dim() + self.0.scratch_len().max(self.1.scratch_len())
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
        let (mid, rest) = slicing::split_mut(scratch, self.dim());
        self.0.inverse_acc(x, ctx, mid, ldj, rest);
        self.1.inverse_acc(mid, ctx, z, ldj, rest);
    }

    #[inline]
    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        let (mid, rest) = slicing::split_mut(scratch, self.dim());
        self.1.forward_acc(z, ctx, mid, ldj, rest);
        self.0.forward_acc(mid, ctx, x, ldj, rest);
    }

    #[inline]
    fn block_scratch_len(&self, n: usize) -> usize {
        n * self.dim() + self.0.block_scratch_len(n).max(self.1.block_scratch_len(n))
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
        let d = self.dim();
        let Some((mid, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        self.0
            .inverse_acc_block(x, ctx, block::views_mut::<S, N>(mid, d), ldj, rest);
        self.1
            .inverse_acc_block(block::views::<S, N>(mid, d), ctx, z, ldj, rest);
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
        let d = self.dim();
        let Some((mid, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        self.1
            .forward_acc_block(z, ctx, block::views_mut::<S, N>(mid, d), ldj, rest);
        self.0
            .forward_acc_block(block::views::<S, N>(mid, d), ctx, x, ldj, rest);
    }

    /// One forward pass: layer 0's output is kept for its VJP, the rest recurse, so each layer
    /// runs its `inverse` once (the default would run the whole chain's, then each prefix again).
    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) -> S {
        let mut ldj = S::ZERO;
        self.inverse_vjp_head_acc(x, ctx, cot, grads, &mut ldj, scratch);
        ldj
    }

    fn inverse_vjp_head_acc(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        ldj: &mut S,
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let g_ldj = cot.ldj;
        let (mid, rest) = slicing::split_mut(scratch, d);
        let (g_mid, rest) = slicing::split_mut(rest, d);
        self.0.inverse_acc(x, ctx, mid, ldj, rest);
        let (g_a, g_b) = self.split_params(grads.params);
        let g_b = Grads::new(&mut *g_mid, &mut *grads.ctx, g_b);
        self.1.inverse_vjp_head_acc(mid, ctx, cot, g_b, ldj, rest);
        let g_a = Grads::new(grads.input, grads.ctx, g_a);
        self.0
            .inverse_vjp(x, ctx, Cotangent::new(g_mid, g_ldj), g_a, rest);
    }

    #[inline]
    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let inner = (self.0.block_scratch_len(n))
            .max(self.0.block_vjp_scratch_len(n))
            .max(self.1.block_vjp_scratch_len(n));
        2 * n * self.dim() + inner
    }

    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        mut grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let Some((mid, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((g_mid, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        let mut ldj = [S::ZERO; N];
        self.0
            .inverse_acc_block(x, ctx, block::views_mut::<S, N>(mid, d), &mut ldj, rest);
        let mid = block::views::<S, N>(mid, d);
        let (g_a, g_b) = self.split_params(grads.params.take());
        let g_c = grads.ctx.each_mut().map(|g| &mut **g);
        let g_b = Grads::new(block::views_mut::<S, N>(g_mid, d), g_c, g_b);
        self.1.inverse_vjp_block(mid, ctx, cot, g_b, rest);
        let g_mid = block::views::<S, N>(g_mid, d);
        let g_a = Grads { params: g_a, ..grads };
        self.0
            .inverse_vjp_block(x, ctx, Cotangent::new(g_mid, cot.ldj), g_a, rest);
    }

    fn inverse_vjp_head_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut BlockHead<'_, S>, S>,
        mut grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let g_ldj = cot.ldj;
        let Some((mid, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((g_mid, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        self.0
            .inverse_acc_block(x, ctx, block::views_mut::<S, N>(mid, d), ldj, rest);
        let mid = block::views::<S, N>(mid, d);
        let (g_a, g_b) = self.split_params(grads.params.take());
        let g_c = grads.ctx.each_mut().map(|g| &mut **g);
        let g_b = Grads::new(block::views_mut::<S, N>(g_mid, d), g_c, g_b);
        self.1.inverse_vjp_head_block(mid, ctx, cot, g_b, ldj, rest);
        let g_mid = block::views::<S, N>(g_mid, d);
        let g_a = Grads { params: g_a, ..grads };
        self.0
            .inverse_vjp_block(x, ctx, Cotangent::new(g_mid, g_ldj), g_a, rest);
    }

    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let (mid, rest) = slicing::split_mut(scratch, d);
        let (g_mid, rest) = slicing::split_mut(rest, d);
        self.0.inverse(x, ctx, mid, rest);
        let (g_a, g_b) = self.split_params(grads.params);
        let g_b = Grads::new(&mut *g_mid, &mut *grads.ctx, g_b);
        self.1.inverse_vjp(mid, ctx, cot, g_b, rest);
        let g_a = Grads::new(grads.input, grads.ctx, g_a);
        self.0
            .inverse_vjp(x, ctx, Cotangent::new(g_mid, cot.ldj), g_a, rest);
    }

    #[inline]
    fn forward_vjp_scratch_len(&self) -> usize {
        let inner = self
            .0
            .forward_vjp_scratch_len()
            .max(self.1.forward_vjp_scratch_len());
        2 * self.dim() + inner.max(self.1.scratch_len())
    }

    /// Sampling runs `B⁻¹` then `A⁻¹`: `B`'s output is recomputed for `A`'s VJP, then `B`'s VJP
    /// takes the cotangent of that output.
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let (mid, rest) = slicing::split_mut(scratch, d);
        let (g_mid, rest) = slicing::split_mut(rest, d);
        self.1.forward(z, ctx, mid, rest);
        let (g_a, g_b) = self.split_params(grads.params);
        let g_a = Grads::new(&mut *g_mid, &mut *grads.ctx, g_a);
        self.0.forward_vjp(mid, ctx, cot, g_a, rest);
        let g_b = Grads::new(grads.input, grads.ctx, g_b);
        self.1
            .forward_vjp(z, ctx, Cotangent::new(g_mid, cot.ldj), g_b, rest);
    }

    #[inline]
    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let inner = (self.1.block_scratch_len(n))
            .max(self.0.block_forward_vjp_scratch_len(n))
            .max(self.1.block_forward_vjp_scratch_len(n));
        2 * n * self.dim() + inner
    }

    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        mut grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let Some((mid, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((g_mid, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        let mut ldj = [S::ZERO; N];
        self.1
            .forward_acc_block(z, ctx, block::views_mut::<S, N>(mid, d), &mut ldj, rest);
        let mid = block::views::<S, N>(mid, d);
        let (g_a, g_b) = self.split_params(grads.params.take());
        let g_c = grads.ctx.each_mut().map(|g| &mut **g);
        let g_a = Grads::new(block::views_mut::<S, N>(g_mid, d), g_c, g_a);
        self.0.forward_vjp_block(mid, ctx, cot, g_a, rest);
        let g_mid = block::views::<S, N>(g_mid, d);
        let g_b = Grads { params: g_b, ..grads };
        self.1
            .forward_vjp_block(z, ctx, Cotangent::new(g_mid, cot.ldj), g_b, rest);
    }
}
