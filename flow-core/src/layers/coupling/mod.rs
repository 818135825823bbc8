//! Coupling layers: a conditioner × a univariate [`Transformer`] (Dinh et al. 2015, 2017;
//! Durkan et al. 2019).
//!
//! A binary mask splits the features into identity (conditioning) features `x_I` and transformed
//! features `x_T`. A conditioner `net([x_I, c])` (identity features in index order, then the
//! context) gives `P` raw parameters `θ_k` per transformed feature (feature-major over the
//! transformed features in index order: `out[k·P + p]`); in the density direction (data → base,
//! `inverse`)
//!
//! `z_I = x_I`,   `z_{T,k} = f(x_{T,k}; θ_k)`,   log|det ∂z/∂x| = Σ_k ln f'(x_{T,k}; θ_k),
//!
//! and in the sampling direction (`forward`) `x_{T,k} = f⁻¹(z_{T,k}; θ_k)` (the same network
//! pass, since `z_I = x_I`). Both directions take one network pass.
//!
//! The transformers:
//! - [`Affine`] ([`AffineCoupling`]): RealNVP (`f(x) = x · s(a) + t`, `P = 2`, the pair in
//!   [`AffineLayout`](crate::layers::affine::AffineLayout)'s order; nflows' coupling uses
//!   `AffineScale::Sigmoid { eps: 1e-3 }`) and NICE (`additive`: `f(x) = x + t`, `P = 1`).
//! - The rational-quadratic spline ([`SplineOpts`], [`SplineCoupling`]).
//!
//! Importing peers: nflows' `AffineCouplingTransform` and
//! `PiecewiseRationalQuadraticCouplingTransform` mark *transformed* features with `mask > 0`
//! (here `true`/non-zero marks *identity* features); nflows' affine network output is
//! block-major, `[shift (n_T), raw scale (n_T)]` (the importer interleaves the rows of the last
//! layer into the feature-major order above), and its `ResidualNet` conditioner makes the spline's
//! width and height logits divided by `√hidden_features` (see [`SplineOpts::logit_scale`]).
//! FlowJAX's `Coupling`: the first `untransformed_dim` features are the identity features;
//! `coupling_flow`'s default `invert=True` makes its `transform` our `inverse`.
//!
//! Parameters: the conditioner's ([`Mlp`], sizes `[n_I + C, …, P · n_T]`). The network needs at
//! least one input (`n_I + C ≥ 1`; [`Mlp`] cannot have zero-width layers, which the model
//! validator rejects). The VJPs are in `vjp.rs`.

use crate::layers::affine::Affine;
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::spline::SplineOpts;
use crate::layers::transformer::Transformer;
use crate::layers::Bijection;
use crate::layers::{BlockGrads, Cotangent, Grads};
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

#[cfg(test)]
mod tests;
mod vjp;

use vjp::coupling_vjp_block_scratch;

/// One entry of a coupling mask: `bool` (`true` = identity), or `u16` as stored in model files
/// (non-zero = identity).
pub trait MaskBit: Copy + core::fmt::Debug {
    /// `true` for an identity (conditioning) feature.
    fn is_identity(self) -> bool;
}

impl MaskBit for bool {
    #[inline(always)]
    fn is_identity(self) -> bool {
        self
    }
}

impl MaskBit for u16 {
    #[inline(always)]
    fn is_identity(self) -> bool {
        self != 0
    }
}

/// Copies the identity features of `v` (those whose `mask` entry is identity, in index order) into
/// `dst`.
#[inline]
pub(crate) fn gather<S: Copy, M: MaskBit>(mask: &[M], v: &[S], dst: &mut [S]) {
    let identity = v.iter().zip(mask).filter(|(_, m)| m.is_identity());
    for (d, (&vi, _)) in dst.iter_mut().zip(identity) {
        *d = vi;
    }
}

/// A coupling layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct Coupling<'a, W, T, M = bool> {
    /// The conditioner: `n_I + C` inputs (identity features in index order, then the context),
    /// `P · n_T` outputs.
    pub net: Mlp<'a, W>,
    /// One entry per feature (D = `mask.len()`): identity (`true`) or transformed (`false`).
    pub mask: &'a [M],
    /// The univariate transformer.
    pub transformer: T,
}

/// RealNVP and NICE: the affine transformer.
pub type AffineCoupling<'a, W, M = bool> = Coupling<'a, W, Affine, M>;

/// The coupling neural spline flow layer: the rational-quadratic spline transformer.
pub type SplineCoupling<'a, W, M = bool> = Coupling<'a, W, SplineOpts, M>;

impl<'a, W: Weight, T: Transformer, M: MaskBit> Coupling<'a, W, T, M> {
    /// Number of identity features `n_I`.
    pub fn n_identity(&self) -> usize {
        self.mask.iter().filter(|m| m.is_identity()).count()
    }

    /// Network outputs: `n_T · P`.
    fn n_out(&self) -> usize {
        (self.mask.len() - self.n_identity()) * self.transformer.params_per_feature()
    }

    /// The map in either direction: identity features copied, the others through `f`
    /// (`density`) or `f⁻¹`; returns the summed log-derivatives.
    #[inline(always)]
    fn apply<S: Real>(&self, src: &[S], ctx: &[S], dst: &mut [S], scratch: &mut [S], density: bool) -> S {
        let (xid, rest) = slicing::split_mut(scratch, self.n_identity());
        let (out, rest) = slicing::split_mut(rest, self.n_out());
        let (step, rest) = slicing::split_mut(rest, self.transformer.map_len());
        gather(self.mask, src, xid);
        self.net.forward(xid, ctx, out, rest);
        self.finish(src, out, dst, step, density)
    }

    /// The elementwise part of [`Self::apply`] given the network output `out`.
    #[inline(always)]
    fn finish<S: Real>(&self, src: &[S], out: &[S], dst: &mut [S], scratch: &mut [S], density: bool) -> S {
        for ((di, &si), _) in dst
            .iter_mut()
            .zip(src)
            .zip(self.mask)
            .filter(|(_, m)| m.is_identity())
        {
            *di = si;
        }
        let p = self.transformer.params_per_feature();
        let transformed = src.iter().zip(dst.iter_mut()).zip(self.mask);
        let transformed = transformed.filter(|(_, m)| !m.is_identity());
        let features = transformed
            .zip(slicing::rows(out, p))
            .map(|(((x, y), _), raw)| (x, raw, y));
        self.transformer.map(features, scratch, density)
    }

    /// [`Self::apply`] for a block of samples: one network pass for all of them.
    fn apply_block<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        ctx: [&[S]; N],
        dst: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
        density: bool,
    ) {
        let gather = |x: &[S], a: &mut [S]| gather(self.mask, x, a);
        let (n_id, k) = (self.n_identity(), self.transformer.map_len());
        let net = &self.net;
        blockwise::one_pass(self, density, net, n_id, k, src, ctx, dst, ldj, scratch, gather);
    }
}

impl<W: Weight, T: Transformer, M: MaskBit> BlockStep for Coupling<'_, W, T, M> {
    fn lanes_apply(&self) -> bool {
        self.transformer.lanes_apply()
    }

    #[inline(always)]
    fn step_one<S: Real>(&self, x: &[S], o: &[S], z: &mut [S], k: &mut [S], density: bool) -> S {
        self.finish(x, o, z, k, density)
    }

    /// [`Self::finish`] of each sample of a block, in lanes (`flag`: the density direction).
    #[inline(always)]
    fn step_lanes<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        out: &[[S; N]],
        z: &mut [&mut [S]; N],
        density: bool,
    ) -> [S; N] {
        for (i, m) in self.mask.iter().enumerate() {
            if m.is_identity() {
                crate::lanes::Lanes::column(&x, i).store_column(z, i);
            }
        }
        let transformed = self.mask.iter().enumerate().filter(|(_, m)| !m.is_identity());
        let coords = transformed.enumerate().map(|(r, (i, _))| (i, r));
        self.transformer.map_lanes(&x, out, z, coords, density, false)
    }
}

impl<'a, S: Real, W: Weight, T: Transformer, M: MaskBit> Bijection<S> for Coupling<'a, W, T, M> {
    fn dim(&self) -> usize {
        self.mask.len()
    }

    fn context_dim(&self) -> usize {
        self.net.n_in().saturating_sub(self.n_identity())
    }

    fn n_params(&self) -> usize {
        self.net.params.len()
    }

    fn scratch_len(&self) -> usize {
        let (n_id, n_out) = (self.n_identity(), self.n_out());
        let pass = n_id + n_out + self.transformer.map_len() + self.net.scratch_len();
        let vjp = 2 * n_id
            + 2 * n_out
            + self.net.cache_len()
            + self.transformer.vjp_len().max(self.net.backward_scratch_len());
        pass.max(vjp)
    }

    /// `z_I = x_I`, `z_T = f(x_T)`; returns Σ ln f'(x_T).
    #[inline(always)]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        self.apply(x, ctx, z, scratch, true)
    }

    /// `x_I = z_I`, `x_T = f⁻¹(z_T)`; returns −Σ ln f'(x_T).
    #[inline(always)]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        self.apply(z, ctx, x, scratch, false)
    }

    fn block_scratch_len(&self, n: usize) -> usize {
        blockwise::scratch_len(&self.net, self.n_identity(), self.transformer.map_len(), n)
    }

    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.apply_block(x, ctx, z, ldj, scratch, true);
    }

    fn forward_acc_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        x: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.apply_block(z, ctx, x, ldj, scratch, false);
    }

    /// The transformer's VJP of `z_T = f(x_T; θ)` per transformed feature, the cotangents of `θ`
    /// back-propagated into `g_{x_I}` (added to `g_{z_I}`), the context and the parameters.
    #[inline(always)]
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        self.vjp(x, ctx, cot, grads, scratch, true);
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        <Self as Bijection<S>>::scratch_len(self)
    }

    /// The conditioner sees `z_I = x_I`, so one cached pass and the transformer's VJP of
    /// `x_T = f⁻¹(z_T; θ)` per transformed feature.
    #[inline(always)]
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        self.vjp(z, ctx, cot, grads, scratch, false);
    }

    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self);
        let extra = self.transformer.vjp_len();
        single.max(coupling_vjp_block_scratch(&self.net, self.mask, extra, n))
    }

    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        self.vjp_block(z, ctx, cot, grads, scratch, false);
    }

    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self) + 2 * self.mask.len();
        let extra = self.transformer.vjp_len();
        single.max(coupling_vjp_block_scratch(&self.net, self.mask, extra, n))
    }

    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        self.vjp_block(x, ctx, cot, grads, scratch, true);
    }
}
