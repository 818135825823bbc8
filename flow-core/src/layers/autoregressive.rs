//! What every autoregressive layer shares, whatever its univariate transformer (affine or spline):
//! the [`Direction`] of the one-pass map, the block VJP of that pass (the conditioner's cached
//! forward and backward once per block, the transformer's step per sample), and the VJP of the
//! D-pass inverse by implicit differentiation (`iaf_vjp`).
//!
//! A layer gives its conditioner (`Autoregressive::net`) and the transformer's per-sample step
//! (`Autoregressive::pass_vjp_step`); the rest is provided here.

use serde::{Deserialize, Serialize};

use crate::block;
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

/// Which direction the one-pass map runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    /// Masked autoregressive flow: one pass for density.
    Maf,
    /// Inverse autoregressive flow: one pass for sampling.
    Iaf,
}

/// An autoregressive layer (affine or spline) with what [`iaf_vjp`] needs besides [`Bijection`].
pub(crate) trait Autoregressive<S: Real>: Bijection<S> + Sized {
    /// The same layer in the MAF direction: its `inverse` is the one-pass map `F`, its `forward`
    /// `F⁻¹` and its `inverse_vjp` the VJP of `F`.
    fn maf(&self) -> Self;

    /// The diagonal of the Jacobian of `F` at `u` (`∂Fᵢ/∂uᵢ`, which depends on `u<ᵢ` only) into
    /// `diag`.
    fn diagonal(&self, u: &[S], ctx: &[S], diag: &mut [S], scratch: &mut [S]);

    /// Whether the layer runs in the MAF direction (its `inverse` is the one-pass map `F`).
    fn is_maf(&self) -> bool;

    /// The weight type of the conditioner.
    type W: Weight;

    /// The MADE conditioner: `D + C` inputs, [`Autoregressive::net_outputs`] outputs.
    fn net(&self) -> &Mlp<'_, Self::W>;

    /// Conditioner outputs per sample: the transformer's parameters of all D features
    /// (feature-major).
    fn net_outputs(&self) -> usize;

    /// Scratch of [`Autoregressive::pass_vjp_step`].
    fn pass_vjp_step_len(&self) -> usize;

    /// The transformer's part of the VJP of `F` for one sample: with the conditioner's outputs
    /// `out` at `y`, writes `g_y` (the direct path `∂zᵢ/∂yᵢ`) and `g_out`, the cotangent of `out`
    /// (the conditioner's backward pass adds the rest of `g_y`).
    #[allow(clippy::too_many_arguments)]
    fn pass_vjp_step(
        &self,
        y: &[S],
        out: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_out: &mut [S],
        scratch: &mut [S],
    );

    /// VJP of `F` at `y` for cotangents `(g_z, g_ldj)`: writes `g_y`, adds into `g_ctx` and
    /// `g_params` (the conditioner's cached forward, the transformer's step, the conditioner's
    /// backward).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn pass_vjp(
        &self,
        y: &[S],
        ctx: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let net = self.net();
        let (out, rest) = slicing::split_mut(scratch, self.net_outputs());
        let (g_out, rest) = slicing::split_mut(rest, self.net_outputs());
        let (cache, rest) = slicing::split_mut(rest, net.cache_len());
        net.forward_cached(y, ctx, out, cache);
        self.pass_vjp_step(y, out, g_z, g_ldj, g_y, g_out, rest);
        net.backward(y, ctx, cache, g_out, g_y, g_ctx, g_params, rest);
    }

    /// Scratch of [`Autoregressive::pass_vjp_block`] for `n` samples: the outputs and their
    /// cotangents, the conditioner's cache, then the largest of its passes and the step.
    fn pass_vjp_block_len(&self, n: usize) -> usize {
        let net = self.net();
        let passes = (net.block_forward_cached_scratch_len(n))
            .max(net.block_backward_scratch_len(n))
            .max(self.pass_vjp_step_len());
        2 * n * self.net_outputs() + net.block_cache_len(n) + passes
    }

    /// The VJP of `F` for a block of samples (the network's cached forward and backward once
    /// for the block), adding the samples' parameter gradients in order into `g_params` when
    /// given; bit for bit the single-sample VJPs called sample after sample.
    #[allow(clippy::too_many_arguments)]
    fn pass_vjp_block<const N: usize>(
        &self,
        y: [&[S]; N],
        ctx: [&[S]; N],
        g_z: [&[S]; N],
        g_ldj: S,
        mut g_y: [&mut [S]; N],
        g_ctx: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) {
        let net = self.net();
        let w = self.net_outputs();
        let Some((out, rest)) = scratch.split_at_mut_checked(N * w) else {
            return;
        };
        let Some((g_out, rest)) = rest.split_at_mut_checked(N * w) else {
            return;
        };
        let Some((cache, rest)) = rest.split_at_mut_checked(net.block_cache_len(N)) else {
            return;
        };
        net.forward_cached_block(y, ctx, block::views_mut::<S, N>(out, w), cache, rest);
        let outs = block::views::<S, N>(out, w);
        let per_sample = y.iter().zip(outs).zip(g_z).zip(g_y.iter_mut());
        for ((((ys, o), gz), gy), go) in per_sample.zip(block::views_mut::<S, N>(g_out, w)) {
            self.pass_vjp_step(ys, o, gz, g_ldj, gy, go, rest);
        }
        let g_out = block::views::<S, N>(g_out, w);
        net.backward_block(y, ctx, cache, g_out, g_y, g_ctx, g_params, rest);
    }
}

/// [`Bijection::block_vjp_scratch_len`] of an autoregressive layer.
pub(crate) fn ar_block_vjp_scratch_len<S: Real, L: Autoregressive<S>>(layer: &L, n: usize) -> usize {
    let single = layer.scratch_len() + 2 * layer.dim();
    if layer.is_maf() {
        single.max(layer.pass_vjp_block_len(n))
    } else {
        single
    }
}

/// [`Bijection::inverse_vjp_block`] of an autoregressive layer: the block VJP of `F` in the MAF
/// direction, [`iaf_vjp`] sample by sample in the IAF direction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ar_inverse_vjp_block<S: Real, L: Autoregressive<S>, const N: usize>(
    layer: &L,
    x: [&[S]; N],
    ctx: [&[S]; N],
    g_z: [&[S]; N],
    g_ldj: S,
    g_x: [&mut [S]; N],
    g_ctx: [&mut [S]; N],
    mut g_params: Option<&mut [S]>,
    scratch: &mut [S],
) {
    if layer.is_maf() {
        return layer.pass_vjp_block(x, ctx, g_z, g_ldj, g_x, g_ctx, g_params, scratch);
    }
    let per_sample = x.into_iter().zip(ctx).zip(g_z).zip(g_x).zip(g_ctx);
    for ((((xs, cs), gz), gx), gc) in per_sample {
        iaf_vjp(layer, xs, cs, gz, g_ldj, gx, gc, g_params.as_deref_mut(), scratch);
    }
}

/// [`Bijection::block_forward_vjp_scratch_len`] of an autoregressive layer.
pub(crate) fn ar_block_forward_vjp_scratch_len<S: Real, L: Autoregressive<S>>(layer: &L, n: usize) -> usize {
    let single = layer.forward_vjp_scratch_len();
    if layer.is_maf() {
        single
    } else {
        single.max(layer.pass_vjp_block_len(n))
    }
}

/// [`Bijection::forward_vjp_block`] of an autoregressive layer: the block VJP of `F` in the IAF
/// direction (sampling is the one pass), [`iaf_vjp`] sample by sample in the MAF direction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn ar_forward_vjp_block<S: Real, L: Autoregressive<S>, const N: usize>(
    layer: &L,
    z: [&[S]; N],
    ctx: [&[S]; N],
    g_x: [&[S]; N],
    g_ldj: S,
    g_z: [&mut [S]; N],
    g_ctx: [&mut [S]; N],
    mut g_params: Option<&mut [S]>,
    scratch: &mut [S],
) {
    if !layer.is_maf() {
        return layer.pass_vjp_block(z, ctx, g_x, g_ldj, g_z, g_ctx, g_params, scratch);
    }
    let per_sample = z.into_iter().zip(ctx).zip(g_x).zip(g_z).zip(g_ctx);
    for ((((zs, cs), gx), gz), gc) in per_sample {
        iaf_vjp(layer, zs, cs, gx, g_ldj, gz, gc, g_params.as_deref_mut(), scratch);
    }
}

/// VJP of `u = F⁻¹(x)` with ℓ = −Σ ln Fᵢ'(uᵢ) (the `inverse` of an IAF layer, affine or spline), by
/// implicit differentiation: with `w = g_u + ∂ℓ/∂u · g_ℓ`, solve `vᵀ J_F(u) = wᵀ` (triangular; D
/// sweeps of F's VJP), then `g_x = v` and `g_θ = ∂ℓ/∂θ · g_ℓ − vᵀ ∂F/∂θ` (likewise for the
/// context).
///
/// `scratch`: `u, w, v, tmp, diag` (D each), a context buffer, then what the layer needs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn iaf_vjp<S: Real, L: Autoregressive<S>>(
    layer: &L,
    x: &[S],
    ctx: &[S],
    g_u: &[S],
    g_ldj: S,
    g_x: &mut [S],
    g_ctx: &mut [S],
    mut g_params: Option<&mut [S]>,
    scratch: &mut [S],
) {
    let maf = layer.maf();
    let d = maf.dim();
    let (u, rest) = slicing::split_mut(scratch, d);
    let (w, rest) = slicing::split_mut(rest, d);
    let (v, rest) = slicing::split_mut(rest, d);
    let (tmp, rest) = slicing::split_mut(rest, d);
    let (diag, rest) = slicing::split_mut(rest, d);
    let (c_tmp, rest) = slicing::split_mut(rest, ctx.len());
    maf.forward(x, ctx, u, rest);
    // ∂ℓ/∂u and ∂ℓ/∂θ: ℓ = −ldj(F at u), so pass cotangents (0, −g_ℓ).
    tmp.fill(S::ZERO);
    maf.inverse_vjp(u, ctx, tmp, -g_ldj, w, g_ctx, g_params.as_deref_mut(), rest);
    for (wi, &gi) in w.iter_mut().zip(g_u) {
        *wi += gi;
    }
    layer.diagonal(u, ctx, diag, rest);
    // Back substitution for vᵀJ = wᵀ: v ← (w − (vᵀJ − v∘diag)) / diag, exact after D sweeps.
    v.fill(S::ZERO);
    for _ in 0..d {
        c_tmp.fill(S::ZERO);
        maf.inverse_vjp(u, ctx, v, S::ZERO, tmp, c_tmp, None, rest);
        for (((vi, &ti), &si), &wi) in v.iter_mut().zip(tmp.iter()).zip(diag.iter()).zip(w.iter()) {
            let off = ti - *vi * si;
            *vi = (wi - off) / si;
        }
    }
    slicing::copy(g_x, v);
    for vi in v.iter_mut() {
        *vi = -*vi;
    }
    maf.inverse_vjp(u, ctx, v, S::ZERO, tmp, g_ctx, g_params, rest);
}
