//! A whole flow: layers (one [`Bijection`]) over a [`Base`] distribution.
//!
//! `log p(x | c) = log p_base(z) + ℓ`, with `(z, ℓ) = inverse(x, c)`. Parameters of a flow are the
//! layers' parameters followed by the base's.
//!
//! Baked models use `Flow<S, Chain<…>, _>`; the runtime evaluator uses `Flow<S, Seq, _>` over layers
//! decoded from bytes. Both run this code, so they agree bit for bit.

use crate::layers::{Cotangent, Grads};
use core::marker::PhantomData;

use rand_core::RngCore;

use crate::base::Base;
use crate::block::{self, BLOCK};
use crate::layers::Bijection;
use crate::{slicing, Real};

mod sample_vjp;

/// Layers plus base distribution, evaluated in scalar `S`.
#[derive(Clone, Copy, Debug)]
pub struct Flow<S, L, B> {
    /// The composed layers (density direction: data → base).
    pub layers: L,
    /// The base distribution.
    pub base: B,
    _scalar: PhantomData<S>,
}

impl<S, L, B> Flow<S, L, B> {
    /// A flow from its layers and base.
    pub const fn new(layers: L, base: B) -> Self {
        Flow {
            layers,
            base,
            _scalar: PhantomData,
        }
    }
}

/// Rows per rayon task of the parallel batch methods (a multiple of every [`BLOCK`]).
#[cfg(feature = "rayon")]
pub const PAR_CHUNK: usize = 256;

/// A standard-normal draw from a random source: Box–Muller on two 53-bit uniforms, computed in
/// f64 with libm so that every target draws the same numbers for the same generator state.
pub fn standard_normal<R: RngCore + ?Sized>(rng: &mut R) -> f64 {
    let u1 = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64; // (0, 1]
    let u2 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * core::f64::consts::PI * u2)
}

impl<S: Real, L: Bijection<S>, B: Base<S>> Flow<S, L, B> {
    /// Dimension D.
    pub fn dim(&self) -> usize {
        self.layers.dim()
    }

    /// Context dimension C.
    pub fn context_dim(&self) -> usize {
        self.layers.context_dim()
    }

    /// Number of parameters (layers, then base).
    pub fn n_params(&self) -> usize {
        self.layers.n_params() + self.base.n_params()
    }

    /// Scratch elements any method of this flow needs.
    pub fn scratch_len(&self) -> usize {
        let d = self.dim();
        // Evaluation: z plus the layers' or the base's scratch. Gradients: the base's scratch, the
        // context cotangent, z and g_z, and the layers' scratch.
        let eval = d + self.layers.scratch_len().max(self.base.scratch_len());
        let grad = self.base.scratch_len() + self.context_dim() + 2 * d + self.layers.scratch_len();
        eval.max(grad)
    }

    /// Data → base: writes `z`, returns log|det ∂z/∂x|.
    #[inline]
    pub fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.layers.inverse_acc(x, ctx, z, &mut ldj, scratch);
        ldj
    }

    /// Base → data: writes `x`, returns log|det ∂x/∂z|.
    #[inline]
    pub fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        let mut ldj = S::ZERO;
        self.layers.forward_acc(z, ctx, x, &mut ldj, scratch);
        ldj
    }

    /// log p(x | ctx).
    #[inline]
    pub fn log_prob(&self, x: &[S], ctx: &[S], scratch: &mut [S]) -> S {
        let (z, rest) = slicing::split_mut(scratch, self.dim());
        let ldj = self.inverse(x, ctx, z, rest);
        self.base.log_prob(z, rest) + ldj
    }

    /// A sample from standard-normal base noise `eps`: `x = forward(base.noise_to_base(eps))`.
    #[inline]
    pub fn sample(&self, eps: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) {
        let (z, rest) = slicing::split_mut(scratch, self.dim());
        self.base.noise_to_base(eps, z);
        self.forward(z, ctx, x, rest);
    }

    /// A sample and its log-density from one pass, without inverting: `z = base(eps)`,
    /// `x = forward(z)`, returns `log q(x) = log p_base(z) − log|det ∂x/∂z|`.
    ///
    /// `x` is bit for bit [`Flow::sample`]'s. The density equals [`Flow::log_prob`] of `x` in exact
    /// arithmetic; in floating point the two differ by the rounding of the two directions (about
    /// 1e-6 relative in `f32`, 1e-15 in `f64`), as the inverse of an autoregressive or spline
    /// layer is computed, not exact. It is the density of the sample as drawn, which is what
    /// importance weights and reverse-KL estimates need.
    #[inline]
    pub fn sample_and_log_prob(&self, eps: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S {
        let (z, rest) = slicing::split_mut(scratch, self.dim());
        self.base.noise_to_base(eps, z);
        let ldj = self.forward(z, ctx, x, rest);
        self.base.log_prob(z, rest) - ldj
    }

    /// Scratch elements of the batch methods: [`crate::block::BLOCK`] times [`Flow::scratch_len`]
    /// (an upper bound of what a block needs).
    pub fn batch_scratch_len(&self) -> usize {
        BLOCK * self.scratch_len()
    }

    /// log p of a block of `N` samples (`x[s]`, `ctx[s]` → `out[s]`), bit for bit
    /// [`Flow::log_prob`] of each: the layers run the block together
    /// ([`Bijection::inverse_acc_block`]). `scratch` needs `N · D` plus the layers' block scratch
    /// (at most `N ·` [`Flow::scratch_len`]).
    pub fn log_prob_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        out: &mut [S; N],
        scratch: &mut [S],
    ) {
        let d = self.dim();
        let Some((z, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let mut ldj = [S::ZERO; N];
        self.layers
            .inverse_acc_block(x, ctx, block::views_mut::<S, N>(z, d), &mut ldj, rest);
        for ((o, zs), l) in out.iter_mut().zip(block::views::<S, N>(z, d)).zip(ldj) {
            *o = self.base.log_prob(zs, rest) + l;
        }
    }

    /// log p of every row of `xs` (`n × D`, row after row) into `out` (the first
    /// `min(n, out.len())` rows), all rows with the same context `ctx`; rows go through the
    /// layers [`crate::block::BLOCK`] at a time. Bit for bit [`Flow::log_prob`] of each row.
    /// `scratch` needs [`Flow::batch_scratch_len`].
    pub fn log_prob_batch(&self, xs: &[S], ctx: &[S], out: &mut [S], scratch: &mut [S]) {
        let d = self.dim().max(1);
        let n = (xs.len() / d).min(out.len());
        let full = n / BLOCK * BLOCK;
        for (xb, ob) in xs
            .chunks_exact(BLOCK * d)
            .zip(out.chunks_exact_mut(BLOCK))
            .take(full / BLOCK)
        {
            let Ok(ob) = <&mut [S; BLOCK]>::try_from(ob) else {
                continue;
            };
            self.log_prob_block::<BLOCK>(block::views::<S, BLOCK>(xb, d), [ctx; BLOCK], ob, scratch);
        }
        let tail_x = xs.get(full * d..n * d).unwrap_or(&[]);
        let tail_o = out.get_mut(full..n).unwrap_or(&mut []);
        for (x, o) in tail_x.chunks_exact(d).zip(tail_o.iter_mut()) {
            *o = self.log_prob(x, ctx, scratch);
        }
    }

    /// Samples from base noise for every row of `eps` (`n × D`) into the rows of `xs`, all with
    /// context `ctx`, [`crate::block::BLOCK`] at a time. Bit for bit [`Flow::sample`] of each
    /// row. `scratch` needs [`Flow::batch_scratch_len`].
    pub fn sample_batch(&self, eps: &[S], ctx: &[S], xs: &mut [S], scratch: &mut [S]) {
        self.sample_rows(eps, ctx, xs, None, scratch);
    }

    /// [`Flow::sample_and_log_prob`] for every row of `eps` (`n × D`): samples into the rows of
    /// `xs`, their log-densities into `out` (the first `min(n, out.len())` rows), all with
    /// context `ctx`, [`crate::block::BLOCK`] at a time; bit for bit the single-row calls.
    /// `scratch` needs [`Flow::batch_scratch_len`].
    pub fn sample_and_log_prob_batch(
        &self,
        eps: &[S],
        ctx: &[S],
        xs: &mut [S],
        out: &mut [S],
        scratch: &mut [S],
    ) {
        self.sample_rows(eps, ctx, xs, Some(out), scratch);
    }

    /// The batch sampler behind [`Flow::sample_batch`] (without `out`) and
    /// [`Flow::sample_and_log_prob_batch`].
    fn sample_rows(&self, eps: &[S], ctx: &[S], xs: &mut [S], mut out: Option<&mut [S]>, scratch: &mut [S]) {
        let d = self.dim().max(1);
        let mut n = (eps.len() / d).min(xs.len() / d);
        if let Some(o) = &out {
            n = n.min(o.len());
        }
        let full = n / BLOCK * BLOCK;
        for (k, (eb, xb)) in eps
            .chunks_exact(BLOCK * d)
            .zip(xs.chunks_exact_mut(BLOCK * d))
            .take(full / BLOCK)
            .enumerate()
        {
            let Some((z, rest)) = scratch.split_at_mut_checked(BLOCK * d) else {
                return;
            };
            for (zs, es) in z.chunks_exact_mut(d).zip(eb.chunks_exact(d)) {
                self.base.noise_to_base(es, zs);
            }
            let mut ldj = [S::ZERO; BLOCK];
            self.layers.forward_acc_block(
                block::views::<S, BLOCK>(z, d),
                [ctx; BLOCK],
                block::views_mut::<S, BLOCK>(xb, d),
                &mut ldj,
                rest,
            );
            if let Some(o) = out.as_deref_mut() {
                let ob = slicing::range_mut(o, k * BLOCK, BLOCK);
                for ((o, zs), l) in ob.iter_mut().zip(z.chunks_exact(d)).zip(ldj) {
                    *o = self.base.log_prob(zs, rest) - l;
                }
            }
        }
        let tail_e = eps.get(full * d..n * d).unwrap_or(&[]);
        let tail_x = xs.get_mut(full * d..n * d).unwrap_or(&mut []);
        match out {
            Some(o) => {
                let tail_o = o.get_mut(full..n).unwrap_or(&mut []);
                for ((e, x), o) in tail_e.chunks_exact(d).zip(tail_x.chunks_exact_mut(d)).zip(tail_o) {
                    *o = self.sample_and_log_prob(e, ctx, x, scratch);
                }
            }
            None => {
                for (e, x) in tail_e.chunks_exact(d).zip(tail_x.chunks_exact_mut(d)) {
                    self.sample(e, ctx, x, scratch);
                }
            }
        }
    }

    /// [`Flow::log_prob_batch`] split over all cores (rayon) in chunks of [`PAR_CHUNK`] rows,
    /// each thread with its own scratch; the same bits as the one-thread call.
    #[cfg(feature = "rayon")]
    pub fn par_log_prob_batch(&self, xs: &[S], ctx: &[S], out: &mut [S])
    where
        L: Sync,
        B: Sync,
    {
        use rayon::prelude::*;
        let d = self.dim().max(1);
        let n = (xs.len() / d).min(out.len());
        let (xs, out) = (&xs[..n * d], &mut out[..n]);
        out.par_chunks_mut(PAR_CHUNK)
            .zip(xs.par_chunks(PAR_CHUNK * d))
            .for_each_init(
                || std::vec![S::ZERO; self.batch_scratch_len()],
                |scratch, (o, x)| self.log_prob_batch(x, ctx, o, scratch),
            );
    }

    /// [`Flow::sample_batch`] split over all cores (rayon), as [`Flow::par_log_prob_batch`].
    #[cfg(feature = "rayon")]
    pub fn par_sample_batch(&self, eps: &[S], ctx: &[S], xs: &mut [S])
    where
        L: Sync,
        B: Sync,
    {
        use rayon::prelude::*;
        let d = self.dim().max(1);
        let n = (eps.len() / d).min(xs.len() / d);
        let (eps, xs) = (&eps[..n * d], &mut xs[..n * d]);
        xs.par_chunks_mut(PAR_CHUNK * d)
            .zip(eps.par_chunks(PAR_CHUNK * d))
            .for_each_init(
                || std::vec![S::ZERO; self.batch_scratch_len()],
                |scratch, (x, e)| self.sample_batch(e, ctx, x, scratch),
            );
    }

    /// Scratch elements of [`Flow::grad_log_prob_block`] for `n` samples.
    pub fn grad_block_scratch_len(&self, n: usize) -> usize {
        self.base.scratch_len() + n * self.context_dim() + self.layers.block_vjp_scratch_len(n)
    }

    /// ∇ₓ log p and log p of a block of `N` samples (`x[s]` → `g_x[s]`, `out[s]`), all under
    /// context `ctx`, bit for bit [`Flow::grad_log_prob`] of each: the layers run their forward
    /// and vector-Jacobian products for the block together ([`Bijection::inverse_vjp_head_block`]).
    /// `scratch` needs [`Flow::grad_block_scratch_len`]`(N)`.
    pub fn grad_log_prob_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: &[S],
        g_x: [&mut [S]; N],
        out: &mut [S; N],
        scratch: &mut [S],
    ) {
        self.grad_block(x, [ctx; N], g_x, None, out, scratch);
    }

    /// [`Flow::grad`] of a block of `N` samples, each with its own context: writes ∇ₓ log p into
    /// `g_x[s]` and log p into `out[s]`, and adds every sample's ∂ log p/∂θ into `g_params`
    /// (layers, then base) when given. Bit for bit the single-sample calls made sample after
    /// sample (each parameter adds the samples in order), with one pass over the weights per
    /// layer for the block rather than one per sample: training's gradient step. `scratch` needs
    /// [`Flow::grad_block_scratch_len`]`(N)`.
    pub fn grad_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        g_x: [&mut [S]; N],
        g_params: Option<&mut [S]>,
        out: &mut [S; N],
        scratch: &mut [S],
    ) {
        let (base_scratch, rest) = slicing::split_mut(scratch, self.base.scratch_len());
        let c = ctx.first().map_or(0, |v| v.len()).min(self.context_dim());
        let Some((g_ctx, rest)) = rest.split_at_mut_checked(N * c) else {
            return;
        };
        g_ctx.fill(S::ZERO);
        let (g_layers, mut g_base) = match g_params {
            Some(g) => {
                let (a, b) = slicing::split_mut(g, self.layers.n_params());
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let base = &self.base;
        let mut base_lp = [S::ZERO; N];
        let mut head = |s: usize, z: &[S], g_z: &mut [S]| {
            if let Some(lp) = base_lp.get_mut(s) {
                *lp = base.log_prob(z, base_scratch);
            }
            base.log_prob_vjp(z, S::ONE, g_z, g_base.as_deref_mut(), base_scratch);
        };
        let mut ldj = [S::ZERO; N];
        let g_c = block::views_mut::<S, N>(g_ctx, c);
        self.layers.inverse_vjp_head_block(
            x,
            ctx,
            Cotangent::new(&mut head, S::ONE),
            Grads::new(g_x, g_c, g_layers),
            &mut ldj,
            rest,
        );
        for ((o, lp), l) in out.iter_mut().zip(base_lp).zip(ldj) {
            *o = lp + l;
        }
    }

    /// ∇ₓ log p of every row of `xs` (`n × D`) into the rows of `grads` and log p into `out`
    /// (the first `min(n, out.len(), grads.len() / D)` rows), all under context `ctx`;
    /// [`crate::block::BLOCK`] rows at a time when `scratch` holds
    /// [`Flow::grad_block_scratch_len`]`(BLOCK)` elements, else row by row (it needs at least
    /// [`Flow::scratch_len`]). Bit for bit [`Flow::grad_log_prob`] of each row.
    pub fn grad_log_prob_batch(
        &self,
        xs: &[S],
        ctx: &[S],
        grads: &mut [S],
        out: &mut [S],
        scratch: &mut [S],
    ) {
        let d = self.dim().max(1);
        let n = (xs.len() / d).min(out.len()).min(grads.len() / d);
        let full = if scratch.len() >= self.grad_block_scratch_len(BLOCK) {
            n / BLOCK * BLOCK
        } else {
            0
        };
        let blocks = xs
            .chunks_exact(BLOCK * d)
            .zip(grads.chunks_exact_mut(BLOCK * d))
            .zip(out.chunks_exact_mut(BLOCK))
            .take(full / BLOCK);
        for ((xb, gb), ob) in blocks {
            let Ok(ob) = <&mut [S; BLOCK]>::try_from(ob) else {
                continue;
            };
            let x = block::views::<S, BLOCK>(xb, d);
            self.grad_log_prob_block::<BLOCK>(x, ctx, block::views_mut::<S, BLOCK>(gb, d), ob, scratch);
        }
        let tail_x = xs.get(full * d..n * d).unwrap_or(&[]);
        let tail_g = grads.get_mut(full * d..n * d).unwrap_or(&mut []);
        let tail_o = out.get_mut(full..n).unwrap_or(&mut []);
        let rows = tail_x
            .chunks_exact(d)
            .zip(tail_g.chunks_exact_mut(d))
            .zip(tail_o.iter_mut());
        for ((x, g), o) in rows {
            *o = self.grad_log_prob(x, ctx, g, scratch);
        }
    }

    /// [`Flow::grad_log_prob_batch`] split over all cores (rayon) in chunks of [`PAR_CHUNK`] rows,
    /// as [`Flow::par_log_prob_batch`]; the same bits as the one-thread call.
    #[cfg(feature = "rayon")]
    pub fn par_grad_log_prob_batch(&self, xs: &[S], ctx: &[S], grads: &mut [S], out: &mut [S])
    where
        L: Sync,
        B: Sync,
    {
        use rayon::prelude::*;
        let d = self.dim().max(1);
        let n = (xs.len() / d).min(out.len()).min(grads.len() / d);
        let (xs, grads, out) = (&xs[..n * d], &mut grads[..n * d], &mut out[..n]);
        out.par_chunks_mut(PAR_CHUNK)
            .zip(grads.par_chunks_mut(PAR_CHUNK * d))
            .zip(xs.par_chunks(PAR_CHUNK * d))
            .for_each_init(
                || std::vec![S::ZERO; self.grad_block_scratch_len(BLOCK).max(self.scratch_len())],
                |scratch, ((o, g), x)| self.grad_log_prob_batch(x, ctx, g, o, scratch),
            );
    }

    /// A sample using noise drawn from `rng` with [`standard_normal`].
    pub fn sample_with<R: RngCore + ?Sized>(&self, rng: &mut R, ctx: &[S], x: &mut [S], scratch: &mut [S]) {
        let d = self.dim();
        let (eps, rest) = slicing::split_mut(scratch, d);
        for e in eps.iter_mut() {
            *e = S::from_f64(standard_normal(rng));
        }
        self.sample(eps, ctx, x, rest);
    }

    /// ∇ₓ log p(x | ctx) into `g_x`; returns log p.
    pub fn grad_log_prob(&self, x: &[S], ctx: &[S], g_x: &mut [S], scratch: &mut [S]) -> S {
        self.grad(x, ctx, g_x, None, scratch)
    }

    /// Adds ∂ log p(x | ctx)/∂θ into `g_params` (layers, then base) and writes ∇ₓ log p into
    /// `g_x`; returns log p.
    pub fn grad(
        &self,
        x: &[S],
        ctx: &[S],
        g_x: &mut [S],
        g_params: Option<&mut [S]>,
        scratch: &mut [S],
    ) -> S {
        let (base_scratch, rest) = slicing::split_mut(scratch, self.base.scratch_len());
        let (g_ctx, rest) = slicing::split_mut(rest, ctx.len());
        g_ctx.fill(S::ZERO);
        let mut base_lp = S::ZERO;
        let base = &self.base;
        let (g_layers, mut g_base) = match g_params {
            Some(g) => {
                let (a, b) = slicing::split_mut(g, self.layers.n_params());
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        let mut head = |z: &[S], g_z: &mut [S]| {
            base_lp = base.log_prob(z, base_scratch);
            base.log_prob_vjp(z, S::ONE, g_z, g_base.as_deref_mut(), base_scratch);
        };
        let ldj = self.layers.inverse_vjp_head(
            x,
            ctx,
            Cotangent::new(&mut head, S::ONE),
            Grads::new(g_x, g_ctx, g_layers),
            rest,
        );
        base_lp + ldj
    }
}
