//! The walk over a model's map layers (`Sequence`): every `Bijection` method of the composition,
//! layer 0 first for the density direction and last first for sampling, with each layer's
//! gradients in its own span of `g_params`.

use super::layers::{base_span, layer_span};
use super::model_layers::Layers;
use crate::block;
use crate::layers::{Bijection, BlockHead, SampleHead};
use crate::layers::{BlockGrads, Cotangent, Grads, Head};
use crate::model::BaseDesc;
use crate::{slicing, Real, Weight};

/// The layers that map `x`, in order; parameters: the weight vector after the context statistics.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sequence<'a, W>(pub(super) Layers<'a, W>);

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
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_z, g_ldj) = cot.into_parts();
        self.inverse_vjp_head(
            x,
            ctx,
            Cotangent::new(&mut |_, g| slicing::copy(g, g_z), g_ldj),
            grads,
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
        cot: Cotangent<&mut BlockHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let (head, g_ldj) = cot.into_parts();
        let (mut g_x, mut g_ctx, mut g_params) = grads.into_parts();
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
            let g_in = if i == 0 {
                g_x.each_mut().map(|g| &mut **g)
            } else {
                block::views_mut::<S, N>(gb, d)
            };
            let grads = Grads::new(g_in, g_c, gp);
            l.inverse_vjp_block(input, ctx, Cotangent::new(g_out, g_ldj), grads, rest);
            if i != 0 {
                slicing::copy(ga, gb);
            }
        }
    }

    /// One forward pass keeping every layer's output, then the backward pass.
    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) -> S {
        let (head, g_ldj) = cot.into_parts();
        let (g_x, g_ctx, mut g_params) = grads.into_parts();
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
            let g_in: &mut [S] = if i == 0 { &mut *g_x } else { &mut *gb };
            let grads = Grads::new(g_in, &mut *g_ctx, gp);
            l.inverse_vjp(input, ctx, Cotangent::new(ga, g_ldj), grads, rest);
            if i != 0 {
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
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        let (g_x, g_ldj) = cot.into_parts();
        let (g_z, g_ctx, mut g_params) = grads.into_parts();
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
            let g_in: &mut [S] = if k == 0 { &mut *g_z } else { &mut *gb };
            let grads = Grads::new(g_in, &mut *g_ctx, gp);
            l.forward_vjp(input, ctx, Cotangent::new(ga, g_ldj), grads, rest);
            if k != 0 {
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
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) {
        let (g_x, g_ldj) = cot.into_parts();
        let d = self.desc.dim as usize;
        let mut head = |_: &[S], _: &[S], g: &mut [S]| {
            for (gs, gx) in block::views_mut::<S, N>(g, d).into_iter().zip(g_x) {
                slicing::copy(gs, gx);
            }
        };
        let mut ldj = [S::ZERO; N];
        self.forward_vjp_head_block(z, ctx, Cotangent::new(&mut head, g_ldj), grads, &mut ldj, scratch);
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
        cot: Cotangent<&mut SampleHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) {
        let (head, g_ldj) = cot.into_parts();
        let (mut g_z, mut g_ctx, mut g_params) = grads.into_parts();
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
            let g_in = if k == 0 {
                g_z.each_mut().map(|g| &mut **g)
            } else {
                block::views_mut::<S, N>(gb, d)
            };
            let grads = Grads::new(g_in, g_c, gp);
            l.forward_vjp_block(input, ctx, Cotangent::new(g_out, g_ldj), grads, rest);
            if k != 0 {
                slicing::copy(ga, gb);
            }
        }
    }
}
