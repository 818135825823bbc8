//! Affine coupling layers: RealNVP (Dinh et al. 2017) and its additive special case NICE
//! (Dinh et al. 2015).
//!
//! A binary mask splits the features into identity (conditioning) features `x_I` and transformed
//! features `x_T`. A conditioner `net([x_I, c])` (identity features in index order, then the
//! context) gives, for the k-th transformed feature (in index order), a shift `t_k` and a raw scale
//! `a_k`; in the density direction (data → base, nflows' `forward`)
//!
//! `z_I = x_I`,   `z_{T,k} = x_{T,k} · s(a_k) + t_k`,   log|det ∂z/∂x| = Σ_k ln s(a_k),
//!
//! and in the sampling direction `x_{T,k} = (z_{T,k} − t_k) / s(a_k)` (the same network pass,
//! since `z_I = x_I`). Both directions take one network pass.
//!
//! - RealNVP (`additive = false`): `2 · n_T` network outputs, feature-major (`out[2k + j]`, `j`
//!   from [`AffineLayout`]); `s(a)` from [`AffineScale`] (nflows' coupling uses
//!   `AffineScale::Sigmoid { eps: 1e-3 }`).
//! - NICE (`additive = true`): `n_T` outputs, `out[k] = t_k`, `s ≡ 1`, log-det 0; `scale` and
//!   `layout` are ignored.
//!
//! Importing nflows: its `AffineCouplingTransform` marks *transformed* features with `mask > 0`
//! (here `true`/non-zero marks *identity* features) and its network output is block-major,
//! `[shift (n_T), raw scale (n_T)]`; the importer must interleave the rows of the last layer into
//! the feature-major order above.
//!
//! Parameters: the conditioner's ([`Mlp`], sizes `[n_I + C, …, per · n_T]`, `per` = 2 or 1).
//! The network needs at least one input (`n_I + C ≥ 1`; [`Mlp`] cannot have zero-width layers,
//! which the model validator rejects).

use crate::block;
use crate::lanes::{Lanes, Vals};
use crate::layers::affine::{add_ldj, affine_map, AffineLayout, AffineScale};
use crate::layers::blockwise::{self, BlockStep};
use crate::layers::Bijection;
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

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

/// The scratch of a coupling layer's VJP, carved by [`coupling_forward_cached`].
pub(crate) struct CouplingVjp<'s, S> {
    /// The identity features, in index order.
    pub xid: &'s mut [S],
    /// Their cotangent.
    pub g_xid: &'s mut [S],
    /// The conditioner's output.
    pub out: &'s mut [S],
    /// Its cotangent.
    pub g_out: &'s mut [S],
    /// The conditioner's cache for its backward pass.
    pub cache: &'s mut [S],
    /// The rest of the scratch.
    pub rest: &'s mut [S],
}

/// The first half of a coupling layer's VJP: carves `scratch`, gathers the identity features of
/// `x` and runs the conditioner `net` (`n_out` outputs) on them and `ctx`, keeping its cache.
pub(crate) fn coupling_forward_cached<'s, S: Real, W: Weight, M: MaskBit>(
    net: &Mlp<'_, W>,
    mask: &[M],
    x: &[S],
    ctx: &[S],
    n_out: usize,
    scratch: &'s mut [S],
) -> CouplingVjp<'s, S> {
    let n_id = mask.iter().filter(|m| m.is_identity()).count();
    let (xid, rest) = slicing::split_mut(scratch, n_id);
    let (g_xid, rest) = slicing::split_mut(rest, n_id);
    let (out, rest) = slicing::split_mut(rest, n_out);
    let (g_out, rest) = slicing::split_mut(rest, n_out);
    let (cache, rest) = slicing::split_mut(rest, net.cache_len());
    gather(mask, x, xid);
    net.forward_cached(xid, ctx, out, cache);
    CouplingVjp {
        xid,
        g_xid,
        out,
        g_out,
        cache,
        rest,
    }
}

/// Scratch of [`coupling_vjp_block`] for `n` samples (`extra` elements for the step).
pub(crate) fn coupling_vjp_block_scratch<W: Weight, M: MaskBit>(
    net: &Mlp<'_, W>,
    mask: &[M],
    extra: usize,
    n: usize,
) -> usize {
    let n_id = mask.iter().filter(|m| m.is_identity()).count();
    let passes = net
        .block_forward_cached_scratch_len(n)
        .max(net.block_backward_scratch_len(n));
    2 * n * (n_id + net.n_out()) + net.block_cache_len(n) + extra + passes
}

/// The VJP of a coupling layer for a block of `N` samples (parameter gradients added in sample
/// order into `g_params` when given): the conditioner's cached forward and backward run once for
/// the block; `step(x, g_z, out, g_out,
/// g_x, extra)` is the layer's elementwise part for one sample (it writes the transformed
/// features of `g_x` and `g_out`); the identity features get `g_z` plus the network's gradient,
/// as in the single-sample VJPs.
#[allow(clippy::too_many_arguments)]
#[inline]
pub(crate) fn coupling_vjp_block<S: Real, W: Weight, M: MaskBit, const N: usize>(
    net: &Mlp<'_, W>,
    mask: &[M],
    extra: usize,
    x: [&[S]; N],
    ctx: [&[S]; N],
    g_z: [&[S]; N],
    mut g_x: [&mut [S]; N],
    g_ctx: [&mut [S]; N],
    g_params: Option<&mut [S]>,
    scratch: &mut [S],
    step: impl Fn(&[S], &[S], &[S], &mut [S], &mut [S], &mut [S]),
) {
    let n_id = mask.iter().filter(|m| m.is_identity()).count();
    let n_out = net.n_out();
    let Some((xid, rest)) = scratch.split_at_mut_checked(N * n_id) else {
        return;
    };
    let Some((g_xid, rest)) = rest.split_at_mut_checked(N * n_id) else {
        return;
    };
    let Some((out, rest)) = rest.split_at_mut_checked(N * n_out) else {
        return;
    };
    let Some((g_out, rest)) = rest.split_at_mut_checked(N * n_out) else {
        return;
    };
    let Some((cache, rest)) = rest.split_at_mut_checked(net.block_cache_len(N)) else {
        return;
    };
    let Some((extra, rest)) = rest.split_at_mut_checked(extra) else {
        return;
    };
    for (xs, a) in x.iter().zip(block::views_mut::<S, N>(xid, n_id)) {
        gather(mask, xs, a);
    }
    let a = block::views::<S, N>(xid, n_id);
    net.forward_cached_block(a, ctx, block::views_mut::<S, N>(out, n_out), cache, rest);
    let per_sample = x.iter().zip(g_z).zip(block::views::<S, N>(out, n_out));
    let per_sample = per_sample
        .zip(block::views_mut::<S, N>(g_out, n_out))
        .zip(g_x.iter_mut());
    for ((((xs, gz), o), go), gx) in per_sample {
        step(xs, gz, o, go, gx, extra);
    }
    g_xid.fill(S::ZERO);
    let g_a = block::views_mut::<S, N>(g_xid, n_id);
    net.backward_block(
        a,
        ctx,
        cache,
        block::views::<S, N>(g_out, n_out),
        g_a,
        g_ctx,
        g_params,
        rest,
    );
    for ((gx, gz), ga) in g_x.iter_mut().zip(g_z).zip(block::views::<S, N>(g_xid, n_id)) {
        let identity = gx
            .iter_mut()
            .zip(gz.iter())
            .zip(mask)
            .filter(|(_, m)| m.is_identity());
        for (((gi, &gzi), _), &gai) in identity.zip(ga) {
            *gi = gzi + gai;
        }
    }
}

/// An affine (or additive) coupling layer (see the module docs).
#[derive(Clone, Copy, Debug)]
pub struct AffineCoupling<'a, W, M = bool> {
    /// The conditioner: `n_I + C` inputs (identity features in index order, then the context),
    /// `2 n_T` outputs (`n_T` when `additive`).
    pub net: Mlp<'a, W>,
    /// One entry per feature (D = `mask.len()`): identity (`true`) or transformed (`false`).
    pub mask: &'a [M],
    /// Scale parameterization (RealNVP only).
    pub scale: AffineScale,
    /// Output layout (RealNVP only).
    pub layout: AffineLayout,
    /// NICE: shift only.
    pub additive: bool,
}

impl<'a, W: Weight, M: MaskBit> AffineCoupling<'a, W, M> {
    /// Number of identity features `n_I`.
    pub fn n_identity(&self) -> usize {
        self.mask.iter().filter(|m| m.is_identity()).count()
    }

    /// The elementwise part of the VJP given the conditioner's output `out`: writes `g_x` of the
    /// transformed features (`g_z · s`) and the cotangent `g_out` of the output.
    #[inline(always)]
    fn vjp_step<S: Real>(&self, x: &[S], g_z: &[S], g_ldj: S, out: &[S], g_out: &mut [S], g_x: &mut [S]) {
        let per = self.per();
        let mut outs = slicing::rows(out, per).zip(slicing::rows_mut(g_out, per));
        for (((gx, &gz), &xi), m) in g_x.iter_mut().zip(g_z).zip(x).zip(self.mask) {
            if m.is_identity() {
                continue;
            }
            let Some((o, g_o)) = outs.next() else {
                break;
            };
            let (_, s, _, dls) = self.affine(o);
            *gx = gz * s;
            if self.additive {
                slicing::copy(g_o, &[gz]);
            } else {
                self.layout.join(g_o, gz, (gz * xi * s + g_ldj) * dls);
            }
        }
    }

    /// The sampling direction's elementwise VJP (`x_T = (z_T − t) / s`, ℓ = −Σ ln s): writes
    /// `g_z` of the transformed features (`g_x / s`) and the cotangents `∂L/∂t = −g_x / s`,
    /// `∂L/∂a = −(g_x x_T + g_ℓ) d ln s/da` of the output.
    #[inline(always)]
    fn sample_vjp_step<S: Real>(
        &self,
        z: &[S],
        g_x: &[S],
        g_ldj: S,
        out: &[S],
        g_out: &mut [S],
        g_z: &mut [S],
    ) {
        let per = self.per();
        let mut outs = slicing::rows(out, per).zip(slicing::rows_mut(g_out, per));
        for (((gz, &gx), &zi), m) in g_z.iter_mut().zip(g_x).zip(z).zip(self.mask) {
            if m.is_identity() {
                continue;
            }
            let Some((o, g_o)) = outs.next() else {
                break;
            };
            let (t, s, _, dls) = self.affine(o);
            *gz = gx / s;
            if self.additive {
                slicing::copy(g_o, &[-gx]);
            } else {
                let xi = (zi - t) / s;
                self.layout.join(g_o, -*gz, -(gx * xi + g_ldj) * dls);
            }
        }
    }

    /// Either direction's VJP: the conditioner's cached forward, `step`, its backward into the
    /// identity features (added to `g_dst`'s), the context and the parameters.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn vjp_with<S: Real>(
        &self,
        src: &[S],
        ctx: &[S],
        g_dst: &[S],
        g_src: &mut [S],
        g_ctx: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
        step: impl FnOnce(&[S], &mut [S], &mut [S]),
    ) {
        let v = coupling_forward_cached(&self.net, self.mask, src, ctx, self.net.n_out(), scratch);
        step(v.out, v.g_out, g_src);
        v.g_xid.fill(S::ZERO);
        self.net
            .backward(v.xid, ctx, v.cache, v.g_out, v.g_xid, g_ctx, g_params, v.rest);
        let identity = g_src
            .iter_mut()
            .zip(g_dst)
            .zip(self.mask)
            .filter(|(_, m)| m.is_identity());
        for (((gs, &gd), _), &gi) in identity.zip(v.g_xid.iter()) {
            *gs = gd + gi;
        }
    }

    /// Network outputs per transformed feature: 1 (NICE) or 2 (RealNVP).
    #[inline]
    fn per(&self) -> usize {
        if self.additive {
            1
        } else {
            2
        }
    }

    /// `(t, s, ln s, d ln s / da)` of one transformed feature from its network outputs `o`
    /// (`per()` values).
    #[inline]
    fn affine<S: Real>(&self, o: &[S]) -> (S, S, S, S) {
        self.affine_with::<S, true>(o)
    }

    /// `(t, s, ln s)` of one transformed feature: [`Self::affine`] without the derivative (the
    /// same bits), for the forward and inverse passes.
    #[inline(always)]
    fn shift_scale<S: Real>(&self, o: &[S]) -> (S, S, S) {
        let (t, s, ls, _) = self.affine_with::<S, false>(o);
        (t, s, ls)
    }

    /// `(t, s, ln s, d ln s / da)`, the derivative only when `GRAD` (else 0).
    #[inline(always)]
    fn affine_with<S: Real, const GRAD: bool>(&self, o: &[S]) -> (S, S, S, S) {
        if self.additive {
            (o.first().copied().unwrap_or(S::NAN), S::ONE, S::ZERO, S::ZERO)
        } else {
            let (t, a) = self.layout.split(o);
            let (s, ls, dls) = self.scale.eval_with::<S, GRAD>(a);
            (t, s, ls, dls)
        }
    }

    /// Shared by both directions: identity features pass through, transformed ones go through
    /// `y ↦ y · s + t` (`density`) or `y ↦ (y − t) / s`; returns ±Σ ln s.
    #[inline(always)]
    fn apply<S: Real>(&self, src: &[S], ctx: &[S], dst: &mut [S], scratch: &mut [S], density: bool) -> S {
        let n_id = self.n_identity();
        let n_out = self.net.n_out();
        let (xid, rest) = slicing::split_mut(scratch, n_id);
        let (out, rest) = slicing::split_mut(rest, n_out);
        gather(self.mask, src, xid);
        self.net.forward(xid, ctx, out, rest);
        self.finish(src, out, dst, density)
    }

    /// The elementwise part of [`Self::apply`] given the network output `out`.
    #[inline(always)]
    fn finish<S: Real>(&self, src: &[S], out: &[S], dst: &mut [S], density: bool) -> S {
        let mut ldj = S::ZERO;
        let mut outs = slicing::rows(out, self.per());
        for ((di, &si), m) in dst.iter_mut().zip(src).zip(self.mask) {
            if m.is_identity() {
                *di = si;
            } else if let Some(o) = outs.next() {
                let (t, s, ls) = self.shift_scale(o);
                if density {
                    *di = si * s + t;
                    ldj += ls;
                } else {
                    *di = (si - t) / s;
                    ldj -= ls;
                }
            }
        }
        ldj
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
        let (n_id, k) = (self.n_identity(), 0);
        let net = &self.net;
        blockwise::one_pass(self, density, net, n_id, k, src, ctx, dst, ldj, scratch, gather);
    }
}

impl<W: Weight, M: MaskBit> BlockStep for AffineCoupling<'_, W, M> {
    #[inline(always)]
    fn step_one<S: Real>(&self, x: &[S], o: &[S], z: &mut [S], _: &mut [S], density: bool) -> S {
        self.finish(x, o, z, density)
    }

    /// [`Self::finish`] of each sample of a block, in lanes (`flag`: the density direction).
    #[inline(always)]
    fn step_lanes<S: Real, const N: usize>(
        &self,
        src: [&[S]; N],
        out: &[[S; N]],
        dst: &mut [&mut [S]; N],
        density: bool,
    ) -> [S; N] {
        let per = self.per();
        let (ti, ai) = self.layout.indices();
        let mut ldj = Lanes::splat(S::ZERO);
        let mut r = 0;
        for (i, m) in self.mask.iter().enumerate() {
            let v = Lanes::column(&src, i);
            if m.is_identity() {
                v.store_column(dst, i);
                continue;
            }
            let (t, s, ls) = if self.additive {
                (Lanes::at(out, r), Lanes::splat(S::ONE), Lanes::splat(S::ZERO))
            } else {
                let (t, a) = (Lanes::at(out, r * per + ti), Lanes::at(out, r * per + ai));
                let (s, ls) = self.scale.scale(a);
                (t, s, ls)
            };
            affine_map(v, t, s, density).store_column(dst, i);
            ldj = add_ldj(ldj, ls, density);
            r += 1;
        }
        ldj.0
    }
}

impl<'a, S: Real, W: Weight, M: MaskBit> Bijection<S> for AffineCoupling<'a, W, M> {
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
        let n_id = self.n_identity();
        let n_out = self.net.n_out();
        let pass = n_id + n_out + self.net.scratch_len();
        let vjp = 2 * n_id + 2 * n_out + self.net.cache_len() + self.net.backward_scratch_len();
        pass.max(vjp)
    }

    /// `z_I = x_I`, `z_T = x_T · s + t`; returns Σ ln s.
    #[inline(always)]
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        self.apply(x, ctx, z, scratch, true)
    }

    /// `x_I = z_I`, `x_T = (z_T − t) / s`; returns −Σ ln s.
    #[inline(always)]
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        self.apply(z, ctx, x, scratch, false)
    }

    fn block_scratch_len(&self, n: usize) -> usize {
        blockwise::scratch_len(&self.net, self.n_identity(), 0, n)
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

    /// `g_{x_T} = g_{z_T} s`; the network cotangents are `∂L/∂t_k = g_{z_T,k}` and
    /// `∂L/∂a_k = (g_{z_T,k} x_{T,k} s_k + g_ℓ) d ln s/da`, back-propagated into
    /// `g_{x_I}` (added to `g_{z_I}`), the context and the network parameters.
    #[inline(always)]
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
        let step = |out: &[S], g_out: &mut [S], g_x: &mut [S]| self.vjp_step(x, g_z, g_ldj, out, g_out, g_x);
        self.vjp_with(x, ctx, g_z, g_x, g_ctx, g_params, scratch, step);
    }

    fn forward_vjp_scratch_len(&self) -> usize {
        <Self as Bijection<S>>::scratch_len(self)
    }

    /// `g_{z_T} = g_{x_T} / s`; the network cotangents are `∂L/∂t_k = −g_{x_T,k} / s_k` and
    /// `∂L/∂a_k = −(g_{x_T,k} x_{T,k} + g_ℓ) d ln s/da`, back-propagated into `g_{z_I}` (added to
    /// `g_{x_I}`), the context and the network parameters (the conditioner sees `z_I = x_I`).
    #[inline(always)]
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
        let step =
            |out: &[S], g_out: &mut [S], g_z: &mut [S]| self.sample_vjp_step(z, g_x, g_ldj, out, g_out, g_z);
        self.vjp_with(z, ctx, g_x, g_z, g_ctx, g_params, scratch, step);
    }

    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self);
        single.max(coupling_vjp_block_scratch(&self.net, self.mask, 0, n))
    }

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
        let step = |z: &[S], g_x: &[S], out: &[S], g_out: &mut [S], g_z: &mut [S], _: &mut [S]| {
            self.sample_vjp_step(z, g_x, g_ldj, out, g_out, g_z);
        };
        let (net, mask) = (&self.net, self.mask);
        coupling_vjp_block(net, mask, 0, z, ctx, g_x, g_z, g_ctx, g_params, scratch, step);
    }

    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let single = <Self as Bijection<S>>::scratch_len(self) + 2 * <Self as Bijection<S>>::dim(self);
        single.max(coupling_vjp_block_scratch(&self.net, self.mask, 0, n))
    }

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
        let step = |x: &[S], g_z: &[S], out: &[S], g_out: &mut [S], g_x: &mut [S], _: &mut [S]| {
            self.vjp_step(x, g_z, g_ldj, out, g_out, g_x);
        };
        let (net, mask) = (&self.net, self.mask);
        coupling_vjp_block(net, mask, 0, x, ctx, g_z, g_x, g_ctx, g_params, scratch, step);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::boxed::Box;
    use std::vec::Vec;

    use super::*;
    use crate::nn::mlp::n_params;
    use crate::nn::Activation;
    use crate::testing::{builder, check_bijection, Lcg, Report};

    /// Masks for dimension `d`: alternating, first half identity, all transformed, and a random one.
    fn masks(d: usize, rng: &mut Lcg) -> Vec<Vec<bool>> {
        std::vec![
            std::vec![false; d],
            (0..d).map(|i| i % 2 == 0).collect(),
            (0..d).map(|i| i < d / 2).collect(),
            (0..d).map(|_| rng.uniform() < 0.5).collect(),
        ]
    }

    fn leak<T>(v: Vec<T>) -> &'static [T] {
        Box::leak(v.into_boxed_slice())
    }

    #[test]
    fn affine_coupling_passes_finite_difference_checks() {
        let scales = [
            AffineScale::SoftclipExp {
                bound: -(1e-3f64).ln(),
            },
            AffineScale::SoftplusEps { eps: 1e-3 },
            AffineScale::Sigmoid { eps: 1e-3 },
        ];
        let mut worst = Report::default();
        let mut worst_nice = Report::default();
        for seed in 0..3u64 {
            let mut rng = Lcg(600 + seed);
            for d in [1usize, 2, 3, 5] {
                for mask in masks(d, &mut rng) {
                    let mask = leak(mask);
                    let n_id = mask.iter().filter(|&&m| m).count();
                    let n_tr = d - n_id;
                    if n_tr == 0 {
                        continue; // all identity: nothing to test
                    }
                    for (case, additive) in [(0usize, false), (1, false), (2, false), (0, true)] {
                        // A conditioner needs at least one input.
                        let c = if n_id == 0 {
                            2
                        } else {
                            [0usize, 2][(seed as usize + case) % 2]
                        };
                        let per = if additive { 1 } else { 2 };
                        let sizes = leak(std::vec![n_id + c, 6, 5, per * n_tr]);
                        let params: Vec<f64> = (0..n_params(sizes)).map(|_| rng.normal() * 0.5).collect();
                        let scale = scales[case];
                        let layout = if case % 2 == 0 {
                            AffineLayout::ShiftScale
                        } else {
                            AffineLayout::ScaleShift
                        };
                        let act = [Activation::Tanh, Activation::Silu, Activation::Elu][case];
                        let build = builder(move |p| {
                            Box::new(AffineCoupling {
                                net: Mlp {
                                    sizes,
                                    params: p,
                                    activation: act,
                                    residual: false,
                                },
                                mask,
                                scale,
                                layout,
                                additive,
                            })
                        });
                        let x = rng.normals(d);
                        let ctx = rng.normals(c);
                        let r = check_bijection(&build, &params, &x, &ctx);
                        assert!(
                            r.roundtrip < 1e-10 && r.ldj_cancel < 1e-10,
                            "{scale:?} additive={additive} {mask:?}: {r:?}"
                        );
                        assert!(
                            r.max_fd() < 1e-6,
                            "{scale:?} additive={additive} {mask:?} c={c}: {r:?}"
                        );
                        if additive {
                            worst_nice.merge(&r);
                        } else {
                            worst.merge(&r);
                        }
                    }
                }
            }
        }
        std::eprintln!("affine_coupling worst (RealNVP): {worst:?}");
        std::eprintln!("affine_coupling worst (NICE): {worst_nice:?}");
    }

    #[test]
    fn affine_coupling_u16_mask_matches_bool_mask_and_hand_computation() {
        let mut rng = Lcg(77);
        let sizes = [2usize, 4, 4];
        let params: Vec<f64> = (0..n_params(&sizes)).map(|_| rng.normal()).collect();
        let net = Mlp {
            sizes: &sizes,
            params: &params[..],
            activation: Activation::Tanh,
            residual: false,
        };
        let mb = [true, false, true, false];
        let mu = [1u16, 0, 1, 0];
        let scale = AffineScale::SoftplusEps { eps: 1e-3 };
        let layout = AffineLayout::ScaleShift;
        let lb = AffineCoupling {
            net,
            mask: &mb[..],
            scale,
            layout,
            additive: false,
        };
        let lu = AffineCoupling {
            net,
            mask: &mu[..],
            scale,
            layout,
            additive: false,
        };
        let x = [0.3, -1.0, 2.0, 0.5];
        let mut s = std::vec![0.0; Bijection::<f64>::scratch_len(&lb)];
        let (mut z1, mut z2) = ([0.0; 4], [0.0; 4]);
        let l1 = lb.inverse(&x, &[], &mut z1, &mut s);
        let l2 = lu.inverse(&x, &[], &mut z2, &mut s);
        assert_eq!((z1, l1), (z2, l2));
        // By hand: out = net([x0, x2]); feature 1 uses out[0..2], feature 3 out[2..4], each
        // [raw scale, shift] (ScaleShift).
        let mut out = [0.0; 4];
        let mut ns = [0.0; 8];
        net.forward(&[x[0], x[2]], &[], &mut out, &mut ns);
        let sp = |a: f64| crate::math::softplus(a) + 1e-3;
        assert_eq!((z1[0], z1[2]), (x[0], x[2]));
        assert!((z1[1] - (x[1] * sp(out[0]) + out[1])).abs() < 1e-14);
        assert!((z1[3] - (x[3] * sp(out[2]) + out[3])).abs() < 1e-14);
        assert!((l1 - (sp(out[0]).ln() + sp(out[2]).ln())).abs() < 1e-14);
        // NICE: one shift per transformed feature, log-det 0.
        let sizes2 = [2usize, 4, 2];
        let p2: Vec<f64> = (0..n_params(&sizes2)).map(|_| rng.normal()).collect();
        let net2 = Mlp {
            sizes: &sizes2,
            params: &p2[..],
            activation: Activation::Tanh,
            residual: false,
        };
        let nice = AffineCoupling {
            net: net2,
            mask: &mu[..],
            scale,
            layout,
            additive: true,
        };
        let mut out2 = [0.0; 2];
        net2.forward(&[x[0], x[2]], &[], &mut out2, &mut ns);
        let mut s2 = std::vec![0.0; Bijection::<f64>::scratch_len(&nice)];
        let ldj = nice.inverse(&x, &[], &mut z1, &mut s2);
        assert_eq!(ldj, 0.0);
        assert!((z1[1] - (x[1] + out2[0])).abs() < 1e-14 && (z1[3] - (x[3] + out2[1])).abs() < 1e-14);
    }
}
