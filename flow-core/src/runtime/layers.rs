//! Layer views over a description and a weight vector, and their composition.

use crate::baked::Identity;
use crate::base::{Base, CholeskyNormal, DiagNormal, StandardNormal};
use crate::block;
use crate::layers::actnorm::ActNorm;
use crate::layers::affine_ar::AffineAutoregressive;
use crate::layers::affine_coupling::AffineCoupling;
use crate::layers::batchnorm::BatchNorm;
use crate::layers::context::StandardizedContext;
use crate::layers::elementwise::Elementwise;
use crate::layers::lu_linear::LuLinear;
use crate::layers::permutation::Permutation;
use crate::layers::planar::Planar;
use crate::layers::radial::Radial;
use crate::layers::spline_ar::SplineAutoregressive;
use crate::layers::spline_coupling::SplineCoupling;
use crate::layers::{Bijection, BlockHead, SampleHead};
use crate::model::{BaseDesc, LayerDesc, ModelDesc, NetDesc, Span};
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

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
    /// identity ([`Layers`] applies it to the context of the others and never lists it).
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
                scale: *scale,
                layout: *layout,
                additive: *additive,
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
                scale: *scale,
                layout: *layout,
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
                spline: *spline,
                direction: *direction,
            }),
            LayerDesc::SplineCoupling { net, mask, spline } => AnyLayer::SplineCoupling(SplineCoupling {
                net: mlp(net, weights),
                mask: slice(ints, *mask),
                spline: *spline,
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
        g_z: &[S],
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        dispatch!(self, l => l.inverse_vjp(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch))
    }
    #[inline]
    fn forward_vjp_scratch_len(&self) -> usize {
        dispatch!(self, l => Bijection::<S>::forward_vjp_scratch_len(l))
    }
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        g_x: &[S],
        g_ldj: S,
        g_z: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        dispatch!(self, l => l.forward_vjp(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch))
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
        g_x: [&[S]; N],
        g_ldj: S,
        g_z: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        dispatch!(self, l => l.forward_vjp_block(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch))
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
        g_z: [&[S]; N],
        g_ldj: S,
        g_x: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        dispatch!(self, l => l.inverse_vjp_block(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch))
    }
}

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
    fn first(&self) -> usize {
        match self.desc.layers.first() {
            Some(LayerDesc::ContextStandardize { .. }) => 1,
            _ => 0,
        }
    }

    /// The description of map layer `i`.
    #[inline]
    fn desc_of(&self, i: usize) -> &'a LayerDesc {
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

/// The layers that map `x`, in order; parameters: the weight vector after the context statistics.
#[derive(Clone, Copy, Debug)]
struct Sequence<'a, W>(Layers<'a, W>);

impl<'a, W> core::ops::Deref for Sequence<'a, W> {
    type Target = Layers<'a, W>;
    fn deref(&self) -> &Layers<'a, W> {
        &self.0
    }
}

impl<'a, W: Weight> Sequence<'a, W> {
    /// Where map layer `i`'s gradients go in `g_params` (its span, after the statistics).
    #[inline]
    fn g_params_of<'g, S>(&self, g_params: Option<&'g mut [S]>, i: usize) -> Option<&'g mut [S]> {
        let g = g_params?;
        let span = layer_span(self.desc_of(i));
        let skip = self.context_stats().len();
        let start = (span.offset as usize).checked_sub(skip)?;
        g.get_mut(start..start.checked_add(span.len as usize)?)
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
    match b {
        BaseDesc::StandardNormal => Span::default(),
        BaseDesc::DiagNormal { params } | BaseDesc::CholeskyNormal { params } => *params,
    }
}

impl<'a, S: Real, W: Weight> Bijection<S> for Sequence<'a, W> {
    fn dim(&self) -> usize {
        self.desc.dim as usize
    }

    fn context_dim(&self) -> usize {
        self.desc.context_dim as usize
    }

    fn n_params(&self) -> usize {
        let n = match self.desc.base {
            BaseDesc::StandardNormal => self.weights.len(),
            _ => base_span(&self.desc.base).offset as usize,
        };
        n.saturating_sub(self.context_stats().len())
    }

    fn scratch_len(&self) -> usize {
        let d = self.desc.dim as usize;
        let n = self.len();
        let mut layer_max = 0;
        for i in 0..n {
            layer_max = layer_max.max(Bijection::<S>::scratch_len(&self.layer(i)));
        }
        // Evaluation: two ping-pong buffers; gradients: every layer's output and two cotangents.
        n.max(1) * d + 2 * d + layer_max
    }

    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.inverse_acc(x, ctx, z, &mut ldj, scratch);
        ldj
    }

    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.forward_acc(z, ctx, x, &mut ldj, scratch);
        ldj
    }

    fn inverse_acc(&self, x: &[S], ctx: &[S], z: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        let d = self.desc.dim as usize;
        let n = self.len();
        if n == 0 {
            slicing::copy(z, x);
            return;
        }
        let (a, rest) = slicing::split_mut(scratch, d);
        let (b, rest) = slicing::split_mut(rest, d);
        let last = n - 1;
        for i in 0..n {
            let l = self.layer(i);
            // Layer 0 reads x; odd layers read a, even layers b; the last one writes z.
            match (i == 0, i % 2 == 1, i == last) {
                (true, _, true) => l.inverse_acc(x, ctx, z, ldj, rest),
                (true, _, false) => l.inverse_acc(x, ctx, a, ldj, rest),
                (false, true, true) => l.inverse_acc(a, ctx, z, ldj, rest),
                (false, true, false) => l.inverse_acc(a, ctx, b, ldj, rest),
                (false, false, true) => l.inverse_acc(b, ctx, z, ldj, rest),
                (false, false, false) => l.inverse_acc(b, ctx, a, ldj, rest),
            }
        }
    }

    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        let d = self.desc.dim as usize;
        let n = self.len();
        if n == 0 {
            slicing::copy(x, z);
            return;
        }
        let (a, rest) = slicing::split_mut(scratch, d);
        let (b, rest) = slicing::split_mut(rest, d);
        // Step k runs layer n-1-k: step 0 reads z; odd steps read a, even steps b; the last writes x.
        let last = n - 1;
        for k in 0..n {
            let l = self.layer(n - 1 - k);
            match (k == 0, k % 2 == 1, k == last) {
                (true, _, true) => l.forward_acc(z, ctx, x, ldj, rest),
                (true, _, false) => l.forward_acc(z, ctx, a, ldj, rest),
                (false, true, true) => l.forward_acc(a, ctx, x, ldj, rest),
                (false, true, false) => l.forward_acc(a, ctx, b, ldj, rest),
                (false, false, true) => l.forward_acc(b, ctx, x, ldj, rest),
                (false, false, false) => l.forward_acc(b, ctx, a, ldj, rest),
            }
        }
    }

    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        g_z: &[S],
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        self.inverse_vjp_head(
            x,
            ctx,
            &mut |_, g| slicing::copy(g, g_z),
            g_ldj,
            g_x,
            g_ctx,
            g_params,
            scratch,
        );
    }

    fn block_scratch_len(&self, n: usize) -> usize {
        let d = self.desc.dim as usize;
        let mut layer_max = 0;
        for i in 0..self.len() {
            layer_max = layer_max.max(Bijection::<S>::block_scratch_len(&self.layer(i), n));
        }
        2 * n * d + layer_max
    }

    /// Layer after layer over the block, through two ping-pong buffers (as [`Bijection::inverse_acc`]).
    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let d = self.desc.dim as usize;
        let n = self.len();
        if n == 0 {
            for (zs, xs) in z.into_iter().zip(x) {
                slicing::copy(zs, xs);
            }
            return;
        }
        let Some((a, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((b, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        let mut z = Some(z);
        for i in 0..n {
            let l = self.layer(i);
            let (src, dst) = if i % 2 == 1 {
                (&*a, &mut *b)
            } else {
                (&*b, &mut *a)
            };
            let input = if i == 0 { x } else { block::views::<S, N>(src, d) };
            if i + 1 == n {
                if let Some(z) = z.take() {
                    l.inverse_acc_block(input, ctx, z, ldj, rest);
                }
            } else {
                l.inverse_acc_block(input, ctx, block::views_mut::<S, N>(dst, d), ldj, rest);
            }
        }
    }

    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let d = self.desc.dim as usize;
        let mut layer_max = 0;
        for i in 0..self.len() {
            let l = self.layer(i);
            layer_max = layer_max
                .max(Bijection::<S>::block_scratch_len(&l, n))
                .max(Bijection::<S>::block_vjp_scratch_len(&l, n));
        }
        (self.len().max(1) + 2) * n * d + layer_max
    }

    /// One forward pass over the block keeping every layer's outputs, then the backward pass, each
    /// layer's VJP for the whole block ([`Bijection::inverse_vjp_block`]).
    fn inverse_vjp_head_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        head: &mut BlockHead<'_, S>,
        g_ldj: S,
        mut g_x: [&mut [S]; N],
        mut g_ctx: [&mut [S]; N],
        mut g_params: Option<&mut [S]>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let d = self.desc.dim as usize;
        let n = self.len();
        let Some((outs, rest)) = scratch.split_at_mut_checked(n.max(1) * N * d) else {
            return;
        };
        let Some((ga, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((gb, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        if n == 0 {
            for (s, (gx, xs)) in g_x.iter_mut().zip(x).enumerate() {
                head(s, xs, gx);
            }
            return;
        }
        for i in 0..n {
            let (done, todo) = slicing::split_mut(outs, i * N * d);
            let input = if i == 0 {
                x
            } else {
                block::views::<S, N>(slicing::split_back(done, N * d).1, d)
            };
            let out = block::views_mut::<S, N>(todo, d);
            self.layer(i).inverse_acc_block(input, ctx, out, ldj, rest);
        }
        let z = block::views::<S, N>(slicing::split_back(outs, N * d).1, d);
        for (s, (zs, g)) in z.into_iter().zip(block::views_mut::<S, N>(ga, d)).enumerate() {
            head(s, zs, g);
        }
        for i in (0..n).rev() {
            let l = self.layer(i);
            let input = if i == 0 {
                x
            } else {
                block::views::<S, N>(slicing::range(outs, (i - 1) * N * d, N * d), d)
            };
            let gp = self.g_params_of(g_params.as_deref_mut(), i);
            let g_c = g_ctx.each_mut().map(|g| &mut **g);
            let g_out = block::views::<S, N>(ga, d);
            // ga holds dL/d(output of layer i); write dL/d(input) into gb, then copy it back.
            if i == 0 {
                let g_in = g_x.each_mut().map(|g| &mut **g);
                l.inverse_vjp_block(input, ctx, g_out, g_ldj, g_in, g_c, gp, rest);
            } else {
                let g_in = block::views_mut::<S, N>(gb, d);
                l.inverse_vjp_block(input, ctx, g_out, g_ldj, g_in, g_c, gp, rest);
                slicing::copy(ga, gb);
            }
        }
    }

    /// One forward pass keeping every layer's output, then the backward pass.
    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        head: &mut dyn FnMut(&[S], &mut [S]),
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        mut g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) -> S {
        let d = self.desc.dim as usize;
        let n = self.len();
        // outs[k] = output of layer k; the last one is z.
        let (outs, rest) = slicing::split_mut(scratch, n.max(1) * d);
        let (ga, rest) = slicing::split_mut(rest, d);
        let (gb, rest) = slicing::split_mut(rest, d);
        if n == 0 {
            slicing::copy(slicing::head_mut(outs, d), x);
            head(slicing::head(outs, d), ga);
            slicing::copy(g_x, ga);
            return S::ZERO;
        }
        let mut ldj = S::ZERO;
        for i in 0..n {
            let (done, todo) = slicing::split_mut(outs, i * d);
            let input: &[S] = if i == 0 {
                x
            } else {
                slicing::range(done, (i - 1) * d, d)
            };
            self.layer(i)
                .inverse_acc(input, ctx, slicing::head_mut(todo, d), &mut ldj, rest);
        }
        head(slicing::range(outs, (n - 1) * d, d), ga);
        for i in (0..n).rev() {
            let l = self.layer(i);
            let input: &[S] = if i == 0 {
                x
            } else {
                slicing::range(outs, (i - 1) * d, d)
            };
            let gp = self.g_params_of(g_params.as_deref_mut(), i);
            // ga holds dL/d(output of layer i); write dL/d(input) into gb, then swap roles.
            if i == 0 {
                l.inverse_vjp(input, ctx, ga, g_ldj, g_x, g_ctx, gp, rest);
            } else {
                l.inverse_vjp(input, ctx, ga, g_ldj, gb, g_ctx, gp, rest);
                slicing::copy(ga, gb);
            }
        }
        ldj
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        let d = self.desc.dim as usize;
        let n = self.len();
        let mut layer_max = 0;
        for i in 0..n {
            let l = self.layer(i);
            let own = Bijection::<S>::scratch_len(&l).max(Bijection::<S>::forward_vjp_scratch_len(&l));
            layer_max = layer_max.max(own);
        }
        n.max(1) * d + 2 * d + layer_max
    }

    /// One sampling pass keeping every layer's output (last layer first), then the layers'
    /// [`Bijection::forward_vjp`] from the first layer (the one that writes `x`) back.
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        g_x: &[S],
        g_ldj: S,
        g_z: &mut [S],
        g_ctx: &mut [S],
        mut g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let d = self.desc.dim as usize;
        let n = self.len();
        if n == 0 {
            slicing::copy(g_z, g_x);
            return;
        }
        // outs[k] = output of step k, which runs layer n − 1 − k; the last one is x.
        let (outs, rest) = slicing::split_mut(scratch, n * d);
        let (ga, rest) = slicing::split_mut(rest, d);
        let (gb, rest) = slicing::split_mut(rest, d);
        for k in 0..n - 1 {
            let (done, todo) = slicing::split_mut(outs, k * d);
            let input: &[S] = if k == 0 {
                z
            } else {
                slicing::range(done, (k - 1) * d, d)
            };
            self.layer(n - 1 - k)
                .forward(input, ctx, slicing::head_mut(todo, d), rest);
        }
        slicing::copy(ga, g_x);
        for k in (0..n).rev() {
            let i = n - 1 - k;
            let l = self.layer(i);
            let input: &[S] = if k == 0 {
                z
            } else {
                slicing::range(outs, (k - 1) * d, d)
            };
            let gp = self.g_params_of(g_params.as_deref_mut(), i);
            // ga holds dL/d(output of step k); write dL/d(its input) into gb, then swap roles.
            if k == 0 {
                l.forward_vjp(input, ctx, ga, g_ldj, g_z, g_ctx, gp, rest);
            } else {
                l.forward_vjp(input, ctx, ga, g_ldj, gb, g_ctx, gp, rest);
                slicing::copy(ga, gb);
            }
        }
    }

    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let d = self.desc.dim as usize;
        let mut layer_max = 0;
        for i in 0..self.len() {
            let l = self.layer(i);
            layer_max = layer_max
                .max(Bijection::<S>::block_scratch_len(&l, n))
                .max(Bijection::<S>::block_forward_vjp_scratch_len(&l, n));
        }
        (self.len().max(1) + 2) * n * d + layer_max
    }

    /// [`Bijection::forward_vjp`] for a block: [`Bijection::forward_vjp_head_block`] with the
    /// given cotangents.
    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        g_x: [&[S]; N],
        g_ldj: S,
        g_z: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let d = self.desc.dim as usize;
        let mut head = |_: &[S], _: &[S], g: &mut [S]| {
            for (gs, gx) in block::views_mut::<S, N>(g, d).into_iter().zip(g_x) {
                slicing::copy(gs, gx);
            }
        };
        let mut ldj = [S::ZERO; N];
        self.forward_vjp_head_block(z, ctx, &mut head, g_ldj, g_z, g_ctx, g_params, &mut ldj, scratch);
    }

    fn block_forward_vjp_head_scratch_len(&self, n: usize) -> usize {
        Bijection::<S>::block_forward_vjp_scratch_len(self, n)
    }

    /// One sampling pass over the block keeping every layer's outputs (the last are `x`), the
    /// head, then each layer's [`Bijection::forward_vjp_block`] for the whole block.
    fn forward_vjp_head_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        head: &mut SampleHead<'_, S>,
        g_ldj: S,
        mut g_z: [&mut [S]; N],
        mut g_ctx: [&mut [S]; N],
        mut g_params: Option<&mut [S]>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let d = self.desc.dim as usize;
        let n = self.len();
        let Some((outs, rest)) = scratch.split_at_mut_checked(n.max(1) * N * d) else {
            return;
        };
        let Some((ga, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((gb, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        if n == 0 {
            let x = slicing::head_mut(outs, N * d);
            for (xs, zs) in block::views_mut::<S, N>(x, d).into_iter().zip(z) {
                slicing::copy(xs, zs);
            }
            head(x, ldj, ga);
            for (gz, g) in g_z.iter_mut().zip(block::views::<S, N>(ga, d)) {
                slicing::copy(gz, g);
            }
            return;
        }
        // outs[k] = outputs of step k, which runs layer n − 1 − k; the last are x.
        for k in 0..n {
            let (done, todo) = slicing::split_mut(outs, k * N * d);
            let input = if k == 0 {
                z
            } else {
                block::views::<S, N>(slicing::split_back(done, N * d).1, d)
            };
            let out = block::views_mut::<S, N>(todo, d);
            self.layer(n - 1 - k)
                .forward_acc_block(input, ctx, out, ldj, rest);
        }
        head(slicing::split_back(outs, N * d).1, ldj, ga);
        for k in (0..n).rev() {
            let i = n - 1 - k;
            let l = self.layer(i);
            let input = if k == 0 {
                z
            } else {
                block::views::<S, N>(slicing::range(outs, (k - 1) * N * d, N * d), d)
            };
            let gp = self.g_params_of(g_params.as_deref_mut(), i);
            let g_c = g_ctx.each_mut().map(|g| &mut **g);
            let g_out = block::views::<S, N>(ga, d);
            // ga holds dL/d(outputs of step k); write dL/d(its inputs) into gb, then copy back.
            if k == 0 {
                let g_in = g_z.each_mut().map(|g| &mut **g);
                l.forward_vjp_block(input, ctx, g_out, g_ldj, g_in, g_c, gp, rest);
            } else {
                let g_in = block::views_mut::<S, N>(gb, d);
                l.forward_vjp_block(input, ctx, g_out, g_ldj, g_in, g_c, gp, rest);
                slicing::copy(ga, gb);
            }
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
        head: &mut dyn FnMut(&[S], &mut [S]),
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        ldj: &mut S,
        scratch: &mut [S],
    ) {
        self.view()
            .inverse_vjp_head_acc(x, ctx, head, g_ldj, g_x, g_ctx, g_params, ldj, scratch)
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
        g_z: [&[S]; N],
        g_ldj: S,
        g_x: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        self.view()
            .inverse_vjp_block(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch)
    }
    #[inline]
    fn inverse_vjp_head_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        head: &mut BlockHead<'_, S>,
        g_ldj: S,
        g_x: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.view()
            .inverse_vjp_head_block(x, ctx, head, g_ldj, g_x, g_ctx, g_params, ldj, scratch)
    }
    #[inline]
    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        head: &mut dyn FnMut(&[S], &mut [S]),
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) -> S {
        self.view()
            .inverse_vjp_head(x, ctx, head, g_ldj, g_x, g_ctx, g_params, scratch)
    }
    #[inline]
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        g_z: &[S],
        g_ldj: S,
        g_x: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        self.view()
            .inverse_vjp(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch)
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
        g_x: &[S],
        g_ldj: S,
        g_z: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        self.view()
            .forward_vjp(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch)
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
        g_x: [&[S]; N],
        g_ldj: S,
        g_z: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        self.view()
            .forward_vjp_block(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch)
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
        head: &mut SampleHead<'_, S>,
        g_ldj: S,
        g_z: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.view()
            .forward_vjp_head_block(z, ctx, head, g_ldj, g_z, g_ctx, g_params, ldj, scratch)
    }
}

/// The base distribution of a runtime model.
#[derive(Clone, Copy, Debug)]
pub struct BaseView<'a, W> {
    /// The description.
    pub desc: &'a ModelDesc,
    /// All weights.
    pub weights: &'a [W],
}

/// Dispatches a base call.
macro_rules! base_dispatch {
    ($self:expr, $b:ident => $call:expr) => {{
        let d = $self.desc.dim as usize;
        match &$self.desc.base {
            BaseDesc::StandardNormal => {
                let $b = StandardNormal { dim: d };
                $call
            }
            BaseDesc::DiagNormal { params } => {
                let $b = DiagNormal {
                    params: slice($self.weights, *params),
                };
                $call
            }
            BaseDesc::CholeskyNormal { params } => {
                let $b = CholeskyNormal {
                    dim: d,
                    params: slice($self.weights, *params),
                };
                $call
            }
        }
    }};
}

impl<'a, S: Real, W: Weight> Base<S> for BaseView<'a, W> {
    fn dim(&self) -> usize {
        self.desc.dim as usize
    }
    fn n_params(&self) -> usize {
        base_span(&self.desc.base).len as usize
    }
    fn scratch_len(&self) -> usize {
        base_dispatch!(self, b => Base::<S>::scratch_len(&b))
    }
    #[inline]
    fn log_prob(&self, z: &[S], scratch: &mut [S]) -> S {
        base_dispatch!(self, b => b.log_prob(z, scratch))
    }
    #[inline]
    fn noise_to_base(&self, eps: &[S], z: &mut [S]) {
        base_dispatch!(self, b => b.noise_to_base(eps, z))
    }
    fn log_prob_vjp(&self, z: &[S], g: S, g_z: &mut [S], g_params: Option<&mut [S]>, scratch: &mut [S]) {
        base_dispatch!(self, b => b.log_prob_vjp(z, g, g_z, g_params, scratch))
    }
    fn noise_to_base_vjp(&self, eps: &[S], g_z: &[S], g_params: &mut [S]) {
        base_dispatch!(self, b => b.noise_to_base_vjp(eps, g_z, g_params))
    }
}
