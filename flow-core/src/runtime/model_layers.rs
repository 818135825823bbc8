//! [`Layers`]: the layers of a runtime model over its weight vector, and its `Bijection`, which is
//! the composition's: the context standardization, if any, around the map layers.

use super::layers::{slice, AnyLayer};
use super::sequence::Sequence;
use crate::layers::context::StandardizedContext;
use crate::layers::{Bijection, BlockHead, SampleHead};
use crate::layers::{BlockGrads, Cotangent, Grads, Head};
use crate::model::{LayerDesc, ModelDesc};
use crate::{Real, Weight};

/// The layers of a model in order, over a weight vector (f32 from a file, f64 while training).
///
/// Its parameters are the whole weight vector up to the base's span (the writer puts the base's
/// parameters last), so `g_params` of [`Bijection::inverse_vjp`] has the weight vector's layout.
/// A leading [`LayerDesc::ContextStandardize`] is applied to the context of the other layers
/// ([`StandardizedContext`], as in baked code); [`Layers::layer`] and [`Layers::len`] list the
/// others, the layers that map `x`.
#[derive(Clone, Copy, Debug)]
pub struct Layers<'a, W> {
    /// The description.
    pub desc: &'a ModelDesc,
    /// All weights.
    pub weights: &'a [W],
    /// The integer section.
    pub ints: &'a [u16],
}

impl<'a, W: Weight> Layers<'a, W> {
    /// `[m (C), s (C)]` of a leading context standardization (empty without one).
    #[inline]
    pub fn context_stats(&self) -> &'a [W] {
        match self.desc.layers.first() {
            Some(LayerDesc::ContextStandardize { params }) => slice(self.weights, *params),
            _ => &[],
        }
    }

    /// Index in the description of the first layer that maps `x`.
    #[inline]
    pub(super) fn first(&self) -> usize {
        match self.desc.layers.first() {
            Some(LayerDesc::ContextStandardize { .. }) => 1,
            _ => 0,
        }
    }

    /// The description of map layer `i`.
    #[inline]
    pub(super) fn desc_of(&self, i: usize) -> &'a LayerDesc {
        &self.desc.layers[self.first() + i]
    }

    /// View of the `i`-th layer that maps `x` (after a leading context standardization).
    #[inline]
    pub fn layer(&self, i: usize) -> AnyLayer<'a, W> {
        AnyLayer::new(self.desc_of(i), self.desc.dim as usize, self.weights, self.ints)
    }

    /// Number of layers that map `x`.
    pub fn len(&self) -> usize {
        self.desc.layers.len() - self.first()
    }

    /// True without layers that map `x`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The composition evaluation runs: the map layers inside the context standardization.
    #[inline]
    fn view(&self) -> StandardizedContext<'a, W, Sequence<'a, W>> {
        StandardizedContext {
            stats: self.context_stats(),
            inner: Sequence(*self),
        }
    }
}

/// Every method is the composition's (`Layers::view`): the context standardization, if any,
/// around the map layers.
impl<'a, S: Real, W: Weight> Bijection<S> for Layers<'a, W> {
    #[inline]
    fn dim(&self) -> usize {
        self.desc.dim as usize
    }
    #[inline]
    fn context_dim(&self) -> usize {
        self.desc.context_dim as usize
    }
    #[inline]
    fn n_params(&self) -> usize {
        Bijection::<S>::n_params(&self.view())
    }
    #[inline]
    fn scratch_len(&self) -> usize {
        Bijection::<S>::scratch_len(&self.view())
    }
    #[inline]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        self.view().inverse(x, ctx, z, scratch)
    }
    #[inline]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        self.view().forward(z, ctx, x, scratch)
    }
    #[inline]
    fn inverse_acc(&self, x: &[S], ctx: &[S], z: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        self.view().inverse_acc(x, ctx, z, ldj, scratch)
    }
    #[inline]
    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        self.view().forward_acc(z, ctx, x, ldj, scratch)
    }
    #[inline]
    fn block_scratch_len(&self, n: usize) -> usize {
        Bijection::<S>::block_scratch_len(&self.view(), n)
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
        self.view().inverse_acc_block(x, ctx, z, ldj, scratch)
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
        self.view().forward_acc_block(z, ctx, x, ldj, scratch)
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
        self.view().inverse_vjp_head_acc(x, ctx, cot, grads, ldj, scratch)
    }
    #[inline]
    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        Bijection::<S>::block_vjp_scratch_len(&self.view(), n)
    }
    #[inline]
    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        self.view().inverse_vjp_block(x, ctx, cot, grads, scratch)
    }
    #[inline]
    fn inverse_vjp_head_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut BlockHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.view()
            .inverse_vjp_head_block(x, ctx, cot, grads, ldj, scratch)
    }
    #[inline]
    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) -> S {
        self.view().inverse_vjp_head(x, ctx, cot, grads, scratch)
    }
    #[inline]
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        self.view().inverse_vjp(x, ctx, cot, grads, scratch)
    }
    #[inline]
    fn forward_vjp_scratch_len(&self) -> usize {
        Bijection::<S>::forward_vjp_scratch_len(&self.view())
    }
    #[inline]
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        self.view().forward_vjp(z, ctx, cot, grads, scratch)
    }
    #[inline]
    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        Bijection::<S>::block_forward_vjp_scratch_len(&self.view(), n)
    }
    #[inline]
    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        self.view().forward_vjp_block(z, ctx, cot, grads, scratch)
    }
    #[inline]
    fn block_forward_vjp_head_scratch_len(&self, n: usize) -> usize {
        Bijection::<S>::block_forward_vjp_head_scratch_len(&self.view(), n)
    }
    #[inline]
    fn forward_vjp_head_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut SampleHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.view()
            .forward_vjp_head_block(z, ctx, cot, grads, ldj, scratch)
    }
}
