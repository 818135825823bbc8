//! The VJPs of an autoregressive layer, whatever its transformer: the one-pass map `F` for one
//! sample and for a block (the conditioner's cached forward and backward once per block, the
//! transformer's VJP per sample), and the D-pass inverse by implicit differentiation
//! (`iaf_vjp`).

use super::Autoregressive;
use crate::block;
use crate::layers::transformer::Transformer;
use crate::layers::{Bijection, BlockGrads, Cotangent, Grads};
use crate::{slicing, Real, Weight};

impl<'a, W: Weight, T: Transformer> Autoregressive<'a, W, T> {
    /// The transformer's part of the VJP of `F` for one sample: with the conditioner's outputs
    /// `out` at `y`, writes `g_y` (the direct path `∂zᵢ/∂yᵢ`) and `g_out`, the cotangent of `out`
    /// (the conditioner's backward pass adds the rest of `g_y`).
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn pass_vjp_step<S: Real>(
        &self,
        y: &[S],
        out: &[S],
        g_z: &[S],
        g_ldj: S,
        g_y: &mut [S],
        g_out: &mut [S],
        scratch: &mut [S],
    ) {
        let p = self.transformer.params_per_feature();
        let features = y.iter().zip(g_z).zip(slicing::rows(out, p));
        let features = features.zip(slicing::rows_mut(g_out, p)).zip(g_y.iter_mut());
        let features = features.map(|((((x, gz), raw), g_raw), gy)| (x, gz, raw, g_raw, gy));
        self.transformer.vjp(features, g_ldj, scratch, true);
    }

    /// VJP of `F` at `y` for cotangents `(g_z, g_ldj)`: writes `g_y`, adds into `g_ctx` and
    /// `g_params` (the conditioner's cached forward, the transformer's step, the conditioner's
    /// backward).
    #[inline(always)]
    pub(super) fn pass_vjp<S: Real>(
        &self,
        y: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_z, g_ldj) = cot.into_parts();
        let (g_y, g_ctx, g_params) = grads.into_parts();
        let net = &self.net;
        let (out, rest) = slicing::split_mut(scratch, self.n_out());
        let (g_out, rest) = slicing::split_mut(rest, self.n_out());
        let (cache, rest) = slicing::split_mut(rest, net.cache_len());
        net.forward_cached(y, ctx, out, cache);
        self.pass_vjp_step(y, out, g_z, g_ldj, g_y, g_out, rest);
        net.backward(y, ctx, cache, g_out, Grads::new(g_y, g_ctx, g_params), rest);
    }

    /// Scratch of `pass_vjp_block` for `n` samples: the outputs and their cotangents, the
    /// conditioner's cache, then the largest of its passes and the transformer's VJP.
    pub(super) fn pass_vjp_block_len(&self, n: usize) -> usize {
        let net = &self.net;
        let passes = (net.block_forward_cached_scratch_len(n))
            .max(net.block_backward_scratch_len(n))
            .max(self.transformer.vjp_len());
        2 * n * self.n_out() + net.block_cache_len(n) + passes
    }

    /// The VJP of `F` for a block of samples (the network's cached forward and backward once
    /// for the block), adding the samples' parameter gradients in order into `g_params` when
    /// given; bit for bit the single-sample VJPs called sample after sample.
    pub(super) fn pass_vjp_block<S: Real, const N: usize>(
        &self,
        y: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (g_z, g_ldj) = cot.into_parts();
        let (mut g_y, g_ctx, g_params) = grads.into_parts();
        let net = &self.net;
        let w = self.n_out();
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
        net.backward_block(y, ctx, cache, g_out, Grads::new(g_y, g_ctx, g_params), rest);
    }

    /// `iaf_vjp` sample after sample (the block VJP of the D-pass inverse), parameter gradients
    /// added in sample order.
    pub(super) fn iaf_vjp_each<S: Real, const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (g_u, g_ldj) = cot.into_parts();
        let (g_x, g_ctx, mut g_params) = grads.into_parts();
        let per_sample = x.into_iter().zip(ctx).zip(g_u).zip(g_x).zip(g_ctx);
        for ((((xs, cs), gu), gx), gc) in per_sample {
            self.iaf_vjp(
                xs,
                cs,
                Cotangent::new(gu, g_ldj),
                Grads::new(gx, gc, g_params.as_deref_mut()),
                scratch,
            );
        }
    }

    /// VJP of `u = F⁻¹(x)` with ℓ = −Σ ln Fᵢ'(uᵢ) (the `inverse` of an IAF layer, the `forward`
    /// of a MAF layer), by implicit differentiation: with `w = g_u + ∂ℓ/∂u · g_ℓ`, solve
    /// `vᵀ J_F(u) = wᵀ` (triangular; D sweeps of F's VJP), then `g_x = v` and
    /// `g_θ = ∂ℓ/∂θ · g_ℓ − vᵀ ∂F/∂θ` (likewise for the context).
    ///
    /// `scratch`: `u, w, v, tmp, diag` (D each), a context buffer, then what the passes need.
    pub(super) fn iaf_vjp<S: Real>(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_u, g_ldj) = cot.into_parts();
        let (g_x, g_ctx, mut g_params) = grads.into_parts();
        let maf = self.maf();
        let d = self.dim;
        let (u, rest) = slicing::split_mut(scratch, d);
        let (w, rest) = slicing::split_mut(rest, d);
        let (v, rest) = slicing::split_mut(rest, d);
        let (tmp, rest) = slicing::split_mut(rest, d);
        let (diag, rest) = slicing::split_mut(rest, d);
        let (c_tmp, rest) = slicing::split_mut(rest, ctx.len());
        maf.forward(x, ctx, u, rest);
        // ∂ℓ/∂u and ∂ℓ/∂θ: ℓ = −ldj(F at u), so pass cotangents (0, −g_ℓ).
        tmp.fill(S::ZERO);
        maf.pass_vjp(
            u,
            ctx,
            Cotangent::new(tmp, -g_ldj),
            Grads::new(w, g_ctx, g_params.as_deref_mut()),
            rest,
        );
        for (wi, &gi) in w.iter_mut().zip(g_u) {
            *wi += gi;
        }
        self.diagonal(u, ctx, diag, rest);
        // Back substitution for vᵀJ = wᵀ: v ← (w − (vᵀJ − v∘diag)) / diag, exact after D sweeps.
        v.fill(S::ZERO);
        for _ in 0..d {
            c_tmp.fill(S::ZERO);
            maf.pass_vjp(
                u,
                ctx,
                Cotangent::new(v, S::ZERO),
                Grads::new(tmp, c_tmp, None),
                rest,
            );
            for (((vi, &ti), &si), &wi) in v.iter_mut().zip(tmp.iter()).zip(diag.iter()).zip(w.iter()) {
                let off = ti - *vi * si;
                *vi = (wi - off) / si;
            }
        }
        slicing::copy(g_x, v);
        for vi in v.iter_mut() {
            *vi = -*vi;
        }
        maf.pass_vjp(
            u,
            ctx,
            Cotangent::new(v, S::ZERO),
            Grads::new(tmp, g_ctx, g_params),
            rest,
        );
    }
}
