//! The VJPs of a coupling layer, whatever its transformer: one sample (the conditioner's cached
//! forward, the transformer's VJP, the conditioner's backward into the identity features) and a
//! block of samples (the conditioner's passes once for the block).

use super::{gather, Coupling, MaskBit};
use crate::block;
use crate::layers::transformer::Transformer;
use crate::layers::{BlockGrads, Cotangent, Grads};
use crate::nn::Mlp;
use crate::{slicing, Real, Weight};

impl<'a, W: Weight, T: Transformer, M: MaskBit> Coupling<'a, W, T, M> {
    /// The elementwise part of the VJP given the conditioner's output `out`: in the density
    /// direction (`density`) of `z_T = f(x_T; θ)`, else of `x_T = f⁻¹(z_T; θ)` (then `x` is `z`
    /// and `g_z` is `g_x`, and the other way round); writes the input's cotangent of the
    /// transformed features and the cotangent `g_out` of the output (the identity features' are
    /// the caller's).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn vjp_step<S: Real>(
        &self,
        x: &[S],
        g_z: &[S],
        g_ldj: S,
        out: &[S],
        g_out: &mut [S],
        g_x: &mut [S],
        scratch: &mut [S],
        density: bool,
    ) {
        let p = self.transformer.params_per_feature();
        let transformed = x.iter().zip(g_z).zip(g_x.iter_mut()).zip(self.mask);
        let transformed = transformed.filter(|(_, m)| !m.is_identity());
        let raws = slicing::rows(out, p).zip(slicing::rows_mut(g_out, p));
        let features = transformed.zip(raws);
        let features = features.map(|((((x, gz), gx), _), (raw, g_raw))| (x, gz, raw, g_raw, gx));
        self.transformer.vjp(features, g_ldj, scratch, density);
    }

    /// Either direction's VJP (see [`Self::vjp_step`]): the conditioner's cached forward on the
    /// identity features of `src`, the step, the backward into the identity features (added to
    /// `g_dst`'s), the context and the parameters.
    #[inline(always)]
    pub(super) fn vjp<S: Real>(
        &self,
        src: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
        density: bool,
    ) {
        let (g_dst, g_ldj) = cot.into_parts();
        let (g_src, g_ctx, g_params) = grads.into_parts();
        let v = coupling_forward_cached(&self.net, self.mask, src, ctx, self.n_out(), scratch);
        self.vjp_step(src, g_dst, g_ldj, v.out, v.g_out, g_src, v.rest, density);
        v.g_xid.fill(S::ZERO);
        self.net.backward(
            v.xid,
            ctx,
            v.cache,
            v.g_out,
            Grads::new(v.g_xid, g_ctx, g_params),
            v.rest,
        );
        let identity = g_src
            .iter_mut()
            .zip(g_dst)
            .zip(self.mask)
            .filter(|(_, m)| m.is_identity());
        for (((gs, &gd), _), &gi) in identity.zip(v.g_xid.iter()) {
            *gs = gd + gi;
        }
    }

    /// [`Self::vjp`] for a block of `N` samples (parameter gradients added in sample order into
    /// `grads.params` when given): the conditioner's cached forward and backward run once for the
    /// block, [`Self::vjp_step`] per sample; the identity features get `g_z` plus the network's
    /// gradient, as in the single-sample VJP.
    #[inline]
    pub(super) fn vjp_block<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
        density: bool,
    ) {
        let (net, mask) = (&self.net, self.mask);
        let extra = self.transformer.vjp_len();
        let (g_z, g_ldj) = cot.into_parts();
        let (mut g_x, g_ctx, g_params) = grads.into_parts();
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
            self.vjp_step(xs, gz, g_ldj, o, go, gx, extra, density);
        }
        g_xid.fill(S::ZERO);
        let g_a = block::views_mut::<S, N>(g_xid, n_id);
        net.backward_block(
            a,
            ctx,
            cache,
            block::views::<S, N>(g_out, n_out),
            Grads::new(g_a, g_ctx, g_params),
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
}

/// The scratch of a coupling layer's VJP, carved by [`coupling_forward_cached`].
pub(super) struct CouplingVjp<'s, S> {
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
pub(super) fn coupling_forward_cached<'s, S: Real, W: Weight, M: MaskBit>(
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

/// Scratch of [`Coupling::vjp_block`] for `n` samples (`extra` elements for the step).
pub(super) fn coupling_vjp_block_scratch<W: Weight, M: MaskBit>(
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
