//! Flow layers, one file per layer type, all behind the [`Bijection`] trait.
//!
//! Direction convention (the peers disagree, so it is stated once here):
//! - [`Bijection::inverse`] maps **data → base** (the density direction) and returns
//!   log|det ∂z/∂x|;
//! - [`Bijection::forward`] maps **base → data** (the sampling direction) and returns
//!   log|det ∂x/∂z|.
//!
//! `log p(x) = log p_base(z) + Σ_layers log|det J_inverse|`.
//!
//! Every layer is a small struct that borrows its parameters (`&[W]`, `W` = `f32` in model files and
//! baked code, `f64` in training) and is generic over the scalar `S` it computes in.

pub mod actnorm;
pub mod affine;
pub mod autoregressive;
pub mod batchnorm;
mod blockwise;
pub mod chain;
pub mod context;
pub mod coupling;
pub mod elementwise;
mod implicit;
pub mod lu_linear;
pub mod permutation;
pub mod planar;
pub mod radial;
pub mod spline;
pub mod transformer;

pub use crate::cotangent::{BlockGrads, BlockHead, Cotangent, Grads, Head, SampleHead};
use crate::{block, slicing, Real};

/// One invertible layer `x ↔ z`, optionally conditioned on a context vector.
///
/// Buffers: every method takes a `scratch` slice of at least [`Bijection::scratch_len`] elements.
/// Output slices have length [`Bijection::dim`]; `ctx` has length [`Bijection::context_dim`]
/// (empty for unconditional layers).
///
/// Vector-Jacobian products start from a [`Cotangent`] of the output and write [`Grads`] (see
/// [`crate::cotangent`]).
///
/// The methods of this crate's layers have no panic path, whatever the slice lengths (baked code
/// must have none, see `examples/nostd-check`): with slices shorter than documented they write
/// less and return unspecified values.
pub trait Bijection<S: Real> {
    /// Number of features D.
    fn dim(&self) -> usize;

    /// Number of context inputs (0 for unconditional layers).
    fn context_dim(&self) -> usize {
        0
    }

    /// Number of trainable parameters (the length of [`Grads::params`]).
    fn n_params(&self) -> usize;

    /// Scratch elements that every method of this layer needs at most.
    fn scratch_len(&self) -> usize;

    /// Data → base: writes `z`, returns log|det ∂z/∂x|.
    fn inverse(&self, x: &[S], ctx: &[S], z: &mut [S], scratch: &mut [S]) -> S;

    /// Base → data: writes `x`, returns log|det ∂x/∂z|.
    fn forward(&self, z: &[S], ctx: &[S], x: &mut [S], scratch: &mut [S]) -> S;

    /// [`Bijection::inverse`], adding the log-determinant into `ldj`. Compositions override it
    /// so that every path sums log-determinants in the same order (layer 0 first).
    #[inline(always)]
    fn inverse_acc(&self, x: &[S], ctx: &[S], z: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        *ldj += self.inverse(x, ctx, z, scratch);
    }

    /// [`Bijection::forward`], adding the log-determinant into `ldj` (last layer first).
    #[inline(always)]
    fn forward_acc(&self, z: &[S], ctx: &[S], x: &mut [S], ldj: &mut S, scratch: &mut [S]) {
        *ldj += self.forward(z, ctx, x, scratch);
    }

    /// Scratch elements of the block methods for `n` samples; at most `n · scratch_len()`.
    fn block_scratch_len(&self, n: usize) -> usize {
        let _ = n;
        self.scratch_len()
    }

    /// [`Bijection::inverse_acc`] for a block of `N` samples (`x[s]`, `ctx[s]` → `z[s]`, adding
    /// into `ldj[s]`). Layers with a network override it to run the network once for the whole
    /// block ([`crate::nn::Mlp::forward_block`]); every sample's result is bit for bit that of
    /// [`Bijection::inverse_acc`]. `scratch` needs [`Bijection::block_scratch_len`]`(N)`.
    #[inline]
    fn inverse_acc_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        z: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) where
        Self: Sized,
    {
        for (((xs, cs), zs), l) in x.into_iter().zip(ctx).zip(z).zip(ldj.iter_mut()) {
            self.inverse_acc(xs, cs, zs, l, scratch);
        }
    }

    /// [`Bijection::forward_acc`] for a block of `N` samples (see
    /// [`Bijection::inverse_acc_block`]).
    #[inline]
    fn forward_acc_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        x: [&mut [S]; N],
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) where
        Self: Sized,
    {
        for (((zs, cs), xs), l) in z.into_iter().zip(ctx).zip(x).zip(ldj.iter_mut()) {
            self.forward_acc(zs, cs, xs, l, scratch);
        }
    }

    /// [`Bijection::inverse_vjp_head`] adding the log-determinant into `ldj` (as
    /// [`Bijection::inverse_acc`]), so that a composition sums them in the order of its `inverse`.
    #[inline]
    fn inverse_vjp_head_acc(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        ldj: &mut S,
        scratch: &mut [S],
    ) {
        *ldj += self.inverse_vjp_head(x, ctx, cot, grads, scratch);
    }

    /// Scratch elements of [`Bijection::inverse_vjp_block`] and
    /// [`Bijection::inverse_vjp_head_block`] for `n` samples.
    fn block_vjp_scratch_len(&self, n: usize) -> usize {
        let _ = n;
        self.scratch_len() + 2 * self.dim()
    }

    /// [`Bijection::inverse_vjp`] for a block of `N` samples: writes `grads.input[s]`, adds into
    /// `grads.ctx[s]` and, when given, adds every sample's parameter gradient into
    /// `grads.params`, bit for bit the single-sample calls made sample after sample. Layers with a
    /// network override it to run the network's cached forward and backward once for the block.
    /// `scratch` needs [`Bijection::block_vjp_scratch_len`]`(N)`.
    #[inline]
    fn inverse_vjp_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) where
        Self: Sized,
    {
        let Grads {
            input,
            ctx: g_ctx,
            mut params,
        } = grads;
        let per_sample = x.into_iter().zip(ctx).zip(cot.out).zip(input).zip(g_ctx);
        for ((((xs, cs), gz), gx), gc) in per_sample {
            let g = Grads::new(gx, gc, params.as_deref_mut());
            self.inverse_vjp(xs, cs, Cotangent::new(gz, cot.ldj), g, scratch);
        }
    }

    /// [`Bijection::inverse_vjp_head_acc`] for a block of `N` samples: `head(s, z, g_z)` sees
    /// sample `s`'s base point; parameter gradients are added into `grads.params` (when given)
    /// as by [`Bijection::inverse_vjp_block`]. Every sample's results are bit for bit the
    /// single-sample ones. `scratch` needs [`Bijection::block_vjp_scratch_len`]`(N)`.
    #[inline]
    fn inverse_vjp_head_block<const N: usize>(
        &self,
        x: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut BlockHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) where
        Self: Sized,
    {
        let (head, g_ldj) = cot.into_parts();
        let Grads {
            input,
            ctx: g_ctx,
            mut params,
        } = grads;
        let per_sample = x.into_iter().zip(ctx).zip(input).zip(g_ctx).zip(ldj.iter_mut());
        for (s, ((((xs, cs), gx), gc), l)) in per_sample.enumerate() {
            let mut one = |z: &[S], g: &mut [S]| head(s, z, g);
            let g = Grads::new(gx, gc, params.as_deref_mut());
            self.inverse_vjp_head_acc(xs, cs, Cotangent::new(&mut one, g_ldj), g, l, scratch);
        }
    }

    /// [`Bijection::inverse`] then [`Bijection::inverse_vjp`] with `∂L/∂z` chosen from the
    /// output: the head `cot.out(z, g_z)` sees `z` and writes `∂L/∂z`. Returns log|det ∂z/∂x|.
    /// Compositions override it to keep their intermediate values instead of recomputing them
    /// (training's hot path). Needs `2·dim` scratch beyond [`Bijection::scratch_len`].
    fn inverse_vjp_head(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&mut Head<'_, S>, S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) -> S {
        let d = self.dim();
        let (z, rest) = slicing::split_mut(scratch, d);
        let (g_z, rest) = slicing::split_mut(rest, d);
        let ldj = self.inverse(x, ctx, z, rest);
        (cot.out)(z, g_z);
        self.inverse_vjp(x, ctx, Cotangent::new(g_z, cot.ldj), grads, rest);
        ldj
    }

    /// Scratch elements of [`Bijection::forward_vjp`] (at least [`Bijection::scratch_len`]).
    fn forward_vjp_scratch_len(&self) -> usize {
        implicit::dense_scratch_len(self.dim(), self.context_dim(), self.scratch_len())
    }

    /// Vector-Jacobian product of [`Bijection::forward`] (the sampling direction) at `z`.
    ///
    /// For a loss L(x, ℓ) with `cot = (∂L/∂x, ∂L/∂ℓ)` (ℓ = log|det ∂x/∂z|), writes
    /// `grads.input = dL/dz` (overwriting), adds dL/d(ctx) into `grads.ctx`, and, when
    /// `grads.params` is given, adds dL/dθ into it. Reverse-KL training needs it: `x = T(u)`
    /// depends on θ through the sampling pass. The default differentiates
    /// [`Bijection::inverse`] implicitly with a dense solve (`D + 2` calls of
    /// [`Bijection::inverse_vjp`]; see `layers/implicit.rs`); layers with a triangular or explicit
    /// sampling map override it. `scratch` needs [`Bijection::forward_vjp_scratch_len`].
    fn forward_vjp(
        &self,
        z: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    ) {
        implicit::forward_vjp_dense(self, z, ctx, cot, grads, scratch);
    }

    /// Scratch elements of [`Bijection::forward_vjp_block`] for `n` samples.
    fn block_forward_vjp_scratch_len(&self, n: usize) -> usize {
        let _ = n;
        self.forward_vjp_scratch_len()
    }

    /// [`Bijection::forward_vjp`] for a block of `N` samples: writes `grads.input[s]`, adds into
    /// `grads.ctx[s]` and, when given, adds every sample's parameter gradient into
    /// `grads.params`, bit for bit the single-sample calls made sample after sample. Layers with a
    /// network and a one-pass sampling direction override it to run the network once for the
    /// block. `scratch` needs [`Bijection::block_forward_vjp_scratch_len`]`(N)`.
    #[inline]
    fn forward_vjp_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<[&[S]; N], S>,
        grads: BlockGrads<'_, S, N>,
        scratch: &mut [S],
    ) where
        Self: Sized,
    {
        let Grads {
            input,
            ctx: g_ctx,
            mut params,
        } = grads;
        let per_sample = z.into_iter().zip(ctx).zip(cot.out).zip(input).zip(g_ctx);
        for ((((zs, cs), gx), gz), gc) in per_sample {
            let g = Grads::new(gz, gc, params.as_deref_mut());
            self.forward_vjp(zs, cs, Cotangent::new(gx, cot.ldj), g, scratch);
        }
    }

    /// Scratch elements of [`Bijection::forward_vjp_head_block`] for `n` samples.
    fn block_forward_vjp_head_scratch_len(&self, n: usize) -> usize {
        let inner = self
            .block_scratch_len(n)
            .max(self.block_forward_vjp_scratch_len(n));
        2 * n * self.dim() + inner
    }

    /// The sampling pass of a block and its VJP with `∂L/∂x` chosen from the output: runs
    /// [`Bijection::forward_acc_block`] (adding into `ldj`), calls the head `cot.out(x, ldj, g_x)`
    /// once with the block's outputs, then [`Bijection::forward_vjp_block`] with that cotangent.
    /// Bit for bit the two calls; compositions override it to keep their intermediate values
    /// (reverse-KL training's hot path). `scratch` needs
    /// [`Bijection::block_forward_vjp_head_scratch_len`]`(N)`.
    #[inline]
    fn forward_vjp_head_block<const N: usize>(
        &self,
        z: [&[S]; N],
        ctx: [&[S]; N],
        cot: Cotangent<&mut SampleHead<'_, S>, S>,
        grads: BlockGrads<'_, S, N>,
        ldj: &mut [S; N],
        scratch: &mut [S],
    ) where
        Self: Sized,
    {
        let d = self.dim();
        let Some((x, rest)) = scratch.split_at_mut_checked(N * d) else {
            return;
        };
        let Some((g_x, rest)) = rest.split_at_mut_checked(N * d) else {
            return;
        };
        self.forward_acc_block(z, ctx, block::views_mut::<S, N>(x, d), ldj, rest);
        (cot.out)(x, ldj, g_x);
        let g_xv = block::views::<S, N>(g_x, d);
        self.forward_vjp_block(z, ctx, Cotangent::new(g_xv, cot.ldj), grads, rest);
    }

    /// Vector-Jacobian product of [`Bijection::inverse`] at `x`.
    ///
    /// For a loss L(z, ℓ) with `cot = (∂L/∂z, ∂L/∂ℓ)` (ℓ = log|det ∂z/∂x|), writes
    /// `grads.input = dL/dx` (overwriting), adds dL/d(ctx) into `grads.ctx`, and, when
    /// `grads.params` is given, adds dL/dθ into it (same layout as the layer's parameters).
    fn inverse_vjp(
        &self,
        x: &[S],
        ctx: &[S],
        cot: Cotangent<&[S], S>,
        grads: Grads<'_, S>,
        scratch: &mut [S],
    );
}
