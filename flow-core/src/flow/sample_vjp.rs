//! The VJPs of sampling: the cotangents of the noise, the context and the parameters from those
//! of a sample and its log-density (`x = F(z(ε), c)`, `log q(x) = log p_base(z) − ℓ`), for one
//! sample and for a block; the reparameterized gradients of reverse-KL training.

use super::Flow;
use crate::base::Base;
use crate::block;
use crate::layers::{Bijection, SampleHead};
use crate::layers::{Cotangent, Grads};
use crate::{slicing, Real};

impl<S: Real, L: Bijection<S>, B: Base<S>> Flow<S, L, B> {
    /// Scratch elements of [`Flow::sample_and_log_prob_vjp`].
    pub fn sample_vjp_scratch_len(&self) -> usize {
        let (d, c) = (self.dim(), self.context_dim());
        let layers = self
            .layers
            .forward_vjp_scratch_len()
            .max(self.layers.scratch_len());
        3 * d + c + self.base.scratch_len().max(layers)
    }

    /// The reparameterization gradient of [`Flow::sample_and_log_prob`] at fixed noise `eps`:
    /// for `L = g_xᵀ x + g_log_q · log q(x)` with `x = T(base(eps))` and `cot = (g_x, g_log_q)`,
    /// adds `dL/dθ` (layers, then base) into `g_params` and `dL/dc` into `g_ctx`. Reverse-KL
    /// training's gradient: with `L = log q(x) − log p*(x)`, `g_x = −∇ log p*(x)` and
    /// `g_log_q = 1`.
    ///
    /// The layers' part is [`Bijection::forward_vjp`] with `g_ℓ = −g_log_q` (`log q = log p_base(z)
    /// − ℓ`); `z` gets the base's `g_log_q ∂ log p_base/∂z` added and flows into the base's
    /// parameters through [`Base::noise_to_base_vjp`]. `scratch` needs
    /// [`Flow::sample_vjp_scratch_len`].
    pub fn sample_and_log_prob_vjp(
        &self,
        eps: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        g_ctx: &mut [S],
        g_params: &mut [S],
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let (z, rest) = slicing::split_mut(scratch, d);
        let (g_z, rest) = slicing::split_mut(rest, d);
        let (g_layers, g_base) = slicing::split_mut(g_params, self.layers.n_params());
        self.base.noise_to_base(eps, z);
        let layers_cot = Cotangent::new(cot.out, -cot.ldj);
        let grads = Grads::new(&mut *g_z, g_ctx, Some(g_layers));
        self.layers.forward_vjp(z, ctx, layers_cot, grads, rest);
        self.base_sample_vjp(z, eps, cot.ldj, g_z, g_base, rest);
    }

    /// The base's part of a sampling gradient at `z = base(eps)`: adds `g_log_q ∂ log p_base/∂z`
    /// (computed into the first `D` elements of `scratch`) to the layers' `g_z`, and the
    /// parameters' gradient through `log p_base` and through `z` ([`Base::noise_to_base_vjp`])
    /// into `g_base`.
    #[inline]
    fn base_sample_vjp(
        &self,
        z: &[S],
        eps: &[S],
        g_log_q: S,
        g_z: &mut [S],
        g_base: &mut [S],
        scratch: &mut [S],
    ) {
        let (g_base_z, scratch) = slicing::split_mut(scratch, self.dim());
        self.base
            .log_prob_vjp(z, g_log_q, g_base_z, Some(&mut *g_base), scratch);
        for (g, &b) in g_z.iter_mut().zip(g_base_z.iter()) {
            *g += b;
        }
        self.base.noise_to_base_vjp(eps, g_z, g_base);
    }

    /// [`Flow::sample_and_log_prob_vjp`] for a block of `N` samples (`eps[s]`, `ctx[s]`,
    /// `g_x[s]`, adding into `g_ctx[s]`), the layers' VJPs run once for the block; bit for bit the
    /// single-sample calls made sample after sample: [`Flow::sample_vjp_head_block`] with the
    /// given cotangents. `scratch` needs [`Flow::sample_vjp_head_scratch_len`]`(N)`.
    pub fn sample_and_log_prob_vjp_block<const N: usize>(
        &self,
        eps: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        g_ctx: [&mut [S]; N],
        g_params: &mut [S],
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let mut head = |_: &[S], _: &[S], g: &mut [S]| {
            for (gs, gx) in block::views_mut::<S, N>(g, d).into_iter().zip(cot.out) {
                slicing::copy(gs, gx);
            }
        };
        let cot = Cotangent::new(&mut head as &mut SampleHead<'_, S>, cot.ldj);
        self.sample_vjp_head_block(eps, ctx, cot, g_ctx, g_params, scratch);
    }

    /// Scratch elements of [`Flow::sample_vjp_head_block`] for `n` samples.
    pub fn sample_vjp_head_scratch_len(&self, n: usize) -> usize {
        let layers = self.layers.block_forward_vjp_head_scratch_len(n);
        3 * n * self.dim() + self.base.scratch_len().max(layers)
    }

    /// Reverse-KL training's step for a block of `N` samples in one sampling pass: draws
    /// `x[s] = T(base(eps[s]))` with `log q[s]` ([`Flow::sample_and_log_prob`]'s bits), calls
    /// the head `cot.out(x, log_q, g_x)` once (`x` and `g_x` are `N × D`, sample after sample) for the
    /// cotangent of `x` (`head` is a [`SampleHead`]: its second slice holds `log q`, not the
    /// log-determinants), then adds the gradient of `L = Σₛ g_xₛᵀ xₛ + g_log_q · log qₛ`
    /// (`g_log_q = cot.ldj`) into
    /// `g_params` (layers, then base) and `g_ctx[s]` as [`Flow::sample_and_log_prob_vjp`] (bit for
    /// bit). `scratch` needs [`Flow::sample_vjp_head_scratch_len`]`(N)`.
    pub fn sample_vjp_head_block<const N: usize>(
        &self,
        eps: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut SampleHead<'_, S>, S>,
        g_ctx: [&mut [S]; N],
        g_params: &mut [S],
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let Some((z, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((g_z, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        let (g_layers, g_base) = slicing::split_mut(g_params, self.layers.n_params());
        let mut base_lp = [S::ZERO; N];
        for ((zs, e), lp) in block::views_mut::<S, N>(z, d)
            .into_iter()
            .zip(eps)
            .zip(&mut base_lp)
        {
            self.base.noise_to_base(e, zs);
            *lp = self.base.log_prob(zs, rest);
        }
        let mut with_log_q = |x: &[S], ldj: &[S], g_x: &mut [S]| {
            let mut log_q = [S::ZERO; N];
            for ((q, &lp), &l) in log_q.iter_mut().zip(&base_lp).zip(ldj) {
                *q = lp - l;
            }
            (cot.out)(x, &log_q, g_x);
        };
        let zv = block::views::<S, N>(z, d);
        let g_zv = block::views_mut::<S, N>(g_z, d);
        let mut ldj = [S::ZERO; N];
        self.layers.forward_vjp_head_block(
            zv,
            ctx,
            Cotangent::new(&mut with_log_q, -cot.ldj),
            Grads::new(g_zv, g_ctx, Some(g_layers)),
            &mut ldj,
            rest,
        );
        let per_sample = zv.into_iter().zip(eps).zip(block::views_mut::<S, N>(g_z, d));
        for ((zs, e), gz) in per_sample {
            self.base_sample_vjp(zs, e, cot.ldj, gz, g_base, rest);
        }
    }
}
