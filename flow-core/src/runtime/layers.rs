//! Layer views over a description and a weight vector, and their composition.

use crate::baked::Identity;
use crate::layers::actnorm::ActNorm;
use crate::layers::affine::Affine;
use crate::layers::autoregressive::{AffineAutoregressive, SplineAutoregressive};
use crate::layers::batchnorm::BatchNorm;
use crate::layers::coupling::{AffineCoupling, SplineCoupling};
use crate::layers::elementwise::Elementwise;
use crate::layers::lu_linear::LuLinear;
use crate::layers::permutation::Permutation;
use crate::layers::planar::Planar;
use crate::layers::radial::Radial;
use crate::layers::Bijection;
use crate::layers::{BlockGrads, Cotangent, Grads};
use crate::model::{BaseDesc, LayerDesc, NetDesc, Span};
use crate::nn::Mlp;
use crate::{Real, Weight};

/// `section[span]`, or empty when out of range (never after validation).
#[inline]
pub(crate) fn slice<T>(section: &[T], span: Span) -> &[T] {
    span.range(section.len())
        .and_then(|r| section.get(r))
        .unwrap_or(&[])
}

#[inline]
fn mlp<'a, W>(net: &'a NetDesc, weights: &'a [W]) -> Mlp<'a, W> {
    Mlp {
        sizes: &net.sizes,
        params: slice(weights, net.params),
        activation: net.activation,
        residual: net.residual,
    }
}

/// One layer of a runtime model, dispatched by `match`.
#[derive(Clone, Copy, Debug)]
pub enum AnyLayer<'a, W> {
    /// See [`Elementwise`].
    Elementwise(Elementwise<'a, W>),
    /// See [`AffineAutoregressive`].
    AffineAutoregressive(AffineAutoregressive<'a, W>),
    /// See [`AffineCoupling`] (mask stored as integers).
    AffineCoupling(AffineCoupling<'a, W, u16>),
    /// See [`Planar`].
    Planar(Planar<'a, W>),
    /// See [`Radial`].
    Radial(Radial<'a, W>),
    /// See [`ActNorm`].
    ActNorm(ActNorm<'a, W>),
    /// See [`BatchNorm`].
    BatchNorm(BatchNorm<'a, W>),
    /// See [`LuLinear`].
    LuLinear(LuLinear<'a, W>),
    /// See [`Permutation`].
    Permutation(Permutation<'a>),
    /// See [`SplineAutoregressive`].
    SplineAutoregressive(SplineAutoregressive<'a, W>),
    /// See [`SplineCoupling`] (mask stored as integers).
    SplineCoupling(SplineCoupling<'a, W, u16>),
    /// The view of a [`LayerDesc::ContextStandardize`], which is not a map of `x`: as a layer, the
    /// identity ([`Layers`](super::Layers) applies it to the context of the others and never lists it).
    Identity(Identity),
}

/// Dispatches a method call to the concrete layer.
macro_rules! dispatch {
    ($self:expr, $l:ident => $call:expr) => {
        match $self {
            AnyLayer::Elementwise($l) => $call,
            AnyLayer::AffineAutoregressive($l) => $call,
            AnyLayer::AffineCoupling($l) => $call,
            AnyLayer::Planar($l) => $call,
            AnyLayer::Radial($l) => $call,
            AnyLayer::ActNorm($l) => $call,
            AnyLayer::BatchNorm($l) => $call,
            AnyLayer::LuLinear($l) => $call,
            AnyLayer::Permutation($l) => $call,
            AnyLayer::SplineAutoregressive($l) => $call,
            AnyLayer::SplineCoupling($l) => $call,
            AnyLayer::Identity($l) => $call,
        }
    };
}

impl<'a, W: Weight> AnyLayer<'a, W> {
    /// The view of layer `desc` over `weights` and `ints`.
    pub fn new(desc: &'a LayerDesc, dim: usize, weights: &'a [W], ints: &'a [u16]) -> Self {
        let w = |span: &Span| slice(weights, *span);
        match desc {
            LayerDesc::Elementwise { kind, params } => AnyLayer::Elementwise(Elementwise {
                kind: *kind,
                dim,
                params: w(params),
            }),
            LayerDesc::AffineCoupling {
                net,
                mask,
                scale,
                layout,
                additive,
            } => AnyLayer::AffineCoupling(AffineCoupling {
                net: mlp(net, weights),
                mask: slice(ints, *mask),
                transformer: Affine {
                    scale: *scale,
                    layout: *layout,
                    additive: *additive,
                },
            }),
            LayerDesc::Planar { params } => AnyLayer::Planar(Planar { params: w(params) }),
            LayerDesc::Radial { params } => AnyLayer::Radial(Radial { params: w(params) }),
            LayerDesc::ActNorm { params } => AnyLayer::ActNorm(ActNorm { params: w(params) }),
            LayerDesc::BatchNorm { params, eps } => AnyLayer::BatchNorm(BatchNorm {
                params: w(params),
                eps: *eps,
            }),
            LayerDesc::LuLinear { params, eps } => AnyLayer::LuLinear(LuLinear {
                dim,
                params: w(params),
                eps: *eps,
            }),
            LayerDesc::Permutation { perm } => AnyLayer::Permutation(Permutation {
                perm: slice(ints, *perm),
            }),
            LayerDesc::AffineAutoregressive {
                net,
                scale,
                layout,
                direction,
                ..
            } => AnyLayer::AffineAutoregressive(AffineAutoregressive {
                net: mlp(net, weights),
                dim,
                transformer: Affine::new(*scale, *layout),
                direction: *direction,
            }),
            LayerDesc::SplineAutoregressive {
                net,
                spline,
                direction,
                ..
            } => AnyLayer::SplineAutoregressive(SplineAutoregressive {
                net: mlp(net, weights),
                dim,
                transformer: *spline,
                direction: *direction,
            }),
            LayerDesc::SplineCoupling { net, mask, spline } => AnyLayer::SplineCoupling(SplineCoupling {
                net: mlp(net, weights),
                mask: slice(ints, *mask),
                transformer: *spline,
            }),
            LayerDesc::ContextStandardize { .. } => AnyLayer::Identity(Identity { dim }),
        }
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for AnyLayer<'a, W> {
    #[inline]
    fn dim(&self) -> usize {
        dispatch!(self, l => Bijection::<S>::dim(l))
    }
    #[inline]
    fn context_dim(&self) -> usize {
        dispatch!(self, l => Bijection::<S>::context_dim(l))
    }
    #[inline]
    fn n_params(&self) -> usize {
        dispatch!(self, l => Bijection::<S>::n_params(l))
    }
    #[inline]
    fn scratch_len(&self) -> usize {
        dispatch!(self, l => Bijection::<S>::scratch_len(l))
    }
    #[inline]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        dispatch!(self, l => l.inverse(x, ctx, z, scratch))
    }
    #[inline]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        dispatch!(self, l => l.forward(z, ctx, x, scratch))
    }
    #[inline]
    fn inverse_acc(&self, x: &[S], ctx: &[S], z: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        dispatch!(self, l => l.inverse_acc(x, ctx, z, ldj, scratch))
    }
    #[inline]
    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        dispatch!(self, l => l.forward_acc(z, ctx, x, ldj, scratch))
    }
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        dispatch!(self, l => l.inverse_vjp(x, ctx, cot, grads, scratch))
    }
    #[inline]
    fn forward_vjp_scratch_len(&self) -> usize {
        dispatch!(self, l => Bijection::<S>::forward_vjp_scratch_len(l))
    }
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        dispatch!(self, l => l.forward_vjp(z, ctx, cot, grads, scratch))
    }
    #[inline]
    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        dispatch!(self, l => Bijection::<S>::block_forward_vjp_scratch_len(l, n))
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
        dispatch!(self, l => l.forward_vjp_block(z, ctx, cot, grads, scratch))
    }
    #[inline]
    fn block_scratch_len(&self, n: usize) -> usize {
        dispatch!(self, l => Bijection::<S>::block_scratch_len(l, n))
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
        dispatch!(self, l => l.inverse_acc_block(x, ctx, z, ldj, scratch))
    }
    #[inline]
    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        dispatch!(self, l => Bijection::<S>::block_vjp_scratch_len(l, n))
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
        dispatch!(self, l => l.inverse_vjp_block(x, ctx, cot, grads, scratch))
    }
}

/// The weight span of a layer (empty for parameter-free layers).
pub fn layer_span(l: &LayerDesc) -> Span {
    match l {
        LayerDesc::Elementwise { params, .. }
        | LayerDesc::Planar { params }
        | LayerDesc::Radial { params }
        | LayerDesc::ActNorm { params }
        | LayerDesc::BatchNorm { params, .. }
        | LayerDesc::LuLinear { params, .. } => *params,
        LayerDesc::AffineAutoregressive { net, .. }
        | LayerDesc::SplineAutoregressive { net, .. }
        | LayerDesc::AffineCoupling { net, .. }
        | LayerDesc::SplineCoupling { net, .. } => net.params,
        LayerDesc::ContextStandardize { params } => *params,
        LayerDesc::Permutation { .. } => Span::default(),
    }
}

/// The weight span of the base (empty for the standard normal).
pub(crate) fn base_span(b: &BaseDesc) -> Span {
    b.params()
}
